/* SPDX-License-Identifier: Apache-2.0 */
/* The source node's half of the handoff (docs/migration.md, steps 2, 3, 5 and 6): `migration-source` with
 * its phases, and the redirect routes that send the VM's packets to the target node for redirectGraceMs. */
#include <linux/rtnetlink.h>

#include "common/log.h"
#include "common/migproto.h"
#include "netd/link/netlink.h"
#include "netd/migration/handoff-priv.h"

static int host_link_updown(const char *ifname, bool up, KvErr *e) {
        _cleanup_nl_sock_ NlSock *sk = NULL;
        LnlLink l;
        int r = lnl_open_link(-1, ifname, &sk, &l, e);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "migration: no link '%s'", ifname);
        r = lnl_link_set(sk, l.ifindex, up ? 1 : 0, 0);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "migration: cannot set '%s' %s", ifname,
                                       up ? "up" : "down");
        return 0;
}

/* ---- the source's redirect to the target ----
 * For redirectGraceMs after a VM left, packets that still reach the source node for the VM's addresses
 * (a client or router whose route has not moved yet, packets in flight) are routed over the underlay to
 * the node the VM went to: a host route VM/32 via the target's nodeAddress (claim store node registry),
 * protocol HANDOFF_RTPROT_REDIRECT so that a restarted netd can find and remove leftovers. */

static int redirect_route(bool add, const KvPrefix *dst, const KvAddr *via) {
        _cleanup_nl_sock_ NlSock *sk = NULL;
        KvErr e = {};
        int r = lnl_open_e(-1, &sk, &e);
        if (r < 0)
                return r;
        int fam = dst->addr.family;
        struct rtmsg rtm = { .rtm_family = (unsigned char) fam, .rtm_dst_len = dst->prefixlen,
                             .rtm_table = RT_TABLE_MAIN, .rtm_protocol = HANDOFF_RTPROT_REDIRECT,
                             .rtm_scope = RT_SCOPE_UNIVERSE, .rtm_type = RTN_UNICAST };
        struct nlmsghdr *msg = nl_msg_new(sk, add ? RTM_NEWROUTE : RTM_DELROUTE, add ? NLM_F_CREATE | NLM_F_REPLACE : 0,
                                          &rtm, sizeof rtm);
        int len = fam == AF_INET ? 4 : 16;
        if (nl_put(msg, RTA_DST, len, dst->addr.bytes) < 0 || (add && nl_put(msg, RTA_GATEWAY, len, via->bytes) < 0))
                return -ENOMEM;
        return nl_request(sk, msg);
}

static void redirect_drop(Redirect *rd) {
        char a[KV_ADDR_STRLEN];
        int r = redirect_route(false, &rd->dst, NULL);
        if (r < 0 && r != -ESRCH && r != -ENOENT)
                log_warning("migration: removing the redirect for %s: %s", kv_prefix_fmt(&rd->dst, a), strerror(-r));
        else
                log_info("migration: redirect for %s ended", kv_prefix_fmt(&rd->dst, a));
        if (rd->timer)
                event_source_free(rd->timer);
        rd->timer = NULL;
        rd->h = NULL;
}

static int on_redirect_expired(EventSource *s, void *userdata) {
        Redirect *rd = userdata;
        (void) s;
        rd->timer = NULL; /* freed by the loop after -ECANCELED */
        redirect_drop(rd);
        return -ECANCELED;
}

