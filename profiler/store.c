#include "profiler/store.h"

#include "common/err.h"

#include <errno.h>
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

int store_open(const char *path, int readonly, sqlite3 **db, char *err, size_t errlen)
{
    *db = NULL;
    if (access(path, R_OK) != 0)
        return se_fail(err, errlen, -2, "cannot open %s: no such file or not readable", path);
    FILE *f = fopen(path, "rb");
    char magic[16] = "";
    size_t got = f ? fread(magic, 1, 16, f) : 0;
    if (f)
        fclose(f);
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
    char *fmt = store_meta_get(*db, "format");
    char *ver = store_meta_get(*db, "schema_version");
    int rc = 0;
    if (!fmt || strcmp(fmt, STORE_FORMAT) != 0)
        rc = se_fail(err, errlen, SE_BADFILE, "%s is not a sonde recording (corrupt or foreign file)",
                     path);
    else if (!ver || atoi(ver) > STORE_SCHEMA_VERSION)
        rc = se_fail(err, errlen, SE_UNSUPPORTED,
                     "%s uses schema version %s, newer than this sonde's %d", path,
                     ver ? ver : "?", STORE_SCHEMA_VERSION);
    else if (sqlite3_exec(*db, "SELECT count(*) FROM sample LIMIT 1", NULL, NULL, NULL) != SQLITE_OK)
        rc = se_fail(err, errlen, SE_BADFILE, "%s is corrupt: %s", path, sqlite3_errmsg(*db));
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
