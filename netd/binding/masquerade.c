/* SPDX-License-Identifier: Apache-2.0 */
/* The masquerade binding: links and addresses; the sandbox NAT goes through the NAT backend. */
#include "netd/binding/masquerade.h"

#include <fcntl.h>
#include <linux/if.h>

#include "common/netns.h"
#include "netd/link/netlink.h"

#define CFG "masquerade: "

static KvAddr addr_of(const char *s) {
        KvAddr a = {};
        IGNORE_RESULT(kv_addr_parse(s, &a));
        return a;
}

void masq_config_defaults(MasqConfig *c) {
        *c = (MasqConfig){};
        c->guest4 = (KvPrefix){ .addr = addr_of("10.0.2.2"), .prefixlen = 24 };
        c->guest_gw4 = addr_of("10.0.2.1");
        c->guest6 = (KvPrefix){ .addr = addr_of("fd10:0:2::2"), .prefixlen = 120 };
        c->guest_gw6 = addr_of("fd10:0:2::1");
        c->nat_backend = NAT_BACKEND_NFTABLES;
}

static int check_ifname(const char *field, const char *v, KvErr *e) {
        if (!v || !*v)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, CFG "'%s' is required", field);
        if (strlen(v) >= IFNAMSIZ || strchr(v, '/') || strchr(v, ' '))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, CFG "'%s' is not a valid interface name, got '%s'",
                                 field, v);
        return 0;
}

static bool prefixes_overlap(const KvPrefix *a, const KvPrefix *b) {
        if (a->addr.family != b->addr.family)
                return false;
        const KvPrefix *shorter = a->prefixlen <= b->prefixlen ? a : b, *other = shorter == a ? b : a;
        return kv_prefix_contains(shorter, &other->addr);
}

/* A guest prefix: right family, not network/zero, gateway inside and different. */
static int check_guest(const char *pfield, const KvPrefix *p, const char *gfield, const KvAddr *gw, int family,
                       KvErr *e) {
        char a[KV_ADDR_STRLEN];
        if (p->addr.family != family)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, CFG "'%s' must be an %s prefix", pfield,
                                 family == AF_INET ? "IPv4" : "IPv6");
        unsigned max = family == AF_INET ? 30 : 126;
        if (p->prefixlen < 8 || p->prefixlen > max)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, CFG "'%s' prefix length must be 8..%u, got %s", pfield,
                                 max, kv_prefix_fmt(p, a));
        KvPrefix net = kv_prefix_network(p);
        if (kv_addr_equal(&net.addr, &p->addr))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, CFG "'%s' is a network address, got %s", pfield,
                                 kv_prefix_fmt(p, a));
        if (gw->family != family || !kv_prefix_contains(p, gw) || kv_addr_equal(gw, &p->addr))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 CFG "'%s' must be an address in '%s' other than the guest's, got %s", gfield, pfield,
                                 gw->family ? kv_addr_fmt(gw, a) : "none");
        return 0;
}

