/* tracer/native/lines: the line of an address, read from one unit's share
 * of the DWARF, is libdw's own answer (same file name, same line) for
 * every address it answers, with plain and zlib-compressed debug sections
 * and on libc's separate debug file (libc6-dbg, scripts/install-deps); and
 * damaged files (bytes flipped, cut short, an absurd inflated size) give
 * no answer or some answer, never a crash or a hang (run it under ASan). */
#include "check.h"

#include "tracer/native/lines.h"

#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* libdw's answer, from the whole DWARF of path. */
struct whole {
    int fd;
    Dwarf *dw;
};

static int whole_line(struct whole *w, uint64_t addr, char *file, size_t flen, int *line)
{
    Dwarf_Die cu;
    if (!w->dw || !dwarf_addrdie(w->dw, addr, &cu))
        return 0;
    Dwarf_Line *ln = dwarf_getsrc_die(&cu, addr);
    const char *src = ln ? dwarf_linesrc(ln, NULL, NULL) : NULL;
    if (!src || dwarf_lineno(ln, line) || *line <= 0)
        return 0;
    snprintf(file, flen, "%s", src);
    return 1;
}

/* The .text range of the ELF file at path. */
static int text_range(const char *path, uint64_t *lo, uint64_t *hi)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    Elf *e = elf_begin(fd, ELF_C_READ, NULL);
    size_t shstr;
    int rc = -1;
    if (e && !elf_getshdrstrndx(e, &shstr))
        for (Elf_Scn *s = NULL; (s = elf_nextscn(e, s));) {
            GElf_Shdr sh;
            const char *n = gelf_getshdr(s, &sh) ? elf_strptr(e, shstr, sh.sh_name) : NULL;
            if (n && !strcmp(n, ".text")) {
                *lo = sh.sh_addr;
                *hi = sh.sh_addr + sh.sh_size;
                rc = 0;
            }
        }
    elf_end(e);
    close(fd);
    return rc;
}

/* Every step-th address of [lo, hi): the reader's answers against libdw's. */
static void compare(const char *dbg, uint64_t lo, uint64_t hi, uint64_t step, const char *what)
{
    struct nat_lines *nl = nat_lines_open(dbg);
    CHECK(nl != NULL, "%s: nat_lines_open(%s) failed", what, dbg);
    struct whole w = { open(dbg, O_RDONLY), NULL };
    w.dw = w.fd >= 0 ? dwarf_begin(w.fd, DWARF_C_READ) : NULL;
    CHECK(w.dw != NULL, "%s: libdw cannot read %s", what, dbg);
    if (!nl || !w.dw)
        goto out;
    int asked = 0, libdw_found = 0, found = 0, wrong = 0;
    for (uint64_t a = lo; a < hi; a += step) {
        char wf[4096];
        int wl = 0, ml = 0;
        const char *mf = NULL;
        int wr = whole_line(&w, a, wf, sizeof wf, &wl);
        int mr = nat_lines_find(nl, a, &mf, &ml);
        asked++;
        libdw_found += wr;
        found += mr;
        if (mr && (!wr || strcmp(mf, wf) || ml != wl)) {
            if (wrong++ < 5)
                fprintf(stderr, "%s: 0x%llx: %s:%d, libdw %s:%d\n", what, (unsigned long long)a,
                        mf, ml, wr ? wf : "-", wl);
        }
    }
    printf("%s: %d addresses, libdw names %d, the reader %d\n", what, asked, libdw_found, found);
    CHECK_INT(wrong, 0);
    CHECK(libdw_found > 100, "%s: libdw named %d addresses", what, libdw_found);
    /* it answers (nearly) everything libdw answers: what it leaves to libdw
     * is addresses in no unit's aranges or in two */
    CHECK(found >= libdw_found * 9 / 10, "%s: the reader named %d of libdw's %d", what, found,
          libdw_found);
out:
    nat_lines_close(nl);
    if (w.dw)
        dwarf_end(w.dw);
    if (w.fd >= 0)
        close(w.fd);
}

