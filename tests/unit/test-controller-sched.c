/* SPDX-License-Identifier: Apache-2.0 */
/* The scheduler side of the embedded controller: Kubernetes quantities (controller/quantity.c), a VMI's
 * requests (controller/vmispec.c), simulated nodes (controller/node.c) and the scheduler
 * (controller/scheduler.c) on a real store in a temporary directory — fit and no fit with Kubernetes'
 * message, nodeSelector, the least-loaded choice, launcher pods and their garbage collection, and a restart
 * that adopts the pod it finds instead of making a second one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "tests/unit/ctl-fixture.h"

#include "controller/node.h"
#include "controller/quantity.h"
#include "controller/scheduler.h"
#include "controller/store.h"
#include "controller/vmispec.h"

#define GI (1024ULL * 1024 * 1024)
#define MI (1024ULL * 1024)

/* ---- quantities ---- */

static void test_quantity(void **state) {
        (void) state;
        static const struct {
                const char *s;
                bool milli;
                uint64_t want;
        } ok[] = {
                { "128Mi", false, 128 * MI },  { "1Gi", false, GI },          { "1.5Gi", false, 3 * GI / 2 },
                { "0.5Ki", false, 512 },       { "1k", false, 1000 },         { "2M", false, 2000000 },
                { "1G", false, 1000000000 },   { "1e3", false, 1000 },        { "1E3", false, 1000 },
                { "1E", false, 1000000000000000000ULL }, { "+5", false, 5 },  { "0", false, 0 },
                { "1.1", false, 2 },           { "100m", false, 1 },          { ".5", false, 1 },
                { "2", true, 2000 },           { "500m", true, 500 },         { "0.25", true, 250 },
                { "1.0005", true, 1001 },      { "1e-3", true, 1 },           { "2.", true, 2000 },
                { "1Ti", false, 1024 * GI },   { "7Ei", false, 7ULL << 60 },  { "00012", false, 12 },
        };
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                uint64_t v = 0;
                KvErr e = {};
                int r = ctl_quantity_parse("q", ok[i].s, ok[i].milli, &v, &e);
                if (r != 0 || v != ok[i].want)
                        fail_msg("'%s' (milli %d): r=%d v=%llu, want %llu (%s)", ok[i].s, ok[i].milli, r,
                                 (unsigned long long) v, (unsigned long long) ok[i].want, e.msg);
        }
        static const struct {
                const char *s;
                int r;
                const char *why;
        } bad[] = {
                { "", -EINVAL, "it is empty" },
                { "lots", -EINVAL, "no digits" },
                { "-1Gi", -EINVAL, "must not be negative" },
                { "1Kb", -EINVAL, "unknown suffix" },
                { "1.2.3", -EINVAL, "unknown suffix" },
                { "Mi", -EINVAL, "no digits" },
                { "1 Gi", -EINVAL, "unknown suffix" },
                { "1e", -EINVAL, "unknown suffix" },
                { "1e1000000", -EINVAL, "exponent" },
                { "8Ei", -ERANGE, "too large" },
                { "1e30", -ERANGE, "too large" },
                { "12345678901234567890", -EINVAL, "significant digits" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                uint64_t v = 42;
                KvErr e = {};
                int r = ctl_quantity_parse("spec.domain.resources.requests.memory", bad[i].s, false, &v, &e);
                if (r != bad[i].r || v != 42 || !strstr(e.msg, bad[i].why) ||
                    !strstr(e.msg, "'spec.domain.resources.requests.memory'"))
                        fail_msg("'%s': r=%d v=%llu msg '%s'", bad[i].s, r, (unsigned long long) v, e.msg);
        }
        KvErr e = {};
        uint64_t v;
        assert_int_equal(ctl_quantity_parse("--node-memory", "12GB", false, &v, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "got '12GB'"));

        char buf[32];
        assert_string_equal(ctl_quantity_format_bytes(128 * MI, buf), "128Mi");
        assert_string_equal(ctl_quantity_format_bytes(3 * GI / 2, buf), "1536Mi");
        assert_string_equal(ctl_quantity_format_bytes(1000, buf), "1000");
        assert_string_equal(ctl_quantity_format_milli(2000, buf), "2");
        assert_string_equal(ctl_quantity_format_milli(1500, buf), "1500m");
}

