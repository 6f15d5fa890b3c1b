/* The span model (spans/span.h): batches and their string arena, content
 * hashes, ids, kinds, times. Protocol decoding helpers are collector/decode.c. */
#include "spans/span.h"

#include "common/utf8.h"

#include <stdint.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    char data[];
};

void span_batch_init(struct span_batch *b)
{
    memset(b, 0, sizeof *b);
}

void span_batch_fini(struct span_batch *b)
{
    if (!b)
        return;
    free(b->spans);
    struct arena_chunk *c = b->chunks;
    while (c) {
        struct arena_chunk *n = c->next;
        free(c);
        c = n;
    }
    memset(b, 0, sizeof *b);
}

/* Room for size bytes in the arena (not yet counted as used). */
static char *arena_room(struct span_batch *b, size_t size, struct arena_chunk **chunk)
{
    struct arena_chunk *c = b->chunks;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > 16384 ? size : 16384;
        struct arena_chunk *nc = malloc(sizeof *nc + cap);
        if (!nc)
            return NULL;
        nc->used = 0;
        nc->cap = cap;
        /* keep a partly used current chunk in front when the string is big */
        if (c && size > 16384) {
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            b->chunks = nc;
        }
        c = nc;
    }
    *chunk = c;
    return c->data + c->used;
}

/* Every string of a span passes here, from the decoders and from the
 * store: text that is not well-formed UTF-8 (protobuf does not check it,
 * a store may be foreign) is repaired once, so that every exporter and
 * view can print it. */
const unsigned char *span_batch_memdup(struct span_batch *b, const void *s, size_t n)
{
    struct arena_chunk *c;
    unsigned char *p = (unsigned char *)arena_room(b, n + 1, &c);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = 0;
    c->used += n + 1;
    return p;
}

const char *span_batch_strdup(struct span_batch *b, const char *s, size_t n)
{
    if (!s)
        s = "";
    if (n == (size_t)-1)
        n = strlen(s);
    int valid = utf8_valid_n(s, n);
    size_t size = valid ? n + 1 : 3 * n + 1;
    struct arena_chunk *c;
    char *p = arena_room(b, size, &c);
    if (!p)
        return NULL;
    if (valid) {
        memcpy(p, s, n);
        p[n] = 0;
    } else {
        n = utf8_sanitize_n(s, n, p, size);
    }
    c->used += n + 1;
    return p;
}

struct span *span_batch_add(struct span_batch *b)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16;
        struct span *ns = realloc(b->spans, cap * sizeof *ns);
        if (!ns)
            return NULL;
        b->spans = ns;
        b->cap = cap;
    }
    struct span *s = &b->spans[b->n++];
    memset(s, 0, sizeof *s);
    s->name = s->service = s->node = "";
    s->attrs = "{}";
    return s;
}

int span_batch_move(struct span_batch *dst, struct span_batch *src)
{
    if (dst->n + src->n > dst->cap) {
        size_t cap = dst->cap ? dst->cap : 16;
        while (cap < dst->n + src->n)
            cap *= 2;
        struct span *ns = realloc(dst->spans, cap * sizeof *ns);
        if (!ns)
            return -ENOMEM;
        dst->spans = ns;
        dst->cap = cap;
    }
    if (src->n)
        memcpy(dst->spans + dst->n, src->spans, src->n * sizeof *src->spans);
    dst->n += src->n;
    src->n = 0;
    if (src->chunks) {
        struct arena_chunk *last = src->chunks;
        while (last->next)
            last = last->next;
        last->next = dst->chunks;
        dst->chunks = src->chunks;
        src->chunks = NULL;
    }
    return 0;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t span_content_hash(const struct span *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv(h, s->trace_id, 32);
    h = fnv(h, s->span_id, 16);
    h = fnv(h, s->parent_id, strlen(s->parent_id) + 1);
    h = fnv(h, s->name, strlen(s->name) + 1);
    h = fnv(h, s->service, strlen(s->service) + 1);
    h = fnv(h, s->node, strlen(s->node) + 1);
    h = fnv(h, s->attrs, strlen(s->attrs) + 1);
    int ints[3] = { s->kind, s->shared, s->status };
    h = fnv(h, ints, sizeof ints);
    int64_t t[2] = { s->start_us, s->end_us };
    return fnv(h, t, sizeof t);
}

int span_parse_hex_id(char *out, const char *s, size_t len, size_t digits, int pad)
{
    if (len == 0 || len > digits || (len != digits && !pad))
        return -EINVAL;
    size_t off = digits - len;
    memset(out, '0', off);
    int nonzero = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'F')
            c |= 0x20;
        else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -EINVAL;
        nonzero |= c != '0';
        out[off + i] = (char)c;
    }
    out[digits] = 0;
    return nonzero ? 0 : -EINVAL;
}

const char *span_kind_name(int kind)
{
    switch (kind) {
    case SPAN_KIND_INTERNAL: return "internal";
    case SPAN_KIND_SERVER: return "server";
    case SPAN_KIND_CLIENT: return "client";
    case SPAN_KIND_PRODUCER: return "producer";
    case SPAN_KIND_CONSUMER: return "consumer";
    default: return "unspecified";
    }
}

int span_kind_from_name(const char *s)
{
    if (!s)
        return SPAN_KIND_UNSPECIFIED;
    static const char *names[] = { "unspecified", "internal", "server", "client", "producer", "consumer" };
    for (int i = 0; i < 6; i++)
        if (!strcasecmp(s, names[i]))
            return i;
    return SPAN_KIND_UNSPECIFIED;
}

const char *span_status_name(int status)
{
    switch (status) {
    case SPAN_STATUS_OK: return "ok";
    case SPAN_STATUS_ERROR: return "error";
    default: return "unset";
    }
}

int64_t span_time_clamp(int64_t us)
{
    return us < 0 ? 0 : us > SPAN_TIME_MAX_US ? SPAN_TIME_MAX_US : us;
}

static int64_t corrected(int64_t raw, int64_t skew)
{
    int64_t t;
    if (__builtin_add_overflow(span_time_clamp(raw), skew, &t))
        t = skew < 0 ? 0 : SPAN_TIME_MAX_US;
    return span_time_clamp(t);
}

int64_t span_cstart(const struct span *s)
{
    return corrected(s->start_us, s->skew_us);
}

int64_t span_cend(const struct span *s)
{
    int64_t e = corrected(s->end_us, s->skew_us), st = span_cstart(s);
    return e < st ? st : e;
}
