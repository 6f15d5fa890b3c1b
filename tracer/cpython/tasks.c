/* asyncio tasks read from outside (see tasks.h). */
#include "tracer/cpython/tasks.h"

#include "tracer/cpython/tasks_impl.h"

#include <errno.h>
#include <stdio.h>

/* ---- types ---- */

/* Does the type at type have tp_name name? Learns *cache on a match. */
int tk_type_is(struct py_runtime *rt, uint64_t type, uint64_t *cache, const char *name,
                   const char *alt)
{
    if (*cache)
        return type == *cache;
    uint64_t np;
    char buf[64];
    if (mem_read_ptr(&rt->mem, type + (uint64_t)rt->L.tp_name, &np) ||
        mem_read(&rt->mem, np, buf, 32))
        return 0;
    buf[32] = 0;
    if (strcmp(buf, name) == 0 || (alt && strcmp(buf, alt) == 0)) {
        *cache = type;
        return 1;
    }
    return 0;
}

/* 1: a C task type (or subclass), 2: a pure-Python one, 0: neither,
 * negative: unreadable. Remembered per type address. */
int tk_task_kind(struct py_runtime *rt, struct py_tasks *c, uint64_t type)
{
    for (int i = 0; i < c->ntypes; i++)
        if (c->type_addr[i] == type)
            return c->type_kind[i];
    int kind = 0;
    uint64_t t = type;
    for (int d = 0; t && d < BASE_DEPTH; d++) {
        if (c->c_task_type && t == c->c_task_type) {
            kind = 1;
            break;
        }
        if (c->py_task_type && t == c->py_task_type) {
            kind = 2;
            break;
        }
        int rc = mem_read_ptr(&rt->mem, t + (uint64_t)rt->L.tp_base, &t);
        if (rc)
            return rc;
    }
    if (c->ntypes < PY_TASK_TYPES) {
        c->type_addr[c->ntypes] = type;
        c->type_kind[c->ntypes++] = kind;
    }
    return kind;
}

/* Is type that of a coroutine or a generator (whose frames a chain shows)? */
int tk_is_gen_type(struct py_runtime *rt, struct py_tasks *c, uint64_t type)
{
    if (type == c->coro_type || type == c->gen_type)
        return 1;
    for (int i = 0; i < c->nother; i++)
        if (c->other_type[i] == type)
            return 0;
    if ((!c->coro_type && tk_type_is(rt, type, &c->coro_type, "coroutine", NULL)) ||
        (!c->gen_type && tk_type_is(rt, type, &c->gen_type, "generator", NULL)))
        return 1;
    if (c->nother < 8)
        c->other_type[c->nother++] = type;
    return 0;
}

/* ---- small dicts, without allocating ---- */

/* Up to SMALL_DICT (key, value) pairs of the dict at dict. Count or < 0. */
static int small_dict(struct py_runtime *rt, uint64_t dict, uint64_t *keys, uint64_t *vals)
{
    const struct py_layout *L = &rt->L;
    uint64_t kp, vp;
    int rc = mem_read_ptr(&rt->mem, dict + (uint64_t)L->dict_keys, &kp);
    if (!rc)
        rc = mem_read_ptr(&rt->mem, dict + (uint64_t)L->dict_values, &vp);
    if (rc)
        return rc;
    if (!kp)
        return SE_FAULT;
    uint8_t hdr[64];
    if ((rc = mem_read(&rt->mem, kp, hdr, sizeof hdr)))
        return rc;
    int64_t nent;
    memcpy(&nent, hdr + L->dk_nentries, 8);
    uint64_t entries;
    size_t esize = 24;
    if (L->dk_size >= 0) {
        int64_t size;
        memcpy(&size, hdr + L->dk_size, 8);
        if (size <= 0 || size > (1 << 26) || (size & (size - 1)))
            return SE_FAULT;
        int ix = size <= 0xff ? 1 : size <= 0xffff ? 2 : size <= 0xffffffffLL ? 4 : 8;
        entries = kp + (uint64_t)L->dk_indices + (uint64_t)(size * ix);
    } else {
        int lix = hdr[L->dk_log2_index_bytes];
        if (hdr[L->dk_log2_size] > 26 || lix > 30)
            return SE_FAULT;
        entries = kp + (uint64_t)L->dk_indices + (1ull << lix);
        esize = hdr[L->dk_kind] == 0 ? 24 : 16;
    }
    if (nent < 0 || nent > (1 << 26))
        return SE_FAULT;
    int n = nent > SMALL_DICT ? SMALL_DICT : (int)nent;
    if (!n)
        return 0;
    uint8_t ebuf[SMALL_DICT * 24];
    uint64_t vbuf[SMALL_DICT];
    if ((rc = mem_read(&rt->mem, entries, ebuf, (size_t)n * esize)))
        return rc;
    if (vp && (rc = mem_read(&rt->mem, vp + (uint64_t)L->dv_values, vbuf, (size_t)n * 8)))
        return rc;
    int k = 0;
    for (int i = 0; i < n; i++) {
        const uint8_t *e = ebuf + (size_t)i * esize + (esize == 24 ? 8 : 0);
        uint64_t key = rdp(e), val = vp ? vbuf[i] : rdp(e + 8);
        if (key && val) {
            keys[k] = key;
            vals[k++] = val;
        }
    }
    return k;
}

