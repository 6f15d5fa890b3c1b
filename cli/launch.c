#include "cli/launch.h"

#include "cli/opts.h"
#include "common/err.h"
#include "tracer/cpython/runtime.h"
#include "tracer/proc/task.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Start argv as a child; returns its pid, or a negative code. The pipe
 * tells apart "exec failed" from "exec succeeded" (closed on exec). */
pid_t cli_launch(char **argv, int quiet, char *err, size_t errlen)
{
    return cli_launch_with(argv, quiet, NULL, NULL, err, errlen);
}

pid_t cli_launch_with(char **argv, int quiet, int (*prep)(void *ctx), void *ctx, char *err,
                      size_t errlen)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return se_fail(err, errlen, -errno, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        return se_fail(err, errlen, -errno, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(p[0]);
        signal(SIGPIPE, SIG_DFL);
        if (quiet) {
            int fd = open("/dev/null", O_RDWR);
            if (fd >= 0) {
                dup2(fd, 0);
                dup2(fd, 1);
                dup2(fd, 2);
                if (fd > 2)
                    close(fd);
            }
        }
        int e = prep ? prep(ctx) : 0;
        if (!e) {
            execvp(argv[0], argv);
            e = errno;
        }
        if (write(p[1], &e, sizeof e) < 0)
            _exit(127);
        _exit(127);
    }
    close(p[1]);
    int e = 0;
    ssize_t n = read(p[0], &e, sizeof e);
    close(p[0]);
    if (n == (ssize_t)sizeof e) {
        waitpid(pid, NULL, 0);
        return se_fail(err, errlen, -e, "cannot run %s: %s", argv[0], strerror(e));
    }
    return pid;
}

int cli_launch_failed(int rc, const char *err)
{
    if (rc != -ENOMEM && rc != -EAGAIN && rc != -EMFILE && rc != -ENFILE && strncmp(err, "cannot run ", 11) == 0) {
        fprintf(stderr, "sonde: %s\n", err);
        return EXIT_NOCMD;
    }
    return cli_error(rc, err);
}

/* Wait until the launched child runs an initialized Python interpreter.
 * A full attach reads the symbol tables of every mapped file: before the
 * exec (the child is still a copy of sonde) and while the dynamic loader
 * runs, that is most of the cost of a launch. So an attach that found no
 * runtime is tried again only once the child's file mappings changed (a
 * cheap read of its maps); one that found the runtime but no interpreter
 * yet is tried again at once. */
int cli_wait_for_python(pid_t pid, volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    /* Bounded by the clock, not a count of attempts: under load one
     * attempt (symbol tables of every mapped file) can take long. */
    struct timespec delay = { 0, 2 * 1000 * 1000 }, t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t tried_maps = 0; /* the mappings of the last attach that found no runtime */
    for (;;) {
        if (stop && *stop)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - t0.tv_sec >= 10)
            break;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return se_fail(err, errlen, SE_EXITED, "the command exited before Python started");
        uint64_t maps = proc_maps_files_id(pid);
        if (!maps || maps != tried_maps) {
            struct py_runtime rt;
            int rc = py_runtime_attach(&rt, pid, err, errlen);
            py_runtime_fini(&rt);
            if (rc == 0)
                return 0;
            if (rc == SE_PERM || rc == SE_UNSUPPORTED)
                return rc;
            /* no runtime in these files: wait for others */
            tried_maps = rc == SE_NOTPYTHON && strstr(err, "no CPython runtime found") ? maps : 0;
        }
        nanosleep(&delay, NULL);
    }
    return se_fail(err, errlen, SE_NOTPYTHON, "process %d did not start a Python interpreter", pid);
}
