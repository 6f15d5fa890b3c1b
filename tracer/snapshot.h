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

#include <stddef.h>
#include <sys/types.h>

struct snapshot_thread {
    struct py_thread th;
    char name[PY_NAME_MAX];
    int nframes;             /* innermost first */
    int truncated;           /* cut short: depth cap, or unreadable */
    struct py_rawframe frames[PY_MAX_DEPTH];
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

/* Release what snapshot_take allocated and detach. */
void snapshot_free(struct snapshot *s);

#endif
