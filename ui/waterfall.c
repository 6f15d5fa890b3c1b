/* sonde view on a span store: trace list, then a waterfall per trace. */
#include "ui/waterfall.h"

#include "spans/assemble.h"
#include "store/spans.h"
#include "common/err.h"
#include "common/state.h"
#include "spans/profile.h"
#include "ui/trace_text.h"
#include "ui/tui.h"

#include <curses.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { WF_LIST_MAX = 1000, WF_PAIR0 = 16, WF_NCOLOURS = 6 };

/* ---- one trace ---- */

/* A span's profile, summarized once when the trace opens. */
struct wf_prof {
    int has;
    struct sprof_summary sum; /* top strings point into top_txt */
    char top_txt[SPROF_TOP][2][160];
};

struct wf {
    struct trace_view v;
    struct wf_prof *prof;
    struct trace_summary sm;
    unsigned char *crit, *collapsed;
    int *pair;        /* colour pair per span, 0: none */
    size_t *rows, nrows;
    size_t sel, top;  /* sel: index into rows */
    int details;
    char msg[160];
};

static void wf_free(struct wf *w)
{
    trace_view_fini(&w->v);
    free(w->crit);
    free(w->collapsed);
    free(w->pair);
    free(w->rows);
    free(w->prof);
    memset(w, 0, sizeof *w);
}

/* Does span i have children (they follow it, one level deeper)? */
static int has_kids(const struct wf *w, size_t i)
{
    return i + 1 < w->v.b.n && w->v.depth[i + 1] > w->v.depth[i];
}

/* Page Up / Down, Home / End and the arrows on a list of n rows; 0 when ch
 * is none of them. */
static int nav_key(size_t *sel, size_t n, int page, int ch)
{
    switch (ch) {
    case KEY_UP: case 'k': if (*sel) (*sel)--; break;
    case KEY_DOWN: case 'j': if (*sel + 1 < n) (*sel)++; break;
    case KEY_PPAGE: *sel = *sel > (size_t)page ? *sel - (size_t)page : 0; break;
    case KEY_NPAGE: *sel = *sel + (size_t)page < n ? *sel + (size_t)page : (n ? n - 1 : 0); break;
    case KEY_HOME: case 'g': *sel = 0; break;
    case KEY_END: case 'G': *sel = n ? n - 1 : 0; break;
    default: return 0;
    }
    return 1;
}

/* Scroll so that row sel shows in a window of page rows from *top. */
static void scroll_to(size_t sel, size_t *top, int page)
{
    if (page < 1)
        page = 1;
    if (sel < *top)
        *top = sel;
    if (sel >= *top + (size_t)page)
        *top = sel - (size_t)page + 1;
}


static void wf_rebuild(struct wf *w)
{
    size_t n = w->v.b.n, keep = w->nrows ? w->rows[w->sel] : 0;
    w->nrows = 0;
    for (size_t i = 0; i < n;) {
        w->rows[w->nrows++] = i;
        size_t j = i + 1;
        if (w->collapsed[i])
            while (j < n && w->v.depth[j] > w->v.depth[i])
                j++;
        i = j;
    }
    w->sel = 0;
    for (size_t r = 0; r < w->nrows; r++)
        if (w->rows[r] == keep)
            w->sel = r;
}