/* ---- finding the registries ---- */

static int module_dict(struct py_runtime *rt, uint64_t modules, const char *name, uint64_t *md)
{
    uint64_t mod = 0;
    *md = 0;
    int rc = py_dict_get_str(rt, modules, name, &mod);
    if (rc || !mod)
        return rc;
    return mem_read_ptr(&rt->mem, mod + (uint64_t)rt->L.mod_dict, md);
}

/* The set of weakrefs inside the WeakSet ws (0: none). */
static int weakset_data(struct py_runtime *rt, uint64_t ws, uint64_t *set)
{
    *set = 0;
    return ws ? py_obj_attr(rt, ws, "data", set) : 0;
}

/* 3.6: the C Task's registries (statics of _asyncio: its symbol table),
 * the pure-Python Task's (class attributes) and the threading.local that
 * holds each thread's running loop. */
static int find_36(struct py_runtime *rt, struct py_tasks *c, const struct py_task_layout *TL,
                   uint64_t modules)
{
    uint64_t ws = 0, pyset = 0, at, emd = 0, rl = 0;
    int rc;
    if (c->py_task_type &&
        ((rc = py_obj_attr(rt, c->py_task_type, "_all_tasks", &ws)) ||
         (rc = weakset_data(rt, ws, &pyset)) ||
         (rc = py_obj_attr(rt, c->py_task_type, "_current_tasks", &c->current2))))
        return rc;
    if (c->c_task_type) {
        if ((rc = py_runtime_module_symbol(rt, "_asyncio", "all_tasks", &at)))
            return rc == -ENOENT ? SE_UNSUPPORTED : rc;
        if ((rc = mem_read_ptr(&rt->mem, at, &ws)) || (rc = weakset_data(rt, ws, &c->all_set)))
            return rc;
        if ((rc = py_runtime_module_symbol(rt, "_asyncio", "current_tasks", &at)))
            return rc == -ENOENT ? SE_UNSUPPORTED : rc;
        if ((rc = mem_read_ptr(&rt->mem, at, &c->current)))
            return rc;
        if (!c->all_set || !c->current)
            return SE_FAULT; /* the module is still being initialized */
        c->all_set2 = pyset;
    } else {
        c->all_set = pyset;
        c->current = c->current2;
        c->current2 = 0;
    }
    if ((rc = module_dict(rt, modules, "asyncio.events", &emd)) ||
        (emd && (rc = py_dict_get_str(rt, emd, "_running_loop", &rl))) ||
        (rl && (rc = mem_read_ptr(&rt->mem, rl + (uint64_t)TL->tl_key, &c->tl_key))))
        return rc;
    return c->all_set && c->tl_key ? 0 : SE_FAULT;
}

int py_tasks_find(struct py_runtime *rt, struct py_tasks *c)
{
    const struct py_task_layout *TL = py_task_layout_for(rt->major, rt->minor);
    if (!TL)
        return SE_UNSUPPORTED;
    uint64_t interp = py_runtime_main_interp(rt), modules = 0, md = 0, ws = 0;
    c->found = 0;
    if (!interp)
        return SE_FAULT;
    int rc = mem_read_ptr(&rt->mem, interp + (uint64_t)rt->L.is_modules, &modules);
    if (rc || !modules)
        return rc; /* no modules (not yet, or finalizing: the tasks go with them) */
    if ((rc = module_dict(rt, modules, "asyncio.tasks", &md)) || !md)
        return rc; /* not imported: nothing to read yet */
    if ((rc = py_dict_get_str(rt, md, "_PyTask", &c->py_task_type)) ||
        (rc = py_dict_get_str(rt, md, "_GatheringFuture", &c->gather_type)))
        return rc;
    uint64_t amd = 0;
    if ((rc = module_dict(rt, modules, "_asyncio", &amd)))
        return rc;
    if (amd && (rc = py_dict_get_str(rt, amd, "Task", &c->c_task_type)))
        return rc;
    if (!c->py_task_type && !c->c_task_type)
        return SE_FAULT;
    int v312 = rt->minor >= 12;
    if (TL->tl_key >= 0) {
        if ((rc = find_36(rt, c, TL, modules)))
            return rc;
    } else {
        if ((rc = py_dict_get_str(rt, md, v312 ? "_scheduled_tasks" : "_all_tasks", &ws)) ||
            (rc = weakset_data(rt, ws, &c->all_set)))
            return rc;
        if (!c->all_set)
            return SE_FAULT;
        if (v312 && (rc = py_dict_get_str(rt, md, "_eager_tasks", &c->eager_set)))
            return rc;
        if ((rc = py_dict_get_str(rt, md, "_current_tasks", &c->current)))
            return rc;
    }
    if (!c->current)
        return SE_FAULT;
    c->ntypes = 0; /* kinds depend on the types just found */
    c->found = 1;
    return 0;
}

