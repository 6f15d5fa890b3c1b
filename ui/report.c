/* The report's drawing: a recording's query results as text or JSON
 * (ui/report.h). (cli/report.c is the `sonde report` command: options, then
 * this.) */
#include "ui/report.h"

#include "common/textesc.h"
#include "ui/tgroup.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* A JSON string (the model's strings are well-formed UTF-8: model_load
 * repairs them). */
static json_t *jstr(const char *s)
{
    return json_string(s ? s : "");
}

static double pct(double part, double whole)
{
    return whole > 0 ? 100.0 * part / whole : 0.0;
}

/* Green threads are listed one by one up to this many; beyond, grouped by
 * coroutine / run function (JSON lists every one). */
#define GREEN_ROWS_MAX 40

struct green_rows {
    const struct q_line *ln; /* --lines: the lines, ranked */
    size_t nln;
    const struct q_span *sp; /* the recording's spans (query_spans), nsp of them */
    size_t nsp;
    const struct q_green *g;
    size_t n;
};

/* One row of the ranked functions or lines: a line row (fn_line not
 * NULL) also names its function's first line. */
static json_t *ranked_row(const struct model *m, uint32_t name, uint32_t file, int line, const int32_t *fn_line,
                          const double *self, const double *total)
{
    json_t *j = json_object();
    json_object_set_new(j, "function", jstr(model_str(m, name)));
    json_object_set_new(j, "file", jstr(model_str(m, file)));
    json_object_set_new(j, "line", json_integer(line));
    if (fn_line)
        json_object_set_new(j, "fn_line", json_integer(*fn_line));
    json_object_set_new(j, "self_cpu_s", json_real(self[Q_CPU]));
    json_object_set_new(j, "total_cpu_s", json_real(total[Q_CPU]));
    json_object_set_new(j, "self_wall_s", json_real(self[Q_WALL]));
    json_object_set_new(j, "total_wall_s", json_real(total[Q_WALL]));
    return j;
}

