/* Private to tracer/cpython/tasks.c and tasks_batch.c: what both parts of
 * the task reader share (limits, small readers, the reader's state and the
 * one-task steps the batch reader falls back on). Not an API. */
#ifndef SONDE_PY_TASKS_IMPL_H
#define SONDE_PY_TASKS_IMPL_H

#include "common/err.h"
#include "tracer/cpython/objects.h"
#include "tracer/cpython/tasklayouts.h"
#include "tracer/cpython/tasks.h"

#include <stddef.h>
#include <string.h>

#define SET_MAX_SLOTS (1u << 20) /* registry tables read at most */
#define SET_CHUNK 256            /* slots read per system call */
#define SMALL_DICT 64            /* entries of a thread dict / _current_tasks read */
#define BASE_DEPTH 16            /* tp_base links followed */
#define GATHER_DEPTH 4           /* nested gathers followed */

static inline uint64_t rdp(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline int32_t rd32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline int gone(int rc)
{
    return rc == SE_EXITED || rc == SE_PERM;
}

#define GEN_READ 512 /* bytes of a generator read at once: its frame, locals, stack top */

struct reader {
    struct py_runtime *rt;
    struct py_tasks *c;
    const struct py_task_layout *TL;
    const struct py_thread *threads;
    int nthreads;
    const uint64_t *loops, *cur; /* per thread: its loop and running task */
    struct py_task *out;
    int max, n;
    struct py_tasks_stats *st;
};

/* tasks.c: the steps of reading one task (contracts beside their code). */
int tk_type_is(struct py_runtime *rt, uint64_t type, uint64_t *cache, const char *name,
               const char *alt);
int tk_task_kind(struct py_runtime *rt, struct py_tasks *c, uint64_t type);
int tk_is_gen_type(struct py_runtime *rt, struct py_tasks *c, uint64_t type);
int tk_read_name(struct py_runtime *rt, struct py_tasks *c, uint64_t obj, char *out,
                     size_t len);
int tk_coro_name(struct py_runtime *rt, struct py_tasks *c, uint64_t coro, char *out, size_t len);
void tk_add_awaits(struct py_runtime *rt, struct py_tasks *c, struct py_task *t,
                       uint64_t waiter, int depth);
void tk_tg_awaits(struct py_runtime *rt, struct py_tasks *c, struct py_task *t, uint64_t waiter,
                      uint64_t code, uint64_t inner);
size_t tk_gen_span(const struct py_layout *L);
size_t tk_frame_span(const struct py_layout *L);
void tk_frame_level(struct py_runtime *rt, const uint8_t *b, struct py_rawframe *f,
                        uint64_t *at);
int tk_chain_level(struct py_runtime *rt, uint64_t obj, const uint8_t *g, size_t glen,
                       struct py_rawframe *f, uint64_t *yf);
int tk_consider(struct reader *r, uint64_t obj, int dedup);
/* tasks_batch.c: every live task of the set at set (of weakrefs to tasks
 * when weak; dedup: skip tasks already in r->out). 0 or a read error. */
int tk_read_set(struct reader *r, uint64_t set, int weak, int dedup);

#endif
