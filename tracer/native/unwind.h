/* Native stacks of a remote thread: unwinding a nat_capture (registers and
 * a copy of the stack top, ptstop.h) with elfutils' libdwfl, which finds
 * the CFI in .eh_frame / .debug_frame (x86-64 falls back to frame
 * pointers where there is none), and naming each address from .symtab,
 * .dynsym and DWARF lines, with separate debug files found by build-id or
 * debuglink under /usr/lib/debug. The unwinder runs after the thread was
 * resumed, never while it is stopped.
 *
 * Modules are read once (libdwfl keeps each by path and address range, its
 * build-id checked when found; its file opened when reported); nat_refresh
 * re-reads the process's maps, keeping modules still mapped and dropping
 * the others, and clears the symbol cache when the executable mappings
 * changed (dlopen, dlclose). nat_unwind checks every stack's modules
 * against the process's memory and reads the maps again itself when one
 * changed or an address is outside them all. */
#ifndef SONDE_NAT_UNWIND_H
#define SONDE_NAT_UNWIND_H

#include "tracer/native/ptstop.h"

#include <libelf.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NAT_MAX_DEPTH 512

/* Why an unwind stopped short: the depth cap, or an address without
 * unwind information, unreadable stack or a loop. */
#define NAT_TRUNC_DEPTH 1
#define NAT_TRUNC_BROKEN 2

struct nat_frame {
    uint64_t pc;        /* return address, or the exact pc of the innermost frame */
    uint8_t activation; /* 1: pc is exact (innermost, or interrupted by a signal) */
};

/* What an address is. Strings are owned by the unwinder's cache and live
 * until nat_unwinder_free or a nat_refresh that saw the maps change. */
struct nat_sym {
    const char *function; /* NULL: no symbol covers the address */
    const char *file;     /* source file from DWARF, NULL without line information */
    int line;             /* 0 without line information */
    const char *module;   /* path of the mapped file, NULL outside any */
    uint64_t offset;      /* address relative to the module (link-time address) */
    uint64_t func_offset; /* the start of the function relative to the module:
                             its symbol's, else its unwind table entry's
                             (.eh_frame_hdr), else offset */
    uint8_t is_eval;      /* the interpreter's evaluation loop */
    uint8_t is_interp;    /* in the file that holds the interpreter (libpython, or
                             the executable of a static build) */
};

struct nat_unwinder;

/* An unwinder for process pid, whose interpreter lives in the file
 * interp_path (may be NULL). NULL with a message in err (the maps cannot be
 * read, out of memory). */
struct nat_unwinder *nat_unwinder_new(pid_t pid, const char *interp_path, char *err,
                                      size_t errlen);
void nat_unwinder_free(struct nat_unwinder *u);

/* Check, while the thread of c is stopped (nat_stopped_fn), that the
 * module libdwfl has at c's pc is the file mapped there (its build-id in
 * the process's memory): sets c->pc_module. */
void nat_check_pc(struct nat_unwinder *u, struct nat_capture *c);

/* Unwind the thread of c, innermost first, into out (at most max frames).
 * Returns the number of frames; *truncated is set to NAT_TRUNC_DEPTH or
 * NAT_TRUNC_BROKEN when the walk stopped short. Stack beyond c's copy is
 * read from the running process. Every module the frames are in is
 * checked against the process's memory (its build-id where libdwfl has
 * it; the pc's while the thread was stopped, see nat_check_pc): a module
 * that changed since the maps were read (a library unloaded and another
 * loaded at its address) has the maps read again, and the frames from the
 * first one in it outwards are dropped (NAT_TRUNC_BROKEN; the count may
 * be 0). */
int nat_unwind(struct nat_unwinder *u, const struct nat_capture *c, struct nat_frame *out,
               int max, int *truncated);

/* Name the frame at pc (activation as in nat_frame), with DWARF lines when
 * lines is set. Never NULL. Cached by address; the result stays valid until
 * nat_unwinder_free (a refresh of the maps forgets lookups, not results). */
const struct nat_sym *nat_symbolize(struct nat_unwinder *u, uint64_t pc, int activation,
                                    int lines);

/* Re-read the maps of the process (see above). 1 when the executable
 * mappings changed, 0 when not, negative when they could not be read. */
int nat_refresh(struct nat_unwinder *u);

/* Where the function holding x (a link-time address of the ELF file elf)
 * starts: the greatest initial location at most x in the sorted table of
 * unwind entries of .eh_frame_hdr, which the linker writes one per
 * function. 0 with *start set; -1 when the file has no such table, or one
 * this reader does not take (little-endian 64-bit files, direct pointer
 * encodings, datarel sdata4 entries). The file is outside input: every
 * bound is checked. Exposed for tests. */
int nat_eh_hdr_start(Elf *elf, uint64_t x, uint64_t *start);

/* Counters since nat_unwinder_new. */
struct nat_stats {
    uint64_t unwinds, truncated, live_reads, refreshes;
    uint64_t module_changes; /* unwinds that met a changed module */
};
void nat_unwinder_stats(const struct nat_unwinder *u, struct nat_stats *st);

/* How far above the stack pointer the last nat_unwind read the stack
 * (bytes, at most NAT_STACK_COPY): what a capture must copy for the next
 * stacks of that depth to unwind from the copy alone. */
size_t nat_unwind_depth(const struct nat_unwinder *u);

#endif
