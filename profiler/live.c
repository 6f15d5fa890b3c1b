#include "profiler/live.h"

#include "common/err.h"
#include "common/grow.h"
#include "common/hmap.h"
#include "common/strtab.h"
#include "profiler/calltree.h"
#include "tracer/native/unwind.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct live {
    struct sample_queue *q;
    pthread_t thread;
    pthread_mutex_t mu;
    struct live_header h;
    struct live_thread *threads; size_t nthreads, capthreads; /* by id */
    uint32_t next_id;      /* the last thread id given */
    struct live_thread ended; /* sums of the threads dropped */
    int64_t now_ts;        /* the newest sampler timestamp seen (not reset) */
    int64_t swept_ts;      /* when ended threads were last looked for */
    struct live_green *greens; size_t ngreens, capgreens;
    struct ct_grow tree;   /* the call tree, costs by (ct_lane, node) */
    struct hmap by_code;   /* code pointer -> func id */
    struct hmap by_tid;    /* (pid, tid) -> index in threads + 1 (not for threads whose end was seen) */
    struct hmap by_green;  /* green id -> index in greens + 1 */
    struct ct_cost *fself, *ftotal; size_t capflat; /* snapshot scratch, by func */
    int oom;
};

/* The thread (pid, tid), created if new; NULL without memory (or ids).
 * The pointer is good until the next thread is created or threads are
 * dropped. */
static struct live_thread *thread_of(struct live *l, int pid, int tid)
{
    uint64_t *v = hmap_get(&l->by_tid, (uint64_t)pid, (uint64_t)tid);
    if (v)
        return &l->threads[*v - 1];
    if (l->next_id + 1 >= LIVE_ENDED_ID ||
        grow_array((void **)&l->threads, &l->capthreads, l->nthreads + 1, sizeof *l->threads) ||
        hmap_put(&l->by_tid, (uint64_t)pid, (uint64_t)tid, l->nthreads + 1))
        return NULL;
    struct live_thread *t = &l->threads[l->nthreads++];
    memset(t, 0, sizeof *t);
    t->id = ++l->next_id;
    t->pid = pid;
    t->tid = tid;
    t->last_ts = l->now_ts;
    return t;
}

static uint32_t thread_id_of(struct live *l, int pid, int tid)
{
    struct live_thread *t = thread_of(l, pid, tid);
    return t ? t->id : 0;
}

static void saw_ts(struct live *l, int64_t ts)
{
    if (ts > l->now_ts)
        l->now_ts = ts;
}

/* The thread (pid, tid) ended at ts: marked, and no longer the one a
 * sample of (pid, tid) goes to (the kernel reuses tids). */
static void thread_end(struct live *l, int pid, int tid, int64_t ts)
{
    uint64_t *v = hmap_get(&l->by_tid, (uint64_t)pid, (uint64_t)tid);
    if (!v)
        return;
    struct live_thread *t = &l->threads[*v - 1];
    t->ended = 2;
    t->ended_ts = ts;
    hmap_del(&l->by_tid, (uint64_t)pid, (uint64_t)tid);
}

static void sum_thread(struct live_thread *into, const struct live_thread *t)
{
    into->samples += t->samples;
    into->wall_ns += t->wall_ns;
    into->cpu_ns += t->cpu_ns;
    for (int k = 0; k < STATE_COUNT; k++)
        into->state_ns[k] += t->state_ns[k];
}

/* Lanes of dropped threads (marked by a 0 id in drop_map) go to
 * LIVE_ENDED_ID, green thread and suspended bits kept. */
struct drop_ctx {
    struct hmap gone; /* thread id -> 1 */
};

static uint64_t drop_map(void *ctx, uint64_t lane)
{
    struct drop_ctx *d = ctx;
    if (!hmap_get(&d->gone, lane & CT_LANE_THREAD_MASK, 0))
        return lane;
    return (lane & ~(uint64_t)CT_LANE_THREAD_MASK) | LIVE_ENDED_ID;
}

/* Lanes of dropped green threads (in gone) lose their green thread: a
 * running lane becomes its thread's lane without a green thread, a
 * suspended one its thread's suspended lane without one (which no filter
 * selects but a green thread's), so the thread views keep their totals. */
