/* SPDX-License-Identifier: Apache-2.0 */
/* The per-VM DHCP responder: one AF_PACKET socket on one interface (created inside the interface's
 * network namespace, where it stays), a classic BPF filter so only DHCPv4 / DHCPv6 / RS frames wake
 * us, and the pure builders of dhcp4.c / dhcp6.c. */
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "common/log.h"
#include "common/netns.h"
#include "common/tokenbucket.h"
#include "netd/dhcp/dhcp.h"

#define FRAME_MAX 2048
#define MAX_FRAMES_PER_WAKEUP 64
/* What one guest may ask of its responder: a booting guest sends a handful of DHCP, DHCPv6 and RS messages, a
 * renewing one a few an hour. Past this rate its frames are dropped (counted as limited) and cost netd's loop
 * nothing more. */
#define DHCP_RATE_PER_SEC 20.0
#define DHCP_BURST 40
#define DHCP_LIMIT_LOG_USEC (10 * 1000 * 1000)

struct DhcpServer {
        EventLoop *loop;
        EventSource *io;
        EventSource *ra_timer;
        int fd;
        int ifindex;
        char ifname[IF_NAMESIZE];
        uint8_t if_mac[6];
        DhcpLease lease; /* server_mac resolved (never all-zero) */
        struct {
                uint64_t discover, offer, request, ack, nak, release, decline, inform;
                uint64_t rs, ra, solicit, reply6, malformed, ignored;
        } n;
        uint64_t last_ack_usec;
        KvTokenBucket allowance; /* the guest's: DHCP_RATE_PER_SEC frames a second, up to DHCP_BURST at once */
        uint64_t limited, limit_log_usec;
        dhcp_ack_cb_t ack_cb;
        void *ack_userdata;
};

void dhcp_server_set_ack_cb(DhcpServer *s, dhcp_ack_cb_t cb, void *userdata) {
        s->ack_cb = cb;
        s->ack_userdata = userdata;
}

/* Accept: IPv4 UDP to port 67 (first fragment only), IPv6 UDP to 547, ICMPv6 type 133 (RS).
 * IPv6 extension headers are not followed (an RS or DHCPv6 message does not carry any). */
static const struct sock_filter dhcp_filter[] = {
        BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 12),                   /* 0: ethertype */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETHERTYPE_IP, 0, 7),  /* 1 */
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 23),                   /* 2: IPv4 protocol */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, 14),  /* 3 → drop */
        BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 20),                   /* 4: frag */
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x1fff, 12, 0),      /* 5 → drop */
        BPF_STMT(BPF_LDX | BPF_B | BPF_MSH, 14),                  /* 6: X = IHL*4 */
        BPF_STMT(BPF_LD | BPF_H | BPF_IND, 16),                   /* 7: UDP dport */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, DHCP4_SERVER_PORT, 8, 9), /* 8 → accept / drop */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ETHERTYPE_IPV6, 0, 8), /* 9 */
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 20),                   /* 10: next header */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_UDP, 0, 2),   /* 11 */
        BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 56),                   /* 12: UDP dport */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, DHCP6_SERVER_PORT, 3, 4), /* 13 */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, IPPROTO_ICMPV6, 0, 3), /* 14 */
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 54),                   /* 15: ICMPv6 type */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ICMP6_RS, 0, 1),      /* 16 */
        BPF_STMT(BPF_RET | BPF_K, 0x40000),                       /* 17: accept */
        BPF_STMT(BPF_RET | BPF_K, 0),                             /* 18: drop */
};

static int send_frame(DhcpServer *s, const uint8_t *frame, size_t len) {
        struct sockaddr_ll sll = {
                .sll_family = AF_PACKET,
                .sll_ifindex = s->ifindex,
                .sll_halen = 6,
        };
        memcpy(&sll.sll_protocol, frame + 12, 2);
        memcpy(sll.sll_addr, frame, 6);
        if (sendto(s->fd, frame, len, 0, (struct sockaddr *) &sll, sizeof sll) < 0)
                return negative_errno();
        return 0;
}

static int send_ra(DhcpServer *s, const uint8_t *dst_mac, const struct in6_addr *dst) {
        static const uint8_t all_nodes_mac[6] = { 0x33, 0x33, 0, 0, 0, 1 };
        struct in6_addr all_nodes = { .s6_addr = { 0xff, 0x02, [15] = 1 } };
        uint8_t ra[RA_MAX_LEN], frame[FRAME_MAX];
        size_t ra_len, flen;
        struct in6_addr src;
        dhcp6_link_local(s->lease.server_mac, &src);
        int r = icmp6_build_ra(&s->lease, s->lease.server_mac, ra, sizeof ra, &ra_len);
        if (r < 0)
                return r;
        r = frame_build_icmp6(s->lease.server_mac, dst_mac ? dst_mac : all_nodes_mac, &src, dst ? dst : &all_nodes,
                              ra, ra_len, frame, sizeof frame, &flen);
        if (r < 0)
                return r;
        r = send_frame(s, frame, flen);
        if (r >= 0)
                s->n.ra++;
        return r;
}

