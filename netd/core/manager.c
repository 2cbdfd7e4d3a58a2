/* SPDX-License-Identifier: Apache-2.0 */
/* netd's manager: owns IPAM, endpoints, links and NAT; serves the socket verbs. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <time.h>

#include "common/event.h"
#include "common/fileio.h"
#include "common/json-util.h"
#include "common/log.h"
#include "common/netns.h"
#include "common/proto.h"
#include "netd/core/netd-priv.h"
#include "netd/link/vlan.h"

/* ---- endpoint table ---- */

static size_t ep_bucket(const Manager *m, const char *id) {
        return (size_t) (kv_hash64(id, strlen(id)) % m->n_buckets);
}

static Endpoint *ep_find(Manager *m, const char *id) {
        for (EpNode *n = m->ep_buckets[ep_bucket(m, id)]; n; n = n->next)
                if (streq(n->ep->id, id))
                        return n->ep;
        return NULL;
}

static int ep_grow(Manager *m) {
        size_t nb = m->n_buckets ? m->n_buckets * 2 : 256;
        EpNode **b = calloc(nb, sizeof *b);
        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_buckets; i++) {
                EpNode *n = m->ep_buckets[i];
                while (n) {
                        EpNode *next = n->next;
                        size_t k = (size_t) (kv_hash64(n->ep->id, strlen(n->ep->id)) % nb);
                        n->next = b[k];
                        b[k] = n;
                        n = next;
                }
        }
        free(m->ep_buckets);
        m->ep_buckets = b;
        m->n_buckets = nb;
        return 0;
}

static int ep_insert(Manager *m, Endpoint *ep) {
        if (m->n_endpoints + 1 > m->n_buckets) {
                int r = ep_grow(m);
                if (r < 0)
                        return r;
        }
        EpNode *n = calloc(1, sizeof *n);
        if (!n)
                return -ENOMEM;
        size_t k = ep_bucket(m, ep->id);
        n->ep = ep;
        n->next = m->ep_buckets[k];
        m->ep_buckets[k] = n;
        m->n_endpoints++;
        return 0;
}

/* Unlinks ep from the table (does not free it). */
static void ep_unlink(Manager *m, Endpoint *ep) {
        EpNode **pp = &m->ep_buckets[ep_bucket(m, ep->id)];
        for (; *pp; pp = &(*pp)->next) {
                if ((*pp)->ep == ep) {
                        EpNode *n = *pp;
                        *pp = n->next;
                        free(n);
                        m->n_endpoints--;
                        return;
                }
        }
}

static size_t count_key_users(Manager *m, const Endpoint *except, const char *network, const char *key) {
        size_t n = 0;
        EP_FOREACH(m, ep) {
                if (ep != except && streq(ep->network, network) && streq(ep->key, key))
                        n++;
        }
        return n;
}

/* ---- networks ---- */

