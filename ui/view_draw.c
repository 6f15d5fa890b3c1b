/* sonde view: drawing the title, the five panes and the status line
 * (curses). Reads the state ui/view_tree.c keeps; changes only the
 * selection's clamping and the timeline's cache. */
#include "ui/view_int.h"
#include "ui/tgroup.h"

#include "ui/tui.h"

#include <curses.h>
#include <stdio.h>
#include <string.h>

static const char *const pane_names[] = { "call tree", "flat", "callers/callees", "threads",
                                          "timeline" };

const char *vw_mode_name(enum q_metric m)
{
    return m == Q_CPU ? "cpu" : m == Q_GIL ? "gil" : "wall";
}

static double pct(double a, double b)
{
    return b > 0 ? 100.0 * a / b : 0;
}

static void sel_on(int on)
{
    int a = A_BOLD | (has_colors() ? COLOR_PAIR(TUI_C_SEL) : A_REVERSE);
    if (on)
        attron(a);
    else
        attroff(a);
}

static void fileline(char *out, size_t n, const struct vfunc *f)
{
    if (f->where)
        snprintf(out, n, "%s", f->where);
    else if (f->file[0])
        snprintf(out, n, "%s:%d", f->file, f->line);
    else
        out[0] = 0;
}

void vw_clamp(int *sel, int *scroll, int count, int h)
{
    if (*sel >= count)
        *sel = count - 1;
    if (*sel < 0)
        *sel = 0;
    if (h < 1)
        h = 1;
    if (*sel < *scroll)
        *scroll = *sel;
    if (*sel >= *scroll + h)
        *scroll = *sel - h + 1;
    if (*scroll < 0)
        *scroll = 0;
}

void vw_thread_label(struct view *v, uint32_t t, char *out, size_t n)
{
    if (!t && v->green)
        model_green_label(v->m, v->green, out, n);
    else if (!t && v->o->pid)
        snprintf(out, n, "all (pid %d)", v->o->pid);
    else if (!t)
        snprintf(out, n, "all");
    else
        model_thread_label(v->m, t, out, n);
}

/* Thread rows the timeline shows in a pane of h rows (the last is its legend). */
static int tl_visible(int h)
{
    return h - 1 > 1 ? h - 1 : 1;
}

/* The timeline's selection (v->tsel: 0 = all threads, k = v->qth[k - 1])
 * kept in range, and its window (v->tlscroll) scrolled to show it. */
static void tl_clamp(struct view *v, int h)
{
    int count = (int)v->nqth;
    if (v->tsel > count)
        v->tsel = count;
    if (v->tsel < 0)
        v->tsel = 0;
    int r = v->tsel ? v->tsel - 1 : 0;
    vw_clamp(&r, &v->tlscroll, count, tl_visible(h));
}

static void draw_title(struct view *v, int cols, int h)
{
    const char *pid = model_meta(v->m, "pid"), *cmd = model_meta(v->m, "cmd");
    const char *ver = model_meta(v->m, "python_version");
    attron(A_REVERSE | A_BOLD);
    /* the command line last: a long one is what the width cuts */
    tui_putf(0, 0, cols, 1, " sonde view  %s  Python %s  pid %s  %s", v->o->path ? v->o->path : "",
             ver ? ver : "?", pid ? pid : "?", cmd ? cmd : "");
    attroff(A_REVERSE | A_BOLD);
    char lab[96];
    vw_thread_label(v, v->thread, lab, sizeof lab);
    char where[64] = "";
    if (v->pane == P_TIMELINE && v->nqth) {
        int last = v->tlscroll + tl_visible(h);
        snprintf(where, sizeof where, " (rows %d-%d of %zu)", v->tlscroll + 1,
                 last < (int)v->nqth ? last : (int)v->nqth, v->nqth);
    }
    tui_putf(1, 0, cols, 1, "[%d] %s%s   Mode %s   Thread %s   %zu samples  %.2fs  total %.3fs",
             v->pane + 1, pane_names[v->pane], where, vw_mode_name(v->mode), lab, v->m->nsamples,
             v->duration_s, vw_grand_total(v));
}

