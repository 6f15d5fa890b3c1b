#include "ui/trace_text.h"

#include "spans/span.h"

#include <stdio.h>
#include <time.h>

void trace_fmt_dur(char *buf, size_t len, int64_t us)
{
    if (us < 1000)
        snprintf(buf, len, "%lldus", (long long)us);
    else if (us < 1000000)
        snprintf(buf, len, "%.3fms", us / 1e3);
    else
        snprintf(buf, len, "%.3fs", us / 1e6);
}

void trace_fmt_time(char *buf, size_t len, int64_t us)
{
    us = span_time_clamp(us);
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%06lld", (long long)(us % 1000000));
}
