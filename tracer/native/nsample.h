/* Native frames for the sampler (sampler_opts.native): one unwinder per
 * target, its symbol cache kept across samples (each return address is
 * named once, by libdwfl, and looked up by address afterwards) and
 * refreshed when the target maps or unmaps a module. */
#ifndef SONDE_NAT_NSAMPLE_H
#define SONDE_NAT_NSAMPLE_H

#include "tracer/sampler.h"

/* How long a sampled thread may take to reach its stop before it is
 * sampled without native frames (counted in native_failed). */
#define NAT_SAMPLE_STOP_TIMEOUT_NS (20 * 1000 * 1000)

/* The hooks to put in sampler_opts.native. Static; out-of-process only. */
extern const struct sampler_native nat_sampler_hooks;

#endif
