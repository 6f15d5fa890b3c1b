/* Helpers the collector's decoders (OTLP JSON, OTLP protobuf, Zipkin) share
 * to fill a span_batch from a request: rejection counting, the per-request
 * span limit, time and id conversions, attributes as JSON. They are about
 * reading a protocol, not about the trace model, so they live here rather
 * than in spans/. */
#include "collector/decode.h"

#include "spans/profile.h"

#include <jansson.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int span_batch_reject(struct span_batch *b, const char *why)
{
    b->rejected++;
    snprintf(b->reject_msg, sizeof b->reject_msg, "%s", why);
    return 0;
}

struct span *span_batch_take(struct span_batch *b, size_t max_spans, int *rc)
{
    *rc = 0;
    if (b->n >= max_spans) {
        span_batch_reject(b, "too many spans in one request");
        return NULL;
    }
    struct span *sp = span_batch_add(b);
    if (!sp)
        *rc = -ENOMEM;
    return sp;
}

void span_hex(char *out, const uint8_t *in, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[in[i] >> 4];
        out[2 * i + 1] = hx[in[i] & 15];
    }
    out[2 * n] = 0;
}

int span_set_attrs_json(struct span_batch *b, struct span *sp, json_t *attrs)
{
    if (!attrs)
        return -ENOMEM;
    char *txt = json_dumps(attrs, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(attrs);
    if (!txt)
        return -ENOMEM;
    sp->attrs = span_batch_strdup(b, txt, (size_t)-1);
    free(txt);
    return sp->attrs ? 0 : -ENOMEM;
}

int span_times_check(int64_t start_us, int64_t *end_us)
{
    if (start_us < 0 || start_us > SPAN_TIME_MAX_US || *end_us < 0 || *end_us > SPAN_TIME_MAX_US)
        return -ERANGE;
    if (*end_us < start_us)
        *end_us = start_us;
    return 0;
}

int span_time_from_ns(uint64_t ns, int64_t *us)
{
    if (ns / 1000 > (uint64_t)SPAN_TIME_MAX_US)
        return -ERANGE;
    *us = (int64_t)(ns / 1000);
    return 0;
}

#define PPROF_KEY "sonde.profile.pprof"

int span_batch_profiles(struct span_batch *b)
{
    size_t w = 0;
    for (size_t i = 0; i < b->n; i++) {
        struct span *sp = &b->spans[i];
        b->spans[w] = *sp;
        sp = &b->spans[w];
        if (!strstr(sp->attrs, "\"" PPROF_KEY "\"")) {
            w++;
            continue;
        }
        json_t *a = json_loads(sp->attrs, 0, NULL);
        if (!a)
            return -ENOMEM; /* the decoders wrote it: it parses */
        json_t *v = json_object_get(a, PPROF_KEY);
        if (!v) { /* the text was in a value or a nested key: no profile */
            json_decref(a);
            w++;
            continue;
        }
        char why[200] = "";
        unsigned char *raw = NULL;
        size_t rawlen = 0;
        int rc = 0;
        if (!json_is_string(v)) {
            snprintf(why, sizeof why, "span %s: %s is not a string", sp->span_id, PPROF_KEY);
        } else if ((rc = sprof_unb64(json_string_value(v), json_string_length(v), &raw, &rawlen))) {
            if (rc == -ENOMEM) {
                json_decref(a);
                return rc;
            }
            snprintf(why, sizeof why, "span %s: %s is not base64", sp->span_id, PPROF_KEY);
        } else {
            struct sprof p;
            char e[160];
            rc = sprof_decode(raw, rawlen, sp->trace_id, sp->span_id, (sp->end_us - sp->start_us) * 1000, &p, e,
                              sizeof e);
            sprof_fini(&p);
            if (rc == -ENOMEM) {
                free(raw);
                json_decref(a);
                return rc;
            }
            if (rc)
                snprintf(why, sizeof why, "span %s: %s", sp->span_id, e);
        }
        if (*why) {
            free(raw);
            json_decref(a);
            span_batch_reject(b, why);
            continue;
        }
        sp->pprof = span_batch_memdup(b, raw, rawlen);
        sp->pprof_len = rawlen;
        free(raw);
        json_object_del(a, PPROF_KEY);
        if (!sp->pprof || span_set_attrs_json(b, sp, a))
            return -ENOMEM;
        w++;
    }
    b->n = w;
    return 0;
}
