/* sonde record --agent (cli/agent_launch.h): finding the agent library and
 * the Python package, launching a command with them, loading them into a
 * running process through gdb, and telling what was recorded. */
#include "cli/agent_launch.h"

#include "cli/launch.h"
#include "cli/cli.h"

#include "common/err.h"
#include "profiler/store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SONDE_AGENT_INSTALL_DIR
#define SONDE_AGENT_INSTALL_DIR "/usr/local/lib/python3/dist-packages/sonde"
#endif
#ifndef SONDE_PY_INSTALL_DIR
#define SONDE_PY_INSTALL_DIR "/usr/local/lib/python3/dist-packages"
#endif

#define LIBNAME "libsonde-agent.so"

static volatile sig_atomic_t got_signal;
static volatile sig_atomic_t tty_interrupt; /* a Ctrl-C: the launched program got it too */

static void on_signal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (sig == SIGINT && si && si->si_code == SI_KERNEL)
        tty_interrupt = 1;
    got_signal = sig;
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The agent library and the folder holding the `sonde` package: $SONDE_AGENT_LIB
 * if set; else the build tree next to this executable (build/agent/,
 * build/python/); else the installed ones. 0 or SE_NOTPYTHON-free -ENOENT. */
static int find_agent(char lib[PATH_MAX], char pydir[PATH_MAX], char *err, size_t errlen)
{
    char exe[PATH_MAX - 64]; /* room for what is appended below */
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = 0;
    const char *env = getenv("SONDE_AGENT_LIB");
    char cand[PATH_MAX], pkg[PATH_MAX];
    snprintf(pkg, sizeof pkg, "%s/python/sonde/__init__.py", exe);
    if (is_file(pkg))
        snprintf(pydir, PATH_MAX, "%s/python", exe);
    else
        snprintf(pydir, PATH_MAX, "%s", SONDE_PY_INSTALL_DIR);
    if (env && *env) {
        if (!is_file(env) || env[0] != '/')
            return se_fail(err, errlen, -ENOENT, "SONDE_AGENT_LIB=%s: not an absolute path to a file", env);
        snprintf(lib, PATH_MAX, "%s", env);
        return 0;
    }
    snprintf(cand, sizeof cand, "%s/agent/" LIBNAME, exe);
    if (is_file(cand)) {
        snprintf(lib, PATH_MAX, "%s", cand);
        return 0;
    }
    snprintf(cand, sizeof cand, "%s/" LIBNAME, SONDE_AGENT_INSTALL_DIR);
    if (is_file(cand)) {
        snprintf(lib, PATH_MAX, "%s", cand);
        return 0;
    }
    return se_fail(err, errlen, -ENOENT, "the agent library %s is not installed (looked in %s/agent and %s)",
                   LIBNAME, exe, SONDE_AGENT_INSTALL_DIR);
}

/* An absolute path for out (relative to the current directory). */
static int absolute(const char *out, char *buf, size_t len)
{
    char cwd[PATH_MAX];
    int n;
    if (out[0] == '/')
        n = snprintf(buf, len, "%s", out);
    else if (getcwd(cwd, sizeof cwd))
        n = snprintf(buf, len, "%s/%s", cwd, out);
    else
        return -errno;
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Prepend value to the colon-separated list in variable name. */
static void env_prepend(const char *name, const char *value, const char *sep)
{
    const char *old = getenv(name);
    if (!old || !*old) {
        setenv(name, value, 1);
        return;
    }
    size_t n = strlen(old) + strlen(value) + 2;
    char *v = malloc(n);
    if (!v)
        return;
    snprintf(v, n, "%s%s%s", value, sep, old);
    setenv(name, v, 1);
    free(v);
}

/* Did the agent finish the recording at path? Its last act writes the
 * "ticks" meta row. 1 finished, 0 not (yet), -1 no file. */
static int recording_done(const char *path, long long *samples, double *secs)
{
    if (!is_file(path))
        return -1;
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return 0;
    }
    sqlite3_busy_timeout(db, 1000);
    sqlite3_stmt *st;
    int done = 0;
    *samples = 0;
    *secs = 0;
    if (sqlite3_prepare_v2(db, "SELECT key, value FROM meta WHERE key IN ('ticks','samples','duration_ns')",
                           -1, &st, NULL) == SQLITE_OK) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *k = (const char *)sqlite3_column_text(st, 0);
            const char *v = (const char *)sqlite3_column_text(st, 1);
            if (!k || !v)
                continue;
            if (!strcmp(k, "ticks"))
                done = 1;
            else if (!strcmp(k, "samples"))
                *samples = atoll(v);
            else
                *secs = atof(v) / 1e9;
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return done;
}

