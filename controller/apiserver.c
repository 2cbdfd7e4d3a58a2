/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/apiserver.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <time.h>

#include "common/array.h"
#include "common/base64.h"
#include "common/fileio.h"
#include "common/json-util.h"
#include "common/log.h"
#include "common/util.h"
#include "controller/kproto.h"
#include "controller/metrics.h"
#include "controller/schema.h"
#include "controller/subresource.h"
#include "controller/table.h"
#include "controller/tls.h"

#define CTL_SERVER_VERSION "v1.28.0+kvnet"
#define CTL_KUBEVIRT_VERSION "v1.6.0+kvnet"
#define CTL_OPENAPI_TITLE "kvnet embedded API"
#define CTL_WATCH_BUF_MAX (16 * 1024 * 1024) /* events queued for one watch that does not read */
/* Budgets: open watches (each holds a connection and its buffer), and connections at all (each an fd of the
 * process, whose usual limit is 1024) */
#define CTL_WATCH_MAX 512
#define CTL_CONNECTIONS_MAX 900

typedef struct Watch Watch;

struct CtlApi {
        EventLoop *loop;
        CtlStore *store;
        struct MHD_Daemon *d;
        EventSource *io, *tick;
        char host[64];
        unsigned port;
        Watch *watches;
        unsigned n_watches, max_watches;
        unsigned ticks;
        char token[65]; /* the bearer token every request must carry ("": none asked for) */
        char *cert_pem, *key_pem; /* HTTPS (NULL: plain HTTP); cert_pem is also the kubeconfig's CA */
};

typedef struct Req {
        char *body;
        size_t len, cap;
        bool too_big;
        bool foreign_host; /* its Host header names something else than an address or localhost */
} Req;

/* label selector: k=v, k==v, k!=v, comma-separated (what kubectl -l sends for equality); and the field
 * selector spec.nodeName=X of pods (what kubelet watches its pods with) */
#define SEL_MAX 8
typedef struct Selector {
        size_t n;
        struct {
                char key[128], val[128];
                bool neg;
        } t[SEL_MAX];
        size_t nf; /* field terms other than metadata.name=/metadata.namespace= (those narrow the lookup) */
        struct {
                const char *path, *fallback; /* where the field is in the object (see selectable[]) */
                char val[254];
                bool neg;
        } f[SEL_MAX];
} Selector;

struct Watch {
        CtlApi *a;
        struct MHD_Connection *c;
        const CtlResource *res;
        char ns[64], name[254];
        bool any_ns, any_name;
        Selector sel;
        const char *table; /* events as kubectl tables of this apiVersion, or NULL */
        char version[16];  /* the objects' version, as the request named it */
        char include[16];
        uint64_t rv;
        char *buf;
        size_t len, off, cap;
        bool suspended, ended;
        Watch *next;
};

/* ---- responses ---- */

/* The status code of the response the request being handled got (0: none yet), for the metrics: the API runs on the
 * loop's thread alone, one request handled at a time. */
static unsigned answered_code;

/* Sends buf (malloc'ed, n bytes; taken in every case) with its content type. */
static enum MHD_Result send_buffer(struct MHD_Connection *c, unsigned code, char *buf, size_t n, const char *type) {
        struct MHD_Response *r = MHD_create_response_from_buffer(n, buf, MHD_RESPMEM_MUST_FREE);
        if (!r) {
                free(buf);
                return MHD_NO;
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        enum MHD_Result ret = MHD_queue_response(c, code, r);
        MHD_destroy_response(r);
        answered_code = code;
        return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned code, json_t *o /* stolen */) {
        char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (!text)
                return MHD_NO;
        return send_buffer(c, code, text, strlen(text), "application/json");
}

/* A metav1.Status failure, as kubectl prints it ("Error from server (NotFound): ..."). */
static enum MHD_Result send_status(struct MHD_Connection *c, unsigned code, const char *reason, const char *fmt, ...)
        _printf_(4, 5);
static enum MHD_Result send_status(struct MHD_Connection *c, unsigned code, const char *reason, const char *fmt, ...) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        return send_json(c, code,
                         json_pack("{s:s,s:s,s:{},s:s,s:s,s:s,s:i}", "kind", "Status", "apiVersion", "v1", "metadata",
                                   "status", "Failure", "message", msg, "reason", reason, "code", (int) code));
}

/* The store's error as a Status. An invalid object (422) also carries details.causes, which is what kubectl
 * prints ("The VirtualMachine "x" is invalid: ..."); name may be NULL (create without one). */
static enum MHD_Result send_error(struct MHD_Connection *c, int r, const KvErr *e, const CtlResource *res,
                                  const char *name) {
        const char *msg = e->msg[0] ? e->msg : strerror(-r);
        if (r == -EINVAL) {
                /* the store names the field in details when it knows it (controller/launchcheck.c): the cause
                 * then has it as Kubernetes' do, and the message what follows it */
                const char *field = e->details, *cause = msg, *at = field[0] ? strstr(msg, field) : NULL;
                char quoted[256] = "";
                if (at && strncmp(at + strlen(field), ": ", 2) == 0)
                        cause = at + strlen(field) + 2;
                else if (!field[0] && (at = strstr(msg, ": '")) && !memchr(msg, ' ', (size_t) (at - msg))) {
                        /* the store's own "verb: 'spec.field' must ..." */
                        const char *end = strchr(at + 3, '\'');
                        if (end && (size_t) (end - at - 3) < sizeof quoted && !memchr(at + 3, ' ', (size_t) (end - at - 3))) {
                                snprintf(quoted, sizeof quoted, "%.*s", (int) (end - at - 3), at + 3);
                                field = quoted;
                                cause = at + 2;
                        }
                }
                return send_json(c, MHD_HTTP_UNPROCESSABLE_CONTENT,
                                 json_pack("{s:s,s:s,s:{},s:s,s:s,s:s,s:i,s:{s:s,s:s,s:s,s:[{s:s,s:s,s:s}]}}", "kind",
                                           "Status", "apiVersion", "v1", "metadata", "status", "Failure", "message", msg,
                                           "reason", "Invalid", "code", 422, "details", "name", name ? name : "",
                                           "group", res->group, "kind", res->kind, "causes", "reason",
                                           strstr(cause, "not supported") ? "FieldValueNotSupported"
                                                                          : "FieldValueInvalid",
                                           "message", cause, "field", field));
        }
        switch (r) {
        case -ENOENT:
                return send_status(c, MHD_HTTP_NOT_FOUND, "NotFound", "%s", msg);
        case -EEXIST:
                return send_status(c, MHD_HTTP_CONFLICT, "AlreadyExists", "%s", msg);
        case -EBUSY:
                return send_status(c, MHD_HTTP_CONFLICT, "Conflict", "%s", msg);
        case -EINVAL:
                return send_status(c, MHD_HTTP_UNPROCESSABLE_CONTENT, "Invalid", "%s", msg);
        default:
                return send_status(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "InternalError", "%s", msg);
        }
}

/* ---- versions: objects are stored in the resource's preferred version, served in the one requested ---- */

/* o (an object, or a List with items; stolen) with the apiVersion of `version`: a copy when that is not the
 * stored one (the store may share o). */
static json_t *as_version(json_t *stored, const CtlResource *res, const char *version) {
        char av[128];
        if (!stored || streq(version, res->version))
                return stored;
        json_t *o = json_deep_copy(stored);
        json_decref(stored);
        if (!o)
                return NULL;
        ctl_api_version(res, version, av);
        size_t i;
        json_t *x;
        json_array_foreach(json_object_get(o, "items"), i, x) json_object_set_new(x, "apiVersion", json_string(av));
        json_object_set_new(o, "apiVersion", json_string(av));
        return o;
}

/* A body sent to `version`: its apiVersion, when given, must be that one; it becomes the preferred one (the
 * schemas of the versions served are the same for what kvnet reads). */
