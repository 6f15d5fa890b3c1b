#include "collector/http.h"

#include "collector/decode.h"
#include "collector/mhd_dl.h"
#include "collector/otlp_json.h"
#include "collector/otlp_proto.h"
#include "collector/zipkin.h"
#include "common/err.h"
#include "common/thread.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

/* libmicrohttpd, loaded by http_server_new before it starts the daemon
 * (collector/mhd_dl.h): every other use follows */
static const struct mhd_dl *mhd;

struct http_server {
    struct MHD_Daemon *d;
    int fd;
    struct http_opts o;
    char *token;
    struct ingest *in;
    size_t body_used; /* bytes of request bodies held beyond BODY_FREE each (atomic) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned pending; /* requests waiting for the store's answer */
    int stopping;     /* no request waits for the store any more */
};

/* The first BODY_FREE bytes of every request body are not counted against
 * the body budget: at most max_conns of them exist, and a small request is
 * never refused because large ones hold the budget. */
#define BODY_FREE (64u << 10)

/* niceness added to the HTTP worker threads (see handler) */
#define WORKER_NICE 5

enum route { R_NONE, R_OTLP, R_ZIPKIN };

struct req {
    struct http_server *s;
    struct MHD_Connection *c;
    enum route route;
    int proto;
    char *body;
    size_t len, cap;
    size_t charged; /* of cap, counted in s->body_used */
    int too_big, over_budget;
    int done; /* a response was already queued, or is waiting for the store */
    /* waiting for the store (under s->mu) */
    int submitted, stored, suspended, store_rc;
    int answered; /* the store's answer was queued */
    int handed;   /* ingest_submit was called */
    size_t rejected, accepted;
    char rmsg[128];
};

/* retry_after: seconds for a Retry-After header, 0 for none */
static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *ctype, const void *body,
                               size_t len, int retry_after)
{
    struct MHD_Response *r = mhd->create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    if (ctype)
        mhd->add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (retry_after) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", retry_after);
        mhd->add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    if (status == 401)
        mhd->add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    enum MHD_Result ret = mhd->queue_response(c, status, r);
    mhd->destroy_response(r);
    return ret;
}

/* An error in the shape each protocol expects (OTLP: a google.rpc.Status). */
static enum MHD_Result fail(struct MHD_Connection *c, unsigned status, const char *msg, int retry)
{
    json_t *j = json_pack("{siss?}", "code", status == 400 ? 3 : status == 401 ? 16 : status == 413 ? 3 : 14,
                          "message", msg);
    char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    enum MHD_Result r = respond(c, status, "application/json", t ? t : "{}", t ? strlen(t) : 2, retry);
    free(t);
    return r;
}

static int token_ok(struct http_server *s, struct MHD_Connection *c)
{
    if (!s->token)
        return 1;
    const char *h = mhd->lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7))
        return 0;
    h += 7;
    size_t a = strlen(h), b = strlen(s->token);
    unsigned diff = a != b;
    for (size_t i = 0; i < a && i < b; i++)
        diff |= (unsigned char)h[i] ^ (unsigned char)s->token[i];
    return !diff;
}

/* Inflate gzip or zlib/deflate data; 0, -EFBIG over limit, -EINVAL corrupt. */
static int inflate_body(const char *in, size_t len, size_t limit, char **out, size_t *olen, int raw_ok)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 32) != Z_OK)
        return -ENOMEM;
    size_t cap = len * 4 + 1024, n = 0;
    if (cap > limit + 1)
        cap = limit + 1;
    char *buf = malloc(cap);
    int rc = 0;
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    int zr = Z_OK, retried = 0;
    for (;;) {
        if (n == cap) {
            if (cap > limit) {
                rc = -EFBIG;
                goto out;
            }
            size_t nc = cap * 2 > limit + 1 ? limit + 1 : cap * 2;
            char *nb = realloc(buf, nc);
            if (!nb) {
                rc = -ENOMEM;
                goto out;
            }
            buf = nb;
            cap = nc;
        }
        z.next_out = (Bytef *)buf + n;
        z.avail_out = (uInt)(cap - n);
        zr = inflate(&z, Z_NO_FLUSH);
        n = cap - z.avail_out;
        if (zr == Z_STREAM_END)
            break;
        if (zr == Z_DATA_ERROR && raw_ok && !retried && n == 0) {
            /* "deflate" sent as a raw stream */
            retried = 1;
            inflateEnd(&z);
            memset(&z, 0, sizeof z);
            if (inflateInit2(&z, -15) != Z_OK) {
                rc = -ENOMEM;
                goto out;
            }
            z.next_in = (Bytef *)in;
            z.avail_in = (uInt)len;
            continue;
        }
        if (zr != Z_OK && !(zr == Z_BUF_ERROR && z.avail_out == 0)) {
            rc = -EINVAL;
            goto out;
        }
        if (z.avail_in == 0 && z.avail_out != 0) {
            rc = -EINVAL; /* truncated */
            goto out;
        }
    }
    if (n > limit) {
        rc = -EFBIG;
        goto out;
    }
    *out = buf;
    *olen = n;
    buf = NULL;