static int summary(const struct agent_req *rq, const char *path)
{
    long long samples;
    double secs;
    int done = recording_done(path, &samples, &secs);
    if (done < 0)
        return cli_error(SE_NOTPYTHON, "the agent wrote no recording (its reason is above, if any)");
    if (rq->quiet)
        return EXIT_OK;
    if (done)
        fprintf(stderr, "sonde: wrote %s: %lld samples in %.2f s (agent)\n", path, samples, secs);
    else
        fprintf(stderr, "sonde: wrote %s, unfinished: the program ended without exit() (the last "
                "batch and the statistics are missing)\n", path);
    return EXIT_OK;
}

struct agent_env {
    const struct agent_req *rq;
    const char *lib, *pydir;
};

/* In the child, before it runs the command: the agent's settings in its
 * environment (cli_launch_with). 0 or an errno value. */
static int agent_env_set(void *ctx)
{
    const struct agent_env *a = ctx;
    const struct agent_req *rq = a->rq;
    char path[PATH_MAX], def[64], rate[16], dur[32], boot[PATH_MAX + 16];
    snprintf(def, sizeof def, "sonde-%d.sonde", (int)getpid());
    snprintf(rate, sizeof rate, "%d", rq->rate_hz);
    snprintf(dur, sizeof dur, "%.6f", rq->duration_s);
    int e = absolute(rq->out ? rq->out : def, path, sizeof path);
    if (e)
        return -e;
    env_prepend("LD_PRELOAD", a->lib, ":");
    env_prepend("PYTHONPATH", a->pydir, ":");
    snprintf(boot, sizeof boot, "%s/sonde/boot", a->pydir);
    env_prepend("PYTHONPATH", boot, ":");
    setenv("SONDE_AGENT_LIB", a->lib, 1);
    setenv("SONDE_AGENT_OUTPUT", path, 1);
    setenv("SONDE_AGENT_RATE", rate, 1);
    setenv("SONDE_AGENT_DURATION", dur, 1);
    if (rq->no_tasks)
        setenv("SONDE_AGENT_TASKS", "0", 1);
    if (rq->collector)
        setenv("SONDE_COLLECTOR", rq->collector, 1);
    return 0;
}

