/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the DHCP responder's pure parts: DHCPv4 parse/build, frames and checksums, RA, DHCPv6. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "netd/dhcp/dhcp.h"
#include "tests/unit/helpers.h"

static const uint8_t VM_MAC[6] = { 0x02, 0x00, 0x5e, 0x10, 0x00, 0x10 };
static const uint8_t SRV_MAC[6] = { 0x02, 0x00, 0x5e, 0x10, 0x00, 0x01 };
static const uint8_t OTHER_MAC[6] = { 0x02, 0x00, 0x5e, 0x10, 0x00, 0x99 };

static uint32_t ip4(const char *s) {
        struct in_addr a;
        assert_int_equal(inet_pton(AF_INET, s, &a), 1);
        return a.s_addr;
}

static DhcpLease test_lease(void) {
        DhcpLease l = {};
        memcpy(l.mac, VM_MAC, 6);
        memcpy(l.server_mac, SRV_MAC, 6);
        l.has_v4 = true;
        l.addr4 = P("10.77.0.10/24");
        l.gw4 = A("10.77.0.1");
        l.server4 = A("10.77.0.1");
        l.has_v6 = true;
        l.addr6 = P("fd77::10/64");
        l.gw6 = A("fd77::1");
        l.dns[0] = A("10.77.0.53");
        l.dns[1] = A("fd77::53");
        l.dns[2] = A("10.77.0.54");
        l.n_dns = 3;
        snprintf(l.domain, sizeof l.domain, "example.test");
        snprintf(l.hostname, sizeof l.hostname, "vm1");
        l.routes[0].dst = P("10.0.0.0/8");
        l.routes[0].gw = A("10.77.0.254");
        l.n_routes = 1;
        l.mtu = 1400;
        l.lease_secs = 3600;
        return l;
}

/* ---------------------------------------------------------------- DHCPv4 helpers */

typedef struct Req4 {
        uint8_t type;
        const uint8_t *mac;
        const char *ciaddr, *reqip, *sid;
        uint16_t flags;
} Req4;

static size_t mk_dhcp4(uint8_t *b, size_t cap, const Req4 *r) {
        assert_true(cap >= 300);
        memset(b, 0, 300);
        b[0] = 1;
        b[1] = 1;
        b[2] = 6;
        b[4] = 0xde, b[5] = 0xad, b[6] = 0xbe, b[7] = 0xef;
        b[10] = (uint8_t) (r->flags >> 8);
        if (r->ciaddr) {
                uint32_t a = ip4(r->ciaddr);
                memcpy(b + 12, &a, 4);
        }
        memcpy(b + 28, r->mac ? r->mac : VM_MAC, 6);
        b[236] = 99, b[237] = 130, b[238] = 83, b[239] = 99;
        size_t n = 240;
        b[n++] = 53, b[n++] = 1, b[n++] = r->type;
        if (r->reqip) {
                uint32_t a = ip4(r->reqip);
                b[n++] = 50, b[n++] = 4;
                memcpy(b + n, &a, 4);
                n += 4;
        }
        if (r->sid) {
                uint32_t a = ip4(r->sid);
                b[n++] = 54, b[n++] = 4;
                memcpy(b + n, &a, 4);
                n += 4;
        }
        b[n++] = 55, b[n++] = 4, b[n++] = 1, b[n++] = 3, b[n++] = 6, b[n++] = 121;
        b[n++] = 255;
        return n < 300 ? 300 : n;
}

/* Finds option code in a reply; NULL if absent. Fails the test on a malformed option list. */
static const uint8_t *find_opt(const uint8_t *p, size_t len, uint8_t code, size_t *olen) {
        size_t i = 240;
        while (i < len) {
                if (p[i] == 0) {
                        i++;
                        continue;
                }
                if (p[i] == 255)
                        return NULL;
                assert_true(i + 1 < len);
                size_t l = p[i + 1];
                assert_true(i + 2 + l <= len);
                if (p[i] == code) {
                        *olen = l;
                        return p + i + 2;
                }
                i += 2 + l;
        }
        fail_msg("no end option");
        return NULL;
}

static void assert_opt_u32(const uint8_t *p, size_t len, uint8_t code, uint32_t want) {
        size_t ol = 0;
        const uint8_t *v = find_opt(p, len, code, &ol);
        assert_non_null(v);
        assert_int_equal(ol, 4);
        assert_int_equal(((uint32_t) v[0] << 24) | ((uint32_t) v[1] << 16) | ((uint32_t) v[2] << 8) | v[3], want);
}

static void assert_opt_ip(const uint8_t *p, size_t len, uint8_t code, const char *want) {
        size_t ol = 0;
        const uint8_t *v = find_opt(p, len, code, &ol);
        assert_non_null(v);
        assert_int_equal(ol, 4);
        uint32_t w = ip4(want);
        assert_memory_equal(v, &w, 4);
}

static int reply4(const Req4 *r, const DhcpLease *l, uint8_t *out, size_t *out_len) {
        uint8_t req[512];
        size_t n = mk_dhcp4(req, sizeof req, r);
        Dhcp4Msg m;
        assert_int_equal(dhcp4_parse(req, n, &m), 0);
        return dhcp4_build_reply(&m, l, out, DHCP4_REPLY_MAX, out_len);
}

/* ---------------------------------------------------------------- DHCPv4 tests */

