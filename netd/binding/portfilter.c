/* SPDX-License-Identifier: Apache-2.0 */
/* Anti-spoofing on kvnet's bridge ports: the ruleset and its elements (portfilter.h). */
#include "netd/binding/portfilter.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter_bridge.h>
#include <libnftnl/expr.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/array.h"
#include "netd/nat/nftw.h"

#define PF_FAMILY NFPROTO_BRIDGE
#define PF_BATCH_INIT { .family = PF_FAMILY, .table = PORTFILTER_TABLE }

/* nft's datatype ids (so that `nft list` prints the keys); concatenations are id << 6 | id. */
#define NFT_TYPE_IPADDR 7
#define NFT_TYPE_IP6ADDR 8
#define NFT_TYPE_ETHERADDR 9
#define NFT_TYPE_ETHERTYPE 10
#define NFT_TYPE_IFNAME 41
#define NFT_CONCAT2(a, b) (((a) << 6) | (b))
#define NFT_CONCAT3(a, b, c) (((((a) << 6) | (b)) << 6) | (c))

/* Each field of a concatenation starts on a 32-bit register: the name takes four, what follows is at 04. */
#define REG_NAME NFT_REG_1
#define REG_NEXT NFT_REG32_04
#define REG_AFTER_MAC NFT_REG32_06 /* name . MAC (6 bytes, padded to 8) . address */

struct PortFilter {
        NftwSock *sk; /* NULL in render mode */
        bool render;
        bool skeleton_ok; /* the table is known to exist */
        char *text;
        size_t text_len;
        FILE *out;
};

/* ---- rules ---- */

static bool ex_etype(struct nftnl_rule *r, uint16_t etype) {
        uint16_t be = htons(etype);
        return nftw_ex_payload(r, NFT_PAYLOAD_LL_HEADER, 12, 2, NFT_REG_1) &&
               nftw_ex_cmp(r, NFT_REG_1, NFT_CMP_EQ, &be, sizeof be);
}

static bool ex_l4(struct nftnl_rule *r, uint8_t proto) {
        return nftw_ex_meta(r, NFT_META_L4PROTO, NFT_REG_1) && nftw_ex_cmp(r, NFT_REG_1, NFT_CMP_EQ, &proto, 1);
}

/* The transport header's byte at offset equals v. */
static bool ex_th_u8(struct nftnl_rule *r, uint32_t offset, uint8_t v) {
        return nftw_ex_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, offset, 1, NFT_REG_1) &&
               nftw_ex_cmp(r, NFT_REG_1, NFT_CMP_EQ, &v, 1);
}

static bool ex_th_be16(struct nftnl_rule *r, uint32_t offset, uint16_t v) {
        uint16_t be = htons(v);
        return nftw_ex_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, offset, 2, NFT_REG_1) &&
               nftw_ex_cmp(r, NFT_REG_1, NFT_CMP_EQ, &be, sizeof be);
}

/* iifname . <len bytes at base+offset> not in set */
static bool ex_port_field_not_in(struct nftnl_rule *r, uint32_t base, uint32_t offset, uint32_t len, const char *set) {
        return nftw_ex_meta(r, NFT_META_IIFNAME, REG_NAME) && nftw_ex_payload(r, base, offset, len, REG_NEXT) &&
               nftw_ex_lookup(r, REG_NAME, set, 0, true);
}

/* the port is one whose addresses are checked (leaves its name in REG_NAME) */
static bool ex_ipport(struct nftnl_rule *r) {
        return nftw_ex_meta(r, NFT_META_IIFNAME, REG_NAME) && nftw_ex_lookup(r, REG_NAME, "ipports", 0, false);
}

/* the len bytes at offset of the network header are all zero (0.0.0.0, ::) */
static bool ex_nh_zero(struct nftnl_rule *r, uint32_t offset, uint32_t len) {
        static const uint8_t zero16[16] = {};
        return nftw_ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, offset, len, NFT_REG_1) &&
               nftw_ex_cmp(r, NFT_REG_1, NFT_CMP_EQ, zero16, len);
}

/* Every drop counts, once in its rule's counter (what was dropped) and once in the port's element of @portdrops
 * (who sent it). */
static bool ex_drop(struct nftnl_rule *r) {
        return nftw_ex_meta(r, NFT_META_IIFNAME, REG_NAME) && nftw_ex_dynset_counter(r, REG_NAME, "portdrops") &&
               nftw_ex_counter(r) && nftw_ex_verdict(r, NF_DROP);
}

/* The rules, chain by chain. The base chain lets the bulk through first (TCP and UDP from the port's own MAC and
 * address: one lookup), then checks what every frame shares and sends each family to its own chain, so that a
 * frame is only compared with the rules of its kind. */
