/* SPDX-License-Identifier: Apache-2.0 */
/* DHCPv4 messages and Ethernet/IP/UDP frames: pure parse / build functions, no I/O. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "netd/dhcp/dhcp.h"
#include "netd/dhcp/wire.h"

#define DHCP4_MAGIC 0x63825363U
#define ETH_HLEN_ 14
#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86DD
#define ETH_P_8021Q_ 0x8100

static const uint8_t bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static uint32_t lease_time(const DhcpLease *l) {
        return l->lease_secs ? l->lease_secs : DHCP_DEFAULT_LEASE_SECS;
}

size_t dhcp_lease_dns(const DhcpLease *l, int family, uint8_t *buf) {
        size_t len = family == AF_INET ? 4 : 16, n = 0;
        for (size_t i = 0; i < l->n_dns && i < DHCP_MAX_DNS; i++)
                if (l->dns[i].family == family) {
                        memcpy(buf + n, family == AF_INET ? (const void *) &l->dns[i].in : &l->dns[i].in6, len);
                        n += len;
                }
        return n;
}

int dhcp_lease_validate(const DhcpLease *l, KvErr *e) {
        if (kv_mac_is_zero(l->mac) || (l->mac[0] & 1))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "dhcp lease: 'mac' must be a unicast MAC");
        if (!l->has_v4 && !l->has_v6)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "dhcp lease: neither IPv4 nor IPv6 address");
        if (l->has_v4) {
                if (l->addr4.addr.family != AF_INET || l->addr4.prefixlen < 1 || l->addr4.prefixlen > 32)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "dhcp lease: 'addr4' must be an IPv4 prefix with length 1..32, got length %u",
                                         l->addr4.prefixlen);
                if (l->gw4.family != 0 && l->gw4.family != AF_INET)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "dhcp lease: 'gw4' must be IPv4");
                if (l->server4.family != AF_INET && l->gw4.family != AF_INET)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "dhcp lease: 'server4' (or 'gw4') is required with IPv4");
        }
        if (l->has_v6) {
                if (l->addr6.addr.family != AF_INET6 || l->addr6.prefixlen < 1 || l->addr6.prefixlen > 128)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "dhcp lease: 'addr6' must be an IPv6 prefix, got length %u",
                                         l->addr6.prefixlen);
                if (l->gw6.family != 0 && l->gw6.family != AF_INET6)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "dhcp lease: 'gw6' must be IPv6");
        }
        if (l->n_dns > DHCP_MAX_DNS)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "dhcp lease: at most %d DNS servers, got %zu",
                                 DHCP_MAX_DNS, l->n_dns);
        if (l->n_routes > DHCP_MAX_ROUTES)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "dhcp lease: at most %d routes, got %zu",
                                 DHCP_MAX_ROUTES, l->n_routes);
        if (l->mtu != 0 && (l->mtu < 576 || l->mtu > 65535))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "dhcp lease: 'mtu' must be 576..65535, got %u",
                                 l->mtu);
        if (strnlen(l->domain, sizeof l->domain) >= sizeof l->domain ||
            strnlen(l->hostname, sizeof l->hostname) >= sizeof l->hostname)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "dhcp lease: 'domain'/'hostname' not terminated");
        return 0;
}

/* ---------------------------------------------------------------- DHCPv4 parse */

