#include "tracer/proc/elfsym.h"
#include "tracer/proc/maps.h"

#include "common/err.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The answers of the last lookups, by file identity (device, inode, size,
 * modification time) and the names asked: a process is attached to more
 * than once (the agent waits for its runtime, then its sampler attaches),
 * and parsing the symbol table of a large executable costs milliseconds
 * each time. A file replaced or rewritten has another identity. */
#define CACHE_N 8
struct cached {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    size_t n;
    char *names;         /* the n names, each NUL-terminated, one after another */
    uint64_t *values;
    struct elf_info info;
    int found;
};
static struct cached cache[CACHE_N];
static size_t cache_next;
static unsigned long cache_parses;
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;

static int same_file(const struct cached *c, const struct stat *st)
{
    return c->names && c->dev == st->st_dev && c->ino == st->st_ino && c->size == st->st_size &&
           c->mtime.tv_sec == st->st_mtim.tv_sec && c->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static int same_names(const struct cached *c, const char *const *names, size_t n)
{
    if (c->n != n)
        return 0;
    const char *p = c->names;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(p, names[i]) != 0)
            return 0;
        p += strlen(p) + 1;
    }
    return 1;
}

/* Under cache_mu: the answer for st and names, copied out; 1 if found. */
static int cache_get(const struct stat *st, const char *const *names, uint64_t *values, size_t n,
                     struct elf_info *info, int *found)
{
    for (size_t k = 0; k < CACHE_N; k++) {
        const struct cached *c = &cache[k];
        if (!same_file(c, st) || !same_names(c, names, n))
            continue;
        if (n)
            memcpy(values, c->values, n * sizeof *values);
        if (info)
            *info = c->info;
        *found = c->found;
        return 1;
    }
    return 0;
}

/* Under cache_mu: keep an answer (best effort: nothing is kept when out of
 * memory). */
static void cache_put(const struct stat *st, const char *const *names, const uint64_t *values, size_t n,
                      const struct elf_info *info, int found)
{
    size_t len = 1;
    for (size_t i = 0; i < n; i++)
        len += strlen(names[i]) + 1;
    char *nm = malloc(len);
    uint64_t *v = malloc((n ? n : 1) * sizeof *v);
    if (!nm || !v) {
        free(nm);
        free(v);
        return;
    }
    char *p = nm;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]) + 1;
        memcpy(p, names[i], l);
        p += l;
    }
    if (n)
        memcpy(v, values, n * sizeof *v);
    struct cached *c = &cache[cache_next];
    cache_next = (cache_next + 1) % CACHE_N;
    free(c->names);
    free(c->values);
    *c = (struct cached){ st->st_dev, st->st_ino, st->st_size, st->st_mtim, n, nm, v, *info, found };
}

unsigned long elf_lookup_parses(void)
{
    pthread_mutex_lock(&cache_mu);
    unsigned long n = cache_parses;
    pthread_mutex_unlock(&cache_mu);
    return n;
}

/* libelf over the open file *fd (closed, and set to -1, on failure) */
static Elf *begin_elf(int *fd)
{
    elf_version(EV_CURRENT);
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

static Elf *open_elf(const char *path, int *fd)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return NULL;
    return begin_elf(fd);
}

int elf_lookup(const char *path, const char *const *names, uint64_t *values, size_t n,
               struct elf_info *info)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    int have_st = fstat(fd, &st) == 0, hit = 0, cached_found = 0;
    pthread_mutex_lock(&cache_mu);
    if (have_st)
        hit = cache_get(&st, names, values, n, info, &cached_found);
    if (!hit)
        cache_parses++;
    pthread_mutex_unlock(&cache_mu);
    if (hit) {
        close(fd);
        return cached_found;
    }
    Elf *e = begin_elf(&fd);
    if (!e)
        return SE_BADFILE;
    size_t found = 0;
    for (size_t i = 0; i < n; i++)
        values[i] = 0;

    GElf_Ehdr eh;
    if (!gelf_getehdr(e, &eh)) {
        elf_end(e);
        close(fd);
        return SE_BADFILE;
    }
    struct elf_info local;
    if (!info)
        info = &local;
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
    if (have_st) {
        pthread_mutex_lock(&cache_mu);
        cache_put(&st, names, values, n, info, (int)found);
        pthread_mutex_unlock(&cache_mu);
    }
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

/* (elfsym.h) */
int elf_load_bias(const struct maps *m, const char *path, const struct elf_info *info,
                  uint64_t *bias)
{
    if (!info->is_dyn) {
        *bias = 0;
        return 0;
    }
    const struct map_entry *best = NULL;
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->v[i].path, path) == 0 && (!best || m->v[i].offset < best->offset))
            best = &m->v[i];
    if (!best)
        return -ENOENT;
    *bias = best->start - best->offset - (info->first_load_vaddr - info->first_load_offset);
    return 0;
}
