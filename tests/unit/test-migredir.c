/* SPDX-License-Identifier: Apache-2.0 */
/* The migration redirect (ebpf/migredir.bpf.c, netd/migration/migredir.c) against the real kernel. The program runs on
 * crafted frames through BPF_PROG_TEST_RUN (verdict, rewritten headers, checksum); the netd side arms and
 * disarms addresses on a veth in a private network namespace (attach on the interface carrying the node
 * address, one owner per address, detach with the last entry, a previous run's filter removed). Needs root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <sched.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "ebpf/migredir.h"
#include "migredir.skel.h"
#include "netd/link/netlink.h"
#include "netd/link/tcbpf.h"
#include "netd/migration/migredir.h"

static const uint8_t VM_MAC[6] = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };
static const uint8_t GW_MAC[6] = { 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee };

/* ---- the program ---- */

static uint16_t ip_csum(const void *p, size_t n) {
        const uint8_t *b = p;
        uint32_t s = 0;
        for (size_t i = 0; i + 1 < n; i += 2)
                s += (uint32_t) (b[i] << 8 | b[i + 1]);
        while (s >> 16)
                s = (s & 0xffff) + (s >> 16);
        return (uint16_t) ~s;
}

/* Ethernet + IPv4 (+ 8 bytes of ICMP) to dst with ttl; the destination MAC is the test device's (all zero:
 * BPF_PROG_TEST_RUN runs on loopback, so that is "to this host"), unless dmac is given. */
static size_t frame4(uint8_t *buf, const char *dst, uint8_t ttl, const uint8_t *dmac) {
        memset(buf, 0, 64);
        struct ethhdr *eth = (struct ethhdr *) buf;
        if (dmac)
                memcpy(eth->h_dest, dmac, 6);
        eth->h_source[0] = 0x02;
        eth->h_source[5] = 0x09;
        eth->h_proto = htons(ETH_P_IP);
        struct iphdr ip = { .version = 4, .ihl = 5, .tot_len = htons(28), .ttl = ttl, .protocol = 1 };
        inet_pton(AF_INET, "198.51.100.100", &ip.saddr);
        inet_pton(AF_INET, dst, &ip.daddr);
        ip.check = htons(ip_csum(&ip, sizeof ip));
        memcpy(buf + ETH_HLEN, &ip, sizeof ip); /* (the frame's IP header is not 4-byte aligned) */
        return ETH_HLEN + 28;
}

static size_t frame6(uint8_t *buf, const char *dst, uint8_t hops) {
        memset(buf, 0, 128);
        struct ethhdr *eth = (struct ethhdr *) buf;
        eth->h_proto = htons(ETH_P_IPV6);
        struct ipv6hdr ip6 = { .version = 6, .payload_len = htons(8), .nexthdr = 58, .hop_limit = hops };
        inet_pton(AF_INET6, "2001:db8::100", &ip6.saddr);
        inet_pton(AF_INET6, dst, &ip6.daddr);
        memcpy(buf + ETH_HLEN, &ip6, sizeof ip6);
        return ETH_HLEN + sizeof ip6 + 8;
}

static void put(struct migredir_bpf *s, int family, const char *a, uint32_t ifindex) {
        struct migredir_key k = { .family = (uint32_t) family };
        assert_int_equal(inet_pton(family, a, k.addr), 1);
        struct migredir_val v = { .ifindex = ifindex };
        memcpy(v.dmac, VM_MAC, 6);
        memcpy(v.smac, GW_MAC, 6);
        assert_int_equal(bpf_map_update_elem(bpf_map__fd(s->maps.migredir_targets), &k, &v, BPF_ANY), 0);
}

static uint64_t packets(struct migredir_bpf *s, int family, const char *a) {
        struct migredir_key k = { .family = (uint32_t) family };
        assert_int_equal(inet_pton(family, a, k.addr), 1);
        struct migredir_val v;
        assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(s->maps.migredir_targets), &k, &v), 0);
        return v.packets;
}