static uint64_t green_drop_map(void *ctx, uint64_t lane)
{
    struct drop_ctx *d = ctx;
    if (!(lane >> 32) || !hmap_get(&d->gone, lane >> 32, 0))
        return lane;
    return lane & UINT64_C(0xffffffff);
}

/* Into d->gone, or (no memory) d->gone freed and l->oom set: -1. */
static int gone_add(struct live *l, struct drop_ctx *d, uint64_t id)
{
    if (!hmap_put(&d->gone, id, 0, 1))
        return 0;
    hmap_fini(&d->gone);
    l->oom = 1;
    return -1;
}

/* Fold the tree's lanes through map; without memory d->gone is freed and
 * l->oom set: -1. */
static int gone_fold(struct live *l, struct drop_ctx *d, uint64_t (*map)(void *, uint64_t))
{
    if (!ct_grow_fold(&l->tree, map, d))
        return 0;
    hmap_fini(&d->gone);
    l->oom = 1;
    return -1;
}

static int green_gone(const struct live *l, const struct live_green *g)
{
    return g->ended && g->ended_ts + LIVE_ENDED_KEEP_NS <= l->now_ts;
}

/* Drop the green threads ended LIVE_ENDED_KEEP_NS ago: out of the list and
 * by_green (their id, if the sampler gives it again, is a new green
 * thread), their lanes folded by green_drop_map. Without memory nothing
 * is dropped (and it is tried again next time). */
static void sweep_greens(struct live *l)
{
    size_t ndrop = 0;
    for (size_t i = 0; i < l->ngreens; i++)
        ndrop += green_gone(l, &l->greens[i]);
    if (!ndrop)
        return;
    struct drop_ctx d;
    if (hmap_init(&d.gone, ndrop)) {
        l->oom = 1;
        return;
    }
    for (size_t i = 0; i < l->ngreens; i++)
        if (green_gone(l, &l->greens[i]) && gone_add(l, &d, l->greens[i].id))
            return;
    if (gone_fold(l, &d, green_drop_map))
        return;
    /* the list closes up; by_green follows the moves */
    size_t k = 0;
    for (size_t i = 0; i < l->ngreens; i++) {
        struct live_green *g = &l->greens[i];
        if (hmap_get(&d.gone, g->id, 0)) {
            hmap_del(&l->by_green, g->id, 0);
            continue;
        }
        if (k != i) {
            l->greens[k] = *g;
            *hmap_get(&l->by_green, g->id, 0) = k + 1;
        }
        k++;
    }
    l->ngreens = k;
    hmap_fini(&d.gone);
}

/* Mark threads not sampled for LIVE_STALE_NS (their end record lost) as
 * ended; drop those ended LIVE_ENDED_KEEP_NS ago: their counters into
 * l->ended, their lanes folded into LIVE_ENDED_ID's. Ended green threads
 * go the same way (sweep_greens). Runs at most every quarter second of
 * sampler time. Without memory nothing is dropped (and it is tried again
 * next time). */
static void sweep_ended(struct live *l)
{
    if (l->now_ts - l->swept_ts < 250000000)
        return;
    l->swept_ts = l->now_ts;
    sweep_greens(l);
    size_t ndrop = 0;
    for (size_t i = 0; i < l->nthreads; i++) {
        struct live_thread *t = &l->threads[i];
        /* tid 0: the process's CPU no sample saw, recorded now and then */
        if (!t->ended && t->tid && t->last_ts + LIVE_STALE_NS < l->now_ts) {
            t->ended = 1;
            t->ended_ts = t->last_ts;
        }
        ndrop += t->ended && t->ended_ts + LIVE_ENDED_KEEP_NS <= l->now_ts;
    }
    if (!ndrop)
        return;
    struct drop_ctx d;
    if (hmap_init(&d.gone, ndrop)) {
        l->oom = 1;
        return;
    }
    for (size_t i = 0; i < l->nthreads; i++) {
        const struct live_thread *t = &l->threads[i];
        if (t->ended && t->ended_ts + LIVE_ENDED_KEEP_NS <= l->now_ts && gone_add(l, &d, t->id))
            return;
    }
    if (gone_fold(l, &d, drop_map))
        return;
    /* the list closes up; the map from (pid, tid) follows the moves */
    size_t k = 0;
    for (size_t i = 0; i < l->nthreads; i++) {
        struct live_thread *t = &l->threads[i];
        if (hmap_get(&d.gone, t->id, 0)) {
            sum_thread(&l->ended, t);
            l->h.ended_threads++;
            if (t->ended == 1) /* still the one (pid, tid) maps to */
                hmap_del(&l->by_tid, (uint64_t)t->pid, (uint64_t)t->tid);
            continue;
        }
        if (k != i) {
            l->threads[k] = *t;
            if (t->ended != 2)
                *hmap_get(&l->by_tid, (uint64_t)t->pid, (uint64_t)t->tid) = k + 1;
        }
        k++;
    }
    l->nthreads = k;
    hmap_fini(&d.gone);
}

