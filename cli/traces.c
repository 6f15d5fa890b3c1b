/* sonde traces / sonde trace: read the collector's span store. */
#include "cli/cli.h"

#include "spans/assemble.h"
#include "store/spans.h"
#include "common/err.h"
#include "common/textesc.h"
#include "formats/export.h"
#include "formats/trace_json.h"
#include "ui/trace_text.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void traces_usage(FILE *f)
{
    fputs("usage: sonde traces --db FILE [--service S] [--since DUR] [--min-duration DUR] [--limit N] [--json]\n"
          "  -d, --db FILE            span store written by 'sonde collector'\n"
          "  -s, --service S          traces with at least one span of service S\n"
          "      --since DUR          traces that ended within DUR of now (e.g. 15m)\n"
          "      --min-duration DUR   traces lasting at least DUR (e.g. 100ms)\n"
          "  -n, --limit N            at most N traces, most recent first (default 100, 0: all)\n"
          "      --max-skew DUR       override the collector's clock-correction bound\n"
          "  -j, --json               {\"traces\": [{trace_id, root_name, services, span_count,\n"
          "                           duration_us, start_us}]}\n",
          f);
}

static void trace_usage(FILE *f)
{
    fputs("usage: sonde trace --db FILE ID [--json | --format otlp|zipkin|chrome]\n"
          "  -d, --db FILE            span store written by 'sonde collector'\n"
          "  -j, --json               {\"trace_id\", \"spans\": [{span_id, parent_id, name, service, node,\n"
          "                           kind, start_us, end_us, skew_us, status, attributes}]}\n"
          "  -f, --format F           otlp (OTLP JSON), zipkin (Zipkin v2 JSON), chrome (trace events)\n"
          "      --max-skew DUR       override the collector's clock-correction bound\n"
          "Without --json / --format: a text waterfall. Times are corrected for clock skew.\n",
          f);
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int cmd_traces(int argc, char **argv)
{
    enum { O_SINCE = 256, O_MIN_DUR, O_MAX_SKEW };
    static const struct option opts[] = {
        { "db", required_argument, NULL, 'd' },
        { "service", required_argument, NULL, 's' },
        { "since", required_argument, NULL, O_SINCE },
        { "min-duration", required_argument, NULL, O_MIN_DUR },
        { "max-skew", required_argument, NULL, O_MAX_SKEW },
        { "limit", required_argument, NULL, 'n' },
        { "json", no_argument, NULL, 'j' },
        { "help", no_argument, NULL, 'h' },
        { 0, 0, 0, 0 },
    };
    const char *db = NULL;
    struct store_filter f = { .limit = 100 };
    int64_t since = 0, max_skew = -1;
    int json = 0, c;
    char *end;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":d:s:n:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 's': f.service = optarg; break;
        case 'n': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0) {
                fprintf(stderr, "sonde: invalid --limit '%s'\n", optarg);
                return EXIT_USAGE;
            }
            f.limit = (size_t)v;
            break;
        }
        case O_SINCE:
        case O_MIN_DUR:
        case O_MAX_SKEW:
            if (cli_opt_duration_us(optarg, c == O_SINCE ? &since : c == O_MIN_DUR ? &f.min_duration_us : &max_skew))
                return EXIT_USAGE;
            break;
        case 'j': json = 1; break;
        case 'h': traces_usage(stdout); return EXIT_OK;
        default: return cli_opt_bad("traces", c, argv, optind);
        }
    }
    if (optind != argc)
        return cli_opt_extra("traces", argv[optind]);
    if (!db) {
        fputs("sonde: traces: which store? --db FILE is required (see 'sonde traces --help')\n", stderr);
        return EXIT_USAGE;
    }
    if (since)
        f.since_us = now_us() - since;
    char err[512] = "";
    struct span_store *st = NULL;
    char (*ids)[33] = NULL;
    size_t n = 0;
    int rc = span_store_open(db, 0, &st, err, sizeof err);
    if (!rc)
        rc = span_store_find(st, &f, &ids, &n, err, sizeof err);
    if (rc) {
        span_store_free(st);
        return cli_error(rc, err);
    }
    max_skew = trace_store_max_skew(st, max_skew);
    json_t *arr = json ? json_array() : NULL;
    if (!json)
        printf("%-32s  %-26s  %12s  %5s  %-30s  %s\n", "TRACE ID", "START (UTC)", "DURATION", "SPANS", "ROOT",
               "SERVICES");
    for (size_t i = 0; i < n; i++) {
        struct trace_view v;
        if ((rc = trace_load(st, ids[i], max_skew, &v, err, sizeof err))) {
            if (rc == -ENOENT) { /* expired meanwhile */
                rc = 0;
                continue;
            }
            break;
        }
        struct trace_summary s;
        trace_summarize(&v, &s);
        json_t *j = json && s.duration_us >= f.min_duration_us ? trace_summary_json(&v) : NULL;
        trace_view_fini(&v);
        if (s.duration_us < f.min_duration_us)
            continue; /* the corrected duration is what counts */
        if (json) {
            if (!j || json_array_append_new(arr, j)) {
                rc = se_fail(err, sizeof err, -ENOMEM, "out of memory");
                break;
            }
        } else {
            char t[40], d[32];
            trace_fmt_time(t, sizeof t, s.start_us);
            trace_fmt_dur(d, sizeof d, s.duration_us);
            /* names and services come from whoever posted the spans: shown escaped */
            char root[TEXTESC_SIZE(sizeof s.root_name)];
            printf("%-32s  %-26s  %12s  %5zu  %-30.30s  ", s.trace_id, t, d, s.span_count,
                   textesc_str(s.root_name, root, sizeof root));
            textesc_fputs(s.services, stdout);
            putchar('\n');
        }
    }
    free(ids);
    span_store_free(st);
    if (rc) {
        json_decref(arr);
        return cli_error(rc, err);
    }
    if (json) {
        json_t *root = json_pack("{so}", "traces", arr);
        char *text = json_dumps(root, JSON_COMPACT);
        if (text) /* C1 and bidi controls as \u escapes (common/textesc.h) */
            textesc_json_write(text, strlen(text), stdout);
        free(text);
        putchar('\n');
        json_decref(root);
    }
    return EXIT_OK;
}

