/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the kvnet CNI plugin (cni/): env, CNI_ARGS, netconf, prevResult, result conversion,
 * netd request building, and whole runs of cni_run() against an unreachable socket and a fake netd.
 *
 * Golden files live in tests/data/cni/; KVNET_UPDATE_GOLDEN=1 rewrites them from the current output. */
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "cni/cni.h"
#include "common/fileio.h"
#include "common/json-util.h"
#include "common/unixsock.h"

/* ---- helpers ---- */

static char data_dir[PATH_MAX];

/* tests/data/cni relative to the repo: found from cwd, $KVNET_SRCDIR, or above the test binary. */
static void find_data_dir(void) {
        const char *src = getenv("KVNET_SRCDIR");
        if (src) {
                snprintf(data_dir, sizeof data_dir, "%s/tests/data/cni", src);
                return;
        }
        char exe[PATH_MAX - 64] = ".";
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0)
                exe[n] = '\0';
        if (access("tests/data/cni", F_OK) == 0) {
                snprintf(data_dir, sizeof data_dir, "tests/data/cni");
                return;
        }
        for (int up = 0; up < 5; up++) {
                char *slash = strrchr(exe, '/');
                if (!slash)
                        break;
                *slash = '\0';
                snprintf(data_dir, sizeof data_dir, "%s/tests/data/cni", exe);
                if (access(data_dir, F_OK) == 0)
                        return;
        }
        snprintf(data_dir, sizeof data_dir, "tests/data/cni");
}

static char *read_data(const char *name) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", data_dir, name);
        char *text = NULL;
        size_t len;
        int r = read_file_max(path, 4 * 1024 * 1024, &text, &len);
        if (r < 0)
                fail_msg("reading %s: %s", path, strerror(-r));
        return text;
}

static json_t *load_data(const char *name) {
        _cleanup_free_ char *text = read_data(name);
        json_error_t je;
        json_t *o = json_loads(text, 0, &je);
        if (!o)
                fail_msg("%s: %s (line %d)", name, je.text, je.line);
        return o;
}

/* Compares v to the golden file (semantically); rewrites it with KVNET_UPDATE_GOLDEN=1. */
static void assert_golden(json_t *v, const char *name) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", data_dir, name);
        if (getenv("KVNET_UPDATE_GOLDEN")) {
                _cleanup_free_ char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                FILE *f = fopen(path, "w");
                assert_non_null(f);
                fprintf(f, "%s\n", s);
                fclose(f);
                return;
        }
        _cleanup_json_ json_t *want = load_data(name);
        if (!json_equal(want, v)) {
                _cleanup_free_ char *got = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                _cleanup_free_ char *exp = json_dumps(want, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                fail_msg("%s differs from golden\n--- want\n%s\n--- got\n%s", name, exp, got);
        }
}

#define assert_contains(hay, needle)                                                                   \
        do {                                                                                           \
                const char *_h = (hay), *_n = (needle);                                                \
                if (!strstr(_h, _n))                                                                   \
                        fail_msg("'%s' does not contain '%s'", _h, _n);                                \
        } while (0)

/* Runs cni_netconf_parse for a command with env defaults. */
static int parse_conf(CniCommand cmd, const char *json, const char *cni_args, CniNetConf **ret, KvErr *e) {
        CniEnv env = { .command = cmd, .container_id = "c1", .ifname = "eth0", .netns = "/var/run/netns/x" };
        CniArgs args = {};
        int r = cni_args_parse(cni_args, &args, e);
        if (r < 0)
                return r;
        r = cni_netconf_parse(json, strlen(json), &env, &args, ret, e);
        cni_args_done(&args);
        return r;
}

#define BASE "\"cniVersion\":\"1.0.0\",\"name\":\"vmnet\",\"type\":\"kvnet\""
#define IPAM "\"ipam\":{\"ranges\":[[{\"subnet\":\"10.88.0.0/24\"}]]}"

/* ---- env ---- */

static void test_env_add_ok(void **state) {
        (void) state;
        char *envp[] = { "CNI_COMMAND=ADD", "CNI_CONTAINERID=abc_1.2-x", "CNI_NETNS=/var/run/netns/x",
                         "CNI_IFNAME=eth0", "CNI_ARGS=K8S_POD_NAME=p", "CNI_PATH=/opt/cni/bin", NULL };
        CniEnv env;
        KvErr e = {};
        assert_int_equal(cni_env_parse(envp, &env, &e), 0);
        assert_int_equal(env.command, CNI_CMD_ADD);
        assert_string_equal(env.container_id, "abc_1.2-x");
        assert_string_equal(env.netns, "/var/run/netns/x");
        assert_string_equal(env.ifname, "eth0");
        assert_string_equal(env.args, "K8S_POD_NAME=p");
        assert_string_equal(env.path, "/opt/cni/bin");
        assert_false(env.debug);
}

static void expect_env_error(char **envp, const char *needle1, const char *needle2) {
        CniEnv env;
        KvErr e = {};
        assert_true(cni_env_parse(envp, &env, &e) < 0);
        assert_int_equal(e.code, KV_ERR_INVALID_ENV);
        assert_contains(e.msg, needle1);
        if (needle2)
                assert_contains(e.msg, needle2);
}

static void test_env_command(void **state) {
        (void) state;
        char *none[] = { NULL };
        expect_env_error(none, "CNI_COMMAND", NULL);
        char *bad[] = { "CNI_COMMAND=add", NULL };
        expect_env_error(bad, "CNI_COMMAND", "'add'");
        char *bad2[] = { "CNI_COMMAND=DELETE", NULL };
        expect_env_error(bad2, "CNI_COMMAND", "'DELETE'");
}

static void test_env_container_id(void **state) {
        (void) state;
        const char *bad[] = { "", "-abc", "_abc", "a/b", "a b", "ab$", ".x" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char v[64];
                snprintf(v, sizeof v, "CNI_CONTAINERID=%s", bad[i]);
                char *envp[] = { "CNI_COMMAND=DEL", v, "CNI_IFNAME=eth0", NULL };
                char quoted[64];
                snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
                expect_env_error(envp, "CNI_CONTAINERID", quoted);
        }
        char *missing[] = { "CNI_COMMAND=ADD", "CNI_NETNS=/x", "CNI_IFNAME=eth0", NULL };
        expect_env_error(missing, "CNI_CONTAINERID", "required");
        assert_true(cni_container_id_valid("0abc.def-ghi_j"));
        assert_false(cni_container_id_valid(NULL));
}

static void test_env_ifname(void **state) {
        (void) state;
        const char *bad[] = { "", ".", "..", "a/b", "eth:0", "eth 0", "eth\t0", "abcdefghijklmnop" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char v[64];
                snprintf(v, sizeof v, "CNI_IFNAME=%s", bad[i]);
                char *envp[] = { "CNI_COMMAND=ADD", "CNI_CONTAINERID=c1", "CNI_NETNS=/x", v, NULL };
                char quoted[64];
                snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
                expect_env_error(envp, "CNI_IFNAME", quoted);
        }
        assert_true(cni_ifname_valid("abcdefghijklmno")); /* 15 */
        assert_true(cni_ifname_valid("net1.100"));
        char *missing[] = { "CNI_COMMAND=CHECK", "CNI_CONTAINERID=c1", "CNI_NETNS=/x", NULL };
        expect_env_error(missing, "CNI_IFNAME", "required");
}

static void test_env_netns(void **state) {
        (void) state;
        char *add[] = { "CNI_COMMAND=ADD", "CNI_CONTAINERID=c1", "CNI_IFNAME=eth0", NULL };
        expect_env_error(add, "CNI_NETNS", "ADD");
        char *check[] = { "CNI_COMMAND=CHECK", "CNI_CONTAINERID=c1", "CNI_IFNAME=eth0", "CNI_NETNS=", NULL };
        expect_env_error(check, "CNI_NETNS", "CHECK");
        char *del[] = { "CNI_COMMAND=DEL", "CNI_CONTAINERID=c1", "CNI_IFNAME=eth0", NULL };
        CniEnv env;
        KvErr e = {};
        assert_int_equal(cni_env_parse(del, &env, &e), 0);
        assert_null(env.netns);
}

static void test_env_version_status_gc_ignore_container(void **state) {
        (void) state;
        const char *cmds[] = { "CNI_COMMAND=VERSION", "CNI_COMMAND=STATUS", "CNI_COMMAND=GC" };
        for (size_t i = 0; i < ELEMENTSOF(cmds); i++) {
                /* podman sends VERSION with CNI_NETNS=dummy and no container */
                char *envp[] = { (char *) cmds[i], "CNI_NETNS=dummy", "CNI_IFNAME=../../x", "KVNET_DEBUG=1", NULL };
                CniEnv env;
                KvErr e = {};
                assert_int_equal(cni_env_parse(envp, &env, &e), 0);
                assert_null(env.container_id);
                assert_null(env.netns);
                assert_null(env.ifname);
                assert_true(env.debug);
        }
}

/* ---- CNI_ARGS ---- */

static void test_args_ok(void **state) {
        (void) state;
        CniArgs a = {};
        KvErr e = {};
        assert_int_equal(cni_args_parse("K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=pod;K8S_POD_INFRA_CONTAINER_ID=abc;"
                                        "K8S_POD_UID=u-1;KVNET_VM_NAME=vm1;KVNET_VM_NAMESPACE=vmns;"
                                        "KVNET_VM_INTERFACE=default;IP=10.0.0.5/24;MAC=02:00:00:00:00:05;",
                                        &a, &e),
                         0);
        assert_string_equal(a.k8s_pod_namespace, "ns1");
        assert_string_equal(a.k8s_pod_name, "pod");
        assert_string_equal(a.k8s_pod_infra_container_id, "abc");
        assert_string_equal(a.k8s_pod_uid, "u-1");
        assert_string_equal(a.vm_name, "vm1");
        assert_string_equal(a.vm_namespace, "vmns");
        assert_string_equal(a.vm_interface, "default");
        assert_string_equal(a.ip, "10.0.0.5/24");
        assert_string_equal(a.mac, "02:00:00:00:00:05");
        assert_false(a.ignore_unknown);
        cni_args_done(&a);
        assert_null(a.vm_name);

        assert_int_equal(cni_args_parse(NULL, &a, &e), 0);
        assert_null(a.ip);
        assert_int_equal(cni_args_parse("", &a, &e), 0);
        assert_int_equal(e.code, 0);
}