int masq_config_validate(const MasqConfig *c, KvErr *e) {
        char a[KV_ADDR_STRLEN], b[KV_ADDR_STRLEN];
        int r;
        if (!c)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, CFG "no configuration");
        if ((r = check_ifname("tap", c->tap, e)) < 0 || (r = check_ifname("sbx_ifname", c->sbx_ifname, e)) < 0 ||
            (r = check_ifname("host_ifname", c->host_ifname, e)) < 0 || (r = check_ifname("bridge", c->bridge, e)) < 0)
                return r;
        if (streq(c->tap, c->sbx_ifname))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, CFG "'tap' and 'sbx_ifname' must differ, both '%s'",
                                 c->tap);
        if (c->mtu != 0 && (c->mtu < 576 || c->mtu > 65535))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, CFG "'mtu' must be 576..65535, got %u", c->mtu);
        if (c->n_addrs == 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, CFG "'vm_addrs' must hold at least one address");
        if (c->n_addrs > ELEMENTSOF(c->vm_addrs))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, CFG "'vm_addrs' holds at most %zu addresses, got %zu",
                                 ELEMENTSOF(c->vm_addrs), c->n_addrs);
        bool have[2] = {};
        for (size_t i = 0; i < c->n_addrs; i++) {
                const KvPrefix *p = &c->vm_addrs[i];
                int fam = p->addr.family;
                if (fam != AF_INET && fam != AF_INET6)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, CFG "'vm_addrs[%zu]' is not set", i);
                if (kv_addr_is_zero(&p->addr) || p->prefixlen == 0 || p->prefixlen > (fam == AF_INET ? 32 : 128))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, CFG "'vm_addrs[%zu]' is invalid, got %s", i,
                                         kv_prefix_fmt(p, a));
                bool v6 = fam == AF_INET6;
                if (have[v6])
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         CFG "'vm_addrs[%zu]': only one %s address is supported, got %s", i,
                                         v6 ? "IPv6" : "IPv4", kv_prefix_fmt(p, a));
                have[v6] = true;
                const KvAddr *gw = &c->gateways[i];
                if (gw->family != 0 &&
                    (gw->family != fam || !kv_prefix_contains(p, gw) || kv_addr_equal(gw, &p->addr)))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         CFG "'gateways[%zu]' must be an address in %s other than the VM's, got %s", i,
                                         kv_prefix_fmt(p, a), kv_addr_fmt(gw, b));
                const KvPrefix *guest = v6 ? &c->guest6 : &c->guest4;
                r = v6 ? check_guest("guest6", &c->guest6, "guest_gw6", &c->guest_gw6, AF_INET6, e)
                       : check_guest("guest4", &c->guest4, "guest_gw4", &c->guest_gw4, AF_INET, e);
                if (r < 0)
                        return r;
                if (prefixes_overlap(guest, p))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         CFG "'%s' %s overlaps the VM's network 'vm_addrs[%zu]' %s", v6 ? "guest6" : "guest4",
                                         kv_prefix_fmt(guest, a), i, kv_prefix_fmt(p, b));
        }
        if (c->n_ports > MASQ_MAX_PORTS)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, CFG "'ports' holds at most %d entries, got %zu",
                                 MASQ_MAX_PORTS, c->n_ports);
        if (c->n_ports > 0 && !c->ports)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, CFG "'ports' is NULL with %zu entries", c->n_ports);
        for (size_t i = 0; i < c->n_ports; i++) {
                const MasqPort *p = &c->ports[i];
                if (p->port == 0)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, CFG "'ports[%zu].port' must be 1..65535, got 0",
                                         i);
                if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         CFG "'ports[%zu].protocol' must be TCP or UDP, got %u", i, p->proto);
                for (size_t j = 0; j < i; j++)
                        if (c->ports[j].port == p->port && c->ports[j].proto == p->proto)
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                                 CFG "'ports[%zu]' duplicates 'ports[%zu]' (%s %u)", i, j,
                                                 p->proto == IPPROTO_TCP ? "tcp" : "udp", p->port);
        }
        return 0;
}

/* ---- links ---- */

/* net.ipv4.ip_forward / net.ipv6.conf.all.forwarding = 1 inside the sandbox. */
static int sandbox_forwarding(int netns_fd, KvErr *e) {
        NetnsGuard g;
        int r = netns_enter(netns_fd, &g);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INVALID_ENV, r, "entering sandbox netns");
        r = link_enable_forwarding(e);
        int q = netns_leave(&g);
        if (q < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, q, "returning from sandbox netns");
        return r;
}

static int read_sysctl_one(int netns_fd, const char *path, bool *ret) {
        NetnsGuard g;
        int r = netns_enter(netns_fd, &g);
        if (r < 0)
                return r;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                r = negative_errno();
        int q = netns_leave(&g);
        _cleanup_close_ int sfd = fd;
        if (q < 0)
                return q;
        if (r < 0)
                return r;
        char buf[8] = {};
        ssize_t n = read(sfd, buf, sizeof buf - 1);
        if (n < 0)
                return negative_errno();
        *ret = buf[0] == '1';
        return 0;
}

