/* SPDX-License-Identifier: Apache-2.0 */
/* agent/podmap.c: a launcher pod and its VMI → what the pod runtime runs (the VMI's pod-network interface, its
 * binding, grace, the pod/VMI uid check, errors naming the field); the pod's status as kubelet writes it
 * (phase, IPs, conditions with kept transition times, the compute container, the failure message); agent/migmap.c:
 * a pod's role in its VMI's migration, who writes the VMI's status, the fields each node reports, its record. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/agent.h"
#include "agent/events.h"
#include "common/json-util.h"
#include "common/kstatus.h"
#include "tests/unit/helpers.h"

#define POD                                                                                                            \
        "{\"metadata\":{\"name\":\"virt-launcher-web-abcde\",\"namespace\":\"default\",\"uid\":\"p-1\","                \
        "\"labels\":{\"kubevirt.io\":\"virt-launcher\",\"kubevirt.io/created-by\":\"vmi-uid-1\","                       \
        "\"vm.kubevirt.io/name\":\"web-label\"},"                                                                       \
        "\"annotations\":{\"k8s.v1.cni.cncf.io/networks\":"                                                           \
        "\"[{\\\"name\\\":\\\"vlan\\\",\\\"interface\\\":\\\"net1\\\"},{\\\"name\\\":\\\"r\\\",\\\"interface\\\":\\\"net2\\\"}]\"},"    \
        "\"ownerReferences\":[{\"kind\":\"VirtualMachineInstance\",\"name\":\"web\",\"uid\":\"vmi-uid-1\","             \
        "\"controller\":true}]},\"spec\":{\"nodeName\":\"node1\"},\"status\":{\"phase\":\"Pending\"}}"

#define VMI(ifaces, extra)                                                                                             \
        "{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"uid\":\"vmi-uid-1\"},\"spec\":{" extra            \
        "\"domain\":{\"devices\":{\"interfaces\":[" ifaces "]}},"                                                      \
        "\"networks\":[{\"name\":\"blue\",\"multus\":{\"networkName\":\"vlan\"}},{\"name\":\"default\",\"pod\":{}}]}}"

static void test_pod_fields(void **state) {
        (void) state;
        _cleanup_json_ json_t *pod = test_json(POD), *other = test_json("{\"metadata\":{\"labels\":{\"vm.kubevirt.io/name\":\"x\"}}}");
        assert_true(agent_pod_is_launcher(pod));
        assert_false(agent_pod_is_launcher(other));
        assert_string_equal(agent_pod_vmi_name(pod), "web"); /* the controller ownerReference first */
        assert_string_equal(agent_pod_vmi_name(other), "x"); /* else the label */
        assert_false(agent_pod_finished(pod));
        json_object_set_new(json_object_get(pod, "status"), "phase", json_string("Failed"));
        assert_true(agent_pod_finished(pod));
        assert_string_equal(agent_pod_phase("Running"), "Running");
        assert_string_equal(agent_pod_phase("Succeeded"), "Succeeded");
        assert_string_equal(agent_pod_phase("Failed"), "Failed");
        assert_string_equal(agent_pod_phase("Scheduled"), "Pending");
        assert_string_equal(agent_pod_phase(NULL), "Pending");
}

