/* Decoder helpers shared by the collector's protocol decoders (see
 * decode.c). */
#ifndef SONDE_COLLECTOR_DECODE_H
#define SONDE_COLLECTOR_DECODE_H

#include "spans/span.h"

/* Check a decoded span's start and end (µs): 0 when both lie in the valid
 * range (an end before the start is raised to the start), -ERANGE when
 * either does not. */
int span_times_check(int64_t start_us, int64_t *end_us);

/* Nanoseconds (unsigned, as OTLP sends them) to µs: 0, or -ERANGE when
 * beyond SPAN_TIME_MAX_US. */
int span_time_from_ns(uint64_t ns, int64_t *us);

struct json_t;

/* Set sp->attrs to the compact JSON text of attrs (copied into the batch
 * arena) and release attrs. 0 or -ENOMEM (also when attrs is NULL). */
int span_set_attrs_json(struct span_batch *b, struct span *sp, struct json_t *attrs);

/* Count one span of the request as rejected, with the reason reported in
 * the protocol's partial-success answer. Returns 0, so that a decoder can
 * `return span_batch_reject(...)` and go on with the next span. */
int span_batch_reject(struct span_batch *b, const char *why);

/* A slot for the next accepted span: NULL with *rc = 0 when the request
 * already holds max_spans (the span is rejected), NULL with *rc = -ENOMEM
 * when out of memory. */
struct span *span_batch_take(struct span_batch *b, size_t max_spans, int *rc);

/* The span profiles a batch carries (the agent's attribute
 * sonde.profile.pprof: base64 of a gzipped pprof, spans/profile.h): each is
 * taken out of the span's attributes, checked as hostile input against its
 * span (sprof_decode: its ids, its duration) and attached to the span
 * (span.pprof, in the batch arena); a span whose profile fails the check is
 * rejected whole (counted, with the reason, as the decoders' rejections
 * are). 0 or -ENOMEM. */
int span_batch_profiles(struct span_batch *b);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void span_hex(char *out, const uint8_t *in, size_t n);

#endif
