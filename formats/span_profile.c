/* The profiles of a trace's spans as a model: see formats/span_profile.h. */
#include "formats/span_profile.h"

#include "common/err.h"
#include "common/grow.h"
#include "common/hmap.h"
#include "common/strtab.h"
#include "spans/profile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPAND_MAX 1000000 /* samples a model holds before counts stop being expanded */

struct build {
    struct model *m;
    struct strtab strs;
    struct hmap frames, stacks;
    size_t capframes, capstacks, capthreads, capsamples;
};


static uint32_t frame_id(struct build *b, const struct sprof_frame *f)
{
    uint32_t name, file;
    if (strtab_intern(&b->strs, f->name, &name, NULL) || strtab_intern(&b->strs, f->file, &file, NULL))
        return 0;
    int32_t line = f->line < 0 || f->line > INT32_MAX ? 0 : (int32_t)f->line;
    int32_t fl = f->fn_line < 0 || f->fn_line > INT32_MAX ? 0 : (int32_t)f->fn_line;
    uint64_t k1 = (uint64_t)name << 32 | file, k2 = (uint64_t)(uint32_t)line << 32 | (uint32_t)fl;
    uint64_t *v = hmap_get(&b->frames, k1, k2);
    if (v)
        return (uint32_t)*v;
    struct model *m = b->m;
    if (grow_array((void **)&m->frames, &b->capframes, m->nframes + 1, sizeof *m->frames))
        return 0;
    uint32_t id = (uint32_t)m->nframes++;
    m->frames[id] = (struct m_frame){ .name = name, .file = file, .line = line, .fn_line = fl };
    return hmap_put(&b->frames, k1, k2, id) ? 0 : id;
}

/* The stack node of a sample's frames (innermost first), 0 for none; -1
 * out of memory. */
static int64_t stack_id(struct build *b, const struct sprof *p, const struct sprof_sample *s)
{
    uint32_t parent = 0;
    struct model *m = b->m;
    for (uint32_t d = s->n; d-- > 0;) {
        uint32_t fr = frame_id(b, &p->frames[p->stack[s->off + d]]);
        if (!fr)
            return -1;
        uint64_t *v = hmap_get(&b->stacks, parent, fr);
        if (v) {
            parent = (uint32_t)*v;
            continue;
        }
        if (grow_array((void **)&m->stacks, &b->capstacks, m->nstacks + 1, sizeof *m->stacks))
            return -1;
        uint32_t id = (uint32_t)m->nstacks++;
        m->stacks[id] = (struct m_stack){ .parent = parent, .frame = fr,
                                          .depth = parent ? m->stacks[parent].depth + 1 : 1 };
        if (hmap_put(&b->stacks, parent, fr, id))
            return -1;
        parent = id;
    }
    return parent;
}

static int add_meta(struct model *m, const char *k, const char *v)
{
    char **nk = realloc(m->meta_keys, (m->nmeta + 1) * sizeof *nk);
    if (!nk)
        return -ENOMEM;
    m->meta_keys = nk;
    char **nv = realloc(m->meta_values, (m->nmeta + 1) * sizeof *nv);
    if (!nv)
        return -ENOMEM;
    m->meta_values = nv;
    m->meta_keys[m->nmeta] = strdup(k);
    m->meta_values[m->nmeta] = strdup(v);
    if (!m->meta_keys[m->nmeta] || !m->meta_values[m->nmeta]) {
        free(m->meta_keys[m->nmeta]);
        free(m->meta_values[m->nmeta]);
        return -ENOMEM;
    }
    m->nmeta++;
    return 0;
}