int dhcp4_parse(const uint8_t *pkt, size_t len, Dhcp4Msg *ret) {
        if (!pkt || len < DHCP4_MIN_LEN)
                return -EBADMSG;
        Dhcp4Msg m = {};
        m.op = pkt[0];
        m.htype = pkt[1];
        m.hlen = pkt[2];
        m.hops = pkt[3];
        if (m.op != 1 && m.op != 2)
                return -EBADMSG;
        if (m.htype != 1 || m.hlen != 6)
                return -EBADMSG;
        memcpy(&m.xid, pkt + 4, 4);
        m.secs = rd16(pkt + 8);
        m.flags = rd16(pkt + 10);
        memcpy(&m.ciaddr, pkt + 12, 4);
        memcpy(&m.yiaddr, pkt + 16, 4);
        memcpy(&m.siaddr, pkt + 20, 4);
        memcpy(&m.giaddr, pkt + 24, 4);
        memcpy(m.chaddr, pkt + 28, 6);
        uint32_t cookie = ((uint32_t) pkt[236] << 24) | ((uint32_t) pkt[237] << 16) | ((uint32_t) pkt[238] << 8) |
                          pkt[239];
        if (cookie != DHCP4_MAGIC)
                return -EBADMSG;

        bool seen53 = false, seen50 = false, seen54 = false;
        size_t i = DHCP4_MIN_LEN;
        while (i < len) {
                uint8_t code = pkt[i];
                if (code == 0) { /* pad */
                        i++;
                        continue;
                }
                if (code == 255)
                        break;
                if (i + 1 >= len)
                        return -EBADMSG; /* no length byte */
                size_t olen = pkt[i + 1];
                const uint8_t *v = pkt + i + 2;
                if (i + 2 + olen > len)
                        return -EBADMSG; /* option overruns the packet */
                switch (code) {
                case 53:
                        if (olen != 1 || seen53)
                                return -EBADMSG;
                        seen53 = true;
                        m.msg_type = v[0];
                        break;
                case 50:
                        if (olen != 4 || seen50)
                                return -EBADMSG;
                        seen50 = true;
                        m.has_requested_ip = true;
                        memcpy(&m.requested_ip, v, 4);
                        break;
                case 54:
                        if (olen != 4 || seen54)
                                return -EBADMSG;
                        seen54 = true;
                        m.has_server_id = true;
                        memcpy(&m.server_id, v, 4);
                        break;
                case 57:
                        if (olen != 2)
                                return -EBADMSG;
                        m.max_msg_size = rd16(v);
                        break;
                case 55:
                        /* RFC 3396: repeated options concatenate */
                        for (size_t k = 0; k < olen && m.n_prl < sizeof m.prl; k++)
                                m.prl[m.n_prl++] = v[k];
                        break;
                default:
                        break;
                }
                i += 2 + olen;
        }
        if (!seen53 || m.msg_type < DHCP4_DISCOVER || m.msg_type > DHCP4_INFORM)
                return -EBADMSG;
        *ret = m;
        return 0;
}

/* ---------------------------------------------------------------- DHCPv4 build */

typedef struct OptBuf {
        uint8_t *buf;
        size_t cap, len;
        bool overflow;
} OptBuf;

static void opt_put(OptBuf *o, uint8_t code, const void *data, size_t n) {
        if (n > 255 || o->len + 2 + n > o->cap) {
                o->overflow = true;
                return;
        }
        o->buf[o->len++] = code;
        o->buf[o->len++] = (uint8_t) n;
        if (n)
                memcpy(o->buf + o->len, data, n);
        o->len += n;
}

static void opt_u32(OptBuf *o, uint8_t code, uint32_t v) {
        uint8_t b[4];
        wr32(b, v);
        opt_put(o, code, b, 4);
}

static void opt_u8(OptBuf *o, uint8_t code, uint8_t v) {
        opt_put(o, code, &v, 1);
}

static struct in_addr prefix_mask(uint8_t plen) {
        uint32_t m = plen == 0 ? 0 : 0xffffffffU << (32 - plen);
        return (struct in_addr){ .s_addr = htonl(m) };
}

static struct in_addr server_id(const DhcpLease *l) {
        return l->server4.family == AF_INET ? l->server4.in : l->gw4.in;
}

/* Option 121 (RFC 3442): width, significant octets of the destination, router. */
static void put_classless_routes(OptBuf *o, const DhcpLease *l) {
        uint8_t v[255];
        size_t n = 0;
        bool have_default = false;
        for (size_t i = 0; i < l->n_routes; i++)
                if (l->routes[i].dst.addr.family == AF_INET && l->routes[i].dst.prefixlen == 0)
                        have_default = true;
        /* clients ignore option 3 when 121 is present, so the default route goes in here as well */
        if (!have_default && l->gw4.family == AF_INET && !kv_addr_is_zero(&l->gw4)) {
                v[n++] = 0;
                memcpy(v + n, &l->gw4.in, 4);
                n += 4;
        }
        for (size_t i = 0; i < l->n_routes && i < DHCP_MAX_ROUTES; i++) {
                const KvPrefix *d = &l->routes[i].dst;
                if (d->addr.family != AF_INET || d->prefixlen > 32)
                        continue;
                size_t sig = (d->prefixlen + 7u) / 8u;
                if (n + 1 + sig + 4 > sizeof v)
                        break;
                KvPrefix net = kv_prefix_network(d);
                v[n++] = d->prefixlen;
                memcpy(v + n, net.addr.bytes, sig);
                n += sig;
                if (l->routes[i].gw.family == AF_INET)
                        memcpy(v + n, &l->routes[i].gw.in, 4);
                else
                        memset(v + n, 0, 4);
                n += 4;
        }
        if (n > 0)
                opt_put(o, 121, v, n);
}

