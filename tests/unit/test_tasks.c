/* py_tasks_read on a hand-made process image: Task, weakref, set, str and
 * coroutine objects laid out in this process's own memory with CPython
 * 3.12's layout (and 3.7's: frame objects, tasks without a name), read
 * through the local (checked) memory reader. Good
 * tasks come back whole, across batches; torn memory (unreadable pointers,
 * a cyclic await chain, a chain deeper than the cap, a type that is no
 * task) is skipped or cut short and counted, never a crash or an endless
 * loop; an absurd registry size is refused. */
#include "check.h"

#include "common/err.h"
#include "tracer/cpython/tasklayouts.h"
#include "tracer/cpython/tasks.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define OBJ 1024 /* bytes per fake object */
#define NOBJ 2048
#define BAD 0x10000000000ull /* an address nothing maps in this test */

static const struct py_layout *L;
static const struct py_task_layout *TL;
static uint8_t *heap; /* NOBJ objects of OBJ bytes */
static int used;
/* fake types: the C task type, coroutine, str, weakref, another object */
static uint64_t task_type, coro_type, str_type, wr_type, other_type;

static uint64_t A(const void *p)
{
    return (uint64_t)(uintptr_t)p;
}

static void put64(uint64_t obj, int64_t off, uint64_t v)
{
    memcpy((uint8_t *)(uintptr_t)obj + off, &v, 8);
}

static void put32(uint64_t obj, int64_t off, int32_t v)
{
    memcpy((uint8_t *)(uintptr_t)obj + off, &v, 4);
}

static uint64_t obj_new(uint64_t type)
{
    if (used >= NOBJ)
        abort();
    uint64_t o = A(heap + (size_t)used++ * OBJ);
    memset((void *)(uintptr_t)o, 0, OBJ);
    put64(o, L->ob_type, type);
    return o;
}

static uint64_t str_new(const char *s)
{
    uint64_t o = obj_new(str_type);
    put64(o, L->str_length, strlen(s));
    /* kind 1, compact, ascii (and ready, before 3.12) */
    put32(o, L->str_state, (1 << 2) | (1 << 5) | (1 << 6) | (L->minor < 12 ? 1 << 7 : 0));
    memcpy((uint8_t *)(uintptr_t)o + L->str_ascii_size, s, strlen(s) + 1);
    return o;
}

/* a coroutine suspended in an await of next (0: suspended elsewhere) */
static uint64_t coro_new(uint64_t code, uint64_t next)
{
    uint64_t o = obj_new(coro_type);
    uint64_t fr = o + (uint64_t)L->gi_iframe;
    ((uint8_t *)(uintptr_t)o)[L->gi_frame_state] = (uint8_t)L->fs_suspended_yf;
    put64(fr, L->if_code, code);
    put64(fr, L->if_instr, code + (uint64_t)L->co_code_adaptive + 6);
    put32(fr, L->if_stacktop, 1);
    put64(fr, L->if_localsplus, next);
    return o;
}

/* 3.7: a coroutine named qualname (NULL: its name unreadable) whose frame
 * object runs code, suspended in an await of next (0: elsewhere) */
static uint64_t coro37_new(uint64_t code, const char *qualname, uint64_t next)
{
    uint64_t o = obj_new(coro_type), fr = obj_new(other_type);
    put64(o, L->gi_frame, fr);
    put64(o, L->gi_qualname, qualname ? str_new(qualname) : BAD);
    put64(fr, L->fo_code, code);
    put32(fr, L->fo_lasti, 10);
    put64(fr, 512, next);                /* the top of its value stack */
    put64(fr, L->fo_stacktop, fr + 520); /* set while suspended */
    return o;
}

static uint64_t task37_new(uint64_t coro)
{
    uint64_t o = obj_new(task_type);
    put64(o, TL->fut_loop, 0x1234000);
    put32(o, TL->fut_state, 0);
    put64(o, TL->task_coro, coro);
    return o;
}

static void coro_await(uint64_t coro, uint64_t next)
{
    put64(coro + (uint64_t)L->gi_iframe, L->if_localsplus, next);
}

static uint64_t task_new(const char *name, uint64_t coro)
{
    uint64_t o = obj_new(task_type);
    put64(o, TL->fut_loop, 0x1234000);
    put32(o, TL->fut_state, 0);
    put64(o, TL->task_coro, coro);
    put64(o, TL->task_name, name ? str_new(name) : BAD);
    return o;
}

