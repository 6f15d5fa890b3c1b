/* sonde view: open, run and close the browser (and its scripted benchmark).
 * The browser's parts: ui/view_tree.c (data), ui/view_draw.c (screen),
 * ui/view_keys.c (keys); their shared state is in ui/view_int.h.
 * (cli/view.c is the `sonde view` command: options, then this.) */
#include "ui/view_int.h"

#include "common/err.h"
#include "ui/tui.h"

#include <curses.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    if (v->gws)
        for (size_t i = 0; i <= v->m->ngreens; i++) {
            free(v->gws[i].self);
            free(v->gws[i].incl);
            free(v->gws[i].fself);
            free(v->gws[i].ftotal);
        }
    free(v->gws);
    free(v->qg);
    free(v->qg_of);
    free(v->gord);
    free(v->gexp);
    free(v->thead);
    free(v->tgexp);
    free(v->trows);
    for (size_t f = 0; v->funcs && f < v->nfuncs; f++)
        free(v->funcs[f].where);
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

static const struct model *g_m; /* for cmp_gord */

static int cmp_gord(const void *a, const void *b)
{
    const struct m_green *x = &g_m->greens[*(const uint32_t *)a], *y = &g_m->greens[*(const uint32_t *)b];
    if (x->thread != y->thread)
        return x->thread < y->thread ? -1 : 1;
    int c = strcmp(x->func, y->func);
    if (c)
        return c;
    return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

/* The green threads with samples: their figures and their order in the
 * threads pane. 0 or -ENOMEM. */
static int init_greens(struct view *v)
{
    const struct model *m = v->m;
    if (query_greens(m, &v->qg, &v->nqg))
        return -ENOMEM;
    v->gws = calloc(m->ngreens + 1, sizeof *v->gws);
    v->qg_of = malloc((m->ngreens + 1) * sizeof *v->qg_of);
    v->gord = malloc((v->nqg + 1) * sizeof *v->gord);
    v->gexp = calloc(v->nqg + 1, 1);
    if (!v->gws || !v->qg_of || !v->gord || !v->gexp)
        return -ENOMEM;
    for (size_t i = 0; i <= m->ngreens; i++)
        v->qg_of[i] = -1;
    for (size_t i = 0; i < v->nqg; i++) {
        v->qg_of[v->qg[i].green] = (int32_t)i;
        v->gord[v->ngord++] = v->qg[i].green;
    }
    g_m = m;
    qsort(v->gord, v->ngord, sizeof *v->gord, cmp_gord);
    return 0;
}

static int view_init(struct view *v, const struct model *m, const struct view_opts *o)
{
    memset(v, 0, sizeof *v);
    v->m = m;
    v->o = o;
    v->mode = o->mode;
    v->thread = o->thread <= m->nthreads ? o->thread : 0;
    if (vw_build_view_tree(v))
        return -ENOMEM;
    v->ws = calloc(m->nthreads + 1, sizeof *v->ws);
    v->expanded = calloc(v->nnodes, 1);
    v->flat = malloc(v->nfuncs * sizeof *v->flat);
    v->callers = malloc(v->nfuncs * sizeof *v->callers);
    v->callees = malloc(v->nfuncs * sizeof *v->callees);
    v->acc = calloc(v->nfuncs, sizeof *v->acc);
    if (!v->ws || !v->expanded || !v->flat || !v->callers || !v->callees || !v->acc)
        return -ENOMEM;
    if (vw_compute_ws(v, 0, 0, &v->ws[0]))
        return -ENOMEM;
    if (query_threads(m, &v->qth, &v->nqth))
        return -ENOMEM;
    if (o->pid) { /* the other processes' threads are not listed */
        size_t k = 0;
        for (size_t i = 0; i < v->nqth; i++)
            if (m->threads[v->qth[i].thread].pid == o->pid)
                v->qth[k++] = v->qth[i];
        v->nqth = k;
    }
    v->thead = malloc((v->nqth + 1) * sizeof *v->thead);
    v->tgexp = calloc(v->nqth + 1, 1);
    if (!v->thead || !v->tgexp || init_greens(v) || vw_build_trows(v))
        return -ENOMEM;
    if (m->nsamples) {
        v->t0 = m->samples[0].ts;
        v->t1 = m->samples[m->nsamples - 1].ts;
    }
    const char *d = model_meta(m, "duration_ns");
    v->duration_s = d ? strtod(d, NULL) / 1e9 : (double)(v->t1 - v->t0) / 1e9;
    if (v->duration_s <= 0)
        v->duration_s = (double)(v->t1 - v->t0) / 1e9;
    vw_reset_tree(v);
    vw_rebuild_flat(v);
    v->focus = vw_selected_func(v);
    vw_rebuild_cc(v);
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
    vw_draw(v);
    double first = now_s() - t, sum = 0, max = 0;
    int maxkey = 0;
    for (int i = 0; i < v->o->bench_keys; i++) {
        int k = keys[(size_t)i % nk];
        t = now_s();
        vw_handle_key(v, k);
        vw_draw(v);
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
    vw_draw(&v);
    for (;;) {
        int ch = getch();
        if (ch == ERR)
            continue;
        enum vw_redraw r = vw_handle_key(&v, ch);
        if (r == VW_QUIT)
            break;
        if (r == VW_REDRAW)
            vw_draw(&v);
    }
    tui_end();
    view_fini(&v);
    return 0;
}

