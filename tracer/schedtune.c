/* tracer: how the sampling thread asks the kernel to be scheduled (timer
 * slack, slice, nice). */
#include "tracer/schedtune.h"

#include "common/thread.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* sched_setattr(2): glibc has no wrapper. */
#define SCHED_OTHER_POLICY 0
struct sched_attr_v1 {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
    uint32_t util_min, util_max;
};

/* The time slice the kernel reports for this thread: the one asked for
 * only where custom slices exist (Linux 6.12+; before, sched_setattr
 * accepts one and ignores it). */
static uint64_t granted_slice(void)
{
#ifdef SYS_sched_getattr
    struct sched_attr_v1 a;
    memset(&a, 0, sizeof a);
    if (syscall(SYS_sched_getattr, 0, &a, (unsigned)sizeof a, 0) == 0)
        return a.runtime;
#endif
    return 0;
}

static int set_fair_attr(int nice, uint64_t slice_ns)
{
#ifdef SYS_sched_setattr
    struct sched_attr_v1 a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.policy = SCHED_OTHER_POLICY;
    a.nice = nice;
    a.runtime = slice_ns;
    return (int)syscall(SYS_sched_setattr, 0, &a, 0);
#else
    (void)nice;
    (void)slice_ns;
    errno = ENOSYS;
    return -1;
#endif
}

/* Make the sampling thread wake up on time, without disturbing the target
 * more than the rate needs. Three things delay a tick on a machine whose
 * CPUs the target keeps busy:
 *  - timer slack: the default 50 us alone caps a 10 kHz loop near 6 kHz;
 *  - the fair scheduler lets the running thread finish its time slice
 *    (milliseconds) before a woken one runs: a thread may ask for a short
 *    slice (sched_setattr, Linux 6.12+), which lets it preempt on wake-up;
 *  - its weight: where allowed (root, CAP_SYS_NICE) nice -10.
 * Preempting is not free: the thread it preempts is often the GIL holder,
 * and every other thread then waits too. Measured on a 2-CPU VM with 4
 * busy target threads (scripts/bench record, paired windows):
 *  - at 100 Hz and 1 kHz the default slice keeps 97-100% of the ticks on
 *    time; the short slice would cost the target 1.1-1.4%, while nice -5
 *    with the default slice costs +0.25% (interval -0.4..+0.8%);
 *  - at 10 kHz the default slice keeps 82-85% of the ticks, the short
 *    slice with nice -10 96-99%, for a slowdown of about 8% instead of 3%.
 * So above 1 kHz: the short slice and nice -10; at 1 kHz and below: nice
 * -5 only. Each step falls back quietly (unprivileged users keep their
 * nice); a real-time policy is not used, as an overrun would starve the
 * target's CPU. Describes what it got in out (meta sampler_sched). */
void sched_setup(int rate_hz, char *out, size_t outlen)
{
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    const uint64_t slice = 100000; /* the shortest the kernel accepts */
    int nice = thread_nice();
    int want = rate_hz > 1000 ? -10 : -5;
    if (want > nice)
        want = nice; /* never less urgent than it was started */
    int asked = rate_hz > 1000 && (set_fair_attr(want, slice) == 0 || set_fair_attr(nice, slice) == 0);
    if (!asked)
        (void)thread_set_nice(want);
    nice = thread_nice();
    if (asked && granted_slice() == slice)
        snprintf(out, outlen, "nice %d, slice %d us", nice, (int)(slice / 1000));
    else
        snprintf(out, outlen, "nice %d, default slice", nice);
}

