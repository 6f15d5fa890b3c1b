/* Helpers the collector's decoders (OTLP JSON, OTLP protobuf, Zipkin) share
 * to fill a span_batch from a request: rejection counting, the per-request
 * span limit, time and id conversions, attributes as JSON. They are about
 * reading a protocol, not about the trace model, so they live here rather
 * than in spans/. */
#include "collector/decode.h"

#include <jansson.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

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
