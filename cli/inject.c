/* Calling functions inside a running process (see inject.h). */
#include "cli/inject.h"

#include "common/clock.h"
#include "common/err.h"
#include "tracer/proc/elfsym.h"
#include "tracer/proc/maps.h"

#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)

/* The extended register state: far larger than any CPU's (AMX's is 11 KiB);
 * the kernel says how much it used. */
#define XSTATE_MAX (64 * 1024)
/* How long the thread may take to stop for us. */
#define STOP_TIMEOUT_MS 2000
/* how much longer the stop of an interrupt that came too late is waited for */
#define STOP_LATE_MS 3000
/* Signals that arrive for the thread during the calls, given back after. */
#define PENDING_MAX 8

struct inject {
    pid_t pid;
    struct user_regs_struct saved;
    uint8_t *xstate;
    size_t xlen;  /* 0: the legacy FP registers in fp instead */
    struct user_fpregs_struct fp;
    int pending[PENDING_MAX], npending;
    struct maps maps;
};

/* Wait for the traced thread's next state change; 0 on timeout
 * (timeout_ms < 0: none), -1 on error, else 1 with *status. */
static int wait_thread(pid_t tid, int *status, int timeout_ms)
{
    int64_t end = mono_ns() / 1000000 + timeout_ms;
    for (;;) {
        pid_t r = waitpid(tid, status, __WALL | WNOHANG);
        if (r == tid)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
        if (timeout_ms >= 0 && mono_ns() / 1000000 >= end)
            return 0;
        struct timespec d = { 0, 200 * 1000 };
        nanosleep(&d, NULL);
    }
}

static void remember_signal(struct inject *j, int sig)
{
    for (int i = 0; i < j->npending; i++)
        if (j->pending[i] == sig)
            return; /* standard signals do not queue either */
    if (j->npending < PENDING_MAX)
        j->pending[j->npending++] = sig;
}

static int write_mem(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
    struct iovec local = { (void *)buf, len };
    struct iovec remote = { (void *)(uintptr_t)addr, len };
    ssize_t n = process_vm_writev(pid, &local, 1, &remote, 1, 0);
    if (n == (ssize_t)len)
        return 0;
    /* word by word through ptrace (no process_vm_writev permission, or a
     * page without write access from outside) */
    for (size_t off = 0; off < len; off += sizeof(long)) {
        long word = 0;
        size_t k = len - off < sizeof word ? len - off : sizeof word;
        if (k < sizeof word) {
            errno = 0;
            word = ptrace(PTRACE_PEEKDATA, pid, (void *)(uintptr_t)(addr + off), NULL);
            if (errno)
                return -errno;
        }
        memcpy(&word, (const char *)buf + off, k);
        if (ptrace(PTRACE_POKEDATA, pid, (void *)(uintptr_t)(addr + off), (void *)word) < 0)
            return -errno;
    }
    return 0;
}