static bool chaddr_matches(const Dhcp4Msg *req, const DhcpLease *l) {
        return memcmp(req->chaddr, l->mac, 6) == 0;
}

/* Decides the reply type: > 0 message type, -ENOMSG nothing to send. */
static int decide4(const Dhcp4Msg *req, const DhcpLease *l) {
        if (!l->has_v4 || req->op != 1 || !chaddr_matches(req, l))
                return -ENOMSG;
        struct in_addr ours = l->addr4.addr.in, sid = server_id(l);
        switch (req->msg_type) {
        case DHCP4_DISCOVER:
                return DHCP4_OFFER;
        case DHCP4_REQUEST:
                if (req->has_server_id) {
                        /* SELECTING: the client picked a server; if not us, stay silent */
                        if (req->server_id.s_addr != sid.s_addr)
                                return -ENOMSG;
                        if (!req->has_requested_ip && req->ciaddr.s_addr == 0)
                                return -ENOMSG;
                        struct in_addr want = req->has_requested_ip ? req->requested_ip : req->ciaddr;
                        return want.s_addr == ours.s_addr ? DHCP4_ACK : DHCP4_NAK;
                }
                if (req->has_requested_ip) /* INIT-REBOOT */
                        return req->requested_ip.s_addr == ours.s_addr ? DHCP4_ACK : DHCP4_NAK;
                if (req->ciaddr.s_addr != 0) /* RENEWING / REBINDING */
                        return req->ciaddr.s_addr == ours.s_addr ? DHCP4_ACK : DHCP4_NAK;
                return -ENOMSG;
        case DHCP4_INFORM:
                return DHCP4_ACK;
        default: /* RELEASE, DECLINE: static lease, nothing to do */
                return -ENOMSG;
        }
}

int dhcp4_build_reply(const Dhcp4Msg *req, const DhcpLease *l, uint8_t *buf, size_t cap, size_t *ret_len) {
        int type = decide4(req, l);
        if (type < 0)
                return type;
        if (cap < 300)
                return -ENOBUFS;
        bool inform = req->msg_type == DHCP4_INFORM;
        struct in_addr sid = server_id(l);

        memset(buf, 0, 300);
        buf[0] = 2; /* BOOTREPLY */
        buf[1] = 1;
        buf[2] = 6;
        memcpy(buf + 4, &req->xid, 4);
        wr16(buf + 10, req->flags & DHCP4_FLAG_BROADCAST);
        if (inform || (type == DHCP4_ACK && req->ciaddr.s_addr != 0))
                memcpy(buf + 12, &req->ciaddr, 4);
        if (type != DHCP4_NAK && !inform)
                memcpy(buf + 16, &l->addr4.addr.in, 4);
        if (type != DHCP4_NAK)
                memcpy(buf + 20, &sid, 4);
        memcpy(buf + 24, &req->giaddr, 4);
        memcpy(buf + 28, req->chaddr, 6);
        wr32(buf + 236, DHCP4_MAGIC);

        OptBuf o = { .buf = buf + DHCP4_MIN_LEN, .cap = cap - DHCP4_MIN_LEN - 1 };
        opt_u8(&o, 53, (uint8_t) type);
        opt_put(&o, 54, &sid, 4);
        if (type == DHCP4_NAK) {
                static const char msg[] = "requested address is not assigned to this client";
                opt_put(&o, 56, msg, sizeof msg - 1);
        } else {
                uint32_t lt = lease_time(l);
                if (!inform) {
                        opt_u32(&o, 51, lt);
                        opt_u32(&o, 58, lt == UINT32_MAX ? lt : lt / 2);
                        opt_u32(&o, 59, lt == UINT32_MAX ? lt : (uint32_t) ((uint64_t) lt * 7 / 8));
                }
                struct in_addr mask = prefix_mask(l->addr4.prefixlen);
                opt_put(&o, 1, &mask, 4);
                if (l->gw4.family == AF_INET && !kv_addr_is_zero(&l->gw4))
                        opt_put(&o, 3, &l->gw4.in, 4);
                uint8_t dns[DHCP_LEASE_DNS_MAX];
                size_t nd = dhcp_lease_dns(l, AF_INET, dns);
                if (nd)
                        opt_put(&o, 6, dns, nd);
                if (l->hostname[0])
                        opt_put(&o, 12, l->hostname, strnlen(l->hostname, sizeof l->hostname - 1));
                if (l->domain[0])
                        opt_put(&o, 15, l->domain, strnlen(l->domain, sizeof l->domain - 1));
                if (l->mtu >= 68 && l->mtu <= 65535) {
                        uint8_t b[2];
                        wr16(b, (uint16_t) l->mtu);
                        opt_put(&o, 26, b, 2);
                }
                if (l->n_routes > 0)
                        put_classless_routes(&o, l);
        }
        if (o.overflow)
                return -ENOBUFS;
        o.buf[o.len++] = 255;
        size_t total = DHCP4_MIN_LEN + o.len;
        if (total < 300) /* BOOTP minimum; the tail is already zero */
                total = 300;
        *ret_len = total;
        return type;
}

