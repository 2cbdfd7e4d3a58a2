/* SPDX-License-Identifier: Apache-2.0 */
/* netd's manager without the kernel: its answers to requests that must fail before anything is
 * changed, and the sriov binding on a fake sysfs tree with the recording netlink sink. */
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/tmpdir.h"

#include "common/json-util.h"
#include "netd/core/netd-priv.h"
#include "tests/unit/helpers.h"
#include "tests/unit/netd-requests.h"

static void rm_rf(const char *dir) {
        assert_int_equal(tmpdir_remove(dir), 0);
}

/* The requests name "/proc/self/ns/net" as their sandbox; netd refuses its own namespace as one, so they go to a
 * namespace of their own: a child's fresh one, "/proc/PID/ns/net" (sbx_start() in main; "" when it cannot be made). */
static char sbx[64];
static pid_t sbx_pid;

static void sbx_start(void) {
        int p[2];
        if (pipe(p) < 0)
                return;
        pid_t pid = fork();
        if (pid == 0) {
                char c = unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
                IGNORE_RESULT(write(p[1], &c, 1));
                pause();
                _exit(0);
        }
        char c = 'n';
        if (pid > 0 && read(p[0], &c, 1) == 1 && c == 'y') {
                sbx_pid = pid;
                snprintf(sbx, sizeof sbx, "/proc/%d/ns/net", (int) pid);
        } else if (pid > 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
        }
        close(p[0]);
        close(p[1]);
}

static void sbx_stop(void) {
        if (sbx_pid > 0) {
                kill(sbx_pid, SIGKILL);
                waitpid(sbx_pid, NULL, 0);
        }
}

/* text with every "/proc/self/ns/net" replaced by the sandbox's path (malloc'ed) */
static char *with_sbx(const char *text) {
        static const char self[] = "/proc/self/ns/net";
        char *out = malloc(strlen(text) * 2 + sizeof sbx + 1), *o = out;
        assert_non_null(out);
        for (const char *t = text; *t;) {
                if (sbx[0] && !strncmp(t, self, sizeof self - 1)) {
                        o = stpcpy(o, sbx);
                        t += sizeof self - 1;
                } else
                        *o++ = *t++;
        }
        *o = '\0';
        return out;
}

static json_t *call(Manager *m, const char *raw) {
        _cleanup_free_ char *text = with_sbx(raw);
        json_t *req = test_json(text);
        json_t *reply = manager_handle(m, req);
        json_decref(req);
        assert_non_null(reply);
        return reply;
}

static void expect_fail(Manager *m, const char *text, int code, const char *needle) {
        _cleanup_json_ json_t *reply = call(m, text);
        const char *msg = json_string_value(json_object_get(reply, "msg"));
        if (!json_is_false(json_object_get(reply, "ok")) || json_integer_value(json_object_get(reply, "code")) != code ||
            !msg || !strstr(msg, needle)) {
                _cleanup_free_ char *s = json_dumps(reply, JSON_COMPACT);
                fail_msg("request %s: reply %s, wanted code %d with '%s'", text, s, code, needle);
        }
}

static json_t *expect_ok(Manager *m, const char *text) {
        json_t *reply = call(m, text);
        if (!json_is_true(json_object_get(reply, "ok"))) {
                _cleanup_free_ char *s = json_dumps(reply, JSON_COMPACT);
                fail_msg("request %s: reply %s", text, s);
        }
        json_t *res = json_incref(json_object_get(reply, "result"));
        json_decref(reply);
        return res;
}

static void write_text(const char *path, const char *text) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

#define SR_ADD(cid)                                                                                                 \
        "{\"op\":\"add\",\"args\":{\"containerID\":\"" cid "\",\"ifname\":\"net1\",\"netns\":\"/proc/self/ns/net\"," \
        SRIOV_VM "," SRIOV_NET "}}"
#define SR_VERB(verb, cid)                                                                                          \
        "{\"op\":\"" verb "\",\"args\":{\"containerID\":\"" cid "\",\"ifname\":\"net1\",\"netns\":\"/proc/self/ns/net\"," \
        SRIOV_VM ",\"network\":{\"name\":\"srnet\"}}}"

/* binding sriov through the manager on a fake sysfs tree with the recording netlink sink: no kernel
 * involved (netns is our own, opened only; no links, no NAT for a VF). manager_start is not run (it
 * touches the kernel), so the test creates the allocator from the parsed config as sriov_start would. */
