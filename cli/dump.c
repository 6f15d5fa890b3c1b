/* sonde dump: the Python stack of every thread of a live process, once. */
#include "cli/cli.h"

#include "common/err.h"
#include "common/textesc.h"
#include "tracer/native/merge.h"
#include "tracer/snapshot.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <time.h>

static void dump_usage(FILE *f)
{
    fputs("usage: sonde dump -p PID [--json] [--qualname] [--no-tasks] [--native [--native-all]]\n"
          "  -p, --pid PID    process to read (never paused or written to, but by --native)\n"
          "  -j, --json       print JSON: {pid, python_version, threads: [{tid, name, gil,\n"
          "                   frames: [{function, file, line}]}], green_threads: [{id, kind,\n"
          "                   name, tid, running, awaited_by: [id...], frames}]}, frames\n"
          "                   innermost first\n"
          "  -q, --qualname   print qualified names (Class.method) where Python has them\n"
          "      --no-tasks   do not read asyncio tasks\n"
          "      --native     native (C) frames too, stopping each thread for an instant\n"
          "                   with ptrace: {function, file, line, native: true, module,\n"
          "                   address}; the interpreter's evaluation loop is replaced by\n"
          "                   the Python frames it runs\n"
          "      --native-all also the interpreter's own native frames\n",
          f);
}

static void frame_info(struct py_runtime *rt, const struct py_rawframe *f, int qual,
                       const char **fn, const char **file, int *line)
{
    const struct py_code *co = py_code_get(rt, f->code);
    if (!co) {
        *fn = "<unknown>";
        *file = "<unknown>";
        *line = 0;
        return;
    }
    *fn = qual ? co->qualname : co->name;
    *file = co->file;
    *line = py_code_line(rt, co, f->addr);
}

/* asyncio tasks by id (sorted), and which tasks await each. */
struct task_index {
    int n;
    int *by_id;        /* task indices sorted by id */
    int *waiters_at;   /* waiters of task i: waiters[waiters_at[i] .. waiters_at[i + 1]) */
    int *waiters;
};

static const struct py_task *sort_tasks;

static int cmp_id(const void *a, const void *b)
{
    uint64_t x = sort_tasks[*(const int *)a].id, y = sort_tasks[*(const int *)b].id;
    return x < y ? -1 : x > y;
}