static json_t *parse(const char *text) {
        return ctl_fx_parse(text);
}

static void test_vmi_spec(void **state) {
        (void) state;
        CtlVmiSpec s;
        KvErr e = {};
        assert_int_equal(ctl_vmi_spec_parse(NULL, "spec", &s, &e), 0);
        assert_int_equal(s.cpu_milli, 1000);
        assert_int_equal(s.memory, 0);

        json_t *o = parse("{\"domain\":{\"cpu\":{\"cores\":2,\"sockets\":2},\"memory\":{\"guest\":\"1Gi\"}},"
                          "\"nodeSelector\":{\"disk\":\"ssd\"},\"networks\":[{\"name\":\"d\",\"pod\":{}},"
                          "{\"name\":\"a\",\"multus\":{\"networkName\":\"vlan100\"}},"
                          "{\"name\":\"b\",\"multus\":{\"networkName\":\"infra/storage\",\"default\":true}}]}");
        assert_int_equal(ctl_vmi_spec_parse(o, "spec", &s, &e), 0);
        assert_int_equal(s.cpu_milli, 4000);
        assert_int_equal(s.memory, GI);
        assert_int_equal(s.n_node_selector, 1);
        assert_string_equal(s.node_selector[0].key, "disk");
        assert_int_equal(s.n_multus, 2);
        assert_string_equal(s.multus[1].network_name, "infra/storage");
        assert_true(s.multus[1].is_default);
        json_decref(o);

        /* requests win over the guest's memory and the CPU topology; a number is a quantity too */
        o = parse("{\"domain\":{\"cpu\":{\"cores\":4},\"memory\":{\"guest\":\"1Gi\"},"
                  "\"resources\":{\"requests\":{\"memory\":\"256Mi\",\"cpu\":0.5}}}}");
        assert_int_equal(ctl_vmi_spec_parse(o, "spec", &s, &e), 0);
        assert_int_equal(s.cpu_milli, 500);
        assert_int_equal(s.memory, 256 * MI);
        json_decref(o);

        o = parse("{\"domain\":{\"resources\":{\"requests\":{\"memory\":\"lots\"}}}}");
        assert_int_equal(ctl_vmi_spec_parse(o, "spec.template.spec", &s, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "'spec.template.spec.domain.resources.requests.memory'"));
        assert_non_null(strstr(e.msg, "got 'lots'"));
        json_decref(o);

        kverr_clear(&e);
        o = parse("{\"domain\":{\"cpu\":{\"cores\":0}}}");
        assert_int_equal(ctl_vmi_spec_parse(o, "spec", &s, &e), -ERANGE);
        assert_non_null(strstr(e.msg, "spec.domain.cpu: 'cores' must be 1..1024, got 0"));
        json_decref(o);

        kverr_clear(&e);
        o = parse("{\"nodeSelector\":{\"disk\":1}}");
        assert_int_equal(ctl_vmi_spec_parse(o, "spec", &s, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "'spec.nodeSelector.disk' must be a string"));
        json_decref(o);
}

/* ---- the scheduler on a store ---- */

typedef struct Fx {
        char dir[64]; /* CtlFxHead */
        CtlStore *s;
        const CtlResource *vmi, *pod, *node;
} Fx;

static int setup(void **state) {
        Fx *fx = ctl_fx_new(sizeof *fx);
        fx->vmi = ctl_resource_find("kubevirt.io", "v1", "virtualmachineinstances");
        fx->pod = ctl_resource_find("", "v1", "pods");
        fx->node = ctl_resource_find("", "v1", "nodes");
        *state = fx;
        return 0;
}

static void nodes(Fx *fx, unsigned n, const char *cpu, const char *mem) {
        uint64_t c, m;
        KvErr e = {};
        assert_int_equal(ctl_quantity_parse("cpu", cpu, true, &c, &e), 0);
        assert_int_equal(ctl_quantity_parse("memory", mem, false, &m, &e), 0);
        assert_true(ctl_nodes_simulate(fx->s, n, c, m, &e) >= 0);
}

