/* SPDX-License-Identifier: Apache-2.0 */
/* The controller's IPAMClaims (controller/ipamclaim.c) on a real store: the claim's checks at create and at
 * status writes; a NAD's allowPersistentIPs read (and refused when mistyped); a VM's persistent networks get
 * <vm>.<network> with the right network, interface and owner, once; a claim whose VM is gone is deleted, one
 * of no VM stays; the launcher pod's networks annotation gets ipam-claim-reference on those networks only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "tests/unit/ctl-fixture.h"

#include "controller/ipamclaim.h"
#include "controller/store.h"
#include "controller/vm.h"

typedef struct Fx {
        char dir[64]; /* CtlFxHead */
        CtlStore *s;
        const CtlResource *vm, *vmi, *nad, *claim;
} Fx;

static int setup(void **state) {
        Fx *fx = ctl_fx_new(sizeof *fx);
        fx->vm = ctl_resource_find("kubevirt.io", "v1", "virtualmachines");
        fx->vmi = ctl_resource_find("kubevirt.io", "v1", "virtualmachineinstances");
        fx->nad = ctl_resource_find("k8s.cni.cncf.io", "v1", "network-attachment-definitions");
        fx->claim = ctl_resource_find("k8s.cni.cncf.io", "v1alpha1", "ipamclaims");
        assert_non_null(fx->claim);
        *state = fx;
        return 0;
}

static int create(Fx *fx, const CtlResource *r, const char *text, KvErr *e) {
        json_t *in = ctl_fx_parse(text), *out = NULL;
        int ret = ctl_store_create(fx->s, r, "default", in, &out, e);
        json_decref(in);
        json_decref(out);
        return ret;
}

static void create_ok(Fx *fx, const CtlResource *r, const char *text) {
        KvErr e = {};
        if (create(fx, r, text, &e) < 0)
                fail_msg("%s: %s", text, e.msg);
}

static void create_bad(Fx *fx, const char *text, const char *want) {
        KvErr e = {};
        assert_int_equal(create(fx, fx->claim, text, &e), -EINVAL);
        if (!strstr(e.msg, want))
                fail_msg("%s: '%s' does not hold '%s'", text, e.msg, want);
}

static void test_check(void **state) {
        Fx *fx = *state;
        create_ok(fx, fx->claim, "{\"metadata\":{\"name\":\"a\"},\"spec\":{\"network\":\"n\",\"interface\":\"net1\","
                                 "\"ipRequests\":[\"10.0.0.5/24\",\"fd00::5/64\"]}}");
        create_bad(fx, "{\"metadata\":{\"name\":\"b\"}}", "'spec' must be an object, got nothing");
        create_bad(fx, "{\"metadata\":{\"name\":\"b\"},\"spec\":{}}", "'spec.network'");
        create_bad(fx, "{\"metadata\":{\"name\":\"b\"},\"spec\":{\"network\":\"\"}}", "'spec.network'");
        create_bad(fx, "{\"metadata\":{\"name\":\"b\"},\"spec\":{\"network\":\"n\",\"interface\":1}}",
                   "'spec.interface' must be a string, got integer");
        create_bad(fx, "{\"metadata\":{\"name\":\"b\"},\"spec\":{\"network\":\"n\",\"ipRequests\":[\"10.0.0.5\"]}}",
                   "'spec.ipRequests[0]' is not an address/prefix: '10.0.0.5'");
        create_bad(fx, "{\"metadata\":{\"name\":\"b\"},\"spec\":{\"network\":\"n\",\"ipRequests\":[\"10.0.0.5/8\","
                       "\"10.0.0.6/8\"]}}",
                   "two addresses of the same family");
        create_bad(fx, "{\"metadata\":{\"name\":\"b\"},\"spec\":{\"network\":\"n\",\"ipRequests\":\"x\"}}",
                   "'spec.ipRequests' must be an array");

        /* the status subresource is checked too */
        KvErr e = {};
        json_t *st = ctl_fx_parse("{\"ips\":[\"10.0.0.5/24\"],\"ownerPod\":\"p\"}");
        assert_int_equal(ctl_store_set_status(fx->s, fx->claim, "default", "a", st, &e), 0);
        json_decref(st);
        st = ctl_fx_parse("{\"ips\":[\"nope\"]}");
        assert_int_equal(ctl_store_set_status(fx->s, fx->claim, "default", "a", st, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "'status.ips[0]' is not an address/prefix: 'nope'"));
        json_decref(st);
}

