#include "profiler/store.h"

#include "common/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char SCHEMA[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
    "CREATE TABLE string(id INTEGER PRIMARY KEY, s TEXT NOT NULL);"
    "CREATE TABLE frame(id INTEGER PRIMARY KEY, name INTEGER NOT NULL, file INTEGER NOT NULL,"
    " line INTEGER NOT NULL, fn_line INTEGER NOT NULL, kind INTEGER NOT NULL);"
    "CREATE TABLE stack(id INTEGER PRIMARY KEY, parent INTEGER NOT NULL, frame INTEGER NOT NULL);"
    "CREATE TABLE process(pid INTEGER PRIMARY KEY, ppid INTEGER, cmd TEXT, python_version TEXT,"
    " start_ns INTEGER, end_ns INTEGER);"
    "CREATE TABLE thread(id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, tid INTEGER NOT NULL,"
    " ident INTEGER, name TEXT);"
    "CREATE TABLE sample(ts INTEGER NOT NULL, thread INTEGER NOT NULL, stack INTEGER NOT NULL,"
    " cpu_ns INTEGER NOT NULL, wall_ns INTEGER NOT NULL, state INTEGER NOT NULL,"
    " green INTEGER NOT NULL DEFAULT 0, span INTEGER NOT NULL DEFAULT 0,"
    " flags INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE gil(ts INTEGER NOT NULL, pid INTEGER NOT NULL, switches INTEGER NOT NULL,"
    " holder INTEGER NOT NULL, waiters INTEGER NOT NULL);";

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int rc = se_fail(err, errlen, SE_BADFILE, "sqlite: %s", msg ? msg : "error");
        sqlite3_free(msg);
        return rc;
    }
    return 0;
}

/* Remove an earlier file at path, which must be a regular file (or a
 * link) if it exists: never a device or a directory named by -o. */
static int remove_old(const char *path, char *err, size_t errlen)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return 0;
    if (!S_ISREG(sb.st_mode) && !S_ISLNK(sb.st_mode))
        return se_fail(err, errlen, SE_USAGE, "%s exists and is not a regular file", path);
    unlink(path);
    return 0;
}

int store_create(const char *path, sqlite3 **db, char *err, size_t errlen)
{
    *db = NULL;
    char wal[4096], shm[4096];
    snprintf(wal, sizeof wal, "%s-wal", path);
    snprintf(shm, sizeof shm, "%s-shm", path);
    int rc = remove_old(path, err, errlen);
    if (!rc)
        rc = remove_old(wal, err, errlen);
    if (!rc)
        rc = remove_old(shm, err, errlen);
    if (rc)
        return rc;
    if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        int rc = se_fail(err, errlen, -5, "cannot create %s: %s", path,
                         *db ? sqlite3_errmsg(*db) : "out of memory");
        sqlite3_close(*db);
        *db = NULL;
        return rc;
    }
    char sql[256];
    snprintf(sql, sizeof sql,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
             "BEGIN; %s", "");
    rc = exec(*db, sql, err, errlen);
    if (!rc)
        rc = exec(*db, SCHEMA, err, errlen);
    if (!rc) {
        snprintf(sql, sizeof sql,
                 "INSERT INTO meta VALUES('format','%s'); INSERT INTO meta VALUES('schema_version','%d');"
                 "COMMIT;",
                 STORE_FORMAT, STORE_SCHEMA_VERSION);
        rc = exec(*db, sql, err, errlen);
    }
    if (rc) {
        sqlite3_close(*db);
        *db = NULL;
        return se_fail(err, errlen, -5, "cannot create %s", path);
    }
    return 0;
}

/* The tables and columns a reader of schema version 1 uses. Later
 * versions may add columns; these must stay. */
static const struct {
    const char *table;
    const char *cols[9];
} READ_SCHEMA[] = {
    { "meta", { "key", "value" } },
    { "string", { "id", "s" } },
    { "frame", { "id", "name", "file", "line", "fn_line", "kind" } },
    { "stack", { "id", "parent", "frame" } },
    { "process", { "pid", "ppid", "cmd", "python_version", "start_ns", "end_ns" } },
    { "thread", { "id", "pid", "tid", "ident", "name" } },
    { "sample", { "ts", "thread", "stack", "cpu_ns", "wall_ns", "state", "green", "span" } },
    { "gil", { "ts", "pid", "switches", "holder", "waiters" } },
};

/* Is every table of READ_SCHEMA an ordinary table (not a view, a virtual
 * table or one with computed columns, whose reading could run any query
 * the file's author chose) with the columns we read? 0 or SE_BADFILE. */
