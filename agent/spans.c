/* The agent's spans: see agent/spans.h. */
#include "agent/spans.h"

#include "agent/profiles.h"
#include "agent/span_json.h"

#include "common/clock.h"
#include "common/curl_dl.h"
#include "common/err.h"
#include "spans/span.h"
#include "store/spans.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 4096          /* threads whose current span is followed */
#define GSLOTS 8192         /* green threads with a span of their own at once, at most */
#define GPROBE 64           /* entries a green thread's key is looked for in */
#define BATCH_MAX 512       /* spans per request */
#define WAKE_MS 200         /* the exporter's longest sleep */
#define TRIES 4             /* attempts per batch; backoff 100, 200, 400 ms */
#define POST_TIMEOUT_MS 3000

/* ---- per-thread current span ---- */

struct slot {
    int32_t tid;   /* 0 = free; claimed once by CAS */
    uint32_t span;
};
static struct slot slots[SLOTS];
static __thread struct slot *my_slot;
static __thread int my_slot_none; /* the table was full for this thread */
static uint64_t green_full;       /* green spans not followed: no room near their key */

static struct slot *claim_slot(void)
{
    int32_t tid = (int32_t)syscall(SYS_gettid);
    uint32_t h = (uint32_t)tid * 2654435761u;
    for (unsigned i = 0; i < SLOTS; i++) {
        struct slot *s = &slots[(h + i) % SLOTS];
        int32_t cur = __atomic_load_n(&s->tid, __ATOMIC_ACQUIRE);
        if (cur == tid)
            return s; /* a dead thread's slot, its tid reused */
        if (cur == 0) {
            int32_t zero = 0;
            if (__atomic_compare_exchange_n(&s->tid, &zero, tid, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                return s;
            if (zero == tid)
                return s;
        }
    }
    return NULL;
}

void sonde_span_current(uint32_t no)
{
    struct slot *s = my_slot;
    if (!s) {
        if (my_slot_none)
            return;
        s = my_slot = claim_slot();
        if (!s) {
            my_slot_none = 1;
            return;
        }
    }
    __atomic_store_n(&s->span, no, __ATOMIC_RELAXED);
}

/* ---- per green thread (asyncio task, greenlet) current span ----
 * Keyed by the task's or greenlet's object address, the key the sampler
 * knows its lanes by. Writers (span enter and exit in a green thread) are
 * serialized by a spin lock (they run under the GIL: it is uncontended);
 * the sampler reads without it. An entry's key is set once it is claimed
 * and never cleared (a probe sequence never breaks); an entry whose span
 * is 0 (its green thread left its spans) may be claimed by another key.
 * A key is looked for within GPROBE entries of its hash. */

struct gslot {
    uint64_t key;
    uint32_t span;
};
static struct gslot gslots[GSLOTS];
static int glock;

static uint32_t ghash(uint64_t key)
{
    return (uint32_t)((key >> 4) * 0x9E3779B97F4A7C15ull >> 40);
}

static void green_set(uint64_t key, uint32_t no)
{
    while (__atomic_exchange_n(&glock, 1, __ATOMIC_ACQUIRE))
        ;
    uint32_t h = ghash(key);
    struct gslot *mine = NULL, *spare = NULL;
    for (unsigned i = 0; i < GPROBE; i++) {
        struct gslot *g = &gslots[(h + i) % GSLOTS];
        uint64_t k = __atomic_load_n(&g->key, __ATOMIC_RELAXED);
        if (k == key) {
            mine = g;
            break;
        }
        if (!spare && (k == 0 || __atomic_load_n(&g->span, __ATOMIC_RELAXED) == 0))
            spare = g;
        if (k == 0)
            break;
    }
    if (mine)
        __atomic_store_n(&mine->span, no, __ATOMIC_RELEASE);
    else if (no && spare) {
        /* its span is 0 meanwhile: a reader finding the key early falls
         * back to the thread's span, as it did before */
        __atomic_store_n(&spare->key, key, __ATOMIC_RELEASE);
        __atomic_store_n(&spare->span, no, __ATOMIC_RELEASE);
    } else if (no)
        __atomic_add_fetch(&green_full, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&glock, 0, __ATOMIC_RELEASE);
}

static uint32_t green_get(uint64_t key)
{
    uint32_t h = ghash(key);
    for (unsigned i = 0; i < GPROBE; i++) {
        const struct gslot *g = &gslots[(h + i) % GSLOTS];
        uint64_t k = __atomic_load_n(&g->key, __ATOMIC_ACQUIRE);
        if (k == key)
            return __atomic_load_n(&g->span, __ATOMIC_ACQUIRE);
        if (k == 0)
            return 0;
    }
    return 0;
}

void sonde_span_at(uint32_t no, uint32_t key_lo, uint32_t key_hi)
{
    uint64_t key = (uint64_t)key_hi << 32 | key_lo;
    if (key)
        green_set(key, no);
    else
        sonde_span_current(no);
}

uint32_t agent_span_of(pid_t tid, uint64_t green, void *ctx)
{
    (void)ctx;
    if (green) {
        uint32_t no = green_get(green);
        if (no)
            return no;
    }
    uint32_t h = (uint32_t)tid * 2654435761u;
    for (unsigned i = 0; i < SLOTS; i++) {
        const struct slot *s = &slots[(h + i) % SLOTS];
        int32_t cur = __atomic_load_n(&s->tid, __ATOMIC_ACQUIRE);
        if (cur == tid)
            return __atomic_load_n(&s->span, __ATOMIC_RELAXED);
        if (cur == 0)
            return 0;
    }
    return 0;
}

/* ---- the queue and the exporter ---- */

struct rec {
    size_t len;
    int64_t queued_ns; /* monotonic, when it was queued */
    unsigned char data[];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER, idle = PTHREAD_COND_INITIALIZER;
static struct rec **queue; /* ring of qcap */
static size_t qcap, qhead, qlen;
static int busy;           /* the exporter holds a batch taken from the queue */
static int started, stopping, keeping;
static pthread_t exporter;
static uint64_t stats[SPST_N];
static char *endpoint, *service, *host, *resource;
static struct span_batch kept;
static int kept_init;
static int64_t flush_deadline_ns; /* 0: none; else retries stop at this monotonic time */

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

int sonde_spans_config(const char *ep, const char *svc, const char *hst, const char *res)
{
    char *e = NULL, *sv = dup_or_null(svc), *h = dup_or_null(hst), *r = NULL;
    if (res && *res) {
        json_t *j = json_loads(res, 0, NULL);
        int ok = json_is_object(j);
        json_decref(j);
        if (!ok) {
            free(sv);
            free(h);
            return -EINVAL;
        }
        r = strdup(res);
    }
    if (ep && *ep) {
        size_t n = strlen(ep);
        const char *suf = "/v1/traces";
        int has = n >= strlen(suf) && strcmp(ep + n - strlen(suf), suf) == 0;
        e = malloc(n + 12);
        if (e)
            snprintf(e, n + 12, "%.*s%s", (int)(n && ep[n - 1] == '/' && !has ? n - 1 : n), ep, has ? "" : suf);
    }
    if ((ep && *ep && !e) || (svc && *svc && !sv) || (hst && *hst && !h) || (res && *res && !r)) {
        free(e);
        free(sv);
        free(h);
        free(r);
        return -ENOMEM;
    }
    pthread_mutex_lock(&mu);
    free(endpoint);
    free(service);
    free(host);
    free(resource);
    endpoint = e;
    service = sv;
    host = h;
    resource = r;
    pthread_mutex_unlock(&mu);
    /* libcurl (and the TLS library it brings) is loaded now, on the
     * program's thread, never first by the exporter at exit: loaded there,
     * while the program's exit handlers ran, OpenSSL's global lock was
     * found freed and the program died of SIGSEGV in curl_global_init (a
     * process whose only span ended right before it exited: 1 run in about
     * 100). Loaded before the exporter's exit handler is registered, the
     * handlers its libraries register run after ours, once the queue is
     * flushed. */
    if (e)
        (void)curl_dl();
    return 0;
}

int agent_span_decode(const void *rec, size_t len, const char *svc, const char *node, const char *extra,
                      struct span_batch *out, int with_no)
{
    struct span_hdr h;
    if (agent_span_header(rec, len, &h))
        return -EINVAL;
    uint64_t th = h.trace_hi, tl = h.trace_lo, sid = h.span_id, pid = h.parent_id;
    int64_t st = h.start_ns, en = h.end_ns;
    uint32_t no = h.no;
    unsigned kind = h.kind, status = h.status;
    size_t nlen = h.name_len, alen = h.attrs_len;
    json_t *attrs = alen ? json_loadb(h.attrs, alen, JSON_REJECT_DUPLICATES, NULL) : json_object();
    if (!json_is_object(attrs)) {
        json_decref(attrs);
        return -EINVAL;
    }
    if (extra) {
        json_t *x = json_loads(extra, 0, NULL);
        if (json_is_object(x))
            json_object_update_missing(attrs, x);
        json_decref(x);
    }
    if (with_no && no)
        json_object_set_new(attrs, "sonde.span_no", json_integer(no));
    char *atext = json_dumps(attrs, JSON_COMPACT);
    json_decref(attrs);
    struct span *s = atext ? span_batch_add(out) : NULL;
    if (!s) {
        free(atext);
        return -ENOMEM;
    }
    snprintf(s->trace_id, sizeof s->trace_id, "%016llx%016llx", (unsigned long long)th, (unsigned long long)tl);
    snprintf(s->span_id, sizeof s->span_id, "%016llx", (unsigned long long)sid);
    if (pid)
        snprintf(s->parent_id, sizeof s->parent_id, "%016llx", (unsigned long long)pid);
    s->name = span_batch_strdup(out, h.name, nlen);
    s->service = span_batch_strdup(out, svc ? svc : "", (size_t)-1);
    s->node = span_batch_strdup(out, node ? node : "", (size_t)-1);
    s->attrs = span_batch_strdup(out, atext, (size_t)-1);
    free(atext);
    s->kind = (int)kind;
    s->status = (int)status;
    s->start_us = st / 1000;
    s->end_us = en / 1000;
    if (!s->name || !s->service || !s->node || !s->attrs) {
        out->n--;
        return -ENOMEM;
    }
    return 0;
}

static size_t sink(char *p, size_t sz, size_t n, void *u)
{
    (void)p;
    (void)u;
    return sz * n;
}

/* Whether the samples of the queued span r are in (or waiting longer
 * would pass PROF_WAIT_MS). */
static int profile_ready(const struct rec *r)
{
    struct span_hdr h;
    return agent_span_header(r->data, r->len, &h) || agent_profiles_ready(h.end_ns) ||
           mono_ns() - r->queued_ns >= PROF_WAIT_MS * 1000000LL;
}

/* The profile of the queued span r as the text of a JSON object of
 * attributes (agent_profiles_take), or NULL (none, or r is malformed: the
 * encoder counts that). */
static char *take_profile(const struct rec *r)
{
    struct span_hdr h;
    if (agent_span_header(r->data, r->len, &h))
        return NULL;
    static const char hx[] = "0123456789abcdef";
    char tid[33], sid[17];
    for (int i = 0; i < 16; i++) {
        tid[i] = hx[(h.trace_hi >> (60 - 4 * i)) & 15];
        tid[16 + i] = hx[(h.trace_lo >> (60 - 4 * i)) & 15];
        sid[i] = hx[(h.span_id >> (60 - 4 * i)) & 15];
    }
    tid[32] = sid[16] = 0;
    return agent_profiles_take(h.no, tid, sid, h.end_ns - h.start_ns);
}

/* libcurl is loaded at the first export (common/curl_dl.h): a program
 * that exports no spans never maps it. Only the exporter thread uses it. A
 * handle, or NULL (no libcurl: said once on stderr; the spans are counted
 * dropped). */
static CURL *curl_open(void)
{
    const struct curl_dl *cu = curl_dl();
    if (!cu) {
        static const char msg[] = "sonde: agent: cannot load libcurl.so.4: spans are not exported\n";
        if (write(2, msg, sizeof msg - 1) < 0)
            return NULL;
        return NULL;
    }
    return cu->easy_init();
}

/* Post one body; 0 accepted, 1 worth retrying, -1 refused for good. */
static int post(CURL *c, const char *url, const char *body, size_t len, long timeout_ms)
{
    const struct curl_dl *cu = curl_dl(); /* loaded: c was made by it */
    struct curl_slist *h = cu->slist_append(NULL, "Content-Type: application/json");
    cu->easy_reset(c);
    cu->easy_setopt(c, CURLOPT_URL, url);
    cu->easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    cu->easy_setopt(c, CURLOPT_HTTPHEADER, h);
    cu->easy_setopt(c, CURLOPT_POSTFIELDS, body);
    cu->easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    cu->easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    cu->easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 1000 ? timeout_ms : 1000L);
    cu->easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    CURLcode rc = cu->easy_perform(c);
    long code = 0;
    cu->easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    cu->slist_free_all(h);
    if (rc != CURLE_OK)
        return 1;
    if (code >= 200 && code < 300)
        return 0;
    return code == 429 || code >= 500 || code == 408 ? 1 : -1;
}

/* Export a request body with retries; 0 or -1 (dropped). Called without
 * mu. */
static int export_body(CURL *c, const char *url, const char *body, size_t len)
{
    int rc = -1;
    long backoff = 100;
    for (int t = 0; t < TRIES; t++) {
        long tmo = POST_TIMEOUT_MS;
        pthread_mutex_lock(&mu);
        int64_t dl = flush_deadline_ns;
        pthread_mutex_unlock(&mu);
        if (dl) {
            int64_t left = (dl - mono_ns()) / 1000000;
            if (left <= 0)
                break;
            if (left < tmo)
                tmo = left;
        }
        int r = c ? post(c, url, body, len, tmo) : -1;
        if (r <= 0) {
            rc = r;
            break;
        }
        if (t + 1 < TRIES) {
            struct timespec d = { backoff / 1000, backoff % 1000 * 1000000 };
            if (dl && mono_ns() + backoff * 1000000 > dl)
                break;
            nanosleep(&d, NULL);
            backoff *= 2;
        }
    }
    return rc;
}

static void *exporter_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "sonde-agent");
    CURL *c = NULL;
    int curl_tried = 0;
    struct rec *take[BATCH_MAX];
    pthread_mutex_lock(&mu);
    for (;;) {
        if (!qlen) {
            pthread_cond_broadcast(&idle);
            if (stopping)
                break;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += WAKE_MS * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&wake, &mu, &ts);
            continue;
        }
        size_t n = 0;
        while (qlen && n < BATCH_MAX) {
            /* a span's profile needs the samples up to its end: wait for
             * the recording's writer, a bounded time (agent/profiles.h),
             * and never while the queue is a quarter full (the span goes with
             * the samples that are in) */
            if (!stopping && !flush_deadline_ns && qlen < qcap / 4 && !profile_ready(queue[qhead]))
                break;
            take[n++] = queue[qhead];
            qhead = (qhead + 1) % qcap;
            qlen--;
        }
        if (!n) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 20 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&wake, &mu, &ts);
            continue;
        }
        busy = 1;
        char *url = endpoint ? strdup(endpoint) : NULL;
        char *svc = strdup(service ? service : "unknown_service");
        char *node = strdup(host ? host : "");
        char *extra = resource ? strdup(resource) : NULL;
        int keep = keeping;
        size_t kept_n = kept_init ? kept.n : 0;
        pthread_mutex_unlock(&mu);

        /* the export body is written straight from the packed spans (one
         * pass, attributes parsed only when there are some); spans for the
         * recording are decoded into a batch of this thread's and moved
         * into `kept` under the lock: a recording may be saved
         * (agent_spans_save takes `kept`) meanwhile */
        struct span_batch kb;
        span_batch_init(&kb);
        uint64_t bad = 0, nokeep = 0;
        const void *recs[BATCH_MAX];
        size_t lens[BATCH_MAX], nb = 0;
        char *prof[BATCH_MAX];
        for (size_t i = 0; i < n; i++) {
            recs[i] = take[i]->data;
            lens[i] = take[i]->len;
            prof[i] = take_profile(take[i]);
        }
        char *body = NULL;
        size_t blen = 0;
        int erc = !svc || !node ||
                  agent_spans_otlp_json(recs, lens, (const char *const *)prof, n, svc, node, extra, &body,
                                        &blen, &nb, &bad);
        for (size_t i = 0; i < n; i++)
            free(prof[i]);
        if (erc) {
            bad = n; /* out of memory: none can go */
            nb = 0;
        }
        for (size_t i = 0; i < n; i++) {
            if (keep && body) {
                /* a malformed one was counted as such above */
                int r = kept_n + kb.n >= SPANS_KEEP_MAX
                            ? -ENOSPC
                            : agent_span_decode(take[i]->data, take[i]->len, svc, node, extra, &kb, 1);
                if (r && r != -EINVAL)
                    nokeep++;
            }
            free(take[i]);
        }
        int exported = -1;
        if (url && nb && !curl_tried) {
            curl_tried = 1;
            c = curl_open();
        }
        if (url && nb)
            exported = export_body(c, url, body, blen);
        free(body);
        int had_url = url != NULL;
        free(url);
        free(svc);
        free(node);
        free(extra);

        pthread_mutex_lock(&mu);
        if (kb.n && keeping && kept_init && span_batch_move(&kept, &kb))
            nokeep += kb.n;
        span_batch_fini(&kb);
        busy = 0;
        stats[SPST_DROP_QUEUE] += bad;
        stats[SPST_DROP_KEEP] += nokeep;
        if (exported == 0)
            stats[SPST_EXPORTED] += nb;
        else if (had_url)
            stats[SPST_DROP_EXPORT] += nb;
    }
    pthread_mutex_unlock(&mu);
    if (c)
        curl_dl()->easy_cleanup(c);
    return NULL;
}

