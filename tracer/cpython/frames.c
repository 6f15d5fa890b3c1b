#include "tracer/cpython/frames.h"

#include "common/err.h"
#include "tracer/cpython/objects.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- code cache: open addressing by code object address ---- */

#define FP_SPAN_MAX 256  /* see fingerprint_span */
#define RECHECK_BATCH 512 /* see py_code_recheck */

struct py_codecache {
    struct py_code **slots;
    size_t cap, n;
    struct py_code *dead;
    /* py_code_recheck's scattered read */
    struct py_code *due[RECHECK_BATCH];
    struct mem_iov iov[RECHECK_BATCH];
    uint8_t buf[RECHECK_BATCH][FP_SPAN_MAX];
};

struct py_codecache *py_codecache_new(void)
{
    struct py_codecache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cap = 1024;
    c->slots = calloc(c->cap, sizeof *c->slots);
    if (!c->slots) {
        free(c);
        return NULL;
    }
    return c;
}

static void code_free(struct py_code *co)
{
    if (!co)
        return;
    free(co->name);
    if (co->qualname != co->name)
        free(co->qualname);
    free(co->file);
    free(co->lt);
    free(co);
}

void py_codecache_free(struct py_codecache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->cap; i++)
        code_free(c->slots[i]);
    while (c->dead) {
        struct py_code *d = c->dead;
        c->dead = d->next_dead;
        code_free(d);
    }
    free(c->slots);
    free(c);
}

static size_t slot_of(const struct py_codecache *c, uint64_t addr)
{
    uint64_t h = (addr >> 4) * 0x9e3779b97f4a7c15ull;
    size_t i = (size_t)(h >> 20) & (c->cap - 1);
    while (c->slots[i] && c->slots[i]->addr != addr)
        i = (i + 1) & (c->cap - 1);
    return i;
}

static int cache_put(struct py_codecache *c, struct py_code *co)
{
    if ((c->n + 1) * 2 > c->cap) {
        size_t oldcap = c->cap;
        struct py_code **old = c->slots;
        c->cap *= 2;
        c->slots = calloc(c->cap, sizeof *c->slots);
        if (!c->slots) {
            c->slots = old;
            c->cap = oldcap;
            return -ENOMEM;
        }
        for (size_t i = 0; i < oldcap; i++)
            if (old[i])
                c->slots[slot_of(c, old[i]->addr)] = old[i];
        free(old);
    }
    c->slots[slot_of(c, co->addr)] = co;
    c->n++;
    return 0;
}

/* A live code object: its type is code, and its reference count (the
 * first word of every object) is one a live object has. A freed one keeps
 * its fields for a while, but the allocator writes its own link over the
 * first words (pymalloc: the count; malloc: the type too), and the strings
 * it pointed to may be freed already: read, they gave empty names. */
static int is_code_object(struct py_runtime *rt, uint64_t addr)
{
    uint64_t head[2], type, refcnt;
    if (rt->L.ob_type == 8) { /* the count and the type in one read */
        if (mem_read(&rt->mem, addr, head, sizeof head))
            return 0;
        refcnt = head[0];
        type = head[1];
    } else if (mem_read_ptr(&rt->mem, addr, &refcnt) ||
               mem_read_ptr(&rt->mem, addr + (uint64_t)rt->L.ob_type, &type)) {
        return 0;
    }
    /* (3.14 keeps flags in the word's upper half: the count is its low
     * 32 bits, an immortal object's 3 << 30) */
    if (rt->major == 3 && rt->minor >= 14)
        refcnt = (uint32_t)refcnt;
    if (refcnt == 0 || refcnt >= ((uint64_t)1 << 40))
        return 0;
    if (rt->code_type)
        return type == rt->code_type;
    char name[32];
    if (py_type_name(rt, addr, name, sizeof name) || strcmp(name, "code") != 0)
        return 0;
    rt->code_type = type;
    return 1;
}

static char *read_str_dup(struct py_runtime *rt, uint64_t codeaddr, int64_t off)
{
    uint64_t p;
    char buf[1024];
    if (off < 0 || mem_read_ptr(&rt->mem, codeaddr + (uint64_t)off, &p) || !p ||
        py_str_read(rt, p, buf, sizeof buf))
        return NULL;
    return strdup(buf);
}

