/* A span's profile: see spans/profile.h. */
#include "spans/profile.h"

#include "common/grow.h"
#include "common/hmap.h"
#include "common/state.h"

#include "profile.pb-c.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef Perftools__Profiles__Profile PProfile;
typedef Perftools__Profiles__ValueType PValueType;
typedef Perftools__Profiles__Sample PSample;
typedef Perftools__Profiles__Label PLabel;
typedef Perftools__Profiles__Location PLocation;
typedef Perftools__Profiles__Line PLine;
typedef Perftools__Profiles__Function PFunction;

void sprof_init(struct sprof *p)
{
    memset(p, 0, sizeof *p);
    p->duration_ns = -1;
}

void sprof_fini(struct sprof *p)
{
    free(p->frames);
    free(p->stack);
    free(p->samples);
    if (p->msg)
        perftools__profiles__profile__free_unpacked(p->msg, NULL);
    sprof_init(p);
}


int sprof_frame(struct sprof *p, const char *name, const char *file, int64_t line, int64_t fn_line)
{
    for (size_t i = p->nframes; i-- > 0;) {
        const struct sprof_frame *f = &p->frames[i];
        if (f->line == line && f->fn_line == fn_line && strcmp(f->name, name) == 0 && strcmp(f->file, file) == 0)
            return (int)i;
    }
    if (p->nframes >= SPROF_FRAMES_MAX)
        return -ENOSPC;
    if (grow_array((void **)&p->frames, &p->capframes, p->nframes + 1, sizeof *p->frames))
        return -ENOMEM;
    p->frames[p->nframes] = (struct sprof_frame){ name, file, line, fn_line };
    return (int)p->nframes++;
}

int sprof_add(struct sprof *p, const uint32_t *frames, size_t n, int state, int64_t count, int64_t wall_ns,
              int64_t cpu_ns)
{
    if (state < 0 || state >= STATE_COUNT || count < 0 || wall_ns < 0 || cpu_ns < 0 || n > SPROF_DEPTH_MAX)
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (frames[i] >= p->nframes)
            return -EINVAL;
    if (p->nsamples >= SPROF_SAMPLES_MAX)
        n = 0; /* full: the state's frameless sample */
    struct sprof_sample *hit = NULL;
    for (size_t i = p->nsamples; i-- > 0 && !hit;) {
        struct sprof_sample *s = &p->samples[i];
        if (s->state == state && s->n == n && memcmp(p->stack + s->off, frames, n * sizeof *frames) == 0)
            hit = s;
    }
    if (!hit) {
        if (p->nsamples >= SPROF_SAMPLES_MAX)
            return 0; /* the frameless sample of a state that had none: counted nowhere */
        if (grow_array((void **)&p->samples, &p->capsamples, p->nsamples + 1, sizeof *p->samples) ||
            grow_array((void **)&p->stack, &p->capstack, p->nstack + n, sizeof *p->stack))
            return -ENOMEM;
        hit = &p->samples[p->nsamples++];
        *hit = (struct sprof_sample){ .off = (uint32_t)p->nstack, .n = (uint32_t)n, .state = (uint8_t)state };
        if (n)
            memcpy(p->stack + p->nstack, frames, n * sizeof *frames);
        p->nstack += n;
    }
    hit->count += count;
    hit->wall_ns += wall_ns;
    hit->cpu_ns += cpu_ns;
    return 0;
}

/* ---- encoding ---- */

