#include "common/utf8.h"

#include <stdlib.h>
#include <string.h>

/* Length of the well-formed sequence at p, of which avail bytes may be
 * read (1-4), or 0 if it is ill-formed or cut short. */
static size_t seq_len(const unsigned char *p, size_t avail)
{
    unsigned c = p[0];
    if (c < 0x80)
        return c ? 1 : 0;
    size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!n || n > avail)
        return 0;
    for (size_t k = 1; k < n; k++)
        if ((p[k] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) || /* overlong, surrogate */
        (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))   /* overlong, > U+10FFFF */
        return 0;
    return n;
}

size_t utf8_sanitize_n(const char *in, size_t n, char *out, size_t outlen)
{
    if (!outlen)
        return 0;
    const unsigned char *p = (const unsigned char *)in, *end = p + n;
    size_t o = 0;
    while (p < end) {
        size_t k = seq_len(p, (size_t)(end - p));
        const char *src = (const char *)p;
        size_t w = k;
        if (!k) {
            src = "\xef\xbf\xbd";
            w = 3;
            k = 1;
        }
        if (o + w >= outlen)
            break;
        memcpy(out + o, src, w);
        o += w;
        p += k;
    }
    out[o] = 0;
    return o;
}

size_t utf8_sanitize(const char *in, char *out, size_t outlen)
{
    return utf8_sanitize_n(in, strlen(in), out, outlen);
}

int utf8_valid_n(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        if (*p - 1u < 0x7fu) { /* ASCII other than NUL, the common case */
            p++;
            continue;
        }
        size_t k = seq_len(p, (size_t)(end - p));
        if (!k)
            return 0;
        p += k;
    }
    return 1;
}

char *utf8_dup(const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    if (utf8_valid_n(s, n))
        return strdup(s);
    char *out = malloc(3 * n + 1);
    if (out)
        utf8_sanitize_n(s, n, out, 3 * n + 1);
    return out;
}
