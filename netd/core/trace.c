/* SPDX-License-Identifier: Apache-2.0 */
/* netd core: `trace` (kvnetctl trace FROM TO [PROTO[/PORT]]), what this node would do with one packet.
 *
 * Each end is an attachment of this node (a VM by NAMESPACE/NAME[:INTERFACE], a container by its ID, or
 * one of their addresses) or an address elsewhere. The walk asks the kernel where the kernel decides —
 * the attachment's kernel side against its record (CHECK), the anti-spoofing sets of the port, the
 * bridge's forwarding database, the route lookup, the node NAT's elements — and netd's own records where
 * netd decides (a migration's passive target, the early switchover, the sandbox NAT's forwarded ports).
 * Every hop names the object that decided it. Nothing is sent and nothing changes. */
#include <net/if.h>
#include <netinet/in.h>
#include <linux/rtnetlink.h>
#include <stdarg.h>
#include <stdio.h>

#include "common/json-util.h"
#include "common/netns.h"
#include "netd/binding/binding.h"
#include "netd/core/netd-priv.h"
#include "netd/link/netlink.h"
#include "netd/migration/handoff-priv.h"

#define TRACE_TEXT 512

typedef struct TraceEnd {
        const char *spec;
        Endpoint *ep; /* NULL: an address that is no attachment of this node */
        KvAddr addr;  /* the packet's address at this end */
} TraceEnd;

typedef struct Trace {
        Manager *m;
        TraceEnd from, to;
        uint8_t proto; /* IPPROTO_ICMP / _TCP / _UDP (ICMPv6 is IPPROTO_ICMP with an IPv6 packet) */
        uint16_t port; /* 0: none given */
        json_t *hops;
        const char *verdict; /* the walk's end: delivered, dropped, leaves-node, redirected, held, broken */
} Trace;

/* snprintf that may cut: every text here is for people, and a cut one is still the first part of it */
static void txt(char *buf, size_t n, const char *fmt, ...) _printf_(3, 4);
static void txt(char *buf, size_t n, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, n, fmt, ap);
        va_end(ap);
}

static void hop(Trace *t, const char *name, const char *verdict, const char *where, const char *by, const char *fmt,
                ...) _printf_(6, 7);
static void hop(Trace *t, const char *name, const char *verdict, const char *where, const char *by, const char *fmt,
                ...) {
        char detail[TRACE_TEXT] = "";
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(detail, sizeof detail, fmt, ap);
                va_end(ap);
        }
        json_array_append_new(t->hops, json_pack("{s:I,s:s,s:s,s:s,s:s,s:s}", "step",
                                                 (json_int_t) json_array_size(t->hops) + 1, "hop", name, "verdict",
                                                 verdict, "where", where ? where : "", "by", by ? by : "", "detail",
                                                 detail));
}

static const char *proto_name(const Trace *t) {
        if (t->proto == IPPROTO_TCP)
                return "tcp";
        if (t->proto == IPPROTO_UDP)
                return "udp";
        return t->to.addr.family == AF_INET6 ? "icmpv6" : "icmp";
}

/* ---- the ends ---- */

static bool ep_has_addr(const Endpoint *ep, const KvAddr *a) {
        for (size_t i = 0; i < ep->n_addrs; i++)
                if (kv_addr_equal(&ep->addrs[i].addr, a))
                        return true;
        return false;
}

static const KvAddr *ep_addr_of(const Endpoint *ep, int family) {
        for (size_t i = 0; i < ep->n_addrs; i++)
                if (ep->addrs[i].addr.family == family)
                        return &ep->addrs[i].addr;
        return NULL;
}

static bool ep_subnet_has(const Endpoint *ep, const KvAddr *a) {
        for (size_t i = 0; i < ep->n_addrs; i++)
                if (kv_prefix_contains(&ep->addrs[i], a))
                        return true;
        return false;
}

/* "NAMESPACE/NAME[:INTERFACE]", "NAME" (namespace default) or a container ID; the VM's attachment that can
 * reach near (an address or NULL): on its subnet, else the VM's "default" interface, else any. */
