/* Collector unit tests: decoders on the committed corpus, trace assembly
 * (shared spans, duplicates, orphans, cycles, clock skew), the span store. */
#include "check.h"

#include "spans/assemble.h"
#include "collector/otlp_json.h"
#include "collector/otlp_proto.h"
#include "store/spans.h"
#include "collector/zipkin.h"
#include "common/err.h"
#include "spans/otlp_encode.h"
#include "formats/zipkin_json.h"
#include "ui/trace_text.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <unistd.h>

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static void test_otlp_json(void)
{
    size_t len;
    char *buf = slurp("tests/fuzz/corpus/otlp_json/enum_names.json", &len), err[256];
    struct span_batch b;
    span_batch_init(&b);
    CHECK_INT(otlp_json_decode(buf, len, &b, 100, err, sizeof err), 0);
    CHECK_INT(b.n, 1);
    if (b.n == 1) {
        struct span *s = &b.spans[0];
        CHECK_STR(s->trace_id, "5b8efff798038103d269b633813fc60c");
        CHECK_STR(s->span_id, "eee19b7ec3c1b174");
        CHECK_STR(s->parent_id, "");
        CHECK_STR(s->service, "svc");
        CHECK_STR(s->node, "i-1");
        CHECK_INT(s->kind, SPAN_KIND_CLIENT);
        CHECK_INT(s->status, SPAN_STATUS_ERROR);
        CHECK_INT(s->start_us, 1544712660000000LL);
        CHECK_INT(s->end_us, 1544712661000000LL);
        CHECK_STR(s->attrs, "{\"n\":42,\"d\":1.5,\"b\":true,\"a\":[\"x\",{\"k\":7}],\"raw\":\"AAE=\"}");
    }
    free(buf);
    span_batch_fini(&b);

    span_batch_init(&b);
    buf = slurp("tests/fuzz/corpus/otlp_json/invalid_ids.json", &len);
    CHECK_INT(otlp_json_decode(buf, len, &b, 100, err, sizeof err), 0);
    CHECK_INT(b.n, 0);
    CHECK_INT(b.rejected, 4);
    free(buf);
    span_batch_fini(&b);

    span_batch_init(&b);
    CHECK_INT(otlp_json_decode("{\"resourceSpans\":{}}", 20, &b, 100, err, sizeof err), -EINVAL);
    CHECK_INT(otlp_json_decode("{", 1, &b, 100, err, sizeof err), -EINVAL);
    CHECK_INT(otlp_json_decode("{}", 2, &b, 100, err, sizeof err), 0);
    /* span limit */
    buf = slurp("tests/fuzz/corpus/otlp_json/two_nodes.json", &len);
    CHECK_INT(otlp_json_decode(buf, len, &b, 3, err, sizeof err), 0);
    CHECK_INT(b.n, 3);
    CHECK_INT(b.rejected, 1);
    CHECK_STR(b.spans[2].node, "hostB");
    free(buf);
    span_batch_fini(&b);
}

static void test_otlp_proto(void)
{
    size_t len;
    char *buf = slurp("tests/fuzz/corpus/otlp_proto/two_spans.pb", &len), err[256];
    struct span_batch b;
    span_batch_init(&b);
    CHECK_INT(otlp_proto_decode((const uint8_t *)buf, len, &b, 100, err, sizeof err), 0);
    CHECK_INT(b.n, 2);
    if (b.n == 2) {
        CHECK_STR(b.spans[0].trace_id, "5b8efff798038103d269b633813fc60c");
        CHECK_STR(b.spans[0].name, "root");
        CHECK_STR(b.spans[0].service, "protosvc");
        CHECK_STR(b.spans[0].node, "h1");
        CHECK_INT(b.spans[0].kind, SPAN_KIND_SERVER);
        CHECK_INT(b.spans[0].status, SPAN_STATUS_ERROR);
        CHECK(!strncmp(b.spans[0].attrs, "{\"arr\":[\"a\",3],\"deep\":[[[[", 26), "attrs %s", b.spans[0].attrs);
        CHECK(strstr(b.spans[0].attrs, "null") != NULL, "deep nesting is cut: %s", b.spans[0].attrs);
        CHECK_STR(b.spans[1].parent_id, "eee19b7ec3c1b174");
        CHECK_INT(b.spans[1].start_us, 1544712660100000LL);
    }
    free(buf);
    span_batch_fini(&b);
    span_batch_init(&b);
    CHECK_INT(otlp_proto_decode((const uint8_t *)"\x0a\xff\xff\xff\xff\x0f", 6, &b, 100, err, sizeof err), -EINVAL);
    buf = slurp("tests/fuzz/corpus/otlp_proto/bad_ids.pb", &len);
    CHECK_INT(otlp_proto_decode((const uint8_t *)buf, len, &b, 100, err, sizeof err), 0);
    CHECK_INT(b.rejected, 1);
    free(buf);
    span_batch_fini(&b);
    uint8_t *pb;
    CHECK_INT(otlp_proto_response(0, NULL, &pb), 0);
    free(pb);
    CHECK(otlp_proto_response(3, "bad ids", &pb) > 0, "partial success packs");
    free(pb);
}