static void test_launch(void **state) {
        (void) state;
        _cleanup_json_ json_t *pod = test_json(POD);
        _cleanup_json_ json_t *vmi = test_json(VMI("{\"name\":\"blue\",\"bridge\":{}},{\"name\":\"default\",\"masquerade\":{}}",
                                              "\"terminationGracePeriodSeconds\":7,"));
        AgentLaunch l;
        KvErr e = {};
        assert_int_equal(agent_launch_from(pod, vmi, &l, &e), 0);
        assert_string_equal(l.vm_namespace, "default");
        assert_string_equal(l.vm_name, "web");
        assert_string_equal(l.interface, "default"); /* the pod network's, not the Multus one before it */
        assert_int_equal(l.binding, NODE_POD_BINDING_MASQUERADE);
        assert_int_equal(l.grace_seconds, 7);
        /* the Multus network's interface: the pod's net1 */
        assert_int_equal(l.n_nics, 1);
        assert_string_equal(l.nics[0].vm_interface, "blue");
        assert_string_equal(l.nics[0].ifname, "net1");

        /* several: net1, net2 in spec.networks order; a default Multus network is not one of them */
        _cleanup_json_ json_t *multi = test_json(
                "{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"uid\":\"vmi-uid-1\"},\"spec\":{"
                "\"domain\":{\"devices\":{\"interfaces\":[{\"name\":\"default\",\"bridge\":{}},{\"name\":\"red\",\"bridge\":{}},"
                "{\"name\":\"blue\",\"bridge\":{}}]}},\"networks\":[{\"name\":\"default\",\"pod\":{}},"
                "{\"name\":\"blue\",\"multus\":{\"networkName\":\"ns2/vlan\"}},{\"name\":\"red\",\"multus\":{\"networkName\":\"r\"}}]}}");
        assert_int_equal(agent_launch_from(pod, multi, &l, &e), 0);
        assert_int_equal(l.n_nics, 2);
        assert_string_equal(l.nics[0].vm_interface, "blue");
        assert_string_equal(l.nics[0].ifname, "net1");
        assert_string_equal(l.nics[1].vm_interface, "red");
        assert_string_equal(l.nics[1].ifname, "net2");

        /* NIC hot-plug: an unplugged interface (state absent) is not attached and keeps its number; one the pod's
         * networks annotation does not have yet waits */
        json_object_set_new(json_array_get(json_object_get(json_object_get(json_object_get(json_object_get(multi, "spec"),
                                                                                           "domain"),
                                                                           "devices"),
                                                           "interfaces"),
                                           2),
                            "state", json_string("absent"));
        assert_int_equal(agent_launch_from(pod, multi, &l, &e), 0);
        assert_int_equal(l.n_nics, 1);
        assert_string_equal(l.nics[0].vm_interface, "red");
        assert_string_equal(l.nics[0].ifname, "net2");
        json_object_set_new(json_object_get(json_object_get(pod, "metadata"), "annotations"), "k8s.v1.cni.cncf.io/networks",
                            json_string("[{\"name\":\"vlan\",\"interface\":\"net1\"}]"));
        assert_int_equal(agent_launch_from(pod, multi, &l, &e), 0);
        assert_int_equal(l.n_nics, 0);

        /* a Multus default network replaces the pod network: its interface is the pod's cluster-network one */
        _cleanup_json_ json_t *dflt = test_json(
                "{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"uid\":\"vmi-uid-1\"},\"spec\":{"
                "\"domain\":{\"devices\":{\"interfaces\":[{\"name\":\"main\",\"bridge\":{}}]}},"
                "\"networks\":[{\"name\":\"main\",\"multus\":{\"networkName\":\"blue\",\"default\":true}}]}}");
        assert_int_equal(agent_launch_from(pod, dflt, &l, &e), 0);
        assert_string_equal(l.interface, "main");
        assert_int_equal(l.binding, NODE_POD_BINDING_BRIDGE);
        assert_int_equal(l.n_nics, 0);

        _cleanup_json_ json_t *bridge = test_json(VMI("{\"name\":\"default\",\"bridge\":{}},{\"name\":\"blue\",\"bridge\":{}}", ""));
        assert_int_equal(agent_launch_from(pod, bridge, &l, &e), 0);
        assert_int_equal(l.binding, NODE_POD_BINDING_BRIDGE);
        assert_int_equal(l.grace_seconds, -1);
}

