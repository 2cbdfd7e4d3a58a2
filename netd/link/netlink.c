/* SPDX-License-Identifier: Apache-2.0 */
#include "netd/link/netlink.h"

#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_bridge.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <linux/veth.h>
#include <fcntl.h>
#include <stdarg.h>

#include <netlink/attr.h>
#include <netlink/handlers.h>

#include "common/netns.h"

#ifndef TC_H_CLSACT
#define TC_H_CLSACT TC_H_INGRESS
#endif
#ifndef TC_H_MIN_INGRESS
#define TC_H_MIN_INGRESS 0xFFF2U
#endif

#define LNL_PENDING 1
#define LNL_TC_PRIO 1

int lnl_err(KvErr *e, int r, const char *fmt, ...) {
        char buf[400];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        return kverr_set(e, KV_ERR_INTERNAL, r, "%s: %s", buf, strerror(r < 0 ? -r : EIO));
}

/* libnl error codes -> errno, for the few places where libnl itself fails (not the kernel). */
static int nlerr_to_errno(int nlerr) {
        switch (nlerr < 0 ? -nlerr : nlerr) {
        case NLE_SUCCESS: return 0;
        case NLE_NOMEM: return -ENOMEM;
        case NLE_EXIST: return -EEXIST;
        case NLE_INVAL: return -EINVAL;
        case NLE_RANGE: return -ERANGE;
        case NLE_OPNOTSUPP: return -EOPNOTSUPP;
        case NLE_AF_NOSUPPORT: return -EAFNOSUPPORT;
        case NLE_OBJ_NOTFOUND:
        case NLE_NODEV: return -ENODEV;
        case NLE_PERM: return -EPERM;
        case NLE_BUSY: return -EBUSY;
        case NLE_AGAIN: return -EAGAIN;
        case NLE_NOACCESS: return -EACCES;
        case NLE_BAD_SOCK: return -EBADF;
        case NLE_MSGSIZE: return -EMSGSIZE;
        case NLE_NOADDR: return -EADDRNOTAVAIL;
        default: return -EIO;
        }
}

static int lnl_open_here(struct nl_sock **ret) {
        _cleanup_nl_sock_ struct nl_sock *sk = nl_socket_alloc();
        if (!sk)
                return -ENOMEM;
        int r = nl_connect(sk, NETLINK_ROUTE);
        if (r < 0)
                return nlerr_to_errno(r);
        *ret = TAKE_PTR(sk);
        return 0;
}

int lnl_open(int netns_fd, struct nl_sock **ret) {
        if (netns_fd < 0)
                return lnl_open_here(ret);

        NetnsGuard g;
        int r = netns_enter(netns_fd, &g);
        if (r < 0)
                return r;
        struct nl_sock *sk = NULL;
        r = lnl_open_here(&sk);
        int q = netns_leave(&g);
        if (q < 0) {
                /* We could not get back; nothing sane is possible in the wrong netns. */
                if (sk)
                        nl_socket_free(sk);
                return q;
        }
        if (r < 0)
                return r;
        *ret = sk;
        return 0;
}

int lnl_open_e(int netns_fd, struct nl_sock **ret, KvErr *e) {
        int r = lnl_open(netns_fd, ret);
        if (r < 0) {
                if (netns_fd >= 0 && (r == -EBADF || r == -EINVAL))
                        return kverr_set(e, KV_ERR_INVALID_ENV, r, "entering sandbox netns (fd %d): %s", netns_fd,
                                         strerror(-r));
                return lnl_err(e, r, "opening rtnetlink socket%s", netns_fd >= 0 ? " in sandbox" : "");
        }
        return 0;
}

static int ack_err_cb(struct sockaddr_nl *nla, struct nlmsgerr *err, void *arg) {
        (void) nla;
        *(int *) arg = err->error < 0 ? err->error : -err->error;
        return NL_STOP;
}

static int ack_ok_cb(struct nl_msg *msg, void *arg) {
        (void) msg;
        *(int *) arg = 0;
        return NL_STOP;
}

