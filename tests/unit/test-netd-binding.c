/* SPDX-License-Identifier: Apache-2.0 */
/* netd core: the verb table, the binding kinds and their ops, and the binding kind of records read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "common/json-util.h"
#include "netd/binding/binding.h"
#include "netd/core/netd-priv.h"

/* Every verb of the protocol is found (the table is bisected: an unsorted entry would be lost), nothing else. */
static void test_verb_table(void **state) {
        (void) state;
        static const char *const names[] = { "add", "check", "cluster-claims", "del", "endpoints", "gc", "ipam",
                                             "ipam-release", "migration-activate", "migration-source",
                                             "migrations", "nat", "ping", "sriov", "status", "status-daemon" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                const Verb *v = verb_find(names[i]);
                assert_non_null(v);
                assert_string_equal(v->name, names[i]);
                assert_non_null(v->handler);
                assert_int_equal(v->log_failure, streq(names[i], "add") || streq(names[i], "del") ||
                                                         streq(names[i], "gc"));
        }
        assert_null(verb_find(""));
        assert_null(verb_find("ADD"));
        assert_null(verb_find("statu"));
        assert_null(verb_find("status-daemonx"));
}

/* Binding kinds: the string table both ways, which kind drives an attachment, and complete ops. */
static void test_binding_kinds(void **state) {
        (void) state;
        for (BindingKind k = 0; k < _BINDING_KIND_MAX; k++) {
                assert_non_null(binding_kind_to_string(k));
                assert_int_equal(binding_kind_from_string(binding_kind_to_string(k)), k);
                const BindingOps *ops = binding_ops(k);
                assert_int_equal(ops->kind, k);
                assert_non_null(ops->fill);
                assert_non_null(ops->attach);
                assert_non_null(ops->check);
                assert_non_null(ops->detach);
                assert_non_null(ops->result);
        }
        assert_null(binding_kind_to_string(_BINDING_KIND_MAX));
        assert_int_equal(binding_kind_from_string("Bridge"), _BINDING_KIND_INVALID);
        assert_int_equal(binding_kind_from_string(NULL), _BINDING_KIND_INVALID);
        assert_false(binding_kind_configurable(BINDING_CHAINED));
        assert_true(binding_kind_configurable(BINDING_SRIOV));
        /* configured, vm, chained */
        assert_int_equal(binding_kind_resolve(BINDING_BRIDGE, false, false), BINDING_BRIDGE);
        assert_int_equal(binding_kind_resolve(BINDING_BRIDGE, true, false), BINDING_BRIDGE);
        assert_int_equal(binding_kind_resolve(BINDING_MASQUERADE, false, false), BINDING_BRIDGE);
        assert_int_equal(binding_kind_resolve(BINDING_MASQUERADE, true, false), BINDING_MASQUERADE);
        assert_int_equal(binding_kind_resolve(BINDING_MASQUERADE, true, true), BINDING_CHAINED);
        assert_int_equal(binding_kind_resolve(BINDING_BRIDGE, true, true), BINDING_CHAINED);
        assert_int_equal(binding_kind_resolve(BINDING_BRIDGE, false, true), BINDING_CHAINED);
        assert_int_equal(binding_kind_resolve(BINDING_SRIOV, true, false), BINDING_SRIOV);
        /* only the sriov binding has no guest DHCP and no node NAT; only bridge ports get trunk guards */
        assert_null(binding_sriov_ops.lease);
        assert_false(binding_sriov_ops.node_nat);
        assert_true(binding_bridge_ops.bridge_port && binding_masquerade_ops.bridge_port);
        assert_false(binding_chained_ops.bridge_port || binding_sriov_ops.bridge_port);
        assert_true(binding_bridge_ops.learn_neighbour);
        assert_false(binding_masquerade_ops.learn_neighbour || binding_chained_ops.learn_neighbour);
}

/* A record's binding kind is derived when it is read, and is not written. */
static void test_endpoint_binding_kind(void **state) {
        (void) state;
        static const struct {
                const char *binding, *kind;
                bool chained;
                BindingKind want;
        } cases[] = {
                { "bridge", "container", false, BINDING_BRIDGE },
                { "masquerade", "container", false, BINDING_BRIDGE },
                { "masquerade", "vm", false, BINDING_MASQUERADE },
                { "bridge", "vm", true, BINDING_CHAINED },
                { "something-newer", "vm", false, BINDING_BRIDGE },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_json_ json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:b}", "network", "n", "containerID",
                                                     "c1", "ifname", "eth0", "key", "ctr/c1/eth0", "binding",
                                                     cases[i].binding, "kind", cases[i].kind, "chained",
                                                     cases[i].chained);
                assert_non_null(o);
                assert_int_equal(json_object_set_new(o, "state", json_string("ready")), 0);
                _cleanup_(endpoint_freep) Endpoint *ep = NULL;
                KvErr e = {};
                assert_int_equal(endpoint_from_json(o, &ep, &e), 0);
                assert_int_equal(ep->binding_kind, cases[i].want);
                assert_string_equal(ep->binding, cases[i].binding);
                _cleanup_json_ json_t *back = endpoint_to_json(ep, true);
                assert_null(json_object_get(back, "bindingKind"));
                assert_string_equal(json_string_value(json_object_get(back, "binding")), cases[i].binding);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_verb_table),
                cmocka_unit_test(test_binding_kinds),
                cmocka_unit_test(test_endpoint_binding_kind),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
