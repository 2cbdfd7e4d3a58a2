/* SPDX-License-Identifier: Apache-2.0 */
/* migration/: parameter parsing (types, ranges, combinations, unknown keys), the typed parameter
 * list handed to virDomainMigrateToURI3, job statistics and the result JSON. No daemon needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "common/json-util.h"
#include "launcher/launcher.h"
#include "migration/migrate.h"

static int parse(const char *text, KvMigrateParams *p, KvErr *e) {
        json_error_t je;
        json_t *o = json_loads(text, 0, &je);
        assert_non_null(o);
        int r = kv_migrate_params_parse(o, "migrate", p, e);
        json_decref(o);
        return r;
}

static void expect_error(const char *text, const char *needle) {
        KvMigrateParams p = { .dest_uri = (char *) "untouched" };
        KvErr e = {};
        int r = parse(text, &p, &e);
        assert_true(r < 0);
        assert_int_equal(e.code, KV_ERR_INVALID_CONFIG);
        if (!strstr(e.msg, needle))
                fail_msg("error '%s' does not contain '%s'", e.msg, needle);
        assert_string_equal(p.dest_uri, "untouched"); /* ret untouched on failure */
}

static void test_defaults(void **state) {
        (void) state;
        KvMigrateParams p = {};
        KvErr e = {};
        assert_int_equal(parse("{\"destUri\":\"qemu+unix:///system?socket=/run/x.sock\"}", &p, &e), 0);
        assert_string_equal(p.dest_uri, "qemu+unix:///system?socket=/run/x.sock");
        assert_true(p.tunnelled);
        assert_null(p.migrate_uri);
        assert_int_equal(p.max_downtime_ms, 0);
        assert_int_equal(p.bandwidth_mibps, 0);
        assert_int_equal(p.timeout_s, KV_MIGRATE_DEFAULT_TIMEOUT_S);
        assert_null(p.dest_serial_log);
        kv_migrate_params_done(&p);
        assert_null(p.dest_uri);
}

static void test_all_fields(void **state) {
        (void) state;
        KvMigrateParams p = {};
        KvErr e = {};
        assert_int_equal(parse("{\"destUri\":\"qemu+tcp://10.0.0.2/system\",\"tunnelled\":false,"
                               "\"migrateUri\":\"tcp:10.0.0.2:49152\",\"maxDowntimeMs\":50,\"bandwidthMiBps\":1,"
                               "\"timeoutSeconds\":20,\"destSerialLog\":\"/tmp/b/serial.log\"}",
                               &p, &e),
                         0);
        assert_false(p.tunnelled);
        assert_string_equal(p.migrate_uri, "tcp:10.0.0.2:49152");
        assert_int_equal(p.max_downtime_ms, 50);
        assert_int_equal(p.bandwidth_mibps, 1);
        assert_int_equal(p.timeout_s, 20);
        assert_string_equal(p.dest_serial_log, "/tmp/b/serial.log");

        json_t *j = kv_migrate_params_to_json(&p);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "migrateUri")), "tcp:10.0.0.2:49152");
        assert_int_equal(json_integer_value(json_object_get(j, "maxDowntimeMs")), 50);
        assert_true(json_is_false(json_object_get(j, "tunnelled")));
        json_decref(j);
        kv_migrate_params_done(&p);
}

