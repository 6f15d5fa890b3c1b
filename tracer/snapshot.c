/* tracer: a one-shot snapshot of every thread's stack (see
 * tracer/snapshot.h). */
#include "tracer/snapshot.h"

#include "common/err.h"

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
    for (int i = 0; i < n; i++)
        memcpy(s->threads[i].name, names[i], PY_NAME_MAX);
    free(names);
    return 0;
}

void snapshot_free(struct snapshot *s)
{
    free(s->threads);
    free(s->list);
    s->threads = NULL;
    s->list = NULL;
    s->nthreads = 0;
    py_runtime_fini(&s->rt);
}
