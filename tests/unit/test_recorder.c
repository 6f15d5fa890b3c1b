/* profiler/recorder: batches pushed through the real queue (common/squeue)
 * come back from the file, read by profiler/model, as written: per thread
 * sample counts, CPU and wall sums, states, flags; each sample's frames
 * (name, file, line, first line) innermost first; interning (a code object
 * seen again, the same text behind two pointers, equal-length names);
 * thread names, the process and GIL rows, and the meta rows. A write that
 * fails (tests/unit/failvfs) stops sampling and makes recorder_finish
 * fail, and the batches committed before it still read back. */
#include "check.h"
#include "failvfs.h"

#include "common/err.h"
#include "common/squeue.h"
#include "profiler/model.h"
#include "profiler/recorder.h"
#include "profiler/query.h"
#include "profiler/store.h"
#include "formats/export.h"
#include "tracer/native/unwind.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- fake code objects (what the sampler's code cache would hold) ---- */

static char s_main2[] = "main"; /* the same text as c_main's name, elsewhere */

static struct py_code c_mod = { .name = "<module>", .qualname = "<module>", .file = "/app/main.py", .firstlineno = 1 };
static struct py_code c_main = { .name = "main", .qualname = "main", .file = "/app/main.py", .firstlineno = 5 };
/* recordings keep the qualified name (3.11+), as top shows it */
static struct py_code c_alpha = { .name = "alpha", .qualname = "Lib.alpha", .file = "/app/lib.py", .firstlineno = 10 };
/* same length as "alpha", another text */
static struct py_code c_gamma = { .name = "gamma", .qualname = "Lib.gamma", .file = "/app/lib.py", .firstlineno = 20 };
static struct py_code c_main2 = { .name = s_main2, .qualname = s_main2, .file = "/app/other.py", .firstlineno = 7 };

/* ---- building batches ---- */

static size_t rec_size(size_t bytes) { return (bytes + 7) & ~(size_t)7; }

static void *reserve(struct batch *b, size_t bytes)
{
    size_t n = rec_size(bytes);
    if (b->len + n > b->cap)
        return NULL;
    void *p = b->buf + b->len;
    memset(p, 0, n);
    b->len += n;
    ((struct rec_hdr *)p)->size = (uint16_t)n;
    return p;
}

/* frames: code, line pairs, innermost first */
struct fl {
    const struct py_code *code;
    int line;
};

static void add_sample(struct batch *b, int pid, int tid, int64_t ts, int64_t cpu, int64_t wall,
                       int state, int flags, int n, const struct fl *fr)
{
    struct rec_sample *s = reserve(b, sizeof *s + (size_t)n * sizeof(struct rec_frame));
    CHECK(s != NULL, "batch full");
    if (!s)
        return;
    s->h.kind = REC_SAMPLE;
    s->state = (uint8_t)state;
    s->flags = (uint8_t)flags;
    s->nframes = (uint16_t)n;
    s->pid = pid;
    s->tid = tid;
    s->ts = ts;
    s->cpu_ns = cpu;
    s->wall_ns = wall;
    for (int i = 0; i < n; i++)
        s->frames[i] = (struct rec_frame){ .code = fr[i].code, .line = fr[i].line };
}

static void add_green(struct batch *b, int pid, int tid, uint32_t id, int kind, int ended,
                      uint64_t addr, int64_t ts, const char *name, const char *func)
{
    struct rec_green *g = reserve(b, sizeof *g);
    if (!g)
        return;
    g->h.kind = REC_GREEN;
    g->pid = pid;
    g->tid = tid;
    g->id = id;
    g->kind = (uint8_t)kind;
    g->ended = (uint8_t)ended;
    g->addr = addr;
    g->ts = ts;
    snprintf(g->name, sizeof g->name, "%s", name);
    snprintf(g->func, sizeof g->func, "%s", func);
}

/* the last sample added: set its green thread */
static void set_green(struct batch *b, size_t at, uint32_t green)
{
    ((struct rec_sample *)(void *)(b->buf + at))->green = green;
}

