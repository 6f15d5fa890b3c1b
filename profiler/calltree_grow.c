/* The call tree grown one sample at a time (profiler/calltree.h): the live
 * counterpart of calltree_new, for `sonde top`. Same functions, same nodes,
 * same weights, so calltree_flat reads both. */
#include "profiler/calltree.h"

#include "common/grow.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NOFRAMES "[no Python frames]"

int ct_grow_init(struct ct_grow *g)
{
    memset(g, 0, sizeof *g);
    if (strtab_init(&g->names, 1024) || hmap_init(&g->by_func, 1024) ||
        hmap_init(&g->by_child, 4096) || hmap_init(&g->by_cell, 4096) ||
        grow_array((void **)&g->t.funcs, &g->capfuncs, 1, sizeof *g->t.funcs) ||
        grow_array((void **)&g->t.nodes, &g->capnodes, 2, sizeof *g->t.nodes) ||
        !(g->last_child = calloc(g->capnodes, sizeof *g->last_child)))
        return -ENOMEM;
    g->t.funcs[0] = (struct ct_func){ 0 };
    g->t.nfuncs = 1;
    g->t.nodes[0] = (struct ct_node){ 0 };
    g->t.nodes[1] = (struct ct_node){ .depth = 1 };
    g->t.nodes[0].child = 1;
    g->last_child[0] = 1;
    g->t.nnodes = 2;
    return 0;
}

void ct_grow_fini(struct ct_grow *g)
{
    free(g->t.funcs);
    free(g->t.nodes);
    free(g->last_child);
    free(g->cells);
    strtab_fini(&g->names);
    hmap_fini(&g->by_func);
    hmap_fini(&g->by_child);
    hmap_fini(&g->by_cell);
    memset(g, 0, sizeof *g);
}

uint32_t ct_grow_func(struct ct_grow *g, const char *name, const char *file, int32_t line)
{
    uint32_t name_id, file_id;
    if (strtab_intern(&g->names, name, &name_id, NULL) || strtab_intern(&g->names, file, &file_id, NULL))
        return 0;
    uint64_t k1 = (uint64_t)name_id << 32 | file_id, k2 = (uint64_t)(uint32_t)line;
    uint64_t *v = hmap_get(&g->by_func, k1, k2);
    if (v)
        return (uint32_t)*v;
    if (g->t.nfuncs >= UINT32_MAX ||
        grow_array((void **)&g->t.funcs, &g->capfuncs, g->t.nfuncs + 1, sizeof *g->t.funcs) ||
        hmap_put(&g->by_func, k1, k2, g->t.nfuncs))
        return 0;
    g->t.funcs[g->t.nfuncs] = (struct ct_func){ name_id, file_id, line, 0, 0 };
    return (uint32_t)g->t.nfuncs++;
}

uint32_t ct_grow_child(struct ct_grow *g, uint32_t parent, uint32_t func)
{
    uint64_t *v = hmap_get(&g->by_child, parent, func);
    if (v)
        return (uint32_t)*v;
    size_t id = g->t.nnodes, old = g->capnodes;
    if (id >= UINT32_MAX || parent >= id ||
        grow_array((void **)&g->t.nodes, &g->capnodes, id + 1, sizeof *g->t.nodes))
        return 0;
    if (g->capnodes != old) {
        uint32_t *lc = realloc(g->last_child, g->capnodes * sizeof *lc);
        if (!lc) {
            g->capnodes = old; /* the nodes array is larger; harmless */
            return 0;
        }
        memset(lc + old, 0, (g->capnodes - old) * sizeof *lc);
        g->last_child = lc;
    }
    if (hmap_put(&g->by_child, parent, func, id))
        return 0;
    g->t.nodes[id] = (struct ct_node){ .parent = parent, .func = func,
                                       .depth = g->t.nodes[parent].depth + 1 };
    /* append: children stay in creation order, as calltree_new links them */
    if (g->last_child[parent])
        g->t.nodes[g->last_child[parent]].sibling = (uint32_t)id;
    else
        g->t.nodes[parent].child = (uint32_t)id;
    g->last_child[parent] = (uint32_t)id;
    g->last_child[id] = 0;
    if (g->t.nodes[id].depth > g->t.maxdepth)
        g->t.maxdepth = g->t.nodes[id].depth;
    g->t.nnodes++;
    return (uint32_t)id;
}

