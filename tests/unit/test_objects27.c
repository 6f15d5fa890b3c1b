/* CPython 2.7's objects built in this process's memory with 2.7's layout
 * table: str (PyStringObject), unicode of either Py_UNICODE width (UCS-2
 * surrogate pairs joined), int thread idents, and the open-addressing dict
 * that threading._active and module dicts are, as the thread-name reader
 * walks them. */
#include "check.h"

#include "tracer/cpython/objects.h"
#include "tracer/cpython/runtime.h"

#include <stdint.h>
#include <string.h>

#define TPF_INT (1ul << 23)
#define TPF_STRING (1ul << 27)
#define TPF_UNICODE (1ul << 28)

static _Alignas(8) uint8_t str_type[512], uni_type[512], int_type[512], other_type[512];

static void put64(uint8_t *p, int64_t off, uint64_t v)
{
    memcpy(p + off, &v, 8);
}

static void set_flags(uint8_t *type, const struct py_layout *L, uint64_t flags)
{
    put64(type, L->tp_flags, flags);
}

static void mkobj(uint8_t *o, const struct py_layout *L, uint8_t *type)
{
    put64(o, 0, 1);
    put64(o, L->ob_type, (uint64_t)(uintptr_t)type);
}

static void mkstr(uint8_t *o, const struct py_layout *L, const char *s)
{
    mkobj(o, L, str_type);
    put64(o, L->bytes_size, strlen(s));
    memcpy(o + L->bytes_sval, s, strlen(s) + 1);
}

int main(void)
{
    const struct py_layout *L = py_layout_for(2, 7);
    CHECK(L != NULL, "no 2.7 layout");
    if (!L)
        return check_done("objects27");
    struct py_runtime rt;
    memset(&rt, 0, sizeof rt);
    mem_init_local(&rt.mem);
    rt.major = 2;
    rt.minor = 7;
    rt.L = *L;
    rt.unicode_unit = 2;
    set_flags(str_type, L, TPF_STRING);
    set_flags(uni_type, L, TPF_UNICODE);
    set_flags(int_type, L, TPF_INT);
    set_flags(other_type, L, 0);
    char out[64];

    /* str: bytes; UTF-8 kept, anything else read as Latin-1 */
    static _Alignas(8) uint8_t s1[128], s2[128], s3[128];
    mkstr(s1, L, "waiter");
    CHECK_INT(py_str_read(&rt, (uint64_t)(uintptr_t)s1, out, sizeof out), 0);
    CHECK_STR(out, "waiter");
    mkstr(s2, L, "caf\xc3\xa9");
    CHECK_INT(py_str_read(&rt, (uint64_t)(uintptr_t)s2, out, sizeof out), 0);
    CHECK_STR(out, "caf\xc3\xa9");
    mkstr(s3, L, "caf\xe9");
    CHECK_INT(py_str_read(&rt, (uint64_t)(uintptr_t)s3, out, sizeof out), 0);
    CHECK_STR(out, "caf\xc3\xa9");
    /* a long UTF-8 name cut short never ends inside a character */
    CHECK_INT(py_str_read(&rt, (uint64_t)(uintptr_t)s2, out, 5), 0);
    CHECK_STR(out, "caf");

    /* unicode, UCS-2: a surrogate pair is one character; UCS-4 as is */
    static _Alignas(8) uint8_t u1[64];
    static const uint16_t ucs2[] = { 'g', 0xd83d, 0xde00, 'x' };
    mkobj(u1, L, uni_type);
    put64(u1, L->uni_length, 4);
    put64(u1, L->uni_str, (uint64_t)(uintptr_t)ucs2);
    CHECK_INT(py_str_read(&rt, (uint64_t)(uintptr_t)u1, out, sizeof out), 0);
    CHECK_STR(out, "g\xf0\x9f\x98\x80x");
    static const uint32_t ucs4[] = { 'h', 0x1f600 };
    rt.unicode_unit = 4;
    put64(u1, L->uni_length, 2);
    put64(u1, L->uni_str, (uint64_t)(uintptr_t)ucs4);
    CHECK_INT(py_str_read(&rt, (uint64_t)(uintptr_t)u1, out, sizeof out), 0);
    CHECK_STR(out, "h\xf0\x9f\x98\x80");
    /* torn: a negative length, or an object that is no string at all */
    put64(u1, L->uni_length, (uint64_t)-3);
    CHECK(py_str_read(&rt, (uint64_t)(uintptr_t)u1, out, sizeof out) != 0, "length -3 read");
    static _Alignas(8) uint8_t o1[64];
    mkobj(o1, L, other_type);
    CHECK(py_str_read(&rt, (uint64_t)(uintptr_t)o1, out, sizeof out) != 0, "a non-string read");

    /* int: a thread ident (PyIntObject) */
    static _Alignas(8) uint8_t i1[32];
    mkobj(i1, L, int_type);
    put64(i1, L->int_ival, 0x7f1234567700ull);
    uint64_t ident = 0;
    CHECK_INT(py_long_read(&rt, (uint64_t)(uintptr_t)i1, &ident), 0);
    CHECK(ident == 0x7f1234567700ull, "ident %#llx", (unsigned long long)ident);

    /* dict of 8 slots: one free, one deleted (key, no value), two live */
    static _Alignas(8) uint8_t d[128], table[8 * 24], k1[128], k2[128], kdel[128], v1[32], v2[32];
    mkstr(k1, L, "_active");
    mkstr(k2, L, "_limbo");
    mkstr(kdel, L, "gone");
    mkobj(v1, L, other_type);
    mkobj(v2, L, other_type);
    mkobj(d, L, other_type);
    put64(d, L->dict_used, 2);
    put64(d, L->d27_mask, 7);
    put64(d, L->d27_table, (uint64_t)(uintptr_t)table);
    put64(table, 1 * 24 + 8, (uint64_t)(uintptr_t)kdel);
    put64(table, 3 * 24 + 8, (uint64_t)(uintptr_t)k2);
    put64(table, 3 * 24 + 16, (uint64_t)(uintptr_t)v2);
    put64(table, 6 * 24 + 8, (uint64_t)(uintptr_t)k1);
    put64(table, 6 * 24 + 16, (uint64_t)(uintptr_t)v1);
    uint64_t v = 0;
    CHECK_INT(py_dict_get_str(&rt, (uint64_t)(uintptr_t)d, "_active", &v), 0);
    CHECK(v == (uint64_t)(uintptr_t)v1, "_active -> %#llx", (unsigned long long)v);
    CHECK_INT(py_dict_get_str(&rt, (uint64_t)(uintptr_t)d, "_limbo", &v), 0);
    CHECK(v == (uint64_t)(uintptr_t)v2, "_limbo -> %#llx", (unsigned long long)v);
    CHECK_INT(py_dict_get_str(&rt, (uint64_t)(uintptr_t)d, "gone", &v), 0);
    CHECK(v == 0, "a deleted key found");
    /* a torn mask (not 2^n - 1, or huge) is refused, not walked */
    put64(d, L->d27_mask, 6);
    CHECK(py_dict_get_str(&rt, (uint64_t)(uintptr_t)d, "_active", &v) != 0, "mask 6 walked");
    put64(d, L->d27_mask, ((uint64_t)1 << 40) - 1);
    CHECK(py_dict_get_str(&rt, (uint64_t)(uintptr_t)d, "_active", &v) != 0, "mask 2^40-1 walked");
    return check_done("objects27");
}
