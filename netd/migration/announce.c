/* SPDX-License-Identifier: Apache-2.0 */
/* Gratuitous ARP and unsolicited neighbour advertisements: after a migration the target node tells the
 * L2 segment (bridge and VXLAN FDBs, neighbour caches of peers) where the VM's MAC and addresses live now. */
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/icmp6.h>
#include <netinet/ip6.h>
#include <sys/socket.h>

#include "common/netns.h"
#include "netd/migration/announce.h"

#define ETH_HLEN_ 14

static void put_eth(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint16_t type) {
        memcpy(f, dst, 6);
        memcpy(f + 6, src, 6);
        f[12] = (uint8_t) (type >> 8);
        f[13] = (uint8_t) type;
}

/* ARP request "who has A? tell A" from mac: the form Linux and QEMU use; it updates every cache that has
 * an entry for A and every learning switch on the way. */
size_t announce_build_garp(uint8_t *f, size_t n, const uint8_t mac[6], const struct in_addr *a) {
        static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
        if (n < 60)
                return 0;
        memset(f, 0, 60);
        put_eth(f, bcast, mac, ETHERTYPE_ARP);
        uint8_t *p = f + ETH_HLEN_;
        p[0] = 0, p[1] = 1;       /* htype ethernet */
        p[2] = 0x08, p[3] = 0x00; /* ptype IPv4 */
        p[4] = 6, p[5] = 4;
        p[6] = 0, p[7] = 1; /* request */
        memcpy(p + 8, mac, 6);
        memcpy(p + 14, a, 4);
        memset(p + 18, 0, 6);
        memcpy(p + 24, a, 4);
        return 60; /* padded to the Ethernet minimum */
}

static uint16_t csum_fold(uint32_t s) {
        while (s >> 16)
                s = (s & 0xffff) + (s >> 16);
        return (uint16_t) ~s;
}

static uint32_t csum_add(uint32_t s, const uint8_t *p, size_t n) {
        for (size_t i = 0; i + 1 < n; i += 2)
                s += (uint32_t) (p[i] << 8 | p[i + 1]);
        if (n & 1)
                s += (uint32_t) (p[n - 1] << 8);
        return s;
}

/* Unsolicited NA (override set, not solicited) for A to all nodes, with the target link-layer option. */
size_t announce_build_una(uint8_t *f, size_t n, const uint8_t mac[6], const struct in6_addr *a) {
        static const uint8_t allnodes_mac[6] = { 0x33, 0x33, 0, 0, 0, 1 };
        const size_t icmp_len = 8 + 16 + 8;
        const size_t len = ETH_HLEN_ + 40 + icmp_len;
        if (n < len)
                return 0;
        memset(f, 0, len);
        put_eth(f, allnodes_mac, mac, ETHERTYPE_IPV6);
        uint8_t *ip = f + ETH_HLEN_;
        ip[0] = 0x60;
        ip[4] = 0;
        ip[5] = (uint8_t) icmp_len;
        ip[6] = IPPROTO_ICMPV6;
        ip[7] = 255;
        memcpy(ip + 8, a, 16);
        struct in6_addr all = { .s6_addr = { 0xff, 0x02, [15] = 1 } };
        memcpy(ip + 24, &all, 16);
        uint8_t *ic = ip + 40;
        ic[0] = ND_NEIGHBOR_ADVERT;
        ic[1] = 0;
        ic[4] = 0x20; /* O: override */
        memcpy(ic + 8, a, 16);
        ic[24] = ND_OPT_TARGET_LINKADDR;
        ic[25] = 1;
        memcpy(ic + 26, mac, 6);
        /* pseudo header: src, dst, length, next header */
        uint32_t s = 0;
        s = csum_add(s, ip + 8, 32);
        s += (uint32_t) icmp_len;
        s += IPPROTO_ICMPV6;
        s = csum_add(s, ic, icmp_len);
        uint16_t c = csum_fold(s);
        ic[2] = (uint8_t) (c >> 8);
        ic[3] = (uint8_t) c;
        return len;
}

int announce_send(int nsfd, const char *ifname, const uint8_t mac[6], const KvPrefix *addrs, size_t n_addrs,
                  unsigned rounds, int *ret_sock, KvErr *e) {
        NetnsGuard g = { .orig_fd = -1 };
        int r;
        if (ret_sock)
                *ret_sock = -1;
        if (nsfd >= 0) {
                r = netns_enter(nsfd, &g);
                if (r < 0)
                        return kverr_set_errno(e, KV_ERR_INTERNAL, r, "announce: cannot enter the sandbox");
        }
        int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
        int err = fd < 0 ? negative_errno() : 0;
        unsigned ifindex = if_nametoindex(ifname);
        int ierr = ifindex == 0 ? negative_errno() : 0;
        if (nsfd >= 0)
                (void) netns_leave(&g);
        _cleanup_close_ int sfd = fd;
        if (err < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, err, "announce: packet socket");
        if (ierr < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, ierr, "announce: no interface '%s'", ifname);

        unsigned sent = 0;
        for (unsigned round = 0; round < rounds; round++)
                for (size_t i = 0; i < n_addrs; i++) {
                        uint8_t frame[128];
                        size_t len = 0;
                        if (addrs[i].addr.family == AF_INET)
                                len = announce_build_garp(frame, sizeof frame, mac, &addrs[i].addr.in);
                        else if (addrs[i].addr.family == AF_INET6)
                                len = announce_build_una(frame, sizeof frame, mac, &addrs[i].addr.in6);
                        if (len == 0)
                                continue;
                        struct sockaddr_ll sll = { .sll_family = AF_PACKET,
                                                   .sll_ifindex = (int) ifindex,
                                                   .sll_halen = 6 };
                        memcpy(sll.sll_addr, frame, 6);
                        if (sendto(sfd, frame, len, 0, (struct sockaddr *) &sll, sizeof sll) < 0)
                                return kverr_set_errno(e, KV_ERR_INTERNAL, negative_errno(), "announce: send on '%s'",
                                                       ifname);
                        sent++;
                }
        if (ret_sock)
                *ret_sock = TAKE_FD(sfd);
        return (int) sent;
}
