/* _Py_DebugOffsets and _Py_AsyncioModuleDebugOffsets (see debugoffsets.h).
 * Each arrangement is written here as word indexes (8-byte words from the
 * block's start: cookie 0, version 1, free_threaded 2, then the sections),
 * from the order of the fields in that version's
 * Include/internal/pycore_debug_offsets.h. */
#include "tracer/cpython/debugoffsets.h"

#include "common/err.h"
#include "tracer/cpython/frames.h"

#include <string.h>

/* Where each field sonde uses sits; -1: not in this arrangement. A field is
 * described by its word and the word of its section's size. */
struct dbg_word {
    int16_t at, size;
};

struct dbg_arrangement {
    int minor;
    int nwords;
    struct dbg_word rt_interpreters_head;
    struct dbg_word is_next, is_threads_head, is_modules, is_ceval_gil, is_gil_state,
        is_gil_locked, is_gil_holder;
    struct dbg_word ts_next, ts_interp, ts_frame, ts_thread_id, ts_native_thread_id,
        ts_datastack_chunk;
    struct dbg_word if_previous, if_code, if_instr, if_owner, if_localsplus;
    struct dbg_word co_filename, co_name, co_qualname, co_linetable, co_firstlineno,
        co_code_adaptive;
    struct dbg_word ob_type, tp_name, tp_flags;
    struct dbg_word list_items, list_size, set_table, set_mask, dict_keys, dict_values,
        long_tag, long_digit, bytes_size, bytes_sval, gi_iframe, gi_frame_state;
    int16_t if_size_word;
};

#define W(a, s) { (a), (s) }
#define NONE { -1, -1 }

static const struct dbg_arrangement arrangements[] = {
    { .minor = 13, .nwords = 73,
      .rt_interpreters_head = W(5, 3),
      .is_next = W(8, 6), .is_threads_head = W(9, 6), .is_modules = W(11, 6),
      .is_ceval_gil = W(14, 6), .is_gil_state = W(15, 6), .is_gil_locked = W(17, 6),
      .is_gil_holder = W(18, 6),
      .ts_next = W(21, 19), .ts_interp = W(22, 19), .ts_frame = W(23, 19),
      .ts_thread_id = W(24, 19), .ts_native_thread_id = W(25, 19),
      .ts_datastack_chunk = W(26, 19),
      .if_previous = W(29, 28), .if_code = W(30, 28), .if_instr = W(31, 28),
      .if_localsplus = W(32, 28), .if_owner = W(33, 28), .if_size_word = 28,
      .co_filename = W(35, 34), .co_name = W(36, 34), .co_qualname = W(37, 34),
      .co_linetable = W(38, 34), .co_firstlineno = W(39, 34), .co_code_adaptive = W(43, 34),
      .ob_type = W(45, 44), .tp_name = W(47, 46), .tp_flags = W(49, 46),
      /* the object sections below are applied from 3.14 on only: 3.13's
       * compiled-in table is checked against live interpreters */
      .list_items = NONE, .list_size = NONE, .set_table = NONE, .set_mask = NONE,
      .dict_keys = NONE, .dict_values = NONE, .long_tag = NONE, .long_digit = NONE,
      .bytes_size = NONE, .bytes_sval = NONE, .gi_iframe = NONE, .gi_frame_state = NONE },
    { .minor = 14, .nwords = 95,
      .rt_interpreters_head = W(5, 3),
      .is_next = W(8, 6), .is_threads_head = W(9, 6), .is_modules = W(12, 6),
      .is_ceval_gil = W(15, 6), .is_gil_state = W(16, 6), .is_gil_locked = W(18, 6),
      .is_gil_holder = W(19, 6),
      .ts_next = W(24, 22), .ts_interp = W(25, 22), .ts_frame = W(26, 22),
      .ts_thread_id = W(27, 22), .ts_native_thread_id = W(28, 22),
      .ts_datastack_chunk = W(29, 22),
      .if_previous = W(32, 31), .if_code = W(33, 31), .if_instr = W(34, 31),
      .if_localsplus = W(35, 31), .if_owner = W(36, 31), .if_size_word = 31,
      .co_filename = W(40, 39), .co_name = W(41, 39), .co_qualname = W(42, 39),
      .co_linetable = W(43, 39), .co_firstlineno = W(44, 39), .co_code_adaptive = W(48, 39),
      .ob_type = W(51, 50), .tp_name = W(53, 52), .tp_flags = W(55, 52),
      .list_items = W(60, 59), .list_size = W(61, 59),
      .set_table = W(64, 62), .set_mask = W(65, 62),
      .dict_keys = W(67, 66), .dict_values = W(68, 66),
      .long_tag = W(72, 71), .long_digit = W(73, 71),
      .bytes_size = W(75, 74), .bytes_sval = W(76, 74),
      .gi_iframe = W(85, 83), .gi_frame_state = W(86, 83) },
};

