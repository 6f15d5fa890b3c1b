/* Greenlet switches reported from inside the program (the in-process
 * agent): the switch hook the sonde Python package installs with
 * greenlet.settrace calls these (through libsonde-agent.so's exported
 * sonde_greenlet_switch / sonde_greenlet_name) on the thread that switched;
 * the sampler (tracer/greenlets.c, sampling its own process) turns them into
 * greenlet lanes with exact CPU.
 *
 * Each thread that switches gets a ring of GREENLET_RING entries (64 bytes
 * each, allocated at its first switch; at most GREENLET_THREADS threads at
 * a time: the ring of a thread that ended, once the sampler read it, goes
 * to the next thread that needs one, and the ended thread's greenlets end):
 * the hook is its only writer, the sampling thread its only reader, with no
 * lock. The sampler reads the rings at each tick, and in between when they
 * fill fast (GREENLET_DRAIN_MIN_NS). A switch the sampler has no room for
 * is lost (counted in the recording's greenlet_switches_lost and
 * green_errors); its interval goes to the next switch's origin.
 *
 * CPU: the thread's CPU clock costs a system call (~1.4 µs under kvm, far
 * more than a switch), the monotonic clock a vDSO read (~30 ns). Each
 * switch reads the monotonic clock; the CPU clock is read only when at
 * least GREENLET_CPU_READ_NS of wall time passed since its last read. The
 * CPU value a switch reports is then that reading; otherwise it is the
 * previous switch's value plus the wall time since it. So a short segment
 * (between two switches, all within GREENLET_CPU_READ_NS of a read) is
 * charged its wall time, and the segment that ends with a read is charged
 * the thread's CPU since the previous read minus what the short segments
 * in between were charged (the sampler clamps that at 0). The thread's
 * total stays its clock's; a greenlet's error is bounded by the wall time
 * of its short segments that was not CPU (preemption, a blocking call not
 * made through a switch), at most GREENLET_CPU_READ_NS per read. */
#ifndef SONDE_GREENLETS_H
#define SONDE_GREENLETS_H

#include <stdint.h>

#define GREENLET_RING 8192
#define GREENLET_THREADS 256
#define GREENLET_CPU_READ_NS 100000 /* read the CPU clock at most every 100 µs of wall */
/* Between two ticks the sampler drains the rings of a process that
 * switches fast enough to fill a ring's eighth before the next tick
 * (1,000,000 switches/s fill a ring in 8 ms), at most this often. */
#define GREENLET_DRAIN_MIN_NS 500000

/* A switch on the calling thread from greenlet origin to greenlet target
 * (their addresses, id() in Python), just made. frame: the address of the
 * origin's top frame object (gr_frame), where it is parked, or 0; dead:
 * the origin has finished (its lane ends). Reads CLOCK_MONOTONIC, and the
 * thread's CPU clock when the rule above says so. Returns the recording's generation (changes with every
 * recording: the hook then describes its greenlets again), 0 while nothing
 * records (then it did nothing). Allocates once per thread; never blocks. */
uint32_t greenlet_note_switch(uint64_t origin, uint64_t target, uint64_t frame, int dead);

/* The name (gevent's Greenlet.name, "(hub)", "(main)"...) and function
 * (qualified name of what it runs, or "") of the greenlet at addr, before
 * it appears in a switch. Strings are cut at 63 bytes. */
void greenlet_note_name(uint64_t addr, const char *name, const char *func);

/* The current recording's generation, 0 while nothing records (then a
 * switch need not be described nor noted). */
uint32_t greenlet_generation(void);

/* In a forked child: nothing records there until a new recording starts. */
void greenlet_atfork_child(void);

#endif
