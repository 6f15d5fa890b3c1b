#include "tracer/cpython/objects.h"

#include "common/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HDR_MAX 128

static int64_t rd64(const uint8_t *p)
{
    int64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

int py_str_header(const struct py_layout *L, const uint8_t *hdr, int64_t *length, int *kind,
                  int64_t *inline_off)
{
    int64_t len = rd64(hdr + L->str_length);
    uint32_t state = rd32(hdr + L->str_state);
    int k = (int)((state >> 2) & 7);
    int compact = (state >> 5) & 1;
    int ascii = (state >> 6) & 1;
    if (len < 0 || len > (1 << 30) || (k != 1 && k != 2 && k != 4) || (ascii && k != 1))
        return SE_FAULT;
    *length = len;
    *kind = k;
    if (compact)
        *inline_off = ascii ? L->str_ascii_size : L->str_compact_size;
    else
        *inline_off = -1;
    return 0;
}

static size_t put_utf8(uint32_t c, char *out, size_t room)
{
    if (c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        c = 0xfffd;
    if (c < 0x80) {
        if (room < 1)
            return 0;
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        if (room < 2)
            return 0;
        out[0] = (char)(0xc0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        if (room < 3)
            return 0;
        out[0] = (char)(0xe0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        out[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    if (room < 4)
        return 0;
    out[0] = (char)(0xf0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
    out[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

size_t py_str_to_utf8(const void *data, size_t n, int kind, char *out, size_t outlen)
{
    if (!outlen)
        return 0;
    size_t o = 0;
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) {
        uint32_t c;
        if (kind == 1)
            c = p[i];
        else if (kind == 2) {
            uint16_t v;
            memcpy(&v, p + 2 * i, 2);
            c = v;
        } else {
            memcpy(&c, p + 4 * i, 4);
        }
        size_t w = put_utf8(c, out + o, outlen - 1 - o);
        if (!w)
            break;
        o += w;
    }
    out[o] = 0;
    return o;
}

/* Py_TPFLAGS_STRING_SUBCLASS and Py_TPFLAGS_UNICODE_SUBCLASS of 2.7 */
#define TPF27_STRING (1ul << 27)
#define TPF27_UNICODE (1ul << 28)

/* 2.7: a str (PyStringObject: bytes, shown as Latin-1 unless valid UTF-8)
 * or a unicode object (Py_UNICODE *str of 2 or 4 byte units). */
static int str27_read(struct py_runtime *rt, uint64_t addr, char *out, size_t outlen)
{
    const struct py_layout *L = &rt->L;
    uint64_t type, flags;
    int rc = mem_read_ptr(&rt->mem, addr + (uint64_t)L->ob_type, &type);
    if (!rc)
        rc = mem_read(&rt->mem, type + (uint64_t)L->tp_flags, &flags, sizeof flags);
    if (rc)
        return rc;
    uint8_t buf[PY_STR_MAX * 4];
    int64_t len;
    uint64_t data;
    int kind;
    if (flags & TPF27_STRING) {
        if ((rc = mem_read(&rt->mem, addr + (uint64_t)L->bytes_size, &len, sizeof len)))
            return rc;
        data = addr + (uint64_t)L->bytes_sval;
        kind = 1;
    } else if (flags & TPF27_UNICODE) {
        if ((rc = mem_read(&rt->mem, addr + (uint64_t)L->uni_length, &len, sizeof len)) ||
            (rc = mem_read_ptr(&rt->mem, addr + (uint64_t)L->uni_str, &data)))
            return rc;
        kind = rt->unicode_unit == 2 ? 2 : 4;
    } else {
        return SE_FAULT;
    }
    if (len < 0 || len > (1 << 30))
        return SE_FAULT;
    if (len > PY_STR_MAX)
        len = PY_STR_MAX;
    if (len && (rc = mem_read(&rt->mem, data, buf, (size_t)len * (size_t)kind)))
        return rc;
    if (kind == 1) {
        /* Source-encoded bytes: kept as they are when they are UTF-8. */
        size_t n = (size_t)len, i = 0;
        while (i < n) {
            uint8_t c = buf[i];
            size_t k = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
                                                        : (c & 0xf8) == 0xf0 ? 4 : 0;
            if (!k || i + k > n)
                break;
            size_t j = 1;
            while (j < k && (buf[i + j] & 0xc0) == 0x80)
                j++;
            if (j < k)
                break;
            i += k;
        }
        if (i == n) {
            size_t w = n < outlen ? n : outlen - 1;
            while (w > 0 && w < n && (buf[w] & 0xc0) == 0x80)
                w--; /* do not cut a character */
            memcpy(out, buf, w);
            out[w] = 0;
            return 0;
        }
    } else if (kind == 2) {
        /* UCS-2 builds keep astral characters as surrogate pairs: joined
         * into UCS-4 in place (each pair shrinks to one 4-byte unit). */
        uint32_t u4[PY_STR_MAX];
        size_t n = 0;
        for (int64_t i = 0; i < len; i++) {
            uint16_t a, b;
            memcpy(&a, buf + 2 * i, 2);
            uint32_t c = a;
            if (a >= 0xd800 && a < 0xdc00 && i + 1 < len) {
                memcpy(&b, buf + 2 * (i + 1), 2);
                if (b >= 0xdc00 && b < 0xe000) {
                    c = 0x10000 + (((uint32_t)a - 0xd800) << 10) + ((uint32_t)b - 0xdc00);
                    i++;
                }
            }
            u4[n++] = c;
        }
        py_str_to_utf8(u4, n, 4, out, outlen);
        return 0;
    }
    py_str_to_utf8(buf, (size_t)len, kind, out, outlen);
    return 0;
}

int py_str_read(struct py_runtime *rt, uint64_t addr, char *out, size_t outlen)
{
    const struct py_layout *L = &rt->L;
    uint8_t hdr[HDR_MAX];
    if (L->str_length < 0) {
        if (outlen)
            out[0] = 0;
        return outlen ? str27_read(rt, addr, out, outlen) : 0;
    }
    size_t hl = (size_t)L->str_compact_size + 8;
    if (outlen)
        out[0] = 0;
    if (hl > sizeof hdr)
        return SE_FAULT;
    int rc = mem_read(&rt->mem, addr, hdr, hl);
    if (rc)
        return rc;
    int64_t len, off;
    int kind;
    rc = py_str_header(L, hdr, &len, &kind, &off);
    if (rc)
        return rc;
    uint64_t data = addr + (uint64_t)off;
    if (off < 0)
        data = (uint64_t)rd64(hdr + L->str_compact_size);
    if (len > PY_STR_MAX)
        len = PY_STR_MAX;
    uint8_t buf[PY_STR_MAX * 4];
    if (len) {
        rc = mem_read(&rt->mem, data, buf, (size_t)len * (size_t)kind);
        if (rc)
            return rc;
    }
    py_str_to_utf8(buf, (size_t)len, kind, out, outlen);
    return 0;
}

int py_bytes_read(struct py_runtime *rt, uint64_t addr, size_t max, uint8_t **buf, size_t *len)
{
    const struct py_layout *L = &rt->L;
    int64_t size;
    *buf = NULL;
    *len = 0;
    int rc = mem_read(&rt->mem, addr + (uint64_t)L->bytes_size, &size, sizeof size);
    if (rc)
        return rc;
    if (size < 0 || (uint64_t)size > max)
        return SE_FAULT;
    uint8_t *b = malloc((size_t)size + 1);
    if (!b)
        return -ENOMEM;
    rc = mem_read(&rt->mem, addr + (uint64_t)L->bytes_sval, b, (size_t)size);
    if (rc) {
        free(b);
        return rc;
    }
    *buf = b;
    *len = (size_t)size;
    return 0;
}

int py_long_read(struct py_runtime *rt, uint64_t addr, uint64_t *out)
{
    const struct py_layout *L = &rt->L;
    int64_t tag;
    if (L->int_ival >= 0) {
        /* 2.7: thread idents are ints (PyIntObject), longs when too big */
        uint64_t type, flags;
        int rc = mem_read_ptr(&rt->mem, addr + (uint64_t)L->ob_type, &type);
        if (!rc)
            rc = mem_read(&rt->mem, type + (uint64_t)L->tp_flags, &flags, sizeof flags);
        if (rc)
            return rc;
        if (flags & (1ul << 23)) { /* Py_TPFLAGS_INT_SUBCLASS */
            int64_t v;
            if ((rc = mem_read(&rt->mem, addr + (uint64_t)L->int_ival, &v, sizeof v)))
                return rc;
            *out = (uint64_t)v; /* a pthread_t above 2^63 reads back as negative */
            return 0;
        }
    }
    int rc = mem_read(&rt->mem, addr + (uint64_t)L->long_size, &tag, sizeof tag);
    if (rc)
        return rc;
    int64_t ndigits;
    if (L->long_tagged) {
        if ((tag & 3) == 2)
            return SE_FAULT; /* negative */
        ndigits = (int64_t)((uint64_t)tag >> 3);
    } else {
        if (tag < 0)
            return SE_FAULT;
        ndigits = tag;
    }
    if (ndigits > 3)
        return SE_FAULT;
    uint32_t d[3] = { 0, 0, 0 };
    if (ndigits) {
        rc = mem_read(&rt->mem, addr + (uint64_t)L->long_digit, d, (size_t)ndigits * 4);
        if (rc)
            return rc;
    }
    *out = (uint64_t)d[0] | ((uint64_t)d[1] << 30) | ((uint64_t)d[2] << 60);
    return 0;
}

#define DICT_MAX_ENTRIES (1 << 16)

/* Walk the entries of a keys object; values_base is the address of the
 * values[0] slot of a split table, or 0 for a combined one. */
static int keys_foreach(struct py_runtime *rt, uint64_t keys, uint64_t values_base, size_t max,
                        py_dict_fn fn, void *arg)
{
    const struct py_layout *L = &rt->L;
    uint8_t hdr[64];
    int rc = mem_read(&rt->mem, keys, hdr, sizeof hdr);
    if (rc)
        return rc;
    int64_t nentries = rd64(hdr + L->dk_nentries);
    uint64_t entries;
    size_t esize = 24;
    if (L->dk_size >= 0) {
        int64_t size = rd64(hdr + L->dk_size);
        if (size <= 0 || size > (1 << 26) || (size & (size - 1)))
            return SE_FAULT;
        int ix = size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffffffffLL ? 4 : 8;
        entries = keys + (uint64_t)L->dk_indices + (uint64_t)(size * ix);
    } else {
        int log2_size = hdr[L->dk_log2_size];
        int log2_index = hdr[L->dk_log2_index_bytes];
        int kind = hdr[L->dk_kind];
        if (log2_size > 26 || log2_index > 30)
            return SE_FAULT;
        entries = keys + (uint64_t)L->dk_indices + (1ull << log2_index);
        esize = kind == 0 ? 24 : 16; /* DICT_KEYS_GENERAL has a hash field */
    }
    if (nentries < 0 || nentries > DICT_MAX_ENTRIES)
        return SE_FAULT;
    if ((size_t)nentries > max)
        nentries = (int64_t)max;
    if (nentries == 0)
        return 0;
    size_t n = (size_t)nentries;
    uint8_t *ebuf = malloc(n * esize);
    uint64_t *vbuf = values_base ? malloc(n * 8) : NULL;
    if (!ebuf || (values_base && !vbuf)) {
        free(ebuf);
        free(vbuf);
        return -ENOMEM;
    }
    rc = mem_read(&rt->mem, entries, ebuf, n * esize);
    if (!rc && values_base)
        rc = mem_read(&rt->mem, values_base, vbuf, n * 8);
    for (size_t i = 0; !rc && i < n; i++) {
        const uint8_t *e = ebuf + i * esize + (esize == 24 ? 8 : 0);
        uint64_t key = (uint64_t)rd64(e);
        uint64_t val = values_base ? vbuf[i] : (uint64_t)rd64(e + 8);
        if (!key || !val)
            continue;
        if (fn(rt, key, val, arg))
            break;
    }
    free(ebuf);
    free(vbuf);
    return rc;
}

/* 2.7: ma_mask + 1 entries of {hash, key, value}; free and deleted slots
 * have no value. */
static int dict27_foreach(struct py_runtime *rt, uint64_t dict, size_t max, py_dict_fn fn,
                          void *arg)
{
    const struct py_layout *L = &rt->L;
    int64_t mask;
    uint64_t table;
    int rc = mem_read(&rt->mem, dict + (uint64_t)L->d27_mask, &mask, sizeof mask);
    if (!rc)
        rc = mem_read_ptr(&rt->mem, dict + (uint64_t)L->d27_table, &table);
    if (rc)
        return rc;
    if (mask < 0 || mask >= DICT_MAX_ENTRIES * 4 || ((mask + 1) & mask) || !table)
        return SE_FAULT;
    size_t n = (size_t)mask + 1;
    uint8_t *ebuf = malloc(n * 24);
    if (!ebuf)
        return -ENOMEM;
    rc = mem_read(&rt->mem, table, ebuf, n * 24);
    size_t seen = 0;
    for (size_t i = 0; !rc && i < n && seen < max; i++) {
        uint64_t key = (uint64_t)rd64(ebuf + i * 24 + 8);
        uint64_t val = (uint64_t)rd64(ebuf + i * 24 + 16);
        if (!key || !val)
            continue;
        seen++;
        if (fn(rt, key, val, arg))
            break;
    }
    free(ebuf);
    return rc;
}

int py_dict_foreach(struct py_runtime *rt, uint64_t dict, size_t max, py_dict_fn fn, void *arg)
{
    const struct py_layout *L = &rt->L;
    uint64_t keys, values;
    if (L->d27_table >= 0)
        return dict27_foreach(rt, dict, max, fn, arg);
    int rc = mem_read_ptr(&rt->mem, dict + (uint64_t)L->dict_keys, &keys);
    if (!rc)
        rc = mem_read_ptr(&rt->mem, dict + (uint64_t)L->dict_values, &values);
    if (rc)
        return rc;
    if (!keys)
        return SE_FAULT;
    return keys_foreach(rt, keys, values ? values + (uint64_t)L->dv_values : 0, max, fn, arg);
}

struct find_str {
    const char *name;
    size_t len;
    uint64_t value;
};

static int match_key(struct py_runtime *rt, uint64_t key, uint64_t value, void *arg)
{
    struct find_str *f = arg;
    char buf[256];
    if (py_str_read(rt, key, buf, sizeof buf) == 0 && strcmp(buf, f->name) == 0) {
        f->value = value;
        return 1;
    }
    return 0;
}

int py_dict_get_str(struct py_runtime *rt, uint64_t dict, const char *name, uint64_t *value)
{
    struct find_str f = { name, strlen(name), 0 };
    int rc = py_dict_foreach(rt, dict, DICT_MAX_ENTRIES, match_key, &f);
    *value = f.value;
    return rc;
}

static int keys_get_str(struct py_runtime *rt, uint64_t keys, uint64_t values_base,
                        const char *name, uint64_t *value)
{
    struct find_str f = { name, strlen(name), 0 };
    int rc = keys_foreach(rt, keys, values_base, DICT_MAX_ENTRIES, match_key, &f);
    *value = f.value;
    return rc;
}

int py_obj_attr(struct py_runtime *rt, uint64_t obj, const char *name, uint64_t *value)
{
    const struct py_layout *L = &rt->L;
    uint64_t type, flags = 0, dict = 0, cached_keys = 0;
    int64_t basicsize = 0, dictoffset = 0;
    *value = 0;
    int rc = mem_read_ptr(&rt->mem, obj + (uint64_t)L->ob_type, &type);
    if (!rc)
        rc = mem_read(&rt->mem, type + (uint64_t)L->tp_flags, &flags, sizeof flags);
    if (!rc)
        rc = mem_read(&rt->mem, type + (uint64_t)L->tp_basicsize, &basicsize, sizeof basicsize);
    if (!rc)
        rc = mem_read(&rt->mem, type + (uint64_t)L->tp_dictoffset, &dictoffset, sizeof dictoffset);
    if (rc)
        return rc;
    if (L->managed_dict_kind && (flags & (uint64_t)L->tpflag_managed_dict)) {
        rc = mem_read_ptr(&rt->mem, type + (uint64_t)L->ht_cached_keys, &cached_keys);
        if (rc)
            return rc;
        uint64_t slot;
        rc = mem_read_ptr(&rt->mem, obj - 3 * 8, &slot);
        if (rc)
            return rc;
        uint64_t values = 0;
        switch (L->managed_dict_kind) {
        case 1: /* 3.11: dict at -3 words, values at -4 */
            dict = slot;
            if (!dict && (rc = mem_read_ptr(&rt->mem, obj - 4 * 8, &values)))
                return rc;
            break;
        case 2: /* 3.12: tagged dict-or-values at -3 words */
            if (slot & 1)
                values = slot + 1; /* stored as values - 1 */
            else
                dict = slot;
            break;
        default: /* 3.13: dict at -3 words, else inline values after the object */
            dict = slot;
            if (!dict && (flags & (uint64_t)L->tpflag_inline_values))
                values = obj + (uint64_t)basicsize;
            break;
        }
        if (!dict && values && cached_keys)
            return keys_get_str(rt, cached_keys, values + (uint64_t)L->dv_values, name, value);
    } else if (dictoffset > 0) {
        rc = mem_read_ptr(&rt->mem, obj + (uint64_t)dictoffset, &dict);
        if (rc)
            return rc;
    }
    if (!dict)
        return 0;
    return py_dict_get_str(rt, dict, name, value);
}

int py_type_name(struct py_runtime *rt, uint64_t obj, char *out, size_t outlen)
{
    uint64_t type, name;
    int rc = mem_read_ptr(&rt->mem, obj + (uint64_t)rt->L.ob_type, &type);
    if (!rc)
        rc = mem_read_ptr(&rt->mem, type + (uint64_t)rt->L.tp_name, &name);
    if (!rc) {
        char buf[128];
        rc = mem_read(&rt->mem, name, buf, sizeof buf);
        if (rc) /* tp_name near the end of a mapping: read less */
            rc = mem_read(&rt->mem, name, buf, 32);
        buf[sizeof buf - 1] = 0;
        if (!rc)
            snprintf(out, outlen, "%s", buf);
    }
    return rc;
}
