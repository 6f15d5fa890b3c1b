/* The monotonic clock in nanoseconds: one definition for every layer. */
#ifndef SONDE_COMMON_CLOCK_H
#define SONDE_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

#endif
