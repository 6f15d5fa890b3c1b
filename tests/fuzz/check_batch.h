/* What every decoder promises of the spans it keeps, checked by the fuzz
 * targets on every input: times in the span model's range, attributes that
 * a strict JSON reader takes back. A broken promise aborts (a finding). */
#ifndef SONDE_FUZZ_CHECK_BATCH_H
#define SONDE_FUZZ_CHECK_BATCH_H

#include "spans/span.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

static inline void fuzz_check_batch(const struct span_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        const struct span *s = &b->spans[i];
        if (s->start_us < 0 || s->end_us < s->start_us || s->end_us > SPAN_TIME_MAX_US) {
            fprintf(stderr, "span %zu: times %lld..%lld out of range\n", i, (long long)s->start_us,
                    (long long)s->end_us);
            abort();
        }
        json_t *a = json_loads(s->attrs, 0, NULL);
        if (!json_is_object(a)) {
            fprintf(stderr, "span %zu: attributes do not read back: %s\n", i, s->attrs);
            abort();
        }
        json_decref(a);
    }
}

#endif
