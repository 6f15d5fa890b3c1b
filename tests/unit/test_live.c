/* profiler/live: a thread-per-request target for a minute of sampler time
 * (1200 threads, three ticks each, alongside one long-lived thread). Ended
 * threads leave the list LIVE_ENDED_KEEP_NS after their end (an end record,
 * or LIVE_STALE_NS without samples when the record was lost), their sums go
 * to the "ended" row, their call-tree cells fold into one lane: the list
 * and the cells stay bounded, the totals stay whole, a reused tid is a new
 * thread. Ended asyncio tasks leave the same way (test_task_per_request). */
#include "check.h"

#include "common/squeue.h"
#include "profiler/live.h"

#include <sched.h>
#include <stdio.h>
#include <string.h>

static struct py_code c_main = { .name = "main", .qualname = "main", .file = "/app/srv.py", .firstlineno = 1 };
static struct py_code c_run = { .name = "run", .qualname = "Thread.run", .file = "/lib/threading.py", .firstlineno = 900 };
static struct py_code c_handle = { .name = "handle", .qualname = "handle", .file = "/app/srv.py", .firstlineno = 20 };

static void *reserve(struct batch *b, size_t bytes)
{
    size_t n = (bytes + 7) & ~(size_t)7;
    if (b->len + n > b->cap)
        return NULL;
    void *p = b->buf + b->len;
    memset(p, 0, n);
    b->len += n;
    ((struct rec_hdr *)p)->size = (uint16_t)n;
    return p;
}

static void add_sample(struct batch *b, int pid, int tid, int64_t ts, int64_t wall, int worker)
{
    int n = worker ? 2 : 1;
    struct rec_sample *s = reserve(b, sizeof *s + (size_t)n * sizeof(struct rec_frame));
    CHECK(s != NULL, "batch full");
    if (!s)
        return;
    s->h.kind = REC_SAMPLE;
    s->state = STATE_GIL;
    s->nframes = (uint16_t)n;
    s->pid = pid;
    s->tid = tid;
    s->ts = ts;
    s->cpu_ns = wall / 2;
    s->wall_ns = wall;
    s->frames[0] = (struct rec_frame){ .code = worker ? &c_handle : &c_main, .line = 3 };
    if (worker)
        s->frames[1] = (struct rec_frame){ .code = &c_run, .line = 950 };
}

static void add_thread(struct batch *b, int pid, int tid, const char *name)
{
    struct rec_thread *t = reserve(b, sizeof *t);
    if (!t)
        return;
    t->h.kind = REC_THREAD;
    t->pid = pid;
    t->tid = tid;
    snprintf(t->name, sizeof t->name, "%s", name);
}

static void add_end(struct batch *b, int pid, int tid, int64_t ts)
{
    struct rec_thread_end *e = reserve(b, sizeof *e);
    if (!e)
        return;
    e->h.kind = REC_THREAD_END;
    e->pid = pid;
    e->tid = tid;
    e->ts = ts;
}

static struct batch *get_free(struct sample_queue *q)
{
    struct batch *b;
    while (!(b = squeue_get_free(q)))
        sched_yield();
    return b;
}

/* Worker n's tid: the tids cycle through 50, so they are reused once their
 * thread ended, except for those whose end record is lost (every tenth: a
 * reused tid is all that would tell them apart from the thread before). */
static int tid_of(int n)
{
    return n % 10 ? 1000 + n % 50 : 2000 + n;
}

#define TICK_NS 100000000 /* 10 Hz */
#define TICKS 600
#define WALL 1000000