static Endpoint *find_named(Manager *m, const char *spec, const KvAddr *near) {
        char ns[64] = "default", name[64], iface[64] = "";
        const char *slash = strchr(spec, '/'), *colon = strrchr(spec, ':');
        const char *n0 = slash ? slash + 1 : spec;
        size_t nlen = colon && colon > n0 ? (size_t) (colon - n0) : strlen(n0);
        if (slash && (size_t) (slash - spec) < sizeof ns)
                txt(ns, sizeof ns, "%.*s", (int) (slash - spec), spec);
        txt(name, sizeof name, "%.*s", (int) (nlen < sizeof name ? nlen : sizeof name - 1), n0);
        if (colon && colon > n0)
                txt(iface, sizeof iface, "%s", colon + 1);
        Endpoint *best = NULL;
        int best_score = -1;
        EP_FOREACH(m, ep) {
                if (ep->state != EP_READY)
                        continue;
                if (streq(ep->container_id, spec))
                        return ep;
                if (ep->kind != EP_KIND_VM || !streq(ep->vm_namespace, ns) || !streq(ep->vm_name, name) ||
                    (iface[0] && !streq(ep->vm_interface, iface)))
                        continue;
                int score = near && ep_subnet_has(ep, near) ? 3 : streq(ep->vm_interface, "default") ? 2 : 1;
                /* a migration's copy that does not carry the VM (a prepared target, a source whose VM left) last */
                if (ep->mig_role == MIG_ROLE_TARGET && ep->mig_state == MIG_STATE_PREPARED)
                        score = 0;
                if (score > best_score)
                        best = ep, best_score = score;
        }
        return best;
}

static Endpoint *find_addr(Manager *m, const KvAddr *a) {
        Endpoint *found = NULL;
        EP_FOREACH(m, ep)
                if (ep->state == EP_READY && ep_has_addr(ep, a) &&
                    (!found || (found->mig_role == MIG_ROLE_TARGET && found->mig_state == MIG_STATE_PREPARED)))
                        found = ep;
        return found;
}

static int resolve(Trace *t, TraceEnd *end, const char *field, const KvAddr *near, KvErr *e) {
        if (kv_addr_parse(end->spec, &end->addr) == 0) {
                end->ep = find_addr(t->m, &end->addr);
                return 0;
        }
        end->ep = find_named(t->m, end->spec, near);
        if (!end->ep)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ENOENT,
                                 "trace: '%s' '%s' is neither an address nor a VM (NAMESPACE/NAME[:INTERFACE]) or "
                                 "container ID with an attachment on this node",
                                 field, end->spec);
        return 0;
}

static const char *ep_label(const Endpoint *ep, char *buf, size_t n) {
        if (ep->kind == EP_KIND_VM)
                txt(buf, n, "VM %s/%s:%s", ep->vm_namespace, ep->vm_name, ep->vm_interface);
        else
                txt(buf, n, "container %.64s %s", ep->container_id, ep->ifname);
        return buf;
}

/* ---- the kernel side of an attachment ---- */

/* CHECK of the attachment: 0, or the first thing missing. */
static int ep_kernel_check(Manager *m, const Endpoint *ep, KvErr *e) {
        _cleanup_close_ int nsfd = -1;
        int r = endpoint_netns_open(ep, &nsfd);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INVALID_ENV, r, "sandbox '%s' cannot be opened", ep->netns);
        return endpoint_kernel_check(m, ep, nsfd, e);
}

/* The attachment's own hop (where the packet leaves or enters its sandbox); false: its kernel side is broken
 * (the walk ends there). */
static bool ep_hop(Trace *t, const Endpoint *ep, bool source) {
        char label[160], where[256];
        KvErr e = {};
        ep_label(ep, label, sizeof label);
        if (ep->kind == EP_KIND_VM && ep->tap[0])
                txt(where, sizeof where, "%s: tap %s in %s, node port %s", label, ep->tap, ep->netns,
                    ep->host_ifname[0] ? ep->host_ifname : "-");
        else
                txt(where, sizeof where, "%s: %s in %s, node port %s", label, ep->ifname, ep->netns,
                    ep->host_ifname[0] ? ep->host_ifname : "-");
        char by[TRACE_TEXT];
        txt(by, sizeof by, "attachment %s (binding %s%s)", ep->id, ep->binding[0] ? ep->binding : "bridge",
            ep->chained ? ", chained" : "");
        if (ep_kernel_check(t->m, ep, &e) < 0) {
                hop(t, source ? "source" : "destination", "broken", where, by,
                    "the kernel side differs from netd's record: %s", e.msg);
                t->verdict = "broken";
                return false;
        }
        hop(t, source ? "source" : "destination", "pass", where, by, "kernel side as recorded (CHECK passes)");
        return true;
}

