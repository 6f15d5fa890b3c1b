/* tracer: greenlets as lanes, from the switches the in-process hook
 * reports (tracer/greenlets.h).
 *
 * Exact CPU: every switch carries the thread's CPU clock and the monotonic
 * clock, read by the hook as it happens. The CPU and wall time between two
 * switches on a thread belong to the first one's target, i.e. the next
 * one's origin. Every tick, the thread's sample is split by the switches
 * since the previous tick: the greenlet running now keeps the sample (its
 * stack is the thread's) with the CPU it used in the interval; every other
 * greenlet that ran in the interval gets a running sample of its own, at
 * the same time, with its exact CPU and wall share and the stack where it
 * parked. So the sum of a greenlet's running samples' cpu_ns is the CPU its
 * thread's clock counted while it ran, and the thread's samples still add
 * up to the thread's CPU.
 *
 * Parked greenlets: the hook gives the origin's top frame at each switch;
 * scans (paced by their own cost, as tracer/green.c's) emit one suspended
 * sample per parked greenlet, with the stack read from that frame through
 * the checked reader, standing for the time since its previous one minus
 * the time it ran meanwhile. A greenlet ends when it switches out dead.
 *
 * Runs on the sampling thread, for the sampler's own process only. */
#include "tracer/greenlets.h"
#include "tracer/sampler_impl.h"

#include "common/grow.h"
#include "common/hmap.h"
#include "common/state.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SCAN_SHARE 30          /* suspended scans may take about 1/30 of the time */
#define EV_SWITCH 1
#define EV_NAME 2

/* ---- the hook's side ---- */

struct gr_ent {
    uint64_t kind, a, b, cpu, mono, frame, dead, pad;
};

struct gr_ring {
    pid_t tid;
    /* RING_LIVE while its thread runs, RING_DONE once it ended (its
     * entries still to be read), RING_FREE once the sampler read them all:
     * a new thread may then take it (and bumps epoch) */
    _Atomic int state;
    _Atomic uint32_t epoch;
    /* the hook's own (tracer/greenlets.h, "CPU"): the virtual CPU clock it
     * writes, the monotonic time of its last switch and of its last read
     * of the thread's CPU clock */
    int64_t vcpu, last_mono, read_mono;
    _Atomic uint64_t head;     /* written by the hook */
    _Atomic uint64_t tail;     /* written by the sampler */
    _Atomic uint64_t lost;
    struct gr_ent e[GREENLET_RING];
};

static struct gr_ring *_Atomic gr_rings[GREENLET_THREADS];
static _Atomic int gr_nrings;
static _Atomic uint32_t gr_gen;  /* 0 while nothing records */
static uint32_t gr_gen_next;
static _Thread_local struct gr_ring *gr_mine;
static _Thread_local int gr_nomore;
static pthread_key_t gr_key;     /* its destructor hands the ring back */
static pthread_once_t gr_key_once = PTHREAD_ONCE_INIT;
static int gr_key_ok;

enum { RING_LIVE, RING_DONE, RING_FREE };

static void ring_thread_ended(void *p)
{
    struct gr_ring *r = p;
    atomic_store_explicit(&r->state, RING_DONE, memory_order_release);
}

static void key_init(void)
{
    gr_key_ok = pthread_key_create(&gr_key, ring_thread_ended) == 0;
}

