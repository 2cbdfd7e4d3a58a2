/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/migration.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/json-util.h"
#include "common/kstatus.h"
#include "common/log.h"
#include "common/util.h"
#include "controller/events.h"
#include "controller/metrics.h"
#include "controller/scheduler.h"

#define LABEL_HOSTNAME "kubernetes.io/hostname"
#define LABEL_CREATED_BY "kubevirt.io/created-by"

/* KubeVirt's VMIM phases, in the order a migration goes through them ("" before admission's Pending). */
typedef enum Phase {
        PHASE_NONE,
        PHASE_PENDING,
        PHASE_SCHEDULING,
        PHASE_SCHEDULED,
        PHASE_PREPARING_TARGET,
        PHASE_TARGET_READY,
        PHASE_RUNNING,
        PHASE_SUCCEEDED,
        PHASE_FAILED,
        _PHASE_MAX,
} Phase;

static const char *const phase_table[_PHASE_MAX] = {
        [PHASE_NONE] = "",
        [PHASE_PENDING] = "Pending",
        [PHASE_SCHEDULING] = "Scheduling",
        [PHASE_SCHEDULED] = "Scheduled",
        [PHASE_PREPARING_TARGET] = "PreparingTarget",
        [PHASE_TARGET_READY] = "TargetReady",
        [PHASE_RUNNING] = "Running",
        [PHASE_SUCCEEDED] = "Succeeded",
        [PHASE_FAILED] = "Failed",
};

static const CtlResource *res_vmim(void) {
        return ctl_resource_find("kubevirt.io", "v1", "virtualmachineinstancemigrations");
}

static const CtlResource *res_vmi(void) {
        return ctl_resource_find("kubevirt.io", "v1", "virtualmachineinstances");
}

static const CtlResource *res_pod(void) {
        return ctl_resource_find("", "v1", "pods");
}

static json_t *status_of(json_t *o) {
        return json_object_get(o, "status");
}