static int write_json(FILE *f, const struct model *m, const struct report_opts *o,
                      const struct q_thread *th, size_t nth, const struct green_rows *gr,
                      const struct q_func *fn, size_t nfn)
{
    json_t *root = json_object(), *threads = json_array(), *funcs = json_array();
    json_t *greens = json_array();
    for (size_t i = 0; i < gr->n; i++) {
        const struct q_green *q = &gr->g[i];
        const struct m_green *g = &m->greens[q->green];
        if (o->green && q->green != o->green)
            continue;
        if ((o->thread && g->thread != o->thread) || (o->pid && g->pid != o->pid))
            continue;
        json_t *j = json_object();
        json_object_set_new(j, "id", json_integer(q->green));
        json_object_set_new(j, "kind", json_string(green_kind_name(g->kind)));
        json_object_set_new(j, "name", jstr(g->name));
        json_object_set_new(j, "function", jstr(g->func));
        json_object_set_new(j, "address", json_integer((json_int_t)g->addr));
        json_object_set_new(j, "pid", json_integer(g->pid));
        json_object_set_new(j, "tid", json_integer(g->thread ? m->threads[g->thread].tid : 0));
        json_object_set_new(j, "samples", json_integer((json_int_t)q->samples));
        json_object_set_new(j, "wall_s", json_real(q->wall_s));
        json_object_set_new(j, "cpu_s", json_real(q->cpu_s));
        json_object_set_new(j, "running_pct", json_real(pct(q->running_s, q->wall_s)));
        json_object_set_new(j, "gil_pct", json_real(pct(q->state_s[STATE_GIL], q->wall_s)));
        json_object_set_new(j, "gil_wait_pct", json_real(pct(q->state_s[STATE_GIL_WAIT], q->wall_s)));
        json_object_set_new(j, "nogil_pct", json_real(pct(q->state_s[STATE_NOGIL], q->wall_s)));
        json_object_set_new(j, "idle_pct", json_real(pct(q->state_s[STATE_IDLE], q->wall_s)));
        json_object_set_new(j, "start_s", json_real((double)g->start_ns / 1e9));
        if (g->end_ns >= 0)
            json_object_set_new(j, "end_s", json_real((double)g->end_ns / 1e9));
        else
            json_object_set_new(j, "end_s", json_null());
        json_array_append_new(greens, j);
    }
    for (size_t i = 0; i < nth; i++) {
        const struct q_thread *t = &th[i];
        const struct m_thread *mt = &m->threads[t->thread];
        if ((o->thread && t->thread != o->thread) || (o->pid && mt->pid != o->pid))
            continue;
        json_t *j = json_object();
        json_object_set_new(j, "pid", json_integer(mt->pid));
        json_object_set_new(j, "tid", json_integer(mt->tid));
        json_object_set_new(j, "name", jstr(mt->name));
        json_object_set_new(j, "samples", json_integer((json_int_t)t->samples));
        json_object_set_new(j, "wall_s", json_real(t->wall_s));
        json_object_set_new(j, "cpu_s", json_real(t->cpu_s));
        json_object_set_new(j, "gil_pct", json_real(pct(t->state_s[STATE_GIL], t->wall_s)));
        json_object_set_new(j, "gil_wait_pct", json_real(pct(t->state_s[STATE_GIL_WAIT], t->wall_s)));
        json_object_set_new(j, "nogil_pct", json_real(pct(t->state_s[STATE_NOGIL], t->wall_s)));
        json_object_set_new(j, "idle_pct", json_real(pct(t->state_s[STATE_IDLE], t->wall_s)));
        json_object_set_new(j, "gil_offcpu_pct",
                            json_real(pct(t->gil_offcpu_s, t->state_s[STATE_GIL])));
        json_array_append_new(threads, j);
    }
    for (size_t i = 0; i < nfn; i++) {
        const struct q_func *q = &fn[i];
        json_t *j = ranked_row(m, q->name, q->file, q->fn_line, NULL, q->self, q->total);
        if (q->native) {
            /* a native function (Python ones have no "native" key, as
             * before native frames): named by its module and offset when
             * no symbol covers it */
            char addr[32];
            snprintf(addr, sizeof addr, "0x%llx", (unsigned long long)q->address);
            const char *fname = model_str(m, q->name);
            json_object_set_new(j, "function", strcmp(fname, "??") ? jstr(fname) : json_null());
            json_object_set_new(j, "file", json_null());
            json_object_set_new(j, "line", json_null());
            json_object_set_new(j, "native", json_true());
            json_object_set_new(j, "module", jstr(model_str(m, q->file)));
            json_object_set_new(j, "address", json_string(addr));
        }
        json_array_append_new(funcs, j);
    }
    if (o->lines) {
        json_t *lines = json_array();
        for (size_t i = 0; i < gr->nln; i++) {
            const struct q_line *q = &gr->ln[i];
            json_t *j = ranked_row(m, q->name, q->file, q->line, &q->fn_line, q->self, q->total);
            if (q->native) {
                /* a native frame: as its function row, with its DWARF
                 * source line when the recording has one */
                char addr[32];
                snprintf(addr, sizeof addr, "0x%llx", (unsigned long long)q->address);
                const char *fname = model_str(m, q->name), *src = model_str(m, q->file);
                json_object_set_new(j, "function", strcmp(fname, "??") ? jstr(fname) : json_null());
                json_object_set_new(j, "file", *src ? jstr(src) : json_null());
                json_object_set_new(j, "line", q->line > 0 ? json_integer(q->line) : json_null());
                json_object_set_new(j, "fn_line", json_null());
                json_object_set_new(j, "native", json_true());
                json_object_set_new(j, "module", jstr(model_str(m, q->module)));
                json_object_set_new(j, "address", json_string(addr));
            }
            json_array_append_new(lines, j);
        }
        json_object_set_new(root, "lines", lines);
    }
    json_t *procs = json_array();
    for (size_t i = 0; i < m->nprocs; i++) {
        const struct m_process *p = &m->procs[i];
        if (o->pid && p->pid != o->pid)
            continue;
        struct q_gil g;
        query_gil_pid(m, p->pid, &g);
        uint64_t samples = 0, nthr = 0;
        double wall = 0, cpu = 0;
        for (size_t k = 0; k < nth; k++)
            if (m->threads[th[k].thread].pid == p->pid) {
                nthr++;
                samples += th[k].samples;
                wall += th[k].wall_s;
                cpu += th[k].cpu_s;
            }
        json_t *j = json_object(), *jg = json_object();
        json_object_set_new(j, "pid", json_integer(p->pid));
        json_object_set_new(j, "ppid", json_integer(p->ppid));
        json_object_set_new(j, "cmd", jstr(p->cmd));
        json_object_set_new(j, "threads", json_integer((json_int_t)nthr));
        json_object_set_new(j, "samples", json_integer((json_int_t)samples));
        json_object_set_new(j, "wall_s", json_real(wall));
        json_object_set_new(j, "cpu_s", json_real(cpu));
        json_object_set_new(jg, "held_pct", json_real(g.held_pct));
        json_object_set_new(jg, "contended_pct", json_real(g.contended_pct));
        json_object_set_new(jg, "mean_waiters", json_real(g.mean_waiters));
        json_object_set_new(jg, "switches", json_integer((json_int_t)g.switches));
        json_object_set_new(jg, "wait_s", json_real(g.wait_s));
        json_object_set_new(jg, "holder_offcpu_pct", json_real(pct(g.held_offcpu_s, g.held_s)));
        json_object_set_new(j, "gil", jg);
        json_array_append_new(procs, j);
    }
    json_object_set_new(root, "processes", procs);
    json_object_set_new(root, "threads", threads);
    json_object_set_new(root, "green_threads", greens);
    json_object_set_new(root, "functions", funcs);
    /* errors by kind; a recording older than the breakdown has only "all" */
    json_t *errs = json_object();
    static const char *const ekeys[][2] = { { "errors", "all" }, { "errors_stack", "stack" },
                                            { "errors_thread", "thread" }, { "errors_list", "list" },
                                            { "errors_names", "names" }, { "errors_other", "other" } };
    for (size_t i = 0; i < sizeof ekeys / sizeof *ekeys; i++) {
        const char *v = model_meta(m, ekeys[i][0]);
        if (v)
            json_object_set_new(errs, ekeys[i][1], json_integer((json_int_t)strtoll(v, NULL, 10)));
    }
    json_object_set_new(root, "errors", errs);
    {
        const char *v = model_meta(m, "span_races");
        json_object_set_new(root, "span_races", json_integer(v ? (json_int_t)strtoll(v, NULL, 10) : 0));
    }
    json_t *spans = json_array();
    for (size_t i = 0; i < gr->nsp; i++) {
        const struct q_span *q = &gr->sp[i];
        const struct m_span *s = model_span(m, q->span);
        if (!s || (o->span && q->span != o->span))
            continue;
        json_t *j = json_object();
        json_object_set_new(j, "id", json_integer(q->span));
        json_object_set_new(j, "span_id", json_string(s->span_id));
        json_object_set_new(j, "trace_id", json_string(s->trace_id));
        json_object_set_new(j, "parent_id", json_string(s->parent_id));
        json_object_set_new(j, "name", jstr(s->name));
        json_object_set_new(j, "duration_s", json_real((double)(s->end_us - s->start_us) / 1e6));
        json_object_set_new(j, "samples", json_integer((json_int_t)q->samples));
        json_object_set_new(j, "wall_s", json_real(q->wall_s));
        json_object_set_new(j, "cpu_s", json_real(q->cpu_s));
        json_object_set_new(j, "gil_pct", json_real(pct(q->state_s[STATE_GIL], q->wall_s)));
        json_object_set_new(j, "gil_wait_pct", json_real(pct(q->state_s[STATE_GIL_WAIT], q->wall_s)));
        json_object_set_new(j, "nogil_pct", json_real(pct(q->state_s[STATE_NOGIL], q->wall_s)));
        json_object_set_new(j, "idle_pct", json_real(pct(q->state_s[STATE_IDLE], q->wall_s)));
        json_array_append_new(spans, j);
    }
    json_object_set_new(root, "spans", spans);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    int rc = !text || textesc_json_write(text, strlen(text), f); /* C1, bidi controls as \u escapes */
    free(text);
    fputc('\n', f);
    json_decref(root);
    return rc ? -EIO : 0;
}