typedef enum {
        /* prerouting */
        PR_NOT_OURS, /* iifname != @ports accept */
        PR_FAST4_TCP,
        PR_FAST4_UDP,
        PR_FAST6_TCP,
        PR_FAST6_UDP,
        PR_MAC,      /* ether saddr */
        PR_ETYPE,    /* ether type */
        PR_TO_IP4,
        PR_TO_ARP,
        PR_TO_IP6,
        /* ip4 */
        PR_DHCP4_SERVER,
        PR_REDIRECT4,
        PR_DHCP4_LOCAL,
        PR_IP4_DHCP,
        PR_IP4_SADDR,
        /* arp */
        PR_ARP_FORMAT,
        PR_ARP_SHA,
        PR_ARP_PROBE,
        PR_ARP_SPA,
        /* ip6 */
        PR_DHCP6_SERVER,
        PR_DHCP6_LOCAL,
        PR_TO_ICMP6,
        PR_IP6_SADDR,
        /* icmp6 */
        PR_RA,
        PR_REDIRECT6,
        PR_ND_NS_LL,
        PR_ND_NA_LL,
        PR_ND_RS_LL,
        PR_IP6_DAD,
        PR_IP6_MLD,
        PR_ND_NS_LONG,
        PR_ND_NA_LONG,
        PR_ND_RS_LONG,
        PR_ND_NA_TARGET,
        _PR_MAX,
} PfRule;

static const struct {
        const char *chain, *name;
} pf_rules[_PR_MAX] = {
        [PR_NOT_OURS] = { "prerouting", "not a kvnet port" },
        [PR_FAST4_TCP] = { "prerouting", "TCP from the port's MAC and IPv4 address" },
        [PR_FAST4_UDP] = { "prerouting", "UDP from the port's MAC and IPv4 address" },
        [PR_FAST6_TCP] = { "prerouting", "TCP from the port's MAC and IPv6 address" },
        [PR_FAST6_UDP] = { "prerouting", "UDP from the port's MAC and IPv6 address" },
        [PR_MAC] = { "prerouting", "source MAC" },
        [PR_ETYPE] = { "prerouting", "ether type" },
        [PR_TO_IP4] = { "prerouting", "to ip4" },
        [PR_TO_ARP] = { "prerouting", "to arp" },
        [PR_TO_IP6] = { "prerouting", "to ip6" },
        [PR_DHCP4_SERVER] = { "ip4", "DHCP server" },
        [PR_REDIRECT4] = { "ip4", "ICMP redirect" },
        [PR_DHCP4_LOCAL] = { "ip4", "DHCP client answered by netd" },
        [PR_IP4_DHCP] = { "ip4", "DHCP discovery" },
        [PR_IP4_SADDR] = { "ip4", "IPv4 source" },
        [PR_ARP_FORMAT] = { "arp", "ARP format" },
        [PR_ARP_SHA] = { "arp", "ARP sender MAC" },
        [PR_ARP_PROBE] = { "arp", "ARP probe" },
        [PR_ARP_SPA] = { "arp", "ARP sender IP" },
        [PR_DHCP6_SERVER] = { "ip6", "DHCPv6 server" },
        [PR_DHCP6_LOCAL] = { "ip6", "DHCPv6 client answered by netd" },
        [PR_TO_ICMP6] = { "ip6", "to icmp6" },
        [PR_IP6_SADDR] = { "ip6", "IPv6 source" },
        [PR_RA] = { "icmp6", "router advertisement" },
        [PR_REDIRECT6] = { "icmp6", "ICMPv6 redirect" },
        [PR_ND_NS_LL] = { "icmp6", "NS source link-layer address" },
        [PR_ND_NA_LL] = { "icmp6", "NA target link-layer address" },
        [PR_ND_RS_LL] = { "icmp6", "RS source link-layer address" },
        [PR_IP6_DAD] = { "icmp6", "duplicate address detection" },
        [PR_IP6_MLD] = { "icmp6", "MLD report without an address" },
        [PR_ND_NS_LONG] = { "icmp6", "NS with more than one option" },
        [PR_ND_NA_LONG] = { "icmp6", "NA with more than one option" },
        [PR_ND_RS_LONG] = { "icmp6", "RS with more than one option" },
        [PR_ND_NA_TARGET] = { "icmp6", "NA target" },
};

static const char *const pf_chains[] = { "ip4", "arp", "ip6", "icmp6" };

