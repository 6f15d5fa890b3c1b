/* One self-contained HTML page: an interactive timeline of the threads
 * coloured by state (wheel zooms, drag pans) and a flame graph of the
 * visible time range (click zooms), drawn on canvases by an inline script.
 * The recording is embedded as JSON in a <script type="application/json">
 * element; the page makes no network requests and opens offline.
 *
 * Embedded data: {title, mode, states, t0, t1, funcs: [[name, file, line]],
 * stacks: [[parent, func]] (index = stack id), threads: [{name, tid, runs:
 * [start, end, state, stack, cpu_ns, ...]}]}: runs merge consecutive samples
 * of a thread with the same state and stack. A recording with green threads
 * adds the state "suspended" and, under each thread, a row per green thread
 * it ran ({name, tid, task: 1, runs}: its running samples in their thread's
 * state, its suspended ones as "suspended"; left out of the flame graph,
 * which its thread's row already covers); with --task, that green thread's
 * row alone (without "task", so the flame graph is its). */
#include "formats/export.h"

#include "common/err.h"

#include <errno.h>
#include <stdlib.h>

static const char HTML_HEAD[] =
    "<!DOCTYPE html>\n"
    "<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<title>sonde</title>\n"
    "<style>\n"
    "body{font:13px system-ui,sans-serif;margin:0;background:#fafafa;color:#222}\n"
    "header{padding:8px 12px;background:#263238;color:#eee}\n"
    "header b{font-size:15px}\n"
    ".legend span{display:inline-block;margin-left:12px}\n"
    ".legend i{display:inline-block;width:11px;height:11px;margin-right:4px;vertical-align:-1px}\n"
    "section{padding:6px 12px}\n"
    "h2{font-size:14px;margin:8px 0 4px}\n"
    "canvas{display:block;background:#fff;border:1px solid #ccc;width:100%}\n"
    "#details{font:12px monospace;white-space:pre;min-height:80px;background:#fff;border:1px solid #ddd;padding:6px;overflow:auto;max-height:220px}\n"
    "button{font-size:12px}\n"
    "</style></head><body>\n"
    "<header><b>sonde</b> <span id=\"title\"></span>\n"
    "<span class=\"legend\" id=\"legend\"></span></header>\n"
    "<section><h2>Timeline <small>(wheel: zoom, drag: pan, double-click: reset; the flame graph shows the visible range)</small></h2>\n"
    "<canvas id=\"tl\" height=\"100\"></canvas></section>\n"
    "<section><h2>Flame graph <small id=\"fgwhat\"></small> <button id=\"fgreset\">reset zoom</button></h2>\n"
    "<canvas id=\"fg\" height=\"300\"></canvas></section>\n"
    "<section><div id=\"details\"> </div></section>\n";

/* The script, in three parts: with green threads, a colour for "suspended"
 * goes between the first two and a test leaving task rows out of the
 * flame graph between the last two. */
static const char HTML_TAIL[] =
    "<script>\n"
    "'use strict';\n"
    "var D=JSON.parse(document.getElementById('sonde-data').textContent);\n"
    "var COL=['#b0bec5','#43a047','#e53935','#fb8c00'";
