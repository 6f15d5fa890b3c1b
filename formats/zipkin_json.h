/* Zipkin v2 JSON encoding of spans (what POST /api/v2/spans accepts). */
#ifndef SONDE_FORMATS_ZIPKIN_JSON_H
#define SONDE_FORMATS_ZIPKIN_JSON_H

#include "spans/span.h"

/* Encode n spans as a Zipkin v2 JSON array: corrected timestamp / duration
 * in µs, kind in upper case (absent for internal spans), localEndpoint
 * serviceName (+ ipv4 when the node is an IPv4 address), attributes as
 * string tags, "error" tag for error status. *out is malloc'd (caller
 * frees). Returns 0 or -ENOMEM. Thread-safe. */
int fmt_zipkin_json(const struct span *spans, size_t n, char **out, size_t *len);

#endif
