/* pprof's profile.proto, gzipped (what `go tool pprof` reads). The message
 * structs come from formats/profile.proto through protoc-c at build time;
 * zlib does the gzip. Sample types: samples (count), wall (nanoseconds),
 * cpu (nanoseconds); the default is the --mode one. One location per frame
 * (function + executing line), one function per (name, file, first line);
 * samples are aggregated per (thread, green thread, stack) and labelled
 * thread=<name>, and task=<name (function)> while a green thread ran (or,
 * under --task, was suspended). */
#include "formats/export.h"

#include "common/err.h"

#include "profile.pb-c.h"

#include <errno.h>
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
typedef Perftools__Profiles__Mapping PMapping;

/* Native frames' mappings: mapping k (from 1) stands at k << MAP_SHIFT in a
 * made-up address space, one range per module, so that each location's
 * address is its module's base plus its offset in the module. */
#define MAP_SHIFT 40

struct pp_strtab {
    char **s; size_t n, cap;
    int64_t *of_model; /* by model string id: index, 0 = not yet */
};

static int64_t str_add(struct pp_strtab *st, const char *s)
{
    if (st->n == st->cap)
        return 0; /* capacity is computed up front: never happens */
    st->s[st->n] = (char *)s;
    return (int64_t)st->n++;
}

static int64_t str_model(struct pp_strtab *st, const struct model *m, uint32_t id)
{
    if (id == 0 || id >= m->nstrings)
        return 0;
    if (!st->of_model[id])
        st->of_model[id] = str_add(st, model_str(m, id));
    return st->of_model[id];
}

struct agg {
    uint64_t key; /* thread << 32 | stack, +1 so that 0 is empty */
    uint32_t green; /* the green thread that ran (or, under --task, waited), 0 = none */
    int64_t samples, wall, cpu, gil;
};

static int gzip_to(FILE *out, const uint8_t *buf, size_t len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    uint8_t chunk[1 << 16];
    z.next_in = (Bytef *)buf;
    z.avail_in = (uInt)len;
    int zr, rc = 0;
    do {
        z.next_out = chunk;
        z.avail_out = sizeof chunk;
        zr = deflate(&z, Z_FINISH);
        size_t have = sizeof chunk - z.avail_out;
        if (have && fwrite(chunk, 1, have, out) != have) {
            rc = -EIO;
            break;
        }
    } while (zr == Z_OK || zr == Z_BUF_ERROR);
    if (!rc && zr != Z_STREAM_END)
        rc = -EIO;
    deflateEnd(&z);
    return rc;
}

