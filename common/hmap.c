#include "common/hmap.h"

#include <errno.h>
#include <stdlib.h>

static size_t mix(uint64_t k1, uint64_t k2)
{
    uint64_t h = k1 * 0x9e3779b97f4a7c15ull ^ (k2 + 0x632be59bd9b4e019ull) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
    return (size_t)h;
}

void *(*hmap_calloc)(size_t n, size_t size) = calloc;

int hmap_init(struct hmap *h, size_t hint)
{
    size_t cap = 64;
    while (cap < hint * 2)
        cap *= 2;
    h->slots = hmap_calloc(cap, sizeof *h->slots);
    h->cap = h->slots ? cap : 0;
    h->n = 0;
    return h->slots ? 0 : -ENOMEM;
}

void hmap_fini(struct hmap *h)
{
    free(h->slots);
    h->slots = NULL;
    h->cap = h->n = 0;
}

static struct hmap_slot *find(const struct hmap *h, uint64_t k1, uint64_t k2)
{
    size_t i = mix(k1, k2) & (h->cap - 1);
    while (h->slots[i].used && (h->slots[i].k1 != k1 || h->slots[i].k2 != k2))
        i = (i + 1) & (h->cap - 1);
    return &h->slots[i];
}

uint64_t *hmap_get(const struct hmap *h, uint64_t k1, uint64_t k2)
{
    if (!h->cap)
        return NULL;
    struct hmap_slot *s = find(h, k1, k2);
    return s->used ? &s->value : NULL;
}

int hmap_put(struct hmap *h, uint64_t k1, uint64_t k2, uint64_t value)
{
    uint64_t *old = hmap_get(h, k1, k2);
    if (old) { /* replacing takes no room */
        *old = value;
        return 0;
    }
    if ((h->n + 1) * 2 > h->cap) {
        struct hmap big;
        if (hmap_init(&big, h->cap ? h->cap : 32))
            return -ENOMEM;
        for (size_t i = 0; i < h->cap; i++)
            if (h->slots[i].used)
                *find(&big, h->slots[i].k1, h->slots[i].k2) = h->slots[i];
        big.n = h->n;
        free(h->slots);
        *h = big;
    }
    struct hmap_slot *s = find(h, k1, k2);
    if (!s->used) {
        s->used = 1;
        s->k1 = k1;
        s->k2 = k2;
        h->n++;
    }
    s->value = value;
    return 0;
}

void hmap_del(struct hmap *h, uint64_t k1, uint64_t k2)
{
    if (!h->cap)
        return;
    struct hmap_slot *s = find(h, k1, k2);
    if (!s->used)
        return;
    s->used = 0;
    h->n--;
    /* re-insert the rest of the cluster */
    size_t i = (size_t)(s - h->slots);
    for (size_t j = (i + 1) & (h->cap - 1); h->slots[j].used; j = (j + 1) & (h->cap - 1)) {
        struct hmap_slot tmp = h->slots[j];
        h->slots[j].used = 0;
        *find(h, tmp.k1, tmp.k2) = tmp;
    }
}

uint64_t hmap_hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}