/* A VMI with spec (JSON text of its spec). */
static void create_vmi(Fx *fx, const char *name, const char *spec) {
        char text[1024];
        snprintf(text, sizeof text, "{\"metadata\":{\"name\":\"%s\"},\"spec\":%s}", name, spec);
        json_t *in = parse(text), *out = NULL;
        KvErr e = {};
        if (ctl_store_create(fx->s, fx->vmi, "default", in, &out, &e) < 0)
                fail_msg("create VMI %s: %s", name, e.msg);
        json_decref(in);
        json_decref(out);
}

static json_t *get(Fx *fx, const CtlResource *r, const char *name) {
        json_t *o = NULL;
        return ctl_store_get(fx->s, r, r->namespaced ? "default" : NULL, name, &o) == 0 ? o : NULL;
}

static const char *status_str(json_t *o, const char *k) {
        return json_string_value(json_object_get(json_object_get(o, "status"), k));
}

/* The node VMI name is on ("" when none), checked against its status, label and pod. */
static const char *node_of(Fx *fx, const char *name, char buf[64]) {
        json_t *vmi = get(fx, fx->vmi, name);
        assert_non_null(vmi);
        const char *node = status_str(vmi, "nodeName");
        snprintf(buf, 64, "%s", node ? node : "");
        if (node) {
                assert_string_equal(status_str(vmi, "phase"), "Scheduled");
                json_t *labels = json_object_get(json_object_get(vmi, "metadata"), "labels");
                assert_string_equal(json_string_value(json_object_get(labels, "kubevirt.io/nodeName")), node);
        } else
                assert_string_equal(status_str(vmi, "phase"), "Pending");
        json_decref(vmi);
        return buf;
}

static size_t count(Fx *fx, const CtlResource *r) {
        return ctl_fx_count(fx->s, r);
}

/* The PodScheduled condition's message of an unscheduled VMI. */
static char *unschedulable(Fx *fx, const char *name) {
        json_t *vmi = get(fx, fx->vmi, name);
        json_t *c = json_array_get(json_object_get(json_object_get(vmi, "status"), "conditions"), 0);
        assert_string_equal(json_string_value(json_object_get(c, "type")), "PodScheduled");
        assert_string_equal(json_string_value(json_object_get(c, "status")), "False");
        assert_string_equal(json_string_value(json_object_get(c, "reason")), "Unschedulable");
        char *msg = strdup(json_string_value(json_object_get(c, "message")));
        json_decref(vmi);
        return msg;
}

#define VMI_MEM(m) "{\"domain\":{\"devices\":{},\"resources\":{\"requests\":{\"memory\":\"" m "\"}}}}"

static void test_simulated_nodes(void **state) {
        Fx *fx = *state;
        nodes(fx, 3, "2", "4Gi");
        assert_int_equal(count(fx, fx->node), 3);
        json_t *n = get(fx, fx->node, "node2");
        assert_non_null(n);
        CtlNode cn;
        KvErr e = {};
        assert_int_equal(ctl_node_parse(n, &cn, &e), 0);
        assert_int_equal(cn.cpu_milli, 2000);
        assert_int_equal(cn.memory, 4 * GI);
        assert_true(cn.ready);
        assert_string_equal(ctl_node_label(&cn, "kubernetes.io/hostname"), "node2");
        assert_string_equal(ctl_node_label(&cn, "kubevirt.io/schedulable"), "true");
        json_decref(n);
        /* the same again changes nothing (restart); fewer removes the rest; other capacity updates them */
        uint64_t rv = ctl_store_rv(fx->s);
        assert_int_equal(ctl_nodes_simulate(fx->s, 3, 2000, 4 * GI, &e), 0);
        assert_int_equal(ctl_store_rv(fx->s), rv);
        assert_int_equal(ctl_nodes_simulate(fx->s, 2, 4000, 4 * GI, &e), 3);
        assert_int_equal(count(fx, fx->node), 2);
        n = get(fx, fx->node, "node1");
        assert_string_equal(json_string_value(json_object_get(
                                    json_object_get(json_object_get(n, "status"), "allocatable"), "cpu")),
                            "4");
        json_decref(n);
        /* a node made otherwise is left alone */
        json_t *in = parse("{\"metadata\":{\"name\":\"node9\"}}"), *out = NULL;
        assert_int_equal(ctl_store_create(fx->s, fx->node, NULL, in, &out, &e), 0);
        json_decref(in);
        json_decref(out);
        assert_int_equal(ctl_nodes_simulate(fx->s, 1, 4000, 4 * GI, &e), 1);
        assert_int_equal(count(fx, fx->node), 2);
}