/* Row of the tree, flat and callers panes: numbers then an indented name. */
static void draw_func_row(struct view *v, int y, int cols, int selected, double a, double b,
                          const char *lead, int indent, uint32_t f)
{
    double tot = vw_grand_total(v);
    char sa[32], sb[32], fl[1024];
    tui_fmt_secs(sa, sizeof sa, a);
    tui_fmt_secs(sb, sizeof sb, b);
    fileline(fl, sizeof fl, &v->funcs[f]);
    int namew = cols - 35;
    if (namew < 8)
        namew = 8;
    /* past half the width the indent stops growing: such rows show their
     * depth instead ("[37] "), so a deep stack stays readable */
    char ind[48] = "";
    int cap = namew / 2 < 40 ? namew / 2 : 40;
    if (indent > cap) {
        snprintf(ind, sizeof ind, "%*s[%d] ", cap > 6 ? cap - 6 : 0, "", indent / 2 + 1);
        indent = (int)strlen(ind);
    } else {
        snprintf(ind, sizeof ind, "%*s", indent, "");
    }
    /* a path that does not fit keeps its end: "...pkg/module.py:12" */
    int room = namew - indent - (int)strlen(lead) - (int)strlen(v->funcs[f].name) - 2;
    int fll = (int)strlen(fl);
    const char *fls = fl, *dots = "";
    if (fll > room && room > 12) {
        fls = fl + fll - (room - 3);
        dots = "...";
    }
    char name[1200];
    snprintf(name, sizeof name, "%s%s%s  %s%s", ind, lead, v->funcs[f].name, dots, fls);
    if (selected)
        sel_on(1);
    tui_putf(y, 0, cols, 1, "%6.1f %6.1f %9s %9s  %s", pct(a, tot), pct(b, tot), sa, sb, name);
    if (selected)
        sel_on(0);
}

static void draw_tree(struct view *v, int top, int h, int cols)
{
    attron(A_REVERSE);
    tui_putf(top - 1, 0, cols, 1, "%6s %6s %9s %9s  %s", "TOTAL%", "SELF%", "TOTAL", "SELF",
             "FUNCTION  FILE:LINE   (Right/Left expand/collapse, Enter toggle)");
    attroff(A_REVERSE);
    vw_clamp(&v->sel, &v->scroll, (int)v->nrows, h);
    for (int i = 0; i < h && (size_t)(v->scroll + i) < v->nrows; i++) {
        int r = v->scroll + i;
        uint32_t n = v->rows[r];
        const char *lead = "  ";
        int has = 0;
        for (uint32_t c = v->nodes[n].child; c && !has; c = v->nodes[c].sibling)
            has = vw_incl_of(v, c) > 0;
        if (has)
            lead = v->expanded[n] ? "- " : "+ ";
        draw_func_row(v, top + i, cols, r == v->sel, vw_incl_of(v, n), vw_self_of(v, n), lead,
                      2 * ((int)v->nodes[n].depth - 1), v->nodes[n].func);
    }
    if (!v->nrows)
        tui_put(top, 1, cols - 1, "(no samples in this mode / thread)", 0);
}

static void draw_flat(struct view *v, int top, int h, int cols)
{
    struct wset *w = vw_ws_of(v);
    attron(A_REVERSE);
    tui_putf(top - 1, 0, cols, 1, "%6s %6s %9s %9s  %s", v->fsort_self ? "SELF%*" : "SELF%",
             v->fsort_self ? "TOTAL%" : "TOTAL%*", "SELF", "TOTAL",
             "FUNCTION  FILE:LINE   (s: sort self/total, Enter: callers/callees)");
    attroff(A_REVERSE);
    vw_clamp(&v->fsel, &v->fscroll, (int)v->nflat, h);
    for (int i = 0; i < h && (size_t)(v->fscroll + i) < v->nflat; i++) {
        int r = v->fscroll + i;
        uint32_t f = v->flat[r];
        draw_func_row(v, top + i, cols, r == v->fsel, w->fself[(size_t)f * Q_METRICS + v->mode],
                      w->ftotal[(size_t)f * Q_METRICS + v->mode], "", 0, f);
    }
}

