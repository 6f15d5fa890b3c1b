/* elf_lookup() and elf_find_version_string() on real files: this test's own
 * executable (symbols whose run-time addresses we know), the C library it
 * loaded, any libpython found under pyenv, and files that are not ELF. */
#include "check.h"

#include "common/err.h"
#include "tracer/proc/elfsym.h"

#include <dlfcn.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <link.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(void);

/* Symbols with known addresses: a global in .dynsym/.symtab and a local
 * (static) one only in .symtab. */
int sonde_test_global_marker = 42;
__attribute__((noinline, used)) static int sonde_test_local_fn(int x)
{
    return x * 3 + sonde_test_global_marker;
}

/* Version-like strings in .rodata, each preceded by a NUL as a C string in
 * a string table would be. */
__attribute__((used)) static const char version_strings[] =
    "\0" "3.42.7rc1"
    "\0" "3.41.2 (default, Jan 1 2024)" /* not a bare version: ignored */
    "\0" "x3.43.1"                      /* not at a string start: ignored */
    "\0" "/opt/py/versions/3.44.1"      /* a path's tail (string tail merging) */
    "\0" "/opt/Python-3.45.0b2"
    "\0" "3.44.1+ (heads/x)"            /* not a bare version */
    "\0";

static uintptr_t main_bias;
static char main_path[PATH_MAX];

static int first_object(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    main_bias = info->dlpi_addr; /* the main program comes first */
    return 1;
}

static void check_self(void)
{
    ssize_t l = readlink("/proc/self/exe", main_path, sizeof main_path - 1);
    CHECK(l > 0, "readlink /proc/self/exe");
    if (l <= 0)
        return;
    main_path[l] = 0;
    dl_iterate_phdr(first_object, NULL);

    const char *names[] = { "sonde_test_global_marker", "sonde_test_local_fn", "main",
                            "sonde_no_such_symbol_anywhere" };
    uint64_t vals[4] = { 1, 1, 1, 1 };
    struct elf_info info;
    int rc = elf_lookup(main_path, names, vals, 4, &info);
    CHECK_INT(rc, 3);
    CHECK_INT(vals[0], (uint64_t)(uintptr_t)&sonde_test_global_marker - main_bias);
    CHECK_INT(vals[1], (uint64_t)(uintptr_t)&sonde_test_local_fn - main_bias);
    CHECK_INT(vals[2], (uint64_t)(uintptr_t)&main - main_bias);
    CHECK_INT(vals[3], 0); /* missing: 0, and reset from its previous value */
    /* PIE executables are ET_DYN and relocated; the bias of a non-PIE is 0 */
    CHECK_INT(info.is_dyn, main_bias != 0);
    CHECK(info.first_load_offset == 0, "first PT_LOAD at offset %" PRIu64, info.first_load_offset);
    CHECK((info.first_load_vaddr & 0xfff) == 0, "vaddr not page aligned");

    /* no names, NULL info */
    CHECK_INT(elf_lookup(main_path, NULL, NULL, 0, NULL), 0);
    /* the same name twice is resolved in both slots */
    const char *twice[] = { "main", "main" };
    uint64_t tv[2];
    CHECK_INT(elf_lookup(main_path, twice, tv, 2, NULL), 2);
    CHECK(tv[0] == tv[1] && tv[0] == vals[2], "duplicate name");

    char ver[32] = "";
    CHECK_INT(elf_find_version_string(main_path, 42, ver, sizeof ver), 0);
    CHECK_STR(ver, "3.42.7rc1");
    CHECK_INT(elf_find_version_string(main_path, 41, ver, sizeof ver), -ENOENT);
    CHECK_INT(elf_find_version_string(main_path, 43, ver, sizeof ver), -ENOENT);
    CHECK_INT(elf_find_version_string(main_path, 44, ver, sizeof ver), 0);
    CHECK_STR(ver, "3.44.1");
    CHECK_INT(elf_find_version_string(main_path, 45, ver, sizeof ver), 0);
    CHECK_STR(ver, "3.45.0b2");
    /* a small output buffer truncates, never overflows */
    char small[5];
    memset(small, 'X', sizeof small);
    CHECK_INT(elf_find_version_string(main_path, 42, small, 4), 0);
    CHECK(small[3] == 0 && small[4] == 'X', "small buffer");
}

