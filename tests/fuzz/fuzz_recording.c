/* libFuzzer target: a .sonde recording as untrusted input. Loads it
 * (model_load), runs the queries of `sonde report` and writes every export
 * format, so that any byte reaching any reader is exercised.
 * Build line: tests/fuzz/README.md. */
#include "formats/export.h"
#include "fuzz_file.h"
#include "profiler/model.h"
#include "profiler/query.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    struct model *m = NULL;
    char err[512];
    if (!path || model_load(path, &m, err, sizeof err))
        return 0;
    struct q_thread *th = NULL;
    size_t nth = 0;
    if (!query_threads(m, &th, &nth))
        free(th);
    for (int k = 0; k < Q_METRICS; k++) {
        struct q_func *fn = NULL;
        size_t nfn = 0;
        if (!query_functions(m, NULL, (enum q_metric)k, k == Q_GIL, &fn, &nfn))
            free(fn);
    }
    struct q_gil g;
    query_gil(m, &g);
    FILE *out = fopen("/dev/null", "w");
    for (size_t i = 0; out && export_formats[i]; i++) {
        struct export_opts o = { .mode = i % 2 ? EXPORT_CPU : EXPORT_WALL, .input = path };
        export_formats[i]->write(m, &o, out, err, sizeof err);
    }
    if (out)
        fclose(out);
    model_free(m);
    return 0;
}