static void handle_dhcp4(DhcpServer *s, const FrameInfo *fi) {
        Dhcp4Msg req;
        if (dhcp4_parse(fi->payload, fi->payload_len, &req) < 0) {
                s->n.malformed++;
                return;
        }
        if (memcmp(req.chaddr, s->lease.mac, 6) != 0) {
                s->n.ignored++;
                return;
        }
        switch (req.msg_type) {
        case DHCP4_DISCOVER:
                s->n.discover++;
                break;
        case DHCP4_REQUEST:
                s->n.request++;
                break;
        case DHCP4_RELEASE:
                s->n.release++;
                break;
        case DHCP4_DECLINE:
                s->n.decline++;
                break;
        case DHCP4_INFORM:
                s->n.inform++;
                break;
        default:
                s->n.ignored++;
                return;
        }
        uint8_t reply[DHCP4_REPLY_MAX], frame[FRAME_MAX];
        size_t rlen, flen;
        int type = dhcp4_build_reply(&req, &s->lease, reply, sizeof reply, &rlen);
        if (type < 0)
                return;
        struct in_addr dst, src = s->lease.server4.family == AF_INET ? s->lease.server4.in : s->lease.gw4.in;
        uint8_t dst_mac[6];
        dhcp4_reply_dest(&req, &s->lease, type, &dst, dst_mac);
        if (frame_build_udp4(s->lease.server_mac, dst_mac, src, dst, DHCP4_SERVER_PORT, DHCP4_CLIENT_PORT, reply,
                             rlen, frame, sizeof frame, &flen) < 0)
                return;
        if (send_frame(s, frame, flen) < 0)
                return; /* the client retransmits */
        if (type == DHCP4_OFFER)
                s->n.offer++;
        else if (type == DHCP4_ACK) {
                s->n.ack++;
                s->last_ack_usec = now_usec();
                if (s->ack_cb)
                        s->ack_cb(s, &s->lease, s->ack_userdata);
        } else if (type == DHCP4_NAK)
                s->n.nak++;
}

static void handle_dhcp6(DhcpServer *s, const FrameInfo *fi) {
        Dhcp6Msg req;
        if (dhcp6_parse(fi->payload, fi->payload_len, &req) < 0) {
                s->n.malformed++;
                return;
        }
        if (req.msg_type == DHCP6_SOLICIT)
                s->n.solicit++;
        uint8_t reply[DHCP6_REPLY_MAX], frame[FRAME_MAX];
        size_t rlen, flen;
        int type = dhcp6_build_reply(&req, &s->lease, reply, sizeof reply, &rlen);
        if (type < 0) {
                s->n.ignored++;
                return;
        }
        struct in6_addr src;
        dhcp6_link_local(s->lease.server_mac, &src);
        if (frame_build_udp6(s->lease.server_mac, fi->src_mac, &src, &fi->src.in6, DHCP6_SERVER_PORT,
                             DHCP6_CLIENT_PORT, reply, rlen, frame, sizeof frame, &flen) < 0)
                return;
        if (send_frame(s, frame, flen) >= 0) {
                s->n.reply6++;
                if (type == DHCP6_REPLY && req.has_ia_na)
                        s->last_ack_usec = now_usec();
        }
}

static void handle_rs(DhcpServer *s, const FrameInfo *fi) {
        Icmp6Rs rs;
        if (fi->hop_limit != 255 || icmp6_parse_rs(fi->payload, fi->payload_len, &rs) < 0) {
                s->n.malformed++;
                return;
        }
        s->n.rs++;
        if (!s->lease.has_v6)
                return;
        /* solicited RA: to all nodes at L3, but straight to the guest's MAC */
        (void) send_ra(s, s->lease.mac, NULL);
}

/* One frame of the guest's allowance, or false (counted; said in the log at most every 10 s). */
static bool take_token(DhcpServer *s) {
        uint64_t now = now_usec();
        if (kv_token_bucket_take(&s->allowance, now))
                return true;
        s->limited++;
        if (now >= s->limit_log_usec) {
                log_warning("dhcp: '%s': the guest sends more than %.0f DHCP/RS frames a second: %llu dropped so far",
                            s->ifname, DHCP_RATE_PER_SEC, (unsigned long long) s->limited);
                s->limit_log_usec = now + DHCP_LIMIT_LOG_USEC;
        }
        return false;
}