/* The green thread of sampler id `id`, created if new; NULL without memory. */
static struct live_green *green_of(struct live *l, uint32_t id)
{
    uint64_t *v = hmap_get(&l->by_green, id, 0);
    if (v)
        return &l->greens[*v - 1];
    if (grow_array((void **)&l->greens, &l->capgreens, l->ngreens + 1, sizeof *l->greens) ||
        hmap_put(&l->by_green, id, 0, l->ngreens + 1))
        return NULL;
    struct live_green *g = &l->greens[l->ngreens++];
    memset(g, 0, sizeof *g);
    g->id = id;
    return g;
}

static void add_green(struct live *l, const struct rec_green *r)
{
    struct live_green *g = green_of(l, r->id);
    if (!g) {
        l->oom = 1;
        return;
    }
    g->kind = r->kind;
    if (r->ended && !g->ended) {
        saw_ts(l, r->ts);
        g->ended_ts = r->ts;
    }
    g->ended = r->ended;
    memcpy(g->name, r->name, sizeof g->name);
    g->name[sizeof g->name - 1] = 0;
    memcpy(g->func, r->func, sizeof g->func);
    g->func[sizeof g->func - 1] = 0;
    if (r->tid) {
        uint32_t th = thread_id_of(l, r->pid, r->tid);
        if (th)
            g->thread = th;
    }
}

/* Function id of a code object, or 0 (unreadable code, no memory). */
static uint32_t func_of(struct live *l, const struct py_code *co)
{
    if (!co)
        return 0;
    uint64_t *v = hmap_get(&l->by_code, (uint64_t)(uintptr_t)co, 0);
    if (v)
        return (uint32_t)*v;
    const char *name = co->qualname && *co->qualname ? co->qualname : co->name ? co->name : "?";
    uint32_t id = ct_grow_func(&l->tree, name, co->file ? co->file : "?", co->firstlineno);
    if (!id)
        return 0;
    /* a cache of the lookup above: without memory for it, the next sample
     * of this code object looks its function up again */
    if (hmap_put(&l->by_code, (uint64_t)(uintptr_t)co, 0, id))
        l->oom = 1;
    return id;
}

/* Function id of a native frame's symbol (sampler_opts.native), or 0 (no
 * memory): a function of its own per symbol and module, per unwind entry
 * without a symbol. Its file is where it stands, "libfoo.so+0x1a2b" (the
 * text form of dump --native), its line -1, and it is marked native. */
static uint32_t func_of_native(struct live *l, const struct nat_sym *y)
{
    if (!y)
        return 0;
    uint64_t *v = hmap_get(&l->by_code, (uint64_t)(uintptr_t)y, 1);
    if (v)
        return (uint32_t)*v;
    const char *mod = y->module ? y->module : "?", *b = strrchr(mod, '/');
    char where[512];
    snprintf(where, sizeof where, "%s+0x%llx", b ? b + 1 : mod, (unsigned long long)y->func_offset);
    uint32_t id = ct_grow_func(&l->tree, y->function ? y->function : "??", where, -1);
    if (!id)
        return 0;
    l->tree.t.funcs[id].native = 1;
    l->tree.t.funcs[id].address = y->func_offset;
    if (hmap_put(&l->by_code, (uint64_t)(uintptr_t)y, 1, id))
        l->oom = 1;
    return id;
}

/* The sample's path in the tree, from the outermost frame in: its
 * innermost node (1: no Python frames). */