/* An SR-IOV NIC on a Multus network: flagged for the runtime, its VF's PCI address from the pod's network-status. */
static void test_launch_sriov(void **state) {
        (void) state;
        _cleanup_json_ json_t *pod = test_json(POD);
        _cleanup_json_ json_t *vmi = test_json(VMI("{\"name\":\"blue\",\"sriov\":{}},{\"name\":\"default\",\"bridge\":{}}", ""));
        AgentLaunch l;
        KvErr e = {};
        assert_int_equal(agent_launch_from(pod, vmi, &l, &e), 0);
        assert_int_equal(l.n_nics, 1);
        assert_string_equal(l.nics[0].vm_interface, "blue");
        assert_string_equal(l.nics[0].ifname, "net1");
        assert_true(l.nics[0].sriov);

        json_t *ann = json_object_get(json_object_get(pod, "metadata"), "annotations");
        char pci[16];
        assert_int_equal(agent_pod_nic_pci(pod, "net1", pci, &e), -ENOENT);
        assert_string_equal(e.msg, "pod: no 'k8s.v1.cni.cncf.io/network-status' annotation");
        static const struct {
                const char *status, *msg;
                int r;
        } cases[] = {
                { "[{\"name\":\"default/vlan\",\"interface\":\"net1\",\"device-info\":{\"type\":\"pci\","
                  "\"version\":\"1.1.0\",\"pci\":{\"pci-address\":\"0000:3b:02.1\"}}}]",
                  NULL, 0 },
                { "{", "pod: 'k8s.v1.cni.cncf.io/network-status' is not a JSON list: ", -EINVAL },
                { "[{\"name\":\"default/vlan\",\"interface\":\"net2\"}]",
                  "pod: 'k8s.v1.cni.cncf.io/network-status' has no interface 'net1'", -ENOENT },
                { "[{\"name\":\"default/vlan\",\"interface\":\"net1\",\"ips\":[\"10.1.0.5\"]}]",
                  "pod: interface 'net1' (network 'default/vlan') has no device-info.pci.pci-address in "
                  "'k8s.v1.cni.cncf.io/network-status': its delegate gave it no VF",
                  -ENOENT },
                { "[{\"interface\":\"net1\",\"device-info\":{\"pci\":{\"pci-address\":\"../../dev/sda\"}}}]",
                  "pod: interface 'net1': device-info.pci.pci-address '../../dev/sda' is not a PCI address (DDDD:BB:SS.F)",
                  -EINVAL },
                { "[{\"interface\":\"net1\",\"device-info\":{\"pci\":{\"pci-address\":\"0000:3b:22.1\"}}}]",
                  "pod: interface 'net1': device-info.pci.pci-address '0000:3b:22.1' is not a PCI address (DDDD:BB:SS.F)",
                  -EINVAL },
                { "[{\"interface\":\"net1\",\"device-info\":{\"pci\":{\"pci-address\":\"+000:3b:02.1\"}}}]",
                  "pod: interface 'net1': device-info.pci.pci-address '+000:3b:02.1' is not a PCI address (DDDD:BB:SS.F)",
                  -EINVAL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                json_object_set_new(ann, "k8s.v1.cni.cncf.io/network-status", json_string(cases[i].status));
                e = (KvErr){};
                assert_int_equal(agent_pod_nic_pci(pod, "net1", pci, &e), cases[i].r);
                if (cases[i].msg)
                        assert_true(strncmp(e.msg, cases[i].msg, strlen(cases[i].msg)) == 0);
                else
                        assert_string_equal(pci, "0000:3b:02.1");
        }
}

static void test_launch_errors(void **state) {
        (void) state;
        _cleanup_json_ json_t *pod = test_json(POD);
        static const struct {
                const char *vmi, *msg;
                int r;
        } cases[] = {
                { VMI("{\"name\":\"default\",\"sriov\":{}}", ""),
                  "VMI default/web: 'spec.domain.devices.interfaces[0]' (default): only the bridge and masquerade bindings "
                  "run on the pod network",
                  -EOPNOTSUPP },
                { VMI("{\"name\":\"blue\",\"bridge\":{}}", ""),
                  "VMI default/web: no 'spec.domain.devices.interfaces[]' named 'default' (the pod network)", -EINVAL },
                { VMI("{\"name\":\"default\",\"bridge\":{}}", ""),
                  "VMI default/web: no 'spec.domain.devices.interfaces[]' named 'blue' (spec.networks[0])", -EINVAL },
                { VMI("{\"name\":\"default\",\"bridge\":{}},{\"name\":\"blue\",\"masquerade\":{}}", ""),
                  "VMI default/web: 'spec.domain.devices.interfaces[1]' (blue): only the bridge and sriov bindings run on "
                  "a Multus network on kvnet-node",
                  -EOPNOTSUPP },
                { VMI("{\"name\":\"default\",\"bridge\":{}}", "\"terminationGracePeriodSeconds\":-1,"),
                  "VMI: 'spec.terminationGracePeriodSeconds' must be 0..86400", -EINVAL },
                { "{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"uid\":\"vmi-uid-2\"}}",
                  "pod label 'kubevirt.io/created-by' is 'vmi-uid-1', not the VMI's uid 'vmi-uid-2'", -ESRCH },
                { "{\"metadata\":{\"name\":\"web\",\"namespace\":\"default\",\"uid\":\"vmi-uid-1\"},\"spec\":{}}",
                  "VMI default/web: 'spec.networks' has no pod network and no Multus default network (kvnet-node runs VMs on "
                  "the pod's cluster network)", -EINVAL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_json_ json_t *vmi = test_json(cases[i].vmi);
                AgentLaunch l;
                KvErr e = {};
                assert_int_equal(agent_launch_from(pod, vmi, &l, &e), cases[i].r);
                assert_string_equal(e.msg, cases[i].msg);
        }
}

static void test_pod_status(void **state) {
        (void) state;
        AgentPodStatus s = { .phase = "Pending" };
        _cleanup_json_ json_t *pending = agent_pod_status(NULL, &s);
        assert_non_null(pending);
        assert_string_equal(json_string_value(json_object_get(pending, "phase")), "Pending");
        assert_null(json_object_get(pending, "podIP"));
        assert_string_equal(json_string_value(json_object_get(kstatus_condition(pending, "Ready"), "status")), "False");
        assert_string_equal(json_string_value(json_object_get(kstatus_condition(pending, "PodScheduled"), "status")), "True");
        json_t *cs = json_array_get(json_object_get(pending, "containerStatuses"), 0);
        assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(cs, "state"), "waiting"), "reason")),
                            "ContainerCreating");

        /* Running: IPs (IPv4 first), host IP, ready container; Ready's transition time moves, PodScheduled's stays */
        json_object_set_new(kstatus_condition(pending, "PodScheduled"), "lastTransitionTime", json_string("2020-01-01T00:00:00Z"));
        s = (AgentPodStatus){ .phase = "Running", .ip4 = "10.88.0.5", .ip6 = "fd00::5", .host_ip = "192.168.77.1",
                              .start_time = "2026-01-02T03:04:05Z" };
        _cleanup_json_ json_t *run = agent_pod_status(pending, &s);
        assert_string_equal(json_string_value(json_object_get(run, "phase")), "Running");
        assert_string_equal(json_string_value(json_object_get(run, "podIP")), "10.88.0.5");
        _cleanup_free_ char *ips = json_dump_compact(json_object_get(run, "podIPs"));
        assert_string_equal(ips, "[{\"ip\":\"10.88.0.5\"},{\"ip\":\"fd00::5\"}]");
        assert_string_equal(json_string_value(json_object_get(run, "hostIP")), "192.168.77.1");
        assert_string_equal(json_string_value(json_object_get(run, "startTime")), "2026-01-02T03:04:05Z");
        assert_string_equal(json_string_value(json_object_get(kstatus_condition(run, "Ready"), "status")), "True");
        assert_string_equal(json_string_value(json_object_get(kstatus_condition(run, "PodScheduled"), "lastTransitionTime")),
                            "2020-01-01T00:00:00Z");
        cs = json_array_get(json_object_get(run, "containerStatuses"), 0);
        assert_true(json_is_true(json_object_get(cs, "ready")));
        assert_string_equal(json_string_value(json_object_get(cs, "name")), "compute");
        assert_non_null(json_object_get(json_object_get(cs, "state"), "running"));
        /* nothing changed: the same object (the agent then writes nothing) */
        _cleanup_json_ json_t *again = agent_pod_status(run, &s);
        assert_true(json_equal(again, run));

        /* Failed: reason Error with the message, the container terminated with exit code 1, not ready */
        s = (AgentPodStatus){ .phase = "Failed", .message = "launcher: kernel not found", .ip4 = "" };
        _cleanup_json_ json_t *failed = agent_pod_status(run, &s);
        assert_string_equal(json_string_value(json_object_get(failed, "reason")), "Error");
        assert_string_equal(json_string_value(json_object_get(failed, "message")), "launcher: kernel not found");
        assert_null(json_object_get(failed, "podIP"));
        assert_null(json_object_get(failed, "podIPs"));
        assert_string_equal(json_string_value(json_object_get(kstatus_condition(failed, "Ready"), "reason")), "PodCompleted");
        cs = json_array_get(json_object_get(failed, "containerStatuses"), 0);
        json_t *term = json_object_get(json_object_get(cs, "state"), "terminated");
        assert_int_equal(json_integer_value(json_object_get(term, "exitCode")), 1);
        assert_string_equal(json_string_value(json_object_get(term, "message")), "launcher: kernel not found");

        /* Succeeded: no failure reason left over */
        s = (AgentPodStatus){ .phase = "Succeeded" };
        _cleanup_json_ json_t *ok = agent_pod_status(failed, &s);
        assert_null(json_object_get(ok, "reason"));
        assert_null(json_object_get(ok, "message"));
        term = json_object_get(json_object_get(json_array_get(json_object_get(ok, "containerStatuses"), 0), "state"), "terminated");
        assert_int_equal(json_integer_value(json_object_get(term, "exitCode")), 0);
        assert_string_equal(json_string_value(json_object_get(term, "reason")), "Completed");
}