static void redirect_start(Handoff *h, const Endpoint *ep, const KvAddr *via) {
        char a[KV_ADDR_STRLEN], b[KV_ADDR_STRLEN];
        for (size_t i = 0; i < ep->n_addrs; i++) {
                if (ep->addrs[i].addr.family != via->family)
                        continue;
                KvPrefix dst = { .addr = ep->addrs[i].addr, .prefixlen = via->family == AF_INET ? 32 : 128 };
                Redirect *rd = NULL;
                for (size_t k = 0; k < HANDOFF_MAX_REDIRECTS && !rd; k++)
                        if (h->redirects[k].h && kv_addr_equal(&h->redirects[k].dst.addr, &dst.addr))
                                rd = &h->redirects[k]; /* a second migration away: restart its grace */
                for (size_t k = 0; k < HANDOFF_MAX_REDIRECTS && !rd; k++)
                        if (!h->redirects[k].h)
                                rd = &h->redirects[k];
                if (!rd) {
                        log_warning("migration: too many redirects pending; %s not redirected", kv_prefix_fmt(&dst, a));
                        continue;
                }
                if (rd->timer)
                        event_source_free(rd->timer);
                *rd = (Redirect){ .dst = dst, .via = *via, .h = h };
                int r = redirect_route(true, &dst, via);
                if (r < 0) {
                        log_warning("migration: redirect %s via %s: %s", kv_prefix_fmt(&dst, a), kv_addr_fmt(via, b),
                                    strerror(-r));
                        rd->h = NULL;
                        continue;
                }
                if (event_add_timer(h->loop, (uint64_t) h->redirect_grace_ms * 1000ULL, 0, on_redirect_expired, rd,
                                    &rd->timer) < 0) {
                        redirect_drop(rd);
                        continue;
                }
                log_info("migration: redirecting %s via %s for %u ms", kv_prefix_fmt(&dst, a), kv_addr_fmt(via, b),
                         h->redirect_grace_ms);
        }
}

/* The VM is back on this node (a ping-pong migration within the grace period): its redirect must go
 * before anything else, or this node would send the VM's packets away to where it no longer is. */
void handoff_redirect_cancel_for(Handoff *h, const Endpoint *ep) {
        for (size_t k = 0; k < HANDOFF_MAX_REDIRECTS; k++)
                for (size_t i = 0; h->redirects[k].h && i < ep->n_addrs; i++)
                        if (kv_addr_equal(&h->redirects[k].dst.addr, &ep->addrs[i].addr))
                                redirect_drop(&h->redirects[k]);
}

void handoff_redirect_stop_all(Handoff *h) {
        for (size_t k = 0; k < HANDOFF_MAX_REDIRECTS; k++)
                if (h->redirects[k].h)
                        redirect_drop(&h->redirects[k]);
}

/* Redirect routes a previous run left (it was killed during a grace period). */
void handoff_redirect_flush_stale(void) {
        _cleanup_nl_sock_ NlSock *sk = NULL;
        KvErr e = {};
        if (lnl_open_e(-1, &sk, &e) < 0)
                return;
        int n = lnl_route_flush_protocol(sk, HANDOFF_RTPROT_REDIRECT);
        if (n > 0)
                log_notice("removed %u redirect route(s) left by a previous run", (unsigned) n);
}

/* ---- migration-source ---- */

/* What each phase makes of the source attachments and of the history entry. */
static const MigState phase_state[_MIG_PHASE_MAX] = {
        [MIG_PHASE_BEGIN] = MIG_STATE_MIGRATING,
        [MIG_PHASE_SWITCHOVER] = MIG_STATE_SWITCHING,
        [MIG_PHASE_COMPLETED] = MIG_STATE_COMPLETED,
        [MIG_PHASE_ABORTED] = MIG_STATE_ABORTED,
};

/* The node that runs (or is about to run) the VM, when the source should send its packets there:
 * 1 and *ret_via its underlay address, 0 if not. */
static int redirect_via(Handoff *h, const Endpoint *ep, MigPhase phase, KvAddr *ret_via) {
        CsRecord rec;
        if (!h->cs || h->redirect_grace_ms == 0 || claimstore_get(h->cs, ep->network, ep->key, &rec) <= 0)
                return 0;
        /* at the switchover a ready target; once completed, the new holder */
        const char *node = phase == MIG_PHASE_SWITCHOVER ? (rec.target_ready ? rec.target : "") : rec.holder;
        if (!node[0] || streq(node, h->node_name))
                return 0;
        return claimstore_node_address(h->cs, node, ret_via) == 0;
}