static int body_to_preferred(json_t *in, const CtlResource *res, const char *version, const char *verb, KvErr *e) {
        char av[128];
        json_t *v = json_object_get(in, "apiVersion");
        if (streq(version, res->version) || !v)
                return 0;
        if (!json_is_string(v) || !streq(json_string_value(v), ctl_api_version(res, version, av)))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'apiVersion' must be '%s' here, got '%.64s'",
                                 verb, av, json_is_string(v) ? json_string_value(v) : json_type_name(v));
        json_object_set_new(in, "apiVersion", json_string(ctl_api_version(res, NULL, av)));
        return 0;
}

/* ---- discovery ---- */

static json_t *group_json(const char *group) {
        /* the preferred version first (every resource's own), then the other versions served */
        json_t *versions = json_array();
        for (int alt = 0; versions && alt < 2; alt++)
                for (size_t i = 0; i < ctl_n_resources; i++) {
                        const CtlResource *r = &ctl_resources[i];
                        const char *v = alt ? r->alt_version : r->version;
                        char gv[128];
                        if (!v || !streq(r->group, group))
                                continue;
                        snprintf(gv, sizeof gv, "%s/%s", group, v);
                        bool seen = false;
                        size_t k;
                        json_t *x;
                        json_array_foreach(versions, k, x) seen |= streq_ptr(json_string_value(json_object_get(x, "version")), v);
                        if (!seen)
                                json_array_append_new(versions, json_pack("{s:s,s:s}", "groupVersion", gv, "version", v));
                }
        if (!json_array_size(versions)) {
                json_decref(versions);
                return NULL;
        }
        return json_pack("{s:s,s:o,s:O}", "name", group, "versions", versions, "preferredVersion",
                         json_array_get(versions, 0));
}

/* KubeVirt's virt-api group of subresources (controller/subresource.c), served at the versions of KubeVirt's
 * kinds: v1, preferred, and v1alpha3. */
static bool subresource_version(const char *version) {
        return streq(version, "v1") || streq(version, "v1alpha3");
}

static json_t *subresource_group_json(void) {
        return json_pack("{s:s,s:[{s:s,s:s},{s:s,s:s}],s:{s:s,s:s}}", "name", CTL_SUBRESOURCE_GROUP, "versions",
                         "groupVersion", CTL_SUBRESOURCE_GROUP "/v1", "version", "v1", "groupVersion",
                         CTL_SUBRESOURCE_GROUP "/v1alpha3", "version", "v1alpha3", "preferredVersion", "groupVersion",
                         CTL_SUBRESOURCE_GROUP "/v1", "version", "v1");
}

static json_t *groups_json(void) {
        json_t *groups = json_array();
        for (size_t i = 0; groups && i < ctl_n_resources; i++) {
                bool seen = false;
                for (size_t k = 0; k < i; k++)
                        seen |= streq(ctl_resources[k].group, ctl_resources[i].group);
                if (!seen && ctl_resources[i].group[0])
                        json_array_append_new(groups, group_json(ctl_resources[i].group));
        }
        if (groups)
                json_array_append_new(groups, subresource_group_json());
        return json_pack("{s:s,s:s,s:o}", "kind", "APIGroupList", "apiVersion", "v1", "groups",
                         groups ? groups : json_array());
}

static json_t *resources_json(const char *group, const char *version) {
        json_t *list = json_array();
        if (list && !group[0]) /* namespaces are implicit here: read-only (handle_namespaces) */
                json_array_append_new(list, json_pack("{s:s,s:s,s:b,s:s,s:[s,s],s:[s]}", "name", "namespaces",
                                                      "singularName", "namespace", "namespaced", false, "kind",
                                                      "Namespace", "verbs", "get", "list", "shortNames", "ns"));
        for (size_t i = 0; list && i < ctl_n_resources; i++) {
                const CtlResource *r = &ctl_resources[i];
                if (!streq(r->group, group) || !ctl_resource_serves(r, version))
                        continue;
                json_t *shorts = json_array();
                for (size_t k = 0; shorts && r->short_names[k]; k++)
                        json_array_append_new(shorts, json_string(r->short_names[k]));
                json_t *res = json_pack("{s:s,s:s,s:b,s:s,s:[s,s,s,s,s,s,s],s:o}", "name", r->plural, "singularName",
                                        r->singular, "namespaced", r->namespaced, "kind", r->kind, "verbs", "create",
                                        "delete", "get", "list", "patch", "update", "watch", "shortNames",
                                        shorts ? shorts : json_array());
                if (res && r->category_all)
                        json_object_set_new(res, "categories", json_pack("[s]", "all"));
                json_array_append_new(list, res);
                json_array_append_new(list, json_pack("{s:s,s:s,s:b,s:s,s:[s,s,s]}", "name", "", "singularName", "",
                                                      "namespaced", r->namespaced, "kind", r->kind, "verbs", "get",
                                                      "patch", "update"));
                json_t *sub = json_array_get(list, json_array_size(list) - 1);
                char subname[128];
                snprintf(subname, sizeof subname, "%s/status", r->plural);
                json_object_set_new(sub, "name", json_string(subname));
        }
        char gv[128];
        snprintf(gv, sizeof gv, "%s%s%s", group, group[0] ? "/" : "", version);
        return json_pack("{s:s,s:s,s:s,s:o}", "kind", "APIResourceList", "apiVersion", "v1", "groupVersion", gv,
                         "resources", list ? list : json_array());
}

/* ---- selectors ---- */

static const char *arg(struct MHD_Connection *c, const char *key) {
        return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, key);
}

static int parse_label_selector(const char *s, Selector *ret, KvErr *e) {
        *ret = (Selector){};
        if (!s || !*s)
                return 0;
        char buf[1024];
        snprintf(buf, sizeof buf, "%s", s);
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (ret->n == SEL_MAX)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "labelSelector: at most %d terms", SEL_MAX);
                char *op = strstr(t, "!=");
                bool neg = op != NULL;
                size_t oplen = 2;
                if (!op && (op = strstr(t, "==")) == NULL) {
                        op = strchr(t, '=');
                        oplen = 1;
                }
                if (!op || op == t || strpbrk(op + oplen, "=!()") || strpbrk(t, " ()"))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "labelSelector: '%.64s' is not supported (only key=value, key==value and "
                                         "key!=value)",
                                         t);
                *op = '\0';
                snprintf(ret->t[ret->n].key, sizeof ret->t[0].key, "%s", t);
                snprintf(ret->t[ret->n].val, sizeof ret->t[0].val, "%s", op + oplen);
                ret->t[ret->n].neg = neg;
                ret->n++;
        }
        return 0;
}

static bool selector_match(const Selector *sel, json_t *obj) {
        json_t *labels = json_object_get(json_object_get(obj, "metadata"), "labels");
        for (size_t i = 0; i < sel->n; i++) {
                const char *v = json_string_value(json_object_get(labels, sel->t[i].key));
                bool eq = v && streq(v, sel->t[i].val);
                if (eq == sel->t[i].neg)
                        return false;
        }
        for (size_t i = 0; i < sel->nf; i++) {
                const char *v = json_string_value(ctl_json_path(obj, sel->f[i].path));
                if ((!v || !*v) && sel->f[i].fallback)
                        v = json_string_value(ctl_json_path(obj, sel->f[i].fallback));
                if (streq(v ? v : "", sel->f[i].val) == sel->f[i].neg) /* a field not there is "" */
                        return false;
        }
        return true;
}

/* The fields a fieldSelector may name beyond metadata.name and metadata.namespace: kube-apiserver's selectable
 * fields of the core kinds served here (ToSelectableFields of pkg/registry/core/pod and .../event), with where
 * each is in the object; kubelet watches its pods by spec.nodeName, `kubectl describe` finds a pod's events by
 * involvedObject.*. An event's source is source.component, else reportingComponent. */
