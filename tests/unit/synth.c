#include "synth.h"

#include "common/err.h"
#include "profiler/store.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct w {
    sqlite3 *db;
    sqlite3_stmt *str, *frame, *stack, *thread, *sample, *gil;
    int nstr, nframe, nstack;
};

static int str(struct w *w, const char *s)
{
    sqlite3_bind_int(w->str, 1, ++w->nstr);
    sqlite3_bind_text(w->str, 2, s, -1, SQLITE_STATIC);
    sqlite3_step(w->str);
    sqlite3_reset(w->str);
    return w->nstr;
}

static int frame(struct w *w, int name, int file, int line, int fn_line)
{
    sqlite3_bind_int(w->frame, 1, ++w->nframe);
    sqlite3_bind_int(w->frame, 2, name);
    sqlite3_bind_int(w->frame, 3, file);
    sqlite3_bind_int(w->frame, 4, line);
    sqlite3_bind_int(w->frame, 5, fn_line);
    sqlite3_step(w->frame);
    sqlite3_reset(w->frame);
    return w->nframe;
}

static int stack(struct w *w, int parent, int fr)
{
    sqlite3_bind_int(w->stack, 1, ++w->nstack);
    sqlite3_bind_int(w->stack, 2, parent);
    sqlite3_bind_int(w->stack, 3, fr);
    sqlite3_step(w->stack);
    sqlite3_reset(w->stack);
    return w->nstack;
}

static void thread(struct w *w, int id, int pid, int tid, const char *name)
{
    sqlite3_bind_int(w->thread, 1, id);
    sqlite3_bind_int(w->thread, 2, pid);
    sqlite3_bind_int(w->thread, 3, tid);
    sqlite3_bind_int64(w->thread, 4, 140000000000000LL + tid);
    sqlite3_bind_text(w->thread, 5, name, -1, SQLITE_STATIC);
    sqlite3_step(w->thread);
    sqlite3_reset(w->thread);
}

static void sample(struct w *w, int64_t ts, int th, int stk, int64_t cpu, int64_t wall, int state,
                   int span)
{
    sqlite3_bind_int64(w->sample, 1, ts);
    sqlite3_bind_int(w->sample, 2, th);
    sqlite3_bind_int(w->sample, 3, stk);
    sqlite3_bind_int64(w->sample, 4, cpu);
    sqlite3_bind_int64(w->sample, 5, wall);
    sqlite3_bind_int(w->sample, 6, state);
    sqlite3_bind_int(w->sample, 7, span);
    sqlite3_step(w->sample);
    sqlite3_reset(w->sample);
}

static void gil(struct w *w, int64_t ts, int64_t switches, int holder, int waiters)
{
    sqlite3_bind_int64(w->gil, 1, ts);
    sqlite3_bind_int(w->gil, 2, 4242);
    sqlite3_bind_int64(w->gil, 3, switches);
    sqlite3_bind_int(w->gil, 4, holder);
    sqlite3_bind_int(w->gil, 5, waiters);
    sqlite3_step(w->gil);
    sqlite3_reset(w->gil);
}

static uint32_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*s >> 33);
}

static void write_recursive(struct w *w)
{
    int file = str(w, "/app/rec.py"), mod = str(w, "<module>"), mainf = str(w, "main");
    int f = str(w, "f"), g = str(w, "g"), leaf = str(w, "leaf");
    thread(w, 1, 4242, 4242, "MainThread");
    int s_mod = stack(w, 0, frame(w, mod, file, 30, 1));
    int s_main = stack(w, s_mod, frame(w, mainf, file, 25, 22));
    int f_call = frame(w, f, file, 6, 3);  /* f calling f */
    int f_g = frame(w, f, file, 7, 3);     /* f calling g */
    int f_run = frame(w, f, file, 5, 3);   /* f executing */
    int g_call = frame(w, g, file, 12, 10); /* g calling f */
    int leaf_run = frame(w, leaf, file, 18, 16);
    /* main -> f^k (k = 1..6) executing; main -> f -> f -> g -> f; main -> leaf */
    int stk[16], n = 0, cur = s_main;
    for (int k = 1; k <= 6; k++) {
        stk[n++] = stack(w, cur, f_run);
        cur = stack(w, cur, f_call);
    }
    int s_fg = stack(w, stack(w, stack(w, s_main, f_call), f_g), g_call);
    stk[n++] = stack(w, s_fg, f_run);
    stk[n++] = stack(w, s_main, leaf_run);
    int64_t ts = 0;
    for (int i = 0; i < 200; i++) {
        int64_t wall = 10000000 + (i % 7) * 1000; /* ~10 ms, whole microseconds */
        ts += wall;
        sample(w, ts, 1, stk[i % n], wall - (i % 3) * 500000, wall, 1, 0);
        gil(w, ts, i, 1, 0);
    }
}

