/* tracer: one tick of the sampler over one target (its passes: states,
 * one scattered read, stack walks, records), the per-thread slots, names,
 * unsampled CPU and exec detection. Runs on the sampling thread only. */
#include "tracer/sampler_impl.h"

#include "common/err.h"
#include "common/state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static int64_t ticks_to_ns(uint64_t ticks)
{
    static long hz;
    if (!hz)
        hz = sysconf(_SC_CLK_TCK) > 0 ? sysconf(_SC_CLK_TCK) : 100;
    return (int64_t)(ticks * (1000000000u / (uint64_t)hz));
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
            t->occ[t->nslots++] = (uint16_t)i;
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

void slot_close(struct tslot *sl)
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
 * open-addressing table consistent by rebuilding it, and tell the consumer
 * they ended (REC_THREAD_END). Rare. */
static void slots_sweep(struct sampler *s, struct target *t, uint64_t tick, int64_t now)
{
    size_t n = (size_t)1 << SLOT_BITS;
    if (t->nseen == t->nslots)
        return; /* every known thread was seen: nothing ended */
    struct tslot *old = t->slots;
    struct tslot *fresh = calloc(n, sizeof *fresh);
    if (!fresh)
        return;
    t->slots = fresh;
    int was = t->nslots, kept = 0;
    for (int k = 0; k < was; k++) {
        size_t i = t->occ[k];
        if (old[i].seen_tick != tick) {
            /* a thread list read while it changed can miss a live thread:
             * only a thread the kernel no longer has has ended */
            int gone = syscall(SYS_tgkill, t->pid, old[i].tid, 0) != 0 && errno == ESRCH;
            struct rec_thread_end *e = gone ? reserve(s, sizeof *e, now) : NULL;
            if (gone) /* (its id may be a new thread's next) */
                green_thread_ended(t, old[i].tid);
            if (e) {
                e->h.kind = REC_THREAD_END;
                e->pid = t->pid;
                e->tid = old[i].tid;
                e->ts = now - s->t0;
            }
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
        t->occ[kept++] = (uint16_t)j; /* kept <= k: the old index was read */
    }
    free(old);
}

/* ---- one tick over one target ---- */

static void emit_names(struct sampler *s, struct target *t, int n, int64_t now)
{
    int unnamed = 0;
    if (py_thread_names(&t->rt, s->threads, n, s->names) != 0) {
        s->st.errors++;
        s->st.err_names++;
    }
    for (int i = 0; i < n; i++) {
        /* tid 0: a thread still starting (no native id yet); slot_find
         * would take it for a free slot */
        struct tslot *sl = s->threads[i].tid > 0 ? slot_find(t, s->threads[i].tid, 0) : NULL;
        if (!sl)
            continue;
        char *name = s->names[i];
        int py = name[0] != 0;
        /* A read that missed a thread (threading._active changing under
         * it, or failing outright) must not erase the name it had. */
        if (!py && sl->named == 2)
            continue;
        if (!py) {
            /* Not (yet) in threading._active: a thread Python did not start
             * (an embedding host's), the main thread of a program that
             * never imported threading, or a Thread about to register. Its
             * OS name stands in until a Python name shows up; recorded
             * again only when it changes. */
            proc_task_comm(t->pid, s->threads[i].tid, name, sizeof sl->osname);
            if (!name[0] || (sl->named == 1 && strcmp(name, sl->osname) == 0)) {
                unnamed = 1;
                continue;
            }
            memcpy(sl->osname, name, sizeof sl->osname);
        }
        struct rec_thread *r = reserve(s, sizeof *r, now);
        if (!r)
            return;
        r->h.kind = REC_THREAD;
        r->pid = t->pid;
        r->tid = s->threads[i].tid;
        r->ident = s->threads[i].ident;
        memcpy(r->name, name, sizeof r->name);
        r->name[sizeof r->name - 1] = 0;
        sl->named = py ? 2 : 1;
        unnamed |= !py;
    }
    /* A thread registers itself in threading._active a little after its
     * thread state appears: look again soon, backing off to the periodic
     * refresh for threads that never get a Python name (native threads). */
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
static void read_process_cpu(const struct sampler *s, struct target *t, int64_t now)
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
        if (s->o.own_cpu_ns) /* the agent's threads are not the program's */
            t->stat_cpu_ns -= s->o.own_cpu_ns(s->o.own_cpu_ctx);
        t->stat_charged_ns = t->charged_ns;
    }
}

void record_unsampled(struct sampler *s, struct target *t, int64_t now)
{
    t->last_unsampled_ts = now;
    read_process_cpu(s, t, now);
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
    r->green = r->pad = 0;
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
        for (int k = 0; k < t->nslots; k++) {
            slot_close(&t->slots[t->occ[k]]);
            memset(&t->slots[t->occ[k]], 0, sizeof *t->slots);
        }
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
        if (t->nat) { /* records still queued name its symbols */
            t->nat_retired[t->nnat_retired++] = t->nat;
            t->nat = NULL;
        }
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

/* Pass 1: CPU time and state of every thread. A thread that was not put
 * on a CPU since its previous sample and used no CPU did not run: its
 * stack is the one read then, and if it was blocked it still is. */
static void pass_states(struct sampler *s, struct target *t, int n, int64_t now,
                        const struct gil_view *gv, int *holder_tid, uint32_t *waiters)
{
    int64_t period = 1000000000 / s->o.rate_hz;
    for (int i = 0; i < n; i++) {
        struct py_thread *th = &s->threads[i];
        struct thread_tick *tk = &s->tick[i];
        tk->sl = NULL;
        if (th->tid <= 0 || !(tk->sl = slot_find(t, th->tid, 1))) {
            s->st.errors++;
            s->st.err_thread++;
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
        tk->reuse = sl->have_frames && cpu >= 0 && cpu == sl->walk_cpu && pcount == sl->walk_pcount;
        tk->prev_cpu = sl->last_cpu;
        tk->prev_pcount = sl->last_pcount;
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
            .wall = tk->wall,
            .gil = *gv,
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
            *holder_tid = th->tid;
        if (state == STATE_GIL_WAIT)
            (*waiters)++;
    }
}

/* Pass 2: the top frame pointer and data-stack window of every thread
 * that ran, and the frames outside the window its previous walk used,
 * in one scattered read. */
static int pass_gather(struct sampler *s, struct target *t, int n, int *side_ok_out)
{
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
    *side_ok_out = side_ok;
    return batched;
}

/* With native frames (sampler_opts.native): stop thread i for an instant,
 * read its Python stack into raw and its native stack, merged into mgall.
 * 0 (tk->native set), or negative when it could not be stopped (sampled
 * with its Python frames alone, counted in native_failed). */
static int native_walk(struct sampler *s, struct target *t, int i, struct py_rawframe *raw,
                       int *nf, int *truncated)
{
    struct thread_tick *tk = &s->tick[i];
    size_t used = s->mg_used;
    const size_t need = NAT_MERGED_MAX;
    if (!t->nat) {
        s->st.native_failed++;
        return -ENOENT;
    }
    if (used + need > s->mgcap) {
        size_t cap = s->mgcap ? s->mgcap * 2 : 4 * need;
        while (cap < used + need)
            cap *= 2;
        struct rec_frame *m = realloc(s->mgall, cap * sizeof *m);
        if (!m) {
            s->st.native_failed++;
            return -ENOMEM;
        }
        s->mgall = m;
        s->mgcap = cap;
    }
    int nattrunc = 0;
    int64_t hold = 0;
    int k = s->o.native->walk(t->nat, &t->rt, &s->threads[i], s->o.native_all, raw, PY_MAX_DEPTH,
                              nf, truncated, s->mgall + used, (int)need, &nattrunc, &hold);
    if (hold > s->st.native_hold_max_ns)
        s->st.native_hold_max_ns = hold;
    s->st.native_hold_sum_ns += hold;
    if (k < 0) {
        s->st.native_failed++;
        return k;
    }
    s->st.native_samples++;
    s->st.native_truncated += nattrunc != 0;
    tk->native = 1;
    tk->mg_first = used;
    tk->nmg = k;
    s->mg_used = used + (size_t)k;
    return 0;
}

/* Pass 3: walk the stacks that were read, into rawall. */
static void pass_walk(struct sampler *s, struct target *t, int n, int batched, int side_ok)
{
    size_t nraw = 0;
    s->mg_used = 0;
    for (int i = 0; i < n; i++) {
        struct py_thread *th = &s->threads[i];
        struct thread_tick *tk = &s->tick[i];
        struct tslot *sl = tk->sl;
        tk->raw_first = nraw;
        tk->nraw = 0;
        tk->truncated = 0;
        tk->bottom = 0;
        tk->native = 0;
        if (!sl || tk->reuse)
            continue;
        if (nraw + PY_MAX_DEPTH > s->rawcap) {
            size_t cap = s->rawcap ? s->rawcap * 2 : 4 * PY_MAX_DEPTH;
            struct py_rawframe *r = realloc(s->rawall, cap * sizeof *r);
            if (!r) {
                s->st.errors++;
                s->st.err_other++;
                continue;
            }
            s->rawall = r;
            s->rawcap = cap;
        }
        struct py_rawframe *raw = s->rawall + nraw;
        int truncated = 0, nf;
        tk->native = 0;
        t->rt.walk_bottom = 0;
        if (s->o.native && native_walk(s, t, i, raw, &nf, &truncated) == 0) {
            sl->nside = 0;
        } else if (batched) {
            const struct py_stack_src *src = &s->src[i];
            const uint8_t *w = s->winoff[i] >= 0 ? s->winbuf + s->winoff[i] : NULL;
            struct py_side *side = &s->side;
            side->n = side_ok ? s->side_count[i] : 0;
            side->addr = s->side_addr + s->side_first[i];
            side->buf = &s->sidebuf[0][0] + (size_t)s->side_first[i] * SIDE_BYTES;
            side->stride = SIDE_BYTES;
            side->want = tk->green_frame;
            nf = src->frame ? py_stack_walk(&t->rt, src->frame, w, src->win_lo, src->win_hi, side,
                                            raw, PY_MAX_DEPTH, &truncated)
                            : 0;
            remember_side(sl, side);
            /* met its task's coroutine frame? (unknown when only the
             * innermost frames of a deeper stack were kept, or a torn
             * read cut the walk short) */
            tk->green_seen = truncated ? -1 : src->frame ? side->want_seen : 0;
        } else {
            nf = py_stack_read(&t->rt, th->tstate, th->ts, raw, PY_MAX_DEPTH, &truncated);
            sl->nside = 0;
        }
        uint64_t bottom = tk->native ? 0 : t->rt.walk_bottom;
        /* A torn read (a generator that yielded after its frame's address
         * was read, a frame freed): the stack is read again, fresh, a few
         * times at most (a thread in a loop over a generator has its frame
         * suspended much of the time: a fifth of the second reads were torn
         * again). A stopped thread's stack (native) is not torn. */
        for (int k = 0; !tk->native && nf >= 0 && k < PY_STACK_RETRIES && truncated == PY_TRUNC_BROKEN;
             k++) {
            int t2 = 0;
            struct py_side *side = &s->side;
            if (!py_thread_still(&t->rt, th))
                break; /* its state is another thread's now */
            side->want = tk->green_frame;
            int n2 = py_stack_read_side(&t->rt, th->tstate, side, raw, PY_MAX_DEPTH, &t2);
            if (n2 < 0)
                break;
            nf = n2;
            truncated = t2;
            bottom = t->rt.walk_bottom;
            /* read later than the running task was: its coroutine must be
             * on this stack too for the sample to be the task's */
            tk->green_seen = t2 ? -1 : n2 ? side->want_seen : 0;
            s->st.walk_retries++;
        }
        if (nf < 0) { /* counted with its sample (pass_emit), once */
            nf = 0;
            truncated = PY_TRUNC_BROKEN;
        }
        tk->nraw = nf;
        tk->truncated = truncated;
        tk->bottom = nf > 0 && !truncated ? bottom : 0;
        nraw += (size_t)nf;
        green_walked(s, t, i);
    }
    s->rawused = nraw;
    /* Code objects due for their periodic check, all in one read. */
    py_code_recheck(&t->rt, s->rawall, (int)nraw);
}

/* Pass 4: one sample record per thread. */
int frames_resolve(struct py_runtime *rt, const struct py_rawframe *raw, int n,
                   struct rec_frame *out)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        const struct py_code *co = py_code_get(rt, raw[i].code);
        if (!co)
            continue; /* drop a frame we cannot trust */
        out[k].code = co;
        out[k].line = py_code_line(rt, co, raw[i].addr);
        out[k].pad = 0;
        k++;
    }
    return k;
}

/* A merged stack (native_walk) into records' frames: native frames as
 * they are, Python ones resolved as frames_resolve does. */
static int merged_resolve(struct py_runtime *rt, const struct py_rawframe *raw, int nraw,
                          const struct rec_frame *mg, int n, struct rec_frame *out)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (mg[i].native)
            out[k++] = mg[i];
        else if (mg[i].line >= 0 && mg[i].line < nraw)
            k += frames_resolve(rt, raw + mg[i].line, 1, out + k);
    }
    return k;
}