static void test_args_unknown(void **state) {
        (void) state;
        CniArgs a = {};
        KvErr e = {};
        assert_true(cni_args_parse("K8S_POD_NAME=p;FOO=bar", &a, &e) < 0);
        assert_int_equal(e.code, KV_ERR_INVALID_ENV);
        assert_contains(e.msg, "'FOO'");
        assert_contains(e.msg, "'bar'");

        /* IgnoreUnknown may come after the unknown key */
        kverr_clear(&e);
        assert_int_equal(cni_args_parse("FOO=bar;K8S_POD_NAME=p;IgnoreUnknown=1", &a, &e), 0);
        assert_true(a.ignore_unknown);
        assert_string_equal(a.k8s_pod_name, "p");
        cni_args_done(&a);
        assert_int_equal(cni_args_parse("IgnoreUnknown=true;FOO=bar", &a, &e), 0);
        cni_args_done(&a);

        assert_true(cni_args_parse("IgnoreUnknown=0;FOO=bar", &a, &e) < 0);
        assert_int_equal(e.code, KV_ERR_INVALID_ENV);
}

static void test_args_malformed(void **state) {
        (void) state;
        CniArgs a = {};
        KvErr e = {};
        assert_true(cni_args_parse("K8S_POD_NAME=p;garbage", &a, &e) < 0);
        assert_int_equal(e.code, KV_ERR_INVALID_ENV);
        assert_contains(e.msg, "'garbage'");
        kverr_clear(&e);
        assert_true(cni_args_parse("IgnoreUnknown=1;garbage", &a, &e) < 0);
        assert_int_equal(e.code, KV_ERR_INVALID_ENV);
        kverr_clear(&e);
        assert_true(cni_args_parse("=x", &a, &e) < 0);
        assert_int_equal(e.code, KV_ERR_INVALID_ENV);
}

/* ---- netconf ---- */

static void test_netconf_defaults_each_version(void **state) {
        (void) state;
        for (size_t i = 0; cni_supported_versions[i]; i++) {
                char json[512];
                snprintf(json, sizeof json, "{\"cniVersion\":\"%s\",\"name\":\"vmnet\",\"type\":\"kvnet\"," IPAM "}",
                         cni_supported_versions[i]);
                _cleanup_(cni_netconf_freep) CniNetConf *c = NULL;
                KvErr e = {};
                assert_int_equal(parse_conf(CNI_CMD_ADD, json, NULL, &c, &e), 0);
                assert_string_equal(c->cni_version, cni_supported_versions[i]);
                assert_string_equal(c->name, "vmnet");
                assert_int_equal(c->binding, CNI_BINDING_BRIDGE);
                assert_string_equal(c->bridge, "kvbr0");
                assert_int_equal(c->mtu, 0);
                assert_int_equal(c->vlan, 0);
                assert_false(c->ip_masq);
                assert_true(c->is_gateway);
                assert_int_equal(c->nat_backend, CNI_NAT_NFTABLES);
                assert_string_equal(c->socket, "/run/kvnet/netd.sock");
                assert_non_null(c->ipam);
                assert_false(c->chained);
                assert_null(c->prev_result);
                assert_false(c->has_vm);
                assert_int_equal(c->n_ips, 0);
                assert_int_equal(c->n_port_mappings, 0);
        }
}

static void test_netconf_full(void **state) {
        (void) state;
        _cleanup_free_ char *json = read_data("netconf-main.json");
        _cleanup_(cni_netconf_freep) CniNetConf *c = NULL;
        KvErr e = {};
        assert_int_equal(parse_conf(CNI_CMD_ADD, json, "K8S_POD_NAMESPACE=tenant-a", &c, &e), 0);
        assert_string_equal(c->cni_version, "1.1.0");
        assert_string_equal(c->bridge, "kvbr1");
        assert_int_equal(c->mtu, 1450);
        assert_int_equal(c->vlan, 42);
        assert_true(c->ip_masq);
        assert_false(c->is_gateway);
        assert_int_equal(c->nat_backend, CNI_NAT_EBPF);
        assert_string_equal(c->socket, "/run/kvnet/test.sock");
        assert_int_equal(c->n_port_mappings, 3);
        assert_string_equal(c->port_mappings[0].protocol, "tcp");
        assert_int_equal(c->port_mappings[0].host_port, 8080);
        assert_int_equal(c->port_mappings[0].container_port, 80);
        assert_string_equal(c->port_mappings[1].protocol, "udp");
        assert_int_equal(c->port_mappings[1].host_ip.family, AF_INET);
        assert_string_equal(c->port_mappings[2].protocol, "tcp");
        assert_int_equal(c->port_mappings[2].host_ip.family, 0);
        assert_int_equal(c->n_ips, 2);
        assert_int_equal(c->ips[0].prefixlen, 24);
        assert_int_equal(c->ips[1].prefixlen, -1);
        assert_int_equal(c->ips[1].addr.family, AF_INET6);
        assert_true(c->has_mac);
        assert_int_equal(c->mac[5], 7);
        assert_true(c->has_vm);
        assert_string_equal(c->vm.namespace_, "tenant-a");
        assert_string_equal(c->vm.name, "vm1");
        assert_string_equal(c->vm.interface, "default");
}

static void test_netconf_cni_versions(void **state) {
        (void) state;
        _cleanup_(cni_netconf_freep) CniNetConf *c = NULL;
        KvErr e = {};
        assert_int_equal(parse_conf(CNI_CMD_ADD,
                                    "{\"cniVersion\":\"0.4.0\",\"cniVersions\":[\"0.4.0\",\"1.0.0\",\"9.9.9\"],"
                                    "\"name\":\"n\",\"type\":\"kvnet\"," IPAM "}",
                                    NULL, &c, &e),
                         0);
        assert_string_equal(c->cni_version, "1.0.0");
        c = cni_netconf_free(c);
        assert_true(parse_conf(CNI_CMD_ADD,
                               "{\"cniVersions\":[\"9.9.9\",\"0.1.0\"],\"name\":\"n\",\"type\":\"kvnet\"," IPAM "}",
                               NULL, &c, &e) < 0);
        assert_int_equal(e.code, KV_ERR_INCOMPATIBLE_VERSION);
        assert_int_equal(cni_version_cmp("0.10.0", "0.4.0"), 1);
        assert_int_equal(cni_version_cmp("1.0.0", "1.0.0"), 0);
        assert_int_equal(cni_version_cmp("0.3.1", "0.4.0"), -1);
}

typedef struct BadCase {
        CniCommand cmd;
        const char *json;
        const char *cni_args;
        int code;
        const char *needle1, *needle2;
} BadCase;