/* The clock's time in ns, or -1 (a thread's CPU clock after it exited). */
static int64_t clock_ns(clockid_t c)
{
    struct timespec ts;
    if (clock_gettime(c, &ts))
        return -1;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A ring another thread left (RING_FREE), taken over, or NULL. */
static struct gr_ring *ring_reuse(void)
{
    int n = atomic_load_explicit(&gr_nrings, memory_order_acquire);
    for (int i = 0; i < n && i < GREENLET_THREADS; i++) {
        struct gr_ring *r = atomic_load_explicit(&gr_rings[i], memory_order_acquire);
        int free_ = RING_FREE;
        if (r && atomic_compare_exchange_strong(&r->state, &free_, RING_LIVE)) {
            r->tid = gettid();
            r->vcpu = r->last_mono = r->read_mono = 0;
            /* the sampler sees the new owner with its first entry */
            atomic_fetch_add_explicit(&r->epoch, 1, memory_order_release);
            return r;
        }
    }
    return NULL;
}

static struct gr_ring *my_ring(void)
{
    if (gr_mine || gr_nomore)
        return gr_mine;
    pthread_once(&gr_key_once, key_init);
    struct gr_ring *r = ring_reuse();
    if (!r) {
        if (!(r = calloc(1, sizeof *r))) {
            gr_nomore = 1;
            return NULL;
        }
        r->tid = gettid();
        int i = atomic_fetch_add(&gr_nrings, 1);
        if (i >= GREENLET_THREADS) {
            atomic_fetch_sub(&gr_nrings, 1);
            free(r);
            gr_nomore = 1;
            return NULL;
        }
        atomic_store_explicit(&gr_rings[i], r, memory_order_release);
    }
    /* at the thread's end the ring goes back (unless it cannot: then it
     * stays this thread's, as a ring of a thread that never ends) */
    if (gr_key_ok)
        pthread_setspecific(gr_key, r);
    return gr_mine = r;
}

/* Room for n entries, or NULL (counted as lost). */
static struct gr_ent *ring_room(struct gr_ring *r, uint64_t *h, int n)
{
    *h = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (*h - t + (uint64_t)n > GREENLET_RING) {
        atomic_fetch_add_explicit(&r->lost, 1, memory_order_relaxed);
        return NULL;
    }
    return &r->e[*h % GREENLET_RING];
}

uint32_t greenlet_note_switch(uint64_t origin, uint64_t target, uint64_t frame, int dead)
{
    uint32_t gen = atomic_load_explicit(&gr_gen, memory_order_relaxed);
    if (!gen)
        return 0;
    struct gr_ring *r = my_ring();
    uint64_t h;
    struct gr_ent *e = r ? ring_room(r, &h, 1) : NULL;
    if (!e)
        return gen;
    e->kind = EV_SWITCH;
    e->a = origin;
    e->b = target;
    int64_t mono = clock_ns(CLOCK_MONOTONIC), cpu = -1;
    if (!r->read_mono || mono - r->read_mono >= GREENLET_CPU_READ_NS) {
        /* the segment since the last read is long: the real clock, so
         * that this origin gets its CPU minus what the short segments
         * since the last read were charged */
        cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);
        r->read_mono = mono;
    }
    if (cpu < 0) /* a short segment: its wall time */
        cpu = r->vcpu + (mono > r->last_mono ? mono - r->last_mono : 0);
    r->vcpu = cpu;
    r->last_mono = mono;
    e->cpu = (uint64_t)cpu;
    e->mono = (uint64_t)mono;
    e->frame = dead ? 0 : frame;
    e->dead = dead != 0;
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return gen;
}

void greenlet_note_name(uint64_t addr, const char *name, const char *func)
{
    if (!atomic_load_explicit(&gr_gen, memory_order_relaxed))
        return;
    struct gr_ring *r = my_ring();
    uint64_t h;
    /* three entries: the header, then the name and the function (64 bytes each) */
    if (!r || !ring_room(r, &h, 3))
        return;
    struct gr_ent *e = &r->e[h % GREENLET_RING];
    e->kind = EV_NAME;
    e->a = addr;
    snprintf((char *)&r->e[(h + 1) % GREENLET_RING], sizeof(struct gr_ent), "%s", name ? name : "");
    snprintf((char *)&r->e[(h + 2) % GREENLET_RING], sizeof(struct gr_ent), "%s", func ? func : "");
    atomic_store_explicit(&r->head, h + 3, memory_order_release);
}

uint32_t greenlet_generation(void)
{
    return atomic_load_explicit(&gr_gen, memory_order_relaxed);
}

void greenlet_atfork_child(void)
{
    atomic_store(&gr_gen, 0);
}

/* ---- the sampler's side ---- */

struct glane {
    uint64_t addr, frame;       /* frame: its parked top frame object, 0 none */
    uint32_t id;
    pid_t tid;
    int parked, touched, named, dead;
    int64_t pend_cpu, pend_wall; /* ran in this tick's interval, not current now */
    int64_t since_ns, ran_ns;   /* suspended time accounted up to since_ns;
                                   wall it ran since then */
    char name[64], func[64];
};