static const char *metric_name(enum q_metric k)
{
    return k == Q_CPU ? "CPU" : k == Q_GIL ? "GIL-held" : "wall";
}

static int cmp_green_func(const void *a, const void *b, void *ctx)
{
    const struct model *m = ctx;
    const struct q_green *x = a, *y = b;
    int c = strcmp(m->greens[x->green].func, m->greens[y->green].func);
    return c ? c : (int)x->green - (int)y->green;
}

/* One row per green thread, or per coroutine / run function when there
 * are many: count, summed samples and times, and shares of the summed
 * wall time. */
static void write_green_text(FILE *f, const struct model *m, const struct report_opts *o,
                             const struct green_rows *gr)
{
    struct q_green *rows = malloc((gr->n + 1) * sizeof *rows);
    size_t n = 0;
    if (!rows)
        return;
    for (size_t i = 0; i < gr->n; i++) {
        const struct m_green *g = &m->greens[gr->g[i].green];
        if ((o->green && gr->g[i].green != o->green) || (o->thread && g->thread != o->thread) ||
            (o->pid && g->pid != o->pid))
            continue;
        rows[n++] = gr->g[i];
    }
    if (!n) {
        free(rows);
        return;
    }
    int grouped = n > GREEN_ROWS_MAX;
    char b1[256], b2[256];
    fprintf(f, "\n%-24s %8s %8s %8s %9s %9s %6s %6s %6s %6s %6s  %s\n",
            grouped ? "GREEN THREADS" : "TASK / GREENLET", grouped ? "COUNT" : "ID", "TID", "SAMPLES",
            "WALL s", "CPU s", "%RUN", "%GIL", "%WAIT", "%NOGIL", "%IDLE", "FUNCTION");
    if (grouped)
        qsort_r(rows, n, sizeof *rows, cmp_green_func, (void *)m);
    for (size_t i = 0; i < n;) {
        struct q_green sum = rows[i];
        size_t j = i + 1;
        int same_thread = 1;
        while (grouped && j < n &&
               !strcmp(m->greens[rows[j].green].func, m->greens[rows[i].green].func)) {
            sum.samples += rows[j].samples;
            sum.wall_s += rows[j].wall_s;
            sum.cpu_s += rows[j].cpu_s;
            sum.running_s += rows[j].running_s;
            for (int k = 0; k < STATE_COUNT; k++)
                sum.state_s[k] += rows[j].state_s[k];
            same_thread &= m->greens[rows[j].green].thread == m->greens[rows[i].green].thread;
            j++;
        }
        const struct m_green *g = &m->greens[rows[i].green];
        char idcol[32], label[96];
        snprintf(idcol, sizeof idcol, "%zu", grouped ? j - i : (size_t)rows[i].green);
        snprintf(label, sizeof label, "%s %s", green_kind_name(g->kind),
                 grouped ? "" : (*g->name ? g->name : "?"));
        fprintf(f, "%-24.24s %8s %8d %8llu %9.3f %9.3f %6.1f %6.1f %6.1f %6.1f %6.1f  %s\n",
                textesc_str(label, b1, sizeof b1), idcol,
                g->thread && same_thread ? m->threads[g->thread].tid : 0,
                (unsigned long long)sum.samples, sum.wall_s, sum.cpu_s, pct(sum.running_s, sum.wall_s),
                pct(sum.state_s[STATE_GIL], sum.wall_s), pct(sum.state_s[STATE_GIL_WAIT], sum.wall_s),
                pct(sum.state_s[STATE_NOGIL], sum.wall_s), pct(sum.state_s[STATE_IDLE], sum.wall_s),
                *g->func ? textesc_str(g->func, b2, sizeof b2) : "?");
        i = j;
    }
    fputs("(%RUN: share of its life it was the one running on its thread; %GIL..%IDLE: its\n"
          " thread's states while it ran; %IDLE while running = blocking its event loop)\n",
          f);
    const char *period = model_meta(m, "green_suspended_period_ms");
    const char *gerr = model_meta(m, "green_errors");
    if (period && atof(period) > 0) {
        fprintf(f, "(suspended tasks sampled every %.0f ms on average", atof(period));
        if (gerr && strtoull(gerr, NULL, 10))
            fprintf(f, "; %llu unreadable task entries skipped", strtoull(gerr, NULL, 10));
        fputs(")\n", f);
    }
    free(rows);
}