/* Largest structure size believed: a block claiming more is damaged. */
#define DBG_MAX_SECTION (1 << 20)

static uint64_t word(const uint8_t *b, int i)
{
    uint64_t v;
    memcpy(&v, b + (size_t)i * 8, 8);
    return v;
}

/* The offset a field has, or -1 when the arrangement lacks it; -2 when it
 * lies outside its section, or beyond cap bytes (a local buffer sonde
 * copies that structure into), or the section is implausibly large. */
static int64_t field(const uint8_t *b, struct dbg_word w, uint64_t cap)
{
    if (w.at < 0)
        return -1;
    uint64_t off = word(b, w.at), size = word(b, w.size);
    /* written so that no sum wraps: off comes from the target */
    if (size < 8 || size > DBG_MAX_SECTION || cap < 8 || off > size - 8 || off > cap - 8)
        return -2;
    return (int64_t)off;
}

int py_debug_offsets_apply(const void *buf, size_t len, int major, int minor,
                           struct py_layout *L, char *err, size_t errlen)
{
    const uint8_t *b = buf;
    if (len < 24 || memcmp(b, "xdebugpy", 8) != 0)
        return 0;
    uint64_t version = word(b, 1);
    int vmaj = (int)(version >> 24) & 0xff, vmin = (int)(version >> 16) & 0xff;
    if (vmaj != major || vmin != minor)
        return 0;
    if (word(b, 2))
        return se_fail(err, errlen, SE_UNSUPPORTED,
                       "a free-threaded build");
    const struct dbg_arrangement *A = NULL;
    for (size_t i = 0; i < sizeof arrangements / sizeof arrangements[0]; i++)
        if (major == 3 && arrangements[i].minor == minor)
            A = &arrangements[i];
    if (!A)
        return se_fail(err, errlen, SE_UNSUPPORTED,
                       "its _Py_DebugOffsets are of a shape sonde does not know");
    if (len < (size_t)A->nwords * 8)
        return se_fail(err, errlen, SE_UNSUPPORTED,
                       "_Py_DebugOffsets cut short");