static int launch(const struct agent_req *rq, const char *lib, const char *pydir)
{
    char path[PATH_MAX], err[PATH_MAX + 64];
    struct agent_env a = { rq, lib, pydir };
    /* an earlier recording at the output path is not this one's end */
    struct stat before, now;
    char pre[PATH_MAX];
    int had = rq->out && absolute(rq->out, pre, sizeof pre) == 0 && stat(pre, &before) == 0;
    pid_t pid = cli_launch_with(rq->cmd, 0, agent_env_set, &a, err, sizeof err);
    if (pid < 0)
        return cli_launch_failed(pid, err);
    char def[64];
    snprintf(def, sizeof def, "sonde-%d.sonde", (int)pid);
    if (absolute(rq->out ? rq->out : def, path, sizeof path) != 0)
        snprintf(path, sizeof path, "%s", rq->out ? rq->out : def);
    /* The rule of every command that launches one: when the recording
     * stops (its duration ended, Ctrl-C, SIGTERM), the program is stopped
     * too (cli_stop_launched), unless --keep-running. The terminal's Ctrl-C
     * reaches the program itself, whose agent finishes the recording. */
    int status = 0, ended = 0, left = 0;
    struct timespec d = { 0, 50 * 1000 * 1000 };
    /* wait on the command's pidfd (Linux 5.3), which wakes at its exit: a
     * plain 50 ms sleep added up to 50 ms to every short command */
#ifdef SYS_pidfd_open
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
#else
    int pfd = -1;
#endif
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR)) {
            ended = w == pid;
            break;
        }
        long long samples;
        double secs;
        int done = rq->duration_s > 0 && stat(path, &now) == 0 &&
                   (!had || now.st_ino != before.st_ino || now.st_mtim.tv_sec != before.st_mtim.tv_sec ||
                    now.st_mtim.tv_nsec != before.st_mtim.tv_nsec) &&
                   recording_done(path, &samples, &secs) == 1;
        if (done || got_signal) {
            if (rq->keep_running) {
                left = 1;
                break;
            }
            status = cli_stop_launched(pid, tty_interrupt, CLI_STOP_GRACE_MS);
            ended = 1;
            if (done && !rq->quiet)
                fprintf(stderr, "sonde: stopped the command (pid %d) with the recording (--keep-running"
                        " leaves it running)\n", (int)pid);
            break;
        }
        if (pfd >= 0) {
            struct pollfd pf = { pfd, POLLIN, 0 };
            poll(&pf, 1, 50);
        } else {
            nanosleep(&d, NULL);
        }
    }
    if (pfd >= 0)
        close(pfd);
    if (left) {
        if (!rq->quiet)
            fprintf(stderr, "sonde: the command (pid %d) keeps running%s\n", (int)pid,
                    got_signal ? "; its agent writes the recording when it ends" : "");
        if (got_signal)
            return EXIT_OK;
    }
    int rc = summary(rq, path);
    if (rc == EXIT_OK && !rq->quiet && ended && WIFEXITED(status) && WEXITSTATUS(status) != 0)
        fprintf(stderr, "sonde: note: the command exited with status %d\n", WEXITSTATUS(status));
    if (rc == EXIT_OK && !rq->quiet && ended && WIFSIGNALED(status))
        fprintf(stderr, "sonde: note: the command was killed by signal %d\n", WTERMSIG(status));
    return rc;
}

/* Run gdb in batch mode on pid with one or two commands (expr2 may be
 * NULL); the value the last one printed ("$N = V") into *val. 0, SE_PERM
 * (ptrace refused), SE_NOPROC, or -EIO with gdb's last line. */
