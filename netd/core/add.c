/* SPDX-License-Identifier: Apache-2.0 */
/* netd core: ADD, one attachment from the request to its record. */
#include <stdio.h>
#include <stdlib.h>

#include "common/event.h"
#include "common/json-util.h"
#include "common/netns.h"
#include "netd/binding/binding.h"
#include "netd/core/netd-priv.h"
#include "netd/link/netlink.h"

static void ep_copy_routes_from_ipam(Endpoint *ep, const IpamConfig *cfg) {
        for (size_t i = 0; i < cfg->n_routes && ep->n_routes < EP_MAX_ROUTES; i++) {
                EpRoute *rt = &ep->routes[ep->n_routes];
                rt->dst = cfg->routes[i].dst;
                if (cfg->routes[i].has_gw) {
                        rt->gw = cfg->routes[i].gw;
                        rt->has_gw = true;
                } else {
                        for (size_t k = 0; k < ep->n_addrs; k++)
                                if (ep->has_gateway[k] && ep->gateways[k].family == rt->dst.addr.family) {
                                        rt->gw = ep->gateways[k];
                                        rt->has_gw = true;
                                        break;
                                }
                }
                ep->n_routes++;
        }
}

/* Cluster mode, before the local claim: a claim another node holds is this VM's. Its addresses and MAC are
 * the only ones this attachment can have; *ret_migrating tells whether that node still runs the VM (this
 * attachment is then a migration target) or let it go (take-over). */
static int cluster_preclaim(Manager *m, const AttachRequest *req, const Endpoint *ep, IpamRequest *ir,
                            CsRecord *rec, bool *ret_found, bool *ret_migrating, KvErr *e) {
        char a[KV_ADDR_STRLEN], b[KV_MAC_STRLEN];
        *ret_found = *ret_migrating = false;
        int f = claimstore_get(m->cs, req->network, ep->key, rec);
        if (f < 0)
                return kverr_set_errno(e, KV_ERR_TRY_AGAIN, f, "cluster claims: cannot read the claim of '%s'", ep->key);
        *ret_found = f > 0;
        if (f == 0 || streq(rec->holder, m->node_name))
                return 0;
        if (ep->kind != EP_KIND_VM)
                return kverr_set(e, KV_ERR_ADDRESS_IN_USE, -EBUSY, "add: claim '%s' is held by node '%s'", ep->key,
                                 rec->holder[0] ? rec->holder : rec->target);
        for (size_t k = 0; k < req->n_req_ips; k++) {
                bool ok = false;
                for (size_t i = 0; i < rec->n_addrs; i++)
                        ok = ok || kv_addr_equal(&rec->addrs[i].addr, &req->req_ips[k]);
                if (!ok)
                        return kverr_set(e, KV_ERR_ADDRESS_IN_USE, -EADDRINUSE,
                                         "add: VM '%s/%s' holds other addresses (on node '%s'); requested %s", req->vm_namespace,
                                         req->vm_name, rec->holder, kv_addr_fmt(&req->req_ips[k], a));
        }
        if (req->has_mac && memcmp(req->mac, rec->mac, 6) != 0)
                return kverr_set(e, KV_ERR_ADDRESS_IN_USE, -EADDRINUSE,
                                 "add: VM '%s/%s' has MAC %s (held on node '%s'); requested another", req->vm_namespace,
                                 req->vm_name, kv_mac_fmt(rec->mac, b), rec->holder);
        ir->n_ips = 0;
        for (size_t i = 0; i < rec->n_addrs && i < IPAM_MAX_SETS; i++)
                ir->ips[ir->n_ips++] = rec->addrs[i].addr;
        memcpy(ir->mac, rec->mac, 6);
        ir->has_mac = true;
        *ret_migrating = rec->holder[0] && (rec->attached || rec->target[0]);
        return 0;
}

