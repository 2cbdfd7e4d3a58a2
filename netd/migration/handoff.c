/* SPDX-License-Identifier: Apache-2.0 */
/* Migration handoff on one node (docs/migration.md).
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
 * Source node: `migration-source` begin / completed / aborted (the source launcher). On completed the node
 * side of the source attachment goes down at once, so the stale sandbox can neither answer for the VM
 * nor draw traffic; frames still arriving at the source node follow the FDB the announcements updated,
 * across the VXLAN segment, to the target. The source pod's CNI DEL then releases the source's copy. */
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <linux/if_bridge.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/msg.h>
#include <netlink/route/route.h>
#include <time.h>

#include "common/fileio.h"
#include "common/json-util.h"
#include "common/log.h"
#include "common/migproto.h"
#include "common/netns.h"
#include "netd/core/netd-priv.h"
#include "netd/link/netlink.h"

#define MIG_LOG_FILE "migrations.json"

/* ---- the per-node migration log ---- */

static json_t *mig_event_to_json(const MigEvent *ev) {
        json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:i}", "vm", ev->vm, "role", ev->role, "state", ev->state,
                              "peer", ev->peer, "reason", ev->reason, "started", (json_int_t) ev->started_usec,
                              "endpoints", (int) ev->n_endpoints);
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

static void mig_log_save(Manager *m) {
        json_t *arr = json_array();
        if (!arr)
                return;
        for (size_t k = 0; k < m->mig_log_n; k++) {
                size_t idx = (m->mig_log_next + NETD_MIG_LOG - m->mig_log_n + k) % NETD_MIG_LOG;
                json_array_append_new(arr, mig_event_to_json(&m->mig_log[idx]));
        }
        _cleanup_json_ json_t *o = json_pack("{s:i,s:o}", "version", 1, "migrations", arr);
        _cleanup_free_ char *text = o ? json_dump_compact(o) : NULL;
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/" MIG_LOG_FILE, m->state_dir);
        /* History for people, not state: not fsynced. */
        if (!text || write_file_atomic(path, text, strlen(text), false) < 0)
                log_warning("cannot write '%s'", path);
}

int handoff_load(Manager *m) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/" MIG_LOG_FILE, m->state_dir);
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
                MigEvent *ev = &m->mig_log[m->mig_log_next];
                *ev = (MigEvent){ .early_packets = -1 };
                copy_json_str(v, "vm", ev->vm, sizeof ev->vm);
                copy_json_str(v, "role", ev->role, sizeof ev->role);
                copy_json_str(v, "state", ev->state, sizeof ev->state);
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
                m->mig_log_next = (m->mig_log_next + 1) % NETD_MIG_LOG;
                if (m->mig_log_n < NETD_MIG_LOG)
                        m->mig_log_n++;
        }
        return 0;
}

/* The newest log entry of this VM and role that is still in progress. */
static MigEvent *mig_log_current(Manager *m, const char *vm, const char *role) {
        for (size_t k = 0; k < m->mig_log_n; k++) {
                size_t idx = (m->mig_log_next + NETD_MIG_LOG - 1 - k) % NETD_MIG_LOG;
                MigEvent *ev = &m->mig_log[idx];
                if (streq(ev->vm, vm) && streq(ev->role, role))
                        return ev->finished_usec ? NULL : ev;
        }
        return NULL;
}

static MigEvent *mig_log_new(Manager *m, const char *vm, const char *role, const char *peer) {
        MigEvent *ev = &m->mig_log[m->mig_log_next];
        *ev = (MigEvent){ .started_usec = realtime_usec(), .downtime_ms = -1, .total_ms = -1, .activate_us = -1,
                          .early_packets = -1 };
        snprintf(ev->vm, sizeof ev->vm, "%s", vm);
        snprintf(ev->role, sizeof ev->role, "%s", role);
        snprintf(ev->peer, sizeof ev->peer, "%s", peer ? peer : "");
        m->mig_log_next = (m->mig_log_next + 1) % NETD_MIG_LOG;
        if (m->mig_log_n < NETD_MIG_LOG)
                m->mig_log_n++;
        return ev;
}

static MigEvent *mig_log_get(Manager *m, const char *vm, const char *role, const char *peer) {
        MigEvent *ev = mig_log_current(m, vm, role);
        return ev ? ev : mig_log_new(m, vm, role, peer);
}

/* ---- kernel helpers ---- */

static int host_link_updown(const char *ifname, bool up, KvErr *e) {
        _cleanup_nl_sock_ struct nl_sock *sk = NULL;
        int r = lnl_open_e(-1, &sk, e);
        if (r < 0)
                return r;
        LnlLink l;
        r = lnl_link_get(sk, ifname, &l);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "migration: no link '%s'", ifname);
        r = lnl_link_set(sk, l.ifindex, up ? 1 : 0, 0);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "migration: cannot set '%s' %s", ifname,
                                       up ? "up" : "down");
        return 0;
}

