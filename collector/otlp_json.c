#include "collector/otlp_json.h"

#include "collector/attrs.h"
#include "common/err.h"

#include <errno.h>
#include <stdio.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* A u64 that OTLP JSON may write as a decimal string or a number. */
static int64_t ns_to_us(json_t *v)
{
    unsigned long long ns = 0;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        ns = strtoull(s, &end, 10);
        if (errno || end == s)
            return 0;
    } else if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        ns = i < 0 ? 0 : (unsigned long long)i;
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        ns = d > 0 && d < 1.8e19 ? (unsigned long long)d : 0;
    }
    return (int64_t)(ns / 1000);
}

static int kind_of(json_t *v)
{
    if (json_is_integer(v)) {
        json_int_t k = json_integer_value(v);
        return k >= 0 && k <= 5 ? (int)k : 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (!strncmp(s, "SPAN_KIND_", 10))
            return span_kind_from_name(s + 10);
    }
    return 0;
}

static int status_of(json_t *st)
{
    json_t *c = json_object_get(st, "code");
    if (json_is_integer(c)) {
        json_int_t k = json_integer_value(c);
        return k == 1 || k == 2 ? (int)k : 0;
    }
    if (json_is_string(c)) {
        const char *s = json_string_value(c);
        if (!strcmp(s, "STATUS_CODE_OK"))
            return 1;
        if (!strcmp(s, "STATUS_CODE_ERROR"))
            return 2;
    }
    return 0;
}

static int decode_span(json_t *js, const struct attrs_res *res, struct span_batch *out,
                       size_t max_spans)
{
    if (!json_is_object(js)) {
        out->rejected++;
        return 0;
    }
    json_t *tid = json_object_get(js, "traceId"), *sid = json_object_get(js, "spanId");
    json_t *pid = json_object_get(js, "parentSpanId");
    char t[33], s[17], p[17] = "";
    if (!json_is_string(tid) || !json_is_string(sid) ||
        span_parse_hex_id(t, json_string_value(tid), json_string_length(tid), 32, 0) ||
        span_parse_hex_id(s, json_string_value(sid), json_string_length(sid), 16, 0) ||
        (json_is_string(pid) && json_string_length(pid) &&
         span_parse_hex_id(p, json_string_value(pid), json_string_length(pid), 16, 0))) {
        out->rejected++;
        snprintf(out->reject_msg, sizeof out->reject_msg, "invalid trace or span id");
        return 0;
    }
    if (out->n >= max_spans) {
        out->rejected++;
        snprintf(out->reject_msg, sizeof out->reject_msg, "too many spans in one request");
        return 0;
    }
    struct span *sp = span_batch_add(out);
    if (!sp)
        return -ENOMEM;
    memcpy(sp->trace_id, t, sizeof t);
    memcpy(sp->span_id, s, sizeof s);
    memcpy(sp->parent_id, p, sizeof p);
    json_t *name = json_object_get(js, "name");
    if (json_is_string(name) &&
        !(sp->name = span_batch_strdup(out, json_string_value(name), json_string_length(name))))
        return -ENOMEM;
    sp->service = res->service;
    sp->node = res->node;
    sp->kind = kind_of(json_object_get(js, "kind"));
    sp->status = status_of(json_object_get(js, "status"));
    sp->start_us = ns_to_us(json_object_get(js, "startTimeUnixNano"));
    sp->end_us = ns_to_us(json_object_get(js, "endTimeUnixNano"));
    if (sp->end_us < sp->start_us)
        sp->end_us = sp->start_us;
    json_t *attrs = attrs_otlp_to_object(json_object_get(js, "attributes"));
    if (!attrs)
        return -ENOMEM;
    char *txt = json_dumps(attrs, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(attrs);
    if (!txt)
        return -ENOMEM;
    sp->attrs = span_batch_strdup(out, txt, (size_t)-1);
    free(txt);
    return sp->attrs ? 0 : -ENOMEM;
}

int otlp_json_decode(const char *buf, size_t len, struct span_batch *out, size_t max_spans,
                     char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(buf, len, 0, &je);
    if (!root)
        return se_fail(err, errlen, -EINVAL, "malformed OTLP JSON: %s (line %d)", je.text, je.line);
    int rc = 0;
    json_t *rss = json_object_get(root, "resourceSpans");
    if (!json_is_object(root) || (rss && !json_is_array(rss))) {
        rc = se_fail(err, errlen, -EINVAL, "malformed OTLP JSON: no resourceSpans array");
        goto out;
    }
    size_t i, j, k;
    json_t *rs, *ss, *sp;
    json_array_foreach(rss, i, rs) {
        if (!json_is_object(rs)) {
            rc = se_fail(err, errlen, -EINVAL, "malformed OTLP JSON: resourceSpans[%zu]", i);
            goto out;
        }
        struct attrs_res res;
        if ((rc = attrs_otlp_resource(json_object_get(json_object_get(rs, "resource"), "attributes"),
                                      out, &res)))
            goto out;
        json_t *sss = json_object_get(rs, "scopeSpans");
        if (!sss)
            sss = json_object_get(rs, "instrumentationLibrarySpans");
        json_array_foreach(sss, j, ss) {
            json_t *spans = json_object_get(ss, "spans");
            json_array_foreach(spans, k, sp) {
                if ((rc = decode_span(sp, &res, out, max_spans)))
                    goto out;
            }
        }
    }
out:
    json_decref(root);
    if (rc == -ENOMEM)
        se_fail(err, errlen, rc, "out of memory");
    return rc;
}
