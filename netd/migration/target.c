/* SPDX-License-Identifier: Apache-2.0 */
/* The target node's half of the handoff (docs/migration.md, steps 1, 4 and 6): the passive target datapath,
 * its activation when the VM resumes here (the guest's first frame or `migration-activate`), and its roll
 * back when the target attachment goes away first. */
#include <linux/if_bridge.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/epoll.h>
#include <time.h>

#include "common/log.h"
#include "common/migproto.h"
#include "common/netns.h"
#include "netd/link/netlink.h"
#include "netd/migration/announce.h"
#include "netd/migration/handoff-priv.h"

/* Bridge port state (IFLA_BRPORT_STATE in an AF_BRIDGE RTM_SETLINK). A port in state *listening* passes
 * no frames either way and learns nothing while both ends of the veth stay up, so switching it to
 * forwarding takes effect at once (this kernel ignores "blocking" without STP, and resets "disabled"
 * on the next carrier event; listening stays):
 * taking the link down and up instead costs a carrier change, which the kernel's linkwatch applies
 * asynchronously (measured: ~200 ms of extra outage per masquerade migration). The bridge itself sets
 * a disabled port forwarding whenever its carrier comes up, so the state is set only once the carrier has
 * settled (IFF_RUNNING is reported after linkwatch ran). */
static int brport_set_state(const char *ifname, uint8_t state, KvErr *e) {
        _cleanup_nl_sock_ NlSock *sk = NULL;
        LnlLink l;
        int r = lnl_open_link(-1, ifname, &sk, &l, e);
        for (int i = 0; r >= 0 && state != BR_STATE_FORWARDING && !(l.flags & IFF_RUNNING) && i < 250; i++) {
                struct timespec ts = { .tv_nsec = 2 * 1000 * 1000 };
                nanosleep(&ts, NULL);
                r = lnl_link_get(sk, ifname, &l);
        }
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "migration: no link '%s'", ifname);
        struct ifinfomsg ifi = { .ifi_family = AF_BRIDGE, .ifi_index = l.ifindex };
        struct nlmsghdr *m = nl_msg_new(sk, RTM_SETLINK, 0, &ifi, sizeof ifi);
        struct nlattr *pi;
        if (!(pi = nl_nest_start(m, IFLA_PROTINFO | NLA_F_NESTED)) || nl_put_u8(m, IFLA_BRPORT_STATE, state) < 0)
                return -ENOMEM;
        nl_nest_end(m, pi);
        r = nl_request(sk, m);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "migration: cannot set bridge port '%s' %s", ifname,
                                       state == BR_STATE_FORWARDING ? "forwarding" : "listening");
        return 0;
}

/* ---- prepare, roll back ---- */

void handoff_mark_target(Endpoint *ep, const char *holder) {
        ep->mig_role = MIG_ROLE_TARGET;
        ep->mig_state = MIG_STATE_PREPARED;
        snprintf(ep->mig_peer, sizeof ep->mig_peer, "%s", holder);
        ep->mig_started_usec = realtime_usec();
}

static int watch_start(Handoff *h, Endpoint *ep, KvErr *e);

int handoff_prepare_target(Handoff *h, Endpoint *ep, KvErr *e) {
        if (h->host.is_masq_vm(ep)) {
                int r = brport_set_state(ep->host_ifname, BR_STATE_LISTENING, e);
                if (r < 0)
                        return r;
        }
        if (ep->kind == EP_KIND_VM && ep->tap[0]) {
                KvErr we = {};
                if (watch_start(h, ep, &we) < 0)
                        log_warning("migration: %s: %s (activation waits for the launcher)", ep->id, we.msg);
                handoff_early_arm(h, ep);
        }
        char vm[160];
        handoff_vm_id(ep, vm, sizeof vm);
        MigEvent *ev = handoff_log_get(h, vm, MIG_ROLE_TARGET, ep->mig_peer);
        ev->state = MIG_STATE_PREPARED;
        ev->n_endpoints++;
        handoff_log_save(h);
        log_info("migration: prepared passive target datapath for VM %s (%s, %s) held by node '%s'", vm, ep->id,
                 ep->binding, ep->mig_peer);
        return 0;
}