static void test_errors(void **state) {
        (void) state;
        expect_error("{}", "'destUri'");
        expect_error("{\"destUri\":5}", "'destUri' must be a string");
        expect_error("{\"destUri\":\"not-a-uri\"}", "'destUri' must be a libvirt URI");
        expect_error("{\"destUri\":\"qemu:///system \"}", "spaces");
        expect_error("{\"destUri\":\"qemu:///system\",\"speed\":1}", "unknown field 'speed'");
        expect_error("{\"destUri\":\"qemu:///system\",\"tunnelled\":\"yes\"}", "'tunnelled'");
        expect_error("{\"destUri\":\"qemu:///system\",\"maxDowntimeMs\":0}", "'maxDowntimeMs' must be 1..600000, got 0");
        expect_error("{\"destUri\":\"qemu:///system\",\"maxDowntimeMs\":1.5}", "'maxDowntimeMs' must be an integer");
        expect_error("{\"destUri\":\"qemu:///system\",\"bandwidthMiBps\":-1}", "'bandwidthMiBps' must be 0..1048576, got -1");
        expect_error("{\"destUri\":\"qemu:///system\",\"timeoutSeconds\":0}", "'timeoutSeconds' must be 1..86400, got 0");
        expect_error("{\"destUri\":\"qemu:///system\",\"timeoutSeconds\":90000}", "got 90000");
        expect_error("{\"destUri\":\"qemu:///system\",\"migrateUri\":\"tcp:1.2.3.4:1\"}", "needs 'tunnelled': false");
        expect_error("{\"destUri\":\"qemu:///system\",\"destSerialLog\":\"rel/serial.log\"}", "'destSerialLog' must be an absolute path");
        expect_error("{\"destUri\":\"qemu:///system\",\"destSerialLog\":\"/tmp/a'b\"}", "'destSerialLog'");
        expect_error("{\"destUri\":\"qemu:///system\",\"destStateDir\":\"state/b\"}",
                     "'destStateDir' must be an absolute path");
        expect_error("{\"destUri\":\"qemu:///system\",\"destStateDir\":\"/run/<b>\"}", "got '/run/<b>'");
        expect_error("{\"destUri\":\"qemu:///system\",\"destStateDir\":\"\"}", "'destStateDir'");
        expect_error("{\"destUri\":\"qemu:///system\",\"destStateDir\":7}", "'destStateDir' must be a string");
        expect_error("{\"destUri\":\"qemu:///system\",\"destStatedir\":\"/x\"}", "unknown field 'destStatedir'");
        char big[KV_MIGRATE_MAX_STATE_DIR + 64];
        snprintf(big, sizeof big, "{\"destUri\":\"qemu:///system\",\"destStateDir\":\"/%0*d\"}",
                 KV_MIGRATE_MAX_STATE_DIR, 0);
        expect_error(big, "'destStateDir' must be an absolute path (< 2048 characters)");

        KvMigrateParams p = {};
        KvErr e = {};
        json_t *arr = json_array();
        assert_true(kv_migrate_params_parse(arr, "migrate", &p, &e) < 0);
        assert_non_null(strstr(e.msg, "must be an object, got array"));
        json_decref(arr);
}

static void test_dest_state_dir(void **state) {
        (void) state;
        KvMigrateParams p = {};
        KvErr e = {};
        assert_int_equal(parse("{\"destUri\":\"qemu:///system\",\"destStateDir\":\"/run/kvnet/b//\"}", &p, &e), 0);
        assert_string_equal(p.dest_state_dir, "/run/kvnet/b"); /* trailing slashes dropped */
        assert_null(p.dest_serial_log);
        json_t *j = kv_migrate_params_to_json(&p);
        assert_string_equal(json_string_value(json_object_get(j, "destStateDir")), "/run/kvnet/b");
        assert_null(json_object_get(j, "destSerialLog"));
        json_decref(j);
        kv_migrate_params_done(&p);
        assert_null(p.dest_state_dir);

        assert_int_equal(parse("{\"destUri\":\"qemu:///system\",\"destStateDir\":\"/\","
                               "\"destSerialLog\":\"/tmp/s.log\"}",
                               &p, &e),
                         0);
        assert_string_equal(p.dest_state_dir, "/");
        assert_string_equal(p.dest_serial_log, "/tmp/s.log");
        kv_migrate_params_done(&p);

        assert_int_equal(parse("{\"destUri\":\"qemu:///system\"}", &p, &e), 0);
        assert_null(p.dest_state_dir);
        kv_migrate_params_done(&p);
}

/* A VMI with a cloudInitNoCloud volume; with_empty adds an emptyDisk named 'scratch'. */
static LaunchVmi *vmi(bool with_empty, const char *state_dir) {
        char text[2048];
        snprintf(text, sizeof text,
                 "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata:\n  name: mig\n"
                 "spec:\n  domain:\n    memory:\n      guest: 128Mi\n    devices:\n      disks:\n"
                 "        - name: ci\n          disk: {bus: virtio}\n%s"
                 "      interfaces:\n        - name: default\n          bridge: {}\n"
                 "  networks:\n    - name: default\n      pod: {}\n"
                 "  volumes:\n    - name: ci\n      cloudInitNoCloud:\n        userData: \"#cloud-config\\n\"\n%s",
                 with_empty ? "        - name: scratch\n          disk: {bus: virtio}\n" : "",
                 with_empty ? "    - name: scratch\n      emptyDisk:\n        capacity: 64Mi\n" : "");
        LaunchOptions o = { .state_dir = state_dir };
        LaunchVmi *v = NULL;
        KvErr e = {};
        if (launch_vmi_parse_text(text, strlen(text), "test", &o, &v, &e) < 0)
                fail_msg("vmi: %s", e.msg);
        return v;
}

