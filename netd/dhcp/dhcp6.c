/* SPDX-License-Identifier: Apache-2.0 */
/* Router Solicitation / Advertisement and DHCPv6: pure parse / build functions, no I/O. */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "netd/dhcp/dhcp.h"
#include "netd/dhcp/wire.h"

enum {
        OPT6_CLIENTID = 1,
        OPT6_SERVERID = 2,
        OPT6_IA_NA = 3,
        OPT6_IAADDR = 5,
        OPT6_STATUS_CODE = 13,
        OPT6_RAPID_COMMIT = 14,
        OPT6_DNS_SERVERS = 23,
        OPT6_DOMAIN_LIST = 24,
};

enum {
        STATUS6_SUCCESS = 0,
        STATUS6_NO_ADDRS_AVAIL = 2,
        STATUS6_NOT_ON_LINK = 4,
};

#define RA_PREFIX_VALID 86400U
#define RA_PREFIX_PREFERRED 14400U
#define RA_RDNSS_LIFETIME 1800U

void dhcp6_link_local(const uint8_t mac[6], struct in6_addr *ret) {
        memset(ret, 0, sizeof *ret);
        ret->s6_addr[0] = 0xfe;
        ret->s6_addr[1] = 0x80;
        ret->s6_addr[8] = mac[0] ^ 0x02;
        ret->s6_addr[9] = mac[1];
        ret->s6_addr[10] = mac[2];
        ret->s6_addr[11] = 0xff;
        ret->s6_addr[12] = 0xfe;
        ret->s6_addr[13] = mac[3];
        ret->s6_addr[14] = mac[4];
        ret->s6_addr[15] = mac[5];
}

size_t dhcp6_server_duid(const uint8_t mac[6], uint8_t buf[static 10]) {
        wr16(buf, 3); /* DUID-LL */
        wr16(buf + 2, 1);
        memcpy(buf + 4, mac, 6);
        return 10;
}

/* ---------------------------------------------------------------- DHCPv6 parse */

static int parse_ia_na(const uint8_t *v, size_t len, Dhcp6Msg *m) {
        if (len < 12)
                return -EBADMSG;
        if (m->has_ia_na) /* only the first IA_NA is served */
                return 0;
        m->has_ia_na = true;
        m->ia_na_iaid = rd32(v);
        size_t i = 12;
        while (i < len) {
                if (len - i < 4)
                        return -EBADMSG;
                uint16_t code = rd16(v + i), olen = rd16(v + i + 2);
                if (olen > len - i - 4)
                        return -EBADMSG;
                if (code == OPT6_IAADDR) {
                        if (olen < 24)
                                return -EBADMSG;
                        if (!m->has_ia_addr) {
                                m->has_ia_addr = true;
                                memcpy(&m->ia_addr, v + i + 4, 16);
                        }
                }
                i += 4 + (size_t) olen;
        }
        return 0;
}

int dhcp6_parse(const uint8_t *pkt, size_t len, Dhcp6Msg *ret) {
        if (!pkt || len < 4)
                return -EBADMSG;
        Dhcp6Msg m = {};
        m.msg_type = pkt[0];
        switch (m.msg_type) {
        case DHCP6_SOLICIT:
        case DHCP6_REQUEST:
        case DHCP6_CONFIRM:
        case DHCP6_RENEW:
        case DHCP6_REBIND:
        case DHCP6_RELEASE:
        case DHCP6_DECLINE:
        case DHCP6_INFORMATION_REQUEST:
                break;
        default: /* server messages, relay messages, unknown */
                return -EBADMSG;
        }
        memcpy(m.xid, pkt + 1, 3);
        size_t i = 4;
        while (i < len) {
                if (len - i < 4)
                        return -EBADMSG;
                uint16_t code = rd16(pkt + i), olen = rd16(pkt + i + 2);
                const uint8_t *v = pkt + i + 4;
                if (olen > len - i - 4)
                        return -EBADMSG;
                int r;
                switch (code) {
                case OPT6_CLIENTID:
                        if (olen < 2 || olen > DHCP6_MAX_DUID || m.client_id_len)
                                return -EBADMSG;
                        memcpy(m.client_id, v, olen);
                        m.client_id_len = olen;
                        break;
                case OPT6_SERVERID:
                        if (olen < 2 || olen > DHCP6_MAX_DUID || m.server_id_len)
                                return -EBADMSG;
                        memcpy(m.server_id, v, olen);
                        m.server_id_len = olen;
                        break;
                case OPT6_IA_NA:
                        r = parse_ia_na(v, olen, &m);
                        if (r < 0)
                                return r;
                        break;
                case OPT6_RAPID_COMMIT:
                        if (olen != 0)
                                return -EBADMSG;
                        m.rapid_commit = true;
                        break;
                default:
                        break;
                }
                i += 4 + (size_t) olen;
        }
        *ret = m;
        return 0;
}