static int add_span(struct build *b, const struct span *s, int64_t *ts, size_t *budget, char *err, size_t errlen)
{
    struct sprof p;
    char why[160];
    int rc = sprof_decode(s->pprof, s->pprof_len, NULL, NULL, -1, &p, why, sizeof why);
    if (rc) {
        sprof_fini(&p);
        return rc == -ENOMEM ? se_fail(err, errlen, rc, "out of memory")
                             : se_fail(err, errlen, SE_BADFILE, "span %s: %s", s->span_id, why);
    }
    struct model *m = b->m;
    rc = -ENOMEM;
    if (grow_array((void **)&m->threads, &b->capthreads, m->nthreads + 1, sizeof *m->threads))
        goto out;
    uint32_t th = (uint32_t)m->nthreads;
    size_t nl = strlen(s->name) + 40;
    char *name = malloc(nl);
    if (!name)
        goto out;
    snprintf(name, nl, "%s (%s)", s->name, s->span_id);
    m->threads[th] = (struct m_thread){ .pid = 1, .tid = (int32_t)th, .name = name };
    m->nthreads++;
    for (size_t i = 0; i < p.nsamples; i++) {
        const struct sprof_sample *x = &p.samples[i];
        int64_t sk = stack_id(b, &p, x);
        if (sk < 0)
            goto out;
        int64_t k = x->count > 0 && (uint64_t)x->count <= *budget ? x->count : 1;
        *budget -= (size_t)k <= *budget ? (size_t)k : *budget;
        if (grow_array((void **)&m->samples, &b->capsamples, m->nsamples + (size_t)k, sizeof *m->samples))
            goto out;
        for (int64_t j = 0; j < k; j++) {
            int64_t w = x->wall_ns / k + (j == 0 ? x->wall_ns % k : 0);
            int64_t c = x->cpu_ns / k + (j == 0 ? x->cpu_ns % k : 0);
            m->samples[m->nsamples++] = (struct m_sample){ .ts = (*ts)++, .cpu_ns = c, .wall_ns = w, .thread = th,
                                                           .stack = (uint32_t)sk, .state = x->state };
        }
    }
    rc = 0;
out:
    sprof_fini(&p);
    return rc ? se_fail(err, errlen, rc, "out of memory") : 0;
}

int trace_profile_model(const struct trace_view *v, const char *span_id, struct model **out, char *err,
                        size_t errlen)
{
    *out = NULL;
    struct build b;
    memset(&b, 0, sizeof b);
    b.m = calloc(1, sizeof *b.m);
    int rc = -ENOMEM;
    if (!b.m || strtab_init(&b.strs, 256) || hmap_init(&b.frames, 256) || hmap_init(&b.stacks, 256)) {
        rc = se_fail(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    struct model *m = b.m;
    /* index 0 of frames, stacks and threads is "none" */
    m->nframes = m->nstacks = m->nthreads = 1;
    if (grow_array((void **)&m->frames, &b.capframes, 1, sizeof *m->frames) ||
        grow_array((void **)&m->stacks, &b.capstacks, 1, sizeof *m->stacks) ||
        grow_array((void **)&m->threads, &b.capthreads, 1, sizeof *m->threads)) {
        rc = se_fail(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    memset(m->frames, 0, sizeof *m->frames);
    memset(m->stacks, 0, sizeof *m->stacks);
    memset(m->threads, 0, sizeof *m->threads);
    m->threads[0].name = strdup("");
    if (!m->threads[0].name) {
        rc = se_fail(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    int64_t ts = 0;
    size_t budget = EXPAND_MAX, found = 0;
    rc = 0;
    for (size_t i = 0; !rc && i < v->b.n; i++) {
        const struct span *s = &v->b.spans[i];
        if (span_id && strcmp(s->span_id, span_id) != 0)
            continue;
        found++;
        if (s->pprof)
            rc = add_span(&b, s, &ts, &budget, err, errlen);
    }
    if (rc)
        goto out;
    if (span_id && !found) {
        rc = se_fail(err, errlen, -ENOENT, "no span %s in trace %s", span_id, v->b.n ? v->b.spans[0].trace_id : "");
        goto out;
    }
    if (m->nthreads == 1) {
        rc = se_fail(err, errlen, -ENOENT, "%s has no profile",
                     span_id ? "the span" : "no span of the trace");
        goto out;
    }
    /* the strings, by id (strtab ids start at 1, as the model's) */
    m->nstrings = b.strs.n + 1;
    m->strings = calloc(m->nstrings, sizeof *m->strings);
    if (!m->strings) {
        m->nstrings = 0;
        rc = se_fail(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 1; i < m->nstrings; i++)
        if (!(m->strings[i] = strdup(strtab_str(&b.strs, (uint32_t)i)))) {
            rc = se_fail(err, errlen, -ENOMEM, "out of memory");
            goto out;
        }
    char cmd[120], dur[32];
    snprintf(cmd, sizeof cmd, "trace %s%s%s", v->b.n ? v->b.spans[0].trace_id : "", span_id ? " span " : "",
             span_id ? span_id : "");
    int64_t wall = 0;
    for (size_t i = 0; i < m->nsamples; i++)
        wall += m->samples[i].wall_ns;
    snprintf(dur, sizeof dur, "%lld", (long long)wall);
    if (add_meta(m, "cmd", cmd) || add_meta(m, "duration_ns", dur) || add_meta(m, "pid", "1")) {
        rc = se_fail(err, errlen, -ENOMEM, "out of memory");
        goto out;
    }
out:
    strtab_fini(&b.strs);
    hmap_fini(&b.frames);
    hmap_fini(&b.stacks);
    if (rc)
        model_free(b.m);
    else
        *out = b.m;
    return rc;
}
