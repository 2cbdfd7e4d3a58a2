/* SPDX-License-Identifier: Apache-2.0 */
/* Migration handoff on one node (docs/migration.md): the Handoff object, its lifecycle, the history of
 * migrations this node saw, the routeHook and the `migrations` listing. The phases themselves are in
 * target.c (the VM arrives), source.c (the VM leaves) and early.c (the target's early switchover).
 *
 * Target node: the CNI ADD of the target pod finds the VM's claim held by another node (cluster claim
 * store) and builds the identical datapath (same MAC, same addresses) as a *migration target*:
 *   - bridge binding: the tap is on the node bridge like any VM NIC. Nothing can be stolen: the paused
 *     incoming QEMU sends nothing, so every FDB on the segment still points at the source;
 *   - masquerade binding: the pod interface carries the VM's IP and MAC and would answer ARP for it, so
 *     its bridge port stays *listening* (link up, no frames either way) until activation.
 * `migration-activate` (the target launcher, the moment the VM resumes here): port forwarding, gratuitous
 * ARP / unsolicited NA from the VM's MAC (QEMU adds its own RARP announce for bridge guests), the claim
 * store makes this node the holder, the local claim becomes active.
 * Source node: `migration-source` begin / switchover / completed / aborted (the source launcher). On
 * completed the node side of the source attachment goes down at once, so the stale sandbox can neither
 * answer for the VM nor draw traffic; frames still arriving at the source node follow the FDB the
 * announcements updated, across the VXLAN segment, to the target. The source pod's CNI DEL then releases
 * the source's copy. */
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include "common/array.h"
#include "common/fileio.h"
#include "common/json-util.h"
#include "common/log.h"
#include "common/metrics-text.h"
#include "netd/migration/handoff-priv.h"

#define MIG_LOG_FILE "migrations.json"

/* ---- the object ---- */

int handoff_new(const HandoffConfig *c, const HandoffHost *host, Handoff **ret) {
        _cleanup_free_ Handoff *h = calloc(1, sizeof *h);
        if (!h)
                return -ENOMEM;
        if (snprintf(h->node_name, sizeof h->node_name, "%s", c->node_name ? c->node_name : "") >=
            (int) sizeof h->node_name)
                return -ENAMETOOLONG;
        h->state_dir = strdup(c->state_dir);
        h->route_hook = c->route_hook ? strdup(c->route_hook) : NULL;
        if (!h->state_dir || (c->route_hook && !h->route_hook)) {
                free(h->state_dir);
                free(h->route_hook);
                return -ENOMEM;
        }
        h->host = *host;
        h->loop = c->loop;
        h->cs = c->cs;
        h->ipam = c->ipam;
        h->node_address = c->node_address;
        h->redirect_grace_ms = c->redirect_grace_ms;
        *ret = TAKE_PTR(h);
        return 0;
}

Handoff *handoff_free(Handoff *h) {
        if (!h)
                return NULL;
        handoff_redirect_stop_all(h);
        h->migredir = migredir_free(h->migredir);
        if (h->sigchld)
                event_source_free(h->sigchld);
        free(h->route_hook);
        free(h->state_dir);
        free(h);
        return NULL;
}

/* ---- the attachments, through the host ---- */

typedef struct CollectCtx {
        const char *ns, *name;
        HandoffEps eps;
        size_t cap;
        int r;
} CollectCtx;

static void collect_one(Endpoint *ep, void *userdata) {
        CollectCtx *c = userdata;
        if (c->r < 0 || ep->kind != EP_KIND_VM ||
            (c->ns && (!streq(ep->vm_namespace, c->ns) || !streq(ep->vm_name, c->name))))
                return;
        int r = ARRAY_GROW(c->eps.v, c->cap, c->eps.n + 1);
        if (r < 0) {
                c->r = r;
                return;
        }
        c->eps.v[c->eps.n++] = ep;
}

int handoff_vm_endpoints(Handoff *h, const char *ns, const char *name, HandoffEps *ret) {
        CollectCtx c = { .ns = ns, .name = name };
        h->host.foreach_endpoint(h->host.userdata, collect_one, &c);
        if (c.r < 0) {
                handoff_eps_done(&c.eps);
                return c.r;
        }
        *ret = c.eps;
        return 0;
}

void handoff_eps_done(HandoffEps *eps) {
        free(eps->v);
        *eps = (HandoffEps){};
}