struct gthr {
    struct gr_ring *ring;
    pid_t tid;
    uint64_t cur;               /* the greenlet running on it (0: not known) */
    int64_t mark_cpu, mark_mono; /* accounted up to these clocks */
    uint64_t lost_seen;
    uint32_t epoch;             /* the ring's owner this state is for */
    int ti;                     /* its thread's index in this tick, -1 none */
    uint64_t drained;           /* the ring's head when this tick drained it */
};

struct greenlet_state {
    struct glane *lanes;
    size_t nlanes, cap;
    struct hmap by_addr;        /* greenlet address -> lane index + 1 */
    struct gthr th[GREENLET_THREADS];
    int nth;
    int64_t next_scan_ns;
    int64_t last_drain_ns, next_drain_ns; /* greenlets_drain_due */
    struct py_rawframe raw[PY_MAX_DEPTH];
};

void greenlets_free(struct target *t)
{
    struct greenlet_state *g = t->greenlets;
    if (!g)
        return;
    atomic_store(&gr_gen, 0);
    free(g->lanes);
    hmap_fini(&g->by_addr);
    free(g);
    t->greenlets = NULL;
}

static void emit_green(struct sampler *s, struct target *t, const struct glane *l, int64_t now)
{
    struct rec_green *r = reserve(s, sizeof *r, now);
    if (!r) {
        s->st.dropped++;
        return;
    }
    memset((char *)r + sizeof r->h, 0, sizeof *r - sizeof r->h);
    r->h.kind = REC_GREEN;
    r->pid = t->pid;
    r->tid = l->tid;
    r->id = l->id;
    r->kind = GREEN_GREENLET;
    r->ended = (uint8_t)l->dead;
    r->addr = l->addr;
    r->ts = now - s->t0;
    memcpy(r->name, l->name, sizeof r->name);
    memcpy(r->func, l->func, sizeof r->func);
}

static struct glane *lane_get(struct sampler *s, struct target *t, uint64_t addr, pid_t tid,
                              int64_t now)
{
    struct greenlet_state *g = t->greenlets;
    uint64_t *v = hmap_get(&g->by_addr, addr, 0);
    if (v) {
        struct glane *l = &g->lanes[*v - 1];
        if (!l->dead && l->tid == tid)
            return l;
        /* the address of a greenlet that ended (or of one of a thread that
         * ended: greenlets never change threads) serves a new one: the old
         * lane ends at the next tick, unmapped */
        l->dead = 1;
        hmap_del(&g->by_addr, addr, 0);
    }
    if (grow_array((void **)&g->lanes, &g->cap, g->nlanes + 1, sizeof *g->lanes))
        return NULL;
    if (hmap_put(&g->by_addr, addr, 0, g->nlanes + 1))
        return NULL;
    struct glane *l = &g->lanes[g->nlanes++];
    memset(l, 0, sizeof *l);
    l->addr = addr;
    l->id = ++s->green_next;
    l->tid = tid;
    l->since_ns = now;
    s->st.green_lanes++;
    return l;
}

/* The stack of a parked greenlet, from its top frame object, into g->raw;
 * the number of frames (0 when unknown or unreadable). */
static int parked_stack(struct target *t, struct greenlet_state *g, uint64_t frame, int *trunc)
{
    *trunc = 0;
    if (!frame)
        return 0;
    /* 3.11+: the frame object's interpreter frame (PyFrameObject.f_frame) */
    if (t->rt.L.fo_frame >= 0 &&
        mem_read_ptr(&t->rt.mem, frame + (uint64_t)t->rt.L.fo_frame, &frame))
        return 0;
    int n = py_stack_walk(&t->rt, frame, NULL, 0, 0, NULL, g->raw, PY_MAX_DEPTH, trunc);
    return n < 0 ? 0 : n;
}

/* A sample of lane l: running (its share of its thread's interval, in
 * state) or suspended, with the stack where it parked. */
