/* SPDX-License-Identifier: Apache-2.0 */
/* netd's `kube` verb: the API requests of kvnet-multus (its pod, the NADs, network-status, IPAMClaims, Events),
 * made by netd on the connection it keeps to the API server (config multusApi), as Multus's thick plugin has its
 * daemon make them: the meta plugin, started once per pod, then needs neither libcurl (~30 libraries to load) nor
 * a TLS handshake of its own. The requests run on netd's loop (libcurl's multi interface): a slow API server
 * delays the caller, never netd.
 *
 * Only those requests, each checked here: netd's credentials must not become a proxy for whatever a caller asks
 * (the socket is root's, but a pod's namespace is refused this verb, and no caller gets more than kvnet-multus
 * needs). A pod's PATCH may set the network-status annotation and nothing else; an Event is about a pod of its own
 * namespace; an IPAMClaim's status patch is its status. */
#include "common/json-util.h"
#include "common/kname.h"
#include "common/log.h"
#include "common/proto.h"
#include "netd/core/metrics.h"
#include "netd/core/netd-priv.h"

#define API_MAX_REQUESTS 32
#define API_DEFAULT_TIMEOUT_MS 10000
#define NETWORK_STATUS_ANNOT "k8s.v1.cni.cncf.io/network-status"

static int kube_verb_index(void) {
        const Verb *v = verb_find("kube");
        return v ? verb_index(v) : -1;
}

typedef enum ApiBody { BODY_NONE, BODY_NETWORK_STATUS, BODY_EVENT, BODY_STATUS } ApiBody;

static const struct ApiRule {
        KubeVerb verb;
        const char *group_version, *resource;
        bool named; /* names one object (else a collection: create) */
        ApiBody body;
} rules[] = {
        { KUBE_GET, "v1", "pods", true, BODY_NONE },
        { KUBE_PATCH, "v1", "pods", true, BODY_NETWORK_STATUS },
        { KUBE_GET, "k8s.cni.cncf.io/v1", "network-attachment-definitions", true, BODY_NONE },
        { KUBE_GET, "k8s.cni.cncf.io/v1alpha1", "ipamclaims", true, BODY_NONE },
        { KUBE_PATCH_STATUS, "k8s.cni.cncf.io/v1alpha1", "ipamclaims", true, BODY_STATUS },
        { KUBE_CREATE, "v1", "events", false, BODY_EVENT },
};

struct NetdApiCall {
        Manager *m;
        size_t n, left;
        struct ApiSlot {
                NetdApiCall *call;
                size_t i;
                KubeOp *op;
        } *slots;
        json_t *responses;
        netd_api_done_t done;
        void *userdata;
        uint64_t t0;
};

int netd_api_config(Manager *m, json_t *o, KvErr *e) {
        const char *kc = NULL, *key;
        long long t = API_DEFAULT_TIMEOUT_MS;
        json_t *v;
        int r;
        if (!json_is_object(o))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "config: 'multusApi' must be an object ({\"kubeconfig\": PATH, \"timeoutMs\": N})");
        json_object_foreach(o, key, v)
                if (!streq(key, "kubeconfig") && !streq(key, "timeoutMs"))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "config: 'multusApi': unknown key '%.64s' (expected kubeconfig, timeoutMs)",
                                         key);
        if ((r = json_get_string(o, "config: multusApi", "kubeconfig", false, &kc, e)) < 0 ||
            (r = json_get_int(o, "config: multusApi", "timeoutMs", false, 100, 120000, &t, e)) < 0)
                return r;
        if (kc && (kc[0] != '/' || strlen(kc) >= PATH_MAX))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "config: 'multusApi.kubeconfig' must be an absolute path, got '%.128s'", kc);
        char *d = kc ? strdup(kc) : NULL;
        if (kc && !d)
                return -ENOMEM;
        free(m->api_kubeconfig);
        m->api_kubeconfig = d;
        m->api_timeout_ms = (uint32_t) t;
        m->api_enabled = true;
        return 0;
}

static int client(Manager *m, KvErr *e) {
        _cleanup_(kube_config_freep) KubeConfig *cfg = NULL;
        KvErr ke = {};
        int r;
        if (m->api_client)
                return 0;
        if (!m->loop)
                return kverr_set(e, KV_ERR_NOT_AVAILABLE, -ENOTSUP, "netd: 'kube' needs netd's event loop");
        if ((r = kube_config_load(m->api_kubeconfig, &cfg, &ke)) < 0 ||
            (r = kube_client_new(cfg, m->loop, &m->api_client, &ke)) < 0)
                return kverr_set(e, KV_ERR_NOT_AVAILABLE, r, "netd: multusApi.kubeconfig '%s': %s",
                                 m->api_kubeconfig ? m->api_kubeconfig : "(default)", ke.msg);
        /* every pod's start makes 2-4 of these: client-go's 5/s would queue a node's burst of pods */
        kube_client_set_rate_limit(m->api_client, 50, 100);
        kube_client_set_timeout(m->api_client, m->api_timeout_ms);
        return 0;
}

