/* A self-contained interactive flame graph in SVG, rendered by sonde (the
 * look and the script follow flamegraph.pl): root at the bottom, width =
 * wall time (CPU time with --mode cpu); hover shows details, click zooms,
 * Ctrl-F / the Search button highlights functions matching a regex. No
 * external references: opens from disk in any browser. */
#include "formats/export.h"

#include "common/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define FG_WIDTH 1200
#define FG_PAD 10
#define FG_FRAME 16
#define FG_TOP 60
#define FG_BOTTOM 34
#define FG_FONT 12
#define FG_MINPX 0.1
#define FG_TITLE_CHARS 110 /* at 17 px, about the SVG's width */

static const char FG_SCRIPT[] =
    "<script type=\"text/ecmascript\"><![CDATA[\n"
    "'use strict';\n"
    "var W=" "1200" ",PAD=10,details,searchbtn,matched,zoomed=null,searching=null;\n"
    "function a(e,n){return +e.getAttribute('data-'+n);}\n"
    "function frames(){return document.querySelectorAll('g.f');}\n"
    "function fit(g){var r=g.querySelector('rect'),t=g.querySelector('text'),"
    "w=+r.getAttribute('width'),full=g.getAttribute('data-n');\n"
    " t.setAttribute('x',+r.getAttribute('x')+3);var n=Math.floor((w-6)/(12*0.59));\n"
    " t.textContent=n<3?'':(full.length<=n?full:full.substring(0,n-2)+'..');}\n"
    "function show(g,x,w){var r=g.querySelector('rect');g.style.display='';"
    "r.setAttribute('x',x);r.setAttribute('width',w);fit(g);}\n"
    "function zoom(g){var zx=a(g,'x'),zw=a(g,'w'),zd=a(g,'d'),s=(W-2*PAD)/zw;zoomed=g;\n"
    " frames().forEach(function(f){var x=a(f,'x'),w=a(f,'w'),d=a(f,'d');\n"
    "  if(d<zd){if(x<=zx&&x+w>=zx+zw)show(f,PAD,W-2*PAD);else f.style.display='none';}\n"
    "  else if(x>=zx&&x+w<=zx+zw&&(w*s)>=0.1)show(f,PAD+(x-zx)*s,w*s);else f.style.display='none';});\n"
    " document.getElementById('unzoom').style.opacity=1;}\n"
    "function unzoom(){zoomed=null;var t=a(document.querySelector('g.f[data-d=\"0\"]'),'w'),"
    "s=(W-2*PAD)/t;\n"
    " frames().forEach(function(f){show(f,PAD+a(f,'x')*s,a(f,'w')*s);});\n"
    " document.getElementById('unzoom').style.opacity=0;}\n"
    "function search(re){var tot=0,root=document.querySelector('g.f[data-d=\"0\"]'),spans=[];\n"
    " frames().forEach(function(f){var r=f.querySelector('rect');\n"
    "  if(!r.hasAttribute('data-fill'))r.setAttribute('data-fill',r.getAttribute('fill'));\n"
    "  if(re&&re.test(f.getAttribute('data-n'))){r.setAttribute('fill','rgb(230,0,230)');"
    "spans.push([a(f,'x'),a(f,'w')]);}\n"
    "  else r.setAttribute('fill',r.getAttribute('data-fill'));});\n"
    " spans.sort(function(p,q){return p[0]-q[0];});var end=-1;\n"
    " spans.forEach(function(p){if(p[0]>=end){tot+=p[1];end=p[0]+p[1];}"
    "else if(p[0]+p[1]>end){tot+=p[0]+p[1]-end;end=p[0]+p[1];}});\n"
    " matched.textContent=re?'Matched: '+(100*tot/a(root,'w')).toFixed(1)+'%':'';"
    " searching=re;searchbtn.style.opacity=re?1:0.5;}\n"
    "function asksearch(){if(searching){search(null);return;}"
    "var t=prompt('Search for a function (regular expression):','');"
    "if(t){try{search(new RegExp(t));}catch(e){alert(e);}}}\n"
    "window.addEventListener('load',function(){details=document.getElementById('details');"
    "searchbtn=document.getElementById('search');matched=document.getElementById('matched');\n"
    " frames().forEach(function(g){fit(g);\n"
    "  g.addEventListener('click',function(){zoom(g);});\n"
    "  g.addEventListener('mouseover',function(){details.textContent="
    "g.querySelector('title').textContent;});\n"
    "  g.addEventListener('mouseout',function(){details.textContent=' ';});});\n"
    " document.getElementById('unzoom').addEventListener('click',unzoom);\n"
    " searchbtn.addEventListener('click',asksearch);\n"
    " window.addEventListener('keydown',function(e){if((e.ctrlKey||e.metaKey)&&e.key==='f')"
    "{e.preventDefault();asksearch();}if(e.key==='Escape'){search(null);unzoom();}});});\n"
    "]]></script>\n";