static void test_discover_offer(void **state) {
        (void) state;
        DhcpLease l = test_lease();
        uint8_t out[DHCP4_REPLY_MAX];
        size_t len = 0;
        assert_int_equal(reply4(&(Req4){ .type = DHCP4_DISCOVER }, &l, out, &len), DHCP4_OFFER);
        assert_true(len >= 300);
        assert_int_equal(out[0], 2);
        assert_int_equal(out[1], 1);
        assert_int_equal(out[2], 6);
        const uint8_t xid[4] = { 0xde, 0xad, 0xbe, 0xef };
        assert_memory_equal(out + 4, xid, 4);
        uint32_t a = ip4("10.77.0.10"), s = ip4("10.77.0.1"), z = 0;
        assert_memory_equal(out + 16, &a, 4); /* yiaddr */
        assert_memory_equal(out + 20, &s, 4); /* siaddr */
        assert_memory_equal(out + 12, &z, 4); /* ciaddr */
        assert_memory_equal(out + 28, VM_MAC, 6);

        Dhcp4Msg back;
        assert_int_equal(dhcp4_parse(out, len, &back), 0);
        assert_int_equal(back.msg_type, DHCP4_OFFER);
        assert_true(back.has_server_id);
        assert_int_equal(back.server_id.s_addr, s);

        assert_opt_ip(out, len, 1, "255.255.255.0");
        assert_opt_ip(out, len, 3, "10.77.0.1");
        assert_opt_ip(out, len, 54, "10.77.0.1");
        assert_opt_u32(out, len, 51, 3600);
        assert_opt_u32(out, len, 58, 1800);
        assert_opt_u32(out, len, 59, 3150);
        size_t ol;
        const uint8_t *v = find_opt(out, len, 6, &ol);
        assert_non_null(v);
        assert_int_equal(ol, 8); /* only the IPv4 DNS servers, in order */
        uint32_t d1 = ip4("10.77.0.53"), d2 = ip4("10.77.0.54");
        assert_memory_equal(v, &d1, 4);
        assert_memory_equal(v + 4, &d2, 4);
        v = find_opt(out, len, 26, &ol);
        assert_non_null(v);
        assert_int_equal(ol, 2);
        assert_int_equal((v[0] << 8) | v[1], 1400);
        v = find_opt(out, len, 12, &ol);
        assert_non_null(v);
        assert_int_equal(ol, 3);
        assert_memory_equal(v, "vm1", 3);
        v = find_opt(out, len, 15, &ol);
        assert_non_null(v);
        assert_int_equal(ol, strlen("example.test"));
        assert_memory_equal(v, "example.test", ol);
        /* RFC 3442: 0.0.0.0/0 via gw (width 0, no octets), then 10.0.0.0/8 (width 8, one octet) */
        v = find_opt(out, len, 121, &ol);
        assert_non_null(v);
        const uint8_t want121[] = { 0, 10, 77, 0, 1, 8, 10, 10, 77, 0, 254 };
        assert_int_equal(ol, sizeof want121);
        assert_memory_equal(v, want121, sizeof want121);
}

static void test_no_mtu_no_routes(void **state) {
        (void) state;
        DhcpLease l = test_lease();
        l.mtu = 0;
        l.n_routes = 0;
        l.lease_secs = 0;
        uint8_t out[DHCP4_REPLY_MAX];
        size_t len = 0, ol;
        assert_int_equal(reply4(&(Req4){ .type = DHCP4_DISCOVER }, &l, out, &len), DHCP4_OFFER);
        assert_null(find_opt(out, len, 26, &ol));
        assert_null(find_opt(out, len, 121, &ol));
        assert_opt_u32(out, len, 51, DHCP_DEFAULT_LEASE_SECS);
}

static void test_route_encoding(void **state) {
        (void) state;
        DhcpLease l = test_lease();
        l.routes[0].dst = P("0.0.0.0/0");
        l.routes[0].gw = A("10.77.0.2");
        l.routes[1].dst = P("192.168.128.0/17");
        l.routes[1].gw = A("10.77.0.3");
        l.routes[2].dst = P("10.0.0.0/8"); /* on-link */
        l.routes[3].dst = P("fd00::/8");   /* IPv6: not in option 121 */
        l.n_routes = 4;
        uint8_t out[DHCP4_REPLY_MAX];
        size_t len = 0, ol;
        assert_int_equal(reply4(&(Req4){ .type = DHCP4_DISCOVER }, &l, out, &len), DHCP4_OFFER);
        const uint8_t *v = find_opt(out, len, 121, &ol);
        assert_non_null(v);
        /* an explicit default route replaces the implicit one via gw4 */
        const uint8_t want[] = { 0, 10, 77, 0, 2, 17, 192, 168, 128, 10, 77, 0, 3, 8, 10, 0, 0, 0, 0 };
        assert_int_equal(ol, sizeof want);
        assert_memory_equal(v, want, sizeof want);
}