/* ---- migrations (migmap.c) */

#define MS_VMI(node, ms)                                                                                               \
        "{\"metadata\":{\"name\":\"web\",\"uid\":\"vmi-uid-1\"},\"spec\":{\"domain\":{\"devices\":{\"interfaces\":["   \
        "{\"name\":\"default\",\"bridge\":{}}]}}},\"status\":{\"nodeName\":\"" node "\","                              \
        "\"activePods\":{\"src-uid\":\"node1\"},\"interfaces\":[{\"name\":\"default\",\"mac\":\"02:00:00:00:00:01\"}],"  \
        "\"migrationState\":" ms "}}"
#define MS(extra) "{\"migrationUid\":\"job-1\",\"sourcePod\":\"src\",\"targetPod\":\"dst\"" extra "}"

static void test_mig_roles(void **state) {
        (void) state;
        _cleanup_json_ json_t *running = test_json(MS_VMI("node1", MS(""))),
                              *done = test_json(MS_VMI("node2", MS(",\"completed\":true"))),
                              *plain = test_json(MS_VMI("node1", "null"));
        assert_int_equal(agent_mig_role(running, "src", NULL), AGENT_MIG_SOURCE);
        assert_int_equal(agent_mig_role(running, "dst", "job-1"), AGENT_MIG_TARGET);
        assert_int_equal(agent_mig_role(running, "dst", "job-other"), AGENT_MIG_NONE); /* another migration's pod */
        assert_int_equal(agent_mig_role(plain, "src", NULL), AGENT_MIG_NONE);
        /* who writes the VMI's status: the source until completion, the target once the VMI moved to it */
        assert_true(agent_pod_writes_vmi(running, "node1", "src", "src-uid", NULL));
        assert_false(agent_pod_writes_vmi(running, "node2", "dst", "dst-uid", "job-1"));
        assert_false(agent_pod_writes_vmi(done, "node1", "src", "src-uid", NULL));
        assert_true(agent_pod_writes_vmi(done, "node2", "dst", "dst-uid", "job-1"));
        /* a target pod of a migration no longer in the VMI's state speaks only as an active pod */
        assert_false(agent_pod_writes_vmi(plain, "node1", "dst", "dst-uid", "job-9"));
        assert_true(agent_pod_writes_vmi(plain, "node1", "src", "src-uid", "job-9"));
        assert_false(agent_mig_ended(agent_vmi_migration_state(running)));
        assert_true(agent_mig_ended(agent_vmi_migration_state(done)));
        /* a target runs the VMI with the MAC the source's guest has */
        assert_int_equal(agent_vmi_pin_macs(running), 0);
        json_t *ifc = json_array_get(json_object_get(json_object_get(json_object_get(json_object_get(running, "spec"),
                                                                                            "domain"),
                                                                            "devices"),
                                                     "interfaces"),
                                     0);
        assert_string_equal(json_string_value(json_object_get(ifc, "macAddress")), "02:00:00:00:00:01");
}

