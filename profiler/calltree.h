/* The call tree of a recording: the one aggregation of the model's samples
 * by function and call path that exports (formats/), `sonde view` (ui/),
 * `sonde report` (profiler/query.c) read; `sonde top` grows the same tree
 * while it samples (struct ct_grow below). Functions are frames merged by
 * name, file and first line; the tree is the model's stack trie merged by
 * function (so lines within a function do not split a node). Costs are
 * summed over the samples a filter selects (struct ct_filter: the one place
 * a new way to select samples, such as green threads or spans, is added).
 * The structure does not depend on the filter: weigh the same tree under
 * several filters with calltree_weigh. Pure functions of the model; a built
 * tree is read-only and can be shared by threads that only read it. */
#ifndef SONDE_CALLTREE_H
#define SONDE_CALLTREE_H

#include "common/hmap.h"
#include "common/strtab.h"
#include "profiler/model.h"

#include <stddef.h>
#include <stdint.h>

/* Which samples count. A zeroed filter selects every sample. */
struct ct_filter {
    uint32_t thread;             /* model thread id, 0 = every thread */
    const uint8_t *threads;      /* or, if not NULL, by thread id: nonzero = keep
                                    (nthreads entries, the model's count) */
    int timed;                   /* if set, keep samples with from_ns <= ts < to_ns */
    int64_t from_ns, to_ns;
    uint32_t states;             /* bit (1 << enum sample_state) = keep; 0 = every state */
    uint32_t green;              /* model green thread id, 0 = the threads' samples; else
                                    that green thread's: its thread's samples while it
                                    ran, and its suspended samples (m->gsamples) */
    uint32_t span;               /* span number (m_sample.span), 0 = any: else the
                                    samples taken while that span was current */
    int32_t pid;                 /* process id, 0 = every process: else the samples
                                    of that process's threads */
};

/* Does sample s pass the filter? (m gives the thread count for f->threads.) */
static inline int ct_selected(const struct model *m, const struct ct_filter *f,
                              const struct m_sample *s)
{
    if (f->thread && s->thread != f->thread)
        return 0;
    if (f->pid && (s->thread >= m->nthreads || m->threads[s->thread].pid != f->pid))
        return 0;
    if (f->threads && (s->thread >= m->nthreads || !f->threads[s->thread]))
        return 0;
    if (f->timed && (s->ts < f->from_ns || s->ts >= f->to_ns))
        return 0;
    if (f->states && !(f->states & (1u << s->state)))
        return 0;
    if (f->green && s->green != f->green)
        return 0;
    if (f->span && s->span != f->span)
        return 0;
    return 1;
}

/* Costs of a set of samples; negative times count as 0. The *_us sums add
 * each sample's floored microseconds, so that sums of sums stay exact.
 * gil_ns: wall time of the samples whose thread held the GIL. */
struct ct_cost {
    int64_t wall_ns, cpu_ns, gil_ns, wall_us, cpu_us, gil_us, samples;
};

void ct_cost_add(struct ct_cost *c, const struct m_sample *s);
/* The same, from a sample's wall and CPU time and state (enum sample_state). */
void ct_cost_add_raw(struct ct_cost *c, int64_t wall_ns, int64_t cpu_ns, int state);
void ct_cost_sum(struct ct_cost *into, const struct ct_cost *c);

/* Function 0 is "[no Python frames]": samples whose stack is 0. */
struct ct_func {
    uint32_t name, file; /* string ids; a native function's file is its module's path */
    int32_t line;        /* first line (0 for a native function) */
    uint8_t native;      /* 1: a native function (frame kind 1) */
    uint64_t address;    /* native: its offset in the module (m_frame.address) */
};

/* Node 0 is the root (func 0, depth 0); nodes are created after their
 * parents (parent < id) and children are linked in creation order. Node 1
 * is "[no Python frames]" under the root (func 0). */
struct ct_node {
    uint32_t parent, func, child, sibling, depth; /* 0 = none */
};

