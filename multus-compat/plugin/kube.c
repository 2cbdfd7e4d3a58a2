/* SPDX-License-Identifier: Apache-2.0 */
/* The API side of kvnet-multus: the pod, its NADs, and the network-status annotation written with a merge patch,
 * through netd (the conf's apiSocket: netd's `kube` verb makes the requests on the connection it keeps, so that
 * this process loads no libcurl and makes no TLS handshake) or through kube/ (the kubeconfig). Objects become
 * typed structs here. */
#include <unistd.h>

#include "common/json-util.h"
#include "common/proto.h"
#include "multus-compat/mc-priv.h"
#include "multus-compat/plugin/plugin.h"

#define API_TIMEOUT_MS 10000
#define API_RETRY_MS 15000   /* how long ADD retries a request while the API is unreachable or overloaded */
#define API_RETRY_DEL_MS 1000 /* DEL works from its cache: it waits little for the API */
#define API_RETRY_STEP_MS 250

static bool transient(int r) {
        return r == -ECONNREFUSED || r == -ECONNRESET || r == -EAGAIN || r == -EIO;
}

bool mc_api_configured(const McConfig *conf) {
        return conf->kubeconfig || conf->api_socket;
}

bool mc_api(const McPlugin *p) {
        return p->kc || p->api_fd >= 0;
}

void mc_api_set_timeout(McPlugin *p, unsigned msec) {
        p->api_timeout_ms = msec;
        if (p->kc)
                kube_client_set_timeout(p->kc, msec);
}

void mc_api_close(McPlugin *p) {
        if (p->api_fd >= 0)
                close(p->api_fd);
        p->api_fd = -1;
        p->kc = kube_client_free(p->kc);
}

static int connect_direct(McPlugin *p, KvErr *e) {
        _cleanup_(kube_config_freep) KubeConfig *cfg = NULL;
        int r;
        if (p->kc)
                return 0;
        if (!p->conf->kubeconfig)
                return kverr_set(e, KV_ERR_TRY_AGAIN, -ENOTCONN, "netd's socket '%s' cannot make the API requests and "
                                 "there is no 'kubeconfig'", p->conf->api_socket);
        if ((r = kube_config_load(p->conf->kubeconfig, &cfg, e)) < 0 ||
            (r = kube_client_new(cfg, NULL, &p->kc, e)) < 0) {
                e->code = KV_ERR_INVALID_CONFIG;
                return r;
        }
        kube_client_set_rate_limit(p->kc, 0, 0);
        kube_client_set_timeout(p->kc, p->api_timeout_ms ? p->api_timeout_ms : API_TIMEOUT_MS);
        return 0;
}

/* netd stopped serving the API (gone, an older netd, multusApi off): the kubeconfig from now on, said once in
 * the log file. */
static int netd_failed(McPlugin *p, const KvErr *why, KvErr *e) {
        if (p->api_fd >= 0)
                close(p->api_fd);
        p->api_fd = -1;
        p->api_fd_failed = true;
        mc_log_note(p, "apiSocket '%s': %s%s", p->conf->api_socket, why->msg,
                    p->conf->kubeconfig ? " (the kubeconfig instead)" : "");
        return connect_direct(p, e);
}

