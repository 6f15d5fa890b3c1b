#include "collector/forward.h"

#include "common/curl_dl.h"
#include "common/err.h"
#include "spans/otlp_encode.h" /* the trace model's OTLP JSON, not formats/ (see there) */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct forwarder {
    struct forwarder_opts o;
    char *url, *auth;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct span_batch queue;
    int stop;
    int64_t deadline_us; /* while stopping: give up after this */
    struct forwarder_stats stats;
};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static size_t sink(char *p, size_t sz, size_t n, void *u)
{
    (void)p;
    (void)u;
    return sz * n;
}

/* 0 sent, 1 retryable failure, -1 permanent failure */
static int post(struct forwarder *f, CURL *c, const char *body, size_t len)
{
    const struct curl_dl *cu = curl_dl(); /* loaded: c was made by it */
    struct curl_slist *h = cu->slist_append(NULL, "Content-Type: application/json");
    if (f->auth)
        h = cu->slist_append(h, f->auth);
    cu->easy_setopt(c, CURLOPT_URL, f->url);
    cu->easy_setopt(c, CURLOPT_HTTPHEADER, h);
    cu->easy_setopt(c, CURLOPT_POSTFIELDS, body);
    cu->easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    cu->easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    cu->easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    cu->easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
    cu->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = cu->easy_perform(c);
    long code = 0;
    cu->easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    cu->slist_free_all(h);
    if (cc != CURLE_OK)
        return 1;
    if (code >= 200 && code < 300)
        return 0;
    if (code == 429 || code == 502 || code == 503 || code == 504 || code == 408)
        return 1;
    return -1;
}

static void *sender(void *arg)
{
    struct forwarder *f = arg;
    const struct curl_dl *cu = curl_dl();
    CURL *c = cu ? cu->easy_init() : NULL; /* none: every batch fails and is retried, then dropped */
    struct span_batch work;
    span_batch_init(&work);
    size_t off = 0; /* first unsent span of work */
    int64_t backoff = 0;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        if (off == work.n) {
            span_batch_fini(&work);
            off = 0;
            /* wait for a batch to fill or linger to expire */
            int64_t until = mono_us() + f->o.linger_us;
            while (!f->stop && f->queue.n < f->o.batch_spans) {
                int64_t left = until - mono_us();
                if (left <= 0 && f->queue.n)
                    break;
                if (left <= 0)
                    left = f->o.linger_us;
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += (long)(left % 1000000) * 1000;
                ts.tv_sec += left / 1000000 + ts.tv_nsec / 1000000000;
                ts.tv_nsec %= 1000000000;
                pthread_cond_timedwait(&f->cv, &f->mu, &ts);
            }
            if (!f->queue.n && f->stop)
                break;
            work = f->queue;
            span_batch_init(&f->queue);
        }
        if (f->stop && mono_us() > f->deadline_us) {
            f->stats.dropped += work.n - off;
            break;
        }
        pthread_mutex_unlock(&f->mu);
        size_t n = work.n - off < f->o.batch_spans ? work.n - off : f->o.batch_spans;
        char *body = NULL;
        size_t len = 0;
        int rc = fmt_otlp_json(work.spans + off, n, &body, &len) ? -1 : (c ? post(f, c, body, len) : 1);
        free(body);
        pthread_mutex_lock(&f->mu);
        f->stats.requests++;
        if (rc == 0 || rc < 0) {
            if (rc == 0)
                f->stats.sent += n;
            else
                f->stats.dropped += n;
            off += n;
            backoff = 0;
            continue;
        }
        f->stats.retries++;
        backoff = backoff ? backoff * 2 : 100000;
        if (backoff > f->o.max_backoff_us)
            backoff = f->o.max_backoff_us;
        int64_t until = mono_us() + backoff;
        while (!f->stop || mono_us() < f->deadline_us) {
            int64_t left = until - mono_us();
            if (left <= 0)
                break;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += (long)(left % 1000000) * 1000;
            ts.tv_sec += left / 1000000 + ts.tv_nsec / 1000000000;
            ts.tv_nsec %= 1000000000;
            pthread_cond_timedwait(&f->cv, &f->mu, &ts);
            if (f->stop && mono_us() > f->deadline_us)
                break;
        }
        /* bound what is held while upstream is down: drop the oldest queued */
        if (f->queue.n > f->o.max_queued) {
            f->stats.dropped += f->queue.n;
            span_batch_fini(&f->queue);
        }
    }
    pthread_mutex_unlock(&f->mu);
    span_batch_fini(&work);
    if (c)
        cu->easy_cleanup(c);
    return NULL;
}

