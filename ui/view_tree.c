/* sonde view: the data behind the panes. The call tree comes from
 * profiler/calltree.h, renumbered for the view and weighed per thread filter
 * on first use; the visible rows, the flat profile, callers / callees, the
 * search and the timeline are derived from it here. Drawing is in
 * ui/view_draw.c. */
#include "ui/view_int.h"

#include "ui/tgroup.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- building: functions, the call tree, weights (profiler/calltree.h) ---- */

/* The view numbers functions and nodes its own way: function 0 is the root,
 * 1 "(no Python frames)" (the call tree's function 0), f + 1 the tree's f;
 * node 0 is the root, the tree's node n >= 2 is n - 1, and the tree's node 1
 * ("no Python frames") comes last. Children are listed newest first. */
int vw_build_view_tree(struct view *v)
{
    const struct model *m = v->m;
    struct ct_filter all = { .pid = v->o->pid }; /* "all threads": of that process */
    if (calltree_new(m, &all, &v->ct))
        return -ENOMEM;
    const struct calltree *t = v->ct;
    v->nfuncs = t->nfuncs + 1;
    v->nnodes = t->nnodes;
    v->funcs = calloc(v->nfuncs, sizeof *v->funcs);
    v->nodes = calloc(v->nnodes, sizeof *v->nodes);
    v->ctnode = calloc(v->nnodes, sizeof *v->ctnode);
    if (!v->funcs || !v->nodes || !v->ctnode)
        return -ENOMEM;
    v->funcs[0] = (struct vfunc){ "(root)", "", 0, NULL };
    v->funcs[1] = (struct vfunc){ "(no Python frames)", "", 0, NULL };
    for (size_t f = 1; f < t->nfuncs; f++) {
        v->funcs[f + 1] = (struct vfunc){ model_str(m, t->funcs[f].name),
                                          model_str(m, t->funcs[f].file), t->funcs[f].line, NULL };
        if (t->funcs[f].native) {
            /* "name  module+0xOFFSET": the form dump --native prints */
            char where[512];
            model_native_where(m, t->funcs[f].file, t->funcs[f].address, where, sizeof where);
            if (!(v->funcs[f + 1].where = strdup(where)))
                return -ENOMEM;
        }
    }
    v->nopy_node = (uint32_t)v->nnodes - 1;
    v->ctnode[v->nopy_node] = 1;
    for (uint32_t n = 1; n < v->nopy_node; n++)
        v->ctnode[n] = n + 1;
    for (uint32_t n = 1; n < v->nnodes; n++) {
        const struct ct_node *c = &t->nodes[v->ctnode[n]];
        uint32_t parent = c->parent ? c->parent - 1 : 0;
        v->nodes[n] = (struct tnode){ parent, c->func + 1, c->depth, 0, v->nodes[parent].child };
        v->nodes[parent].child = n;
    }
    return 0;
}

static void to_secs(double *out, const struct ct_cost *c)
{
    out[Q_WALL] = (double)c->wall_ns / 1e9;
    out[Q_CPU] = (double)c->cpu_ns / 1e9;
    out[Q_GIL] = (double)c->gil_ns / 1e9;
}

int vw_compute_ws(struct view *v, uint32_t thread, uint32_t green, struct wset *w)
{
    const struct calltree *t = v->ct;
    size_t nn = v->nnodes * Q_METRICS, nf = v->nfuncs * Q_METRICS;
    if (green)
        thread = 0;
    struct ct_filter f = { .thread = thread, .green = green, .pid = v->o->pid };
    struct ct_weights cw;
    struct ct_cost *fs = calloc(t->nfuncs, sizeof *fs), *ft = calloc(t->nfuncs, sizeof *ft);
    w->self = calloc(nn, sizeof *w->self);
    w->incl = calloc(nn, sizeof *w->incl);
    w->fself = calloc(nf, sizeof *w->fself);
    w->ftotal = calloc(nf, sizeof *w->ftotal);
    int rc = -ENOMEM;
    if (!fs || !ft || !w->self || !w->incl || !w->fself || !w->ftotal)
        goto out;
    /* every thread: the tree was weighed so when it was built */
    if (thread == 0 && green == 0)
        cw = t->w;
    else if (calltree_weigh(t, v->m, &f, &cw))
        goto out;
    if (!calltree_flat(t, &cw, fs, ft)) {
        for (size_t n = 0; n < v->nnodes; n++) {
            to_secs(&w->self[n * Q_METRICS], &cw.self[v->ctnode[n]]);
            to_secs(&w->incl[n * Q_METRICS], &cw.total[v->ctnode[n]]);
        }
        for (size_t k = 0; k < t->nfuncs; k++) {
            to_secs(&w->fself[(k + 1) * Q_METRICS], &fs[k]);
            to_secs(&w->ftotal[(k + 1) * Q_METRICS], &ft[k]);
        }
        w->ready = 1;
        rc = 0;
    }
    if (thread != 0 || green != 0)
        ct_weights_fini(&cw);
out:
    free(fs);
    free(ft);
    return rc;
}