static NetworkState *network_get(Manager *m, const char *name, const char *bridge) {
        for (size_t i = 0; i < m->n_networks; i++)
                if (streq(m->networks[i].name, name) && streq(m->networks[i].bridge, bridge))
                        return &m->networks[i];
        if (m->n_networks >= NETD_MAX_NETWORKS)
                return NULL;
        NetworkState *n = &m->networks[m->n_networks++];
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

static bool ep_is_sriov(const Endpoint *ep) {
        return streq(ep->binding, "sriov");
}

static bool is_trunk(Manager *m, const char *bridge) {
        for (size_t i = 0; i < m->n_trunks; i++)
                if (streq(m->trunks[i], bridge))
                        return true;
        return false;
}

/* An untagged kvnet port on a bridge: the endpoints the guard is for. */
static bool ep_untagged_port(const Endpoint *ep) {
        return !ep->chained && !ep_is_sriov(ep) && ep->vlan == 0 && ep->host_ifname[0];
}

/* bridge carries VLANs from now on: every untagged kvnet port on it gets the guard first, so that none of them
 * can send into a VLAN or see its floods. */
static int trunk_add(Manager *m, const char *bridge, KvErr *e) {
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
static int network_ensure_bridge(Manager *m, const Endpoint *ep, KvErr *e) {
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

/* ---- NAT ---- */

static int nat_get(Manager *m, const char *backend, NatBackend **ret, KvErr *e) {
        if (!streq(backend, "nftables"))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EOPNOTSUPP,
                                 "network: 'natBackend' '%s' is not available in this build (use nftables)",
                                 backend);
        if (!m->nat_nft) {
                int r = nat_backend_new("nftables", &m->nat_nft);
                if (r < 0)
                        return kverr_set_errno(e, KV_ERR_INTERNAL, r, "netd: cannot open the nftables backend");
        }
        *ret = m->nat_nft;
        return 0;
}

static bool ep_needs_nat(const Endpoint *ep) {
        return ep->ipmasq || ep->n_pm > 0;
}

typedef struct NatEpBuf {
        NatEndpoint ne;
        NatPortMapping pm[EP_MAX_PORTS * 2];
} NatEpBuf;

static void nat_endpoint_from(const Endpoint *ep, NatEpBuf *b) {
        memset(b, 0, sizeof *b);
        b->ne.id = ep->id;
        b->ne.masq = ep->ipmasq;
        for (size_t i = 0; i < ep->n_addrs && i < 4; i++) {
                b->ne.addrs[b->ne.n_addrs++] = ep->addrs[i].addr;
                b->ne.subnets[b->ne.n_subnets++] = kv_prefix_network(&ep->addrs[i]);
        }
        size_t n = 0;
        for (size_t i = 0; i < ep->n_pm; i++) {
                b->pm[n].host_port = ep->pm[i].host_port;
                b->pm[n].container_port = ep->pm[i].container_port;
                b->pm[n].proto = ep->pm[i].proto;
                b->pm[n].host_ip = ep->pm[i].host_ip;
                n++;
        }
        b->ne.pm = b->pm;
        b->ne.n_pm = n;
}

/* ---- naming ---- */

static void derive_ifname(char *buf, const char *prefix, const char *id) {
        uint64_t h = kv_hash64(id, strlen(id));
        snprintf(buf, 16, "%s%08x", prefix, (unsigned) (h ^ (h >> 32)));
}

/* ---- SR-IOV ---- */

/* Is the VF recorded for ep still allocated to it, and still at its PF's virtfn<N> in sysfs? */
static int sriov_check_vf(Manager *m, const Endpoint *ep, KvErr *e) {
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
static int sriov_release_ep(Manager *m, const Endpoint *ep, KvErr *e) {
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

static json_t *build_result(const Endpoint *ep, const LinkInfo *li) {
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
static json_t *build_sriov_result(const Endpoint *ep) {
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
static json_t *build_chained_result(const Endpoint *ep, json_t *prev) {
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

/* ---- ADD ---- */

int manager_persist(Manager *m, const Endpoint *ep, KvErr *e) {
        int r = endpoint_save(m->ep_journal, ep, m->durable);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "netd: cannot write state for '%s'", ep->id);
        return 0;
}

static int persist(Manager *m, const Endpoint *ep, KvErr *e) {
        return manager_persist(m, ep, e);
}

/* Cluster mode: the claim store follows every local release. */
static void cluster_release(Manager *m, const char *network, const char *key) {
        if (m->cs && claimstore_release(m->cs, network, key) < 0)
                log_warning("cluster claims: releasing '%s' in '%s' failed", key, network);
}

static bool cluster_taken(const char *network, const KvAddr *a, const char *key, void *userdata) {
        Manager *m = userdata;
        return claimstore_addr_taken(m->cs, network, a, key);
}

static void release_claim_nosync(Manager *m, const Endpoint *ep);

/* Not fsynced: a release lost in a crash is redone at start (container claims without an attachment
 * are released, VM claims without one go idle). */
static void release_claim_if_unused(Manager *m, const Endpoint *ep) {
        if (ep->chained)
                return;
        ipam_set_durable(m->ipam, false);
        release_claim_nosync(m, ep);
        ipam_set_durable(m->ipam, m->durable);
}

static void release_claim_nosync(Manager *m, const Endpoint *ep) {
        if (count_key_users(m, ep, ep->network, ep->key) > 0)
                return;
        IpamClaim *c = ipam_find(m->ipam, ep->network, ep->key);
        if (!c)
                return;
        if (m->cs && ep->kind == EP_KIND_VM) {
                /* A node keeps a VM claim only while it is the cluster holder: after a migration away, or
                 * for a target that never activated, the local copy goes. */
                CsRecord rec;
                int f = claimstore_get(m->cs, ep->network, ep->key, &rec);
                if (f > 0 && !streq(rec.holder, m->node_name)) {
                        if (streq(rec.target, m->node_name))
                                IGNORE_RESULT(claimstore_abort_migration(m->cs, ep->network, ep->key));
                        (void) ipam_release(m->ipam, ep->network, ep->key);
                        return;
                }
                if (f > 0)
                        IGNORE_RESULT(claimstore_detach(m->cs, ep->network, ep->key));
        }
        if (ep->kind == EP_KIND_VM && !ep->claim_is_new) {
                KvErr ignore = {};
                IGNORE_RESULT(ipam_set_state(m->ipam, c, IPAM_CLAIM_IDLE, "", &ignore));
                return;
        }
        if (ep->kind == EP_KIND_VM && ep->state == EP_READY) {
                /* A VM keeps its address after its pod goes away (sticky); kvnetctl ipam-release or the
                 * controller frees it. */
                KvErr ignore = {};
                IGNORE_RESULT(ipam_set_state(m->ipam, c, IPAM_CLAIM_IDLE, "", &ignore));
                return;
        }
        if (ipam_release(m->ipam, ep->network, ep->key) > 0)
                cluster_release(m, ep->network, ep->key);
}

/* Removes the kernel side of an endpoint; tolerant of anything already gone. Deferred: NAT entries go
 * now, the links are taken out of service now and deleted by the reaper in the next batch. */
static bool ep_is_masq_vm(const Endpoint *ep);

static int teardown_kernel(Manager *m, const Endpoint *ep, bool deferred, KvErr *e) {
        int r, ret = 0;
        /* SR-IOV: no links, no NAT; the VF goes back to its pool. */
        if (ep_is_sriov(ep))
                return sriov_release_ep(m, ep, e);
        if (ep_needs_nat(ep)) {
                NatBackend *nb;
                if (nat_get(m, ep->nat_backend[0] ? ep->nat_backend : "nftables", &nb, e) >= 0) {
                        NatEpBuf b;
                        nat_endpoint_from(ep, &b);
                        r = nat_del(nb, &b.ne, e);
                        if (r < 0)
                                ret = r;
                }
        }
        _cleanup_close_ int nsfd = -1;
        if (ep->netns[0])
                IGNORE_RESULT(netns_open(ep->netns, &nsfd));
        const char *sbx = NULL, *tap = NULL, *host = NULL;
        if (ep->chained) {
                if (ep->kind == EP_KIND_VM)
                        tap = ep->tap;
        } else if (ep->kind == EP_KIND_VM) {
                sbx = ep->sbx_ifname;
                tap = ep->tap;
                host = ep->host_ifname;
        } else {
                sbx = ep->ifname;
                host = ep->host_ifname;
        }
        if (!sbx && !tap && !host)
                return ret;
        /* masquerade: the sandbox's NAT table goes now (it would go with the sandbox anyway). */
        if (ep_is_masq_vm(ep) && nsfd >= 0) {
                KvErr me = {};
                r = masq_nft_remove(nsfd, &me);
                if (r < 0 && ret == 0)
                        ret = kverr_set(e, me.code, r, "%s", me.msg);
        }
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

/* ---- masquerade binding ---- */

static bool ep_is_masq_vm(const Endpoint *ep) {
        return ep->kind == EP_KIND_VM && !ep->chained && streq(ep->binding, "masquerade");
}

bool manager_ep_is_masq_vm(const Endpoint *ep) {
        return ep_is_masq_vm(ep);
}

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

/* ---- guest DHCP ---- */

/* The guest learns its address from netd: a responder bound to the VM's tap inside the sandbox (an
 * AF_PACKET socket sees the guest's frames before the tc redirect takes them on). Static lease: the
 * claim. */
static void dhcp_acked(DhcpServer *s, const DhcpLease *l, void *userdata);

static int dhcp_start(Manager *m, Endpoint *ep, int nsfd, KvErr *e) {
        if (!m->loop || ep->kind != EP_KIND_VM || ep->dhcp || ep_is_sriov(ep))
                return 0; /* a VF's guest is on the physical network: its DHCP is not ours to serve */
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
                } else if (a->addr.family == AF_INET6 && !l.has_v6 && !ep->chained) {
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
        if (ep_is_masq_vm(ep)) {
                /* The guest sees the private side of the sandbox NAT: its router, its RA source (the tap's
                 * own MAC) and its only route are the tap's. */
                MasqBuf mb;
                masq_config_from(ep, &mb);
                if (l.has_v4) {
                        l.addr4 = mb.c.guest4;
                        l.gw4 = l.server4 = mb.c.guest_gw4;
                }
                if (l.has_v6) {
                        l.addr6 = mb.c.guest6;
                        l.gw6 = mb.c.guest_gw6;
                        l.slaac = true;
                }
                l.n_routes = 0;
        } else if (!ep->chained && link_get_mac(-1, ep->bridge, l.server_mac) < 0)
                /* Router advertisements come from the bridge's link-local address, which the bridge answers
                 * for. */
                memset(l.server_mac, 0, 6);
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
        if (!l->has_v4 || ep->chained || ep_is_masq_vm(ep))
                return;
        int r = link_neigh_learn(ep->bridge, &l->addr4.addr, l->mac);
        if (r < 0)
                log_debug("dhcp: neighbour entry for '%s' on '%s': %s", ep->id, ep->bridge, strerror(-r));
}

static void dhcp_stop(Endpoint *ep) {
        dhcp_server_free(ep->dhcp);
        ep->dhcp = NULL;
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

static int do_add(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        AttachRequest req;
        _cleanup_json_ json_t *res = NULL;
        bool cluster_taken_new = false;
        int r = attach_request_parse(args, "add", true, &req, e);
        if (r < 0)
                return r;

        bool sriov = streq(req.binding, "sriov");
        if (sriov && !m->sriov)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EOPNOTSUPP,
                                 "no SR-IOV pools configured on this node (netd config 'sriovPools')");
        if (streq(req.binding, "masquerade") && req.has_vm && req.chained)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EOPNOTSUPP,
                                 "network: binding 'masquerade' needs kvnet as the main plugin (not chained)");
        if (streq(req.binding, "masquerade") && !req.has_vm)
                req.ipmasq = true; /* for a container, masquerade = bridge + ipMasq */
        if (req.n_vm_ports > 0 && !(req.has_vm && streq(req.binding, "masquerade")))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "vm: 'ports' only apply to the masquerade binding, this attachment is '%s'",
                                 req.binding);
        if (req.chained && req.has_vm && !req.prev_ifname[0])
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "prevResult: no sandbox interface carries the IPs; kvnet cannot attach the VM's "
                                 "tap to it");

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
        snprintf(ep->bridge, sizeof ep->bridge, "%s", req.bridge);
        if (req.vlan_bridge[0]) { /* the endpoint sits on the VLAN's bridge; the configured one is its trunk */
                snprintf(ep->trunk, sizeof ep->trunk, "%s", req.bridge);
                snprintf(ep->bridge, sizeof ep->bridge, "%s", req.vlan_bridge);
        }
        snprintf(ep->nat_backend, sizeof ep->nat_backend, "%s", req.nat_backend);
        ep->mtu = req.mtu;
        ep->vlan = req.vlan;
        if (sriov) {
                snprintf(ep->resource, sizeof ep->resource, "%s", req.resource_name);
                ep->spoofchk = req.spoofchk;
                ep->trust = req.trust;
        }
        ep->ipmasq = req.ipmasq;
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
                if (ep->kind == EP_KIND_VM) {
                        snprintf(ep->sbx_ifname, sizeof ep->sbx_ifname, "%s", req.prev_ifname);
                        derive_ifname(ep->tap, "tap", ep->id);
                        if (req.has_mac) {
                                memcpy(ep->mac, req.mac, 6);
                        } else {
                                uint64_t h = kv_hash64(ep->key, strlen(ep->key));
                                ep->mac[0] = 0x02;
                                for (int i = 1; i < 6; i++)
                                        ep->mac[i] = (uint8_t) (h >> (8 * i));
                        }
                        ep->has_mac = true;
                }
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
                if (!sriov)
                        derive_ifname(ep->host_ifname, "kv", ep->id);
                if (ep->kind == EP_KIND_VM && !sriov) {
                        snprintf(ep->tap, sizeof ep->tap, "%s", req.ifname);
                        derive_ifname(ep->sbx_ifname, "kvs", ep->id);
                }
        }

        /* The claim is on disk; the endpoint record is written once the kernel side is complete. A crash in
         * between leaves links without a record: start-up retires every kvnet link nobody owns, and
         * releases container claims without an attachment. */
        ep->state = EP_CREATING;

        LinkInfo li = {};
        if (sriov) {
                /* The guest MAC of the claim goes onto the VF; the claim file of the VF is written before the
                 * PF is told. Undo (fail:) releases it through teardown_kernel. */
                SriovAllocRequest ar = { .resource = ep->resource, .owner = ep->id, .vlan = ep->vlan,
                                         .spoofchk = ep->spoofchk, .trust = ep->trust };
                memcpy(ar.mac, ep->mac, 6);
                SriovVf *vf;
                r = sriov_alloc(m->sriov, &ar, &vf, e);
                if (r < 0)
                        goto fail;
                snprintf(ep->pci, sizeof ep->pci, "%s", vf->pci);
        } else if (!req.chained) {
                r = network_ensure_bridge(m, ep, e);
                if (r < 0)
                        goto fail;
                /* Names are derived from the attachment id: a re-ADD right after a DEL may find the old links
                 * still waiting for the reaper. */
                if (m->reaper && !reaper_idle(m->reaper) &&
                    (link_exists(-1, ep->host_ifname) ||
                     link_exists(nsfd, ep->kind == EP_KIND_VM ? ep->tap : ep->ifname)))
                        reaper_flush(m->reaper);
                if (ep_is_masq_vm(ep)) {
                        MasqBuf mb;
                        masq_config_from(ep, &mb);
                        r = masq_vm_attach(nsfd, &mb.c, &li, e);
                } else if (ep->kind == EP_KIND_VM)
                        r = link_vm_attach(nsfd, ep->tap, ep->sbx_ifname, ep->host_ifname, ep->bridge, ep->mtu,
                                           ep->mac, &li, e);
                else {
                        LinkRoute routes[EP_MAX_ROUTES];
                        for (size_t i = 0; i < ep->n_routes; i++) {
                                routes[i].dst = ep->routes[i].dst;
                                routes[i].gw = ep->routes[i].gw;
                                routes[i].has_gw = ep->routes[i].has_gw;
                        }
                        /* The claim's MAC (requested, or derived from the claim key): stable for the claim. */
                        r = link_container_attach(nsfd, ep->ifname, ep->host_ifname, ep->bridge, ep->mtu, ep->mac,
                                                  ep->addrs, ep->n_addrs, routes, ep->n_routes, &li, e);
                        ep->has_mac = true;
                }
                if (r < 0)
                        goto fail;
                if (ep_untagged_port(ep) && is_trunk(m, ep->bridge)) {
                        r = vlan_guard_port(ep->host_ifname, e);
                        if (r < 0)
                                goto fail;
                }
                if (ep->mig_role == MIG_ROLE_TARGET) {
                        r = handoff_prepare_target(m->handoff, ep, e);
                        if (r < 0)
                                goto fail;
                }
        } else if (ep->kind == EP_KIND_VM) {
                KvPrefix moved[EP_MAX_ADDRS];
                size_t n_moved = 0;
                r = link_vm_attach_chained(nsfd, ep->tap, ep->sbx_ifname, ep->mtu, &li, moved, EP_MAX_ADDRS,
                                           &n_moved, e);
                if (r < 0)
                        goto fail;
                /* The guest takes over the sandbox interface's MAC, so that whatever the previous plugin
                 * taught its peers (ARP, FDB) stays true. */
                if (!req.has_mac)
                        memcpy(ep->mac, li.sandbox_mac, 6);
        }

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

        res = sriov ? build_sriov_result(ep)
                    : req.chained ? build_chained_result(ep, req.prev_result) : build_result(ep, &li);
        if (!res) {
                r = kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "netd: out of memory");
                goto fail;
        }
        ep->result = json_dump_compact(res);
        ep->state = EP_READY;
        r = persist(m, ep, e);
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

/* ---- DEL ---- */

static int remove_endpoint(Manager *m, Endpoint *ep, KvErr *e) {
        if (count_key_users(m, ep, ep->network, ep->key) == 0)
                handoff_on_remove(m->handoff, ep);
        dhcp_stop(ep);
        handoff_forget(m->handoff, ep);
        int r = teardown_kernel(m, ep, true, e);
        if (r < 0)
                return r;
        ep_unlink(m, ep);
        release_claim_if_unused(m, ep);
        r = endpoint_remove(m->ep_journal, ep, m->durable);
        endpoint_free(ep);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "netd: cannot remove endpoint state");
        return 0;
}

static int do_del(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        AttachRequest req;
        int r = attach_request_parse(args, "del", false, &req, e);
        if (r < 0)
                return r;
        char id[512];
        r = endpoint_make_id(req.network, req.container_id, req.ifname, id, sizeof id);
        if (r < 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, r, "del: attachment id is too long");
        Endpoint *ep = ep_find(m, id);
        if (ep) {
                r = remove_endpoint(m, ep, e);
                if (r < 0)
                        return r;
                m->n_dels++;
        }
        *ret = json_object();
        return 0;
}

/* ---- CHECK ---- */

static int do_check(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        AttachRequest req;
        int r = attach_request_parse(args, "check", false, &req, e);
        if (r < 0)
                return r;
        char id[512];
        r = endpoint_make_id(req.network, req.container_id, req.ifname, id, sizeof id);
        if (r < 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, r, "check: attachment id is too long");
        Endpoint *ep = ep_find(m, id);
        if (!ep)
                return kverr_set(e, KV_ERR_UNKNOWN_CONTAINER, -ENOENT, "check: unknown attachment '%s'", id);
        _cleanup_close_ int nsfd = -1;
        r = netns_open(req.netns[0] ? req.netns : ep->netns, &nsfd);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INVALID_ENV, r, "check: netns '%s' is gone", ep->netns);
        if (ep_is_sriov(ep)) {
                r = sriov_check_vf(m, ep, e);
                if (r < 0)
                        return r;
        } else if (!ep->chained) {
                if (ep->kind == EP_KIND_VM)
                        r = ep_is_masq_vm(ep) ? ({
                                MasqBuf mb;
                                masq_config_from(ep, &mb);
                                masq_vm_check(nsfd, &mb.c, e);
                        })
                                              : link_vm_check(nsfd, ep->tap, ep->sbx_ifname, ep->host_ifname,
                                                              ep->bridge, e);
                else
                        r = link_container_check(nsfd, ep->ifname, ep->host_ifname, ep->bridge, ep->addrs,
                                                 ep->n_addrs, e);
                if (r < 0)
                        return r;
                if (ep_untagged_port(ep) && is_trunk(m, ep->bridge) && vlan_guard_present(ep->host_ifname) <= 0)
                        return kverr_set(e, KV_ERR_INTERNAL, -ENOENT,
                                         "check: '%s' is an untagged port of VLAN trunk '%s' without its guard",
                                         ep->host_ifname, ep->bridge);
        } else if (ep->kind == EP_KIND_VM && !link_exists(nsfd, ep->tap))
                return kverr_set(e, KV_ERR_INTERNAL, -ENOENT, "check: tap '%s' is missing in the sandbox", ep->tap);
        if (ep_needs_nat(ep)) {
                NatBackend *nb;
                r = nat_get(m, ep->nat_backend, &nb, e);
                if (r < 0)
                        return r;
                NatEpBuf b;
                nat_endpoint_from(ep, &b);
                r = nat_check(nb, &b.ne, e);
                if (r < 0)
                        return r;
        }
        /* The cached prevResult must still carry our addresses. */
        json_t *prev = json_object_get(args, "prevResult");
        if (json_is_object(prev) && !ep->chained) {
                char buf[KV_ADDR_STRLEN];
                for (size_t i = 0; i < ep->n_addrs; i++) {
                        bool found = false;
                        size_t k;
                        json_t *ip;
                        kv_prefix_fmt(&ep->addrs[i], buf);
                        json_array_foreach(json_object_get(prev, "ips"), k, ip) {
                                const char *a = json_string_value(json_object_get(ip, "address"));
                                if (a && streq(a, buf))
                                        found = true;
                        }
                        if (!found)
                                return kverr_set(e, KV_ERR_INTERNAL, -EINVAL,
                                                 "check: prevResult does not list the attachment's address %s", buf);
                }
        }
        *ret = json_object();
        return 0;
}

/* ---- GC ---- */

static int do_gc(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        const char *network = NULL;
        json_t *valid = NULL;
        int r;
        if ((r = json_get_string(args, "gc", "network", true, &network, e)) < 0 ||
            (r = json_get_array(args, "gc", "validAttachments", false, &valid, e)) < 0)
                return r;
        size_t i;
        json_t *v;
        json_array_foreach(valid, i, v) {
                if (!json_is_string(json_object_get(v, "containerID")) || !json_is_string(json_object_get(v, "ifname")))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "gc: validAttachments[%zu] needs string 'containerID' and 'ifname'", i);
        }
        unsigned removed = 0, failed = 0;
        EP_FOREACH(m, ep) {
                if (!streq(ep->network, network))
                        continue;
                bool keep = false;
                json_array_foreach(valid, i, v) {
                        if (streq(json_string_value(json_object_get(v, "containerID")), ep->container_id) &&
                            streq(json_string_value(json_object_get(v, "ifname")), ep->ifname)) {
                                keep = true;
                                break;
                        }
                }
                if (keep)
                        continue;
                KvErr ee = {};
                if (remove_endpoint(m, ep, &ee) < 0) {
                        log_warning("gc: removing '%s' failed: %s", ep->id, ee.msg);
                        failed++;
                } else
                        removed++;
        }
        *ret = json_pack("{s:i,s:i}", "removed", removed, "failed", failed);
        return 0;
}

