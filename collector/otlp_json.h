/* OTLP/HTTP JSON decoding (ExportTraceServiceRequest, ids in hex). */
#ifndef SONDE_COLLECTOR_OTLP_JSON_H
#define SONDE_COLLECTOR_OTLP_JSON_H

#include "spans/span.h"

/* Decode len bytes of an ExportTraceServiceRequest in OTLP JSON into out
 * (appending). At most max_spans spans are kept; spans beyond that or with
 * invalid ids are counted in out->rejected. Never reads past buf+len; any
 * input is safe. Returns 0, -EINVAL for a malformed body (err filled) or
 * -ENOMEM. Thread-safe (no shared state). */
int otlp_json_decode(const char *buf, size_t len, struct span_batch *out, size_t max_spans,
                     char *err, size_t errlen);

#endif
