/* Threads named alike (ui/tgroup.h). */
#include "ui/tgroup.h"

#include "common/hmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void tgroup_pattern(const char *name, char *out, size_t cap)
{
    size_t n = 0;
    if (!cap)
        return;
    for (const char *p = name ? name : "?"; *p && n + 2 < cap; p++) {
        if (*p >= '0' && *p <= '9') {
            while (p[1] >= '0' && p[1] <= '9')
                p++;
            out[n++] = 'N';
        } else {
            out[n++] = *p;
        }
    }
    out[n] = 0;
}

#define PAT_MAX 160

uint64_t (*tgroup_hash)(const char *s) = hmap_hash_str;

long tgroup_find(const int *pid, const char *const *name, size_t n, size_t min, size_t *head)
{
    for (size_t i = 0; i < n; i++)
        head[i] = i;
    if (!n)
        return 0;
    /* (pid, hash of pattern + probe) -> first thread + 1; members counted
     * on the first thread */
    char (*pat)[PAT_MAX] = malloc(n * sizeof *pat);
    size_t *count = calloc(n, sizeof *count);
    struct hmap by;
    if (!pat || !count || hmap_init(&by, n)) {
        free(pat);
        free(count);
        return -ENOMEM;
    }
    long rc = 0;
    for (size_t i = 0; i < n; i++) {
        tgroup_pattern(name[i], pat[i], sizeof pat[i]);
        if (!strchr(pat[i], 'N'))
            continue; /* no number: not one of a series */
        uint64_t h = tgroup_hash(pat[i]);
        for (uint64_t probe = 0;; probe++) {
            uint64_t *v = hmap_get(&by, (uint64_t)(uint32_t)pid[i], h + probe);
            if (!v) {
                if (hmap_put(&by, (uint64_t)(uint32_t)pid[i], h + probe, i + 1)) {
                    rc = -ENOMEM;
                    goto out;
                }
                count[i] = 1;
                break;
            }
            if (!strcmp(pat[*v - 1], pat[i])) { /* else another pattern, same hash: probe on */
                head[i] = (size_t)*v - 1;
                count[head[i]]++;
                break;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (count[head[i]] < min)
            head[i] = i;
        else if (head[i] == i)
            rc++;
    }
out:
    if (rc < 0)
        for (size_t i = 0; i < n; i++)
            head[i] = i;
    hmap_fini(&by);
    free(pat);
    free(count);
    return rc;
}