static const char *str_at(json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

static Phase phase_of(json_t *vmim) {
        const char *p = str_at(status_of(vmim), "phase");
        for (Phase k = 0; p && k < _PHASE_MAX; k++)
                if (streq(p, phase_table[k]))
                        return k;
        return PHASE_NONE;
}

static bool final(Phase p) {
        return p == PHASE_SUCCEEDED || p == PHASE_FAILED;
}

static json_t *migration_state(json_t *vmi) {
        json_t *ms = json_object_get(status_of(vmi), "migrationState");
        return json_is_object(ms) ? ms : NULL;
}

bool ctl_vmi_migrating(json_t *vmi) {
        json_t *ms = migration_state(vmi);
        return ms && !json_is_true(json_object_get(ms, "completed")) && !json_is_true(json_object_get(ms, "failed"));
}

/* ---- admission ---- */

/* A refusal (422) naming field as the cause's field. */
_printf_(3, 4) static int refuse(KvErr *e, const char *field, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        kverr_setv(e, KV_ERR_INVALID_CONFIG, -EINVAL, fmt, ap);
        va_end(ap);
        snprintf(e->details, sizeof e->details, "%s", field);
        return -EINVAL;
}

/* A VMIM of VMI vmi_name in ns whose migration is in flight (not Succeeded or Failed), or NULL. */
static json_t *vmim_in_flight(json_t *vmims, const char *ns, const char *vmi_name) {
        size_t i;
        json_t *m;
        json_array_foreach(vmims, i, m)
                if (streq_ptr(ctl_md(m, "namespace"), ns) &&
                    streq_ptr(str_at(json_object_get(m, "spec"), "vmiName"), vmi_name) && !final(phase_of(m)))
                        return m;
        return NULL;
}

int ctl_migration_admit(CtlStore *s, const CtlResource *res, const char *ns, json_t *obj, KvErr *e) {
        if (res != res_vmim())
                return 0;
        json_t *spec = json_object_get(obj, "spec");
        const char *name = str_at(spec, "vmiName");
        _cleanup_json_ json_t *vmi = ctl_store_ref(s, res_vmi(), ns, name), *vmims = NULL;
        if (!vmi)
                return refuse(e, "spec.vmiName", "the VMI \"%s/%s\" does not exist", ns, name);
        const char *phase = str_at(status_of(vmi), "phase"), *node = str_at(status_of(vmi), "nodeName");
        if (!streq_ptr(phase, "Running"))
                return refuse(e, "spec.vmiName", "Cannot migrate VMI \"%s/%s\": it is not running (phase %s)", ns, name,
                              phase ? phase : "none");
        json_t *other = NULL;
        if (ctl_vmi_migrating(vmi))
                return refuse(e, "spec.vmiName",
                              "in-flight migration detected. Active migration job (%s) is currently already in "
                              "progress for VMI %s.",
                              str_at(migration_state(vmi), "migrationUid"), name);
        vmims = ctl_store_items(s, res_vmim());
        if ((other = vmim_in_flight(vmims, ns, name)))
                return refuse(e, "spec.vmiName",
                              "in-flight migration detected. Active migration job (%s) is currently already in "
                              "progress for VMI %s.",
                              ctl_md(other, "uid"), name);
        const char *host = str_at(json_object_get(spec, "addedNodeSelector"), LABEL_HOSTNAME);
        if (host && streq_ptr(host, node))
                return refuse(e, "spec.addedNodeSelector",
                              "spec.addedNodeSelector: %s=%s is the node VMI %s runs on: a migration needs another "
                              "node",
                              LABEL_HOSTNAME, host, name);
        return 0;
}

/* ---- writes ---- */

/* " (QEMU downtime 68 ms, guest paused 64.7 ms)" from the figures the nodes wrote into the migrationState, or "". */
static void outage_text(json_t *ms, char *buf, size_t n) {
        json_t *down = json_object_get(ms, "kvnetDowntimeMs"), *pause = json_object_get(ms, "kvnetNetworkOutageMs");
        json_t *early = json_object_get(ms, "kvnetEarlyPackets");
        int k = 0;
        buf[0] = '\0';
        if (json_is_number(down))
                k = snprintf(buf, n, " (QEMU downtime %.0f ms", json_number_value(down));
        if (json_is_number(pause) && k >= 0 && (size_t) k < n)
                k += snprintf(buf + k, n - k, "%sguest paused %.1f ms", k ? ", " : " (", json_number_value(pause));
        /* the early switchover: packets the target node took in for the paused guest instead of the source */
        if (json_is_integer(early) && k >= 0 && (size_t) k < n)
                k += snprintf(buf + k, n - k, "%searly switchover delivered %lld packet(s)", k ? ", " : " (",
                              (long long) json_integer_value(early));
        if (k > 0 && (size_t) k < n)
                snprintf(buf + k, n - k, ")");
}

/* The Events of a VMIM's phase change (docs/events.md), on the VMIM and, for the migration's start and end, on its
 * VMI. */
static void phase_event(CtlStore *s, json_t *vmim, Phase phase, const KCondition *c) {
        const char *ns = ctl_md(vmim, "namespace"), *vname = str_at(json_object_get(vmim, "spec"), "vmiName");
        _cleanup_json_ json_t *vmi = vname ? ctl_store_ref(s, res_vmi(), ns, vname) : NULL;
        json_t *ms = migration_state(vmi);
        const char *from = str_at(ms, "sourceNode"), *to = str_at(ms, "targetNode");
        char fig[200];
        CtlMetrics *mx = ctl_store_metrics(s);
        int64_t born = kstatus_parse_time(ctl_md(vmim, "creationTimestamp"));
        ctl_metrics_vmim_phase(mx, phase_table[phase], born < 0 ? -1 : (double) (time(NULL) - born));
        if (phase == PHASE_SUCCEEDED || phase == PHASE_FAILED) {
                json_t *down = json_object_get(ms, "kvnetDowntimeMs");
                json_t *pause = json_object_get(ms, "kvnetNetworkOutageMs");
                bool ok = phase == PHASE_SUCCEEDED;
                ctl_metrics_migration_ended(mx, ok, ok && json_is_number(down) ? json_number_value(down) / 1000 : -1,
                                            ok && json_is_number(pause) ? json_number_value(pause) / 1000 : -1);
        }
        from = from ? from : "?";
        to = to ? to : "?";
        switch (phase) {
        case PHASE_RUNNING:
                ctl_event(s, res_vmim(), vmim, "Normal", "Migrating", "Migrating %s from node %s to node %s",
                          vname, from, to);
                ctl_event(s, res_vmi(), vmi, "Normal", "Migrating", "VirtualMachineInstance is migrating to node %s",
                          to);
                break;
        case PHASE_SUCCEEDED:
                outage_text(ms, fig, sizeof fig);
                ctl_event(s, res_vmim(), vmim, "Normal", "Migrated", "Migrated %s from node %s to node %s%s", vname,
                          from, to, fig);
                ctl_event(s, res_vmi(), vmi, "Normal", "Migrated",
                          "The VirtualMachineInstance migrated from node %s to node %s%s", from, to, fig);
                break;
        case PHASE_FAILED:
                ctl_event(s, res_vmim(), vmim, "Warning", "FailedMigration", "%s: %s",
                          c && c->reason ? c->reason : "Failed", c && c->message ? c->message : "the migration failed");
                if (vmi && ms && streq_ptr(str_at(ms, "migrationUid"), ctl_md(vmim, "uid")))
                        ctl_event(s, res_vmi(), vmi, "Warning", "FailedMigration",
                                  "Migration to node %s failed, the VirtualMachineInstance stays on node %s: %s", to,
                                  from, c && c->message ? c->message : "");
                break;
        default:
                break;
        }
}

/* The VMIM's phase (a change is recorded in status.phaseTransitionTimestamps) and, when c, one condition:
 * 1 when that changed it, 0 when it was so already, < 0. */
static int vmim_set(CtlStore *s, json_t *vmim, Phase phase, const KCondition *c) {
        const char *ns = ctl_md(vmim, "namespace"), *name = ctl_md(vmim, "name");
        _cleanup_json_ json_t *cur = NULL;
        KvErr e = {};
        char ts[32];
        int r = ctl_store_get(s, res_vmim(), ns, name, &cur);
        if (r < 0)
                return r;
        json_t *st = status_of(cur);
        if (!json_is_object(st) && (!(st = json_object()) || json_object_set_new(cur, "status", st) < 0))
                return -ENOMEM;
        bool moved = !streq_ptr(str_at(st, "phase"), phase_table[phase]);
        if (moved) {
                json_t *pts = json_object_get(st, "phaseTransitionTimestamps");
                if (!json_is_array(pts) && (!(pts = json_array()) ||
                                            json_object_set_new(st, "phaseTransitionTimestamps", pts) < 0))
                        return -ENOMEM;
                if (json_object_set_new(st, "phase", json_string(phase_table[phase])) < 0 ||
                    json_array_append_new(pts, json_pack("{s:s,s:s}", "phase", phase_table[phase],
                                                         "phaseTransitionTimestamp", kstatus_time(0, ts))) < 0)
                        return -ENOMEM;
        }
        if (c && (r = kstatus_set_condition(st, c)) < 0)
                return r;
        uint64_t rv = ctl_store_rv(s);
        if ((r = ctl_store_set_status(s, res_vmim(), ns, name, st, &e)) < 0) {
                log_warning("VirtualMachineInstanceMigration %s/%s: cannot update its status: %s", ns, name, e.msg);
                return r;
        }
        if (moved) {
                log_info("VirtualMachineInstanceMigration %s/%s: %s%s%s", ns, name, phase_table[phase],
                         c && c->message ? ": " : "", c && c->message ? c->message : "");
                phase_event(s, cur, phase, c);
        }
        return ctl_store_rv(s) != rv;
}

/* Failed, with the condition Failed=True naming reason and message. */
static int vmim_fail(CtlStore *s, json_t *vmim, const char *reason, const char *message) {
        return vmim_set(s, vmim, PHASE_FAILED,
                        &(KCondition){ .type = "Failed", .status = "True", .reason = reason, .message = message });
}

/* The VMI's status with the merge patches p1 and then p2 (when not NULL) applied: 1 when that changed it. */
static int vmi_status_merge(CtlStore *s, const char *ns, const char *name, json_t *p1, json_t *p2) {
        _cleanup_json_ json_t *cur = ctl_store_ref(s, res_vmi(), ns, name), *st1 = NULL, *st2 = NULL;
        KvErr e = {};
        int r;
        if (!cur)
                return -ENOENT;
        if (!p1 || !(st1 = ctl_merge_patch(status_of(cur), p1)) || (p2 && !(st2 = ctl_merge_patch(st1, p2))))
                return -ENOMEM;
        uint64_t rv = ctl_store_rv(s);
        if ((r = ctl_store_set_status(s, res_vmi(), ns, name, st2 ? st2 : st1, &e)) < 0) {
                log_warning("VirtualMachineInstance %s/%s: cannot update its migrationState: %s", ns, name, e.msg);
                return r;
        }
        return ctl_store_rv(s) != rv;
}

/* Merges patch (stolen) into the VMI's status.migrationState. */
static int ms_merge(CtlStore *s, const char *ns, const char *name, json_t *patch) {
        _cleanup_json_ json_t *p = json_pack("{s:o}", "migrationState", patch);
        return vmi_status_merge(s, ns, name, p, NULL);
}

static int pod_delete(CtlStore *s, const char *ns, const char *name, const char *why) {
        json_t *out = NULL;
        KvErr e = {};
        if (!name)
                return 0;
        int r = ctl_store_delete(s, res_pod(), ns, name, &out, &e);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                log_warning("Pod %s/%s: cannot delete it: %s", ns, name, e.msg);
                return r;
        }
        log_info("Pod %s/%s: %s; deleted", ns, name, why);
        json_decref(out);
        return 1;
}

