/* Shared by the subcommands: exit codes (docs/exit-codes.md) and helpers. */
#ifndef SONDE_CLI_H
#define SONDE_CLI_H

#include <stddef.h>
#include <stdint.h>

enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,        /* internal or unexpected error */
    EXIT_USAGE = 2,       /* bad command line */
    EXIT_NOPROC = 3,      /* no such process */
    EXIT_PERM = 4,        /* permission denied */
    EXIT_NOTPYTHON = 5,   /* not a Python process */
    EXIT_UNSUPPORTED = 6, /* unsupported Python version */
    EXIT_EXITED = 7,      /* target exited while being read */
    EXIT_BADFILE = 8,     /* corrupt, truncated or foreign file */
    EXIT_NOTSTORED = 9,   /* collector: the store failed to write some spans (answered 503) */
};

/* Map a library error code to an exit status. */
int cli_exit_code(int rc);

/* Print "sonde: <msg>" on stderr and return cli_exit_code(rc). */
int cli_error(int rc, const char *msg);

/* Parse a duration with a unit (us, ms, s, m, h, d; bare number: seconds)
 * into microseconds. 0, or -1 after a one-line error on a malformed one. */
int cli_opt_duration_us(const char *s, int64_t *out);

/* Option parsers shared by the subcommands: on a bad value they print a
 * one-line "sonde: ..." error and return -1 (the caller exits with
 * EXIT_USAGE). cli_opt_number accepts min <= v <= max (v > 0 when min is 0). */
int cli_opt_pid(const char *s, int *pid);
int cli_opt_rate(const char *s, int *rate);
int cli_opt_number(const char *what, const char *s, double min, double max, double *out);

/* FILE.sonde -> FILE<suffix> (the input minus ".sonde", plus suffix). */
void cli_default_output(char *buf, size_t len, const char *input, const char *suffix);

/* The span formats of `sonde trace --format` and `sonde export` on a
 * span store: every span in one array, encoded into a malloc'd buffer. */
struct span;
struct span_format {
    const char *name, *ext;
    int (*encode)(const struct span *spans, size_t n, char **out, size_t *len);
};
/* NULL when name is none of them. */
const struct span_format *cli_span_format(const char *name);

int cmd_dump(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_top(int argc, char **argv);
int cmd_view(int argc, char **argv);

/* Parse wall|cpu|gil into an enum q_metric value. 0 or -1. */
int cli_parse_mode(const char *s, int *mode);
int cmd_collector(int argc, char **argv);
int cmd_traces(int argc, char **argv);
int cmd_trace(int argc, char **argv);

#endif
