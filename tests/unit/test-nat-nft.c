/* SPDX-License-Identifier: Apache-2.0 */
/* netd NAT, nftables backend.
 *  - golden batches (tests/data/nat/<case>.golden; KVNET_UPDATE_GOLDEN=1 rewrites them)
 *  - subnet reference counting, input validation
 *  - the real kernel, inside a network namespace this test creates with unshare(CLONE_NEWNET)
 *    (skipped without CAP_SYS_ADMIN / nf_tables). */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "common/fileio.h"
#include "common/json-util.h"
#include "netd/nat/nat.h"
#include "tests/unit/helpers.h"

#define check_golden(name, got) assert_golden(got, "nat/%s.golden", name)

static NatPortMapping pm_a[2];
static NatPortMapping pm_b[1];

/* a: dual-stack, masquerade, any-address tcp 8080->80 and udp 192.0.2.1:5353->53
 * b: v4 only, masquerade, same subnet, tcp 2222->22 on 192.0.2.1 */
static void make_eps(NatEndpoint *a, NatEndpoint *b) {
        pm_a[0] = (NatPortMapping){ .host_port = 8080, .container_port = 80, .proto = IPPROTO_TCP };
        pm_a[1] = (NatPortMapping){ .host_port = 5353, .container_port = 53, .proto = IPPROTO_UDP,
                                    .host_ip = A("192.0.2.1") };
        pm_b[0] = (NatPortMapping){ .host_port = 2222, .container_port = 22, .proto = IPPROTO_TCP,
                                    .host_ip = A("192.0.2.1") };
        *a = (NatEndpoint){ .id = "ns/vm-a/net1", .n_addrs = 2, .n_subnets = 2, .masq = true, .pm = pm_a, .n_pm = 2 };
        a->addrs[0] = A("10.88.0.2");
        a->addrs[1] = A("fd88::2");
        a->subnets[0] = P("10.88.0.0/24");
        a->subnets[1] = P("fd88::/64");
        *b = (NatEndpoint){ .id = "ns/vm-b/net1", .n_addrs = 1, .n_subnets = 1, .masq = true, .pm = pm_b, .n_pm = 1 };
        b->addrs[0] = A("10.88.0.3");
        b->subnets[0] = P("10.88.0.0/24");
}

static void test_backend_registry(void **state) {
        (void) state;
        NatBackend *b = NULL;
        assert_int_equal(nat_backend_new("ebpf", &b), -EOPNOTSUPP);
        assert_int_equal(nat_backend_new("iptables", &b), -EOPNOTSUPP);
        assert_null(b);
        _cleanup_(nat_backend_freep) NatBackend *r = NULL;
        assert_int_equal(nat_nft_new_render(&r), 0);
        assert_string_equal(nat_backend_name(r), "nftables");
}

static void test_golden_sync(void **state) {
        (void) state;
        NatEndpoint eps[2];
        make_eps(&eps[0], &eps[1]);
        _cleanup_(nat_backend_freep) NatBackend *b = NULL;
        assert_int_equal(nat_nft_new_render(&b), 0);
        KvErr e = {};
        assert_int_equal(nat_sync(b, eps, 2, &e), 0);
        _cleanup_free_ char *txt = nat_nft_take_rendered(b);
        /* one batch, the shared subnet once */
        assert_non_null(strstr(txt, "# batch"));
        assert_null(strstr(strstr(txt, "# batch") + 1, "# batch"));
        check_golden("sync", txt);
        assert_int_equal(nat_nft_subnet_refs(b, &eps[0].subnets[0]), 2);
        assert_int_equal(nat_nft_subnet_refs(b, &eps[0].subnets[1]), 1);
}

