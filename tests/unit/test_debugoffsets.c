/* tracer/cpython/debugoffsets: synthetic _Py_DebugOffsets blocks of 3.13
 * and 3.14 shape refine a layout field by field; no cookie, another
 * version, a free-threaded build, an unknown shape and damaged offsets leave
 * it alone; asyncio's debug offsets (3.14) likewise. */
#include "check.h"

#include "common/err.h"
#include "tracer/cpython/debugoffsets.h"
#include "tracer/cpython/frames.h"

#include <stdint.h>
#include <string.h>

static uint64_t blk[PY_DBG_MAX_BYTES / 8];

static void header(int minor, uint64_t free_threaded)
{
    memset(blk, 0, sizeof blk);
    memcpy(blk, "xdebugpy", 8);
    blk[1] = 0x030000f0u | ((uint64_t)minor << 16);
    blk[2] = free_threaded;
}

/* Every section size word at 4096 and each field at a distinct offset
 * (100 + 8 * its word): what the layout gets is where the block put it. */
static void fill(int nwords, const int *sizes, int nsizes)
{
    for (int i = 3; i < nwords; i++)
        blk[i] = 100 + 8 * (uint64_t)i;
    for (int i = 0; i < nsizes; i++)
        blk[sizes[i]] = 4096;
}

static const int sizes313[] = { 3, 6, 19, 28, 34, 44, 46, 50, 53, 56, 59, 61, 64, 67, 71 };
static const int sizes314[] = { 3, 6, 22, 31, 39, 50, 52, 56, 59, 62, 66, 69, 71, 74, 77, 81, 83 };
#define N(a) ((int)(sizeof a / sizeof a[0]))
#define AT(w) (100 + 8 * (w))

static void small_frames_and_tstate(int ts0, int ts1, int if0, int if1)
{
    /* thread-state and frame fields must fit sonde's buffers */
    for (int i = ts0; i <= ts1; i++)
        blk[i] = 8 * (uint64_t)(i - ts0 + 1);
    for (int i = if0; i <= if1; i++)
        blk[i] = 8 * (uint64_t)(i - if0);
}

