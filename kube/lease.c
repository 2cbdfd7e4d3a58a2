/* SPDX-License-Identifier: Apache-2.0 */
/* Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics: one holder at a time, decided by
 * the API server's resourceVersion precondition on every write; a candidate takes a lease over only after it saw
 * it unchanged for a whole leaseDurationSeconds of its own clock (no comparison of clocks across machines); a
 * leader that could not renew within renew_deadline stops leading before anyone else may take over; a leader that
 * exits gives the lease back (holderIdentity ""), so that the next one does not wait. Everything runs on the
 * client's loop: one request at a time, GET then CREATE or UPDATE, every retry_ms. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

#include "common/json-util.h"
#include "common/kname.h"
#include "kube/kube-priv.h"

struct KubeLeader {
        KubeClient *c;
        char *ns, *name, *id;
        unsigned lease_ms, renew_deadline_ms, retry_ms;
        KubeLeaderOps ops;
        void *userdata;
        EventSource *timer;
        KubeOp *op;
        bool leading, released;
        char *holder;          /* the holder last seen ("" none) */
        char *observed_key;    /* holder + renewTime + resourceVersion last seen: a change restarts the clock */
        uint64_t observed_ms;  /* when it last changed (monotonic) */
        uint64_t renewed_ms;   /* this candidate's last successful write */
        unsigned transitions;  /* leaseTransitions last seen */
};

static uint64_t mono_ms(void) {
        return now_usec() / 1000;
}

/* MicroTime: RFC 3339 with microseconds, UTC. */
static void micro_time(char buf[static 40]) {
        uint64_t us = realtime_usec();
        time_t t = (time_t) (us / 1000000);
        struct tm tm;
        gmtime_r(&t, &tm);
        size_t n = strftime(buf, 40, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, 40 - n, ".%06uZ", (unsigned) (us % 1000000));
}

static void set_holder(KubeLeader *l, const char *holder) {
        holder = holder ? holder : "";
        if (streq_ptr(l->holder, holder))
                return;
        char *h = strdup(holder);
        if (!h)
                return;
        free(l->holder);
        l->holder = h;
        if (l->ops.new_leader)
                l->ops.new_leader(h, l->userdata);
}

static void stop_leading(KubeLeader *l, const char *why) {
        if (!l->leading)
                return;
        l->leading = false;
        log_warning("lease %s/%s: %s stopped leading: %s", l->ns, l->name, l->id, why);
        if (l->ops.stopped)
                l->ops.stopped(l->userdata);
}

static void start_leading(KubeLeader *l) {
        l->renewed_ms = mono_ms();
        set_holder(l, l->id);
        if (l->leading)
                return;
        l->leading = true;
        log_notice("lease %s/%s: %s is the leader", l->ns, l->name, l->id);
        if (l->ops.started)
                l->ops.started(l->userdata);
}

static void on_written(KubeClient *c, int r, json_t *obj, const KvErr *e, void *userdata) {
        (void) c;
        (void) obj;
        KubeLeader *l = userdata;
        l->op = NULL;
        if (r >= 0) {
                start_leading(l);
                return;
        }
        /* -EBUSY (409 Conflict) / -EEXIST: another candidate wrote first; it is seen on the next GET */
        if (r != -EBUSY && r != -EEXIST)
                log_debug("lease %s/%s: write failed: %s", l->ns, l->name, e && e->msg[0] ? e->msg : strerror(-r));
}

static json_t *lease_spec(KubeLeader *l, bool acquire, unsigned transitions) {
        char now[40];
        micro_time(now);
        json_t *spec = json_pack("{s:s, s:I, s:s, s:I}", "holderIdentity", l->id, "leaseDurationSeconds",
                                 (json_int_t) ((l->lease_ms + 999) / 1000), "renewTime", now, "leaseTransitions",
                                 (json_int_t) transitions);
        if (spec && acquire && json_object_set_new(spec, "acquireTime", json_string(now)) < 0) {
                json_decref(spec);
                return NULL;
        }
        return spec;
}

