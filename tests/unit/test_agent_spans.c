/* agent/spans.c's pure pieces: the packed span record (what Python hands
 * over) decoded or refused, and the per-thread current span table the
 * sampler reads. */
#include "check.h"

#include "agent/spans.h"
#include "agent/span_json.h"
#include "collector/otlp_json.h"
#include "spans/span.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static size_t put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    return 8;
}

static size_t put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    return 4;
}

/* Pack as python/sonde/tracing.py does. */
static size_t pack(unsigned char *b, uint64_t th, uint64_t tl, uint64_t sid, uint64_t pid, int64_t st, int64_t en,
                   uint32_t no, int kind, int status, const char *name, const char *attrs)
{
    size_t n = 0, nl = strlen(name), al = strlen(attrs);
    n += put64(b + n, th);
    n += put64(b + n, tl);
    n += put64(b + n, sid);
    n += put64(b + n, pid);
    n += put64(b + n, (uint64_t)st);
    n += put64(b + n, (uint64_t)en);
    n += put32(b + n, no);
    b[n++] = (unsigned char)kind;
    b[n++] = (unsigned char)status;
    b[n++] = (unsigned char)(nl & 0xff);
    b[n++] = (unsigned char)(nl >> 8);
    n += put32(b + n, (uint32_t)al);
    memcpy(b + n, name, nl);
    memcpy(b + n + nl, attrs, al);
    return n + nl + al;
}

