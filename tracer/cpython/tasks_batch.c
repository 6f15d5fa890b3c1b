/* asyncio tasks read from outside (see tasks.h): the batch reader, many
 * tasks per scattered read. */
#include "tracer/cpython/tasks_impl.h"

#include <stdio.h>

/* ---- reading many tasks at once ----
 *
 * A scan of thousands of tasks is made of the same few reads per task: the
 * Task object, its name, what it waits on, each coroutine of its chain.
 * They are done a batch of tasks at a time, one scattered read
 * (mem_readv) per step for the whole batch: all Task objects, then all
 * names, then all waiters' types, then the chains level by level. A piece
 * that fails alone (an object at the end of a mapping, a torn pointer) is
 * read again on its own, or its task goes the one-by-one way (consider),
 * so a batch never drops a task a single read would have kept. */

#define BATCH 64                 /* tasks read together */
#define NAME_READ 64             /* characters of a name read with its header */

/* Read every piece; where the scattered read fails, read each piece alone
 * and clear ok[i] for those that fail. SE_EXITED / SE_PERM, else 0. */
static int readv_each(struct py_runtime *rt, struct mem_iov *iov, int n, uint8_t *ok)
{
    for (int i = 0; i < n; i++)
        ok[i] = 1;
    if (n == 0)
        return 0;
    int rc = mem_readv(&rt->mem, iov, (size_t)n);
    if (!rc || gone(rc))
        return rc;
    for (int i = 0; i < n; i++) {
        rc = mem_read(&rt->mem, iov[i].addr, iov[i].buf, iov[i].len);
        if (gone(rc))
            return rc;
        ok[i] = rc == 0;
    }
    return 0;
}

/* The name at obj whose first len bytes are in b, decoded without another
 * read when they hold it. 1 done, 0 read it the slow way. */
static int name_from(struct py_runtime *rt, struct py_tasks *c, const uint8_t *b, size_t len,
                     char *out, size_t outlen)
{
    const struct py_layout *L = &rt->L;
    uint64_t type = rdp(b + L->ob_type);
    if (c->str_type && type == c->str_type) {
        int64_t n, off;
        int kind;
        if (py_str_header(L, b, &n, &kind, &off) || off < 0)
            return 0;
        if (n > PY_NAME_MAX)
            n = PY_NAME_MAX; /* enough characters to fill out */
        if ((size_t)off + (size_t)n * (size_t)kind > len)
            return 0;
        py_str_to_utf8(b + off, (size_t)n, kind, out, outlen);
        return 1;
    }
    if (c->int_type && type == c->int_type) { /* Task-N (3.12+), as py_long_read */
        if (L->long_digit < 0 || L->long_size < 0 || (size_t)L->long_digit + 12 > len ||
            (size_t)L->long_size + 8 > len)
            return 0;
        int64_t tag, nd;
        memcpy(&tag, b + L->long_size, 8);
        if (L->long_tagged) {
            if ((tag & 3) == 2)
                return 0;
            nd = (int64_t)((uint64_t)tag >> 3);
        } else {
            nd = tag;
        }
        if (nd < 0 || nd > 3)
            return 0;
        uint32_t d[3] = { 0, 0, 0 };
        memcpy(d, b + L->long_digit, (size_t)nd * 4);
        uint64_t v = (uint64_t)d[0] | ((uint64_t)d[1] << 30) | ((uint64_t)d[2] << 60);
        snprintf(out, outlen, "Task-%llu", (unsigned long long)v);
        return 1;
    }
    return 0; /* a type not learned yet: the slow way learns it */
}

struct slot {
    uint64_t obj, name, waiter, at; /* at: the chain object to read next */
    uint64_t frame;                 /* 3.8 - 3.10: its frame object to read next */
    int keep;                       /* still a task to return */
    int nobj;
    struct py_task *t;
};

/* 3.8 - 3.10: one chain level of every task of the batch whose
 * coroutine was read (x->frame set): all frame objects in one read, then
 * all value-stack tops in another; sets x->at to what each awaits. */
