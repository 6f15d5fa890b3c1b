/* The sampling loop: reads every thread of one or more CPython processes at a
 * fixed rate, without pausing them, and hands records to a consumer in
 * batches through a bounded queue. The loop allocates nothing in steady
 * state: batches come from a preallocated pool, and code objects are
 * resolved through the runtime's cache (a miss reads the target once). */
#ifndef SONDE_SAMPLER_H
#define SONDE_SAMPLER_H

#include "common/squeue.h"
#include "tracer/cpython/frames.h"

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- records ---- */

enum rec_kind { REC_SAMPLE = 1, REC_THREAD, REC_GIL, REC_PROCESS };

struct rec_hdr {
    uint16_t kind;
    uint16_t size;     /* whole record, bytes, 8-aligned */
};

/* A frame as resolved on the sampling path: the cached code object (never
 * freed while the sampler lives; NULL if unreadable) and the line. */
struct rec_frame {
    const struct py_code *code;
    int32_t line;
    int32_t pad;
};

struct rec_sample {
    struct rec_hdr h;
    uint8_t state;     /* enum sample_state (common/state.h) */
    uint8_t flags;     /* enum sample_flag (common/state.h) */
    uint16_t nframes;  /* innermost first */
    int32_t pid, tid;
    int64_t ts, cpu_ns, wall_ns;
    struct rec_frame frames[];
};

struct rec_thread {
    struct rec_hdr h;
    int32_t pid, tid;
    uint64_t ident;
    char name[64];
};

struct rec_gil {
    struct rec_hdr h;
    int32_t pid, holder_tid;
    int64_t ts;
    uint64_t switches;
    uint32_t waiters;
    uint32_t pad;
};

struct rec_process {
    struct rec_hdr h;
    int32_t pid, ppid;
    int64_t ts;
    char version[32];
    char cmd[448];
};

/* ---- the sampler ---- */

struct sampler_opts {
    int rate_hz;             /* 1 .. 10000 */
    double duration_s;       /* 0: until the targets exit or stop is set */
    int subprocesses;        /* follow children of the targets */
    pid_t launched;          /* pid sonde launched (reaped by the caller), or 0 */
    volatile sig_atomic_t *stop; /* set by a signal handler to stop */
    int progress_fd;         /* >= 0: write a live progress line there */
    int64_t duty_ns;         /* > 0: sample only in the even duty_ns-long windows of
                                CLOCK_MONOTONIC (scripts/bench measures the
                                target's speed in the odd ones against them) */
};

struct sampler_stats {
    uint64_t ticks, samples, errors, dropped, late_ticks, processes;
    uint64_t truncated;      /* samples whose stack was deeper than PY_MAX_DEPTH */
    int64_t start_unix_ns, duration_ns;
    int64_t start_mono_ns;   /* CLOCK_MONOTONIC at the start */
    double cpu_s;            /* the sampling thread's CPU time in the loop */
    double process_cpu_s;    /* all of sonde's meanwhile (the writer too) */
    char sched[48];          /* how the sampling thread is scheduled */
    char stop_reason[256];   /* why a target stopped being followed early
                                ("" when none): it executed a program sonde
                                cannot read */
};

struct sampler;

/* Create a sampler over pid (already a live Python process). */
int sampler_new(struct sampler **out, pid_t pid, const struct sampler_opts *o,
                struct sample_queue *q, char *err, size_t errlen);
void sampler_free(struct sampler *s);

/* Run the loop until the duration ends, every target exits or *stop is set.
 * Closes the queue when done. Returns 0 or a negative code. */
int sampler_run(struct sampler *s);

void sampler_get_stats(const struct sampler *s, struct sampler_stats *st);

/* GIL switches counted by the targets' interpreters since they were attached
 * (reads the live targets; call before sampler_free). */
uint64_t sampler_gil_switches(const struct sampler *s);

#endif