static int gdb_call(pid_t pid, const char *expr, const char *expr2, long long *val, char *err,
                    size_t errlen)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return se_fail(err, errlen, -errno, "pipe: %s", strerror(errno));
    char spid[16];
    snprintf(spid, sizeof spid, "%d", (int)pid);
    pid_t g = fork();
    if (g < 0)
        return se_fail(err, errlen, -errno, "fork: %s", strerror(errno));
    if (g == 0) {
        dup2(p[1], 1);
        dup2(p[1], 2);
        int fd = open("/dev/null", O_RDONLY);
        if (fd >= 0)
            dup2(fd, 0);
        execlp("gdb", "gdb", "-q", "-nx", "-batch", "-iex", "set debuginfod enabled off", "-p", spid,
               "-ex", expr, expr2 ? "-ex" : (char *)NULL, expr2, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    char out[8192];
    size_t len = 0;
    ssize_t n;
    while ((n = read(p[0], out + len, sizeof out - 1 - len)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0)
            len += (size_t)n;
    out[len] = 0;
    close(p[0]);
    int status;
    while (waitpid(g, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && !strstr(out, "$1"))
        return se_fail(err, errlen, -ENOENT, "cannot run gdb (install it: it loads the agent into a "
                       "running process)");
    if (strstr(out, "ptrace: Operation not permitted"))
        return se_fail(err, errlen, SE_PERM, "cannot load the agent into process %d: ptrace refused "
                       "(loading needs ptrace permission for a moment: the target's user with "
                       "kernel.yama.ptrace_scope 0 or 1, or CAP_SYS_PTRACE; or start the program under "
                       "`sonde record --agent -- CMD`)", (int)pid);
    if (strstr(out, "No such process"))
        return se_fail(err, errlen, SE_NOPROC, "no process %d", (int)pid);
    const char *v = strstr(out, expr2 ? "$2 = " : "$1 = ");
    if (!v) {
        char *last = out + len;
        while (last > out && (last[-1] == '\n' || last[-1] == ' '))
            *--last = 0;
        while (last > out && last[-1] != '\n')
            last--;
        return se_fail(err, errlen, -EIO, "gdb could not load the agent into process %d: %s", (int)pid,
                       *last ? last : "no answer");
    }
    v += 5;
    if (*v == '(') /* "(void *) 0x..." */
        v = strchr(v, ')') ? strchr(v, ')') + 1 : v;
    *val = strtoll(v, NULL, 0);
    return 0;
}

/* Has pid ended (gone, or a zombie its parent has not reaped yet)? */
static int process_gone(pid_t pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    const char *rp = strrchr(buf, ')');
    return !rp || rp[1] != ' ' || rp[2] == 'Z' || rp[2] == 'X';
}

static int attach(const struct agent_req *rq, const char *lib)
{
    char path[PATH_MAX], def[64], err[768], expr[PATH_MAX + 128];
    snprintf(def, sizeof def, "sonde-%d.sonde", (int)rq->pid);
    if (absolute(rq->out ? rq->out : def, path, sizeof path) != 0)
        return cli_error(-ENAMETOOLONG, "output path too long");
    if (strpbrk(path, "\"\\\n") || strpbrk(lib, "\"\\\n"))
        return cli_error(SE_USAGE, "the output path and the agent's path may not hold quotes, "
                         "backslashes or newlines");
    if (kill(rq->pid, 0) != 0 && errno == ESRCH)
        return cli_error(SE_NOPROC, "no such process");
    /* dlopen, then start, in one gdb session (gdb knows sonde_agent_start
     * only once the library is loaded: a failed dlopen leaves no "$2") */
    char expr2[PATH_MAX + 128];
    snprintf(expr, sizeof expr, "call ((void*(*)(const char*,int))dlopen)(\"%s\", 2)", lib);
    snprintf(expr2, sizeof expr2, "call ((int(*)(const char*,int,double))sonde_agent_start)(\"%s\", %d, %f)",
             path, rq->rate_hz, rq->duration_s);
    long long v = 0;
    int rc = gdb_call(rq->pid, expr, expr2, &v, err, sizeof err);
    if (rc)
        return cli_error(rc, err);
    if (v == -EBUSY)
        return cli_error(-EBUSY, "an agent already records in this process");
    if (v)
        return cli_error((int)v, "the agent did not start");
    if (!rq->quiet)
        fprintf(stderr, "sonde: agent recording process %d into %s%s\n", (int)rq->pid, path,
                rq->duration_s > 0 ? "" : " (until it exits, or Ctrl-C)");
    struct timespec d = { 0, 100 * 1000 * 1000 }, t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long long samples;
    double secs;
    for (;;) {
        if (process_gone(rq->pid))
            break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        /* the agent creates the file once it has found the runtime (it
         * waits up to 10 s); none by then: it gave up */
        if (now.tv_sec - t0.tv_sec > 12 && recording_done(path, &samples, &secs) < 0)
            return cli_error(SE_NOTPYTHON, "the agent did not start recording (its reason is on the "
                             "process's stderr)");
        if (rq->duration_s > 0 && recording_done(path, &samples, &secs) == 1)
            break;
        if (got_signal) {
            rc = gdb_call(rq->pid, "call ((int(*)(void))sonde_agent_stop)()", NULL, &v, err,
                          sizeof err);
            if (rc)
                return cli_error(rc, err);
            break;
        }
        nanosleep(&d, NULL);
    }
    return summary(rq, path);
}

int cli_agent_record(const struct agent_req *rq)
{
    char lib[PATH_MAX], pydir[PATH_MAX], err[PATH_MAX + 128];
    int rc = find_agent(lib, pydir, err, sizeof err);
    if (rc)
        return cli_error(rc, err);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (rq->pid)
        return attach(rq, lib);
    return launch(rq, lib, pydir);
}
