/* sonde report: summarize a recording: the options, then ui/report.c
 * draws it. */
#include "cli/cli.h"

#include "common/err.h"
#include "profiler/model.h"
#include "ui/report.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void report_usage(FILE *f)
{
    fputs("usage: sonde report [--mode wall|cpu|gil] [--pid PID] [--thread [PID:]NAME|TID] [--task NAME|ID]\n"
          "                    [--span ID] [--sort self|total] [--lines] [--threads all]\n"
          "                    [--limit N] [--json] FILE.sonde\n"
          "  -m, --mode M       rank functions by wall, cpu or gil (time holding the GIL)\n"
          "  -p, --pid PID      only this process (of a recording of several: --subprocesses)\n"
          "  -t, --thread T     only this thread: its Python name, PID:NAME, or OS thread id\n"
          "                     (a name that several threads share is refused: they are listed)\n"
          "  -T, --task T       only this green thread (asyncio task or greenlet: its name,\n"
          "                     or the ID column of the report), running and suspended\n"
          "  -S, --span ID      only the samples taken while this span was current (its\n"
          "                     number, the ID column, or its 16-hex-digit span id)\n"
          "      --sort S       rank functions by self time (default: where the time is\n"
          "                     spent) or total time (with what they call)\n"
          "      --lines        rank lines instead of functions (self: the line running;\n"
          "                     total: on the stack, running or calling); --json adds \"lines\"\n"
          "      --threads all  one row per thread (default: threads of a process named\n"
          "                     alike, 5 or more, are one row with their sums)\n"
          "  -n, --limit N      show the top N functions (default 25, 0 = all)\n"
          "  -j, --json         print {\"threads\": [...], \"green_threads\": [...],\n"
          "                     \"functions\": [...], \"spans\": [...]} (every function)\n",
          f);
}

int cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {
        { "mode", required_argument, NULL, 'm' },
        { "thread", required_argument, NULL, 't' },
        { "pid", required_argument, NULL, 'p' },
        { "task", required_argument, NULL, 'T' },
        { "span", required_argument, NULL, 'S' },
        { "limit", required_argument, NULL, 'n' },
        { "sort", required_argument, NULL, 's' + 256 },
        { "lines", no_argument, NULL, 'l' + 256 },
        { "threads", required_argument, NULL, 'a' + 256 },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { 0, 0, 0, 0 },
    };
    struct report_opts o = { .mode = Q_WALL, .limit = 25 };
    const char *thread = NULL, *task = NULL, *span = NULL, *pid = NULL;
    int c, mode;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:t:p:T:S:n:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (cli_parse_mode(optarg, &mode)) {
                fprintf(stderr, "sonde: unknown mode '%s' (wall, cpu or gil)\n", optarg);
                return EXIT_USAGE;
            }
            o.mode = (enum q_metric)mode;
            break;
        case 's' + 256:
            if (!strcmp(optarg, "self"))
                o.sort_total = 0;
            else if (!strcmp(optarg, "total"))
                o.sort_total = 1;
            else
                return cli_usage_error("report", "--sort wants self or total");
            break;
        case 'l' + 256: o.lines = 1; break;
        case 'a' + 256:
            if (strcmp(optarg, "all") && strcmp(optarg, "grouped"))
                return cli_usage_error("report", "--threads wants all or grouped");
            o.all_threads = !strcmp(optarg, "all");
            break;
        case 't': thread = optarg; break;
        case 'p': pid = optarg; break;
        case 'T': task = optarg; break;
        case 'S': span = optarg; break;
        case 'n': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 0 || v > 1000000000)
                return cli_usage_error("report", "--limit wants a number of rows (0 = all)");
            o.limit = (int)v;
            break;
        }
        case 'j': o.json = 1; break;
        case 'h': report_usage(stdout); return EXIT_OK;
        default: return cli_opt_bad("report", c, argv, optind);
        }
    }
    if (optind != argc - 1)
        return optind < argc ? cli_opt_extra("report", argv[optind + 1])
                             : cli_usage_error("report", "give the recording: sonde report FILE.sonde");
    char err[512];
    struct model *m;
    int rc = model_load(argv[optind], &m, err, sizeof err);
    if (rc)
        return cli_error(rc == -2 ? SE_BADFILE : rc, err);
    if ((pid && (rc = cli_find_pid(m, pid, argv[optind], &o.pid))) ||
        (thread && (rc = cli_find_thread(m, thread, o.pid, argv[optind], &o.thread)))) {
        model_free(m);
        return rc;
    }
    if (task) {
        size_t several = 0;
        o.green = model_find_green(m, task, &several);
        if (!o.green || several > 1) {
            if (!o.green)
                fprintf(stderr, "sonde: no task or greenlet named or numbered '%s' in %s\n", task,
                        argv[optind]);
            else
                fprintf(stderr, "sonde: %zu green threads are named '%s' in %s: give its ID (sonde report"
                        " lists them)\n", several, task, argv[optind]);
            model_free(m);
            return EXIT_USAGE;
        }
    }
    if (span) {
        o.span = model_find_span(m, span);
        if (!o.span) {
            fprintf(stderr, "sonde: no span numbered or with span id '%s' in %s\n", span, argv[optind]);
            model_free(m);
            return EXIT_USAGE;
        }
    }
    rc = report_write(stdout, m, &o);
    model_free(m);
    return rc ? cli_error(rc, "cannot write the report") : EXIT_OK;
}
