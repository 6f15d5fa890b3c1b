/* The ingest pipeline: a bounded queue of decoded span batches drained by
 * one writer thread into the store (and handed to the forwarder). Group
 * commit: the writer takes everything queued (whole requests, up to 16384
 * spans), writes it in one transaction and then tells each request's
 * submitter whether it committed, so that a sender is answered only once
 * its spans are in the store. */
#ifndef SONDE_COLLECTOR_INGEST_H
#define SONDE_COLLECTOR_INGEST_H

#include "spans/span.h"
#include "store/spans.h"

#include <stdint.h>

struct ingest;
struct forwarder;

struct ingest_opts {
    size_t max_queued;    /* spans waiting for the writer before submit refuses */
    int64_t retention_us; /* 0: keep everything */
    struct forwarder *fwd; /* may be NULL; not owned */
    int64_t max_skew_us;   /* bound for the skew_us recorded on stored spans */
};

struct ingest_stats {
    uint64_t received, stored, duplicates, expired_traces, refused;
    uint64_t rejected;     /* spans the decoders refused (invalid ids, times, limits) */
    uint64_t store_errors; /* failed write transactions (disk full, I/O error) */
    uint64_t unstored;     /* spans in them: none is in the store, their senders were told so */
    char last_error[256]; /* the latest store error, "" when none */
};

/* Start the writer thread over st (owned by the caller, used only by the
 * writer until ingest_free returns). Returns 0 or a negative code. */
int ingest_new(struct span_store *st, const struct ingest_opts *o, struct ingest **out, char *err,
               size_t errlen);

/* Called on the writer thread once the transaction holding a submitted
 * batch ended: rc 0 when it committed (the spans are in the store, and a
 * SIGKILL of the process no longer loses them), or the store's negative
 * code when it was rolled back (none of them is stored). Must not block. */
typedef void (*ingest_done_fn)(void *arg, int rc);

/* Queue b's spans (b is emptied and may be reused). done (may be NULL) is
 * called with arg exactly once when 0 is returned, never otherwise.
 * Thread-safe. Returns 0, or -EAGAIN when the queue is full (b untouched:
 * the caller answers 503). */
int ingest_submit(struct ingest *in, struct span_batch *b, ingest_done_fn done, void *arg);

/* A hint for group commit: delta (+1) requests are being decoded and will
 * be submitted soon, or (-1) one of them will not be after all (each
 * ingest_submit counts one as arrived). The writer waits up to 2 ms for
 * announced requests before it starts a transaction. Thread-safe. */
void ingest_expect(struct ingest *in, int delta);

/* Count n spans a decoder rejected (reported to the client as partial
 * success) in the stats. Thread-safe. */
void ingest_count_rejected(struct ingest *in, size_t n);

/* Whether the queue is full already (a request would get -EAGAIN whatever
 * its size): lets the HTTP side refuse before decoding. Thread-safe. */
int ingest_full(struct ingest *in);

/* Block until everything submitted so far is stored. Thread-safe. */
void ingest_flush(struct ingest *in);

/* Snapshot of the counters. Thread-safe. */
void ingest_get_stats(struct ingest *in, struct ingest_stats *s);

/* Drain the queue, stop the writer and free; NULL is a no-op. */
void ingest_free(struct ingest *in);

#endif