static const BadCase bad_cases[] = {
        { CNI_CMD_ADD, "{\"cniVersion\": \"1.0.0\",\n \"name\": }", NULL, KV_ERR_DECODE, "line 2", "column" },
        { CNI_CMD_ADD, "[1,2]", NULL, KV_ERR_DECODE, "object", "array" },
        { CNI_CMD_ADD, "", NULL, KV_ERR_DECODE, "malformed", NULL },
        { CNI_CMD_ADD, "{\"name\":\"n\",\"type\":\"kvnet\"}", NULL, KV_ERR_INVALID_CONFIG, "'cniVersion'", "required" },
        { CNI_CMD_ADD, "{\"cniVersion\":\"0.2.0\",\"name\":\"n\",\"type\":\"kvnet\"}", NULL, KV_ERR_INCOMPATIBLE_VERSION,
          "incompatible CNI version '0.2.0'", "0.3.1, 0.4.0, 1.0.0, 1.1.0" },
        { CNI_CMD_ADD, "{\"cniVersion\":\"0.3.0\",\"name\":\"n\",\"type\":\"kvnet\"}", NULL, KV_ERR_INCOMPATIBLE_VERSION,
          "'0.3.0'", NULL },
        { CNI_CMD_ADD, "{\"cniVersion\":1,\"name\":\"n\",\"type\":\"kvnet\"}", NULL, KV_ERR_INVALID_CONFIG,
          "'cniVersion' must be a string", "integer" },
        { CNI_CMD_ADD, "{\"cniVersion\":\"1.0.0\",\"type\":\"kvnet\"}", NULL, KV_ERR_INVALID_CONFIG, "'name'", "required" },
        { CNI_CMD_ADD, "{" BASE ",\"name\":\"a b\"}", NULL, KV_ERR_DECODE, "duplicate", NULL },
        { CNI_CMD_ADD, "{\"cniVersion\":\"1.0.0\",\"name\":\"a b\",\"type\":\"kvnet\"}", NULL, KV_ERR_INVALID_CONFIG,
          "'name'", "'a b'" },
        { CNI_CMD_ADD, "{\"cniVersion\":\"1.0.0\",\"name\":\"\",\"type\":\"kvnet\"}", NULL, KV_ERR_INVALID_CONFIG,
          "'name'", "''" },
        { CNI_CMD_ADD, "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"bridge\"}", NULL, KV_ERR_INVALID_CONFIG,
          "'type'", "'bridge'" },
        { CNI_CMD_ADD, "{" BASE ",\"binding\":\"vhost\"," IPAM "}", NULL, KV_ERR_INVALID_CONFIG, "'binding'", "'vhost'" },
        { CNI_CMD_ADD, "{" BASE ",\"binding\":7," IPAM "}", NULL, KV_ERR_INVALID_CONFIG, "'binding' must be a string",
          "integer" },
        { CNI_CMD_ADD, "{" BASE ",\"mtu\":50," IPAM "}", NULL, KV_ERR_INVALID_CONFIG, "'mtu' must be 0 or 68..65535",
          "got 50" },
        { CNI_CMD_ADD, "{" BASE ",\"mtu\":70000," IPAM "}", NULL, KV_ERR_INVALID_CONFIG, "'mtu'", "got 70000" },
        { CNI_CMD_ADD, "{" BASE ",\"mtu\":-1," IPAM "}", NULL, KV_ERR_INVALID_CONFIG, "'mtu'", "got -1" },
        { CNI_CMD_ADD, "{" BASE ",\"mtu\":\"1500\"," IPAM "}", NULL, KV_ERR_INVALID_CONFIG, "'mtu' must be an integer",
          "string" },
        { CNI_CMD_ADD, "{" BASE ",\"vlan\":5000," IPAM "}", NULL, KV_ERR_INVALID_CONFIG,
          "netconf: 'vlan' must be 0..4094, got 5000", NULL },
        { CNI_CMD_ADD, "{" BASE ",\"vlan\":1.5," IPAM "}", NULL, KV_ERR_INVALID_CONFIG, "'vlan' must be an integer",
          "number" },
        { CNI_CMD_ADD, "{" BASE ",\"ipMasq\":\"yes\"," IPAM "}", NULL, KV_ERR_INVALID_CONFIG,
          "'ipMasq' must be a boolean", "string" },
        { CNI_CMD_ADD, "{" BASE ",\"isGateway\":1," IPAM "}", NULL, KV_ERR_INVALID_CONFIG, "'isGateway'", "integer" },
        { CNI_CMD_ADD, "{" BASE ",\"nat\":{\"backend\":\"iptables\"}," IPAM "}", NULL, KV_ERR_INVALID_CONFIG,
          "'nat.backend'", "'iptables'" },
        { CNI_CMD_ADD, "{" BASE ",\"nat\":\"ebpf\"," IPAM "}", NULL, KV_ERR_INVALID_CONFIG, "'nat' must be an object",
          "string" },
        { CNI_CMD_ADD, "{" BASE ",\"bridge\":\"averyveryverylongbridge\"," IPAM "}", NULL, KV_ERR_INVALID_CONFIG,
          "'bridge'", "'averyveryverylongbridge'" },
        { CNI_CMD_ADD, "{" BASE ",\"socket\":\"run/netd.sock\"," IPAM "}", NULL, KV_ERR_INVALID_CONFIG, "'socket'",
          "'run/netd.sock'" },
        { CNI_CMD_ADD, "{" BASE ",\"ipam\":[]}", NULL, KV_ERR_INVALID_CONFIG, "'ipam' must be an object", "array" },
        { CNI_CMD_ADD, "{" BASE ",\"ipam\":{\"type\":\"host-local\"}}", NULL, KV_ERR_INVALID_CONFIG,
          "'ipam.type' is 'host-local'", "chain kvnet after it" },
        { CNI_CMD_ADD, "{" BASE "}", NULL, KV_ERR_INVALID_CONFIG, "'ipam' is required", NULL },
        { CNI_CMD_ADD, "{" BASE "," IPAM ",\"prevResult\":{\"cniVersion\":\"1.0.0\"}}", NULL, KV_ERR_INVALID_CONFIG,
          "netconf: 'ipam' cannot be set when kvnet is chained after another plugin (prevResult present)", NULL },
        { CNI_CMD_ADD, "{" BASE ",\"prevResult\":[]}", NULL, KV_ERR_INVALID_CONFIG, "'prevResult' must be an object",
          "array" },
        /* binding sriov */
        { CNI_CMD_ADD, "{" BASE ",\"binding\":\"sriov\",\"resourceName\":\"intel.com/a\"," IPAM "}", NULL,
          KV_ERR_INVALID_CONFIG, "netconf: binding 'sriov' is for VM attachments (name the VM with KVNET_VM_NAME)",
          NULL },
        { CNI_CMD_ADD, "{" BASE ",\"binding\":\"sriov\"," IPAM "}", "KVNET_VM_NAME=vm1", KV_ERR_INVALID_CONFIG,
          "'resourceName' is required with binding 'sriov'", NULL },
        { CNI_CMD_ADD, "{" BASE ",\"binding\":\"sriov\",\"resourceName\":\"sriov_a\"," IPAM "}", "KVNET_VM_NAME=vm1",
          KV_ERR_INVALID_CONFIG, "'resourceName' must be <vendor>/<name>", "'sriov_a'" },
        { CNI_CMD_ADD, "{" BASE ",\"binding\":\"sriov\",\"resourceName\":7," IPAM "}", "KVNET_VM_NAME=vm1",
          KV_ERR_INVALID_CONFIG, "'resourceName' must be a string", "integer" },
        { CNI_CMD_ADD, "{" BASE ",\"binding\":\"sriov\",\"resourceName\":\"intel.com/a\",\"spoofchk\":\"maybe\"," IPAM "}",
          "KVNET_VM_NAME=vm1", KV_ERR_INVALID_CONFIG, "'spoofchk' must be a boolean or \"on\"/\"off\"", "'maybe'" },
        { CNI_CMD_ADD, "{" BASE ",\"binding\":\"sriov\",\"resourceName\":\"intel.com/a\",\"trust\":1," IPAM "}",
          "KVNET_VM_NAME=vm1", KV_ERR_INVALID_CONFIG, "'trust' must be a boolean or \"on\"/\"off\"", "integer" },
        { CNI_CMD_ADD, "{" BASE ",\"binding\":\"sriov\",\"resourceName\":\"intel.com/a\",\"vlan\":4095," IPAM "}",
          "KVNET_VM_NAME=vm1", KV_ERR_INVALID_CONFIG, "'vlan' must be 0..4094", "4095" },
        { CNI_CMD_ADD, "{" BASE ",\"binding\":\"sriov\",\"resourceName\":\"intel.com/a\",\"ipMasq\":true," IPAM "}",
          "KVNET_VM_NAME=vm1", KV_ERR_INVALID_CONFIG, "'ipMasq' cannot be used with binding 'sriov'",
          "bypasses the node's NAT" },
        { CNI_CMD_ADD,
          "{" BASE ",\"binding\":\"sriov\",\"resourceName\":\"intel.com/a\"," IPAM
          ",\"runtimeConfig\":{\"portMappings\":[{\"hostPort\":8080,\"containerPort\":80}]}}",
          "KVNET_VM_NAME=vm1", KV_ERR_INVALID_CONFIG, "'portMappings' cannot be used with binding 'sriov'", NULL },
        { CNI_CMD_ADD,
          "{" BASE ",\"binding\":\"sriov\",\"resourceName\":\"intel.com/a\","
          "\"prevResult\":{\"interfaces\":[{\"name\":\"eth0\",\"sandbox\":\"/x\"}],"
          "\"ips\":[{\"address\":\"10.0.0.1/24\",\"interface\":0}]}}",
          "KVNET_VM_NAME=vm1", KV_ERR_INVALID_CONFIG, "binding 'sriov' cannot be chained", NULL },
        { CNI_CMD_CHECK, "{\"cniVersion\":\"0.3.1\",\"name\":\"n\",\"type\":\"kvnet\"," IPAM "}", NULL,
          KV_ERR_INCOMPATIBLE_VERSION, "CHECK is not supported by cniVersion 0.3.1", NULL },
        { CNI_CMD_CHECK, "{" BASE "," IPAM "}", NULL, KV_ERR_INVALID_CONFIG, "'prevResult' is required for CHECK", NULL },
        { CNI_CMD_STATUS, "{" BASE "}", NULL, KV_ERR_INCOMPATIBLE_VERSION, "STATUS is not supported by cniVersion 1.0.0",
          NULL },
        { CNI_CMD_GC, "{\"cniVersion\":\"0.4.0\",\"name\":\"n\",\"type\":\"kvnet\"}", NULL, KV_ERR_INCOMPATIBLE_VERSION,
          "GC is not supported by cniVersion 0.4.0", NULL },
        { CNI_CMD_GC, "{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"kvnet\"}", NULL, KV_ERR_INVALID_CONFIG,
          "'cni.dev/valid-attachments' is required", NULL },
        { CNI_CMD_GC, "{\"cniVersion\":\"1.1.0\",\"name\":\"n\",\"type\":\"kvnet\",\"cni.dev/valid-attachments\":[{\"containerID\":\"c1\"}]}",
          NULL, KV_ERR_INVALID_CONFIG, "valid-attachments[0]", "'ifname'" },
        /* runtimeConfig */
        { CNI_CMD_ADD, "{" BASE "," IPAM ",\"runtimeConfig\":{\"portMappings\":[{\"hostPort\":0,\"containerPort\":80}]}}",
          NULL, KV_ERR_INVALID_CONFIG, "portMappings[0]: 'hostPort' must be 1..65535", "got 0" },
        { CNI_CMD_ADD,
          "{" BASE "," IPAM ",\"runtimeConfig\":{\"portMappings\":[{\"hostPort\":1,\"containerPort\":70000}]}}", NULL,
          KV_ERR_INVALID_CONFIG, "'containerPort'", "70000" },
        { CNI_CMD_ADD,
          "{" BASE "," IPAM
          ",\"runtimeConfig\":{\"portMappings\":[{\"hostPort\":1,\"containerPort\":2},{\"hostPort\":1,\"containerPort\":2,\"protocol\":\"sctp\"}]}}",
          NULL, KV_ERR_INVALID_CONFIG, "portMappings[1]: 'protocol'", "'sctp'" },
        { CNI_CMD_ADD,
          "{" BASE "," IPAM
          ",\"runtimeConfig\":{\"portMappings\":[{\"hostPort\":1,\"containerPort\":2,\"hostIP\":\"1.2.3\"}]}}",
          NULL, KV_ERR_INVALID_CONFIG, "'hostIP'", "'1.2.3'" },
        { CNI_CMD_ADD, "{" BASE "," IPAM ",\"runtimeConfig\":{\"ips\":[\"10.0.0.1/33\"]}}", NULL, KV_ERR_INVALID_CONFIG,
          "'ips[0]'", "'10.0.0.1/33'" },
        { CNI_CMD_ADD, "{" BASE "," IPAM ",\"runtimeConfig\":{\"mac\":\"02:00:00:00:00\"}}", NULL, KV_ERR_INVALID_CONFIG,
          "'mac'", "'02:00:00:00:00'" },
        { CNI_CMD_ADD, "{" BASE "," IPAM ",\"runtimeConfig\":{\"kvnet\":{\"vm\":{\"name\":\"VM_1\"}}}}", NULL,
          KV_ERR_INVALID_CONFIG, "'kvnet.vm.name'", "'VM_1'" },
        /* args.cni (Multus's cni-args) */
        { CNI_CMD_ADD, "{" BASE "," IPAM ",\"args\":{\"cni\":{\"ips\":[\"10.0.0.1/40\"]}}}", NULL,
          KV_ERR_INVALID_CONFIG, "args.cni: 'ips[0]'", "'10.0.0.1/40'" },
        { CNI_CMD_ADD, "{" BASE "," IPAM ",\"args\":{\"cni\":{\"mac\":\"nope\"}}}", NULL, KV_ERR_INVALID_CONFIG,
          "args.cni: 'mac'", "'nope'" },
        { CNI_CMD_ADD, "{" BASE "," IPAM ",\"args\":{\"cni\":{\"kvnet\":{\"vm\":{\"interface\":\"Sec_1\"}}}}}",
          "KVNET_VM_NAME=vm1", KV_ERR_INVALID_CONFIG, "args.cni: 'kvnet.vm.interface'", "'Sec_1'" },
        { CNI_CMD_ADD, "{" BASE "," IPAM ",\"args\":{\"cni\":{\"kvnet\":{\"vm\":{\"binding\":\"vhostuser\"}}}}}",
          "KVNET_VM_NAME=vm1", KV_ERR_INVALID_CONFIG, "args.cni: 'kvnet.vm.binding'", "'vhostuser'" },
        /* the VM interface's sriov binding on a network without a pool */
        { CNI_CMD_ADD, "{" BASE "," IPAM ",\"args\":{\"cni\":{\"kvnet\":{\"vm\":{\"binding\":\"sriov\"}}}}}",
          "KVNET_VM_NAME=vm1", KV_ERR_INVALID_CONFIG, "'resourceName' is required with binding 'sriov'", NULL },
        { CNI_CMD_ADD, "{" BASE "," IPAM ",\"args\":{\"cni\":[]}}", NULL, KV_ERR_INVALID_CONFIG, "'cni'", NULL },
        /* CNI_ARGS values */
        { CNI_CMD_ADD, "{" BASE "," IPAM "}", "IP=10.0.0.1,bogus", KV_ERR_INVALID_ENV, "'IP'", "'10.0.0.1,bogus'" },
        { CNI_CMD_ADD, "{" BASE "," IPAM "}", "MAC=zz:00:00:00:00:00", KV_ERR_INVALID_ENV, "'MAC'",
          "'zz:00:00:00:00:00'" },
        { CNI_CMD_ADD, "{" BASE "," IPAM "}", "KVNET_VM_NAME=My.VM", KV_ERR_INVALID_ENV, "'KVNET_VM_NAME'", "'My.VM'" },
        { CNI_CMD_ADD, "{" BASE "," IPAM "}", "KVNET_VM_NAME=vm1;K8S_POD_NAMESPACE=Bad_NS", KV_ERR_INVALID_ENV,
          "'K8S_POD_NAMESPACE'", "'Bad_NS'" },
        { CNI_CMD_ADD, "{" BASE "," IPAM "}", "KVNET_VM_NAME=vm1;KVNET_VM_INTERFACE=-x", KV_ERR_INVALID_ENV,
          "'KVNET_VM_INTERFACE'", "'-x'" },
        /* prevResult */
        { CNI_CMD_ADD,
          "{" BASE ",\"prevResult\":{\"ips\":[{\"address\":\"10.0.0.1/24\"},{\"address\":\"10.0.0.2\"}]}}", NULL,
          KV_ERR_INVALID_CONFIG, "prevResult.ips[1].address", "'10.0.0.2'" },
        { CNI_CMD_ADD, "{" BASE ",\"prevResult\":{\"ips\":[{\"address\":\"10.0.0.1/24\",\"gateway\":\"x\"}]}}", NULL,
          KV_ERR_INVALID_CONFIG, "prevResult.ips[0].gateway", "'x'" },
        { CNI_CMD_ADD,
          "{" BASE ",\"prevResult\":{\"interfaces\":[{\"name\":\"eth0\"}],\"ips\":[{\"address\":\"10.0.0.1/24\",\"interface\":1}]}}",
          NULL, KV_ERR_INVALID_CONFIG, "prevResult.ips[0].interface", "1" },
        { CNI_CMD_ADD,
          "{\"cniVersion\":\"0.3.1\",\"name\":\"n\",\"type\":\"kvnet\",\"prevResult\":{\"ips\":[{\"version\":\"6\",\"address\":\"10.0.0.1/24\"}]}}",
          NULL, KV_ERR_INVALID_CONFIG, "prevResult.ips[0].version", "'6'" },
        { CNI_CMD_ADD, "{" BASE ",\"prevResult\":{\"interfaces\":[{\"mac\":\"x\"}]}}", NULL, KV_ERR_INVALID_CONFIG,
          "prevResult.interfaces[0]", "'name'" },
        { CNI_CMD_ADD, "{" BASE ",\"prevResult\":{\"routes\":[{\"dst\":\"0.0.0.0\"}]}}", NULL, KV_ERR_INVALID_CONFIG,
          "prevResult.routes[0].dst", "'0.0.0.0'" },
        { CNI_CMD_ADD, "{" BASE ",\"prevResult\":{\"cniVersion\":\"0.1.0\"}}", NULL, KV_ERR_INCOMPATIBLE_VERSION,
          "prevResult", "'0.1.0'" },
};

