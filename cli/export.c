/* sonde export: write a recording in a format another tool reads: the
 * options, then an exporter from formats/ (formats/export.c is the registry). */
#include "cli/cli.h"

#include "spans/assemble.h"
#include "store/spans.h"
#include "common/err.h"
#include "common/outfile.h"
#include "common/textesc.h"
#include "formats/export.h"
#include "formats/span_profile.h"
#include "profiler/model.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void export_usage(FILE *f)
{
    fputs("usage: sonde export -f FORMAT [-o OUT] [--mode wall|cpu|gil] [--pid PID] [--thread [PID:]NAME|TID]\n"
          "                    [--task NAME|ID] [--per-thread] FILE.sonde\n"
          "  -f, --format FORMAT  output format (below)\n"
          "  -o, --output OUT     output file; '-' is stdout (default: FILE minus .sonde\n"
          "                       plus the format's extension)\n"
          "  -m, --mode MODE      weigh samples by wall time (default), cpu time, or gil:\n"
          "                       wall time with the GIL held (chrome: no effect)\n"
          "  -p, --pid PID        only this process (of a recording of several)\n"
          "  -t, --thread T       only this thread: its Python name, PID:NAME, or OS thread id\n"
          "  -T, --task T         only this green thread (asyncio task or greenlet: its\n"
          "                       name, or its ID from sonde report): its running and\n"
          "                       suspended samples\n"
          "      --per-thread     callgrind: one file per thread, OUT-01, OUT-02, ...\n"
          "                       (with 'part:' and 'thread:' headers)\n"
          "formats:\n",
          f);
    for (size_t i = 0; export_formats[i]; i++)
        fprintf(f, "  %-11s %-17s %s\n", export_formats[i]->name, export_formats[i]->ext,
                export_formats[i]->desc);
    fputs("\n       sonde export -f ", f);
    for (size_t i = 0; span_export_formats[i]; i++)
        fprintf(f, "%s%s", i ? "|" : "", span_export_formats[i]->name);
    fputs(" [--trace ID] [-o OUT] STORE\n"
          "  a span store written by 'sonde collector --db': the trace ID, or every trace\n"
          "  (html: one page with a trace list and an interactive waterfall; times corrected\n"
          "  for clock skew)\n"
          "\n       sonde export -f FORMAT --trace ID [--span ID] [-o OUT] STORE\n"
          "  the profiles the agent sent with the spans of trace ID (or of span ID alone),\n"
          "  as callgrind, speedscope, flamegraph, collapsed or pprof: one thread per span\n",
          f);
}

/* An output: stdout ('-') or a file written by common/outfile (a new file
 * renamed into place, never through a symbolic link). */
struct out {
    FILE *f;
    const char *path;
    struct outfile of;
};

/* Open path for writing ('-': stdout). EXIT_OK, or the exit status after a
 * one-line error. */
static int out_open(struct out *o, const char *path)
{
    o->path = path;
    if (!strcmp(path, "-")) {
        o->f = stdout;
        return EXIT_OK;
    }
    char err[512] = "";
    int rc = outfile_open(&o->of, path, 0, err, sizeof err);
    if (rc)
        return cli_error(rc, err);
    o->f = o->of.f;
    return EXIT_OK;
}

/* Finish writing o: when the writer failed (rc, err) or the data cannot be
 * flushed, say so; a file is then left as it was before. Returns the exit
 * status. */
static int out_finish(struct out *o, int rc, const char *err)
{
    char msg[700];
    if (o->f == stdout) {
        /* a write that failed earlier (a full disk) leaves only the error flag */
        if (!rc && (fflush(stdout) != 0 || ferror(stdout))) {
            rc = -EIO;
            err = "write error";
        }
        if (!rc)
            return EXIT_OK;
        snprintf(msg, sizeof msg, "stdout: %s", err && *err ? err : se_str(rc));
        return cli_error(rc, msg);
    }
    if (rc) {
        outfile_abort(&o->of);
        snprintf(msg, sizeof msg, "%.400s: %s", o->path, err && *err ? err : se_str(rc));
        return cli_error(rc, msg);
    }
    rc = outfile_commit(&o->of, msg, sizeof msg);
    return rc ? cli_error(rc, msg) : EXIT_OK;
}

