/* The profiles of a trace's spans (spans/profile.h) as a recording-like
 * model (profiler/model.h), so that every profile exporter (callgrind,
 * pprof, speedscope, flamegraph, ...) writes them unchanged: `sonde export
 * -f FORMAT --trace ID [--span ID] STORE`. */
#ifndef SONDE_FORMATS_SPAN_PROFILE_H
#define SONDE_FORMATS_SPAN_PROFILE_H

#include "profiler/model.h"
#include "spans/assemble.h"

#include <stddef.h>

/* A model of the profiles of v's spans (only span_id's when it is not
 * NULL): one thread per span with a profile, named "NAME (SPAN_ID)", its
 * samples with their stacks, states, wall and CPU time (a stack seen k
 * times is k samples while the model holds fewer than a million). 0 and
 * *out (model_free it), -ENOENT (no such span, or no profile: err says
 * which), -ENOMEM, or SE_BADFILE (a profile that does not decode). */
int trace_profile_model(const struct trace_view *v, const char *span_id, struct model **out, char *err,
                        size_t errlen);

#endif