static const struct {
        const char *kind, *field, *path, *fallback;
} selectable[] = {
        { "Pod", "spec.nodeName", "spec.nodeName", NULL },
        { "Pod", "spec.restartPolicy", "spec.restartPolicy", NULL },
        { "Pod", "spec.schedulerName", "spec.schedulerName", NULL },
        { "Pod", "spec.serviceAccountName", "spec.serviceAccountName", NULL },
        { "Pod", "status.phase", "status.phase", NULL },
        { "Pod", "status.podIP", "status.podIPs.0.ip", NULL },
        { "Pod", "status.nominatedNodeName", "status.nominatedNodeName", NULL },
        { "Event", "involvedObject.kind", "involvedObject.kind", NULL },
        { "Event", "involvedObject.namespace", "involvedObject.namespace", NULL },
        { "Event", "involvedObject.name", "involvedObject.name", NULL },
        { "Event", "involvedObject.uid", "involvedObject.uid", NULL },
        { "Event", "involvedObject.apiVersion", "involvedObject.apiVersion", NULL },
        { "Event", "involvedObject.resourceVersion", "involvedObject.resourceVersion", NULL },
        { "Event", "involvedObject.fieldPath", "involvedObject.fieldPath", NULL },
        { "Event", "reason", "reason", NULL },
        { "Event", "reportingComponent", "reportingComponent", NULL },
        { "Event", "source", "source.component", "reportingComponent" },
        { "Event", "type", "type", NULL },
};

/* fieldSelector: terms key=value, key==value, key!=value. metadata.name= and metadata.namespace= (what kubectl
 * sends) come back in ret_name/ret_ns; the other fields the kind selects on (selectable[]) go into sel. */
static int parse_field_selector(const char *s, const CtlResource *res, const char **ret_name, const char **ret_ns,
                                Selector *sel, char buf[512], KvErr *e) {
        *ret_name = *ret_ns = NULL;
        if (!s || !*s)
                return 0;
        snprintf(buf, 512, "%s", s);
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                char *op = strchr(t, '=');
                bool neg = op && op > t && op[-1] == '!';
                char *key_end = neg ? op - 1 : op, *v = op ? op + 1 + (op[1] == '=') : NULL;
                if (!op || key_end == t)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "fieldSelector: '%.64s' is not key=value, key==value or key!=value", t);
                *key_end = '\0';
                if (!neg && streq(t, "metadata.name")) {
                        *ret_name = v;
                        continue;
                }
                if (!neg && streq(t, "metadata.namespace")) {
                        *ret_ns = v;
                        continue;
                }
                const char *path = NULL, *fallback = NULL;
                if (streq(t, "metadata.name") || streq(t, "metadata.namespace")) /* != */
                        path = streq(t, "metadata.name") ? "metadata.name" : "metadata.namespace";
                for (size_t i = 0; !path && i < ELEMENTSOF(selectable); i++)
                        if (!res->group[0] && streq(selectable[i].kind, res->kind) && streq(selectable[i].field, t)) {
                                path = selectable[i].path;
                                fallback = selectable[i].fallback;
                        }
                if (!path) {
                        char fields[768] = "metadata.name, metadata.namespace";
                        for (size_t i = 0; !res->group[0] && i < ELEMENTSOF(selectable); i++)
                                if (streq(selectable[i].kind, res->kind))
                                        snprintf(fields + strlen(fields), sizeof fields - strlen(fields), ", %s",
                                                 selectable[i].field);
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "fieldSelector: field label not supported for %s: '%.64s' (only %s)",
                                         ctl_resource_qname(res, (char[128]){ 0 }), t, fields);
                }
                if (sel->nf == SEL_MAX)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "fieldSelector: at most %d terms", SEL_MAX);
                if (strlen(v) >= sizeof sel->f[0].val)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "fieldSelector: %s '%.64s…' is too long", t,
                                         v);
                sel->f[sel->nf].path = path;
                sel->f[sel->nf].fallback = fallback;
                sel->f[sel->nf].neg = neg;
                snprintf(sel->f[sel->nf].val, sizeof sel->f[0].val, "%s", v);
                sel->nf++;
        }
        return 0;
}

/* ---- kubectl's tables (controller/table.c) ---- */

/* The Accept header asks for a table: its apiVersion (v1 or v1beta1), else NULL. */
static const char *wants_table(struct MHD_Connection *c) {
        const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
        if (!accept || !strstr(accept, "as=Table"))
                return NULL;
        return strstr(accept, "v=v1;") || strstr(accept, "v=v1,") ? "meta.k8s.io/v1" : "meta.k8s.io/v1beta1";
}

/* ---- watch ---- */

/* Queues one event line for the client, whatever the watch's filters. */
static int watch_emit(Watch *w, const char *type, json_t *stored) {
        _cleanup_json_ json_t *ev = NULL,
                              *obj = streq(type, "ERROR") ? json_incref(stored)
                                                          : as_version(json_incref(stored), w->res, w->version);
        if (!obj)
                return -ENOMEM;
        if (w->table && !streq(type, "ERROR")) {
                char rv[32];
                snprintf(rv, sizeof rv, "%llu", (unsigned long long) w->rv);
                json_t *one = json_pack("[O]", obj);
                ev = json_pack("{s:s,s:o}", "type", type, "object",
                               ctl_table(w->res, one, w->table, w->include, rv));
                json_decref(one);
        } else
                ev = json_pack("{s:s,s:O}", "type", type, "object", obj);
        _cleanup_free_ char *text = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
        if (!text)
                return -ENOMEM;
        size_t n = strlen(text);
        if (w->len + n + 1 > CTL_WATCH_BUF_MAX) {
                /* a client that stopped reading: its watch ends (it relists when it comes back) */
                w->ended = true;
                return -ENOBUFS;
        }
        int r = ARRAY_GROW(w->buf, w->cap, w->len + n + 1);
        if (r < 0)
                return r;
        memcpy(w->buf + w->len, text, n);
        w->buf[w->len + n] = '\n';
        w->len += n + 1;
        return 0;
}

/* Queues the event if the object is one the watch asked for. */
static int watch_append(Watch *w, const char *type, json_t *obj) {
        json_t *md = json_object_get(obj, "metadata");
        if ((!w->any_ns && !streq_ptr(json_string_value(json_object_get(md, "namespace")), w->ns)) ||
            (!w->any_name && !streq_ptr(json_string_value(json_object_get(md, "name")), w->name)) ||
            !selector_match(&w->sel, obj))
                return 0;
        return watch_emit(w, type, obj);
}

static int on_event(const char *type, json_t *obj, void *userdata) {
        return watch_append(userdata, type, obj);
}

static void watch_expired(Watch *w) {
        _cleanup_json_ json_t *st = json_pack("{s:s,s:s,s:{},s:s,s:s,s:s,s:i}", "kind", "Status", "apiVersion", "v1",
                                              "metadata", "status", "Failure", "message", "too old resource version",
                                              "reason", "Expired", "code", 410);
        (void) watch_emit(w, "ERROR", st);
        w->ended = true;
}

static void watch_pump(Watch *w) {
        if (w->ended)
                return;
        uint64_t rv;
        int r = ctl_store_events(w->a->store, w->res, NULL, NULL, w->rv, on_event, w, &rv);
        if (r == -ESTALE)
                watch_expired(w);
        else if (r < 0)
                w->ended = true;
        else
                w->rv = rv;
        if (w->suspended && (w->len > w->off || w->ended)) {
                w->suspended = false;
                MHD_resume_connection(w->c);
        }
}

static void on_store_change(void *userdata) {
        CtlApi *a = userdata;
        for (Watch *w = a->watches; w; w = w->next)
                watch_pump(w);
}

static ssize_t watch_read(void *cls, uint64_t pos, char *buf, size_t max) {
        Watch *w = cls;
        (void) pos;
        if (w->off < w->len) {
                size_t n = w->len - w->off < max ? w->len - w->off : max;
                memcpy(buf, w->buf + w->off, n);
                w->off += n;
                if (w->off == w->len)
                        w->off = w->len = 0;
                return (ssize_t) n;
        }
        if (w->ended)
                return MHD_CONTENT_READER_END_OF_STREAM;
        /* nothing to send: park the connection until the store changes */
        w->suspended = true;
        MHD_suspend_connection(w->c);
        return 0;
}

static void watch_free(void *cls) {
        Watch *w = cls;
        for (Watch **p = &w->a->watches; *p; p = &(*p)->next)
                if (*p == w) {
                        *p = w->next;
                        w->a->n_watches--;
                        break;
                }
        free(w->buf);
        free(w);
}