out:
    inflateEnd(&z);
    free(buf);
    return rc;
}

static int is_proto(struct MHD_Connection *c)
{
    const char *ct = mhd->lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    return ct && (!strncasecmp(ct, "application/x-protobuf", 22) || !strncasecmp(ct, "application/protobuf", 20));
}

/* seconds a sender is asked to wait when the store cannot write */
#define STORE_RETRY_AFTER 5

/* The answer once the spans are handled: stored (or nothing to store), or
 * refused because the store's write failed. */
static enum MHD_Result answer(struct MHD_Connection *c, struct req *r)
{
    enum MHD_Result ret;
    if (r->store_rc)
        return fail(c, 503, r->store_rc == -ENOSPC ? "the span store is full (disk full): nothing of this request was stored, retry later"
                                                   : "the span store cannot write: nothing of this request was stored, retry later",
                    STORE_RETRY_AFTER);
    if (r->route == R_ZIPKIN && !r->rejected)
        return respond(c, 202, NULL, "", 0, 0);
    if (r->route == R_ZIPKIN && !r->accepted) { /* Zipkin has no partial success: nothing taken is an error */
        char m[192];
        snprintf(m, sizeof m, "all %zu spans rejected: %s", r->rejected, r->rmsg);
        return fail(c, 400, m, 0);
    }
    if (r->proto) {
        uint8_t *pb = NULL;
        long n = otlp_proto_response((int64_t)r->rejected, r->rmsg, &pb);
        if (n < 0)
            return fail(c, 500, "out of memory", 0);
        ret = respond(c, 200, "application/x-protobuf", pb, (size_t)n, 0);
        free(pb);
        return ret;
    }
    if (!r->rejected)
        return respond(c, 200, "application/json", "{}", 2, 0);
    json_t *j = json_pack("{s{sIss}}", "partialSuccess", "rejectedSpans", (json_int_t)r->rejected, "errorMessage",
                          r->rmsg);
    char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    /* Zipkin: still 202 (some spans were taken), with OTLP's count */
    ret = respond(c, r->route == R_ZIPKIN ? 202 : 200, "application/json", t ? t : "{}", t ? strlen(t) : 2, 0);
    free(t);
    return ret;
}

