/* An assembled trace as text (ui/trace_text.h). */
#include "ui/trace_text.h"

#include "common/textesc.h"
#include "spans/assemble.h"
#include "spans/span.h"

#include <stdio.h>
#include <time.h>

void trace_fmt_dur(char *buf, size_t len, int64_t us)
{
    if (us < 1000)
        snprintf(buf, len, "%lldus", (long long)us);
    else if (us < 1000000)
        snprintf(buf, len, "%.3fms", us / 1e3);
    else
        snprintf(buf, len, "%.3fs", us / 1e6);
}

void trace_fmt_time(char *buf, size_t len, int64_t us)
{
    us = span_time_clamp(us);
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%06lld", (long long)(us % 1000000));
}

void trace_text_waterfall(FILE *f, const struct trace_view *v)
{
    struct trace_summary s;
    trace_summarize(v, &s);
    char t[40], d[32];
    trace_fmt_time(t, sizeof t, s.start_us);
    trace_fmt_dur(d, sizeof d, s.duration_us);
    fprintf(f, "Trace %s  %zu spans  %s  started %s UTC  services: ", s.trace_id, s.span_count, d, t);
    textesc_fputs(s.services, f); /* from whoever posted the spans: shown escaped */
    fputs("\n\n", f);
    enum { W = 40 };
    fprintf(f, "%10s %10s  %-16s %-40s %s\n", "OFFSET", "DURATION", "SERVICE", "SPAN", "");
    int64_t total = s.duration_us > 0 ? s.duration_us : 1;
    for (size_t i = 0; i < v->b.n; i++) {
        const struct span *sp = &v->b.spans[i];
        int64_t st = sp->start_us + sp->skew_us - v->start_us, du = sp->end_us - sp->start_us;
        char o[32], dd[32], name[64], bar[W + 1], en[128], es[128];
        trace_fmt_dur(o, sizeof o, st);
        trace_fmt_dur(dd, sizeof dd, du);
        int depth = v->depth[i] > 12 ? 12 : v->depth[i];
        snprintf(name, sizeof name, "%*s%s%s", depth * 2, "", textesc_str(sp->name, en, sizeof en),
                 sp->status == SPAN_STATUS_ERROR ? " !" : "");
        int a = (int)(st * W / total), b = (int)((st + du) * W / total);
        if (b <= a)
            b = a + 1;
        if (b > W)
            b = W;
        if (a >= W)
            a = W - 1;
        for (int k = 0; k < W; k++)
            bar[k] = k >= a && k < b ? '=' : ' ';
        bar[W] = 0;
        fprintf(f, "%10s %10s  %-16.16s %-40.40s |%s|", o, dd, textesc_str(sp->service, es, sizeof es), name, bar);
        if (sp->skew_us)
            fprintf(f, " skew %+lldus", (long long)sp->skew_us);
        fputc('\n', f);
    }
}
