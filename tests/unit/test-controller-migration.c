/* SPDX-License-Identifier: Apache-2.0 */
/* The migration controller (controller/migration.c) on a real store, the test playing the nodes through the
 * VMI's status.migrationState and the target pod's phase: admission refusals (missing VMI, not running,
 * another migration in flight, its own node), every phase from Pending to Succeeded with the VMI moved and
 * its source pod deleted, failures (reported, target pod exited) with the target pod deleted, cancellation
 * before and after the start (and one the abort came too late for), a target pod adopted after a pass that
 * stopped half-way and a stray one collected, no node fitting (and the target pod's resources counted by the
 * scheduler), a non-migratable VMI, a VMI deleted mid-migration, the VM's Migrating status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "tests/unit/ctl-fixture.h"

#include "controller/migration.h"
#include "controller/node.h"
#include "controller/scheduler.h"
#include "controller/store.h"
#include "controller/vm.h"

#define GI (1024ULL * 1024 * 1024)

typedef struct Fx {
        char dir[64]; /* CtlFxHead */
        CtlStore *s;
        const CtlResource *vm, *vmi, *vmim, *pod;
} Fx;

static int setup(void **state) {
        Fx *fx = ctl_fx_new(sizeof *fx);
        fx->vm = ctl_resource_find("kubevirt.io", "v1", "virtualmachines");
        fx->vmi = ctl_resource_find("kubevirt.io", "v1", "virtualmachineinstances");
        fx->vmim = ctl_resource_find("kubevirt.io", "v1", "virtualmachineinstancemigrations");
        fx->pod = ctl_resource_find("", "v1", "pods");
        ctl_store_set_admission(fx->s, ctl_migration_admit);
        KvErr e = {};
        assert_true(ctl_nodes_simulate(fx->s, 3, 2000, 4 * GI, &e) >= 0);
        *state = fx;
        return 0;
}

static json_t *parse(const char *text) {
        return ctl_fx_parse(text);
}

static json_t *get(Fx *fx, const CtlResource *r, const char *name) {
        json_t *o = NULL;
        return name && ctl_store_get(fx->s, r, "default", name, &o) == 0 ? o : NULL;
}

/* status.<a>[.<b>] of o as a string (NULL when not one) */
static const char *st_str(json_t *o, const char *a, const char *b) {
        json_t *v = json_object_get(json_object_get(o, "status"), a);
        return json_string_value(b ? json_object_get(v, b) : v);
}

/* The controllers until nothing changes (as the reconcilers run after every change). */
static void settle(Fx *fx) {
        for (int i = 0; i < 20; i++) {
                int r = ctl_vm_reconcile(fx->s) + ctl_schedule(fx->s), m = ctl_migrations(fx->s);
                assert_true(m >= 0);
                if (r + m == 0)
                        return;
        }
        fail_msg("the controllers do not settle");
}

/* Merges the JSON text patch into the status of r's object name (what a node writes). */
static void node_writes(Fx *fx, const CtlResource *r, const char *name, const char *patch) {
        json_t *o = get(fx, r, name), *p = parse(patch);
        assert_non_null(o);
        json_t *st = ctl_merge_patch(json_object_get(o, "status"), p);
        KvErr e = {};
        assert_int_equal(ctl_store_set_status(fx->s, r, "default", name, st, &e), 0);
        json_decref(st);
        json_decref(p);
        json_decref(o);
}

/* A VMI requesting mem, scheduled and Running on its node. */
static void running_vmi(Fx *fx, const char *name, const char *mem) {
        char text[512];
        snprintf(text, sizeof text,
                 "{\"metadata\":{\"name\":\"%s\"},\"spec\":{\"domain\":{\"devices\":{},\"resources\":{\"requests\":"
                 "{\"memory\":\"%s\"}}}}}",
                 name, mem);
        json_t *in = parse(text), *out = NULL;
        KvErr e = {};
        if (ctl_store_create(fx->s, fx->vmi, "default", in, &out, &e) < 0)
                fail_msg("create VMI %s: %s", name, e.msg);
        json_decref(in);
        json_decref(out);
        settle(fx);
        node_writes(fx, fx->vmi, name, "{\"phase\":\"Running\"}");
}

