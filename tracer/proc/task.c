/* tracer/proc: per-thread /proc readers for the sampling path (see
 * tracer/proc/task.h). */
#include "tracer/proc/task.h"

#include "tracer/proc/maps.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void proc_task_open(struct proc_task *t, pid_t pid, pid_t tid)
{
    char path[96];
    t->pid = pid;
    t->tid = tid;
    snprintf(path, sizeof path, "/proc/%d/task/%d/schedstat", (int)pid, (int)tid);
    t->fd_sched = open(path, O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof path, "/proc/%d/task/%d/syscall", (int)pid, (int)tid);
    t->fd_sys = open(path, O_RDONLY | O_CLOEXEC);
    t->fd_stack = -1;
}

void proc_task_close(struct proc_task *t)
{
    if (t->fd_sched >= 0)
        close(t->fd_sched);
    if (t->fd_sys >= 0)
        close(t->fd_sys);
    if (t->fd_stack >= 0)
        close(t->fd_stack);
    t->fd_sched = t->fd_sys = t->fd_stack = -1;
}

/* An unsigned number in base 10 or 16 after optional blanks; -1 if there is
 * none. Returns the first character after it. (strtoll's locale handling
 * was the sampler's largest user-space cost at 10 kHz.) */
static const char *scan_u64(const char *p, int base, int64_t *v)
{
    while (*p == ' ' || *p == '\n')
        p++;
    if (base == 16 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        p += 2;
    uint64_t x = 0;
    int digits = 0;
    for (;; p++, digits++) {
        int d;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (base == 16 && (*p | 0x20) >= 'a' && (*p | 0x20) <= 'f')
            d = (*p | 0x20) - 'a' + 10;
        else
            break;
        x = x * (uint64_t)base + (uint64_t)d;
    }
    *v = digits ? (int64_t)x : -1;
    return p;
}

/* pread a small file into buf (NUL-terminated); the length, or -1. */
static ssize_t read_small(int fd, char *buf, size_t cap)
{
    if (fd < 0)
        return -1;
    ssize_t n = pread(fd, buf, cap - 1, 0);
    if (n < 0)
        return -1;
    buf[n] = 0;
    return n;
}

void proc_schedstat_parse(const char *buf, struct proc_schedstat *out)
{
    const char *p = scan_u64(buf, 10, &out->cpu_ns);
    p = scan_u64(p, 10, &out->delay_ns);
    scan_u64(p, 10, &out->pcount);
}

void proc_task_schedstat(struct proc_task *t, struct proc_schedstat *out)
{
    char buf[96];
    if (read_small(t->fd_sched, buf, sizeof buf) <= 0) {
        out->cpu_ns = out->delay_ns = out->pcount = -1;
        return;
    }
    proc_schedstat_parse(buf, out);
}

void proc_syscall_parse(const char *buf, struct proc_syscall *out)
{
    out->nr = -1;
    out->has_arg0 = 0;
    out->arg0 = 0;
    if (!buf[0]) {
        out->kind = PROC_SYS_UNKNOWN;
        return;
    }
    if (buf[0] == 'r') {
        out->kind = PROC_SYS_RUNNING;
        return;
    }
    if (buf[0] == '-') {
        out->kind = PROC_SYS_USER;
        return;
    }
    out->kind = PROC_SYS_CALL;
    const char *end = scan_u64(buf, 10, &out->nr);
    if (out->nr >= 0 && *end == ' ') {
        int64_t a;
        scan_u64(end + 1, 16, &a);
        out->has_arg0 = 1;
        out->arg0 = (uint64_t)a; /* -1 (no digits) matches no address */
    }
}

void proc_task_syscall(struct proc_task *t, struct proc_syscall *out)
{
    char buf[128];
    if (read_small(t->fd_sys, buf, sizeof buf) <= 0)
        buf[0] = 0;
    proc_syscall_parse(buf, out);
}

int proc_kstack_classify(const char *buf)
{
    if (!buf[0])
        return PROC_KSTACK_ON_CPU;
    if (strstr(buf, "futex") != NULL ||
        (strstr(buf, "do_syscall_64") != NULL && strstr(buf, "irqentry") == NULL))
        return PROC_KSTACK_WAIT_RETURN;
    return PROC_KSTACK_OTHER;
}

int proc_task_kstack(struct proc_task *t)
{
    if (t->fd_stack == -2)
        return PROC_KSTACK_UNKNOWN;
    if (t->fd_stack < 0) {
        char path[96];
        snprintf(path, sizeof path, "/proc/%d/task/%d/stack", (int)t->pid, (int)t->tid);
        t->fd_stack = open(path, O_RDONLY | O_CLOEXEC);
        if (t->fd_stack < 0) {
            t->fd_stack = -2;
            return PROC_KSTACK_UNKNOWN;
        }
    }
    char buf[512];
    if (read_small(t->fd_stack, buf, sizeof buf) < 0) {
        close(t->fd_stack);
        t->fd_stack = -2;
        return PROC_KSTACK_UNKNOWN;
    }
    return proc_kstack_classify(buf);
}

void proc_task_comm(pid_t pid, pid_t tid, char *out, size_t outlen)
{
    char path[96];
    if (!outlen)
        return;
    out[0] = 0;
    if (tid <= 0)
        return;
    if (pid == getpid())
        snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)tid);
    else
        snprintf(path, sizeof path, "/proc/%d/task/%d/comm", (int)pid, (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, out, outlen - 1);
    close(fd);
    if (n <= 0)
        n = 0;
    out[n] = 0;
    out[strcspn(out, "\n")] = 0;
}

