/* tracer: green threads in the sampler: a target's asyncio tasks as lanes.
 *
 * Every tick, one small read (_current_tasks) says which task each loop
 * runs: the thread's sample is tagged with that task's lane, so the CPU
 * the thread used in the interval is charged to it, and its GIL states are
 * its own. Every scan (a full read of the task registries), each live task
 * gets a lane (REC_GREEN when new, renamed or moved), and every task that is
 * not running gets one suspended sample: where it awaits, standing for the
 * time since the previous scan minus the time it ran meanwhile. Tasks gone
 * since the previous scan end.
 *
 * Scans cost a few reads per batch of tasks (tasks.c), so they are paced
 * by their own cost: the next one comes after at least SCAN_SHARE times
 * the CPU the last one took, and late enough that suspended samples (rows
 * to write too) stay under SUSPENDED_RATE a second; never sooner than the
 * next tick. A program with a few dozen tasks is scanned every tick or so,
 * one with 1,000 ten times a second, one with 10,000 once a second. The recording
 * states the scans (meta green_scans, green_scan_cpu_s, and the period of
 * suspended samples green_suspended_period_ms).
 *
 * Runs on the sampling thread. Allocates when a target first shows
 * asyncio, when its tasks outgrow the buffers, and for new lanes. */
#include "tracer/sampler_impl.h"

#include "common/err.h"
#include "common/grow.h"
#include "common/hmap.h"
#include "common/state.h"
#include "tracer/cpython/tasks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SCAN_SHARE 50          /* scans may take 1/50 of the time (about 2%) */
#define EARLY_SHARE 12     /* while the number of tasks grows: about 8% */
#define EARLY_MIN 16        /* grows: by more than this many since the last scan */
#define SUSPENDED_RATE 10000  /* suspended samples a second at most, about 1% of a CPU */
#define FIND_MIN_NS 20000000 /* look for asyncio again, while not imported: at least
                                  this long after the last look, and paced by its cost */
#define TASKS_MAX (1 << 16)    /* tasks read per scan at most */
#define CURRENT_MAX 64         /* loops running a task at once */
#define CORO_DEPTH 64          /* outermost frames looked at for a task's coroutine */
#define BASE_MAX 48            /* a loop's own frames kept per thread (below its tasks') */

/* The frames a loop thread runs its tasks on (outermost last: Handle._run,
 * _run_once, run_forever, ... as the last stack that held a task's
 * coroutine had them): a raced sample's chain goes on top (green_recheck) */
struct loop_base {
    int n;
    struct py_rawframe f[BASE_MAX];
};

struct glane {
    uint64_t addr;
    uint32_t id;
    pid_t tid;
    uint64_t seen_scan;        /* the last scan that saw it */
    uint64_t name_hash;
    int64_t running_ns;        /* wall time of running samples since the last scan */
    int64_t since_ns;          /* counted from (first seen, or the last scan) */
    uint64_t coro;             /* its coroutine: a new task at a dead one's address has another */
    int python_coro;           /* the coroutine is a Python one (its code was read) */
    uint64_t coro_frame;       /* its frame's address while it runs: 0 not read yet, ~0 none */
};

struct green_state {
    struct py_tasks tc;
    int64_t next_find_ns;
    int64_t last_find_ns, find_cost_ns; /* the last look for asyncio, its CPU */
    int64_t find_modules;      /* how many modules sys.modules held then */
    uint64_t modules_dict;     /* sys.modules (py_modules_count's cache) */
    struct py_task *buf;
    int cap;
    struct glane *lanes;
    size_t nlanes, caplanes;
    struct hmap by_addr;       /* task address -> lane index + 1 */
    uint64_t scan_no;
    int64_t last_scan_ns, next_scan_ns;
    int64_t last_cost_ns;      /* CPU the last scan took */
    int64_t scan_seen;         /* registry entries it met */
    uint64_t cur_loop[CURRENT_MAX], cur_task[CURRENT_MAX];
    int ncur;
    /* for green_recheck: the code objects of the tasks' coroutines met
     * (never forgotten) */
    struct hmap coro_codes;
    /* the threads that ran a task (tid -> 1, or its struct loop_base once
     * one is known), and the registries' version
     * read before the running tasks were (green_tick), for green_recheck */
    struct hmap loop_tids;
    uint64_t ver0;
    int ver_ok;                /* py_tasks_version's answer for ver0 */
    uint64_t ver_walks;        /* the version before the tick's stack reads */
    int ver_walks_ok;          /* (py_tasks_version's answer, 0 not read) */
    int cur_ok;                /* the running tasks were read at this tick */
};

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 1099511628211ULL;
    return h;
}