static int wf_open(struct wf *w, struct span_store *st, const char *id, int64_t max_skew, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    int rc = trace_load(st, id, max_skew, &w->v, err, errlen);
    if (rc)
        return rc;
    size_t n = w->v.b.n;
    w->crit = calloc(n + 1, 1);
    w->collapsed = calloc(n + 1, 1);
    w->pair = calloc(n + 1, sizeof *w->pair);
    w->rows = calloc(n + 1, sizeof *w->rows);
    w->prof = calloc(n + 1, sizeof *w->prof);
    const char **svc = calloc(n + 1, sizeof *svc);
    if (!w->crit || !w->collapsed || !w->pair || !w->rows || !w->prof || !svc) {
        free(svc);
        wf_free(w);
        return se_fail(err, errlen, -ENOMEM, "out of memory");
    }
    trace_summarize(&w->v, &w->sm);
    trace_critical_path(&w->v, w->crit);
    for (size_t i = 0; i < n; i++) {
        const struct span *s = &w->v.b.spans[i];
        struct sprof p;
        sprof_init(&p);
        if (s->pprof && !sprof_decode(s->pprof, s->pprof_len, NULL, NULL, -1, &p, NULL, 0)) {
            struct wf_prof *f = &w->prof[i];
            sprof_summarize(&p, &f->sum);
            for (size_t k = 0; k < f->sum.ntop; k++) {
                snprintf(f->top_txt[k][0], sizeof f->top_txt[k][0], "%s", f->sum.top[k].function);
                snprintf(f->top_txt[k][1], sizeof f->top_txt[k][1], "%s", f->sum.top[k].file);
                f->sum.top[k].function = f->top_txt[k][0];
                f->sum.top[k].file = f->top_txt[k][1];
            }
            f->has = f->sum.wall_ns > 0;
        }
        sprof_fini(&p);
    }
    /* a colour per service (distinct services, sorted), WF_NCOLOURS in turn */
    static const short colours[WF_NCOLOURS] = { COLOR_GREEN, COLOR_CYAN, COLOR_MAGENTA,
                                                COLOR_YELLOW, COLOR_BLUE, COLOR_RED };
    int colour = has_colors() && COLOR_PAIRS > WF_PAIR0 + WF_NCOLOURS;
    for (int k = 0; k < WF_NCOLOURS && colour; k++)
        init_pair((short)(WF_PAIR0 + k), colours[k], -1);
    size_t ns = trace_services(&w->v, svc);
    for (size_t i = 0; i < n && colour; i++)
        for (size_t k = 0; k < ns; k++)
            if (!strcmp(svc[k], w->v.b.spans[i].service))
                w->pair[i] = WF_PAIR0 + (int)(k % WF_NCOLOURS);
    free(svc);
    wf_rebuild(w);
    return 0;
}

static int details_height(int rows) { return rows >= 20 ? (rows - 3) / 2 : 0; }

