/* asyncio tasks of a CPython process, read from outside: every live task
 * (C _asyncio.Task and its subclasses, pure-Python asyncio.tasks._PyTask,
 * eager tasks on 3.12+), the thread running its loop, whether it is the
 * task running there now, the tasks it awaits, and its suspended coroutine
 * chain as raw frames (resolved like a thread's: frames.h).
 *
 * Where they are: the registries of asyncio.tasks (the same objects
 * whether the C module or the pure-Python code runs them): `_all_tasks`
 * (3.7-3.11) or `_scheduled_tasks` (3.12+), weak sets, `_eager_tasks`
 * (3.12+), a set, and `_current_tasks` (loop -> task). 3.6 has two of
 * each: the C Task's, static variables of the _asyncio module found in its
 * ELF symbol table, and the pure-Python Task's class attributes. The loop
 * a thread runs: its thread-state dict's "__asyncio_running_event_loop__"
 * (a holder object on 3.7-3.11, the loop on 3.12), the thread state's own
 * field (3.13), or on 3.6 the thread's entry of the threading.local
 * asyncio.events._running_loop (its "loop_pid"). The C Task layout is
 * private to Modules/_asynciomodule.c: one table per version in
 * tasklayouts.c. Tasks have no name before 3.8: they are called by their
 * coroutine's __qualname__.
 *
 * Everything is read through the runtime's checked memory reader; torn or
 * implausible memory drops the task (counted), never more. */
#ifndef SONDE_PY_TASKS_H
#define SONDE_PY_TASKS_H

#include "tracer/cpython/frames.h"
#include "tracer/cpython/runtime.h"
#include "tracer/cpython/threads.h"

#include <stdint.h>
#include <sys/types.h>

#define PY_TASK_FRAMES 64 /* frames of one suspended chain kept at most */
#define PY_TASK_AWAITS 16 /* tasks one task awaits, kept at most */
#define PY_TASK_TYPES 16  /* distinct task types remembered */

/* One task as read. */
struct py_task {
    uint64_t id;         /* the Task object's address (id(task)) */
    uint64_t loop;       /* its event loop object */
    uint64_t coro;       /* its coroutine object */
    uint64_t coro_code;  /* the coroutine's code object, 0 unknown */
    int thread;          /* index in the caller's threads running its loop, -1 none */
    pid_t tid;           /* that thread's OS id, 0 none */
    int running;         /* the task its loop's thread runs right now */
    int python;          /* a pure-Python task (asyncio.tasks._PyTask) */
    int nawaits;         /* tasks this one awaits (through a gather too) */
    uint64_t awaits[PY_TASK_AWAITS];
    char name[PY_NAME_MAX]; /* what get_name() returns */
    /* Suspended: its chain, innermost first, from what it awaits up to its
     * own coroutine. Running: empty (0): the chain is the top of its
     * thread's stack, see py_task_running_depth. */
    int nframes;
    int truncated;       /* PY_TRUNC_DEPTH or PY_TRUNC_BROKEN (frames.h) */
    struct py_rawframe frames[PY_TASK_FRAMES];
};

struct py_tasks_stats {
    int seen;      /* registry entries met (live or not) */
    int read;      /* tasks returned */
    int dropped;   /* entries left out unread: out was full (read in batches, a
                      slot may go to a task that then proves torn) */
    int bad;       /* entries skipped: unreadable, torn, or not a task */
    int broken;    /* tasks returned whose chain stopped at a torn read */
};

/* What py_tasks_find locates once (slow: sys.modules and module dicts) and
 * py_tasks_read reuses; zero it before py_tasks_find. */
struct py_tasks {
    int found;                  /* asyncio.tasks was imported and read */
    uint64_t all_set;           /* set of weakrefs: _all_tasks / _scheduled_tasks .data */
    uint64_t eager_set;         /* _eager_tasks (3.12+), else 0 */
    uint64_t current;           /* _current_tasks dict */
    uint64_t all_set2;          /* 3.6: the pure-Python Task's own registries (class */
    uint64_t current2;          /* attributes) beside the C Task's, else 0 */
    uint64_t tl_key;            /* 3.6: the key of asyncio.events._running_loop, a
                                   threading.local, in each thread state's dict */
    uint64_t lp_key;            /* 3.6: the interned "loop_pid" once seen */
    uint64_t c_task_type;       /* _asyncio.Task, 0 if the C module is absent */
    uint64_t py_task_type;      /* asyncio.tasks._PyTask */
    uint64_t gather_type;       /* asyncio.tasks._GatheringFuture */
    uint64_t rl_key;            /* the interned "__asyncio_running_event_loop__" once seen */
    uint64_t wr_type, coro_type, gen_type, str_type, int_type; /* learned by name once */
    uint64_t tg_type;           /* asyncio.taskgroups.TaskGroup, learned by name once */
    uint64_t tg_code;           /* the code of TaskGroup.__aexit__ once met */
    int nother;                 /* types met in chains that are none of those */
    uint64_t other_type[8];
    int ntypes;                 /* task types met: address -> 1 C, 2 Python, 0 neither */
    uint64_t type_addr[PY_TASK_TYPES];
    int type_kind[PY_TASK_TYPES];
};

