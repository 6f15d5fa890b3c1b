#include "collector/attrs.h"

#include <errno.h>
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
