/* tracer/native/merge: native and Python frames in one stack. Evaluation
 * frames take the Python frames of their call (one each on 3.8-3.10, a run
 * ending at an entry frame on 3.11+), interpreter frames hide unless asked
 * for, and the Python stack is never lost or reordered when the native
 * stack is cut short or has no evaluation frame left. */
#include "check.h"

#include "tracer/native/merge.h"

#include <string.h>

static const struct nat_sym LIB = { .function = "deflate", .module = "/lib/libz.so.1" };
static const struct nat_sym EXT = { .function = "zlib_compress", .module = "/x/zlib.so" };
static const struct nat_sym EVAL = { .function = "_PyEval_EvalFrameDefault", .is_eval = 1,
                                     .is_interp = 1 };
static const struct nat_sym CALL = { .function = "_PyObject_Call", .is_interp = 1 };
static const struct nat_sym LIBC = { .function = "start_thread", .module = "/lib/libc.so.6" };

/* The merged stack as a string: native frames by function, Python frames P<index>. */
static void render(const struct nat_sym *const *sym, const struct nat_merged *m, int n, char *out,
                   size_t len)
{
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        char one[64];
        if (m[i].native)
            snprintf(one, sizeof one, "%s%s", i ? " " : "", sym[m[i].idx]->function);
        else
            snprintf(one, sizeof one, "%sP%d", i ? " " : "", m[i].idx);
        strncat(out, one, len - strlen(out) - 1);
    }
}

static void merge_case(const struct nat_sym *const *sym, int nn, const uint8_t *entry, int np,
                       int all, const char *want, int want_unmatched)
{
    struct py_rawframe py[16];
    memset(py, 0, sizeof py);
    for (int i = 0; i < np; i++)
        py[i].entry = entry[i];
    struct nat_merged m[64];
    int unmatched = -1;
    int n = nat_merge(sym, nn, py, np, all, m, 64, &unmatched);
    char got[512];
    render(sym, m, n, got, sizeof got);
    CHECK_STR(got, want);
    CHECK_INT(unmatched, want_unmatched);
}

static void test_one_per_frame(void)
{
    /* 3.8-3.10: deflate <- zlib_compress <- eval(P0) <- call <- eval(P1) <- eval(P2) */
    const struct nat_sym *s[] = { &LIB, &EXT, &EVAL, &CALL, &EVAL, &EVAL, &LIBC };
    const uint8_t e[] = { 1, 1, 1 };
    merge_case(s, 7, e, 3, 0, "deflate zlib_compress P0 P1 P2 start_thread", 0);
    merge_case(s, 7, e, 3, 1, "deflate zlib_compress P0 _PyObject_Call P1 P2 start_thread", 0);
}

static void test_entry_runs(void)
{
    /* 3.11+: the inner C call ran P0..P2 (P2 entered it), the outer P3..P4 */
    const struct nat_sym *s[] = { &LIB, &EXT, &EVAL, &CALL, &EVAL, &LIBC };
    const uint8_t e[] = { 0, 0, 1, 0, 1 };
    merge_case(s, 6, e, 5, 0, "deflate zlib_compress P0 P1 P2 P3 P4 start_thread", 0);
    merge_case(s, 6, e, 5, 1, "deflate zlib_compress P0 P1 P2 _PyObject_Call P3 P4 start_thread",
               0);
}

static void test_cut_short(void)
{
    /* the unwind stopped after the first evaluation frame: the rest of the
     * Python stack follows in order, counted */
    const struct nat_sym *s[] = { &LIB, &EXT, &EVAL };
    const uint8_t e[] = { 1, 1, 1 };
    merge_case(s, 3, e, 3, 0, "deflate zlib_compress P0 P1 P2", 2);
    /* no native frames at all: the Python stack alone */
    merge_case(s, 0, e, 3, 0, "P0 P1 P2", 3);
    /* an entry flag never set: one call ran them all */
    const uint8_t none[] = { 0, 0, 0 };
    merge_case(s, 3, none, 3, 0, "deflate zlib_compress P0 P1 P2", 0);
}

static void test_more_eval_than_python(void)
{
    /* an evaluation call entered but no frame pushed yet (or a torn Python
     * read): the extra evaluation frame has nothing to stand for */
    const struct nat_sym *s[] = { &EVAL, &EVAL, &LIBC };
    const uint8_t e[] = { 1 };
    merge_case(s, 3, e, 1, 0, "P0 start_thread", 1);
    merge_case(s, 3, e, 1, 1, "P0 _PyEval_EvalFrameDefault start_thread", 1);
}

static void test_room(void)
{
    /* out has room for fewer entries than the stacks: no overflow */
    const struct nat_sym *s[] = { &LIB, &EVAL, &EVAL, &EVAL };
    struct py_rawframe py[3] = { { 0, 0, 1 }, { 0, 0, 1 }, { 0, 0, 1 } };
    struct nat_merged m[2];
    int unmatched;
    int n = nat_merge(s, 4, py, 3, 0, m, 2, &unmatched);
    CHECK_INT(n, 2);
    CHECK_INT(m[0].native, 1);
    CHECK_INT(m[1].native, 0);
}

int main(void)
{
    test_one_per_frame();
    test_entry_runs();
    test_cut_short();
    test_more_eval_than_python();
    test_room();
    return check_done("natmerge");
}