/* Bridge port state (IFLA_BRPORT_STATE in an AF_BRIDGE RTM_SETLINK). A port in state *listening* passes
 * no frames either way and learns nothing while both ends of the veth stay up, so switching it to
 * forwarding takes effect at once (this kernel ignores "blocking" without STP, and resets "disabled"
 * on the next carrier event; listening stays):
 * taking the link down and up instead costs a carrier change, which the kernel's linkwatch applies
 * asynchronously (measured: ~200 ms of extra outage per masquerade migration). The bridge itself sets
 * a disabled port forwarding whenever its carrier comes up, so the state is set only once the carrier has
 * settled (IFF_RUNNING is reported after linkwatch ran). */
static int brport_set_state(const char *ifname, uint8_t state, KvErr *e) {
        _cleanup_nl_sock_ struct nl_sock *sk = NULL;
        int r = lnl_open_e(-1, &sk, e);
        if (r < 0)
                return r;
        LnlLink l;
        for (int i = 0;; i++) {
                r = lnl_link_get(sk, ifname, &l);
                if (r < 0)
                        return kverr_set_errno(e, KV_ERR_INTERNAL, r, "migration: no link '%s'", ifname);
                if (state == BR_STATE_FORWARDING || (l.flags & IFF_RUNNING) || i >= 250)
                        break;
                struct timespec ts = { .tv_nsec = 2 * 1000 * 1000 };
                nanosleep(&ts, NULL);
        }
        struct nl_msg *m = nlmsg_alloc_simple(RTM_SETLINK, 0);
        if (!m)
                return -ENOMEM;
        struct ifinfomsg ifi = { .ifi_family = AF_BRIDGE, .ifi_index = l.ifindex };
        struct nlattr *pi;
        if (nlmsg_append(m, &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0 ||
            !(pi = nla_nest_start(m, IFLA_PROTINFO | NLA_F_NESTED)) || nla_put_u8(m, IFLA_BRPORT_STATE, state) < 0) {
                nlmsg_free(m);
                return -ENOMEM;
        }
        nla_nest_end(m, pi);
        r = lnl_request(sk, m);
        nlmsg_free(m);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "migration: cannot set bridge port '%s' %s", ifname,
                                       state == BR_STATE_FORWARDING ? "forwarding" : "listening");
        return 0;
}

static void vm_id(const Endpoint *ep, char *buf, size_t n) {
        snprintf(buf, n, "%s/%s", ep->vm_namespace, ep->vm_name);
}

static bool ep_of_vm(const Endpoint *ep, const char *ns, const char *name) {
        return ep->kind == EP_KIND_VM && streq(ep->vm_namespace, ns) && streq(ep->vm_name, name);
}

/* ---- route announcements ---- */

extern char **environ;

static void redirect_cancel_for(Manager *m, const Endpoint *ep);