static void draw_callers(struct view *v, int top, int h, int cols)
{
    struct wset *w = vw_ws_of(v);
    uint32_t F = v->focus;
    char fl[1024];
    fileline(fl, sizeof fl, &v->funcs[F]);
    attron(A_BOLD);
    tui_putf(top - 1, 0, cols, 1, "%s  %s   self %.3fs  total %.3fs", v->funcs[F].name, fl,
             w->fself[(size_t)F * Q_METRICS + v->mode], w->ftotal[(size_t)F * Q_METRICS + v->mode]);
    attroff(A_BOLD);
    int total = (int)(v->ncallers + v->ncallees + 2);
    vw_clamp(&v->csel, &v->cscroll, total, h);
    /* rows: "callers" title, callers..., "callees" title, callees... */
    for (int i = 0; i < h; i++) {
        int r = v->cscroll + i;
        if (r >= total)
            break;
        int y = top + i;
        if (r == 0) {
            attron(A_REVERSE);
            tui_putf(y, 0, cols, 1, "CALLERS of %s (%zu)   TOTAL%% = time in %s when called from them",
                     v->funcs[F].name, v->ncallers, v->funcs[F].name);
            attroff(A_REVERSE);
        } else if ((size_t)r <= v->ncallers) {
            const struct ccrow *c = &v->callers[r - 1];
            draw_func_row(v, y, cols, r == v->csel, c->w, 0, "  <- ", 0, c->func);
        } else if ((size_t)r == v->ncallers + 1) {
            attron(A_REVERSE);
            tui_putf(y, 0, cols, 1, "CALLEES of %s (%zu)   TOTAL%% = time in them when called from %s",
                     v->funcs[F].name, v->ncallees, v->funcs[F].name);
            attroff(A_REVERSE);
        } else {
            const struct ccrow *c = &v->callees[r - 2 - v->ncallers];
            draw_func_row(v, y, cols, r == v->csel, c->w, 0, "  -> ", 0, c->func);
        }
    }
}

/* The threads pane's name column: as wide as the longest name (whole names
 * where there is room), 16 to 48 columns, less on a narrow screen. */
static int thread_name_width(const struct view *v, int cols)
{
    int w = 16;
    for (size_t i = 0; i < v->nqth; i++) {
        const char *nm = v->m->threads[v->qth[i].thread].name;
        int len = nm ? (int)strlen(nm) + 2 : 0;
        if (len > w)
            w = len;
    }
    if (w > 48)
        w = 48;
    if (w > cols - 76)
        w = cols - 76 > 16 ? cols - 76 : 16;
    return w;
}

