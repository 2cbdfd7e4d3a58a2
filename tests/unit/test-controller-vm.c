/* SPDX-License-Identifier: Apache-2.0 */
/* The VirtualMachine controller (controller/vm.c) on a real store: a VM that should run gets its VMI (from
 * the template, owned by the VM, Pending), stopping deletes it, a VMI whose VM is gone is collected, the
 * VM's status follows; a pass over a settled store changes nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "tests/unit/ctl-fixture.h"

#include "controller/node.h"
#include "controller/scheduler.h"
#include "controller/store.h"
#include "controller/vm.h"

typedef struct Fx {
        char dir[64]; /* CtlFxHead */
        CtlStore *s;
        const CtlResource *vm, *vmi;
} Fx;

static int setup(void **state) {
        Fx *fx = ctl_fx_new(sizeof *fx);
        fx->vm = ctl_resource_find("kubevirt.io", "v1", "virtualmachines");
        fx->vmi = ctl_resource_find("kubevirt.io", "v1", "virtualmachineinstances");
        *state = fx;
        return 0;
}

static void create_vm(Fx *fx, const char *name, const char *run) {
        char text[512];
        snprintf(text, sizeof text,
                 "{\"metadata\":{\"name\":\"%s\"},\"spec\":{%s,\"template\":{\"metadata\":{\"labels\":{\"app\":\"web\"}},"
                 "\"spec\":{\"domain\":{\"devices\":{},\"memory\":{\"guest\":\"64Mi\"}}}}}}",
                 name, run);
        json_error_t err;
        json_t *in = json_loads(text, 0, &err), *out = NULL;
        assert_non_null(in);
        KvErr e = {};
        assert_int_equal(ctl_store_create(fx->s, fx->vm, "default", in, &out, &e), 0);
        json_decref(in);
        json_decref(out);
}

static void patch_vm(Fx *fx, const char *name, const char *patch) {
        json_error_t err;
        json_t *p = json_loads(patch, 0, &err), *out = NULL;
        assert_non_null(p);
        KvErr e = {};
        assert_int_equal(ctl_store_patch(fx->s, fx->vm, "default", name, p, &out, &e), 0);
        json_decref(p);
        json_decref(out);
}

static json_t *get(Fx *fx, const CtlResource *r, const char *name) {
        json_t *o = NULL;
        return ctl_store_get(fx->s, r, "default", name, &o) == 0 ? o : NULL;
}

static const char *status_str(json_t *o, const char *k) {
        return json_string_value(json_object_get(json_object_get(o, "status"), k));
}

static void test_start_stop(void **state) {
        Fx *fx = *state;
        create_vm(fx, "web", "\"running\":true");
        assert_true(ctl_vm_reconcile(fx->s) > 0);
        assert_int_equal(ctl_vm_reconcile(fx->s), 0); /* settled: nothing more to do */
        json_t *vm = get(fx, fx->vm, "web"), *vmi = get(fx, fx->vmi, "web");
        assert_non_null(vmi);
        json_t *ref = json_array_get(json_object_get(json_object_get(vmi, "metadata"), "ownerReferences"), 0);
        assert_string_equal(json_string_value(json_object_get(ref, "kind")), "VirtualMachine");
        assert_string_equal(json_string_value(json_object_get(ref, "uid")),
                            json_string_value(json_object_get(json_object_get(vm, "metadata"), "uid")));
        json_t *labels = json_object_get(json_object_get(vmi, "metadata"), "labels");
        assert_string_equal(json_string_value(json_object_get(labels, "app")), "web");
        assert_string_equal(json_string_value(json_object_get(labels, "kubevirt.io/vm")), "web");
        assert_non_null(json_object_get(json_object_get(json_object_get(vmi, "spec"), "domain"), "devices"));
        assert_string_equal(status_str(vmi, "phase"), "Pending");
        assert_string_equal(status_str(vm, "printableStatus"), "Starting");
        assert_true(json_is_true(json_object_get(json_object_get(vm, "status"), "created")));
        assert_true(json_is_false(json_object_get(json_object_get(vm, "status"), "ready")));
        json_decref(vm);
        json_decref(vmi);

        /* the VMI runs (what the node agent will report): the VM is Running and ready */
        json_t *st = json_pack("{s:s}", "phase", "Running");
        KvErr e = {};
        assert_int_equal(ctl_store_set_status(fx->s, fx->vmi, "default", "web", st, &e), 0);
        json_decref(st);
        assert_int_equal(ctl_vm_reconcile(fx->s), 1);
        vm = get(fx, fx->vm, "web");
        assert_string_equal(status_str(vm, "printableStatus"), "Running");
        assert_true(json_is_true(json_object_get(json_object_get(vm, "status"), "ready")));
        json_decref(vm);

        /* stop */
        patch_vm(fx, "web", "{\"spec\":{\"running\":false}}");
        assert_true(ctl_vm_reconcile(fx->s) > 0);
        assert_null(get(fx, fx->vmi, "web"));
        vm = get(fx, fx->vm, "web");
        assert_string_equal(status_str(vm, "printableStatus"), "Stopped");
        json_decref(vm);
        assert_int_equal(ctl_vm_reconcile(fx->s), 0);
}

