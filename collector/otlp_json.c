#include "collector/otlp_json.h"

#include "collector/attrs.h"
#include "collector/json_tok.h"
#include "collector/decode.h"
#include "common/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decoding walks the token array of collector/json_tok.c: no tree, no
 * allocation per value. Attributes are re-emitted as compact JSON text
 * straight from the (validated) input bytes. */

/* Attribute values nest at most ATTR_MAX_DEPTH levels (deeper ones become
 * null). The document allows that much nesting of attributes under a span
 * (4 JSON levels per attribute level, 9 above the first): anything
 * deeper arrives as one JT_DEEP token and becomes null too, never a 400. */
#define ATTR_MAX_DEPTH 16
#define DOC_MAX_DEPTH (16 + 4 * ATTR_MAX_DEPTH)

static void put_raw(struct attrs_buf *b, const struct jt_doc *d, long i)
{
    attrs_put(b, d->src + d->t[i].start, d->t[i].len);
}

static void put_kvlist(struct attrs_buf *b, const struct jt_doc *d, long arr, int depth);

static void put_any(struct attrs_buf *b, const struct jt_doc *d, long v, int depth)
{
    long x;
    if (v < 0 || d->t[v].type != JT_OBJ || depth > ATTR_MAX_DEPTH) {
        attrs_put(b, "null", 4);
        return;
    }
    if ((x = jt_get(d, (size_t)v, "stringValue")) >= 0 && d->t[x].type == JT_STR)
        attrs_put_str(b, d, x);
    else if ((x = jt_get(d, (size_t)v, "boolValue")) >= 0 && (d->t[x].type == JT_TRUE || d->t[x].type == JT_FALSE))
        put_raw(b, d, x);
    else if ((x = jt_get(d, (size_t)v, "intValue")) >= 0 && (d->t[x].type == JT_STR || d->t[x].type == JT_NUM) &&
             !d->t[x].esc)
        attrs_put_int_text(b, d->src + d->t[x].start, d->t[x].len);
    else if ((x = jt_get(d, (size_t)v, "doubleValue")) >= 0 && d->t[x].type == JT_NUM)
        attrs_put_num(b, d, x);
    else if ((x = jt_get(d, (size_t)v, "bytesValue")) >= 0 && d->t[x].type == JT_STR)
        attrs_put_str(b, d, x);
    else if ((x = jt_get(d, (size_t)v, "arrayValue")) >= 0) {
        long vals = jt_get(d, (size_t)x, "values");
        attrs_put(b, "[", 1);
        if (vals >= 0 && d->t[vals].type == JT_ARR) {
            size_t j = (size_t)vals + 1;
            for (uint32_t k = 0; k < d->t[vals].size; k++) {
                if (k)
                    attrs_put(b, ",", 1);
                put_any(b, d, (long)j, depth + 1);
                j = d->t[j].next;
            }
        }
        attrs_put(b, "]", 1);
    } else if ((x = jt_get(d, (size_t)v, "kvlistValue")) >= 0) {
        put_kvlist(b, d, jt_get(d, (size_t)x, "values"), depth + 1);
    } else
        attrs_put(b, "null", 4);
}

static void put_kvlist(struct attrs_buf *b, const struct jt_doc *d, long arr, int depth)
{
    attrs_put(b, "{", 1);
    if (arr >= 0 && d->t[arr].type == JT_ARR) { /* values too deep: null (put_any) */
        size_t j = (size_t)arr + 1;
        int first = 1;
        for (uint32_t k = 0; k < d->t[arr].size; k++, j = d->t[j].next) {
            long key = jt_get(d, j, "key");
            if (key < 0 || d->t[key].type != JT_STR)
                continue;
            if (!first)
                attrs_put(b, ",", 1);
            first = 0;
            attrs_put_str(b, d, key);
            attrs_put(b, ":", 1);
            put_any(b, d, jt_get(d, j, "value"), depth);
        }
    }
    attrs_put(b, "}", 1);
}

/* A time in ns, a u64 written as a decimal string or a JSON number, to µs
 * in *us: 0 (absent or null: 0), -EINVAL (not a number) or -ERANGE
 * (negative, or beyond SPAN_TIME_MAX_US). */