static int gzip_buf(const uint8_t *in, size_t len, unsigned char **out, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    size_t cap = deflateBound(&z, (uLong)len);
    unsigned char *b = malloc(cap);
    if (!b) {
        deflateEnd(&z);
        return -ENOMEM;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    z.next_out = b;
    z.avail_out = (uInt)cap;
    int zr = deflate(&z, Z_FINISH);
    *outlen = cap - z.avail_out;
    deflateEnd(&z);
    if (zr != Z_STREAM_END) {
        free(b);
        return -ENOMEM;
    }
    *out = b;
    return 0;
}

int sprof_encode(const struct sprof *p, unsigned char **out, size_t *len)
{
    /* strings: "", the fixed ones, then two per frame (name, file) */
    enum { S_EMPTY, S_SAMPLES, S_COUNT, S_WALL, S_NS, S_CPU, S_STATE, S_TRACE, S_SPAN, S_TID, S_SID,
           S_ST0, S_FIXED = S_ST0 + STATE_COUNT };
    size_t nstr = S_FIXED + 2 * p->nframes;
    char **strs = malloc(nstr * sizeof *strs);
    PFunction *fn = calloc(p->nframes + 1, sizeof *fn);
    PFunction **fnp = calloc(p->nframes + 1, sizeof *fnp);
    PLocation *loc = calloc(p->nframes + 1, sizeof *loc);
    PLocation **locp = calloc(p->nframes + 1, sizeof *locp);
    PLine *ln = calloc(p->nframes + 1, sizeof *ln);
    PLine **lnp = calloc(p->nframes + 1, sizeof *lnp);
    PSample *sm = calloc(p->nsamples + 1, sizeof *sm);
    PSample **smp = calloc(p->nsamples + 1, sizeof *smp);
    PLabel *lb = calloc(3 * p->nsamples + 1, sizeof *lb);
    PLabel **lbp = calloc(3 * p->nsamples + 1, sizeof *lbp);
    uint64_t *ids = calloc(p->nstack + 1, sizeof *ids);
    int64_t *vals = calloc(3 * p->nsamples + 1, sizeof *vals);
    uint8_t *buf = NULL;
    int rc = -ENOMEM;
    if (!strs || !fn || !fnp || !loc || !locp || !ln || !lnp || !sm || !smp || !lb || !lbp || !ids || !vals)
        goto out;
    static const char *const fixed[S_ST0] = { "", "samples", "count", "wall", "nanoseconds", "cpu", "state",
                                              "trace_id", "span_id" };
    for (int i = 0; i < S_TID; i++)
        strs[i] = (char *)fixed[i];
    strs[S_TID] = (char *)p->trace_id;
    strs[S_SID] = (char *)p->span_id;
    for (int i = 0; i < STATE_COUNT; i++)
        strs[S_ST0 + i] = (char *)state_name(i);
    for (size_t i = 0; i < p->nframes; i++) {
        strs[S_FIXED + 2 * i] = (char *)p->frames[i].name;
        strs[S_FIXED + 2 * i + 1] = (char *)p->frames[i].file;
        perftools__profiles__function__init(&fn[i]);
        fn[i].id = i + 1;
        fn[i].name = fn[i].system_name = (int64_t)(S_FIXED + 2 * i);
        fn[i].filename = (int64_t)(S_FIXED + 2 * i + 1);
        fn[i].start_line = p->frames[i].fn_line;
        fnp[i] = &fn[i];
        perftools__profiles__line__init(&ln[i]);
        ln[i].function_id = i + 1;
        ln[i].line = p->frames[i].line;
        lnp[i] = &ln[i];
        perftools__profiles__location__init(&loc[i]);
        loc[i].id = i + 1;
        loc[i].n_line = 1;
        loc[i].line = &lnp[i];
        locp[i] = &loc[i];
    }
    for (size_t i = 0; i < p->nstack; i++)
        ids[i] = (uint64_t)p->stack[i] + 1;
    for (size_t i = 0; i < p->nsamples; i++) {
        const struct sprof_sample *s = &p->samples[i];
        perftools__profiles__sample__init(&sm[i]);
        sm[i].n_location_id = s->n;
        sm[i].location_id = ids + s->off;
        vals[3 * i] = s->count;
        vals[3 * i + 1] = s->wall_ns;
        vals[3 * i + 2] = s->cpu_ns;
        sm[i].n_value = 3;
        sm[i].value = vals + 3 * i;
        int64_t kv[3][2] = { { S_STATE, S_ST0 + s->state }, { S_TRACE, S_TID }, { S_SPAN, S_SID } };
        for (int k = 0; k < 3; k++) {
            perftools__profiles__label__init(&lb[3 * i + k]);
            lb[3 * i + k].key = kv[k][0];
            lb[3 * i + k].str = kv[k][1];
            lbp[3 * i + k] = &lb[3 * i + k];
        }
        sm[i].n_label = 3;
        sm[i].label = lbp + 3 * i;
        smp[i] = &sm[i];
    }
    PValueType vt[4], *vtp[3];
    int64_t types[3][2] = { { S_SAMPLES, S_COUNT }, { S_WALL, S_NS }, { S_CPU, S_NS } };
    for (int i = 0; i < 4; i++) {
        perftools__profiles__value_type__init(&vt[i]);
        vt[i].type = types[i < 3 ? i : 1][0];
        vt[i].unit = types[i < 3 ? i : 1][1];
        if (i < 3)
            vtp[i] = &vt[i];
    }
    PProfile pr;
    perftools__profiles__profile__init(&pr);
    pr.n_sample_type = 3;
    pr.sample_type = vtp;
    pr.n_sample = p->nsamples;
    pr.sample = smp;
    pr.n_location = p->nframes;
    pr.location = locp;
    pr.n_function = p->nframes;
    pr.function = fnp;
    pr.n_string_table = nstr;
    pr.string_table = strs;
    pr.period_type = &vt[3];
    pr.default_sample_type = S_WALL;
    if (p->duration_ns > 0)
        pr.duration_nanos = p->duration_ns;
    size_t raw = perftools__profiles__profile__get_packed_size(&pr);
    if (raw > SPROF_RAW_MAX) {
        rc = -E2BIG;
        goto out;
    }
    buf = malloc(raw ? raw : 1);
    if (!buf)
        goto out;
    perftools__profiles__profile__pack(&pr, buf);
    rc = gzip_buf(buf, raw, out, len);
    if (!rc && *len > SPROF_BYTES_MAX) {
        free(*out);
        *out = NULL;
        rc = -E2BIG;
    }
out:
    free(strs);
    free(fn);
    free(fnp);
    free(loc);
    free(locp);
    free(ln);
    free(lnp);
    free(sm);
    free(smp);
    free(lb);
    free(lbp);
    free(ids);
    free(vals);
    free(buf);
    return rc;
}

/* ---- decoding ---- */

static int bad(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return rc;
}

/* gunzip at most SPROF_RAW_MAX bytes. */
static int gunzip_buf(const unsigned char *in, size_t len, unsigned char **out, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK)
        return -ENOMEM;
    size_t cap = len * 4 + 1024, n = 0;
    if (cap > SPROF_RAW_MAX + 1)
        cap = SPROF_RAW_MAX + 1;
    unsigned char *b = malloc(cap);
    int rc = b ? 0 : -ENOMEM;
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)len;
    while (!rc) {
        if (n == cap) {
            if (cap > SPROF_RAW_MAX) {
                rc = -E2BIG;
                break;
            }
            size_t nc = cap * 2 > SPROF_RAW_MAX + 1 ? SPROF_RAW_MAX + 1 : cap * 2;
            unsigned char *q = realloc(b, nc);
            if (!q) {
                rc = -ENOMEM;
                break;
            }
            b = q;
            cap = nc;
        }
        z.next_out = b + n;
        z.avail_out = (uInt)(cap - n);
        int zr = inflate(&z, Z_NO_FLUSH);
        n = cap - z.avail_out;
        if (zr == Z_STREAM_END) {
            if (z.avail_in)
                rc = -EINVAL; /* bytes after the stream */
            break;
        }
        if (zr != Z_OK && !(zr == Z_BUF_ERROR && n == cap))
            rc = zr == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
    }
    inflateEnd(&z);
    if (rc) {
        free(b);
        return rc;
    }
    if (n > SPROF_RAW_MAX) {
        free(b);
        return -E2BIG;
    }
    *out = b;
    *outlen = n;
    return 0;
}