/* What the errors of the header were (recordings before the breakdown
 * have only the total). */
static void write_error_kinds(FILE *f, const struct model *m)
{
    static const struct {
        const char *key, *what;
    } kinds[] = {
        { "errors_stack", "stacks changed while read (sample kept, stack cut)" },
        { "errors_thread", "threads not placed (no id yet, or too many)" },
        { "errors_list", "thread lists unreadable (changing)" },
        { "errors_names", "thread name reads failed" },
        { "errors_other", "out of memory" },
    };
    const char *all = model_meta(m, "errors");
    if (!all || !strtoull(all, NULL, 10))
        return;
    const char *sep = "Errors: ";
    int any = 0;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
        const char *v = model_meta(m, kinds[i].key);
        unsigned long long n = v ? strtoull(v, NULL, 10) : 0;
        if (!n)
            continue;
        fprintf(f, "%s%llu %s", sep, n, kinds[i].what);
        sep = ", ";
        any = 1;
    }
    if (any)
        fputs(" (the target runs on while it is read: see README, Errors)\n\n", f);
}

/* The GIL summary g under the heading head ("GIL", "GIL of process 42"). */
static void write_gil(FILE *f, const char *head, const struct q_gil *g)
{
    fprintf(f, "\n%s: held %.1f%% of the time, contended %.1f%% (%.2f waiting threads on average),\n"
               "     %llu switches (%.0f/s), %.3f s spent waiting for it in all threads\n",
            head, g->held_pct, g->contended_pct, g->mean_waiters, (unsigned long long)g->switches,
            g->duration_s > 0 ? (double)g->switches / g->duration_s : 0.0, g->wait_s);
    fprintf(f, "     holder off CPU %.1f%% of the time it held the GIL (%.3f s: preempted or blocked\n"
               "     in a system call with the GIL held, stalling every thread that needs it)\n",
            pct(g->held_offcpu_s, g->held_s), g->held_offcpu_s);
}