static const char HTML_TAIL2[] =
    "];\n"
    "var $=function(i){return document.getElementById(i);};\n"
    "$('title').textContent=D.title;\n"
    "D.states.forEach(function(s,i){var e=document.createElement('span');e.innerHTML='<i></i>';e.firstChild.style.background=COL[i];e.appendChild(document.createTextNode(s));$('legend').appendChild(e);});\n"
    "$('fgwhat').textContent='('+D.mode+' time)';\n"
    "var v0=D.t0,v1=D.t1>D.t0?D.t1:D.t0+1,ROW=22,LBL=160;\n"
    "var tl=$('tl'),fg=$('fg');\n"
    "function fmt(ns){return ns>=1e9?(ns/1e9).toFixed(3)+' s':ns>=1e6?(ns/1e6).toFixed(3)+' ms':(ns/1e3).toFixed(1)+' us';}\n"
    "function axisTicks(a,b,n){var s=Math.max(1,(b-a)/n),p=Math.pow(10,Math.floor(Math.log10(s))),st=p;\n"
    " [1,2,5,10].some(function(m){st=p*m;return st>=s;});\n"
    " var m=Math.max(Math.abs(a),Math.abs(b)),u=m>=1e9?[1e9,' s']:m>=1e6?[1e6,' ms']:m>=1e3?[1e3,' \\u00b5s']:[1,' ns'];\n"
    " var d=Math.min(9,Math.max(0,-Math.floor(Math.log10(st/u[0])+1e-9))),out=[];\n"
    " for(var k=Math.ceil(a/st);k*st<=b&&out.length<=n+1;k++)out.push([k*st,(k*st/u[0]).toFixed(d)+u[1]]);return out;}\n"
    "function fname(f){var x=D.funcs[f];return x[0];}\n"
    "function floc(f){return f[2]===null?f[1]:f[1]+':'+f[2];}\n"
    "function stackText(s){var out=[];while(s){var f=D.funcs[D.stacks[s][1]];out.push('  '+f[0]+' ('+floc(f)+')');s=D.stacks[s][0];}return out.length?out.join('\\n'):'  [no Python frames]';}\n"
    "function setup(c,h){var r=window.devicePixelRatio||1;c.style.height=h+'px';c.width=c.clientWidth*r;c.height=h*r;var x=c.getContext('2d');x.setTransform(r,0,0,r,0,0);return x;}\n"
    "function drawTL(){var h=Math.max(40,D.threads.length*ROW+20),x=setup(tl,h),W=tl.clientWidth-LBL,sc=W/(v1-v0);\n"
    " x.clearRect(0,0,tl.clientWidth,h);x.font='12px sans-serif';\n"
    " D.threads.forEach(function(t,i){var y=i*ROW+2,r=t.runs,lastpx=-1,n=r.length/5;\n"
    "  x.fillStyle='#222';x.fillText(t.name,4,y+14,LBL-8);\n"
    "  for(var k=0;k<n;k++){var a=r[5*k],b=r[5*k+1];if(b<v0||a>v1)continue;\n"
    "   var px=LBL+(a-v0)*sc,pw=Math.max(1,(b-a)*sc);if(px+pw<=lastpx)continue;\n"
    "   x.fillStyle=COL[r[5*k+2]];x.fillRect(px,y,pw,ROW-4);lastpx=px+pw;}});\n"
    " x.fillStyle='#555';axisTicks(v0-D.t0,v1-D.t0,Math.max(1,Math.floor(W/110))).forEach(function(k){\n"
    "  var px=LBL+(k[0]+D.t0-v0)*sc;x.fillRect(px,h-18,1,5);x.fillText(k[1],Math.min(px+2,tl.clientWidth-x.measureText(k[1]).width-2),h-4);});}\n"
    "var drag=null;\n"
    "tl.addEventListener('wheel',function(e){e.preventDefault();var W=tl.clientWidth-LBL,f=Math.min(1,Math.max(0,(e.offsetX-LBL)/W)),c=v0+f*(v1-v0),k=e.deltaY>0?1.25:0.8,span=Math.max(1000,(v1-v0)*k);\n"
    " v0=Math.max(D.t0,c-f*span);v1=Math.min(D.t1,v0+span);drawTL();scheduleFG();},{passive:false});\n"
    "tl.addEventListener('mousedown',function(e){drag={x:e.clientX,v0:v0,v1:v1};});\n"
    "window.addEventListener('mouseup',function(){drag=null;});\n"
    "window.addEventListener('mousemove',function(e){if(!drag)return;var W=tl.clientWidth-LBL,d=(e.clientX-drag.x)/W*(drag.v1-drag.v0);\n"
    " var n0=drag.v0-d,n1=drag.v1-d;if(n0<D.t0){n1+=D.t0-n0;n0=D.t0;}if(n1>D.t1){n0-=n1-D.t1;n1=D.t1;}v0=n0;v1=n1;drawTL();scheduleFG();});\n"
    "tl.addEventListener('dblclick',function(){v0=D.t0;v1=D.t1;drawTL();scheduleFG();});\n"
    "tl.addEventListener('mousemove',function(e){if(drag)return;var i=Math.floor((e.offsetY-2)/ROW),t=D.threads[i];if(!t||e.offsetX<LBL)return;\n"
    " var ts=v0+(e.offsetX-LBL)/(tl.clientWidth-LBL)*(v1-v0),r=t.runs,lo=0,hi=r.length/5-1;\n"
    " while(lo<hi){var m=(lo+hi+1)>>1;if(r[5*m]<=ts)lo=m;else hi=m-1;}\n"
    " if(hi<0||r[5*lo]>ts||r[5*lo+1]<ts){$('details').textContent=t.name+' @ '+fmt(ts-D.t0)+': no sample';return;}\n"
    " $('details').textContent=t.name+' @ '+fmt(ts-D.t0)+': '+D.states[r[5*lo+2]]+' for '+fmt(r[5*lo+1]-r[5*lo])+'\\n'+stackText(r[5*lo+3]);});\n"
    "var root=null,fz=null,fgT=0;\n"
    "function scheduleFG(){clearTimeout(fgT);fgT=setTimeout(buildFG,60);}\n"
    "function buildFG(){var W={};D.threads.forEach(function(t){";
