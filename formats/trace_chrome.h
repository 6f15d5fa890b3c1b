/* Chrome trace-event JSON (chrome://tracing, Perfetto) of a trace's spans. */
#ifndef SONDE_FORMATS_TRACE_CHROME_H
#define SONDE_FORMATS_TRACE_CHROME_H

#include "spans/span.h"

/* Encode spans as {"traceEvents": [...], "displayTimeUnit": "ms"}: one
 * complete event ("ph": "X", ts/dur in µs, corrected) per span, one process
 * per node and one thread per service, named with metadata events; args
 * carry span_id, parent_id, kind, status, skew_us and the attributes.
 * *out is malloc'd (caller frees). Returns 0 or -ENOMEM. Thread-safe. */
int fmt_chrome_trace(const struct span *spans, size_t n, char **out, size_t *len);

#endif
