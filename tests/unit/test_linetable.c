/* lt_line() against the vectors of tests/data/linetables/: for every code
 * object compiled by a real CPython 3.8-3.13 (scripts/gen-linetable-vectors),
 * the line of every bytecode offset must be what that interpreter said. */
#include "check.h"

#include "tracer/cpython/linetable.h"

#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DATADIR "tests/data/linetables"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decode hex into a malloc'd buffer; "-" is the empty table. */
static uint8_t *unhex(const char *s, size_t *len)
{
    size_t n = strcmp(s, "-") == 0 ? 0 : strlen(s);
    uint8_t *b = malloc(n ? n / 2 : 1); /* exact size: overreads trip ASan */
    if (!b || n % 2)
        goto bad;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hexval(s[i]), lo = hexval(s[i + 1]);
        if (hi < 0 || lo < 0)
            goto bad;
        b[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    *len = n / 2;
    return b;
bad:
    free(b);
    return NULL;
}

static int seen27; /* files in 2.7's format */

static int check_file(const char *path, int *ncodes, long *noffsets)
{
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot open %s", path);
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    int major = 3, minor = -1, have_format = 0, declared = -1, codes = 0;
    enum lt_format fmt = LT_LNOTAB;
    char name[256] = "";
    int firstlineno = 0;
    uint8_t *tab = NULL;
    size_t tablen = 0;
    int lineno = 0;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        line[strcspn(line, "\n")] = 0;
        if (line[0] == '#' || line[0] == 0)
            continue;
        if (strncmp(line, "format ", 7) == 0) {
            const char *v = line + 7;
            have_format = 1;
            fmt = !strcmp(v, "lnotab")         ? LT_LNOTAB
                  : !strcmp(v, "lnotab27")     ? LT_LNOTAB27
                  : !strcmp(v, "linetable310") ? LT_310
                                               : LT_LOCATION;
            CHECK(!strcmp(v, "lnotab") || !strcmp(v, "lnotab27") || !strcmp(v, "linetable310") ||
                      !strcmp(v, "location"),
                  "%s:%d: unknown format %s", path, lineno, v);
        } else if (sscanf(line, "major %d", &major) == 1) {
            /* absent before 2.7's vectors: 3 */
        } else if (sscanf(line, "minor %d", &minor) == 1) {
            CHECK(have_format && lt_format_for(major, minor) == fmt,
                  "%s: lt_format_for(%d, %d) = %d, file says %d", path, major, minor,
                  lt_format_for(major, minor), fmt);
        } else if (strncmp(line, "code ", 5) == 0) {
            char *hex = malloc(strlen(line));
            free(tab);
            tab = NULL;
            if (hex && sscanf(line, "code %255s %d %s", name, &firstlineno, hex) == 3)
                tab = unhex(hex, &tablen);
            free(hex);
            CHECK(tab != NULL, "%s:%d: bad code line", path, lineno);
            codes++;
        } else if (strncmp(line, "lines ", 6) == 0) {
            CHECK(tab != NULL && minor >= 0, "%s:%d: lines without code", path, lineno);
            if (!tab)
                continue;
            int bad = 0;
            char *save = NULL;
            for (char *tok = strtok_r(line + 6, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
                int off, want;
                if (sscanf(tok, "%d:%d", &off, &want) != 2) {
                    CHECK(0, "%s:%d: bad pair '%s'", path, lineno, tok);
                    break;
                }
                int got = lt_line(fmt, tab, tablen, firstlineno, off);
                (*noffsets)++;
                if (got != want && bad++ < 5)
                    CHECK(got == want, "%d.%d %s: offset %d: lt_line = %d, CPython says %d",
                          major, minor, name, off, got, want);
                else
                    check_count++;
            }
        } else if (sscanf(line, "end %d", &declared) == 1) {
            /* trailer: number of code objects */
        } else {
            CHECK(0, "%s:%d: unexpected line", path, lineno);
        }
    }
    seen27 += fmt == LT_LNOTAB27;
    CHECK(declared == codes && codes > 0, "%s: %d code objects, trailer says %d (truncated file?)",
          path, codes, declared);
    free(tab);
    free(line);
    fclose(f);
    *ncodes += codes;
    return minor;
}

/* Hand-built tables for cases a compiler rarely emits: empty tables,
 * offsets past the end, negative offsets. */
static void check_edges(void)
{
    /* 3.8 lnotab: +6 bytes +1 line, +255 bytes +0, +10 bytes -3 lines */
    static const uint8_t lnotab[] = { 6, 1, 255, 0, 10, (uint8_t)-3 };
    CHECK_INT(lt_line(LT_LNOTAB, lnotab, sizeof lnotab, 10, 0), 10);
    CHECK_INT(lt_line(LT_LNOTAB, lnotab, sizeof lnotab, 10, 5), 10);
    CHECK_INT(lt_line(LT_LNOTAB, lnotab, sizeof lnotab, 10, 6), 11);
    CHECK_INT(lt_line(LT_LNOTAB, lnotab, sizeof lnotab, 10, 260), 11);
    CHECK_INT(lt_line(LT_LNOTAB, lnotab, sizeof lnotab, 10, 271), 8);
    CHECK_INT(lt_line(LT_LNOTAB, lnotab, sizeof lnotab, 10, 100000), 8);
    CHECK_INT(lt_line(LT_LNOTAB, lnotab, 0, 10, 4), 10);
    /* odd length: the dangling byte is ignored */
    CHECK_INT(lt_line(LT_LNOTAB, lnotab, 3, 10, 300), 11);
    /* 2.7: line deltas are unsigned, a jump of 300 lines is 255 + 45 */
    static const uint8_t lnotab27[] = { 6, 1, 0, 255, 4, 45, 10, 200 };
    CHECK_INT(lt_line(LT_LNOTAB27, lnotab27, sizeof lnotab27, 10, 5), 10);
    CHECK_INT(lt_line(LT_LNOTAB27, lnotab27, sizeof lnotab27, 10, 6), 266);
    CHECK_INT(lt_line(LT_LNOTAB27, lnotab27, sizeof lnotab27, 10, 10), 311);
    CHECK_INT(lt_line(LT_LNOTAB27, lnotab27, sizeof lnotab27, 10, 20), 511);
    CHECK_INT(lt_line(LT_LNOTAB, lnotab27, sizeof lnotab27, 10, 6), 10);

    /* 3.10: 4 bytes on line+1, 2 bytes with no line (-128), 6 bytes at line+3 */
    static const uint8_t t310[] = { 4, 1, 2, 0x80, 6, 2 };
    CHECK_INT(lt_line(LT_310, t310, sizeof t310, 20, 0), 21);
    CHECK_INT(lt_line(LT_310, t310, sizeof t310, 20, 2), 21);
    CHECK_INT(lt_line(LT_310, t310, sizeof t310, 20, 4), -1);
    CHECK_INT(lt_line(LT_310, t310, sizeof t310, 20, 6), 23);
    CHECK_INT(lt_line(LT_310, t310, sizeof t310, 20, 10), 23);
    CHECK_INT(lt_line(LT_310, t310, sizeof t310, 20, 12), -1); /* past the end */
    CHECK_INT(lt_line(LT_310, t310, 0, 20, 0), -1);
    CHECK_INT(lt_line(LT_310, t310, sizeof t310, 20, -1), 20);

    /* 3.11+ location table (entry: 1 CCCC LLL = code, length - 1 in code units):
     *   f8             code 15, no location, 1 unit
     *   d9 06 08       code 11, one-line form: line +1, 2 units, two column bytes
     *   f0 09 00 02 04 code 14, long form: line svarint(9) = -4, end line, columns; 1 unit
     *   e9 04          code 13, no column: line svarint(4) = +2, 2 units */
    static const uint8_t loc[] = { 0xf8, 0xd9, 0x06, 0x08, 0xf0, 0x09, 0x00, 0x02, 0x04, 0xe9, 0x04 };
    CHECK_INT(lt_line(LT_LOCATION, loc, sizeof loc, 100, 0), -1);
    CHECK_INT(lt_line(LT_LOCATION, loc, sizeof loc, 100, 2), 101);
    CHECK_INT(lt_line(LT_LOCATION, loc, sizeof loc, 100, 4), 101);
    CHECK_INT(lt_line(LT_LOCATION, loc, sizeof loc, 100, 6), 97);
    CHECK_INT(lt_line(LT_LOCATION, loc, sizeof loc, 100, 8), 99);
    CHECK_INT(lt_line(LT_LOCATION, loc, sizeof loc, 100, 10), 99);
    CHECK_INT(lt_line(LT_LOCATION, loc, sizeof loc, 100, 12), -1); /* past the end */
    CHECK_INT(lt_line(LT_LOCATION, loc, 0, 100, 0), -1);
    /* Truncated tables, copied to exact-size heap buffers so that the
     * sanitizer build catches any read past the end. */
    for (size_t len = 0; len <= sizeof loc; len++) {
        uint8_t *t = malloc(len ? len : 1);
        memcpy(t, loc, len);
        for (int off = 0; off <= 14; off += 2) {
            int got = lt_line(LT_LOCATION, t, len, 100, off);
            CHECK(got == -1 || (got >= 90 && got <= 110), "truncated(%zu) at %d: %d", len, off, got);
        }
        uint8_t *t2 = malloc(len ? len : 1);
        memcpy(t2, t310, len < sizeof t310 ? len : sizeof t310);
        size_t l2 = len < sizeof t310 ? len : sizeof t310;
        for (int off = 0; off <= 14; off += 2) {
            int got = lt_line(LT_310, t2, l2, 20, off);
            CHECK(got == -1 || (got >= 20 && got <= 23), "truncated 3.10 (%zu) at %d: %d", l2, off, got);
        }
        free(t2);
        size_t l3 = len < sizeof lnotab ? len : sizeof lnotab;
        uint8_t *t3 = malloc(l3 ? l3 : 1);
        memcpy(t3, lnotab, l3);
        for (int off = 0; off <= 300; off += 2) {
            int got = lt_line(LT_LNOTAB, t3, l3, 10, off);
            CHECK(got >= 8 && got <= 11, "truncated lnotab (%zu) at %d: %d", l3, off, got);
        }
        free(t3);
        free(t);
    }
}

int main(void)
{
    check_edges();

    DIR *d = opendir(DATADIR);
    CHECK(d != NULL, "cannot open %s (run from the source root)", DATADIR);
    if (!d)
        return check_done("linetable");
    int seen[16] = { 0 }, nfiles = 0, ncodes = 0;
    long noffsets = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".txt") != 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", DATADIR, e->d_name);
        int minor = check_file(path, &ncodes, &noffsets);
        if (minor >= 0 && minor < 16)
            seen[minor]++;
        nfiles++;
    }
    closedir(d);
    /* every table format must be covered by committed vectors */
    CHECK(seen[8] || seen[9], "no 3.8/3.9 (co_lnotab) vectors");
    CHECK(seen[10], "no 3.10 (co_linetable) vectors");
    CHECK(seen27, "no 2.7 (unsigned co_lnotab) vectors");
    CHECK(seen[11] || seen[12] || seen[13], "no 3.11+ (location table) vectors");
    printf("linetable: %d files, %d code objects, %ld offsets\n", nfiles, ncodes, noffsets);
    return check_done("linetable");
}