/* Creates the VMIM name for vmi (extra: more of its spec, JSON members): the store's result. */
static int create_vmim(Fx *fx, const char *name, const char *vmi, const char *extra, KvErr *e) {
        char text[512];
        snprintf(text, sizeof text, "{\"metadata\":{\"name\":\"%s\"},\"spec\":{\"vmiName\":\"%s\"%s%s}}", name, vmi,
                 extra ? "," : "", extra ? extra : "");
        json_t *in = parse(text), *out = NULL;
        int r = ctl_store_create(fx->s, fx->vmim, "default", in, &out, e);
        json_decref(in);
        json_decref(out);
        return r;
}

static void migrate(Fx *fx, const char *name, const char *vmi) {
        KvErr e = {};
        if (create_vmim(fx, name, vmi, NULL, &e) < 0)
                fail_msg("create VMIM %s: %s", name, e.msg);
        settle(fx);
}

static void assert_phase(Fx *fx, const char *vmim, const char *want) {
        json_t *m = get(fx, fx->vmim, vmim);
        assert_non_null(m);
        const char *p = st_str(m, "phase", NULL);
        if (!p || strcmp(p, want) != 0)
                fail_msg("VMIM %s: phase %s, want %s", vmim, p ? p : "(none)", want);
        json_decref(m);
}

static bool exists(Fx *fx, const CtlResource *r, const char *name) {
        json_t *o = get(fx, r, name);
        json_decref(o);
        return o != NULL;
}

static size_t count(Fx *fx, const CtlResource *r) {
        return ctl_fx_count(fx->s, r);
}

/* The VMI's migrationState.<key> as a string, in buf ("" when none). */
static const char *ms(Fx *fx, const char *vmi, const char *key, char buf[128]) {
        json_t *o = get(fx, fx->vmi, vmi);
        const char *v = st_str(o, "migrationState", key);
        snprintf(buf, 128, "%s", v ? v : "");
        json_decref(o);
        return buf;
}

static bool ms_true(Fx *fx, const char *vmi, const char *key) {
        json_t *o = get(fx, fx->vmi, vmi);
        bool t = json_is_true(json_object_get(json_object_get(json_object_get(o, "status"), "migrationState"), key));
        json_decref(o);
        return t;
}

/* The condition type of the VMIM: its "reason|message", in buf. */
static const char *condition(Fx *fx, const char *vmim, const char *type, char buf[1024]) {
        json_t *m = get(fx, fx->vmim, vmim);
        buf[0] = '\0';
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(json_object_get(m, "status"), "conditions"), i, c)
                if (strcmp(json_string_value(json_object_get(c, "type")), type) == 0)
                        snprintf(buf, 1024, "%s|%s|%s", json_string_value(json_object_get(c, "status")),
                                 json_string_value(json_object_get(c, "reason")) ?: "",
                                 json_string_value(json_object_get(c, "message")) ?: "");
        json_decref(m);
        return buf;
}

/* ---- admission ---- */

static void test_admission(void **state) {
        Fx *fx = *state;
        KvErr e = {};
        assert_int_equal(create_vmim(fx, "m", "nope", NULL, &e), -EINVAL);
        assert_string_equal(e.msg, "the VMI \"default/nope\" does not exist");
        assert_string_equal(e.details, "spec.vmiName");

        /* scheduled, not running yet */
        json_t *in = parse("{\"metadata\":{\"name\":\"web\"},\"spec\":{\"domain\":{\"devices\":{},\"memory\":"
                           "{\"guest\":\"64Mi\"}}}}"),
               *out = NULL;
        assert_int_equal(ctl_store_create(fx->s, fx->vmi, "default", in, &out, &e), 0);
        json_decref(in);
        json_decref(out);
        settle(fx);
        kverr_clear(&e);
        assert_int_equal(create_vmim(fx, "m", "web", NULL, &e), -EINVAL);
        assert_string_equal(e.msg, "Cannot migrate VMI \"default/web\": it is not running (phase Scheduled)");

        node_writes(fx, fx->vmi, "web", "{\"phase\":\"Running\"}");
        kverr_clear(&e);
        static const char same_node[] = "\"addedNodeSelector\":{\"kubernetes.io/hostname\":\"node1\"}";
        assert_int_equal(create_vmim(fx, "m", "web", same_node, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "kubernetes.io/hostname=node1 is the node VMI web runs on"));
        assert_string_equal(e.details, "spec.addedNodeSelector");
        kverr_clear(&e);
        assert_int_equal(create_vmim(fx, "m", "web", "\"addedNodeSelector\":{\"zone\":1}", &e), -EINVAL);
        assert_non_null(strstr(e.msg, "'spec.addedNodeSelector.zone' must be a string, got integer"));
        assert_int_equal(count(fx, fx->vmim), 0); /* nothing half-made */

        /* one in flight: a second is refused, naming the first */
        assert_int_equal(create_vmim(fx, "m", "web", NULL, &e), 0);
        json_t *m = get(fx, fx->vmim, "m");
        char want[256];
        snprintf(want, sizeof want,
                 "in-flight migration detected. Active migration job (%s) is currently already in progress for VMI "
                 "web.",
                 json_string_value(json_object_get(json_object_get(m, "metadata"), "uid")));
        json_decref(m);
        kverr_clear(&e);
        assert_int_equal(create_vmim(fx, "m2", "web", NULL, &e), -EINVAL);
        assert_string_equal(e.msg, want);
        settle(fx); /* now the VMI's migrationState says so too */
        assert_phase(fx, "m", "Scheduled");
        kverr_clear(&e);
        assert_int_equal(create_vmim(fx, "m2", "web", NULL, &e), -EINVAL);
        assert_string_equal(e.msg, want);
        assert_int_equal(count(fx, fx->vmim), 1);
        assert_int_equal(count(fx, fx->pod), 2);
}

