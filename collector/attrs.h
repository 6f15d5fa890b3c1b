/* OTLP attribute helpers shared by the JSON and protobuf decoders. */
#ifndef SONDE_COLLECTOR_ATTRS_H
#define SONDE_COLLECTOR_ATTRS_H

#include "spans/span.h"

#include <jansson.h>

/* What a span inherits from its resource. Strings live in the batch arena. */
struct attrs_res {
    const char *service; /* service.name, "" when absent */
    const char *node;    /* host.name, else host, else service.instance.id, else service */
};

/* Convert an OTLP JSON KeyValue array into a plain JSON object
 * {key: value}. Returns a new reference (an empty object for anything that
 * is not an array); NULL only on allocation failure. */
json_t *attrs_otlp_to_object(json_t *kvlist);

/* Fill res from an OTLP JSON resource KeyValue array. Returns 0 or -ENOMEM. */
int attrs_otlp_resource(json_t *kvlist, struct span_batch *b, struct attrs_res *res);

/* Pick the node (clock domain) from resource-like attributes. Any argument
 * may be NULL or "". Returns the first non-empty of host_name, host,
 * instance, service, or "". */
const char *attrs_pick_node(const char *host_name, const char *host, const char *instance,
                            const char *service);

struct jt_doc;

/* String token i of d (unescaped) copied into the batch arena: "" when i is
 * not a string (or < 0), NULL when out of memory. */
const char *attrs_jt_str(struct span_batch *out, const struct jt_doc *d, long i);

/* Hex id token i of d (span_parse_hex_id: `digits` digits, left-padded with
 * zeros when pad is set) into out. 0, or -EINVAL for anything else. */
int attrs_jt_id(const struct jt_doc *d, long i, char *out, size_t digits, int pad);

/* Attribute JSON text written straight from json_tok tokens (OTLP JSON,
 * Zipkin). Everything written reads back with jansson's strict parser, so
 * that one odd value never blanks the other attributes of its span. */
struct jt_doc;

struct attrs_buf {
    char *p;
    size_t n, cap;
    int oom; /* set when an append failed; the text is then incomplete */
};

/* Append n bytes. */
void attrs_put(struct attrs_buf *b, const char *s, size_t n);

/* String token i as a JSON string: its escaped text, with the escapes a
 * strict reader refuses (lone surrogates, \u0000) repaired to U+FFFD. */
void attrs_put_str(struct attrs_buf *b, const struct jt_doc *d, long i);

/* The n bytes at s as a JSON integer when they are one that fits int64
 * (no leading zeros), else null. */
void attrs_put_int_text(struct attrs_buf *b, const char *s, size_t n);

/* Number token i as it was written when it reads back as an int64 or a
 * finite double, else null. */
void attrs_put_num(struct attrs_buf *b, const struct jt_doc *d, long i);

/* Any token subtree i (a value of a json_tok doc) re-emitted so that it
 * reads back: strings and numbers as above, JT_DEEP as null. Recursion is
 * bounded by the doc's max_depth. */
void attrs_put_value(struct attrs_buf *b, const struct jt_doc *d, long i);

#endif
