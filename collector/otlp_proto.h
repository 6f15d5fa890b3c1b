/* OTLP/HTTP protobuf decoding (ExportTraceServiceRequest) and the protobuf
 * response. Generated code: collector/proto/otlp_trace.proto via protoc-c. */
#ifndef SONDE_COLLECTOR_OTLP_PROTO_H
#define SONDE_COLLECTOR_OTLP_PROTO_H

#include "spans/span.h"

#include <stdint.h>

/* Decode a protobuf ExportTraceServiceRequest into out (appending); same
 * contract as otlp_json_decode (0, -EINVAL with err filled, -ENOMEM). Nested
 * attribute values deeper than 16 levels become null. Thread-safe. */
int otlp_proto_decode(const uint8_t *buf, size_t len, struct span_batch *out, size_t max_spans,
                      char *err, size_t errlen);

/* Pack an ExportTraceServiceResponse (with partial_success when rejected > 0)
 * into a malloc'd buffer stored in *out (caller frees). Returns its length
 * (possibly 0 with *out non-NULL) or -ENOMEM. */
long otlp_proto_response(int64_t rejected, const char *msg, uint8_t **out);

#endif
