/* The span exporters' half of the registry in formats/export.h: the trace
 * encoders (OTLP JSON, Zipkin v2 JSON, Chrome trace events, HTML waterfall)
 * behind one signature, assembled traces in, one buffer out. */
#include "formats/export.h"

#include "spans/assemble.h"
#include "spans/otlp_encode.h"
#include "formats/trace_chrome.h"
#include "formats/trace_html.h"
#include "formats/zipkin_json.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The flat encoders take one array: every trace's spans, in order. */
static int encode_flat(int (*enc)(const struct span *, size_t, char **, size_t *), const struct trace_view *v,
                       size_t n, char **out, size_t *len)
{
    size_t total = 0, k = 0;
    for (size_t i = 0; i < n; i++)
        total += v[i].b.n;
    struct span *all = malloc((total + 1) * sizeof *all);
    if (!all)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < v[i].b.n; j++)
            all[k++] = v[i].b.spans[j];
    int rc = enc(all, k, out, len);
    free(all);
    return rc;
}

static int enc_chrome(const struct trace_view *v, size_t n, char **out, size_t *len)
{
    return encode_flat(fmt_chrome_trace, v, n, out, len);
}

static int enc_otlp(const struct trace_view *v, size_t n, char **out, size_t *len)
{
    return encode_flat(fmt_otlp_json, v, n, out, len);
}

static int enc_zipkin(const struct trace_view *v, size_t n, char **out, size_t *len)
{
    return encode_flat(fmt_zipkin_json, v, n, out, len);
}

const struct span_exporter span_export_chrome = {
    "chrome", ".chrome.json", "Chrome trace events (one process per node, one thread per service)", 0,
    enc_chrome,
};
const struct span_exporter span_export_html = {
    "html", ".html", "one page: a trace list and an interactive waterfall", 1, fmt_trace_html,
};
const struct span_exporter span_export_otlp = {
    "otlp", ".otlp.json", "OTLP JSON (accepted back by a collector)", 0, enc_otlp,
};
const struct span_exporter span_export_zipkin = {
    "zipkin", ".zipkin.json", "Zipkin v2 JSON (accepted back by a collector)", 0, enc_zipkin,
};

const struct span_exporter *const span_export_formats[] = {
    &span_export_chrome, &span_export_html, &span_export_otlp, &span_export_zipkin, NULL,
};

const struct span_exporter *span_export_find(const char *name)
{
    for (size_t i = 0; span_export_formats[i]; i++)
        if (!strcmp(span_export_formats[i]->name, name))
            return span_export_formats[i];
    return NULL;
}
