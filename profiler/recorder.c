#include "profiler/recorder.h"

#include "common/err.h"
#include "common/hmap.h"
#include "common/strtab.h"
#include "common/thread.h"
#include "profiler/store.h"
#include "tracer/native/unwind.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A thread's previous stack, outermost frame first, with the trie node of
 * each depth: consecutive samples of a thread share most of their frames,
 * so interning starts below the common part. */
struct stack_memo {
    int n, cap;
    struct memo_frame {
        struct rec_frame f;
        uint64_t node;
    } *e;
};

/* Sample rows go in INSERTs of SAMPLE_ROWS rows each: one statement per
 * row spent a third of the writer's time starting and ending statements. */
#define SAMPLE_ROWS 64
#define SAMPLE_COLS 9

struct recorder {
    sqlite3 *db;
    struct sample_queue *q;
    pthread_t thread;
    int failed;
    char err[256];
    struct strtab strings; /* text -> id */
    struct hmap strptr;   /* (char *) -> id */
    struct hmap frames;   /* (code *, line) -> id */
    struct hmap natptr;   /* (nat_sym *, 0) -> id */
    struct hmap natframes; /* native frames by what they show (intern_native) -> id */
    struct hmap stacks;   /* (parent, frame) -> id */
    struct hmap threads;  /* (pid, tid) -> id */
    uint64_t nframes, nstacks, nthreads;
    struct stack_memo *memo; /* by thread id (1..nthreads) */
    size_t nmemo;
    sqlite3_stmt *ins_string, *ins_frame, *ins_stack, *ins_thread, *upd_thread, *ins_sample,
        *ins_gil, *ins_process, *put_green, *end_green;
    uint64_t samples, ticks;
    int64_t last_ts, committed_ts;  /* newest sample written; of those committed */
    volatile sig_atomic_t *stop;    /* set when a write fails */
    sqlite3_stmt *ins_samples;  /* SAMPLE_ROWS rows */
    int64_t pending[SAMPLE_ROWS][SAMPLE_COLS];
    int npending;
    char first_cmd[448], first_version[32];
    int first_pid;
    struct recorder_hook hook;
};

static int step(struct recorder *r, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        if (!r->failed)
            snprintf(r->err, sizeof r->err, "writing the recording failed: %s",
                     sqlite3_errmsg(r->db));
        r->failed = 1;
        return -EIO;
    }
    return 0;
}

/* Out of memory in the writer: like a failed write, the batch is rolled
 * back and sampling stops (an id the maps could not keep would be written
 * again under another id, or a thread split in two). */
static void nomem(struct recorder *r)
{
    if (!r->failed)
        snprintf(r->err, sizeof r->err, "writing the recording failed: out of memory");
    r->failed = 1;
}

static uint64_t intern_string(struct recorder *r, const char *s)
{
    uint64_t *v = hmap_get(&r->strptr, (uint64_t)(uintptr_t)s, 0);
    if (v)
        return *v;
    uint32_t id;
    int added;
    if (strtab_intern(&r->strings, s, &id, &added)) {
        nomem(r);
        return 0;
    }
    if (added) {
        sqlite3_bind_int64(r->ins_string, 1, (int64_t)id);
        sqlite3_bind_text(r->ins_string, 2, s, -1, SQLITE_STATIC);
        step(r, r->ins_string);
    }
    if (hmap_put(&r->strptr, (uint64_t)(uintptr_t)s, 0, id))
        nomem(r);
    return id;
}

/* A native frame: one row per function of a module (per source line
 * when DWARF has lines), whatever return address in it was sampled; an
 * address no symbol covers is one frame per unwind table entry (its start
 * the name: unwind.h). */
