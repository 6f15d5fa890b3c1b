/* OTLP JSON encoding of spans: see otlp_encode.h for why it lives in spans/. */
#include "spans/otlp_encode.h"

#include "spans/profile.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *any_value(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING: return json_pack("{sO}", "stringValue", v);
    case JSON_INTEGER: {
        char b[32];
        snprintf(b, sizeof b, "%lld", (long long)json_integer_value(v));
        return json_pack("{ss}", "intValue", b);
    }
    case JSON_REAL: return json_pack("{sO}", "doubleValue", v);
    case JSON_TRUE:
    case JSON_FALSE: return json_pack("{sO}", "boolValue", v);
    case JSON_ARRAY: {
        json_t *vals = json_array(), *e;
        size_t i;
        json_array_foreach(v, i, e) json_array_append_new(vals, any_value(e));
        return json_pack("{s{so}}", "arrayValue", "values", vals);
    }
    case JSON_OBJECT: {
        json_t *vals = json_array(), *e;
        const char *k;
        json_object_foreach(v, k, e) json_array_append_new(vals, json_pack("{ssso}", "key", k, "value", any_value(e)));
        return json_pack("{s{so}}", "kvlistValue", "values", vals);
    }
    default: return json_object();
    }
}

static json_t *kv(const char *k, json_t *v)
{
    return json_pack("{ssso}", "key", k, "value", any_value(v));
}

static json_t *encode_span(const struct span *s)
{
    char st[32], en[32];
    /* corrected times lie in the span model's valid range: x 1000 fits */
    snprintf(st, sizeof st, "%lld", (long long)span_cstart(s) * 1000);
    snprintf(en, sizeof en, "%lld", (long long)span_cend(s) * 1000);
    json_t *attrs = json_array(), *a = json_loads(s->attrs, 0, NULL), *v;
    const char *k;
    json_object_foreach(a, k, v) json_array_append_new(attrs, kv(k, v));
    json_decref(a);
    if (s->skew_us) {
        json_t *sk = json_integer(s->skew_us);
        json_array_append_new(attrs, kv("sonde.skew_us", sk));
        json_decref(sk);
    }
    if (s->pprof && s->pprof_len) {
        /* the profile goes on as it came: base64 of the gzipped pprof */
        char *b = sprof_b64(s->pprof, s->pprof_len);
        json_t *pv = b ? json_string(b) : NULL;
        free(b);
        if (!pv) {
            json_decref(attrs);
            return NULL;
        }
        json_array_append_new(attrs, kv("sonde.profile.pprof", pv));
        json_decref(pv);
    }
    json_t *o = json_pack("{sssssssisssssosi}", "traceId", s->trace_id, "spanId", s->span_id, "name", s->name,
                          "kind", s->kind, "startTimeUnixNano", st, "endTimeUnixNano", en, "attributes", attrs,
                          "droppedAttributesCount", 0);
    if (o && *s->parent_id)
        json_object_set_new(o, "parentSpanId", json_string(s->parent_id));
    if (o && s->status)
        json_object_set_new(o, "status", json_pack("{si}", "code", s->status));
    return o;
}

int fmt_otlp_json(const struct span *spans, size_t n, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    json_t *root = json_object(), *rss = json_array();
    if (!root || !rss || json_object_set_new(root, "resourceSpans", rss)) {
        json_decref(root);
        return -ENOMEM;
    }
    /* group by (service, node), keeping first-seen order */
    char *done = calloc(n + 1, 1);
    if (!done) {
        json_decref(root);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (done[i])
            continue;
        json_t *list = json_array();
        for (size_t j = i; j < n; j++) {
            if (done[j] || strcmp(spans[j].service, spans[i].service) || strcmp(spans[j].node, spans[i].node))
                continue;
            done[j] = 1;
            json_array_append_new(list, encode_span(&spans[j]));
        }
        json_t *sv = json_string(spans[i].service), *nd = json_string(spans[i].node);
        json_t *rattrs = json_array();
        json_array_append_new(rattrs, kv("service.name", sv ? sv : json_null()));
        if (*spans[i].node)
            json_array_append_new(rattrs, kv("host.name", nd ? nd : json_null()));
        json_decref(sv);
        json_decref(nd);
        json_array_append_new(rss, json_pack("{s{so}s[{s{ss}so}]}", "resource", "attributes", rattrs, "scopeSpans",
                                             "scope", "name", "sonde", "spans", list));
    }
    free(done);
    *out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!*out)
        return -ENOMEM;
    *len = strlen(*out);
    return 0;
}
