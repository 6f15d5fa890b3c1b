#include "cli/launch.h"

#include "cli/opts.h"
#include "common/err.h"
#include "tracer/cpython/runtime.h"
#include "tracer/proc/task.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
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

size_t cli_descendants(pid_t root, pid_t *out, size_t max)
{
    /* one pass over /proc for (pid, ppid), then the tree from root down */
    size_t n = 0, cap = 0, nout = 0;
    pid_t(*pp)[2] = NULL;
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        pid_t pid = (pid_t)atoi(de->d_name), ppid = proc_ppid(pid);
        if (ppid <= 0)
            continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 512;
            void *g = realloc(pp, nc * sizeof *pp);
            if (!g)
                break;
            pp = g;
            cap = nc;
        }
        pp[n][0] = pid;
        pp[n][1] = ppid;
        n++;
    }
    closedir(d);
    /* out doubles as the queue: a process's children follow it */
    for (size_t head = 0;; head++) {
        pid_t parent = head == 0 ? root : head <= nout ? out[head - 1] : -1;
        if (parent < 0)
            break;
        for (size_t i = 0; i < n && nout < max; i++)
            if (pp[i][1] == parent && pp[i][0] != root)
                out[nout++] = pp[i][0];
    }
    free(pp);
    return nout;
}

/* Has pid ended? Reaps it (and keeps its status) when it has. */
static int reaped(pid_t pid, int *status)
{
    int st;
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid && status)
        *status = st;
    return w == pid || (w < 0 && errno == ECHILD);
}

static int wait_ended(pid_t pid, int ms, int *status);

/* Send sig to pid and to its descendants. */
static void signal_tree(pid_t pid, int sig)
{
    pid_t kids[256];
    size_t n = cli_descendants(pid, kids, 256);
    kill(pid, sig);
    for (size_t i = 0; i < n; i++)
        kill(kids[i], sig);
}

int cli_wait_launched(pid_t pid, int ms, int *status)
{
    return wait_ended(pid, ms, status);
}

/* Wait up to ms for pid to end; 1 when it did. */
static int wait_ended(pid_t pid, int ms, int *status)
{
    struct timespec d = { 0, 20 * 1000 * 1000 };
    for (int waited = 0;; waited += 20) {
        if (reaped(pid, status))
            return 1;
        if (waited >= ms)
            return 0;
        nanosleep(&d, NULL);
    }
}

int cli_stop_launched(pid_t pid, int interrupted, int grace_ms)
{
    int status = -1;
    if (pid <= 0 || reaped(pid, &status))
        return status;
    /* a Ctrl-C on the terminal reached the command already: a second
     * SIGINT would interrupt its clean-up */
    if (!interrupted)
        signal_tree(pid, SIGINT);
    if (wait_ended(pid, grace_ms, &status))
        return status;
    signal_tree(pid, SIGTERM);
    if (wait_ended(pid, grace_ms, &status))
        return status;
    signal_tree(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return status;
}

/* Try to attach to pid's interpreter. 0, or the attach's code. */
static int try_attach(pid_t pid, char *err, size_t errlen)
{
    struct py_runtime rt;
    int rc = py_runtime_attach(&rt, pid, err, errlen);
    py_runtime_fini(&rt);
    return rc;
}

/* Wait until the launched child runs an initialized Python interpreter.
 * A full attach reads the symbol tables of every mapped file: before the
 * exec (the child is still a copy of sonde) and while the dynamic loader
 * runs, that is most of the cost of a launch. So an attach that found no
 * runtime is tried again only once the process's file mappings changed (a
 * cheap read of its maps); one that found the runtime but no interpreter
 * yet is tried again at once. The launched command's descendants are
 * looked at every 50 ms: with subprocesses, the first that runs Python is
 * the target; without, one that does shows the command is a wrapper. */
int cli_wait_for_python_in(pid_t pid, int subprocesses, volatile sig_atomic_t *stop, pid_t *python,
                           char *err, size_t errlen)
{
    /* Bounded by the clock, not a count of attempts: under load one
     * attempt (symbol tables of every mapped file) can take long. A
     * wrapper followed with subprocesses is waited for as long as it
     * runs. */
    struct timespec delay = { 0, 2 * 1000 * 1000 }, t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct {
        pid_t pid;
        uint64_t maps; /* the mappings of the last attach that found no runtime */
    } tried[64];
    size_t ntried = 0;
    int64_t last_scan = -1000;
    int not_python = 0; /* the command itself was seen to run no CPython */
    uint64_t self_image = proc_image_id(getpid());
    *python = 0;
    for (;;) {
        if (stop && *stop)
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t ms = (int64_t)(now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (!subprocesses && ms >= 10000)
            break;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            if (!subprocesses && not_python)
                return se_fail(err, errlen, SE_NOTPYTHON,
                               "the command exited without running Python itself (add --subprocesses"
                               " to record the Python programs it starts)");
            return se_fail(err, errlen, SE_EXITED, "the command exited before %s started",
                           subprocesses ? "any Python process" : "Python");
        }
        pid_t cand[65];
        size_t nc = 0;
        cand[nc++] = pid;
        if (ms - last_scan >= 50) {
            nc += cli_descendants(pid, cand + 1, 64);
            last_scan = ms;
        }
        for (size_t i = 0; i < nc; i++) {
            uint64_t maps = proc_maps_files_id(cand[i]);
            size_t k;
            for (k = 0; k < ntried && tried[k].pid != cand[i]; k++)
                ;
            if (k < ntried && maps && tried[k].maps == maps)
                continue;
            char e[512] = "";
            int rc = try_attach(cand[i], e, sizeof e);
            if (rc == 0 && (i == 0 || subprocesses)) {
                *python = cand[i];
                return 0;
            }
            if (rc == 0)
                return se_fail(err, errlen, SE_NOTPYTHON,
                               "the command is not Python: it started Python as process %d (add "
                               "--subprocesses to record the Python programs it starts)", (int)cand[i]);
            if (i == 0 && (rc == SE_PERM || rc == SE_UNSUPPORTED))
                return se_fail(err, errlen, rc, "%s", e);
            /* no runtime in these files: wait for others */
            int none = rc == SE_NOTPYTHON && strstr(e, "no CPython runtime found");
            if (i == 0) {
                /* once it executed the command (before, it is a copy of
                 * sonde, whose image maps no runtime either) */
                not_python = none && proc_image_id(pid) != self_image;
            }
            if (k == ntried && ntried < 64)
                tried[ntried++].pid = cand[i];
            if (k < 64)
                tried[k].maps = none ? maps : 0;
        }
        nanosleep(&delay, NULL);
    }
    if (not_python)
        return se_fail(err, errlen, SE_NOTPYTHON,
                       "the command is not Python (no interpreter after 10 s; add --subprocesses to "
                       "record the Python programs it starts)");
    return se_fail(err, errlen, SE_NOTPYTHON, "process %d did not start a Python interpreter", pid);
}

int cli_wait_for_python(pid_t pid, volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    pid_t py;
    return cli_wait_for_python_in(pid, 0, stop, &py, err, errlen);
}
