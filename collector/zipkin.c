#include "collector/zipkin.h"

#include "collector/attrs.h"
#include "common/err.h"

#include <errno.h>
#include <stdio.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int64_t num_us(json_t *v)
{
    if (json_is_integer(v))
        return json_integer_value(v) < 0 ? 0 : json_integer_value(v);
    if (json_is_real(v))
        return json_real_value(v) > 0 && json_real_value(v) < 9e18 ? (int64_t)json_real_value(v) : 0;
    if (json_is_string(v))
        return strtoll(json_string_value(v), NULL, 10);
    return 0;
}

static const char *jstr(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int decode_span(json_t *js, struct span_batch *out, size_t max_spans)
{
    if (!json_is_object(js))
        return span_batch_reject(out, "span is not an object");
    json_t *tid = json_object_get(js, "traceId"), *sid = json_object_get(js, "id");
    json_t *pid = json_object_get(js, "parentId");
    char t[33], s[17], p[17] = "";
    if (!json_is_string(tid) || !json_is_string(sid) ||
        span_parse_hex_id(t, json_string_value(tid), json_string_length(tid), 32, 1) ||
        span_parse_hex_id(s, json_string_value(sid), json_string_length(sid), 16, 1) ||
        (json_is_string(pid) && json_string_length(pid) &&
         span_parse_hex_id(p, json_string_value(pid), json_string_length(pid), 16, 1))) {
        return span_batch_reject(out, "invalid trace or span id");
    }
    int rc;
    struct span *sp = span_batch_take(out, max_spans, &rc);
    if (!sp)
        return rc;
    memcpy(sp->trace_id, t, sizeof t);
    memcpy(sp->span_id, s, sizeof s);
    memcpy(sp->parent_id, p, sizeof p);
    json_t *le = json_object_get(js, "localEndpoint");
    const char *svc = jstr(le, "serviceName");
    const char *node = attrs_pick_node(jstr(le, "ipv4"), jstr(le, "ipv6"), NULL, svc);
    const char *name = jstr(js, "name");
    if (!(sp->name = span_batch_strdup(out, name ? name : "", (size_t)-1)) ||
        !(sp->service = span_batch_strdup(out, svc ? svc : "", (size_t)-1)) ||
        !(sp->node = span_batch_strdup(out, node, (size_t)-1)))
        return -ENOMEM;
    const char *kind = jstr(js, "kind");
    sp->kind = kind ? span_kind_from_name(kind) : SPAN_KIND_INTERNAL;
    sp->shared = json_is_true(json_object_get(js, "shared"));
    sp->start_us = num_us(json_object_get(js, "timestamp"));
    int64_t dur = num_us(json_object_get(js, "duration"));
    sp->end_us = sp->start_us + (dur > 0 ? dur : 0);

    json_t *attrs = json_object();
    if (!attrs)
        return -ENOMEM;
    json_t *tags = json_object_get(js, "tags"), *v;
    const char *k;
    json_object_foreach(tags, k, v) {
        if (json_is_string(v) || json_is_number(v) || json_is_boolean(v))
            json_object_set(attrs, k, v);
        if (!strcmp(k, "error"))
            sp->status = SPAN_STATUS_ERROR;
    }
    json_t *ann = json_object_get(js, "annotations");
    if (json_is_array(ann) && json_array_size(ann))
        json_object_set(attrs, "annotations", ann);
    json_t *re = json_object_get(js, "remoteEndpoint");
    if (json_is_object(re) && jstr(re, "serviceName"))
        json_object_set(attrs, "peer.service", json_object_get(re, "serviceName"));
    return span_set_attrs_json(out, sp, attrs);
}

int zipkin_decode(const char *buf, size_t len, struct span_batch *out, size_t max_spans,
                  char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(buf, len, 0, &je);
    if (!root)
        return se_fail(err, errlen, -EINVAL, "malformed Zipkin JSON: %s (line %d)", je.text, je.line);
    int rc = 0;
    if (!json_is_array(root)) {
        rc = se_fail(err, errlen, -EINVAL, "malformed Zipkin JSON: expected an array of spans");
        goto out;
    }
    size_t i;
    json_t *sp;
    json_array_foreach(root, i, sp) {
        if ((rc = decode_span(sp, out, max_spans)))
            goto out;
    }
out:
    json_decref(root);
    if (rc == -ENOMEM)
        se_fail(err, errlen, rc, "out of memory");
    return rc;
}