int inject_begin(struct inject **out, pid_t pid, char *err, size_t errlen)
{
    *out = NULL;
    struct inject *j = calloc(1, sizeof *j);
    if (!j)
        return se_fail(err, errlen, -ENOMEM, "out of memory");
    j->pid = pid;
    if (ptrace(PTRACE_SEIZE, pid, 0, 0) < 0) {
        int e = errno;
        free(j);
        if (e == ESRCH)
            return se_fail(err, errlen, SE_NOPROC, "no process %d", (int)pid);
        return se_fail(err, errlen, SE_PERM, "cannot load the agent into process %d: ptrace refused "
                       "(%s; loading needs ptrace permission for a moment: the target's user with "
                       "kernel.yama.ptrace_scope 0 or 1, or CAP_SYS_PTRACE; or start the program "
                       "under `sonde record --agent -- CMD`)", (int)pid, strerror(e));
    }
    if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) < 0) {
        int e = errno;
        ptrace(PTRACE_DETACH, pid, 0, 0);
        free(j);
        return se_fail(err, errlen, SE_NOPROC, "process %d is ending (%s)", (int)pid, strerror(e));
    }
    /* the stop: our interrupt's, or a signal's on its way to the thread
     * (kept, and delivered when we let it go) */
    for (;;) {
        int st;
        int r = wait_thread(pid, &st, STOP_TIMEOUT_MS);
        if (r <= 0) {
            /* not stopped in time (uninterruptible sleep). The interrupt
             * stays pending and would stop the thread later, for as long
             * as sonde runs: its stop is waited for a while longer and let
             * go; failing that, the seize ends when sonde exits, which it
             * does on this error. */
            if (r == 0 && wait_thread(pid, &st, STOP_LATE_MS) > 0 && WIFSTOPPED(st))
                ptrace(PTRACE_DETACH, pid, 0,
                       st >> 16 == PTRACE_EVENT_STOP ? 0 : (void *)(uintptr_t)WSTOPSIG(st));
            for (int i = 0; i < j->npending; i++)
                syscall(SYS_tgkill, pid, pid, j->pending[i]);
            free(j);
            return se_fail(err, errlen, -ETIMEDOUT, "the main thread of process %d did not stop "
                           "within %d ms (in the kernel, uninterruptible): nothing was loaded",
                           (int)pid, STOP_TIMEOUT_MS);
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            free(j);
            return se_fail(err, errlen, SE_NOPROC, "process %d ended", (int)pid);
        }
        if (!WIFSTOPPED(st))
            continue;
        if (st >> 16 == PTRACE_EVENT_STOP)
            break;
        remember_signal(j, WSTOPSIG(st));
        /* a signal-delivery stop: the interrupt's own stop follows */
        if (ptrace(PTRACE_CONT, pid, 0, 0) < 0) {
            free(j);
            return se_fail(err, errlen, SE_NOPROC, "process %d ended", (int)pid);
        }
    }
    if (ptrace(PTRACE_GETREGS, pid, 0, &j->saved) < 0) {
        int e = errno;
        inject_end(j);
        return se_fail(err, errlen, -e, "cannot read the registers of process %d: %s", (int)pid,
                       strerror(e));
    }
    /* every vector register, as the kernel keeps them */
    j->xstate = malloc(XSTATE_MAX);
    struct iovec iov = { j->xstate, XSTATE_MAX };
    if (j->xstate && ptrace(PTRACE_GETREGSET, pid, (void *)NT_X86_XSTATE, &iov) == 0 &&
        iov.iov_len > 0) {
        j->xlen = iov.iov_len;
    } else if (ptrace(PTRACE_GETFPREGS, pid, 0, &j->fp) < 0) {
        int e = errno;
        inject_end(j);
        return se_fail(err, errlen, -e, "cannot read the floating-point registers of process %d: %s",
                       (int)pid, strerror(e));
    }
    char e2[256];
    if (maps_read(&j->maps, pid, e2, sizeof e2) != 0) {
        inject_end(j);
        return se_fail(err, errlen, SE_NOPROC, "%s", e2);
    }
    *out = j;
    return 0;
}

/* Does the mapped file at path answer to pattern (see inject_symbol)? */
static int path_matches(const char *path, const char *pat, const char *exe)
{
    if (!*path || *path != '/')
        return 0;
    if (pat[0] == '=')
        return exe[0] && strcmp(path, exe) == 0;
    if (pat[0] == '*') {
        const char *base = strrchr(path, '/') + 1;
        return strncmp(base, pat + 1, strlen(pat + 1)) == 0;
    }
    size_t sl = strlen(pat), pl = strlen(path);
    return pl >= sl && strcmp(path + pl - sl, pat) == 0;
}

