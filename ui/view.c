#include "ui/view.h"

#include "common/err.h"
#include "profiler/calltree.h"
#include "ui/tui.h"

#include <ctype.h>
#include <curses.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { P_TREE, P_FLAT, P_CALLERS, P_THREADS, P_TIMELINE, P_COUNT };
static const char *const pane_names[] = { "call tree", "flat", "callers/callees", "threads",
                                          "timeline" };

struct vfunc {
    const char *name, *file;
    int32_t line;
};

/* A call-tree node: one function called along one path (the model's stack
 * trie merged by function, so lines within a function do not split it).
 * Parents are always created before their children (parent < id). */
struct tnode {
    uint32_t parent, func, depth, child, sibling;
};

/* Weights under one thread filter, seconds per metric. */
struct wset {
    int ready;
    double *self, *incl;       /* [node * Q_METRICS + k] */
    double *fself, *ftotal;    /* [func * Q_METRICS + k] */
};

struct ccrow {
    uint32_t func;
    double w;
};

struct view {
    const struct model *m;
    const struct view_opts *o;
    struct calltree *ct;
    struct vfunc *funcs; size_t nfuncs;
    struct tnode *nodes; size_t nnodes;
    uint32_t *ctnode;          /* by view node: the call tree's node */
    uint32_t nopy_node;
    struct wset *ws;           /* index: thread filter (0 = all) */
    struct q_thread *qth; size_t nqth;
    double duration_s;
    int64_t t0, t1;

    int pane;
    enum q_metric mode;
    uint32_t thread;
    uint8_t *expanded;
    uint32_t *rows; size_t nrows, caprows;
    int sel, scroll;
    uint32_t *flat; size_t nflat;
    int fsel, fscroll, fsort_self;
    uint32_t focus;            /* function of the callers / callees pane */
    struct ccrow *callers, *callees; size_t ncallers, ncallees;
    int csel, cscroll;
    double *acc;               /* scratch, per function */
    int tsel;
    int tl_width;
    uint8_t *tl;               /* [qth row * width + col]: state, 255 = none */
    char search[128];
    uint32_t *matches; size_t nmatches, match_i;
    int match_tree;            /* matches are tree nodes (else functions) */
    char msg[256];
};

static struct wset *ws_of(struct view *v);

/* ---- building: functions, the call tree, weights (profiler/calltree.h) ---- */

/* The view numbers functions and nodes its own way: function 0 is the root,
 * 1 "(no Python frames)" (the call tree's function 0), f + 1 the tree's f;
 * node 0 is the root, the tree's node n >= 2 is n - 1, and the tree's node 1
 * ("no Python frames") comes last. Children are listed newest first. */
static int build_view_tree(struct view *v)
{
    const struct model *m = v->m;
    if (calltree_new(m, NULL, &v->ct))
        return -ENOMEM;
    const struct calltree *t = v->ct;
    v->nfuncs = t->nfuncs + 1;
    v->nnodes = t->nnodes;
    v->funcs = calloc(v->nfuncs, sizeof *v->funcs);
    v->nodes = calloc(v->nnodes, sizeof *v->nodes);
    v->ctnode = calloc(v->nnodes, sizeof *v->ctnode);
    if (!v->funcs || !v->nodes || !v->ctnode)
        return -ENOMEM;
    v->funcs[0] = (struct vfunc){ "(root)", "", 0 };
    v->funcs[1] = (struct vfunc){ "(no Python frames)", "", 0 };
    for (size_t f = 1; f < t->nfuncs; f++)
        v->funcs[f + 1] = (struct vfunc){ model_str(m, t->funcs[f].name),
                                          model_str(m, t->funcs[f].file), t->funcs[f].line };
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

static int compute_ws(struct view *v, uint32_t thread, struct wset *w)
{
    const struct calltree *t = v->ct;
    size_t nn = v->nnodes * Q_METRICS, nf = v->nfuncs * Q_METRICS;
    struct ct_filter f = { .thread = thread };
    struct ct_weights cw;
    struct ct_cost *fs = calloc(t->nfuncs, sizeof *fs), *ft = calloc(t->nfuncs, sizeof *ft);
    w->self = calloc(nn, sizeof *w->self);
    w->incl = calloc(nn, sizeof *w->incl);
    w->fself = calloc(nf, sizeof *w->fself);
    w->ftotal = calloc(nf, sizeof *w->ftotal);
    int rc = -ENOMEM;
    if (!fs || !ft || !w->self || !w->incl || !w->fself || !w->ftotal)
        goto out;
    if (calltree_weigh(t, v->m, &f, &cw))
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
    ct_weights_fini(&cw);
out:
    free(fs);
    free(ft);
    return rc;
}

static double incl_of(struct view *v, uint32_t n)
{
    return ws_of(v)->incl[(size_t)n * Q_METRICS + v->mode];
}

static double self_of(struct view *v, uint32_t n)
{
    return ws_of(v)->self[(size_t)n * Q_METRICS + v->mode];
}

static double grand_total(struct view *v)
{
    return incl_of(v, 0);
}

static struct wset *ws_of(struct view *v)
{
    struct wset *w = &v->ws[v->thread];
    if (!w->ready && compute_ws(v, v->thread, w)) {
        /* out of memory: fall back to every thread, computed at open */
        v->thread = 0;
        snprintf(v->msg, sizeof v->msg, " out of memory: showing all threads");
        w = &v->ws[0];
    }
    return w;
}

/* ---- the visible rows of the call tree ---- */

static struct view *g_v;

static int cmp_node(const void *a, const void *b)
{
    double x = incl_of(g_v, *(const uint32_t *)a), y = incl_of(g_v, *(const uint32_t *)b);
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
        if (incl_of(v, c) > 0)
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
        if (incl_of(v, c) > 0)
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

static void rebuild_rows(struct view *v)
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
        double w = incl_of(v, c);
        if (w > bw) {
            bw = w;
            best = c;
        }
    }
    return best;
}

