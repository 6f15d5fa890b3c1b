/* Text from outside (span names and attributes, function, file and thread
 * names read from a target or a recording) rendered for a terminal or a
 * plain-text output, so that it can never move the cursor, retitle the
 * terminal, write its clipboard (OSC 52), clear the screen or reorder what
 * is shown around it.
 *
 * The rendering (docs/export.md, "Text from outside"):
 *   - C0 controls (U+0000-U+001F) and DEL: \xNN, e.g. ESC is \x1b;
 *   - a byte that is not part of well-formed UTF-8: \xNN as well;
 *   - C1 controls (U+0080-U+009F, which some terminals take as CSI, OSC...),
 *     bidirectional controls (U+061C, U+200E, U+200F, U+202A-U+202E,
 *     U+2066-U+2069) and the line / paragraph separators U+2028, U+2029:
 *     \uNNNN, e.g. \u202e;
 *   - a backslash: \\, so that an escape shown is never ambiguous with the
 *     same characters typed in a name;
 *   - everything else is copied as is.
 * JSON, XML and the formats with their own quoting keep their own rules. */
#ifndef SONDE_TEXTESC_H
#define SONDE_TEXTESC_H

#include <stddef.h>
#include <stdio.h>

/* Bytes of output that always suffice for n bytes of input (with the NUL). */
#define TEXTESC_SIZE(n) (4 * (size_t)(n) + 1)

/* Does the NUL-terminated s (NULL: no) hold anything that the rendering
 * above changes? */
int textesc_needed(const char *s);

/* Render the NUL-terminated s (NULL: "") into out (outlen bytes,
 * NUL-terminated). Stops before an escape or a character that would not
 * fit whole; returns the length written. */
size_t textesc(const char *s, char *out, size_t outlen);

/* s itself when it needs no escaping, else its rendering in buf (cut as by
 * textesc when buf is too small). For printf-style callers. */
const char *textesc_str(const char *s, char *buf, size_t buflen);

/* s itself when it needs no escaping, else its whole rendering: in buf when
 * it fits, else in memory it allocates and returns in *owned (free it; NULL
 * otherwise), or cut to buf when out of memory. Never NULL. */
const char *textesc_whole(const char *s, char *buf, size_t buflen, char **owned);

/* A malloc'd rendering of s (NULL: ""); NULL when out of memory. */
char *textesc_dup(const char *s);

/* Write the rendering of s (NULL: nothing) to f. */
void textesc_fputs(const char *s, FILE *f);

/* Write the n bytes of JSON text at s to f, the code points shown as
 * \uNNNN above (C1, bidi controls, U+2028, U+2029) written as JSON \u
 * escapes: the same JSON value, with nothing left that a terminal acts on
 * (JSON writers already escape C0). 0, or -1 when f has an error. */
int textesc_json_write(const char *s, size_t n, FILE *f);

#endif
