#include "tracer/cpython/threads.h"

#include "common/err.h"
#include "tracer/cpython/objects.h"
#include "tracer/proc/maps.h"

#include <stdlib.h>
#include <string.h>

#define MAX_INTERPS 64

static uint64_t rdp(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* How many bytes of a thread state we need: up to the last field we read. */
static size_t ts_size(const struct py_layout *L)
{
    int64_t offs[] = { L->ts_next, L->ts_interp, L->ts_frame, L->ts_cframe,
                       L->ts_thread_id, L->ts_native_thread_id, L->ts_datastack_chunk,
                       L->ts_datastack_top };
    int64_t m = 0;
    for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++)
        if (offs[i] > m)
            m = offs[i];
    return (size_t)m + 8 <= PY_TSBUF ? (size_t)m + 8 : PY_TSBUF;
}

/* The OS id check of a thread state whose ident matched (see below). */
static int still_tid(struct py_runtime *rt, const struct py_thread *th, int has_tid, uint64_t ntid)
{
    if (has_tid)
        return (pid_t)ntid == th->tid;
    /* no OS id in the thread state (before 3.11): glibc hands a new thread
     * the struct pthread (the same ident) of one that ended; the OS id in
     * it tells them apart */
    int32_t tid;
    if (th->tid > 0 && rt->pthread_tid_off >= 0 &&
        !mem_read(&rt->mem, th->ident + (uint64_t)rt->pthread_tid_off, &tid, 4))
        return tid == th->tid;
    return 1;
}

/* (threads.h) */
int py_thread_still_ts(struct py_runtime *rt, const struct py_thread *th, uint8_t *ts)
{
    const struct py_layout *L = &rt->L;
    if (L->ts_thread_id < 0 || L->ts_thread_id + 8 > PY_TSBUF || L->ts_native_thread_id + 8 > PY_TSBUF)
        return py_thread_still(rt, th) && !mem_read(&rt->mem, th->tstate, ts, PY_TSBUF);
    if (mem_read(&rt->mem, th->tstate, ts, PY_TSBUF))
        return 0;
    int has_tid = L->ts_native_thread_id >= 0 && th->tid > 0;
    if (rdp(ts + L->ts_thread_id) != th->ident)
        return 0;
    return still_tid(rt, th, has_tid, has_tid ? rdp(ts + L->ts_native_thread_id) : 0);
}

/* (threads.h) */
int py_thread_still(struct py_runtime *rt, const struct py_thread *th)
{
    const struct py_layout *L = &rt->L;
    uint64_t v[2];
    struct mem_iov iov[2] = {
        { th->tstate + (uint64_t)L->ts_thread_id, &v[0], 8 },
        { th->tstate + (uint64_t)L->ts_native_thread_id, &v[1], 8 },
    };
    int has_tid = L->ts_native_thread_id >= 0 && th->tid > 0;
    if (mem_readv(&rt->mem, iov, has_tid ? 2 : 1) || v[0] != th->ident)
        return 0;
    return still_tid(rt, th, has_tid, v[1]);
}

/* The GIL's address: the struct (3.7+), the lowest of its static mutexes
 * and condvars (3.6), or 2.7's lock (0 until a second thread started). */
static uint64_t gil_addr(struct py_runtime *rt, uint64_t interp)
{
    uint64_t g = 0;
    switch (rt->gil_kind) {
    case PY_GIL_STATICS:
        return rt->gil_lo;
    case PY_GIL_LOCK27:
        if (mem_read_ptr(&rt->mem, rt->gil_lo, &g))
            return 0;
        return g;
    default:
        break;
    }
    if (rt->L.rt_gil >= 0)
        return rt->runtime_addr + (uint64_t)rt->L.rt_gil;
    if (mem_read_ptr(&rt->mem, interp + (uint64_t)rt->L.is_gil_ptr, &g))
        return 0;
    return g;
}

/* 2.7 and 3.6: the GIL holder. 3.6's gil_locked is -1 until a thread is
 * started (PyEval_InitThreads), 2.7's interpreter_lock NULL: until then the
 * only thread runs with no GIL to take, and the current thread state is
 * the holder. 2.7's lock keeps no owner: a locked semaphore (value 0) is
 * held by the current thread state, which the holder sets right after it
 * takes the lock and clears right before it lets go. */
