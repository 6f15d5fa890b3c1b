/* DWARF line lookups without loading a module's whole DWARF.
 *
 * libdw decompresses every debug section of a file when it opens it: for
 * libc's separate debug file, 10 MB of .debug_info and .debug_loclists
 * inflated to name the line of one clock_nanosleep frame. This reader
 * finds the compilation unit of an address in .debug_aranges, inflates
 * .debug_info only up to the end of that unit (the inflated prefix grows
 * as later units are asked for, never inflated twice), and hands libdw a
 * small in-memory ELF file holding that prefix and the sections a line
 * table needs (.debug_abbrev, .debug_line, string sections). The line is
 * then found exactly as libdwfl's dwfl_module_getsrc finds it (the same
 * unit, the same table, the same search), so the file names and lines are
 * libdw's own.
 *
 * Whenever it cannot tell (no aranges, an address in no unit or in two, a
 * compression it does not know, a malformed or oversized section) it says
 * so and the caller asks libdwfl instead: never a different answer, only a
 * slower one. Every size read from the file is checked against the data;
 * an inflated section is at most NAT_LINES_MAX_SECTION bytes. */
#ifndef SONDE_NAT_LINES_H
#define SONDE_NAT_LINES_H

#include <stddef.h>
#include <stdint.h>

/* The largest debug section inflated (its ELF compression header says how
 * large it is; a larger claim is refused). */
#define NAT_LINES_MAX_SECTION ((size_t)512 << 20)

struct nat_lines;

/* A reader of the ELF file at path (the file that holds a module's DWARF:
 * the module itself or its separate debug file). NULL when the file cannot
 * be read or lacks .debug_info, .debug_abbrev, .debug_line or
 * .debug_aranges (the caller then uses libdwfl). Reads nothing else until
 * asked. */
struct nat_lines *nat_lines_open(const char *path);
void nat_lines_close(struct nat_lines *nl);

/* The first PT_LOAD segment's p_vaddr of the file (to check that a separate
 * debug file has the addresses of its module). -1 when none. */
int nat_lines_first_vaddr(struct nat_lines *nl, uint64_t *vaddr);

/* The source file and line of link-time address addr: 1 with *file (owned
 * by nl, valid until the next nat_lines_find or nat_lines_close) and *line
 * set; 0 when the file does not tell (ask libdwfl); never an error. */
int nat_lines_find(struct nat_lines *nl, uint64_t addr, const char **file, int *line);

#endif
