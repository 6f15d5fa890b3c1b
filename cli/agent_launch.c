/* sonde record --agent (cli/agent_launch.h): finding the agent library and
 * the Python package, launching a command with them, loading them into a
 * running process (cli/inject.h), and telling what was recorded. */
#include "cli/agent_launch.h"

#include "cli/launch.h"
#include "cli/cli.h"
#include "cli/inject.h"

#include "common/clock.h"
#include "common/err.h"
#include "tracer/cpython/runtime.h"
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
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long past its length an attached agent's recording may take to be
 * written (the agent waits up to 10 s for the runtime first) */
#define AGENT_FINISH_GRACE_S 30

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
    /* quiet: nothing to say of it but that it is there (opening it costs a
     * millisecond or two of every short command's run) */
    int done = rq->quiet ? (is_file(path) ? 1 : -1) : recording_done(path, &samples, &secs);
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

/* A function of the agent to call in the target: with a string (and up
 * to two integers after it), or with no argument (str NULL). */
struct agent_fn {
    const char *name, *str;
    int nint;
    long long i[2];
};

/* In process pid's main thread, stopped (j, cli/inject.h) where it waits
 * in a system call: load the agent library lib (dlopen) and call the
 * functions fns[0..n-1] of it in turn (each only when the one before
 * returned 0); val[k] receives each one's int result. 0, or a code with a
 * one-line message in err. j is left to the caller. */
static int agent_calls(struct inject *j, pid_t pid, const char *lib, const struct agent_fn *fns,
                       int n, long long *val, char *err, size_t errlen)
{
    static const char *const libc[] = { "/libc.so.6", "/libdl.so.2", NULL };
    int rc;
    uint64_t dlopen_a = inject_symbol(j, libc, "dlopen");
    uint64_t dlsym_a = inject_symbol(j, libc, "dlsym");
    uint64_t dlerror_a = inject_symbol(j, libc, "dlerror");
    if (!dlopen_a || !dlsym_a)
        return se_fail(err, errlen, SE_UNSUPPORTED, "process %d has no dlopen (no shared libc: a "
                       "static executable?): start the program under `sonde record --agent -- CMD`",
                       (int)pid);
    char data[8192];
    size_t dlen = strlen(lib) + 1;
    if (dlen > sizeof data)
        return se_fail(err, errlen, -ENAMETOOLONG, "path too long");
    memcpy(data, lib, dlen);
    uint64_t handle = 0;
    uint64_t a_open[2] = { INJECT_DATA, 2 /* RTLD_NOW */ };
    rc = inject_call(j, dlopen_a, a_open, 2, data, dlen, &handle, err, errlen);
    if (!rc && !handle) {
        char why[512] = "";
        uint64_t msg = 0;
        if (dlerror_a && inject_call(j, dlerror_a, NULL, 0, NULL, 0, &msg, err, errlen) == 0 && msg)
            inject_read_string(j, msg, why, sizeof why);
        rc = se_fail(err, errlen, -EIO, "process %d could not load %s: %s", (int)pid, lib,
                     *why ? why : "dlopen failed");
    }
    for (int k = 0; !rc && k < n; k++) {
        /* the strings: the function's name, then its argument */
        size_t fl = strlen(fns[k].name) + 1, sl = fns[k].str ? strlen(fns[k].str) + 1 : 0;
        if (fl + sl > sizeof data) {
            rc = se_fail(err, errlen, -ENAMETOOLONG, "path too long");
            break;
        }
        memcpy(data, fns[k].name, fl);
        if (sl)
            memcpy(data + fl, fns[k].str, sl);
        uint64_t f = 0, ret = 0;
        uint64_t a_sym[2] = { handle, INJECT_DATA };
        rc = inject_call(j, dlsym_a, a_sym, 2, data, fl + sl, &f, err, errlen);
        if (!rc && !f)
            rc = se_fail(err, errlen, -EIO, "process %d: %s has no %s", (int)pid, lib, fns[k].name);
        if (rc)
            break;
        uint64_t a_fn[3] = { INJECT_DATA + fl, (uint64_t)fns[k].i[0], (uint64_t)fns[k].i[1] };
        rc = inject_call(j, f, a_fn, sl ? 1 + fns[k].nint : 0, data, fl + sl, &ret, err, errlen);
        if (rc)
            break;
        val[k] = (int)(uint32_t)ret;
        if (val[k])
            n = k + 1; /* the next ones wait for this one */
    }
    return rc;
}