static int str_ok(const PProfile *m, int64_t i)
{
    return i >= 0 && (uint64_t)i < m->n_string_table;
}

static int add_sat(int64_t *acc, int64_t v)
{
    if (v < 0 || *acc > INT64_MAX - v)
        return -1;
    *acc += v;
    return 0;
}

/* protobuf-c's allocations while unpacking one profile, against a budget
 * (frees are not subtracted: the budget bounds the work as well) */
struct unpack_budget {
    size_t used, cap;
};

static void *budget_alloc(void *data, size_t size)
{
    struct unpack_budget *b = data;
    if (b->used > b->cap || size > b->cap - b->used) {
        b->used = b->cap + 1;
        return NULL;
    }
    b->used += size;
    return malloc(size);
}

static void budget_free(void *data, void *ptr)
{
    (void)data;
    free(ptr);
}

static int decode_body(struct sprof *p, const PProfile *m, const int64_t vi[3], const char *trace_id,
                       const char *span_id, int64_t duration_ns, struct hmap *fids, struct hmap *lids, char *err,
                       size_t errlen);

int sprof_decode(const void *data, size_t len, const char *trace_id, const char *span_id, int64_t duration_ns,
                 struct sprof *p, char *err, size_t errlen)
{
    sprof_init(p);
    if (!data || len == 0)
        return bad(err, errlen, -EINVAL, "empty profile");
    if (len > SPROF_BYTES_MAX)
        return bad(err, errlen, -E2BIG, "profile of %zu bytes (at most %d)", len, SPROF_BYTES_MAX);
    const unsigned char *in = data;
    unsigned char *raw = NULL;
    size_t rawlen = len;
    if (len >= 2 && in[0] == 0x1f && in[1] == 0x8b) {
        int rc = gunzip_buf(in, len, &raw, &rawlen);
        if (rc == -E2BIG)
            return bad(err, errlen, rc, "profile larger than %d bytes unpacked", SPROF_RAW_MAX);
        if (rc)
            return bad(err, errlen, rc, rc == -ENOMEM ? "out of memory" : "profile: corrupt gzip data");
        in = raw;
    }
    /* protobuf-c builds every message before the limits below are looked
     * at: an empty sub-message is 2 bytes on the wire and a malloc'd struct
     * in memory, so the unpacking itself has a budget */
    struct unpack_budget ub = { 0, SPROF_UNPACK_MAX };
    ProtobufCAllocator al = { budget_alloc, budget_free, &ub };
    PProfile *m = perftools__profiles__profile__unpack(&al, rawlen, in);
    free(raw);
    if (!m)
        return ub.used > ub.cap ? bad(err, errlen, -E2BIG, "profile: more than %d MB unpacked", SPROF_UNPACK_MAX >> 20)
                                : bad(err, errlen, -EINVAL, "profile: not a pprof profile");
    p->msg = m;
    if (m->n_string_table == 0 || m->string_table[0][0])
        return bad(err, errlen, -EINVAL, "profile: string table does not start with \"\"");
    for (size_t i = 0; i < m->n_string_table; i++)
        if (strlen(m->string_table[i]) > SPROF_TEXT_MAX)
            return bad(err, errlen, -E2BIG, "profile: string %zu longer than %d bytes", i, SPROF_TEXT_MAX);
    if (m->n_sample > SPROF_SAMPLES_MAX || m->n_location > SPROF_FRAMES_MAX || m->n_function > SPROF_FRAMES_MAX)
        return bad(err, errlen, -E2BIG, "profile: more than %d samples, locations or functions",
                   SPROF_SAMPLES_MAX);
    /* sample types */
    int64_t vi[3] = { -1, -1, -1 };
    static const char *const tn[3] = { "samples", "wall", "cpu" };
    for (size_t i = 0; i < m->n_sample_type; i++) {
        if (!str_ok(m, m->sample_type[i]->type) || !str_ok(m, m->sample_type[i]->unit))
            return bad(err, errlen, -EINVAL, "profile: sample type %zu names no string", i);
        for (int k = 0; k < 3; k++)
            if (vi[k] < 0 && strcmp(m->string_table[m->sample_type[i]->type], tn[k]) == 0)
                vi[k] = (int64_t)i;
    }
    if (vi[0] < 0 || vi[1] < 0 || vi[2] < 0)
        return bad(err, errlen, -EINVAL, "profile: sample types samples, wall and cpu are not all there");
    /* functions, then locations as frames; ids are looked up in maps (a
     * scan per reference would be quadratic in what the sender chooses) */
    struct hmap fids, lids;
    if (hmap_init(&fids, m->n_function + 1))
        return bad(err, errlen, -ENOMEM, "out of memory");
    if (hmap_init(&lids, m->n_location + 1)) {
        hmap_fini(&fids);
        return bad(err, errlen, -ENOMEM, "out of memory");
    }
    int rc = decode_body(p, m, vi, trace_id, span_id, duration_ns, &fids, &lids, err, errlen);
    hmap_fini(&fids);
    hmap_fini(&lids);
    return rc;
}