static void emit_row(struct sampler *s, struct target *t, struct glane *l, int state, int flags,
                     int64_t cpu, int64_t wall, int64_t now)
{
    struct greenlet_state *g = t->greenlets;
    int trunc;
    int nf = parked_stack(t, g, l->frame, &trunc);
    struct rec_sample *r = reserve(s, sizeof *r + (size_t)nf * sizeof(struct rec_frame), now);
    if (!r) {
        s->st.dropped++;
        return;
    }
    r->h.kind = REC_SAMPLE;
    r->state = (uint8_t)state;
    r->flags = (uint8_t)(flags | (trunc ? SAMPLE_TRUNCATED : 0));
    r->pid = t->pid;
    r->tid = l->tid;
    r->ts = now - s->t0;
    r->cpu_ns = cpu;
    r->wall_ns = wall;
    r->green = l->id;
    r->span = s->o.span_of ? s->o.span_of(l->tid, l->addr, s->o.span_ctx) : 0;
    int k = frames_resolve(&t->rt, g->raw, nf, r->frames);
    if (k < nf)
        r->flags |= SAMPLE_TRUNCATED;
    r->nframes = (uint16_t)k;
    if (!(flags & SAMPLE_SUSPENDED)) {
        t->charged_ns += cpu;
        s->st.samples++;
    }
}

/* Entries of a ring looked at past a drain (greenlets_recheck). */
#define RECHECK_SCAN 64

/* The frame where greenlet a parked at its first switch among th's entries
 * since the drain (read, not taken: the next drain takes them), or 0 (no
 * such switch among the first RECHECK_SCAN entries, a ended, or another
 * greenlet switched first). *again: a was switched to again after (or
 * entries were left unread: not known). The
 * entries in [drained, head) stay as they are until the sampler moves the
 * tail: the hook writes past head only. */
static uint64_t parked_since_drain(const struct gthr *th, uint64_t a, uint64_t head, int *again)
{
    const struct gr_ring *r = th->ring;
    uint64_t frame = 0;
    *again = 0;
    if (!a || head - th->drained > GREENLET_RING)
        return 0;
    uint64_t i = th->drained;
    while (i < head && i - th->drained < RECHECK_SCAN) {
        const struct gr_ent *e = &r->e[i % GREENLET_RING];
        if (e->kind == EV_NAME) {
            i += 3;
            continue;
        }
        if (e->kind != EV_SWITCH)
            return 0;
        if (!frame) {
            if (e->a != a || e->dead || !e->frame)
                return 0;
            frame = e->frame;
        } else if (e->b == a) {
            *again = 1;
            break;
        }
        i++;
    }
    if (frame && !*again && i < head)
        *again = 1; /* (entries left unread: not known, taken as if it did) */
    return frame;
}

/* Thread tick tk raced a switch of its greenlet, which parked at frame:
 * whose stack did the walk read? The greenlet's when it ends at the same
 * root frame as the stack where it parked (a greenlet's frames all lead to
 * the frame of its run, and no two greenlets share one): 1, the stack is
 * kept. Else tk's stack becomes the parked one, appended to the tick's
 * frames: 0. -1 neither (unreadable, no memory). */
static int own_or_parked_stack(struct sampler *s, struct target *t, struct thread_tick *tk,
                               uint64_t frame)
{
    struct greenlet_state *g = t->greenlets;
    int trunc;
    int nf = parked_stack(t, g, frame, &trunc);
    if (nf <= 0 || trunc)
        return -1;
    if (tk->bottom && tk->bottom == t->rt.walk_bottom)
        return 1;
    if (s->rawused + (size_t)nf > s->rawcap) {
        size_t cap = s->rawcap * 2 > s->rawused + PY_MAX_DEPTH ? s->rawcap * 2
                                                               : s->rawused + PY_MAX_DEPTH;
        struct py_rawframe *r = realloc(s->rawall, cap * sizeof *r);
        if (!r)
            return -1;
        s->rawall = r;
        s->rawcap = cap;
    }
    memcpy(s->rawall + s->rawused, g->raw, (size_t)nf * sizeof *g->raw);
    tk->raw_first = s->rawused;
    tk->nraw = nf;
    tk->truncated = trunc;
    s->rawused += (size_t)nf;
    return 0;
}

