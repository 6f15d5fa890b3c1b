/* sonde export -f html on a span store: one self-contained page with the
 * traces embedded as JSON and a small script drawing the waterfall. */
#include "formats/trace_html.h"
#include "formats/trace_json.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char page_head[] =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<title>sonde traces</title>\n<style>\n"
    "body{font:13px system-ui,sans-serif;margin:0;color:#222;background:#fafafa}\n"
    "header{padding:8px 12px;background:#263238;color:#eceff1}\n"
    "#list{max-height:30vh;overflow:auto;border-bottom:1px solid #ccc}\n"
    "table{border-collapse:collapse;width:100%}\n"
    "#list td,#list th{padding:2px 8px;text-align:left;white-space:nowrap}\n"
    "#list tr.t{cursor:pointer}#list tr.t:hover{background:#e3f2fd}#list tr.cur{background:#bbdefb}\n"
    "#legend span{display:inline-block;margin-right:12px}#legend i{display:inline-block;width:10px;height:10px;margin-right:4px}\n"
    "#info{padding:6px 12px}\n"
    ".row{display:flex;align-items:center;height:20px;cursor:pointer;border-bottom:1px solid #eee}\n"
    ".row:hover{background:#f0f4f8}.row.sel{background:#fff59d}\n"
    ".name{width:32%;overflow:hidden;white-space:nowrap;text-overflow:ellipsis}\n"
    ".svc{width:12%;overflow:hidden;white-space:nowrap;color:#555}.dur{width:8%;text-align:right;padding-right:8px}\n"
    ".lane{flex:1;position:relative;height:14px}\n"
    ".bar{position:absolute;top:1px;height:12px;min-width:2px;border-radius:2px}\n"
    ".crit .name{font-weight:bold}.crit .bar{outline:2px solid #d32f2f}\n"
    ".mark{display:inline-block;width:14px;color:#d32f2f}\n"
    ".tog{display:inline-block;width:14px;text-align:center;color:#555}\n"
    ".err{color:#d32f2f}\n"
    "#details{position:fixed;right:0;top:0;bottom:0;width:34%;overflow:auto;background:#fff;"
    "border-left:1px solid #ccc;padding:8px 12px;display:none;box-shadow:-2px 0 6px #0002}\n"
    "#details td{padding:1px 6px;vertical-align:top;word-break:break-all}\n"
    "</style></head><body>\n"
    "<header><b>sonde</b> trace waterfall &mdash; click a row for its details, the triangle to "
    "collapse or expand; <span class=\"mark\">&#9670;</span>marks the critical path</header>\n"
    "<div id=\"list\"></div><div id=\"info\"></div><div id=\"legend\" style=\"padding:0 12px 6px\"></div>\n"
    "<div id=\"wf\"></div><div id=\"details\"></div>\n"
    "<script type=\"application/json\" id=\"sonde-traces\">";

