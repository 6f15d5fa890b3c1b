#include "collector/ingest.h"

#include "spans/assemble.h"
#include "collector/forward.h"
#include "common/err.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* At most this many spans per write transaction (more when one request has
 * more): commits stay frequent, readers see new spans soon. */
#define TXN_SPANS 16384

/* The longest the writer waits for requests that are being decoded to
 * join a transaction. */
#define LINGER_US 2000

/* one submitted request */
struct qnode {
    struct qnode *next;
    struct span_batch b;
    uint64_t seq;
    ingest_done_fn done; /* NULL: nobody waits */
    void *arg;
};

struct ingest {
    struct span_store *st;
    struct ingest_opts o;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv, done_cv;
    struct qnode *head, **tail; /* FIFO of submitted requests */
    size_t queued;
    size_t incoming; /* requests announced by ingest_expect, not yet submitted */
    uint64_t submitted_seq, stored_seq;
    int stop;
    struct ingest_stats stats;
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Record skew_us on the stored spans of traces that changed since the last
 * pass: assemble each (as readers do) and write every node's offset. Runs
 * only when the writer has been idle for 250 ms, at most once a second, 500
 * traces a pass, and stops as soon as spans are waiting: under sustained
 * load the column lags and readers still compute it. */
static void record_skew(struct ingest *in, int64_t *since)
{
    char (*ids)[33] = NULL;
    size_t n = 0;
    int64_t started = now_us(), last = 0;
    if (span_store_changed(in->st, *since, 500, &ids, &n, &last, NULL, 0) || !n) {
        free(ids);
        if (!n)
            *since = started;
        return;
    }
    if (span_store_begin(in->st, NULL, 0)) {
        free(ids);
        return;
    }
    size_t i;
    for (i = 0; i < n; i++) {
        if (__atomic_load_n(&in->queued, __ATOMIC_RELAXED))
            break; /* spans are waiting: they come first */
        struct trace_view v;
        if (!trace_load(in->st, ids[i], in->o.max_skew_us, &v, NULL, 0)) {
            for (size_t k = 0; k < v.nnodes; k++)
                span_store_set_skew(in->st, ids[i], v.nodes[k].node, v.nodes[k].skew_us, NULL, 0);
            trace_view_fini(&v);
        }
    }
    span_store_commit(in->st, NULL, 0);
    /* a full pass may have left traces behind: continue from there next time
     * (an interrupted one starts over: recording a skew again changes nothing) */
    if (i == n)
        *since = n < 500 ? started : last;
    free(ids);
}

static void *writer(void *arg)
{
    struct ingest *in = arg;
    struct span_batch work;
    span_batch_init(&work);
    int64_t last_expire = 0, last_skew = 0, skew_since = 0;
    char err[256];
    pthread_mutex_lock(&in->mu);
    for (;;) {
        while (!in->head && !in->stop) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 250000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            if (pthread_cond_timedwait(&in->cv, &in->mu, &ts) == ETIMEDOUT && !in->head && !in->stop) {
                /* idle for a while: housekeeping that must not compete with ingest */
                int64_t t = now_us();
                pthread_mutex_unlock(&in->mu);
                size_t expired = 0;
                if (in->o.retention_us && t - last_expire > 1000000) {
                    last_expire = t;
                    span_store_expire(in->st, t - in->o.retention_us, &expired, NULL, 0);
                }
                if (t - last_skew > 1000000) {
                    last_skew = t;
                    record_skew(in, &skew_since);
                }
                pthread_mutex_lock(&in->mu);
                in->stats.expired_traces += expired;
            }
        }
        if (!in->head && in->stop)
            break;
        /* group commit: requests being decoded right now join this
         * transaction (their senders wait for a commit anyway; one commit
         * for many is cheaper than one each), for at most LINGER_US */
        if (in->incoming && in->queued < TXN_SPANS && !in->stop) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += LINGER_US * 1000;
            if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
            }
            while (in->incoming && in->queued < TXN_SPANS && !in->stop &&
                   pthread_cond_timedwait(&in->cv, &in->mu, &until) != ETIMEDOUT)
                ;
        }
        /* take whole requests, up to TXN_SPANS spans */
        struct qnode *taken = in->head, *last = NULL;
        size_t n = 0;
        while (in->head && (!n || n + in->head->b.n <= TXN_SPANS)) {
            last = in->head;
            n += last->b.n;
            in->head = last->next;
        }
        if (!in->head)
            in->tail = &in->head;
        last->next = NULL;
        __atomic_store_n(&in->queued, in->queued - n, __ATOMIC_RELAXED);
        uint64_t seq = last->seq;
        pthread_mutex_unlock(&in->mu);

        int mrc = 0;
        for (struct qnode *q = taken; q; q = q->next) {
            if (!mrc)
                mrc = span_batch_move(&work, &q->b);
            span_batch_fini(&q->b);
        }
        size_t inserted = 0;
        int rc = mrc ? se_fail(err, sizeof err, mrc, "out of memory")
             : work.n ? span_store_insert(in->st, work.spans, work.n, now_us(), &inserted, err, sizeof err) : 0;
        /* committed (or rolled back): now, and only now, the senders hear of it */
        for (struct qnode *q = taken, *next; q; q = next) {
            next = q->next;
            if (q->done)
                q->done(q->arg, rc);
            free(q);
        }
        int64_t t = now_us();
        size_t expired = 0;
        if (in->o.retention_us && t - last_expire > 1000000) {
            last_expire = t;
            span_store_expire(in->st, t - in->o.retention_us, &expired, NULL, 0);
        }
        /* what the store refused was refused to the senders too: they retry */
        if (in->o.fwd && work.n && !rc)
            forwarder_submit(in->o.fwd, &work);
        span_batch_fini(&work);

        pthread_mutex_lock(&in->mu);
        if (rc) {
            in->stats.store_errors++;
            in->stats.unstored += n;
            snprintf(in->stats.last_error, sizeof in->stats.last_error, "%s", err);
        }
        in->stats.stored += inserted;
        in->stats.duplicates += rc ? 0 : n - inserted;
        in->stats.expired_traces += expired;
        in->stored_seq = seq;
        pthread_cond_broadcast(&in->done_cv);
    }
    pthread_mutex_unlock(&in->mu);
    return NULL;
}

