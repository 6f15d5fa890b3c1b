/* snapshot_native (tracer/snapshot.h): a snapshot's native stacks. Apart
 * from snapshot.c because the agent builds snapshot.c without ptrace and
 * libdwfl. */
#include "tracer/snapshot.h"

#include "common/err.h"
#include "tracer/cpython/threads.h"
#include "tracer/native/ptstop.h"
#include "tracer/native/unwind.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct reread {
    struct py_runtime *rt;
    struct snapshot_thread *d;
    struct nat_unwinder *u;
    struct nat_capture *c;
};

/* While the thread is stopped: its Python stack at the same instant as the
 * native one (a failed read keeps the stack read before), and whether the
 * module its pc is in is the one the unwinder has. */
static int reread_python(void *arg)
{
    struct reread *r = arg;
    nat_check_pc(r->u, r->c);
    uint8_t ts[PY_TSBUF];
    if (!py_thread_still_ts(r->rt, &r->d->th, ts))
        return SE_EXITED; /* its state freed and another thread's now */
    int trunc = 0;
    r->rt->held = 1;
    int k = py_stack_read(r->rt, r->d->th.tstate, ts, r->d->frames, PY_MAX_DEPTH, &trunc);
    r->rt->held = 0;
    if (k >= 0) {
        r->d->nframes = k;
        r->d->truncated = trunc;
    }
    /* tests/e2e/test_native.py: hold the thread stopped this long, to kill
     * sonde (or the target) while it is */
    const char *hold = getenv("SONDE_TEST_NATIVE_HOLD_MS");
    if (hold && atoi(hold) > 0)
        usleep((useconds_t)atoi(hold) * 1000);
    return 0;
}

int snapshot_native(struct snapshot *s, char *err, size_t errlen)
{
    pid_t pid = s->rt.pid;
    s->nat = nat_unwinder_new(pid, s->rt.binary, err, errlen);
    s->nat_free = nat_unwinder_free;
    if (!s->nat)
        return py_process_dying(pid) ? SE_EXITED : SE_FAULT;
    struct nat_capture *c = malloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    c->copy_want = 0; /* all of NAT_STACK_COPY: one stack per thread */
    int ok = 0, perm = 0;
    char e[256];
    for (int i = 0; i < s->nthreads; i++) {
        struct snapshot_thread *d = &s->threads[i];
        d->native = malloc(sizeof *d->native * NAT_MAX_DEPTH);
        if (!d->native) {
            free(c);
            return -ENOMEM;
        }
        if (d->th.tid <= 0) {
            d->native_rc = SE_FAULT;
            continue;
        }
        struct reread r = { &s->rt, d, s->nat, c };
        int rc = nat_capture(pid, d->th.tid, c, reread_python, &r, e, sizeof e);
        d->pause_ns = c->pause_ns;
        d->hold_ns = c->hold_ns;
        d->native_rc = rc;
        if (rc) {
            perm += rc == SE_PERM;
            if (rc == SE_PERM)
                snprintf(err, errlen, "%s", e);
            continue;
        }
        ok++;
        d->nnative = nat_unwind(s->nat, c, d->native, NAT_MAX_DEPTH, &d->native_truncated);
    }
    free(c);
    /* a thread that was slow to stop: detach it as soon as it does */
    nat_reap(NAT_STOP_TIMEOUT_NS);
    if (!ok && perm)
        return SE_PERM;
    return 0;
}