static char tmpdir[] = "/tmp/sonde-natlines-XXXXXX";

static void test_own_binary(void)
{
    uint64_t lo, hi;
    CHECK_INT(text_range("/proc/self/exe", &lo, &hi), 0);
    compare("/proc/self/exe", lo, hi, 3, "plain sections");
    char z[256], cmd[5000], self[4096];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(k > 0, "readlink /proc/self/exe");
    self[k > 0 ? k : 0] = 0;
    snprintf(z, sizeof z, "%s/z", tmpdir);
    snprintf(cmd, sizeof cmd, "objcopy --compress-debug-sections=zlib '%s' %s", self, z);
    CHECK_INT(system(cmd), 0);
    compare(z, lo, hi, 3, "zlib sections");
}

/* libc's separate debug file, by its build-id. */
static void test_libc(void)
{
    char libc[4096] = "", line[4600];
    FILE *maps = fopen("/proc/self/maps", "r");
    while (maps && fgets(line, sizeof line, maps)) {
        char *p = strchr(line, '/');
        if (p && strstr(p, "/libc.so.6")) {
            p[strcspn(p, "\n")] = 0;
            snprintf(libc, sizeof libc, "%s", p);
        }
    }
    if (maps)
        fclose(maps);
    CHECK(libc[0], "libc.so.6 not mapped");
    int fd = open(libc, O_RDONLY);
    Elf *e = fd >= 0 ? elf_begin(fd, ELF_C_READ, NULL) : NULL;
    const void *id = NULL;
    ssize_t n = e ? dwelf_elf_gnu_build_id(e, &id) : -1;
    CHECK(n > 1, "libc has no build-id");
    char dbg[4096];
    int at = snprintf(dbg, sizeof dbg, "/usr/lib/debug/.build-id/%02x/", ((const uint8_t *)id)[0]);
    for (ssize_t i = 1; i < n && at < 4000; i++)
        at += snprintf(dbg + at, sizeof dbg - (size_t)at, "%02x", ((const uint8_t *)id)[i]);
    snprintf(dbg + at, sizeof dbg - (size_t)at, ".debug");
    elf_end(e);
    if (fd >= 0)
        close(fd);
    CHECK(access(dbg, R_OK) == 0, "%s missing (libc6-dbg, scripts/install-deps)", dbg);
    uint64_t lo, hi;
    CHECK_INT(text_range(libc, &lo, &hi), 0);
    /* about 3000 addresses over the whole of libc */
    compare(dbg, lo, hi, (hi - lo) / 3000 | 1, "libc's debug file");
}

static void write_file(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "w");
    CHECK(f && fwrite(b, 1, n, f) == n, "cannot write %s", path);
    if (f)
        fclose(f);
}

/* Damaged copies of the compressed file: flipped bytes, cut short, an
 * inflated size past NAT_LINES_MAX_SECTION. */