void handoff_vm_id(const Endpoint *ep, char *buf, size_t n) {
        snprintf(buf, n, "%s/%s", ep->vm_namespace, ep->vm_name);
}

void handoff_persist(Handoff *h, const Endpoint *ep) {
        KvErr e = {};
        if (h->host.persist(h->host.userdata, ep, &e) < 0)
                log_warning("migration: %s", e.msg);
}

/* ---- the history ---- */

const double handoff_switch_le[HANDOFF_SWITCH_BUCKETS] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.1 };

const HandoffStats *handoff_stats(const Handoff *h) {
        return &h->stats;
}

void handoff_log_ended(Handoff *h, const MigEvent *ev) {
        HandoffStats *st = &h->stats;
        if (ev->role >= 0 && ev->role < _MIG_ROLE_MAX && ev->state >= 0 && ev->state < _MIG_STATE_MAX)
                st->ended[ev->role][ev->state]++;
        if (ev->role == MIG_ROLE_TARGET && ev->state == MIG_STATE_ACTIVE && ev->activate_us >= 0) {
                kv_metrics_observe(st->switch_b, handoff_switch_le, HANDOFF_SWITCH_BUCKETS, &st->switch_n,
                                   &st->switch_sum, (double) ev->activate_us / 1e6);
        }
        if (ev->early_packets > 0)
                st->early_packets += (uint64_t) ev->early_packets;
}

static json_t *mig_event_to_json(const MigEvent *ev) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:i}", "vm", ev->vm, "role", mig_role_to_string(ev->role),
                              "state", mig_state_to_string(ev->state), "peer", ev->peer, "reason", ev->reason,
                              "started", (json_int_t) ev->started_usec, "endpoints", (int) ev->n_endpoints);
        if (!o)
                return NULL;
        if (ev->switched_usec)
                json_object_set_new(o, "switched", json_integer((json_int_t) ev->switched_usec));
        if (ev->finished_usec)
                json_object_set_new(o, "finished", json_integer((json_int_t) ev->finished_usec));
        if (ev->downtime_ms >= 0)
                json_object_set_new(o, "downtimeMs", json_integer(ev->downtime_ms));
        if (ev->total_ms >= 0)
                json_object_set_new(o, "totalMs", json_integer(ev->total_ms));
        if (ev->activate_us >= 0)
                json_object_set_new(o, "switchMicros", json_integer(ev->activate_us));
        if (ev->switchover_usec)
                json_object_set_new(o, "switchover", json_integer((json_int_t) ev->switchover_usec));
        if (ev->early_packets >= 0)
                json_object_set_new(o, "earlyPackets", json_integer(ev->early_packets));
        return o;
}

static void copy_json_str(json_t *o, const char *key, char *dst, size_t n) {
        const char *s = json_string_value(json_object_get(o, key));
        snprintf(dst, n, "%s", s ? s : "");
}

static long long json_ll(json_t *o, const char *key, long long dflt) {
        json_t *v = json_object_get(o, key);
        return json_is_integer(v) ? (long long) json_integer_value(v) : dflt;
}

static MigEvent *log_push(Handoff *h) {
        MigEvent *ev = &h->log[h->log_next];
        h->log_next = (h->log_next + 1) % HANDOFF_LOG_MAX;
        if (h->log_n < HANDOFF_LOG_MAX)
                h->log_n++;
        return ev;
}

/* The k-th entry, oldest first. */
static MigEvent *log_at(Handoff *h, size_t k) {
        return &h->log[(h->log_next + HANDOFF_LOG_MAX - h->log_n + k) % HANDOFF_LOG_MAX];
}

void handoff_log_save(Handoff *h) {
        json_t *arr = json_array();
        if (!arr)
                return;
        for (size_t k = 0; k < h->log_n; k++)
                json_array_append_new(arr, mig_event_to_json(log_at(h, k)));
        _cleanup_json_ json_t *o = json_pack("{s:i,s:o}", "version", 1, "migrations", arr);
        _cleanup_free_ char *text = o ? json_dump_compact(o) : NULL;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/" MIG_LOG_FILE, h->state_dir);
        /* History for people, not state: not fsynced. */
        if (!text || write_file_atomic(path, text, strlen(text), false) < 0)
                log_warning("cannot write '%s'", path);
}