static int time_us(const struct jt_doc *d, long i, int64_t *us)
{
    *us = 0;
    if (i < 0 || d->t[i].type == JT_NULL)
        return 0;
    const struct jtok *t = &d->t[i];
    const char *s = d->src + t->start;
    if ((t->type != JT_STR && t->type != JT_NUM) || t->esc || !t->len)
        return -EINVAL;
    if (s[0] == '-')
        return t->len > 1 ? -ERANGE : -EINVAL;
    uint64_t v = 0;
    uint32_t k = 0;
    for (; k < t->len && s[k] >= '0' && s[k] <= '9'; k++) {
        if (v > (UINT64_MAX - 9) / 10)
            return -ERANGE;
        v = v * 10 + (uint64_t)(s[k] - '0');
    }
    if (k < t->len) {
        /* a JSON number with a fraction or an exponent (the tokenizer has
         * checked its form); a string must be plain digits */
        if (t->type != JT_NUM || t->len >= 64)
            return -EINVAL;
        char tmp[64];
        memcpy(tmp, s, t->len);
        tmp[t->len] = 0;
        double x = strtod(tmp, NULL);
        if (!(x >= 0 && x < 18446744073709551616.0))
            return -ERANGE;
        v = (uint64_t)x;
    }
    return span_time_from_ns(v, us);
}

static int small_int(const struct jt_doc *d, long i, int max)
{
    const struct jtok *t = &d->t[i];
    if (t->type != JT_NUM || t->len != 1)
        return -1;
    int v = d->src[t->start] - '0';
    return v >= 0 && v <= max ? v : -1;
}

static int kind_of(const struct jt_doc *d, long i)
{
    if (i < 0)
        return 0;
    int k = small_int(d, i, 5);
    if (k >= 0)
        return k;
    if (d->t[i].type == JT_STR && !d->t[i].esc && d->t[i].len > 10 && d->t[i].len < 40 &&
        !memcmp(d->src + d->t[i].start, "SPAN_KIND_", 10)) {
        char name[40];
        memcpy(name, d->src + d->t[i].start + 10, d->t[i].len - 10);
        name[d->t[i].len - 10] = 0;
        return span_kind_from_name(name);
    }
    return 0;
}

static int status_of(const struct jt_doc *d, long st)
{
    if (st < 0)
        return 0;
    long c = jt_get(d, (size_t)st, "code");
    if (c < 0)
        return 0;
    int k = small_int(d, c, 2);
    if (k >= 0)
        return k;
    if (jt_eq(d, (size_t)c, "STATUS_CODE_OK"))
        return 1;
    if (jt_eq(d, (size_t)c, "STATUS_CODE_ERROR"))
        return 2;
    return 0;
}

static int decode_span(const struct jt_doc *d, size_t js, const struct attrs_res *res, struct span_batch *out,
                       size_t max_spans, struct attrs_buf *ab)
{
    char t[33], s[17], p[17] = "";
    if (d->t[js].type != JT_OBJ)
        return span_batch_reject(out, "span is not an object");
    static const char *const keys[] = { "traceId", "spanId", "parentSpanId", "name", "kind", "status",
                                        "startTimeUnixNano", "endTimeUnixNano", "attributes" };
    long v[sizeof keys / sizeof keys[0]];
    jt_get_keys(d, js, keys, sizeof keys / sizeof keys[0], v);
    long tid = v[0], sid = v[1], pid = v[2], name = v[3], kind = v[4], status = v[5], start = v[6], end = v[7],
         attrs = v[8];
    if (attrs_jt_id(d, tid, t, 32, 0) || attrs_jt_id(d, sid, s, 16, 0) ||
        (pid >= 0 && d->t[pid].type == JT_STR && d->t[pid].len && attrs_jt_id(d, pid, p, 16, 0))) {
        return span_batch_reject(out, "invalid trace or span id");
    }
    int64_t st, en;
    int trc = time_us(d, start, &st);
    if (!trc)
        trc = time_us(d, end, &en);
    if (!trc)
        trc = span_times_check(st, &en);
    if (trc)
        return span_batch_reject(out, trc == -ERANGE ? "start or end time out of range" : "invalid start or end time");
    int rc;
    struct span *sp = span_batch_take(out, max_spans, &rc);
    if (!sp)
        return rc;
    memcpy(sp->trace_id, t, sizeof t);
    memcpy(sp->span_id, s, sizeof s);
    memcpy(sp->parent_id, p, sizeof p);
    if (!(sp->name = attrs_jt_str(out, d, name)))
        return -ENOMEM;
    sp->service = res->service;
    sp->node = res->node;
    sp->kind = kind_of(d, kind);
    sp->status = status_of(d, status);
    sp->start_us = st;
    sp->end_us = en;
    ab->n = 0;
    put_kvlist(ab, d, attrs, 0);
    if (ab->oom)
        return -ENOMEM;
    sp->attrs = span_batch_strdup(out, ab->p, ab->n);
    return sp->attrs ? 0 : -ENOMEM;
}

