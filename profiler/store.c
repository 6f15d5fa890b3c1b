/* The samples part of a recording: the profiler's tables on top of the
 * store module (store/store.c), which owns the file. */
#include "profiler/store.h"

#include "common/err.h"

#include <errno.h>
#include <stdio.h>

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
    "CREATE TABLE string(id INTEGER PRIMARY KEY, s TEXT NOT NULL);"
    "CREATE TABLE frame(id INTEGER PRIMARY KEY, name INTEGER NOT NULL, file INTEGER NOT NULL,"
    " line INTEGER NOT NULL, fn_line INTEGER NOT NULL, kind INTEGER NOT NULL,"
    " module INTEGER NOT NULL DEFAULT 0, address INTEGER NOT NULL DEFAULT 0);"
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
    " holder INTEGER NOT NULL, waiters INTEGER NOT NULL);"
    "CREATE TABLE green(id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, thread INTEGER NOT NULL,"
    " kind INTEGER NOT NULL, addr INTEGER NOT NULL, name TEXT NOT NULL, func TEXT NOT NULL,"
    " start_ns INTEGER NOT NULL, end_ns INTEGER);";

/* The tables and columns a reader of schema version 1 uses. Later
 * versions may add columns; these must stay. */
static const struct store_table READ_SCHEMA[] = {
    { "string", { "id", "s" } },
    { "frame", { "id", "name", "file", "line", "fn_line", "kind" } },
    { "stack", { "id", "parent", "frame" } },
    { "process", { "pid", "ppid", "cmd", "python_version", "start_ns", "end_ns" } },
    { "thread", { "id", "pid", "tid", "ident", "name" } },
    { "sample", { "ts", "thread", "stack", "cpu_ns", "wall_ns", "state", "green", "span" } },
    { "gil", { "ts", "pid", "switches", "holder", "waiters" } },
};

const struct store_part store_samples_part = {
    .id = STORE_PART_SAMPLES,
    .noun = "sonde recording",
    .format = STORE_FORMAT,
    .create_sql = SCHEMA,
    .tables = READ_SCHEMA,
    .ntables = sizeof READ_SCHEMA / sizeof READ_SCHEMA[0],
    .version = STORE_SCHEMA_VERSION,
    .exact_version = 0,
};

/* How long creating a recording waits for a reader's lock: one that
 * looks at the file as it is made (`sonde record --agent -p` polls it)
 * holds a shared lock for a moment, and the switch to WAL needs the file
 * alone. Once in WAL mode, readers never block the writer: the wait goes
 * back to 0 (the end's checkpoint gives way to a reader). */
#define STORE_CREATE_BUSY_MS 5000

int store_create(const char *path, const char *const *meta, sqlite3 **db, char *err, size_t errlen)
{
    int rc = store_file_open(path, STORE_REPLACE | STORE_NOSYNC, STORE_CREATE_BUSY_MS, db, err,
                             errlen);
    if (rc)
        return rc;
    if ((rc = store_part_add(*db, &store_samples_part, meta, err, errlen))) {
        sqlite3_close(*db);
        *db = NULL;
        return se_fail(err, errlen, rc, "cannot create %s", path);
    }
    sqlite3_busy_timeout(*db, 0);
    return 0;
}

int store_open(const char *path, int readonly, sqlite3 **db, char *err, size_t errlen)
{
    int rc = store_file_open(path, readonly ? STORE_READ : STORE_WRITE, 2000, db, err, errlen);
    if (!rc)
        rc = store_file_check_magic(path, store_samples_part.noun, err, errlen);
    if (!rc)
        rc = store_part_check(*db, &store_samples_part, path, err, errlen);
    if (rc) {
        sqlite3_close(*db);
        *db = NULL;
    }
    return rc;
}