/* ---- the pass ---- */

static json_t *pod_get(CtlStore *s, const char *ns, const char *name) {
        return name ? ctl_store_ref(s, res_pod(), ns, name) : NULL;
}

/* The pod in ns labelled key=value among pods (unless it is on node not_on), or NULL. */
static json_t *pod_labelled(json_t *pods, const char *ns, const char *key, const char *value, const char *not_on) {
        size_t i;
        json_t *p;
        json_array_foreach(pods, i, p) {
                json_t *labels = json_object_get(json_object_get(p, "metadata"), "labels");
                if (streq_ptr(ctl_md(p, "namespace"), ns) && streq_ptr(str_at(labels, key), value) &&
                    !streq_ptr(str_at(json_object_get(p, "spec"), "nodeName"), not_on))
                        return p;
        }
        return NULL;
}

/* The VMI's own pod: the one of status.activePods on its node, else its launcher pod there. */
static json_t *source_pod(json_t *pods, json_t *vmi) {
        json_t *st = status_of(vmi), *active = json_object_get(st, "activePods");
        const char *node = str_at(st, "nodeName"), *ns = ctl_md(vmi, "namespace");
        size_t i;
        json_t *p;
        json_array_foreach(pods, i, p) {
                const char *on = str_at(json_object_get(p, "spec"), "nodeName");
                if (streq_ptr(ctl_md(p, "namespace"), ns) && streq_ptr(on, node) &&
                    streq_ptr(str_at(active, ctl_md(p, "uid")), node))
                        return p;
        }
        json_array_foreach(pods, i, p) {
                json_t *labels = json_object_get(json_object_get(p, "metadata"), "labels");
                if (streq_ptr(ctl_md(p, "namespace"), ns) &&
                    streq_ptr(str_at(labels, LABEL_CREATED_BY), ctl_md(vmi, "uid")) &&
                    streq_ptr(str_at(json_object_get(p, "spec"), "nodeName"), node) &&
                    !json_object_get(labels, CTL_LABEL_MIGRATION_JOB))
                        return p;
        }
        return NULL;
}

