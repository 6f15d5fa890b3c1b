/* The agent's span profiles (docs/store-spans.md, "span profiles"): while a
 * recording runs, the recorder's writer thread hands every sample that
 * carries a span to agent_profiles_sample, which adds it to that span's
 * profile (spans/profile.h); the span exporter takes the profile when the
 * span is exported and sends it as the span's sonde.profile.* attributes.
 * All of it runs on the agent's threads, none on the program's.
 *
 * Bounds: PROF_OPEN_MAX profiles at once (a span whose profile finds no room
 * gets none, counted), PROF_KEYS_MAX stacks, PROF_FRAMES_MAX frames and
 * PROF_STACK_MAX stack entries per profile (beyond them a sample counts in
 * its state's sample without frames), PROF_GFRAMES_MAX distinct frames in
 * all (their names are kept for the agent's life). A span's export waits
 * until the writer has stored the samples taken up to the span's end, at
 * most PROF_WAIT_MS after the span ended. */
#ifndef SONDE_AGENT_PROFILES_H
#define SONDE_AGENT_PROFILES_H

#include "profiler/recorder.h"

#include <stdint.h>

#define PROF_OPEN_MAX 512
#define PROF_KEYS_MAX 256
#define PROF_FRAMES_MAX 512
#define PROF_STACK_MAX 8192
#define PROF_GFRAMES_MAX 65536
#define PROF_WAIT_MS 400

/* A recording starts at start_unix_ns (its samples' time 0): the writer's
 * hook (fill it in, then pass it to recorder_start_with). */
void agent_profiles_start(int64_t start_unix_ns, struct recorder_hook *hook);

/* The recording ended and its writer is done: nothing more to wait for. */
void agent_profiles_stop(void);

/* Whether the samples of a span that ended at end_unix_ns are all in (or
 * there is no recording to wait for). Any thread; never blocks for long. */
int agent_profiles_ready(int64_t end_unix_ns);

/* Take (and forget) the profile of span number no, as the text of a JSON
 * object of attributes sonde.profile.samples, .wall_s, .cpu_s, .gil_pct,
 * .gil_wait_pct, .nogil_pct, .idle_pct, .top (the hottest functions, a JSON
 * array's text) and .pprof (base64 of the gzipped pprof, labelled with
 * trace_id and span_id); malloc'd. NULL: the span has no sample (or no
 * memory). */
char *agent_profiles_take(uint32_t no, const char *trace_id, const char *span_id, int64_t duration_ns);

/* Span profiles dropped since the recording started: a sample of a span
 * whose profile found no room (PROF_OPEN_MAX) counts one, a profile that
 * could not be encoded one. */
uint64_t agent_profiles_dropped(void);

/* In a forked child: forget the parent's state. */
void agent_profiles_atfork_child(void);

#endif
