/* The agent's export encoding: see agent/span_json.h. */
#include "agent/span_json.h"

#include "agent/spans.h"
#include "spans/span.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rd64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int agent_span_header(const void *rec, size_t len, struct span_hdr *h)
{
    const unsigned char *p = rec;
    if (!rec || len < SPAN_REC_HDR)
        return -EINVAL;
    h->trace_hi = rd64(p);
    h->trace_lo = rd64(p + 8);
    h->span_id = rd64(p + 16);
    h->parent_id = rd64(p + 24);
    h->start_ns = (int64_t)rd64(p + 32);
    h->end_ns = (int64_t)rd64(p + 40);
    h->no = rd32(p + 48);
    h->kind = p[52];
    h->status = p[53];
    h->name_len = (size_t)p[54] | (size_t)p[55] << 8;
    h->attrs_len = rd32(p + 56);
    h->name = (const char *)p + SPAN_REC_HDR;
    h->attrs = h->name + h->name_len;
    if ((h->trace_hi == 0 && h->trace_lo == 0) || h->span_id == 0 || h->kind > SPAN_KIND_CONSUMER ||
        h->status > SPAN_STATUS_ERROR || h->name_len > len - SPAN_REC_HDR ||
        h->attrs_len != len - SPAN_REC_HDR - h->name_len || h->start_ns < 0 || h->end_ns < h->start_ns ||
        h->start_ns / 1000 > SPAN_TIME_MAX_US || h->end_ns / 1000 > SPAN_TIME_MAX_US)
        return -EINVAL;
    return 0;
}

/* ---- an append-only text buffer; a failed allocation sticks ---- */

struct buf {
    char *p;
    size_t n, cap;
    int oom;
};

