/* The sampling loop: reads every thread of one or more CPython processes at a
 * fixed rate, without pausing them, and hands records to a consumer in
 * batches through a bounded queue (common/squeue.h). The loop allocates
 * nothing in steady state: batches come from a preallocated pool, and code
 * objects are resolved through the runtime's cache (a miss reads the target
 * once).
 *
 * Threads and lifetimes:
 *  - The sampling thread is whichever thread calls sampler_run. It alone
 *    touches the targets, the code caches and the batch it fills.
 *  - Any thread may call sampler_get_stats at any time between sampler_new
 *    and sampler_free (it copies a snapshot published under a lock at the
 *    end of every tick).
 *  - sampler_gil_switches reads the targets: call it on the sampling thread,
 *    or after sampler_run returned.
 *  - Records hold `const struct py_code *` pointers into the sampler's code
 *    caches. The sampler owns them: they stay valid, and their name,
 *    qualname, file and firstlineno never change, until sampler_free. A
 *    consumer reads only those four fields (the rest is the sampling
 *    thread's). So the consumer must be done with every batch (squeue_pop
 *    returned NULL, e.g. recorder_finish or live_free returned) before
 *    sampler_free; a batch handed over by squeue_push is visible whole to the
 *    consumer that pops it. */
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

enum rec_kind { REC_SAMPLE = 1, REC_THREAD, REC_GIL, REC_PROCESS, REC_GREEN, REC_THREAD_END };

struct rec_hdr {
    uint16_t kind;
    uint16_t size;     /* whole record, bytes, 8-aligned */
};

struct nat_sym;

/* A frame as resolved on the sampling path: the cached code object (never
 * freed while the sampler lives; NULL if unreadable) and the line; or, with
 * native set (sampler_opts.native), a native frame: its symbol (owned by
 * the sampler's unwinder, valid as long as the code objects, with the same
 * rule: a consumer reads only its function, file, line, module and
 * func_offset), line unused. */
struct rec_frame {
    union {
        const struct py_code *code;
        const struct nat_sym *nat;
    };
    int32_t line;
    union {
        int32_t pad;    /* its former name: writers that zero it make Python frames */
        int32_t native; /* 1: nat is set */
    };
};

struct rec_sample {
    struct rec_hdr h;
    uint8_t state;     /* enum sample_state (common/state.h) */
    uint8_t flags;     /* enum sample_flag (common/state.h) */
    uint16_t nframes;  /* innermost first */
    int32_t pid, tid;
    int64_t ts, cpu_ns, wall_ns;
    uint32_t green;    /* the green thread running on the thread (a REC_GREEN
                          id), 0 = none; with SAMPLE_SUSPENDED in flags, the
                          suspended green thread this sample is of */
    union {
        uint32_t span; /* the span current on the thread or green thread (sampler_opts.span_of), 0 = none */
        uint32_t pad;  /* its former name: writers that zero it set no span */
    };
    struct rec_frame frames[];
};

/* A green thread (asyncio task, greenlet) first seen, renamed, moved to
 * another OS thread, or ended. ids are the sampler's, unique for the run
 * (a new object at a dead one's address gets a new id). */
struct rec_green {
    struct rec_hdr h;
    int32_t pid, tid;  /* tid: the OS thread running its loop / hub, 0 = not known */
    uint32_t id;
    uint8_t kind;      /* enum green_kind (common/state.h) */
    uint8_t ended;     /* it is gone since ts */
    uint16_t pad;
    uint64_t addr;     /* the object's address in the target */
    int64_t ts;
    char name[64];
    char func[64];     /* its coroutine / run function's qualified name, or "" */
};

struct rec_thread {
    struct rec_hdr h;
    int32_t pid, tid;
    uint64_t ident;
    char name[64];
};

/* A thread sampled before is gone (not in the thread list at ts). Best
 * effort: dropped like any record when the consumer is behind. */
