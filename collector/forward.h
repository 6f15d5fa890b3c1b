/* Forwarding upstream: every accepted span is re-sent to an OTLP/HTTP
 * endpoint (JSON encoding) in batches, retried with exponential backoff. */
#ifndef SONDE_COLLECTOR_FORWARD_H
#define SONDE_COLLECTOR_FORWARD_H

#include "spans/span.h"

#include <stdint.h>

struct forwarder;

struct forwarder_opts {
    const char *url;     /* e.g. http://host:4318/v1/traces (copied) */
    const char *token;   /* bearer token for upstream, may be NULL (copied) */
    size_t batch_spans;  /* spans per request, default 1000 */
    int64_t linger_us;   /* wait this long for a batch to fill, default 200 ms */
    size_t max_queued;   /* spans held while upstream is down, default 200000; oldest dropped */
    int64_t max_backoff_us; /* default 30 s; first retry after 100 ms, doubling */
};

struct forwarder_stats {
    uint64_t sent, dropped, retries, requests;
};

/* Start the sender thread. Returns 0 or a negative code (err filled). */
int forwarder_new(const struct forwarder_opts *o, struct forwarder **out, char *err, size_t errlen);

/* Queue b's spans for sending (b is emptied). Never blocks on the network.
 * Thread-safe. */
void forwarder_submit(struct forwarder *f, struct span_batch *b);

void forwarder_get_stats(struct forwarder *f, struct forwarder_stats *s);

/* Try to send what is queued for up to grace_ms, then stop and free; the
 * final counters go to *final (may be NULL). NULL f is a no-op. */
void forwarder_free(struct forwarder *f, int grace_ms, struct forwarder_stats *final);

#endif