void dhcp4_reply_dest(const Dhcp4Msg *req, const DhcpLease *l, int reply_type, struct in_addr *ret_ip,
                      uint8_t ret_mac[6]) {
        bool bcast = reply_type == DHCP4_NAK || (req->flags & DHCP4_FLAG_BROADCAST);
        if (bcast) {
                ret_ip->s_addr = htonl(INADDR_BROADCAST);
                memcpy(ret_mac, bcast_mac, 6);
                return;
        }
        memcpy(ret_mac, req->chaddr, 6);
        if (req->ciaddr.s_addr != 0)
                *ret_ip = req->ciaddr;
        else
                *ret_ip = l->addr4.addr.in;
}

/* ---------------------------------------------------------------- checksums and frames */

uint32_t inet_csum_add(uint32_t sum, const void *data, size_t len) {
        const uint8_t *p = data;
        while (len > 1) {
                sum += (uint32_t) ((p[0] << 8) | p[1]);
                p += 2;
                len -= 2;
        }
        if (len)
                sum += (uint32_t) (p[0] << 8);
        while (sum >> 16)
                sum = (sum & 0xffff) + (sum >> 16);
        return sum;
}

uint16_t inet_csum_finish(uint32_t sum) {
        while (sum >> 16)
                sum = (sum & 0xffff) + (sum >> 16);
        return htons((uint16_t) ~sum);
}

static uint32_t pseudo4(const uint8_t *src, const uint8_t *dst, uint8_t proto, size_t l4len) {
        uint8_t ph[12];
        memcpy(ph, src, 4);
        memcpy(ph + 4, dst, 4);
        ph[8] = 0;
        ph[9] = proto;
        wr16(ph + 10, (uint16_t) l4len);
        return inet_csum_add(0, ph, sizeof ph);
}

static uint32_t pseudo6(const uint8_t *src, const uint8_t *dst, uint8_t proto, size_t l4len) {
        uint8_t ph[40] = {};
        memcpy(ph, src, 16);
        memcpy(ph + 16, dst, 16);
        wr32(ph + 32, (uint32_t) l4len);
        ph[39] = proto;
        return inet_csum_add(0, ph, sizeof ph);
}

