/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/cluster.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json-util.h"
#include "common/log.h"
#include "controller/events.h"
#include "kube/kube.h"

/* The kinds the controllers read; events are only written. */
static const char *const watched[] = { "virtualmachines", "virtualmachineinstances", "virtualmachineinstancemigrations",
                                       "network-attachment-definitions", "ipamclaims", "pods", "nodes" };
#define N_WATCHED (sizeof watched / sizeof watched[0])

typedef struct Watched {
        struct CtlCluster *c;
        const CtlResource *res;
        KubeInformer *inf;
        bool synced;
} Watched;

/* An informer's change that came while a pass ran: applied to the mirror when the pass has ended. */
typedef struct Deferred {
        const CtlResource *res;
        const char *type;
        json_t *obj;
} Deferred;

struct CtlCluster {
        EventLoop *loop;
        CtlClusterOpts o;
        char identity[300];
        KubeClient *kc; /* the loop's: informers, lease */
        KubeClient *wc; /* the passes' writes (blocking requests, on the pass's thread) */
        atomic_bool fenced; /* not the leader any more: every write is refused */
        CtlStore *store;
        Deferred *deferred;
        size_t n_deferred, cap_deferred;
        json_t *deferred_at; /* "plural/namespace/name" → its index in deferred: one change per object is kept */
        Watched w[N_WATCHED];
        size_t n_synced;
        KubeLeader *leader;
        CtlReconciler *rec;
};

static const CtlResource *resource_of(const char *plural) {
        for (size_t i = 0; i < ctl_n_resources; i++)
                if (streq(ctl_resources[i].plural, plural))
                        return &ctl_resources[i];
        return NULL;
}

/* ---- writes: the API server's */

static int remote_write(void *userdata, CtlRemoteOp op, const CtlResource *res, const char *ns, const char *name,
                        json_t *body, json_t **ret, KvErr *e) {
        CtlCluster *c = userdata;
        char gv[128];
        static const KubeVerb verbs[] = { [CTL_REMOTE_CREATE] = KUBE_CREATE, [CTL_REMOTE_UPDATE] = KUBE_UPDATE,
                                          [CTL_REMOTE_UPDATE_STATUS] = KUBE_UPDATE_STATUS,
                                          [CTL_REMOTE_DELETE] = KUBE_DELETE, [CTL_REMOTE_PATCH] = KUBE_PATCH };
        KubeRequest req = { .verb = verbs[op],
                            .ref = { ctl_api_version(res, NULL, gv), res->plural, res->namespaced ? ns : NULL,
                                     op == CTL_REMOTE_CREATE ? NULL : name },
                            .body = body,
                            /* the dependents (a VM's VMI, a VMI's pod) go with their owner */
                            .propagation = op == CTL_REMOTE_DELETE ? "Background" : NULL };
        _cleanup_json_ json_t *got = NULL;
        /* a replica that lost the lease writes nothing more, even in the middle of a pass */
        if (atomic_load(&c->fenced))
                return kverr_set(e, KV_ERR_TRY_AGAIN, -ENOLINK, "%s %s %s: not the leader any more: not sent",
                                 kube_verb_to_string(req.verb), res->plural, name ? name : "");
        int r = kube_request_sync(c->wc, &req, &got, e);
        if (r < 0) {
                log_debug("cluster: %s %s %s%s%s: %s", kube_verb_to_string(req.verb), res->plural, ns ? ns : "",
                          ns ? "/" : "", name ? name : "", e->msg);
                return r;
        }
        *ret = TAKE_PTR(got);
        return 0;
}

/* ---- reads: the informers fill the mirror */

static void mirror_warn(const char *type, const CtlResource *res, json_t *obj, int r) {
        log_warning("cluster: %s %s '%s': cannot mirror it: %s", type, res->plural,
                    json_string_value(json_object_get(json_object_get(obj, "metadata"), "name")) ?: "?", strerror(-r));
}

