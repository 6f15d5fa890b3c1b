/* sonde's own JSON of an assembled trace: the trace summary and the spans
 * as `sonde traces --json` prints them and the HTML export embeds them. */
#ifndef SONDE_FORMATS_TRACE_JSON_H
#define SONDE_FORMATS_TRACE_JSON_H

#include "spans/assemble.h"

struct json_t;

/* {trace_id, root_name, services: [...], span_count, start_us, duration_us}
 * of v, as `sonde traces --json` and the HTML export print it; NULL when
 * out of memory. */
struct json_t *trace_summary_json(const struct trace_view *v);

/* {span_id, parent_id (null for a root), name, service, node, kind,
 * start_us, end_us (corrected), skew_us, status, attributes, profile} of s;
 * NULL when out of memory. */
struct json_t *trace_span_json(const struct span *s);

/* s's profile summary (spans/profile.h: sprof_summary_json) as a new
 * reference, or JSON null when s has none (never NULL). */
struct json_t *trace_span_profile_json(const struct span *s);


#endif
