/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet-launcher: the status object (file + socket). */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "common/fileio.h"
#include "common/json-util.h"
#include "launcher/launcher-priv.h"

static const char *const launch_phase_table[] = {
        [LAUNCH_PHASE_SCHEDULED] = "Scheduled",
        [LAUNCH_PHASE_RUNNING] = "Running",
        [LAUNCH_PHASE_SUCCEEDED] = "Succeeded",
        [LAUNCH_PHASE_FAILED] = "Failed",
        [LAUNCH_PHASE_WAITING_FOR_MIGRATION] = "WaitingForMigration",
        [LAUNCH_PHASE_MIGRATED] = "Migrated",
};

const char *launch_phase_to_string(LaunchPhase p) {
        return (size_t) p < ELEMENTSOF(launch_phase_table) ? launch_phase_table[p] : "Unknown";
}

static const char *const launch_migration_state_table[] = {
        [LAUNCH_MIG_NONE] = "none",
        [LAUNCH_MIG_PENDING] = "pending",
        [LAUNCH_MIG_RUNNING] = "running",
        [LAUNCH_MIG_COMPLETED] = "completed",
        [LAUNCH_MIG_FAILED] = "failed",
        [LAUNCH_MIG_CANCELLED] = "cancelled",
};

const char *launch_migration_state_to_string(LaunchMigrationState s) {
        return (size_t) s < ELEMENTSOF(launch_migration_state_table) ? launch_migration_state_table[s] : "unknown";
}

int launch_migration_state_from_string(const char *s) {
        return launch_table_lookup(launch_migration_state_table, ELEMENTSOF(launch_migration_state_table), s);
}

static json_t *rfc3339_ms_or_null(int64_t ms) {
        if (ms <= 0)
                return json_null();
        time_t tt = (time_t) (ms / 1000);
        struct tm tm;
        char buf[48], out[64];
        if (!gmtime_r(&tt, &tm) || strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
                return json_null();
        snprintf(out, sizeof out, "%s.%03dZ", buf, (int) (ms % 1000));
        return json_string(out);
}

static json_t *migration_to_json(const LaunchMigrationStatus *m) {
        if (m->state == LAUNCH_MIG_NONE)
                return json_null();
        json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o, s:b, s:I, s:I, s:I, s:I, s:I}", "state",
                              launch_migration_state_to_string(m->state), "role", m->incoming ? "target" : "source",
                              "dest", m->dest, "startedAt", rfc3339_ms_or_null(m->started_at_ms), "finishedAt",
                              rfc3339_ms_or_null(m->finished_at_ms), "stats", m->have_stats, "downtimeMs",
                              (json_int_t) m->downtime_ms, "totalMs", (json_int_t) m->total_ms, "dataBytes",
                              (json_int_t) m->data_bytes, "memoryIterations", (json_int_t) m->memory_iterations,
                              "wallMs", (json_int_t) m->wall_ms);
        if (o && (json_object_set_new(o, "pausedAtUs",
                                      m->paused_at_us > 0 ? json_integer((json_int_t) m->paused_at_us) : json_null()) < 0 ||
                  json_object_set_new(o, "resumedAtUs", m->resumed_at_us > 0 ? json_integer((json_int_t) m->resumed_at_us)
                                                                             : json_null()) < 0)) {
                json_decref(o);
                return NULL;
        }
        if (o && m->incoming && m->early_packets >= 0 &&
            (json_object_set_new(o, "earlyPackets", json_integer((json_int_t) m->early_packets)) < 0 ||
             json_object_set_new(o, "switchMicros", json_integer((json_int_t) m->switch_us)) < 0)) {
                json_decref(o);
                return NULL;
        }
        if (o && json_object_set_new(o, "error", m->error[0] ? json_string(m->error) : json_null()) < 0) {
                json_decref(o);
                return NULL;
        }
        return o;
}

static json_t *rfc3339_or_null(int64_t t) {
        if (t <= 0)
                return json_null();
        time_t tt = (time_t) t;
        struct tm tm;
        char buf[32];
        if (!gmtime_r(&tt, &tm) || strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return json_null();
        return json_string(buf);
}

static json_t *nic_to_json(const LaunchNic *n) {
        char mac[18];
        snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1], n->mac[2], n->mac[3],
                 n->mac[4], n->mac[5]);
        json_t *o = json_pack("{s:s, s:s}", "name", n->name ? n->name : "", "mac", mac);
        if (!o)
                return NULL;
        int r = n->kind == NIC_TAP ? json_object_set_new(o, "tap", json_string(n->tap))
                                   : json_object_set_new(o, "pciAddress", json_string(n->pci));
        if (r == 0 && n->kind == NIC_TAP && n->mtu > 0)
                r = json_object_set_new(o, "mtu", json_integer(n->mtu));
        if (r == 0 && n->detaching)
                r = json_object_set_new(o, "state", json_string("detaching"));
        if (r == 0 && n->detach_error[0])
                r = json_object_set_new(o, "detachError", json_string(n->detach_error));
        if (r < 0) {
                json_decref(o);
                return NULL;
        }
        return o;
}

json_t *launch_status_to_json(const LaunchStatus *s) {
        json_t *ifs = json_array();
        if (!ifs)
                return NULL;
        for (size_t i = 0; i < s->n_nics; i++) {
                json_t *n = nic_to_json(&s->nics[i]);
                if (!n || json_array_append_new(ifs, n) < 0) {
                        json_decref(ifs);
                        return NULL;
                }
        }
        json_t *mig = migration_to_json(&s->mig);
        if (!mig) {
                json_decref(ifs);
                return NULL;
        }
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:I, s:b, s:I, s:b, s:I, s:b, s:o}", "phase",
                         launch_phase_to_string(s->phase), "domain", s->domain, "vmi", s->vmi, "accel",
                         launch_accel_to_string(s->accel), "reason", s->reason, "interfaces", ifs, "startedAt",
                         rfc3339_or_null(s->started_at), "finishedAt", rfc3339_or_null(s->finished_at), "pid",
                         (json_int_t) s->pid, "shuttingDown", s->shutting_down, "terminationGracePeriodSeconds",
                         (json_int_t) s->grace_seconds, "migratable", s->migratable, "libvirtReconnects",
                         (json_int_t) s->reconnects, "paused", s->paused, "migration", mig);
}

int launch_status_write(const LaunchStatus *s, const char *path) {
        json_t *j = launch_status_to_json(s);
        if (!j)
                return -ENOMEM;
        size_t len;
        _cleanup_free_ char *line = json_dump_line(j, &len);
        json_decref(j);
        if (!line)
                return -ENOMEM;
        return write_file_atomic(path, line, len, true);
}
