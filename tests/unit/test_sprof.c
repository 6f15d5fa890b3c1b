/* Span profiles (spans/profile.c): built, encoded as gzipped pprof, decoded
 * back and summarized; hostile profiles refused with a reason and never a
 * crash (truncations, flipped bytes, lies, bombs); stored with their span by
 * the span store (and a version 1 store read without them); taken out of a
 * span's attributes by the collector (collector/decode.c). */
#include "check.h"
#include "collector/decode.h"
#include "common/err.h"
#include "common/state.h"
#include "spans/profile.h"
#include "store/spans.h"

#include "profile.pb-c.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define TID "0af7651916cd43dd8448eb211c80319c"
#define SID "00f067aa0ba902b7"

/* handle (GIL held 30 ms in compute, waiting 60 ms), and idle 10 ms */
static void build(struct sprof *p)
{
    sprof_init(p);
    snprintf(p->trace_id, sizeof p->trace_id, TID);
    snprintf(p->span_id, sizeof p->span_id, SID);
    int main_ = sprof_frame(p, "main", "app.py", 10, 1);
    int handle = sprof_frame(p, "handle", "app.py", 22, 20);
    int compute = sprof_frame(p, "compute", "work.py", 7, 5);
    int compute2 = sprof_frame(p, "compute", "work.py", 8, 5); /* another line, same function */
    CHECK_INT(sprof_frame(p, "handle", "app.py", 22, 20), handle);
    uint32_t a[] = { (uint32_t)compute, (uint32_t)handle, (uint32_t)main_ };
    uint32_t b[] = { (uint32_t)compute2, (uint32_t)handle, (uint32_t)main_ };
    uint32_t c[] = { (uint32_t)handle, (uint32_t)main_ };
    for (int i = 0; i < 2; i++)
        CHECK_INT(sprof_add(p, a, 3, STATE_GIL, 1, 10000000, 9000000), 0);
    CHECK_INT(sprof_add(p, b, 3, STATE_GIL, 1, 10000000, 9000000), 0);
    for (int i = 0; i < 6; i++)
        CHECK_INT(sprof_add(p, c, 2, STATE_GIL_WAIT, 1, 10000000, 0), 0);
    CHECK_INT(sprof_add(p, c, 2, STATE_IDLE, 1, 10000000, 0), 0);
    CHECK_INT(sprof_add(p, c, 2, 7, 1, 1, 0), -EINVAL);
    uint32_t bad[] = { 99 };
    CHECK_INT(sprof_add(p, bad, 1, STATE_GIL, 1, 1, 0), -EINVAL);
    CHECK_INT(p->nsamples, 4);
}

static void check_summary(const struct sprof *p)
{
    struct sprof_summary s;
    sprof_summarize(p, &s);
    CHECK_INT(s.samples, 10);
    CHECK_INT(s.wall_ns, 100000000);
    CHECK_INT(s.cpu_ns, 27000000);
    CHECK_INT(s.state_ns[STATE_GIL], 30000000);
    CHECK_INT(s.state_ns[STATE_GIL_WAIT], 60000000);
    CHECK_INT(s.state_ns[STATE_IDLE], 10000000);
    CHECK_INT(s.ntop, 2);
    CHECK_STR(s.top[0].function, "handle");
    CHECK_INT(s.top[0].self_wall_ns, 70000000);
    CHECK_STR(s.top[1].function, "compute");
    CHECK_STR(s.top[1].file, "work.py");
    CHECK_INT(s.top[1].line, 5);
    CHECK_INT(s.top[1].self_wall_ns, 30000000); /* both lines of compute */
    char *j = sprof_summary_json(&s);
    CHECK(j && strstr(j, "\"gil_wait_pct\":60.0") && strstr(j, "\"function\":\"compute\""), "%s", j ? j : "NULL");
    free(j);
}

