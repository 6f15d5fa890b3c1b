/* The command line's shared vocabulary: exit codes (docs/exit-codes.md) and
 * the option helpers every subcommand uses. Defined in cli/opts.c, which
 * calls no subcommand: main.c and the subcommands both sit above it. */
#ifndef SONDE_CLI_OPTS_H
#define SONDE_CLI_OPTS_H

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
    EXIT_NOCMD = 10,      /* the command to launch cannot be run (not found, not executable) */
};

/* Map a library error code (common/err.h) to an exit status. */
int cli_exit_code(int rc);

/* Print "sonde: <msg>" (or the code's own text when msg is empty) on stderr
 * and return cli_exit_code(rc). */
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

/* Parse wall|cpu|gil into an enum q_metric value (profiler/query.h). 0, or
 * -1 without a message (each command words its own). */
int cli_parse_mode(const char *s, int *mode);

/* FILE.sonde -> FILE<suffix> (the input minus ".sonde", plus suffix), for a
 * default -o path; truncated to len - 1 bytes. */
void cli_default_output(char *buf, size_t len, const char *input, const char *suffix);

/* getopt_long (with opterr = 0 and a leading ':' in the short options)
 * returned c, which is ':' or '?': print "sonde: CMD: option 'X' needs a
 * value" or "... unknown option 'X'", pointing at 'sonde CMD --help', and
 * return EXIT_USAGE. argv and optind are getopt's. */
int cli_opt_bad(const char *cmd, int c, char **argv, int optind);

/* A bad command line of CMD: "sonde: CMD: MSG (see 'sonde CMD --help')"
 * on one line; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *msg);

struct model;

/* --thread SPEC of the recording m at path (NAME, TID, PID:NAME or
 * PID:TID; model_find_threads), within process pid (0: any): 0 and
 * *thread, or EXIT_USAGE after a one-line error: no thread matches, or
 * several do (the error lists them as PID:NAME (TID)). */
int cli_find_thread(const struct model *m, const char *spec, int32_t pid, const char *path,
                    uint32_t *thread);

/* --pid PID of the recording m at path: 0 and *pid, or EXIT_USAGE after a
 * one-line error (not a pid, or no such process in the recording, whose
 * pids the error lists). */
int cli_find_pid(const struct model *m, const char *s, const char *path, int32_t *pid);

/* An operand CMD takes none of: "sonde: CMD: unexpected argument 'X'",
 * EXIT_USAGE. */
int cli_opt_extra(const char *cmd, const char *arg);

#endif
