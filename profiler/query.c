#include "profiler/query.h"

#include "profiler/calltree.h"

#include "common/grow.h"
#include "common/hmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int query_threads(const struct model *m, struct q_thread **out, size_t *n)
{
    struct q_thread *all = calloc(m->nthreads + 1, sizeof *all);
    if (!all)
        return -ENOMEM;
    for (size_t i = 0; i < m->nsamples; i++) {
        const struct m_sample *s = &m->samples[i];
        struct q_thread *t = &all[s->thread];
        t->samples++;
        t->wall_s += (double)s->wall_ns / 1e9;
        t->cpu_s += (double)s->cpu_ns / 1e9;
        t->state_s[s->state] += (double)s->wall_ns / 1e9;
        if (s->state == STATE_GIL && (s->flags & SAMPLE_GIL_OFFCPU))
            t->gil_offcpu_s += (double)s->wall_ns / 1e9;
    }
    size_t k = 0;
    for (size_t i = 1; i < m->nthreads; i++) {
        if (!all[i].samples)
            continue;
        all[k] = all[i];
        all[k].thread = (uint32_t)i;
        k++;
    }
    *out = all;
    *n = k;
    return 0;
}

int query_greens(const struct model *m, struct q_green **out, size_t *n)
{
    struct q_green *all = calloc(m->ngreens + 1, sizeof *all);
    if (!all)
        return -ENOMEM;
    for (size_t i = 0; i < m->nsamples; i++) {
        const struct m_sample *s = &m->samples[i];
        if (!s->green || s->green >= m->ngreens)
            continue;
        struct q_green *g = &all[s->green];
        double w = (double)s->wall_ns / 1e9;
        g->samples++;
        g->wall_s += w;
        g->running_s += w;
        g->cpu_s += (double)s->cpu_ns / 1e9;
        g->state_s[s->state] += w;
    }
    for (size_t i = 0; i < m->ngsamples; i++) {
        const struct m_sample *s = &m->gsamples[i];
        if (!s->green || s->green >= m->ngreens)
            continue;
        all[s->green].samples++;
        all[s->green].wall_s += (double)s->wall_ns / 1e9;
    }
    size_t k = 0;
    for (size_t i = 1; i < m->ngreens; i++) {
        if (!all[i].samples)
            continue;
        all[k] = all[i];
        all[k].green = (uint32_t)i;
        k++;
    }
    *out = all;
    *n = k;
    return 0;
}

int query_spans(const struct model *m, struct q_span **out, size_t *n)
{
    struct q_span *all = calloc(m->nspans + 1, sizeof *all);
    if (!all)
        return -ENOMEM;
    for (size_t i = 0; i < m->nspans; i++)
        all[i].span = m->spans[i].no;
    for (size_t i = 0; m->nspans && i < m->nsamples; i++) {
        const struct m_sample *s = &m->samples[i];
        const struct m_span *sp = s->span ? model_span(m, s->span) : NULL;
        if (!sp)
            continue;
        struct q_span *q = &all[sp - m->spans];
        double w = (double)s->wall_ns / 1e9;
        q->samples++;
        q->wall_s += w;
        q->cpu_s += (double)s->cpu_ns / 1e9;
        q->state_s[s->state] += w;
    }
    *out = all;
    *n = m->nspans;
    return 0;
}

static enum q_metric g_sort_metric;
static int g_sort_self;

/* Descending by the ranked time (self or total of the metric), then by
 * self time; 0 when both tie. */
static int cmp_rank(const double *xself, const double *xtotal, const double *yself, const double *ytotal)
{
    double vx = g_sort_self ? xself[g_sort_metric] : xtotal[g_sort_metric];
    double vy = g_sort_self ? yself[g_sort_metric] : ytotal[g_sort_metric];
    if (vx != vy)
        return vx < vy ? 1 : -1;
    double sx = xself[g_sort_metric], sy = yself[g_sort_metric];
    if (sx != sy)
        return sx < sy ? 1 : -1;
    return 0;
}

static int cmp_func(const void *a, const void *b)
{
    const struct q_func *x = a, *y = b;
    int c = cmp_rank(x->self, x->total, y->self, y->total);
    return c ? c : (int)x->name - (int)y->name;
}

