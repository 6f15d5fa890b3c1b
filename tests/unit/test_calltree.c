/* profiler/calltree: the structure of the merged tree (recursion keeps one
 * node per depth, lines of one function share a node, node 1 holds the
 * samples without Python frames) and each filter of struct ct_filter, on
 * the synthetic recordings of tests/unit/synth.c (SYNTH_THREADS is
 * described in test_query.c: 300 ticks of 5 ms over 3 threads). */
#include "check.h"
#include "synth_load.h"

#include "profiler/calltree.h"

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

int main(void)
{
    test_structure();
    test_filters();
    return check_done("calltree");
}
