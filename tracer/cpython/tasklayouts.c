/* C Task layouts per CPython version (see tasklayouts.h). Offsets on 64-bit
 * builds, derived from FutureObj_HEAD and TaskObj of each version:
 *
 *   3.6   PyObject_HEAD (16); loop, callbacks, exception, result,
 *         source_tb; state, log_tb, blocking (ints); dict, weakreflist |
 *         fut_waiter 88, coro 96 (no name: the task is called by its
 *         coroutine's __qualname__)
 *         (its pure-Python Task derives from the C Future: its future
 *         fields are these, its task fields in its __dict__)
 *   3.7   + callback0, context0 after loop: fut_waiter 104, coro 112,
 *         then task_context (no name)
 *   3.8   PyObject_HEAD (16); loop, callback0, context0, callbacks,
 *         exception, result, source_tb; state, log_tb, blocking (ints);
 *         dict, weakreflist | fut_waiter 104, coro 112, name 120
 *   3.9   + cancel_msg after source_tb, + _PyErr_StackItem
 *         cancelled_exc_state (4 words) after weakreflist: fut_waiter 144
 *   3.10  + exception_tb after exception: fut_waiter 152
 *   3.11  the stack item becomes PyObject *cancelled_exc: fut_waiter 128
 *   3.12  as 3.11; task_name holds the int N of "Task-N" until get_name()
 *   3.13  dict and weakreflist leave the head (managed), log_tb and
 *         blocking become bitfields, the task's own flags and its
 *         num_cancels_requested come before fut_waiter: fut_waiter 112
 *
 * fut_state follows the last of the head's pointers (56, 72, 72, 80, 88, 88,
 * 88, 96). Checked against _asyncio.Task.__basicsize__ (112 on 3.6, 136 on
 * 3.7: waiter, coro, [context,] two ints).
 * fut_loop is the first field after the object header in every version.
 * The running-loop holder of 3.8-3.11 is { PyObject_HEAD; PyObject
 * *rl_loop; pid_t rl_pid; }, and 3.7 has it too. 3.6 keeps the running
 * loop in a threading.local (asyncio.events._running_loop): a C _thread._local
 * { PyObject_HEAD; PyObject *key; ... }, whose entry under key in each thread
 * state's dict is a _localdummy { PyObject_HEAD; PyObject *localdict; ... }. */
#include "tracer/cpython/tasklayouts.h"

#include <stddef.h>

static const struct py_task_layout task_layouts[] = {
    { 6, 16, 56, 88, 96, -1, -1, 16, 16, 1 },
    { 7, 16, 72, 104, 112, -1, 16, -1, -1, 0 },
    { 8, 16, 72, 104, 112, 120, 16, -1, -1, 0 },
    { 9, 16, 80, 144, 152, 160, 16, -1, -1, 0 },
    { 10, 16, 88, 152, 160, 168, 16, -1, -1, 0 },
    { 11, 16, 88, 128, 136, 144, 16, -1, -1, 0 },
    { 12, 16, 88, 128, 136, 144, -1, -1, -1, 0 },
    { 13, 16, 96, 112, 120, 128, -1, -1, -1, 0 },
};

const struct py_task_layout *py_task_layout_for(int major, int minor)
{
    if (major != 3)
        return NULL;
    for (size_t i = 0; i < sizeof task_layouts / sizeof task_layouts[0]; i++)
        if (task_layouts[i].minor == minor)
            return &task_layouts[i];
    return NULL;
}
