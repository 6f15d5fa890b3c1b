/* The store module: a recording carrying spans next to its samples, probing
 * what a file holds, and write failures at the end of a file reported as
 * write errors (not as damaged files). Write failures come from a VFS shim
 * that fails writes to the main database or to the WAL on demand. */
#include "check.h"

#include "common/err.h"
#include "profiler/model.h"
#include "profiler/store.h"
#include "store/spans.h"
#include "store/store.h"
#include "synth.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- a VFS that fails writes on demand ---- */

static sqlite3_vfs *real_vfs;
static int fail_main, fail_wal;

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
    if ((fail_main && (fl & SQLITE_OPEN_MAIN_DB)) || (fail_wal && (fl & SQLITE_OPEN_WAL)))
        return SQLITE_FULL;
    return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int s_truncate(sqlite3_file *f, sqlite3_int64 n) { return REAL(f)->pMethods->xTruncate(REAL(f), n); }
static int s_sync(sqlite3_file *f, int fl) { return REAL(f)->pMethods->xSync(REAL(f), fl); }
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
static int s_shmlock(sqlite3_file *f, int o, int n, int fl) { return REAL(f)->pMethods->xShmLock(REAL(f), o, n, fl); }
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

static void shim_install(void)
{
    real_vfs = sqlite3_vfs_find(NULL);
    shim_vfs = *real_vfs;
    shim_vfs.zName = "failshim";
    shim_vfs.szOsFile = (int)sizeof(struct shim_file) + real_vfs->szOsFile;
    shim_vfs.xOpen = s_open;
    sqlite3_vfs_register(&shim_vfs, 1);
}

/* ---- tests ---- */

static void tmp_path(char *buf, size_t len, const char *name)
{
    const char *dir = getenv("TMPDIR");
    snprintf(buf, len, "%s/sonde-test-store-%d-%s", dir && *dir ? dir : "/tmp", (int)getpid(), name);
}

static void rm(const char *path)
{
    char side[600];
    unlink(path);
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
}

static void add_spans(struct span_batch *b, const char *trace, int n)
{
    for (int i = 0; i < n; i++) {
        struct span *s = span_batch_add(b);
        snprintf(s->trace_id, sizeof s->trace_id, "%s", trace);
        snprintf(s->span_id, sizeof s->span_id, "%016x", i + 1);
        if (i)
            snprintf(s->parent_id, sizeof s->parent_id, "%016x", 1);
        s->name = i ? "child" : "root";
        s->service = "svc";
        s->node = "host";
        s->kind = i ? SPAN_KIND_INTERNAL : SPAN_KIND_SERVER;
        s->start_us = 1700000000000000 + i * 10;
        s->end_us = s->start_us + 1000 - i * 20;
    }
}

/* A recording gets the span tables next to its samples; both read back. */
static void test_recording_with_spans(void)
{
    char path[512], err[512] = "";
    const char *trace = "0123456789abcdef0123456789abcdef";
    tmp_path(path, sizeof path, "both.sonde");
    rm(path);
    CHECK_INT(synth_write(path, SYNTH_THREADS, 0, err, sizeof err), 0);
    CHECK_INT(store_probe(path), STORE_PART_SAMPLES);

    struct span_store *st = NULL;
    CHECK_INT(span_store_open(path, STORE_CREATE, &st, err, sizeof err), 0);
    struct span_batch b;
    span_batch_init(&b);
    add_spans(&b, trace, 3);
    size_t ins = 0;
    if (st)
        CHECK_INT(span_store_insert(st, b.spans, b.n, 1, &ins, err, sizeof err), 0);
    CHECK_INT(ins, 3);
    span_batch_fini(&b);
    span_store_free(st);

    CHECK_INT(store_probe(path), STORE_PART_SAMPLES | STORE_PART_SPANS);
    /* the samples, as before */
    struct model *m = NULL;
    CHECK_INT(model_load(path, &m, err, sizeof err), 0);
    CHECK(m && m->nsamples > 0, "samples lost: %s", err);
    model_free(m);
    /* the spans, through the span store and trace assembly */
    st = NULL;
    CHECK_INT(span_store_open(path, 0, &st, err, sizeof err), 0);
    struct trace_view v = { 0 };
    if (st)
        CHECK_INT(trace_load(st, trace, trace_store_max_skew(st, -1), &v, err, sizeof err), 0);
    CHECK_INT(v.b.n, 3);
    CHECK_INT(v.nroots, 1);
    trace_view_fini(&v);
    span_store_free(st);
    rm(path);

    /* a collector's store holds spans alone */
    tmp_path(path, sizeof path, "spans.db");
    rm(path);
    CHECK_INT(span_store_open(path, STORE_CREATE, &st, err, sizeof err), 0);
    span_store_free(st);
    CHECK_INT(store_probe(path), STORE_PART_SPANS);
    /* a recording's reader refuses it, as a bad file */
    CHECK_INT(model_load(path, &m, err, sizeof err), SE_BADFILE);
    rm(path);
    CHECK_INT(store_probe(path), 0);
}

/* The end of a recording (checkpoint into the main file) cannot be
 * written: store_close says so, as a write error. */
static void test_close_write_error(void)
{
    char path[512], err[512] = "";
    tmp_path(path, sizeof path, "full.sonde");
    sqlite3 *db = NULL;
    CHECK_INT(store_create(path, &db, err, sizeof err), 0);
    CHECK_INT(store_meta_set(db, "k", "v"), 0);
    fail_main = 1;
    int rc = store_close(db);
    fail_main = 0;
    CHECK(rc == -ENOSPC, "store_close = %d, want -ENOSPC", rc);
    /* the file still reads (from its WAL) */
    CHECK_INT(store_open(path, 1, &db, err, sizeof err), 0);
    char *v = db ? store_meta_get(db, "k") : NULL;
    CHECK(v && !strcmp(v, "v"), "meta k = %s", v ? v : "(null)");
    free(v);
    sqlite3_close(db);

    /* a meta write that fails: a write error, not a bad file */
    CHECK_INT(store_open(path, 0, &db, err, sizeof err), 0);
    fail_wal = 1;
    rc = db ? store_meta_set(db, "k", "w") : 0;
    fail_wal = 0;
    CHECK(rc == -ENOSPC, "store_meta_set = %d, want -ENOSPC", rc);
    /* no meta table: the file's fault */
    CHECK_INT(db ? sqlite3_exec(db, "DROP TABLE meta", NULL, NULL, NULL) : 1, SQLITE_OK);
    CHECK_INT(store_meta_set(db, "k", "w"), SE_BADFILE);
    CHECK_INT(store_close(db), 0);
    rm(path);
}

int main(void)
{
    shim_install();
    test_recording_with_spans();
    test_close_write_error();
    return check_done("store");
}
