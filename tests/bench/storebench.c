/* Writer-side micro benchmark: span_store_insert alone, no HTTP. Spans look
 * like loadgen's (10 per trace, 2 attributes, one service); trace ids are
 * either grouped per sender (as loadgen's) or random.
 * usage: storebench DB TOTAL_SPANS BATCH [random] */
#include "store/spans.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng = 88172645463325252ULL;
static uint64_t xr(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: storebench DB TOTAL_SPANS BATCH [random]\n");
        return 2;
    }
    size_t total = strtoul(argv[2], NULL, 10), batch = strtoul(argv[3], NULL, 10);
    int random_ids = argc > 4 && !strcmp(argv[4], "random");
    char err[256];
    struct span_store *st;
    char side[4096];
    remove(argv[1]);
    snprintf(side, sizeof side, "%s-wal", argv[1]);
    remove(side);
    snprintf(side, sizeof side, "%s-shm", argv[1]);
    remove(side);
    if (span_store_open(argv[1], STORE_CREATE, &st, err, sizeof err)) {
        fprintf(stderr, "storebench: %s\n", err);
        return 1;
    }
    static const char *names[50];
    for (int i = 0; i < 50; i++) {
        char b[64];
        snprintf(b, sizeof b, "GET /api/item/%d", i);
        names[i] = strdup(b);
    }
    struct span *sp = calloc(batch, sizeof *sp);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t t0 = (int64_t)ts.tv_sec * 1000000;
    double t = now(), worst = 0;
    size_t stored = 0;
    uint64_t seq = 0;
    for (size_t done = 0; done < total; done += batch) {
        for (size_t i = 0; i < batch; i++) {
            struct span *s = &sp[i];
            uint64_t hi = random_ids ? xr() : (seq % 8) + 1, lo = random_ids ? xr() : (seq << 4) | (i / 10);
            if (random_ids && i % 10) {
                memcpy(s->trace_id, sp[i - i % 10].trace_id, 33);
            } else {
                snprintf(s->trace_id, sizeof s->trace_id, "%016llx%016llx", (unsigned long long)hi,
                         (unsigned long long)lo);
            }
            snprintf(s->span_id, sizeof s->span_id, "%016llx",
                     (unsigned long long)((seq << 12) | i | 1ULL << 63));
            s->parent_id[0] = 0;
            s->name = names[i % 50];
            s->service = "bench";
            s->node = "bench-host";
            s->attrs = "{\"http.method\":\"GET\",\"http.status_code\":200}";
            s->kind = i % 5 ? 1 : 2;
            s->status = 1;
            s->start_us = t0 + (int64_t)(done + i);
            s->end_us = s->start_us + 500;
        }
        seq++;
        size_t ins = 0;
        double b0 = now();
        if (span_store_insert(st, sp, batch, t0, &ins, err, sizeof err)) {
            fprintf(stderr, "storebench: %s\n", err);
            return 1;
        }
        double bt = now() - b0;
        worst = bt > worst ? bt : worst;
        stored += ins;
    }
    double el = now() - t;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    printf("stored=%zu seconds=%.2f us_per_span=%.2f cpu_us_per_span=%.2f spans_per_s=%.0f worst_batch_ms=%.1f\n",
           stored, el, el * 1e6 / (double)stored, cpu * 1e6 / (double)stored, (double)stored / el, worst * 1e3);
    span_store_free(st);
    return 0;
}
