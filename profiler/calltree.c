#include "profiler/calltree.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOFRAMES "[no Python frames]"

void ct_cost_add_raw(struct ct_cost *c, int64_t wall_ns, int64_t cpu_ns, int state)
{
    int64_t w = wall_ns > 0 ? wall_ns : 0, u = cpu_ns > 0 ? cpu_ns : 0;
    c->wall_ns += w;
    c->cpu_ns += u;
    if (state == STATE_GIL) {
        c->gil_ns += w;
        c->gil_us += w / 1000;
    }
    c->wall_us += w / 1000;
    c->cpu_us += u / 1000;
    c->samples++;
}

void ct_cost_add(struct ct_cost *c, const struct m_sample *s)
{
    ct_cost_add_raw(c, s->wall_ns, s->cpu_ns, s->state);
}

void ct_cost_sum(struct ct_cost *into, const struct ct_cost *c)
{
    into->wall_ns += c->wall_ns;
    into->cpu_ns += c->cpu_ns;
    into->gil_ns += c->gil_ns;
    into->wall_us += c->wall_us;
    into->cpu_us += c->cpu_us;
    into->gil_us += c->gil_us;
    into->samples += c->samples;
}

const char *calltree_func_name(const struct model *m, const struct calltree *t, uint32_t func)
{
    if (func == 0 || func >= t->nfuncs)
        return NOFRAMES;
    const char *s = model_str(m, t->funcs[func].name);
    return *s ? s : "?";
}

const char *calltree_func_label(const struct model *m, const struct calltree *t, uint32_t func,
                                char *buf, size_t len)
{
    const char *name = calltree_func_name(m, t, func);
    if (!func || func >= t->nfuncs || !t->funcs[func].native || strcmp(name, "??"))
        return name;
    char where[512];
    model_native_where(m, t->funcs[func].file, t->funcs[func].address, where, sizeof where);
    snprintf(buf, len, "?? (%s)", where);
    return buf;
}

const char *calltree_func_file(const struct model *m, const struct calltree *t, uint32_t func)
{
    if (func == 0 || func >= t->nfuncs)
        return "[sonde]";
    const char *s = model_str(m, t->funcs[func].file);
    return *s ? s : "?";
}

uint32_t calltree_stack_frames(const struct model *m, uint32_t s, uint32_t *out, uint32_t cap)
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
    if (i > 0) {
        /* the chain is shorter than the depth it states (a damaged file
         * that the model's checks let through): what it has, outermost
         * first, never slots left unwritten */
        memmove(out, out + i, (size_t)(d - i) * sizeof *out);
        d -= i;
    }
    return d;
}

uint32_t calltree_max_depth(const struct model *m)
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

/* Functions: frames merged by (name, file, first line), numbered in the
 * order of their first frame. */
static int build_funcs(const struct model *m, struct calltree *t)
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
        /* a native function: by name, module and offset (its frames differ
         * by source line only) */
        struct ct_func k = { f->name, f->file, f->fn_line, 0, 0 };
        if (f->kind == 1)
            k = (struct ct_func){ f->name, f->module, 0, 1, f->address };
        uint64_t h = mix(((uint64_t)k.name << 32) ^ k.file ^ ((uint64_t)(uint32_t)k.line << 17) ^
                         (k.address * 0x9e3779b97f4a7c15ULL) ^ k.native);
        size_t j = h & (cap - 1);
        while (slots[j]) {
            const struct ct_func *g = &t->funcs[slots[j]];
            if (g->name == k.name && g->file == k.file && g->line == k.line &&
                g->native == k.native && g->address == k.address)
                break;
            j = (j + 1) & (cap - 1);
        }
        if (!slots[j]) {
            slots[j] = (uint32_t)t->nfuncs;
            t->funcs[t->nfuncs++] = k;
        }
        t->frame_func[i] = slots[j];
    }
    free(slots);
    return 0;
}

/* The tree: node 1 for stack 0, then one node per (parent node, function)
 * in the order of the stacks (the model guarantees parent < id). */