/* ---- the phases ---- */

/* VMI web Running on node1, migrating: its target pod Running, the JSON members ms_patch written into its
 * migrationState, the VMIM m then in phase want; the target pod's name in dst_pod. */
static void migrating(Fx *fx, const char *ms_patch, const char *want, char dst_pod[128]) {
        char b[128], text[512];
        running_vmi(fx, "web", "1Gi");
        migrate(fx, "m", "web");
        snprintf(dst_pod, 128, "%s", ms(fx, "web", "targetPod", b));
        node_writes(fx, fx->pod, dst_pod, "{\"phase\":\"Running\"}");
        snprintf(text, sizeof text, "{\"migrationState\":{%s}}", ms_patch);
        node_writes(fx, fx->vmi, "web", text);
        settle(fx);
        assert_phase(fx, "m", want);
}

static void delete(Fx *fx, const CtlResource *r, const char *name) {
        json_t *out = NULL;
        KvErr e = {};
        assert_int_equal(ctl_store_delete(fx->s, r, "default", name, &out, &e), 0);
        json_decref(out);
}

static json_t *target_pod(Fx *fx, const char *vmi) {
        char b[128];
        return get(fx, fx->pod, ms(fx, vmi, "targetPod", b));
}

static void test_success(void **state) {
        Fx *fx = *state;
        char b[128], src_pod[128], dst_pod[128];
        running_vmi(fx, "web", "1Gi");
        json_t *vmi = get(fx, fx->vmi, "web");
        const char *vmi_uid = json_string_value(json_object_get(json_object_get(vmi, "metadata"), "uid"));
        assert_string_equal(st_str(vmi, "nodeName", NULL), "node1");
        migrate(fx, "m", "web");
        assert_phase(fx, "m", "Scheduled");
        json_t *m = get(fx, fx->vmim, "m");
        const char *uid = json_string_value(json_object_get(json_object_get(m, "metadata"), "uid"));
        /* the VMI's migrationState */
        assert_string_equal(ms(fx, "web", "migrationUid", b), uid);
        assert_string_equal(ms(fx, "web", "sourceNode", b), "node1");
        assert_string_equal(ms(fx, "web", "targetNode", b), "node2"); /* the emptiest other node */
        assert_string_equal(ms(fx, "web", "mode", b), "PreCopy");
        snprintf(src_pod, sizeof src_pod, "%s", ms(fx, "web", "sourcePod", b));
        snprintf(dst_pod, sizeof dst_pod, "%s", ms(fx, "web", "targetPod", b));
        assert_true(strncmp(src_pod, "virt-launcher-web-", 18) == 0 && strncmp(dst_pod, "virt-launcher-web-", 18) == 0);
        assert_string_not_equal(src_pod, dst_pod);
        json_t *v2 = get(fx, fx->vmi, "web");
        assert_string_equal(st_str(v2, "migrationMethod", NULL), "LiveMigration");
        json_decref(v2);
        /* the target pod: the launcher pod's shape, the migration label, anti-affinity to the VMI's pods */
        json_t *pod = target_pod(fx, "web");
        assert_non_null(pod);
        json_t *labels = json_object_get(json_object_get(pod, "metadata"), "labels");
        assert_string_equal(json_string_value(json_object_get(labels, "kubevirt.io/migrationJobUID")), uid);
        assert_string_equal(json_string_value(json_object_get(labels, "kubevirt.io/created-by")), vmi_uid);
        assert_string_equal(json_string_value(json_object_get(labels, "kubevirt.io")), "virt-launcher");
        json_t *spec = json_object_get(pod, "spec");
        assert_string_equal(json_string_value(json_object_get(spec, "nodeName")), "node2");
        json_t *anti = json_object_get(json_object_get(spec, "affinity"), "podAntiAffinity");
        json_t *term = json_array_get(json_object_get(anti, "requiredDuringSchedulingIgnoredDuringExecution"), 0);
        assert_string_equal(json_string_value(json_object_get(term, "topologyKey")), "kubernetes.io/hostname");
        json_t *expr = json_array_get(json_object_get(json_object_get(term, "labelSelector"), "matchExpressions"), 0);
        assert_string_equal(json_string_value(json_object_get(expr, "key")), "kubevirt.io/created-by");
        assert_string_equal(json_string_value(json_array_get(json_object_get(expr, "values"), 0)), vmi_uid);
        assert_string_equal(st_str(pod, "phase", NULL), "Pending");
        json_decref(pod);

        /* the nodes' side, step by step */
        node_writes(fx, fx->pod, dst_pod, "{\"phase\":\"Running\"}");
        settle(fx);
        assert_phase(fx, "m", "PreparingTarget");
        node_writes(fx, fx->vmi, "web",
                    "{\"migrationState\":{\"targetNodeAddress\":\"10.0.0.2\",\"targetNodeDomainDetected\":true}}");
        settle(fx);
        assert_phase(fx, "m", "TargetReady");
        node_writes(fx, fx->vmi, "web", "{\"migrationState\":{\"startTimestamp\":\"2026-12-05T10:00:00Z\"}}");
        settle(fx);
        assert_phase(fx, "m", "Running");
        assert_true(exists(fx, fx->pod, src_pod));
        node_writes(fx, fx->vmi, "web",
                    "{\"migrationState\":{\"completed\":true,\"endTimestamp\":\"2026-12-05T10:00:02Z\"}}");
        settle(fx);
        assert_phase(fx, "m", "Succeeded");

        /* the VMI moved; its source pod is gone */
        json_t *after = get(fx, fx->vmi, "web");
        assert_string_equal(st_str(after, "nodeName", NULL), "node2");
        assert_string_equal(st_str(after, "phase", NULL), "Running");
        json_t *after_labels = json_object_get(json_object_get(after, "metadata"), "labels");
        assert_string_equal(json_string_value(json_object_get(after_labels, "kubevirt.io/nodeName")), "node2");
        json_t *active = json_object_get(json_object_get(after, "status"), "activePods");
        pod = get(fx, fx->pod, dst_pod);
        const char *dst_uid = json_string_value(json_object_get(json_object_get(pod, "metadata"), "uid"));
        assert_int_equal(json_object_size(active), 1);
        assert_string_equal(json_string_value(json_object_get(active, dst_uid)), "node2");
        assert_false(exists(fx, fx->pod, src_pod));
        assert_int_equal(count(fx, fx->pod), 1);
        json_decref(pod);
        json_decref(after);

        /* every phase recorded once, in order */
        json_decref(m);
        m = get(fx, fx->vmim, "m");
        static const char *const phases[] = { "Pending",         "Scheduling",  "Scheduled", "PreparingTarget",
                                              "TargetReady",     "Running",     "Succeeded" };
        json_t *pts = json_object_get(json_object_get(m, "status"), "phaseTransitionTimestamps");
        assert_int_equal(json_array_size(pts), ELEMENTSOF(phases));
        for (size_t i = 0; i < ELEMENTSOF(phases); i++) {
                json_t *t = json_array_get(pts, i);
                assert_string_equal(json_string_value(json_object_get(t, "phase")), phases[i]);
                assert_non_null(json_string_value(json_object_get(t, "phaseTransitionTimestamp")));
        }
        json_decref(m);
        json_decref(vmi);

        /* settled: a pass changes nothing; a second migration goes on from node2 */
        assert_int_equal(ctl_migrations(fx->s), 0);
        migrate(fx, "back", "web");
        assert_phase(fx, "back", "Scheduled");
        assert_string_equal(ms(fx, "web", "sourceNode", b), "node2");
        assert_string_equal(ms(fx, "web", "sourcePod", b), dst_pod);
        assert_false(ms_true(fx, "web", "completed")); /* a fresh state, not the old one merged */
}

