/* SPDX-License-Identifier: Apache-2.0 */
/* handler/: a VMI's status from its node's view — phases from the launcher's status (and its crash), the
 * interfaces with the pod network's addresses (IPv4 first) and the domain's MAC, the Ready, LiveMigratable and
 * Paused conditions with KubeVirt's reasons, timestamps kept when nothing changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/json-util.h"
#include "common/kstatus.h"
#include "handler/handler.h"

static json_t *load(const char *text) {
        json_error_t err;
        json_t *j = json_loads(text, 0, &err);
        if (!j)
                fail_msg("bad test JSON: %s: %s", err.text, text);
        return j;
}

#define VMI_BRIDGE                                                                                                     \
        "{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\"},\"spec\":{\"domain\":{\"devices\":{"               \
        "\"interfaces\":[{\"name\":\"default\",\"bridge\":{}}]}},\"networks\":[{\"name\":\"default\",\"pod\":{}}],"    \
        "\"volumes\":[{\"name\":\"root\",\"containerDisk\":{\"image\":\"kvnet.local/demo\"}}]},"                       \
        "\"status\":{\"phase\":\"Scheduled\",\"nodeName\":\"node1\"}}"

#define CNI_DUAL                                                                                                       \
        "{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"tap0\",\"mac\":\"02:00:00:00:00:01\"}],"               \
        "\"ips\":[{\"address\":\"fd00::5/64\"},{\"address\":\"10.88.0.5/24\",\"gateway\":\"10.88.0.1\"}]}"

#define LAUNCHER(phase)                                                                                                \
        "{\"phase\":\"" phase "\",\"reason\":\"\",\"interfaces\":[{\"name\":\"default\",\"mac\":\"02:aa:bb:cc:dd:ee\","  \
        "\"tap\":\"tap0\"}]}"

static json_t *status_of(json_t *vmi, const HdlPodView *p, bool *changed) {
        json_t *st = NULL;
        KvErr e = {};
        assert_int_equal(hdl_vmi_status(vmi, p, &st, changed, &e), 0);
        return st;
}

static void test_running_bridge(void **state) {
        (void) state;
        _cleanup_json_ json_t *vmi = load(VMI_BRIDGE), *cni = load(CNI_DUAL), *lst = load(LAUNCHER("Running"));
        HdlPodView p = { .node = "node1", .pod_name = "virt-launcher-web-x", .pod_uid = "u1", .cni_result = cni,
                         .launcher = lst };
        bool changed;
        _cleanup_json_ json_t *st = status_of(vmi, &p, &changed);
        assert_true(changed);
        assert_string_equal(json_string_value(json_object_get(st, "phase")), "Running");
        assert_string_equal(json_string_value(json_object_get(st, "nodeName")), "node1");
        json_t *ifc = json_array_get(json_object_get(st, "interfaces"), 0);
        assert_non_null(ifc);
        assert_string_equal(json_string_value(json_object_get(ifc, "name")), "default");
        assert_string_equal(json_string_value(json_object_get(ifc, "mac")), "02:aa:bb:cc:dd:ee");
        assert_string_equal(json_string_value(json_object_get(ifc, "ipAddress")), "10.88.0.5");
        json_t *ips = json_object_get(ifc, "ipAddresses");
        assert_int_equal(json_array_size(ips), 2);
        assert_string_equal(json_string_value(json_array_get(ips, 1)), "fd00::5");
        assert_string_equal(json_string_value(json_object_get(kstatus_condition(st, "Ready"), "status")), "True");
        assert_string_equal(json_string_value(json_object_get(kstatus_condition(st, "LiveMigratable"), "status")),
                            "True");
        assert_string_equal(json_string_value(json_object_get(json_object_get(st, "activePods"), "u1")), "node1");
        json_t *pts = json_object_get(st, "phaseTransitionTimestamps");
        assert_int_equal(json_array_size(pts), 1);
        /* the same view again changes nothing: no new resourceVersion for a status write */
        json_object_set(vmi, "status", st);
        _cleanup_json_ json_t *st2 = status_of(vmi, &p, &changed);
        assert_false(changed);
        assert_true(json_equal(st, st2));
}

