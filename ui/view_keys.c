/* sonde view: keys. One table maps each key to its handler; a handler acts
 * on the view (ui/view_tree.c) and returns what to redraw. The export
 * dialog (e) and the help screen (?) live here too. */
#include "ui/view_int.h"

#include "ui/tui.h"

#include <curses.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const help_lines[] = {
    "sonde view: browse a recording.",
    "",
    "Views:  1 call tree  2 flat profile  3 callers/callees  4 threads  5 timeline",
    "        Tab / Shift-Tab: next / previous view",
    "",
    "  q             quit (the terminal is restored)",
    "  ?  F1         this help",
    "  m             next mode: wall -> cpu -> gil (wall time holding the GIL)",
    "  w  c  g       mode wall / cpu / gil",
    "  t  T          next / previous thread filter;  a  all threads",
    "  Up Down PgUp PgDn Home End   move (the timeline scrolls its rows)",
    "  Right  +      call tree: expand the selected function",
    "  Left   -      call tree: collapse it (or go to its caller)",
    "  Enter  space  call tree: expand / collapse;  flat: its callers/callees;",
    "                callers/callees: focus that function;",
    "                threads, timeline: filter on that thread (or task;",
    "                a row of tasks sharing a function, or of threads named",
    "                alike (Thread-N (handle) xCOUNT: their sums): list / fold them)",
    "  *             call tree: expand the hottest path below the selection",
    "  x             call tree: collapse everything",
    "  s             flat: sort by self or total",
    "  /             search a function by name (substring, case-insensitive)",
    "  n  N          next / previous match",
    "  e             export the current mode and thread (or task): then c (callgrind)",
    "                or h (html); written next to the recording",
    "",
    "TOTAL: time with the function on the stack (inclusive);",
    "SELF: time with it innermost (exclusive).",
    "Percentages: of the whole recording under the current mode and thread filter.",
    "The call tree opens with the hottest path expanded.",
    "Thread states: # gil  w gil_wait  = nogil  . idle",
    NULL,
};


/* ---- actions shared by several keys ---- */

static void say_thread(struct view *v)
{
    char lab[96];
    vw_thread_label(v, v->thread, lab, sizeof lab);
    snprintf(v->msg, sizeof v->msg, " thread: %s", lab);
}

static void cycle_thread(struct view *v, int dir)
{
    int n = (int)v->nqth, cur = 0;
    for (int i = 0; i < n; i++)
        if (v->qth[i].thread == v->thread)
            cur = i + 1;
    cur = ((cur + dir) % (n + 1) + n + 1) % (n + 1);
    vw_set_filter(v, cur ? v->qth[cur - 1].thread : 0, v->mode);
    say_thread(v);
}

static void move_sel(struct view *v, int d)
{
    switch (v->pane) {
    case P_TREE: v->sel += d; break;
    case P_FLAT: v->fsel += d; break;
    case P_CALLERS: v->csel += d; break;
    default: v->tsel += d; break;
    }
}

/* ---- the export dialog ---- */

static void do_export(struct view *v, int key)
{
    const char *fmt = key == 'c' ? "callgrind" : key == 'h' ? "html" : NULL;
    if (!fmt) {
        snprintf(v->msg, sizeof v->msg, " export cancelled");
        return;
    }
    if (!v->o->export_fn) {
        snprintf(v->msg, sizeof v->msg, " exporter not available: %s", fmt);
        return;
    }
    char m[200] = "";
    int rc = v->o->export_fn(v->o->export_ctx, fmt, v->mode, v->thread, v->green, m,
                                 sizeof m);
    snprintf(v->msg, sizeof v->msg, rc ? " export failed: %s" : " exported: %s", m);
}

static enum vw_redraw k_export(struct view *v, int ch)
{
    (void)ch;
    if (v->o->bench_keys)
        return VW_KEEP;
    int rows, cols, k;
    getmaxyx(stdscr, rows, cols);
    attron(A_REVERSE);
    tui_put(rows - 1, 0, cols, " export as: c callgrind, h html  (any other key cancels)", 1);
    attroff(A_REVERSE);
    refresh();
    do
        k = getch();
    while (k == ERR || k == KEY_RESIZE);
    do_export(v, k);
    return VW_REDRAW;
}

/* ---- handlers: every pane ---- */

static enum vw_redraw k_quit(struct view *v, int ch)
{
    (void)v, (void)ch;
    return VW_QUIT;
}

static enum vw_redraw k_resize(struct view *v, int ch)
{
    (void)v, (void)ch;
    return VW_REDRAW;
}

static enum vw_redraw k_help(struct view *v, int ch)
{
    (void)ch;
    if (v->o->bench_keys)
        return VW_KEEP;
    tui_help("sonde view: help", help_lines);
    return VW_REDRAW;
}

