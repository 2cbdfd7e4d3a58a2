/* SPDX-License-Identifier: Apache-2.0 */
#include "common/log.h"
#include "netd/link/netlink.h"
#include "netd/migration/handoff-priv.h"

/* The early switchover, target side.
 * The source QEMU pauses for the switchover tens of milliseconds before the target resumes; packets that
 * reach the source in between would die in its tap. So a prepared target arms the migration redirect
 * (netd/migration/migredir.c): packets routed to this node for the VM's addresses go straight into the target
 * attachment, where they wait in the tap until the guest resumes. The claim store records that the target
 * is ready (targetReady); at the pause the source launcher says `migration-source switchover`, and the
 * source node starts its redirect route to this node then, not only once the migration completed. A target
 * that cannot arm (no nodeAddress, chained attachment, no BPF) is not ready, and the source keeps its
 * packets until the end, as before. Disarmed at activation, when the target goes away, and on exit. */

uint64_t handoff_early_disarm(Handoff *h, Endpoint *ep, bool *ret_armed) {
        uint64_t total = 0;
        bool armed = false;
        for (size_t i = 0; ep->early_ifindex && i < ep->n_addrs; i++) {
                uint64_t p = 0;
                if (migredir_del(&h->migredir, &ep->addrs[i].addr, ep->early_ifindex, &p) > 0) {
                        total += p;
                        armed = true;
                }
        }
        ep->early_ifindex = 0;
        if (ret_armed)
                *ret_armed = armed;
        return total;
}

void handoff_early_arm(Handoff *h, Endpoint *ep) {
        if (!h->cs || !h->node_address.family || h->redirect_grace_ms == 0 || ep->chained || !ep->host_ifname[0] ||
            !ep->bridge[0])
                return;
        KvErr e = {};
        _cleanup_nl_sock_ NlSock *sk = NULL;
        LnlLink host, br;
        int r = lnl_open_e(-1, &sk, &e);
        if (r >= 0 && (r = lnl_link_get(sk, ep->host_ifname, &host)) < 0)
                nl_error(&e, sk, r, "looking up '%s'", ep->host_ifname);
        if (r >= 0 && (r = lnl_link_get(sk, ep->bridge, &br)) < 0)
                nl_error(&e, sk, r, "looking up bridge '%s'", ep->bridge);
        if (r >= 0)
                ep->early_ifindex = host.ifindex;
        for (size_t i = 0; r >= 0 && i < ep->n_addrs; i++)
                r = migredir_add(&h->migredir, &h->node_address, &ep->addrs[i].addr, host.ifindex, ep->mac, br.mac, &e);
        if (r == -EEXIST) { /* a second pod of the same VM on this node: the first one takes the packets */
                log_info("migration: %s: %s", ep->id, e.msg);
                (void) handoff_early_disarm(h, ep, NULL);
                return;
        }
        if (r >= 0)
                r = claimstore_set_target_ready(h->cs, ep->network, ep->key, true, &e);
        if (r < 0) {
                (void) handoff_early_disarm(h, ep, NULL);
                log_warning("migration: %s: no early switchover (%s); the VM's packets come here once it runs here",
                            ep->id, e.msg);
                return;
        }
        log_info("migration: %s: packets the source sends here from the switchover on go into '%s' (redirect on '%s')",
                 ep->id, ep->host_ifname, migredir_uplink(h->migredir));
}