static void test_netconf_bad(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(bad_cases); i++) {
                const BadCase *b = &bad_cases[i];
                _cleanup_(cni_netconf_freep) CniNetConf *c = NULL;
                KvErr e = {};
                int r = parse_conf(b->cmd, b->json, b->cni_args, &c, &e);
                if (r >= 0)
                        fail_msg("case %zu (%s) unexpectedly parsed", i, b->json);
                assert_null(c);
                if (e.code != b->code)
                        fail_msg("case %zu (%s): code %d, want %d (%s)", i, b->json, e.code, b->code, e.msg);
                assert_contains(e.msg, b->needle1);
                if (b->needle2)
                        assert_contains(e.msg, b->needle2);
        }
}

static void test_netconf_oversized(void **state) {
        (void) state;
        size_t n = CNI_MAX_STDIN + 10;
        _cleanup_free_ char *big = malloc(n + 1);
        assert_non_null(big);
        memset(big, ' ', n);
        big[0] = '{';
        big[n - 1] = '}';
        big[n] = '\0';
        CniEnv env = { .command = CNI_CMD_ADD, .container_id = "c1", .ifname = "eth0", .netns = "/x" };
        _cleanup_(cni_netconf_freep) CniNetConf *c = NULL;
        KvErr e = {};
        assert_true(cni_netconf_parse(big, n, &env, NULL, &c, &e) < 0);
        assert_int_equal(e.code, KV_ERR_DECODE);
        assert_contains(e.msg, "1048586");
        assert_contains(e.msg, "1048576");
}

static void test_netconf_sriov_del_ok(void **state) {
        (void) state;
        _cleanup_(cni_netconf_freep) CniNetConf *c = NULL;
        KvErr e = {};
        /* DEL: no VM and no resourceName needed (DEL must be able to clean up anything) */
        assert_int_equal(parse_conf(CNI_CMD_DEL, "{" BASE ",\"binding\":\"sriov\"," IPAM "}", NULL, &c, &e), 0);
        assert_int_equal(c->binding, CNI_BINDING_SRIOV);
        c = cni_netconf_free(c);
        /* ADD for a VM: defaults spoofchk on, trust off */
        assert_int_equal(parse_conf(CNI_CMD_ADD,
                                    "{" BASE ",\"binding\":\"sriov\",\"resourceName\":\"intel.com/sriov_a\"," IPAM "}",
                                    "KVNET_VM_NAME=vm1", &c, &e),
                         0);
        assert_string_equal(c->resource_name, "intel.com/sriov_a");
        assert_true(c->spoofchk);
        assert_false(c->trust);
        assert_true(c->has_vm);
        c = cni_netconf_free(c);
        /* "on"/"off" strings and booleans */
        assert_int_equal(parse_conf(CNI_CMD_ADD,
                                    "{" BASE ",\"binding\":\"sriov\",\"resourceName\":\"intel.com/sriov_a\","
                                    "\"spoofchk\":\"off\",\"trust\":\"on\",\"vlan\":4094," IPAM "}",
                                    "KVNET_VM_NAME=vm1", &c, &e),
                         0);
        assert_false(c->spoofchk);
        assert_true(c->trust);
        assert_int_equal(c->vlan, 4094);
        c = cni_netconf_free(c);
        assert_int_equal(parse_conf(CNI_CMD_ADD,
                                    "{" BASE ",\"binding\":\"sriov\",\"resourceName\":\"intel.com/sriov_a\","
                                    "\"spoofchk\":false,\"trust\":true," IPAM "}",
                                    "KVNET_VM_NAME=vm1", &c, &e),
                         0);
        assert_false(c->spoofchk);
        assert_true(c->trust);
        c = cni_netconf_free(c);
        /* masquerade passes as-is */
        assert_int_equal(parse_conf(CNI_CMD_ADD, "{" BASE ",\"binding\":\"masquerade\"," IPAM "}", NULL, &c, &e), 0);
        assert_int_equal(c->binding, CNI_BINDING_MASQUERADE);
        assert_string_equal(cni_binding_to_string(c->binding), "masquerade");
}

