/* Exporters on synthetic recordings: every format writes, callgrind costs
 * add up (and recursion does not inflate inclusive costs), collapsed and
 * pprof totals equal the recording's. */
#include "synth.h"

#include "formats/export.h"
#include "profile.pb-c.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static int failures;
#define CHECK(c, ...)                                                   \
    do {                                                                \
        if (!(c)) {                                                     \
            fprintf(stderr, "%s:%d: FAIL %s: ", __FILE__, __LINE__, #c); \
            fprintf(stderr, __VA_ARGS__);                               \
            fputc('\n', stderr);                                        \
            failures++;                                                 \
        }                                                               \
    } while (0)

static char *run(const struct exporter *ex, const struct model *m, const struct export_opts *o,
                 size_t *len)
{
    char *buf = NULL, err[256] = "";
    FILE *f = open_memstream(&buf, len);
    int rc = ex->write(m, o, f, err, sizeof err);
    fclose(f);
    CHECK(rc == 0, "%s: %s", ex->name, err);
    CHECK(*len > 0, "%s wrote nothing", ex->name);
    return buf;
}

static void totals(const struct model *m, uint32_t thread, int64_t *wall_us, int64_t *cpu_us,
                   int64_t *n)
{
    *wall_us = *cpu_us = *n = 0;
    for (size_t i = 0; i < m->nsamples; i++)
        if (!thread || m->samples[i].thread == thread) {
            *wall_us += m->samples[i].wall_ns / 1000;
            *cpu_us += m->samples[i].cpu_ns / 1000;
            (*n)++;
        }
}

/* Callgrind: summary == totals == sum of self lines == recording; every
 * function's incoming inclusive cost <= total. */
static void check_callgrind(const struct model *m, uint32_t thread, int cpu, const char *text)
{
    int64_t w, c, n, sw = 0, sc = 0, sn = 0, s[3] = { 0 }, t[3] = { 0 };
    totals(m, thread, &w, &c, &n);
    if (cpu) { /* the mode's event comes first */
        int64_t x = w;
        w = c;
        c = x;
    }
    int64_t incoming[4096] = { 0 };
    int after_calls = 0, cfn = 0, nfn_lines = 0;
    char *copy = strdup(text), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        long long a, b, d, e;
        if (sscanf(line, "summary: %lld %lld %lld", &a, &b, &d) == 3) {
            s[0] = a; s[1] = b; s[2] = d;
        } else if (sscanf(line, "totals: %lld %lld %lld", &a, &b, &d) == 3) {
            t[0] = a; t[1] = b; t[2] = d;
        } else if (sscanf(line, "cfn=(%d)", &cfn) == 1) {
        } else if (!strncmp(line, "calls=", 6)) {
            after_calls = 1;
        } else if (!strncmp(line, "fn=", 3)) {
            nfn_lines++;
        } else if (sscanf(line, "%lld %lld %lld %lld", &e, &a, &b, &d) == 4) {
            if (after_calls) {
                if (cfn > 0 && cfn < 4096)
                    incoming[cfn] += a;
                after_calls = 0;
            } else {
                sw += a; sc += b; sn += d;
            }
        }
    }
    free(copy);
    CHECK(s[0] == w && s[1] == c && s[2] == n, "summary %lld %lld %lld vs recording %lld %lld %lld",
          (long long)s[0], (long long)s[1], (long long)s[2], (long long)w, (long long)c, (long long)n);
    CHECK(!memcmp(s, t, sizeof s), "totals differ from summary");
    CHECK(sw == w && sc == c && sn == n, "self costs %lld %lld %lld vs %lld %lld %lld",
          (long long)sw, (long long)sc, (long long)sn, (long long)w, (long long)c, (long long)n);
    CHECK(nfn_lines > 0, "no functions");
    for (int i = 0; i < 4096; i++)
        CHECK(incoming[i] <= w, "function %d has inclusive %lld > total %lld", i,
              (long long)incoming[i], (long long)w);
}

