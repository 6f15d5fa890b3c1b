#include "tracer/proc/elfsym.h"

#include "common/err.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static Elf *open_elf(const char *path, int *fd)
{
    elf_version(EV_CURRENT);
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return NULL;
    Elf *e = elf_begin(*fd, ELF_C_READ_MMAP, NULL);
    if (!e || elf_kind(e) != ELF_K_ELF) {
        if (e)
            elf_end(e);
        close(*fd);
        *fd = -1;
        errno = ENOEXEC;
        return NULL;
    }
    return e;
}

int elf_lookup(const char *path, const char *const *names, uint64_t *values, size_t n,
               struct elf_info *info)
{
    int fd;
    Elf *e = open_elf(path, &fd);
    if (!e)
        return errno == ENOEXEC ? SE_BADFILE : -errno;
    size_t found = 0;
    for (size_t i = 0; i < n; i++)
        values[i] = 0;

    GElf_Ehdr eh;
    if (!gelf_getehdr(e, &eh)) {
        elf_end(e);
        close(fd);
        return SE_BADFILE;
    }
    if (info) {
        memset(info, 0, sizeof *info);
        info->is_dyn = eh.e_type == ET_DYN;
        size_t phnum = 0;
        elf_getphdrnum(e, &phnum);
        for (size_t i = 0; i < phnum; i++) {
            GElf_Phdr ph;
            if (gelf_getphdr(e, (int)i, &ph) && ph.p_type == PT_LOAD) {
                info->first_load_vaddr = ph.p_vaddr & ~(uint64_t)0xfff;
                info->first_load_offset = ph.p_offset & ~(uint64_t)0xfff;
                break;
            }
        }
    }

    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(e, scn)) && found < n) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM))
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        if (!d || sh.sh_entsize == 0)
            continue;
        size_t count = sh.sh_size / sh.sh_entsize;
        for (size_t k = 0; k < count && found < n; k++) {
            GElf_Sym sym;
            if (!gelf_getsym(d, (int)k, &sym) || sym.st_value == 0 || sym.st_shndx == SHN_UNDEF)
                continue;
            const char *nm = elf_strptr(e, sh.sh_link, sym.st_name);
            if (!nm || !*nm)
                continue;
            for (size_t i = 0; i < n; i++) {
                if (!values[i] && strcmp(nm, names[i]) == 0) {
                    values[i] = sym.st_value;
                    found++;
                }
            }
        }
    }
    elf_end(e);
    close(fd);
    return (int)found;
}

/* "3.M.P" (or "2.7.P") then optional [a|b|rc]N and/or '+', nothing else. */
static int looks_like_version(const char *s, size_t len, int minor)
{
    if (len < 5 || len > 16 || (s[0] != '3' && s[0] != '2') || s[1] != '.')
        return 0;
    char *end;
    long m = strtol(s + 2, &end, 10);
    if (end == s + 2 || *end != '.' || (minor >= 0 && m != minor))
        return 0;
    const char *p = end + 1;
    if (!isdigit((unsigned char)*p))
        return 0;
    while (isdigit((unsigned char)*p))
        p++;
    while (p < s + len && (isalnum((unsigned char)*p) || *p == '+'))
        p++;
    return p == s + len;
}

int elf_find_version_string(const char *path, int minor, char *out, size_t outlen)
{
    int fd;
    Elf *e = open_elf(path, &fd);
    if (!e)
        return -ENOENT;
    size_t shstrndx;
    int rc = -ENOENT;
    if (elf_getshdrstrndx(e, &shstrndx) != 0)
        goto done;
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(e, scn)) && rc != 0) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS)
            continue;
        const char *nm = elf_strptr(e, shstrndx, sh.sh_name);
        if (!nm || strcmp(nm, ".rodata") != 0)
            continue;
        Elf_Data *d = elf_getdata(scn, NULL);
        if (!d || !d->d_buf)
            continue;
        const char *b = d->d_buf;
        size_t sz = d->d_size;
        /* A string of its own first; failing that, the tail of a path such
         * as ".../versions/3.10.13" or ".../Python-3.9.18", which is where
         * the linker's string tail merging leaves PY_VERSION in builds whose
         * prefix contains the version (pyenv). */
        for (int pass = 0; pass < 2 && rc != 0; pass++) {
            for (size_t i = 0; i + 5 < sz; i++) {
                if ((b[i] != '3' && b[i] != '2') || b[i + 1] != '.')
                    continue;
                char before = i > 0 ? b[i - 1] : 0;
                if (pass == 0 ? before != 0 : (before != '/' && before != '-'))
                    continue;
                size_t len = strnlen(b + i, sz - i);
                if (i + len < sz && looks_like_version(b + i, len, minor)) {
                    snprintf(out, outlen, "%.*s", (int)len, b + i);
                    rc = 0;
                    break;
                }
            }
        }
    }
done:
    elf_end(e);
    close(fd);
    return rc;
}
