#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int se_fail(char *buf, size_t len, int code, const char *fmt, ...)
{
    if (buf && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, len, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *se_str(int code)
{
    switch (code) {
    case 0: return "success";
    case SE_NOPROC: return "no such process";
    case SE_PERM: return "permission denied";
    case SE_NOTPYTHON: return "not a Python process";
    case SE_UNSUPPORTED: return "unsupported Python version";
    case SE_EXITED: return "process exited";
    case SE_FAULT: return "unreadable or inconsistent target memory";
    case SE_BADFILE: return "corrupt or foreign file";
    case SE_USAGE: return "usage error";
    default: return code < 0 && code > -4096 ? strerror(-code) : "unknown error";
    }
}