static void test_golden_add_del(void **state) {
        (void) state;
        NatEndpoint a, b2;
        make_eps(&a, &b2);
        _cleanup_(nat_backend_freep) NatBackend *b = NULL;
        assert_int_equal(nat_nft_new_render(&b), 0);
        KvErr e = {};
        assert_int_equal(nat_add(b, &a, &e), 0);
        _cleanup_free_ char *add = nat_nft_take_rendered(b);
        check_golden("add", add);
        /* rules never change on add: only elements */
        assert_null(strstr(add, "add rule"));
        assert_null(strstr(add, "add chain"));
        assert_int_equal(nat_del(b, &a, &e), 0);
        _cleanup_free_ char *del = nat_nft_take_rendered(b);
        check_golden("del", del);
        assert_null(strstr(del, "add "));
}

static size_t count(const char *hay, const char *needle) {
        size_t n = 0;
        for (const char *p = hay; (p = strstr(p, needle)); p++)
                n++;
        return n;
}

static void test_refcount(void **state) {
        (void) state;
        NatEndpoint a, b2;
        make_eps(&a, &b2);
        _cleanup_(nat_backend_freep) NatBackend *b = NULL;
        assert_int_equal(nat_nft_new_render(&b), 0);
        KvErr e = {};
        KvPrefix s = P("10.88.0.77/24"); /* same network, host bits set */

        assert_int_equal(nat_add(b, &a, &e), 0);
        free(nat_nft_take_rendered(b));
        assert_int_equal(nat_nft_subnet_refs(b, &s), 1);

        /* second endpoint on the same subnet: subnet element not added again */
        assert_int_equal(nat_add(b, &b2, &e), 0);
        _cleanup_free_ char *t1 = nat_nft_take_rendered(b);
        assert_int_equal(count(t1, "nomasq4"), 0);
        assert_int_equal(count(t1, "masq4"), 1);
        assert_int_equal(nat_nft_subnet_refs(b, &s), 2);

        /* re-adding the same endpoint id does not take a second reference */
        assert_int_equal(nat_add(b, &b2, &e), 0);
        free(nat_nft_take_rendered(b));
        assert_int_equal(nat_nft_subnet_refs(b, &s), 2);

        /* delete a: subnet still used by b, v6 subnet only used by a */
        assert_int_equal(nat_del(b, &a, &e), 0);
        _cleanup_free_ char *t2 = nat_nft_take_rendered(b);
        assert_int_equal(count(t2, "nomasq4"), 0);
        assert_int_equal(count(t2, "nomasq6"), 1);
        assert_int_equal(nat_nft_subnet_refs(b, &s), 1);

        /* delete of an unknown id never removes subnets */
        NatEndpoint ghost = b2;
        ghost.id = "ns/ghost/net1";
        assert_int_equal(nat_del(b, &ghost, &e), 0);
        _cleanup_free_ char *t3 = nat_nft_take_rendered(b);
        assert_int_equal(count(t3, "nomasq4"), 0);
        assert_int_equal(nat_nft_subnet_refs(b, &s), 1);

        /* last owner gone: the subnet goes */
        assert_int_equal(nat_del(b, &b2, &e), 0);
        _cleanup_free_ char *t4 = nat_nft_take_rendered(b);
        assert_int_equal(count(t4, "nomasq4"), 1);
        assert_int_equal(nat_nft_subnet_refs(b, &s), 0);

        /* sync rebuilds the counts from scratch */
        NatEndpoint eps[2] = { a, b2 };
        assert_int_equal(nat_sync(b, eps, 2, &e), 0);
        free(nat_nft_take_rendered(b));
        assert_int_equal(nat_nft_subnet_refs(b, &s), 2);
        assert_int_equal(nat_sync(b, eps, 1, &e), 0);
        free(nat_nft_take_rendered(b));
        assert_int_equal(nat_nft_subnet_refs(b, &s), 1);
}

static void expect_invalid(NatBackend *b, const NatEndpoint *ep, const char *needle) {
        KvErr e = {};
        assert_int_equal(nat_add(b, ep, &e), -EINVAL);
        assert_int_equal(e.code, KV_ERR_INVALID_CONFIG);
        if (!strstr(e.msg, needle))
                fail_msg("message '%s' lacks '%s'", e.msg, needle);
        _cleanup_free_ char *t = nat_nft_take_rendered(b);
        assert_string_equal(t, ""); /* nothing was sent */
}