/* At most max code points of s into out (cap bytes), with an ellipsis
 * when cut; never splits a UTF-8 sequence. */
static void fg_cut(char *out, size_t cap, const char *s, size_t max)
{
    size_t n = 0, cps = 0, i = 0;
    while (s[i]) {
        size_t len = 1;
        while ((s[i + len] & 0xC0) == 0x80)
            len++;
        if (cps == max || n + len + 4 > cap) {
            memcpy(out + n, "\xe2\x80\xa6", 3);
            n += 3;
            break;
        }
        memcpy(out + n, s + i, len);
        n += len;
        i += len;
        cps++;
    }
    out[n] = 0;
}

static unsigned fg_hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void fg_label(const struct model *m, const struct calltree *t, uint32_t func, char *buf,
                     size_t len)
{
    if (func == UINT32_MAX)
        snprintf(buf, len, "all");
    else if (func == 0)
        snprintf(buf, len, "%s", calltree_func_name(m, t, 0));
    else if (t->funcs[func].native) {
        /* function (module+0xOFFSET) */
        char where[512];
        model_native_where(m, t->funcs[func].file, t->funcs[func].address, where, sizeof where);
        snprintf(buf, len, "%s (%s)", calltree_func_name(m, t, func), where);
    } else
        snprintf(buf, len, "%s (%s:%d)", calltree_func_name(m, t, func), calltree_func_file(m, t, func),
                 t->funcs[func].line);
}

