/* tracer: a one-shot snapshot of every thread's stack (see
 * tracer/snapshot.h). */
#include "tracer/snapshot.h"

#include "common/err.h"
#include "tracer/proc/task.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int snapshot_take(struct snapshot *s, pid_t pid, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    int rc = py_runtime_attach(&s->rt, pid, err, errlen);
    if (rc)
        return rc;
    s->list_cap = 256;
    s->list = malloc(sizeof *s->list * (size_t)s->list_cap);
    if (!s->list)
        return -ENOMEM;
    int n = py_threads_read_whole(&s->rt, s->list, s->list_cap);
    /* A thread list read while threads end or the interpreter finalizes can
     * point at freed memory, at its head or partway: read again a few
     * times; a process that is exiting meanwhile is reported as such. */
    for (int tries = 0; n == SE_FAULT && tries < 5; tries++) {
        usleep(2000);
        n = py_threads_read_whole(&s->rt, s->list, s->list_cap);
    }
    if (n == SE_FAULT && py_process_dying(pid))
        n = SE_EXITED;
    if (n < 0)
        return se_fail(err, errlen, n, "cannot read the threads of process %d: %s", (int)pid,
                       n == SE_EXITED ? "it exited" : se_str(n));
    s->threads = calloc((size_t)(n ? n : 1), sizeof *s->threads);
    char (*names)[PY_NAME_MAX] = calloc((size_t)(n ? n : 1), sizeof *names);
    if (!s->threads || !names) {
        free(names);
        return -ENOMEM;
    }
    /* Stacks first, as close together in time as we can; names after. */
    for (int i = 0; i < n; i++) {
        struct snapshot_thread *d = &s->threads[i];
        d->th = s->list[n - 1 - i]; /* oldest (main) thread first */
        int k = py_stack_read(&s->rt, d->th.tstate, d->th.ts, d->frames, PY_MAX_DEPTH,
                              &d->truncated);
        /* a torn read (a generator's frame read after it yielded, a frame
         * freed): read again, fresh, a few times at most; a read that
         * fails leaves the frames read so far */
        for (int r = 0; r < PY_STACK_RETRIES && k >= 0 && d->truncated == PY_TRUNC_BROKEN; r++) {
            static __thread struct py_rawframe again[PY_MAX_DEPTH];
            int t2 = 0;
            if (!py_thread_still(&s->rt, &d->th))
                break; /* its state is another thread's now */
            int k2 = py_stack_read(&s->rt, d->th.tstate, NULL, again, PY_MAX_DEPTH, &t2);
            if (k2 < 0) {
                if (k2 == SE_EXITED || k2 == SE_PERM)
                    k = k2;
                break;
            }
            memcpy(d->frames, again, (size_t)k2 * sizeof *again);
            k = k2;
            d->truncated = t2;
        }
        if (k == SE_EXITED || k == SE_PERM) {
            free(names);
            return se_fail(err, errlen, k, "process %d exited while being read", (int)pid);
        }
        d->nframes = k < 0 ? 0 : k;
        d->truncated |= k < 0;
    }
    s->nthreads = n;
    for (int i = 0; i < n; i++)
        s->list[i] = s->threads[i].th;
    py_thread_names(&s->rt, s->list, n, names);
    for (int i = 0; i < n; i++) {
        memcpy(s->threads[i].name, names[i], PY_NAME_MAX);
        /* a thread Python did not start (an embedding host's), or every
         * thread of a program that never imported threading: its OS name */
        if (!names[i][0])
            proc_task_comm(pid, s->threads[i].th.tid, s->threads[i].name, PY_NAME_MAX);
    }
    free(names);
    return 0;
}

int snapshot_tasks(struct snapshot *s, char *err, size_t errlen)
{
    struct py_tasks c;
    int cap = 1024, n = 0;
    pid_t pid = s->rt.pid;
    memset(&c, 0, sizeof c);
    /* A registry read while it is resized (tasks coming and going) or
     * while the interpreter finalizes can fail: find and read again. */
    for (int tries = 0; tries < 8; tries++) {
        n = py_tasks_find(&s->rt, &c);
        if ((n == 0 && !c.found) || n == SE_UNSUPPORTED)
            return 0; /* asyncio not imported, or a version whose tasks are not read
                         (2.7 has no asyncio; a 3.6 without the
                         _asyncio module's symbol table) */
        if (n == 0) {
            if (!s->tasks)
                s->tasks = malloc(sizeof *s->tasks * (size_t)cap);
            if (!s->tasks)
                return -ENOMEM;
            n = py_tasks_read(&s->rt, &c, s->list, s->nthreads, s->tasks, cap, &s->task_stats);
            if (n >= 0 && s->task_stats.dropped && cap < (1 << 20)) {
                free(s->tasks); /* more tasks than room: read again with room */
                s->tasks = NULL;
                cap = (s->task_stats.read + s->task_stats.dropped) * 2;
                tries--;
                continue;
            }
        }
        if (n >= 0 || n == SE_EXITED || n == SE_PERM || n == SE_UNSUPPORTED || n == -ENOMEM)
            break;
        usleep(2000);
    }
    if (n == SE_FAULT && py_process_dying(pid))
        n = SE_EXITED;
    if (n < 0)
        return se_fail(err, errlen, n, "cannot read the asyncio tasks of process %d: %s",
                       (int)pid, n == SE_EXITED || n == SE_PERM ? "it exited" : se_str(n));
    s->ntasks = n;
    /* A running task's frames: the top of its thread's stack, read a moment
     * before, down to its coroutine's frame. */
    for (int i = 0; i < n; i++) {
        struct py_task *t = &s->tasks[i];
        if (!t->running || t->thread < 0 || t->thread >= s->nthreads)
            continue;
        const struct snapshot_thread *d = &s->threads[t->thread];
        int k = py_task_running_depth(t, d->frames, d->nframes);
        if (k > PY_TASK_FRAMES) {
            k = PY_TASK_FRAMES;
            t->truncated = PY_TRUNC_DEPTH;
        }
        memcpy(t->frames, d->frames, sizeof *t->frames * (size_t)k);
        t->nframes = k;
    }
    return 0;
}

void snapshot_free(struct snapshot *s)
{
    for (int i = 0; s->threads && i < s->nthreads; i++)
        free(s->threads[i].native);
    if (s->nat_free)
        s->nat_free(s->nat);
    s->nat = NULL;
    free(s->tasks);
    s->tasks = NULL;
    s->ntasks = 0;
    free(s->threads);
    free(s->list);
    s->threads = NULL;
    s->list = NULL;
    s->nthreads = 0;
    py_runtime_fini(&s->rt);
}
