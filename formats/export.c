/* The exporters' registry (formats/export.h): finding an exporter by name,
 * and the helpers every format shares. (cli/export.c is the `sonde export`
 * command that calls them.) */
#include "formats/export.h"

#include "common/err.h"
#include "common/textesc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const struct exporter *const export_formats[] = {
    &export_callgrind, &export_chrome,    &export_html,  &export_speedscope,
    &export_flamegraph, &export_collapsed, &export_pprof, NULL,
};

const struct exporter *export_find(const char *name)
{
    for (size_t i = 0; export_formats[i]; i++)
        if (strcmp(export_formats[i]->name, name) == 0)
            return export_formats[i];
    return NULL;
}

void export_json_str(FILE *f, const char *s)
{
    putc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned c = *p;
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        case '<': case '>': case '&': fprintf(f, "\\u%04x", c); break;
        default:
            if (c < 0x20)
                fprintf(f, "\\u%04x", c);
            else if (c < 0xc2 || c > 0xe2)
                putc((int)c, f);
            else { /* C1 and bidi controls as \u escapes (common/textesc.h) */
                size_t n = 1;
                while (n < 3 && (p[n] & 0xc0) == 0x80)
                    n++;
                textesc_json_write((const char *)p, n, f);
                p += n - 1;
            }
        }
    }
    putc('"', f);
}

void export_xml_str(FILE *f, const char *s)
{
    char buf[1024], *owned; /* controls shown escaped, as in every text output */
    s = textesc_whole(s, buf, sizeof buf, &owned);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: putc(*p, f); /* no controls are left: XML 1.0 forbids most */
        }
    }
    free(owned);
}

int export_finish(FILE *out, char *err, size_t errlen)
{
    if (fflush(out) != 0 || ferror(out))
        return se_fail(err, errlen, -EIO, "write error: %s", strerror(errno ? errno : EIO));
    return 0;
}

const struct m_sample *export_iter_next(struct export_iter *it)
{
    const struct model *m = it->m;
    while (it->i < m->nsamples && !ct_selected(m, &it->f, &m->samples[it->i]))
        it->i++;
    while (it->f.green && it->j < m->ngsamples && !ct_selected(m, &it->f, &m->gsamples[it->j]))
        it->j++;
    const struct m_sample *a = it->i < m->nsamples ? &m->samples[it->i] : NULL;
    const struct m_sample *b = it->f.green && it->j < m->ngsamples ? &m->gsamples[it->j] : NULL;
    if (a && (!b || a->ts <= b->ts)) {
        it->i++;
        return a;
    }
    if (b)
        it->j++;
    return b;
}

int export_thread_greens(const struct model *m, uint32_t th, uint32_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (m->ngreens < 2)
        return 0;
    uint8_t *seen = calloc(m->ngreens, 1);
    if (!seen)
        return -ENOMEM;
    for (size_t i = 0; i < m->nsamples; i++)
        if (m->samples[i].green && m->samples[i].green < m->ngreens)
            seen[m->samples[i].green] = 1;
    for (size_t i = 0; i < m->ngsamples; i++)
        if (m->gsamples[i].green && m->gsamples[i].green < m->ngreens)
            seen[m->gsamples[i].green] = 1;
    size_t k = 0;
    for (size_t g = 1; g < m->ngreens; g++)
        k += seen[g] && m->greens[g].thread == th;
    if (k && !(*out = malloc(k * sizeof **out))) {
        free(seen);
        return -ENOMEM;
    }
    for (size_t g = 1; g < m->ngreens; g++)
        if (seen[g] && m->greens[g].thread == th)
            (*out)[(*n)++] = (uint32_t)g;
    free(seen);
    return 0;
}

void export_green_title(const struct model *m, uint32_t g, char *out, size_t outlen)
{
    char gl[300], tl[256];
    model_green_label(m, g, gl, sizeof gl);
    model_thread_label(m, g < m->ngreens ? m->greens[g].thread : 0, tl, sizeof tl);
    snprintf(out, outlen, "%s on %s", gl, tl);
}
