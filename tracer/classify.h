/* Thread-state classification: which of idle, gil, gil_wait and nogil
 * (common/state.h) a thread was in at one tick, from the evidence the
 * sampler gathered for it. Pure functions of that evidence plus a small
 * per-thread carry (error diffusion), so that every rule is unit-tested
 * (tests/unit/test_classify.c). Called on the sampling thread only; they
 * allocate nothing and read no file.
 *
 * The caller gathers lazily, in this order, what the rules need:
 *   1. the GIL view, the previous state and the interval's deltas (always);
 *   2. the syscall line, if classify_wants_syscall;
 *   3. the kernel-stack class, if classify_wants_kstack. */
#ifndef SONDE_CLASSIFY_H
#define SONDE_CLASSIFY_H

#include "tracer/proc/task.h"

#include <stdint.h>
#include <sys/types.h>

/* What the rest of the process says about the GIL at this tick. */
struct gil_view {
    int nthreads;       /* Python threads in the process */
    pid_t holder;       /* thread holding the GIL now, 0 if none */
    int switched;       /* the interpreter's switch counter moved since the last tick */
    uint64_t lo, hi;    /* the GIL's address range (futex waits inside it are GIL waits) */
};

struct classify_evidence {
    int holds_gil;        /* the interpreter names this thread the GIL holder */
    int did_not_run;      /* not put on a CPU and no CPU used since its previous sample */
    int last_state;       /* its state at the previous sample, -1 none */
    int64_t dcpu, ddelay; /* ns on a CPU and queued for one over the interval */
    int64_t wall;         /* ns since its previous sample */
    struct gil_view gil;
    struct proc_syscall sys; /* if classify_wants_syscall (else kind UNKNOWN) */
    int kstack;              /* PROC_KSTACK_*, if classify_wants_kstack (else UNKNOWN) */
};

/* Error-diffusion credits of one thread, carried from tick to tick (zero at
 * first): they turn the interval's on-CPU/run-queue split into states whose
 * totals are unbiased. */
struct classify_carry {
    double run;     /* running: on CPU (nogil) against queued (idle) */
    double holder;  /* GIL holder: on CPU against off it */
    int64_t queued; /* ns of a wait in the run queue already counted idle,
                       which the kernel adds to ddelay when the thread runs */
};

/* Is the syscall line needed? (Not for a thread that did not run while
 * idle or waiting: it still is.) */
int classify_wants_syscall(const struct classify_evidence *e);
/* Is the kernel-stack class needed? (Only for a runnable non-holder.) */
int classify_wants_kstack(const struct classify_evidence *e);

/* The thread's state (enum sample_state). Updates c->run when it splits a
 * runnable thread by the interval's deltas, and c->queued. */
int classify_state(const struct classify_evidence *e, struct classify_carry *c);

/* For a thread in STATE_GIL: was the holder off its CPU (asleep in a
 * system call other than a wait on the GIL itself, stopped, or runnable
 * but queued)? Updates c->holder for a runnable holder. */
int classify_holder_off_cpu(const struct classify_evidence *e, struct classify_carry *c);

/* Is a thread in a GIL handoff (see classify.c)? Exposed for tests. */
int classify_in_gil_handoff(int last_state, const struct gil_view *g);

#endif