int forwarder_new(const struct forwarder_opts *o, struct forwarder **out, char *err, size_t errlen)
{
    *out = NULL;
    if (strncmp(o->url, "http://", 7) && strncmp(o->url, "https://", 8))
        return se_fail(err, errlen, SE_USAGE, "--forward needs an http:// or https:// URL, not '%s'", o->url);
    if (!curl_dl()) /* loaded here, before the sender thread */
        return se_fail(err, errlen, -ENOENT, "--forward needs libcurl: libcurl.so.4 cannot be loaded");
    struct forwarder *f = calloc(1, sizeof *f);
    if (!f)
        return se_fail(err, errlen, -ENOMEM, "out of memory");
    f->o = *o;
    if (!f->o.batch_spans)
        f->o.batch_spans = 1000;
    if (!f->o.linger_us)
        f->o.linger_us = 200000;
    if (!f->o.max_queued)
        f->o.max_queued = 200000;
    if (!f->o.max_backoff_us)
        f->o.max_backoff_us = 30000000;
    /* a bare host:port gets the OTLP path */
    const char *path = strchr(strstr(o->url, "://") + 3, '/');
    size_t ul = strlen(o->url) + 16;
    f->url = malloc(ul);
    if (f->url)
        snprintf(f->url, ul, "%s%s", o->url, path ? "" : "/v1/traces");
    if (o->token && *o->token) {
        size_t al = strlen(o->token) + 32;
        f->auth = malloc(al);
        if (f->auth)
            snprintf(f->auth, al, "Authorization: Bearer %s", o->token);
    }
    f->o.url = f->url;
    f->o.token = NULL;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    span_batch_init(&f->queue);
    int rc;
    if (!f->url || (o->token && *o->token && !f->auth)) {
        rc = se_fail(err, errlen, -ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = pthread_create(&f->thread, NULL, sender, f))) {
        rc = se_fail(err, errlen, -rc, "cannot start the forwarding thread");
        goto fail;
    }
    *out = f;
    return 0;
fail:
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f->url);
    free(f->auth);
    free(f);
    return rc;
}

void forwarder_submit(struct forwarder *f, struct span_batch *b)
{
    pthread_mutex_lock(&f->mu);
    if (f->queue.n + b->n > f->o.max_queued) {
        f->stats.dropped += b->n;
        span_batch_fini(b);
    } else if (span_batch_move(&f->queue, b)) {
        f->stats.dropped += b->n;
        span_batch_fini(b);
    } else if (f->queue.n >= f->o.batch_spans) {
        pthread_cond_signal(&f->cv);
    }
    pthread_mutex_unlock(&f->mu);
}

void forwarder_get_stats(struct forwarder *f, struct forwarder_stats *s)
{
    pthread_mutex_lock(&f->mu);
    *s = f->stats;
    pthread_mutex_unlock(&f->mu);
}

void forwarder_free(struct forwarder *f, int grace_ms, struct forwarder_stats *final)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    f->stop = 1;
    f->deadline_us = mono_us() + (int64_t)grace_ms * 1000;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    f->stats.dropped += f->queue.n;
    if (final)
        *final = f->stats;
    span_batch_fini(&f->queue);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f->url);
    free(f->auth);
    free(f);
}