/* Pending -> Scheduling -> Scheduled: the target pod (one left by an earlier pass is adopted), the VMI's
 * migrationState. */
static int schedule(CtlStore *s, json_t *vmim, json_t *vmi, json_t *pods) {
        const char *ns = ctl_md(vmim, "namespace"), *uid = ctl_md(vmim, "uid"), *name = ctl_md(vmi, "name");
        _cleanup_json_ json_t *created = NULL, *ms = NULL, *p1 = NULL;
        char msg[1024];
        int changed = 0, r;
        if ((r = vmim_set(s, vmim, PHASE_SCHEDULING, NULL)) < 0)
                return r;
        changed += r;
        json_t *pod = pod_labelled(pods, ns, CTL_LABEL_MIGRATION_JOB, uid, NULL);
        if (!pod) {
                json_t *added = json_object_get(json_object_get(vmim, "spec"), "addedNodeSelector");
                r = ctl_schedule_migration_target(s, vmi, added, uid, &created, msg, sizeof msg);
                if (r < 0)
                        return r;
                if (r == 0) {
                        KCondition c = { .type = "PodScheduled", .status = "False", .reason = "Unschedulable",
                                         .message = msg };
                        r = vmim_set(s, vmim, PHASE_SCHEDULING, &c);
                        return r < 0 ? r : changed + r;
                }
                changed++;
                pod = created;
                ctl_event(s, res_vmim(), vmim, "Normal", "SuccessfulCreate",
                          "Created migration target pod %s on node %s", ctl_md(pod, "name"),
                          str_at(json_object_get(pod, "spec"), "nodeName"));
        }
        json_t *src = source_pod(pods, vmi);
        ms = json_pack("{s:s,s:s?,s:s?,s:s?,s:s?,s:s}", "migrationUid", uid, "sourceNode",
                       str_at(status_of(vmi), "nodeName"), "sourcePod", ctl_md(src, "name"), "targetNode",
                       str_at(json_object_get(pod, "spec"), "nodeName"), "targetPod", ctl_md(pod, "name"), "mode",
                       "PreCopy");
        /* the state of an earlier migration goes first: the new one replaces it, it is not merged into it */
        p1 = json_pack("{s:n,s:s}", "migrationState", "migrationMethod", "LiveMigration");
        _cleanup_json_ json_t *p2 = ms ? json_pack("{s:O}", "migrationState", ms) : NULL;
        if (!p2)
                return -ENOMEM;
        if ((r = vmi_status_merge(s, ns, name, p1, p2)) < 0)
                return r;
        changed += r;
        r = vmim_set(s, vmim, PHASE_SCHEDULED, &(KCondition){ .type = "PodScheduled", .status = "True" });
        return r < 0 ? r : changed + r;
}