static void test_zipkin(void)
{
    size_t len;
    char *buf = slurp("tests/fuzz/corpus/zipkin/shared.json", &len), err[256];
    struct span_batch b;
    span_batch_init(&b);
    CHECK_INT(zipkin_decode(buf, len, &b, 100, err, sizeof err), 0);
    CHECK_INT(b.n, 2);
    if (b.n == 2) {
        CHECK_STR(b.spans[0].trace_id, "0000000000000000463ac35c9f6413ad");
        CHECK_STR(b.spans[0].node, "10.0.0.1");
        CHECK_STR(b.spans[0].service, "zf");
        CHECK_INT(b.spans[0].kind, SPAN_KIND_CLIENT);
        CHECK_INT(b.spans[0].status, SPAN_STATUS_ERROR);
        CHECK_INT(b.spans[0].end_us - b.spans[0].start_us, 20000);
        CHECK(strstr(b.spans[0].attrs, "\"peer.service\":\"zb\"") != NULL, "%s", b.spans[0].attrs);
        CHECK_INT(b.spans[1].shared, 1);
        CHECK_STR(b.spans[1].node, "::1");
    }
    free(buf);
    span_batch_fini(&b);
    span_batch_init(&b);
    CHECK_INT(zipkin_decode("{\"not\":1}", 9, &b, 100, err, sizeof err), -EINVAL);
    CHECK_INT(zipkin_decode("[{}, 1]", 7, &b, 100, err, sizeof err), 0);
    CHECK_INT(b.rejected, 2);
    span_batch_fini(&b);
}

static struct span *mk(struct span_batch *b, const char *sid, const char *pid, const char *node, int kind,
                       int64_t start, int64_t end)
{
    struct span *s = span_batch_add(b);
    snprintf(s->trace_id, sizeof s->trace_id, "%s", "0af7651916cd43dd8448eb211c80319c");
    snprintf(s->span_id, sizeof s->span_id, "%s", sid);
    snprintf(s->parent_id, sizeof s->parent_id, "%s", pid);
    s->node = s->service = node;
    s->name = sid;
    s->kind = kind;
    s->start_us = start;
    s->end_us = end;
    return s;
}

static const struct span *by_id(const struct trace_view *v, const char *id, int *depth)
{
    for (size_t i = 0; i < v->b.n; i++)
        if (!strcmp(v->b.spans[i].span_id, id)) {
            if (depth)
                *depth = v->depth[i];
            return &v->b.spans[i];
        }
    return NULL;
}