static struct nftnl_rule *pf_build_rule(const NftwBatch *bt, PfRule kind) {
        struct nftnl_rule *r = nftw_rule_new(bt, pf_rules[kind].chain);
        if (!r)
                return NULL;
        static const uint8_t arp_eth_ip4[6] = { 0x00, 0x01, 0x08, 0x00, 0x06, 0x04 }; /* htype ptype hlen plen */
        bool ok;
        switch (kind) {
        case PR_NOT_OURS:
                ok = nftw_ex_meta(r, NFT_META_IIFNAME, REG_NAME) && nftw_ex_lookup(r, REG_NAME, "ports", 0, true) &&
                     nftw_ex_verdict(r, NF_ACCEPT);
                break;
        case PR_FAST4_TCP:
        case PR_FAST4_UDP:
        case PR_FAST6_TCP:
        case PR_FAST6_UDP: {
                /* the bulk of the traffic, in one lookup: TCP, or UDP but not DHCP(v6) (server or client), from
                 * the port's own MAC and address (ports whose addresses kvnet knows) */
                bool v6 = kind == PR_FAST6_TCP || kind == PR_FAST6_UDP;
                bool udp = kind == PR_FAST4_UDP || kind == PR_FAST6_UDP;
                uint16_t server = htons(v6 ? 547 : 67);
                ok = ex_etype(r, v6 ? ETH_P_IPV6 : ETH_P_IP) && ex_l4(r, udp ? IPPROTO_UDP : IPPROTO_TCP);
                if (udp) /* neither from nor to a DHCP(v6) server's port */
                        ok = ok && nftw_ex_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2, NFT_REG_1) &&
                             nftw_ex_cmp(r, NFT_REG_1, NFT_CMP_NEQ, &server, sizeof server) &&
                             nftw_ex_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1) &&
                             nftw_ex_cmp(r, NFT_REG_1, NFT_CMP_NEQ, &server, sizeof server);
                ok = ok && nftw_ex_meta(r, NFT_META_IIFNAME, REG_NAME) &&
                     nftw_ex_payload(r, NFT_PAYLOAD_LL_HEADER, 6, 6, REG_NEXT) &&
                     nftw_ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 8 : 12, v6 ? 16 : 4, REG_AFTER_MAC) &&
                     nftw_ex_lookup(r, REG_NAME, v6 ? "src6" : "src4", 0, false) && nftw_ex_verdict(r, NF_ACCEPT);
                break;
        }
        case PR_MAC:
                ok = ex_port_field_not_in(r, NFT_PAYLOAD_LL_HEADER, 6, 6, "macs") && ex_drop(r);
                break;
        case PR_ETYPE:
                /* loaded from the frame, so an offloaded 802.1Q tag reads as 0x8100 too */
                ok = nftw_ex_payload(r, NFT_PAYLOAD_LL_HEADER, 12, 2, NFT_REG_1) &&
                     nftw_ex_lookup(r, NFT_REG_1, "etypes", 0, true) && ex_drop(r);
                break;
        case PR_TO_IP4:
                ok = ex_etype(r, ETH_P_IP) && nftw_ex_jump(r, "ip4");
                break;
        case PR_TO_ARP:
                ok = ex_etype(r, ETH_P_ARP) && nftw_ex_jump(r, "arp");
                break;
        case PR_TO_IP6:
                ok = ex_etype(r, ETH_P_IPV6) && nftw_ex_jump(r, "ip6");
                break;
        case PR_DHCP4_SERVER:
                ok = ex_l4(r, IPPROTO_UDP) && ex_th_be16(r, 0, 67) && ex_drop(r);
                break;
        case PR_REDIRECT4:
                ok = ex_l4(r, IPPROTO_ICMP) && ex_th_u8(r, 0, 5) && ex_drop(r);
                break;
        case PR_DHCP4_LOCAL:
        case PR_DHCP6_LOCAL:
                /* a guest whose DHCP netd answers on its tap: its client messages (a flood too) stay off the
                 * bridge instead of being copied to every port */
                ok = ex_l4(r, IPPROTO_UDP) && ex_th_be16(r, 2, kind == PR_DHCP4_LOCAL ? 67 : 547) &&
                     nftw_ex_meta(r, NFT_META_IIFNAME, REG_NAME) && nftw_ex_lookup(r, REG_NAME, "dhcpports", 0, false) &&
                     ex_drop(r);
                break;
        case PR_IP4_DHCP:
                ok = ex_nh_zero(r, 12, 4) && ex_l4(r, IPPROTO_UDP) && ex_th_be16(r, 2, 67) &&
                     nftw_ex_verdict(r, NF_ACCEPT);
                break;
        case PR_IP4_SADDR:
                ok = ex_ipport(r) && ex_port_field_not_in(r, NFT_PAYLOAD_NETWORK_HEADER, 12, 4, "ip4") && ex_drop(r);
                break;
        case PR_ARP_FORMAT:
                ok = nftw_ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 0, 6, NFT_REG_1) &&
                     nftw_ex_cmp(r, NFT_REG_1, NFT_CMP_NEQ, arp_eth_ip4, sizeof arp_eth_ip4) && ex_drop(r);
                break;
        case PR_ARP_SHA:
                ok = ex_port_field_not_in(r, NFT_PAYLOAD_NETWORK_HEADER, 8, 6, "macs") && ex_drop(r);
                break;
        case PR_ARP_PROBE:
                ok = ex_nh_zero(r, 14, 4) && nftw_ex_verdict(r, NF_ACCEPT);
                break;
        case PR_ARP_SPA:
                ok = ex_ipport(r) && ex_port_field_not_in(r, NFT_PAYLOAD_NETWORK_HEADER, 14, 4, "ip4") && ex_drop(r);
                break;
        case PR_DHCP6_SERVER:
                ok = ex_l4(r, IPPROTO_UDP) && ex_th_be16(r, 0, 547) && ex_drop(r);
                break;
        case PR_TO_ICMP6:
                ok = ex_l4(r, IPPROTO_ICMPV6) && nftw_ex_jump(r, "icmp6");
                break;
        case PR_IP6_SADDR:
                ok = ex_ipport(r) && ex_port_field_not_in(r, NFT_PAYLOAD_NETWORK_HEADER, 8, 16, "ip6") && ex_drop(r);
                break;
        /* icmp6: reached for ICMPv6 only (the jump checked the protocol) */
        case PR_RA:
                ok = ex_th_u8(r, 0, 134) && ex_drop(r);
                break;
        case PR_REDIRECT6:
                ok = ex_th_u8(r, 0, 137) && ex_drop(r);
                break;
        case PR_ND_NS_LL: /* neighbour solicitation: the source link-layer option (type 1) after the target */
                ok = ex_th_u8(r, 0, 135) && ex_th_u8(r, 24, 1) &&
                     ex_port_field_not_in(r, NFT_PAYLOAD_TRANSPORT_HEADER, 26, 6, "macs") && ex_drop(r);
                break;
        case PR_ND_NA_LL: /* neighbour advertisement: the target link-layer option (type 2) */
                ok = ex_th_u8(r, 0, 136) && ex_th_u8(r, 24, 2) &&
                     ex_port_field_not_in(r, NFT_PAYLOAD_TRANSPORT_HEADER, 26, 6, "macs") && ex_drop(r);
                break;
        case PR_ND_RS_LL: /* router solicitation: its source link-layer option right after the header */
                ok = ex_th_u8(r, 0, 133) && ex_th_u8(r, 8, 1) &&
                     ex_port_field_not_in(r, NFT_PAYLOAD_TRANSPORT_HEADER, 10, 6, "macs") && ex_drop(r);
                break;
        case PR_IP6_DAD:
        case PR_IP6_MLD:
                ok = ex_nh_zero(r, 8, 16) && ex_th_u8(r, 0, kind == PR_IP6_DAD ? 135 : 143) &&
                     nftw_ex_verdict(r, NF_ACCEPT);
                break;
        case PR_ND_NS_LONG:
        case PR_ND_NA_LONG:
        case PR_ND_RS_LONG: {
                /* Only the first option is looked at (above), so a message with more could hide a link-layer
                 * address behind another option: the guest's ND messages carry one option at most (a DAD probe's
                 * nonce was accepted before this). The IPv6 payload length: the message plus one 8-byte option. */
                uint8_t type = kind == PR_ND_NS_LONG ? 135 : kind == PR_ND_NA_LONG ? 136 : 133;
                uint16_t max = htons(kind == PR_ND_RS_LONG ? 8 + 8 : 24 + 8);
                ok = ex_th_u8(r, 0, type) && nftw_ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 4, 2, NFT_REG_1) &&
                     nftw_ex_cmp(r, NFT_REG_1, NFT_CMP_GT, &max, sizeof max) && ex_drop(r);
                break;
        }
        case PR_ND_NA_TARGET:
                ok = ex_th_u8(r, 0, 136) && ex_ipport(r) &&
                     ex_port_field_not_in(r, NFT_PAYLOAD_TRANSPORT_HEADER, 8, 16, "ip6") && ex_drop(r);
                break;
        default:
                ok = false;
        }
        if (!ok) {
                nftnl_rule_free(r);
                return NULL;
        }
        return r;
}