static uint64_t intern_native(struct recorder *r, const struct nat_sym *y)
{
    uint64_t *v = hmap_get(&r->natptr, (uint64_t)(uintptr_t)y, 0);
    if (v)
        return *v;
    uint64_t name = intern_string(r, y->function ? y->function : "??");
    uint64_t module = intern_string(r, y->module ? y->module : "");
    uint64_t file = intern_string(r, y->file ? y->file : "");
    uint64_t k1 = name << 32 | module;
    /* without a line, two functions of one name in one module (statics of
     * different source files) are told apart by their offsets; a line of
     * a nameless function is a frame of its own too */
    uint64_t k2 = y->line > 0 ? file << 32 | (uint32_t)y->line
                  : (uint64_t)y->func_offset | (y->function ? 1ULL << 62 : 1ULL << 63);
    v = hmap_get(&r->natframes, k1, k2);
    uint64_t id;
    if (v) {
        id = *v;
    } else {
        id = ++r->nframes;
        sqlite3_bind_int64(r->ins_frame, 1, (int64_t)id);
        sqlite3_bind_int64(r->ins_frame, 2, (int64_t)name);
        sqlite3_bind_int64(r->ins_frame, 3, (int64_t)file);
        sqlite3_bind_int(r->ins_frame, 4, y->line);
        sqlite3_bind_int(r->ins_frame, 5, 0);
        sqlite3_bind_int(r->ins_frame, 6, 1);
        sqlite3_bind_int64(r->ins_frame, 7, (int64_t)module);
        sqlite3_bind_int64(r->ins_frame, 8, (int64_t)y->func_offset);
        step(r, r->ins_frame);
        if (hmap_put(&r->natframes, k1, k2, id))
            nomem(r);
    }
    if (hmap_put(&r->natptr, (uint64_t)(uintptr_t)y, 0, id))
        nomem(r);
    return id;
}

static uint64_t intern_frame(struct recorder *r, const struct rec_frame *f)
{
    if (f->native)
        return intern_native(r, f->nat);
    uint64_t *v = hmap_get(&r->frames, (uint64_t)(uintptr_t)f->code, (uint64_t)(uint32_t)f->line);
    if (v)
        return *v;
    uint64_t id = ++r->nframes;
    sqlite3_bind_int64(r->ins_frame, 1, (int64_t)id);
    /* the qualified name where Python has one (3.11+: Class.method), as
     * top shows it, so two methods of one name stay apart everywhere */
    const char *name = f->code->qualname && *f->code->qualname ? f->code->qualname : f->code->name;
    sqlite3_bind_int64(r->ins_frame, 2, (int64_t)intern_string(r, name));
    sqlite3_bind_int64(r->ins_frame, 3, (int64_t)intern_string(r, f->code->file));
    sqlite3_bind_int(r->ins_frame, 4, f->line);
    sqlite3_bind_int(r->ins_frame, 5, f->code->firstlineno);
    sqlite3_bind_int(r->ins_frame, 6, 0);
    sqlite3_bind_int(r->ins_frame, 7, 0);
    sqlite3_bind_int(r->ins_frame, 8, 0);
    step(r, r->ins_frame);
    if (hmap_put(&r->frames, (uint64_t)(uintptr_t)f->code, (uint64_t)(uint32_t)f->line, id))
        nomem(r);
    return id;
}

/* Thread th's memo, with room for nframes; NULL without memory (the
 * sample is then interned from the root, and the memo left as it was). */
static struct stack_memo *stack_memo(struct recorder *r, uint64_t th, int nframes)
{
    if (th >= r->nmemo) {
        size_t n = r->nmemo ? r->nmemo : 16;
        while (n <= th)
            n *= 2;
        struct stack_memo *m = realloc(r->memo, n * sizeof *m);
        if (!m)
            return NULL;
        memset(m + r->nmemo, 0, (n - r->nmemo) * sizeof *m);
        r->memo = m;
        r->nmemo = n;
    }
    struct stack_memo *m = &r->memo[th];
    if (m->cap < nframes) {
        int cap = nframes < 64 ? 64 : nframes;
        struct memo_frame *e = realloc(m->e, (size_t)cap * sizeof *e);
        if (!e)
            return NULL;
        m->e = e;
        m->cap = cap;
    }
    return m;
}

/* Frames come innermost first; the trie is built from the outermost. The
 * frames this sample shares, from the outermost, with the thread's previous
 * one are not looked up again. */
static uint64_t intern_stack(struct recorder *r, uint64_t th, const struct rec_sample *s)
{
    int n = s->nframes, same = 0;
    /* a suspended green thread's stack is not its thread's: leave the
     * thread's memo for the thread's next sample */
    struct stack_memo *m = (s->flags & SAMPLE_SUSPENDED) ? NULL : stack_memo(r, th, n);
    if (m)
        while (same < n && same < m->n && m->e[same].f.code == s->frames[n - 1 - same].code &&
               m->e[same].f.line == s->frames[n - 1 - same].line)
            same++;
    uint64_t parent = same ? m->e[same - 1].node : 0;
    for (int d = same; d < n; d++) {
        const struct rec_frame *fr = &s->frames[n - 1 - d];
        uint64_t frame = intern_frame(r, fr);
        uint64_t *v = hmap_get(&r->stacks, parent, frame);
        if (v) {
            parent = *v;
        } else {
            uint64_t id = ++r->nstacks;
            sqlite3_bind_int64(r->ins_stack, 1, (int64_t)id);
            sqlite3_bind_int64(r->ins_stack, 2, (int64_t)parent);
            sqlite3_bind_int64(r->ins_stack, 3, (int64_t)frame);
            step(r, r->ins_stack);
            if (hmap_put(&r->stacks, parent, frame, id))
                nomem(r);
            parent = id;
        }
        if (m)
            m->e[d] = (struct memo_frame){ *fr, parent };
    }
    if (m)
        m->n = n;
    return parent;
}

