/* sonde collector: receive spans over OTLP/HTTP and Zipkin v2, store them. */
#include "cli/cli.h"

#include "spans/assemble.h"
#include "collector/forward.h"
#include "collector/http.h"
#include "collector/ingest.h"
#include "store/spans.h"
#include "common/err.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* SQLite opens the store and its -wal, -shm and -journal files by name,
 * following symbolic links and creating the target of a dangling one: the
 * store must be a regular file or absent, its companions too. EXIT_OK, or
 * the exit status after a one-line error. */
static int check_db_path(const char *db)
{
    static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        char p[4200], msg[4400];
        struct stat sb;
        snprintf(p, sizeof p, "%s%s", db, sfx[i]);
        if (lstat(p, &sb)) {
            if (errno == ENOENT)
                continue;
            snprintf(msg, sizeof msg, "--db %s: %s", p, strerror(errno));
            return cli_error(-errno, msg);
        }
        if (S_ISLNK(sb.st_mode)) {
            snprintf(msg, sizeof msg, "--db %s is a symbolic link: not opening it (name the file itself)", p);
            return cli_error(-ELOOP, msg);
        }
        if (!S_ISREG(sb.st_mode)) {
            snprintf(msg, sizeof msg, "--db %s is not a regular file", p);
            return cli_error(-EINVAL, msg);
        }
    }
    return EXIT_OK;
}
#include <time.h>

static void collector_usage(FILE *f)
{
    fputs("usage: sonde collector [--listen HOST:PORT] [--zipkin-listen HOST:PORT] [--db FILE]\n"
          "                       [--forward URL] [--token T] [--max-skew DUR] [--retention DUR]\n"
          "  -l, --listen HOST:PORT   OTLP/HTTP (and Zipkin) endpoint, default 127.0.0.1:4318\n"
          "  -z, --zipkin-listen H:P  a second endpoint, e.g. 127.0.0.1:9411 (Zipkin's port)\n"
          "  -d, --db FILE            span store (SQLite), default spans.sonde\n"
          "  -f, --forward URL        re-send every accepted span to this OTLP/HTTP endpoint\n"
          "      --forward-token T    bearer token for the upstream endpoint\n"
          "  -t, --token T            require 'Authorization: Bearer T' (mandatory off loopback)\n"
          "      --max-skew DUR       largest clock correction applied per node, default 10m\n"
          "      --retention DUR      drop traces whose last span ended longer ago (e.g. 7d)\n"
          "      --max-body BYTES     request body limit, default 8388608\n"
          "      --max-spans N        spans per request, default 10000\n"
          "      --threads N          HTTP worker threads, default: one per CPU\n"
          "      --max-queue N        spans waiting for the store before requests get 503, default 200000\n"
          "DUR: a number with a unit us, ms, s, m, h or d (e.g. 500ms, 2h).\n",
          f);
}

/* "HOST:PORT", "[v6]:PORT" or ":PORT" (all addresses). */
static int parse_hostport(const char *s, char *host, size_t hlen, int *port)
{
    const char *colon;
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':')
            return -1;
        snprintf(host, hlen, "%.*s", (int)(rb - s - 1), s + 1);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return -1;
        snprintf(host, hlen, "%.*s", (int)(colon - s), s);
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || p < 0 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

