/* sonde top: the live view of a process being sampled, drawn from the live
 * aggregator (profiler/live.h): a curses UI on a terminal, periodic
 * plain-text snapshots otherwise. */
#ifndef SONDE_UI_TOP_H
#define SONDE_UI_TOP_H

#include "profiler/live.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

struct top_opts {
    double interval_s;              /* refresh period (> 0) */
    double duration_s;              /* quit after this long, 0 = until the end (plain) or q */
    int rate_hz;                    /* shown in the header */
    enum q_metric mode;             /* initial mode */
    int plain;                      /* print snapshots to out instead of the curses UI */
    volatile sig_atomic_t *stop;    /* set (e.g. by a signal handler) to quit */
    /* Sampling errors so far (may be NULL). Called from top_run's thread. */
    uint64_t (*errors)(void *ctx);
    void *ctx;
};

/* Run the view until the user quits (q), *stop is set, the duration passes
 * or, in plain mode, sampling ends. The terminal is restored before
 * returning. 0, or a negative code with a message in err. */
int top_run(struct live *l, const struct top_opts *o, FILE *out, char *err, size_t errlen);

#endif
