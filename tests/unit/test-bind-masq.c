/* SPDX-License-Identifier: Apache-2.0 */
/* netd masquerade binding (netd/binding/masquerade.h):
 *  - configuration validation (errors name the field)
 *  - golden nft batches (tests/data/masq/<case>.golden; KVNET_UPDATE_GOLDEN=1 rewrites them)
 *  - the real kernel: attach / check / detach between two network namespaces this test creates
 *    with unshare(CLONE_NEWNET) (skipped without CAP_SYS_ADMIN). */
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "common/fileio.h"
#include "common/netns.h"
#include "netd/binding/masquerade.h"
#include "tests/unit/helpers.h"

#define check_golden(name, got) assert_golden(got, "masq/%s.golden", name)

static const MasqPort ports2[] = { { 80, IPPROTO_TCP }, { 53, IPPROTO_UDP } };

static void base_v4(MasqConfig *c) {
        masq_config_defaults(c);
        c->tap = "tap0";
        c->sbx_ifname = "kvs0";
        c->host_ifname = "kv0";
        c->bridge = "kvbr0";
        c->mtu = 1500;
        c->vm_addrs[0] = P("10.88.0.5/24");
        c->gateways[0] = A("10.88.0.1");
        c->n_addrs = 1;
}

static void base_dual(MasqConfig *c) {
        base_v4(c);
        c->vm_addrs[1] = P("fd88::5/64");
        c->gateways[1] = A("fd88::1");
        c->n_addrs = 2;
        c->ports = ports2;
        c->n_ports = ELEMENTSOF(ports2);
}

/* Expects validation to fail with code 7 and a message containing `needle`. */
static void expect_invalid(const MasqConfig *c, const char *needle) {
        KvErr e = {};
        assert_int_equal(masq_config_validate(c, &e), -EINVAL);
        assert_int_equal(e.code, KV_ERR_INVALID_CONFIG);
        if (!strstr(e.msg, needle))
                fail_msg("message '%s' does not name '%s'", e.msg, needle);
}

static void test_defaults(void **state) {
        (void) state;
        MasqConfig c;
        masq_config_defaults(&c);
        char b[KV_ADDR_STRLEN];
        assert_string_equal(kv_prefix_fmt(&c.guest4, b), "10.0.2.2/24");
        assert_string_equal(kv_addr_fmt(&c.guest_gw4, b), "10.0.2.1");
        assert_string_equal(kv_prefix_fmt(&c.guest6, b), "fd10:0:2::2/120");
        assert_string_equal(kv_addr_fmt(&c.guest_gw6, b), "fd10:0:2::1");
        assert_int_equal(c.n_addrs, 0);
        assert_int_equal(c.n_ports, 0);
}

static void test_validate_ok(void **state) {
        (void) state;
        MasqConfig c;
        KvErr e = {};
        base_v4(&c);
        assert_int_equal(masq_config_validate(&c, &e), 0);
        base_dual(&c);
        assert_int_equal(masq_config_validate(&c, &e), 0);
        /* no gateway: no default route, still valid */
        c.gateways[0] = (KvAddr){};
        assert_int_equal(masq_config_validate(&c, &e), 0);
        assert_false(kverr_is_set(&e));
}

static void test_validate_ports(void **state) {
        (void) state;
        MasqConfig c;
        MasqPort p[2] = { { 80, IPPROTO_TCP }, { 0, IPPROTO_TCP } };
        base_v4(&c);
        c.ports = p;
        c.n_ports = 2;
        expect_invalid(&c, "'ports[1].port' must be 1..65535, got 0");
        p[1] = (MasqPort){ 22, IPPROTO_ICMP };
        expect_invalid(&c, "'ports[1].protocol' must be TCP or UDP, got 1");
        p[1] = (MasqPort){ 80, IPPROTO_TCP };
        expect_invalid(&c, "'ports[1]' duplicates 'ports[0]'");
        p[1] = (MasqPort){ 80, IPPROTO_UDP }; /* same port, other protocol: fine */
        KvErr e = {};
        assert_int_equal(masq_config_validate(&c, &e), 0);
        c.ports = NULL;
        expect_invalid(&c, "'ports' is NULL");
}

