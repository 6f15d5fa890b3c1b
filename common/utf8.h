/* UTF-8 hygiene for text that came from a target or a file. */
#ifndef SONDE_UTF8_H
#define SONDE_UTF8_H

#include <stddef.h>

/* Copy in to out (outlen bytes, NUL-terminated), replacing every byte that
 * is not part of a well-formed UTF-8 sequence with U+FFFD. Returns the
 * length written. Never splits a sequence when truncating. */
size_t utf8_sanitize(const char *in, char *out, size_t outlen);

/* Is s well-formed UTF-8? */
int utf8_valid(const char *s);

#endif
