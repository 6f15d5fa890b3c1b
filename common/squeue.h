/* A bounded queue of byte batches between threads (common/: nothing in it
 * knows what the bytes are). A fixed pool of batches is allocated up front;
 * a producer takes a free batch, fills it and pushes it; a consumer pops
 * full batches in push order and gives each back once it is done with it.
 *
 * Contract:
 *  - Bounded and allocation-free after squeue_new: when every batch is full
 *    or held by the consumer, squeue_get_free returns NULL at once (the
 *    producer drops or retries; it never waits for the consumer).
 *  - Thread safety: every call but squeue_new and squeue_free may be made
 *    from any thread at the same time (a mutex guards the lists). sonde uses
 *    one producer (the sampling thread) and one consumer (the writer or the
 *    live view).
 *  - A batch belongs to exactly one side at a time: the producer between
 *    squeue_get_free and squeue_push, the consumer between squeue_pop and
 *    squeue_release. The push and the pop order memory: the consumer sees
 *    every byte the producer wrote before squeue_push.
 *  - Ending: the producer calls squeue_close once it pushes no more;
 *    squeue_pop then returns the batches left and NULL once drained.
 *  - squeue_free only when no thread uses the queue any more (after the
 *    consumer saw NULL from squeue_pop, or never started). */
#ifndef SONDE_SQUEUE_H
#define SONDE_SQUEUE_H

#include <stddef.h>
#include <stdint.h>

struct batch {
    uint8_t *buf;
    size_t len, cap;     /* bytes used, bytes available */
    struct batch *next;  /* the queue's link: not for its users */
};

struct sample_queue;

/* A queue of nbatches batches of batch_bytes each, or NULL (out of memory). */
struct sample_queue *squeue_new(size_t nbatches, size_t batch_bytes);
/* Free the queue and its batches (see the contract above). NULL is fine. */
void squeue_free(struct sample_queue *q);

/* Producer: a free, empty batch, or NULL when none is free (never waits). */
struct batch *squeue_get_free(struct sample_queue *q);
/* Producer: hand a filled batch to the consumer. */
void squeue_push(struct sample_queue *q, struct batch *b);
/* Producer: no more batches will be pushed; wakes a waiting consumer. */
void squeue_close(struct sample_queue *q);

/* Consumer: wait for the next full batch, or NULL once the queue is closed
 * and drained. */
struct batch *squeue_pop(struct sample_queue *q);
/* Consumer: give back a batch squeue_pop returned, for reuse. */
void squeue_release(struct sample_queue *q, struct batch *b);

#endif