/* ---- one task ---- */

/* 3.6: the loop thread t runs, from its entry of the threading.local
 * asyncio.events._running_loop: a dict whose "loop_pid" is (loop, pid).
 * (The pid, which asyncio compares with os.getpid() against a loop left
 * over by fork, is not checked: in a container it is not our pid.) */
static uint64_t thread_loop_36(struct py_runtime *rt, struct py_tasks *c,
                               const struct py_task_layout *TL, const struct py_thread *t)
{
    const struct py_layout *L = &rt->L;
    uint64_t dict, dummy = 0, ld, tuple = 0, keys[SMALL_DICT], vals[SMALL_DICT];
    if (mem_read_ptr(&rt->mem, t->tstate + (uint64_t)L->ts_dict, &dict) || !dict)
        return 0;
    int n = small_dict(rt, dict, keys, vals);
    for (int i = 0; i < n && !dummy; i++)
        if (keys[i] == c->tl_key)
            dummy = vals[i];
    if (!dummy || mem_read_ptr(&rt->mem, dummy + (uint64_t)TL->tl_dict, &ld) || !ld)
        return 0;
    n = small_dict(rt, ld, keys, vals);
    for (int i = 0; i < n && !tuple; i++) {
        char s[16];
        if (c->lp_key)
            tuple = keys[i] == c->lp_key ? vals[i] : 0;
        else if (py_str_read(rt, keys[i], s, sizeof s) == 0 && strcmp(s, "loop_pid") == 0) {
            c->lp_key = keys[i]; /* an interned attribute name */
            tuple = vals[i];
        }
    }
    /* PyTupleObject: PyObject_VAR_HEAD, then its items */
    uint64_t tw[4];
    if (!tuple || mem_read(&rt->mem, tuple, tw, sizeof tw) || tw[2] != 2)
        return 0;
    return tw[3];
}

/* The loop thread t runs, or 0. */
static uint64_t thread_loop(struct py_runtime *rt, struct py_tasks *c,
                            const struct py_task_layout *TL, const struct py_thread *t)
{
    const struct py_layout *L = &rt->L;
    uint64_t v = 0;
    if (c->tl_key)
        return thread_loop_36(rt, c, TL, t);
    if (L->ts_asyncio_loop >= 0) {
        if (mem_read_ptr(&rt->mem, t->tstate + (uint64_t)L->ts_asyncio_loop, &v))
            return 0;
        return v;
    }
    uint64_t dict, keys[SMALL_DICT], vals[SMALL_DICT];
    if (mem_read_ptr(&rt->mem, t->tstate + (uint64_t)L->ts_dict, &dict) || !dict)
        return 0;
    int n = small_dict(rt, dict, keys, vals);
    for (int i = 0; i < n && !v; i++) {
        if (c->rl_key) {
            if (keys[i] == c->rl_key)
                v = vals[i];
            continue;
        }
        char s[64];
        if (py_str_read(rt, keys[i], s, sizeof s) == 0 &&
            strcmp(s, "__asyncio_running_event_loop__") == 0) {
            c->rl_key = keys[i]; /* interned by the interpreter for its life */
            v = vals[i];
        }
    }
    if (v && TL->rl_loop >= 0 && mem_read_ptr(&rt->mem, v + (uint64_t)TL->rl_loop, &v))
        return 0;
    return v;
}

/* What get_name() returns for a name object: a str, or the int N of a C
 * task not asked yet ("Task-N", 3.12+). */
int tk_read_name(struct py_runtime *rt, struct py_tasks *c, uint64_t obj, char *out,
                     size_t len)
{
    uint64_t type, n;
    out[0] = 0;
    if (!obj)
        return 0;
    int rc = mem_read_ptr(&rt->mem, obj + (uint64_t)rt->L.ob_type, &type);
    if (rc)
        return rc;
    if (tk_type_is(rt, type, &c->str_type, "str", NULL))
        return py_str_read(rt, obj, out, len);
    if (tk_type_is(rt, type, &c->int_type, "int", NULL)) {
        if ((rc = py_long_read(rt, obj, &n)))
            return rc;
        snprintf(out, len, "Task-%llu", (unsigned long long)n);
        return 0;
    }
    return SE_FAULT;
}

