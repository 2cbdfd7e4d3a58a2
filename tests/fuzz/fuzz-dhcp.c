// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness over the DHCP responder's wire parsers and the builders fed by them:
// frame_parse (Ethernet/802.1Q/IPv4/IPv6/UDP/ICMPv6 with checksums), dhcp4_parse + dhcp4_build_reply,
// dhcp6_parse + dhcp6_build_reply, icmp6_parse_rs. Nothing here opens a socket.
//
// Build: `make fuzz` (clang, -fsanitize=fuzzer,address,undefined) -> build/fuzz/fuzz-dhcp, from the
//   sources listed as FUZZ_SRC_fuzz-dhcp in the Makefile.
// Run:   `make fuzz-smoke [FUZZ_SECONDS=5]` runs every harness briefly over its seeds; for longer:
//   build/fuzz/fuzz-dhcp -max_total_time=60 -max_len=2048 build/fuzz/corpus/fuzz-dhcp tests/fuzz/corpus/fuzz-dhcp
// Seeds: tests/fuzz/corpus/fuzz-dhcp/: a DHCPv4 DISCOVER and REQUEST (byte 1), a DHCPv6 SOLICIT (byte 2), a router solicitation (byte 3).
//
// Input layout: byte 0 selects the parser (0 whole frame, 1 DHCPv4 payload, 2 DHCPv6 payload, 3 RS);
// bit 2 of byte 0 turns on checksum verification for mode 0; the rest is the wire data. Everything a parser accepts must produce a reply that parses back.
#include <arpa/inet.h>
#include <stdint.h>

#include "netd/dhcp/dhcp.h"

static DhcpLease lease(void) {
        DhcpLease l = {
                .mac = { 0x02, 0x00, 0x5e, 0x10, 0x00, 0x10 },
                .server_mac = { 0x02, 0x00, 0x5e, 0x10, 0x00, 0x01 },
                .has_v4 = true,
                .has_v6 = true,
                .mtu = 1400,
                .lease_secs = 3600,
        };
        if (kv_prefix_parse("10.77.0.10/24", &l.addr4) < 0 || kv_addr_parse("10.77.0.1", &l.gw4) < 0 ||
            kv_prefix_parse("fd77::10/64", &l.addr6) < 0 || kv_addr_parse("10.77.0.53", &l.dns[0]) < 0 ||
            kv_addr_parse("fd77::53", &l.dns[1]) < 0 || kv_prefix_parse("10.0.0.0/8", &l.routes[0].dst) < 0)
                __builtin_trap();
        l.server4 = l.gw4;
        l.n_dns = 2;
        l.n_routes = 1;
        snprintf(l.domain, sizeof l.domain, "example.test");
        snprintf(l.hostname, sizeof l.hostname, "vm1");
        return l;
}

static void do_dhcp4(const uint8_t *p, size_t n, const DhcpLease *l) {
        Dhcp4Msg m;
        if (dhcp4_parse(p, n, &m) < 0)
                return;
        /* make the client ours so the builders run too */
        memcpy(m.chaddr, l->mac, 6);
        m.op = 1;
        uint8_t out[DHCP4_REPLY_MAX];
        size_t len;
        int t = dhcp4_build_reply(&m, l, out, sizeof out, &len);
        if (t < 0)
                return;
        Dhcp4Msg back;
        if (len > sizeof out || dhcp4_parse(out, len, &back) < 0 || back.msg_type != t)
                __builtin_trap();
        struct in_addr dst;
        uint8_t mac[6], frame[2048];
        dhcp4_reply_dest(&m, l, t, &dst, mac);
        size_t flen;
        FrameInfo fi;
        if (frame_build_udp4(l->server_mac, mac, l->server4.in, dst, 67, 68, out, len, frame, sizeof frame, &flen) <
                    0 ||
            frame_parse_udp(frame, flen, true, &fi) < 0 || fi.payload_len != len)
                __builtin_trap();
}

static void do_dhcp6(const uint8_t *p, size_t n, const DhcpLease *l) {
        Dhcp6Msg m;
        if (dhcp6_parse(p, n, &m) < 0)
                return;
        uint8_t out[DHCP6_REPLY_MAX];
        size_t len;
        int t = dhcp6_build_reply(&m, l, out, sizeof out, &len);
        if (t < 0)
                return;
        if (len > sizeof out || out[0] != t)
                __builtin_trap();
        struct in6_addr src, dst;
        dhcp6_link_local(l->server_mac, &src);
        dhcp6_link_local(l->mac, &dst);
        uint8_t frame[2048];
        size_t flen;
        FrameInfo fi;
        if (frame_build_udp6(l->server_mac, l->mac, &src, &dst, 547, 546, out, len, frame, sizeof frame, &flen) < 0 ||
            frame_parse_udp(frame, flen, true, &fi) < 0)
                __builtin_trap();
}

static void do_rs(const uint8_t *p, size_t n, const DhcpLease *l) {
        Icmp6Rs rs;
        if (icmp6_parse_rs(p, n, &rs) < 0)
                return;
        uint8_t ra[RA_MAX_LEN], frame[2048];
        size_t rl, flen;
        struct in6_addr src, all = { .s6_addr = { 0xff, 0x02, [15] = 1 } };
        dhcp6_link_local(l->server_mac, &src);
        FrameInfo fi;
        if (icmp6_build_ra(l, l->server_mac, ra, sizeof ra, &rl) < 0 ||
            frame_build_icmp6(l->server_mac, l->mac, &src, &all, ra, rl, frame, sizeof frame, &flen) < 0 ||
            frame_parse(frame, flen, true, &fi) < 0 || fi.payload_len != rl)
                __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        static DhcpLease l;
        static bool init;
        if (!init) {
                l = lease();
                init = true;
        }
        const uint8_t *p = data + 1;
        size_t n = size - 1;
        switch (data[0] & 3) {
        case 0: {
                FrameInfo fi;
                /* both with and without checksum verification (offloaded frames) */
                if (frame_parse(p, n, data[0] & 4, &fi) < 0)
                        return 0;
                if (fi.payload < p || fi.payload + fi.payload_len > p + n)
                        __builtin_trap();
                if (fi.proto == 17 && fi.family == AF_INET && fi.dport == 67)
                        do_dhcp4(fi.payload, fi.payload_len, &l);
                else if (fi.proto == 17 && fi.family == AF_INET6 && fi.dport == 547)
                        do_dhcp6(fi.payload, fi.payload_len, &l);
                else if (fi.proto == 58)
                        do_rs(fi.payload, fi.payload_len, &l);
                break;
        }
        case 1:
                do_dhcp4(p, n, &l);
                break;
        case 2:
                do_dhcp6(p, n, &l);
                break;
        case 3:
                do_rs(p, n, &l);
                break;
        }
        return 0;
}