void green_thread_ended(struct target *t, pid_t tid)
{
    if (!t->green)
        return;
    uint64_t *v = hmap_get(&t->green->loop_tids, (uint64_t)tid, 0);
    if (v && *v > 1)
        free((void *)(uintptr_t)*v);
    hmap_del(&t->green->loop_tids, (uint64_t)tid, 0);
}

void green_free(struct target *t)
{
    struct green_state *g = t->green;
    if (!g)
        return;
    free(g->buf);
    free(g->lanes);
    hmap_fini(&g->by_addr);
    hmap_fini(&g->coro_codes);
    for (size_t i = 0; i < g->loop_tids.cap; i++)
        if (g->loop_tids.slots[i].used && g->loop_tids.slots[i].value > 1)
            free((void *)(uintptr_t)g->loop_tids.slots[i].value);
    hmap_fini(&g->loop_tids);
    free(g);
    t->green = NULL;
}

static void emit_green(struct sampler *s, struct target *t, const struct glane *l,
                       const struct py_task *task, int ended, int64_t now)
{
    struct rec_green *r = reserve(s, sizeof *r, now);
    if (!r) {
        s->st.dropped++;
        return;
    }
    memset((char *)r + sizeof r->h, 0, sizeof *r - sizeof r->h);
    r->h.kind = REC_GREEN;
    r->pid = t->pid;
    r->tid = l->tid;
    r->id = l->id;
    r->kind = GREEN_TASK;
    r->ended = (uint8_t)ended;
    r->addr = l->addr;
    r->ts = now - s->t0;
    if (task) {
        snprintf(r->name, sizeof r->name, "%s", task->name);
        const struct py_code *co = task->coro_code ? py_code_get(&t->rt, task->coro_code) : NULL;
        if (co)
            snprintf(r->func, sizeof r->func, "%s", co->qualname ? co->qualname : co->name ? co->name : "");
    }
}

/* End lane i: its record, and out of the tables (the last lane takes its
 * place). */
static void lane_end(struct sampler *s, struct target *t, size_t i, int64_t now)
{
    struct green_state *g = t->green;
    struct glane *l = &g->lanes[i];
    emit_green(s, t, l, NULL, 1, now);
    hmap_del(&g->by_addr, l->addr, 0);
    if (i != g->nlanes - 1) {
        *l = g->lanes[g->nlanes - 1];
        hmap_put(&g->by_addr, l->addr, 0, i + 1); /* replaces: never fails */
    }
    g->nlanes--;
}

/* tid runs tasks: green_recheck looks at its samples' spans */
static void note_loop_tid(struct green_state *g, pid_t tid)
{
    if (tid > 0 && !hmap_get(&g->loop_tids, (uint64_t)tid, 0))
        hmap_put(&g->loop_tids, (uint64_t)tid, 0, 1); /* (without memory, not
                                                          noted: the other checks stay) */
}

/* The lane of task (created, or updated when renamed or moved), or NULL
 * without memory. A task at the address of a lane whose coroutine differs
 * is a new task where a dead one was: that lane ends, a new one starts. */
