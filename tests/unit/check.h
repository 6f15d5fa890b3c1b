/* A minimal check harness for sonde's C unit tests: CHECK* macros record
 * failures (with file:line) and keep going; check_done() prints a summary
 * and gives main's exit status (a failure when no check ran). Tests run with the source root as workdir. */
#ifndef SONDE_TEST_CHECK_H
#define SONDE_TEST_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_failures, check_count;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        check_count++;                                                        \
        if (!(cond)) {                                                        \
            check_failures++;                                                 \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, \
                    #cond);                                                   \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
        }                                                                     \
    } while (0)

#define CHECK_INT(got, want)                                                  \
    do {                                                                      \
        long long g_ = (long long)(got), w_ = (long long)(want);              \
        CHECK(g_ == w_, "%s = %lld, want %lld", #got, g_, w_);                \
    } while (0)

#define CHECK_STR(got, want)                                                  \
    do {                                                                      \
        const char *g_ = (got), *w_ = (want);                                 \
        CHECK(strcmp(g_, w_) == 0, "%s = \"%s\", want \"%s\"", #got, g_, w_); \
    } while (0)

/* main's exit status: 1 when a check failed or when none ran (a test that
 * checks nothing proves nothing, e.g. one whose loop never ran). */
static inline int check_done(const char *name)
{
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    if (check_count == 0)
        fprintf(stderr, "%s: no check ran\n", name);
    return check_failures || check_count == 0 ? 1 : 0;
}

#endif
