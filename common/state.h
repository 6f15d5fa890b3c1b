/* Thread states, shared by the sampler (which observes them) and the store
 * (which records them as sample.state). */
#ifndef SONDE_STATE_H
#define SONDE_STATE_H

enum sample_state {
    STATE_IDLE = 0,     /* off CPU, not waiting for the GIL */
    STATE_GIL = 1,      /* holds the GIL */
    STATE_GIL_WAIT = 2, /* blocked waiting for the GIL */
    STATE_NOGIL = 3,    /* on CPU without the GIL (native code that released it) */
    STATE_COUNT
};

/* sample.flags: what else a sample says about its thread. */
enum sample_flag {
    SAMPLE_TRUNCATED = 1,  /* the stack was cut short (depth cap or torn read):
                              the innermost frames are kept */
    SAMPLE_GIL_OFFCPU = 2, /* STATE_GIL, but the holder was not on a CPU
                              (queued for one, or blocked in a system call):
                              every other thread that needs the GIL stalls */
    SAMPLE_SUSPENDED = 4,  /* a green thread's sample while it was suspended
                              (sample.green says which): wall time of the
                              lane, not of its OS thread, whose own sample
                              at that time is another row */
};

/* green.kind: what a green thread is. */
enum green_kind {
    GREEN_TASK = 1,        /* an asyncio Task */
    GREEN_GREENLET = 2,    /* a greenlet (gevent's too) */
};

static inline const char *green_kind_name(int kind)
{
    return kind == GREEN_TASK ? "task" : kind == GREEN_GREENLET ? "greenlet" : "?";
}

static inline const char *state_name(int state)
{
    static const char *const names[] = { "idle", "gil", "gil_wait", "nogil" };
    return state >= 0 && state < STATE_COUNT ? names[state] : "?";
}

#endif