/* A symbol of the C library: its file and load base from dladdr(). */
static void check_libc(void)
{
    void *p = dlsym(RTLD_DEFAULT, "getpid");
    Dl_info di;
    CHECK(p && dladdr(p, &di) && di.dli_fname, "dladdr(getpid)");
    if (!p || !di.dli_fname)
        return;
    const char *names[] = { "getpid" };
    uint64_t v;
    struct elf_info info;
    CHECK_INT(elf_lookup(di.dli_fname, names, &v, 1, &info), 1);
    CHECK_INT(info.is_dyn, 1);
    /* dli_fbase is where the first PT_LOAD was mapped */
    uint64_t bias = (uint64_t)(uintptr_t)di.dli_fbase - info.first_load_vaddr;
    CHECK_INT(v + bias, (uint64_t)(uintptr_t)p);
}

/* Every libpython and static python found: _PyRuntime present (3.7+), and
 * the version string equals the one in the install's directory name. */
static void check_pythons(void)
{
    glob_t g;
    int n = 0;
    if (glob("/root/.pyenv/versions/3.*/lib/libpython3.*.so.1.0", 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            const char *path = g.gl_pathv[i];
            char dirver[32] = "";
            int minor = -1;
            const char *v = strstr(path, "/versions/");
            if (!v || sscanf(v, "/versions/%31[^/]", dirver) != 1 ||
                sscanf(dirver, "3.%d", &minor) != 1)
                continue;
            const char *names[] = { "_PyRuntime", "Py_Version" };
            uint64_t vals[2];
            int rc = elf_lookup(path, names, vals, 2, NULL);
            if (minor >= 7) {
                CHECK(rc >= 1 && vals[0] != 0, "%s: no _PyRuntime (rc %d)", path, rc);
                CHECK((vals[1] != 0) == (minor >= 11), "%s: Py_Version %s", path,
                      vals[1] ? "present" : "absent");
            }
            char ver[32] = "";
            CHECK_INT(elf_find_version_string(path, minor, ver, sizeof ver), 0);
            CHECK(strcmp(ver, dirver) == 0, "%s: version string '%s', want '%s'", path, ver, dirver);
            n++;
        }
        globfree(&g);
    }
    /* Debian's static interpreter, when installed */
    if (access("/usr/bin/python3.11", R_OK) == 0) {
        char ver[32] = "";
        CHECK_INT(elf_find_version_string("/usr/bin/python3.11", 11, ver, sizeof ver), 0);
        CHECK(strncmp(ver, "3.11.", 5) == 0, "python3.11 version string '%s'", ver);
        const char *names[] = { "_PyRuntime" };
        uint64_t rt;
        CHECK_INT(elf_lookup("/usr/bin/python3.11", names, &rt, 1, NULL), 1);
        n++;
    }
    printf("elfsym: checked %d CPython binaries\n", n);
}

static void check_bad_files(void)
{
    const char *names[] = { "main" };
    uint64_t v = 7;
    char ver[32];
    /* missing file: a negative errno */
    CHECK_INT(elf_lookup("/nonexistent/sonde/file", names, &v, 1, NULL), -ENOENT);
    CHECK_INT(elf_find_version_string("/nonexistent/sonde/file", -1, ver, sizeof ver), -ENOENT);
    /* a directory */
    int rc = elf_lookup("/", names, &v, 1, NULL);
    CHECK(rc == SE_BADFILE || rc == -EISDIR, "directory: %d", rc);

    /* a text file and an empty file are not ELF */
    char tmpl[] = "/tmp/sonde-test-elfXXXXXX";
    int fd = mkstemp(tmpl);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0)
        return;
    CHECK_INT(elf_lookup(tmpl, names, &v, 1, NULL), SE_BADFILE);
    CHECK_INT(write(fd, "#!/bin/sh\necho not elf\n", 23), 23);
    CHECK_INT(elf_lookup(tmpl, names, &v, 1, NULL), SE_BADFILE);
    CHECK_INT(elf_find_version_string(tmpl, -1, ver, sizeof ver), -ENOENT);

    /* an ELF header cut short: an error or nothing found, never a crash */
    FILE *self = fopen(main_path, "rb");
    CHECK(self != NULL, "open self");
    if (self) {
        static const size_t cuts[] = { 4, 16, 64, 200, 4096 };
        unsigned char buf[4096];
        size_t got = fread(buf, 1, sizeof buf, self);
        fclose(self);
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0] && cuts[i] <= got; i++) {
            CHECK_INT(ftruncate(fd, 0), 0);
            CHECK_INT(pwrite(fd, buf, cuts[i], 0), (long long)cuts[i]);
            v = 7;
            rc = elf_lookup(tmpl, names, &v, 1, NULL);
            CHECK(rc == SE_BADFILE || (rc == 0 && v == 0), "cut at %zu: rc %d, value %" PRIu64,
                  cuts[i], rc, v);
            rc = elf_find_version_string(tmpl, -1, ver, sizeof ver);
            CHECK_INT(rc, -ENOENT);
        }
    }
    close(fd);
    unlink(tmpl);

    /* unreadable file (skipped as root, who reads everything) */
    if (geteuid() != 0) {
        char t2[] = "/tmp/sonde-test-elfXXXXXX";
        int fd2 = mkstemp(t2);
        if (fd2 >= 0) {
            fchmod(fd2, 0);
            CHECK_INT(elf_lookup(t2, names, &v, 1, NULL), -EACCES);
            close(fd2);
            unlink(t2);
        }
    }
}