void handoff_route(Manager *m, const Endpoint *ep, bool announce) {
        if (announce)
                redirect_cancel_for(m, ep);
        if (!m->route_hook || ep->kind != EP_KIND_VM)
                return;
        for (size_t i = 0; i < ep->n_addrs; i++) {
                char a[KV_ADDR_STRLEN], dst[KV_ADDR_STRLEN + 8];
                snprintf(dst, sizeof dst, "%s/%d", kv_addr_fmt(&ep->addrs[i].addr, a),
                         ep->addrs[i].addr.family == AF_INET ? 32 : 128);
                char *argv[] = { m->route_hook, announce ? "announce" : "withdraw", dst,
                                 m->node_name[0] ? m->node_name : "-", NULL };
                pid_t pid;
                int r = posix_spawn(&pid, m->route_hook, NULL, NULL, argv, environ);
                if (r != 0)
                        log_warning("routeHook '%s' %s %s: %s", m->route_hook, argv[1], dst, strerror(r));
                else
                        log_debug("routeHook %s %s (pid %d)", argv[1], dst, (int) pid);
        }
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

/* ---- the source's redirect to the target ----
 * For redirectGraceMs after a VM left, packets that still reach the source node for the VM's addresses
 * (a client or router whose route has not moved yet, packets in flight) are routed over the underlay to
 * the node the VM went to: a host route VM/32 via the target's nodeAddress (claim store node registry),
 * protocol NETD_RTPROT_REDIRECT so that a restarted netd can find and remove leftovers. */

static int redirect_route(bool add, const KvPrefix *dst, const KvAddr *via) {
        _cleanup_nl_sock_ struct nl_sock *sk = NULL;
        KvErr e = {};
        int r = lnl_open_e(-1, &sk, &e);
        if (r < 0)
                return r;
        int fam = dst->addr.family;
        struct nl_msg *msg = nlmsg_alloc_simple(add ? RTM_NEWROUTE : RTM_DELROUTE, add ? NLM_F_CREATE | NLM_F_REPLACE : 0);
        if (!msg)
                return -ENOMEM;
        struct rtmsg rtm = { .rtm_family = (unsigned char) fam, .rtm_dst_len = dst->prefixlen,
                             .rtm_table = RT_TABLE_MAIN, .rtm_protocol = NETD_RTPROT_REDIRECT,
                             .rtm_scope = RT_SCOPE_UNIVERSE, .rtm_type = RTN_UNICAST };
        int len = fam == AF_INET ? 4 : 16;
        if (nlmsg_append(msg, &rtm, sizeof rtm, NLMSG_ALIGNTO) < 0 || nla_put(msg, RTA_DST, len, dst->addr.bytes) < 0 ||
            (add && nla_put(msg, RTA_GATEWAY, len, via->bytes) < 0)) {
                nlmsg_free(msg);
                return -ENOMEM;
        }
        r = lnl_request(sk, msg);
        nlmsg_free(msg);
        return r;
}

static void redirect_drop(struct Redirect *rd) {
        char a[KV_ADDR_STRLEN];
        int r = redirect_route(false, &rd->dst, NULL);
        if (r < 0 && r != -ESRCH && r != -ENOENT)
                log_warning("migration: removing the redirect for %s: %s", kv_prefix_fmt(&rd->dst, a), strerror(-r));
        else
                log_info("migration: redirect for %s ended", kv_prefix_fmt(&rd->dst, a));
        if (rd->timer)
                event_source_free(rd->timer);
        rd->timer = NULL;
        rd->m = NULL;
}

static int on_redirect_expired(EventSource *s, void *userdata) {
        struct Redirect *rd = userdata;
        (void) s;
        rd->timer = NULL; /* freed by the loop after -ECANCELED */
        redirect_drop(rd);
        return -ECANCELED;
}

static void redirect_start(Manager *m, const Endpoint *ep, const KvAddr *via) {
        char a[KV_ADDR_STRLEN], b[KV_ADDR_STRLEN];
        for (size_t i = 0; i < ep->n_addrs; i++) {
                if (ep->addrs[i].addr.family != via->family)
                        continue;
                KvPrefix dst = { .addr = ep->addrs[i].addr, .prefixlen = via->family == AF_INET ? 32 : 128 };
                struct Redirect *rd = NULL;
                for (size_t k = 0; k < NETD_MAX_REDIRECTS && !rd; k++)
                        if (m->redirects[k].m && kv_addr_equal(&m->redirects[k].dst.addr, &dst.addr))
                                rd = &m->redirects[k]; /* a second migration away: restart its grace */
                for (size_t k = 0; k < NETD_MAX_REDIRECTS && !rd; k++)
                        if (!m->redirects[k].m)
                                rd = &m->redirects[k];
                if (!rd) {
                        log_warning("migration: too many redirects pending; %s not redirected", kv_prefix_fmt(&dst, a));
                        continue;
                }
                if (rd->timer)
                        event_source_free(rd->timer);
                *rd = (struct Redirect){ .dst = dst, .via = *via, .m = m };
                int r = redirect_route(true, &dst, via);
                if (r < 0) {
                        log_warning("migration: redirect %s via %s: %s", kv_prefix_fmt(&dst, a), kv_addr_fmt(via, b),
                                    strerror(-r));
                        rd->m = NULL;
                        continue;
                }
                if (event_add_timer(m->loop, (uint64_t) m->redirect_grace_ms * 1000ULL, 0, on_redirect_expired, rd,
                                    &rd->timer) < 0) {
                        redirect_drop(rd);
                        continue;
                }
                log_info("migration: redirecting %s via %s for %u ms", kv_prefix_fmt(&dst, a), kv_addr_fmt(via, b),
                         m->redirect_grace_ms);
        }
}

/* The VM is back on this node (a ping-pong migration within the grace period): its redirect must go
 * before anything else, or this node would send the VM's packets away to where it no longer is. */
static void redirect_cancel_for(Manager *m, const Endpoint *ep) {
        for (size_t k = 0; k < NETD_MAX_REDIRECTS; k++)
                for (size_t i = 0; m->redirects[k].m && i < ep->n_addrs; i++)
                        if (kv_addr_equal(&m->redirects[k].dst.addr, &ep->addrs[i].addr))
                                redirect_drop(&m->redirects[k]);
}

void handoff_stop(Manager *m) {
        for (size_t k = 0; k < NETD_MAX_REDIRECTS; k++)
                if (m->redirects[k].m)
                        redirect_drop(&m->redirects[k]);
        m->migredir = migredir_free(m->migredir);
}

typedef struct FlushCtx {
        struct nl_sock *sk;
        unsigned n;
} FlushCtx;

static void flush_one(struct nl_object *obj, void *arg) {
        FlushCtx *fc = arg;
        struct rtnl_route *rt = (struct rtnl_route *) obj;
        if (rtnl_route_get_protocol(rt) == NETD_RTPROT_REDIRECT && rtnl_route_delete(fc->sk, rt, 0) == 0)
                fc->n++;
}

/* Redirect routes a previous run left (it was killed during a grace period). */
static void redirect_flush_stale(void) {
        _cleanup_nl_sock_ struct nl_sock *sk = NULL;
        KvErr e = {};
        if (lnl_open_e(-1, &sk, &e) < 0)
                return;
        struct nl_cache *cache = NULL;
        if (rtnl_route_alloc_cache(sk, AF_UNSPEC, 0, &cache) < 0)
                return;
        FlushCtx fc = { .sk = sk };
        nl_cache_foreach(cache, flush_one, &fc);
        nl_cache_free(cache);
        if (fc.n)
                log_notice("removed %u redirect route(s) left by a previous run", fc.n);
}

/* ---- the early switchover ----
 * The source QEMU pauses for the switchover tens of milliseconds before the target resumes; packets that
 * reach the source in between would die in its tap. So a prepared target arms the migration redirect
 * (netd/migration/migredir.c): packets routed to this node for the VM's addresses go straight into the target
 * attachment, where they wait in the tap until the guest resumes. The claim store records that the target
 * is ready (targetReady); at the pause the source launcher says `migration-source switchover`, and the
 * source node starts its redirect route to this node then, not only once the migration completed. A target
 * that cannot arm (no nodeAddress, chained attachment, no BPF) is not ready, and the source keeps its
 * packets until the end, as before. Disarmed at activation, when the target goes away, and on exit. */

static uint64_t early_disarm(Manager *m, Endpoint *ep, bool *ret_armed) {
        uint64_t total = 0;
        bool armed = false;
        for (size_t i = 0; ep->early_ifindex && i < ep->n_addrs; i++) {
                uint64_t p = 0;
                if (migredir_del(&m->migredir, &ep->addrs[i].addr, ep->early_ifindex, &p) > 0) {
                        total += p;
                        armed = true;
                }
        }
        ep->early_ifindex = 0;
        if (ret_armed)
                *ret_armed = armed;
        return total;
}

static void early_arm(Manager *m, Endpoint *ep) {
        if (!m->cs || !m->node_address.family || m->redirect_grace_ms == 0 || ep->chained || !ep->host_ifname[0] ||
            !ep->bridge[0])
                return;
        KvErr e = {};
        _cleanup_nl_sock_ struct nl_sock *sk = NULL;
        LnlLink host, br;
        int r = lnl_open_e(-1, &sk, &e);
        if (r >= 0 && (r = lnl_link_get(sk, ep->host_ifname, &host)) < 0)
                lnl_err(&e, r, "looking up '%s'", ep->host_ifname);
        if (r >= 0 && (r = lnl_link_get(sk, ep->bridge, &br)) < 0)
                lnl_err(&e, r, "looking up bridge '%s'", ep->bridge);
        if (r >= 0)
                ep->early_ifindex = host.ifindex;
        for (size_t i = 0; r >= 0 && i < ep->n_addrs; i++)
                r = migredir_add(&m->migredir, &m->node_address, &ep->addrs[i].addr, host.ifindex, ep->mac, br.mac, &e);
        if (r == -EEXIST) { /* a second pod of the same VM on this node: the first one takes the packets */
                log_info("migration: %s: %s", ep->id, e.msg);
                (void) early_disarm(m, ep, NULL);
                return;
        }
        if (r >= 0)
                r = claimstore_set_target_ready(m->cs, ep->network, ep->key, true, &e);
        if (r < 0) {
                (void) early_disarm(m, ep, NULL);
                log_warning("migration: %s: no early switchover (%s); the VM's packets come here once it runs here",
                            ep->id, e.msg);
                return;
        }
        log_info("migration: %s: packets the source sends here from the switchover on go into '%s' (redirect on '%s')",
                 ep->id, ep->host_ifname, migredir_uplink(m->migredir));
}

int handoff_start(Manager *m) {
        redirect_flush_stale();
        /* the previous run's redirect program went with its map; passive targets arm afresh */
        migredir_reset(&m->node_address);
        EP_FOREACH(m, ep) {
                if (ep->kind == EP_KIND_VM && streq(ep->mig_role, "target") && !streq(ep->mig_state, "active"))
                        early_arm(m, ep);
        }
        if (!m->route_hook || m->sigchld)
                return 0;
        return event_add_signal(m->loop, SIGCHLD, on_sigchld, m, &m->sigchld);
}

/* ---- target ---- */

static int watch_start(Manager *m, Endpoint *ep, KvErr *e);
static void watch_stop(Manager *m, Endpoint *ep);

int handoff_prepare_target(Manager *m, Endpoint *ep, KvErr *e) {
        if (manager_ep_is_masq_vm(ep)) {
                int r = brport_set_state(ep->host_ifname, BR_STATE_LISTENING, e);
                if (r < 0)
                        return r;
        }
        if (ep->kind == EP_KIND_VM && ep->tap[0]) {
                KvErr we = {};
                if (watch_start(m, ep, &we) < 0)
                        log_warning("migration: %s: %s (activation waits for the launcher)", ep->id, we.msg);
                early_arm(m, ep);
        }
        char vm[160];
        vm_id(ep, vm, sizeof vm);
        MigEvent *ev = mig_log_get(m, vm, "target", ep->mig_peer);
        snprintf(ev->state, sizeof ev->state, "prepared");
        ev->n_endpoints++;
        mig_log_save(m);
        log_info("migration: prepared passive target datapath for VM %s (%s, %s) held by node '%s'", vm, ep->id,
                 ep->binding, ep->mig_peer);
        return 0;
}

void handoff_on_remove(Manager *m, Endpoint *ep) {
        if (!ep->mig_role[0] || ep->kind != EP_KIND_VM)
                return;
        char vm[160];
        vm_id(ep, vm, sizeof vm);
        if (streq(ep->mig_role, "target") && !streq(ep->mig_state, "active")) {
                (void) early_disarm(m, ep, NULL);
                if (m->cs && claimstore_abort_migration(m->cs, ep->network, ep->key) < 0)
                        log_warning("migration: cannot withdraw as target of '%s'", ep->key);
                MigEvent *ev = mig_log_current(m, vm, "target");
                if (ev) {
                        snprintf(ev->state, sizeof ev->state, "aborted");
                        snprintf(ev->reason, sizeof ev->reason, "target attachment removed before the VM arrived");
                        ev->finished_usec = realtime_usec();
                        mig_log_save(m);
                }
                log_notice("migration: VM %s did not arrive; target attachment %s rolled back", vm, ep->id);
        }
}

/* Activates every target attachment of VM ns/name; 'trigger' says who noticed the resume. */
static int activate_vm(Manager *m, const char *ns, const char *name, const char *trigger, MigActivateReply *ret,
                       KvErr *e) {
        uint64_t t0 = now_usec();
        unsigned n = 0, announced = 0, already = 0;
        char reason[256] = "";
        /* First the datapath of every attachment (this runs inside the network outage): carrier, the
         * route announcement, gratuitous ARP / NA. The bookkeeping (claim store, state files) follows. */
        EP_FOREACH(m, ep) {
                if (!ep_of_vm(ep, ns, name) || !streq(ep->mig_role, "target"))
                        continue;
                if (streq(ep->mig_state, "active")) {
                        already++;
                        continue;
                }
                watch_stop(m, ep);
                KvErr ee = {};
                if (manager_ep_is_masq_vm(ep) && brport_set_state(ep->host_ifname, BR_STATE_FORWARDING, &ee) < 0) {
                        log_error("migration: activating %s: %s", ep->id, ee.msg);
                        snprintf(reason, sizeof reason, "%.200s", ee.msg);
                }
                handoff_route(m, ep, true);
                _cleanup_close_ int nsfd = -1;
                if (netns_open(ep->netns, &nsfd) == 0) {
                        KvErr ae = {};
                        int sock = -1;
                        int s = announce_send(nsfd, ep->sbx_ifname, ep->mac, ep->addrs, ep->n_addrs, 2,
                                              m->reaper ? &sock : NULL, &ae);
                        if (s < 0)
                                log_warning("migration: announcing %s on '%s': %s", ep->id, ep->sbx_ifname, ae.msg);
                        else
                                announced += (unsigned) s;
                        /* its close waits for an RCU grace period: not inside the outage */
                        if (sock >= 0 && reaper_queue_close(m->reaper, sock) < 0)
                                log_debug("migration: announce socket closed in place");
                } else
                        log_warning("migration: sandbox of %s is gone (%s)", ep->id, ep->netns);
                n++;
        }
        uint64_t switch_us = now_usec() - t0;
        uint64_t early = 0;
        bool armed = false;
        EP_FOREACH(m, ep) {
                if (!ep_of_vm(ep, ns, name) || !streq(ep->mig_role, "target") || streq(ep->mig_state, "active"))
                        continue;
                /* forwarding normally now: the early redirect has done its part */
                bool a = false;
                early += early_disarm(m, ep, &a);
                armed |= a;
                KvErr ee = {};
                if (m->cs && claimstore_finish_migration(m->cs, ep->network, ep->key, &ee) < 0) {
                        log_error("migration: claim store: %s", ee.msg);
                        snprintf(reason, sizeof reason, "%.200s", ee.msg);
                }
                IpamClaim *c = ipam_find(m->ipam, ep->network, ep->key);
                if (c) {
                        KvErr ie = {};
                        IGNORE_RESULT(ipam_set_state(m->ipam, c, IPAM_CLAIM_ACTIVE, ep->id, &ie));
                }
                snprintf(ep->mig_state, sizeof ep->mig_state, "active");
                if (manager_persist(m, ep, &ee) < 0)
                        log_warning("migration: %s", ee.msg);
        }
        if (n == 0 && already == 0)
                return kverr_set(e, KV_ERR_UNKNOWN_CONTAINER, -ENOENT,
                                 "migration-activate: no migration target for VM %s/%s on this node (was its target pod "
                                 "attached here?)",
                                 ns, name);
        uint64_t us = now_usec() - t0;
        char vm[160];
        snprintf(vm, sizeof vm, "%s/%s", ns, name);
        if (n > 0) {
                MigEvent *ev = mig_log_get(m, vm, "target", "");
                snprintf(ev->state, sizeof ev->state, "active");
                snprintf(ev->reason, sizeof ev->reason, "%s", reason);
                ev->switched_usec = ev->finished_usec = realtime_usec();
                ev->activate_us = (long long) switch_us;
                ev->early_packets = armed ? (long long) early : -1;
                mig_log_save(m);
                log_notice("migration: VM %s is active on this node (%s; %u attachment(s), %u announcement(s), "
                           "datapath switched in %llu us, %llu us in all; %llu packet(s) came early)",
                           vm, trigger, n, announced, (unsigned long long) switch_us, (unsigned long long) us,
                           (unsigned long long) early);
        }
        if (ret)
                *ret = (MigActivateReply){ .endpoints = n, .already_active = already, .announcements = announced,
                                           .switch_us = switch_us, .activate_us = us, .early_packets = early };
        return 0;
}

int handoff_activate(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        _cleanup_(mig_activate_msg_done) MigActivateMsg msg = {};
        int r = mig_activate_msg_from_json(args, &msg, e);
        if (r < 0)
                return r;
        MigActivateReply reply;
        r = activate_vm(m, msg.vm.vm_namespace, msg.vm.vm_name, "the launcher saw the domain resume", &reply, e);
        if (r < 0)
                return r;
        *ret = mig_activate_reply_to_json(&reply);
        return *ret ? 0 : -ENOMEM;
}

/* ---- the guest's first frame ----
 * A passive target also activates itself when the guest sends its first frame on the target's tap:
 * QEMU announces the VM (RARP, or the guest's own gratuitous ARP with VIRTIO_NET_F_GUEST_ANNOUNCE) the
 * moment it resumes, before libvirt's "resumed" event has travelled to the launcher and on to netd.
 * Nothing crosses the tap from the guest before the resume (QEMU does not run the incoming guest), so
 * the first frame is the resume. A packet socket in the sandbox, bound to the tap, sees frames from
 * QEMU with a packet type other than PACKET_OUTGOING. The launcher's migration-activate that follows
 * finds the VM active already. */

typedef struct MigWatch {
        Manager *m;
        EventSource *src;
        int fd, ifindex;
        char ns[128], name[128];
} MigWatch;

static void watch_stop(Manager *m, Endpoint *ep) {
        MigWatch *w = ep->mig_watch;
        if (!w)
                return;
        ep->mig_watch = NULL;
        event_source_free(w->src);
        /* a packet socket's close waits for an RCU grace period: off the event loop when possible */
        if (!m->reaper || reaper_queue_close(m->reaper, w->fd) < 0)
                close(w->fd);
        free(w);
}

static int on_guest_frame(EventSource *s, int fd, uint32_t revents, void *userdata) {
        MigWatch *w = userdata;
        (void) s;
        (void) revents;
        bool from_guest = false;
        for (int i = 0; i < 64; i++) {
                uint8_t buf[64];
                struct sockaddr_ll sll;
                socklen_t sl = sizeof sll;
                ssize_t k = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *) &sll, &sl);
                if (k < 0)
                        break;
                if (sll.sll_pkttype != PACKET_OUTGOING && sll.sll_ifindex == w->ifindex)
                        from_guest = true;
        }
        if (!from_guest)
                return 0;
        char ns[128], name[128];
        snprintf(ns, sizeof ns, "%s", w->ns);
        snprintf(name, sizeof name, "%s", w->name);
        /* activate_vm stops every watch of this VM, this one (w) included */
        KvErr e = {};
        if (activate_vm(w->m, ns, name, "first frame from the guest", NULL, &e) < 0)
                log_warning("migration: activating %s/%s on the guest's first frame: %s", ns, name, e.msg);
        return 0;
}

