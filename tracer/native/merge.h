/* One stack of native and Python frames, innermost first.
 *
 * The rule: walk the native frames from the innermost. A frame of the
 * interpreter's evaluation loop (_PyEval_EvalFrameDefault) is replaced by
 * the Python frames that call was running: the next Python frames, from
 * where the last call's left off, up to and including the first one marked
 * `entry` (py_rawframe.entry: on 3.8-3.10 every frame, so one each; on
 * 3.11+ one C call runs a Python frame and everything it called without
 * leaving the loop, down to the frame that entered it: `is_entry` on 3.11,
 * the frame inside the C-stack shim on 3.12+). Other frames of the
 * interpreter's own file are hidden unless `all`; everything else stays
 * where it is. Python frames left over when the native frames run out (an
 * unwind cut short) go at the end, in order, so the Python stack is always
 * whole. */
#ifndef SONDE_NAT_MERGE_H
#define SONDE_NAT_MERGE_H

#include "tracer/cpython/frames.h"
#include "tracer/native/unwind.h"

struct nat_merged {
    uint8_t native; /* 1: native frame idx, 0: Python frame idx */
    int idx;
};

/* Merge nn native frames (their symbols in sym, innermost first) with np
 * Python frames (innermost first) into out (at most max entries). Returns
 * the count; *unmatched receives how many evaluation frames found no Python
 * frame plus how many Python frames were left over (0 when the two stacks
 * agree). Allocates nothing. */
int nat_merge(const struct nat_sym *const *sym, int nn, const struct py_rawframe *py, int np,
              int all, struct nat_merged *out, int max, int *unmatched);

#endif