/* Applies the phase to one attachment of the VM; true if it was redirected to the target. */
static bool source_phase(Handoff *h, Endpoint *ep, const MigSourceMsg *msg) {
        KvErr ee = {};
        KvAddr via;
        bool redirected = false;
        switch (msg->phase) {
        case MIG_PHASE_BEGIN:
                ep->mig_role = MIG_ROLE_SOURCE;
                snprintf(ep->mig_peer, sizeof ep->mig_peer, "%s", msg->target ? msg->target : "");
                ep->mig_started_usec = realtime_usec();
                break;
        case MIG_PHASE_SWITCHOVER:
                /* The VM has paused here: a ready target takes its packets from now on. The datapath stays
                 * as it is (the migration can still fail and resume the VM here). */
                if (redirect_via(h, ep, msg->phase, &via) > 0) {
                        redirect_start(h, ep, &via);
                        redirected = true;
                }
                break;
        case MIG_PHASE_COMPLETED:
                if (!ep->chained && ep->host_ifname[0] && host_link_updown(ep->host_ifname, false, &ee) < 0)
                        log_warning("migration: deactivating %s: %s", ep->id, ee.msg);
                if (redirect_via(h, ep, msg->phase, &via) > 0)
                        redirect_start(h, ep, &via); /* (re)starts the grace period */
                break;
        case MIG_PHASE_ABORTED:
        default:
                /* back to normal: packets redirected since a switchover come here again */
                handoff_redirect_cancel_for(h, ep);
                ep->mig_role = MIG_ROLE_NONE;
                ep->mig_peer[0] = '\0';
                ep->mig_started_usec = 0;
                break;
        }
        ep->mig_state = ep->mig_role == MIG_ROLE_NONE ? MIG_STATE_NONE : phase_state[msg->phase];
        handoff_persist(h, ep);
        return redirected;
}

int handoff_source(Handoff *h, json_t *args, json_t **ret, KvErr *e) {
        _cleanup_(mig_source_msg_done) MigSourceMsg msg = {};
        int r = mig_source_msg_from_json(args, &msg, e);
        if (r < 0)
                return r;
        bool begin = msg.phase == MIG_PHASE_BEGIN, switchover = msg.phase == MIG_PHASE_SWITCHOVER,
             done = msg.phase == MIG_PHASE_COMPLETED;
        char vm[160];
        snprintf(vm, sizeof vm, "%s/%s", msg.vm.vm_namespace, msg.vm.vm_name);
        _cleanup_(handoff_eps_done) HandoffEps eps = {};
        r = handoff_vm_endpoints(h, msg.vm.vm_namespace, msg.vm.vm_name, &eps);
        if (r < 0)
                return kverr_set(e, KV_ERR_INTERNAL, r, "migration-source: out of memory");
        unsigned n = 0, early = 0, moved = 0;
        for (size_t i = 0; i < eps.n; i++) {
                /* begin makes every attachment of the VM a source; the other phases act on those */
                if (!begin && eps.v[i]->mig_role != MIG_ROLE_SOURCE)
                        continue;
                MigState was = eps.v[i]->mig_state;
                if (source_phase(h, eps.v[i], &msg))
                        early++;
                moved += eps.v[i]->mig_state != was; /* not a retry of this phase */
                n++;
        }
        if (n == 0)
                return kverr_set(e, KV_ERR_UNKNOWN_CONTAINER, -ENOENT, "migration-source: no %sattachment of VM %s on this node",
                                 begin ? "" : "migrating ", vm);
        MigEvent *ev = begin ? handoff_log_new(h, vm, MIG_ROLE_SOURCE, msg.target)
                             : handoff_log_get(h, vm, MIG_ROLE_SOURCE, msg.target);
        ev->state = phase_state[msg.phase];
        ev->n_endpoints = n;
        if (msg.reason)
                snprintf(ev->reason, sizeof ev->reason, "%s", msg.reason);
        if (switchover)
                ev->switchover_usec = realtime_usec();
        else if (!begin) {
                ev->finished_usec = realtime_usec();
                if (done)
                        ev->switched_usec = ev->finished_usec;
                ev->downtime_ms = msg.downtime_ms;
                ev->total_ms = msg.total_ms;
                if (moved)
                        handoff_log_ended(h, ev);
        }
        handoff_log_save(h);
        if (switchover)
                log_notice("migration: VM %s paused for the switchover; %u of %u attachment(s) redirected to the target "
                           "early",
                           vm, early, n);
        else
                log_notice("migration: VM %s %s (%u attachment(s))%s%s", vm,
                           begin ? "is migrating away" : done ? "left this node" : "stays here: migration aborted", n,
                           msg.reason ? ": " : "", msg.reason ? msg.reason : "");
        MigSourceReply reply = { .endpoints = n, .has_redirected = switchover, .redirected = early };
        *ret = mig_source_reply_to_json(&reply);
        return *ret ? 0 : -ENOMEM;
}
