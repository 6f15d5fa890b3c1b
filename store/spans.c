/* The span store: the spans part's tables and their SQL (insert, expire,
 * load, find) on top of store/store.c, which opens the file and owns meta,
 * the schema parts' versions and probing. Here because both the collector
 * (writer) and ui/, cli/ (readers) use it, and a recording may carry it. */
#include "store/spans.h"

#include "spans/profile.h"

#include "common/err.h"
#include "common/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* 1: span, trace; 2: span_profile added (version 1 stores are read: no
 * profiles; a writer adds the table) */
#define SPANS_SCHEMA_VERSION 2

/* Spans are inserted CHUNK rows per statement (one multi-row INSERT per
 * chunk size, prepared once and cached): fewer statement steps, cursor
 * opens and VDBE setups per row than one INSERT per span. */
#define CHUNK_SIZES 4
static const size_t chunk_sizes[CHUNK_SIZES] = { 64, 16, 4, 1 };
#define SPAN_COLS 14 /* bound per row; received_us is ?1, shared by the rows */

/* WAL checkpoints: a thread with its own connection copies the WAL into the
 * database (PASSIVE: never blocks the writer) once the WAL holds
 * CKPT_FRAMES pages, so that the writer neither copies nor fsyncs. The
 * writer checkpoints itself only past CKPT_FRAMES_MAX (the WAL restarts from
 * its beginning only after a checkpoint between two write transactions): by
 * then most pages are copied already. */
#define CKPT_FRAMES 4096
#define CKPT_FRAMES_MAX 32768
#define CKPT_PER_S 10

struct checkpointer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sqlite3 *db;
    int wanted, stop;
};

struct span_store {
    sqlite3 *db;
    sqlite3_stmt *ins_span[CHUNK_SIZES], *find_span, *max_id, *ins_trace, *begin, *commit, *rollback, *set_skew;
    sqlite3_stmt *ins_prof;
    int has_profiles; /* the span_profile table is there (version 2) */
    struct checkpointer *ckpt;
};

static void *checkpoint_thread(void *arg)
{
    struct checkpointer *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stop) {
        if (!c->wanted) {
            pthread_cond_wait(&c->cv, &c->mu);
            continue;
        }
        c->wanted = 0;
        pthread_mutex_unlock(&c->mu);
        sqlite3_wal_checkpoint_v2(c->db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&c->mu);
        /* at most CKPT_PER_S passes a second: with many small commits (one
         * per group of requests) a pass after each one would copy and
         * fsync for every few pages */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 1000000000 / CKPT_PER_S;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        while (!c->stop && pthread_cond_timedwait(&c->cv, &c->mu, &until) != ETIMEDOUT)
            ;
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* after each commit on the writer's connection, with the WAL's size in pages */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    struct checkpointer *c = arg;
    if (frames >= CKPT_FRAMES_MAX) {
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    } else if (frames >= CKPT_FRAMES) {
        pthread_mutex_lock(&c->mu);
        c->wanted = 1;
        pthread_cond_signal(&c->cv);
        pthread_mutex_unlock(&c->mu);
    }
    return SQLITE_OK;
}

static void checkpointer_stop(struct span_store *st)
{
    struct checkpointer *c = st->ckpt;
    if (!c)
        return;
    sqlite3_wal_hook(st->db, NULL, NULL);
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    sqlite3_close(c->db);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
    st->ckpt = NULL;
}

/* Start the checkpoint thread; without it (any failure) SQLite's own
 * automatic checkpoints stay on. */
