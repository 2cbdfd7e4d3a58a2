/* SPDX-License-Identifier: Apache-2.0 */
/* multus-compat's IPAMClaims: the object parsed (and refused with errors naming the field and the value),
 * a selection's ips checked against the claim's, the addresses of one interface taken from a CNI result,
 * the status patch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "common/json-util.h"
#include "multus-compat/mc-priv.h"

#define CLAIM(spec, status)                                                                                         \
        "{\"apiVersion\":\"k8s.cni.cncf.io/v1alpha1\",\"kind\":\"IPAMClaim\",\"metadata\":{\"name\":\"vm1.blue\","    \
        "\"namespace\":\"ns1\"},\"spec\":" spec status "}"

static McIpamClaim *parse_ok(const char *text) {
        McIpamClaim *c = NULL;
        KvErr e = {};
        if (mc_ipamclaim_parse(text, strlen(text), &c, &e) < 0)
                fail_msg("'%s': %s", text, e.msg);
        return c;
}

static void parse_bad(const char *text, int code, const char *want) {
        McIpamClaim *c = NULL;
        KvErr e = {};
        assert_true(mc_ipamclaim_parse(text, strlen(text), &c, &e) < 0);
        assert_null(c);
        assert_int_equal(e.code, code);
        if (!strstr(e.msg, want))
                fail_msg("'%s': error '%s' does not hold '%s'", text, e.msg, want);
}

static void test_parse(void **state) {
        (void) state;
        McIpamClaim *c = parse_ok(CLAIM("{\"network\":\"blue\",\"interface\":\"net1\"}", ""));
        assert_string_equal(c->name, "vm1.blue");
        assert_string_equal(c->namespace_, "ns1");
        assert_string_equal(c->network, "blue");
        assert_string_equal(c->interface, "net1");
        assert_int_equal(c->n_ips, 0);
        assert_null(c->owner_pod);
        mc_ipamclaim_free(c);

        /* an empty status, and null ips, are "no addresses yet" */
        c = parse_ok(CLAIM("{\"network\":\"blue\"}", ",\"status\":{}"));
        assert_null(c->interface);
        assert_int_equal(c->n_ips, 0);
        mc_ipamclaim_free(c);
        c = parse_ok(CLAIM("{\"network\":\"blue\"}", ",\"status\":{\"ips\":null}"));
        assert_int_equal(c->n_ips, 0);
        mc_ipamclaim_free(c);

        c = parse_ok(CLAIM("{\"network\":\"blue\",\"interface\":\"net1\"}",
                           ",\"status\":{\"ips\":[\"10.1.2.3/24\",\"fd00::3/64\"],\"ownerPod\":\"virt-launcher-vm1-abcde\"}"));
        assert_int_equal(c->n_ips, 2);
        assert_string_equal(c->ips[0], "10.1.2.3/24");
        assert_string_equal(c->ips[1], "fd00::3/64");
        assert_string_equal(c->owner_pod, "virt-launcher-vm1-abcde");
        mc_ipamclaim_free(c);
        /* the CRD limits status.ips to two, not one per family (ipRequests: that one) */
        c = parse_ok(CLAIM("{\"network\":\"blue\"}", ",\"status\":{\"ips\":[\"10.1.2.3/24\",\"10.9.2.3/24\"]}"));
        assert_int_equal(c->n_ips, 2);
        mc_ipamclaim_free(c);
        assert_null(mc_ipamclaim_free(NULL));
}