/* The system calls in which a thread waits for something, holding none of
 * libc's locks: calling dlopen (which takes the loader's lock and
 * allocates) from a thread stopped anywhere else could wait forever on a
 * lock that thread itself holds (seen: stopped inside free). */
static int waiting_syscall(long nr)
{
    switch (nr) {
    case SYS_poll: case SYS_select: case SYS_pause: case SYS_nanosleep: case SYS_wait4:
    case SYS_futex: case SYS_clock_nanosleep: case SYS_epoll_wait: case SYS_waitid:
    case SYS_pselect6: case SYS_ppoll: case SYS_epoll_pwait:
    case SYS_restart_syscall: /* one of those, interrupted before (by us) */
        return 1;
    default:
        return 0;
    }
}

/* The pending call's page: its first 8 bytes are the code's state, which
 * the code alone writes: 0 until it runs, SLOT_STARTED as its first act,
 * then SLOT_DONE | its int result, SLOT_FAILED (an exception) or
 * SLOT_ABORTED (it found the cancel word set). The next 8 bytes are the
 * cancel word, which sonde alone writes, only while the main thread (the
 * only one that runs pending calls) is stopped: the code writes its state,
 * then reads the word; sonde writes the word, then reads the state. So
 * either the code sees the cancel and does nothing, or sonde sees that it
 * started and waits for its end: never both the code and sonde's own
 * calls (agent_run). */
#define SLOT_DONE (1ll << 32)
#define SLOT_FAILED (2ll << 32)
#define SLOT_STARTED (4ll << 32)
#define SLOT_ABORTED (5ll << 32)
#define SLOT_KIND(v) ((v) & ~0xffffffffll)
#define PENDING_WAIT_MS 3000
/* A pending call that started: how long it may take to end (loading the
 * agent, or stopping it, which finishes the recording's file) */
#define PENDING_RUN_MS 60000

static void hexify(char *out, const char *s)
{
    static const char d[] = "0123456789abcdef";
    for (; *s; s++) {
        *out++ = d[(unsigned char)*s >> 4];
        *out++ = d[(unsigned char)*s & 15];
    }
    *out = 0;
}

static int read_slot(pid_t pid, uint64_t addr, long long *v)
{
    struct iovec l = { v, sizeof *v }, r = { (void *)(uintptr_t)addr, sizeof *v };
    return process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)sizeof *v ? 0 : -errno;
}

/* Wait up to ms for the code's state at page to be other than 0 and
 * SLOT_STARTED (or, with started_too, other than 0). 0 with *v set, 1 not
 * in time, SE_EXITED. */
static int wait_slot(pid_t pid, uint64_t page, int64_t ms, int started_too, long long *v)
{
    struct timespec d = { 0, 5 * 1000 * 1000 };
    int64_t end = mono_ns() + ms * 1000000;
    for (;;) {
        if (read_slot(pid, page, v) != 0)
            return SE_EXITED;
        if (*v && (started_too || SLOT_KIND(*v) != SLOT_STARTED))
            return 0;
        if (mono_ns() > end)
            return 1;
        nanosleep(&d, NULL);
    }
}

/* The code's end as run_python's result. */
static int slot_result(pid_t pid, long long v, long long *result, char *err, size_t errlen)
{
    if (SLOT_KIND(v) == SLOT_DONE) {
        *result = (int)(uint32_t)v;
        return 0;
    }
    return se_fail(err, errlen, -EIO, "the agent could not be loaded in process %d (a Python "
                   "exception)", (int)pid);
}

