#include "tracer/sampler.h"

#include "common/err.h"
#include "common/state.h"
#include "common/thread.h"
#include "tracer/cpython/threads.h"
#include "tracer/classify.h"
#include "tracer/proc/maps.h"
#include "tracer/proc/task.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ================= sampler ================= */

#define MAX_TARGETS 64
#define WIN_ARENA (4 << 20)
#define SLOT_BITS 13 /* 8192 slots for up to PY_MAX_THREADS threads */
#define SIDE_SLOTS 4096 /* frames outside the windows read per tick, at most */
#define SIDE_BYTES 256  /* >= py_side_size() */

struct tslot {
    pid_t tid;         /* 0: free */
    struct proc_task task; /* its /proc files */
    int64_t last_cpu, last_delay, last_ts, last_pcount;
    int last_state;
    struct rec_frame *frames; /* last resolved stack (remember_stack) */
    int fcap, nframes, ftruncated, have_frames;
    uint64_t *side;    /* frames outside the window at the last walk (PY_SIDE_MAX) */
    int nside;
    struct classify_carry carry; /* error diffusion (tracer/classify.h) */
    uint64_t seen_tick;
    uint64_t ident;
    int named;
};

struct target {
    struct py_runtime rt;
    pid_t pid;
    int alive;
    struct tslot *slots;   /* hash by tid, 1 << SLOT_BITS */
    int nslots, nseen;     /* slots in use; of those, seen at this tick */
    uint64_t gil_lo, gil_hi, gil_interp;
    uint64_t switches0, switches_last;
    int64_t last_names_ts;
    int64_t names_backoff; /* next name refresh while some thread is unnamed */
    int need_names;
    struct py_snapcache snap;
    /* CPU the kernel counted for the whole process (threads that ended
     * included) against what the samples carried: the difference is CPU of
     * threads that were never sampled or ended between two samples. */
    uint64_t start_ticks;   /* the recording's start, clock ticks after boot */
    int64_t cpu0_ns;        /* at the first tick (0: started after the recording began); -1 unknown */
    int64_t charged_ns;     /* carried by this target's samples */
    int64_t unsampled_ns;   /* already recorded as unsampled */
    int64_t last_unsampled_ts;
    /* the process's CPU and charged_ns as last read together (every 10 ms:
     * a target reaped by its parent as it exits can no longer be read) */
    int fd_stat;
    int64_t stat_cpu_ns, stat_charged_ns, last_stat_ts;
    /* which program image the process runs: an exec replaces it under the
     * same pid (see check_exec) */
    uint64_t image_id;
    int64_t last_exec_check, exec_since;
    int exec_pending; /* 1: waiting for the new image's Python (since exec_since) */
    /* runtimes of images the process left: records still queued for the
     * writer point at their code objects, so they live as long as the sampler */
    struct py_runtime *retired[8];
    int nretired;
    int unsampled_named;
};

/* What pass 1 of a tick learns about one thread, for passes 2 and 3. */
struct thread_tick {
    struct tslot *sl;
    int64_t dcpu, wall;
    int state, reuse, flags;
    size_t raw_first; /* its frames in sampler.rawall (pass 3) */
    int nraw, truncated;
};

struct rejected {
    pid_t pid;
    char exe[128];
};

struct sampler {
    struct sampler_opts o;
    struct sample_queue *q;
    struct target *targets[MAX_TARGETS];
    int ntargets;
    pid_t roots[MAX_TARGETS];
    int nroots;
    struct rejected rejected[256];
    int nrejected;
    struct batch *cur;
    int64_t cur_since;
    int64_t t0;           /* monotonic ns at start */
    uint64_t t0_ticks;    /* the start in clock ticks after boot (thread start times) */
    struct sampler_stats st;
    struct py_thread threads[PY_MAX_THREADS];
    struct py_rawframe *rawall; /* every thread's frames at this tick */
    size_t rawcap;
    /* one scattered read per tick for every thread's top frame and window */
    struct py_stack_src src[PY_MAX_THREADS];
    struct thread_tick tick[PY_MAX_THREADS];
    int64_t winoff[PY_MAX_THREADS];
    struct mem_iov iov[2 * PY_MAX_THREADS + SIDE_SLOTS];
    uint8_t winbuf[WIN_ARENA];
    /* copies of frames outside the windows: thread i's are side_addr and
     * sidebuf entries [side_first[i], side_first[i] + side_count[i]) */
    int side_first[PY_MAX_THREADS], side_count[PY_MAX_THREADS];
    uint64_t side_addr[SIDE_SLOTS];
    uint8_t sidebuf[SIDE_SLOTS][SIDE_BYTES];
    struct py_side side;
    char names[PY_MAX_THREADS][PY_NAME_MAX];
};

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double process_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t ticks_to_ns(uint64_t ticks)
{
    static long hz;
    if (!hz)
        hz = sysconf(_SC_CLK_TCK) > 0 ? sysconf(_SC_CLK_TCK) : 100;
    return (int64_t)(ticks * (1000000000u / (uint64_t)hz));
}

/* ---- batch output ---- */

static void flush_batch(struct sampler *s)
{
    if (s->cur && s->cur->len) {
        squeue_push(s->q, s->cur);
        s->cur = NULL;
    }
}

