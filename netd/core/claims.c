/* SPDX-License-Identifier: Apache-2.0 */
/* netd core: releasing an attachment's IP claim, locally and in the cluster claim store. */
#include "common/log.h"
#include "netd/core/netd-priv.h"

/* Cluster mode: the claim store follows every local release. */
void cluster_release(Manager *m, const char *network, const char *key) {
        if (m->cs && claimstore_release(m->cs, network, key) < 0)
                log_warning("cluster claims: releasing '%s' in '%s' failed", key, network);
}

bool cluster_taken(const char *network, const KvAddr *a, const char *key, void *userdata) {
        Manager *m = userdata;
        return claimstore_addr_taken(m->cs, network, a, key);
}

static void release_claim_nosync(Manager *m, const Endpoint *ep);

/* Not fsynced: a release lost in a crash is redone at start (container claims without an attachment
 * are released, VM claims without one go idle). */
void release_claim_if_unused(Manager *m, const Endpoint *ep) {
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