/* ---- anti-spoofing ---- */

static bool src_is_port_link_local(const PortFilterPort *p, const KvAddr *a) {
        KvAddr ll;
        portfilter_link_local(p->mac, &ll);
        return a->family == AF_INET6 && kv_addr_equal(&ll, a);
}

/* What the filter dropped at the port so far (its element of @portdrops). */
static uint64_t port_drops(Manager *m, const char *ifname) {
        uint64_t packets = 0;
        if (m->portfilter)
                (void) !portfilter_port_drops(m->portfilter, ifname, &packets);
        return packets;
}

/* false: dropped (or the filter is broken) */
static bool antispoof_hop(Trace *t, const Endpoint *ep) {
        char mac[KV_MAC_STRLEN], src[KV_ADDR_STRLEN];
        kv_mac_fmt(ep->mac, mac);
        kv_addr_fmt(&t->from.addr, src);
        if (!bridge_port_filtered(ep)) {
                const char *why = ep_binding(ep)->kind == BINDING_SRIOV ? "a VF: the NIC's spoof check filters it"
                                  : ep->chained ? "not filtered: a chained attachment's port is another plugin's"
                                  : !ep->antispoof ? "not filtered: the network has \"antiSpoofing\": false"
                                                   : "not filtered: not a port of a node bridge";
                hop(t, "anti-spoofing", "accept", ep->host_ifname, NULL, "%s", why);
                return true;
        }
        PortFilterPort p;
        bridge_port_filter_from(ep, &p);
        KvErr e = {};
        if (!t->m->portfilter || portfilter_check(t->m->portfilter, &p, &e) < 0) {
                hop(t, "anti-spoofing", "broken", ep->host_ifname, "bridge " PORTFILTER_TABLE,
                    "the port's filter is not in the kernel as recorded: %s",
                    t->m->portfilter ? e.msg : "no filter table");
                t->verdict = "broken";
                return false;
        }
        const char *set = t->from.addr.family == AF_INET ? "ip4" : "ip6";
        bool own = false;
        for (size_t i = 0; i < p.n_addrs; i++)
                own = own || kv_addr_equal(&p.addrs[i], &t->from.addr);
        own = own || src_is_port_link_local(&p, &t->from.addr);
        char by[TRACE_TEXT];
        if (p.check_ips && !own) {
                txt(by, sizeof by, "bridge %s prerouting: port %s is in @ipports, source %s is not in @%s",
                    PORTFILTER_TABLE, ep->host_ifname, src, set);
                hop(t, "anti-spoofing", "drop", ep->host_ifname, by,
                    "spoofed source: the port may send from its own addresses only (MAC %s); it has dropped %llu "
                    "frame(s) so far", mac, (unsigned long long) port_drops(t->m, ep->host_ifname));
                t->verdict = "dropped";
                return false;
        }
        uint16_t dhcp_port = t->from.addr.family == AF_INET ? 67 : 547;
        if (p.dhcp_local && t->proto == IPPROTO_UDP && t->port == dhcp_port) {
                txt(by, sizeof by, "bridge %s prerouting: port %s is in @dhcpports, UDP to %u dropped",
                    PORTFILTER_TABLE, ep->host_ifname, dhcp_port);
                hop(t, "anti-spoofing", "drop", ep->host_ifname, by,
                    "netd answers this guest's DHCP on its tap; its client messages stay off the bridge");
                t->verdict = "dropped";
                return false;
        }
        if (!p.check_ips)
                txt(by, sizeof by, "bridge %s prerouting: MAC %s is the port's (@macs); no addresses to check "
                    "(no kvnet IPAM)", PORTFILTER_TABLE, mac);
        else if (t->proto == IPPROTO_TCP || t->proto == IPPROTO_UDP)
                txt(by, sizeof by, "bridge %s prerouting: fast path, %s . %s . %s is in @src%c", PORTFILTER_TABLE,
                    ep->host_ifname, mac, src, t->from.addr.family == AF_INET ? '4' : '6');
        else
                txt(by, sizeof by, "bridge %s prerouting: MAC %s in @macs, source %s in @%s", PORTFILTER_TABLE,
                    mac, src, set);
        hop(t, "anti-spoofing", "accept", ep->host_ifname, by, "the port's own MAC and address (the port has "
            "dropped %llu frame(s) so far)", (unsigned long long) port_drops(t->m, ep->host_ifname));
        return true;
}