static int finish_cb(struct nl_msg *msg, void *arg) {
        (void) msg;
        *(int *) arg = 0;
        return NL_STOP;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nl_cb *, nl_cb_put);

/* A private copy of the socket's callbacks (nl_socket_get_cb() returns a new reference). */
static struct nl_cb *sock_cb_clone(struct nl_sock *sk) {
        struct nl_cb *orig = nl_socket_get_cb(sk);
        if (!orig)
                return NULL;
        struct nl_cb *cb = nl_cb_clone(orig);
        nl_cb_put(orig);
        return cb;
}

int lnl_request(struct nl_sock *sk, struct nl_msg *msg) {
        int r = nl_send_auto(sk, msg);
        if (r < 0)
                return nlerr_to_errno(r);
        _cleanup_(nl_cb_putp) struct nl_cb *cb = sock_cb_clone(sk);
        if (!cb)
                return -ENOMEM;
        int result = LNL_PENDING;
        nl_cb_err(cb, NL_CB_CUSTOM, ack_err_cb, &result);
        nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, ack_ok_cb, &result);
        while (result == LNL_PENDING) {
                r = nl_recvmsgs(sk, cb);
                if (result != LNL_PENDING)
                        break;
                if (r < 0)
                        return nlerr_to_errno(r);
        }
        return result;
}

int lnl_dump(struct nl_sock *sk, struct nl_msg *msg, int (*fn)(struct nl_msg *, void *), void *arg) {
        int r = nl_send_auto(sk, msg);
        if (r < 0)
                return nlerr_to_errno(r);
        _cleanup_(nl_cb_putp) struct nl_cb *cb = sock_cb_clone(sk);
        if (!cb)
                return -ENOMEM;
        int result = LNL_PENDING;
        nl_cb_err(cb, NL_CB_CUSTOM, ack_err_cb, &result);
        nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, finish_cb, &result);
        nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, fn, arg);
        while (result == LNL_PENDING) {
                r = nl_recvmsgs(sk, cb);
                if (result != LNL_PENDING)
                        break;
                if (r < 0)
                        return nlerr_to_errno(r);
        }
        return result;
}

