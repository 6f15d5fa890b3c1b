/* Greenlet switches reported from inside the program (the in-process
 * agent): the switch hook the sonde Python package installs with
 * greenlet.settrace calls these (through libsonde-agent.so's exported
 * sonde_greenlet_switch / sonde_greenlet_name) on the thread that switched;
 * the sampler (tracer/greenlets.c, sampling its own process) turns them into
 * greenlet lanes with exact CPU.
 *
 * Each thread that switches gets a ring of GREENLET_RING entries (64 bytes
 * each, allocated at its first switch; at most GREENLET_THREADS threads):
 * the hook is its only writer, the sampling thread its only reader, with no
 * lock. A switch the sampler has no room for is lost (counted in the
 * recording's green_errors); its interval goes to the next switch's origin. */
#ifndef SONDE_GREENLETS_H
#define SONDE_GREENLETS_H

#include <stdint.h>

#define GREENLET_RING 8192
#define GREENLET_THREADS 256

/* A switch on the calling thread from greenlet origin to greenlet target
 * (their addresses, id() in Python), just made. frame: the address of the
 * origin's top frame object (gr_frame), where it is parked, or 0; dead:
 * the origin has finished (its lane ends). Reads the thread's CPU clock and
 * CLOCK_MONOTONIC. Returns the recording's generation (changes with every
 * recording: the hook then describes its greenlets again), 0 while nothing
 * records (then it did nothing). Allocates once per thread; never blocks. */
uint32_t greenlet_note_switch(uint64_t origin, uint64_t target, uint64_t frame, int dead);

/* The name (gevent's Greenlet.name, "(hub)", "(main)"...) and function
 * (qualified name of what it runs, or "") of the greenlet at addr, before
 * it appears in a switch. Strings are cut at 63 bytes. */
void greenlet_note_name(uint64_t addr, const char *name, const char *func);

/* In a forked child: nothing records there until a new recording starts. */
void greenlet_atfork_child(void);

#endif
