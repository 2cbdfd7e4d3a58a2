/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet live migration through libvirt (docs/migration.md).
 *
 * Parameters come from one JSON object (the launcher's {"op":"migrate","args":{...}}), parsed in
 * one place into KvMigrateParams (types, ranges, combinations; unknown keys rejected):
 *   destUri         string, required   libvirt URI the *source daemon* opens (peer-to-peer), e.g.
 *                                      qemu+unix:///system?socket=/run/kvnet/mig/node2.sock
 *   migrateUri      string             QEMU's data URI (tcp:ADDR:PORT); only with tunnelled false
 *   tunnelled       bool (true)        VIR_MIGRATE_TUNNELLED: the data goes over the libvirt connection
 *   maxDowntimeMs   1..600000          virDomainMigrateSetMaxDowntime (absent: QEMU's default, 300 ms)
 *   bandwidthMiBps  0..1048576 (0)     VIR_MIGRATE_PARAM_BANDWIDTH, 0 = unlimited
 *   timeoutSeconds  1..86400 (300)     watchdog: virDomainAbortJob when it passes
 *   destSerialLog   absolute path      the target QEMU's serial log (the caller builds the dest XML)
 *   destStateDir    absolute path      the target launcher's --state-dir: the dest XML names the
 *                                      target's per-VM files (serial log, seed ISOs) under it
 * Flags are always VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER (+ TUNNELLED, + UNSAFE when the caller
 * checked the storage itself: storage_checked).
 *
 * kv_migrate_run() blocks (call it from a worker thread; libvirt connections are thread safe). */
#pragma once

#include <jansson.h>
#include <libvirt/libvirt.h>
#include <stdint.h>

#include "common/kverr.h"
#include "common/util.h"

#define KV_MIGRATE_DEFAULT_TIMEOUT_S 300
#define KV_MIGRATE_MAX_URI 1024
#define KV_MIGRATE_MAX_STATE_DIR 2048

typedef struct KvMigrateParams {
        char *dest_uri;
        char *migrate_uri;      /* NULL = libvirt picks (or the tunnel) */
        bool tunnelled;
        uint32_t max_downtime_ms; /* 0 = not set */
        uint64_t bandwidth_mibps; /* 0 = unlimited */
        uint32_t timeout_s;
        char *dest_serial_log;  /* NULL = not given; wins over dest_state_dir for the serial log */
        char *dest_state_dir;   /* NULL = not given; no trailing '/' */
        char *dest_xml;         /* not parsed from JSON: set by the caller (VIR_MIGRATE_PARAM_DEST_XML) */
        /* Not parsed from JSON: the caller classified every disk itself (images at the same path on
         * both nodes, seed ISOs rebuilt by the target, node-local writable disks refused) and takes
         * over libvirt's shared-storage check, which refuses any writable disk on a local file
         * system: VIR_MIGRATE_UNSAFE. */
        bool storage_checked;
} KvMigrateParams;

/* Parses 'obj' (ctx names it in errors, e.g. "migrate"). *ret is overwritten only on success;
 * release it with kv_migrate_params_done(). */
int kv_migrate_params_parse(json_t *obj, const char *ctx, KvMigrateParams *ret, KvErr *e) _wur_;
void kv_migrate_params_done(KvMigrateParams *p);
/* Takes ownership of xml (may be NULL). */
void kv_migrate_params_set_dest_xml(KvMigrateParams *p, char *xml);
/* Back to JSON (without destXml), e.g. to log or echo the request. */
json_t *kv_migrate_params_to_json(const KvMigrateParams *p);

/* The virDomainMigrateToURI3() arguments. Free *ret_params with virTypedParamsFree(*ret_params, *ret_n). */
int kv_migrate_params_build(const KvMigrateParams *p, virTypedParameterPtr *ret_params, int *ret_n,
                            unsigned int *ret_flags) _wur_;

typedef struct KvMigrateResult {
        bool ok;
        bool timed_out;     /* the watchdog aborted the job */
        bool have_stats;    /* the fields below come from libvirt's completed job statistics */
        uint64_t total_ms;  /* VIR_DOMAIN_JOB_TIME_ELAPSED */
        uint64_t downtime_ms; /* VIR_DOMAIN_JOB_DOWNTIME: QEMU's switchover pause */
        uint64_t data_bytes;  /* VIR_DOMAIN_JOB_DATA_PROCESSED */
        uint64_t memory_iterations; /* VIR_DOMAIN_JOB_MEMORY_ITERATION */
        uint64_t wall_ms;     /* measured around virDomainMigrateToURI3 */
        char error[512];      /* libvirt's message on failure */
} KvMigrateResult;

/* Fills the statistics from a job stats list (virDomainGetJobStats, or the JOB_COMPLETED event).
 * Returns 1 when anything useful (elapsed time or downtime) was found, 0 otherwise. */
int kv_migrate_stats_from_params(virTypedParameterPtr params, int n, KvMigrateResult *r);

/* Sets the max downtime, runs virDomainMigrateToURI3 with a watchdog that calls virDomainAbortJob
 * after p->timeout_s, then reads the completed job statistics when the domain is still known to the
 * source (a transient domain that migrated away is not: callers may complete *ret from the
 * VIR_DOMAIN_EVENT_ID_JOB_COMPLETED event). *ret is always filled. Returns 0 on success, -ETIMEDOUT
 * when the watchdog fired, -EIO on any other libvirt failure (message in ret->error). */
int kv_migrate_run(virDomainPtr dom, const KvMigrateParams *p, KvMigrateResult *ret);

/* {"ok","totalMs","downtimeMs","dataBytes","memoryIterations","wallMs","stats":bool,"timedOut", "error"} */
json_t *kv_migrate_result_to_json(const KvMigrateResult *r);