int handoff_load(Handoff *h) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/" MIG_LOG_FILE, h->state_dir);
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = read_file_max(path, 4 * 1024 * 1024, &text, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        _cleanup_json_ json_t *o = json_loadb(text, len, 0, NULL);
        json_t *arr = json_object_get(o, "migrations");
        if (!json_is_array(arr)) {
                log_warning("'%s' is not a migration log; starting a new one", path);
                return 0;
        }
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v) {
                if (!json_is_object(v))
                        continue;
                MigEvent *ev = log_push(h);
                *ev = (MigEvent){ .early_packets = -1 };
                MigRole role = mig_role_from_string(json_string_value(json_object_get(v, "role")));
                MigState state = mig_state_from_string(json_string_value(json_object_get(v, "state")));
                ev->role = role < 0 ? MIG_ROLE_NONE : role;
                ev->state = state < 0 ? MIG_STATE_NONE : state;
                copy_json_str(v, "vm", ev->vm, sizeof ev->vm);
                copy_json_str(v, "peer", ev->peer, sizeof ev->peer);
                copy_json_str(v, "reason", ev->reason, sizeof ev->reason);
                ev->started_usec = (uint64_t) json_ll(v, "started", 0);
                ev->switched_usec = (uint64_t) json_ll(v, "switched", 0);
                ev->finished_usec = (uint64_t) json_ll(v, "finished", 0);
                ev->downtime_ms = json_ll(v, "downtimeMs", -1);
                ev->total_ms = json_ll(v, "totalMs", -1);
                ev->activate_us = json_ll(v, "switchMicros", -1);
                ev->switchover_usec = (uint64_t) json_ll(v, "switchover", 0);
                ev->early_packets = json_ll(v, "earlyPackets", -1);
                ev->n_endpoints = (unsigned) json_ll(v, "endpoints", 0);
        }
        return 0;
}

MigEvent *handoff_log_current(Handoff *h, const char *vm, MigRole role) {
        for (size_t k = h->log_n; k-- > 0;) {
                MigEvent *ev = log_at(h, k);
                if (streq(ev->vm, vm) && ev->role == role)
                        return ev->finished_usec ? NULL : ev;
        }
        return NULL;
}

MigEvent *handoff_log_latest(Handoff *h, const char *vm, MigRole role) {
        for (size_t k = h->log_n; k-- > 0;) {
                MigEvent *ev = log_at(h, k);
                if (streq(ev->vm, vm) && ev->role == role)
                        return ev;
        }
        return NULL;
}

MigEvent *handoff_log_new(Handoff *h, const char *vm, MigRole role, const char *peer) {
        MigEvent *ev = log_push(h);
        *ev = (MigEvent){ .role = role, .started_usec = realtime_usec(), .downtime_ms = -1, .total_ms = -1,
                          .activate_us = -1, .early_packets = -1 };
        snprintf(ev->vm, sizeof ev->vm, "%s", vm);
        snprintf(ev->peer, sizeof ev->peer, "%s", peer ? peer : "");
        return ev;
}

MigEvent *handoff_log_get(Handoff *h, const char *vm, MigRole role, const char *peer) {
        MigEvent *ev = handoff_log_current(h, vm, role);
        return ev ? ev : handoff_log_new(h, vm, role, peer);
}

/* ---- route announcements ---- */

extern char **environ;

void handoff_route(Handoff *h, const Endpoint *ep, bool announce) {
        if (announce)
                handoff_redirect_cancel_for(h, ep);
        if (!h->route_hook || ep->kind != EP_KIND_VM)
                return;
        for (size_t i = 0; i < ep->n_addrs; i++) {
                char a[KV_ADDR_STRLEN], dst[KV_ADDR_STRLEN + 8];
                snprintf(dst, sizeof dst, "%s/%d", kv_addr_fmt(&ep->addrs[i].addr, a),
                         ep->addrs[i].addr.family == AF_INET ? 32 : 128);
                char *argv[] = { h->route_hook, announce ? "announce" : "withdraw", dst,
                                 h->node_name[0] ? h->node_name : "-", NULL };
                pid_t pid;
                int r = posix_spawn(&pid, h->route_hook, NULL, NULL, argv, environ);
                if (r != 0)
                        log_warning("routeHook '%s' %s %s: %s", h->route_hook, argv[1], dst, strerror(r));
                else
                        log_debug("routeHook %s %s (pid %d)", argv[1], dst, (int) pid);
        }
}