/* ---- forwarding on the node ---- */

static bool is_kvnet_bridge(Manager *m, const char *name) {
        for (size_t i = 0; i < m->n_networks; i++)
                if (streq(m->networks[i].bridge, name))
                        return true;
        return false;
}

static const char *rtprot_name(uint8_t p, char buf[static 32]) {
        static const char *const names[] = { [RTPROT_REDIRECT] = "redirect", [RTPROT_KERNEL] = "kernel",
                                             [RTPROT_BOOT] = "boot", [RTPROT_STATIC] = "static" };
        if (p == HANDOFF_RTPROT_REDIRECT)
                txt(buf, 32, "%u (kvnet migration redirect)", p);
        else if (p < ELEMENTSOF(names) && names[p])
                txt(buf, 32, "%s", names[p]);
        else
                txt(buf, 32, "%u", p);
        return buf;
}

static const char *ifname_of(int ifindex, char buf[static IF_NAMESIZE]) {
        if (ifindex <= 0 || !if_indextoname((unsigned) ifindex, buf))
                txt(buf, IF_NAMESIZE, "#%d", ifindex);
        return buf;
}

/* The bridge's choice of port for the destination's MAC. false: it is not delivered to the destination. */
static bool fdb_hop(Trace *t, NlSock *sk, const char *bridge, const Endpoint *dst) {
        LnlLink br;
        char mac[KV_MAC_STRLEN], port[IF_NAMESIZE], by[TRACE_TEXT];
        kv_mac_fmt(dst->mac, mac);
        if (lnl_link_get(sk, bridge, &br) < 0) {
                hop(t, "bridge", "drop", bridge, NULL, "the bridge does not exist");
                t->verdict = "broken";
                return false;
        }
        bool is_static = false;
        int pidx = lnl_fdb_port(sk, br.ifindex, dst->mac, &is_static);
        if (pidx < 0) {
                hop(t, "bridge", "unknown", bridge, NULL, "reading the forwarding database: %s", strerror(-pidx));
                return true;
        }
        if (pidx == 0) {
                txt(by, sizeof by, "bridge %s fdb: no entry for %s", bridge, mac);
                hop(t, "bridge", "flood", bridge, by, "not learnt yet: the frame goes to every port, %s among them",
                    dst->host_ifname);
                return true;
        }
        ifname_of(pidx, port);
        txt(by, sizeof by, "bridge %s fdb: %s dev %s%s", bridge, mac, port, is_static ? " (static)" : " (learnt)");
        if (!streq(port, dst->host_ifname)) {
                hop(t, "bridge", "forward", port, by, "the bridge sends %s to %s, not to the destination's port %s "
                    "(the MAC was last seen there: another node over the overlay, or a stale entry)",
                    mac, port, dst->host_ifname);
                t->verdict = "leaves-node";
                return false;
        }
        hop(t, "bridge", "forward", port, by, "to the destination's port");
        return true;
}