static struct glane *lane_of(struct sampler *s, struct target *t, const struct py_task *task,
                             int64_t now)
{
    struct green_state *g = t->green;
    uint64_t *v = hmap_get(&g->by_addr, task->id, 0);
    uint64_t h = hash_str(task->name);
    if (v && task->coro && g->lanes[*v - 1].coro && g->lanes[*v - 1].coro != task->coro) {
        lane_end(s, t, (size_t)(*v - 1), now);
        v = NULL;
    }
    if (v) {
        struct glane *l = &g->lanes[*v - 1];
        if (l->name_hash != h || (task->tid && l->tid != task->tid)) {
            l->name_hash = h;
            if (task->tid) {
                l->tid = task->tid;
                note_loop_tid(g, l->tid);
            }
            emit_green(s, t, l, task, 0, now);
        }
        return l;
    }
    if (grow_array((void **)&g->lanes, &g->caplanes, g->nlanes + 1, sizeof *g->lanes))
        return NULL;
    if (hmap_put(&g->by_addr, task->id, 0, g->nlanes + 1))
        return NULL;
    struct glane *l = &g->lanes[g->nlanes++];
    memset(l, 0, sizeof *l);
    l->addr = task->id;
    l->id = ++s->green_next;
    l->tid = task->tid;
    note_loop_tid(g, l->tid);
    l->coro = task->coro;
    l->python_coro = task->coro_code != 0;
    if (task->coro_code && !hmap_get(&g->coro_codes, task->coro_code, 0))
        hmap_put(&g->coro_codes, task->coro_code, 0, 1); /* (without memory: not looked for) */
    l->name_hash = h;
    l->seen_scan = g->scan_no;
    l->since_ns = now;
    s->st.green_lanes++;
    emit_green(s, t, l, task, 0, now);
    return l;
}

/* A suspended task's sample: its chain, for the time since it was last
 * accounted minus what it ran meanwhile. */
static void emit_suspended(struct sampler *s, struct target *t, struct glane *l,
                           const struct py_task *task, int64_t now)
{
    int64_t wall = now - l->since_ns - l->running_ns;
    l->since_ns = now;
    l->running_ns = 0;
    if (wall <= 0)
        return;
    int nf = task->nframes;
    struct rec_sample *r = reserve(s, sizeof *r + (size_t)nf * sizeof(struct rec_frame), now);
    if (!r) {
        s->st.dropped++;
        return;
    }
    r->h.kind = REC_SAMPLE;
    r->state = STATE_IDLE;
    r->flags = SAMPLE_SUSPENDED | (task->truncated ? SAMPLE_TRUNCATED : 0);
    r->pid = t->pid;
    r->tid = l->tid;
    r->ts = now - s->t0;
    r->cpu_ns = 0;
    r->wall_ns = wall;
    r->green = l->id;
    r->span = s->o.span_of ? s->o.span_of(l->tid, l->addr, s->o.span_ctx) : 0;
    int k = frames_resolve(&t->rt, task->frames, nf, r->frames);
    if (k < nf)
        r->flags |= SAMPLE_TRUNCATED;
    r->nframes = (uint16_t)k;
}

