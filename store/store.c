/* The SQLite file of recordings and span stores: opening, meta, schema parts
 * and their versions, probing (see store.h). The tables of each part are
 * their owners' (profiler/store.c: samples; store/spans.c: spans). */
#include "store/store.h"

#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *store_part_version_key(enum store_part_id id)
{
    return id == STORE_PART_SPANS ? "spans_schema_version" : "schema_version";
}

int store_write_errno(sqlite3 *db)
{
    int ec = db ? sqlite3_errcode(db) & 0xff : SQLITE_NOMEM;
    return ec == SQLITE_FULL ? -ENOSPC : ec == SQLITE_NOMEM ? -ENOMEM : -EIO;
}

/* Remove an earlier file at path, which must be a regular file (or a
 * link) if it exists: never a device or a directory named by -o. */
static int remove_old(const char *path, char *err, size_t errlen)
{
    int rc = store_check_replaceable(path, err, errlen);
    if (!rc)
        unlink(path);
    return rc;
}

/* A path readers may open: a regular file (never block on a FIFO, read a
 * device or a directory). 0, or SE_BADFILE with a message. */
static int check_regular(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return se_fail(err, errlen, SE_BADFILE, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    int regular = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
    close(fd);
    return regular ? 0 : se_fail(err, errlen, SE_BADFILE, "%s is not a regular file", path);
}

int store_check_replaceable(const char *path, char *err, size_t errlen)
{
    struct stat sb;
    if (lstat(path, &sb) != 0 || S_ISREG(sb.st_mode) || S_ISLNK(sb.st_mode))
        return 0;
    return se_fail(err, errlen, SE_USAGE, "%s exists and is not a regular file", path);
}

int store_file_check_magic(const char *path, const char *noun, char *err, size_t errlen)
{
    char magic[16] = "";
    ssize_t got = -1;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
        got = pread(fd, magic, sizeof magic, 0);
        close(fd);
    }
    if (got < 16 || memcmp(magic, "SQLite format 3", 16) != 0)
        return se_fail(err, errlen, SE_BADFILE, "%s is not a %s (not an SQLite file)", path, noun);
    return 0;
}

/* The file is untrusted: no functions with side effects from its schema,
 * no writes to sqlite_schema, no huge values. */
static void harden(sqlite3 *db)
{
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, STORE_VALUE_MAX);
}