static bool name_ok(const char *s) {
        return s && kv_dns_subdomain_valid(s);
}

/* The body a rule allows: 0, or -EPERM / -EINVAL with e naming what is wrong. */
static int body_check(const struct ApiRule *rule, const KubeRequest *req, size_t i, KvErr *e) {
        json_t *b = req->body;
        switch (rule->body) {
        case BODY_NONE:
                if (b)
                        return kverr_set(e, KV_ERR_DECODE, -EINVAL, "kube: requests[%zu]: a %s has no 'body'", i,
                                         kube_verb_to_string(req->verb));
                return 0;
        case BODY_NETWORK_STATUS: {
                json_t *md = json_object_get(b, "metadata"), *ann = json_object_get(md, "annotations");
                json_t *st = json_object_get(ann, NETWORK_STATUS_ANNOT);
                if (!b || json_object_size(b) != 1 || json_object_size(md) != 1 || json_object_size(ann) != 1 || !st ||
                    !(json_is_string(st) || json_is_null(st)))
                        return kverr_set(e, KV_ERR_NOT_AVAILABLE, -EPERM,
                                         "kube: requests[%zu]: a pod's patch may only set "
                                         "metadata.annotations['%s']",
                                         i, NETWORK_STATUS_ANNOT);
                return 0;
        }
        case BODY_STATUS:
                if (!b || json_object_size(b) != 1 || !json_is_object(json_object_get(b, "status")))
                        return kverr_set(e, KV_ERR_NOT_AVAILABLE, -EPERM,
                                         "kube: requests[%zu]: a status patch may only carry 'status'", i);
                return 0;
        case BODY_EVENT: {
                json_t *io = json_object_get(b, "involvedObject"), *md = json_object_get(b, "metadata");
                const char *kind = json_string_value(json_object_get(io, "kind"));
                const char *ions = json_string_value(json_object_get(io, "namespace"));
                json_t *mdns = json_object_get(md, "namespace");
                if (!b || !kind || !streq(kind, "Pod") || !ions || !streq(ions, req->ref.namespace) ||
                    (mdns && !(json_is_string(mdns) && streq(json_string_value(mdns), req->ref.namespace))))
                        return kverr_set(e, KV_ERR_NOT_AVAILABLE, -EPERM,
                                         "kube: requests[%zu]: an Event must be about a Pod of namespace '%s' "
                                         "(involvedObject.kind, involvedObject.namespace)",
                                         i, req->ref.namespace);
                return 0;
        }
        }
        return -EINVAL;
}

/* requests[i] into *req, checked against the rules. */
static int request_check(json_t *o, size_t i, KubeRequest *req, KvErr *e) {
        KvErr pe = {};
        int r = kube_request_from_json(o, req, &pe);
        if (r < 0)
                return kverr_set(e, KV_ERR_DECODE, r, "kube: requests[%zu]: %s", i, pe.msg);
        const struct ApiRule *rule = NULL;
        for (size_t k = 0; k < ELEMENTSOF(rules); k++)
                if (rules[k].verb == req->verb && streq(rules[k].group_version, req->ref.group_version) &&
                    streq(rules[k].resource, req->ref.resource))
                        rule = &rules[k];
        if (!rule)
                return kverr_set(e, KV_ERR_NOT_AVAILABLE, -EPERM,
                                 "kube: requests[%zu]: %s of %.64s/%.64s is not one netd makes (only what kvnet-multus "
                                 "needs: get/patch pods, get network-attachment-definitions, get/patch-status "
                                 "ipamclaims, create events)",
                                 i, kube_verb_to_string(req->verb), req->ref.group_version, req->ref.resource);
        if (!req->ref.namespace || !kv_dns_label_valid(req->ref.namespace))
                return kverr_set(e, KV_ERR_DECODE, -EINVAL,
                                 "kube: requests[%zu]: 'namespace' must be a namespace name, got '%.64s'", i,
                                 req->ref.namespace ? req->ref.namespace : "(none)");
        if (rule->named ? !name_ok(req->ref.name) : req->ref.name != NULL)
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, rule->named ?
                                 "kube: requests[%zu]: 'name' must be an object name (DNS subdomain), got '%.64s'" :
                                 "kube: requests[%zu]: a create names no object ('name' '%.64s')",
                                 i, req->ref.name ? req->ref.name : "(none)");
        return body_check(rule, req, i, e);
}

static void call_free(NetdApiCall *call) {
        if (!call)
                return;
        json_decref(call->responses);
        free(call->slots);
        free(call);
}

static void call_finish(NetdApiCall *call) {
        Manager *m = call->m;
        netd_metrics_request(m, kube_verb_index(), 0, now_usec() - call->t0);
        json_t *res = json_pack("{s:O}", "responses", call->responses);
        netd_api_done_t done = call->done;
        void *ud = call->userdata;
        call_free(call);
        done(res ? proto_reply_ok(res) : NULL, ud);
}