/* Room for a record of size bytes, or NULL (sample dropped: consumer behind). */
static void *reserve(struct sampler *s, size_t size, int64_t now)
{
    size = (size + 7) & ~(size_t)7;
    if (s->cur && (s->cur->len + size > s->cur->cap || now - s->cur_since > 200000000))
        flush_batch(s);
    if (!s->cur) {
        s->cur = squeue_get_free(s->q);
        if (!s->cur)
            return NULL;
        s->cur_since = now;
    }
    if (size > s->cur->cap)
        return NULL;
    void *p = s->cur->buf + s->cur->len;
    s->cur->len += size;
    struct rec_hdr *h = p;
    h->size = (uint16_t)size;
    return p;
}

/* ---- per-thread /proc files ---- */

static struct tslot *slot_find(struct target *t, pid_t tid, int create)
{
    size_t mask = ((size_t)1 << SLOT_BITS) - 1;
    size_t i = ((size_t)tid * 2654435761u) & mask;
    for (size_t k = 0; k <= mask; k++, i = (i + 1) & mask) {
        if (t->slots[i].tid == tid)
            return &t->slots[i];
        if (t->slots[i].tid == 0) {
            if (!create)
                return NULL;
            struct tslot *sl = &t->slots[i];
            memset(sl, 0, sizeof *sl);
            sl->tid = tid;
            t->nslots++;
            sl->last_cpu = -1;
            sl->last_delay = -1;
            sl->last_pcount = -1;
            sl->last_state = -1;
            proc_task_open(&sl->task, t->pid, tid);
            /* A thread that started after the recording began is charged
             * its CPU from its start: the kernel's count begins at 0 then.
             * (One that ran before keeps the CPU of its first read as its
             * baseline: that CPU was spent before the recording.) */
            struct proc_stat ps;
            if (t->start_ticks && proc_task_stat_read(t->pid, tid, &ps) == 0 &&
                ps.starttime >= t->start_ticks) {
                sl->last_cpu = 0;
                sl->last_delay = 0;
                sl->last_pcount = 0;
            }
            return sl;
        }
    }
    return NULL;
}

static void slot_close(struct tslot *sl)
{
    proc_task_close(&sl->task);
    free(sl->frames);
    sl->frames = NULL;
    free(sl->side);
    sl->side = NULL;
    sl->nside = 0;
    sl->fcap = sl->nframes = sl->have_frames = 0;
}

/* Remove slots not seen at this tick (threads that ended), keeping the
 * open-addressing table consistent by rebuilding it. Rare. */
static void slots_sweep(struct target *t, uint64_t tick)
{
    size_t n = (size_t)1 << SLOT_BITS;
    if (t->nseen == t->nslots)
        return; /* every known thread was seen: nothing ended */
    struct tslot *old = t->slots;
    struct tslot *fresh = calloc(n, sizeof *fresh);
    if (!fresh)
        return;
    t->slots = fresh;
    for (size_t i = 0; i < n; i++) {
        if (!old[i].tid)
            continue;
        if (old[i].seen_tick != tick) {
            slot_close(&old[i]);
            t->nslots--;
            continue;
        }
        struct tslot *sl = NULL;
        size_t mask = n - 1, j = ((size_t)old[i].tid * 2654435761u) & mask;
        while (fresh[j].tid)
            j = (j + 1) & mask;
        sl = &fresh[j];
        *sl = old[i];
    }
    free(old);
}

/* ---- targets ---- */

static void target_setup(struct sampler *s, struct target *t, int64_t now);

static int add_target(struct sampler *s, pid_t pid, char *err, size_t errlen)
{
    if (s->ntargets >= MAX_TARGETS)
        return se_fail(err, errlen, -ENOSPC, "too many processes");
    struct target *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->fd_stat = -1;
    t->slots = calloc((size_t)1 << SLOT_BITS, sizeof *t->slots);
    int rc = t->slots ? py_runtime_attach(&t->rt, pid, err, errlen) : -ENOMEM;
    if (rc) {
        py_runtime_fini(&t->rt);
        free(t->slots);
        free(t);
        return rc;
    }
    t->pid = pid;
    t->alive = 1;
    t->start_ticks = s->t0_ticks;
    struct proc_stat ps;
    t->cpu0_ns = -1;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    t->fd_stat = open(path, O_RDONLY | O_CLOEXEC);
    /* A process that started after the recording began is charged from its
     * start; one that ran before, from its first tick, when its threads
     * take their baselines too (sample_target). */
    if (proc_stat_read(pid, &ps) == 0 && ps.starttime && ps.starttime >= s->t0_ticks)
        t->cpu0_ns = 0;
    t->image_id = proc_image_id(pid);
    s->targets[s->ntargets++] = t;
    s->st.processes++;
    target_setup(s, t, mono_ns());
    return 0;
}

/* What follows an attach (at the start, or to the new image after an
 * exec): the GIL's address, the switch counter, the process record. */
