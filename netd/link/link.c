/* SPDX-License-Identifier: Apache-2.0 */
/* Node bridge, container attachments, detach, checks. VM attachments are in link-tap.c. */
#include "netd/link/link.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/if.h>

#include "common/fileio.h"
#include "common/log.h"
#include "netd/link/netlink.h"

static int write_sysctl(const char *path, const char *value);

/* A bridge kvnet creates faces the guests: the node takes no router advertisement and no redirect from it (a guest
 * could send them to give the node a default route or move its traffic). The sysctls of a family the kernel has
 * off (no such file) are left. */
static void bridge_harden(const char *name) {
        static const char *const keys[] = { "ipv6/conf/%s/accept_ra", "ipv6/conf/%s/accept_redirects",
                                            "ipv4/conf/%s/accept_redirects" };
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                char rel[128], path[192];
                snprintf(rel, sizeof rel, keys[i], name);
                snprintf(path, sizeof path, "/proc/sys/net/%s", rel);
                int r = write_sysctl(path, "0\n");
                if (r < 0 && r != -ENOENT)
                        log_warning("bridge '%s': cannot write 0 to %s: %s", name, path, strerror(-r));
        }
}

int link_bridge_ensure(const char *name, uint32_t mtu, const KvPrefix *gw, size_t n_gw, int *ret_ifindex, KvErr *e) {
        _cleanup_nl_sock_ NlSock *sk = NULL;
        LnlLink br;
        int r = lnl_open_link(-1, name, &sk, &br, e);
        if (r == -ENODEV && sk) {
                r = lnl_bridge_create(sk, name, mtu);
                if (r < 0 && r != -EEXIST)
                        return nl_error(e, sk, r, "creating bridge '%s'", name);
                if (r >= 0)
                        bridge_harden(name);
                r = lnl_link_get(sk, name, &br);
        }
        if (r < 0)
                return nl_error(e, sk, r, "looking up bridge '%s'", name);
        if (!streq(br.kind, "bridge"))
                return kverr_set(e, KV_ERR_INTERNAL, -EEXIST, "link '%s' exists but is a '%s', not a bridge", name,
                                 br.kind[0] ? br.kind : "device");
        if (!(br.flags & IFF_UP) || (mtu > 0 && br.mtu != mtu)) {
                r = lnl_link_set(sk, br.ifindex, 1, mtu > 0 && br.mtu != mtu ? mtu : 0);
                if (r < 0)
                        return nl_error(e, sk, r, "setting bridge '%s' up (mtu %u)", name, mtu);
        }

        for (size_t i = 0; i < n_gw; i++) {
                if (lnl_addr_present(sk, br.ifindex, &gw[i]))
                        continue;
                r = lnl_addr_add(sk, br.ifindex, &gw[i]);
                if (r < 0) {
                        char buf[KV_ADDR_STRLEN];
                        return nl_error(e, sk, r, "adding gateway address %s to bridge '%s'",
                                        kv_prefix_fmt(&gw[i], buf), name);
                }
        }
        if (ret_ifindex)
                *ret_ifindex = br.ifindex;
        return 0;
}

/* Bridge lookup. */
int link_bridge_prepare(NlSock *sk, const char *bridge, int *ret_ifindex, KvErr *e) {
        LnlLink br;
        int r = lnl_link_get(sk, bridge, &br);
        if (r < 0)
                return nl_error(e, sk, r, "looking up bridge '%s'", bridge);
        if (!streq(br.kind, "bridge"))
                return kverr_set(e, KV_ERR_INTERNAL, -EINVAL, "link '%s' is not a bridge", bridge);
        *ret_ifindex = br.ifindex;
        return 0;
}