static void test_thread_per_request(void)
{
    struct sample_queue *q = squeue_new(4, 1 << 16);
    struct live *l = NULL;
    char err[256];
    CHECK(q != NULL, "queue");
    CHECK_INT(live_new(&l, q, err, sizeof err), 0);
    if (!q || !l)
        return;
    const int pid = 100;
    uint64_t samples = 0, worker_samples = 0, created = 0;
    for (int k = 0; k < TICKS; k++) {
        struct batch *b = get_free(q);
        int64_t ts = (int64_t)k * TICK_NS;
        if (k == 0)
            add_thread(b, pid, pid, "MainThread");
        add_sample(b, pid, pid, ts, WALL, 0);
        samples++;
        /* two new workers a tick, each sampled for three ticks */
        for (int w = 0; w < 2; w++) {
            int n = 2 * k + w;
            char name[32];
            snprintf(name, sizeof name, "Thread-%d (handle)", n + 1);
            add_thread(b, pid, tid_of(n), name);
            created++;
        }
        for (int back = 0; back < 3; back++)
            for (int w = 0; w < 2 && k - back >= 0; w++) {
                add_sample(b, pid, tid_of(2 * (k - back) + w), ts, WALL, 1);
                samples++;
                worker_samples++;
            }
        /* ended three ticks after they started; every tenth end record lost */
        for (int w = 0; w < 2 && k >= 3; w++) {
            int n = 2 * (k - 3) + w;
            if (n % 10)
                add_end(b, pid, tid_of(n), ts);
        }
        squeue_push(q, b);
    }
    squeue_close(q);
    struct live_snap s = { 0 };
    do {
        sched_yield();
        CHECK_INT(live_snapshot(l, 0, 0, &s), 0);
    } while (!s.h.done);

    /* the list: the main thread, the workers alive, those ended lately */
    size_t alive = 0, ended = 0, listed_workers = 0;
    uint64_t listed = 0;
    for (size_t i = 0; i < s.nthreads; i++) {
        const struct live_thread *t = &s.threads[i];
        listed += t->samples;
        listed_workers += t->tid != pid;
        if (t->ended)
            ended++;
        else
            alive++;
        CHECK(t->id < LIVE_ENDED_ID, "thread id %u", t->id);
    }
    CHECK(s.nthreads < 120, "%zu threads listed: ended threads are not dropped", s.nthreads);
    CHECK(alive >= 7 && alive <= 20, "%zu threads alive", alive);
    CHECK(ended > 0, "no ended thread shown before it is dropped");
    CHECK(s.h.ended_threads > created / 2, "%llu threads dropped of %llu",
          (unsigned long long)s.h.ended_threads, (unsigned long long)created);
    CHECK(s.h.ended_threads + listed_workers == created, "%llu dropped + %zu listed != %llu workers",
          (unsigned long long)s.h.ended_threads, listed_workers, (unsigned long long)created);
    /* nothing lost: the dropped threads' sums plus the listed ones' */
    CHECK(s.ended.samples + listed == samples, "%llu + %llu samples, not %llu",
          (unsigned long long)s.ended.samples, (unsigned long long)listed, (unsigned long long)samples);
    CHECK(s.ended.wall_ns == (int64_t)s.ended.samples * WALL, "ended wall");
    CHECK(s.ended.state_ns[STATE_GIL] == s.ended.wall_ns, "ended gil");
    CHECK(s.h.samples == samples, "header samples");
    CHECK(s.metric_total[Q_WALL] == (int64_t)samples * WALL, "all threads' wall %lld",
          (long long)s.metric_total[Q_WALL]);
    /* the cells: a few per thread listed plus the ended lane's, not one
     * per thread ever seen (2400 without dropping) */
    CHECK(s.h.cells < 3 * s.nthreads + 10, "%zu call-tree cells for %zu threads", s.h.cells, s.nthreads);
    /* the flat profile of every thread still has every sample */
    int64_t handle = 0, mainf = 0;
    for (size_t i = 0; i < s.nfuncs; i++) {
        if (!strcmp(s.funcs[i].name, "handle"))
            handle = s.funcs[i].total[Q_WALL];
        if (!strcmp(s.funcs[i].name, "main"))
            mainf = s.funcs[i].self[Q_WALL];
    }
    CHECK(handle == (int64_t)worker_samples * WALL, "handle total %lld", (long long)handle);
    CHECK(mainf == TICKS * (int64_t)WALL, "main self %lld", (long long)mainf);
    /* the ended threads as a filter: their samples in handle */
    CHECK_INT(live_snapshot(l, LIVE_ENDED_ID, 0, &s), 0);
    CHECK(s.metric_total[Q_WALL] == s.ended.wall_ns, "the ended lane's total");
    handle = 0;
    for (size_t i = 0; i < s.nfuncs; i++)
        if (!strcmp(s.funcs[i].name, "handle"))
            handle = s.funcs[i].self[Q_WALL];
    CHECK(handle == s.ended.wall_ns, "the ended lane's handle: %lld of %lld", (long long)handle,
          (long long)s.ended.wall_ns);
    live_snap_fini(&s);
    live_free(l);
    squeue_free(q);
}

/* An end record for (pid, tid), then samples of the same tid: a new thread
 * (the kernel reused the tid), the ended one stays ended. */