static int old_gil_holder(struct py_runtime *rt, uint64_t *holder)
{
    int rc;
    if (rt->gil_kind == PY_GIL_STATICS) {
        int32_t locked;
        if ((rc = mem_read(&rt->mem, rt->gil_locked_at, &locked, sizeof locked)))
            return rc;
        if (locked > 0)
            return mem_read_ptr(&rt->mem, rt->gil_holder_at, holder);
        if (locked < 0)
            return mem_read_ptr(&rt->mem, rt->tstate_current, holder);
        return 0;
    }
    uint64_t lock;
    if ((rc = mem_read_ptr(&rt->mem, rt->gil_lo, &lock)))
        return rc;
    if (lock) {
        uint32_t value; /* glibc sem_t: the count in the first 32 bits */
        if ((rc = mem_read(&rt->mem, lock, &value, sizeof value)))
            return rc;
        if (value != 0)
            return 0;
    }
    return mem_read_ptr(&rt->mem, rt->tstate_current, holder);
}

int py_gil_holder(struct py_runtime *rt, uint64_t interp, uint64_t *holder)
{
    *holder = 0;
    if (rt->gil_kind != PY_GIL_STRUCT) {
        int rc = old_gil_holder(rt, holder);
        if (rc)
            *holder = 0;
        return rc;
    }
    uint64_t g = gil_addr(rt, interp);
    if (!g)
        return SE_FAULT;
    uint8_t buf[256];
    size_t need = (size_t)(rt->L.gil_locked > rt->L.gil_last_holder ? rt->L.gil_locked + 4
                                                                    : rt->L.gil_last_holder + 8);
    int rc = mem_read(&rt->mem, g, buf, need);
    if (rc)
        return rc;
    int32_t locked;
    memcpy(&locked, buf + rt->L.gil_locked, 4);
    if (locked)
        *holder = rdp(buf + rt->L.gil_last_holder);
    return 0;
}

int py_gil_switches(struct py_runtime *rt, uint64_t interp, uint64_t *switches)
{
    *switches = 0;
    if (rt->gil_kind == PY_GIL_STATICS)
        return mem_read(&rt->mem, rt->gil_switch_at, switches, sizeof *switches);
    if (rt->gil_kind == PY_GIL_LOCK27)
        return SE_FAULT; /* 2.7 counts no switches */
    uint64_t g = gil_addr(rt, interp);
    if (!g || rt->L.gil_switch_number < 0)
        return SE_FAULT;
    return mem_read(&rt->mem, g + (uint64_t)rt->L.gil_switch_number, switches, sizeof *switches);
}

int py_gil_range(struct py_runtime *rt, uint64_t interp, uint64_t *lo, uint64_t *hi)
{
    uint64_t g = gil_addr(rt, interp);
    if (!g)
        return SE_FAULT;
    *lo = g;
    *hi = g + (uint64_t)rt->L.gil_size;
    return 0;
}

/* glibc keeps the kernel tid inside struct pthread, whose address is the
 * pthread_t. Its offset is found once by matching the known tids of
 * /proc/PID/task against every thread's descriptor. */
#define PTHREAD_SCAN 2048
static void find_pthread_tid_off(struct py_runtime *rt, struct py_thread *th, int n)
{
    pid_t tasks[PY_MAX_THREADS];
    int nt = tasks_list(rt->pid, tasks, PY_MAX_THREADS);
    if (nt <= 0 || n <= 0)
        return;
    int nd = n < 8 ? n : 8;
    uint8_t (*desc)[PTHREAD_SCAN] = malloc((size_t)nd * PTHREAD_SCAN);
    if (!desc)
        return;
    for (int i = 0; i < nd; i++)
        if (mem_read(&rt->mem, th[i].ident, desc[i], PTHREAD_SCAN)) {
            free(desc);
            return;
        }
    /* 720 is the x86_64 glibc offset: prefer it when it fits. */
    int best = -1;
    for (int pass = 0; pass < 2 && best < 0; pass++) {
        for (int off = pass == 0 ? 720 : 0; off + 4 <= PTHREAD_SCAN; off += 4) {
            int ok = 1;
            for (int i = 0; i < nd && ok; i++) {
                int32_t v;
                memcpy(&v, desc[i] + off, 4);
                int hit = 0;
                for (int k = 0; k < nt && !hit; k++)
                    hit = tasks[k] == v;
                for (int j = 0; j < i && hit; j++) {
                    int32_t w;
                    memcpy(&w, desc[j] + off, 4);
                    hit = w != v;
                }
                ok = hit;
            }
            if (ok) {
                best = off;
                break;
            }
            if (pass == 0)
                break;
        }
    }
    free(desc);
    rt->pthread_tid_off = best;
}