static void test_place_and_collect(void **state) {
        Fx *fx = *state;
        char b[64];
        nodes(fx, 2, "2", "4Gi");
        create_vmi(fx, "web",
                   "{\"domain\":{\"cpu\":{\"cores\":2},\"resources\":{\"requests\":{\"memory\":\"1Gi\"}},"
                   "\"devices\":{\"interfaces\":[{\"name\":\"default\",\"masquerade\":{}},{\"name\":\"sec\",\"bridge\":{}},"
                   "{\"name\":\"third\",\"sriov\":{},\"macAddress\":\"02:00:00:00:00:33\"}]}},"
                   "\"networks\":[{\"name\":\"default\",\"pod\":{}},{\"name\":\"sec\",\"multus\":{\"networkName\":\"vlan100\"}},"
                   "{\"name\":\"third\",\"multus\":{\"networkName\":\"infra/storage\"}}]}");
        assert_true(ctl_schedule(fx->s) > 0);
        assert_int_equal(ctl_schedule(fx->s), 0); /* settled */
        assert_string_equal(node_of(fx, "web", b), "node1"); /* a tie: the first by name */

        json_t *vmi = get(fx, fx->vmi, "web");
        json_t *pods = ctl_store_list(fx->s, fx->pod, "default", NULL);
        assert_int_equal(json_array_size(json_object_get(pods, "items")), 1);
        json_t *pod = json_array_get(json_object_get(pods, "items"), 0);
        json_t *md = json_object_get(pod, "metadata"), *labels = json_object_get(md, "labels");
        const char *pname = json_string_value(json_object_get(md, "name"));
        assert_true(strncmp(pname, "virt-launcher-web-", 18) == 0 && strlen(pname) == 23);
        assert_string_equal(json_string_value(json_object_get(labels, "kubevirt.io")), "virt-launcher");
        assert_string_equal(json_string_value(json_object_get(labels, "kubevirt.io/created-by")),
                            json_string_value(json_object_get(json_object_get(vmi, "metadata"), "uid")));
        assert_string_equal(json_string_value(json_object_get(labels, "vm.kubevirt.io/name")), "web");
        json_t *ref = json_array_get(json_object_get(md, "ownerReferences"), 0);
        assert_string_equal(json_string_value(json_object_get(ref, "kind")), "VirtualMachineInstance");
        assert_true(json_is_true(json_object_get(ref, "controller")));
        assert_string_equal(json_string_value(json_object_get(json_object_get(md, "annotations"),
                                                              "k8s.v1.cni.cncf.io/networks")),
                            /* the guest MAC: derived as the launcher derives it (kv_vm_nic_mac), or the interface's */
                            "[{\"name\":\"vlan100\",\"namespace\":\"default\",\"interface\":\"net1\",\"mac\":\"02:6f:95:25:5d:c4\",\"cni-args\":"
                            "{\"kvnet\":{\"vm\":{\"interface\":\"sec\",\"binding\":\"bridge\"}}}},"
                            "{\"name\":\"storage\",\"namespace\":\"infra\",\"interface\":\"net2\",\"mac\":\"02:00:00:00:00:33\",\"cni-args\":"
                            "{\"kvnet\":{\"vm\":{\"interface\":\"third\",\"binding\":\"sriov\"}}}}]");
        json_t *spec = json_object_get(pod, "spec");
        assert_string_equal(json_string_value(json_object_get(spec, "nodeName")), "node1");
        json_t *c = json_array_get(json_object_get(spec, "containers"), 0);
        assert_string_equal(json_string_value(json_object_get(c, "name")), "compute");
        json_t *req = json_object_get(json_object_get(c, "resources"), "requests");
        assert_string_equal(json_string_value(json_object_get(req, "cpu")), "2");
        assert_string_equal(json_string_value(json_object_get(req, "memory")), "1Gi");
        assert_string_equal(status_str(pod, "phase"), "Pending");
        /* the VMI's status names the pod and the node */
        json_t *active = json_object_get(json_object_get(vmi, "status"), "activePods");
        assert_string_equal(json_string_value(json_object_get(
                                    active, json_string_value(json_object_get(md, "uid")))),
                            "node1");
        json_decref(pods);
        json_decref(vmi);

        /* the VMI goes: its pod goes with it */
        json_t *out = NULL;
        KvErr e = {};
        assert_int_equal(ctl_store_delete(fx->s, fx->vmi, "default", "web", &out, &e), 0);
        json_decref(out);
        assert_int_equal(ctl_schedule(fx->s), 1);
        assert_int_equal(count(fx, fx->pod), 0);
        assert_int_equal(ctl_schedule(fx->s), 0);
}