/* sonde export on a span store: one trace (trace_arg) or all of them. */
static int export_store(const char *format, const char *trace_arg, const char *output, const char *input)
{
    const struct span_exporter *sf = span_export_find(format);
    if (!sf) {
        char msg[4400];
        int k = snprintf(msg, sizeof msg, "%.4000s is a span store: -f ", input);
        for (size_t i = 0; span_export_formats[i] && k > 0 && (size_t)k < sizeof msg; i++)
            k += snprintf(msg + k, sizeof msg - (size_t)k, "%s%s", span_export_formats[i]->name,
                          !span_export_formats[i + 1] ? "" : !span_export_formats[i + 2] ? " or " : ", ");
        if (k > 0 && (size_t)k < sizeof msg)
            snprintf(msg + k, sizeof msg - (size_t)k, " (not '%.100s')", format);
        return cli_error(SE_USAGE, msg);
    }
    char err[512] = "", id[33];
    if (trace_arg && span_parse_hex_id(id, trace_arg, strlen(trace_arg), 32, 1)) {
        snprintf(err, sizeof err, "invalid trace id '%s' (16 or 32 hex digits)", trace_arg);
        return cli_error(SE_USAGE, err);
    }
    struct span_store *st = NULL;
    int rc = span_store_open(input, 0, &st, err, sizeof err);
    if (rc)
        return cli_error(rc, err);
    int64_t max_skew = trace_store_max_skew(st, -1);
    char (*ids)[33] = NULL;
    size_t nids = 0, nv = 0;
    if (trace_arg) {
        if ((ids = malloc(sizeof *ids)))
            memcpy(ids[nids++], id, sizeof id);
        else
            rc = se_fail(err, sizeof err, -ENOMEM, "out of memory");
    } else {
        struct store_filter f = { .limit = 0 };
        rc = span_store_find(st, &f, &ids, &nids, err, sizeof err);
    }
    struct trace_view *v = rc ? NULL : calloc(nids + 1, sizeof *v);
    if (!rc && !v)
        rc = se_fail(err, sizeof err, -ENOMEM, "out of memory");
    for (size_t i = 0; !rc && i < nids; i++) {
        int r = trace_load(st, ids[i], max_skew, &v[nv], err, sizeof err);
        if (!r)
            nv++;
        else if (r != -ENOENT || trace_arg) /* expired meanwhile: skip, unless asked for */
            rc = r;
    }
    span_store_free(st);
    free(ids);
    char *out = NULL;
    size_t len = 0;
    if (!rc && !nv)
        rc = se_fail(err, sizeof err, -ENOENT, "%s holds no trace", input);
    if (!rc && (rc = sf->encode(v, nv, &out, &len)))
        se_fail(err, sizeof err, rc, "out of memory");
    for (size_t i = 0; v && i < nv; i++)
        trace_view_fini(&v[i]);
    free(v);
    if (rc) {
        free(out);
        if (rc == -ENOENT) {
            fprintf(stderr, "sonde: %s\n", err);
            return EXIT_FAIL;
        }
        return cli_error(rc, err);
    }
    char defpath[4200];
    if (!output) {
        cli_default_output(defpath, sizeof defpath, input, sf->ext);
        output = defpath;
    }
    struct out o;
    int status = out_open(&o, output);
    if (status != EXIT_OK) {
        free(out);
        return status;
    }
    /* JSON (in html: inside a script): C1 and bidi controls as \u escapes */
    int bad = textesc_json_write(out, len, o.f) || (!sf->page && fputc('\n', o.f) == EOF);
    free(out);
    return out_finish(&o, bad ? -EIO : 0, "write error");
}

static int export_one(const struct exporter *ex, const struct model *m,
                      const struct export_opts *o, const char *path);

