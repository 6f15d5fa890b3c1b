/* Live aggregation for `sonde top`: a consumer of the sampler's queue
 * (tracer/sampler.h) that keeps cumulative counters in memory (no SQLite):
 * per thread (samples, wall, CPU, time per GIL state), and the call tree of
 * profiler/calltree.h grown sample by sample (struct ct_grow, costs by
 * lane and node: profiler/calltree.h's ct_lane, thread and green thread),
 * and per green thread (asyncio task: samples, wall and CPU while running,
 * samples and wall while suspended), from which a snapshot reads the flat profile (self and
 * total wall, CPU and GIL-held time per function) with calltree_flat, as
 * report and the exports do. A function is a code object's qualified name +
 * file + first line; totals count a function once per sample however deep
 * it recurses. Counters are cumulative since the start
 * (or the last live_reset).
 *
 * Threads that end (REC_THREAD_END, or no sample for LIVE_STALE_NS while
 * others are sampled) stay listed, marked ended, for LIVE_ENDED_KEEP_NS of
 * sampler time; then their counters go to one "ended threads" sum and
 * their call-tree costs to one lane (LIVE_ENDED_ID), so memory follows the
 * threads alive, not every thread a thread-per-request server ever ran.
 * Ended green threads leave the same way, LIVE_ENDED_KEEP_NS after their
 * end: out of the list, their call-tree costs folded into their OS
 * thread's (running samples) or left to no view (suspended ones), so every
 * thread view keeps its totals; a green id seen again is a new one. */
#ifndef SONDE_LIVE_H
#define SONDE_LIVE_H

#include "profiler/query.h"
#include "tracer/sampler.h"

#include <stddef.h>
#include <stdint.h>

struct live;

struct live_header {
    int pid;                 /* first process seen, 0 until then */
    char cmd[448];
    char version[32];
    uint64_t samples;        /* since start or reset */
    uint64_t ticks, gil_held_ticks, gil_contended_ticks;
    int64_t first_ts, last_ts; /* sampler ns timestamps of the counted span */
    int64_t cpu_ns;          /* CPU time summed over every thread */
    int done;                /* the queue was closed: sampling has ended */
    int oom;                 /* memory ran out: some samples or frames are not counted */
    uint64_t ended_threads;  /* threads ended and dropped from the list (their sums: live_snap.ended) */
    size_t cells;            /* call-tree cost cells held (memory: bounded by the threads alive) */
    size_t greens;           /* green threads held, ended ones not yet dropped included */
};

/* The live thread id standing for every thread dropped after it ended. */
#define LIVE_ENDED_ID UINT32_C(0x7fffffff)
#define LIVE_ENDED_KEEP_NS INT64_C(3000000000)
#define LIVE_STALE_NS INT64_C(5000000000)

struct live_thread {
    uint32_t id;             /* live's id, never reused (1-based, < LIVE_ENDED_ID) */
    int pid, tid;
    int ended;               /* gone since ended_ts (sampler ns): dropped LIVE_ENDED_KEEP_NS later */
    int64_t ended_ts, last_ts; /* last_ts: its last sample (or when it was first seen) */
    char name[64];
    uint64_t samples;
    int64_t wall_ns, cpu_ns;
    int64_t state_ns[STATE_COUNT];
};

struct live_green {
    uint32_t id;             /* the sampler's green thread id (rec_green.id) */
    uint32_t thread;         /* live thread id of the OS thread running it, 0 = not known */
    int kind;                /* enum green_kind */
    int ended;               /* gone since ended_ts (sampler ns): dropped LIVE_ENDED_KEEP_NS later */
    int64_t ended_ts;
    char name[64], func[64]; /* from the target: escape before printing */
    uint64_t samples;        /* while it was the one running on its thread */
    int64_t wall_ns, cpu_ns; /* while running */
    uint64_t susp_samples;   /* suspended samples */
    int64_t susp_wall_ns;
};

struct live_func {
    const char *name, *file; /* owned by the live aggregator (valid until live_free);
                                a native function's file is where it stands,
                                "libfoo.so+0x1a2b", its name "??" without a symbol */
    int line;                /* first line of the function (-1: native) */
    int native;              /* 1: a native function (a --native sampler's frames) */
    int64_t self[Q_METRICS], total[Q_METRICS]; /* ns */
};

/* A copy of the counters, taken under the aggregator's lock. Arrays are
 * reused from call to call; free them with live_snap_fini. */
struct live_snap {
    struct live_header h;
    struct live_thread *threads; size_t nthreads, capthreads; /* by id */
    struct live_thread ended;    /* the sums of the threads dropped (id LIVE_ENDED_ID) */
    struct live_func *funcs;     size_t nfuncs, capfuncs;
    /* green threads not ended, by (thread, func, id) */
    struct live_green *greens;   size_t ngreens, capgreens;
    int64_t metric_total[Q_METRICS]; /* over the selected thread(s) or green thread */
};

/* Start consuming q on a new thread. q must outlive the aggregator; the
 * producer closes it (sampler_run does) to end consumption.
 * 0 or a negative code with a message in err. */
int live_new(struct live **out, struct sample_queue *q, char *err, size_t errlen);

/* Wait for the consumer thread to drain the (closed) queue, then free
 * everything. live_free(NULL) is a no-op. */
void live_free(struct live *l);

/* Snapshot the counters; functions of thread = a live thread id (or
 * LIVE_ENDED_ID: the threads dropped), or 0 for
 * every thread (then functions sum over threads; suspended green threads'
 * samples are in neither), or if green is nonzero of that green thread
 * alone (its samples while running and while suspended: where it waits).
 * Thread-safe against the consumer. 0 or -ENOMEM. */
int live_snapshot(struct live *l, uint32_t thread, uint32_t green, struct live_snap *s);
void live_snap_fini(struct live_snap *s);

/* Zero every counter (threads and functions stay known; the count of
 * threads dropped restarts). Thread-safe. */
void live_reset(struct live *l);

#endif