static int old_frames(struct py_runtime *rt, struct slot *sl, int m, uint8_t (*fbuf)[GEN_READ])
{
    struct mem_iov iov[BATCH];
    uint8_t ok[BATCH];
    int idx[BATCH], k = 0, rc;
    uint64_t top[BATCH], at[BATCH];
    size_t flen = tk_frame_span(&rt->L);
    if (flen > GEN_READ)
        return SE_FAULT;
    for (int i = 0; i < m; i++)
        if (sl[i].frame) {
            idx[k] = i;
            iov[k] = (struct mem_iov){ sl[i].frame, fbuf[i], flen };
            k++;
        }
    if ((rc = readv_each(rt, iov, k, ok)))
        return rc;
    int nt = 0;
    int tidx[BATCH];
    for (int j = 0; j < k; j++) {
        struct slot *x = &sl[idx[j]];
        x->frame = 0;
        if (!ok[j]) {
            x->t->truncated = PY_TRUNC_BROKEN;
            continue;
        }
        struct py_rawframe *f = &x->t->frames[x->nobj];
        tk_frame_level(rt, fbuf[idx[j]], f, &at[j]);
        if (x->nobj == 0)
            x->t->coro_code = f->code;
        x->nobj++;
        if (at[j]) {
            tidx[nt] = idx[j];
            iov[nt] = (struct mem_iov){ at[j], &top[nt], 8 };
            nt++;
        }
    }
    if ((rc = readv_each(rt, iov, nt, ok)))
        return rc;
    for (int j = 0; j < nt; j++) {
        struct slot *x = &sl[tidx[j]];
        if (ok[j])
            x->at = top[j];
        else
            x->t->truncated = PY_TRUNC_BROKEN;
    }
    return 0;
}

