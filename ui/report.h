/* Plain-text and JSON reports of a recording (sonde report). */
#ifndef SONDE_UI_REPORT_H
#define SONDE_UI_REPORT_H

#include "profiler/query.h"

#include <stdio.h>

struct report_opts {
    enum q_metric mode;   /* sort / show by wall, cpu or gil */
    uint32_t thread;      /* model thread id, 0 = all */
    int32_t pid;          /* process id, 0 = all */
    uint32_t green;       /* model green thread id: functions of that task /
                             greenlet only (0 = the threads') */
    uint32_t span;        /* span number: functions of the samples taken while
                             that span was current (0 = every sample) */
    int limit;            /* functions shown in text, 0 = all */
    int sort_total;       /* rank functions by total time (default: self) */
    int lines;            /* rank lines (function, file, line) instead */
    int all_threads;      /* one row per thread: no groups of threads named alike */
    int json;
};

/* Write the report of m to f. 0 or -ENOMEM. */
int report_write(FILE *f, const struct model *m, const struct report_opts *o);

#endif