int cmd_collector(int argc, char **argv)
{
    enum { O_FWD_TOKEN = 256, O_MAX_SKEW, O_RETENTION, O_MAX_BODY, O_MAX_SPANS, O_THREADS, O_MAX_QUEUE };
    static const struct option opts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "zipkin-listen", required_argument, NULL, 'z' },
        { "db", required_argument, NULL, 'd' },
        { "forward", required_argument, NULL, 'f' },
        { "forward-token", required_argument, NULL, O_FWD_TOKEN },
        { "token", required_argument, NULL, 't' },
        { "max-skew", required_argument, NULL, O_MAX_SKEW },
        { "retention", required_argument, NULL, O_RETENTION },
        { "max-body", required_argument, NULL, O_MAX_BODY },
        { "max-spans", required_argument, NULL, O_MAX_SPANS },
        { "threads", required_argument, NULL, O_THREADS },
        { "max-queue", required_argument, NULL, O_MAX_QUEUE },
        { "help", no_argument, NULL, 'h' },
        { 0, 0, 0, 0 },
    };
    const char *listen = "127.0.0.1:4318", *zlisten = NULL, *db = "spans.sonde", *fwd_url = NULL;
    const char *token = NULL, *fwd_token = NULL;
    int64_t max_skew = TRACE_MAX_SKEW_DEFAULT_US, retention = 0;
    struct http_opts ho = { 0 };
    size_t max_queue = 0;
    int c;
    long v;
    char *end;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":l:z:d:f:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'l': listen = optarg; break;
        case 'z': zlisten = optarg; break;
        case 'd': db = optarg; break;
        case 'f': fwd_url = optarg; break;
        case 't': token = optarg; break;
        case O_FWD_TOKEN: fwd_token = optarg; break;
        case O_MAX_SKEW:
        case O_RETENTION:
            if (cli_opt_duration_us(optarg, c == O_MAX_SKEW ? &max_skew : &retention))
                return EXIT_USAGE;
            break;
        case O_MAX_BODY:
        case O_MAX_SPANS:
        case O_THREADS:
        case O_MAX_QUEUE:
            v = strtol(optarg, &end, 10);
            if (*end || v <= 0 || (c == O_THREADS && v > 256)) {
                fprintf(stderr, "sonde: invalid number '%s'\n", optarg);
                return EXIT_USAGE;
            }
            if (c == O_MAX_BODY)
                ho.max_body = (size_t)v;
            else if (c == O_MAX_SPANS)
                ho.max_spans = (size_t)v;
            else if (c == O_MAX_QUEUE)
                max_queue = (size_t)v;
            else
                ho.threads = (unsigned)v;
            break;
        case 'h': collector_usage(stdout); return EXIT_OK;
        default: return cli_opt_bad("collector", c, argv, optind);
        }
    }
    if (optind != argc)
        return cli_opt_extra("collector", argv[optind]);
    char host[256], zhost[256] = "";
    int port, zport = 0;
    if (parse_hostport(listen, host, sizeof host, &port) ||
        (zlisten && parse_hostport(zlisten, zhost, sizeof zhost, &zport))) {
        fprintf(stderr, "sonde: --listen / --zipkin-listen want HOST:PORT, got '%s'\n", zlisten && !*zhost ? zlisten : listen);
        return EXIT_USAGE;
    }
    if (!token || !*token) {
        const char *bad = !*host || !http_host_is_loopback(host) ? listen
                          : zlisten && (!*zhost || !http_host_is_loopback(zhost)) ? zlisten : NULL;
        if (bad) {
            fprintf(stderr, "sonde: refusing to listen on non-loopback address '%s' without --token\n", bad);
            return EXIT_USAGE;
        }
    }
    ho.token = token;

    /* signals are taken synchronously by this thread; block them before any thread starts */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[512] = "";
    int rc, exit_code = EXIT_OK;
    struct span_store *st = NULL;
    struct forwarder *fw = NULL;
    struct ingest *in = NULL;
    struct http_server *hs = NULL, *zs = NULL;
    if ((exit_code = check_db_path(db)) != EXIT_OK)
        goto out;
    if ((rc = span_store_open(db, STORE_CREATE, &st, err, sizeof err))) {
        exit_code = cli_error(rc, err);
        goto out;
    }
    char skew[32];
    snprintf(skew, sizeof skew, "%lld", (long long)max_skew);
    if ((rc = span_store_set_meta(st, "max_skew_us", skew, err, sizeof err))) {
        exit_code = cli_error(rc, err);
        goto out;
    }
    if (fwd_url) {
        struct forwarder_opts fo = { .url = fwd_url, .token = fwd_token };
        if ((rc = forwarder_new(&fo, &fw, err, sizeof err))) {
            exit_code = cli_error(rc, err);
            goto out;
        }
    }
    struct ingest_opts io = { .retention_us = retention, .fwd = fw, .max_queued = max_queue, .max_skew_us = max_skew };
    if ((rc = ingest_new(st, &io, &in, err, sizeof err))) {
        exit_code = cli_error(rc, err);
        goto out;
    }
    int bound = 0, zbound = 0;
    if ((rc = http_server_new(host, port, &ho, in, &hs, &bound, err, sizeof err)) ||
        (zlisten && (rc = http_server_new(zhost, zport, &ho, in, &zs, &zbound, err, sizeof err)))) {
        exit_code = cli_error(rc, err);
        goto out;
    }
    fprintf(stderr, "sonde collector: listening on %s:%d (OTLP/HTTP /v1/traces, Zipkin /api/v2/spans)", host, bound);
    if (zs)
        fprintf(stderr, " and %s:%d", zhost, zbound);
    fprintf(stderr, ", store %s%s%s\n", db, fw ? ", forwarding to " : "", fw ? fwd_url : "");
    fflush(stderr);

    /* wait for SIGINT / SIGTERM; meanwhile, say once when the store starts
     * failing to write (its senders get 503 and keep their spans) */
    struct ingest_stats is;
    int told = 0, stop = 0;
    while (!stop) {
        struct timespec tick = { 1, 0 };
        stop = sigtimedwait(&sigs, NULL, &tick) >= 0;
        ingest_get_stats(in, &is);
        if (is.store_errors && !told) {
            told = 1;
            fprintf(stderr, "sonde: collector: cannot write to the store %s (%s): answering 503 until it can\n", db,
                    is.last_error);
            fflush(stderr);
        }
    }

    http_server_free(zs);
    zs = NULL;
    http_server_free(hs);
    hs = NULL;
    ingest_flush(in);
    ingest_get_stats(in, &is);
    fprintf(stderr,
            "sonde collector: received %llu spans, stored %llu, %llu duplicates, %llu refused (overload), "
            "%llu rejected (invalid)",
            (unsigned long long)is.received, (unsigned long long)is.stored, (unsigned long long)is.duplicates,
            (unsigned long long)is.refused, (unsigned long long)is.rejected);
    if (is.store_errors) {
        fprintf(stderr, ", %llu not stored after %llu failed writes (last: %s; their senders got 503)",
                (unsigned long long)is.unstored, (unsigned long long)is.store_errors, is.last_error);
        exit_code = EXIT_NOTSTORED;
    }
    fputc('\n', stderr);
out:
    http_server_free(zs);
    http_server_free(hs);
    ingest_free(in);
    if (fw) {
        struct forwarder_stats fs;
        forwarder_free(fw, 5000, &fs); /* ingest is gone: nothing more is submitted */
        if (exit_code == EXIT_OK || exit_code == EXIT_NOTSTORED)
            fprintf(stderr, "sonde collector: forwarded %llu spans in %llu requests, %llu retries, %llu dropped\n",
                    (unsigned long long)fs.sent, (unsigned long long)fs.requests, (unsigned long long)fs.retries,
                    (unsigned long long)fs.dropped);
    }
    span_store_free(st);
    return exit_code;
}
