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