static void expand_hot(struct view *v, uint32_t n)
{
    for (int guard = 0; n && guard < 4096; guard++) {
        v->expanded[n] = 1;
        n = hottest_child(v, n);
    }
}

/* New filter or mode: expand the hottest path from scratch. */
static void reset_tree(struct view *v)
{
    memset(v->expanded, 0, v->nnodes);
    expand_hot(v, hottest_child(v, 0));
    v->sel = v->scroll = 0;
    v->nrows = 0;
    add_rows(v, 0);
}

/* ---- flat profile and callers / callees ---- */

static int cmp_flat(const void *a, const void *b)
{
    struct wset *w = ws_of(g_v);
    const double *arr = g_v->fsort_self ? w->fself : w->ftotal;
    double x = arr[(size_t)*(const uint32_t *)a * Q_METRICS + g_v->mode];
    double y = arr[(size_t)*(const uint32_t *)b * Q_METRICS + g_v->mode];
    return (y > x) - (y < x);
}

static void rebuild_flat(struct view *v)
{
    struct wset *w = ws_of(v);
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
static void rebuild_cc(struct view *v)
{
    uint32_t F = v->focus;
    for (uint32_t n = 1; n < v->nnodes; n++) {
        if (v->nodes[n].func != F || incl_of(v, n) <= 0)
            continue;
        uint32_t p = v->nodes[n].parent, h = v->nodes[p].func;
        if (!edge_above(v, p, h, F))
            v->acc[h] += incl_of(v, n);
    }
    v->ncallers = collect_cc(v, v->callers);
    for (uint32_t n = 1; n < v->nnodes; n++) {
        if (v->nodes[n].func != F || incl_of(v, n) <= 0)
            continue;
        for (uint32_t c = v->nodes[n].child; c; c = v->nodes[c].sibling)
            if (incl_of(v, c) > 0 && !edge_above(v, n, F, v->nodes[c].func))
                v->acc[v->nodes[c].func] += incl_of(v, c);
    }
    v->ncallees = collect_cc(v, v->callees);
    v->csel = v->cscroll = 0;
}

static uint32_t selected_func(struct view *v)
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

static void build_timeline(struct view *v, int width)
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

/* ---- drawing ---- */

static const char *mode_name(enum q_metric m)
{
    return m == Q_CPU ? "cpu" : m == Q_GIL ? "gil" : "wall";
}

static double pct(double a, double b)
{
    return b > 0 ? 100.0 * a / b : 0;
}

static void sel_on(int on)
{
    int a = A_BOLD | (has_colors() ? COLOR_PAIR(TUI_C_SEL) : A_REVERSE);
    if (on)
        attron(a);
    else
        attroff(a);
}

static void fileline(char *out, size_t n, const struct vfunc *f)
{
    if (f->file[0])
        snprintf(out, n, "%s:%d", f->file, f->line);
    else
        out[0] = 0;
}

/* Keep the selection inside [0, count) and visible in a window of h rows. */
static void clamp(int *sel, int *scroll, int count, int h)
{
    if (*sel >= count)
        *sel = count - 1;
    if (*sel < 0)
        *sel = 0;
    if (h < 1)
        h = 1;
    if (*sel < *scroll)
        *scroll = *sel;
    if (*sel >= *scroll + h)
        *scroll = *sel - h + 1;
    if (*scroll < 0)
        *scroll = 0;
}

static void thread_label(struct view *v, uint32_t t, char *out, size_t n)
{
    if (!t)
        snprintf(out, n, "all");
    else
        model_thread_label(v->m, t, out, n);
}

static void draw_title(struct view *v, int cols)
{
    const char *pid = model_meta(v->m, "pid"), *cmd = model_meta(v->m, "cmd");
    const char *ver = model_meta(v->m, "python_version");
    attron(A_REVERSE | A_BOLD);
    tui_putf(0, 0, cols, 1, " sonde view  %s  pid %s  %s  Python %s", v->o->path ? v->o->path : "",
             pid ? pid : "?", cmd ? cmd : "", ver ? ver : "?");
    attroff(A_REVERSE | A_BOLD);
    char lab[96];
    thread_label(v, v->thread, lab, sizeof lab);
    tui_putf(1, 0, cols, 1, "[%d] %s   Mode %s   Thread %s   %zu samples  %.2fs  total %.3fs",
             v->pane + 1, pane_names[v->pane], mode_name(v->mode), lab, v->m->nsamples,
             v->duration_s, grand_total(v));
}

/* Row of the tree, flat and callers panes: numbers then an indented name. */
static void draw_func_row(struct view *v, int y, int cols, int selected, double a, double b,
                          const char *lead, int indent, uint32_t f)
{
    double tot = grand_total(v);
    char sa[32], sb[32], fl[1024];
    tui_fmt_secs(sa, sizeof sa, a);
    tui_fmt_secs(sb, sizeof sb, b);
    fileline(fl, sizeof fl, &v->funcs[f]);
    int namew = cols - 35;
    if (namew < 8)
        namew = 8;
    if (indent > namew / 2)
        indent = namew / 2;
    /* a path that does not fit keeps its end: "...pkg/module.py:12" */
    int room = namew - indent - (int)strlen(lead) - (int)strlen(v->funcs[f].name) - 2;
    int fll = (int)strlen(fl);
    const char *fls = fl, *dots = "";
    if (fll > room && room > 12) {
        fls = fl + fll - (room - 3);
        dots = "...";
    }
    char name[1200];
    snprintf(name, sizeof name, "%*s%s%s  %s%s", indent, "", lead, v->funcs[f].name, dots, fls);
    if (selected)
        sel_on(1);
    tui_putf(y, 0, cols, 1, "%6.1f %6.1f %9s %9s  %s", pct(a, tot), pct(b, tot), sa, sb, name);
    if (selected)
        sel_on(0);
}

static void draw_tree(struct view *v, int top, int h, int cols)
{
    attron(A_REVERSE);
    tui_putf(top - 1, 0, cols, 1, "%6s %6s %9s %9s  %s", "TOTAL%", "SELF%", "TOTAL", "SELF",
             "FUNCTION  FILE:LINE   (Right/Left expand/collapse, Enter toggle)");
    attroff(A_REVERSE);
    clamp(&v->sel, &v->scroll, (int)v->nrows, h);
    for (int i = 0; i < h && (size_t)(v->scroll + i) < v->nrows; i++) {
        int r = v->scroll + i;
        uint32_t n = v->rows[r];
        const char *lead = "  ";
        int has = 0;
        for (uint32_t c = v->nodes[n].child; c && !has; c = v->nodes[c].sibling)
            has = incl_of(v, c) > 0;
        if (has)
            lead = v->expanded[n] ? "- " : "+ ";
        draw_func_row(v, top + i, cols, r == v->sel, incl_of(v, n), self_of(v, n), lead,
                      2 * ((int)v->nodes[n].depth - 1), v->nodes[n].func);
    }
    if (!v->nrows)
        tui_put(top, 1, cols - 1, "(no samples in this mode / thread)", 0);
}

static void draw_flat(struct view *v, int top, int h, int cols)
{
    struct wset *w = ws_of(v);
    attron(A_REVERSE);
    tui_putf(top - 1, 0, cols, 1, "%6s %6s %9s %9s  %s", v->fsort_self ? "SELF%*" : "SELF%",
             v->fsort_self ? "TOTAL%" : "TOTAL%*", "SELF", "TOTAL",
             "FUNCTION  FILE:LINE   (s: sort self/total, Enter: callers/callees)");
    attroff(A_REVERSE);
    clamp(&v->fsel, &v->fscroll, (int)v->nflat, h);
    for (int i = 0; i < h && (size_t)(v->fscroll + i) < v->nflat; i++) {
        int r = v->fscroll + i;
        uint32_t f = v->flat[r];
        draw_func_row(v, top + i, cols, r == v->fsel, w->fself[(size_t)f * Q_METRICS + v->mode],
                      w->ftotal[(size_t)f * Q_METRICS + v->mode], "", 0, f);
    }
}

static void draw_callers(struct view *v, int top, int h, int cols)
{
    struct wset *w = ws_of(v);
    uint32_t F = v->focus;
    char fl[1024];
    fileline(fl, sizeof fl, &v->funcs[F]);
    attron(A_BOLD);
    tui_putf(top - 1, 0, cols, 1, "%s  %s   self %.3fs  total %.3fs", v->funcs[F].name, fl,
             w->fself[(size_t)F * Q_METRICS + v->mode], w->ftotal[(size_t)F * Q_METRICS + v->mode]);
    attroff(A_BOLD);
    int total = (int)(v->ncallers + v->ncallees + 2);
    clamp(&v->csel, &v->cscroll, total, h);
    /* rows: "callers" title, callers..., "callees" title, callees... */
    for (int i = 0; i < h; i++) {
        int r = v->cscroll + i;
        if (r >= total)
            break;
        int y = top + i;
        if (r == 0) {
            attron(A_REVERSE);
            tui_putf(y, 0, cols, 1, "CALLERS of %s (%zu)   TOTAL%% = time in %s when called from them",
                     v->funcs[F].name, v->ncallers, v->funcs[F].name);
            attroff(A_REVERSE);
        } else if ((size_t)r <= v->ncallers) {
            const struct ccrow *c = &v->callers[r - 1];
            draw_func_row(v, y, cols, r == v->csel, c->w, 0, "  <- ", 0, c->func);
        } else if ((size_t)r == v->ncallers + 1) {
            attron(A_REVERSE);
            tui_putf(y, 0, cols, 1, "CALLEES of %s (%zu)   TOTAL%% = time in them when called from %s",
                     v->funcs[F].name, v->ncallees, v->funcs[F].name);
            attroff(A_REVERSE);
        } else {
            const struct ccrow *c = &v->callees[r - 2 - v->ncallers];
            draw_func_row(v, y, cols, r == v->csel, c->w, 0, "  -> ", 0, c->func);
        }
    }
}

static void draw_threads(struct view *v, int top, int h, int cols)
{
    attron(A_REVERSE);
    tui_putf(top - 1, 0, cols, 1, " %-16s %7s %7s %7s %7s %5s %5s %5s %5s %s", "THREAD", "TID",
             "SAMPLES", "WALL s", "CPU s", "%GIL", "%WAIT", "%NOGL", "%IDLE",
             "# gil w wait = nogil . idle");
    attroff(A_REVERSE);
    int count = (int)v->nqth + 1;
    int dummy = 0;
    clamp(&v->tsel, &dummy, count, h);
    for (int i = 0; i < h && i < count; i++) {
        int sel = i == v->tsel;
        if (sel)
            sel_on(1);
        if (i == 0) {
            tui_putf(top, 0, cols, 1, "%c%-16s", v->thread == 0 ? '>' : ' ', "(all threads)");
        } else {
            const struct q_thread *t = &v->qth[i - 1];
            const struct m_thread *mt = &v->m->threads[t->thread];
            tui_putf(top + i, 0, cols, 1, "%c%-16.16s %7d %7llu %7.2f %7.2f %5.1f %5.1f %5.1f %5.1f",
                     v->thread == t->thread ? '>' : ' ', mt->name && *mt->name ? mt->name : "?",
                     mt->tid, (unsigned long long)t->samples, t->wall_s, t->cpu_s,
                     pct(t->state_s[STATE_GIL], t->wall_s), pct(t->state_s[STATE_GIL_WAIT], t->wall_s),
                     pct(t->state_s[STATE_NOGIL], t->wall_s), pct(t->state_s[STATE_IDLE], t->wall_s));
        }
        if (sel)
            sel_on(0);
        if (i > 0 && cols > 76) {
            const struct q_thread *t = &v->qth[i - 1];
            double fr[4];
            for (int k = 0; k < 4; k++)
                fr[k] = t->wall_s > 0 ? t->state_s[k] / t->wall_s : 0;
            tui_state_bar(top + i, 74, cols - 74, fr);
        }
    }
}

static void draw_timeline(struct view *v, int top, int h, int cols)
{
    int lw = cols >= 60 ? 22 : 12, w = cols - lw - 1;
    build_timeline(v, w);
    attron(A_REVERSE);
    char right[32];
    snprintf(right, sizeof right, "%.2fs", v->duration_s);
    tui_putf(top - 1, 0, cols, 1, "%-*s|0s%*s|", lw - 1, " THREAD", w - 2 > 0 ? w - 2 : 0, right);
    attroff(A_REVERSE);
    int count = (int)v->nqth, dummy = 0;
    clamp(&v->tsel, &dummy, count + 1, h - 1);
    for (int i = 0; i < count && i < h - 1; i++) {
        const struct q_thread *t = &v->qth[i];
        const struct m_thread *mt = &v->m->threads[t->thread];
        int sel = i + 1 == v->tsel;
        if (sel)
            sel_on(1);
        tui_putf(top + i, 0, lw, 1, "%c%.*s %d", v->thread == t->thread ? '>' : ' ', lw - 9,
                 mt->name && *mt->name ? mt->name : "?", mt->tid);
        if (sel)
            sel_on(0);
        if (!v->tl)
            continue;
        move(top + i, lw);
        for (int c = 0; c < w; c++) {
            int st = v->tl[(size_t)i * w + c];
            if (st == 255) {
                addch(' ');
                continue;
            }
            if (has_colors())
                attron(COLOR_PAIR(tui_state_pair(st)));
            addch((chtype)tui_state_char(st));
            if (has_colors())
                attroff(COLOR_PAIR(tui_state_pair(st)));
        }
    }
    tui_put(top + (count < h - 1 ? count : h - 1), 0, cols,
            " legend: # gil (holds the GIL)  w gil_wait  = nogil (on CPU, no GIL)  . idle   (one column = a time slice, its most frequent state)",
            1);
}

static void draw(struct view *v)
{
    int rows, cols;
    getmaxyx(stdscr, rows, cols);
    erase();
    if (rows < 6 || cols < 30) {
        tui_put(0, 0, cols, "sonde view: terminal too small", 0);
        wnoutrefresh(stdscr);
        doupdate();
        return;
    }
    draw_title(v, cols);
    int top = 3, h = rows - top - 1;
    switch (v->pane) {
    case P_TREE: draw_tree(v, top, h, cols); break;
    case P_FLAT: draw_flat(v, top, h, cols); break;
    case P_CALLERS: draw_callers(v, top, h, cols); break;
    case P_THREADS: draw_threads(v, top, h, cols); break;
    case P_TIMELINE: draw_timeline(v, top, h, cols); break;
    }
    tui_status(v->msg, " q quit ? help 1-5/Tab views m mode t thread / search e export Enter select");
    wnoutrefresh(stdscr);
    doupdate();
}

/* ---- actions ---- */

static const char *const help_lines[] = {
    "sonde view: browse a recording.",
    "",
    "Views:  1 call tree  2 flat profile  3 callers/callees  4 threads  5 timeline",
    "        Tab / Shift-Tab: next / previous view",
    "",
    "  q             quit (the terminal is restored)",
    "  ?  F1         this help",
    "  m             next mode: wall -> cpu -> gil (wall time holding the GIL)",
    "  w  c  g       mode wall / cpu / gil",
    "  t  T          next / previous thread filter;  a  all threads",
    "  Up Down PgUp PgDn Home End   move",
    "  Right  +      call tree: expand the selected function",
    "  Left   -      call tree: collapse it (or go to its caller)",
    "  Enter  space  call tree: expand / collapse;  flat: its callers/callees;",
    "                callers/callees: focus that function;",
    "                threads, timeline: filter on that thread",
    "  *             call tree: expand the hottest path below the selection",
    "  x             call tree: collapse everything",
    "  s             flat: sort by self or total",
    "  /             search a function by name (substring, case-insensitive)",
    "  n  N          next / previous match",
    "  e             export the current mode and thread: then c (callgrind)",
    "                or h (html); written next to the recording",
    "",
    "TOTAL: time with the function on the stack (inclusive);",
    "SELF: time with it innermost (exclusive).",
    "Percentages: of the whole recording under the current mode and thread filter.",
    "The call tree opens with the hottest path expanded.",
    "Thread states: # gil  w gil_wait  = nogil  . idle",
    NULL,
};

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

static void show_match(struct view *v)
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
        rebuild_cc(v);
    }
    snprintf(v->msg, sizeof v->msg, " match %zu/%zu for '%s': %s  (n next, N previous)",
             v->match_i + 1, v->nmatches, v->search, v->funcs[f].name);
}

