/* The profiler's in-memory model of a recording: what formats/ and ui/
 * read. Loaded once from a .sonde file; read-only afterwards (safe to share
 * between threads that only read). Ids are the file's ids: frames, stacks
 * and threads are indexed directly by id (index 0 is unused / "none"). */
#ifndef SONDE_MODEL_H
#define SONDE_MODEL_H

#include "profiler/store.h"

#include <stddef.h>
#include <stdint.h>

struct m_frame {
    uint32_t name, file;   /* string ids */
    int32_t line;          /* line executing in this frame (the call site for callers) */
    int32_t fn_line;       /* first line of the function */
    uint8_t kind;          /* 0 Python, 1 native */
    uint32_t module;       /* native: string id of the mapped file's path (0 for Python) */
    uint64_t address;      /* native: offset of the function in it, or of the sampled
                              address when no symbol covers it (name "??") */
};

struct m_stack {
    uint32_t parent;       /* 0: this is an outermost frame */
    uint32_t frame;
    uint32_t depth;        /* 1 for an outermost frame */
};

struct m_thread {
    int32_t pid, tid;
    uint64_t ident;
    char *name;            /* Python thread name, or "" */
};

/* A process of the recording (one, or several with --subprocesses). */
struct m_process {
    int32_t pid, ppid;
    char *cmd;             /* its command line, or "" */
};

struct m_sample {
    int64_t ts;            /* ns since the recording started */
    int64_t cpu_ns;        /* CPU time the thread used since its previous sample */
    int64_t wall_ns;       /* wall time this sample stands for */
    uint32_t thread;       /* thread id */
    uint32_t stack;        /* innermost stack node, 0 = no Python frames */
    uint32_t green, span;
    uint8_t state;         /* enum sample_state */
    uint8_t flags;         /* enum sample_flag */
};

/* A green thread (asyncio task, greenlet): a lane under its OS thread. */
struct m_green {
    int32_t pid;
    uint32_t thread;       /* the thread running its loop / hub, 0 = not known */
    uint8_t kind;          /* enum green_kind */
    uint64_t addr;         /* the object's address in the target */
    char *name;            /* its name ("Task-3"), or "" */
    char *func;            /* its coroutine / run function, or "" */
    uint8_t shared;        /* 1: another green thread has the same name (tasks before 3.8
                              are named by their coroutine): labels add its id */
    int64_t start_ns;      /* first seen */
    int64_t end_ns;        /* seen to end, or -1 (alive when the recording ended) */
};

/* A span of the recording (the span tables a recording made by the agent
 * carries): the ones whose number (attribute sonde.span_no) its samples
 * carry in m_sample.span. */
struct m_span {
    uint32_t no;           /* the number samples carry, > 0 */
    char *name;            /* never NULL */
    char span_id[17], trace_id[33], parent_id[17]; /* lowercase hex; parent "" for a root */
    int64_t start_us, end_us;
};

struct m_gil {
    int64_t ts, switches;
    int32_t pid;
    uint32_t holder;       /* thread id or 0 */
    uint32_t waiters;
};

struct model {
    char **strings;        size_t nstrings;
    struct m_frame *frames;   size_t nframes;
    struct m_stack *stacks;   size_t nstacks;
    struct m_thread *threads; size_t nthreads;
    struct m_sample *samples; size_t nsamples;   /* the threads' samples, ordered by ts */
    struct m_green *greens;   size_t ngreens;    /* by id (0 unused) */
    struct m_sample *gsamples; size_t ngsamples; /* suspended green threads' samples
                                                    (SAMPLE_SUSPENDED), by ts; a green
                                                    thread's running samples are its
                                                    thread's, with .green set */
    struct m_gil *gil;        size_t ngil;
    char **meta_keys, **meta_values; size_t nmeta;
    struct m_span *spans;     size_t nspans;     /* by no, ascending (none: NULL, 0) */
    struct m_process *procs;  size_t nprocs;     /* the process table, by pid ascending;
                                                    every pid a thread names has one */
};

/* Load the recording at path. 0, or SE_BADFILE / SE_UNSUPPORTED / -errno
 * with a one-line message in err. */
int model_load(const char *path, struct model **out, char *err, size_t errlen);
void model_free(struct model *m);

/* A meta value ("pid", "cmd", "python_version", "rate_hz", ...), or NULL.
 * A recording cut short (its recorder killed) has no "duration_ns": the
 * model derives it from its newest sample or GIL tick. */
const char *model_meta(const struct model *m, const char *key);

static inline const char *model_str(const struct model *m, uint32_t id)
{
    return id < m->nstrings && m->strings[id] ? m->strings[id] : "";
}

/* Find a thread by name or tid given as text ("MainThread", "4242"), either
 * one after "PID:" to look in that process only ("4242:MainThread"): its
 * id (the first in id order when several match), or 0 if none matches. */
uint32_t model_find_thread(const struct model *m, const char *spec);

/* Every thread that spec (as for model_find_thread) matches: the first max
 * of their ids into out (may be NULL when max is 0); returns how many
 * match. A tid or PID:TID matches one thread. */
size_t model_find_threads(const struct model *m, const char *spec, uint32_t *out, size_t max);

/* The process pid of the recording, or NULL. */
const struct m_process *model_process(const struct model *m, int32_t pid);

/* Find a green thread by name or id given as text ("Task-3", "12"; the id
 * is the model's): its id, or 0 if none matches. *several is set to the
 * number of green threads of that name (several tasks may share one). */
uint32_t model_find_green(const struct model *m, const char *name_or_id, size_t *several);

/* Find a span by its number or its span id (16 hex digits) given as text:
 * its number, or 0 if none matches. */
uint32_t model_find_span(const struct model *m, const char *no_or_id);

/* The span numbered no, or NULL. */
const struct m_span *model_span(const struct model *m, uint32_t no);

/* A display label for a green thread: "task Task-3 (compute)"; with a name
 * other green threads share, its id too: "task compute #3 (compute)". */
void model_green_label(const struct model *m, uint32_t green, char *out, size_t outlen);

/* A display label for a thread: "name (tid)"; in a recording of several
 * processes "pid:name (tid)" (the form --thread takes). */
void model_thread_label(const struct model *m, uint32_t thread, char *out, size_t outlen);

/* Where a native frame stands, for text: its module's file name and the
 * offset, "libfoo.so+0x1a2b" ("?" for an unknown module); text surfaces
 * show a native function as "name (libfoo.so+0x1a2b)", "?? (...)" when no
 * symbol covers it (the form `sonde dump --native` prints). */
void model_native_where(const struct model *m, uint32_t module, uint64_t address, char *out,
                        size_t outlen);

#endif