static void test_decode(void)
{
    unsigned char b[512];
    struct span_batch sb;
    span_batch_init(&sb);
    size_t n = pack(b, 0x0123456789abcdefULL, 0x1122334455667788ULL, 0xaabbccddeeff0011ULL, 0x42,
                    1700000000123456789LL, 1700000000223456789LL, 7, SPAN_KIND_SERVER, SPAN_STATUS_ERROR,
                    "GET /cart", "{\"http.status\":500}");
    CHECK_INT(agent_span_decode(b, n, "shop", "host1", "{\"deployment\":\"prod\",\"http.status\":1}", &sb, 1), 0);
    CHECK_INT(sb.n, 1);
    if (sb.n == 1) {
        const struct span *s = &sb.spans[0];
        CHECK_STR(s->trace_id, "0123456789abcdef1122334455667788");
        CHECK_STR(s->span_id, "aabbccddeeff0011");
        CHECK_STR(s->parent_id, "0000000000000042");
        CHECK_STR(s->name, "GET /cart");
        CHECK_STR(s->service, "shop");
        CHECK_STR(s->node, "host1");
        /* the span's own attribute wins over the resource's; the number added */
        CHECK_STR(s->attrs, "{\"http.status\":500,\"deployment\":\"prod\",\"sonde.span_no\":7}");
        CHECK_INT(s->kind, SPAN_KIND_SERVER);
        CHECK_INT(s->status, SPAN_STATUS_ERROR);
        CHECK_INT(s->start_us, 1700000000123456LL);
        CHECK_INT(s->end_us, 1700000000223456LL);
    }
    /* a root without attributes, without the number */
    n = pack(b, 0, 1, 2, 0, 10, 10, 3, SPAN_KIND_INTERNAL, 0, "r", "");
    CHECK_INT(agent_span_decode(b, n, "s", "", NULL, &sb, 0), 0);
    CHECK_INT(sb.n, 2);
    if (sb.n == 2) {
        CHECK_STR(sb.spans[1].parent_id, "");
        CHECK_STR(sb.spans[1].attrs, "{}");
    }

    /* refused: each a malformed record */
    struct {
        const char *why;
        uint64_t th, tl, sid;
        int64_t st, en;
        int kind, status;
        const char *attrs;
        int cut; /* bytes taken off the end, or added (negative) */
    } bad[] = {
        { "zero trace id", 0, 0, 5, 1, 2, 1, 0, "", 0 },
        { "zero span id", 1, 1, 0, 1, 2, 1, 0, "", 0 },
        { "end before start", 1, 1, 5, 2, 1, 1, 0, "", 0 },
        { "negative start", 1, 1, 5, -1, 1, 1, 0, "", 0 },
        { "kind out of range", 1, 1, 5, 1, 2, 9, 0, "", 0 },
        { "status out of range", 1, 1, 5, 1, 2, 1, 3, "", 0 },
        { "attrs not an object", 1, 1, 5, 1, 2, 1, 0, "[1]", 0 },
        { "attrs not JSON", 1, 1, 5, 1, 2, 1, 0, "{\"a\":", 0 },
        { "truncated", 1, 1, 5, 1, 2, 1, 0, "{}", 1 },
        { "trailing bytes", 1, 1, 5, 1, 2, 1, 0, "{}", -1 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        n = pack(b, bad[i].th, bad[i].tl, bad[i].sid, 0, bad[i].st, bad[i].en, 1, bad[i].kind, bad[i].status,
                 "x", bad[i].attrs);
        n = (size_t)((long)n - bad[i].cut);
        size_t before = sb.n;
        int rc = agent_span_decode(b, n, "s", "", NULL, &sb, 0);
        CHECK(rc == -EINVAL && sb.n == before, "%s: rc %d", bad[i].why, rc);
    }
    CHECK_INT(agent_span_decode(b, SPAN_REC_HDR - 1, "s", "", NULL, &sb, 0), -EINVAL);
    CHECK_INT(agent_span_decode(NULL, 0, "s", "", NULL, &sb, 0), -EINVAL);
    span_batch_fini(&sb);
}

/* The export body, written straight from packed spans, says what the
 * decoded spans say: the collector's OTLP JSON decoder reads back the same
 * ids, names, kinds, times (in µs), statuses and attributes (the span's own
 * winning over the resource's extra ones); a malformed record is left out
 * and counted; a name that is not UTF-8 is repaired, not refused. */
static void test_export_body(void)
{
    static unsigned char b[4][512];
    const void *recs[5];
    size_t lens[5];
    lens[0] = pack(b[0], 0x0123456789abcdefULL, 0x1122334455667788ULL, 0xaabbccddeeff0011ULL, 0x42,
                   1700000000123456789LL, 1700000000223456789LL, 7, SPAN_KIND_SERVER, SPAN_STATUS_ERROR,
                   "GET \"/cart\"\n", "{\"http.status\":500,\"r\":0.5,\"ok\":true,\"l\":[1,\"x\"],"
                   "\"o\":{\"k\":\"\\u00e9\\\\\"},\"n\":null}");
    lens[1] = pack(b[1], 0, 9, 3, 0, 1700000000000000000LL, 1700000000000001000LL, 8, SPAN_KIND_INTERNAL,
                   SPAN_STATUS_UNSET, "plain", "");
    lens[2] = pack(b[2], 0, 9, 0, 0, 1, 2, 9, 0, 0, "no span id", ""); /* malformed */
    lens[3] = pack(b[3], 0, 9, 4, 3, 1700000000000000000LL, 1700000000000001000LL, 10, SPAN_KIND_CLIENT,
                   SPAN_STATUS_OK, "bad \xff\xc0 utf8", "{\"a\":1,\"a\":2}"); /* duplicate key: malformed */
    recs[0] = b[0], recs[1] = b[1], recs[2] = b[2], recs[3] = b[3];
    unsigned char u[128]; /* SPAN_REC_HDR (60) + the name */
    lens[4] = pack(u, 0, 9, 5, 3, 1700000000000000000LL, 1700000000000001000LL, 11, SPAN_KIND_CLIENT,
                   SPAN_STATUS_OK, "bad \xff\xc0 utf8", "");
    recs[4] = u;
    char *body = NULL;
    size_t len = 0, nspans = 0;
    uint64_t bad = 0;
    CHECK_INT(agent_spans_otlp_json(recs, lens, NULL, 5, "shop \"eu\"", "host1", "{\"deployment\":\"prod\",\"http.status\":1}",
                                    &body, &len, &nspans, &bad), 0);
    CHECK_INT(nspans, 3);
    CHECK_INT(bad, 2);
    CHECK_INT(strlen(body), len);
    struct span_batch got, want;
    span_batch_init(&got);
    span_batch_init(&want);
    char err[256] = "";
    CHECK(otlp_json_decode(body, len, &got, 100, err, sizeof err) == 0, "decode: %s", err);
    CHECK_INT(got.n, 3);
    CHECK_INT(agent_span_decode(b[0], lens[0], "shop \"eu\"", "host1", "{\"deployment\":\"prod\",\"http.status\":1}",
                                &want, 0), 0);
    CHECK_INT(agent_span_decode(b[1], lens[1], "shop \"eu\"", "host1", "{\"deployment\":\"prod\",\"http.status\":1}",
                                &want, 0), 0);
    for (size_t i = 0; i < 2 && got.n == 3; i++) {
        const struct span *g = &got.spans[i], *w = &want.spans[i];
        CHECK_STR(g->trace_id, w->trace_id);
        CHECK_STR(g->span_id, w->span_id);
        CHECK_STR(g->parent_id, w->parent_id);
        CHECK_STR(g->name, w->name);
        CHECK_STR(g->service, w->service);
        CHECK_INT(g->kind, w->kind);
        CHECK_INT(g->status, w->status);
        CHECK_INT(g->start_us, w->start_us);
        CHECK_INT(g->end_us, w->end_us);
        json_t *ga = json_loads(g->attrs, 0, NULL), *wa = json_loads(w->attrs, 0, NULL);
        CHECK(json_equal(ga, wa), "attrs %s, want %s", g->attrs, w->attrs);
        json_decref(ga);
        json_decref(wa);
    }
    if (got.n == 3)
        CHECK_STR(got.spans[2].name, "bad \xef\xbf\xbd\xef\xbf\xbd utf8");
    span_batch_fini(&got);
    span_batch_fini(&want);
    free(body);
}

static uint32_t other_span;
static pid_t other_tid;
static pthread_barrier_t bar;

static void *other(void *arg)
{
    (void)arg;
    other_tid = (pid_t)syscall(SYS_gettid);
    sonde_span_current(99);
    pthread_barrier_wait(&bar); /* set */
    pthread_barrier_wait(&bar); /* read by main */
    sonde_span_current(0);
    other_span = agent_span_of(other_tid, 0, NULL);
    return NULL;
}

static void test_current(void)
{
    pid_t me = (pid_t)syscall(SYS_gettid);
    CHECK_INT(agent_span_of(me, 0, NULL), 0); /* never set */
    sonde_span_current(5);
    CHECK_INT(agent_span_of(me, 0, NULL), 5);
    pthread_t t;
    pthread_barrier_init(&bar, NULL, 2);
    pthread_create(&t, NULL, other, NULL);
    pthread_barrier_wait(&bar);
    CHECK_INT(agent_span_of(other_tid, 0, NULL), 99);
    CHECK_INT(agent_span_of(me, 0, NULL), 5); /* each thread its own */
    pthread_barrier_wait(&bar);
    pthread_join(t, NULL);
    CHECK_INT(other_span, 0);
    sonde_span_current(0);
    CHECK_INT(agent_span_of(me, 0, NULL), 0);
    CHECK_INT(agent_span_of(1 << 30, 0, NULL), 0); /* a thread never seen */
    pthread_barrier_destroy(&bar);
}

/* asyncio tasks and greenlets: their own span, keyed by their address;
 * none of their own: their thread's */
static void test_green(void)
{
    pid_t me = (pid_t)syscall(SYS_gettid);
    uint64_t a = 0x7f12345678a0ull, b = 0x55aa00001230ull, c = 0x7f12345678b0ull;
    sonde_span_current(3); /* the thread's (outside any task) */
    sonde_span_at(7, (uint32_t)a, (uint32_t)(a >> 32));
    sonde_span_at(8, (uint32_t)b, (uint32_t)(b >> 32));
    CHECK_INT(agent_span_of(me, a, NULL), 7);
    CHECK_INT(agent_span_of(me, b, NULL), 8);
    CHECK_INT(agent_span_of(me, c, NULL), 3); /* a task without a span */
    CHECK_INT(agent_span_of(me, 0, NULL), 3); /* the thread untouched */
    /* leaving: b's own span ends, the thread's shows again */
    sonde_span_at(0, (uint32_t)b, (uint32_t)(b >> 32));
    CHECK_INT(agent_span_of(me, b, NULL), 3);
    CHECK_INT(agent_span_of(me, a, NULL), 7);
    /* keys that differ only in their high half are two tasks */
    uint64_t a2 = a ^ (1ull << 40);
    sonde_span_at(9, (uint32_t)a2, (uint32_t)(a2 >> 32));
    CHECK_INT(agent_span_of(me, a2, NULL), 9);
    CHECK_INT(agent_span_of(me, a, NULL), 7);
    /* many tasks come and go: released entries are claimed again */
    for (uint64_t i = 1; i <= 100000; i++) {
        uint64_t k = 0x7f0000000000ull + i * 0x70;
        sonde_span_at((uint32_t)i, (uint32_t)k, (uint32_t)(k >> 32));
        CHECK(agent_span_of(me, k, NULL) == (uint32_t)i, "task %llu", (unsigned long long)i);
        sonde_span_at(0, (uint32_t)k, (uint32_t)(k >> 32));
    }
    CHECK_INT(agent_span_of(me, a, NULL), 7);
    CHECK_INT(agent_span_of(me, a2, NULL), 9);
    sonde_span_at(0, (uint32_t)a, (uint32_t)(a >> 32));
    sonde_span_at(0, (uint32_t)a2, (uint32_t)(a2 >> 32));
    sonde_span_current(0);
    CHECK_INT(agent_span_of(me, a, NULL), 0);
}

static void test_end_refused(void)
{
    /* a malformed hand-over is counted, never queued */
    uint64_t st[SPST_N];
    CHECK_INT(sonde_span_end("short", 5, 0), -EINVAL);
    sonde_spans_stats(st);
    CHECK_INT(st[SPST_ENDED], 1);
    CHECK_INT(st[SPST_DROP_QUEUE], 1);
}

int main(void)
{
    test_decode();
    test_current();
    test_export_body();
    test_green();
    test_end_refused();
    return check_done("agent_spans");
}
