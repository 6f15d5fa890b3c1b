#include "collector/zipkin.h"

#include "collector/attrs.h"
#include "collector/json_tok.h"
#include "collector/decode.h"
#include "common/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Decoding walks the token array of collector/json_tok.c, as OTLP JSON
 * does: one odd value (a lone surrogate, a number beyond int64, nesting
 * deeper than ZIPKIN_MAX_DEPTH) costs that value or its span, never the
 * request. */
#define ZIPKIN_MAX_DEPTH 16

/* A JSON number or a decimal string (µs) into *v: 0 (absent or null: 0),
 * -EINVAL (not a number) or -ERANGE (beyond int64). */
static int num_us(const struct jt_doc *d, long i, int64_t *v)
{
    *v = 0;
    if (i < 0 || d->t[i].type == JT_NULL)
        return 0;
    const struct jtok *t = &d->t[i];
    const char *s = d->src + t->start;
    if ((t->type != JT_STR && t->type != JT_NUM) || t->esc || !t->len || t->len >= 64)
        return t->len >= 64 && t->type == JT_NUM ? -ERANGE : -EINVAL;
    char tmp[64];
    memcpy(tmp, s, t->len);
    tmp[t->len] = 0;
    uint32_t k = tmp[0] == '-' ? 1 : 0;
    if (k == t->len)
        return -EINVAL;
    int plain = 1;
    for (uint32_t m = k; m < t->len; m++)
        plain &= tmp[m] >= '0' && tmp[m] <= '9';
    if (plain) {
        errno = 0;
        long long x = strtoll(tmp, NULL, 10);
        if (errno == ERANGE)
            return -ERANGE;
        *v = x;
        return 0;
    }
    if (t->type != JT_NUM) /* a string must be plain digits */
        return -EINVAL;
    double x = strtod(tmp, NULL); /* the tokenizer checked the form */
    if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0))
        return -ERANGE;
    *v = (int64_t)x;
    return 0;
}

/* Span times from timestamp and duration (µs): 0 or -EINVAL / -ERANGE. A
 * negative duration counts as 0, as an OTLP end before its start does. */
static int span_times(const struct jt_doc *d, long ts, long dur, int64_t *start, int64_t *end)
{
    int64_t du;
    int rc = num_us(d, ts, start);
    if (!rc)
        rc = num_us(d, dur, &du);
    if (rc)
        return rc;
    if (du < 0)
        du = 0;
    if (*start < 0 || __builtin_add_overflow(*start, du, end))
        return -ERANGE;
    return span_times_check(*start, end);
}

static long member(const struct jt_doc *d, long obj, const char *key)
{
    return obj >= 0 ? jt_get(d, (size_t)obj, key) : -1;
}

static long str_member(const struct jt_doc *d, long obj, const char *key)
{
    long v = member(d, obj, key);
    return v >= 0 && d->t[v].type == JT_STR ? v : -1;
}