static void checkpointer_start(struct span_store *st, const char *path)
{
    struct checkpointer *c = calloc(1, sizeof *c);
    if (!c)
        return;
    if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        sqlite3_close(c->db);
        free(c);
        return;
    }
    sqlite3_busy_timeout(c->db, 5000);
    /* a fresh connection sees the WAL only once it has read the database */
    if (sqlite3_exec(c->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_close(c->db);
        free(c);
        return;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (pthread_create(&c->thread, NULL, checkpoint_thread, c)) {
        sqlite3_close(c->db);
        pthread_cond_destroy(&c->cv);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return;
    }
    st->ckpt = c;
    sqlite3_wal_hook(st->db, wal_hook, c); /* replaces the automatic checkpoints */
}

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
    "CREATE TABLE IF NOT EXISTS span("
    " id INTEGER PRIMARY KEY,"
    " trace_id TEXT NOT NULL,"
    " span_id TEXT NOT NULL,"
    " parent_id TEXT NOT NULL DEFAULT '',"
    " name TEXT NOT NULL,"
    " service TEXT NOT NULL,"
    " node TEXT NOT NULL,"
    " kind INTEGER NOT NULL,"
    " shared INTEGER NOT NULL,"
    " status INTEGER NOT NULL,"
    " start_us INTEGER NOT NULL,"
    " end_us INTEGER NOT NULL,"
    " duration_us INTEGER NOT NULL,"
    " skew_us INTEGER NOT NULL DEFAULT 0,"
    " attributes TEXT NOT NULL DEFAULT '{}',"
    " received_us INTEGER NOT NULL,"
    " content_hash INTEGER NOT NULL);"
    /* one index serves both lookups by trace id and the exact-duplicate check */
    "CREATE UNIQUE INDEX IF NOT EXISTS span_trace ON span(trace_id, span_id, content_hash);"
    "CREATE INDEX IF NOT EXISTS span_service ON span(service);"
    /* no index on start or duration: no query looks spans up by them (traces
     * are found through the trace table), and each index costs the writer a
     * page write per span; stores made before drop theirs when opened for
     * writing */
    "DROP INDEX IF EXISTS span_start;"
    "DROP INDEX IF EXISTS span_duration;"
    "CREATE TABLE IF NOT EXISTS trace("
    " trace_id TEXT PRIMARY KEY,"
    " start_us INTEGER NOT NULL,"
    " end_us INTEGER NOT NULL,"
    " span_count INTEGER NOT NULL,"
    " received_us INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS trace_start ON trace(start_us);"
    "CREATE INDEX IF NOT EXISTS trace_end ON trace(end_us);"
    "CREATE INDEX IF NOT EXISTS trace_received ON trace(received_us);"
    "CREATE TABLE IF NOT EXISTS span_profile(trace_id TEXT NOT NULL, span_id TEXT NOT NULL, pprof BLOB NOT NULL,"
    " PRIMARY KEY(trace_id, span_id));"
    "";

static int db_fail(struct span_store *st, char *err, size_t errlen, const char *what)
{
    int ec = sqlite3_errcode(st->db);
    int code = (ec == SQLITE_NOTADB || ec == SQLITE_CORRUPT) ? SE_BADFILE : ec == SQLITE_FULL ? -ENOSPC : -EIO;
    return se_fail(err, errlen, code, "%s: %s", what, sqlite3_errmsg(st->db));
}

/* A failed read: the file's fault (SE_BADFILE) unless the database was
 * busy, out of memory or the disk failed. */
static int read_fail(struct span_store *st, char *err, size_t errlen, const char *what)
{
    int ec = sqlite3_errcode(st->db) & 0xff;
    int code = ec == SQLITE_NOMEM ? -ENOMEM
               : ec == SQLITE_IOERR || ec == SQLITE_BUSY || ec == SQLITE_LOCKED ? -EIO
                                                                                : SE_BADFILE;
    return se_fail(err, errlen, code, "%s: %s%s", what, code == SE_BADFILE ? "damaged store: " : "",
                   sqlite3_errmsg(st->db));
}

void span_store_free(struct span_store *st)
{
    if (!st)
        return;
    checkpointer_stop(st);
    for (int i = 0; i < CHUNK_SIZES; i++)
        sqlite3_finalize(st->ins_span[i]);
    sqlite3_finalize(st->find_span);
    sqlite3_finalize(st->max_id);
    sqlite3_finalize(st->ins_trace);
    sqlite3_finalize(st->begin);
    sqlite3_finalize(st->commit);
    sqlite3_finalize(st->rollback);
    sqlite3_finalize(st->set_skew);
    sqlite3_finalize(st->ins_prof);
    sqlite3_close(st->db);
    free(st);
}

static int prep(struct span_store *st, const char *sql, sqlite3_stmt **s)
{
    return sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, s, NULL);
}

