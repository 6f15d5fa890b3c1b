/* sonde top: a live view of a running process or of a command sonde
 * launches (curses on a terminal, plain-text snapshots otherwise).
 * (ui/top.c draws it.) */
#include "cli/cli.h"
#include "cli/launch.h"

#include "common/err.h"
#include "profiler/live.h"
#include "tracer/native/nsample.h"
#include "tracer/sampler.h"
#include "ui/top.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag;     /* quit (signal or user) */
static volatile sig_atomic_t sampler_stop;  /* stop the sampling loop */

static volatile sig_atomic_t tty_interrupt; /* a Ctrl-C: the launched command got it too */

static void on_signal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (sig == SIGINT && si && si->si_code == SI_KERNEL)
        tty_interrupt = 1;
    stop_flag = 1;
    sampler_stop = 1;
}

static void top_usage(FILE *f)
{
    fputs("usage: sonde top [-r HZ] [--interval S] [--duration S] [--mode M] [--no-tasks] [--keep-running]\n"
          "                 [--native [--native-all]] (-p PID | -- CMD ARGS...)\n"
          "  -p, --pid PID        watch a running process (never paused or written to, but by\n"
          "                       --native)\n"
          "  -r, --rate HZ        samples per second per thread, 1..10000 (default 100)\n"
          "  -i, --interval S     refresh every S seconds (default 1)\n"
          "  -d, --duration S     stop after S seconds (default: when the target exits, or q)\n"
          "  -m, --mode M         start in mode wall, cpu or gil (default wall)\n"
          "      --no-tasks       do not read asyncio tasks (listed under their thread)\n"
          "      --native         native (C) frames too, as record --native takes them: each\n"
          "                       thread that ran is stopped for an instant with ptrace\n"
          "      --native-all     also the interpreter's own native frames\n"
          "  -k, --keep-running   leave a launched command running when top stops\n"
          "                       (default: SIGINT, then SIGTERM after 2 s, then SIGKILL)\n"
          "On a terminal: an interactive view (press ? for its keys). Otherwise: a plain-text\n"
          "snapshot every interval, until the target exits or the duration ends.\n",
          f);
}

static void *sampler_main(void *arg)
{
    sampler_run(arg);
    return NULL;
}

/* Called on the UI thread while the sampling thread runs: a snapshot. */
static uint64_t errors_of(void *ctx)
{
    struct sampler_stats st;
    sampler_get_stats(ctx, &st);
    return st.errors;
}

int cmd_top(int argc, char **argv)
{
    static const struct option opts[] = {
        { "pid", required_argument, NULL, 'p' },
        { "rate", required_argument, NULL, 'r' },
        { "interval", required_argument, NULL, 'i' },
        { "duration", required_argument, NULL, 'd' },
        { "mode", required_argument, NULL, 'm' },
        { "no-tasks", no_argument, NULL, 'N' },
        { "keep-running", no_argument, NULL, 'k' },
        { "native", no_argument, NULL, 'n' },
        { "native-all", no_argument, NULL, 'A' },
        { "help", no_argument, NULL, 'h' },
        { 0, 0, 0, 0 },
    };
    int pid = 0, rate = 100, c, mode = Q_WALL, tasks = 1, keep = 0, native = 0, native_all = 0;
    double interval = 1, duration = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:p:r:i:d:m:kh", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (cli_opt_pid(optarg, &pid))
                return EXIT_USAGE;
            break;
        case 'r':
            if (cli_opt_rate(optarg, &rate))
                return EXIT_USAGE;
            break;
        case 'i':
            if (cli_opt_number("interval (0.05 to 3600 seconds)", optarg, 0.05, 3600, &interval))
                return EXIT_USAGE;
            break;
        case 'd':
            if (cli_opt_number("duration", optarg, 0, 1e9, &duration))
                return EXIT_USAGE;
            break;
        case 'm':
            if (cli_parse_mode(optarg, &mode)) {
                fprintf(stderr, "sonde: unknown mode '%s' (wall, cpu or gil)\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'N': tasks = 0; break;
        case 'k': keep = 1; break;
        case 'n': native = 1; break;
        case 'A': native = native_all = 1; break;
        case 'h': top_usage(stdout); return EXIT_OK;
        default: return cli_opt_bad("top", c, argv, optind);
        }
    }
    char **cmd = argv + optind;
    int ncmd = argc - optind;
    if ((pid && ncmd) || (!pid && !ncmd)) {
        return cli_usage_error("top", "give either -p PID or -- CMD ARGS...");
    }
    if (keep && pid)
        return cli_usage_error("top", "--keep-running is for a command sonde launches (-- CMD)");
    int plain = !isatty(1);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[512] = "";
    int rc;
    pid_t launched = 0;
    if (ncmd) {
        launched = cli_launch(cmd, !plain, err, sizeof err);
        if (launched < 0)
            return cli_launch_failed(launched, err);
        pid = launched;
        if ((rc = cli_wait_for_python(pid, &stop_flag, err, sizeof err))) {
            if (!keep)
                cli_stop_launched(launched, tty_interrupt, CLI_STOP_GRACE_MS);
            return cli_error(rc, err);
        }
    }

    struct sample_queue *q = squeue_new(32, 1 << 20);
    if (!q)
        return cli_error(-ENOMEM, "out of memory");
    struct sampler_opts so = {
        .rate_hz = rate,
        .duration_s = duration,
        .tasks = tasks,
        .launched = launched,
        .stop = &sampler_stop,
        .native = native ? &nat_sampler_hooks : NULL,
        .native_all = native_all,
    };
    struct sampler *s = NULL;
    struct live *l = NULL;
    pthread_t th;
    rc = sampler_new(&s, pid, &so, q, err, sizeof err);
    if (!rc)
        rc = live_new(&l, q, err, sizeof err);
    if (!rc && pthread_create(&th, NULL, sampler_main, s))
        rc = se_fail(err, sizeof err, -EAGAIN, "cannot start the sampling thread");
    if (rc) {
        if (l) {  /* the consumer waits on the queue: close it by running nothing */
            sampler_stop = 1;
            sampler_run(s);
        }
        live_free(l);
        sampler_free(s);
        squeue_free(q);
        if (launched && !keep)
            cli_stop_launched(launched, tty_interrupt, CLI_STOP_GRACE_MS);
        return cli_error(rc, err);
    }

    struct top_opts to = {
        .interval_s = interval,
        .duration_s = duration,
        .rate_hz = rate,
        .mode = (enum q_metric)mode,
        .plain = plain,
        .stop = &stop_flag,
        .errors = errors_of,
        .ctx = s,
    };
    rc = top_run(l, &to, stdout, err, sizeof err);
    /* Stop the sampling thread (it reads sampler_stop: an atomic store), then
     * the consumer, then what the consumer read (tracer/sampler.h). */
    __atomic_store_n(&sampler_stop, 1, __ATOMIC_RELAXED);
    pthread_join(th, NULL);
    live_free(l);
    sampler_free(s);
    squeue_free(q);
    /* the rule of every command that launches one: when sonde stops (q,
     * the duration, Ctrl-C, SIGTERM), so does the command, unless
     * --keep-running */
    if (launched && !keep && waitpid(launched, NULL, WNOHANG) == 0) {
        cli_stop_launched(launched, tty_interrupt, CLI_STOP_GRACE_MS);
        if (!rc)
            fprintf(stderr, "sonde: stopped the command (pid %d) with top (--keep-running leaves it"
                    " running)\n", (int)launched);
    }
    return rc ? cli_error(rc, err) : EXIT_OK;
}
