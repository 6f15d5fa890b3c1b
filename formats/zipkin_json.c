#include "formats/zipkin_json.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static json_t *encode(const struct span *s)
{
    json_t *o = json_pack("{sssssssIsI}", "traceId", s->trace_id, "id", s->span_id, "name", s->name,
                          "timestamp", (json_int_t)span_cstart(s), "duration",
                          (json_int_t)(span_cend(s) - span_cstart(s)));
    if (!o)
        return NULL;
    if (*s->parent_id)
        json_object_set_new(o, "parentId", json_string(s->parent_id));
    if (s->kind >= SPAN_KIND_SERVER) {
        char k[16];
        snprintf(k, sizeof k, "%s", span_kind_name(s->kind));
        for (char *p = k; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        json_object_set_new(o, "kind", json_string(k));
    }
    json_t *le = json_object();
    json_object_set_new(le, "serviceName", json_string(s->service));
    struct in_addr a;
    if (inet_pton(AF_INET, s->node, &a) == 1)
        json_object_set_new(le, "ipv4", json_string(s->node));
    json_object_set_new(o, "localEndpoint", le);
    json_t *tags = json_object(), *attrs = json_loads(s->attrs, 0, NULL), *v;
    const char *k;
    json_object_foreach(attrs, k, v) {
        if (!strcmp(k, "annotations") && json_is_array(v)) {
            json_object_set(o, "annotations", v);
            continue;
        }
        if (json_is_string(v)) {
            json_object_set(tags, k, v);
        } else {
            char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            if (t)
                json_object_set_new(tags, k, json_string(t));
            free(t);
        }
    }
    json_decref(attrs);
    if (s->status == SPAN_STATUS_ERROR && !json_object_get(tags, "error"))
        json_object_set_new(tags, "error", json_string("true"));
    if (s->skew_us) {
        char b[32];
        snprintf(b, sizeof b, "%lld", (long long)s->skew_us);
        json_object_set_new(tags, "sonde.skew_us", json_string(b));
    }
    json_object_set_new(o, "tags", tags);
    return o;
}

int fmt_zipkin_json(const struct span *spans, size_t n, char **out, size_t *len)
{
    json_t *arr = json_array();
    if (!arr)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, encode(&spans[i]));
    *out = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (!*out)
        return -ENOMEM;
    *len = strlen(*out);
    return 0;
}
