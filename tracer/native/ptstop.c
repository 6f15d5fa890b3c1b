/* Stopping one thread for an instant with ptrace (see ptstop.h). */
#include "tracer/native/ptstop.h"

#include "common/clock.h"
#include "common/err.h"

#include <elf.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef PTRACE_EVENT_STOP
#define PTRACE_EVENT_STOP 128
#endif

/* Threads seized by a capture that timed out, waiting for their stop. */
#define NAT_PENDING_MAX 64
static pid_t pending[NAT_PENDING_MAX];
static int npending;

/* The signal to hand back on detach for a stop status: a signal that was
 * being delivered when the thread stopped (a SIGTRAP too: a seized thread
 * gets none from the attach, so one is the program's own), 0 for our
 * interrupt or a group stop (which the detach leaves in force). */
static int stop_signal(int status)
{
    if (!WIFSTOPPED(status))
        return 0;
    if ((status >> 16) == PTRACE_EVENT_STOP)
        return 0;
    return WSTOPSIG(status);
}

/* Waiting for a stop with a bound: waitpid blocks (it wakes the moment the
 * thread stops, where polling would lose the CPU to a loaded machine), and
 * a per-thread timer signal with no SA_RESTART cuts it short. The timer
 * repeats so that a tick landing just before waitpid cannot leave it
 * blocked for good. */
#define NAT_TIMER_SIG (SIGRTMIN + 7)
#define NAT_TIMER_TICK_NS (2 * 1000 * 1000)
static __thread timer_t wait_timer;
static __thread int wait_timer_ok; /* 0 not tried, 1 ready, -1 unavailable */

static void on_timer(int sig)
{
    (void)sig;
}

static int timer_ready(void)
{
    if (wait_timer_ok)
        return wait_timer_ok > 0;
    wait_timer_ok = -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_timer; /* no SA_RESTART: waitpid returns EINTR */
    sigemptyset(&sa.sa_mask);
    if (sigaction(NAT_TIMER_SIG, &sa, NULL) < 0)
        return 0;
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = NAT_TIMER_SIG;
    sev._sigev_un._tid = gettid(); /* sigev_notify_thread_id */
    if (timer_create(CLOCK_MONOTONIC, &sev, &wait_timer) < 0)
        return 0;
    wait_timer_ok = 1;
    return 1;
}

static void timer_arm(int64_t first_ns, int64_t tick_ns)
{
    struct itimerspec it = {
        .it_value = { first_ns / 1000000000, first_ns % 1000000000 },
        .it_interval = { tick_ns / 1000000000, tick_ns % 1000000000 },
    };
    timer_settime(wait_timer, 0, &it, NULL);
}

/* Wait for tid to stop or end, until deadline (a deadline already past:
 * look once). 1 stopped (*status set), 0 ended, -ETIMEDOUT. */
/* Is tid a process (not a thread) whose parent is sonde? */
static int own_child(pid_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/status", (int)tid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    long tgid = -1, ppid = -1;
    while (fgets(buf, sizeof buf, f)) {
        if (!strncmp(buf, "Tgid:", 5))
            tgid = strtol(buf + 5, NULL, 10);
        else if (!strncmp(buf, "PPid:", 5))
            ppid = strtol(buf + 5, NULL, 10);
    }
    fclose(f);
    return tgid == tid && ppid == getpid();
}

static int wait_stop(pid_t tid, int *status, int64_t deadline)
{
    int64_t left = deadline - mono_ns();
    int blocking = left > 0 && timer_ready();
    if (blocking)
        timer_arm(left < NAT_TIMER_TICK_NS ? left : NAT_TIMER_TICK_NS, NAT_TIMER_TICK_NS);
    int rc;
    for (;;) {
        /* look before reaping: the exit of a process sonde launched (its
         * leader is sonde's child) is the launcher's to collect, with the
         * command's exit status */
        siginfo_t si;
        si.si_pid = 0;
        if (waitid(P_PID, (id_t)tid, &si, WEXITED | WSTOPPED | __WALL | WNOWAIT | (blocking ? 0 : WNOHANG)) == 0 &&
            si.si_pid == tid && si.si_code != CLD_TRAPPED && si.si_code != CLD_STOPPED && own_child(tid)) {
            ptrace(PTRACE_DETACH, tid, 0, 0);
            rc = 0;
            break;
        }
        pid_t r = waitpid(tid, status, __WALL | WNOHANG); /* 0: the timer's tick */
        if (r == tid) {
            rc = WIFSTOPPED(*status) ? 1 : 0;
            break;
        }
        if (r < 0 && errno != EINTR) {
            rc = 0; /* ECHILD: gone (reaped by its own process) */
            break;
        }
        if (mono_ns() >= deadline) {
            rc = -ETIMEDOUT;
            break;
        }
        if (!blocking) { /* no timer: poll */
            struct timespec ts = { 0, 20000 };
            nanosleep(&ts, NULL);
        }
    }
    if (blocking)
        timer_arm(0, 0);
    return rc;
}

int nat_reap(int64_t wait_ns)
{
    int64_t deadline = mono_ns() + wait_ns;
    int k = 0;
    for (int i = 0; i < npending; i++) {
        int status;
        int r = wait_stop(pending[i], &status, deadline);
        if (r == 1)
            ptrace(PTRACE_DETACH, pending[i], 0, (void *)(long)stop_signal(status));
        else if (r == -ETIMEDOUT)
            pending[k++] = pending[i];
    }
    npending = k;
    return npending;
}

