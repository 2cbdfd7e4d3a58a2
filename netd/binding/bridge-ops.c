/* SPDX-License-Identifier: Apache-2.0 */
/* The bridge binding: a container's veth pair with one end on the node bridge, or a VM's tap in the sandbox
 * joined by tc redirects to a veth on the node bridge. Also what every port of a node bridge shares (the
 * masquerade binding is one too). */
#include <stdio.h>

#include "common/json-util.h"
#include "common/log.h"
#include "common/netns.h"
#include "netd/binding/binding.h"
#include "netd/link/vlan.h"

int binding_refuse_vm_ports(const AttachRequest *req, KvErr *e) {
        if (req->n_vm_ports > 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "vm: 'ports' only apply to the masquerade binding, this attachment is '%s'",
                                 req->binding);
        return 0;
}

/* ---- anti-spoofing ---- */

bool bridge_port_filtered(const Endpoint *ep) {
        return ep->antispoof && ep->host_ifname[0] && !ep->chained && ep_binding(ep)->bridge_port;
}

void bridge_port_filter_from(const Endpoint *ep, PortFilterPort *ret) {
        *ret = (PortFilterPort){};
        snprintf(ret->ifname, sizeof ret->ifname, "%s", ep->host_ifname);
        memcpy(ret->mac, ep->mac, 6);
        /* addresses from kvnet's IPAM are the port's only ones; without any (an L2 network) only MACs are checked */
        ret->check_ips = ep->n_addrs > 0;
        /* as dhcp_start(): a VM's guest on a binding that leases it its address */
        ret->dhcp_local = ep->kind == EP_KIND_VM && ep_binding(ep)->lease && ep->n_addrs > 0;
        for (size_t i = 0; i < ep->n_addrs && i < PORTFILTER_MAX_ADDRS; i++)
                ret->addrs[ret->n_addrs++] = ep->addrs[i].addr;
}

static int portfilter_get(Manager *m, PortFilter **ret, KvErr *e) {
        if (!m->portfilter) {
                int r = portfilter_new(false, &m->portfilter);
                if (r < 0)
                        return kverr_set(e, KV_ERR_INTERNAL, r,
                                         "anti-spoofing: cannot open nftables: %s (a network may go without: "
                                         "\"antiSpoofing\": false, docs/SECURITY.md)",
                                         strerror(-r));
        }
        *ret = m->portfilter;
        return 0;
}

/* portfilter_add, _del or _check for ep's port; nothing when the port is not filtered. */
static int port_filter_apply(Manager *m, const Endpoint *ep, int (*op)(PortFilter *, const PortFilterPort *, KvErr *),
                             KvErr *e) {
        if (!bridge_port_filtered(ep))
                return 0;
        PortFilter *pf;
        int r = portfilter_get(m, &pf, e);
        if (r < 0)
                return r;
        PortFilterPort p;
        bridge_port_filter_from(ep, &p);
        return op(pf, &p, e);
}

static int bridge_port_filter(Manager *m, const Endpoint *ep, KvErr *e) {
        if (bridge_port_filtered(ep) && kv_mac_is_zero(ep->mac))
                return kverr_set(e, KV_ERR_INTERNAL, -EINVAL, "anti-spoofing: attachment '%s' has no MAC to filter on",
                                 ep->id);
        return port_filter_apply(m, ep, portfilter_add, e);
}

int bridge_port_unfilter(Manager *m, const Endpoint *ep, KvErr *e) {
        return port_filter_apply(m, ep, portfilter_del, e);
}

int bridge_ports_filter_sync(Manager *m, KvErr *e) {
        size_t n = 0;
        EP_FOREACH(m, ep)
                if (bridge_port_filtered(ep))
                        n++;
        _cleanup_free_ PortFilterPort *ports = n ? calloc(n, sizeof *ports) : NULL;
        if (n && !ports)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "netd: out of memory");
        size_t k = 0;
        EP_FOREACH(m, ep)
                if (bridge_port_filtered(ep))
                        bridge_port_filter_from(ep, &ports[k++]);
        PortFilter *pf;
        int r = portfilter_get(m, &pf, e);
        if (r < 0)
                return r;
        return portfilter_sync(pf, ports, n, e);
}

/* ---- what every bridge port shares ---- */

int bridge_port_prepare(Manager *m, const Endpoint *ep, int nsfd, KvErr *e) {
        int r = network_ensure_bridge(m, ep, e);
        if (r < 0)
                return r;
        /* Names are derived from the attachment id: a re-ADD right after a DEL may find the old links
         * still waiting for the reaper. */
        if (m->reaper && !reaper_idle(m->reaper) &&
            (link_exists(-1, ep->host_ifname) || link_exists(nsfd, ep->kind == EP_KIND_VM ? ep->tap : ep->ifname)))
                reaper_flush(m->reaper);
        return bridge_port_filter(m, ep, e);
}

