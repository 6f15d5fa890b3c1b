/* Trace assembly (the trace model, spans/): merge the halves of shared
 * spans and spans reported in parts, build the tree, and correct clock skew
 * between nodes. Pure algorithm: loading from a store is the span store's
 * job (trace_load), JSON output formats/trace_json's, text ui/trace_text's. */
#ifndef SONDE_SPANS_ASSEMBLE_H
#define SONDE_SPANS_ASSEMBLE_H

#include "spans/span.h"

/* An assembled trace. spans are in waterfall order: depth first, siblings by
 * corrected start; depth[i] is the nesting level (roots 0). A span whose
 * parent never arrived is a root. Corrected times: start_us + skew_us. */
struct trace_view {
    struct span_batch b; /* b.spans / b.n: the spans, owning their strings */
    int *depth;
    long *parent;        /* parent[i]: index of span i's parent, -1 for a root */
    size_t nroots;
    int64_t start_us, end_us; /* corrected extent */
    struct trace_node_skew {
        const char *node; /* in b's arena */
        int64_t skew_us;
    } *nodes;              /* every node of the trace (incl. shared server halves) */
    size_t nnodes;
};

/* Assemble the spans of one trace. raw is consumed (left empty, its strings
 * move into out). max_skew_us bounds a per-node correction: a larger one is
 * not applied (as Jaeger does). Rules:
 *  - same span id, one CLIENT and one SERVER (Zipkin shared span): one span
 *    with the client's timing, parent and node, the server's name (if any)
 *    and service, kind server, attributes of both; the server half's node
 *    offset is computed from the pair;
 *  - same span id and same side: merged (earliest start, latest end,
 *    first non-empty name / parent, attributes of both);
 *  - a child on another node than its parent that falls outside the parent
 *    is centred in it: that node's offset (per trace) is
 *    parent_start' + (parent_dur - child_dur)/2 - child_start, and applies
 *    to every span of that node in the trace; recorded in skew_us.
 * Input times are clamped into the span model's valid range first and
 * max_skew_us into [0, SPAN_TIME_MAX_US]; a span's skew_us never moves it
 * out of that range, so start_us + skew_us (and the trace's extent) always
 * lie in it. Returns 0 or -ENOMEM. Pure function of its input; thread-safe. */
int trace_assemble(struct span_batch *raw, int64_t max_skew_us, struct trace_view *out);

/* Release; a zeroed view is fine. */
void trace_view_fini(struct trace_view *v);

/* The collector's default bound on clock-skew corrections (10 min). */
#define TRACE_MAX_SKEW_DEFAULT_US 600000000

/* One line of `sonde traces`. services: comma-separated, sorted. */
struct trace_summary {
    char trace_id[33];
    char root_name[128];
    char services[256];
    size_t span_count;
    int64_t start_us, duration_us;
};

void trace_summarize(const struct trace_view *v, struct trace_summary *s);

/* The distinct non-empty services of v, sorted, into out (room for v->b.n
 * entries; the strings are v's). Returns how many. */
size_t trace_services(const struct trace_view *v, const char **out);

/* Critical path: from the root that ends last, follow at each span the
 * child that ends last (corrected times). crit[i] = 1 on that chain, 0
 * elsewhere (room for v->b.n). */
void trace_critical_path(const struct trace_view *v, unsigned char *crit);
#endif