static enum MHD_Result start_watch(CtlApi *a, struct MHD_Connection *c, const CtlResource *res, const char *version,
                                   const char *ns, const char *name, const Selector *sel) {
        const char *rvs = arg(c, "resourceVersion");
        /* each watch holds a connection and a buffer for as long as its client wants: a budget, as
         * kube-apiserver's max-requests-inflight bounds the long-running ones */
        if (a->n_watches >= a->max_watches)
                return send_status(c, MHD_HTTP_TOO_MANY_REQUESTS, "TooManyRequests",
                                   "too many watches open (%u, at most %u): try again later", a->n_watches,
                                   a->max_watches);
        Watch *w = calloc(1, sizeof *w);
        if (!w)
                return MHD_NO;
        *w = (Watch){ .a = a, .c = c, .res = res, .any_ns = !ns, .any_name = !name, .sel = *sel,
                      .table = wants_table(c) };
        snprintf(w->include, sizeof w->include, "%s", arg(c, "includeObject") ? arg(c, "includeObject") : "");
        snprintf(w->ns, sizeof w->ns, "%s", ns ? ns : "");
        snprintf(w->version, sizeof w->version, "%s", version);
        snprintf(w->name, sizeof w->name, "%s", name ? name : "");
        if (!rvs || !*rvs || streq(rvs, "0")) {
                /* "start at the most recent": the current objects as ADDED, then the changes */
                _cleanup_json_ json_t *list = ctl_store_list(a->store, res, ns, name);
                size_t i;
                json_t *o;
                json_array_foreach(json_object_get(list, "items"), i, o)(void) watch_append(w, "ADDED", o);
                w->rv = ctl_store_rv(a->store);
        } else {
                char *end = NULL;
                errno = 0;
                unsigned long long v = strtoull(rvs, &end, 10);
                if (errno || !end || *end) {
                        free(w->buf);
                        free(w);
                        return send_status(c, MHD_HTTP_BAD_REQUEST, "BadRequest",
                                           "resourceVersion: '%.64s' is not a resource version", rvs);
                }
                w->rv = v;
                watch_pump(w);
        }
        struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, watch_read, w, watch_free);
        if (!r) {
                free(w->buf);
                free(w);
                return MHD_NO;
        }
        w->next = a->watches;
        a->watches = w;
        a->n_watches++;
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
        MHD_destroy_response(r);
        answered_code = MHD_HTTP_OK;
        return ret;
}

/* ---- resources ---- */

static int body_json(Req *rq, json_t **ret, KvErr *e) {
        return json_parse_object(rq->body ? rq->body : "", rq->len, CTL_BODY_MAX, "request body", ret, e);
}

static const char *content_type(struct MHD_Connection *c, char type[static 128]) {
        const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        snprintf(type, 128, "%s", ct ? ct : "");
        type[strcspn(type, "; ")] = '\0';
        return type;
}

/* The object a create, an update or a status update sends: JSON (application/json, or no type), or Kubernetes'
 * protobuf for the kinds controller/kproto.c decodes (client-go with ContentType protobuf: Multus). A Pod's
 * protobuf spec is not decoded: only the status subresource (spec_ok), which ignores it, takes one. 0, or
 * the HTTP status to answer with the message in e. */
static unsigned request_object(struct MHD_Connection *c, Req *rq, const CtlResource *res, bool spec_ok, json_t **ret,
                               KvErr *e) {
        char type[128];
        content_type(c, type);
        if (streq(type, CTL_PROTO_CONTENT_TYPE)) {
                bool spec = false;
                int r = ctl_proto_decode(res, rq->body ? rq->body : "", rq->len, ret, &spec, e);
                if (r == -EPROTONOSUPPORT)
                        return MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
                if (r < 0)
                        return MHD_HTTP_BAD_REQUEST;
                if (spec && !spec_ok) {
                        json_decref(TAKE_PTR(*ret));
                        kverr_set(e, KV_ERR_DECODE, -EPROTONOSUPPORT,
                                  "the embedded API does not decode a protobuf %s spec (only the status subresource "
                                  "takes protobuf, and ignores the spec): send application/json",
                                  res->kind);
                        return MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
                }
                return 0;
        }
        if (type[0] && !streq(type, "application/json")) {
                kverr_set(e, KV_ERR_DECODE, -EPROTONOSUPPORT, "the embedded API takes application/json%s, not '%.64s'",
                          ctl_proto_supported(res) ? " and " CTL_PROTO_CONTENT_TYPE : "", type);
                return MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
        }
        return body_json(rq, ret, e) < 0 ? MHD_HTTP_BAD_REQUEST : 0;
}

static enum MHD_Result send_request_error(struct MHD_Connection *c, unsigned code, const KvErr *e) {
        return send_status(c, code, code == MHD_HTTP_UNSUPPORTED_MEDIA_TYPE ? "UnsupportedMediaType" : "BadRequest",
                           "%s", e->msg);
}

static enum MHD_Result handle_collection(CtlApi *a, struct MHD_Connection *c, const char *method,
                                         const CtlResource *res, const char *version, const char *ns, Req *rq) {
        KvErr e = {};
        if (streq(method, "GET")) {
                Selector sel;
                const char *fname, *fns;
                char fbuf[512];
                if (parse_label_selector(arg(c, "labelSelector"), &sel, &e) < 0 ||
                    parse_field_selector(arg(c, "fieldSelector"), res, &fname, &fns, &sel, fbuf, &e) < 0)
                        return send_status(c, MHD_HTTP_BAD_REQUEST, "BadRequest", "%s", e.msg);
                if (fns && ns && !streq(fns, ns))
                        fname = "\x01"; /* a namespace that is not this one: nothing matches */
                const char *w = arg(c, "watch");
                if (w && (streq(w, "true") || streq(w, "1")))
                        return start_watch(a, c, res, version, ns ? ns : fns, fname, &sel);
                json_t *list = as_version(ctl_store_list(a->store, res, ns ? ns : fns, fname), res, version);
                json_t *items = json_object_get(list, "items");
                for (size_t i = json_array_size(items); i-- > 0;)
                        if (!selector_match(&sel, json_array_get(items, i)))
                                json_array_remove(items, i);
                const char *table = wants_table(c);
                if (table) {
                        json_t *t = ctl_table(res, items, table, arg(c, "includeObject"),
                                             json_string_value(json_object_get(json_object_get(list, "metadata"),
                                                                               "resourceVersion")));
                        json_decref(list);
                        list = t;
                }
                return send_json(c, MHD_HTTP_OK, list);
        }
        if (streq(method, "POST")) {
                if (!ns && res->namespaced)
                        return send_status(c, MHD_HTTP_METHOD_NOT_ALLOWED, "MethodNotAllowed",
                                           "create %s in a namespace (/namespaces/NS/%s)", res->plural, res->plural);
                _cleanup_json_ json_t *in = NULL, *out = NULL;
                unsigned code = request_object(c, rq, res, false, &in, &e);
                if (code)
                        return send_request_error(c, code, &e);
                int r = body_to_preferred(in, res, version, "create", &e);
                if (r >= 0)
                        r = ctl_store_create(a->store, res, ns, in, &out, &e);
                if (r < 0)
                        return send_error(c, r, &e, res,
                                          json_string_value(json_object_get(json_object_get(in, "metadata"), "name")));
                return send_json(c, MHD_HTTP_CREATED, as_version(TAKE_PTR(out), res, version));
        }
        return send_status(c, MHD_HTTP_METHOD_NOT_ALLOWED, "MethodNotAllowed", "%s is not allowed on %s", method,
                           res->plural);
}

