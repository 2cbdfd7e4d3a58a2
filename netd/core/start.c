/* SPDX-License-Identifier: Apache-2.0 */
/* netd core: start-up, loading the state and reconciling the kernel against it. */
#include <stdlib.h>

#include "common/array.h"
#include "common/log.h"
#include "common/netns.h"
#include "netd/binding/binding.h"
#include "netd/core/netd-priv.h"

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

/* Pairs of names found during a walk and acted on after it (acting would change what is walked). */
typedef struct NamePairs {
        Manager *m;
        char (*v)[2][320];
        size_t n, cap;
} NamePairs;

static int name_pairs_add(NamePairs *p, const char *a, const char *b) {
        int r = ARRAY_GROW(p->v, p->cap, p->n + 1);
        if (r < 0)
                return r;
        snprintf(p->v[p->n][0], sizeof p->v[0][0], "%s", a);
        snprintf(p->v[p->n][1], sizeof p->v[0][1], "%s", b);
        p->n++;
        return 0;
}

/* network, key of container claims without an attachment */
static int collect_orphan(IpamClaim *c, void *userdata) {
        NamePairs *o = userdata;
        if (strncmp(c->key, "ctr/", 4) != 0)
                return 0;
        if (count_key_users(o->m, NULL, c->network, c->key) > 0)
                return 0;
        return name_pairs_add(o, c->network, c->key);
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

/* VFs allocated to an attachment without a record (owner, pci): a crash between sriov_alloc and the record. */
static int collect_sriov_orphan(const SriovVfView *vf, void *userdata) {
        NamePairs *o = userdata;
        if (!vf->claim || ep_find(o->m, vf->claim->owner))
                return 0;
        return name_pairs_add(o, vf->claim->owner, vf->pci);
}

static void sriov_release_orphans(Manager *m) {
        if (!m->sriov)
                return;
        /* Collected first: a release changes the allocations the walk goes through. */
        NamePairs o = { .m = m };
        if (sriov_foreach_vf(m->sriov, collect_sriov_orphan, &o) < 0)
                o.n = 0;
        for (size_t i = 0; i < o.n; i++) {
                const char *owner = o.v[i][0], *pci = o.v[i][1];
                int r = sriov_release(m->sriov, owner);
                if (r < 0)
                        log_warning("releasing VF %s of vanished attachment '%s' failed: %s", pci, owner,
                                    strerror(-r));
                else
                        log_notice("released VF %s: its attachment '%s' has no record", pci, owner);
        }
        free(o.v);
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

        /* IPv4 forwarding now; IPv6 forwarding with the first IPv6 attachment (a restored one too) */
        if ((r = link_enable_forwarding_family(AF_INET, e)) < 0)
                return r;
        EP_FOREACH(m, ep) if ((r = manager_ipv6_forwarding(m, ep, e)) < 0) return r;

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
        NamePairs oc = { .m = m };
        r = ipam_foreach_claim(m->ipam, NULL, collect_orphan, &oc);
        for (size_t i = 0; r >= 0 && i < oc.n; i++)
                if (ipam_release(m->ipam, oc.v[i][0], oc.v[i][1]) > 0)
                        cluster_release(m, oc.v[i][0], oc.v[i][1]);
        if (oc.n)
                log_notice("released %zu container claim(s) without an attachment", oc.n);
        free(oc.v);

        /* Kernel reconcile: bridges (no-op when present), then one atomic NAT rebuild. */
        size_t n_nat = 0;
        EP_FOREACH(m, ep) {
                const BindingOps *ops = ep_binding(ep);
                if (ops->reconcile)
                        ops->reconcile(m, ep);
                if (ep->kind == EP_KIND_VM && ops->lease) {
                        _cleanup_close_ int nsfd = -1;
                        KvErr de = {};
                        if (endpoint_netns_open(ep, &nsfd) < 0 || dhcp_start(m, ep, nsfd, &de) < 0)
                                log_warning("reconcile: no DHCP for '%s': %s", ep->id,
                                            de.msg[0] ? de.msg : "sandbox is gone");
                }
                if (ops->node_nat && ep_needs_nat(ep))
                        n_nat++;
        }
        _cleanup_free_ NatEpBuf *bufs = n_nat ? calloc(n_nat, sizeof *bufs) : NULL;
        _cleanup_free_ NatEndpoint *nes = n_nat ? calloc(n_nat, sizeof *nes) : NULL;
        if (n_nat && (!bufs || !nes))
                return -ENOMEM;
        size_t k = 0;
        EP_FOREACH(m, ep) {
                if (!ep_binding(ep)->node_nat || !ep_needs_nat(ep))
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
        /* Anti-spoofing: one atomic rebuild for the ports of every attachment kept. */
        r = bridge_ports_filter_sync(m, e);
        if (r < 0)
                return r;
        log_info("state loaded: %zu attachment(s), NAT entries for %zu", m->n_endpoints, n_nat);
        if (m->metrics_listen[0]) {
                if ((r = netd_metrics_new(m, m->metrics_listen, &m->metrics, e)) < 0)
                        return r;
                log_info("metrics on http://%s/metrics", m->metrics_listen);
        }
        return 0;
}