/* The full read: lanes, suspended samples, ended lanes. */
static void scan(struct sampler *s, struct target *t, int n, int64_t now)
{
    struct green_state *g = t->green;
    struct py_tasks_stats st;
    int64_t c0 = thread_cpu_ns();
    /* the registries' size before the read: tasks the program starts
     * while the scan runs (a burst of thousands) make it grow past this,
     * and the next scan comes early for them */
    int64_t before;
    int before_ok = py_tasks_count(&t->rt, &g->tc, &before) == 0;
    int got = py_tasks_read(&t->rt, &g->tc, s->threads, n, g->buf, g->cap, &st);
    if (got < 0) {
        if (got != SE_EXITED && got != SE_PERM) {
            g->tc.found = 0; /* a registry moved: find them again */
            s->st.green_errors++;
        }
        g->next_scan_ns = now;
        return;
    }
    g->scan_no++;
    s->st.green_scans++;
    s->st.green_errors += (uint64_t)(st.bad + st.broken);
    for (int i = 0; i < got; i++) {
        const struct py_task *task = &g->buf[i];
        struct glane *l = lane_of(s, t, task, now);
        if (!l)
            continue;
        l->seen_scan = g->scan_no;
        /* a running task is accounted at the next scan that finds it
         * suspended (its chain now is its thread's stack) */
        if (!task->running)
            emit_suspended(s, t, l, task, now);
    }
    /* lanes not seen: their task ended (or was dropped for room: then it
     * comes back as a new lane) */
    if (!st.dropped)
        for (size_t i = 0; i < g->nlanes;) {
            struct glane *l = &g->lanes[i];
            if (l->seen_scan == g->scan_no) {
                i++;
                continue;
            }
            lane_end(s, t, i, now);
        }
    int grown = 0;
    if (st.dropped && g->cap < TASKS_MAX) {
        /* room for every task seen at once (growing by doubling would take
         * one paced scan per step: seconds before 10,000 tasks all show) */
        int cap = g->cap;
        while (cap < TASKS_MAX && cap < st.read + st.dropped)
            cap *= 2;
        struct py_task *p = realloc(g->buf, (size_t)cap * sizeof *p);
        if (p) {
            g->buf = p;
            g->cap = cap;
            grown = 1;
        }
    }
    int64_t cost = thread_cpu_ns() - c0;
    g->last_scan_ns = now;
    g->last_cost_ns = cost;
    /* the baseline of early scans: the registries' size as
     * py_tasks_count reads it (live entries, not the dummies of removed
     * ones that the scan met too), as it was when the scan began */
    g->scan_seen = before_ok ? before : st.seen;
    int64_t wait = cost * SCAN_SHARE, rows = (int64_t)got * 1000000000 / SUSPENDED_RATE;
    if (wait < rows)
        wait = rows;
    g->next_scan_ns = grown ? now : now + wait; /* grown: read them all soon */
    s->st.green_scan_ns += cost;
}

/* The address of the frame lane l's coroutine runs in (the thread's stack
 * holds it while the task runs), or 0 when not known. 3.11+: embedded in
 * the coroutine; before: its frame object, read once (a coroutine keeps
 * it for life). */
static uint64_t coro_frame(struct target *t, struct glane *l)
{
    const struct py_layout *L = &t->rt.L;
    if (!l->coro_frame) {
        uint64_t f = 0;
        if (!l->coro || !l->python_coro)
            f = 0;
        else if (L->gi_iframe >= 0)
            f = l->coro + (uint64_t)L->gi_iframe;
        else if (L->gi_frame >= 0 && mem_read_ptr(&t->rt.mem, l->coro + (uint64_t)L->gi_frame, &f))
            f = 0;
        l->coro_frame = f ? f : ~(uint64_t)0;
    }
    return l->coro_frame == ~(uint64_t)0 ? 0 : l->coro_frame;
}

/* Where the frames of its loop begin in a stack read of a loop thread:
 * past the outermost frame running a task's coroutine (a task's frames
 * sit on its loop's: Handle._run, _run_once, run_forever...); -1 when no
 * task's coroutine is among its outermost CORO_DEPTH frames. */
static int loop_base_at(const struct green_state *g, const struct py_rawframe *raw, int nraw)
{
    for (int k = nraw - 1; k >= 0 && k >= nraw - CORO_DEPTH; k--)
        if (hmap_get(&g->coro_codes, raw[k].code, 0))
            return k + 1;
    return -1;
}

/* Keep the loop frames of a whole stack that held a task's coroutine as
 * thread tid's, for the raced samples to come (chain_stack). */
static void remember_base(struct green_state *g, pid_t tid, const struct py_rawframe *raw, int nraw)
{
    uint64_t *v = hmap_get(&g->loop_tids, (uint64_t)tid, 0);
    int k = v ? loop_base_at(g, raw, nraw) : -1;
    if (k < 0 || nraw - k > BASE_MAX)
        return;
    struct loop_base *b = *v > 1 ? (struct loop_base *)(uintptr_t)*v : NULL;
    if (!b) {
        if (!(b = malloc(sizeof *b)))
            return;
        *v = (uint64_t)(uintptr_t)b;
    }
    b->n = nraw - k;
    memcpy(b->f, raw + k, (size_t)b->n * sizeof *raw);
}