static enum MHD_Result handle_object(CtlApi *a, struct MHD_Connection *c, const char *method, const CtlResource *res,
                                     const char *version, const char *ns, const char *name, Req *rq) {
        KvErr e = {};
        _cleanup_json_ json_t *in = NULL, *out = NULL;
        int r;
        if (streq(method, "GET")) {
                r = ctl_store_get(a->store, res, ns, name, &out);
                if (r == -ENOENT)
                        return send_status(c, MHD_HTTP_NOT_FOUND, "NotFound", "%s \"%s\" not found",
                                           ctl_resource_qname(res, (char[128]){ 0 }), name);
                if (r < 0)
                        return send_error(c, r, &e, res, name);
                out = as_version(out, res, version);
                const char *table = wants_table(c);
                if (table) {
                        char rv[32];
                        snprintf(rv, sizeof rv, "%llu", (unsigned long long) ctl_store_rv(a->store));
                        _cleanup_json_ json_t *one = json_pack("[O]", out);
                        return send_json(c, MHD_HTTP_OK, ctl_table(res, one, table, arg(c, "includeObject"), rv));
                }
                return send_json(c, MHD_HTTP_OK, TAKE_PTR(out));
        }
        if (streq(method, "DELETE")) {
                r = ctl_store_delete(a->store, res, ns, name, &out, &e);
                return r < 0 ? send_error(c, r, &e, res, name)
                             : send_json(c, MHD_HTTP_OK, as_version(TAKE_PTR(out), res, version));
        }
        if (streq(method, "PUT") || streq(method, "PATCH")) {
                char type[128];
                content_type(c, type);
                bool patch = streq(method, "PATCH"), json_patch = streq(type, "application/json-patch+json");
                if (patch && !json_patch && !streq(type, "application/merge-patch+json"))
                        return send_status(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType",
                                           "the embedded API takes JSON merge patches (application/merge-patch+json, "
                                           "kubectl patch --type merge) and JSON patches (--type json), not '%.64s'",
                                           type);
                unsigned code;
                if (!patch) {
                        if ((code = request_object(c, rq, res, false, &in, &e)))
                                return send_request_error(c, code, &e);
                } else if (json_patch) {
                        json_error_t jerr = {};
                        in = rq->len <= CTL_BODY_MAX ? json_loadb(rq->body ? rq->body : "", rq->len, 0, &jerr) : NULL;
                        if (!in)
                                return send_status(c, MHD_HTTP_BAD_REQUEST, "BadRequest",
                                                   "request body: malformed JSON patch: %s", jerr.text);
                } else if ((r = body_json(rq, &in, &e)) < 0)
                        return send_status(c, MHD_HTTP_BAD_REQUEST, "BadRequest", "%s", e.msg);
                r = json_patch ? 0 : body_to_preferred(in, res, version, patch ? "patch" : "update", &e);
                if (r >= 0)
                        r = json_patch ? ctl_store_json_patch(a->store, res, ns, name, in, &out, &e)
                            : patch    ? ctl_store_patch(a->store, res, ns, name, in, &out, &e)
                                       : ctl_store_update(a->store, res, ns, name, in, &out, &e);
                return r < 0 ? send_error(c, r, &e, res, name)
                             : send_json(c, MHD_HTTP_OK, as_version(TAKE_PTR(out), res, version));
        }
        return send_status(c, MHD_HTTP_METHOD_NOT_ALLOWED, "MethodNotAllowed", "%s is not allowed on %s/%s", method,
                           res->plural, name);
}

/* /openapi/v2: kubectl validates create/apply against it and `kubectl explain` (up to 1.26) reads it, as
 * protobuf (gnostic's openapi_v2.Document) unless it asks for JSON. The definitions of kvnet's kinds come
 * from one table (controller/schema.c); the core kinds have none, so kubectl skips validating them as it
 * does a kind it has no schema for, and the server checks every object itself (store.c). */
static enum MHD_Result send_openapi_v2(struct MHD_Connection *c) {
        const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
        if (accept && strstr(accept, "json") && !strstr(accept, "protobuf"))
                return send_json(c, MHD_HTTP_OK, ctl_openapi_v2_json(CTL_OPENAPI_TITLE, CTL_SERVER_VERSION));
        uint8_t *buf = NULL;
        size_t n = 0;
        if (ctl_openapi_v2_proto(CTL_OPENAPI_TITLE, CTL_SERVER_VERSION, &buf, &n) < 0)
                return MHD_NO;
        return send_buffer(c, MHD_HTTP_OK, (char *) buf, n, "application/octet-stream");
}

/* /openapi/v3 (what `kubectl explain` reads from 1.27 on): the index of group-versions, then one document per
 * group-version, JSON, from the same table. The hash is the server's version: the schema changes with it. */
static enum MHD_Result send_openapi_v3(struct MHD_Connection *c, char **seg, size_t n) {
        if (n == 2)
                return send_json(c, MHD_HTTP_OK, ctl_openapi_v3_index(CTL_SERVER_VERSION));
        json_t *doc = n == 5 && streq(seg[2], "apis")
                              ? ctl_openapi_v3_gv(seg[3], seg[4], CTL_OPENAPI_TITLE, CTL_SERVER_VERSION)
                              : NULL;
        if (!doc)
                return send_status(c, MHD_HTTP_NOT_FOUND, "NotFound", "the server could not find the requested resource");
        return send_json(c, MHD_HTTP_OK, doc);
}

/* Namespaces are implicit here: "default" and every namespace an object lives in. */
static json_t *namespaces(CtlApi *a) {
        json_t *names = json_object();
        json_object_set_new(names, "default", json_true());
        for (size_t i = 0; names && i < ctl_n_resources; i++) {
                _cleanup_json_ json_t *l = ctl_store_list(a->store, &ctl_resources[i], NULL, NULL);
                size_t k;
                json_t *o;
                json_array_foreach(json_object_get(l, "items"), k, o) {
                        const char *ns = json_string_value(json_object_get(json_object_get(o, "metadata"), "namespace"));
                        if (ns)
                                json_object_set_new(names, ns, json_true());
                }
        }
        return names;
}

static json_t *namespace_json(const char *name) {
        return json_pack("{s:s,s:s,s:{s:s},s:{},s:{s:s}}", "apiVersion", "v1", "kind", "Namespace", "metadata", "name",
                         name, "spec", "status", "phase", "Active");
}

static enum MHD_Result handle_namespaces(CtlApi *a, struct MHD_Connection *c, const char *name) {
        _cleanup_json_ json_t *names = namespaces(a);
        if (name) {
                if (!json_object_get(names, name))
                        return send_status(c, MHD_HTTP_NOT_FOUND, "NotFound", "namespaces \"%s\" not found", name);
                return send_json(c, MHD_HTTP_OK, namespace_json(name));
        }
        json_t *items = json_array();
        const char *k;
        json_t *v;
        json_object_foreach(names, k, v) json_array_append_new(items, namespace_json(k));
        char rv[32];
        snprintf(rv, sizeof rv, "%llu", (unsigned long long) ctl_store_rv(a->store));
        return send_json(c, MHD_HTTP_OK,
                         json_pack("{s:s,s:s,s:{s:s},s:o}", "apiVersion", "v1", "kind", "NamespaceList", "metadata",
                                   "resourceVersion", rv, "items", items));
}

/* The status subresource: GET the object; PUT (the object, of which only .status counts) or PATCH (merge
 * patch of the object, of which only .status counts) write the status alone, as for CRDs with
 * `subresources: status` — what a node agent running elsewhere reports through. */