static void test_mig_source_fields(void **state) {
        (void) state;
        AgentMigRecord rec = { .role = AGENT_MIG_SOURCE, .port = 30000, .started = "2026-01-01T00:00:00Z",
                               .launcher_started = "2026-01-01T00:00:00.123Z" };
        snprintf(rec.uid, sizeof rec.uid, "job-1");
        _cleanup_json_ json_t *ms = test_json(MS("")), *f = NULL;
        _cleanup_json_ json_t *running = test_json("{\"phase\":\"Running\",\"migration\":{\"state\":\"running\","
                                                   "\"startedAt\":\"2026-01-01T00:00:00.123Z\"}}");
        assert_int_equal(agent_mig_source_fields(ms, &rec, running, &f), 0);
        assert_string_equal(json_string_value(json_object_get(f, "startTimestamp")), "2026-01-01T00:00:00Z");
        assert_null(json_object_get(f, "completed"));
        json_decref(f);
        f = NULL;
        /* an earlier migration's end in the launcher's status is not this one's */
        _cleanup_json_ json_t *old = test_json("{\"migration\":{\"state\":\"failed\",\"startedAt\":\"2025-01-01T00:00:00.000Z\"}}");
        assert_int_equal(agent_mig_source_fields(ms, &rec, old, &f), 0);
        assert_null(json_object_get(f, "failed"));
        json_decref(f);
        f = NULL;
        _cleanup_json_ json_t *done = test_json("{\"phase\":\"Migrated\",\"migration\":{\"state\":\"completed\","
                                                "\"startedAt\":\"2026-01-01T00:00:00.123Z\",\"downtimeMs\":40,"
                                                "\"totalMs\":1500,\"pausedAtUs\":1000000}}");
        assert_int_equal(agent_mig_source_fields(ms, &rec, done, &f), 0);
        assert_true(json_is_true(json_object_get(f, "completed")));
        assert_int_equal(json_integer_value(json_object_get(f, "kvnetDowntimeMs")), 40);
        assert_int_equal(json_integer_value(json_object_get(f, "kvnetPausedAtUs")), 1000000);
        assert_non_null(json_object_get(f, "endTimestamp"));
        json_decref(f);
        f = NULL;
        /* cancelled on the controller's request */
        _cleanup_json_ json_t *ms_abort = test_json(MS(",\"abortRequested\":true"));
        _cleanup_json_ json_t *cancelled = test_json("{\"migration\":{\"state\":\"cancelled\",\"startedAt\":"
                                                     "\"2026-01-01T00:00:00.123Z\",\"error\":\"operation aborted\"}}");
        assert_int_equal(agent_mig_source_fields(ms_abort, &rec, cancelled, &f), 0);
        assert_true(json_is_true(json_object_get(f, "failed")));
        assert_string_equal(json_string_value(json_object_get(f, "abortStatus")), "Succeeded");
        assert_string_equal(json_string_value(json_object_get(f, "failureReason")), "operation aborted");
        json_decref(f);
        f = NULL;
        /* the node could not start it: failed with its reason */
        snprintf(rec.failure, sizeof rec.failure, "migration proxy did not come up");
        assert_int_equal(agent_mig_source_fields(ms, &rec, running, &f), 0);
        assert_string_equal(json_string_value(json_object_get(f, "failureReason")), "migration proxy did not come up");
        json_decref(f);
        f = NULL;
        /* another migration's record says nothing */
        snprintf(rec.uid, sizeof rec.uid, "job-0");
        assert_int_equal(agent_mig_source_fields(ms, &rec, done, &f), 0);
        assert_null(f);
}

