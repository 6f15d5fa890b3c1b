#include "formats/trace_chrome.h"

#include <errno.h>
#include <stdio.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int index_of(const char **names, size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(names[i], s))
            return (int)i + 1;
    names[(*n)++] = s;
    return (int)*n;
}

int fmt_chrome_trace(const struct span *spans, size_t n, char **out, size_t *len)
{
    const char **nodes = calloc(n + 1, sizeof *nodes), **svcs = calloc(n + 1, sizeof *svcs);
    json_t *root = json_object(), *ev = json_array();
    int rc = -ENOMEM;
    if (!nodes || !svcs || !root || !ev)
        goto out;
    json_object_set_new(root, "traceEvents", ev);
    json_object_set_new(root, "displayTimeUnit", json_string("ms"));
    size_t nn = 0, ns = 0;
    for (size_t i = 0; i < n; i++) {
        const struct span *s = &spans[i];
        size_t before_n = nn, before_s = ns;
        int pid = index_of(nodes, &nn, s->node), tid = index_of(svcs, &ns, s->service);
        if (nn != before_n)
            json_array_append_new(ev, json_pack("{sssssisis{ss}}", "name", "process_name", "ph", "M", "pid", pid,
                                                "tid", 0, "args", "name", *s->node ? s->node : "?"));
        if (ns != before_s || nn != before_n)
            json_array_append_new(ev, json_pack("{sssssisis{ss}}", "name", "thread_name", "ph", "M", "pid", pid,
                                                "tid", tid, "args", "name", *s->service ? s->service : "?"));
        json_t *args = json_pack("{sssssssssI}", "span_id", s->span_id, "parent_id", s->parent_id, "kind",
                                 span_kind_name(s->kind), "status", span_status_name(s->status), "skew_us",
                                 (json_int_t)s->skew_us);
        json_t *a = json_loads(s->attrs, 0, NULL);
        if (args && a)
            json_object_set_new(args, "attributes", a);
        else
            json_decref(a);
        json_array_append_new(ev, json_pack("{sssssssIsIsisiso}", "name", s->name, "cat", s->service, "ph", "X",
                                            "ts", (json_int_t)span_cstart(s), "dur",
                                            (json_int_t)(span_cend(s) - span_cstart(s)), "pid", pid, "tid", tid, "args",
                                            args ? args : json_object()));
    }
    *out = json_dumps(root, JSON_COMPACT);
    if (*out) {
        *len = strlen(*out);
        rc = 0;
    }
out:
    free(nodes);
    free(svcs);
    json_decref(root);
    return rc;
}
