/* SPDX-License-Identifier: Apache-2.0 */
/* Anti-spoofing on bridge ports (netd/binding/portfilter.c), render mode: what a sync, an add and a del send.
 * The kernel side (the frames it drops and passes) is tests/integration/test-antispoof.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "netd/binding/portfilter.h"
#include "tests/unit/helpers.h"

static size_t count(const char *hay, const char *needle) {
        size_t n = 0;
        for (const char *p = hay; (p = strstr(p, needle)); p++)
                n++;
        return n;
}

static void make_ports(PortFilterPort *a, PortFilterPort *l2) {
        *a = (PortFilterPort){ .ifname = "kv0123abcd", .mac = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 },
                               .check_ips = true, .dhcp_local = true, .n_addrs = 2 };
        a->addrs[0] = A("10.88.0.2");
        a->addrs[1] = A("fd88::2");
        *l2 = (PortFilterPort){ .ifname = "kv99", .mac = { 0x02, 0, 0, 0, 0, 0x99 } };
}

static void test_link_local(void **state) {
        (void) state;
        KvAddr ll, want = A("fe80::11:22ff:fe33:4455");
        portfilter_link_local((const uint8_t[]){ 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 }, &ll);
        assert_int_equal(ll.family, AF_INET6);
        assert_memory_equal(ll.bytes, want.bytes, 16);
        /* the universal/local bit flips: a globally administered MAC gets 02 */
        portfilter_link_local((const uint8_t[]){ 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 }, &ll);
        want = A("fe80::5054:ff:fe12:3456");
        assert_memory_equal(ll.bytes, want.bytes, 16);
}

static void test_sync(void **state) {
        (void) state;
        PortFilterPort p[2];
        make_ports(&p[0], &p[1]);
        _cleanup_(portfilter_freep) PortFilter *pf = NULL;
        assert_int_equal(portfilter_new(true, &pf), 0);
        KvErr e = {};
        assert_int_equal(portfilter_sync(pf, p, 2, &e), 0);
        _cleanup_free_ char *txt = portfilter_take_rendered(pf);
        /* one transaction: the table replaced, the skeleton, both ports */
        assert_int_equal(count(txt, "# batch"), 1);
        assert_int_equal(count(txt, "add rule"), 34);
        assert_int_equal(count(txt, "add set"), 10);
        assert_int_equal(count(txt, "add chain"), 5); /* prerouting and one per family */
        /* the skeleton's ether types, then per port: a VM's (ports, macs, dhcpports, ipports, 2 addresses and its
         * link-local, each also in the fast path's set) and the L2 port (ports, macs only) */
        assert_int_equal(count(txt, "add element"), 4 + 10 + 2);
        assert_int_equal(count(txt, "add element: dhcpports "), 1);
        assert_int_equal(count(txt, "add element: ports "), 2);
        assert_int_equal(count(txt, "add element: macs "), 2);
        assert_int_equal(count(txt, "add element: ipports "), 1);
        assert_int_equal(count(txt, "add element: ip6 "), 2);
        assert_int_equal(count(txt, "add element: ip4 "), 1);
        /* every drop rule also counts the drop for its port (a dynamic set's element, per input interface) */
        assert_int_equal(count(txt, "[ dynset update reg_key 1 set portdrops"), 21);
        assert_int_equal(count(txt, "[ dynset "), count(txt, "immediate reg 0 drop"));
        /* the table goes and comes back in the same transaction */
        assert_int_equal(count(txt, "delete table"), 1);
}

static void test_add_del(void **state) {
        (void) state;
        PortFilterPort a, l2;
        make_ports(&a, &l2);
        _cleanup_(portfilter_freep) PortFilter *pf = NULL;
        assert_int_equal(portfilter_new(true, &pf), 0);
        KvErr e = {};
        /* the first add (no table known) carries the skeleton, the next ones only elements */
        assert_int_equal(portfilter_add(pf, &a, &e), 0);
        _cleanup_free_ char *first = portfilter_take_rendered(pf);
        assert_int_equal(count(first, "add rule"), 34);
        assert_int_equal(portfilter_add(pf, &l2, &e), 0);
        _cleanup_free_ char *second = portfilter_take_rendered(pf);
        assert_int_equal(count(second, "add rule"), 0);
        assert_int_equal(count(second, "add set"), 0);
        assert_int_equal(count(second, "add element"), 2);
        assert_int_equal(portfilter_del(pf, &a, &e), 0);
        _cleanup_free_ char *del = portfilter_take_rendered(pf);
        assert_int_equal(count(del, "delete element"), 10);
        assert_null(strstr(del, "add "));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_link_local),
                cmocka_unit_test(test_sync),
                cmocka_unit_test(test_add_del),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