void greenlets_recheck(struct sampler *s, struct target *t, int n)
{
    struct greenlet_state *g = t->greenlets;
    if (!g)
        return;
    for (int k = 0; k < g->nth; k++) {
        struct gthr *th = &g->th[k];
        if (th->ti < 0 || th->ti >= n || s->tick[th->ti].reuse || !th->ring)
            continue; /* not sampled, or not walked (it did not run) */
        /* a switch (or the names the hook gives before one) since the
         * drain: the walk may have read either greenlet's stack. The
         * sample stays the greenlet's that ran at the drain (its CPU is
         * the hook's, exact), counted. The stack walked is kept when it
         * is that greenlet's (read before the switch: it ends at the root
         * of the stack where the greenlet parked, which the hook gave),
         * else the parked stack is the sample's; its span is the
         * greenlet's either way. A greenlet that ran again since is not
         * followed (the frame where it parked may be finished, or another
         * greenlet's now; its span may not be the one it parked with),
         * nor one that cannot be: the stack walked, without a span. */
        uint64_t head = atomic_load_explicit(&th->ring->head, memory_order_acquire);
        if (head == th->drained)
            continue;
        struct thread_tick *tk = &s->tick[th->ti];
        s->st.greenlet_races++;
        tk->no_reuse = 1; /* (the greenlet the thread runs now is another) */
        int again = 0;
        uint64_t frame = tk->native ? 0 : parked_since_drain(th, th->cur, head, &again);
        /* (a greenlet that ran again may have finished the frame where it
         * parked, or freed it for another's: not followed then) */
        int rc = frame && !again ? own_or_parked_stack(s, t, tk, frame) : -1;
        if (rc >= 0) {
            if (rc == 0)
                s->st.greenlet_parked++;
            else
                s->st.greenlet_kept++;
        } else {
            tk->span_race |= s->o.span_of != NULL;
        }
    }
}

/* Read thread k's new switches: charge the origins, note names, deaths
 * and parking frames. */
static uint64_t drain(struct sampler *s, struct target *t, struct gthr *th, int64_t now)
{
    struct gr_ring *r = th->ring;
    int state = atomic_load_explicit(&r->state, memory_order_acquire);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    uint32_t epoch = atomic_load_explicit(&r->epoch, memory_order_acquire);
    if (epoch != th->epoch) {
        /* another thread took the ring over: its switches from here on */
        th->epoch = epoch;
        th->tid = r->tid;
        th->cur = 0;
        th->mark_cpu = th->mark_mono = 0;
    }
    while (tail < head) {
        struct gr_ent e = r->e[tail % GREENLET_RING];
        if (e.kind == EV_NAME) {
            struct glane *l = tail + 3 <= head ? lane_get(s, t, e.a, th->tid, now) : NULL;
            if (l) {
                memcpy(l->name, &r->e[(tail + 1) % GREENLET_RING], sizeof l->name);
                memcpy(l->func, &r->e[(tail + 2) % GREENLET_RING], sizeof l->func);
                l->name[63] = l->func[63] = 0;
                l->tid = th->tid;
                l->named = 0; /* (re)announce */
            }
            tail += 3;
            continue;
        }
        tail++;
        /* (the second lookup may grow the lanes: the first one's pointer
         * is taken again after it) */
        struct glane *o = lane_get(s, t, e.a, th->tid, now);
        ptrdiff_t oi = o ? o - t->greenlets->lanes : -1;
        struct glane *n = lane_get(s, t, e.b, th->tid, now);
        o = oi >= 0 ? &t->greenlets->lanes[oi] : NULL;
        int64_t dc = (int64_t)e.cpu - th->mark_cpu, dw = (int64_t)e.mono - th->mark_mono;
        if (o && th->mark_mono) {
            o->pend_cpu += dc > 0 ? dc : 0;
            o->pend_wall += dw > 0 ? dw : 0;
            o->touched = 1;
        }
        if ((int64_t)e.mono > th->mark_mono) {
            th->mark_cpu = (int64_t)e.cpu;
            th->mark_mono = (int64_t)e.mono;
        }
        if (o) {
            o->parked = 1;
            o->frame = e.frame;
            o->dead |= (int)e.dead;
        }
        if (n) {
            n->parked = 0;
            n->frame = 0;
        }
        th->cur = e.b;
    }
    uint64_t took = tail - atomic_load_explicit(&r->tail, memory_order_relaxed);
    atomic_store_explicit(&r->tail, tail, memory_order_release);
    th->drained = tail;
    uint64_t lost = atomic_load_explicit(&r->lost, memory_order_relaxed);
    s->st.green_errors += lost - th->lost_seen;
    s->st.greenlet_lost += lost - th->lost_seen;
    th->lost_seen = lost;
    if (state == RING_DONE) {
        /* all its thread wrote is read: its greenlets (its main one, those
         * still parked) end with it, and the ring is free for another */
        struct greenlet_state *g = t->greenlets;
        for (size_t j = 0; j < g->nlanes; j++)
            if (g->lanes[j].tid == th->tid)
                g->lanes[j].dead = 1;
        atomic_store_explicit(&r->state, RING_FREE, memory_order_release);
    }
    return took;
}

