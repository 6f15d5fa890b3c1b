/* py_str_header() and py_str_to_utf8() on hand-built str objects for the
 * layout of every supported CPython version. The characters come from C's
 * own u8"", u"" and U"" literals, so the expected UTF-8 is the compiler's. */
#include "check.h"

#include "common/err.h"
#include "tracer/cpython/objects.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uchar.h>

/* PyASCIIObject.state bit-fields, identical in 3.8-3.13:
 * interned:2, kind:3, compact:1, ascii:1, ready (<= 3.11) or
 * statically_allocated (3.12+):1. */
static uint32_t state_bits(int interned, int kind, int compact, int ascii, int bit7)
{
    return (uint32_t)interned | (uint32_t)kind << 2 | (uint32_t)compact << 5 |
           (uint32_t)ascii << 6 | (uint32_t)bit7 << 7;
}

/* An object: header then, when compact, its characters inline. */
struct obj {
    uint8_t b[256];
};

static void make_str(const struct py_layout *L, struct obj *o, int64_t length, uint32_t state,
                     const void *chars, size_t nbytes, int ascii)
{
    memset(o->b, 0xa5, sizeof o->b); /* garbage everywhere we do not write */
    memcpy(o->b + L->str_length, &length, 8);
    memcpy(o->b + L->str_state, &state, 4);
    size_t off = (size_t)(ascii ? L->str_ascii_size : L->str_compact_size);
    if (chars && off + nbytes <= sizeof o->b)
        memcpy(o->b + off, chars, nbytes);
}