/* Costs under one filter. */
struct ct_weights {
    struct ct_cost *stack;       /* by stack id (0: no Python frames) */
    struct ct_cost *self, *total;/* by node: samples whose innermost node it is;
                                    those at or below it */
    struct ct_cost all;          /* every selected sample */
};

struct calltree {
    struct ct_func *funcs; size_t nfuncs;
    uint32_t *frame_func;        /* by frame id */
    struct ct_node *nodes; size_t nnodes;
    uint32_t *stack_node;        /* by stack id: its node (stack 0: node 1) */
    uint32_t maxdepth;           /* deepest node with a stack, or 1 for node 1 if
                                    the filter selected samples without frames */
    struct ct_weights w;         /* under the filter given to calltree_new */
};

/* Build the functions and the tree of m, weighed under f (NULL: every
 * sample). 0 or -ENOMEM. Free with calltree_free. */
int calltree_new(const struct model *m, const struct ct_filter *f, struct calltree **out);
void calltree_free(struct calltree *t);

/* Weigh t (built from m) under filter f into w (its arrays allocated here;
 * free with ct_weights_fini). 0 or -ENOMEM (w is then empty). */
int calltree_weigh(const struct calltree *t, const struct model *m, const struct ct_filter *f,
                   struct ct_weights *w);
void ct_weights_fini(struct ct_weights *w);

/* Per function costs under w, into self and total (t->nfuncs entries each,
 * zeroed here): self is the time a function was innermost; total the time
 * it was on the stack, counted once per sample however deep it recurses.
 * 0 or -ENOMEM. */
int calltree_flat(const struct calltree *t, const struct ct_weights *w, struct ct_cost *self,
                  struct ct_cost *total);

/* Function name and file for display: "[no Python frames]" and "[sonde]"
 * for function 0, "?" for an empty string. */
const char *calltree_func_name(const struct model *m, const struct calltree *t, uint32_t func);
const char *calltree_func_file(const struct model *m, const struct calltree *t, uint32_t func);
/* calltree_func_name, but a native function no symbol covers reads
 * "?? (module+0xOFFSET)", as dump --native prints it (written into buf). */
const char *calltree_func_label(const struct model *m, const struct calltree *t, uint32_t func,
                                char *buf, size_t len);

/* The frames of stack node s, outermost first, into out (capacity cap,
 * at least the stack's depth). Returns the count. */
uint32_t calltree_stack_frames(const struct model *m, uint32_t s, uint32_t *out, uint32_t cap);

/* Deepest stack in the model (at least 1). */
uint32_t calltree_max_depth(const struct model *m);

/* ---- a call tree grown one sample at a time ----
 * The same tree (functions, nodes, costs by node) fed from the sampler's
 * records instead of a recording: `sonde top` (profiler/live.c) grows one
 * while it samples, and reads it with calltree_flat like the other views.
 * Functions are keyed by (name, file, first line) as in calltree_new, but
 * their name and file ids index g->names, not a model. Costs are kept per
 * lane (a number the caller makes: see ct_lane below) and node, so one tree
 * serves every lane filter. Node 0 is the root, node 1 "[no Python frames]" (func 0).
 * Not thread-safe: one thread grows it; others read it under the owner's
 * lock. */
struct ct_cell {
    uint64_t lane;
    uint32_t node;
    struct ct_cost self;         /* samples of lane whose innermost node it is */
};

struct ct_grow {
    struct calltree t;           /* funcs, nodes (t.w, frame_func, stack_node unused) */
    struct strtab names;         /* function names and files */
    struct hmap by_func;         /* (name id << 32 | file id, line) -> func */
    struct hmap by_child;        /* (parent, func) -> node */
    struct hmap by_cell;         /* (lane, node) -> cell index + 1 */
    uint32_t *last_child;        /* by node: its newest child (to link in creation order) */
    struct ct_cell *cells;
    size_t ncells, capcells, capfuncs, capnodes;
};