static const char HTML_TAIL3[] =
    "var w=W[t.pid]||(W[t.pid]=new Float64Array(D.stacks.length)),r=t.runs,n=r.length/5;\n"
    "  for(var k=0;k<n;k++){var a=r[5*k],b=r[5*k+1];if(b<=v0||a>=v1)continue;var f=(Math.min(b,v1)-Math.max(a,v0))/Math.max(1,b-a);\n"
    "   w[r[5*k+3]]+=f*(D.mode==='cpu'?r[5*k+4]:D.mode==='gil'?(D.states[r[5*k+2]]==='gil'?b-a:0):(b-a));}});\n"
    " root={name:'all',v:0,kids:new Map(),depth:0};var many=D.procs.length>1;\n"
    " D.procs.forEach(function(pr){var w=W[pr[0]];if(!w)return;var top=root;\n"
    "  if(many){top={name:pr[1],full:pr[1],v:0,kids:new Map(),depth:1,parent:root};root.kids.set('p'+pr[0],top);}\n"
    "  var node=new Array(D.stacks.length);node[0]=top;\n"
    "  for(var s=1;s<D.stacks.length;s++){var p=node[D.stacks[s][0]]||top,f=D.stacks[s][1],c=p.kids.get(f);\n"
    "   if(!c){var fn=D.funcs[f];c={name:fn[0],full:fn[0]+' ('+floc(fn)+')',v:0,kids:new Map(),depth:p.depth+1,parent:p};p.kids.set(f,c);}node[s]=c;}\n"
    "  if(w[0]>0){var c={name:'[no Python frames]',full:'[no Python frames]',v:0,kids:new Map(),depth:top.depth+1,parent:top};top.kids.set(-1,c);c.self=w[0];}\n"
    "  for(s=D.stacks.length-1;s>=1;s--){node[s].self=(node[s].self||0)+w[s];}});\n"
    " (function tot(n){var v=n.self||0;n.kids.forEach(function(k){v+=tot(k);});n.v=v;return v;})(root);\n"
    " root.full='all';fz=root;drawFG();}\n"
    "var boxes=[];\n"
    "function drawFG(){var maxd=0;(function md(n){if(n.depth>maxd)maxd=n.depth;n.kids.forEach(md);})(root);\n"
    " var H=(maxd+1)*18+4,x=setup(fg,Math.max(60,H)),W=fg.clientWidth;x.clearRect(0,0,W,H);x.font='11px sans-serif';boxes=[];\n"
    " if(!fz||fz.v<=0)return;var anc=[];for(var a=fz.parent;a;a=a.parent)anc.push(a);\n"
    " anc.forEach(function(n){box(x,n,0,W);});\n"
    " (function lay(n,x0,w){box(x,n,x0,w);var cx=x0;n.kids.forEach(function(k){var kw=w*k.v/n.v;if(kw>=0.5)lay(k,cx,kw);cx+=kw;});})(fz,0,W);}\n"
    "function box(x,n,x0,w){var y=n.depth*18+2;var h=0;for(var i=0;i<n.name.length;i++)h=(h*31+n.name.charCodeAt(i))>>>0;\n"
    " x.fillStyle='rgb('+(205+h%50)+','+((h>>8)%230)+','+((h>>16)%55)+')';x.fillRect(x0,y,Math.max(0.5,w-0.5),17);\n"
    " if(w>30){x.fillStyle='#000';x.save();x.beginPath();x.rect(x0,y,w-2,17);x.clip();x.fillText(n.name,x0+3,y+12);x.restore();}\n"
    " boxes.push([x0,y,w,n]);}\n"
    "function hit(e){for(var i=boxes.length-1;i>=0;i--){var b=boxes[i];if(e.offsetX>=b[0]&&e.offsetX<b[0]+b[2]&&e.offsetY>=b[1]&&e.offsetY<b[1]+18)return b[3];}return null;}\n"
    "fg.addEventListener('mousemove',function(e){var n=hit(e);if(n)$('details').textContent=n.full+'\\n'+(D.mode==='cpu'?'CPU ':D.mode==='gil'?'GIL held ':'wall ')+fmt(n.v)+' ('+(100*n.v/root.v).toFixed(2)+'%)';});\n"
    "fg.addEventListener('click',function(e){var n=hit(e);if(n){fz=n;drawFG();}});\n"
    "$('fgreset').addEventListener('click',function(){fz=root;drawFG();});\n"
    "window.addEventListener('resize',function(){drawTL();drawFG();});\n"
    "drawTL();buildFG();\n"
    "</script></body></html>\n";

