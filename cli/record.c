/* sonde record: sample a running process or a command sonde launches, and
 * write a .sonde recording. */
#include "cli/agent_launch.h"
#include "cli/cli.h"
#include "cli/launch.h"

#include "common/err.h"
#include "profiler/recorder.h"
#include "profiler/store.h"
#include "tracer/native/nsample.h"
#include "tracer/sampler.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t tty_interrupt; /* a Ctrl-C: the launched command got it too */

static void on_signal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (sig == SIGINT && si && si->si_code == SI_KERNEL)
        tty_interrupt = 1;
    stop_flag = 1;
}

static void record_usage(FILE *f)
{
    fputs("usage: sonde record [-r HZ] [-d SECONDS] [-o FILE] [--subprocesses | --agent] [--keep-running]\n"
          "                    [--native [--native-all]] (-p PID | -- CMD ARGS...)\n"
          "  -p, --pid PID        sample a running process (never paused or written to)\n"
          "  -r, --rate HZ        samples per second per thread, 1..10000 (default 100)\n"
          "  -d, --duration S     stop after S seconds (default: when the target exits or on Ctrl-C)\n"
          "  -o, --output FILE    the .sonde file to write (default sonde-PID.sonde)\n"
          "  -s, --subprocesses   also record the target's child processes; a command that is\n"
          "                       not Python (a shell, make) is followed to the Python it runs\n"
          "  -k, --keep-running   leave a launched command running when recording stops\n"
          "                       (default: SIGINT, then SIGTERM after 2 s, then SIGKILL)\n"
          "      --no-tasks       do not record asyncio tasks as green threads\n"
          "      --native         native (C) frames too: each thread that ran is stopped for an\n"
          "                       instant with ptrace at each sample (not with --agent)\n"
          "      --native-all     also the interpreter's own native frames\n"
          "  -a, --agent          sample from inside the program (no ptrace needed to launch;\n"
          "                       -p PID loads the agent into the running process)\n"
          "      --collector URL  with --agent: export the program's spans (sonde.span) to this\n"
          "                       OTLP/HTTP endpoint (sets SONDE_COLLECTOR for the command)\n"
          "  -q, --quiet          no progress line or summary\n",
          f);
}

/* The live progress line on a terminal, drawn from the sampler's figures
 * (called on the sampling thread). */
struct progress_line {
    int fd;   /* -1 once a write failed */
    int rate_hz;
};

static void draw_progress(const struct sampler_stats *st, int final, void *ctx)
{
    struct progress_line *p = ctx;
    if (p->fd < 0)
        return;
    double el = (double)st->duration_ns / 1e9;
    char line[256];
    int n = snprintf(line, sizeof line,
                     "\r\033[Krecording %d process%s: %.1f s, %" PRIu64 " samples, %.0f Hz of %d, %" PRIu64
                     " errors%s",
                     (int)st->processes, st->processes == 1 ? "" : "es", el, st->samples,
                     el > 0 ? (double)st->ticks / el : 0.0, p->rate_hz, st->errors,
                     final ? "\n" : "");
    if (write(p->fd, line, (size_t)n) < 0)
        p->fd = -1;
}

/* Fail before recording: a process sonde started for it is stopped, as
 * at the end of a recording (unless keep). Returns the exit status. */
static int give_up(pid_t launched, int keep, int rc, const char *err)
{
    if (launched > 0 && !keep)
        cli_stop_launched(launched, tty_interrupt, CLI_STOP_GRACE_MS);
    return cli_error(rc, err);
}

