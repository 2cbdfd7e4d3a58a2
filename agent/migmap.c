/* SPDX-License-Identifier: Apache-2.0 */
/* The node's half of a live migration, the pure part (agent.h, "migrations"): which role a pod has in its VMI's
 * migration, whether its view writes the VMI's status, the node's record of what it did, and the fields it
 * reports in status.migrationState (controller/migration.h has the contract). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "common/fileio.h"
#include "common/json-util.h"
#include "common/kstatus.h"

#define RECORD_FILE "migration.json"

static const char *str_at(json_t *o, const char *key) {
        return json_string_value(json_object_get(o, key));
}

static bool true_at(json_t *o, const char *key) {
        return json_is_true(json_object_get(o, key));
}

json_t *agent_vmi_migration_state(json_t *vmi) {
        json_t *ms = json_object_get(json_object_get(vmi, "status"), "migrationState");
        return json_is_object(ms) && str_at(ms, "migrationUid") ? ms : NULL;
}

AgentMigRole agent_mig_role(json_t *vmi, const char *pod_name, const char *job) {
        json_t *ms = agent_vmi_migration_state(vmi);
        if (!ms || !pod_name)
                return AGENT_MIG_NONE;
        if (job && streq_ptr(str_at(ms, "migrationUid"), job) && streq_ptr(str_at(ms, "targetPod"), pod_name))
                return AGENT_MIG_TARGET;
        if (streq_ptr(str_at(ms, "sourcePod"), pod_name))
                return AGENT_MIG_SOURCE;
        return AGENT_MIG_NONE;
}

bool agent_mig_ended(json_t *ms) {
        return ms && (true_at(ms, "completed") || true_at(ms, "failed"));
}

bool agent_pod_writes_vmi(json_t *vmi, const char *node, const char *pod_name, const char *pod_uid, const char *job) {
        json_t *st = json_object_get(vmi, "status");
        const char *at = str_at(st, "nodeName");
        if (at && !streq_ptr(at, node))
                return false; /* the VMI runs elsewhere (or moved there) */
        json_t *ms = agent_vmi_migration_state(vmi);
        switch (agent_mig_role(vmi, pod_name, job)) {
        case AGENT_MIG_TARGET:
                /* the target's pod becomes the VMI's once the controller moved it here */
                return true_at(ms, "completed") && streq_ptr(at, node);
        case AGENT_MIG_SOURCE:
                return !true_at(ms, "completed");
        case AGENT_MIG_NONE:
                break;
        }
        /* a pod made as a migration target speaks for the VMI only as its active pod */
        return !job || (pod_uid && json_object_get(json_object_get(st, "activePods"), pod_uid));
}

/* ---------------------------------------------------------------- the record */

int agent_mig_record_load(const char *dir, AgentMigRecord *ret) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t len;
        if (asprintf(&path, "%s/%s", dir, RECORD_FILE) < 0)
                return -ENOMEM;
        int r = read_file_max(path, 16384, &text, &len);
        if (r < 0)
                return r;
        _cleanup_json_ json_t *o = json_loadb(text, len, 0, NULL);
        const char *uid = str_at(o, "uid"), *role = str_at(o, "role");
        json_t *port = json_object_get(o, "port");
        if (!uid || !role || (!streq(role, "source") && !streq(role, "target")) || !json_is_integer(port) ||
            json_integer_value(port) < 0 || json_integer_value(port) > 65534)
                return -EBADMSG;
        *ret = (AgentMigRecord){ .role = streq(role, "source") ? AGENT_MIG_SOURCE : AGENT_MIG_TARGET,
                                 .port = (uint16_t) json_integer_value(port),
                                 .cancel_sent = true_at(o, "cancelSent"),
                                 .proxies_stopped = true_at(o, "proxiesStopped") };
        snprintf(ret->uid, sizeof ret->uid, "%s", uid);
        snprintf(ret->started, sizeof ret->started, "%s", str_at(o, "startTimestamp") ?: "");
        snprintf(ret->launcher_started, sizeof ret->launcher_started, "%s", str_at(o, "launcherStartedAt") ?: "");
        snprintf(ret->failure, sizeof ret->failure, "%s", str_at(o, "failure") ?: "");
        return 0;
}

