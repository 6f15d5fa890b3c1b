/* common/squeue: the pool is bounded and never waits, batches come out in
 * push order, a closed queue drains then says NULL, released batches are
 * reused, and a producer and a consumer thread pass every batch intact. */
#include "check.h"

#include "common/squeue.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#define NITEMS 20000

static void *producer(void *arg)
{
    struct sample_queue *q = arg;
    uint32_t next = 0;
    while (next < NITEMS) {
        struct batch *b = squeue_get_free(q);
        if (!b) {
            sched_yield();
            continue;
        }
        /* a few numbers per batch, as many as fit */
        while (next < NITEMS && b->len + sizeof next <= b->cap) {
            memcpy(b->buf + b->len, &next, sizeof next);
            b->len += sizeof next;
            next++;
        }
        squeue_push(q, b);
    }
    squeue_close(q);
    return NULL;
}

int main(void)
{
    struct sample_queue *q = squeue_new(3, 64);
    CHECK(q != NULL, "squeue_new");

    /* bounded: three batches, then NULL at once */
    struct batch *b[4];
    for (int i = 0; i < 3; i++) {
        b[i] = squeue_get_free(q);
        CHECK(b[i] != NULL, "batch %d", i);
        CHECK_INT(b[i]->len, 0);
        CHECK_INT(b[i]->cap, 64);
    }
    CHECK(squeue_get_free(q) == NULL, "a fourth batch from a pool of three");

    /* push order is pop order */
    for (int i = 0; i < 3; i++) {
        b[i]->buf[0] = (uint8_t)(10 + i);
        b[i]->len = 1;
        squeue_push(q, b[i]);
    }
    struct batch *p = squeue_pop(q);
    CHECK(p == b[0] && p->buf[0] == 10, "first out");
    /* still none free until the consumer gives one back */
    CHECK(squeue_get_free(q) == NULL, "a batch held by the consumer is not free");
    squeue_release(q, p);
    struct batch *again = squeue_get_free(q);
    CHECK(again == b[0], "the released batch is reused");
    CHECK_INT(again->len, 0);

    /* closed: the rest drains in order, then NULL (without waiting) */
    squeue_close(q);
    p = squeue_pop(q);
    CHECK(p == b[1] && p->buf[0] == 11, "second out");
    squeue_release(q, p);
    p = squeue_pop(q);
    CHECK(p == b[2] && p->buf[0] == 12, "third out");
    squeue_release(q, p);
    CHECK(squeue_pop(q) == NULL, "closed and drained");
    CHECK(squeue_pop(q) == NULL, "stays drained");
    squeue_release(q, again);
    squeue_free(q);
    squeue_free(NULL);

    /* two threads: every number arrives once, in order */
    q = squeue_new(4, 64);
    pthread_t th;
    CHECK_INT(pthread_create(&th, NULL, producer, q), 0);
    uint32_t want = 0;
    int bad = 0;
    while ((p = squeue_pop(q))) {
        for (size_t off = 0; off + 4 <= p->len; off += 4) {
            uint32_t v;
            memcpy(&v, p->buf + off, sizeof v);
            bad += v != want;
            want++;
        }
        squeue_release(q, p);
    }
    pthread_join(th, NULL);
    CHECK_INT(want, NITEMS);
    CHECK_INT(bad, 0);
    squeue_free(q);
    return check_done("squeue");
}