/* Read the candidate objects objs[0..n) (tasks or not) into r->out. */
static int read_batch(struct reader *r, const uint64_t *objs, int n, int dedup)
{
    struct py_runtime *rt = r->rt;
    const struct py_layout *L = &rt->L;
    const struct py_task_layout *TL = r->TL;
    struct slot sl[BATCH];
    struct mem_iov iov[BATCH];
    uint8_t ok[BATCH];
    uint8_t obuf[BATCH][256];
    uint8_t gbuf[BATCH][GEN_READ];
    uint64_t chain[BATCH][PY_TASK_FRAMES];
    size_t olen = py_task_span(TL);
    int rc, m = 0;
    if (olen > sizeof obuf[0])
        return SE_FAULT;
    for (int i = 0; i < n; i++) {
        int dup = 0;
        for (int k = 0; dedup && k < r->n && !dup; k++)
            dup = r->out[k].id == objs[i];
        if (!dup)
            sl[m++] = (struct slot){ .obj = objs[i] };
    }
    /* the objects */
    for (int i = 0; i < m; i++)
        iov[i] = (struct mem_iov){ sl[i].obj, obuf[i], olen };
    if ((rc = readv_each(rt, iov, m, ok)))
        return rc;
    int nt = 0; /* tasks kept so far, placed at r->out[r->n + ...] */
    for (int i = 0; i < m; i++) {
        int kind = ok[i] ? tk_task_kind(rt, r->c, rdp(obuf[i] + L->ob_type)) : -1;
        if (gone(kind))
            return kind;
        if (kind == 0)
            continue; /* not a task (a dead weak reference: None) */
        if (kind != 1) { /* a Python task, or a short read: one by one */
            if (r->n + nt >= r->max) {
                r->st->dropped++;
                continue;
            }
            /* tk_consider() appends at r->n: after the batch's tasks so far */
            int before = r->n;
            r->n += nt;
            rc = tk_consider(r, sl[i].obj, 0);
            int added = r->n - before - nt;
            r->n = before;
            if (rc)
                return rc;
            if (added) { /* complete; counted again below */
                r->st->read--;
                sl[i].t = &r->out[before + nt++];
                sl[i].keep = 2;
            }
            continue;
        }
        const uint8_t *b = obuf[i];
        if (rd32(b + TL->fut_state) != 0)
            continue; /* done */
        if (r->n + nt >= r->max) {
            r->st->dropped++;
            continue;
        }
        struct py_task *t = &r->out[r->n + nt++];
        memset(t, 0, offsetof(struct py_task, frames));
        t->id = sl[i].obj;
        t->thread = -1;
        t->loop = rdp(b + TL->fut_loop);
        t->coro = rdp(b + TL->task_coro);
        sl[i].waiter = rdp(b + TL->task_fut_waiter);
        sl[i].name = TL->task_name >= 0 ? rdp(b + TL->task_name) : 0;
        sl[i].t = t;
        sl[i].keep = 1;
        if (!t->loop) {
            r->st->bad++;
            sl[i].keep = 0;
        }
    }
    /* names: header and first characters in one go */
    size_t nlen = (size_t)L->str_compact_size + 8 + NAME_READ;
    if (nlen > sizeof gbuf[0])
        nlen = sizeof gbuf[0];
    int k = 0;
    int idx[BATCH];
    for (int i = 0; i < m; i++)
        if (sl[i].keep == 1 && sl[i].name) {
            idx[k] = i;
            iov[k++] = (struct mem_iov){ sl[i].name, gbuf[i], nlen };
        }
    if ((rc = readv_each(rt, iov, k, ok)))
        return rc;
    for (int j = 0; j < k; j++) {
        struct slot *x = &sl[idx[j]];
        if (ok[j] && name_from(rt, r->c, gbuf[idx[j]], nlen, x->t->name, sizeof x->t->name))
            continue;
        rc = tk_read_name(rt, r->c, x->name, x->t->name, sizeof x->t->name);
        if (gone(rc))
            return rc;
        if (rc) {
            r->st->bad++;
            x->keep = 0;
        }
    }
    /* before 3.8 (no names): each coroutine's __qualname__ */
    for (int i = 0; TL->task_name < 0 && i < m; i++) {
        if (sl[i].keep != 1)
            continue;
        rc = tk_coro_name(rt, r->c, sl[i].t->coro, sl[i].t->name, sizeof sl[i].t->name);
        if (gone(rc))
            return rc;
        if (rc) {
            r->st->bad++;
            sl[i].keep = 0;
        }
    }
    /* what each waits on: a task, a gather of tasks, or another future */
    uint64_t wtype[BATCH];
    k = 0;
    for (int i = 0; i < m; i++)
        if (sl[i].keep == 1 && sl[i].waiter) {
            idx[k] = i;
            iov[k] = (struct mem_iov){ sl[i].waiter + (uint64_t)L->ob_type, &wtype[k], 8 };
            k++;
        }
    if ((rc = readv_each(rt, iov, k, ok)))
        return rc;
    for (int j = 0; j < k; j++) {
        struct slot *x = &sl[idx[j]];
        if (!ok[j])
            continue;
        int kind = tk_task_kind(rt, r->c, wtype[j]);
        if (gone(kind))
            return kind;
        if (kind > 0)
            x->t->awaits[x->t->nawaits++] = x->waiter;
        else if (r->c->gather_type && wtype[j] == r->c->gather_type)
            tk_add_awaits(rt, r->c, x->t, x->waiter, 0);
    }
    /* the chains, one level of every task at a time */
    size_t span = tk_gen_span(L);
    int old = L->gi_frame >= 0;
    for (int i = 0; i < m; i++)
        if (sl[i].keep == 1)
            sl[i].at = sl[i].t->coro;
    for (;;) {
        k = 0;
        for (int i = 0; i < m; i++)
            if (sl[i].keep == 1 && sl[i].at) {
                idx[k] = i;
                iov[k++] = (struct mem_iov){ sl[i].at, gbuf[i], span };
            }
        if (!k)
            break;
        if ((rc = readv_each(rt, iov, k, ok)))
            return rc;
        for (int j = 0; j < k; j++) {
            struct slot *x = &sl[idx[j]];
            struct py_task *t = x->t;
            uint64_t obj = x->at, yf = 0;
            size_t glen = span;
            x->at = 0;
            if (!ok[j]) { /* a small object at the end of a mapping */
                glen = 16;
                rc = mem_read(&rt->mem, obj, gbuf[idx[j]], glen);
                if (gone(rc))
                    return rc;
                if (rc) {
                    t->truncated = PY_TRUNC_BROKEN;
                    continue;
                }
            }
            const uint8_t *g = gbuf[idx[j]];
            if (!tk_is_gen_type(rt, r->c, rdp(g + L->ob_type)))
                continue;
            if (x->nobj >= PY_TASK_FRAMES) {
                t->truncated = PY_TRUNC_DEPTH;
                continue;
            }
            rc = 0;
            for (int q = 0; q < x->nobj; q++)
                if (chain[idx[j]][q] == obj)
                    rc = SE_FAULT; /* a cycle: torn */
            if (!rc && old && glen == span) {
                /* its frame object is read below, with the others */
                x->frame = rdp(g + L->gi_frame);
                if (x->frame) {
                    chain[idx[j]][x->nobj] = obj;
                    x->at = 0;
                }
                continue;
            }
            if (!rc)
                rc = tk_chain_level(rt, obj, g, glen, &t->frames[x->nobj], &yf);
            if (gone(rc))
                return rc;
            if (rc < 0) {
                t->truncated = PY_TRUNC_BROKEN;
                continue;
            }
            if (rc == 0)
                continue;
            if (x->nobj == 0)
                t->coro_code = t->frames[0].code;
            chain[idx[j]][x->nobj++] = obj;
            x->at = yf;
        }
        if (old && (rc = old_frames(rt, sl, m, gbuf)))
            return rc;
    }
    /* place them, keep them in order */
    int w = r->n;
    for (int i = 0; i < m; i++) {
        struct slot *x = &sl[i];
        if (!x->keep)
            continue;
        struct py_task *t = x->t;
        if (x->keep == 1) {
            for (int a = 0, b = x->nobj - 1; a < b; a++, b--) { /* innermost first */
                struct py_rawframe f = t->frames[a];
                t->frames[a] = t->frames[b];
                t->frames[b] = f;
            }
            t->nframes = x->nobj;
            for (int q = 0; q < r->nthreads; q++)
                if (r->loops[q] == t->loop) {
                    t->thread = q;
                    t->tid = r->threads[q].tid;
                    t->running = r->cur[q] == t->id;
                    break;
                }
            if (t->running)
                t->nframes = 0; /* its frames are its thread's: py_task_running_depth */
            else if (t->nframes)
                tk_tg_awaits(rt, r->c, t, x->waiter, t->frames[0].code, chain[i][x->nobj - 1]);
            r->st->broken += t->truncated == PY_TRUNC_BROKEN;
        }
        if (&r->out[w] != t)
            memmove(&r->out[w], t, sizeof *t);
        w++;
        r->st->read++;
    }
    r->n = w;
    return 0;
}