static void pass_emit(struct sampler *s, struct target *t, int n, int64_t now)
{
    for (int i = 0; i < n; i++) {
        struct py_thread *th = &s->threads[i];
        struct thread_tick *tk = &s->tick[i];
        struct tslot *sl = tk->sl;
        if (!sl)
            continue;
        int nf = tk->reuse ? sl->nframes : tk->native ? tk->nmg : tk->nraw;
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
        r->green = tk->green;
        r->span = 0;
        if (s->o.span_of) {
            if (tk->reuse) /* the last walk's stack: its task's or greenlet's */
                tk->span_race |= sl->walk_race || sl->walk_green_addr != tk->green_addr;
            if (!tk->span_race) {
                r->span = s->o.span_of(th->tid, tk->green ? tk->green_addr : 0, s->o.span_ctx);
                if (!tk->reuse && r->span != tk->span0) { /* it began or ended meanwhile */
                    r->span = 0;
                    tk->span_race = 1;
                }
            }
            if (tk->span_race)
                s->st.span_races++;
        }
        int k = 0;
        if (tk->reuse) {
            if (nf)
                memcpy(r->frames, sl->frames, (size_t)nf * sizeof *r->frames);
            k = nf;
        } else {
            if (tk->native)
                k = merged_resolve(&t->rt, s->rawall + tk->raw_first, tk->nraw,
                                   s->mgall + tk->mg_first, nf, r->frames);
            else
                k = frames_resolve(&t->rt, s->rawall + tk->raw_first, nf, r->frames);
            if (k < nf) {
                trunc = PY_TRUNC_BROKEN;
                r->flags |= SAMPLE_TRUNCATED;
            }
            if (tk->no_reuse) /* (maybe not the thread's stack now: the next tick reads it) */
                sl->have_frames = 0;
            else
                remember_stack(sl, r->frames, k, trunc);
            sl->walk_cpu = tk->prev_cpu;
            sl->walk_pcount = tk->prev_pcount;
            sl->walk_green_addr = tk->green_addr;
            sl->walk_race = tk->span_race;
        }
        r->nframes = (uint16_t)k;
        /* a stack deeper than the cap keeps its innermost frames: counted
         * apart, it is not an error */
        if (trunc == PY_TRUNC_BROKEN) {
            s->st.errors++;
            s->st.err_stack++;
        } else if (trunc == PY_TRUNC_DEPTH)
            s->st.truncated++;
        t->charged_ns += tk->dcpu;
        s->st.samples++;
    }
}