static int read_regs(pid_t tid, struct nat_capture *c)
{
#if defined(__x86_64__)
    struct user_regs_struct r;
    struct iovec io = { &r, sizeof r };
    if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRSTATUS, &io) < 0)
        return -errno;
    const uint64_t v[17] = { r.rax, r.rdx, r.rcx, r.rbx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8,
                             r.r9,  r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip };
    memcpy(c->regs, v, sizeof v);
    c->nregs = 17;
    c->pc = r.rip;
    c->sp = r.rsp;
    return 0;
#elif defined(__aarch64__)
    struct user_regs_struct r;
    struct iovec io = { &r, sizeof r };
    if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRSTATUS, &io) < 0)
        return -errno;
    for (int i = 0; i < 31; i++)
        c->regs[i] = r.regs[i];
    c->regs[31] = r.sp;
    c->nregs = 32;
    c->pc = r.pc;
    c->sp = r.sp;
    return 0;
#else
    (void)tid;
    (void)c;
    return -ENOSYS;
#endif
}

/* Copy the top of the stack, page by page so that a read running off the
 * end of the mapping keeps what came before. */
static void copy_stack(pid_t pid, struct nat_capture *c)
{
    enum { PG = 4096, NIOV = (NAT_STACK_COPY + NAT_REDZONE) / PG + 2 };
    size_t want = c->copy_want && c->copy_want < NAT_STACK_COPY ? c->copy_want : NAT_STACK_COPY;
    struct iovec local = { c->stack, want + NAT_REDZONE };
    struct iovec remote[NIOV];
    uint64_t lo = c->sp > NAT_REDZONE ? c->sp - NAT_REDZONE : 0;
    uint64_t hi = lo + want + NAT_REDZONE;
    int n = 0;
    for (uint64_t a = lo; a < hi && n < NIOV; n++) {
        uint64_t next = (a & ~(uint64_t)(PG - 1)) + PG;
        if (next > hi)
            next = hi;
        remote[n].iov_base = (void *)(uintptr_t)a;
        remote[n].iov_len = next - a;
        a = next;
    }
    ssize_t got = process_vm_readv(pid, &local, 1, remote, (unsigned long)n, 0);
    c->stack_lo = lo;
    c->stack_len = got > 0 ? (size_t)got : 0;
}

int nat_capture(pid_t pid, pid_t tid, struct nat_capture *c, nat_stopped_fn fn, void *arg,
                char *err, size_t errlen)
{
    return nat_capture_within(pid, tid, c, fn, arg, NAT_STOP_TIMEOUT_NS, err, errlen);
}

int nat_capture_within(pid_t pid, pid_t tid, struct nat_capture *c, nat_stopped_fn fn, void *arg,
                       int64_t timeout_ns, char *err, size_t errlen)
{
    if (timeout_ns <= 0 || timeout_ns > NAT_STOP_TIMEOUT_NS)
        timeout_ns = NAT_STOP_TIMEOUT_NS;
    if (npending)
        nat_reap(0);
    if (npending >= NAT_PENDING_MAX && nat_reap(NAT_STOP_TIMEOUT_NS) >= NAT_PENDING_MAX)
        /* no room to remember one more thread that may stop late: seizing
         * it could leave it stopped until sonde exits */
        return se_fail(err, errlen, -EBUSY, "thread %d not stopped: %d threads have not stopped yet", (int)tid,
                       NAT_PENDING_MAX);
    c->tid = tid;
    c->nregs = 0;
    c->stack_len = 0;
    c->pause_ns = 0;
    c->hold_ns = 0;
    c->pc_module = -1;
    if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0) {
        int e = errno;
        if (e == ESRCH)
            return se_fail(err, errlen, SE_EXITED, "thread %d ended", (int)tid);
        return se_fail(err, errlen, SE_PERM, "cannot trace thread %d: %s%s", (int)tid,
                       strerror(e), e == EPERM ? " (traced by another process, or not allowed)"
                                               : "");
    }
    int64_t t0 = mono_ns();
    if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0) {
        /* seized but not interruptible: it is ending; nothing stopped it */
        ptrace(PTRACE_DETACH, tid, 0, 0);
        return se_fail(err, errlen, SE_EXITED, "thread %d ended", (int)tid);
    }
    int status = 0;
    int r = wait_stop(tid, &status, t0 + timeout_ns);
    if (r == 0)
        return se_fail(err, errlen, SE_EXITED, "thread %d ended while being stopped", (int)tid);
    if (r < 0) {
        if (npending < NAT_PENDING_MAX)
            pending[npending++] = tid;
        return se_fail(err, errlen, -ETIMEDOUT, "thread %d did not stop within %d ms", (int)tid,
                       (int)(timeout_ns / 1000000));
    }
    int64_t t1 = mono_ns();
    int rc = read_regs(tid, c);
    if (rc == 0) {
        copy_stack(pid, c);
        if (fn) {
            int frc = fn(arg);
            if (frc < 0)
                rc = frc;
        }
    } else {
        rc = se_fail(err, errlen, rc == -ESRCH ? SE_EXITED : SE_FAULT,
                     "cannot read the registers of thread %d: %s", (int)tid, strerror(-rc));
    }
    /* ESRCH here: it was killed while stopped; nothing is left to resume */
    ptrace(PTRACE_DETACH, tid, 0, (void *)(long)stop_signal(status));
    int64_t t2 = mono_ns();
    c->pause_ns = t2 - t0;
    c->hold_ns = t2 - t1;
    return rc;
}