static void test_nad_config(void **state) {
        (void) state;
        bool allow = true;
        char *name = NULL;
        KvErr e = {};
        assert_int_equal(ctl_nad_persistent_ips("{\"name\":\"n\",\"allowPersistentIPs\":true}", &allow, &name, &e), 0);
        assert_true(allow);
        assert_string_equal(name, "n");
        free(name);
        assert_int_equal(ctl_nad_persistent_ips("{\"name\":\"n\"}", &allow, &name, &e), 0);
        assert_false(allow);
        free(name);
        assert_int_equal(ctl_nad_persistent_ips("{\"allowPersistentIPs\":false}", &allow, &name, &e), 0);
        assert_false(allow);
        assert_null(name);
        assert_int_equal(ctl_nad_persistent_ips("{\"name\":\"n\",\"allowPersistentIPs\":\"true\"}", &allow, &name, &e),
                         -EINVAL);
        assert_non_null(strstr(e.msg, "'allowPersistentIPs' must be a boolean, got string"));
        kverr_clear(&e);
        assert_int_equal(ctl_nad_persistent_ips("{\"allowPersistentIPs\":true}", &allow, &name, &e), -EINVAL);
        if (!strstr(e.msg, "'name'"))
                fail_msg("'%s'", e.msg);
        assert_true(ctl_nad_persistent_ips("{nope", &allow, &name, &e) < 0);
        assert_true(ctl_nad_persistent_ips("", &allow, &name, &e) < 0);

        char buf[CTL_IPAMCLAIM_NAME_MAX + 1], longname[250];
        assert_int_equal(ctl_ipamclaim_name("web", "blue", buf), 0);
        assert_string_equal(buf, "web.blue");
        memset(longname, 'a', sizeof longname - 1);
        longname[sizeof longname - 1] = '\0';
        assert_int_equal(ctl_ipamclaim_name(longname, "blue", buf), -ENAMETOOLONG);
}

#define NAD(name, extra)                                                                                            \
        "{\"metadata\":{\"name\":\"" name "\"},\"spec\":{\"config\":\"{\\\"cniVersion\\\":\\\"1.0.0\\\","          \
        "\\\"name\\\":\\\"" name "net\\\",\\\"type\\\":\\\"macvlan\\\"" extra "}\"}}"

/* web: networks red (plain), blue (persistent), green (persistent, the pod network's replacement: skipped) */
static const char *const VM_WEB =
        "{\"metadata\":{\"name\":\"web\"},\"spec\":{\"running\":true,\"template\":{\"spec\":{\"domain\":{\"devices\":"
        "{\"interfaces\":[{\"name\":\"green\",\"bridge\":{}},{\"name\":\"red\",\"bridge\":{}},{\"name\":\"blue\","
        "\"bridge\":{}}]},\"memory\":{\"guest\":\"64Mi\"}},\"networks\":[{\"name\":\"green\",\"multus\":{"
        "\"networkName\":\"blue\",\"default\":true}},{\"name\":\"red\",\"multus\":{\"networkName\":\"red\"}},"
        "{\"name\":\"blue\",\"multus\":{\"networkName\":\"default/blue\"}}]}}}}";

static json_t *get(Fx *fx, const CtlResource *r, const char *name) {
        json_t *o = NULL;
        return ctl_store_get(fx->s, r, "default", name, &o) == 0 ? o : NULL;
}

