/* The live view's drawing: curses panes and plain-text snapshots of the
 * live aggregator (ui/top.h). (cli/top.c is the `sonde top` command: options,
 * attach or launch, then this.) */
#include "ui/top_int.h"

#include "common/err.h"
#include "common/textesc.h"
#include "ui/tgroup.h"
#include "ui/tui.h"

#include <curses.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const help_lines[] = {
    "sonde top: what the target is doing, refreshed every interval.",
    "",
    "Counters are CUMULATIVE since sonde attached (no decay); R resets them.",
    "OWN: time with the function innermost (running itself).",
    "TOTAL: time with the function anywhere on the stack (once per sample).",
    "",
    "  ?  h        this help",
    "  q           quit (the terminal is restored)",
    "  p  space    pause / resume the display (sampling goes on, numbers freeze)",
    "  R           reset every counter to zero",
    "  m           next mode: wall -> cpu -> gil (time holding the GIL)",
    "  w  c  g     mode wall / cpu / gil",
    "  1  2  3  4  sort by own time, total time, function name, file",
    "  t           threads pane (state per thread, asyncio tasks under theirs);",
    "              Enter there filters on a thread or a task (running and waiting),",
    "              or lists / folds a row of tasks sharing a function, or of",
    "              threads named alike (Thread-N (handle) xCOUNT: their sums)",
    "  [  ]        previous / next thread filter",
    "  a           all threads (clear the filter)",
    "  Up Down PgUp PgDn Home End   move in the table",
    "",
    "Modes: wall = every sample's wall time; cpu = CPU time the thread used;",
    "gil = wall time while the thread held the GIL.",
    "Thread states: # gil (holds the GIL)  w gil_wait (blocked on the GIL)",
    "               = nogil (on CPU without the GIL)  . idle",
    "Header: CPU % = CPU time of every thread / elapsed (can exceed 100);",
    "GIL held % = ticks with a holder; GIL wait % = ticks with a waiter.",
    "Threads that end stay a few seconds (dimmed, \"ended\"), then count in",
    "the \"+N ended\" row: their sums (Enter there: their functions).",
    NULL,
};

static const char *mode_name(enum q_metric m)
{
    return m == Q_CPU ? "cpu" : m == Q_GIL ? "gil" : "wall";
}

