/* common/: the bounded batch queue between the sampling thread and its
 * consumer (contract in common/squeue.h). */
#include "common/squeue.h"

#include <pthread.h>
#include <stdlib.h>

struct sample_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct batch *free_list, *full_head, *full_tail;
    struct batch *all;
    size_t nbatches;
    int closed;
};

struct sample_queue *squeue_new(size_t nbatches, size_t batch_bytes)
{
    struct sample_queue *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->all = calloc(nbatches, sizeof *q->all);
    if (!q->all) {
        free(q);
        return NULL;
    }
    q->nbatches = nbatches;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    for (size_t i = 0; i < nbatches; i++) {
        struct batch *b = &q->all[i];
        b->buf = malloc(batch_bytes);
        if (!b->buf) {
            squeue_free(q);
            return NULL;
        }
        b->cap = batch_bytes;
        b->next = q->free_list;
        q->free_list = b;
    }
    return q;
}

void squeue_free(struct sample_queue *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->nbatches; i++)
        free(q->all[i].buf);
    free(q->all);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q);
}


struct batch *squeue_get_free(struct sample_queue *q)
{
    pthread_mutex_lock(&q->mu);
    struct batch *b = q->free_list;
    if (b) {
        q->free_list = b->next;
        b->next = NULL;
        b->len = 0;
    }
    pthread_mutex_unlock(&q->mu);
    return b;
}

void squeue_push(struct sample_queue *q, struct batch *b)
{
    pthread_mutex_lock(&q->mu);
    b->next = NULL;
    if (q->full_tail)
        q->full_tail->next = b;
    else
        q->full_head = b;
    q->full_tail = b;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

void squeue_close(struct sample_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
}

struct batch *squeue_pop(struct sample_queue *q)
{
    pthread_mutex_lock(&q->mu);
    while (!q->full_head && !q->closed)
        pthread_cond_wait(&q->cv, &q->mu);
    struct batch *b = q->full_head;
    if (b) {
        q->full_head = b->next;
        if (!q->full_head)
            q->full_tail = NULL;
    }
    pthread_mutex_unlock(&q->mu);
    return b;
}

void squeue_release(struct sample_queue *q, struct batch *b)
{
    pthread_mutex_lock(&q->mu);
    b->next = q->free_list;
    q->free_list = b;
    pthread_mutex_unlock(&q->mu);
}

