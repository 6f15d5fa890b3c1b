#include "profiler/query.h"

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

static enum q_metric g_sort_metric;
static int g_sort_self;

static int cmp_func(const void *a, const void *b)
{
    const struct q_func *x = a, *y = b;
    double vx = g_sort_self ? x->self[g_sort_metric] : x->total[g_sort_metric];
    double vy = g_sort_self ? y->self[g_sort_metric] : y->total[g_sort_metric];
    if (vx != vy)
        return vx < vy ? 1 : -1;
    double sx = x->self[g_sort_metric], sy = y->self[g_sort_metric];
    if (sx != sy)
        return sx < sy ? 1 : -1;
    return (int)x->name - (int)y->name;
}

int query_functions(const struct model *m, uint32_t thread, enum q_metric sort_metric,
                    int sort_self, struct q_func **out, size_t *n)
{
    int rc = -ENOMEM;
    /* metrics per stack node */
    double (*per_stack)[Q_METRICS] = calloc(m->nstacks + 1, sizeof *per_stack);
    uint32_t *func_of_frame = calloc(m->nframes + 1, sizeof *func_of_frame);
    struct q_func *funcs = calloc(m->nframes + 1, sizeof *funcs);
    uint32_t *stamp = NULL;
    struct hmap fmap = { 0 };
    size_t nf = 0;
    if (!per_stack || !func_of_frame || !funcs || hmap_init(&fmap, m->nframes + 1))
        goto done;
    for (size_t i = 0; i < m->nsamples; i++) {
        const struct m_sample *s = &m->samples[i];
        if (thread && s->thread != thread)
            continue;
        for (int k = 0; k < Q_METRICS; k++)
            per_stack[s->stack][k] += q_sample_value(s, (enum q_metric)k);
    }
    /* functions: (name, file, fn_line) */
    for (size_t f = 1; f < m->nframes; f++) {
        const struct m_frame *fr = &m->frames[f];
        if (!fr->name && !fr->file)
            continue;
        uint64_t k1 = ((uint64_t)fr->name << 32) | fr->file;
        uint64_t *v = hmap_get(&fmap, k1, (uint64_t)(uint32_t)fr->fn_line);
        if (!v) {
            funcs[nf].name = fr->name;
            funcs[nf].file = fr->file;
            funcs[nf].fn_line = fr->fn_line;
            if (hmap_put(&fmap, k1, (uint64_t)(uint32_t)fr->fn_line, nf))
                goto done;
            func_of_frame[f] = (uint32_t)nf++;
        } else {
            func_of_frame[f] = (uint32_t)*v;
        }
    }
    stamp = calloc(nf + 1, sizeof *stamp);
    if (!stamp)
        goto done;
    for (size_t sid = 1; sid < m->nstacks; sid++) {
        double *v = per_stack[sid];
        if (v[0] == 0 && v[1] == 0 && v[2] == 0)
            continue;
        uint32_t leaf = func_of_frame[m->stacks[sid].frame];
        for (int k = 0; k < Q_METRICS; k++)
            funcs[leaf].self[k] += v[k];
        for (uint32_t node = (uint32_t)sid; node; node = m->stacks[node].parent) {
            uint32_t f = func_of_frame[m->stacks[node].frame];
            if (stamp[f] == sid)
                continue; /* recursion: once per sample */
            stamp[f] = (uint32_t)sid;
            for (int k = 0; k < Q_METRICS; k++)
                funcs[f].total[k] += v[k];
        }
    }
    /* keep the functions that were seen */
    size_t kept = 0;
    for (size_t i = 0; i < nf; i++)
        if (funcs[i].total[Q_WALL] > 0 || funcs[i].total[Q_CPU] > 0)
            funcs[kept++] = funcs[i];
    g_sort_metric = sort_metric;
    g_sort_self = sort_self;
    qsort(funcs, kept, sizeof *funcs, cmp_func);
    *out = funcs;
    *n = kept;
    funcs = NULL;
    rc = 0;
done:
    free(per_stack);
    free(func_of_frame);
    free(funcs);
    free(stamp);
    hmap_fini(&fmap);
    return rc;
}

void query_gil(const struct model *m, struct q_gil *out)
{
    memset(out, 0, sizeof *out);
    const char *sw = model_meta(m, "gil_switches");
    const char *dur = model_meta(m, "duration_ns");
    out->switches = sw ? strtoull(sw, NULL, 10) : 0;
    out->duration_s = dur ? (double)strtoll(dur, NULL, 10) / 1e9 : 0;
    uint64_t held = 0, contended = 0, waiters = 0;
    for (size_t i = 0; i < m->ngil; i++) {
        held += m->gil[i].holder != 0;
        contended += m->gil[i].waiters > 0;
        waiters += m->gil[i].waiters;
    }
    if (m->ngil) {
        out->held_pct = 100.0 * (double)held / (double)m->ngil;
        out->contended_pct = 100.0 * (double)contended / (double)m->ngil;
        out->mean_waiters = (double)waiters / (double)m->ngil;
    }
    for (size_t i = 0; i < m->nsamples; i++) {
        const struct m_sample *s = &m->samples[i];
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