static void test_validation(void **state) {
        (void) state;
        NatEndpoint a, b2;
        make_eps(&a, &b2);
        _cleanup_(nat_backend_freep) NatBackend *b = NULL;
        assert_int_equal(nat_nft_new_render(&b), 0);

        NatPortMapping m = pm_a[0];
        NatEndpoint ep = a;
        ep.pm = &m;
        ep.n_pm = 1;

        m.host_port = 0;
        expect_invalid(b, &ep, "'hostPort' must be 1..65535, got 0");
        m = pm_a[0];
        m.container_port = 0;
        expect_invalid(b, &ep, "'containerPort'");
        m = pm_a[0];
        m.proto = IPPROTO_ICMP;
        expect_invalid(b, &ep, "'protocol' must be tcp or udp, got 1");
        m = pm_a[0];
        m.host_ip = A("2001:db8::1");
        ep.n_addrs = 1; /* v4 only */
        expect_invalid(b, &ep, "no endpoint address of the hostIP's family");

        ep = a;
        ep.id = "";
        expect_invalid(b, &ep, "'id'");
        ep = a;
        ep.subnets[0].prefixlen = 33;
        expect_invalid(b, &ep, "prefix length must be 0..32, got 33");
        ep = a;
        ep.addrs[0].family = 99;
        expect_invalid(b, &ep, "invalid family 99");

        /* sync validates every endpoint before sending anything */
        NatEndpoint eps[2] = { a, a };
        KvErr e = {};
        assert_int_equal(nat_sync(b, eps, 2, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "given twice"));
        _cleanup_free_ char *t = nat_nft_take_rendered(b);
        assert_string_equal(t, "");
}

/* ---- real kernel, in our own network namespace ---- */

static int kernel_setup(void **state) {
        (void) state;
        if (test_netns_private() < 0) {
                *state = NULL;
                return 0;
        }
        _cleanup_(nat_backend_freep) NatBackend *b = NULL;
        int r = nat_backend_new("nftables", &b);
        if (r < 0) {
                test_group_skip("nftables backend: %s", strerror(-r));
                *state = NULL;
                return 0;
        }
        *state = TAKE_PTR(b);
        return 0;
}

static int kernel_teardown(void **state) {
        nat_backend_free(*state);
        return 0;
}

/* "nft list table inet kvnet" output, NULL when the table does not exist. */
static char *nft_list(void) {
        FILE *f = popen("nft list table inet kvnet 2>/dev/null", "r");
        if (!f)
                return NULL;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        char chunk[4096];
        size_t k;
        while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
                fwrite(chunk, 1, k, m);
        fclose(m);
        int st = pclose(f);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                return NULL;
        return TAKE_PTR(buf);
}

static bool have_nft(void) {
        return system("nft --version >/dev/null 2>&1") == 0;
}