static void test_damaged(void)
{
    char z[256], d[256];
    snprintf(z, sizeof z, "%s/z", tmpdir);
    snprintf(d, sizeof d, "%s/d", tmpdir);
    FILE *f = fopen(z, "r");
    CHECK(f != NULL, "no %s", z);
    if (!f)
        return;
    struct stat st;
    fstat(fileno(f), &st);
    size_t n = (size_t)st.st_size;
    uint8_t *orig = malloc(n), *b = malloc(n);
    CHECK(fread(orig, 1, n, f) == n, "short read");
    fclose(f);
    uint64_t lo, hi;
    text_range(z, &lo, &hi);
    /* where the debug sections are: damage there */
    size_t dlo = n, dhi = 0, info_off = 0;
    int fd = open(z, O_RDONLY);
    Elf *e = elf_begin(fd, ELF_C_READ, NULL);
    size_t shstr;
    elf_getshdrstrndx(e, &shstr);
    for (Elf_Scn *s = NULL; (s = elf_nextscn(e, s));) {
        GElf_Shdr sh;
        gelf_getshdr(s, &sh);
        const char *nm = elf_strptr(e, shstr, sh.sh_name);
        if (nm && !strncmp(nm, ".debug_", 7)) {
            dlo = sh.sh_offset < dlo ? sh.sh_offset : dlo;
            dhi = sh.sh_offset + sh.sh_size > dhi ? sh.sh_offset + sh.sh_size : dhi;
            if (!strcmp(nm, ".debug_info"))
                info_off = sh.sh_offset;
        }
    }
    elf_end(e);
    close(fd);
    CHECK(dlo < dhi && info_off, "no compressed .debug_info");
    if (!(dlo < dhi && info_off))
        goto out;
    uint64_t seed = 88172645463325252ULL;
    int runs = 0;
    for (int it = 0; it < 300; it++) {
        memcpy(b, orig, n);
        size_t len = n;
        if (it % 10 == 9) { /* cut short in the debug sections */
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            len = dlo + (size_t)(seed % (dhi - dlo));
        } else {
            for (int k = 0; k < 8; k++) {
                seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
                b[dlo + (size_t)(seed % (dhi - dlo))] ^= (uint8_t)(1 + (seed >> 32) % 255);
            }
        }
        write_file(d, b, len);
        struct nat_lines *nl = nat_lines_open(d);
        for (uint64_t a = lo; nl && a < hi; a += (hi - lo) / 40 + 1) {
            const char *file;
            int line;
            if (nat_lines_find(nl, a, &file, &line))
                CHECK(file && line > 0, "an answer without file or line");
        }
        nat_lines_close(nl);
        runs++;
    }
    CHECK_INT(runs, 300);
    /* an inflated size past the bound: .debug_info refused, nothing named */
    memcpy(b, orig, n);
    for (int i = 0; i < 8; i++) /* Elf64_Chdr.ch_size, little-endian */
        b[info_off + 8 + i] = (uint8_t)(((uint64_t)1 << 40) >> (8 * i));
    write_file(d, b, n);
    struct nat_lines *nl = nat_lines_open(d);
    int named = 0;
    for (uint64_t a = lo; nl && a < hi; a += 64) {
        const char *file;
        int line;
        named += nat_lines_find(nl, a, &file, &line);
    }
    nat_lines_close(nl);
    CHECK_INT(named, 0);
out:
    unlink(d);
    free(orig);
    free(b);
}

/* Offset and size in the file of section name of the ELF file path. */
static int section_at(const char *path, const char *name, size_t *off, size_t *size)
{
    int fd = open(path, O_RDONLY), found = 0;
    Elf *e = fd >= 0 ? elf_begin(fd, ELF_C_READ, NULL) : NULL;
    size_t shstr;
    if (e && !elf_getshdrstrndx(e, &shstr))
        for (Elf_Scn *s = NULL; (s = elf_nextscn(e, s)) && !found;) {
            GElf_Shdr sh;
            const char *nm;
            if (gelf_getshdr(s, &sh) && (nm = elf_strptr(e, shstr, sh.sh_name)) &&
                !strcmp(nm, name)) {
                *off = sh.sh_offset;
                *size = sh.sh_size;
                found = 1;
            }
        }
    if (e)
        elf_end(e);
    if (fd >= 0)
        close(fd);
    return found ? 0 : -1;
}

static int named_in(const char *path, uint64_t lo, uint64_t hi, uint64_t step)
{
    struct nat_lines *nl = nat_lines_open(path);
    int named = 0;
    for (uint64_t a = lo; nl && a < hi; a += step) {
        const char *file;
        int line;
        if (nat_lines_find(nl, a, &file, &line)) {
            CHECK(file && line > 0, "an answer without file or line");
            named++;
        }
    }
    nat_lines_close(nl);
    return named;
}

/* Crafted, not random: every unit of the plain .debug_info cut to an
 * initial length of 2 or 3 with version 5 (too short for the version's
 * own header: its abbreviation offset would lie past the unit's end), and
 * a compressed .debug_info claiming 65 times its size (under the absolute
 * bound: a bomb by ratio). Each names nothing, and reads nothing outside
 * the file (the ASan build runs this test too). */