static void on_done(KubeClient *c, int r, json_t *obj, const KvErr *e, void *userdata) {
        (void) c;
        struct ApiSlot *s = userdata;
        NetdApiCall *call = s->call;
        s->op = NULL;
        json_t *o = kube_outcome_to_json(r, obj, e);
        if (!o || json_array_set_new(call->responses, s->i, o) < 0)
                log_warning("kube: out of memory for a response");
        if (--call->left == 0)
                call_finish(call);
}

/* requests checked into kr (n of them). */
static int check_all(json_t *args, KubeRequest **ret, size_t *ret_n, KvErr *e) {
        json_t *reqs = json_object_get(args, "requests");
        size_t n = json_array_size(reqs);
        int r;
        if (!json_is_object(args) || !json_is_array(reqs) || n == 0 || n > API_MAX_REQUESTS)
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "kube: 'requests' must be an array of 1..%d requests",
                                 API_MAX_REQUESTS);
        if (json_object_size(args) != 1)
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "kube: the args have 'requests' only");
        _cleanup_free_ KubeRequest *kr = calloc(n, sizeof *kr);
        if (!kr)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if ((r = request_check(json_array_get(reqs, i), i, &kr[i], e)) < 0)
                        return r;
        *ret = TAKE_PTR(kr);
        *ret_n = n;
        return 0;
}

static int start(Manager *m, json_t *args, netd_api_done_t done, void *userdata, NetdApiCall **ret_call,
                 json_t **ret_reply, KvErr *e) {
        _cleanup_free_ KubeRequest *kr = NULL;
        size_t n = 0;
        int r = check_all(args, &kr, &n, e);
        if (r < 0)
                return r;
        if (!m->api_enabled)
                return kverr_set(e, KV_ERR_NOT_AVAILABLE, -ENOTSUP,
                                 "netd: 'kube' is off: netd's config has no multusApi (kvnet-multus reads the API "
                                 "itself then)");
        if ((r = client(m, e)) < 0)
                return r;
        NetdApiCall *call = calloc(1, sizeof *call);
        struct ApiSlot *slots = calloc(n, sizeof *slots);
        json_t *responses = json_array();
        if (!call || !slots || !responses) {
                free(call);
                free(slots);
                json_decref(responses);
                return -ENOMEM;
        }
        *call = (NetdApiCall) { .m = m, .n = n, .left = n, .slots = slots, .responses = responses, .done = done,
                                .userdata = userdata, .t0 = now_usec() };
        for (size_t i = 0; i < n; i++)
                if (json_array_append_new(responses, json_null()) < 0) {
                        call_free(call);
                        return -ENOMEM;
                }
        for (size_t i = 0; i < n; i++) {
                KvErr ke = {};
                slots[i] = (struct ApiSlot) { .call = call, .i = i };
                if ((r = kube_request(m->api_client, &kr[i], on_done, &slots[i], &slots[i].op, &ke)) < 0) {
                        /* not started: its outcome now (the others' come from the loop) */
                        slots[i].op = NULL;
                        json_array_set_new(responses, i, kube_outcome_to_json(r, NULL, &ke));
                        call->left--;
                }
        }
        if (call->left == 0) { /* none started: the answer now */
                json_t *res = json_pack("{s:O}", "responses", responses);
                call_free(call);
                if (!res)
                        return -ENOMEM;
                *ret_reply = proto_reply_ok(res);
                return 0;
        }
        *ret_call = call;
        return 0;
}

void netd_api_start(Manager *m, json_t *args, netd_api_done_t done, void *userdata, NetdApiCall **ret_call,
                    json_t **ret_reply) {
        KvErr e = {};
        uint64_t t0 = now_usec();
        *ret_call = NULL;
        *ret_reply = NULL;
        m->n_requests++;
        int r = start(m, args, done, userdata, ret_call, ret_reply, &e);
        if (r < 0) {
                if (!kverr_is_set(&e))
                        kverr_set_errno(&e, KV_ERR_INTERNAL, r, "netd: 'kube' failed");
                m->n_errors++;
                *ret_reply = proto_reply_error(&e);
        }
        if (!*ret_call)
                netd_metrics_request(m, kube_verb_index(), r < 0 ? (unsigned) e.code : 0, now_usec() - t0);
}

void netd_api_cancel(NetdApiCall *call) {
        if (!call)
                return;
        for (size_t i = 0; i < call->n; i++)
                if (call->slots[i].op)
                        kube_op_cancel(call->slots[i].op);
        call_free(call);
}

/* The verb's table entry, for a caller other than the socket (manager_handle: the fuzz harness, the tests): the
 * request is checked as the socket's would be, then refused (the answer comes from netd's loop). */
int do_kube(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        (void) m;
        (void) ret;
        _cleanup_free_ KubeRequest *kr = NULL;
        size_t n = 0;
        int r = check_all(args, &kr, &n, e);
        if (r < 0)
                return r;
        return kverr_set(e, KV_ERR_NOT_AVAILABLE, -ENOTSUP, "netd: 'kube' is answered over netd's socket only");
}

void netd_api_free(Manager *m) {
        m->api_client = kube_client_free(m->api_client);
        free(m->api_kubeconfig);
        m->api_kubeconfig = NULL;
}