int agent_mig_record_save(const char *dir, const AgentMigRecord *rec) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        _cleanup_json_ json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s, s:b, s:b, s:s}", "uid", rec->uid, "role",
                                             rec->role == AGENT_MIG_SOURCE ? "source" : "target", "port", (int) rec->port,
                                             "startTimestamp", rec->started, "launcherStartedAt", rec->launcher_started,
                                             "cancelSent", rec->cancel_sent, "proxiesStopped", rec->proxies_stopped,
                                             "failure", rec->failure);
        if (!o || !(text = json_dump_compact(o)) || asprintf(&path, "%s/%s", dir, RECORD_FILE) < 0)
                return -ENOMEM;
        return write_file_atomic(path, text, strlen(text), true);
}

/* ---------------------------------------------------------------- what the nodes report */

static int set_str(json_t *o, const char *key, const char *v) {
        return json_object_set_new(o, key, json_string(v));
}

/* The launcher's migration object when it is the one of this record (a launcher keeps its last migration's). */
static json_t *launcher_migration(json_t *launcher, const AgentMigRecord *rec) {
        json_t *m = json_object_get(launcher, "migration");
        if (!json_is_object(m))
                return NULL;
        if (rec->role == AGENT_MIG_SOURCE &&
            (!rec->launcher_started[0] || !streq_ptr(str_at(m, "startedAt"), rec->launcher_started)))
                return NULL;
        return m;
}

/* kvnetNetworkOutageMs: the source launcher's pause to the target launcher's resume (whichever node writes
 * last knows both; one clock on one machine, NTP's error between two). */
static int set_outage(json_t *f, json_t *paused, json_t *resumed) {
        if (!json_is_integer(paused) || !json_is_integer(resumed) || json_integer_value(resumed) < json_integer_value(paused))
                return 0;
        return json_object_set_new(f, "kvnetNetworkOutageMs",
                                   json_real((double) (json_integer_value(resumed) - json_integer_value(paused)) / 1000.0));
}

int agent_mig_source_fields(json_t *ms, const AgentMigRecord *rec, json_t *launcher, json_t **ret) {
        _cleanup_json_ json_t *f = json_object();
        char ts[32];
        if (!f)
                return -ENOMEM;
        *ret = NULL;
        if (!ms || !rec || rec->role != AGENT_MIG_SOURCE || !streq_ptr(str_at(ms, "migrationUid"), rec->uid))
                return 0;
        if (rec->started[0] && set_str(f, "startTimestamp", rec->started) < 0)
                return -ENOMEM;
        if (agent_mig_ended(ms)) {
                *ret = json_object_size(f) ? TAKE_PTR(f) : NULL;
                return 0;
        }
        bool abort_requested = true_at(ms, "abortRequested");
        if (rec->failure[0]) {
                if (set_str(f, "failureReason", rec->failure) < 0 || json_object_set_new(f, "failed", json_true()) < 0 ||
                    set_str(f, "endTimestamp", kstatus_time(0, ts)) < 0)
                        return -ENOMEM;
        } else {
                json_t *m = launcher_migration(launcher, rec);
                const char *state = str_at(m, "state");
                if (streq_ptr(state, "completed")) {
                        json_t *paused = json_object_get(m, "pausedAtUs");
                        if (json_object_set_new(f, "completed", json_true()) < 0 ||
                            set_str(f, "endTimestamp", kstatus_time(0, ts)) < 0 ||
                            json_object_set(f, "kvnetDowntimeMs", json_object_get(m, "downtimeMs") ?: json_null()) < 0 ||
                            json_object_set(f, "kvnetTotalMs", json_object_get(m, "totalMs") ?: json_null()) < 0 ||
                            json_object_set(f, "kvnetPausedAtUs", paused ?: json_null()) < 0 ||
                            set_outage(f, paused, json_object_get(ms, "kvnetResumedAtUs")) < 0 ||
                            (abort_requested && set_str(f, "abortStatus", "Failed") < 0))
                                return -ENOMEM;
                } else if (streq_ptr(state, "failed") || streq_ptr(state, "cancelled")) {
                        const char *why = str_at(m, "error");
                        char msg[600];
                        snprintf(msg, sizeof msg, "%s", why && *why ? why
                                                         : streq(state, "cancelled") ? "the migration was cancelled"
                                                                                     : "the migration failed");
                        if (json_object_set_new(f, "failed", json_true()) < 0 || set_str(f, "failureReason", msg) < 0 ||
                            set_str(f, "endTimestamp", kstatus_time(0, ts)) < 0 ||
                            (abort_requested && set_str(f, "abortStatus", "Succeeded") < 0))
                                return -ENOMEM;
                }
        }
        *ret = json_object_size(f) ? TAKE_PTR(f) : NULL;
        return 0;
}