static void test_crafted(void)
{
    char self[4096], d[256], z[256];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    CHECK(k > 0, "readlink /proc/self/exe");
    self[k > 0 ? k : 0] = 0;
    snprintf(d, sizeof d, "%s/c", tmpdir);
    snprintf(z, sizeof z, "%s/z", tmpdir);
    uint64_t lo, hi;
    CHECK_INT(text_range(self, &lo, &hi), 0);
    CHECK(named_in(self, lo, hi, 7) > 50, "the plain file names lines");
    size_t off = 0, size = 0;
    CHECK_INT(section_at(self, ".debug_info", &off, &size), 0);
    FILE *f = fopen(self, "r");
    struct stat st;
    size_t n = f && !fstat(fileno(f), &st) ? (size_t)st.st_size : 0;
    uint8_t *orig = n ? malloc(n) : NULL, *b = n ? malloc(n) : NULL;
    CHECK(orig && b && fread(orig, 1, n, f) == n && off + size <= n, "cannot read %s", self);
    if (f)
        fclose(f);
    if (!orig || !b || off + size > n)
        goto out;
    for (uint32_t cut = 2; cut <= 3; cut++) {
        memcpy(b, orig, n);
        int units = 0;
        for (size_t u = off; u + 6 <= off + size; units++) {
            uint32_t len;
            memcpy(&len, b + u, 4);
            if (len >= 0xfffffff0u || len > off + size - u - 4)
                break;
            memcpy(b + u, &cut, 4);
            b[u + 4] = 5;
            b[u + 5] = 0;
            u += 4 + (size_t)len;
        }
        CHECK(units >= 2, "%d units in .debug_info", units);
        write_file(d, b, n);
        CHECK_INT(named_in(d, lo, hi, 7), 0);
        /* compressed too: the last unit then ends where the inflated
         * buffer does, and a read past it is outside any allocation */
        char cmd[600], dz[300];
        snprintf(dz, sizeof dz, "%s.z", d);
        snprintf(cmd, sizeof cmd, "objcopy --compress-debug-sections=zlib '%s' '%s'", d, dz);
        CHECK_INT(system(cmd), 0);
        CHECK_INT(named_in(dz, lo, hi, 7), 0);
        unlink(dz);
    }
    size_t zoff = 0, zsize = 0;
    f = fopen(z, "r");
    size_t zn = f && !fstat(fileno(f), &st) ? (size_t)st.st_size : 0;
    uint8_t *zb = zn ? malloc(zn) : NULL;
    CHECK(section_at(z, ".debug_info", &zoff, &zsize) == 0 && zb && fread(zb, 1, zn, f) == zn &&
              zoff + zsize <= zn && zsize > sizeof(Elf64_Chdr),
          "cannot read %s", z);
    if (f)
        fclose(f);
    if (zb && zoff + zsize <= zn && zsize > sizeof(Elf64_Chdr)) {
        CHECK(named_in(z, lo, hi, 7) > 50, "the compressed file names lines");
        uint64_t claim = (uint64_t)(zsize - sizeof(Elf64_Chdr)) * 65;
        CHECK(claim < NAT_LINES_MAX_SECTION, "a claim under the absolute bound");
        memcpy(zb + zoff + 8, &claim, 8); /* Elf64_Chdr.ch_size, little-endian */
        write_file(d, zb, zn);
        CHECK_INT(named_in(d, lo, hi, 7), 0);
    }
    free(zb);
out:
    unlink(d);
    free(orig);
    free(b);
}

int main(void)
{
    elf_version(EV_CURRENT);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_own_binary();
    test_libc();
    test_damaged();
    test_crafted();
    char z[256];
    snprintf(z, sizeof z, "%s/z", tmpdir);
    unlink(z);
    rmdir(tmpdir);
    return check_done("natlines");
}