/* ingest_done_fn: the transaction holding r's spans ended (writer thread) */
static void stored_cb(void *arg, int rc)
{
    struct req *r = arg;
    struct http_server *s = r->s;
    struct MHD_Connection *c = r->c;
    pthread_mutex_lock(&s->mu);
    r->store_rc = rc;
    r->stored = 1;
    int resume = r->suspended;
    pthread_mutex_unlock(&s->mu);
    /* from here on r may be answered and freed by its connection's thread */
    if (resume)
        mhd->resume_connection(c);
    pthread_mutex_lock(&s->mu);
    s->pending--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static enum MHD_Result decode_submit(struct http_server *s, struct MHD_Connection *c, struct req *r);

static enum MHD_Result finish(struct http_server *s, struct MHD_Connection *c, struct req *r)
{
    if (r->too_big)
        return fail(c, 413, "request body too large", 0);
    if (r->over_budget)
        return fail(c, 503, "collector busy (request bodies over their memory budget), retry later", 1);
    if (ingest_full(s->in)) /* refuse before spending time on decoding */
        return fail(c, 503, "collector overloaded, retry later", 1);
    ingest_expect(s->in, 1);
    enum MHD_Result ret = decode_submit(s, c, r);
    if (!r->handed)
        ingest_expect(s->in, -1); /* announced, but never handed over */
    return ret;
}

/* finish: decode the body and hand its spans to the store */
static enum MHD_Result decode_submit(struct http_server *s, struct MHD_Connection *c, struct req *r)
{
    const char *enc = mhd->lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING);
    char *plain = NULL;
    size_t plen = 0;
    const char *body = r->body ? r->body : "";
    size_t blen = r->len;
    if (enc && (!strcasecmp(enc, "gzip") || !strcasecmp(enc, "deflate") || !strcasecmp(enc, "x-gzip"))) {
        int zr = inflate_body(body, blen, s->o.max_body, &plain, &plen, !strcasecmp(enc, "deflate"));
        if (zr == -EFBIG)
            return fail(c, 413, "decompressed body too large", 0);
        if (zr)
            return fail(c, 400, "corrupt compressed body", 0);
        body = plain;
        blen = plen;
    } else if (enc && strcasecmp(enc, "identity")) {
        return fail(c, 415, "unsupported Content-Encoding", 0);
    }
    struct span_batch b;
    span_batch_init(&b);
    char err[256] = "";
    r->proto = r->route == R_OTLP && is_proto(c);
    int rc;
    if (r->route == R_ZIPKIN)
        rc = zipkin_decode(body, blen, &b, s->o.max_spans, err, sizeof err);
    else if (r->proto)
        rc = otlp_proto_decode((const uint8_t *)body, blen, &b, s->o.max_spans, err, sizeof err);
    else
        rc = otlp_json_decode(body, blen, &b, s->o.max_spans, err, sizeof err);
    free(plain);
    if (!rc && span_batch_profiles(&b))
        rc = -ENOMEM, snprintf(err, sizeof err, "out of memory");
    if (rc) {
        span_batch_fini(&b);
        return fail(c, rc == -EINVAL ? 400 : 500, err, 0);
    }
    r->rejected = b.rejected;
    r->accepted = b.n;
    snprintf(r->rmsg, sizeof r->rmsg, "%s", b.reject_msg);
    if (b.rejected)
        ingest_count_rejected(s->in, b.rejected);
    if (!b.n) {
        span_batch_fini(&b);
        return answer(c, r);
    }
    /* the body is decoded: its memory goes back before the wait */
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
    __atomic_sub_fetch(&s->body_used, r->charged, __ATOMIC_RELAXED);
    r->charged = 0;
    /* answered only once the spans are committed: the request waits,
     * suspended, while its connection's thread serves the others */
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        span_batch_fini(&b);
        return fail(c, 503, "collector shutting down, retry later", 1);
    }
    s->pending++;
    pthread_mutex_unlock(&s->mu);
    r->s = s;
    r->c = c;
    r->handed = 1; /* ingest_submit counts the request as arrived, even when it refuses it */
    if (ingest_submit(s->in, &b, stored_cb, r)) {
        span_batch_fini(&b);
        pthread_mutex_lock(&s->mu);
        s->pending--;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return fail(c, 503, "collector overloaded, retry later", 1);
    }
    span_batch_fini(&b);
    pthread_mutex_lock(&s->mu);
    r->submitted = 1;
    if (!r->stored) {
        mhd->suspend_connection(c);
        r->suspended = 1;
    }
    int stored = r->stored;
    pthread_mutex_unlock(&s->mu);
    if (stored) { /* committed already */
        r->answered = 1;
        return answer(c, r);
    }
    return MHD_YES;
}

/* Grow r's body buffer to hold need bytes, within max_body and the
 * server's budget. 0, or -1 (r->over_budget set, body dropped). */