static int reserve(struct buf *b, size_t more)
{
    if (b->oom)
        return -1;
    if (b->n + more + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static void put(struct buf *b, const char *s, size_t n)
{
    if (reserve(b, n))
        return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void puts_(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static void putf(struct buf *b, const char *fmt, ...)
{
    char t[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t, sizeof t, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(b, t, (size_t)n < sizeof t ? (size_t)n : sizeof t - 1);
}

/* The length of the valid UTF-8 sequence at s (n bytes left), 0 if none. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t k;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        k = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        k = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        k = 4, min = 0x10000;
    else
        return 0;
    if (n < k)
        return 0;
    unsigned cp = c & (0x3f >> (k - 1));
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return k;
}

/* A JSON string: escaped, invalid UTF-8 replaced by U+FFFD. */
static void put_str(struct buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    if (reserve(b, n + 2))
        return;
    b->p[b->n++] = '"';
    size_t run = 0; /* bytes copied as they are, pending */
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        size_t k = c >= 0x20 && c != '"' && c != '\\' ? utf8_len(u + i, n - i) : 0;
        if (k) {
            i += k;
            run += k;
            continue;
        }
        put(b, s + i - run, run);
        run = 0;
        if (c == '"')
            puts_(b, "\\\"");
        else if (c == '\\')
            puts_(b, "\\\\");
        else if (c < 0x20)
            putf(b, "\\u%04x", c);
        else
            puts_(b, "\\ufffd");
        i++;
    }
    put(b, s + n - run, run);
    put(b, "\"", 1);
}

/* An OTLP AnyValue from a JSON value (jansson's strings are valid UTF-8). */
static void put_value(struct buf *b, json_t *v, int depth)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        puts_(b, "{\"stringValue\":");
        put_str(b, json_string_value(v), json_string_length(v));
        put(b, "}", 1);
        break;
    case JSON_INTEGER:
        putf(b, "{\"intValue\":\"%lld\"}", (long long)json_integer_value(v));
        break;
    case JSON_REAL:
        putf(b, "{\"doubleValue\":%.17g}", json_real_value(v));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        puts_(b, json_is_true(v) ? "{\"boolValue\":true}" : "{\"boolValue\":false}");
        break;
    case JSON_ARRAY: {
        puts_(b, "{\"arrayValue\":{\"values\":[");
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (i)
                put(b, ",", 1);
            if (depth < 32)
                put_value(b, e, depth + 1);
            else
                put(b, "{}", 2);
        }
        puts_(b, "]}}");
        break;
    }
    case JSON_OBJECT: {
        puts_(b, "{\"kvlistValue\":{\"values\":[");
        const char *k;
        json_t *e;
        int first = 1;
        json_object_foreach(v, k, e) {
            puts_(b, first ? "{\"key\":" : ",{\"key\":");
            first = 0;
            put_str(b, k, strlen(k));
            puts_(b, ",\"value\":");
            if (depth < 32)
                put_value(b, e, depth + 1);
            else
                put(b, "{}", 2);
            put(b, "}", 1);
        }
        puts_(b, "]}}");
        break;
    }
    default:
        put(b, "{}", 2);
        break;
    }
}

static void put_kv(struct buf *b, const char *k, json_t *v, int *first)
{
    puts_(b, *first ? "{\"key\":" : ",{\"key\":");
    *first = 0;
    put_str(b, k, strlen(k));
    puts_(b, ",\"value\":");
    put_value(b, v, 0);
    put(b, "}", 1);
}

static const char hexd[] = "0123456789abcdef";

static void put_hex(struct buf *b, uint64_t v)
{
    char t[16];
    for (int i = 15; i >= 0; i--, v >>= 4)
        t[i] = hexd[v & 15];
    put(b, t, 16);
}

int agent_spans_otlp_json(const void *const *recs, const size_t *lens, const char *const *more, size_t n,
                          const char *svc,
                          const char *node, const char *extra, char **body, size_t *len, size_t *nspans,
                          uint64_t *bad)
{
    struct buf b = { 0 };
    *body = NULL;
    *len = *nspans = 0;
    json_t *x = extra ? json_loads(extra, 0, NULL) : NULL;
    if (x && (!json_is_object(x) || !json_object_size(x))) {
        json_decref(x);
        x = NULL;
    }
    puts_(&b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
              "{\"stringValue\":");
    svc = svc ? svc : "";
    put_str(&b, svc, strlen(svc));
    puts_(&b, "}}");
    if (node && *node) {
        puts_(&b, ",{\"key\":\"host.name\",\"value\":{\"stringValue\":");
        put_str(&b, node, strlen(node));
        puts_(&b, "}}");
    }
    puts_(&b, "]},\"scopeSpans\":[{\"scope\":{\"name\":\"sonde\"},\"spans\":[");
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        struct span_hdr h;
        json_t *a = NULL;
        if (agent_span_header(recs[i], lens[i], &h) ||
            (h.attrs_len &&
             (!(a = json_loadb(h.attrs, h.attrs_len, JSON_REJECT_DUPLICATES, NULL)) || !json_is_object(a)))) {
            json_decref(a);
            (*bad)++;
            continue;
        }
        if (out++)
            put(&b, ",", 1);
        puts_(&b, "{\"traceId\":\"");
        put_hex(&b, h.trace_hi);
        put_hex(&b, h.trace_lo);
        puts_(&b, "\",\"spanId\":\"");
        put_hex(&b, h.span_id);
        if (h.parent_id) {
            puts_(&b, "\",\"parentSpanId\":\"");
            put_hex(&b, h.parent_id);
        }
        puts_(&b, "\",\"name\":");
        put_str(&b, h.name, h.name_len);
        putf(&b, ",\"kind\":%u,\"startTimeUnixNano\":\"%lld\",\"endTimeUnixNano\":\"%lld\",\"attributes\":[",
             h.kind, (long long)h.start_ns, (long long)h.end_ns);
        int first = 1;
        const char *k;
        json_t *v;
        json_t *p = more && more[i] ? json_loads(more[i], 0, NULL) : NULL;
        if (p && !json_is_object(p)) {
            json_decref(p);
            p = NULL;
        }
        if (a)
            json_object_foreach(a, k, v) if (!p || !json_object_get(p, k)) put_kv(&b, k, v, &first);
        if (p)
            json_object_foreach(p, k, v) put_kv(&b, k, v, &first);
        if (x)
            json_object_foreach(x, k, v) if ((!a || !json_object_get(a, k)) && (!p || !json_object_get(p, k)))
                put_kv(&b, k, v, &first);
        json_decref(a);
        json_decref(p);
        puts_(&b, "],\"droppedAttributesCount\":0");
        if (h.status)
            putf(&b, ",\"status\":{\"code\":%u}", h.status);
        put(&b, "}", 1);
    }
    puts_(&b, "]}]}]}");
    json_decref(x);
    if (b.oom) {
        free(b.p);
        return -ENOMEM;
    }
    b.p[b.n] = 0;
    *body = b.p;
    *len = b.n;
    *nspans = out;
    return 0;
}