static void test_assemble(void)
{
    struct span_batch b;
    struct trace_view v;
    int d;
    /* node B is 5 s ahead: its server span (and its child) are centred */
    span_batch_init(&b);
    mk(&b, "000000000000000a", "", "A", SPAN_KIND_SERVER, 1000000, 1100000);
    mk(&b, "000000000000000b", "000000000000000a", "A", SPAN_KIND_CLIENT, 1010000, 1090000);
    mk(&b, "000000000000000c", "000000000000000b", "B", SPAN_KIND_SERVER, 6020000, 6080000);
    mk(&b, "000000000000000d", "000000000000000c", "B", SPAN_KIND_INTERNAL, 6030000, 6040000);
    mk(&b, "000000000000000e", "00000000000000ff", "C", SPAN_KIND_SERVER, 2000000, 2000100); /* orphan */
    CHECK_INT(trace_assemble(&b, 10000000, &v), 0);
    CHECK_INT(v.b.n, 5);
    CHECK_INT(v.nroots, 2);
    const struct span *c = by_id(&v, "000000000000000c", &d);
    CHECK(c != NULL, "server span kept");
    if (c) {
        CHECK_INT(c->skew_us, -5000000);
        CHECK_INT(c->start_us + c->skew_us, 1020000);
        CHECK_INT(d, 2);
    }
    const struct span *dd = by_id(&v, "000000000000000d", &d);
    CHECK(dd && dd->skew_us == -5000000 && d == 3, "child on the same node shifted too");
    const struct span *o = by_id(&v, "000000000000000e", &d);
    CHECK(o && o->skew_us == 0 && d == 0, "orphan is a root, uncorrected");
    CHECK_STR(v.b.spans[0].span_id, "000000000000000a");
    struct trace_summary s;
    trace_summarize(&v, &s);
    CHECK_STR(s.services, "A,B,C");
    CHECK_INT(s.span_count, 5);
    trace_view_fini(&v);

    /* beyond --max-skew: not applied */
    span_batch_init(&b);
    mk(&b, "000000000000000a", "", "A", SPAN_KIND_CLIENT, 1000000, 1100000);
    mk(&b, "000000000000000c", "000000000000000a", "B", SPAN_KIND_SERVER, 6020000, 6080000);
    CHECK_INT(trace_assemble(&b, 1000000, &v), 0);
    c = by_id(&v, "000000000000000c", NULL);
    CHECK(c && c->skew_us == 0, "skew over the bound is not applied");
    trace_view_fini(&v);

    /* Zipkin shared span: client + server halves become one span; the server node is corrected */
    span_batch_init(&b);
    mk(&b, "0000000000000001", "", "A", SPAN_KIND_CLIENT, 1000000, 1100000);
    struct span *srv = mk(&b, "0000000000000001", "", "B", SPAN_KIND_SERVER, 900000, 980000);
    srv->shared = 1;
    srv->service = "backend";
    srv->name = "get /api";
    mk(&b, "0000000000000002", "0000000000000001", "B", SPAN_KIND_CLIENT, 910000, 920000);
    mk(&b, "0000000000000002", "0000000000000001", "B", SPAN_KIND_CLIENT, 910000, 920000); /* dup */
    CHECK_INT(trace_assemble(&b, 10000000, &v), 0);
    CHECK_INT(v.b.n, 2);
    c = by_id(&v, "0000000000000001", NULL);
    if (c) {
        CHECK_STR(c->service, "backend");
        CHECK_STR(c->name, "get /api");
        CHECK_INT(c->start_us, 1000000);
        CHECK_INT(c->kind, SPAN_KIND_SERVER);
    }
    c = by_id(&v, "0000000000000002", &d);
    CHECK(c && c->skew_us == 1000000 + 10000 - 900000 && d == 1, "server-node child shifted by the pair's offset");
    trace_view_fini(&v);

    /* cycle: both become reachable, no hang */
    span_batch_init(&b);
    mk(&b, "0000000000000001", "0000000000000002", "A", 0, 1, 2);
    mk(&b, "0000000000000002", "0000000000000001", "A", 0, 1, 2);
    mk(&b, "0000000000000003", "0000000000000003", "A", 0, 1, 2);
    CHECK_INT(trace_assemble(&b, 10, &v), 0);
    CHECK_INT(v.b.n, 3);
    trace_view_fini(&v);
}