static void test_run_strategies_and_gc(void **state) {
        Fx *fx = *state;
        create_vm(fx, "always", "\"runStrategy\":\"Always\"");
        create_vm(fx, "halted", "\"runStrategy\":\"Halted\"");
        create_vm(fx, "manual", "\"runStrategy\":\"Manual\"");
        (void) ctl_vm_reconcile(fx->s);
        json_t *o;
        assert_non_null(o = get(fx, fx->vmi, "always"));
        json_decref(o);
        assert_null(get(fx, fx->vmi, "halted"));
        assert_null(get(fx, fx->vmi, "manual"));
        /* Always: a deleted VMI comes back */
        KvErr e = {};
        assert_int_equal(ctl_store_delete(fx->s, fx->vmi, "default", "always", &o, &e), 0);
        json_decref(o);
        (void) ctl_vm_reconcile(fx->s);
        assert_non_null(o = get(fx, fx->vmi, "always"));
        json_decref(o);
        /* the VM goes: its VMI is collected */
        assert_int_equal(ctl_store_delete(fx->s, fx->vm, "default", "always", &o, &e), 0);
        json_decref(o);
        (void) ctl_vm_reconcile(fx->s);
        assert_null(get(fx, fx->vmi, "always"));
        /* a VMI nobody owns is left alone (and gets its Pending phase) */
        json_error_t err;
        json_t *in = json_loads("{\"metadata\":{\"name\":\"solo\"},\"spec\":{\"domain\":{\"memory\":{\"guest\":\"64Mi\"}}}}", 0, &err);
        assert_int_equal(ctl_store_create(fx->s, fx->vmi, "default", in, &o, &e), 0);
        json_decref(in);
        json_decref(o);
        (void) ctl_vm_reconcile(fx->s);
        assert_non_null(o = get(fx, fx->vmi, "solo"));
        assert_string_equal(status_str(o, "phase"), "Pending");
        json_decref(o);
        assert_int_equal(ctl_vm_reconcile(fx->s), 0);
}

static json_t *parse(const char *text) {
        json_error_t err;
        json_t *o = json_loads(text, 0, &err);
        if (!o)
                fail_msg("bad test JSON at %d: %s", err.position, err.text);
        return o;
}

/* The names of the VMI's interfaces, with their state: "default,blue(absent)". */
static const char *vmi_ifaces(Fx *fx, char *buf, size_t n) {
        json_t *vmi = get(fx, fx->vmi, "web");
        size_t i, k = 0;
        json_t *f;
        buf[0] = '\0';
        json_array_foreach(json_object_get(json_object_get(json_object_get(json_object_get(vmi, "spec"), "domain"),
                                                           "devices"),
                                           "interfaces"),
                           i, f) {
                const char *st = json_string_value(json_object_get(f, "state"));
                k += (size_t) snprintf(buf + k, n - k, "%s%s%s%s%s", i ? "," : "",
                                       json_string_value(json_object_get(f, "name")), st ? "(" : "", st ? st : "",
                                       st ? ")" : "");
        }
        json_decref(vmi);
        return buf;
}

/* The launcher pod's networks annotation as "name:interface,...", "none" without one. */
static const char *pod_networks(Fx *fx, char *buf, size_t n) {
        const CtlResource *pod = ctl_resource_find("", "v1", "pods");
        json_t *l = ctl_store_list(fx->s, pod, "default", NULL);
        assert_int_equal(json_array_size(json_object_get(l, "items")), 1);
        const char *text = json_string_value(json_object_get(
                json_object_get(json_object_get(json_array_get(json_object_get(l, "items"), 0), "metadata"), "annotations"),
                "k8s.v1.cni.cncf.io/networks"));
        snprintf(buf, n, "none");
        json_t *list = text ? parse(text) : NULL;
        size_t i, k = 0;
        json_t *o;
        json_array_foreach(list, i, o) k += (size_t) snprintf(buf + k, n - k, "%s%s:%s", i ? "," : "",
                                                              json_string_value(json_object_get(o, "name")),
                                                              json_string_value(json_object_get(o, "interface")));
        json_decref(list);
        json_decref(l);
        return buf;
}

#define IF_DEFAULT "{\"name\":\"default\",\"masquerade\":{}}"
#define NET_DEFAULT "{\"name\":\"default\",\"pod\":{}}"
#define IF(n, extra) "{\"name\":\"" n "\",\"bridge\":{}" extra "}"
#define NET(n, nad) "{\"name\":\"" n "\",\"multus\":{\"networkName\":\"" nad "\"}}"
#define TEMPLATE(ifs, nets)                                                                                            \
        "{\"spec\":{\"template\":{\"spec\":{\"domain\":{\"devices\":{\"interfaces\":[" ifs "]}},\"networks\":[" nets \
        "]}}}}"

