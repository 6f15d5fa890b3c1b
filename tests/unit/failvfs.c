/* A VFS that fails writes on demand (see failvfs.h). */
#include "failvfs.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static sqlite3_vfs *real_vfs;
int failvfs_main, failvfs_wal;
int failvfs_syncs, failvfs_wal_writes;

struct shim_file {
    sqlite3_file base;
    int flags;
    sqlite3_file *real; /* follows this struct */
};

#define REAL(f) (((struct shim_file *)(f))->real)

static int s_close(sqlite3_file *f) { return REAL(f)->pMethods ? REAL(f)->pMethods->xClose(REAL(f)) : SQLITE_OK; }
static int s_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o) { return REAL(f)->pMethods->xRead(REAL(f), b, n, o); }
static int s_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
    int fl = ((struct shim_file *)f)->flags;
    if ((failvfs_main && (fl & SQLITE_OPEN_MAIN_DB)) || (failvfs_wal && (fl & SQLITE_OPEN_WAL)))
        return SQLITE_FULL;
    return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int s_truncate(sqlite3_file *f, sqlite3_int64 n) { return REAL(f)->pMethods->xTruncate(REAL(f), n); }
static int s_sync(sqlite3_file *f, int fl)
{
    __atomic_add_fetch(&failvfs_syncs, 1, __ATOMIC_RELAXED);
    return REAL(f)->pMethods->xSync(REAL(f), fl);
}
static int s_size(sqlite3_file *f, sqlite3_int64 *n) { return REAL(f)->pMethods->xFileSize(REAL(f), n); }
static int s_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int s_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int s_reserved(sqlite3_file *f, int *r) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r); }
static int s_fctl(sqlite3_file *f, int op, void *a) { return REAL(f)->pMethods->xFileControl(REAL(f), op, a); }
static int s_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int s_devchar(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int s_shmmap(sqlite3_file *f, int i, int sz, int ext, void volatile **p)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), i, sz, ext, p);
}
static int s_shmlock(sqlite3_file *f, int o, int n, int fl)
{
    int rc = REAL(f)->pMethods->xShmLock(REAL(f), o, n, fl);
    /* slot 0 taken exclusively: the WAL's write lock, once a transaction */
    if (rc == SQLITE_OK && o == 0 && n == 1 && fl == (SQLITE_SHM_LOCK | SQLITE_SHM_EXCLUSIVE))
        __atomic_add_fetch(&failvfs_wal_writes, 1, __ATOMIC_RELAXED);
    return rc;
}
static void s_shmbarrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int s_shmunmap(sqlite3_file *f, int d) { return REAL(f)->pMethods->xShmUnmap(REAL(f), d); }

static const sqlite3_io_methods shim_io = {
    2, s_close, s_read, s_write, s_truncate, s_sync, s_size, s_lock, s_unlock, s_reserved, s_fctl, s_sector,
    s_devchar, s_shmmap, s_shmlock, s_shmbarrier, s_shmunmap, NULL, NULL,
};

static int s_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out)
{
    (void)v;
    struct shim_file *s = (struct shim_file *)f;
    s->flags = flags;
    s->real = (sqlite3_file *)(s + 1);
    s->real->pMethods = NULL;
    int rc = real_vfs->xOpen(real_vfs, name, s->real, flags, out);
    f->pMethods = rc == SQLITE_OK ? &shim_io : NULL;
    return rc;
}

static sqlite3_vfs shim_vfs;

void failvfs_install(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    shim_vfs = *real_vfs;
    shim_vfs.zName = "failshim";
    shim_vfs.szOsFile = (int)sizeof(struct shim_file) + real_vfs->szOsFile;
    shim_vfs.xOpen = s_open;
    sqlite3_vfs_register(&shim_vfs, 1);
}

void failvfs_tmp_path(char *buf, size_t len, const char *test, const char *name)
{
    const char *dir = getenv("TMPDIR");
    snprintf(buf, len, "%s/sonde-test-%s-%d-%s", dir && *dir ? dir : "/tmp", test, (int)getpid(), name);
}

void failvfs_rm(const char *path)
{
    char side[600];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}