static int watch_start(Manager *m, Endpoint *ep, KvErr *e) {
        _cleanup_close_ int nsfd = -1;
        int r = netns_open(ep->netns, &nsfd);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INVALID_ENV, r, "migration: sandbox '%s'", ep->netns);
        NetnsGuard g = { .orig_fd = -1 };
        r = netns_enter(nsfd, &g);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "migration: cannot enter the sandbox");
        /* protocol 0: the socket receives nothing until bind() names the tap (an ETH_P_ALL socket would
         * queue frames of every interface of the sandbox in between) */
        int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int err = fd < 0 ? negative_errno() : 0;
        unsigned ifindex = if_nametoindex(ep->tap);
        int ierr = ifindex == 0 ? negative_errno() : 0;
        (void) netns_leave(&g);
        if (err < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, err, "migration: packet socket on '%s'", ep->tap);
        if (ierr < 0) {
                close(fd);
                return kverr_set_errno(e, KV_ERR_INTERNAL, ierr, "migration: no tap '%s' in the sandbox", ep->tap);
        }
        struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                                   .sll_ifindex = (int) ifindex };
        MigWatch *w = calloc(1, sizeof *w);
        if (!w || bind(fd, (struct sockaddr *) &sll, sizeof sll) < 0) {
                int q = w ? negative_errno() : -ENOMEM;
                free(w);
                close(fd);
                return kverr_set_errno(e, KV_ERR_INTERNAL, q, "migration: packet socket on '%s'", ep->tap);
        }
        *w = (MigWatch){ .m = m, .fd = fd, .ifindex = (int) ifindex };
        snprintf(w->ns, sizeof w->ns, "%s", ep->vm_namespace);
        snprintf(w->name, sizeof w->name, "%s", ep->vm_name);
        r = event_add_io(m->loop, fd, EPOLLIN, on_guest_frame, w, &w->src);
        if (r < 0) {
                free(w);
                close(fd);
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "migration: cannot watch '%s'", ep->tap);
        }
        ep->mig_watch = w;
        return 0;
}