static void test_roundtrip(void)
{
    struct sprof p, q;
    build(&p);
    check_summary(&p);
    unsigned char *buf;
    size_t len;
    CHECK_INT(sprof_encode(&p, &buf, &len), 0);
    char err[200];
    CHECK_INT(sprof_decode(buf, len, TID, SID, 200000000, &q, err, sizeof err), 0);
    check_summary(&q);
    CHECK_INT(q.nsamples, 4);
    CHECK_INT(q.samples[0].n, 3);
    CHECK_STR(q.frames[q.stack[q.samples[0].off]].name, "compute");
    sprof_fini(&q);
    /* the profile says whose it is */
    CHECK_INT(sprof_decode(buf, len, TID, "1111111111111111", -1, &q, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "not of its span"), "%s", err);
    sprof_fini(&q);
    /* 100 ms of samples in a 1 ms span: within the slack (4x + 1 s) */
    CHECK_INT(sprof_decode(buf, len, TID, SID, 1000000, &q, err, sizeof err), 0);
    sprof_fini(&q);
    /* every truncation is refused, none crashes */
    for (size_t n = 0; n < len; n++) {
        CHECK(sprof_decode(buf, n, TID, SID, -1, &q, err, sizeof err) != 0, "prefix of %zu bytes accepted", n);
        sprof_fini(&q);
    }
    /* flipped bytes: refused or read, never a crash */
    unsigned seed = 12345;
    for (int i = 0; i < 3000; i++) {
        unsigned char *m = malloc(len);
        memcpy(m, buf, len);
        for (int k = 0; k < 3; k++) {
            seed = seed * 1103515245 + 12345;
            m[(seed >> 8) % len] ^= (unsigned char)(1 + (seed >> 20) % 255);
        }
        int rc = sprof_decode(m, len, TID, SID, -1, &q, err, sizeof err);
        if (!rc) {
            struct sprof_summary s;
            sprof_summarize(&q, &s);
        }
        sprof_fini(&q);
        free(m);
    }
    CHECK(1, "flips survived");
    free(buf);
    sprof_fini(&p);
}

/* pack a hand-made message (plain protobuf: the decoder takes it ungzipped too) */
static int decode_msg(Perftools__Profiles__Profile *m, char *err, size_t errlen)
{
    size_t n = perftools__profiles__profile__get_packed_size(m);
    uint8_t *b = malloc(n + 1);
    perftools__profiles__profile__pack(m, b);
    struct sprof q;
    int rc = sprof_decode(b, n, TID, SID, 1000000000, &q, err, errlen);
    sprof_fini(&q);
    free(b);
    return rc;
}