double vw_incl_of(struct view *v, uint32_t n)
{
    return vw_ws_of(v)->incl[(size_t)n * Q_METRICS + v->mode];
}

double vw_self_of(struct view *v, uint32_t n)
{
    return vw_ws_of(v)->self[(size_t)n * Q_METRICS + v->mode];
}

double vw_grand_total(struct view *v)
{
    return vw_incl_of(v, 0);
}

struct wset *vw_ws_of(struct view *v)
{
    struct wset *w = v->green ? &v->gws[v->green] : &v->ws[v->thread];
    if (!w->ready && vw_compute_ws(v, v->thread, v->green, w)) {
        /* out of memory: fall back to every thread, computed at open */
        v->thread = 0;
        v->green = 0;
        snprintf(v->msg, sizeof v->msg, " out of memory: showing all threads");
        w = &v->ws[0];
    }
    return w;
}

/* ---- the visible rows of the call tree ---- */

static struct view *g_v;

static int cmp_node(const void *a, const void *b)
{
    double x = vw_incl_of(g_v, *(const uint32_t *)a), y = vw_incl_of(g_v, *(const uint32_t *)b);
    return (y > x) - (y < x);
}

static int push_row(struct view *v, uint32_t n)
{
    if (v->nrows == v->caprows) {
        size_t c = v->caprows ? v->caprows * 2 : 256;
        uint32_t *r = realloc(v->rows, c * sizeof *r);
        if (!r)
            return -ENOMEM;
        v->rows = r;
        v->caprows = c;
    }
    v->rows[v->nrows++] = n;
    return 0;
}

/* Children of n with weight under the current mode, hottest first. Caller frees. */
static uint32_t *sorted_children(struct view *v, uint32_t n, size_t *cnt)
{
    size_t k = 0;
    for (uint32_t c = v->nodes[n].child; c; c = v->nodes[c].sibling)
        if (vw_incl_of(v, c) > 0)
            k++;
    *cnt = k;
    if (!k)
        return NULL;
    uint32_t *a = malloc(k * sizeof *a);
    if (!a) {
        *cnt = 0;
        return NULL;
    }
    k = 0;
    for (uint32_t c = v->nodes[n].child; c; c = v->nodes[c].sibling)
        if (vw_incl_of(v, c) > 0)
            a[k++] = c;
    g_v = v;
    qsort(a, k, sizeof *a, cmp_node);
    return a;
}

static void add_rows(struct view *v, uint32_t n)
{
    size_t k;
    uint32_t *a = sorted_children(v, n, &k);
    for (size_t i = 0; i < k; i++) {
        if (push_row(v, a[i]))
            break;
        if (v->expanded[a[i]])
            add_rows(v, a[i]);
    }
    free(a);
}

void vw_rebuild_rows(struct view *v)
{
    uint32_t cur = v->sel >= 0 && (size_t)v->sel < v->nrows ? v->rows[v->sel] : 0;
    v->nrows = 0;
    add_rows(v, 0);
    v->sel = 0;
    for (size_t i = 0; cur && i < v->nrows; i++)
        if (v->rows[i] == cur) {
            v->sel = (int)i;
            break;
        }
}

static uint32_t hottest_child(struct view *v, uint32_t n)
{
    uint32_t best = 0;
    double bw = 0;
    for (uint32_t c = v->nodes[n].child; c; c = v->nodes[c].sibling) {
        double w = vw_incl_of(v, c);
        if (w > bw) {
            bw = w;
            best = c;
        }
    }
    return best;
}