static void test_mig_target_fields(void **state) {
        (void) state;
        AgentMigRecord rec = { .role = AGENT_MIG_TARGET, .port = 31000, .started = "2026-01-01T00:00:01Z" };
        snprintf(rec.uid, sizeof rec.uid, "job-1");
        AgentMigTarget t = { .address = "198.51.100.2", .state_dir = "/s/pods/u/state", .serial_log = "/s/pods/u/serial.log" };
        _cleanup_json_ json_t *ms = test_json(MS(",\"kvnetPausedAtUs\":1000000")), *f = NULL;
        _cleanup_json_ json_t *starting = test_json("{\"phase\":\"Scheduled\"}");
        assert_int_equal(agent_mig_target_fields(ms, &rec, starting, &t, &f), 0);
        assert_null(f); /* not waiting yet */
        _cleanup_json_ json_t *waiting = test_json("{\"phase\":\"WaitingForMigration\",\"migration\":{\"state\":\"pending\"}}");
        assert_int_equal(agent_mig_target_fields(ms, &rec, waiting, &t, &f), 0);
        assert_true(json_is_true(json_object_get(f, "targetNodeDomainDetected")));
        assert_string_equal(json_string_value(json_object_get(f, "targetNodeAddress")), "198.51.100.2");
        assert_non_null(json_object_get(json_object_get(f, "targetDirectMigrationNodePorts"), "31000"));
        assert_non_null(json_object_get(json_object_get(f, "targetDirectMigrationNodePorts"), "31001"));
        assert_string_equal(json_string_value(json_object_get(f, "kvnetTargetStateDir")), "/s/pods/u/state");
        json_decref(f);
        f = NULL;
        _cleanup_json_ json_t *resumed = test_json("{\"phase\":\"Running\",\"migration\":{\"state\":\"completed\","
                                                   "\"resumedAtUs\":1050500,\"earlyPackets\":4}}");
        assert_int_equal(agent_mig_target_fields(ms, &rec, resumed, &t, &f), 0);
        /* netd's early switchover figure, from the launcher's status */
        assert_int_equal(json_integer_value(json_object_get(f, "kvnetEarlyPackets")), 4);
        assert_true(json_real_value(json_object_get(f, "kvnetNetworkOutageMs")) > 50.4 &&
                    json_real_value(json_object_get(f, "kvnetNetworkOutageMs")) < 50.6);
        /* merged into a status that has the migration's state; nothing changes the second time */
        _cleanup_json_ json_t *st = json_pack("{s:O}", "migrationState", ms);
        bool changed = false;
        assert_int_equal(agent_mig_merge(st, f, &changed), 0);
        assert_true(changed);
        changed = false;
        assert_int_equal(agent_mig_merge(st, f, &changed), 0);
        assert_false(changed);
        json_decref(f);
        f = NULL;
        /* record round trip */
        char dir[] = "/tmp/kvnet-test-agent-XXXXXX";
        assert_non_null(mkdtemp(dir));
        AgentMigRecord back;
        assert_int_equal(agent_mig_record_load(dir, &back), -ENOENT);
        rec.cancel_sent = true;
        assert_int_equal(agent_mig_record_save(dir, &rec), 0);
        assert_int_equal(agent_mig_record_load(dir, &back), 0);
        assert_string_equal(back.uid, "job-1");
        assert_int_equal(back.role, AGENT_MIG_TARGET);
        assert_int_equal(back.port, 31000);
        assert_true(back.cancel_sent);
        char path[128];
        snprintf(path, sizeof path, "%s/migration.json", dir);
        FILE *fp = fopen(path, "w");
        assert_non_null(fp);
        fputs("{\"uid\":\"x\",\"role\":\"sideways\",\"port\":1}", fp);
        fclose(fp);
        assert_int_equal(agent_mig_record_load(dir, &back), -EBADMSG);
        unlink(path);
        rmdir(dir);
}