static void test_parse_bad(void **state) {
        (void) state;
        parse_bad("{", KV_ERR_DECODE, "IPAMClaim");
        parse_bad("[]", KV_ERR_DECODE, "must be an object, got array");
        parse_bad("{\"metadata\":{\"name\":\"x\"}}", KV_ERR_INVALID_CONFIG, "'spec'");
        parse_bad("{\"spec\":{\"network\":\"blue\"}}", KV_ERR_INVALID_CONFIG, "'metadata'");
        parse_bad(CLAIM("{}", ""), KV_ERR_INVALID_CONFIG, "'network'");
        parse_bad(CLAIM("{\"network\":7}", ""), KV_ERR_INVALID_CONFIG, "'network' must be a string");
        parse_bad(CLAIM("{\"network\":\"\"}", ""), KV_ERR_INVALID_CONFIG, "'network' must not be empty");
        parse_bad(CLAIM("{\"network\":\"blue\",\"interface\":[]}", ""), KV_ERR_INVALID_CONFIG, "'interface'");
        parse_bad(CLAIM("{\"network\":\"blue\"}", ",\"status\":[]"), KV_ERR_INVALID_CONFIG, "'status'");
        parse_bad(CLAIM("{\"network\":\"blue\"}", ",\"status\":{\"ips\":\"10.1.2.3/24\"}"), KV_ERR_INVALID_CONFIG,
                  "'ips' must be an array");
        parse_bad(CLAIM("{\"network\":\"blue\"}", ",\"status\":{\"ips\":[5]}"), KV_ERR_INVALID_CONFIG,
                  "'ips[0]' must be a string");
        /* a CIDR, as the CRD's type: a bare address, garbage, a bad prefix are refused */
        parse_bad(CLAIM("{\"network\":\"blue\"}", ",\"status\":{\"ips\":[\"10.1.2.3\"]}"), KV_ERR_INVALID_CONFIG,
                  "'ips[0]' is not an address/prefix: '10.1.2.3'");
        parse_bad(CLAIM("{\"network\":\"blue\"}", ",\"status\":{\"ips\":[\"10.1.2.3/24\",\"zz/8\"]}"),
                  KV_ERR_INVALID_CONFIG, "'ips[1]' is not an address/prefix: 'zz/8'");
        parse_bad(CLAIM("{\"network\":\"blue\"}", ",\"status\":{\"ips\":[\"10.1.2.3/33\"]}"), KV_ERR_INVALID_CONFIG,
                  "'10.1.2.3/33'");
        parse_bad(CLAIM("{\"network\":\"blue\"}", ",\"status\":{\"ips\":[\"10.0.0.1/8\",\"fd00::1/64\",\"10.0.0.2/8\"]}"),
                  KV_ERR_INVALID_CONFIG, "at most 2");
        parse_bad(CLAIM("{\"network\":\"blue\"}", ",\"status\":{\"ownerPod\":1}"), KV_ERR_INVALID_CONFIG, "'ownerPod'");
}

static McSelection *selection(const char *text) {
        McSelection *v = NULL;
        size_t n = 0;
        KvErr e = {};
        if (mc_networks_parse(text, "ns1", &v, &n, &e) < 0)
                fail_msg("'%s': %s", text, e.msg);
        assert_int_equal(n, 1);
        return v;
}

static void test_check(void **state) {
        (void) state;
        McIpamClaim *full = parse_ok(CLAIM("{\"network\":\"blue\"}", ",\"status\":{\"ips\":[\"10.1.2.3/24\",\"fd00::3/64\"]}"));
        McIpamClaim *empty = parse_ok(CLAIM("{\"network\":\"blue\"}", ""));
        McSelection *plain = selection("[{\"name\":\"blue-nad\",\"ipam-claim-reference\":\"vm1.blue\"}]");
        McSelection *same = selection("[{\"name\":\"blue-nad\",\"ips\":[\"fd00::3\",\"10.1.2.3/24\"]}]");
        McSelection *other = selection("[{\"name\":\"blue-nad\",\"ips\":[\"10.1.2.9/24\"]}]");
        McSelection *fewer = selection("[{\"name\":\"blue-nad\",\"ips\":[\"10.1.2.3/24\"]}]");
        KvErr e = {};

        assert_string_equal(plain->ipam_claim_reference, "vm1.blue");
        assert_int_equal(mc_ipamclaim_check(full, plain, "blue", &e), 0);
        assert_int_equal(mc_ipamclaim_check(full, plain, NULL, &e), 0);
        assert_int_equal(mc_ipamclaim_check(full, same, "blue", &e), 0); /* the same, with or without prefix */
        assert_int_equal(mc_ipamclaim_check(empty, other, "blue", &e), 0); /* nothing to differ from yet */

        assert_int_equal(mc_ipamclaim_check(full, other, "blue", &e), -EINVAL);
        assert_int_equal(e.code, KV_ERR_INVALID_CONFIG);
        assert_non_null(strstr(e.msg, "'ips' [10.1.2.9/24] differ from the addresses of IPAMClaim 'vm1.blue' "
                                      "[10.1.2.3/24,fd00::3/64]"));
        assert_non_null(strstr(e.msg, "network 'ns1/blue-nad'"));
        kverr_clear(&e);
        assert_int_equal(mc_ipamclaim_check(full, fewer, "blue", &e), -EINVAL);
        kverr_clear(&e);

        assert_int_equal(mc_ipamclaim_check(empty, plain, "red", &e), -EINVAL);
        assert_non_null(strstr(e.msg, "IPAMClaim 'vm1.blue' is for network 'blue', this network's config is named 'red'"));

        mc_selections_free(plain, 1);
        mc_selections_free(same, 1);
        mc_selections_free(other, 1);
        mc_selections_free(fewer, 1);
        mc_ipamclaim_free(full);
        mc_ipamclaim_free(empty);
}