void vw_expand_hot(struct view *v, uint32_t n)
{
    for (int guard = 0; n && guard < 4096; guard++) {
        v->expanded[n] = 1;
        n = hottest_child(v, n);
    }
}

/* New filter or mode: expand the hottest path from scratch. */
void vw_reset_tree(struct view *v)
{
    memset(v->expanded, 0, v->nnodes);
    vw_expand_hot(v, hottest_child(v, 0));
    v->sel = v->scroll = 0;
    v->nrows = 0;
    add_rows(v, 0);
}

/* ---- flat profile and callers / callees ---- */

static int cmp_flat(const void *a, const void *b)
{
    struct wset *w = vw_ws_of(g_v);
    const double *arr = g_v->fsort_self ? w->fself : w->ftotal;
    double x = arr[(size_t)*(const uint32_t *)a * Q_METRICS + g_v->mode];
    double y = arr[(size_t)*(const uint32_t *)b * Q_METRICS + g_v->mode];
    return (y > x) - (y < x);
}

void vw_rebuild_flat(struct view *v)
{
    struct wset *w = vw_ws_of(v);
    v->nflat = 0;
    for (uint32_t f = 1; f < v->nfuncs; f++)
        if (w->ftotal[(size_t)f * Q_METRICS + v->mode] > 0)
            v->flat[v->nflat++] = f;
    g_v = v;
    qsort(v->flat, v->nflat, sizeof *v->flat, cmp_flat);
    if (v->fsel >= (int)v->nflat)
        v->fsel = v->nflat ? (int)v->nflat - 1 : 0;
}

static int cmp_cc(const void *a, const void *b)
{
    double x = ((const struct ccrow *)a)->w, y = ((const struct ccrow *)b)->w;
    return (y > x) - (y < x);
}

static size_t collect_cc(struct view *v, struct ccrow *out)
{
    size_t n = 0;
    for (uint32_t f = 0; f < v->nfuncs; f++)
        if (v->acc[f] > 0) {
            out[n++] = (struct ccrow){ f, v->acc[f] };
            v->acc[f] = 0;
        }
    qsort(out, n, sizeof *out, cmp_cc);
    return n;
}

/* Is there a call from -> to at x or above it (x's function is to and its
 * caller's is from)? Recursion would otherwise count an edge twice. */
static int edge_above(const struct view *v, uint32_t x, uint32_t from, uint32_t to)
{
    for (; x; x = v->nodes[x].parent)
        if (v->nodes[x].func == to && v->nodes[v->nodes[x].parent].func == from)
            return 1;
    return 0;
}

/* Callers and callees of the focused function, each call edge weighted by
 * the inclusive time below it, once per path however deep the recursion. */
void vw_rebuild_cc(struct view *v)
{
    uint32_t F = v->focus;
    for (uint32_t n = 1; n < v->nnodes; n++) {
        if (v->nodes[n].func != F || vw_incl_of(v, n) <= 0)
            continue;
        uint32_t p = v->nodes[n].parent, h = v->nodes[p].func;
        if (!edge_above(v, p, h, F))
            v->acc[h] += vw_incl_of(v, n);
    }
    v->ncallers = collect_cc(v, v->callers);
    for (uint32_t n = 1; n < v->nnodes; n++) {
        if (v->nodes[n].func != F || vw_incl_of(v, n) <= 0)
            continue;
        for (uint32_t c = v->nodes[n].child; c; c = v->nodes[c].sibling)
            if (vw_incl_of(v, c) > 0 && !edge_above(v, n, F, v->nodes[c].func))
                v->acc[v->nodes[c].func] += vw_incl_of(v, c);
    }
    v->ncallees = collect_cc(v, v->callees);
    v->csel = v->cscroll = 0;
}

uint32_t vw_selected_func(struct view *v)
{
    if (v->pane == P_FLAT && v->nflat)
        return v->flat[v->fsel];
    if (v->pane == P_CALLERS)
        return v->focus;
    if (v->nrows && v->sel >= 0 && (size_t)v->sel < v->nrows)
        return v->nodes[v->rows[v->sel]].func;
    return v->focus;
}

/* ---- timeline ---- */