static uint32_t path_of(struct live *l, const struct rec_sample *s)
{
    uint32_t node = 0;
    for (int i = s->nframes; i-- > 0;) {
        const struct rec_frame *fr = &s->frames[i];
        uint32_t f = fr->native == 1 ? func_of_native(l, fr->nat) : func_of(l, fr->code);
        if (!f) {
            l->oom |= fr->code != NULL; /* a frame left out */
            continue;
        }
        uint32_t n = ct_grow_child(&l->tree, node, f);
        if (!n) {
            l->oom = 1;
            break;
        }
        node = n;
    }
    return node ? node : 1;
}

/* A suspended green thread's sample: its time and where it waits, in its
 * own lane (not its thread's time). */
static void add_suspended(struct live *l, const struct rec_sample *s)
{
    struct live_green *g = s->green ? green_of(l, s->green) : NULL;
    if (!g) {
        l->oom |= s->green != 0;
        return;
    }
    if (!g->thread && s->tid)
        g->thread = thread_id_of(l, s->pid, s->tid);
    g->susp_samples++;
    g->susp_wall_ns += s->wall_ns > 0 ? s->wall_ns : 0;
    if (ct_grow_add(&l->tree, ct_lane(s->green, 1, g->thread), path_of(l, s), s->wall_ns, 0, s->state))
        l->oom = 1;
}

static void add_sample(struct live *l, const struct rec_sample *s)
{
    struct live_thread *t = thread_of(l, s->pid, s->tid);
    if (!t) {
        l->oom = 1;
        return;
    }
    uint32_t th = t->id;
    saw_ts(l, s->ts);
    if (s->ts > t->last_ts)
        t->last_ts = s->ts;
    if (t->ended == 1) /* sampled again: it had not ended */
        t->ended = 0;
    int64_t w[Q_METRICS] = { s->wall_ns, s->cpu_ns, s->state == STATE_GIL ? s->wall_ns : 0 };
    for (int k = 0; k < Q_METRICS; k++)
        if (w[k] < 0)
            w[k] = 0;
    t->samples++;
    t->wall_ns += w[Q_WALL];
    t->cpu_ns += w[Q_CPU];
    if (s->state < STATE_COUNT)
        t->state_ns[s->state] += w[Q_WALL];
    l->h.samples++;
    l->h.cpu_ns += w[Q_CPU];
    if (l->h.samples == 1 || s->ts < l->h.first_ts)
        l->h.first_ts = s->ts;
    if (s->ts > l->h.last_ts)
        l->h.last_ts = s->ts;
    if (s->green) { /* the green thread running on the thread */
        struct live_green *g = green_of(l, s->green);
        if (g) {
            g->samples++;
            g->wall_ns += w[Q_WALL];
            g->cpu_ns += w[Q_CPU];
            if (!g->thread)
                g->thread = th;
        } else {
            l->oom = 1;
        }
    }
    if (ct_grow_add(&l->tree, ct_lane(s->green, 0, th), path_of(l, s), s->wall_ns, s->cpu_ns, s->state))
        l->oom = 1;
}

static void add_batch(struct live *l, const struct batch *b)
{
    size_t off = 0;
    while (off + sizeof(struct rec_hdr) <= b->len) {
        const struct rec_hdr *hd = (const void *)(b->buf + off);
        if (hd->size == 0 || off + hd->size > b->len)
            break;
        switch (hd->kind) {
        case REC_SAMPLE:
            /* a suspended green thread's sample is not its thread's time */
            if (((const struct rec_sample *)(const void *)hd)->flags & SAMPLE_SUSPENDED)
                add_suspended(l, (const void *)hd);
            else
                add_sample(l, (const void *)hd);
            break;
        case REC_GREEN:
            if (hd->size >= sizeof(struct rec_green))
                add_green(l, (const void *)hd);
            break;
        case REC_THREAD: {
            const struct rec_thread *t = (const void *)hd;
            struct live_thread *th = thread_of(l, t->pid, t->tid);
            if (th) {
                memcpy(th->name, t->name, sizeof th->name);
                th->name[sizeof th->name - 1] = 0;
            }
            break;
        }
        case REC_THREAD_END:
            if (hd->size >= sizeof(struct rec_thread_end)) {
                const struct rec_thread_end *e = (const void *)hd;
                saw_ts(l, e->ts);
                thread_end(l, e->pid, e->tid, e->ts);
            }
            break;
        case REC_GIL: {
            const struct rec_gil *g = (const void *)hd;
            saw_ts(l, g->ts);
            l->h.ticks++;
            if (g->holder_tid)
                l->h.gil_held_ticks++;
            if (g->waiters)
                l->h.gil_contended_ticks++;
            break;
        }
        case REC_PROCESS: {
            const struct rec_process *p = (const void *)hd;
            if (!l->h.pid) {
                l->h.pid = p->pid;
                memcpy(l->h.cmd, p->cmd, sizeof l->h.cmd);
                l->h.cmd[sizeof l->h.cmd - 1] = 0;
                memcpy(l->h.version, p->version, sizeof l->h.version);
                l->h.version[sizeof l->h.version - 1] = 0;
            }
            break;
        }
        default:
            break;
        }
        off += hd->size;
    }
    sweep_ended(l);
}

