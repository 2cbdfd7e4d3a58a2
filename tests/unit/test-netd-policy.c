/* SPDX-License-Identifier: Apache-2.0 */
/* netd's node policy (netd/core/policy.c): the config's "policy" object and the check of an ADD against it.
 * Adopting a bridge kvnet did not make is checked against the kernel in tests/integration/test-antispoof.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "common/json-util.h"
#include "netd/core/netd-priv.h"
#include "tests/unit/helpers.h"

static void parse_ok(const char *text, NodePolicy *p) {
        json_error_t je;
        _cleanup_json_ json_t *o = json_loads(text, 0, &je);
        assert_non_null(o);
        node_policy_init(p);
        KvErr e = {};
        if (node_policy_parse(o, p, &e) < 0)
                fail_msg("'%s': %s", text, e.msg);
}

static void parse_bad(const char *text, const char *needle) {
        json_error_t je;
        _cleanup_json_ json_t *o = json_loads(text, JSON_DECODE_ANY, &je);
        assert_non_null(o);
        NodePolicy p;
        node_policy_init(&p);
        KvErr e = {};
        assert_true(node_policy_parse(o, &p, &e) < 0);
        assert_int_equal(e.code, KV_ERR_INVALID_CONFIG);
        if (!strstr(e.msg, needle))
                fail_msg("'%s': error '%s' lacks '%s'", text, e.msg, needle);
}

static void test_defaults_and_parse(void **state) {
        (void) state;
        NodePolicy p;
        node_policy_init(&p);
        assert_true(p.adopt_bridges);
        assert_false(p.allow_antispoof_off);
        assert_false(p.allow_spoofchk_off);
        assert_false(p.allow_trust);
        assert_int_equal(p.n_bridges, 0);
        parse_ok("{\"bridges\":[\"kvbr*\",\"br-vm\"],\"subnets\":[\"10.88.0.0/16\",\"fd88::/48\"],"
                 "\"adoptBridges\":false,\"allowAntiSpoofingOff\":true,\"allowTrust\":true}",
                 &p);
        assert_int_equal(p.n_bridges, 2);
        assert_int_equal(p.n_subnets, 2);
        assert_false(p.adopt_bridges);
        assert_true(p.allow_antispoof_off);
        assert_true(p.allow_trust);
        assert_false(p.allow_spoofchk_off);

        parse_bad("[]", "'policy' must be an object");
        parse_bad("{\"bridge\":[]}", "unknown key 'bridge'");
        parse_bad("{\"adoptBridges\":\"no\"}", "adoptBridges");
        parse_bad("{\"bridges\":[\"\"]}", "policy.bridges[0]");
        parse_bad("{\"bridges\":[\"a-name-far-too-long\"]}", "policy.bridges[0]");
        parse_bad("{\"bridges\":[1]}", "policy.bridges[0]");
        parse_bad("{\"subnets\":[\"10.0.0.0/33\"]}", "policy.subnets[0]");
        parse_bad("{\"subnets\":\"10.0.0.0/8\"}", "subnets");
        /* one entry more than a list holds */
        char big[64 + 33 * 16] = "{\"bridges\":[", *w = big + strlen(big);
        for (int i = 0; i <= POLICY_MAX_BRIDGES; i++)
                w += sprintf(w, "%s\"br%d\"", i ? "," : "", i);
        strcpy(w, "]}");
        parse_bad(big, "policy.bridges: at most 32, got 33");
        strcpy(big, "{\"subnets\":[");
        w = big + strlen(big);
        for (int i = 0; i <= POLICY_MAX_SUBNETS; i++)
                w += sprintf(w, "%s\"10.%d.0.0/16\"", i ? "," : "", i);
        strcpy(w, "]}");
        parse_bad(big, "policy.subnets: at most 32, got 33");
}

static void request(AttachRequest *req, const char *bridge, const char *subnet) {
        *req = (AttachRequest){ .binding_kind = BINDING_BRIDGE, .antispoof = true, .spoofchk = true };
        snprintf(req->bridge, sizeof req->bridge, "%s", bridge);
        if (subnet) {
                req->has_ipam = true;
                req->ipam.n_sets = 1;
                req->ipam.sets[0].n_ranges = 1;
                req->ipam.sets[0].ranges[0].subnet = P(subnet);
        }
}

static void expect_refused(const Manager *m, const AttachRequest *req, const char *needle) {
        KvErr e = {};
        assert_int_equal(policy_check_add(m, req, &e), -EPERM);
        assert_int_equal(e.code, KV_ERR_INVALID_CONFIG);
        if (!strstr(e.msg, needle))
                fail_msg("error '%s' lacks '%s'", e.msg, needle);
}

static void test_check(void **state) {
        (void) state;
        _cleanup_free_ Manager *m = calloc(1, sizeof *m);
        assert_non_null(m);
        node_policy_init(&m->policy);
        AttachRequest req;
        KvErr e = {};

        /* the defaults: any bridge and subnet; relaxing anti-spoofing, spoofchk or trust refused */
        request(&req, "anybr", "192.0.2.0/24");
        assert_int_equal(policy_check_add(m, &req, &e), 0);
        req.antispoof = false;
        expect_refused(m, &req, "policy.allowAntiSpoofingOff");
        request(&req, "anybr", NULL);
        req.binding_kind = BINDING_SRIOV;
        assert_int_equal(policy_check_add(m, &req, &e), 0);
        req.spoofchk = false;
        expect_refused(m, &req, "policy.allowSpoofchkOff");
        req.spoofchk = true;
        req.trust = true;
        expect_refused(m, &req, "policy.allowTrust");

        parse_ok("{\"bridges\":[\"kvbr*\"],\"subnets\":[\"10.88.0.0/16\",\"fd88::/48\"],"
                 "\"allowAntiSpoofingOff\":true,\"allowSpoofchkOff\":true,\"allowTrust\":true}",
                 &m->policy);
        request(&req, "kvbr0", "10.88.7.0/24");
        assert_int_equal(policy_check_add(m, &req, &e), 0);
        req.antispoof = false;
        assert_int_equal(policy_check_add(m, &req, &e), 0);
        request(&req, "kvbr1", "fd88:0:0:1::/64");
        assert_int_equal(policy_check_add(m, &req, &e), 0);
        request(&req, "br0", "10.88.7.0/24");
        expect_refused(m, &req, "'bridge' 'br0'");
        request(&req, "kvbr0", "10.89.0.0/24");
        expect_refused(m, &req, "ipam: subnet 10.89.0.0/24 is outside");
        request(&req, "kvbr0", "10.0.0.0/8"); /* wider than the allowed /16 */
        expect_refused(m, &req, "ipam: subnet 10.0.0.0/8");
        request(&req, "kvbr0", "fd89::/64");
        expect_refused(m, &req, "fd89::/64");
        request(&req, "notkv", NULL);
        req.binding_kind = BINDING_SRIOV; /* a VF is on no bridge */
        req.spoofchk = false;
        req.trust = true;
        assert_int_equal(policy_check_add(m, &req, &e), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults_and_parse),
                cmocka_unit_test(test_check),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