static enum MHD_Result handle_status(CtlApi *a, struct MHD_Connection *c, const char *method, const CtlResource *res,
                                     const char *version, const char *ns, const char *name, Req *rq) {
        KvErr e = {};
        _cleanup_json_ json_t *cur = NULL, *in = NULL, *want = NULL, *out = NULL;
        int r = ctl_store_get(a->store, res, ns, name, &cur);
        if (r < 0)
                return send_status(c, MHD_HTTP_NOT_FOUND, "NotFound", "%s \"%s\" not found",
                                   ctl_resource_qname(res, (char[128]){ 0 }), name);
        if (streq(method, "GET"))
                return send_json(c, MHD_HTTP_OK, as_version(TAKE_PTR(cur), res, version));
        if (!streq(method, "PUT") && !streq(method, "PATCH"))
                return send_status(c, MHD_HTTP_METHOD_NOT_ALLOWED, "MethodNotAllowed", "%s is not allowed on %s/%s/status",
                                   method, res->plural, name);
        unsigned code;
        if (streq(method, "PATCH")) {
                if ((r = body_json(rq, &in, &e)) < 0)
                        return send_status(c, MHD_HTTP_BAD_REQUEST, "BadRequest", "%s", e.msg);
        } else if ((code = request_object(c, rq, res, true, &in, &e)))
                return send_request_error(c, code, &e);
        want = streq(method, "PATCH") ? ctl_merge_patch(cur, in) : json_incref(in);
        json_t *st = json_object_get(want, "status");
        if (st && !json_is_object(st))
                return send_status(c, MHD_HTTP_UNPROCESSABLE_CONTENT, "Invalid", "status: 'status' must be an object, got %s",
                                   json_type_name(st));
        const char *rv = json_string_value(json_object_get(json_object_get(in, "metadata"), "resourceVersion"));
        if (streq(method, "PUT") && rv && rv[0] &&
            !streq_ptr(rv, json_string_value(json_object_get(json_object_get(cur, "metadata"), "resourceVersion"))))
                return send_status(c, MHD_HTTP_CONFLICT, "Conflict",
                                   "Operation cannot be fulfilled on %s \"%s\": the object has been modified; please "
                                   "apply your changes to the latest version and try again",
                                   ctl_resource_qname(res, (char[128]){ 0 }), name);
        _cleanup_json_ json_t *empty = json_object();
        /* a pod's status update also takes its labels, annotations and finalizers (kube-apiserver's pod status
         * strategy); a custom resource's only its status (the CRD status strategy) */
        bool pod = streq(res->group, "") && streq(res->kind, "Pod");
        r = ctl_store_set_status_meta(a->store, res, ns, name, st ? st : empty,
                                      pod ? json_object_get(want, "metadata") : NULL, &e);
        if (r < 0)
                return send_error(c, r, &e, res, name);
        r = ctl_store_get(a->store, res, ns, name, &out);
        return r < 0 ? send_error(c, r, &e, res, name) : send_json(c, MHD_HTTP_OK, as_version(TAKE_PTR(out), res, version));
}

/* PUT /apis/subresources.kubevirt.io/VERSION/namespaces/NS/PLURAL/NAME/VERB: virtctl's start, stop, restart,
 * migrate, pause, unpause. 202 Accepted with no body, as virt-api answers, or a Status. */
static enum MHD_Result handle_subresource(CtlApi *a, struct MHD_Connection *c, const char *method, const char *ns,
                                          const char *plural, const char *name, const char *verb, Req *rq) {
        KvErr e = {};
        _cleanup_json_ json_t *body = NULL;
        if (!streq(method, "PUT"))
                return send_status(c, MHD_HTTP_METHOD_NOT_ALLOWED, "MethodNotAllowed",
                                   "%s is not allowed on %s/%s/%s (PUT)", method, plural, name, verb);
        if (rq->len > 0) {
                json_error_t jerr = {};
                body = json_loadb(rq->body, rq->len, JSON_DECODE_ANY, &jerr);
                if (!body)
                        return send_status(c, MHD_HTTP_BAD_REQUEST, "BadRequest",
                                           "Can not unmarshal Request body to struct, error: %s", jerr.text);
        }
        unsigned code;
        const char *reason;
        if (ctl_subresource(a->store, plural, ns, name, verb, body, &code, &reason, &e) < 0)
                return send_status(c, code, reason, "%s", e.msg);
        return send_buffer(c, MHD_HTTP_ACCEPTED, NULL, 0, "application/json");
}

#define MAX_SEGS 10

static enum MHD_Result route(CtlApi *a, struct MHD_Connection *c, const char *method, const char *url, Req *rq) {
        char path[1024];
        if (strlen(url) >= sizeof path)
                return send_status(c, MHD_HTTP_URI_TOO_LONG, "RequestURITooLong", "the path is too long");
        snprintf(path, sizeof path, "%s", url);
        char *seg[MAX_SEGS];
        size_t n = 0;
        char *save = NULL;
        for (char *t = strtok_r(path, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
                if (n == MAX_SEGS)
                        return send_status(c, MHD_HTTP_NOT_FOUND, "NotFound", "the server could not find the requested resource");
                seg[n++] = t;
        }
        bool get = streq(method, "GET");
        if (n == 1 && streq(seg[0], "version") && get)
                return send_json(c, MHD_HTTP_OK,
                                 json_pack("{s:s,s:s,s:s,s:s,s:s}", "major", "1", "minor", "28", "gitVersion",
                                           CTL_SERVER_VERSION, "platform", "linux/amd64", "goVersion", "none (kvnet, C)"));
        if (n == 1 && streq(seg[0], "api") && get)
                return send_json(c, MHD_HTTP_OK,
                                 json_pack("{s:s,s:[s],s:[{s:s,s:s}]}", "kind", "APIVersions", "versions", "v1",
                                           "serverAddressByClientCIDRs", "clientCIDR", "0.0.0.0/0", "serverAddress",
                                           a->host));
        if (n == 2 && streq(seg[0], "api") && streq(seg[1], "v1") && get)
                return send_json(c, MHD_HTTP_OK, resources_json("", "v1"));
        if (n >= 3 && n <= 4 && streq(seg[0], "api") && streq(seg[1], "v1") && streq(seg[2], "namespaces") && get &&
            !arg(c, "watch"))
                return handle_namespaces(a, c, n == 4 ? seg[3] : NULL);
        if (((n == 2 && streq(seg[0], "openapi") && streq(seg[1], "v2")) ||
             (n == 1 && streq(seg[0], "swagger-2.0.0.pb-v1"))) &&
            get)
                return send_openapi_v2(c);
        if (n >= 2 && streq(seg[0], "openapi") && streq(seg[1], "v3") && get)
                return send_openapi_v3(c, seg, n);
        if (n == 1 && streq(seg[0], "apis") && get)
                return send_json(c, MHD_HTTP_OK, groups_json());
        if (n == 2 && streq(seg[0], "apis") && get) {
                json_t *g = group_json(seg[1]);
                if (g) {
                        json_object_set_new(g, "kind", json_string("APIGroup"));
                        json_object_set_new(g, "apiVersion", json_string("v1"));
                        return send_json(c, MHD_HTTP_OK, g);
                }
        }
        if (n >= 2 && streq(seg[0], "apis") && streq(seg[1], CTL_SUBRESOURCE_GROUP)) {
                if (n == 2 && get) {
                        json_t *g = subresource_group_json();
                        if (g) {
                                json_object_set_new(g, "kind", json_string("APIGroup"));
                                json_object_set_new(g, "apiVersion", json_string("v1"));
                        }
                        return send_json(c, MHD_HTTP_OK, g);
                }
                if (n == 3 && get && subresource_version(seg[2])) {
                        char gv[64];
                        snprintf(gv, sizeof gv, "%s/%s", CTL_SUBRESOURCE_GROUP, seg[2]);
                        return send_json(c, MHD_HTTP_OK,
                                         json_pack("{s:s,s:s,s:s,s:o}", "kind", "APIResourceList", "apiVersion", "v1",
                                                   "groupVersion", gv, "resources", ctl_subresource_list()));
                }
                /* virtctl asks for it after a failed command and warns when its minor differs: the KubeVirt
                 * release whose API and subresource rules kvnet follows */
                if (n == 4 && get && subresource_version(seg[2]) && streq(seg[3], "version"))
                        return send_json(c, MHD_HTTP_OK,
                                         json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "gitVersion", CTL_KUBEVIRT_VERSION,
                                                   "gitCommit", "", "gitTreeState", "", "buildDate", "", "goVersion",
                                                   "none (kvnet, C)", "compiler", "cc", "platform", "linux/amd64"));
                if (n == 8 && subresource_version(seg[2]) && streq(seg[3], "namespaces") &&
                    ctl_subresource_known(seg[5], seg[7])) {
                        KvErr e = {};
                        if (ctl_check_name("namespace", seg[4], true, &e) < 0)
                                return send_status(c, MHD_HTTP_BAD_REQUEST, "BadRequest", "%s", e.msg);
                        return handle_subresource(a, c, method, seg[4], seg[5], seg[6], seg[7], rq);
                }
                return send_status(c, MHD_HTTP_NOT_FOUND, "NotFound", "the server could not find the requested resource");
        }
        /* /api/v1/... (the core group) and /apis/GROUP/VERSION/...: [namespaces/NS/]PLURAL[/NAME[/status]] */
        bool core = n >= 2 && streq(seg[0], "api") && streq(seg[1], "v1");
        if (core || (n >= 3 && streq(seg[0], "apis"))) {
                const char *group = core ? "" : seg[1], *version = core ? "v1" : seg[2];
                size_t k = core ? 2 : 3;
                if (n == 3 && !core && get) {
                        bool known = false;
                        for (size_t i = 0; i < ctl_n_resources; i++)
                                known |= streq(ctl_resources[i].group, group) &&
                                         ctl_resource_serves(&ctl_resources[i], version);
                        if (known)
                                return send_json(c, MHD_HTTP_OK, resources_json(group, version));
                }
                const char *ns = NULL;
                if (n >= k + 3 && streq(seg[k], "namespaces")) {
                        ns = seg[k + 1];
                        KvErr e = {};
                        if (ctl_check_name("namespace", ns, true, &e) < 0)
                                return send_status(c, MHD_HTTP_BAD_REQUEST, "BadRequest", "%s", e.msg);
                        k += 2;
                }
                const CtlResource *res = k < n ? ctl_resource_find(group, version, seg[k]) : NULL;
                /* a cluster-scoped kind has no namespaced path; a namespaced one is named within a namespace */
                if (res && ns && !res->namespaced)
                        res = NULL;
                bool named = res && (ns || !res->namespaced);
                if (res && n == k + 1)
                        return handle_collection(a, c, method, res, version, ns, rq);
                if (named && n == k + 2)
                        return handle_object(a, c, method, res, version, ns, seg[k + 1], rq);
                if (named && n == k + 3 && streq(seg[k + 2], "status"))
                        return handle_status(a, c, method, res, version, ns, seg[k + 1], rq);
        }
        return send_status(c, MHD_HTTP_NOT_FOUND, "NotFound", "the server could not find the requested resource");
}

