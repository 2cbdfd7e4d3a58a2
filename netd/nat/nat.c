/* SPDX-License-Identifier: Apache-2.0 */
/* NAT backend registry and the backend-neutral checks. */
#include "netd/nat/nat.h"

#include <sys/socket.h>

#include "common/json-util.h"

static const char *const nat_backend_kinds[_NAT_BACKEND_KIND_MAX] = {
        [NAT_BACKEND_NFTABLES] = "nftables",
        [NAT_BACKEND_EBPF] = "ebpf",
};

static const NatBackendOps *const nat_backends[_NAT_BACKEND_KIND_MAX] = {
        [NAT_BACKEND_NFTABLES] = &nat_nft_ops,
        [NAT_BACKEND_EBPF] = NULL, /* nat-bpf.c will add &nat_bpf_ops */
};

const char *nat_backend_kind_to_string(NatBackendKind k) {
        return k >= 0 && k < _NAT_BACKEND_KIND_MAX ? nat_backend_kinds[k] : NULL;
}

NatBackendKind nat_backend_kind_from_string(const char *s) {
        for (size_t i = 0; s && i < ELEMENTSOF(nat_backend_kinds); i++)
                if (streq(nat_backend_kinds[i], s))
                        return (NatBackendKind) i;
        return _NAT_BACKEND_KIND_INVALID;
}

bool nat_backend_kind_available(NatBackendKind k) {
        return k >= 0 && k < _NAT_BACKEND_KIND_MAX && nat_backends[k];
}

const char *nat_proto_name(uint8_t proto) {
        switch (proto) {
        case IPPROTO_TCP:
                return "tcp";
        case IPPROTO_UDP:
                return "udp";
        default:
                return NULL;
        }
}

int nat_backend_new(const char *name, NatBackend **ret) {
        if (!name || !ret)
                return -EINVAL;
        NatBackendKind k = nat_backend_kind_from_string(name);
        if (!nat_backend_kind_available(k))
                return -EOPNOTSUPP;
        _cleanup_free_ NatBackend *b = calloc(1, sizeof *b);
        if (!b)
                return -ENOMEM;
        b->ops = nat_backends[k];
        int r = b->ops->init(b);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        return 0;
}

NatBackend *nat_backend_free(NatBackend *b) {
        if (!b)
                return NULL;
        if (b->ops && b->ops->done)
                b->ops->done(b);
        free(b);
        return NULL;
}

const char *nat_backend_name(NatBackend *b) {
        return b && b->ops ? nat_backend_kind_to_string(b->ops->kind) : NULL;
}

int nat_endpoint_validate(const NatEndpoint *ep, KvErr *e) {
        char buf[KV_ADDR_STRLEN];

        if (!ep)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "nat: endpoint missing");
        const char *id = ep->id ? ep->id : "";
        if (!ep->id || !ep->id[0])
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "nat: endpoint 'id' must not be empty");
        if (ep->n_addrs > NAT_MAX_ADDRS)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "nat: endpoint '%s': at most %d addresses, got %zu",
                                 id, NAT_MAX_ADDRS, ep->n_addrs);
        if (ep->n_subnets > NAT_MAX_SUBNETS)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "nat: endpoint '%s': at most %d subnets, got %zu",
                                 id, NAT_MAX_SUBNETS, ep->n_subnets);
        bool have4 = false, have6 = false;
        for (size_t i = 0; i < ep->n_addrs; i++) {
                int f = ep->addrs[i].family;
                if (f != AF_INET && f != AF_INET6)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "nat: endpoint '%s': 'addrs[%zu]' has invalid family %d", id, i, f);
                if (kv_addr_is_zero(&ep->addrs[i]))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "nat: endpoint '%s': 'addrs[%zu]' must not be %s", id, i,
                                         kv_addr_fmt(&ep->addrs[i], buf));
                have4 |= f == AF_INET;
                have6 |= f == AF_INET6;
        }
        for (size_t i = 0; i < ep->n_subnets; i++) {
                const KvPrefix *p = &ep->subnets[i];
                if (p->addr.family != AF_INET && p->addr.family != AF_INET6)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "nat: endpoint '%s': 'subnets[%zu]' has invalid family %d", id, i,
                                         p->addr.family);
                if (p->prefixlen > kv_addr_len(p->addr.family) * 8)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "nat: endpoint '%s': 'subnets[%zu]' prefix length must be 0..%zu, got %u", id,
                                         i, kv_addr_len(p->addr.family) * 8, p->prefixlen);
        }
        if (ep->n_pm > 0 && !ep->pm)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "nat: endpoint '%s': portMappings missing", id);
        for (size_t i = 0; i < ep->n_pm; i++) {
                const NatPortMapping *m = &ep->pm[i];
                if (m->host_port == 0)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "nat: endpoint '%s': portMappings[%zu]: 'hostPort' must be 1..65535, got 0",
                                         id, i);
                if (m->container_port == 0)
                        return kverr_set(
                                e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                "nat: endpoint '%s': portMappings[%zu]: 'containerPort' must be 1..65535, got 0", id, i);
                if (!nat_proto_name(m->proto))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "nat: endpoint '%s': portMappings[%zu]: 'protocol' must be tcp or udp, got %u",
                                         id, i, m->proto);
                int f = m->host_ip.family;
                if (f != 0 && f != AF_INET && f != AF_INET6)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "nat: endpoint '%s': portMappings[%zu]: 'hostIP' has invalid family %d", id, i,
                                         f);
                if ((f == AF_INET && !have4) || (f == AF_INET6 && !have6) || (f == 0 && !have4 && !have6))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "nat: endpoint '%s': portMappings[%zu]: no endpoint address of the hostIP's family",
                                         id, i);
        }
        return 0;
}