/* ---- debug verbs ---- */

static json_t *endpoints_json(Manager *m) {
        json_t *arr = json_array();
        EP_FOREACH(m, ep) {
                json_t *o = endpoint_to_json(ep, false);
                if (o && ep->dhcp)
                        json_object_set_new(o, "dhcp", dhcp_server_stats(ep->dhcp));
                json_array_append_new(arr, o);
        }
        return arr;
}

static int do_status_daemon(Manager *m, json_t **ret) {
        size_t n_claims = 0;
        json_t *dump = ipam_dump(m->ipam);
        if (dump)
                n_claims = json_array_size(json_object_get(dump, "claims"));
        json_decref(dump);
        json_t *nets = json_array();
        for (size_t i = 0; i < m->n_networks; i++)
                json_array_append_new(nets, json_pack("{s:s,s:s}", "name", m->networks[i].name, "bridge",
                                                      m->networks[i].bridge));
        json_t *sriov = json_null();
        if (m->sriov) {
                _cleanup_json_ json_t *d = sriov_dump(m->sriov);
                json_t *pools = json_array(), *p;
                size_t i;
                json_array_foreach(json_object_get(d, "pools"), i, p) json_array_append_new(
                        pools, json_pack("{s:O*,s:O*,s:O*,s:O*,s:O*}", "resource", json_object_get(p, "resource"),
                                         "total", json_object_get(p, "total"), "free", json_object_get(p, "free"),
                                         "allocated", json_object_get(p, "allocated"), "unusable",
                                         json_object_get(p, "unusable")));
                sriov = json_pack("{s:b,s:s,s:o}", "simulated", m->sriov_simulate, "sysfsRoot", m->sysfs_root, "pools",
                                  pools);
        }
        json_t *st = json_pack("{s:s,s:b,s:I,s:I,s:I,s:s,s:s,s:o,s:I,s:I,s:I,s:I,s:i}", "version", NETD_VERSION, "ready", 1, "uptime",
                         (json_int_t) ((now_usec() - m->started_usec) / 1000000), "endpoints",
                         (json_int_t) m->n_endpoints, "claims", (json_int_t) n_claims, "stateDir", m->state_dir,
                         "socket", m->socket_path, "networks", nets, "requests", (json_int_t) m->n_requests, "adds",
                         (json_int_t) m->n_adds, "dels", (json_int_t) m->n_dels, "errors", (json_int_t) m->n_errors,
                         "corruptStateFiles", (int) m->corrupt_files);
        if (!st) {
                json_decref(sriov);
                return -ENOMEM;
        }
        json_object_set_new(st, "sriov", sriov ? sriov : json_null());
        json_t *journals = json_array(), *trunks = json_array();
        Journal *js[] = { m->ep_journal, ipam_journal(m->ipam) };
        for (size_t k = 0; k < ELEMENTSOF(js); k++)
                json_array_append_new(journals,
                                      json_pack("{s:s,s:I,s:I,s:I,s:i}", "path", journal_path(js[k]), "records",
                                                (json_int_t) journal_count(js[k]), "usedBytes",
                                                (json_int_t) journal_used_bytes(js[k]), "capacityBytes",
                                                (json_int_t) journal_capacity(js[k]), "damagedAtStart",
                                                (int) journal_bad_records(js[k])));
        for (size_t k = 0; k < m->n_trunks; k++)
                json_array_append_new(trunks, json_string(m->trunks[k]));
        json_object_set_new(st, "journals", journals);
        json_object_set_new(st, "vlanTrunks", trunks);
        *ret = st;
        return 0;
}

