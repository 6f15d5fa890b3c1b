/* Python stacks: walking a thread's frames (raw, on the sampling path) and
 * resolving code objects to names, files and lines (cached by address). */
#ifndef SONDE_PY_FRAMES_H
#define SONDE_PY_FRAMES_H

#include "tracer/cpython/linetable.h"
#include "tracer/cpython/runtime.h"

#include <stddef.h>
#include <stdint.h>

#define PY_MAX_DEPTH 1024

/* One frame as read: the code object and the bytecode offset in bytes.
 * entry is 1 on a thread-stack walk's frame that is the first one its
 * evaluation call on the C stack ran (the outermost frame of that call):
 * every frame on 3.8-3.10, `is_entry` on 3.11, the frame just inside a C
 * stack shim on 3.12+; native-frame merging (tracer/native/) uses it. */
struct py_rawframe {
    uint64_t code;
    int32_t addr;
    uint8_t entry;
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
    int32_t flags;     /* co_flags (up to 3.10: the walk's check), -1 unknown */
    int32_t framewords; /* words its frames take on the data stack (3.11+), -1 unknown */
    /* Memo of recent (offset -> line) lookups: decoding a line table is
     * linear, and a hot loop samples the same few offsets. Touched only by
     * the thread that calls py_code_line. */
    int32_t memo_addr[16], memo_line[16];
    /* What the object held when decoded, to notice that the address now
     * holds another code object (the old one was freed, e.g. a module's
     * <module> after import); checked again every PY_CODE_RECHECK_NS. */
    uint64_t fp[3]; /* co_name, co_filename, co_linetable pointers */
    int64_t checked_ns;
    int64_t recheck_ns; /* py_code_recheck's stamp */
    struct py_code *next_dead; /* replaced entries, freed with the cache */
};

#define PY_CODE_RECHECK_NS 20000000

struct py_codecache *py_codecache_new(void);
void py_codecache_free(struct py_codecache *c);

/* The decoded code object at addr, reading and caching it on first use.
 * NULL if it cannot be read or is not a code object. A cached entry is
 * re-validated against the target at most every PY_CODE_RECHECK_NS of
 * rt->now_ns; a replaced entry stays allocated (callers may hold it) until
 * the cache is freed. */
const struct py_code *py_code_get(struct py_runtime *rt, uint64_t addr);

/* Re-validate at once, in one scattered read, the cached code objects of
 * the n frames in raw that are due for it (see py_code_recheck in
 * frames.c); py_code_get then finds them fresh. */
struct py_rawframe;
void py_code_recheck(struct py_runtime *rt, const struct py_rawframe *raw, int n);

/* Line number for a frame of code at byte offset addr (memoized in co). */
int py_code_line(const struct py_runtime *rt, const struct py_code *co, int addr);

/* Why a walk stopped short: it kept the innermost max frames of a deeper
 * stack (not an error), or met a cycle, an unreadable frame or a chain that
 * ends in a generator's frame (a torn read: a running generator has a
 * caller; its frame was read after it had yielded). */
#define PY_TRUNC_DEPTH 1
#define PY_TRUNC_BROKEN 2
/* Fresh re-reads of a stack whose read was torn, at most (the sampler's
 * and dump's): a loop over a generator tears a fifth of second reads */
#define PY_STACK_RETRIES 3

/* Read the stack of the thread whose PyThreadState is at tstate, innermost
 * first, into out (at most max frames). *truncated is set when the walk
 * stopped short: PY_TRUNC_DEPTH at the depth cap, PY_TRUNC_BROKEN at a
 * cycle, an unreadable frame or a generator's frame without a caller.
 * Returns the
 * number of frames or a negative code (SE_EXITED, SE_FAULT...). Allocates
 * nothing. tsbuf, when non-NULL, holds the thread state's first bytes
 * already read by the caller (PY_TSBUF bytes). */
#define PY_TSBUF 512
int py_stack_read(struct py_runtime *rt, uint64_t tstate, const uint8_t *tsbuf,
                  struct py_rawframe *out, int max, int *truncated);

/* The pieces of a stack walk, for callers that batch their reads (the
 * sampler reads every thread's top-frame pointer and data-stack window in
 * one system call). py_stack_source says what to read from the thread
 * state's bytes: the top frame itself, or the address holding it
 * (frame_ptr, 3.11/3.12), and the window [win_lo, win_hi) of the data stack
 * worth reading whole (0, 0 if none). Neither allocates. */
#define PY_STACK_WINDOW (64 * 1024)
struct py_stack_src {
    uint64_t frame, frame_ptr, win_lo, win_hi;
};
void py_stack_source(const struct py_runtime *rt, const uint8_t *ts, struct py_stack_src *src);

/* Frames a walk finds outside the data-stack window: the C-stack shim of
 * every entry into the interpreter (3.12+), generator and coroutine frames,
 * older chunks, and on 3.8-3.10 every frame object. They rarely move while
 * the stack below the top stays put, so a caller that samples again and
 * again can read the ones its previous walk used (side->used) in its own
 * batched read and hand the copies in (addr/buf, py_side_size bytes each);
 * the walk reads any other frame itself. */
#define PY_SIDE_MAX 64
struct py_side {
    int n;                      /* in: copies available: frame addr[i] is */
    const uint64_t *addr;       /* at buf + i * stride */
    const uint8_t *buf;
    size_t stride;
    int nused;                  /* out: frames used outside the window, */
    uint64_t used[PY_SIDE_MAX]; /* in walk order (at most PY_SIDE_MAX) */
    uint64_t want;              /* in: a frame's address (0: none): is it on */
    int want_seen;              /* the stack? out: 1 when the walk met it */
};
size_t py_side_size(const struct py_runtime *rt);

/* Walk from frame, using window (a copy of [wlo, whi), or NULL) where it
 * covers a frame, and side (or NULL) for the frames outside it. Same
 * results as py_stack_read. */
int py_stack_walk(struct py_runtime *rt, uint64_t frame, const uint8_t *window, uint64_t wlo,
                  uint64_t whi, struct py_side *side, struct py_rawframe *out, int max,
                  int *truncated);

/* py_stack_read, fresh (the thread state read again), with side's want
 * looked for (side->want_seen); side's copies are not used (n is set to 0). */
int py_stack_read_side(struct py_runtime *rt, uint64_t tstate, struct py_side *side,
                       struct py_rawframe *out, int max, int *truncated);

#endif