static void handle_frame(DhcpServer *s, const uint8_t *buf, size_t len, bool csum_ready) {
        if (!take_token(s))
                return;
        FrameInfo fi;
        int r = frame_parse(buf, len, csum_ready, &fi);
        if (r < 0) {
                if (r == -EBADMSG)
                        s->n.malformed++;
                return;
        }
        if (memcmp(fi.src_mac, s->lease.mac, 6) != 0) {
                s->n.ignored++;
                return;
        }
        if (fi.family == AF_INET && fi.proto == IPPROTO_UDP && fi.dport == DHCP4_SERVER_PORT)
                handle_dhcp4(s, &fi);
        else if (fi.family == AF_INET6 && fi.proto == IPPROTO_UDP && fi.dport == DHCP6_SERVER_PORT)
                handle_dhcp6(s, &fi);
        else if (fi.family == AF_INET6 && fi.proto == IPPROTO_ICMPV6 && fi.payload[0] == ICMP6_RS)
                handle_rs(s, &fi);
}

static int on_io(EventSource *src, int fd, uint32_t revents, void *userdata) {
        DhcpServer *s = userdata;
        (void) src;
        (void) revents;
        for (int i = 0; i < MAX_FRAMES_PER_WAKEUP; i++) {
                uint8_t buf[FRAME_MAX];
                union {
                        struct cmsghdr h;
                        uint8_t b[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
                } ctrl;
                struct sockaddr_ll sll;
                struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf };
                struct msghdr mh = {
                        .msg_name = &sll,
                        .msg_namelen = sizeof sll,
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = &ctrl,
                        .msg_controllen = sizeof ctrl,
                };
                ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_TRUNC);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        break; /* EAGAIN, or an error we cannot act on: wait for the next wakeup */
                }
                if (sll.sll_pkttype == PACKET_OUTGOING)
                        continue; /* our own replies */
                if ((size_t) n > sizeof buf) {
                        s->n.malformed++;
                        continue;
                }
                bool csum_ready = true;
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                        if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA) {
                                struct tpacket_auxdata aux;
                                memcpy(&aux, CMSG_DATA(c), sizeof aux);
                                /* locally generated, checksum offloaded: not computed yet */
                                if (aux.tp_status & TP_STATUS_CSUMNOTREADY)
                                        csum_ready = false;
                        }
                handle_frame(s, buf, (size_t) n, csum_ready);
        }
        return 0;
}

static int on_ra_timer(EventSource *src, void *userdata) {
        DhcpServer *s = userdata;
        (void) src;
        if (s->lease.has_v6)
                (void) send_ra(s, NULL, NULL);
        return 0;
}

static int update_ra_timer(DhcpServer *s) {
        if (s->lease.has_v6 && !s->ra_timer)
                return event_add_timer(s->loop, 1, DHCP_RA_INTERVAL_USEC, on_ra_timer, s, &s->ra_timer);
        if (!s->lease.has_v6 && s->ra_timer) {
                event_source_free(s->ra_timer);
                s->ra_timer = NULL;
        }
        return 0;
}

static void resolve_lease(DhcpServer *s, const DhcpLease *lease) {
        s->lease = *lease;
        if (kv_mac_is_zero(s->lease.server_mac))
                memcpy(s->lease.server_mac, s->if_mac, 6);
}

/* Runs inside the target namespace: socket, filter, bind. */
static int open_socket(const char *ifname, int *ret_fd, int *ret_ifindex, uint8_t ret_mac[6], KvErr *e) {
        _cleanup_close_ int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return kverr_set_errno(e, KV_ERR_IO, negative_errno(), "dhcp: AF_PACKET socket");
        struct ifreq ifr = {};
        snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
        if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0)
                return kverr_set_errno(e, KV_ERR_INVALID_CONFIG, negative_errno(), "dhcp: interface '%s'", ifname);
        int ifindex = ifr.ifr_ifindex;
        if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
                return kverr_set_errno(e, KV_ERR_IO, negative_errno(), "dhcp: MAC of '%s'", ifname);
        uint8_t mac[6];
        memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);

        struct sock_fprog prog = { .len = ELEMENTSOF(dhcp_filter), .filter = (struct sock_filter *) dhcp_filter };
        if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) < 0)
                return kverr_set_errno(e, KV_ERR_IO, negative_errno(), "dhcp: attach filter on '%s'", ifname);
        int one = 1;
        if (setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one) < 0)
                return kverr_set_errno(e, KV_ERR_IO, negative_errno(), "dhcp: PACKET_AUXDATA on '%s'", ifname);
        /* bind with the protocol only now that the filter is in place: nothing unfiltered is queued */
        struct sockaddr_ll sll = {
                .sll_family = AF_PACKET,
                .sll_protocol = htons(ETH_P_ALL),
                .sll_ifindex = ifindex,
        };
        if (bind(fd, (struct sockaddr *) &sll, sizeof sll) < 0)
                return kverr_set_errno(e, KV_ERR_IO, negative_errno(), "dhcp: bind to '%s'", ifname);
        /* DHCPv6 / RS go to multicast groups; make sure a filtering NIC passes them */
        struct packet_mreq mr = { .mr_ifindex = ifindex, .mr_type = PACKET_MR_ALLMULTI };
        (void) setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr);

        *ret_fd = TAKE_FD(fd);
        *ret_ifindex = ifindex;
        memcpy(ret_mac, mac, 6);
        return 0;
}