/* ---------------------------------------------------------------- DHCPv6 build */

typedef struct Out6 {
        uint8_t *buf;
        size_t cap, len;
        bool overflow;
} Out6;

/* Starts an option; returns its offset (for end_opt) or SIZE_MAX on overflow. */
static size_t begin_opt(Out6 *o, uint16_t code) {
        if (o->overflow || o->cap - o->len < 4) {
                o->overflow = true;
                return SIZE_MAX;
        }
        size_t at = o->len;
        wr16(o->buf + at, code);
        wr16(o->buf + at + 2, 0);
        o->len += 4;
        return at;
}

static void put_bytes(Out6 *o, const void *data, size_t n) {
        if (o->overflow || o->cap - o->len < n) {
                o->overflow = true;
                return;
        }
        if (n == 0)
                return;
        memcpy(o->buf + o->len, data, n);
        o->len += n;
}

static void put_u32(Out6 *o, uint32_t v) {
        uint8_t b[4];
        wr32(b, v);
        put_bytes(o, b, 4);
}

static void end_opt(Out6 *o, size_t at) {
        if (o->overflow || at == SIZE_MAX)
                return;
        wr16(o->buf + at + 2, (uint16_t) (o->len - at - 4));
}

static void put_opt(Out6 *o, uint16_t code, const void *data, size_t n) {
        size_t at = begin_opt(o, code);
        put_bytes(o, data, n);
        end_opt(o, at);
}

static void put_status(Out6 *o, uint16_t status, const char *msg) {
        size_t at = begin_opt(o, OPT6_STATUS_CODE);
        uint8_t b[2];
        wr16(b, status);
        put_bytes(o, b, 2);
        put_bytes(o, msg, strlen(msg));
        end_opt(o, at);
}

/* "example.test" → 7example4test0; -EINVAL on an empty or over-long label. */
static int encode_dns_name(const char *name, uint8_t *out, size_t cap, size_t *ret_len) {
        size_t n = 0;
        const char *p = name;
        while (*p) {
                const char *dot = strchr(p, '.');
                size_t l = dot ? (size_t) (dot - p) : strlen(p);
                if (l == 0 || l > 63 || n + 1 + l + 1 > cap)
                        return -EINVAL;
                out[n++] = (uint8_t) l;
                memcpy(out + n, p, l);
                n += l;
                p += l;
                if (*p == '.')
                        p++;
        }
        if (n == 0)
                return -EINVAL;
        out[n++] = 0;
        *ret_len = n;
        return 0;
}

static uint32_t lease_time6(const DhcpLease *l) {
        return l->lease_secs ? l->lease_secs : DHCP_DEFAULT_LEASE_SECS;
}

