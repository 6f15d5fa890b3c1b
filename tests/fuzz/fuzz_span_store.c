/* libFuzzer target: a span store (sonde collector --db) as untrusted input.
 * Probes and opens it, lists its traces, assembles each of them and writes
 * them in every span format, as `sonde traces`, `trace` and `export` do.
 * Build line: tests/fuzz/README.md. */
#include "spans/assemble.h"
#include "store/spans.h"
#include "spans/otlp_encode.h"
#include "formats/trace_chrome.h"
#include "formats/trace_html.h"
#include "formats/trace_json.h"
#include "formats/zipkin_json.h"
#include "ui/trace_text.h"
#include "fuzz_file.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    if (!path)
        return 0;
    store_probe(path);
    struct span_store *st = NULL;
    char err[512];
    if (span_store_open(path, 0, &st, err, sizeof err))
        return 0;
    int64_t max_skew = trace_store_max_skew(st, -1);
    struct store_filter f = { .limit = 16 };
    char (*ids)[33] = NULL;
    size_t n = 0;
    if (span_store_find(st, &f, &ids, &n, err, sizeof err)) {
        span_store_free(st);
        return 0;
    }
    struct trace_view *v = calloc(n + 1, sizeof *v);
    size_t nv = 0;
    for (size_t i = 0; v && i < n; i++) {
        if (trace_load(st, ids[i], max_skew, &v[nv], err, sizeof err))
            continue;
        struct trace_view *t = &v[nv++];
        struct trace_summary s;
        trace_summarize(t, &s);
        char buf[64];
        trace_fmt_time(buf, sizeof buf, s.start_us);
        trace_fmt_dur(buf, sizeof buf, s.duration_us);
        json_decref(trace_summary_json(t));
        unsigned char *crit = malloc(t->b.n + 1);
        if (crit)
            trace_critical_path(t, crit);
        free(crit);
        for (size_t k = 0; k < t->b.n; k++)
            json_decref(trace_span_json(&t->b.spans[k]));
        int (*const enc[])(const struct span *, size_t, char **, size_t *) = { fmt_otlp_json, fmt_zipkin_json,
                                                                               fmt_chrome_trace };
        for (size_t e = 0; e < sizeof enc / sizeof enc[0]; e++) {
            char *out = NULL;
            size_t len = 0;
            if (!enc[e](t->b.spans, t->b.n, &out, &len))
                free(out);
        }
    }
    char *html = NULL;
    size_t len = 0;
    if (v && !fmt_trace_html(v, nv, &html, &len))
        free(html);
    for (size_t i = 0; v && i < nv; i++)
        trace_view_fini(&v[i]);
    free(v);
    free(ids);
    span_store_free(st);
    return 0;
}
