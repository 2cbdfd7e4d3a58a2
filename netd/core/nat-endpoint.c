/* SPDX-License-Identifier: Apache-2.0 */
/* netd core: an attachment's NAT entries, and the NAT backend they go to. */
#include "netd/core/netd-priv.h"

int nat_get(Manager *m, const char *backend, NatBackend **ret, KvErr *e) {
        if (nat_backend_kind_from_string(backend) != NAT_BACKEND_NFTABLES)
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

bool ep_needs_nat(const Endpoint *ep) {
        return ep->ipmasq || ep->n_pm > 0;
}

void nat_endpoint_from(const Endpoint *ep, NatEpBuf *b) {
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
