/* tracer: scheduling of the sampling thread. */
#ifndef SONDE_SCHEDTUNE_H
#define SONDE_SCHEDTUNE_H

#include <stddef.h>

/* Make the calling thread (the sampling thread) wake up on time for
 * rate_hz ticks a second, without disturbing the target more than the rate
 * needs (the trade-offs are in tracer/schedtune.c). Never fails: each step
 * falls back quietly. Describes what it got in out ("nice -5, default
 * slice"; meta sampler_sched). */
void sched_setup(int rate_hz, char *out, size_t outlen);

#endif