static void add_thread(struct batch *b, int pid, int tid, uint64_t ident, const char *name)
{
    struct rec_thread *t = reserve(b, sizeof *t);
    if (!t)
        return;
    t->h.kind = REC_THREAD;
    t->pid = pid;
    t->tid = tid;
    t->ident = ident;
    snprintf(t->name, sizeof t->name, "%s", name);
}

static void add_process(struct batch *b, int pid, int ppid, const char *cmd, const char *version)
{
    struct rec_process *p = reserve(b, sizeof *p);
    if (!p)
        return;
    p->h.kind = REC_PROCESS;
    p->pid = pid;
    p->ppid = ppid;
    snprintf(p->cmd, sizeof p->cmd, "%s", cmd);
    snprintf(p->version, sizeof p->version, "%s", version);
}

static void add_gil(struct batch *b, int pid, int holder, int64_t ts, uint64_t switches, uint32_t waiters)
{
    struct rec_gil *g = reserve(b, sizeof *g);
    if (!g)
        return;
    g->h.kind = REC_GIL;
    g->pid = pid;
    g->holder_tid = holder;
    g->ts = ts;
    g->switches = switches;
    g->waiters = waiters;
}

/* A free batch: waits for the writer to give one back (the pool is small
 * on purpose, so that batches are reused). */
static struct batch *get_free(struct sample_queue *q)
{
    struct batch *b;
    while (!(b = squeue_get_free(q)))
        sched_yield();
    return b;
}

/* ---- reading back ---- */

/* The frames of a stack, innermost first: "name file:line (fn_line) < ..." */
/* A fresh recording NAME with a recorder writing into it from a queue of
 * NBATCHES batches of BSIZE bytes; 0 when everything started (checked). */
struct rec_fixture {
    char path[512];
    struct sample_queue *q;
    struct recorder *r;
    volatile sig_atomic_t stop;
};

static int fixture_start(struct rec_fixture *f, const char *name, size_t nbatches, size_t bsize,
                         const struct sampler_stats *st, int rate_hz)
{
    char err[512] = "";
    failvfs_tmp_path(f->path, sizeof f->path, "recorder", name);
    failvfs_rm(f->path);
    f->q = NULL;
    f->r = NULL;
    f->stop = 0;
    sqlite3 *db = NULL;
    CHECK_INT(store_create(f->path, NULL, &db, err, sizeof err), 0);
    if (!db)
        return -1;
    f->q = squeue_new(nbatches, bsize);
    CHECK(f->q != NULL, "squeue_new");
    if (f->q)
        CHECK_INT(recorder_start(&f->r, db, f->q, st, rate_hz, &f->stop, err, sizeof err), 0);
    if (!f->r) {
        squeue_free(f->q);
        return -1;
    }
    return 0;
}

static void stack_text(const struct model *m, uint32_t stack, char *out, size_t len)
{
    size_t n = 0;
    out[0] = 0;
    for (int guard = 0; stack && stack < m->nstacks && guard < 100; guard++) {
        const struct m_frame *f = &m->frames[m->stacks[stack].frame];
        n += (size_t)snprintf(out + n, n < len ? len - n : 0, "%s%s %s:%d (%d)", n ? " < " : "",
                              model_str(m, f->name), model_str(m, f->file), f->line, f->fn_line);
        if (n >= len)
            return;
        stack = m->stacks[stack].parent;
    }
}

/* The sample of thread tid at ts (exactly one). */
static const struct m_sample *sample_at(const struct model *m, int tid, int64_t ts)
{
    const struct m_sample *found = NULL;
    int n = 0;
    for (size_t i = 0; i < m->nsamples; i++) {
        const struct m_sample *s = &m->samples[i];
        if (s->ts == ts && s->thread < m->nthreads && m->threads[s->thread].tid == tid) {
            found = s;
            n++;
        }
    }
    CHECK(n == 1, "%d samples of tid %d at %lld", n, tid, (long long)ts);
    return n == 1 ? found : NULL;
}