static struct nl_msg *link_msg(int type, int flags, int family, int ifindex, unsigned ifflags, unsigned change) {
        struct nl_msg *m = nlmsg_alloc_simple(type, flags);
        if (!m)
                return NULL;
        struct ifinfomsg ifi = { .ifi_family = family, .ifi_index = ifindex, .ifi_flags = ifflags, .ifi_change = change };
        if (nlmsg_append(m, &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0) {
                nlmsg_free(m);
                return NULL;
        }
        return m;
}

/* ---- links ---- */

typedef struct LinkGetCtx {
        LnlLink *link;
        bool found;
} LinkGetCtx;

static int link_get_cb(struct nl_msg *msg, void *arg) {
        LinkGetCtx *c = arg;
        struct nlmsghdr *h = nlmsg_hdr(msg);
        if (h->nlmsg_type != RTM_NEWLINK)
                return NL_OK;
        struct nlattr *tb[IFLA_MAX + 1];
        if (nlmsg_parse(h, sizeof(struct ifinfomsg), tb, IFLA_MAX, NULL) < 0)
                return NL_SKIP;
        struct ifinfomsg *ifi = nlmsg_data(h);
        LnlLink *l = c->link;
        *l = (LnlLink) { .ifindex = ifi->ifi_index, .flags = ifi->ifi_flags };
        if (tb[IFLA_MASTER])
                l->master = (int) nla_get_u32(tb[IFLA_MASTER]);
        if (tb[IFLA_MTU])
                l->mtu = nla_get_u32(tb[IFLA_MTU]);
        if (tb[IFLA_ADDRESS] && nla_len(tb[IFLA_ADDRESS]) == 6)
                memcpy(l->mac, nla_data(tb[IFLA_ADDRESS]), 6);
        if (tb[IFLA_LINKINFO]) {
                struct nlattr *li[IFLA_INFO_MAX + 1];
                if (nla_parse_nested(li, IFLA_INFO_MAX, tb[IFLA_LINKINFO], NULL) >= 0 && li[IFLA_INFO_KIND])
                        nla_strlcpy(l->kind, li[IFLA_INFO_KIND], sizeof l->kind);
        }
        c->found = true;
        return NL_OK;
}

typedef struct LinkListCtx {
        int (*cb)(const char *name, const LnlLink *l, void *arg);
        void *arg;
        int ret;
} LinkListCtx;

static int link_list_cb(struct nl_msg *msg, void *arg) {
        LinkListCtx *c = arg;
        struct nlmsghdr *h = nlmsg_hdr(msg);
        struct nlattr *tb[IFLA_MAX + 1];
        if (h->nlmsg_type != RTM_NEWLINK || nlmsg_parse(h, sizeof(struct ifinfomsg), tb, IFLA_MAX, NULL) < 0 ||
            !tb[IFLA_IFNAME])
                return NL_OK;
        LnlLink l;
        LinkGetCtx g = { .link = &l };
        link_get_cb(msg, &g);
        char name[IFNAMSIZ];
        nla_strlcpy(name, tb[IFLA_IFNAME], sizeof name);
        if (c->ret >= 0)
                c->ret = c->cb(name, &l, c->arg);
        return NL_OK;
}

int lnl_link_list(struct nl_sock *sk, int (*cb)(const char *name, const LnlLink *l, void *arg), void *arg) {
        _cleanup_nl_msg_ struct nl_msg *m = nlmsg_alloc_simple(RTM_GETLINK, NLM_F_DUMP);
        struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
        if (!m || nlmsg_append(m, &ifi, sizeof ifi, NLMSG_ALIGNTO) < 0 ||
            nla_put_u32(m, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS) < 0)
                return -ENOMEM;
        LinkListCtx c = { .cb = cb, .arg = arg };
        int r = lnl_dump(sk, m, link_list_cb, &c);
        return r < 0 ? r : c.ret;
}

int lnl_link_get(struct nl_sock *sk, const char *name, LnlLink *ret) {
        if (!name || !*name || strlen(name) >= IFNAMSIZ)
                return -EINVAL;
        _cleanup_nl_msg_ struct nl_msg *m = link_msg(RTM_GETLINK, 0, AF_UNSPEC, 0, 0, 0);
        if (!m || nla_put_string(m, IFLA_IFNAME, name) < 0 || nla_put_u32(m, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS) < 0)
                return -ENOMEM;
        LnlLink l;
        LinkGetCtx c = { .link = &l };
        /* A GETLINK by name answers with one message (or an error), no NLMSG_DONE: treat it as a request
         * whose valid reply is collected by the callback. */
        int r = nl_send_auto(sk, m);
        if (r < 0)
                return nlerr_to_errno(r);
        _cleanup_(nl_cb_putp) struct nl_cb *cb = sock_cb_clone(sk);
        if (!cb)
                return -ENOMEM;
        int result = LNL_PENDING;
        nl_cb_err(cb, NL_CB_CUSTOM, ack_err_cb, &result);
        nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, ack_ok_cb, &result);
        nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, link_get_cb, &c);
        while (result == LNL_PENDING) {
                r = nl_recvmsgs(sk, cb);
                if (result != LNL_PENDING)
                        break;
                if (r < 0)
                        return nlerr_to_errno(r);
        }
        if (result < 0)
                return result;
        if (!c.found)
                return -ENODEV;
        *ret = l;
        return 0;
}

int lnl_link_set(struct nl_sock *sk, int ifindex, int up, uint32_t mtu) {
        _cleanup_nl_msg_ struct nl_msg *m =
                link_msg(RTM_NEWLINK, 0, AF_UNSPEC, ifindex, up > 0 ? IFF_UP : 0, up >= 0 ? IFF_UP : 0);
        if (!m)
                return -ENOMEM;
        if (mtu > 0 && nla_put_u32(m, IFLA_MTU, mtu) < 0)
                return -ENOMEM;
        return lnl_request(sk, m);
}