static void put_ia_na(Out6 *o, const Dhcp6Msg *req, const DhcpLease *l) {
        uint32_t lt = lease_time6(l);
        size_t at = begin_opt(o, OPT6_IA_NA);
        put_u32(o, req->ia_na_iaid);
        put_u32(o, lt == UINT32_MAX ? lt : lt / 2);
        put_u32(o, lt == UINT32_MAX ? lt : (uint32_t) ((uint64_t) lt * 4 / 5));
        size_t a = begin_opt(o, OPT6_IAADDR);
        put_bytes(o, &l->addr6.addr.in6, 16);
        put_u32(o, lt);
        put_u32(o, lt);
        end_opt(o, a);
        end_opt(o, at);
}

static void put_config(Out6 *o, const DhcpLease *l) {
        uint8_t dns[DHCP_LEASE_DNS_MAX];
        size_t nd = dhcp_lease_dns(l, AF_INET6, dns);
        if (nd)
                put_opt(o, OPT6_DNS_SERVERS, dns, nd);
        uint8_t name[80];
        size_t nl;
        if (l->domain[0] && encode_dns_name(l->domain, name, sizeof name, &nl) >= 0)
                put_opt(o, OPT6_DOMAIN_LIST, name, nl);
}

static bool addr6_on_link(const DhcpLease *l, const struct in6_addr *a) {
        KvAddr x = { .family = AF_INET6, .in6 = *a };
        KvPrefix p = l->addr6;
        if (p.prefixlen > 64)
                p.prefixlen = 64;
        return kv_prefix_contains(&p, &x);
}

int dhcp6_build_reply(const Dhcp6Msg *req, const DhcpLease *l, uint8_t *buf, size_t cap, size_t *ret_len) {
        if (!l->has_v6)
                return -ENOMSG;
        uint8_t duid[10];
        size_t duid_len = dhcp6_server_duid(l->server_mac, duid);
        bool for_us = req->server_id_len == duid_len && memcmp(req->server_id, duid, duid_len) == 0;

        if (req->msg_type != DHCP6_INFORMATION_REQUEST && req->client_id_len == 0)
                return -ENOMSG;
        int type = DHCP6_REPLY;
        switch (req->msg_type) {
        case DHCP6_SOLICIT:
                if (req->server_id_len)
                        return -ENOMSG;
                type = req->rapid_commit ? DHCP6_REPLY : DHCP6_ADVERTISE;
                break;
        case DHCP6_REBIND:
        case DHCP6_CONFIRM:
                if (req->server_id_len)
                        return -ENOMSG;
                if (req->msg_type == DHCP6_CONFIRM && !req->has_ia_addr)
                        return -ENOMSG; /* RFC 8415 18.3.3: nothing to confirm, no reply */
                break;
        case DHCP6_REQUEST:
        case DHCP6_RENEW:
        case DHCP6_RELEASE:
        case DHCP6_DECLINE:
                if (!for_us)
                        return -ENOMSG;
                break;
        case DHCP6_INFORMATION_REQUEST:
                if (req->server_id_len && !for_us)
                        return -ENOMSG;
                break;
        default:
                return -ENOMSG;
        }
        if (cap < 4)
                return -ENOBUFS;
        Out6 o = { .buf = buf, .cap = cap };
        o.buf[0] = (uint8_t) type;
        memcpy(o.buf + 1, req->xid, 3);
        o.len = 4;
        if (req->client_id_len)
                put_opt(&o, OPT6_CLIENTID, req->client_id, req->client_id_len);
        put_opt(&o, OPT6_SERVERID, duid, duid_len);

        switch (req->msg_type) {
        case DHCP6_SOLICIT:
                if (req->rapid_commit)
                        put_opt(&o, OPT6_RAPID_COMMIT, NULL, 0);
                __attribute__((fallthrough));
        case DHCP6_REQUEST:
        case DHCP6_RENEW:
        case DHCP6_REBIND:
                if (req->has_ia_na)
                        put_ia_na(&o, req, l);
                else
                        put_status(&o, STATUS6_NO_ADDRS_AVAIL, "only IA_NA is served");
                put_config(&o, l);
                break;
        case DHCP6_CONFIRM:
                if (addr6_on_link(l, &req->ia_addr))
                        put_status(&o, STATUS6_SUCCESS, "on link");
                else
                        put_status(&o, STATUS6_NOT_ON_LINK, "address is not on this link");
                break;
        case DHCP6_RELEASE:
        case DHCP6_DECLINE:
                put_status(&o, STATUS6_SUCCESS, "");
                break;
        case DHCP6_INFORMATION_REQUEST:
                put_config(&o, l);
                break;
        }
        if (o.overflow)
                return -ENOBUFS;
        *ret_len = o.len;
        return type;
}