static void test_314(void)
{
    char err[200] = "";
    const struct py_layout *base = py_layout_for(3, 13);
    struct py_layout L = *base;
    header(14, 0);
    fill(95, sizes314, N(sizes314));
    small_frames_and_tstate(23, 30, 32, 38);
    blk[31] = 80;                      /* sizeof(_PyInterpreterFrame) */
    blk[16] = 1000, blk[18] = 1008, blk[19] = 1016; /* _gil, _gil.locked, _gil.last_holder */
    blk[51] = 8;                       /* ob_type: read into 16-byte object headers */
    CHECK_INT(py_debug_offsets_apply(blk, 95 * 8, 3, 14, &L, err, sizeof err), 1);
    CHECK_INT(L.minor, 14);
    CHECK_INT(L.rt_interpreters_head, AT(5));
    CHECK_INT(L.is_next, AT(8));
    CHECK_INT(L.is_threads_head, AT(9));
    CHECK_INT(L.is_modules, AT(12)); /* after threads_main and gc */
    CHECK_INT(L.is_gil_ptr, AT(15));
    CHECK_INT(L.gil_locked, 8);
    CHECK_INT(L.gil_last_holder, 16);
    CHECK_INT(L.ts_next, 16);
    CHECK_INT(L.ts_interp, 24);
    CHECK_INT(L.ts_frame, 32);
    CHECK_INT(L.ts_thread_id, 40);
    CHECK_INT(L.ts_native_thread_id, 48);
    CHECK_INT(L.ts_datastack_chunk, 56);
    CHECK_INT(L.if_size, 80);
    CHECK_INT(L.if_previous, 0);
    CHECK_INT(L.if_code, 8);
    CHECK_INT(L.if_instr, 16);
    CHECK_INT(L.if_localsplus, 24);
    CHECK_INT(L.if_owner, 32);
    CHECK_INT(L.co_filename, AT(40));
    CHECK_INT(L.co_qualname, AT(42));
    CHECK_INT(L.co_linetable, AT(43));
    CHECK_INT(L.co_firstlineno, AT(44));
    CHECK_INT(L.co_code_adaptive, AT(48));
    CHECK_INT(L.ob_type, 8);
    CHECK_INT(L.tp_name, AT(53));
    CHECK_INT(L.tp_flags, AT(55));
    CHECK_INT(L.list_items, AT(60));
    CHECK_INT(L.list_size, AT(61));
    CHECK_INT(L.set_table, AT(64));
    CHECK_INT(L.set_mask, AT(65));
    CHECK_INT(L.dict_keys, AT(67));
    CHECK_INT(L.dict_values, AT(68));
    CHECK_INT(L.long_size, AT(72));
    CHECK_INT(L.long_digit, AT(73));
    CHECK_INT(L.bytes_size, AT(75));
    CHECK_INT(L.bytes_sval, AT(76));
    CHECK_INT(L.gi_iframe, AT(85));
    CHECK_INT(L.gi_frame_state, AT(86));
    /* what the block does not carry stays 3.13's */
    CHECK_INT(L.dk_indices, base->dk_indices);
    CHECK_INT(L.str_state, base->str_state);

    /* damaged: a thread-state field beyond what sonde copies of one */
    struct py_layout M = *base;
    blk[24] = PY_TSBUF;
    CHECK_INT(py_debug_offsets_apply(blk, 95 * 8, 3, 14, &M, err, sizeof err), SE_UNSUPPORTED);
    CHECK(strstr(err, "damaged") != NULL, "%s", err);
    CHECK(memcmp(&M, base, sizeof M) == 0, "layout changed by a refused block");
    blk[24] = 16;
    /* a field outside its section, a section of size 0, GIL fields reversed */
    blk[40] = 5000;
    CHECK_INT(py_debug_offsets_apply(blk, 95 * 8, 3, 14, &M, err, sizeof err), SE_UNSUPPORTED);
    blk[40] = AT(40);
    blk[39] = 0;
    CHECK_INT(py_debug_offsets_apply(blk, 95 * 8, 3, 14, &M, err, sizeof err), SE_UNSUPPORTED);
    blk[39] = 4096;
    blk[18] = 900;
    CHECK_INT(py_debug_offsets_apply(blk, 95 * 8, 3, 14, &M, err, sizeof err), SE_UNSUPPORTED);
    blk[18] = 1008;
    blk[31] = 0;
    CHECK_INT(py_debug_offsets_apply(blk, 95 * 8, 3, 14, &M, err, sizeof err), SE_UNSUPPORTED);
    blk[31] = 80;
    /* ob_type past a 16-byte header; an offset that wraps when 8 is added */
    blk[51] = 16;
    CHECK_INT(py_debug_offsets_apply(blk, 95 * 8, 3, 14, &M, err, sizeof err), SE_UNSUPPORTED);
    blk[51] = 8;
    blk[40] = UINT64_MAX - 3;
    CHECK_INT(py_debug_offsets_apply(blk, 95 * 8, 3, 14, &M, err, sizeof err), SE_UNSUPPORTED);
    blk[40] = AT(40);
    /* cut short */
    CHECK_INT(py_debug_offsets_apply(blk, 94 * 8, 3, 14, &M, err, sizeof err), SE_UNSUPPORTED);
    CHECK(memcmp(&M, base, sizeof M) == 0, "layout changed by a refused block");
    CHECK_INT(py_debug_offsets_apply(blk, 95 * 8, 3, 14, &M, err, sizeof err), 1);
}

/* A 3.13 block written from the compiled-in 3.13 table gives that table
 * back: the arrangement and the table agree. */
static void test_313_roundtrip(void)
{
    char err[200] = "";
    const struct py_layout *T = py_layout_for(3, 13);
    header(13, 0);
    fill(73, sizes313, N(sizes313));
    uint64_t gil = 4000;
    blk[5] = (uint64_t)T->rt_interpreters_head;
    blk[8] = (uint64_t)T->is_next, blk[9] = (uint64_t)T->is_threads_head;
    blk[11] = (uint64_t)T->is_modules, blk[14] = (uint64_t)T->is_gil_ptr;
    blk[15] = gil, blk[17] = gil + (uint64_t)T->gil_locked, blk[18] = gil + (uint64_t)T->gil_last_holder;
    blk[6] = 100000;
    blk[19] = PY_TSBUF;
    blk[21] = (uint64_t)T->ts_next, blk[22] = (uint64_t)T->ts_interp, blk[23] = (uint64_t)T->ts_frame;
    blk[24] = (uint64_t)T->ts_thread_id, blk[25] = (uint64_t)T->ts_native_thread_id;
    blk[26] = (uint64_t)T->ts_datastack_chunk;
    blk[28] = (uint64_t)T->if_size;
    blk[29] = (uint64_t)T->if_previous, blk[30] = (uint64_t)T->if_code, blk[31] = (uint64_t)T->if_instr;
    blk[32] = (uint64_t)T->if_localsplus, blk[33] = (uint64_t)T->if_owner;
    blk[35] = (uint64_t)T->co_filename, blk[36] = (uint64_t)T->co_name, blk[37] = (uint64_t)T->co_qualname;
    blk[38] = (uint64_t)T->co_linetable, blk[39] = (uint64_t)T->co_firstlineno;
    blk[43] = (uint64_t)T->co_code_adaptive;
    blk[45] = (uint64_t)T->ob_type, blk[47] = (uint64_t)T->tp_name, blk[49] = (uint64_t)T->tp_flags;
    struct py_layout L = *T;
    CHECK_INT(py_debug_offsets_apply(blk, 73 * 8, 3, 13, &L, err, sizeof err), 1);
    CHECK(memcmp(&L, T, sizeof L) == 0, "3.13 block from the 3.13 table changed the table");
    /* a different tp_flags lands in tp_flags: the words are read where they are */
    blk[49] = 168;
    CHECK_INT(py_debug_offsets_apply(blk, 73 * 8, 3, 13, &L, err, sizeof err), 1);
    CHECK_INT(L.tp_flags, 168);
}

