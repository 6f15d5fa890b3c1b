/* ELF symbol lookup with libelf. */
#ifndef SONDE_ELFSYM_H
#define SONDE_ELFSYM_H

#include <stddef.h>
#include <stdint.h>

struct elf_info {
    int is_dyn;              /* ET_DYN (PIE or shared object): needs a load bias */
    uint64_t first_load_vaddr; /* p_vaddr of the first PT_LOAD, page aligned */
    uint64_t first_load_offset; /* its p_offset, page aligned */
};

/* Look up each of names[i] (n of them) in the .dynsym and .symtab of the ELF
 * file at path; values[i] receives st_value (link-time address) or 0 if
 * absent. Fills info when non-NULL. Returns the number of names found, or a
 * negative error (SE_BADFILE for a file that is not ELF, -errno). The
 * answers of the last few lookups are kept by the file's device, inode,
 * size and modification time and the names asked: the same question about
 * an unchanged file is answered without parsing it again. Thread-safe. */
int elf_lookup(const char *path, const char *const *names, uint64_t *values, size_t n,
               struct elf_info *info);

struct maps;

/* The load bias of the ELF file mapped from path (as the maps name it):
 * where its link-time address 0 lands in the process (0 for an ET_EXEC
 * file). 0, or -ENOENT when nothing of it is mapped. */
int elf_load_bias(const struct maps *m, const char *path, const struct elf_info *info,
                  uint64_t *bias);

/* How many times elf_lookup has parsed a file's symbol tables (rather than
 * answered from its cache) in this process. */
unsigned long elf_lookup_parses(void);

/* Scan the read-only data sections of path for a NUL-terminated string that
 * looks like a CPython version "3.M.P[suffix]" with the given minor version
 * (any minor if minor < 0). Writes it to out and returns 0, or -ENOENT. */
int elf_find_version_string(const char *path, int minor, char *out, size_t outlen);

#endif
