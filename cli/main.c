#include "cli/cli.h"

#include "common/err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SONDE_VERSION
#define SONDE_VERSION "0.1.0"
#endif

int cli_exit_code(int rc)
{
    switch (rc) {
    case 0: return EXIT_OK;
    case SE_USAGE: return EXIT_USAGE;
    case SE_NOPROC: return EXIT_NOPROC;
    case SE_PERM: return EXIT_PERM;
    case SE_NOTPYTHON: return EXIT_NOTPYTHON;
    case SE_UNSUPPORTED: return EXIT_UNSUPPORTED;
    case SE_EXITED: return EXIT_EXITED;
    case SE_BADFILE: return EXIT_BADFILE;
    default: return EXIT_FAIL;
    }
}

int cli_error(int rc, const char *msg)
{
    fprintf(stderr, "sonde: %s\n", msg && *msg ? msg : se_str(rc));
    return cli_exit_code(rc);
}

int cli_opt_pid(const char *s, int *pid)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v <= 0 || v > 0x3fffffff) {
        fprintf(stderr, "sonde: invalid pid '%s'\n", s);
        return -1;
    }
    *pid = (int)v;
    return 0;
}

void cli_default_output(char *buf, size_t len, const char *input, const char *suffix)
{
    size_t n = strlen(input);
    if (n > 6 && !strcmp(input + n - 6, ".sonde"))
        n -= 6;
    snprintf(buf, len, "%.*s%s", (int)n, input, suffix);
}

int cli_opt_rate(const char *s, int *rate)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 1 || v > 10000) {
        fprintf(stderr, "sonde: the rate must be 1 to 10000 Hz, not '%s'\n", s);
        return -1;
    }
    *rate = (int)v;
    return 0;
}

int cli_opt_duration_us(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        goto bad;
    double mul;
    if (!strcmp(end, "us"))
        mul = 1;
    else if (!strcmp(end, "ms"))
        mul = 1e3;
    else if (!strcmp(end, "s") || !*end)
        mul = 1e6;
    else if (!strcmp(end, "m"))
        mul = 60e6;
    else if (!strcmp(end, "h"))
        mul = 3600e6;
    else if (!strcmp(end, "d"))
        mul = 86400e6;
    else
        goto bad;
    if (v * mul > 9e18)
        goto bad;
    *out = (int64_t)(v * mul);
    return 0;
bad:
    fprintf(stderr, "sonde: invalid duration '%s' (e.g. 500ms, 30s, 2h, 7d)\n", s);
    return -1;
}

int cli_opt_number(const char *what, const char *s, double min, double max, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= min) || !(v <= max) || (min == 0 && !(v > 0))) {
        fprintf(stderr, "sonde: invalid %s '%s'\n", what, s);
        return -1;
    }
    *out = v;
    return 0;
}

static void usage(FILE *f)
{
    fputs("usage: sonde <command> [options]\n"
          "\n"
          "commands:\n"
          "  dump -p PID [--json]     print the Python stack of every thread of a live process\n"
          "  record [-r HZ] [-d S] [-o FILE] (-p PID | -- CMD...)\n"
          "                           sample wall time, CPU time and GIL state per thread\n"
          "  report [--mode wall|cpu|gil] [--thread T] [--json] FILE\n"
          "                           summarize a recording: threads, GIL, top functions\n"
          "  collector [--listen HOST:PORT] [--db FILE] [--forward URL] [--token T]\n"
          "                           receive spans (OTLP/HTTP, Zipkin v2) and assemble traces\n"
          "  traces --db FILE [--service S] [--since DUR] [--min-duration DUR] [--json]\n"
          "                           list the collected traces\n"
          "  trace --db FILE ID [--json | --format otlp|zipkin|chrome]\n"
          "                           one trace: text waterfall, JSON or an export\n"
          "  export -f FORMAT [-o OUT] [--mode wall|cpu] [--thread T] FILE\n"
          "                           write a recording for another tool (callgrind, pprof, ...)\n"
          "  top [-r HZ] [--interval S] (-p PID | -- CMD...)\n"
          "                           live view: hottest functions, threads, GIL (curses)\n"
          "  view FILE.sonde          browse a recording: call tree, callers, threads, timeline\n"
          "  version                  print sonde's version\n"
          "\n"
          "Run 'sonde <command> --help' for a command's options. Exit codes: see sonde(1).\n",
          f);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "dump"))
        return cmd_dump(argc - 1, argv + 1);
    if (!strcmp(cmd, "export"))
        return cmd_export(argc - 1, argv + 1);
    if (!strcmp(cmd, "top"))
        return cmd_top(argc - 1, argv + 1);
    if (!strcmp(cmd, "view"))
        return cmd_view(argc - 1, argv + 1);
    if (!strcmp(cmd, "record"))
        return cmd_record(argc - 1, argv + 1);
    if (!strcmp(cmd, "report"))
        return cmd_report(argc - 1, argv + 1);
    if (!strcmp(cmd, "collector"))
        return cmd_collector(argc - 1, argv + 1);
    if (!strcmp(cmd, "traces"))
        return cmd_traces(argc - 1, argv + 1);
    if (!strcmp(cmd, "trace"))
        return cmd_trace(argc - 1, argv + 1);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("sonde %s\n", SONDE_VERSION);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return EXIT_OK;
    }
    fprintf(stderr, "sonde: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}
