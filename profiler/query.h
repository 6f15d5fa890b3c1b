/* Queries over the in-memory model: per-thread accounting, function
 * profiles (self and total), GIL summary. Pure functions of the model. */
#ifndef SONDE_QUERY_H
#define SONDE_QUERY_H

#include "profiler/calltree.h"
#include "profiler/model.h"

#include <stddef.h>
#include <stdint.h>

enum q_metric { Q_WALL = 0, Q_CPU = 1, Q_GIL = 2, Q_METRICS };

struct q_thread {
    uint32_t thread;              /* model thread id */
    uint64_t samples;
    double wall_s, cpu_s;
    double state_s[STATE_COUNT];  /* wall seconds spent in each state */
    double gil_offcpu_s;          /* of state_s[STATE_GIL]: held while off CPU */
};

/* One row per thread that has samples, in thread id order. Caller frees. */
int query_threads(const struct model *m, struct q_thread **out, size_t *n);

struct q_func {
    uint32_t name, file;          /* string ids; a native function's file is its module */
    int32_t fn_line;
    uint8_t native;               /* 1: a native function (ct_func.native) */
    uint64_t address;             /* native: its offset in the module */
    double self[Q_METRICS], total[Q_METRICS]; /* seconds */
};

/* Every function seen (a function is name + file + first line), with self
 * and total wall, CPU and GIL-held seconds; only the samples filter f
 * selects (NULL: every thread's). A function counts once per sample in
 * totals, however deep it recurses. Sorted by self (sort_self) or total
 * time of sort_metric, descending. Caller frees. */
int query_functions(const struct model *m, const struct ct_filter *f, enum q_metric sort_metric,
                    int sort_self, struct q_func **out, size_t *n);

/* A line of a function: self time while it was the line executing in the
 * innermost frame, total time while it was on the stack (the line running,
 * or the call site of what ran). */
struct q_line {
    uint32_t name, file;          /* string ids; a native frame's file is its DWARF source ("" without) */
    int32_t line, fn_line;        /* a native frame: its DWARF line (0 without), fn_line 0 */
    uint8_t native;               /* 1: a native frame (one row per recorded frame) */
    uint32_t module;              /* native: string id of its module's path */
    uint64_t address;             /* native: its offset in the module (m_frame.address) */
    double self[Q_METRICS], total[Q_METRICS]; /* seconds */
};

/* Every line seen in the samples f selects (as query_functions), once per
 * sample in totals however deep it recurses; sorted as query_functions
 * sorts. Caller frees. 0 or -ENOMEM. */
int query_lines(const struct model *m, const struct ct_filter *f, enum q_metric sort_metric, int sort_self,
                struct q_line **out, size_t *n);

/* A green thread's time: wall_s is its life as observed (running plus
 * suspended samples), running_s the wall time of its thread's samples
 * while it ran, cpu_s its thread's CPU in those samples, state_s the states
 * of those samples. */
struct q_green {
    uint32_t green;               /* model green id */
    uint64_t samples;             /* running and suspended */
    double wall_s, cpu_s, running_s;
    double state_s[STATE_COUNT];  /* while running */
};

/* One row per green thread that has samples, in id order. Caller frees. */
int query_greens(const struct model *m, struct q_green **out, size_t *n);

struct q_span {
    uint32_t span;                /* span number (m->spans[i].no) */
    uint64_t samples;             /* the threads' samples taken while it was current */
    double wall_s, cpu_s;
    double state_s[STATE_COUNT];
};

/* One row per span of m->spans (with or without samples), in its order
 * (*n = m->nspans). Caller frees. 0 or -ENOMEM. */
int query_spans(const struct model *m, struct q_span **out, size_t *n);

struct q_gil {
    uint64_t switches;            /* counted by the interpreter(s) */
    double duration_s;
    double held_pct;              /* % of ticks with the GIL held */
    double contended_pct;         /* % of ticks with at least one waiter */
    double wait_s;                /* summed gil_wait time over threads */
    double mean_waiters;          /* average waiters per tick */
    double held_s, held_offcpu_s; /* GIL-held wall seconds over threads; of
                                     those, with the holder off CPU */
};

/* The GIL summary of every process of the recording (held and contended
 * shares are over all the processes' ticks, each of which has its own GIL:
 * of a recording of several, query_gil_pid tells them apart). */
void query_gil(const struct model *m, struct q_gil *out);

/* The GIL summary of process pid alone (0: as query_gil): its ticks, its
 * threads' samples, and the growth of its interpreter's switch counter. */
void query_gil_pid(const struct model *m, int32_t pid, struct q_gil *out);

/* The metric of one sample. */
static inline double q_sample_value(const struct m_sample *s, enum q_metric k)
{
    switch (k) {
    case Q_CPU: return (double)s->cpu_ns / 1e9;
    case Q_GIL: return s->state == STATE_GIL ? (double)s->wall_ns / 1e9 : 0;
    default: return (double)s->wall_ns / 1e9;
    }
}

#endif