/* The name of a task before 3.8 (tasks had none): its coroutine's
 * __qualname__; "" when the coroutine is not a coroutine or a generator. */
int tk_coro_name(struct py_runtime *rt, struct py_tasks *c, uint64_t coro, char *out, size_t len)
{
    const struct py_layout *L = &rt->L;
    uint64_t type, q = 0;
    out[0] = 0;
    if (!coro || L->gi_qualname < 0)
        return 0;
    int rc = mem_read_ptr(&rt->mem, coro + (uint64_t)L->ob_type, &type);
    if (rc || !tk_is_gen_type(rt, c, type))
        return rc;
    if ((rc = mem_read_ptr(&rt->mem, coro + (uint64_t)L->gi_qualname, &q)))
        return rc;
    return q ? py_str_read(rt, q, out, len) : SE_FAULT;
}

/* Add the tasks waiter stands for (a task, or a gather of them) to
 * t->awaits. */
void tk_add_awaits(struct py_runtime *rt, struct py_tasks *c, struct py_task *t,
                       uint64_t waiter, int depth)
{
    uint64_t type;
    if (!waiter || depth > GATHER_DEPTH ||
        mem_read_ptr(&rt->mem, waiter + (uint64_t)rt->L.ob_type, &type))
        return;
    if (tk_task_kind(rt, c, type) > 0) {
        if (t->nawaits < PY_TASK_AWAITS)
            t->awaits[t->nawaits++] = waiter;
        return;
    }
    if (!c->gather_type || type != c->gather_type)
        return;
    uint64_t list, items;
    int64_t size;
    const struct py_layout *L = &rt->L;
    if (py_obj_attr(rt, waiter, "_children", &list) || !list ||
        mem_read(&rt->mem, list + (uint64_t)L->list_size, &size, 8) ||
        mem_read_ptr(&rt->mem, list + (uint64_t)L->list_items, &items) || size <= 0 || !items)
        return;
    uint64_t kids[PY_TASK_AWAITS];
    int n = size > PY_TASK_AWAITS ? PY_TASK_AWAITS : (int)size;
    if (mem_read(&rt->mem, items, kids, (size_t)n * 8))
        return;
    for (int i = 0; i < n && t->nawaits < PY_TASK_AWAITS; i++)
        tk_add_awaits(rt, c, t, kids[i], depth + 1);
}

#define TG_SLOTS 1024 /* slots of a TaskGroup's _tasks set read at most */

/* A task suspended in TaskGroup.__aexit__ (3.11+) awaits the group's
 * children: its waiter is the group's _on_completed_fut, and the group is
 * `self` of that frame, the first local of the innermost coroutine inner
 * (whose code is code). Its pending children are the group's _tasks set.
 * Each step is checked (the code's name and file, self's type name, the
 * waiter being that very future), so a torn read adds nothing; the set is
 * read TG_SLOTS slots at most. */
void tk_tg_awaits(struct py_runtime *rt, struct py_tasks *c, struct py_task *t, uint64_t waiter,
                      uint64_t code, uint64_t inner)
{
    const struct py_layout *L = &rt->L;
    if (L->gi_iframe < 0 || !waiter || !code || !inner || t->nawaits)
        return;
    if (code != c->tg_code) {
        const struct py_code *co = py_code_get(rt, code);
        size_t fl = co && co->file ? strlen(co->file) : 0;
        if (!co || !co->qualname || strcmp(co->qualname, "TaskGroup.__aexit__") != 0 || fl < 14 ||
            strcmp(co->file + fl - 14, "/taskgroups.py") != 0)
            return;
        c->tg_code = code;
    }
    uint64_t self, type, fut = 0, set = 0, table;
    int64_t mask;
    if (mem_read_ptr(&rt->mem, inner + (uint64_t)(L->gi_iframe + L->if_localsplus), &self) ||
        !self || mem_read_ptr(&rt->mem, self + (uint64_t)L->ob_type, &type) ||
        !tk_type_is(rt, type, &c->tg_type, "TaskGroup", NULL) ||
        py_obj_attr(rt, self, "_on_completed_fut", &fut) || fut != waiter ||
        py_obj_attr(rt, self, "_tasks", &set) || !set ||
        mem_read(&rt->mem, set + (uint64_t)L->set_mask, &mask, 8) ||
        mem_read_ptr(&rt->mem, set + (uint64_t)L->set_table, &table) || !table || mask < 0 ||
        (uint64_t)mask >= SET_MAX_SLOTS || ((mask + 1) & mask))
        return;
    uint64_t ent[64 * 2], types[64];
    struct mem_iov iov[64];
    int idx[64];
    for (int64_t at = 0; at <= mask && at < TG_SLOTS && t->nawaits < PY_TASK_AWAITS; at += 64) {
        int64_t k = mask + 1 - at < 64 ? mask + 1 - at : 64;
        if (mem_read(&rt->mem, table + (uint64_t)at * 16, ent, (size_t)k * 16))
            return;
        int n = 0;
        for (int64_t i = 0; i < k; i++)
            if (ent[2 * i]) {
                idx[n] = (int)i;
                iov[n] = (struct mem_iov){ ent[2 * i] + (uint64_t)L->ob_type, &types[n], 8 };
                n++;
            }
        if (n && mem_readv(&rt->mem, iov, (size_t)n))
            return;
        for (int j = 0; j < n && t->nawaits < PY_TASK_AWAITS; j++)
            if (tk_task_kind(rt, c, types[j]) > 0) /* else the set's dummy */
                t->awaits[t->nawaits++] = ent[2 * idx[j]];
    }
}