static void target_setup(struct sampler *s, struct target *t, int64_t now)
{
    t->need_names = 1;
    t->names_backoff = 5000000;
    t->gil_interp = py_runtime_main_interp(&t->rt);
    py_gil_range(&t->rt, t->gil_interp, &t->gil_lo, &t->gil_hi);
    py_gil_switches(&t->rt, t->gil_interp, &t->switches0);
    t->switches_last = t->switches0;
    struct rec_process *p = reserve(s, sizeof *p, now);
    if (p) {
        p->h.kind = REC_PROCESS;
        p->pid = t->pid;
        p->ppid = proc_ppid(t->pid);
        p->ts = now - s->t0;
        snprintf(p->version, sizeof p->version, "%s", t->rt.version);
        proc_cmdline(t->pid, p->cmd, sizeof p->cmd);
    }
}

static void target_free(struct target *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < ((size_t)1 << SLOT_BITS); i++)
        if (t->slots[i].tid)
            slot_close(&t->slots[i]);
    free(t->slots);
    if (t->fd_stat >= 0)
        close(t->fd_stat);
    py_runtime_fini(&t->rt);
    for (int i = 0; i < t->nretired; i++) {
        py_runtime_fini(t->retired[i]);
        free(t->retired[i]);
    }
    free(t);
}

