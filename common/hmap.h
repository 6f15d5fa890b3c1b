/* An open-addressing hash map from a pair of 64-bit keys to a 64-bit value.
 * Not thread-safe. Grows by doubling; lookups allocate nothing. */
#ifndef SONDE_HMAP_H
#define SONDE_HMAP_H

#include <stddef.h>
#include <stdint.h>

struct hmap_slot {
    uint64_t k1, k2, value;
    int used;
};

struct hmap {
    struct hmap_slot *slots;
    size_t cap, n;
};

/* The allocator of hmap_init and of growth (calloc by default); tests swap
 * it to reach the -ENOMEM paths. */
extern void *(*hmap_calloc)(size_t n, size_t size);

/* Initialize with room for about hint entries. 0 or -ENOMEM. */
int hmap_init(struct hmap *h, size_t hint);
void hmap_fini(struct hmap *h);

/* Pointer to the value stored under (k1, k2), or NULL. */
uint64_t *hmap_get(const struct hmap *h, uint64_t k1, uint64_t k2);

/* Store value under (k1, k2), replacing any previous one (which never
 * fails). 0, or -ENOMEM with the map unchanged. */
int hmap_put(struct hmap *h, uint64_t k1, uint64_t k2, uint64_t value);

/* Remove (k1, k2) if present. */
void hmap_del(struct hmap *h, uint64_t k1, uint64_t k2);

/* FNV-1a hash of a NUL-terminated string. */
uint64_t hmap_hash_str(const char *s);

#endif
