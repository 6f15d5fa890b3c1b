/* OTLP JSON encoding of spans (an ExportTraceServiceRequest / TracesData). */
#ifndef SONDE_FORMATS_OTLP_JSON_H
#define SONDE_FORMATS_OTLP_JSON_H

#include "collector/span.h"

/* Encode n spans as OTLP JSON, one resourceSpans per (service, node) with
 * service.name and host.name resource attributes; times are corrected
 * (start_us + skew_us) and a nonzero skew is kept as the sonde.skew_us
 * attribute. *out is malloc'd (caller frees), *len its length. Returns 0 or
 * -ENOMEM. Thread-safe. */
int fmt_otlp_json(const struct span *spans, size_t n, char **out, size_t *len);

#endif
