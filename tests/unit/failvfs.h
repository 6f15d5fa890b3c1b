/* An SQLite VFS for tests that fails writes on demand: installed as the
 * default VFS, it passes everything to the real one, except that writes to
 * a main database file while failvfs_main is set, or to a WAL file while
 * failvfs_wal is set, fail with SQLITE_FULL (a full disk). Set the flags
 * only while no other thread is inside SQLite, or before handing work to
 * it through a lock (e.g. squeue_push). */
#ifndef SONDE_TEST_FAILVFS_H
#define SONDE_TEST_FAILVFS_H

extern int failvfs_main, failvfs_wal;

/* Register the VFS as SQLite's default (once, before opening files). */
void failvfs_install(void);

#endif