static void do_search(struct view *v)
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
            if (incl_of(v, n) > 0 && icontains(v->funcs[v->nodes[n].func].name, v->search))
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
    show_match(v);
}

static void set_filter(struct view *v, uint32_t thread, enum q_metric mode)
{
    v->thread = thread;
    v->mode = mode;
    reset_tree(v);
    rebuild_flat(v);
    rebuild_cc(v);
    free(v->matches);
    v->matches = NULL;
    v->nmatches = 0;
}

static void cycle_thread(struct view *v, int dir)
{
    int n = (int)v->nqth, cur = 0;
    for (int i = 0; i < n; i++)
        if (v->qth[i].thread == v->thread)
            cur = i + 1;
    cur = ((cur + dir) % (n + 1) + n + 1) % (n + 1);
    set_filter(v, cur ? v->qth[cur - 1].thread : 0, v->mode);
    char lab[96];
    thread_label(v, v->thread, lab, sizeof lab);
    snprintf(v->msg, sizeof v->msg, " thread: %s", lab);
}

static void do_export(struct view *v, int key)
{
    const char *fmt = key == 'c' ? "callgrind" : key == 'h' ? "html" : NULL;
    if (!fmt) {
        snprintf(v->msg, sizeof v->msg, " export cancelled");
        return;
    }
    if (!v->o->export_fn) {
        snprintf(v->msg, sizeof v->msg, " exporter not available: %s", fmt);
        return;
    }
    char m[200] = "";
    int rc = v->o->export_fn(v->o->export_ctx, fmt, v->mode, v->thread, m, sizeof m);
    snprintf(v->msg, sizeof v->msg, rc ? " export failed: %s" : " exported: %s", m);
}