int link_attach_begin(int netns_fd, const char *bridge, NlSock **ret_sk, NlSock **ret_ssk, int *ret_br_ifindex,
                      KvErr *e) {
        _cleanup_nl_sock_ NlSock *sk = NULL, *ssk = NULL;
        int br_ifindex;
        int r = lnl_open_pair(netns_fd, &sk, &ssk, e);
        if (r >= 0)
                r = link_bridge_prepare(sk, bridge, &br_ifindex, e);
        if (r < 0)
                return r;
        *ret_sk = TAKE_PTR(sk);
        *ret_ssk = TAKE_PTR(ssk);
        *ret_br_ifindex = br_ifindex;
        return 0;
}

void link_info_set(LinkInfo *ret, const LnlLink *host, int sandbox_ifindex, const uint8_t *sandbox_mac) {
        if (!ret)
                return;
        *ret = (LinkInfo) { .host_ifindex = host->ifindex, .sandbox_ifindex = sandbox_ifindex };
        memcpy(ret->host_mac, host->mac, 6);
        if (sandbox_mac)
                memcpy(ret->sandbox_mac, sandbox_mac, 6);
}

/* The host end of a veth whose peer is up joins the bridge. The lookup
 * comes first: it also makes the kernel settle the link's carrier state (linkwatch_sync_dev), while the
 * link is not a bridge port yet, so that the bridge sees one event, a port that is up, instead of
 * up / carrier down / carrier up, each of which walks all ports and the whole FDB. */
int link_join_bridge(NlSock *sk, const char *host_ifname, int br_ifindex, LnlLink *ret, KvErr *e) {
        LnlLink host;
        int r = lnl_link_get(sk, host_ifname, &host);
        if (r < 0)
                return nl_error(e, sk, r, "looking up veth '%s'", host_ifname);
        r = lnl_link_set_master(sk, host.ifindex, br_ifindex);
        if (r < 0)
                return nl_error(e, sk, r, "adding '%s' to the bridge", host_ifname);
        host.master = br_ifindex;
        *ret = host;
        return 0;
}

int link_container_attach(int netns_fd, const char *ifname, const char *host_ifname, const char *bridge, uint32_t mtu,
                          const uint8_t *mac, const KvPrefix *addrs, size_t n_addrs,
                          const LinkRoute *routes, size_t n_routes, LinkInfo *ret, KvErr *e) {
        char buf[KV_ADDR_STRLEN], buf2[KV_ADDR_STRLEN];
        _cleanup_nl_sock_ NlSock *sk = NULL, *ssk = NULL;
        int br_ifindex;
        int r = link_attach_begin(netns_fd, bridge, &sk, &ssk, &br_ifindex, e);
        if (r < 0)
                return r;

        /* The peer is created directly inside the sandbox under its final name: a name clash there
         * fails the whole creation and leaves nothing behind. The host end joins the bridge last (see
         * link_join_bridge). */
        r = lnl_veth_create(sk, host_ifname, 0, mtu, ifname, netns_fd, mac);
        if (r < 0)
                return nl_error(e, sk, r, "creating veth '%s' -> '%s' in sandbox", host_ifname, ifname);

        LnlLink host, sbx;
        r = lnl_link_get(ssk, ifname, &sbx);
        if (r < 0) {
                nl_error(e, ssk, r, "looking up '%s' in sandbox", ifname);
                goto undo;
        }
        for (size_t i = 0; i < n_addrs; i++) {
                r = lnl_addr_add(ssk, sbx.ifindex, &addrs[i]);
                if (r < 0) {
                        nl_error(e, ssk, r, "adding address %s to '%s' in sandbox", kv_prefix_fmt(&addrs[i], buf),
                                 ifname);
                        goto undo;
                }
        }
        /* An IPv4-only attachment gets no IPv6 on its interface: no link-local, hence no DAD, MLD or router
         * solicitations flooded over the node bridge to every other pod each time a pod starts, and no
         * ff00::/8 route, whose siblings every later link event in the sandbox would walk. Without the
         * sysctl, at least no address generation. Before the link goes up. */
        bool has_v6 = false;
        for (size_t i = 0; i < n_addrs; i++)
                if (addrs[i].addr.family == AF_INET6)
                        has_v6 = true;
        if (!has_v6) {
                r = lnl_link_ipv6_disable(netns_fd, ifname);
                if (r < 0)
                        r = lnl_link_addrgen_none(ssk, ifname);
                if (r < 0) {
                        nl_error(e, ssk, r, "switching IPv6 address generation off on '%s' in sandbox", ifname);
                        goto undo;
                }
        }
        r = lnl_link_set(ssk, sbx.ifindex, 1, 0);
        if (r < 0) {
                nl_error(e, ssk, r, "setting '%s' up in sandbox", ifname);
                goto undo;
        }
        for (size_t i = 0; i < n_routes; i++) {
                const LinkRoute *rt = &routes[i];
                r = lnl_route_add(ssk, sbx.ifindex, &rt->dst, rt->has_gw ? &rt->gw : NULL);
                if (r < 0) {
                        nl_error(e, ssk, r, "adding route %s%s%s on '%s' in sandbox", kv_prefix_fmt(&rt->dst, buf),
                                 rt->has_gw ? " via " : "", rt->has_gw ? kv_addr_fmt(&rt->gw, buf2) : "", ifname);
                        goto undo;
                }
        }
        r = link_join_bridge(sk, host_ifname, br_ifindex, &host, e);
        if (r < 0)
                goto undo;

        link_info_set(ret, &host, sbx.ifindex, sbx.mac);
        return 0;

undo:
        (void) lnl_link_del(sk, host_ifname); /* takes the sandbox end with it */
        return r;
}