static KvPrefix tap_prefix(const KvAddr *gw, const KvPrefix *guest) {
        return (KvPrefix){ .addr = *gw, .prefixlen = guest->prefixlen };
}

/* Which guest families are in use. */
static void families(const MasqConfig *c, bool *v4, bool *v6) {
        *v4 = *v6 = false;
        for (size_t i = 0; i < c->n_addrs; i++) {
                if (c->vm_addrs[i].addr.family == AF_INET6)
                        *v6 = true;
                else
                        *v4 = true;
        }
}

int masq_vm_attach(int netns_fd, const MasqConfig *c, LinkInfo *ret, KvErr *e) {
        char a[KV_ADDR_STRLEN];
        int r = masq_config_validate(c, e);
        if (r < 0)
                return r;
        _cleanup_nl_sock_ NlSock *sk = NULL, *ssk = NULL;
        int br_ifindex;
        r = link_attach_begin(netns_fd, c->bridge, &sk, &ssk, &br_ifindex, e);
        if (r < 0)
                return r;

        r = link_tap_create(netns_fd, c->tap);
        if (r < 0)
                return nl_error(e, NULL, r, "creating tap '%s' in sandbox", c->tap);
        bool veth_made = false;
        LnlLink tap, sbx, host;
        r = lnl_link_get(ssk, c->tap, &tap);
        if (r < 0) {
                nl_error(e, ssk, r, "looking up tap '%s' in sandbox", c->tap);
                goto undo;
        }
        /* The host end joins the bridge once the sandbox end is up (link_join_bridge). */
        r = lnl_veth_create(sk, c->host_ifname, 0, c->mtu, c->sbx_ifname, netns_fd, c->pod_mac);
        if (r < 0) {
                nl_error(e, sk, r, "creating veth '%s' -> '%s' in sandbox", c->host_ifname, c->sbx_ifname);
                goto undo;
        }
        veth_made = true;
        r = lnl_link_get(ssk, c->sbx_ifname, &sbx);
        if (r < 0) {
                nl_error(e, ssk, r, "looking up '%s' in sandbox", c->sbx_ifname);
                goto undo;
        }

        /* The pod interface carries the VM's MAC on the node network. Without the VM's own IPv6 it sends
         * no IPv6 at all, and with it no link-local address, DAD or router solicitation: any frame from
         * it teaches every FDB of the segment where the VM's MAC is, which during a migration would
         * pull the VM's traffic to a passive target (docs/migration.md). */
        bool has_v6 = false;
        for (size_t i = 0; i < c->n_addrs; i++)
                has_v6 = has_v6 || c->vm_addrs[i].addr.family == AF_INET6;
        r = has_v6 ? -EAFNOSUPPORT : lnl_link_ipv6_disable(netns_fd, c->sbx_ifname);
        if (r < 0)
                r = lnl_link_addrgen_none(ssk, c->sbx_ifname);
        if (r < 0) {
                nl_error(e, ssk, r, "switching off IPv6 address generation on '%s' in sandbox", c->sbx_ifname);
                goto undo;
        }

        /* sandbox side of the veth: the VM's stable addresses */
        for (size_t i = 0; i < c->n_addrs; i++) {
                r = lnl_addr_add(ssk, sbx.ifindex, &c->vm_addrs[i]);
                if (r < 0) {
                        nl_error(e, ssk, r, "adding address %s to '%s' in sandbox", kv_prefix_fmt(&c->vm_addrs[i], a),
                                 c->sbx_ifname);
                        goto undo;
                }
        }
        r = lnl_link_set(ssk, sbx.ifindex, 1, 0);
        if (r < 0) {
                nl_error(e, ssk, r, "setting '%s' up in sandbox", c->sbx_ifname);
                goto undo;
        }

        /* tap: the guest's gateway addresses */
        bool v4, v6;
        families(c, &v4, &v6);
        KvPrefix tp[2];
        size_t ntp = 0;
        if (v4)
                tp[ntp++] = tap_prefix(&c->guest_gw4, &c->guest4);
        if (v6)
                tp[ntp++] = tap_prefix(&c->guest_gw6, &c->guest6);
        for (size_t i = 0; i < ntp; i++) {
                r = lnl_addr_add(ssk, tap.ifindex, &tp[i]);
                if (r < 0) {
                        nl_error(e, ssk, r, "adding address %s to tap '%s' in sandbox", kv_prefix_fmt(&tp[i], a),
                                 c->tap);
                        goto undo;
                }
        }
        r = lnl_link_set(ssk, tap.ifindex, 1, c->mtu);
        if (r < 0) {
                nl_error(e, ssk, r, "setting tap '%s' up (mtu %u) in sandbox", c->tap, c->mtu);
                goto undo;
        }

        /* default routes via the node gateways */
        for (size_t i = 0; i < c->n_addrs; i++) {
                if (c->gateways[i].family == 0)
                        continue;
                KvPrefix def = { .addr = { .family = c->gateways[i].family } };
                r = lnl_route_add(ssk, sbx.ifindex, &def, &c->gateways[i]);
                if (r < 0) {
                        nl_error(e, ssk, r, "adding default route via %s on '%s' in sandbox",
                                 kv_addr_fmt(&c->gateways[i], a), c->sbx_ifname);
                        goto undo;
                }
        }

        r = link_join_bridge(sk, c->host_ifname, br_ifindex, &host, e);
        if (r < 0)
                goto undo;

        r = sandbox_forwarding(netns_fd, e);
        if (r < 0)
                goto undo;
        r = masq_nat_apply(netns_fd, c, e);
        if (r < 0)
                goto undo;

        link_info_set(ret, &host, tap.ifindex, c->guest_mac);
        return 0;

undo:
        /* routes and addresses go with the links; the table is the last step, so nothing to remove */
        if (veth_made)
                (void) lnl_link_del(sk, c->host_ifname);
        (void) lnl_link_del(ssk, c->tap);
        return r;
}