static uint64_t weak_to(uint64_t target)
{
    uint64_t o = obj_new(wr_type);
    put64(o, L->wr_object, target);
    return o;
}

/* a set object holding keys (in slots 0, 2, 4...) with 2^log2 slots */
static uint64_t *table;
static uint64_t set_new(const uint64_t *keys, int n, int log2)
{
    uint64_t o = obj_new(other_type);
    size_t slots = (size_t)1 << log2;
    table = calloc(slots, 16);
    for (int i = 0; i < n; i++)
        table[4 * i] = keys[i];
    put64(o, L->set_mask, slots - 1);
    put64(o, L->set_table, A(table));
    return o;
}

static uint64_t dict_empty(void)
{
    uint64_t d = obj_new(other_type), k = obj_new(0); /* keys: all zero, no entries */
    if (L->dk_size >= 0)
        put64(k, L->dk_size, 8);
    put64(d, L->dict_keys, k);
    put64(d, L->dict_values, 0);
    return d;
}

static struct py_task out[512];

static int read_all(struct py_runtime *rt, struct py_tasks *c, struct py_tasks_stats *st)
{
    return py_tasks_read(rt, c, NULL, 0, out, 512, st);
}

int main(void)
{
    L = py_layout_for(3, 12);
    TL = py_task_layout_for(3, 12);
    CHECK(L && TL, "no 3.12 layouts");
    if (!L || !TL)
        return check_done("tasks");
    heap = aligned_alloc(64, (size_t)NOBJ * OBJ);
    struct py_runtime rt;
    memset(&rt, 0, sizeof rt);
    mem_init_local(&rt.mem);
    rt.major = 3;
    rt.minor = 12;
    rt.L = *L;
    static uint8_t types[5][OBJ];
    task_type = A(types[0]);
    coro_type = A(types[1]);
    str_type = A(types[2]);
    wr_type = A(types[3]);
    other_type = A(types[4]);
    struct py_tasks c;
    memset(&c, 0, sizeof c);
    c.found = 1;
    c.c_task_type = task_type;
    c.coro_type = coro_type;
    c.gen_type = coro_type;
    c.str_type = str_type;
    c.wr_type = wr_type;
    c.current = dict_empty();
    /* 'other' as a type: no base, not a task (learned without a name read) */
    c.ntypes = 1;
    c.type_addr[0] = other_type;
    c.type_kind[0] = 0;

    /* 1. 150 good tasks, each two coroutines deep: more than one batch */
    uint64_t keys[400];
    int n = 0;
    for (int i = 0; i < 150; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        uint64_t inner = coro_new(0x2000, 0), outer = coro_new(0x1000, inner);
        keys[n++] = weak_to(task_new(name, outer));
    }
    c.all_set = set_new(keys, n, 10);
    struct py_tasks_stats st;
    int got = read_all(&rt, &c, &st);
    CHECK_INT(got, 150);
    CHECK_INT(st.bad, 0);
    CHECK_INT(st.broken, 0);
    int names_ok = 0;
    for (int i = 0; i < got; i++) {
        char want[16];
        snprintf(want, sizeof want, "t%d", i);
        names_ok += strcmp(out[i].name, want) == 0 && out[i].nframes == 2 &&
                    out[i].frames[0].code == 0x2000 && out[i].frames[1].code == 0x1000 &&
                    out[i].frames[0].addr == 6 && out[i].coro_code == 0x1000 && !out[i].truncated;
    }
    CHECK_INT(names_ok, 150);
    free(table);

    /* 2. hostile entries among good ones */
    n = 0;
    uint64_t good = task_new("good", coro_new(0x1000, 0));
    keys[n++] = weak_to(good);
    keys[n++] = BAD;                       /* the weakref itself unreadable: bad */
    keys[n++] = weak_to(BAD);              /* a weakref to nothing readable: bad */
    keys[n++] = weak_to(obj_new(other_type)); /* not a task: skipped, not counted */
    keys[n++] = weak_to(task_new(NULL, coro_new(0x1000, 0))); /* name unreadable: bad */
    uint64_t a = coro_new(0x1000, 0), b = coro_new(0x2000, a);
    coro_await(a, b);                      /* a cycle: a -> b -> a */
    uint64_t cyc = task_new("cycle", a);
    keys[n++] = weak_to(cyc);
    uint64_t deep = 0;
    for (int i = 0; i < 3 * PY_TASK_FRAMES; i++)
        deep = coro_new(0x3000 + (uint64_t)i, deep);
    uint64_t dtask = task_new("deep", deep);
    keys[n++] = weak_to(dtask);
    uint64_t torn = task_new("torn", coro_new(0x1000, BAD)); /* awaits unreadable memory */
    keys[n++] = weak_to(torn);
    uint64_t done = task_new("done", coro_new(0x1000, 0));
    put32(done, TL->fut_state, 2);
    keys[n++] = weak_to(done);             /* finished: left out */
    c.all_set = set_new(keys, n, 5);
    got = read_all(&rt, &c, &st);
    CHECK_INT(got, 4);
    CHECK_INT(st.bad, 3);
    CHECK_INT(st.broken, 2); /* the cycle and the torn chain */
    for (int i = 0; i < got; i++) {
        if (out[i].id == good)
            CHECK(out[i].nframes == 1 && !out[i].truncated, "good: %d", out[i].nframes);
        else if (out[i].id == cyc)
            CHECK(out[i].truncated == PY_TRUNC_BROKEN && out[i].nframes == 2, "cycle: %d %d",
                  out[i].truncated, out[i].nframes);
        else if (out[i].id == dtask)
            CHECK(out[i].truncated == PY_TRUNC_DEPTH && out[i].nframes == PY_TASK_FRAMES,
                  "deep: %d %d", out[i].truncated, out[i].nframes);
        else if (out[i].id == torn)
            CHECK(out[i].truncated == PY_TRUNC_BROKEN && out[i].nframes == 1, "torn: %d %d",
                  out[i].truncated, out[i].nframes);
        else
            CHECK(0, "unexpected task %s", out[i].name);
    }
    /* fewer slots in out than tasks: the rest counted as dropped (a slot
     * taken by a task whose name then proves torn may leave one more out) */
    got = py_tasks_read(&rt, &c, NULL, 0, out, 2, &st);
    CHECK(got >= 1 && got <= 2 && st.dropped >= 2 && got + st.dropped >= 4, "got %d dropped %d",
          got, st.dropped);

    /* 3. absurd registry sizes: refused as a whole, nothing read */
    uint64_t set = c.all_set;
    put64(set, L->set_mask, (1ull << 40) - 1);
    CHECK_INT(read_all(&rt, &c, &st), SE_FAULT);
    put64(set, L->set_mask, 1000); /* not a power of two minus one */
    CHECK_INT(read_all(&rt, &c, &st), SE_FAULT);
    put64(set, L->set_mask, (uint64_t)-1);
    CHECK_INT(read_all(&rt, &c, &st), SE_FAULT);
    put64(set, L->set_mask, 31);
    put64(set, L->set_table, BAD);
    CHECK_INT(read_all(&rt, &c, &st), SE_FAULT);
    free(table);

    /* 4. 3.7: tasks without a name are called by their coroutine's
     * __qualname__; one whose name is torn is left out, one whose
     * coroutine is no coroutine is kept, nameless and without frames */
    L = py_layout_for(3, 7);
    TL = py_task_layout_for(3, 7);
    CHECK(L && TL && TL->task_name < 0 && L->gi_qualname > 0, "3.7 layouts");
    if (!L || !TL) {
        free(heap);
        return check_done("tasks");
    }
    rt.minor = 7;
    rt.L = *L;
    c.current = dict_empty();
    n = 0;
    uint64_t t37 = task37_new(coro37_new(0x1000, "Outer.run", coro37_new(0x2000, "inner", 0)));
    keys[n++] = weak_to(t37);
    keys[n++] = weak_to(task37_new(coro37_new(0x1000, NULL, 0))); /* its name torn: bad */
    uint64_t odd = task37_new(obj_new(other_type));
    keys[n++] = weak_to(odd);
    c.all_set = set_new(keys, n, 3);
    got = read_all(&rt, &c, &st);
    CHECK_INT(got, 2);
    CHECK_INT(st.bad, 1);
    for (int i = 0; i < got; i++) {
        if (out[i].id == t37)
            CHECK(strcmp(out[i].name, "Outer.run") == 0 && out[i].nframes == 2 &&
                      out[i].frames[0].code == 0x2000 && out[i].frames[1].code == 0x1000 &&
                      out[i].frames[0].addr == 10 && out[i].coro_code == 0x1000,
                  "3.7 task: %s %d", out[i].name, out[i].nframes);
        else
            CHECK(out[i].id == odd && !out[i].name[0] && out[i].nframes == 0, "3.7 odd: %s %d",
                  out[i].name, out[i].nframes);
    }
    free(table);
    free(heap);
    return check_done("tasks");
}
