/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet chained after another plugin: the interface and its addresses are the previous plugin's. A
 * container attachment gets only NAT; a VM's tap is joined by tc redirects to that interface, and the guest
 * takes over its MAC and addresses (docs/chaining.md). */
#include <stdio.h>

#include "common/json-util.h"
#include "common/netns.h"
#include "netd/binding/binding.h"

static int chained_validate(Manager *m, AttachRequest *req, KvErr *e) {
        (void) m;
        if (req->binding_kind == BINDING_MASQUERADE && req->has_vm)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EOPNOTSUPP,
                                 "network: binding 'masquerade' needs kvnet as the main plugin (not chained)");
        if (req->binding_kind == BINDING_MASQUERADE)
                req->ipmasq = true; /* for a container, masquerade = bridge + ipMasq */
        int r = binding_refuse_vm_ports(req, e);
        if (r < 0)
                return r;
        if (req->has_vm && !req->prev_ifname[0])
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "prevResult: no sandbox interface carries the IPs; kvnet cannot attach the VM's "
                                 "tap to it");
        return 0;
}

static void chained_fill(Endpoint *ep, const AttachRequest *req) {
        if (ep->kind != EP_KIND_VM)
                return;
        snprintf(ep->sbx_ifname, sizeof ep->sbx_ifname, "%s", req->prev_ifname);
        /* tap-<interface>: what the node side gives the launcher for a VM NIC on a third-party network
         * (docs/chaining.md); derived from the attachment when that name is too long */
        if (strlen(req->prev_ifname) + 4 < sizeof ep->tap)
                snprintf(ep->tap, sizeof ep->tap, "tap-%.11s", req->prev_ifname);
        else
                derive_ifname(ep->tap, "tap", ep->id);
        if (req->has_mac) {
                memcpy(ep->mac, req->mac, 6);
        } else {
                uint64_t h = kv_hash64(ep->key, strlen(ep->key));
                ep->mac[0] = 0x02;
                for (int i = 1; i < 6; i++)
                        ep->mac[i] = (uint8_t) (h >> (8 * i));
        }
        ep->has_mac = true;
}

static int chained_attach(Manager *m, Endpoint *ep, int nsfd, const AttachRequest *req, LinkInfo *li, KvErr *e) {
        (void) m;
        if (ep->kind != EP_KIND_VM)
                return 0;
        KvPrefix moved[EP_MAX_ADDRS];
        size_t n_moved = 0;
        int r = link_vm_attach_chained(nsfd, ep->tap, ep->sbx_ifname, ep->mtu, li, moved, EP_MAX_ADDRS, &n_moved, e);
        if (r < 0)
                return r;
        /* The guest takes over the sandbox interface's MAC, so that whatever the previous plugin taught its
         * peers (ARP, FDB) stays true. */
        if (!req->has_mac)
                memcpy(ep->mac, li->sandbox_mac, 6);
        return 0;
}

static int chained_check(Manager *m, const Endpoint *ep, int nsfd, KvErr *e) {
        (void) m;
        if (ep->kind == EP_KIND_VM && !link_exists(nsfd, ep->tap))
                return kverr_set(e, KV_ERR_INTERNAL, -ENOENT, "check: tap '%s' is missing in the sandbox", ep->tap);
        return 0;
}

/* Only what kvnet added goes: NAT entries and a VM's tap (the interface is the previous plugin's). */
static int chained_detach(Manager *m, const Endpoint *ep, bool deferred, KvErr *e) {
        int ret = binding_nat_del(m, ep, e);
        _cleanup_close_ int nsfd = -1;
        if (ep->netns[0])
                IGNORE_RESULT(endpoint_netns_open(ep, &nsfd));
        return binding_links_remove(m, nsfd, NULL, ep->kind == EP_KIND_VM ? ep->tap : NULL, NULL, deferred, ret, e);
}

/* Chained: the previous result, plus the VM's tap when this is a VM attachment. */
static json_t *chained_result(const Endpoint *ep, const LinkInfo *li, const AttachRequest *req) {
        (void) li;
        json_t *res = json_deep_copy(req->prev_result);
        if (!res)
                return NULL;
        json_object_set_new(res, "cniVersion", json_string("1.1.0"));
        if (ep->kind != EP_KIND_VM)
                return res;
        char mac[KV_MAC_STRLEN];
        json_t *ifaces = json_object_get(res, "interfaces");
        if (!json_is_array(ifaces)) {
                ifaces = json_array();
                json_object_set_new(res, "interfaces", ifaces);
        }
        size_t idx = json_array_size(ifaces);
        json_array_append_new(ifaces, json_pack("{s:s,s:s,s:s}", "name", ep->tap, "mac", kv_mac_fmt(ep->mac, mac),
                                                "sandbox", ep->netns));
        /* The addresses now belong to the guest behind the tap. */
        size_t i;
        json_t *ip;
        json_array_foreach(json_object_get(res, "ips"), i, ip) json_object_set_new(ip, "interface", json_integer((json_int_t) idx));
        return res;
}

/* The guest gets the previous plugin's IPv4 address; IPv6 is left to that plugin's network. */
static void chained_lease(const Endpoint *ep, DhcpLease *l) {
        (void) ep;
        l->has_v6 = false;
        memset(&l->addr6, 0, sizeof l->addr6);
        memset(&l->gw6, 0, sizeof l->gw6);
}

const BindingOps binding_chained_ops = {
        .kind = BINDING_CHAINED,
        .validate = chained_validate,
        .fill = chained_fill,
        .attach = chained_attach,
        .check = chained_check,
        .detach = chained_detach,
        .result = chained_result,
        .lease = chained_lease,
        .learn_neighbour = false,
        .bridge_port = false,
        .node_nat = true,
        .reconcile = NULL,
};