static void test_failed(void **state) {
        Fx *fx = *state;
        char b[128], c[1024], src_pod[128], dst_pod[128];
        migrating(fx, "\"targetNodeDomainDetected\":true,\"startTimestamp\":\"2026-12-05T10:00:00Z\"", "Running",
                  dst_pod);
        snprintf(src_pod, sizeof src_pod, "%s", ms(fx, "web", "sourcePod", b));
        node_writes(fx, fx->vmi, "web",
                    "{\"migrationState\":{\"failed\":true,\"failureReason\":"
                    "\"Live migration failed: connection reset\"}}");
        settle(fx);
        assert_phase(fx, "m", "Failed");
        assert_string_equal(condition(fx, "m", "Failed", c),
                            "True|MigrationFailed|Live migration failed: connection reset");
        /* the target pod is gone; the VMI stays where it was, with its pod */
        assert_false(exists(fx, fx->pod, dst_pod));
        assert_true(exists(fx, fx->pod, src_pod));
        json_t *vmi = get(fx, fx->vmi, "web");
        assert_string_equal(st_str(vmi, "nodeName", NULL), "node1");
        json_decref(vmi);
        /* and it can be migrated again */
        migrate(fx, "again", "web");
        assert_phase(fx, "again", "Scheduled");
}

static void test_target_pod_exits(void **state) {
        Fx *fx = *state;
        char b[128], c[1024], dst_pod[128];
        running_vmi(fx, "web", "1Gi");
        migrate(fx, "m", "web");
        snprintf(dst_pod, sizeof dst_pod, "%s", ms(fx, "web", "targetPod", b));
        node_writes(fx, fx->pod, dst_pod, "{\"phase\":\"Failed\"}");
        settle(fx);
        assert_phase(fx, "m", "Failed");
        assert_true(ms_true(fx, "web", "failed"));
        char want[256];
        snprintf(want, sizeof want, "the target pod %s exited before the migration completed", dst_pod);
        assert_non_null(strstr(condition(fx, "m", "Failed", c), want));
        assert_false(exists(fx, fx->pod, dst_pod));
        assert_int_equal(count(fx, fx->pod), 1);
}

