/* SPDX-License-Identifier: Apache-2.0 */
#include "netd/link/netlink.h"

#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_bridge.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <linux/veth.h>
#include <fcntl.h>

#include <libmnl/libmnl.h>

#include "common/array.h"
#include "common/netns.h"

#ifndef TC_H_CLSACT
#define TC_H_CLSACT TC_H_INGRESS
#endif
#ifndef TC_H_MIN_INGRESS
#define TC_H_MIN_INGRESS 0xFFF2U
#endif

#define LNL_TC_PRIO 1

int lnl_open(int netns_fd, NlSock **ret) {
        return nl_sock_open(NETLINK_ROUTE, netns_fd, ret);
}

int lnl_open_e(int netns_fd, NlSock **ret, KvErr *e) {
        int r = lnl_open(netns_fd, ret);
        if (r < 0) {
                if (netns_fd >= 0 && (r == -EBADF || r == -EINVAL))
                        return kverr_set(e, KV_ERR_INVALID_ENV, r, "entering sandbox netns (fd %d): %s", netns_fd,
                                         strerror(-r));
                return nl_error(e, NULL, r, "opening rtnetlink socket%s", netns_fd >= 0 ? " in sandbox" : "");
        }
        return 0;
}

int lnl_open_link(int netns_fd, const char *ifname, NlSock **ret_sk, LnlLink *ret_link, KvErr *e) {
        NlSock *sk = NULL;
        int r = lnl_open_e(netns_fd, &sk, e);
        if (r < 0)
                return r;
        *ret_sk = sk;
        return lnl_link_get(sk, ifname, ret_link);
}

int lnl_open_pair(int netns_fd, NlSock **ret_sk, NlSock **ret_ssk, KvErr *e) {
        _cleanup_nl_sock_ NlSock *sk = NULL, *ssk = NULL;
        int r = lnl_open_e(-1, &sk, e);
        if (r >= 0)
                r = lnl_open_e(netns_fd, &ssk, e);
        if (r < 0)
                return r;
        *ret_sk = TAKE_PTR(sk);
        *ret_ssk = TAKE_PTR(ssk);
        return 0;
}

static struct nlmsghdr *link_msg(NlSock *sk, uint16_t type, uint16_t flags, int ifindex, unsigned ifflags,
                                 unsigned change) {
        struct ifinfomsg ifi = {
                .ifi_family = AF_UNSPEC, .ifi_index = ifindex, .ifi_flags = ifflags, .ifi_change = change
        };
        return nl_msg_new(sk, type, flags, &ifi, sizeof ifi);
}

/* ---- links ---- */

static void link_parse(const struct nlmsghdr *h, const struct nlattr *const *tb, LnlLink *ret) {
        const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(h);
        LnlLink l = { .ifindex = ifi->ifi_index, .flags = ifi->ifi_flags };
        if (tb[IFLA_MASTER])
                l.master = (int) mnl_attr_get_u32(tb[IFLA_MASTER]);
        if (tb[IFLA_MTU])
                l.mtu = mnl_attr_get_u32(tb[IFLA_MTU]);
        if (tb[IFLA_ADDRESS] && mnl_attr_get_payload_len(tb[IFLA_ADDRESS]) == 6)
                memcpy(l.mac, mnl_attr_get_payload(tb[IFLA_ADDRESS]), 6);
        if (tb[IFLA_LINKINFO]) {
                const struct nlattr *li[IFLA_INFO_MAX + 1];
                if (nl_parse_nested(tb[IFLA_LINKINFO], li, IFLA_INFO_MAX) >= 0 && li[IFLA_INFO_KIND])
                        nl_attr_strcpy(li[IFLA_INFO_KIND], l.kind, sizeof l.kind);
        }
        *ret = l;
}

typedef struct LinkGetCtx {
        LnlLink *link;
        bool found;
} LinkGetCtx;

static int link_get_cb(const struct nlmsghdr *h, void *arg) {
        LinkGetCtx *c = arg;
        const struct nlattr *tb[IFLA_MAX + 1];
        if (h->nlmsg_type != RTM_NEWLINK || nl_parse(h, sizeof(struct ifinfomsg), tb, IFLA_MAX) < 0)
                return 0;
        link_parse(h, tb, c->link);
        c->found = true;
        return 0;
}

typedef struct LinkListCtx {
        int (*cb)(const char *name, const LnlLink *l, void *arg);
        void *arg;
} LinkListCtx;

