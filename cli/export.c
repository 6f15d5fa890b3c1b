/* sonde export: write a recording in a format another tool reads. */
#include "cli/cli.h"

#include "common/err.h"
#include "formats/export.h"
#include "profiler/model.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void export_usage(FILE *f)
{
    fputs("usage: sonde export -f FORMAT [-o OUT] [--mode wall|cpu] [--thread NAME|TID]\n"
          "                    [--per-thread] FILE.sonde\n"
          "  -f, --format FORMAT  output format (below)\n"
          "  -o, --output OUT     output file; '-' is stdout (default: FILE minus .sonde\n"
          "                       plus the format's extension)\n"
          "  -m, --mode MODE      weigh samples by wall time (default) or cpu time\n"
          "  -t, --thread T       only the thread with this Python name or OS thread id\n"
          "      --per-thread     callgrind: one file per thread, OUT-01, OUT-02, ...\n"
          "                       (with 'part:' and 'thread:' headers)\n"
          "formats:\n",
          f);
    for (size_t i = 0; export_formats[i]; i++)
        fprintf(f, "  %-11s %-17s %s\n", export_formats[i]->name, export_formats[i]->ext,
                export_formats[i]->desc);
}

/* Write one output file (or stdout); 0 or an exit status. */
static int export_one(const struct exporter *ex, const struct model *m,
                      const struct export_opts *o, const char *path)
{
    char err[512] = "";
    int to_stdout = strcmp(path, "-") == 0;
    FILE *out = to_stdout ? stdout : fopen(path, "wb");
    if (!out) {
        snprintf(err, sizeof err, "cannot write %s: %s", path, strerror(errno));
        return cli_error(-errno, err);
    }
    int rc = ex->write(m, o, out, err, sizeof err);
    if (!to_stdout && fclose(out) != 0 && !rc)
        rc = se_fail(err, sizeof err, -EIO, "write error: %s", strerror(errno));
    if (rc) {
        if (!to_stdout)
            unlink(path);
        char msg[700];
        snprintf(msg, sizeof msg, "%s: %s", to_stdout ? "stdout" : path, err);
        return cli_error(rc, msg);
    }
    return EXIT_OK;
}

int cmd_export(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "format", required_argument, NULL, 'f' },
        { "output", required_argument, NULL, 'o' },
        { "mode", required_argument, NULL, 'm' },
        { "thread", required_argument, NULL, 't' },
        { "per-thread", no_argument, NULL, 'P' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *format = NULL, *output = NULL, *thread = NULL;
    struct export_opts o = { .mode = EXPORT_WALL };
    int per_thread = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:o:m:t:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f': format = optarg; break;
        case 'o': output = optarg; break;
        case 'm':
            if (!strcmp(optarg, "wall"))
                o.mode = EXPORT_WALL;
            else if (!strcmp(optarg, "cpu"))
                o.mode = EXPORT_CPU;
            else
                return cli_error(SE_USAGE, "--mode must be wall or cpu");
            break;
        case 't': thread = optarg; break;
        case 'P': per_thread = 1; break;
        case 'h': export_usage(stdout); return EXIT_OK;
        default: export_usage(stderr); return EXIT_USAGE;
        }
    }
    if (!format || optind != argc - 1) {
        export_usage(stderr);
        return EXIT_USAGE;
    }
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

    const char *input = argv[optind];
    o.input = input;
    char err[512] = "";
    struct model *m;
    int rc = model_load(input, &m, err, sizeof err);
    if (rc)
        return cli_error(rc, err);
    if (thread && !(o.thread = model_find_thread(m, thread))) {
        snprintf(err, sizeof err, "%s has no thread named or numbered '%s'", input, thread);
        model_free(m);
        return cli_error(SE_USAGE, err);
    }

    char *defpath = NULL;
    if (!output) {
        size_t n = strlen(input);
        if (n > 6 && !strcmp(input + n - 6, ".sonde"))
            n -= 6;
        defpath = malloc(n + strlen(ex->ext) + 1);
        if (!defpath) {
            model_free(m);
            return cli_error(-ENOMEM, "out of memory");
        }
        memcpy(defpath, input, n);
        strcpy(defpath + n, ex->ext);
        output = defpath;
    }

    int status = EXIT_OK;
    if (!per_thread) {
        status = export_one(ex, m, &o, output);
    } else {
        int part = 0;
        for (uint32_t th = 1; th < m->nthreads && status == EXIT_OK; th++) {
            size_t k;
            for (k = 0; k < m->nsamples && m->samples[k].thread != th; k++)
                ;
            if (k == m->nsamples)
                continue; /* a thread without samples */
            char path[4096];
            o.thread = th;
            o.part = ++part;
            snprintf(path, sizeof path, "%s-%02d", output, part);
            status = export_one(ex, m, &o, path);
        }
    }
    free(defpath);
    model_free(m);
    return status;
}