static int pane_height(void)
{
    return LINES - 4 > 1 ? LINES - 4 : 1;
}

static void move_sel(struct view *v, int d)
{
    switch (v->pane) {
    case P_TREE: v->sel += d; break;
    case P_FLAT: v->fsel += d; break;
    case P_CALLERS: v->csel += d; break;
    default: v->tsel += d; break;
    }
}

/* Handle one key. 1 to quit. */
static int handle_key(struct view *v, int ch)
{
    v->msg[0] = 0;
    int page = pane_height();
    switch (ch) {
    case 'q': case 'Q':
        return 1;
    case KEY_RESIZE:
        break;
    case '?': case KEY_F(1):
        if (!v->o->bench_keys)
            tui_help("sonde view: help", help_lines);
        break;
    case '1': case '2': case '3': case '4': case '5':
        if (ch - '1' == P_CALLERS && v->pane != P_CALLERS) {
            v->focus = selected_func(v);
            rebuild_cc(v);
        }
        v->pane = ch - '1';
        break;
    case '\t':
        v->pane = (v->pane + 1) % P_COUNT;
        break;
    case KEY_BTAB:
        v->pane = (v->pane + P_COUNT - 1) % P_COUNT;
        break;
    case 'm':
        set_filter(v, v->thread, (enum q_metric)((v->mode + 1) % Q_METRICS));
        snprintf(v->msg, sizeof v->msg, " mode: %s", mode_name(v->mode));
        break;
    case 'w': set_filter(v, v->thread, Q_WALL); break;
    case 'c': set_filter(v, v->thread, Q_CPU); break;
    case 'g': set_filter(v, v->thread, Q_GIL); break;
    case 't': cycle_thread(v, 1); break;
    case 'T': cycle_thread(v, -1); break;
    case 'a': set_filter(v, 0, v->mode); break;
    case KEY_UP: case 'k': move_sel(v, -1); break;
    case KEY_DOWN: case 'j': move_sel(v, 1); break;
    case KEY_PPAGE: move_sel(v, -page); break;
    case KEY_NPAGE: move_sel(v, page); break;
    case KEY_HOME: move_sel(v, -(1 << 30)); break;
    case KEY_END: move_sel(v, 1 << 30); break;
    case 's':
        v->fsort_self = !v->fsort_self;
        rebuild_flat(v);
        break;
    case '/': {
        char q[sizeof v->search] = "";
        if (v->o->bench_keys)
            snprintf(q, sizeof q, "f");
        else if (!tui_prompt("/", q, sizeof q) || !q[0])
            break;
        memcpy(v->search, q, sizeof q);
        do_search(v);
        break;
    }
    case 'n': case 'N':
        if (v->search[0] && (v->match_tree != (v->pane == P_TREE) || !v->matches)) {
            do_search(v); /* another pane: search it afresh */
            break;
        }
        if (v->nmatches) {
            v->match_i = ch == 'n' ? (v->match_i + 1) % v->nmatches
                                   : (v->match_i + v->nmatches - 1) % v->nmatches;
            show_match(v);
        }
        break;
    case 'e': {
        int k = 'c';
        if (!v->o->bench_keys) {
            int rows, cols;
            getmaxyx(stdscr, rows, cols);
            attron(A_REVERSE);
            tui_put(rows - 1, 0, cols, " export as: c callgrind, h html  (any other key cancels)", 1);
            attroff(A_REVERSE);
            refresh();
            do
                k = getch();
            while (k == ERR || k == KEY_RESIZE);
        } else {
            break;
        }
        do_export(v, k);
        break;
    }
    default:
        break;
    }
    if (v->pane == P_TREE && v->nrows) {
        clamp(&v->sel, &v->scroll, (int)v->nrows, page);
        uint32_t n = v->rows[v->sel];
        switch (ch) {
        case KEY_RIGHT: case '+': case 'l':
            if (!v->expanded[n]) {
                v->expanded[n] = 1;
                rebuild_rows(v);
            } else if ((size_t)v->sel + 1 < v->nrows && v->nodes[v->rows[v->sel + 1]].parent == n) {
                v->sel++;
            }
            break;
        case KEY_LEFT: case '-': case 'h':
            if (v->expanded[n]) {
                v->expanded[n] = 0;
                rebuild_rows(v);
            } else if (v->nodes[n].parent) {
                uint32_t p = v->nodes[n].parent;
                for (int i = v->sel; i >= 0; i--)
                    if (v->rows[i] == p) {
                        v->sel = i;
                        break;
                    }
            }
            break;
        case '\n': case '\r': case KEY_ENTER: case ' ':
            v->expanded[n] = !v->expanded[n];
            rebuild_rows(v);
            break;
        case '*':
            expand_hot(v, n);
            rebuild_rows(v);
            break;
        case 'x':
            memset(v->expanded, 0, v->nnodes);
            v->sel = 0;
            rebuild_rows(v);
            break;
        }
    } else if (ch == '\n' || ch == '\r' || ch == KEY_ENTER) {
        if (v->pane == P_FLAT && v->nflat) {
            v->focus = v->flat[v->fsel];
            rebuild_cc(v);
            v->pane = P_CALLERS;
        } else if (v->pane == P_CALLERS) {
            uint32_t f = 0;
            if (v->csel >= 1 && (size_t)v->csel <= v->ncallers)
                f = v->callers[v->csel - 1].func;
            else if ((size_t)v->csel >= v->ncallers + 2)
                f = v->callees[v->csel - 2 - v->ncallers].func;
            if (f > 1) {
                v->focus = f;
                rebuild_cc(v);
            }
        } else if (v->pane == P_THREADS || v->pane == P_TIMELINE) {
            uint32_t t = v->tsel > 0 && (size_t)v->tsel <= v->nqth ? v->qth[v->tsel - 1].thread : 0;
            if (v->pane == P_TIMELINE)
                t = v->tsel >= 1 && (size_t)v->tsel <= v->nqth ? v->qth[v->tsel - 1].thread : 0;
            set_filter(v, t, v->mode);
            char lab[96];
            thread_label(v, v->thread, lab, sizeof lab);
            snprintf(v->msg, sizeof v->msg, " thread: %s", lab);
        }
    }
    return 0;
}