/* The node NAT for a packet of src leaving the node (ipMasq). */
static void masq_hop(Trace *t, NlSock *sk, const Endpoint *src, const LnlRouteHit *hit) {
        char by[TRACE_TEXT], a[KV_ADDR_STRLEN], oif[IF_NAMESIZE];
        const char *fam = t->to.addr.family == AF_INET ? "4" : "6";
        if (!src || !src->ipmasq || !ep_binding(src)->node_nat) {
                hop(t, "nat", "none", NULL, NULL, "the source keeps its address (%s)",
                    src ? "its network has no ipMasq" : "not an attachment of this node");
                return;
        }
        if (ep_subnet_has(src, &t->to.addr)) {
                txt(by, sizeof by, "table inet kvnet postrouting: daddr in @nomasq%s", fam);
                hop(t, "nat", "none", NULL, by, "the destination is on the source's own network: not masqueraded");
                return;
        }
        txt(by, sizeof by, "table inet kvnet postrouting: saddr in @masq%s, daddr not in @nomasq%s: masquerade", fam,
       fam);
        /* masquerade takes the address the node itself would send from to there (a forwarded lookup has none) */
        LnlRouteHit own = *hit;
        if (!own.prefsrc.family && lnl_route_get(sk, &t->to.addr, NULL, 0, &own) < 0)
                own = *hit;
        hop(t, "nat", "masquerade", ifname_of(hit->oif, oif), by, "the source becomes %s's address%s%s", oif,
            own.prefsrc.family ? " " : "", own.prefsrc.family ? kv_addr_fmt(&own.prefsrc, a) : "");
}

/* A host port forward of some attachment that matches the packet to a node address (TO not an attachment). */
static Endpoint *port_forward(Trace *t, const EpPortMapping **ret_pm) {
        if (!t->port || (t->proto != IPPROTO_TCP && t->proto != IPPROTO_UDP))
                return NULL;
        EP_FOREACH(t->m, ep) {
                for (size_t i = 0; ep->state == EP_READY && i < ep->n_pm; i++) {
                        const EpPortMapping *pm = &ep->pm[i];
                        if (pm->proto != t->proto || pm->host_port != t->port)
                                continue;
                        if (pm->host_ip.family ? !kv_addr_equal(&pm->host_ip, &t->to.addr)
                                               : !ep_addr_of(ep, t->to.addr.family))
                                continue;
                        *ret_pm = pm;
                        return ep;
                }
        }
        return NULL;
}

/* ---- the destination's side ---- */

static bool vm_port_forwarded(const Endpoint *ep, uint8_t proto, uint16_t port) {
        if (ep->n_vm_ports == 0)
                return true;
        for (size_t i = 0; i < ep->n_vm_ports; i++)
                if (ep->vm_ports[i].proto == proto && ep->vm_ports[i].port == port)
                        return true;
        return false;
}

static void deliver(Trace *t, const Endpoint *dst) {
        char by[TRACE_TEXT];
        if (dst->mig_role == MIG_ROLE_TARGET && dst->mig_state == MIG_STATE_PREPARED) {
                txt(by, sizeof by, "migration of %s/%s: this node is the passive target, %s the source",
                    dst->vm_namespace, dst->vm_name, dst->mig_peer[0] ? dst->mig_peer : "another node");
                if (dst->early_ifindex)
                        hop(t, "migration", "held", dst->tap[0] ? dst->tap : dst->host_ifname, by,
                            "early switchover armed (migredir): packets for the VM wait in the target's tap until "
                            "the guest resumes here");
                else
                        hop(t, "migration", "held", dst->host_ifname, by,
                            "the VM still runs on the source; this copy's port passes nothing to a guest until "
                            "activation");
                t->verdict = "held";
                return;
        }
        if (dst->mig_role == MIG_ROLE_SOURCE && dst->mig_state == MIG_STATE_COMPLETED) {
                txt(by, sizeof by, "migration of %s/%s to %s completed", dst->vm_namespace, dst->vm_name,
                    dst->mig_peer[0] ? dst->mig_peer : "another node");
                hop(t, "migration", "drop", dst->host_ifname, by, "the guest no longer runs behind this port");
                t->verdict = "dropped";
                return;
        }
        if (dst->mig_role == MIG_ROLE_SOURCE &&
            (dst->mig_state == MIG_STATE_MIGRATING || dst->mig_state == MIG_STATE_SWITCHING))
                hop(t, "migration", "pass", dst->host_ifname, NULL, "the VM is migrating to %s; %s",
                    dst->mig_peer[0] ? dst->mig_peer : "another node",
                    dst->mig_state == MIG_STATE_SWITCHING ? "it is paused for the last pass (the guest reads the "
                                                            "packet on the node it resumes on)"
                                                          : "it still runs here");
        if (ep_binding(dst)->kind == BINDING_MASQUERADE && dst->kind == EP_KIND_VM) {
                char ports[64] = "every port and ICMP";
                if (dst->n_vm_ports)
                        txt(ports, sizeof ports, "%zu listed port(s)", dst->n_vm_ports);
                txt(by, sizeof by, "table inet kvnet-masq prerouting (sandbox %s): dnat to the guest (%s)",
                    dst->netns, ports);
                if (t->proto != IPPROTO_ICMP ? !vm_port_forwarded(dst, t->proto, t->port) : dst->n_vm_ports > 0) {
                        hop(t, "sandbox-nat", "drop", dst->sbx_ifname, by, "%s%s%u is not forwarded to the guest",
                            proto_name(t), t->port ? "/" : "", t->port);
                        t->verdict = "dropped";
                        return;
                }
                hop(t, "sandbox-nat", "dnat", dst->sbx_ifname, by, "the VM's address becomes the guest's");
        }
        char label[160];
        hop(t, "deliver", "delivered", dst->kind == EP_KIND_VM && dst->tap[0] ? dst->tap : dst->ifname, NULL, "%s",
            ep_label(dst, label, sizeof label));
        t->verdict = "delivered";
}