static int decode_body(struct sprof *p, const PProfile *m, const int64_t vi[3], const char *trace_id,
                       const char *span_id, int64_t duration_ns, struct hmap *fids, struct hmap *lids, char *err,
                       size_t errlen)
{
    for (size_t i = 0; i < m->n_function; i++) {
        const PFunction *f = m->function[i];
        if (f->id == 0 || !str_ok(m, f->name) || !str_ok(m, f->filename) || !str_ok(m, f->system_name))
            return bad(err, errlen, -EINVAL, "profile: function %zu: bad id or string index", i);
        if (hmap_get(fids, f->id, 0))
            return bad(err, errlen, -EINVAL, "profile: function id %llu twice", (unsigned long long)f->id);
        if (hmap_put(fids, f->id, 0, i))
            return bad(err, errlen, -ENOMEM, "out of memory");
    }
    if (grow_array((void **)&p->frames, &p->capframes, m->n_location + 1, sizeof *p->frames))
        return bad(err, errlen, -ENOMEM, "out of memory");
    for (size_t i = 0; i < m->n_location; i++) {
        const PLocation *l = m->location[i];
        if (l->id == 0)
            return bad(err, errlen, -EINVAL, "profile: location %zu has id 0", i);
        if (hmap_get(lids, l->id, 0))
            return bad(err, errlen, -EINVAL, "profile: location id %llu twice", (unsigned long long)l->id);
        if (hmap_put(lids, l->id, 0, i))
            return bad(err, errlen, -ENOMEM, "out of memory");
        if (l->n_line == 0)
            return bad(err, errlen, -EINVAL, "profile: location %llu has no line", (unsigned long long)l->id);
        /* the innermost of inlined lines is the frame */
        const PLine *ln = l->line[0];
        const uint64_t *fi = hmap_get(fids, ln->function_id, 0);
        const PFunction *f = fi ? m->function[*fi] : NULL;
        if (!f)
            return bad(err, errlen, -EINVAL, "profile: location %llu names no function",
                       (unsigned long long)l->id);
        p->frames[p->nframes++] = (struct sprof_frame){ m->string_table[f->name], m->string_table[f->filename],
                                                        ln->line, f->start_line };
    }
    /* samples */
    int64_t tot_wall = 0, tot_cpu = 0, tot_count = 0;
    for (size_t i = 0; i < m->n_sample; i++) {
        const PSample *s = m->sample[i];
        if (s->n_value != m->n_sample_type)
            return bad(err, errlen, -EINVAL, "profile: sample %zu has %zu values for %zu types", i, s->n_value,
                       m->n_sample_type);
        if (s->n_location_id > SPROF_DEPTH_MAX)
            return bad(err, errlen, -E2BIG, "profile: sample %zu deeper than %d frames", i, SPROF_DEPTH_MAX);
        int state = -1;
        for (size_t k = 0; k < s->n_label; k++) {
            const PLabel *lb = s->label[k];
            if (!str_ok(m, lb->key) || !str_ok(m, lb->str))
                return bad(err, errlen, -EINVAL, "profile: sample %zu: label names no string", i);
            const char *key = m->string_table[lb->key], *val = m->string_table[lb->str];
            if (strcmp(key, "state") == 0) {
                int st = -1;
                for (int x = 0; x < STATE_COUNT; x++)
                    if (strcmp(val, state_name(x)) == 0)
                        st = x;
                if (st < 0 || state >= 0)
                    return bad(err, errlen, -EINVAL, "profile: sample %zu: bad or second state label", i);
                state = st;
            } else if (trace_id && strcmp(key, "trace_id") == 0 && strcmp(val, trace_id) != 0) {
                return bad(err, errlen, -EINVAL, "profile: sample %zu is of trace %.40s, not of its span's", i,
                           val);
            } else if (span_id && strcmp(key, "span_id") == 0 && strcmp(val, span_id) != 0) {
                return bad(err, errlen, -EINVAL, "profile: sample %zu is of span %.40s, not of its span", i, val);
            }
        }
        if (state < 0)
            return bad(err, errlen, -EINVAL, "profile: sample %zu has no state label", i);
        int64_t c = s->value[vi[0]], w = s->value[vi[1]], u = s->value[vi[2]];
        if (c < 0 || w < 0 || u < 0)
            return bad(err, errlen, -EINVAL, "profile: sample %zu has a negative value", i);
        if (add_sat(&tot_count, c) || add_sat(&tot_wall, w) || add_sat(&tot_cpu, u))
            return bad(err, errlen, -EINVAL, "profile: totals overflow");
        if (grow_array((void **)&p->samples, &p->capsamples, p->nsamples + 1, sizeof *p->samples) ||
            grow_array((void **)&p->stack, &p->capstack, p->nstack + s->n_location_id + 1, sizeof *p->stack))
            return bad(err, errlen, -ENOMEM, "out of memory");
        struct sprof_sample *o = &p->samples[p->nsamples++];
        *o = (struct sprof_sample){ .off = (uint32_t)p->nstack, .n = (uint32_t)s->n_location_id,
                                    .state = (uint8_t)state, .count = c, .wall_ns = w, .cpu_ns = u };
        for (size_t k = 0; k < s->n_location_id; k++) {
            const uint64_t *j = hmap_get(lids, s->location_id[k], 0);
            if (!j)
                return bad(err, errlen, -EINVAL, "profile: sample %zu names location %llu, which is not there", i,
                           (unsigned long long)s->location_id[k]);
            p->stack[p->nstack++] = (uint32_t)*j;
        }
    }
    if (duration_ns >= 0) {
        int64_t d = duration_ns > INT64_MAX / 8 ? INT64_MAX / 8 : duration_ns;
        if (tot_wall > 4 * d + 1000000000)
            return bad(err, errlen, -EINVAL, "profile: %.3f s of wall time in a span of %.3f s", tot_wall / 1e9,
                       d / 1e9);
        if (tot_cpu > tot_wall + 1000000000)
            return bad(err, errlen, -EINVAL, "profile: %.3f s of CPU time in %.3f s of wall time", tot_cpu / 1e9,
                       tot_wall / 1e9);
    }
    if (trace_id)
        snprintf(p->trace_id, sizeof p->trace_id, "%s", trace_id);
    if (span_id)
        snprintf(p->span_id, sizeof p->span_id, "%s", span_id);
    p->duration_ns = m->duration_nanos > 0 ? m->duration_nanos : -1;
    return 0;
}

