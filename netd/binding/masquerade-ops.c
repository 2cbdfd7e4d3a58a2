/* SPDX-License-Identifier: Apache-2.0 */
/* The masquerade binding's ops: a VM behind the NAT in its sandbox (netd/binding/masquerade.h), on a port
 * of the node bridge like the bridge binding. */
#include <stdio.h>

#include "common/netns.h"
#include "netd/binding/binding.h"

typedef struct MasqBuf {
        MasqConfig c;
        MasqPort ports[EP_MAX_PORTS];
} MasqBuf;

static void masq_config_from(const Endpoint *ep, MasqBuf *b) {
        memset(b, 0, sizeof *b);
        masq_config_defaults(&b->c);
        b->c.tap = ep->tap;
        b->c.sbx_ifname = ep->sbx_ifname;
        b->c.host_ifname = ep->host_ifname;
        b->c.bridge = ep->bridge;
        b->c.mtu = ep->mtu;
        for (size_t i = 0; i < ep->n_addrs && b->c.n_addrs < 2; i++) {
                b->c.vm_addrs[b->c.n_addrs] = ep->addrs[i];
                if (ep->has_gateway[i])
                        b->c.gateways[b->c.n_addrs] = ep->gateways[i];
                b->c.n_addrs++;
        }
        /* IPv6 on the guest side: fd10:0:2::/64 with the guest's EUI-64 address, so that guests without
         * a DHCPv6 client autoconfigure exactly this address from the router advertisement. */
        KvPrefix g6 = { .prefixlen = 64 };
        if (kv_addr_parse("fd10:0:2::", &g6.addr) == 0) {
                g6.addr.bytes[8] = ep->mac[0] ^ 0x02;
                g6.addr.bytes[9] = ep->mac[1];
                g6.addr.bytes[10] = ep->mac[2];
                g6.addr.bytes[11] = 0xff;
                g6.addr.bytes[12] = 0xfe;
                g6.addr.bytes[13] = ep->mac[3];
                g6.addr.bytes[14] = ep->mac[4];
                g6.addr.bytes[15] = ep->mac[5];
                b->c.guest6 = g6;
        }
        for (size_t i = 0; i < ep->n_vm_ports; i++) {
                b->ports[i].port = ep->vm_ports[i].port;
                b->ports[i].proto = ep->vm_ports[i].proto;
        }
        b->c.ports = b->ports;
        b->c.n_ports = ep->n_vm_ports;
        b->c.guest_mac = ep->mac;
        b->c.pod_mac = ep->mac;
}

bool manager_ep_is_masq_vm(const Endpoint *ep) {
        return ep->binding_kind == BINDING_MASQUERADE;
}

static int masquerade_attach(Manager *m, Endpoint *ep, int nsfd, const AttachRequest *req, LinkInfo *li,
                             KvErr *e) {
        (void) req;
        int r = bridge_port_prepare(m, ep, nsfd, e);
        if (r < 0)
                return r;
        MasqBuf mb;
        masq_config_from(ep, &mb);
        r = masq_vm_attach(nsfd, &mb.c, li, e);
        if (r < 0) {
                KvErr ignore = {};
                IGNORE_RESULT(bridge_port_unfilter(m, ep, &ignore));
                return r;
        }
        return bridge_port_finish(m, ep, e);
}

static int masquerade_check(Manager *m, const Endpoint *ep, int nsfd, KvErr *e) {
        MasqBuf mb;
        masq_config_from(ep, &mb);
        int r = masq_vm_check(nsfd, &mb.c, e);
        if (r < 0)
                return r;
        return bridge_port_check(m, ep, e);
}

static int masquerade_detach(Manager *m, const Endpoint *ep, bool deferred, KvErr *e) {
        int r, ret = binding_nat_del(m, ep, e);
        KvErr fe = {};
        r = bridge_port_unfilter(m, ep, &fe);
        if (r < 0 && ret == 0)
                ret = kverr_set(e, fe.code, r, "%s", fe.msg);
        _cleanup_close_ int nsfd = -1;
        if (ep->netns[0])
                IGNORE_RESULT(endpoint_netns_open(ep, &nsfd));
        /* The sandbox's NAT table goes now (it would go with the sandbox anyway). */
        if (nsfd >= 0) {
                KvErr me = {};
                r = masq_nat_remove(nsfd, NAT_BACKEND_NFTABLES, &me);
                if (r < 0 && ret == 0)
                        ret = kverr_set(e, me.code, r, "%s", me.msg);
        }
        return binding_links_remove(m, nsfd, ep->sbx_ifname, ep->tap, ep->host_ifname, deferred, ret, e);
}

static json_t *masquerade_result(const Endpoint *ep, const LinkInfo *li, const AttachRequest *req) {
        (void) req;
        return bridge_port_result(ep, li);
}

/* The guest sees the private side of the sandbox NAT: its router, its RA source (the tap's own MAC) and its
 * only route are the tap's. */
static void masquerade_lease(const Endpoint *ep, DhcpLease *l) {
        MasqBuf mb;
        masq_config_from(ep, &mb);
        if (l->has_v4) {
                l->addr4 = mb.c.guest4;
                l->gw4 = l->server4 = mb.c.guest_gw4;
        }
        if (l->has_v6) {
                l->addr6 = mb.c.guest6;
                l->gw6 = mb.c.guest_gw6;
                l->slaac = true;
        }
        l->n_routes = 0;
}

const BindingOps binding_masquerade_ops = {
        .kind = BINDING_MASQUERADE,
        .fill = bridge_port_fill,
        .attach = masquerade_attach,
        .check = masquerade_check,
        .detach = masquerade_detach,
        .result = masquerade_result,
        .lease = masquerade_lease,
        .learn_neighbour = false,
        .bridge_port = true,
        .node_nat = true,
        .reconcile = bridge_port_reconcile,
};
