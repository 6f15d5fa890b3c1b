/* Attaching to a CPython process: finding _PyRuntime, the version and the
 * layout, and the caches every later read shares. */
#ifndef SONDE_PY_RUNTIME_H
#define SONDE_PY_RUNTIME_H

#include "tracer/cpython/layout.h"
#include "tracer/proc/mem.h"

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

struct py_code;      /* frames.h */
struct py_codecache; /* frames.c */

struct py_runtime {
    pid_t pid;
    struct mem_reader mem;
    int major, minor, micro;
    char version[32];            /* "3.12.1" */
    struct py_layout L;          /* compiled-in table, refined by _Py_DebugOffsets */
    int debug_offsets;           /* 1 if L was refined from the target */
    uint64_t runtime_addr;       /* &_PyRuntime in the target */
    char binary[PATH_MAX];       /* file that holds the runtime */
    int pthread_tid_off;         /* offset of tid in glibc's struct pthread, -1 unknown */
    uint64_t code_type;          /* address of PyCode_Type once seen, else 0 */
    uint64_t threading_active;   /* threading._active dict once found, else 0 */
    uint64_t shim_code;          /* 3.12+: the code of the C-stack shim frames, as
                                    learnt from one that said its owner (a torn
                                    read of a shim gone may not) */
    int64_t now_ns;              /* set by a sampler each tick: when cached code objects
                                    are re-validated (0: never, for one-shot reads) */
    struct py_codecache *codes;  /* decoded code objects by address */
    uint64_t walk_bottom;        /* the outermost frame the last walk kept (0: none):
                                    two reads of one greenlet's stack end at its
                                    root frame (tracer/greenlets.c) */
    int held;                    /* the thread walked is stopped (--native): its stack is
                                    whole, and the walk reads no code object */

    /* Interpreters older than _PyRuntime (2.7, 3.6): runtime_addr is then
     * &interp_head, and the GIL is static globals rather than a struct. */
    int gil_kind;                /* PY_GIL_STRUCT, PY_GIL_STATICS, PY_GIL_LOCK27 */
    uint64_t tstate_current;     /* &_PyThreadState_Current (2.7, 3.6), else 0 */
    uint64_t gil_locked_at;      /* STATICS: &gil_locked (an int, -1 until threads start) */
    uint64_t gil_holder_at;      /* STATICS: &gil_last_holder */
    uint64_t gil_switch_at;      /* STATICS: &gil_switch_number */
    uint64_t gil_lo;             /* STATICS: lowest of the GIL's mutexes and condvars
                                    (rt->L.gil_size spans them); LOCK27: &interpreter_lock */
    int unicode_unit;            /* 2.7: sizeof(Py_UNICODE) of this build (2 or 4) */
};

enum {
    PY_GIL_STRUCT = 0, /* 3.7+: struct _gil_runtime_state (in _PyRuntime or the interpreter) */
    PY_GIL_STATICS,    /* 3.6: the same fields as static globals of ceval.c */
    PY_GIL_LOCK27,     /* 2.7: interpreter_lock, a PyThread lock (a sem_t on Linux) */
};

/* Find the CPython runtime in process pid. Returns 0, or SE_NOPROC, SE_PERM,
 * SE_NOTPYTHON, SE_UNSUPPORTED, SE_EXITED with a one-line message in err.
 * The caller owns rt and must call py_runtime_fini even after a failure. */
int py_runtime_attach(struct py_runtime *rt, pid_t pid, char *err, size_t errlen);

/* Same, for the calling process itself (in-process agent). */
int py_runtime_attach_self(struct py_runtime *rt, char *err, size_t errlen);

void py_runtime_fini(struct py_runtime *rt);

/* Has pid gone, or lost its executable or memory mappings (as a process
 * does early in exit, before it becomes a zombie)? */
int py_process_dying(pid_t pid);

/* The address in the target of the (possibly static) symbol name of the
 * extension module whose file name starts with stem followed by a dot
 * ("_asyncio" finds _asyncio.cpython-36m-x86_64-linux-gnu.so), from its
 * .symtab or .dynsym; a module built into the interpreter is looked up in
 * rt->binary. 0 with *addr set, -ENOENT when the module is not mapped or the
 * symbol is absent (a stripped build), or a negative read error. Reads
 * /proc/PID/maps and the ELF file: not for the hot path. */
int py_runtime_module_symbol(struct py_runtime *rt, const char *stem, const char *name,
                             uint64_t *addr);

/* Address of the first interpreter state, or 0 on failure. */
uint64_t py_runtime_main_interp(struct py_runtime *rt);

#endif
