/* Collapsed stacks ("folded"), the input of flamegraph.pl and inferno: one
 * line per distinct call path, outermost frame first, frames joined by ';',
 * then a space and the path's self weight in microseconds: wall time by
 * default, CPU time with --mode cpu. Frames are "name (file:first line)",
 * native ones "name (module+0xOFFSET)" ("??" the name without a symbol);
 * names and files are shown escaped (common/textesc.h) with ';' as ':'. */
#include "formats/export.h"

#include "common/err.h"
#include "common/textesc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* s escaped, ';' (the frame separator) written as ':'. */
static void put_text(FILE *out, const char *s)
{
    char buf[1024], *owned;
    for (s = textesc_whole(s, buf, sizeof buf, &owned); *s; s++)
        putc(*s == ';' ? ':' : *s, out);
    free(owned);
}

static void put_frame(FILE *out, const struct model *m, const struct calltree *t, uint32_t func)
{
    put_text(out, calltree_func_name(m, t, func));
    if (func && t->funcs[func].native) {
        /* function (module+0xOFFSET), as dump --native prints it */
        char where[512];
        model_native_where(m, t->funcs[func].file, t->funcs[func].address, where, sizeof where);
        fputs(" (", out);
        put_text(out, where);
        putc(')', out);
    } else if (func) {
        fputs(" (", out);
        put_text(out, calltree_func_file(m, t, func));
        fprintf(out, ":%d)", t->funcs[func].line);
    }
}

static int collapsed_write(const struct model *m, const struct export_opts *o, FILE *out,
                           char *err, size_t errlen)
{
    struct calltree *t;
    int rc = export_calltree(m, o, &t);
    if (rc)
        return se_fail(err, errlen, rc, "out of memory");
    uint32_t *path = malloc(((size_t)t->maxdepth + 2) * sizeof *path);
    if (!path) {
        calltree_free(t);
        return se_fail(err, errlen, -ENOMEM, "out of memory");
    }
    /* depth-first: visit each node with a non-zero self weight */
    uint32_t n = t->nodes[0].child;
    while (n) {
        const struct ct_node *nd = &t->nodes[n];
        int64_t us = (export_cost(o, &t->w.self[n]) + 500) / 1000;
        if (us > 0) {
            uint32_t d = 0;
            for (uint32_t k = n; k; k = t->nodes[k].parent)
                path[d++] = k;
            while (d--) {
                put_frame(out, m, t, t->nodes[path[d]].func);
                if (d)
                    putc(';', out);
            }
            fprintf(out, " %lld\n", (long long)us);
        }
        if (nd->child && export_cost(o, &t->w.total[n]) > 0) {
            n = nd->child;
            continue;
        }
        while (n && !t->nodes[n].sibling)
            n = t->nodes[n].parent;
        if (n)
            n = t->nodes[n].sibling;
    }
    free(path);
    calltree_free(t);
    return export_finish(out, err, errlen);
}

const struct exporter export_collapsed = {
    .name = "collapsed",
    .ext = ".collapsed",
    .desc = "folded stacks for flamegraph.pl / inferno (weights: microseconds)",
    .write = collapsed_write,
};
