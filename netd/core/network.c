/* SPDX-License-Identifier: Apache-2.0 */
/* netd core: the node bridges of the networks, their gateway addresses and VLAN trunks. */
#include <stdio.h>

#include "netd/binding/binding.h"
#include "netd/core/netd-priv.h"
#include "netd/link/vlan.h"

static bool network_in_use(Manager *m, const NetworkState *n) {
        EP_FOREACH(m, ep) {
                if (streq(ep->network, n->name) && streq(ep->bridge, n->bridge))
                        return true;
        }
        return false;
}

static NetworkState *network_get(Manager *m, const char *name, const char *bridge) {
        for (size_t i = 0; i < m->n_networks; i++)
                if (streq(m->networks[i].name, name) && streq(m->networks[i].bridge, bridge))
                        return &m->networks[i];
        NetworkState *n = NULL;
        if (m->n_networks < NETD_MAX_NETWORKS)
                n = &m->networks[m->n_networks++];
        else
                /* Full: the slot of a network no attachment uses any more is taken over (it only caches what
                 * is known about a bridge; a later ADD on that network checks the bridge again). Networks come
                 * and go with their NADs, so slots must not run out over a node's life. */
                for (size_t i = 0; i < m->n_networks && !n; i++)
                        if (!network_in_use(m, &m->networks[i]))
                                n = &m->networks[i];
        if (!n)
                return NULL;
        memset(n, 0, sizeof *n);
        snprintf(n->name, sizeof n->name, "%s", name);
        snprintf(n->bridge, sizeof n->bridge, "%s", bridge);
        return n;
}

static bool network_has_gw(const NetworkState *n, const KvPrefix *p) {
        for (size_t i = 0; i < n->n_gw; i++)
                if (kv_addr_equal(&n->gw[i].addr, &p->addr) && n->gw[i].prefixlen == p->prefixlen)
                        return true;
        return false;
}

/* ---- VLAN trunks ---- */

bool is_trunk(Manager *m, const char *bridge) {
        for (size_t i = 0; i < m->n_trunks; i++)
                if (streq(m->trunks[i], bridge))
                        return true;
        return false;
}

/* An untagged kvnet port on a bridge: the endpoints the guard is for. */
bool ep_untagged_port(const Endpoint *ep) {
        return ep_binding(ep)->bridge_port && ep->vlan == 0 && ep->host_ifname[0];
}

/* bridge carries VLANs from now on: every untagged kvnet port on it gets the guard first, so that none of them
 * can send into a VLAN or see its floods. */
int trunk_add(Manager *m, const char *bridge, KvErr *e) {
        if (is_trunk(m, bridge))
                return 0;
        if (m->n_trunks >= NETD_MAX_NETWORKS)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOSPC, "netd: too many VLAN trunks (max %d)", NETD_MAX_NETWORKS);
        EP_FOREACH(m, ep) {
                if (!ep_untagged_port(ep) || !streq(ep->bridge, bridge))
                        continue;
                int r = vlan_guard_port(ep->host_ifname, e);
                if (r < 0)
                        return r;
        }
        snprintf(m->trunks[m->n_trunks++], sizeof m->trunks[0], "%s", bridge);
        return 0;
}

/* Makes sure the network's bridge exists with the gateway addresses this endpoint needs. Cached:
 * after the first success only a new gateway address costs a netlink round trip. */
int network_ensure_bridge(Manager *m, const Endpoint *ep, KvErr *e) {
        NetworkState *n = network_get(m, ep->network, ep->bridge);
        if (!n)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOSPC, "netd: too many networks (max %d)", NETD_MAX_NETWORKS);
        KvPrefix want[EP_MAX_ADDRS];
        size_t n_want = 0;
        if (ep->is_gateway)
                for (size_t i = 0; i < ep->n_addrs; i++) {
                        if (!ep->has_gateway[i])
                                continue;
                        KvPrefix p = { .addr = ep->gateways[i], .prefixlen = ep->addrs[i].prefixlen };
                        if (!network_has_gw(n, &p))
                                want[n_want++] = p;
                }
        if (n->bridge_ready && n_want == 0)
                return 0;
        int ifindex;
        int r = link_bridge_ensure(ep->bridge, ep->mtu, want, n_want, &ifindex, e);
        if (r < 0)
                return r;
        if (ep->trunk[0] && !n->bridge_ready) {
                r = link_bridge_ensure(ep->trunk, ep->mtu, NULL, 0, NULL, e);
                if (r < 0)
                        return r;
                /* The trunk's untagged ports are guarded before the first VLAN link joins it. */
                r = trunk_add(m, ep->trunk, e);
                if (r < 0)
                        return r;
                r = vlan_link_ensure(ep->trunk, ep->bridge, ep->vlan, ep->mtu, e);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < n_want && n->n_gw < EP_MAX_ADDRS; i++)
                n->gw[n->n_gw++] = want[i];
        n->bridge_ready = true;
        return 0;
}