static int pf_push_skeleton(NftwBatch *bt) {
        int r = nftw_table(bt, true, "creating table bridge " PORTFILTER_TABLE);
        if (r < 0)
                return r;
        static const NftwSetSpec sets[] = {
                { "ports", 0, NFT_TYPE_IFNAME, IFNAMSIZ, 0, 0, true },
                { "ipports", 0, NFT_TYPE_IFNAME, IFNAMSIZ, 0, 0, true },
                { "dhcpports", 0, NFT_TYPE_IFNAME, IFNAMSIZ, 0, 0, true },
                { "macs", 0, NFT_CONCAT2(NFT_TYPE_IFNAME, NFT_TYPE_ETHERADDR), IFNAMSIZ + 8, 0, 0 },
                { "ip4", 0, NFT_CONCAT2(NFT_TYPE_IFNAME, NFT_TYPE_IPADDR), IFNAMSIZ + 4, 0, 0 },
                { "ip6", 0, NFT_CONCAT2(NFT_TYPE_IFNAME, NFT_TYPE_IP6ADDR), IFNAMSIZ + 16, 0, 0 },
                { "etypes", 0, NFT_TYPE_ETHERTYPE, 2, 0, 0 },
                { "src4", 0, NFT_CONCAT3(NFT_TYPE_IFNAME, NFT_TYPE_ETHERADDR, NFT_TYPE_IPADDR), IFNAMSIZ + 8 + 4, 0,
                  0 },
                { "src6", 0, NFT_CONCAT3(NFT_TYPE_IFNAME, NFT_TYPE_ETHERADDR, NFT_TYPE_IP6ADDR), IFNAMSIZ + 8 + 16, 0,
                  0 },
                /* filled by the drop rules themselves: a counter per port that dropped something */
                { "portdrops", NFT_SET_EVAL, NFT_TYPE_IFNAME, IFNAMSIZ, 0, 0, true, PORTFILTER_MAX_DROP_PORTS },
        };
        for (size_t i = 0; i < ELEMENTSOF(sets); i++) {
                r = nftw_set(bt, &sets[i], (uint32_t) i + 1, "creating set %s", sets[i].name);
                if (r < 0)
                        return r;
        }
        static const uint16_t etypes[] = { ETH_P_IP, ETH_P_ARP, ETH_P_IPV6, ETH_P_RARP };
        for (size_t i = 0; i < ELEMENTSOF(etypes); i++) {
                uint16_t be = htons(etypes[i]);
                NftwElem el = { .key = &be, .klen = 2 };
                r = nftw_elem(bt, true, "etypes", &el, "adding ether type 0x%04x to set etypes", etypes[i]);
                if (r < 0)
                        return r;
        }
        /* the chains jumped to first, so the base chain's jumps find them */
        for (size_t i = 0; i < ELEMENTSOF(pf_chains); i++) {
                r = nftw_chain_regular(bt, pf_chains[i], "creating chain %s", pf_chains[i]);
                if (r < 0)
                        return r;
        }
        r = nftw_chain(bt, "prerouting", "filter", NF_BR_PRE_ROUTING, NF_BR_PRI_FILTER_BRIDGED,
                       "creating chain prerouting");
        if (r < 0)
                return r;
        for (int k = 0; k < _PR_MAX; k++) {
                r = nftw_rule(bt, pf_build_rule(bt, (PfRule) k), "adding rule '%s' to chain %s", pf_rules[k].name,
                              pf_rules[k].chain);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---- elements ---- */

void portfilter_link_local(const uint8_t mac[6], KvAddr *ret) {
        *ret = (KvAddr){ .family = AF_INET6 };
        ret->bytes[0] = 0xfe;
        ret->bytes[1] = 0x80;
        ret->bytes[8] = mac[0] ^ 0x02;
        ret->bytes[9] = mac[1];
        ret->bytes[10] = mac[2];
        ret->bytes[11] = 0xff;
        ret->bytes[12] = 0xfe;
        ret->bytes[13] = mac[3];
        ret->bytes[14] = mac[4];
        ret->bytes[15] = mac[5];
}

/* an interface name as the kernel compares it: NUL-padded to IFNAMSIZ (the key starts zeroed) */
static void put_name(uint8_t *key, const char *ifname) {
        size_t n = strnlen(ifname, IFNAMSIZ - 1);
        memcpy(key, ifname, n);
}

typedef struct PfElem {
        const char *set;
        uint8_t key[IFNAMSIZ + 8 + 16];
        uint32_t klen;
        char what[64];
} PfElem;

#define PF_MAX_ELEMS (4 + 2 * (PORTFILTER_MAX_ADDRS + 1))

/* The elements of a port: at most PF_MAX_ELEMS. */
static size_t port_elems(const PortFilterPort *p, PfElem out[static PF_MAX_ELEMS]) {
        size_t n = 0;
        char b[KV_ADDR_STRLEN];
        PfElem *el = &out[n++];
        *el = (PfElem){ .set = "ports", .klen = IFNAMSIZ };
        put_name(el->key, p->ifname);
        snprintf(el->what, sizeof el->what, "port %s", p->ifname);

        el = &out[n++];
        *el = (PfElem){ .set = "macs", .klen = IFNAMSIZ + 8 };
        put_name(el->key, p->ifname);
        memcpy(el->key + IFNAMSIZ, p->mac, 6);
        snprintf(el->what, sizeof el->what, "%s MAC %s", p->ifname, kv_mac_fmt(p->mac, b));
        if (p->dhcp_local) {
                el = &out[n++];
                *el = (PfElem){ .set = "dhcpports", .klen = IFNAMSIZ };
                put_name(el->key, p->ifname);
                snprintf(el->what, sizeof el->what, "port %s (DHCP answered by netd)", p->ifname);
        }
        if (!p->check_ips)
                return n;

        el = &out[n++];
        *el = (PfElem){ .set = "ipports", .klen = IFNAMSIZ };
        put_name(el->key, p->ifname);
        snprintf(el->what, sizeof el->what, "port %s", p->ifname);
        KvAddr ll;
        portfilter_link_local(p->mac, &ll);
        for (size_t i = 0; i <= p->n_addrs && i <= PORTFILTER_MAX_ADDRS; i++) {
                const KvAddr *a = i < p->n_addrs ? &p->addrs[i] : &ll;
                if (a->family != AF_INET && a->family != AF_INET6)
                        continue;
                size_t alen = kv_addr_len(a->family);
                el = &out[n++];
                *el = (PfElem){ .set = a->family == AF_INET ? "ip4" : "ip6", .klen = (uint32_t) (IFNAMSIZ + alen) };
                put_name(el->key, p->ifname);
                memcpy(el->key + IFNAMSIZ, a->bytes, alen);
                snprintf(el->what, sizeof el->what, "%s address %s", p->ifname, kv_addr_fmt(a, b));
                /* the fast path's key: name . MAC . address */
                el = &out[n++];
                *el = (PfElem){ .set = a->family == AF_INET ? "src4" : "src6",
                                .klen = (uint32_t) (IFNAMSIZ + 8 + alen) };
                put_name(el->key, p->ifname);
                memcpy(el->key + IFNAMSIZ, p->mac, 6);
                memcpy(el->key + IFNAMSIZ + 8, a->bytes, alen);
                snprintf(el->what, sizeof el->what, "%s source %s", p->ifname, kv_addr_fmt(a, b));
        }
        return n;
}

static int pf_push_elem(NftwBatch *bt, const PfElem *el, bool add) {
        NftwElem x = { .key = el->key, .klen = el->klen };
        return nftw_elem(bt, add, el->set, &x, "%s %s %s set %s", add ? "adding" : "removing", el->what,
                         add ? "to" : "from", el->set);
}

/* ---- sending ---- */

static int pf_commit(PortFilter *pf, const NftwOp *ops, size_t n, NftwFailure *f) {
        *f = (NftwFailure){ .op = -1 };
        if (n == 0)
                return 0;
        if (pf->render)
                return nftw_render(ops, n, pf->out);
        return nftw_commit(pf->sk, PF_FAMILY, ops, n, f);
}

static int pf_err(KvErr *e, int r, const NftwOp *ops, const NftwFailure *f) {
        return nftw_error(e, KV_ERR_INTERNAL, r, "anti-spoofing", ops, f);
}

static int pf_commit_batch(PortFilter *pf, NftwBatch *bt, KvErr *e) {
        NftwFailure f;
        int r = pf_commit(pf, bt->ops, bt->n, &f);
        if (r < 0)
                return pf_err(e, r, bt->ops, &f);
        return 0;
}

/* ---- ops ---- */

int portfilter_new(bool render, PortFilter **ret) {
        PortFilter *pf = calloc(1, sizeof *pf);
        if (!pf)
                return -ENOMEM;
        pf->render = render;
        int r = 0;
        if (render) {
                pf->out = open_memstream(&pf->text, &pf->text_len);
                if (!pf->out)
                        r = -ENOMEM;
        } else
                r = nftw_sock_open(-1, &pf->sk);
        if (r < 0) {
                free(pf);
                return r;
        }
        *ret = pf;
        return 0;
}

PortFilter *portfilter_free(PortFilter *pf) {
        if (!pf)
                return NULL;
        nftw_sock_free(pf->sk);
        if (pf->out)
                fclose(pf->out);
        free(pf->text);
        free(pf);
        return NULL;
}

char *portfilter_take_rendered(PortFilter *pf) {
        if (!pf || !pf->out)
                return strdup("");
        fflush(pf->out);
        char *s = strdup(pf->text ? pf->text : "");
        fclose(pf->out);
        free(pf->text);
        pf->text = NULL;
        pf->text_len = 0;
        pf->out = open_memstream(&pf->text, &pf->text_len);
        return s;
}

static int push_port(NftwBatch *bt, const PortFilterPort *p, bool add) {
        PfElem els[PF_MAX_ELEMS];
        size_t n = port_elems(p, els);
        int r = 0;
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = pf_push_elem(bt, &els[i], add);
        return r;
}

/* Sends a batch that creates the table if needed (r: how building it went); the table exists afterwards. */
static int pf_send_adds(PortFilter *pf, NftwBatch *bt, int r, KvErr *e) {
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "anti-spoofing: building batch");
        r = pf_commit_batch(pf, bt, e);
        if (r < 0)
                return r;
        pf->skeleton_ok = true;
        return 0;
}

int portfilter_sync(PortFilter *pf, const PortFilterPort *ports, size_t n, KvErr *e) {
        _cleanup_(nftw_batch_done) NftwBatch bt = PF_BATCH_INIT;
        /* add + delete + add: the table replaced whether or not it existed, in one transaction */
        int r = nftw_table(&bt, true, "creating table");
        if (r >= 0)
                r = nftw_table(&bt, false, "flushing table bridge " PORTFILTER_TABLE);
        if (r >= 0)
                r = pf_push_skeleton(&bt);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = push_port(&bt, &ports[i], true);
        return pf_send_adds(pf, &bt, r, e);
}

static int pf_add_once(PortFilter *pf, const PortFilterPort *p, KvErr *e) {
        _cleanup_(nftw_batch_done) NftwBatch bt = PF_BATCH_INIT;
        int r;
        if (!pf->skeleton_ok && !pf->render) {
                r = nftw_table_get(pf->sk, PF_FAMILY, PORTFILTER_TABLE);
                if (r < 0 && r != -ENOENT)
                        return kverr_set(e, KV_ERR_INTERNAL, r, "anti-spoofing: looking up table bridge %s: %s",
                                         PORTFILTER_TABLE, strerror(-r));
                if (r == -ENOENT && (r = pf_push_skeleton(&bt)) < 0)
                        return kverr_set_errno(e, KV_ERR_INTERNAL, r, "anti-spoofing: building batch");
        } else if (!pf->skeleton_ok && (r = pf_push_skeleton(&bt)) < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "anti-spoofing: building batch");
        return pf_send_adds(pf, &bt, push_port(&bt, p, true), e);
}

int portfilter_add(PortFilter *pf, const PortFilterPort *p, KvErr *e) {
        bool assumed = pf->skeleton_ok;
        KvErr e2 = {};
        int r = pf_add_once(pf, p, &e2);
        if (r == -ENOENT && assumed) {
                /* the table vanished under us (someone flushed the ruleset): recreate it once */
                pf->skeleton_ok = false;
                kverr_clear(&e2);
                r = pf_add_once(pf, p, &e2);
        }
        if (r < 0 && e)
                *e = e2;
        else
                kverr_clear(&e2);
        return r;
}

/* ---- the ports' drop counters ---- */

typedef struct PfDrops {
        int (*cb)(const char *ifname, uint64_t packets, uint64_t bytes, void *userdata);
        void *userdata;
} PfDrops;

static int drops_cb(struct nftnl_set_elem *se, void *userdata) {
        PfDrops *d = userdata;
        uint32_t len = 0;
        const char *k = nftnl_set_elem_get(se, NFTNL_SET_ELEM_KEY, &len);
        if (!k)
                return 0;
        char name[IFNAMSIZ] = "";
        memcpy(name, k, len < IFNAMSIZ - 1 ? len : IFNAMSIZ - 1);
        uint64_t packets = 0, bytes = 0;
        const struct nftnl_expr *x = nftnl_set_elem_get(se, NFTNL_SET_ELEM_EXPR, NULL);
        const char *xname = x ? nftnl_expr_get_str(x, NFTNL_EXPR_NAME) : NULL;
        if (xname && streq(xname, "counter")) {
                packets = nftnl_expr_get_u64(x, NFTNL_EXPR_CTR_PACKETS);
                bytes = nftnl_expr_get_u64(x, NFTNL_EXPR_CTR_BYTES);
        }
        return d->cb(name, packets, bytes, d->userdata);
}

int portfilter_drops(PortFilter *pf, int (*cb)(const char *ifname, uint64_t packets, uint64_t bytes, void *userdata),
                     void *userdata) {
        if (pf->render)
                return 0;
        PfDrops d = { .cb = cb, .userdata = userdata };
        return nftw_elems_dump(pf->sk, PF_FAMILY, PORTFILTER_TABLE, "portdrops", drops_cb, &d);
}

typedef struct PfPortDrops {
        const char *ifname;
        bool found;
        uint64_t packets;
} PfPortDrops;

static int port_drops_cb(const char *ifname, uint64_t packets, uint64_t bytes, void *userdata) {
        PfPortDrops *d = userdata;
        (void) bytes;
        if (streq(ifname, d->ifname)) {
                d->found = true;
                d->packets = packets;
        }
        return 0;
}

int portfilter_port_drops(PortFilter *pf, const char *ifname, uint64_t *ret_packets) {
        PfPortDrops d = { .ifname = ifname };
        int r = portfilter_drops(pf, port_drops_cb, &d);
        if (r < 0)
                return r;
        if (ret_packets)
                *ret_packets = d.packets;
        return d.found;
}

int portfilter_del(PortFilter *pf, const PortFilterPort *p, KvErr *e) {
        _cleanup_(nftw_batch_done) NftwBatch bt = PF_BATCH_INIT;
        int r = push_port(&bt, p, false);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "anti-spoofing: building batch");
        /* the port's drop counter, if it dropped something (a port that never did has none: the batch would fail) */
        if (portfilter_port_drops(pf, p->ifname, NULL) > 0) {
                PfElem el = { .set = "portdrops", .klen = IFNAMSIZ };
                put_name(el.key, p->ifname);
                snprintf(el.what, sizeof el.what, "port %s's drop counter", p->ifname);
                if ((r = pf_push_elem(&bt, &el, false)) < 0)
                        return kverr_set_errno(e, KV_ERR_INTERNAL, r, "anti-spoofing: building batch");
        }
        NftwFailure f;
        r = pf_commit(pf, bt.ops, bt.n, &f);
        if (r == -ENOENT) {
                /* something is gone already, and the batch was rolled back: one by one, ignoring what is missing */
                for (size_t i = 0; i < bt.n; i++) {
                        r = pf_commit(pf, &bt.ops[i], 1, &f);
                        if (r == -ENOENT)
                                r = 0;
                        if (r < 0)
                                return pf_err(e, r, &bt.ops[i], &f);
                }
        } else if (r < 0)
                return pf_err(e, r, bt.ops, &f);
        return 0;
}