/* At exit (after the program's Python code is done): export what is
 * queued within the bound, then stop the exporter. */
static void spans_at_exit(void)
{
    sonde_spans_flush(SPANS_EXIT_FLUSH_MS / 1000.0);
    pthread_mutex_lock(&mu);
    int was = started;
    stopping = 1;
    flush_deadline_ns = mono_ns(); /* no retry from now on */
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&mu);
    if (was)
        pthread_join(exporter, NULL);
    uint64_t st[SPST_N];
    sonde_spans_stats(st);
    uint64_t lost = st[SPST_DROP_QUEUE] + st[SPST_DROP_EXPORT];
    if (lost) {
        char line[200];
        int n = snprintf(line, sizeof line,
                         "sonde: agent: %llu of %llu spans dropped (%llu: queue full or malformed, %llu: export"
                         " failed)\n",
                         (unsigned long long)lost, (unsigned long long)st[SPST_ENDED],
                         (unsigned long long)st[SPST_DROP_QUEUE], (unsigned long long)st[SPST_DROP_EXPORT]);
        if (n > 0 && write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0)
            return;
    }
}

static void spans_atfork_child(void)
{
    pthread_mutex_t m0 = PTHREAD_MUTEX_INITIALIZER;
    glock = 0; /* the forking thread's tasks and greenlets keep their entries */
    pthread_cond_t c0 = PTHREAD_COND_INITIALIZER, c1 = PTHREAD_COND_INITIALIZER;
    mu = m0;
    wake = c0;
    idle = c1;
    /* the parent's queue and exporter stay the parent's; this thread's
     * slot was keyed by the parent's thread id */
    my_slot = NULL;
    my_slot_none = 0;
    queue = NULL;
    qcap = qhead = qlen = 0;
    busy = started = stopping = keeping = 0;
    kept_init = 0;
    memset(stats, 0, sizeof stats);
    span_batch_init(&kept);
}