/* ---- summary ---- */

void sprof_summarize(const struct sprof *p, struct sprof_summary *s)
{
    memset(s, 0, sizeof *s);
    /* self wall per function (name, file, first line): a small open table
     * over frame indices, the first frame of each function standing for it */
    size_t nf = p->nframes;
    int64_t *self = nf ? calloc(nf, sizeof *self) : NULL;
    uint32_t *rep = nf ? malloc(nf * sizeof *rep) : NULL;
    if (rep)
        for (size_t i = 0; i < nf; i++) {
            rep[i] = (uint32_t)i;
            for (size_t j = 0; j < i; j++)
                if (rep[j] == j && p->frames[j].fn_line == p->frames[i].fn_line &&
                    strcmp(p->frames[j].name, p->frames[i].name) == 0 &&
                    strcmp(p->frames[j].file, p->frames[i].file) == 0) {
                    rep[i] = (uint32_t)j;
                    break;
                }
        }
    for (size_t i = 0; i < p->nsamples; i++) {
        const struct sprof_sample *x = &p->samples[i];
        s->samples += x->count;
        s->wall_ns += x->wall_ns;
        s->cpu_ns += x->cpu_ns;
        if (x->state < 4)
            s->state_ns[x->state] += x->wall_ns;
        if (x->n && self && rep)
            self[rep[p->stack[x->off]]] += x->wall_ns;
    }
    for (size_t k = 0; k < SPROF_TOP && self && rep; k++) {
        size_t best = nf;
        for (size_t i = 0; i < nf; i++)
            if (self[i] > 0 && (best == nf || self[i] > self[best]))
                best = i;
        if (best == nf)
            break;
        s->top[s->ntop++] = (struct sprof_top){ p->frames[best].name, p->frames[best].file, p->frames[best].fn_line,
                                                self[best] };
        self[best] = 0;
    }
    free(self);
    free(rep);
}

