/* SPDX-License-Identifier: Apache-2.0 */
/* A KubeRequest and its outcome as JSON: how kvnet-multus hands its API requests to netd, which makes them on the
 * connection it keeps (netd's `kube` verb). One codec for both ends. */
#include "common/json-util.h"
#include "kube/kube-priv.h"

static KubeVerb verb_from_string(const char *s) {
        for (int v = 0; v < _KUBE_VERB_MAX; v++)
                if (streq(kube_verb_to_string((KubeVerb) v), s))
                        return (KubeVerb) v;
        return _KUBE_VERB_MAX;
}

json_t *kube_request_to_json(const KubeRequest *req) {
        const char *verb = kube_verb_to_string(req->verb);
        if (!verb || !req->ref.group_version || !req->ref.resource)
                return NULL;
        json_t *o = json_pack("{s:s,s:s,s:s}", "verb", verb, "apiVersion", req->ref.group_version, "resource",
                              req->ref.resource);
        if (!o || (req->ref.namespace && json_object_set_new(o, "namespace", json_string(req->ref.namespace)) < 0) ||
            (req->ref.name && json_object_set_new(o, "name", json_string(req->ref.name)) < 0) ||
            (req->body && json_object_set(o, "body", req->body) < 0)) {
                json_decref(o);
                return NULL;
        }
        return o;
}

int kube_request_from_json(json_t *o, KubeRequest *ret, KvErr *e) {
        const char *verb = NULL, *gv = NULL, *res = NULL, *ns = NULL, *name = NULL;
        const char *key;
        json_t *v;
        int r;
        if (!json_is_object(o))
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "request: must be an object");
        json_object_foreach(o, key, v)
                if (!streq(key, "verb") && !streq(key, "apiVersion") && !streq(key, "resource") &&
                    !streq(key, "namespace") && !streq(key, "name") && !streq(key, "body"))
                        return kverr_set(e, KV_ERR_DECODE, -EINVAL,
                                         "request: unknown key '%.64s' (expected verb, apiVersion, resource, "
                                         "namespace, name, body)",
                                         key);
        if ((r = json_get_string(o, "request", "verb", true, &verb, e)) < 0 ||
            (r = json_get_string(o, "request", "apiVersion", true, &gv, e)) < 0 ||
            (r = json_get_string(o, "request", "resource", true, &res, e)) < 0 ||
            (r = json_get_string(o, "request", "namespace", false, &ns, e)) < 0 ||
            (r = json_get_string(o, "request", "name", false, &name, e)) < 0)
                return r;
        KubeVerb kv = verb_from_string(verb);
        if (kv == _KUBE_VERB_MAX)
                return kverr_set(e, KV_ERR_DECODE, -EINVAL,
                                 "request: 'verb' must be get, list, create, update, patch, update-status, "
                                 "patch-status or delete, got '%.64s'",
                                 verb);
        json_t *body = json_object_get(o, "body");
        if (body && !json_is_object(body))
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "request: 'body' must be an object");
        *ret = (KubeRequest) { .verb = kv, .ref = { gv, res, ns, name }, .body = body };
        return 0;
}

json_t *kube_outcome_to_json(int r, json_t *obj, const KvErr *e) {
        if (r >= 0)
                return json_pack("{s:O}", "object", obj ? obj : json_null());
        return json_pack("{s:{s:i,s:i,s:s}}", "error", "errno", -r, "code", e && e->code ? e->code : KV_ERR_INTERNAL,
                         "msg", e && e->msg[0] ? e->msg : strerror(-r));
}

int kube_outcome_from_json(json_t *o, json_t **ret_obj, KvErr *e) {
        json_t *err = json_object_get(o, "error");
        *ret_obj = NULL;
        if (!err) {
                json_t *obj = json_object_get(o, "object");
                if (!obj)
                        return kverr_set(e, KV_ERR_DECODE, -EPROTO, "response: neither 'object' nor 'error'");
                *ret_obj = json_incref(obj);
                return 0;
        }
        json_t *no = json_object_get(err, "errno"), *code = json_object_get(err, "code");
        json_t *msg = json_object_get(err, "msg");
        long long n = json_is_integer(no) ? json_integer_value(no) : EPROTO;
        if (n <= 0 || n > 4095)
                n = EPROTO;
        kverr_set(e, json_is_integer(code) ? (int) json_integer_value(code) : KV_ERR_INTERNAL, (int) -n, "%s",
                  json_is_string(msg) ? json_string_value(msg) : strerror((int) n));
        return (int) -n;
}
