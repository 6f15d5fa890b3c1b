/* OTLP JSON encoding of spans (an ExportTraceServiceRequest / TracesData).
 * Part of the trace model rather than of formats/: OTLP JSON is the form in
 * which spans leave sonde over the wire as well as in files, and both the
 * collector's forwarder and the `sonde traces` / export path encode with it;
 * collector/ and formats/ must not depend on each other, so the one encoder
 * lives below both. (The decoders stay in collector/: they read requests.) */
#ifndef SONDE_SPANS_OTLP_ENCODE_H
#define SONDE_SPANS_OTLP_ENCODE_H

#include "spans/span.h"

/* Encode n spans as OTLP JSON, one resourceSpans per (service, node) with
 * service.name and host.name resource attributes; times are corrected
 * (start_us + skew_us) and a nonzero skew is kept as the sonde.skew_us
 * attribute; a span's profile (span.pprof) is the sonde.profile.pprof
 * attribute, base64 of its gzipped pprof as it was received (so a span
 * forwarded or exported keeps it). *out is malloc'd (caller frees), *len its length. Returns 0 or
 * -ENOMEM. Thread-safe. */
int fmt_otlp_json(const struct span *spans, size_t n, char **out, size_t *len);

#endif