static void result_ips(const char *result, const char *ifname, size_t want_n, const char *want0, const char *want1) {
        char **v = NULL;
        size_t n = 99;
        KvErr e = {};
        if (mc_result_iface_ips(result, strlen(result), ifname, &v, &n, &e) < 0)
                fail_msg("%s: %s", result, e.msg);
        assert_int_equal(n, want_n);
        if (want0)
                assert_string_equal(v[0], want0);
        if (want1)
                assert_string_equal(v[1], want1);
        mc_strv_free(v, n);
}

static void test_result_ips(void **state) {
        (void) state;
        /* macvlan: the sandbox interface and its address */
        const char *macvlan = "{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"net1\",\"mac\":\"02:00:00:00:00:01\","
                              "\"sandbox\":\"/var/run/netns/x\"}],\"ips\":[{\"address\":\"10.1.2.3/24\",\"gateway\":"
                              "\"10.1.2.1\",\"interface\":0}]}";
        result_ips(macvlan, "net1", 1, "10.1.2.3/24", NULL);
        /* bridge: the host's bridge and veth first; only the sandbox interface's addresses */
        const char *bridge = "{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"br0\"},{\"name\":\"veth1\"},"
                             "{\"name\":\"net2\",\"sandbox\":\"/x\"},{\"name\":\"net3\",\"sandbox\":\"/x\"}],"
                             "\"ips\":[{\"address\":\"10.9.0.1/16\",\"interface\":0},{\"address\":\"10.1.2.3/24\","
                             "\"interface\":2},{\"address\":\"fd00::3/64\",\"interface\":2},{\"address\":\"10.7.0.3/24\","
                             "\"interface\":3}]}";
        result_ips(bridge, "net2", 2, "10.1.2.3/24", "fd00::3/64");
        result_ips(bridge, "net3", 1, "10.7.0.3/24", NULL);
        /* a chained binding (kvnet's tap-net1) carries the addresses the plugin gave net1; listed twice: once */
        const char *chained = "{\"cniVersion\":\"1.1.0\",\"interfaces\":[{\"name\":\"br1\"},{\"name\":\"net1\","
                              "\"sandbox\":\"/x\"},{\"name\":\"tap-net1\",\"sandbox\":\"/x\"}],\"ips\":[{\"address\":"
                              "\"10.9.0.1/16\",\"interface\":0},{\"address\":\"10.1.2.3/24\",\"interface\":2},"
                              "{\"address\":\"10.1.2.3/24\",\"interface\":2}]}";
        result_ips(chained, "net1", 1, "10.1.2.3/24", NULL);
        /* a result naming no such interface (an IPAM-like plugin, an older version): every address */
        result_ips("{\"ips\":[{\"address\":\"10.1.2.3/24\"}]}", "net1", 1, "10.1.2.3/24", NULL);
        result_ips("{\"cniVersion\":\"1.0.0\"}", "net1", 0, NULL, NULL);

        char **v = NULL;
        size_t n = 0;
        KvErr e = {};
        const char *bad = "{\"ips\":[{\"address\":\"10.1.2.3\"}]}";
        assert_true(mc_result_iface_ips(bad, strlen(bad), "net1", &v, &n, &e) < 0);
        assert_non_null(strstr(e.msg, "'ips[0].address' is not an address/prefix: '10.1.2.3'"));
        bad = "{\"ips\":{}}";
        assert_true(mc_result_iface_ips(bad, strlen(bad), "net1", &v, &n, &e) < 0);
        bad = "nope";
        assert_true(mc_result_iface_ips(bad, strlen(bad), "net1", &v, &n, &e) < 0);
        assert_null(v);
}

static void test_status_format(void **state) {
        (void) state;
        char *ips[] = { "10.1.2.3/24", "fd00::3/64" };
        char *text = NULL;
        assert_int_equal(mc_ipamclaim_status_format(ips, 2, "pod-a", &text), 0);
        assert_string_equal(text, "{\"status\":{\"ips\":[\"10.1.2.3/24\",\"fd00::3/64\"],\"ownerPod\":\"pod-a\"}}");
        free(text);
        assert_int_equal(mc_ipamclaim_status_format(ips, 1, NULL, &text), 0);
        assert_string_equal(text, "{\"status\":{\"ips\":[\"10.1.2.3/24\"]}}");
        free(text);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),       cmocka_unit_test(test_parse_bad),     cmocka_unit_test(test_check),
                cmocka_unit_test(test_result_ips),  cmocka_unit_test(test_status_format),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