/* The three pointers that identify a code object lie within
 * [addr + lo, addr + lo + len) of it. */
static int fingerprint_span(const struct py_layout *L, int64_t offs[3], int64_t *lo, size_t *len)
{
    offs[0] = L->co_name;
    offs[1] = L->co_filename;
    offs[2] = L->co_linetable;
    int64_t hi = offs[0];
    *lo = offs[0];
    for (int k = 1; k < 3; k++) {
        *lo = offs[k] < *lo ? offs[k] : *lo;
        hi = offs[k] > hi ? offs[k] : hi;
    }
    *len = (size_t)(hi + 8 - *lo);
    return *len <= FP_SPAN_MAX ? 0 : -1;
}

/* The three pointers, from a copy of the span. */
static void fingerprint_of(const int64_t offs[3], int64_t lo, const uint8_t *span, uint64_t fp[3])
{
    for (int k = 0; k < 3; k++)
        memcpy(&fp[k], span + (offs[k] - lo), 8);
}

/* Read the three pointers that identify a code object. */
static int fingerprint(struct py_runtime *rt, uint64_t addr, uint64_t fp[3])
{
    int64_t offs[3], lo;
    size_t len;
    uint8_t buf[FP_SPAN_MAX];
    if (fingerprint_span(&rt->L, offs, &lo, &len) || mem_read(&rt->mem, addr + (uint64_t)lo, buf, len))
        return -1;
    fingerprint_of(offs, lo, buf, fp);
    return 0;
}

static const struct py_code *code_decode(struct py_runtime *rt, uint64_t addr);

/* Take the entry in slot i out of the table (kept on the dead list: callers
 * may still hold it), keeping the probe chain intact. */
static void code_retire(struct py_codecache *c, size_t i)
{
    struct py_code *co = c->slots[i];
    c->slots[i] = NULL;
    c->n--;
    for (size_t j = (i + 1) & (c->cap - 1); c->slots[j]; j = (j + 1) & (c->cap - 1)) {
        struct py_code *m = c->slots[j];
        c->slots[j] = NULL;
        c->slots[slot_of(c, m->addr)] = m;
    }
    co->next_dead = c->dead;
    c->dead = co;
}

const struct py_code *py_code_get(struct py_runtime *rt, uint64_t addr)
{
    struct py_codecache *c = rt->codes;
    size_t i = slot_of(c, addr);
    struct py_code *co = c->slots[i];
    if (co) {
        if (!rt->now_ns || rt->now_ns - co->checked_ns < PY_CODE_RECHECK_NS)
            return co;
        uint64_t fp[3];
        if (fingerprint(rt, addr, fp) == 0 && memcmp(fp, co->fp, sizeof fp) == 0) {
            co->checked_ns = rt->now_ns;
            return co;
        }
        /* Another object lives here now: retire the entry, decode afresh. */
        code_retire(c, i);
    }
    return code_decode(rt, addr);
}

/* The cached entry for addr, as it is: no read (the walk looks codes up
 * before py_code_recheck checks them all in one read). */
static const struct py_code *code_peek(const struct py_runtime *rt, uint64_t addr)
{
    struct py_codecache *c = rt->codes;
    return c ? c->slots[slot_of(c, addr)] : NULL;
}

/* Re-check in one scattered read the cached entries among raw that are due
 * (py_code_get would read them one by one): a sampler's tick costs one
 * system call for them instead of one per code object. Entries that no
 * longer match are retired; an entry whose read failed is left for
 * py_code_get to check. */
void py_code_recheck(struct py_runtime *rt, const struct py_rawframe *raw, int n)
{
    struct py_codecache *c = rt->codes;
    int64_t offs[3], lo;
    size_t len;
    if (!rt->now_ns || fingerprint_span(&rt->L, offs, &lo, &len))
        return;
    struct py_code **due = c->due;
    int nd = 0;
    for (int f = 0; f < n && nd < RECHECK_BATCH; f++) {
        struct py_code *co = c->slots[slot_of(c, raw[f].code)];
        if (!co || rt->now_ns - co->checked_ns < PY_CODE_RECHECK_NS || co->recheck_ns == rt->now_ns)
            continue;
        co->recheck_ns = rt->now_ns; /* once per call */
        due[nd] = co;
        c->iov[nd] = (struct mem_iov){ co->addr + (uint64_t)lo, c->buf[nd], len };
        nd++;
    }
    if (!nd || mem_readv(&rt->mem, c->iov, (size_t)nd) != 0)
        return;
    for (int k = 0; k < nd; k++) {
        struct py_code *co = due[k];
        uint64_t fp[3];
        fingerprint_of(offs, lo, c->buf[k], fp);
        if (memcmp(fp, co->fp, sizeof fp) == 0)
            co->checked_ns = rt->now_ns;
        else
            code_retire(c, slot_of(c, co->addr));
    }
}