static void test_multus_interface(void **state) {
        (void) state;
        _cleanup_json_ json_t *vmi = load(
                "{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\"},\"spec\":{\"domain\":{\"devices\":{"
                "\"interfaces\":[{\"name\":\"default\",\"masquerade\":{}},{\"name\":\"blue\",\"bridge\":{}}]}},"
                "\"networks\":[{\"name\":\"default\",\"pod\":{}},{\"name\":\"blue\",\"multus\":{\"networkName\":\"b\"}}]},"
                "\"status\":{\"phase\":\"Scheduled\",\"nodeName\":\"node1\"}}");
        _cleanup_json_ json_t *cni = load(CNI_DUAL),
                              *lst = load("{\"phase\":\"Running\",\"interfaces\":[{\"name\":\"default\",\"mac\":\"02:aa:bb:cc:dd:ee\","
                                          "\"tap\":\"tap0\"},{\"name\":\"blue\",\"mac\":\"02:00:00:00:0b:01\",\"tap\":\"net1\"}]}"),
                              *netst = load("[{\"name\":\"kvnet\",\"interface\":\"eth0\",\"ips\":[\"10.88.0.5\"],\"default\":true},"
                                            "{\"name\":\"default/b\",\"interface\":\"net1\",\"ips\":[\"fd10::7\",\"10.10.0.7\"],"
                                            "\"mac\":\"02:00:00:00:0b:01\"}]");
        HdlPodView p = { .node = "node1", .pod_name = "virt-launcher-web-x", .pod_uid = "u1", .cni_result = cni,
                         .launcher = lst, .network_status = netst };
        bool changed;
        _cleanup_json_ json_t *st = status_of(vmi, &p, &changed);
        json_t *blue = json_array_get(json_object_get(st, "interfaces"), 1);
        assert_string_equal(json_string_value(json_object_get(blue, "name")), "blue");
        assert_string_equal(json_string_value(json_object_get(blue, "ipAddress")), "10.10.0.7"); /* IPv4 first */
        assert_string_equal(json_string_value(json_array_get(json_object_get(blue, "ipAddresses"), 1)), "fd10::7");
        assert_string_equal(json_string_value(json_object_get(blue, "infoSource")), "domain, multus-status");
        assert_string_equal(json_string_value(json_object_get(blue, "podInterfaceName")), "net1");
        /* the pod network keeps its CNI result's addresses */
        json_t *def = json_array_get(json_object_get(st, "interfaces"), 0);
        assert_string_equal(json_string_value(json_object_get(def, "ipAddress")), "10.88.0.5");
        /* no network-status yet: the NIC is listed without addresses */
        p.network_status = NULL;
        _cleanup_json_ json_t *st2 = status_of(vmi, &p, &changed);
        blue = json_array_get(json_object_get(st2, "interfaces"), 1);
        assert_null(json_object_get(blue, "ipAddress"));
        assert_string_equal(json_string_value(json_object_get(blue, "infoSource")), "domain");
}

