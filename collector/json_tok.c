#include "collector/json_tok.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct parser {
    struct jt_doc *d;
    const unsigned char *s;
    size_t pos, len;
    int max_depth;
};

static void ws(struct parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static long push(struct parser *p, int type, size_t start)
{
    struct jt_doc *d = p->d;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 256;
        if (cap > UINT32_MAX)
            return -1;
        struct jtok *nt = realloc(d->t, cap * sizeof *nt);
        if (!nt)
            return -1;
        d->t = nt;
        d->cap = cap;
    }
    struct jtok *t = &d->t[d->n];
    memset(t, 0, sizeof *t);
    t->type = (uint8_t)type;
    t->start = (uint32_t)start;
    return (long)d->n++;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A string at the opening quote; pushes a JT_STR token when emit is set. */
static int string(struct parser *p, int emit)
{
    size_t start = ++p->pos;
    int esc = 0;
    while (p->pos < p->len) {
        /* plain ASCII 8 bytes at a time: no quote, backslash, control or
         * non-ASCII byte in the word (exact tests, no false negatives) */
        while (p->pos + 8 <= p->len) {
            uint64_t v;
            memcpy(&v, p->s + p->pos, 8);
            const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
            uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\');
            uint64_t special = (((q - ones) & ~q) | ((b - ones) & ~b) | ((v - ones * 0x20) & ~v) | v) & high;
            if (special) {
                /* the lowest flagged byte is the first special one (the
                 * tests may also flag bytes after it, never before); the
                 * lowest byte is the first in memory on little-endian */
                _Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
                               "the word scan assumes a little-endian CPU");
                p->pos += (size_t)__builtin_ctzll(special) / 8;
                break;
            }
            p->pos += 8;
        }
        if (p->pos >= p->len)
            break;
        unsigned char c = p->s[p->pos];
        if (c == '"') {
            if (emit) {
                long i = push(p, JT_STR, start);
                if (i < 0)
                    return -ENOMEM;
                p->d->t[i].len = (uint32_t)(p->pos - start);
                p->d->t[i].esc = (uint8_t)esc;
                p->d->t[i].next = (uint32_t)i + 1;
            }
            p->pos++;
            return 0;
        }
        if (c < 0x20)
            return -EINVAL;
        if (c == '\\') {
            esc = 1;
            if (++p->pos >= p->len)
                return -EINVAL;
            c = p->s[p->pos];
            if (c == 'u') {
                if (p->pos + 4 >= p->len)
                    return -EINVAL;
                for (int k = 1; k <= 4; k++)
                    if (hexval(p->s[p->pos + k]) < 0)
                        return -EINVAL;
                p->pos += 5;
                continue;
            }
            if (!strchr("\"\\/bfnrt", c) || !c)
                return -EINVAL;
            p->pos++;
            continue;
        }
        if (c < 0x80) {
            p->pos++;
            continue;
        }
        /* UTF-8: lead byte, continuation bytes, no overlongs / surrogates / > U+10FFFF */
        int n;
        unsigned lo = 0x80, hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf)
            n = 1;
        else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            if (c == 0xe0)
                lo = 0xa0;
            if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            if (c == 0xf0)
                lo = 0x90;
            if (c == 0xf4)
                hi = 0x8f;
        } else
            return -EINVAL;
        if (p->pos + (size_t)n >= p->len)
            return -EINVAL;
        unsigned c1 = p->s[p->pos + 1];
        if (c1 < lo || c1 > hi)
            return -EINVAL;
        for (int k = 2; k <= n; k++)
            if ((p->s[p->pos + (size_t)k] & 0xc0) != 0x80)
                return -EINVAL;
        p->pos += (size_t)n + 1;
    }
    return -EINVAL;
}

static int number(struct parser *p, int emit)
{
    size_t start = p->pos;
    const unsigned char *s = p->s;
    if (p->pos < p->len && s[p->pos] == '-')
        p->pos++;
    if (p->pos >= p->len)
        return -EINVAL;
    if (s[p->pos] == '0')
        p->pos++;
    else if (s[p->pos] >= '1' && s[p->pos] <= '9')
        while (p->pos < p->len && s[p->pos] >= '0' && s[p->pos] <= '9')
            p->pos++;
    else
        return -EINVAL;
    if (p->pos < p->len && s[p->pos] == '.') {
        p->pos++;
        size_t d = p->pos;
        while (p->pos < p->len && s[p->pos] >= '0' && s[p->pos] <= '9')
            p->pos++;
        if (d == p->pos)
            return -EINVAL;
    }
    if (p->pos < p->len && (s[p->pos] == 'e' || s[p->pos] == 'E')) {
        p->pos++;
        if (p->pos < p->len && (s[p->pos] == '+' || s[p->pos] == '-'))
            p->pos++;
        size_t d = p->pos;
        while (p->pos < p->len && s[p->pos] >= '0' && s[p->pos] <= '9')
            p->pos++;
        if (d == p->pos)
            return -EINVAL;
    }
    if (!emit)
        return 0;
    long i = push(p, JT_NUM, start);
    if (i < 0)
        return -ENOMEM;
    p->d->t[i].len = (uint32_t)(p->pos - start);
    p->d->t[i].next = (uint32_t)i + 1;
    return 0;
}