static uint64_t thread_id(struct recorder *r, int pid, int tid, uint64_t ident)
{
    uint64_t *v = hmap_get(&r->threads, (uint64_t)pid, (uint64_t)tid);
    if (v)
        return *v;
    uint64_t id = ++r->nthreads;
    sqlite3_bind_int64(r->ins_thread, 1, (int64_t)id);
    sqlite3_bind_int(r->ins_thread, 2, pid);
    sqlite3_bind_int(r->ins_thread, 3, tid);
    sqlite3_bind_int64(r->ins_thread, 4, (int64_t)ident);
    step(r, r->ins_thread);
    if (hmap_put(&r->threads, (uint64_t)pid, (uint64_t)tid, id))
        nomem(r);
    return id;
}

static void flush_samples(struct recorder *r)
{
    if (r->npending == SAMPLE_ROWS) {
        for (int i = 0; i < SAMPLE_ROWS; i++)
            for (int c = 0; c < SAMPLE_COLS; c++)
                sqlite3_bind_int64(r->ins_samples, i * SAMPLE_COLS + c + 1, r->pending[i][c]);
        step(r, r->ins_samples);
    } else {
        for (int i = 0; i < r->npending; i++) {
            for (int c = 0; c < SAMPLE_COLS; c++)
                sqlite3_bind_int64(r->ins_sample, c + 1, r->pending[i][c]);
            step(r, r->ins_sample);
        }
    }
    r->npending = 0;
}