static void test_netconf_socket_env(void **state) {
        (void) state;
        CniEnv env = { .command = CNI_CMD_ADD, .container_id = "c1", .ifname = "eth0", .netns = "/var/run/netns/x",
                       .netd_socket = "/run/node7/netd.sock" };
        const char *plain = "{" BASE "," IPAM "}", *named = "{" BASE "," IPAM ",\"socket\":\"/run/kvnet/other.sock\"}";
        _cleanup_(cni_netconf_freep) CniNetConf *c = NULL;
        KvErr e = {};
        /* a config without a socket (a NAD's) takes the node's from KVNET_NETD_SOCKET; one that names it keeps it */
        assert_int_equal(cni_netconf_parse(plain, strlen(plain), &env, NULL, &c, &e), 0);
        assert_string_equal(c->socket, "/run/node7/netd.sock");
        c = cni_netconf_free(c);
        assert_int_equal(cni_netconf_parse(named, strlen(named), &env, NULL, &c, &e), 0);
        assert_string_equal(c->socket, "/run/kvnet/other.sock");
        c = cni_netconf_free(c);
        env.netd_socket = "relative.sock";
        assert_true(cni_netconf_parse(plain, strlen(plain), &env, NULL, &c, &e) < 0);
        assert_int_equal(e.code, KV_ERR_INVALID_ENV);
        assert_contains(e.msg, "'KVNET_NETD_SOCKET'");
        assert_contains(e.msg, "'relative.sock'");
}

static void test_netconf_vm_identity(void **state) {
        (void) state;
        _cleanup_(cni_netconf_freep) CniNetConf *c = NULL;
        KvErr e = {};
        /* namespace: KVNET_VM_NAMESPACE > K8S_POD_NAMESPACE > default; interface: KVNET_VM_INTERFACE > CNI_IFNAME */
        assert_int_equal(parse_conf(CNI_CMD_ADD, "{" BASE "," IPAM "}", "KVNET_VM_NAME=vm1;K8S_POD_NAMESPACE=ns1", &c, &e),
                         0);
        assert_true(c->has_vm);
        assert_string_equal(c->vm.name, "vm1");
        assert_string_equal(c->vm.namespace_, "ns1");
        assert_string_equal(c->vm.interface, "eth0");
        c = cni_netconf_free(c);

        assert_int_equal(parse_conf(CNI_CMD_ADD, "{" BASE "," IPAM "}",
                                    "K8S_POD_NAMESPACE=ns1;KVNET_VM_NAMESPACE=ns1;KVNET_VM_NAME=vm1;KVNET_VM_INTERFACE=blue",
                                    &c, &e),
                         0);
        assert_string_equal(c->vm.namespace_, "ns1");
        assert_string_equal(c->vm.interface, "blue");
        c = cni_netconf_free(c);
        /* without a pod namespace (podman, a runtime outside Kubernetes) KVNET_VM_NAMESPACE names it */
        assert_int_equal(parse_conf(CNI_CMD_ADD, "{" BASE "," IPAM "}", "KVNET_VM_NAMESPACE=ns2;KVNET_VM_NAME=vm1", &c, &e),
                         0);
        assert_string_equal(c->vm.namespace_, "ns2");
        c = cni_netconf_free(c);

        /* a VM of another namespace than the pod's: refused, whichever way it is named */
        assert_int_equal(parse_conf(CNI_CMD_ADD, "{" BASE "," IPAM "}",
                                    "K8S_POD_NAMESPACE=ns1;KVNET_VM_NAMESPACE=ns2;KVNET_VM_NAME=vm1", &c, &e),
                         -EPERM);
        assert_null(c);
        assert_int_equal(e.code, KV_ERR_INVALID_CONFIG);
        assert_contains(e.msg, "CNI_ARGS: 'KVNET_VM_NAMESPACE'");
        assert_contains(e.msg, "'ns2' is not the pod's namespace 'ns1'");
        e = (KvErr){};
        assert_int_equal(parse_conf(CNI_CMD_ADD,
                                    "{" BASE "," IPAM ",\"args\":{\"cni\":{\"kvnet\":{\"vm\":{\"namespace\":"
                                    "\"victim\",\"name\":\"db\"}}}}}",
                                    "K8S_POD_NAMESPACE=tenant", &c, &e),
                         -EPERM);
        assert_contains(e.msg, "'kvnet.vm.namespace'");
        assert_contains(e.msg, "'victim' is not the pod's namespace 'tenant'");
        e = (KvErr){};

        assert_int_equal(parse_conf(CNI_CMD_ADD, "{" BASE "," IPAM "}", "KVNET_VM_NAME=vm1", &c, &e), 0);
        assert_string_equal(c->vm.namespace_, "default");
        c = cni_netconf_free(c);

        /* no VM name: no identity, even with a namespace */
        assert_int_equal(parse_conf(CNI_CMD_ADD, "{" BASE "," IPAM "}", "K8S_POD_NAMESPACE=ns1", &c, &e), 0);
        assert_false(c->has_vm);
        c = cni_netconf_free(c);

        /* runtimeConfig.kvnet.vm.name alone */
        assert_int_equal(parse_conf(CNI_CMD_DEL,
                                    "{" BASE ",\"runtimeConfig\":{\"kvnet\":{\"vm\":{\"name\":\"vm2\"}}}}",
                                    "K8S_POD_NAMESPACE=ns3", &c, &e),
                         0);
        assert_true(c->has_vm);
        assert_string_equal(c->vm.name, "vm2");
        assert_string_equal(c->vm.namespace_, "ns3");
        assert_true(c->chained); /* DEL without ipam */
        c = cni_netconf_free(c);

        /* CNI_ARGS IP/MAC when runtimeConfig is silent */
        assert_int_equal(parse_conf(CNI_CMD_ADD, "{" BASE "," IPAM "}", "IP=10.88.0.9/24,fd88::9;MAC=02:00:00:00:00:09",
                                    &c, &e),
                         0);
        assert_int_equal(c->n_ips, 2);
        assert_int_equal(c->ips[0].prefixlen, 24);
        assert_int_equal(c->ips[1].prefixlen, -1);
        assert_true(c->has_mac);
        assert_int_equal(c->mac[5], 9);
        c = cni_netconf_free(c);

        /* args.cni (where Multus puts a network's cni-args): over CNI_ARGS, under runtimeConfig */
        assert_int_equal(parse_conf(CNI_CMD_ADD,
                                    "{" BASE "," IPAM ",\"args\":{\"cni\":{\"ips\":[\"10.88.0.7/24\"],"
                                    "\"mac\":\"02:00:00:00:00:07\",\"other\":1,"
                                    "\"kvnet\":{\"vm\":{\"interface\":\"sec\",\"binding\":\"bridge\"}}}}}",
                                    "KVNET_VM_NAME=vm1;KVNET_VM_INTERFACE=default;KVNET_VM_BINDING=masquerade;"
                                    "IP=10.88.0.9/24;MAC=02:00:00:00:00:09",
                                    &c, &e),
                         0);
        assert_string_equal(c->vm.interface, "sec");
        assert_int_equal(c->binding, CNI_BINDING_BRIDGE);
        assert_int_equal(c->n_ips, 1);
        assert_int_equal(c->mac[5], 7);
        c = cni_netconf_free(c);
        assert_int_equal(parse_conf(CNI_CMD_ADD,
                                    "{" BASE "," IPAM ",\"runtimeConfig\":{\"mac\":\"02:00:00:00:00:05\","
                                    "\"kvnet\":{\"vm\":{\"interface\":\"rt\"}}},"
                                    "\"args\":{\"cni\":{\"mac\":\"02:00:00:00:00:07\","
                                    "\"kvnet\":{\"vm\":{\"interface\":\"sec\"}}}}}",
                                    "KVNET_VM_NAME=vm1", &c, &e),
                         0);
        assert_string_equal(c->vm.interface, "rt");
        assert_int_equal(c->mac[5], 5);
        assert_true(cni_dns_label_valid("a-1"));
        assert_false(cni_dns_label_valid("a-"));
        assert_false(cni_dns_label_valid("A"));
}

/* ---- prevResult ---- */

static CniNetConf *parse_fixture(CniCommand cmd, const char *name) {
        _cleanup_free_ char *json = read_data(name);
        CniNetConf *c = NULL;
        KvErr e = {};
        int r = parse_conf(cmd, json, NULL, &c, &e);
        if (r < 0)
                fail_msg("%s: %s", name, e.msg);
        return c;
}