int dhcp_server_new(EventLoop *loop, int netns_fd, const char *ifname, const DhcpLease *lease, DhcpServer **ret,
                    KvErr *e) {
        if (!loop || !ifname || !lease || !ret)
                return -EINVAL;
        if (strlen(ifname) == 0 || strlen(ifname) >= IF_NAMESIZE)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "dhcp: 'ifname' must be 1..%d characters, got '%s'",
                                 IF_NAMESIZE - 1, ifname);
        int r = dhcp_lease_validate(lease, e);
        if (r < 0)
                return r;

        _cleanup_(dhcp_server_freep) DhcpServer *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->loop = loop;
        kv_token_bucket_init(&s->allowance, DHCP_RATE_PER_SEC, DHCP_BURST, now_usec());
        s->fd = -1;
        snprintf(s->ifname, sizeof s->ifname, "%s", ifname);

        if (netns_fd >= 0) {
                NetnsGuard g = { .orig_fd = -1 };
                r = netns_enter(netns_fd, &g);
                if (r < 0)
                        return kverr_set_errno(e, KV_ERR_IO, r, "dhcp: enter network namespace for '%s'", ifname);
                r = open_socket(ifname, &s->fd, &s->ifindex, s->if_mac, e);
                int q = netns_leave(&g);
                if (q < 0) {
                        /* we cannot continue in the wrong namespace */
                        return kverr_set_errno(e, KV_ERR_INTERNAL, q, "dhcp: return to own network namespace");
                }
        } else
                r = open_socket(ifname, &s->fd, &s->ifindex, s->if_mac, e);
        if (r < 0)
                return r;

        resolve_lease(s, lease);
        r = event_add_io(loop, s->fd, EPOLLIN, on_io, s, &s->io);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "dhcp: watch socket of '%s'", ifname);
        r = update_ra_timer(s);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "dhcp: RA timer for '%s'", ifname);
        *ret = TAKE_PTR(s);
        return 0;
}

int dhcp_server_update(DhcpServer *s, const DhcpLease *lease) {
        if (!s || !lease)
                return -EINVAL;
        int r = dhcp_lease_validate(lease, NULL);
        if (r < 0)
                return r;
        bool had_v6 = s->lease.has_v6;
        resolve_lease(s, lease);
        r = update_ra_timer(s);
        if (r < 0)
                return r;
        /* announce a changed IPv6 configuration at once instead of at the next tick */
        if (s->lease.has_v6 && had_v6)
                (void) send_ra(s, NULL, NULL);
        return 0;
}

DhcpServer *dhcp_server_free(DhcpServer *s) {
        if (!s)
                return NULL;
        event_source_free(s->ra_timer);
        event_source_free(s->io);
        if (s->fd >= 0)
                close(s->fd);
        free(s);
        return NULL;
}

json_t *dhcp_server_stats(DhcpServer *s) {
        if (!s)
                return NULL;
        return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                         "ifname", s->ifname, "discover", (json_int_t) s->n.discover, "offer",
                         (json_int_t) s->n.offer, "request", (json_int_t) s->n.request, "ack", (json_int_t) s->n.ack,
                         "nak", (json_int_t) s->n.nak, "release", (json_int_t) s->n.release, "decline",
                         (json_int_t) s->n.decline, "inform", (json_int_t) s->n.inform, "rs", (json_int_t) s->n.rs,
                         "ra", (json_int_t) s->n.ra, "solicit", (json_int_t) s->n.solicit, "reply6",
                         (json_int_t) s->n.reply6, "malformed", (json_int_t) s->n.malformed, "ignored",
                         (json_int_t) s->n.ignored, "limited", (json_int_t) s->limited, "lastAckUsec",
                         (json_int_t) s->last_ack_usec);
}
