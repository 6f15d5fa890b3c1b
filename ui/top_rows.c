/* The rows of sonde top's threads pane (ui/top_int.h). */
#include "ui/top_int.h"

#include "ui/tgroup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int grow_thead(struct top *t, size_t n)
{
    if (n <= t->capthead)
        return 0;
    size_t *p = realloc(t->thead, n * 2 * sizeof *p);
    if (!p)
        return -ENOMEM;
    t->thead = p;
    t->capthead = n * 2;
    return 0;
}

static int add_row(struct top *t, struct trow r)
{
    if (t->nrows == t->caprows) {
        size_t n = t->caprows ? t->caprows * 2 : 64;
        struct trow *p = realloc(t->rows, n * sizeof *p);
        if (!p)
            return -ENOMEM;
        t->rows = p;
        t->caprows = n;
    }
    t->rows[t->nrows++] = r;
    return 0;
}

/* The green threads of thread th (s.greens is by thread, function, id):
 * each one, or past GROUP_OVER, a row per function (listed in full under
 * it when it is the expanded group). */
static int add_green_rows(struct top *t, uint32_t th)
{
    const struct live_green *g = t->s.greens;
    size_t a = 0, b;
    while (a < t->s.ngreens && g[a].thread != th)
        a++;
    for (b = a; b < t->s.ngreens && g[b].thread == th; b++)
        ;
    for (size_t k = a; k < b;) {
        size_t e = k + 1;
        if (b - a <= GROUP_OVER) {
            if (add_row(t, (struct trow){ .thread = th, .green = (uint32_t)k + 1 }))
                return -ENOMEM;
            k = e;
            continue;
        }
        while (e < b && !strcmp(g[e].func, g[k].func))
            e++;
        if (add_row(t, (struct trow){ .thread = th, .count = (uint32_t)(e - k), .first = (uint32_t)k }))
            return -ENOMEM;
        if (t->xopen && t->xthread == th && !strcmp(t->xfunc, g[k].func))
            for (size_t j = k; j < e; j++)
                if (add_row(t, (struct trow){ .thread = th, .green = (uint32_t)j + 1, .deep = 1 }))
                    return -ENOMEM;
        k = e;
    }
    return 0;
}

/* Is group row i (its first thread) the one listed in full? */
int top_tgroup_open(const struct top *t, size_t i)
{
    char pat[sizeof t->tgpat];
    if (!t->tgopen || t->s.threads[i].pid != t->tgpid)
        return 0;
    tgroup_pattern(t->s.threads[i].name, pat, sizeof pat);
    return !strcmp(pat, t->tgpat);
}

/* The rows of the threads pane: each thread with its green threads, threads
 * named alike as one row (listed under it when it is the open group), then
 * the green threads whose thread is not known yet, then the threads
 * dropped after they ended. */
int top_build_rows(struct top *t)
{
    size_t n = t->s.nthreads;
    t->nrows = 0;
    if (grow_thead(t, n + 1))
        return -ENOMEM;
    /* room for an int or a uint32_t per thread (the counts reuse it) */
    int *pids = malloc((n + 1) * (sizeof(int) > sizeof(uint32_t) ? sizeof(int) : sizeof(uint32_t)));
    const char **names = malloc((n + 1) * sizeof *names);
    if (!pids || !names) {
        free(pids);
        free(names);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        pids[i] = t->s.threads[i].pid;
        names[i] = t->s.threads[i].name[0] ? t->s.threads[i].name : "?";
    }
    long ng = tgroup_find(pids, names, n, TGROUP_MIN, t->thead);
    free(names);
    if (ng < 0) {
        free(pids);
        return -ENOMEM;
    }
    uint32_t *cnt = (uint32_t *)pids; /* members by first: reuses pids' room */
    memset(cnt, 0, (n + 1) * sizeof *cnt);
    for (size_t i = 0; i < n; i++)
        cnt[t->thead[i]]++;
    int rc = -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = t->s.threads[i].id;
        if (t->thead[i] != i)
            continue; /* listed with its group */
        uint32_t k = cnt[i];
        if (k > 1) {
            if (add_row(t, (struct trow){ .thread = id, .tcount = k, .first = (uint32_t)i }))
                goto out;
            for (size_t j = i; j < n && top_tgroup_open(t, i); j++)
                if (t->thead[j] == i && (add_row(t, (struct trow){ .thread = t->s.threads[j].id, .deep = 1 }) ||
                                         add_green_rows(t, t->s.threads[j].id)))
                    goto out;
            continue;
        }
        if (add_row(t, (struct trow){ .thread = id }) || add_green_rows(t, id))
            goto out;
    }
    if (add_green_rows(t, 0))
        goto out;
    if (t->s.h.ended_threads && add_row(t, (struct trow){ .thread = LIVE_ENDED_ID }))
        goto out;
    rc = 0;
out:
    free(pids);
    return rc;
}

double top_pct(double a, double b)
{
    return b > 0 ? 100.0 * a / b : 0;
}

const struct live_thread *top_thread_by_id(const struct top *t, uint32_t id)
{
    if (id == LIVE_ENDED_ID)
        return &t->s.ended;
    for (size_t i = 0; i < t->s.nthreads; i++)
        if (t->s.threads[i].id == id)
            return &t->s.threads[i];
    return NULL;
}

/* The green thread filter's label: "NAME (id)", or "#id" once it ended. */
/* Figures of green threads [a, b) of s.greens: samples and CPU while
 * running, the share of their wall time running. */

struct gsum top_green_sum(const struct top *t, size_t a, size_t b)
{
    struct gsum r = { 0, 0, 0 };
    double run = 0, all = 0;
    for (size_t i = a; i < b; i++) {
        const struct live_green *g = &t->s.greens[i];
        r.samples += g->samples;
        r.cpu_ns += (double)g->cpu_ns;
        run += (double)g->wall_ns;
        all += (double)g->wall_ns + (double)g->susp_wall_ns;
    }
    r.run_pct = top_pct(run, all);
    return r;
}

/* The figures of a thread row: the thread, a group's sums (and how many
 * of it ended), the dropped threads' sums. */
struct live_thread top_row_sums(const struct top *t, const struct trow *r, uint32_t *ended)
{
    struct live_thread sum = { 0 };
    *ended = 0;
    if (r->tcount) {
        for (size_t j = r->first; j < t->s.nthreads; j++) {
            const struct live_thread *m = &t->s.threads[j];
            if (t->thead[j] != r->first)
                continue;
            sum.samples += m->samples;
            sum.wall_ns += m->wall_ns;
            sum.cpu_ns += m->cpu_ns;
            for (int k = 0; k < STATE_COUNT; k++)
                sum.state_ns[k] += m->state_ns[k];
            *ended += m->ended != 0;
        }
        return sum;
    }
    const struct live_thread *th = top_thread_by_id(t, r->thread);
    if (th) {
        sum = *th;
        *ended = th->ended != 0;
    }
    return sum;
}

/* The name column of the threads pane: as wide as the longest name (whole
 * names where there is room), 18 to 48 columns, less on a narrow screen. */
int top_name_width(const struct top *t, int cols)
{
    int w = 18;
    for (size_t i = 0; i < t->s.nthreads; i++) {
        int len = (int)strlen(t->s.threads[i].name) + 3;
        if (len > w)
            w = len;
    }
    if (w > 48)
        w = 48;
    if (w > cols - 66)
        w = cols - 66 > 18 ? cols - 66 : 18;
    return w;
}