static const char *sort_name(int s)
{
    static const char *const n[] = { "own", "total", "function", "file" };
    return n[s];
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static enum q_metric g_mode;
static int g_sort;

static int cmp_func(const void *a, const void *b)
{
    const struct live_func *x = a, *y = b;
    int c = 0;
    switch (g_sort) {
    case SORT_OWN:
        c = (y->self[g_mode] > x->self[g_mode]) - (y->self[g_mode] < x->self[g_mode]);
        if (!c)
            c = (y->total[g_mode] > x->total[g_mode]) - (y->total[g_mode] < x->total[g_mode]);
        break;
    case SORT_TOTAL:
        c = (y->total[g_mode] > x->total[g_mode]) - (y->total[g_mode] < x->total[g_mode]);
        if (!c)
            c = (y->self[g_mode] > x->self[g_mode]) - (y->self[g_mode] < x->self[g_mode]);
        break;
    case SORT_NAME:
        c = strcmp(x->name, y->name);
        break;
    case SORT_FILE:
        c = strcmp(x->file, y->file);
        if (!c)
            c = x->line - y->line;
        break;
    }
    if (!c)
        c = strcmp(x->name, y->name);
    return c;
}

static int take(struct top *t)
{
    /* the selected row of the threads pane stays selected while it is
     * listed (rows come and go as threads start and end) */
    struct trow was = { 0 };
    int had = t->tsel > 0 && t->tsel <= (int)t->nrows;
    if (had)
        was = t->rows[t->tsel - 1];
    /* a group of threads named alike: by process and pattern (its members
     * change) */
    char was_pat[160] = "", pat[160];
    int was_pid = had && was.tcount ? t->s.threads[was.first].pid : 0;
    if (had && was.tcount)
        tgroup_pattern(t->s.threads[was.first].name, was_pat, sizeof was_pat);
    uint32_t was_green = had && was.green ? t->s.greens[was.green - 1].id : 0;
    int rc = live_snapshot(t->l, t->thread, t->green, &t->s);
    if (rc || (rc = top_build_rows(t)))
        return rc;
    for (size_t i = 0; had && i < t->nrows; i++) {
        const struct trow *r = &t->rows[i];
        if (r->tcount)
            tgroup_pattern(t->s.threads[r->first].name, pat, sizeof pat);
        int same = was.tcount ? r->tcount && t->s.threads[r->first].pid == was_pid && !strcmp(pat, was_pat)
                 : was.green ? r->green && t->s.greens[r->green - 1].id == was_green
                 : was.count ? 0
                 : !r->green && !r->count && !r->tcount && r->thread == was.thread;
        if (same) {
            t->tsel = (int)i + 1;
            break;
        }
    }
    g_mode = t->mode;
    g_sort = t->sort;
    qsort(t->s.funcs, t->s.nfuncs, sizeof *t->s.funcs, cmp_func);
    return 0;
}

static void resort(struct top *t)
{
    g_mode = t->mode;
    g_sort = t->sort;
    qsort(t->s.funcs, t->s.nfuncs, sizeof *t->s.funcs, cmp_func);
}

static void green_label(const struct top *t, char *out, size_t n)
{
    for (size_t i = 0; i < t->s.ngreens; i++)
        if (t->s.greens[i].id == t->green) {
            snprintf(out, n, "%s (%u)", t->s.greens[i].name[0] ? t->s.greens[i].name : "?", t->green);
            return;
        }
    snprintf(out, n, "#%u (ended)", t->green);
}

static void thread_label(const struct top *t, uint32_t id, char *out, size_t n)
{
    const struct live_thread *th = top_thread_by_id(t, id);
    if (!id)
        snprintf(out, n, "all");
    else if (id == LIVE_ENDED_ID)
        snprintf(out, n, "(%llu ended threads)", (unsigned long long)t->s.h.ended_threads);
    else if (!th) /* dropped since it ended: its samples are the ended threads' now */
        snprintf(out, n, "#%u (ended)", id);
    else
        snprintf(out, n, "%s (%d)", th->name[0] ? th->name : "?", th->tid);
}

/* "path/to/file.py:12" cut from the left to fit w. */
static void file_line(char *out, size_t n, const char *file, int line, int native, int w)
{
    char buf[1024];
    if (native) /* where it stands: "libfoo.so+0x1a2b" */
        snprintf(buf, sizeof buf, "%s", file);
    else
        snprintf(buf, sizeof buf, "%s:%d", file, line);
    size_t len = strlen(buf);
    const char *p = buf;
    if (w > 3 && len > (size_t)w) {
        p = buf + len - (size_t)(w - 3);
        if (n > 3) {
            memcpy(out, "...", 3);
            out += 3;
            n -= 3;
        }
    }
    size_t k = strlen(p) < n ? strlen(p) : n - 1;
    memcpy(out, p, k);
    out[k] = 0;
}

static void header_line(const struct top *t, char *out, size_t n)
{
    const struct live_header *h = &t->s.h;
    double el = (double)(h->last_ts - h->first_ts) / 1e9;
    uint64_t errs = t->o->errors ? t->o->errors(t->o->ctx) : 0;
    snprintf(out, n,
             "%d Hz  Samples %llu  Errors %llu  CPU %.1f%%  GIL held %.1f%%  GIL wait %.1f%%  %.0fs",
             t->o->rate_hz, (unsigned long long)h->samples, (unsigned long long)errs,
             top_pct((double)h->cpu_ns, el * 1e9), top_pct((double)h->gil_held_ticks, (double)h->ticks),
             top_pct((double)h->gil_contended_ticks, (double)h->ticks), el);
}

/* ---- plain-text snapshots ---- */

/* "  NAME  ID  SAMPLES  task  cpu X%  running Y%  FUNCTION", or for a
 * group "  + N tasks ..." (samples and CPU while running). */
static void print_green_row(const struct top *t, const struct trow *r, FILE *f)
{
    const struct live_header *h = &t->s.h;
    double el = (double)(h->last_ts - h->first_ts);
    char e1[TEXTESC_SIZE(64)], e2[TEXTESC_SIZE(64)], what[32];
    if (r->green) {
        const struct live_green *g = &t->s.greens[r->green - 1];
        struct gsum m = top_green_sum(t, r->green - 1, r->green);
        fprintf(f, "  %-22.22s %8u %8llu  %s  cpu %.1f%%  running %.1f%%  %s\n",
                g->name[0] ? textesc_str(g->name, e1, sizeof e1) : "?", g->id,
                (unsigned long long)m.samples, green_kind_name(g->kind), top_pct(m.cpu_ns, el), m.run_pct,
                textesc_str(g->func, e2, sizeof e2));
    } else if (r->count) {
        const struct live_green *g = &t->s.greens[r->first];
        struct gsum m = top_green_sum(t, r->first, (size_t)r->first + r->count);
        snprintf(what, sizeof what, "+ %u %s%s", r->count, green_kind_name(g->kind), r->count == 1 ? "" : "s");
        fprintf(f, "  %-22.22s %8s %8llu  %s  cpu %.1f%%  running %.1f%%  %s\n", what, "",
                (unsigned long long)m.samples, green_kind_name(g->kind), top_pct(m.cpu_ns, el), m.run_pct,
                textesc_str(g->func, e2, sizeof e2));
    }
}

static void print_snapshot(struct top *t, FILE *f, int limit)
{
    const struct live_header *h = &t->s.h;
    char hl[256], lab[96], a[32], b[32];
    header_line(t, hl, sizeof hl);
    thread_label(t, t->thread, lab, sizeof lab);
    /* names, files and the command line come from the target: shown escaped */
    char e1[TEXTESC_SIZE(sizeof h->cmd)], e2[TEXTESC_SIZE(sizeof h->version)], e3[TEXTESC_SIZE(sizeof lab)];
    fprintf(f, "sonde top: pid %d  %s  Python %s%s\n%s\nmode %s, thread %s\n", h->pid,
            textesc_str(h->cmd, e1, sizeof e1), h->version[0] ? textesc_str(h->version, e2, sizeof e2) : "?",
            h->done ? "  (sampling ended)" : "", hl, mode_name(t->mode), textesc_str(lab, e3, sizeof e3));
    int nw = top_name_width(t, 1000) - 3 < 24 ? 24 : top_name_width(t, 1000) - 3;
    fprintf(f, "%-*s %8s %8s %8s %7s %7s %7s %7s\n", nw, "THREAD", "PID", "TID", "SAMPLES", "%GIL", "%WAIT",
            "%NOGIL", "%IDLE");
    /* the rows of the threads pane: threads named alike as one row, green
     * threads under their thread, the threads dropped after they ended */
    for (size_t r = 0; r < t->nrows; r++) {
        const struct trow *row = &t->rows[r];
        if (row->green || row->count) {
            print_green_row(t, row, f);
            continue;
        }
        uint32_t ended = 0;
        struct live_thread sum = top_row_sums(t, row, &ended);
        const struct live_thread *th = row->tcount ? &t->s.threads[row->first] : top_thread_by_id(t, row->thread);
        char name[192], tid[24], pid[16];
        if (row->tcount) {
            char pat[160];
            tgroup_pattern(th->name, pat, sizeof pat);
            snprintf(name, sizeof name, "%s", textesc_str(pat, e3, sizeof e3));
            snprintf(tid, sizeof tid, "x%u", row->tcount);
        } else if (row->thread == LIVE_ENDED_ID) {
            snprintf(name, sizeof name, "+%llu ended", (unsigned long long)t->s.h.ended_threads);
            snprintf(tid, sizeof tid, "-");
        } else {
            snprintf(name, sizeof name, "%s", th->name[0] ? textesc_str(th->name, e3, sizeof e3) : "?");
            snprintf(tid, sizeof tid, "%d", th->tid);
        }
        snprintf(pid, sizeof pid, "%d", th->pid);
        double w = (double)sum.wall_ns;
        fprintf(f, "%-*.*s %8s %8s %8llu %7.1f %7.1f %7.1f %7.1f%s\n", nw, nw, name,
                row->thread == LIVE_ENDED_ID ? "-" : pid, tid, (unsigned long long)sum.samples,
                top_pct((double)sum.state_ns[STATE_GIL], w), top_pct((double)sum.state_ns[STATE_GIL_WAIT], w),
                top_pct((double)sum.state_ns[STATE_NOGIL], w), top_pct((double)sum.state_ns[STATE_IDLE], w),
                row->thread == LIVE_ENDED_ID ? "  (dropped after they ended)"
                : row->tcount && ended ? "  (some ended)" : !row->tcount && th->ended ? "  (ended)" : "");
    }
    fprintf(f, "%7s %7s %9s %9s  %s\n", "OWN%", "TOTAL%", "OWN", "TOTAL", "FUNCTION (FILE:LINE)");
    double tot = (double)t->s.metric_total[t->mode];
    int shown = 0;
    for (size_t i = 0; i < t->s.nfuncs && shown < limit; i++) {
        const struct live_func *fn = &t->s.funcs[i];
        if (!fn->total[t->mode])
            continue;
        tui_fmt_secs(a, sizeof a, (double)fn->self[t->mode] / 1e9);
        tui_fmt_secs(b, sizeof b, (double)fn->total[t->mode] / 1e9);
        fprintf(f, "%7.1f %7.1f %9s %9s  ", top_pct((double)fn->self[t->mode], tot),
                top_pct((double)fn->total[t->mode], tot), a, b);
        textesc_fputs(fn->name, f);
        fputs(" (", f);
        textesc_fputs(fn->file, f);
        if (fn->native) /* "name (libfoo.so+0x1a2b)", as dump --native prints it */
            fputs(")\n", f);
        else
            fprintf(f, ":%d)\n", fn->line);
        shown++;
    }
    if (!shown)
        fprintf(f, "  (no samples yet)\n");
    fputc('\n', f);
    fflush(f);
}

static int run_plain(struct top *t, FILE *out, char *err, size_t errlen)
{
    double start = now_s(), next = start + t->o->interval_s;
    struct timespec d = { 0, 50 * 1000 * 1000 };
    for (;;) {
        nanosleep(&d, NULL);
        int stop = t->o->stop && *t->o->stop;
        double now = now_s();
        int timeup = t->o->duration_s > 0 && now - start >= t->o->duration_s;
        if (now >= next || stop || timeup) {
            if (take(t))
                return se_fail(err, errlen, -ENOMEM, "out of memory");
            if (t->s.h.done || stop || timeup) {
                print_snapshot(t, out, 25);
                return 0;
            }
            print_snapshot(t, out, 25);
            next = now + t->o->interval_s;
        }
    }
}

/* ---- curses ---- */

static void draw_title(struct top *t, int cols)
{
    const struct live_header *h = &t->s.h;
    char hl[256], lab[96];
    attron(A_REVERSE | A_BOLD);
    tui_putf(0, 0, cols, 1, " sonde top  pid %d  %s", h->pid, h->cmd);
    char ver[64];
    snprintf(ver, sizeof ver, " Python %s ", h->version[0] ? h->version : "?");
    if ((int)strlen(ver) < cols / 2)
        tui_put(0, cols - (int)strlen(ver), (int)strlen(ver), ver, 0);
    attroff(A_REVERSE | A_BOLD);
    header_line(t, hl, sizeof hl);
    tui_put(1, 0, cols, hl, 1);
    if (t->green)
        green_label(t, lab, sizeof lab);
    else
        thread_label(t, t->thread, lab, sizeof lab);
    tui_putf(2, 0, cols, 1, "Mode %s  %s %s  Sort %s%s%s", mode_name(t->mode),
             t->green ? "Task" : "Thread", lab, sort_name(t->sort), t->paused ? "  [PAUSED]" : "",
             h->done ? "  [sampling ended]" : "");
}

static void draw_funcs(struct top *t, int rows, int cols)
{
    int fnw = cols - 38, top = 4, n = rows - top - 1;
    if (fnw < 10)
        fnw = 10;
    int namew = fnw * 5 / 10, filew = fnw - namew - 1;
    attron(A_REVERSE);
    char hd[256];
    snprintf(hd, sizeof hd, "%s%6s %s%6s %s%8s %s%8s  %-*s %s", t->sort == SORT_OWN ? "*" : " ",
             "OWN%", t->sort == SORT_TOTAL ? "*" : " ", "TOTAL%", " ", "OWN", " ", "TOTAL", namew,
             t->sort == SORT_NAME ? "FUNCTION*" : "FUNCTION", t->sort == SORT_FILE ? "FILE:LINE*" : "FILE:LINE");
    tui_put(3, 0, cols, hd, 1);
    attroff(A_REVERSE);
    int nf = (int)t->s.nfuncs;
    if (t->sel >= nf)
        t->sel = nf ? nf - 1 : 0;
    if (t->sel < 0)
        t->sel = 0;
    if (n < 1)
        n = 1;
    if (t->sel < t->scroll)
        t->scroll = t->sel;
    if (t->sel >= t->scroll + n)
        t->scroll = t->sel - n + 1;
    double tot = (double)t->s.metric_total[t->mode];
    for (int i = 0; i < n; i++) {
        int r = t->scroll + i;
        move(top + i, 0);
        clrtoeol();
        if (r >= nf)
            continue;
        const struct live_func *fn = &t->s.funcs[r];
        char a[32], b[32], fl[512], line[1024];
        tui_fmt_secs(a, sizeof a, (double)fn->self[t->mode] / 1e9);
        tui_fmt_secs(b, sizeof b, (double)fn->total[t->mode] / 1e9);
        file_line(fl, sizeof fl, fn->file, fn->line, fn->native, filew);
        snprintf(line, sizeof line, " %6.1f  %6.1f  %8s  %8s  %-*.*s %s",
                 top_pct((double)fn->self[t->mode], tot), top_pct((double)fn->total[t->mode], tot), a, b,
                 namew, namew, fn->name, fl);
        if (r == t->sel)
            attron(A_BOLD | (has_colors() ? COLOR_PAIR(TUI_C_SEL) : A_REVERSE));
        tui_put(top + i, 0, cols, line, 1);
        if (r == t->sel)
            attroff(A_BOLD | (has_colors() ? COLOR_PAIR(TUI_C_SEL) : A_REVERSE));
    }
    if (!nf)
        tui_put(top, 1, cols - 1, "(no samples yet)", 0);
}

static void draw_threads(struct top *t, int rows, int cols)
{
    int top = 4, n = rows - top - 1, nw = top_name_width(t, cols);
    attron(A_REVERSE);
    tui_putf(3, 0, cols, 1, " %-*s %7s %7s %7s %6s %6s %6s %6s  %s", nw, "THREAD", "PID", "TID", "CPU%", "%GIL",
             "%WAIT", "%NOGIL", "%IDLE", "# gil w wait = nogil . idle");
    attroff(A_REVERSE);
    int nr = (int)t->nrows;
    if (t->tsel >= nr + 1)
        t->tsel = nr;
    if (t->tsel < 0)
        t->tsel = 0;
    if (n < 1)
        n = 1;
    /* the pane shows what fits and scrolls with the selection */
    if (t->tsel < t->tscroll)
        t->tscroll = t->tsel;
    if (t->tsel >= t->tscroll + n)
        t->tscroll = t->tsel - n + 1;
    if (t->tscroll > nr + 1 - n)
        t->tscroll = nr + 1 - n > 0 ? nr + 1 - n : 0;
    double el = (double)(t->s.h.last_ts - t->s.h.first_ts);
    int barx = nw + 55;
    for (int i = 0; i < n; i++) {
        move(top + i, 0);
        clrtoeol();
        int r = t->tscroll + i; /* row 0: all threads */
        if (r > nr)
            continue;
        const struct trow *row = r ? &t->rows[r - 1] : NULL;
        int is_thread = row && !row->green && !row->count;
        struct live_thread sum = { 0 };
        uint32_t ended = 0;
        if (is_thread)
            sum = top_row_sums(t, row, &ended);
        const struct live_thread *th = is_thread && !row->tcount ? top_thread_by_id(t, row->thread) : NULL;
        int sel = r == t->tsel, dim = th && th->ended && row->thread != LIVE_ENDED_ID;
        if (sel)
            attron(A_BOLD | (has_colors() ? COLOR_PAIR(TUI_C_SEL) : A_REVERSE));
        if (dim)
            attron(A_DIM);
        if (r == 0) {
            tui_putf(top + i, 0, cols, 1, " %-*s %s", nw, "(all threads)",
                     t->thread == 0 && t->green == 0 ? "  <- filter" : "");
        } else if (row->green) { /* a green thread, under its thread */
            const struct live_green *g = &t->s.greens[row->green - 1];
            struct gsum m = top_green_sum(t, row->green - 1, row->green);
            tui_putf(top + i, 0, cols, 1, "%c %s%-*.*s %7s %7u %7.1f  run %5.1f%%  %7llu smp  %s %s",
                     t->green == g->id ? '>' : ' ', row->deep ? "   " : " ", row->deep ? nw - 3 : nw - 1,
                     row->deep ? nw - 3 : nw - 1, g->name[0] ? g->name : "?", "", g->id, top_pct(m.cpu_ns, el),
                     m.run_pct, (unsigned long long)m.samples, green_kind_name(g->kind), g->func);
        } else if (row->count) { /* green threads sharing a function */
            const struct live_green *g = &t->s.greens[row->first];
            struct gsum m = top_green_sum(t, row->first, (size_t)row->first + row->count);
            char what[32];
            int open = t->xopen && t->xthread == row->thread && !strcmp(t->xfunc, g->func);
            snprintf(what, sizeof what, "%c %u %s%s", open ? '-' : '+', row->count, green_kind_name(g->kind),
                     row->count == 1 ? "" : "s");
            tui_putf(top + i, 0, cols, 1, "  %-*.*s %7s %7s %7.1f  run %5.1f%%  %7llu smp  %s", nw - 1, nw - 1,
                     what, "", "", top_pct(m.cpu_ns, el), m.run_pct, (unsigned long long)m.samples, g->func);
        } else {
            char name[192], tid[24];
            int pid = 0;
            if (row->tcount) { /* threads named alike: "+ Thread-N (handle)", xCOUNT */
                const struct live_thread *f = &t->s.threads[row->first];
                char pat[160];
                tgroup_pattern(f->name, pat, sizeof pat);
                snprintf(name, sizeof name, "%c %s", top_tgroup_open(t, row->first) ? '-' : '+', pat);
                snprintf(tid, sizeof tid, "x%u", row->tcount);
                pid = f->pid;
            } else if (row->thread == LIVE_ENDED_ID) {
                snprintf(name, sizeof name, "+%llu ended", (unsigned long long)t->s.h.ended_threads);
                snprintf(tid, sizeof tid, "-");
            } else if (th) {
                snprintf(name, sizeof name, "%s%s", row->deep ? "  " : "", th->name[0] ? th->name : "?");
                snprintf(tid, sizeof tid, "%d", th->tid);
                pid = th->pid;
            } else {
                name[0] = tid[0] = 0;
            }
            double w = (double)sum.wall_ns;
            char pidcol[16] = "";
            if (pid)
                snprintf(pidcol, sizeof pidcol, "%d", pid);
            tui_putf(top + i, 0, cols, 1, "%c%-*.*s %7s %7s %7.1f %6.1f %6.1f %6.1f %6.1f  ",
                     t->thread == row->thread && !row->tcount ? '>' : ' ', nw, nw, name, pidcol, tid,
                     top_pct((double)sum.cpu_ns, el), top_pct((double)sum.state_ns[STATE_GIL], w),
                     top_pct((double)sum.state_ns[STATE_GIL_WAIT], w), top_pct((double)sum.state_ns[STATE_NOGIL], w),
                     top_pct((double)sum.state_ns[STATE_IDLE], w));
        }
        if (dim)
            attroff(A_DIM);
        if (sel)
            attroff(A_BOLD | (has_colors() ? COLOR_PAIR(TUI_C_SEL) : A_REVERSE));
        if (!is_thread || cols <= barx + 2)
            continue;
        if (row->thread == LIVE_ENDED_ID) {
            tui_put(top + i, barx, cols - barx, "dropped after they ended (Enter: their functions)", 1);
        } else if (dim) {
            tui_put(top + i, barx, cols - barx, "ended", 1);
        } else {
            double w = (double)sum.wall_ns, fr[4];
            for (int k = 0; k < 4; k++)
                fr[k] = w > 0 ? (double)sum.state_ns[k] / w : 0;
            int bw = cols - barx;
            char note[32] = "";
            if (row->tcount && ended)
                snprintf(note, sizeof note, " %u ended", ended);
            if (note[0] && bw > (int)strlen(note) + 8)
                bw -= (int)strlen(note);
            else
                note[0] = 0;
            tui_state_bar(top + i, barx, bw, fr);
            if (note[0])
                tui_put(top + i, barx + bw, (int)strlen(note), note, 0);
        }
    }
}

static void draw(struct top *t)
{
    int rows, cols;
    getmaxyx(stdscr, rows, cols);
    erase();
    if (rows < 6 || cols < 30) {
        tui_put(0, 0, cols, "sonde top: terminal too small", 0);
        refresh();
        return;
    }
    draw_title(t, cols);
    if (t->pane == PANE_FUNCS)
        draw_funcs(t, rows, cols);
    else
        draw_threads(t, rows, cols);
    tui_status(t->msg[0] || !t->s.h.oom ? t->msg : " out of memory: some samples are not counted",
               t->pane == PANE_FUNCS
                   ? " q quit  ? help  p pause  m mode  1-4 sort  t threads  [ ] thread  R reset"
                   : " Enter filter on thread / task  a all  t/Esc back  q quit  ? help");
    refresh();
}

static void cycle_thread(struct top *t, int dir)
{
    int n = (int)t->s.nthreads, cur = 0;
    for (int i = 0; i < n; i++)
        if (t->s.threads[i].id == t->thread)
            cur = i + 1;
    cur = ((cur + dir) % (n + 1) + n + 1) % (n + 1);
    t->thread = cur ? t->s.threads[cur - 1].id : 0;
    t->green = 0;
}

static int run_curses(struct top *t, char *err, size_t errlen)
{
    if (tui_begin(err, errlen))
        return -ENOTTY;
    timeout(100);
    double next = 0, start = now_s();
    int dirty = 1, rc = 0;
    while (!(t->o->stop && *t->o->stop)) {
        double now = now_s();
        if (t->o->duration_s > 0 && now - start >= t->o->duration_s)
            break;
        int refresh_now = 0;
        if (!t->paused && now >= next) {
            refresh_now = 1;
            next = now + t->o->interval_s;
        }
        if (refresh_now) {
            if ((rc = take(t)))
                break;
            dirty = 1;
        }
        if (dirty)
            draw(t);
        dirty = 0;
        int ch = getch();
        if (ch == ERR)
            continue;
        dirty = 1;
        t->msg[0] = 0;
        int resnap = 0;
        int page = LINES - 6 > 1 ? LINES - 6 : 1;
        switch (ch) {
        case 'q': case 'Q':
            goto done;
        case KEY_RESIZE:
            break;
        case '?': case 'h': case KEY_F(1):
            tui_help("sonde top: help", help_lines);
            break;
        case 'p': case ' ':
            t->paused = !t->paused;
            if (!t->paused)
                next = 0;
            break;
        case 'R':
            live_reset(t->l);
            resnap = 1;
            snprintf(t->msg, sizeof t->msg, " counters reset");
            break;
        case 'm':
            t->mode = (enum q_metric)((t->mode + 1) % Q_METRICS);
            resort(t);
            break;
        case 'w': t->mode = Q_WALL; resort(t); break;
        case 'c': t->mode = Q_CPU; resort(t); break;
        case 'g': t->mode = Q_GIL; resort(t); break;
        case '1': case '2': case '3': case '4':
            t->sort = ch - '1';
            resort(t);
            t->sel = t->scroll = 0;
            break;
        case 't': case '\t':
            t->pane = t->pane == PANE_FUNCS ? PANE_THREADS : PANE_FUNCS;
            break;
        case 27:
            t->pane = PANE_FUNCS;
            break;
        case '[': cycle_thread(t, -1); resnap = 1; break;
        case ']': cycle_thread(t, 1); resnap = 1; break;
        case 'a': t->thread = t->green = 0; resnap = 1; break;
        case '\n': case '\r': case KEY_ENTER:
            if (t->pane == PANE_THREADS) {
                const struct trow *r = t->tsel > 0 && t->tsel <= (int)t->nrows ? &t->rows[t->tsel - 1] : NULL;
                if (r && r->tcount) { /* threads named alike: list them, or fold them */
                    const struct live_thread *f = &t->s.threads[r->first];
                    if (top_tgroup_open(t, r->first)) {
                        t->tgopen = 0;
                    } else {
                        t->tgopen = 1;
                        t->tgpid = f->pid;
                        tgroup_pattern(f->name, t->tgpat, sizeof t->tgpat);
                    }
                    if (top_build_rows(t)) {
                        rc = -ENOMEM;
                        goto done;
                    }
                    break;
                }
                if (r && r->count) { /* a group: list its green threads, or fold them */
                    const char *fn = t->s.greens[r->first].func;
                    if (t->xopen && t->xthread == r->thread && !strcmp(t->xfunc, fn)) {
                        t->xopen = 0;
                    } else {
                        t->xopen = 1;
                        t->xthread = r->thread;
                        snprintf(t->xfunc, sizeof t->xfunc, "%s", fn);
                    }
                    if (top_build_rows(t)) {
                        rc = -ENOMEM;
                        goto done;
                    }
                    break;
                }
                t->green = r && r->green ? t->s.greens[r->green - 1].id : 0;
                t->thread = r && !r->green ? r->thread : 0;
                t->pane = PANE_FUNCS;
                t->sel = t->scroll = 0;
                resnap = 1;
            }
            break;
        case KEY_UP: case 'k':
            if (t->pane == PANE_FUNCS) t->sel--; else if (t->tsel > 0) t->tsel--;
            break;
        case KEY_DOWN: case 'j':
            if (t->pane == PANE_FUNCS) t->sel++; else t->tsel++;
            break;
        case KEY_PPAGE: if (t->pane == PANE_FUNCS) t->sel -= page; else t->tsel -= page; break;
        case KEY_NPAGE: if (t->pane == PANE_FUNCS) t->sel += page; else t->tsel += page; break;
        case KEY_HOME: if (t->pane == PANE_FUNCS) t->sel = 0; else t->tsel = 0; break;
        case KEY_END: if (t->pane == PANE_FUNCS) t->sel = (int)t->s.nfuncs - 1; else t->tsel = (int)t->nrows; break;
        default:
            snprintf(t->msg, sizeof t->msg, " unknown key: press ? for help");
            break;
        }
        if (resnap && (rc = take(t)))
            break;
    }
done:
    tui_end();
    if (rc)
        return se_fail(err, errlen, -ENOMEM, "out of memory");
    return 0;
}

int top_run(struct live *l, const struct top_opts *o, FILE *out, char *err, size_t errlen)
{
    struct top t = { .l = l, .o = o, .mode = o->mode, .sort = SORT_OWN };
    int rc = o->plain ? run_plain(&t, out, err, errlen) : run_curses(&t, err, errlen);
    live_snap_fini(&t.s);
    free(t.rows);
    free(t.thead);
    return rc;
}