/* A Host header that names a DNS name (not an IP address, not localhost): a web page in a browser on this machine
 * whose name was made to resolve to the API's address (DNS rebinding) would send one. Every client of the
 * embedded API reaches it by address. No Host (HTTP/1.0) is no such page. */
static bool foreign_host(struct MHD_Connection *c) {
        const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
        if (!h || !*h)
                return false;
        char host[256];
        if (strlen(h) >= sizeof host)
                return true;
        if (h[0] == '[') { /* [IPv6]:port */
                const char *end = strchr(h, ']');
                if (!end)
                        return true;
                snprintf(host, sizeof host, "%.*s", (int) (end - h - 1), h + 1);
                struct in6_addr a6;
                return inet_pton(AF_INET6, host, &a6) != 1;
        }
        snprintf(host, sizeof host, "%s", h);
        host[strcspn(host, ":")] = '\0';
        struct in_addr a4;
        return inet_pton(AF_INET, host, &a4) != 1 && strcasecmp(host, "localhost") != 0;
}

/* What anyone may ask without a credential, as kube-apiserver lets anonymous clients (system:public-info-viewer):
 * the version and the health checks. */
static bool public_path(const char *url) {
        return streq(url, "/version") || streq(url, "/healthz") || streq(url, "/livez") || streq(url, "/readyz");
}

/* The request carries "Authorization: Bearer <token>" (compared in constant time). */
static bool authorized(const CtlApi *a, struct MHD_Connection *c) {
        const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        if (!h || strncmp(h, "Bearer ", 7) != 0)
                return false;
        h += 7;
        size_t n = strlen(a->token);
        if (strlen(h) != n)
                return false;
        unsigned char diff = 0;
        for (size_t i = 0; i < n; i++)
                diff |= (unsigned char) (h[i] ^ a->token[i]);
        return diff == 0;
}

static enum MHD_Result answer(CtlApi *a, struct MHD_Connection *c, const char *method, const char *url, Req *rq);

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
        CtlApi *a = cls;
        (void) version;
        Req *rq = *con_cls;
        if (!rq) {
                rq = calloc(1, sizeof *rq);
                if (!rq)
                        return MHD_NO;
                rq->foreign_host = foreign_host(c);
                *con_cls = rq;
                return MHD_YES;
        }
        if (*upload_size) {
                if (!rq->too_big && rq->len + *upload_size > CTL_BODY_MAX)
                        rq->too_big = true;
                if (!rq->too_big) {
                        if (rq->len + *upload_size + 1 > rq->cap) {
                                size_t cap = (rq->len + *upload_size + 1) * 2;
                                if (cap > (size_t) CTL_BODY_MAX + 1)
                                        cap = (size_t) CTL_BODY_MAX + 1;
                                char *b = realloc(rq->body, cap);
                                if (!b)
                                        return MHD_NO;
                                rq->body = b;
                                rq->cap = cap;
                        }
                        memcpy(rq->body + rq->len, upload, *upload_size);
                        rq->len += *upload_size;
                        rq->body[rq->len] = '\0';
                }
                *upload_size = 0;
                return MHD_YES;
        }
        log_debug("api: %s %s", method, url);
        answered_code = 0;
        enum MHD_Result ret = answer(a, c, method, url, rq);
        ctl_metrics_api_request(ctl_store_metrics(a->store), method, answered_code);
        return ret;
}

static enum MHD_Result answer(CtlApi *a, struct MHD_Connection *c, const char *method, const char *url, Req *rq) {
        if (rq->foreign_host)
                return send_status(c, MHD_HTTP_FORBIDDEN, "Forbidden",
                                   "Host '%.64s' is not an address of this API server: the embedded API answers requests "
                                   "to an IP address or localhost only (a DNS name may be a rebinding web page)",
                                   MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST));
        if (a->token[0] && !public_path(url) && !authorized(a, c))
                return send_status(c, MHD_HTTP_UNAUTHORIZED, "Unauthorized",
                                   "Unauthorized: the embedded API wants 'Authorization: Bearer <token>' (the token "
                                   "is in the kubeconfig kvnet-controller --kubeconfig writes, and in its state "
                                   "dir's 'token')");
        if (rq->too_big)
                return send_status(c, MHD_HTTP_CONTENT_TOO_LARGE, "RequestEntityTooLarge",
                                   "the request body exceeds %d bytes", CTL_BODY_MAX);
        return route(a, c, method, url, rq);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
        (void) cls, (void) c, (void) toe;
        Req *rq = *con_cls;
        if (rq) {
                free(rq->body);
                free(rq);
        }
        *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
        (void) cls;
        char buf[512];
        vsnprintf(buf, sizeof buf, fmt, ap);
        buf[strcspn(buf, "\n")] = '\0';
        log_warning("api: %s", buf);
}

/* ---- event loop glue ---- */

static int on_mhd_io(EventSource *s, int fd, uint32_t revents, void *userdata) {
        CtlApi *a = userdata;
        (void) s, (void) fd, (void) revents;
        MHD_run(a->d);
        return 0;
}

/* MHD does not watch a suspended connection: a watch whose client went away would keep its place in the budget
 * until the next change reached it. One poll() over the suspended watches' sockets finds the ones whose peer hung
 * up; they end (resumed, then END_OF_STREAM, and MHD closes them). */
static void reap_dead_watches(CtlApi *a) {
        size_t n = 0, k = 0;
        for (Watch *w = a->watches; w; w = w->next)
                n += w->suspended;
        if (!n)
                return;
        _cleanup_free_ struct pollfd *p = calloc(n, sizeof *p);
        _cleanup_free_ Watch **ws = calloc(n, sizeof *ws);
        if (!p || !ws)
                return;
        for (Watch *w = a->watches; w && k < n; w = w->next) {
                const union MHD_ConnectionInfo *ci =
                        w->suspended ? MHD_get_connection_info(w->c, MHD_CONNECTION_INFO_CONNECTION_FD) : NULL;
                if (!ci)
                        continue;
                p[k] = (struct pollfd){ .fd = ci->connect_fd, .events = POLLRDHUP };
                ws[k++] = w;
        }
        if (poll(p, k, 0) <= 0)
                return;
        for (size_t i = 0; i < k; i++)
                if (p[i].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
                        ws[i]->ended = true;
                        ws[i]->suspended = false;
                        MHD_resume_connection(ws[i]->c);
                }
}

