/* Error codes shared by every library module.
 *
 * Library functions return 0 on success or a negative code: either a plain
 * negative errno value or one of the SE_* codes below, and fill an optional
 * caller-supplied message buffer. Only cli/ prints messages and maps codes to
 * exit statuses (docs/exit-codes.md). */
#ifndef SONDE_ERR_H
#define SONDE_ERR_H

#include <stddef.h>

enum {
    SE_NOPROC = -10001,      /* no such process */
    SE_PERM = -10002,        /* not allowed to read the process */
    SE_NOTPYTHON = -10003,   /* no CPython runtime found in the process */
    SE_UNSUPPORTED = -10004, /* CPython version not supported */
    SE_EXITED = -10005,      /* the process exited while being read */
    SE_FAULT = -10006,       /* a read hit unmapped memory or torn data */
    SE_BADFILE = -10007,     /* corrupt, truncated or foreign file */
    SE_USAGE = -10008,       /* bad arguments */
};

/* Format a message into buf (may be NULL) and return code, so that callers
 * can write `return se_fail(err, errlen, SE_X, "...", ...)`. */
int se_fail(char *buf, size_t len, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A short static description of a code. */
const char *se_str(int code);

#endif
