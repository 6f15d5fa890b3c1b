/* Trace assembly and clock-skew correction (spans/assemble.h): the
 * algorithm only. */
#include "spans/assemble.h"

#include "common/err.h"
#include "common/utf8.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int by_id(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    int c = strcmp(x->span_id, y->span_id);
    if (c)
        return c;
    return x->start_us < y->start_us ? -1 : x->start_us > y->start_us;
}

static int is_client(const struct span *s) { return s->kind == SPAN_KIND_CLIENT; }
static int is_server(const struct span *s) { return s->kind == SPAN_KIND_SERVER || s->shared; }

static const char *merge_attrs(struct span_batch *b, const char *a, const char *c)
{
    if (!strcmp(a, "{}"))
        return c;
    if (!strcmp(c, "{}") || !strcmp(a, c))
        return a;
    json_t *x = json_loads(a, 0, NULL), *y = json_loads(c, 0, NULL);
    const char *res = a;
    if (json_is_object(x) && json_is_object(y) && !json_object_update(x, y)) {
        char *t = json_dumps(x, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (t) {
            const char *r = span_batch_strdup(b, t, (size_t)-1);
            if (r)
                res = r;
            free(t);
        }
    }
    json_decref(x);
    json_decref(y);
    return res;
}

struct node_off {
    const char *node;
    int64_t off;
    int set;
};

struct ctx {
    struct span *s;
    size_t n;
    size_t *first_child, *next_sibling; /* (size_t)-1 terminated lists */
    struct node_off *nodes;
    size_t nnodes;
    /* shared pairs: server half of span i (node, raw times) */
    const char **srv_node;
    int64_t *srv_start, *srv_end;
    int64_t max_skew;
    size_t *order;
    int *depth;
    size_t norder;
    char *seen;
};

#define NONE ((size_t)-1)

static struct node_off *node_get(struct ctx *c, const char *node)
{
    for (size_t i = 0; i < c->nnodes; i++)
        if (!strcmp(c->nodes[i].node, node))
            return &c->nodes[i];
    return NULL; /* every node was registered up front */
}

/* Offset that centres [cs, ce) (raw) inside the corrected parent [ps, pe). */
static void settle(struct ctx *c, const char *node, int64_t cs, int64_t ce, int64_t ps, int64_t pe)
{
    struct node_off *no = node_get(c, node);
    if (!no || no->set)
        return;
    no->set = 1;
    no->off = 0;
    if (cs >= ps && ce <= pe)
        return;
    int64_t skew = ps + ((pe - ps) - (ce - cs)) / 2 - cs;
    if (skew > c->max_skew || -skew > c->max_skew)
        return;
    no->off = skew;
}

static size_t find(const struct span *s, size_t n, const char *id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = strcmp(s[mid].span_id, id);
        if (!r)
            return mid;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NONE;
}

static void walk(struct ctx *c, size_t root)
{
    /* iterative DFS: stack of (span, depth) */
    size_t cap = 64, sp = 0;
    size_t *stack = malloc(cap * sizeof *stack);
    int *dstack = malloc(cap * sizeof *dstack);
    if (!stack || !dstack)
        goto out;
    stack[sp] = root;
    dstack[sp++] = 0;
    while (sp) {
        size_t i = stack[--sp];
        int d = dstack[sp];
        if (c->seen[i])
            continue;
        c->seen[i] = 1;
        struct span *s = &c->s[i];
        struct node_off *no = node_get(c, s->node);
        if (d == 0 && no && !no->set)
            no->set = 1; /* a root's node is the reference clock */
        s->skew_us = no ? no->off : 0;
        if (c->srv_node[i]) /* shared span: the server half's node */
            settle(c, c->srv_node[i], c->srv_start[i], c->srv_end[i], s->start_us + s->skew_us,
                   s->end_us + s->skew_us);
        c->order[c->norder] = i;
        c->depth[c->norder++] = d;
        /* children: settle their nodes against this span, push in reverse start order */
        size_t nkids = 0;
        for (size_t k = c->first_child[i]; k != NONE; k = c->next_sibling[k]) {
            struct span *ch = &c->s[k];
            if (strcmp(ch->node, s->node))
                settle(c, ch->node, ch->start_us, ch->end_us, s->start_us + s->skew_us,
                       s->end_us + s->skew_us);
            nkids++;
        }
        if (sp + nkids > cap) {
            while (sp + nkids > cap)
                cap *= 2;
            size_t *ns = realloc(stack, cap * sizeof *ns);
            int *nd = ns ? realloc(dstack, cap * sizeof *nd) : NULL;
            if (ns)
                stack = ns;
            if (!nd)
                goto out;
            dstack = nd;
        }
        /* sort kids by corrected start: collect, insertion sort (descending for the stack) */
        size_t base = sp;
        for (size_t k = c->first_child[i]; k != NONE; k = c->next_sibling[k]) {
            struct node_off *ko = node_get(c, c->s[k].node);
            int64_t ks = c->s[k].start_us + (ko ? ko->off : 0);
            size_t j = sp++;
            while (j > base) {
                struct node_off *po = node_get(c, c->s[stack[j - 1]].node);
                int64_t ps = c->s[stack[j - 1]].start_us + (po ? po->off : 0);
                if (ps >= ks)
                    break;
                stack[j] = stack[j - 1];
                j--;
            }
            stack[j] = k;
            dstack[j] = d + 1;
        }
        for (size_t j = base; j < sp; j++)
            dstack[j] = d + 1;
    }
out:
    free(stack);
    free(dstack);
}

int trace_assemble(struct span_batch *raw, int64_t max_skew_us, struct trace_view *out)
{
    memset(out, 0, sizeof *out);
    span_batch_init(&out->b);
    int rc = -ENOMEM;
    struct ctx c = { .max_skew = max_skew_us };
    struct span_batch *b = &out->b;
    if (span_batch_move(b, raw))
        return -ENOMEM;
    span_batch_fini(raw); /* consumed: only its empty span array is left */
    /* spans from a store are untrusted (it may be foreign or damaged): raw
     * times into the span model's valid range and corrections bounded by
     * it, so that every time, offset, sum and difference below stays
     * within +-3 SPAN_TIME_MAX_US, far from int64 overflow */
    if (max_skew_us < 0)
        max_skew_us = 0;
    if (max_skew_us > SPAN_TIME_MAX_US)
        max_skew_us = SPAN_TIME_MAX_US;
    c.max_skew = max_skew_us;
    for (size_t i = 0; i < b->n; i++) {
        struct span *s = &b->spans[i];
        s->start_us = span_time_clamp(s->start_us);
        s->end_us = span_time_clamp(s->end_us);
        if (s->end_us < s->start_us)
            s->end_us = s->start_us;
        s->skew_us = 0;
    }
    qsort(b->spans, b->n, sizeof *b->spans, by_id);

    size_t n = b->n;
    c.srv_node = calloc(n + 1, sizeof *c.srv_node);
    c.srv_start = calloc(n + 1, sizeof *c.srv_start);
    c.srv_end = calloc(n + 1, sizeof *c.srv_end);
    if (!c.srv_node || !c.srv_start || !c.srv_end)
        goto out;

    /* merge runs of equal span ids */
    size_t w = 0;
    for (size_t r = 0; r < n;) {
        size_t e = r + 1;
        while (e < n && !strcmp(b->spans[e].span_id, b->spans[r].span_id))
            e++;
        /* base: the client half if any, else the first */
        size_t base = r;
        for (size_t k = r; k < e; k++)
            if (is_client(&b->spans[k])) {
                base = k;
                break;
            }
        struct span m = b->spans[base];
        const char *srvn = NULL;
        int64_t ss = 0, se = 0;
        for (size_t k = r; k < e; k++) {
            if (k == base)
                continue;
            struct span *o = &b->spans[k];
            if (is_client(&m) && is_server(o)) {
                if (!srvn) {
                    srvn = o->node;
                    ss = o->start_us;
                    se = o->end_us;
                } else {
                    ss = ss < o->start_us ? ss : o->start_us;
                    se = se > o->end_us ? se : o->end_us;
                }
                if (*o->name)
                    m.name = o->name;
                if (*o->service)
                    m.service = o->service;
                if (o->status > m.status)
                    m.status = o->status;
                m.attrs = merge_attrs(b, m.attrs, o->attrs);
                continue;
            }
            if (o->start_us < m.start_us)
                m.start_us = o->start_us;
            if (o->end_us > m.end_us)
                m.end_us = o->end_us;
            if (!*m.name)
                m.name = o->name;
            if (!*m.parent_id)
                memcpy(m.parent_id, o->parent_id, sizeof m.parent_id);
            if (!*m.service)
                m.service = o->service;
            if (o->status > m.status)
                m.status = o->status;
            m.attrs = merge_attrs(b, m.attrs, o->attrs);
        }
        if (srvn) {
            m.kind = SPAN_KIND_SERVER;
            m.shared = 0;
        }
        b->spans[w] = m;
        c.srv_node[w] = srvn;
        c.srv_start[w] = ss;
        c.srv_end[w] = se;
        w++;
        r = e;
    }
    b->n = n = w;

    c.s = b->spans;
    c.n = n;
    c.first_child = malloc((n + 1) * sizeof *c.first_child);
    c.next_sibling = malloc((n + 1) * sizeof *c.next_sibling);
    c.nodes = calloc(2 * n + 1, sizeof *c.nodes);
    c.order = malloc((n + 1) * sizeof *c.order);
    c.depth = malloc((n + 1) * sizeof *c.depth);
    c.seen = calloc(n + 1, 1);
    size_t *parent = malloc((n + 1) * sizeof *parent);
    if (!c.first_child || !c.next_sibling || !c.nodes || !c.order || !c.depth || !c.seen || !parent) {
        free(parent);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        c.first_child[i] = c.next_sibling[i] = NONE;
        const char *nodes[2] = { b->spans[i].node, c.srv_node[i] };
        for (int k = 0; k < 2; k++)
            if (nodes[k] && !node_get(&c, nodes[k]))
                c.nodes[c.nnodes++].node = nodes[k];
    }
    for (size_t i = 0; i < n; i++) {
        size_t p = *b->spans[i].parent_id ? find(b->spans, n, b->spans[i].parent_id) : NONE;
        if (p == i)
            p = NONE;
        parent[i] = p;
    }
    /* break cycles: a span whose ancestor chain loops back becomes a root */
    for (size_t i = 0; i < n; i++) {
        size_t slow = i, fast = i;
        while (fast != NONE && parent[fast] != NONE) {
            fast = parent[parent[fast]];
            slow = parent[slow];
            if (fast != NONE && fast == slow) {
                parent[i] = NONE;
                break;
            }
        }
    }
    for (size_t i = n; i-- > 0;) {
        if (parent[i] != NONE) {
            c.next_sibling[i] = c.first_child[parent[i]];
            c.first_child[parent[i]] = i;
        }
    }
    /* roots by start time */
    size_t *roots = malloc((n + 1) * sizeof *roots), nr = 0;
    if (!roots) {
        free(parent);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (parent[i] == NONE)
            roots[nr++] = i;
    for (size_t i = 1; i < nr; i++) {
        size_t x = roots[i], j = i;
        while (j > 0 && b->spans[roots[j - 1]].start_us > b->spans[x].start_us) {
            roots[j] = roots[j - 1];
            j--;
        }
        roots[j] = x;
    }
    for (size_t i = 0; i < nr; i++)
        walk(&c, roots[i]);
    /* anything left unvisited (cycles already broken; defensive) */
    for (size_t i = 0; i < n; i++)
        if (!c.seen[i])
            walk(&c, i);
    free(roots);
    free(parent);
    out->nroots = nr;
    out->nodes = malloc((c.nnodes + 1) * sizeof *out->nodes);
    if (!out->nodes)
        goto out;
    for (size_t i = 0; i < c.nnodes; i++) {
        out->nodes[i].node = c.nodes[i].node;
        out->nodes[i].skew_us = c.nodes[i].off;
    }
    out->nnodes = c.nnodes;

    /* reorder */
    struct span *ord = malloc((n + 1) * sizeof *ord);
    if (!ord)
        goto out;
    for (size_t i = 0; i < c.norder; i++)
        ord[i] = b->spans[c.order[i]];
    free(b->spans);
    b->spans = ord;
    b->n = c.norder;
    b->cap = n + 1;
    out->depth = c.depth;
    c.depth = NULL;
    /* each span's parent: the last span before it one level up (c.order,
     * no longer needed, keeps the last span seen at each depth) */
    out->parent = malloc((n + 1) * sizeof *out->parent);
    if (!out->parent)
        goto out;
    for (size_t i = 0; i < b->n; i++) {
        int d = out->depth[i];
        out->parent[i] = d > 0 ? (long)c.order[d - 1] : -1;
        c.order[d] = i;
    }
    for (size_t i = 0; i < b->n; i++) {
        /* a correction never moves a span out of the valid range: readers
         * may take start_us + skew_us as it is */
        struct span *sp = &b->spans[i];
        if (sp->skew_us < -sp->start_us)
            sp->skew_us = -sp->start_us;
        if (sp->skew_us > SPAN_TIME_MAX_US - sp->end_us)
            sp->skew_us = SPAN_TIME_MAX_US - sp->end_us;
        int64_t s = span_cstart(sp), e = span_cend(sp);
        if (i == 0 || s < out->start_us)
            out->start_us = s;
        if (i == 0 || e > out->end_us)
            out->end_us = e;
    }
    rc = 0;
out:
    free(c.srv_node);
    free(c.srv_start);
    free(c.srv_end);
    free(c.first_child);
    free(c.next_sibling);
    free(c.nodes);
    free(c.order);
    free(c.depth);
    free(c.seen);
    if (rc)
        trace_view_fini(out);
    return rc;
}

void trace_view_fini(struct trace_view *v)
{
    if (!v)
        return;
    span_batch_fini(&v->b);
    free(v->depth);
    free(v->parent);
    free(v->nodes);
    memset(v, 0, sizeof *v);
}

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

size_t trace_services(const struct trace_view *v, const char **out)
{
    size_t n = 0;
    for (size_t i = 0; i < v->b.n; i++)
        if (*v->b.spans[i].service)
            out[n++] = v->b.spans[i].service;
    qsort(out, n, sizeof *out, cmpstr);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!k || strcmp(out[i], out[k - 1]))
            out[k++] = out[i];
    return k;
}

static int64_t cend(const struct span *s)
{
    return span_cend(s);
}

void trace_critical_path(const struct trace_view *v, unsigned char *crit)
{
    size_t n = v->b.n;
    memset(crit, 0, n);
    long cur = -1;
    for (size_t i = 0; i < n; i++)
        if (v->parent[i] < 0 && (cur < 0 || cend(&v->b.spans[i]) > cend(&v->b.spans[cur])))
            cur = (long)i;
    while (cur >= 0) {
        crit[cur] = 1;
        long best = -1;
        /* children follow their parent in waterfall order, before the next span at its depth */
        for (size_t j = (size_t)cur + 1; j < n && v->depth[j] > v->depth[cur]; j++)
            if (v->parent[j] == cur && (best < 0 || cend(&v->b.spans[j]) > cend(&v->b.spans[best])))
                best = (long)j;
        cur = best;
    }
}

void trace_summarize(const struct trace_view *v, struct trace_summary *s)
{
    memset(s, 0, sizeof *s);
    if (!v->b.n)
        return;
    snprintf(s->trace_id, sizeof s->trace_id, "%s", v->b.spans[0].trace_id);
    utf8_sanitize(v->b.spans[0].name, s->root_name, sizeof s->root_name); /* never splits a character */
    s->span_count = v->b.n;
    s->start_us = v->start_us;
    s->duration_us = v->end_us - v->start_us;
    const char **svc = malloc(v->b.n * sizeof *svc);
    if (!svc)
        return;
    size_t ns = trace_services(v, svc), len = 0;
    for (size_t i = 0; i < ns; i++) {
        int w = snprintf(s->services + len, sizeof s->services - len, "%s%s", len ? "," : "", svc[i]);
        if (w < 0 || (size_t)w >= sizeof s->services - len) {
            s->services[len] = 0; /* whole names only */
            break;
        }
        len += (size_t)w;
    }
    free(svc);
}