static int do_ipam_release(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        const char *network = NULL, *key = NULL;
        int r;
        if ((r = json_get_string(args, "ipam-release", "network", true, &network, e)) < 0 ||
            (r = json_get_string(args, "ipam-release", "key", true, &key, e)) < 0)
                return r;
        if (count_key_users(m, NULL, network, key) > 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EBUSY,
                                 "ipam-release: claim '%s' in network '%s' is still attached", key, network);
        IpamClaim *c = ipam_find(m->ipam, network, key);
        if (!c)
                return kverr_set(e, KV_ERR_UNKNOWN_CONTAINER, -ENOENT, "ipam-release: no claim '%s' in network '%s'",
                                 key, network);
        r = ipam_release(m->ipam, network, key);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "ipam-release: cannot remove claim '%s'", key);
        cluster_release(m, network, key);
        *ret = json_object();
        return 0;
}

json_t *manager_handle(Manager *m, json_t *request) {
        KvErr e = {};
        json_t *result = NULL;
        int r;
        m->n_requests++;

        const char *op = json_string_value(json_object_get(request, "op"));
        json_t *args = json_object_get(request, "args");
        if (!op)
                r = kverr_set(&e, KV_ERR_DECODE, -EINVAL, "request: 'op' must be a string");
        else if (streq(op, "add"))
                r = do_add(m, args, &result, &e);
        else if (streq(op, "del"))
                r = do_del(m, args, &result, &e);
        else if (streq(op, "check"))
                r = do_check(m, args, &result, &e);
        else if (streq(op, "gc"))
                r = do_gc(m, args, &result, &e);
        else if (streq(op, "status") || streq(op, "ping")) {
                result = json_pack("{s:b}", "ready", 1);
                r = 0;
        } else if (streq(op, "status-daemon"))
                r = do_status_daemon(m, &result);
        else if (streq(op, "endpoints")) {
                result = json_pack("{s:o}", "endpoints", endpoints_json(m));
                r = 0;
        } else if (streq(op, "ipam")) {
                result = ipam_dump(m->ipam);
                r = result ? 0 : -ENOMEM;
        } else if (streq(op, "nat")) {
                NatBackend *nb;
                r = nat_get(m, m->default_nat_backend, &nb, &e);
                if (r >= 0)
                        r = nat_dump(nb, &result);
        } else if (streq(op, "sriov")) {
                if (m->sriov) {
                        result = sriov_dump(m->sriov);
                        if (result)
                                json_object_set_new(result, "simulated", json_boolean(m->sriov_simulate));
                } else
                        result = json_pack("{s:[],s:[],s:b}", "pools", "vfs", "simulated", m->sriov_simulate);
                r = result ? 0 : -ENOMEM;
        } else if (streq(op, "ipam-release"))
                r = do_ipam_release(m, args, &result, &e);
        else if (streq(op, "migration-activate"))
                r = handoff_activate(m->handoff, args, &result, &e);
        else if (streq(op, "migration-source"))
                r = handoff_source(m->handoff, args, &result, &e);
        else if (streq(op, "migrations")) {
                result = handoff_list(m->handoff);
                r = result ? 0 : -ENOMEM;
        } else if (streq(op, "cluster-claims")) {
                result = m->cs ? claimstore_dump(m->cs) : json_pack("{s:n,s:n,s:[]}", "node", "dir", "claims");
                r = result ? 0 : -ENOMEM;
        }
        else
                r = kverr_set(&e, KV_ERR_DECODE, -EINVAL, "request: unknown op '%s'", op);

        if (r < 0) {
                m->n_errors++;
                json_decref(result);
                if (!kverr_is_set(&e))
                        kverr_set_errno(&e, KV_ERR_INTERNAL, r, "netd: '%s' failed", op ? op : "?");
                if (op && (streq(op, "add") || streq(op, "del") || streq(op, "gc")))
                        log_warning("%s failed (code %d): %s%s%s", op, e.code, e.msg, e.details[0] ? ": " : "",
                                    e.details);
                return proto_reply_error(&e);
        }
        return proto_reply_ok(result);
}