int bridge_port_finish(Manager *m, Endpoint *ep, KvErr *e) {
        int r;
        if (ep_untagged_port(ep) && is_trunk(m, ep->bridge)) {
                r = vlan_guard_port(ep->host_ifname, e);
                if (r < 0)
                        return r;
        }
        if (ep->mig_role == MIG_ROLE_TARGET) {
                r = handoff_prepare_target(m->handoff, ep, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The guard an untagged port of a VLAN trunk must have. */
int bridge_port_check(Manager *m, const Endpoint *ep, KvErr *e) {
        if (ep_untagged_port(ep) && is_trunk(m, ep->bridge) && vlan_guard_present(ep->host_ifname) <= 0)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOENT,
                                 "check: '%s' is an untagged port of VLAN trunk '%s' without its guard",
                                 ep->host_ifname, ep->bridge);
        return port_filter_apply(m, ep, portfilter_check, e);
}

int binding_nat_del(Manager *m, const Endpoint *ep, KvErr *e) {
        if (!ep_needs_nat(ep))
                return 0;
        NatBackend *nb;
        if (nat_get(m, ep->nat_backend[0] ? ep->nat_backend : "nftables", &nb, e) < 0)
                return 0;
        NatEpBuf b;
        nat_endpoint_from(ep, &b);
        int r = nat_del(nb, &b.ne, e);
        return r < 0 ? r : 0;
}

int binding_links_remove(Manager *m, int nsfd, const char *sbx, const char *tap, const char *host, bool deferred,
                         int ret, KvErr *e) {
        int r;
        if (!sbx && !tap && !host)
                return ret;
        if (deferred && m->reaper) {
                r = link_retire(nsfd, sbx, tap, host, e);
                if (r >= 0 && host)
                        r = reaper_queue(m->reaper, -1);
                if (r >= 0 && nsfd >= 0 && (tap || !host))
                        r = reaper_queue(m->reaper, nsfd);
                if (r >= 0)
                        return ret;
                /* Could not defer: delete now. */
                kverr_clear(e);
        }
        r = link_detach(nsfd, sbx, tap, host, e);
        if (r < 0 && ret == 0)
                ret = r;
        return ret;
}

json_t *bridge_port_result(const Endpoint *ep, const LinkInfo *li) {
        char buf[KV_ADDR_STRLEN], mac[KV_MAC_STRLEN];
        json_t *res = json_object();
        json_t *ifaces = json_array(), *ips = json_array(), *routes = json_array();
        json_object_set_new(res, "cniVersion", json_string("1.1.0"));
        json_array_append_new(ifaces, json_pack("{s:s}", "name", ep->bridge));
        json_array_append_new(ifaces, json_pack("{s:s,s:s}", "name", ep->host_ifname, "mac",
                                                kv_mac_fmt(li->host_mac, mac)));
        const char *sbx_name = ep->kind == EP_KIND_VM ? ep->tap : ep->ifname;
        json_array_append_new(ifaces, json_pack("{s:s,s:s,s:s}", "name", sbx_name, "mac",
                                                kv_mac_fmt(ep->kind == EP_KIND_VM ? ep->mac : li->sandbox_mac, mac),
                                                "sandbox", ep->netns));
        for (size_t i = 0; i < ep->n_addrs; i++) {
                json_t *ip = json_pack("{s:s,s:i}", "address", kv_prefix_fmt(&ep->addrs[i], buf), "interface", 2);
                if (ep->has_gateway[i])
                        json_object_set_new(ip, "gateway", json_string(kv_addr_fmt(&ep->gateways[i], buf)));
                json_array_append_new(ips, ip);
        }
        for (size_t i = 0; i < ep->n_routes; i++) {
                json_t *rt = json_pack("{s:s}", "dst", kv_prefix_fmt(&ep->routes[i].dst, buf));
                if (ep->routes[i].has_gw)
                        json_object_set_new(rt, "gw", json_string(kv_addr_fmt(&ep->routes[i].gw, buf)));
                json_array_append_new(routes, rt);
        }
        json_object_set_new(res, "interfaces", ifaces);
        json_object_set_new(res, "ips", ips);
        if (json_array_size(routes))
                json_object_set_new(res, "routes", routes);
        else
                json_decref(routes);
        json_object_set_new(res, "dns", json_object());
        return res;
}

void bridge_port_reconcile(Manager *m, Endpoint *ep) {
        KvErr be = {};
        if (network_ensure_bridge(m, ep, &be) < 0)
                log_warning("reconcile: bridge for '%s': %s %s", ep->id, be.msg, be.details);
        /* A missing host link is reported, not repaired: the sandbox may be gone too, and the runtime's DEL
         * (or GC) cleans the record up. CHECK reports it as well. */
        if (!link_exists(-1, ep->host_ifname))
                log_warning("reconcile: attachment '%s' lost its host link '%s'", ep->id, ep->host_ifname);
}

void bridge_port_fill(Endpoint *ep, const AttachRequest *req) {
        derive_ifname(ep->host_ifname, "kv", ep->id);
        if (ep->kind == EP_KIND_VM) {
                snprintf(ep->tap, sizeof ep->tap, "%s", req->ifname);
                derive_ifname(ep->sbx_ifname, "kvs", ep->id);
        }
}

/* ---- the bridge binding's ops ---- */

static int bridge_validate(Manager *m, AttachRequest *req, KvErr *e) {
        (void) m;
        if (req->binding_kind == BINDING_MASQUERADE)
                req->ipmasq = true; /* for a container, masquerade = bridge + ipMasq */
        return binding_refuse_vm_ports(req, e);
}

static int bridge_attach(Manager *m, Endpoint *ep, int nsfd, const AttachRequest *req, LinkInfo *li, KvErr *e) {
        (void) req;
        int r = bridge_port_prepare(m, ep, nsfd, e);
        if (r < 0)
                return r;
        if (ep->kind == EP_KIND_VM)
                r = link_vm_attach(nsfd, ep->tap, ep->sbx_ifname, ep->host_ifname, ep->bridge, ep->mtu, ep->mac, li,
                                   e);
        else {
                LinkRoute routes[EP_MAX_ROUTES];
                for (size_t i = 0; i < ep->n_routes; i++) {
                        routes[i].dst = ep->routes[i].dst;
                        routes[i].gw = ep->routes[i].gw;
                        routes[i].has_gw = ep->routes[i].has_gw;
                }
                /* The claim's MAC (requested, or derived from the claim key): stable for the claim. */
                r = link_container_attach(nsfd, ep->ifname, ep->host_ifname, ep->bridge, ep->mtu, ep->mac, ep->addrs,
                                          ep->n_addrs, routes, ep->n_routes, li, e);
                ep->has_mac = true;
        }
        if (r < 0) {
                KvErr ignore = {};
                IGNORE_RESULT(bridge_port_unfilter(m, ep, &ignore));
                return r;
        }
        return bridge_port_finish(m, ep, e);
}

static int bridge_check(Manager *m, const Endpoint *ep, int nsfd, KvErr *e) {
        int r;
        if (ep->kind == EP_KIND_VM)
                r = link_vm_check(nsfd, ep->tap, ep->sbx_ifname, ep->host_ifname, ep->bridge, e);
        else
                r = link_container_check(nsfd, ep->ifname, ep->host_ifname, ep->bridge, ep->addrs, ep->n_addrs, e);
        if (r < 0)
                return r;
        return bridge_port_check(m, ep, e);
}

static int bridge_detach(Manager *m, const Endpoint *ep, bool deferred, KvErr *e) {
        int ret = binding_nat_del(m, ep, e);
        KvErr fe = {};
        int r = bridge_port_unfilter(m, ep, &fe);
        if (r < 0 && ret == 0)
                ret = kverr_set(e, fe.code, r, "%s", fe.msg);
        _cleanup_close_ int nsfd = -1;
        if (ep->netns[0])
                IGNORE_RESULT(endpoint_netns_open(ep, &nsfd));
        bool vm = ep->kind == EP_KIND_VM;
        return binding_links_remove(m, nsfd, vm ? ep->sbx_ifname : ep->ifname, vm ? ep->tap : NULL, ep->host_ifname,
                                    deferred, ret, e);
}

static json_t *bridge_result(const Endpoint *ep, const LinkInfo *li, const AttachRequest *req) {
        (void) req;
        return bridge_port_result(ep, li);
}

static void bridge_lease(const Endpoint *ep, DhcpLease *l) {
        /* Router advertisements come from the bridge's link-local address, which the bridge answers for. */
        if (link_get_mac(-1, ep->bridge, l->server_mac) < 0)
                memset(l->server_mac, 0, 6);
}

const BindingOps binding_bridge_ops = {
        .kind = BINDING_BRIDGE,
        .validate = bridge_validate,
        .fill = bridge_port_fill,
        .attach = bridge_attach,
        .check = bridge_check,
        .detach = bridge_detach,
        .result = bridge_result,
        .lease = bridge_lease,
        .learn_neighbour = true,
        .bridge_port = true,
        .node_nat = true,
        .reconcile = bridge_port_reconcile,
};