static void test_manager_sriov(void **state) {
        (void) state;
        if (!sbx[0]) {
                print_message("no network namespace of its own for the sandbox (unshare needs root): skipped\n");
                skip();
                return;
        }
        char dir[] = "/tmp/kvnet-test-mgr-sriov.XXXXXX";
        assert_non_null(mkdtemp(dir));
        char sys[PATH_MAX], statedir[PATH_MAX], conf[PATH_MAX], cmd[PATH_MAX * 3];
        snprintf(sys, sizeof sys, "%s/sys", dir);
        snprintf(statedir, sizeof statedir, "%s/state", dir);
        snprintf(conf, sizeof conf, "%s/netd.json", dir);
        const char *src = getenv("KVNET_SRCDIR");
        snprintf(cmd, sizeof cmd, "%s/tests/tools/mk-fake-sysfs.sh '%s' ens1f0,0000:3b:00.0,4,2,iavf,10 >/dev/null",
                 src ? src : ".", sys);
        assert_int_equal(system(cmd), 0);

        /* config errors first */
        NetdOptions o = { .socket_path = "/nonexistent.sock", .state_dir = statedir, .config_path = conf };
        Manager *m = NULL;
        KvErr e = {};
        write_text(conf, "{\"sriovPools\":[{\"resourceName\":\"intel.com/a\",\"pfs\":[\"ens1f0\"],\"vlan\":3}]}");
        assert_true(manager_new(&o, NULL, &m, &e) < 0);
        assert_int_equal(e.code, KV_ERR_INVALID_CONFIG);
        assert_non_null(strstr(e.msg, "sriovPools[0]: unknown field 'vlan'"));
        e = (KvErr) {};
        write_text(conf, "{\"sysfsRoot\":\"sys\"}");
        assert_true(manager_new(&o, NULL, &m, &e) < 0);
        assert_non_null(strstr(e.msg, "'sysfsRoot' must be an absolute path, got 'sys'"));
        e = (KvErr) {};
        write_text(conf, "{\"sriovSimulate\":\"yes\"}");
        assert_true(manager_new(&o, NULL, &m, &e) < 0);
        assert_non_null(strstr(e.msg, "'sriovSimulate'"));

        /* a node without pools */
        e = (KvErr) {};
        write_text(conf, "{}");
        assert_int_equal(manager_new(&o, NULL, &m, &e), 0);
        expect_fail(m, SR_ADD("c1"), KV_ERR_INVALID_CONFIG,
                    "no SR-IOV pools configured on this node (netd config 'sriovPools')");
        m = manager_free(m);

        char text[PATH_MAX * 2];
        snprintf(text, sizeof text,
                 "{\"sriovPools\":[{\"resourceName\":\"intel.com/sriov_a\",\"pfs\":[\"ens1f0\"],\"bindVfio\":false}],"
                 "\"sysfsRoot\":\"%s\",\"sriovSimulate\":true,"
                 /* the request below asks for spoofchk off and trust: the node policy must allow both */
                 "\"policy\":{\"allowSpoofchkOff\":true,\"allowTrust\":true}}",
                 sys);
        write_text(conf, text);
        assert_int_equal(manager_new(&o, NULL, &m, &e), 0);
        assert_int_equal(m->n_sriov_pools, 1);
        assert_true(m->sriov_simulate);
        assert_string_equal(m->sysfs_root, sys);
        assert_int_equal(sriov_nl_sink_new(&m->sriov_sink), 0);
        assert_int_equal(sriov_new(m->sysfs_root, m->state_dir, m->sriov_pools, m->n_sriov_pools, &m->sriov_sink->ops,
                                   &m->sriov, &e),
                         0);
        assert_int_equal(sriov_load(m->sriov, &e), 0);
        char epdir[PATH_MAX + 16];
        snprintf(epdir, sizeof epdir, "%s/endpoints", statedir);
        assert_int_equal(mkdir(epdir, 0700), 0); /* manager_start's endpoint_load_all would create it */

        /* ADD: the VF, the claim's IP and MAC, pciID in the result; the sink saw the VF configuration */
        _cleanup_json_ json_t *r1 = expect_ok(m, SR_ADD("c1"));
        json_t *if0 = json_array_get(json_object_get(r1, "interfaces"), 0);
        assert_int_equal(json_array_size(json_object_get(r1, "interfaces")), 1);
        assert_string_equal(json_string_value(json_object_get(if0, "name")), "net1");
        assert_string_equal(json_string_value(json_object_get(if0, "pciID")), "0000:3b:02.0");
        assert_string_equal(json_string_value(json_object_get(if0, "sandbox")), sbx);
        json_t *ip0 = json_array_get(json_object_get(r1, "ips"), 0);
        assert_string_equal(json_string_value(json_object_get(ip0, "gateway")), "10.99.0.1");
        assert_int_equal(json_integer_value(json_object_get(ip0, "interface")), 0);
        assert_int_equal(m->sriov_sink->n_records, 1);
        const SriovVfConfig *vc = &m->sriov_sink->records[0].config;
        assert_int_equal(vc->vf, 0);
        assert_int_equal(vc->vlan, 100);
        assert_false(vc->spoofchk);
        assert_true(vc->trust);
        uint8_t mac[6];
        assert_int_equal(kv_mac_parse(json_string_value(json_object_get(if0, "mac")), mac), 0);
        assert_memory_equal(vc->mac, mac, 6);
        SriovVf *vf = sriov_find(m->sriov, "srnet/c1/net1");
        assert_non_null(vf);
        assert_string_equal(vf->pci, "0000:3b:02.0");

        /* CHECK passes; a second sandbox of the same VM gets the second VF, same IP and MAC */
        _cleanup_json_ json_t *ck = expect_ok(m, SR_VERB("check", "c1"));
        _cleanup_json_ json_t *r2 = expect_ok(m, SR_ADD("c2"));
        json_t *if1 = json_array_get(json_object_get(r2, "interfaces"), 0);
        assert_string_equal(json_string_value(json_object_get(if1, "pciID")), "0000:3b:02.1");
        assert_string_equal(json_string_value(json_object_get(if1, "mac")), json_string_value(json_object_get(if0, "mac")));
        assert_true(json_equal(json_object_get(r2, "ips"), json_object_get(r1, "ips")));
        /* pool exhausted: 100, and the new claim is released */
        expect_fail(m, "{\"op\":\"add\",\"args\":{\"containerID\":\"c3\",\"ifname\":\"net1\",\"netns\":\"/proc/self/ns/net\","
                       "\"vm\":{\"name\":\"vm3\"}," SRIOV_NET "}}",
                    KV_ERR_IPAM_EXHAUSTED, "pool 'intel.com/sriov_a' is exhausted");
        _cleanup_json_ json_t *ipam = expect_ok(m, "{\"op\":\"ipam\"}");
        assert_int_equal(json_array_size(json_object_get(ipam, "claims")), 1);

        /* DEL whose release fails keeps everything for a retry */
        m->sriov_sink->fail_with = -EIO;
        expect_fail(m, SR_VERB("del", "c2"), KV_ERR_INTERNAL, "cannot release VF 0000:3b:02.1");
        assert_non_null(sriov_find(m->sriov, "srnet/c2/net1"));
        m->sriov_sink->fail_with = 0;
        _cleanup_json_ json_t *d2 = expect_ok(m, SR_VERB("del", "c2"));
        assert_null(sriov_find(m->sriov, "srnet/c2/net1"));
        _cleanup_json_ json_t *d2b = expect_ok(m, SR_VERB("del", "c2")); /* again: fine */

        /* ADD whose VF configuration fails: rolled back (VF and new claim) */
        m->sriov_sink->fail_with = -EOPNOTSUPP;
        expect_fail(m, "{\"op\":\"add\",\"args\":{\"containerID\":\"c4\",\"ifname\":\"net1\",\"netns\":\"/proc/self/ns/net\","
                       "\"vm\":{\"name\":\"vm4\"}," SRIOV_NET "}}",
                    KV_ERR_INTERNAL, "configure VF 1 of PF 'ens1f0'");
        m->sriov_sink->fail_with = 0;
        assert_null(sriov_find(m->sriov, "srnet/c4/net1"));
        _cleanup_json_ json_t *ipam2 = expect_ok(m, "{\"op\":\"ipam\"}");
        assert_int_equal(json_array_size(json_object_get(ipam2, "claims")), 1);

        /* unknown resource: the allocator's message */
        expect_fail(m, "{\"op\":\"add\",\"args\":{\"containerID\":\"c5\",\"ifname\":\"net1\",\"netns\":\"/proc/self/ns/net\","
                       "\"vm\":{\"name\":\"vm5\"},\"network\":{\"name\":\"srnet\",\"binding\":\"sriov\","
                       "\"resourceName\":\"intel.com/nope\",\"ipam\":{\"ranges\":[[{\"subnet\":\"10.99.0.0/24\"}]]}}}}",
                    KV_ERR_INVALID_CONFIG, "unknown resourceName 'intel.com/nope'; configured: 'intel.com/sriov_a'");

        /* kvnetctl's views */
        _cleanup_json_ json_t *eps = expect_ok(m, "{\"op\":\"endpoints\"}");
        json_t *e0 = json_array_get(json_object_get(eps, "endpoints"), 0);
        assert_int_equal(json_array_size(json_object_get(eps, "endpoints")), 1);
        assert_string_equal(json_string_value(json_object_get(e0, "pciAddress")), "0000:3b:02.0");
        _cleanup_json_ json_t *sr = expect_ok(m, "{\"op\":\"sriov\"}");
        assert_true(json_is_true(json_object_get(sr, "simulated")));
        assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(sr, "pools"), 0), "allocated")), 1);
        _cleanup_json_ json_t *st = expect_ok(m, "{\"op\":\"status-daemon\"}");
        json_t *sp = json_array_get(json_object_get(json_object_get(st, "sriov"), "pools"), 0);
        assert_int_equal(json_integer_value(json_object_get(sp, "total")), 2);
        assert_int_equal(json_integer_value(json_object_get(sp, "free")), 1);

        /* CHECK notices a VF gone from sysfs */
        char vfl[PATH_MAX + 64], saved[PATH_MAX + 64];
        snprintf(vfl, sizeof vfl, "%s/devices/pci0000:00/0000:3b:00.0/virtfn0", sys);
        snprintf(saved, sizeof saved, "%s/virtfn0.saved", dir);
        assert_int_equal(rename(vfl, saved), 0);
        expect_fail(m, SR_VERB("check", "c1"), KV_ERR_INTERNAL, "is gone from sysfs");
        assert_int_equal(rename(saved, vfl), 0);

        /* GC removes it like DEL */
        _cleanup_json_ json_t *gc = expect_ok(m, "{\"op\":\"gc\",\"args\":{\"network\":\"srnet\",\"validAttachments\":[]}}");
        assert_int_equal(json_integer_value(json_object_get(gc, "removed")), 1);
        assert_null(sriov_find(m->sriov, "srnet/c1/net1"));
        /* the VM's claim stays (sticky), idle */
        _cleanup_json_ json_t *ipam3 = expect_ok(m, "{\"op\":\"ipam\"}");
        assert_int_equal(json_array_size(json_object_get(ipam3, "claims")), 1);
        manager_free(m);
        rm_rf(dir);
}

