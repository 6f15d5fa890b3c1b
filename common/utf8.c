#include "common/utf8.h"

#include <string.h>

/* Length of the well-formed sequence at p (1-4), or 0 if ill-formed. */
static size_t seq_len(const unsigned char *p)
{
    unsigned c = p[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f))
            return 0; /* overlong, surrogate */
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
            return 0;
        if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] > 0x8f))
            return 0;
        return 4;
    }
    return 0;
}

size_t utf8_sanitize(const char *in, char *out, size_t outlen)
{
    if (!outlen)
        return 0;
    const unsigned char *p = (const unsigned char *)in;
    size_t o = 0;
    while (*p) {
        size_t n = seq_len(p);
        const char *src = (const char *)p;
        size_t w = n;
        if (!n) {
            src = "\xef\xbf\xbd";
            w = 3;
            n = 1;
        }
        if (o + w >= outlen)
            break;
        memcpy(out + o, src, w);
        o += w;
        p += n;
    }
    out[o] = 0;
    return o;
}

int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = seq_len(p);
        if (!n)
            return 0;
        p += n;
    }
    return 1;
}
