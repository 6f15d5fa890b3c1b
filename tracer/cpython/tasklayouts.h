/* Layouts of asyncio's C Task (Modules/_asynciomodule.c, private to each
 * CPython version: not in any installed header), one table per minor
 * version, written by hand from each version's source and checked against
 * live interpreters by tests/e2e/test_tasks.py. */
#ifndef SONDE_PY_TASKLAYOUTS_H
#define SONDE_PY_TASKLAYOUTS_H

#include <stdint.h>

struct py_task_layout {
    int minor;
    int64_t fut_loop;        /* PyObject *fut_loop */
    int64_t fut_state;       /* fut_state (int): 0 pending, 1 cancelled, 2 finished */
    int64_t task_fut_waiter; /* the future the task waits on, or NULL */
    int64_t task_coro;
    int64_t task_name;       /* str; or an int N meaning "Task-N" until get_name() (3.12+) */
    int64_t rl_loop;         /* _RunningLoopHolder.rl_loop (3.8-3.11), else -1 */
};

/* The table for CPython 3.minor, or NULL if there is none. */
const struct py_task_layout *py_task_layout_for(int major, int minor);

#endif