static void test_validate_addrs(void **state) {
        (void) state;
        MasqConfig c;
        base_v4(&c);
        c.n_addrs = 0;
        expect_invalid(&c, "'vm_addrs' must hold at least one address");
        base_v4(&c);
        c.vm_addrs[0] = (KvPrefix){};
        expect_invalid(&c, "'vm_addrs[0]' is not set");
        base_dual(&c);
        c.vm_addrs[1] = P("10.88.0.6/24");
        c.gateways[1] = (KvAddr){};
        expect_invalid(&c, "'vm_addrs[1]': only one IPv4 address");
        base_v4(&c);
        c.gateways[0] = A("10.99.0.1");
        expect_invalid(&c, "'gateways[0]' must be an address in 10.88.0.5/24");
        base_v4(&c);
        c.gateways[0] = A("fd88::1");
        expect_invalid(&c, "'gateways[0]'");
}

static void test_validate_overlap(void **state) {
        (void) state;
        MasqConfig c;
        base_v4(&c);
        c.vm_addrs[0] = P("10.0.0.5/16"); /* contains 10.0.2.0/24 */
        c.gateways[0] = A("10.0.0.1");
        expect_invalid(&c, "'guest4' 10.0.2.2/24 overlaps the VM's network 'vm_addrs[0]' 10.0.0.5/16");
        base_v4(&c);
        c.vm_addrs[0] = P("10.0.2.77/28"); /* inside 10.0.2.0/24 */
        c.gateways[0] = A("10.0.2.65");
        expect_invalid(&c, "'guest4'");
        base_dual(&c);
        c.vm_addrs[1] = P("fd10:0:2::80/64");
        c.gateways[1] = A("fd10:0:2::ff");
        expect_invalid(&c, "'guest6' fd10:0:2::2/120 overlaps");
        /* a non-default guest subnet avoids the clash */
        c.guest6 = P("fd11::2/120");
        c.guest_gw6 = A("fd11::1");
        KvErr e = {};
        assert_int_equal(masq_config_validate(&c, &e), 0);
}

static void test_validate_guest_and_names(void **state) {
        (void) state;
        MasqConfig c;
        base_v4(&c);
        c.guest_gw4 = A("10.0.3.1");
        expect_invalid(&c, "'guest_gw4' must be an address in 'guest4'");
        base_v4(&c);
        c.guest_gw4 = c.guest4.addr;
        expect_invalid(&c, "'guest_gw4'");
        base_v4(&c);
        c.guest4 = P("10.0.2.0/24");
        expect_invalid(&c, "'guest4' is a network address");
        base_v4(&c);
        c.guest4 = P("fd10::2/64");
        expect_invalid(&c, "'guest4' must be an IPv4 prefix");
        base_v4(&c);
        c.tap = NULL;
        expect_invalid(&c, "'tap' is required");
        base_v4(&c);
        c.sbx_ifname = "a-very-long-interface-name";
        expect_invalid(&c, "'sbx_ifname' is not a valid interface name");
        base_v4(&c);
        c.sbx_ifname = "tap0";
        expect_invalid(&c, "'tap' and 'sbx_ifname' must differ");
        base_v4(&c);
        c.mtu = 100;
        expect_invalid(&c, "'mtu' must be 576..65535, got 100");
        /* an IPv4-only VM does not care about a broken IPv6 guest config */
        base_v4(&c);
        c.guest6 = (KvPrefix){};
        KvErr e = {};
        assert_int_equal(masq_config_validate(&c, &e), 0);
}