/* Start the exporter; under mu. 0 or -errno. */
static int start_locked(void)
{
    if (started)
        return 0;
    if (stopping)
        return -ESHUTDOWN;
    const char *q = getenv("SONDE_SPANS_QUEUE");
    long cap = q && *q ? strtol(q, NULL, 10) : SPANS_QUEUE_MAX;
    if (cap < 1 || cap > 1 << 22)
        cap = SPANS_QUEUE_MAX;
    queue = calloc((size_t)cap, sizeof *queue);
    if (!queue)
        return -ENOMEM;
    qcap = (size_t)cap;
    if (!kept_init) {
        span_batch_init(&kept);
        kept_init = 1;
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&exporter, NULL, exporter_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        free(queue);
        queue = NULL;
        return -rc;
    }
    static int registered;
    if (!registered) {
        registered = 1;
        atexit(spans_at_exit);
        pthread_atfork(NULL, NULL, spans_atfork_child);
    }
    started = 1;
    return 0;
}

int sonde_span_end(const void *data, size_t len, uint32_t restore)
{
    return sonde_span_end_at(data, len, restore, 0, 0);
}

int sonde_span_end_at(const void *data, size_t len, uint32_t restore, uint32_t key_lo, uint32_t key_hi)
{
    sonde_span_at(restore, key_lo, key_hi);
    if (!data || len < SPAN_REC_HDR || len > (1u << 24)) {
        pthread_mutex_lock(&mu);
        stats[SPST_ENDED]++;
        stats[SPST_DROP_QUEUE]++;
        pthread_mutex_unlock(&mu);
        return -EINVAL;
    }
    struct rec *r = malloc(sizeof *r + len);
    if (r) {
        r->len = len;
        r->queued_ns = mono_ns();
        memcpy(r->data, data, len);
    }
    pthread_mutex_lock(&mu);
    stats[SPST_ENDED]++;
    int rc = r ? start_locked() : -ENOMEM;
    if (!rc && qlen == qcap)
        rc = -EAGAIN;
    if (rc) {
        stats[SPST_DROP_QUEUE]++;
        pthread_mutex_unlock(&mu);
        free(r);
        return rc;
    }
    queue[(qhead + qlen) % qcap] = r;
    qlen++;
    if (qlen == BATCH_MAX / 2 || qlen == qcap)
        pthread_cond_signal(&wake);
    pthread_mutex_unlock(&mu);
    return 0;
}