static void draw_details(const struct wf *w, int y0, int h, int cols)
{
    const struct span *s = &w->v.b.spans[w->rows[w->sel]];
    size_t i = w->rows[w->sel];
    attron(A_REVERSE);
    tui_putf(y0, 0, cols, 1, " Span details (d closes)  %s", s->name);
    attroff(A_REVERSE);
    int y = y0 + 1, end = y0 + h;
    char b1[32], b2[32];
    int64_t st = s->start_us + s->skew_us, en = s->end_us + s->skew_us;
    trace_fmt_dur(b1, sizeof b1, st - w->v.start_us);
    trace_fmt_dur(b2, sizeof b2, en - st);
    const struct span *p = w->v.parent[i] >= 0 ? &w->v.b.spans[w->v.parent[i]] : NULL;
    if (y < end)
        tui_putf(y++, 1, cols - 1, 1, "span_id %s  parent %s%s%s", s->span_id, *s->parent_id ? s->parent_id : "(root)",
                 p ? " " : "", p ? p->name : "");
    if (y < end)
        tui_putf(y++, 1, cols - 1, 1, "service %s  node %s  kind %s  status %s%s", s->service, s->node,
                 span_kind_name(s->kind), span_status_name(s->status), w->crit[i] ? "  critical path" : "");
    if (y < end)
        tui_putf(y++, 1, cols - 1, 1, "start_us %lld (+%s)  end_us %lld  duration %s", (long long)st, b1,
                 (long long)en, b2);
    if (y < end)
        tui_putf(y++, 1, cols - 1, 1, "skew_us %lld  (raw start %lld)", (long long)s->skew_us,
                 (long long)s->start_us);
    const struct wf_prof *pf = &w->prof[i];
    if (pf->has) {
        const struct sprof_summary *m = &pf->sum;
        double wl = (double)m->wall_ns;
        if (y < end)
            tui_putf(y++, 1, cols - 1, 1,
                     "profile: %lld samples  wall %.3fs  cpu %.3fs  GIL held %.0f%% (#)  waiting %.0f%% (w)  native"
                     " %.0f%% (=)  idle %.0f%% (.)",
                     (long long)m->samples, m->wall_ns / 1e9, m->cpu_ns / 1e9, 100 * m->state_ns[STATE_GIL] / wl,
                     100 * m->state_ns[STATE_GIL_WAIT] / wl, 100 * m->state_ns[STATE_NOGIL] / wl,
                     100 * m->state_ns[STATE_IDLE] / wl);
        for (size_t k = 0; k < m->ntop && y < end; k++)
            tui_putf(y++, 3, cols - 3, 1, "top %zu: %s  %s:%lld  %.1f ms self", k + 1, m->top[k].function,
                     m->top[k].file, (long long)m->top[k].line, m->top[k].self_wall_ns / 1e6);
    }
    json_t *a = json_loads(s->attrs, 0, NULL);
    if (json_is_object(a) && json_object_size(a)) {
        if (y < end)
            tui_put(y++, 1, cols - 1, "attributes:", 1);
        const char *k;
        json_t *val;
        json_object_foreach(a, k, val) {
            if (y >= end)
                break;
            char *txt = json_is_string(val) ? NULL : json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
            tui_putf(y++, 3, cols - 3, 1, "%s = %s", k, txt ? txt : json_string_value(val));
            free(txt);
        }
    } else if (y < end) {
        tui_put(y++, 1, cols - 1, "attributes: none", 1);
    }
    json_decref(a);
    for (; y < end; y++)
        tui_put(y, 0, cols, "", 1);
}