void vw_build_timeline(struct view *v, int width)
{
    if (width == v->tl_width && v->tl)
        return;
    free(v->tl);
    v->tl = NULL;
    v->tl_width = 0;
    if (width <= 0 || !v->nqth)
        return;
    uint32_t *rowof = calloc(v->m->nthreads + 1, sizeof *rowof);
    uint32_t *cnt = calloc(v->nqth * (size_t)width * STATE_COUNT, sizeof *cnt);
    v->tl = malloc(v->nqth * (size_t)width);
    if (!rowof || !cnt || !v->tl) {
        free(rowof);
        free(cnt);
        free(v->tl);
        v->tl = NULL;
        return;
    }
    for (size_t i = 0; i < v->nqth; i++)
        if (v->qth[i].thread <= v->m->nthreads)
            rowof[v->qth[i].thread] = (uint32_t)i + 1;
    double span = (double)(v->t1 - v->t0) + 1;
    for (size_t i = 0; i < v->m->nsamples; i++) {
        const struct m_sample *s = &v->m->samples[i];
        if (s->thread > v->m->nthreads || !rowof[s->thread] || s->state >= STATE_COUNT)
            continue;
        int col = (int)((double)(s->ts - v->t0) / span * width);
        if (col < 0)
            col = 0;
        if (col >= width)
            col = width - 1;
        cnt[((size_t)(rowof[s->thread] - 1) * width + col) * STATE_COUNT + s->state]++;
    }
    for (size_t r = 0; r < v->nqth; r++)
        for (int c = 0; c < width; c++) {
            const uint32_t *k = &cnt[(r * width + c) * STATE_COUNT];
            int best = 255;
            uint32_t bc = 0;
            for (int st = 0; st < STATE_COUNT; st++)
                if (k[st] > bc) {
                    bc = k[st];
                    best = st;
                }
            v->tl[r * width + c] = (uint8_t)best;
        }
    free(rowof);
    free(cnt);
    v->tl_width = width;
}

/* ---- search ---- */

static int icontains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    if (!n)
        return 0;
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

static int cmp_match(const void *a, const void *b)
{
    return cmp_node(a, b);
}

static void goto_node(struct view *v, uint32_t n)
{
    for (uint32_t p = v->nodes[n].parent; p; p = v->nodes[p].parent)
        v->expanded[p] = 1;
    v->nrows = 0;
    add_rows(v, 0);
    for (size_t i = 0; i < v->nrows; i++)
        if (v->rows[i] == n)
            v->sel = (int)i;
}

void vw_show_match(struct view *v)
{
    if (!v->nmatches) {
        snprintf(v->msg, sizeof v->msg, " no function matches '%s'", v->search);
        return;
    }
    uint32_t n = v->matches[v->match_i];
    uint32_t f = v->pane == P_TREE ? v->nodes[n].func : n;
    if (v->pane == P_TREE) {
        goto_node(v, n);
    } else if (v->pane == P_FLAT) {
        for (size_t i = 0; i < v->nflat; i++)
            if (v->flat[i] == n)
                v->fsel = (int)i;
    } else {
        v->focus = n;
        vw_rebuild_cc(v);
    }
    snprintf(v->msg, sizeof v->msg, " match %zu/%zu for '%s': %s  (n next, N previous)",
             v->match_i + 1, v->nmatches, v->search, v->funcs[f].name);
}

void vw_do_search(struct view *v)
{
    free(v->matches);
    v->matches = NULL;
    v->nmatches = v->match_i = 0;
    if (v->pane == P_THREADS || v->pane == P_TIMELINE)
        v->pane = P_TREE;
    v->match_tree = v->pane == P_TREE;
    if (v->pane == P_TREE) {
        v->matches = malloc(v->nnodes * sizeof *v->matches);
        if (!v->matches)
            return;
        for (uint32_t n = 1; n < v->nnodes; n++)
            if (vw_incl_of(v, n) > 0 && icontains(v->funcs[v->nodes[n].func].name, v->search))
                v->matches[v->nmatches++] = n;
        g_v = v;
        qsort(v->matches, v->nmatches, sizeof *v->matches, cmp_match);
    } else {
        v->matches = malloc(v->nflat * sizeof *v->matches + 1);
        if (!v->matches)
            return;
        for (size_t i = 0; i < v->nflat; i++)
            if (icontains(v->funcs[v->flat[i]].name, v->search))
                v->matches[v->nmatches++] = v->flat[i];
    }
    vw_show_match(v);
}