static int build_tree(const struct model *m, struct calltree *t)
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
    t->nodes[1] = (struct ct_node){ .depth = 1 };
    t->nnodes = 2;
    t->stack_node[0] = 1;
    for (size_t s = 1; s < ns; s++) {
        uint32_t parent = m->stacks[s].parent ? t->stack_node[m->stacks[s].parent] : 0;
        uint32_t func = t->frame_func[m->stacks[s].frame];
        uint64_t h = mix(((uint64_t)parent << 32) | func);
        size_t j = h & (cap - 1);
        while (slots[j]) {
            const struct ct_node *n = &t->nodes[slots[j]];
            if (n->parent == parent && n->func == func)
                break;
            j = (j + 1) & (cap - 1);
        }
        if (!slots[j]) {
            uint32_t id = (uint32_t)t->nnodes++;
            slots[j] = id;
            struct ct_node *n = &t->nodes[id];
            n->parent = parent;
            n->func = func;
            n->depth = t->nodes[parent].depth + 1;
        }
        t->stack_node[s] = slots[j];
    }
    free(slots);
    /* link children in creation order: prepend while walking backwards */
    for (size_t i = t->nnodes; i-- > 1;) {
        struct ct_node *n = &t->nodes[i], *p = &t->nodes[n->parent];
        n->sibling = p->child;
        p->child = (uint32_t)i;
    }
    return 0;
}

void ct_weights_fini(struct ct_weights *w)
{
    free(w->stack);
    free(w->self);
    free(w->total);
    memset(w, 0, sizeof *w);
}

int calltree_weigh(const struct calltree *t, const struct model *m, const struct ct_filter *f,
                   struct ct_weights *w)
{
    static const struct ct_filter every;
    if (!f)
        f = &every;
    memset(w, 0, sizeof *w);
    size_t ns = m->nstacks ? m->nstacks : 1;
    w->stack = calloc(ns, sizeof *w->stack);
    w->self = calloc(t->nnodes, sizeof *w->self);
    w->total = calloc(t->nnodes, sizeof *w->total);
    if (!w->stack || !w->self || !w->total) {
        ct_weights_fini(w);
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->nsamples; i++) {
        const struct m_sample *s = &m->samples[i];
        if (!ct_selected(m, f, s))
            continue;
        ct_cost_add(&w->stack[s->stack < m->nstacks ? s->stack : 0], s);
    }
    for (size_t i = 0; f->green && i < m->ngsamples; i++) {
        const struct m_sample *s = &m->gsamples[i];
        if (ct_selected(m, f, s))
            ct_cost_add(&w->stack[s->stack < m->nstacks ? s->stack : 0], s);
    }
    /* integer sums: adding up per stack is exact */
    for (size_t s = 0; s < ns; s++)
        if (w->stack[s].samples) {
            ct_cost_sum(&w->self[t->stack_node[s]], &w->stack[s]);
            ct_cost_sum(&w->all, &w->stack[s]);
        }
    /* children are created after their parents: sum totals backwards */
    for (size_t i = t->nnodes; i-- > 0;) {
        ct_cost_sum(&w->total[i], &w->self[i]);
        if (i > 0)
            ct_cost_sum(&w->total[t->nodes[i].parent], &w->total[i]);
    }
    return 0;
}

int calltree_flat(const struct calltree *t, const struct ct_weights *w, struct ct_cost *self,
                  struct ct_cost *total)
{
    memset(self, 0, t->nfuncs * sizeof *self);
    memset(total, 0, t->nfuncs * sizeof *total);
    uint32_t *stamp = calloc(t->nfuncs, sizeof *stamp); /* last node that counted f */
    if (!stamp)
        return -ENOMEM;
    for (uint32_t n = 1; n < t->nnodes; n++) {
        const struct ct_cost *c = &w->self[n];
        if (!c->samples)
            continue;
        ct_cost_sum(&self[t->nodes[n].func], c);
        for (uint32_t p = n; p; p = t->nodes[p].parent) {
            uint32_t f = t->nodes[p].func;
            if (stamp[f] == n)
                continue; /* recursion: once per sample */
            stamp[f] = n;
            ct_cost_sum(&total[f], c);
        }
    }
    free(stamp);
    return 0;
}

int calltree_new(const struct model *m, const struct ct_filter *f, struct calltree **out)
{
    struct calltree *t = calloc(1, sizeof *t);
    *out = NULL;
    if (!t)
        return -ENOMEM;
    int rc = build_funcs(m, t);
    if (!rc)
        rc = build_tree(m, t);
    if (!rc)
        rc = calltree_weigh(t, m, f, &t->w);
    if (rc) {
        calltree_free(t);
        return rc;
    }
    for (size_t i = 2; i < t->nnodes; i++)
        if (t->nodes[i].depth > t->maxdepth)
            t->maxdepth = t->nodes[i].depth;
    if (!t->maxdepth && t->w.stack[0].samples)
        t->maxdepth = 1;
    *out = t;
    return 0;
}

void calltree_free(struct calltree *t)
{
    if (!t)
        return;
    free(t->funcs);
    free(t->frame_func);
    free(t->nodes);
    free(t->stack_node);
    ct_weights_fini(&t->w);
    free(t);
}