static json_t *trace_json(const struct trace_view *v, const char *id)
{
    json_t *spans = json_array();
    for (size_t i = 0; spans && i < v->b.n; i++)
        if (json_array_append_new(spans, trace_span_json(&v->b.spans[i])))
            spans = (json_decref(spans), NULL);
    return spans ? json_pack("{ssso}", "trace_id", id, "spans", spans) : NULL;
}

int cmd_trace(int argc, char **argv)
{
    enum { O_MAX_SKEW = 256 };
    static const struct option opts[] = {
        { "db", required_argument, NULL, 'd' },
        { "json", no_argument, NULL, 'j' },
        { "format", required_argument, NULL, 'f' },
        { "max-skew", required_argument, NULL, O_MAX_SKEW },
        { "help", no_argument, NULL, 'h' },
        { 0, 0, 0, 0 },
    };
    const char *db = NULL, *format = NULL;
    int json = 0, c;
    int64_t max_skew = -1;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":d:jf:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'j': json = 1; break;
        case 'f': format = optarg; break;
        case O_MAX_SKEW:
            if (cli_opt_duration_us(optarg, &max_skew))
                return EXIT_USAGE;
            break;
        case 'h': trace_usage(stdout); return EXIT_OK;
        default: return cli_opt_bad("trace", c, argv, optind);
        }
    }
    if (!db) {
        fputs("sonde: trace: which store? --db FILE is required (see 'sonde trace --help')\n", stderr);
        return EXIT_USAGE;
    }
    if (optind != argc - 1) {
        fputs("sonde: trace: give exactly one trace ID (see 'sonde trace --help')\n", stderr);
        return EXIT_USAGE;
    }
    const struct span_exporter *sf = format ? span_export_find(format) : NULL;
    if (format && (!sf || sf->page)) {
        fprintf(stderr, "sonde: trace: unknown format '%s' (otlp, zipkin or chrome)\n", format);
        return EXIT_USAGE;
    }
    if (format && json) {
        fputs("sonde: trace: --json and --format exclude each other\n", stderr);
        return EXIT_USAGE;
    }
    char id[33];
    const char *arg = argv[optind];
    if (span_parse_hex_id(id, arg, strlen(arg), 32, 1)) {
        fprintf(stderr, "sonde: invalid trace id '%s' (16 or 32 hex digits)\n", arg);
        return EXIT_USAGE;
    }
    char err[512] = "";
    struct span_store *st = NULL;
    struct trace_view v = { 0 };
    int rc = span_store_open(db, 0, &st, err, sizeof err);
    if (!rc)
        rc = trace_load(st, id, trace_store_max_skew(st, max_skew), &v, err, sizeof err);
    span_store_free(st);
    if (rc == -ENOENT) {
        fprintf(stderr, "sonde: %s\n", err);
        return EXIT_FAIL;
    }
    if (rc)
        return cli_error(rc, err);
    if (sf) {
        char *out = NULL;
        size_t len = 0;
        rc = sf->encode(&v, 1, &out, &len);
        if (!rc) {
            textesc_json_write(out, len, stdout); /* C1, bidi controls as \u escapes */
            putchar('\n');
        }
        free(out);
    } else if (json) {
        json_t *j = trace_json(&v, id);
        if (j) {
            char *text = json_dumps(j, JSON_COMPACT);
            if (text) /* C1 and bidi controls as \u escapes (common/textesc.h) */
                textesc_json_write(text, strlen(text), stdout);
            free(text);
            putchar('\n');
            json_decref(j);
        } else {
            rc = -ENOMEM;
        }
    } else {
        trace_text_waterfall(stdout, &v);
    }
    trace_view_fini(&v);
    return rc ? cli_error(rc, "out of memory") : EXIT_OK;
}