/* The thread table. Threads of one process whose names share a pattern
 * (a thread per request: Thread-N (process_request_thread)) are one row
 * with their count and their sums once there are TGROUP_MIN of them
 * (ui/tgroup.h), unless o->all_threads or a thread was asked for. Names
 * are shown whole up to REPORT_NAME_MAX columns. */
#define REPORT_NAME_MAX 48
static void write_thread_rows(FILE *f, const struct model *m, const struct report_opts *o,
                              const struct q_thread *th, size_t nth)
{
    int *pids = malloc((nth + 1) * sizeof *pids);
    const char **names = malloc((nth + 1) * sizeof *names);
    size_t *head = malloc((nth + 1) * sizeof *head), *members = calloc(nth + 1, sizeof *members);
    long ngroups = 0;
    int grouping = pids && names && head && members && !o->all_threads && !o->thread;
    char b1[512];
    int width = 24;
    for (size_t i = 0; i < nth; i++) {
        const struct m_thread *mt = &m->threads[th[i].thread];
        const char *nm = mt->name && *mt->name ? textesc_str(mt->name, b1, sizeof b1) : "?";
        int len = (int)strlen(nm);
        if (grouping) {
            pids[i] = mt->pid;
            names[i] = mt->name;
        }
        if (len > width)
            width = len < REPORT_NAME_MAX ? len : REPORT_NAME_MAX;
    }
    if (grouping && (ngroups = tgroup_find(pids, names, nth, TGROUP_MIN, head)) <= 0)
        grouping = 0;
    for (size_t i = 0; grouping && i < nth; i++)
        members[head[i]]++;
    fprintf(f, "%-*s %8s %8s %8s %9s %9s %7s %7s %7s %7s\n", width, "THREAD", "PID", "TID", "SAMPLES", "WALL s",
            "CPU s", "%GIL", "%WAIT", "%NOGIL", "%IDLE");
    for (size_t i = 0; i < nth; i++) {
        const struct q_thread *t = &th[i];
        const struct m_thread *mt = &m->threads[t->thread];
        if ((o->thread && t->thread != o->thread) || (o->pid && mt->pid != o->pid) ||
            (grouping && head[i] != i))
            continue;
        size_t k = grouping ? members[i] : 1;
        if (k > 1) { /* the head of a group: the group's row */
            struct q_thread sum = { 0 };
            for (size_t j = i; j < nth; j++) {
                if (head[j] != i)
                    continue;
                sum.samples += th[j].samples;
                sum.wall_s += th[j].wall_s;
                sum.cpu_s += th[j].cpu_s;
                for (int s = 0; s < STATE_COUNT; s++)
                    sum.state_s[s] += th[j].state_s[s];
            }
            char pat[160], esc[TEXTESC_SIZE(160)], cnt[24];
            tgroup_pattern(mt->name, pat, sizeof pat);
            const char *label = textesc_str(pat, esc, sizeof esc);
            snprintf(cnt, sizeof cnt, "x%zu", k);
            fprintf(f, "%-*.*s %8d %8s %8llu %9.3f %9.3f %7.1f %7.1f %7.1f %7.1f\n", width, width, label, mt->pid,
                    cnt, (unsigned long long)sum.samples, sum.wall_s, sum.cpu_s,
                    pct(sum.state_s[STATE_GIL], sum.wall_s), pct(sum.state_s[STATE_GIL_WAIT], sum.wall_s),
                    pct(sum.state_s[STATE_NOGIL], sum.wall_s), pct(sum.state_s[STATE_IDLE], sum.wall_s));
            continue;
        }
        fprintf(f, "%-*.*s %8d %8d %8llu %9.3f %9.3f %7.1f %7.1f %7.1f %7.1f\n", width, width,
                mt->name && *mt->name ? textesc_str(mt->name, b1, sizeof b1) : "?", mt->pid, mt->tid,
                (unsigned long long)t->samples,
                t->wall_s, t->cpu_s, pct(t->state_s[STATE_GIL], t->wall_s),
                pct(t->state_s[STATE_GIL_WAIT], t->wall_s), pct(t->state_s[STATE_NOGIL], t->wall_s),
                pct(t->state_s[STATE_IDLE], t->wall_s));
    }
    if (grouping && ngroups)
        fprintf(f, "(%ld group%s of threads named alike, N for their numbers, TID xCOUNT: their sums;"
                   " --threads all lists each)\n", ngroups, ngroups > 1 ? "s" : "");
    free(pids);
    free(names);
    free(head);
    free(members);
}