/* INSERT OR IGNORE of n rows: VALUES(?2..?15, ?1), (?16..?29, ?1), ... */
static int prep_inserts(struct span_store *st)
{
    for (int c = 0; c < CHUNK_SIZES; c++) {
        size_t n = chunk_sizes[c], cap = 256 + n * 128, len = 0;
        char *sql = malloc(cap);
        if (!sql)
            return SQLITE_NOMEM;
        len += (size_t)snprintf(sql + len, cap - len,
                                "INSERT OR IGNORE INTO span(trace_id, span_id, parent_id, name, service, node, kind,"
                                " shared, status, start_us, end_us, duration_us, attributes, content_hash,"
                                " received_us) VALUES");
        for (size_t r = 0; r < n; r++) {
            int b = 2 + (int)r * SPAN_COLS;
            len += (size_t)snprintf(sql + len, cap - len, "%s(?%d,?%d,?%d,?%d,?%d,?%d,?%d,?%d,?%d,?%d,?%d,?%d,?%d,?%d,?1)",
                                    r ? "," : "", b, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8, b + 9,
                                    b + 10, b + 11, b + 12, b + 13);
        }
        int rc = prep(st, sql, &st->ins_span[c]);
        free(sql);
        if (rc)
            return rc;
    }
    return SQLITE_OK;
}

static pthread_once_t config_once = PTHREAD_ONCE_INIT;