/* Room for need more frames in s->rawall: 0, or -1 without memory. */
static int raw_room(struct sampler *s, size_t need)
{
    if (s->rawused + need <= s->rawcap)
        return 0;
    size_t cap = s->rawcap * 2 > s->rawused + need ? s->rawcap * 2 : s->rawused + need;
    struct py_rawframe *r = realloc(s->rawall, cap * sizeof *r);
    if (!r)
        return -1;
    s->rawall = r;
    s->rawcap = cap;
    return 0;
}

/* Tick i's task runs at the check, but the walk did not meet its
 * coroutine: it began after the frame pointer the walk followed was read
 * (the thread list is read before the running tasks), or gave the turn
 * and runs again. The thread's stack is read again, fresh: when it holds
 * the task's coroutine, it is the task's stack (as of now), the sample's.
 * 1 done (counted apart from the chains), -1 not. */
static int stack_again(struct sampler *s, struct target *t, int i)
{
    struct green_state *g = t->green;
    struct thread_tick *tk = &s->tick[i];
    struct py_thread *th = &s->threads[i];
    if (!py_thread_still(&t->rt, th) || raw_room(s, PY_MAX_DEPTH))
        return -1;
    struct py_side *side = &s->side;
    side->want = tk->green_frame;
    int trunc = 0;
    /* the versions around this read: a switch during it shows (the
     * window of the first walk is over) */
    uint64_t v0 = 0;
    int v0_ok = g->ver_walks_ok == 1 && py_tasks_version(&t->rt, &g->tc, &v0) == 1;
    t->rt.walk_bottom = 0;
    int nf = py_stack_read_side(&t->rt, th->tstate, side, s->rawall + s->rawused, PY_MAX_DEPTH,
                                &trunc);
    if (nf <= 0 || trunc || !side->want_seen)
        return -1;
    tk->raw_first = s->rawused;
    tk->nraw = nf;
    tk->truncated = 0;
    tk->bottom = t->rt.walk_bottom;
    tk->no_reuse = 1; /* (the schedstat it would be checked against is older) */
    s->rawused += (size_t)nf;
    tk->ver_from = v0;
    tk->ver_ok = v0_ok && py_tasks_version(&t->rt, &g->tc, &tk->ver) == 1;
    return 1;
}

/* Tick i's stack read raced a switch of the task it ran at green_tick
 * (the walk did not meet the task's coroutine: it read the loop's frames,
 * or another task's). When that task is suspended now, the sample takes
 * its chain (the frames where it awaits: where it gave its loop the turn,
 * right after the tick, unless it ran again and gave it elsewhere since,
 * which no read here tells) on top of its loop's frames (the stack walked
 * past its outermost task coroutine, else the last ones that thread
 * showed), appended to the tick's frames: it stays the task's sample,
 * with its CPU and its span. 0 done; 1 the task runs and its stack was
 * read again (stack_again); -1 neither (ended, unreadable, no memory): the
 * caller's fallback. */
static int chain_stack(struct sampler *s, struct target *t, int n, int i)
{
    struct green_state *g = t->green;
    struct thread_tick *tk = &s->tick[i];
    struct py_task one;
    struct py_tasks_stats st;
    if (tk->native)
        return -1;
    int rc = py_task_read_one(&t->rt, &g->tc, s->threads, n, tk->green_addr, &one, &st);
    s->st.green_errors += (uint64_t)st.bad;
    if (rc == 1 && one.running)
        return stack_again(s, t, i);
    if (rc != 1 || one.nframes <= 0 || one.truncated)
        return -1;
    const struct py_rawframe *base = NULL;
    int nbase = 0;
    size_t base_first = 0;
    int k = tk->truncated ? -1 : loop_base_at(g, s->rawall + tk->raw_first, tk->nraw);
    if (k >= 0) {
        base_first = tk->raw_first + (size_t)k; /* (an offset: rawall may move) */
        nbase = tk->nraw - k;
    } else {
        uint64_t *v = hmap_get(&g->loop_tids, (uint64_t)s->threads[i].tid, 0);
        if (!v || *v <= 1)
            return -1; /* its loop's frames not known yet */
        const struct loop_base *b = (const struct loop_base *)(uintptr_t)*v;
        base = b->f;
        nbase = b->n;
    }
    size_t need = (size_t)one.nframes + (size_t)nbase;
    if (need > PY_MAX_DEPTH || raw_room(s, need))
        return -1;
    if (!base)
        base = s->rawall + base_first;
    struct py_rawframe *out = s->rawall + s->rawused;
    memcpy(out, one.frames, (size_t)one.nframes * sizeof *out);
    memcpy(out + one.nframes, base, (size_t)nbase * sizeof *out);
    tk->raw_first = s->rawused;
    tk->nraw = (int)need;
    tk->truncated = 0;
    tk->bottom = 0; /* (not a walk: greenlets_recheck compares none) */
    tk->no_reuse = 1; /* (not the thread's stack now) */
    s->rawused += need;
    return 0;
}

