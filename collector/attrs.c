#include "collector/attrs.h"

#include "collector/json_tok.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ATTRS_MAX_DEPTH 16

static json_t *any_value(json_t *v, int depth);

static json_t *kvlist(json_t *arr, int depth)
{
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    size_t i;
    json_t *kv;
    json_array_foreach(arr, i, kv) {
        json_t *k = json_object_get(kv, "key");
        if (!json_is_string(k))
            continue;
        json_t *val = any_value(json_object_get(kv, "value"), depth + 1);
        if (!val || json_object_setn_new(obj, json_string_value(k), json_string_length(k), val)) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

static json_t *any_value(json_t *v, int depth)
{
    if (!json_is_object(v) || depth > ATTRS_MAX_DEPTH)
        return json_null();
    json_t *x;
    if ((x = json_object_get(v, "stringValue")) && json_is_string(x))
        return json_incref(x);
    if ((x = json_object_get(v, "boolValue")) && json_is_boolean(x))
        return json_incref(x);
    if ((x = json_object_get(v, "intValue"))) {
        if (json_is_integer(x))
            return json_incref(x);
        if (json_is_string(x))
            return json_integer(strtoll(json_string_value(x), NULL, 10));
    }
    if ((x = json_object_get(v, "doubleValue")) && json_is_number(x))
        return json_real(json_number_value(x));
    if ((x = json_object_get(v, "bytesValue")) && json_is_string(x))
        return json_incref(x);
    if ((x = json_object_get(v, "arrayValue"))) {
        json_t *arr = json_array(), *e;
        size_t i;
        if (!arr)
            return NULL;
        json_array_foreach(json_object_get(x, "values"), i, e) {
            json_t *c = any_value(e, depth + 1);
            if (!c || json_array_append_new(arr, c)) {
                json_decref(arr);
                return NULL;
            }
        }
        return arr;
    }
    if ((x = json_object_get(v, "kvlistValue")))
        return kvlist(json_object_get(x, "values"), depth);
    return json_null();
}

json_t *attrs_otlp_to_object(json_t *arr)
{
    return kvlist(json_is_array(arr) ? arr : NULL, 0);
}

static const char *str_attr(json_t *arr, const char *key)
{
    size_t i;
    json_t *kv;
    json_array_foreach(arr, i, kv) {
        json_t *k = json_object_get(kv, "key");
        if (json_is_string(k) && !strcmp(json_string_value(k), key)) {
            json_t *s = json_object_get(json_object_get(kv, "value"), "stringValue");
            return json_is_string(s) ? json_string_value(s) : NULL;
        }
    }
    return NULL;
}

const char *attrs_pick_node(const char *host_name, const char *host, const char *instance,
                            const char *service)
{
    if (host_name && *host_name)
        return host_name;
    if (host && *host)
        return host;
    if (instance && *instance)
        return instance;
    return service ? service : "";
}

int attrs_otlp_resource(json_t *arr, struct span_batch *b, struct attrs_res *res)
{
    const char *svc = str_attr(arr, "service.name");
    const char *node = attrs_pick_node(str_attr(arr, "host.name"), str_attr(arr, "host"),
                                       str_attr(arr, "service.instance.id"), svc);
    res->service = span_batch_strdup(b, svc ? svc : "", (size_t)-1);
    res->node = span_batch_strdup(b, node, (size_t)-1);
    return res->service && res->node ? 0 : -ENOMEM;
}

void attrs_put(struct attrs_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void attrs_put_str(struct attrs_buf *b, const struct jt_doc *d, long i)
{
    const struct jtok *t = &d->t[i];
    attrs_put(b, "\"", 1);
    size_t at = b->n;
    attrs_put(b, d->src + t->start, t->len);
    if (t->esc && !b->oom)
        jt_repair_escapes(b->p + at, t->len);
    attrs_put(b, "\"", 1);
}

static int is_int_text(const char *s, size_t n)
{
    size_t k = n && s[0] == '-' ? 1 : 0;
    if (k >= n || n - k > 19)
        return 0;
    if (s[k] == '0' && n - k > 1)
        return 0;
    for (; k < n; k++)
        if (s[k] < '0' || s[k] > '9')
            return 0;
    return 1;
}

void attrs_put_int_text(struct attrs_buf *b, const char *s, size_t n)
{
    char tmp[24];
    if (is_int_text(s, n)) {
        memcpy(tmp, s, n);
        tmp[n] = 0;
        errno = 0;
        (void)strtoll(tmp, NULL, 10);
        if (errno != ERANGE) {
            attrs_put(b, s, n);
            return;
        }
    }
    attrs_put(b, "null", 4);
}

void attrs_put_num(struct attrs_buf *b, const struct jt_doc *d, long i)
{
    const struct jtok *t = &d->t[i];
    const char *s = d->src + t->start;
    if (t->type != JT_NUM) {
        attrs_put(b, "null", 4);
        return;
    }
    if (!memchr(s, '.', t->len) && !memchr(s, 'e', t->len) && !memchr(s, 'E', t->len)) {
        attrs_put_int_text(b, s, t->len);
        return;
    }
    /* a real: what jansson refuses is one that overflows to infinity */
    char tmp[64];
    if (t->len < sizeof tmp) {
        memcpy(tmp, s, t->len);
        tmp[t->len] = 0;
        if (isfinite(strtod(tmp, NULL))) {
            attrs_put(b, s, t->len);
            return;
        }
    }
    attrs_put(b, "null", 4);
}

void attrs_put_value(struct attrs_buf *b, const struct jt_doc *d, long i)
{
    const struct jtok *t = &d->t[i];
    switch (t->type) {
    case JT_STR: attrs_put_str(b, d, i); return;
    case JT_NUM: attrs_put_num(b, d, i); return;
    case JT_TRUE:
    case JT_FALSE: attrs_put(b, d->src + t->start, t->len); return;
    case JT_OBJ:
    case JT_ARR: {
        int obj = t->type == JT_OBJ;
        attrs_put(b, obj ? "{" : "[", 1);
        size_t j = (size_t)i + 1;
        for (uint32_t k = 0; k < t->size; k++) {
            if (k)
                attrs_put(b, ",", 1);
            if (obj) {
                attrs_put_str(b, d, (long)j);
                attrs_put(b, ":", 1);
                j++;
            }
            attrs_put_value(b, d, (long)j);
            j = d->t[j].next;
        }
        attrs_put(b, obj ? "}" : "]", 1);
        return;
    }
    default: attrs_put(b, "null", 4); return;
    }
}

const char *attrs_jt_str(struct span_batch *out, const struct jt_doc *d, long i)
{
    if (i < 0 || d->t[i].type != JT_STR)
        return "";
    if (!d->t[i].esc)
        return span_batch_strdup(out, d->src + d->t[i].start, d->t[i].len);
    char *tmp = malloc(d->t[i].len + 1);
    if (!tmp)
        return NULL;
    size_t n = jt_unescape(d, (size_t)i, tmp);
    const char *r = span_batch_strdup(out, tmp, n);
    free(tmp);
    return r;
}

int attrs_jt_id(const struct jt_doc *d, long i, char *out, size_t digits, int pad)
{
    if (i < 0 || d->t[i].type != JT_STR || d->t[i].esc)
        return -EINVAL;
    return span_parse_hex_id(out, d->src + d->t[i].start, d->t[i].len, digits, pad);
}