static void test_golden_all_ports_v4(void **state) {
        (void) state;
        MasqConfig c;
        base_v4(&c);
        _cleanup_free_ char *t = NULL;
        KvErr e = {};
        assert_int_equal(masq_nat_render(&c, &t, &e), 0);
        check_golden("all-ports-v4", t);
        /* one dnat rule without port match, one snat rule, no ip6 */
        assert_non_null(strstr(t, "[ nat dnat ip addr_min reg 1 addr_max reg 1 flags 0x1 ]"));
        assert_non_null(strstr(t, "[ nat snat ip addr_min reg 1 addr_max reg 1 flags 0x1 ]"));
        assert_null(strstr(t, "ip6"));
        assert_null(strstr(t, "transport header"));
}

static void test_golden_ports_dual(void **state) {
        (void) state;
        MasqConfig c;
        base_dual(&c);
        _cleanup_free_ char *t = NULL;
        KvErr e = {};
        assert_int_equal(masq_nat_render(&c, &t, &e), 0);
        check_golden("ports-dual", t);
        assert_non_null(strstr(t, "[ nat dnat ip6 addr_min reg 1 addr_max reg 1 flags 0x1 ]"));
        assert_non_null(strstr(t, "[ nat snat ip6 addr_min reg 1 addr_max reg 1 flags 0x1 ]"));
}

static void test_render_invalid(void **state) {
        (void) state;
        MasqConfig c;
        base_v4(&c);
        c.n_addrs = 0;
        char *t = NULL;
        KvErr e = {};
        assert_int_equal(masq_nat_render(&c, &t, &e), -EINVAL);
        assert_null(t);
        assert_int_equal(e.code, KV_ERR_INVALID_CONFIG);
}

/* ---- real kernel: node and sandbox namespaces of our own ---- */

typedef struct Kns {
        int node, sbx;
} Kns;

static int kernel_setup(void **state) {
        static Kns k;
        *state = NULL;
        if (test_netns_private() < 0)
                return 0;
        k.node = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (k.node < 0 || unshare(CLONE_NEWNET) < 0)
                return -1;
        k.sbx = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
        if (k.sbx < 0 || setns(k.node, CLONE_NEWNET) < 0)
                return -1;
        KvErr e = {};
        KvPrefix gw[] = { P("10.88.0.1/24"), P("fd88::1/64") };
        if (link_bridge_ensure("kvbr0", 1500, gw, 2, NULL, &e) < 0) {
                test_group_skip("bridge: %s", e.msg);
                return 0;
        }
        *state = &k;
        return 0;
}

static int kernel_teardown(void **state) {
        Kns *k = *state;
        if (k) {
                close(k->node);
                close(k->sbx);
        }
        return 0;
}

