/* Internal to sonde view (ui/view*.c): the browser's state and the calls
 * its files make into each other. ui/view_tree.c owns the data behind the
 * panes (the call tree from profiler/calltree.h weighed per thread, rows,
 * flat profile, callers / callees, search, timeline); ui/view_draw.c draws
 * them; ui/view_keys.c maps keys to actions; ui/view.c opens, runs and
 * closes the browser. Single-threaded: every call runs on the UI thread. */
#ifndef SONDE_UI_VIEW_INT_H
#define SONDE_UI_VIEW_INT_H

#include "profiler/calltree.h"
#include "ui/view.h"

#include <stddef.h>
#include <stdint.h>

enum { P_TREE, P_FLAT, P_CALLERS, P_THREADS, P_TIMELINE, P_COUNT };

struct vfunc {
    const char *name, *file; /* a native function's file: "module+0xOFFSET" (where) */
    int32_t line;            /* 0 for a native function: no ":line" */
    char *where;             /* native: owned text file points to */
};

/* A call-tree node: one function called along one path (the model's stack
 * trie merged by function, so lines within a function do not split it).
 * Parents are always created before their children (parent < id). */
struct tnode {
    uint32_t parent, func, depth, child, sibling;
};

/* Weights under one thread filter, seconds per metric. */
struct wset {
    int ready;
    double *self, *incl;       /* [node * Q_METRICS + k] */
    double *fself, *ftotal;    /* [func * Q_METRICS + k] */
};

/* A row of the threads pane: a thread (green 0, count 0; first 1 when
 * listed under its group), one of its green threads (green), a group of
 * them sharing a function (count of them: v->gord[first .. first + count),
 * shown when a thread has more than VW_GROUP_OVER; gexp[first] lists them
 * under it, with first set to 1 on their rows), or a group of tcount
 * threads named alike (ui/tgroup.h: v->qth[k] with thead[k] == first;
 * thread is the first's; tgexp[first] lists them under it). */
struct trow {
    uint32_t thread, green, count, first, tcount;
};

#define VW_GROUP_OVER 40

struct ccrow {
    uint32_t func;
    double w;
};

/* The browser: built by view_init (ui/view.c) from a model that outlives it. */
struct view {
    const struct model *m;
    const struct view_opts *o;
    struct calltree *ct;
    struct vfunc *funcs; size_t nfuncs;
    struct tnode *nodes; size_t nnodes;
    uint32_t *ctnode;          /* by view node: the call tree's node */
    uint32_t nopy_node;
    struct wset *ws;           /* index: thread filter (0 = all) */
    struct wset *gws;          /* index: green thread filter */
    struct q_thread *qth; size_t nqth;
    struct q_green *qg; size_t nqg;
    int32_t *qg_of;            /* by green id: index in qg, -1 = no samples */
    uint32_t *gord; size_t ngord; /* green threads with samples by (thread, function, id) */
    uint8_t *gexp;             /* by index in gord: that group is expanded */
    struct trow *trows; size_t ntrows;
    size_t *thead;             /* by index in qth: the first of its group of threads named alike */
    uint8_t *tgexp;            /* by index in qth: that group of threads is listed in full */
    double duration_s;
    int64_t t0, t1;

    int pane;
    enum q_metric mode;
    uint32_t thread;
    uint32_t green;            /* green thread filter (then thread is 0), 0 = none */
    uint8_t *expanded;
    uint32_t *rows; size_t nrows, caprows;
    int sel, scroll;
    uint32_t *flat; size_t nflat;
    int fsel, fscroll, fsort_self;
    uint32_t focus;            /* function of the callers / callees pane */
    struct ccrow *callers, *callees; size_t ncallers, ncallees;
    int csel, cscroll;
    double *acc;               /* scratch, per function */
    int tsel;
    int tlscroll;              /* first thread row the timeline shows */
    int tl_width;
    uint8_t *tl;               /* [qth row * width + col]: state, 255 = none */
    char search[128];
    uint32_t *matches; size_t nmatches, match_i;
    int match_tree;            /* matches are tree nodes (else functions) */
    char msg[256];
};


/* ---- ui/view_tree.c ---- */

/* Build v's functions and nodes from the model's call tree. 0 or -ENOMEM. */
int vw_build_view_tree(struct view *v);
/* Weigh the tree for thread (0: all), or green thread green if nonzero,
 * into w. 0 or -ENOMEM. */
int vw_compute_ws(struct view *v, uint32_t thread, uint32_t green, struct wset *w);
/* The threads pane's rows (v->trows) from v->qth, v->gord and v->gexp.
 * 0 or -ENOMEM. */
int vw_build_trows(struct view *v);
/* The weights of the current thread filter (computed on first use; all
 * threads, with a message, if memory runs out). */
struct wset *vw_ws_of(struct view *v);
/* Inclusive and self seconds of node n under the current mode and filter;
 * the inclusive time of the root. */
double vw_incl_of(struct view *v, uint32_t n);
double vw_self_of(struct view *v, uint32_t n);
double vw_grand_total(struct view *v);
/* The call tree's visible rows: rebuilt keeping the selection; expand the
 * hottest path below n; start afresh with the hottest path expanded. */
void vw_rebuild_rows(struct view *v);
void vw_expand_hot(struct view *v, uint32_t n);
void vw_reset_tree(struct view *v);
/* Rebuild the flat profile's rows, and the callers / callees of v->focus. */
void vw_rebuild_flat(struct view *v);
void vw_rebuild_cc(struct view *v);
/* The function the selection of the current pane stands for. */
uint32_t vw_selected_func(struct view *v);
/* The timeline's cells for a width (kept until the width changes). */
void vw_build_timeline(struct view *v, int width);
/* Search v->search in the current pane; show the current match. */
void vw_do_search(struct view *v);
void vw_show_match(struct view *v);
/* New thread filter or mode: every pane is rebuilt. */
void vw_set_filter(struct view *v, uint32_t thread, enum q_metric mode);
/* The same with a green thread filter (green nonzero: thread is ignored). */
void vw_set_lane(struct view *v, uint32_t thread, uint32_t green, enum q_metric mode);

/* ---- ui/view_draw.c ---- */

void vw_draw(struct view *v);
const char *vw_mode_name(enum q_metric m);
/* "all" for 0, else the thread's label (the green thread's label when t
 * is the current filter and a green thread is selected). */
void vw_thread_label(struct view *v, uint32_t t, char *out, size_t n);
/* Keep the selection inside [0, count) and visible in a window of h rows. */
void vw_clamp(int *sel, int *scroll, int count, int h);
/* Rows of a pane on the current terminal. */
int vw_pane_height(void);

/* ---- ui/view_keys.c ---- */

enum vw_redraw {
    VW_KEEP = 0,   /* nothing changed on screen */
    VW_REDRAW,     /* draw the screen again */
    VW_QUIT,       /* leave the browser */
};

/* Handle one key: what to redraw, or VW_QUIT. */
enum vw_redraw vw_handle_key(struct view *v, int ch);

#endif
