/* Starting a command for record / top and waiting for its interpreter. */
#ifndef SONDE_CLI_LAUNCH_H
#define SONDE_CLI_LAUNCH_H

#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

/* Start argv as a child; its pid (the caller reaps it), or a negative code
 * with a message ("cannot run X: ...") when it cannot be executed. quiet:
 * the child's stdin, stdout and stderr go to /dev/null (a full-screen UI
 * owns the terminal). */
pid_t cli_launch(char **argv, int quiet, char *err, size_t errlen);

/* The same, with prep(ctx) run in the child just before it executes argv
 * (to set its environment): prep returns 0, or an errno value that fails
 * the launch like a failed exec. */
pid_t cli_launch_with(char **argv, int quiet, int (*prep)(void *ctx), void *ctx, char *err,
                      size_t errlen);

/* A launch that failed (rc, err from cli_launch*): the one-line error, and
 * EXIT_NOCMD when the command could not be executed (not found, not
 * executable), else the code of rc. */
int cli_launch_failed(int rc, const char *err);

/* Wait (up to about 10 s, or until *stop is set) until the launched child
 * runs an initialized Python interpreter. 0 or a negative code. */
int cli_wait_for_python(pid_t pid, volatile sig_atomic_t *stop, char *err, size_t errlen);

/* The same, for a command that may be a wrapper (a shell, make): with
 * subprocesses, the first of pid and its descendants to run Python is the
 * target (*python), waited for as long as pid runs (or until *stop);
 * without, a descendant that runs Python fails the wait with SE_NOTPYTHON
 * and a hint to add --subprocesses. 0 or a negative code with a message. */
int cli_wait_for_python_in(pid_t pid, int subprocesses, volatile sig_atomic_t *stop, pid_t *python,
                           char *err, size_t errlen);

/* The processes descended from root (children, grandchildren, ...; not
 * root), at most max, into out, parents before children: their count. */
size_t cli_descendants(pid_t root, pid_t *out, size_t max);

/* Wait up to ms for the launched pid to end (reaping it, *status set):
 * 1 when it did (or is not sonde's child), else 0. */
int cli_wait_launched(pid_t pid, int ms, int *status);

/* Grace period between the signals of cli_stop_launched, in ms. */
#define CLI_STOP_GRACE_MS 2000

/* The rule of every command that launches one: when sonde stops, so does
 * the command. Nothing when it already ended; else SIGINT to it and its
 * descendants (not when interrupted: a Ctrl-C on the terminal reached them
 * already), SIGTERM after grace_ms, SIGKILL after grace_ms more. Reaps it;
 * returns its wait status, or -1 when it is not sonde's child. */
int cli_stop_launched(pid_t pid, int interrupted, int grace_ms);

#endif