/* sonde export -f FORMAT --trace ID [--span ID] STORE: the profiles of a
 * trace's spans, or one span's, through the recording exporter ex. */
static int export_trace_profile(const struct exporter *ex, const char *trace_arg, const char *span_arg,
                                int mode, const char *output, const char *input)
{
    char err[512] = "", id[33], sid[17];
    if (span_parse_hex_id(id, trace_arg, strlen(trace_arg), 32, 1)) {
        snprintf(err, sizeof err, "invalid trace id '%.100s' (16 or 32 hex digits)", trace_arg);
        return cli_error(SE_USAGE, err);
    }
    if (span_arg && span_parse_hex_id(sid, span_arg, strlen(span_arg), 16, 0)) {
        snprintf(err, sizeof err, "invalid span id '%.100s' (16 hex digits)", span_arg);
        return cli_error(SE_USAGE, err);
    }
    struct span_store *st = NULL;
    int rc = span_store_open(input, 0, &st, err, sizeof err);
    if (rc)
        return cli_error(rc, err);
    struct trace_view v;
    memset(&v, 0, sizeof v);
    rc = trace_load(st, id, trace_store_max_skew(st, -1), &v, err, sizeof err);
    span_store_free(st);
    struct model *m = NULL;
    if (!rc) {
        rc = trace_profile_model(&v, span_arg ? sid : NULL, &m, err, sizeof err);
        trace_view_fini(&v);
    }
    if (rc == -ENOENT) {
        fprintf(stderr, "sonde: %s\n", err);
        return EXIT_FAIL;
    }
    if (rc)
        return cli_error(rc, err);
    char defpath[4200];
    if (!output) {
        cli_default_output(defpath, sizeof defpath, input, ex->ext);
        output = defpath;
    }
    struct export_opts o = { .mode = mode, .input = input };
    int status = export_one(ex, m, &o, output);
    model_free(m);
    return status;
}

/* Write one output file (or stdout); 0 or an exit status. */
static int export_one(const struct exporter *ex, const struct model *m,
                      const struct export_opts *o, const char *path)
{
    char err[512] = "";
    struct out out;
    int status = out_open(&out, path);
    if (status != EXIT_OK)
        return status;
    int rc = ex->write(m, o, out.f, err, sizeof err);
    return out_finish(&out, rc, err);
}