/* ---- lifecycle ---- */

static int parse_config_file(Manager *m, KvErr *e) {
        if (!m->config_path)
                return 0;
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = read_file_max(m->config_path, 1024 * 1024, &text, &len);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INVALID_CONFIG, r, "config: cannot read '%s'", m->config_path);
        _cleanup_json_ json_t *o = NULL;
        r = json_parse_object(text, len, 1024 * 1024, m->config_path, &o, e);
        if (r < 0)
                return r;
        const char *key;
        json_t *v;
        json_object_foreach(o, key, v) {
                if (!streq(key, "natBackend") && !streq(key, "durable") && !streq(key, "sriovPools") &&
                    !streq(key, "sysfsRoot") && !streq(key, "sriovSimulate") && !streq(key, "nodeName") &&
                    !streq(key, "clusterClaims") && !streq(key, "routeHook") && !streq(key, "nodeAddress") &&
                    !streq(key, "redirectGraceMs"))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "config %s: unknown key '%s' (expected natBackend, durable, sriovPools, "
                                         "sysfsRoot, sriovSimulate, nodeName, clusterClaims, routeHook, nodeAddress, "
                                         "redirectGraceMs)",
                                         m->config_path, key);
        }
        const char *node = NULL, *cdir = NULL, *hook = NULL, *naddr = NULL;
        long long grace = m->redirect_grace_ms;
        if ((r = json_get_string(o, "config", "nodeAddress", false, &naddr, e)) < 0 ||
            (r = json_get_int(o, "config", "redirectGraceMs", false, 0, 600000, &grace, e)) < 0)
                return r;
        m->redirect_grace_ms = (uint32_t) grace;
        if (naddr && kv_addr_parse(naddr, &m->node_address) < 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "config: 'nodeAddress' must be an IPv4 or IPv6 address, got '%.64s'", naddr);
        if ((r = json_get_string(o, "config", "nodeName", false, &node, e)) < 0 ||
            (r = json_get_string(o, "config", "clusterClaims", false, &cdir, e)) < 0 ||
            (r = json_get_string(o, "config", "routeHook", false, &hook, e)) < 0)
                return r;
        if (hook) {
                if (hook[0] != '/' || access(hook, X_OK) < 0)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "config: 'routeHook' must be the absolute path of an executable, got '%.128s'",
                                         hook);
                free(m->route_hook);
                m->route_hook = strdup(hook);
                if (!m->route_hook)
                        return -ENOMEM;
        }
        if (node) {
                if (!*node || strlen(node) >= sizeof m->node_name)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "config: 'nodeName' must be 1..%zu characters, got '%.64s'",
                                         sizeof m->node_name - 1, node);
                snprintf(m->node_name, sizeof m->node_name, "%s", node);
        }
        if (cdir) {
                if (cdir[0] != '/')
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "config: 'clusterClaims' must be an absolute directory path, got '%.64s'", cdir);
                if (!node)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "config: 'clusterClaims' needs 'nodeName' (this node's name in the cluster)");
                free(m->cluster_dir);
                m->cluster_dir = strdup(cdir);
                if (!m->cluster_dir)
                        return -ENOMEM;
        }
        const char *nb = NULL, *sysfs = NULL;
        json_t *pools = NULL;
        if ((r = json_get_string(o, "config", "natBackend", false, &nb, e)) < 0 ||
            (r = json_get_bool(o, "config", "durable", false, &m->durable, e)) < 0 ||
            (r = json_get_string(o, "config", "sysfsRoot", false, &sysfs, e)) < 0 ||
            (r = json_get_bool(o, "config", "sriovSimulate", false, &m->sriov_simulate, e)) < 0)
                return r;
        if (sysfs) {
                if (sysfs[0] != '/' || strlen(sysfs) >= PATH_MAX / 2)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "config: 'sysfsRoot' must be an absolute path, got '%s'", sysfs);
                char *d = strdup(sysfs);
                if (!d)
                        return -ENOMEM;
                free(m->sysfs_root);
                m->sysfs_root = d;
        }
        pools = json_object_get(o, "sriovPools");
        if (pools) {
                free(m->sriov_pools);
                m->sriov_pools = NULL;
                m->n_sriov_pools = 0;
                KvErr pe = {};
                r = sriov_pools_parse(pools, &m->sriov_pools, &m->n_sriov_pools, &pe);
                if (r < 0)
                        return kverr_set(e, pe.code ? pe.code : KV_ERR_INVALID_CONFIG, r, "config %s: %s",
                                         m->config_path, pe.msg);
        }
        if (nb) {
                if (!streq(nb, "nftables") && !streq(nb, "ebpf"))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "config: 'natBackend' must be nftables or ebpf, got '%s'", nb);
                snprintf(m->default_nat_backend, sizeof m->default_nat_backend, "%s", nb);
        }
        return 0;
}