static void test_least_loaded(void **state) {
        Fx *fx = *state;
        char b[64];
        nodes(fx, 3, "4", "8Gi");
        /* one at a time, each pass seeing the ones before */
        static const char *const names[] = { "a", "b", "c", "d" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                create_vmi(fx, names[i], i == 0 ? VMI_MEM("4Gi") : VMI_MEM("1Gi"));
                (void) ctl_schedule(fx->s);
        }
        assert_string_equal(node_of(fx, "a", b), "node1");
        assert_string_equal(node_of(fx, "b", b), "node2"); /* node1 has 4Gi of 8 used */
        assert_string_equal(node_of(fx, "c", b), "node3");
        assert_string_equal(node_of(fx, "d", b), "node2"); /* node2 and node3 tie; node1 is fuller */
        /* a VMI that no longer holds its node (Succeeded) frees it */
        json_t *st = json_pack("{s:s,s:s}", "phase", "Succeeded", "nodeName", "node1");
        KvErr e = {};
        assert_int_equal(ctl_store_set_status(fx->s, fx->vmi, "default", "a", st, &e), 0);
        json_decref(st);
        create_vmi(fx, "e", VMI_MEM("1Gi"));
        (void) ctl_schedule(fx->s);
        assert_string_equal(node_of(fx, "e", b), "node1");
}

static void test_unschedulable(void **state) {
        Fx *fx = *state;
        char b[64];
        /* no nodes: Pending, saying so */
        create_vmi(fx, "big", VMI_MEM("6Gi"));
        assert_int_equal(ctl_schedule(fx->s), 1);
        assert_int_equal(ctl_schedule(fx->s), 0);
        char *msg = unschedulable(fx, "big");
        assert_non_null(strstr(msg, "0/0 nodes are available"));
        assert_non_null(strstr(msg, "--nodes"));
        free(msg);

        nodes(fx, 3, "2", "4Gi");
        assert_int_equal(ctl_schedule(fx->s), 1);
        msg = unschedulable(fx, "big");
        assert_string_equal(msg, "0/3 nodes are available: 3 Insufficient memory.");
        free(msg);
        assert_string_equal(node_of(fx, "big", b), "");

        /* nodeSelector: only node2 may take it, and it lacks CPU */
        json_t *p = parse("{\"metadata\":{\"labels\":{\"disk\":\"ssd\"}}}"), *out = NULL;
        KvErr e = {};
        assert_int_equal(ctl_store_patch(fx->s, fx->node, NULL, "node2", p, &out, &e), 0);
        json_decref(p);
        json_decref(out);
        create_vmi(fx, "picky",
                   "{\"nodeSelector\":{\"disk\":\"ssd\"},\"domain\":{\"cpu\":{\"cores\":3},\"memory\":{\"guest\":\"64Mi\"}}}");
        (void) ctl_schedule(fx->s);
        msg = unschedulable(fx, "picky");
        assert_string_equal(msg, "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node "
                                 "affinity/selector.");
        free(msg);
        create_vmi(fx, "picky2", "{\"nodeSelector\":{\"disk\":\"ssd\"},\"domain\":{\"memory\":{\"guest\":\"64Mi\"}}}");
        (void) ctl_schedule(fx->s);
        assert_string_equal(node_of(fx, "picky2", b), "node2");

        /* recomputed when the nodes change: bigger nodes take "big" */
        nodes(fx, 3, "2", "8Gi");
        (void) ctl_schedule(fx->s);
        assert_string_not_equal(node_of(fx, "big", b), "");
        json_t *vmi = get(fx, fx->vmi, "big");
        json_t *c = json_array_get(json_object_get(json_object_get(vmi, "status"), "conditions"), 0);
        assert_string_equal(json_string_value(json_object_get(c, "status")), "True");
        json_decref(vmi);
        assert_int_equal(ctl_schedule(fx->s), 0);
}

