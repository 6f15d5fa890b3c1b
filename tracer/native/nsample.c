/* Native frames for the sampler (see nsample.h). */
#include "tracer/native/nsample.h"

#include "common/clock.h"
#include "common/err.h"
#include "tracer/cpython/runtime.h"
#include "tracer/cpython/threads.h"
#include "tracer/native/merge.h"
#include "tracer/native/ptstop.h"
#include "tracer/native/unwind.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

/* Maps re-read at most this often (a module mapped since is also found on
 * the first address outside every known module: nat_symbolize). */
#define NAT_REFRESH_NS 1000000000ll

struct nsample {
    struct nat_unwinder *u;
    pid_t pid;
    int64_t last_refresh;
    struct nat_capture c; /* big: the stack copy */
    /* How much stack the captures copy while a thread is stopped: twice
     * the deepest any unwind read in this window of COPY_WINDOW samples or
     * the last (at least COPY_MIN), so that the pause copies what the
     * unwinds use, not all of NAT_STACK_COPY; an unwind that reads deeper
     * raises it at once (what it read past the copy came from the running
     * thread: its outer frames, which stay put while it runs deeper). */
    size_t depth_win, depth_prev;
    int nwin;
    struct nat_frame fr[NAT_MAX_DEPTH];
    const struct nat_sym *sym[NAT_MAX_DEPTH];
    struct nat_merged mg[NAT_MAX_DEPTH + PY_MAX_DEPTH];
};

#define COPY_WINDOW 256
#define COPY_MIN ((size_t)16 << 10)

static size_t copy_for(size_t depth)
{
    size_t want = (2 * depth + 4095) & ~(size_t)4095;
    return want < COPY_MIN ? COPY_MIN : want < NAT_STACK_COPY ? want : NAT_STACK_COPY;
}

/* After an unwind: the copy the next captures make. */
static void copy_adapt(struct nsample *n)
{
    size_t d = nat_unwind_depth(n->u);
    if (d > n->depth_win)
        n->depth_win = d;
    if (++n->nwin >= COPY_WINDOW) {
        n->depth_prev = n->depth_win;
        n->depth_win = 0;
        n->nwin = 0;
    }
    n->c.copy_want = copy_for(n->depth_win > n->depth_prev ? n->depth_win : n->depth_prev);
}

static void *ns_open(struct py_runtime *rt, char *err, size_t errlen)
{
    struct nsample *n = calloc(1, sizeof *n);
    if (!n) {
        se_fail(err, errlen, -ENOMEM, "out of memory");
        return NULL;
    }
    n->pid = rt->pid;
    n->u = nat_unwinder_new(rt->pid, rt->binary, err, errlen);
    if (!n->u) {
        free(n);
        return NULL;
    }
    n->last_refresh = mono_ns();
    return n;
}

static void ns_close(void *st)
{
    struct nsample *n = st;
    if (!n)
        return;
    nat_unwinder_free(n->u);
    free(n);
    /* a thread that was slow to stop: detach it as soon as it does */
    nat_reap(NAT_SAMPLE_STOP_TIMEOUT_NS);
}

struct reread {
    struct nat_unwinder *u;
    struct nat_capture *c;
    struct py_runtime *rt;
    const struct py_thread *th;
    struct py_rawframe *raw;
    int max, n, trunc;
};

/* While the thread is stopped: its Python stack at the same instant, and
 * whether the module its pc is in is still the one the unwinder has. A
 * thread state that another thread has now (this one is ending: its state
 * freed and reused) fails the sample: its Python stack is another's. */
static int reread_python(void *arg)
{
    struct reread *r = arg;
    nat_check_pc(r->u, r->c);
    uint8_t ts[PY_TSBUF];
    if (!py_thread_still_ts(r->rt, r->th, ts))
        return SE_EXITED;
    r->rt->held = 1;
    r->n = py_stack_read(r->rt, r->th->tstate, ts, r->raw, r->max, &r->trunc);
    r->rt->held = 0;
    return 0;
}

static int ns_walk(void *st, struct py_runtime *rt, const struct py_thread *th, int all,
                   struct py_rawframe *raw, int rawmax, int *nraw, int *rawtrunc,
                   struct rec_frame *out, int outmax, int *nattrunc, int64_t *hold_ns)
{
    struct nsample *n = st;
    *nattrunc = 0;
    *hold_ns = 0;
    int64_t now = mono_ns();
    if (now - n->last_refresh >= NAT_REFRESH_NS) {
        n->last_refresh = now;
        nat_refresh(n->u);
    }
    struct reread r = { n->u, &n->c, rt, th, raw, rawmax, 0, 0 };
    char e[256];
    int rc = nat_capture_within(n->pid, th->tid, &n->c, reread_python, &r,
                                NAT_SAMPLE_STOP_TIMEOUT_NS, e, sizeof e);
    *hold_ns = n->c.hold_ns;
    if (rc)
        return rc;
    if (r.n < 0) { /* its Python stack unreadable: native frames alone */
        r.n = 0;
        r.trunc = PY_TRUNC_BROKEN;
    }
    *nraw = r.n;
    *rawtrunc = r.trunc;
    int nn = nat_unwind(n->u, &n->c, n->fr, NAT_MAX_DEPTH, nattrunc);
    copy_adapt(n);
    for (int k = 0; k < nn; k++) {
        /* lines only where they are shown: not for the interpreter's own
         * frames that the merge hides */
        const struct nat_sym *y = nat_symbolize(n->u, n->fr[k].pc, n->fr[k].activation, 0);
        if (all || (!y->is_interp && !y->is_eval))
            y = nat_symbolize(n->u, n->fr[k].pc, n->fr[k].activation, 1);
        n->sym[k] = y;
    }
    int unmatched = 0;
    int max = outmax < NAT_MAX_DEPTH + PY_MAX_DEPTH ? outmax : NAT_MAX_DEPTH + PY_MAX_DEPTH;
    int m = nat_merge(n->sym, nn, raw, r.n, all, n->mg, max, &unmatched);
    for (int i = 0; i < m; i++) {
        if (n->mg[i].native)
            out[i] = (struct rec_frame){ .nat = n->sym[n->mg[i].idx], .line = 0, .native = 1 };
        else
            out[i] = (struct rec_frame){ .code = NULL, .line = n->mg[i].idx, .native = 0 };
    }
    return m;
}

static void ns_tick(void *st)
{
    (void)st;
    nat_reap(0);
}

const struct sampler_native nat_sampler_hooks = {
    .open = ns_open,
    .close = ns_close,
    .walk = ns_walk,
    .tick = ns_tick,
};