/* n requests through netd's `kube` verb, at once. -errno for the call itself (every request then failed). */
static int netd_many(McPlugin *p, const KubeRequest *reqs, size_t n, json_t **rets, int *rs, KvErr *errs, KvErr *e) {
        _cleanup_json_ json_t *list = json_array(), *args = NULL, *res = NULL;
        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (json_array_append_new(list, kube_request_to_json(&reqs[i])) < 0)
                        return -ENOMEM;
        if (!(args = json_pack("{s:O}", "requests", list)))
                return -ENOMEM;
        /* netd's own timeout answers first (each request's, then the reply): a little more here */
        unsigned timeout = p->api_timeout_ms ? p->api_timeout_ms : API_TIMEOUT_MS;
        int r = proto_call(p->api_fd, "kube", args, (int) timeout + 2000, &res, e);
        if (r < 0)
                return r;
        json_t *resp = json_object_get(res, "responses");
        if (json_array_size(resp) != n)
                return kverr_set(e, KV_ERR_INTERNAL, -EPROTO, "netd: 'kube' answered %zu of %zu requests",
                                 json_array_size(resp), n);
        for (size_t i = 0; i < n; i++) {
                json_t *obj = NULL;
                KvErr ie = {};
                rs[i] = kube_outcome_from_json(json_array_get(resp, i), &obj, &ie);
                if (errs)
                        errs[i] = ie;
                if (rets)
                        rets[i] = obj;
                else
                        json_decref(obj);
        }
        return 0;
}

/* n requests at once, through netd or the kubeconfig's client: rs[i], rets[i] (optional), errs[i] (optional) as
 * kube_request_sync_many() gives them. */
static int api_many(McPlugin *p, const KubeRequest *reqs, size_t n, json_t **rets, int *rs, KvErr *errs) {
        if (p->api_fd >= 0) {
                KvErr e = {};
                int r = netd_many(p, reqs, n, rets, rs, errs, &e);
                if (r >= 0)
                        return 0;
                if (r == -ENOMEM)
                        return r;
                KvErr why = e;
                kverr_clear(&e);
                if ((r = netd_failed(p, &why, &e)) < 0) {
                        for (size_t i = 0; i < n; i++) {
                                rs[i] = r;
                                if (errs)
                                        errs[i] = e;
                                if (rets)
                                        rets[i] = NULL;
                        }
                        return 0;
                }
        }
        return kube_request_sync_many(p->kc, reqs, n, rets, rs, errs);
}

int mc_kube_request_once(McPlugin *p, const KubeRequest *req, json_t **ret, KvErr *e) {
        json_t *obj = NULL;
        int rs = 0;
        KvErr err = {};
        int r = api_many(p, req, 1, &obj, &rs, &err);
        if (r < 0)
                return r;
        if (rs < 0) {
                if (e)
                        *e = err;
                return rs;
        }
        if (ret)
                *ret = obj;
        else
                json_decref(obj);
        return rs;
}

/* A request, retried every 250 ms for 15 s while the API cannot answer (connection refused or reset, 429, 5xx),
 * as Multus polls for its pod: an API server restarting must not fail the pod's network (DEL: 1 s, it does not
 * need the API). Other errors (404, 403, a bad object) are final at once. */
static int request(McPlugin *p, const KubeRequest *req, json_t **ret, KvErr *e) {
        long long deadline = (long long) (now_usec() / 1000) + (p->command == MC_CMD_DEL ? API_RETRY_DEL_MS : API_RETRY_MS);
        for (;;) {
                KvErr te = {};
                int r = mc_kube_request_once(p, req, ret, &te);
                if (r >= 0 || !transient(r) || (long long) (now_usec() / 1000) >= deadline) {
                        if (r < 0 && e)
                                *e = te;
                        return r;
                }
                usleep(API_RETRY_STEP_MS * 1000);
        }
}

/* ---- NADs read ahead: the GETs an ADD is about to make, at once (one round trip to the API for all of them),
 * their answers kept for mc_nad_get(). Only an answer is kept: a GET that could not reach the API is made again,
 * with request()'s retries, when the NAD is asked for. */

static McFetched *fetched_find(McPlugin *p, const char *ns, const char *name) {
        for (size_t i = 0; i < p->n_fetched; i++)
                if (streq(p->fetched[i].namespace_, ns) && streq(p->fetched[i].name, name))
                        return &p->fetched[i];
        return NULL;
}

void mc_fetched_free(McFetched *v, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(v[i].namespace_);
                free(v[i].name);
                json_decref(v[i].obj);
        }
        free(v);
}