static void test_storage_refusal(void **state) {
        (void) state;
        KvErr e = {};
        LaunchVmi *v = vmi(false, "/src");
        assert_int_equal(launch_migration_check_storage(v, "migrate", &e), 0);
        launch_vmi_free(v);

        v = vmi(true, "/src");
        assert_int_equal(launch_migration_check_storage(v, "migrate", &e), -EOPNOTSUPP);
        assert_int_equal(e.code, KV_ERR_INVALID_CONFIG);
        if (!strstr(e.msg, "migrate: volume 'scratch' is an emptyDisk") || !strstr(e.msg, "/src/default_mig/scratch-empty.raw") ||
            !strstr(e.msg, "no block migration") || !strstr(e.msg, "'default/mig'"))
                fail_msg("unexpected refusal: %s", e.msg);
        KvErr e2 = {};
        assert_true(launch_migration_check_storage(v, "--incoming", &e2) < 0);
        assert_true(strncmp(e2.msg, "--incoming: volume 'scratch'", 28) == 0);
        launch_vmi_free(v);
}

static char *replace_all(const char *s, const char *from, const char *to) {
        size_t fl = strlen(from), tl = strlen(to), n = 0;
        for (const char *p = strstr(s, from); p; p = strstr(p + fl, from))
                n++;
        char *out = malloc(strlen(s) + n * tl + 1), *o = out;
        assert_non_null(out);
        for (const char *p = s, *q; *p; p = q + fl) {
                q = strstr(p, from);
                if (!q) {
                        strcpy(o, p);
                        return out;
                }
                memcpy(o, p, (size_t) (q - p));
                o += q - p;
                memcpy(o, to, tl);
                o += tl;
        }
        *o = '\0';
        return out;
}

static void test_dest_xml(void **state) {
        (void) state;
        LaunchVmi *v = vmi(false, "/src");
        LaunchNic *nics = NULL;
        size_t n = 0;
        KvErr e = {};
        assert_int_equal(launch_nics_synthesize(v, NULL, &nics, &n), 0);
        LaunchDomainOptions o = { .accel = LAUNCH_ACCEL_TCG };
        char *src = NULL, *dst = NULL;
        assert_int_equal(launch_domain_xml(v, nics, n, &o, NULL, &src, &e), 0);

        /* nothing given: libvirt keeps the source XML */
        dst = (char *) "untouched";
        assert_int_equal(launch_migration_dest_xml(v, nics, n, LAUNCH_ACCEL_TCG, NULL, NULL, &dst, &e), 0);
        assert_null(dst);

        /* destStateDir: the target's seed ISO and serial log, nothing else changed (ABI check) */
        assert_int_equal(launch_migration_dest_xml(v, nics, n, LAUNCH_ACCEL_TCG, "/dst", NULL, &dst, &e), 0);
        assert_non_null(strstr(dst, "<source file='/dst/default_mig/ci-cidata.iso'/>"));
        assert_non_null(strstr(dst, "<source path='/dst/default_mig/serial.log'"));
        assert_null(strstr(dst, "/src/"));
        char *back = replace_all(dst, "/dst/", "/src/");
        assert_string_equal(back, src);
        free(back);
        free(dst);

        /* destSerialLog wins for the console; the ISO still comes from destStateDir */
        assert_int_equal(launch_migration_dest_xml(v, nics, n, LAUNCH_ACCEL_TCG, "/dst", "/logs/b.log", &dst, &e), 0);
        assert_non_null(strstr(dst, "<source file='/dst/default_mig/ci-cidata.iso'/>"));
        assert_non_null(strstr(dst, "<source path='/logs/b.log'"));
        assert_null(strstr(dst, "/dst/default_mig/serial.log"));
        free(dst);

        /* destSerialLog alone: only the console moves (the seed ISO keeps the source's path) */
        assert_int_equal(launch_migration_dest_xml(v, nics, n, LAUNCH_ACCEL_TCG, NULL, "/logs/b.log", &dst, &e), 0);
        assert_non_null(strstr(dst, "<source file='/src/default_mig/ci-cidata.iso'/>"));
        assert_non_null(strstr(dst, "<source path='/logs/b.log'"));
        free(dst);

        free(src);
        free(nics);
        launch_vmi_free(v);
}