static void wf_draw(struct wf *w)
{
    int rows, cols;
    getmaxyx(stdscr, rows, cols);
    erase();
    const struct trace_summary *sm = &w->sm;
    char d[32];
    trace_fmt_dur(d, sizeof d, sm->duration_us);
    attron(A_REVERSE);
    tui_putf(0, 0, cols, 1, " Trace %s  %zu spans  %s  services: %s", sm->trace_id, sm->span_count, d, sm->services);
    attroff(A_REVERSE);
    int dh = w->details ? details_height(rows) : 0;
    int body0 = 2, body1 = rows - 1 - dh; /* body rows [body0, body1) */
    int nameW = cols * 36 / 100 - 2, svcW = cols >= 100 ? 14 : 10, durW = 9;
    if (nameW < 12)
        nameW = 12;
    int barX = 2 + nameW + 1 + svcW + 1 + durW + 1, barW = cols - barX - 2;
    attron(A_BOLD);
    tui_putf(1, 0, cols, 1, "  %-*s %-*s %*s", nameW, "SPAN", svcW, "SERVICE", durW, "DURATION");
    if (barW >= 6) {
        tui_put(1, barX, 2, "|0", 0);
        tui_putf(1, barX + 2, barW, 0, "%*s|", barW - 1, d); /* the bar's closing '|' */
    }
    attroff(A_BOLD);
    scroll_to(w->sel, &w->top, body1 - body0);
    int64_t total = sm->duration_us > 0 ? sm->duration_us : 1;
    for (int y = body0; y < body1; y++) {
        size_t r = w->top + (size_t)(y - body0);
        if (r >= w->nrows)
            break;
        size_t i = w->rows[r];
        const struct span *s = &w->v.b.spans[i];
        int depth = w->v.depth[i] > 10 ? 10 : w->v.depth[i];
        char name[512], du[32];
        snprintf(name, sizeof name, "%*s%c %s%s", depth * 2, "", has_kids(w, i) ? (w->collapsed[i] ? '+' : '-') : ' ',
                 s->name, s->status == SPAN_STATUS_ERROR ? " !" : "");
        trace_fmt_dur(du, sizeof du, s->end_us - s->start_us);
        int selattr = r == w->sel ? (has_colors() ? A_BOLD | COLOR_PAIR(TUI_C_SEL) : A_REVERSE) : 0;
        int cattr = w->crit[i] ? A_BOLD : 0;
        attron(selattr | cattr);
        tui_putf(y, 0, barX, 1, "%c %-*.*s", w->crit[i] ? '*' : ' ', nameW, nameW, name);
        if (!selattr && w->pair[i])
            attron(COLOR_PAIR(w->pair[i]));
        tui_putf(y, 2 + nameW + 1, svcW, 1, "%s", s->service);
        if (!selattr && w->pair[i])
            attroff(COLOR_PAIR(w->pair[i]));
        tui_putf(y, 2 + nameW + 1 + svcW + 1, durW, 1, "%*s", durW, du);
        attroff(selattr | cattr);
        if (barW >= 6) {
            int64_t st = s->start_us + s->skew_us - w->v.start_us, dd = s->end_us - s->start_us;
            /* 0 <= st <= st + dd <= total (assembly keeps corrected times in range) */
            int a = (int)((double)st * barW / (double)total), b = (int)((double)(st + dd) * barW / (double)total);
            if (a < 0)
                a = 0;
            if (a >= barW)
                a = barW - 1;
            if (b <= a)
                b = a + 1;
            if (b > barW)
                b = barW;
            /* a profiled span's bar is split by state, in proportion:
             * as the recording's timeline draws them: '#' GIL held,
             * 'w' waiting for it, '=' native (GIL released), '.' idle */
            int cut[5] = { a, b, b, b, b };
            const struct wf_prof *pf = &w->prof[i];
            if (pf->has) {
                static const int order[4] = { STATE_GIL, STATE_GIL_WAIT, STATE_NOGIL, STATE_IDLE };
                double acc = 0;
                for (int k = 0; k < 4; k++) {
                    acc += (double)pf->sum.state_ns[order[k]] / (double)pf->sum.wall_ns;
                    int c = a + (int)(acc * (b - a) + 0.5);
                    cut[k + 1] = c < a ? a : c > b ? b : c;
                }
                cut[4] = b;
            }
            mvaddch(y, barX, '|');
            move(y, barX + 1);
            for (int k = 0; k < barW; k++) {
                int on = k >= a && k < b;
                if (on && w->pair[i])
                    attron(COLOR_PAIR(w->pair[i]) | cattr);
                char ch = w->crit[i] ? '#' : '=';
                if (on && pf->has)
                    ch = k < cut[1] ? '#' : k < cut[2] ? 'w' : k < cut[3] ? '=' : '.';
                addch(on ? (chtype)ch : ' ');
                if (on && w->pair[i])
                    attroff(COLOR_PAIR(w->pair[i]) | cattr);
            }
            addch('|');
        }
    }
    if (dh && w->nrows)
        draw_details(w, body1, dh, cols);
    tui_status(w->msg, " q back  ? help  arrows move  Enter/Left/Right fold  d details  * critical path");
    refresh();
}

static const char *const wf_help[] = {
    "Trace list",
    "  Up / Down, PgUp / PgDn, Home / End   select a trace",
    "  Enter                                open its waterfall",
    "  r                                    reload the list from the store",
    "  q                                    quit",
    "",
    "Waterfall (one row per span, in tree order; bars on the trace's time axis,",
    "corrected for clock skew; one colour per service)",
    "  Up / Down, PgUp / PgDn, Home / End   select a span",
    "  Left                                 collapse (or go to the parent)",
    "  Right                                expand (or go to the first child)",
    "  Enter                                collapse / expand; on a leaf: details",
    "  d                                    span details pane (ids, node, skew, attributes)",
    "  c                                    next span on the critical path",
    "  q                                    back to the trace list",
    "",
    "* and bold rows: the critical path (from the root, the child that ends last).",
    "A span with a profile (sent by sonde's agent) has its bar split by thread state,",
    "in proportion: # GIL held, w waiting for the GIL, = native (GIL released),",
    ". idle; its details list the profile and its hottest functions.",
    "+ a collapsed span, - an expanded one, ! an error status.",
    NULL,
};

