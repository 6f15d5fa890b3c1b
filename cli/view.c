/* sonde view: browse a recording in the terminal (the text report when
 * stdout is not a terminal).
 * (ui/view.c is the browser itself.) */
#include "cli/cli.h"

#include "store/spans.h"
#include "common/err.h"
#include "common/outfile.h"
#include "formats/export.h"
#include "profiler/model.h"
#include "ui/report.h"
#include "ui/view.h"
#include "ui/waterfall.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void view_usage(FILE *f)
{
    fputs("usage: sonde view [--mode wall|cpu|gil] [--pid PID] [--thread [PID:]NAME|TID] FILE.sonde\n"
          "  -m, --mode M       start in mode wall, cpu or gil\n"
          "  -p, --pid PID      only this process (of a recording of several)\n"
          "  -t, --thread T     start filtered on this thread: its Python name, PID:NAME, or\n"
          "                     OS thread id\n"
          "On a terminal: call tree, flat profile, callers/callees, threads and timeline\n"
          "(press ? for the keys). Otherwise: the text report (sonde report).\n"
          "On a span store (sonde collector --db FILE): a trace list and per-trace waterfall\n"
          "(the trace list of sonde traces when stdout is not a terminal).\n",
          f);
}

struct export_ctx {
    const struct model *m;
    const char *path;
    int32_t pid;           /* --pid: exports hold that process only */
};

/* FILE.sonde -> FILE.ext (or FILE.thread-N.ext for a thread, FILE.task-N.ext
 * for a green thread), next to it;
 * when that exists, FILE-2.ext, FILE-3.ext... : an export never replaces a
 * file, and the status line names the file written and the one kept. */
static int view_export(void *ctx, const char *format, enum q_metric mode, uint32_t thread,
                       uint32_t green, char *msg, size_t msglen)
{
    struct export_ctx *c = ctx;
    const struct exporter *e = export_find(format);
    if (!e)
        return se_fail(msg, msglen, -ENOENT, "exporter not available: %s", format);
    char suffix[64], first[4200], out[4300];
    if (green)
        snprintf(suffix, sizeof suffix, ".task-%u%s", green, e->ext);
    else if (thread)
        snprintf(suffix, sizeof suffix, ".thread-%u%s", thread, e->ext);
    else
        snprintf(suffix, sizeof suffix, "%s", e->ext);
    cli_default_output(first, sizeof first, c->path, suffix);
    snprintf(out, sizeof out, "%s", first);
    struct outfile of;
    char err[512] = "";
    int rc, n = 1;
    while ((rc = outfile_open(&of, out, OUTFILE_NOREPLACE, err, sizeof err)) == -EEXIST && n < 1000) {
        char base[4200];
        cli_default_output(base, sizeof base, c->path, "");
        snprintf(out, sizeof out, "%s-%d%s", base, ++n, suffix);
    }
    if (rc)
        return se_fail(msg, msglen, rc, "%s", err);
    struct export_opts o = {
        .mode = mode == Q_CPU ? EXPORT_CPU : EXPORT_WALL,
        .thread = green ? 0 : thread,
        .green = green,
        .pid = c->pid,
        .input = c->path,
    };
    rc = e->write(c->m, &o, of.f, err, sizeof err);
    if (rc) {
        outfile_abort(&of);
        return se_fail(msg, msglen, rc, "%s: %s", out, err[0] ? err : "write error");
    }
    if ((rc = outfile_commit(&of, err, sizeof err)))
        return se_fail(msg, msglen, rc, "%s", err);
    snprintf(msg, msglen, "%s%s%s%s", out, n > 1 ? " (" : "", n > 1 ? first : "",
             n > 1 ? " exists: kept)" : "");
    if (mode == Q_GIL) {
        size_t k = strlen(msg);
        snprintf(msg + k, msglen - k, " (gil mode exported as wall time)");
    }
    return 0;
}

int cmd_view(int argc, char **argv)
{
    static const struct option opts[] = {
        { "mode", required_argument, NULL, 'm' },
        { "thread", required_argument, NULL, 't' },
        { "pid", required_argument, NULL, 'p' },
        { "bench-keys", required_argument, NULL, 'B' }, /* hidden: scripts/bench view */
        { "help", no_argument, NULL, 'h' },
        { 0, 0, 0, 0 },
    };
    int c, mode = Q_WALL, bench = 0, mode_set = 0;
    const char *thread = NULL, *pidarg = NULL;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:t:p:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (cli_parse_mode(optarg, &mode)) {
                fprintf(stderr, "sonde: unknown mode '%s' (wall, cpu or gil)\n", optarg);
                return EXIT_USAGE;
            }
            mode_set = 1;
            break;
        case 't': thread = optarg; break;
        case 'p': pidarg = optarg; break;
        case 'B': bench = atoi(optarg); break;
        case 'h': view_usage(stdout); return EXIT_OK;
        default: return cli_opt_bad("view", c, argv, optind);
        }
    }
    if (optind != argc - 1)
        return optind < argc ? cli_opt_extra("view", argv[optind + 1])
                             : cli_usage_error("view", "give the recording: sonde view FILE.sonde");
    const char *path = argv[optind];
    char err[512] = "";
    if (store_probe(path) == STORE_PART_SPANS) {
        if (thread || mode_set || pidarg)
            return cli_error(SE_USAGE, "--thread, --pid and --mode are for recordings, not span stores");
        if (!isatty(1)) {
            char *av[] = { "traces", "--db", (char *)path, NULL };
            return cmd_traces(3, av);
        }
        int rc = waterfall_run(path, -1, err, sizeof err);
        return rc ? cli_error(rc, err) : EXIT_OK;
    }
    struct model *m;
    struct timespec t0, t1, c0, c1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    int rc = model_load(path, &m, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    if (rc)
        return cli_error(rc == -2 ? SE_BADFILE : rc, err);
    uint32_t th = 0;
    int32_t pid = 0;
    if ((pidarg && (rc = cli_find_pid(m, pidarg, path, &pid))) ||
        (thread && (rc = cli_find_thread(m, thread, pid, path, &th)))) {
        model_free(m);
        return rc;
    }
    if (!bench && !isatty(1)) {
        struct report_opts ro = { .mode = (enum q_metric)mode, .thread = th, .pid = pid, .limit = 25 };
        rc = report_write(stdout, m, &ro);
        model_free(m);
        return rc ? cli_error(rc, "cannot write the report") : EXIT_OK;
    }
    if (bench)
        printf("view: load %.1f ms (%.1f ms CPU)\n",
               ((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9) * 1e3,
               ((double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9) * 1e3);
    struct export_ctx ec = { m, path, pid };
    struct view_opts vo = {
        .path = path,
        .mode = (enum q_metric)mode,
        .thread = th,
        .pid = pid,
        .export_fn = view_export,
        .export_ctx = &ec,
        .bench_keys = bench,
    };
    rc = view_run(m, &vo, err, sizeof err);
    model_free(m);
    return rc ? cli_error(rc, err) : EXIT_OK;
}
