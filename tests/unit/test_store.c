/* The store module: a recording carrying spans next to its samples, probing
 * what a file holds, and write failures at the end of a file reported as
 * write errors (not as damaged files). Write failures come from a VFS shim
 * that fails writes to the main database or to the WAL on demand. */
#include "check.h"
#include "failvfs.h"

#include "common/err.h"
#include "profiler/model.h"
#include "profiler/store.h"
#include "store/spans.h"
#include "store/store.h"
#include "synth.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- tests ---- */

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
    failvfs_tmp_path(path, sizeof path, "store", "both.sonde");
    failvfs_rm(path);
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
    failvfs_rm(path);

    /* a collector's store holds spans alone */
    failvfs_tmp_path(path, sizeof path, "store", "spans.db");
    failvfs_rm(path);
    CHECK_INT(span_store_open(path, STORE_CREATE, &st, err, sizeof err), 0);
    span_store_free(st);
    CHECK_INT(store_probe(path), STORE_PART_SPANS);
    /* a recording's reader refuses it, as a bad file */
    CHECK_INT(model_load(path, &m, err, sizeof err), SE_BADFILE);
    failvfs_rm(path);
    CHECK_INT(store_probe(path), 0);
}

/* The end of a recording (checkpoint into the main file) cannot be
 * written: store_close says so, as a write error. */
static void test_close_write_error(void)
{
    char path[512], err[512] = "";
    failvfs_tmp_path(path, sizeof path, "store", "full.sonde");
    sqlite3 *db = NULL;
    CHECK_INT(store_create(path, NULL, &db, err, sizeof err), 0);
    CHECK_INT(store_meta_set(db, "k", "v"), 0);
    failvfs_main = 1;
    int rc = store_close(db);
    failvfs_main = 0;
    CHECK(rc == -ENOSPC, "store_close = %d, want -ENOSPC", rc);
    /* the file still reads (from its WAL) */
    CHECK_INT(store_open(path, 1, &db, err, sizeof err), 0);
    char *v = db ? store_meta_get(db, "k") : NULL;
    CHECK(v && !strcmp(v, "v"), "meta k = %s", v ? v : "(null)");
    free(v);
    sqlite3_close(db);

    /* a meta write that fails: a write error, not a bad file */
    CHECK_INT(store_open(path, 0, &db, err, sizeof err), 0);
    failvfs_wal = 1;
    rc = db ? store_meta_set(db, "k", "w") : 0;
    failvfs_wal = 0;
    CHECK(rc == -ENOSPC, "store_meta_set = %d, want -ENOSPC", rc);
    /* no meta table: the file's fault */
    CHECK_INT(db ? sqlite3_exec(db, "DROP TABLE meta", NULL, NULL, NULL) : 1, SQLITE_OK);
    CHECK_INT(store_meta_set(db, "k", "w"), SE_BADFILE);
    CHECK_INT(store_close(db), 0);
    failvfs_rm(path);
}

