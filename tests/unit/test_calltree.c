/* profiler/calltree: the structure of the merged tree (recursion keeps one
 * node per depth, lines of one function share a node, node 1 holds the
 * samples without Python frames) and each filter of struct ct_filter, on
 * the synthetic recordings of tests/unit/synth.c (SYNTH_THREADS is
 * described in test_query.c: 300 ticks of 5 ms over 3 threads). */
#include "check.h"
#include "synth_load.h"

#include "profiler/calltree.h"

#include <errno.h>
#include <string.h>

static int64_t weigh_samples(const struct calltree *t, const struct model *m,
                             const struct ct_filter *f)
{
    struct ct_weights w;
    if (calltree_weigh(t, m, f, &w))
        return -1;
    int64_t n = w.all.samples;
    CHECK_INT(w.total[0].samples, n); /* the root holds every selected sample */
    ct_weights_fini(&w);
    return n;
}

static void test_structure(void)
{
    char path[256];
    struct model *m = synth_load(SYNTH_RECURSIVE, 0, path);
    CHECK(m != NULL, "no model");
    if (!m)
        return;
    struct calltree *t;
    CHECK_INT(calltree_new(m, NULL, &t), 0);
    /* functions: [no frames], <module>, main, f, g, leaf */
    CHECK_INT(t->nfuncs, 6);
    CHECK_STR(calltree_func_name(m, t, 0), "[no Python frames]");
    CHECK_STR(calltree_func_file(m, t, 0), "[sonde]");
    /* root, node 1, <module>, main, f at depths 1..6 under main, g under
     * the second f and f under g, leaf */
    CHECK_INT(t->nnodes, 13);
    CHECK_INT(t->maxdepth, 8); /* <module> main f f g f ... or f x6 = 8 */
    CHECK_INT(t->w.self[1].samples, 0);
    CHECK_INT(t->w.total[0].samples, 200);
    /* the chain of f: each node's only f child, 6 deep */
    uint32_t main_node = t->nodes[t->nodes[0].child].sibling; /* after node 1 */
    main_node = t->nodes[main_node].child;
    CHECK_STR(calltree_func_name(m, t, t->nodes[main_node].func), "main");
    int fdepth = 0;
    for (uint32_t n = main_node, next = 1; next;) {
        next = 0;
        for (uint32_t c = t->nodes[n].child; c; c = t->nodes[c].sibling)
            if (!strcmp(calltree_func_name(m, t, t->nodes[c].func), "f"))
                next = c;
        if (next) {
            fdepth++;
            n = next;
        }
    }
    CHECK_INT(fdepth, 6);
    /* flat: f counts once per sample however deep (7 of every 8 samples) */
    struct ct_cost self[6], total[6];
    CHECK_INT(calltree_flat(t, &t->w, self, total), 0);
    uint32_t f = 0;
    for (uint32_t k = 1; k < t->nfuncs; k++)
        if (!strcmp(calltree_func_name(m, t, k), "f"))
            f = k;
    CHECK_INT(total[f].samples, 175);
    CHECK_INT(self[f].samples, 175);
    int64_t sum = 0;
    for (uint32_t k = 0; k < t->nfuncs; k++)
        sum += self[k].wall_ns;
    CHECK_INT(sum, t->w.all.wall_ns); /* self times add up to the whole */
    calltree_free(t);
    synth_unload(m, path);
}

static void test_filters(void)
{
    char path[256];
    struct model *m = synth_load(SYNTH_THREADS, 0, path);
    CHECK(m != NULL, "no model");
    if (!m)
        return;
    struct calltree *t;
    struct ct_filter f = { .thread = 2 };
    CHECK_INT(calltree_new(m, &f, &t), 0);
    CHECK_INT(t->w.all.samples, 300);
    CHECK_INT(t->w.all.wall_ns, 1500000000);
    CHECK_INT(t->w.all.gil_ns, 100 * 5000000);
    CHECK_INT(t->w.all.cpu_ns, 100 * 100000 + 200 * 4900000);
    CHECK_INT(t->w.all.cpu_us, 100 * 100 + 200 * 4900);
    CHECK_INT(t->w.self[1].samples, 0);
    CHECK_INT(t->maxdepth, 4);
    /* the structure is the same under every filter: weigh it again */
    CHECK_INT(weigh_samples(t, m, &(struct ct_filter){ 0 }), 900);
    CHECK_INT(weigh_samples(t, m, NULL), 900);
    uint8_t set[4] = { 0, 1, 0, 1 };
    CHECK_INT(weigh_samples(t, m, &(struct ct_filter){ .threads = set }), 600);
    CHECK_INT(weigh_samples(t, m, &(struct ct_filter){ .states = 1u << STATE_IDLE }), 400);
    CHECK_INT(weigh_samples(t, m, &(struct ct_filter){ .states = 1u << STATE_GIL }), 200);
    CHECK_INT(weigh_samples(t, m,
                            &(struct ct_filter){ .states = 1u << STATE_GIL_WAIT | 1u << STATE_NOGIL }),
              300);
    /* ts 5 ms * (i + 1): [55 ms, 105 ms) is ticks i = 10..19 */
    CHECK_INT(weigh_samples(t, m, &(struct ct_filter){ .timed = 1, .from_ns = 55000000, .to_ns = 105000000 }),
              30);
    CHECK_INT(weigh_samples(t, m, &(struct ct_filter){ .timed = 1, .from_ns = 1, .to_ns = 1 }), 0);
    /* filters combine: worker-2 while idle, 20 of them without frames */
    struct ct_filter idle3 = { .thread = 3, .states = 1u << STATE_IDLE };
    struct ct_weights w;
    CHECK_INT(calltree_weigh(t, m, &idle3, &w), 0);
    CHECK_INT(w.all.samples, 100);
    CHECK_INT(w.stack[0].samples, 20);
    CHECK_INT(w.self[1].samples, 20);
    CHECK_INT(w.total[1].samples, 20);
    ct_weights_fini(&w);
    calltree_free(t);
    /* node 1 counts in the depth only when its samples are selected */
    CHECK_INT(calltree_new(m, &idle3, &t), 0);
    CHECK_INT(t->maxdepth, 4);
    calltree_free(t);
    synth_unload(m, path);
}

