/* profiler/query on the synthetic recording with three threads
 * (tests/unit/synth.c, SYNTH_THREADS): every figure below is worked out by
 * hand from how that recording is written. 300 ticks of 5 ms, i = 0..299:
 *   MainThread: <module> -> join -> _wait_for_tstate_lock, idle, no CPU;
 *   worker-1: _bootstrap -> run -> spin, and -> crunch under spin when
 *     i % 4 == 0 (75 samples); state by (i / 10) % 3: gil, gil_wait, nogil
 *     (100 each); CPU 0.1 ms while waiting, else 4.9 ms;
 *   worker-2: spin while worker-1 holds (gil_wait) or waits (gil) for the
 *     GIL, 4 ms CPU; idle otherwise (100 samples): nap, or no Python frames
 *     when i % 5 == 0 (20 samples). */
#include "check.h"
#include "synth_load.h"

#include "profiler/query.h"

#include <math.h>
#include <string.h>

#define NEAR(got, want) CHECK(fabs((got) - (want)) < 1e-9, "%s = %.9f, want %.9f", #got, (double)(got), (double)(want))

static const struct q_func *find(const struct model *m, const struct q_func *f, size_t n,
                                 const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(model_str(m, f[i].name), name))
            return &f[i];
    return NULL;
}

static void test_threads(const struct model *m)
{
    struct q_thread *t;
    size_t n;
    CHECK_INT(query_threads(m, &t, &n), 0);
    CHECK_INT(n, 3);
    CHECK(t[0].thread == 1 && t[1].thread == 2 && t[2].thread == 3, "thread order");
    CHECK_INT(t[0].samples, 300);
    NEAR(t[0].wall_s, 1.5);
    NEAR(t[0].cpu_s, 0);
    NEAR(t[0].state_s[STATE_IDLE], 1.5);
    NEAR(t[1].cpu_s, 100 * 0.0001 + 200 * 0.0049);
    for (int s = STATE_GIL; s <= STATE_NOGIL; s++)
        NEAR(t[1].state_s[s], 0.5);
    NEAR(t[2].cpu_s, 200 * 0.004);
    NEAR(t[2].state_s[STATE_IDLE], 0.5);
    free(t);
}

static void test_functions_all(const struct model *m)
{
    struct q_func *f;
    size_t n;
    CHECK_INT(query_functions(m, NULL, Q_WALL, 0, &f, &n), 0);
    /* by total wall, ties by self, then by name id (the order written) */
    const char *order[] = { "_bootstrap", "run", "spin", "_wait_for_tstate_lock", "<module>",
                            "join", "nap", "crunch" };
    CHECK_INT(n, 8);
    for (size_t i = 0; i < n && i < 8; i++)
        CHECK_STR(model_str(m, f[i].name), order[i]);
    const struct q_func *q = find(m, f, n, "run");
    CHECK(q != NULL, "no run");
    if (q) { /* 300 + 280 samples (worker-2's 20 without frames are not under run) */
        NEAR(q->total[Q_WALL], 580 * 0.005);
        NEAR(q->self[Q_WALL], 0);
        CHECK_INT(q->fn_line, 970);
    }
    q = find(m, f, n, "spin"); /* both of its lines are one function */
    if (q) {
        NEAR(q->total[Q_WALL], 500 * 0.005);
        NEAR(q->self[Q_WALL], 425 * 0.005);
        NEAR(q->total[Q_GIL], 200 * 0.005);
        NEAR(q->total[Q_CPU], 0.99 + 0.8);
    }
    q = find(m, f, n, "nap");
    if (q) {
        NEAR(q->total[Q_WALL], 80 * 0.005);
        NEAR(q->total[Q_CPU], 0);
    }
    free(f);
}

static void test_functions_worker(const struct model *m)
{
    struct q_func *f;
    size_t n;
    CHECK_INT(query_functions(m, &(struct ct_filter){ .thread = 2 }, Q_CPU, 1, &f, &n), 0);
    CHECK_INT(n, 4); /* _bootstrap, run, spin, crunch */
    CHECK_STR(model_str(m, f[0].name), "spin"); /* sorted by self CPU */
    const struct q_func *c = find(m, f, n, "crunch");
    CHECK(c != NULL, "no crunch");
    if (c) {
        /* i % 4 == 0: 25 samples waiting for the GIL (0.1 ms CPU), 25 of them holding it */
        NEAR(c->self[Q_WALL], 75 * 0.005);
        NEAR(c->self[Q_CPU], 25 * 0.0001 + 50 * 0.0049);
        NEAR(c->total[Q_GIL], 25 * 0.005);
    }
    const struct q_func *s = find(m, f, n, "spin");
    if (s) {
        NEAR(s->total[Q_WALL], 1.5);
        NEAR(s->self[Q_WALL], 225 * 0.005);
        NEAR(s->total[Q_CPU], 0.99);
    }
    free(f);
}

static void test_gil(const struct model *m)
{
    struct q_gil g;
    query_gil(m, &g);
    NEAR(g.held_pct, 100);
    NEAR(g.contended_pct, 100);
    NEAR(g.mean_waiters, 1);
    NEAR(g.wait_s, 200 * 0.005);
    NEAR(g.held_s, 200 * 0.005);
    NEAR(g.held_offcpu_s, 0);
    NEAR(g.duration_s, 1.5);
}

/* Recursion counts once per sample: in SYNTH_RECURSIVE f is on 7 of every
 * 8 stacks, up to 6 deep, and its total is the wall of those samples. */
static void test_recursion(void)
{
    char path[256];
    struct model *m = synth_load(SYNTH_RECURSIVE, 0, path);
    CHECK(m != NULL, "no model");
    if (!m)
        return;
    int64_t f_wall = 0, all = 0;
    for (int i = 0; i < 200; i++) { /* as synth.c writes them */
        int64_t wall = 10000000 + (i % 7) * 1000;
        all += wall;
        if (i % 8 != 7)
            f_wall += wall;
    }
    struct q_func *f;
    size_t n;
    CHECK_INT(query_functions(m, NULL, Q_WALL, 0, &f, &n), 0);
    CHECK_INT(n, 5);
    const struct q_func *q = find(m, f, n, "f");
    if (q) {
        NEAR(q->total[Q_WALL], (double)f_wall / 1e9);
        NEAR(q->self[Q_WALL], (double)f_wall / 1e9);
    }
    q = find(m, f, n, "main");
    if (q)
        NEAR(q->total[Q_WALL], (double)all / 1e9);
    free(f);
    synth_unload(m, path);
}

int main(void)
{
    char path[256];
    struct model *m = synth_load(SYNTH_THREADS, 0, path);
    CHECK(m != NULL, "no model");
    if (m) {
        test_threads(m);
        test_functions_all(m);
        test_functions_worker(m);
        test_gil(m);
        synth_unload(m, path);
    }
    test_recursion();
    return check_done("query");
}
