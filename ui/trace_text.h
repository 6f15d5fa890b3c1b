/* The plain-text waterfall of one assembled trace (sonde trace without
 * --json / --format): the text twin of ui/waterfall.c's terminal view. */
#ifndef SONDE_UI_TRACE_TEXT_H
#define SONDE_UI_TRACE_TEXT_H

#include <stdio.h>

struct trace_view;

/* Write v to f: a header line (id, span count, duration, start, services),
 * then one row per span in tree order with its offset, duration, service,
 * indented name (" !" on an error), a 40-column bar on the trace's time
 * axis and its clock-skew correction. Names and services are shown escaped
 * (common/textesc.h). Stream errors are left in f's error flag. */
void trace_text_waterfall(FILE *f, const struct trace_view *v);

#endif