static void test_cancel_before_start(void **state) {
        Fx *fx = *state;
        char b[128], dst_pod[128];
        migrating(fx, "\"targetNodeDomainDetected\":true", "TargetReady", dst_pod);
        delete(fx, fx->vmim, "m");
        settle(fx);
        assert_false(exists(fx, fx->pod, dst_pod));
        assert_true(ms_true(fx, "web", "failed"));
        assert_string_equal(ms(fx, "web", "abortStatus", b), "Succeeded");
        assert_false(ms_true(fx, "web", "abortRequested"));
        assert_int_equal(count(fx, fx->pod), 1);
}

static void test_cancel_after_start(void **state) {
        Fx *fx = *state;
        char b[128], dst_pod[128];
        KvErr e = {};
        migrating(fx, "\"startTimestamp\":\"2026-12-05T10:00:00Z\"", "Running", dst_pod);
        delete(fx, fx->vmim, "m");
        settle(fx);
        /* the source node is asked to abort; the target pod stays until it has */
        assert_true(ms_true(fx, "web", "abortRequested"));
        assert_string_equal(ms(fx, "web", "abortStatus", b), "Aborting");
        assert_false(ms_true(fx, "web", "failed"));
        assert_true(exists(fx, fx->pod, dst_pod));
        /* a new migration is refused while the abort runs */
        kverr_clear(&e);
        assert_int_equal(create_vmim(fx, "m2", "web", NULL, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "in-flight migration detected"));
        node_writes(fx, fx->vmi, "web", "{\"migrationState\":{\"failed\":true,\"abortStatus\":\"Succeeded\"}}");
        settle(fx);
        assert_false(exists(fx, fx->pod, dst_pod));
        json_t *vmi = get(fx, fx->vmi, "web");
        assert_string_equal(st_str(vmi, "nodeName", NULL), "node1");
        json_decref(vmi);
}