static void mirror(Watched *w, const char *type, json_t *obj) {
        CtlCluster *c = w->c;
        /* shared with the informer's cache: neither changes an object it holds, and jansson's reference counts
         * are atomic (the pass's thread holds references too) */
        _cleanup_json_ json_t *ref = json_incref(obj);
        if (ctl_reconciler_in_pass(c->rec)) {
                /* the pass's thread has the store: this change waits for the pass's end, and replaces one of the
                 * same object waiting already (the mirror needs the last; a long pass sees thousands) */
                json_t *md = json_object_get(obj, "metadata");
                char key[600];
                snprintf(key, sizeof key, "%s/%s/%s", w->res->plural,
                         json_string_value(json_object_get(md, "namespace")) ?: "",
                         json_string_value(json_object_get(md, "name")) ?: "");
                json_t *at = json_object_get(c->deferred_at, key);
                if (at) {
                        Deferred *d = &c->deferred[json_integer_value(at)];
                        json_decref(d->obj);
                        *d = (Deferred){ w->res, type, TAKE_PTR(ref) };
                        return;
                }
                if (c->n_deferred == c->cap_deferred) {
                        size_t cap = c->cap_deferred ? 2 * c->cap_deferred : 64;
                        Deferred *d = realloc(c->deferred, cap * sizeof *d);
                        if (!d) {
                                mirror_warn(type, w->res, obj, -ENOMEM);
                                return;
                        }
                        c->deferred = d;
                        c->cap_deferred = cap;
                }
                if (json_object_set_new(c->deferred_at, key, json_integer((json_int_t) c->n_deferred)) < 0) {
                        mirror_warn(type, w->res, obj, -ENOMEM);
                        return;
                }
                c->deferred[c->n_deferred++] = (Deferred){ w->res, type, TAKE_PTR(ref) };
                return;
        }
        int r = ctl_store_mirror(c->store, w->res, type, ref);
        if (r < 0)
                mirror_warn(type, w->res, obj, r);
}

/* On the loop, after a pass: what the informers said meanwhile. */
static void after_pass(void *userdata) {
        CtlCluster *c = userdata;
        for (size_t i = 0; i < c->n_deferred; i++) {
                Deferred *d = &c->deferred[i];
                int r = ctl_store_mirror(c->store, d->res, d->type, d->obj);
                if (r < 0)
                        mirror_warn(d->type, d->res, d->obj, r);
                json_decref(d->obj);
        }
        c->n_deferred = 0;
        json_object_clear(c->deferred_at);
}

static void on_added(KubeInformer *inf, json_t *obj, void *userdata) {
        (void) inf;
        mirror(userdata, "ADDED", obj);
}

static void on_updated(KubeInformer *inf, json_t *old, json_t *obj, void *userdata) {
        (void) inf, (void) old;
        mirror(userdata, "MODIFIED", obj);
}

static void on_deleted(KubeInformer *inf, json_t *obj, void *userdata) {
        (void) inf;
        mirror(userdata, "DELETED", obj);
}

static void on_state(KubeInformer *inf, KubeInformerState s, int error, unsigned delay_ms, const KvErr *e, void *userdata) {
        (void) inf;
        Watched *w = userdata;
        if (s == KUBE_INFORMER_DISCONNECTED || s == KUBE_INFORMER_EXPIRED)
                log_warning("cluster: %s: %s (%s), again in %u ms", w->res->plural, kube_informer_state_to_string(s),
                            e && e->msg[0] ? e->msg : strerror(-error), delay_ms);
}

static int start_controllers(CtlCluster *c) {
        if (c->rec)
                return 0;
        /* each pass on a thread of its own: its writes block on the API server, and the loop goes on with the
         * informers and the lease meanwhile */
        int r = ctl_reconciler_new_threaded(c->loop, c->store, c->o.fns, c->o.n_fns, after_pass, c, true, &c->rec);
        if (r < 0) {
                log_error_errno(r, "cluster: cannot start the controllers: %m");
                event_loop_exit(c->loop, r);
                return r;
        }
        log_notice("cluster: controllers running on %zu object(s)", ctl_store_count(c->store));
        return 0;
}

static void lead_started(void *userdata) {
        IGNORE_RESULT(start_controllers(userdata));
}

static void lead_stopped(void *userdata) {
        CtlCluster *c = userdata;
        /* another replica may act from now on: stop at once, and let the Deployment restart this one */
        log_error("cluster: lost the leader lease: exiting");
        atomic_store(&c->fenced, true);
        ctl_reconciler_free(TAKE_PTR(c->rec)); /* waits for a running pass, whose writes now fail at once */
        event_loop_exit(c->loop, -ENOLINK);
}

static void lead_holder(const char *id, void *userdata) {
        (void) userdata;
        log_info("cluster: the leader is %s", id[0] ? id : "(nobody)");
}

