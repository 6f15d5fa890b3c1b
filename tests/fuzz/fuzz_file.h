/* Shared by the file readers' fuzz targets: the input bytes as a file. */
#ifndef SONDE_FUZZ_FILE_H
#define SONDE_FUZZ_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Write data to this process's scratch file (made once, in $TMPDIR or
 * /tmp) and return its path, or NULL. SQLite's -wal / -shm / -journal
 * files left by the previous input are removed first: each input is read
 * on its own. */
static const char *fuzz_file(const uint8_t *data, size_t size)
{
    static char path[4096];
    if (!path[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/sonde-fuzz-XXXXXX", dir && *dir ? dir : "/tmp");
        int fd = mkstemp(path);
        if (fd < 0) {
            path[0] = 0;
            return NULL;
        }
        close(fd);
    }
    static const char *const side[] = { "-wal", "-shm", "-journal" };
    for (size_t i = 0; i < sizeof side / sizeof side[0]; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s%s", path, side[i]);
        unlink(p);
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return NULL;
    int ok = fwrite(data, 1, size, f) == size;
    ok &= fclose(f) == 0;
    return ok ? path : NULL;
}

#endif