void green_walks(struct sampler *s, struct target *t)
{
    struct green_state *g = t->green;
    if (g)
        g->ver_walks_ok = s->o.span_of && g->tc.found && g->cur_ok
                              ? py_tasks_version(&t->rt, &g->tc, &g->ver_walks)
                              : 0;
}

void green_walked(struct sampler *s, struct target *t, int i)
{
    struct green_state *g = t->green;
    struct thread_tick *tk = &s->tick[i];
    if (!g || g->ver_walks_ok != 1 || !tk->sl || tk->reuse)
        return;
    int task = tk->green_addr && hmap_get(&g->by_addr, tk->green_addr, 0);
    if (!task && !hmap_get(&g->loop_tids, (uint64_t)s->threads[i].tid, 0))
        return;
    /* From the tick's first stack read when the walk looked for its task's
     * coroutine frame (meeting it says the task ran then, whatever switched
     * before); else from the read of the running tasks (green_tick): no
     * switch since says the task read then (or none) ran during the walk. */
    if (task && tk->green_frame)
        tk->ver_from = g->ver_walks;
    else if (g->ver_ok == 1)
        tk->ver_from = g->ver0;
    else
        return;
    tk->ver_ok = py_tasks_version(&t->rt, &g->tc, &tk->ver) == 1;
}