static double cost_value(const struct ct_cost *c, enum q_metric k)
{
    switch (k) {
    case Q_CPU: return (double)c->cpu_ns / 1e9;
    case Q_GIL: return (double)c->gil_ns / 1e9;
    default: return (double)c->wall_ns / 1e9;
    }
}

int query_functions(const struct model *m, const struct ct_filter *f, enum q_metric sort_metric,
                    int sort_self, struct q_func **out, size_t *n)
{
    struct calltree *t = NULL;
    struct ct_cost *self = NULL, *total = NULL;
    struct q_func *funcs = NULL;
    int rc = calltree_new(m, f, &t);
    if (rc)
        return rc;
    rc = -ENOMEM;
    self = calloc(t->nfuncs, sizeof *self);
    total = calloc(t->nfuncs, sizeof *total);
    funcs = calloc(t->nfuncs, sizeof *funcs);
    if (!self || !total || !funcs || calltree_flat(t, &t->w, self, total))
        goto done;
    /* the functions seen, in the order of their first frame (function 0,
     * samples without Python frames, is not a function) */
    size_t kept = 0;
    for (size_t i = 1; i < t->nfuncs; i++) {
        if (total[i].wall_ns <= 0 && total[i].cpu_ns <= 0)
            continue;
        struct q_func *q = &funcs[kept++];
        q->name = t->funcs[i].name;
        q->file = t->funcs[i].file;
        q->fn_line = t->funcs[i].line;
        q->native = t->funcs[i].native;
        q->address = t->funcs[i].address;
        for (int k = 0; k < Q_METRICS; k++) {
            q->self[k] = cost_value(&self[i], (enum q_metric)k);
            q->total[k] = cost_value(&total[i], (enum q_metric)k);
        }
    }
    g_sort_metric = sort_metric;
    g_sort_self = sort_self;
    qsort(funcs, kept, sizeof *funcs, cmp_func);
    *out = funcs;
    *n = kept;
    funcs = NULL;
    rc = 0;
done:
    free(self);
    free(total);
    free(funcs);
    calltree_free(t);
    return rc;
}

static int cmp_line(const void *a, const void *b)
{
    const struct q_line *x = a, *y = b;
    int c = cmp_rank(x->self, x->total, y->self, y->total);
    if (c)
        return c;
    if (x->name != y->name)
        return x->name < y->name ? -1 : 1;
    return x->line - y->line;
}

struct line_acc {
    struct hmap map; /* (name << 32 | file, line << 32 | fn_line) -> index + 1 */
    struct q_line *rows;
    size_t n, cap, capseen;
    size_t *seen;    /* the last sample (+ 1) that counted each row in totals */
    uint32_t *frames;
    uint32_t depth;
};

static int line_sample(struct line_acc *a, const struct model *m, const struct m_sample *s, size_t stamp)
{
    if (!s->stack || s->stack >= m->nstacks)
        return 0;
    uint32_t d = calltree_stack_frames(m, s->stack, a->frames, a->depth);
    double v[Q_METRICS];
    v[Q_WALL] = s->wall_ns > 0 ? (double)s->wall_ns / 1e9 : 0;
    v[Q_CPU] = s->cpu_ns > 0 ? (double)s->cpu_ns / 1e9 : 0;
    v[Q_GIL] = s->state == STATE_GIL ? v[Q_WALL] : 0;
    for (uint32_t k = 0; k < d; k++) {
        uint32_t fi = a->frames[k];
        if (fi == 0 || fi >= m->nframes)
            continue;
        const struct m_frame *fr = &m->frames[fi];
        uint64_t k1 = (uint64_t)fr->name << 32 | fr->file;
        uint64_t k2 = (uint64_t)(uint32_t)fr->line << 32 | (uint32_t)fr->fn_line;
        if (fr->kind == 1) {
            /* a native frame: the recording keeps one per function and
             * line of a module (per offset without a symbol), so the frame
             * is the row; no Python row has a name id this large */
            k1 = UINT64_MAX;
            k2 = fi;
        }
        uint64_t *ix = hmap_get(&a->map, k1, k2);
        size_t i;
        if (ix) {
            i = (size_t)*ix - 1;
        } else {
            if (grow_array((void **)&a->rows, &a->cap, a->n + 1, sizeof *a->rows) ||
                grow_array((void **)&a->seen, &a->capseen, a->n + 1, sizeof *a->seen))
                return -ENOMEM;
            i = a->n++;
            memset(&a->rows[i], 0, sizeof a->rows[i]);
            a->rows[i].name = fr->name;
            a->rows[i].file = fr->file;
            a->rows[i].line = fr->line;
            a->rows[i].fn_line = fr->fn_line;
            a->rows[i].native = fr->kind == 1;
            a->rows[i].module = fr->module;
            a->rows[i].address = fr->address;
            a->seen[i] = 0;
            if (hmap_put(&a->map, k1, k2, i + 1))
                return -ENOMEM;
        }
        if (a->seen[i] != stamp) {
            a->seen[i] = stamp;
            for (int q = 0; q < Q_METRICS; q++)
                a->rows[i].total[q] += v[q];
        }
        if (k + 1 == d)
            for (int q = 0; q < Q_METRICS; q++)
                a->rows[i].self[q] += v[q];
    }
    return 0;
}

