/* Growing an array by doubling: the one helper for arrays that only grow. */
#ifndef SONDE_GROW_H
#define SONDE_GROW_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

/* Make room for need elements of elem bytes in *arr (capacity *cap,
 * doubled from 64 as needed). 0, or -ENOMEM with *arr and *cap unchanged. */
static inline int grow_array(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need) {
        if (n > SIZE_MAX / 2 / elem)
            return -ENOMEM;
        n *= 2;
    }
    if (n > SIZE_MAX / elem)
        return -ENOMEM;
    void *p = realloc(*arr, n * elem);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = n;
    return 0;
}

#endif