void green_recheck(struct sampler *s, struct target *t, int n)
{
    struct green_state *g = t->green;
    if (!g)
        return;
    /* The stack's evidence first: a walk that did not meet the frame of
     * its task's coroutine read another task's stack, or the loop's (the
     * task gave the loop its turn between green_tick's read and the walk).
     * The sample stays the task's, with its CPU and span, and takes the
     * chain where the task awaits now (chain_stack). When the task cannot
     * be followed so, the sample is the thread's, with its CPU and no
     * span: a task is charged only for stacks that are its own. A stack
     * that met it and is whole gives the thread's loop frames. */
    for (int i = 0; i < n; i++) {
        struct thread_tick *tk = &s->tick[i];
        if (!tk->sl || tk->reuse || !tk->green_addr || !tk->green_frame)
            continue;
        if (tk->green_seen == 1) {
            if (!tk->truncated && !tk->native)
                remember_base(g, s->threads[i].tid, s->rawall + tk->raw_first, tk->nraw);
            continue;
        }
        if (tk->green_seen != 0)
            continue;
        uint64_t *v = hmap_get(&g->by_addr, tk->green_addr, 0);
        if (!v)
            continue; /* (a greenlet's: greenlets_recheck's) */
        s->st.green_races++;
        int rc = chain_stack(s, t, n, i);
        if (rc == 0) {
            s->st.green_races_chain++;
            tk->green_seen = 2; /* its own now: the checks below pass it */
            continue;
        }
        if (rc == 1) {
            s->st.green_races_again++;
            tk->green_seen = 1; /* its stack, read again: checked as a walk */
            if (!tk->native)
                remember_base(g, s->threads[i].tid, s->rawall + tk->raw_first, tk->nraw);
            continue;
        }
        g->lanes[*v - 1].running_ns -= tk->wall;
        tk->green = 0;
        tk->green_addr = 0;
        tk->green_frame = 0;
        tk->green_seen = -1;
        tk->span_race = 1; /* (its span is not known either) */
    }
    if (!s->o.span_of)
        return;
    if (!g->tc.found || !g->cur_ok) {
        /* The running tasks could not be read at this tick (a registry read
         * torn by a switch, looked for again): on a thread that runs tasks,
         * which one ran is not known, nor its span. */
        for (int i = 0; i < n; i++)
            if (s->tick[i].sl && !s->tick[i].reuse &&
                hmap_get(&g->loop_tids, (uint64_t)s->threads[i].tid, 0))
                s->tick[i].span_race = 1;
        return;
    }
    /* A task switch during the stack reads (the registries' version
     * changed between the first read of the tick and the end of the
     * thread's walk; where that was not read, between the read of the
     * running tasks and this check) may have come back (the task ran, gave
     * the turn, ran again): the walk can then have read the innermost
     * frames of another task and the rest of this one's, its coroutine
     * frame included, at the same addresses of the thread's frame stack.
     * A sample whose task is not running at this check and whose walk met
     * its coroutine is its own (the walk reached that frame before the
     * task gave the turn, or from frames it had left: its own either way);
     * one whose task runs again is not known. A walk with no switch during
     * it read one stack: the evidence of its frames decides. */
    uint64_t ver1 = 0;
    int switched = g->ver_ok < 0 ||
                   (g->ver_ok == 1 && (py_tasks_version(&t->rt, &g->tc, &ver1) != 1 || ver1 != g->ver0));
    uint64_t loops[CURRENT_MAX], now_task[CURRENT_MAX];
    int nc = py_tasks_current(&t->rt, &g->tc, loops, now_task, CURRENT_MAX);
    int now_ok = nc >= 0;
    if (nc < 0)
        nc = 0;
    for (int i = 0; i < n; i++) {
        struct thread_tick *tk = &s->tick[i];
        if (!tk->sl || tk->reuse)
            continue; /* no walk: its stack and task are the last walk's */
        uint64_t a = tk->green_addr;
        if (a && tk->green_seen == 2)
            continue; /* its chain, read at this check */
        int was = 0, is = 0;
        for (int k = 0; a && k < g->ncur && !was; k++)
            was = g->cur_task[k] == a;
        for (int k = 0; a && k < nc && !is; k++)
            is = now_task[k] == a;
        /* (green_addr may be a greenlet's, set since: a task's is a lane's) */
        int task = a && hmap_get(&g->by_addr, a, 0);
        int sw = tk->ver_ok == 1 ? tk->ver != tk->ver_from : switched;
        if (sw && (task || hmap_get(&g->loop_tids, (uint64_t)s->threads[i].tid, 0))) {
            if (!(task && now_ok && !is && tk->green_frame && tk->green_seen == 1))
                tk->span_race = 1;
            continue;
        }
        if (a && tk->green_frame && tk->green_seen >= 0) {
            /* the evidence of the stack itself */
            tk->span_race = !tk->green_seen;
            continue;
        }
        if (was && !is)
            tk->span_race = 1;
        if (a)
            continue;
        /* No task ran on it at green_tick: a task's coroutine on the stack
         * walked since says one started before the walk (and may have
         * ended since). A task's coroutine runs right above its loop's
         * frames: the outermost CORO_DEPTH frames are looked at. */
        if (loop_base_at(g, s->rawall + tk->raw_first, tk->nraw) >= 0)
            tk->span_race = 1;
    }
}