static void write_threads(struct w *w)
{
    int file = str(w, "/app/thr.py"), tfile = str(w, "/usr/lib/python3.11/threading.py");
    int mod = str(w, "<module>"), join = str(w, "join"), wait = str(w, "_wait_for_tstate_lock");
    int boot = str(w, "_bootstrap"), run = str(w, "run"), spin = str(w, "spin");
    int crunch = str(w, "crunch"), sleep_ = str(w, "nap");
    thread(w, 1, 4242, 4242, "MainThread");
    thread(w, 2, 4242, 4250, "worker-1");
    thread(w, 3, 4242, 4251, "worker-2");
    int s_main = stack(w, stack(w, stack(w, 0, frame(w, mod, file, 40, 1)),
                                frame(w, join, tfile, 1112, 1090)),
                       frame(w, wait, tfile, 1128, 1120));
    int s_run = stack(w, stack(w, 0, frame(w, boot, tfile, 995, 990)), frame(w, run, tfile, 975, 970));
    int s_spin = stack(w, s_run, frame(w, spin, file, 12, 10));
    int s_crunch = stack(w, stack(w, s_run, frame(w, spin, file, 13, 10)), frame(w, crunch, file, 20, 18));
    int s_nap = stack(w, s_run, frame(w, sleep_, file, 30, 28));
    int64_t ts = 0;
    for (int i = 0; i < 300; i++) {
        ts += 5000000;
        sample(w, ts, 1, s_main, 0, 5000000, 0, 0);
        int st1 = (i / 10) % 3 == 0 ? 1 : (i / 10) % 3 == 1 ? 2 : 3;
        int st2 = st1 == 1 ? 2 : st1 == 2 ? 1 : 0;
        sample(w, ts, 2, (i % 4) ? s_spin : s_crunch, st1 == 2 ? 100000 : 4900000, 5000000, st1,
               i / 50 + 1);
        sample(w, ts, 3, st2 == 0 ? (i % 5 ? s_nap : 0) : s_spin, st2 == 0 ? 0 : 4000000,
               5000000, st2, 0);
        gil(w, ts, i * 3, st1 == 1 ? 2 : 3, 1);
    }
}

static void write_big(struct w *w, size_t nsamples)
{
    uint64_t seed = 42;
    char name[64];
    int files[20], names[200], frames[2000];
    for (int i = 0; i < 20; i++) {
        snprintf(name, sizeof name, "/srv/app/module_%02d.py", i);
        files[i] = str(w, name);
    }
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "function_%03d", i);
        names[i] = str(w, name);
    }
    for (int i = 0; i < 2000; i++)
        frames[i] = frame(w, names[i % 200], files[(i % 200) % 20], 10 + (int)(lcg(&seed) % 500),
                          (i % 200) * 3 + 1);
    int stacks[2000];
    int nst = 0;
    for (int i = 0; i < 100; i++) { /* 100 random paths of depth 5..40, every node a leaf */
        int depth = 5 + (int)(lcg(&seed) % 36), cur = 0;
        for (int d = 0; d < depth && nst < 2000; d++) {
            cur = stack(w, cur, frames[lcg(&seed) % 2000]);
            if (d >= depth - 20)
                stacks[nst++] = cur;
        }
    }
    for (int t = 1; t <= 4; t++) {
        snprintf(name, sizeof name, t == 1 ? "MainThread" : "worker-%d", t - 1);
        thread(w, t, 4242, 4241 + t, name);
    }
    int64_t ts = 0;
    for (size_t i = 0; i < nsamples; i++) {
        int t = (int)(i % 4) + 1;
        if (t == 1)
            ts += 1000000;
        uint32_t r = lcg(&seed);
        int state = (int)(r % 4);
        int stk = (r >> 8) % 50 == 0 ? 0 : stacks[(r >> 4) % (uint32_t)nst];
        /* long runs of the same stack, as in real programs */
        if ((r >> 16) % 8)
            stk = stacks[((i / 4) / 16 * 7 + (size_t)t) % (size_t)nst];
        sample(w, ts, t, stk, state == 0 ? 0 : 900000 + (r % 100000), 1000000, state, 0);
        if (t == 1)
            gil(w, ts, (int64_t)i, (int)(r % 4) + 1, (int)(r % 3));
    }
}