static void test_build(void **state) {
        (void) state;
        KvMigrateParams p = {};
        KvErr e = {};
        assert_int_equal(parse("{\"destUri\":\"qemu+unix:///system?socket=/s\",\"bandwidthMiBps\":7}", &p, &e), 0);
        kv_migrate_params_set_dest_xml(&p, strdup("<domain/>"));
        virTypedParameterPtr params = NULL;
        int n = 0;
        unsigned flags = 0;
        assert_int_equal(kv_migrate_params_build(&p, &params, &n, &flags), 0);
        assert_int_equal(flags, VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_TUNNELLED);
        assert_int_equal(n, 2);
        const char *s = NULL;
        unsigned long long bw = 0;
        assert_int_equal(virTypedParamsGetString(params, n, VIR_MIGRATE_PARAM_DEST_XML, &s), 1);
        assert_string_equal(s, "<domain/>");
        assert_int_equal(virTypedParamsGetULLong(params, n, VIR_MIGRATE_PARAM_BANDWIDTH, &bw), 1);
        assert_int_equal(bw, 7);
        assert_int_equal(virTypedParamsGetString(params, n, VIR_MIGRATE_PARAM_URI, &s), 0);
        virTypedParamsFree(params, n);
        kv_migrate_params_done(&p);

        /* direct: no tunnel flag, the data URI is passed, unlimited bandwidth is not */
        assert_int_equal(parse("{\"destUri\":\"qemu+tcp://h/system\",\"tunnelled\":false,\"migrateUri\":\"tcp:h:1\"}",
                               &p, &e),
                         0);
        assert_int_equal(kv_migrate_params_build(&p, &params, &n, &flags), 0);
        assert_int_equal(flags, VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER);
        assert_int_equal(n, 1);
        assert_int_equal(virTypedParamsGetString(params, n, VIR_MIGRATE_PARAM_URI, &s), 1);
        assert_string_equal(s, "tcp:h:1");
        assert_int_equal(virTypedParamsGetULLong(params, n, VIR_MIGRATE_PARAM_BANDWIDTH, &bw), 0);
        virTypedParamsFree(params, n);
        /* the caller checked the storage itself: libvirt's shared-storage check is skipped */
        p.storage_checked = true;
        assert_int_equal(kv_migrate_params_build(&p, &params, &n, &flags), 0);
        assert_int_equal(flags, VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_UNSAFE);
        virTypedParamsFree(params, n);
        kv_migrate_params_done(&p);
        assert_false(p.storage_checked);
}

static void test_stats_and_json(void **state) {
        (void) state;
        virTypedParameterPtr params = NULL;
        int n = 0, max = 0;
        KvMigrateResult r = { .ok = true };
        assert_int_equal(kv_migrate_stats_from_params(params, n, &r), 0);
        assert_false(r.have_stats);
        assert_int_equal(virTypedParamsAddULLong(&params, &n, &max, VIR_DOMAIN_JOB_TIME_ELAPSED, 1234), 0);
        assert_int_equal(virTypedParamsAddULLong(&params, &n, &max, VIR_DOMAIN_JOB_DOWNTIME, 37), 0);
        assert_int_equal(virTypedParamsAddULLong(&params, &n, &max, VIR_DOMAIN_JOB_DATA_PROCESSED, 1u << 20), 0);
        assert_int_equal(virTypedParamsAddULLong(&params, &n, &max, VIR_DOMAIN_JOB_MEMORY_ITERATION, 3), 0);
        assert_int_equal(kv_migrate_stats_from_params(params, n, &r), 1);
        virTypedParamsFree(params, n);
        assert_true(r.have_stats);
        assert_int_equal(r.total_ms, 1234);
        assert_int_equal(r.downtime_ms, 37);
        assert_int_equal(r.data_bytes, 1u << 20);
        assert_int_equal(r.memory_iterations, 3);

        json_t *j = kv_migrate_result_to_json(&r);
        assert_non_null(j);
        assert_int_equal(json_integer_value(json_object_get(j, "downtimeMs")), 37);
        assert_int_equal(json_integer_value(json_object_get(j, "totalMs")), 1234);
        assert_true(json_is_true(json_object_get(j, "ok")));
        assert_true(json_is_null(json_object_get(j, "error")));
        json_decref(j);

        KvMigrateResult f = { .timed_out = true };
        snprintf(f.error, sizeof f.error, "timed out after 5 s");
        j = kv_migrate_result_to_json(&f);
        assert_string_equal(json_string_value(json_object_get(j, "error")), "timed out after 5 s");
        assert_true(json_is_true(json_object_get(j, "timedOut")));
        json_decref(j);
}