static const char page_tail[] =
    "</script>\n<script>\n"
    "'use strict';\n"
    "const D=JSON.parse(document.getElementById('sonde-traces').textContent);\n"
    "let cur=0,sel=-1,collapsed={};\n"
    "function el(t,c,txt){const e=document.createElement(t);if(c)e.className=c;if(txt!==undefined)e.textContent=txt;return e;}\n"
    "function dur(us){if(us<1000)return us+'us';if(us<1e6)return (us/1e3).toFixed(3)+'ms';return (us/1e6).toFixed(3)+'s';}\n"
    "function when(us){return new Date(us/1000).toISOString().replace('T',' ').replace('Z','');}\n"
    "function colours(t){const s=[...new Set(t.spans.map(x=>x.service))].sort(),m={};"
    "s.forEach((v,i)=>{m[v]='hsl('+Math.round(i*360/Math.max(s.length,1)+200)%360+',60%,55%)';});return m;}\n"
    "const ST=[['gil_pct','GIL held','#43a047'],['gil_wait_pct','GIL wait','#e53935'],['nogil_pct','native','#1e88e5'],"
    "['idle_pct','idle','#bdbdbd']];\n"
    "function grad(p){let a=0,g=[];ST.forEach(([k,l,c])=>{const v=Math.max(0,Number(p[k])||0),b=Math.min(100,a+v);"
    "g.push(c+' '+a+'%',c+' '+b+'%');a=b;});return 'linear-gradient(to right,'+g.join(',')+')';}\n"
    "function list(){const L=document.getElementById('list');L.textContent='';if(D.traces.length<2)return;"
    "const tb=el('table'),h=el('tr');['trace id','root','services','spans','duration','start (UTC)'].forEach(x=>h.appendChild(el('th','',x)));"
    "tb.appendChild(h);D.traces.forEach((t,i)=>{const r=el('tr','t'+(i===cur?' cur':''));"
    "[t.trace_id,t.root_name,t.services.join(', '),t.span_count,dur(t.duration_us),when(t.start_us)].forEach(x=>r.appendChild(el('td','',String(x))));"
    "r.onclick=()=>{cur=i;sel=-1;collapsed={};draw();};tb.appendChild(r);});L.appendChild(tb);}\n"
    "function draw(){list();const W=document.getElementById('wf');W.textContent='';"
    "document.getElementById('details').style.display='none';"
    "const t=D.traces[cur];if(!t){W.textContent='no trace';return;}"
    "document.getElementById('info').textContent='Trace '+t.trace_id+'  '+t.span_count+' spans  '+dur(t.duration_us)+'  started '+when(t.start_us)+' UTC';"
    "const col=colours(t),lg=document.getElementById('legend');lg.textContent='';"
    "Object.keys(col).forEach(s=>{const x=el('span'),i=el('i');i.style.background=col[s];x.appendChild(i);x.appendChild(document.createTextNode(s||'?'));lg.appendChild(x);});"
    "if(t.spans.some(x=>x.profile))ST.forEach(([k,l,c])=>{const x=el('span'),i=el('i');i.style.background=c;x.appendChild(i);"
    "x.appendChild(document.createTextNode(l));lg.appendChild(x);});"
    "const t0=t.start_us,tot=Math.max(t.duration_us,1),sp=t.spans;let hideBelow=-1;"
    "sp.forEach((s,i)=>{if(hideBelow>=0){if(s.depth>hideBelow)return;hideBelow=-1;}"
    "const kids=i+1<sp.length&&sp[i+1].depth>s.depth;if(kids&&collapsed[i])hideBelow=s.depth;"
    "const r=el('div','row'+(s.critical?' crit':'')+(i===sel?' sel':''));r.dataset.i=i;"
    "const n=el('div','name');n.style.paddingLeft=(s.depth*14)+'px';"
    "const tg=el('span','tog',kids?(collapsed[i]?'\\u25b8':'\\u25be'):'');"
    "if(kids)tg.onclick=(e)=>{e.stopPropagation();collapsed[i]=!collapsed[i];draw();};"
    "n.appendChild(tg);n.appendChild(el('span','mark',s.critical?'\\u25c6':''));"
    "n.appendChild(el('span',s.status==='error'?'err':'',s.name));r.appendChild(n);"
    "r.appendChild(el('div','svc',s.service));r.appendChild(el('div','dur',dur(s.end_us-s.start_us)));"
    "const ln=el('div','lane'),b=el('div','bar');b.style.left=((s.start_us-t0)*100/tot)+'%';"
    "b.style.width=((s.end_us-s.start_us)*100/tot)+'%';b.style.background=col[s.service];"
    "b.title=s.name+' '+dur(s.end_us-s.start_us);"
    "if(s.profile){b.style.background=grad(s.profile);b.style.borderLeft='3px solid '+col[s.service];"
    "b.title+=' \u2014 '+ST.map(([k,l])=>l+' '+Math.round(s.profile[k])+'%').join(', ');}"
    "ln.appendChild(b);r.appendChild(ln);"
    "r.onclick=()=>{sel=i;draw();details(i);};W.appendChild(r);});}\n"
    "function details(i){const s=D.traces[cur].spans[i],P=document.getElementById('details');P.textContent='';"
    "const x=el('button','','close');x.onclick=()=>{P.style.display='none';};P.appendChild(x);"
    "P.appendChild(el('h3','',s.name));const tb=el('table');"
    "const t0=D.traces[cur].start_us;"
    "[['span_id',s.span_id],['parent_id',s.parent_id||'(root)'],['trace_id',D.traces[cur].trace_id],['service',s.service],"
    "['node',s.node],['kind',s.kind],['status',s.status],['start_us',s.start_us+' (+'+dur(s.start_us-t0)+')'],"
    "['end_us',s.end_us],['duration',dur(s.end_us-s.start_us)],['skew_us',s.skew_us],['critical path',s.critical?'yes':'no']]"
    ".forEach(([k,v])=>{const r=el('tr');r.appendChild(el('td','',k));r.appendChild(el('td','',String(v)));tb.appendChild(r);});"
    "Object.keys(s.attributes||{}).forEach(k=>{const r=el('tr');r.appendChild(el('td','',k));"
    "const v=s.attributes[k];r.appendChild(el('td','',typeof v==='string'?v:JSON.stringify(v)));tb.appendChild(r);});"
    "P.appendChild(tb);const p=s.profile;if(p){P.appendChild(el('h4','','Profile'));const pt=el('table');"
    "[['samples',p.samples],['wall',p.wall_s.toFixed(3)+'s'],['cpu',p.cpu_s.toFixed(3)+'s']].concat(ST.map(([k,l])=>[l,p[k].toFixed(1)+'%']))"
    ".forEach(([k,v])=>{const r=el('tr');r.appendChild(el('td','',k));r.appendChild(el('td','',String(v)));pt.appendChild(r);});"
    "P.appendChild(pt);P.appendChild(el('h4','','Top functions (self wall time)'));const tt=el('table');"
    "(p.top||[]).forEach(f=>{const r=el('tr','top');r.appendChild(el('td','',f.function));"
    "r.appendChild(el('td','',f.file+':'+f.line));r.appendChild(el('td','',(f.self_wall_s*1e3).toFixed(1)+'ms'));tt.appendChild(r);});"
    "P.appendChild(tt);}P.style.display='block';}\n"
    "draw();\n"
    "</script>\n</body></html>\n";