/* How much of a chain object to read in one go: enough for its type and,
 * if a generator, its frame (3.11+: embedded, with the first slots of its
 * locals and value stack, where the awaited object usually sits). */
size_t tk_gen_span(const struct py_layout *L)
{
    if (L->gi_frame >= 0)
        return (size_t)L->gi_frame + 8;
    int64_t want = L->gi_iframe + L->if_localsplus + 8 * 24;
    return want > GEN_READ ? GEN_READ : (size_t)want;
}

/* A pointer at obj + off: from g (the first glen bytes of obj) when it
 * holds it, else read. */
static int gen_ptr(struct py_runtime *rt, uint64_t obj, const uint8_t *g, size_t glen, uint64_t off,
                   uint64_t *v)
{
    if (off + 8 <= glen) {
        *v = rdp(g + off);
        return 0;
    }
    return mem_read_ptr(&rt->mem, obj + off, v);
}

/* 3.8 - 3.10: bytes of a frame object to read for a chain level. */
size_t tk_frame_span(const struct py_layout *L)
{
    int64_t hi = L->fo_lasti;
    int64_t more[5] = { L->fo_code, L->fo_valuestack, L->fo_stacktop, L->fo_stackdepth,
                        L->fo_state };
    for (int k = 0; k < 5; k++)
        hi = more[k] > hi ? more[k] : hi;
    return (size_t)hi + 8;
}

/* 3.8 - 3.10: the frame f from the bytes b of a frame object, and in *at
 * the address of the top of its value stack when it is suspended (what it
 * awaits sits there), else 0. */
void tk_frame_level(struct py_runtime *rt, const uint8_t *b, struct py_rawframe *f,
                        uint64_t *at)
{
    const struct py_layout *L = &rt->L;
    int32_t lasti = rd32(b + L->fo_lasti);
    *at = 0;
    f->entry = 0;
    f->code = rdp(b + L->fo_code);
    f->addr = lasti < 0 || (rt->minor == 10 && lasti > INT32_MAX / 2) /* torn */
                          ? -1 : (rt->minor == 10 ? lasti * 2 : lasti);
    if (lasti < 0)
        return; /* not started */
    if (L->fo_stacktop >= 0) {
        uint64_t top = rdp(b + L->fo_stacktop);
        if (top)
            *at = top - 8;
    } else if ((int8_t)b[L->fo_state] == L->fs_suspended) {
        int32_t depth = rd32(b + L->fo_stackdepth);
        uint64_t vs = rdp(b + L->fo_valuestack);
        if (depth > 0 && depth < (1 << 20))
            *at = vs + (uint64_t)(depth - 1) * 8;
    }
}

/* One level of a chain: the frame of generator/coroutine obj (whose first
 * glen bytes are in g) and what it awaits (0 if nothing, or not suspended
 * in an await). 1 with a frame, 0 at the end of the chain, < 0 on a torn
 * read. */