static void check_sample(const struct model *m, int tid, int64_t ts, int64_t cpu, int64_t wall,
                         int state, int flags, const char *frames)
{
    const struct m_sample *s = sample_at(m, tid, ts);
    if (!s)
        return;
    CHECK(s->cpu_ns == cpu && s->wall_ns == wall, "tid %d ts %lld: cpu %lld wall %lld", tid,
          (long long)ts, (long long)s->cpu_ns, (long long)s->wall_ns);
    CHECK(s->state == state && s->flags == flags, "tid %d ts %lld: state %d flags %d", tid,
          (long long)ts, s->state, s->flags);
    char got[1024];
    stack_text(m, s->stack, got, sizeof got);
    CHECK(strcmp(got, frames) == 0, "tid %d ts %lld: frames \"%s\", want \"%s\"", tid,
          (long long)ts, got, frames);
}

struct thread_sums {
    size_t n;
    int64_t cpu, wall;
    size_t state[STATE_COUNT];
    size_t truncated;
};

static struct thread_sums sums_of(const struct model *m, int tid)
{
    struct thread_sums t = { 0 };
    for (size_t i = 0; i < m->nsamples; i++) {
        const struct m_sample *s = &m->samples[i];
        if (s->thread >= m->nthreads || m->threads[s->thread].tid != tid)
            continue;
        t.n++;
        t.cpu += s->cpu_ns;
        t.wall += s->wall_ns;
        if (s->state < STATE_COUNT)
            t.state[s->state]++;
        t.truncated += (s->flags & SAMPLE_TRUNCATED) != 0;
    }
    return t;
}

static void check_meta(const struct model *m, const char *key, const char *want)
{
    const char *v = model_meta(m, key);
    CHECK(v && strcmp(v, want) == 0, "meta %s = %s, want %s", key, v ? v : "(none)", want);
}

/* ---- tests ---- */

#define MAIN_STACK "main /app/main.py:6 (5) < <module> /app/main.py:3 (1)"
#define NBULK 70 /* more than the recorder's multi-row INSERT (64 rows) */

