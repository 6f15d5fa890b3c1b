/* Reading Python objects out of a target: str, bytes, int, dict, and the
 * attributes of an instance. Every read is bounded and validated; a torn or
 * implausible object yields SE_FAULT, never garbage. */
#ifndef SONDE_PY_OBJECTS_H
#define SONDE_PY_OBJECTS_H

#include "tracer/cpython/runtime.h"

#include <stddef.h>
#include <stdint.h>

#define PY_STR_MAX 4096 /* characters read from one str at most */

/* Pure decoding of a str whose header bytes (at least L->str_compact_size)
 * are in hdr: its length, kind (1, 2, 4) and where its characters are:
 * *inline_off is the offset from the object when compact, else -1 and the
 * data pointer must be read at L->str_compact_size. 0 or SE_FAULT. */
int py_str_header(const struct py_layout *L, const uint8_t *hdr, int64_t *length, int *kind,
                  int64_t *inline_off);

/* Pure conversion of n characters of the given kind to NUL-terminated UTF-8.
 * Returns the number of bytes written (without the NUL); truncates safely. */
size_t py_str_to_utf8(const void *data, size_t n, int kind, char *out, size_t outlen);

/* Read the str at addr as UTF-8 into out. 0 or a negative code. */
int py_str_read(struct py_runtime *rt, uint64_t addr, char *out, size_t outlen);

/* Read the bytes object at addr: a malloc'd copy in *buf (caller frees) of at
 * most max bytes. 0 or a negative code. */
int py_bytes_read(struct py_runtime *rt, uint64_t addr, size_t max, uint8_t **buf, size_t *len);

/* Read a non-negative Python int that fits in 64 bits. 0 or a negative code. */
int py_long_read(struct py_runtime *rt, uint64_t addr, uint64_t *out);

/* Call fn(key, value, arg) for every item of the dict at addr (up to max
 * items); fn returns nonzero to stop. 0 or a negative code. */
typedef int (*py_dict_fn)(struct py_runtime *rt, uint64_t key, uint64_t value, void *arg);
int py_dict_foreach(struct py_runtime *rt, uint64_t dict, size_t max, py_dict_fn fn, void *arg);

/* Value of the str key name in the dict at addr, or 0 in *value if absent. */
int py_dict_get_str(struct py_runtime *rt, uint64_t dict, const char *name, uint64_t *value);

/* Value of the instance attribute name of obj (from its __dict__, managed
 * dict or inline values), or 0 in *value if absent. */
int py_obj_attr(struct py_runtime *rt, uint64_t obj, const char *name, uint64_t *value);

/* tp_name of the type of obj into out. */
int py_type_name(struct py_runtime *rt, uint64_t obj, char *out, size_t outlen);

#endif