/* Copy the file at from to to (through a temporary name renamed over it: a
 * new inode). 0 or -1. */
static int copy_file(const char *from, const char *to)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.new", to);
    FILE *in = fopen(from, "rb"), *out = fopen(tmp, "wb");
    int ok = in && out;
    char buf[65536];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        ok = 0;
    return ok && rename(tmp, to) == 0 ? 0 : -1;
}

/* The same question about an unchanged file is answered from the cache;
 * another question, or the file replaced, parses it again. */
static void check_cache(void)
{
    char dir[] = "/tmp/sonde-test-elfcacheXXXXXX", path[PATH_MAX];
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/exe", dir);
    CHECK_INT(copy_file(main_path, path), 0);
    const char *names[] = { "sonde_test_global_marker", "main" };
    const char *other[] = { "main", "sonde_test_global_marker" };
    uint64_t v[2] = { 0, 0 }, w[2] = { 9, 9 };
    struct elf_info i1, i2;
    unsigned long p0 = elf_lookup_parses();
    CHECK_INT(elf_lookup(path, names, v, 2, &i1), 2);
    CHECK_INT(elf_lookup_parses() - p0, 1);
    memset(&i2, 0xff, sizeof i2);
    CHECK_INT(elf_lookup(path, names, w, 2, &i2), 2);
    CHECK_INT(elf_lookup_parses() - p0, 1); /* answered from the cache */
    CHECK_INT(w[0], v[0]);
    CHECK_INT(w[1], v[1]);
    CHECK(memcmp(&i1, &i2, sizeof i1) == 0, "cached elf_info differs");
    CHECK_INT(elf_lookup(path, other, w, 2, NULL), 2);
    CHECK_INT(elf_lookup_parses() - p0, 2); /* other names: parsed */
    CHECK_INT(w[0], v[1]);
    CHECK_INT(w[1], v[0]);

    /* replaced by a file that is not ELF: no stale answer */
    char text[PATH_MAX];
    snprintf(text, sizeof text, "%s/text", dir);
    FILE *f = fopen(text, "w");
    CHECK(f != NULL, "fopen");
    if (f) {
        fputs("not an ELF file\n", f);
        fclose(f);
    }
    CHECK_INT(copy_file(text, path), 0);
    CHECK_INT(elf_lookup(path, names, w, 2, NULL), SE_BADFILE);
    /* replaced again by the executable: parsed afresh */
    CHECK_INT(copy_file(main_path, path), 0);
    unsigned long p1 = elf_lookup_parses();
    CHECK_INT(elf_lookup(path, names, w, 2, NULL), 2);
    CHECK_INT(elf_lookup_parses() - p1, 1);
    CHECK_INT(w[0], v[0]);
    unlink(path);
    unlink(text);
    rmdir(dir);
}

int main(void)
{
    check_self();
    check_cache();
    check_libc();
    check_pythons();
    check_bad_files();
    return check_done("elfsym");
}
