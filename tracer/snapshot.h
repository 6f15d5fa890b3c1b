/* tracer: one snapshot of every thread's Python stack in a live process,
 * for `sonde dump`: attach, read the thread list (again, should it be torn
 * by threads ending meanwhile), walk every stack, read the names. The
 * process is never paused: the stacks are read as close together in time
 * as the reads allow, names after. Single-threaded use; the snapshot owns
 * its runtime, whose code cache resolves the frames (py_code_get,
 * py_code_line) until snapshot_free. */
#ifndef SONDE_SNAPSHOT_H
#define SONDE_SNAPSHOT_H

#include "tracer/cpython/frames.h"
#include "tracer/cpython/runtime.h"
#include "tracer/cpython/tasks.h"
#include "tracer/cpython/threads.h"
#include "tracer/native/unwind.h"

#include <stddef.h>
#include <sys/types.h>

struct snapshot_thread {
    struct py_thread th;
    char name[PY_NAME_MAX];
    int nframes;             /* innermost first */
    int truncated;           /* cut short: depth cap, or unreadable */
    struct py_rawframe frames[PY_MAX_DEPTH];
    /* after snapshot_native: */
    int native_rc;             /* 0, or why the thread could not be stopped (SE_*) */
    int nnative;               /* native frames, innermost first */
    int native_truncated;      /* NAT_TRUNC_* */
    int64_t pause_ns;          /* from the interrupt to the resume (nat_capture) */
    int64_t hold_ns;           /* from seeing it stopped to the resume: the pause */
    struct nat_frame *native;  /* NAT_MAX_DEPTH of them, owned */
};

struct snapshot {
    struct py_runtime rt;            /* attached (valid after a failure too, for snapshot_free) */
    int nthreads;
    struct snapshot_thread *threads; /* nthreads, the oldest (main) thread first */
    struct py_thread *list;          /* scratch: room for list_cap threads */
    int list_cap;
    int ntasks;                      /* after snapshot_tasks: */
    struct py_task *tasks;           /* asyncio tasks; a running one's frames are the
                                        top of its thread's stack (innermost first) */
    struct py_tasks_stats task_stats;
    struct nat_unwinder *nat;        /* after snapshot_native: names the native frames */
    void (*nat_free)(struct nat_unwinder *);
};

/* Take a snapshot of process pid. 0, or a negative code (SE_NOPROC,
 * SE_PERM, SE_NOTPYTHON, SE_UNSUPPORTED, SE_EXITED, -ENOMEM, ...) with a
 * one-line message in err (left as it was for -ENOMEM). Call snapshot_free
 * in both cases. */
int snapshot_take(struct snapshot *s, pid_t pid, char *err, size_t errlen);

/* Read the asyncio tasks of the process of a snapshot just taken (none
 * when asyncio.tasks is not imported). 0, or SE_EXITED / SE_PERM (the
 * process went away), -ENOMEM, SE_FAULT (a registry stayed unreadable over
 * a few tries) with a one-line message in err. Tasks whose memory is torn
 * are skipped and counted in task_stats.bad, not an error. */
int snapshot_tasks(struct snapshot *s, char *err, size_t errlen);

/* Read every thread's native stack (ptrace, tracer/native/): stop one
 * thread at a time for an instant, read its registers, the top of its stack
 * and again its Python stack (so that the two agree), resume it, then
 * unwind. A thread that cannot be stopped keeps its Python stack and gets
 * native_rc; that is not an error. 0, or -ENOMEM, SE_EXITED, SE_PERM (no
 * thread could be stopped) with a one-line message in err. Every thread
 * runs again when this returns. */
int snapshot_native(struct snapshot *s, char *err, size_t errlen);

/* Release what snapshot_take allocated and detach. */
void snapshot_free(struct snapshot *s);

#endif
