/* Merging native and Python frames (see merge.h). */
#include "tracer/native/merge.h"

int nat_merge(const struct nat_sym *const *sym, int nn, const struct py_rawframe *py, int np,
              int all, struct nat_merged *out, int max, int *unmatched)
{
    int n = 0, p = 0;
    *unmatched = 0;
    for (int i = 0; i < nn && n < max; i++) {
        if (sym[i]->is_eval) {
            if (p >= np) {
                ++*unmatched;
                if (all)
                    out[n++] = (struct nat_merged){ 1, i };
                continue;
            }
            do {
                out[n++] = (struct nat_merged){ 0, p };
            } while (!py[p++].entry && p < np && n < max);
            continue;
        }
        if (sym[i]->is_interp && !all)
            continue;
        out[n++] = (struct nat_merged){ 1, i };
    }
    *unmatched += np - p;
    while (p < np && n < max)
        out[n++] = (struct nat_merged){ 0, p++ };
    return n;
}