static void *consumer_main(void *arg)
{
    struct live *l = arg;
    struct batch *b;
    while ((b = squeue_pop(l->q))) {
        pthread_mutex_lock(&l->mu);
        add_batch(l, b);
        pthread_mutex_unlock(&l->mu);
        squeue_release(l->q, b);
    }
    pthread_mutex_lock(&l->mu);
    l->h.done = 1;
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void live_destroy(struct live *l)
{
    ct_grow_fini(&l->tree);
    free(l->threads);
    free(l->greens);
    free(l->fself);
    free(l->ftotal);
    hmap_fini(&l->by_code);
    hmap_fini(&l->by_tid);
    hmap_fini(&l->by_green);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

int live_new(struct live **out, struct sample_queue *q, char *err, size_t errlen)
{
    struct live *l = calloc(1, sizeof *l);
    if (!l)
        return se_fail(err, errlen, -ENOMEM, "out of memory");
    l->q = q;
    pthread_mutex_init(&l->mu, NULL);
    if (ct_grow_init(&l->tree) || hmap_init(&l->by_code, 1024) || hmap_init(&l->by_tid, 64) ||
        hmap_init(&l->by_green, 64)) {
        live_destroy(l);
        return se_fail(err, errlen, -ENOMEM, "out of memory");
    }
    if (pthread_create(&l->thread, NULL, consumer_main, l)) {
        live_destroy(l);
        return se_fail(err, errlen, -EAGAIN, "cannot start the aggregation thread");
    }
    *out = l;
    return 0;
}

void live_free(struct live *l)
{
    if (!l)
        return;
    pthread_join(l->thread, NULL);
    live_destroy(l);
}

void live_reset(struct live *l)
{
    pthread_mutex_lock(&l->mu);
    int pid = l->h.pid, done = l->h.done;
    char cmd[sizeof l->h.cmd], ver[sizeof l->h.version];
    memcpy(cmd, l->h.cmd, sizeof cmd);
    memcpy(ver, l->h.version, sizeof ver);
    memset(&l->h, 0, sizeof l->h);
    l->h.pid = pid;
    l->h.done = done;
    memcpy(l->h.cmd, cmd, sizeof cmd);
    memcpy(l->h.version, ver, sizeof ver);
    memset(&l->ended, 0, sizeof l->ended);
    for (size_t i = 0; i < l->nthreads; i++) {
        struct live_thread *t = &l->threads[i];
        t->samples = 0;
        t->wall_ns = t->cpu_ns = 0;
        memset(t->state_ns, 0, sizeof t->state_ns);
    }
    for (size_t i = 0; i < l->ngreens; i++) {
        struct live_green *g = &l->greens[i];
        g->samples = g->susp_samples = 0;
        g->wall_ns = g->cpu_ns = g->susp_wall_ns = 0;
    }
    ct_grow_reset(&l->tree);
    pthread_mutex_unlock(&l->mu);
}

static int cmp_green(const void *a, const void *b)
{
    const struct live_green *x = a, *y = b;
    if (x->thread != y->thread)
        return x->thread < y->thread ? -1 : 1;
    int c = strcmp(x->func, y->func);
    if (c)
        return c;
    return (x->id > y->id) - (x->id < y->id);
}

int live_snapshot(struct live *l, uint32_t thread, uint32_t green, struct live_snap *s)
{
    int rc = 0;
    pthread_mutex_lock(&l->mu);
    s->h = l->h;
    s->h.oom = l->oom;
    s->h.cells = l->tree.ncells;
    s->h.greens = l->ngreens;
    s->ended = l->ended;
    s->ended.id = LIVE_ENDED_ID;
    s->nthreads = s->nfuncs = s->ngreens = 0;
    memset(s->metric_total, 0, sizeof s->metric_total);
    /* + 1: never NULL, even before the first sample (callers qsort them) */
    size_t nf = l->tree.t.nfuncs;
    if (grow_array((void **)&s->threads, &s->capthreads, l->nthreads + 1, sizeof *s->threads) ||
        grow_array((void **)&s->funcs, &s->capfuncs, nf + 1, sizeof *s->funcs) ||
        grow_array((void **)&s->greens, &s->capgreens, l->ngreens + 1, sizeof *s->greens)) {
        rc = -ENOMEM;
        goto out;
    }
    size_t capflat = l->capflat;
    if (grow_array((void **)&l->fself, &capflat, nf, sizeof *l->fself) ||
        grow_array((void **)&l->ftotal, &l->capflat, nf, sizeof *l->ftotal)) {
        rc = -ENOMEM;
        goto out;
    }
    if (l->nthreads) /* before the first sample l->threads is NULL: memcpy(x, NULL, 0) is undefined */
        memcpy(s->threads, l->threads, l->nthreads * sizeof *l->threads);
    s->nthreads = l->nthreads;
    for (size_t i = 0; i < l->ngreens; i++)
        if (!l->greens[i].ended)
            s->greens[s->ngreens++] = l->greens[i];
    qsort(s->greens, s->ngreens, sizeof *s->greens, cmp_green);
    for (size_t i = 0; i <= l->nthreads && !green; i++) { /* the threads, then the dropped ones' sums */
        const struct live_thread *t = i < l->nthreads ? &l->threads[i] : &l->ended;
        uint32_t id = i < l->nthreads ? t->id : LIVE_ENDED_ID;
        if (thread && id != thread)
            continue;
        s->metric_total[Q_WALL] += t->wall_ns;
        s->metric_total[Q_CPU] += t->cpu_ns;
        s->metric_total[Q_GIL] += t->state_ns[STATE_GIL];
    }
    /* the flat profile of the selected thread(s), read off the tree as the
     * other views read theirs */
    struct ct_weights w;
    uint64_t lane, mask;
    ct_lane_filter(thread, green, &lane, &mask);
    if (ct_grow_weigh(&l->tree, lane, mask, &w) || calltree_flat(&l->tree.t, &w, l->fself, l->ftotal)) {
        ct_weights_fini(&w);
        rc = -ENOMEM;
        goto out;
    }
    if (green) { /* its running and suspended samples */
        s->metric_total[Q_WALL] = w.all.wall_ns;
        s->metric_total[Q_CPU] = w.all.cpu_ns;
        s->metric_total[Q_GIL] = w.all.gil_ns;
    }
    ct_weights_fini(&w);
    /* keep only functions seen in the selection (func 0, no Python frames,
     * is not a function here) */
    size_t n = 0;
    for (size_t i = 1; i < nf; i++) {
        const struct ct_cost *sf = &l->fself[i], *tf = &l->ftotal[i];
        if (!tf->wall_ns && !tf->cpu_ns)
            continue;
        struct live_func *f = &s->funcs[n++];
        f->name = ct_grow_func_name(&l->tree, (uint32_t)i);
        f->file = ct_grow_func_file(&l->tree, (uint32_t)i);
        f->line = l->tree.t.funcs[i].line;
        f->native = l->tree.t.funcs[i].native;
        f->self[Q_WALL] = sf->wall_ns;
        f->self[Q_CPU] = sf->cpu_ns;
        f->self[Q_GIL] = sf->gil_ns;
        f->total[Q_WALL] = tf->wall_ns;
        f->total[Q_CPU] = tf->cpu_ns;
        f->total[Q_GIL] = tf->gil_ns;
    }
    s->nfuncs = n;
out:
    pthread_mutex_unlock(&l->mu);
    return rc;
}

void live_snap_fini(struct live_snap *s)
{
    free(s->threads);
    free(s->funcs);
    free(s->greens);
    memset(s, 0, sizeof *s);
}