static int64_t collapsed_sum(const char *text, int *lines)
{
    int64_t sum = 0;
    *lines = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        const char *sp = nl;
        while (sp > p && sp[-1] != ' ')
            sp--;
        sum += strtoll(sp, NULL, 10);
        (*lines)++;
        p = nl + 1;
    }
    return sum;
}

static void check_pprof(const struct model *m, const char *gz, size_t len)
{
    size_t cap = 1 << 24;
    uint8_t *raw = malloc(cap);
    z_stream z;
    memset(&z, 0, sizeof z);
    inflateInit2(&z, 15 + 32);
    z.next_in = (Bytef *)gz;
    z.avail_in = (uInt)len;
    z.next_out = raw;
    z.avail_out = (uInt)cap;
    int zr = inflate(&z, Z_FINISH);
    CHECK(zr == Z_STREAM_END, "gunzip: %d", zr);
    size_t rawlen = cap - z.avail_out;
    inflateEnd(&z);
    Perftools__Profiles__Profile *p = perftools__profiles__profile__unpack(NULL, rawlen, raw);
    CHECK(p != NULL, "profile does not unpack");
    if (p) {
        int64_t w, c, n, v[3] = { 0 };
        totals(m, 0, &w, &c, &n);
        for (size_t i = 0; i < p->n_sample; i++) {
            for (int k = 0; k < 3; k++)
                v[k] += p->sample[i]->value[k];
            for (size_t k = 0; k < p->sample[i]->n_location_id; k++)
                CHECK(p->sample[i]->location_id[k] >= 1 &&
                          p->sample[i]->location_id[k] <= p->n_location,
                      "bad location id");
            CHECK(p->sample[i]->n_label == 1, "thread label");
        }
        CHECK(p->n_string_table > 0 && p->string_table[0][0] == 0, "string_table[0] must be empty");
        CHECK(v[0] == n, "pprof samples %lld vs %lld", (long long)v[0], (long long)n);
        CHECK(v[1] / 1000 >= w && v[1] / 1000 <= w + n, "pprof wall %lld vs %lld us",
              (long long)v[1], (long long)w);
        perftools__profiles__profile__free_unpacked(p, NULL);
    }
    free(raw);
}

static void check_file(const char *path)
{
    struct model *m;
    char err[256];
    int rc = model_load(path, &m, err, sizeof err);
    CHECK(rc == 0, "model_load: %s", err);
    if (rc)
        return;
    for (int mode = 0; mode < 2; mode++) {
        struct export_opts o = { .mode = (enum export_mode)mode, .input = path };
        for (size_t i = 0; export_formats[i]; i++) {
            size_t len;
            char *out = run(export_formats[i], m, &o, &len);
            if (export_formats[i] == &export_callgrind)
                check_callgrind(m, 0, mode, out);
            if (export_formats[i] == &export_pprof)
                check_pprof(m, out, len);
            if (export_formats[i] == &export_collapsed) {
                int64_t want = 0;
                int lines;
                for (size_t k = 0; k < m->nsamples; k++)
                    want += mode ? m->samples[k].cpu_ns : m->samples[k].wall_ns;
                want /= 1000;
                int64_t sum = collapsed_sum(out, &lines);
                CHECK(sum >= want - lines && sum <= want + lines, "collapsed %lld vs %lld",
                      (long long)sum, (long long)want);
            }
            if (export_formats[i] == &export_html)
                CHECK(!strstr(out, "http://") && !strstr(out, "https://"), "html has URLs");
            free(out);
        }
    }
    /* one thread at a time */
    for (uint32_t th = 1; th < m->nthreads; th++) {
        struct export_opts o = { .thread = th, .part = (int)th, .input = path };
        size_t len;
        char *out = run(&export_callgrind, m, &o, &len);
        check_callgrind(m, th, 0, out);
        CHECK(strstr(out, "part: ") && strstr(out, "thread: "), "part/thread headers");
        free(out);
    }
    model_free(m);
}

/* export_iter_next merges a green thread's running samples (its thread's,
 * with .green set) with its suspended ones in time order; without a green
 * thread in the filter it reads the threads' samples alone.
 * export_thread_greens lists the green threads with samples on a thread. */
