/* Runs a libFuzzer target over every file of the corpus directories given on
 * the command line, so that `meson test` exercises the fuzz targets without
 * libFuzzer (and under ASan in a sanitizer build). Also feeds every prefix
 * of each file (truncated bodies) and a few byte flips. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, n;
    uint8_t chunk[4096];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n > cap) {
            cap = (len + n) * 2;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return -1;
            }
            buf = nb;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    /* exact-size copies so that ASan catches any read past the end */
    size_t step = len > 200 ? len / 50 : 1;
    for (size_t cut = 0; cut <= len; cut += step) {
        uint8_t *p = malloc(cut ? cut : 1);
        if (!p)
            break;
        if (cut)
            memcpy(p, buf, cut);
        LLVMFuzzerTestOneInput(p, cut);
        if (cut) {
            p[cut / 2] ^= 0x5a;
            LLVMFuzzerTestOneInput(p, cut);
        }
        free(p);
    }
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    int files = 0;
    for (int i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        if (!d) {
            fprintf(stderr, "cannot open corpus %s\n", argv[i]);
            return 1;
        }
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", argv[i], e->d_name);
            if (run_file(path)) {
                fprintf(stderr, "cannot read %s\n", path);
                closedir(d);
                return 1;
            }
            files++;
        }
        closedir(d);
    }
    printf("%d corpus files, no crash\n", files);
    return files ? 0 : 1;
}