/* Where a scheduled migration is, from the VMI's migrationState and the target pod (Scheduled and on); a
 * target pod gone or failed before completion fails the migration (written into migrationState). */
static Phase progress(CtlStore *s, json_t *vmi, json_t *ms, int *changed) {
        const char *ns = ctl_md(vmi, "namespace"), *target = str_at(ms, "targetPod");
        if (json_is_true(json_object_get(ms, "completed")))
                return PHASE_SUCCEEDED;
        if (json_is_true(json_object_get(ms, "failed")))
                return PHASE_FAILED;
        _cleanup_json_ json_t *pod = pod_get(s, ns, target);
        const char *pod_phase = str_at(status_of(pod), "phase");
        if (!pod || streq_ptr(pod_phase, "Failed") || streq_ptr(pod_phase, "Succeeded")) {
                char why[512], ts[32];
                snprintf(why, sizeof why, "the target pod %s %s before the migration completed", target ? target : "",
                         pod ? "exited" : "is gone");
                int r = ms_merge(s, ns, ctl_md(vmi, "name"),
                                 json_pack("{s:b,s:s,s:s}", "failed", true, "failureReason", why, "endTimestamp",
                                           kstatus_time(0, ts)));
                *changed += r > 0 ? r : 0;
                return PHASE_FAILED;
        }
        if (json_object_get(ms, "startTimestamp"))
                return PHASE_RUNNING;
        if (json_is_true(json_object_get(ms, "targetNodeDomainDetected")))
                return PHASE_TARGET_READY;
        if (streq_ptr(pod_phase, "Running"))
                return PHASE_PREPARING_TARGET;
        return PHASE_SCHEDULED;
}

