/* agent: the in-process agent (see agent/agent.h). One native thread
 * ("sonde-agent") waits for the runtime, then runs the sampler over its own
 * process; the recorder's writer thread (created by it, so named alike)
 * stores the batches. Neither ever takes the GIL or calls into Python. */
#include "agent/agent.h"

#include "agent/profiles.h"
#include "agent/spans.h"

#include "common/err.h"
#include "profiler/recorder.h"
#include "profiler/store.h"
#include "store/store.h"
#include "tracer/cpython/runtime.h"
#include "tracer/greenlets.h"
#include "tracer/sampler.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define AGENT_NAME "sonde-agent"
#define MAX_OWN 8
#define WAIT_RUNTIME_S 10

struct agent {
    pthread_t thread;
    char out[PATH_MAX];
    int rate_hz;
    double duration_s;
    int64_t duty_ns;           /* SONDE_AGENT_DUTY_MS (scripts/bench): sampler_opts.duty_ns */
    volatile sig_atomic_t stop;
    int rc;
    char err[512];
    /* the agent's own threads (this one and the writer), whose CPU is not
     * the program's: kept out of the recording's unsampled CPU */
    pid_t own[MAX_OWN];
    int nown;
    /* the sampler while it runs, for stop_locked to wake (the agent's
     * threads block signals: nothing else ends its sleep between ticks) */
    pthread_mutex_t smu;
    struct sampler *s;
    int finished; /* atomic: its thread has returned (a duration ended) */
};

/* Error-checking: a thread that calls in again while it holds it (sonde
 * loading or stopping the agent from a stop of the main thread that was
 * itself inside sonde_agent_stop) gets -EBUSY, not a wait for itself. */
static pthread_mutex_t agent_mu = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
static int agent_no_tasks; /* SONDE_AGENT_TASKS=0 at load: asyncio tasks not recorded */
static struct agent *agent_cur; /* under agent_mu */
static int atexit_done;

static void say(const char *msg)
{
    char line[640];
    int n = snprintf(line, sizeof line, "sonde: agent: %s\n", msg);
    if (n > 0 && write(2, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1) < 0)
        return;
}

/* CPU of one thread of this process, by tid (the kernel's per-thread CPU
 * clock id, as pthread_getcpuclockid builds it). */
static int64_t tid_cpu_ns(pid_t tid)
{
    clockid_t cid = (clockid_t)((~(unsigned)tid << 3) | 6);
    struct timespec ts;
    if (clock_gettime(cid, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t own_cpu_ns(void *ctx)
{
    const struct agent *a = ctx;
    int64_t sum = 0;
    for (int i = 0; i < a->nown; i++)
        sum += tid_cpu_ns(a->own[i]);
    return sum;
}

/* Find the agent's threads: those named AGENT_NAME (the writer inherits the
 * name of the thread that created it). */
static void find_own_threads(struct agent *a)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return;
    struct dirent *de;
    a->nown = 0;
    while ((de = readdir(d)) && a->nown < MAX_OWN) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", de->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, comm, sizeof comm - 1);
        close(fd);
        comm[n > 0 ? n : 0] = 0;
        comm[strcspn(comm, "\n")] = 0;
        if (strcmp(comm, AGENT_NAME) == 0)
            a->own[a->nown++] = (pid_t)atoi(de->d_name);
    }
    closedir(d);
}

/* Wait until this process's Python runtime is readable and has an
 * interpreter (a preloaded agent starts before the program's main). */
static int wait_for_runtime(struct agent *a)
{
    struct timespec t0, now, delay = { 0, 2 * 1000 * 1000 };
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct py_runtime rt;
        int rc = py_runtime_attach_self(&rt, a->err, sizeof a->err);
        py_runtime_fini(&rt);
        if (rc == 0 || rc == SE_UNSUPPORTED || rc == SE_PERM)
            return rc;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (__atomic_load_n(&a->stop, __ATOMIC_RELAXED) || now.tv_sec - t0.tv_sec >= WAIT_RUNTIME_S)
            return rc;
        nanosleep(&delay, NULL);
    }
}