/* co_flags in PyCodeObject: after the head and the int counts before it
 * (2.7: argcount, nlocals, stacksize; 3.6, 3.7: kwonlyargcount too; 3.8 -
 * 3.10: posonlyargcount too). Only the frame-object walk needs it (3.11+
 * frames say who owns them). -1: not known. */
static int64_t code_flags_offset(const struct py_runtime *rt)
{
    if (rt->major == 2 && rt->minor == 7)
        return 28;
    if (rt->major == 3 && rt->minor >= 6 && rt->minor <= 7)
        return 32;
    if (rt->major == 3 && rt->minor >= 8 && rt->minor <= 10)
        return 36;
    return -1;
}

static const struct py_code *code_decode(struct py_runtime *rt, uint64_t addr)
{
    struct py_codecache *c = rt->codes;
    if (!is_code_object(rt, addr))
        return NULL;
    const struct py_layout *L = &rt->L;
    struct py_code *co = calloc(1, sizeof *co);
    if (!co)
        return NULL;
    co->addr = addr;
    co->ncodebytes = -1;
    co->flags = -1;
    co->framewords = -1;
    /* The object may be freed, or another built at its address, while it
     * is read (a module's <module> code is freed after its import, and the
     * next import's code often lands there): its identity is read before
     * and after the fields, and a read that straddles a change is no read.
     * Without this, fields of one object were kept under the fingerprint
     * of the next, for good: an empty name, a first line of -1971369616. */
    uint64_t fp0[3];
    if (fingerprint(rt, addr, fp0)) {
        code_free(co);
        return NULL;
    }
    co->name = read_str_dup(rt, addr, L->co_name);
    co->file = read_str_dup(rt, addr, L->co_filename);
    co->qualname = L->co_qualname >= 0 ? read_str_dup(rt, addr, L->co_qualname) : co->name;
    if (!co->qualname)
        co->qualname = co->name;
    int32_t first = 0;
    uint64_t lt = 0;
    if (!co->name || !co->file ||
        mem_read(&rt->mem, addr + (uint64_t)L->co_firstlineno, &first, sizeof first) ||
        mem_read_ptr(&rt->mem, addr + (uint64_t)L->co_linetable, &lt) || !lt ||
        py_bytes_read(rt, lt, 1 << 22, &co->lt, &co->ltlen)) {
        code_free(co);
        return NULL;
    }
    co->firstlineno = first;
    co->checked_ns = rt->now_ns;
    int64_t foff = code_flags_offset(rt);
    int32_t flags;
    if (foff >= 0 && !mem_read(&rt->mem, addr + (uint64_t)foff, &flags, sizeof flags) && flags >= 0)
        co->flags = flags;
    if (L->co_code_adaptive >= 0) {
        int64_t units; /* PyCodeObject is a var object: ob_size counts code units */
        if (!mem_read(&rt->mem, addr + 16, &units, sizeof units) && units >= 0 &&
            units < ((int64_t)1 << 40)) /* a torn read is no size */
            co->ncodebytes = units * 2;
    }
    int32_t fw[2];
    if (L->co_framesize >= 0) {
        if (!mem_read(&rt->mem, addr + (uint64_t)L->co_framesize, &fw[0], sizeof fw[0]))
            co->framewords = fw[0];
    } else if (L->co_nlocalsplus >= 0 && L->co_stacksize >= 0 && L->frame_specials > 0 &&
               !mem_read(&rt->mem, addr + (uint64_t)L->co_nlocalsplus, &fw[0], sizeof fw[0]) &&
               !mem_read(&rt->mem, addr + (uint64_t)L->co_stacksize, &fw[1], sizeof fw[1]) &&
               fw[0] >= 0 && fw[1] >= 0 && fw[0] < (1 << 24) && fw[1] < (1 << 24)) {
        co->framewords = fw[0] + fw[1] + (int32_t)L->frame_specials;
    }
    if (co->framewords <= 0 || co->framewords >= (1 << 25))
        co->framewords = -1;
    if (fingerprint(rt, addr, co->fp) || memcmp(fp0, co->fp, sizeof fp0) || first < 0 ||
        !is_code_object(rt, addr)) {
        code_free(co);
        return NULL;
    }
    if (cache_put(c, co)) {
        code_free(co);
        return NULL;
    }
    return co;
}