/* The manager answers bad requests with an error and changes nothing. No kernel involved: every case
 * fails in validation before netd would open a namespace. */
static void test_manager_rejects(void **state) {
        (void) state;
        char dir[] = "/tmp/kvnet-test-mgr.XXXXXX";
        assert_non_null(mkdtemp(dir));
        NetdOptions o = { .socket_path = "/nonexistent.sock", .state_dir = dir, .durable = false };
        Manager *m = NULL;
        KvErr e = {};
        assert_int_equal(manager_new(&o, NULL, &m, &e), 0);

        const char *bad[] = {
                "{\"op\":42}",
                "{\"op\":\"frobnicate\"}",
                "{\"op\":\"add\",\"args\":[]}",
                "{\"op\":\"add\",\"args\":{\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/nonexistent/ns\","
                BASE_NET "}}",
                "{\"op\":\"gc\",\"args\":{}}",
                "{\"op\":\"gc\",\"args\":{\"network\":\"n\",\"validAttachments\":[{\"containerID\":1}]}}",
                "{\"op\":\"ipam-release\",\"args\":{\"network\":\"n\",\"key\":\"vm/x/y/z\"}}",
        };
        const int codes[] = { KV_ERR_DECODE, KV_ERR_DECODE, KV_ERR_DECODE, KV_ERR_INVALID_ENV,
                              KV_ERR_INVALID_CONFIG, KV_ERR_INVALID_CONFIG, KV_ERR_UNKNOWN_CONTAINER };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                json_t *req = test_json(bad[i]);
                json_t *reply = manager_handle(m, req);
                assert_non_null(reply);
                if (!json_is_false(json_object_get(reply, "ok")) ||
                    json_integer_value(json_object_get(reply, "code")) != codes[i])
                        fail_msg("request %s: reply %s", bad[i], json_dumps(reply, JSON_COMPACT));
                json_decref(reply);
                json_decref(req);
        }
        /* The failed ADD (netns missing) left no claim behind. */
        json_t *req = test_json("{\"op\":\"ipam\"}");
        json_t *reply = manager_handle(m, req);
        assert_int_equal(json_array_size(json_object_get(json_object_get(reply, "result"), "claims")), 0);
        json_decref(reply);
        json_decref(req);
        /* DEL of something unknown succeeds. */
        req = test_json("{\"op\":\"del\",\"args\":{\"containerID\":\"nope\",\"ifname\":\"eth0\","
                        "\"network\":{\"name\":\"vmnet\"}}}");
        reply = manager_handle(m, req);
        assert_true(json_is_true(json_object_get(reply, "ok")));
        json_decref(reply);
        json_decref(req);
        manager_free(m);
        rm_rf(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_manager_rejects),
                cmocka_unit_test(test_manager_sriov),
        };
        sbx_start();
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        sbx_stop();
        return r;
}