static void write_lease(KubeLeader *l, json_t *current) {
        KvErr e = {};
        _cleanup_json_ json_t *body = NULL;
        KubeRequest req = { .ref = { "coordination.k8s.io/v1", "leases", l->ns, NULL } };
        if (!current) {
                req.verb = KUBE_CREATE;
                body = json_pack("{s:s, s:s, s:{s:s, s:s}, s:o*}", "apiVersion", "coordination.k8s.io/v1", "kind", "Lease",
                                 "metadata", "name", l->name, "namespace", l->ns, "spec", lease_spec(l, true, 0));
        } else {
                json_t *spec = json_object_get(current, "spec");
                bool ours = streq_ptr(json_string_value(json_object_get(spec, "holderIdentity")), l->id);
                json_t *tr = json_object_get(spec, "leaseTransitions");
                unsigned transitions = json_is_integer(tr) ? (unsigned) json_integer_value(tr) : 0;
                req.verb = KUBE_UPDATE;
                req.ref.name = l->name;
                body = json_deep_copy(current); /* keeps metadata.resourceVersion: the precondition */
                json_t *ns = lease_spec(l, !ours, ours ? transitions : transitions + 1);
                if (body && ns && ours) /* a renewal keeps the acquireTime */
                        json_object_set(ns, "acquireTime", json_object_get(spec, "acquireTime"));
                if (!body || !ns || json_object_set_new(body, "spec", ns) < 0) {
                        json_decref(ns);
                        return;
                }
        }
        req.body = body;
        if (body && kube_request(l->c, &req, on_written, l, &l->op, &e) < 0)
                log_debug("lease %s/%s: %s", l->ns, l->name, e.msg);
}

static void on_got(KubeClient *c, int r, json_t *obj, const KvErr *e, void *userdata) {
        (void) c;
        KubeLeader *l = userdata;
        l->op = NULL;
        uint64_t now = mono_ms();
        if (r == -ENOENT) {
                write_lease(l, NULL);
                return;
        }
        if (r < 0) {
                log_debug("lease %s/%s: get failed: %s", l->ns, l->name, e && e->msg[0] ? e->msg : strerror(-r));
                return;
        }
        json_t *spec = json_object_get(obj, "spec");
        const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
        const char *renew = json_string_value(json_object_get(spec, "renewTime"));
        const char *rv = json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
        _cleanup_free_ char *key = NULL;
        if (asprintf(&key, "%s|%s|%s", holder ? holder : "", renew ? renew : "", rv ? rv : "") < 0)
                return;
        if (!streq_ptr(key, l->observed_key)) {
                free(l->observed_key);
                l->observed_key = TAKE_PTR(key);
                l->observed_ms = now;
        }
        set_holder(l, holder);
        bool free_ = !holder || !*holder;
        if (!free_ && !streq(holder, l->id) && l->observed_ms + l->lease_ms > now) {
                stop_leading(l, "another candidate holds the lease"); /* someone took it over */
                return;
        }
        write_lease(l, obj); /* ours: renew; free or expired: take it */
}

static int on_tick(EventSource *s, void *userdata) {
        (void) s;
        KubeLeader *l = userdata;
        if (l->leading && mono_ms() - l->renewed_ms > l->renew_deadline_ms)
                stop_leading(l, "the lease was not renewed within the renew deadline");
        if (l->op || l->released)
                return 0;
        KvErr e = {};
        KubeRequest req = { .verb = KUBE_GET, .ref = { "coordination.k8s.io/v1", "leases", l->ns, l->name } };
        if (kube_request(l->c, &req, on_got, l, &l->op, &e) < 0)
                log_debug("lease %s/%s: %s", l->ns, l->name, e.msg);
        return 0;
}