/* Three processes' worth of threads over three batches, read back. */
static void test_roundtrip(void)
{
    char err[512] = "";
    struct sampler_stats st0 = { .start_unix_ns = 1700000000123456789, .start_mono_ns = 555 };
    struct rec_fixture f;
    if (fixture_start(&f, "rt.sonde", 2, 16384, &st0, 97))
        return;
    const char *path = f.path;
    struct sample_queue *q = f.q;
    struct recorder *r = f.r;

    const struct fl s1[] = { { &c_alpha, 12 }, { &c_main, 6 }, { &c_mod, 3 } };
    const struct fl s3[] = { { &c_gamma, 21 }, { &c_main, 6 }, { &c_mod, 3 } };
    const struct fl s4[] = { { &c_alpha, 13 } };
    const struct fl s5[] = { { &c_main2, 8 } };
    /* s1's caller at another line: the memo of tid 100's last stack must
     * not take main:6 for main:9 */
    const struct fl s7[] = { { &c_alpha, 12 }, { &c_main, 9 }, { &c_mod, 3 } };
    const struct fl bulk[] = { { &c_gamma, 22 }, { &c_main, 6 }, { &c_mod, 3 } };

    /* batch 1: process 100, MainThread (100) and worker (101) */
    struct batch *b = get_free(q);
    add_process(b, 100, 1, "python3 main.py", "3.12.1");
    add_sample(b, 100, 100, 1000, 10, 100, STATE_GIL, 0, 3, s1);
    add_sample(b, 100, 101, 1000, 0, 100, STATE_IDLE, 0, 0, NULL); /* no Python frames */
    add_sample(b, 100, 100, 2000, 20, 100, STATE_GIL_WAIT, SAMPLE_GIL_OFFCPU, 3, s3);
    add_thread(b, 100, 100, 0x1111, "MainThread");
    add_thread(b, 100, 101, 0x2222, "worker");
    squeue_push(q, b);

    /* batch 2: a truncated stack, a second process, the GIL, s1 again */
    b = get_free(q);
    add_sample(b, 100, 101, 2000, 30, 100, STATE_NOGIL, SAMPLE_TRUNCATED, 1, s4);
    add_process(b, 200, 100, "python3 other.py", "3.11.9");
    add_sample(b, 200, 201, 2500, 5, 50, STATE_GIL, 0, 1, s5);
    add_gil(b, 100, 100, 2000, 7, 1);
    add_sample(b, 100, 100, 3000, 40, 100, STATE_GIL, 0, 3, s1);
    add_sample(b, 100, 100, 3500, 8, 50, STATE_IDLE, 0, 3, s7);
    squeue_push(q, b);

    /* batch 3 (reuses a batch): many samples of the worker, one stack */
    b = get_free(q);
    for (int i = 0; i < NBULK; i++)
        add_sample(b, 100, 101, 4000 + i, 1, 10, STATE_GIL, 0, 3, bulk);
    squeue_push(q, b);
    squeue_close(q);

    struct sampler_stats st = st0;
    st.ticks = 74;
    st.samples = 77;
    st.errors = 2;
    st.dropped = 3;
    st.late_ticks = 4;
    st.truncated = 1;
    st.duration_ns = 987654321;
    st.cpu_s = 0.25;
    st.process_cpu_s = 0.5;
    snprintf(st.sched, sizeof st.sched, "SCHED_FIFO 10");
    CHECK_INT(recorder_finish(r, &st, 42, 97, err, sizeof err), 0);
    CHECK_INT(f.stop, 0);
    squeue_free(q);

    struct model *m = NULL;
    CHECK_INT(model_load(path, &m, err, sizeof err), 0);
    CHECK(m != NULL, "model_load: %s", err);
    if (!m)
        return;

    /* per thread */
    CHECK_INT(m->nthreads, 4); /* ids 1..3 */
    CHECK_INT(m->nsamples, 4 + 2 + NBULK + 1);
    struct thread_sums t1 = sums_of(m, 100), t2 = sums_of(m, 101), t3 = sums_of(m, 201);
    CHECK_INT(t1.n, 4);
    CHECK_INT(t1.cpu, 10 + 20 + 40 + 8);
    CHECK_INT(t1.wall, 350);
    CHECK(t1.state[STATE_GIL] == 2 && t1.state[STATE_GIL_WAIT] == 1 && t1.state[STATE_IDLE] == 1,
          "tid 100 states %zu %zu %zu", t1.state[STATE_GIL], t1.state[STATE_GIL_WAIT],
          t1.state[STATE_IDLE]);
    CHECK_INT(t2.n, 2 + NBULK);
    CHECK_INT(t2.cpu, 30 + NBULK);
    CHECK_INT(t2.wall, 200 + 10 * NBULK);
    CHECK(t2.state[STATE_IDLE] == 1 && t2.state[STATE_NOGIL] == 1 && t2.state[STATE_GIL] == NBULK,
          "tid 101 states %zu %zu %zu", t2.state[STATE_IDLE], t2.state[STATE_NOGIL], t2.state[STATE_GIL]);
    CHECK_INT(t2.truncated, 1);
    CHECK_INT(t3.n, 1);
    CHECK_INT(t3.cpu, 5);
    CHECK_INT(t3.wall, 50);
    CHECK_INT(t3.state[STATE_GIL], 1);

    uint32_t th1 = model_find_thread(m, "MainThread"), th2 = model_find_thread(m, "worker"),
             th3 = model_find_thread(m, "201");
    CHECK(th1 && th2 && th3 && th1 != th2 && th2 != th3 && th1 != th3, "threads %u %u %u", th1, th2, th3);
    if (th1 && th2 && th3) {
        CHECK(m->threads[th1].pid == 100 && m->threads[th1].tid == 100 && m->threads[th1].ident == 0x1111,
              "MainThread row");
        CHECK(m->threads[th2].pid == 100 && m->threads[th2].tid == 101 && m->threads[th2].ident == 0x2222,
              "worker row");
        CHECK(m->threads[th3].pid == 200 && m->threads[th3].ident == 0, "tid 201 row");
        CHECK_STR(m->threads[th3].name, "");
    }

    /* each sample, its frames innermost first */
    check_sample(m, 100, 1000, 10, 100, STATE_GIL, 0, "Lib.alpha /app/lib.py:12 (10) < " MAIN_STACK);
    check_sample(m, 101, 1000, 0, 100, STATE_IDLE, 0, "");
    check_sample(m, 100, 2000, 20, 100, STATE_GIL_WAIT, SAMPLE_GIL_OFFCPU,
                 "Lib.gamma /app/lib.py:21 (20) < " MAIN_STACK);
    check_sample(m, 101, 2000, 30, 100, STATE_NOGIL, SAMPLE_TRUNCATED, "Lib.alpha /app/lib.py:13 (10)");
    check_sample(m, 201, 2500, 5, 50, STATE_GIL, 0, "main /app/other.py:8 (7)");
    check_sample(m, 100, 3000, 40, 100, STATE_GIL, 0, "Lib.alpha /app/lib.py:12 (10) < " MAIN_STACK);
    check_sample(m, 100, 3500, 8, 50, STATE_IDLE, 0,
                 "Lib.alpha /app/lib.py:12 (10) < main /app/main.py:9 (5) < <module> /app/main.py:3 (1)");
    for (int i = 0; i < NBULK; i += 23)
        check_sample(m, 101, 4000 + i, 1, 10, STATE_GIL, 0, "Lib.gamma /app/lib.py:22 (20) < " MAIN_STACK);
    check_sample(m, 101, 4000 + NBULK - 1, 1, 10, STATE_GIL, 0, "Lib.gamma /app/lib.py:22 (20) < " MAIN_STACK);
    /* s1 seen twice: one stack */
    const struct m_sample *a = sample_at(m, 100, 1000), *c = sample_at(m, 100, 3000);
    CHECK(a && c && a->stack == c->stack, "the same stack twice got two ids");

    /* interning: 8 distinct (code, line), 9 trie nodes, 7 distinct texts */
    CHECK_INT(m->nframes, 9);
    CHECK_INT(m->nstacks, 10);
    size_t nstr = 0;
    int dup = 0;
    for (size_t i = 1; i < m->nstrings; i++) {
        if (!m->strings[i])
            continue;
        nstr++;
        for (size_t j = 1; j < i; j++)
            dup |= m->strings[j] && !strcmp(m->strings[i], m->strings[j]);
    }
    CHECK_INT(nstr, 7); /* <module> main alpha gamma and three files */
    CHECK(!dup, "a text stored twice");

    /* GIL */
    CHECK_INT(m->ngil, 1);
    if (m->ngil)
        CHECK(m->gil[0].ts == 2000 && m->gil[0].switches == 7 && m->gil[0].pid == 100 &&
                  m->gil[0].holder == th1 && m->gil[0].waiters == 1,
              "gil row %lld %lld %u", (long long)m->gil[0].ts, (long long)m->gil[0].switches,
              m->gil[0].holder);

    /* meta: the first process, the start, the sampler's figures */
    check_meta(m, "pid", "100");
    check_meta(m, "cmd", "python3 main.py");
    check_meta(m, "python_version", "3.12.1");
    check_meta(m, "rate_hz", "97");
    check_meta(m, "start_unix_ns", "1700000000123456789");
    check_meta(m, "start_mono_ns", "555");
    check_meta(m, "duration_ns", "987654321");
    check_meta(m, "samples", "77"); /* as the recorder counted them */
    check_meta(m, "ticks", "74");
    check_meta(m, "errors", "2");
    check_meta(m, "dropped", "3");
    check_meta(m, "late_ticks", "4");
    check_meta(m, "truncated", "1");
    check_meta(m, "gil_switches", "42");
    check_meta(m, "sampler_cpu_s", "0.250000");
    check_meta(m, "process_cpu_s", "0.500000");
    check_meta(m, "sampler_sched", "SCHED_FIFO 10");
    model_free(m);
    failvfs_rm(path);
}

