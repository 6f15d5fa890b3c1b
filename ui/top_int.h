/* Internal to sonde top (ui/top*.c): the live view's state, and the rows
 * of its threads pane (ui/top_rows.c: threads, threads named alike as one
 * row (ui/tgroup.h), green threads, the threads dropped after they ended),
 * drawn by ui/top.c. Single-threaded: the UI thread's. */
#ifndef SONDE_UI_TOP_INT_H
#define SONDE_UI_TOP_INT_H

#include "ui/top.h"

#include <stddef.h>
#include <stdint.h>

enum { SORT_OWN, SORT_TOTAL, SORT_NAME, SORT_FILE, SORT_COUNT };
enum { PANE_FUNCS, PANE_THREADS };

/* Green threads on one thread past this many are shown grouped by function
 * (as in sonde view). */
#define GROUP_OVER 40

/* A row of the threads pane under "(all threads)": a thread (green and
 * count 0; deep when listed under its group), one of its green threads
 * (green = index in s.greens + 1; deep when listed under its group), a
 * group of count green threads sharing a function (from index first), a
 * group of tcount threads named alike (ui/tgroup.h: thread is its first's,
 * first its index in s.threads), or, thread LIVE_ENDED_ID, the threads
 * dropped after they ended. */
struct trow {
    uint32_t thread;
    uint32_t green, count, first, tcount;
    int deep;
};

struct top {
    struct live *l;
    const struct top_opts *o;
    struct live_snap s;
    enum q_metric mode;
    int sort, pane, paused;
    uint32_t thread;          /* live thread id, 0 = all */
    uint32_t green;           /* green thread filter (sampler id; then thread is 0), 0 = none */
    int sel, scroll;          /* function table */
    int tsel, tscroll;        /* threads pane: row (0 = all threads), first row shown */
    struct trow *rows; size_t nrows, caprows;
    int xopen;                /* a group is listed in full: */
    uint32_t xthread;         /* its thread and function */
    char xfunc[64];
    size_t *thead; size_t capthead; /* by index in s.threads: its group's first (ui/tgroup.h) */
    int tgopen;               /* a group of threads is listed in full: */
    int tgpid;                /* its process and name pattern */
    char tgpat[160];
    char msg[128];
};

/* Figures of green threads [a, b) of s.greens: samples and CPU while
 * running, the share of their wall time running. */
struct gsum {
    uint64_t samples;
    double cpu_ns, run_pct;
};

/* The rows of the threads pane (t->rows, t->thead) from the snapshot t->s.
 * 0 or -ENOMEM. */
int top_build_rows(struct top *t);
/* Is the group of threads whose first is s.threads[i] listed in full? */
int top_tgroup_open(const struct top *t, size_t i);
/* The thread of live id id (LIVE_ENDED_ID: the dropped threads' sums), or
 * NULL (dropped since). Points into t->s until the next snapshot. */
const struct live_thread *top_thread_by_id(const struct top *t, uint32_t id);
struct gsum top_green_sum(const struct top *t, size_t a, size_t b);
/* The figures of a thread row: the thread, a group's sums (*ended: how
 * many of it ended), the dropped threads' sums. */
struct live_thread top_row_sums(const struct top *t, const struct trow *r, uint32_t *ended);
/* The width of the threads pane's name column on a screen of cols. */
int top_name_width(const struct top *t, int cols);
/* 100 a / b, 0 when b is 0. */
double top_pct(double a, double b);

#endif