int frame_parse(const uint8_t *f, size_t len, bool verify_csum, FrameInfo *ret) {
        if (!f || len < ETH_HLEN_)
                return -EBADMSG;
        FrameInfo fi = { .vlan = -1 };
        memcpy(fi.dst_mac, f, 6);
        memcpy(fi.src_mac, f + 6, 6);
        size_t off = 12;
        uint16_t et = rd16(f + off);
        off += 2;
        if (et == ETH_P_8021Q_) {
                if (len < off + 4)
                        return -EBADMSG;
                fi.vlan = rd16(f + off) & 0x0fff;
                et = rd16(f + off + 2);
                off += 4;
        }
        const uint8_t *l4;
        size_t l4len;
        if (et == ETH_P_IP_) {
                const uint8_t *ip = f + off;
                if (len < off + 20)
                        return -EBADMSG;
                if ((ip[0] >> 4) != 4)
                        return -EBADMSG;
                size_t ihl = (size_t) (ip[0] & 0x0f) * 4;
                size_t tot = rd16(ip + 2);
                if (ihl < 20 || tot < ihl || len < off + tot)
                        return -EBADMSG;
                if (inet_csum_finish(inet_csum_add(0, ip, ihl)) != 0)
                        return -EBADMSG;
                if (rd16(ip + 6) & 0x3fff) /* MF or a fragment offset */
                        return -EPROTONOSUPPORT;
                fi.family = AF_INET;
                fi.hop_limit = ip[8];
                fi.proto = ip[9];
                fi.src.family = fi.dst.family = AF_INET;
                memcpy(&fi.src.in, ip + 12, 4);
                memcpy(&fi.dst.in, ip + 16, 4);
                l4 = ip + ihl;
                l4len = tot - ihl;
                if (fi.proto != IPPROTO_UDP)
                        return -EPROTONOSUPPORT;
        } else if (et == ETH_P_IPV6_) {
                const uint8_t *ip = f + off;
                if (len < off + 40)
                        return -EBADMSG;
                if ((ip[0] >> 4) != 6)
                        return -EBADMSG;
                size_t plen = rd16(ip + 4);
                if (len < off + 40 + plen)
                        return -EBADMSG;
                fi.family = AF_INET6;
                fi.proto = ip[6];
                fi.hop_limit = ip[7];
                fi.src.family = fi.dst.family = AF_INET6;
                memcpy(&fi.src.in6, ip + 8, 16);
                memcpy(&fi.dst.in6, ip + 24, 16);
                l4 = ip + 40;
                l4len = plen;
                if (fi.proto != IPPROTO_UDP && fi.proto != IPPROTO_ICMPV6)
                        return -EPROTONOSUPPORT;
        } else
                return -EPROTONOSUPPORT;

        if (fi.proto == IPPROTO_UDP) {
                if (l4len < 8)
                        return -EBADMSG;
                size_t ulen = rd16(l4 + 4);
                if (ulen < 8 || ulen > l4len)
                        return -EBADMSG;
                uint16_t csum = rd16(l4 + 6);
                if (verify_csum && (csum != 0 || fi.family == AF_INET6)) {
                        uint32_t s = fi.family == AF_INET ? pseudo4(fi.src.bytes, fi.dst.bytes, IPPROTO_UDP, ulen)
                                                          : pseudo6(fi.src.bytes, fi.dst.bytes, IPPROTO_UDP, ulen);
                        if (inet_csum_finish(inet_csum_add(s, l4, ulen)) != 0)
                                return -EBADMSG;
                }
                fi.sport = rd16(l4);
                fi.dport = rd16(l4 + 2);
                fi.payload = l4 + 8;
                fi.payload_len = ulen - 8;
        } else {
                if (l4len < 4)
                        return -EBADMSG;
                if (verify_csum) {
                        uint32_t s = pseudo6(fi.src.bytes, fi.dst.bytes, IPPROTO_ICMPV6, l4len);
                        if (inet_csum_finish(inet_csum_add(s, l4, l4len)) != 0)
                                return -EBADMSG;
                }
                fi.payload = l4;
                fi.payload_len = l4len;
        }
        *ret = fi;
        return 0;
}

int frame_parse_udp(const uint8_t *frame, size_t len, bool verify_csum, FrameInfo *ret) {
        FrameInfo fi;
        int r = frame_parse(frame, len, verify_csum, &fi);
        if (r < 0)
                return r;
        if (fi.proto != IPPROTO_UDP)
                return -EPROTONOSUPPORT;
        *ret = fi;
        return 0;
}

static void put_eth(uint8_t *buf, const uint8_t src_mac[6], const uint8_t dst_mac[6], uint16_t et) {
        memcpy(buf, dst_mac, 6);
        memcpy(buf + 6, src_mac, 6);
        wr16(buf + 12, et);
}

