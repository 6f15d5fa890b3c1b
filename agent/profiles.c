/* The agent's span profiles: see agent/profiles.h. */
#include "agent/profiles.h"

#include "common/hmap.h"
#include "common/state.h"
#include "spans/profile.h"
#include "tracer/cpython/frames.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct gframe {
    char *name, *file;
    int32_t line, fn_line;
};

struct open_prof {
    uint32_t no;        /* 0: free */
    int64_t last_ts;    /* newest sample's time */
    uint32_t *gf;       /* local frame -> global frame */
    struct sprof p;
};

static pthread_mutex_t pmu = PTHREAD_MUTEX_INITIALIZER;
static int active;                 /* a recording runs */
static int64_t start_unix, watermark = -1; /* newest sample time stored, ns since the start */
static struct hmap gmap;           /* (code *, line) -> global frame + 1 */
static struct gframe *gframes;
static size_t ngframes;
static struct hmap omap;           /* span no -> slot + 1 */
static struct open_prof slots[PROF_OPEN_MAX];
static size_t nopen;
static uint64_t dropped;
static int maps_init;

static void prof_free(struct open_prof *o)
{
    sprof_fini(&o->p);
    free(o->gf);
    memset(o, 0, sizeof *o);
}

/* The global frame of a sample's frame; UINT32_MAX when out of room. */
static uint32_t gframe_of(const struct rec_frame *f)
{
    uint64_t *v = hmap_get(&gmap, (uint64_t)(uintptr_t)f->code, (uint64_t)(uint32_t)f->line);
    if (v)
        return (uint32_t)(*v - 1);
    if (ngframes >= PROF_GFRAMES_MAX || !f->code)
        return UINT32_MAX;
    if (!(ngframes & (ngframes + 1)) || !gframes) {
        struct gframe *g = realloc(gframes, (ngframes + 1) * 2 * sizeof *g);
        if (!g)
            return UINT32_MAX;
        gframes = g;
    }
    struct gframe *g = &gframes[ngframes];
    g->name = strdup(f->code->qualname ? f->code->qualname : f->code->name ? f->code->name : "?");
    g->file = strdup(f->code->file ? f->code->file : "?");
    g->line = f->line;
    g->fn_line = f->code->firstlineno;
    if (!g->name || !g->file || hmap_put(&gmap, (uint64_t)(uintptr_t)f->code, (uint64_t)(uint32_t)f->line,
                                         ngframes + 1)) {
        free(g->name);
        free(g->file);
        return UINT32_MAX;
    }
    return (uint32_t)ngframes++;
}

static struct open_prof *prof_for(uint32_t no, int64_t ts)
{
    uint64_t *v = hmap_get(&omap, no, 0);
    if (v)
        return &slots[*v - 1];
    if (nopen == PROF_OPEN_MAX) {
        /* full: the profile idle longest goes if it has had no sample for
         * 10 s (its span's end was dropped, or it is still open) */
        size_t old = PROF_OPEN_MAX;
        for (size_t i = 0; i < PROF_OPEN_MAX; i++)
            if (slots[i].no && (old == PROF_OPEN_MAX || slots[i].last_ts < slots[old].last_ts))
                old = i;
        if (old == PROF_OPEN_MAX || ts - slots[old].last_ts < 10 * 1000000000LL)
            return NULL;
        hmap_del(&omap, slots[old].no, 0);
        prof_free(&slots[old]);
        nopen--;
        dropped++;
    }
    for (size_t i = 0; i < PROF_OPEN_MAX; i++)
        if (!slots[i].no) {
            if (hmap_put(&omap, no, 0, i + 1))
                return NULL;
            slots[i].no = no;
            sprof_init(&slots[i].p);
            nopen++;
            return &slots[i];
        }
    return NULL;
}

static void hook_sample(void *ctx, const struct rec_sample *s)
{
    (void)ctx;
    if (s->state >= STATE_COUNT)
        return;
    pthread_mutex_lock(&pmu);
    struct open_prof *o = maps_init ? prof_for(s->span, s->ts) : NULL;
    if (!o) {
        if (maps_init && !hmap_get(&omap, s->span, 0))
            dropped++;
        pthread_mutex_unlock(&pmu);
        return;
    }
    o->last_ts = s->ts;
    uint32_t loc[SPROF_DEPTH_MAX];
    size_t n = s->nframes < SPROF_DEPTH_MAX ? s->nframes : SPROF_DEPTH_MAX;
    if (o->p.nsamples >= PROF_KEYS_MAX || o->p.nstack + n > PROF_STACK_MAX)
        n = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t g = gframe_of(&s->frames[i]);
        size_t j = 0;
        while (j < o->p.nframes && o->gf[j] != g)
            j++;
        if (j == o->p.nframes) {
            if (g == UINT32_MAX || o->p.nframes >= PROF_FRAMES_MAX) {
                n = 0;
                break;
            }
            uint32_t *gf = realloc(o->gf, (o->p.nframes + 1) * sizeof *gf);
            if (!gf) {
                n = 0;
                break;
            }
            o->gf = gf;
            const struct gframe *G = &gframes[g];
            int k = sprof_frame(&o->p, G->name, G->file, G->line, G->fn_line);
            if (k < 0 || (size_t)k != j) {
                n = 0;
                break;
            }
            o->gf[j] = g;
        }
        loc[i] = (uint32_t)j;
    }
    sprof_add(&o->p, loc, n, s->state, 1, s->wall_ns > 0 ? s->wall_ns : 0, s->cpu_ns > 0 ? s->cpu_ns : 0);
    pthread_mutex_unlock(&pmu);
}