    const uint64_t any = DBG_MAX_SECTION;
    const uint64_t gil = L->gil_size > 0 ? (uint64_t)L->gil_size : 0;
    /* frames are copied into 128-byte buffers (frames.c) */
    const uint64_t frame = 128;
    struct py_layout n = *L;
    struct { int64_t *dst; struct dbg_word w; uint64_t cap; } map[] = {
        { &n.rt_interpreters_head, A->rt_interpreters_head, any },
        { &n.is_next, A->is_next, any },
        { &n.is_threads_head, A->is_threads_head, any },
        { &n.is_modules, A->is_modules, any },
        { &n.is_gil_ptr, A->is_ceval_gil, any },
        { &n.ts_next, A->ts_next, PY_TSBUF },
        { &n.ts_interp, A->ts_interp, PY_TSBUF },
        { &n.ts_frame, A->ts_frame, PY_TSBUF },
        { &n.ts_thread_id, A->ts_thread_id, PY_TSBUF },
        { &n.ts_native_thread_id, A->ts_native_thread_id, PY_TSBUF },
        { &n.ts_datastack_chunk, A->ts_datastack_chunk, PY_TSBUF },
        { &n.if_previous, A->if_previous, frame },
        { &n.if_code, A->if_code, frame },
        { &n.if_instr, A->if_instr, frame },
        { &n.if_owner, A->if_owner, frame },
        { &n.if_localsplus, A->if_localsplus, frame },
        { &n.co_filename, A->co_filename, any },
        { &n.co_name, A->co_name, any },
        { &n.co_qualname, A->co_qualname, any },
        { &n.co_linetable, A->co_linetable, any },
        { &n.co_firstlineno, A->co_firstlineno, any },
        { &n.co_code_adaptive, A->co_code_adaptive, any },
        { &n.ob_type, A->ob_type, 16 }, /* object headers are read into 16-byte and larger buffers */
        { &n.tp_name, A->tp_name, any },
        { &n.tp_flags, A->tp_flags, any },
        { &n.list_items, A->list_items, any },
        { &n.list_size, A->list_size, any },
        { &n.set_table, A->set_table, any },
        { &n.set_mask, A->set_mask, any },
        { &n.dict_keys, A->dict_keys, any },
        { &n.dict_values, A->dict_values, any },
        { &n.long_size, A->long_tag, any },
        { &n.long_digit, A->long_digit, any },
        { &n.bytes_size, A->bytes_size, any },
        { &n.bytes_sval, A->bytes_sval, any },
        { &n.gi_iframe, A->gi_iframe, any },
        { &n.gi_frame_state, A->gi_frame_state, any },
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        int64_t v = field(b, map[i].w, map[i].cap);
        if (v == -2)
            return se_fail(err, errlen, SE_UNSUPPORTED,
                           "damaged _Py_DebugOffsets (word %d out of range)", map[i].w.at);
        if (v >= 0)
            *map[i].dst = v;
    }
    /* the GIL's fields, relative to the GIL structure inside the interpreter */
    int64_t gs = field(b, A->is_gil_state, any), gl = field(b, A->is_gil_locked, any),
            gh = field(b, A->is_gil_holder, any);
    if (gs < 0 || gl < gs || gh < gs || (uint64_t)(gl - gs) + 4 > gil ||
        (uint64_t)(gh - gs) + 8 > gil)
        return se_fail(err, errlen, SE_UNSUPPORTED,
                       "damaged _Py_DebugOffsets (GIL fields)");
    n.gil_locked = gl - gs;
    n.gil_last_holder = gh - gs;
    uint64_t fsize = word(b, A->if_size_word);
    if (fsize == 0 || fsize > DBG_MAX_SECTION)
        return se_fail(err, errlen, SE_UNSUPPORTED,
                       "damaged _Py_DebugOffsets (frame size)");
    n.if_size = (int64_t)fsize;
    n.minor = minor;
    *L = n;
    return 1;
}

int py_asyncio_offsets_parse(const void *buf, size_t len, int major, int minor,
                             struct py_asyncio_offsets *out, char *err, size_t errlen)
{
    /* 3.14: task {size, name, awaited_by, is_task, awaited_by_is_set, coro,
     * node} (words 0-6), interpreter {size, tasks_head} (7-8), thread
     * {size, running_loop, running_task, tasks_head} (9-12) */
    if (major != 3 || minor != 14)
        return se_fail(err, errlen, SE_UNSUPPORTED,
                       "no asyncio debug offsets sonde knows for Python %d.%d", major, minor);
    const uint8_t *b = buf;
    if (len < 13 * 8)
        return se_fail(err, errlen, SE_FAULT, "asyncio debug offsets cut short");
    const struct dbg_word tw[] = { W(1, 0), W(2, 0), W(3, 0), W(4, 0), W(5, 0), W(6, 0) };
    int64_t t[6];
    for (int i = 0; i < 6; i++)
        if ((t[i] = field(b, tw[i], DBG_MAX_SECTION)) < 0)
            return se_fail(err, errlen, SE_FAULT, "damaged asyncio debug offsets (task)");
    int64_t ih = field(b, (struct dbg_word)W(8, 7), DBG_MAX_SECTION);
    int64_t tl = field(b, (struct dbg_word)W(10, 9), DBG_MAX_SECTION);
    int64_t tt = field(b, (struct dbg_word)W(11, 9), DBG_MAX_SECTION);
    int64_t th = field(b, (struct dbg_word)W(12, 9), DBG_MAX_SECTION);
    if (ih < 0 || tl < 0 || tt < 0 || th < 0)
        return se_fail(err, errlen, SE_FAULT, "damaged asyncio debug offsets (thread state)");
    *out = (struct py_asyncio_offsets){
        .task_size = (int64_t)word(b, 0), .task_name = t[0], .task_awaited_by = t[1],
        .task_is_task = t[2], .task_awaited_by_is_set = t[3], .task_coro = t[4],
        .task_node = t[5], .is_tasks_head = ih, .ts_running_loop = tl,
        .ts_running_task = tt, .ts_tasks_head = th,
    };
    return 0;
}
