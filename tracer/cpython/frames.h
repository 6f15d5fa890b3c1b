/* Python stacks: walking a thread's frames (raw, on the sampling path) and
 * resolving code objects to names, files and lines (cached by address). */
#ifndef SONDE_PY_FRAMES_H
#define SONDE_PY_FRAMES_H

#include "tracer/cpython/linetable.h"
#include "tracer/cpython/runtime.h"

#include <stddef.h>
#include <stdint.h>

#define PY_MAX_DEPTH 1024

/* One frame as read: the code object and the bytecode offset in bytes. */
struct py_rawframe {
    uint64_t code;
    int32_t addr;
};

/* A decoded code object. Owned by the runtime's cache. */
struct py_code {
    uint64_t addr;
    char *name;        /* co_name */
    char *qualname;    /* co_qualname (3.11+), else co_name */
    char *file;        /* co_filename */
    int firstlineno;
    uint8_t *lt;       /* line table bytes */
    size_t ltlen;
    int64_t ncodebytes; /* bytes of bytecode (3.11+), -1 unknown */
};

struct py_codecache *py_codecache_new(void);
void py_codecache_free(struct py_codecache *c);

/* The decoded code object at addr, reading and caching it on first use.
 * NULL if it cannot be read or is not a code object. */
const struct py_code *py_code_get(struct py_runtime *rt, uint64_t addr);

/* Line number for a frame of code at byte offset addr. */
int py_code_line(const struct py_runtime *rt, const struct py_code *co, int addr);

/* Read the stack of the thread whose PyThreadState is at tstate, innermost
 * first, into out (at most max frames). *truncated is set when the walk
 * stopped at the depth cap, a cycle or an unreadable frame. Returns the
 * number of frames or a negative code (SE_EXITED, SE_FAULT...). Allocates
 * nothing. tsbuf, when non-NULL, holds the thread state's first bytes
 * already read by the caller (PY_TSBUF bytes). */
#define PY_TSBUF 512
int py_stack_read(struct py_runtime *rt, uint64_t tstate, const uint8_t *tsbuf,
                  struct py_rawframe *out, int max, int *truncated);

#endif