static void html_run(FILE *out, int *first, int64_t a, int64_t b, int state, uint32_t stack,
                     int64_t cpu)
{
    fprintf(out, "%s%lld,%lld,%d,%u,%lld", *first ? "" : ",", (long long)a, (long long)b, state,
            stack, (long long)cpu);
    *first = 0;
}

/* The runs of the samples f selects (suspended ones in state STATE_COUNT). */
static void html_runs(FILE *out, const struct model *m, const struct ct_filter *f)
{
    int first = 1, state = -1;
    uint32_t stack = 0;
    int64_t a = 0, b = -1, cpu = 0;
    struct export_iter it;
    export_iter_init(&it, m, f);
    for (const struct m_sample *s; (s = export_iter_next(&it));) {
        int st = export_suspended(s) ? STATE_COUNT : s->state;
        int64_t sa = export_sample_start(s);
        if (sa < b)
            sa = b;
        if (state == st && stack == s->stack && sa == b) {
            b = s->ts;
            cpu += s->cpu_ns > 0 ? s->cpu_ns : 0;
            continue;
        }
        if (state >= 0)
            html_run(out, &first, a, b, state, stack, cpu);
        state = st;
        stack = s->stack;
        a = sa;
        b = s->ts;
        cpu = s->cpu_ns > 0 ? s->cpu_ns : 0;
    }
    if (state >= 0)
        html_run(out, &first, a, b, state, stack, cpu);
}