static void test_lies(void)
{
    char *strs[] = { "", "samples", "count", "wall", "nanoseconds", "cpu", "state", "gil", "f", "x.py", "nope" };
    Perftools__Profiles__ValueType vt[3], *vtp[3];
    int64_t types[3] = { 1, 3, 5 };
    for (int i = 0; i < 3; i++) {
        perftools__profiles__value_type__init(&vt[i]);
        vt[i].type = types[i];
        vt[i].unit = i ? 4 : 2;
        vtp[i] = &vt[i];
    }
    Perftools__Profiles__Function fn, *fnp = &fn;
    perftools__profiles__function__init(&fn);
    fn.id = 1, fn.name = 8, fn.filename = 9, fn.start_line = 1;
    Perftools__Profiles__Line ln, *lnp = &ln;
    perftools__profiles__line__init(&ln);
    ln.function_id = 1, ln.line = 2;
    Perftools__Profiles__Location loc, *locp = &loc;
    perftools__profiles__location__init(&loc);
    loc.id = 1, loc.n_line = 1, loc.line = &lnp;
    Perftools__Profiles__Label lb, *lbp = &lb;
    perftools__profiles__label__init(&lb);
    lb.key = 6, lb.str = 7;
    uint64_t locs[1] = { 1 };
    int64_t vals[3] = { 1, 10000000, 5000000 };
    Perftools__Profiles__Sample sm, *smp = &sm;
    perftools__profiles__sample__init(&sm);
    sm.n_location_id = 1, sm.location_id = locs, sm.n_value = 3, sm.value = vals, sm.n_label = 1, sm.label = &lbp;
    Perftools__Profiles__Profile m;
    perftools__profiles__profile__init(&m);
    m.n_sample_type = 3, m.sample_type = vtp, m.n_sample = 1, m.sample = &smp, m.n_location = 1;
    m.location = &locp, m.n_function = 1, m.function = &fnp, m.n_string_table = 11, m.string_table = strs;
    char err[200];
    CHECK_INT(decode_msg(&m, err, sizeof err), 0);

    locs[0] = 2; /* a location that is not there */
    CHECK_INT(decode_msg(&m, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "location 2"), "%s", err);
    locs[0] = 1;
    lb.str = 10; /* a state that is none */
    CHECK_INT(decode_msg(&m, err, sizeof err), -EINVAL);
    lb.str = 99; /* a string index out of range */
    CHECK_INT(decode_msg(&m, err, sizeof err), -EINVAL);
    lb.str = 7;
    sm.n_label = 0; /* no state */
    CHECK_INT(decode_msg(&m, err, sizeof err), -EINVAL);
    sm.n_label = 1;
    vals[1] = -5; /* negative wall */
    CHECK_INT(decode_msg(&m, err, sizeof err), -EINVAL);
    vals[1] = 100000000000LL; /* 100 s of wall in a 1 s span */
    CHECK_INT(decode_msg(&m, err, sizeof err), -EINVAL);
    CHECK(strstr(err, "wall time in a span"), "%s", err);
    vals[1] = 10000000;
    vals[2] = 3000000000LL; /* 3 s of CPU in 10 ms of wall */
    CHECK_INT(decode_msg(&m, err, sizeof err), -EINVAL);
    vals[2] = 1;
    sm.n_value = 2; /* values missing */
    CHECK_INT(decode_msg(&m, err, sizeof err), -EINVAL);
    sm.n_value = 3;
    ln.function_id = 5; /* a function that is not there */
    CHECK_INT(decode_msg(&m, err, sizeof err), -EINVAL);
    ln.function_id = 1;
    m.n_sample_type = 2; /* no cpu */
    CHECK_INT(decode_msg(&m, err, sizeof err), -EINVAL);
    m.n_sample_type = 3;
    strs[0] = "x"; /* string 0 must be "" */
    CHECK_INT(decode_msg(&m, err, sizeof err), -EINVAL);
    strs[0] = "";
    CHECK_INT(decode_msg(&m, err, sizeof err), 0);

    /* random bytes, an oversized buffer, a gzip bomb */
    struct sprof q;
    unsigned char junk[512];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 7 + 3);
    CHECK(sprof_decode(junk, sizeof junk, NULL, NULL, -1, &q, err, sizeof err) != 0, "junk accepted");
    sprof_fini(&q);
    unsigned char *big = calloc(SPROF_BYTES_MAX + 1, 1);
    CHECK_INT(sprof_decode(big, SPROF_BYTES_MAX + 1, NULL, NULL, -1, &q, err, sizeof err), -E2BIG);
    sprof_fini(&q);
    uLongf zlen = compressBound(SPROF_BYTES_MAX);
    unsigned char *zeros = calloc(SPROF_RAW_MAX + 16, 1);
    z_stream z;
    memset(&z, 0, sizeof z);
    deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    z.next_in = zeros;
    z.avail_in = SPROF_RAW_MAX + 16;
    z.next_out = big;
    z.avail_out = (uInt)SPROF_BYTES_MAX;
    CHECK_INT(deflate(&z, Z_FINISH), Z_STREAM_END);
    zlen = SPROF_BYTES_MAX - z.avail_out;
    deflateEnd(&z);
    CHECK_INT(sprof_decode(big, zlen, NULL, NULL, -1, &q, err, sizeof err), -E2BIG);
    sprof_fini(&q);
    free(zeros);
    free(big);
}