static void test_abort_too_late(void **state) {
        Fx *fx = *state;
        char b[128], dst_pod[128];
        migrating(fx, "\"startTimestamp\":\"2026-12-05T10:00:00Z\"", "Running", dst_pod);
        delete(fx, fx->vmim, "m");
        settle(fx);
        assert_true(ms_true(fx, "web", "abortRequested"));
        /* the migration finished before the abort reached it: the VMI is on the target all the same */
        node_writes(fx, fx->vmi, "web", "{\"migrationState\":{\"completed\":true,\"abortStatus\":\"Failed\"}}");
        settle(fx);
        json_t *vmi = get(fx, fx->vmi, "web");
        assert_string_equal(st_str(vmi, "nodeName", NULL), ms(fx, "web", "targetNode", b));
        json_decref(vmi);
        assert_true(exists(fx, fx->pod, dst_pod));
        assert_int_equal(count(fx, fx->pod), 1);
}

/* A pass that stopped between the target pod and the VMI's state: the next one adopts the pod; a target
 * pod no migration wants is deleted. */
static void test_adopt_and_collect(void **state) {
        Fx *fx = *state;
        char b[128], msg[256];
        running_vmi(fx, "web", "1Gi");
        /* a VMIM whose first pass got as far as the pod */
        KvErr e = {};
        assert_int_equal(create_vmim(fx, "m", "web", NULL, &e), 0);
        json_t *m = get(fx, fx->vmim, "m"), *vmi = get(fx, fx->vmi, "web"), *pod = NULL, *stray = NULL;
        const char *uid = json_string_value(json_object_get(json_object_get(m, "metadata"), "uid"));
        assert_int_equal(ctl_schedule_migration_target(fx->s, vmi, NULL, uid, &pod, msg, sizeof msg), 1);
        assert_int_equal(ctl_schedule_migration_target(fx->s, vmi, NULL, "gone", &stray, msg, sizeof msg), 1);
        const char *pod_name = json_string_value(json_object_get(json_object_get(pod, "metadata"), "name"));
        const char *stray_name = json_string_value(json_object_get(json_object_get(stray, "metadata"), "name"));
        assert_int_equal(count(fx, fx->pod), 3);
        settle(fx);
        assert_phase(fx, "m", "Scheduled");
        assert_string_equal(ms(fx, "web", "targetPod", b), pod_name);
        assert_false(exists(fx, fx->pod, stray_name));
        assert_int_equal(count(fx, fx->pod), 2);
        json_decref(stray);
        json_decref(pod);
        json_decref(vmi);
        json_decref(m);
}

static void test_no_node_fits(void **state) {
        Fx *fx = *state;
        char c[1024];
        KvErr e = {};
        assert_true(ctl_nodes_simulate(fx->s, 1, 2000, 4 * GI, &e) >= 0);
        running_vmi(fx, "web", "1Gi");
        migrate(fx, "m", "web");
        assert_phase(fx, "m", "Scheduling");
        assert_string_equal(condition(fx, "m", "PodScheduled", c),
                            "False|Unschedulable|0/1 nodes are available: 1 node(s) didn't match pod anti-affinity "
                            "rules.");
        assert_int_equal(count(fx, fx->pod), 1);
        /* a node the VMI does not fit on: its requests are counted */
        assert_true(ctl_nodes_simulate(fx->s, 2, 2000, 4 * GI, &e) >= 0);
        running_vmi(fx, "big", "3500Mi");
        json_t *big = get(fx, fx->vmi, "big");
        assert_string_equal(st_str(big, "nodeName", NULL), "node2");
        json_decref(big);
        settle(fx);
        assert_string_equal(condition(fx, "m", "PodScheduled", c),
                            "False|Unschedulable|0/2 nodes are available: 1 Insufficient memory, 1 node(s) didn't "
                            "match pod anti-affinity rules.");
        /* a third node: the migration goes on; the target pod's memory counts against its node */
        assert_true(ctl_nodes_simulate(fx->s, 3, 2000, 4 * GI, &e) >= 0);
        settle(fx);
        assert_phase(fx, "m", "Scheduled");
        assert_string_equal(condition(fx, "m", "PodScheduled", c), "True||");
        json_t *in = parse("{\"metadata\":{\"name\":\"late\"},\"spec\":{\"domain\":{\"devices\":{},\"resources\":"
                           "{\"requests\":{\"memory\":\"3500Mi\"}}}}}"),
               *out = NULL;
        assert_int_equal(ctl_store_create(fx->s, fx->vmi, "default", in, &out, &e), 0);
        json_decref(in);
        json_decref(out);
        settle(fx);
        json_t *late = get(fx, fx->vmi, "late");
        assert_string_equal(st_str(late, "phase", NULL), "Pending"); /* node1: web, node2: big, node3: web's target */
        json_decref(late);
}