static size_t row_of(const struct wf *w, size_t span)
{
    for (size_t r = 0; r < w->nrows; r++)
        if (w->rows[r] == span)
            return r;
    return w->sel;
}

/* 1 to go back to the list */
static int wf_key(struct wf *w, int ch)
{
    int rows = getmaxy(stdscr);
    int page = rows - 3 - (w->details ? details_height(rows) : 0);
    if (page < 1)
        page = 1;
    w->msg[0] = 0;
    if (!w->nrows)
        return ch == 'q' || ch == 'Q';
    size_t i = w->rows[w->sel];
    switch (ch) {
    case 'q': case 'Q': return 1;
    case KEY_LEFT: case 'h':
        if (has_kids(w, i) && !w->collapsed[i]) {
            w->collapsed[i] = 1;
            wf_rebuild(w);
        } else if (w->v.parent[i] >= 0) {
            w->sel = row_of(w, (size_t)w->v.parent[i]);
        }
        break;
    case KEY_RIGHT: case 'l':
        if (w->collapsed[i]) {
            w->collapsed[i] = 0;
            wf_rebuild(w);
        } else if (has_kids(w, i) && w->sel + 1 < w->nrows) {
            w->sel++;
        }
        break;
    case '\n': case '\r': case KEY_ENTER:
        if (has_kids(w, i)) {
            w->collapsed[i] = !w->collapsed[i];
            wf_rebuild(w);
        } else {
            w->details = !w->details;
        }
        break;
    case 'd': case 'D': w->details = !w->details; break;
    case 'c': {
        size_t r = w->sel + 1;
        while (r < w->nrows && !w->crit[w->rows[r]])
            r++;
        if (r < w->nrows)
            w->sel = r;
        else
            snprintf(w->msg, sizeof w->msg, " end of the critical path");
        break;
    }
    case '?': case KEY_F(1): tui_help("sonde view: trace waterfall", wf_help); break;
    default: nav_key(&w->sel, w->nrows, page, ch); break;
    }
    return 0;
}

/* ---- the trace list ---- */

struct wl {
    struct trace_summary *t;
    size_t n, sel, top;
    char msg[256];
};