static void config_sqlite(void)
{
    /* no global allocation counters (a mutex per malloc); fails harmlessly
     * when SQLite was initialised already */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static const struct store_table SPAN_TABLES[] = {
    { "span", { "id", "trace_id", "span_id", "parent_id", "name", "service", "node", "kind", "shared", "status",
                "start_us", "end_us", "duration_us", "skew_us", "attributes", "received_us", "content_hash" } },
    { "trace", { "trace_id", "start_us", "end_us", "span_count", "received_us" } },
};

const struct store_part store_spans_part = {
    .id = STORE_PART_SPANS,
    .noun = "sonde span store",
    .create_sql = schema,
    .tables = SPAN_TABLES,
    .ntables = sizeof SPAN_TABLES / sizeof SPAN_TABLES[0],
    .version = SPANS_SCHEMA_VERSION,
    .exact_version = 0,
};

/* Version 2's table, checked as the others are when a store says it is of
 * version 2 or later. */
static const struct store_table PROFILE_TABLES[] = {
    { "span_profile", { "trace_id", "span_id", "pprof" } },
};
static const struct store_part profile_part = {
    .id = STORE_PART_SPANS,
    .noun = "sonde span store",
    .tables = PROFILE_TABLES,
    .ntables = 1,
    .version = SPANS_SCHEMA_VERSION,
};

int span_store_open(const char *path, int flags, struct span_store **out, char *err, size_t errlen)
{
    *out = NULL;
    pthread_once(&config_once, config_sqlite);
    struct span_store *st = calloc(1, sizeof *st);
    if (!st)
        return se_fail(err, errlen, -ENOMEM, "out of memory");
    int create = flags & STORE_CREATE;
    int rc = store_file_open(path, create ? STORE_CREATE | (flags & STORE_NOSYNC) : STORE_WRITE, 5000, &st->db, err, errlen);
    if (rc)
        goto fail;
    if (create) {
        if (sqlite3_exec(st->db, "PRAGMA cache_size=-131072; PRAGMA journal_size_limit=268435456;", NULL, NULL,
                         NULL)) {
            rc = db_fail(st, err, errlen, path);
            goto fail;
        }
        /* a new file, a store made before (its dropped indexes) or a
         * recording that gets spans next to its samples */
        if ((rc = store_part_add(st->db, &store_spans_part, NULL, err, errlen)))
            goto fail;
        st->has_profiles = 1;
    } else if ((rc = store_part_check(st->db, &store_spans_part, path, err, errlen))) {
        goto fail;
    } else {
        char *ver = store_meta_get(st->db, store_part_version_key(STORE_PART_SPANS));
        st->has_profiles = ver && strcmp(ver, "1") != 0;
        free(ver);
        if (st->has_profiles && (rc = store_part_check(st->db, &profile_part, path, err, errlen)))
            goto fail;
    }
    if (prep_inserts(st) ||
        prep(st, "SELECT id FROM span WHERE trace_id=? AND span_id=? AND content_hash=?", &st->find_span) ||
        prep(st, "SELECT coalesce(max(id), 0) FROM span", &st->max_id) ||
        prep(st, "INSERT INTO trace(trace_id, start_us, end_us, received_us, span_count) VALUES(?,?,?,?,?)"
                 " ON CONFLICT(trace_id) DO UPDATE SET start_us=min(start_us, excluded.start_us),"
                 " end_us=max(end_us, excluded.end_us), span_count=span_count+excluded.span_count,"
                 " received_us=excluded.received_us", &st->ins_trace) ||
        (create && prep(st, "INSERT OR IGNORE INTO span_profile(trace_id, span_id, pprof) VALUES(?,?,?)",
                        &st->ins_prof)) ||
        prep(st, "BEGIN IMMEDIATE", &st->begin) || prep(st, "COMMIT", &st->commit) ||
        prep(st, "ROLLBACK", &st->rollback)) {
        rc = create ? db_fail(st, err, errlen, path)
                    : se_fail(err, errlen, SE_BADFILE, "%s: not a sonde span store (%s)", path, sqlite3_errmsg(st->db));
        goto fail;
    }
    if (create)
        checkpointer_start(st, path);
    *out = st;
    return 0;
fail:
    span_store_free(st);
    return rc;
}

struct row {
    const struct span *s;
    uint64_t hash;
};

static int by_key(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    int c = memcmp(x->s->trace_id, y->s->trace_id, 32);
    if (!c)
        c = memcmp(x->s->span_id, y->s->span_id, 16);
    if (!c)
        c = x->hash < y->hash ? -1 : x->hash > y->hash;
    return c;
}

static void bind_row(sqlite3_stmt *q, int b, const struct row *r)
{
    const struct span *s = r->s;
    sqlite3_bind_text(q, b, s->trace_id, 32, SQLITE_STATIC);
    sqlite3_bind_text(q, b + 1, s->span_id, 16, SQLITE_STATIC);
    sqlite3_bind_text(q, b + 2, s->parent_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, b + 3, s->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, b + 4, s->service, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, b + 5, s->node, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, b + 6, s->kind);
    sqlite3_bind_int(q, b + 7, s->shared);
    sqlite3_bind_int(q, b + 8, s->status);
    sqlite3_bind_int64(q, b + 9, s->start_us);
    sqlite3_bind_int64(q, b + 10, s->end_us);
    sqlite3_bind_int64(q, b + 11, s->end_us - s->start_us);
    sqlite3_bind_text(q, b + 12, s->attrs, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, b + 13, (int64_t)r->hash);
}

/* id of the stored row equal to r (0 when none) */
static int64_t stored_id(struct span_store *st, const struct row *r)
{
    sqlite3_stmt *q = st->find_span;
    sqlite3_bind_text(q, 1, r->s->trace_id, 32, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, r->s->span_id, 16, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, (int64_t)r->hash);
    int64_t id = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    sqlite3_reset(q);
    return id;
}

int span_store_insert(struct span_store *st, const struct span *spans, size_t n, int64_t now_us,
                      size_t *inserted, char *err, size_t errlen)
{
    size_t added = 0;
    if (sqlite3_step(st->begin) != SQLITE_DONE) {
        sqlite3_reset(st->begin);
        return db_fail(st, err, errlen, "begin");
    }
    sqlite3_reset(st->begin);
    struct row *rows = malloc((n + 1) * sizeof *rows);
    char *fresh = calloc(n + 1, 1);
    if (!rows || !fresh) {
        free(rows);
        free(fresh);
        sqlite3_step(st->rollback);
        sqlite3_reset(st->rollback);
        return se_fail(err, errlen, -ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        rows[i] = (struct row){ &spans[i], spans[i].hash ? spans[i].hash : span_content_hash(&spans[i]) };
    /* in (trace id, span id, hash) order: locality in the trace index, one
     * trace upsert per trace, and exact duplicates within the batch adjacent */
    qsort(rows, n, sizeof *rows, by_key);
    size_t m = 0;
    for (size_t k = 0; k < n; k++)
        if (!m || by_key(&rows[m - 1], &rows[k]))
            rows[m++] = rows[k];
    /* new rows get ids above the current maximum: a row found after an
     * insert that skipped some is new iff its id is above the one before */
    int64_t prev_max = 0;
    if (sqlite3_step(st->max_id) == SQLITE_ROW)
        prev_max = sqlite3_column_int64(st->max_id, 0);
    sqlite3_reset(st->max_id);
    for (size_t k = 0; k < m;) {
        int c = 0;
        while (chunk_sizes[c] > m - k)
            c++;
        size_t cs = chunk_sizes[c];
        sqlite3_stmt *q = st->ins_span[c];
        sqlite3_bind_int64(q, 1, now_us);
        for (size_t r = 0; r < cs; r++)
            bind_row(q, 2 + (int)r * SPAN_COLS, &rows[k + r]);
        int rc = sqlite3_step(q);
        sqlite3_reset(q);
        if (rc != SQLITE_DONE)
            goto fail;
        size_t ch = (size_t)sqlite3_changes(st->db);
        if (ch == cs) {
            memset(fresh + k, 1, cs);
        } else if (ch) { /* some were stored already: which ones are new */
            for (size_t r = 0; r < cs; r++)
                fresh[k + r] = stored_id(st, &rows[k + r]) > prev_max;
        }
        if (ch)
            prev_max = sqlite3_last_insert_rowid(st->db);
        added += ch;
        k += cs;
    }
    /* the profiles of the new rows */
    for (size_t k = 0; k < m; k++) {
        const struct span *s = rows[k].s;
        if (!fresh[k] || !s->pprof || !s->pprof_len || !st->ins_prof)
            continue;
        sqlite3_stmt *q = st->ins_prof;
        sqlite3_bind_text(q, 1, s->trace_id, 32, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, s->span_id, 16, SQLITE_STATIC);
        sqlite3_bind_blob(q, 3, s->pprof, (int)s->pprof_len, SQLITE_STATIC);
        int rc = sqlite3_step(q);
        sqlite3_reset(q);
        if (rc != SQLITE_DONE)
            goto fail;
    }
    /* the trace rows: one upsert per trace of the batch */
    for (size_t a = 0; a < m;) {
        size_t b = a;
        int64_t lo = INT64_MAX, hi = INT64_MIN, cnt = 0;
        for (; b < m && !memcmp(rows[b].s->trace_id, rows[a].s->trace_id, 32); b++) {
            const struct span *s = rows[b].s;
            if (!fresh[b])
                continue;
            lo = s->start_us < lo ? s->start_us : lo;
            hi = s->end_us > hi ? s->end_us : hi;
            cnt++;
        }
        if (cnt) {
            sqlite3_stmt *q = st->ins_trace;
            sqlite3_bind_text(q, 1, rows[a].s->trace_id, 32, SQLITE_STATIC);
            sqlite3_bind_int64(q, 2, lo);
            sqlite3_bind_int64(q, 3, hi);
            sqlite3_bind_int64(q, 4, now_us);
            sqlite3_bind_int64(q, 5, cnt);
            int rc = sqlite3_step(q);
            sqlite3_reset(q);
            if (rc != SQLITE_DONE)
                goto fail;
        }
        a = b;
    }
    free(rows);
    free(fresh);
    rows = NULL;
    fresh = NULL;
    if (sqlite3_step(st->commit) != SQLITE_DONE) {
        sqlite3_reset(st->commit);
        goto fail;
    }
    sqlite3_reset(st->commit);
    if (inserted)
        *inserted = added;
    return 0;
fail:;
    free(rows);
    free(fresh);
    int rc = db_fail(st, err, errlen, "insert spans");
    sqlite3_step(st->rollback);
    sqlite3_reset(st->rollback);
    return rc;
}

int span_store_expire(struct span_store *st, int64_t before_us, size_t *deleted, char *err, size_t errlen)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "BEGIN IMMEDIATE;"
             "CREATE TEMP TABLE IF NOT EXISTS expired(trace_id TEXT PRIMARY KEY);"
             "DELETE FROM expired;"
             "INSERT INTO expired SELECT trace_id FROM trace WHERE end_us < %lld;"
             "DELETE FROM span WHERE trace_id IN (SELECT trace_id FROM expired);"
             "DELETE FROM span_profile WHERE trace_id IN (SELECT trace_id FROM expired);"
             "DELETE FROM trace WHERE trace_id IN (SELECT trace_id FROM expired);"
             "COMMIT;",
             (long long)before_us);
    if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        int rc = db_fail(st, err, errlen, "expire traces");
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    if (deleted)
        *deleted = (size_t)sqlite3_changes(st->db);
    return 0;
}

/* Column col of q as text into the batch, repaired when it is not UTF-8;
 * NULL for a NULL value (damage) or when out of memory (*oom set). */
static const char *load_text(struct span_batch *out, sqlite3_stmt *q, int col, int *oom)
{
    const char *s = (const char *)sqlite3_column_text(q, col);
    if (!s)
        return NULL;
    size_t n = (size_t)sqlite3_column_bytes(q, col);
    const char *r;
    if (utf8_valid_n(s, n)) {
        r = span_batch_strdup(out, s, n);
    } else {
        char *fix = malloc(3 * n + 1);
        r = fix ? span_batch_strdup(out, fix, utf8_sanitize_n(s, n, fix, 3 * n + 1)) : NULL;
        free(fix);
    }
    if (!r)
        *oom = 1;
    return r;
}

/* Copy a stored hex id of exactly digits digits (or an empty one when
 * empty_ok) into out: 0, or -1 for anything else. */
static int load_id(char *out, sqlite3_stmt *q, int col, size_t digits, int empty_ok)
{
    const char *s = (const char *)sqlite3_column_text(q, col);
    size_t n = s ? (size_t)sqlite3_column_bytes(q, col) : 0;
    if (!s || (n != digits && !(empty_ok && n == 0)))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return -1;
    memcpy(out, s, n);
    out[n] = 0;
    return 0;
}

/* The profiles of the spans out holds from index `from` on (trace
 * trace_id): each checked as hostile (sprof_decode) and attached to every
 * row of its span. */
static int load_profiles(struct span_store *st, const char *trace_id, struct span_batch *out, size_t from,
                         char *err, size_t errlen)
{
    sqlite3_stmt *q = NULL;
    if (prep(st, "SELECT span_id, pprof FROM span_profile WHERE trace_id=?", &q))
        return read_fail(st, err, errlen, "load profiles");
    sqlite3_bind_text(q, 1, trace_id, -1, SQLITE_STATIC);
    int rc = 0, step;
    while (!rc && (step = sqlite3_step(q)) == SQLITE_ROW) {
        char sid[17];
        const void *blob = sqlite3_column_blob(q, 1);
        int len = sqlite3_column_bytes(q, 1);
        if (load_id(sid, q, 0, 16, 0) || sqlite3_column_type(q, 1) != SQLITE_BLOB || len <= 0) {
            rc = se_fail(err, errlen, SE_BADFILE, "damaged store: a bad profile row in trace %.32s", trace_id);
            break;
        }
        const unsigned char *copy = NULL;
        for (size_t i = from; i < out->n; i++) {
            struct span *s = &out->spans[i];
            if (strcmp(s->span_id, sid) != 0)
                continue;
            if (!copy) {
                struct sprof p;
                char why[160];
                int dr = sprof_decode(blob, (size_t)len, s->trace_id, s->span_id, -1, &p, why, sizeof why);
                sprof_fini(&p);
                if (dr == -ENOMEM) {
                    rc = se_fail(err, errlen, -ENOMEM, "out of memory");
                    break;
                }
                if (dr) {
                    rc = se_fail(err, errlen, SE_BADFILE, "damaged store: span %s: %s", sid, why);
                    break;
                }
                copy = span_batch_memdup(out, blob, (size_t)len);
                if (!copy) {
                    rc = se_fail(err, errlen, -ENOMEM, "out of memory");
                    break;
                }
            }
            s->pprof = copy;
            s->pprof_len = (size_t)len;
        }
    }
    if (!rc && step != SQLITE_DONE)
        rc = read_fail(st, err, errlen, "load profiles");
    sqlite3_finalize(q);
    return rc;
}

int span_store_load(struct span_store *st, const char *trace_id, struct span_batch *out, char *err,
                    size_t errlen)
{
    sqlite3_stmt *q = NULL;
    if (prep(st, "SELECT trace_id, span_id, parent_id, name, service, node, kind, shared, status,"
                 " start_us, end_us, attributes FROM span WHERE trace_id=? ORDER BY start_us, id", &q))
        return read_fail(st, err, errlen, "load trace");
    sqlite3_bind_text(q, 1, trace_id, -1, SQLITE_STATIC);
    int rc = 0, step;
    size_t before = out->n;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        struct span *s = span_batch_add(out);
        if (!s) {
            rc = se_fail(err, errlen, -ENOMEM, "out of memory");
            goto out;
        }
        int oom = 0;
        int ids_ok = !load_id(s->trace_id, q, 0, 32, 0) && !load_id(s->span_id, q, 1, 16, 0) &&
                     !load_id(s->parent_id, q, 2, 16, 1);
        s->name = load_text(out, q, 3, &oom);
        s->service = load_text(out, q, 4, &oom);
        s->node = load_text(out, q, 5, &oom);
        s->attrs = load_text(out, q, 11, &oom);
        int64_t kind = sqlite3_column_int64(q, 6), shared = sqlite3_column_int64(q, 7);
        int64_t status = sqlite3_column_int64(q, 8);
        s->kind = kind >= 0 && kind <= 5 ? (int)kind : 0;
        s->shared = shared != 0;
        s->status = status >= 0 && status <= 2 ? (int)status : 0;
        s->start_us = sqlite3_column_int64(q, 9);
        s->end_us = sqlite3_column_int64(q, 10);
        if (oom) {
            rc = se_fail(err, errlen, -ENOMEM, "out of memory");
            goto out;
        }
        if (!ids_ok || !s->name || !s->service || !s->node || !s->attrs || s->start_us < 0 ||
            s->start_us > SPAN_STORE_US_MAX || s->end_us < 0 || s->end_us > SPAN_STORE_US_MAX) {
            rc = se_fail(err, errlen, SE_BADFILE, "damaged store: a bad span in trace %.32s", trace_id);
            goto out;
        }
    }
    if (step != SQLITE_DONE)
        rc = read_fail(st, err, errlen, "load trace");
    else if (out->n == before)
        rc = se_fail(err, errlen, -ENOENT, "no trace %s in the store", trace_id);
    else if (st->has_profiles)
        rc = load_profiles(st, trace_id, out, before, err, errlen);
out:
    sqlite3_finalize(q);
    return rc;
}

