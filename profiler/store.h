/* The .sonde file: one SQLite database per recording (schema in
 * docs/file-format.md). This module owns the schema, its version and the
 * checks that refuse corrupt or foreign files. */
#ifndef SONDE_STORE_H
#define SONDE_STORE_H

#include "common/state.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_FORMAT "sonde"
/* 2: sample.flags (truncated stacks, GIL held off CPU). Version 1 files
 * read as if every flag were 0. */
#define STORE_SCHEMA_VERSION 2

/* sample.state holds an enum sample_state (common/state.h). */

/* Create a new recording at path (an existing file is replaced), with the
 * schema in place, in WAL mode so that a killed recorder leaves a readable
 * file. 0 or a negative code with a message. */
int store_create(const char *path, sqlite3 **db, char *err, size_t errlen);

/* The longest string or blob a reader accepts from a file (64 MiB). */
#define STORE_VALUE_MAX (64 << 20)

/* Open an existing .sonde file. Refuses (SE_BADFILE) a missing or
 * unreadable path, anything but a regular file (never blocks on a FIFO),
 * anything that is not SQLite or lacks sonde's meta rows, and a file whose
 * tables are not the plain tables with the columns readers use; refuses
 * (SE_UNSUPPORTED) newer schemas. The connection is hardened for an
 * untrusted file (defensive mode, untrusted schema, values up to
 * STORE_VALUE_MAX). */
int store_open(const char *path, int readonly, sqlite3 **db, char *err, size_t errlen);

/* Finish a recording: checkpoint the WAL into the main file and switch back
 * to a single-file journal. Then closes db. */
int store_close(sqlite3 *db);

/* Set / get a meta value. set returns 0, SE_BADFILE (no meta table) or
 * -EIO (the write failed); get returns a malloc'd string or NULL. */
int store_meta_set(sqlite3 *db, const char *key, const char *value);
char *store_meta_get(sqlite3 *db, const char *key);

#endif