static int decode_span(const struct jt_doc *d, size_t js, struct span_batch *out, size_t max_spans,
                       struct attrs_buf *ab)
{
    if (d->t[js].type != JT_OBJ)
        return span_batch_reject(out, "span is not an object");
    static const char *const keys[] = { "traceId", "id", "parentId", "name", "kind", "shared", "timestamp",
                                        "duration", "localEndpoint", "remoteEndpoint", "tags", "annotations" };
    long v[sizeof keys / sizeof keys[0]];
    jt_get_keys(d, js, keys, sizeof keys / sizeof keys[0], v);
    long tid = v[0], sid = v[1], pid = v[2], name = v[3], kind = v[4], shared = v[5], ts = v[6], dur = v[7],
         le = v[8], re = v[9], tags = v[10], ann = v[11];
    char t[33], s[17], p[17] = "";
    if (attrs_jt_id(d, tid, t, 32, 1) || attrs_jt_id(d, sid, s, 16, 1) ||
        (pid >= 0 && d->t[pid].type == JT_STR && d->t[pid].len && attrs_jt_id(d, pid, p, 16, 1)))
        return span_batch_reject(out, "invalid trace or span id");
    int64_t start, end;
    int trc = span_times(d, ts, dur, &start, &end);
    if (trc)
        return span_batch_reject(out, trc == -ERANGE ? "timestamp or duration out of range"
                                                     : "invalid timestamp or duration");
    int rc;
    struct span *sp = span_batch_take(out, max_spans, &rc);
    if (!sp)
        return rc;
    memcpy(sp->trace_id, t, sizeof t);
    memcpy(sp->span_id, s, sizeof s);
    memcpy(sp->parent_id, p, sizeof p);
    sp->start_us = start;
    sp->end_us = end;
    if (le >= 0 && d->t[le].type != JT_OBJ)
        le = -1;
    const char *svc = attrs_jt_str(out, d, str_member(d, le, "serviceName"));
    const char *ip4 = attrs_jt_str(out, d, str_member(d, le, "ipv4"));
    const char *ip6 = attrs_jt_str(out, d, str_member(d, le, "ipv6"));
    if (!svc || !ip4 || !ip6 || !(sp->name = attrs_jt_str(out, d, name)))
        return -ENOMEM;
    sp->service = svc;
    sp->node = attrs_pick_node(ip4, ip6, NULL, svc);
    if (kind >= 0 && d->t[kind].type == JT_STR) {
        const char *k = attrs_jt_str(out, d, kind);
        if (!k)
            return -ENOMEM;
        sp->kind = span_kind_from_name(k);
    } else {
        sp->kind = SPAN_KIND_INTERNAL;
    }
    sp->shared = shared >= 0 && d->t[shared].type == JT_TRUE;

    ab->n = 0;
    attrs_put(ab, "{", 1);
    int first = 1;
    if (tags >= 0 && d->t[tags].type == JT_OBJ) {
        size_t j = (size_t)tags + 1;
        for (uint32_t k = 0; k < d->t[tags].size; k++, j = d->t[j + 1].next) {
            const struct jtok *tv = &d->t[j + 1];
            if (jt_eq(d, j, "error"))
                sp->status = SPAN_STATUS_ERROR;
            if (tv->type != JT_STR && tv->type != JT_NUM && tv->type != JT_TRUE && tv->type != JT_FALSE)
                continue;
            if (!first)
                attrs_put(ab, ",", 1);
            first = 0;
            attrs_put_str(ab, d, (long)j);
            attrs_put(ab, ":", 1);
            attrs_put_value(ab, d, (long)j + 1);
        }
    }
    if (ann >= 0 && d->t[ann].type == JT_ARR && d->t[ann].size) {
        attrs_put(ab, first ? "\"annotations\":" : ",\"annotations\":", first ? 14 : 15);
        first = 0;
        attrs_put_value(ab, d, ann);
    }
    long peer = re >= 0 && d->t[re].type == JT_OBJ ? str_member(d, re, "serviceName") : -1;
    if (peer >= 0) {
        attrs_put(ab, first ? "\"peer.service\":" : ",\"peer.service\":", first ? 15 : 16);
        attrs_put_str(ab, d, peer);
    }
    attrs_put(ab, "}", 1);
    if (ab->oom)
        return -ENOMEM;
    sp->attrs = span_batch_strdup(out, ab->p, ab->n);
    return sp->attrs ? 0 : -ENOMEM;
}

int zipkin_decode(const char *buf, size_t len, struct span_batch *out, size_t max_spans,
                  char *err, size_t errlen)
{
    struct jt_doc d = { 0 };
    struct attrs_buf ab = { 0 };
    size_t pos = 0;
    int rc = jt_parse(&d, buf, len, ZIPKIN_MAX_DEPTH, &pos);
    if (rc == -EINVAL) {
        rc = se_fail(err, errlen, -EINVAL, "malformed Zipkin JSON near byte %zu", pos);
        goto out;
    }
    if (rc)
        goto out;
    if (d.t[0].type != JT_ARR) {
        rc = se_fail(err, errlen, -EINVAL, "malformed Zipkin JSON: expected an array of spans");
        goto out;
    }
    size_t i = 1;
    for (uint32_t k = 0; k < d.t[0].size; k++, i = d.t[i].next)
        if ((rc = decode_span(&d, i, out, max_spans, &ab)))
            goto out;
out:
    jt_free(&d);
    free(ab.p);
    if (rc == -ENOMEM)
        se_fail(err, errlen, rc, "out of memory");
    return rc;
}