static void check_green_iter(void)
{
    struct m_thread th[3] = { { 0 }, { .pid = 1, .tid = 10, .name = "MainThread" },
                              { .pid = 1, .tid = 11, .name = "w" } };
    struct m_green gr[4] = { { 0 },
                             { .thread = 1, .kind = 1, .name = "a", .func = "fa" },
                             { .thread = 1, .kind = 1, .name = "b", .func = "" },
                             { .thread = 2, .kind = 1, .name = "c", .func = "fc" } };
    struct m_sample smp[] = {
        { .ts = 10, .thread = 1, .green = 1 }, { .ts = 20, .thread = 2 },
        { .ts = 30, .thread = 1, .green = 2 }, { .ts = 40, .thread = 1, .green = 1 },
        { .ts = 50, .thread = 1 },
    };
    struct m_sample gsmp[] = {
        { .ts = 5, .thread = 1, .green = 1, .flags = SAMPLE_SUSPENDED },
        { .ts = 30, .thread = 1, .green = 1, .flags = SAMPLE_SUSPENDED },
        { .ts = 30, .thread = 1, .green = 2, .flags = SAMPLE_SUSPENDED },
        { .ts = 60, .thread = 1, .green = 1, .flags = SAMPLE_SUSPENDED },
    };
    struct model m = { .threads = th, .nthreads = 3, .greens = gr, .ngreens = 4, .samples = smp,
                       .nsamples = 5, .gsamples = gsmp, .ngsamples = 4 };
    struct ct_filter f = { .green = 1 };
    struct export_iter it;
    export_iter_init(&it, &m, &f);
    int64_t want[] = { 5, 10, 30, 40, 60 };
    int susp[] = { 1, 0, 1, 0, 1 };
    size_t n = 0;
    for (const struct m_sample *s; (s = export_iter_next(&it)); n++) {
        CHECK(n < 5, "too many samples");
        if (n >= 5)
            break;
        CHECK(s->ts == want[n] && s->green == 1 && export_suspended(s) == susp[n],
              "sample %zu: ts %lld green %u", n, (long long)s->ts, s->green);
    }
    CHECK(n == 5, "green 1: %zu samples", n);
    f = (struct ct_filter){ .thread = 1 }; /* the threads' samples only */
    export_iter_init(&it, &m, &f);
    n = 0;
    for (const struct m_sample *s; (s = export_iter_next(&it)); n++)
        CHECK(!export_suspended(s) && s->thread == 1, "thread filter gave ts %lld", (long long)s->ts);
    CHECK(n == 4, "thread 1: %zu samples", n);
    uint32_t *gs;
    size_t ng;
    CHECK(export_thread_greens(&m, 1, &gs, &ng) == 0 && ng == 2 && gs[0] == 1 && gs[1] == 2,
          "thread 1 greens: %zu", ng);
    free(gs);
    /* c has no sample: not listed */
    CHECK(export_thread_greens(&m, 2, &gs, &ng) == 0 && ng == 0 && !gs, "thread 2 greens: %zu", ng);
    char title[256];
    export_green_title(&m, 1, title, sizeof title);
    CHECK(!strcmp(title, "task a (fa) on MainThread (10)"), "title '%s'", title);
    export_green_title(&m, 2, title, sizeof title);
    CHECK(!strcmp(title, "task b on MainThread (10)"), "title '%s'", title);
}

int main(void)
{
    check_green_iter();
    char dir[] = "/tmp/sonde-test-export-XXXXXX", path[256], err[256];
    if (!mkdtemp(dir))
        return 1;
    const enum synth_kind kinds[] = { SYNTH_RECURSIVE, SYNTH_THREADS, SYNTH_BIG };
    for (size_t k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/rec%zu.sonde", dir, k);
        int rc = synth_write(path, kinds[k], 20000, err, sizeof err);
        CHECK(rc == 0, "synth_write: %s", err);
        if (!rc)
            check_file(path);
        unlink(path);
    }
    rmdir(dir);
    if (failures)
        fprintf(stderr, "%d failures\n", failures);
    return failures != 0;
}