void proc_cmdline(pid_t pid, char *out, size_t outlen)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    out[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, out, outlen - 1);
    close(fd);
    if (n <= 0)
        return;
    for (ssize_t i = 0; i < n - 1; i++)
        if (!out[i])
            out[i] = ' ';
    out[n] = 0;
}

pid_t proc_ppid(pid_t pid)
{
    struct proc_stat ps;
    return proc_stat_read(pid, &ps) == 0 ? ps.ppid : -1;
}

int proc_gone(pid_t pid)
{
    struct proc_stat ps;
    return proc_stat_read(pid, &ps) != 0 || ps.state == 'Z' || ps.state == 'X';
}

uint64_t proc_image_id(pid_t pid)
{
    char path[64];
    struct stat sb;
    uint64_t h = 1469598103934665603ull;
    snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
    if (stat(path, &sb) == 0)
        h = (h ^ (uint64_t)sb.st_ino ^ ((uint64_t)sb.st_dev << 32)) * 1099511628211ull;
    snprintf(path, sizeof path, "/proc/%d/auxv", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    unsigned char buf[1024];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n <= 0)
        return 0;
    for (ssize_t i = 0; i < n; i++)
        h = (h ^ buf[i]) * 1099511628211ull;
    return h ? h : 1;
}

uint64_t proc_maps_files_id(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    /* Lines are hashed as they stream by: "start-end perms off dev inode
     * path"; only those whose path starts with '/' count, start included. */
    uint64_t h = 1469598103934665603ull, lh = h;
    int file_backed = 0, field = 0, at_line_start = 1, any = 0;
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        any = 1;
        for (ssize_t i = 0; i < n; i++) {
            char c = buf[i];
            if (at_line_start) {
                lh = 1469598103934665603ull;
                file_backed = 0;
                field = 0;
                at_line_start = 0;
            }
            if (c == '\n') {
                if (file_backed)
                    h = (h ^ lh) * 1099511628211ull;
                at_line_start = 1;
                continue;
            }
            if (c == ' ' && field < 5) {
                field++;
                continue;
            }
            if (field == 0 || (field >= 5 && c != ' ')) {
                if (field >= 5 && !file_backed && c == '/')
                    file_backed = 1;
                if (field == 0 || file_backed)
                    lh = (lh ^ (unsigned char)c) * 1099511628211ull;
            }
        }
    }
    close(fd);
    return any ? (h ? h : 1) : 0;
}
