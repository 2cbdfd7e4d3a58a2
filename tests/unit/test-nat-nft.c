/* SPDX-License-Identifier: Apache-2.0 */
/* netd NAT, nftables backend.
 *  - golden batches (tests/data/nat/<case>.golden; KVNET_UPDATE_GOLDEN=1 rewrites them)
 *  - subnet reference counting, input validation, backend kinds
 *  - the nftables writer (nftw): a transaction the kernel refuses names the failing operation
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
#include "netd/nat/nftw.h"
#include "tests/unit/helpers.h"

#include <linux/netfilter.h> /* after netinet/in.h */

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

static void test_backend_kinds(void **state) {
        (void) state;
        assert_int_equal(nat_backend_kind_from_string("nftables"), NAT_BACKEND_NFTABLES);
        assert_int_equal(nat_backend_kind_from_string("ebpf"), NAT_BACKEND_EBPF);
        assert_int_equal(nat_backend_kind_from_string("iptables"), -EINVAL);
        assert_int_equal(nat_backend_kind_from_string(NULL), -EINVAL);
        assert_string_equal(nat_backend_kind_to_string(NAT_BACKEND_NFTABLES), "nftables");
        assert_string_equal(nat_backend_kind_to_string(NAT_BACKEND_EBPF), "ebpf");
        assert_null(nat_backend_kind_to_string(_NAT_BACKEND_KIND_MAX));
        assert_true(nat_backend_kind_available(NAT_BACKEND_NFTABLES));
        assert_false(nat_backend_kind_available(NAT_BACKEND_EBPF));

        /* the sandbox NAT of an unavailable backend is refused before anything is touched */
        NatSandbox sb = { .ifname = "kvs0", .n_addrs = 1 };
        sb.addrs[0].vm = A("10.88.0.5");
        sb.addrs[0].guest = A("10.0.2.2");
        KvErr e = {};
        assert_int_equal(nat_sandbox_apply(NAT_BACKEND_EBPF, -1, &sb, &e), -EOPNOTSUPP);
        assert_int_equal(e.code, KV_ERR_INVALID_CONFIG);
        assert_non_null(strstr(e.msg, "'ebpf' is not available"));
        kverr_clear(&e);
        assert_int_equal(nat_sandbox_remove(NAT_BACKEND_EBPF, -1, &e), -EOPNOTSUPP);
        assert_int_equal(e.code, KV_ERR_INVALID_CONFIG);
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

/* A transaction the kernel refuses names the operation that failed, and nothing of it stays. */
static void test_writer_errors(void **state) {
        if (!*state)
                skip();
        _cleanup_(nftw_sock_freep) NftwSock *sk = NULL;
        assert_int_equal(nftw_sock_open(-1, &sk), 0);

        _cleanup_(nftw_batch_done) NftwBatch b = {};
        nftw_batch_init(&b, NFPROTO_INET, "kvnet-wtest");
        assert_int_equal(nftw_table(&b, true, "creating table inet kvnet-wtest"), 0);
        assert_int_equal(
                nftw_chain(&b, "prerouting", "nat", NF_INET_PRE_ROUTING, -100, "creating chain %s", "prerouting"), 0);
        struct nftnl_rule *ok = nftw_rule_new(&b, "prerouting");
        assert_non_null(ok);
        assert_true(nftw_ex_nfproto(ok, NFPROTO_IPV4));
        assert_int_equal(nftw_rule(&b, ok, "adding rule to chain %s", "prerouting"), 0);
        struct nftnl_rule *bad = nftw_rule_new(&b, "nosuch");
        assert_non_null(bad);
        assert_true(nftw_ex_nfproto(bad, NFPROTO_IPV4));
        assert_int_equal(nftw_rule(&b, bad, "adding rule to chain %s", "nosuch"), 0);
        assert_int_equal(b.n, 4);

        NftwFailure f;
        int r = nftw_commit(sk, b.family, b.ops, b.n, &f);
        assert_int_equal(r, -ENOENT);
        assert_int_equal(f.op, 3);
        KvErr e = {};
        assert_int_equal(nftw_error(&e, KV_ERR_INTERNAL, r, "nftables", b.ops, &f), -ENOENT);
        assert_int_equal(e.code, KV_ERR_INTERNAL);
        assert_string_equal(e.msg, "nftables: adding rule to chain nosuch: No such file or directory");
        if (f.ext[0]) /* the kernel's own words, when it gives any, go into the details */
                assert_non_null(strstr(e.details, f.ext));
        /* one transaction: the table of the first operations is not there either */
        assert_int_equal(nftw_table_get(sk, NFPROTO_INET, "kvnet-wtest"), -ENOENT);

        /* without the bad rule the same batch goes through, and a second table add is fine (CREATE) */
        assert_int_equal(nftw_commit(sk, b.family, b.ops, b.n - 1, &f), 0);
        assert_int_equal(f.op, -1);
        assert_int_equal(nftw_table_get(sk, NFPROTO_INET, "kvnet-wtest"), 0);
        assert_int_equal(nftw_chain_get(sk, NFPROTO_INET, "kvnet-wtest", "prerouting"), 0);
        assert_int_equal(nftw_chain_get(sk, NFPROTO_INET, "kvnet-wtest", "nosuch"), -ENOENT);

        /* a failure in the first operation of a later batch: deleting a set that is not there */
        _cleanup_(nftw_batch_done) NftwBatch d = {};
        nftw_batch_init(&d, NFPROTO_INET, "kvnet-wtest");
        uint8_t key[4] = { 10, 0, 0, 1 };
        NftwElem el = { .key = key, .klen = sizeof key };
        assert_int_equal(nftw_elem(&d, false, "nosuchset", &el, "removing %s from set %s", "10.0.0.1", "nosuchset"), 0);
        assert_int_equal(nftw_table(&d, false, "deleting table inet kvnet-wtest"), 0);
        r = nftw_commit(sk, d.family, d.ops, d.n, &f);
        assert_int_equal(r, -ENOENT);
        assert_int_equal(f.op, 0);
        kverr_clear(&e);
        nftw_error(&e, KV_ERR_INTERNAL, r, "nftables in sandbox", d.ops, &f);
        assert_string_equal(e.msg,
                            "nftables in sandbox: removing 10.0.0.1 from set nosuchset: No such file or directory");
        assert_int_equal(nftw_table_get(sk, NFPROTO_INET, "kvnet-wtest"), 0);
        /* the table delete alone */
        assert_int_equal(nftw_commit(sk, d.family, &d.ops[1], 1, &f), 0);
        assert_int_equal(nftw_table_get(sk, NFPROTO_INET, "kvnet-wtest"), -ENOENT);
}

int main(void) {
        const struct CMUnitTest render_tests[] = {
                cmocka_unit_test(test_backend_registry), cmocka_unit_test(test_golden_sync),
                cmocka_unit_test(test_golden_add_del),   cmocka_unit_test(test_refcount),
                cmocka_unit_test(test_validation),       cmocka_unit_test(test_backend_kinds),
        };
        const struct CMUnitTest kernel_tests[] = {
                cmocka_unit_test(test_kernel),
                cmocka_unit_test(test_writer_errors),
        };
        int r = cmocka_run_group_tests_name("nat-nft-render", render_tests, NULL, NULL);
        /* last: the kernel group moves the whole process into a new network namespace */
        r += cmocka_run_group_tests_name("nat-nft-kernel", kernel_tests, kernel_setup, kernel_teardown);
        return r;
}