int do_add(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        AttachRequest req;
        _cleanup_json_ json_t *res = NULL;
        bool cluster_taken_new = false, attached = false;
        int r = attach_request_parse(args, "add", true, &req, e);
        if (r < 0)
                return r;

        BindingKind kind = binding_kind_resolve(req.binding_kind, req.has_vm, req.chained);
        const BindingOps *ops = binding_ops(kind);
        if (ops->validate) {
                r = ops->validate(m, &req, e);
                if (r < 0)
                        return r;
        }

        _cleanup_(endpoint_freep) Endpoint *ep = calloc(1, sizeof *ep);
        if (!ep)
                return -ENOMEM;
        r = endpoint_make_id(req.network, req.container_id, req.ifname, ep->id, sizeof ep->id);
        if (r < 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, r, "add: attachment id is too long");
        if (ep_find(m, ep->id))
                return kverr_set(e, KV_ERR_EXISTS, -EEXIST,
                                 "add: attachment '%s' already exists (DEL it first)", ep->id);

        _cleanup_close_ int nsfd = -1;
        r = netns_open(req.netns, &nsfd);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INVALID_ENV, r, "add: CNI_NETNS '%s' is not a network namespace",
                                       req.netns);
        /* a pod's sandbox is never the node's namespace (where the bridges and uplinks are) nor the machine's: an
         * attachment there would name, create and on a failure delete the node's own links */
        r = netns_owner(nsfd);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INVALID_ENV, r, "add: CNI_NETNS '%s': cannot tell whose namespace it is",
                                       req.netns);
        if (r != NETNS_OTHER)
                return kverr_set(e, KV_ERR_INVALID_ENV, -EPERM,
                                 "add: CNI_NETNS '%s' is %s network namespace, not a pod's sandbox", req.netns,
                                 r == NETNS_OWN ? "the node's own (netd's)" : "the machine's (PID 1's)");

        if ((r = policy_check_add(m, &req, e)) < 0)
                return r;
        /* A requested MAC is never the bridge's (the gateway's): the port would answer for the gateway, and its
         * filter would let it. */
        if (req.has_mac && ops->bridge_port && !req.chained) {
                const char *br = req.vlan_bridge[0] ? req.vlan_bridge : req.bridge;
                uint8_t bm[6];
                char mb[KV_MAC_STRLEN];
                if (link_get_mac(-1, br, bm) < 0)
                        lnl_bridge_mac(br, bm);
                if (memcmp(bm, req.mac, 6) == 0)
                        return kverr_set(e, KV_ERR_ADDRESS_IN_USE, -EADDRINUSE,
                                         "add: 'mac' %s is the MAC of bridge '%s' (the gateway's)",
                                         kv_mac_fmt(req.mac, mb), br);
        }

        NatBackend *nb = NULL;
        if (req.ipmasq || req.n_pm > 0) {
                r = nat_get(m, req.nat_backend, &nb, e);
                if (r < 0)
                        return r;
        }

        /* Fill the record. */
        snprintf(ep->network, sizeof ep->network, "%s", req.network);
        snprintf(ep->container_id, sizeof ep->container_id, "%s", req.container_id);
        snprintf(ep->ifname, sizeof ep->ifname, "%s", req.ifname);
        snprintf(ep->netns, sizeof ep->netns, "%s", req.netns);
        snprintf(ep->binding, sizeof ep->binding, "%s", req.binding);
        ep->binding_kind = kind;
        snprintf(ep->bridge, sizeof ep->bridge, "%s", req.bridge);
        if (req.vlan_bridge[0]) { /* the endpoint sits on the VLAN's bridge; the configured one is its trunk */
                snprintf(ep->trunk, sizeof ep->trunk, "%s", req.bridge);
                snprintf(ep->bridge, sizeof ep->bridge, "%s", req.vlan_bridge);
        }
        snprintf(ep->nat_backend, sizeof ep->nat_backend, "%s", req.nat_backend);
        ep->mtu = req.mtu;
        ep->vlan = req.vlan;
        ep->ipmasq = req.ipmasq;
        ep->antispoof = req.antispoof;
        IGNORE_RESULT(netns_id(nsfd, &ep->netns_id));
        ep->is_gateway = req.is_gateway;
        ep->chained = req.chained;
        ep->n_pm = req.n_pm;
        memcpy(ep->pm, req.pm, sizeof req.pm[0] * req.n_pm);
        ep->n_vm_ports = req.n_vm_ports;
        memcpy(ep->vm_ports, req.vm_ports, sizeof req.vm_ports[0] * req.n_vm_ports);
        ep->created_usec = realtime_usec();
        ep->kind = req.has_vm ? EP_KIND_VM : EP_KIND_CONTAINER;
        if (req.has_vm) {
                snprintf(ep->vm_namespace, sizeof ep->vm_namespace, "%s", req.vm_namespace);
                snprintf(ep->vm_name, sizeof ep->vm_name, "%s", req.vm_name);
                snprintf(ep->vm_interface, sizeof ep->vm_interface, "%s", req.vm_interface);
                snprintf(ep->key, sizeof ep->key, "vm/%s/%s/%s", req.vm_namespace, req.vm_name, req.vm_interface);
        } else
                snprintf(ep->key, sizeof ep->key, "ctr/%s/%s", req.container_id, req.ifname);

        if (req.chained) {
                ep->n_addrs = req.n_prev_ips;
                memcpy(ep->addrs, req.prev_ips, sizeof ep->addrs);
                memcpy(ep->gateways, req.prev_gws, sizeof ep->gateways);
                memcpy(ep->has_gateway, req.prev_has_gw, sizeof ep->has_gateway);
        } else {
                r = ipam_pool_ensure(m->ipam, req.network, &req.ipam, e);
                if (r < 0)
                        return r;
                IpamRequest ir = { .n_ips = req.n_req_ips, .has_mac = req.has_mac, .owner = ep->id };
                memcpy(ir.ips, req.req_ips, sizeof(KvAddr) * req.n_req_ips);
                memcpy(ir.mac, req.mac, 6);
                IpamClaim *c;
                bool existing = false;
                CsRecord rec;
                bool cs_found = false, migrating_in = false;
                if (m->cs) {
                        r = cluster_preclaim(m, &req, ep, &ir, &rec, &cs_found, &migrating_in, e);
                        if (r < 0)
                                return r;
                }
                /* Not fsynced on its own: the endpoint record written durably at the end of this ADD carries
                 * the claim, and start-up re-creates claims that a crash lost (adopt_claims). */
                ipam_set_durable(m->ipam, false);
                r = ipam_claim(m->ipam, req.network, ep->key, &ir, &c, &existing, e);
                ipam_set_durable(m->ipam, m->durable);
                if (r < 0)
                        return r;
                if (m->cs) {
                        if (migrating_in)
                                r = claimstore_begin_migration(m->cs, req.network, ep->key, e);
                        else
                                r = claimstore_take(m->cs, req.network, ep->key, c->addrs, c->n_addrs, c->mac, e);
                        if (r < 0) {
                                if (!existing)
                                        (void) ipam_release(m->ipam, req.network, ep->key);
                                return r;
                        }
                        cluster_taken_new = !migrating_in && !cs_found;
                        if (migrating_in) {
                                handoff_mark_target(ep, rec.holder);
                                KvErr ignore = {};
                                IGNORE_RESULT(ipam_set_state(m->ipam, c, IPAM_CLAIM_MIGRATING, NULL, &ignore));
                        }
                }
                ep->claim_is_new = !existing;
                ep->n_addrs = c->n_addrs;
                for (size_t i = 0; i < c->n_addrs && i < EP_MAX_ADDRS; i++) {
                        ep->addrs[i] = c->addrs[i];
                        ep->gateways[i] = c->gateways[i];
                        ep->has_gateway[i] = c->has_gateway[i];
                }
                memcpy(ep->mac, c->mac, 6);
                ep->has_mac = ep->kind == EP_KIND_VM || req.has_mac;
                ep_copy_routes_from_ipam(ep, &req.ipam);
        }
        ops->fill(ep, &req);

        /* The claim is on disk; the endpoint record is written once the kernel side is complete. A crash in
         * between leaves links without a record: start-up retires every kvnet link nobody owns, and
         * releases container claims without an attachment. */
        ep->state = EP_CREATING;

        LinkInfo li = {};
        if ((r = manager_ipv6_forwarding(m, ep, e)) < 0)
                goto fail;
        r = ops->attach(m, ep, nsfd, &req, &li, e);
        /* A binding's attach undoes its own links when it fails to make them (a name taken in the sandbox: the
         * links there are someone else's); the links it made are named in li, and a later failure takes down the
         * attachment's kernel side. */
        attached = r >= 0 || li.host_ifindex > 0 || li.sandbox_ifindex > 0;
        if (r < 0)
                goto fail;

        if (nb) {
                NatEpBuf b;
                nat_endpoint_from(ep, &b);
                r = nat_add(nb, &b.ne, e);
                if (r < 0)
                        goto fail;
        }

        r = dhcp_start(m, ep, nsfd, e);
        if (r < 0)
                goto fail;

        res = ops->result(ep, &li, &req);
        if (!res) {
                r = kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "netd: out of memory");
                goto fail;
        }
        ep->result = json_dump_compact(res);
        ep->state = EP_READY;
        r = manager_persist(m, ep, e);
        if (r < 0)
                goto fail;
        r = ep_insert(m, ep);
        if (r < 0) {
                kverr_set(e, KV_ERR_INTERNAL, r, "netd: out of memory");
                goto fail;
        }
        if (ep->kind == EP_KIND_VM && ep->mig_role != MIG_ROLE_TARGET)
                handoff_route(m->handoff, ep, true);
        TAKE_PTR(ep);
        m->n_adds++;
        *ret = TAKE_PTR(res);
        return 0;

fail: {
        KvErr ignore = {};
        dhcp_stop(ep);
        handoff_forget(m->handoff, ep);
        if (attached)
                IGNORE_RESULT(teardown_kernel(m, ep, false, &ignore));
        IGNORE_RESULT(endpoint_remove(m->ep_journal, ep, m->durable));
}
        if (!req.chained) {
                IpamClaim *c = ipam_find(m->ipam, ep->network, ep->key);
                if (m->cs && ep->mig_role == MIG_ROLE_TARGET) {
                        IGNORE_RESULT(claimstore_abort_migration(m->cs, ep->network, ep->key));
                        if (c && count_key_users(m, NULL, ep->network, ep->key) == 0)
                                (void) ipam_release(m->ipam, ep->network, ep->key);
                } else if (c && ep->claim_is_new) {
                        (void) ipam_release(m->ipam, ep->network, ep->key);
                        if (cluster_taken_new)
                                cluster_release(m, ep->network, ep->key);
                } else if (c && count_key_users(m, NULL, ep->network, ep->key) == 0) {
                        KvErr ignore = {};
                        IGNORE_RESULT(ipam_set_state(m->ipam, c, IPAM_CLAIM_IDLE, "", &ignore));
                }
        }
        return r;
}

