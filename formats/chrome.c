/* Chrome Trace Event JSON (chrome://tracing, Perfetto, speedscope): per
 * thread, consecutive samples with the same stack merged into nested "X"
 * (complete) slices, one slice per function level; each thread's GIL state
 * as its own track ("GIL: name", slices named after the state); sample span
 * ids as a "spans: name" track when the recording has any; under each
 * thread a track per green thread it ran ("task NAME (function)": slices
 * "running" while it ran, "suspended" for its suspended samples); process
 * and thread names as "M" metadata events. Times in microseconds. With
 * --task, only that green thread's thread, its running samples and its
 * track. */
#include "formats/export.h"

#include "common/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define GIL_TID_BASE 1000000000
#define SPAN_TID_BASE 2000000000
#define GREEN_TID_BASE 1500000000 /* + green thread id */

struct ch {
    FILE *out;
    const struct model *m;
    const struct calltree *t;
    int first;
    char **prefix; /* by func: the JSON of a slice up to "pid": (built on first use) */
};

static char *put_u64(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* nanoseconds as microseconds with 3 decimals */
static char *put_us(char *p, int64_t ns)
{
    if (ns < 0)
        ns = 0;
    p = put_u64(p, (uint64_t)(ns / 1000));
    int r = (int)(ns % 1000);
    *p++ = '.';
    *p++ = (char)('0' + r / 100);
    *p++ = (char)('0' + r / 10 % 10);
    *p++ = (char)('0' + r % 10);
    return p;
}

static void sep(struct ch *c)
{
    fputs(c->first ? "\n" : ",\n", c->out);
    c->first = 0;
}

/* The JSON text of a value written by export_json_str, malloc'd. */
static char *json_of(const char *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    export_json_str(f, s);
    fclose(f);
    return buf;
}

static const char *func_prefix(struct ch *c, uint32_t func)
{
    if (c->prefix && c->prefix[func])
        return c->prefix[func];
    char label[600], where[512];
    char *name = json_of(calltree_func_label(c->m, c->t, func, label, sizeof label));
    char *file = json_of(calltree_func_file(c->m, c->t, func)); /* a module's path if native */
    char *at = NULL, *out = NULL;
    if (func && c->t->funcs[func].native) {
        /* native: in category native, its module and offset in args */
        model_native_where(c->m, c->t->funcs[func].file, c->t->funcs[func].address, where,
                           sizeof where);
        at = json_of(where);
        if (name && file && at &&
            asprintf(&out, "{\"ph\":\"X\",\"cat\":\"native\",\"name\":%s,\"args\":"
                     "{\"module\":%s,\"at\":%s},\"pid\":", name, file, at) < 0)
            out = NULL;
    } else if (name && file &&
               asprintf(&out, "{\"ph\":\"X\",\"cat\":\"python\",\"name\":%s,\"args\":"
                        "{\"file\":%s,\"line\":%d},\"pid\":",
                        name, file, func ? c->t->funcs[func].line : 0) < 0) {
        out = NULL;
    }
    free(name);
    free(file);
    free(at);
    if (c->prefix && out)
        c->prefix[func] = out;
    return out ? out : "{\"ph\":\"X\",\"name\":\"?\",\"pid\":";
}

/* A complete slice [a, b) on track (pid, tid): of function func if name is
 * NULL, else named name in category cat. */
static void slice(struct ch *c, const char *name, const char *cat, int pid, int64_t tid,
                  int64_t a, int64_t b, uint32_t func)
{
    if (a < 0) /* a first sample stands for time before the recording began */
        a = 0;
    if (b <= a)
        return;
    char buf[160], *p = buf;
    *p++ = c->first ? '\n' : ',';
    if (!c->first)
        *p++ = '\n';
    c->first = 0;
    if (name) {
        fwrite(buf, 1, (size_t)(p - buf), c->out);
        p = buf;
        fputs("{\"ph\":\"X\",\"cat\":\"", c->out);
        fputs(cat, c->out);
        fputs("\",\"name\":", c->out);
        export_json_str(c->out, name);
        fputs(",\"pid\":", c->out);
    } else {
        fwrite(buf, 1, (size_t)(p - buf), c->out);
        p = buf;
        fputs(func_prefix(c, func), c->out);
    }
    p = put_u64(p, (uint64_t)pid);
    memcpy(p, ",\"tid\":", 7);
    p += 7;
    p = put_u64(p, (uint64_t)tid);
    memcpy(p, ",\"ts\":", 6);
    p += 6;
    p = put_us(p, a);
    memcpy(p, ",\"dur\":", 7);
    p += 7;
    p = put_us(p, b - a);
    *p++ = '}';
    fwrite(buf, 1, (size_t)(p - buf), c->out);
}

static void meta(struct ch *c, const char *what, int pid, int64_t tid, const char *name)
{
    sep(c);
    fprintf(c->out, "{\"ph\":\"M\",\"name\":\"%s\",\"pid\":%d,\"tid\":%lld,\"args\":{\"name\":",
            what, pid, (long long)tid);
    export_json_str(c->out, name);
    fputs("}}", c->out);
}

static void sort_index(struct ch *c, int pid, int64_t tid, int idx)
{
    sep(c);
    fprintf(c->out,
            "{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":%d,\"tid\":%lld,"
            "\"args\":{\"sort_index\":%d}}",
            pid, (long long)tid, idx);
}

/* The track of green thread g: runs of its running and of its suspended
 * samples. */
static void green_track(struct ch *c, const struct model *m, uint32_t g, int pid, int sort)
{
    char label[600];
    model_green_label(m, g, label, sizeof label);
    meta(c, "thread_name", pid, GREEN_TID_BASE + (int64_t)g, label);
    sort_index(c, pid, GREEN_TID_BASE + (int64_t)g, sort);
    struct ct_filter f = { .green = g };
    struct export_iter it;
    export_iter_init(&it, m, &f);
    int state = -1; /* 1 suspended, 0 running */
    int64_t since = 0, end = -1;
    for (const struct m_sample *s;;) {
        s = export_iter_next(&it);
        int64_t a = s ? export_sample_start(s) : end;
        if (a < end)
            a = end;
        int st = s ? export_suspended(s) : -1;
        if (state >= 0 && (st != state || a > end)) {
            slice(c, state ? "suspended" : "running", "task", pid, GREEN_TID_BASE + (int64_t)g, since,
                  end, 0);
            state = -1;
        }
        if (!s)
            break;
        if (state < 0) {
            state = st;
            since = a;
        }
        if (s->ts > end)
            end = s->ts;
    }
}

static int chrome_write(const struct model *m, const struct export_opts *o, FILE *out, char *err,
                        size_t errlen)
{
    struct calltree *t;
    int rc = export_calltree(m, o, &t);
    if (rc)
        return se_fail(err, errlen, rc, "out of memory");
    uint32_t cap = calltree_max_depth(m);
    uint32_t *frames = malloc(((size_t)cap + 1) * sizeof *frames);
    uint32_t *open = malloc(((size_t)cap + 1) * sizeof *open);
    int64_t *since = malloc(((size_t)cap + 1) * sizeof *since);
    if (!frames || !open || !since) {
        free(frames);
        free(open);
        free(since);
        calltree_free(t);
        return se_fail(err, errlen, -ENOMEM, "out of memory");
    }
    struct ch c = { out, m, t, 1, calloc(t->nfuncs, sizeof(char *)) };
    fputs("{\"displayTimeUnit\":\"ms\",\"otherData\":{\"exporter\":\"sonde " SONDE_VERSION "\"",
          out);
    const char *keys[] = { "pid", "cmd", "python_version", "rate_hz", "start_unix_ns" };
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const char *v = model_meta(m, keys[i]);
        if (v) {
            fprintf(out, ",\"%s\":", keys[i]);
            export_json_str(out, v);
        }
    }
    fputs("},\"traceEvents\":[", out);

    const char *cmd = model_meta(m, "cmd");
    int last_pid = -1;
    /* sort indexes: a thread's tracks, then its green threads' */
    uint32_t only = o->green && o->green < m->ngreens ? m->greens[o->green].thread : 0;
    uint32_t *greens = NULL;
    size_t ngreens = 0;
    int stride = 3;
    for (uint32_t th = 1; th < m->nthreads && m->ngreens > 1 && !rc; th++) {
        rc = export_thread_greens(m, th, &greens, &ngreens);
        if ((int)ngreens + 3 > stride)
            stride = (int)ngreens + 3;
        free(greens);
        greens = NULL;
    }
    struct ct_filter tf = { .green = o->green };
    for (uint32_t th = 1; th < m->nthreads && !rc; th++) {
        if ((o->thread && th != o->thread) || (o->green && th != only) || !export_thread_in(m, o, th))
            continue;
        tf.thread = th;
        const struct m_thread *mt = &m->threads[th];
        int pid = mt->pid;
        int64_t tid = mt->tid;
        char label[256], buf[300];
        model_thread_label(m, th, label, sizeof label);
        if (pid != last_pid) {
            /* each process under its own command line */
            const struct m_process *pr = model_process(m, pid);
            const char *pc = pr && *pr->cmd ? pr->cmd : cmd;
            snprintf(buf, sizeof buf, "%s (%d)", pc && *pc ? pc : "python", pid);
            meta(&c, "process_name", pid, 0, buf);
            last_pid = pid;
        }
        meta(&c, "thread_name", pid, tid, mt->name && *mt->name ? mt->name : label);
        sort_index(&c, pid, tid, (int)th * stride);
        snprintf(buf, sizeof buf, "GIL: %s", label);
        meta(&c, "thread_name", pid, GIL_TID_BASE + tid, buf);
        sort_index(&c, pid, GIL_TID_BASE + tid, (int)th * stride + 1);
        int any_span = 0;

        /* stacks and GIL state runs */
        uint32_t nopen = 0;
        int64_t end = -1;
        int state = -1;
        int64_t state_since = 0;
        for (size_t i = 0; i < m->nsamples; i++) {
            const struct m_sample *s = &m->samples[i];
            if (!ct_selected(m, &tf, s))
                continue;
            any_span |= s->span != 0;
            int64_t a = export_sample_start(s), b = s->ts;
            if (a < end)
                a = end;
            if (end >= 0 && a > end) { /* a gap: close everything */
                while (nopen) {
                    nopen--;
                    slice(&c, NULL, "python", pid, tid,
                          since[nopen], end, open[nopen]);
                }
                if (state >= 0)
                    slice(&c, state_name(state), "gil", pid, GIL_TID_BASE + tid, state_since, end, 0);
                state = -1;
            }
            uint32_t d = calltree_stack_frames(m, s->stack, frames, cap);
            uint32_t same = 0;
            while (same < d && same < nopen && t->frame_func[frames[same]] == open[same])
                same++;
            while (nopen > same) {
                nopen--;
                slice(&c, NULL, "python", pid, tid, since[nopen], a,
                      open[nopen]);
            }
            for (; nopen < d; nopen++) {
                open[nopen] = t->frame_func[frames[nopen]];
                since[nopen] = a;
            }
            if (s->state != state) {
                if (state >= 0)
                    slice(&c, state_name(state), "gil", pid, GIL_TID_BASE + tid, state_since, a, 0);
                state = s->state;
                state_since = a;
            }
            if (b > end)
                end = b;
        }
        while (nopen) {
            nopen--;
            slice(&c, NULL, "python", pid, tid, since[nopen], end,
                  open[nopen]);
        }
        if (state >= 0)
            slice(&c, state_name(state), "gil", pid, GIL_TID_BASE + tid, state_since, end, 0);

        /* spans: runs of samples with the same span id */
        if (any_span) {
            snprintf(buf, sizeof buf, "spans: %s", label);
            meta(&c, "thread_name", pid, SPAN_TID_BASE + tid, buf);
            sort_index(&c, pid, SPAN_TID_BASE + tid, (int)th * stride + 2);
            uint32_t span = 0;
            int64_t span_since = 0;
            end = -1;
            for (size_t i = 0; i <= m->nsamples; i++) {
                const struct m_sample *s = i < m->nsamples ? &m->samples[i] : NULL;
                if (s && !ct_selected(m, &tf, s))
                    continue;
                int64_t a = s ? export_sample_start(s) : end;
                if (a < end)
                    a = end;
                uint32_t sp = s ? s->span : 0;
                if (span && (sp != span || (end >= 0 && a > end))) {
                    snprintf(buf, sizeof buf, "span %u", span);
                    slice(&c, buf, "span", pid, SPAN_TID_BASE + tid, span_since, end, 0);
                    span = 0;
                }
                if (sp && !span) {
                    span = sp;
                    span_since = a;
                }
                if (s && s->ts > end)
                    end = s->ts;
            }
        }

        /* its green threads */
        if (m->ngreens > 1 && !(rc = export_thread_greens(m, th, &greens, &ngreens))) {
            for (size_t k = 0; k < ngreens; k++)
                if (!o->green || greens[k] == o->green)
                    green_track(&c, m, greens[k], pid, (int)th * stride + 3 + (int)k);
            free(greens);
            greens = NULL;
        }
    }
    fputs("\n]}\n", out);
    for (size_t i = 0; c.prefix && i < t->nfuncs; i++)
        free(c.prefix[i]);
    free(c.prefix);
    free(frames);
    free(open);
    free(since);
    calltree_free(t);
    if (rc)
        return se_fail(err, errlen, rc, "out of memory");
    return export_finish(out, err, errlen);
}

const struct exporter export_chrome = {
    .name = "chrome",
    .ext = ".json",
    .desc = "Chrome trace events for Perfetto / chrome://tracing (timeline + GIL tracks)",
    .write = chrome_write,
};