static void test_refused(void)
{
    char err[200] = "";
    const struct py_layout *base = py_layout_for(3, 13);
    struct py_layout L = *base;
    header(13, 0);
    memcpy(blk, "notdebug", 8); /* no cookie: a build without the block */
    CHECK_INT(py_debug_offsets_apply(blk, sizeof blk, 3, 13, &L, err, sizeof err), 0);
    header(12, 0); /* another version's block */
    CHECK_INT(py_debug_offsets_apply(blk, sizeof blk, 3, 13, &L, err, sizeof err), 0);
    CHECK(memcmp(&L, base, sizeof L) == 0, "layout changed");
    header(13, 1);
    CHECK_INT(py_debug_offsets_apply(blk, sizeof blk, 3, 13, &L, err, sizeof err), SE_UNSUPPORTED);
    CHECK(strstr(err, "free-threaded") != NULL, "%s", err);
    header(15, 0); /* a newer version: its shape is unknown */
    CHECK_INT(py_debug_offsets_apply(blk, sizeof blk, 3, 15, &L, err, sizeof err), SE_UNSUPPORTED);
    CHECK(strstr(err, "shape") != NULL, "%s", err);
    CHECK_INT(py_debug_offsets_apply(blk, 16, 3, 15, &L, err, sizeof err), 0); /* too short */
    CHECK(memcmp(&L, base, sizeof L) == 0, "layout changed");
}

static void test_asyncio(void)
{
    char err[200] = "";
    uint64_t a[13] = { 1200, 200, 208, 216, 217, 224, 232,  /* task */
                       40000, 39000,                        /* interpreter */
                       3000, 2800, 2808, 2816 };            /* thread */
    struct py_asyncio_offsets o;
    CHECK_INT(py_asyncio_offsets_parse(a, sizeof a, 3, 14, &o, err, sizeof err), 0);
    CHECK_INT(o.task_name, 200);
    CHECK_INT(o.task_coro, 224);
    CHECK_INT(o.task_node, 232);
    CHECK_INT(o.is_tasks_head, 39000);
    CHECK_INT(o.ts_running_loop, 2800);
    CHECK_INT(o.ts_running_task, 2808);
    CHECK_INT(o.ts_tasks_head, 2816);
    CHECK_INT(py_asyncio_offsets_parse(a, sizeof a - 8, 3, 14, &o, err, sizeof err), SE_FAULT);
    CHECK_INT(py_asyncio_offsets_parse(a, sizeof a, 3, 13, &o, err, sizeof err), SE_UNSUPPORTED);
    CHECK_INT(py_asyncio_offsets_parse(a, sizeof a, 3, 15, &o, err, sizeof err), SE_UNSUPPORTED);
    a[6] = 1200; /* the list node at the task's very end: outside it */
    CHECK_INT(py_asyncio_offsets_parse(a, sizeof a, 3, 14, &o, err, sizeof err), SE_FAULT);
    a[6] = 232;
    a[12] = 2999; /* straddles the thread state's end */
    CHECK_INT(py_asyncio_offsets_parse(a, sizeof a, 3, 14, &o, err, sizeof err), SE_FAULT);
}

int main(void)
{
    test_314();
    test_313_roundtrip();
    test_refused();
    test_asyncio();
    return check_done("debugoffsets");
}