void handoff_forget(Manager *m, Endpoint *ep) {
        watch_stop(m, ep);
        (void) early_disarm(m, ep, NULL);
}

/* ---- source ---- */

int handoff_source(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        _cleanup_(mig_source_msg_done) MigSourceMsg msg = {};
        int r = mig_source_msg_from_json(args, &msg, e);
        if (r < 0)
                return r;
        const char *ns = msg.vm.vm_namespace, *name = msg.vm.vm_name, *target = msg.target, *reason = msg.reason;
        bool begin = msg.phase == MIG_PHASE_BEGIN, switchover = msg.phase == MIG_PHASE_SWITCHOVER,
             done = msg.phase == MIG_PHASE_COMPLETED;
        char vm[160];
        snprintf(vm, sizeof vm, "%s/%s", ns, name);
        unsigned n = 0, early = 0;
        EP_FOREACH(m, ep) {
                if (!ep_of_vm(ep, ns, name))
                        continue;
                if (!begin && !streq(ep->mig_role, "source"))
                        continue;
                KvErr ee = {};
                CsRecord rec;
                KvAddr via;
                if (begin) {
                        snprintf(ep->mig_role, sizeof ep->mig_role, "source");
                        snprintf(ep->mig_state, sizeof ep->mig_state, "migrating");
                        snprintf(ep->mig_peer, sizeof ep->mig_peer, "%s", target ? target : "");
                        ep->mig_started_usec = realtime_usec();
                } else if (switchover) {
                        /* The VM has paused here: a ready target takes its packets from now on. The datapath
                         * stays as it is (the migration can still fail and resume the VM here). */
                        if (m->cs && m->redirect_grace_ms > 0 && claimstore_get(m->cs, ep->network, ep->key, &rec) > 0 &&
                            rec.target[0] && rec.target_ready && !streq(rec.target, m->node_name) &&
                            claimstore_node_address(m->cs, rec.target, &via) == 0) {
                                redirect_start(m, ep, &via);
                                early++;
                        }
                        snprintf(ep->mig_state, sizeof ep->mig_state, "switching");
                } else if (done) {
                        snprintf(ep->mig_state, sizeof ep->mig_state, "completed");
                        if (!ep->chained && ep->host_ifname[0] && host_link_updown(ep->host_ifname, false, &ee) < 0)
                                log_warning("migration: deactivating %s: %s", ep->id, ee.msg);
                        if (m->cs && m->redirect_grace_ms > 0 && claimstore_get(m->cs, ep->network, ep->key, &rec) > 0 &&
                            rec.holder[0] && !streq(rec.holder, m->node_name) &&
                            claimstore_node_address(m->cs, rec.holder, &via) == 0)
                                redirect_start(m, ep, &via); /* (re)starts the grace period */
                } else {
                        /* back to normal: packets redirected since a switchover come here again */
                        redirect_cancel_for(m, ep);
                        ep->mig_role[0] = ep->mig_state[0] = ep->mig_peer[0] = '\0';
                        ep->mig_started_usec = 0;
                }
                if (manager_persist(m, ep, &ee) < 0)
                        log_warning("migration: %s", ee.msg);
                n++;
        }
        if (n == 0)
                return kverr_set(e, KV_ERR_UNKNOWN_CONTAINER, -ENOENT, "migration-source: no %sattachment of VM %s on this node",
                                 begin ? "" : "migrating ", vm);
        MigEvent *ev = begin ? mig_log_new(m, vm, "source", target) : mig_log_get(m, vm, "source", target);
        snprintf(ev->state, sizeof ev->state, "%s",
                 begin ? "migrating" : switchover ? "switching" : mig_phase_to_string(msg.phase));
        ev->n_endpoints = n;
        if (reason)
                snprintf(ev->reason, sizeof ev->reason, "%s", reason);
        if (switchover)
                ev->switchover_usec = realtime_usec();
        else if (!begin) {
                ev->finished_usec = realtime_usec();
                if (done)
                        ev->switched_usec = ev->finished_usec;
                ev->downtime_ms = msg.downtime_ms;
                ev->total_ms = msg.total_ms;
        }
        mig_log_save(m);
        if (switchover)
                log_notice("migration: VM %s paused for the switchover; %u of %u attachment(s) redirected to the target "
                           "early",
                           vm, early, n);
        else
                log_notice("migration: VM %s %s (%u attachment(s))%s%s", vm,
                           begin ? "is migrating away" : done ? "left this node" : "stays here: migration aborted", n,
                           reason ? ": " : "", reason ? reason : "");
        MigSourceReply reply = { .endpoints = n, .has_redirected = switchover, .redirected = early };
        *ret = mig_source_reply_to_json(&reply);
        return *ret ? 0 : -ENOMEM;
}