static int grow_body(struct http_server *s, struct MHD_Connection *c, struct req *r, size_t need)
{
    size_t nc = r->cap ? r->cap : 16384;
    while (nc < need)
        nc *= 2;
    const char *cl = mhd->lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long len = cl ? strtoull(cl, NULL, 10) : 0;
    if (len >= need && nc > len)
        nc = (size_t)len; /* the whole body, no more */
    if (nc > s->o.max_body)
        nc = s->o.max_body;
    size_t charge = nc > BODY_FREE ? nc - BODY_FREE : 0;
    if (charge > r->charged) {
        size_t more = charge - r->charged;
        if (__atomic_add_fetch(&s->body_used, more, __ATOMIC_RELAXED) > s->o.body_budget) {
            __atomic_sub_fetch(&s->body_used, more + r->charged, __ATOMIC_RELAXED);
            r->charged = 0;
            r->over_budget = 1;
            free(r->body);
            r->body = NULL;
            r->len = r->cap = 0;
            return -1;
        }
        r->charged = charge;
    }
    char *nb = realloc(r->body, nc);
    if (!nb)
        return -1;
    r->body = nb;
    r->cap = nc;
    return 0;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                               const char *version, const char *data, size_t *data_size, void **ctx)
{
    (void)version;
    struct http_server *s = cls;
    struct req *r = *ctx;
    static __thread int reniced;
    if (!reniced) {
        /* the store's writer drains, these threads fill: when they compete
         * for the CPUs the writer goes first (this thread only) */
        reniced = 1;
        thread_renice(WORKER_NICE);
    }
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *ctx = r;
        if (!token_ok(s, c)) {
            r->done = 1;
            return fail(c, 401, "missing or wrong bearer token", 0);
        }
        if (!strcmp(url, "/v1/traces"))
            r->route = R_OTLP;
        else if (!strcmp(url, "/api/v2/spans"))
            r->route = R_ZIPKIN;
        if (r->route == R_NONE) {
            r->done = 1;
            return fail(c, 404, "unknown path: POST /v1/traces (OTLP) or /api/v2/spans (Zipkin v2)", 0);
        }
        if (strcmp(method, "POST")) {
            r->done = 1;
            return fail(c, 405, "method not allowed: use POST", 0);
        }
        const char *cl = mhd->lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        unsigned long long len = cl ? strtoull(cl, NULL, 10) : 0;
        if (len > s->o.max_body) {
            r->done = 1;
            return fail(c, 413, "request body too large", 0);
        }
        /* a body that cannot fit the budget now is refused before it is sent */
        if (len > BODY_FREE && __atomic_load_n(&s->body_used, __ATOMIC_RELAXED) + (len - BODY_FREE) > s->o.body_budget) {
            r->done = 1;
            return fail(c, 503, "collector busy (request bodies over their memory budget), retry later", 1);
        }
        return MHD_YES;
    }
    if (*data_size) {
        if (!r->done && !r->too_big && !r->over_budget) {
            if (r->len + *data_size > s->o.max_body) {
                r->too_big = 1;
                free(r->body);
                r->body = NULL;
                r->len = r->cap = 0;
                __atomic_sub_fetch(&s->body_used, r->charged, __ATOMIC_RELAXED);
                r->charged = 0;
            } else if (r->len + *data_size <= r->cap || !grow_body(s, c, r, r->len + *data_size)) {
                memcpy(r->body + r->len, data, *data_size);
                r->len += *data_size;
            } else if (!r->over_budget) {
                return MHD_NO; /* out of memory */
            }
        }
        *data_size = 0;
        return MHD_YES;
    }
    if (r->submitted) { /* resumed: the store has answered */
        if (r->answered)
            return MHD_YES;
        r->answered = 1;
        return answer(c, r);
    }
    if (r->done)
        return MHD_YES;
    r->done = 1;
    return finish(s, c, r);
}

static void completed(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_RequestTerminationCode tc)
{
    (void)c;
    (void)tc;
    struct http_server *s = cls;
    struct req *r = *ctx;
    if (r) {
        __atomic_sub_fetch(&s->body_used, r->charged, __ATOMIC_RELAXED);
        free(r->body);
        free(r);
        *ctx = NULL;
    }
}

