/* An assembled trace as plain text: span times and durations (the
 * waterfall, `sonde traces`), and the text waterfall of one trace (`sonde
 * trace` without --json / --format), the text twin of ui/waterfall.c's
 * terminal view. */
#ifndef SONDE_UI_TRACE_TEXT_H
#define SONDE_UI_TRACE_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct trace_view;

/* "850us", "12.345ms", "3.200s". */
void trace_fmt_dur(char *buf, size_t len, int64_t us);

/* "2026-11-22 04:16:16.123456" (UTC) of microseconds since the epoch. */
void trace_fmt_time(char *buf, size_t len, int64_t us);

/* Write v to f: a header line (id, span count, duration, start, services),
 * then one row per span in tree order with its offset, duration, service,
 * indented name (" !" on an error), a 40-column bar on the trace's time
 * axis and its clock-skew correction. Names and services are shown escaped
 * (common/textesc.h). Stream errors are left in f's error flag. */
void trace_text_waterfall(FILE *f, const struct trace_view *v);

#endif