/* Runs the program on in[0..n): its verdict, the frame it leaves in out. */
static int run(struct migredir_bpf *s, const uint8_t *in, size_t n, uint8_t *out) {
        DECLARE_LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = (uint32_t) n, .data_out = out,
                            .data_size_out = 256, .repeat = 1);
        assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(s->progs.migredir_ingress), &o), 0);
        return (int) o.retval;
}

static void test_program(void **state) {
        (void) state;
        struct migredir_bpf *s = migredir_bpf__open_and_load();
        assert_non_null(s);
        put(s, AF_INET, "10.88.0.5", 7);
        put(s, AF_INET6, "fd00::5", 7);
        uint8_t in[256], out[256];

        /* an armed address: redirected, headers rewritten, TTL one less, checksum still right */
        size_t n = frame4(in, "10.88.0.5", 64, NULL);
        assert_int_equal(run(s, in, n, out), TC_ACT_REDIRECT);
        struct iphdr ip;
        memcpy(&ip, out + ETH_HLEN, sizeof ip);
        assert_memory_equal(out, VM_MAC, 6);
        assert_memory_equal(out + 6, GW_MAC, 6);
        assert_int_equal(ip.ttl, 63);
        assert_int_equal(ip_csum(&ip, sizeof ip), 0);
        assert_int_equal(packets(s, AF_INET, "10.88.0.5"), 1);

        /* another address, a frame not sent to this host, TTL 1: left to the stack untouched */
        n = frame4(in, "10.88.0.6", 64, NULL);
        assert_int_equal(run(s, in, n, out), TC_ACT_OK);
        assert_memory_equal(out, in, n);
        static const uint8_t other[6] = { 0x02, 0, 0, 0, 0, 0x77 };
        n = frame4(in, "10.88.0.5", 64, other);
        assert_int_equal(run(s, in, n, out), TC_ACT_OK);
        n = frame4(in, "10.88.0.5", 1, NULL);
        assert_int_equal(run(s, in, n, out), TC_ACT_OK);
        assert_memory_equal(out, in, n);
        assert_int_equal(packets(s, AF_INET, "10.88.0.5"), 1);

        /* IPv6: hop limit one less (BPF_PROG_TEST_RUN refuses truncated IP headers itself) */
        n = frame6(in, "fd00::5", 64);
        assert_int_equal(run(s, in, n, out), TC_ACT_REDIRECT);
        assert_memory_equal(out, VM_MAC, 6);
        assert_int_equal(out[ETH_HLEN + offsetof(struct ipv6hdr, hop_limit)], 63);
        assert_int_equal(packets(s, AF_INET6, "fd00::5"), 1);
        n = frame6(in, "fd00::6", 64);
        assert_int_equal(run(s, in, n, out), TC_ACT_OK);
        migredir_bpf__destroy(s);
}

/* ---- netd's side, in a private namespace: ul0 carries the node address, kvx0 is the target's veth ---- */

static int ifindex_of(const char *name) {
        int i = (int) if_nametoindex(name);
        assert_true(i > 0);
        return i;
}

static int filter_on_ul0(void) {
        char name[16] = "";
        int r = tcbpf_query(ifindex_of("ul0"), BPF_TC_INGRESS, 0x6b76, 0x6b76, name);
        assert_true(r >= 0);
        return r > 0 && strcmp(name, "migredir_ingres") == 0;
}

static int setup_links(void **state) {
        (void) state;
        NlSock *sk = NULL;
        if (lnl_open(-1, &sk) < 0)
                return -1;
        KvPrefix p;
        int r = lnl_veth_create(sk, "ul0", 0, 0, "ul0p", -1, NULL);
        if (r >= 0)
                r = lnl_veth_create(sk, "kvx0", 0, 0, "kvx0p", -1, NULL);
        if (r >= 0)
                r = lnl_veth_create(sk, "kvx1", 0, 0, "kvx1p", -1, NULL);
        if (r >= 0 && (r = kv_prefix_parse("192.0.2.1/24", &p)) >= 0)
                r = lnl_addr_add(sk, (int) if_nametoindex("ul0"), &p);
        nl_sock_free(sk);
        return r < 0 ? -1 : 0;
}