uint64_t inject_symbol(struct inject *j, const char *const *sonames, const char *name)
{
    char exe[PATH_MAX] = "", link[64];
    snprintf(link, sizeof link, "/proc/%d/exe", (int)j->pid);
    ssize_t el = readlink(link, exe, sizeof exe - 1);
    exe[el > 0 ? el : 0] = 0;
    for (const char *const *so = sonames; *so; so++) {
        for (size_t i = 0; i < j->maps.n; i++) {
            const char *p = j->maps.v[i].path;
            if (!path_matches(p, *so, exe))
                continue;
            /* through the process's root: its own files in a container */
            char local[PATH_MAX + 32];
            snprintf(local, sizeof local, "/proc/%d/root%s", (int)j->pid, p);
            if (access(local, R_OK) != 0)
                snprintf(local, sizeof local, "%s", p);
            const char *names[1] = { name };
            uint64_t value = 0, bias = 0;
            struct elf_info info;
            if (elf_lookup(local, names, &value, 1, &info) != 1 || !value ||
                elf_load_bias(&j->maps, p, &info, &bias) != 0)
                break; /* this file has no such symbol: the next name */
            return value + bias;
        }
    }
    return 0;
}

int inject_call(struct inject *j, uint64_t fn, const uint64_t *args, int nargs, const void *data,
                size_t dlen, uint64_t *ret, char *err, size_t errlen)
{
    if (nargs > 6 || dlen > 8192)
        return se_fail(err, errlen, -EINVAL, "bad call");
    pid_t pid = j->pid;
    /* below the red zone, with room: the data, then the return address */
    uint64_t sp = (j->saved.rsp - 128 - 512) & ~(uint64_t)15;
    uint64_t data_at = (sp - dlen) & ~(uint64_t)15;
    sp = data_at - 64;
    sp &= ~(uint64_t)15;
    sp -= 8; /* at a function's entry rsp + 8 is 16-aligned */
    uint64_t zero = 0;
    int rc = (dlen ? write_mem(pid, data_at, data, dlen) : 0);
    if (!rc)
        rc = write_mem(pid, sp, &zero, sizeof zero);
    if (rc)
        return se_fail(err, errlen, rc, "cannot write to the stack of process %d: %s", (int)pid,
                       strerror(-rc));
    struct user_regs_struct r = j->saved;
    uint64_t a[6] = { 0 };
    for (int i = 0; i < nargs; i++)
        a[i] = args[i] >= INJECT_DATA && args[i] - INJECT_DATA < dlen ? data_at + (args[i] - INJECT_DATA)
                                                                      : args[i];
    r.rdi = a[0];
    r.rsi = a[1];
    r.rdx = a[2];
    r.rcx = a[3];
    r.r8 = a[4];
    r.r9 = a[5];
    r.rax = 0;
    r.rip = fn;
    r.rsp = sp;
    /* no system call to restart under the call: it runs from rip as is */
    r.orig_rax = (unsigned long long)-1;
    if (ptrace(PTRACE_SETREGS, pid, 0, &r) < 0 || ptrace(PTRACE_CONT, pid, 0, 0) < 0)
        return se_fail(err, errlen, SE_EXITED, "process %d ended", (int)pid);
    int64_t t0 = mono_ns() / 1000000;
    int said = 0;
    for (;;) {
        int st;
        int w = wait_thread(pid, &st, 1000);
        if (w < 0)
            return se_fail(err, errlen, SE_EXITED, "process %d ended", (int)pid);
        if (w == 0) {
            /* it never comes back by itself being stopped for: the call
             * must end before its registers can be put back */
            if (!said && mono_ns() / 1000000 - t0 > 5000) {
                fprintf(stderr, "sonde: still waiting for the call in process %d to return "
                        "(its main thread may hold a lock the call needs)\n", (int)pid);
                said = 1;
            }
            continue;
        }
        if (WIFEXITED(st) || WIFSIGNALED(st))
            return se_fail(err, errlen, SE_EXITED, "process %d ended during the call", (int)pid);
        if (!WIFSTOPPED(st))
            continue;
        int sig = WSTOPSIG(st);
        if (st >> 16 == PTRACE_EVENT_STOP) {
            ptrace(PTRACE_CONT, pid, 0, 0);
            continue;
        }
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int from_kernel = ptrace(PTRACE_GETSIGINFO, pid, 0, &si) == 0 && si.si_code > 0;
        if (from_kernel && (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE ||
                            sig == SIGTRAP)) {
            struct user_regs_struct now;
            if (ptrace(PTRACE_GETREGS, pid, 0, &now) < 0)
                return se_fail(err, errlen, SE_EXITED, "process %d ended", (int)pid);
            if (sig == SIGSEGV && now.rip == 0) {
                *ret = now.rax;
                return 0;
            }
            /* a fault of the call itself (its instruction would only fault
             * again): put everything back rather than let the process die
             * of it now */
            return se_fail(err, errlen, -EFAULT, "the call faulted in process %d (signal %d at "
                           "%#llx)", (int)pid, sig, (unsigned long long)now.rip);
        }
        /* any other signal waits until the thread is its own again */
        remember_signal(j, sig);
        ptrace(PTRACE_CONT, pid, 0, 0);
    }
}