/* The tree grown sample by sample (ct_grow, what top uses) equals the one
 * built from the recording: the same nodes, and per function the same
 * self and total costs, for every thread and for all of them; a reset
 * zeroes the costs and keeps the structure. */
static void check_grow_matches(const char *what, int kind)
{
    char path[256];
    struct model *m = synth_load(kind, 0, path);
    CHECK(m != NULL, "no model");
    if (!m)
        return;
    struct calltree *t;
    struct ct_grow g;
    CHECK_INT(calltree_new(m, NULL, &t), 0);
    CHECK_INT(ct_grow_init(&g), 0);
    uint32_t frames[256];
    for (size_t i = 0; i < m->nsamples; i++) {
        const struct m_sample *s = &m->samples[i];
        uint32_t n = calltree_stack_frames(m, s->stack, frames, 256), node = 0;
        for (uint32_t k = 0; k < n; k++) {
            const struct m_frame *f = &m->frames[frames[k]];
            uint32_t fn = ct_grow_func(&g, model_str(m, f->name), model_str(m, f->file), f->fn_line);
            CHECK(fn != 0, "%s: no function", what);
            node = ct_grow_child(&g, node, fn);
            CHECK(node != 0, "%s: no node", what);
        }
        CHECK_INT(ct_grow_add(&g, s->thread, node ? node : 1, s->wall_ns, s->cpu_ns, s->state), 0);
    }
    CHECK_INT(g.t.nnodes, t->nnodes);
    CHECK_INT(g.t.nfuncs, t->nfuncs);
    CHECK_INT(g.t.maxdepth, t->maxdepth);
    struct ct_cost ms[64], mt[64], gs[64], gt[64];
    CHECK(t->nfuncs <= 64, "%s: too many functions for the test", what);
    for (uint32_t th = 0; th < m->nthreads && t->nfuncs <= 64; th++) {
        struct ct_filter f = { .thread = th };
        struct ct_weights mw, gw;
        CHECK_INT(calltree_weigh(t, m, &f, &mw), 0);
        CHECK_INT(ct_grow_weigh(&g, th, th ? UINT64_MAX : 0, &gw), 0);
        CHECK_INT(calltree_flat(t, &mw, ms, mt), 0);
        CHECK_INT(calltree_flat(&g.t, &gw, gs, gt), 0);
        CHECK_INT(gw.all.samples, mw.all.samples);
        CHECK_INT(gw.all.wall_ns, mw.all.wall_ns);
        for (uint32_t a = 0; a < t->nfuncs; a++) {
            /* the grown tree numbers functions in sample order: match by name */
            uint32_t b = 0;
            for (uint32_t k = 0; k < g.t.nfuncs; k++)
                if (!strcmp(ct_grow_func_name(&g, k), calltree_func_name(m, t, a)) &&
                    !strcmp(ct_grow_func_file(&g, k), calltree_func_file(m, t, a)) &&
                    g.t.funcs[k].line == t->funcs[a].line)
                    b = k;
            CHECK(a == 0 || b != 0, "%s: function %u missing from the grown tree", what, a);
            CHECK_INT(gs[b].wall_ns, ms[a].wall_ns);
            CHECK_INT(gs[b].cpu_ns, ms[a].cpu_ns);
            CHECK_INT(gs[b].gil_ns, ms[a].gil_ns);
            CHECK_INT(gt[b].wall_ns, mt[a].wall_ns);
            CHECK_INT(gt[b].cpu_ns, mt[a].cpu_ns);
            CHECK_INT(gt[b].samples, mt[a].samples);
        }
        ct_weights_fini(&mw);
        ct_weights_fini(&gw);
    }
    size_t nodes = g.t.nnodes;
    ct_grow_reset(&g);
    struct ct_weights gw;
    CHECK_INT(ct_grow_weigh(&g, 0, 0, &gw), 0);
    CHECK_INT(gw.all.samples, 0);
    CHECK_INT(gw.total[0].wall_ns, 0);
    CHECK_INT(g.t.nnodes, nodes);
    ct_weights_fini(&gw);
    /* bad input: a node that does not exist */
    CHECK_INT(ct_grow_add(&g, 1, (uint32_t)g.t.nnodes, 1, 1, 0), -EINVAL);
    CHECK_INT(ct_grow_child(&g, (uint32_t)g.t.nnodes + 5, 1), 0);
    ct_grow_fini(&g);
    calltree_free(t);
    synth_unload(m, path);
}