int span_store_find(struct span_store *st, const struct store_filter *f, char (**ids)[33], size_t *n,
                    char *err, size_t errlen)
{
    *ids = NULL;
    *n = 0;
    sqlite3_stmt *q = NULL;
    if (prep(st, "SELECT trace_id FROM trace WHERE end_us >= ?1 AND end_us - start_us >= ?2"
                 " AND (?3 IS NULL OR trace_id IN (SELECT trace_id FROM span WHERE service = ?3))"
                 " ORDER BY start_us DESC LIMIT ?4", &q))
        return read_fail(st, err, errlen, "find traces");
    sqlite3_bind_int64(q, 1, f->since_us);
    sqlite3_bind_int64(q, 2, f->min_duration_us);
    if (f->service)
        sqlite3_bind_text(q, 3, f->service, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, f->limit ? (int64_t)f->limit : -1);
    size_t cap = 0;
    int rc = 0, step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(q, 0) != 32)
            continue; /* not a trace id: spans are looked up by it, none would be found */
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char (*ni)[33] = realloc(*ids, cap * sizeof *ni);
            if (!ni) {
                rc = se_fail(err, errlen, -ENOMEM, "out of memory");
                break;
            }
            *ids = ni;
        }
        snprintf((*ids)[(*n)++], 33, "%s", (const char *)sqlite3_column_text(q, 0));
    }
    if (!rc && step != SQLITE_DONE)
        rc = read_fail(st, err, errlen, "find traces");
    sqlite3_finalize(q);
    if (rc) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}