static void draw_threads(struct view *v, int top, int h, int cols)
{
    int nw = thread_name_width(v, cols), barx = nw + 66;
    attron(A_REVERSE);
    tui_putf(top - 1, 0, cols, 1, " %-*s %7s %7s %7s %7s %7s %5s %5s %5s %5s %s", nw, "THREAD", "PID", "TID",
             "SAMPLES", "WALL s", "CPU s", "%GIL", "%WAIT", "%NOGL", "%IDLE",
             "# gil w wait = nogil . idle");
    attroff(A_REVERSE);
    int count = (int)v->ntrows + 1;
    int scroll = v->tsel >= h ? v->tsel - h + 1 : 0;
    vw_clamp(&v->tsel, &scroll, count, h);
    for (int y = 0; y < h && y + scroll < count; y++) {
        int i = y + scroll;
        int sel = i == v->tsel;
        const struct trow *r = i ? &v->trows[i - 1] : NULL;
        const struct q_thread *t = NULL;
        struct q_thread gsum;
        int have_gsum = 0;
        for (size_t k = 0; r && !r->green && !r->count && !r->tcount && k < v->nqth; k++)
            if (v->qth[k].thread == r->thread)
                t = &v->qth[k];
        if (sel)
            sel_on(1);
        if (i == 0) {
            char all[48];
            if (v->o->pid)
                snprintf(all, sizeof all, "(all threads of pid %d)", v->o->pid);
            else
                snprintf(all, sizeof all, "(all threads)");
            tui_putf(top, 0, cols, 1, "%c%-16s", v->thread == 0 && !v->green ? '>' : ' ', all);
        } else if (r->green) { /* a green thread, under its thread */
            const struct m_green *g = &v->m->greens[r->green];
            int32_t q = v->qg_of[r->green];
            const struct q_green *qg = q >= 0 ? &v->qg[q] : NULL;
            tui_putf(top + y, 0, cols, 1, "%c %s%-*.*s %7d %7u %7llu %7.2f %7.2f  %s %s",
                     v->green == r->green ? '>' : ' ', r->first ? "  " : "", r->first ? 13 : 15,
                     r->first ? 13 : 15, *g->name ? g->name : "?", g->pid, r->green,
                     (unsigned long long)(qg ? qg->samples : 0), qg ? qg->wall_s : 0.0,
                     qg ? qg->cpu_s : 0.0, green_kind_name(g->kind), g->func);
        } else if (r->count) { /* green threads sharing a function */
            uint64_t n = 0;
            double wall = 0, cpu = 0;
            for (uint32_t k = r->first; k < r->first + r->count; k++) {
                int32_t q = v->qg_of[v->gord[k]];
                if (q >= 0) {
                    n += v->qg[q].samples;
                    wall += v->qg[q].wall_s;
                    cpu += v->qg[q].cpu_s;
                }
            }
            char what[32];
            snprintf(what, sizeof what, "%c %u tasks", v->gexp[r->first] ? '-' : '+', r->count);
            tui_putf(top + y, 0, cols, 1, "  %-15.15s %7s %7s %7llu %7.2f %7.2f  %s", what, "", "",
                     (unsigned long long)n, wall, cpu, v->m->greens[v->gord[r->first]].func);
        } else if (r->tcount) { /* threads named alike: "+ Thread-N (handle)", xCOUNT, their sums */
            struct q_thread sum = { 0 };
            for (size_t k = r->first; k < v->nqth; k++) {
                if (v->thead[k] != r->first)
                    continue;
                sum.samples += v->qth[k].samples;
                sum.wall_s += v->qth[k].wall_s;
                sum.cpu_s += v->qth[k].cpu_s;
                for (int s = 0; s < STATE_COUNT; s++)
                    sum.state_s[s] += v->qth[k].state_s[s];
            }
            const struct m_thread *mt = &v->m->threads[v->qth[r->first].thread];
            char pat[160], name[168], cnt[24];
            tgroup_pattern(mt->name, pat, sizeof pat);
            snprintf(name, sizeof name, "%c %s", v->tgexp[r->first] ? '-' : '+', pat);
            snprintf(cnt, sizeof cnt, "x%u", r->tcount);
            tui_putf(top + y, 0, cols, 1, " %-*.*s %7d %7s %7llu %7.2f %7.2f %5.1f %5.1f %5.1f %5.1f", nw, nw,
                     name, mt->pid, cnt, (unsigned long long)sum.samples, sum.wall_s, sum.cpu_s,
                     pct(sum.state_s[STATE_GIL], sum.wall_s), pct(sum.state_s[STATE_GIL_WAIT], sum.wall_s),
                     pct(sum.state_s[STATE_NOGIL], sum.wall_s), pct(sum.state_s[STATE_IDLE], sum.wall_s));
            t = NULL;
            gsum = sum;
            have_gsum = 1;
        } else if (t) {
            const struct m_thread *mt = &v->m->threads[t->thread];
            char name[160];
            snprintf(name, sizeof name, "%s%s", r->first ? "  " : "", mt->name && *mt->name ? mt->name : "?");
            tui_putf(top + y, 0, cols, 1, "%c%-*.*s %7d %7d %7llu %7.2f %7.2f %5.1f %5.1f %5.1f %5.1f",
                     v->thread == t->thread ? '>' : ' ', nw, nw, name,
                     mt->pid, mt->tid, (unsigned long long)t->samples, t->wall_s, t->cpu_s,
                     pct(t->state_s[STATE_GIL], t->wall_s), pct(t->state_s[STATE_GIL_WAIT], t->wall_s),
                     pct(t->state_s[STATE_NOGIL], t->wall_s), pct(t->state_s[STATE_IDLE], t->wall_s));
        }
        if (sel)
            sel_on(0);
        if (have_gsum)
            t = &gsum;
        if (t && cols > barx + 2) {
            double fr[4];
            for (int k = 0; k < 4; k++)
                fr[k] = t->wall_s > 0 ? t->state_s[k] / t->wall_s : 0;
            tui_state_bar(top + y, barx, cols - barx, fr);
        }
    }
}