/* The trace's summary and its spans, each with its depth, parent index
 * and critical-path flag for the page's script. */
static json_t *trace_obj(const struct trace_view *v)
{
    size_t n = v->b.n;
    unsigned char *crit = malloc(n + 1);
    json_t *spans = json_array(), *t = trace_summary_json(v);
    if (!crit || !spans || !t)
        goto oom;
    trace_critical_path(v, crit);
    for (size_t i = 0; i < n; i++) {
        json_t *o = trace_span_json(&v->b.spans[i]);
        if (!o || json_array_append_new(spans, o) || json_object_set_new(o, "depth", json_integer(v->depth[i])) ||
            json_object_set_new(o, "parent", json_integer(v->parent[i])) ||
            json_object_set_new(o, "critical", json_boolean(crit[i])))
            goto oom;
    }
    free(crit);
    if (json_object_set_new(t, "spans", spans)) {
        json_decref(t);
        return NULL;
    }
    return t;
oom:
    free(crit);
    json_decref(spans);
    json_decref(t);
    return NULL;
}

int fmt_trace_html(const struct trace_view *v, size_t n, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    json_t *arr = json_array();
    if (!arr)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *t = trace_obj(&v[i]);
        if (!t || json_array_append_new(arr, t)) {
            json_decref(arr);
            return -ENOMEM;
        }
    }
    json_t *root = json_pack("{so}", "traces", arr);
    char *js = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (!js)
        return -ENOMEM;
    char *buf = NULL;
    size_t blen = 0;
    FILE *f = open_memstream(&buf, &blen);
    if (!f) {
        free(js);
        return -ENOMEM;
    }
    fputs(page_head, f);
    /* '<', '>' and '&' only occur inside JSON strings: escape them so that
     * no "</script>" can close the element early */
    for (const char *p = js; *p; p++) {
        if (*p == '<')
            fputs("\\u003c", f);
        else if (*p == '>')
            fputs("\\u003e", f);
        else if (*p == '&')
            fputs("\\u0026", f);
        else
            fputc(*p, f);
    }
    fputs(page_tail, f);
    free(js);
    if (fclose(f) || !buf) {
        free(buf);
        return -ENOMEM;
    }
    *out = buf;
    *len = blen;
    return 0;
}
