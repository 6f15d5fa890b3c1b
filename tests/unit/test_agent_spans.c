/* agent/spans.c's pure pieces: the packed span record (what Python hands
 * over) decoded or refused, and the per-thread current span table the
 * sampler reads. */
#include "check.h"

#include "agent/spans.h"
#include "spans/span.h"

#include <errno.h>
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
    test_green();
    test_end_refused();
    return check_done("agent_spans");
}