static int link_del_e(NlSock *sk, const char *name, const char *where, KvErr *e) {
        int r = lnl_link_del(sk, name);
        if (r < 0)
                return nl_error(e, sk, r, "deleting '%s'%s", name, where);
        return 0;
}

int link_detach(int netns_fd, const char *sandbox_ifname, const char *tap_name, const char *host_ifname, KvErr *e) {
        int r, ret = 0;
        if (host_ifname) {
                _cleanup_nl_sock_ NlSock *sk = NULL;
                r = lnl_open_e(-1, &sk, e);
                if (r < 0)
                        return r;
                r = link_del_e(sk, host_ifname, "", e);
                if (r < 0)
                        ret = r;
        }
        if (netns_fd >= 0 && (sandbox_ifname || tap_name)) {
                _cleanup_nl_sock_ NlSock *ssk = NULL;
                r = lnl_open_e(netns_fd, &ssk, e);
                if (r < 0)
                        return r;
                if (tap_name) {
                        r = link_del_e(ssk, tap_name, " in sandbox", e);
                        if (r < 0 && ret == 0)
                                ret = r;
                }
                if (sandbox_ifname) {
                        r = link_del_e(ssk, sandbox_ifname, " in sandbox", e);
                        if (r < 0 && ret == 0)
                                ret = r;
                }
        }
        return ret;
}

int link_retire(int netns_fd, const char *sandbox_ifname, const char *tap_name, const char *host_ifname,
                KvErr *e) {
        int r;
        if (host_ifname) {
                _cleanup_nl_sock_ NlSock *sk = NULL;
                r = lnl_open_e(-1, &sk, e);
                if (r < 0)
                        return r;
                r = lnl_link_retire(sk, host_ifname, LINK_REAP_GROUP);
                if (r < 0)
                        return nl_error(e, sk, r, "retiring '%s'", host_ifname);
        }
        if (netns_fd >= 0 && (sandbox_ifname || tap_name)) {
                _cleanup_nl_sock_ NlSock *ssk = NULL;
                r = lnl_open_e(netns_fd, &ssk, e);
                if (r < 0)
                        return r;
                /* With a host end, the sandbox veth end is deleted with it; it is retired here as well so that
                 * its name (the runtime's CNI_IFNAME) is free again at once (see lnl_link_retire). */
                const char *names[] = { tap_name, sandbox_ifname };
                for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                        if (!names[i])
                                continue;
                        r = lnl_link_retire(ssk, names[i], LINK_REAP_GROUP);
                        if (r < 0)
                                return nl_error(e, ssk, r, "retiring '%s' in sandbox", names[i]);
                }
        }
        return 0;
}