static int threads_read(struct py_runtime *rt, struct py_thread *out, int max, int whole)
{
    const struct py_layout *L = &rt->L;
    size_t tsz = ts_size(L);
    uint64_t interp = py_runtime_main_interp(rt);
    int n = 0;
    for (int ni = 0; interp && ni < MAX_INTERPS; ni++) {
        uint64_t holder = 0;
        py_gil_holder(rt, interp, &holder);
        uint64_t ts;
        int rc = mem_read_ptr(&rt->mem, interp + (uint64_t)L->is_threads_head, &ts);
        if (rc)
            return rc;
        while (ts && n < max) {
            struct py_thread *t = &out[n];
            rc = mem_read(&rt->mem, ts, t->ts, tsz);
            if (rc)
                return rc == SE_EXITED || rc == SE_PERM || whole || !n ? rc : n;
            t->tstate = ts;
            t->interp = interp;
            t->ident = rdp(t->ts + L->ts_thread_id);
            t->tid = 0;
            if (L->ts_native_thread_id >= 0)
                t->tid = (pid_t)rdp(t->ts + L->ts_native_thread_id);
            t->holds_gil = holder == ts;
            uint64_t next = rdp(t->ts + L->ts_next);
            n++;
            if (next == ts)
                break;
            ts = next;
        }
        if (mem_read_ptr(&rt->mem, interp + (uint64_t)L->is_next, &interp))
            break;
    }
    if (L->ts_native_thread_id < 0 && n > 0) {
        if (rt->pthread_tid_off < 0)
            find_pthread_tid_off(rt, out, n);
        for (int i = 0; i < n && rt->pthread_tid_off >= 0; i++) {
            int32_t tid;
            if (!mem_read(&rt->mem, out[i].ident + (uint64_t)rt->pthread_tid_off, &tid, 4))
                out[i].tid = tid;
        }
    }
    return n;
}

int py_threads_read(struct py_runtime *rt, struct py_thread *out, int max)
{
    return threads_read(rt, out, max, 0);
}

int py_threads_read_whole(struct py_runtime *rt, struct py_thread *out, int max)
{
    return threads_read(rt, out, max, 1);
}

static int snapshot_slow(struct py_runtime *rt, struct py_snapcache *c, struct py_thread *out,
                         int max, uint64_t *switches)
{
    c->valid = 0;
    int n = py_threads_read(rt, out, max);
    if (n <= 0)
        return n;
    uint64_t interp = out[0].interp;
    py_gil_switches(rt, interp, switches);
    int single = 1;
    for (int i = 0; i < n; i++) {
        single &= out[i].interp == interp;
        c->tstate[i] = out[i].tstate;
        c->ident[i] = out[i].ident;
        c->tid[i] = out[i].tid;
    }
    c->n = n;
    c->interp = interp;
    c->gil = gil_addr(rt, interp);
    c->valid = single && c->gil && n < max;
    return n;
}

int py_threads_snapshot(struct py_runtime *rt, struct py_snapcache *c, struct py_thread *out,
                        int max, uint64_t *switches)
{
    const struct py_layout *L = &rt->L;
    enum { K = 7 }; /* iovs before the thread states */
    if (!c->valid || c->n > max || c->n + K > PY_MAX_THREADS)
        return snapshot_slow(rt, c, out, max, switches);
    static __thread struct mem_iov iov[PY_MAX_THREADS + K];
    uint64_t head = 0, next_interp = 0, first = 0;
    uint8_t gil[256];
    size_t tsz = ts_size(L);
    iov[0] = (struct mem_iov){ rt->runtime_addr + (uint64_t)L->rt_interpreters_head, &head, 8 };
    iov[1] = (struct mem_iov){ c->interp + (uint64_t)L->is_next, &next_interp, 8 };
    iov[2] = (struct mem_iov){ c->interp + (uint64_t)L->is_threads_head, &first, 8 };
    /* The GIL: the struct (3.7+); 3.6's static locked, holder and switch
     * counter; 2.7's lock pointer (unchanged?) and semaphore count. Before
     * 3.7 also the current thread state (see old_gil_holder). */
    int32_t locked = 0;
    uint64_t holder = 0, sw = 0, lockp = 0, cur = 0;
    size_t k = 3;
    if (rt->gil_kind == PY_GIL_STRUCT) {
        size_t gsz = (size_t)L->gil_size < sizeof gil ? (size_t)L->gil_size : sizeof gil;
        iov[k++] = (struct mem_iov){ c->gil, gil, gsz };
    } else {
        if (rt->gil_kind == PY_GIL_STATICS) {
            iov[k++] = (struct mem_iov){ rt->gil_locked_at, &locked, 4 };
            iov[k++] = (struct mem_iov){ rt->gil_holder_at, &holder, 8 };
            iov[k++] = (struct mem_iov){ rt->gil_switch_at, &sw, 8 };
        } else {
            iov[k++] = (struct mem_iov){ rt->gil_lo, &lockp, 8 };
            iov[k++] = (struct mem_iov){ c->gil, &locked, 4 }; /* the semaphore's count */
        }
        iov[k++] = (struct mem_iov){ rt->tstate_current, &cur, 8 };
    }
    for (int i = 0; i < c->n; i++)
        iov[k + (size_t)i] = (struct mem_iov){ c->tstate[i], out[i].ts, tsz };
    int rc = mem_readv(&rt->mem, iov, (size_t)c->n + k);
    if (rc == SE_EXITED || rc == SE_PERM)
        return rc;
    if (rc || head != c->interp || next_interp || first != c->tstate[0] ||
        (rt->gil_kind == PY_GIL_LOCK27 && lockp != c->gil))
        return snapshot_slow(rt, c, out, max, switches);
    for (int i = 0; i < c->n; i++) {
        uint64_t next = rdp(out[i].ts + L->ts_next);
        uint64_t ident = rdp(out[i].ts + L->ts_thread_id);
        if (next != (i + 1 < c->n ? c->tstate[i + 1] : 0) || ident != c->ident[i])
            return snapshot_slow(rt, c, out, max, switches);
    }
    switch (rt->gil_kind) {
    case PY_GIL_STRUCT:
        memcpy(&locked, gil + L->gil_locked, 4);
        holder = locked ? rdp(gil + L->gil_last_holder) : 0;
        sw = L->gil_switch_number >= 0 ? rdp(gil + L->gil_switch_number) : 0;
        break;
    case PY_GIL_STATICS:
        holder = locked > 0 ? holder : locked < 0 ? cur : 0;
        break;
    default:
        holder = locked == 0 ? cur : 0;
        break;
    }
    *switches = sw;
    for (int i = 0; i < c->n; i++) {
        out[i].tstate = c->tstate[i];
        out[i].interp = c->interp;
        out[i].ident = c->ident[i];
        out[i].tid = L->ts_native_thread_id >= 0 ? (pid_t)rdp(out[i].ts + L->ts_native_thread_id)
                                                 : c->tid[i];
        out[i].holds_gil = holder == c->tstate[i];
    }
    return c->n;
}