int lnl_link_del(struct nl_sock *sk, const char *name) {
        _cleanup_nl_msg_ struct nl_msg *m = link_msg(RTM_DELLINK, 0, AF_UNSPEC, 0, 0, 0);
        if (!m || nla_put_string(m, IFLA_IFNAME, name) < 0)
                return -ENOMEM;
        int r = lnl_request(sk, m);
        if (r == -ENODEV || r == -ENOENT)
                return 0;
        return r;
}

int lnl_link_retire(struct nl_sock *sk, const char *name, uint32_t group) {
        LnlLink l;
        int r = lnl_link_get(sk, name, &l);
        if (r == -ENODEV || r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        /* Down (the bridge stops forwarding to it at once) and into the reap group, in one message. */
        _cleanup_nl_msg_ struct nl_msg *m = link_msg(RTM_NEWLINK, 0, AF_UNSPEC, l.ifindex, 0, IFF_UP);
        if (!m || nla_put_u32(m, IFLA_GROUP, group) < 0)
                return -ENOMEM;
        r = lnl_request(sk, m);
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
        _cleanup_nl_msg_ struct nl_msg *rn = link_msg(RTM_NEWLINK, 0, AF_UNSPEC, l.ifindex, 0, 0);
        if (rn && nla_put_string(rn, IFLA_IFNAME, retired) >= 0)
                IGNORE_RESULT(lnl_request(sk, rn));
        return 0;
}

int lnl_link_del_group(struct nl_sock *sk, uint32_t group) {
        _cleanup_nl_msg_ struct nl_msg *m = link_msg(RTM_DELLINK, 0, AF_UNSPEC, 0, 0, 0);
        if (!m || nla_put_u32(m, IFLA_GROUP, group) < 0)
                return -ENOMEM;
        int r = lnl_request(sk, m);
        if (r == -ENODEV || r == -ENOENT)
                return 0;
        return r;
}

int lnl_veth_create(struct nl_sock *sk, const char *name, int master, uint32_t mtu, const char *peer,
                    int peer_netns_fd, const uint8_t *peer_mac) {
        _cleanup_nl_msg_ struct nl_msg *m =
                link_msg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, AF_UNSPEC, 0, IFF_UP, IFF_UP);
        if (!m)
                return -ENOMEM;
        if (nla_put_string(m, IFLA_IFNAME, name) < 0 || (mtu > 0 && nla_put_u32(m, IFLA_MTU, mtu) < 0) ||
            (master > 0 && nla_put_u32(m, IFLA_MASTER, (uint32_t) master) < 0))
                return -ENOMEM;
        struct nlattr *li = nla_nest_start(m, IFLA_LINKINFO);
        if (!li || nla_put_string(m, IFLA_INFO_KIND, "veth") < 0)
                return -ENOMEM;
        struct nlattr *data = nla_nest_start(m, IFLA_INFO_DATA);
        struct nlattr *pe = data ? nla_nest_start(m, VETH_INFO_PEER) : NULL;
        if (!pe)
                return -ENOMEM;
        /* The peer cannot be created up: veth_open() fails with ENOTCONN before the pair is joined. */
        struct ifinfomsg pifi = { .ifi_family = AF_UNSPEC };
        if (nlmsg_append(m, &pifi, sizeof pifi, NLMSG_ALIGNTO) < 0 || nla_put_string(m, IFLA_IFNAME, peer) < 0 ||
            (mtu > 0 && nla_put_u32(m, IFLA_MTU, mtu) < 0) ||
            (peer_netns_fd >= 0 && nla_put_u32(m, IFLA_NET_NS_FD, (uint32_t) peer_netns_fd) < 0) ||
            (peer_mac && nla_put(m, IFLA_ADDRESS, 6, peer_mac) < 0))
                return -ENOMEM;
        nla_nest_end(m, pe);
        nla_nest_end(m, data);
        nla_nest_end(m, li);
        int r = lnl_request(sk, m);
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

int lnl_link_set_master(struct nl_sock *sk, int ifindex, int master) {
        _cleanup_nl_msg_ struct nl_msg *m = link_msg(RTM_NEWLINK, 0, AF_UNSPEC, ifindex, 0, 0);
        if (!m || nla_put_u32(m, IFLA_MASTER, (uint32_t) master) < 0)
                return -ENOMEM;
        return lnl_request(sk, m);
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

int lnl_link_addrgen_none(struct nl_sock *sk, const char *name) {
        _cleanup_nl_msg_ struct nl_msg *m = link_msg(RTM_NEWLINK, 0, AF_UNSPEC, 0, 0, 0);
        if (!m || nla_put_string(m, IFLA_IFNAME, name) < 0)
                return -ENOMEM;
        struct nlattr *af = nla_nest_start(m, IFLA_AF_SPEC);
        struct nlattr *in6 = af ? nla_nest_start(m, AF_INET6) : NULL;
        if (!in6 || nla_put_u8(m, IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE) < 0)
                return -ENOMEM;
        nla_nest_end(m, in6);
        nla_nest_end(m, af);
        return lnl_request(sk, m);
}

int lnl_neigh_stale(struct nl_sock *sk, int ifindex, const KvAddr *a, const uint8_t mac[6]) {
        _cleanup_nl_msg_ struct nl_msg *m = nlmsg_alloc_simple(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE);
        struct ndmsg nd = { .ndm_family = (uint8_t) a->family, .ndm_ifindex = ifindex, .ndm_state = NUD_STALE };
        if (!m || nlmsg_append(m, &nd, sizeof nd, NLMSG_ALIGNTO) < 0 ||
            nla_put(m, NDA_DST, (int) kv_addr_len(a->family), a->bytes) < 0 || nla_put(m, NDA_LLADDR, 6, mac) < 0)
                return -ENOMEM;
        return lnl_request(sk, m);
}

/* ---- bridge ---- */

int lnl_bridge_create(struct nl_sock *sk, const char *name, uint32_t mtu) {
        _cleanup_nl_msg_ struct nl_msg *m =
                link_msg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, AF_UNSPEC, 0, IFF_UP, IFF_UP);
        /* A fixed MAC: otherwise the bridge takes the lowest port MAC and the gateway's MAC changes under
         * the attachments' ARP caches whenever ports come and go. Derived from the name, so a re-created
         * bridge keeps it. */
        uint64_t h = kv_hash64(name, strlen(name));
        uint8_t mac[6] = { 0x02, 0x6b, (uint8_t) (h >> 24), (uint8_t) (h >> 16), (uint8_t) (h >> 8), (uint8_t) h };
        if (!m || nla_put_string(m, IFLA_IFNAME, name) < 0 || (mtu > 0 && nla_put_u32(m, IFLA_MTU, mtu) < 0) ||
            nla_put(m, IFLA_ADDRESS, 6, mac) < 0)
                return -ENOMEM;
        struct nlattr *li = nla_nest_start(m, IFLA_LINKINFO);
        if (!li || nla_put_string(m, IFLA_INFO_KIND, "bridge") < 0)
                return -ENOMEM;
        /* No multicast snooping: with it, every port event (a port added, its carrier going up or down)
         * re-arms the multicast timers of every port of the bridge (br_port_state_selection ->
         * br_multicast_enable_port), so an ADD slows down with each attachment already there. Multicast
         * frames are flooded to every port instead of only to the ports that reported a group, as
         * broadcast (ARP) always is. */
        struct nlattr *data = nla_nest_start(m, IFLA_INFO_DATA);
        if (!data || nla_put_u8(m, IFLA_BR_MCAST_SNOOPING, 0) < 0)
                return -ENOMEM;
        nla_nest_end(m, data);
        nla_nest_end(m, li);
        return lnl_request(sk, m);
}

/* ---- addresses ---- */

static int addr_msg(struct nl_sock *sk, int type, int flags, int ifindex, const KvPrefix *p) {
        int fam = p->addr.family;
        if (fam != AF_INET && fam != AF_INET6)
                return -EAFNOSUPPORT;
        _cleanup_nl_msg_ struct nl_msg *m = nlmsg_alloc_simple(type, flags);
        if (!m)
                return -ENOMEM;
        struct ifaddrmsg ifa = { .ifa_family = fam,
                                 .ifa_prefixlen = p->prefixlen,
                                 .ifa_flags = fam == AF_INET6 ? IFA_F_NODAD : 0,
                                 .ifa_index = (uint32_t) ifindex };
        size_t len = kv_addr_len(fam);
        if (nlmsg_append(m, &ifa, sizeof ifa, NLMSG_ALIGNTO) < 0 || nla_put(m, IFA_LOCAL, (int) len, p->addr.bytes) < 0 ||
            nla_put(m, IFA_ADDRESS, (int) len, p->addr.bytes) < 0)
                return -ENOMEM;
        if (type == RTM_NEWADDR && fam == AF_INET6 && nla_put_u32(m, IFA_FLAGS, IFA_F_NODAD) < 0)
                return -ENOMEM;
        return lnl_request(sk, m);
}

int lnl_addr_add(struct nl_sock *sk, int ifindex, const KvPrefix *p) {
        return addr_msg(sk, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, ifindex, p);
}

int lnl_addr_del(struct nl_sock *sk, int ifindex, const KvPrefix *p) {
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

static int addr_list_cb(struct nl_msg *msg, void *arg) {
        AddrListCtx *c = arg;
        struct nlmsghdr *h = nlmsg_hdr(msg);
        if (h->nlmsg_type != RTM_NEWADDR)
                return NL_OK;
        struct ifaddrmsg *ifa = nlmsg_data(h);
        if (c->ifindex > 0 && (int) ifa->ifa_index != c->ifindex)
                return NL_OK;
        if (ifa->ifa_scope >= RT_SCOPE_LINK || (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6))
                return NL_OK;
        struct nlattr *tb[IFA_MAX + 1];
        if (nlmsg_parse(h, sizeof *ifa, tb, IFA_MAX, NULL) < 0)
                return NL_OK;
        struct nlattr *a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
        size_t len = kv_addr_len(ifa->ifa_family);
        if (!a || (size_t) nla_len(a) != len)
                return NL_OK;
        if (c->n < c->max) {
                KvPrefix *p = &c->out[c->n];
                *p = (KvPrefix) { .addr.family = ifa->ifa_family, .prefixlen = ifa->ifa_prefixlen };
                memcpy(p->addr.bytes, nla_data(a), len);
        }
        c->n++;
        return NL_OK;
}

int lnl_addr_list(struct nl_sock *sk, int ifindex, KvPrefix *ret, size_t max) {
        _cleanup_nl_msg_ struct nl_msg *m = nlmsg_alloc_simple(RTM_GETADDR, NLM_F_DUMP);
        struct ifaddrmsg ifa = { .ifa_family = AF_UNSPEC };
        if (!m || nlmsg_append(m, &ifa, sizeof ifa, NLMSG_ALIGNTO) < 0)
                return -ENOMEM;
        AddrListCtx c = { .ifindex = ifindex, .out = ret, .max = max };
        int r = lnl_dump(sk, m, addr_list_cb, &c);
        if (r < 0)
                return r;
        if (c.n > max)
                return -ENOBUFS;
        return (int) c.n;
}

bool lnl_addr_present(struct nl_sock *sk, int ifindex, const KvPrefix *p) {
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

int lnl_route_add(struct nl_sock *sk, int ifindex, const KvPrefix *dst, const KvAddr *gw) {
        int fam = dst->addr.family;
        if ((fam != AF_INET && fam != AF_INET6) || (gw && gw->family != fam))
                return -EAFNOSUPPORT;
        _cleanup_nl_msg_ struct nl_msg *m = nlmsg_alloc_simple(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
        if (!m)
                return -ENOMEM;
        struct rtmsg rtm = { .rtm_family = fam,
                             .rtm_dst_len = dst->prefixlen,
                             .rtm_table = RT_TABLE_MAIN,
                             .rtm_protocol = RTPROT_BOOT,
                             .rtm_scope = gw ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK,
                             .rtm_type = RTN_UNICAST };
        size_t len = kv_addr_len(fam);
        KvPrefix net = kv_prefix_network(dst);
        if (nlmsg_append(m, &rtm, sizeof rtm, NLMSG_ALIGNTO) < 0 ||
            (dst->prefixlen > 0 && nla_put(m, RTA_DST, (int) len, net.addr.bytes) < 0) ||
            (gw && nla_put(m, RTA_GATEWAY, (int) len, gw->bytes) < 0) ||
            nla_put_u32(m, RTA_OIF, (uint32_t) ifindex) < 0)
                return -ENOMEM;
        return lnl_request(sk, m);
}

/* ---- tc ---- */

int lnl_tc_clsact(struct nl_sock *sk, int ifindex) {
        _cleanup_nl_msg_ struct nl_msg *m = nlmsg_alloc_simple(RTM_NEWQDISC, NLM_F_CREATE);
        struct tcmsg t = { .tcm_family = AF_UNSPEC,
                           .tcm_ifindex = ifindex,
                           .tcm_handle = TC_H_MAKE(TC_H_CLSACT, 0),
                           .tcm_parent = TC_H_CLSACT };
        if (!m || nlmsg_append(m, &t, sizeof t, NLMSG_ALIGNTO) < 0 || nla_put_string(m, TCA_KIND, "clsact") < 0)
                return -ENOMEM;
        int r = lnl_request(sk, m);
        return r == -EEXIST ? 0 : r;
}

int lnl_tc_redirect(struct nl_sock *sk, int from, int to) {
        _cleanup_nl_msg_ struct nl_msg *m = nlmsg_alloc_simple(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL);
        struct tcmsg t = { .tcm_family = AF_UNSPEC,
                           .tcm_ifindex = from,
                           .tcm_handle = 0,
                           .tcm_parent = TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS),
                           .tcm_info = TC_H_MAKE((uint32_t) LNL_TC_PRIO << 16, htons(ETH_P_ALL)) };
        if (!m || nlmsg_append(m, &t, sizeof t, NLMSG_ALIGNTO) < 0 || nla_put_string(m, TCA_KIND, "u32") < 0)
                return -ENOMEM;

        struct nlattr *opts = nla_nest_start(m, TCA_OPTIONS);
        if (!opts)
                return -ENOMEM;
        /* "match u32 0 0": one key with mask 0 at offset 0; terminal because an action follows. */
        struct {
                struct tc_u32_sel sel;
                struct tc_u32_key key;
        } s = { .sel = { .flags = TC_U32_TERMINAL, .nkeys = 1 } };
        if (nla_put(m, TCA_U32_SEL, sizeof s, &s) < 0)
                return -ENOMEM;
        struct nlattr *acts = nla_nest_start(m, TCA_U32_ACT);
        struct nlattr *a1 = acts ? nla_nest_start(m, 1) : NULL;
        if (!a1 || nla_put_string(m, TCA_ACT_KIND, "mirred") < 0)
                return -ENOMEM;
        struct nlattr *aopts = nla_nest_start(m, TCA_ACT_OPTIONS);
        struct tc_mirred p = { .action = TC_ACT_STOLEN, .eaction = TCA_EGRESS_REDIR, .ifindex = (uint32_t) to };
        if (!aopts || nla_put(m, TCA_MIRRED_PARMS, sizeof p, &p) < 0)
                return -ENOMEM;
        nla_nest_end(m, aopts);
        nla_nest_end(m, a1);
        nla_nest_end(m, acts);
        nla_nest_end(m, opts);
        return lnl_request(sk, m);
}

typedef struct RedirCtx {
        int to;
        bool found;
} RedirCtx;

static bool act_is_redirect_to(struct nlattr *act, int to) {
        struct nlattr *tb[TCA_ACT_MAX + 1];
        if (nla_parse_nested(tb, TCA_ACT_MAX, act, NULL) < 0 || !tb[TCA_ACT_KIND] || !tb[TCA_ACT_OPTIONS])
                return false;
        char kind[16];
        nla_strlcpy(kind, tb[TCA_ACT_KIND], sizeof kind);
        if (!streq(kind, "mirred"))
                return false;
        struct nlattr *mt[TCA_MIRRED_MAX + 1];
        if (nla_parse_nested(mt, TCA_MIRRED_MAX, tb[TCA_ACT_OPTIONS], NULL) < 0 || !mt[TCA_MIRRED_PARMS] ||
            (size_t) nla_len(mt[TCA_MIRRED_PARMS]) < sizeof(struct tc_mirred))
                return false;
        const struct tc_mirred *p = nla_data(mt[TCA_MIRRED_PARMS]);
        return p->eaction == TCA_EGRESS_REDIR && (int) p->ifindex == to;
}

static int redirect_cb(struct nl_msg *msg, void *arg) {
        RedirCtx *c = arg;
        struct nlmsghdr *h = nlmsg_hdr(msg);
        if (h->nlmsg_type != RTM_NEWTFILTER)
                return NL_OK;
        struct nlattr *tb[TCA_MAX + 1];
        if (nlmsg_parse(h, sizeof(struct tcmsg), tb, TCA_MAX, NULL) < 0 || !tb[TCA_KIND] || !tb[TCA_OPTIONS])
                return NL_OK;
        char kind[16];
        nla_strlcpy(kind, tb[TCA_KIND], sizeof kind);
        if (!streq(kind, "u32"))
                return NL_OK;
        struct nlattr *ut[TCA_U32_MAX + 1];
        if (nla_parse_nested(ut, TCA_U32_MAX, tb[TCA_OPTIONS], NULL) < 0 || !ut[TCA_U32_ACT])
                return NL_OK;
        struct nlattr *a;
        int rem;
        nla_for_each_nested(a, ut[TCA_U32_ACT], rem)
                if (act_is_redirect_to(a, c->to))
                        c->found = true;
        return NL_OK;
}

int lnl_tc_redirect_present(struct nl_sock *sk, int from, int to) {
        _cleanup_nl_msg_ struct nl_msg *m = nlmsg_alloc_simple(RTM_GETTFILTER, NLM_F_DUMP);
        struct tcmsg t = { .tcm_family = AF_UNSPEC,
                           .tcm_ifindex = from,
                           .tcm_parent = TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS) };
        if (!m || nlmsg_append(m, &t, sizeof t, NLMSG_ALIGNTO) < 0)
                return -ENOMEM;
        RedirCtx c = { .to = to };
        int r = lnl_dump(sk, m, redirect_cb, &c);
        if (r == -EINVAL || r == -ENOENT)
                return 0; /* no clsact qdisc */
        if (r < 0)
                return r;
        return c.found ? 1 : 0;
}

int lnl_tc_clsact_del(struct nl_sock *sk, int ifindex) {
        _cleanup_nl_msg_ struct nl_msg *m = nlmsg_alloc_simple(RTM_DELQDISC, 0);
        struct tcmsg t = { .tcm_family = AF_UNSPEC,
                           .tcm_ifindex = ifindex,
                           .tcm_handle = TC_H_MAKE(TC_H_CLSACT, 0),
                           .tcm_parent = TC_H_CLSACT };
        if (!m || nlmsg_append(m, &t, sizeof t, NLMSG_ALIGNTO) < 0)
                return -ENOMEM;
        int r = lnl_request(sk, m);
        return r == -ENOENT || r == -EINVAL ? 0 : r;
}