static long long count_rows(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *q = NULL;
    long long n = -1;
    if (db && sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
        n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return n;
}

/* A recording is created without a single fsync: synchronous=OFF, and the
 * schema with every meta row in one transaction; finishing it syncs
 * nothing either. A collector's span store keeps synchronous=NORMAL. */
static void test_create_recording_nosync(void)
{
    char path[512], err[512] = "";
    failvfs_tmp_path(path, sizeof path, "store", "fast.sonde");
    static const char *const meta[] = { "recorded_by", "agent", "note", "x", NULL };
    sqlite3 *db = NULL;
    /* what a new file written in one transaction takes (the first reader
     * of a new WAL takes its write lock too, to build the index) */
    failvfs_wal_writes = 0;
    CHECK_INT(store_file_open(path, STORE_REPLACE | STORE_NOSYNC, 0, &db, err, sizeof err), 0);
    CHECK_INT(sqlite3_exec(db, "BEGIN IMMEDIATE; CREATE TABLE t(x); INSERT INTO t VALUES(1); COMMIT", NULL, NULL,
                           NULL), SQLITE_OK);
    int one = failvfs_wal_writes;
    sqlite3_close(db);
    failvfs_rm(path);

    failvfs_syncs = failvfs_wal_writes = 0;
    CHECK_INT(store_create(path, meta, &db, err, sizeof err), 0);
    CHECK_INT(failvfs_syncs, 0);
    CHECK_INT(failvfs_wal_writes, one);
    CHECK_INT(count_rows(db, "PRAGMA synchronous"), 0);
    CHECK_INT(sqlite3_exec(db, "INSERT INTO string(id, s) VALUES(1, 'a')", NULL, NULL, NULL), SQLITE_OK);
    CHECK_INT(store_close(db), 0);
    CHECK_INT(failvfs_syncs, 0);

    /* a complete recording: its tables, format, version and meta rows */
    CHECK_INT(store_open(path, 1, &db, err, sizeof err), 0);
    char *by = db ? store_meta_get(db, "recorded_by") : NULL, *note = db ? store_meta_get(db, "note") : NULL;
    CHECK(by && !strcmp(by, "agent"), "recorded_by = %s", by ? by : "(null)");
    CHECK(note && !strcmp(note, "x"), "note = %s", note ? note : "(null)");
    free(by);
    free(note);
    CHECK_INT(count_rows(db, "SELECT count(*) FROM string"), 1);
    sqlite3_close(db);
    CHECK_INT(store_probe(path), STORE_PART_SAMPLES);
    failvfs_rm(path);

    /* the collector's store: acknowledged spans survive a power cut */
    failvfs_tmp_path(path, sizeof path, "store", "spans.db");
    failvfs_rm(path);
    failvfs_syncs = 0;
    CHECK_INT(store_file_open(path, STORE_CREATE, 0, &db, err, sizeof err), 0);
    CHECK_INT(count_rows(db, "PRAGMA synchronous"), 1);
    CHECK_INT(store_part_add(db, &store_spans_part, NULL, err, sizeof err), 0);
    CHECK_INT(store_close(db), 0);
    CHECK(failvfs_syncs > 0, "a span store was written without a sync");
    failvfs_rm(path);
}

/* A writer killed (SIGKILL) in the middle of a recording written without
 * syncs leaves a complete recording holding every transaction it
 * committed. */
static void test_killed_writer(void)
{
    char path[512], err[512] = "";
    failvfs_tmp_path(path, sizeof path, "store", "killed.sonde");
    int p[2];
    CHECK_INT(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        sqlite3 *db = NULL;
        static const char *const meta[] = { "recorded_by", "agent", NULL };
        if (store_create(path, meta, &db, err, sizeof err))
            _exit(1);
        sqlite3_stmt *ins = NULL;
        if (sqlite3_prepare_v2(db, "INSERT INTO sample(ts, thread, stack, cpu_ns, wall_ns, state)"
                               " VALUES(?, 1, 1, 0, 0, 0)", -1, &ins, NULL) != SQLITE_OK)
            _exit(1);
        /* batches of 100 rows: the count committed goes to the parent */
        for (int n = 0;;) {
            sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
            for (int i = 0; i < 100; i++, n++) {
                sqlite3_bind_int(ins, 1, n);
                sqlite3_step(ins);
                sqlite3_reset(ins);
            }
            if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK ||
                write(p[1], &n, sizeof n) != sizeof n)
                _exit(1);
        }
    }
    close(p[1]);
    CHECK(pid > 0, "fork failed");
    int committed = 0, got = 0;
    for (int i = 0; i < 20 && read(p[0], &got, sizeof got) == sizeof got; i++)
        committed = got;
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    close(p[0]);
    CHECK(committed >= 100, "the writer committed %d rows", committed);

    sqlite3 *db = NULL;
    CHECK_INT(store_open(path, 1, &db, err, sizeof err), 0);
    char *by = db ? store_meta_get(db, "recorded_by") : NULL;
    CHECK(by && !strcmp(by, "agent"), "recorded_by = %s", by ? by : "(null)");
    free(by);
    long long n = count_rows(db, "SELECT count(*) FROM sample");
    CHECK(n >= committed && n % 100 == 0, "%lld rows read back, %d committed before the kill", n, committed);
    CHECK_INT(count_rows(db, "PRAGMA integrity_check = 1") != -1, 1);
    sqlite3_close(db);
    failvfs_rm(path);
}

/* A reader that looks at a recording as it is created (`sonde record
 * --agent -p` polls the file for its end) holds a shared lock for a
 * moment: the switch to WAL, which needs the file alone, waits for it
 * instead of failing (it failed 1 creation in 6 against a reader that
 * polled without pause; once, a recording that never started). */
static void test_create_while_read(void)
{
    char path[512], err[512] = "";
    failvfs_tmp_path(path, sizeof path, "store", "polled.sonde");
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 2000000; i++) {
            sqlite3 *db = NULL;
            if (access(path, F_OK) == 0 &&
                sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK)
                sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
            sqlite3_close(db);
        }
        _exit(0);
    }
    CHECK(pid > 0, "fork failed");
    int failed = 0;
    for (int i = 0; i < 200 && pid > 0; i++) {
        sqlite3 *db = NULL;
        if (store_create(path, NULL, &db, err, sizeof err) != 0)
            failed++;
        else
            store_close(db);
    }
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    CHECK(failed == 0, "%d of 200 creations failed under a polling reader: %s", failed, err);
    failvfs_rm(path);
}

int main(void)
{
    failvfs_install();
    test_create_while_read();
    test_create_recording_nosync();
    test_killed_writer();
    test_recording_with_spans();
    test_close_write_error();
    return check_done("store");
}