int tk_chain_level(struct py_runtime *rt, uint64_t obj, const uint8_t *g, size_t glen,
                       struct py_rawframe *f, uint64_t *yf)
{
    const struct py_layout *L = &rt->L;
    int rc = 0;
    *yf = 0;
    if (L->gi_frame >= 0) { /* 3.8 - 3.10: a frame object */
        uint8_t b[256];
        uint64_t frame, at;
        size_t flen = tk_frame_span(L);
        if ((rc = gen_ptr(rt, obj, g, glen, (uint64_t)L->gi_frame, &frame)))
            return rc;
        if (!frame)
            return 0; /* finished */
        if (flen > sizeof b || (rc = mem_read(&rt->mem, frame, b, flen)))
            return rc ? rc : SE_FAULT;
        tk_frame_level(rt, b, f, &at);
        if (at && (rc = mem_read_ptr(&rt->mem, at, yf)))
            return rc;
        return 1;
    }
    /* 3.11+: the frame is embedded in the generator */
    if ((size_t)(L->gi_iframe + L->if_size) > glen || L->gi_frame_state < 0 || (size_t)L->gi_frame_state >= glen)
        return SE_FAULT;
    int state = (int8_t)g[L->gi_frame_state];
    const uint8_t *fr = g + L->gi_iframe;
    if (state > 0)
        return 0; /* completed or cleared */
    f->entry = 0;
    f->code = rdp(fr + L->if_code);
    int64_t off = (int64_t)(rdp(fr + L->if_instr) - (f->code + (uint64_t)L->co_code_adaptive));
    f->addr = off >= 0 && off < (1 << 30) ? (int32_t)off : -1;
    if (state == L->fs_suspended_yf) {
        int32_t top = rd32(fr + L->if_stacktop);
        uint64_t slot = (uint64_t)(L->gi_iframe + L->if_localsplus) + (uint64_t)(top - 1) * 8;
        if (top > 0 && top < (1 << 20) && (rc = gen_ptr(rt, obj, g, glen, slot, yf)))
            return rc;
    }
    return 1;
}

/* The chain of a suspended task: from its coroutine down what each level
 * awaits; stored innermost first. One read per level in the common case. */
static int read_chain(struct py_runtime *rt, struct py_tasks *c, struct py_task *t,
                      uint64_t *inner)
{
    struct py_rawframe tmp[PY_TASK_FRAMES];
    uint64_t objs[PY_TASK_FRAMES];
    uint8_t g[GEN_READ];
    size_t span = tk_gen_span(&rt->L);
    int n = 0;
    for (uint64_t obj = t->coro; obj;) {
        uint64_t yf;
        size_t glen = span;
        int rc = mem_read(&rt->mem, obj, g, glen);
        if (rc && !gone(rc)) { /* a small object at the end of a mapping */
            glen = 16;
            rc = mem_read(&rt->mem, obj, g, glen);
        }
        if (rc) {
            if (gone(rc))
                return rc;
            t->truncated = PY_TRUNC_BROKEN;
            break;
        }
        if (!tk_is_gen_type(rt, c, rdp(g + rt->L.ob_type)))
            break;
        if (n >= PY_TASK_FRAMES) {
            t->truncated = PY_TRUNC_DEPTH;
            break;
        }
        for (int k = 0; k < n; k++)
            if (objs[k] == obj)
                rc = SE_FAULT; /* a cycle: torn */
        if (!rc)
            rc = tk_chain_level(rt, obj, g, glen, &tmp[n], &yf);
        if (rc < 0) {
            if (gone(rc))
                return rc;
            t->truncated = PY_TRUNC_BROKEN;
            break;
        }
        if (rc == 0)
            break;
        if (n == 0)
            t->coro_code = tmp[0].code;
        objs[n++] = obj;
        obj = yf;
    }
    for (int i = 0; i < n; i++)
        t->frames[i] = tmp[n - 1 - i];
    t->nframes = n;
    *inner = n ? objs[n - 1] : 0;
    return 0;
}

/* The fields of the task at obj (of kind 1 C or 2 Python): 1 if it is a
 * live (pending) task, 0 if done, < 0 unreadable. */
static int read_fields(struct py_runtime *rt, struct py_tasks *c, const struct py_task_layout *TL,
                       uint64_t obj, int kind, const uint8_t *b, struct py_task *t,
                       uint64_t *waiter)
{
    int rc;
    uint64_t name = 0;
    if (kind == 1) {
        if (rd32(b + TL->fut_state) != 0)
            return 0;
        t->loop = rdp(b + TL->fut_loop);
        t->coro = rdp(b + TL->task_coro);
        *waiter = rdp(b + TL->task_fut_waiter);
        name = TL->task_name >= 0 ? rdp(b + TL->task_name) : 0;
    } else {
        uint64_t state = 0;
        char s[16];
        if (TL->py_c_future) {
            if (rd32(b + TL->fut_state) != 0)
                return 0;
            t->loop = rdp(b + TL->fut_loop);
        } else {
            /* _state stays the class's "PENDING" until the instance sets its own */
            if ((rc = py_obj_attr(rt, obj, "_state", &state)) ||
                (state && (rc = py_str_read(rt, state, s, sizeof s))))
                return rc;
            if (state && strcmp(s, "PENDING") != 0)
                return 0;
            if ((rc = py_obj_attr(rt, obj, "_loop", &t->loop)))
                return rc;
        }
        if ((rc = py_obj_attr(rt, obj, "_coro", &t->coro)) ||
            (rc = py_obj_attr(rt, obj, "_fut_waiter", waiter)) ||
            (TL->task_name >= 0 && (rc = py_obj_attr(rt, obj, "_name", &name))))
            return rc;
        t->python = 1;
    }
    if (!t->loop)
        return SE_FAULT;
    rc = TL->task_name >= 0 ? tk_read_name(rt, c, name, t->name, sizeof t->name)
                            : tk_coro_name(rt, c, t->coro, t->name, sizeof t->name);
    return rc ? rc : 1;
}