int frame_build_udp4(const uint8_t src_mac[6], const uint8_t dst_mac[6], struct in_addr src, struct in_addr dst,
                     uint16_t sport, uint16_t dport, const uint8_t *payload, size_t plen, uint8_t *buf, size_t cap,
                     size_t *ret_len) {
        size_t total = ETH_HLEN_ + 20 + 8 + plen;
        if (plen > 65535 - 28 || total > cap)
                return -ENOBUFS;
        put_eth(buf, src_mac, dst_mac, ETH_P_IP_);
        uint8_t *ip = buf + ETH_HLEN_;
        memset(ip, 0, 20);
        ip[0] = 0x45;
        ip[1] = 0x10; /* low delay, as DHCP servers commonly send */
        wr16(ip + 2, (uint16_t) (20 + 8 + plen));
        ip[8] = 64;
        ip[9] = IPPROTO_UDP;
        memcpy(ip + 12, &src, 4);
        memcpy(ip + 16, &dst, 4);
        uint16_t c = inet_csum_finish(inet_csum_add(0, ip, 20));
        memcpy(ip + 10, &c, 2);
        uint8_t *u = ip + 20;
        wr16(u, sport);
        wr16(u + 2, dport);
        wr16(u + 4, (uint16_t) (8 + plen));
        wr16(u + 6, 0);
        memcpy(u + 8, payload, plen);
        c = inet_csum_finish(inet_csum_add(pseudo4(ip + 12, ip + 16, IPPROTO_UDP, 8 + plen), u, 8 + plen));
        if (c == 0)
                c = 0xffff;
        memcpy(u + 6, &c, 2);
        *ret_len = total;
        return 0;
}

static int build_ip6(const uint8_t src_mac[6], const uint8_t dst_mac[6], const struct in6_addr *src,
                     const struct in6_addr *dst, uint8_t proto, uint8_t hop_limit, size_t l4len, uint8_t *buf,
                     size_t cap, size_t *ret_len) {
        size_t total = ETH_HLEN_ + 40 + l4len;
        if (l4len > 65535 || total > cap)
                return -ENOBUFS;
        put_eth(buf, src_mac, dst_mac, ETH_P_IPV6_);
        uint8_t *ip = buf + ETH_HLEN_;
        memset(ip, 0, 40);
        ip[0] = 0x60;
        wr16(ip + 4, (uint16_t) l4len);
        ip[6] = proto;
        ip[7] = hop_limit;
        memcpy(ip + 8, src, 16);
        memcpy(ip + 24, dst, 16);
        *ret_len = total;
        return 0;
}

int frame_build_udp6(const uint8_t src_mac[6], const uint8_t dst_mac[6], const struct in6_addr *src,
                     const struct in6_addr *dst, uint16_t sport, uint16_t dport, const uint8_t *payload, size_t plen,
                     uint8_t *buf, size_t cap, size_t *ret_len) {
        size_t total;
        int r = build_ip6(src_mac, dst_mac, src, dst, IPPROTO_UDP, 255, 8 + plen, buf, cap, &total);
        if (r < 0)
                return r;
        uint8_t *u = buf + ETH_HLEN_ + 40;
        wr16(u, sport);
        wr16(u + 2, dport);
        wr16(u + 4, (uint16_t) (8 + plen));
        wr16(u + 6, 0);
        memcpy(u + 8, payload, plen);
        uint16_t c = inet_csum_finish(
                inet_csum_add(pseudo6(src->s6_addr, dst->s6_addr, IPPROTO_UDP, 8 + plen), u, 8 + plen));
        if (c == 0)
                c = 0xffff;
        memcpy(u + 6, &c, 2);
        *ret_len = total;
        return 0;
}

int frame_build_icmp6(const uint8_t src_mac[6], const uint8_t dst_mac[6], const struct in6_addr *src,
                      const struct in6_addr *dst, const uint8_t *msg, size_t mlen, uint8_t *buf, size_t cap,
                      size_t *ret_len) {
        if (mlen < 4)
                return -EINVAL;
        size_t total;
        int r = build_ip6(src_mac, dst_mac, src, dst, IPPROTO_ICMPV6, 255, mlen, buf, cap, &total);
        if (r < 0)
                return r;
        uint8_t *m = buf + ETH_HLEN_ + 40;
        memcpy(m, msg, mlen);
        m[2] = m[3] = 0;
        uint16_t c = inet_csum_finish(inet_csum_add(pseudo6(src->s6_addr, dst->s6_addr, IPPROTO_ICMPV6, mlen), m, mlen));
        memcpy(m + 2, &c, 2);
        *ret_len = total;
        return 0;
}