/* Run Python code in process pid's main thread at its next bytecode, with
 * the GIL, where no lock of libc is held: a page is mapped (mmap) and
 * Py_AddPendingCall queues PyRun_SimpleString of the code in it, from a
 * stop of the main thread that calls nothing else. body defines run(),
 * which returns an int: the code runs it (exec'd in a dictionary of its
 * own: the program's __main__ gains no name) unless sonde cancelled it.
 * 0 with *result; 1 when it did not start within PENDING_WAIT_MS (the
 * main thread ran no Python code): then *jp is the main thread, stopped,
 * and the code will never run (cancelled); 2 when it started right as it
 * was cancelled, and did nothing (the main thread runs Python code: ask
 * again); or a code with err. */
static int run_python(pid_t pid, const char *body, long long *result, struct inject **jp,
                      char *err, size_t errlen)
{
    static const char *const libc[] = { "/libc.so.6", NULL };
    static const char *const py[] = { "*libpython", "=exe", NULL };
    *jp = NULL;
    struct inject *j;
    int rc = inject_begin(&j, pid, err, errlen);
    if (rc)
        return rc;
    uint64_t mmap_a = inject_symbol(j, libc, "mmap");
    uint64_t apc = inject_symbol(j, py, "Py_AddPendingCall");
    uint64_t run = inject_symbol(j, py, "PyRun_SimpleString");
    if (!mmap_a || !apc || !run) {
        inject_end(j);
        return se_fail(err, errlen, SE_NOTPYTHON, "process %d has no Py_AddPendingCall, "
                       "PyRun_SimpleString or mmap to call", (int)pid);
    }
    uint64_t page = 0, ret = 1;
    uint64_t a_mmap[6] = { 0, 65536, 3 /* PROT_READ|WRITE */, 0x22 /* MAP_PRIVATE|ANONYMOUS */,
                           (uint64_t)-1, 0 };
    rc = inject_call(j, mmap_a, a_mmap, 6, NULL, 0, &page, err, errlen);
    if (!rc && (page == 0 || page >= (uint64_t)-4096))
        rc = se_fail(err, errlen, -ENOMEM, "process %d could not map a page", (int)pid);
    /* the code around body: state first, then the cancel word */
    static const char wrap[] =
        "import ctypes\n"
        "s = ctypes.c_longlong.from_address(%llu)\n"
        "c = ctypes.c_longlong.from_address(%llu)\n"
        "try:\n"
        "    s.value = %lld\n"
        "    if c.value:\n"
        "        s.value = %lld\n"
        "    else:\n"
        "        exec(bytes.fromhex('%s').decode('utf-8', 'surrogateescape'), g)\n"
        "        s.value = %lld | (g['run']() & 0xffffffff)\n"
        "except BaseException:\n"
        "    s.value = %lld\n";
    /* PyRun_SimpleString's own code: nothing it does may raise into the
     * program (a pending call that fails must leave an exception; this
     * one leaves none) */
    static const char outer[] =
        "try:\n"
        "    exec(bytes.fromhex('%s').decode('utf-8', 'surrogateescape'), {'g': {}})\n"
        "except BaseException:\n"
        "    pass\n";
    size_t bl = strlen(body);
    size_t tl = sizeof wrap + 2 * bl + 160;
    size_t cl = sizeof outer + 2 * tl;
    char *hb = NULL, *text = NULL, *code = NULL;
    if (!rc) {
        hb = malloc(2 * bl + 1);
        text = malloc(tl);
        code = malloc(cl);
        if (!hb || !text || !code)
            rc = se_fail(err, errlen, -ENOMEM, "out of memory");
    }
    if (!rc) {
        hexify(hb, body);
        snprintf(text, tl, wrap, (unsigned long long)page, (unsigned long long)page + 8,
                 SLOT_STARTED, SLOT_ABORTED, hb, SLOT_DONE, SLOT_FAILED);
        char *ht = malloc(2 * strlen(text) + 1);
        if (!ht) {
            rc = se_fail(err, errlen, -ENOMEM, "out of memory");
        } else {
            hexify(ht, text);
            snprintf(code, cl, outer, ht);
            free(ht);
        }
    }
    if (!rc) {
        size_t n = strlen(code) + 1;
        if (n > 65536 - 64)
            rc = se_fail(err, errlen, -ENAMETOOLONG, "path too long");
        else if (inject_write(j, page + 64, code, n) != 0)
            rc = se_fail(err, errlen, -EIO, "cannot write into process %d", (int)pid);
    }
    free(hb);
    free(text);
    free(code);
    if (!rc) {
        uint64_t a_apc[2] = { run, page + 64 };
        rc = inject_call(j, apc, a_apc, 2, NULL, 0, &ret, err, errlen);
        if (!rc && (int)ret != 0)
            rc = se_fail(err, errlen, -EAGAIN, "process %d has no room for a pending call", (int)pid);
    }
    if (rc == SE_EXITED)
        inject_free(j);
    else
        inject_end(j);
    if (rc)
        return rc;
    /* the main thread runs it at its next bytecode */
    long long v = 0;
    rc = wait_slot(pid, page, PENDING_WAIT_MS, 1, &v);
    if (rc == SE_EXITED)
        return se_fail(err, errlen, SE_EXITED, "process %d ended", (int)pid);
    if (rc == 1) {
        /* not started: cancelled with the main thread stopped, unless it
         * started meanwhile */
        long long one = 1;
        rc = inject_begin(&j, pid, err, errlen);
        if (rc) {
            /* the main thread cannot be stopped (stuck in the kernel): it
             * runs no code either; cancelled all the same, so that the
             * code does nothing if it ever runs */
            struct iovec l = { &one, sizeof one }, r = { (void *)(uintptr_t)(page + 8), sizeof one };
            process_vm_writev(pid, &l, 1, &r, 1, 0);
            return rc;
        }
        if (inject_write(j, page + 8, &one, sizeof one) != 0 || read_slot(pid, page, &v) != 0) {
            inject_end(j);
            return se_fail(err, errlen, -EIO, "cannot write into process %d", (int)pid);
        }
        if (!v) {
            *jp = j;
            return 1;
        }
        inject_end(j);
    }
    /* started: it ends (or sees the cancel) by itself */
    if (SLOT_KIND(v) == SLOT_STARTED) {
        rc = wait_slot(pid, page, PENDING_RUN_MS, 0, &v);
        if (rc == SE_EXITED)
            return se_fail(err, errlen, SE_EXITED, "process %d ended", (int)pid);
        if (rc == 1)
            return se_fail(err, errlen, -ETIMEDOUT, "the code sonde queued in process %d started "
                           "but did not end within %d s", (int)pid, PENDING_RUN_MS / 1000);
    }
    if (SLOT_KIND(v) == SLOT_ABORTED)
        return 2; /* it saw the cancel: the main thread runs Python code again */
    return slot_result(pid, v, result, err, errlen);
}