static void write_text(FILE *f, const struct model *m, const struct report_opts *o,
                       const struct q_thread *th, size_t nth, const struct green_rows *gr,
                       const struct q_func *fn, size_t nfn)
{
    const char *cmd = model_meta(m, "cmd"), *ver = model_meta(m, "python_version");
    const char *pid = model_meta(m, "pid"), *rate = model_meta(m, "rate_hz");
    const char *errs = model_meta(m, "errors");
    struct q_gil g;
    query_gil_pid(m, o->pid, &g);
    int many = m->nprocs > 1 && !o->pid; /* several processes, several GILs */
    /* every string of a recording is untrusted: shown escaped (common/textesc.h) */
    char b1[256], b2[64], b3[64], b4[64];
    fprintf(f, "Process %s: ", pid ? textesc_str(pid, b1, sizeof b1) : "?");
    textesc_fputs(cmd ? cmd : "?", f);
    fprintf(f, "\nPython %s, %.2f s at %s Hz, %zu samples, %s errors\n\n",
            ver ? textesc_str(ver, b2, sizeof b2) : "?", g.duration_s,
            rate ? textesc_str(rate, b3, sizeof b3) : "?", m->nsamples,
            errs ? textesc_str(errs, b4, sizeof b4) : "0");
    write_error_kinds(f, m);
    {
        const char *v = model_meta(m, "span_races");
        unsigned long long n = v ? strtoull(v, NULL, 10) : 0;
        if (n)
            fprintf(f, "Spans: %llu samples carry no span (a task or greenlet switch raced their stack "
                    "read; see README)\n\n", n);
    }

    if (m->nprocs > 1) {
        /* each process: its command, and its own GIL's figures */
        fprintf(f, "%8s %8s %7s %8s %9s %7s %7s %9s  %s\n", "PID", "PPID", "THREADS", "SAMPLES", "CPU s",
                "%HELD", "%CONT", "SWITCHES", "COMMAND");
        for (size_t i = 0; i < m->nprocs; i++) {
            const struct m_process *p = &m->procs[i];
            if (o->pid && p->pid != o->pid)
                continue;
            struct q_gil pg;
            query_gil_pid(m, p->pid, &pg);
            unsigned long long samples = 0, nthr = 0;
            double cpu = 0;
            for (size_t k = 0; k < nth; k++)
                if (m->threads[th[k].thread].pid == p->pid) {
                    nthr++;
                    samples += th[k].samples;
                    cpu += th[k].cpu_s;
                }
            fprintf(f, "%8d %8d %7llu %8llu %9.3f %7.1f %7.1f %9llu  ", p->pid, p->ppid, nthr, samples, cpu,
                    pg.held_pct, pg.contended_pct, (unsigned long long)pg.switches);
            textesc_fputs(*p->cmd ? p->cmd : "?", f);
            fputc('\n', f);
        }
        fputs("(%HELD, %CONT: share of the process's ticks its GIL was held, contended)\n\n", f);
    }

    write_thread_rows(f, m, o, th, nth);

    write_green_text(f, m, o, gr);

    /* spans the recording carries: their samples' states */
    int span_head = 0;
    for (size_t i = 0; i < gr->nsp; i++) {
        const struct q_span *q = &gr->sp[i];
        const struct m_span *s = model_span(m, q->span);
        if (!s || (o->span && q->span != o->span))
            continue;
        if (!span_head++)
            fprintf(f, "\n%6s %-16s %-24s %8s %9s %9s %7s %7s %7s %7s\n", "ID", "SPAN ID", "SPAN", "SAMPLES",
                    "WALL s", "CPU s", "%GIL", "%WAIT", "%NOGIL", "%IDLE");
        fprintf(f, "%6u %-16s %-24.24s %8llu %9.3f %9.3f %7.1f %7.1f %7.1f %7.1f\n", q->span, s->span_id,
                textesc_str(s->name, b1, sizeof b1), (unsigned long long)q->samples, q->wall_s, q->cpu_s,
                pct(q->state_s[STATE_GIL], q->wall_s), pct(q->state_s[STATE_GIL_WAIT], q->wall_s),
                pct(q->state_s[STATE_NOGIL], q->wall_s), pct(q->state_s[STATE_IDLE], q->wall_s));
    }

    /* every process has its own GIL: one summary each, never an average */
    for (size_t i = 0; i < (many ? m->nprocs : 1); i++) {
        char head[64] = "GIL";
        if (many) {
            query_gil_pid(m, m->procs[i].pid, &g);
            snprintf(head, sizeof head, "GIL of process %d", m->procs[i].pid);
        }
        write_gil(f, head, &g);
    }

    double total = 0;
    for (size_t i = 0; i < gr->nsp && o->span; i++)
        if (gr->sp[i].span == o->span)
            total += o->mode == Q_CPU ? gr->sp[i].cpu_s
                   : o->mode == Q_GIL ? gr->sp[i].state_s[STATE_GIL] : gr->sp[i].wall_s;
    for (size_t i = 0; i < nth && !o->green && !o->span; i++)
        if ((!o->thread || th[i].thread == o->thread) &&
            (!o->pid || m->threads[th[i].thread].pid == o->pid))
            total += o->mode == Q_CPU ? th[i].cpu_s
                   : o->mode == Q_GIL ? th[i].state_s[STATE_GIL] : th[i].wall_s;
    for (size_t i = 0; i < gr->n && o->green && !o->span; i++)
        if (gr->g[i].green == o->green)
            total += o->mode == Q_CPU ? gr->g[i].cpu_s
                   : o->mode == Q_GIL ? gr->g[i].state_s[STATE_GIL] : gr->g[i].wall_s;
    char label[160] = "all threads";
    const struct m_span *lsp = o->span ? model_span(m, o->span) : NULL;
    if (o->span)
        snprintf(label, sizeof label, "span %u %s", o->span, lsp ? lsp->name : "");
    else if (o->green)
        model_green_label(m, o->green, label, sizeof label);
    else if (o->thread)
        model_thread_label(m, o->thread, label, sizeof label);
    else if (o->pid)
        snprintf(label, sizeof label, "process %d", o->pid);
    fprintf(f, "\nTop %s by %s time (%s, %.3f s), ranked by %s time:\n", o->lines ? "lines" : "functions",
            metric_name(o->mode), textesc_str(label, b1, sizeof b1), total, o->sort_total ? "total" : "self");
    fprintf(f, "%7s %9s %7s %9s  %s\n", "%SELF", "SELF s", "%TOTAL", "TOTAL s",
            "FUNCTION (FILE:LINE)");
    size_t shown = 0;
    size_t nrows = o->lines ? gr->nln : nfn;
    for (size_t i = 0; i < nrows && (!o->limit || shown < (size_t)o->limit); i++) {
        /* a line (--lines) or a function: the same columns */
        const struct q_line *l = o->lines ? &gr->ln[i] : NULL;
        const struct q_func *q = o->lines ? NULL : &fn[i];
        const double *self = l ? l->self : q->self, *tot = l ? l->total : q->total;
        if (tot[o->mode] <= 0)
            continue;
        fprintf(f, "%7.1f %9.3f %7.1f %9.3f  ", pct(self[o->mode], total), self[o->mode],
                pct(tot[o->mode], total), tot[o->mode]);
        textesc_fputs(model_str(m, l ? l->name : q->name), f);
        fputs(" (", f);
        if ((q && q->native) || (l && l->native)) {
            /* function (module+0xOFFSET), as dump --native prints it; a
             * line row adds its DWARF source line when there is one */
            char where[512];
            model_native_where(m, q ? q->file : l->module, q ? q->address : l->address, where,
                               sizeof where);
            textesc_fputs(where, f);
            fputc(')', f);
            if (l && l->line > 0 && *model_str(m, l->file)) {
                fputs(" at ", f);
                textesc_fputs(model_str(m, l->file), f);
                fprintf(f, ":%d", l->line);
            }
            fputc('\n', f);
            shown++;
            continue;
        }
        textesc_fputs(model_str(m, l ? l->file : q->file), f);
        fprintf(f, ":%d)\n", l ? l->line : q->fn_line);
        shown++;
    }
    if (!shown)
        fprintf(f, "  (no samples with %s time)\n", metric_name(o->mode));
}

