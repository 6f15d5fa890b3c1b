/* UTF-8 hygiene for text that came from a target, a file or the network. */
#ifndef SONDE_UTF8_H
#define SONDE_UTF8_H

#include <stddef.h>

/* Copy the n bytes at in to out (outlen bytes, NUL-terminated), replacing
 * every byte that is not part of a well-formed UTF-8 sequence (overlong,
 * surrogate, above U+10FFFF, cut short, or a NUL) with U+FFFD. Returns the
 * length written; never splits a sequence when out is too small.
 * 3 * n + 1 bytes of out always suffice. */
size_t utf8_sanitize_n(const char *in, size_t n, char *out, size_t outlen);

/* The same for a NUL-terminated string. */
size_t utf8_sanitize(const char *in, char *out, size_t outlen);

/* Are the n bytes at s well-formed UTF-8 without a NUL? */
int utf8_valid_n(const char *s, size_t n);

/* A malloc'd copy of s (NULL: ""), repaired as by utf8_sanitize when it is
 * not well-formed; NULL when out of memory. */
char *utf8_dup(const char *s);

#endif