int masq_vm_check(int netns_fd, const MasqConfig *c, KvErr *e) {
        char a[KV_ADDR_STRLEN];
        int r = masq_config_validate(c, e);
        if (r < 0)
                return r;
        _cleanup_nl_sock_ NlSock *sk = NULL, *ssk = NULL;
        r = lnl_open_pair(netns_fd, &sk, &ssk, e);
        if (r < 0)
                return r;
        r = link_check_host_port(sk, c->host_ifname, c->bridge, e);
        if (r < 0)
                return r;
        LnlLink tap, sbx;
        r = lnl_link_get(ssk, c->tap, &tap);
        if (r < 0)
                return nl_error(e, ssk, r, "tap '%s' in sandbox", c->tap);
        if (!streq(tap.kind, "tun"))
                return kverr_set(e, KV_ERR_INTERNAL, -EINVAL, "'%s' in sandbox is a '%s', not a tap", c->tap, tap.kind);
        if (!(tap.flags & IFF_UP))
                return kverr_set(e, KV_ERR_INTERNAL, -ENETDOWN, "tap '%s' in sandbox is down", c->tap);
        r = lnl_link_get(ssk, c->sbx_ifname, &sbx);
        if (r < 0)
                return nl_error(e, ssk, r, "interface '%s' in sandbox", c->sbx_ifname);
        if (!(sbx.flags & IFF_UP))
                return kverr_set(e, KV_ERR_INTERNAL, -ENETDOWN, "interface '%s' in sandbox is down", c->sbx_ifname);
        for (size_t i = 0; i < c->n_addrs; i++)
                if (!lnl_addr_present(ssk, sbx.ifindex, &c->vm_addrs[i]))
                        return kverr_set(e, KV_ERR_INTERNAL, -ENOENT, "address %s missing on '%s' in sandbox",
                                         kv_prefix_fmt(&c->vm_addrs[i], a), c->sbx_ifname);
        bool v4, v6;
        families(c, &v4, &v6);
        KvPrefix tp4 = tap_prefix(&c->guest_gw4, &c->guest4), tp6 = tap_prefix(&c->guest_gw6, &c->guest6);
        if ((v4 && !lnl_addr_present(ssk, tap.ifindex, &tp4)) || (v6 && !lnl_addr_present(ssk, tap.ifindex, &tp6)))
                return kverr_set(e, KV_ERR_INTERNAL, -ENOENT, "address %s missing on tap '%s' in sandbox",
                                 kv_prefix_fmt(v4 && !lnl_addr_present(ssk, tap.ifindex, &tp4) ? &tp4 : &tp6, a), c->tap);

        static const char *const fw[] = { "/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding" };
        for (size_t i = 0; i < ELEMENTSOF(fw); i++) {
                if ((i == 0 && !v4) || (i == 1 && !v6))
                        continue;
                bool on = false;
                r = read_sysctl_one(netns_fd, fw[i], &on);
                if (r < 0)
                        return kverr_set_errno(e, KV_ERR_INTERNAL, r, "reading %s in sandbox", fw[i]);
                if (!on)
                        return kverr_set(e, KV_ERR_INTERNAL, -ENOENT, "%s is off in sandbox", fw[i]);
        }
        return masq_nat_check(netns_fd, c, e);
}