/* The launcher's status: new phases and the "migration" object. */
static void test_status_json(void **state) {
        (void) state;
        assert_string_equal(launch_phase_to_string(LAUNCH_PHASE_MIGRATED), "Migrated");
        assert_string_equal(launch_phase_to_string(LAUNCH_PHASE_WAITING_FOR_MIGRATION), "WaitingForMigration");
        LaunchStatus st = { .phase = LAUNCH_PHASE_RUNNING, .migratable = true };
        json_t *j = launch_status_to_json(&st);
        assert_non_null(j);
        assert_true(json_is_null(json_object_get(j, "migration")));
        assert_true(json_is_true(json_object_get(j, "migratable")));
        json_decref(j);

        st.mig = (LaunchMigrationStatus){ .state = LAUNCH_MIG_FAILED, .started_at_ms = 1700000000123,
                                          .downtime_ms = 12, .have_stats = true };
        snprintf(st.mig.dest, sizeof st.mig.dest, "qemu+unix:///system?socket=/x");
        snprintf(st.mig.error, sizeof st.mig.error, "End of file");
        j = launch_status_to_json(&st);
        json_t *m = json_object_get(j, "migration");
        assert_string_equal(json_string_value(json_object_get(m, "state")), "failed");
        assert_string_equal(json_string_value(json_object_get(m, "role")), "source");
        assert_string_equal(json_string_value(json_object_get(m, "dest")), "qemu+unix:///system?socket=/x");
        assert_string_equal(json_string_value(json_object_get(m, "startedAt")), "2023-11-14T22:13:20.123Z");
        assert_true(json_is_null(json_object_get(m, "finishedAt")));
        assert_int_equal(json_integer_value(json_object_get(m, "downtimeMs")), 12);
        assert_string_equal(json_string_value(json_object_get(m, "error")), "End of file");
        assert_true(json_is_null(json_object_get(m, "pausedAtUs")));
        assert_true(json_is_null(json_object_get(m, "resumedAtUs")));
        json_decref(j);

        st.mig.paused_at_us = 1700000000123456;
        j = launch_status_to_json(&st);
        m = json_object_get(j, "migration");
        assert_true(json_integer_value(json_object_get(m, "pausedAtUs")) == 1700000000123456);
        json_decref(j);
        st.mig.paused_at_us = 0;

        st.mig.incoming = true;
        st.mig.state = LAUNCH_MIG_PENDING;
        st.mig.error[0] = '\0';
        j = launch_status_to_json(&st);
        m = json_object_get(j, "migration");
        assert_string_equal(json_string_value(json_object_get(m, "role")), "target");
        assert_string_equal(json_string_value(json_object_get(m, "state")), "pending");
        assert_true(json_is_null(json_object_get(m, "error")));
        json_decref(j);
}

static void test_tcg_warning(void **state) {
        (void) state;
        const char *w = launch_migration_tcg_warning(LAUNCH_ACCEL_TCG, 7002022UL);
        assert_non_null(w);
        assert_non_null(strstr(w, "QEMU 7.2.22 under TCG"));
        assert_non_null(strstr(w, "qemu-tcg-wrapper"));
        assert_non_null(launch_migration_tcg_warning(LAUNCH_ACCEL_TCG, 8002001UL));
        assert_null(launch_migration_tcg_warning(LAUNCH_ACCEL_TCG, 9000000UL));
        assert_null(launch_migration_tcg_warning(LAUNCH_ACCEL_TCG, 10001002UL));
        assert_null(launch_migration_tcg_warning(LAUNCH_ACCEL_KVM, 7002022UL));
        assert_null(launch_migration_tcg_warning(LAUNCH_ACCEL_TCG, 0));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults), cmocka_unit_test(test_all_fields), cmocka_unit_test(test_errors),
                cmocka_unit_test(test_dest_state_dir), cmocka_unit_test(test_storage_refusal),
                cmocka_unit_test(test_dest_xml),
                cmocka_unit_test(test_build),    cmocka_unit_test(test_stats_and_json),
                cmocka_unit_test(test_status_json),  cmocka_unit_test(test_tcg_warning),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
