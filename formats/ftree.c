#include "formats/ftree.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NOFRAMES "[no Python frames]"

void ftree_cost_add(struct ft_cost *c, const struct m_sample *s)
{
    int64_t w = s->wall_ns > 0 ? s->wall_ns : 0, u = s->cpu_ns > 0 ? s->cpu_ns : 0;
    c->wall_ns += w;
    c->cpu_ns += u;
    c->wall_us += w / 1000;
    c->cpu_us += u / 1000;
    c->samples++;
}

void ftree_cost_sum(struct ft_cost *into, const struct ft_cost *c)
{
    into->wall_ns += c->wall_ns;
    into->cpu_ns += c->cpu_ns;
    into->wall_us += c->wall_us;
    into->cpu_us += c->cpu_us;
    into->samples += c->samples;
}

const char *ftree_func_name(const struct model *m, const struct ftree *t, uint32_t func)
{
    if (func == 0 || func >= t->nfuncs)
        return NOFRAMES;
    const char *s = model_str(m, t->funcs[func].name);
    return *s ? s : "?";
}

const char *ftree_func_file(const struct model *m, const struct ftree *t, uint32_t func)
{
    if (func == 0 || func >= t->nfuncs)
        return "[sonde]";
    const char *s = model_str(m, t->funcs[func].file);
    return *s ? s : "?";
}

uint32_t ftree_stack_frames(const struct model *m, uint32_t s, uint32_t *out, uint32_t cap)
{
    if (s == 0 || s >= m->nstacks)
        return 0;
    uint32_t d = m->stacks[s].depth;
    if (d > cap)
        d = cap;
    uint32_t i = d;
    while (s && i > 0) {
        out[--i] = m->stacks[s].frame;
        s = m->stacks[s].parent;
    }
    return d;
}

uint32_t ftree_max_depth(const struct model *m)
{
    uint32_t d = 1;
    for (size_t i = 1; i < m->nstacks; i++)
        if (m->stacks[i].depth > d)
            d = m->stacks[i].depth;
    return d;
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static int build_funcs(const struct model *m, struct ftree *t)
{
    size_t cap = pow2_at_least(m->nframes * 2 + 2);
    uint32_t *slots = calloc(cap, sizeof *slots); /* func id, 0 = empty */
    t->funcs = calloc(m->nframes + 1, sizeof *t->funcs);
    t->frame_func = calloc(m->nframes + 1, sizeof *t->frame_func);
    if (!slots || !t->funcs || !t->frame_func) {
        free(slots);
        return -ENOMEM;
    }
    t->nfuncs = 1;
    for (size_t i = 1; i < m->nframes; i++) {
        const struct m_frame *f = &m->frames[i];
        uint64_t h = mix(((uint64_t)f->name << 32) ^ f->file ^ ((uint64_t)(uint32_t)f->fn_line << 17));
        size_t j = h & (cap - 1);
        while (slots[j]) {
            const struct ft_func *g = &t->funcs[slots[j]];
            if (g->name == f->name && g->file == f->file && g->line == f->fn_line)
                break;
            j = (j + 1) & (cap - 1);
        }
        if (!slots[j]) {
            slots[j] = (uint32_t)t->nfuncs;
            t->funcs[t->nfuncs++] = (struct ft_func){ f->name, f->file, f->fn_line };
        }
        t->frame_func[i] = slots[j];
    }
    free(slots);
    return 0;
}

static int build_tree(const struct model *m, struct ftree *t)
{
    size_t ns = m->nstacks ? m->nstacks : 1;
    size_t cap = pow2_at_least(ns * 2 + 4);
    uint32_t *slots = calloc(cap, sizeof *slots);
    t->nodes = calloc(ns + 2, sizeof *t->nodes);
    t->stack_node = calloc(ns, sizeof *t->stack_node);
    if (!slots || !t->nodes || !t->stack_node) {
        free(slots);
        return -ENOMEM;
    }
    t->nnodes = 1; /* root */
    for (size_t s = 0; s < ns; s++) {
        uint32_t parent, func;
        if (s == 0) {
            if (!t->stack_cost[0].samples)
                continue;
            parent = 0;
            func = 0;
        } else {
            parent = m->stacks[s].parent ? t->stack_node[m->stacks[s].parent] : 0;
            func = t->frame_func[m->stacks[s].frame];
        }
        uint64_t h = mix(((uint64_t)parent << 32) | func);
        size_t j = h & (cap - 1);
        while (slots[j]) {
            const struct ft_node *n = &t->nodes[slots[j]];
            if (n->parent == parent && n->func == func)
                break;
            j = (j + 1) & (cap - 1);
        }
        if (!slots[j]) {
            uint32_t id = (uint32_t)t->nnodes++;
            slots[j] = id;
            struct ft_node *n = &t->nodes[id];
            n->parent = parent;
            n->func = func;
            n->depth = t->nodes[parent].depth + 1;
            if (n->depth > t->maxdepth)
                t->maxdepth = n->depth;
        }
        t->stack_node[s] = slots[j];
        ftree_cost_sum(&t->nodes[slots[j]].self, &t->stack_cost[s]);
    }
    free(slots);
    /* children are created after their parents: sum totals backwards and
     * link children (prepending backwards keeps creation order) */
    for (size_t i = t->nnodes; i-- > 0;) {
        struct ft_node *n = &t->nodes[i];
        ftree_cost_sum(&n->total, &n->self);
        if (i > 0) {
            struct ft_node *p = &t->nodes[n->parent];
            ftree_cost_sum(&p->total, &n->total);
            n->sibling = p->child;
            p->child = (uint32_t)i;
        }
    }
    return 0;
}

int ftree_new(const struct model *m, const struct export_opts *o, int tree, struct ftree **out)
{
    struct ftree *t = calloc(1, sizeof *t);
    *out = NULL;
    if (!t)
        return -ENOMEM;
    int rc = build_funcs(m, t);
    if (rc)
        goto fail;
    rc = -ENOMEM;
    t->stack_cost = calloc(m->nstacks ? m->nstacks : 1, sizeof *t->stack_cost);
    if (!t->stack_cost)
        goto fail;
    for (size_t i = 0; i < m->nsamples; i++) {
        const struct m_sample *s = &m->samples[i];
        if (!export_selected(o, s))
            continue;
        ftree_cost_add(&t->stack_cost[s->stack < m->nstacks ? s->stack : 0], s);
        ftree_cost_add(&t->all, s);
    }
    if (tree && (rc = build_tree(m, t)))
        goto fail;
    *out = t;
    return 0;
fail:
    ftree_free(t);
    return rc;
}

void ftree_free(struct ftree *t)
{
    if (!t)
        return;
    free(t->funcs);
    free(t->frame_func);
    free(t->stack_cost);
    free(t->nodes);
    free(t->stack_node);
    free(t);
}
