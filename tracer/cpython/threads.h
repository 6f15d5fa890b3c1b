/* The threads of a CPython process: thread states, OS thread ids, GIL holder
 * and Python thread names. */
#ifndef SONDE_PY_THREADS_H
#define SONDE_PY_THREADS_H

#include "tracer/cpython/frames.h"
#include "tracer/cpython/runtime.h"

#include <sys/types.h>

#define PY_MAX_THREADS 4096
#define PY_NAME_MAX 64

struct py_thread {
    uint64_t tstate;
    uint64_t interp;
    uint64_t ident;     /* threading.get_ident(): the pthread_t */
    pid_t tid;          /* OS thread id, 0 when unknown */
    int holds_gil;
    uint8_t ts[PY_TSBUF]; /* the thread state's first bytes, for py_stack_read */
};

/* Read every thread of every interpreter (at most max), with OS thread ids
 * and GIL ownership. Returns the count or a negative code. Allocates
 * nothing once the pthread tid offset is known (first call, < 3.11). */
int py_threads_read(struct py_runtime *rt, struct py_thread *out, int max);

/* Like py_threads_read, but a list that breaks partway (a thread state
 * freed while it was read: the threads after it would be missing) is an
 * error rather than the threads before the break: for a one-shot reader
 * that can read again. */
int py_threads_read_whole(struct py_runtime *rt, struct py_thread *out, int max);

/* What the sampler remembers between ticks so that a tick reads every
 * thread state, the GIL and the interpreter links in one system call. */
struct py_snapcache {
    int valid, n;
    uint64_t interp, gil;
    uint64_t tstate[PY_MAX_THREADS];
    uint64_t ident[PY_MAX_THREADS];
    pid_t tid[PY_MAX_THREADS];
};

/* Like py_threads_read, and also the GIL switch counter; reads everything
 * in one scattered read while the thread list is unchanged since the last
 * call (checked link by link), and falls back to walking it otherwise.
 * c must be zeroed before the first call. */
int py_threads_snapshot(struct py_runtime *rt, struct py_snapcache *c, struct py_thread *out,
                        int max, uint64_t *switches);

/* Does the thread state at th->tstate still belong to th's thread? Its
 * pthread id (and OS thread id where the layout has one) read again now: a
 * thread state freed and reused for a new thread since th was read (a
 * thread per request ends and another starts) belongs to another. 0 when
 * it does not, or its state cannot be read; 1 when it does, or when
 * nothing tells (no OS id in the state, and none readable in the pthread
 * struct). */
int py_thread_still(struct py_runtime *rt, const struct py_thread *th);
/* The same, reading the thread state's first PY_TSBUF bytes into ts in the
 * one read (for py_stack_read's tsbuf: a read fewer where every read
 * lengthens a pause). */
int py_thread_still_ts(struct py_runtime *rt, const struct py_thread *th, uint8_t *ts);

/* Is the GIL of interp held, and by which thread state (0 if free)? */
int py_gil_holder(struct py_runtime *rt, uint64_t interp, uint64_t *holder);

/* The interpreter's own count of GIL switches (gil->switch_number). */
int py_gil_switches(struct py_runtime *rt, uint64_t interp, uint64_t *switches);

/* Address range [*lo, *hi) of interp's GIL structure (futex waits inside it
 * are GIL waits). */
int py_gil_range(struct py_runtime *rt, uint64_t interp, uint64_t *lo, uint64_t *hi);

/* Python thread names from threading's registry: names[i] receives the name
 * of threads[i] ("" when not registered). Slow path: call rarely. */
int py_thread_names(struct py_runtime *rt, const struct py_thread *threads, int n,
                    char (*names)[PY_NAME_MAX]);

#endif
