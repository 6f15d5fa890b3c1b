/* libFuzzer target: the OTLP protobuf decoder.
 * clang -fsanitize=fuzzer,address -I. -Ibuild/collector tests/fuzz/fuzz_otlp_proto.c ... (see tests/fuzz/README.md) */
#include "collector/otlp_proto.h"

#include "check_batch.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct span_batch b;
    span_batch_init(&b);
    char err[256];
    otlp_proto_decode(data, size, &b, 1000, err, sizeof err);
    fuzz_check_batch(&b);
    span_batch_fini(&b);
    return 0;
}