int sonde_spans_flush(double timeout_s)
{
    if (!(timeout_s >= 0))
        timeout_s = 0;
    int64_t dl = mono_ns() + (int64_t)(timeout_s * 1e9);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t rt = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + (int64_t)(timeout_s * 1e9);
    ts.tv_sec = rt / 1000000000;
    ts.tv_nsec = rt % 1000000000;
    pthread_mutex_lock(&mu);
    int rc = 0;
    if (started && !stopping) {
        if (!flush_deadline_ns || dl < flush_deadline_ns)
            flush_deadline_ns = dl;
        pthread_cond_signal(&wake);
        while (qlen || busy) {
            if (pthread_cond_timedwait(&idle, &mu, &ts) == ETIMEDOUT) {
                rc = -ETIMEDOUT;
                break;
            }
        }
        flush_deadline_ns = 0;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

void sonde_spans_stats(uint64_t *out)
{
    pthread_mutex_lock(&mu);
    memcpy(out, stats, sizeof stats);
    pthread_mutex_unlock(&mu);
    out[SPST_PROF_DROP] = agent_profiles_dropped();
}

void agent_spans_keep(void)
{
    pthread_mutex_lock(&mu);
    if (!kept_init) {
        span_batch_init(&kept);
        kept_init = 1;
    }
    keeping = 1;
    pthread_mutex_unlock(&mu);
}

int agent_spans_save(const char *path, char *err, size_t errlen)
{
    sonde_spans_flush(SPANS_EXIT_FLUSH_MS / 1000.0);
    pthread_mutex_lock(&mu);
    keeping = 0;
    struct span_batch mine;
    span_batch_init(&mine);
    if (kept_init)
        span_batch_move(&mine, &kept);
    uint64_t st[SPST_N];
    memcpy(st, stats, sizeof st);
    pthread_mutex_unlock(&mu);
    if (!mine.n && !st[SPST_ENDED]) {
        span_batch_fini(&mine);
        return 0;
    }
    struct span_store *ss = NULL;
    int rc = span_store_open(path, STORE_CREATE | STORE_NOSYNC, &ss, err, errlen);
    if (!rc) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        rc = span_store_insert(ss, mine.spans, mine.n, (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000, NULL,
                               err, errlen);
    }
    if (!rc) {
        char v[32];
        snprintf(v, sizeof v, "%llu", (unsigned long long)(st[SPST_DROP_QUEUE] + st[SPST_DROP_EXPORT]));
        rc = span_store_set_meta(ss, "spans_dropped", v, err, errlen);
        snprintf(v, sizeof v, "%llu", (unsigned long long)st[SPST_DROP_KEEP]);
        if (!rc)
            rc = span_store_set_meta(ss, "spans_not_kept", v, err, errlen);
    }
    span_store_free(ss);
    span_batch_fini(&mine);
    return rc;
}
