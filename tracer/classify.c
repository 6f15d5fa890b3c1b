/* Thread-state classification (see tracer/classify.h). */
#include "tracer/classify.h"

#include "common/state.h"

/* A futex wait on a word inside the GIL. */
static int waits_on_gil(const struct proc_syscall *sys, const struct gil_view *g)
{
    return sys->kind == PROC_SYS_CALL && sys->nr == PROC_NR_FUTEX && sys->has_arg0 &&
           sys->arg0 >= g->lo && sys->arg0 < g->hi;
}

static int unchanged(const struct classify_evidence *e)
{
    return e->did_not_run && (e->last_state == STATE_IDLE || e->last_state == STATE_GIL_WAIT);
}

int classify_wants_syscall(const struct classify_evidence *e)
{
    return e->holds_gil || !unchanged(e);
}

int classify_wants_kstack(const struct classify_evidence *e)
{
    return !e->holds_gil && !unchanged(e) &&
           (e->sys.kind == PROC_SYS_RUNNING || e->sys.kind == PROC_SYS_USER);
}

/* "running" covers both a thread on a CPU and one waiting in the run
 * queue; the kernel's split of the last interval (dcpu on CPU, ddelay
 * queued) tells how likely each is, and error diffusion turns that into
 * states whose totals are unbiased: nogil when on CPU, idle when queued. */
static int running_state(const struct classify_evidence *e, struct classify_carry *c,
                         int64_t ddelay)
{
    int64_t dcpu = e->dcpu;
    double p = dcpu + ddelay > 0 ? (double)dcpu / (double)(dcpu + ddelay) : 1.0;
    c->run += p;
    if (c->run >= 0.5) {
        c->run -= 1.0;
        return STATE_NOGIL;
    }
    return STATE_IDLE;
}

/* A runnable thread still on its way back from a system call (its kernel
 * stack shows the wait's return, or the exit to user space after any
 * system call) is taking part in a GIL handoff only if the GIL did change
 * hands, or another thread holds it, and this thread was in it: it waited
 * for the GIL at its previous sample, or held it then and lost it since.
 * A thread alone in its process, or one whose interpreter saw no switch
 * while nobody else holds the GIL, is merely queued for a CPU after an
 * unrelated system call: on a loaded host that is most of them. */
int classify_in_gil_handoff(int last_state, const struct gil_view *g)
{
    if (g->nthreads < 2)
        return 0;
    /* (this thread does not hold the GIL: any holder is another thread) */
    if (last_state == STATE_GIL_WAIT)
        return 1;
    if (last_state == STATE_GIL)
        return g->switched || g->holder;
    return 0;
}

/* A thread that does not hold the GIL, from its current system call:
 * "running" (runnable: on a CPU or queued for one), "-1 ..." (in user
 * space), "202 0xADDR ..." (futex: a GIL wait if ADDR lies inside the
 * GIL). */
int classify_state(const struct classify_evidence *e, struct classify_carry *c)
{
    /* The run-queue time of the interval, less what ticks that saw the
     * thread queued throughout counted idle already (below): the kernel
     * adds a wait to ddelay only once the thread runs, all of it. */
    int64_t ddelay = e->ddelay;
    if (!e->did_not_run) {
        ddelay = ddelay > c->queued ? ddelay - c->queued : 0;
        c->queued = 0;
    }
    if (e->holds_gil)
        return STATE_GIL;
    /* A thread that was not put on a CPU since its previous sample and used
     * no CPU did not run: if it was blocked it still is. */
    if (unchanged(e))
        return e->last_state;
    switch (e->sys.kind) {
    case PROC_SYS_RUNNING:
    case PROC_SYS_USER:
        /* A GIL waiter that was just woken (the GIL is being handed to it,
         * or its timed wait expired) is runnable before it runs again: on a
         * virtual machine that window can last a millisecond. */
        if (e->kstack == PROC_KSTACK_WAIT_RETURN && classify_in_gil_handoff(e->last_state, &e->gil))
            return STATE_GIL_WAIT;
        /* Seen running on another CPU: no need to guess. (Splitting by the
         * interval's on-CPU/run-queue ratio put a GIL-releasing thread's
         * hashing time partly in idle: its run-queue time comes mostly
         * from GIL handoffs, which count as gil_wait above.) */
        if (e->kstack == PROC_KSTACK_ON_CPU)
            return STATE_NOGIL;
        /* Seen off its CPU (the kernel shows a stack only for a thread
         * not on one) and not put on one since its previous sample: it was
         * queued the whole interval this sample stands for. The interval's
         * split cannot say so: the kernel adds a wait in the run queue to
         * ddelay only when the thread runs again, so a wait in progress is
         * not in it. (The kernel stack alone is no proof for the interval:
         * on a host with few CPUs the sampler itself takes one, and at that
         * instant a thread it displaced is queued.) */
        if (e->did_not_run &&
            (e->kstack == PROC_KSTACK_OTHER || e->kstack == PROC_KSTACK_WAIT_RETURN)) {
            c->queued += e->wall > 0 ? e->wall : 0;
            return STATE_IDLE;
        }
        return running_state(e, c, ddelay);
    case PROC_SYS_CALL:
        return waits_on_gil(&e->sys, &e->gil) ? STATE_GIL_WAIT : STATE_IDLE;
    default:
        return STATE_IDLE; /* unreadable */
    }
}

/* Is the GIL holder off its CPU right now? Asleep in a system call with
 * the GIL held (its syscall file names the call), or runnable but queued
 * behind another task: either way every thread that needs the GIL stalls
 * behind it. Which of on-CPU and queued a runnable holder is comes from the
 * kernel's split of its last interval into on-CPU and run-queue time,
 * diffused so that the totals stay unbiased. (Its kernel stack is no
 * evidence here: a thread running on another CPU shows the stale frames of
 * its last interrupt as often as not.) */
int classify_holder_off_cpu(const struct classify_evidence *e, struct classify_carry *c)
{
    switch (e->sys.kind) {
    case PROC_SYS_UNKNOWN:
        return 0;
    case PROC_SYS_USER:
    case PROC_SYS_CALL:
        /* Asleep in a system call with the GIL held, or stopped -- unless
         * it sleeps on the GIL itself: then it let the GIL go between the
         * read of the GIL and this one (a switch), and holds nothing. */
        return !waits_on_gil(&e->sys, &e->gil);
    default: {
        int64_t dcpu = e->dcpu, ddelay = e->ddelay;
        double q = dcpu + ddelay > 0 ? (double)ddelay / (double)(dcpu + ddelay) : 0.0;
        c->holder += q;
        if (c->holder >= 0.5) {
            c->holder -= 1.0;
            return 1;
        }
        return 0;
    }
    }
}
