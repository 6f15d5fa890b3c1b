/* Exporters: write a recording (the profiler's model, profiler/model.h) in a
 * format another tool reads. One module per format in formats/, each
 * exporting one const vtable (declared below); export_find picks one by name.
 * Exporters only read the model; they never print to stderr nor exit. */
#ifndef SONDE_EXPORT_H
#define SONDE_EXPORT_H

#include "profiler/calltree.h"
#include "profiler/model.h"

#include <stdint.h>
#include <stdio.h>

enum export_mode {
    EXPORT_WALL = 0, /* weight samples by the wall time they stand for */
    EXPORT_CPU = 1,  /* weight samples by the CPU time the thread used */
};

struct export_opts {
    enum export_mode mode;
    uint32_t thread;    /* model thread id to export, 0 = every thread */
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

/* Does sample s pass the options' thread filter? */
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
    return (struct ct_filter){ .thread = o->thread };
}

static inline int export_selected(const struct export_opts *o, const struct m_sample *s)
{
    return o->thread == 0 || s->thread == o->thread;
}

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
    return o->mode == EXPORT_CPU ? c->cpu_ns : c->wall_ns;
}

/* The sample's weight in nanoseconds under the options' mode. */
static inline int64_t export_weight(const struct export_opts *o, const struct m_sample *s)
{
    int64_t w = o->mode == EXPORT_CPU ? s->cpu_ns : s->wall_ns;
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