void handoff_on_remove(Handoff *h, Endpoint *ep) {
        if (ep->kind != EP_KIND_VM)
                return;
        if (ep->mig_role == MIG_ROLE_TARGET && ep->mig_state != MIG_STATE_ACTIVE)
                handoff_target_roll_back(h, ep);
        if (!h->route_hook)
                return;
        CsRecord rec;
        bool holder = !h->cs || claimstore_get(h->cs, ep->network, ep->key, &rec) <= 0 ||
                      streq(rec.holder, h->node_name);
        bool here = ep->mig_role == MIG_ROLE_TARGET ? ep->mig_state == MIG_STATE_ACTIVE
                                                    : ep->mig_state != MIG_STATE_COMPLETED;
        if (holder && here)
                handoff_route(h, ep, false);
}

static int on_sigchld(EventSource *s, int signo, void *userdata) {
        (void) s, (void) signo, (void) userdata;
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
                if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        log_warning("routeHook process %d failed (status %d)", (int) pid, status);
        return 0;
}

/* ---- start ---- */

int handoff_start(Handoff *h, Reaper *reaper) {
        h->reaper = reaper;
        handoff_redirect_flush_stale();
        /* the previous run's redirect program went with its map; passive targets arm afresh */
        migredir_reset(&h->node_address);
        _cleanup_(handoff_eps_done) HandoffEps eps = {};
        int r = handoff_vm_endpoints(h, NULL, NULL, &eps);
        if (r < 0)
                return r;
        for (size_t i = 0; i < eps.n; i++)
                if (eps.v[i]->mig_role == MIG_ROLE_TARGET && eps.v[i]->mig_state != MIG_STATE_ACTIVE)
                        handoff_early_arm(h, eps.v[i]);
        if (!h->route_hook || h->sigchld)
                return 0;
        return event_add_signal(h->loop, SIGCHLD, on_sigchld, h, &h->sigchld);
}

/* ---- listing ---- */

static json_t *endpoint_migration_json(Handoff *h, const Endpoint *ep) {
        char buf[KV_ADDR_STRLEN], mac[KV_MAC_STRLEN], vm[160];
        json_t *ips = json_array();
        for (size_t i = 0; i < ep->n_addrs; i++)
                json_array_append_new(ips, json_string(kv_prefix_fmt(&ep->addrs[i], buf)));
        handoff_vm_id(ep, vm, sizeof vm);
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:I}", "vm", vm, "interface", ep->vm_interface,
                              "attachment", ep->id, "binding", ep->binding, "role", mig_role_to_string(ep->mig_role),
                              "state", mig_state_to_string(ep->mig_state), "peer", ep->mig_peer, "ips", ips, "mac",
                              kv_mac_fmt(ep->mac, mac), "started", (json_int_t) ep->mig_started_usec);
        uint64_t packets = 0;
        if (o && ep->mig_role == MIG_ROLE_TARGET && ep->mig_state != MIG_STATE_ACTIVE) {
                bool armed = ep->early_ifindex && ep->n_addrs > 0 &&
                             migredir_packets(h->migredir, &ep->addrs[0].addr, &packets) > 0;
                json_object_set_new(o, "earlyRedirect", json_boolean(armed));
                if (armed)
                        json_object_set_new(o, "earlyPackets", json_integer((json_int_t) packets));
        }
        return o;
}

json_t *handoff_list(Handoff *h) {
        _cleanup_(handoff_eps_done) HandoffEps eps = {};
        if (handoff_vm_endpoints(h, NULL, NULL, &eps) < 0)
                return NULL;
        json_t *cur = json_array(), *hist = json_array();
        if (!cur || !hist) {
                json_decref(cur);
                json_decref(hist);
                return NULL;
        }
        for (size_t i = 0; i < eps.n; i++)
                if (eps.v[i]->mig_role != MIG_ROLE_NONE)
                        json_array_append_new(cur, endpoint_migration_json(h, eps.v[i]));
        for (size_t k = h->log_n; k-- > 0;) /* newest first */
                json_array_append_new(hist, mig_event_to_json(log_at(h, k)));
        return json_pack("{s:s,s:o,s:o}", "node", h->node_name, "endpoints", cur, "history", hist);
}