int ct_grow_add(struct ct_grow *g, uint64_t lane, uint32_t node, int64_t wall_ns, int64_t cpu_ns,
                int state)
{
    if (node >= g->t.nnodes)
        return -EINVAL;
    uint64_t *v = hmap_get(&g->by_cell, lane, node);
    struct ct_cell *c;
    if (v) {
        c = &g->cells[*v - 1];
    } else {
        if (grow_array((void **)&g->cells, &g->capcells, g->ncells + 1, sizeof *g->cells) ||
            hmap_put(&g->by_cell, lane, node, g->ncells + 1))
            return -ENOMEM;
        c = &g->cells[g->ncells++];
        memset(c, 0, sizeof *c);
        c->lane = lane;
        c->node = node;
    }
    ct_cost_add_raw(&c->self, wall_ns, cpu_ns, state);
    return 0;
}

void ct_grow_reset(struct ct_grow *g)
{
    for (size_t i = 0; i < g->ncells; i++)
        memset(&g->cells[i].self, 0, sizeof g->cells[i].self);
}

int ct_grow_fold(struct ct_grow *g, uint64_t (*map)(void *ctx, uint64_t lane), void *ctx)
{
    /* first the new index (allocating; g untouched on failure): cells keep
     * their order, a cell meeting an earlier one's (lane, node) merges into
     * it */
    struct hmap by;
    if (hmap_init(&by, g->ncells))
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < g->ncells; i++) {
        uint64_t lane = map(ctx, g->cells[i].lane);
        if (hmap_get(&by, lane, g->cells[i].node))
            continue;
        if (hmap_put(&by, lane, g->cells[i].node, ++k)) {
            hmap_fini(&by);
            return -ENOMEM;
        }
    }
    /* then the moves: a first occurrence lands at the next free index
     * (never after its own), a later one adds to it */
    k = 0;
    for (size_t i = 0; i < g->ncells; i++) {
        struct ct_cell c = g->cells[i];
        c.lane = map(ctx, c.lane);
        size_t j = (size_t)*hmap_get(&by, c.lane, c.node) - 1;
        if (j == k)
            g->cells[k++] = c;
        else
            ct_cost_sum(&g->cells[j].self, &c.self);
    }
    g->ncells = k;
    hmap_fini(&g->by_cell);
    g->by_cell = by;
    return 0;
}

int ct_grow_weigh(const struct ct_grow *g, uint64_t lane, uint64_t mask, struct ct_weights *w)
{
    memset(w, 0, sizeof *w);
    w->self = calloc(g->t.nnodes, sizeof *w->self);
    w->total = calloc(g->t.nnodes, sizeof *w->total);
    if (!w->self || !w->total) {
        ct_weights_fini(w);
        return -ENOMEM;
    }
    for (size_t i = 0; i < g->ncells; i++) {
        const struct ct_cell *c = &g->cells[i];
        if ((c->lane & mask) != lane)
            continue;
        ct_cost_sum(&w->self[c->node], &c->self);
        ct_cost_sum(&w->all, &c->self);
    }
    /* parents are created before their children: sum totals backwards */
    for (size_t i = g->t.nnodes; i-- > 0;) {
        ct_cost_sum(&w->total[i], &w->self[i]);
        if (i > 0)
            ct_cost_sum(&w->total[g->t.nodes[i].parent], &w->total[i]);
    }
    return 0;
}

const char *ct_grow_func_name(const struct ct_grow *g, uint32_t func)
{
    if (func == 0 || func >= g->t.nfuncs)
        return NOFRAMES;
    const char *s = strtab_str(&g->names, g->t.funcs[func].name);
    return s && *s ? s : "?";
}

const char *ct_grow_func_file(const struct ct_grow *g, uint32_t func)
{
    if (func == 0 || func >= g->t.nfuncs)
        return "[sonde]";
    const char *s = strtab_str(&g->names, g->t.funcs[func].file);
    return s && *s ? s : "?";
}
