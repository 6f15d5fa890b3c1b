/* sonde's entry point: one table of subcommands (name, handler, synopsis,
 * one line of help) that both dispatches and prints the usage. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#ifndef SONDE_VERSION
#define SONDE_VERSION "0.1.0"
#endif

static int cmd_version(int argc, char **argv)
{
    (void)argc, (void)argv;
    printf("sonde %s\n", SONDE_VERSION);
    return EXIT_OK;
}

static int cmd_help(int argc, char **argv);

struct cmd_struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *synopsis; /* the arguments, for the usage; NULL: not listed */
    const char *help;     /* one line */
};

static const struct cmd_struct commands[] = {
    { "dump", cmd_dump, "-p PID [--json]", "print the Python stack of every thread of a live process" },
    { "record", cmd_record, "[-r HZ] [-d S] [-o FILE] (-p PID | -- CMD...)",
      "sample wall time, CPU time and GIL state per thread" },
    { "report", cmd_report, "[--mode wall|cpu|gil] [--thread T] [--json] FILE",
      "summarize a recording: threads, GIL, top functions" },
    { "collector", cmd_collector, "[--listen HOST:PORT] [--db FILE] [--forward URL] [--token T]",
      "receive spans (OTLP/HTTP, Zipkin v2) and assemble traces" },
    { "traces", cmd_traces, "--db FILE [--service S] [--since DUR] [--min-duration DUR] [--json]",
      "list the collected traces" },
    { "trace", cmd_trace, "--db FILE ID [--json | --format otlp|zipkin|chrome]",
      "one trace: text waterfall, JSON or an export" },
    { "export", cmd_export, "-f FORMAT [-o OUT] [--mode wall|cpu] [--thread T] FILE",
      "write a recording for another tool (callgrind, pprof, ...)" },
    { "top", cmd_top, "[-r HZ] [--interval S] (-p PID | -- CMD...)",
      "live view: hottest functions, threads, GIL (curses)" },
    { "view", cmd_view, "FILE.sonde", "browse a recording: call tree, callers, threads, timeline" },
    { "version", cmd_version, "", "print sonde's version" },
    { "help", cmd_help, NULL, "print this list" },
};

/* Other spellings of a command. */
static const struct {
    const char *alias, *name;
} aliases[] = {
    { "--version", "version" },
    { "--help", "help" },
    { "-h", "help" },
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void usage(FILE *f)
{
    enum { COL = 25 }; /* the help column, after two spaces of indent */
    fputs("usage: sonde <command> [options]\n\ncommands:\n", f);
    for (size_t i = 0; i < COUNT(commands); i++) {
        const struct cmd_struct *c = &commands[i];
        if (!c->synopsis)
            continue;
        char line[256];
        snprintf(line, sizeof line, "%s%s%s", c->name, *c->synopsis ? " " : "", c->synopsis);
        if (strlen(line) < COL)
            fprintf(f, "  %-*s%s\n", COL, line, c->help);
        else
            fprintf(f, "  %s\n  %*s%s\n", line, COL, "", c->help);
    }
    fputs("\nRun 'sonde <command> --help' for a command's options. Exit codes: see sonde(1).\n", f);
}

static int cmd_help(int argc, char **argv)
{
    (void)argc, (void)argv;
    usage(stdout);
    return EXIT_OK;
}

static const struct cmd_struct *find_command(const char *name)
{
    for (size_t i = 0; i < COUNT(aliases); i++)
        if (!strcmp(aliases[i].alias, name))
            name = aliases[i].name;
    for (size_t i = 0; i < COUNT(commands); i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv)
{
    /* errors are one line (the commands: see 'sonde --help') */
    if (argc < 2) {
        fputs("sonde: give a command (see 'sonde --help')\n", stderr);
        return EXIT_USAGE;
    }
    const struct cmd_struct *c = find_command(argv[1]);
    if (!c) {
        fprintf(stderr, "sonde: unknown command '%s' (see 'sonde --help')\n", argv[1]);
        return EXIT_USAGE;
    }
    return c->fn(argc - 1, argv + 1);
}