static int check_schema(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    for (size_t t = 0; t < sizeof READ_SCHEMA / sizeof READ_SCHEMA[0]; t++) {
        const char *name = READ_SCHEMA[t].table;
        sqlite3_stmt *st = NULL;
        int ok = sqlite3_prepare_v2(db,
                                    "SELECT count(*) FROM sqlite_schema WHERE name = ?1 AND type = 'table'"
                                    " AND sql NOT LIKE 'CREATE VIRTUAL%'",
                                    -1, &st, NULL) == SQLITE_OK;
        if (ok) {
            sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
            ok = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int64(st, 0) == 1;
        }
        sqlite3_finalize(st);
        st = NULL;
        unsigned found = 0, ncols = 0;
        while (ncols < 9 && READ_SCHEMA[t].cols[ncols])
            ncols++;
        if (ok) {
            char sql[96];
            snprintf(sql, sizeof sql, "PRAGMA table_xinfo(\"%s\")", name);
            ok = sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK;
            int step;
            while (ok && (step = sqlite3_step(st)) == SQLITE_ROW) {
                const char *col = (const char *)sqlite3_column_text(st, 1);
                if (sqlite3_column_int(st, 6) != 0) /* hidden: a generated column */
                    ok = 0;
                for (unsigned c = 0; ok && col && c < ncols; c++)
                    if (!strcmp(col, READ_SCHEMA[t].cols[c]))
                        found |= 1u << c;
            }
            ok = ok && step == SQLITE_DONE && found == (1u << ncols) - 1;
            sqlite3_finalize(st);
        }
        if (!ok)
            return se_fail(err, errlen, SE_BADFILE, "%s is damaged or not a sonde recording (table %s)", path,
                           name);
    }
    return 0;
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

int store_open(const char *path, int readonly, sqlite3 **db, char *err, size_t errlen)
{
    *db = NULL;
    /* never block on a FIFO or a device: O_NONBLOCK, then regular files only */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return se_fail(err, errlen, SE_BADFILE, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    char magic[16] = "";
    ssize_t got = 0;
    int regular = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
    if (regular)
        got = pread(fd, magic, sizeof magic, 0);
    close(fd);
    if (!regular)
        return se_fail(err, errlen, SE_BADFILE, "%s is not a regular file", path);
    if (got < 16 || memcmp(magic, "SQLite format 3", 16) != 0)
        return se_fail(err, errlen, SE_BADFILE, "%s is not a sonde recording (not an SQLite file)",
                       path);
    int flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, db, flags, NULL) != SQLITE_OK) {
        sqlite3_close(*db);
        *db = NULL;
        return se_fail(err, errlen, SE_BADFILE, "cannot open %s", path);
    }
    sqlite3_busy_timeout(*db, 2000);
    /* the file is untrusted: no functions with side effects from its
     * schema, no writes to sqlite_schema, no multi-gigabyte values */
    sqlite3_db_config(*db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(*db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    sqlite3_limit(*db, SQLITE_LIMIT_LENGTH, STORE_VALUE_MAX);
    /* the tables first: reading a view could run any query */
    int rc = check_schema(*db, path, err, errlen);
    if (rc) {
        sqlite3_close(*db);
        *db = NULL;
        return rc;
    }
    char *fmt = store_meta_get(*db, "format");
    char *ver = store_meta_get(*db, "schema_version");
    long v = 0;
    if (!fmt || strcmp(fmt, STORE_FORMAT) != 0)
        rc = se_fail(err, errlen, SE_BADFILE, "%s is not a sonde recording (corrupt or foreign file)",
                     path);
    else if (parse_version(ver, &v))
        rc = se_fail(err, errlen, SE_BADFILE, "%s is damaged: bad schema_version", path);
    else if (v > STORE_SCHEMA_VERSION)
        rc = se_fail(err, errlen, SE_UNSUPPORTED,
                     "%s uses schema version %s, newer than this sonde's %d", path,
                     ver, STORE_SCHEMA_VERSION);
    free(fmt);
    free(ver);
    if (rc) {
        sqlite3_close(*db);
        *db = NULL;
    }
    return rc;
}

int store_close(sqlite3 *db)
{
    if (!db)
        return 0;
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode=DELETE;", NULL, NULL,
                 NULL);
    return sqlite3_close(db) == SQLITE_OK ? 0 : SE_BADFILE;
}

int store_meta_set(sqlite3 *db, const char *key, const char *value)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", -1, &st,
                           NULL) != SQLITE_OK)
        return SE_BADFILE;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : -EIO; /* a full disk, not a bad file */
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