static void test_prev_result_0_3_1(void **state) {
        (void) state;
        _cleanup_(cni_netconf_freep) CniNetConf *c = parse_fixture(CNI_CMD_ADD, "prev-0.3.1.json");
        char b[KV_ADDR_STRLEN];
        assert_true(c->chained);
        assert_true(c->ip_masq);
        CniResult *p = c->prev_result;
        assert_non_null(p);
        assert_string_equal(p->cni_version, "0.3.1");
        assert_int_equal(p->n_interfaces, 2);
        assert_string_equal(p->interfaces[1].name, "eth0");
        assert_string_equal(p->interfaces[1].sandbox, "/var/run/netns/x");
        assert_null(p->interfaces[0].sandbox);
        assert_int_equal(p->n_ips, 2);
        assert_string_equal(kv_prefix_fmt(&p->ips[0].address, b), "10.88.0.7/24");
        assert_string_equal(kv_addr_fmt(&p->ips[0].gateway, b), "10.88.0.1");
        assert_int_equal(p->ips[0].interface, 1);
        assert_int_equal(p->ips[1].address.addr.family, AF_INET6);
        assert_int_equal(p->n_routes, 2);
        assert_int_equal(p->routes[0].gw.family, 0);
        assert_string_equal(kv_addr_fmt(&p->routes[1].gw, b), "fd88::1");
        assert_int_equal(p->dns.n_nameservers, 1);
        assert_string_equal(p->dns.search[0], "svc.local");

        /* normalised to 1.x for netd: no "version" */
        _cleanup_json_ json_t *j = NULL;
        assert_int_equal(cni_result_to_json(p, "1.1.0", &j), 0);
        assert_null(json_object_get(json_array_get(json_object_get(j, "ips"), 0), "version"));
        assert_golden(j, "prev-0.3.1-normalised.json");
}

static void test_prev_result_0_4_0(void **state) {
        (void) state;
        _cleanup_(cni_netconf_freep) CniNetConf *c = parse_fixture(CNI_CMD_CHECK, "prev-0.4.0.json");
        assert_true(c->chained);
        CniResult *p = c->prev_result;
        assert_string_equal(p->cni_version, "0.4.0");
        assert_int_equal(p->n_interfaces, 1);
        assert_int_equal(p->n_ips, 1);
        assert_int_equal(p->ips[0].interface, 0);
        assert_int_equal(p->n_routes, 1);
        assert_int_equal(p->routes[0].gw.family, AF_INET);
        assert_int_equal(p->dns.n_nameservers, 0);
        assert_null(p->dns.nameservers);
}

static void test_prev_result_1_0_0(void **state) {
        (void) state;
        _cleanup_(cni_netconf_freep) CniNetConf *c = parse_fixture(CNI_CMD_ADD, "prev-1.0.0.json");
        char b[KV_ADDR_STRLEN];
        assert_true(c->chained);
        assert_int_equal(c->binding, CNI_BINDING_MASQUERADE);
        CniResult *p = c->prev_result;
        assert_string_equal(p->cni_version, "1.0.0");
        assert_int_equal(p->n_ips, 1);
        assert_string_equal(kv_prefix_fmt(&p->ips[0].address, b), "192.168.5.9/16");
        assert_int_equal(p->ips[0].gateway.family, 0);
        assert_string_equal(p->dns.domain, "example.org");
        assert_string_equal(p->dns.options[0], "ndots:5");
}

/* ---- result conversion ---- */

static void test_result_conversion(void **state) {
        (void) state;
        _cleanup_json_ json_t *in = load_data("netd-result.json");
        _cleanup_(cni_result_freep) CniResult *res = NULL;
        KvErr e = {};
        assert_int_equal(cni_result_parse(in, "netd result", "1.1.0", &res, &e), 0);
        for (size_t i = 0; cni_supported_versions[i]; i++) {
                _cleanup_json_ json_t *out = NULL;
                char name[64];
                assert_int_equal(cni_result_to_json(res, cni_supported_versions[i], &out), 0);
                assert_string_equal(json_string_value(json_object_get(out, "cniVersion")), cni_supported_versions[i]);
                snprintf(name, sizeof name, "result-%s.json", cni_supported_versions[i]);
                assert_golden(out, name);
                /* the legacy versions carry ips[].version */
                json_t *ip1 = json_array_get(json_object_get(out, "ips"), 1);
                if (cni_version_cmp(cni_supported_versions[i], "1.0.0") < 0)
                        assert_string_equal(json_string_value(json_object_get(ip1, "version")), "6");
                else
                        assert_null(json_object_get(ip1, "version"));
        }
        _cleanup_json_ json_t *bad = NULL;
        assert_int_equal(cni_result_to_json(res, "0.2.0", &bad), -EINVAL);

        /* round trip: parsing a converted 0.3.1 result yields the same 1.1 output minus 1.1 extras */
        _cleanup_json_ json_t *old = NULL, *again = NULL, *want = NULL;
        _cleanup_(cni_result_freep) CniResult *res2 = NULL;
        assert_int_equal(cni_result_to_json(res, "0.3.1", &old), 0);
        assert_int_equal(cni_result_parse(old, "r", NULL, &res2, &e), 0);
        assert_int_equal(cni_result_to_json(res2, "1.0.0", &again), 0);
        assert_int_equal(cni_result_to_json(res, "1.0.0", &want), 0);
        assert_true(json_equal(again, want));
}

/* ---- requests ---- */

static json_t *build_request(CniCommand cmd, const char *fixture, const char *cni_args, const char **ret_op) {
        _cleanup_free_ char *json = read_data(fixture);
        CniEnv env = { .command = cmd, .container_id = "c1", .ifname = "eth0", .netns = "/var/run/netns/x" };
        if (cmd == CNI_CMD_DEL)
                env.netns = NULL;
        if (cmd == CNI_CMD_GC || cmd == CNI_CMD_STATUS)
                env.container_id = env.ifname = env.netns = NULL;
        CniArgs args = {};
        KvErr e = {};
        assert_int_equal(cni_args_parse(cni_args, &args, &e), 0);
        _cleanup_(cni_netconf_freep) CniNetConf *c = NULL;
        if (cni_netconf_parse(json, strlen(json), &env, &args, &c, &e) < 0)
                fail_msg("%s: %s", fixture, e.msg);
        cni_args_done(&args);
        json_t *req = NULL;
        assert_int_equal(cni_request_build(&env, c, ret_op, &req), 0);
        return req;
}

static void test_request_add(void **state) {
        (void) state;
        const char *op;
        _cleanup_json_ json_t *req = build_request(CNI_CMD_ADD, "netconf-main.json", NULL, &op);
        assert_string_equal(op, "add");
        assert_golden(req, "request-add.json");
        assert_int_equal(cni_request_timeout_ms(CNI_CMD_ADD), 60000);
}

static void test_request_add_sriov(void **state) {
        (void) state;
        const char *op;
        _cleanup_json_ json_t *req = build_request(CNI_CMD_ADD, "netconf-sriov.json",
                                                   "K8S_POD_NAMESPACE=ns1;KVNET_VM_NAME=vm1;KVNET_VM_INTERFACE=net1", &op);
        assert_string_equal(op, "add");
        json_t *net = json_object_get(req, "network");
        assert_string_equal(json_string_value(json_object_get(net, "binding")), "sriov");
        assert_string_equal(json_string_value(json_object_get(net, "resourceName")), "intel.com/sriov_netdevice");
        assert_true(json_is_false(json_object_get(net, "spoofchk")));
        assert_true(json_is_true(json_object_get(net, "trust")));
        assert_golden(req, "request-add-sriov.json");
        /* netd's sriov result: pciID survives for 1.1.0 and is dropped for older versions */
        const char *netd_res = "{\"cniVersion\":\"1.1.0\",\"interfaces\":[{\"name\":\"net1\",\"mac\":\"02:00:00:00:00:07\","
                               "\"sandbox\":\"/var/run/netns/x\",\"pciID\":\"0000:3b:02.1\"}],"
                               "\"ips\":[{\"address\":\"10.99.0.7/24\",\"gateway\":\"10.99.0.1\",\"interface\":0}]}";
        _cleanup_json_ json_t *nr = json_loads(netd_res, 0, NULL);
        assert_non_null(nr);
        _cleanup_(cni_result_freep) CniResult *res = NULL;
        KvErr e = {};
        assert_int_equal(cni_result_parse(nr, "result", NULL, &res, &e), 0);
        _cleanup_json_ json_t *v11 = NULL, *v10 = NULL;
        assert_int_equal(cni_result_to_json(res, "1.1.0", &v11), 0);
        assert_int_equal(cni_result_to_json(res, "1.0.0", &v10), 0);
        assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(v11, "interfaces"), 0), "pciID")),
                            "0000:3b:02.1");
        assert_null(json_object_get(json_array_get(json_object_get(v10, "interfaces"), 0), "pciID"));
        /* other bindings do not carry the SR-IOV keys */
        _cleanup_json_ json_t *br = build_request(CNI_CMD_ADD, "netconf-main.json", NULL, &op);
        assert_null(json_object_get(json_object_get(br, "network"), "resourceName"));
        assert_null(json_object_get(json_object_get(br, "network"), "spoofchk"));
}

static void test_request_add_chained(void **state) {
        (void) state;
        const char *op;
        _cleanup_json_ json_t *req = build_request(CNI_CMD_ADD, "prev-0.3.1.json",
                                                   "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;KVNET_VM_NAME=vm1;X=y", &op);
        assert_string_equal(op, "add");
        assert_true(json_is_true(json_object_get(req, "chained")));
        assert_null(json_object_get(json_object_get(req, "network"), "ipam"));
        assert_golden(req, "request-add-chained.json");
}

static void test_request_del(void **state) {
        (void) state;
        const char *op;
        _cleanup_json_ json_t *req = build_request(CNI_CMD_DEL, "netconf-main.json", NULL, &op);
        assert_string_equal(op, "del");
        assert_string_equal(json_string_value(json_object_get(req, "netns")), "");
        assert_golden(req, "request-del.json");
}

