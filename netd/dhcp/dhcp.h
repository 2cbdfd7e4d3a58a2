/* SPDX-License-Identifier: Apache-2.0 */
/* Per-VM DHCP responder: DHCPv4 (RFC 2131/2132/3442), Router Advertisements (RFC 4861/8106) and
 * DHCPv6 (RFC 8415) from one AF_PACKET socket bound to one interface, possibly inside another
 * network namespace. Each responder serves exactly one static lease (the VM's IP claim).
 *
 * Layering: dhcp4.c and dhcp6.c are pure functions (parse / build, no I/O) so tests and the fuzzer
 * can drive them; dhcp-server.c is the socket + event loop glue. */
#pragma once

#include <jansson.h>
#include <netinet/in.h>

#include "common/addr.h"
#include "common/event.h"
#include "common/kverr.h"

#define DHCP_MAX_DNS 4
#define DHCP_MAX_ROUTES 16
#define DHCP_DEFAULT_LEASE_SECS 86400U
#define DHCP_RA_INTERVAL_USEC (10ULL * 1000000ULL)

typedef struct DhcpLease {
        uint8_t mac[6];
        bool has_v4;
        KvPrefix addr4;
        KvAddr gw4;
        KvAddr server4; /* address used as DHCP server id / source (usually gw4) */
        bool has_v6;
        KvPrefix addr6;
        KvAddr gw6;            /* router address announced; RA source is a link-local derived from server_mac */
        uint8_t server_mac[6]; /* MAC the replies come from; all-zero = the interface's own MAC */
        KvAddr dns[DHCP_MAX_DNS];
        size_t n_dns; /* IPv4 entries go to option 6, IPv6 entries to RDNSS / DHCPv6 option 23 */
        char domain[64];
        char hostname[64];
        struct {
                KvPrefix dst;
                KvAddr gw; /* unset or 0.0.0.0 = on-link */
        } routes[DHCP_MAX_ROUTES];
        size_t n_routes;     /* classless static routes (option 121); IPv6 entries are ignored */
        uint32_t mtu;        /* 0 = don't send option 26 / the RA MTU option */
        uint32_t lease_secs; /* 0 = DHCP_DEFAULT_LEASE_SECS */
        bool slaac;          /* addr6 is the EUI-64 address of mac in a /64: the RA lets the guest
                              * autoconfigure it (A=1), for guests without a DHCPv6 client */
} DhcpLease;

/* Checks a lease's combinations (families, lengths, MTU range); message names the field. */
int dhcp_lease_validate(const DhcpLease *lease, KvErr *e) _wur_;
/* Copies the lease's DNS servers of one family (AF_INET: 4 bytes each, AF_INET6: 16), in order, to buf, which
 * holds DHCP_LEASE_DNS_MAX bytes; returns the bytes written (0: none of that family). For option 6, DHCPv6
 * option 23 and the RA's RDNSS option. */
#define DHCP_LEASE_DNS_MAX (16 * DHCP_MAX_DNS)
size_t dhcp_lease_dns(const DhcpLease *lease, int family, uint8_t *buf);

/* ---------------------------------------------------------------- DHCPv4 (dhcp4.c) */

enum {
        DHCP4_DISCOVER = 1,
        DHCP4_OFFER = 2,
        DHCP4_REQUEST = 3,
        DHCP4_DECLINE = 4,
        DHCP4_ACK = 5,
        DHCP4_NAK = 6,
        DHCP4_RELEASE = 7,
        DHCP4_INFORM = 8,
};

#define DHCP4_SERVER_PORT 67
#define DHCP4_CLIENT_PORT 68
#define DHCP4_FLAG_BROADCAST 0x8000
#define DHCP4_MIN_LEN 240 /* 236-byte BOOTP header + magic cookie */
#define DHCP4_REPLY_MAX 1024

typedef struct Dhcp4Msg {
        uint8_t op, htype, hlen, hops;
        uint32_t xid; /* network byte order, echoed as is */
        uint16_t secs, flags;
        struct in_addr ciaddr, yiaddr, siaddr, giaddr;
        uint8_t chaddr[6];
        uint8_t msg_type; /* option 53 */
        bool has_requested_ip;
        struct in_addr requested_ip; /* option 50 */
        bool has_server_id;
        struct in_addr server_id; /* option 54 */
        uint16_t max_msg_size;    /* option 57, 0 = absent */
        uint8_t prl[255];         /* option 55 */
        size_t n_prl;
} Dhcp4Msg;