int nat_sync(NatBackend *b, const NatEndpoint *eps, size_t n, KvErr *e) {
        if (!b || (n > 0 && !eps))
                return kverr_set(e, KV_ERR_INTERNAL, -EINVAL, "nat: invalid arguments");
        for (size_t i = 0; i < n; i++) {
                int r = nat_endpoint_validate(&eps[i], e);
                if (r < 0)
                        return r;
                for (size_t j = 0; j < i; j++)
                        if (streq(eps[i].id, eps[j].id))
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "nat: endpoint id '%s' given twice",
                                                 eps[i].id);
        }
        return b->ops->sync(b, eps, n, e);
}

int nat_add(NatBackend *b, const NatEndpoint *ep, KvErr *e) {
        if (!b)
                return kverr_set(e, KV_ERR_INTERNAL, -EINVAL, "nat: no backend");
        int r = nat_endpoint_validate(ep, e);
        if (r < 0)
                return r;
        return b->ops->add(b, ep, e);
}

int nat_del(NatBackend *b, const NatEndpoint *ep, KvErr *e) {
        if (!b)
                return kverr_set(e, KV_ERR_INTERNAL, -EINVAL, "nat: no backend");
        int r = nat_endpoint_validate(ep, e);
        if (r < 0)
                return r;
        return b->ops->del(b, ep, e);
}

int nat_check(NatBackend *b, const NatEndpoint *ep, KvErr *e) {
        if (!b)
                return kverr_set(e, KV_ERR_INTERNAL, -EINVAL, "nat: no backend");
        int r = nat_endpoint_validate(ep, e);
        if (r < 0)
                return r;
        return b->ops->check(b, ep, e);
}

int nat_dump(NatBackend *b, json_t **ret) {
        if (!b || !ret)
                return -EINVAL;
        _cleanup_json_ json_t *o = json_object();
        if (!o || json_object_set_new(o, "backend", json_string(nat_backend_name(b))) < 0)
                return -ENOMEM;
        int r = b->ops->dump(b, o);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

/* ---- sandbox ---- */

static int sandbox_validate(const NatSandbox *s, KvErr *e) {
        if (!s || !s->ifname || !s->ifname[0])
                return kverr_set(e, KV_ERR_INTERNAL, -EINVAL, "nat: sandbox 'ifname' must not be empty");
        if (s->n_addrs == 0 || s->n_addrs > ELEMENTSOF(s->addrs))
                return kverr_set(e, KV_ERR_INTERNAL, -EINVAL, "nat: sandbox holds 1..%zu address pairs, got %zu",
                                 ELEMENTSOF(s->addrs), s->n_addrs);
        for (size_t i = 0; i < s->n_addrs; i++) {
                int f = s->addrs[i].vm.family;
                if ((f != AF_INET && f != AF_INET6) || s->addrs[i].guest.family != f)
                        return kverr_set(e, KV_ERR_INTERNAL, -EINVAL,
                                         "nat: sandbox 'addrs[%zu]': VM and guest address of one family needed", i);
        }
        if (s->n_ports > NAT_SANDBOX_MAX_PORTS || (s->n_ports > 0 && !s->ports))
                return kverr_set(e, KV_ERR_INTERNAL, -EINVAL, "nat: sandbox 'ports' holds at most %d entries, got %zu",
                                 NAT_SANDBOX_MAX_PORTS, s->n_ports);
        for (size_t i = 0; i < s->n_ports; i++)
                if (s->ports[i].port == 0 || !nat_proto_name(s->ports[i].proto))
                        return kverr_set(e, KV_ERR_INTERNAL, -EINVAL, "nat: sandbox 'ports[%zu]' invalid: %u/%u", i,
                                         s->ports[i].proto, s->ports[i].port);
        return 0;
}

/* The backend's ops, after checking s (unless NULL). */
static int sandbox_ops(NatBackendKind kind, const NatSandbox *s, const NatBackendOps **ret, KvErr *e) {
        if (!nat_backend_kind_available(kind))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EOPNOTSUPP,
                                 "nat: backend '%s' is not available in this build (use nftables)",
                                 nat_backend_kind_to_string(kind) ?: "?");
        int r = s ? sandbox_validate(s, e) : 0;
        if (r < 0)
                return r;
        *ret = nat_backends[kind];
        return 0;
}

int nat_sandbox_apply(NatBackendKind kind, int netns_fd, const NatSandbox *s, KvErr *e) {
        const NatBackendOps *ops = NULL;
        int r = sandbox_ops(kind, s, &ops, e);
        return r < 0 ? r : ops->sandbox_apply(netns_fd, s, e);
}

int nat_sandbox_remove(NatBackendKind kind, int netns_fd, KvErr *e) {
        const NatBackendOps *ops = NULL;
        int r = sandbox_ops(kind, NULL, &ops, e);
        return r < 0 ? r : ops->sandbox_remove(netns_fd, e);
}

int nat_sandbox_check(NatBackendKind kind, int netns_fd, const NatSandbox *s, KvErr *e) {
        const NatBackendOps *ops = NULL;
        int r = sandbox_ops(kind, s, &ops, e);
        return r < 0 ? r : ops->sandbox_check(netns_fd, s, e);
}