typedef struct UnknownCtx {
        bool (*keep)(const char *name, void *arg);
        void *arg;
        NlSock *sk;
        unsigned n;
} UnknownCtx;

static bool is_host_pattern(const char *name) {
        if (strlen(name) != 10 || name[0] != 'k' || name[1] != 'v')
                return false;
        for (int i = 2; i < 10; i++)
                if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
                        return false;
        return true;
}

static int unknown_cb(const char *name, const LnlLink *l, void *arg) {
        UnknownCtx *c = arg;
        if (!streq(l->kind, "veth") || !is_host_pattern(name) || c->keep(name, c->arg))
                return 0;
        int r = lnl_link_retire(c->sk, name, LINK_REAP_GROUP);
        if (r < 0)
                return r;
        c->n++;
        return 0;
}

int link_retire_unknown(bool (*keep)(const char *name, void *arg), void *arg, KvErr *e) {
        _cleanup_nl_sock_ NlSock *sk = NULL, *dsk = NULL;
        int r = lnl_open_e(-1, &sk, e);
        if (r < 0)
                return r;
        r = lnl_open_e(-1, &dsk, e);
        if (r < 0)
                return r;
        UnknownCtx c = { .keep = keep, .arg = arg, .sk = sk };
        r = lnl_link_list(dsk, unknown_cb, &c);
        if (r < 0)
                return nl_error(e, dsk, r, "listing links");
        return (int) c.n;
}

int link_get_mac(int netns_fd, const char *name, uint8_t ret[6]) {
        _cleanup_nl_sock_ NlSock *sk = NULL;
        int r = lnl_open(netns_fd, &sk);
        if (r < 0)
                return r;
        LnlLink l;
        r = lnl_link_get(sk, name, &l);
        if (r < 0)
                return r;
        memcpy(ret, l.mac, 6);
        return 0;
}

int link_get_stats(int netns_fd, const char *name, struct rtnl_link_stats64 *ret) {
        _cleanup_nl_sock_ NlSock *sk = NULL;
        int r = lnl_open(netns_fd, &sk);
        if (r < 0)
                return r;
        return lnl_link_stats(sk, name, ret);
}

int link_neigh_learn(const char *ifname, const KvAddr *a, const uint8_t mac[6]) {
        _cleanup_nl_sock_ NlSock *sk = NULL;
        int r = lnl_open(-1, &sk);
        if (r < 0)
                return r;
        LnlLink l;
        r = lnl_link_get(sk, ifname, &l);
        if (r < 0)
                return r;
        return lnl_neigh_stale(sk, l.ifindex, a, mac);
}

int link_reap(int netns_fd, KvErr *e) {
        _cleanup_nl_sock_ NlSock *sk = NULL;
        int r = lnl_open_e(netns_fd, &sk, e);
        if (r < 0)
                return r;
        r = lnl_link_del_group(sk, LINK_REAP_GROUP);
        if (r < 0)
                return nl_error(e, sk, r, "deleting retired links%s", netns_fd >= 0 ? " in sandbox" : "");
        return 0;
}

/* Node side of a check: host end exists, is up, enslaved to the bridge. */
int link_check_host_port(NlSock *sk, const char *host_ifname, const char *bridge, KvErr *e) {
        LnlLink br, host;
        int r = lnl_link_get(sk, bridge, &br);
        if (r < 0)
                return nl_error(e, sk, r, "bridge '%s'", bridge);
        r = lnl_link_get(sk, host_ifname, &host);
        if (r < 0)
                return nl_error(e, sk, r, "host interface '%s'", host_ifname);
        if (!(host.flags & IFF_UP))
                return kverr_set(e, KV_ERR_INTERNAL, -ENETDOWN, "host interface '%s' is down", host_ifname);
        if (host.master != br.ifindex)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOLINK, "host interface '%s' is not enslaved to bridge '%s'",
                                 host_ifname, bridge);
        return 0;
}