static void test_b64(void)
{
    const unsigned char in[] = { 0, 1, 2, 250, 251, 252, 253 };
    for (size_t n = 0; n <= sizeof in; n++) {
        char *t = sprof_b64(in, n);
        unsigned char *o;
        size_t on;
        CHECK_INT(sprof_unb64(t, strlen(t), &o, &on), 0);
        CHECK(on == n && memcmp(o, in, n) == 0, "round trip of %zu bytes", n);
        free(o);
        free(t);
    }
    unsigned char *o;
    size_t on;
    CHECK_INT(sprof_unb64("abc", 3, &o, &on), -EINVAL);
    CHECK_INT(sprof_unb64("ab=c", 4, &o, &on), -EINVAL);
    CHECK_INT(sprof_unb64("a\0bc", 4, &o, &on), -EINVAL);
    CHECK_INT(sprof_unb64("ab!c", 4, &o, &on), -EINVAL);
    CHECK_INT(sprof_unb64("====", 4, &o, &on), -EINVAL);
}

static struct span *mk(struct span_batch *b, const char *sid, const char *attrs)
{
    struct span *s = span_batch_add(b);
    snprintf(s->trace_id, sizeof s->trace_id, "%s", TID);
    snprintf(s->span_id, sizeof s->span_id, "%s", sid);
    s->node = s->service = s->name = "svc";
    s->attrs = span_batch_strdup(b, attrs, (size_t)-1);
    s->kind = SPAN_KIND_SERVER;
    s->start_us = 1000000;
    s->end_us = 1200000;
    return s;
}

static void test_collector_and_store(void)
{
    struct sprof p;
    build(&p);
    unsigned char *buf;
    size_t len;
    CHECK_INT(sprof_encode(&p, &buf, &len), 0);
    sprof_fini(&p);
    char *b64 = sprof_b64(buf, len);
    char *good = malloc(strlen(b64) + 100), *junk = malloc(strlen(b64) + 100);
    sprintf(good, "{\"a\":1,\"sonde.profile.pprof\":\"%s\"}", b64);
    b64[40] ^= 1;
    sprintf(junk, "{\"sonde.profile.pprof\":\"%s\"}", b64);
    struct span_batch b;
    span_batch_init(&b);
    mk(&b, SID, good);
    mk(&b, "1111111111111111", good);           /* another span's profile */
    mk(&b, "2222222222222222", junk);           /* damaged */
    mk(&b, "3333333333333333", "{\"sonde.profile.pprof\":\"%%%\"}"); /* not base64 */
    mk(&b, "4444444444444444", "{\"sonde.profile.pprof\":5}");
    mk(&b, "5555555555555555", "{\"b\":2}");    /* none */
    CHECK_INT(span_batch_profiles(&b), 0);
    CHECK_INT(b.n, 2);
    CHECK_INT(b.rejected, 4);
    CHECK_STR(b.spans[0].span_id, SID);
    CHECK(b.spans[0].pprof && b.spans[0].pprof_len == len && !memcmp(b.spans[0].pprof, buf, len), "pprof kept");
    CHECK_STR(b.spans[0].attrs, "{\"a\":1}");
    CHECK_STR(b.spans[1].span_id, "5555555555555555");
    CHECK(!b.spans[1].pprof, "no profile");

    /* the key's text in a nested key and in a value: a span with no profile */
    struct span_batch nb;
    span_batch_init(&nb);
    mk(&nb, "6666666666666666", "{\"o\":{\"sonde.profile.pprof\":1},\"v\":\"x\\\"sonde.profile.pprof\"}");
    CHECK_INT(span_batch_profiles(&nb), 0);
    CHECK_INT(nb.n, 1);
    CHECK_INT(nb.rejected, 0);
    CHECK(!nb.spans[0].pprof, "no profile");
    span_batch_fini(&nb);

    char path[] = "/tmp/sonde-test-sprof-XXXXXX", err[256];
    int fd = mkstemp(path);
    close(fd);
    unlink(path);
    struct span_store *st = NULL;
    CHECK_INT(span_store_open(path, STORE_CREATE, &st, err, sizeof err), 0);
    CHECK_INT(span_store_insert(st, b.spans, b.n, 5, NULL, err, sizeof err), 0);
    span_store_free(st);
    span_batch_fini(&b);
    CHECK_INT(span_store_open(path, 0, &st, err, sizeof err), 0);
    span_batch_init(&b);
    CHECK_INT(span_store_load(st, TID, &b, err, sizeof err), 0);
    CHECK_INT(b.n, 2);
    for (size_t i = 0; i < b.n; i++)
        if (!strcmp(b.spans[i].span_id, SID))
            CHECK(b.spans[i].pprof_len == len && !memcmp(b.spans[i].pprof, buf, len), "stored profile");
        else
            CHECK(!b.spans[i].pprof, "no profile");
    span_batch_fini(&b);
    span_store_free(st);

    /* a damaged profile in the store: refused on reading */
    sqlite3 *db;
    sqlite3_open(path, &db);
    sqlite3_exec(db, "UPDATE span_profile SET pprof = x'1f8b0800'", NULL, NULL, NULL);
    sqlite3_close(db);
    CHECK_INT(span_store_open(path, 0, &st, err, sizeof err), 0);
    span_batch_init(&b);
    CHECK_INT(span_store_load(st, TID, &b, err, sizeof err), SE_BADFILE);
    CHECK(strstr(err, "damaged store"), "%s", err);
    span_batch_fini(&b);
    span_store_free(st);
    /* a view in its place: refused on opening */
    sqlite3_open(path, &db);
    sqlite3_exec(db, "DROP TABLE span_profile; CREATE VIEW span_profile AS SELECT 1 AS trace_id, 2 AS span_id,"
                     " 3 AS pprof", NULL, NULL, NULL);
    sqlite3_close(db);
    CHECK_INT(span_store_open(path, 0, &st, err, sizeof err), SE_BADFILE);
    /* a version 1 store (no span_profile): read, without profiles */
    sqlite3_open(path, &db);
    sqlite3_exec(db, "DROP VIEW span_profile; UPDATE meta SET value='1' WHERE key='spans_schema_version'", NULL,
                 NULL, NULL);
    sqlite3_close(db);
    CHECK_INT(span_store_open(path, 0, &st, err, sizeof err), 0);
    span_batch_init(&b);
    CHECK_INT(span_store_load(st, TID, &b, err, sizeof err), 0);
    CHECK(b.n == 2 && !b.spans[0].pprof && !b.spans[1].pprof, "version 1: no profiles");
    span_batch_fini(&b);
    span_store_free(st);
    /* a writer upgrades it */
    CHECK_INT(span_store_open(path, STORE_CREATE, &st, err, sizeof err), 0);
    span_store_free(st);
    char v[16] = "";
    CHECK_INT(span_store_open(path, 0, &st, err, sizeof err), 0);
    CHECK_INT(span_store_get_meta(st, "spans_schema_version", v, sizeof v), 0);
    CHECK_STR(v, "2");
    span_store_free(st);
    unlink(path);
    free(good);
    free(junk);
    free(b64);
    free(buf);
}