static enum vw_redraw k_pane(struct view *v, int ch)
{
    if (ch - '1' == P_CALLERS && v->pane != P_CALLERS) {
        v->focus = vw_selected_func(v);
        vw_rebuild_cc(v);
    }
    v->pane = ch - '1';
    return VW_REDRAW;
}

static enum vw_redraw k_next_pane(struct view *v, int ch)
{
    v->pane = (v->pane + (ch == '\t' ? 1 : P_COUNT - 1)) % P_COUNT;
    return VW_REDRAW;
}

static enum vw_redraw k_mode(struct view *v, int ch)
{
    if (ch == 'm') {
        vw_set_lane(v, v->thread, v->green, (enum q_metric)((v->mode + 1) % Q_METRICS));
        snprintf(v->msg, sizeof v->msg, " mode: %s", vw_mode_name(v->mode));
    } else {
        vw_set_lane(v, v->thread, v->green, ch == 'c' ? Q_CPU : ch == 'g' ? Q_GIL : Q_WALL);
    }
    return VW_REDRAW;
}

static enum vw_redraw k_thread(struct view *v, int ch)
{
    if (ch == 'a')
        vw_set_filter(v, 0, v->mode);
    else
        cycle_thread(v, ch == 't' ? 1 : -1);
    return VW_REDRAW;
}

static enum vw_redraw k_move(struct view *v, int ch)
{
    int page = vw_pane_height();
    if (v->pane == P_TIMELINE && page > 2)
        page--; /* the timeline's last row is its legend */
    switch (ch) {
    case KEY_UP: case 'k': move_sel(v, -1); break;
    case KEY_DOWN: case 'j': move_sel(v, 1); break;
    case KEY_PPAGE: move_sel(v, -page); break;
    case KEY_NPAGE: move_sel(v, page); break;
    case KEY_HOME: move_sel(v, -(1 << 30)); break;
    case KEY_END: move_sel(v, 1 << 30); break;
    }
    return VW_REDRAW;
}

static enum vw_redraw k_sort(struct view *v, int ch)
{
    (void)ch;
    v->fsort_self = !v->fsort_self;
    vw_rebuild_flat(v);
    return VW_REDRAW;
}

static enum vw_redraw k_search(struct view *v, int ch)
{
    (void)ch;
    char q[sizeof v->search] = "";
    if (v->o->bench_keys)
        snprintf(q, sizeof q, "f");
    else if (!tui_prompt("/", q, sizeof q) || !q[0])
        return VW_REDRAW; /* the prompt was drawn over the status line */
    memcpy(v->search, q, sizeof q);
    vw_do_search(v);
    return VW_REDRAW;
}

static enum vw_redraw k_match(struct view *v, int ch)
{
    if (v->search[0] && (v->match_tree != (v->pane == P_TREE) || !v->matches)) {
        vw_do_search(v); /* another pane: search it afresh */
        return VW_REDRAW;
    }
    if (!v->nmatches)
        return VW_KEEP;
    v->match_i = ch == 'n' ? (v->match_i + 1) % v->nmatches
                           : (v->match_i + v->nmatches - 1) % v->nmatches;
    vw_show_match(v);
    return VW_REDRAW;
}

/* ---- handlers: the call tree pane ---- */

/* The selected tree node, or 0 outside the tree pane or with no rows. */
static uint32_t tree_sel(struct view *v)
{
    if (v->pane != P_TREE || !v->nrows)
        return 0;
    vw_clamp(&v->sel, &v->scroll, (int)v->nrows, vw_pane_height());
    return v->rows[v->sel];
}

static enum vw_redraw k_expand(struct view *v, int ch)
{
    (void)ch;
    uint32_t n = tree_sel(v);
    if (!n)
        return VW_KEEP;
    if (!v->expanded[n]) {
        v->expanded[n] = 1;
        vw_rebuild_rows(v);
    } else if ((size_t)v->sel + 1 < v->nrows && v->nodes[v->rows[v->sel + 1]].parent == n) {
        v->sel++;
    }
    return VW_REDRAW;
}

static enum vw_redraw k_collapse(struct view *v, int ch)
{
    (void)ch;
    uint32_t n = tree_sel(v);
    if (!n)
        return VW_KEEP;
    if (v->expanded[n]) {
        v->expanded[n] = 0;
        vw_rebuild_rows(v);
    } else if (v->nodes[n].parent) {
        uint32_t p = v->nodes[n].parent;
        for (int i = v->sel; i >= 0; i--)
            if (v->rows[i] == p) {
                v->sel = i;
                break;
            }
    }
    return VW_REDRAW;
}

