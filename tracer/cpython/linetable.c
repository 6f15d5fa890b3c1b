#include "tracer/cpython/linetable.h"

enum lt_format lt_format_for(int major, int minor)
{
    if (major == 2)
        return LT_LNOTAB27;
    if (minor <= 9)
        return LT_LNOTAB;
    if (minor == 10)
        return LT_310;
    return LT_LOCATION;
}

static int lnotab_line(const uint8_t *tab, size_t len, int line, int addrq, int is_signed)
{
    int addr = 0;
    for (size_t i = 0; i + 1 < len; i += 2) {
        addr += tab[i];
        if (addr > addrq)
            break;
        line += is_signed ? (int8_t)tab[i + 1] : tab[i + 1];
    }
    return line;
}

/* Address ranges [start, end) with a line, walked forward. */
struct range {
    const uint8_t *next, *limit;
    int start, end, line, computed;
};

static int lt310_advance(struct range *r)
{
    if (r->next + 1 >= r->limit)
        return 0;
    r->start = r->end;
    r->end += r->next[0];
    int ldelta = (int8_t)r->next[1];
    r->next += 2;
    if (ldelta == -128) {
        r->line = -1;
    } else {
        r->computed += ldelta;
        r->line = r->computed;
    }
    return 1;
}

static unsigned scan_varint(const uint8_t **p, const uint8_t *limit)
{
    unsigned val = 0, shift = 0;
    while (*p < limit) {
        unsigned b = *(*p)++;
        val |= (b & 63u) << shift;
        shift += 6;
        if (!(b & 64) || shift > 30)
            break;
    }
    return val;
}

static int scan_svarint(const uint8_t **p, const uint8_t *limit)
{
    unsigned u = scan_varint(p, limit);
    return (u & 1) ? -(int)(u >> 1) : (int)(u >> 1);
}

static int loc_advance(struct range *r)
{
    if (r->next >= r->limit)
        return 0;
    const uint8_t *p = r->next;
    uint8_t first = *p;
    int code = (first >> 3) & 15;
    int length = (first & 7) + 1;
    int delta = 0;
    const uint8_t *q = p + 1;
    switch (code) {
    case 15: /* no location */
        break;
    case 14: /* long form */
    case 13: /* no column */
        delta = scan_svarint(&q, r->limit);
        break;
    case 12:
    case 11:
    case 10: /* one line forms: delta = code - 10 */
        delta = code - 10;
        break;
    default: /* short forms: same line */
        break;
    }
    r->start = r->end;
    r->end += length * 2;
    if (code == 15) {
        r->line = -1;
    } else {
        r->computed += delta;
        r->line = r->computed;
    }
    /* skip to the next entry start (high bit set) */
    do
        p++;
    while (p < r->limit && (*p & 128) == 0);
    r->next = p;
    return 1;
}

int lt_line(enum lt_format fmt, const uint8_t *tab, size_t len, int firstlineno, int addr)
{
    if (fmt == LT_LNOTAB || fmt == LT_LNOTAB27)
        return lnotab_line(tab, len, firstlineno, addr, fmt == LT_LNOTAB);
    if (addr < 0)
        return firstlineno;
    struct range r = { tab, tab + len, -1, 0, -1, firstlineno };
    int (*advance)(struct range *) = fmt == LT_310 ? lt310_advance : loc_advance;
    while (r.end <= addr) {
        if (!advance(&r))
            return -1;
    }
    return r.line;
}
