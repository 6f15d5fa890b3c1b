#include "profiler/model.h"

#include "common/err.h"
#include "common/utf8.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Samples and GIL ticks are written in time order, so reading them in
 * rowid order and sorting only when needed avoids SQLite's sort of the
 * whole table (the largest part of opening a 1M-sample recording). */
static int cmp_sample_ts(const void *a, const void *b)
{
    const struct m_sample *x = a, *y = b;
    return (x->ts > y->ts) - (x->ts < y->ts);
}

static int cmp_gil_ts(const void *a, const void *b)
{
    const struct m_gil *x = a, *y = b;
    return (x->ts > y->ts) - (x->ts < y->ts);
}

/* Everything below is read from a file that may be damaged or crafted:
 * counts come from the rows really there (never from a stored number), ids
 * are checked before they index anything, and times are bounded so that
 * the int64 sums and differences of formats/ and ui/ cannot overflow. */

/* |ts| of a sample or a GIL tick: 2^56 ns, about 2.3 years. */
#define MODEL_TS_MAX ((int64_t)1 << 56)
/* cpu_ns / wall_ns of one sample: at most the longest possible recording. */
#define MODEL_NS_MAX ((int64_t)1 << 56)
/* The sum of every sample's cpu_ns (and of every wall_ns) in a recording:
 * any sum of a subset, or of two such sums, fits in an int64. */
#define MODEL_SUM_MAX ((int64_t)1 << 61)
/* Linux pids and tids never exceed PID_MAX_LIMIT (2^22). */
#define MODEL_PID_MAX (1 << 22)
/* Stack depth: 4x the sampler's limit (PY_MAX_DEPTH), room for native
 * frames; walking deeper crafted stacks for every sample would take hours. */
#define MODEL_DEPTH_MAX 4096
/* Rows of one table: more than any recording holds (the arrays are sized by
 * them). */
#define MODEL_ROWS_MAX ((int64_t)1 << 30)

/* One integer from sql into *out: 0, or -1 when the query fails (a damaged
 * file) or returns no integer. */
static int query_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_type(st, 0) == SQLITE_INTEGER) {
        *out = sqlite3_column_int64(st, 0);
        rc = 0;
    }
    sqlite3_finalize(st);
    return rc;
}

/* The number of rows of table: 0 or SE_BADFILE. */
static int count_rows(sqlite3 *db, const char *table, size_t *n)
{
    char sql[128];
    int64_t v;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    if (query_int(db, sql, &v) || v < 0 || v > MODEL_ROWS_MAX)
        return SE_BADFILE;
    *n = (size_t)v;
    return 0;
}

/* Arrays indexed by id: size = max(id) + 1. Ids are dense (1, 2, ...), so
 * a maximum far above the number of rows is damage, not a reason to
 * allocate: the array never exceeds twice the rows really there. */
static int alloc_by_max(sqlite3 *db, const char *table, size_t elem, void **out, size_t *n)
{
    char sql[128];
    int64_t mx;
    size_t rows;
    snprintf(sql, sizeof sql, "SELECT coalesce(max(id), 0) FROM %s", table);
    if (query_int(db, sql, &mx) || count_rows(db, table, &rows) || mx < 0 ||
        (uint64_t)mx > 2 * (uint64_t)rows + 16)
        return SE_BADFILE;
    *out = calloc((size_t)mx + 1, elem);
    if (!*out)
        return -ENOMEM;
    *n = (size_t)mx + 1;
    return 0;
}

/* Does the file have this table? (Read before preparing a query on a
 * table that only newer versions have.) */
static int has_table(sqlite3 *db, const char *name)
{
    sqlite3_stmt *st = NULL;
    int found = 0;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        found = sqlite3_step(st) == SQLITE_ROW;
    }
    sqlite3_finalize(st);
    return found;
}

/* Step a query: 1 for a row, 0 when done, -1 on error (corrupt file). */
static int next_row(sqlite3_stmt *st, int *err)
{
    if (!st) {
        *err = 1;
        return 0;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc != SQLITE_DONE)
        *err = 1;
    return 0;
}

/* The length of a recording whose recorder was killed before it wrote
 * duration_ns: up to its newest sample or GIL tick. */