int agent_mig_target_fields(json_t *ms, const AgentMigRecord *rec, json_t *launcher, const AgentMigTarget *t,
                            json_t **ret) {
        _cleanup_json_ json_t *f = json_object();
        if (!f)
                return -ENOMEM;
        *ret = NULL;
        if (!ms || !rec || rec->role != AGENT_MIG_TARGET || !streq_ptr(str_at(ms, "migrationUid"), rec->uid))
                return 0;
        const char *phase = str_at(launcher, "phase");
        bool ended = agent_mig_ended(ms);
        if (rec->failure[0] && !ended) {
                char ts[32];
                if (json_object_set_new(f, "failed", json_true()) < 0 || set_str(f, "failureReason", rec->failure) < 0 ||
                    set_str(f, "endTimestamp", kstatus_time(0, ts)) < 0)
                        return -ENOMEM;
        } else if (rec->port && (streq_ptr(phase, "WaitingForMigration") || streq_ptr(phase, "Running"))) {
                char p0[8], p1[8];
                snprintf(p0, sizeof p0, "%u", rec->port);
                snprintf(p1, sizeof p1, "%u", rec->port + 1u);
                if (set_str(f, "targetNodeAddress", t->address) < 0 ||
                    json_object_set_new(f, "targetDirectMigrationNodePorts", json_pack("{s:i, s:i}", p0, 0, p1, 0)) < 0 ||
                    json_object_set_new(f, "targetNodeDomainDetected", json_true()) < 0 ||
                    (rec->started[0] && set_str(f, "targetNodeDomainReadyTimestamp", rec->started) < 0) ||
                    set_str(f, "kvnetTargetStateDir", t->state_dir) < 0 ||
                    set_str(f, "kvnetTargetSerialLog", t->serial_log) < 0)
                        return -ENOMEM;
        }
        /* the guest's pause as the two launchers saw it: the source's pause to the target's resume */
        json_t *m = launcher_migration(launcher, rec);
        json_t *resumed = json_object_get(m, "resumedAtUs"), *paused = json_object_get(ms, "kvnetPausedAtUs");
        if (json_is_integer(resumed) &&
            (json_object_set(f, "kvnetResumedAtUs", resumed) < 0 || set_outage(f, paused, resumed) < 0))
                return -ENOMEM;
        /* what netd's activation answered: packets the early switchover delivered into the paused target */
        json_t *early = json_object_get(m, "earlyPackets");
        if (json_is_integer(early) && json_object_set(f, "kvnetEarlyPackets", early) < 0)
                return -ENOMEM;
        *ret = json_object_size(f) ? TAKE_PTR(f) : NULL;
        return 0;
}

int agent_mig_merge(json_t *status, json_t *fields, bool *changed) {
        json_t *ms = json_object_get(status, "migrationState");
        if (!fields || !json_is_object(ms))
                return 0;
        const char *k;
        json_t *v;
        json_object_foreach(fields, k, v) {
                if (json_equal(json_object_get(ms, k), v))
                        continue;
                if (json_object_set(ms, k, v) < 0)
                        return -ENOMEM;
                *changed = true;
        }
        return 0;
}

int agent_vmi_pin_macs(json_t *vmi) {
        json_t *ifs = json_object_get(json_object_get(json_object_get(json_object_get(vmi, "spec"), "domain"), "devices"),
                                      "interfaces");
        size_t i, k;
        json_t *ifc, *st;
        json_array_foreach(ifs, i, ifc) {
                const char *name = str_at(ifc, "name");
                if (!name || json_object_get(ifc, "macAddress"))
                        continue;
                json_array_foreach(json_object_get(json_object_get(vmi, "status"), "interfaces"), k, st) {
                        const char *mac = str_at(st, "mac");
                        if (streq_ptr(str_at(st, "name"), name) && mac && *mac) {
                                if (json_object_set_new(ifc, "macAddress", json_string(mac)) < 0)
                                        return -ENOMEM;
                                break;
                        }
                }
        }
        return 0;
}