int store_file_open(const char *path, int mode, int busy_ms, sqlite3 **db, char *err, size_t errlen)
{
    *db = NULL;
    int rc = 0, writer = mode & (STORE_CREATE | STORE_REPLACE);
    if (mode & STORE_REPLACE) {
        char side[4096];
        rc = remove_old(path, err, errlen);
        snprintf(side, sizeof side, "%s-wal", path);
        if (!rc)
            rc = remove_old(side, err, errlen);
        snprintf(side, sizeof side, "%s-shm", path);
        if (!rc)
            rc = remove_old(side, err, errlen);
        if (rc)
            return rc;
    } else if (!(mode & STORE_CREATE) || access(path, F_OK) == 0) {
        if ((rc = check_regular(path, err, errlen)))
            return rc;
    }
    int flags = (mode == STORE_READ ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX |
                (writer ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(path, db, flags, NULL) != SQLITE_OK) {
        rc = writer ? se_fail(err, errlen, -EIO, "cannot create %s: %s", path,
                              *db ? sqlite3_errmsg(*db) : "out of memory")
                    : se_fail(err, errlen, SE_BADFILE, "cannot open %s: %s", path,
                              *db ? sqlite3_errmsg(*db) : "out of memory");
        sqlite3_close(*db);
        *db = NULL;
        return rc;
    }
    sqlite3_busy_timeout(*db, busy_ms);
    if (!writer) {
        harden(*db);
        return 0;
    }
    char *msg = NULL;
    /* synchronous first: the switch to WAL is itself a write */
    const char *pragmas = mode & STORE_NOSYNC ? "PRAGMA synchronous=OFF; PRAGMA journal_mode=WAL;"
                                              : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;";
    if (sqlite3_exec(*db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
        int code = sqlite3_errcode(*db) == SQLITE_NOTADB ? SE_BADFILE : store_write_errno(*db);
        rc = se_fail(err, errlen, code, "%s: %s", path, msg ? msg : sqlite3_errmsg(*db));
        sqlite3_free(msg);
        sqlite3_close(*db);
        *db = NULL;
    }
    return rc;
}

int store_part_add(sqlite3 *db, const struct store_part *p, const char *const *meta, char *err, size_t errlen)
{
    char *msg = NULL;
    int ok = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &msg) == SQLITE_OK &&
             sqlite3_exec(db, p->create_sql, NULL, NULL, &msg) == SQLITE_OK;
    char v[16];
    snprintf(v, sizeof v, "%d", p->version);
    int rc = ok ? store_meta_set(db, store_part_version_key(p->id), v) : store_write_errno(db);
    if (!rc && p->format)
        rc = store_meta_set(db, "format", p->format);
    for (size_t i = 0; !rc && meta && meta[i] && meta[i + 1]; i += 2)
        rc = store_meta_set(db, meta[i], meta[i + 1]);
    if (!rc && sqlite3_exec(db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK)
        rc = store_write_errno(db);
    if (rc) {
        se_fail(err, errlen, rc, "cannot add the %s tables: %s", p->noun, msg ? msg : sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
    sqlite3_free(msg);
    return rc;
}

/* Is t an ordinary table with the columns readers use? */
static int table_ok(sqlite3 *db, const struct store_table *t)
{
    sqlite3_stmt *q = NULL;
    int ok = sqlite3_prepare_v2(db,
                                "SELECT count(*) FROM sqlite_schema WHERE name = ?1 AND type = 'table'"
                                " AND sql NOT LIKE 'CREATE VIRTUAL%'",
                                -1, &q, NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_text(q, 1, t->name, -1, SQLITE_STATIC);
        ok = sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int64(q, 0) == 1;
    }
    sqlite3_finalize(q);
    q = NULL;
    unsigned ncols = 0;
    unsigned long found = 0;
    while (ncols < sizeof t->cols / sizeof t->cols[0] && t->cols[ncols])
        ncols++;
    if (!ok)
        return 0;
    char sql[96];
    snprintf(sql, sizeof sql, "PRAGMA table_xinfo(\"%s\")", t->name);
    ok = sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK;
    int step = SQLITE_DONE;
    while (ok && (step = sqlite3_step(q)) == SQLITE_ROW) {
        const char *col = (const char *)sqlite3_column_text(q, 1);
        if (sqlite3_column_int(q, 6) != 0) /* hidden: a generated column */
            ok = 0;
        for (unsigned c = 0; ok && col && c < ncols; c++)
            if (!strcmp(col, t->cols[c]))
                found |= 1ul << c;
    }
    ok = ok && step == SQLITE_DONE && found == (1ul << ncols) - 1;
    sqlite3_finalize(q);
    return ok;
}

/* "1", "12": a schema version; anything else is damage. */
static int parse_version(const char *s, long *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (*end || errno || v < 1)
        return -1;
    *out = v;
    return 0;
}

static const struct store_table META_TABLE = { "meta", { "key", "value" } };

int store_part_check(sqlite3 *db, const struct store_part *p, const char *path, char *err, size_t errlen)
{
    /* the tables first: reading a view could run any query */
    if (!table_ok(db, &META_TABLE))
        return se_fail(err, errlen, SE_BADFILE, "%s is damaged or not a %s (table meta)", path, p->noun);
    for (size_t t = 0; t < p->ntables; t++)
        if (!table_ok(db, &p->tables[t]))
            return se_fail(err, errlen, SE_BADFILE, "%s is damaged or not a %s (table %s)", path, p->noun,
                           p->tables[t].name);
    const char *key = store_part_version_key(p->id);
    char *fmt = p->format ? store_meta_get(db, "format") : NULL;
    char *ver = store_meta_get(db, key);
    long v = 0;
    int rc = 0;
    if (p->format && (!fmt || strcmp(fmt, p->format) != 0))
        rc = se_fail(err, errlen, SE_BADFILE, "%s is not a %s (corrupt or foreign file)", path, p->noun);
    else if (!ver)
        rc = se_fail(err, errlen, SE_BADFILE, "%s is not a %s (no %s)", path, p->noun, key);
    else if (parse_version(ver, &v))
        rc = se_fail(err, errlen, SE_BADFILE, "%s is damaged: bad %s", path, key);
    else if (p->exact_version && v != p->version)
        rc = se_fail(err, errlen, SE_BADFILE, "%s: unsupported %s %ld", path, key, v);
    else if (v > p->version)
        rc = se_fail(err, errlen, SE_UNSUPPORTED, "%s uses schema version %s, newer than this sonde's %d", path,
                     ver, p->version);
    free(fmt);
    free(ver);
    return rc;
}

int store_probe(const char *path)
{
    sqlite3 *db = NULL;
    int parts = 0;
    /* a collector may be checkpointing the file: wait rather than take a
     * busy store for something else */
    if (store_file_open(path, STORE_READ, 3000, &db, NULL, 0))
        return 0;
    if (table_ok(db, &META_TABLE)) {
        char *fmt = store_meta_get(db, "format");
        char *ver = store_meta_get(db, store_part_version_key(STORE_PART_SAMPLES));
        char *sver = store_meta_get(db, store_part_version_key(STORE_PART_SPANS));
        if (fmt && ver && !strcmp(fmt, "sonde"))
            parts |= STORE_PART_SAMPLES;
        if (sver)
            parts |= STORE_PART_SPANS;
        free(fmt);
        free(ver);
        free(sver);
    }
    sqlite3_close(db);
    return parts;
}

int store_close(sqlite3 *db)
{
    if (!db)
        return 0;
    int rc = 0;
    if (sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;", NULL, NULL, NULL) !=
        SQLITE_OK) {
        int ec = sqlite3_errcode(db) & 0xff;
        /* a reader holding the file keeps its WAL: the file is whole, in
         * WAL mode; anything else did not reach the disk */
        if (ec != SQLITE_BUSY && ec != SQLITE_LOCKED)
            rc = store_write_errno(db);
    }
    if (sqlite3_close(db) != SQLITE_OK && !rc)
        rc = -EIO;
    return rc;
}

int store_meta_set(sqlite3 *db, const char *key, const char *value)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", -1, &st, NULL) != SQLITE_OK) {
        int ec = sqlite3_errcode(db) & 0xff;
        /* no meta table (or a file that is no database): the file's fault */
        return ec == SQLITE_ERROR || ec == SQLITE_NOTADB || ec == SQLITE_CORRUPT ? SE_BADFILE : store_write_errno(db);
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : store_write_errno(db); /* a full disk, not a bad file */
    sqlite3_finalize(st);
    return rc;
}

char *store_meta_get(sqlite3 *db, const char *key)
{
    sqlite3_stmt *st;
    char *out = NULL;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        out = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out;
}