int ingest_new(struct span_store *st, const struct ingest_opts *o, struct ingest **out, char *err,
               size_t errlen)
{
    struct ingest *in = calloc(1, sizeof *in);
    if (!in)
        return se_fail(err, errlen, -ENOMEM, "out of memory");
    in->st = st;
    in->o = *o;
    if (!in->o.max_queued)
        in->o.max_queued = 200000;
    pthread_mutex_init(&in->mu, NULL);
    pthread_cond_init(&in->cv, NULL);
    pthread_cond_init(&in->done_cv, NULL);
    in->tail = &in->head;
    int rc = pthread_create(&in->thread, NULL, writer, in);
    if (rc) {
        free(in);
        return se_fail(err, errlen, -rc, "cannot start the writer thread");
    }
    *out = in;
    return 0;
}

int ingest_submit(struct ingest *in, struct span_batch *b, ingest_done_fn done, void *arg)
{
    /* row preparation on the caller's thread: the writer only binds */
    for (size_t i = 0; i < b->n; i++)
        b->spans[i].hash = span_content_hash(&b->spans[i]);
    struct qnode *q = malloc(sizeof *q);
    if (!q)
        return -ENOMEM;
    pthread_mutex_lock(&in->mu);
    if (in->incoming)
        in->incoming--;
    if (in->queued && in->queued + b->n > in->o.max_queued) {
        in->stats.refused += b->n;
        pthread_mutex_unlock(&in->mu);
        free(q);
        return -EAGAIN;
    }
    size_t n = b->n;
    q->b = *b;
    span_batch_init(b);
    q->next = NULL;
    q->done = done;
    q->arg = arg;
    q->seq = ++in->submitted_seq;
    *in->tail = q;
    in->tail = &q->next;
    __atomic_store_n(&in->queued, in->queued + n, __ATOMIC_RELAXED);
    in->stats.received += n;
    pthread_cond_signal(&in->cv);
    pthread_mutex_unlock(&in->mu);
    return 0;
}

void ingest_count_rejected(struct ingest *in, size_t n)
{
    pthread_mutex_lock(&in->mu);
    in->stats.rejected += n;
    pthread_mutex_unlock(&in->mu);
}

void ingest_expect(struct ingest *in, int delta)
{
    pthread_mutex_lock(&in->mu);
    if (delta > 0)
        in->incoming += (size_t)delta;
    else if (in->incoming >= (size_t)-delta)
        in->incoming -= (size_t)-delta;
    else
        in->incoming = 0;
    if (!in->incoming)
        pthread_cond_signal(&in->cv);
    pthread_mutex_unlock(&in->mu);
}

int ingest_full(struct ingest *in)
{
    return __atomic_load_n(&in->queued, __ATOMIC_RELAXED) >= in->o.max_queued;
}

void ingest_flush(struct ingest *in)
{
    pthread_mutex_lock(&in->mu);
    uint64_t want = in->submitted_seq;
    while (in->stored_seq < want)
        pthread_cond_wait(&in->done_cv, &in->mu);
    pthread_mutex_unlock(&in->mu);
}

void ingest_get_stats(struct ingest *in, struct ingest_stats *s)
{
    pthread_mutex_lock(&in->mu);
    *s = in->stats;
    pthread_mutex_unlock(&in->mu);
}

void ingest_free(struct ingest *in)
{
    if (!in)
        return;
    pthread_mutex_lock(&in->mu);
    in->stop = 1;
    pthread_cond_signal(&in->cv);
    pthread_mutex_unlock(&in->mu);
    pthread_join(in->thread, NULL);
    pthread_cond_destroy(&in->cv);
    pthread_cond_destroy(&in->done_cv);
    pthread_mutex_destroy(&in->mu);
    free(in);
}