/* An empty tree (root, node 1, func 0). 0 or -ENOMEM (then fini it). */
int ct_grow_init(struct ct_grow *g);
void ct_grow_fini(struct ct_grow *g);

/* The function (name, file, first line), created if new: its id (>= 1),
 * or 0 without memory. name and file are copied. */
uint32_t ct_grow_func(struct ct_grow *g, const char *name, const char *file, int32_t line);

/* The child of node parent for func, created if new: its id, or 0 without
 * memory. parent 0 = the root. */
uint32_t ct_grow_child(struct ct_grow *g, uint32_t parent, uint32_t func);

/* Add one sample of lane (nonzero) whose innermost node is node (1 for a
 * sample without Python frames). 0 or -ENOMEM (the sample is not counted). */
int ct_grow_add(struct ct_grow *g, uint64_t lane, uint32_t node, int64_t wall_ns, int64_t cpu_ns,
                int state);

/* Zero every cost (functions and nodes stay). */
void ct_grow_reset(struct ct_grow *g);

/* Move every cell's costs to lane map(ctx, lane) (the same lane: stays),
 * merging cells that meet on one (lane, node): how `sonde top` folds the
 * lanes of threads that ended into one, so the cells stay bounded by the
 * threads alive, not those ever seen. 0, or -ENOMEM with g unchanged. */
int ct_grow_fold(struct ct_grow *g, uint64_t (*map)(void *ctx, uint64_t lane), void *ctx);

/* Costs by node of the samples of the lanes l with (l & mask) == lane into
 * w (mask 0, lane 0: every lane; mask UINT64_MAX: lane alone; a lane made
 * of fields, e.g. green thread << 32 | thread, selects on some of them):
 * w->self, w->total and w->all as calltree_weigh fills them (w->stack stays
 * NULL). Free with ct_weights_fini. 0 or -ENOMEM. Then
 * calltree_flat(&g->t, w, ...) gives the flat profile. */
int ct_grow_weigh(const struct ct_grow *g, uint64_t lane, uint64_t mask, struct ct_weights *w);

/* The lanes of `sonde top` (profiler/live.c): green thread << 32 |
 * CT_LANE_SUSPENDED if the sample is a suspended green thread's | thread
 * (thread < 2^31; green 0 = no green thread running). The filters below
 * are (lane, mask) pairs for ct_grow_weigh:
 *  - every thread: the samples of every thread, suspended green threads'
 *    left out (they are not their thread's time);
 *  - one thread: its samples, whichever green thread ran, none suspended;
 *  - one green thread: its samples while running and while suspended. */
#define CT_LANE_SUSPENDED (UINT64_C(1) << 31)
#define CT_LANE_THREAD_MASK (CT_LANE_SUSPENDED - 1)

static inline uint64_t ct_lane(uint32_t green, int suspended, uint32_t thread)
{
    return (uint64_t)green << 32 | (suspended ? CT_LANE_SUSPENDED : 0) | (thread & CT_LANE_THREAD_MASK);
}

/* The (lane, mask) selecting thread (0: every thread) or, if green is
 * nonzero, that green thread alone. */
static inline void ct_lane_filter(uint32_t thread, uint32_t green, uint64_t *lane, uint64_t *mask)
{
    if (green) {
        *lane = (uint64_t)green << 32;
        *mask = UINT64_C(0xffffffff) << 32;
    } else if (thread) {
        *lane = thread & CT_LANE_THREAD_MASK;
        *mask = CT_LANE_SUSPENDED | CT_LANE_THREAD_MASK;
    } else {
        *lane = 0;
        *mask = CT_LANE_SUSPENDED;
    }
}

/* Name and file of function func of g ("[no Python frames]" / "[sonde]"
 * for 0). */
const char *ct_grow_func_name(const struct ct_grow *g, uint32_t func);
const char *ct_grow_func_file(const struct ct_grow *g, uint32_t func);

#endif