static void test_phases(void **state) {
        (void) state;
        _cleanup_json_ json_t *vmi = load(VMI_BRIDGE);
        static const struct {
                const char *launcher;
                bool exited;
                const char *failure;
                const char *want;
        } cases[] = {
                { NULL, false, NULL, NULL },               /* not started yet: unchanged */
                { "Scheduled", false, NULL, "Scheduled" }, { "Running", false, NULL, "Running" },
                { "Succeeded", true, NULL, "Succeeded" },  { "Failed", true, NULL, "Failed" },
                { "Running", true, NULL, "Failed" },       /* the launcher died under a running guest */
                { NULL, true, NULL, "Failed" },            { NULL, false, "CNI ADD failed: boom", "Failed" },
                { "WaitingForMigration", false, NULL, NULL },
                { "Migrated", true, NULL, NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char text[256];
                snprintf(text, sizeof text, "{\"phase\":\"%s\",\"reason\":\"qemu died\"}",
                         cases[i].launcher ? cases[i].launcher : "");
                _cleanup_json_ json_t *l = cases[i].launcher ? load(text) : NULL;
                HdlPodView p = { .node = "node1", .launcher = l, .launcher_exited = cases[i].exited,
                                 .failure = cases[i].failure };
                const char *got = hdl_vmi_phase(&p);
                if (!cases[i].want)
                        assert_null(got);
                else
                        assert_string_equal(got, cases[i].want);
                if (cases[i].want && streq(cases[i].want, "Failed")) {
                        bool changed;
                        _cleanup_json_ json_t *st = status_of(vmi, &p, &changed);
                        json_t *ready = kstatus_condition(st, "Ready");
                        assert_string_equal(json_string_value(json_object_get(ready, "reason")), "LauncherFailed");
                        const char *msg = json_string_value(json_object_get(ready, "message"));
                        assert_non_null(msg);
                        assert_non_null(strstr(msg, cases[i].failure ? "boom" : l ? "qemu died" : "without a status"));
                }
        }
}

static void test_not_migratable(void **state) {
        (void) state;
        _cleanup_json_ json_t *disk = load("{\"spec\":{\"volumes\":[{\"name\":\"scratch\",\"emptyDisk\":{\"capacity\":"
                                           "\"1Gi\"}}]}}"),
                              *sriov = load("{\"spec\":{\"domain\":{\"devices\":{\"interfaces\":[{\"name\":\"fast\","
                                            "\"sriov\":{}}]}}}}"),
                              *bad = load("{\"spec\":3}");
        HdlMigratable m;
        KvErr e = {};
        assert_int_equal(hdl_vmi_migratable(disk, NULL, &m, &e), 0);
        assert_false(m.migratable);
        assert_string_equal(m.reason, "DisksNotLiveMigratable");
        assert_non_null(strstr(m.message, "'scratch'"));
        assert_int_equal(hdl_vmi_migratable(sriov, NULL, &m, &e), 0);
        assert_false(m.migratable);
        assert_string_equal(m.reason, "InterfaceNotLiveMigratable");
        assert_non_null(strstr(m.message, "'fast'"));
        /* a third-party network's NIC (kvnet's chained tap-net1 carries host-local's address): not migratable
         * unless the pod's annotation asks for persistent addresses */
        _cleanup_json_ json_t *third = load("{\"spec\":{\"domain\":{\"devices\":{\"interfaces\":[{\"name\":\"default\","
                                            "\"bridge\":{}},{\"name\":\"green\",\"bridge\":{}}]}},\"networks\":[{\"name\":"
                                            "\"default\",\"pod\":{}},{\"name\":\"green\",\"multus\":{\"networkName\":\"green\"}}]}}"),
                              *netst = load("[{\"name\":\"default/green\",\"interface\":\"net1\"},{\"name\":\"default/green\","
                                            "\"interface\":\"tap-net1\",\"ips\":[\"10.130.0.2\"]}]"),
                              *plain = load("[{\"name\":\"green\",\"interface\":\"net1\"}]"),
                              *claimed = load("[{\"name\":\"green\",\"interface\":\"net1\",\"ipam-claim-reference\":\"vm.green\"}]");
        HdlPodView v = { .network_status = netst, .networks = plain };
        assert_int_equal(hdl_vmi_migratable(third, &v, &m, &e), 0);
        assert_false(m.migratable);
        assert_string_equal(m.reason, "InterfaceNotLiveMigratable");
        assert_non_null(strstr(m.message, "'green'"));
        assert_non_null(strstr(m.message, "default/green"));
        v.networks = claimed;
        assert_int_equal(hdl_vmi_migratable(third, &v, &m, &e), 0);
        assert_true(m.migratable);
        assert_int_equal(hdl_vmi_migratable(third, NULL, &m, &e), 0);
        assert_true(m.migratable);
        assert_int_equal(hdl_vmi_migratable(bad, NULL, &m, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "'spec'"));
}

/* The launcher's "paused" (virtctl pause): the Paused condition while it says so and the VMI runs, gone after. */
static void test_paused(void **state) {
        (void) state;
        _cleanup_json_ json_t *vmi = load(VMI_BRIDGE), *cni = load(CNI_DUAL), *lst = load(LAUNCHER("Running"));
        HdlPodView p = { .node = "node1", .pod_name = "virt-launcher-web-x", .pod_uid = "u1", .cni_result = cni,
                         .launcher = lst };
        bool changed;
        _cleanup_json_ json_t *st = status_of(vmi, &p, &changed);
        assert_null(kstatus_condition(st, "Paused"));
        json_object_set_new(lst, "paused", json_true());
        json_object_set(vmi, "status", st);
        _cleanup_json_ json_t *st2 = status_of(vmi, &p, &changed);
        assert_true(changed);
        json_t *c = kstatus_condition(st2, "Paused");
        assert_non_null(c);
        assert_string_equal(json_string_value(json_object_get(c, "status")), "True");
        assert_string_equal(json_string_value(json_object_get(c, "reason")), "PausedByUser");
        /* still paused: nothing to write */
        json_object_set(vmi, "status", st2);
        _cleanup_json_ json_t *st3 = status_of(vmi, &p, &changed);
        assert_false(changed);
        /* resumed: the condition goes, the others stay */
        json_object_set_new(lst, "paused", json_false());
        _cleanup_json_ json_t *st4 = status_of(vmi, &p, &changed);
        assert_true(changed);
        assert_null(kstatus_condition(st4, "Paused"));
        assert_non_null(kstatus_condition(st4, "Ready"));
        /* a launcher that says paused but is no longer running: no Paused condition */
        json_object_set_new(lst, "paused", json_true());
        json_object_set_new(lst, "phase", json_string("Failed"));
        _cleanup_json_ json_t *st5 = status_of(vmi, &p, &changed);
        assert_null(kstatus_condition(st5, "Paused"));
}

static void test_condition_times(void **state) {
        (void) state;
        _cleanup_json_ json_t *st = json_object();
        KCondition c = { .type = "Ready", .status = "False", .reason = "GuestNotRunning" };
        assert_int_equal(kstatus_set_condition(st, &c), 1);
        json_t *ready = kstatus_condition(st, "Ready");
        json_object_set_new(ready, "lastTransitionTime", json_string("2020-01-01T00:00:00Z"));
        assert_int_equal(kstatus_set_condition(st, &c), 0);
        c.reason = "Other"; /* same status, new reason: the transition time stays */
        assert_int_equal(kstatus_set_condition(st, &c), 1);
        ready = kstatus_condition(st, "Ready");
        assert_string_equal(json_string_value(json_object_get(ready, "lastTransitionTime")), "2020-01-01T00:00:00Z");
        c.status = "True";
        c.reason = NULL;
        assert_int_equal(kstatus_set_condition(st, &c), 1);
        ready = kstatus_condition(st, "Ready");
        assert_string_not_equal(json_string_value(json_object_get(ready, "lastTransitionTime")), "2020-01-01T00:00:00Z");
        assert_null(json_object_get(ready, "reason"));
        assert_int_equal(json_array_size(json_object_get(st, "conditions")), 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_running_bridge),
                cmocka_unit_test(test_multus_interface),
                cmocka_unit_test(test_phases),
                cmocka_unit_test(test_not_migratable),
                cmocka_unit_test(test_paused),
                cmocka_unit_test(test_condition_times),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
