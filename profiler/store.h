/* The samples part of a .sonde file (schema in docs/file-format.md): the
 * profiler's own tables on top of store/store.h, which owns the file itself
 * (opening, meta, versions, probing). A recording may also hold the span
 * tables (store/spans.h) next to its samples. */
#ifndef SONDE_PROFILER_STORE_H
#define SONDE_PROFILER_STORE_H

#include "common/state.h"
#include "store/store.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_FORMAT "sonde"
/* 2: sample.flags (truncated stacks, GIL held off CPU). Version 1 files
 * read as if every flag were 0.
 * 3: green threads: the green table (asyncio tasks, greenlets), sample.green
 * set, and samples flagged SAMPLE_SUSPENDED (a suspended green thread's,
 * not its OS thread's). Version 1 and 2 files read as having no green
 * threads; sonde before version 3 refuses version 3 files (it would count
 * suspended samples as its threads' time).
 * 4: native frames (record --native): frame.kind 1, frame.module (the
 * string of the mapped file's path) and frame.address (the function's
 * offset in it, or the sampled address's when no symbol covers it).
 * Version 1 to 3 files read as having module and address 0 (they hold no
 * native frames). */
#define STORE_SCHEMA_VERSION 4

/* sample.state holds an enum sample_state (common/state.h). */

/* The samples part (tables string, frame, stack, process, thread, sample,
 * gil, green; meta format and schema_version). */
extern const struct store_part store_samples_part;

/* Create a new recording at path (an existing file is replaced), with the
 * schema, its meta rows and the extra meta rows in meta (NULL, or key,
 * value, ..., NULL) written in one transaction, in WAL mode so that a killed
 * recorder leaves a readable file holding every transaction it committed.
 * A recording is written with synchronous=OFF (STORE_NOSYNC): it costs no
 * fsync to create or to finish, and only a power cut or an operating-system
 * crash during the recording may lose its end or damage it. 0 or a negative
 * code with a message. */
int store_create(const char *path, const char *const *meta, sqlite3 **db, char *err, size_t errlen);

/* Open an existing .sonde file. Refuses (SE_BADFILE) a missing or
 * unreadable path, anything but a regular file (never blocks on a FIFO),
 * anything that is not SQLite or lacks sonde's meta rows, and a file whose
 * tables are not the plain tables with the columns readers use; refuses
 * (SE_UNSUPPORTED) newer schemas. The connection is hardened for an
 * untrusted file (defensive mode, untrusted schema, values up to
 * STORE_VALUE_MAX). */
int store_open(const char *path, int readonly, sqlite3 **db, char *err, size_t errlen);

#endif