int span_store_set_meta(struct span_store *st, const char *key, const char *value, char *err, size_t errlen)
{
    sqlite3_stmt *q = NULL;
    if (prep(st, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", &q))
        return db_fail(st, err, errlen, "write meta");
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q) == SQLITE_DONE ? 0 : db_fail(st, err, errlen, "write meta");
    sqlite3_finalize(q);
    return rc;
}

int span_store_get_meta(struct span_store *st, const char *key, char *buf, size_t len)
{
    sqlite3_stmt *q = NULL;
    if (prep(st, "SELECT value FROM meta WHERE key = ?", &q))
        return -EIO;
    sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
    int rc = -ENOENT;
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0)) {
        snprintf(buf, len, "%s", (const char *)sqlite3_column_text(q, 0));
        rc = 0;
    }
    sqlite3_finalize(q);
    return rc;
}

int span_store_changed(struct span_store *st, int64_t since_us, size_t limit, char (**ids)[33], size_t *n,
                       int64_t *last_us, char *err, size_t errlen)
{
    *ids = NULL;
    *n = 0;
    sqlite3_stmt *q = NULL;
    if (prep(st, "SELECT trace_id, received_us FROM trace WHERE received_us >= ? ORDER BY received_us LIMIT ?", &q))
        return db_fail(st, err, errlen, "changed traces");
    sqlite3_bind_int64(q, 1, since_us);
    sqlite3_bind_int64(q, 2, limit ? (int64_t)limit : -1);
    char (*v)[33] = calloc(limit ? limit : 1, sizeof *v);
    int rc = 0, step;
    if (!v) {
        sqlite3_finalize(q);
        return se_fail(err, errlen, -ENOMEM, "out of memory");
    }
    while ((step = sqlite3_step(q)) == SQLITE_ROW && *n < limit) {
        snprintf(v[(*n)++], 33, "%s", (const char *)sqlite3_column_text(q, 0));
        *last_us = sqlite3_column_int64(q, 1);
    }
    if (step != SQLITE_ROW && step != SQLITE_DONE)
        rc = db_fail(st, err, errlen, "changed traces");
    sqlite3_finalize(q);
    if (rc) {
        free(v);
        *n = 0;
        return rc;
    }
    *ids = v;
    return 0;
}

