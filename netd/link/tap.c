/* SPDX-License-Identifier: Apache-2.0 */
/* VM attachments: persistent tap in the sandbox joined to a veth end (or a chained plugin's interface)
 * by tc clsact + u32 match-all + mirred egress redirect in both directions. */
#include "netd/link/link.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include "common/netns.h"
#include "netd/link/netlink.h"

int link_tap_create(int netns_fd, const char *name) {
        if (strlen(name) >= IFNAMSIZ)
                return -EINVAL;
        /* /dev/net/tun binds the device to the netns of the opener: open inside, ioctls from anywhere. */
        NetnsGuard g;
        int r = netns_enter(netns_fd, &g);
        if (r < 0)
                return r;
        int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (fd < 0)
                r = negative_errno();
        int q = netns_leave(&g);
        if (q < 0) {
                if (fd >= 0)
                        close(fd);
                return q;
        }
        if (r < 0)
                return r;
        _cleanup_close_ int tfd = fd;

        struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_TUN_EXCL };
        strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
        if (ioctl(tfd, TUNSETIFF, &ifr) < 0)
                return errno == EBUSY ? -EEXIST : negative_errno();
        if (ioctl(tfd, TUNSETOWNER, 0UL) < 0 || ioctl(tfd, TUNSETPERSIST, 1UL) < 0)
                return negative_errno(); /* the device goes away with the fd: it is not persistent yet */
        return 0;
}

/* Tap up with mtu, clsact on both, redirects both ways. */
static int tap_join(NlSock *ssk, const char *tap_name, int tap, const char *ifname, int ifindex,
                    uint32_t mtu, KvErr *e) {
        int r = lnl_link_set(ssk, tap, 1, mtu);
        if (r < 0)
                return nl_error(e, ssk, r, "setting tap '%s' up (mtu %u) in sandbox", tap_name, mtu);
        r = lnl_link_set(ssk, ifindex, 1, 0);
        if (r < 0)
                return nl_error(e, ssk, r, "setting '%s' up in sandbox", ifname);
        r = lnl_tc_clsact(ssk, tap);
        if (r < 0)
                return nl_error(e, ssk, r, "adding clsact qdisc to '%s' in sandbox", tap_name);
        r = lnl_tc_clsact(ssk, ifindex);
        if (r < 0)
                return nl_error(e, ssk, r, "adding clsact qdisc to '%s' in sandbox", ifname);
        r = lnl_tc_redirect(ssk, tap, ifindex);
        if (r < 0)
                return nl_error(e, ssk, r, "adding redirect filter '%s' -> '%s' in sandbox", tap_name, ifname);
        r = lnl_tc_redirect(ssk, ifindex, tap);
        if (r < 0)
                return nl_error(e, ssk, r, "adding redirect filter '%s' -> '%s' in sandbox", ifname, tap_name);
        return 0;
}

int link_vm_attach(int netns_fd, const char *tap_name, const char *sbx_ifname, const char *host_ifname,
                   const char *bridge, uint32_t mtu, const uint8_t guest_mac[6], LinkInfo *ret,
                   KvErr *e) {
        _cleanup_nl_sock_ NlSock *sk = NULL, *ssk = NULL;
        int br_ifindex;
        int r = link_attach_begin(netns_fd, bridge, &sk, &ssk, &br_ifindex, e);
        if (r < 0)
                return r;

        r = link_tap_create(netns_fd, tap_name);
        if (r < 0)
                return nl_error(e, NULL, r, "creating tap '%s' in sandbox", tap_name);

        bool veth_made = false;
        LnlLink tap, sbx, host;
        r = lnl_link_get(ssk, tap_name, &tap);
        if (r < 0) {
                nl_error(e, ssk, r, "looking up tap '%s' in sandbox", tap_name);
                goto undo;
        }
        /* The host end joins the bridge last, once the sandbox end is up (link_join_bridge). */
        r = lnl_veth_create(sk, host_ifname, 0, mtu, sbx_ifname, netns_fd, NULL);
        if (r < 0) {
                nl_error(e, sk, r, "creating veth '%s' -> '%s' in sandbox", host_ifname, sbx_ifname);
                goto undo;
        }
        veth_made = true;
        r = lnl_link_get(ssk, sbx_ifname, &sbx);
        if (r < 0) {
                nl_error(e, ssk, r, "looking up '%s' in sandbox", sbx_ifname);
                goto undo;
        }
        /* The tap and the sandbox veth end only carry the guest's frames (tc redirect): no IPv6 of their
         * own, so no link-local traffic from them on the node bridge. */
        if ((r = lnl_link_addrgen_none(ssk, tap_name)) < 0 || (r = lnl_link_addrgen_none(ssk, sbx_ifname)) < 0) {
                nl_error(e, ssk, r, "switching IPv6 address generation off on '%s'/'%s' in sandbox", tap_name,
                         sbx_ifname);
                goto undo;
        }
        r = tap_join(ssk, tap_name, tap.ifindex, sbx_ifname, sbx.ifindex, mtu, e);
        if (r < 0)
                goto undo;
        r = link_join_bridge(sk, host_ifname, br_ifindex, &host, e);
        if (r < 0)
                goto undo;

        link_info_set(ret, &host, tap.ifindex, guest_mac);
        return 0;

undo:
        if (veth_made)
                (void) lnl_link_del(sk, host_ifname);
        (void) lnl_link_del(ssk, tap_name);
        return r;
}