static void test_tid_reused(void)
{
    struct sample_queue *q = squeue_new(2, 1 << 14);
    struct live *l = NULL;
    char err[256];
    CHECK_INT(live_new(&l, q, err, sizeof err), 0);
    struct batch *b = get_free(q);
    add_thread(b, 7, 70, "Thread-1");
    add_sample(b, 7, 70, 0, WALL, 1);
    add_end(b, 7, 70, 10);
    add_thread(b, 7, 70, "Thread-2");
    add_sample(b, 7, 70, 20, WALL, 1);
    squeue_push(q, b);
    squeue_close(q);
    struct live_snap s = { 0 };
    do {
        sched_yield();
        CHECK_INT(live_snapshot(l, 0, 0, &s), 0);
    } while (!s.h.done);
    CHECK_INT((int)s.nthreads, 2);
    if (s.nthreads == 2) {
        CHECK_STR(s.threads[0].name, "Thread-1");
        CHECK(s.threads[0].ended && s.threads[0].ended_ts == 10 && s.threads[0].samples == 1, "the first");
        CHECK_STR(s.threads[1].name, "Thread-2");
        CHECK(!s.threads[1].ended && s.threads[1].samples == 1, "the second");
        CHECK(s.threads[0].id != s.threads[1].id, "one id for two threads");
    }
    live_snap_fini(&s);
    live_free(l);
    squeue_free(q);
}

static struct py_code c_sleep = { .name = "sleep", .qualname = "sleep", .file = "/lib/asyncio/tasks.py", .firstlineno = 600 };

/* A sample of the loop's thread: green 0 = the loop itself (main), else
 * that task running (handle above main) or, suspended, awaiting (sleep
 * above handle). */
static void add_gsample(struct batch *b, int pid, int tid, int64_t ts, uint32_t green, int suspended)
{
    int n = green ? 2 : 1;
    struct rec_sample *s = reserve(b, sizeof *s + (size_t)n * sizeof(struct rec_frame));
    CHECK(s != NULL, "batch full");
    if (!s)
        return;
    s->h.kind = REC_SAMPLE;
    s->state = STATE_GIL;
    s->flags = suspended ? SAMPLE_SUSPENDED : 0;
    s->nframes = (uint16_t)n;
    s->pid = pid;
    s->tid = tid;
    s->ts = ts;
    s->cpu_ns = WALL / 2;
    s->wall_ns = WALL;
    s->green = green;
    if (!green) {
        s->frames[0] = (struct rec_frame){ .code = &c_main, .line = 3 };
    } else if (suspended) {
        s->frames[0] = (struct rec_frame){ .code = &c_sleep, .line = 610 };
        s->frames[1] = (struct rec_frame){ .code = &c_handle, .line = 22 };
    } else {
        s->frames[0] = (struct rec_frame){ .code = &c_handle, .line = 21 };
        s->frames[1] = (struct rec_frame){ .code = &c_main, .line = 3 };
    }
}

static void add_green_rec(struct batch *b, int pid, int tid, uint32_t id, int ended, int64_t ts)
{
    struct rec_green *g = reserve(b, sizeof *g);
    if (!g)
        return;
    g->h.kind = REC_GREEN;
    g->pid = pid;
    g->tid = tid;
    g->id = id;
    g->kind = GREEN_TASK;
    g->ended = (uint8_t)ended;
    g->ts = ts;
    snprintf(g->name, sizeof g->name, "Task-%u", id);
    snprintf(g->func, sizeof g->func, "handle");
}

/* The flat profile's wall total and self of function name. */
static void func_wall(const struct live_snap *s, const char *name, int64_t *total, int64_t *self)
{
    *total = *self = 0;
    for (size_t i = 0; i < s->nfuncs; i++)
        if (!strcmp(s->funcs[i].name, name)) {
            *total = s->funcs[i].total[Q_WALL];
            *self = s->funcs[i].self[Q_WALL];
        }
}

#define GTICKS 1000
#define LONG_TASK 1000000u

/* A task-per-request asyncio server for 100 s of sampler time: two tasks
 * a tick, each running once, suspended once and ended, beside one task
 * that never ends. Ended tasks leave the aggregator LIVE_ENDED_KEEP_NS
 * after their end: the green threads held and the cells stay bounded, the
 * thread's totals and its call tree keep every running sample (and no
 * suspended one), and an id given again is a new task. */
