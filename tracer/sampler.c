/* tracer: the sampling loop (see tracer/sampler.h): targets and their
 * lifetimes, the published stats, following children, the tick schedule.
 * One tick over one target is tracer/tick.c. */
#include "tracer/sampler_impl.h"
#include "tracer/schedtune.h"

#include "common/err.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double process_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- targets ---- */

static int add_target(struct sampler *s, pid_t pid, char *err, size_t errlen)
{
    if (s->ntargets >= MAX_TARGETS)
        return se_fail(err, errlen, -ENOSPC, "too many processes");
    struct target *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->fd_stat = -1;
    t->slots = calloc((size_t)1 << SLOT_BITS, sizeof *t->slots);
    t->occ = calloc((size_t)1 << SLOT_BITS, sizeof *t->occ);
    int rc = t->slots && t->occ ? py_runtime_attach(&t->rt, pid, err, errlen) : -ENOMEM;
    if (rc) {
        py_runtime_fini(&t->rt);
        free(t->slots);
        free(t->occ);
        free(t);
        return rc;
    }
    t->pid = pid;
    t->alive = 1;
    t->start_ticks = s->t0_ticks;
    struct proc_stat ps;
    t->cpu0_ns = -1;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    t->fd_stat = open(path, O_RDONLY | O_CLOEXEC);
    /* A process that started after the recording began is charged from its
     * start; one that ran before, from its first tick, when its threads
     * take their baselines too (sample_target). */
    if (proc_stat_read(pid, &ps) == 0 && ps.starttime && ps.starttime >= s->t0_ticks)
        t->cpu0_ns = 0;
    t->image_id = proc_image_id(pid);
    s->targets[s->ntargets++] = t;
    s->st.processes++;
    target_setup(s, t, mono_ns());
    return 0;
}

void target_setup(struct sampler *s, struct target *t, int64_t now)
{
    t->need_names = 1;
    t->names_backoff = 5000000;
    green_free(t); /* a new image: its tasks are found afresh */
    greenlets_free(t);
    t->gil_interp = py_runtime_main_interp(&t->rt);
    py_gil_range(&t->rt, t->gil_interp, &t->gil_lo, &t->gil_hi);
    py_gil_switches(&t->rt, t->gil_interp, &t->switches0);
    t->switches_last = t->switches0;
    if (s->o.native && !t->nat) {
        char err[256];
        t->nat = s->o.native->open(&t->rt, err, sizeof err);
    }
    struct rec_process *p = reserve(s, sizeof *p, now);
    if (p) {
        p->h.kind = REC_PROCESS;
        p->pid = t->pid;
        p->ppid = proc_ppid(t->pid);
        p->ts = now - s->t0;
        snprintf(p->version, sizeof p->version, "%s", t->rt.version);
        proc_cmdline(t->pid, p->cmd, sizeof p->cmd);
    }
}

static void target_free(struct target *t, void (*nat_close)(void *))
{
    if (!t)
        return;
    for (int k = 0; k < t->nslots; k++)
        slot_close(&t->slots[t->occ[k]]);
    free(t->slots);
    free(t->occ);
    green_free(t);
    greenlets_free(t);
    if (t->fd_stat >= 0)
        close(t->fd_stat);
    py_runtime_fini(&t->rt);
    if (nat_close) {
        nat_close(t->nat);
        for (int i = 0; i < t->nnat_retired; i++)
            nat_close(t->nat_retired[i]);
    }
    for (int i = 0; i < t->nretired; i++) {
        py_runtime_fini(t->retired[i]);
        free(t->retired[i]);
    }
    free(t);
}

/* Publish the sampling thread's figures for sampler_get_stats. */
static void publish_stats(struct sampler *s)
{
    pthread_mutex_lock(&s->pub_mu);
    s->pub = s->st;
    pthread_mutex_unlock(&s->pub_mu);
}

void sampler_get_stats(struct sampler *s, struct sampler_stats *st)
{
    pthread_mutex_lock(&s->pub_mu);
    *st = s->pub;
    pthread_mutex_unlock(&s->pub_mu);
}

static void progress(struct sampler *s, int final)
{
    if (s->o.progress)
        s->o.progress(&s->st, final, s->o.progress_ctx);
}

/* Has a stop been asked for? (Set by a signal handler, or by another
 * thread with an atomic store.) */
static int stop_asked(const struct sampler *s)
{
    return s->o.stop && __atomic_load_n(s->o.stop, __ATOMIC_RELAXED);
}