static void on_synced(KubeInformer *inf, void *userdata) {
        (void) inf;
        Watched *w = userdata;
        CtlCluster *c = w->c;
        if (w->synced)
                return;
        w->synced = true;
        if (++c->n_synced < N_WATCHED)
                return;
        log_info("cluster: every informer listed (%zu object(s))", ctl_store_count(c->store));
        if (!c->o.leader_elect) {
                IGNORE_RESULT(start_controllers(c));
                return;
        }
        KubeLeaderConfig lc = { .namespace = c->o.lease_namespace ? c->o.lease_namespace : "kvnet-system",
                                .name = c->o.lease_name ? c->o.lease_name : "kvnet-controller",
                                .identity = c->identity, .lease_ms = c->o.lease_ms,
                                .renew_deadline_ms = c->o.renew_deadline_ms, .retry_ms = c->o.retry_ms };
        KubeLeaderOps ops = { .started = lead_started, .stopped = lead_stopped, .new_leader = lead_holder };
        KvErr e = {};
        int r = kube_leader_new(c->kc, &lc, &ops, c, &c->leader, &e);
        if (r < 0) {
                log_error("cluster: leader election: %s", e.msg);
                event_loop_exit(c->loop, r);
        }
}

int ctl_cluster_new(EventLoop *loop, const CtlClusterOpts *o, CtlCluster **ret, KvErr *e) {
        _cleanup_(kube_config_freep) KubeConfig *cfg = NULL;
        CtlCluster *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->loop = loop;
        c->o = *o;
        if (!(c->deferred_at = json_object())) {
                free(c);
                return -ENOMEM;
        }
        if (o->identity)
                snprintf(c->identity, sizeof c->identity, "%s", o->identity);
        else {
                char host[256] = "controller";
                IGNORE_RESULT(gethostname(host, sizeof host - 1));
                snprintf(c->identity, sizeof c->identity, "%s_%d", host, (int) getpid());
        }
        int r;
        if ((r = kube_config_load(o->kubeconfig, &cfg, e)) < 0 || (r = kube_client_new(cfg, loop, &c->kc, e)) < 0 ||
            (r = kube_client_new(cfg, NULL, &c->wc, e)) < 0) {
                ctl_cluster_free(c);
                return r;
        }
        /* two buckets of that size: the writes', and the informers' and lease's (which a burst of writes must
         * not hold up: a leader that cannot renew stops leading) */
        double qps = o->api_qps > 0 ? o->api_qps : CTL_CLUSTER_QPS;
        unsigned burst = o->api_burst ? o->api_burst : CTL_CLUSTER_BURST;
        kube_client_set_rate_limit(c->kc, qps, burst);
        kube_client_set_rate_limit(c->wc, qps, burst);
        if ((r = ctl_store_open_mirror(remote_write, c, &c->store)) < 0) {
                ctl_cluster_free(c);
                return kverr_set(e, KV_ERR_INTERNAL, r, "cluster: out of memory");
        }
        if ((r = ctl_events_open(c->store, CTL_EVENT_COMPONENT, c->identity, e)) < 0) {
                ctl_cluster_free(c);
                return r;
        }
        KubeInformerOps ops = { .added = on_added, .updated = on_updated, .deleted = on_deleted, .synced = on_synced,
                                .state = on_state };
        for (size_t i = 0; i < N_WATCHED; i++) {
                Watched *w = &c->w[i];
                char gv[128];
                w->c = c;
                w->res = resource_of(watched[i]);
                KubeRef ref = { ctl_api_version(w->res, NULL, gv), w->res->plural, NULL, NULL };
                /* of the pods, the launchers only: the controllers read no other */
                KubeInformerOpts io = { .page_size = 500,
                                        .label_selector = streq(watched[i], "pods") ? "kubevirt.io=virt-launcher" : NULL };
                if ((r = kube_informer_new(c->kc, &ref, &io, &ops, w, &w->inf, e)) < 0) {
                        ctl_cluster_free(c);
                        return r;
                }
        }
        log_notice("cluster mode: API server %s, %s", cfg->server,
                   o->leader_elect ? "leader election on" : "no leader election (one replica)");
        *ret = c;
        return 0;
}

CtlCluster *ctl_cluster_free(CtlCluster *c) {
        if (!c)
                return NULL;
        /* a running pass ends first (its writes refused from now on), then the lease goes back: no write after */
        atomic_store(&c->fenced, true);
        ctl_reconciler_free(TAKE_PTR(c->rec));
        if (c->leader) {
                KvErr e = {};
                if (kube_leader_release(c->leader, &e) < 0)
                        log_warning("cluster: giving the lease back: %s", e.msg);
                kube_leader_free(c->leader);
        }
        for (size_t i = 0; i < N_WATCHED; i++)
                kube_informer_free(c->w[i].inf);
        for (size_t i = 0; i < c->n_deferred; i++)
                json_decref(c->deferred[i].obj);
        free(c->deferred);
        json_decref(c->deferred_at);
        ctl_store_free(c->store);
        kube_client_free(c->wc);
        kube_client_free(c->kc);
        free(c);
        return NULL;
}

CtlStore *ctl_cluster_store(CtlCluster *c) {
        return c ? c->store : NULL;
}
