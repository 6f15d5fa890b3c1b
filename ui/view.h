/* sonde view: a curses browser for a recording (the profiler's model):
 * call tree, flat profile, callers / callees, threads, timeline. The call
 * tree is aggregated once when the view opens; redraws cost what the
 * screen shows, not the size of the recording. */
#ifndef SONDE_UI_VIEW_H
#define SONDE_UI_VIEW_H

#include "profiler/query.h"

#include <stddef.h>
#include <stdint.h>

/* Export hook, supplied by the caller (cli/view.c) so that ui/ does not
 * pick output files itself: write the recording as format ("callgrind",
 * "html") weighted by mode, for thread (0 = all) or green thread green
 * (if nonzero). 0 with the written path
 * in msg, or a negative code with a message in msg. NULL: no exporter. */
typedef int (*view_export_fn)(void *ctx, const char *format, enum q_metric mode,
                              uint32_t thread, uint32_t green, char *msg, size_t msglen);

struct view_opts {
    const char *path;          /* the recording, shown in the title */
    enum q_metric mode;        /* initial mode */
    uint32_t thread;           /* initial thread filter, 0 = all */
    int32_t pid;               /* only this process's threads, 0 = all */
    view_export_fn export_fn;
    void *export_ctx;
    int bench_keys;            /* > 0: no terminal; time this many scripted
                                  keypresses on a 120x40 screen and print the
                                  figures on stdout */
};

/* Run the browser on the terminal until q. The terminal is restored before
 * returning. 0, or a negative code with a message in err. */
int view_run(const struct model *m, const struct view_opts *o, char *err, size_t errlen);

#endif
