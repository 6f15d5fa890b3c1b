/* A small validating JSON tokenizer (jsmn-like): one pass, one token array,
 * no allocation per value. Used on the collector's hot path (OTLP JSON)
 * where building a jansson tree per request was the bottleneck. */
#ifndef SONDE_COLLECTOR_JSON_TOK_H
#define SONDE_COLLECTOR_JSON_TOK_H

#include <stddef.h>
#include <stdint.h>

/* JT_DEEP: an object or array nested deeper than jt_parse's max_depth,
 * validated but kept as one token (start/len cover its text). */
enum jt_type { JT_OBJ, JT_ARR, JT_STR, JT_NUM, JT_TRUE, JT_FALSE, JT_NULL, JT_DEEP };

struct jtok {
    uint8_t type;    /* enum jt_type */
    uint8_t esc;     /* JT_STR: contains a backslash escape */
    uint32_t start;  /* JT_STR: first byte after the quote; others: first byte */
    uint32_t len;    /* JT_STR: bytes between the quotes */
    uint32_t next;   /* index of the first token after this value's subtree */
    uint32_t size;   /* JT_OBJ: members (each = key token + value subtree); JT_ARR: elements */
};

struct jt_doc {
    const char *src;
    struct jtok *t;
    size_t n, cap;
};

/* Tokenize len bytes of JSON text (strict RFC 8259: UTF-8 validated, one
 * value plus whitespace). An object or array inside max_depth others is
 * validated but becomes a single JT_DEEP token: deep nesting costs neither
 * tokens nor C stack, and is never an error by itself. Returns 0, -EINVAL
 * (malformed; *errpos gets the byte offset) or -ENOMEM. The doc borrows
 * src. Thread-safe on distinct docs. */
int jt_parse(struct jt_doc *d, const char *src, size_t len, int max_depth, size_t *errpos);

/* Release the token array; a zeroed doc is fine. */
void jt_free(struct jt_doc *d);

/* Value token of member `key` of object token i, or -1. Escaped keys never
 * match. */
long jt_get(const struct jt_doc *d, size_t i, const char *key);

/* jt_get for n keys at once, in one pass over object i's members: out[k]
 * is the value of keys[k] (its first occurrence), or -1. */
void jt_get_keys(const struct jt_doc *d, size_t i, const char *const *keys, size_t n, long *out);

/* Whether string token i equals s exactly (escaped strings never do). */
int jt_eq(const struct jt_doc *d, size_t i, const char *s);

/* Decode string token i into out (at least t->len + 1 bytes), NUL-terminated;
 * returns the decoded length. */
size_t jt_unescape(const struct jt_doc *d, size_t i, char *out);

/* Rewrite, in the n bytes of escaped JSON string text at s (as between the
 * quotes of a validated string), every \u escape that a strict reader
 * refuses (a surrogate not in a high-low pair, or \u0000) into \ufffd, in
 * place (same length). Returns how many were rewritten. */
size_t jt_repair_escapes(char *s, size_t n);

#endif