/* A batch cannot be committed (the WAL cannot grow): sampling is told to
 * stop, recorder_finish fails with the reason, the batch before it reads
 * back and the recording's duration_ns ends at its last committed sample. */
static void test_write_fails(void)
{
    char err[512] = "";
    struct sampler_stats st = { .start_unix_ns = 1, .duration_ns = 99999 };
    struct rec_fixture f;
    if (fixture_start(&f, "full.sonde", 1, 4096, &st, 100))
        return;
    const char *path = f.path;
    struct sample_queue *q = f.q;
    struct recorder *r = f.r;
    const struct fl s1[] = { { &c_alpha, 12 }, { &c_main, 6 } };
    struct batch *b = get_free(q);
    add_sample(b, 100, 100, 1000, 1, 10, STATE_GIL, 0, 2, s1);
    add_sample(b, 100, 100, 2000, 1, 10, STATE_GIL, 0, 2, s1);
    squeue_push(q, b);
    b = get_free(q); /* the only batch: back once the first is committed */
    failvfs_wal = 1;
    add_sample(b, 100, 100, 3000, 1, 10, STATE_GIL, 0, 1, s1);
    squeue_push(q, b);
    get_free(q); /* its commit failed; the disk has room again for the end */
    failvfs_wal = 0;
    squeue_close(q);
    err[0] = 0;
    int rc = recorder_finish(r, &st, 0, 100, err, sizeof err);
    CHECK(rc < 0, "recorder_finish = %d after a failed write", rc);
    CHECK(strstr(err, "writing the recording failed") != NULL, "err: %s", err);
    CHECK_INT(f.stop, 1);
    squeue_free(q);

    struct model *m = NULL;
    CHECK_INT(model_load(path, &m, err, sizeof err), 0);
    if (m) {
        CHECK_INT(m->nsamples, 2);
        /* written at the end, not the sampler's 99999: the last stored sample */
        const char *d = model_meta(m, "duration_ns");
        CHECK(d && strcmp(d, "2000") == 0, "duration_ns %s", d ? d : "(none)");
        model_free(m);
    }
    failvfs_rm(path);
}