static void test_restart_adopts(void **state) {
        Fx *fx = *state;
        char b[64];
        nodes(fx, 2, "2", "4Gi");
        create_vmi(fx, "web", VMI_MEM("1Gi"));
        (void) ctl_schedule(fx->s);
        assert_string_equal(node_of(fx, "web", b), "node1");
        /* a crash after the pod was created, before the VMI said so: it is Scheduling, without a node */
        json_t *st = json_pack("{s:s}", "phase", "Scheduling");
        KvErr e = {};
        assert_int_equal(ctl_store_set_status(fx->s, fx->vmi, "default", "web", st, &e), 0);
        json_decref(st);
        /* and node2 is now the emptier one, so a second placement would go there */
        create_vmi(fx, "other", VMI_MEM("1Gi"));
        json_t *o = get(fx, fx->vmi, "other");
        st = json_pack("{s:s,s:s}", "phase", "Running", "nodeName", "node1");
        assert_int_equal(ctl_store_set_status(fx->s, fx->vmi, "default", "other", st, &e), 0);
        json_decref(st);
        json_decref(o);
        ctl_store_free(fx->s);
        ctl_fx_open(fx->dir, &fx->s);
        assert_true(ctl_schedule(fx->s) > 0);
        assert_string_equal(node_of(fx, "web", b), "node1");
        assert_int_equal(count(fx, fx->pod), 1);
        assert_int_equal(ctl_schedule(fx->s), 0);
}

static void test_store_checks_requests(void **state) {
        Fx *fx = *state;
        json_t *in = parse("{\"metadata\":{\"name\":\"x\"},\"spec\":" VMI_MEM("12GB") "}"), *out = NULL;
        KvErr e = {};
        assert_int_equal(ctl_store_create(fx->s, fx->vmi, "default", in, &out, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "create: 'spec.domain.resources.requests.memory' must be a quantity"));
        assert_non_null(strstr(e.msg, "got '12GB'"));
        json_decref(in);
        const CtlResource *vm = ctl_resource_find("kubevirt.io", "v1", "virtualmachines");
        in = parse("{\"metadata\":{\"name\":\"x\"},\"spec\":{\"template\":{\"spec\":{\"domain\":{\"resources\":"
                   "{\"requests\":{\"cpu\":\"two\"}}}}}}}");
        kverr_clear(&e);
        assert_int_equal(ctl_store_create(fx->s, vm, "default", in, &out, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "'spec.template.spec.domain.resources.requests.cpu'"));
        json_decref(in);
        assert_int_equal(count(fx, fx->vmi), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_quantity),
                cmocka_unit_test(test_vmi_spec),
                cmocka_unit_test_setup_teardown(test_simulated_nodes, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_place_and_collect, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_least_loaded, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_unschedulable, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_restart_adopts, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_store_checks_requests, setup, ctl_fx_free),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