static int task_find(const struct task_index *ix, const struct py_task *t, uint64_t id)
{
    int lo = 0, hi = ix->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        uint64_t v = t[ix->by_id[mid]].id;
        if (v == id)
            return ix->by_id[mid];
        if (v < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static void task_index_fini(struct task_index *ix)
{
    free(ix->by_id);
    free(ix->waiters_at);
    free(ix->waiters);
}

static int task_index_init(struct task_index *ix, const struct snapshot *s)
{
    int n = s->ntasks, total = 0;
    const struct py_task *t = s->tasks;
    memset(ix, 0, sizeof *ix);
    ix->n = n;
    ix->by_id = malloc(sizeof(int) * (size_t)(n + 1));
    ix->waiters_at = calloc((size_t)n + 2, sizeof(int));
    for (int i = 0; i < n; i++)
        total += t[i].nawaits;
    ix->waiters = malloc(sizeof(int) * (size_t)(total + 1));
    if (!ix->by_id || !ix->waiters_at || !ix->waiters) {
        task_index_fini(ix);
        return -1;
    }
    for (int i = 0; i < n; i++)
        ix->by_id[i] = i;
    sort_tasks = t;
    qsort(ix->by_id, (size_t)n, sizeof(int), cmp_id);
    /* count, prefix sums, fill */
    int *cnt = ix->waiters_at + 1;
    for (int i = 0; i < n; i++)
        for (int a = 0; a < t[i].nawaits; a++) {
            int j = task_find(ix, t, t[i].awaits[a]);
            if (j >= 0)
                cnt[j]++;
        }
    for (int i = 0; i < n; i++)
        ix->waiters_at[i + 1] += ix->waiters_at[i];
    int *fill = calloc((size_t)n + 1, sizeof(int));
    if (!fill) {
        task_index_fini(ix);
        return -1;
    }
    for (int i = 0; i < n; i++)
        for (int a = 0; a < t[i].nawaits; a++) {
            int j = task_find(ix, t, t[i].awaits[a]);
            if (j >= 0)
                ix->waiters[ix->waiters_at[j] + fill[j]++] = i;
        }
    free(fill);
    return 0;
}

static json_t *frames_json(struct py_runtime *rt, const struct py_rawframe *fr, int n, int qual)
{
    json_t *arr = json_array();
    for (int k = 0; k < n; k++) {
        const char *fn, *file;
        int line;
        frame_info(rt, &fr[k], qual, &fn, &file, &line);
        json_t *f = json_object();
        json_object_set_new(f, "function", json_string(fn));
        json_object_set_new(f, "file", json_string(file));
        json_object_set_new(f, "line", json_integer(line));
        json_array_append_new(arr, f);
    }
    return arr;
}

static json_t *tasks_json(struct snapshot *s, const struct task_index *ix, int qual)
{
    json_t *arr = json_array();
    for (int i = 0; i < s->ntasks; i++) {
        const struct py_task *t = &s->tasks[i];
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer((json_int_t)t->id));
        json_object_set_new(o, "kind", json_string("task"));
        json_object_set_new(o, "name", json_string(t->name));
        json_object_set_new(o, "tid", json_integer(t->tid));
        json_object_set_new(o, "running", json_boolean(t->running));
        json_t *by = json_array();
        for (int w = ix->waiters_at[i]; w < ix->waiters_at[i + 1]; w++)
            json_array_append_new(by, json_integer((json_int_t)s->tasks[ix->waiters[w]].id));
        json_object_set_new(o, "awaited_by", by);
        json_object_set_new(o, "frames", frames_json(&s->rt, t->frames, t->nframes, qual));
        json_array_append_new(arr, o);
    }
    return arr;
}

static void task_text(struct snapshot *s, const struct task_index *ix, const struct py_task *t,
                      int qual)
{
    printf("\n  Task \"");
    textesc_fputs(t->name, stdout);
    printf("\" (id 0x%llx) %s", (unsigned long long)t->id, t->running ? "running" : "suspended");
    for (int a = 0; a < t->nawaits; a++) {
        int j = task_find(ix, s->tasks, t->awaits[a]);
        fputs(a ? ", \"" : ", awaiting \"", stdout);
        textesc_fputs(j >= 0 ? s->tasks[j].name : "?", stdout);
        fputs("\"", stdout);
    }
    fputc('\n', stdout);
    if (!t->nframes)
        printf("      (no Python frames)\n");
    for (int k = 0; k < t->nframes; k++) {
        const char *fn, *file;
        int line;
        frame_info(&s->rt, &t->frames[k], qual, &fn, &file, &line);
        fputs("      ", stdout);
        textesc_fputs(fn, stdout);
        fputs(" (", stdout);
        textesc_fputs(file, stdout);
        printf(":%d)\n", line);
    }
    if (t->truncated)
        printf("      ... (stack truncated)\n");
}

/* The name of a native frame for text: its function, else "??". */
static const char *native_name(const struct nat_sym *y)
{
    return y->function ? y->function : "??";
}

static const char *base_name(const char *path)
{
    const char *b = path ? strrchr(path, '/') : NULL;
    return b ? b + 1 : path ? path : "??";
}

/* Thread d's merged stack (native and Python, innermost first) into out;
 * the symbols of its native frames into sym (NAT_MAX_DEPTH of them).
 * Returns the count. */
static int native_merged(struct snapshot *s, struct snapshot_thread *d, int all,
                         const struct nat_sym **sym, struct nat_merged *out, int max,
                         int *unmatched)
{
    for (int k = 0; k < d->nnative; k++) {
        sym[k] = nat_symbolize(s->nat, d->native[k].pc, d->native[k].activation, 0);
        if (all || (!sym[k]->is_interp && !sym[k]->is_eval))
            sym[k] = nat_symbolize(s->nat, d->native[k].pc, d->native[k].activation, 1);
    }
    return nat_merge(sym, d->nnative, d->frames, d->nframes, all, out, max, unmatched);
}

static json_t *native_frame_json(const struct nat_sym *y, uint64_t pc)
{
    char addr[32];
    snprintf(addr, sizeof addr, "0x%llx", (unsigned long long)pc);
    json_t *f = json_object();
    json_object_set_new(f, "function", y->function ? json_string(y->function) : json_null());
    json_object_set_new(f, "file", y->file ? json_string(y->file) : json_null());
    json_object_set_new(f, "line", y->line > 0 ? json_integer(y->line) : json_null());
    json_object_set_new(f, "native", json_true());
    json_object_set_new(f, "module", y->module ? json_string(y->module) : json_null());
    json_object_set_new(f, "address", json_string(addr));
    return f;
}

static const char *native_error(int rc)
{
    switch (rc) {
    case SE_EXITED: return "the thread ended";
    case SE_PERM: return "cannot trace the thread (traced by another process, or not allowed)";
    case -ETIMEDOUT: return "the thread did not stop in time";
    default: return "cannot read its registers";
    }
}

/* Hidden --repeat N (scripts/bench): read every thread and its whole stack
 * again N times, resolving each frame to name, file and line as a dump
 * does, and print the time per dump and per thread stack on stderr. */
static void bench_repeat(struct snapshot *snap, int repeat, int qual)
{
    struct py_runtime *rt = &snap->rt;
    struct py_thread *threads = snap->list;
    int cap = snap->list_cap;
    struct py_rawframe *scratch = malloc(PY_MAX_DEPTH * sizeof *scratch);
    if (!scratch)
        return;
    struct timespec t0, t1;
    long frames = 0, nthreads = 0;
    unsigned sink = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int r = 0; r < repeat; r++) {
        int n = py_threads_read(rt, threads, cap);
        if (n < 0)
            break;
        nthreads += n;
        for (int i = 0; i < n; i++) {
            int truncated;
            int k = py_stack_read(rt, threads[i].tstate, threads[i].ts, scratch, PY_MAX_DEPTH,
                                  &truncated);
            for (int j = 0; j < k; j++) {
                const char *fn, *file;
                int line;
                frame_info(rt, &scratch[j], qual, &fn, &file, &line);
                sink += (unsigned)line + (unsigned char)fn[0] + (unsigned char)file[0];
            }
            frames += k > 0 ? k : 0;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    free(scratch);
    double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 1e3;
    fprintf(stderr,
            "bench: %d dumps, %.1f threads and %.1f frames per dump: %.2f us per dump, "
            "%.2f us per thread stack, %.3f us per frame (%u)\n",
            repeat, (double)nthreads / repeat, (double)frames / repeat, us / repeat,
            nthreads ? us / (double)nthreads : 0.0, frames ? us / (double)frames : 0.0, sink & 1);
}

struct bench_py {
    struct py_runtime *rt;
    uint64_t tstate;
    struct py_rawframe *out;
    struct nat_unwinder *u;
    struct nat_capture *c;
};

static int bench_read_python(void *arg)
{
    struct bench_py *b = arg;
    int trunc;
    nat_check_pc(b->u, b->c); /* as the sampler does while the thread is stopped */
    py_stack_read(b->rt, b->tstate, NULL, b->out, PY_MAX_DEPTH, &trunc);
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Hidden --repeat N with --native (scripts/bench native): N native samples
 * of every thread as `record --native` would take them (stop, registers,
 * stack copy, Python stack, resume, unwind), and on stderr the pause per
 * sample (median, p99, max): from seeing the thread stopped to the resume,
 * and from the interrupt to the resume; then the unwind time. */
static void bench_native_repeat(struct snapshot *snap, int repeat)
{
    int n = snap->nthreads, total = repeat * n, k = 0;
    struct nat_capture *c = malloc(sizeof *c);
    struct py_rawframe *py = malloc(sizeof *py * PY_MAX_DEPTH);
    struct nat_frame *fr = malloc(sizeof *fr * NAT_MAX_DEPTH);
    int64_t *hold = malloc(sizeof *hold * (size_t)(total + 1));
    int64_t *pause = malloc(sizeof *pause * (size_t)(total + 1));
    if (!c || !py || !fr || !hold || !pause || !snap->nat)
        goto out;
    c->copy_want = 0; /* all of NAT_STACK_COPY (record copies what its unwinds read) */
    int64_t unwind_ns = 0, frames = 0, failed = 0, truncated = 0;
    char err[256];
    for (int r = 0; r < repeat; r++) {
        for (int i = 0; i < n; i++) {
            struct bench_py b = { &snap->rt, snap->threads[i].th.tstate, py, snap->nat, c };
            if (nat_capture(snap->rt.pid, snap->threads[i].th.tid, c, bench_read_python, &b, err,
                            sizeof err)) {
                failed++;
                continue;
            }
            hold[k] = c->hold_ns;
            pause[k++] = c->pause_ns;
            struct timespec t0, t1;
            int trunc;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            frames += nat_unwind(snap->nat, c, fr, NAT_MAX_DEPTH, &trunc);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            truncated += trunc != 0;
            unwind_ns += (t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec);
        }
    }
    if (!k)
        goto out;
    qsort(hold, (size_t)k, sizeof *hold, cmp_i64);
    qsort(pause, (size_t)k, sizeof *pause, cmp_i64);
    int p99 = (int)((double)k * 0.99);
    if (p99 >= k)
        p99 = k - 1;
    fprintf(stderr,
            "bench: %d native samples of %d threads (%lld failed, %lld truncated): pause "
            "median %.1f us p99 %.1f us max %.1f us; interrupt to resume median %.1f us p99 "
            "%.1f us; unwind %.1f us per sample, %.1f frames\n",
            k, n, (long long)failed, (long long)truncated, (double)hold[k / 2] / 1e3,
            (double)hold[p99] / 1e3, (double)hold[k - 1] / 1e3, (double)pause[k / 2] / 1e3,
            (double)pause[p99] / 1e3, (double)unwind_ns / k / 1e3, (double)frames / k);
out:
    free(c);
    free(py);
    free(fr);
    free(hold);
    free(pause);
}

int cmd_dump(int argc, char **argv)
{
    static const struct option opts[] = {
        { "pid", required_argument, NULL, 'p' },
        { "json", no_argument, NULL, 'j' },
        { "qualname", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "no-tasks", no_argument, NULL, 'T' },
        { "repeat", required_argument, NULL, 'R' }, /* hidden: scripts/bench */
        { "native", no_argument, NULL, 'N' },
        { "native-all", no_argument, NULL, 'A' },
        { 0, 0, 0, 0 },
    };
    int pid = 0, json = 0, qual = 0, repeat = 0, tasks = 1, native = 0, all = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":p:jqh", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (cli_opt_pid(optarg, &pid))
                return EXIT_USAGE;
            break;
        case 'j': json = 1; break;
        case 'q': qual = 1; break;
        case 'T': tasks = 0; break;
        case 'R': repeat = atoi(optarg); break;
        case 'N': native = 1; break;
        case 'A': native = all = 1; break;
        case 'h': dump_usage(stdout); return EXIT_OK;
        default: return cli_opt_bad("dump", c, argv, optind);
        }
    }
    if (optind != argc) {
        return cli_opt_extra("dump", argv[optind]);
    }
    if (!pid) {
        fputs("sonde: dump: which process? -p PID is required (see 'sonde dump --help')\n", stderr);
        return EXIT_USAGE;
    }

    char err[512] = "";
    struct snapshot snap;
    int rc = snapshot_take(&snap, pid, err, sizeof err);
    if (rc) {
        snapshot_free(&snap);
        return cli_error(rc, err);
    }
    struct timespec nt0, nt1, ntc;
    clock_gettime(CLOCK_MONOTONIC, &nt0);
    if (native && (rc = snapshot_native(&snap, err, sizeof err))) {
        snapshot_free(&snap);
        return cli_error(rc, err);
    }
    clock_gettime(CLOCK_MONOTONIC, &ntc);
    const struct nat_sym **sym = NULL;
    struct nat_merged *mg = NULL;
    if (native) {
        sym = malloc(sizeof *sym * NAT_MAX_DEPTH);
        mg = malloc(sizeof *mg * (NAT_MAX_DEPTH + PY_MAX_DEPTH));
        if (!sym || !mg) {
            free(sym);
            free(mg);
            snapshot_free(&snap);
            return cli_error(-ENOMEM, "out of memory");
        }
    }
    if (tasks && (rc = snapshot_tasks(&snap, err, sizeof err))) {
        free(sym);
        free(mg);
        snapshot_free(&snap);
        return cli_error(rc, err);
    }
    struct py_runtime *rt = &snap.rt;
    struct snapshot_thread *d = snap.threads;
    int n = snap.nthreads;
    struct task_index ix;
    if (task_index_init(&ix, &snap)) {
        free(sym);
        free(mg);
        snapshot_free(&snap);
        return cli_error(-ENOMEM, "out of memory");
    }

    if (json) {
        json_t *root = json_object();
        json_object_set_new(root, "pid", json_integer(pid));
        json_object_set_new(root, "python_version", json_string(rt->version));
        json_t *ths = json_array();
        for (int i = 0; i < n; i++) {
            json_t *t = json_object();
            json_object_set_new(t, "tid", json_integer(d[i].th.tid));
            json_object_set_new(t, "name", json_string(d[i].name));
            json_object_set_new(t, "gil", json_boolean(d[i].th.holds_gil));
            json_t *fr = json_array();
            int nm = 0, unmatched = 0;
            if (native)
                nm = native_merged(&snap, &d[i], all, sym, mg, NAT_MAX_DEPTH + PY_MAX_DEPTH,
                                   &unmatched);
            for (int m = 0; m < (native ? nm : d[i].nframes); m++) {
                if (native && mg[m].native) {
                    json_array_append_new(fr, native_frame_json(sym[mg[m].idx],
                                                                d[i].native[mg[m].idx].pc));
                    continue;
                }
                int k = native ? mg[m].idx : m;
                const char *fn, *file;
                int line;
                frame_info(rt, &d[i].frames[k], qual, &fn, &file, &line);
                json_t *f = json_object();
                json_object_set_new(f, "function", json_string(fn));
                json_object_set_new(f, "file", json_string(file));
                json_object_set_new(f, "line", json_integer(line));
                if (native)
                    json_object_set_new(f, "native", json_false());
                json_array_append_new(fr, f);
            }
            json_object_set_new(t, "frames", fr);
            if (native) {
                json_object_set_new(t, "native_truncated",
                                    json_boolean(d[i].native_truncated || d[i].native_rc));
                json_object_set_new(t, "native_error", d[i].native_rc
                                    ? json_string(native_error(d[i].native_rc)) : json_null());
                char e[32];
                snprintf(e, sizeof e, "%d", d[i].native_rc);
                if (getenv("SONDE_NATIVE_TIMING"))
                    json_object_set_new(t, "native_rc", json_string(e));
                json_object_set_new(t, "pause_us", json_real((double)d[i].pause_ns / 1e3));
            }
            json_array_append_new(ths, t);
        }
        json_object_set_new(root, "threads", ths);
        if (tasks)
            json_object_set_new(root, "green_threads", tasks_json(&snap, &ix, qual));
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (text) /* C1 and bidi controls as \u escapes (common/textesc.h) */
            textesc_json_write(text, strlen(text), stdout);
        free(text);
        fputc('\n', stdout);
        json_decref(root);
    } else {
        /* names, files and paths come from the target: shown escaped */
        printf("Process %d: Python ", pid);
        textesc_fputs(rt->version, stdout);
        fputs(" (", stdout);
        textesc_fputs(rt->binary, stdout);
        fputs(")\n", stdout);
        for (int i = 0; i < n; i++) {
            printf("\nThread %d \"", (int)d[i].th.tid);
            textesc_fputs(d[i].name[0] ? d[i].name : "?", stdout);
            printf("\"%s\n", d[i].th.holds_gil ? " [holds the GIL]" : "");
            int nm = 0, unmatched = 0;
            if (native)
                nm = native_merged(&snap, &d[i], all, sym, mg, NAT_MAX_DEPTH + PY_MAX_DEPTH,
                                   &unmatched);
            if (!d[i].nframes && !nm)
                printf("    (no Python frames)\n");
            for (int m = 0; m < (native ? nm : d[i].nframes); m++) {
                if (native && mg[m].native) {
                    const struct nat_sym *y = sym[mg[m].idx];
                    fputs("    ", stdout);
                    textesc_fputs(native_name(y), stdout);
                    fputs(" (", stdout);
                    textesc_fputs(base_name(y->module), stdout);
                    printf("+0x%llx)", (unsigned long long)y->offset);
                    if (y->file) {
                        fputs(" at ", stdout);
                        textesc_fputs(y->file, stdout);
                        printf(":%d", y->line);
                    }
                    fputc('\n', stdout);
                    continue;
                }
                int k = native ? mg[m].idx : m;
                const char *fn, *file;
                int line;
                frame_info(rt, &d[i].frames[k], qual, &fn, &file, &line);
                fputs("    ", stdout);
                textesc_fputs(fn, stdout);
                fputs(" (", stdout);
                textesc_fputs(file, stdout);
                printf(":%d)\n", line);
            }
            if (d[i].truncated)
                printf("    ... (stack truncated)\n");
            if (native && d[i].native_rc)
                printf("    ... (no native frames: %s)\n", native_error(d[i].native_rc));
            else if (native && d[i].native_truncated)
                printf("    ... (native stack truncated)\n");
            for (int k = 0; k < snap.ntasks; k++)
                if (snap.tasks[k].thread == i)
                    task_text(&snap, &ix, &snap.tasks[k], qual);
        }
        int orphans = 0;
        for (int k = 0; k < snap.ntasks; k++) {
            if (snap.tasks[k].thread >= 0)
                continue;
            if (!orphans++)
                printf("\nTasks of loops no thread runs now\n");
            task_text(&snap, &ix, &snap.tasks[k], qual);
        }
    }
    fflush(stdout);
    const struct py_tasks_stats *ts = &snap.task_stats;
    if (ts->bad || ts->broken || ts->dropped)
        fprintf(stderr, "sonde: dump: %d asyncio task entr%s skipped (unreadable or torn), "
                        "%d task stack%s cut short, %d left out\n",
                ts->bad, ts->bad == 1 ? "y" : "ies", ts->broken, ts->broken == 1 ? "" : "s",
                ts->dropped);
    if (native) {
        clock_gettime(CLOCK_MONOTONIC, &nt1);
        int failed = 0;
        for (int i = 0; i < n; i++)
            failed += d[i].native_rc != 0;
        if (failed)
            fprintf(stderr, "sonde: dump: %d of %d threads without native frames (they could "
                            "not be stopped)\n", failed, n);
        if (getenv("SONDE_NATIVE_TIMING")) { /* scripts/bench */
            int64_t maxp = 0, maxh = 0;
            for (int i = 0; i < n; i++) {
                maxp = d[i].pause_ns > maxp ? d[i].pause_ns : maxp;
                maxh = d[i].hold_ns > maxh ? d[i].hold_ns : maxh;
            }
            fprintf(stderr, "bench: native dump of %d threads: %.2f ms (stacks %.2f ms), "
                            "longest pause %.1f us (held stopped %.1f us)\n",
                    n, ((double)(nt1.tv_sec - nt0.tv_sec) * 1e3 +
                        (double)(nt1.tv_nsec - nt0.tv_nsec) / 1e6),
                    ((double)(ntc.tv_sec - nt0.tv_sec) * 1e3 +
                     (double)(ntc.tv_nsec - nt0.tv_nsec) / 1e6),
                    (double)maxp / 1e3, (double)maxh / 1e3);
        }
    }
    free(sym);
    free(mg);
    task_index_fini(&ix);
    if (repeat > 0 && native)
        bench_native_repeat(&snap, repeat);
    else if (repeat > 0)
        bench_repeat(&snap, repeat, qual);
    snapshot_free(&snap);
    return EXIT_OK;
}