/* One tick over one target: the thread list, then the passes above, then
 * the GIL record, ended threads, names and unsampled CPU. */
void sample_target(struct sampler *s, struct target *t, int64_t now)
{
    if (t->exec_pending) {
        check_exec(s, t, now);
        return;
    }
    t->rt.now_ns = now;
    uint64_t sw = 0;
    int n = py_threads_snapshot(&t->rt, &t->snap, s->threads, PY_MAX_THREADS, &sw);
    if (n <= 0) {
        /* No thread at all: the interpreter is finalizing or the process left.
         * The greenlet switches the hook reported before (their ends) are
         * still the recording's. */
        greenlets_tick(s, t, 0, now);
        if (n == SE_EXITED || n == SE_PERM || proc_gone(t->pid)) {
            t->alive = 0;
            record_unsampled(s, t, now); /* a zombie still tells its CPU */
        } else if (!check_exec(s, t, now) && n < 0) {
            s->st.errors++;
            s->st.err_list++;
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
        read_process_cpu(s, t, now);
        t->cpu0_ns = t->stat_cpu_ns ? t->stat_cpu_ns : -1;
    }
    int holder_tid = 0;
    uint32_t waiters = 0;
    t->nseen = 0;
    struct gil_view gv = { .nthreads = n, .switched = sw && sw != t->switches_last,
                          .lo = t->gil_lo, .hi = t->gil_hi };
    for (int i = 0; i < n; i++)
        if (s->threads[i].holds_gil)
            gv.holder = s->threads[i].tid;

    pass_states(s, t, n, now, &gv, &holder_tid, &waiters);
    for (int i = 0; i < n; i++) {
        s->tick[i].green = 0;
        s->tick[i].green_addr = 0;
        s->tick[i].green_frame = 0;
        s->tick[i].green_seen = -1;
        s->tick[i].span_race = 0;
        s->tick[i].no_reuse = 0;
        s->tick[i].ver_ok = 0;
    }
    green_tick(s, t, n, now);
    greenlets_tick(s, t, n, now);
    /* Each sample's span is looked up again after its stack was read: a
     * span that began or ended meanwhile (within the same task step or
     * greenlet run, so no switch tells) leaves the stack on either side of
     * it, and the sample carries none (pass_emit). */
    for (int i = 0; s->o.span_of && i < n; i++) {
        struct thread_tick *tk = &s->tick[i];
        tk->span0 = tk->sl && !tk->reuse
                        ? s->o.span_of(s->threads[i].tid, tk->green ? tk->green_addr : 0, s->o.span_ctx)
                        : 0;
    }
    int side_ok = 0;
    if (s->o.native && t->nat && s->o.native->tick)
        s->o.native->tick(t->nat);
    /* native frames: each thread's Python stack is read while it is
     * stopped, not in the scattered read */
    green_walks(s, t);
    int batched = s->o.native ? 0 : pass_gather(s, t, n, &side_ok);
    pass_walk(s, t, n, batched, side_ok);
    green_recheck(s, t, n);
    greenlets_recheck(s, t, n);
    pass_emit(s, t, n, now);
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
    slots_sweep(s, t, s->st.ticks + 1, now);
    /* Names: as soon as a thread appears (at most every 5 ms; reading them
     * is one small dict walk once threading._active is known), and every
     * second in case one was renamed. */
    if ((t->need_names && now - t->last_names_ts >= t->names_backoff) ||
        now - t->last_names_ts > 1000000000)
        emit_names(s, t, n, now);
    if (now - t->last_unsampled_ts >= 1000000000)
        record_unsampled(s, t, now);
    else if (now - t->last_stat_ts >= 10000000)
        read_process_cpu(s, t, now);
}