/* SONDE_AGENT_TIMING=1 at load: the agent's phases, in ms since its load,
 * on stderr (for scripts/bench agent-startup). */
static int agent_timing;
static struct timespec agent_t0;

static void phase(const char *what)
{
    if (!agent_timing)
        return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    char msg[128];
    snprintf(msg, sizeof msg, "timing: %.1f ms %s",
             (double)(now.tv_sec - agent_t0.tv_sec) * 1e3 + (double)(now.tv_nsec - agent_t0.tv_nsec) / 1e6, what);
    say(msg);
}

static void agent_body(struct agent *a);

static void *agent_main(void *arg)
{
    struct agent *a = arg;
    agent_body(a);
    __atomic_store_n(&a->finished, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void agent_body(struct agent *a)
{
    pthread_setname_np(pthread_self(), AGENT_NAME);
    phase("thread started");
    int rc = wait_for_runtime(a);
    phase("runtime found");
    if (rc) {
        a->rc = rc;
        say(a->err);
        return;
    }
    struct sample_queue *q = squeue_new(32, 1 << 20);
    if (!q) {
        a->rc = se_fail(a->err, sizeof a->err, -ENOMEM, "out of memory");
        say(a->err);
        return;
    }
    struct sampler_opts so = {
        .rate_hz = a->rate_hz,
        .duration_s = a->duration_s,
        .duty_ns = a->duty_ns,
        .stop = &a->stop,
        .tasks = !agent_no_tasks,
        .own_cpu_ns = own_cpu_ns,
        .own_cpu_ctx = a,
        .span_of = agent_span_of,
        .wakeable = 1,
    };
    struct sampler *s = NULL;
    struct recorder *r = NULL;
    sqlite3 *db = NULL;
    rc = sampler_new(&s, getpid(), &so, q, a->err, sizeof a->err);
    phase("sampler attached");
    static const char *const meta[] = { "recorded_by", "agent", NULL };
    if (!rc)
        rc = store_create(a->out, meta, &db, a->err, sizeof a->err);
    phase("store created");
    if (!rc) {
        struct sampler_stats st0;
        sampler_get_stats(s, &st0);
        struct recorder_hook hook;
        agent_profiles_start(st0.start_unix_ns, &hook);
        rc = recorder_start_with(&r, db, q, &st0, a->rate_hz, &a->stop, &hook, a->err, sizeof a->err);
        db = NULL; /* the recorder's now, even after a failure */
    }
    if (rc) {
        agent_profiles_stop();
        if (db)
            store_close(db);
        sampler_free(s);
        squeue_free(q);
        a->rc = rc;
        say(a->err);
        return;
    }
    find_own_threads(a);
    phase("sampling");
    pthread_mutex_lock(&a->smu);
    a->s = s;
    pthread_mutex_unlock(&a->smu);
    sampler_run(s);
    pthread_mutex_lock(&a->smu);
    a->s = NULL;
    pthread_mutex_unlock(&a->smu);
    phase("sampler stopped");
    struct sampler_stats st;
    sampler_get_stats(s, &st);
    uint64_t switches = sampler_gil_switches(s);
    /* the writer reads the sampler's code objects until it is joined */
    rc = recorder_finish(r, &st, switches, a->rate_hz, a->err, sizeof a->err);
    phase("recording finished");
    agent_profiles_stop(); /* every sample is in: spans wait for none */
    phase("profiles stopped");
    sampler_free(s);
    squeue_free(q);
    phase("sampler freed");
    if (!rc) /* the spans ended while it ran, into the recording's span tables */
        rc = agent_spans_save(a->out, a->err, sizeof a->err);
    phase("spans saved");
    if (rc) {
        a->rc = rc;
        say(a->err);
    }
    return;
}

/* Take the current recording out of agent_cur and wait for its end. */
static int stop_locked(void)
{
    struct agent *a = agent_cur;
    if (!a)
        return 0;
    agent_cur = NULL;
    __atomic_store_n(&a->stop, 1, __ATOMIC_RELAXED);
    phase("stop asked");
    pthread_mutex_lock(&a->smu);
    if (a->s)
        sampler_wake(a->s);
    pthread_mutex_unlock(&a->smu);
    pthread_join(a->thread, NULL);
    int rc = a->rc;
    pthread_mutex_destroy(&a->smu);
    free(a);
    return rc;
}

int sonde_agent_stop(void)
{
    if (pthread_mutex_lock(&agent_mu) != 0)
        return -EBUSY;
    int rc = stop_locked();
    pthread_mutex_unlock(&agent_mu);
    return rc;
}

int sonde_agent_active(void)
{
    if (pthread_mutex_lock(&agent_mu) != 0)
        return 1; /* (called from inside a start or a stop) */
    int on = agent_cur != NULL && !__atomic_load_n(&agent_cur->finished, __ATOMIC_ACQUIRE);
    pthread_mutex_unlock(&agent_mu);
    return on;
}

static void at_exit(void)
{
    sonde_agent_stop();
}

/* A forked child has only the thread that forked: the agent's threads, its
 * sampler and its open recording stay the parent's. Forget them (without
 * freeing: their locks may be held) so that the child records nothing and
 * may start its own recording. */
static void atfork_child(void)
{
    pthread_mutex_t fresh = PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
    agent_mu = fresh;
    agent_cur = NULL;
    greenlet_atfork_child();
    agent_profiles_atfork_child();
}

uint32_t sonde_greenlet_switch(uint64_t origin, uint64_t target, uint64_t frame, int dead)
{
    return greenlet_note_switch(origin, target, frame, dead);
}

void sonde_greenlet_name(uint64_t addr, const char *name, const char *func)
{
    greenlet_note_name(addr, name, func);
}

/* The pending call of sonde_agent_hook_greenlets: in the main thread,
 * with the GIL, between two bytecodes of the program. */
static int hook_greenlets_now(void *arg)
{
    char *code = arg;
    int (*run)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "PyRun_SimpleString");
    if (run)
        run(code);
    free(code);
    return 0;
}

int sonde_agent_hook_greenlets(const char *pkgdir)
{
    int (*add)(int (*)(void *), void *) =
        (int (*)(int (*)(void *), void *))dlsym(RTLD_DEFAULT, "Py_AddPendingCall");
    Dl_info di;
    if (!add)
        return -ENOSYS;
    if (!dladdr((void *)sonde_agent_hook_greenlets, &di) || !di.dli_fname)
        return -ENOENT;
    if (!pkgdir || strpbrk(pkgdir, "'\\\n\"") || strpbrk(di.dli_fname, "'\\\n\""))
        return -EINVAL;
    /* exec'd in a dictionary of its own: the program's __main__ gains no
     * name, and sys.path is as it was after */
    static const char fmt[] =
        "exec(\"import sys\\nsys.path.insert(0, '%s')\\ntry:\\n"
        "    import sonde._greenlets\\n    sonde._greenlets.install_at_import('%s')\\n"
        "except Exception:\\n    pass\\nfinally:\\n    sys.path.remove('%s')\\n\", {})\n";
    size_t len = sizeof fmt + 2 * strlen(pkgdir) + strlen(di.dli_fname);
    char *code = malloc(len);
    if (!code)
        return -ENOMEM;
    snprintf(code, len, fmt, pkgdir, di.dli_fname, pkgdir);
    if (add(hook_greenlets_now, code) != 0) {
        free(code);
        return -EAGAIN;
    }
    return 0;
}

int sonde_agent_start_ms(const char *output, int rate_hz, long long duration_ms)
{
    if (duration_ms < 0)
        return -EINVAL;
    return sonde_agent_start(output, rate_hz, (double)duration_ms / 1000.0);
}

int sonde_agent_start(const char *output, int rate_hz, double duration_s)
{
    if (!output || !*output || rate_hz < 1 || rate_hz > 10000 || !(duration_s >= 0))
        return -EINVAL;
    struct agent *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->rate_hz = rate_hz;
    a->duration_s = duration_s;
    /* for scripts/bench's paired windows: sample in every other window of
     * this many ms (set in the program's environment before it starts) */
    const char *duty = getenv("SONDE_AGENT_DUTY_MS");
    if (duty && atoi(duty) > 0 && atoi(duty) <= 60000)
        a->duty_ns = (int64_t)atoi(duty) * 1000000;
    pthread_mutex_init(&a->smu, NULL);
    int n;
    if (output[0] == '/') {
        n = snprintf(a->out, sizeof a->out, "%s", output);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) {
            free(a);
            return -errno;
        }
        n = snprintf(a->out, sizeof a->out, "%s/%s", cwd, output);
    }
    if (n < 0 || (size_t)n >= sizeof a->out) {
        free(a);
        return -ENAMETOOLONG;
    }
    if (pthread_mutex_lock(&agent_mu) != 0) {
        free(a);
        return -EBUSY;
    }
    if (agent_cur && __atomic_load_n(&agent_cur->finished, __ATOMIC_ACQUIRE)) {
        /* the last recording ended by itself (its duration): done with it */
        struct agent *old = agent_cur;
        agent_cur = NULL;
        pthread_join(old->thread, NULL);
        pthread_mutex_destroy(&old->smu);
        free(old);
    }
    if (agent_cur) {
        pthread_mutex_unlock(&agent_mu);
        free(a);
        return -EBUSY;
    }
    if (!atexit_done)
        atexit_done = atexit(at_exit) == 0;
    /* The agent's threads take no signal meant for the program. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&a->thread, NULL, agent_main, a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        pthread_mutex_unlock(&agent_mu);
        free(a);
        return -rc;
    }
    agent_cur = a;
    agent_spans_keep();
    pthread_mutex_unlock(&agent_mu);
    return 0;
}

/* LD_PRELOAD: start from the environment, in the first process of the
 * command that runs Python. A process without a Python runtime (a shell
 * that will exec the program) leaves the settings to what it runs; a
 * Python process takes them out of the environment, so that the programs it
 * starts do not record into the same file. */
__attribute__((constructor)) static void agent_init(void)
{
    clock_gettime(CLOCK_MONOTONIC, &agent_t0);
    const char *tm = getenv("SONDE_AGENT_TIMING");
    agent_timing = tm && strcmp(tm, "1") == 0;
    pthread_atfork(NULL, NULL, atfork_child);
    const char *out = getenv("SONDE_AGENT_OUTPUT");
    if (!out || !*out || !dlsym(RTLD_DEFAULT, "_PyRuntime"))
        return;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", out);
    const char *r = getenv("SONDE_AGENT_RATE"), *d = getenv("SONDE_AGENT_DURATION");
    int rate = r && *r ? atoi(r) : 100;
    double dur = d && *d ? strtod(d, NULL) : 0;
    unsetenv("SONDE_AGENT_OUTPUT");
    unsetenv("SONDE_AGENT_RATE");
    const char *tk = getenv("SONDE_AGENT_TASKS");
    agent_no_tasks = tk && strcmp(tk, "0") == 0;
    unsetenv("SONDE_AGENT_DURATION");
    unsetenv("SONDE_AGENT_TASKS");
    int rc = sonde_agent_start(path, rate, dur);
    if (!rc) {
        /* for sonde/boot/sitecustomize.py: this process records (a child
         * inherits the variable, with another pid than its own) */
        char pid[16];
        snprintf(pid, sizeof pid, "%d", (int)getpid());
        setenv("SONDE_AGENT_RECORDING", pid, 1);
    }
    if (rc) {
        char msg[PATH_MAX + 64];
        snprintf(msg, sizeof msg, "cannot record into %s: %s", path, strerror(-rc));
        say(msg);
    }
}