int inject_write(struct inject *j, uint64_t addr, const void *buf, size_t len)
{
    return write_mem(j->pid, addr, buf, len);
}

long inject_syscall(const struct inject *j)
{
    return (long)j->saved.orig_rax;
}

int inject_read_string(struct inject *j, uint64_t addr, char *out, size_t outlen)
{
    if (!outlen)
        return -EINVAL;
    struct iovec local = { out, outlen - 1 };
    struct iovec remote = { (void *)(uintptr_t)addr, outlen - 1 };
    ssize_t n = process_vm_readv(j->pid, &local, 1, &remote, 1, 0);
    if (n <= 0) {
        out[0] = 0;
        return -EFAULT;
    }
    out[n] = 0;
    out[strnlen(out, (size_t)n)] = 0;
    return 0;
}

void inject_end(struct inject *j)
{
    if (!j)
        return;
    pid_t pid = j->pid;
    ptrace(PTRACE_SETREGS, pid, 0, &j->saved);
    struct iovec iov = { j->xstate, j->xlen };
    if (!j->xlen || ptrace(PTRACE_SETREGSET, pid, (void *)NT_X86_XSTATE, &iov) != 0) {
        if (j->xlen) /* the legacy part of what was saved */
            memcpy(&j->fp, j->xstate, sizeof j->fp < j->xlen ? sizeof j->fp : j->xlen);
        ptrace(PTRACE_SETFPREGS, pid, 0, &j->fp);
    }
    /* The signals that arrived meanwhile, sent again to the thread once it
     * runs (a detach from an interrupt's stop would drop one given to it) */
    ptrace(PTRACE_DETACH, pid, 0, 0);
    for (int i = 0; i < j->npending; i++)
        syscall(SYS_tgkill, pid, pid, j->pending[i]);
    inject_free(j);
}

void inject_free(struct inject *j)
{
    if (!j)
        return;
    maps_fini(&j->maps);
    free(j->xstate);
    free(j);
}

#else /* not x86-64 */

int inject_begin(struct inject **out, pid_t pid, char *err, size_t errlen)
{
    (void)pid;
    *out = NULL;
    return se_fail(err, errlen, SE_UNSUPPORTED, "loading the agent into a running process is "
                   "implemented for x86-64 only: start the program under `sonde record --agent -- CMD`");
}

uint64_t inject_symbol(struct inject *j, const char *const *sonames, const char *name)
{
    (void)j;
    (void)sonames;
    (void)name;
    return 0;
}

int inject_call(struct inject *j, uint64_t fn, const uint64_t *args, int nargs, const void *data,
                size_t dlen, uint64_t *ret, char *err, size_t errlen)
{
    (void)j, (void)fn, (void)args, (void)nargs, (void)data, (void)dlen, (void)ret;
    return se_fail(err, errlen, SE_UNSUPPORTED, "not x86-64");
}

int inject_write(struct inject *j, uint64_t addr, const void *buf, size_t len)
{
    (void)j, (void)addr, (void)buf, (void)len;
    return -ENOSYS;
}

long inject_syscall(const struct inject *j)
{
    (void)j;
    return -1;
}

int inject_read_string(struct inject *j, uint64_t addr, char *out, size_t outlen)
{
    (void)j, (void)addr;
    if (outlen)
        out[0] = 0;
    return -ENOSYS;
}

void inject_end(struct inject *j)
{
    (void)j;
}

void inject_free(struct inject *j)
{
    (void)j;
}

#endif
