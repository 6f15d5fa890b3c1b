/* The SQLite file behind a recording (.sonde) and a span store: one module
 * owns the file itself. It opens it (regular files only, read-only /
 * read-write / create / replace, WAL for writers, hardening for readers:
 * the file is untrusted), keeps the meta table, and knows the file's schema
 * parts: the samples of a recording (profiler/store.c) and the spans of a
 * collector (store/spans.c), each a set of tables with its own version key
 * in meta. A file may hold either part or both. The parts' own tables and
 * their SQL stay with their owners, on top of this module.
 *
 * A folder of its own rather than profiler/store.c grown: the span tables
 * are read by ui/ and cli/ and written by the collector, none of which may
 * depend on the profiler, and a recording may carry spans next to samples. */
#ifndef SONDE_STORE_STORE_H
#define SONDE_STORE_STORE_H

#include <sqlite3.h>
#include <stddef.h>

/* store_file_open modes. */
enum {
    STORE_READ = 0,    /* read-only, an existing file */
    STORE_WRITE = 1,   /* read-write, an existing file */
    STORE_CREATE = 2,  /* read-write, created when missing; WAL journal */
    STORE_REPLACE = 4, /* read-write, a new file replacing an earlier one (and its -wal, -shm); WAL */
    STORE_NOSYNC = 8,  /* with CREATE or REPLACE: synchronous=OFF, for recordings (see store_file_open) */
};

/* The schema parts a file may hold (bits of store_probe's answer). */
enum store_part_id {
    STORE_PART_SAMPLES = 1, /* a recording: meta format 'sonde' + schema_version */
    STORE_PART_SPANS = 2,   /* spans and traces: meta spans_schema_version */
};

/* The longest string or blob a reader accepts from a file (64 MiB). */
#define STORE_VALUE_MAX (64 << 20)

/* One table a reader uses and the columns it reads (later versions may add
 * columns; these must stay). */
struct store_table {
    const char *name;
    const char *cols[20];
};

/* A schema part: its tables, the SQL that creates them, and its version. */
struct store_part {
    enum store_part_id id;
    const char *noun;        /* "sonde recording", "sonde span store": for messages */
    const char *format;      /* NULL, or the value meta 'format' must hold */
    const char *create_sql;  /* run in the transaction that adds the part */
    const struct store_table *tables;
    size_t ntables;
    int version;             /* what this build writes */
    int exact_version;       /* 1: any other version is damage (SE_BADFILE); 0: a
                              * newer one is SE_UNSUPPORTED, an older one is read */
};

/* The meta key holding a part's version ("schema_version",
 * "spans_schema_version"). */
const char *store_part_version_key(enum store_part_id id);

/* Open path as mode says. An existing file must be a regular file (opened
 * with O_NONBLOCK first: never blocks on a FIFO, never reads a device);
 * STORE_REPLACE refuses (SE_USAGE) to replace anything but a regular file
 * or a link. Writers (CREATE, REPLACE) get WAL with synchronous=NORMAL
 * (a committed transaction survives a power cut once the WAL is synced:
 * the collector's acknowledged spans), or with STORE_NOSYNC synchronous=OFF:
 * no fsync at all, so a writer that is killed (SIGKILL, a crash) still
 * loses nothing it committed (the data is in the kernel's page cache), but
 * a power cut or an operating-system crash may lose the recording's last
 * transactions or leave the file damaged (readers then refuse it);
 * readers (READ, WRITE) a hardened connection (defensive mode, untrusted
 * schema, values up to STORE_VALUE_MAX) with a busy timeout of busy_ms.
 * Returns 0 and *db, or SE_BADFILE (missing, not regular, not openable),
 * -EIO (cannot create) with a message; *db is NULL on failure. */
int store_file_open(const char *path, int mode, int busy_ms, sqlite3 **db, char *err, size_t errlen);

/* May STORE_REPLACE replace path? 0 when it is missing, a regular file
 * or a link; SE_USAGE with a message otherwise. Commands that launch a
 * program check their output with it before launching. */
int store_check_replaceable(const char *path, char *err, size_t errlen);

/* Is the file's first page SQLite's? 0, or SE_BADFILE naming noun. */
int store_file_check_magic(const char *path, const char *noun, char *err, size_t errlen);

/* Add part p to an open, writable file: its tables (p->create_sql), its
 * version in meta and the meta rows in meta (NULL, or key, value, ...,
 * NULL), in one transaction. 0, or -EIO / -ENOSPC (a write failed) with a
 * message. */
int store_part_add(sqlite3 *db, const struct store_part *p, const char *const *meta, char *err, size_t errlen);

/* Does the file hold part p as this build reads it? Its tables are plain
 * tables (not views, virtual tables or tables with computed columns, whose
 * reading could run any query the file's author chose) with the columns
 * readers use, and its version is one this build reads. 0, SE_BADFILE
 * (missing, damaged, foreign) or SE_UNSUPPORTED (newer), with a message
 * naming path. Check this before reading anything else of the file. */
int store_part_check(sqlite3 *db, const struct store_part *p, const char *path, char *err, size_t errlen);

/* Which parts path holds (STORE_PART_* bits; 0 for a missing, foreign or
 * damaged file: the caller's loader says why). Read-only, waiting up to 3 s
 * for a writer that holds the file. Only meta is read; the parts' tables are
 * checked when opened. */
int store_probe(const char *path);

/* Finish a written file: checkpoint the WAL into the main file, switch back
 * to a single-file journal, close db. 0, or -EIO / -ENOSPC when the end of
 * the file could not be written (db is closed either way). NULL: 0. */
int store_close(sqlite3 *db);

/* Set a meta value: 0, SE_BADFILE (no meta table to write) or -EIO /
 * -ENOSPC (the write failed: a full disk, not a bad file). */
int store_meta_set(sqlite3 *db, const char *key, const char *value);

/* A meta value as a malloc'd string, or NULL (absent, or out of memory). */
char *store_meta_get(sqlite3 *db, const char *key);

/* A failed write on db as a code: -ENOSPC for a full disk, -ENOMEM, else
 * -EIO. */
int store_write_errno(sqlite3 *db);

#endif
