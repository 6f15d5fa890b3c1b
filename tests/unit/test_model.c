/* profiler/model: loading a synthetic recording (tests/unit/synth.c) gives
 * back what was written, ids resolve, lookups by name and tid work, the
 * duration is derived when the meta lacks it; a damaged stack is refused. */
#include "check.h"
#include "synth_load.h"

#include "common/err.h"

#include <sqlite3.h>
#include <string.h>

static void test_threads_recording(void)
{
    char path[256];
    struct model *m = synth_load(SYNTH_THREADS, 0, path);
    CHECK(m != NULL, "no model");
    if (!m)
        return;
    CHECK_INT(m->nthreads, 4);   /* ids 1..3 */
    CHECK_INT(m->nsamples, 900); /* 300 ticks x 3 threads */
    CHECK_INT(m->ngil, 300);
    CHECK_INT(m->nframes, 10);   /* 9 frames (spin at two lines), id 0 unused */
    CHECK_INT(m->nstacks, 10);   /* 9 nodes */
    int ordered = 1;
    for (size_t i = 1; i < m->nsamples; i++)
        ordered &= m->samples[i - 1].ts <= m->samples[i].ts;
    CHECK(ordered, "samples not ordered by ts");
    CHECK_INT(m->samples[0].ts, 5000000);
    CHECK_INT(m->samples[m->nsamples - 1].ts, 1500000000);
    CHECK_STR(m->threads[2].name, "worker-1");
    CHECK_INT(m->threads[3].tid, 4251);
    CHECK_INT(model_find_thread(m, "worker-1"), 2);
    CHECK_INT(model_find_thread(m, "4251"), 3);
    CHECK_INT(model_find_thread(m, "nobody"), 0);
    /* PID:NAME and PID:TID look in one process; the process table loads */
    CHECK_INT(model_find_thread(m, "4242:worker-1"), 2);
    CHECK_INT(model_find_thread(m, "4242:4251"), 3);
    CHECK_INT(model_find_thread(m, "1:worker-1"), 0);
    CHECK_INT(model_find_threads(m, "worker-1", NULL, 0), 1);
    CHECK(model_process(m, 4242) != NULL, "process 4242 not loaded");
    CHECK(model_process(m, 1) == NULL, "a process that is not in the recording");
    char lab[64];
    model_thread_label(m, 1, lab, sizeof lab);
    CHECK_STR(lab, "MainThread (4242)");
    CHECK_STR(model_meta(m, "pid"), "4242");
    CHECK_STR(model_meta(m, "cmd"), "python3 /app/thr.py");
    CHECK(model_meta(m, "no such key") == NULL, "unknown meta key answered");
    /* no duration_ns written: up to the newest sample or GIL tick */
    CHECK_STR(model_meta(m, "duration_ns"), "1500000000");
    /* the deepest stack: _bootstrap -> run -> spin (line 13) -> crunch */
    uint32_t deepest = 0;
    for (uint32_t s = 1; s < m->nstacks; s++)
        if (m->stacks[s].depth > m->stacks[deepest].depth)
            deepest = s;
    CHECK_INT(m->stacks[deepest].depth, 4);
    const struct m_frame *f = &m->frames[m->stacks[deepest].frame];
    CHECK_STR(model_str(m, f->name), "crunch");
    CHECK_STR(model_str(m, f->file), "/app/thr.py");
    CHECK(f->line == 20 && f->fn_line == 18, "crunch at %d (fn %d)", f->line, f->fn_line);
    f = &m->frames[m->stacks[m->stacks[deepest].parent].frame];
    CHECK_STR(model_str(m, f->name), "spin");
    CHECK_INT(f->line, 13);
    CHECK_STR(model_str(m, 999999), "");
    /* per thread: states as written */
    size_t state_of[4][STATE_COUNT] = { { 0 } };
    for (size_t i = 0; i < m->nsamples; i++)
        state_of[m->samples[i].thread][m->samples[i].state]++;
    CHECK(state_of[1][STATE_IDLE] == 300, "MainThread idle %zu", state_of[1][STATE_IDLE]);
    CHECK(state_of[2][STATE_GIL] == 100 && state_of[2][STATE_GIL_WAIT] == 100 &&
              state_of[2][STATE_NOGIL] == 100,
          "worker-1 states %zu %zu %zu", state_of[2][1], state_of[2][2], state_of[2][3]);
    synth_unload(m, path);
}

static void test_damaged_stack(void)
{
    char path[256], err[256] = "";
    struct model *m = synth_load(SYNTH_RECURSIVE, 0, path);
    CHECK(m != NULL, "no model");
    if (!m)
        return;
    model_free(m);
    sqlite3 *db;
    CHECK_INT(sqlite3_open(path, &db), SQLITE_OK);
    /* a stack node that is its own parent: a loop the views would follow */
    CHECK_INT(sqlite3_exec(db, "UPDATE stack SET parent = id WHERE id = 3", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    struct model *bad = NULL;
    int rc = model_load(path, &bad, err, sizeof err);
    CHECK_INT(rc, SE_BADFILE);
    CHECK(bad == NULL && strstr(err, "damaged"), "err: %s", err);
    synth_unload(NULL, path);
}

int main(void)
{
    test_threads_recording();
    test_damaged_stack();
    return check_done("model");
}
