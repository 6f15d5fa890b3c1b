/* sonde dump: the Python stack of every thread of a live process, once. */
#include "cli/cli.h"

#include "common/err.h"
#include "common/textesc.h"
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
    fputs("usage: sonde dump -p PID [--json] [--qualname] [--no-tasks]\n"
          "  -p, --pid PID    process to read (never paused or written to)\n"
          "  -j, --json       print JSON: {pid, python_version, threads: [{tid, name, gil,\n"
          "                   frames: [{function, file, line}]}], green_threads: [{id, kind,\n"
          "                   name, tid, running, awaited_by: [id...], frames}]}, frames\n"
          "                   innermost first\n"
          "  -q, --qualname   print qualified names (Class.method) where Python has them\n"
          "      --no-tasks   do not read asyncio tasks\n",
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

int cmd_dump(int argc, char **argv)
{
    static const struct option opts[] = {
        { "pid", required_argument, NULL, 'p' },
        { "json", no_argument, NULL, 'j' },
        { "qualname", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "no-tasks", no_argument, NULL, 'T' },
        { "repeat", required_argument, NULL, 'R' }, /* hidden: scripts/bench */
        { 0, 0, 0, 0 },
    };
    int pid = 0, json = 0, qual = 0, repeat = 0, tasks = 1, c;
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
    if (tasks && (rc = snapshot_tasks(&snap, err, sizeof err))) {
        snapshot_free(&snap);
        return cli_error(rc, err);
    }
    struct py_runtime *rt = &snap.rt;
    struct snapshot_thread *d = snap.threads;
    int n = snap.nthreads;
    struct task_index ix;
    if (task_index_init(&ix, &snap)) {
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
            for (int k = 0; k < d[i].nframes; k++) {
                const char *fn, *file;
                int line;
                frame_info(rt, &d[i].frames[k], qual, &fn, &file, &line);
                json_t *f = json_object();
                json_object_set_new(f, "function", json_string(fn));
                json_object_set_new(f, "file", json_string(file));
                json_object_set_new(f, "line", json_integer(line));
                json_array_append_new(fr, f);
            }
            json_object_set_new(t, "frames", fr);
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
            if (!d[i].nframes)
                printf("    (no Python frames)\n");
            for (int k = 0; k < d[i].nframes; k++) {
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
    task_index_fini(&ix);
    if (repeat > 0)
        bench_repeat(&snap, repeat, qual);
    snapshot_free(&snap);
    return EXIT_OK;
}
