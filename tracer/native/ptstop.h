/* Stopping one thread of another process for an instant: seize it with
 * ptrace, interrupt it, copy its registers and the top of its stack, let the
 * caller read what must be read while it stands still (its Python stack),
 * and detach, which resumes it. Only that thread stops, never the process.
 *
 * Every path resumes the thread: a read that fails, a thread that exits
 * while stopped (nothing left to resume), a signal that arrived meanwhile
 * (handed back on detach). A thread that does not stop within
 * NAT_STOP_TIMEOUT_NS stays seized with the interrupt pending; nat_reap
 * (called by the next capture, and by snapshot_native before it returns)
 * detaches it once it stops,
 * and the kernel detaches every tracee when sonde exits, even on SIGKILL
 * (PTRACE_SEIZE without PTRACE_O_EXITKILL). */
#ifndef SONDE_NAT_PTSTOP_H
#define SONDE_NAT_PTSTOP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Registers kept, in DWARF numbering: x86-64 rax..r15 (0-15) and rip (16);
 * aarch64 x0..x30 (0-30) and sp (31). */
#define NAT_NREGS 33

/* Bytes of stack copied above the stack pointer while the thread is
 * stopped (plus the 128-byte red zone below it). Frames further out are
 * read afterwards from the running thread: they stay put while it runs
 * deeper, and a torn one only cuts the stack short. */
#define NAT_STACK_COPY (64 * 1024)
#define NAT_REDZONE 128

/* How long a thread may take to reach its stop after the interrupt. It is
 * not paused meanwhile (it runs, or waits for a CPU, or sits in the kernel
 * until it can take the stop); the pause proper, from the stop to the
 * detach, is only sonde's own reads (nat_capture.hold_ns). */
#define NAT_STOP_TIMEOUT_NS (1000 * 1000 * 1000)

struct nat_capture {
    pid_t tid;
    uint64_t regs[NAT_NREGS]; /* DWARF numbering, see NAT_NREGS */
    int nregs;                /* how many of regs are set */
    uint64_t pc, sp;
    uint64_t stack_lo;        /* target address of stack[0] */
    size_t stack_len;         /* bytes of stack copied */
    uint8_t stack[NAT_STACK_COPY + NAT_REDZONE];
    int64_t pause_ns;         /* from the interrupt to the detach */
    int64_t hold_ns;          /* from seeing it stopped to the detach: what the
                                 thread certainly stood still (pause_ns minus the
                                 time it took to reach the stop) */
    int8_t pc_module;         /* nat_check_pc: 1 the module at pc is the one
                                 the unwinder has, 0 it is not, -1 unchecked */
    size_t copy_want;         /* in: bytes above the stack pointer to copy while
                                 the thread is stopped (0 or more than
                                 NAT_STACK_COPY: NAT_STACK_COPY); a sampler that
                                 knows how deep its unwinds read copies less,
                                 and the pause is shorter */
};

/* Called while the thread is stopped (to read its Python stack); its return
 * value is nat_capture's when negative. */
typedef int (*nat_stopped_fn)(void *arg);

/* Stop thread tid of process pid, fill c, call fn(arg) (when non-NULL) while
 * it is stopped, resume it. 0, or SE_EXITED (the thread ended), SE_PERM (it
 * cannot be traced: no permission, or another tracer has it), -ETIMEDOUT
 * (it did not stop in time: see above), SE_FAULT (its registers could not be
 * read), or fn's negative code; the one-line message in err. The thread runs
 * again when this returns, whatever it returns. Allocates nothing. */
int nat_capture(pid_t pid, pid_t tid, struct nat_capture *c, nat_stopped_fn fn, void *arg,
                char *err, size_t errlen);

/* nat_capture with another bound than NAT_STOP_TIMEOUT_NS on the time the
 * thread may take to reach its stop (the sampler's: a tick must not wait a
 * second for one thread). */
int nat_capture_within(pid_t pid, pid_t tid, struct nat_capture *c, nat_stopped_fn fn, void *arg,
                       int64_t timeout_ns, char *err, size_t errlen);

/* Detach the threads left seized by a timed-out capture that have stopped
 * since (waiting up to wait_ns for them). Returns how many remain seized. */
int nat_reap(int64_t wait_ns);

#endif