static int on_tick(EventSource *s, void *userdata) {
        CtlApi *a = userdata;
        (void) s;
        if (++a->ticks % 5 == 0) /* once a second */
                reap_dead_watches(a);
        MHD_run(a->d); /* connection timeouts, and the watches ended above */
        return 0;
}

static int parse_listen(const char *listen, struct sockaddr_in *sin, KvErr *e) {
        char host[64];
        const char *colon = strrchr(listen, ':');
        if (!colon || (size_t) (colon - listen) >= sizeof host)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "--listen: '%.64s' is not ADDR:PORT", listen);
        memcpy(host, listen, (size_t) (colon - listen));
        host[colon - listen] = '\0';
        char *end = NULL;
        unsigned long port = strtoul(colon + 1, &end, 10);
        *sin = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
        if (!*(colon + 1) || *end || port > 65535 || inet_pton(AF_INET, host, &sin->sin_addr) != 1)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "--listen: '%.64s' is not IPV4:PORT (port 0..65535)",
                                 listen);
        if ((ntohl(sin->sin_addr.s_addr) >> 24) != 127)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EPERM,
                                 "--listen: '%s' is not a loopback address: the embedded API has no user accounts or "
                                 "RBAC, "
                                 "so it serves 127.0.0.0/8 only",
                                 host);
        return 0;
}

void ctl_api_set_max_watches(CtlApi *a, unsigned n) {
        a->max_watches = n ? n : CTL_WATCH_MAX;
}

int ctl_api_new(EventLoop *loop, CtlStore *store, const char *listen, const char *tls_dir, CtlApi **ret, KvErr *e) {
        struct sockaddr_in sin;
        int r = parse_listen(listen, &sin, e);
        if (r < 0)
                return r;
        CtlApi *a = calloc(1, sizeof *a);
        if (!a)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "api: out of memory");
        a->loop = loop;
        a->store = store;
        a->max_watches = CTL_WATCH_MAX;
        inet_ntop(AF_INET, &sin.sin_addr, a->host, sizeof a->host);
        if (tls_dir && (r = ctl_tls_credentials(tls_dir, a->host, &a->cert_pem, &a->key_pem, e)) < 0) {
                free(a);
                return r;
        }
        unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
        if (a->cert_pem)
                a->d = MHD_start_daemon(flags | MHD_USE_TLS, ntohs(sin.sin_port), NULL, NULL, on_request, a,
                                        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, a, MHD_OPTION_SOCK_ADDR,
                                        (struct sockaddr *) &sin, MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
                                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 600, MHD_OPTION_CONNECTION_LIMIT,
                                        (unsigned) CTL_CONNECTIONS_MAX, MHD_OPTION_HTTPS_MEM_KEY, a->key_pem,
                                        MHD_OPTION_HTTPS_MEM_CERT, a->cert_pem, MHD_OPTION_END);
        else
                a->d = MHD_start_daemon(flags, ntohs(sin.sin_port), NULL, NULL, on_request, a,
                                        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, a, MHD_OPTION_SOCK_ADDR,
                                        (struct sockaddr *) &sin, MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
                                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 600, MHD_OPTION_CONNECTION_LIMIT,
                                        (unsigned) CTL_CONNECTIONS_MAX, MHD_OPTION_END);
        if (!a->d) {
                free(a->cert_pem);
                free(a->key_pem);
                free(a);
                return kverr_set_errno(e, KV_ERR_IO, -EADDRINUSE, "api: cannot listen on %s%s", listen,
                                       tls_dir ? " (with TLS)" : "");
        }
        const union MHD_DaemonInfo *pi = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_BIND_PORT);
        a->port = pi ? pi->port : ntohs(sin.sin_port);
        const union MHD_DaemonInfo *ei = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_EPOLL_FD);
        if (!ei || (r = event_add_io(loop, ei->epoll_fd, EPOLLIN, on_mhd_io, a, &a->io)) < 0 ||
            (r = event_add_timer(loop, 200000, 200000, on_tick, a, &a->tick)) < 0) {
                ctl_api_free(a);
                return kverr_set_errno(e, KV_ERR_INTERNAL, r < 0 ? r : -EINVAL, "api: cannot watch the server's sockets");
        }
        event_source_set_fd_owned(a->io, false);
        r = ctl_store_add_notify(store, on_store_change, a);
        if (r < 0) {
                ctl_api_free(a);
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "api: cannot follow the store");
        }
        *ret = a;
        return 0;
}

CtlApi *ctl_api_free(CtlApi *a) {
        if (!a)
                return NULL;
        ctl_store_remove_notify(a->store, on_store_change, a);
        if (a->io)
                event_source_free(a->io);
        if (a->tick)
                event_source_free(a->tick);
        /* ends every watch: their free callbacks unlink them */
        for (Watch *w = a->watches; w; w = w->next)
                if (w->suspended) {
                        w->suspended = false;
                        w->ended = true;
                        MHD_resume_connection(w->c);
                }
        if (a->d)
                MHD_stop_daemon(a->d);
        free(a->cert_pem);
        if (a->key_pem)
                explicit_bzero(a->key_pem, strlen(a->key_pem));
        free(a->key_pem);
        free(a);
        return NULL;
}

unsigned ctl_api_port(const CtlApi *a) {
        return a->port;
}

const char *ctl_api_scheme(const CtlApi *a) {
        return a->cert_pem ? "https" : "http";
}

const char *ctl_api_host(const CtlApi *a) {
        return a->host;
}

int ctl_api_use_token_file(CtlApi *a, const char *path, KvErr *e) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = read_file_max(path, 4096, &text, &len);
        if (r >= 0) {
                while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
                        text[--len] = '\0';
                if (len != 64 || strspn(text, "0123456789abcdef") != 64)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "token file '%s': expected 64 hex digits (delete it to have a new one made)",
                                         path);
                memcpy(a->token, text, 65);
                return 0;
        }
        if (r != -ENOENT)
                return kverr_set_errno(e, KV_ERR_IO, r, "cannot read the token file '%s'", path);
        uint8_t raw[32];
        if (getrandom(raw, sizeof raw, 0) != (ssize_t) sizeof raw)
                return kverr_set_errno(e, KV_ERR_INTERNAL, negative_errno(), "getrandom");
        char tok[65];
        for (size_t i = 0; i < sizeof raw; i++)
                snprintf(tok + 2 * i, 3, "%02x", raw[i]);
        r = write_file_atomic(path, tok, 64, true); /* 0600 */
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "cannot write the token file '%s'", path);
        memcpy(a->token, tok, 65);
        return 0;
}

int ctl_api_write_kubeconfig(const CtlApi *a, const char *path, KvErr *e) {
        _cleanup_free_ char *ca = NULL, *text = NULL;
        if (a->cert_pem && base64_encode(a->cert_pem, strlen(a->cert_pem), &ca) < 0)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        char user[96] = "{}";
        if (a->token[0])
                snprintf(user, sizeof user, "\n    token: %s", a->token);
        int n = asprintf(&text,
                         "# kubeconfig of kvnet-controller --embedded (docs/controller.md)\n"
                         "apiVersion: v1\n"
                         "kind: Config\n"
                         "clusters:\n"
                         "- name: kvnet\n"
                         "  cluster:\n"
                         "    server: %s://%s:%u\n"
                         "%s%s%s"
                         "users:\n"
                         "- name: kvnet\n"
                         "  user: %s\n"
                         "contexts:\n"
                         "- name: kvnet\n"
                         "  context:\n"
                         "    cluster: kvnet\n"
                         "    user: kvnet\n"
                         "    namespace: default\n"
                         "current-context: kvnet\n",
                         ctl_api_scheme(a), a->host, a->port, ca ? "    certificate-authority-data: " : "",
                         ca ? ca : "", ca ? "\n" : "", user);
        if (n < 0) {
                text = NULL;
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        }
        int r = write_file_atomic(path, text, (size_t) n, false);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "cannot write the kubeconfig '%s'", path);
        return 0;
}
