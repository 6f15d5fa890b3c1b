/* Callgrind profile format (valgrind.org/docs/manual/cl-format.html), read
 * by KCacheGrind and callgrind_annotate. Events: wall µs, CPU µs, samples.
 * Each function (name, file, first line) is one fn= with its own fl=; self
 * cost sits on the executing line; each call edge writes cfl=/cfn=/calls=
 * at the call-site line followed by the inclusive cost of the call.
 *
 * Recursion: each sample's cost goes to one incoming edge per distinct
 * function on its stack, the edge into the function's outermost occurrence.
 * So the sum of a function's incoming call costs (what tools show as its
 * inclusive cost) counts each sample once and never exceeds the total;
 * edges of inner recursive calls are still written, with calls= and zero
 * cost. */
#include "formats/export.h"

#include "common/err.h"
#include "common/textesc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct cg_rec {           /* a self cost line or a call edge */
    uint32_t func;        /* function the line belongs to (the caller for edges) */
    int32_t line;
    uint32_t callee;      /* 0 for a self line (func 0 is never a callee) */
    uint32_t stamp;
    int64_t calls;
    struct ct_cost cost;
};

struct cg_map {
    struct cg_rec *recs; size_t n, cap;
    uint32_t *slots; size_t nslots;
};

static uint64_t cg_hash(uint32_t a, int32_t b, uint32_t c)
{
    uint64_t x = ((uint64_t)a << 32) ^ (uint32_t)b ^ ((uint64_t)c << 20) ^ ((uint64_t)c >> 7);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static int cg_grow(struct cg_map *mp)
{
    size_t ns = mp->nslots ? mp->nslots * 2 : 1024;
    uint32_t *slots = calloc(ns, sizeof *slots);
    if (!slots)
        return -ENOMEM;
    for (size_t i = 0; i < mp->n; i++) {
        const struct cg_rec *r = &mp->recs[i];
        size_t j = cg_hash(r->func, r->line, r->callee) & (ns - 1);
        while (slots[j])
            j = (j + 1) & (ns - 1);
        slots[j] = (uint32_t)i + 1;
    }
    free(mp->slots);
    mp->slots = slots;
    mp->nslots = ns;
    return 0;
}

/* The record for (func, line, callee), created if new; NULL on ENOMEM. */
static struct cg_rec *cg_get(struct cg_map *mp, uint32_t func, int32_t line, uint32_t callee)
{
    if ((mp->n + 1) * 2 > mp->nslots && cg_grow(mp))
        return NULL;
    size_t j = cg_hash(func, line, callee) & (mp->nslots - 1);
    while (mp->slots[j]) {
        struct cg_rec *r = &mp->recs[mp->slots[j] - 1];
        if (r->func == func && r->line == line && r->callee == callee)
            return r;
        j = (j + 1) & (mp->nslots - 1);
    }
    if (mp->n == mp->cap) {
        size_t nc = mp->cap ? mp->cap * 2 : 1024;
        struct cg_rec *nr = realloc(mp->recs, nc * sizeof *nr);
        if (!nr)
            return NULL;
        mp->recs = nr;
        mp->cap = nc;
    }
    struct cg_rec *r = &mp->recs[mp->n];
    memset(r, 0, sizeof *r);
    r->func = func;
    r->line = line;
    r->callee = callee;
    mp->slots[j] = (uint32_t)++mp->n;
    return r;
}

static int cg_cmp(const void *a, const void *b)
{
    const struct cg_rec *x = a, *y = b;
    if (x->func != y->func)
        return x->func < y->func ? -1 : 1;
    if ((x->callee != 0) != (y->callee != 0))
        return x->callee ? 1 : -1; /* self lines first */
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->callee < y->callee ? -1 : x->callee > y->callee;
}

struct cg_out {
    FILE *f;
    const struct model *m;
    const struct calltree *t;
    uint32_t *fl_id;   /* by string id: compressed file id, 0 = not yet */
    uint32_t *fn_id;   /* by func: compressed id */
    uint8_t *dup;      /* by func: another function has the same name and file */
    uint32_t nfl, nfn;
    uint32_t fl_native; /* the compressed id of "???" */
    /* with native functions: the object file of each function (ob= / cob=),
     * compressed by string id (0: Python code, "[python]") */
    int objects;
    uint32_t *ob_id;
    uint32_t nob;
};

/* A name or path ends at the end of its line: newlines and every other
 * control are written escaped (common/textesc.h), so a name cannot add
 * lines nor reach a terminal that shows the file raw. */
static void put_name(FILE *f, const char *s)
{
    textesc_fputs(s, f);
}

static void put_fl(struct cg_out *c, const char *key, uint32_t func)
{
    if (func && c->t->funcs[func].native) {
        /* a native function: its object is its module (ob=); its source
         * file is not known per function ("???", as valgrind writes it) */
        if (c->fl_native) {
            fprintf(c->f, "%s=(%u)\n", key, c->fl_native);
            return;
        }
        c->fl_native = ++c->nfl;
        fprintf(c->f, "%s=(%u) ???\n", key, c->nfl);
        return;
    }
    uint32_t file = func ? c->t->funcs[func].file : 0;
    if (c->fl_id[file]) {
        fprintf(c->f, "%s=(%u)\n", key, c->fl_id[file]);
        return;
    }
    c->fl_id[file] = ++c->nfl;
    fprintf(c->f, "%s=(%u) ", key, c->nfl);
    put_name(c->f, calltree_func_file(c->m, c->t, func));
    putc('\n', c->f);
}

/* The object file of func: a native function's module, so KCacheGrind
 * groups functions by library; Python functions are "[python]". */
static void put_ob(struct cg_out *c, const char *key, uint32_t func)
{
    if (!c->objects)
        return;
    const struct ct_func *fn = &c->t->funcs[func];
    uint32_t id = func && fn->native ? fn->file : 0;
    if (c->ob_id[id]) {
        fprintf(c->f, "%s=(%u)\n", key, c->ob_id[id]);
        return;
    }
    c->ob_id[id] = ++c->nob;
    fprintf(c->f, "%s=(%u) ", key, c->nob);
    put_name(c->f, id ? model_str(c->m, id) : "[python]");
    putc('\n', c->f);
}

static void put_fn(struct cg_out *c, const char *key, uint32_t func)
{
    if (c->fn_id[func]) {
        fprintf(c->f, "%s=(%u)\n", key, c->fn_id[func]);
        return;
    }
    c->fn_id[func] = ++c->nfn;
    fprintf(c->f, "%s=(%u) ", key, c->nfn);
    const struct ct_func *fn = &c->t->funcs[func];
    if (func && fn->native && !strcmp(calltree_func_name(c->m, c->t, func), "??")) {
        /* no symbol: the module's file name and the offset */
        const char *mod = model_str(c->m, fn->file), *b = strrchr(mod, '/');
        put_name(c->f, b ? b + 1 : mod);
        fprintf(c->f, "+0x%llx\n", (unsigned long long)fn->address);
        return;
    }
    put_name(c->f, calltree_func_name(c->m, c->t, func));
    if (c->dup[func] && fn->native) /* same name in one module: its offset */
        fprintf(c->f, "'0x%llx", (unsigned long long)fn->address);
    else if (c->dup[func])
        fprintf(c->f, "'%d", c->t->funcs[func].line);
    putc('\n', c->f);
}

static void put_vals(FILE *f, const struct ct_cost *c, const struct export_opts *o)
{
    if (o->mode == EXPORT_GIL)
        fprintf(f, "%lld %lld %lld %lld\n", (long long)c->gil_us, (long long)c->wall_us,
                (long long)c->cpu_us, (long long)c->samples);
    else if (o->mode == EXPORT_CPU)
        fprintf(f, "%lld %lld %lld\n", (long long)c->cpu_us, (long long)c->wall_us,
                (long long)c->samples);
    else
        fprintf(f, "%lld %lld %lld\n", (long long)c->wall_us, (long long)c->cpu_us,
                (long long)c->samples);
}

static void put_cost(FILE *f, int32_t line, const struct ct_cost *c, const struct export_opts *o)
{
    if (o->mode == EXPORT_GIL)
        fprintf(f, "%d %lld %lld %lld %lld\n", line, (long long)c->gil_us,
                (long long)c->wall_us, (long long)c->cpu_us, (long long)c->samples);
    else if (o->mode == EXPORT_CPU)
        fprintf(f, "%d %lld %lld %lld\n", line, (long long)c->cpu_us, (long long)c->wall_us,
                (long long)c->samples);
    else
        fprintf(f, "%d %lld %lld %lld\n", line, (long long)c->wall_us, (long long)c->cpu_us,
                (long long)c->samples);
}

static int func_name_cmp_ctx_sort(const struct model *m, const struct calltree *t, uint32_t a,
                                  uint32_t b)
{
    if (t->funcs[a].file != t->funcs[b].file)
        return t->funcs[a].file < t->funcs[b].file ? -1 : 1;
    return strcmp(model_str(m, t->funcs[a].name), model_str(m, t->funcs[b].name));
}

static const struct model *sort_m;
static const struct calltree *sort_t;
static int func_cmp(const void *a, const void *b)
{
    return func_name_cmp_ctx_sort(sort_m, sort_t, *(const uint32_t *)a, *(const uint32_t *)b);
}

static int callgrind_write(const struct model *m, const struct export_opts *o, FILE *out,
                           char *err, size_t errlen)
{
    struct calltree *t = NULL;
    struct cg_map mp = { 0 };
    uint32_t *frames = NULL, *seen = NULL, *order = NULL;
    uint8_t *has_in = NULL;
    struct cg_out c = { .f = out, .m = m };
    int rc = export_calltree(m, o, &t);
    if (rc)
        goto oom;
    uint32_t maxd = calltree_max_depth(m);
    frames = malloc(((size_t)maxd + 1) * sizeof *frames);
    seen = calloc(t->nfuncs, sizeof *seen);
    has_in = calloc(t->nfuncs, 1);
    c.t = t;
    c.fl_id = calloc(m->nstrings + 1, sizeof *c.fl_id);
    c.fn_id = calloc(t->nfuncs, sizeof *c.fn_id);
    c.dup = calloc(t->nfuncs, 1);
    c.ob_id = calloc(m->nstrings + 1, sizeof *c.ob_id);
    for (size_t i = 1; i < t->nfuncs; i++)
        c.objects |= t->funcs[i].native;
    order = malloc(t->nfuncs * sizeof *order);
    rc = -ENOMEM;
    if (!frames || !seen || !has_in || !c.fl_id || !c.fn_id || !c.dup || !c.ob_id || !order)
        goto oom;

    /* functions sharing a name in one file get their first line appended */
    for (uint32_t i = 0; i < t->nfuncs; i++)
        order[i] = i;
    sort_m = m;
    sort_t = t;
    if (t->nfuncs > 2)
        qsort(order + 1, t->nfuncs - 1, sizeof *order, func_cmp);
    for (size_t i = 2; i < t->nfuncs; i++)
        if (!func_name_cmp_ctx_sort(m, t, order[i - 1], order[i]))
            c.dup[order[i - 1]] = c.dup[order[i]] = 1;

    uint32_t stamp = 0;
    size_t nst = m->nstacks ? m->nstacks : 1;
    for (size_t s = 0; s < nst; s++) {
        const struct ct_cost *sc = &t->w.stack[s];
        if (!sc->samples)
            continue;
        struct cg_rec *r;
        if (s == 0) {
            if (!(r = cg_get(&mp, 0, 0, 0)))
                goto oom;
            ct_cost_sum(&r->cost, sc);
            continue;
        }
        uint32_t d = calltree_stack_frames(m, (uint32_t)s, frames, maxd);
        const struct m_frame *leaf = &m->frames[frames[d - 1]];
        if (!(r = cg_get(&mp, t->frame_func[frames[d - 1]], leaf->line, 0)))
            goto oom;
        ct_cost_sum(&r->cost, sc);
        stamp++;
        seen[t->frame_func[frames[0]]] = stamp;
        for (uint32_t i = 1; i < d; i++) {
            uint32_t caller = t->frame_func[frames[i - 1]], callee = t->frame_func[frames[i]];
            if (!(r = cg_get(&mp, caller, m->frames[frames[i - 1]].line, callee)))
                goto oom;
            if (r->stamp != stamp) {
                r->stamp = stamp;
                r->calls += sc->samples;
            }
            if (seen[callee] != stamp) {
                seen[callee] = stamp;
                has_in[callee] = 1;
                ct_cost_sum(&r->cost, sc);
            }
        }
    }
    if (mp.n > 1)
        qsort(mp.recs, mp.n, sizeof *mp.recs, cg_cmp);

    /* the process of the thread, green thread or --pid exported (a
     * recording may hold several); else the recording's first */
    const char *pid = model_meta(m, "pid"), *cmd = model_meta(m, "cmd");
    int32_t own = o->pid;
    if (o->thread && o->thread < m->nthreads)
        own = m->threads[o->thread].pid;
    else if (o->green && o->green < m->ngreens)
        own = m->greens[o->green].pid;
    const struct m_process *proc = own ? model_process(m, own) : NULL;
    char pidbuf[16];
    if (proc) {
        snprintf(pidbuf, sizeof pidbuf, "%d", proc->pid);
        pid = pidbuf;
        if (*proc->cmd)
            cmd = proc->cmd;
    }
    fprintf(out, "# callgrind format\nversion: 1\ncreator: sonde " SONDE_VERSION "\n");
    fprintf(out, "pid: %s\n", pid && *pid ? pid : "0");
    fputs("cmd: ", out);
    put_name(out, cmd && *cmd ? cmd : (o->input ? o->input : "?"));
    putc('\n', out);
    if (o->part)
        fprintf(out, "part: %d\n", o->part);
    if (o->thread && o->thread < m->nthreads) {
        char label[256];
        model_thread_label(m, o->thread, label, sizeof label);
        fprintf(out, "thread: %d\ndesc: Thread: ", m->threads[o->thread].tid);
        put_name(out, label);
        putc('\n', out);
    }
    if (o->green && o->green < m->ngreens) {
        char label[600];
        export_green_title(m, o->green, label, sizeof label);
        fputs("desc: Task: ", out);
        put_name(out, label);
        putc('\n', out);
    }
    fprintf(out, "desc: Weights: %s\n",
            o->mode == EXPORT_CPU   ? "CPU time first"
            : o->mode == EXPORT_GIL ? "time holding the GIL first"
                                    : "wall time first");
    fputs("positions: line\n", out);
    const char *ev_wall = "event: wall_us : Wall time (\xc2\xb5s)\n";
    const char *ev_cpu = "event: cpu_us : CPU time (\xc2\xb5s)\n";
    if (o->mode == EXPORT_GIL)
        fprintf(out,
                "event: gil_us : Time holding the GIL (\xc2\xb5s)\n%s%sevent: samples : "
                "Samples\nevents: gil_us wall_us cpu_us samples\n",
                ev_wall, ev_cpu);
    else if (o->mode == EXPORT_CPU)
        fprintf(out, "%s%sevent: samples : Samples\nevents: cpu_us wall_us samples\n", ev_cpu,
                ev_wall);
    else
        fprintf(out, "%s%sevent: samples : Samples\nevents: wall_us cpu_us samples\n", ev_wall,
                ev_cpu);
    fputs("summary: ", out);
    put_vals(out, &t->w.all, o);

    uint32_t cur = UINT32_MAX;
    for (size_t i = 0; i < mp.n; i++) {
        const struct cg_rec *r = &mp.recs[i];
        if (r->callee && !r->cost.samples && !has_in[r->callee])
            continue;
        if (r->func != cur) {
            cur = r->func;
            putc('\n', out);
            put_ob(&c, "ob", cur);
            put_fl(&c, "fl", cur);
            put_fn(&c, "fn", cur);
        }
        if (r->callee) {
            put_ob(&c, "cob", r->callee);
            put_fl(&c, "cfl", r->callee);
            put_fn(&c, "cfn", r->callee);
            fprintf(out, "calls=%lld %d\n", (long long)r->calls, t->funcs[r->callee].line);
        }
        put_cost(out, r->line, &r->cost, o);
    }
    fputs("\ntotals: ", out);
    put_vals(out, &t->w.all, o);
    rc = export_finish(out, err, errlen);
    goto done;
oom:
    rc = se_fail(err, errlen, -ENOMEM, "out of memory");
done:
    free(mp.recs);
    free(mp.slots);
    free(frames);
    free(seen);
    free(has_in);
    free(order);
    free(c.fl_id);
    free(c.fn_id);
    free(c.dup);
    free(c.ob_id);
    calltree_free(t);
    return rc;
}

const struct exporter export_callgrind = {
    .name = "callgrind",
    .ext = ".callgrind",
    .desc = "KCacheGrind / callgrind_annotate (events: wall us, CPU us, samples)",
    .write = callgrind_write,
};