static void test_request_ack_nak(void **state) {
        (void) state;
        DhcpLease l = test_lease();
        uint8_t out[DHCP4_REPLY_MAX];
        size_t len = 0, ol;
        uint32_t ours = ip4("10.77.0.10"), zero = 0;

        /* SELECTING */
        assert_int_equal(reply4(&(Req4){ .type = DHCP4_REQUEST, .reqip = "10.77.0.10", .sid = "10.77.0.1" }, &l,
                                out, &len),
                         DHCP4_ACK);
        assert_memory_equal(out + 16, &ours, 4);
        assert_opt_u32(out, len, 51, 3600);
        assert_opt_ip(out, len, 54, "10.77.0.1");
        /* INIT-REBOOT */
        assert_int_equal(reply4(&(Req4){ .type = DHCP4_REQUEST, .reqip = "10.77.0.10" }, &l, out, &len), DHCP4_ACK);
        /* RENEWING (unicast to us): ciaddr, no option 50/54 */
        assert_int_equal(reply4(&(Req4){ .type = DHCP4_REQUEST, .ciaddr = "10.77.0.10" }, &l, out, &len), DHCP4_ACK);
        assert_memory_equal(out + 12, &ours, 4);
        assert_memory_equal(out + 16, &ours, 4);

        /* another address → NAK, no yiaddr, no lease options, broadcast */
        assert_int_equal(reply4(&(Req4){ .type = DHCP4_REQUEST, .reqip = "10.77.0.99" }, &l, out, &len), DHCP4_NAK);
        assert_memory_equal(out + 16, &zero, 4);
        assert_null(find_opt(out, len, 51, &ol));
        assert_null(find_opt(out, len, 1, &ol));
        assert_opt_ip(out, len, 54, "10.77.0.1");
        assert_int_equal(reply4(&(Req4){ .type = DHCP4_REQUEST, .ciaddr = "10.1.2.3" }, &l, out, &len), DHCP4_NAK);
        assert_int_equal(reply4(&(Req4){ .type = DHCP4_REQUEST, .reqip = "10.77.0.11", .sid = "10.77.0.1" }, &l,
                                out, &len),
                         DHCP4_NAK);
        Dhcp4Msg m = { .msg_type = DHCP4_REQUEST, .op = 1 };
        memcpy(m.chaddr, VM_MAC, 6);
        struct in_addr dst;
        uint8_t dmac[6];
        dhcp4_reply_dest(&m, &l, DHCP4_NAK, &dst, dmac);
        assert_int_equal(dst.s_addr, htonl(INADDR_BROADCAST));
        const uint8_t bc[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
        assert_memory_equal(dmac, bc, 6);

        /* the client selected another server → silence */
        assert_int_equal(reply4(&(Req4){ .type = DHCP4_REQUEST, .reqip = "10.77.0.10", .sid = "10.77.0.2" }, &l,
                                out, &len),
                         -ENOMSG);
        /* REQUEST with neither option 50 nor ciaddr */
        assert_int_equal(reply4(&(Req4){ .type = DHCP4_REQUEST }, &l, out, &len), -ENOMSG);
}

static void test_other_chaddr_release_inform(void **state) {
        (void) state;
        DhcpLease l = test_lease();
        uint8_t out[DHCP4_REPLY_MAX];
        size_t len = 0, ol;
        assert_int_equal(reply4(&(Req4){ .type = DHCP4_DISCOVER, .mac = OTHER_MAC }, &l, out, &len), -ENOMSG);
        assert_int_equal(reply4(&(Req4){ .type = DHCP4_REQUEST, .mac = OTHER_MAC, .reqip = "10.77.0.10" }, &l, out,
                                &len),
                         -ENOMSG);
        assert_int_equal(reply4(&(Req4){ .type = DHCP4_RELEASE, .ciaddr = "10.77.0.10" }, &l, out, &len), -ENOMSG);
        assert_int_equal(reply4(&(Req4){ .type = DHCP4_DECLINE, .reqip = "10.77.0.10" }, &l, out, &len), -ENOMSG);
        /* INFORM: ACK without yiaddr and without lease time, ciaddr echoed */
        assert_int_equal(reply4(&(Req4){ .type = DHCP4_INFORM, .ciaddr = "10.77.0.10" }, &l, out, &len), DHCP4_ACK);
        uint32_t zero = 0, ours = ip4("10.77.0.10");
        assert_memory_equal(out + 16, &zero, 4);
        assert_memory_equal(out + 12, &ours, 4);
        assert_null(find_opt(out, len, 51, &ol));
        assert_opt_ip(out, len, 3, "10.77.0.1");
        /* no IPv4 in the lease */
        l.has_v4 = false;
        assert_int_equal(reply4(&(Req4){ .type = DHCP4_DISCOVER }, &l, out, &len), -ENOMSG);
}

static void test_reply_dest(void **state) {
        (void) state;
        DhcpLease l = test_lease();
        Dhcp4Msg m = { .op = 1, .msg_type = DHCP4_DISCOVER };
        memcpy(m.chaddr, VM_MAC, 6);
        struct in_addr dst;
        uint8_t dmac[6];
        dhcp4_reply_dest(&m, &l, DHCP4_OFFER, &dst, dmac);
        assert_int_equal(dst.s_addr, ip4("10.77.0.10"));
        assert_memory_equal(dmac, VM_MAC, 6);
        m.flags = DHCP4_FLAG_BROADCAST;
        dhcp4_reply_dest(&m, &l, DHCP4_OFFER, &dst, dmac);
        assert_int_equal(dst.s_addr, htonl(INADDR_BROADCAST));
        m.flags = 0;
        m.ciaddr.s_addr = ip4("10.77.0.10");
        dhcp4_reply_dest(&m, &l, DHCP4_ACK, &dst, dmac);
        assert_int_equal(dst.s_addr, ip4("10.77.0.10"));
        assert_memory_equal(dmac, VM_MAC, 6);
}

static void test_malformed4(void **state) {
        (void) state;
        uint8_t b[512];
        Dhcp4Msg m;
        size_t n = mk_dhcp4(b, sizeof b, &(Req4){ .type = DHCP4_DISCOVER });
        assert_int_equal(dhcp4_parse(b, n, &m), 0);
        assert_int_equal(m.msg_type, DHCP4_DISCOVER);
        assert_int_equal(m.n_prl, 4);

        /* truncated: shorter than header + cookie, and cut inside the options */
        for (size_t cut = 0; cut < 240; cut += 7)
                assert_int_equal(dhcp4_parse(b, cut, &m), -EBADMSG);
        assert_int_equal(dhcp4_parse(b, 242, &m), -EBADMSG); /* 53 with length but no value */
        assert_int_equal(dhcp4_parse(b, 241, &m), -EBADMSG); /* 53 without length byte */
        assert_int_equal(dhcp4_parse(NULL, 0, &m), -EBADMSG);

        /* option overrun: the PRL claims 200 bytes */
        uint8_t c[300];
        n = mk_dhcp4(c, sizeof c, &(Req4){ .type = DHCP4_DISCOVER });
        c[244] = 200;
        assert_int_equal(c[243], 55);
        assert_int_equal(dhcp4_parse(c, 260, &m), -EBADMSG);

        n = mk_dhcp4(c, sizeof c, &(Req4){ .type = DHCP4_DISCOVER });
        c[236] = 0x64; /* bad cookie */
        assert_int_equal(dhcp4_parse(c, n, &m), -EBADMSG);
        n = mk_dhcp4(c, sizeof c, &(Req4){ .type = DHCP4_DISCOVER });
        c[2] = 16; /* hlen */
        assert_int_equal(dhcp4_parse(c, n, &m), -EBADMSG);
        n = mk_dhcp4(c, sizeof c, &(Req4){ .type = DHCP4_DISCOVER });
        c[1] = 6; /* htype IEEE 802 */
        assert_int_equal(dhcp4_parse(c, n, &m), -EBADMSG);
        n = mk_dhcp4(c, sizeof c, &(Req4){ .type = DHCP4_DISCOVER });
        c[241] = 2; /* option 53 with length 2 */
        assert_int_equal(dhcp4_parse(c, n, &m), -EBADMSG);
        n = mk_dhcp4(c, sizeof c, &(Req4){ .type = DHCP4_DISCOVER });
        c[242] = 9; /* unknown message type */
        assert_int_equal(dhcp4_parse(c, n, &m), -EBADMSG);
        n = mk_dhcp4(c, sizeof c, &(Req4){ .type = DHCP4_DISCOVER });
        c[240] = 0, c[241] = 0, c[242] = 0; /* no option 53 at all (plain BOOTP) */
        assert_int_equal(dhcp4_parse(c, n, &m), -EBADMSG);
        n = mk_dhcp4(c, sizeof c, &(Req4){ .type = DHCP4_REQUEST, .reqip = "10.77.0.10" });
        c[244] = 3; /* option 50 with length 3 */
        assert_int_equal(dhcp4_parse(c, n, &m), -EBADMSG);

        /* a reply buffer too small */
        DhcpLease l = test_lease();
        n = mk_dhcp4(c, sizeof c, &(Req4){ .type = DHCP4_DISCOVER });
        assert_int_equal(dhcp4_parse(c, n, &m), 0);
        uint8_t small[100];
        size_t len;
        assert_int_equal(dhcp4_build_reply(&m, &l, small, sizeof small, &len), -ENOBUFS);
}

/* ---------------------------------------------------------------- frames */

static uint16_t sum_words(const uint8_t *p, size_t n, uint32_t s) {
        for (size_t i = 0; i + 1 < n; i += 2)
                s += (uint32_t) ((p[i] << 8) | p[i + 1]);
        if (n & 1)
                s += (uint32_t) (p[n - 1] << 8);
        while (s >> 16)
                s = (s & 0xffff) + (s >> 16);
        return (uint16_t) s;
}

static void test_frame_udp4(void **state) {
        (void) state;
        const uint8_t payload[] = "hello dhcp";
        uint8_t f[256];
        size_t n;
        struct in_addr src = { ip4("10.77.0.1") }, dst = { ip4("10.77.0.10") };
        assert_int_equal(frame_build_udp4(SRV_MAC, VM_MAC, src, dst, 67, 68, payload, sizeof payload, f, sizeof f, &n),
                         0);
        assert_int_equal(n, 14 + 20 + 8 + sizeof payload);
        assert_memory_equal(f, VM_MAC, 6);
        assert_memory_equal(f + 6, SRV_MAC, 6);
        /* recompute: the IPv4 header sums to 0xffff, UDP with pseudo header too */
        assert_int_equal(sum_words(f + 14, 20, 0), 0xffff);
        uint8_t ph[12];
        memcpy(ph, f + 26, 8);
        ph[8] = 0, ph[9] = 17, ph[10] = 0, ph[11] = (uint8_t) (8 + sizeof payload);
        assert_int_equal(sum_words(f + 34, 8 + sizeof payload, sum_words(ph, 12, 0)), 0xffff);

        FrameInfo fi;
        assert_int_equal(frame_parse_udp(f, n, true, &fi), 0);
        assert_int_equal(fi.family, AF_INET);
        assert_int_equal(fi.sport, 67);
        assert_int_equal(fi.dport, 68);
        assert_int_equal(fi.vlan, -1);
        assert_int_equal(fi.payload_len, sizeof payload);
        assert_memory_equal(fi.payload, payload, sizeof payload);
        assert_int_equal(fi.src.in.s_addr, src.s_addr);

        f[n - 1] ^= 0x40; /* corrupt the payload: UDP checksum fails */
        assert_int_equal(frame_parse_udp(f, n, true, &fi), -EBADMSG);
        assert_int_equal(frame_parse_udp(f, n, false, &fi), 0); /* offloaded checksum: not checked */
        f[n - 1] ^= 0x40;
        f[22] ^= 1; /* TTL: IP header checksum fails */
        assert_int_equal(frame_parse_udp(f, n, true, &fi), -EBADMSG);
        f[22] ^= 1;
        for (size_t cut = 0; cut < n; cut++)
                assert_int_not_equal(frame_parse_udp(f, cut, true, &fi), 0);

        /* with an 802.1Q tag */
        uint8_t t[260];
        memcpy(t, f, 12);
        t[12] = 0x81, t[13] = 0x00, t[14] = 0x00, t[15] = 42;
        memcpy(t + 16, f + 12, n - 12);
        assert_int_equal(frame_parse_udp(t, n + 4, true, &fi), 0);
        assert_int_equal(fi.vlan, 42);
        assert_int_equal(fi.dport, 68);
}

/* ---------------------------------------------------------------- IPv6 */

static const uint8_t *find_nd_opt(const uint8_t *m, size_t len, size_t off, uint8_t type, size_t *olen) {
        while (off < len) {
                assert_true(off + 2 <= len);
                size_t l = (size_t) m[off + 1] * 8;
                assert_true(l > 0 && off + l <= len);
                if (m[off] == type) {
                        *olen = l;
                        return m + off;
                }
                off += l;
        }
        return NULL;
}

static void test_ra(void **state) {
        (void) state;
        DhcpLease l = test_lease();
        uint8_t ra[RA_MAX_LEN], f[1024];
        size_t rl, n;
        assert_int_equal(icmp6_build_ra(&l, SRV_MAC, ra, sizeof ra, &rl), 0);
        struct in6_addr src, all;
        dhcp6_link_local(SRV_MAC, &src);
        KvAddr want_ll = A("fe80::5eff:fe10:1");
        assert_memory_equal(&src, &want_ll.in6, 16);
        inet_pton(AF_INET6, "ff02::1", &all);
        const uint8_t mc[6] = { 0x33, 0x33, 0, 0, 0, 1 };
        assert_int_equal(frame_build_icmp6(SRV_MAC, mc, &src, &all, ra, rl, f, sizeof f, &n), 0);

        FrameInfo fi;
        assert_int_equal(frame_parse(f, n, true, &fi), 0); /* checksum verified */
        assert_int_equal(fi.proto, IPPROTO_ICMPV6);
        assert_int_equal(fi.hop_limit, 255);
        const uint8_t *m = fi.payload;
        size_t ml = fi.payload_len;
        /* recompute the ICMPv6 checksum with the pseudo header */
        uint8_t ph[40] = {};
        memcpy(ph, &src, 16);
        memcpy(ph + 16, &all, 16);
        ph[34] = (uint8_t) (ml >> 8), ph[35] = (uint8_t) ml, ph[39] = 58;
        assert_int_equal(sum_words(m, ml, sum_words(ph, 40, 0)), 0xffff);

        assert_int_equal(m[0], ICMP6_RA);
        assert_int_equal(m[1], 0);
        assert_true(m[5] & 0x80); /* M */
        assert_int_equal((m[6] << 8) | m[7], RA_ROUTER_LIFETIME);
        size_t ol;
        const uint8_t *o = find_nd_opt(m, ml, 16, 1, &ol);
        assert_non_null(o);
        assert_memory_equal(o + 2, SRV_MAC, 6);
        o = find_nd_opt(m, ml, 16, 5, &ol);
        assert_non_null(o);
        assert_int_equal(((uint32_t) o[4] << 24) | ((uint32_t) o[5] << 16) | (o[6] << 8) | o[7], 1400);
        o = find_nd_opt(m, ml, 16, 3, &ol);
        assert_non_null(o);
        assert_int_equal(ol, 32);
        assert_int_equal(o[2], 64);
        assert_int_equal(o[3] & 0xc0, 0x80); /* L=1 A=0 */
        KvAddr pfx = A("fd77::");
        assert_memory_equal(o + 16, &pfx.in6, 16);
        {
                /* slaac: the same prefix with A=1, so a guest without DHCPv6 takes its EUI-64 address */
                DhcpLease ls = l;
                ls.slaac = true;
                uint8_t ra2[512];
                size_t rl2;
                assert_int_equal(icmp6_build_ra(&ls, SRV_MAC, ra2, sizeof ra2, &rl2), 0);
                size_t ol2;
                const uint8_t *o2 = find_nd_opt(ra2, rl2, 16, 3, &ol2);
                assert_non_null(o2);
                assert_int_equal(o2[3] & 0xc0, 0xc0); /* L=1 A=1 */
        }
        o = find_nd_opt(m, ml, 16, 25, &ol);
        assert_non_null(o);
        assert_int_equal(ol, 24); /* one IPv6 DNS server */
        KvAddr dns = A("fd77::53");
        assert_memory_equal(o + 8, &dns.in6, 16);

        /* without IPv6 the RA does not make us a default router */
        l.has_v6 = false;
        assert_int_equal(icmp6_build_ra(&l, SRV_MAC, ra, sizeof ra, &rl), 0);
        assert_int_equal((ra[6] << 8) | ra[7], 0);
        assert_null(find_nd_opt(ra, rl, 16, 3, &ol));
}

static void test_rs_parse(void **state) {
        (void) state;
        uint8_t rs[16] = { ICMP6_RS, 0, 0, 0, 0, 0, 0, 0, 1, 1 };
        memcpy(rs + 10, VM_MAC, 6);
        Icmp6Rs r;
        assert_int_equal(icmp6_parse_rs(rs, sizeof rs, &r), 0);
        assert_true(r.has_src_lladdr);
        assert_memory_equal(r.src_lladdr, VM_MAC, 6);
        assert_int_equal(icmp6_parse_rs(rs, 8, &r), 0);
        assert_false(r.has_src_lladdr);
        rs[9] = 0; /* zero-length option */
        assert_int_equal(icmp6_parse_rs(rs, sizeof rs, &r), -EBADMSG);
        rs[9] = 2; /* overruns */
        assert_int_equal(icmp6_parse_rs(rs, sizeof rs, &r), -EBADMSG);
        rs[0] = ICMP6_RA;
        assert_int_equal(icmp6_parse_rs(rs, 8, &r), -EBADMSG);
        assert_int_equal(icmp6_parse_rs(rs, 7, &r), -EBADMSG);
}

static size_t put6(uint8_t *b, size_t n, uint16_t code, const void *v, size_t l) {
        b[n] = (uint8_t) (code >> 8), b[n + 1] = (uint8_t) code;
        b[n + 2] = (uint8_t) (l >> 8), b[n + 3] = (uint8_t) l;
        if (l)
                memcpy(b + n + 4, v, l);
        return n + 4 + l;
}

static size_t mk_dhcp6(uint8_t *b, uint8_t type, bool rapid, const uint8_t *sid, size_t sid_len) {
        size_t n = 0;
        b[n++] = type;
        b[n++] = 0x12, b[n++] = 0x34, b[n++] = 0x56;
        const uint8_t cid[] = { 0, 3, 0, 1, 0x02, 0x00, 0x5e, 0x10, 0x00, 0x10 };
        n = put6(b, n, 1, cid, sizeof cid);
        if (sid)
                n = put6(b, n, 2, sid, sid_len);
        const uint8_t ia[12] = { 0, 0, 0, 7 };
        n = put6(b, n, 3, ia, sizeof ia);
        const uint8_t oro[] = { 0, 23 };
        n = put6(b, n, 6, oro, sizeof oro);
        if (rapid)
                n = put6(b, n, 14, NULL, 0);
        return n;
}

static const uint8_t *find6(const uint8_t *p, size_t len, size_t off, uint16_t code, size_t *olen) {
        while (off < len) {
                assert_true(off + 4 <= len);
                size_t l = (size_t) ((p[off + 2] << 8) | p[off + 3]);
                assert_true(off + 4 + l <= len);
                if (((p[off] << 8) | p[off + 1]) == code) {
                        *olen = l;
                        return p + off + 4;
                }
                off += 4 + l;
        }
        return NULL;
}

static void check_ia_na(const uint8_t *out, size_t len) {
        size_t ol, al;
        const uint8_t *ia = find6(out, len, 4, 3, &ol);
        assert_non_null(ia);
        assert_true(ol >= 12 + 28);
        assert_int_equal(ia[3], 7); /* IAID echoed */
        const uint8_t *addr = find6(ia, ol, 12, 5, &al);
        assert_non_null(addr);
        assert_int_equal(al, 24);
        KvAddr want = A("fd77::10");
        assert_memory_equal(addr, &want.in6, 16);
        assert_int_equal(((uint32_t) addr[20] << 24) | ((uint32_t) addr[21] << 16) | (addr[22] << 8) | addr[23], 3600);
}

static void test_dhcp6(void **state) {
        (void) state;
        DhcpLease l = test_lease();
        uint8_t req[256], out[DHCP6_REPLY_MAX];
        size_t n, len, ol;
        Dhcp6Msg m;

        n = mk_dhcp6(req, DHCP6_SOLICIT, false, NULL, 0);
        assert_int_equal(dhcp6_parse(req, n, &m), 0);
        assert_true(m.has_ia_na);
        assert_int_equal(m.ia_na_iaid, 7);
        assert_int_equal(dhcp6_build_reply(&m, &l, out, sizeof out, &len), DHCP6_ADVERTISE);
        assert_int_equal(out[0], DHCP6_ADVERTISE);
        assert_memory_equal(out + 1, req + 1, 3);
        const uint8_t *v = find6(out, len, 4, 1, &ol);
        assert_non_null(v);
        assert_int_equal(ol, 10);
        assert_memory_equal(v, req + 8, 10); /* client id echoed */
        uint8_t duid[10];
        assert_int_equal(dhcp6_server_duid(SRV_MAC, duid), 10);
        const uint8_t want_duid[10] = { 0, 3, 0, 1, 0x02, 0x00, 0x5e, 0x10, 0x00, 0x01 };
        assert_memory_equal(duid, want_duid, 10);
        v = find6(out, len, 4, 2, &ol);
        assert_non_null(v);
        assert_int_equal(ol, 10);
        assert_memory_equal(v, want_duid, 10);
        check_ia_na(out, len);
        v = find6(out, len, 4, 23, &ol);
        assert_non_null(v);
        assert_int_equal(ol, 16);
        KvAddr dns = A("fd77::53");
        assert_memory_equal(v, &dns.in6, 16);
        v = find6(out, len, 4, 24, &ol);
        assert_non_null(v);
        const uint8_t dn[] = "\7example\4test";
        assert_int_equal(ol, sizeof dn);
        assert_memory_equal(v, dn, sizeof dn);
        assert_null(find6(out, len, 4, 14, &ol));

        /* rapid commit → REPLY with option 14 */
        n = mk_dhcp6(req, DHCP6_SOLICIT, true, NULL, 0);
        assert_int_equal(dhcp6_parse(req, n, &m), 0);
        assert_int_equal(dhcp6_build_reply(&m, &l, out, sizeof out, &len), DHCP6_REPLY);
        assert_non_null(find6(out, len, 4, 14, &ol));
        check_ia_na(out, len);

        /* REQUEST to us → REPLY; to another server → silence */
        n = mk_dhcp6(req, DHCP6_REQUEST, false, want_duid, 10);
        assert_int_equal(dhcp6_parse(req, n, &m), 0);
        assert_int_equal(dhcp6_build_reply(&m, &l, out, sizeof out, &len), DHCP6_REPLY);
        check_ia_na(out, len);
        const uint8_t other_duid[10] = { 0, 3, 0, 1, 1, 2, 3, 4, 5, 6 };
        n = mk_dhcp6(req, DHCP6_REQUEST, false, other_duid, 10);
        assert_int_equal(dhcp6_parse(req, n, &m), 0);
        assert_int_equal(dhcp6_build_reply(&m, &l, out, sizeof out, &len), -ENOMSG);
        n = mk_dhcp6(req, DHCP6_RENEW, false, want_duid, 10);
        assert_int_equal(dhcp6_parse(req, n, &m), 0);
        assert_int_equal(dhcp6_build_reply(&m, &l, out, sizeof out, &len), DHCP6_REPLY);
        n = mk_dhcp6(req, DHCP6_REBIND, false, NULL, 0);
        assert_int_equal(dhcp6_parse(req, n, &m), 0);
        assert_int_equal(dhcp6_build_reply(&m, &l, out, sizeof out, &len), DHCP6_REPLY);
        check_ia_na(out, len);
        /* SOLICIT carrying a server id is discarded */
        n = mk_dhcp6(req, DHCP6_SOLICIT, false, want_duid, 10);
        assert_int_equal(dhcp6_parse(req, n, &m), 0);
        assert_int_equal(dhcp6_build_reply(&m, &l, out, sizeof out, &len), -ENOMSG);

        /* no IPv6 in the lease */
        l.has_v6 = false;
        n = mk_dhcp6(req, DHCP6_SOLICIT, false, NULL, 0);
        assert_int_equal(dhcp6_parse(req, n, &m), 0);
        assert_int_equal(dhcp6_build_reply(&m, &l, out, sizeof out, &len), -ENOMSG);

        /* malformed: overrun, truncated header, server-side message, bad rapid commit */
        n = mk_dhcp6(req, DHCP6_SOLICIT, false, NULL, 0);
        req[7] = 200;
        assert_int_equal(dhcp6_parse(req, n, &m), -EBADMSG);
        n = mk_dhcp6(req, DHCP6_SOLICIT, false, NULL, 0);
        assert_int_equal(dhcp6_parse(req, 3, &m), -EBADMSG);
        assert_int_equal(dhcp6_parse(req, 6, &m), -EBADMSG);
        req[0] = DHCP6_ADVERTISE;
        assert_int_equal(dhcp6_parse(req, n, &m), -EBADMSG);
        req[0] = 12; /* RELAY-FORW */
        assert_int_equal(dhcp6_parse(req, n, &m), -EBADMSG);
        n = mk_dhcp6(req, DHCP6_SOLICIT, false, NULL, 0);
        n = put6(req, n, 14, "x", 1);
        assert_int_equal(dhcp6_parse(req, n, &m), -EBADMSG);
}

static void test_dhcp6_confirm(void **state) {
        (void) state;
        DhcpLease l = test_lease();
        uint8_t req[256], out[DHCP6_REPLY_MAX];
        size_t n = 0, len, ol;
        Dhcp6Msg m;
        req[n++] = DHCP6_CONFIRM, req[n++] = 1, req[n++] = 2, req[n++] = 3;
        const uint8_t cid[] = { 0, 3, 0, 1, 0x02, 0x00, 0x5e, 0x10, 0x00, 0x10 };
        n = put6(req, n, 1, cid, sizeof cid);
        uint8_t ia[12 + 28] = { 0, 0, 0, 7 };
        ia[12] = 0, ia[13] = 5, ia[14] = 0, ia[15] = 24;
        KvAddr other = A("fd99::10");
        memcpy(ia + 16, &other.in6, 16);
        size_t at = n;
        n = put6(req, n, 3, ia, sizeof ia);
        assert_int_equal(dhcp6_parse(req, n, &m), 0);
        assert_true(m.has_ia_addr);
        assert_int_equal(dhcp6_build_reply(&m, &l, out, sizeof out, &len), DHCP6_REPLY);
        const uint8_t *st = find6(out, len, 4, 13, &ol);
        assert_non_null(st);
        assert_int_equal((st[0] << 8) | st[1], 4); /* NotOnLink */
        KvAddr ours = A("fd77::10");
        memcpy(req + at + 4 + 16, &ours.in6, 16);
        assert_int_equal(dhcp6_parse(req, n, &m), 0);
        assert_int_equal(dhcp6_build_reply(&m, &l, out, sizeof out, &len), DHCP6_REPLY);
        st = find6(out, len, 4, 13, &ol);
        assert_non_null(st);
        assert_int_equal((st[0] << 8) | st[1], 0); /* Success */
        /* IAADDR overrunning its IA_NA */
        req[at + 4 + 15] = 60;
        assert_int_equal(dhcp6_parse(req, n, &m), -EBADMSG);
}

static void test_frame_udp6(void **state) {
        (void) state;
        struct in6_addr src, dst;
        dhcp6_link_local(SRV_MAC, &src);
        dhcp6_link_local(VM_MAC, &dst);
        const uint8_t payload[] = { 2, 1, 2, 3, 0, 1, 0, 0 };
        uint8_t f[256];
        size_t n;
        assert_int_equal(frame_build_udp6(SRV_MAC, VM_MAC, &src, &dst, 547, 546, payload, sizeof payload, f, sizeof f,
                                          &n),
                         0);
        assert_int_equal(n, 14 + 40 + 8 + sizeof payload);
        uint8_t ph[40] = {};
        memcpy(ph, &src, 16);
        memcpy(ph + 16, &dst, 16);
        ph[35] = 8 + sizeof payload, ph[39] = 17;
        assert_int_equal(sum_words(f + 54, 8 + sizeof payload, sum_words(ph, 40, 0)), 0xffff);
        FrameInfo fi;
        assert_int_equal(frame_parse_udp(f, n, true, &fi), 0);
        assert_int_equal(fi.family, AF_INET6);
        assert_int_equal(fi.sport, 547);
        assert_int_equal(fi.dport, 546);
        f[60] = 0, f[61] = 0; /* zero UDP checksum is invalid for IPv6 */
        assert_int_equal(frame_parse_udp(f, n, true, &fi), -EBADMSG);
}

static void test_lease_validate(void **state) {
        (void) state;
        DhcpLease l = test_lease();
        KvErr e = {};
        assert_int_equal(dhcp_lease_validate(&l, &e), 0);
        l.mac[0] = 0x01; /* multicast */
        assert_int_equal(dhcp_lease_validate(&l, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "'mac'"));
        l = test_lease();
        l.mtu = 100;
        kverr_clear(&e);
        assert_int_equal(dhcp_lease_validate(&l, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "100"));
        l = test_lease();
        l.addr4 = P("fd00::1/64");
        assert_int_equal(dhcp_lease_validate(&l, NULL), -EINVAL);
}

static void test_server_errors(void **state) {
        (void) state;
        _cleanup_(event_loop_freep) EventLoop *loop = NULL;
        assert_int_equal(event_loop_new(&loop), 0);
        DhcpLease l = test_lease();
        DhcpServer *s = NULL;
        KvErr e = {};
        /* the lease is checked before anything is opened */
        l.mtu = 5;
        assert_int_equal(dhcp_server_new(loop, -1, "lo", &l, &s, &e), -EINVAL);
        assert_null(s);
        kverr_clear(&e);
        l = test_lease();
        assert_int_equal(dhcp_server_new(loop, -1, "this-name-is-too-long", &l, &s, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "ifname"));
        if (geteuid() != 0)
                return; /* AF_PACKET needs CAP_NET_RAW */
        kverr_clear(&e);
        assert_true(dhcp_server_new(loop, -1, "kvnodev0", &l, &s, &e) < 0);
        assert_non_null(strstr(e.msg, "kvnodev0"));
        assert_null(s);
        /* on loopback the socket opens (nothing is changed on the interface); stats start at 0 */
        kverr_clear(&e);
        assert_int_equal(dhcp_server_new(loop, -1, "lo", &l, &s, &e), 0);
        json_t *j = dhcp_server_stats(s);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "ifname")), "lo");
        assert_int_equal(json_integer_value(json_object_get(j, "ack")), 0);
        json_decref(j);
        l.has_v6 = false;
        assert_int_equal(dhcp_server_update(s, &l), 0);
        l.mac[0] = 1;
        assert_int_equal(dhcp_server_update(s, &l), -EINVAL);
        s = dhcp_server_free(s);
        assert_null(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_discover_offer),
                cmocka_unit_test(test_no_mtu_no_routes),
                cmocka_unit_test(test_route_encoding),
                cmocka_unit_test(test_request_ack_nak),
                cmocka_unit_test(test_other_chaddr_release_inform),
                cmocka_unit_test(test_reply_dest),
                cmocka_unit_test(test_malformed4),
                cmocka_unit_test(test_frame_udp4),
                cmocka_unit_test(test_ra),
                cmocka_unit_test(test_rs_parse),
                cmocka_unit_test(test_dhcp6),
                cmocka_unit_test(test_dhcp6_confirm),
                cmocka_unit_test(test_frame_udp6),
                cmocka_unit_test(test_lease_validate),
                cmocka_unit_test(test_server_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