static int wl_load(struct wl *l, struct span_store *st, int64_t max_skew, char *err, size_t errlen)
{
    struct store_filter f = { .limit = WF_LIST_MAX };
    char (*ids)[33] = NULL;
    size_t n = 0;
    int rc = span_store_find(st, &f, &ids, &n, err, errlen);
    if (rc)
        return rc;
    struct trace_summary *t = calloc(n + 1, sizeof *t);
    if (!t) {
        free(ids);
        return se_fail(err, errlen, -ENOMEM, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        struct trace_view v;
        int r = trace_load(st, ids[i], max_skew, &v, err, errlen);
        if (r == -ENOENT)
            continue; /* expired meanwhile */
        if (r) {
            free(ids);
            free(t);
            return r;
        }
        trace_summarize(&v, &t[k++]);
        trace_view_fini(&v);
    }
    free(ids);
    free(l->t);
    l->t = t;
    l->n = k;
    if (l->sel >= k)
        l->sel = k ? k - 1 : 0;
    return 0;
}

static void wl_draw(struct wl *l, const char *path)
{
    int rows, cols;
    getmaxyx(stdscr, rows, cols);
    erase();
    attron(A_REVERSE);
    tui_putf(0, 0, cols, 1, " sonde view  %s  %zu trace%s%s", path, l->n, l->n == 1 ? "" : "s",
             l->n >= WF_LIST_MAX ? " (the most recent)" : "");
    attroff(A_REVERSE);
    int idW = cols >= 120 ? 32 : 16, fixed = idW + 1 + 19 + 1 + 10 + 1 + 5 + 1;
    int rootW = (cols - fixed) / 2;
    if (rootW < 8)
        rootW = 8;
    attron(A_BOLD);
    tui_putf(1, 0, cols, 1, "%-*s %-19s %10s %5s %-*s %s", idW, "TRACE ID", "START (UTC)", "DURATION", "SPANS", rootW,
             "ROOT", "SERVICES");
    attroff(A_BOLD);
    scroll_to(l->sel, &l->top, rows - 3);
    if (!l->n)
        tui_put(3, 2, cols - 2, "no traces in this store (r reloads)", 0);
    for (int y = 2; y < rows - 1; y++) {
        size_t r = l->top + (size_t)(y - 2);
        if (r >= l->n)
            break;
        const struct trace_summary *s = &l->t[r];
        char t[40], d[32];
        trace_fmt_time(t, sizeof t, s->start_us);
        trace_fmt_dur(d, sizeof d, s->duration_us);
        int a = r == l->sel ? (has_colors() ? A_BOLD | COLOR_PAIR(TUI_C_SEL) : A_REVERSE) : 0;
        attron(a);
        tui_putf(y, 0, cols, 1, "%-*.*s %-19.19s %10s %5zu %-*.*s %s", idW, idW, s->trace_id, t, d, s->span_count,
                 rootW, rootW, s->root_name, s->services);
        attroff(a);
    }
    tui_status(l->msg, " q quit  ? help  Up/Down select  Enter waterfall  r reload");
    refresh();
}

int waterfall_run(const char *path, int64_t max_skew, char *err, size_t errlen)
{
    struct span_store *st = NULL;
    int rc = span_store_open(path, 0, &st, err, errlen);
    if (rc)
        return rc;
    max_skew = trace_store_max_skew(st, max_skew);
    struct wl l = { 0 };
    if ((rc = wl_load(&l, st, max_skew, err, errlen))) {
        span_store_free(st);
        return rc;
    }
    if (tui_begin(err, errlen)) {
        free(l.t);
        span_store_free(st);
        return -ENOTTY;
    }
    struct wf w = { 0 };
    int in_wf = 0;
    for (;;) {
        if (in_wf)
            wf_draw(&w);
        else
            wl_draw(&l, path);
        int ch = getch();
        if (ch == ERR || ch == KEY_RESIZE)
            continue;
        if (in_wf) {
            if (wf_key(&w, ch)) {
                wf_free(&w);
                in_wf = 0;
            }
            continue;
        }
        int page = getmaxy(stdscr) - 3;
        if (page < 1)
            page = 1;
        l.msg[0] = 0;
        if (ch == 'q' || ch == 'Q')
            break;
        switch (ch) {
        case 'r': case 'R': {
            char e[256] = "";
            if (wl_load(&l, st, max_skew, e, sizeof e))
                snprintf(l.msg, sizeof l.msg, " reload failed: %s", e);
            break;
        }
        case '?': case KEY_F(1): tui_help("sonde view: traces", wf_help); break;
        case '\n': case '\r': case KEY_ENTER:
        case KEY_RIGHT: {
            if (!l.n)
                break;
            char e[256] = "";
            int r = wf_open(&w, st, l.t[l.sel].trace_id, max_skew, e, sizeof e);
            if (r)
                snprintf(l.msg, sizeof l.msg, " %s", r == -ENOENT ? "that trace expired meanwhile" : e);
            else
                in_wf = 1;
            break;
        }
        default: nav_key(&l.sel, l.n, page, ch); break;
        }
    }
    tui_end();
    wf_free(&w);
    free(l.t);
    span_store_free(st);
    return 0;
}
