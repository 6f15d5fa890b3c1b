/* A self-contained HTML waterfall of assembled traces (sonde export -f html
 * on a collector's span store). */
#ifndef SONDE_FORMATS_TRACE_HTML_H
#define SONDE_FORMATS_TRACE_HTML_H

#include "spans/assemble.h"

/* One HTML page: a trace list (when n > 1) and an interactive waterfall
 * (collapsible tree, one colour per service, critical path, span details on
 * click). No network references; the spans are embedded as JSON
 * ({"traces": [{trace_id, root_name, services, span_count, start_us,
 * duration_us, spans: [{span_id, parent_id, name, service, node, kind,
 * status, start_us, end_us, skew_us, depth, parent, critical,
 * attributes}]}]}, corrected times) in a <script type="application/json"
 * id="sonde-traces"> element. *out is malloc'd (caller frees). Returns 0 or
 * -ENOMEM. */
int fmt_trace_html(const struct trace_view *v, size_t n, char **out, size_t *len);

#endif
