/* Span times and durations as text (the waterfall, `sonde traces`). */
#ifndef SONDE_UI_TRACE_TEXT_H
#define SONDE_UI_TRACE_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* "850us", "12.345ms", "3.200s". */
void trace_fmt_dur(char *buf, size_t len, int64_t us);

/* "2026-11-22 04:16:16.123456" (UTC) of microseconds since the epoch. */
void trace_fmt_time(char *buf, size_t len, int64_t us);


#endif