static void draw_timeline(struct view *v, int top, int h, int cols)
{
    int lw = cols >= 60 ? 22 : 12, w = cols - lw - 1;
    vw_build_timeline(v, w);
    attron(A_REVERSE);
    char right[32];
    snprintf(right, sizeof right, "%.2fs", v->duration_s);
    tui_putf(top - 1, 0, cols, 1, "%-*s|0s%*s|", lw - 1, " THREAD", w - 2 > 0 ? w - 2 : 0, right);
    attroff(A_REVERSE);
    int count = (int)v->nqth, vis = tl_visible(h);
    tl_clamp(v, h);
    int shown = count - v->tlscroll < vis ? count - v->tlscroll : vis;
    for (int y = 0; y < shown; y++) {
        int i = v->tlscroll + y;
        const struct q_thread *t = &v->qth[i];
        const struct m_thread *mt = &v->m->threads[t->thread];
        int sel = i + 1 == v->tsel;
        if (sel)
            sel_on(1);
        /* several processes: the pid, as --thread PID:NAME takes it */
        if (v->m->nprocs > 1)
            tui_putf(top + y, 0, lw, 1, "%c%d:%.*s", v->thread == t->thread ? '>' : ' ', mt->pid, lw - 9,
                     mt->name && *mt->name ? mt->name : "?");
        else
            tui_putf(top + y, 0, lw, 1, "%c%.*s %d", v->thread == t->thread ? '>' : ' ', lw - 9,
                     mt->name && *mt->name ? mt->name : "?", mt->tid);
        if (sel)
            sel_on(0);
        if (!v->tl)
            continue;
        move(top + y, lw);
        for (int c = 0; c < w; c++) {
            int st = v->tl[(size_t)i * w + c];
            if (st == 255) {
                addch(' ');
                continue;
            }
            if (has_colors())
                attron(COLOR_PAIR(tui_state_pair(st)));
            addch((chtype)tui_state_char(st));
            if (has_colors())
                attroff(COLOR_PAIR(tui_state_pair(st)));
        }
    }
    tui_put(top + shown, 0, cols,
            " legend: # gil (holds the GIL)  w gil_wait  = nogil (on CPU, no GIL)  . idle   (one column = a time slice, its most frequent state)",
            1);
}

void vw_draw(struct view *v)
{
    int rows, cols;
    getmaxyx(stdscr, rows, cols);
    erase();
    if (rows < 6 || cols < 30) {
        tui_put(0, 0, cols, "sonde view: terminal too small", 0);
        wnoutrefresh(stdscr);
        doupdate();
        return;
    }
    int top = 3, h = rows - top - 1;
    if (v->pane == P_TIMELINE)
        tl_clamp(v, h); /* the title shows the timeline's window */
    draw_title(v, cols, h);
    switch (v->pane) {
    case P_TREE: draw_tree(v, top, h, cols); break;
    case P_FLAT: draw_flat(v, top, h, cols); break;
    case P_CALLERS: draw_callers(v, top, h, cols); break;
    case P_THREADS: draw_threads(v, top, h, cols); break;
    case P_TIMELINE: draw_timeline(v, top, h, cols); break;
    }
    tui_status(v->msg, " q quit ? help 1-5/Tab views m mode t thread / search e export Enter select");
    wnoutrefresh(stdscr);
    doupdate();
}


int vw_pane_height(void)
{
    return LINES - 4 > 1 ? LINES - 4 : 1;
}
