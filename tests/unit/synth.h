/* Synthetic but realistic .sonde recordings for the exporters' tests and
 * benchmarks, written through profiler/store.h like a recorder would. */
#ifndef SONDE_SYNTH_H
#define SONDE_SYNTH_H

#include <stddef.h>

enum synth_kind {
    SYNTH_RECURSIVE, /* one thread: <module> -> main -> f -> f -> ... -> f, plus g and leaf */
    SYNTH_THREADS,   /* MainThread idle in join, two workers alternating gil/gil_wait/nogil,
                        some samples without Python frames, spans on one worker */
    SYNTH_BIG,       /* nsamples over 4 threads, ~2000 distinct stacks up to depth 40 */
};

/* Write a recording of that kind at path (replaced). nsamples is used by
 * SYNTH_BIG only. 0 or a negative code with a message in err. */
int synth_write(const char *path, enum synth_kind kind, size_t nsamples, char *err,
                size_t errlen);

#endif
