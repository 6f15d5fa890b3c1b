/* The span store: the spans part of a sonde file, tables span and trace
 * (docs/store-spans.md), on top of store/store.h, which owns the file. A
 * collector's store holds this part alone; a recording may hold it next to
 * its samples. One writer (the collector), any number of readers (WAL). */
#ifndef SONDE_STORE_SPANS_H
#define SONDE_STORE_SPANS_H

#include "spans/assemble.h"
#include "spans/span.h"
#include "store/store.h"

#include <stdint.h>

struct span_store;

/* The longest string a reader accepts from a store (64 MiB). */
#define SPAN_STORE_VALUE_MAX (64 << 20)
/* Stored times are microseconds since the epoch in [0, SPAN_STORE_US_MAX],
 * the range the decoders accept (span.h: nanoseconds that fit int64, up to
 * the year 2262): a reader refuses others; sums and differences of times
 * and clock corrections are overflow-checked where they are made. */
#define SPAN_STORE_US_MAX SPAN_TIME_MAX_US

/* The spans part (tables span and trace, meta spans_schema_version). */
extern const struct store_part store_spans_part;

/* Open (flags & STORE_CREATE: create the file if missing and add the span
 * tables when it lacks them, also to an existing recording) the store
 * at path. Returns 0 and *out, SE_BADFILE for a missing (without create),
 * non-regular, non-SQLite or foreign/corrupt file (tables that are not the
 * plain tables with the columns readers use), or another negative code;
 * err filled. Without STORE_CREATE the file is read as untrusted input.
 * STORE_CREATE | STORE_NOSYNC writes without fsync (synchronous=OFF, for the
 * spans of a recording; see store_file_open); the collector's store keeps
 * synchronous=NORMAL. A store is used by one thread at a time. */
int span_store_open(const char *path, int flags, struct span_store **out, char *err, size_t errlen);

/* Close; NULL is a no-op. */
void span_store_free(struct span_store *st);

/* Insert n spans in one transaction; exact duplicates (same content) are
 * ignored. *inserted (may be NULL) gets the number of new rows. Returns 0 or
 * a negative code with err filled. */
int span_store_insert(struct span_store *st, const struct span *spans, size_t n, int64_t now_us,
                      size_t *inserted, char *err, size_t errlen);

/* Drop every trace whose last span ended before before_us. *deleted (may be
 * NULL) gets the number of traces dropped. Returns 0 or a negative code. */
int span_store_expire(struct span_store *st, int64_t before_us, size_t *deleted, char *err,
                      size_t errlen);

/* Load every stored span of a trace (raw times, skew_us 0) into out.
 * Returns 0, -ENOENT when the trace has no span, SE_BADFILE for a damaged
 * row (NULLs, ids that are not hex, times out of range; text that is not
 * UTF-8 is repaired) or another negative code. */
int span_store_load(struct span_store *st, const char *trace_id, struct span_batch *out, char *err,
                    size_t errlen);

/* Read / write one row of the meta table. get: 0 and value copied into
 * buf, -ENOENT when absent, or a negative code. */
int span_store_set_meta(struct span_store *st, const char *key, const char *value, char *err, size_t errlen);
int span_store_get_meta(struct span_store *st, const char *key, char *buf, size_t len);

/* Trace ids that received spans at or after since_us (at most limit, oldest
 * first), as in span_store_find; *last_us gets the receive time of the last
 * one. Returns 0 or a negative code. */
int span_store_changed(struct span_store *st, int64_t since_us, size_t limit, char (**ids)[33], size_t *n,
                       int64_t *last_us, char *err, size_t errlen);

/* Record the clock correction of every span of node `node` in a trace (the
 * skew_us column). Call between span_store_begin / span_store_commit.
 * Returns 0 or a negative code. */
int span_store_set_skew(struct span_store *st, const char *trace_id, const char *node, int64_t skew_us,
                        char *err, size_t errlen);
int span_store_begin(struct span_store *st, char *err, size_t errlen);
int span_store_commit(struct span_store *st, char *err, size_t errlen);

struct store_filter {
    const char *service;     /* NULL: any */
    int64_t since_us;        /* traces ending at or after this; 0: any */
    int64_t min_duration_us; /* raw trace duration at least this; 0: any */
    size_t limit;            /* 0: no limit */
};

/* Trace ids matching f, most recent first, as a malloc'd array of 33-byte
 * strings in *ids (caller frees) and their count in *n. Returns 0 or a
 * negative code. */
int span_store_find(struct span_store *st, const struct store_filter *f, char (**ids)[33],
                    size_t *n, char *err, size_t errlen);

/* The clock-skew bound for assembling traces of st: override when >= 0,
 * else the one its collector ran with (meta max_skew_us), else the default. */
int64_t trace_store_max_skew(struct span_store *st, int64_t override);

/* Load trace id from st and assemble it into v. 0, -ENOENT (no such
 * trace), -ENOMEM or a store error, with a message in err. */
int trace_load(struct span_store *st, const char *id, int64_t max_skew_us, struct trace_view *v,
               char *err, size_t errlen);


#endif
