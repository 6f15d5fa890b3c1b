/* libFuzzer target: the OTLP JSON decoder.
 * clang -fsanitize=fuzzer,address -I. -Ibuild/collector tests/fuzz/fuzz_otlp_json.c ... (see tests/fuzz/README.md) */
#include "collector/otlp_json.h"

#include "check_batch.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct span_batch b;
    span_batch_init(&b);
    char err[256];
    otlp_json_decode((const char *)data, size, &b, 1000, err, sizeof err);
    fuzz_check_batch(&b);
    span_batch_fini(&b);
    return 0;
}
