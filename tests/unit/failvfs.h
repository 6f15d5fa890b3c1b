/* An SQLite VFS for tests that fails writes on demand: installed as the
 * default VFS, it passes everything to the real one, except that writes to
 * a main database file while failvfs_main is set, or to a WAL file while
 * failvfs_wal is set, fail with SQLITE_FULL (a full disk). Set the flags
 * only while no other thread is inside SQLite, or before handing work to
 * it through a lock (e.g. squeue_push). */
#ifndef SONDE_TEST_FAILVFS_H
#define SONDE_TEST_FAILVFS_H

#include <stddef.h>

extern int failvfs_main, failvfs_wal;

/* What went through the VFS since the counters were last zeroed: file
 * syncs (fsync / fdatasync, the journal's directory included), and write
 * locks taken on a WAL (one per write transaction or checkpoint). */
extern int failvfs_syncs, failvfs_wal_writes;

/* Register the VFS as SQLite's default (once, before opening files). */
void failvfs_install(void);

/* A per-process path for test database NAME of test TEST under $TMPDIR (or
 * /tmp), and the removal of a database with its -wal and -shm files. */
void failvfs_tmp_path(char *buf, size_t len, const char *test, const char *name);
void failvfs_rm(const char *path);

#endif