void handoff_target_roll_back(Handoff *h, Endpoint *ep) {
        char vm[160];
        handoff_vm_id(ep, vm, sizeof vm);
        (void) handoff_early_disarm(h, ep, NULL);
        if (h->cs && claimstore_abort_migration(h->cs, ep->network, ep->key) < 0)
                log_warning("migration: cannot withdraw as target of '%s'", ep->key);
        MigEvent *ev = handoff_log_current(h, vm, MIG_ROLE_TARGET);
        if (ev) {
                ev->state = MIG_STATE_ABORTED;
                snprintf(ev->reason, sizeof ev->reason, "target attachment removed before the VM arrived");
                ev->finished_usec = realtime_usec();
                handoff_log_ended(h, ev);
                handoff_log_save(h);
        }
        log_notice("migration: VM %s did not arrive; target attachment %s rolled back", vm, ep->id);
}

/* Activates every target attachment of VM ns/name; 'trigger' says who noticed the resume. */
static int activate_vm(Handoff *h, const char *ns, const char *name, const char *trigger, MigActivateReply *ret,
                       KvErr *e) {
        uint64_t t0 = now_usec();
        unsigned n = 0, announced = 0, already = 0;
        char reason[256] = "";
        _cleanup_(handoff_eps_done) HandoffEps eps = {};
        int r = handoff_vm_endpoints(h, ns, name, &eps);
        if (r < 0)
                return kverr_set(e, KV_ERR_INTERNAL, r, "migration-activate: out of memory");
        /* The passive targets of the VM: the others are left out of both passes below. */
        size_t k = 0;
        for (size_t i = 0; i < eps.n; i++) {
                if (eps.v[i]->mig_role != MIG_ROLE_TARGET)
                        continue;
                if (eps.v[i]->mig_state == MIG_STATE_ACTIVE)
                        already++;
                else
                        eps.v[k++] = eps.v[i];
        }
        eps.n = k;
        /* First the datapath of every attachment (this runs inside the network outage): carrier, the
         * route announcement, gratuitous ARP / NA. The bookkeeping (claim store, state files) follows. */
        for (size_t i = 0; i < eps.n; i++) {
                Endpoint *ep = eps.v[i];
                handoff_watch_stop(h, ep);
                KvErr ee = {};
                if (h->host.is_masq_vm(ep) && brport_set_state(ep->host_ifname, BR_STATE_FORWARDING, &ee) < 0) {
                        log_error("migration: activating %s: %s", ep->id, ee.msg);
                        snprintf(reason, sizeof reason, "%.200s", ee.msg);
                }
                handoff_route(h, ep, true);
                _cleanup_close_ int nsfd = -1;
                if (endpoint_netns_open(ep, &nsfd) == 0) {
                        KvErr ae = {};
                        int sock = -1;
                        int s = announce_send(nsfd, ep->sbx_ifname, ep->mac, ep->addrs, ep->n_addrs, 2,
                                              h->reaper ? &sock : NULL, &ae);
                        if (s < 0)
                                log_warning("migration: announcing %s on '%s': %s", ep->id, ep->sbx_ifname, ae.msg);
                        else
                                announced += (unsigned) s;
                        /* its close waits for an RCU grace period: not inside the outage */
                        if (sock >= 0 && reaper_queue_close(h->reaper, sock) < 0)
                                log_debug("migration: announce socket closed in place");
                } else
                        log_warning("migration: sandbox of %s is gone (%s)", ep->id, ep->netns);
                n++;
        }
        uint64_t switch_us = now_usec() - t0;
        uint64_t early = 0;
        bool armed = false;
        for (size_t i = 0; i < eps.n; i++) {
                Endpoint *ep = eps.v[i];
                /* forwarding normally now: the early redirect has done its part */
                bool a = false;
                early += handoff_early_disarm(h, ep, &a);
                armed |= a;
                KvErr ee = {};
                if (h->cs && claimstore_finish_migration(h->cs, ep->network, ep->key, &ee) < 0) {
                        log_error("migration: claim store: %s", ee.msg);
                        snprintf(reason, sizeof reason, "%.200s", ee.msg);
                }
                IpamClaim *c = ipam_find(h->ipam, ep->network, ep->key);
                if (c) {
                        KvErr ie = {};
                        IGNORE_RESULT(ipam_set_state(h->ipam, c, IPAM_CLAIM_ACTIVE, ep->id, &ie));
                }
                ep->mig_state = MIG_STATE_ACTIVE;
                handoff_persist(h, ep);
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
                MigEvent *ev = handoff_log_get(h, vm, MIG_ROLE_TARGET, "");
                ev->state = MIG_STATE_ACTIVE;
                snprintf(ev->reason, sizeof ev->reason, "%s", reason);
                ev->switched_usec = ev->finished_usec = realtime_usec();
                ev->activate_us = (long long) switch_us;
                ev->early_packets = armed ? (long long) early : -1;
                if (!already)
                        handoff_log_ended(h, ev);
                handoff_log_save(h);
                log_notice("migration: VM %s is active on this node (%s; %u attachment(s), %u announcement(s), "
                           "datapath switched in %llu us, %llu us in all; %llu packet(s) came early)",
                           vm, trigger, n, announced, (unsigned long long) switch_us, (unsigned long long) us,
                           (unsigned long long) early);
        }
        if (n == 0) {
                /* active already (the guest's first frame came first): the figures that activation recorded */
                const MigEvent *last = handoff_log_latest(h, vm, MIG_ROLE_TARGET);
                if (last && last->state == MIG_STATE_ACTIVE) {
                        early = last->early_packets > 0 ? (uint64_t) last->early_packets : 0;
                        switch_us = last->activate_us >= 0 ? (uint64_t) last->activate_us : 0;
                }
        }
        if (ret)
                *ret = (MigActivateReply){ .endpoints = n, .already_active = already, .announcements = announced,
                                           .switch_us = switch_us, .activate_us = us, .early_packets = early };
        return 0;
}