static void write_batch(struct recorder *r, const struct batch *b)
{
    sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL);
    size_t off = 0;
    while (off + sizeof(struct rec_hdr) <= b->len) {
        const struct rec_hdr *h = (const void *)(b->buf + off);
        if (h->size == 0 || off + h->size > b->len)
            break;
        switch (h->kind) {
        case REC_SAMPLE: {
            const struct rec_sample *s = (const void *)h;
            uint64_t th = thread_id(r, s->pid, s->tid, 0);
            uint64_t stack = intern_stack(r, th, s);
            int64_t *row = r->pending[r->npending++];
            row[0] = s->ts;
            row[1] = (int64_t)th;
            row[2] = (int64_t)stack;
            row[3] = s->cpu_ns;
            row[4] = s->wall_ns;
            row[5] = s->state;
            row[6] = s->flags;
            row[7] = s->green;
            row[8] = s->span;
            if (s->span && r->hook.sample)
                r->hook.sample(r->hook.ctx, s);
            if (s->ts > r->last_ts)
                r->last_ts = s->ts;
            if (r->npending == SAMPLE_ROWS)
                flush_samples(r);
            r->samples++;
            break;
        }
        case REC_THREAD: {
            const struct rec_thread *t = (const void *)h;
            uint64_t th = thread_id(r, t->pid, t->tid, t->ident);
            sqlite3_bind_text(r->upd_thread, 1, t->name, -1, SQLITE_STATIC);
            sqlite3_bind_int64(r->upd_thread, 2, (int64_t)t->ident);
            sqlite3_bind_int64(r->upd_thread, 3, (int64_t)th);
            step(r, r->upd_thread);
            break;
        }
        case REC_GREEN: {
            const struct rec_green *g = (const void *)h;
            if (!g->id)
                break;
            /* either record may come first or alone (a green thread that
             * ended before it was announced, an announce dropped for want of
             * room): both insert the whole row if it is not there */
            sqlite3_stmt *st = g->ended ? r->end_green : r->put_green;
            char name[sizeof g->name + 1], func[sizeof g->func + 1];
            memcpy(name, g->name, sizeof g->name);
            name[sizeof g->name] = 0;
            memcpy(func, g->func, sizeof g->func);
            func[sizeof g->func] = 0;
            sqlite3_bind_int64(st, 1, g->id);
            sqlite3_bind_int(st, 2, g->pid);
            sqlite3_bind_int64(st, 3, g->tid ? (int64_t)thread_id(r, g->pid, g->tid, 0) : 0);
            sqlite3_bind_int(st, 4, g->kind);
            sqlite3_bind_int64(st, 5, (int64_t)g->addr);
            sqlite3_bind_text(st, 6, name, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 7, func, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(st, 8, g->ts);
            step(r, st);
            break;
        }
        case REC_GIL: {
            const struct rec_gil *g = (const void *)h;
            uint64_t holder = g->holder_tid ? thread_id(r, g->pid, g->holder_tid, 0) : 0;
            sqlite3_bind_int64(r->ins_gil, 1, g->ts);
            sqlite3_bind_int(r->ins_gil, 2, g->pid);
            sqlite3_bind_int64(r->ins_gil, 3, (int64_t)g->switches);
            sqlite3_bind_int64(r->ins_gil, 4, (int64_t)holder);
            sqlite3_bind_int(r->ins_gil, 5, (int)g->waiters);
            step(r, r->ins_gil);
            r->ticks++;
            break;
        }
        case REC_PROCESS: {
            const struct rec_process *p = (const void *)h;
            sqlite3_bind_int(r->ins_process, 1, p->pid);
            sqlite3_bind_int(r->ins_process, 2, p->ppid);
            sqlite3_bind_text(r->ins_process, 3, p->cmd, -1, SQLITE_STATIC);
            sqlite3_bind_text(r->ins_process, 4, p->version, -1, SQLITE_STATIC);
            sqlite3_bind_int64(r->ins_process, 5, p->ts);
            step(r, r->ins_process);
            if (!r->first_pid) {
                r->first_pid = p->pid;
                memcpy(r->first_cmd, p->cmd, sizeof r->first_cmd);
                memcpy(r->first_version, p->version, sizeof r->first_version);
                char pid[32];
                snprintf(pid, sizeof pid, "%d", p->pid);
                store_meta_set(r->db, "pid", pid);
                store_meta_set(r->db, "cmd", p->cmd);
                store_meta_set(r->db, "python_version", p->version);
            }
            break;
        }
        default:
            break;
        }
        off += h->size;
    }
    flush_samples(r);
    if (sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK && !r->failed) {
        snprintf(r->err, sizeof r->err, "writing the recording failed: %s", sqlite3_errmsg(r->db));
        r->failed = 1;
    }
    if (r->failed) {
        /* nothing more can be stored (a full disk): stop sampling rather
         * than sample for nothing */
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
        if (r->stop)
            *r->stop = 1;
    } else {
        r->committed_ts = r->last_ts;
    }
}

static void *writer_main(void *arg)
{
    struct recorder *r = arg;
    /* The sampling thread must run on time; the writer only has to keep up
     * on average (batches queue up in between). */
    thread_renice(5);
    struct batch *b;
    while ((b = squeue_pop(r->q))) {
        write_batch(r, b);
        squeue_release(r->q, b);
        if (r->hook.batch_done)
            r->hook.batch_done(r->hook.ctx, r->last_ts);
    }
    return NULL;
}

static void recorder_free(struct recorder *r)
{
    sqlite3_stmt *sts[] = { r->ins_string, r->ins_frame, r->ins_stack, r->ins_thread,
                            r->upd_thread, r->ins_sample, r->ins_gil, r->ins_process,
                            r->ins_samples, r->put_green, r->end_green };
    for (size_t i = 0; i < sizeof sts / sizeof sts[0]; i++)
        sqlite3_finalize(sts[i]);
    strtab_fini(&r->strings);
    hmap_fini(&r->strptr);
    hmap_fini(&r->frames);
    hmap_fini(&r->natptr);
    hmap_fini(&r->natframes);
    hmap_fini(&r->stacks);
    hmap_fini(&r->threads);
    for (size_t i = 0; i < r->nmemo; i++)
        free(r->memo[i].e);
    free(r->memo);
    free(r);
}

/* What is known before the first sample: a recording cut short (SIGKILL)
 * still says when it started and at what rate. */
static int write_start_meta(sqlite3 *db, const struct sampler_stats *st0, int rate_hz)
{
    char v[64];
    int rc = 0;
    snprintf(v, sizeof v, "%d", rate_hz);
    rc |= store_meta_set(db, "rate_hz", v);
    snprintf(v, sizeof v, "%" PRId64, st0->start_unix_ns);
    rc |= store_meta_set(db, "start_unix_ns", v);
    snprintf(v, sizeof v, "%" PRId64, st0->start_mono_ns);
    rc |= store_meta_set(db, "start_mono_ns", v);
    return rc;
}

