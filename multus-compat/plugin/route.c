/* SPDX-License-Identifier: Apache-2.0 */
/* default-route, as Multus applies it after a delegate's ADD: the sandbox's default routes through an
 * interface are removed (per family) and the requested gateways set as its default routes. rtnetlink in
 * the sandbox's namespace (common/nl.h); the caller's namespace never changes. */
#include <arpa/inet.h>
#include <linux/rtnetlink.h>
#include <net/if.h>

#include "common/addr.h"
#include "common/netns.h"
#include "common/nl.h"
#include "multus-compat/plugin/plugin.h"

#define ROUTES_MAX 64

typedef struct Doomed {
        struct rtmsg hdr[ROUTES_MAX];
        uint8_t gw[ROUTES_MAX][16];
        bool has_gw[ROUTES_MAX];
        uint32_t table[ROUTES_MAX];
        size_t n;
        uint32_t oif;
} Doomed;

static int collect(const struct nlmsghdr *m, void *arg) {
        Doomed *d = arg;
        const struct rtmsg *rt = NLMSG_DATA(m);
        const struct nlattr *tb[RTA_MAX + 1] = {};
        if (m->nlmsg_type != RTM_NEWROUTE || rt->rtm_dst_len != 0 || rt->rtm_type != RTN_UNICAST)
                return 0;
        if (nl_parse(m, sizeof *rt, tb, RTA_MAX) < 0 || !tb[RTA_OIF] || *(const uint32_t *) (tb[RTA_OIF] + 1) != d->oif)
                return 0;
        if (d->n == ROUTES_MAX)
                return -E2BIG;
        d->hdr[d->n] = *rt;
        d->table[d->n] = tb[RTA_TABLE] ? *(const uint32_t *) (tb[RTA_TABLE] + 1) : rt->rtm_table;
        if (tb[RTA_GATEWAY]) {
                size_t len = tb[RTA_GATEWAY]->nla_len - sizeof(struct nlattr);
                memcpy(d->gw[d->n], tb[RTA_GATEWAY] + 1, len > 16 ? 16 : len);
                d->has_gw[d->n] = true;
        }
        d->n++;
        return 0;
}

static int del_defaults(NlSock *nl, uint32_t oif, int family) {
        Doomed d = { .oif = oif };
        struct rtmsg q = { .rtm_family = (uint8_t) family };
        int r = nl_call(nl, nl_msg_new(nl, RTM_GETROUTE, NLM_F_DUMP, &q, sizeof q), collect, &d);
        for (size_t i = 0; r >= 0 && i < d.n; i++) {
                struct nlmsghdr *m = nl_msg_new(nl, RTM_DELROUTE, 0, &d.hdr[i], sizeof d.hdr[i]);
                if ((r = nl_put_u32(m, RTA_OIF, oif)) < 0 || (r = nl_put_u32(m, RTA_TABLE, d.table[i])) < 0 ||
                    (d.has_gw[i] && (r = nl_put(m, RTA_GATEWAY, family == AF_INET ? 4 : 16, d.gw[i])) < 0))
                        break;
                r = nl_request(nl, m);
                if (r == -ESRCH)
                        r = 0;
        }
        return r;
}

static int add_default(NlSock *nl, uint32_t oif, const KvAddr *gw) {
        struct rtmsg rt = { .rtm_family = (uint8_t) gw->family, .rtm_table = RT_TABLE_MAIN, .rtm_protocol = RTPROT_BOOT,
                            .rtm_scope = RT_SCOPE_UNIVERSE, .rtm_type = RTN_UNICAST };
        struct nlmsghdr *m = nl_msg_new(nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &rt, sizeof rt);
        int r;
        if ((r = nl_put_u32(m, RTA_OIF, oif)) < 0 || (r = nl_put(m, RTA_GATEWAY, kv_addr_len(gw->family), gw->bytes)) < 0)
                return r;
        return nl_request(nl, m);
}

static int ifindex_in(int ns_fd, const char *ifname, uint32_t *ret) {
        NetnsGuard g;
        int r = netns_enter(ns_fd, &g);
        if (r < 0)
                return r;
        unsigned idx = if_nametoindex(ifname);
        r = idx ? 0 : negative_errno();
        (void) netns_leave(&g);
        *ret = idx;
        return r;
}

int mc_route_apply(const char *netns, const char *ifname, bool del4, bool del6, char *const *gateways, size_t n_gateways,
                   KvErr *e) {
        _cleanup_close_ int fd = -1;
        _cleanup_nl_sock_ NlSock *nl = NULL;
        uint32_t oif = 0;
        int r;
        if ((r = netns_open(netns, &fd)) < 0)
                return kverr_set_errno(e, KV_ERR_INVALID_ENV, r, "CNI_NETNS '%s'", netns);
        if ((r = ifindex_in(fd, ifname, &oif)) < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "default-route: interface '%s' in '%s'", ifname, netns);
        if ((r = nl_sock_open(NETLINK_ROUTE, fd, &nl)) < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "default-route: rtnetlink in '%s'", netns);
        if ((del4 && (r = del_defaults(nl, oif, AF_INET)) < 0) || (del6 && (r = del_defaults(nl, oif, AF_INET6)) < 0))
                return nl_error(e, nl, r, "default-route: removing the default routes of '%s'", ifname);
        for (size_t i = 0; i < n_gateways; i++) {
                KvAddr gw;
                if ((r = kv_addr_parse(gateways[i], &gw)) < 0 || (r = add_default(nl, oif, &gw)) < 0)
                        return nl_error(e, nl, r, "default-route: default via %s dev %s", gateways[i], ifname);
        }
        return 0;
}
