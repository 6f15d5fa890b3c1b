/* Exporters: write a recording (the profiler's model, profiler/model.h) or
 * traces from a collector's span store in a format another tool reads. This
 * header is the one registry of both kinds: one module per format in
 * formats/, each exporting one const vtable (declared below); export_find
 * and span_export_find pick one by name. Exporters only read their input;
 * they never print to stderr nor exit. */
#ifndef SONDE_EXPORT_H
#define SONDE_EXPORT_H

#include "common/state.h"
#include "profiler/calltree.h"
#include "profiler/model.h"

#include <stdint.h>
#include <stdio.h>

enum export_mode {
    EXPORT_WALL = 0, /* weight samples by the wall time they stand for */
    EXPORT_CPU = 1,  /* weight samples by the CPU time the thread used */
    EXPORT_GIL = 2,  /* weight samples by their wall time with the GIL held
                      * (samples in any other state weigh nothing) */
};

struct export_opts {
    enum export_mode mode;
    uint32_t thread;    /* model thread id to export, 0 = every thread */
    uint32_t green;     /* model green thread id to export (its running and
                           suspended samples), 0 = the threads' samples */
    int32_t pid;        /* process to export, 0 = every process */
    int part;           /* callgrind: part number for per-thread files, 0 = none */
    const char *input;  /* the recording's path, for headers (may be NULL) */
};

struct exporter {
    const char *name;   /* -f NAME */
    const char *ext;    /* default output name: input minus ".sonde" plus ext */
    const char *desc;   /* one line for --help */
    /* Write m to out. 0, or a negative code with a message in err (I/O
     * errors are -EIO). Does not close out. */
    int (*write)(const struct model *m, const struct export_opts *o, FILE *out, char *err,
                 size_t errlen);
};

extern const struct exporter export_callgrind, export_chrome, export_html, export_speedscope,
    export_flamegraph, export_collapsed, export_pprof;

/* Every exporter, NULL-terminated. */
extern const struct exporter *const export_formats[];

/* The exporter called name, or NULL. */
const struct exporter *export_find(const char *name);

/* Span exporters: assembled traces (spans/assemble.h) of a span store,
 * for sonde export on a store and sonde trace --format. */
struct trace_view;
struct span_exporter {
    const char *name;   /* -f NAME */
    const char *ext;    /* default output name: input minus ".sonde" plus ext */
    const char *desc;   /* one line for --help */
    int page;           /* a page of its own for many traces (html): not for sonde trace --format */
    /* Encode the n traces v (times corrected for clock skew) into a
     * malloc'd buffer (*out, *len; the caller frees). 0, or -ENOMEM. */
    int (*encode)(const struct trace_view *v, size_t n, char **out, size_t *len);
};

extern const struct span_exporter span_export_chrome, span_export_html, span_export_otlp,
    span_export_zipkin;

/* Every span exporter, NULL-terminated, by name. */
extern const struct span_exporter *const span_export_formats[];

/* The span exporter called name, or NULL. */
const struct span_exporter *span_export_find(const char *name);

/* When the time a sample stands for began (ns since the recording
 * started): ts minus its wall time, and never before the recording began
 * (the first sample of a thread stands for one period before it). */
static inline int64_t export_sample_start(const struct m_sample *s)
{
    int64_t a = s->ts - (s->wall_ns > 0 ? s->wall_ns : 0);
    return a > 0 ? a : 0;
}

/* The call tree filter of the options (profiler/calltree.h). */
static inline struct ct_filter export_filter(const struct export_opts *o)
{
    return (struct ct_filter){ .thread = o->thread, .green = o->green, .pid = o->pid };
}

/* Does sample s (of m->samples or m->gsamples) pass the options' thread,
 * green thread and process filters? */
static inline int export_selected(const struct model *m, const struct export_opts *o,
                                  const struct m_sample *s)
{
    return (o->thread == 0 || s->thread == o->thread) && (o->green == 0 || s->green == o->green) &&
           (o->pid == 0 || (s->thread < m->nthreads && m->threads[s->thread].pid == o->pid));
}

/* Is thread th (a model thread id) in the options' process (every one when
 * o->pid is 0)? */
static inline int export_thread_in(const struct model *m, const struct export_opts *o, uint32_t th)
{
    return o->pid == 0 || (th < m->nthreads && m->threads[th].pid == o->pid);
}

/* The samples a filter selects in time order: m->samples, merged with
 * m->gsamples (suspended green threads) when the filter names a green
 * thread (on equal ts a thread's sample comes first). Zero-initialise with
 * export_iter_init; read with export_iter_next. */
struct export_iter {
    const struct model *m;
    struct ct_filter f;
    size_t i, j;         /* next index in m->samples, m->gsamples */
};

static inline void export_iter_init(struct export_iter *it, const struct model *m,
                                    const struct ct_filter *f)
{
    *it = (struct export_iter){ .m = m, .f = *f };
}

/* The next selected sample, or NULL at the end. */
const struct m_sample *export_iter_next(struct export_iter *it);

/* Is sample s a suspended green thread's (one of m->gsamples)? */
static inline int export_suspended(const struct m_sample *s)
{
    return (s->flags & SAMPLE_SUSPENDED) != 0;
}

/* The green threads whose lane is on thread th (m_green.thread), with at
 * least one sample, in id order, into a malloc'd array (*out, *n; NULL
 * and 0 when there is none). 0 or -ENOMEM. */
int export_thread_greens(const struct model *m, uint32_t th, uint32_t **out, size_t *n);

/* "task NAME (function) on THREAD" for green thread g. */
void export_green_title(const struct model *m, uint32_t g, char *out, size_t outlen);

/* The call tree of the samples o selects, weighed. 0 or -ENOMEM; free
 * with calltree_free. */
static inline int export_calltree(const struct model *m, const struct export_opts *o,
                                  struct calltree **out)
{
    struct ct_filter f = export_filter(o);
    return calltree_new(m, &f, out);
}

/* A cost in ns under the options' mode. */
static inline int64_t export_cost(const struct export_opts *o, const struct ct_cost *c)
{
    return o->mode == EXPORT_CPU ? c->cpu_ns : o->mode == EXPORT_GIL ? c->gil_ns : c->wall_ns;
}

/* The sample's weight in nanoseconds under the options' mode. */
static inline int64_t export_weight(const struct export_opts *o, const struct m_sample *s)
{
    int64_t w = o->mode == EXPORT_CPU ? s->cpu_ns
                : o->mode == EXPORT_GIL && s->state != STATE_GIL ? 0
                : s->wall_ns;
    return w > 0 ? w : 0;
}

/* Write s as a JSON string literal (with quotes). '<', '>' and '&' are
 * escaped too, so the output can sit inside an HTML <script>. */
void export_json_str(FILE *f, const char *s);

/* Write s escaped for XML text and attribute values, its controls shown
 * escaped first (common/textesc.h). */
void export_xml_str(FILE *f, const char *s);

/* Finish writing: flush out and turn a stream error into -EIO + message. */
int export_finish(FILE *out, char *err, size_t errlen);

#endif
