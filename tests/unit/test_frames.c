/* py_stack_walk on 3.11+ frame chains built in memory: frames come from
 * the window copy, from the side copies or from reads of their own, and a
 * torn pointer (garbage near 2^64, a cycle) ends the walk as truncated
 * instead of reading outside the copies, as does a chain that ends in a
 * generator's frame; entry flags from shims (3.12+) and is_entry (3.11). */
#include "check.h"

#include "tracer/cpython/frames.h"
#include "tracer/cpython/runtime.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { FSIZE = 80, PREV = 8, CODE = 0, INSTR = 56, OWNER = 70, ADAPTIVE = 200 };

static void put64(uint8_t *f, int off, uint64_t v)
{
    memcpy(f + off, &v, 8);
}

static void setup(struct py_runtime *rt)
{
    memset(rt, 0, sizeof *rt);
    mem_init_local(&rt->mem);
    rt->major = 3;
    rt->minor = 13;
    memset(&rt->L, 0xff, sizeof rt->L); /* every offset -1 (unknown) ... */
    rt->L.if_previous = PREV;           /* ... except what the walk needs */
    rt->L.if_code = CODE;
    rt->L.if_instr = INSTR;
    rt->L.if_owner = OWNER;
    rt->L.if_size = FSIZE;
    rt->L.co_code_adaptive = ADAPTIVE;
}

/* frame k of a chain laid out in buf: code 0x1000 * (k + 1), instruction
 * 2 * k bytes into it, previous = prev */
static void mkframe(uint8_t *f, int k, uint64_t prev, int owner)
{
    memset(f, 0, FSIZE);
    uint64_t code = 0x1000 * (uint64_t)(k + 1);
    put64(f, CODE, code);
    put64(f, INSTR, code + ADAPTIVE + 2 * (uint64_t)k);
    put64(f, PREV, prev);
    f[OWNER] = (uint8_t)owner;
}