/* ---- open, run, close ---- */

static void view_fini(struct view *v)
{
    if (v->ws)
        for (size_t i = 0; i <= v->m->nthreads; i++) {
            free(v->ws[i].self);
            free(v->ws[i].incl);
            free(v->ws[i].fself);
            free(v->ws[i].ftotal);
        }
    free(v->ws);
    free(v->funcs);
    free(v->nodes);
    free(v->ctnode);
    calltree_free(v->ct);
    free(v->qth);
    free(v->expanded);
    free(v->rows);
    free(v->flat);
    free(v->callers);
    free(v->callees);
    free(v->acc);
    free(v->tl);
    free(v->matches);
}

static int view_init(struct view *v, const struct model *m, const struct view_opts *o)
{
    memset(v, 0, sizeof *v);
    v->m = m;
    v->o = o;
    v->mode = o->mode;
    v->thread = o->thread <= m->nthreads ? o->thread : 0;
    if (build_view_tree(v))
        return -ENOMEM;
    v->ws = calloc(m->nthreads + 1, sizeof *v->ws);
    v->expanded = calloc(v->nnodes, 1);
    v->flat = malloc(v->nfuncs * sizeof *v->flat);
    v->callers = malloc(v->nfuncs * sizeof *v->callers);
    v->callees = malloc(v->nfuncs * sizeof *v->callees);
    v->acc = calloc(v->nfuncs, sizeof *v->acc);
    if (!v->ws || !v->expanded || !v->flat || !v->callers || !v->callees || !v->acc)
        return -ENOMEM;
    if (compute_ws(v, 0, &v->ws[0]))
        return -ENOMEM;
    if (query_threads(m, &v->qth, &v->nqth))
        return -ENOMEM;
    if (m->nsamples) {
        v->t0 = m->samples[0].ts;
        v->t1 = m->samples[m->nsamples - 1].ts;
    }
    const char *d = model_meta(m, "duration_ns");
    v->duration_s = d ? strtod(d, NULL) / 1e9 : (double)(v->t1 - v->t0) / 1e9;
    if (v->duration_s <= 0)
        v->duration_s = (double)(v->t1 - v->t0) / 1e9;
    reset_tree(v);
    rebuild_flat(v);
    v->focus = selected_func(v);
    rebuild_cc(v);
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_bench(struct view *v, double init_s, char *err, size_t errlen)
{
    FILE *out = fopen("/dev/null", "w"), *in = fopen("/dev/null", "r");
    SCREEN *scr = out && in ? newterm("xterm", out, in) : NULL;
    if (!scr) {
        if (out)
            fclose(out);
        if (in)
            fclose(in);
        return se_fail(err, errlen, -ENOTTY, "cannot create an off-screen terminal");
    }
    resize_term(40, 120);
    static const int keys[] = { KEY_DOWN, KEY_DOWN, KEY_RIGHT, KEY_DOWN, KEY_LEFT, KEY_NPAGE,
                                KEY_UP, 'x', '*', KEY_END, KEY_HOME, 'm', '2', KEY_DOWN, 's',
                                '\n', KEY_DOWN, '\n', '4', KEY_DOWN, '\n', '5', 't', '1', '/',
                                'n', 'a', 'c', 'g', 'w', '3', '1' };
    const size_t nk = sizeof keys / sizeof keys[0];
    double t = now_s();
    draw(v);
    double first = now_s() - t, sum = 0, max = 0;
    int maxkey = 0;
    for (int i = 0; i < v->o->bench_keys; i++) {
        int k = keys[(size_t)i % nk];
        t = now_s();
        handle_key(v, k);
        draw(v);
        double d = now_s() - t;
        sum += d;
        if (d > max) {
            max = d;
            maxkey = k;
        }
    }
    endwin();
    delscreen(scr);
    fclose(out);
    fclose(in);
    char kn[32];
    snprintf(kn, sizeof kn, "%s", keyname(maxkey) ? keyname(maxkey) : "?");
    printf("view: %zu samples, %zu stacks -> %zu call-tree nodes, %zu functions\n",
           v->m->nsamples, v->m->nstacks, v->nnodes, v->nfuncs);
    printf("view: precompute %.1f ms, first draw %.2f ms\n", init_s * 1e3, first * 1e3);
    printf("view: %d keypresses, redraw mean %.3f ms, max %.3f ms (key %s)\n", v->o->bench_keys,
           v->o->bench_keys ? sum / v->o->bench_keys * 1e3 : 0.0, max * 1e3, kn);
    return 0;
}

int view_run(const struct model *m, const struct view_opts *o, char *err, size_t errlen)
{
    struct view v;
    double t = now_s();
    int rc = view_init(&v, m, o);
    double init_s = now_s() - t;
    if (rc) {
        view_fini(&v);
        return se_fail(err, errlen, rc, "out of memory");
    }
    if (o->bench_keys > 0) {
        rc = run_bench(&v, init_s, err, errlen);
        view_fini(&v);
        return rc;
    }
    if (tui_begin(err, errlen)) {
        view_fini(&v);
        return -ENOTTY;
    }
    for (;;) {
        draw(&v);
        int ch = getch();
        if (ch == ERR)
            continue;
        if (handle_key(&v, ch))
            break;
    }
    tui_end();
    view_fini(&v);
    return 0;
}