/* ---- the walk ---- */

static void walk(Trace *t) {
        Manager *m = t->m;
        Endpoint *src = t->from.ep, *dst = t->to.ep;
        char a[KV_ADDR_STRLEN], b[KV_ADDR_STRLEN], by[TRACE_TEXT], oif[IF_NAMESIZE];
        _cleanup_nl_sock_ NlSock *sk = NULL;
        KvErr e = {};
        if (lnl_open_e(-1, &sk, &e) < 0) {
                hop(t, "node", "unknown", NULL, NULL, "%s", e.msg);
                t->verdict = "broken";
                return;
        }
        const char *bridge = NULL;
        if (src) {
                if (!ep_hop(t, src, true))
                        return;
                if (src->mig_role == MIG_ROLE_TARGET && src->mig_state == MIG_STATE_PREPARED) {
                        hop(t, "migration", "drop", src->host_ifname, NULL,
                            "a passive migration target: the VM runs on %s; its guest sends nothing from here yet",
                            src->mig_peer[0] ? src->mig_peer : "another node");
                        t->verdict = "dropped";
                        return;
                }
                if (ep_binding(src)->kind == BINDING_SRIOV) {
                        hop(t, "vf", "leaves-node", src->sriov.pci, NULL,
                            "the VF sends on the NIC itself; this node's bridges, filters and routes do not see it");
                        t->verdict = "leaves-node";
                        return;
                }
                if (ep_binding(src)->kind == BINDING_MASQUERADE && src->kind == EP_KIND_VM) {
                        txt(by, sizeof by, "table inet kvnet-masq postrouting (sandbox %s): snat", src->netns);
                        hop(t, "sandbox-nat", "snat", src->sbx_ifname, by, "the guest's address becomes the VM's, %s",
                            kv_addr_fmt(&t->from.addr, a));
                }
                if (!antispoof_hop(t, src))
                        return;
                bridge = src->bridge[0] ? src->bridge : NULL;
        } else {
                const EpPortMapping *pm = NULL;
                Endpoint *fw = dst ? NULL : port_forward(t, &pm);
                if (fw) {
                        const KvAddr *to = ep_addr_of(fw, t->to.addr.family);
                        txt(by, sizeof by, "table inet kvnet prerouting: %s %s . %s . %u in @pf%s%s",
                            pm->host_ip.family ? "daddr" : "fib daddr type local,",
                            pm->host_ip.family ? kv_addr_fmt(&pm->host_ip, a) : "", proto_name(t), t->port,
                            t->to.addr.family == AF_INET ? "4" : "6", pm->host_ip.family ? "" : "any");
                        hop(t, "port-forward", "dnat", NULL, by, "host port %u goes to %s port %u", t->port,
                            kv_addr_fmt(to, b), pm->container_port);
                        t->to.ep = dst = fw;
                        t->to.addr = *to;
                        t->port = pm->container_port;
                } else
                        hop(t, "source", "pass", kv_addr_fmt(&t->from.addr, a), NULL,
                            "not an attachment of this node: the packet is taken to reach the node");
        }

        /* an armed early switchover takes the packets for the VM that reach the node before routing does */
        if (!src && dst && dst->mig_role == MIG_ROLE_TARGET && dst->mig_state == MIG_STATE_PREPARED &&
            dst->early_ifindex) {
                txt(by, sizeof by, "migredir (tc ingress on the node's uplink): %s is armed for attachment %s",
               kv_addr_fmt(&t->to.addr, a), dst->id);
                hop(t, "migration-redirect", "forward", ifname_of(dst->early_ifindex, oif), by,
                    "early switchover: straight into the target's port, past the node's routes");
                deliver(t, dst);
                return;
        }

        /* on the source's own segment: the bridge alone */
        if (dst && src && bridge && streq(dst->bridge, bridge) && ep_subnet_has(src, &t->to.addr)) {
                if (!fdb_hop(t, sk, bridge, dst))
                        return;
        } else {
                LnlLink br = {};
                int iif = bridge && lnl_link_get(sk, bridge, &br) >= 0 ? br.ifindex : 0;
                LnlRouteHit hit;
                int r = lnl_route_get(sk, &t->to.addr, src ? &t->from.addr : NULL, iif, &hit);
                if (r < 0) {
                        txt(by, sizeof by, "route lookup for %s%s%s", kv_addr_fmt(&t->to.addr, a),
                            iif ? " from " : "", iif ? kv_addr_fmt(&t->from.addr, b) : "");
                        hop(t, "route", "drop", bridge, by, "%s", strerror(-r));
                        t->verdict = "dropped";
                        return;
                }
                ifname_of(hit.oif, oif);
                char prot[32];
                txt(by, sizeof by, "route %s%s%s dev %s table %u proto %s", kv_addr_fmt(&t->to.addr, a),
                    hit.gw.family ? " via " : "", hit.gw.family ? kv_addr_fmt(&hit.gw, b) : "", oif, hit.table,
                    rtprot_name(hit.protocol, prot));
                if (hit.type == RTN_LOCAL) {
                        hop(t, "route", "local", "node", by, "to this node itself");
                        t->verdict = "delivered";
                        return;
                }
                if (hit.type != RTN_UNICAST) {
                        hop(t, "route", "drop", oif, by, "route type %u (unreachable, blackhole or prohibit)",
                            hit.type);
                        t->verdict = "dropped";
                        return;
                }
                if (hit.protocol == HANDOFF_RTPROT_REDIRECT) {
                        hop(t, "migration-redirect", "redirected", oif, by,
                            "the VM migrated away: for the grace period its packets go to the node at %s",
                            hit.gw.family ? kv_addr_fmt(&hit.gw, b) : "-");
                        t->verdict = "redirected";
                        return;
                }
                if (dst && is_kvnet_bridge(m, oif) && streq(dst->bridge, oif)) {
                        hop(t, "route", "forward", oif, by, "routed by the node onto %s's bridge", dst->network);
                        if (!fdb_hop(t, sk, oif, dst))
                                return;
                } else {
                        hop(t, "route", "forward", oif, by, "leaves the node%s%s", hit.gw.family ? " via " : "",
                            hit.gw.family ? kv_addr_fmt(&hit.gw, b) : "");
                        masq_hop(t, sk, src, &hit);
                        t->verdict = "leaves-node";
                        return;
                }
        }
        if (!ep_hop(t, dst, false))
                return;
        deliver(t, dst);
}