static void test_kernel(void **state) {
        Kns *k = *state;
        if (!k)
                skip_group();
        MasqConfig c;
        base_dual(&c);
        KvErr e = {};
        LinkInfo li;
        int r = masq_vm_attach(k->sbx, &c, &li, &e);
        if (r == -EOPNOTSUPP || r == -EPROTONOSUPPORT)
                skip_because("attach: %s", e.msg);
        if (r < 0)
                fail_msg("attach: %s: %s", e.msg, e.details);
        assert_true(li.host_ifindex > 0);
        assert_true(li.sandbox_ifindex > 0);
        assert_true(link_exists(-1, "kv0"));
        assert_true(link_exists(k->sbx, "tap0"));
        assert_true(link_exists(k->sbx, "kvs0"));
        r = masq_vm_check(k->sbx, &c, &e);
        if (r < 0)
                fail_msg("check: %s: %s", e.msg, e.details);

        /* attach again fails (names taken) and leaves the first attachment intact */
        assert_true(masq_vm_attach(k->sbx, &c, &li, &e) < 0);
        assert_non_null(strstr(e.msg, "tap0"));
        kverr_clear(&e);
        assert_int_equal(masq_vm_check(k->sbx, &c, &e), 0);

        /* the nft part replaces itself: re-applying with other ports changes the rule count */
        MasqConfig c1 = c;
        c1.n_ports = 1;
        assert_int_equal(masq_nat_check(k->sbx, &c1, &e), -ENOENT);
        assert_non_null(strstr(e.msg, "prerouting holds 4 rules, expected 2"));
        kverr_clear(&e);
        /* same rule count, other content: udp/53 instead of tcp/80 */
        MasqConfig c2 = c;
        c2.ports = &ports2[1];
        c2.n_ports = 1;
        assert_int_equal(masq_nat_apply(k->sbx, &c1, &e), 0);
        assert_int_equal(masq_nat_check(k->sbx, &c2, &e), -ENOENT);
        assert_non_null(strstr(e.msg, "rule 1 of chain prerouting differs from the configuration (expected: adding dnat rule for 10.88.0.5 udp/53)"));
        kverr_clear(&e);
        /* all ports vs one port: same count too */
        MasqConfig c0 = c;
        c0.n_ports = 0;
        assert_int_equal(masq_nat_check(k->sbx, &c0, &e), -ENOENT);
        assert_non_null(strstr(e.msg, "(expected: adding dnat rule for 10.88.0.5 (all ports))"));
        kverr_clear(&e);
        assert_int_equal(masq_nat_apply(k->sbx, &c1, &e), 0);
        assert_int_equal(masq_nat_check(k->sbx, &c1, &e), 0);
        assert_int_equal(masq_nat_apply(k->sbx, &c, &e), 0);

        /* table gone: check names it */
        assert_int_equal(masq_nat_remove(k->sbx, c.nat_backend, &e), 0);
        assert_int_equal(masq_nat_remove(k->sbx, c.nat_backend, &e), 0);
        assert_true(masq_vm_check(k->sbx, &c, &e) < 0);
        assert_non_null(strstr(e.msg, "chain prerouting of table inet kvnet-masq missing"));
        kverr_clear(&e);

        assert_int_equal(masq_vm_detach(k->sbx, &c, &e), 0);
        assert_false(link_exists(-1, "kv0"));
        assert_false(link_exists(k->sbx, "tap0"));
        /* detach again: nothing left, still success */
        assert_int_equal(masq_vm_detach(k->sbx, &c, &e), 0);
        assert_false(kverr_is_set(&e));
        assert_true(masq_vm_check(k->sbx, &c, &e) < 0);
}

/* A failing step in the middle (the route's gateway is unreachable? no: a clashing sandbox name)
 * leaves nothing behind. */
static void test_kernel_undo(void **state) {
        Kns *k = *state;
        if (!k)
                skip_group();
        MasqConfig c;
        base_v4(&c);
        c.host_ifname = "kv1";
        c.tap = "tap1";
        c.sbx_ifname = "lo"; /* exists in the sandbox: the veth creation fails after the tap was made */
        KvErr e = {};
        assert_true(masq_vm_attach(k->sbx, &c, NULL, &e) < 0);
        assert_non_null(strstr(e.msg, "creating veth 'kv1' -> 'lo'"));
        assert_false(link_exists(k->sbx, "tap1"));
        assert_false(link_exists(-1, "kv1"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_validate_ok),
                cmocka_unit_test(test_validate_ports),
                cmocka_unit_test(test_validate_addrs),
                cmocka_unit_test(test_validate_overlap),
                cmocka_unit_test(test_validate_guest_and_names),
                cmocka_unit_test(test_golden_all_ports_v4),
                cmocka_unit_test(test_golden_ports_dual),
                cmocka_unit_test(test_render_invalid),
        };
        const struct CMUnitTest ktests[] = {
                cmocka_unit_test(test_kernel),
                cmocka_unit_test(test_kernel_undo),
        };
        int r = cmocka_run_group_tests_name("bind-masq", tests, NULL, NULL);
        r += cmocka_run_group_tests_name("bind-masq-kernel", ktests, kernel_setup, kernel_teardown);
        return r;
}
