/* Decoding of CPython line tables: pure functions over a copy of the
 * table's bytes, so they can be tested without a target. Each returns the
 * line number for a bytecode offset, or -1 when the table says "no line". */
#ifndef SONDE_LINETABLE_H
#define SONDE_LINETABLE_H

#include <stddef.h>
#include <stdint.h>

enum lt_format {
    LT_LNOTAB,   /* 3.6 - 3.9: co_lnotab, (byte delta, signed line delta) pairs */
    LT_310,      /* 3.10: co_linetable, (byte delta, signed line delta, -128 = none) */
    LT_LOCATION, /* 3.11+: location table, entries of code units */
    LT_LNOTAB27, /* 2.7: co_lnotab, (byte delta, unsigned line delta) pairs */
};

/* The format a version of CPython uses. */
enum lt_format lt_format_for(int major, int minor);

/* Line executing at byte offset addr (for 3.10 and 3.11+, the offset of the
 * instruction's first byte; for 2.7 - 3.9, f_lasti). */
int lt_line(enum lt_format fmt, const uint8_t *tab, size_t len, int firstlineno, int addr);

#endif