int link_container_check(int netns_fd, const char *ifname, const char *host_ifname, const char *bridge,
                         const KvPrefix *addrs, size_t n_addrs, KvErr *e) {
        _cleanup_nl_sock_ NlSock *sk = NULL, *ssk = NULL;
        int r = lnl_open_pair(netns_fd, &sk, &ssk, e);
        if (r < 0)
                return r;
        r = link_check_host_port(sk, host_ifname, bridge, e);
        if (r < 0)
                return r;
        LnlLink sbx;
        r = lnl_link_get(ssk, ifname, &sbx);
        if (r < 0)
                return nl_error(e, ssk, r, "interface '%s' in sandbox", ifname);
        if (!(sbx.flags & IFF_UP))
                return kverr_set(e, KV_ERR_INTERNAL, -ENETDOWN, "interface '%s' in sandbox is down", ifname);
        for (size_t i = 0; i < n_addrs; i++)
                if (!lnl_addr_present(ssk, sbx.ifindex, &addrs[i])) {
                        char buf[KV_ADDR_STRLEN];
                        return kverr_set(e, KV_ERR_INTERNAL, -EADDRNOTAVAIL, "address %s missing on '%s' in sandbox",
                                         kv_prefix_fmt(&addrs[i], buf), ifname);
                }
        return 0;
}

bool link_exists(int netns_fd, const char *name) {
        _cleanup_nl_sock_ NlSock *sk = NULL;
        if (lnl_open(netns_fd, &sk) < 0)
                return false;
        LnlLink l;
        return lnl_link_get(sk, name, &l) >= 0;
}

static int write_sysctl(const char *path, const char *value) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        size_t n = strlen(value);
        ssize_t w = write(fd, value, n);
        if (w < 0)
                return negative_errno();
        return (size_t) w == n ? 0 : -EIO;
}

/* The sysctl's value as a number, or -1 when it cannot be read. */
static int read_sysctl_int(const char *path) {
        _cleanup_free_ char *v = NULL;
        if (read_file_max(path, 64, &v, NULL) < 0)
                return -1;
        char *end = NULL;
        long n = strtol(v, &end, 10);
        return end != v ? (int) n : -1;
}

int link_keep_router_advertisements(KvErr *e) {
        static const char dir[] = "/proc/sys/net/ipv6/conf";
        if (read_sysctl_int("/proc/sys/net/ipv6/conf/all/forwarding") != 0)
                return 0; /* on already (the node's own choice), or no IPv6 */
        DIR *d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : kverr_set_errno(e, KV_ERR_IO, -errno, "reading %s", dir);
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.' || streq(de->d_name, "all") || streq(de->d_name, "default"))
                        continue;
                char path[PATH_MAX];
                snprintf(path, sizeof path, "%s/%s/accept_ra", dir, de->d_name);
                if (read_sysctl_int(path) != 1)
                        continue;
                int r = write_sysctl(path, "2\n");
                if (r < 0) {
                        closedir(d);
                        return nl_error(e, NULL, r, "writing 2 to %s", path);
                }
                log_notice("IPv6 forwarding goes on: '%s' keeps accepting router advertisements (accept_ra 2)", de->d_name);
                n++;
        }
        closedir(d);
        return n;
}

int link_enable_forwarding_family(int family, KvErr *e) {
        const char *path = family == AF_INET6 ? "/proc/sys/net/ipv6/conf/all/forwarding" : "/proc/sys/net/ipv4/ip_forward";
        int r = write_sysctl(path, "1\n");
        if (r < 0)
                return nl_error(e, NULL, r, "writing 1 to %s", path);
        return 0;
}

int link_enable_forwarding(KvErr *e) {
        int r = link_enable_forwarding_family(AF_INET, e);
        return r < 0 ? r : link_enable_forwarding_family(AF_INET6, e);
}