/* ---- listing ---- */

json_t *handoff_list(Manager *m) {
        char buf[KV_ADDR_STRLEN], mac[KV_MAC_STRLEN];
        json_t *cur = json_array(), *hist = json_array();
        if (!cur || !hist) {
                json_decref(cur);
                json_decref(hist);
                return NULL;
        }
        EP_FOREACH(m, ep) {
                if (!ep->mig_role[0])
                        continue;
                json_t *ips = json_array();
                for (size_t i = 0; i < ep->n_addrs; i++)
                        json_array_append_new(ips, json_string(kv_prefix_fmt(&ep->addrs[i], buf)));
                char vm[160];
                vm_id(ep, vm, sizeof vm);
                json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:I}", "vm", vm, "interface",
                                      ep->vm_interface, "attachment", ep->id, "binding", ep->binding, "role",
                                      ep->mig_role, "state", ep->mig_state, "peer", ep->mig_peer, "ips", ips, "mac",
                                      kv_mac_fmt(ep->mac, mac), "started", (json_int_t) ep->mig_started_usec);
                uint64_t packets = 0;
                if (o && streq(ep->mig_role, "target") && !streq(ep->mig_state, "active")) {
                        bool armed = ep->early_ifindex && ep->n_addrs > 0 &&
                                     migredir_packets(m->migredir, &ep->addrs[0].addr, &packets) > 0;
                        json_object_set_new(o, "earlyRedirect", json_boolean(armed));
                        if (armed)
                                json_object_set_new(o, "earlyPackets", json_integer((json_int_t) packets));
                }
                json_array_append_new(cur, o);
        }
        for (size_t k = 0; k < m->mig_log_n; k++) {
                size_t idx = (m->mig_log_next + NETD_MIG_LOG - 1 - k) % NETD_MIG_LOG; /* newest first */
                json_array_append_new(hist, mig_event_to_json(&m->mig_log[idx]));
        }
        return json_pack("{s:s,s:o,s:o}", "node", m->node_name, "endpoints", cur, "history", hist);
}