int py_code_line(const struct py_runtime *rt, const struct py_code *co, int addr)
{
    struct py_code *mut = (struct py_code *)co;
    unsigned k = ((unsigned)addr >> 1) & 15;
    if (co->memo_addr[k] == addr + 1)
        return co->memo_line[k];
    int line = lt_line(lt_format_for(rt->major, rt->minor), co->lt, co->ltlen, co->firstlineno, addr);
    mut->memo_addr[k] = addr + 1; /* 0 means empty */
    mut->memo_line[k] = line;
    return line;
}

/* ---- stack walking ---- */

static int seen_recently(const uint64_t *addrs, int n, uint64_t a)
{
    for (int k = n - 1; k >= 0 && k >= n - 16; k--)
        if (addrs[k] == a)
            return 1;
    return 0;
}

static int64_t rd64(const uint8_t *p)
{
    int64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

size_t py_side_size(const struct py_runtime *rt)
{
    const struct py_layout *L = &rt->L;
    if (L->fo_back >= 0)
        return (size_t)L->fo_lasti + 4;
    return L->if_size > 128 ? 128 : (size_t)L->if_size;
}

/* A frame the walk needs outside the window: the caller's copy from the
 * same batched read when it has one (tried in walk order first), else a
 * read of its own. Either way it is noted in side->used for the next
 * tick. Returns 0 or an error code. */
static int side_frame(struct py_runtime *rt, struct py_side *side, uint64_t frame, uint8_t *local,
                      size_t len, const uint8_t **f)
{
    if (side) {
        int k = side->nused;
        int hit = k < side->n && side->addr[k] == frame ? k : -1;
        for (int i = 0; hit < 0 && i < side->n; i++)
            if (side->addr[i] == frame)
                hit = i;
        if (side->nused < PY_SIDE_MAX)
            side->used[side->nused++] = frame;
        if (hit >= 0) {
            *f = side->buf + (size_t)hit * side->stride;
            return 0;
        }
    }
    int rc = mem_read(&rt->mem, frame, local, len);
    *f = local;
    return rc;
}

/* CO_GENERATOR | CO_COROUTINE | CO_ITERABLE_COROUTINE | CO_ASYNC_GENERATOR */
#define CO_ANY_GENERATOR 0x3a0
/* _PyInterpreterFrame.owner of a generator's or coroutine's frame (3.11+) */
#define FRAME_OWNED_BY_GENERATOR 1

/* 2.7 - 3.10: PyFrameObject chain. */
static int walk_frame_objects(struct py_runtime *rt, uint64_t frame, struct py_side *side,
                              struct py_rawframe *out, int max, int *truncated)
{
    const struct py_layout *L = &rt->L;
    uint64_t addrs[PY_MAX_DEPTH];
    uint8_t buf[256];
    size_t need = py_side_size(rt);
    int n = 0;
    if (max > PY_MAX_DEPTH)
        max = PY_MAX_DEPTH;
    while (frame) {
        if (n >= max || seen_recently(addrs, n, frame)) {
            *truncated = n >= max ? PY_TRUNC_DEPTH : PY_TRUNC_BROKEN;
            break;
        }
        const uint8_t *f;
        int rc = side_frame(rt, side, frame, buf, need, &f);
        if (rc) {
            if (rc == SE_EXITED || rc == SE_PERM)
                return rc;
            *truncated = PY_TRUNC_BROKEN;
            break;
        }
        /* A freed frame (its reference count 0): on the frame free list,
         * whose link is f_back, or a code object's zombie frame. Followed,
         * the chain runs through other threads' freed frames (seen: a
         * thread that had just ended read as handle < _bootstrap <
         * _bootstrap_inner < run < handle ... 50 deep). A torn read. */
        if ((int64_t)rd64(f) <= 0) {
            *truncated = PY_TRUNC_BROKEN;
            break;
        }
        int32_t lasti;
        memcpy(&lasti, f + L->fo_lasti, 4);
        addrs[n] = frame;
        if (side && frame == side->want)
            side->want_seen = 1;
        out[n].code = (uint64_t)rd64(f + L->fo_code);
        out[n].addr = lasti < 0 || (rt->minor == 10 && lasti > INT32_MAX / 2) /* torn */
                          ? -1 : (rt->minor == 10 ? lasti * 2 : lasti);
        out[n].entry = 1; /* one evaluation call per frame object */
        n++;
        frame = (uint64_t)rd64(f + L->fo_back);
    }
    /* A generator's frame that ends the chain was most often read after
     * the generator yielded (f_back is cleared then): its callers are
     * lost. It may also be the bottom of a thread that runs it from C (a
     * server iterating a response); the frame's own state cannot tell: a
     * generator resumed and suspended every few hundred nanoseconds
     * changes while its bytes are copied (f_back read suspended, f_stacktop
     * read running: 6-18 unmarked roots per run), so any is marked. */
    if (!frame && n > 0 && !*truncated && rt->codes) {
        const struct py_code *co = py_code_get(rt, out[n - 1].code);
        if (co && co->flags > 0 && (co->flags & CO_ANY_GENERATOR))
            *truncated = PY_TRUNC_BROKEN;
    }
    rt->walk_bottom = n > 0 ? addrs[n - 1] : 0;
    return n;
}

/* 3.11+: _PyInterpreterFrame chain. Frames of the running thread live in its
 * data-stack chunk: the caller reads that window once, and frames inside it
 * are decoded from the local copy. Others (generators, older chunks, the C
 * stack) come from side or are read one by one. */
/* The bytes frames of code take on the data stack, 0 unknown. fresh: an
 * entry due for its check is checked now (py_code_get), else the cached
 * entry is taken as it is (py_code_recheck checks them all after the walk,
 * in one read); a code not cached yet is decoded, as it would be for the
 * sample anyway. */
static uint64_t code_frame_bytes(struct py_runtime *rt, uint64_t code, int fresh)
{
    if (!rt->codes)
        return 0;
    const struct py_code *co = fresh ? py_code_get(rt, code) : code_peek(rt, code);
    if (!co && !fresh)
        co = code_decode(rt, code);
    return co && co->framewords > 0 ? (uint64_t)co->framewords * sizeof(uint64_t) : 0;
}

/* Frames with a code per frame, and at most this many between a frame and
 * its caller (frame_follows). */
#define FOLLOW_GAP_MAX 4

/* Does frame f, whose caller is p (running code pcode), stand where
 * CPython pushed it? A frame is pushed at the data stack's top: right where
 * its caller's frame ends, or past frames still there but not on the chain:
 * a frame being cleared while a finalizer its locals set off runs (the
 * thread's current frame is its caller by then), or one handed to a PEP 523
 * evaluation hook before it was linked. Each such frame keeps its code
 * until it is gone. A frame read after it returned, from a pointer read
 * before (its caller's slot holding another frame since), does not stand
 * there. 0 when it does not; 1 when it does or nothing tells. Both frames
 * are in the window [wlo, whi) (one chunk). */
static int frame_follows(struct py_runtime *rt, const uint8_t *window, uint64_t wlo,
                         uint64_t whi, size_t fsize, uint64_t f, uint64_t p, uint64_t pcode)
{
    const struct py_layout *L = &rt->L;
    uint64_t size = code_frame_bytes(rt, pcode, 0);
    if (!size)
        return 1;
    if (p + size == f)
        return 1;
    /* (rare from here: the entries are checked, and each gap frame read) */
    size = code_frame_bytes(rt, pcode, 1);
    if (!size)
        return 1;
    uint64_t q = p + size;
    for (int k = 0; k < FOLLOW_GAP_MAX && q < f; k++) {
        if (q < wlo || q >= whi || whi - q < fsize)
            return 0;
        uint64_t c = (uint64_t)rd64(window + (q - wlo) + L->if_code) & ~(uint64_t)7;
        uint64_t s = c ? code_frame_bytes(rt, c, 1) : 0;
        if (!s)
            return 0;
        q += s;
    }
    return q == f;
}

static int walk_interp_frames(struct py_runtime *rt, uint64_t frame, const uint8_t *window,
                              uint64_t wlo, uint64_t whi, struct py_side *side,
                              struct py_rawframe *out, int max, int *truncated)
{
    const struct py_layout *L = &rt->L;
    uint64_t addrs[PY_MAX_DEPTH];
    if (max > PY_MAX_DEPTH)
        max = PY_MAX_DEPTH;
    if (!window)
        wlo = whi = 0;
    size_t fsize = py_side_size(rt);
    uint8_t local[128];
    int n = 0, steps = 0, stale = 0;
    uint64_t above = 0; /* the last frame kept, when it is in the window */
    while (frame) {
        /* (skipped shim frames count no frame: a cycle of them, from stale
         * C-stack bytes, must end too) */
        if (++steps > 4 * PY_MAX_DEPTH) {
            *truncated = PY_TRUNC_BROKEN;
            break;
        }
        if (n >= max || seen_recently(addrs, n, frame)) {
            *truncated = n >= max ? PY_TRUNC_DEPTH : PY_TRUNC_BROKEN;
            break;
        }
        const uint8_t *f;
        /* (a torn pointer near 2^64 must not wrap around into the window) */
        int in_window = frame >= wlo && frame < whi && whi - frame >= fsize;
        if (in_window) {
            f = window + (frame - wlo);
        } else {
            int rc = side_frame(rt, side, frame, local, fsize, &f);
            if (rc) {
                if (rc == SE_EXITED || rc == SE_PERM)
                    return rc;
                *truncated = PY_TRUNC_BROKEN;
                break;
            }
        }
        uint64_t prev = (uint64_t)rd64(f + L->if_previous);
        int owner = f[L->if_owner];
        /* 3.14's f_executable is a _PyStackRef: a tag in its low bits */
        uint64_t code = (uint64_t)rd64(f + L->if_code) & ~(uint64_t)7;
        /* FRAME_OWNED_BY_CSTACK: the C stack shim (3.12, 3.13: 3); 3.14
         * numbers it 4 after FRAME_OWNED_BY_INTERPRETER (3), also no code */
        int shim = owner == 3 || (rt->minor >= 14 && owner == 4);
        if (shim && rt->minor == 12 && code && code != rt->shim_code && rt->codes) {
            const struct py_code *co = py_code_get(rt, code);
            if (co && co->name && strcmp(co->name, "<interpreter trampoline>") == 0)
                rt->shim_code = code;
        }
        /* A shim lives on the C stack of the call that entered the
         * interpreter: read after that call returned, its bytes may be
         * another function's, its code still the shim's (3.12's shims
         * share one code object, "<interpreter trampoline>", learnt from
         * the first shim that said its owner; 3.13's have none). */
        if (shim || (code && code == rt->shim_code)) {
            if (n > 0)
                out[n - 1].entry = 1; /* the first frame that call ran */
            frame = prev;
            continue;
        }
        /* A frame is pushed on the data stack right where its caller's
         * ends. One that is not (both in the window, one chunk) was read
         * after it returned, from a pointer read before: its caller's slot
         * now holds another frame (a thread ending: "handle" above
         * "Thread._delete", which took "run"'s place). The frames above are
         * dropped and the walk goes on from the frame there now; the stack
         * counts as torn, to be read again. */
        if (in_window && above && !rt->held && code &&
            !frame_follows(rt, window, wlo, whi, fsize, above, frame, code)) {
            stale = 1;
            n = 0;
            if (side)
                side->want_seen = 0;
        }
        above = in_window ? frame : 0;
        uint64_t instr = (uint64_t)rd64(f + L->if_instr);
        int64_t off = (int64_t)(instr - (code + (uint64_t)L->co_code_adaptive));
        addrs[n] = frame;
        if (side && frame == side->want)
            side->want_seen = 1;
        out[n].code = code;
        out[n].addr = off >= 0 && off < (1 << 30) ? (int32_t)off : -1;
        out[n].entry = L->if_is_entry >= 0 && f[L->if_is_entry] != 0; /* 3.11 */
        n++;
        if (!prev && owner == FRAME_OWNED_BY_GENERATOR) {
            /* a suspended generator's frame (its `previous` is cleared at
             * each yield): read after it yielded, its callers are lost */
            *truncated = PY_TRUNC_BROKEN;
            break;
        }
        frame = prev;
    }
    if (stale) /* (even when the rest reached the depth cap: its top is gone) */
        *truncated = PY_TRUNC_BROKEN;
    rt->walk_bottom = n > 0 ? addrs[n - 1] : 0;
    return n;
}

void py_stack_source(const struct py_runtime *rt, const uint8_t *ts, struct py_stack_src *src)
{
    const struct py_layout *L = &rt->L;
    memset(src, 0, sizeof *src);
    if (L->fo_back >= 0) {
        src->frame = (uint64_t)rd64(ts + L->ts_frame);
        return;
    }
    if (L->ts_cframe >= 0) {
        uint64_t cframe = (uint64_t)rd64(ts + L->ts_cframe);
        if (!cframe)
            return; /* no Python frames */
        src->frame_ptr = cframe + (uint64_t)L->cframe_current_frame;
    } else {
        src->frame = (uint64_t)rd64(ts + L->ts_frame);
    }
    if (L->ts_datastack_chunk >= 0 && L->ts_datastack_top >= 0) {
        uint64_t chunk = (uint64_t)rd64(ts + L->ts_datastack_chunk);
        uint64_t top = (uint64_t)rd64(ts + L->ts_datastack_top);
        uint64_t base = chunk + (uint64_t)L->chunk_data;
        if (chunk && top > base && top - base <= PY_STACK_WINDOW) {
            src->win_lo = base;
            src->win_hi = top;
        }
    }
}

int py_stack_walk(struct py_runtime *rt, uint64_t frame, const uint8_t *window, uint64_t wlo,
                  uint64_t whi, struct py_side *side, struct py_rawframe *out, int max,
                  int *truncated)
{
    *truncated = 0;
    rt->walk_bottom = 0;
    if (side) {
        side->nused = 0;
        side->want_seen = 0;
    }
    if (rt->L.fo_back >= 0)
        return walk_frame_objects(rt, frame, side, out, max, truncated);
    return walk_interp_frames(rt, frame, window, wlo, whi, side, out, max, truncated);
}

static int stack_read(struct py_runtime *rt, uint64_t tstate, const uint8_t *tsbuf,
                      struct py_side *side, struct py_rawframe *out, int max, int *truncated);

int py_stack_read(struct py_runtime *rt, uint64_t tstate, const uint8_t *tsbuf,
                  struct py_rawframe *out, int max, int *truncated)
{
    return stack_read(rt, tstate, tsbuf, NULL, out, max, truncated);
}

int py_stack_read_side(struct py_runtime *rt, uint64_t tstate, struct py_side *side,
                       struct py_rawframe *out, int max, int *truncated)
{
    side->n = 0;
    return stack_read(rt, tstate, NULL, side, out, max, truncated);
}

static int stack_read(struct py_runtime *rt, uint64_t tstate, const uint8_t *tsbuf,
                      struct py_side *side, struct py_rawframe *out, int max, int *truncated)
{
    static __thread uint8_t window[PY_STACK_WINDOW];
    uint8_t ts[PY_TSBUF];
    *truncated = 0;
    if (!tsbuf) {
        int rc = mem_read(&rt->mem, tstate, ts, sizeof ts);
        if (rc)
            return rc;
        tsbuf = ts;
    }
    struct py_stack_src src;
    py_stack_source(rt, tsbuf, &src);
    if (src.frame_ptr) {
        int rc = mem_read_ptr(&rt->mem, src.frame_ptr, &src.frame);
        if (rc)
            return rc;
    }
    if (side)
        side->want_seen = 0;
    if (!src.frame)
        return 0;
    const uint8_t *w = NULL;
    if (src.win_hi && mem_read(&rt->mem, src.win_lo, window, src.win_hi - src.win_lo) == 0)
        w = window;
    return py_stack_walk(rt, src.frame, w, src.win_lo, src.win_hi, side, out, max, truncated);
}