/* The handoff's view of the attachments (netd/migration/handoff.h). */
static void handoff_foreach_endpoint(void *userdata, void (*fn)(Endpoint *ep, void *ctx), void *ctx) {
        Manager *m = userdata;
        EP_FOREACH(m, ep) {
                fn(ep, ctx);
        }
}

static int handoff_persist_endpoint(void *userdata, const Endpoint *ep, KvErr *e) {
        return manager_persist(userdata, ep, e);
}

int manager_new(const NetdOptions *opts, EventLoop *loop, Manager **ret, KvErr *e) {
        _cleanup_(manager_freep) Manager *m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->socket_path = strdup(opts->socket_path);
        m->state_dir = strdup(opts->state_dir);
        m->config_path = opts->config_path ? strdup(opts->config_path) : NULL;
        if (!m->socket_path || !m->state_dir || (opts->config_path && !m->config_path))
                return -ENOMEM;
        m->durable = opts->durable;
        m->loop = loop;
        strcpy(m->default_nat_backend, "nftables");
        m->redirect_grace_ms = 5000;
        m->started_usec = now_usec();
        m->sysfs_root = strdup(SRIOV_DEFAULT_SYSFS);
        if (!m->sysfs_root)
                return -ENOMEM;
        int r = parse_config_file(m, e);
        if (r < 0)
                return r;
        if (!opts->durable)
                m->durable = false;
        r = ep_grow(m);
        if (r < 0)
                return r;
        r = mkdir_p(m->state_dir, 0700);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "netd: cannot create state dir '%s'", m->state_dir);
        r = ipam_new(m->state_dir, m->durable, &m->ipam);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "netd: cannot set up IPAM");
        char jpath[PATH_MAX];
        if (snprintf(jpath, sizeof jpath, "%s/endpoints.journal", m->state_dir) >= (int) sizeof jpath)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ENAMETOOLONG, "netd: state dir path too long");
        r = journal_open(jpath, m->durable, &m->ep_journal, e);
        if (r < 0)
                return r;
        if (m->cluster_dir) {
                r = claimstore_open(m->cluster_dir, m->node_name, m->durable, &m->cs, e);
                if (r < 0)
                        return r;
                ipam_set_addr_filter(m->ipam, cluster_taken, m);
                if (m->node_address.family && claimstore_set_node_address(m->cs, &m->node_address) < 0)
                        return kverr_set(e, KV_ERR_INTERNAL, -EIO, "clusterClaims: cannot register this node's address");
        }
        HandoffConfig hc = { .loop = loop, .state_dir = m->state_dir, .cs = m->cs, .ipam = m->ipam,
                             .node_name = m->node_name, .node_address = m->node_address,
                             .redirect_grace_ms = m->redirect_grace_ms, .route_hook = m->route_hook };
        HandoffHost hh = { .userdata = m, .foreach_endpoint = handoff_foreach_endpoint,
                           .persist = handoff_persist_endpoint, .is_masq_vm = manager_ep_is_masq_vm };
        r = handoff_new(&hc, &hh, &m->handoff);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "netd: cannot set up the migration handoff");
        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_buckets; i++) {
                EpNode *n = m->ep_buckets[i];
                while (n) {
                        EpNode *next = n->next;
                        dhcp_stop(n->ep);
                        handoff_forget(m->handoff, n->ep);
                        endpoint_free(n->ep);
                        free(n);
                        n = next;
                }
        }
        free(m->ep_buckets);
        sriov_free(m->sriov);
        sriov_nl_sink_free(m->sriov_sink);
        free(m->sriov_pools);
        free(m->sysfs_root);
        reaper_free(m->reaper);
        ipam_free(m->ipam);
        journal_free(m->ep_journal);
        claimstore_free(m->cs);
        free(m->cluster_dir);
        m->handoff = handoff_free(m->handoff);
        free(m->route_hook);
        nat_backend_free(m->nat_nft);
        free(m->socket_path);
        free(m->state_dir);
        free(m->config_path);
        free(m);
        return NULL;
}