static int resource(const struct jt_doc *d, long attrs, struct span_batch *out, struct attrs_res *res)
{
    const char *svc = NULL, *host_name = NULL, *host = NULL, *inst = NULL;
    if (attrs >= 0 && d->t[attrs].type == JT_ARR) {
        size_t j = (size_t)attrs + 1;
        for (uint32_t k = 0; k < d->t[attrs].size; k++, j = d->t[j].next) {
            long key = jt_get(d, j, "key"), v = jt_get(d, j, "value");
            long sv = v >= 0 ? jt_get(d, (size_t)v, "stringValue") : -1;
            if (key < 0 || sv < 0 || d->t[sv].type != JT_STR)
                continue;
            const char **slot = jt_eq(d, (size_t)key, "service.name")          ? &svc
                                : jt_eq(d, (size_t)key, "host.name")           ? &host_name
                                : jt_eq(d, (size_t)key, "host")                ? &host
                                : jt_eq(d, (size_t)key, "service.instance.id") ? &inst
                                                                               : NULL;
            if (slot && !(*slot = attrs_jt_str(out, d, sv)))
                return -ENOMEM;
        }
    }
    res->service = svc ? svc : "";
    res->node = attrs_pick_node(host_name, host, inst, svc);
    return 0;
}

int otlp_json_decode(const char *buf, size_t len, struct span_batch *out, size_t max_spans,
                     char *err, size_t errlen)
{
    struct jt_doc d = { 0 };
    struct attrs_buf ab = { 0 };
    size_t pos = 0;
    int rc = jt_parse(&d, buf, len, DOC_MAX_DEPTH, &pos);
    if (rc == -EINVAL) {
        rc = se_fail(err, errlen, -EINVAL, "malformed OTLP JSON near byte %zu", pos);
        goto out;
    }
    if (rc)
        goto out;
    long rss = d.t[0].type == JT_OBJ ? jt_get(&d, 0, "resourceSpans") : -1;
    if (d.t[0].type != JT_OBJ || (rss >= 0 && d.t[rss].type != JT_ARR && d.t[rss].type != JT_NULL)) {
        rc = se_fail(err, errlen, -EINVAL, "malformed OTLP JSON: no resourceSpans array");
        goto out;
    }
    if (rss < 0 || d.t[rss].type == JT_NULL)
        goto out;
    size_t i = (size_t)rss + 1;
    for (uint32_t a = 0; a < d.t[rss].size; a++, i = d.t[i].next) {
        if (d.t[i].type != JT_OBJ) {
            rc = se_fail(err, errlen, -EINVAL, "malformed OTLP JSON: resourceSpans[%u] is not an object", a);
            goto out;
        }
        struct attrs_res res;
        long r = jt_get(&d, i, "resource");
        if ((rc = resource(&d, r >= 0 ? jt_get(&d, (size_t)r, "attributes") : -1, out, &res)))
            goto out;
        long sss = jt_get(&d, i, "scopeSpans");
        if (sss < 0)
            sss = jt_get(&d, i, "instrumentationLibrarySpans");
        if (sss < 0 || d.t[sss].type != JT_ARR)
            continue;
        size_t j = (size_t)sss + 1;
        for (uint32_t b = 0; b < d.t[sss].size; b++, j = d.t[j].next) {
            long spans = jt_get(&d, j, "spans");
            if (spans < 0 || d.t[spans].type != JT_ARR)
                continue;
            size_t k = (size_t)spans + 1;
            for (uint32_t c = 0; c < d.t[spans].size; c++, k = d.t[k].next)
                if ((rc = decode_span(&d, k, &res, out, max_spans, &ab)))
                    goto out;
        }
    }
out:
    jt_free(&d);
    free(ab.p);
    if (rc == -ENOMEM)
        se_fail(err, errlen, rc, "out of memory");
    return rc;
}
