/* tracer/proc: the per-thread /proc files the sampler reads at every tick
 * (schedstat, syscall, the kernel stack), and a few per-process ones
 * (cmdline, the program image's identity). The readers keep their files
 * open and read them with pread: on the sampling path they allocate
 * nothing and make one system call per file. The parsers are pure functions
 * of the text, for tests.
 *
 * Threads: a struct proc_task belongs to one thread of sonde at a time (the
 * sampling thread); nothing here is shared. */
#ifndef SONDE_PROC_TASK_H
#define SONDE_PROC_TASK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* One thread's open files. fd_stack: -1 not opened yet (opened on first
 * use: the kernel stack is read only for some states), -2 unusable. */
struct proc_task {
    pid_t pid, tid;
    int fd_sched, fd_sys, fd_stack;
};

/* Open the files of thread tid of process pid. Files that cannot be opened
 * (the thread ended, or no permission) read as unknown later. Never fails. */
void proc_task_open(struct proc_task *t, pid_t pid, pid_t tid);
/* Close what proc_task_open opened; idempotent. */
void proc_task_close(struct proc_task *t);

/* /proc/.../schedstat: nanoseconds on a CPU, nanoseconds runnable waiting
 * for one, times put on a CPU. Each -1 when unknown. */
struct proc_schedstat {
    int64_t cpu_ns, delay_ns, pcount;
};
/* Parse a schedstat line (NUL-terminated). Missing fields are -1. */
void proc_schedstat_parse(const char *buf, struct proc_schedstat *out);
/* Read the thread's schedstat (every field -1 when unreadable). */
void proc_task_schedstat(struct proc_task *t, struct proc_schedstat *out);

/* /proc/.../syscall: what the thread is doing in the kernel. */
enum proc_sys_kind {
    PROC_SYS_UNKNOWN = 0, /* unreadable (no permission, thread gone) */
    PROC_SYS_RUNNING,     /* "running": on a CPU or queued for one */
    PROC_SYS_USER,        /* "-1 ...": stopped outside any system call */
    PROC_SYS_CALL,        /* "NR ARG0 ...": asleep in system call NR */
};
struct proc_syscall {
    int kind;          /* enum proc_sys_kind */
    int64_t nr;        /* PROC_SYS_CALL: the call's number (-1 unparsable) */
    int has_arg0;      /* nr and a first argument were read */
    uint64_t arg0;     /* its first argument (a futex: the word's address) */
};
#define PROC_NR_FUTEX 202 /* x86-64 */

/* Parse a syscall line (NUL-terminated; "" is PROC_SYS_UNKNOWN). */
void proc_syscall_parse(const char *buf, struct proc_syscall *out);
/* Read the thread's syscall file. */
void proc_task_syscall(struct proc_task *t, struct proc_syscall *out);

/* Where a runnable thread is, from its kernel stack (/proc/.../stack, which
 * needs root; PROC_KSTACK_UNKNOWN without):
 *  - PROC_KSTACK_ON_CPU: empty. The kernel does not unwind a thread that
 *    runs on another CPU, so it is on a CPU right now;
 *  - PROC_KSTACK_WAIT_RETURN: still in the kernel on its way back from a
 *    wait, woken inside the futex wait or preempted while returning from
 *    the system call, not yet back in user space;
 *  - PROC_KSTACK_OTHER: anything else, e.g. preempted in user space (an
 *    interrupt return): queued for a CPU, or preempted by the sampler
 *    itself. */
enum { PROC_KSTACK_UNKNOWN = -1, PROC_KSTACK_ON_CPU, PROC_KSTACK_WAIT_RETURN, PROC_KSTACK_OTHER };

/* Classify the text of a kernel stack (NUL-terminated, "" when empty). */
int proc_kstack_classify(const char *buf);
/* Read and classify the thread's kernel stack (opens it on first use; a
 * file that cannot be opened or read is not tried again). */
int proc_task_kstack(struct proc_task *t);

/* The OS name of thread tid of process pid (/proc/PID/task/TID/comm, what
 * prctl(PR_SET_NAME) or pthread_setname_np set, else the program's name) into
 * out, without its newline; "" when unreadable (the thread ended). pid ==
 * getpid() reads /proc/self, which is right in any pid namespace. Opens a
 * file: not for the sampling hot path. */
void proc_task_comm(pid_t pid, pid_t tid, char *out, size_t outlen);

/* ---- per process ---- */

/* The command line of pid, arguments joined by spaces ("" if unreadable). */
void proc_cmdline(pid_t pid, char *out, size_t outlen);
/* The parent of pid, or -1. */
pid_t proc_ppid(pid_t pid);
/* Gone: no such process, or a zombie waiting to be reaped. */
int proc_gone(pid_t pid);
/* An identity of the program image pid runs: the executable's inode and
 * the auxiliary vector the kernel built at exec (its entry point and random
 * bytes' address change at every exec). 0 if unreadable. */
uint64_t proc_image_id(pid_t pid);

/* An identity of the files pid has mapped (each file-backed mapping's
 * address and path, hashed): it changes when a program is executed or a
 * library loaded, not when the heap grows. 0 if unreadable. Cheap next to
 * an attach, which reads the symbol tables of those files. */
uint64_t proc_maps_files_id(pid_t pid);

#endif
