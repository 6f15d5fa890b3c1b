/* The option helpers and exit-code mapping of cli/opts.h: no subcommand is
 * called from here. */
#include "cli/opts.h"

#include "common/err.h"
#include "common/textesc.h"
#include "profiler/query.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_exit_code(int rc)
{
    switch (rc) {
    case 0: return EXIT_OK;
    case SE_USAGE: return EXIT_USAGE;
    case SE_NOPROC: return EXIT_NOPROC;
    case SE_PERM: return EXIT_PERM;
    case SE_NOTPYTHON: return EXIT_NOTPYTHON;
    case SE_UNSUPPORTED: return EXIT_UNSUPPORTED;
    case SE_EXITED: return EXIT_EXITED;
    case SE_BADFILE: return EXIT_BADFILE;
    default: return EXIT_FAIL;
    }
}

int cli_error(int rc, const char *msg)
{
    fprintf(stderr, "sonde: %s\n", msg && *msg ? msg : se_str(rc));
    return cli_exit_code(rc);
}

int cli_opt_pid(const char *s, int *pid)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v <= 0 || v > 0x3fffffff) {
        fprintf(stderr, "sonde: invalid pid '%s'\n", s);
        return -1;
    }
    *pid = (int)v;
    return 0;
}

void cli_default_output(char *buf, size_t len, const char *input, const char *suffix)
{
    size_t n = strlen(input);
    if (n > 6 && !strcmp(input + n - 6, ".sonde"))
        n -= 6;
    snprintf(buf, len, "%.*s%s", (int)n, input, suffix);
}

int cli_opt_rate(const char *s, int *rate)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 1 || v > 10000) {
        fprintf(stderr, "sonde: the rate must be 1 to 10000 Hz, not '%s'\n", s);
        return -1;
    }
    *rate = (int)v;
    return 0;
}

int cli_opt_duration_us(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        goto bad;
    double mul;
    if (!strcmp(end, "us"))
        mul = 1;
    else if (!strcmp(end, "ms"))
        mul = 1e3;
    else if (!strcmp(end, "s") || !*end)
        mul = 1e6;
    else if (!strcmp(end, "m"))
        mul = 60e6;
    else if (!strcmp(end, "h"))
        mul = 3600e6;
    else if (!strcmp(end, "d"))
        mul = 86400e6;
    else
        goto bad;
    if (v * mul > 9e18)
        goto bad;
    *out = (int64_t)(v * mul);
    return 0;
bad:
    fprintf(stderr, "sonde: invalid duration '%s' (e.g. 500ms, 30s, 2h, 7d)\n", s);
    return -1;
}

int cli_opt_number(const char *what, const char *s, double min, double max, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= min) || !(v <= max) || (min == 0 && !(v > 0))) {
        fprintf(stderr, "sonde: invalid %s '%s'\n", what, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_find_thread(const struct model *m, const char *spec, int32_t pid, const char *path,
                    uint32_t *thread)
{
    size_t n = model_find_threads(m, spec, NULL, 0), k = 0;
    uint32_t *ids = n ? malloc(n * sizeof *ids) : NULL;
    if (n && !ids)
        return cli_error(-ENOMEM, "out of memory");
    model_find_threads(m, spec, ids, n);
    for (size_t i = 0; i < n; i++)
        if (!pid || m->threads[ids[i]].pid == pid)
            ids[k++] = ids[i];
    char b[256];
    if (k == 1)
        *thread = ids[0];
    else if (k == 0)
        fprintf(stderr, "sonde: no thread named or numbered '%s' in %s%s\n", textesc_str(spec, b, sizeof b),
                path, pid ? " (in that process)" : "");
    else {
        fprintf(stderr, "sonde: %zu threads match '%s' in %s: ", k, textesc_str(spec, b, sizeof b), path);
        for (size_t i = 0; i < k && i < 8; i++) {
            const struct m_thread *t = &m->threads[ids[i]];
            fprintf(stderr, "%s%d:%s (%d)", i ? ", " : "", t->pid, textesc_str(t->name, b, sizeof b), t->tid);
        }
        fprintf(stderr, "%s (give PID:NAME or the TID)\n", k > 8 ? ", ..." : "");
    }
    free(ids);
    return k == 1 ? 0 : EXIT_USAGE;
}

int cli_find_pid(const struct model *m, const char *s, const char *path, int32_t *pid)
{
    int v;
    if (cli_opt_pid(s, &v))
        return EXIT_USAGE;
    if (model_process(m, v)) {
        *pid = v;
        return 0;
    }
    fprintf(stderr, "sonde: no process %d in %s (it has", v, path);
    for (size_t i = 0; i < m->nprocs && i < 8; i++)
        fprintf(stderr, "%s %d", i ? "," : "", m->procs[i].pid);
    fprintf(stderr, "%s)\n", m->nprocs > 8 ? ", ..." : m->nprocs ? "" : " none");
    return EXIT_USAGE;
}

int cli_parse_mode(const char *s, int *mode)
{
    if (!strcmp(s, "wall"))
        *mode = Q_WALL;
    else if (!strcmp(s, "cpu"))
        *mode = Q_CPU;
    else if (!strcmp(s, "gil"))
        *mode = Q_GIL;
    else
        return -1;
    return 0;
}

int cli_opt_bad(const char *cmd, int c, char **argv, int optind)
{
    /* a short option inside a cluster ("-qx"): name the letter, not the word */
    char shortopt[3] = { '-', (char)optopt, 0 };
    const char *what = optopt > 0 && optopt < 128 ? shortopt : argv[optind - 1];
    if (c == ':')
        fprintf(stderr, "sonde: %s: option '%s' needs a value (see 'sonde %s --help')\n", cmd, what, cmd);
    else
        fprintf(stderr, "sonde: %s: unrecognized option '%s' (see 'sonde %s --help')\n", cmd, what, cmd);
    return EXIT_USAGE;
}

int cli_usage_error(const char *cmd, const char *msg)
{
    fprintf(stderr, "sonde: %s: %s (see 'sonde %s --help')\n", cmd, msg, cmd);
    return EXIT_USAGE;
}

int cli_opt_extra(const char *cmd, const char *arg)
{
    fprintf(stderr, "sonde: %s: unexpected argument '%s' (see 'sonde %s --help')\n", cmd, arg, cmd);
    return EXIT_USAGE;
}