/* Everything is committed, but the end of the file (the checkpoint into
 * the main database when it closes) cannot be written: an error too. */
static void test_close_fails(void)
{
    char err[512] = "";
    struct sampler_stats st = { .start_unix_ns = 1, .duration_ns = 5000 };
    struct rec_fixture f;
    if (fixture_start(&f, "close.sonde", 1, 4096, &st, 100))
        return;
    const char *path = f.path;
    struct sample_queue *q = f.q;
    struct recorder *r = f.r;
    const struct fl s1[] = { { &c_gamma, 21 } };
    struct batch *b = get_free(q);
    add_sample(b, 100, 100, 1000, 1, 10, STATE_GIL, 0, 1, s1);
    squeue_push(q, b);
    get_free(q); /* the writer is done with it (kept: freed with the queue) */
    squeue_close(q);
    failvfs_main = 1;
    int rc = recorder_finish(r, &st, 0, 100, err, sizeof err);
    failvfs_main = 0;
    CHECK(rc == -ENOSPC, "recorder_finish = %d, want -ENOSPC (%s)", rc, err);
    squeue_free(q);
    failvfs_rm(path);
}

/* Green threads through the recorder and back: the green table (named,
 * renamed, ended, one never ended), running samples tagged on their
 * thread's samples, suspended samples apart from the threads' (the
 * thread's totals do not change), and the queries and call tree filter
 * read both. */