static void test_kernel(void **state) {
        NatBackend *b = *state;
        if (!b)
                skip_group();
        if (!have_nft())
                skip_because("the nft tool is not installed");
        NatEndpoint eps[2];
        make_eps(&eps[0], &eps[1]);
        KvErr e = {};

        assert_int_equal(nat_sync(b, eps, 1, &e), 0);
        assert_int_equal(nat_check(b, &eps[0], &e), 0);
        /* b not yet there */
        assert_int_equal(nat_check(b, &eps[1], &e), -ENOENT);
        assert_non_null(strstr(e.msg, "10.88.0.3"));
        kverr_clear(&e);

        int r = nat_add(b, &eps[1], &e);
        if (r < 0)
                fail_msg("nat_add: %s", e.msg);
        assert_int_equal(nat_check(b, &eps[1], &e), 0);
        _cleanup_free_ char *l1 = nft_list();
        assert_non_null(l1);
        assert_non_null(strstr(l1, "10.88.0.3"));
        assert_non_null(strstr(l1, "192.0.2.1 . tcp . 2222 : 10.88.0.3 . 22"));
        assert_non_null(strstr(l1, "tcp . 8080 : fd88::2 . 80"));
        assert_non_null(strstr(l1, "10.88.0.0/24"));

        /* a port already forwarded to someone else */
        NatPortMapping clash = { .host_port = 8080, .container_port = 81, .proto = IPPROTO_TCP };
        NatEndpoint c = { .id = "ns/vm-c/net1", .n_addrs = 1, .pm = &clash, .n_pm = 1 };
        c.addrs[0] = A("10.88.0.4");
        assert_int_equal(nat_add(b, &c, &e), -EEXIST);
        assert_int_equal(e.code, KV_ERR_EXISTS);
        assert_non_null(strstr(e.msg, "pf4any: File exists"));
        kverr_clear(&e);

        json_t *j = NULL;
        assert_int_equal(nat_dump(b, &j), 0);
        assert_int_equal(json_array_size(json_object_get(j, "masquerade")), 3);
        assert_int_equal(json_array_size(json_object_get(j, "portMappings")), 4);
        json_decref(j);

        /* del leaves nothing of b, the shared subnet stays for a */
        assert_int_equal(nat_del(b, &eps[1], &e), 0);
        _cleanup_free_ char *l2 = nft_list();
        assert_non_null(l2);
        assert_null(strstr(l2, "10.88.0.3"));
        assert_non_null(strstr(l2, "10.88.0.0/24"));
        assert_int_equal(nat_check(b, &eps[0], &e), 0);
        /* second del: elements already gone */
        assert_int_equal(nat_del(b, &eps[1], &e), 0);

        assert_int_equal(nat_del(b, &eps[0], &e), 0);
        _cleanup_free_ char *l3 = nft_list();
        assert_non_null(l3);
        assert_null(strstr(l3, "10.88.0.2"));
        assert_null(strstr(l3, "fd88::"));
        assert_null(strstr(l3, "10.88.0.0"));
        assert_null(strstr(l3, "elements"));

        /* sync twice is idempotent */
        assert_int_equal(nat_sync(b, eps, 2, &e), 0);
        _cleanup_free_ char *s1 = nft_list();
        assert_int_equal(nat_sync(b, eps, 2, &e), 0);
        _cleanup_free_ char *s2 = nft_list();
        assert_non_null(s1);
        assert_non_null(s2);
        assert_string_equal(s1, s2);
        assert_int_equal(nat_check(b, &eps[0], &e), 0);
        assert_int_equal(nat_check(b, &eps[1], &e), 0);

        /* table removed behind our back: add recreates it */
        assert_int_equal(system("nft delete table inet kvnet"), 0);
        assert_int_equal(nat_add(b, &eps[1], &e), 0);
        assert_int_equal(nat_check(b, &eps[1], &e), 0);
        /* and a del on a missing table succeeds */
        assert_int_equal(system("nft delete table inet kvnet"), 0);
        assert_int_equal(nat_del(b, &eps[1], &e), 0);
}

int main(void) {
        const struct CMUnitTest render_tests[] = {
                cmocka_unit_test(test_backend_registry), cmocka_unit_test(test_golden_sync),
                cmocka_unit_test(test_golden_add_del),   cmocka_unit_test(test_refcount),
                cmocka_unit_test(test_validation),
        };
        const struct CMUnitTest kernel_tests[] = {
                cmocka_unit_test(test_kernel),
        };
        int r = cmocka_run_group_tests_name("nat-nft-render", render_tests, NULL, NULL);
        /* last: the kernel group moves the whole process into a new network namespace */
        r += cmocka_run_group_tests_name("nat-nft-kernel", kernel_tests, kernel_setup, kernel_teardown);
        return r;
}