/* NIC hot-plug: a bridge NIC on a Multus network added to a running VM's template joins the VMI and the pod's
 * networks annotation; state absent in the template marks it absent in the VMI and takes it off the annotation,
 * the other NICs keeping their net<k>; a new VMI is made without it. */
static void test_nic_hotplug(void **state) {
        Fx *fx = *state;
        char b[256];
        KvErr e = {};
        assert_true(ctl_nodes_simulate(fx->s, 1, 4000, 4ull << 30, &e) > 0);
        create_vm(fx, "web", "\"running\":true");
        patch_vm(fx, "web", TEMPLATE(IF_DEFAULT, NET_DEFAULT));
        assert_true(ctl_vm_reconcile(fx->s) > 0);
        assert_true(ctl_schedule(fx->s) > 0);
        assert_string_equal(pod_networks(fx, b, sizeof b), "none");

        /* not running yet: a template change waits */
        patch_vm(fx, "web", TEMPLATE(IF_DEFAULT "," IF("blue", ""), NET_DEFAULT "," NET("blue", "vlan")));
        (void) ctl_vm_reconcile(fx->s);
        assert_string_equal(vmi_ifaces(fx, b, sizeof b), "default");

        json_t *st = parse("{\"phase\":\"Running\",\"nodeName\":\"node1\"}");
        assert_int_equal(ctl_store_set_status(fx->s, fx->vmi, "default", "web", st, &e), 0);
        json_decref(st);
        assert_true(ctl_vm_reconcile(fx->s) > 0);
        assert_string_equal(vmi_ifaces(fx, b, sizeof b), "default,blue");
        assert_int_equal(ctl_schedule(fx->s), 1);
        assert_string_equal(pod_networks(fx, b, sizeof b), "vlan:net1");

        patch_vm(fx, "web", TEMPLATE(IF_DEFAULT "," IF("blue", "") "," IF("red", ""),
                                     NET_DEFAULT "," NET("blue", "vlan") "," NET("red", "r")));
        assert_true(ctl_vm_reconcile(fx->s) > 0);
        assert_int_equal(ctl_schedule(fx->s), 1);
        assert_string_equal(pod_networks(fx, b, sizeof b), "vlan:net1,r:net2");

        /* unplug blue: red keeps net2 */
        patch_vm(fx, "web", TEMPLATE(IF_DEFAULT "," IF("blue", ",\"state\":\"absent\"") "," IF("red", ""),
                                     NET_DEFAULT "," NET("blue", "vlan") "," NET("red", "r")));
        assert_true(ctl_vm_reconcile(fx->s) > 0);
        assert_string_equal(vmi_ifaces(fx, b, sizeof b), "default,blue(absent),red");
        assert_int_equal(ctl_schedule(fx->s), 1);
        assert_string_equal(pod_networks(fx, b, sizeof b), "r:net2");
        /* settled */
        assert_int_equal(ctl_vm_reconcile(fx->s), 0);
        assert_int_equal(ctl_schedule(fx->s), 0);

        /* an SR-IOV NIC is hot-plugged too (netd allocates its VF) */
        patch_vm(fx, "web", TEMPLATE(IF_DEFAULT "," IF("blue", ",\"state\":\"absent\"") "," IF("red", "") ","
                                     "{\"name\":\"m\",\"sriov\":{}}",
                                     NET_DEFAULT "," NET("blue", "vlan") "," NET("red", "r") "," NET("m", "x")));
        assert_int_equal(ctl_vm_reconcile(fx->s), 1);
        assert_string_equal(vmi_ifaces(fx, b, sizeof b), "default,blue(absent),red,m");

        /* a restart: the new VMI has no absent interface (nor its network) */
        patch_vm(fx, "web", TEMPLATE(IF_DEFAULT "," IF("blue", ",\"state\":\"absent\"") "," IF("red", ""),
                                     NET_DEFAULT "," NET("blue", "vlan") "," NET("red", "r")));
        json_t *out = NULL;
        assert_int_equal(ctl_store_delete(fx->s, fx->vmi, "default", "web", &out, &e), 0);
        json_decref(out);
        assert_true(ctl_vm_reconcile(fx->s) > 0);
        assert_string_equal(vmi_ifaces(fx, b, sizeof b), "default,red");
        json_t *vmi = get(fx, fx->vmi, "web");
        assert_int_equal(json_array_size(json_object_get(json_object_get(vmi, "spec"), "networks")), 2);
        json_decref(vmi);
        /* the VM's template is untouched */
        json_t *vm = get(fx, fx->vm, "web");
        assert_int_equal(json_array_size(json_object_get(
                                 json_object_get(json_object_get(json_object_get(vm, "spec"), "template"), "spec"), "networks")),
                         3);
        json_decref(vm);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_start_stop, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_run_strategies_and_gc, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_nic_hotplug, setup, ctl_fx_free),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