/* Every live key of the set at set: a weakref to a task (weak = 1) or a
 * task. */
int tk_read_set(struct reader *r, uint64_t set, int weak, int dedup)
{
    struct py_runtime *rt = r->rt;
    const struct py_layout *L = &rt->L;
    int64_t mask;
    uint64_t table;
    int rc = mem_read(&rt->mem, set + (uint64_t)L->set_mask, &mask, 8);
    if (!rc)
        rc = mem_read_ptr(&rt->mem, set + (uint64_t)L->set_table, &table);
    if (rc)
        return rc;
    if (mask < 0 || (uint64_t)mask >= SET_MAX_SLOTS || ((mask + 1) & mask) || !table)
        return SE_FAULT;
    uint64_t ent[SET_CHUNK * 2], objs[BATCH], keys[BATCH], hdr[BATCH][3];
    struct mem_iov iov[BATCH];
    uint8_t ok[BATCH];
    int nobjs = 0;
    if (L->wr_object < 0 || L->wr_object / 8 >= 3)
        return SE_UNSUPPORTED;
    for (int64_t at = 0; at <= mask; at += SET_CHUNK) {
        int64_t k = mask + 1 - at < SET_CHUNK ? mask + 1 - at : SET_CHUNK;
        if ((rc = mem_read(&rt->mem, table + (uint64_t)at * 16, ent, (size_t)k * 16)))
            return rc; /* the table was freed by a resize: read again */
        for (int64_t i = 0; i < k;) {
            /* up to BATCH keys; weak references read in one go */
            int nk = 0;
            for (; i < k && nk < BATCH; i++)
                if (ent[2 * i]) {
                    keys[nk] = ent[2 * i];
                    iov[nk] = (struct mem_iov){ keys[nk], hdr[nk], sizeof hdr[0] };
                    nk++;
                }
            r->st->seen += nk;
            if (weak && (rc = readv_each(rt, iov, nk, ok)))
                return rc;
            for (int j = 0; j < nk; j++) {
                uint64_t obj = keys[j];
                if (weak) {
                    if (!ok[j]) {
                        r->st->bad++;
                        continue;
                    }
                    if (!tk_type_is(rt, hdr[j][1], &r->c->wr_type, "weakref.ReferenceType", "weakref"))
                        continue; /* the set's dummy (a removed entry) */
                    obj = hdr[j][L->wr_object / 8];
                }
                objs[nobjs++] = obj;
                if (nobjs == BATCH) {
                    if ((rc = read_batch(r, objs, nobjs, dedup)))
                        return rc;
                    nobjs = 0;
                }
            }
        }
    }
    return nobjs ? read_batch(r, objs, nobjs, dedup) : 0;
}

