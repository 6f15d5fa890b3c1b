#include "common/strtab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int strtab_init(struct strtab *t, size_t hint)
{
    memset(t, 0, sizeof *t);
    t->hash = hmap_hash_str;
    return hmap_init(&t->map, hint);
}

void strtab_fini(struct strtab *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->strs[i]);
    free(t->strs);
    hmap_fini(&t->map);
    memset(t, 0, sizeof *t);
}

int strtab_intern(struct strtab *t, const char *s, uint32_t *id, int *added)
{
    uint64_t h = t->hash(s), j = 0;
    uint64_t *v;
    /* strings with the same hash are chained as (h, 0), (h, 1), ... */
    for (; (v = hmap_get(&t->map, h, j)); j++)
        if (!strcmp(t->strs[*v - 1], s)) {
            *id = (uint32_t)*v;
            if (added)
                *added = 0;
            return 0;
        }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        char **a = realloc(t->strs, cap * sizeof *a);
        if (!a)
            return -ENOMEM;
        t->strs = a;
        t->cap = cap;
    }
    char *copy = strdup(s);
    if (!copy || hmap_put(&t->map, h, j, t->n + 1)) {
        free(copy);
        return -ENOMEM;
    }
    t->strs[t->n++] = copy;
    *id = (uint32_t)t->n;
    if (added)
        *added = 1;
    return 0;
}

const char *strtab_str(const struct strtab *t, uint32_t id)
{
    return id >= 1 && id <= t->n ? t->strs[id - 1] : NULL;
}