int cmd_export(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, 'o' },
        { "mode", required_argument, NULL, 'm' },
        { "thread", required_argument, NULL, 't' },
        { "pid", required_argument, NULL, 'p' },
        { "per-thread", no_argument, NULL, 'P' },
        { "task", required_argument, NULL, 'T' },
        { "trace", required_argument, NULL, 'T' + 256 },
        { "span", required_argument, NULL, 'S' + 256 },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *format = NULL, *output = NULL, *thread = NULL, *trace_arg = NULL,
               *task = NULL, *span_arg = NULL, *pid = NULL;
    int mode_given = 0;
    struct export_opts o = { .mode = EXPORT_WALL };
    int per_thread = 0, c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":f:o:m:t:p:T:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': format = optarg; break;
        case 'o': output = optarg; break;
        case 'T' + 256: trace_arg = optarg; break;
        case 'S' + 256: span_arg = optarg; break;
        case 'm':
            mode_given = 1;
            if (!strcmp(optarg, "wall"))
                o.mode = EXPORT_WALL;
            else if (!strcmp(optarg, "cpu"))
                o.mode = EXPORT_CPU;
            else if (!strcmp(optarg, "gil"))
                o.mode = EXPORT_GIL;
            else
                return cli_error(SE_USAGE, "--mode must be wall, cpu or gil");
            break;
        case 't': thread = optarg; break;
        case 'p': pid = optarg; break;
        case 'T': task = optarg; break;
        case 'P': per_thread = 1; break;
        case 'h': export_usage(stdout); return EXIT_OK;
        default: return cli_opt_bad("export", c, argv, optind);
        }
    }
    if (!format)
        return cli_usage_error("export", "give the format: -f FORMAT");
    if (optind != argc - 1)
        return optind < argc ? cli_opt_extra("export", argv[optind + 1])
                             : cli_usage_error("export", "give the recording or span store to export");
    if (store_probe(argv[optind]) == STORE_PART_SPANS) {
        const struct exporter *pex = span_export_find(format) ? NULL : export_find(format);
        if (pex && !trace_arg)
            return cli_error(SE_USAGE, "-f FORMAT of a profile on a span store needs --trace ID");
        if (span_arg && !pex)
            return cli_error(SE_USAGE, "--span is for the profile formats (callgrind, pprof, ...) with --trace");
        if (pex && (thread || task || per_thread || pid))
            return cli_error(SE_USAGE, "--pid, --thread, --task and --per-thread are for recordings, not span stores");
        if (pex)
            return export_trace_profile(pex, trace_arg, span_arg, o.mode, output, argv[optind]);
        if (mode_given || thread || task || per_thread || pid)
            return cli_error(SE_USAGE,
                             "--mode, --pid, --thread, --task and --per-thread are for recordings, not span stores");
        return export_store(format, trace_arg, output, argv[optind]);
    }
    if (trace_arg || span_arg)
        return cli_error(SE_USAGE, "--trace and --span are for span stores (sonde collector --db FILE)");
    const struct exporter *ex = export_find(format);
    if (!ex) {
        char msg[128];
        snprintf(msg, sizeof msg, "unknown format '%s' (see sonde export --help)", format);
        return cli_error(SE_USAGE, msg);
    }
    if (per_thread && strcmp(ex->name, "callgrind") != 0)
        return cli_error(SE_USAGE, "--per-thread is for -f callgrind");
    if (per_thread && output && !strcmp(output, "-"))
        return cli_error(SE_USAGE, "--per-thread writes files: it cannot go to stdout");
    if (per_thread && thread)
        return cli_error(SE_USAGE, "--per-thread and --thread exclude each other");
    if (per_thread && task)
        return cli_error(SE_USAGE, "--per-thread and --task exclude each other");

    const char *input = argv[optind];
    o.input = input;
    char err[512] = "";
    struct model *m;
    int rc = model_load(input, &m, err, sizeof err);
    if (rc)
        return cli_error(rc, err);
    if ((pid && (rc = cli_find_pid(m, pid, input, &o.pid))) ||
        (thread && (rc = cli_find_thread(m, thread, o.pid, input, &o.thread)))) {
        model_free(m);
        return rc;
    }
    if (task) {
        size_t several = 0;
        o.green = model_find_green(m, task, &several);
        if (!o.green || several > 1) {
            if (!o.green)
                fprintf(stderr, "sonde: no task or greenlet named or numbered '%s' in %s\n", task, input);
            else
                fprintf(stderr, "sonde: %zu green threads are named '%s' in %s: give its ID (sonde report"
                        " lists them)\n", several, task, input);
            model_free(m);
            return EXIT_USAGE;
        }
        o.thread = 0; /* the green thread's samples, whichever thread ran it */
    }

    char defpath[4200];
    if (!output) {
        cli_default_output(defpath, sizeof defpath, input, ex->ext);
        output = defpath;
    }

    int status = EXIT_OK;
    if (!per_thread) {
        status = export_one(ex, m, &o, output);
    } else {
        int part = 0;
        for (uint32_t th = 1; th < m->nthreads && status == EXIT_OK; th++) {
            if (!export_thread_in(m, &o, th))
                continue;
            size_t k;
            for (k = 0; k < m->nsamples && m->samples[k].thread != th; k++)
                ;
            if (k == m->nsamples)
                continue; /* a thread without samples */
            char path[4300];
            o.thread = th;
            o.part = ++part;
            snprintf(path, sizeof path, "%s-%02d", output, part);
            status = export_one(ex, m, &o, path);
        }
    }
    model_free(m);
    return status;
}