int masq_vm_detach(int netns_fd, const MasqConfig *c, KvErr *e) {
        if (!c || !c->host_ifname || !c->tap || !c->sbx_ifname)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, CFG "'tap', 'sbx_ifname' and 'host_ifname' are required");
        int r = 0;
        if (netns_fd >= 0) {
                KvErr e2 = {};
                r = masq_nat_remove(netns_fd, c->nat_backend, &e2);
                if (r < 0 && e2.code != KV_ERR_INVALID_ENV && e)
                        *e = e2;
                if (e2.code == KV_ERR_INVALID_ENV)
                        r = 0; /* the sandbox is gone, and its table with it */
        }
        int q = link_detach(netns_fd, c->sbx_ifname, c->tap, c->host_ifname, r < 0 ? NULL : e);
        return r < 0 ? r : q;
}

/* ---- sandbox NAT ---- */

/* Checks c, then fills *s from it. */
static int sandbox_from(const MasqConfig *c, NatSandbox *s, KvErr *e) {
        int r = masq_config_validate(c, e);
        if (r < 0)
                return r;
        *s = (NatSandbox){ .ifname = c->sbx_ifname, .n_addrs = c->n_addrs, .ports = c->ports, .n_ports = c->n_ports };
        for (size_t i = 0; i < c->n_addrs; i++) {
                const KvAddr *vm = &c->vm_addrs[i].addr;
                s->addrs[i].vm = *vm;
                s->addrs[i].guest = vm->family == AF_INET6 ? c->guest6.addr : c->guest4.addr;
        }
        return 0;
}

int masq_nat_render(const MasqConfig *c, char **ret_text, KvErr *e) {
        NatSandbox s;
        int r = sandbox_from(c, &s, e);
        return r < 0 ? r : nat_nft_sandbox_render(&s, ret_text, e);
}

int masq_nat_apply(int netns_fd, const MasqConfig *c, KvErr *e) {
        NatSandbox s;
        int r = sandbox_from(c, &s, e);
        return r < 0 ? r : nat_sandbox_apply(c->nat_backend, netns_fd, &s, e);
}

int masq_nat_remove(int netns_fd, NatBackendKind kind, KvErr *e) {
        return nat_sandbox_remove(kind, netns_fd, e);
}

int masq_nat_check(int netns_fd, const MasqConfig *c, KvErr *e) {
        NatSandbox s;
        int r = sandbox_from(c, &s, e);
        return r < 0 ? r : nat_sandbox_check(c->nat_backend, netns_fd, &s, e);
}
