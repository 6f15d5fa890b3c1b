/* OTLP attribute helpers shared by the JSON and protobuf decoders. */
#ifndef SONDE_COLLECTOR_ATTRS_H
#define SONDE_COLLECTOR_ATTRS_H

#include "collector/span.h"

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

#endif