/* The rings of threads that switched for the first time since the last
 * look. fresh: a new recording (what the rings hold is from before it). */
static void rings_discover(struct greenlet_state *g, int fresh, int64_t now)
{
    int nr = atomic_load_explicit(&gr_nrings, memory_order_acquire);
    if (nr > GREENLET_THREADS)
        nr = GREENLET_THREADS;
    for (; g->nth < nr; g->nth++) {
        struct gr_ring *r = atomic_load_explicit(&gr_rings[g->nth], memory_order_acquire);
        if (!r)
            break;
        struct gthr *th = &g->th[g->nth];
        th->ring = r;
        th->tid = r->tid;
        th->epoch = atomic_load(&r->epoch);
        th->lost_seen = atomic_load(&r->lost);
        if (fresh) {
            atomic_store(&r->tail, atomic_load(&r->head));
            th->mark_cpu = clock_ns((clockid_t)((~(unsigned)th->tid << 3) | 6));
            th->mark_mono = th->mark_cpu < 0 ? 0 : now; /* gone: never charged */
        }
    }
}

/* After a drain of every ring at now that took at most peak entries from
 * one: when the next drain is due so that no ring fills past an eighth
 * (at the rate the busiest one filled since the previous drain). */
static void plan_drain(struct greenlet_state *g, uint64_t peak, int64_t now)
{
    int64_t dt = now - g->last_drain_ns;
    g->last_drain_ns = now;
    if (!peak || dt <= 0) {
        g->next_drain_ns = INT64_MAX;
        return;
    }
    double ns_per = (double)dt / (double)peak;
    double due = ns_per * (GREENLET_RING / 8);
    if (due < GREENLET_DRAIN_MIN_NS)
        due = GREENLET_DRAIN_MIN_NS;
    g->next_drain_ns = due > 1e15 ? INT64_MAX : now + (int64_t)due;
}

int64_t greenlets_drain_due(struct target *t)
{
    struct greenlet_state *g = t->greenlets;
    return g && t->pid == getpid() && g->nth ? g->next_drain_ns : INT64_MAX;
}

void greenlets_drain(struct sampler *s, struct target *t, int64_t now)
{
    struct greenlet_state *g = t->greenlets;
    if (!g || t->pid != getpid())
        return;
    rings_discover(g, 0, now);
    uint64_t peak = 0;
    for (int k = 0; k < g->nth; k++) {
        uint64_t took = drain(s, t, &g->th[k], now);
        if (took > peak)
            peak = took;
    }
    s->st.greenlet_drains++;
    plan_drain(g, peak, now);
}