static void test_green(void)
{
    char err[512] = "";
    struct sampler_stats st0 = { .start_unix_ns = 1700000000000000000 };
    struct rec_fixture f;
    if (fixture_start(&f, "green.sonde", 2, 16384, &st0, 100))
        return;
    const struct fl loop[] = { { &c_main, 6 }, { &c_mod, 3 } };
    const struct fl work[] = { { &c_alpha, 12 }, { &c_main, 6 }, { &c_mod, 3 } };
    const struct fl wait[] = { { &c_gamma, 21 } }; /* where task 2 is suspended */
    struct batch *b = get_free(f.q);
    add_process(b, 100, 1, "python3 aio.py", "3.12.1");
    add_thread(b, 100, 100, 0x1111, "MainThread");
    add_green(b, 100, 100, 1, GREEN_TASK, 0, 0x7f0001, 500, "Task-1", "compute");
    add_green(b, 100, 100, 2, GREEN_TASK, 0, 0x7f0002, 500, "Task-2", "waiter");
    for (int i = 0; i < 10; i++) {
        int64_t ts = 1000 * (i + 1);
        size_t at = b->len;
        /* task 1 runs at even ticks, the loop itself (green 0) at odd ones */
        add_sample(b, 100, 100, ts, i % 2 ? 100 : 900, 1000, i % 2 ? STATE_IDLE : STATE_GIL, 0,
                   i % 2 ? 2 : 3, i % 2 ? loop : work);
        if (i % 2 == 0)
            set_green(b, at, 1);
        at = b->len;
        add_sample(b, 100, 100, ts, 0, 1000, STATE_IDLE, SAMPLE_SUSPENDED, 1, wait);
        set_green(b, at, 2);
    }
    add_green(b, 100, 100, 2, GREEN_TASK, 0, 0x7f0002, 5000, "renamed", "waiter");
    add_green(b, 100, 100, 1, GREEN_TASK, 1, 0, 9500, "", "");
    /* a greenlet that ended before it was announced: its end makes the row;
     * and a sample of green thread 5, whose announce was lost: a lane
     * without a name, never a damaged file */
    size_t at5 = b->len;
    add_sample(b, 100, 100, 10500, 7, 500, STATE_GIL, 0, 2, loop);
    set_green(b, at5, 3);
    add_green(b, 100, 100, 3, GREEN_GREENLET, 1, 0x7f0003, 10400, "quick", "run");
    at5 = b->len;
    add_sample(b, 100, 100, 11000, 0, 500, STATE_IDLE, SAMPLE_SUSPENDED, 1, wait);
    set_green(b, at5, 5);
    squeue_push(f.q, b);
    squeue_close(f.q);
    struct sampler_stats st = st0;
    st.duration_ns = 10000;
    CHECK_INT(recorder_finish(f.r, &st, 0, 100, err, sizeof err), 0);
    squeue_free(f.q);

    struct model *m = NULL;
    CHECK_INT(model_load(f.path, &m, err, sizeof err), 0);
    if (!m)
        return;
    CHECK_INT(m->nsamples, 11);  /* the thread's own */
    CHECK_INT(m->ngsamples, 11); /* task 2's and 5's, apart */
    CHECK_INT(m->ngreens, 6);
    CHECK_STR(m->greens[3].name, "quick");
    CHECK_STR(m->greens[3].func, "run");
    CHECK_INT(m->greens[3].kind, GREEN_GREENLET);
    CHECK_INT(m->greens[3].end_ns, 10400);
    CHECK_STR(m->greens[5].name, "");
    CHECK_INT(m->greens[5].end_ns, -1);
    CHECK_STR(m->greens[1].name, "Task-1");
    CHECK_STR(m->greens[1].func, "compute");
    CHECK_INT(m->greens[1].end_ns, 9500);
    CHECK_INT(m->greens[1].addr, 0x7f0001);
    CHECK_INT(m->greens[1].kind, GREEN_TASK);
    CHECK_STR(m->greens[2].name, "renamed");
    CHECK_INT(m->greens[2].end_ns, -1);
    CHECK_INT(m->greens[2].start_ns, 500);
    CHECK(m->greens[2].thread && m->threads[m->greens[2].thread].tid == 100, "task 2's thread");
    struct thread_sums t = sums_of(m, 100);
    CHECK_INT(t.n, 11);
    CHECK_INT(t.wall, 10500);
    CHECK_INT(t.cpu, 5 * 900 + 5 * 100 + 7);
    struct q_green *g = NULL;
    size_t n = 0;
    CHECK_INT(query_greens(m, &g, &n), 0);
    CHECK_INT(n, 4);
    if (n == 4) {
        CHECK_INT(g[2].green, 3);
        CHECK_INT(g[2].samples, 1);
        CHECK_INT(g[3].green, 5);
        CHECK_INT(g[0].green, 1);
        CHECK_INT(g[0].samples, 5);
        CHECK(g[0].cpu_s > 4499e-9 && g[0].cpu_s < 4501e-9, "task 1 cpu %g", g[0].cpu_s);
        CHECK(g[0].running_s == g[0].wall_s, "task 1 runs whenever sampled");
        CHECK_INT(g[1].samples, 10);
        CHECK(g[1].running_s == 0 && g[1].cpu_s == 0, "task 2 never runs");
        CHECK(g[1].wall_s > 9999e-9 && g[1].wall_s < 10001e-9, "task 2 wall %g", g[1].wall_s);
    }
    free(g);
    /* functions of task 2: its suspended stack only; of task 1: alpha */
    struct q_func *fn = NULL;
    CHECK_INT(query_functions(m, &(struct ct_filter){ .green = 2 }, Q_WALL, 0, &fn, &n), 0);
    CHECK_INT(n, 1);
    if (n == 1)
        CHECK_STR(model_str(m, fn[0].name), "Lib.gamma");
    free(fn);
    CHECK_INT(query_functions(m, &(struct ct_filter){ .green = 1 }, Q_CPU, 1, &fn, &n), 0);
    CHECK(n >= 1 && !strcmp(model_str(m, fn[0].name), "Lib.alpha"), "task 1's top function");
    free(fn);
    /* the threads' view never sees gamma */
    CHECK_INT(query_functions(m, NULL, Q_WALL, 0, &fn, &n), 0);
    for (size_t i = 0; i < n; i++)
        CHECK(strcmp(model_str(m, fn[i].name), "Lib.gamma") != 0, "a suspended stack in the threads' view");
    free(fn);
    size_t several = 0;
    CHECK_INT(model_find_green(m, "renamed", &several), 2);
    CHECK_INT(several, 1);
    CHECK_INT(model_find_green(m, "1", &several), 1);
    CHECK_INT(model_find_green(m, "nope", &several), 0);
    model_free(m);
    failvfs_rm(f.path);
}