int cmd_record(int argc, char **argv)
{
    static const struct option opts[] = {
        { "pid", required_argument, NULL, 'p' },
        { "rate", required_argument, NULL, 'r' },
        { "duration", required_argument, NULL, 'd' },
        { "output", required_argument, NULL, 'o' },
        { "subprocesses", no_argument, NULL, 's' },
        { "no-tasks", no_argument, NULL, 'N' },
        { "quiet", no_argument, NULL, 'q' },
        { "agent", no_argument, NULL, 'a' },
        { "collector", required_argument, NULL, 'C' },
        { "keep-running", no_argument, NULL, 'k' },
        { "help", no_argument, NULL, 'h' },
        { "native", no_argument, NULL, 'n' },
        { "native-all", no_argument, NULL, 'A' },
        /* hidden, for scripts/bench: sample only in every other MS-long
         * window of CLOCK_MONOTONIC */
        { "duty", required_argument, NULL, 'D' },
        { 0, 0, 0, 0 },
    };
    int pid = 0, rate = 100, subproc = 0, quiet = 0, tasks = 1, agent = 0, keep = 0, c;
    int native = 0, native_all = 0;
    double duration = 0, duty_ms = 0;
    const char *out = NULL, *collector = NULL;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:p:r:d:o:sqakh", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (cli_opt_pid(optarg, &pid))
                return EXIT_USAGE;
            break;
        case 'r':
            if (cli_opt_rate(optarg, &rate))
                return EXIT_USAGE;
            break;
        case 'd':
            if (cli_opt_number("duration", optarg, 0, 1e9, &duration))
                return EXIT_USAGE;
            break;
        case 'o': out = optarg; break;
        case 's': subproc = 1; break;
        case 'N': tasks = 0; break;
        case 'q': quiet = 1; break;
        case 'a': agent = 1; break;
        case 'k': keep = 1; break;
        case 'n': native = 1; break;
        case 'A': native = native_all = 1; break;
        case 'C':
            if (strncmp(optarg, "http://", 7) != 0 && strncmp(optarg, "https://", 8) != 0) {
                fprintf(stderr, "sonde: --collector wants an http:// or https:// URL, not '%s'\n", optarg);
                return EXIT_USAGE;
            }
            for (const char *p = optarg; *p; p++)
                if ((unsigned char)*p <= ' ' || *p == 0x7f) {
                    fprintf(stderr, "sonde: --collector: the URL has a space or control character\n");
                    return EXIT_USAGE;
                }
            collector = optarg;
            break;
        case 'D':
            if (cli_opt_number("duty", optarg, 1, 60000, &duty_ms))
                return EXIT_USAGE;
            break;
        case 'h': record_usage(stdout); return EXIT_OK;
        default: return cli_opt_bad("record", c, argv, optind);
        }
    }
    char **cmd = argv + optind;
    int ncmd = argc - optind;
    if ((pid && ncmd) || (!pid && !ncmd)) {
        return cli_usage_error("record", "give either -p PID or -- CMD ARGS...");
    }
    if (agent && (subproc || duty_ms > 0)) {
        fprintf(stderr, "sonde: --agent records one process: no --subprocesses or --duty\n");
        return EXIT_USAGE;
    }
    if (agent && native) {
        fprintf(stderr, "sonde: --native reads threads from outside: not with --agent\n");
        return EXIT_USAGE;
    }
    if (collector && (!agent || pid)) {
        fprintf(stderr, "sonde: --collector goes with --agent -- CMD (a program sonde launches)\n");
        return EXIT_USAGE;
    }
    if (keep && pid)
        return cli_usage_error("record", "--keep-running is for a command sonde launches (-- CMD)");
    /* a bad -o is said before anything is launched */
    char err[512] = "";
    int rc;
    if (out && (rc = store_check_replaceable(out, err, sizeof err)))
        return cli_error(rc, err);
    if (agent) {
        struct agent_req rq = { ncmd ? cmd : NULL, pid, out, rate, duration, quiet, !tasks, collector, keep };
        return cli_agent_record(&rq);
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    pid_t launched = 0;
    if (ncmd) {
        launched = cli_launch(cmd, 0, err, sizeof err);
        if (launched < 0)
            return cli_launch_failed(launched, err);
        if ((rc = cli_wait_for_python_in(launched, subproc, &stop_flag, &pid, err, sizeof err)))
            return give_up(launched, keep, rc, err);
    }

    char defname[64];
    if (!out) {
        snprintf(defname, sizeof defname, "sonde-%d.sonde", pid);
        out = defname;
    }
    struct sample_queue *q = squeue_new(32, 1 << 20);
    if (!q)
        return give_up(launched, keep, -ENOMEM, "out of memory");
    struct progress_line pl = { .fd = 2, .rate_hz = rate };
    struct sampler_opts so = {
        .rate_hz = rate,
        .duration_s = duration,
        .subprocesses = subproc,
        .tasks = tasks,
        .launched = launched,
        .wrapper = launched && pid != launched ? launched : 0,
        .stop = &stop_flag,
        .duty_ns = (int64_t)(duty_ms * 1e6),
        .progress = !quiet && isatty(2) ? draw_progress : NULL,
        .progress_ctx = &pl,
        .native = native ? &nat_sampler_hooks : NULL,
        .native_all = native_all,
    };
    struct sampler *s = NULL;
    rc = sampler_new(&s, pid, &so, q, err, sizeof err);
    if (rc) {
        squeue_free(q);
        return give_up(launched, keep, rc, err);
    }
    sqlite3 *db;
    rc = store_create(out, NULL, &db, err, sizeof err);
    struct recorder *r = NULL;
    {
        struct sampler_stats st0;
        sampler_get_stats(s, &st0);
        if (!rc)
            rc = recorder_start(&r, db, q, &st0, rate, &stop_flag, err, sizeof err);
    }
    if (rc) {
        sampler_free(s);
        squeue_free(q);
        return give_up(launched, keep, rc, err);
    }
    /* This thread samples; the recorder's writer thread consumes the queue. */
    sampler_run(s);
    struct sampler_stats st;
    sampler_get_stats(s, &st);
    uint64_t switches = sampler_gil_switches(s);
    /* Lifetimes (tracer/sampler.h): the writer reads the sampler's code
     * objects until recorder_finish joins it; only then may the sampler go,
     * and the queue last. */
    rc = recorder_finish(r, &st, switches, rate, err, sizeof err);
    sampler_free(s);
    squeue_free(q);
    /* the rule of every command that launches one: when sonde stops, the
     * command stops too, unless --keep-running */
    int status = 0, ended = 1;
    if (launched) {
        /* no stop asked for and the duration not over: every target ended,
         * the command is ending on its own (exit handlers, a wrapper's last
         * words): it gets the grace period to do so first */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t ran = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec - st.start_mono_ns;
        int natural = !stop_flag && !(duration > 0 && (double)ran >= duration * 1e9);
        ended = cli_wait_launched(launched, natural ? CLI_STOP_GRACE_MS : 0, &status);
        if (!ended && !keep) {
            status = cli_stop_launched(launched, tty_interrupt, CLI_STOP_GRACE_MS);
            if (!quiet && !rc)
                fprintf(stderr, "sonde: stopped the command (pid %d) with the recording (--keep-running"
                        " leaves it running)\n", (int)launched);
        } else if (!ended && !quiet && !rc) {
            fprintf(stderr, "sonde: the command (pid %d) keeps running\n", (int)launched);
        }
    }
    if (rc)
        return cli_error(rc, err);
    if (st.stop_reason[0])
        fprintf(stderr, "sonde: %s\n", st.stop_reason);
    if (!quiet) {
        double secs = (double)st.duration_ns / 1e9;
        fprintf(stderr,
                "sonde: wrote %s: %llu samples in %.2f s (%.0f of %d Hz), %llu errors, %llu dropped\n",
                out, (unsigned long long)st.samples, secs, secs > 0 ? (double)st.ticks / secs : 0.0,
                rate, (unsigned long long)st.errors, (unsigned long long)st.dropped);
        if (native)
            fprintf(stderr,
                    "sonde: native stacks: %llu (%llu cut short), %llu samples without (thread not"
                    " stopped); threads stood stopped %.0f us on average, %.0f us at most\n",
                    (unsigned long long)st.native_samples, (unsigned long long)st.native_truncated,
                    (unsigned long long)st.native_failed,
                    st.native_samples ? (double)st.native_hold_sum_ns / 1e3 / (double)st.native_samples : 0.0,
                    (double)st.native_hold_max_ns / 1e3);
    }
    if (launched && ended && WIFEXITED(status) && WEXITSTATUS(status) != 0 && !quiet)
        fprintf(stderr, "sonde: note: the command exited with status %d\n", WEXITSTATUS(status));
    return EXIT_OK;
}