struct names_ctx {
    const struct py_thread *threads;
    int n;
    char (*names)[PY_NAME_MAX];
};

static int name_one(struct py_runtime *rt, uint64_t key, uint64_t value, void *arg)
{
    struct names_ctx *c = arg;
    uint64_t ident;
    if (py_long_read(rt, key, &ident))
        return 0;
    for (int i = 0; i < c->n; i++) {
        if (c->threads[i].ident != ident)
            continue;
        uint64_t name, nid_obj, nid;
        /* An ident is a pthread_t, which a thread started after this one
         * ended may carry: the registry read after the thread list can
         * name an ended thread after its successor. 3.8+ Threads know
         * their OS thread: a different one is not this thread. */
        if (c->threads[i].tid > 0 && (rt->major > 3 || (rt->major == 3 && rt->minor >= 8)) &&
            py_obj_attr(rt, value, "_native_id", &nid_obj) == 0 && nid_obj &&
            py_long_read(rt, nid_obj, &nid) == 0 && nid != (uint64_t)c->threads[i].tid)
            continue;
        /* 2.7 mangles Thread.__name */
        const char *attr = rt->major == 2 ? "_Thread__name" : "_name";
        if (py_obj_attr(rt, value, attr, &name) == 0 && name)
            py_str_read(rt, name, c->names[i], PY_NAME_MAX);
    }
    return 0;
}

/* threading._active: looked up through sys.modules once (hundreds of reads),
 * then remembered; the dict object lives as long as the module. */
static uint64_t find_active(struct py_runtime *rt)
{
    uint64_t interp = py_runtime_main_interp(rt), modules, threading, mdict, active;
    if (!interp || mem_read_ptr(&rt->mem, interp + (uint64_t)rt->L.is_modules, &modules) ||
        !modules || py_dict_get_str(rt, modules, "threading", &threading) || !threading ||
        mem_read_ptr(&rt->mem, threading + (uint64_t)rt->L.mod_dict, &mdict) || !mdict ||
        py_dict_get_str(rt, mdict, "_active", &active))
        return 0;
    return active;
}

int py_thread_names(struct py_runtime *rt, const struct py_thread *threads, int n,
                    char (*names)[PY_NAME_MAX])
{
    for (int i = 0; i < n; i++)
        names[i][0] = 0;
    struct names_ctx c = { threads, n, names };
    if (rt->threading_active &&
        py_dict_foreach(rt, rt->threading_active, PY_MAX_THREADS, name_one, &c) == 0)
        return 0;
    rt->threading_active = find_active(rt);
    if (!rt->threading_active)
        return 0; /* threading not imported (yet): no names */
    return py_dict_foreach(rt, rt->threading_active, PY_MAX_THREADS, name_one, &c);
}