int sampler_new(struct sampler **out, pid_t pid, const struct sampler_opts *o,
                struct sample_queue *q, char *err, size_t errlen)
{
    struct sampler *s = calloc(1, sizeof *s);
    if (!s)
        return se_fail(err, errlen, -ENOMEM, "out of memory");
    s->o = *o;
    if (s->o.rate_hz < 1)
        s->o.rate_hz = 1;
    if (s->o.rate_hz > 10000)
        s->o.rate_hz = 10000;
    s->q = q;
    pthread_mutex_init(&s->pub_mu, NULL);
    pthread_mutex_init(&s->wake_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake_cv, &ca);
    pthread_condattr_destroy(&ca);
    s->t0 = mono_ns();
    s->t0_ticks = proc_boot_ticks_now();
    s->st.start_unix_ns = real_ns();
    s->st.start_mono_ns = s->t0;
    s->roots[s->nroots++] = pid;
    if (o->subprocesses && o->wrapper > 0 && o->wrapper != pid)
        s->roots[s->nroots++] = o->wrapper;
    int rc = add_target(s, pid, err, errlen);
    if (rc) {
        sampler_free(s);
        return rc;
    }
    publish_stats(s);
    *out = s;
    return 0;
}

void sampler_wake(struct sampler *s)
{
    pthread_mutex_lock(&s->wake_mu);
    s->woken = 1;
    pthread_cond_signal(&s->wake_cv);
    pthread_mutex_unlock(&s->wake_mu);
}

void sampler_free(struct sampler *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->ntargets; i++)
        target_free(s->targets[i], s->o.native ? s->o.native->close : NULL);
    free(s->rawall);
    free(s->mgall);
    pthread_mutex_destroy(&s->pub_mu);
    pthread_mutex_destroy(&s->wake_mu);
    pthread_cond_destroy(&s->wake_cv);
    free(s);
}

/* ---- following children ---- */

static int is_descendant(const struct sampler *s, pid_t pid)
{
    for (int depth = 0; depth < 32 && pid > 1; depth++) {
        pid = proc_ppid(pid);
        for (int i = 0; i < s->nroots; i++)
            if (pid == s->roots[i])
                return 1;
        for (int i = 0; i < s->ntargets; i++)
            if (pid == s->targets[i]->pid)
                return 1;
    }
    return 0;
}

#define TRANSIENT_TRIES 10 /* scans, 200 ms apart */

static void scan_children(struct sampler *s)
{
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        pid_t pid = (pid_t)atoi(de->d_name);
        int known = 0;
        for (int i = 0; i < s->ntargets && !known; i++)
            known = s->targets[i]->pid == pid;
        if (known || !is_descendant(s, pid))
            continue;
        /* the program it runs: an exec changes it, of the same
         * interpreter too (a child caught between fork and exec) */
        uint64_t image = proc_image_id(pid);
        int rej = -1;
        for (int i = 0; i < s->nrejected; i++)
            if (s->rejected[i].pid == pid)
                rej = i;
        int same = rej >= 0 && s->rejected[rej].image == image;
        if (same && s->rejected[rej].tries >= TRANSIENT_TRIES)
            continue;
        char err[256];
        int rc = add_target(s, pid, err, sizeof err);
        if (rc == SE_NOTPYTHON && strstr(err, "no Python interpreter running"))
            continue; /* starting up: try again at the next scan */
        if (rc) {
            if (rej < 0 && s->nrejected < 256)
                rej = s->nrejected++;
            if (rej >= 0) {
                struct rejected *r = &s->rejected[rej];
                r->tries = same ? r->tries + 1 : 1;
                /* not ours to read, or a version sonde does not read: for
                 * good (not Python may be a Python still starting: tried
                 * again, as errors that may pass are) */
                if (rc == SE_PERM || rc == SE_UNSUPPORTED)
                    r->tries = TRANSIENT_TRIES;
                r->pid = pid;
                r->image = image;
            }
        }
    }
    closedir(d);
}

/* ---- the loop ---- */

/* Duty cycle (--duty, benchmarks only): ticks fall in the even
 * duty_ns-long windows of CLOCK_MONOTONIC. The time t, or the start of the
 * next even window when t falls in an odd one. */
static int64_t duty_start(const struct sampler *s, int64_t t)
{
    int64_t d = s->o.duty_ns;
    return d > 0 && (t / d) % 2 ? (t / d + 1) * d : t;
}

