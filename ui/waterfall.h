/* sonde view on a collector's span store: a trace list and, per trace, a
 * waterfall (collapsible span tree, one colour per service, critical path,
 * span details). */
#ifndef SONDE_UI_WATERFALL_H
#define SONDE_UI_WATERFALL_H

#include <stddef.h>
#include <stdint.h>

/* Browse the store on the terminal until q. max_skew_us < 0: the store's
 * own bound. The terminal is restored before returning. 0, or a negative
 * code with a message in err. */
int waterfall_run(const char *path, int64_t max_skew_us, char *err, size_t errlen);

#endif