int link_vm_attach_chained(int netns_fd, const char *tap_name, const char *existing_ifname, uint32_t mtu,
                           LinkInfo *ret, KvPrefix *ret_addrs, size_t max_addrs, size_t *ret_n_addrs, KvErr *e) {
        char buf[KV_ADDR_STRLEN];
        _cleanup_nl_sock_ NlSock *ssk = NULL;
        LnlLink ex;
        int r = lnl_open_link(netns_fd, existing_ifname, &ssk, &ex, e);
        if (r < 0)
                return nl_error(e, ssk, r, "looking up '%s' in sandbox", existing_ifname);
        KvPrefix addrs[32];
        int n = lnl_addr_list(ssk, ex.ifindex, addrs, ELEMENTSOF(addrs));
        if (n < 0)
                return nl_error(e, ssk, n, "listing addresses of '%s' in sandbox", existing_ifname);
        if ((size_t) n > max_addrs)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOBUFS, "'%s' in sandbox has %d addresses, at most %zu expected",
                                 existing_ifname, n, max_addrs);

        r = link_tap_create(netns_fd, tap_name);
        if (r < 0)
                return nl_error(e, NULL, r, "creating tap '%s' in sandbox", tap_name);
        LnlLink tap;
        r = lnl_link_get(ssk, tap_name, &tap);
        if (r < 0) {
                nl_error(e, ssk, r, "looking up tap '%s' in sandbox", tap_name);
                goto undo;
        }
        int removed = 0;
        for (; removed < n; removed++) {
                r = lnl_addr_del(ssk, ex.ifindex, &addrs[removed]);
                if (r < 0) {
                        nl_error(e, ssk, r, "removing address %s from '%s' in sandbox",
                                 kv_prefix_fmt(&addrs[removed], buf), existing_ifname);
                        goto undo_addrs;
                }
        }
        r = tap_join(ssk, tap_name, tap.ifindex, existing_ifname, ex.ifindex, mtu, e);
        if (r < 0)
                goto undo_addrs;

        if (ret) {
                *ret = (LinkInfo) { .sandbox_ifindex = tap.ifindex };
                memcpy(ret->sandbox_mac, ex.mac, 6);
        }
        if (ret_addrs)
                memcpy(ret_addrs, addrs, (size_t) n * sizeof *addrs);
        if (ret_n_addrs)
                *ret_n_addrs = (size_t) n;
        return 0;

undo_addrs:
        for (int i = 0; i < removed; i++)
                (void) lnl_addr_add(ssk, ex.ifindex, &addrs[i]);
        /* A redirect filter left on existing_ifname would swallow its traffic once the tap is gone. */
        (void) lnl_tc_clsact_del(ssk, ex.ifindex);
undo:
        (void) lnl_link_del(ssk, tap_name);
        return r;
}

int link_vm_check(int netns_fd, const char *tap_name, const char *sbx_ifname, const char *host_ifname,
                  const char *bridge, KvErr *e) {
        _cleanup_nl_sock_ NlSock *ssk = NULL;
        int r = lnl_open_e(netns_fd, &ssk, e);
        if (r < 0)
                return r;
        if (host_ifname && bridge) {
                _cleanup_nl_sock_ NlSock *sk = NULL;
                r = lnl_open_e(-1, &sk, e);
                if (r < 0)
                        return r;
                r = link_check_host_port(sk, host_ifname, bridge, e);
                if (r < 0)
                        return r;
        }
        LnlLink tap, sbx;
        r = lnl_link_get(ssk, tap_name, &tap);
        if (r < 0)
                return nl_error(e, ssk, r, "tap '%s' in sandbox", tap_name);
        if (!streq(tap.kind, "tun"))
                return kverr_set(e, KV_ERR_INTERNAL, -EINVAL, "'%s' in sandbox is a '%s', not a tap", tap_name, tap.kind);
        r = lnl_link_get(ssk, sbx_ifname, &sbx);
        if (r < 0)
                return nl_error(e, ssk, r, "interface '%s' in sandbox", sbx_ifname);
        if (!(tap.flags & IFF_UP))
                return kverr_set(e, KV_ERR_INTERNAL, -ENETDOWN, "tap '%s' in sandbox is down", tap_name);
        if (!(sbx.flags & IFF_UP))
                return kverr_set(e, KV_ERR_INTERNAL, -ENETDOWN, "interface '%s' in sandbox is down", sbx_ifname);

        const struct {
                const char *from_name, *to_name;
                int from, to;
        } dirs[] = { { tap_name, sbx_ifname, tap.ifindex, sbx.ifindex }, { sbx_ifname, tap_name, sbx.ifindex, tap.ifindex } };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                r = lnl_tc_redirect_present(ssk, dirs[i].from, dirs[i].to);
                if (r < 0)
                        return nl_error(e, ssk, r, "listing tc filters on '%s' in sandbox", dirs[i].from_name);
                if (r == 0)
                        return kverr_set(e, KV_ERR_INTERNAL, -ENOENT, "redirect filter '%s' -> '%s' missing in sandbox",
                                         dirs[i].from_name, dirs[i].to_name);
        }
        return 0;
}