/* first (optional: NULL) and a GET of every NAD of nads not read yet, at once; *ret_first, its response. */
static int get_ahead(McPlugin *p, const KubeRequest *first, const KubeRef *nads, size_t n, json_t **ret_first, KvErr *e) {
        size_t k = first ? 1 : 0, base = p->n_fetched;
        _cleanup_free_ KubeRequest *reqs = calloc(n + 1, sizeof *reqs);
        _cleanup_free_ json_t **objs = calloc(n + 1, sizeof *objs);
        _cleanup_free_ int *rs = calloc(n + 1, sizeof *rs);
        _cleanup_free_ KvErr *errs = calloc(n + 1, sizeof *errs);
        McFetched *nv = realloc(p->fetched, (base + n + 1) * sizeof *nv);
        if (!reqs || !objs || !rs || !errs || !nv)
                return -ENOMEM;
        p->fetched = nv;
        if (first)
                reqs[0] = *first;
        for (size_t i = 0; i < n; i++) {
                if (fetched_find(p, nads[i].namespace, nads[i].name)) /* asked for already (or twice in nads) */
                        continue;
                McFetched *f = &p->fetched[p->n_fetched];
                *f = (McFetched) {};
                if (!(f->namespace_ = strdup(nads[i].namespace)) || !(f->name = strdup(nads[i].name))) {
                        free(f->namespace_);
                        return -ENOMEM;
                }
                p->n_fetched++;
                reqs[k++] = (KubeRequest) { .verb = KUBE_GET, .ref = nads[i] };
        }
        int r = k ? api_many(p, reqs, k, objs, rs, errs) : 0;
        if (r < 0)
                return r;
        for (size_t i = first ? 1 : 0, j = base; i < k; i++, j++)
                if (!transient(rs[i])) {
                        p->fetched[j].r = rs[i];
                        p->fetched[j].obj = objs[i];
                        p->fetched[j].e = errs[i];
                        p->fetched[j].answered = true;
                }
        if (!first)
                return 0;
        if (transient(rs[0])) /* asked again, with the retries */
                return request(p, first, ret_first, e);
        if (rs[0] < 0 && e)
                *e = errs[0];
        if (rs[0] >= 0)
                *ret_first = objs[0];
        return rs[0];
}

int mc_nads_prefetch(McPlugin *p, const KubeRef *nads, size_t n) {
        return mc_api(p) ? get_ahead(p, NULL, nads, n, NULL, NULL) : 0;
}

int mc_kube_request(McPlugin *p, const KubeRequest *req, json_t **ret, KvErr *e) {
        return request(p, req, ret, e);
}

/* netd's socket when the conf names one (and netd served so far), else the kubeconfig's client. */
int mc_kube_connect(McPlugin *p, KvErr *e) {
        if (mc_api(p) || !mc_api_configured(p->conf))
                return 0;
        if (p->conf->api_socket && !p->api_fd_failed) {
                int r = proto_connect(p->conf->api_socket, 1000, &p->api_fd);
                if (r >= 0)
                        return 0;
                p->api_fd = -1;
                KvErr why = {};
                kverr_set(&why, KV_ERR_TRY_AGAIN, r, "netd is not reachable (%s)", strerror(-r));
                return netd_failed(p, &why, e);
        }
        return connect_direct(p, e);
}

McPod *mc_pod_free(McPod *pod) {
        if (!pod)
                return NULL;
        free(pod->namespace_);
        free(pod->name);
        free(pod->uid);
        free(pod->networks);
        free(pod->default_network);
        free(pod->network_status);
        free(pod);
        return NULL;
}

static const char *annotation(json_t *ann, const char *key) {
        json_t *v = json_object_get(ann, key);
        return json_is_string(v) ? json_string_value(v) : NULL;
}