static int reconcile_vmim(CtlStore *s, json_t *vmim, json_t *pods) {
        const char *ns = ctl_md(vmim, "namespace"), *uid = ctl_md(vmim, "uid");
        const char *name = str_at(json_object_get(vmim, "spec"), "vmiName");
        Phase phase = phase_of(vmim);
        _cleanup_json_ json_t *vmi = NULL;
        char msg[1024];
        int changed = 0, r;
        if (final(phase))
                return 0;
        if (!(vmi = name ? ctl_store_ref(s, res_vmi(), ns, name) : NULL)) {
                snprintf(msg, sizeof msg, "the VMI \"%s/%s\" %s", ns, name,
                         phase == PHASE_NONE ? "does not exist" : "was deleted during the migration");
                return vmim_fail(s, vmim, "VMIDeleted", msg);
        }
        json_t *st = status_of(vmi), *ms = migration_state(vmi);
        if (phase < PHASE_SCHEDULED) {
                json_t *c = kstatus_condition(st, "LiveMigratable");
                const char *vphase = str_at(st, "phase");
                if (c && streq_ptr(str_at(c, "status"), "False")) {
                        snprintf(msg, sizeof msg, "Cannot migrate VMI, Reason: %s, Message: %s",
                                 str_at(c, "reason") ? str_at(c, "reason") : "NotMigratable",
                                 str_at(c, "message") ? str_at(c, "message") : "");
                        return vmim_fail(s, vmim, str_at(c, "reason") ? str_at(c, "reason") : "NotMigratable", msg);
                }
                if (!streq_ptr(vphase, "Running")) {
                        snprintf(msg, sizeof msg, "Cannot migrate VMI \"%s/%s\": it is not running (phase %s)", ns,
                                 name, vphase ? vphase : "none");
                        return vmim_fail(s, vmim, "VMINotRunning", msg);
                }
                if (phase == PHASE_NONE && (r = vmim_set(s, vmim, PHASE_PENDING, NULL)) < 0)
                        return r;
                changed += phase == PHASE_NONE ? r : 0;
                return (r = schedule(s, vmim, vmi, pods)) < 0 ? r : changed + r;
        }
        if (!ms || !streq_ptr(str_at(ms, "migrationUid"), uid))
                return vmim_fail(s, vmim, "MigrationStateLost",
                                 "the VMI's status.migrationState no longer names this migration (was the VMI "
                                 "re-created?)");
        Phase want = progress(s, vmi, ms, &changed);
        if (want <= phase)
                return changed;
        if (want == PHASE_FAILED) {
                /* progress() may have written the reason */
                _cleanup_json_ json_t *now = ctl_store_ref(s, res_vmi(), ns, name);
                const char *why = str_at(migration_state(now), "failureReason");
                snprintf(msg, sizeof msg, "%s", why ? why : "the migration failed");
                r = vmim_fail(s, vmim, json_object_get(migration_state(now), "abortStatus") ? "Aborted"
                                                                                              : "MigrationFailed",
                              msg);
        } else
                r = vmim_set(s, vmim, want, NULL);
        return r < 0 ? r : changed + r;
}

/* The VMI's side of its migration: a completed one moves it to the target (and its source pod goes), a
 * failed one takes the target pod away, one whose VMIM was deleted is cancelled. */