/* ---------------------------------------------------------------- RS / RA */

int icmp6_parse_rs(const uint8_t *msg, size_t len, Icmp6Rs *ret) {
        if (!msg || len < 8 || msg[0] != ICMP6_RS || msg[1] != 0)
                return -EBADMSG;
        Icmp6Rs rs = {};
        size_t i = 8;
        while (i < len) {
                if (len - i < 2)
                        return -EBADMSG;
                size_t olen = (size_t) msg[i + 1] * 8;
                if (olen == 0 || olen > len - i)
                        return -EBADMSG; /* RFC 4861 4.6: zero-length options are invalid */
                if (msg[i] == 1 && olen == 8) {
                        rs.has_src_lladdr = true;
                        memcpy(rs.src_lladdr, msg + i + 2, 6);
                }
                i += olen;
        }
        *ret = rs;
        return 0;
}

int icmp6_build_ra(const DhcpLease *l, const uint8_t server_mac[6], uint8_t *buf, size_t cap, size_t *ret_len) {
        size_t need = 16 + 8 + 8 + 32 + 8 + DHCP_LEASE_DNS_MAX;
        if (cap < need)
                return -ENOBUFS;
        memset(buf, 0, need);
        size_t n = 0;
        buf[0] = ICMP6_RA;
        buf[1] = 0;
        buf[4] = 64;                               /* cur hop limit */
        buf[5] = l->has_v6 ? (0x80 | 0x40) : 0x40; /* M (addresses by DHCPv6), O (other config) */
        wr16(buf + 6, l->has_v6 ? RA_ROUTER_LIFETIME : 0);
        /* reachable time, retrans timer: 0 = unspecified */
        n = 16;

        buf[n] = 1; /* source link-layer address */
        buf[n + 1] = 1;
        memcpy(buf + n + 2, server_mac, 6);
        n += 8;

        if (l->mtu >= 1280) {
                buf[n] = 5;
                buf[n + 1] = 1;
                wr32(buf + n + 4, l->mtu);
                n += 8;
        }

        if (l->has_v6) {
                KvPrefix p = l->addr6;
                if (p.prefixlen > 64)
                        p.prefixlen = 64;
                p = kv_prefix_network(&p);
                buf[n] = 3;
                buf[n + 1] = 4;
                buf[n + 2] = p.prefixlen;
                /* L=1; A=0: the address comes from DHCPv6; A=1 (slaac, /64 only): the guest derives the
                 * very address of its claim from its MAC */
                buf[n + 3] = l->slaac && p.prefixlen == 64 ? 0xc0 : 0x80;
                wr32(buf + n + 4, RA_PREFIX_VALID);
                wr32(buf + n + 8, RA_PREFIX_PREFERRED);
                memcpy(buf + n + 16, &p.addr.in6, 16);
                n += 32;
        }

        /* need leaves DHCP_LEASE_DNS_MAX bytes after the RDNSS header */
        size_t nd = dhcp_lease_dns(l, AF_INET6, buf + n + 8);
        if (nd) {
                buf[n] = 25;
                buf[n + 1] = (uint8_t) (1 + 2 * (nd / 16));
                wr32(buf + n + 4, RA_RDNSS_LIFETIME);
                n += 8 + nd;
        }
        *ret_len = n;
        return 0;
}