static void test_store(void)
{
    char path[] = "/tmp/sonde-test-spans-XXXXXX", err[256];
    int fd = mkstemp(path);
    close(fd);
    unlink(path);
    struct span_store *st = NULL;
    CHECK_INT(span_store_open(path, 0, &st, err, sizeof err), SE_BADFILE);
    CHECK_INT(span_store_open(path, STORE_CREATE, &st, err, sizeof err), 0);
    struct span_batch b;
    span_batch_init(&b);
    mk(&b, "000000000000000a", "", "A", SPAN_KIND_SERVER, 1000000, 1100000);
    mk(&b, "000000000000000b", "000000000000000a", "A", SPAN_KIND_CLIENT, 1010000, 1090000);
    mk(&b, "000000000000000b", "000000000000000a", "A", SPAN_KIND_CLIENT, 1010000, 1090000);
    size_t ins = 0;
    CHECK_INT(span_store_insert(st, b.spans, b.n, 5, &ins, err, sizeof err), 0);
    CHECK_INT(ins, 2);
    CHECK_INT(span_store_insert(st, b.spans, 1, 5, &ins, err, sizeof err), 0);
    CHECK_INT(ins, 0);
    span_batch_fini(&b);
    span_batch_init(&b);
    CHECK_INT(span_store_load(st, "0af7651916cd43dd8448eb211c80319c", &b, err, sizeof err), 0);
    CHECK_INT(b.n, 2);
    span_batch_fini(&b);
    char (*ids)[33];
    size_t n;
    struct store_filter f = { .service = "A" };
    CHECK_INT(span_store_find(st, &f, &ids, &n, err, sizeof err), 0);
    CHECK_INT(n, 1);
    free(ids);
    f.service = "nope";
    CHECK_INT(span_store_find(st, &f, &ids, &n, err, sizeof err), 0);
    CHECK_INT(n, 0);
    free(ids);
    size_t del;
    CHECK_INT(span_store_expire(st, 1050000, &del, err, sizeof err), 0);
    CHECK_INT(del, 0);
    CHECK_INT(span_store_expire(st, 1100001, &del, err, sizeof err), 0);
    CHECK_INT(del, 1);
    span_batch_init(&b);
    CHECK_INT(span_store_load(st, "0af7651916cd43dd8448eb211c80319c", &b, err, sizeof err), -ENOENT);
    span_batch_fini(&b);
    span_store_free(st);
    CHECK_INT(span_store_open(path, 0, &st, err, sizeof err), 0);
    span_store_free(st);
    char wal[300];
    snprintf(wal, sizeof wal, "%s-wal", path);
    unlink(wal);
    snprintf(wal, sizeof wal, "%s-shm", path);
    unlink(wal);
    /* a foreign file */
    FILE *fp = fopen(path, "w");
    fputs("this is not a database, just some text that is long enough.......................................", fp);
    fclose(fp);
    CHECK_INT(span_store_open(path, 0, &st, err, sizeof err), SE_BADFILE);
    unlink(path);
}

static void test_formats(void)
{
    struct span_batch b;
    span_batch_init(&b);
    struct span *s = mk(&b, "000000000000000a", "", "10.1.2.3", SPAN_KIND_SERVER, 1000000, 1100000);
    s->attrs = "{\"http.status_code\":200,\"x\":\"y\"}";
    s->skew_us = 5;
    char *out;
    size_t len;
    CHECK_INT(fmt_otlp_json(b.spans, b.n, &out, &len), 0);
    /* round trip through our decoder */
    struct span_batch r;
    span_batch_init(&r);
    char err[256];
    CHECK_INT(otlp_json_decode(out, len, &r, 10, err, sizeof err), 0);
    CHECK(r.n == 1 && r.spans[0].start_us == 1000005 && r.spans[0].kind == SPAN_KIND_SERVER, "otlp round trip");
    CHECK(r.n == 1 && strstr(r.spans[0].attrs, "\"http.status_code\":200"), "attrs kept");
    free(out);
    span_batch_fini(&r);
    CHECK_INT(fmt_zipkin_json(b.spans, b.n, &out, &len), 0);
    span_batch_init(&r);
    CHECK_INT(zipkin_decode(out, len, &r, 10, err, sizeof err), 0);
    CHECK(r.n == 1 && !strcmp(r.spans[0].node, "10.1.2.3") && r.spans[0].end_us == 1100005, "zipkin round trip");
    free(out);
    span_batch_fini(&r);
    span_batch_fini(&b);
}

/* attrs of s read back by a strict reader, or NULL */
static json_t *attrs_of(const struct span *s)
{
    json_t *a = json_loads(s->attrs, 0, NULL);
    CHECK(json_is_object(a), "attributes of %s read back: %s", s->name, s->attrs);
    return a;
}

