#include "formats/trace_json.h"

#include "spans/profile.h"

#include <jansson.h>
#include <stdlib.h>

json_t *trace_summary_json(const struct trace_view *v)
{
    struct trace_summary s;
    trace_summarize(v, &s);
    const char **svc = malloc((v->b.n + 1) * sizeof *svc);
    json_t *svcs = json_array();
    size_t ns = svc && svcs ? trace_services(v, svc) : 0;
    for (size_t i = 0; i < ns; i++)
        if (json_array_append_new(svcs, json_string(svc[i])))
            svcs = (json_decref(svcs), NULL);
    free(svc);
    if (!svc || !svcs) {
        json_decref(svcs);
        return NULL;
    }
    return json_pack("{sssssosIsIsI}", "trace_id", s.trace_id, "root_name", s.root_name, "services", svcs,
                     "span_count", (json_int_t)s.span_count, "start_us", (json_int_t)s.start_us, "duration_us",
                     (json_int_t)s.duration_us);
}

json_t *trace_span_profile_json(const struct span *s)
{
    if (!s->pprof)
        return json_null();
    struct sprof p;
    struct sprof_summary sum;
    char *txt = NULL;
    if (!sprof_decode(s->pprof, s->pprof_len, NULL, NULL, -1, &p, NULL, 0)) {
        sprof_summarize(&p, &sum);
        txt = sprof_summary_json(&sum);
    }
    sprof_fini(&p);
    json_t *j = txt ? json_loads(txt, 0, NULL) : NULL;
    free(txt);
    return j ? j : json_null();
}

json_t *trace_span_json(const struct span *s)
{
    json_t *a = json_loads(s->attrs, 0, NULL);
    if (!json_is_object(a)) {
        json_decref(a);
        a = json_object();
    }
    json_t *prof = trace_span_profile_json(s);
    return json_pack("{sssosssssssssIsIsIsssoso}", "span_id", s->span_id, "parent_id",
                     *s->parent_id ? json_string(s->parent_id) : json_null(), "name", s->name, "service",
                     s->service, "node", s->node, "kind", span_kind_name(s->kind), "start_us",
                     (json_int_t)span_cstart(s), "end_us", (json_int_t)span_cend(s),
                     "skew_us", (json_int_t)s->skew_us, "status", span_status_name(s->status), "attributes", a, "profile", prof);
}
