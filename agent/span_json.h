/* The agent's export encoding: packed spans (agent/spans.h) straight to one
 * OTLP/HTTP JSON request body, without building a span batch or a JSON tree
 * first. A span without attributes costs a few formatted writes; one with
 * attributes has them parsed once (they are checked as any input is). */
#ifndef SONDE_AGENT_SPAN_JSON_H
#define SONDE_AGENT_SPAN_JSON_H

#include <stddef.h>
#include <stdint.h>

/* A packed span's fixed header, checked (agent_span_header). */
struct span_hdr {
    uint64_t trace_hi, trace_lo, span_id, parent_id;
    int64_t start_ns, end_ns;
    uint32_t no;
    unsigned kind, status;
    const char *name, *attrs; /* inside the record */
    size_t name_len, attrs_len;
};

/* Check a packed span's header and lengths (ids, kind, status, times within
 * the span model's range, lengths that add up to len) and fill h. The
 * attributes' text is not looked at. 0 or -EINVAL. Pure. */
int agent_span_header(const void *rec, size_t len, struct span_hdr *h);

/* Encode the n packed spans recs[i] (lens[i] bytes) as one OTLP JSON
 * ExportTraceServiceRequest: one resource (service.name svc, host.name node
 * unless NULL or ""), scope "sonde", each span's attributes merged with
 * more[i] (its profile's attributes, a JSON object's text; more or more[i]
 * may be NULL; they win over the span's own) and with extra (a JSON
 * object's text or NULL; the span's own win). A malformed
 * record (header, attributes not a JSON object, name not UTF-8 is
 * replaced, not refused) is left out and counted in *bad. *body is
 * malloc'd, NUL-terminated; *nspans: the spans in it. 0 or -ENOMEM. */
int agent_spans_otlp_json(const void *const *recs, const size_t *lens, const char *const *more, size_t n,
                          const char *svc,
                          const char *node, const char *extra, char **body, size_t *len, size_t *nspans,
                          uint64_t *bad);

#endif