static int literal(struct parser *p, const char *word, int type, int emit)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n))
        return -EINVAL;
    if (emit) {
        long i = push(p, type, p->pos);
        if (i < 0)
            return -ENOMEM;
        p->d->t[i].len = (uint32_t)n;
        p->d->t[i].next = (uint32_t)i + 1;
    }
    p->pos += n;
    return 0;
}

/* One open container: its token and member count while tokens are emitted. */
struct level {
    uint32_t tok, size;
    uint8_t obj;
};

/* Iterative, so that the C stack never grows with the input's nesting.
 * Levels up to max_depth are kept in lv[]; deeper ones (inside a JT_DEEP
 * value) need only their kind, one bit each in deep[]. */
static int parse(struct parser *p)
{
    size_t maxd = p->max_depth > 0 ? (size_t)p->max_depth : 0;
    struct level *lv = malloc((maxd + 1) * sizeof *lv);
    unsigned char *deep = NULL;
    size_t deep_cap = 0, nlev = 0, deep_start = 0;
    int rc = -EINVAL;
    if (!lv)
        return -ENOMEM;
    /* the kind of level k (object or array) */
#define LEVEL_OBJ(k) ((k) < maxd ? lv[k].obj : (deep[((k) - maxd) / 8] >> (((k) - maxd) % 8)) & 1)
value:
    ws(p);
    if (p->pos >= p->len)
        goto out;
    {
        int emit = nlev <= maxd; /* levels 0..maxd-1 open: a value at depth nlev */
        unsigned char c = p->s[p->pos];
        if (c == '{' || c == '[') {
            int obj = c == '{';
            if (nlev < maxd) {
                long i = push(p, obj ? JT_OBJ : JT_ARR, p->pos);
                if (i < 0) {
                    rc = -ENOMEM;
                    goto out;
                }
                lv[nlev] = (struct level){ .tok = (uint32_t)i, .obj = (uint8_t)obj };
            } else {
                size_t k = nlev - maxd;
                if (k == 0)
                    deep_start = p->pos;
                if (k / 8 >= deep_cap) {
                    size_t cap = deep_cap ? deep_cap * 2 : 64;
                    unsigned char *nd = realloc(deep, cap);
                    if (!nd) {
                        rc = -ENOMEM;
                        goto out;
                    }
                    memset(nd + deep_cap, 0, cap - deep_cap);
                    deep = nd;
                    deep_cap = cap;
                }
                deep[k / 8] = (unsigned char)((deep[k / 8] & ~(1u << (k % 8))) | (unsigned)obj << (k % 8));
            }
            nlev++;
            p->pos++;
            ws(p);
            if (p->pos < p->len && p->s[p->pos] == (obj ? '}' : ']')) {
                p->pos++;
                goto close;
            }
            if (obj)
                goto key;
            goto value;
        }
        int r = c == '"'   ? string(p, emit)
                : c == 't' ? literal(p, "true", JT_TRUE, emit)
                : c == 'f' ? literal(p, "false", JT_FALSE, emit)
                : c == 'n' ? literal(p, "null", JT_NULL, emit)
                           : number(p, emit);
        if (r) {
            rc = r;
            goto out;
        }
        goto after;
    }
key:
    ws(p);
    if (p->pos >= p->len || p->s[p->pos] != '"')
        goto out;
    if ((rc = string(p, nlev <= maxd)))
        goto out;
    rc = -EINVAL;
    ws(p);
    if (p->pos >= p->len || p->s[p->pos] != ':')
        goto out;
    p->pos++;
    goto value;
after:
    if (!nlev) {
        rc = 0;
        goto out;
    }
    if (nlev <= maxd)
        lv[nlev - 1].size++;
    ws(p);
    if (p->pos >= p->len)
        goto out;
    {
        int obj = LEVEL_OBJ(nlev - 1);
        if (p->s[p->pos] == ',') {
            p->pos++;
            if (obj)
                goto key;
            goto value;
        }
        if (p->s[p->pos] != (obj ? '}' : ']'))
            goto out;
        p->pos++;
    }
close:
    nlev--;
    if (nlev < maxd) {
        struct jtok *t = &p->d->t[lv[nlev].tok];
        t->size = lv[nlev].size;
        t->next = (uint32_t)p->d->n;
        t->len = (uint32_t)(p->pos - t->start);
    } else if (nlev == maxd) {
        /* the outermost level too deep closed: one token for all of it */
        long i = push(p, JT_DEEP, deep_start);
        if (i < 0) {
            rc = -ENOMEM;
            goto out;
        }
        p->d->t[i].len = (uint32_t)(p->pos - deep_start);
        p->d->t[i].next = (uint32_t)i + 1;
    }
    goto after;
#undef LEVEL_OBJ
out:
    free(lv);
    free(deep);
    return rc;
}