static int link_list_cb(const struct nlmsghdr *h, void *arg) {
        LinkListCtx *c = arg;
        const struct nlattr *tb[IFLA_MAX + 1];
        if (h->nlmsg_type != RTM_NEWLINK || nl_parse(h, sizeof(struct ifinfomsg), tb, IFLA_MAX) < 0 ||
            !tb[IFLA_IFNAME])
                return 0;
        LnlLink l;
        link_parse(h, tb, &l);
        char name[IFNAMSIZ];
        nl_attr_strcpy(tb[IFLA_IFNAME], name, sizeof name);
        return c->cb(name, &l, c->arg); /* once negative, nl_call() calls no more */
}

int lnl_link_list(NlSock *sk, int (*cb)(const char *name, const LnlLink *l, void *arg), void *arg) {
        struct nlmsghdr *m = link_msg(sk, RTM_GETLINK, NLM_F_DUMP, 0, 0, 0);
        int r = nl_put_u32(m, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
        if (r < 0)
                return r;
        LinkListCtx c = { .cb = cb, .arg = arg };
        return nl_call(sk, m, link_list_cb, &c);
}

int lnl_link_get(NlSock *sk, const char *name, LnlLink *ret) {
        if (!name || !*name || strlen(name) >= IFNAMSIZ)
                return -EINVAL;
        struct nlmsghdr *m = link_msg(sk, RTM_GETLINK, 0, 0, 0, 0);
        int r;
        if ((r = nl_put_str(m, IFLA_IFNAME, name)) < 0 ||
            (r = nl_put_u32(m, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS)) < 0)
                return r;
        LnlLink l;
        LinkGetCtx c = { .link = &l };
        /* One reply message (or an error), then the ack. */
        r = nl_call(sk, m, link_get_cb, &c);
        if (r < 0)
                return r;
        if (!c.found)
                return -ENODEV;
        *ret = l;
        return 0;
}

typedef struct StatsCtx {
        struct rtnl_link_stats64 *st;
        int r; /* -ENODEV: no reply yet; -ENODATA: a reply without IFLA_STATS64 */
} StatsCtx;

static int link_stats_cb(const struct nlmsghdr *h, void *arg) {
        StatsCtx *c = arg;
        const struct nlattr *tb[IFLA_MAX + 1];
        if (h->nlmsg_type != RTM_NEWLINK || nl_parse(h, sizeof(struct ifinfomsg), tb, IFLA_MAX) < 0)
                return 0;
        const struct nlattr *a = tb[IFLA_STATS64];
        if (!a || mnl_attr_get_payload_len(a) < sizeof *c->st) {
                c->r = -ENODATA;
                return 0;
        }
        memcpy(c->st, mnl_attr_get_payload(a), sizeof *c->st);
        c->r = 0;
        return 0;
}

int lnl_link_stats(NlSock *sk, const char *name, struct rtnl_link_stats64 *ret) {
        if (!name || !*name || strlen(name) >= IFNAMSIZ)
                return -EINVAL;
        struct nlmsghdr *m = link_msg(sk, RTM_GETLINK, 0, 0, 0, 0);
        int r = nl_put_str(m, IFLA_IFNAME, name);
        if (r < 0)
                return r;
        StatsCtx c = { .st = ret, .r = -ENODEV };
        r = nl_call(sk, m, link_stats_cb, &c);
        return r < 0 ? r : c.r;
}

int lnl_link_set(NlSock *sk, int ifindex, int up, uint32_t mtu) {
        struct nlmsghdr *m = link_msg(sk, RTM_NEWLINK, 0, ifindex, up > 0 ? IFF_UP : 0, up >= 0 ? IFF_UP : 0);
        int r;
        if (mtu > 0 && (r = nl_put_u32(m, IFLA_MTU, mtu)) < 0)
                return r;
        return nl_request(sk, m);
}

/* A request about links of which there may be none (any more): that is 0. */
static int link_request_gone_ok(NlSock *sk, struct nlmsghdr *m) {
        int r = nl_request(sk, m);
        return r == -ENODEV || r == -ENOENT ? 0 : r;
}

int lnl_link_del(NlSock *sk, const char *name) {
        struct nlmsghdr *m = link_msg(sk, RTM_DELLINK, 0, 0, 0, 0);
        int r = nl_put_str(m, IFLA_IFNAME, name);
        return r < 0 ? r : link_request_gone_ok(sk, m);
}

int lnl_link_retire(NlSock *sk, const char *name, uint32_t group) {
        LnlLink l;
        int r = lnl_link_get(sk, name, &l);
        if (r == -ENODEV || r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        /* Down (the bridge stops forwarding to it at once) and into the reap group, in one message. */
        struct nlmsghdr *m = link_msg(sk, RTM_NEWLINK, 0, l.ifindex, 0, IFF_UP);
        if ((r = nl_put_u32(m, IFLA_GROUP, group)) < 0)
                return r;
        r = nl_request(sk, m);
        if (r == -ENODEV || r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        /* Then out of the way: the next ADD may want the name (a runtime that re-creates "eth0" in the same
         * sandbox, a retried attachment) long before the reaper deletes the link, and would otherwise
         * have to wait for that deletion (an RCU grace period, ~30 ms). A link can only be renamed once it
         * is down. Best effort: the reaper deletes it under either name. */
        if (strncmp(name, LNL_RETIRED_PREFIX, strlen(LNL_RETIRED_PREFIX)) == 0)
                return 0;
        char retired[IFNAMSIZ];
        snprintf(retired, sizeof retired, LNL_RETIRED_PREFIX "%x", (unsigned) l.ifindex);
        m = link_msg(sk, RTM_NEWLINK, 0, l.ifindex, 0, 0);
        if (nl_put_str(m, IFLA_IFNAME, retired) >= 0)
                IGNORE_RESULT(nl_request(sk, m));
        return 0;
}

int lnl_link_del_group(NlSock *sk, uint32_t group) {
        struct nlmsghdr *m = link_msg(sk, RTM_DELLINK, 0, 0, 0, 0);
        int r = nl_put_u32(m, IFLA_GROUP, group);
        return r < 0 ? r : link_request_gone_ok(sk, m);
}

int lnl_veth_create(NlSock *sk, const char *name, int master, uint32_t mtu, const char *peer, int peer_netns_fd,
                    const uint8_t *peer_mac) {
        struct nlmsghdr *m = link_msg(sk, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0, IFF_UP, IFF_UP);
        if (nl_put_str(m, IFLA_IFNAME, name) < 0 || (mtu > 0 && nl_put_u32(m, IFLA_MTU, mtu) < 0) ||
            (master > 0 && nl_put_u32(m, IFLA_MASTER, (uint32_t) master) < 0))
                return -EMSGSIZE;
        struct nlattr *li = nl_nest_start(m, IFLA_LINKINFO);
        if (!li || nl_put_str(m, IFLA_INFO_KIND, "veth") < 0)
                return -EMSGSIZE;
        struct nlattr *data = nl_nest_start(m, IFLA_INFO_DATA);
        struct nlattr *pe = data ? nl_nest_start(m, VETH_INFO_PEER) : NULL;
        if (!pe)
                return -EMSGSIZE;
        /* The peer cannot be created up: veth_open() fails with ENOTCONN before the pair is joined. */
        struct ifinfomsg pifi = { .ifi_family = AF_UNSPEC };
        if (nl_put_raw(m, &pifi, sizeof pifi) < 0 || nl_put_str(m, IFLA_IFNAME, peer) < 0 ||
            (mtu > 0 && nl_put_u32(m, IFLA_MTU, mtu) < 0) ||
            (peer_netns_fd >= 0 && nl_put_u32(m, IFLA_NET_NS_FD, (uint32_t) peer_netns_fd) < 0) ||
            (peer_mac && nl_put(m, IFLA_ADDRESS, 6, peer_mac) < 0))
                return -EMSGSIZE;
        nl_nest_end(m, pe);
        nl_nest_end(m, data);
        nl_nest_end(m, li);
        int r = nl_request(sk, m);
        if (r < 0)
                return r;
        /* The host end is a bridge port, pure L2: no IPv6 on it at all. An IPv6 link, even without
         * addresses (addr_gen_mode none), has an ff00::/8 route and MLD state; with hundreds of ports each
         * link event then walks hundreds of routes (fib6_clean_all) and each IPv6 packet hundreds of
         * siblings (__find_rr_leaf). Set before the peer brings carrier up. Without the sysctl (no
         * /proc/sys) fall back to no address generation, which at least keeps the port silent. */
        r = lnl_link_ipv6_disable(-1, name);
        if (r < 0)
                r = lnl_link_addrgen_none(sk, name);
        if (r < 0) {
                IGNORE_RESULT(lnl_link_del(sk, name));
                return r;
        }
        return 0;
}

int lnl_link_set_master(NlSock *sk, int ifindex, int master) {
        struct nlmsghdr *m = link_msg(sk, RTM_NEWLINK, 0, ifindex, 0, 0);
        int r = nl_put_u32(m, IFLA_MASTER, (uint32_t) master);
        if (r < 0)
                return r;
        return nl_request(sk, m);
}

static int write_all(int fd, const char *s) {
        size_t n = strlen(s);
        ssize_t w = write(fd, s, n);
        if (w < 0)
                return negative_errno();
        return (size_t) w == n ? 0 : -EIO;
}

int lnl_link_ipv6_disable(int netns_fd, const char *name) {
        char path[128];
        if (!name || !*name || strlen(name) >= IFNAMSIZ || strchr(name, '/') || streq(name, ".") || streq(name, ".."))
                return -EINVAL;
        snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
        /* /proc/sys/net is the netns of the task that opens it: open inside, write from anywhere. */
        NetnsGuard g;
        int r = 0, fd;
        if (netns_fd >= 0) {
                r = netns_enter(netns_fd, &g);
                if (r < 0)
                        return r;
        }
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                r = negative_errno();
        if (netns_fd >= 0) {
                int q = netns_leave(&g);
                if (q < 0) {
                        if (fd >= 0)
                                close(fd);
                        return q;
                }
        }
        if (fd < 0) {
                /* No /proc/sys/net/ipv6 at all: the kernel has no IPv6 (ipv6.disable=1), nothing to do. */
                if (r == -ENOENT && access("/proc/sys/net/ipv6", F_OK) < 0 && access("/proc/sys/net", F_OK) == 0)
                        return 0;
                return r;
        }
        _cleanup_close_ int cfd = fd;
        return write_all(cfd, "1\n");
}

int lnl_link_addrgen_none(NlSock *sk, const char *name) {
        struct nlmsghdr *m = link_msg(sk, RTM_NEWLINK, 0, 0, 0, 0);
        if (nl_put_str(m, IFLA_IFNAME, name) < 0)
                return -EMSGSIZE;
        struct nlattr *af = nl_nest_start(m, IFLA_AF_SPEC);
        struct nlattr *in6 = af ? nl_nest_start(m, AF_INET6) : NULL;
        if (!in6 || nl_put_u8(m, IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE) < 0)
                return -EMSGSIZE;
        nl_nest_end(m, in6);
        nl_nest_end(m, af);
        return nl_request(sk, m);
}

int lnl_neigh_stale(NlSock *sk, int ifindex, const KvAddr *a, const uint8_t mac[6]) {
        struct ndmsg nd = { .ndm_family = (uint8_t) a->family, .ndm_ifindex = ifindex, .ndm_state = NUD_STALE };
        struct nlmsghdr *m = nl_msg_new(sk, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, &nd, sizeof nd);
        if (nl_put(m, NDA_DST, kv_addr_len(a->family), a->bytes) < 0 || nl_put(m, NDA_LLADDR, 6, mac) < 0)
                return -EMSGSIZE;
        return nl_request(sk, m);
}

/* ---- bridge ---- */

void lnl_bridge_mac(const char *name, uint8_t mac[6]) {
        uint64_t h = kv_hash64(name, strlen(name));
        const uint8_t m[6] = { 0x02, 0x6b, (uint8_t) (h >> 24), (uint8_t) (h >> 16), (uint8_t) (h >> 8), (uint8_t) h };
        memcpy(mac, m, 6);
}

int lnl_bridge_create(NlSock *sk, const char *name, uint32_t mtu) {
        struct nlmsghdr *m = link_msg(sk, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, 0, IFF_UP, IFF_UP);
        /* A fixed MAC: otherwise the bridge takes the lowest port MAC and the gateway's MAC changes under
         * the attachments' ARP caches whenever ports come and go. Derived from the name, so a re-created
         * bridge keeps it. */
        uint8_t mac[6];
        lnl_bridge_mac(name, mac);
        if (nl_put_str(m, IFLA_IFNAME, name) < 0 || (mtu > 0 && nl_put_u32(m, IFLA_MTU, mtu) < 0) ||
            nl_put(m, IFLA_ADDRESS, 6, mac) < 0)
                return -EMSGSIZE;
        struct nlattr *li = nl_nest_start(m, IFLA_LINKINFO);
        if (!li || nl_put_str(m, IFLA_INFO_KIND, "bridge") < 0)
                return -EMSGSIZE;
        /* No multicast snooping: with it, every port event (a port added, its carrier going up or down)
         * re-arms the multicast timers of every port of the bridge (br_port_state_selection ->
         * br_multicast_enable_port), so an ADD slows down with each attachment already there. Multicast
         * frames are flooded to every port instead of only to the ports that reported a group, as
         * broadcast (ARP) always is. */
        struct nlattr *data = nl_nest_start(m, IFLA_INFO_DATA);
        if (!data || nl_put_u8(m, IFLA_BR_MCAST_SNOOPING, 0) < 0)
                return -EMSGSIZE;
        nl_nest_end(m, data);
        nl_nest_end(m, li);
        return nl_request(sk, m);
}

/* ---- addresses ---- */

static int addr_msg(NlSock *sk, uint16_t type, uint16_t flags, int ifindex, const KvPrefix *p) {
        int fam = p->addr.family;
        if (fam != AF_INET && fam != AF_INET6)
                return -EAFNOSUPPORT;
        struct ifaddrmsg ifa = { .ifa_family = fam,
                                 .ifa_prefixlen = p->prefixlen,
                                 .ifa_flags = fam == AF_INET6 ? IFA_F_NODAD : 0,
                                 .ifa_index = (uint32_t) ifindex };
        struct nlmsghdr *m = nl_msg_new(sk, type, flags, &ifa, sizeof ifa);
        size_t len = kv_addr_len(fam);
        if (nl_put(m, IFA_LOCAL, len, p->addr.bytes) < 0 || nl_put(m, IFA_ADDRESS, len, p->addr.bytes) < 0)
                return -EMSGSIZE;
        if (type == RTM_NEWADDR && fam == AF_INET6 && nl_put_u32(m, IFA_FLAGS, IFA_F_NODAD) < 0)
                return -EMSGSIZE;
        return nl_request(sk, m);
}

int lnl_addr_add(NlSock *sk, int ifindex, const KvPrefix *p) {
        return addr_msg(sk, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, ifindex, p);
}

int lnl_addr_del(NlSock *sk, int ifindex, const KvPrefix *p) {
        int r = addr_msg(sk, RTM_DELADDR, 0, ifindex, p);
        if (r == -EADDRNOTAVAIL || r == -ENODEV)
                return 0;
        return r;
}

typedef struct AddrListCtx {
        int ifindex;
        KvPrefix *out;
        size_t max, n;
} AddrListCtx;

static int addr_list_cb(const struct nlmsghdr *h, void *arg) {
        AddrListCtx *c = arg;
        const struct nlattr *tb[IFA_MAX + 1];
        if (h->nlmsg_type != RTM_NEWADDR || nl_parse(h, sizeof(struct ifaddrmsg), tb, IFA_MAX) < 0)
                return 0;
        const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(h);
        if (c->ifindex > 0 && (int) ifa->ifa_index != c->ifindex)
                return 0;
        if (ifa->ifa_scope >= RT_SCOPE_LINK || (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6))
                return 0;
        const struct nlattr *a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
        size_t len = kv_addr_len(ifa->ifa_family);
        if (!a || mnl_attr_get_payload_len(a) != len)
                return 0;
        if (c->n < c->max) {
                KvPrefix *p = &c->out[c->n];
                *p = (KvPrefix) { .addr.family = ifa->ifa_family, .prefixlen = ifa->ifa_prefixlen };
                memcpy(p->addr.bytes, mnl_attr_get_payload(a), len);
        }
        c->n++;
        return 0;
}

int lnl_addr_list(NlSock *sk, int ifindex, KvPrefix *ret, size_t max) {
        struct ifaddrmsg ifa = { .ifa_family = AF_UNSPEC };
        struct nlmsghdr *m = nl_msg_new(sk, RTM_GETADDR, NLM_F_DUMP, &ifa, sizeof ifa);
        AddrListCtx c = { .ifindex = ifindex, .out = ret, .max = max };
        int r = nl_call(sk, m, addr_list_cb, &c);
        if (r < 0)
                return r;
        if (c.n > max)
                return -ENOBUFS;
        return (int) c.n;
}

bool lnl_addr_present(NlSock *sk, int ifindex, const KvPrefix *p) {
        KvPrefix list[64];
        int n = lnl_addr_list(sk, ifindex, list, ELEMENTSOF(list));
        if (n == -ENOBUFS)
                n = (int) ELEMENTSOF(list);
        for (int i = 0; i < n; i++)
                if (list[i].prefixlen == p->prefixlen && kv_addr_equal(&list[i].addr, &p->addr))
                        return true;
        return false;
}

/* ---- routes ---- */

int lnl_route_add(NlSock *sk, int ifindex, const KvPrefix *dst, const KvAddr *gw) {
        int fam = dst->addr.family;
        if ((fam != AF_INET && fam != AF_INET6) || (gw && gw->family != fam))
                return -EAFNOSUPPORT;
        struct rtmsg rtm = { .rtm_family = fam,
                             .rtm_dst_len = dst->prefixlen,
                             .rtm_table = RT_TABLE_MAIN,
                             .rtm_protocol = RTPROT_BOOT,
                             .rtm_scope = gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK,
                             .rtm_type = RTN_UNICAST };
        struct nlmsghdr *m = nl_msg_new(sk, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, &rtm, sizeof rtm);
        size_t len = kv_addr_len(fam);
        KvPrefix net = kv_prefix_network(dst);
        if ((dst->prefixlen > 0 && nl_put(m, RTA_DST, len, net.addr.bytes) < 0) ||
            (gw && nl_put(m, RTA_GATEWAY, len, gw->bytes) < 0) || nl_put_u32(m, RTA_OIF, (uint32_t) ifindex) < 0)
                return -EMSGSIZE;
        return nl_request(sk, m);
}

/* Copies of the dumped routes to delete. */
typedef struct RouteFlushCtx {
        uint8_t protocol;
        uint8_t *buf;
        size_t len, cap;
} RouteFlushCtx;

static int route_flush_cb(const struct nlmsghdr *h, void *arg) {
        RouteFlushCtx *c = arg;
        if (h->nlmsg_type != RTM_NEWROUTE || mnl_nlmsg_get_payload_len(h) < sizeof(struct rtmsg))
                return 0;
        const struct rtmsg *rtm = mnl_nlmsg_get_payload(h);
        if (rtm->rtm_protocol != c->protocol)
                return 0;
        size_t need = MNL_ALIGN(h->nlmsg_len);
        int r = ARRAY_GROW(c->buf, c->cap, c->len + need);
        if (r < 0)
                return r;
        memcpy(c->buf + c->len, h, h->nlmsg_len);
        c->len += need;
        return 0;
}

int lnl_route_flush_protocol(NlSock *sk, uint8_t protocol) {
        struct rtmsg rtm = { .rtm_family = AF_UNSPEC };
        struct nlmsghdr *m = nl_msg_new(sk, RTM_GETROUTE, NLM_F_DUMP, &rtm, sizeof rtm);
        RouteFlushCtx c = { .protocol = protocol };
        int r = nl_call(sk, m, route_flush_cb, &c);
        _cleanup_free_ uint8_t *buf = c.buf;
        if (r < 0)
                return r;
        /* Each route is deleted by its own description, as the kernel dumped it (all of it collected first:
         * deleting during the dump would disturb the dump). */
        int n = 0;
        for (size_t off = 0; off < c.len; off += MNL_ALIGN(((struct nlmsghdr *) (buf + off))->nlmsg_len)) {
                struct nlmsghdr *h = (struct nlmsghdr *) (buf + off);
                h->nlmsg_type = RTM_DELROUTE;
                h->nlmsg_flags = 0;
                if (nl_request(sk, h) == 0)
                        n++;
        }
        return n;
}

/* ---- lookups for kvnetctl trace ---- */

typedef struct RouteGetCtx {
        LnlRouteHit *hit;
        bool fib; /* the answer to RTM_F_FIB_MATCH: only the route's protocol and table are taken */
} RouteGetCtx;

static int route_get_cb(const struct nlmsghdr *h, void *arg) {
        RouteGetCtx *c = arg;
        LnlRouteHit *hit = c->hit;
        const struct nlattr *tb[RTA_MAX + 1];
        if (h->nlmsg_type != RTM_NEWROUTE || nl_parse(h, sizeof(struct rtmsg), tb, RTA_MAX) < 0)
                return 0;
        const struct rtmsg *rtm = mnl_nlmsg_get_payload(h);
        size_t len = kv_addr_len(rtm->rtm_family);
        hit->protocol = rtm->rtm_protocol;
        hit->table = tb[RTA_TABLE] ? mnl_attr_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
        if (c->fib)
                return 0;
        hit->type = rtm->rtm_type;
        hit->oif = tb[RTA_OIF] ? (int) mnl_attr_get_u32(tb[RTA_OIF]) : 0;
        if (tb[RTA_GATEWAY] && mnl_attr_get_payload_len(tb[RTA_GATEWAY]) == len) {
                hit->gw.family = rtm->rtm_family;
                memcpy(hit->gw.bytes, mnl_attr_get_payload(tb[RTA_GATEWAY]), len);
        }
        if (tb[RTA_PREFSRC] && mnl_attr_get_payload_len(tb[RTA_PREFSRC]) == len) {
                hit->prefsrc.family = rtm->rtm_family;
                memcpy(hit->prefsrc.bytes, mnl_attr_get_payload(tb[RTA_PREFSRC]), len);
        }
        return 0;
}

int lnl_route_get(NlSock *sk, const KvAddr *dst, const KvAddr *src, int iif, LnlRouteHit *ret) {
        int fam = dst->family;
        size_t len = kv_addr_len(fam);
        bool fwd = src && src->family == fam && iif > 0;
        *ret = (LnlRouteHit){};
        /* the lookup itself (the kernel's answer carries no protocol), then the route it matched (RTM_F_FIB_MATCH) */
        for (int fib = 0; fib < 2; fib++) {
                struct rtmsg rtm = { .rtm_family = (unsigned char) fam, .rtm_dst_len = (unsigned char) (len * 8),
                                     .rtm_src_len = fwd ? (unsigned char) (len * 8) : 0,
                                     .rtm_flags = fib ? RTM_F_FIB_MATCH : 0 };
                struct nlmsghdr *m = nl_msg_new(sk, RTM_GETROUTE, 0, &rtm, sizeof rtm);
                if (nl_put(m, RTA_DST, len, dst->bytes) < 0 ||
                    (fwd && (nl_put(m, RTA_SRC, len, src->bytes) < 0 || nl_put_u32(m, RTA_IIF, (uint32_t) iif) < 0)))
                        return -EMSGSIZE;
                RouteGetCtx c = { .hit = ret, .fib = fib };
                int r = nl_call(sk, m, route_get_cb, &c);
                if (r < 0 && !fib)
                        return r;
        }
        return 0;
}

typedef struct FdbCtx {
        int br;
        const uint8_t *mac;
        int port;
        bool is_static;
} FdbCtx;

static int fdb_cb(const struct nlmsghdr *h, void *arg) {
        FdbCtx *c = arg;
        const struct nlattr *tb[NDA_MAX + 1];
        if (h->nlmsg_type != RTM_NEWNEIGH || nl_parse(h, sizeof(struct ndmsg), tb, NDA_MAX) < 0)
                return 0;
        const struct ndmsg *nd = mnl_nlmsg_get_payload(h);
        if (nd->ndm_family != AF_BRIDGE || !tb[NDA_LLADDR] || mnl_attr_get_payload_len(tb[NDA_LLADDR]) != 6 ||
            memcmp(mnl_attr_get_payload(tb[NDA_LLADDR]), c->mac, 6) != 0)
                return 0;
        /* a port's entry names the bridge as its master; the bridge's own entries are on the bridge itself */
        int master = tb[NDA_MASTER] ? (int) mnl_attr_get_u32(tb[NDA_MASTER]) : 0;
        if (master != c->br || (int) nd->ndm_ifindex == c->br || c->port)
                return 0;
        c->port = (int) nd->ndm_ifindex;
        c->is_static = (nd->ndm_state & NUD_PERMANENT) || (nd->ndm_state & NUD_NOARP);
        return 0;
}

int lnl_fdb_port(NlSock *sk, int br_ifindex, const uint8_t mac[6], bool *ret_static) {
        struct ndmsg nd = { .ndm_family = AF_BRIDGE };
        struct nlmsghdr *m = nl_msg_new(sk, RTM_GETNEIGH, NLM_F_DUMP, &nd, sizeof nd);
        FdbCtx c = { .br = br_ifindex, .mac = mac }; /* every bridge's entries: a bare ndmsg is filtered nowhere */
        int r = nl_call(sk, m, fdb_cb, &c);
        if (r < 0)
                return r;
        if (ret_static)
                *ret_static = c.is_static;
        return c.port;
}

/* ---- tc ---- */

static struct nlmsghdr *tc_msg(NlSock *sk, uint16_t type, uint16_t flags, int ifindex, uint32_t handle, uint32_t parent,
                               uint32_t info) {
        struct tcmsg t = { .tcm_family = AF_UNSPEC,
                           .tcm_ifindex = ifindex,
                           .tcm_handle = handle,
                           .tcm_parent = parent,
                           .tcm_info = info };
        return nl_msg_new(sk, type, flags, &t, sizeof t);
}

int lnl_tc_clsact(NlSock *sk, int ifindex) {
        struct nlmsghdr *m = tc_msg(sk, RTM_NEWQDISC, NLM_F_CREATE, ifindex, TC_H_MAKE(TC_H_CLSACT, 0), TC_H_CLSACT, 0);
        int r = nl_put_str(m, TCA_KIND, "clsact");
        if (r < 0)
                return r;
        r = nl_request(sk, m);
        return r == -EEXIST ? 0 : r;
}

int lnl_tc_redirect(NlSock *sk, int from, int to) {
        struct nlmsghdr *m = tc_msg(sk, RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, from, 0,
                                    TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS),
                                    TC_H_MAKE((uint32_t) LNL_TC_PRIO << 16, htons(ETH_P_ALL)));
        if (nl_put_str(m, TCA_KIND, "u32") < 0)
                return -EMSGSIZE;
        struct nlattr *opts = nl_nest_start(m, TCA_OPTIONS);
        if (!opts)
                return -EMSGSIZE;
        /* "match u32 0 0": one key with mask 0 at offset 0; terminal because an action follows. */
        struct {
                struct tc_u32_sel sel;
                struct tc_u32_key key;
        } s = { .sel = { .flags = TC_U32_TERMINAL, .nkeys = 1 } };
        if (nl_put(m, TCA_U32_SEL, sizeof s, &s) < 0)
                return -EMSGSIZE;
        struct nlattr *acts = nl_nest_start(m, TCA_U32_ACT);
        struct nlattr *a1 = acts ? nl_nest_start(m, 1) : NULL;
        if (!a1 || nl_put_str(m, TCA_ACT_KIND, "mirred") < 0)
                return -EMSGSIZE;
        struct nlattr *aopts = nl_nest_start(m, TCA_ACT_OPTIONS);
        struct tc_mirred p = { .action = TC_ACT_STOLEN, .eaction = TCA_EGRESS_REDIR, .ifindex = (uint32_t) to };
        if (!aopts || nl_put(m, TCA_MIRRED_PARMS, sizeof p, &p) < 0)
                return -EMSGSIZE;
        nl_nest_end(m, aopts);
        nl_nest_end(m, a1);
        nl_nest_end(m, acts);
        nl_nest_end(m, opts);
        return nl_request(sk, m);
}

typedef struct RedirCtx {
        int to;
        bool found;
} RedirCtx;

static bool act_is_redirect_to(const struct nlattr *act, int to) {
        const struct nlattr *tb[TCA_ACT_MAX + 1];
        if (nl_parse_nested(act, tb, TCA_ACT_MAX) < 0 || !tb[TCA_ACT_KIND] || !tb[TCA_ACT_OPTIONS])
                return false;
        char kind[16];
        nl_attr_strcpy(tb[TCA_ACT_KIND], kind, sizeof kind);
        if (!streq(kind, "mirred"))
                return false;
        const struct nlattr *mt[TCA_MIRRED_MAX + 1];
        if (nl_parse_nested(tb[TCA_ACT_OPTIONS], mt, TCA_MIRRED_MAX) < 0 || !mt[TCA_MIRRED_PARMS] ||
            mnl_attr_get_payload_len(mt[TCA_MIRRED_PARMS]) < sizeof(struct tc_mirred))
                return false;
        struct tc_mirred p;
        memcpy(&p, mnl_attr_get_payload(mt[TCA_MIRRED_PARMS]), sizeof p);
        return p.eaction == TCA_EGRESS_REDIR && (int) p.ifindex == to;
}

static int redirect_cb(const struct nlmsghdr *h, void *arg) {
        RedirCtx *c = arg;
        const struct nlattr *tb[TCA_MAX + 1];
        if (h->nlmsg_type != RTM_NEWTFILTER || nl_parse(h, sizeof(struct tcmsg), tb, TCA_MAX) < 0 || !tb[TCA_KIND] ||
            !tb[TCA_OPTIONS])
                return 0;
        char kind[16];
        nl_attr_strcpy(tb[TCA_KIND], kind, sizeof kind);
        if (!streq(kind, "u32"))
                return 0;
        const struct nlattr *ut[TCA_U32_MAX + 1];
        if (nl_parse_nested(tb[TCA_OPTIONS], ut, TCA_U32_MAX) < 0 || !ut[TCA_U32_ACT])
                return 0;
        const struct nlattr *a;
        mnl_attr_for_each_nested(a, ut[TCA_U32_ACT])
                if (act_is_redirect_to(a, c->to))
                        c->found = true;
        return 0;
}

int lnl_tc_redirect_present(NlSock *sk, int from, int to) {
        struct nlmsghdr *m =
                tc_msg(sk, RTM_GETTFILTER, NLM_F_DUMP, from, 0, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS), 0);
        RedirCtx c = { .to = to };
        int r = nl_call(sk, m, redirect_cb, &c);
        if (r == -EINVAL || r == -ENOENT)
                return 0; /* no clsact qdisc */
        if (r < 0)
                return r;
        return c.found ? 1 : 0;
}

int lnl_tc_clsact_del(NlSock *sk, int ifindex) {
        struct nlmsghdr *m = tc_msg(sk, RTM_DELQDISC, 0, ifindex, TC_H_MAKE(TC_H_CLSACT, 0), TC_H_CLSACT, 0);
        int r = nl_request(sk, m);
        return r == -ENOENT || r == -EINVAL ? 0 : r;
}