static KvAddr addr(const char *s) {
        KvAddr a;
        assert_int_equal(kv_addr_parse(s, &a), 0);
        return a;
}

static void test_arm_disarm(void **state) {
        (void) state;
        MigRedir *m = NULL;
        KvErr e = {};
        KvAddr node = addr("192.0.2.1"), vm4 = addr("10.88.0.5"), vm6 = addr("fd00::5"), other = addr("10.88.0.9");
        int x0 = ifindex_of("kvx0"), x1 = ifindex_of("kvx1");

        assert_false(filter_on_ul0());
        assert_int_equal(migredir_add(&m, &node, &vm4, x0, VM_MAC, GW_MAC, &e), 0);
        assert_non_null(m);
        assert_string_equal(migredir_uplink(m), "ul0");
        assert_true(filter_on_ul0());
        assert_int_equal(migredir_add(&m, &node, &vm6, x0, VM_MAC, GW_MAC, &e), 0);
        assert_int_equal(migredir_add(&m, &node, &vm4, x0, VM_MAC, GW_MAC, &e), 0); /* same owner: re-armed */
        /* another attachment cannot take an armed address */
        e = (KvErr){};
        assert_int_equal(migredir_add(&m, &node, &vm4, x1, VM_MAC, GW_MAC, &e), -EEXIST);
        assert_non_null(strstr(e.msg, "10.88.0.5"));
        uint64_t p = 99;
        assert_int_equal(migredir_packets(m, &vm4, &p), 1);
        assert_int_equal(p, 0);
        assert_int_equal(migredir_packets(m, &other, &p), 0);
        /* only the owner disarms; the last entry takes the program off ul0 */
        assert_int_equal(migredir_del(&m, &vm4, x1, &p), 0);
        assert_int_equal(migredir_del(&m, &vm4, x0, &p), 1);
        assert_true(filter_on_ul0());
        assert_int_equal(migredir_del(&m, &vm6, x0, NULL), 1);
        assert_null(m);
        assert_false(filter_on_ul0());
        assert_int_equal(migredir_del(&m, &vm6, x0, NULL), 0);
}

static void test_no_uplink(void **state) {
        (void) state;
        MigRedir *m = NULL;
        KvErr e = {};
        KvAddr node = addr("192.0.2.77"), vm4 = addr("10.88.0.5");
        assert_true(migredir_add(&m, &node, &vm4, ifindex_of("kvx0"), VM_MAC, GW_MAC, &e) < 0);
        assert_null(m);
        assert_int_equal(e.code, KV_ERR_INVALID_CONFIG);
        assert_non_null(strstr(e.msg, "nodeAddress 192.0.2.77"));
}

static void test_reset_leftover(void **state) {
        (void) state;
        /* a killed netd's filter: attached, its process (here: the skeleton) gone */
        struct migredir_bpf *s = migredir_bpf__open_and_load();
        assert_non_null(s);
        assert_int_equal(tcbpf_attach(ifindex_of("ul0"), BPF_TC_INGRESS, bpf_program__fd(s->progs.migredir_ingress),
                                      0x6b76, 0x6b76),
                         0);
        migredir_bpf__destroy(s);
        assert_true(filter_on_ul0());
        KvAddr node = addr("192.0.2.1"), none = {};
        migredir_reset(&none); /* no node address: nothing to do */
        assert_true(filter_on_ul0());
        migredir_reset(&node);
        assert_false(filter_on_ul0());
}

int main(void) {
        if (geteuid() != 0) {
                printf("SKIP: test-migredir needs root (BPF, network namespaces)\n");
                return 0;
        }
        /* Never touch the host's network: everything below happens in a private namespace. */
        if (unshare(CLONE_NEWNET) < 0) {
                printf("SKIP: unshare(CLONE_NEWNET): %s\n", strerror(errno));
                return 0;
        }
        tcbpf_log_setup();
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_program),
                cmocka_unit_test(test_arm_disarm),
                cmocka_unit_test(test_no_uplink),
                cmocka_unit_test(test_reset_leftover),
        };
        return cmocka_run_group_tests(tests, setup_links, NULL);
}