static bool host_link_known(const char *name, void *userdata) {
        Manager *m = userdata;
        EP_FOREACH(m, ep) {
                if (streq(ep->host_ifname, name))
                        return true;
        }
        return false;
}

static int idle_unattached_vm_claim(IpamClaim *c, void *userdata) {
        Manager *m = userdata;
        if (c->state == IPAM_CLAIM_IDLE || strncmp(c->key, "vm/", 3) != 0)
                return 0;
        if (count_key_users(m, NULL, c->network, c->key) > 0)
                return 0;
        KvErr ignore = {};
        IGNORE_RESULT(ipam_set_state(m->ipam, c, IPAM_CLAIM_IDLE, "", &ignore));
        return 0;
}

/* Endpoint records are the durable truth for claims held by attachments: re-create a claim a crash lost
 * (its file was not fsynced), and let VM claims whose attachment is gone go idle. */
static int adopt_claims(Manager *m) {
        unsigned adopted = 0;
        EP_FOREACH(m, ep) {
                if (ep->chained || ep->state != EP_READY || ipam_find(m->ipam, ep->network, ep->key))
                        continue;
                IpamRequest ir = { .has_mac = ep->has_mac, .owner = ep->id };
                for (size_t i = 0; i < ep->n_addrs && i < IPAM_MAX_SETS; i++)
                        ir.ips[ir.n_ips++] = ep->addrs[i].addr;
                memcpy(ir.mac, ep->mac, 6);
                IpamClaim *c;
                bool existing;
                KvErr e = {};
                if (ipam_claim(m->ipam, ep->network, ep->key, &ir, &c, &existing, &e) < 0)
                        log_error("restoring the claim of '%s' failed: %s", ep->id, e.msg);
                else
                        adopted++;
        }
        if (adopted)
                log_notice("restored %u claim(s) from endpoint records", adopted);
        return ipam_foreach_claim(m->ipam, NULL, idle_unattached_vm_claim, m);
}

static int load_one(Endpoint *ep, void *userdata) {
        Manager *m = userdata;
        if (ep_find(m, ep->id)) {
                endpoint_free(ep);
                return 0;
        }
        int r = ep_insert(m, ep);
        if (r < 0)
                endpoint_free(ep);
        return r;
}

typedef struct OrphanCtx {
        Manager *m;
        char (*keys)[2][320];
        size_t n, cap;
} OrphanCtx;

static int collect_orphan(IpamClaim *c, void *userdata) {
        OrphanCtx *o = userdata;
        if (strncmp(c->key, "ctr/", 4) != 0)
                return 0;
        if (count_key_users(o->m, NULL, c->network, c->key) > 0)
                return 0;
        if (o->n == o->cap) {
                size_t nc = o->cap ? o->cap * 2 : 16;
                void *nk = realloc(o->keys, nc * sizeof *o->keys);
                if (!nk)
                        return -ENOMEM;
                o->keys = nk;
                o->cap = nc;
        }
        snprintf(o->keys[o->n][0], 320, "%s", c->network);
        snprintf(o->keys[o->n][1], 320, "%s", c->key);
        o->n++;
        return 0;
}

/* The SR-IOV allocator, when the config has pools; restores its allocations. */
static int sriov_start(Manager *m, KvErr *e) {
        if (m->n_sriov_pools == 0) {
                if (m->sriov_simulate)
                        log_warning("config: 'sriovSimulate' is set but there are no 'sriovPools': ignored");
                return 0;
        }
        const SriovNlOps *nl = NULL;
        int r;
        if (m->sriov_simulate) {
                r = sriov_nl_sink_new(&m->sriov_sink);
                if (r < 0)
                        return kverr_set_errno(e, KV_ERR_INTERNAL, r, "netd: cannot create the SR-IOV netlink sink");
                nl = &m->sriov_sink->ops;
                log_warning("SR-IOV is SIMULATED (config 'sriovSimulate'): VF settings (MAC, VLAN, spoofchk, trust) "
                            "are recorded, NOT sent to the kernel; sysfs root '%s'. For tests only, never on a real "
                            "node.",
                            m->sysfs_root);
        }
        r = sriov_new(m->sysfs_root, m->state_dir, m->sriov_pools, m->n_sriov_pools, nl, &m->sriov, e);
        if (r < 0)
                return r;
        KvErr we = {};
        r = sriov_load(m->sriov, &we);
        if (r < 0) {
                *e = we;
                return r;
        }
        if (r > 0)
                log_warning("%d SR-IOV allocation(s) whose VF vanished from sysfs (first: %s)", r, we.msg);
        for (size_t i = 0; i < m->n_sriov_pools; i++)
                log_info("SR-IOV pool '%s' on %zu PF(s), bindVfio %s, sysfs '%s'%s", m->sriov_pools[i].resource,
                         m->sriov_pools[i].n_pfs, m->sriov_pools[i].bind_vfio ? "on" : "off", m->sysfs_root,
                         m->sriov_simulate ? " (simulated)" : "");
        return 0;
}