/* What a sender chooses must not cost quadratic work or unbounded memory:
 * 4096 locations and 4096 samples of 512 ids each (a scan per id would be
 * 8.6e9 steps: this test would time out), and 8 MB of empty samples (2
 * bytes each on the wire, a malloc'd struct each unpacked: refused by the
 * unpacking budget, not after it). */
static void test_costly(void)
{
    char *strs[] = { "", "samples", "count", "wall", "nanoseconds", "cpu", "state", "gil", "f", "x.py" };
    Perftools__Profiles__ValueType vt[3], *vtp[3];
    int64_t types[3] = { 1, 3, 5 };
    for (int i = 0; i < 3; i++) {
        perftools__profiles__value_type__init(&vt[i]);
        vt[i].type = types[i];
        vt[i].unit = i ? 4 : 2;
        vtp[i] = &vt[i];
    }
    Perftools__Profiles__Function fn, *fnp = &fn;
    perftools__profiles__function__init(&fn);
    fn.id = 1, fn.name = 8, fn.filename = 9, fn.start_line = 1;
    Perftools__Profiles__Line ln, *lnp = &ln;
    perftools__profiles__line__init(&ln);
    ln.function_id = 1, ln.line = 2;
    enum { NL = SPROF_FRAMES_MAX, NS = SPROF_SAMPLES_MAX, D = SPROF_DEPTH_MAX };
    Perftools__Profiles__Location *locs = calloc(NL, sizeof *locs), **locp = calloc(NL, sizeof *locp);
    for (size_t i = 0; i < NL; i++) {
        perftools__profiles__location__init(&locs[i]);
        locs[i].id = i + 1, locs[i].n_line = 1, locs[i].line = &lnp;
        locp[i] = &locs[i];
    }
    Perftools__Profiles__Label lb, *lbp = &lb;
    perftools__profiles__label__init(&lb);
    lb.key = 6, lb.str = 7;
    uint64_t ids[D];
    for (size_t k = 0; k < D; k++)
        ids[k] = NL; /* the last location: the longest scan */
    int64_t vals[3] = { 0, 0, 0 };
    Perftools__Profiles__Sample *sm = calloc(NS, sizeof *sm), **smp = calloc(NS, sizeof *smp);
    for (size_t i = 0; i < NS; i++) {
        perftools__profiles__sample__init(&sm[i]);
        sm[i].n_location_id = D, sm[i].location_id = ids, sm[i].n_value = 3, sm[i].value = vals;
        sm[i].n_label = 1, sm[i].label = &lbp;
        smp[i] = &sm[i];
    }
    Perftools__Profiles__Profile m;
    perftools__profiles__profile__init(&m);
    m.n_sample_type = 3, m.sample_type = vtp, m.n_sample = NS, m.sample = smp, m.n_location = NL;
    m.location = locp, m.n_function = 1, m.function = &fnp, m.n_string_table = 10, m.string_table = strs;
    char err[200];
    size_t plen = perftools__profiles__profile__get_packed_size(&m);
    uint8_t *pb = malloc(plen);
    perftools__profiles__profile__pack(&m, pb);
    uLongf gl = compressBound(plen);
    uint8_t *gz = malloc(gl);
    z_stream g;
    memset(&g, 0, sizeof g);
    deflateInit2(&g, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    g.next_in = pb, g.avail_in = (uInt)plen, g.next_out = gz, g.avail_out = (uInt)gl;
    CHECK_INT(deflate(&g, Z_FINISH), Z_STREAM_END);
    gl -= g.avail_out;
    deflateEnd(&g);
    struct sprof q;
    CHECK(gl < SPROF_BYTES_MAX && plen < SPROF_RAW_MAX, "%lu / %zu bytes", (unsigned long)gl, plen);
    CHECK_INT(sprof_decode(gz, gl, NULL, NULL, -1, &q, err, sizeof err), 0);
    CHECK_INT(q.nsamples, NS);
    sprof_fini(&q);
    free(gz);
    free(pb);
    free(sm);
    free(smp);
    free(locs);
    free(locp);

    /* field 2 (sample), empty, over and over: 8 MB raw */
    size_t n = SPROF_RAW_MAX - 64;
    unsigned char *raw = malloc(n);
    for (size_t i = 0; i + 1 < n; i += 2)
        raw[i] = 0x12, raw[i + 1] = 0;
    /* gzipped, it fits the encoded bound */
    uLongf zl = compressBound(n);
    unsigned char *z = malloc(zl);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    deflateInit2(&zs, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    zs.next_in = raw, zs.avail_in = (uInt)n, zs.next_out = z, zs.avail_out = (uInt)zl;
    CHECK_INT(deflate(&zs, Z_FINISH), Z_STREAM_END);
    zl = zl - zs.avail_out;
    deflateEnd(&zs);
    CHECK(zl < SPROF_BYTES_MAX, "%lu bytes gzipped", (unsigned long)zl);
    CHECK_INT(sprof_decode(z, zl, NULL, NULL, -1, &q, err, sizeof err), -E2BIG);
    CHECK(strstr(err, "unpacked"), "%s", err);
    sprof_fini(&q);
    free(z);
    free(raw);
}

int main(void)
{
    test_roundtrip();
    test_lies();
    test_costly();
    test_b64();
    test_collector_and_store();
    return check_done("sprof");
}
