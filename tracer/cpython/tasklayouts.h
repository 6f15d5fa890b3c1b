/* Layouts of asyncio's C Task (Modules/_asynciomodule.c, private to each
 * CPython version: not in any installed header), one table per minor
 * version, written by hand from each version's source and checked against
 * live interpreters by tests/e2e/test_tasks.py. */
#ifndef SONDE_PY_TASKLAYOUTS_H
#define SONDE_PY_TASKLAYOUTS_H

#include <stddef.h>
#include <stdint.h>

struct py_task_layout {
    int minor;
    int64_t fut_loop;        /* PyObject *fut_loop */
    int64_t fut_state;       /* fut_state (int): 0 pending, 1 cancelled, 2 finished */
    int64_t task_fut_waiter; /* the future the task waits on, or NULL */
    int64_t task_coro;
    int64_t task_name;       /* str; or an int N meaning "Task-N" until get_name() (3.12+);
                                -1: tasks have no name (3.6, 3.7) */
    int64_t rl_loop;         /* _RunningLoopHolder.rl_loop (3.7-3.11), else -1 */
    int64_t tl_key;          /* 3.6: the key of a threading.local (its per-thread entry
                                in the thread state's dict), else -1 */
    int64_t tl_dict;         /* 3.6: that entry's (a _localdummy) dict, else -1 */
    int64_t py_c_future;     /* 1: the pure-Python Task derives from the C Future (3.6):
                                its future fields are at these offsets, its own in its
                                __dict__; 0: all in its __dict__ */
};

/* Bytes of a C Task object to read: up to its last field read. */
static inline size_t py_task_span(const struct py_task_layout *TL)
{
    int64_t hi = TL->task_name > TL->task_coro ? TL->task_name : TL->task_coro;
    hi = TL->task_fut_waiter > hi ? TL->task_fut_waiter : hi;
    return (size_t)hi + 8;
}

/* The table for CPython 3.minor, or NULL if there is none. */
const struct py_task_layout *py_task_layout_for(int major, int minor);

#endif