static void test_task_per_request(void)
{
    struct sample_queue *q = squeue_new(4, 1 << 16);
    struct live *l = NULL;
    char err[256];
    CHECK(q != NULL, "queue");
    CHECK_INT(live_new(&l, q, err, sizeof err), 0);
    if (!q || !l)
        return;
    const int pid = 300;
    int64_t loop_wall = 0, run_wall = 0, susp_wall = 0, long_wall = 0;
    for (int k = 0; k < GTICKS; k++) {
        struct batch *b = get_free(q);
        int64_t ts = (int64_t)k * TICK_NS;
        if (k == 0) {
            add_thread(b, pid, pid, "MainThread");
            add_green_rec(b, pid, pid, LONG_TASK, 0, ts);
        }
        add_gsample(b, pid, pid, ts, 0, 0);
        loop_wall += WALL;
        add_gsample(b, pid, pid, ts, LONG_TASK, 1);
        long_wall += WALL;
        for (int w = 0; w < 2; w++) {
            uint32_t id = (uint32_t)(2 * k + w + 1);
            add_green_rec(b, pid, pid, id, 0, ts);
            add_gsample(b, pid, pid, ts, id, 0);
            run_wall += WALL;
            add_gsample(b, pid, pid, ts, id, 1);
            susp_wall += WALL;
            add_green_rec(b, pid, pid, id, 1, ts);
        }
        squeue_push(q, b);
    }
    /* task 1's id given again, long after task 1 was dropped */
    struct batch *b = get_free(q);
    int64_t ts = (int64_t)GTICKS * TICK_NS;
    add_green_rec(b, pid, pid, 1, 0, ts);
    add_gsample(b, pid, pid, ts, 1, 0);
    run_wall += WALL;
    squeue_push(q, b);
    squeue_close(q);
    struct live_snap s = { 0 };
    do {
        sched_yield();
        CHECK_INT(live_snapshot(l, 0, 0, &s), 0);
    } while (!s.h.done);

    /* 2001 tasks seen: those ended lately, the long one and the new task 1 */
    CHECK(s.h.greens < 100, "%zu green threads held of 2001", s.h.greens);
    /* two cells a task held (running, suspended) and a few for the loop */
    CHECK(s.h.cells < 300 && s.h.cells < 2 * s.h.greens + 10, "%zu call-tree cells for %zu green threads (4000 without dropping)",
          s.h.cells, s.h.greens);
    CHECK_INT((int)s.ngreens, 2);
    int seen_long = 0, seen_new = 0;
    for (size_t i = 0; i < s.ngreens; i++) {
        const struct live_green *g = &s.greens[i];
        if (g->id == LONG_TASK) {
            seen_long = 1;
            CHECK(g->susp_wall_ns == long_wall && g->samples == 0, "the long task");
        }
        if (g->id == 1) {
            seen_new = 1;
            CHECK(g->samples == 1 && g->wall_ns == WALL && g->susp_samples == 0,
                  "task 1's id again: %llu samples, %llu suspended (not a new task)",
                  (unsigned long long)g->samples, (unsigned long long)g->susp_samples);
        }
    }
    CHECK(seen_long && seen_new, "the long task and the new task 1 listed");
    /* the thread: every running sample and the loop's, no suspended one */
    CHECK_INT((int)s.nthreads, 1);
    if (s.nthreads == 1) {
        CHECK(s.threads[0].wall_ns == loop_wall + run_wall, "thread wall %lld", (long long)s.threads[0].wall_ns);
        CHECK(s.threads[0].cpu_ns == (loop_wall + run_wall) / 2, "thread cpu");
    }
    /* the call tree under every filter that is thread time */
    for (int f = 0; f < 2; f++) {
        uint32_t th = f ? s.threads[0].id : 0;
        CHECK_INT(live_snapshot(l, th, 0, &s), 0);
        int64_t total, self;
        CHECK(s.metric_total[Q_WALL] == loop_wall + run_wall, "filter %u: wall", th);
        CHECK(s.metric_total[Q_CPU] == (loop_wall + run_wall) / 2, "filter %u: cpu", th);
        func_wall(&s, "main", &total, &self);
        CHECK(total == loop_wall + run_wall && self == loop_wall, "filter %u: main %lld / %lld", th,
              (long long)total, (long long)self);
        func_wall(&s, "handle", &total, &self);
        CHECK(total == run_wall && self == run_wall, "filter %u: handle %lld", th, (long long)total);
        func_wall(&s, "sleep", &total, &self);
        CHECK(total == 0, "filter %u: suspended time in the thread's tree: %lld", th, (long long)total);
    }
    /* a green thread's view: its own lane alone */
    CHECK_INT(live_snapshot(l, 0, LONG_TASK, &s), 0);
    CHECK(s.metric_total[Q_WALL] == long_wall, "the long task's view %lld", (long long)s.metric_total[Q_WALL]);
    CHECK_INT(live_snapshot(l, 0, 1, &s), 0);
    CHECK(s.metric_total[Q_WALL] == WALL, "the new task 1's view %lld", (long long)s.metric_total[Q_WALL]);
    live_snap_fini(&s);
    live_free(l);
    squeue_free(q);
}

int main(void)
{
    test_thread_per_request();
    test_tid_reused();
    test_task_per_request();
    return check_done("live");
}