static size_t u16len(const char16_t *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

static size_t u32len(const char32_t *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

/* Decode header then characters: what py_str_read does after its reads. */
static int decode(const struct py_layout *L, const struct obj *o, char *out, size_t outlen,
                  int64_t *len, int *kind, int64_t *off)
{
    int rc = py_str_header(L, o->b, len, kind, off);
    if (rc)
        return rc;
    if (*off < 0)
        return 1;
    py_str_to_utf8(o->b + *off, (size_t)*len, *kind, out, outlen);
    return 0;
}

static void check_layout(int minor)
{
    const struct py_layout *L = py_layout_for(3, minor);
    CHECK(L != NULL, "no layout for 3.%d", minor);
    if (!L)
        return;
    /* x86-64 facts: PyObject is 16 bytes, then length, hash, state; 3.12
     * dropped the wstr fields. */
    CHECK_INT(L->str_length, 16);
    CHECK_INT(L->str_state, 32);
    CHECK_INT(L->str_ascii_size, minor <= 11 ? 48 : 40);
    CHECK_INT(L->str_compact_size, L->str_ascii_size + (minor <= 11 ? 24 : 16));

    struct obj o;
    char out[128];
    int64_t len, off;
    int kind;
    int bit7 = minor <= 11; /* "ready" before 3.12; statically_allocated left 0 after */

    /* ASCII compact, interned */
    const char *ascii = "hello_world";
    make_str(L, &o, (int64_t)strlen(ascii), state_bits(1, 1, 1, 1, bit7), ascii, strlen(ascii), 1);
    CHECK_INT(decode(L, &o, out, sizeof out, &len, &kind, &off), 0);
    CHECK_INT(len, 11);
    CHECK_INT(kind, 1);
    CHECK_INT(off, L->str_ascii_size);
    CHECK_STR(out, "hello_world");

    /* statically allocated (3.12+) or not interned: the other bits do not matter */
    make_str(L, &o, 3, state_bits(0, 1, 1, 1, 1), "abc", 3, 1);
    CHECK_INT(decode(L, &o, out, sizeof out, &len, &kind, &off), 0);
    CHECK_STR(out, "abc");

    /* empty */
    make_str(L, &o, 0, state_bits(0, 1, 1, 1, bit7), NULL, 0, 1);
    CHECK_INT(decode(L, &o, out, sizeof out, &len, &kind, &off), 0);
    CHECK_INT(len, 0);
    CHECK_STR(out, "");

    /* latin-1 compact (kind 1, not ascii): data after PyCompactUnicodeObject */
    const uint8_t latin1[] = { 'c', 'a', 'f', 0xe9, ' ', 0xff, 0xa0 };
    make_str(L, &o, sizeof latin1, state_bits(0, 1, 1, 0, bit7), latin1, sizeof latin1, 0);
    CHECK_INT(decode(L, &o, out, sizeof out, &len, &kind, &off), 0);
    CHECK_INT(kind, 1);
    CHECK_INT(off, L->str_compact_size);
    CHECK_STR(out, u8"caf\u00e9 \u00ff\u00a0");

    /* UCS-2 compact */
    const char16_t *ucs2 = u"\u03a9\u03bb\u20ac x \u00e9\uffee";
    size_t n2 = u16len(ucs2);
    make_str(L, &o, (int64_t)n2, state_bits(0, 2, 1, 0, bit7), ucs2, n2 * 2, 0);
    CHECK_INT(decode(L, &o, out, sizeof out, &len, &kind, &off), 0);
    CHECK_INT(kind, 2);
    CHECK_INT(len, (int64_t)n2);
    CHECK_INT(off, L->str_compact_size);
    CHECK_STR(out, u8"\u03a9\u03bb\u20ac x \u00e9\uffee");

    /* UCS-4 compact */
    const char32_t *ucs4 = U"a\U0001F600\u00e9\u4e2d\U0010FFFF!";
    size_t n4 = u32len(ucs4);
    make_str(L, &o, (int64_t)n4, state_bits(0, 4, 1, 0, bit7), ucs4, n4 * 4, 0);
    CHECK_INT(decode(L, &o, out, sizeof out, &len, &kind, &off), 0);
    CHECK_INT(kind, 4);
    CHECK_INT(off, L->str_compact_size);
    CHECK_STR(out, u8"a\U0001F600\u00e9\u4e2d\U0010FFFF!");

    /* not compact (legacy string, <= 3.11): data pointer to be read separately */
    make_str(L, &o, 4, state_bits(0, 2, 0, 0, bit7), NULL, 0, 0);
    CHECK_INT(py_str_header(L, o.b, &len, &kind, &off), 0);
    CHECK_INT(off, -1);
    CHECK_INT(kind, 2);

    /* rejected: bad kinds, ascii with a wide kind, bad lengths */
    static const int bad_kinds[] = { 0, 3, 5, 6, 7 };
    for (size_t i = 0; i < sizeof bad_kinds / sizeof bad_kinds[0]; i++) {
        make_str(L, &o, 3, state_bits(0, bad_kinds[i], 1, 0, bit7), "abc", 3, 0);
        CHECK(py_str_header(L, o.b, &len, &kind, &off) == SE_FAULT, "3.%d: kind %d accepted",
              minor, bad_kinds[i]);
    }
    make_str(L, &o, 3, state_bits(0, 2, 1, 1, bit7), "abc", 3, 1);
    CHECK(py_str_header(L, o.b, &len, &kind, &off) == SE_FAULT, "3.%d: ascii kind 2 accepted", minor);
    make_str(L, &o, -1, state_bits(0, 1, 1, 1, bit7), "abc", 3, 1);
    CHECK(py_str_header(L, o.b, &len, &kind, &off) == SE_FAULT, "3.%d: length -1 accepted", minor);
    make_str(L, &o, (int64_t)1 << 40, state_bits(0, 1, 1, 1, bit7), "abc", 3, 1);
    CHECK(py_str_header(L, o.b, &len, &kind, &off) == SE_FAULT, "3.%d: length 2^40 accepted", minor);
}

/* Every truncation of a string mixing 1- to 4-byte UTF-8 sequences: the
 * output is the longest prefix of whole characters that fits, NUL-terminated. */
static void check_truncation(void)
{
    const char32_t *s = U"a\u00e9\u20ac\U0001F600b\u00ff\U00010348\u0800z";
    const char *full = u8"a\u00e9\u20ac\U0001F600b\u00ff\U00010348\u0800z";
    size_t n = u32len(s), flen = strlen(full);
    /* character boundaries of full */
    size_t bounds[32], nb = 0;
    bounds[nb++] = 0;
    for (size_t i = 1; i <= flen; i++)
        if (i == flen || ((unsigned char)full[i] & 0xc0) != 0x80)
            bounds[nb++] = i;
    for (size_t outlen = 0; outlen <= flen + 2; outlen++) {
        char buf[64];
        memset(buf, 'X', sizeof buf);
        size_t w = py_str_to_utf8(s, n, 4, buf, outlen);
        if (outlen == 0) {
            CHECK(w == 0 && buf[0] == 'X', "outlen 0 wrote %zu bytes", w);
            continue;
        }
        /* the largest boundary that fits with its NUL */
        size_t want = 0;
        for (size_t k = 0; k < nb; k++)
            if (bounds[k] + 1 <= outlen)
                want = bounds[k];
        CHECK(w == want, "outlen %zu: wrote %zu bytes, want %zu", outlen, w, want);
        CHECK(buf[w] == 0, "outlen %zu: no NUL at %zu", outlen, w);
        CHECK(memcmp(buf, full, w) == 0, "outlen %zu: not a prefix", outlen);
        CHECK(buf[outlen] == 'X', "outlen %zu: wrote past the buffer", outlen);
    }
    /* same with UCS-2 data and latin-1 data */
    const char16_t *s2 = u"\u00e9\u20ac\u00e9";
    char b2[6];
    CHECK_INT(py_str_to_utf8(s2, 3, 2, b2, sizeof b2), 5); /* 2 + 3 fit, the last 2 do not */
    CHECK_STR(b2, u8"\u00e9\u20ac");
    const uint8_t l1[] = { 0xe9, 0xe9, 0xe9 };
    char b1[4];
    CHECK_INT(py_str_to_utf8(l1, 3, 1, b1, sizeof b1), 2);
    CHECK_STR(b1, u8"\u00e9");
}

static void check_surrogates(void)
{
    char out[64];
    /* lone surrogates (legal in a Python str) become U+FFFD */
    const uint16_t s2[] = { 'a', 0xd800, 'b', 0xdfff, 0xdbff, 'c' };
    CHECK_INT(py_str_to_utf8(s2, 6, 2, out, sizeof out), 3 + 3 * 3);
    CHECK_STR(out, u8"a\uFFFDb\uFFFD\uFFFDc");
    const uint32_t s4[] = { 0xdc00, 'x', 0x110000, 0xffffffffu, 0x10ffff };
    py_str_to_utf8(s4, 5, 4, out, sizeof out);
    CHECK_STR(out, u8"\uFFFDx\uFFFD\uFFFD\U0010FFFF");
    /* an embedded NUL ends the C string but is copied as one byte */
    const uint8_t nul[] = { 'a', 0, 'b' };
    CHECK_INT(py_str_to_utf8(nul, 3, 1, out, sizeof out), 3);
    CHECK(out[0] == 'a' && out[1] == 0 && out[2] == 'b' && out[3] == 0, "embedded NUL");
}

int main(void)
{
    for (int minor = 6; minor <= 13; minor++)
        check_layout(minor);
    /* 2.7: str is PyStringObject, unicode a pointer to Py_UNICODE units */
    const struct py_layout *L27 = py_layout_for(2, 7);
    CHECK(L27 != NULL, "no layout for 2.7");
    if (L27) {
        CHECK_INT(L27->str_length, -1);
        CHECK_INT(L27->bytes_sval, 36);
        CHECK_INT(L27->uni_length, 16);
        CHECK_INT(L27->uni_str, 24);
        CHECK_INT(L27->d27_table, 40);
    }
    CHECK(py_layout_for(3, 5) == NULL, "3.5 has a layout");
    CHECK(py_layout_for(3, 14) == NULL, "3.14 has a compiled-in layout");
    CHECK(py_layout_for(2, 6) == NULL, "2.6 has a layout");
    check_truncation();
    check_surrogates();
    return check_done("strings");
}