/* Native frames: two functions of one name in one module without line
 * information (statics of different source files, no DWARF) stay two
 * functions in the recording and in callgrind, told apart by offset. */
static void test_native_same_name(void)
{
    char err[512] = "";
    struct sampler_stats st0 = { .start_unix_ns = 1700000000000000000 };
    struct rec_fixture f;
    if (fixture_start(&f, "nat.sonde", 2, 16384, &st0, 100))
        return;
    static const struct nat_sym d1 = { "dealloc", NULL, 0, "/lib/libx.so", 0x123, 0x100, 0, 0 };
    static const struct nat_sym d2 = { "dealloc", NULL, 0, "/lib/libx.so", 0x234, 0x200, 0, 0 };
    static const struct nat_sym d1b = { "dealloc", NULL, 0, "/lib/libx.so", 0x130, 0x100, 0, 0 };
    const struct nat_sym *at[] = { &d1, &d2, &d1b };
    struct batch *b = get_free(f.q);
    add_process(b, 100, 1, "python3 x.py", "3.12.1");
    add_thread(b, 100, 100, 0x1111, "MainThread");
    for (int i = 0; i < 3; i++) {
        const struct fl py[] = { { &c_main, 6 }, { &c_mod, 3 } };
        add_sample(b, 100, 100, 1000 * (i + 1), 100, 1000, STATE_NOGIL, 0, 2, py);
        /* the sample just added: its innermost frame becomes native */
        struct rec_sample *sm = (struct rec_sample *)(b->buf + b->len - sizeof *sm - 2 * sizeof(struct rec_frame));
        sm->frames[0] = (struct rec_frame){ .nat = at[i], .line = 0, .native = 1 };
    }
    squeue_push(f.q, b);
    squeue_close(f.q);
    struct sampler_stats st = st0;
    st.duration_ns = 3000;
    CHECK_INT(recorder_finish(f.r, &st, 0, 100, err, sizeof err), 0);
    squeue_free(f.q);
    struct model *m = NULL;
    CHECK_INT(model_load(f.path, &m, err, sizeof err), 0);
    if (!m)
        return;
    int natives = 0;
    for (size_t i = 1; i < m->nframes; i++)
        natives += m->frames[i].kind == 1;
    CHECK_INT(natives, 2); /* d1 and d1b are one function, d2 another */
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    struct export_opts o = { .mode = EXPORT_WALL };
    CHECK_INT(export_callgrind.write(m, &o, out, err, sizeof err), 0);
    fclose(out);
    CHECK(buf && strstr(buf, "dealloc'0x100") && strstr(buf, "dealloc'0x200"),
          "callgrind names the two by offset");
    free(buf);
    model_free(m);
    failvfs_rm(f.path);
}

int main(void)
{
    failvfs_install();
    test_roundtrip();
    test_green();
    test_native_same_name();
    test_write_fails();
    test_close_fails();
    return check_done("recorder");
}