static int derive_duration(struct model *m)
{
    int64_t end = 0;
    for (size_t i = 0; i < m->nsamples; i++)
        if (m->samples[i].ts > end)
            end = m->samples[i].ts;
    if (m->ngil && m->gil[m->ngil - 1].ts > end)
        end = m->gil[m->ngil - 1].ts;
    char **k = realloc(m->meta_keys, (m->nmeta + 1) * sizeof *k);
    if (!k)
        return -ENOMEM;
    m->meta_keys = k;
    char **v = realloc(m->meta_values, (m->nmeta + 1) * sizeof *v);
    if (!v)
        return -ENOMEM;
    m->meta_values = v;
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)end);
    k[m->nmeta] = strdup("duration_ns");
    v[m->nmeta] = strdup(buf);
    if (!k[m->nmeta] || !v[m->nmeta]) {
        free(k[m->nmeta]);
        free(v[m->nmeta]);
        return -ENOMEM;
    }
    m->nmeta++;
    return 0;
}

#define FAIL(code, ...)                                  \
    do {                                                 \
        rc = se_fail(err, errlen, code, __VA_ARGS__);    \
        goto fail;                                       \
    } while (0)

static int cmp_green_name(const void *a, const void *b)
{
    const struct m_green *x = *(struct m_green *const *)a, *y = *(struct m_green *const *)b;
    int c = strcmp(x->name, y->name);
    return c ? c : (x < y ? -1 : x > y);
}

/* Set .shared on every green thread whose name another one has (names
 * set, "" for none). 0 or -ENOMEM. */
static int mark_shared_names(struct model *m)
{
    if (m->ngreens < 3)
        return 0;
    struct m_green **by = malloc((m->ngreens - 1) * sizeof *by);
    if (!by)
        return -ENOMEM;
    for (size_t i = 1; i < m->ngreens; i++)
        by[i - 1] = &m->greens[i];
    size_t n = m->ngreens - 1;
    qsort(by, n, sizeof *by, cmp_green_name);
    for (size_t i = 0; i + 1 < n; i++)
        if (strcmp(by[i]->name, by[i + 1]->name) == 0)
            by[i]->shared = by[i + 1]->shared = 1;
    free(by);
    return 0;
}