static void test_not_migratable(void **state) {
        Fx *fx = *state;
        char c[1024];
        running_vmi(fx, "web", "1Gi");
        node_writes(fx, fx->vmi, "web",
                    "{\"conditions\":[{\"type\":\"LiveMigratable\",\"status\":\"False\",\"reason\":"
                    "\"DisksNotLiveMigratable\",\"message\":\"cannot migrate VMI with non-shared PVCs\"}]}");
        migrate(fx, "m", "web");
        assert_phase(fx, "m", "Failed");
        assert_string_equal(condition(fx, "m", "Failed", c),
                            "True|DisksNotLiveMigratable|Cannot migrate VMI, Reason: DisksNotLiveMigratable, Message: "
                            "cannot migrate VMI with non-shared PVCs");
        assert_int_equal(count(fx, fx->pod), 1);
        json_t *vmi = get(fx, fx->vmi, "web");
        assert_null(json_object_get(json_object_get(vmi, "status"), "migrationState"));
        json_decref(vmi);
}

static void test_vmi_deleted(void **state) {
        Fx *fx = *state;
        char c[1024];
        running_vmi(fx, "web", "1Gi");
        migrate(fx, "m", "web");
        assert_int_equal(count(fx, fx->pod), 2);
        delete(fx, fx->vmi, "web");
        settle(fx);
        assert_phase(fx, "m", "Failed");
        assert_string_equal(condition(fx, "m", "Failed", c),
                            "True|VMIDeleted|the VMI \"default/web\" was deleted during the migration");
        assert_int_equal(count(fx, fx->pod), 0);
}

static void test_vm_migrating(void **state) {
        Fx *fx = *state;
        char b[128];
        json_t *in = parse("{\"metadata\":{\"name\":\"vm\"},\"spec\":{\"running\":true,\"template\":{\"spec\":"
                           "{\"domain\":{\"devices\":{},\"memory\":{\"guest\":\"64Mi\"}}}}}}"),
               *out = NULL;
        KvErr e = {};
        assert_int_equal(ctl_store_create(fx->s, fx->vm, "default", in, &out, &e), 0);
        json_decref(in);
        json_decref(out);
        settle(fx);
        node_writes(fx, fx->vmi, "vm", "{\"phase\":\"Running\"}");
        settle(fx);
        json_t *vm = get(fx, fx->vm, "vm");
        assert_string_equal(st_str(vm, "printableStatus", NULL), "Running");
        json_decref(vm);
        migrate(fx, "m", "vm");
        vm = get(fx, fx->vm, "vm");
        assert_string_equal(st_str(vm, "printableStatus", NULL), "Migrating");
        json_decref(vm);
        node_writes(fx, fx->vmi, "vm", "{\"migrationState\":{\"completed\":true}}");
        settle(fx);
        assert_phase(fx, "m", "Succeeded");
        vm = get(fx, fx->vm, "vm");
        assert_string_equal(st_str(vm, "printableStatus", NULL), "Running");
        json_decref(vm);
        json_t *vmi = get(fx, fx->vmi, "vm");
        assert_string_equal(st_str(vmi, "nodeName", NULL), ms(fx, "vm", "targetNode", b));
        json_decref(vmi);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_admission, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_success, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_failed, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_target_pod_exits, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_cancel_before_start, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_cancel_after_start, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_abort_too_late, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_adopt_and_collect, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_no_node_fits, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_not_migratable, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_vmi_deleted, setup, ctl_fx_free),
                cmocka_unit_test_setup_teardown(test_vm_migrating, setup, ctl_fx_free),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
