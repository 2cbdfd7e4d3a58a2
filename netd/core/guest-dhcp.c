/* SPDX-License-Identifier: Apache-2.0 */
/* netd core: the guest DHCP responder of a VM attachment. */
#include <stdio.h>

#include "common/log.h"
#include "netd/binding/binding.h"
#include "netd/core/netd-priv.h"

/* The guest learns its address from netd: a responder bound to the VM's tap inside the sandbox (an
 * AF_PACKET socket sees the guest's frames before the tc redirect takes them on). Static lease: the
 * claim. */
static void dhcp_acked(DhcpServer *s, const DhcpLease *l, void *userdata);

int dhcp_start(Manager *m, Endpoint *ep, int nsfd, KvErr *e) {
        const BindingOps *ops = ep_binding(ep);
        if (!m->loop || ep->kind != EP_KIND_VM || ep->dhcp || !ops->lease)
                return 0; /* e.g. a VF's guest is on the physical network: its DHCP is not ours to serve */
        DhcpLease l = { .lease_secs = 0 };
        memcpy(l.mac, ep->mac, 6);
        for (size_t i = 0; i < ep->n_addrs; i++) {
                const KvPrefix *a = &ep->addrs[i];
                if (a->addr.family == AF_INET && !l.has_v4) {
                        l.has_v4 = true;
                        l.addr4 = *a;
                        if (ep->has_gateway[i]) {
                                l.gw4 = ep->gateways[i];
                                l.server4 = ep->gateways[i];
                        }
                } else if (a->addr.family == AF_INET6 && !l.has_v6) {
                        l.has_v6 = true;
                        l.addr6 = *a;
                        if (ep->has_gateway[i])
                                l.gw6 = ep->gateways[i];
                }
        }
        if (l.has_v4 && l.server4.family == 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "dhcp: '%s' has no IPv4 gateway to serve DHCP from", ep->id);
        for (size_t i = 0; i < ep->n_routes && l.n_routes < DHCP_MAX_ROUTES; i++) {
                if (ep->routes[i].dst.addr.family != AF_INET)
                        continue;
                l.routes[l.n_routes].dst = ep->routes[i].dst;
                if (ep->routes[i].has_gw)
                        l.routes[l.n_routes].gw = ep->routes[i].gw;
                l.n_routes++;
        }
        l.mtu = ep->mtu;
        snprintf(l.hostname, sizeof l.hostname, "%s", ep->vm_name);
        ops->lease(ep, &l);
        if (!l.has_v4 && !l.has_v6)
                return 0;
        DhcpServer *s = NULL;
        int r = dhcp_server_new(m->loop, nsfd, ep->tap, &l, &s, e);
        if (r < 0)
                return r;
        dhcp_server_set_ack_cb(s, dhcp_acked, ep);
        ep->dhcp = s;
        return 0;
}

/* After the ACK the guest takes its address within milliseconds, but a node that already tried to
 * reach it holds a FAILED/INCOMPLETE neighbour entry and retries ARP only once a second. Teach the
 * node the lease at ACK time (as dnsmasq does), so the first packet after configuration goes out. */
static void dhcp_acked(DhcpServer *s, const DhcpLease *l, void *userdata) {
        (void) s;
        const Endpoint *ep = userdata;
        if (!l->has_v4 || !ep_binding(ep)->learn_neighbour)
                return;
        int r = link_neigh_learn(ep->bridge, &l->addr4.addr, l->mac);
        if (r < 0)
                log_debug("dhcp: neighbour entry for '%s' on '%s': %s", ep->id, ep->bridge, strerror(-r));
}

void dhcp_stop(Endpoint *ep) {
        dhcp_server_free(ep->dhcp);
        ep->dhcp = NULL;
}