int model_load(const char *path, struct model **out, char *err, size_t errlen)
{
    sqlite3 *db;
    *out = NULL;
    int rc = store_open(path, 1, &db, err, errlen);
    if (!rc) /* reading every row once: map the file rather than copy pages */
        sqlite3_exec(db, "PRAGMA mmap_size=1073741824; PRAGMA cache_size=-65536", NULL, NULL, NULL);
    if (rc)
        return rc;
    struct model *m = calloc(1, sizeof *m);
    sqlite3_stmt *st = NULL;
    int bad = 0;
    if (!m)
        FAIL(-ENOMEM, "out of memory");

    /* strings */
    if ((rc = alloc_by_max(db, "string", sizeof(char *), (void **)&m->strings, &m->nstrings)))
        FAIL(rc, rc == -ENOMEM ? "out of memory" : "%s is damaged: bad string table", path);
    sqlite3_prepare_v2(db, "SELECT id, s FROM string", -1, &st, NULL);
    while (next_row(st, &bad)) {
        int64_t id = sqlite3_column_int64(st, 0);
        const unsigned char *s = sqlite3_column_text(st, 1);
        if (id >= 0 && (size_t)id < m->nstrings && s && !m->strings[id] &&
            !(m->strings[id] = utf8_dup((const char *)s))) /* a torn read, a latin-1 file name */
            FAIL(-ENOMEM, "out of memory");
    }
    if (bad)
        FAIL(SE_BADFILE, "%s is damaged: %s", path, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    st = NULL;

    /* frames */
    if ((rc = alloc_by_max(db, "frame", sizeof *m->frames, (void **)&m->frames, &m->nframes)))
        FAIL(rc, rc == -ENOMEM ? "out of memory" : "%s is damaged: bad frame table", path);
    char *fver = store_meta_get(db, "schema_version");
    int has_native = fver && atoi(fver) >= 4; /* versions 1-3 had no module, address */
    free(fver);
    sqlite3_prepare_v2(db,
                       has_native ? "SELECT id, name, file, line, fn_line, kind, module, address FROM frame"
                                  : "SELECT id, name, file, line, fn_line, kind, 0, 0 FROM frame",
                       -1, &st, NULL);
    while (next_row(st, &bad)) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (id <= 0 || (size_t)id >= m->nframes)
            continue;
        struct m_frame *f = &m->frames[id];
        int64_t name = sqlite3_column_int64(st, 1), file = sqlite3_column_int64(st, 2);
        int64_t line = sqlite3_column_int64(st, 3), fn_line = sqlite3_column_int64(st, 4);
        int64_t kind = sqlite3_column_int64(st, 5);
        int64_t module = sqlite3_column_int64(st, 6);
        if (name < 0 || (size_t)name >= m->nstrings || file < 0 || (size_t)file >= m->nstrings ||
            module < 0 || (size_t)module >= m->nstrings)
            FAIL(SE_BADFILE, "%s is damaged: frame %lld names a missing string", path, (long long)id);
        if (line < INT32_MIN || line > INT32_MAX || fn_line < INT32_MIN || fn_line > INT32_MAX ||
            kind < 0 || kind > 255)
            FAIL(SE_BADFILE, "%s is damaged: bad frame %lld", path, (long long)id);
        f->name = (uint32_t)name;
        f->file = (uint32_t)file;
        f->line = (int32_t)line;
        f->fn_line = (int32_t)fn_line;
        f->kind = (uint8_t)kind;
        f->module = (uint32_t)module;
        f->address = (uint64_t)sqlite3_column_int64(st, 7);
    }
    if (bad)
        FAIL(SE_BADFILE, "%s is damaged: %s", path, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    st = NULL;

    /* stacks: parents always have smaller ids (they are written first) */
    if ((rc = alloc_by_max(db, "stack", sizeof *m->stacks, (void **)&m->stacks, &m->nstacks)))
        FAIL(rc, rc == -ENOMEM ? "out of memory" : "%s is damaged: bad stack table", path);
    sqlite3_prepare_v2(db, "SELECT id, parent, frame FROM stack ORDER BY id", -1, &st, NULL);
    int64_t last_id = 0;
    while (next_row(st, &bad)) {
        int64_t id = sqlite3_column_int64(st, 0);
        int64_t parent = sqlite3_column_int64(st, 1);
        int64_t frame = sqlite3_column_int64(st, 2);
        /* ids strictly increasing: a damaged b-tree page can hand rows back
         * out of order or twice, and a node read again after its children
         * would leave them deeper than their chain */
        if (id <= last_id || (size_t)id >= m->nstacks || parent < 0 || parent >= id || frame <= 0 ||
            (size_t)frame >= m->nframes)
            FAIL(SE_BADFILE, "%s is damaged: bad stack node %lld", path, (long long)id);
        last_id = id;
        struct m_stack *s = &m->stacks[id];
        s->parent = (uint32_t)parent;
        s->frame = (uint32_t)frame;
        s->depth = parent ? m->stacks[parent].depth + 1 : 1;
        if (s->depth > MODEL_DEPTH_MAX)
            FAIL(SE_BADFILE, "%s is damaged: stack node %lld is more than %d frames deep", path,
                 (long long)id, MODEL_DEPTH_MAX);
    }
    if (bad)
        FAIL(SE_BADFILE, "%s is damaged: %s", path, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    st = NULL;

    /* threads */
    if ((rc = alloc_by_max(db, "thread", sizeof *m->threads, (void **)&m->threads, &m->nthreads)))
        FAIL(rc, rc == -ENOMEM ? "out of memory" : "%s is damaged: bad thread table", path);
    sqlite3_prepare_v2(db, "SELECT id, pid, tid, ident, name FROM thread", -1, &st, NULL);
    while (next_row(st, &bad)) {
        int64_t id = sqlite3_column_int64(st, 0);
        if (id <= 0 || (size_t)id >= m->nthreads || m->threads[id].name)
            continue;
        struct m_thread *t = &m->threads[id];
        int64_t pid = sqlite3_column_int64(st, 1), tid = sqlite3_column_int64(st, 2);
        if (pid < 0 || pid > MODEL_PID_MAX || tid < 0 || tid > MODEL_PID_MAX)
            FAIL(SE_BADFILE, "%s is damaged: bad thread %lld", path, (long long)id);
        t->pid = (int32_t)pid;
        t->tid = (int32_t)tid;
        t->ident = (uint64_t)sqlite3_column_int64(st, 3);
        if (!(t->name = utf8_dup((const char *)sqlite3_column_text(st, 4))))
            FAIL(-ENOMEM, "out of memory");
    }
    if (bad)
        FAIL(SE_BADFILE, "%s is damaged: %s", path, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    st = NULL;
    for (size_t i = 0; i < m->nthreads; i++)
        if (!m->threads[i].name && !(m->threads[i].name = strdup("")))
            FAIL(-ENOMEM, "out of memory");

    /* processes: by pid; a pid a thread names but the table lacks (a
     * crafted file) gets a row with no command */
    {
        size_t np = 0, cap = 16;
        m->procs = calloc(cap, sizeof *m->procs);
        if (!m->procs)
            FAIL(-ENOMEM, "out of memory");
        sqlite3_prepare_v2(db, "SELECT pid, ppid, cmd FROM process ORDER BY pid", -1, &st, NULL);
        while (next_row(st, &bad)) {
            int64_t pid = sqlite3_column_int64(st, 0), ppid = sqlite3_column_int64(st, 1);
            if (pid <= 0 || pid > MODEL_PID_MAX || (np && m->procs[np - 1].pid == pid))
                continue;
            if (np == cap) {
                void *g = realloc(m->procs, cap * 2 * sizeof *m->procs);
                if (!g)
                    FAIL(-ENOMEM, "out of memory");
                m->procs = g;
                cap *= 2;
            }
            struct m_process *p = &m->procs[np];
            p->pid = (int32_t)pid;
            p->ppid = ppid > 0 && ppid <= MODEL_PID_MAX ? (int32_t)ppid : 0;
            if (!(p->cmd = utf8_dup((const char *)sqlite3_column_text(st, 2))))
                FAIL(-ENOMEM, "out of memory");
            np++;
            m->nprocs = np;
        }
        if (bad)
            FAIL(SE_BADFILE, "%s is damaged: %s", path, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        st = NULL;
        for (size_t i = 1; i < m->nthreads; i++) {
            int32_t pid = m->threads[i].pid;
            if (pid <= 0 || model_process(m, pid))
                continue;
            if (m->nprocs == cap) {
                void *g = realloc(m->procs, cap * 2 * sizeof *m->procs);
                if (!g)
                    FAIL(-ENOMEM, "out of memory");
                m->procs = g;
                cap *= 2;
            }
            size_t k = m->nprocs;
            while (k > 0 && m->procs[k - 1].pid > pid) {
                m->procs[k] = m->procs[k - 1];
                k--;
            }
            m->procs[k] = (struct m_process){ .pid = pid };
            m->nprocs++;
            if (!(m->procs[k].cmd = strdup("")))
                FAIL(-ENOMEM, "out of memory");
        }
    }

    /* green threads (version 3 files; earlier ones have none) */
    if (has_table(db, "green")) {
        if ((rc = alloc_by_max(db, "green", sizeof *m->greens, (void **)&m->greens, &m->ngreens)))
            FAIL(rc, rc == -ENOMEM ? "out of memory" : "%s is damaged: bad green table", path);
        sqlite3_prepare_v2(db, "SELECT id, pid, thread, kind, addr, name, func, start_ns, end_ns"
                           " FROM green", -1, &st, NULL);
        while (next_row(st, &bad)) {
            int64_t id = sqlite3_column_int64(st, 0);
            if (id <= 0 || (size_t)id >= m->ngreens || m->greens[id].name)
                continue;
            struct m_green *g = &m->greens[id];
            int64_t pid = sqlite3_column_int64(st, 1), th = sqlite3_column_int64(st, 2);
            int64_t kind = sqlite3_column_int64(st, 3);
            g->start_ns = sqlite3_column_int64(st, 7);
            g->end_ns = sqlite3_column_type(st, 8) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 8);
            if (pid < 0 || pid > MODEL_PID_MAX || th < 0 || (size_t)th >= m->nthreads ||
                kind < 0 || kind > 255 || g->start_ns < -MODEL_TS_MAX || g->start_ns > MODEL_TS_MAX ||
                g->end_ns < -1 || g->end_ns > MODEL_TS_MAX)
                FAIL(SE_BADFILE, "%s is damaged: bad green thread %lld", path, (long long)id);
            g->pid = (int32_t)pid;
            g->thread = (uint32_t)th;
            g->kind = (uint8_t)kind;
            g->addr = (uint64_t)sqlite3_column_int64(st, 4);
            if (!(g->name = utf8_dup((const char *)sqlite3_column_text(st, 5))) ||
                !(g->func = utf8_dup((const char *)sqlite3_column_text(st, 6))))
                FAIL(-ENOMEM, "out of memory");
        }
        if (bad)
            FAIL(SE_BADFILE, "%s is damaged: %s", path, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        st = NULL;
    }

    /* samples */
    size_t ns;
    if (count_rows(db, "sample", &ns))
        FAIL(SE_BADFILE, "%s is damaged: %s", path, sqlite3_errmsg(db));
    m->samples = calloc(ns + 1, sizeof *m->samples);
    if (!m->samples)
        FAIL(-ENOMEM, "out of memory for %zu samples", ns);
    char *ver = store_meta_get(db, "schema_version");
    int has_flags = ver && atoi(ver) >= 2; /* version 1 had no flags */
    free(ver);
    sqlite3_prepare_v2(db,
                       has_flags ? "SELECT ts, thread, stack, cpu_ns, wall_ns, state, green, span,"
                                   " flags FROM sample"
                                 : "SELECT ts, thread, stack, cpu_ns, wall_ns, state, green, span,"
                                   " 0 FROM sample",
                       -1, &st, NULL);
    int64_t cpu_sum = 0, wall_sum = 0;
    size_t nsusp = 0;
    while (m->nsamples < ns && next_row(st, &bad)) {
        struct m_sample *s = &m->samples[m->nsamples];
        s->ts = sqlite3_column_int64(st, 0);
        int64_t th = sqlite3_column_int64(st, 1), sk = sqlite3_column_int64(st, 2);
        s->cpu_ns = sqlite3_column_int64(st, 3);
        s->wall_ns = sqlite3_column_int64(st, 4);
        int64_t state = sqlite3_column_int64(st, 5);
        int64_t green = sqlite3_column_int64(st, 6), span = sqlite3_column_int64(st, 7);
        if (th <= 0 || (size_t)th >= m->nthreads || sk < 0 || (size_t)sk >= m->nstacks ||
            state < 0 || state >= STATE_COUNT || s->ts < -MODEL_TS_MAX || s->ts > MODEL_TS_MAX ||
            s->cpu_ns < -MODEL_NS_MAX || s->cpu_ns > MODEL_NS_MAX || s->wall_ns < -MODEL_NS_MAX ||
            s->wall_ns > MODEL_NS_MAX || green < 0 || (uint64_t)green > m->ngreens + ns + 16 ||
            span < 0 || span > UINT32_MAX)
            FAIL(SE_BADFILE, "%s is damaged: bad sample at ts %lld", path, (long long)s->ts);
        cpu_sum += s->cpu_ns < 0 ? -s->cpu_ns : s->cpu_ns;
        wall_sum += s->wall_ns < 0 ? -s->wall_ns : s->wall_ns;
        if (cpu_sum > MODEL_SUM_MAX || wall_sum > MODEL_SUM_MAX)
            FAIL(SE_BADFILE, "%s is damaged: its samples add up to more than %lld s", path,
                 (long long)(MODEL_SUM_MAX / 1000000000));
        if (green && (size_t)green >= m->ngreens) {
            /* a green thread whose row was lost (its announce dropped for
             * want of room): a lane without a name, not a damaged file */
            size_t n = (size_t)green + 1;
            struct m_green *g = realloc(m->greens, n * sizeof *g);
            if (!g)
                FAIL(-ENOMEM, "out of memory");
            memset(g + m->ngreens, 0, (n - m->ngreens) * sizeof *g);
            for (size_t k = m->ngreens; k < n; k++)
                g[k].end_ns = -1;
            m->greens = g;
            m->ngreens = n;
        }
        s->thread = (uint32_t)th;
        s->stack = (uint32_t)sk;
        s->state = (uint8_t)state;
        s->green = (uint32_t)green;
        s->span = (uint32_t)span;
        s->flags = (uint8_t)sqlite3_column_int(st, 8);
        if ((s->flags & SAMPLE_SUSPENDED) && !s->green)
            FAIL(SE_BADFILE, "%s is damaged: a suspended sample of no green thread at ts %lld", path,
                 (long long)s->ts);
        nsusp += (s->flags & SAMPLE_SUSPENDED) != 0;
        m->nsamples++;
    }
    if (bad)
        FAIL(SE_BADFILE, "%s is damaged: %s", path, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    st = NULL;
    for (size_t i = 1; i < m->nsamples; i++)
        if (m->samples[i].ts < m->samples[i - 1].ts) {
            qsort(m->samples, m->nsamples, sizeof *m->samples, cmp_sample_ts);
            break;
        }
    for (size_t i = 0; i < m->ngreens; i++) {
        struct m_green *g = &m->greens[i];
        if (!g->name && (!(g->name = strdup("")) || !(g->func = strdup(""))))
            FAIL(-ENOMEM, "out of memory");
    }
    if ((rc = mark_shared_names(m)))
        FAIL(rc, "out of memory");
    /* suspended green threads' samples apart: every view of the threads
     * reads m->samples alone (both stay in ts order) */
    m->gsamples = calloc(nsusp + 1, sizeof *m->gsamples);
    if (!m->gsamples)
        FAIL(-ENOMEM, "out of memory");
    if (nsusp) {
        size_t k = 0;
        for (size_t i = 0; i < m->nsamples; i++) {
            if (m->samples[i].flags & SAMPLE_SUSPENDED)
                m->gsamples[m->ngsamples++] = m->samples[i];
            else
                m->samples[k++] = m->samples[i];
        }
        m->nsamples = k;
    }

    /* GIL ticks */
    size_t ng;
    if (count_rows(db, "gil", &ng))
        FAIL(SE_BADFILE, "%s is damaged: %s", path, sqlite3_errmsg(db));
    m->gil = calloc(ng + 1, sizeof *m->gil);
    if (!m->gil)
        FAIL(-ENOMEM, "out of memory");
    sqlite3_prepare_v2(db, "SELECT ts, pid, switches, holder, waiters FROM gil", -1,
                       &st, NULL);
    while (m->ngil < ng && next_row(st, &bad)) {
        struct m_gil *g = &m->gil[m->ngil];
        g->ts = sqlite3_column_int64(st, 0);
        int64_t pid = sqlite3_column_int64(st, 1), holder = sqlite3_column_int64(st, 3);
        int64_t waiters = sqlite3_column_int64(st, 4);
        g->switches = sqlite3_column_int64(st, 2);
        if (g->ts < -MODEL_TS_MAX || g->ts > MODEL_TS_MAX || pid < 0 || pid > MODEL_PID_MAX ||
            g->switches < 0 || holder < 0 || (size_t)holder >= m->nthreads || waiters < 0 ||
            waiters > MODEL_PID_MAX)
            FAIL(SE_BADFILE, "%s is damaged: bad GIL tick at ts %lld", path, (long long)g->ts);
        g->pid = (int32_t)pid;
        g->holder = (uint32_t)holder;
        g->waiters = (uint32_t)waiters;
        m->ngil++;
    }
    if (bad)
        FAIL(SE_BADFILE, "%s is damaged: %s", path, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    st = NULL;
    for (size_t i = 1; i < m->ngil; i++)
        if (m->gil[i].ts < m->gil[i - 1].ts) {
            qsort(m->gil, m->ngil, sizeof *m->gil, cmp_gil_ts);
            break;
        }

    /* spans (a recording the agent made while the program's spans ran) */
    if (has_table(db, "span")) {
        size_t cap = 0;
        sqlite3_prepare_v2(db, "SELECT json_extract(attributes, '$.\"sonde.span_no\"'), name, span_id,"
                           " trace_id, parent_id, start_us, end_us FROM span WHERE json_valid(attributes)"
                           " ORDER BY 1", -1, &st, NULL);
        while (next_row(st, &bad)) {
            if (sqlite3_column_type(st, 0) != SQLITE_INTEGER)
                continue;
            int64_t no = sqlite3_column_int64(st, 0);
            const char *nm = (const char *)sqlite3_column_text(st, 1);
            const char *sid = (const char *)sqlite3_column_text(st, 2);
            const char *tid = (const char *)sqlite3_column_text(st, 3);
            const char *pid = (const char *)sqlite3_column_text(st, 4);
            if (no <= 0 || no > UINT32_MAX || !nm || !sid || !tid || !pid || strlen(sid) != 16 ||
                strlen(tid) != 32 || (*pid && strlen(pid) != 16) ||
                strspn(sid, "0123456789abcdef") != 16 || strspn(tid, "0123456789abcdef") != 32 ||
                strspn(pid, "0123456789abcdef") != strlen(pid))
                continue;
            if (m->nspans && m->spans[m->nspans - 1].no == (uint32_t)no)
                continue; /* the same number twice: the first */
            if (m->nspans == cap) {
                size_t nc = cap ? cap * 2 : 64;
                struct m_span *ns = realloc(m->spans, nc * sizeof *ns);
                if (!ns)
                    FAIL(-ENOMEM, "out of memory");
                m->spans = ns;
                cap = nc;
            }
            struct m_span *sp = &m->spans[m->nspans];
            sp->no = (uint32_t)no;
            memcpy(sp->span_id, sid, 17);
            memcpy(sp->trace_id, tid, 33);
            snprintf(sp->parent_id, sizeof sp->parent_id, "%s", pid);
            sp->start_us = sqlite3_column_int64(st, 5);
            sp->end_us = sqlite3_column_int64(st, 6);
            if (!(sp->name = utf8_dup(nm)))
                FAIL(-ENOMEM, "out of memory");
            m->nspans++;
        }
        if (bad)
            FAIL(SE_BADFILE, "%s is damaged: %s", path, sqlite3_errmsg(db));
        sqlite3_finalize(st);
        st = NULL;
    }

    /* meta */
    size_t nm;
    if (count_rows(db, "meta", &nm))
        FAIL(SE_BADFILE, "%s is damaged: %s", path, sqlite3_errmsg(db));
    m->meta_keys = calloc(nm + 1, sizeof(char *));
    m->meta_values = calloc(nm + 1, sizeof(char *));
    if (!m->meta_keys || !m->meta_values)
        FAIL(-ENOMEM, "out of memory");
    sqlite3_prepare_v2(db, "SELECT key, value FROM meta", -1, &st, NULL);
    while (m->nmeta < nm && next_row(st, &bad)) {
        const unsigned char *k = sqlite3_column_text(st, 0), *v = sqlite3_column_text(st, 1);
        m->meta_keys[m->nmeta] = utf8_dup((const char *)k);
        m->meta_values[m->nmeta] = utf8_dup((const char *)v);
        m->nmeta++;
        if (!m->meta_keys[m->nmeta - 1] || !m->meta_values[m->nmeta - 1])
            FAIL(-ENOMEM, "out of memory");
    }
    if (bad)
        FAIL(SE_BADFILE, "%s is damaged: %s", path, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    st = NULL;
    if (!model_meta(m, "duration_ns") && (rc = derive_duration(m)))
        FAIL(rc, "out of memory");
    sqlite3_close(db);
    *out = m;
    return 0;

fail:
    sqlite3_finalize(st);
    sqlite3_close(db);
    model_free(m);
    return rc;
}

void model_free(struct model *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->nstrings; i++)
        free(m->strings[i]);
    free(m->strings);
    free(m->frames);
    free(m->stacks);
    for (size_t i = 0; i < m->nthreads; i++)
        free(m->threads[i].name);
    free(m->threads);
    free(m->samples);
    free(m->gsamples);
    for (size_t i = 0; i < m->ngreens; i++) {
        free(m->greens[i].name);
        free(m->greens[i].func);
    }
    free(m->greens);
    for (size_t i = 0; i < m->nspans; i++)
        free(m->spans[i].name);
    free(m->spans);
    free(m->gil);
    for (size_t i = 0; i < m->nprocs; i++)
        free(m->procs[i].cmd);
    free(m->procs);
    for (size_t i = 0; i < m->nmeta; i++) {
        free(m->meta_keys[i]);
        free(m->meta_values[i]);
    }
    free(m->meta_keys);
    free(m->meta_values);
    free(m);
}

const char *model_meta(const struct model *m, const char *key)
{
    for (size_t i = 0; i < m->nmeta; i++)
        if (strcmp(m->meta_keys[i], key) == 0)
            return m->meta_values[i];
    return NULL;
}

const struct m_process *model_process(const struct model *m, int32_t pid)
{
    size_t lo = 0, hi = m->nprocs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->procs[mid].pid == pid)
            return &m->procs[mid];
        if (m->procs[mid].pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* A decimal number that is all of s: 1 and *v, or 0. */
static int whole_number(const char *s, long *v)
{
    char *end;
    if (*s < '0' || *s > '9')
        return 0;
    errno = 0;
    *v = strtol(s, &end, 10);
    return !*end && !errno;
}

size_t model_find_threads(const struct model *m, const char *spec, uint32_t *out, size_t max)
{
    long pid = 0, tid;
    const char *colon = strchr(spec, ':');
    if (colon) {
        char buf[32];
        size_t n = (size_t)(colon - spec);
        if (n < sizeof buf) {
            memcpy(buf, spec, n);
            buf[n] = 0;
            if (whole_number(buf, &pid) && pid > 0)
                spec = colon + 1;
            else
                pid = 0; /* a name with a colon in it */
        }
    }
    size_t found = 0;
    for (size_t i = 1; i < m->nthreads; i++)
        if (m->threads[i].name && strcmp(m->threads[i].name, spec) == 0 &&
            (!pid || m->threads[i].pid == pid)) {
            if (found < max)
                out[found] = (uint32_t)i;
            found++;
        }
    if (!found && whole_number(spec, &tid))
        for (size_t i = 1; i < m->nthreads; i++)
            if (m->threads[i].tid == tid && (!pid || m->threads[i].pid == pid)) {
                if (max)
                    out[0] = (uint32_t)i;
                return 1;
            }
    return found;
}

uint32_t model_find_thread(const struct model *m, const char *spec)
{
    uint32_t id = 0;
    return model_find_threads(m, spec, &id, 1) ? id : 0;
}

uint32_t model_find_green(const struct model *m, const char *name_or_id, size_t *several)
{
    uint32_t found = 0;
    size_t n = 0;
    for (size_t i = 1; i < m->ngreens; i++)
        if (m->greens[i].name && strcmp(m->greens[i].name, name_or_id) == 0) {
            if (!found)
                found = (uint32_t)i;
            n++;
        }
    if (!found) {
        char *end;
        unsigned long id = strtoul(name_or_id, &end, 10);
        if (*name_or_id >= '0' && *name_or_id <= '9' && !*end && id > 0 && id < m->ngreens) {
            found = (uint32_t)id;
            n = 1;
        }
    }
    if (several)
        *several = n;
    return found;
}

void model_green_label(const struct model *m, uint32_t green, char *out, size_t outlen)
{
    if (green == 0 || green >= m->ngreens) {
        snprintf(out, outlen, "?");
        return;
    }
    const struct m_green *g = &m->greens[green];
    char id[16] = "";
    if (g->shared)
        snprintf(id, sizeof id, " #%u", green);
    if (g->func && *g->func)
        snprintf(out, outlen, "%s %s%s (%s)", green_kind_name(g->kind), *g->name ? g->name : "?", id,
                 g->func);
    else
        snprintf(out, outlen, "%s %s%s", green_kind_name(g->kind), *g->name ? g->name : "?", id);
}

void model_thread_label(const struct model *m, uint32_t thread, char *out, size_t outlen)
{
    if (thread == 0 || thread >= m->nthreads) {
        snprintf(out, outlen, "?");
        return;
    }
    const struct m_thread *t = &m->threads[thread];
    char pid[16] = "";
    if (m->nprocs > 1)
        snprintf(pid, sizeof pid, "%d:", t->pid);
    if (t->name && *t->name)
        snprintf(out, outlen, "%s%s (%d)", pid, t->name, t->tid);
    else
        snprintf(out, outlen, "%sthread %d", pid, t->tid);
}

const struct m_span *model_span(const struct model *m, uint32_t no)
{
    size_t lo = 0, hi = m->nspans;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->spans[mid].no == no)
            return &m->spans[mid];
        if (m->spans[mid].no < no)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

uint32_t model_find_span(const struct model *m, const char *no_or_id)
{
    for (size_t i = 0; i < m->nspans; i++)
        if (strcmp(m->spans[i].span_id, no_or_id) == 0)
            return m->spans[i].no;
    char *end;
    unsigned long long no = strtoull(no_or_id, &end, 10);
    if (*no_or_id >= '0' && *no_or_id <= '9' && !*end && no > 0 && no <= UINT32_MAX) {
        if (model_span(m, (uint32_t)no))
            return (uint32_t)no;
        for (size_t i = 0; i < m->nsamples; i++)
            if (m->samples[i].span == no)
                return (uint32_t)no;
    }
    return 0;
}

void model_native_where(const struct model *m, uint32_t module, uint64_t address, char *out,
                        size_t outlen)
{
    const char *mod = model_str(m, module), *b = strrchr(mod, '/');
    if (b)
        mod = b + 1;
    snprintf(out, outlen, "%s+0x%llx", *mod ? mod : "?", (unsigned long long)address);
}