/* ---- the whole read ---- */


/* Consider the object at obj (a task, or not): 0, or SE_EXITED/SE_PERM. */
int tk_consider(struct reader *r, uint64_t obj, int dedup)
{
    struct py_runtime *rt = r->rt;
    uint8_t b[256];
    size_t len = py_task_span(r->TL);
    uint64_t waiter = 0;
    if (dedup)
        for (int i = 0; i < r->n; i++)
            if (r->out[i].id == obj)
                return 0;
    int rc = mem_read(&rt->mem, obj, b, len);
    int kind = rc ? rc : tk_task_kind(rt, r->c, rdp(b + rt->L.ob_type));
    if (kind < 0 && !gone(kind)) { /* a small object near the end of a mapping */
        uint64_t type;
        rc = mem_read_ptr(&rt->mem, obj + (uint64_t)rt->L.ob_type, &type);
        kind = rc ? rc : tk_task_kind(rt, r->c, type);
        if (kind == 1 || (kind == 2 && r->TL->py_c_future)) /* b is needed */
            kind = SE_FAULT;
    }
    if (gone(kind))
        return kind;
    if (kind <= 0) {
        r->st->bad += kind < 0; /* kind 0: not a task (a dead weak reference: None) */
        return 0;
    }
    if (r->n >= r->max) {
        r->st->dropped++;
        return 0;
    }
    struct py_task *t = &r->out[r->n];
    memset(t, 0, offsetof(struct py_task, frames));
    t->id = obj;
    t->thread = -1;
    rc = read_fields(rt, r->c, r->TL, obj, kind, b, t, &waiter);
    if (gone(rc))
        return rc;
    if (rc <= 0) {
        r->st->bad += rc < 0;
        return 0;
    }
    for (int i = 0; i < r->nthreads; i++)
        if (r->loops[i] == t->loop) {
            t->thread = i;
            t->tid = r->threads[i].tid;
            t->running = r->cur[i] == obj;
            break;
        }
    uint64_t inner;
    tk_add_awaits(rt, r->c, t, waiter, 0);
    if ((rc = read_chain(rt, r->c, t, &inner)))
        return rc;
    if (!t->running && t->nframes)
        tk_tg_awaits(rt, r->c, t, waiter, t->frames[0].code, inner);
    if (t->running)
        t->nframes = 0; /* its frames are its thread's: py_task_running_depth */
    r->st->broken += t->truncated == PY_TRUNC_BROKEN;
    r->n++;
    r->st->read++;
    return 0;
}

/* The (loop, running task) pairs of _current_tasks (and on 3.6 of the
 * pure-Python Task's too), at most 2 * SMALL_DICT. Count or < 0. */
static int current_pairs(struct py_runtime *rt, struct py_tasks *c, uint64_t *k, uint64_t *v)
{
    int n = small_dict(rt, c->current, k, v);
    if (n >= 0 && c->current2) {
        int n2 = small_dict(rt, c->current2, k + n, v + n);
        n = n2 < 0 ? n2 : n + n2;
    }
    return n;
}

/* The loop each of threads[0..n) runs and the task running on it (0:
 * none). 0 or a read error. */
static int thread_loops(struct py_runtime *rt, struct py_tasks *c, const struct py_task_layout *TL,
                        const struct py_thread *threads, int n, uint64_t *loops, uint64_t *cur)
{
    uint64_t ck[2 * SMALL_DICT], cv[2 * SMALL_DICT];
    int nc = current_pairs(rt, c, ck, cv);
    if (nc < 0)
        return nc;
    for (int i = 0; i < n; i++) {
        loops[i] = thread_loop(rt, c, TL, &threads[i]);
        cur[i] = 0;
        for (int k = 0; loops[i] && k < nc; k++)
            if (ck[k] == loops[i])
                cur[i] = cv[k];
    }
    return 0;
}