struct rec_thread_end {
    struct rec_hdr h;
    int32_t pid, tid;
    int64_t ts;
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

struct sampler_stats {
    uint64_t ticks, samples, errors, dropped, late_ticks, processes;
    uint64_t truncated;      /* samples whose stack was deeper than PY_MAX_DEPTH */
    /* errors by kind (they sum to errors): a stack that changed while it
     * was read (its frame chain broke, or a frame was unreadable); a thread
     * whose state could not be placed (no id, or no slot left); a thread
     * list or thread names unreadable (the target changing them); other
     * (sonde out of memory) */
    uint64_t err_stack, err_thread, err_list, err_names, err_other;
    int64_t start_unix_ns;
    int64_t duration_ns;     /* so far; the whole run once sampler_run returned */
    int64_t start_mono_ns;   /* CLOCK_MONOTONIC at the start */
    double cpu_s;            /* the sampling thread's CPU time in the loop */
    double process_cpu_s;    /* all of sonde's meanwhile (the writer too) */
    char sched[48];          /* how the sampling thread is scheduled */
    /* green threads (asyncio tasks): full reads of the task registries,
     * their CPU time, lanes created, and torn or unreadable entries */
    uint64_t green_scans, green_lanes, green_errors;
    int64_t green_scan_ns;
    /* samples that carry no span because a task or greenlet switch raced
     * their stack read (their stack may be either one's): not errors, the
     * samples are kept */
    uint64_t span_races;
    /* samples of a thread whose running task was switched out between the
     * read of the loop's running task and the stack read (the walk did not
     * meet the task's coroutine); of those, the ones that took the chain
     * where the task awaits at the check (it is suspended then: the
     * sample stays the task's), the ones whose task ran at the check and
     * whose stack read again held it, the others are charged to the
     * thread, not to a task */
    uint64_t green_races, green_races_chain, green_races_again;
    uint64_t walk_retries;   /* stacks read again because the first read was torn */
    /* samples of a thread whose greenlet switched (or named one) between
     * the drain of its switches and the stack read: the stack may be
     * either greenlet's; kept with the one that ran at the drain */
    uint64_t greenlet_races;
    /* of those, the samples whose stack was their greenlet's (it ends at the
     * root of the stack where the greenlet parked at its first switch after
     * the drain: the hook gives that frame), and those that took the parked
     * stack instead (the walk read the next greenlet's) */
    uint64_t greenlet_kept, greenlet_parked;
    uint64_t greenlet_lost, greenlet_drains; /* switches lost (ring full); reads between ticks */
    /* --native: threads stopped and unwound, those that could not be
     * stopped (ended, not traceable, slow to stop: sampled with Python
     * frames only), native stacks cut short, and how long threads stood
     * stopped (the longest, and the sum over native_samples) */
    uint64_t native_samples, native_failed, native_truncated;
    int64_t native_hold_max_ns, native_hold_sum_ns;
    char stop_reason[256];   /* why a target stopped being followed early
                                ("" when none): it executed a program sonde
                                cannot read */
};

struct sampler_opts {
    int rate_hz;             /* 1 .. 10000 */
    double duration_s;       /* 0: until the targets exit or stop is set */
    int subprocesses;        /* follow children of the targets */
    int tasks;               /* read asyncio tasks as green threads (tracer/green.c) */
    pid_t launched;          /* pid sonde launched (reaped by the caller), or 0 */
    pid_t wrapper;           /* with subprocesses: a launched command that is not
                                Python itself (a shell, make), 0 = none: its
                                descendants are followed too, and the loop goes on
                                while it runs even when no target is left */
    volatile sig_atomic_t *stop; /* set to stop: by a signal handler, or by
                                another thread with __atomic_store_n */
    int wakeable;            /* sleep between ticks on a condition variable that
                                sampler_wake signals (for a sampling thread that
                                blocks signals: the agent's), rather than in
                                clock_nanosleep, which a signal interrupts */
    int64_t duty_ns;         /* > 0: sample only in the even duty_ns-long windows of
                                CLOCK_MONOTONIC (scripts/bench measures the
                                target's speed in the odd ones against them) */
    /* Called on the sampling thread about every 250 ms, and once more with
     * final = 1 when the loop ends, with the current figures (NULL: none).
     * It must not call the sampler. */
    void (*progress)(const struct sampler_stats *st, int final, void *ctx);
    void *progress_ctx;
    /* In-process mode (agent/): the CPU, in ns, of the sampling process's
     * own threads that are not the program's (the agent's), taken out of
     * the process's CPU before the CPU no sample carried is computed.
     * Called on the sampling thread. NULL: none. */
    int64_t (*own_cpu_ns)(void *ctx);
    void *own_cpu_ctx;
    /* In-process mode: the span current on thread tid, or in the green
     * thread (asyncio task, greenlet) whose object is at green (0: the
     * thread's own), recorded in each sample (rec_sample.span; 0 = none).
     * Called on the sampling thread for every sample, suspended green
     * threads' too: it must not block nor allocate. NULL: samples carry
     * no span. */
    uint32_t (*span_of)(pid_t tid, uint64_t green, void *ctx);
    void *span_ctx;
    /* Native frames (out-of-process only: tracer/native/nsample.h gives
     * the hooks; NULL: Python frames only). Each thread that ran since its
     * previous sample is stopped for an instant while its registers, the
     * top of its stack and its Python stack are read; its native stack is
     * unwound once it runs again. native_all keeps the interpreter's own
     * frames. */
    const struct sampler_native *native;
    int native_all;
};

struct py_runtime;
struct py_thread;

/* The hooks of native sampling (tracer/native/nsample.c), apart so that
 * the agent's build of the sampler links without ptrace and libdwfl. */
struct sampler_native {
    /* Native state for the target whose runtime is rt; NULL with a message
     * in err when its modules cannot be read. */
    void *(*open)(struct py_runtime *rt, char *err, size_t errlen);
    void (*close)(void *st);
    /* Stop thread th, read its Python stack into raw (at most rawmax;
     * *nraw, *rawtrunc as py_stack_read) and its native stack, and merge:
     * out (at most outmax) gets the stack innermost first, native frames
     * with native = 1, Python frames with code NULL and line the index of
     * their raw frame; *nattrunc set when the native stack was cut short,
     * *hold_ns to how long the thread stood stopped. Returns the count, or
     * a negative code when the thread could not be stopped (raw is then
     * left to the caller). Re-reads the maps (modules mapped or unmapped)
     * at most once a second. */
    int (*walk)(void *st, struct py_runtime *rt, const struct py_thread *th, int all,
                struct py_rawframe *raw, int rawmax, int *nraw, int *rawtrunc,
                struct rec_frame *out, int outmax, int *nattrunc, int64_t *hold_ns);
    /* Once per tick, whether or not any thread is walked: let go of the
     * threads that reached their stop after walk gave up on them (a thread
     * that stopped late uses no CPU, so it may never be walked again). */
    void (*tick)(void *st);
};


struct sampler;

/* With o.wakeable: end the sampling thread's current sleep at once, so that
 * sampler_run sees *o.stop (set it first) now rather than at its next tick.
 * Any thread, while s exists; a no-op without o.wakeable. */
void sampler_wake(struct sampler *s);

/* Create a sampler over pid (already a live Python process) that fills q
 * (the caller owns q and frees it after the sampler and its consumer). */
int sampler_new(struct sampler **out, pid_t pid, const struct sampler_opts *o,
                struct sample_queue *q, char *err, size_t errlen);
/* Free the sampler, its targets and its code caches: only once sampler_run
 * returned (or never ran) and the queue's consumer is done (see above). */
void sampler_free(struct sampler *s);

/* Run the loop until the duration ends, every target exits or *stop is set.
 * The calling thread becomes the sampling thread. Closes the queue when done.
 * Returns 0 or a negative code. */
int sampler_run(struct sampler *s);

/* A snapshot of the figures as of the last tick (any thread). */
void sampler_get_stats(struct sampler *s, struct sampler_stats *st);

/* GIL switches counted by the targets' interpreters since they were attached
 * (reads the live targets; call before sampler_free). */
uint64_t sampler_gil_switches(const struct sampler *s);

#endif
