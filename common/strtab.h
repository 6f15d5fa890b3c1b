/* A string intern table: each distinct string gets a small id (1, 2, ...)
 * and a copy kept until strtab_fini. Two strings share an id only if they
 * are equal (hash collisions are resolved by comparing the strings). Not
 * thread-safe. */
#ifndef SONDE_STRTAB_H
#define SONDE_STRTAB_H

#include "common/hmap.h"

#include <stddef.h>
#include <stdint.h>

struct strtab {
    struct hmap map;       /* (hash, n-th string with that hash) -> id */
    char **strs;           /* by id - 1 */
    size_t n, cap;
    uint64_t (*hash)(const char *s); /* hmap_hash_str; tests may swap it */
};

/* Initialize with room for about hint strings. 0 or -ENOMEM. */
int strtab_init(struct strtab *t, size_t hint);
void strtab_fini(struct strtab *t);

/* The id of s in *id, adding a copy of s if it is new (*added = 1, else 0;
 * added may be NULL). 0, or -ENOMEM (nothing added, *id untouched). */
int strtab_intern(struct strtab *t, const char *s, uint32_t *id, int *added);

/* The string of an id from strtab_intern (valid until strtab_fini), or
 * NULL for an unknown id. */
const char *strtab_str(const struct strtab *t, uint32_t id);

#endif