int jt_parse(struct jt_doc *d, const char *src, size_t len, int max_depth, size_t *errpos)
{
    d->src = src;
    d->n = 0;
    if (len >= UINT32_MAX)
        return -EINVAL;
    struct parser p = { .d = d, .s = (const unsigned char *)src, .len = len, .max_depth = max_depth };
    int rc = parse(&p);
    if (!rc) {
        ws(&p);
        if (p.pos != len)
            rc = -EINVAL;
    }
    if (rc && errpos)
        *errpos = p.pos;
    return rc;
}

void jt_free(struct jt_doc *d)
{
    free(d->t);
    memset(d, 0, sizeof *d);
}

static inline int eq_n(const struct jt_doc *d, size_t i, const char *s, size_t n)
{
    const struct jtok *t = &d->t[i];
    return t->len == n && t->type == JT_STR && !t->esc && !memcmp(d->src + t->start, s, n);
}

int jt_eq(const struct jt_doc *d, size_t i, const char *s)
{
    return eq_n(d, i, s, strlen(s));
}

void jt_get_keys(const struct jt_doc *d, size_t i, const char *const *keys, size_t n, long *out)
{
    size_t len[16];
    for (size_t k = 0; k < n; k++) {
        out[k] = -1;
        len[k] = k < 16 ? strlen(keys[k]) : 0;
    }
    const struct jtok *o = &d->t[i];
    if (o->type != JT_OBJ || n > 16)
        return;
    size_t j = i + 1;
    for (uint32_t m = 0; m < o->size; m++, j = d->t[j + 1].next)
        for (size_t k = 0; k < n; k++)
            if (out[k] < 0 && eq_n(d, j, keys[k], len[k])) {
                out[k] = (long)j + 1;
                break;
            }
}

long jt_get(const struct jt_doc *d, size_t i, const char *key)
{
    const struct jtok *o = &d->t[i];
    if (o->type != JT_OBJ)
        return -1;
    size_t j = i + 1, n = strlen(key);
    for (uint32_t k = 0; k < o->size; k++) {
        if (eq_n(d, j, key, n))
            return (long)j + 1;
        j = d->t[j + 1].next;
    }
    return -1;
}

static size_t put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

size_t jt_unescape(const struct jt_doc *d, size_t i, char *out)
{
    const struct jtok *t = &d->t[i];
    const char *s = d->src + t->start;
    size_t n = 0;
    if (!t->esc) {
        memcpy(out, s, t->len);
        out[t->len] = 0;
        return t->len;
    }
    for (size_t k = 0; k < t->len;) {
        if (s[k] != '\\') {
            out[n++] = s[k++];
            continue;
        }
        char c = s[k + 1];
        k += 2;
        switch (c) {
        case 'b': out[n++] = '\b'; break;
        case 'f': out[n++] = '\f'; break;
        case 'n': out[n++] = '\n'; break;
        case 'r': out[n++] = '\r'; break;
        case 't': out[n++] = '\t'; break;
        case 'u': {
            unsigned cp = 0;
            for (int h = 0; h < 4; h++)
                cp = cp << 4 | (unsigned)hexval((unsigned char)s[k + (size_t)h]);
            k += 4;
            if (cp >= 0xd800 && cp <= 0xdbff && k + 6 <= t->len && s[k] == '\\' && s[k + 1] == 'u') {
                unsigned lo = 0;
                for (int h = 0; h < 4; h++)
                    lo = lo << 4 | (unsigned)hexval((unsigned char)s[k + 2 + (size_t)h]);
                if (lo >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    k += 6;
                }
            }
            if (cp >= 0xd800 && cp <= 0xdfff)
                cp = 0xfffd;
            /* every escape is >= 6 input bytes: the output never outgrows the input */
            n += put_utf8(out + n, cp);
            break;
        }
        default: out[n++] = c; break; /* " \ / */
        }
    }
    out[n] = 0;
    return n;
}

static unsigned hex4(const char *s)
{
    unsigned v = 0;
    for (int h = 0; h < 4; h++) {
        int x = hexval((unsigned char)s[h]);
        if (x < 0)
            return 0x10000; /* not an escape a validated string holds */
        v = v << 4 | (unsigned)x;
    }
    return v;
}

size_t jt_repair_escapes(char *s, size_t n)
{
    size_t fixed = 0;
    for (size_t k = 0; k + 1 < n; k++) {
        if (s[k] != '\\')
            continue;
        if (s[k + 1] != 'u' || k + 6 > n) {
            k++; /* skip the escaped character (an escaped backslash too) */
            continue;
        }
        unsigned cp = hex4(s + k + 2);
        if (cp >= 0xd800 && cp <= 0xdbff && k + 12 <= n && s[k + 6] == '\\' && s[k + 7] == 'u') {
            unsigned lo = hex4(s + k + 8);
            if (lo >= 0xdc00 && lo <= 0xdfff) {
                k += 11; /* a pair: keep both */
                continue;
            }
        }
        if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff)) {
            memcpy(s + k + 2, "fffd", 4);
            fixed++;
        }
        k += 5;
    }
    return fixed;
}