static void test_request_gc_status(void **state) {
        (void) state;
        const char *op;
        _cleanup_json_ json_t *req = build_request(CNI_CMD_GC, "netconf-gc.json", NULL, &op);
        assert_string_equal(op, "gc");
        assert_golden(req, "request-gc.json");
        _cleanup_json_ json_t *st = build_request(CNI_CMD_STATUS, "netconf-gc.json", NULL, &op);
        assert_string_equal(op, "status");
        _cleanup_json_ json_t *want = json_pack("{s:s}", "network", "vmnet");
        assert_true(json_equal(st, want));
        assert_int_equal(cni_request_timeout_ms(CNI_CMD_STATUS), 5000);
        assert_int_equal(cni_request_timeout_ms(CNI_CMD_GC), 60000);
}

/* ---- whole runs ---- */

typedef struct Run {
        int status;
        char *out;
        json_t *obj; /* parsed stdout, NULL if empty */
} Run;

static void run_done(Run *r) {
        free(r->out);
        json_decref(r->obj);
}

static Run run_plugin(char **envp, const char *stdin_text, size_t len) {
        Run run = {};
        FILE *in = fmemopen((void *) (stdin_text ? stdin_text : ""), stdin_text ? len : 0, "r");
        if (!in)
                in = fopen("/dev/null", "r");
        size_t outlen = 0;
        FILE *out = open_memstream(&run.out, &outlen);
        FILE *err = fopen("/dev/null", "w");
        assert_non_null(in);
        assert_non_null(out);
        run.status = cni_run(in, out, err, envp);
        fclose(in);
        fclose(out);
        fclose(err);
        if (outlen > 0) {
                json_error_t je;
                run.obj = json_loads(run.out, 0, &je);
                if (!run.obj)
                        fail_msg("stdout is not JSON: '%s'", run.out);
                /* exactly one object and a newline */
                assert_int_equal(run.out[outlen - 1], '\n');
        }
        return run;
}

static void assert_error_obj(const Run *r, int code, const char *version, const char *needle) {
        assert_int_equal(r->status, 1);
        assert_non_null(r->obj);
        assert_int_equal(json_integer_value(json_object_get(r->obj, "code")), code);
        assert_string_equal(json_string_value(json_object_get(r->obj, "cniVersion")), version);
        assert_true(json_is_string(json_object_get(r->obj, "msg")));
        if (needle)
                assert_contains(json_string_value(json_object_get(r->obj, "msg")), needle);
}

static void test_run_version(void **state) {
        (void) state;
        char *envp[] = { "CNI_COMMAND=VERSION", "CNI_NETNS=dummy", NULL };
        const char *in = "{\"cniVersion\":\"0.4.0\"}";
        _cleanup_(run_done) Run r = run_plugin(envp, in, strlen(in));
        assert_int_equal(r.status, 0);
        _cleanup_json_ json_t *want = json_pack("{s:s,s:[s,s,s,s]}", "cniVersion", "0.4.0", "supportedVersions",
                                                "0.3.1", "0.4.0", "1.0.0", "1.1.0");
        assert_true(json_equal(r.obj, want));

        _cleanup_(run_done) Run r2 = run_plugin(envp, "", 0);
        assert_int_equal(r2.status, 0);
        assert_string_equal(json_string_value(json_object_get(r2.obj, "cniVersion")), "1.1.0");
        assert_int_equal(json_array_size(json_object_get(r2.obj, "supportedVersions")), 4);

        _cleanup_(run_done) Run r3 = run_plugin(envp, "{}", 2);
        assert_string_equal(json_string_value(json_object_get(r3.obj, "cniVersion")), "1.1.0");

        _cleanup_(run_done) Run r4 = run_plugin(envp, "{x", 2);
        assert_error_obj(&r4, KV_ERR_DECODE, "1.1.0", "malformed");
}

static void test_error_object(void **state) {
        (void) state;
        KvErr e = {};
        kverr_set(&e, KV_ERR_INVALID_CONFIG, -EINVAL, "netconf: 'vlan' must be 0..4094, got %d", 5000);
        _cleanup_json_ json_t *o = cni_error_to_json(&e, "0.4.0");
        _cleanup_json_ json_t *want = json_pack("{s:s,s:i,s:s}", "cniVersion", "0.4.0", "code", 7, "msg",
                                                "netconf: 'vlan' must be 0..4094, got 5000");
        assert_true(json_equal(o, want)); /* no empty "details" */

        KvErr e2 = {};
        kverr_set_errno(&e2, KV_ERR_TRY_AGAIN, -ECONNREFUSED, "netd is not reachable at '%s'", "/x");
        _cleanup_json_ json_t *o2 = cni_error_to_json(&e2, NULL);
        assert_string_equal(json_string_value(json_object_get(o2, "cniVersion")), "1.1.0");
        assert_string_equal(json_string_value(json_object_get(o2, "details")), strerror(ECONNREFUSED));

        /* a whole run: bad env -> code 4 with the config's version, exit status 1 */
        char *envp[] = { "CNI_COMMAND=ADD", "CNI_CONTAINERID=c1", "CNI_NETNS=/x", "CNI_IFNAME=a/b", NULL };
        const char *in = "{" BASE "," IPAM "}";
        _cleanup_(run_done) Run r = run_plugin(envp, in, strlen(in));
        assert_error_obj(&r, KV_ERR_INVALID_ENV, "1.0.0", "'a/b'");
        assert_null(json_object_get(r.obj, "details"));

        char *envp2[] = { "CNI_COMMAND=BOGUS", NULL };
        _cleanup_(run_done) Run r2 = run_plugin(envp2, in, strlen(in));
        assert_error_obj(&r2, KV_ERR_INVALID_ENV, "1.1.0", "'BOGUS'");

        /* unsupported version: the error carries 1.1.0 */
        char *envp3[] = { "CNI_COMMAND=ADD", "CNI_CONTAINERID=c1", "CNI_NETNS=/x", "CNI_IFNAME=eth0", NULL };
        const char *in3 = "{\"cniVersion\":\"0.2.0\",\"name\":\"n\",\"type\":\"kvnet\"}";
        _cleanup_(run_done) Run r3 = run_plugin(envp3, in3, strlen(in3));
        assert_error_obj(&r3, KV_ERR_INCOMPATIBLE_VERSION, "1.1.0", "'0.2.0'");

        /* CNI_ARGS errors are environment errors */
        char *envp4[] = { "CNI_COMMAND=ADD", "CNI_CONTAINERID=c1", "CNI_NETNS=/x", "CNI_IFNAME=eth0", "CNI_ARGS=A=b",
                          NULL };
        _cleanup_(run_done) Run r4 = run_plugin(envp4, in, strlen(in));
        assert_error_obj(&r4, KV_ERR_INVALID_ENV, "1.0.0", "'A'");
}

static void test_run_oversized_stdin(void **state) {
        (void) state;
        size_t n = CNI_MAX_STDIN + 4096 + 3;
        _cleanup_free_ char *big = malloc(n);
        assert_non_null(big);
        memset(big, ' ', n);
        char *envp[] = { "CNI_COMMAND=ADD", "CNI_CONTAINERID=c1", "CNI_NETNS=/x", "CNI_IFNAME=eth0", NULL };
        _cleanup_(run_done) Run r = run_plugin(envp, big, n);
        assert_error_obj(&r, KV_ERR_DECODE, "1.1.0", "1052675 bytes");
        assert_contains(json_string_value(json_object_get(r.obj, "msg")), "1048576");
}

/* A temp dir with a socket path in it. */
typedef struct TmpSock {
        char dir[64];
        char path[128];
} TmpSock;

static void tmpsock_init(TmpSock *t) {
        snprintf(t->dir, sizeof t->dir, "/tmp/kvnet-test-cni-XXXXXX");
        assert_non_null(mkdtemp(t->dir));
        snprintf(t->path, sizeof t->path, "%s/netd.sock", t->dir);
}

static void tmpsock_done(TmpSock *t) {
        unlink(t->path);
        rmdir(t->dir);
}

static char *conf_with_socket(const char *version, const char *extra, const char *socket) {
        char *s = NULL;
        assert_true(asprintf(&s, "{\"cniVersion\":\"%s\",\"name\":\"vmnet\",\"type\":\"kvnet\",\"socket\":\"%s\"%s%s}",
                             version, socket, extra ? "," : "", extra ? extra : "") > 0);
        return s;
}

static void test_run_unreachable(void **state) {
        (void) state;
        _cleanup_(tmpsock_done) TmpSock t = {};
        tmpsock_init(&t);
        char *add[] = { "CNI_COMMAND=ADD", "CNI_CONTAINERID=c1", "CNI_NETNS=/x", "CNI_IFNAME=eth0", NULL };
        _cleanup_free_ char *conf = conf_with_socket("0.4.0", IPAM, t.path);
        _cleanup_(run_done) Run r = run_plugin(add, conf, strlen(conf));
        char want[256];
        snprintf(want, sizeof want, "netd is not reachable at '%s'", t.path);
        assert_error_obj(&r, KV_ERR_TRY_AGAIN, "0.4.0", want);

        /* a socket file nobody listens on: ECONNREFUSED, same code */
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa;
        socklen_t sa_len;
        assert_int_equal(unix_sockaddr("test", t.path, &sa, &sa_len, NULL), 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sa_len), 0);
        close(fd);
        _cleanup_(run_done) Run r1 = run_plugin(add, conf, strlen(conf));
        assert_error_obj(&r1, KV_ERR_TRY_AGAIN, "0.4.0", want);

        char *status[] = { "CNI_COMMAND=STATUS", NULL };
        _cleanup_free_ char *conf2 = conf_with_socket("1.1.0", NULL, t.path);
        _cleanup_(run_done) Run r2 = run_plugin(status, conf2, strlen(conf2));
        assert_error_obj(&r2, KV_ERR_NOT_AVAILABLE, "1.1.0", want);
}