static int finish_vmi(CtlStore *s, json_t *vmi, json_t *vmims) {
        json_t *ms = migration_state(vmi), *st = status_of(vmi);
        const char *ns = ctl_md(vmi, "namespace"), *name = ctl_md(vmi, "name"), *uid = str_at(ms, "migrationUid");
        const char *target = str_at(ms, "targetPod"), *node = str_at(ms, "targetNode");
        char ts[32];
        int changed = 0, r;
        if (!ms)
                return 0;
        if (json_is_true(json_object_get(ms, "completed"))) {
                _cleanup_json_ json_t *pod = pod_get(s, ns, target), *active = json_object(), *p = NULL;
                const char *k;
                json_t *v;
                if (!active)
                        return -ENOMEM;
                json_object_foreach(json_object_get(st, "activePods"), k, v)
                        json_object_set_new(active, k, json_null());
                if (pod && node)
                        json_object_set_new(active, ctl_md(pod, "uid"), json_string(node));
                if (node && !streq_ptr(str_at(st, "nodeName"), node)) {
                        p = json_pack("{s:s,s:O}", "nodeName", node, "activePods", active);
                        if (!p || (r = vmi_status_merge(s, ns, name, p, NULL)) < 0)
                                return p ? r : -ENOMEM;
                        log_info("VirtualMachineInstance %s/%s: migrated to %s (pod %s)", ns, name, node, target);
                        changed += r;
                }
                if (node && (r = ctl_vmi_label_node(s, ns, name, node)) < 0)
                        return r;
                changed += node ? r : 0;
                if (!streq_ptr(str_at(ms, "sourcePod"), target) &&
                    (r = pod_delete(s, ns, str_at(ms, "sourcePod"), "the VMI migrated away from it")) > 0)
                        changed += r;
                return changed;
        }
        if (json_is_true(json_object_get(ms, "failed"))) {
                r = pod_delete(s, ns, target, "the migration it was the target of failed");
                return r > 0 ? r : 0;
        }
        size_t i;
        json_t *m;
        json_array_foreach(vmims, i, m) if (streq_ptr(ctl_md(m, "uid"), uid)) return 0;
        /* its VMIM was deleted: a cancellation */
        if (!json_object_get(ms, "startTimestamp")) {
                r = pod_delete(s, ns, target, "its migration was cancelled before it started");
                changed += r > 0 ? r : 0;
                r = ms_merge(s, ns, name,
                             json_pack("{s:b,s:s,s:s,s:s}", "failed", true, "abortStatus", "Succeeded", "failureReason",
                                       "the migration was cancelled (its VirtualMachineInstanceMigration was deleted)",
                                       "endTimestamp", kstatus_time(0, ts)));
        } else
                r = ms_merge(s, ns, name, json_pack("{s:b,s:s}", "abortRequested", true, "abortStatus", "Aborting"));
        if (r > 0)
                log_info("VirtualMachineInstance %s/%s: migration %s cancelled", ns, name, uid);
        return r < 0 ? r : changed + r;
}

/* Target pods nobody needs: their VMIM is gone and their VMI neither migrates to them nor runs in them (a
 * pass stopped between the pod and the VMI's state, a VMIM deleted while Scheduling). */
static int collect_targets(CtlStore *s, json_t *pods, json_t *vmims) {
        int changed = 0;
        size_t i, k;
        json_t *p, *m;
        json_array_foreach(pods, i, p) {
                json_t *labels = json_object_get(json_object_get(p, "metadata"), "labels");
                const char *job = str_at(labels, CTL_LABEL_MIGRATION_JOB);
                const char *ns = ctl_md(p, "namespace"), *owner = NULL;
                bool needed = false;
                if (!job)
                        continue;
                json_array_foreach(vmims, k, m) needed = needed || streq_ptr(ctl_md(m, "uid"), job);
                if (!ctl_controller_uid(p, "VirtualMachineInstance", &owner) || needed)
                        continue;
                _cleanup_json_ json_t *vmi = ctl_store_ref(s, res_vmi(), ns, owner);
                if (!vmi)
                        continue; /* the scheduler's garbage collection takes it */
                json_t *ms = migration_state(vmi);
                if ((streq_ptr(str_at(ms, "migrationUid"), job) && !json_is_true(json_object_get(ms, "failed"))) ||
                    json_object_get(json_object_get(status_of(vmi), "activePods"), ctl_md(p, "uid")))
                        continue;
                int r = pod_delete(s, ns, ctl_md(p, "name"), "the migration it was made for is gone");
                changed += r > 0 ? r : 0;
        }
        return changed;
}

int ctl_migrations(CtlStore *s) {
        _cleanup_json_ json_t *vmims = ctl_store_items(s, res_vmim()), *pods = ctl_store_items(s, res_pod()),
                              *vmis = NULL;
        json_t *o;
        int changed = 0, r;
        size_t i;
        if (!vmims || !pods)
                return -ENOMEM;
        json_array_foreach(vmims, i, o) {
                if ((r = reconcile_vmim(s, o, pods)) < 0)
                        return r;
                changed += r;
        }
        if (!(vmis = ctl_store_items(s, res_vmi())))
                return -ENOMEM;
        json_array_foreach(vmis, i, o) {
                if ((r = finish_vmi(s, o, vmims)) < 0)
                        return r;
                changed += r;
        }
        return changed + collect_targets(s, pods, vmims);
}
