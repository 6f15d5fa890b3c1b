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

#endif