/* VFs allocated to an attachment without a record: a crash between sriov_alloc and the record. */
static void sriov_release_orphans(Manager *m) {
        if (!m->sriov)
                return;
        _cleanup_json_ json_t *d = sriov_dump(m->sriov);
        size_t i;
        json_t *vf;
        json_array_foreach(json_object_get(d, "vfs"), i, vf) {
                const char *owner = json_string_value(json_object_get(vf, "owner"));
                if (!owner || ep_find(m, owner))
                        continue;
                int r = sriov_release(m->sriov, owner);
                if (r < 0)
                        log_warning("releasing VF %s of vanished attachment '%s' failed: %s",
                                    json_string_value(json_object_get(vf, "pci")), owner, strerror(-r));
                else
                        log_notice("released VF %s: its attachment '%s' has no record",
                                   json_string_value(json_object_get(vf, "pci")), owner);
        }
}

int manager_start(Manager *m, KvErr *e) {
        int r = ipam_load(m->ipam, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ipam_n_load_warnings(m->ipam); i++)
                log_warning("ipam state: skipped %s", ipam_load_warning(m->ipam, i));
        r = sriov_start(m, e);
        if (r < 0)
                return r;
        unsigned bad_files = 0;
        r = endpoint_load_all(m->ep_journal, load_one, m, &m->corrupt_files);
        if (r >= 0)
                r = endpoint_import_files(m->state_dir, m->ep_journal, load_one, m, &bad_files);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "netd: cannot load endpoints from '%s'", m->state_dir);
        m->corrupt_files += bad_files + journal_bad_records(m->ep_journal);
        if (m->corrupt_files)
                log_warning("%u endpoint record(s) could not be read (damaged lines: %s.corrupt, unparsable files: "
                            "%s/endpoints/*.corrupt)",
                            m->corrupt_files, journal_path(m->ep_journal), m->state_dir);

        r = link_enable_forwarding(e);
        if (r < 0)
                return r;

        /* VLAN trunks of the records (the guards are in the kernel already; attaching them again is harmless and
         * repairs a port that lost its guard). */
        EP_FOREACH(m, ep) {
                KvErr ve = {};
                if (ep->trunk[0] && ep->state == EP_READY && trunk_add(m, ep->trunk, &ve) < 0)
                        log_warning("VLAN trunk '%s': %s%s%s", ep->trunk, ve.msg, ve.details[0] ? ": " : "",
                                    ve.details);
        }

        r = reaper_new(&m->reaper);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "netd: cannot start the link reaper");

        /* Roll back attachments that were being created when the previous instance stopped. */
        unsigned rolled_back = 0;
        EP_FOREACH(m, ep) {
                if (ep->state == EP_READY)
                        continue;
                KvErr ignore = {};
                IGNORE_RESULT(teardown_kernel(m, ep, false, &ignore));
                ep_unlink(m, ep);
                if (!ep->chained) {
                        IpamClaim *c = ipam_find(m->ipam, ep->network, ep->key);
                        if (c && ep->claim_is_new && count_key_users(m, NULL, ep->network, ep->key) == 0 &&
                            ipam_release(m->ipam, ep->network, ep->key) > 0)
                                cluster_release(m, ep->network, ep->key);
                }
                IGNORE_RESULT(endpoint_remove(m->ep_journal, ep, m->durable));
                endpoint_free(ep);
                rolled_back++;
        }
        if (rolled_back)
                log_notice("rolled back %u attachment(s) left half-created by a previous run", rolled_back);

        /* kvnet links nobody owns come from a crash inside an ADD; links a previous run retired but did not
         * get to delete are in the reap group already. One batch deletes both. */
        r = link_retire_unknown(host_link_known, m, e);
        if (r < 0)
                return r;
        if (r > 0)
                log_notice("retiring %d host link(s) without an attachment", r);
        r = link_reap(-1, e);
        if (r < 0)
                return r;

        sriov_release_orphans(m);
        if (handoff_load(m->handoff) < 0)
                log_warning("cannot read the migration log; starting a new one");
        r = handoff_start(m->handoff, m->reaper);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "netd: cannot watch routeHook processes");

        r = adopt_claims(m);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "netd: cannot restore claims from endpoint records");

        /* Container claims without an endpoint can only come from a crash between claim and record. */
        OrphanCtx oc = { .m = m };
        r = ipam_foreach_claim(m->ipam, NULL, collect_orphan, &oc);
        for (size_t i = 0; r >= 0 && i < oc.n; i++)
                if (ipam_release(m->ipam, oc.keys[i][0], oc.keys[i][1]) > 0)
                        cluster_release(m, oc.keys[i][0], oc.keys[i][1]);
        if (oc.n)
                log_notice("released %zu container claim(s) without an attachment", oc.n);
        free(oc.keys);

        /* Kernel reconcile: bridges (no-op when present), then one atomic NAT rebuild. */
        size_t n_nat = 0;
        EP_FOREACH(m, ep) {
                if (ep_is_sriov(ep)) {
                        /* No links, NAT or DHCP: only the VF. Reported, not repaired (as lost links are). */
                        KvErr ve = {};
                        if (sriov_check_vf(m, ep, &ve) < 0)
                                log_warning("reconcile: %s", ve.msg);
                        continue;
                }
                if (!ep->chained) {
                        KvErr be = {};
                        if (network_ensure_bridge(m, ep, &be) < 0)
                                log_warning("reconcile: bridge for '%s': %s %s", ep->id, be.msg, be.details);
                        /* A missing host link is reported, not repaired: the sandbox may be gone too, and the
                         * runtime's DEL (or GC) cleans the record up. CHECK reports it as well. */
                        if (!link_exists(-1, ep->host_ifname))
                                log_warning("reconcile: attachment '%s' lost its host link '%s'", ep->id,
                                            ep->host_ifname);
                }
                if (ep->kind == EP_KIND_VM) {
                        _cleanup_close_ int nsfd = -1;
                        KvErr de = {};
                        if (netns_open(ep->netns, &nsfd) < 0 || dhcp_start(m, ep, nsfd, &de) < 0)
                                log_warning("reconcile: no DHCP for '%s': %s", ep->id,
                                            de.msg[0] ? de.msg : "sandbox is gone");
                }
                if (ep_needs_nat(ep))
                        n_nat++;
        }
        _cleanup_free_ NatEpBuf *bufs = n_nat ? calloc(n_nat, sizeof *bufs) : NULL;
        _cleanup_free_ NatEndpoint *nes = n_nat ? calloc(n_nat, sizeof *nes) : NULL;
        if (n_nat && (!bufs || !nes))
                return -ENOMEM;
        size_t k = 0;
        EP_FOREACH(m, ep) {
                if (!ep_needs_nat(ep))
                        continue;
                nat_endpoint_from(ep, &bufs[k]);
                nes[k] = bufs[k].ne;
                nes[k].pm = bufs[k].pm;
                k++;
        }
        {
                NatBackend *nb;
                r = nat_get(m, "nftables", &nb, e);
                if (r < 0)
                        return r;
                r = nat_sync(nb, nes, n_nat, e);
                if (r < 0)
                        return r;
        }
        log_info("state loaded: %zu attachment(s), NAT entries for %zu", m->n_endpoints, n_nat);
        return 0;
}
