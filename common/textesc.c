#include "common/textesc.h"

#include <stdlib.h>
#include <string.h>

/* The code point of the well-formed UTF-8 sequence at p (avail bytes may be
 * read) with its length in *len, or -1 when the byte at p starts none. */
static long decode(const unsigned char *p, size_t avail, size_t *len)
{
    unsigned c = p[0];
    size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!n || n > avail)
        return -1;
    for (size_t k = 1; k < n; k++)
        if ((p[k] & 0xc0) != 0x80)
            return -1;
    if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) || /* overlong, surrogate */
        (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))   /* overlong, > U+10FFFF */
        return -1;
    long cp = n == 2 ? c & 0x1f : n == 3 ? c & 0x0f : c & 0x07;
    for (size_t k = 1; k < n; k++)
        cp = cp << 6 | (p[k] & 0x3f);
    *len = n;
    return cp;
}

static int hidden_cp(long cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
           (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* One step of the rendering: the text for the input at p (its input length
 * in *used) in buf (at least 7 bytes) or, when it is copied as is, NULL. */
static const char *step(const unsigned char *p, size_t avail, size_t *used, char buf[8])
{
    static const char hex[] = "0123456789abcdef";
    unsigned c = p[0];
    *used = 1;
    if (c == '\\')
        return "\\\\";
    if (c < 0x20 || c == 0x7f) {
        buf[0] = '\\', buf[1] = 'x', buf[2] = hex[c >> 4], buf[3] = hex[c & 15], buf[4] = 0;
        return buf;
    }
    if (c < 0x80)
        return NULL;
    size_t n;
    long cp = decode(p, avail, &n);
    if (cp < 0) {
        buf[0] = '\\', buf[1] = 'x', buf[2] = hex[c >> 4], buf[3] = hex[c & 15], buf[4] = 0;
        return buf;
    }
    *used = n;
    if (!hidden_cp(cp))
        return NULL;
    buf[0] = '\\', buf[1] = 'u';
    for (int k = 0; k < 4; k++)
        buf[2 + k] = hex[(cp >> (12 - 4 * k)) & 15];
    buf[6] = 0;
    return buf;
}

int textesc_needed(const char *s)
{
    if (!s)
        return 0;
    const unsigned char *p = (const unsigned char *)s;
    size_t avail = strlen(s);
    while (*p) {
        if (*p >= 0x20 && *p < 0x7f && *p != '\\') { /* the common case */
            p++, avail--;
            continue;
        }
        char buf[8];
        size_t used;
        if (step(p, avail, &used, buf))
            return 1;
        p += used, avail -= used;
    }
    return 0;
}

size_t textesc(const char *s, char *out, size_t outlen)
{
    if (!outlen)
        return 0;
    if (!s)
        s = "";
    const unsigned char *p = (const unsigned char *)s;
    size_t avail = strlen(s), o = 0;
    while (*p) {
        char buf[8];
        size_t used;
        const char *r = step(p, avail, &used, buf);
        size_t w = r ? strlen(r) : used;
        if (o + w >= outlen)
            break;
        memcpy(out + o, r ? r : (const char *)p, w);
        o += w;
        p += used, avail -= used;
    }
    out[o] = 0;
    return o;
}

const char *textesc_str(const char *s, char *buf, size_t buflen)
{
    if (!s)
        return "";
    if (!textesc_needed(s))
        return s;
    textesc(s, buf, buflen);
    return buf;
}

const char *textesc_whole(const char *s, char *buf, size_t buflen, char **owned)
{
    *owned = NULL;
    if (!s)
        return "";
    if (!textesc_needed(s))
        return s;
    size_t need = TEXTESC_SIZE(strlen(s));
    if (need > buflen && (*owned = malloc(need))) {
        textesc(s, *owned, need);
        return *owned;
    }
    textesc(s, buf, buflen); /* fits, or out of memory: cut, still escaped */
    return buf;
}

char *textesc_dup(const char *s)
{
    if (!s)
        s = "";
    size_t n = TEXTESC_SIZE(strlen(s));
    char *out = malloc(n);
    if (out)
        textesc(s, out, n);
    return out;
}

void textesc_fputs(const char *s, FILE *f)
{
    if (!s)
        return;
    const unsigned char *p = (const unsigned char *)s, *run = p;
    size_t avail = strlen(s);
    while (*p) {
        char buf[8];
        size_t used;
        const char *r = step(p, avail, &used, buf);
        if (r) {
            fwrite(run, 1, (size_t)(p - run), f); /* what came before, as is */
            fputs(r, f);
            run = p + used;
        }
        p += used, avail -= used;
    }
    fwrite(run, 1, (size_t)(p - run), f);
}

int textesc_json_write(const char *s, size_t n, FILE *f)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;
    while (p < end) {
        if (*p < 0xc2 || *p > 0xe2) { /* neither starts U+0080-U+009F nor U+2xxx */
            p++;
            continue;
        }
        size_t len;
        long cp = decode(p, (size_t)(end - p), &len);
        if (cp < 0 || !hidden_cp(cp)) {
            p += cp < 0 ? 1 : len;
            continue;
        }
        fwrite(run, 1, (size_t)(p - run), f);
        fprintf(f, "\\u%04lx", cp);
        p += len;
        run = p;
    }
    fwrite(run, 1, (size_t)(p - run), f);
    return ferror(f) ? -1 : 0;
}