int query_lines(const struct model *m, const struct ct_filter *f, enum q_metric sort_metric, int sort_self,
                struct q_line **out, size_t *n)
{
    struct line_acc a = { 0 };
    struct ct_filter none = { 0 };
    if (!f)
        f = &none;
    a.depth = calltree_max_depth(m) + 1;
    a.frames = malloc(a.depth * sizeof *a.frames);
    int map_ok = a.frames && !hmap_init(&a.map, 1024);
    int rc = map_ok ? 0 : -ENOMEM;
    size_t stamp = 0;
    for (size_t i = 0; !rc && i < m->nsamples; i++)
        if (ct_selected(m, f, &m->samples[i]))
            rc = line_sample(&a, m, &m->samples[i], ++stamp);
    /* a green thread's suspended samples are its own (as calltree_new) */
    for (size_t i = 0; !rc && f->green && i < m->ngsamples; i++)
        if (m->gsamples[i].green == f->green && ct_selected(m, f, &m->gsamples[i]))
            rc = line_sample(&a, m, &m->gsamples[i], ++stamp);
    if (map_ok)
        hmap_fini(&a.map);
    free(a.frames);
    free(a.seen);
    if (rc) {
        free(a.rows);
        return rc;
    }
    g_sort_metric = sort_metric;
    g_sort_self = sort_self;
    if (a.n)
        qsort(a.rows, a.n, sizeof *a.rows, cmp_line);
    *out = a.rows;
    *n = a.n;
    return 0;
}

void query_gil(const struct model *m, struct q_gil *out)
{
    query_gil_pid(m, 0, out);
}

void query_gil_pid(const struct model *m, int32_t pid, struct q_gil *out)
{
    memset(out, 0, sizeof *out);
    const char *sw = model_meta(m, "gil_switches");
    const char *dur = model_meta(m, "duration_ns");
    out->switches = sw && !pid ? strtoull(sw, NULL, 10) : 0;
    out->duration_s = dur ? (double)strtoll(dur, NULL, 10) / 1e9 : 0;
    uint64_t held = 0, contended = 0, waiters = 0, ticks = 0;
    int64_t sw0 = -1, sw1 = 0;
    for (size_t i = 0; i < m->ngil; i++) {
        if (pid && m->gil[i].pid != pid)
            continue;
        ticks++;
        held += m->gil[i].holder != 0;
        contended += m->gil[i].waiters > 0;
        waiters += m->gil[i].waiters;
        /* the interpreter's own counter, per tick: its growth */
        if (sw0 < 0 || m->gil[i].switches < sw0)
            sw0 = m->gil[i].switches;
        if (m->gil[i].switches > sw1)
            sw1 = m->gil[i].switches;
    }
    if (pid && sw0 >= 0)
        out->switches = (uint64_t)(sw1 - sw0);
    if (ticks) {
        out->held_pct = 100.0 * (double)held / (double)ticks;
        out->contended_pct = 100.0 * (double)contended / (double)ticks;
        out->mean_waiters = (double)waiters / (double)ticks;
    }
    for (size_t i = 0; i < m->nsamples; i++) {
        const struct m_sample *s = &m->samples[i];
        if (pid && (s->thread >= m->nthreads || m->threads[s->thread].pid != pid))
            continue;
        double w = (double)s->wall_ns / 1e9;
        if (s->state == STATE_GIL_WAIT)
            out->wait_s += w;
        if (s->state == STATE_GIL) {
            out->held_s += w;
            if (s->flags & SAMPLE_GIL_OFFCPU)
                out->held_offcpu_s += w;
        }
    }
}