static enum vw_redraw k_hot(struct view *v, int ch)
{
    uint32_t n = tree_sel(v);
    if (!n)
        return VW_KEEP;
    if (ch == '*') {
        vw_expand_hot(v, n);
    } else { /* x */
        memset(v->expanded, 0, v->nnodes);
        v->sel = 0;
    }
    vw_rebuild_rows(v);
    return VW_REDRAW;
}

/* Enter: toggle a tree node; flat: callers / callees of the function;
 * callers / callees: focus the selected one; threads, timeline: filter. */
static enum vw_redraw k_enter(struct view *v, int ch)
{
    uint32_t n = tree_sel(v);
    if (n) {
        v->expanded[n] = !v->expanded[n];
        vw_rebuild_rows(v);
        return VW_REDRAW;
    }
    if (ch == ' ')
        return VW_KEEP;
    if (v->pane == P_FLAT && v->nflat) {
        v->focus = v->flat[v->fsel];
        vw_rebuild_cc(v);
        v->pane = P_CALLERS;
    } else if (v->pane == P_CALLERS) {
        uint32_t f = 0;
        if (v->csel >= 1 && (size_t)v->csel <= v->ncallers)
            f = v->callers[v->csel - 1].func;
        else if ((size_t)v->csel >= v->ncallers + 2)
            f = v->callees[v->csel - 2 - v->ncallers].func;
        if (f > 1) {
            v->focus = f;
            vw_rebuild_cc(v);
        }
    } else if (v->pane == P_THREADS) {
        const struct trow *r = v->tsel > 0 && (size_t)v->tsel <= v->ntrows ? &v->trows[v->tsel - 1] : NULL;
        if (r && r->tcount) { /* threads named alike: list them, or fold them */
            v->tgexp[r->first] = !v->tgexp[r->first];
            if (vw_build_trows(v))
                snprintf(v->msg, sizeof v->msg, " out of memory");
            return VW_REDRAW;
        }
        if (r && r->count) { /* a group: list its green threads, or fold them */
            v->gexp[r->first] = !v->gexp[r->first];
            if (vw_build_trows(v))
                snprintf(v->msg, sizeof v->msg, " out of memory");
            return VW_REDRAW;
        }
        vw_set_lane(v, r ? r->thread : 0, r ? r->green : 0, v->mode);
        say_thread(v);
    } else if (v->pane == P_TIMELINE) {
        uint32_t t = v->tsel > 0 && (size_t)v->tsel <= v->nqth ? v->qth[v->tsel - 1].thread : 0;
        vw_set_filter(v, t, v->mode);
        say_thread(v);
    } else {
        return VW_KEEP;
    }
    return VW_REDRAW;
}

/* ---- the table ---- */

static const struct {
    int key;
    enum vw_redraw (*fn)(struct view *v, int ch);
} keys[] = {
    { 'q', k_quit },       { 'Q', k_quit },        { KEY_RESIZE, k_resize },
    { '?', k_help },       { KEY_F(1), k_help },
    { '1', k_pane },       { '2', k_pane },        { '3', k_pane },
    { '4', k_pane },       { '5', k_pane },
    { '\t', k_next_pane }, { KEY_BTAB, k_next_pane },
    { 'm', k_mode },       { 'w', k_mode },        { 'c', k_mode },        { 'g', k_mode },
    { 't', k_thread },     { 'T', k_thread },      { 'a', k_thread },
    { KEY_UP, k_move },    { 'k', k_move },        { KEY_DOWN, k_move },   { 'j', k_move },
    { KEY_PPAGE, k_move }, { KEY_NPAGE, k_move },  { KEY_HOME, k_move },   { KEY_END, k_move },
    { 's', k_sort },       { '/', k_search },      { 'n', k_match },       { 'N', k_match },
    { 'e', k_export },
    { KEY_RIGHT, k_expand }, { '+', k_expand },    { 'l', k_expand },
    { KEY_LEFT, k_collapse }, { '-', k_collapse }, { 'h', k_collapse },
    { '*', k_hot },        { 'x', k_hot },
    { '\n', k_enter },     { '\r', k_enter },      { KEY_ENTER, k_enter }, { ' ', k_enter },
};

enum vw_redraw vw_handle_key(struct view *v, int ch)
{
    int had_msg = v->msg[0] != 0;
    v->msg[0] = 0;
    enum vw_redraw r = VW_KEEP;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (keys[i].key == ch) {
            r = keys[i].fn(v, ch);
            break;
        }
    if (r == VW_KEEP && (had_msg || v->msg[0]))
        r = VW_REDRAW; /* the status line changed */
    return r;
}