void greenlets_tick(struct sampler *s, struct target *t, int n, int64_t now)
{
    if (t->pid != getpid())
        return;
    struct greenlet_state *g = t->greenlets;
    int fresh = !g;
    if (!g) {
        if (!(g = t->greenlets = calloc(1, sizeof *g)))
            return;
        if (hmap_init(&g->by_addr, 256)) {
            free(g);
            t->greenlets = NULL;
            return;
        }
        /* a new recording: the hook describes its greenlets again */
        uint32_t gen = ++gr_gen_next ? gr_gen_next : ++gr_gen_next;
        atomic_store(&gr_gen, gen);
    }
    rings_discover(g, fresh, now);
    if (fresh) {
        g->last_drain_ns = now;
        g->next_drain_ns = INT64_MAX;
    }
    if (!g->nth)
        return;
    uint64_t peak = 0;
    for (int k = 0; k < g->nth; k++) {
        struct gthr *th = &g->th[k];
        uint64_t took = drain(s, t, th, now);
        if (took > peak)
            peak = took;
        int ti = -1;
        for (int i = 0; i < n; i++)
            if (s->threads[i].tid == th->tid && s->tick[i].sl) {
                ti = i;
                break;
            }
        th->ti = ti;
        if (ti < 0 || !th->mark_mono)
            continue;
        struct thread_tick *tk = &s->tick[ti];
        clockid_t cid = (clockid_t)((~(unsigned)th->tid << 3) | 6);
        int64_t cnow = clock_ns(cid), mnow = clock_ns(CLOCK_MONOTONIC);
        if (cnow < 0)
            cnow = th->mark_cpu; /* the thread is gone: nothing more to charge */
        uint64_t *v = th->cur ? hmap_get(&g->by_addr, th->cur, 0) : NULL;
        struct glane *cur = v ? &g->lanes[*v - 1] : NULL;
        for (size_t j = 0; j < g->nlanes; j++) {
            struct glane *l = &g->lanes[j];
            if (!l->touched || l->tid != th->tid)
                continue;
            l->touched = 0;
            if (l == cur)
                continue;
            if (!l->named) {
                emit_green(s, t, l, now);
                l->named = 1;
            }
            l->ran_ns += l->pend_wall;
            emit_row(s, t, l, tk->state, 0, l->pend_cpu, l->pend_wall, now);
            l->pend_cpu = l->pend_wall = 0;
        }
        if (cur) {
            if (!cur->named) {
                emit_green(s, t, cur, now);
                cur->named = 1;
            }
            int64_t dc = cnow - th->mark_cpu, dw = mnow - th->mark_mono;
            tk->dcpu = cur->pend_cpu + (dc > 0 ? dc : 0);
            tk->wall = cur->pend_wall + (dw > 0 ? dw : 0);
            cur->ran_ns += tk->wall;
            cur->pend_cpu = cur->pend_wall = 0;
            tk->green = cur->id;
            tk->green_addr = cur->addr;
        }
        th->mark_cpu = cnow;
        th->mark_mono = mnow;
    }
    plan_drain(g, peak, now);
    /* suspended samples, ended lanes */
    int scan = now >= g->next_scan_ns;
    int64_t c0 = scan ? clock_ns(CLOCK_THREAD_CPUTIME_ID) : 0;
    for (size_t j = 0; j < g->nlanes;) {
        struct glane *l = &g->lanes[j];
        if (l->dead) {
            if (!l->named)
                emit_green(s, t, l, now);
            l->named = 1;
            emit_green(s, t, l, now); /* ended */
            uint64_t *v = hmap_get(&g->by_addr, l->addr, 0);
            if (v && *v == j + 1) /* (not when a new lane took its address) */
                hmap_del(&g->by_addr, l->addr, 0);
            if (j != g->nlanes - 1) {
                *l = g->lanes[g->nlanes - 1];
                v = hmap_get(&g->by_addr, l->addr, 0);
                if (v && *v == g->nlanes)
                    *v = j + 1;
            }
            g->nlanes--;
            continue;
        }
        if (scan && l->parked) {
            if (!l->named) {
                emit_green(s, t, l, now);
                l->named = 1;
            }
            int64_t wall = now - l->since_ns - l->ran_ns;
            l->since_ns = now;
            l->ran_ns = 0;
            if (wall > 0)
                emit_row(s, t, l, STATE_IDLE, SAMPLE_SUSPENDED, 0, wall, now);
        }
        j++;
    }
    if (scan)
        g->next_scan_ns = now + (clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0) * SCAN_SHARE;
}
