/* SPDX-License-Identifier: Apache-2.0 */
/* The sriov binding's ops: a VF of a pool (netd/binding/sriov.h) is the VM's interface. No links, no NAT,
 * no guest DHCP: the guest is on the physical network. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/json-util.h"
#include "common/log.h"
#include "netd/binding/binding.h"

/* Is the VF recorded for ep still allocated to it, and still at its PF's virtfn<N> in sysfs? */
static int sriov_check_vf(Manager *m, const Endpoint *ep, KvErr *e) {
        if (!m->sriov)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOENT,
                                 "check: '%s' holds VF %s, but no SR-IOV pools are configured on this node", ep->id,
                                 ep->sriov.pci);
        SriovVf *vf = sriov_find(m->sriov, ep->id);
        if (!vf)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOENT, "check: VF %s is no longer allocated to '%s'", ep->sriov.pci,
                                 ep->id);
        if (!streq(vf->pci, ep->sriov.pci))
                return kverr_set(e, KV_ERR_INTERNAL, -EINVAL, "check: '%s' holds VF %s, but its record says %s", ep->id,
                                 vf->pci, ep->sriov.pci);
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
static int sriov_release_ep(Manager *m, const Endpoint *ep, KvErr *e) {
        if (!m->sriov) {
                if (ep->sriov.pci[0])
                        log_warning("'%s' held VF %s, but no SR-IOV pools are configured any more: not releasing it",
                                    ep->id, ep->sriov.pci);
                return 0;
        }
        int r = sriov_release(m->sriov, ep->id);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "sriov: cannot release VF %s of '%s'",
                                       ep->sriov.pci[0] ? ep->sriov.pci : "?", ep->id);
        return 0;
}

static int sriov_validate(Manager *m, AttachRequest *req, KvErr *e) {
        if (!m->sriov)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EOPNOTSUPP,
                                 "no SR-IOV pools configured on this node (netd config 'sriovPools')");
        return binding_refuse_vm_ports(req, e);
}

static void sriov_fill(Endpoint *ep, const AttachRequest *req) {
        snprintf(ep->sriov.resource, sizeof ep->sriov.resource, "%s", req->resource_name);
        ep->sriov.spoofchk = req->spoofchk;
        ep->sriov.trust = req->trust;
}

static int sriov_attach(Manager *m, Endpoint *ep, int nsfd, const AttachRequest *req, LinkInfo *li, KvErr *e) {
        (void) nsfd, (void) req, (void) li;
        /* The guest MAC of the claim goes onto the VF; the claim file of the VF is written before the PF is
         * told. The rollback releases it through detach. */
        SriovAllocRequest ar = { .resource = ep->sriov.resource, .owner = ep->id, .vlan = ep->vlan,
                                 .spoofchk = ep->sriov.spoofchk, .trust = ep->sriov.trust };
        memcpy(ar.mac, ep->mac, 6);
        SriovVf *vf;
        int r = sriov_alloc(m->sriov, &ar, &vf, e);
        if (r < 0)
                return r;
        snprintf(ep->sriov.pci, sizeof ep->sriov.pci, "%s", vf->pci);
        return 0;
}

static int sriov_check(Manager *m, const Endpoint *ep, int nsfd, KvErr *e) {
        (void) nsfd;
        return sriov_check_vf(m, ep, e);
}

/* SR-IOV: no links, no NAT; the VF goes back to its pool. */
static int sriov_detach(Manager *m, const Endpoint *ep, bool deferred, KvErr *e) {
        (void) deferred;
        return sriov_release_ep(m, ep, e);
}

/* SR-IOV: the VF is the VM's interface; CNI_IFNAME names it, pciID says which device to pass through. */
static json_t *sriov_result(const Endpoint *ep, const LinkInfo *li, const AttachRequest *req) {
        (void) li, (void) req;
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
                                                     ep->sriov.pci));
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

/* No links, NAT or DHCP: only the VF. Reported, not repaired (as lost links are). */
static void sriov_reconcile(Manager *m, Endpoint *ep) {
        KvErr ve = {};
        if (sriov_check_vf(m, ep, &ve) < 0)
                log_warning("reconcile: %s", ve.msg);
}

const BindingOps binding_sriov_ops = {
        .kind = BINDING_SRIOV,
        .validate = sriov_validate,
        .fill = sriov_fill,
        .attach = sriov_attach,
        .check = sriov_check,
        .detach = sriov_detach,
        .result = sriov_result,
        .lease = NULL, /* a VF's guest is on the physical network: its DHCP is not ours to serve */
        .bridge_port = false,
        .node_nat = false,
        .reconcile = sriov_reconcile,
};