static void test_grow(void)
{
    check_grow_matches("recursive", SYNTH_RECURSIVE);
    check_grow_matches("threads", SYNTH_THREADS);
}

/* The lanes of `sonde top` (ct_lane, ct_lane_filter): a thread's filter
 * keeps every green thread that ran on it but no suspended sample; a green
 * thread's keeps its running and suspended samples, on whatever thread;
 * every thread's keeps no suspended sample. Walls are powers of two so each
 * sum says which samples it holds. */
static int64_t lane_wall(const struct ct_grow *g, uint32_t thread, uint32_t green, int64_t *self_of)
{
    uint64_t lane, mask;
    ct_lane_filter(thread, green, &lane, &mask);
    struct ct_weights w;
    CHECK_INT(ct_grow_weigh(g, lane, mask, &w), 0);
    int64_t all = w.all.wall_ns;
    CHECK_INT(w.total[0].wall_ns, all);
    for (size_t i = 0; self_of && i < g->t.nnodes; i++)
        self_of[i] = w.self[i].wall_ns;
    ct_weights_fini(&w);
    return all;
}

static void test_lanes(void)
{
    struct ct_grow g;
    CHECK_INT(ct_grow_init(&g), 0);
    uint32_t fa = ct_grow_func(&g, "run", "a.py", 1), fb = ct_grow_func(&g, "comp", "a.py", 5),
             fc = ct_grow_func(&g, "wait", "a.py", 9);
    uint32_t a = ct_grow_child(&g, 0, fa), b = ct_grow_child(&g, a, fb), c = ct_grow_child(&g, a, fc);
    CHECK(a && b && c, "no nodes");
    /* thread 1: itself (1), task 5 running (2), task 5 suspended (4);
     * thread 2: task 6 running (8), itself (32); task 6 suspended on a
     * thread not known (16); a thread id past 31 bits is cut, never
     * mistaken for a suspended sample (64, on thread 3 | 1 << 31) */
    CHECK_INT(ct_grow_add(&g, ct_lane(0, 0, 1), a, 1, 1, 0), 0);
    CHECK_INT(ct_grow_add(&g, ct_lane(5, 0, 1), b, 2, 2, 0), 0);
    CHECK_INT(ct_grow_add(&g, ct_lane(5, 1, 1), c, 4, 0, 0), 0);
    CHECK_INT(ct_grow_add(&g, ct_lane(6, 0, 2), b, 8, 8, 0), 0);
    CHECK_INT(ct_grow_add(&g, ct_lane(6, 1, 0), c, 16, 0, 0), 0);
    CHECK_INT(ct_grow_add(&g, ct_lane(0, 0, 2), a, 32, 32, 0), 0);
    CHECK_INT(ct_grow_add(&g, ct_lane(0, 0, 3u | 1u << 31), a, 64, 64, 0), 0);
    CHECK_INT(lane_wall(&g, 0, 0, NULL), 1 + 2 + 8 + 32 + 64);
    CHECK_INT(lane_wall(&g, 1, 0, NULL), 1 + 2);
    CHECK_INT(lane_wall(&g, 2, 0, NULL), 8 + 32);
    CHECK_INT(lane_wall(&g, 3, 0, NULL), 64);
    int64_t self[8];
    CHECK(g.t.nnodes <= 8, "nodes");
    CHECK_INT(lane_wall(&g, 0, 5, self), 2 + 4);
    CHECK_INT(self[a], 0);
    CHECK_INT(self[b], 2);
    CHECK_INT(self[c], 4); /* where it waits */
    CHECK_INT(lane_wall(&g, 0, 6, self), 8 + 16);
    CHECK_INT(self[c], 16);
    /* the green filter wins over the thread */
    CHECK_INT(lane_wall(&g, 2, 5, NULL), 2 + 4);
    CHECK_INT(lane_wall(&g, 0, 7, NULL), 0);
    ct_grow_fini(&g);
}

int main(void)
{
    test_structure();
    test_filters();
    test_grow();
    test_lanes();
    return check_done("calltree");
}
