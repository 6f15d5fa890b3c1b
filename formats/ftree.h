/* Shared by the exporters: functions (frames merged by name, file and first
 * line), costs aggregated per stack node, and the call tree merged by
 * function (what flame graphs and collapsed stacks show). */
#ifndef SONDE_FTREE_H
#define SONDE_FTREE_H

#include "formats/export.h"

#include <stdint.h>

/* Costs of a set of samples. The *_us sums add each sample's floored
 * microseconds, so that sums of sums stay exact. */
struct ft_cost {
    int64_t wall_ns, cpu_ns, wall_us, cpu_us, samples;
};

/* Function 0 is "[no Python frames]": samples whose stack is 0. */
struct ft_func {
    uint32_t name, file; /* string ids */
    int32_t line;        /* first line */
};

struct ft_node {
    uint32_t parent, func, child, sibling, depth; /* node 0 is the root; 0 = none */
    struct ft_cost self, total;
};

struct ftree {
    struct ft_func *funcs; size_t nfuncs;
    uint32_t *frame_func;        /* by frame id */
    struct ft_cost *stack_cost;  /* by stack id (0: no Python frames), selected samples only */
    struct ft_cost all;          /* sum over selected samples */
    struct ft_node *nodes; size_t nnodes; /* only if built with tree = 1 */
    uint32_t *stack_node;        /* by stack id: its tree node (tree = 1) */
    uint32_t maxdepth;
};

/* Build the functions and per-stack costs of the samples o selects, and the
 * merged call tree if tree is set. 0 or -ENOMEM. Free with ftree_free. */
int ftree_new(const struct model *m, const struct export_opts *o, int tree, struct ftree **out);
void ftree_free(struct ftree *t);

void ftree_cost_add(struct ft_cost *c, const struct m_sample *s);
void ftree_cost_sum(struct ft_cost *into, const struct ft_cost *c);

/* The cost in ns under the options' mode. */
static inline int64_t ftree_weight(const struct export_opts *o, const struct ft_cost *c)
{
    return o->mode == EXPORT_CPU ? c->cpu_ns : c->wall_ns;
}

const char *ftree_func_name(const struct model *m, const struct ftree *t, uint32_t func);
const char *ftree_func_file(const struct model *m, const struct ftree *t, uint32_t func);

/* The frames of stack node s, outermost first, into out (capacity cap,
 * at least the stack's depth). Returns the count. */
uint32_t ftree_stack_frames(const struct model *m, uint32_t s, uint32_t *out, uint32_t cap);

/* Deepest stack in the model (at least 1). */
uint32_t ftree_max_depth(const struct model *m);

#endif