int handoff_activate(Handoff *h, json_t *args, json_t **ret, KvErr *e) {
        _cleanup_(mig_activate_msg_done) MigActivateMsg msg = {};
        int r = mig_activate_msg_from_json(args, &msg, e);
        if (r < 0)
                return r;
        MigActivateReply reply;
        r = activate_vm(h, msg.vm.vm_namespace, msg.vm.vm_name, "the launcher saw the domain resume", &reply, e);
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
        Handoff *h;
        EventSource *src;
        int fd, ifindex;
        char ns[128], name[128];
} MigWatch;

void handoff_watch_stop(Handoff *h, Endpoint *ep) {
        MigWatch *w = ep->mig_watch;
        if (!w)
                return;
        ep->mig_watch = NULL;
        event_source_free(w->src);
        /* a packet socket's close waits for an RCU grace period: off the event loop when possible */
        if (!h->reaper || reaper_queue_close(h->reaper, w->fd) < 0)
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
        if (activate_vm(w->h, ns, name, "first frame from the guest", NULL, &e) < 0)
                log_warning("migration: activating %s/%s on the guest's first frame: %s", ns, name, e.msg);
        return 0;
}

static int watch_start(Handoff *h, Endpoint *ep, KvErr *e) {
        _cleanup_close_ int nsfd = -1;
        int r = endpoint_netns_open(ep, &nsfd);
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
        *w = (MigWatch){ .h = h, .fd = fd, .ifindex = (int) ifindex };
        snprintf(w->ns, sizeof w->ns, "%s", ep->vm_namespace);
        snprintf(w->name, sizeof w->name, "%s", ep->vm_name);
        r = event_add_io(h->loop, fd, EPOLLIN, on_guest_frame, w, &w->src);
        if (r < 0) {
                free(w);
                close(fd);
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "migration: cannot watch '%s'", ep->tap);
        }
        ep->mig_watch = w;
        return 0;
}

void handoff_forget(Handoff *h, Endpoint *ep) {
        handoff_watch_stop(h, ep);
        (void) handoff_early_disarm(h, ep, NULL);
}