/* Parses a BOOTP/DHCP message (the UDP payload). -EBADMSG on anything malformed: short, htype != 1,
 * hlen != 6, bad cookie, an option running past the end, a bad length of a known option, no or bad
 * option 53. */
int dhcp4_parse(const uint8_t *pkt, size_t len, Dhcp4Msg *ret) _wur_;
/* Builds the answer to req for lease into buf: OFFER for DISCOVER, ACK for a REQUEST of our address
 * (selecting, init-reboot, renewing/rebinding) or an INFORM (no yiaddr, no lease time), NAK for a
 * REQUEST of another address. Returns the DHCP message type built (> 0), -ENOMSG when nothing is to
 * be sent (other chaddr, other server selected, RELEASE/DECLINE, no IPv4 in the lease), -ENOBUFS when
 * cap is too small. */
int dhcp4_build_reply(const Dhcp4Msg *req, const DhcpLease *lease, uint8_t *buf, size_t cap, size_t *ret_len) _wur_;
/* Where a reply of type reply_type to req goes: unicast to the client (its MAC and yiaddr / ciaddr)
 * unless it asked for broadcast, it is a NAK, or it has no address yet. */
void dhcp4_reply_dest(const Dhcp4Msg *req, const DhcpLease *lease, int reply_type, struct in_addr *ret_ip,
                      uint8_t ret_mac[6]);

/* ---------------------------------------------------------------- frames (dhcp4.c) */

typedef struct FrameInfo {
        uint8_t dst_mac[6], src_mac[6];
        int vlan; /* -1 = untagged */
        int family;
        KvAddr src, dst;
        uint8_t proto;                                  /* IPPROTO_UDP or IPPROTO_ICMPV6 */
        uint8_t hop_limit;                              /* IPv4 TTL or IPv6 hop limit */
        uint16_t sport, dport;                          /* UDP only */
        const uint8_t *payload;                         /* UDP payload or whole ICMPv6 message */
        size_t payload_len;
} FrameInfo;

/* Parses Ethernet (optionally one 802.1Q tag) / IPv4 (no fragments, header checksum) or IPv6 (no
 * extension headers) / UDP or ICMPv6, checking lengths and (when verify_csum) the L4 checksum.
 * -EBADMSG when malformed, -EPROTONOSUPPORT for other protocols. ret->payload points into frame. */
int frame_parse(const uint8_t *frame, size_t len, bool verify_csum, FrameInfo *ret) _wur_;
/* As frame_parse, but only UDP. */
int frame_parse_udp(const uint8_t *frame, size_t len, bool verify_csum, FrameInfo *ret) _wur_;

/* Ones'-complement sum helpers (RFC 1071); the result of inet_csum_finish is in network order. */
uint32_t inet_csum_add(uint32_t sum, const void *data, size_t len);
uint16_t inet_csum_finish(uint32_t sum);

int frame_build_udp4(const uint8_t src_mac[6], const uint8_t dst_mac[6], struct in_addr src, struct in_addr dst,
                     uint16_t sport, uint16_t dport, const uint8_t *payload, size_t plen, uint8_t *buf, size_t cap,
                     size_t *ret_len) _wur_;
int frame_build_udp6(const uint8_t src_mac[6], const uint8_t dst_mac[6], const struct in6_addr *src,
                     const struct in6_addr *dst, uint16_t sport, uint16_t dport, const uint8_t *payload, size_t plen,
                     uint8_t *buf, size_t cap, size_t *ret_len) _wur_;
/* ICMPv6 message (type/code/body; the checksum field is filled in here), hop limit 255. */
int frame_build_icmp6(const uint8_t src_mac[6], const uint8_t dst_mac[6], const struct in6_addr *src,
                      const struct in6_addr *dst, const uint8_t *msg, size_t mlen, uint8_t *buf, size_t cap,
                      size_t *ret_len) _wur_;

/* ---------------------------------------------------------------- IPv6 (dhcp6.c) */

enum {
        DHCP6_SOLICIT = 1,
        DHCP6_ADVERTISE = 2,
        DHCP6_REQUEST = 3,
        DHCP6_CONFIRM = 4,
        DHCP6_RENEW = 5,
        DHCP6_REBIND = 6,
        DHCP6_REPLY = 7,
        DHCP6_RELEASE = 8,
        DHCP6_DECLINE = 9,
        DHCP6_INFORMATION_REQUEST = 11,
};