/* "reason|type|message" of each Event of list, one per line */
static char *events_text(json_t *list) {
        char *buf = NULL;
        size_t n = 0, i;
        FILE *f = open_memstream(&buf, &n);
        json_t *it;
        json_array_foreach(list, i, it) fprintf(f, "%s|%s|%s\n", json_string_value(json_object_get(it, "reason")),
                                                json_string_value(json_object_get(it, "type")),
                                                json_string_value(json_object_get(it, "message")));
        fclose(f);
        return buf;
}

static void test_vmi_events(void **state) {
        (void) state;
        _cleanup_json_ json_t *sched = json_pack("{s:s}", "phase", "Scheduled");
        _cleanup_json_ json_t *run = json_pack("{s:s,s:[{s:s,s:s,s:s}]}", "phase", "Running", "interfaces", "name",
                                               "default", "mac", "02:00:00:00:00:01", "interfaceName", "eth0");
        _cleanup_json_ json_t *leased = json_pack(
                "{s:s,s:[{s:s,s:s,s:s,s:[s,s]},{s:s,s:s,s:s}]}", "phase", "Running", "interfaces", "name", "default",
                "mac", "02:00:00:00:00:01", "ipAddress", "10.88.0.2", "ipAddresses", "10.88.0.2", "fd00::2", "name",
                "sec", "mac", "02:00:00:00:00:02", "ipAddress", "10.77.0.5");
        _cleanup_json_ json_t *done = json_pack("{s:s}", "phase", "Succeeded");
        _cleanup_json_ json_t *failed = json_pack("{s:s,s:s}", "phase", "Failed", "reason", "the guest crashed");
        _cleanup_json_ json_t *crashed = json_pack("{s:s,s:[{s:s,s:s,s:s}]}", "phase", "Failed", "conditions", "type",
                                                   "Ready", "status", "False", "message", "kernel not found");
        _cleanup_json_ json_t *e7 = agent_vmi_events(sched, crashed, "n");
        _cleanup_free_ char *t7 = events_text(e7);
        assert_string_equal(t7, "Failed|Warning|The VirtualMachineInstance failed: kernel not found\n");
        _cleanup_json_ json_t *e1 = agent_vmi_events(sched, run, "node1"), *e2 = agent_vmi_events(run, leased, "node1"),
                              *e3 = agent_vmi_events(leased, leased, "node1"),
                              *e4 = agent_vmi_events(leased, done, "n"), *e5 = agent_vmi_events(run, failed, "n"),
                              *e6 = agent_vmi_events(NULL, sched, "n");
        _cleanup_free_ char *t1 = events_text(e1), *t2 = events_text(e2), *t3 = events_text(e3), *t4 = events_text(e4),
                            *t5 = events_text(e5), *t6 = events_text(e6);
        /* Running without an address yet: started, the network once it has addresses */
        assert_string_equal(t1, "Started|Normal|VirtualMachineInstance started on node node1.\n");
        assert_string_equal(t2, "NetworkAttached|Normal|Network attached on node node1: default 10.88.0.2 fd00::2 "
                                "(MAC 02:00:00:00:00:01), sec 10.77.0.5 (MAC 02:00:00:00:00:02)\n");
        assert_string_equal(t3, ""); /* nothing changed: nothing to tell */
        assert_string_equal(t4, "Stopped|Normal|The VirtualMachineInstance was shut down.\n");
        assert_string_equal(t5, "Failed|Warning|The VirtualMachineInstance failed: the guest crashed\n");
        assert_string_equal(t6, "");
}

static void test_pod_events(void **state) {
        (void) state;
        _cleanup_json_ json_t *e1 = agent_pod_events("Pending", "Running", NULL),
                              *e2 = agent_pod_events("Running", "Running", NULL),
                              *e3 = agent_pod_events("Pending", "Failed", "netd: no such network"),
                              *e4 = agent_pod_events("Running", "Succeeded", NULL);
        _cleanup_free_ char *t1 = events_text(e1), *t2 = events_text(e2), *t3 = events_text(e3), *t4 = events_text(e4);
        assert_string_equal(t1, "Started|Normal|Started container compute\n");
        assert_string_equal(t2, "");
        assert_string_equal(t3, "Failed|Warning|Error: netd: no such network\n");
        assert_string_equal(t4, "");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pod_fields),
                cmocka_unit_test(test_launch),
                cmocka_unit_test(test_launch_errors),
                cmocka_unit_test(test_launch_sriov),
                cmocka_unit_test(test_pod_status),
                cmocka_unit_test(test_mig_roles),
                cmocka_unit_test(test_mig_source_fields),
                cmocka_unit_test(test_mig_target_fields),
                cmocka_unit_test(test_vmi_events),
                cmocka_unit_test(test_pod_events),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