/* A fake netd: accepts one connection, records the request line, answers with a canned line. */
typedef struct FakeNetd {
        int listen_fd;
        const char *reply;
        char request[65536];
} FakeNetd;

static void *fake_netd_thread(void *p) {
        FakeNetd *f = p;
        int fd = accept(f->listen_fd, NULL, NULL);
        if (fd < 0)
                return NULL;
        size_t len = 0;
        while (len < sizeof f->request - 1) {
                ssize_t n = read(fd, f->request + len, sizeof f->request - 1 - len);
                if (n <= 0)
                        break;
                len += (size_t) n;
                if (f->request[len - 1] == '\n')
                        break;
        }
        f->request[len] = '\0';
        (void) !write(fd, f->reply, strlen(f->reply));
        (void) !write(fd, "\n", 1);
        close(fd);
        return NULL;
}

static Run run_against_fake(char **envp, const char *conf_extra, const char *version, const char *reply,
                            json_t **ret_request) {
        _cleanup_(tmpsock_done) TmpSock t = {};
        tmpsock_init(&t);
        FakeNetd f = { .reply = reply };
        f.listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sa;
        socklen_t sa_len;
        assert_int_equal(unix_sockaddr("test", t.path, &sa, &sa_len, NULL), 0);
        assert_int_equal(bind(f.listen_fd, (struct sockaddr *) &sa, sa_len), 0);
        assert_int_equal(listen(f.listen_fd, 1), 0);
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, fake_netd_thread, &f), 0);

        _cleanup_free_ char *conf = conf_with_socket(version, conf_extra, t.path);
        Run r = run_plugin(envp, conf, strlen(conf));
        shutdown(f.listen_fd, SHUT_RDWR);
        pthread_join(th, NULL);
        close(f.listen_fd);
        json_error_t je;
        *ret_request = json_loads(f.request, 0, &je);
        if (!*ret_request)
                fail_msg("fake netd got no JSON request: '%s'", f.request);
        return r;
}

static void test_run_fake_netd_add(void **state) {
        (void) state;
        _cleanup_json_ json_t *canned = load_data("netd-result.json");
        _cleanup_json_ json_t *reply_obj = json_pack("{s:b,s:O}", "ok", 1, "result", canned);
        _cleanup_free_ char *reply = json_dumps(reply_obj, JSON_COMPACT);
        char *envp[] = { "CNI_COMMAND=ADD", "CNI_CONTAINERID=c1", "CNI_NETNS=/var/run/netns/x", "CNI_IFNAME=eth0",
                         "CNI_ARGS=K8S_POD_NAMESPACE=ns1;KVNET_VM_NAME=vm1", NULL };
        for (size_t i = 0; cni_supported_versions[i]; i++) {
                const char *v = cni_supported_versions[i];
                _cleanup_json_ json_t *req = NULL;
                _cleanup_(run_done) Run r = run_against_fake(envp, IPAM, v, reply, &req);
                if (r.status != 0)
                        fail_msg("%s: %s", v, r.out);
                char name[64];
                snprintf(name, sizeof name, "result-%s.json", v);
                assert_golden(r.obj, name);
                assert_string_equal(json_string_value(json_object_get(req, "op")), "add");
                json_t *args = json_object_get(req, "args");
                assert_string_equal(json_string_value(json_object_get(args, "containerID")), "c1");
                assert_string_equal(json_string_value(json_object_get(json_object_get(args, "vm"), "namespace")),
                                    "ns1");
                assert_non_null(json_object_get(json_object_get(args, "network"), "ipam"));
        }
}

static void test_run_fake_netd_error_and_quiet(void **state) {
        (void) state;
        char *add[] = { "CNI_COMMAND=ADD", "CNI_CONTAINERID=c1", "CNI_NETNS=/x", "CNI_IFNAME=eth0", NULL };
        _cleanup_json_ json_t *req = NULL;
        _cleanup_(run_done) Run r = run_against_fake(
                add, IPAM, "1.0.0",
                "{\"ok\":false,\"code\":102,\"msg\":\"attachment c1/eth0 exists\",\"details\":\"network vmnet\"}", &req);
        assert_error_obj(&r, KV_ERR_EXISTS, "1.0.0", "attachment c1/eth0 exists");
        assert_string_equal(json_string_value(json_object_get(r.obj, "details")), "network vmnet");

        /* a result netd should never send: 999 */
        _cleanup_json_ json_t *req1 = NULL;
        _cleanup_(run_done) Run r1 = run_against_fake(add, IPAM, "1.0.0",
                                                      "{\"ok\":true,\"result\":{\"ips\":[{\"address\":\"x\"}]}}", &req1);
        assert_error_obj(&r1, KV_ERR_INTERNAL, "1.0.0", "netd result.ips[0].address");

        /* DEL, CHECK, GC and STATUS print nothing on success */
        char *del[] = { "CNI_COMMAND=DEL", "CNI_CONTAINERID=c1", "CNI_IFNAME=eth0", NULL };
        _cleanup_json_ json_t *req2 = NULL;
        _cleanup_(run_done) Run r2 = run_against_fake(del, IPAM, "0.3.1", "{\"ok\":true,\"result\":{}}", &req2);
        assert_int_equal(r2.status, 0);
        assert_null(r2.obj);
        assert_string_equal(json_string_value(json_object_get(req2, "op")), "del");

        char *check[] = { "CNI_COMMAND=CHECK", "CNI_CONTAINERID=c1", "CNI_NETNS=/x", "CNI_IFNAME=eth0", NULL };
        _cleanup_json_ json_t *req3 = NULL;
        _cleanup_(run_done) Run r3 = run_against_fake(
                check, IPAM ",\"prevResult\":{\"cniVersion\":\"0.4.0\",\"ips\":[{\"version\":\"4\",\"address\":\"10.88.0.7/24\"}]}",
                "0.4.0", "{\"ok\":true}", &req3);
        assert_int_equal(r3.status, 0);
        assert_null(r3.obj);
        json_t *a3 = json_object_get(req3, "args");
        assert_string_equal(json_string_value(json_object_get(req3, "op")), "check");
        assert_false(json_is_true(json_object_get(a3, "chained")));
        assert_string_equal(
                json_string_value(json_object_get(json_array_get(json_object_get(json_object_get(a3, "prevResult"), "ips"), 0),
                                                  "address")),
                "10.88.0.7/24");

        char *gc[] = { "CNI_COMMAND=GC", NULL };
        _cleanup_json_ json_t *req4 = NULL;
        _cleanup_(run_done) Run r4 = run_against_fake(
                gc, "\"cni.dev/valid-attachments\":[{\"containerID\":\"c9\",\"ifname\":\"eth1\"}]", "1.1.0",
                "{\"ok\":true}", &req4);
        assert_int_equal(r4.status, 0);
        assert_null(r4.obj);
        _cleanup_json_ json_t *want4 = json_pack("{s:s,s:{s:s,s:[{s:s,s:s}]}}", "op", "gc", "args", "network", "vmnet",
                                                 "validAttachments", "containerID", "c9", "ifname", "eth1");
        assert_true(json_equal(req4, want4));

        char *status[] = { "CNI_COMMAND=STATUS", NULL };
        _cleanup_json_ json_t *req5 = NULL;
        _cleanup_(run_done) Run r5 = run_against_fake(status, NULL, "1.1.0", "{\"ok\":true}", &req5);
        assert_int_equal(r5.status, 0);
        assert_null(r5.obj);

        /* STATUS: netd's own "not available" passes through */
        _cleanup_json_ json_t *req6 = NULL;
        _cleanup_(run_done) Run r6 = run_against_fake(status, NULL, "1.1.0",
                                                      "{\"ok\":false,\"code\":51,\"msg\":\"ipam full\"}", &req6);
        assert_error_obj(&r6, KV_ERR_NOT_AVAILABLE_LIMITED, "1.1.0", "ipam full");
        assert_null(json_object_get(r6.obj, "details"));
}

int main(void) {
        find_data_dir();
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_env_add_ok),
                cmocka_unit_test(test_env_command),
                cmocka_unit_test(test_env_container_id),
                cmocka_unit_test(test_env_ifname),
                cmocka_unit_test(test_env_netns),
                cmocka_unit_test(test_env_version_status_gc_ignore_container),
                cmocka_unit_test(test_args_ok),
                cmocka_unit_test(test_args_unknown),
                cmocka_unit_test(test_args_malformed),
                cmocka_unit_test(test_netconf_defaults_each_version),
                cmocka_unit_test(test_netconf_full),
                cmocka_unit_test(test_netconf_cni_versions),
                cmocka_unit_test(test_netconf_bad),
                cmocka_unit_test(test_netconf_oversized),
                cmocka_unit_test(test_netconf_sriov_del_ok),
                cmocka_unit_test(test_request_add_sriov),
                cmocka_unit_test(test_netconf_socket_env),
                cmocka_unit_test(test_netconf_vm_identity),
                cmocka_unit_test(test_prev_result_0_3_1),
                cmocka_unit_test(test_prev_result_0_4_0),
                cmocka_unit_test(test_prev_result_1_0_0),
                cmocka_unit_test(test_result_conversion),
                cmocka_unit_test(test_request_add),
                cmocka_unit_test(test_request_add_chained),
                cmocka_unit_test(test_request_del),
                cmocka_unit_test(test_request_gc_status),
                cmocka_unit_test(test_run_version),
                cmocka_unit_test(test_error_object),
                cmocka_unit_test(test_run_oversized_stdin),
                cmocka_unit_test(test_run_unreachable),
                cmocka_unit_test(test_run_fake_netd_add),
                cmocka_unit_test(test_run_fake_netd_error_and_quiet),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
