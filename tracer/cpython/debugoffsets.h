/* CPython's own description of its layouts: the _Py_DebugOffsets block at
 * the start of _PyRuntime (3.13+) and asyncio's _Py_AsyncioModuleDebugOffsets
 * (the _AsyncioDebug symbol, 3.14+). Each is an array of 64-bit words whose
 * arrangement changes between minor versions; sonde knows the 3.13 and 3.14
 * arrangements and refuses any other. Pure functions over bytes already
 * read from the target (hostile: every offset is checked before use). */
#ifndef SONDE_PY_DEBUGOFFSETS_H
#define SONDE_PY_DEBUGOFFSETS_H

#include "tracer/cpython/layout.h"

#include <stddef.h>
#include <stdint.h>

/* Bytes to read from &_PyRuntime to hold any block sonde knows. */
#define PY_DBG_MAX_BYTES 1024

/* The newest minor version sonde reads; 3.14 has no compiled-in table and
 * is read only through its _Py_DebugOffsets. */
#define PY_DBG_NEWEST_MINOR 14

/* Refine L, the layout sonde starts from for 3.minor (the compiled-in table,
 * or 3.13's for 3.14), from a _Py_DebugOffsets block (buf: len bytes read
 * from &_PyRuntime). Returns 1 when L was refined; 0 when there is no block
 * (no cookie: a build without one) or it describes another version than
 * 3.minor (L unchanged); SE_UNSUPPORTED with a message saying why (the
 * caller names the version) for a free-threaded build, a version whose block sonde does not know, or
 * offsets that do not fit the structures they describe (L unchanged). */
int py_debug_offsets_apply(const void *buf, size_t len, int major, int minor,
                           struct py_layout *L, char *err, size_t errlen);

/* What asyncio's debug offsets say about its C Task and where each thread
 * and interpreter keeps its list of tasks (3.14+). */
struct py_asyncio_offsets {
    int64_t task_size, task_name, task_awaited_by, task_is_task, task_awaited_by_is_set,
        task_coro, task_node;
    int64_t is_tasks_head;                    /* in PyInterpreterState */
    int64_t ts_running_loop, ts_running_task, ts_tasks_head; /* in _PyThreadStateImpl */
};

/* Parse a _Py_AsyncioModuleDebugOffsets block (buf: len bytes read at the
 * _AsyncioDebug symbol) of CPython 3.minor into out. Returns 0, or
 * SE_UNSUPPORTED for a version without such a block or whose arrangement
 * sonde does not know, SE_FAULT for a block that is short or whose offsets
 * fall outside the structures they describe. */
int py_asyncio_offsets_parse(const void *buf, size_t len, int major, int minor,
                             struct py_asyncio_offsets *out, char *err, size_t errlen);

#endif