/* Sleep until CLOCK_MONOTONIC reaches t, or a stop is asked for. */
static void sleep_until(struct sampler *s, int64_t t)
{
    struct timespec ts = { (time_t)(t / 1000000000), (long)(t % 1000000000) };
    if (s->o.wakeable) {
        pthread_mutex_lock(&s->wake_mu);
        while (!s->woken && !stop_asked(s) && pthread_cond_timedwait(&s->wake_cv, &s->wake_mu, &ts) == 0)
            ;
        s->woken = 0; /* one wake ends one sleep */
        pthread_mutex_unlock(&s->wake_mu);
        return;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        if (stop_asked(s))
            break;
}

/* The gap to the next tick: uniform over [period/2, 3*period/2).
 *
 * Ticks on a fixed grid alias with any periodic work in the target whose
 * period is commensurate with the sampler's (a loop whose tasks take turns
 * every 1.5 ms, sampled every 2 ms, shows the same task at every third
 * tick): measured on a 4-task loop stepping on 1 ms boundaries at 500 Hz,
 * one task was charged 1.49 s of CPU and another 0.04 s for 0.74 s each.
 * Independent, identically distributed gaps make the phase of each tick
 * uniform and independent of the gap it closes, so both the stack seen at
 * a tick and the CPU charged to it (that gap's) are unbiased whatever the
 * target's rhythm; the mean rate stays the one asked for. */
static int64_t tick_gap(uint64_t *rng, int64_t period)
{
    uint64_t z = (*rng += 0x9e3779b97f4a7c15ull); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return period / 2 + (int64_t)(z % (uint64_t)(period > 0 ? period : 1));
}

int sampler_run(struct sampler *s)
{
    sched_setup(s->o.rate_hz, s->st.sched, sizeof s->st.sched);
    int64_t period = 1000000000 / s->o.rate_hz;
    uint64_t rng = (uint64_t)mono_ns() ^ ((uint64_t)getpid() << 32);
    /* -d counts from the first tick, not from sampler_new: creating the
     * recording's store in between can take a while on a busy host */
    int64_t next = mono_ns();
    int64_t end = s->o.duration_s > 0 ? next + (int64_t)(s->o.duration_s * 1e9) : INT64_MAX;
    int64_t last_scan = 0, last_progress = 0;
    double cpu0 = thread_cpu_s(), pcpu0 = process_cpu_s();
    for (;;) {
        int64_t now = mono_ns();
        if (now >= end || stop_asked(s))
            break;
        if (duty_start(s, now) != now) {
            /* woken too late for an even window: no tick in the odd one */
            next = duty_start(s, now);
            sleep_until(s, next);
            continue;
        }
        int alive = 0;
        for (int i = 0; i < s->ntargets; i++) {
            struct target *t = s->targets[i];
            if (!t->alive)
                continue;
            sample_target(s, t, now);
            alive += t->alive;
        }
        s->st.ticks++;
        if (s->o.subprocesses && now - last_scan > 200000000) {
            scan_children(s);
            last_scan = now;
            alive = 0;
            for (int i = 0; i < s->ntargets; i++)
                alive += s->targets[i]->alive;
        }
        s->st.duration_ns = now - s->t0;
        publish_stats(s);
        if (!alive && !(s->o.subprocesses && s->o.wrapper > 0 && !proc_gone(s->o.wrapper)))
            break;
        if (now - last_progress > 250000000) {
            progress(s, 0);
            last_progress = now;
        }
        next += tick_gap(&rng, period);
        now = mono_ns();
        if (next + 2 * period < now) {
            /* Far behind (the machine was busy): skip the ticks we missed
             * rather than bursting. */
            int64_t missed = (now - next) / period;
            s->st.late_ticks += (uint64_t)missed;
            next += missed * period;
        }
        next = duty_start(s, next);
        /* A little late (a wake-up takes tens of microseconds on a virtual
         * machine): take the next sample at once and stay on the schedule;
         * every sample's wall time is the time that really passed. */
        while (next > now) {
            /* the greenlet hook's rings, read between ticks when they
             * fill fast (agent only) */
            int64_t drain = INT64_MAX;
            for (int i = 0; i < s->ntargets; i++)
                if (s->targets[i]->alive && greenlets_drain_due(s->targets[i]) < drain)
                    drain = greenlets_drain_due(s->targets[i]);
            if (drain >= next) {
                sleep_until(s, next);
                break;
            }
            if (drain > now)
                sleep_until(s, drain);
            if (stop_asked(s))
                break;
            now = mono_ns();
            for (int i = 0; i < s->ntargets; i++)
                if (s->targets[i]->alive && greenlets_drain_due(s->targets[i]) <= now)
                    greenlets_drain(s, s->targets[i], now);
            now = mono_ns();
        }
    }
    int64_t now = mono_ns();
    /* a last tick when a stop was asked (the agent at the program's exit):
     * what happened since the previous one is in the recording too, the
     * greenlet switches the hook reported meanwhile (their ends) among it */
    if (stop_asked(s))
        for (int i = 0; i < s->ntargets; i++)
            if (s->targets[i]->alive)
                sample_target(s, s->targets[i], now);
    for (int i = 0; i < s->ntargets; i++)
        if (s->targets[i]->alive)
            record_unsampled(s, s->targets[i], now);
    s->st.duration_ns = now - s->t0;
    s->st.cpu_s = thread_cpu_s() - cpu0;
    s->st.process_cpu_s = process_cpu_s() - pcpu0;
    publish_stats(s);
    progress(s, 1);
    flush_batch(s);
    squeue_close(s->q);
    return 0;
}

uint64_t sampler_gil_switches(const struct sampler *s)
{
    uint64_t total = 0;
    for (int i = 0; i < s->ntargets; i++) {
        struct target *t = s->targets[i];
        if (t->switches_last >= t->switches0)
            total += t->switches_last - t->switches0;
    }
    return total;
}