int do_trace(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        const char *from = NULL, *to = NULL, *proto = NULL, *src = NULL;
        long long port = 0;
        int r;
        if ((r = json_get_string(args, "trace", "from", true, &from, e)) < 0 ||
            (r = json_get_string(args, "trace", "to", true, &to, e)) < 0 ||
            (r = json_get_string(args, "trace", "protocol", false, &proto, e)) < 0 ||
            (r = json_get_string(args, "trace", "src", false, &src, e)) < 0 ||
            (r = json_get_int(args, "trace", "port", false, 0, 65535, &port, e)) < 0)
                return r;
        Trace t = { .m = m, .from.spec = from, .to.spec = to, .proto = IPPROTO_ICMP, .port = (uint16_t) port };
        if (proto && streq(proto, "tcp"))
                t.proto = IPPROTO_TCP;
        else if (proto && streq(proto, "udp"))
                t.proto = IPPROTO_UDP;
        else if (proto && !streq(proto, "icmp"))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "trace: 'protocol' must be tcp, udp or icmp, got '%s'", proto);
        if (port && t.proto == IPPROTO_ICMP)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "trace: 'port' %lld needs protocol tcp or udp",
                                 port);
        KvAddr spoof = {};
        if (src && kv_addr_parse(src, &spoof) < 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "trace: 'src' must be an IP address, got '%s'",
                                 src);

        /* an address on either side decides the family, and which of a VM's attachments the other side is */
        KvAddr to_a = {}, from_a = {};
        bool to_is_addr = kv_addr_parse(to, &to_a) == 0, from_is_addr = kv_addr_parse(from, &from_a) == 0;
        if ((r = resolve(&t, &t.to, "to", from_is_addr ? &from_a : NULL, e)) < 0 ||
            (r = resolve(&t, &t.from, "from", to_is_addr ? &to_a : NULL, e)) < 0)
                return r;
        if (!t.from.ep && !t.to.ep && !port_forward(&t, &(const EpPortMapping *){ NULL }))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ENOENT,
                                 "trace: neither 'from' '%s' nor 'to' '%s' is an attachment of this node (nor a "
                                 "host port it forwards)",
                                 from, to);
        int family = to_is_addr ? to_a.family : from_is_addr ? from_a.family : spoof.family;
        if (!family && t.to.ep && t.to.ep->n_addrs)
                family = t.to.ep->addrs[0].addr.family;
        if (!family)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "trace: '%s' has no IP address (an L2 network): trace to one of its neighbours' "
                                 "addresses",
                                 to);
        const KvAddr *a;
        if (!to_is_addr) {
                if (!(a = ep_addr_of(t.to.ep, family)))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "trace: 'to' '%s' has no IPv%c address",
                                         to, family == AF_INET ? '4' : '6');
                t.to.addr = *a;
        }
        if (spoof.family) {
                if (!t.from.ep)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "trace: 'src' needs 'from' to be an attachment of this node, '%s' is not",
                                         from);
                t.from.addr = spoof;
        } else if (!from_is_addr) {
                if (!(a = ep_addr_of(t.from.ep, family)))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "trace: 'from' '%s' has no IPv%c address",
                                         from, family == AF_INET ? '4' : '6');
                t.from.addr = *a;
        }
        if (t.from.addr.family != t.to.addr.family)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "trace: 'from' and 'to' are of different families (IPv4 and IPv6)");

        t.hops = json_array();
        t.verdict = "unknown";
        char fa[KV_ADDR_STRLEN], ta[KV_ADDR_STRLEN];
        json_t *packet = json_pack("{s:s,s:s,s:s}", "protocol", proto_name(&t), "src", kv_addr_fmt(&t.from.addr, fa),
                                   "dst", kv_addr_fmt(&t.to.addr, ta));
        if (t.port)
                json_object_set_new(packet, "port", json_integer(t.port));
        char fl[160] = "", tl[160] = "";
        json_t *res = json_pack("{s:o,s:s,s:s}", "packet", packet, "from",
                                t.from.ep ? ep_label(t.from.ep, fl, sizeof fl) : fa, "to",
                                t.to.ep ? ep_label(t.to.ep, tl, sizeof tl) : ta);
        walk(&t);
        json_object_set_new(res, "hops", t.hops);
        json_object_set_new(res, "verdict", json_string(t.verdict));
        *ret = res;
        return 0;
}
