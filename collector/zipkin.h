/* Zipkin v2 JSON decoding (POST /api/v2/spans: a JSON array of spans). */
#ifndef SONDE_COLLECTOR_ZIPKIN_H
#define SONDE_COLLECTOR_ZIPKIN_H

#include "spans/span.h"

/* Decode a Zipkin v2 JSON span list into out (appending). 64-bit trace ids
 * are widened to 128 bits with leading zeros. Node = localEndpoint ipv4,
 * else ipv6, else serviceName. Tags become attributes, annotations go to the
 * "annotations" attribute, an "error" tag sets status error. At most
 * max_spans are kept; invalid spans are counted in out->rejected. Returns 0,
 * -EINVAL for a malformed body (err filled) or -ENOMEM. Thread-safe. */
int zipkin_decode(const char *buf, size_t len, struct span_batch *out, size_t max_spans,
                  char *err, size_t errlen);

#endif