int kube_leader_new(KubeClient *c, const KubeLeaderConfig *cfg, const KubeLeaderOps *ops, void *userdata,
                    KubeLeader **ret, KvErr *e) {
        if (!c->loop)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "leader election: the client has no event loop");
        if (!cfg->namespace || !kv_dns_label_valid(cfg->namespace))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "leader election: namespace '%.80s' is not a DNS label",
                                 cfg->namespace ? cfg->namespace : "");
        if (!cfg->name || !kv_dns_subdomain_valid(cfg->name))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "leader election: lease name '%.80s' is not a DNS subdomain", cfg->name ? cfg->name : "");
        if (!cfg->identity || !*cfg->identity || strlen(cfg->identity) > 253)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "leader election: identity must be 1..253 characters");
        unsigned lease = cfg->lease_ms ? cfg->lease_ms : 15000, renew = cfg->renew_deadline_ms ? cfg->renew_deadline_ms : 10000,
                 retry = cfg->retry_ms ? cfg->retry_ms : 2000;
        /* client-go's rule: a leader gives up before a candidate may take over, and renews several times first */
        if (renew >= lease || retry >= renew || lease % 1000)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "leader election: need retry (%u ms) < renew deadline (%u ms) < lease duration (%u ms, "
                                 "whole seconds)",
                                 retry, renew, lease);
        KubeLeader *l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        *l = (KubeLeader){ .c = c, .lease_ms = lease, .renew_deadline_ms = renew, .retry_ms = retry,
                           .userdata = userdata };
        if (ops)
                l->ops = *ops;
        if (!(l->ns = strdup(cfg->namespace)) || !(l->name = strdup(cfg->name)) || !(l->id = strdup(cfg->identity)) ||
            event_add_timer(c->loop, 1, (uint64_t) retry * 1000, on_tick, l, &l->timer) < 0) {
                kube_leader_free(l);
                return -ENOMEM;
        }
        *ret = l;
        return 0;
}

bool kube_leader_is_leader(const KubeLeader *l) {
        return l && l->leading;
}

const char *kube_leader_holder(const KubeLeader *l) {
        return l && l->holder ? l->holder : "";
}

int kube_leader_release(KubeLeader *l, KvErr *e) {
        if (!l || l->released)
                return 0;
        l->released = true;
        if (l->op) {
                kube_op_cancel(l->op);
                l->op = NULL;
        }
        if (!l->leading)
                return 0;
        l->leading = false; /* the caller is stopping: no stopped callback */
        log_info("lease %s/%s: %s gives the lease back", l->ns, l->name, l->id);
        KubeRequest get = { .verb = KUBE_GET, .ref = { "coordination.k8s.io/v1", "leases", l->ns, l->name } };
        _cleanup_json_ json_t *cur = NULL;
        int r = kube_request_sync(l->c, &get, &cur, e);
        if (r < 0)
                return r;
        json_t *spec = json_object_get(cur, "spec");
        if (!streq_ptr(json_string_value(json_object_get(spec, "holderIdentity")), l->id))
                return 0; /* someone else's by now */
        char now[40];
        micro_time(now);
        /* client-go's release: no holder, a one-second duration; the resourceVersion is the precondition */
        if (json_object_set_new(spec, "holderIdentity", json_string("")) < 0 ||
            json_object_set_new(spec, "leaseDurationSeconds", json_integer(1)) < 0 ||
            json_object_set_new(spec, "renewTime", json_string(now)) < 0)
                return -ENOMEM;
        KubeRequest put = { .verb = KUBE_UPDATE, .ref = get.ref, .body = cur };
        return kube_request_sync(l->c, &put, NULL, e);
}

KubeLeader *kube_leader_free(KubeLeader *l) {
        if (!l)
                return NULL;
        if (l->op)
                kube_op_cancel(l->op);
        event_source_free(l->timer);
        free(l->ns);
        free(l->name);
        free(l->id);
        free(l->holder);
        free(l->observed_key);
        free(l);
        return NULL;
}