int http_host_is_loopback(const char *host)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL, *a;
    if (getaddrinfo(host, NULL, &hints, &res))
        return 0;
    int ok = 1;
    for (a = res; a; a = a->ai_next) {
        if (a->ai_family == AF_INET) {
            const struct sockaddr_in *in = (const void *)a->ai_addr;
            if ((ntohl(in->sin_addr.s_addr) >> 24) != 127)
                ok = 0;
        } else if (a->ai_family == AF_INET6) {
            const struct sockaddr_in6 *in6 = (const void *)a->ai_addr;
            if (!IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
                ok = 0;
        } else {
            ok = 0;
        }
    }
    freeaddrinfo(res);
    return ok;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    (void)fmt;
    (void)ap; /* library code does not print */
}

int http_server_new(const char *host, int port, const struct http_opts *o, struct ingest *in,
                    struct http_server **out, int *bound_port, char *err, size_t errlen)
{
    *out = NULL;
    if (!mhd && !(mhd = mhd_dl()))
        return se_fail(err, errlen, -ENOENT, "cannot load libmicrohttpd.so.12 (install libmicrohttpd12)");
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res = NULL;
    int gr = getaddrinfo(*host ? host : NULL, portstr, &hints, &res);
    if (gr)
        return se_fail(err, errlen, SE_USAGE, "cannot resolve '%s': %s", host, gai_strerror(gr));
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        int e = errno;
        freeaddrinfo(res);
        return se_fail(err, errlen, -e, "socket: %s", strerror(e));
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* inherited by accepted sockets: no Nagle / delayed-ACK stalls on small responses */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 1024)) {
        int e = errno;
        freeaddrinfo(res);
        close(fd);
        return se_fail(err, errlen, -e, "cannot listen on %s:%d: %s%s", host, port, strerror(e),
                       e == EADDRINUSE ? " (is another collector running? pick another port with --listen)" : "");
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    if (bound_port)
        *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                     : ((struct sockaddr_in *)&ss)->sin_port);

    struct http_server *s = calloc(1, sizeof *s);
    if (!s) {
        close(fd);
        return se_fail(err, errlen, -ENOMEM, "out of memory");
    }
    s->fd = fd;
    s->o = *o;
    s->in = in;
    if (!s->o.max_body)
        s->o.max_body = 8u << 20;
    if (!s->o.max_spans)
        s->o.max_spans = 10000;
    if (!s->o.threads) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        s->o.threads = n > 0 ? (unsigned)n : 1;
    }
    if (!s->o.max_conns)
        s->o.max_conns = 512;
    if (!s->o.max_conns_per_ip)
        s->o.max_conns_per_ip = 64;
    if (!s->o.body_budget)
        s->o.body_budget = s->o.max_body * 4 > (128u << 20) ? s->o.max_body * 4 : 128u << 20;
    if (!s->o.idle_timeout_s)
        s->o.idle_timeout_s = 10;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (o->token && *o->token)
        s->token = strdup(o->token);
    json_object_seed(0);
    /* a request waiting for the store is suspended: its thread serves other
     * connections meanwhile (MHD_ALLOW_SUSPEND_RESUME) */
    s->d = mhd->start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                                MHD_ALLOW_SUSPEND_RESUME,
                            0, NULL, NULL, handler, s, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_THREAD_POOL_SIZE,
                            s->o.threads, MHD_OPTION_CONNECTION_LIMIT, s->o.max_conns,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, s->o.max_conns_per_ip,
                            MHD_OPTION_CONNECTION_TIMEOUT, s->o.idle_timeout_s,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(32u << 10),
                            MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
                            MHD_OPTION_END);
    if (!s->d) {
        http_server_free(s); /* closes fd: MHD did not take it */
        return se_fail(err, errlen, -EIO, "cannot start the HTTP server on %s:%d", host, port);
    }
    s->fd = -1; /* MHD_stop_daemon closes the listening socket */
    *out = s;
    return 0;
}

void http_server_free(struct http_server *s)
{
    if (!s)
        return;
    /* requests waiting for the store get their answer first */
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    while (s->pending)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    if (s->d)
        mhd->stop_daemon(s->d);
    if (s->fd >= 0)
        close(s->fd);
    free(s->token);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