static const struct span *named(const struct span_batch *b, const char *name)
{
    for (size_t i = 0; i < b->n; i++)
        if (!strcmp(b->spans[i].name, name))
            return &b->spans[i];
    CHECK(0, "no span named %s", name);
    return NULL;
}

/* Times out of range are rejected per span, never wrapped; odd attribute
 * values lose only themselves (tests/fuzz/gen_hostile.py made the inputs). */
static void test_hostile(void)
{
    size_t len;
    char err[256];
    struct span_batch b;
    const struct span *s;
    json_t *a;

    span_batch_init(&b);
    char *buf = slurp("tests/fuzz/corpus/otlp_json/hostile_times.json", &len);
    CHECK_INT(otlp_json_decode(buf, len, &b, 100, err, sizeof err), 0);
    CHECK_INT(b.n, 2);
    CHECK_INT(b.rejected, 5);
    if ((s = named(&b, "good")))
        CHECK_INT(s->end_us - s->start_us, 1000000);
    if ((s = named(&b, "number forms"))) {
        CHECK_INT(s->start_us, 1700000000000000LL);
        CHECK_INT(s->end_us, 1700000000100000LL);
    }
    free(buf);
    span_batch_fini(&b);

    span_batch_init(&b);
    buf = slurp("tests/fuzz/corpus/otlp_proto/hostile.pb", &len);
    CHECK_INT(otlp_proto_decode((const uint8_t *)buf, len, &b, 100, err, sizeof err), 0);
    CHECK_INT(b.n, 2);
    CHECK_INT(b.rejected, 1);
    if ((s = named(&b, "end beyond int64")))
        CHECK_INT(s->end_us, SPAN_TIME_MAX_US); /* 2^63 ns: the last valid µs */
    if ((s = named(&b, "good")) && (a = attrs_of(s))) {
        CHECK_STR(json_string_value(json_object_get(a, "keep")), "yes");
        CHECK_STR(json_string_value(json_object_get(a, "nan")), "NaN");
        CHECK_STR(json_string_value(json_object_get(a, "inf")), "-Infinity");
        CHECK_STR(json_string_value(json_object_get(a, "bad\xef\xbf\xbd")), "x\xef\xbf\xbd");
        json_decref(a);
    }
    free(buf);
    span_batch_fini(&b);

    span_batch_init(&b);
    buf = slurp("tests/fuzz/corpus/otlp_json/hostile_attrs.json", &len);
    CHECK_INT(otlp_json_decode(buf, len, &b, 100, err, sizeof err), 0);
    CHECK_INT(b.n, 1);
    if (b.n == 1 && (a = attrs_of(&b.spans[0]))) {
        CHECK_STR(json_string_value(json_object_get(a, "keep")), "yes");
        CHECK_STR(json_string_value(json_object_get(a, "lone")), "a\xef\xbf\xbd" "b");
        CHECK_STR(json_string_value(json_object_get(a, "low\xef\xbf\xbd")), "\xef\xbf\xbdx");
        CHECK_STR(json_string_value(json_object_get(a, "pair")), "\xf0\x9f\x98\x80");
        CHECK_STR(json_string_value(json_object_get(a, "esc")), "\\ud800");
        CHECK(json_is_null(json_object_get(a, "bigint")), "an int beyond int64 is null");
        CHECK(json_is_null(json_object_get(a, "bigdbl")), "a double beyond range is null");
        CHECK_INT(json_integer_value(json_object_get(a, "last")), 7);
        /* 40 levels: kept down to the supported depth, then null */
        json_t *d = json_object_get(a, "deep");
        int levels = 0;
        while (json_is_object(d)) {
            d = json_object_get(d, "d");
            levels++;
        }
        CHECK(levels >= 12 && levels <= 18 && json_is_null(d), "deep attribute cut at %d levels", levels);
        json_decref(a);
    }
    free(buf);
    span_batch_fini(&b);

    span_batch_init(&b);
    buf = slurp("tests/fuzz/corpus/zipkin/hostile.json", &len);
    CHECK_INT(zipkin_decode(buf, len, &b, 100, err, sizeof err), 0);
    CHECK_INT(b.n, 2);
    CHECK_INT(b.rejected, 6);
    if ((s = named(&b, "n7"))) { /* string timestamp, negative duration: 0 */
        CHECK_INT(s->start_us, 1700000000000000LL);
        CHECK_INT(s->end_us, 1700000000000000LL);
    }
    if ((s = named(&b, "n1")) && (a = attrs_of(s))) {
        CHECK_INT(s->end_us - s->start_us, 20000);
        CHECK_INT(s->status, SPAN_STATUS_ERROR);
        CHECK_STR(json_string_value(json_object_get(a, "keep")), "yes");
        CHECK_STR(json_string_value(json_object_get(a, "lone")), "a\xef\xbf\xbd" "b");
        CHECK_STR(json_string_value(json_object_get(a, "nul")), "\xef\xbf\xbd");
        CHECK(json_is_null(json_object_get(a, "big")) && json_is_null(json_object_get(a, "dbl")), "%s", s->attrs);
        CHECK_INT(json_integer_value(json_object_get(a, "n")), 3);
        json_t *ann = json_object_get(a, "annotations");
        CHECK_INT(json_array_size(ann), 2);
        CHECK_STR(json_string_value(json_object_get(json_array_get(ann, 0), "value")), "w\xef\xbf\xbd");
        json_decref(a);
    }
    free(buf);
    span_batch_fini(&b);

    /* a store may hold anything: assembly and exports stay in range */
    span_batch_init(&b);
    mk(&b, "0000000000000001", "", "a", SPAN_KIND_SERVER, INT64_MIN, INT64_MAX);
    mk(&b, "0000000000000002", "0000000000000001", "b", SPAN_KIND_CLIENT, INT64_MAX, INT64_MIN);
    mk(&b, "0000000000000003", "0000000000000001", "c", SPAN_KIND_CLIENT, INT64_MAX - 5, INT64_MAX);
    struct trace_view v;
    CHECK_INT(trace_assemble(&b, INT64_MAX, &v), 0);
    CHECK(v.start_us >= 0 && v.end_us <= SPAN_TIME_MAX_US && v.start_us <= v.end_us, "extent %lld..%lld",
          (long long)v.start_us, (long long)v.end_us);
    for (size_t i = 0; i < v.b.n; i++) {
        const struct span *x = &v.b.spans[i];
        int64_t cs = x->start_us + x->skew_us, ce = x->end_us + x->skew_us;
        CHECK(cs >= 0 && cs <= ce && ce <= SPAN_TIME_MAX_US, "span %s corrected %lld..%lld", x->span_id,
              (long long)cs, (long long)ce);
        CHECK(span_cstart(x) == cs && span_cend(x) == ce, "helpers agree");
    }
    char *out, t[64];
    CHECK_INT(fmt_otlp_json(v.b.spans, v.b.n, &out, &len), 0);
    CHECK(!strstr(out, "\"-"), "no negative time in %s", out);
    free(out);
    CHECK_INT(fmt_zipkin_json(v.b.spans, v.b.n, &out, &len), 0);
    CHECK(!strstr(out, ":-"), "no negative time in %s", out);
    free(out);
    trace_fmt_time(t, sizeof t, INT64_MIN);
    CHECK_STR(t, "1970-01-01 00:00:00.000000");
    trace_fmt_time(t, sizeof t, INT64_MAX);
    CHECK(!strncmp(t, "2262-04-11", 10), "%s", t);
    trace_view_fini(&v);
    span_batch_fini(&b);
    /* a span struct straight from elsewhere: the helpers saturate */
    struct span raw = { .start_us = INT64_MAX, .end_us = INT64_MIN, .skew_us = INT64_MAX };
    CHECK_INT(span_cstart(&raw), SPAN_TIME_MAX_US);
    CHECK_INT(span_cend(&raw), SPAN_TIME_MAX_US);
    raw.skew_us = INT64_MIN;
    CHECK_INT(span_cstart(&raw), 0);
}

int main(void)
{
    test_otlp_json();
    test_otlp_proto();
    test_zipkin();
    test_assemble();
    test_store();
    test_formats();
    test_hostile();
    return check_done("collector");
}
