/* Calling functions inside a running process, for `sonde record --agent -p
 * PID`: its main thread is stopped alone (PTRACE_SEIZE + PTRACE_INTERRUPT),
 * its registers and its whole extended register state (XSAVE: every vector
 * register) are saved, each call runs on its own stack below the thread's
 * red zone and returns to address 0 (the fault that ends it is caught and
 * never delivered), then everything is put back and the thread detached,
 * resuming the system call it was in, if any. x86-64 Linux only.
 *
 * The hazards are those of any debugger's function call: a thread stopped
 * while it holds the dynamic loader's or malloc's lock would wait for
 * itself in a call that takes them (dlopen, malloc): callers call such
 * functions only from a thread that waits in a system call
 * (cli/agent_launch.c), and otherwise only mmap and Py_AddPendingCall
 * (which takes the interpreter's pending-calls lock: a main thread
 * stopped while it held it, for the few instructions in which it takes a
 * call off the queue, would wait for itself; not guarded against).
 * Signals that arrive during the stop are sent again after with tgkill:
 * their siginfo (sender, sigqueue value) is not kept, and a real-time
 * signal that came twice comes once.
 * sonde killed during a call leaves the thread to return to address 0 and
 * the process to die of SIGSEGV. A call takes microseconds to
 * milliseconds. */
#ifndef SONDE_INJECT_H
#define SONDE_INJECT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct inject;

/* Stop the main thread of pid and save its state. 0, SE_PERM (ptrace
 * refused), SE_NOPROC, SE_UNSUPPORTED (not x86-64) or -errno, with a
 * one-line message in err. */
int inject_begin(struct inject **out, pid_t pid, char *err, size_t errlen);

/* The address in the process of the function name exported by the first
 * mapped file that answers to one of sonames (a NULL-terminated list): a
 * path ending, such as "/libc.so.6"; "*libpython": a file name that begins
 * so; "=exe": the process's executable. 0 when none has it. */
uint64_t inject_symbol(struct inject *j, const char *const *sonames, const char *name);

/* Call fn(args[0..nargs-1]) (integers and pointers, at most 6) in the
 * stopped thread; data (dlen bytes) is copied to the call's stack first
 * and every args[i] equal to INJECT_DATA + k is replaced by the address of
 * its byte k. *ret receives the returned rax. 0, SE_EXITED (the process
 * died) or -errno with a message. */
#define INJECT_DATA 0xd0d0000000000000ull
int inject_call(struct inject *j, uint64_t fn, const uint64_t *args, int nargs, const void *data,
                size_t dlen, uint64_t *ret, char *err, size_t errlen);

/* Write len bytes of buf into the process at addr. 0 or -errno. */
int inject_write(struct inject *j, uint64_t addr, const void *buf, size_t len);

/* The system call the thread was stopped in (its number), or -1 when it
 * was stopped running its own code. */
long inject_syscall(const struct inject *j);

/* Read a NUL-terminated string of the process at addr into out. */
int inject_read_string(struct inject *j, uint64_t addr, char *out, size_t outlen);

/* Put the thread's state back and let it run (delivering any signal that
 * arrived meanwhile); frees j. */
void inject_end(struct inject *j);

/* Free j alone, the process gone (nothing of it is touched: its id may
 * be another's soon). */
void inject_free(struct inject *j);

#endif