int main(void)
{
    struct py_runtime rt;
    setup(&rt);
    struct py_rawframe out[16];
    int truncated;

    /* Three frames in a window (a copy standing for the target's data stack
     * at address wlo), the middle one a C-stack shim that is skipped. */
    static uint8_t win[4 * FSIZE];
    uint64_t wlo = 0x7f0000100000ull, whi = wlo + sizeof win;
    mkframe(win + 0 * FSIZE, 0, wlo + 1 * FSIZE, 0);
    mkframe(win + 1 * FSIZE, 1, wlo + 2 * FSIZE, 3);
    mkframe(win + 2 * FSIZE, 2, 0, 0);
    int n = py_stack_walk(&rt, wlo, win, wlo, whi, NULL, out, 16, &truncated);
    CHECK_INT(n, 2);
    CHECK_INT(truncated, 0);
    CHECK(out[0].code == 0x1000 && out[0].addr == 0, "frame 0: %#" PRIx64 " +%d", out[0].code,
          out[0].addr);
    CHECK(out[1].code == 0x3000 && out[1].addr == 4, "frame 1: %#" PRIx64 " +%d", out[1].code,
          out[1].addr);
    /* 3.12+: the frame just inside a shim is the first its evaluation call
     * ran (native merging ends that call's run of frames there) */
    CHECK(out[0].entry == 1 && out[1].entry == 0, "shim entry: %d %d", out[0].entry,
          out[1].entry);

    /* 3.11: no shims, the entry flag is the frame's own is_entry byte */
    rt.L.if_is_entry = 71;
    mkframe(win + 0 * FSIZE, 0, wlo + 1 * FSIZE, 0);
    mkframe(win + 1 * FSIZE, 1, wlo + 2 * FSIZE, 0);
    mkframe(win + 2 * FSIZE, 2, 0, 0);
    win[1 * FSIZE + 71] = 1;
    win[2 * FSIZE + 71] = 1;
    n = py_stack_walk(&rt, wlo, win, wlo, whi, NULL, out, 16, &truncated);
    CHECK(n == 3 && out[0].entry == 0 && out[1].entry == 1 && out[2].entry == 1,
          "is_entry: n %d, %d %d %d", n, out[0].entry, out[1].entry, out[2].entry);
    rt.L.if_is_entry = -1;

    /* Torn previous pointers: near 2^64 (once wrapped around into the
     * window: a crash), just past the window, one byte short of it. */
    uint64_t torn[] = { UINT64_MAX - 7, UINT64_MAX - FSIZE + 1, UINT64_MAX, whi - FSIZE + 1,
                        wlo - 1 };
    for (size_t i = 0; i < sizeof torn / sizeof torn[0]; i++) {
        mkframe(win, 0, torn[i], 0);
        n = py_stack_walk(&rt, wlo, win, wlo, whi, NULL, out, 16, &truncated);
        CHECK(n == 1 && truncated == PY_TRUNC_BROKEN, "torn %#" PRIx64 ": n %d truncated %d", torn[i], n,
              truncated);
    }

    /* A cycle inside the window. */
    mkframe(win, 0, wlo + FSIZE, 0);
    mkframe(win + FSIZE, 1, wlo, 0);
    n = py_stack_walk(&rt, wlo, win, wlo, whi, NULL, out, 16, &truncated);
    CHECK(truncated == PY_TRUNC_BROKEN && n == 2, "cycle: n %d truncated %d", n, truncated);

    /* A generator's frame (owner 1) that ends the chain was read after the
     * generator yielded (a running one has a caller): torn, not a root.
     * With a caller it is an ordinary frame, and a thread's own frame
     * without one is the stack's base. */
    mkframe(win, 0, wlo + FSIZE, 0);
    mkframe(win + FSIZE, 1, 0, 1);
    n = py_stack_walk(&rt, wlo, win, wlo, whi, NULL, out, 16, &truncated);
    CHECK(n == 2 && truncated == PY_TRUNC_BROKEN, "suspended generator: n %d truncated %d", n,
          truncated);
    mkframe(win + FSIZE, 1, wlo + 2 * FSIZE, 1);
    mkframe(win + 2 * FSIZE, 2, 0, 0);
    n = py_stack_walk(&rt, wlo, win, wlo, whi, NULL, out, 16, &truncated);
    CHECK(n == 3 && truncated == 0, "running generator: n %d truncated %d", n, truncated);

    /* Frames outside the window: the first from a side copy (whose address
     * need not be readable), the next read from memory itself (a real
     * frame in this process), each noted in used. */
    static uint8_t real[FSIZE], copy[FSIZE];
    uint64_t fake = 0x10; /* unreadable: only the copy can provide it */
    mkframe(win, 0, fake, 0);
    mkframe(copy, 1, (uint64_t)(uintptr_t)real, 0);
    mkframe(real, 2, 0, 0);
    struct py_side side;
    memset(&side, 0, sizeof side);
    side.n = 1;
    side.addr = &fake;
    side.buf = copy;
    side.stride = FSIZE;
    n = py_stack_walk(&rt, wlo, win, wlo, whi, &side, out, 16, &truncated);
    CHECK(n == 3 && truncated == 0, "side: n %d truncated %d", n, truncated);
    CHECK(out[1].code == 0x2000 && out[2].code == 0x3000, "side frames: %#" PRIx64 " %#" PRIx64,
          out[1].code, out[2].code);
    CHECK(side.nused == 2 && side.used[0] == fake && side.used[1] == (uint64_t)(uintptr_t)real,
          "used: %d", side.nused);
    /* a stack deeper than max keeps its innermost frames: cut at the
     * depth cap, which is no torn read */
    n = py_stack_walk(&rt, wlo, win, wlo, whi, &side, out, 2, &truncated);
    CHECK(n == 2 && truncated == PY_TRUNC_DEPTH && out[1].code == 0x2000,
          "depth cap: n %d truncated %d", n, truncated);
    /* without the copy the unreadable frame ends the walk */
    n = py_stack_walk(&rt, wlo, win, wlo, whi, NULL, out, 16, &truncated);
    CHECK(n == 1 && truncated == PY_TRUNC_BROKEN, "no side: n %d truncated %d", n, truncated);

    /* 3.10 frame objects: f_lasti counts code units, doubled into bytes. A
     * torn f_lasti near INT32_MAX (seen under UBSan while asyncio frames
     * churned) is no offset: -1, never an overflow. */
    rt.minor = 10;
    memset(&rt.L, 0xff, sizeof rt.L);
    rt.L.fo_back = 24;
    rt.L.fo_code = 32;
    rt.L.fo_lasti = 104;
    static uint8_t fo[2][128];
    memset(fo, 0, sizeof fo);
    put64(fo[0], 0, 1); /* reference counts: live frames */
    put64(fo[1], 0, 2);
    put64(fo[0], 24, (uint64_t)(uintptr_t)fo[1]);
    put64(fo[0], 32, 0x5000);
    int32_t lasti = 2115715312;
    memcpy(fo[0] + 104, &lasti, 4);
    put64(fo[1], 32, 0x6000);
    lasti = 21;
    memcpy(fo[1] + 104, &lasti, 4);
    n = py_stack_walk(&rt, (uint64_t)(uintptr_t)fo[0], NULL, 0, 0, NULL, out, 16, &truncated);
    CHECK(n == 2, "3.10 chain: n %d", n);
    CHECK(n == 2 && out[0].addr == -1 && out[0].code == 0x5000, "torn f_lasti: addr %d", out[0].addr);
    CHECK(n == 2 && out[1].addr == 42, "f_lasti 21 units = byte 42: addr %d", out[1].addr);
    /* a freed frame (reference count 0: its f_back is the free list's
     * link) ends the walk as a torn read, the frames inside it kept */
    put64(fo[1], 0, 0);
    n = py_stack_walk(&rt, (uint64_t)(uintptr_t)fo[0], NULL, 0, 0, NULL, out, 16, &truncated);
    CHECK(n == 1 && truncated == PY_TRUNC_BROKEN && out[0].code == 0x5000,
          "freed frame: n %d truncated %d", n, truncated);

    return check_done("frames");
}