int py_tasks_read(struct py_runtime *rt, struct py_tasks *c, const struct py_thread *threads,
                  int nthreads, struct py_task *out, int max, struct py_tasks_stats *st)
{
    memset(st, 0, sizeof *st);
    const struct py_task_layout *TL = py_task_layout_for(rt->major, rt->minor);
    if (!TL || !c->found)
        return TL ? 0 : SE_UNSUPPORTED;
    if (nthreads > PY_MAX_THREADS)
        nthreads = PY_MAX_THREADS;
    uint64_t loops[PY_MAX_THREADS], cur[PY_MAX_THREADS];
    int rc = thread_loops(rt, c, TL, threads, nthreads, loops, cur);
    if (rc)
        return rc;
    struct reader r = { rt, c, TL, threads, nthreads, loops, cur, out, max, 0, st };
    rc = tk_read_set(&r, c->all_set, 1, 0);
    if (!rc && c->all_set2)
        rc = tk_read_set(&r, c->all_set2, 1, 1);
    if (!rc && c->eager_set)
        rc = tk_read_set(&r, c->eager_set, 0, 1);
    return rc ? rc : r.n;
}

int py_modules_count(struct py_runtime *rt, uint64_t *dict, int64_t *n)
{
    *n = 0;
    int rc = 0;
    if (!*dict) {
        uint64_t interp = py_runtime_main_interp(rt);
        if (!interp)
            return SE_FAULT;
        rc = mem_read_ptr(&rt->mem, interp + (uint64_t)rt->L.is_modules, dict);
        if (rc || !*dict)
            return rc;
    }
    if ((rc = mem_read(&rt->mem, *dict + (uint64_t)rt->L.dict_used, n, 8)))
        *dict = 0;
    return rc;
}

int py_tasks_count(struct py_runtime *rt, struct py_tasks *c, int64_t *n)
{
    *n = 0;
    if (!c->found)
        return 0;
    /* PySetObject: fill, used, mask: `used` sits right before the mask */
    uint64_t sets[3] = { c->all_set, c->all_set2, c->eager_set };
    for (int i = 0; i < 3; i++) {
        int64_t used;
        if (!sets[i])
            continue;
        int rc = mem_read(&rt->mem, sets[i] + (uint64_t)rt->L.set_mask - 8, &used, 8);
        if (rc)
            return rc;
        if (used < 0 || used > (int64_t)SET_MAX_SLOTS)
            return SE_FAULT; /* torn */
        *n += used;
    }
    return 0;
}

int py_tasks_current(struct py_runtime *rt, struct py_tasks *c, uint64_t *loops, uint64_t *tasks,
                     int max)
{
    if (!c->found)
        return 0;
    uint64_t k[2 * SMALL_DICT], v[2 * SMALL_DICT];
    int n = current_pairs(rt, c, k, v);
    if (n < 0)
        return n;
    if (n > max)
        n = max;
    memcpy(loops, k, (size_t)n * sizeof *loops);
    memcpy(tasks, v, (size_t)n * sizeof *tasks);
    return n;
}

int py_tasks_version(struct py_runtime *rt, struct py_tasks *c, uint64_t *v)
{
    *v = 0;
    /* PyDictObject: head, ma_used, then ma_version_tag (3.6 added it; 3.14
     * made it a watcher tag that no longer counts changes) */
    if (!c->found || !c->current || rt->major != 3 || rt->minor < 6 || rt->minor > 13)
        return 0;
    uint64_t dicts[2] = { c->current, c->current2 };
    for (int i = 0; i < 2; i++) {
        uint64_t tag;
        if (!dicts[i])
            continue;
        int rc = mem_read(&rt->mem, dicts[i] + (uint64_t)rt->L.dict_used + 8, &tag, 8);
        if (rc)
            return rc;
        *v = *v * 0x9e3779b97f4a7c15ull + tag;
    }
    return 1;
}

int py_task_read_one(struct py_runtime *rt, struct py_tasks *c, const struct py_thread *threads,
                     int nthreads, uint64_t obj, struct py_task *out, struct py_tasks_stats *st)
{
    memset(st, 0, sizeof *st);
    const struct py_task_layout *TL = py_task_layout_for(rt->major, rt->minor);
    if (!TL || !c->found)
        return TL ? 0 : SE_UNSUPPORTED;
    if (nthreads > PY_MAX_THREADS)
        nthreads = PY_MAX_THREADS;
    uint64_t loops[PY_MAX_THREADS], cur[PY_MAX_THREADS];
    int rc = thread_loops(rt, c, TL, threads, nthreads, loops, cur);
    if (rc)
        return rc;
    struct reader r = { rt, c, TL, threads, nthreads, loops, cur, out, 1, 0, st };
    rc = tk_consider(&r, obj, 0);
    return rc ? rc : r.n;
}

int py_task_running_depth(const struct py_task *t, const struct py_rawframe *stack, int n)
{
    if (!t->coro_code)
        return 0;
    for (int i = n - 1; i >= 0; i--)
        if (stack[i].code == t->coro_code)
            return i + 1;
    return 0;
}