static int pod_from_json(json_t *o, McPod *pod, KvErr *e) {
        json_t *md = NULL, *ann = NULL;
        const char *uid = NULL;
        int r;
        if ((r = json_get_object(o, "pod", "metadata", true, &md, e)) < 0 ||
            (r = json_get_string(md, "pod metadata", "uid", false, &uid, e)) < 0 ||
            (r = json_get_object(md, "pod metadata", "annotations", false, &ann, e)) < 0)
                return r;
        const char *src = annotation(ann, "kubernetes.io/config.source");
        pod->static_pod = src && !streq(src, "api");
        if (mc_strdup_opt(uid, &pod->uid) < 0 || mc_strdup_opt(annotation(ann, MC_NETWORKS_ANNOT), &pod->networks) < 0 ||
            mc_strdup_opt(annotation(ann, MC_DEFAULT_NETWORK_ANNOT), &pod->default_network) < 0 ||
            mc_strdup_opt(annotation(ann, MC_NETWORK_STATUS_ANNOT), &pod->network_status) < 0)
                return -ENOMEM;
        return 0;
}

static int pod_get(McPlugin *p, const char *ns, const char *name, const KubeRef *nads, size_t n_nads, McPod **ret,
                   KvErr *e) {
        KubeRequest req = { .verb = KUBE_GET, .ref = { "v1", "pods", ns, name } };
        _cleanup_json_ json_t *o = NULL;
        int r = n_nads ? get_ahead(p, &req, nads, n_nads, &o, e) : request(p, &req, &o, e);
        if (r < 0)
                return r;
        _cleanup_(mc_pod_freep) McPod *pod = calloc(1, sizeof *pod);
        if (!pod || !(pod->namespace_ = strdup(ns)) || !(pod->name = strdup(name)))
                return -ENOMEM;
        if ((r = pod_from_json(o, pod, e)) < 0)
                return r;
        *ret = TAKE_PTR(pod);
        return 0;
}

/* The pod of CNI_ARGS, and at the same time the clusterNetwork's NAD when it names one (add_named() asks for it
 * next; a pod's default-network override makes that GET useless, and harmless). */
int mc_pod_get(McPlugin *p, McPod **ret, KvErr *e) {
        const char *cn = p->conf->cluster_network;
        KubeRef nad = { "k8s.cni.cncf.io/v1", "network-attachment-definitions", p->conf->multus_namespace, cn };
        return pod_get(p, p->pod_ns, p->pod_name, &nad, cn && !strchr(cn, '/') ? 1 : 0, ret, e);
}

int mc_pod_get_named(McPlugin *p, const char *ns, const char *name, McPod **ret, KvErr *e) {
        return pod_get(p, ns, name, NULL, 0, ret, e);
}

int mc_nad_get(McPlugin *p, const char *ns, const char *name, McNad **ret, KvErr *e) {
        KubeRequest req = { .verb = KUBE_GET, .ref = { "k8s.cni.cncf.io/v1", "network-attachment-definitions", ns, name } };
        _cleanup_json_ json_t *o = NULL;
        McFetched *f = fetched_find(p, ns, name);
        int r;
        if (f && f->answered) { /* read ahead: its answer, once */
                f->answered = false;
                o = TAKE_PTR(f->obj);
                if ((r = f->r) < 0 && e)
                        *e = f->e;
        } else
                r = request(p, &req, &o, e);
        if (r < 0)
                return r;
        _cleanup_free_ char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!text)
                return -ENOMEM;
        return mc_nad_parse(text, strlen(text), ret, e);
}

int mc_pod_set_status(McPlugin *p, const char *ns, const char *name, const char *text, KvErr *e) {
        _cleanup_json_ json_t *body = json_pack("{s:{s:{s:o}}}", "metadata", "annotations", MC_NETWORK_STATUS_ANNOT,
                                                text ? json_string(text) : json_null());
        if (!body)
                return -ENOMEM;
        KubeRequest req = { .verb = KUBE_PATCH, .ref = { "v1", "pods", ns, name }, .body = body };
        return request(p, &req, NULL, e);
}