static int flamegraph_write(const struct model *m, const struct export_opts *o, FILE *out,
                            char *err, size_t errlen)
{
    struct calltree *t;
    int rc = export_calltree(m, o, &t);
    if (rc)
        return se_fail(err, errlen, rc, "out of memory");
    int64_t *x = calloc(t->nnodes, sizeof *x);
    if (!x) {
        calltree_free(t);
        return se_fail(err, errlen, -ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < t->nnodes; i++) {
        int64_t cur = x[i];
        for (uint32_t c = t->nodes[i].child; c; c = t->nodes[c].sibling) {
            x[c] = cur;
            cur += export_cost(o, &t->w.total[c]);
        }
    }
    int64_t total = export_cost(o, &t->w.total[0]);
    int height = FG_TOP + FG_BOTTOM + ((int)t->maxdepth + 1) * FG_FRAME;
    double scale = total > 0 ? (double)(FG_WIDTH - 2 * FG_PAD) / (double)total : 0;
    const char *what = o->mode == EXPORT_CPU ? "CPU" : o->mode == EXPORT_GIL ? "GIL-held" : "wall";
    char title[512], label[1024];
    const char *cmd = model_meta(m, "cmd");
    snprintf(title, sizeof title, "Flame graph (%s time): %s", what,
             cmd && *cmd ? cmd : (o->input ? o->input : ""));

    fprintf(out,
            "<?xml version=\"1.0\" standalone=\"no\"?>\n"
            "<svg version=\"1.1\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "xmlns=\"http://www.w3.org/2000/svg\">\n"
            "<style type=\"text/css\">text{font-family:Verdana,sans-serif;font-size:%dpx;fill:#000}"
            "g.f:hover rect{stroke:#000;stroke-width:0.5;cursor:pointer}"
            "g.f text{pointer-events:none}#title{font-size:17px}"
            ".btn{cursor:pointer}</style>\n",
            FG_WIDTH, height, FG_WIDTH, height, FG_FONT);
    fputs(FG_SCRIPT, out);
    /* The title has the top row to itself, cut to what fits the width
     * (whole in its tooltip); the buttons sit on the row below it, so a
     * long command line never runs into them. */
    char shown[sizeof title];
    fg_cut(shown, sizeof shown, title, FG_TITLE_CHARS);
    fprintf(out,
            "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#f8f8f0\"/>\n"
            "<text id=\"title\" x=\"%d\" y=\"24\" text-anchor=\"middle\"><title>",
            FG_WIDTH, height, FG_WIDTH / 2);
    export_xml_str(out, title);
    fputs("</title>", out);
    export_xml_str(out, shown);
    fprintf(out,
            "</text>\n<text id=\"unzoom\" class=\"btn\" x=\"%d\" y=\"46\" opacity=\"0\">Reset "
            "Zoom</text>\n"
            "<text id=\"search\" class=\"btn\" x=\"%d\" y=\"46\" opacity=\"0.5\">Search</text>\n"
            "<text id=\"matched\" x=\"%d\" y=\"%d\"> </text>\n"
            "<text id=\"details\" x=\"%d\" y=\"%d\"> </text>\n",
            FG_PAD, FG_WIDTH - FG_PAD - 60, FG_WIDTH - FG_PAD - 160, height - 12, FG_PAD,
            height - 12);

    for (size_t i = 0; i < t->nnodes; i++) {
        const struct ct_node *n = &t->nodes[i];
        int64_t w = export_cost(o, &t->w.total[i]);
        double px = (double)w * scale;
        if (w <= 0 || (i && px < FG_MINPX))
            continue;
        uint32_t func = i ? n->func : UINT32_MAX;
        fg_label(m, t, func, label, sizeof label);
        unsigned h = fg_hash(i ? calltree_func_name(m, t, func) : "all");
        int r = 205 + (int)(h % 50), g = (int)((h >> 8) % 230), b = (int)((h >> 16) % 55);
        int native = i && func < t->nfuncs && t->funcs[func].native;
        if (native) { /* native frames in blues, apart from Python's warm colours */
            r = 60 + (int)(h % 60);
            g = 120 + (int)((h >> 8) % 80);
            b = 200 + (int)((h >> 16) % 55);
        }
        double y = height - FG_BOTTOM - (double)(n->depth + 1) * FG_FRAME;
        fprintf(out, "<g class=\"f\"%s data-x=\"%lld\" data-w=\"%lld\" data-d=\"%u\" data-n=\"",
                native ? " data-native=\"1\"" : "", (long long)x[i], (long long)w, n->depth);
        export_xml_str(out, label);
        fputs("\"><title>", out);
        export_xml_str(out, label);
        fprintf(out, " \xe2\x80\x94 %.3f ms %s (%.2f%%), %lld samples</title>", (double)w / 1e6,
                what, total ? 100.0 * (double)w / (double)total : 0.0,
                (long long)t->w.total[i].samples);
        fprintf(out,
                "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" fill=\"rgb(%d,%d,%d)\" "
                "rx=\"2\" ry=\"2\"/><text x=\"%.2f\" y=\"%.1f\">",
                FG_PAD + (double)x[i] * scale, y, px, FG_FRAME - 1, r, g, b,
                FG_PAD + (double)x[i] * scale + 3, y + FG_FRAME - 4.5);
        /* the label as it fits, for viewers without scripts (the script redoes it) */
        size_t fit = px > 6 ? (size_t)((px - 6) / (FG_FONT * 0.59)) : 0, len = strlen(label);
        if (fit >= 3) {
            if (len > fit) {
                size_t cut = fit - 2; /* not inside a UTF-8 sequence */
                while (cut > 0 && ((unsigned char)label[cut] & 0xC0) == 0x80)
                    cut--;
                label[cut] = 0;
                export_xml_str(out, label);
                fputs("..", out);
            } else {
                export_xml_str(out, label);
            }
        }
        fputs("</text></g>\n", out);
    }
    fputs("</svg>\n", out);
    free(x);
    calltree_free(t);
    return export_finish(out, err, errlen);
}

const struct exporter export_flamegraph = {
    .name = "flamegraph",
    .ext = ".svg",
    .desc = "interactive flame graph (SVG: hover, click to zoom, search)",
    .write = flamegraph_write,
};