int recorder_start(struct recorder **out, sqlite3 *db, struct sample_queue *q,
                   const struct sampler_stats *st0, int rate_hz, volatile sig_atomic_t *stop,
                   char *err, size_t errlen)
{
    return recorder_start_with(out, db, q, st0, rate_hz, stop, NULL, err, errlen);
}

int recorder_start_with(struct recorder **out, sqlite3 *db, struct sample_queue *q,
                        const struct sampler_stats *st0, int rate_hz, volatile sig_atomic_t *stop,
                        const struct recorder_hook *hook, char *err, size_t errlen)
{
    if (write_start_meta(db, st0, rate_hz))
        return se_fail(err, errlen, -EIO, "writing the recording failed: %s", sqlite3_errmsg(db));
    struct recorder *r = calloc(1, sizeof *r);
    if (!r)
        return se_fail(err, errlen, -ENOMEM, "out of memory");
    r->db = db;
    r->q = q;
    r->stop = stop;
    if (hook)
        r->hook = *hook;
    struct {
        sqlite3_stmt **st;
        const char *sql;
    } prep[] = {
        { &r->ins_string, "INSERT INTO string(id, s) VALUES(?, ?)" },
        { &r->ins_frame, "INSERT INTO frame(id, name, file, line, fn_line, kind, module, address)"
                         " VALUES(?,?,?,?,?,?,?,?)" },
        { &r->ins_stack, "INSERT INTO stack(id, parent, frame) VALUES(?,?,?)" },
        { &r->ins_thread, "INSERT INTO thread(id, pid, tid, ident, name) VALUES(?,?,?,?,'')" },
        { &r->upd_thread, "UPDATE thread SET name = ?, ident = ? WHERE id = ?" },
        { &r->ins_sample, "INSERT INTO sample(ts, thread, stack, cpu_ns, wall_ns, state, flags, green, span) VALUES(?,?,?,?,?,?,?,?,?)" },
        /* first seen: a row; seen again (renamed, moved to another thread): updated */
        { &r->put_green, "INSERT INTO green(id, pid, thread, kind, addr, name, func, start_ns) VALUES(?,?,?,?,?,?,?,?)"
                         " ON CONFLICT(id) DO UPDATE SET thread = excluded.thread, name = excluded.name,"
                         " func = excluded.func" },
        { &r->end_green, "INSERT INTO green(id, pid, thread, kind, addr, name, func, start_ns, end_ns)"
                         " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?8)"
                         " ON CONFLICT(id) DO UPDATE SET end_ns = excluded.end_ns" },
        { &r->ins_gil, "INSERT INTO gil(ts, pid, switches, holder, waiters) VALUES(?,?,?,?,?)" },
        { &r->ins_process, "INSERT OR REPLACE INTO process(pid, ppid, cmd, python_version, start_ns) VALUES(?,?,?,?,?)" },
    };
    for (size_t i = 0; i < sizeof prep / sizeof prep[0]; i++) {
        if (sqlite3_prepare_v2(db, prep[i].sql, -1, prep[i].st, NULL) != SQLITE_OK) {
            int rc = se_fail(err, errlen, SE_BADFILE, "sqlite: %s", sqlite3_errmsg(db));
            recorder_free(r);
            return rc;
        }
    }
    char sql[128 + SAMPLE_ROWS * 24];
    int n = snprintf(sql, sizeof sql,
                     "INSERT INTO sample(ts, thread, stack, cpu_ns, wall_ns, state, flags, green, span) VALUES");
    for (int i = 0; i < SAMPLE_ROWS; i++)
        n += snprintf(sql + n, sizeof sql - (size_t)n, "%s(?,?,?,?,?,?,?,?,?)", i ? "," : "");
    if (sqlite3_prepare_v2(db, sql, -1, &r->ins_samples, NULL) != SQLITE_OK) {
        int rc = se_fail(err, errlen, SE_BADFILE, "sqlite: %s", sqlite3_errmsg(db));
        recorder_free(r);
        return rc;
    }
    if (strtab_init(&r->strings, 1024) || hmap_init(&r->strptr, 1024) ||
        hmap_init(&r->frames, 4096) || hmap_init(&r->stacks, 4096) ||
        hmap_init(&r->natptr, 1024) || hmap_init(&r->natframes, 1024) ||
        hmap_init(&r->threads, 64) || pthread_create(&r->thread, NULL, writer_main, r)) {
        recorder_free(r);
        return se_fail(err, errlen, -ENOMEM, "out of memory");
    }
    *out = r;
    return 0;
}