/* Locate the registries in process rt (through sys.modules of the main
 * interpreter). 0 with c->found = 1; 0 with c->found = 0 when asyncio.tasks
 * is not imported (yet: call again later); SE_UNSUPPORTED for a version with
 * no Task layout, or a 3.6 whose _asyncio module has no symbol table; or a
 * negative read error (SE_EXITED, SE_FAULT...).
 * Allocates only in the object readers it uses (objects.h); not for the hot
 * path: call once, and again only when py_tasks_read fails. */
int py_tasks_find(struct py_runtime *rt, struct py_tasks *c);

/* Read every live task of the registries c found (at most max into out),
 * with threads[0..nthreads) the threads as read now (threads.h) to place
 * each task on the thread running its loop. Returns the number of tasks
 * written, or a negative code (SE_EXITED, SE_PERM: the process is gone;
 * SE_FAULT: a registry itself could not be read: call py_tasks_find again).
 * st (required) receives the counts; more live tasks than max shows in
 * st->dropped. Bounded work (registry tables capped at 1 << 20 slots,
 * chains at PY_TASK_FRAMES, await lists at PY_TASK_AWAITS); a C task costs
 * a few reads and allocates nothing; a pure-Python task, or an await on a
 * gather, reads instance attributes through objects.h (which may allocate).
 * A task whose memory is torn is skipped and counted in st->bad. */
int py_tasks_read(struct py_runtime *rt, struct py_tasks *c, const struct py_thread *threads,
                  int nthreads, struct py_task *out, int max, struct py_tasks_stats *st);

/* How many modules sys.modules holds now: a change says asyncio may have
 * been imported since py_tasks_find last looked. *dict caches the dict's
 * address (0: not known yet, read from the interpreter), so that a call is
 * one read. 0 (and *n) or a negative read error (then *dict is 0 again). */
int py_modules_count(struct py_runtime *rt, uint64_t *dict, int64_t *n);

/* How many entries the task registries hold now (live tasks, and weak
 * references to tasks that died since the set last shrank): one small read
 * per registry, to tell that tasks came or went in numbers since a scan.
 * 0 (and *n) or a negative read error; *n = 0 when c found nothing. */
int py_tasks_count(struct py_runtime *rt, struct py_tasks *c, int64_t *n);

/* The tasks running now: (loop, task) pairs of _current_tasks, at most max
 * (and at most a few dozen loops). One or two reads; nothing allocated.
 * Count, or a negative read error. 0 when c has not found the registries. */
int py_tasks_current(struct py_runtime *rt, struct py_tasks *c, uint64_t *loops, uint64_t *tasks,
                     int max);

/* The version of the running-task registries: every task switch on any
 * loop (a task entering or leaving its step) changes it, so two equal reads
 * say no task switched in between, with no ABA. It is the dict's
 * ma_version_tag (PEP 509: 3.6 to 3.13), one read per registry. 1 with *v
 * set; 0 when it cannot be known (not found, or a version without the tag);
 * or a negative read error. */
int py_tasks_version(struct py_runtime *rt, struct py_tasks *c, uint64_t *v);

/* Read the one task at obj, as py_tasks_read would (threads place it on the
 * thread running its loop: a few reads per thread). 1 with *out filled, 0
 * when obj is not a live task (st->bad counts a torn one), or a negative
 * code (SE_EXITED, SE_PERM). */
int py_task_read_one(struct py_runtime *rt, struct py_tasks *c, const struct py_thread *threads,
                     int nthreads, uint64_t obj, struct py_task *out, struct py_tasks_stats *st);

/* For a running task t: how many of the innermost frames of its thread's
 * stack (innermost first, as py_stack_read gives them) are the task's own:
 * up to and including the outermost frame running its coroutine's code.
 * 0 when the stack does not show it (the read raced a switch). */
int py_task_running_depth(const struct py_task *t, const struct py_rawframe *stack, int n);

#endif