int span_store_set_skew(struct span_store *st, const char *trace_id, const char *node, int64_t skew_us,
                        char *err, size_t errlen)
{
    if (!st->set_skew &&
        prep(st, "UPDATE span SET skew_us = ?3 WHERE trace_id = ?1 AND node = ?2 AND skew_us != ?3", &st->set_skew))
        return db_fail(st, err, errlen, "record skew");
    sqlite3_stmt *q = st->set_skew;
    sqlite3_bind_text(q, 1, trace_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, node, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 3, skew_us);
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    return rc == SQLITE_DONE ? 0 : db_fail(st, err, errlen, "record skew");
}

int span_store_begin(struct span_store *st, char *err, size_t errlen)
{
    int rc = sqlite3_step(st->begin);
    sqlite3_reset(st->begin);
    return rc == SQLITE_DONE ? 0 : db_fail(st, err, errlen, "begin");
}

int span_store_commit(struct span_store *st, char *err, size_t errlen)
{
    int rc = sqlite3_step(st->commit);
    sqlite3_reset(st->commit);
    if (rc == SQLITE_DONE)
        return 0;
    rc = db_fail(st, err, errlen, "commit");
    sqlite3_step(st->rollback);
    sqlite3_reset(st->rollback);
    return rc;
}

int64_t trace_store_max_skew(struct span_store *st, int64_t override)
{
    if (override >= 0)
        return override;
    char b[32];
    if (span_store_get_meta(st, "max_skew_us", b, sizeof b) == 0) {
        long long v = strtoll(b, NULL, 10); /* the file's word: within the stored times' range */
        return v < 0 ? 0 : v > SPAN_STORE_US_MAX ? SPAN_STORE_US_MAX : v;
    }
    return TRACE_MAX_SKEW_DEFAULT_US;
}

int trace_load(struct span_store *st, const char *id, int64_t max_skew_us, struct trace_view *v,
               char *err, size_t errlen)
{
    struct span_batch raw;
    span_batch_init(&raw);
    int rc = span_store_load(st, id, &raw, err, errlen);
    if (!rc && (rc = trace_assemble(&raw, max_skew_us, v)))
        se_fail(err, errlen, rc, "out of memory");
    span_batch_fini(&raw);
    return rc;
}