static void hook_batch(void *ctx, int64_t last_ts)
{
    (void)ctx;
    pthread_mutex_lock(&pmu);
    if (last_ts > watermark)
        watermark = last_ts;
    pthread_mutex_unlock(&pmu);
}

void agent_profiles_start(int64_t start_unix_ns, struct recorder_hook *hook)
{
    pthread_mutex_lock(&pmu);
    if (!maps_init) {
        maps_init = !hmap_init(&gmap, 1024) && !hmap_init(&omap, PROF_OPEN_MAX * 2);
    } else {
        /* code objects are keyed by the sampler's pointers, freed with the
         * last recording's sampler: a new one's may take the same
         * addresses. Look them up afresh (the frames stay: open profiles
         * borrow their names). */
        hmap_fini(&gmap);
        maps_init = !hmap_init(&gmap, 1024);
    }
    start_unix = start_unix_ns;
    watermark = -1;
    active = maps_init;
    pthread_mutex_unlock(&pmu);
    *hook = (struct recorder_hook){ .sample = maps_init ? hook_sample : NULL, .batch_done = hook_batch };
}

void agent_profiles_stop(void)
{
    pthread_mutex_lock(&pmu);
    active = 0;
    pthread_mutex_unlock(&pmu);
}

int agent_profiles_ready(int64_t end_unix_ns)
{
    pthread_mutex_lock(&pmu);
    int ready = !active || (watermark >= 0 && end_unix_ns - start_unix <= watermark);
    pthread_mutex_unlock(&pmu);
    return ready;
}

uint64_t agent_profiles_dropped(void)
{
    pthread_mutex_lock(&pmu);
    uint64_t d = dropped;
    pthread_mutex_unlock(&pmu);
    return d;
}

static char *attrs_of(struct sprof *p)
{
    struct sprof_summary sum;
    sprof_summarize(p, &sum);
    unsigned char *pp = NULL;
    size_t pplen = 0;
    if (sprof_encode(p, &pp, &pplen))
        return NULL;
    char *b64 = sprof_b64(pp, pplen);
    free(pp);
    char *sj = sprof_summary_json(&sum);
    json_t *s = sj ? json_loads(sj, 0, NULL) : NULL;
    free(sj);
    json_t *a = json_object();
    const char *k;
    json_t *v;
    char key[64];
    json_object_foreach(s, k, v)
    {
        snprintf(key, sizeof key, "sonde.profile.%s", k);
        if (json_is_array(v)) {
            char *t = json_dumps(v, JSON_COMPACT);
            json_object_set_new(a, key, t ? json_string(t) : json_null());
            free(t);
        } else {
            json_object_set(a, key, v);
        }
    }
    json_object_set_new(a, "sonde.profile.pprof", b64 ? json_string(b64) : json_null());
    char *out = s && b64 ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    json_decref(s);
    free(b64);
    return out;
}

char *agent_profiles_take(uint32_t no, const char *trace_id, const char *span_id, int64_t duration_ns)
{
    if (!no)
        return NULL;
    pthread_mutex_lock(&pmu);
    uint64_t *v = maps_init ? hmap_get(&omap, no, 0) : NULL;
    if (!v) {
        pthread_mutex_unlock(&pmu);
        return NULL;
    }
    struct open_prof o = slots[*v - 1];
    memset(&slots[*v - 1], 0, sizeof o);
    hmap_del(&omap, no, 0);
    nopen--;
    /* the frames' strings stay (global frames are never freed): encode
     * outside the lock */
    pthread_mutex_unlock(&pmu);
    snprintf(o.p.trace_id, sizeof o.p.trace_id, "%s", trace_id);
    snprintf(o.p.span_id, sizeof o.p.span_id, "%s", span_id);
    o.p.duration_ns = duration_ns;
    char *a = attrs_of(&o.p);
    prof_free(&o);
    if (!a) {
        pthread_mutex_lock(&pmu);
        dropped++;
        pthread_mutex_unlock(&pmu);
    }
    return a;
}

void agent_profiles_atfork_child(void)
{
    pthread_mutex_t m0 = PTHREAD_MUTEX_INITIALIZER;
    pmu = m0;
    active = 0;
    /* the parent's profiles are the parent's spans': forget them (leaked,
     * their memory may be mid-update) */
    maps_init = 0;
    memset(slots, 0, sizeof slots);
    nopen = 0;
    gframes = NULL;
    ngframes = 0;
    dropped = 0;
}
