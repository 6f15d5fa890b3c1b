/* The in-process agent (libsonde-agent.so): the sampler and the recorder
 * running inside the program they record, on native threads that never take
 * the GIL and never run Python code. Memory is read through the checked
 * reader (tracer/proc/mem.h, local mode), so a torn pointer is an error
 * code, never a crash of the host.
 *
 * Ways in: LD_PRELOAD with the settings in the environment (read by the
 * library's constructor: SONDE_AGENT_OUTPUT, SONDE_AGENT_RATE,
 * SONDE_AGENT_DURATION), dlopen + sonde_agent_start (the Python package
 * through ctypes, `sonde record --agent -p PID` by calling dlopen and
 * sonde_agent_start_ms in the process's main thread: cli/inject.h).
 *
 * Lifetimes: one recording at a time per process. It ends at
 * sonde_agent_stop, when its duration ends, or at exit() (an atexit
 * handler stops and finishes it, so a normal exit or sys.exit leaves a
 * complete file). _exit / os._exit and SIGKILL skip that: the file then
 * holds every batch committed so far (at most the last ~200 ms and the
 * final statistics are missing) and still opens. A forked child inherits no
 * recording: its copy of the agent is reset, it records nothing unless
 * sonde_agent_start is called in it. */
#ifndef SONDE_AGENT_H
#define SONDE_AGENT_H

#include <stdint.h>

/* Start recording this process into output (a .sonde path; relative paths
 * are taken from the current directory now) at rate_hz samples a second
 * (1..10000) for duration_s seconds (0: until stopped or exit). Returns at
 * once: a native thread waits (up to 10 s) for the Python runtime to be
 * readable, then samples. 0, -EBUSY (already recording), -EINVAL or
 * -errno. Later failures are printed as one line on stderr and returned by
 * sonde_agent_stop. */
int sonde_agent_start(const char *output, int rate_hz, double duration_s);

/* The same with the duration in milliseconds: integer arguments only, for
 * a caller that sets up the call by hand (`sonde record --agent -p`,
 * cli/inject.h). */
int sonde_agent_start_ms(const char *output, int rate_hz, long long duration_ms);

/* For a process the agent was loaded into while it ran (`sonde record
 * --agent -p`): hook greenlet switches as the Python package does when it
 * is imported (sonde._greenlets.install_at_import, found in pkgdir), from
 * a pending call (Py_AddPendingCall) that the main thread runs between two
 * bytecodes: its own switches, and those of threads started later. 0, or
 * -errno (-ENOSYS: no Python runtime here). */
int sonde_agent_hook_greenlets(const char *pkgdir);

/* Stop the recording, finish the file and wait for the agent's threads to
 * end. 0 (also when nothing was recording), or the negative code of what
 * failed. Never call it from a signal handler. */
int sonde_agent_stop(void);

/* 1 while a recording runs (started and not yet stopped), else 0. */
int sonde_agent_active(void);

/* The greenlet switch hook's entry points (the Python package's tracer,
 * through ctypes): see greenlet_note_switch and greenlet_note_name in
 * tracer/greenlets.h. */
uint32_t sonde_greenlet_switch(uint64_t origin, uint64_t target, uint64_t frame, int dead);
void sonde_greenlet_name(uint64_t addr, const char *name, const char *func);

#endif