/* Load the agent into process pid and start it (fns[0]), then hook
 * greenlets (fns[1]); or stop it (fns[0] only). The Python route first
 * (run_python); a main thread that runs no Python code but waits in a
 * system call gets the calls directly. */
static int agent_run(pid_t pid, const char *lib, const char *body, const struct agent_fn *fns,
                     int n, long long *v, char *err, size_t errlen)
{
    struct inject *j;
    int rc = 2;
    for (int k = 0; k < 3 && rc == 2; k++)
        rc = run_python(pid, body, v, &j, err, errlen);
    if (rc == 2)
        return se_fail(err, errlen, -ETIMEDOUT, "the main thread of process %d was too slow to "
                       "run the code sonde queued: nothing was loaded (try again)", (int)pid);
    if (rc != 1)
        return rc;
    long nr = inject_syscall(j);
    if (!waiting_syscall(nr)) {
        inject_end(j);
        return se_fail(err, errlen, -ETIMEDOUT, "the main thread of process %d ran no Python code for "
                       "%d s and is busy%s: nothing was loaded (try again)", (int)pid,
                       PENDING_WAIT_MS / 1000, nr >= 0 ? " in a system call" : "");
    }
    long long vals[2] = { 0, 0 };
    rc = agent_calls(j, pid, lib, fns, n, vals, err, errlen);
    if (rc == SE_EXITED)
        inject_free(j);
    else
        inject_end(j);
    *v = vals[0];
    return rc;
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

static int attach(const struct agent_req *rq, const char *lib, const char *pydir)
{
    char path[PATH_MAX], def[64], err[768];
    snprintf(def, sizeof def, "sonde-%d.sonde", (int)rq->pid);
    if (absolute(rq->out ? rq->out : def, path, sizeof path) != 0)
        return cli_error(-ENAMETOOLONG, "output path too long");
    if (kill(rq->pid, 0) != 0 && errno == ESRCH)
        return cli_error(SE_NOPROC, "no such process");
    /* the agent's package needs 3.8+: an older Python is told so before
     * anything is loaded (a process that cannot be read here is left to
     * the loading's own errors) */
    struct py_runtime rt;
    char rerr[256];
    if (py_runtime_attach(&rt, rq->pid, rerr, sizeof rerr) == 0 &&
        (rt.major < 3 || (rt.major == 3 && rt.minor < 8))) {
        snprintf(err, sizeof err, "process %d runs Python %s: the agent supports 3.8 and later "
                 "(`sonde record -p %d` samples it from outside)", (int)rq->pid, rt.version,
                 (int)rq->pid);
        py_runtime_fini(&rt);
        return cli_error(SE_UNSUPPORTED, err);
    }
    py_runtime_fini(&rt);
    /* start, then hook greenlet switches (see agent_run) */
    struct agent_fn fns[2] = {
        { "sonde_agent_start_ms", path, 2, { rq->rate_hz, (long long)(rq->duration_s * 1000.0 + 0.5) } },
        { "sonde_agent_hook_greenlets", pydir, 0, { 0, 0 } },
    };
    char hl[2 * PATH_MAX + 1], hp[2 * PATH_MAX + 1], hd[2 * PATH_MAX + 1];
    hexify(hl, lib);
    hexify(hp, path);
    hexify(hd, pydir);
    char *inner = malloc(8 * PATH_MAX + 1024);
    if (!inner)
        return cli_error(-ENOMEM, "out of memory");
    snprintf(inner, 8 * PATH_MAX + 1024,
             "def run():\n"
             "    import ctypes, os, sys\n"
             "    l = ctypes.CDLL(os.fsdecode(bytes.fromhex('%s')))\n"
             "    f = l.sonde_agent_start_ms\n"
             "    f.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_longlong]\n"
             "    r = f(bytes.fromhex('%s'), %d, %lld)\n"
             "    if r == 0:\n"
             "        d = os.fsdecode(bytes.fromhex('%s'))\n"
             "        sys.path.insert(0, d)\n"
             "        try:\n"
             "            import sonde._greenlets\n"
             "            sonde._greenlets.install_at_import(l._name)\n"
             "        except BaseException:\n"
             "            pass\n"
             "        finally:\n"
             "            sys.path.remove(d)\n"
             "    return r\n",
             hl, hp, rq->rate_hz, fns[0].i[1], hd);
    long long v = 0;
    int rc = agent_run(rq->pid, lib, inner, fns, 2, &v, err, sizeof err);
    free(inner);
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
        /* a recording of a set length that does not end (the agent stuck,
         * or its process stopped): said, never waited for forever */
        if (rq->duration_s > 0 &&
            (double)(now.tv_sec - t0.tv_sec) > rq->duration_s + AGENT_FINISH_GRACE_S) {
            snprintf(err, sizeof err, "the agent in process %d did not finish its %g s recording "
                     "within %d s more (it may be incomplete)", (int)rq->pid, rq->duration_s,
                     AGENT_FINISH_GRACE_S);
            return cli_error(-ETIMEDOUT, err);
        }
        if (got_signal) {
            struct agent_fn stop = { "sonde_agent_stop", NULL, 0, { 0, 0 } };
            char code[2 * PATH_MAX + 512];
            snprintf(code, sizeof code,
                     "def run():\n"
                     "    import ctypes, os\n"
                     "    l = ctypes.CDLL(os.fsdecode(bytes.fromhex('%s')), "
                     "mode=os.RTLD_NOLOAD | os.RTLD_NOW)\n"
                     "    return l.sonde_agent_stop()\n", hl);
            rc = agent_run(rq->pid, lib, code, &stop, 1, &v, err, sizeof err);
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
        return attach(rq, lib, pydir);
    return launch(rq, lib, pydir);
}
