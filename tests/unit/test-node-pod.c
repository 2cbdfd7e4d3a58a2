/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of node/'s pod runtime (node/pod.h): the pod record's round trip and every bad record,
 * the pod spec's validation, the launcher status parse, the node config's checks (a state dir too long
 * for the pod's sockets), process identity by start time, the CNI result accessors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <limits.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/fileio.h"
#include "common/unixsock.h"
#include "node/pod-priv.h"
#include "helpers.h"
#include "tmpdir.h"

#define RESULT                                                                                                       \
        "{\"cniVersion\":\"1.1.0\",\"interfaces\":[{\"name\":\"kvbe529d84\",\"mac\":\"9e:f9:1a:aa:ea:b1\"},"        \
        "{\"name\":\"tap0\",\"mac\":\"02:f3:d7:c9:24:26\",\"sandbox\":\"/run/netns/kvpod-0123456789abcdef\"}],"     \
        "\"ips\":[{\"address\":\"fd88::5/64\",\"interface\":1},{\"address\":\"10.88.0.5/24\",\"gateway\":\"10.88.0.1\"," \
        "\"interface\":1}],\"routes\":[{\"dst\":\"0.0.0.0/0\"}]}"

static const NodePodSpec spec_ok = {
        .namespace_ = "default",
        .name = "virt-launcher-vm1-abcde",
        .uid = "0c5e1a2b-1111-4222-8333-444455556666",
        .vmi_json = "{\"kind\":\"VirtualMachineInstance\"}",
        .vm_namespace = "default",
        .vm_name = "vm1",
        .binding = NODE_POD_BINDING_MASQUERADE,
        .incoming = true,
        .incoming_timeout_s = 120,
        .grace_seconds = 20,
};

static NodePod *full_pod(void) {
        NodePod *p = NULL;
        assert_int_equal(node_pod_new(&spec_ok, "node1", "/run/kvnet-node", &p), 0);
        snprintf(p->sandbox_name, sizeof p->sandbox_name, "kvpod-0123456789abcdef");
        p->sandbox_dev = 4;
        p->sandbox_ino = 4026532999ull;
        p->network = strdup("kvcluster");
        p->cni_result = strdup(RESULT);
        free(p->libvirt_uri);
        p->libvirt_uri = strdup("qemu+unix:///system?socket=/proc/42/root/run/libvirt/libvirt-sock");
        p->libvirtd = (NodeProc) { .pid = 42, .start_time = 1234567 };
        p->launcher = (NodeProc) { .pid = 43, .start_time = 1234599 };
        p->state = NODE_POD_RUNNING;
        assert_int_equal(node_pod_derive(p, "/run/kvnet-node", NULL), 0);
        return p;
}

static void test_record_roundtrip(void **state) {
        (void) state;
        NodePod *p = full_pod(), *q = NULL;
        char *a = NULL, *b = NULL;
        NodeErr e = { 0 };
        assert_int_equal(node_pod_record_encode(p, &a), 0);
        assert_int_equal(node_pod_record_decode(a, strlen(a), "t", "/run/kvnet-node", &q, &e), 0);
        assert_string_equal(q->namespace_, "default");
        assert_string_equal(q->name, "virt-launcher-vm1-abcde");
        assert_string_equal(q->uid, spec_ok.uid);
        assert_string_equal(q->node_name, "node1");
        assert_string_equal(q->vm_namespace, "default");
        assert_string_equal(q->vm_name, "vm1");
        assert_string_equal(q->vm_interface, "default");
        assert_string_equal(q->ifname, "tap0");
        assert_int_equal(q->binding, NODE_POD_BINDING_MASQUERADE);
        assert_true(q->incoming);
        assert_int_equal(q->incoming_timeout_s, 120);
        assert_int_equal(q->grace_seconds, 20);
        assert_int_equal(q->state, NODE_POD_RUNNING);
        assert_int_equal(q->created_ms, p->created_ms);
        assert_string_equal(q->sandbox_name, "kvpod-0123456789abcdef");
        assert_string_equal(q->sandbox_path, "/run/netns/kvpod-0123456789abcdef");
        assert_int_equal(q->sandbox_dev, 4);
        assert_int_equal(q->sandbox_ino, 4026532999ull);
        assert_string_equal(q->network, "kvcluster");
        assert_string_equal(q->libvirt_uri, p->libvirt_uri);
        assert_int_equal(q->libvirtd.pid, 42);
        assert_int_equal(q->libvirtd.start_time, 1234567);
        assert_int_equal(q->launcher.pid, 43);
        assert_int_equal(q->launcher.start_time, 1234599);
        assert_string_equal(q->dir, "/run/kvnet-node/pods/0c5e1a2b-1111-4222-8333-444455556666");
        assert_string_equal(node_pod_launcher_socket(q), "/run/kvnet-node/pods/0c5e1a2b-1111-4222-8333-444455556666/launcher.sock");
        /* the typed result survives, and so do the accessors */
        assert_string_equal(node_pod_ip4(q), "10.88.0.5");
        assert_string_equal(node_pod_ip6(q), "fd88::5");
        assert_string_equal(node_pod_mac(q), "02:f3:d7:c9:24:26");
        assert_int_equal(node_pod_cni_result(q)->n_ips, 2);
        /* stable: the decoded record encodes to the same text */
        assert_int_equal(node_pod_record_encode(q, &b), 0);
        assert_string_equal(a, b);
        free(a);
        free(b);
        node_pod_free(p);
        node_pod_free(q);
}

static void test_record_fresh(void **state) {
        (void) state;
        /* a record written right at the start: no sandbox, result or processes yet */
        NodePod *p = NULL, *q = NULL;
        NodePodSpec s = spec_ok;
        s.incoming = false;
        s.grace_seconds = -5; /* negative: the VMI's */
        s.binding = NODE_POD_BINDING_BRIDGE;
        s.ifname = "eth7";
        s.vm_interface = "nic1";
        assert_int_equal(node_pod_new(&s, "n", "/s", &p), 0);
        char *a = NULL;
        NodeErr e = { 0 };
        assert_int_equal(node_pod_record_encode(p, &a), 0);
        assert_int_equal(node_pod_record_decode(a, strlen(a), "t", "/s", &q, &e), 0);
        assert_int_equal(q->state, NODE_POD_STARTING);
        assert_int_equal(q->grace_seconds, -1);
        assert_int_equal(q->binding, NODE_POD_BINDING_BRIDGE);
        assert_string_equal(q->ifname, "eth7");
        assert_string_equal(q->vm_interface, "nic1");
        assert_string_equal(q->sandbox_name, "");
        assert_string_equal(node_pod_sandbox_path(q), "");
        assert_null(q->network);
        assert_null(q->cni_result);
        assert_null(node_pod_cni_result(q));
        assert_string_equal(node_pod_ip4(q), "");
        assert_int_equal(node_pod_launcher_pid(q), 0);
        assert_false(node_pod_launcher_alive(q));
        free(a);
        node_pod_free(p);
        node_pod_free(q);
}

/* Replaces the first occurrence of from by to in the encoded full record, decodes it, expects a
 * record error whose message holds needle. */
static void expect_bad_record(const char *from, const char *to, const char *needle) {
        NodePod *p = full_pod(), *q = NULL;
        char *a = NULL;
        assert_int_equal(node_pod_record_encode(p, &a), 0);
        char *at = strstr(a, from);
        if (!at)
                fail_msg("'%s' not in the record %s", from, a);
        char *b = NULL;
        assert_true(asprintf(&b, "%.*s%s%s", (int) (at - a), a, to, at + strlen(from)) > 0);
        NodeErr e = { 0 };
        assert_true(node_pod_record_decode(b, strlen(b), "pod.json", "/s", &q, &e) < 0);
        assert_null(q);
        assert_int_equal(e.kind, NODE_ERR_RECORD);
        if (!strstr(e.msg, needle))
                fail_msg("error '%s' lacks '%s'", e.msg, needle);
        if (!strstr(e.msg, "pod.json"))
                fail_msg("error '%s' does not name the file", e.msg);
        node_err_done(&e);
        free(a);
        free(b);
        node_pod_free(p);
}

static void test_record_bad(void **state) {
        (void) state;
        expect_bad_record("\"kvnetPodRecord\"", "\"other\"", "'kind'");
        expect_bad_record("\"version\": 1", "\"version\": 2", "'version' 2");
        expect_bad_record("\"version\": 1", "\"version\": \"1\"", "'version'");
        expect_bad_record("\"uid\": \"0c5e", "\"uid\": \"../../etc", "'uid'");
        expect_bad_record("\"binding\": \"masquerade\"", "\"binding\": \"sriov\"", "'binding'");
        expect_bad_record("\"state\": \"running\"", "\"state\": \"zombie\"", "'state'");
        expect_bad_record("\"incoming\": true", "\"incoming\": 1", "'incoming'");
        expect_bad_record("\"graceSeconds\": 20", "\"graceSeconds\": 100000", "'graceSeconds'");
        expect_bad_record("\"pid\": 43", "\"pid\": 0", "'launcher.pid'");
        expect_bad_record("\"pid\": 42", "\"pid\": -1", "'libvirtd.proc.pid'");
        expect_bad_record("\"name\": \"kvpod-0123456789abcdef\"", "\"name\": \"../x\"", "'sandbox.name'");
        expect_bad_record("\"network\": \"kvcluster\"", "\"network\": \"a/b\"", "'cni.network'");
        expect_bad_record("\"result\": {", "\"result\": 5, \"x\": {", "'cni.result'");
        expect_bad_record("\"namespace\": \"default\"", "\"namespace\": \"Default\"", "'namespace'");
        expect_bad_record("\"node\": \"node1\"", "\"node\": 7", "'node'");
        /* duplicate keys and text that is no JSON */
        expect_bad_record("\"kind\"", "\"uid\": \"x\", \"uid\": \"y\", \"kind\"", "duplicate");
        expect_bad_record("{", "[", "not a JSON object");
}

static void expect_bad_spec(NodePodSpec s, const char *needle) {
        NodeErr e = { 0 };
        assert_int_equal(node_pod_spec_check(&s, &e), -EINVAL);
        assert_int_equal(e.kind, NODE_ERR_ARGS);
        if (!strstr(e.msg, needle))
                fail_msg("error '%s' lacks '%s'", e.msg, needle);
        node_err_done(&e);
}

static void test_spec_check(void **state) {
        (void) state;
        NodeErr e = { 0 };
        assert_int_equal(node_pod_spec_check(&spec_ok, &e), 0);
        NodePodSpec s = spec_ok;
        s.name = "a.b.c-d";
        assert_int_equal(node_pod_spec_check(&s, &e), 0);

        s = spec_ok, s.namespace_ = NULL, expect_bad_spec(s, "'namespace'");
        s = spec_ok, s.namespace_ = "a.b", expect_bad_spec(s, "'namespace'");
        s = spec_ok, s.name = "-x", expect_bad_spec(s, "'name'");
        s = spec_ok, s.name = "a..b", expect_bad_spec(s, "'name'");
        s = spec_ok, s.uid = "", expect_bad_spec(s, "'uid'");
        s = spec_ok, s.uid = "ABC", expect_bad_spec(s, "'uid' must be [a-z0-9-], 1..36 characters, got 'ABC'");
        s = spec_ok, s.uid = "0c5e1a2b-1111-4222-8333-4444555566667", expect_bad_spec(s, "'uid'");
        s = spec_ok, s.vm_namespace = "x;y", expect_bad_spec(s, "'vmNamespace'");
        s = spec_ok, s.vm_name = "vm;KVNET_VM_BINDING=sriov", expect_bad_spec(s, "'vmName'");
        s = spec_ok, s.vm_interface = "Default", expect_bad_spec(s, "'vmInterface'");
        s = spec_ok, s.ifname = "a-very-long-interface", expect_bad_spec(s, "'ifname'");
        s = spec_ok, s.ifname = "a/b", expect_bad_spec(s, "'ifname'");
        s = spec_ok, s.binding = _NODE_POD_BINDING_MAX, expect_bad_spec(s, "'binding'");
        s = spec_ok, s.binding = _NODE_POD_BINDING_INVALID, expect_bad_spec(s, "'binding'");
        s = spec_ok, s.grace_seconds = 86401, expect_bad_spec(s, "'graceSeconds'");
        s = spec_ok, s.incoming_timeout_s = 86401, expect_bad_spec(s, "'incomingTimeoutSeconds'");
        s = spec_ok, s.vmi_json = NULL, expect_bad_spec(s, "'vmi'");
        s = spec_ok, s.vmi_json = "[1]", expect_bad_spec(s, "'vmi' must be a JSON object");
        s = spec_ok, s.vmi_json = "{\"a\":", expect_bad_spec(s, "'vmi' must be a JSON object");

        /* secondary NICs */
        NodePodNic ok2[] = { { "blue", "net1" }, { "red", "net2" } };
        s = spec_ok, s.nics = ok2, s.n_nics = 2;
        assert_int_equal(node_pod_spec_check(&s, &e), 0);
        NodePodNic bad1[] = { { "Blue", "net1" } }, bad2[] = { { "blue", "net/1" } }, bad3[] = { { "default", "net1" } },
                   bad4[] = { { "blue", "tap0" } }, bad5[] = { { "blue", "net1" }, { "red", "net1" } },
                   bad6[] = { { "blue", "net1" }, { "blue", "net2" } };
        s = spec_ok, s.nics = bad1, s.n_nics = 1, expect_bad_spec(s, "'nics[0].vmInterface' must be a DNS label, got 'Blue'");
        s = spec_ok, s.nics = bad2, s.n_nics = 1, expect_bad_spec(s, "'nics[0].ifname'");
        s = spec_ok, s.nics = bad3, s.n_nics = 1, expect_bad_spec(s, "is the pod network's interface");
        s = spec_ok, s.nics = bad4, s.n_nics = 1, expect_bad_spec(s, "is the pod network's interface");
        s = spec_ok, s.nics = bad5, s.n_nics = 2, expect_bad_spec(s, "'nics[1]' (red, net1) repeats nics[0]");
        s = spec_ok, s.nics = bad6, s.n_nics = 2, expect_bad_spec(s, "repeats nics[0]");
        s = spec_ok, s.nics = ok2, s.n_nics = NODE_POD_NICS_MAX + 1, expect_bad_spec(s, "'nics' must hold at most");
}

static void test_record_nics(void **state) {
        (void) state;
        NodePodNic nics[] = { { "blue", "net1", false }, { "red", "net2", true } };
        NodePodSpec s = spec_ok;
        s.nics = nics;
        s.n_nics = 2;
        NodePod *p = NULL, *q = NULL;
        char *a = NULL, *b = NULL;
        NodeErr e = { 0 };
        assert_int_equal(node_pod_new(&s, "n", "/s", &p), 0);
        assert_int_equal(node_pod_record_encode(p, &a), 0);
        assert_int_equal(node_pod_record_decode(a, strlen(a), "t", "/s", &q, &e), 0);
        size_t n = 0;
        const NodePodNic *qn = node_pod_nics(q, &n);
        assert_int_equal(n, 2);
        assert_string_equal(qn[0].vm_interface, "blue");
        assert_string_equal(qn[1].ifname, "net2");
        assert_false(qn[0].sriov);
        assert_true(qn[1].sriov); /* an SR-IOV NIC stays one across an agent's restart */
        assert_int_equal(node_pod_record_encode(q, &b), 0);
        assert_string_equal(a, b);
        free(b);
        node_pod_free(q);
        q = NULL;
        /* a record naming a bad NIC is refused, naming it */
        char *bad = strdup(a);
        char *at = strstr(bad, "\"net2\"");
        assert_non_null(at);
        memcpy(at, "\"tap0\"", 6);
        assert_true(node_pod_record_decode(bad, strlen(bad), "pod.json", "/s", &q, &e) < 0);
        assert_non_null(strstr(e.msg, "nics[1]"));
        node_err_done(&e);
        free(bad);
        bad = strdup(a);
        at = strstr(bad, "\"sriov\": true");
        assert_non_null(at);
        memcpy(at + 9, "\"yes\"", 5);
        assert_true(node_pod_record_decode(bad, strlen(bad), "pod.json", "/s", &q, &e) < 0);
        assert_non_null(strstr(e.msg, "'nics[1].sriov' must be a boolean"));
        node_err_done(&e);
        free(bad);
        free(a);
        node_pod_free(p);
}

static void test_tables(void **state) {
        (void) state;
        assert_string_equal(node_pod_binding_to_string(NODE_POD_BINDING_BRIDGE), "bridge");
        assert_int_equal(node_pod_binding_from_string("masquerade"), NODE_POD_BINDING_MASQUERADE);
        assert_int_equal(node_pod_binding_from_string("sriov"), -EINVAL);
        assert_int_equal(node_pod_binding_from_string(NULL), -EINVAL);
        assert_null(node_pod_binding_to_string(_NODE_POD_BINDING_MAX));
        assert_int_equal(node_launcher_phase_from_string("WaitingForMigration"), NODE_LAUNCHER_WAITING_FOR_MIGRATION);
        assert_string_equal(node_launcher_phase_to_string(NODE_LAUNCHER_MIGRATED), "Migrated");
        assert_int_equal(node_launcher_phase_from_string("running"), -EINVAL);
        assert_string_equal(node_err_kind_to_string(NODE_ERR_LAUNCHER), "launcher");
        assert_string_equal(node_err_kind_to_string(NODE_ERR_PROXY), "proxy");
}

static void test_status_parse(void **state) {
        (void) state;
        const char *t = "{\"phase\":\"Running\",\"domain\":\"default_lvguest\",\"vmi\":\"default/lvguest\",\"accel\":\"qemu\","
                        "\"reason\":\"domain started\",\"interfaces\":[{\"name\":\"default\",\"mac\":\"02:4b:56:77:00:0a\","
                        "\"tap\":\"kvtap0\"}],\"startedAt\":\"2026-11-22T03:58:42Z\",\"finishedAt\":null,\"pid\":4752,"
                        "\"shuttingDown\":false,\"migratable\":true,\"terminationGracePeriodSeconds\":40,"
                        "\"migration\":{\"state\":\"completed\",\"role\":\"source\",\"downtimeMs\":35,\"totalMs\":2100}}";
        NodeLauncherStatus s;
        NodeErr e = { 0 };
        assert_int_equal(node_launcher_status_parse(t, strlen(t), &s, &e), 0);
        assert_int_equal(s.phase, NODE_LAUNCHER_RUNNING);
        assert_string_equal(s.reason, "domain started");
        assert_string_equal(s.accel, "qemu");
        assert_string_equal(s.domain, "default_lvguest");
        assert_string_equal(s.started_at, "2026-11-22T03:58:42Z");
        assert_string_equal(s.finished_at, "");
        assert_int_equal(s.pid, 4752);
        assert_false(s.shutting_down);
        assert_true(s.migratable);
        assert_string_equal(s.migration_state, "completed");
        assert_string_equal(s.migration_role, "source");
        assert_int_equal(s.downtime_ms, 35);
        assert_int_equal(s.total_ms, 2100);

        const char *u = "{\"phase\":\"WaitingForMigration\",\"migration\":null}";
        assert_int_equal(node_launcher_status_parse(u, strlen(u), &s, &e), 0);
        assert_int_equal(s.phase, NODE_LAUNCHER_WAITING_FOR_MIGRATION);
        assert_string_equal(s.migration_state, "");
        assert_int_equal(s.downtime_ms, -1);

        const struct {
                const char *text, *needle;
        } bad[] = {
                { "{}", "'phase' must be a string" },
                { "{\"phase\":\"Unknown\"}", "'phase' is not a launcher phase" },
                { "{\"phase\":\"Sleeping\"}", "got 'Sleeping'" },
                { "{\"phase\":\"Running\",\"reason\":5}", "'reason' must be a string" },
                { "{\"phase\":\"Running\",\"pid\":\"x\"}", "'pid' must be an integer" },
                { "{\"phase\":\"Running\",\"shuttingDown\":\"no\"}", "'shuttingDown' must be a boolean" },
                { "{\"phase\":\"Running\",\"migration\":[]}", "'migration' must be an object" },
                { "{\"phase\":\"Running\",\"migration\":{\"downtimeMs\":1.5}}", "'migration.downtimeMs'" },
                { "[", "not a JSON object" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_true(node_launcher_status_parse(bad[i].text, strlen(bad[i].text), &s, &e) < 0);
                assert_int_equal(e.kind, NODE_ERR_LAUNCHER);
                if (!strstr(e.msg, bad[i].needle))
                        fail_msg("'%s': error '%s' lacks '%s'", bad[i].text, e.msg, bad[i].needle);
                node_err_done(&e);
        }
}

/* ---------------------------------------------------------------- on disk */

static void test_record_files(void **state) {
        (void) state;
        char tmpl[] = "/tmp/kvnet-podtest.XXXXXX";
        assert_non_null(mkdtemp(tmpl));
        NodePod *p = NULL, *q = NULL;
        assert_int_equal(node_pod_new(&spec_ok, "node1", tmpl, &p), 0);
        assert_int_equal(mkdir_p(p->dir, 0700), 0);
        NodeErr e = { 0 };
        assert_int_equal(node_pod_record_write(p, &e), 0);
        assert_int_equal(node_pod_record_read(tmpl, spec_ok.uid, &q, &e), 0);
        assert_string_equal(q->uid, spec_ok.uid);
        node_pod_free(q);
        q = NULL;
        assert_int_equal(node_pod_record_read(tmpl, "no-such-pod", &q, &e), -ENOENT);
        assert_int_equal(node_pod_record_read(tmpl, "../x", &q, &e), -EINVAL);
        assert_int_equal(e.kind, NODE_ERR_ARGS);
        node_err_done(&e);

        /* no status file: phase Unknown; a status naming Running of a launcher that is gone: Failed */
        NodeLauncherStatus s;
        assert_int_equal(node_pod_launcher_status(p, &s, &e), 0);
        assert_int_equal(s.phase, NODE_LAUNCHER_UNKNOWN);
        /* the child waits for its pipe to close, so it is still alive (not a zombie) when identified */
        int gate[2];
        assert_int_equal(pipe(gate), 0);
        pid_t child = fork();
        if (child == 0) {
                char c;
                close(gate[1]);
                (void) !read(gate[0], &c, 1);
                _exit(0);
        }
        close(gate[0]);
        assert_int_equal(node_proc_identify(child, &p->launcher), 0);
        close(gate[1]);
        int st;
        assert_int_equal(waitpid(child, &st, 0), child);
        const char *running = "{\"phase\":\"Running\",\"reason\":\"domain started\"}";
        assert_int_equal(write_file_atomic(p->status_file, running, strlen(running), false), 0);
        assert_int_equal(node_pod_launcher_status(p, &s, &e), 0);
        assert_int_equal(s.phase, NODE_LAUNCHER_FAILED);
        assert_string_equal(s.reason, "launcher not running (last phase Running)");
        /* ours, still running: the phase as written */
        assert_int_equal(node_proc_identify(getpid(), &p->launcher), 0);
        assert_int_equal(node_pod_launcher_status(p, &s, &e), 0);
        assert_int_equal(s.phase, NODE_LAUNCHER_RUNNING);

        /* the directory goes with everything in it, the record last */
        char *sub = NULL;
        assert_true(asprintf(&sub, "%s/libvirt/run/libvirt", p->dir) > 0);
        assert_int_equal(mkdir_p(sub, 0700), 0);
        assert_int_equal(node_pod_dir_remove(p), 0);
        struct stat sb;
        assert_int_equal(stat(p->dir, &sb), -1);
        assert_int_equal(node_pod_dir_remove(p), 0); /* gone already: fine */

        /* the pod lock: a second holder is refused (without waiting), a removed lock is taken anew */
        int l1 = -1, l2 = -1;
        assert_int_equal(node_pod_lock(tmpl, "u1", false, &l1), 0);
        assert_int_equal(node_pod_lock(tmpl, "u1", false, &l2), -EWOULDBLOCK);
        assert_int_equal(node_pod_lock(tmpl, "u2", false, &l2), 0);
        node_pod_unlock_remove(tmpl, "u2", l2);
        node_pod_unlock_remove(tmpl, "u1", l1);
        char *lp = NULL;
        assert_true(asprintf(&lp, "%s/.u1.lock", tmpl) > 0);
        assert_int_equal(access(lp, F_OK), -1);
        assert_int_equal(node_pod_lock(tmpl, "u1", false, &l1), 0);
        assert_int_equal(fcntl(l1, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        node_pod_unlock_remove(tmpl, "u1", l1);
        free(lp);
        free(sub);
        node_pod_free(p);
        tmpdir_remove(tmpl);
}

static void test_proc_identity(void **state) {
        (void) state;
        NodeProc me;
        assert_int_equal(node_proc_identify(getpid(), &me), 0);
        assert_true(node_proc_alive(&me));
        NodeProc other = me;
        other.start_time++; /* the same pid, another process (a reused pid) */
        assert_false(node_proc_alive(&other));
        NodeProc none = { 0 };
        assert_false(node_proc_alive(&none));
        assert_int_equal(node_proc_signal(&other, 0, false), -ESRCH);
        /* a child that exited is reaped by the check and is not alive */
        pid_t child = fork();
        if (child == 0)
                _exit(0);
        NodeProc c;
        if (node_proc_identify(child, &c) == 0) {
                assert_int_equal(node_proc_wait_gone(&c, 5000), 0);
                assert_false(node_proc_alive(&c));
        } else
                (void) waitpid(child, NULL, 0);
        unsigned long long st;
        assert_int_equal(node_proc_start_time(INT32_MAX - 1, &st), -ESRCH);
}

static void expect_bad_config(NodePodConfig c, int err, const char *needle) {
        NodePodRuntime *rt = NULL;
        NodeErr e = { 0 };
        assert_int_equal(node_pod_runtime_new(&c, &rt, &e), err);
        assert_null(rt);
        if (!strstr(e.msg, needle))
                fail_msg("error '%s' lacks '%s'", e.msg, needle);
        node_err_done(&e);
}

static void test_runtime_config(void **state) {
        (void) state;
        char tmpl[] = "/tmp/kvnet-podcfg.XXXXXX";
        assert_non_null(mkdtemp(tmpl));
        NodePodConfig ok = {
                .node_name = "node1", .node_netns = "/proc/self/ns/net", .conf_dir = tmpl, .cni_path = "/usr/lib/cni",
                .cache_dir = tmpl, .netd_socket = "/run/kvnet/netd.sock", .state_dir = tmpl, .launcher = "/bin/true",
                .libvirtd_starter = "/bin/true",
        };
        NodePodRuntime *rt = NULL;
        NodeErr e = { 0 };
        assert_int_equal(node_pod_runtime_new(&ok, &rt, &e), 0);
        NodePod **v = NULL;
        size_t n = 9, bad = 9;
        assert_int_equal(node_pod_list(rt, &v, &n, &bad, &e), 0);
        assert_int_equal(n, 0);
        assert_int_equal(bad, 0);
        node_pods_free(v, n);
        /* a pod directory with a broken record is skipped and counted */
        char *d = NULL;
        assert_true(asprintf(&d, "%s/pods/broken", tmpl) > 0);
        assert_int_equal(mkdir_p(d, 0700), 0);
        char *f = NULL;
        assert_true(asprintf(&f, "%s/pod.json", d) > 0);
        assert_int_equal(write_file_atomic(f, "{", 1, false), 0);
        assert_int_equal(node_pod_list(rt, &v, &n, &bad, &e), 0);
        assert_int_equal(n, 0);
        assert_int_equal(bad, 1);
        node_pods_free(v, n);
        free(d);
        free(f);
        node_pod_runtime_free(rt);

        /* a state dir too deep for <state>/pods/<uid>/launcher.sock (107 bytes) is refused, naming it */
        char longdir[200];
        snprintf(longdir, sizeof longdir, "%s/%060d", tmpl, 0);
        NodePodConfig c = ok;
        c.state_dir = longdir;
        expect_bad_config(c, -ENAMETOOLONG, longdir);
        expect_bad_config(c, -ENAMETOOLONG, "launcher.sock");
        /* the longest one that fits is accepted */
        size_t fit = UNIX_PATH_MAX_LEN - (node_pod_socket_path_max("") );
        char fitdir[200];
        snprintf(fitdir, sizeof fitdir, "%s/%0*d", tmpl, (int) (fit - strlen(tmpl) - 1), 0);
        assert_int_equal(strlen(fitdir), fit);
        c.state_dir = fitdir;
        assert_int_equal(node_pod_runtime_new(&c, &rt, &e), 0);
        node_pod_runtime_free(rt);

        c = ok, c.state_dir = "relative/dir", expect_bad_config(c, -EINVAL, "'stateDir' must be an absolute path");
        c = ok, c.launcher = "/nonexistent/kvnet-launcher", expect_bad_config(c, -ENOENT, "'launcher'");
        c = ok, c.libvirtd_starter = NULL, expect_bad_config(c, -EINVAL, "'libvirtdStarter'");
        c = ok, c.node_name = "node/1", expect_bad_config(c, -EINVAL, "'nodeName'");
        c = ok, c.node_netns = tmpl, expect_bad_config(c, -EINVAL, "is not a network namespace");
        c = ok, c.cni_path = "rel", expect_bad_config(c, -EINVAL, "CNI path");
        c = ok, c.migration_tls = "/nonexistent/tls", expect_bad_config(c, -ENOENT, "'migrationTls': cannot read");
        c = ok, c.migration_tls = tmpl, expect_bad_config(c, -ENOENT, "ca.pem, node.pem and node-key.pem");
        c = ok, c.sandbox_prefix = "Pods", expect_bad_config(c, -EINVAL, "'sandboxPrefix'");
        c = ok, c.sandbox_prefix = "a-prefix-longer-than-24-chars", expect_bad_config(c, -EINVAL, "'sandboxPrefix'");
        c = ok, c.netd_socket = "/run/kvnet/a-netd-socket-path-that-is-much-much-much-much-much-much-much-much-much-much-too-long-for-sun-path.sock",
        expect_bad_config(c, -ENAMETOOLONG, "netd socket");
        tmpdir_remove(tmpl);
}

/* node_cni_runtime_set_netns: the plugin runs inside the given namespace, with that namespace's /sys */
static void test_cni_exec_netns(void **state) {
        (void) state;
        NodeSandbox *sb = NULL;
        NodeErr e = { 0 };
        if (geteuid() != 0 || node_sandbox_new("kvt-unit", &sb, &e) < 0) {
                node_err_done(&e);
                skip_because("needs root and /run/netns (node_sandbox_new)");
        }
        char tmpl[] = "/tmp/kvnet-podns.XXXXXX";
        assert_non_null(mkdtemp(tmpl));
        char *plugin = NULL, *script = NULL, *path = NULL;
        assert_true(asprintf(&plugin, "%s/nsprobe", tmpl) > 0);
        assert_true(asprintf(&script,
                             "#!/bin/sh\n"
                             "stat -L -c %%i /proc/self/ns/net > %s/ino\n"
                             "ls /sys/class/net > %s/sys\n"
                             "echo '{\"cniVersion\":\"1.0.0\"}'\n",
                             tmpl, tmpl) > 0);
        assert_int_equal(write_file_atomic(plugin, script, strlen(script), false), 0);
        assert_int_equal(chmod(plugin, 0755), 0);
        NodeCniRuntime *rt = NULL;
        assert_int_equal(node_cni_runtime_new(tmpl, tmpl, &rt, &e), 0);
        assert_int_equal(node_cni_runtime_set_netns(rt, "/nonexistent/netns", &e), -ENOENT);
        assert_int_equal(e.kind, NODE_ERR_ARGS);
        node_err_done(&e);
        assert_int_equal(node_cni_runtime_set_netns(rt, sb->path, &e), 0);
        NodeCniNetwork *n = NULL;
        const char *conf = "{\"cniVersion\":\"1.0.0\",\"name\":\"probe\",\"plugins\":[{\"type\":\"nsprobe\"}]}";
        assert_int_equal(node_cni_network_parse(conf, strlen(conf), "t", &n, &e), 0);
        NodeCniAttachment a = { .container_id = "c1", .netns = sb->path, .ifname = "eth0" };
        NodeCniResult *res = NULL;
        assert_int_equal(node_cni_add(rt, n, &a, 0, &res, &e), 0);
        char *text = NULL;
        size_t len;
        assert_true(asprintf(&path, "%s/ino", tmpl) > 0);
        assert_int_equal(read_file_max(path, 4096, &text, &len), 0);
        assert_int_equal(strtoull(text, NULL, 10), (unsigned long long) sb->ino);
        free(text);
        free(path);
        assert_true(asprintf(&path, "%s/sys", tmpl) > 0);
        assert_int_equal(read_file_max(path, 4096, &text, &len), 0);
        assert_string_equal(text, "lo\n"); /* the sandbox's devices, not ours */
        free(text);
        free(path);
        node_cni_result_free(res);
        node_cni_network_free(n);
        node_cni_runtime_free(rt);
        assert_int_equal(node_sandbox_delete(sb, &e), 0);
        node_sandbox_free(sb);
        free(plugin);
        free(script);
        tmpdir_remove(tmpl);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_record_roundtrip), cmocka_unit_test(test_record_fresh),
                cmocka_unit_test(test_record_bad),       cmocka_unit_test(test_spec_check),
                cmocka_unit_test(test_record_nics),
                cmocka_unit_test(test_tables),           cmocka_unit_test(test_status_parse),
                cmocka_unit_test(test_record_files),     cmocka_unit_test(test_proc_identity),
                cmocka_unit_test(test_runtime_config),   cmocka_unit_test(test_cni_exec_netns),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