#define DHCP6_CLIENT_PORT 546
#define DHCP6_SERVER_PORT 547
#define DHCP6_MAX_DUID 130
#define DHCP6_REPLY_MAX 1024
#define ICMP6_RS 133
#define ICMP6_RA 134
#define RA_ROUTER_LIFETIME 1800
#define RA_MAX_LEN 512

typedef struct Dhcp6Msg {
        uint8_t msg_type;
        uint8_t xid[3];
        uint8_t client_id[DHCP6_MAX_DUID];
        size_t client_id_len; /* 0 = absent */
        uint8_t server_id[DHCP6_MAX_DUID];
        size_t server_id_len; /* 0 = absent */
        bool has_ia_na;
        uint32_t ia_na_iaid;
        bool has_ia_addr; /* first IAADDR inside the IA_NA */
        struct in6_addr ia_addr;
        bool rapid_commit;
} Dhcp6Msg;

typedef struct Icmp6Rs {
        bool has_src_lladdr;
        uint8_t src_lladdr[6];
} Icmp6Rs;

/* fe80::/64 with the modified EUI-64 interface id of mac. */
void dhcp6_link_local(const uint8_t mac[6], struct in6_addr *ret);
/* DUID-LL (type 3, hardware type 1) of mac; returns its length (10). */
size_t dhcp6_server_duid(const uint8_t mac[6], uint8_t buf[static 10]);

/* Parses a DHCPv6 client message (UDP payload): -EBADMSG on option overruns, bad lengths, relay
 * messages or server-to-client types. */
int dhcp6_parse(const uint8_t *pkt, size_t len, Dhcp6Msg *ret) _wur_;
/* ADVERTISE for SOLICIT (REPLY when it asked for rapid commit), REPLY for REQUEST / RENEW / REBIND /
 * CONFIRM / RELEASE / DECLINE / INFORMATION-REQUEST. Returns the message type built, -ENOMSG when
 * nothing is to be sent (no IPv6 in the lease, another server's id, no client id). */
int dhcp6_build_reply(const Dhcp6Msg *req, const DhcpLease *lease, uint8_t *buf, size_t cap, size_t *ret_len) _wur_;

/* Parses a Router Solicitation (the whole ICMPv6 message): -EBADMSG if malformed or not an RS. */
int icmp6_parse_rs(const uint8_t *msg, size_t len, Icmp6Rs *ret) _wur_;
/* Builds the Router Advertisement ICMPv6 message (checksum left 0; frame_build_icmp6 fills it):
 * M and O flags, router lifetime RA_ROUTER_LIFETIME, source link-layer address, MTU, prefix
 * information for the /64 of addr6 with L=1 A=0, RDNSS. */
int icmp6_build_ra(const DhcpLease *lease, const uint8_t server_mac[6], uint8_t *buf, size_t cap,
                   size_t *ret_len) _wur_;

/* ---------------------------------------------------------------- the responder (dhcp-server.c) */

typedef struct DhcpServer DhcpServer;

/* Opens an AF_PACKET socket on ifname inside netns_fd (-1 = the current namespace) and serves lease
 * from loop. RAs are sent at start and every DHCP_RA_INTERVAL_USEC when the lease has IPv6. */
int dhcp_server_new(EventLoop *loop, int netns_fd, const char *ifname, const DhcpLease *lease, DhcpServer **ret,
                    KvErr *e) _wur_;
/* Replaces the lease (e.g. after the VM's addresses changed); -EINVAL if it does not validate. */
int dhcp_server_update(DhcpServer *s, const DhcpLease *lease) _wur_;
DhcpServer *dhcp_server_free(DhcpServer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(DhcpServer *, dhcp_server_free);
/* {"ifname","discover","offer","request","ack","nak","release","decline","inform","rs","ra",
 *  "solicit","reply6","malformed","ignored","lastAckUsec"} */
json_t *dhcp_server_stats(DhcpServer *s);
/* Called after a DHCPv4 ACK went out (the guest is configuring this address now). */
typedef void (*dhcp_ack_cb_t)(DhcpServer *s, const DhcpLease *lease, void *userdata);
void dhcp_server_set_ack_cb(DhcpServer *s, dhcp_ack_cb_t cb, void *userdata);
