/* The recorder: consumes the sampler's batches on its own thread, interns
 * strings, frames and stacks, and writes them to a .sonde file in one
 * transaction per batch (so a killed recording loses at most one batch). */
#ifndef SONDE_RECORDER_H
#define SONDE_RECORDER_H

#include "tracer/sampler.h"

#include <sqlite3.h>

struct recorder;

/* Start the writer thread over db (owned by the recorder from now on) and
 * queue q; first writes what is known at the start (st0's start times,
 * rate_hz). When a write fails, the writer sets *stop (if stop is not
 * NULL) so that the sampler ends. 0 or a negative code. */
int recorder_start(struct recorder **out, sqlite3 *db, struct sample_queue *q,
                   const struct sampler_stats *st0, int rate_hz, volatile sig_atomic_t *stop,
                   char *err, size_t errlen);

/* What the agent learns from the writer (agent/profiles.c), called on the
 * writer thread: sample for every thread sample that carries a span (its
 * frames' code objects readable for the duration of the call), batch_done
 * after each batch with the newest sample time written so far (ns since
 * the recording started). Neither may block for long. */
struct recorder_hook {
    void (*sample)(void *ctx, const struct rec_sample *s);
    void (*batch_done)(void *ctx, int64_t last_ts);
    void *ctx;
};

/* recorder_start, with hook (copied; NULL: none) called by the writer. */
int recorder_start_with(struct recorder **out, sqlite3 *db, struct sample_queue *q,
                        const struct sampler_stats *st0, int rate_hz, volatile sig_atomic_t *stop,
                        const struct recorder_hook *hook, char *err, size_t errlen);

/* Wait until the queue is closed and drained, write the final meta rows
 * (stats, gil switches), finish and close the file. Frees r. Returns 0 or a
 * negative code (a write failed: the message is in err). */
int recorder_finish(struct recorder *r, const struct sampler_stats *st, uint64_t gil_switches,
                    int rate_hz, char *err, size_t errlen);

#endif