char *sprof_summary_json(const struct sprof_summary *s)
{
    double w = s->wall_ns > 0 ? (double)s->wall_ns : 1;
    json_t *top = json_array();
    for (size_t i = 0; i < s->ntop && top; i++)
        if (json_array_append_new(top, json_pack("{sssssIsf}", "function", s->top[i].function, "file", s->top[i].file,
                                                 "line", (json_int_t)s->top[i].line, "self_wall_s",
                                                 s->top[i].self_wall_ns / 1e9)))
            top = (json_decref(top), NULL);
    if (!top)
        return NULL;
    json_t *j = json_pack("{sIsfsfsfsfsfsfso}", "samples", (json_int_t)s->samples, "wall_s", s->wall_ns / 1e9,
                          "cpu_s", s->cpu_ns / 1e9, "gil_pct", 100.0 * s->state_ns[STATE_GIL] / w, "gil_wait_pct",
                          100.0 * s->state_ns[STATE_GIL_WAIT] / w, "nogil_pct", 100.0 * s->state_ns[STATE_NOGIL] / w,
                          "idle_pct", 100.0 * s->state_ns[STATE_IDLE] / w, "top", top);
    char *txt = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    return txt;
}

/* ---- base64 ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *sprof_b64(const unsigned char *in, size_t n)
{
    char *o = malloc((n + 2) / 3 * 4 + 1), *q = o;
    if (!o)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        *q++ = b64[v >> 18 & 63];
        *q++ = b64[v >> 12 & 63];
        *q++ = i + 1 < n ? b64[v >> 6 & 63] : '=';
        *q++ = i + 2 < n ? b64[v & 63] : '=';
    }
    *q = 0;
    return o;
}

int sprof_unb64(const char *in, size_t n, unsigned char **out, size_t *outlen)
{
    if (n % 4)
        return -EINVAL;
    unsigned char *o = malloc(n / 4 * 3 + 1);
    if (!o)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v = 0;
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            char c = in[i + j];
            const char *at = c ? strchr(b64, c) : NULL;
            if (c == '=' && i + 4 == n && j >= 2 && (j == 3 || in[i + 3] == '=')) {
                pad++;
                v <<= 6;
            } else if (at && !pad) {
                v = v << 6 | (uint32_t)(at - b64);
            } else {
                free(o);
                return -EINVAL;
            }
        }
        o[k++] = (unsigned char)(v >> 16);
        if (pad < 2)
            o[k++] = (unsigned char)(v >> 8);
        if (pad < 1)
            o[k++] = (unsigned char)v;
    }
    *out = o;
    *outlen = k;
    return 0;
}
