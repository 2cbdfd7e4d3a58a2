/* SPDX-License-Identifier: Apache-2.0 */
/* netd core: what differs between the bindings (interim: becomes the binding ops). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/json-util.h"
#include "common/log.h"
#include "netd/core/netd-priv.h"

bool ep_is_sriov(const Endpoint *ep) {
        return streq(ep->binding, "sriov");
}

/* Is the VF recorded for ep still allocated to it, and still at its PF's virtfn<N> in sysfs? */
int sriov_check_vf(Manager *m, const Endpoint *ep, KvErr *e) {
        if (!m->sriov)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOENT,
                                 "check: '%s' holds VF %s, but no SR-IOV pools are configured on this node", ep->id,
                                 ep->pci);
        SriovVf *vf = sriov_find(m->sriov, ep->id);
        if (!vf)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOENT, "check: VF %s is no longer allocated to '%s'", ep->pci,
                                 ep->id);
        if (!streq(vf->pci, ep->pci))
                return kverr_set(e, KV_ERR_INTERNAL, -EINVAL, "check: '%s' holds VF %s, but its record says %s", ep->id,
                                 vf->pci, ep->pci);
        char path[PATH_MAX], real[PATH_MAX];
        int n = snprintf(path, sizeof path, "%s/class/net/%s/device/virtfn%u", m->sysfs_root, vf->pf, vf->vf_index);
        if (n < 0 || (size_t) n >= sizeof path)
                return kverr_set(e, KV_ERR_INTERNAL, -ENAMETOOLONG, "check: sysfs path too long");
        const char *base = NULL;
        if (!vf->vanished && realpath(path, real)) {
                base = strrchr(real, '/');
                base = base ? base + 1 : real;
        }
        if (!base || !streq(base, vf->pci))
                return kverr_set(e, KV_ERR_INTERNAL, -ENODEV,
                                 "check: VF %s (PF '%s' vf %u) of '%s' is gone from sysfs (%s)", vf->pci, vf->pf,
                                 vf->vf_index, ep->id, path);
        return 0;
}

/* Releases the VF of ep (unknown owner: nothing to do). A failure keeps the claim so that a retried
 * DEL can finish it. */
int sriov_release_ep(Manager *m, const Endpoint *ep, KvErr *e) {
        if (!m->sriov) {
                if (ep->pci[0])
                        log_warning("'%s' held VF %s, but no SR-IOV pools are configured any more: not releasing it",
                                    ep->id, ep->pci);
                return 0;
        }
        int r = sriov_release(m->sriov, ep->id);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "sriov: cannot release VF %s of '%s'",
                                       ep->pci[0] ? ep->pci : "?", ep->id);
        return 0;
}

/* ---- results ---- */

json_t *build_result(const Endpoint *ep, const LinkInfo *li) {
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

/* SR-IOV: the VF is the VM's interface; CNI_IFNAME names it, pciID says which device to pass through. */
json_t *build_sriov_result(const Endpoint *ep) {
        char buf[KV_ADDR_STRLEN], mac[KV_MAC_STRLEN];
        _cleanup_json_ json_t *res = json_object();
        json_t *ifaces = json_array(), *ips = json_array(), *routes = json_array();
        if (!res || json_object_set_new(res, "interfaces", ifaces) < 0 || json_object_set_new(res, "ips", ips) < 0 ||
            json_object_set_new(res, "routes", routes) < 0)
                return NULL;
        int r = 0;
        r |= json_object_set_new(res, "cniVersion", json_string("1.1.0"));
        r |= json_array_append_new(ifaces, json_pack("{s:s,s:s,s:s,s:s}", "name", ep->ifname, "mac",
                                                     kv_mac_fmt(ep->mac, mac), "sandbox", ep->netns, "pciID",
                                                     ep->pci));
        for (size_t i = 0; i < ep->n_addrs; i++) {
                json_t *ip = json_pack("{s:s,s:i}", "address", kv_prefix_fmt(&ep->addrs[i], buf), "interface", 0);
                if (ip && ep->has_gateway[i])
                        r |= json_object_set_new(ip, "gateway", json_string(kv_addr_fmt(&ep->gateways[i], buf)));
                r |= json_array_append_new(ips, ip);
        }
        for (size_t i = 0; i < ep->n_routes; i++) {
                json_t *rt = json_pack("{s:s}", "dst", kv_prefix_fmt(&ep->routes[i].dst, buf));
                if (rt && ep->routes[i].has_gw)
                        r |= json_object_set_new(rt, "gw", json_string(kv_addr_fmt(&ep->routes[i].gw, buf)));
                r |= json_array_append_new(routes, rt);
        }
        if (json_array_size(routes) == 0)
                r |= json_object_del(res, "routes");
        r |= json_object_set_new(res, "dns", json_object());
        return r < 0 ? NULL : TAKE_PTR(res);
}

/* Chained: the previous result, plus the VM's tap when this is a VM attachment. */
json_t *build_chained_result(const Endpoint *ep, json_t *prev) {
        json_t *res = json_deep_copy(prev);
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

/* ---- masquerade binding ---- */

bool ep_is_masq_vm(const Endpoint *ep) {
        return ep->kind == EP_KIND_VM && !ep->chained && streq(ep->binding, "masquerade");
}

bool manager_ep_is_masq_vm(const Endpoint *ep) {
        return ep_is_masq_vm(ep);
}

void masq_config_from(const Endpoint *ep, MasqBuf *b) {
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