static int pprof_write(const struct model *m, const struct export_opts *o, FILE *out, char *err,
                       size_t errlen)
{
    struct calltree *t = NULL;
    struct pp_strtab st = { 0 };
    struct agg *agg = NULL;
    PValueType vt[5], *vtp[4];
    PSample *samples = NULL, **samplep = NULL;
    PLabel *labels = NULL, **labelp = NULL;
    PLocation *locs = NULL, **locp = NULL;
    PMapping *maps = NULL, **mapp = NULL;
    uint32_t *map_of = NULL; /* by string id: mapping id, 0 = none yet */
    size_t nmap = 0;
    PLine *lines = NULL, **linep = NULL;
    PFunction *funcs = NULL, **funcp = NULL;
    uint64_t *locids = NULL;
    int64_t *values = NULL, *thread_str = NULL, *green_str = NULL;
    uint32_t *frames = NULL;
    uint8_t *buf = NULL;
    char **labels_txt = NULL, **green_txt = NULL, **fn_txt = NULL;
    int rc = export_calltree(m, o, &t);
    if (rc)
        goto oom;
    rc = -ENOMEM;
    uint32_t cap = calltree_max_depth(m);
    size_t nslots = 16;
    while (nslots < (m->nsamples + (o->green ? m->ngsamples : 0)) * 2 + 2)
        nslots <<= 1;
    st.cap = m->nstrings + m->nthreads + m->ngreens + t->nfuncs + 32;
    st.s = calloc(st.cap, sizeof *st.s);
    st.of_model = calloc(m->nstrings + 1, sizeof *st.of_model);
    agg = calloc(nslots, sizeof *agg);
    frames = malloc(((size_t)cap + 1) * sizeof *frames);
    thread_str = calloc(m->nthreads + 1, sizeof *thread_str);
    green_str = calloc(m->ngreens + 1, sizeof *green_str);
    green_txt = calloc(m->ngreens + 1, sizeof *green_txt);
    if (!st.s || !st.of_model || !agg || !frames || !thread_str || !green_str || !green_txt)
        goto oom;

    /* aggregate per (thread, stack) */
    size_t nagg = 0, nlocids = 0, ngreen = 0;
    struct ct_filter flt = export_filter(o);
    struct export_iter it;
    export_iter_init(&it, m, &flt);
    for (const struct m_sample *s; (s = export_iter_next(&it));) {
        uint64_t key = ((uint64_t)s->thread << 32 | s->stack) + 1;
        uint32_t g = s->green < m->ngreens ? s->green : 0;
        uint64_t h = (key ^ (uint64_t)g * 0xc2b2ae3d27d4eb4fULL) * 0x9e3779b97f4a7c15ULL;
        size_t j = (h >> 20) & (nslots - 1);
        while (agg[j].key && (agg[j].key != key || agg[j].green != g))
            j = (j + 1) & (nslots - 1);
        if (!agg[j].key) {
            agg[j].key = key;
            agg[j].green = g;
            ngreen += g != 0;
            nagg++;
            nlocids += s->stack ? m->stacks[s->stack].depth : 1;
        }
        agg[j].samples++;
        agg[j].wall += s->wall_ns > 0 ? s->wall_ns : 0;
        agg[j].cpu += s->cpu_ns > 0 ? s->cpu_ns : 0;
        if (s->state == STATE_GIL)
            agg[j].gil += s->wall_ns > 0 ? s->wall_ns : 0;
    }
    /* --mode gil adds a fourth value, the wall time with the GIL held */
    const int nv = o->mode == EXPORT_GIL ? 4 : 3;

    str_add(&st, "");
    int64_t s_samples = str_add(&st, "samples"), s_count = str_add(&st, "count");
    int64_t s_wall = str_add(&st, "wall"), s_ns = str_add(&st, "nanoseconds");
    int64_t s_cpu = str_add(&st, "cpu"), s_thread = str_add(&st, "thread");
    int64_t s_gil = str_add(&st, "gil");
    int64_t s_noframes = str_add(&st, calltree_func_name(m, t, 0));
    int64_t s_sonde = str_add(&st, calltree_func_file(m, t, 0));
    labels_txt = calloc(m->nthreads + 1, sizeof *labels_txt);
    if (!labels_txt)
        goto oom;
    for (uint32_t th = 1; th < m->nthreads; th++) {
        char label[256];
        model_thread_label(m, th, label, sizeof label);
        labels_txt[th] = strdup(label);
        thread_str[th] = labels_txt[th] ? str_add(&st, labels_txt[th]) : 0;
    }
    /* green thread labels: only in a profile with green thread samples */
    int64_t s_task = ngreen ? str_add(&st, "task") : 0;
    for (size_t j = 0; ngreen && j < nslots; j++) {
        uint32_t g = agg[j].key ? agg[j].green : 0;
        if (!g || green_txt[g])
            continue;
        const struct m_green *mg = &m->greens[g];
        const char *name = mg->name && *mg->name ? mg->name : "?";
        char id[16] = ""; /* a name other green threads share: its id too, or they merge */
        if (mg->shared)
            snprintf(id, sizeof id, " #%u", g);
        if ((mg->func && *mg->func ? asprintf(&green_txt[g], "%s%s (%s)", name, id, mg->func)
                                   : asprintf(&green_txt[g], "%s%s", name, id)) < 0) {
            green_txt[g] = NULL;
            goto oom;
        }
        green_str[g] = str_add(&st, green_txt[g]);
    }

    PProfile p = PERFTOOLS__PROFILES__PROFILE__INIT;
    const int64_t types[4][2] = { { s_samples, s_count }, { s_wall, s_ns }, { s_cpu, s_ns },
                                  { s_gil, s_ns } };
    for (int i = 0; i < nv; i++) {
        perftools__profiles__value_type__init(&vt[i]);
        vt[i].type = types[i][0];
        vt[i].unit = types[i][1];
        vtp[i] = &vt[i];
    }
    perftools__profiles__value_type__init(&vt[4]);
    vt[4].type = s_wall;
    vt[4].unit = s_ns;
    p.n_sample_type = (size_t)nv;
    p.sample_type = vtp;
    p.period_type = &vt[4];
    const char *rate = model_meta(m, "rate_hz");
    long hz = rate ? strtol(rate, NULL, 10) : 0;
    p.period = hz > 0 ? 1000000000L / hz : 0;
    p.default_sample_type = o->mode == EXPORT_CPU ? s_cpu : o->mode == EXPORT_GIL ? s_gil : s_wall;
    const char *v = model_meta(m, "start_unix_ns");
    p.time_nanos = v ? strtoll(v, NULL, 10) : 0;
    v = model_meta(m, "duration_ns");
    p.duration_nanos = v ? strtoll(v, NULL, 10) : 0;

    /* functions: func f >= 1 has id f; func 0 ([no Python frames]) id nfuncs */
    size_t nf = t->nfuncs;
    funcs = calloc(nf, sizeof *funcs);
    fn_txt = calloc(nf + 1, sizeof *fn_txt);
    funcp = calloc(nf, sizeof *funcp);
    /* locations: frame i >= 1 has id i; id nframes is [no Python frames] */
    size_t nl = m->nframes ? m->nframes : 1;
    locs = calloc(nl, sizeof *locs);
    locp = calloc(nl, sizeof *locp);
    lines = calloc(nl, sizeof *lines);
    linep = calloc(nl, sizeof *linep);
    samples = calloc(nagg + 1, sizeof *samples);
    samplep = calloc(nagg + 1, sizeof *samplep);
    labels = calloc(nagg + ngreen + 1, sizeof *labels);
    labelp = calloc(nagg + ngreen + 1, sizeof *labelp);
    locids = calloc(nlocids + 1, sizeof *locids);
    values = calloc(4 * nagg + 1, sizeof *values);
    if (!funcs || !fn_txt || !funcp || !locs || !locp || !lines || !linep || !samples || !samplep ||
        !labels || !labelp || !locids || !values)
        goto oom;
    for (size_t f = 0; f < nf; f++) {
        PFunction *fn = &funcs[f];
        perftools__profiles__function__init(fn);
        fn->id = f ? f : nf;
        if (f) {
            fn->name = fn->system_name = str_model(&st, m, t->funcs[f].name);
            /* pprof drops a name that is all <...> (a C++ template
             * argument to it): <module>, <listcomp> and the like show
             * as (module), (listcomp); system_name keeps the original */
            const char *nm = model_str(m, t->funcs[f].name);
            size_t len = nm ? strlen(nm) : 0;
            if (len >= 2 && nm[0] == '<' && nm[len - 1] == '>') {
                if (asprintf(&fn_txt[f], "(%.*s)", (int)(len - 2), nm + 1) < 0) {
                    fn_txt[f] = NULL;
                    goto oom;
                }
                fn->name = str_add(&st, fn_txt[f]);
            }
            if (t->funcs[f].native && !strcmp(nm, "??")) {
                /* no symbol: the module's file name and the offset */
                const char *mod = model_str(m, t->funcs[f].file), *b = strrchr(mod, '/');
                if (asprintf(&fn_txt[f], "%s+0x%llx", b ? b + 1 : mod,
                             (unsigned long long)t->funcs[f].address) < 0) {
                    fn_txt[f] = NULL;
                    goto oom;
                }
                fn->name = fn->system_name = str_add(&st, fn_txt[f]);
            }
            fn->filename = str_model(&st, m, t->funcs[f].file);
            fn->start_line = t->funcs[f].line;
        } else {
            fn->name = fn->system_name = s_noframes;
            fn->filename = s_sonde;
        }
        funcp[f] = fn;
    }
    maps = calloc(nl, sizeof *maps);
    mapp = calloc(nl, sizeof *mapp);
    map_of = calloc(m->nstrings + 1, sizeof *map_of);
    if (!maps || !mapp || !map_of)
        goto oom;
    for (size_t i = 0; i < nl; i++) {
        PLocation *l = &locs[i];
        perftools__profiles__location__init(l);
        perftools__profiles__line__init(&lines[i]);
        l->id = i ? i : nl;
        lines[i].function_id = i ? (t->frame_func[i] ? t->frame_func[i] : nf) : nf;
        lines[i].line = i ? m->frames[i].line : 0;
        linep[i] = &lines[i];
        l->n_line = 1;
        l->line = &linep[i];
        const struct m_frame *fr = i && i < m->nframes ? &m->frames[i] : NULL;
        if (fr && fr->kind == 1 && fr->module && fr->module < m->nstrings) {
            /* a native frame: its module's mapping, its address in it */
            if (!map_of[fr->module]) {
                PMapping *mp = &maps[nmap];
                perftools__profiles__mapping__init(mp);
                mp->id = ++nmap;
                mp->memory_start = (uint64_t)mp->id << MAP_SHIFT;
                mp->memory_limit = ((uint64_t)mp->id + 1) << MAP_SHIFT;
                mp->filename = str_model(&st, m, fr->module);
                mp->has_functions = mp->has_filenames = 1;
                mp->has_line_numbers = 1;
                mapp[nmap - 1] = mp;
                map_of[fr->module] = (uint32_t)mp->id;
            }
            l->mapping_id = map_of[fr->module];
            l->address = ((uint64_t)l->mapping_id << MAP_SHIFT) |
                         (fr->address & (((uint64_t)1 << MAP_SHIFT) - 1));
        }
        locp[i] = l;
    }
    size_t k = 0, li = 0, lk = 0;
    for (size_t j = 0; j < nslots; j++) {
        if (!agg[j].key)
            continue;
        uint32_t th = (uint32_t)((agg[j].key - 1) >> 32), stk = (uint32_t)(agg[j].key - 1);
        PSample *s = &samples[k];
        perftools__profiles__sample__init(s);
        s->location_id = &locids[li];
        if (stk == 0) {
            locids[li++] = nl;
            s->n_location_id = 1;
        } else {
            uint32_t d = calltree_stack_frames(m, stk, frames, cap);
            for (uint32_t x = d; x-- > 0;)
                locids[li++] = frames[x];
            s->n_location_id = d;
        }
        s->value = &values[4 * k];
        s->n_value = (size_t)nv;
        values[4 * k] = agg[j].samples;
        values[4 * k + 1] = agg[j].wall;
        values[4 * k + 2] = agg[j].cpu;
        values[4 * k + 3] = agg[j].gil;
        perftools__profiles__label__init(&labels[lk]);
        labels[lk].key = s_thread;
        labels[lk].str = thread_str[th < m->nthreads ? th : 0];
        labelp[lk] = &labels[lk];
        s->n_label = 1;
        s->label = &labelp[lk++];
        if (agg[j].green) {
            perftools__profiles__label__init(&labels[lk]);
            labels[lk].key = s_task;
            labels[lk].str = green_str[agg[j].green];
            labelp[lk] = &labels[lk];
            s->n_label = 2;
            lk++;
        }
        samplep[k] = s;
        k++;
    }
    p.n_sample = k;
    p.sample = samplep;
    p.n_function = nf;
    p.function = funcp;
    p.n_location = nl;
    p.location = locp;
    p.n_mapping = nmap;
    p.mapping = mapp;
    p.n_string_table = st.n;
    p.string_table = st.s;

    size_t len = perftools__profiles__profile__get_packed_size(&p);
    buf = malloc(len ? len : 1);
    if (!buf)
        goto oom;
    perftools__profiles__profile__pack(&p, buf);
    rc = gzip_to(out, buf, len);
    if (rc == -ENOMEM)
        goto oom;
    rc = rc ? se_fail(err, errlen, rc, "write error") : export_finish(out, err, errlen);
    goto done;
oom:
    rc = se_fail(err, errlen, -ENOMEM, "out of memory");
done:
    for (uint32_t th = 1; labels_txt && th < m->nthreads; th++)
        free(labels_txt[th]);
    free(labels_txt);
    for (size_t g = 0; green_txt && g <= m->ngreens; g++)
        free(green_txt[g]);
    free(green_txt);
    for (size_t f = 0; fn_txt && f < t->nfuncs; f++)
        free(fn_txt[f]);
    free(fn_txt);
    free(green_str);
    free(buf);
    free(values);
    free(locids);
    free(labelp);
    free(labels);
    free(samplep);
    free(samples);
    free(linep);
    free(lines);
    free(locp);
    free(locs);
    free(maps);
    free(mapp);
    free(map_of);
    free(funcp);
    free(funcs);
    free(thread_str);
    free(frames);
    free(agg);
    free(st.s);
    free(st.of_model);
    calltree_free(t);
    return rc;
}

const struct exporter export_pprof = {
    .name = "pprof",
    .ext = ".pb.gz",
    .desc = "gzipped profile.proto for go tool pprof (sample types: samples, wall, cpu)",
    .write = pprof_write,
};