int report_write(FILE *f, const struct model *m, const struct report_opts *o)
{
    struct q_thread *th = NULL;
    struct q_func *fn = NULL;
    struct q_green *gs = NULL;
    struct q_span *sp = NULL;
    size_t nth = 0, nfn = 0, ngs = 0, nsp = 0;
    struct ct_filter flt = { .thread = o->green ? 0 : o->thread, .green = o->green, .span = o->span,
                             .pid = o->pid };
    int rc = query_threads(m, &th, &nth);
    if (!rc)
        rc = query_greens(m, &gs, &ngs);
    if (!rc)
        rc = query_spans(m, &sp, &nsp);
    if (!rc)
        rc = query_functions(m, &flt, o->mode, !o->sort_total, &fn, &nfn);
    struct q_line *ln = NULL;
    size_t nln = 0;
    if (!rc && o->lines)
        rc = query_lines(m, &flt, o->mode, !o->sort_total, &ln, &nln);
    if (!rc) {
        struct green_rows gr = { .ln = ln, .nln = nln, .sp = sp, .nsp = nsp, .g = gs, .n = ngs };
        if (o->json)
            rc = write_json(f, m, o, th, nth, &gr, fn, nfn);
        else
            write_text(f, m, o, th, nth, &gr, fn, nfn);
    }
    free(th);
    free(gs);
    free(sp);
    free(fn);
    free(ln);
    return rc;
}
