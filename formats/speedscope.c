/* speedscope's file format (https://www.speedscope.app/file-format-schema.json):
 * shared frames = functions, one "sampled" profile per thread, then one per
 * green thread ("task NAME (function) on THREAD": its running and suspended
 * samples; only that one under --task), weights in
 * nanoseconds of wall time (or CPU time with --mode cpu, wall time with the
 * GIL held with --mode gil). Consecutive
 * samples with the same stack are merged into one weighted sample. */
#include "formats/export.h"

#include "common/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void put_stack(FILE *out, const struct model *m, const struct calltree *t, uint32_t s,
                      uint32_t *frames, uint32_t cap)
{
    putc('[', out);
    if (s == 0 || s >= m->nstacks) {
        putc('0', out);
    } else {
        uint32_t d = calltree_stack_frames(m, s, frames, cap);
        for (uint32_t i = 0; i < d; i++)
            fprintf(out, i ? ",%u" : "%u", t->frame_func[frames[i]]);
    }
    putc(']', out);
}

/* One "sampled" profile named label of the samples f selects (none if it
 * selects no sample); *wbuf is a scratch buffer (realloc'd). 0 or -ENOMEM. */
static int put_profile(FILE *out, const struct model *m, const struct calltree *t,
                       const struct export_opts *o, const struct ct_filter *f, const char *label,
                       uint32_t *frames, uint32_t cap, int64_t **wbuf, int *nprof)
{
    int64_t start = -1, total = 0;
    size_t n = 0;
    uint32_t prev = UINT32_MAX;
    struct export_iter it;
    /* first pass: merged sample count and bounds */
    export_iter_init(&it, m, f);
    for (const struct m_sample *s; (s = export_iter_next(&it));) {
        int64_t w = export_weight(o, s);
        if (start < 0)
            start = export_sample_start(s);
        if (!w)
            continue;
        total += w;
        if (s->stack != prev)
            n++;
        prev = s->stack;
    }
    if (start < 0)
        return 0;
    free(*wbuf);
    *wbuf = malloc((n + 1) * sizeof **wbuf);
    if (!*wbuf)
        return -ENOMEM;
    fputs((*nprof)++ ? ",{\"type\":\"sampled\",\"name\":" : "{\"type\":\"sampled\",\"name\":", out);
    export_json_str(out, label);
    fprintf(out, ",\"unit\":\"nanoseconds\",\"startValue\":%lld,\"endValue\":%lld,\"samples\":[",
            (long long)start, (long long)(start + total));
    size_t k = 0;
    prev = UINT32_MAX;
    export_iter_init(&it, m, f);
    for (const struct m_sample *s; (s = export_iter_next(&it));) {
        int64_t w;
        if (!(w = export_weight(o, s)))
            continue;
        if (s->stack == prev) {
            (*wbuf)[k - 1] += w;
            continue;
        }
        if (k)
            putc(',', out);
        put_stack(out, m, t, s->stack, frames, cap);
        (*wbuf)[k++] = w;
        prev = s->stack;
    }
    fputs("],\"weights\":[", out);
    for (size_t i = 0; i < k; i++)
        fprintf(out, i ? ",%lld" : "%lld", (long long)(*wbuf)[i]);
    fputs("]}", out);
    return 0;
}

static int speedscope_write(const struct model *m, const struct export_opts *o, FILE *out,
                            char *err, size_t errlen)
{
    struct calltree *t;
    int rc = export_calltree(m, o, &t);
    if (rc)
        return se_fail(err, errlen, rc, "out of memory");
    uint32_t cap = calltree_max_depth(m);
    uint32_t *frames = malloc(((size_t)cap + 1) * sizeof *frames);
    int64_t *wbuf = NULL;
    if (!frames) {
        calltree_free(t);
        return se_fail(err, errlen, -ENOMEM, "out of memory");
    }
    fputs("{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\",\"exporter\":"
          "\"sonde " SONDE_VERSION "\",\"name\":",
          out);
    export_json_str(out, o->input ? o->input : "sonde");
    fputs(",\"activeProfileIndex\":0,\"shared\":{\"frames\":[", out);
    for (uint32_t f = 0; f < t->nfuncs; f++) {
        fputs(f ? ",{\"name\":" : "{\"name\":", out);
        char label[600]; /* (a native frame's file is its module's path) */
        export_json_str(out, calltree_func_label(m, t, f, label, sizeof label));
        fputs(",\"file\":", out);
        export_json_str(out, calltree_func_file(m, t, f));
        fprintf(out, ",\"line\":%d}", f ? t->funcs[f].line : 0);
    }
    fputs("]},\"profiles\":[", out);
    int nprof = 0;
    rc = 0;
    for (uint32_t th = 1; th < m->nthreads && !rc && !o->green; th++) {
        if ((o->thread && th != o->thread) || !export_thread_in(m, o, th))
            continue;
        char label[256];
        model_thread_label(m, th, label, sizeof label);
        struct ct_filter f = { .thread = th };
        rc = put_profile(out, m, t, o, &f, label, frames, cap, &wbuf, &nprof);
    }
    /* green threads: their running and suspended samples, one profile each */
    for (uint32_t g = 1; g < m->ngreens && !rc; g++) {
        if ((o->green && g != o->green) || (o->thread && m->greens[g].thread != o->thread) ||
            (o->pid && m->greens[g].pid != o->pid))
            continue;
        char label[600];
        export_green_title(m, g, label, sizeof label);
        struct ct_filter f = { .green = g };
        rc = put_profile(out, m, t, o, &f, label, frames, cap, &wbuf, &nprof);
    }
    if (rc) {
        free(wbuf);
        free(frames);
        calltree_free(t);
        return se_fail(err, errlen, rc, "out of memory");
    }
    fputs("]}\n", out);
    free(wbuf);
    free(frames);
    calltree_free(t);
    return export_finish(out, err, errlen);
}

const struct exporter export_speedscope = {
    .name = "speedscope",
    .ext = ".speedscope.json",
    .desc = "speedscope.app (one sampled profile per thread and per task)",
    .write = speedscope_write,
};