int recorder_finish(struct recorder *r, const struct sampler_stats *st, uint64_t gil_switches,
                    int rate_hz, char *err, size_t errlen)
{
    pthread_join(r->thread, NULL);
    char v[64];
    int mrc = 0;
#define META(k, fmt, val)                        \
    do {                                         \
        snprintf(v, sizeof v, fmt, val);         \
        int e_ = store_meta_set(r->db, k, v);    \
        if (e_ && !mrc)                          \
            mrc = e_;                            \
    } while (0)
    META("rate_hz", "%d", rate_hz);
    META("start_unix_ns", "%" PRId64, st->start_unix_ns);
    META("start_mono_ns", "%" PRId64, st->start_mono_ns);
    /* after a failed write the recording ends at its last stored sample */
    META("duration_ns", "%" PRId64, r->failed ? r->committed_ts : st->duration_ns);
    META("truncated", "%" PRIu64, st->truncated);
    META("samples", "%" PRIu64, r->samples);
    META("ticks", "%" PRIu64, st->ticks);
    META("errors", "%" PRIu64, st->errors);
    META("errors_stack", "%" PRIu64, st->err_stack);
    META("errors_thread", "%" PRIu64, st->err_thread);
    META("errors_list", "%" PRIu64, st->err_list);
    META("errors_names", "%" PRIu64, st->err_names);
    META("errors_other", "%" PRIu64, st->err_other);
    META("dropped", "%" PRIu64, st->dropped);
    META("late_ticks", "%" PRIu64, st->late_ticks);
    META("gil_switches", "%" PRIu64, gil_switches);
    META("sampler_cpu_s", "%.6f", st->cpu_s);
    META("sampler_sched", "%s", st->sched);
    META("process_cpu_s", "%.6f", st->process_cpu_s);
    if (st->native_samples || st->native_failed) {
        META("native_samples", "%" PRIu64, st->native_samples);
        META("native_failed", "%" PRIu64, st->native_failed);
        META("native_truncated", "%" PRIu64, st->native_truncated);
        META("native_hold_max_us", "%.1f", (double)st->native_hold_max_ns / 1e3);
        META("native_hold_mean_us", "%.1f",
             st->native_samples ? (double)st->native_hold_sum_ns / 1e3 / (double)st->native_samples : 0.0);
    }
    META("green_scans", "%" PRIu64, st->green_scans);
    META("green_scan_cpu_s", "%.6f", (double)st->green_scan_ns / 1e9);
    META("green_errors", "%" PRIu64, st->green_errors);
    META("span_races", "%" PRIu64, st->span_races);
    META("green_races", "%" PRIu64, st->green_races);
    META("green_races_chain", "%" PRIu64, st->green_races_chain);
    META("green_races_again", "%" PRIu64, st->green_races_again);
    META("walk_retries", "%" PRIu64, st->walk_retries);
    META("greenlet_races", "%" PRIu64, st->greenlet_races);
    META("greenlet_races_kept", "%" PRIu64, st->greenlet_kept);
    META("greenlet_races_parked", "%" PRIu64, st->greenlet_parked);
    META("greenlet_switches_lost", "%" PRIu64, st->greenlet_lost);
    META("greenlet_drains", "%" PRIu64, st->greenlet_drains);
    /* suspended green threads are sampled once per scan, not every tick:
     * the mean period between their samples (0: no scan) */
    int64_t dur = r->failed ? r->committed_ts : st->duration_ns;
    META("green_suspended_period_ms", "%.1f",
         st->green_scans && dur > 0 ? (double)dur / 1e6 / (double)st->green_scans : 0.0);
#undef META
    int rc = 0;
    if (r->failed)
        rc = se_fail(err, errlen, -EIO, "%s", r->err);
    else if (mrc) /* the recorder's own file has a meta table: a failed write, never a bad file */
        rc = se_fail(err, errlen, mrc == SE_BADFILE ? -EIO : mrc, "writing the recording failed: %s",
                     sqlite3_errmsg(r->db));
    sqlite3 *db = r->db;
    recorder_free(r);
    int crc = store_close(db);
    if (crc && !rc)
        rc = se_fail(err, errlen, crc, "finishing the recording failed: %s",
                     crc == -ENOSPC ? "disk full" : strerror(-crc));
    return rc;
}