void green_tick(struct sampler *s, struct target *t, int n, int64_t now)
{
    if (!s->o.tasks || n <= 0)
        return;
    if (!t->green) {
        if (!(t->green = calloc(1, sizeof *t->green)))
            return;
        if (hmap_init(&t->green->by_addr, 256)) {
            free(t->green);
            t->green = NULL;
            return;
        }
        if (hmap_init(&t->green->coro_codes, 64) || hmap_init(&t->green->loop_tids, 16)) {
            hmap_fini(&t->green->by_addr);
            hmap_fini(&t->green->coro_codes);
            free(t->green);
            t->green = NULL;
            return;
        }
    }
    struct green_state *g = t->green;
    g->ncur = 0;
    g->ver_ok = 0;
    g->cur_ok = 0;
    if (!g->tc.found) {
        /* sys.modules changed since the last look: asyncio may be among
         * the new ones, look again sooner (a look costs a walk of
         * sys.modules: paced at a fifth of SCAN_SHARE then, on a sanitizer
         * build under load up to a second apart otherwise) */
        int64_t nmod = -1;
        if (now < g->next_find_ns && now >= g->last_find_ns + g->find_cost_ns * (SCAN_SHARE / 5) &&
            now >= g->last_find_ns + FIND_MIN_NS && py_modules_count(&t->rt, &g->modules_dict, &nmod))
            nmod = -1;
        if (nmod >= 0 && nmod != g->find_modules)
            g->next_find_ns = now;
        if (now < g->next_find_ns)
            return;
        if (nmod < 0 && py_modules_count(&t->rt, &g->modules_dict, &nmod))
            nmod = -1;
        g->find_modules = nmod;
        int64_t c0 = thread_cpu_ns();
        int rc = py_tasks_find(&t->rt, &g->tc);
        int64_t cost = thread_cpu_ns() - c0;
        g->next_find_ns = now + (cost * SCAN_SHARE > FIND_MIN_NS ? cost * SCAN_SHARE : FIND_MIN_NS);
        g->last_find_ns = now;
        g->find_cost_ns = cost;
        if (rc == SE_UNSUPPORTED) {
            g->next_find_ns = INT64_MAX; /* no Task layout for this version, or a
                                          3.6 without _asyncio's symbol table */
            return;
        }
        if (rc || !g->tc.found)
            return;
        if (!g->buf) {
            g->cap = 256;
            if (!(g->buf = malloc((size_t)g->cap * sizeof *g->buf))) {
                g->tc.found = 0;
                return;
            }
        }
        g->next_scan_ns = now;
    }
    if (now < g->next_scan_ns && now >= g->last_scan_ns + g->last_cost_ns * EARLY_SHARE) {
        /* More tasks than the last scan met (a program starting its
         * thousands of tasks while a scan ran, a burst of requests): one
         * read of the registries' sizes says so, and the next scan comes
         * early, paced at EARLY_SHARE instead, until they stop growing.
         * Tasks that end as others start leave the size as it was. */
        int64_t cnt;
        if (!py_tasks_count(&t->rt, &g->tc, &cnt) && cnt - g->scan_seen > EARLY_MIN)
            g->next_scan_ns = now;
    }
    if (now >= g->next_scan_ns)
        scan(s, t, n, now);
    if (s->o.span_of) /* 1: read; 0: no version on this CPython; < 0: unreadable */
        g->ver_ok = py_tasks_version(&t->rt, &g->tc, &g->ver0);
    int nc = py_tasks_current(&t->rt, &g->tc, g->cur_loop, g->cur_task, CURRENT_MAX);
    if (nc < 0) {
        if (nc != SE_EXITED && nc != SE_PERM)
            s->st.green_errors++;
        return;
    }
    g->ncur = nc;
    g->cur_ok = 1;
    /* the running task of each loop, on the thread that runs it */
    for (int k = 0; k < nc; k++) {
        uint64_t *v = hmap_get(&g->by_addr, g->cur_task[k], 0);
        struct glane *l = v ? &g->lanes[*v - 1] : NULL;
        if (!l) {
            /* started since the last scan: read it alone */
            struct py_task one;
            struct py_tasks_stats st;
            int rc = py_task_read_one(&t->rt, &g->tc, s->threads, n, g->cur_task[k], &one, &st);
            s->st.green_errors += (uint64_t)st.bad;
            if (rc != 1 || !(l = lane_of(s, t, &one, now))) {
                /* a task ran (or a torn read says so) on a thread not
                 * known: which thread's samples are a task's is not known */
                g->cur_ok = 0;
                continue;
            }
            l->since_ns = now;
        }
        for (int i = 0; i < n; i++)
            if (s->threads[i].tid == l->tid && s->tick[i].sl) {
                s->tick[i].green = l->id;
                s->tick[i].green_addr = l->addr;
                s->tick[i].green_frame = coro_frame(t, l);
                l->running_ns += s->tick[i].wall;
                break;
            }
    }
}