/* The port's elements of one set, and which of them the kernel has. */
typedef struct PfFind {
        const PfElem *els;
        size_t n;
        const char *set;
        bool *found;
} PfFind;

static int find_cb(struct nftnl_set_elem *se, void *userdata) {
        PfFind *f = userdata;
        uint32_t len = 0;
        const void *k = nftnl_set_elem_get(se, NFTNL_SET_ELEM_KEY, &len);
        for (size_t i = 0; k && i < f->n; i++)
                if (streq(f->els[i].set, f->set) && len == f->els[i].klen && memcmp(k, f->els[i].key, len) == 0)
                        f->found[i] = true;
        return 0;
}

int portfilter_check(PortFilter *pf, const PortFilterPort *p, KvErr *e) {
        if (pf->render)
                return 0;
        PfElem els[PF_MAX_ELEMS];
        bool found[PF_MAX_ELEMS] = {};
        size_t n = port_elems(p, els);
        /* each set the port has elements in is listed once (a set holds every port's) */
        for (size_t i = 0; i < n; i++) {
                bool listed = false;
                for (size_t j = 0; j < i && !listed; j++)
                        listed = streq(els[j].set, els[i].set);
                if (listed)
                        continue;
                PfFind f = { .els = els, .n = n, .set = els[i].set, .found = found };
                int r = nftw_elems_dump(pf->sk, PF_FAMILY, PORTFILTER_TABLE, els[i].set, find_cb, &f);
                if (r < 0 && r != -ENOENT)
                        return kverr_set(e, KV_ERR_INTERNAL, r, "anti-spoofing: listing set %s: %s", els[i].set,
                                         strerror(-r));
        }
        for (size_t i = 0; i < n; i++)
                if (!found[i])
                        return kverr_set(e, KV_ERR_NOT_AVAILABLE, -ENOENT,
                                         "anti-spoofing: %s is not in set %s of table bridge %s", els[i].what,
                                         els[i].set, PORTFILTER_TABLE);
        return 0;
}
