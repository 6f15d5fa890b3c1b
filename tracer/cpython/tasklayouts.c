/* C Task layouts per CPython version (see tasklayouts.h). Offsets on 64-bit
 * builds, derived from FutureObj_HEAD and TaskObj of each version:
 *
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
 * fut_state follows the last of the head's pointers (72, 80, 88, 88, 88, 96).
 * fut_loop is the first field after the object header in every version.
 * The running-loop holder of 3.8-3.11 is { PyObject_HEAD; PyObject
 * *rl_loop; pid_t rl_pid; }. */
#include "tracer/cpython/tasklayouts.h"

#include <stddef.h>

static const struct py_task_layout task_layouts[] = {
    { 8, 16, 72, 104, 112, 120, 16 },
    { 9, 16, 80, 144, 152, 160, 16 },
    { 10, 16, 88, 152, 160, 168, 16 },
    { 11, 16, 88, 128, 136, 144, 16 },
    { 12, 16, 88, 128, 136, 144, -1 },
    { 13, 16, 96, 112, 120, 128, -1 },
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