int synth_write(const char *path, enum synth_kind kind, size_t nsamples, char *err, size_t errlen)
{
    struct w w = { 0 };
    int rc = store_create(path, NULL, &w.db, err, errlen);
    if (rc)
        return rc;
    sqlite3_exec(w.db, "BEGIN", NULL, NULL, NULL);
    sqlite3_prepare_v2(w.db, "INSERT INTO string(id, s) VALUES(?,?)", -1, &w.str, NULL);
    sqlite3_prepare_v2(w.db, "INSERT INTO frame(id, name, file, line, fn_line, kind) VALUES(?,?,?,?,?,0)",
                       -1, &w.frame, NULL);
    sqlite3_prepare_v2(w.db, "INSERT INTO stack(id, parent, frame) VALUES(?,?,?)", -1, &w.stack, NULL);
    sqlite3_prepare_v2(w.db, "INSERT INTO thread(id, pid, tid, ident, name) VALUES(?,?,?,?,?)", -1,
                       &w.thread, NULL);
    sqlite3_prepare_v2(w.db,
                       "INSERT INTO sample(ts, thread, stack, cpu_ns, wall_ns, state, green, span)"
                       " VALUES(?,?,?,?,?,?,0,?)",
                       -1, &w.sample, NULL);
    sqlite3_prepare_v2(w.db, "INSERT INTO gil(ts, pid, switches, holder, waiters) VALUES(?,?,?,?,?)",
                       -1, &w.gil, NULL);
    if (!w.str || !w.frame || !w.stack || !w.thread || !w.sample || !w.gil) {
        rc = se_fail(err, errlen, SE_BADFILE, "sqlite: %s", sqlite3_errmsg(w.db));
        goto out;
    }
    const char *cmd = "python3 /app/rec.py";
    switch (kind) {
    case SYNTH_RECURSIVE: write_recursive(&w); break;
    case SYNTH_THREADS: write_threads(&w); cmd = "python3 /app/thr.py"; break;
    case SYNTH_BIG: write_big(&w, nsamples); cmd = "python3 /srv/app/main.py"; break;
    }
    sqlite3_exec(w.db,
                 "INSERT INTO process(pid, ppid, cmd, python_version, start_ns, end_ns)"
                 " VALUES(4242, 1, 'python3', '3.11.2', 0, 0)",
                 NULL, NULL, NULL);
    if (sqlite3_exec(w.db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = se_fail(err, errlen, SE_BADFILE, "sqlite: %s", sqlite3_errmsg(w.db));
        goto out;
    }
    store_meta_set(w.db, "pid", "4242");
    store_meta_set(w.db, "cmd", cmd);
    store_meta_set(w.db, "python_version", "3.11.2");
    store_meta_set(w.db, "rate_hz", "100");
    store_meta_set(w.db, "start_unix_ns", "1763700000000000000");
out:
    sqlite3_finalize(w.str);
    sqlite3_finalize(w.frame);
    sqlite3_finalize(w.stack);
    sqlite3_finalize(w.thread);
    sqlite3_finalize(w.sample);
    sqlite3_finalize(w.gil);
    int rc2 = store_close(w.db);
    return rc ? rc : rc2;
}