void vw_set_filter(struct view *v, uint32_t thread, enum q_metric mode)
{
    vw_set_lane(v, thread, 0, mode);
}

void vw_set_lane(struct view *v, uint32_t thread, uint32_t green, enum q_metric mode)
{
    v->green = green < v->m->ngreens ? green : 0;
    v->thread = v->green ? 0 : thread;
    v->mode = mode;
    vw_reset_tree(v);
    vw_rebuild_flat(v);
    vw_rebuild_cc(v);
    free(v->matches);
    v->matches = NULL;
    v->nmatches = 0;
}


/* ---- the threads pane's rows ---- */

static int add_trow(struct view *v, size_t *cap, struct trow r)
{
    if (v->ntrows == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        struct trow *n = realloc(v->trows, nc * sizeof *n);
        if (!n)
            return -ENOMEM;
        v->trows = n;
        *cap = nc;
    }
    v->trows[v->ntrows++] = r;
    return 0;
}

/* Thread qth[i]'s row (first: listed under its group), then its green
 * threads. */
static int add_thread_rows(struct view *v, size_t *capp, size_t i, int deep)
{
    const struct model *m = v->m;
    size_t cap = *capp;
    {
        uint32_t th = v->qth[i].thread;
        if (add_trow(v, &cap, (struct trow){ .thread = th, .first = (uint32_t)deep }))
            return -ENOMEM;
        size_t a = 0, b;
        while (a < v->ngord && m->greens[v->gord[a]].thread != th)
            a++;
        for (b = a; b < v->ngord && m->greens[v->gord[b]].thread == th; b++)
            ;
        int group = b - a > VW_GROUP_OVER;
        for (size_t k = a; k < b;) {
            size_t e = k + 1;
            if (!group) {
                if (add_trow(v, &cap, (struct trow){ .thread = th, .green = v->gord[k] }))
                    return -ENOMEM;
                k = e;
                continue;
            }
            while (e < b && !strcmp(m->greens[v->gord[e]].func, m->greens[v->gord[k]].func))
                e++;
            if (add_trow(v, &cap, (struct trow){ .thread = th, .count = (uint32_t)(e - k),
                                                 .first = (uint32_t)k }))
                return -ENOMEM;
            for (size_t j = k; v->gexp[k] && j < e; j++)
                if (add_trow(v, &cap, (struct trow){ .thread = th, .green = v->gord[j], .first = 1 }))
                    return -ENOMEM;
            k = e;
        }
    }
    *capp = cap;
    return 0;
}

int vw_build_trows(struct view *v)
{
    const struct model *m = v->m;
    size_t cap = 0, n = v->nqth;
    free(v->trows);
    v->trows = NULL;
    v->ntrows = 0;
    /* threads named alike: one row (ui/tgroup.h), as in the report */
    int *pids = malloc((n + 1) * sizeof *pids);
    const char **names = malloc((n + 1) * sizeof *names);
    uint32_t *cnt = calloc(n + 1, sizeof *cnt);
    int rc = -ENOMEM;
    if (!pids || !names || !cnt)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const struct m_thread *mt = &m->threads[v->qth[i].thread];
        pids[i] = mt->pid;
        names[i] = mt->name;
    }
    if (tgroup_find(pids, names, n, TGROUP_MIN, v->thead) < 0)
        goto out;
    for (size_t i = 0; i < n; i++)
        cnt[v->thead[i]]++;
    for (size_t i = 0; i < n; i++) {
        if (v->thead[i] != i)
            continue; /* listed with its group */
        if (cnt[i] < 2) {
            if (add_thread_rows(v, &cap, i, 0))
                goto out;
            continue;
        }
        if (add_trow(v, &cap, (struct trow){ .thread = v->qth[i].thread, .tcount = cnt[i],
                                             .first = (uint32_t)i }))
            goto out;
        for (size_t j = i; v->tgexp[i] && j < n; j++)
            if (v->thead[j] == i && add_thread_rows(v, &cap, j, 1))
                goto out;
    }
    rc = 0;
out:
    free(pids);
    free(names);
    free(cnt);
    return rc;
}