int sampler_new(struct sampler **out, pid_t pid, const struct sampler_opts *o,
                struct sample_queue *q, char *err, size_t errlen)
{
    struct sampler *s = calloc(1, sizeof *s);
    if (!s)
        return se_fail(err, errlen, -ENOMEM, "out of memory");
    s->o = *o;
    if (s->o.rate_hz < 1)
        s->o.rate_hz = 1;
    if (s->o.rate_hz > 10000)
        s->o.rate_hz = 10000;
    s->q = q;
    s->t0 = mono_ns();
    s->t0_ticks = proc_boot_ticks_now();
    s->st.start_unix_ns = real_ns();
    s->st.start_mono_ns = s->t0;
    s->roots[s->nroots++] = pid;
    int rc = add_target(s, pid, err, errlen);
    if (rc) {
        sampler_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void sampler_free(struct sampler *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->ntargets; i++)
        target_free(s->targets[i]);
    free(s->rawall);
    free(s);
}

void sampler_get_stats(const struct sampler *s, struct sampler_stats *st)
{
    *st = s->st;
}

/* ---- one tick over one target ---- */

static void emit_names(struct sampler *s, struct target *t, int n, int64_t now)
{
    int unnamed = 0;
    if (py_thread_names(&t->rt, s->threads, n, s->names) != 0)
        s->st.errors++;
    for (int i = 0; i < n; i++) {
        /* tid 0: a thread still starting (no native id yet); slot_find
         * would take it for a free slot */
        struct tslot *sl = s->threads[i].tid > 0 ? slot_find(t, s->threads[i].tid, 0) : NULL;
        if (!sl)
            continue;
        /* A read that missed a thread (threading._active changing under
         * it, or failing outright) must not erase the name it had. */
        if (!s->names[i][0] && sl->named)
            continue;
        struct rec_thread *r = reserve(s, sizeof *r, now);
        if (!r)
            return;
        r->h.kind = REC_THREAD;
        r->pid = t->pid;
        r->tid = s->threads[i].tid;
        r->ident = s->threads[i].ident;
        memcpy(r->name, s->names[i], sizeof r->name);
        r->name[sizeof r->name - 1] = 0;
        sl->named = s->names[i][0] != 0;
        unnamed |= !sl->named;
    }
    /* A thread registers itself in threading._active a little after its
     * thread state appears: look again soon, backing off to the periodic
     * refresh for threads that never get a name (native threads). */
    t->need_names = unnamed && t->names_backoff < 1000000000;
    t->names_backoff = unnamed ? t->names_backoff * 4 : 5000000;
    t->last_names_ts = now;
}

/* Keep a thread's last resolved stack, to repeat it while the thread does
 * not run. Grows rarely (a deeper stack than ever before). */
static void remember_stack(struct tslot *sl, const struct rec_frame *f, int n, int truncated)
{
    if (n > sl->fcap) {
        int cap = n < 64 ? 64 : n;
        struct rec_frame *nf = realloc(sl->frames, (size_t)cap * sizeof *nf);
        if (!nf) {
            sl->have_frames = 0;
            return;
        }
        sl->frames = nf;
        sl->fcap = cap;
    }
    if (n)
        memcpy(sl->frames, f, (size_t)n * sizeof *f);
    sl->nframes = n;
    sl->ftruncated = truncated;
    /* a stack read short (torn, unreadable frame) is read again next time */
    sl->have_frames = truncated != PY_TRUNC_BROKEN;
}

/* Keep the frames a walk used outside the window, to read them with the
 * next tick's batch. */
static void remember_side(struct tslot *sl, const struct py_side *side)
{
    sl->nside = 0;
    if (!side->nused)
        return;
    if (!sl->side && !(sl->side = malloc(PY_SIDE_MAX * sizeof *sl->side)))
        return;
    memcpy(sl->side, side->used, (size_t)side->nused * sizeof *sl->side);
    sl->nside = side->nused;
}

/* The name of the row that carries a process's CPU that no sample saw. */
#define UNSAMPLED_NAME "(threads that ended between samples)"

/* Charge to one row per process the CPU the kernel counted for it (threads
 * that ended included) that its samples did not carry: threads that lived
 * between two ticks, the part of a thread's life after its last sample,
 * threads that never ran Python. Cumulative figures, so a late call
 * catches up; recorded once a second and when the target ends. */
static void read_process_cpu(struct target *t, int64_t now)
{
    char buf[1024];
    struct proc_stat ps;
    t->last_stat_ts = now;
    if (t->fd_stat < 0)
        return;
    ssize_t n = pread(t->fd_stat, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return;
    buf[n] = 0;
    if (proc_stat_parse(buf, &ps) == 0 && ps.starttime) {
        t->stat_cpu_ns = ticks_to_ns(ps.utime + ps.stime);
        t->stat_charged_ns = t->charged_ns;
    }
}

static void record_unsampled(struct sampler *s, struct target *t, int64_t now)
{
    t->last_unsampled_ts = now;
    read_process_cpu(t, now);
    if (t->cpu0_ns < 0 || !t->stat_cpu_ns)
        return;
    int64_t u = t->stat_cpu_ns - t->cpu0_ns - t->stat_charged_ns;
    /* the kernel counts in clock ticks: wait for a whole tick more */
    if (u - t->unsampled_ns < ticks_to_ns(1))
        return;
    if (!t->unsampled_named) {
        struct rec_thread *r = reserve(s, sizeof *r, now);
        if (!r)
            return;
        r->h.kind = REC_THREAD;
        r->pid = t->pid;
        r->tid = 0;
        r->ident = 0;
        snprintf(r->name, sizeof r->name, "%s", UNSAMPLED_NAME);
        t->unsampled_named = 1;
    }
    struct rec_sample *r = reserve(s, sizeof *r, now);
    if (!r)
        return;
    r->h.kind = REC_SAMPLE;
    r->state = STATE_IDLE;
    r->flags = 0;
    r->nframes = 0;
    r->pid = t->pid;
    r->tid = 0;
    r->ts = now - s->t0;
    r->cpu_ns = u - t->unsampled_ns;
    r->wall_ns = 0;
    t->unsampled_ns = u;
}

/* The target's thread list cannot be read: did it exec another program?
 * Then follow the new image if it runs Python (sampling resumes once its
 * interpreter is up), or end with the reason in the stats. Returns 1 while
 * the target is between two images (nothing to sample). */
static int check_exec(struct sampler *s, struct target *t, int64_t now)
{
    if (!t->exec_pending) {
        if (now - t->last_exec_check < 50000000)
            return 0;
        t->last_exec_check = now;
        uint64_t id = proc_image_id(t->pid);
        if (!id || !t->image_id || id == t->image_id)
            return 0;
        /* a new image: the old one's threads, code objects and addresses
         * are gone */
        for (size_t i = 0; i < ((size_t)1 << SLOT_BITS); i++)
            if (t->slots[i].tid)
                slot_close(&t->slots[i]);
        memset(t->slots, 0, ((size_t)1 << SLOT_BITS) * sizeof *t->slots);
        t->nslots = 0;
        t->exec_pending = 1;
        t->exec_since = now;
        struct py_runtime *old = t->nretired < 8 ? malloc(sizeof *old) : NULL;
        if (!old) {
            t->alive = 0;
            snprintf(s->st.stop_reason, sizeof s->st.stop_reason,
                     "process %d executed a new program too often: stopped following it", (int)t->pid);
            return 1;
        }
        *old = t->rt;
        t->retired[t->nretired++] = old;
    } else {
        py_runtime_fini(&t->rt); /* the previous try's */
    }
    memset(&t->rt, 0, sizeof t->rt);
    memset(&t->snap, 0, sizeof t->snap);
    char err[256] = "";
    int rc = py_runtime_attach(&t->rt, t->pid, err, sizeof err);
    if (rc == 0) {
        t->exec_pending = 0;
        t->image_id = proc_image_id(t->pid);
        target_setup(s, t, now);
        return 1;
    }
    /* Its interpreter may not be up yet, nor even its libpython mapped
     * (the dynamic loader runs first): a program that still looks like no
     * Python after half a second is not one. */
    int starting = rc == SE_NOTPYTHON && strstr(err, "no Python interpreter running");
    int64_t grace = starting ? 10000000000ll : 500000000ll;
    if (rc == SE_EXITED || rc == SE_NOPROC || proc_gone(t->pid)) {
        t->alive = 0;
    } else if (now > t->exec_since + grace) {
        t->alive = 0;
        char exe[160] = "";
        char link[64];
        snprintf(link, sizeof link, "/proc/%d/exe", (int)t->pid);
        ssize_t el = readlink(link, exe, sizeof exe - 1);
        exe[el > 0 ? el : 0] = 0;
        snprintf(s->st.stop_reason, sizeof s->st.stop_reason,
                 "stopped following process %d: it executed %s (%s)", (int)t->pid,
                 exe[0] ? exe : "another program", err);
    }
    return 1;
}

static void sample_target(struct sampler *s, struct target *t, int64_t now)
{
    if (t->exec_pending) {
        check_exec(s, t, now);
        return;
    }
    t->rt.now_ns = now;
    uint64_t sw = 0;
    int n = py_threads_snapshot(&t->rt, &t->snap, s->threads, PY_MAX_THREADS, &sw);
    if (n <= 0) {
        /* No thread at all: the interpreter is finalizing or the process left. */
        if (n == SE_EXITED || n == SE_PERM || proc_gone(t->pid)) {
            t->alive = 0;
            record_unsampled(s, t, now); /* a zombie still tells its CPU */
        } else if (!check_exec(s, t, now) && n < 0) {
            s->st.errors++;
        }
        return;
    }
    /* GIL waits are futex waits inside the GIL the snapshot reads: its
     * address is found again whenever the thread list changes, whereas a
     * process sonde launched may not have set it up yet at attach. */
    if (t->snap.gil && t->snap.gil != t->gil_lo) {
        t->gil_lo = t->snap.gil;
        t->gil_hi = t->snap.gil + (uint64_t)t->rt.L.gil_size;
    }
    if (t->cpu0_ns < 0 && !t->stat_cpu_ns) {
        read_process_cpu(t, now);
        t->cpu0_ns = t->stat_cpu_ns ? t->stat_cpu_ns : -1;
    }
    int64_t period = 1000000000 / s->o.rate_hz;
    int holder_tid = 0;
    uint32_t waiters = 0;
    t->nseen = 0;
    struct gil_view gv = { .nthreads = n, .switched = sw && sw != t->switches_last,
                          .lo = t->gil_lo, .hi = t->gil_hi };
    for (int i = 0; i < n; i++)
        if (s->threads[i].holds_gil)
            gv.holder = s->threads[i].tid;

    /* Pass 1: CPU time and state of every thread. A thread that was not put
     * on a CPU since its previous sample and used no CPU did not run: its
     * stack is the one read then, and if it was blocked it still is. */
    for (int i = 0; i < n; i++) {
        struct py_thread *th = &s->threads[i];
        struct thread_tick *tk = &s->tick[i];
        tk->sl = NULL;
        if (th->tid <= 0 || !(tk->sl = slot_find(t, th->tid, 1))) {
            s->st.errors++;
            continue;
        }
        struct tslot *sl = tk->sl;
        if (!sl->seen_tick || sl->ident != th->ident) {
            t->need_names = 1;
            t->names_backoff = 5000000;
            sl->have_frames = 0;
        }
        if (sl->seen_tick != s->st.ticks + 1)
            t->nseen++;
        sl->seen_tick = s->st.ticks + 1;
        sl->ident = th->ident;

        struct proc_schedstat ss;
        proc_task_schedstat(&sl->task, &ss);
        int64_t cpu = ss.cpu_ns, delay = ss.delay_ns, pcount = ss.pcount;
        int did_not_run = cpu >= 0 && cpu == sl->last_cpu && pcount == sl->last_pcount;
        tk->reuse = did_not_run && sl->have_frames;
        sl->last_pcount = pcount;
        tk->dcpu = cpu >= 0 && sl->last_cpu >= 0 && cpu >= sl->last_cpu ? cpu - sl->last_cpu : 0;
        int64_t ddelay = delay >= 0 && sl->last_delay >= 0 && delay >= sl->last_delay
                             ? delay - sl->last_delay : 0;
        if (cpu >= 0)
            sl->last_cpu = cpu;
        sl->last_delay = delay;
        tk->wall = sl->last_ts ? now - sl->last_ts : period;
        sl->last_ts = now;

        struct classify_evidence ev = {
            .holds_gil = th->holds_gil,
            .did_not_run = did_not_run,
            .last_state = sl->last_state,
            .dcpu = tk->dcpu,
            .ddelay = ddelay,
            .gil = gv,
            .kstack = PROC_KSTACK_UNKNOWN,
        };
        if (classify_wants_syscall(&ev)) {
            proc_task_syscall(&sl->task, &ev.sys);
            if (classify_wants_kstack(&ev))
                ev.kstack = proc_task_kstack(&sl->task);
        }
        int state = classify_state(&ev, &sl->carry);
        sl->last_state = state;
        tk->state = state;
        tk->flags = state == STATE_GIL && classify_holder_off_cpu(&ev, &sl->carry)
                        ? SAMPLE_GIL_OFFCPU : 0;
        if (th->holds_gil)
            holder_tid = th->tid;
        if (state == STATE_GIL_WAIT)
            waiters++;
    }

    /* Pass 2: the top frame pointer and data-stack window of every thread
     * that ran, and the frames outside the window its previous walk used,
     * in one scattered read. */
    size_t niov = 0, arena = 0, nside = 0;
    struct mem_iov *side_iov = s->iov + 2 * PY_MAX_THREADS;
    size_t ssz = py_side_size(&t->rt);
    for (int i = 0; i < n; i++) {
        struct py_stack_src *src = &s->src[i];
        struct tslot *sl = s->tick[i].sl;
        s->winoff[i] = -1;
        s->side_count[i] = 0;
        if (!sl || s->tick[i].reuse)
            continue;
        py_stack_source(&t->rt, s->threads[i].ts, src);
        if (src->frame_ptr)
            s->iov[niov++] = (struct mem_iov){ src->frame_ptr, &src->frame, 8 };
        size_t wsz = (size_t)(src->win_hi - src->win_lo);
        if (src->win_hi && arena + wsz <= WIN_ARENA) {
            s->winoff[i] = (int64_t)arena;
            s->iov[niov++] = (struct mem_iov){ src->win_lo, s->winbuf + arena, wsz };
            arena += wsz;
        }
        s->side_first[i] = (int)nside;
        for (int k = 0; k < sl->nside && nside < SIDE_SLOTS && ssz <= SIDE_BYTES; k++) {
            s->side_addr[nside] = sl->side[k];
            side_iov[nside] = (struct mem_iov){ sl->side[k], s->sidebuf[nside], ssz };
            nside++;
            s->side_count[i]++;
        }
    }
    /* The side frames follow the windows in the same system call; should
     * one have gone (a finished generator's memory unmapped), the windows
     * are read again alone and every side frame is read when needed. */
    if (nside)
        memmove(s->iov + niov, side_iov, nside * sizeof *side_iov);
    int side_ok = 1, batched = 1;
    if (niov + nside && mem_readv(&t->rt.mem, s->iov, niov + nside) != 0) {
        side_ok = 0;
        batched = niov == 0 || mem_readv(&t->rt.mem, s->iov, niov) == 0;
    }

    /* Pass 3: walk the stacks that were read, into rawall. */
    size_t nraw = 0;
    for (int i = 0; i < n; i++) {
        struct py_thread *th = &s->threads[i];
        struct thread_tick *tk = &s->tick[i];
        struct tslot *sl = tk->sl;
        tk->raw_first = nraw;
        tk->nraw = 0;
        tk->truncated = 0;
        if (!sl || tk->reuse)
            continue;
        if (nraw + PY_MAX_DEPTH > s->rawcap) {
            size_t cap = s->rawcap ? s->rawcap * 2 : 4 * PY_MAX_DEPTH;
            struct py_rawframe *r = realloc(s->rawall, cap * sizeof *r);
            if (!r) {
                s->st.errors++;
                continue;
            }
            s->rawall = r;
            s->rawcap = cap;
        }
        struct py_rawframe *raw = s->rawall + nraw;
        int truncated = 0, nf;
        if (batched) {
            const struct py_stack_src *src = &s->src[i];
            const uint8_t *w = s->winoff[i] >= 0 ? s->winbuf + s->winoff[i] : NULL;
            struct py_side *side = &s->side;
            side->n = side_ok ? s->side_count[i] : 0;
            side->addr = s->side_addr + s->side_first[i];
            side->buf = &s->sidebuf[0][0] + (size_t)s->side_first[i] * SIDE_BYTES;
            side->stride = SIDE_BYTES;
            nf = src->frame ? py_stack_walk(&t->rt, src->frame, w, src->win_lo, src->win_hi, side,
                                            raw, PY_MAX_DEPTH, &truncated)
                            : 0;
            remember_side(sl, side);
        } else {
            nf = py_stack_read(&t->rt, th->tstate, th->ts, raw, PY_MAX_DEPTH, &truncated);
            sl->nside = 0;
        }
        if (nf < 0) {
            s->st.errors++;
            nf = 0;
            truncated = PY_TRUNC_BROKEN;
        }
        tk->nraw = nf;
        tk->truncated = truncated;
        nraw += (size_t)nf;
    }
    /* Code objects due for their periodic check, all in one read. */
    py_code_recheck(&t->rt, s->rawall, (int)nraw);

    /* Pass 4: one sample record per thread. */
    for (int i = 0; i < n; i++) {
        struct py_thread *th = &s->threads[i];
        struct thread_tick *tk = &s->tick[i];
        struct tslot *sl = tk->sl;
        if (!sl)
            continue;
        int nf = tk->reuse ? sl->nframes : tk->nraw;
        struct rec_sample *r =
            reserve(s, sizeof *r + (size_t)nf * sizeof(struct rec_frame), now);
        if (!r) {
            s->st.dropped++;
            continue;
        }
        r->h.kind = REC_SAMPLE;
        r->state = (uint8_t)tk->state;
        int trunc = tk->reuse ? sl->ftruncated : tk->truncated;
        r->flags = (uint8_t)(tk->flags | (trunc ? SAMPLE_TRUNCATED : 0));
        r->pid = t->pid;
        r->tid = th->tid;
        r->ts = now - s->t0;
        r->cpu_ns = tk->dcpu;
        r->wall_ns = tk->wall;
        int k = 0;
        if (tk->reuse) {
            if (nf)
                memcpy(r->frames, sl->frames, (size_t)nf * sizeof *r->frames);
            k = nf;
        } else {
            const struct py_rawframe *raw = s->rawall + tk->raw_first;
            for (int f = 0; f < nf; f++) {
                const struct py_code *co = py_code_get(&t->rt, raw[f].code);
                if (!co) {
                    trunc = PY_TRUNC_BROKEN;
                    r->flags |= SAMPLE_TRUNCATED;
                    continue; /* drop a frame we cannot trust */
                }
                r->frames[k].code = co;
                r->frames[k].line = py_code_line(&t->rt, co, raw[f].addr);
                r->frames[k].pad = 0;
                k++;
            }
            remember_stack(sl, r->frames, k, trunc);
        }
        r->nframes = (uint16_t)k;
        /* a stack deeper than the cap keeps its innermost frames: counted
         * apart, it is not an error */
        if (trunc == PY_TRUNC_BROKEN)
            s->st.errors++;
        else if (trunc == PY_TRUNC_DEPTH)
            s->st.truncated++;
        t->charged_ns += tk->dcpu;
        s->st.samples++;
    }
    if (sw)
        t->switches_last = sw;
    struct rec_gil *g = reserve(s, sizeof *g, now);
    if (g) {
        g->h.kind = REC_GIL;
        g->pid = t->pid;
        g->holder_tid = holder_tid;
        g->ts = now - s->t0;
        g->switches = sw;
        g->waiters = waiters;
    }
    slots_sweep(t, s->st.ticks + 1);
    /* Names: as soon as a thread appears (at most every 5 ms; reading them
     * is one small dict walk once threading._active is known), and every
     * second in case one was renamed. */
    if ((t->need_names && now - t->last_names_ts >= t->names_backoff) ||
        now - t->last_names_ts > 1000000000)
        emit_names(s, t, n, now);
    if (now - t->last_unsampled_ts >= 1000000000)
        record_unsampled(s, t, now);
    else if (now - t->last_stat_ts >= 10000000)
        read_process_cpu(t, now);
}

/* ---- following children ---- */

static int is_descendant(const struct sampler *s, pid_t pid)
{
    for (int depth = 0; depth < 32 && pid > 1; depth++) {
        pid = proc_ppid(pid);
        for (int i = 0; i < s->nroots; i++)
            if (pid == s->roots[i])
                return 1;
        for (int i = 0; i < s->ntargets; i++)
            if (pid == s->targets[i]->pid)
                return 1;
    }
    return 0;
}

static void scan_children(struct sampler *s)
{
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        pid_t pid = (pid_t)atoi(de->d_name);
        int known = 0;
        for (int i = 0; i < s->ntargets && !known; i++)
            known = s->targets[i]->pid == pid;
        if (known || !is_descendant(s, pid))
            continue;
        char link[64], exe[128] = "";
        snprintf(link, sizeof link, "/proc/%d/exe", (int)pid);
        ssize_t el = readlink(link, exe, sizeof exe - 1);
        exe[el > 0 ? el : 0] = 0;
        int rej = -1;
        for (int i = 0; i < s->nrejected; i++)
            if (s->rejected[i].pid == pid)
                rej = i;
        if (rej >= 0 && strcmp(s->rejected[rej].exe, exe) == 0)
            continue;
        char err[256];
        int rc = add_target(s, pid, err, sizeof err);
        if (rc == SE_NOTPYTHON && strstr(err, "no Python interpreter running"))
            continue; /* starting up: try again at the next scan */
        if (rc) {
            if (rej < 0 && s->nrejected < 256)
                rej = s->nrejected++;
            if (rej >= 0) {
                s->rejected[rej].pid = pid;
                snprintf(s->rejected[rej].exe, sizeof s->rejected[rej].exe, "%s", exe);
            }
        }
    }
    closedir(d);
}

/* ---- the loop ---- */

static void progress(struct sampler *s, int64_t now, int final)
{
    if (s->o.progress_fd < 0)
        return;
    double el = (double)(now - s->t0) / 1e9;
    char line[256];
    int n = snprintf(line, sizeof line,
                     "\r\033[Krecording %d process%s: %.1f s, %" PRIu64 " samples, %.0f Hz of %d, %" PRIu64
                     " errors%s",
                     s->ntargets, s->ntargets == 1 ? "" : "es", el, s->st.samples,
                     el > 0 ? (double)s->st.ticks / el : 0.0, s->o.rate_hz, s->st.errors,
                     final ? "\n" : "");
    if (write(s->o.progress_fd, line, (size_t)n) < 0)
        s->o.progress_fd = -1;
}

/* sched_setattr(2): glibc has no wrapper. */
#define SCHED_OTHER_POLICY 0
struct sched_attr_v1 {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
    uint32_t util_min, util_max;
};

/* The time slice the kernel reports for this thread: the one asked for
 * only where custom slices exist (Linux 6.12+; before, sched_setattr
 * accepts one and ignores it). */
static uint64_t granted_slice(void)
{
#ifdef SYS_sched_getattr
    struct sched_attr_v1 a;
    memset(&a, 0, sizeof a);
    if (syscall(SYS_sched_getattr, 0, &a, (unsigned)sizeof a, 0) == 0)
        return a.runtime;
#endif
    return 0;
}

static int set_fair_attr(int nice, uint64_t slice_ns)
{
#ifdef SYS_sched_setattr
    struct sched_attr_v1 a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.policy = SCHED_OTHER_POLICY;
    a.nice = nice;
    a.runtime = slice_ns;
    return (int)syscall(SYS_sched_setattr, 0, &a, 0);
#else
    (void)nice;
    (void)slice_ns;
    errno = ENOSYS;
    return -1;
#endif
}

/* Make the sampling thread wake up on time, without disturbing the target
 * more than the rate needs. Three things delay a tick on a machine whose
 * CPUs the target keeps busy:
 *  - timer slack: the default 50 us alone caps a 10 kHz loop near 6 kHz;
 *  - the fair scheduler lets the running thread finish its time slice
 *    (milliseconds) before a woken one runs: a thread may ask for a short
 *    slice (sched_setattr, Linux 6.12+), which lets it preempt on wake-up;
 *  - its weight: where allowed (root, CAP_SYS_NICE) nice -10.
 * Preempting is not free: the thread it preempts is often the GIL holder,
 * and every other thread then waits too. Measured on a 2-CPU VM with 4
 * busy target threads (scripts/bench record, paired windows):
 *  - at 100 Hz and 1 kHz the default slice keeps 97-100% of the ticks on
 *    time; the short slice would cost the target 1.1-1.4%, while nice -5
 *    with the default slice costs +0.25% (interval -0.4..+0.8%);
 *  - at 10 kHz the default slice keeps 82-85% of the ticks, the short
 *    slice with nice -10 96-99%, for a slowdown of about 8% instead of 3%.
 * So above 1 kHz: the short slice and nice -10; at 1 kHz and below: nice
 * -5 only. Each step falls back quietly (unprivileged users keep their
 * nice); a real-time policy is not used, as an overrun would starve the
 * target's CPU. Describes what it got in out (meta sampler_sched). */
static void sched_setup(int rate_hz, char *out, size_t outlen)
{
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    const uint64_t slice = 100000; /* the shortest the kernel accepts */
    int nice = thread_nice();
    int want = rate_hz > 1000 ? -10 : -5;
    if (want > nice)
        want = nice; /* never less urgent than it was started */
    int asked = rate_hz > 1000 && (set_fair_attr(want, slice) == 0 || set_fair_attr(nice, slice) == 0);
    if (!asked)
        (void)thread_set_nice(want);
    nice = thread_nice();
    if (asked && granted_slice() == slice)
        snprintf(out, outlen, "nice %d, slice %d us", nice, (int)(slice / 1000));
    else
        snprintf(out, outlen, "nice %d, default slice", nice);
}

/* Duty cycle (--duty, benchmarks only): ticks fall in the even
 * duty_ns-long windows of CLOCK_MONOTONIC. The time t, or the start of the
 * next even window when t falls in an odd one. */
static int64_t duty_start(const struct sampler *s, int64_t t)
{
    int64_t d = s->o.duty_ns;
    return d > 0 && (t / d) % 2 ? (t / d + 1) * d : t;
}

/* Sleep until CLOCK_MONOTONIC reaches t, or a stop is asked for. */
static void sleep_until(const struct sampler *s, int64_t t)
{
    struct timespec ts = { (time_t)(t / 1000000000), (long)(t % 1000000000) };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        if (s->o.stop && *s->o.stop)
            break;
}

int sampler_run(struct sampler *s)
{
    sched_setup(s->o.rate_hz, s->st.sched, sizeof s->st.sched);
    int64_t period = 1000000000 / s->o.rate_hz;
    int64_t end = s->o.duration_s > 0 ? s->t0 + (int64_t)(s->o.duration_s * 1e9) : INT64_MAX;
    int64_t next = mono_ns();
    int64_t last_scan = 0, last_progress = 0;
    double cpu0 = thread_cpu_s(), pcpu0 = process_cpu_s();
    for (;;) {
        int64_t now = mono_ns();
        if (now >= end || (s->o.stop && *s->o.stop))
            break;
        if (duty_start(s, now) != now) {
            /* woken too late for an even window: no tick in the odd one */
            next = duty_start(s, now);
            sleep_until(s, next);
            continue;
        }
        int alive = 0;
        for (int i = 0; i < s->ntargets; i++) {
            struct target *t = s->targets[i];
            if (!t->alive)
                continue;
            sample_target(s, t, now);
            alive += t->alive;
        }
        s->st.ticks++;
        if (s->o.subprocesses && now - last_scan > 200000000) {
            scan_children(s);
            last_scan = now;
            alive = 0;
            for (int i = 0; i < s->ntargets; i++)
                alive += s->targets[i]->alive;
        }
        if (!alive)
            break;
        if (now - last_progress > 250000000) {
            progress(s, now, 0);
            last_progress = now;
        }
        next += period;
        now = mono_ns();
        if (next + 2 * period < now) {
            /* Far behind (the machine was busy): skip the ticks we missed
             * rather than bursting. */
            int64_t missed = (now - next) / period;
            s->st.late_ticks += (uint64_t)missed;
            next += missed * period;
        }
        next = duty_start(s, next);
        /* A little late (a wake-up takes tens of microseconds on a virtual
         * machine): take the next sample at once and stay on the schedule;
         * every sample's wall time is the time that really passed. */
        if (next > now)
            sleep_until(s, next);
    }
    int64_t now = mono_ns();
    for (int i = 0; i < s->ntargets; i++)
        if (s->targets[i]->alive)
            record_unsampled(s, s->targets[i], now);
    s->st.duration_ns = now - s->t0;
    s->st.cpu_s = thread_cpu_s() - cpu0;
    s->st.process_cpu_s = process_cpu_s() - pcpu0;
    progress(s, now, 1);
    flush_batch(s);
    squeue_close(s->q);
    return 0;
}

uint64_t sampler_gil_switches(const struct sampler *s)
{
    uint64_t total = 0;
    for (int i = 0; i < s->ntargets; i++) {
        struct target *t = s->targets[i];
        if (t->switches_last >= t->switches0)
            total += t->switches_last - t->switches0;
    }
    return total;
}