static int html_write(const struct model *m, const struct export_opts *o, FILE *out, char *err,
                      size_t errlen)
{
    struct calltree *t;
    int rc = export_calltree(m, o, &t);
    if (rc)
        return se_fail(err, errlen, rc, "out of memory");
    int greens = m->ngreens > 1;
    int64_t t0 = -1, t1 = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < (pass ? m->ngsamples : m->nsamples); i++) {
            const struct m_sample *s = pass ? &m->gsamples[i] : &m->samples[i];
            if (!export_selected(m, o, s))
                continue;
            int64_t a = export_sample_start(s);
            if (t0 < 0 || a < t0)
                t0 = a;
            if (s->ts > t1)
                t1 = s->ts;
        }
    if (t0 < 0)
        t0 = 0;
    fputs(HTML_HEAD, out);
    fputs("<script type=\"application/json\" id=\"sonde-data\">{\"title\":", out);
    const char *cmd = model_meta(m, "cmd");
    export_json_str(out, cmd && *cmd ? cmd : (o->input ? o->input : ""));
    fprintf(out, ",\"mode\":\"%s\",\"states\":[",
            o->mode == EXPORT_CPU ? "cpu" : o->mode == EXPORT_GIL ? "gil" : "wall");
    for (int s = 0; s < STATE_COUNT; s++) {
        fputs(s ? "," : "", out);
        export_json_str(out, state_name(s));
    }
    if (greens)
        fputs(",\"suspended\"", out);
    fprintf(out, "],\"t0\":%lld,\"t1\":%lld,\"funcs\":[", (long long)t0, (long long)t1);
    for (uint32_t f = 0; f < t->nfuncs; f++) {
        fputs(f ? ",[" : "[", out);
        export_json_str(out, calltree_func_name(m, t, f));
        putc(',', out);
        if (f && t->funcs[f].native) {
            /* where it stands, "libz.so.1+0x6f10", and no line: shown as
             * "deflate (libz.so.1+0x6f10)", dump --native's form */
            char where[512];
            model_native_where(m, t->funcs[f].file, t->funcs[f].address, where, sizeof where);
            export_json_str(out, where);
            fputs(",null]", out);
            continue;
        }
        export_json_str(out, calltree_func_file(m, t, f));
        fprintf(out, ",%d]", f ? t->funcs[f].line : 0);
    }
    fputs("],\n\"stacks\":[[0,0]", out);
    for (size_t s = 1; s < m->nstacks; s++)
        fprintf(out, ",[%u,%u]", m->stacks[s].parent, t->frame_func[m->stacks[s].frame]);
    /* the processes: one flame graph root each when there are several */
    fputs("],\n\"procs\":[", out);
    int np = 0;
    for (size_t i = 0; i < m->nprocs; i++) {
        if (o->pid && m->procs[i].pid != o->pid)
            continue;
        char label[600];
        snprintf(label, sizeof label, "process %d: %s", m->procs[i].pid,
                 *m->procs[i].cmd ? m->procs[i].cmd : "?");
        fprintf(out, "%s[%d,", np++ ? "," : "", m->procs[i].pid);
        export_json_str(out, label);
        putc(']', out);
    }
    if (!np) /* a recording without a process table */
        fputs("[0,\"all\"]", out);
    fputs("],\n\"threads\":[", out);
    int nth = 0;
    if (o->green && o->green < m->ngreens) {
        char label[600];
        export_green_title(m, o->green, label, sizeof label);
        uint32_t th = m->greens[o->green].thread;
        fputs("{\"name\":", out);
        export_json_str(out, label);
        fprintf(out, ",\"tid\":%d,\"pid\":%d,\"runs\":[", th < m->nthreads ? m->threads[th].tid : 0,
                np ? (th < m->nthreads ? m->threads[th].pid : m->greens[o->green].pid) : 0);
        struct ct_filter f = { .green = o->green };
        html_runs(out, m, &f);
        fputs("]}", out);
    }
    for (uint32_t th = 1; th < m->nthreads && !o->green; th++) {
        if ((o->thread && th != o->thread) || !export_thread_in(m, o, th))
            continue;
        char label[256];
        model_thread_label(m, th, label, sizeof label);
        fputs(nth++ ? ",\n{\"name\":" : "{\"name\":", out);
        export_json_str(out, label);
        fprintf(out, ",\"tid\":%d,\"pid\":%d,\"runs\":[", m->threads[th].tid, np ? m->threads[th].pid : 0);
        struct ct_filter f = { .thread = th };
        html_runs(out, m, &f);
        fputs("]}", out);
        uint32_t *gs = NULL;
        size_t ngs = 0;
        if (greens && (rc = export_thread_greens(m, th, &gs, &ngs)))
            break;
        for (size_t k = 0; k < ngs; k++) {
            char gl[600], name[610];
            model_green_label(m, gs[k], gl, sizeof gl);
            snprintf(name, sizeof name, "  %s", gl);
            fputs(",\n{\"name\":", out);
            export_json_str(out, name);
            fprintf(out, ",\"tid\":%d,\"pid\":%d,\"task\":1,\"runs\":[", m->threads[th].tid,
                    np ? m->threads[th].pid : 0);
            struct ct_filter f = { .green = gs[k] };
            html_runs(out, m, &f);
            fputs("]}", out);
        }
        free(gs);
    }
    fputs("]}</script>\n", out);
    fputs(HTML_TAIL, out);
    if (greens)
        fputs(",'#90caf9'", out);
    fputs(HTML_TAIL2, out);
    if (greens)
        fputs("if(t.task)return;", out);
    fputs(HTML_TAIL3, out);
    calltree_free(t);
    if (rc)
        return se_fail(err, errlen, rc, "out of memory");
    return export_finish(out, err, errlen);
}

const struct exporter export_html = {
    .name = "html",
    .ext = ".html",
    .desc = "self-contained HTML page: thread timeline by state + flame graph",
    .write = html_write,
};
