/* The agent's spans (libsonde-agent.so): what the Python tracer API
 * (python/sonde/tracing.py) hands to native code, and where it goes.
 *
 *  - Each OS thread, asyncio task and greenlet has a current span (a
 *    recording-local span number, 0 = none), set by the tracer on span
 *    enter and exit through sonde_span_at (a task or greenlet by its
 *    object's address, the key the sampler knows its lane by); the sampler
 *    reads it for every sample it takes (agent_span_of), so samples carry
 *    their span.
 *  - Ended spans arrive packed (sonde_span_end, format below) and go into a
 *    bounded queue; a full queue drops the span and counts it, never blocks.
 *    A native thread of the agent (named like the agent's others) takes
 *    them out in batches, encodes them as OTLP/HTTP JSON and posts them to
 *    the configured endpoint with retries and backoff, and keeps a copy for
 *    the running recording, which stores them in its span tables when it
 *    ends (agent_spans_save).
 *  - At exit what is queued is exported within a bounded time
 *    (SPANS_EXIT_FLUSH_MS); what cannot be is counted as dropped.
 *
 * Packed span (little-endian, SPAN_REC_HDR bytes then the strings):
 *   u64 trace_hi, trace_lo, span_id, parent_id (parent 0 = a root)
 *   i64 start_ns, end_ns (Unix time)
 *   u32 no (recording-local number)   u8 kind   u8 status   u16 name_len
 *   u32 attrs_len
 *   name (UTF-8, name_len bytes), attrs (a JSON object's text, attrs_len
 *   bytes; 0 = no attributes)
 * The record comes from the program's own Python code, yet is checked
 * as any input is: a malformed one is counted as dropped. */
#ifndef SONDE_AGENT_SPANS_H
#define SONDE_AGENT_SPANS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SPAN_REC_HDR 60
#define SPANS_QUEUE_MAX 8192       /* spans queued at most (SONDE_SPANS_QUEUE lowers or raises it) */
#define SPANS_KEEP_MAX 200000      /* spans a recording keeps at most */
#define SPANS_EXIT_FLUSH_MS 2000   /* the bound on the flush at exit */

/* Figures (sonde_spans_stats): ended spans received; exported (posted and
 * accepted); dropped because the queue was full or the record malformed;
 * dropped because the endpoint refused them or could not be reached after
 * the retries; spans a recording could not keep; span profiles dropped
 * (agent_profiles_dropped: samples of spans whose profile found no room,
 * profiles that could not be encoded). */
enum { SPST_ENDED, SPST_EXPORTED, SPST_DROP_QUEUE, SPST_DROP_EXPORT, SPST_DROP_KEEP, SPST_PROF_DROP, SPST_N };

/* Exported to Python (agent.map). */

/* Set the export settings: endpoint (the OTLP/HTTP base URL, "/v1/traces"
 * is appended unless it ends so; NULL or "": no export), the service name
 * and the host name the spans carry, and extra resource attributes (a JSON
 * object's text, merged into every span's attributes; NULL: none). Call
 * before the first span ends; later calls change the settings for the
 * spans exported after. 0, -EINVAL or -ENOMEM. */
int sonde_spans_config(const char *endpoint, const char *service, const char *host,
                       const char *resource_json);

/* This thread's current span number (0: none). Cheap: one store to a
 * thread-local slot after the thread's first call. */
void sonde_span_current(uint32_t no);

/* The current span number (0: none) of the green thread (asyncio task,
 * greenlet) whose object is at address key_hi << 32 | key_lo (its id()),
 * or of this thread when that is 0. A green thread's samples carry its
 * own span, or when it has none (0, or no room was left: rare), its
 * thread's. Cheap: a short probe under an uncontended spin lock. */
void sonde_span_at(uint32_t no, uint32_t key_lo, uint32_t key_hi);

/* Hand over an ended span (packed as above, len bytes) and make restore
 * the thread's current span. 0, -EAGAIN (the queue is full: dropped and
 * counted), -EINVAL (malformed: dropped and counted). Never blocks. */
int sonde_span_end(const void *rec, size_t len, uint32_t restore);

/* sonde_span_end, restore made the current span of the green thread at
 * key_hi << 32 | key_lo as sonde_span_at does (0: of this thread). */
int sonde_span_end_at(const void *rec, size_t len, uint32_t restore, uint32_t key_lo, uint32_t key_hi);

/* Wait up to timeout_s for every queued span to be exported (or dropped).
 * 0 when the queue emptied in time, -ETIMEDOUT. */
int sonde_spans_flush(double timeout_s);

/* Copy the SPST_N figures into out. */
void sonde_spans_stats(uint64_t *out);

/* Internal, for agent.c. */

/* The current span of the green thread whose object is at green (its own
 * if it set one, else its thread's) or, green 0, of thread tid of this
 * process (0: none). Called on the sampling thread: no lock, no
 * allocation. */
uint32_t agent_span_of(pid_t tid, uint64_t green, void *ctx);

/* A recording starts: keep ended spans for it from now on. */
void agent_spans_keep(void);

/* The recording at path has ended: export and take out what is queued
 * (bounded as at exit), then store the kept spans in its span tables
 * (each with the attribute sonde.span_no, the number its samples carry)
 * and the figures in its meta (spans_dropped). 0, or a negative code with
 * err filled. */
int agent_spans_save(const char *path, char *err, size_t errlen);

/* Decode one packed span into a batch (service and node as given, attrs
 * merged with extra, a JSON object's text or NULL; with_no: the attribute
 * sonde.span_no added). Pure; for the tests
 * too. 0, -EINVAL (malformed) or -ENOMEM. */
struct span_batch;
int agent_span_decode(const void *rec, size_t len, const char *service, const char *node,
                      const char *extra, struct span_batch *out, int with_no);

#endif