static void test_reconcile(void **state) {
        Fx *fx = *state;
        create_ok(fx, fx->nad, NAD("red", ""));
        create_ok(fx, fx->nad, NAD("blue", ",\\\"allowPersistentIPs\\\":true"));
        create_ok(fx, fx->vm, VM_WEB);
        create_ok(fx, fx->claim, "{\"metadata\":{\"name\":\"mine\"},\"spec\":{\"network\":\"bluenet\"}}");

        assert_int_equal(ctl_ipamclaims_reconcile(fx->s), 1);
        assert_int_equal(ctl_ipamclaims_reconcile(fx->s), 0); /* settled */
        assert_int_equal(ctl_fx_count(fx->s, fx->claim), 2);
        json_t *c = get(fx, fx->claim, "web.blue"), *vm = get(fx, fx->vm, "web");
        assert_non_null(c);
        assert_string_equal(json_string_value(ctl_json_path(c, "spec.network")), "bluenet");
        assert_string_equal(json_string_value(ctl_json_path(c, "spec.interface")), "net2");
        assert_string_equal(json_string_value(ctl_json_path(c, "metadata.ownerReferences.0.kind")), "VirtualMachine");
        assert_string_equal(json_string_value(ctl_json_path(c, "metadata.ownerReferences.0.uid")), ctl_md(vm, "uid"));
        assert_string_equal(json_string_value(json_object_get(ctl_json_path(c, "metadata.labels"), "kubevirt.io/vm")), "web");
        json_decref(c);
        json_decref(vm);

        /* the launcher pod's annotation: the reference on blue's entry only */
        assert_true(ctl_vm_reconcile(fx->s) > 0);
        json_t *ann = ctl_fx_parse("{\"k8s.v1.cni.cncf.io/networks\":\"[{\\\"name\\\":\\\"red\\\",\\\"namespace\\\":"
                                   "\\\"default\\\",\\\"interface\\\":\\\"net1\\\",\\\"cni-args\\\":{\\\"kvnet\\\":{"
                                   "\\\"vm\\\":{\\\"interface\\\":\\\"red\\\"}}}},{\\\"name\\\":\\\"blue\\\","
                                   "\\\"namespace\\\":\\\"default\\\",\\\"interface\\\":\\\"net2\\\"}]\"}");
        assert_int_equal(ctl_ipamclaims_annotate(fx->s, "default", "web", ann), 1);
        json_t *list = ctl_fx_parse(json_string_value(json_object_get(ann, "k8s.v1.cni.cncf.io/networks")));
        assert_null(json_object_get(json_array_get(list, 0), "ipam-claim-reference"));
        assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "ipam-claim-reference")),
                            "web.blue");
        json_decref(list);
        /* a VMI of no VM: nothing */
        assert_int_equal(ctl_ipamclaims_annotate(fx->s, "default", "nosuch", ann), 0);
        json_decref(ann);

        /* the VM goes: its claim goes, the one of no VM stays */
        json_t *out = NULL;
        KvErr e = {};
        assert_int_equal(ctl_store_delete(fx->s, fx->vm, "default", "web", &out, &e), 0);
        json_decref(out);
        assert_int_equal(ctl_ipamclaims_reconcile(fx->s), 1);
        assert_null(get(fx, fx->claim, "web.blue"));
        json_t *mine = get(fx, fx->claim, "mine");
        assert_non_null(mine);
        json_decref(mine);
}

/* A NAD whose allowPersistentIPs is mistyped gives no claim (and is logged), as one without it. */
static void test_bad_nad(void **state) {
        Fx *fx = *state;
        create_ok(fx, fx->nad, NAD("red", ""));
        create_ok(fx, fx->nad, NAD("blue", ",\\\"allowPersistentIPs\\\":1"));
        create_ok(fx, fx->vm, VM_WEB);
        assert_int_equal(ctl_ipamclaims_reconcile(fx->s), 0);
        assert_int_equal(ctl_fx_count(fx->s, fx->claim), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_check, setup, ctl_fx_free),
                cmocka_unit_test(test_nad_config),
                cmocka_unit_test_setup_teardown(test_reconcile, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_bad_nad, setup, ctl_fx_free),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
