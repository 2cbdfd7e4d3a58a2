/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of node/ (the kubelet stand-in's CNI runtime core): config loading and validation,
 * CNI_ARGS, capability filtering, the libcni cache format, plugin error parsing, typed results. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <limits.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/base64.h"
#include "node/node-priv.h"
#include "tmpdir.h"

static int parse(const char *text, NodeCniNetwork **ret, NodeErr *e) {
        return node_cni_network_parse(text, strlen(text), "t.conflist", ret, e);
}

static void expect_bad(const char *text, const char *needle) {
        NodeCniNetwork *n = NULL;
        NodeErr e = { 0 };
        assert_true(parse(text, &n, &e) < 0);
        assert_null(n);
        assert_int_equal(e.kind, NODE_ERR_CONFIG);
        if (!strstr(e.msg, needle))
                fail_msg("error '%s' lacks '%s'", e.msg, needle);
        node_err_done(&e);
}

static void test_config_ok(void **state) {
        (void) state;
        NodeCniNetwork *n = NULL;
        NodeErr e = { 0 };
        assert_int_equal(parse("{\"cniVersion\":\"1.0.0\",\"name\":\"net1\",\"plugins\":[{\"type\":\"bridge\","
                               "\"capabilities\":{\"portMappings\":true,\"ips\":false}},{\"type\":\"tuning\"}]}",
                               &n, &e),
                         0);
        assert_string_equal(n->name, "net1");
        assert_string_equal(n->cni_version, "1.0.0");
        assert_int_equal(n->n_plugins, 2);
        assert_string_equal(n->plugins[0].type, "bridge");
        assert_int_equal(n->plugins[0].n_capabilities, 1);
        assert_string_equal(n->plugins[0].capabilities[0], "portMappings");
        node_cni_network_free(n);

        /* a single config is a one-plugin list */
        assert_int_equal(parse("{\"cniVersion\":\"0.4.0\",\"name\":\"one\",\"type\":\"ptp\"}", &n, &e), 0);
        assert_int_equal(n->n_plugins, 1);
        assert_string_equal(n->plugins[0].type, "ptp");
        assert_non_null(strstr(n->bytes, "\"plugins\""));
        node_cni_network_free(n);
}

static void test_config_bad(void **state) {
        (void) state;
        expect_bad("{\"name\":", "invalid JSON");
        expect_bad("[1]", "must be a JSON object");
        expect_bad("{\"cniVersion\":\"1.0.0\",\"plugins\":[{\"type\":\"a\"}]}", "'name' is required");
        expect_bad("{\"cniVersion\":\"1.0.0\",\"name\":\"a/b\",\"plugins\":[{\"type\":\"a\"}]}", "'name' must be");
        expect_bad("{\"name\":\"n\",\"plugins\":[{\"type\":\"a\"}]}", "'cniVersion' is required");
        expect_bad("{\"cniVersion\":\"one\",\"name\":\"n\",\"plugins\":[{\"type\":\"a\"}]}", "'cniVersion' must be");
        expect_bad("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{\"type\":\"../bin/sh\"}]}",
                   "'plugins[0].type' must be a plugin file name");
        expect_bad("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{\"type\":\"a\"},{\"type\":\"/bin/x\"}]}",
                   "got '/bin/x'");
        expect_bad("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{\"notype\":1}]}", "'plugins[0].type' must be a string");
        expect_bad("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[]}", "must hold 1..");
        expect_bad("{\"cniVersion\":\"1.0.0\",\"name\":\"n\"}", "neither 'plugins' nor 'type'");
        /* duplicate keys are ambiguous */
        expect_bad("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"name\":\"m\",\"plugins\":[{\"type\":\"a\"}]}",
                   "invalid JSON");
        expect_bad("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{\"type\":\"a\",\"capabilities\":{\"ips\":1}}]}",
                   "'plugins[0].capabilities.ips' must be a boolean");

        /* oversized */
        size_t big = NODE_CNI_CONF_MAX + 1;
        char *s = malloc(big + 1);
        assert_non_null(s);
        memset(s, ' ', big);
        s[big] = '\0';
        NodeCniNetwork *n = NULL;
        NodeErr e = { 0 };
        assert_int_equal(node_cni_network_parse(s, big, "big", &n, &e), -EFBIG);
        assert_non_null(strstr(e.msg, "larger than"));
        node_err_done(&e);
        free(s);
}

static void test_type_valid(void **state) {
        (void) state;
        assert_true(node_cni_type_valid("host-local"));
        assert_true(node_cni_type_valid("kvnet"));
        assert_false(node_cni_type_valid(""));
        assert_false(node_cni_type_valid(".."));
        assert_false(node_cni_type_valid("a/b"));
        assert_false(node_cni_type_valid("a b"));
}

static void test_args(void **state) {
        (void) state;
        NodePodRef pod = { "default", "virt-launcher-vm1", "u-1" };
        NodeCniArg extra[] = { { "KVNET_VM_NAME", "vm1" } };
        NodeCniAttachment a = { .container_id = "cid1", .netns = "/run/netns/x", .ifname = "eth0", .pod = &pod,
                                .args = extra, .n_args = 1 };
        char *s = NULL;
        NodeErr e = { 0 };
        assert_int_equal(node_cni_args_build(&a, &s, &e), 0);
        assert_string_equal(s, "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=virt-launcher-vm1;"
                               "K8S_POD_INFRA_CONTAINER_ID=cid1;K8S_POD_UID=u-1;KVNET_VM_NAME=vm1");
        free(s);

        a.pod = NULL;
        assert_int_equal(node_cni_args_build(&a, &s, &e), 0);
        assert_string_equal(s, "KVNET_VM_NAME=vm1");
        free(s);

        NodeCniArg bad[] = { { "K", "a;b" } };
        a.args = bad;
        assert_int_equal(node_cni_args_build(&a, &s, &e), -EINVAL);
        assert_int_equal(e.kind, NODE_ERR_ARGS);
        assert_non_null(strstr(e.msg, "'K'"));
        node_err_done(&e);

        a.args = NULL;
        a.n_args = 0;
        a.ifname = "a/b";
        assert_int_equal(node_cni_args_build(&a, &s, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "ifname"));
        node_err_done(&e);
        a.ifname = "eth0";
        a.container_id = "-x";
        assert_int_equal(node_cni_args_build(&a, &s, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "container ID"));
        node_err_done(&e);

        char buf[] = "A=1;B=2=3;;C=";
        NodeCniArg *v = NULL;
        size_t n = 0;
        assert_int_equal(node_cni_args_split(buf, &v, &n, &e), 0);
        assert_int_equal(n, 3);
        assert_string_equal(v[1].key, "B");
        assert_string_equal(v[1].value, "2=3");
        assert_string_equal(v[2].value, "");
        free(v);
        char bad2[] = "A=1;novalue";
        assert_int_equal(node_cni_args_split(bad2, &v, &n, &e), -EINVAL);
        node_err_done(&e);
}

static void test_stdin_caps(void **state) {
        (void) state;
        NodeCniNetwork *n = NULL;
        NodeErr e = { 0 };
        assert_int_equal(parse("{\"cniVersion\":\"1.0.0\",\"name\":\"net\",\"plugins\":[{\"type\":\"a\","
                               "\"capabilities\":{\"portMappings\":true,\"mac\":false}},{\"type\":\"b\"}]}",
                               &n, &e),
                         0);
        NodeCniArg caps[] = { { "portMappings", "[{\"hostPort\":1}]" }, { "mac", "\"aa:bb:cc:dd:ee:ff\"" } };
        char *s = NULL;
        assert_int_equal(node_cni_stdin_build(n, &n->plugins[0], "{\"cniVersion\":\"1.0.0\"}", caps, 2, NULL, NULL, &s, &e),
                         0);
        json_error_t jerr;
        json_t *o = json_loads(s, 0, &jerr);
        assert_string_equal(json_string_value(json_object_get(o, "name")), "net");
        assert_string_equal(json_string_value(json_object_get(o, "cniVersion")), "1.0.0");
        assert_non_null(json_object_get(o, "prevResult"));
        json_t *rc = json_object_get(o, "runtimeConfig");
        assert_int_equal(json_object_size(rc), 1);
        assert_non_null(json_object_get(rc, "portMappings"));
        json_decref(o);
        free(s);

        assert_int_equal(node_cni_stdin_build(n, &n->plugins[1], NULL, caps, 2, NULL, NULL, &s, &e), 0);
        o = json_loads(s, 0, &jerr);
        assert_null(json_object_get(o, "runtimeConfig"));
        assert_null(json_object_get(o, "prevResult"));
        json_decref(o);
        free(s);
        node_cni_network_free(n);
}

static void test_cache_roundtrip(void **state) {
        (void) state;
        NodeCniNetwork *n = NULL;
        NodeErr e = { 0 };
        const char *conf = "{\"cniVersion\":\"1.0.0\",\"name\":\"net\",\"plugins\":[{\"type\":\"a\"}]}";
        assert_int_equal(parse(conf, &n, &e), 0);
        NodePodRef pod = { "ns", "p", "uid" };
        NodeCniArg caps[] = { { "portMappings", "[{\"hostPort\":8080}]" } };
        NodeCniAttachment a = { .container_id = "cid", .netns = "/run/netns/s", .ifname = "eth0", .pod = &pod,
                                .caps = caps, .n_caps = 1 };
        const char *result = "{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.0.0.2/24\"}]}";
        char *text = NULL;
        assert_int_equal(node_cni_cache_encode(n, &a, result, &text, &e), 0);

        /* libcni's keys, in its order */
        const char *keys[] = { "\"kind\":\"cniCacheV1\"", "\"containerId\":\"cid\"", "\"config\":", "\"ifName\":\"eth0\"",
                               "\"networkName\":\"net\"", "\"netns\":\"/run/netns/s\"", "\"cniArgs\":[[\"IgnoreUnknown\",\"1\"]",
                               "\"capabilityArgs\":{\"portMappings\":", "\"result\":{" };
        const char *prev = text;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                const char *p = strstr(text, keys[i]);
                if (!p || p < prev)
                        fail_msg("'%s' missing or out of order in %s", keys[i], text);
                prev = p;
        }

        NodeCniCacheEntry *c = NULL;
        assert_int_equal(node_cni_cache_decode(text, strlen(text), &c, &e), 0);
        assert_string_equal(c->container_id, "cid");
        assert_string_equal(c->ifname, "eth0");
        assert_string_equal(c->network, "net");
        assert_string_equal(c->netns, "/run/netns/s");
        assert_int_equal(c->n_args, 5);
        assert_string_equal(c->arg_keys[1], "K8S_POD_NAMESPACE");
        assert_string_equal(c->arg_values[1], "ns");
        assert_int_equal(c->n_caps, 1);
        assert_string_equal(c->cap_values[0], "[{\"hostPort\":8080}]");
        assert_string_equal(c->config, conf);
        assert_non_null(strstr(c->result, "10.0.0.2/24"));
        node_cni_cache_entry_free(c);
        free(text);

        /* no netns, args or caps: left out (omitempty) */
        NodeCniAttachment b = { .container_id = "cid", .ifname = "eth0" };
        assert_int_equal(node_cni_cache_encode(n, &b, result, &text, &e), 0);
        assert_null(strstr(text, "netns"));
        assert_null(strstr(text, "cniArgs"));
        assert_null(strstr(text, "capabilityArgs"));
        free(text);

        assert_int_equal(node_cni_cache_decode("{\"kind\":\"other\"}", 16, &c, &e), -EBADMSG);
        assert_int_equal(e.kind, NODE_ERR_CACHE);
        node_err_done(&e);
        node_cni_network_free(n);

        char *p = NULL;
        assert_int_equal(node_cni_cache_path("/var/lib/cni", "net", "cid", "eth0", &p), 0);
        assert_string_equal(p, "/var/lib/cni/results/net-cid-eth0");
        free(p);
        assert_int_equal(node_cni_cache_path("/c", "net", "a/b", "eth0", &p), -EINVAL);
}

static void test_base64(void **state) {
        (void) state;
        const char *in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
        const char *out[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
        for (size_t i = 0; i < ELEMENTSOF(in); i++) {
                char *s = NULL, *d = NULL;
                size_t n = 0;
                assert_int_equal(base64_encode(in[i], strlen(in[i]), &s), 0);
                assert_string_equal(s, out[i]);
                assert_int_equal(base64_decode(s, &d, &n), 0);
                assert_int_equal(n, strlen(in[i]));
                assert_memory_equal(d, in[i], n);
                free(s);
                free(d);
        }
        char *d = NULL;
        size_t n;
        assert_int_equal(base64_decode("Zm9", &d, &n), -EINVAL);
        assert_int_equal(base64_decode("Z=9v", &d, &n), -EINVAL);
}

static void test_plugin_error(void **state) {
        (void) state;
        NodeErr e = { 0 };
        assert_int_equal(node_err_from_plugin(&e, "kvnet", "ADD",
                                              "{\"cniVersion\":\"1.0.0\",\"code\":11,\"msg\":\"netd unreachable\","
                                              "\"details\":\"connect: ENOENT\"}",
                                              1),
                         -EPROTO);
        assert_int_equal(e.kind, NODE_ERR_PLUGIN);
        assert_string_equal(e.plugin, "kvnet");
        assert_string_equal(e.command, "ADD");
        assert_int_equal(e.code, 11);
        assert_string_equal(e.msg, "netd unreachable");
        assert_string_equal(e.details, "connect: ENOENT");
        assert_int_equal(e.exit_status, 1);
        assert_non_null(strstr(e.output, "\"code\":11"));
        node_err_done(&e);

        assert_int_equal(node_err_from_plugin(&e, "x", "DEL", "garbage", 2), -EPROTO);
        assert_int_equal(e.code, -1);
        assert_non_null(strstr(e.msg, "without an error object"));
        node_err_done(&e);
        assert_string_equal(node_err_kind_to_string(NODE_ERR_PLUGIN_NOT_FOUND), "plugin-not-found");
        assert_null(node_err_kind_to_string(_NODE_ERR_KIND_MAX));
}

static void test_result_parse(void **state) {
        (void) state;
        const char *ok = "{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"br0\",\"mac\":\"02:00:00:00:00:01\"},"
                         "{\"name\":\"eth0\",\"mac\":\"02:00:00:00:00:02\",\"sandbox\":\"/run/netns/s\"}],"
                         "\"ips\":[{\"interface\":1,\"address\":\"10.1.0.5/24\",\"gateway\":\"10.1.0.1\"}],"
                         "\"routes\":[{\"dst\":\"0.0.0.0/0\"}],\"dns\":{\"nameservers\":[\"10.1.0.1\"],\"search\":[\"a\"]}}";
        NodeCniResult *r = NULL;
        NodeErr e = { 0 };
        assert_int_equal(node_cni_result_parse(ok, strlen(ok), &r, &e), 0);
        assert_int_equal(r->n_interfaces, 2);
        assert_string_equal(r->interfaces[1].sandbox, "/run/netns/s");
        assert_string_equal(r->interfaces[0].sandbox, "");
        assert_int_equal(r->n_ips, 1);
        assert_int_equal(r->ips[0].interface, 1);
        assert_string_equal(r->ips[0].gateway, "10.1.0.1");
        assert_string_equal(r->routes[0].dst, "0.0.0.0/0");
        assert_string_equal(r->routes[0].gw, "");
        assert_int_equal(r->n_dns_nameservers, 1);
        assert_string_equal(r->dns_search[0], "a");
        assert_string_equal(r->raw, ok);
        node_cni_result_free(r);

        const char *bad[][2] = {
                { "[]", "not a JSON object" },
                { "{\"ips\":[{\"address\":\"10.1.0.5\"}]}", "'ips[0].address' must be an address/prefix" },
                { "{\"ips\":[{\"address\":\"10.1.0.5/24\",\"interface\":3}]}", "'ips[0].interface' must index" },
                { "{\"interfaces\":[{\"mac\":\"x\"}]}", "'interfaces[0].name' must be a string" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_true(node_cni_result_parse(bad[i][0], strlen(bad[i][0]), &r, &e) < 0);
                assert_int_equal(e.kind, NODE_ERR_RESULT);
                if (!strstr(e.msg, bad[i][1]))
                        fail_msg("'%s' lacks '%s'", e.msg, bad[i][1]);
                node_err_done(&e);
        }
}

static void test_version_cmp(void **state) {
        (void) state;
        assert_int_equal(node_cni_version_cmp("0.3.1", "0.4.0"), -1);
        assert_int_equal(node_cni_version_cmp("1.1.0", "1.1.0"), 0);
        assert_int_equal(node_cni_version_cmp("1.10.0", "1.2.0"), 1);
}

static void test_runtime_new(void **state) {
        (void) state;
        NodeCniRuntime *rt = NULL;
        NodeErr e = { 0 };
        assert_int_equal(node_cni_runtime_new("/opt/cni/bin:relative", "/var/lib/cni", &rt, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "'relative'"));
        node_err_done(&e);
        assert_int_equal(node_cni_runtime_new("/nonexistent:/also-not", "/tmp/c", &rt, &e), 0);
        assert_int_equal(rt->n_path, 2);
        char *bin = NULL;
        assert_int_equal(node_cni_find_plugin(rt, "bridge", &bin, &e), -ENOENT);
        assert_int_equal(e.kind, NODE_ERR_PLUGIN_NOT_FOUND);
        assert_non_null(strstr(e.msg, "'bridge'"));
        assert_non_null(strstr(e.msg, "/nonexistent:/also-not"));
        node_err_done(&e);
        char *env[] = { "PATH=/bin", "CNI_COMMAND=ADD", "X=1", NULL };
        assert_int_equal(node_cni_runtime_set_env(rt, env), 0);
        assert_int_equal(rt->n_env, 2);
        char **v = NULL;
        NodeCniCall c = { .command = "ADD", .container_id = "c", .netns = "/n", .ifname = "eth0", .args = "A=1" };
        assert_int_equal(node_cni_env_build(rt, &c, &v), 0);
        size_t n = 0;
        bool saw_args = false;
        for (; v[n]; n++)
                saw_args = saw_args || streq(v[n], "CNI_ARGS=A=1");
        assert_true(saw_args);
        assert_int_equal(n, 2 + 6);
        node_strv_free(v);
        node_cni_runtime_free(rt);
}


/* ---- fake plugins: a shell script per type that records its calls in $LOG */

static const char fake_script[] =
        "#!/bin/sh\n"
        "t=$(basename \"$0\")\n"
        "in=$(cat)\n"
        "echo \"$CNI_COMMAND $t args=$CNI_ARGS path=$CNI_PATH x=${NODE_TEST_X:-unset} cni=${CNI_FOO:-unset}\" >>\"$LOG\"\n"
        "case \"$t:$CNI_COMMAND\" in\n"
        "bad:ADD) echo '{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"bad: boom\",\"details\":\"field x\"}'; exit 1;;\n"
        "slow:*) sleep 5;;\n"
        "loud:*) head -c 200000 /dev/zero | tr '\\0' x;;\n"
        "*:ADD) echo '{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.9.0.2/24\"}]}';;\n"
        "*:VERSION) echo '{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"1.0.0\"]}';;\n"
        "esac\n"
        "exit 0\n";

typedef struct Fake {
        char dir[64];
        char log[PATH_MAX];
        NodeCniRuntime *rt;
} Fake;

static void fake_setup(Fake *f) {
        snprintf(f->dir, sizeof f->dir, "/tmp/kvnet-node-fake.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        char p[PATH_MAX + 64], bin[PATH_MAX], cache[PATH_MAX + 8];
        snprintf(bin, sizeof bin, "%s/bin", f->dir);
        assert_int_equal(mkdir(bin, 0755), 0);
        const char *types[] = { "ok", "bad", "slow", "loud" };
        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                snprintf(p, sizeof p, "%s/%s", bin, types[i]);
                FILE *fp = fopen(p, "w");
                assert_non_null(fp);
                fputs(fake_script, fp);
                fclose(fp);
                assert_int_equal(chmod(p, 0755), 0);
        }
        snprintf(p, sizeof p, "%s/notexec", bin);
        FILE *fp = fopen(p, "w");
        assert_non_null(fp);
        fclose(fp);
        snprintf(f->log, sizeof f->log, "%s/log", f->dir);
        snprintf(cache, sizeof cache, "%s/cache", f->dir);
        char path_list[2 * PATH_MAX];
        snprintf(path_list, sizeof path_list, "/nonexistent:%s", bin);
        NodeErr e = { 0 };
        assert_int_equal(node_cni_runtime_new(path_list, cache, &f->rt, &e), 0);
        char logenv[PATH_MAX + 8];
        snprintf(logenv, sizeof logenv, "LOG=%s", f->log);
        char *env[] = { logenv, "NODE_TEST_X=1", "CNI_FOO=leak", "PATH=/usr/bin:/bin", NULL };
        assert_int_equal(node_cni_runtime_set_env(f->rt, env), 0);
}

static void fake_done(Fake *f) {
        node_cni_runtime_free(f->rt);
        tmpdir_remove(f->dir);
}

static char *fake_log(const Fake *f) {
        static char buf[8192];
        buf[0] = '\0';
        FILE *fp = fopen(f->log, "r");
        if (fp) {
                size_t n = fread(buf, 1, sizeof buf - 1, fp);
                buf[n] = '\0';
                fclose(fp);
        }
        return buf;
}

static NodeCniNetwork *list_of(const char *types) {
        char text[1024];
        snprintf(text, sizeof text, "{\"cniVersion\":\"1.0.0\",\"name\":\"fk\",\"plugins\":[%s]}", types);
        NodeCniNetwork *n = NULL;
        NodeErr e = { 0 };
        assert_int_equal(parse(text, &n, &e), 0);
        return n;
}

static void test_exec_add_del(void **state) {
        (void) state;
        Fake f;
        fake_setup(&f);
        NodeCniNetwork *n = list_of("{\"type\":\"ok\"},{\"type\":\"ok\"}");
        NodePodRef pod = { "ns", "p", "u" };
        NodeCniAttachment a = { .container_id = "c1", .netns = "/run/netns/none", .ifname = "eth0", .pod = &pod };
        NodeCniResult *res = NULL;
        NodeErr e = { 0 };
        assert_int_equal(node_cni_add(f.rt, n, &a, 0, &res, &e), 0);
        assert_string_equal(res->ips[0].address, "10.9.0.2/24");
        const char *log = fake_log(&f);
        assert_non_null(strstr(log, "ADD ok args=IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;"
                                    "K8S_POD_INFRA_CONTAINER_ID=c1;K8S_POD_UID=u path=/nonexistent:"));
        assert_non_null(strstr(log, "x=1 cni=unset")); /* caller's env passes, CNI_* does not */
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/cache/results/fk-c1-eth0", f.dir);
        assert_int_equal(access(p, F_OK), 0);
        assert_int_equal(node_cni_del(f.rt, n, &a, &e), 0);
        assert_int_not_equal(access(p, F_OK), 0);
        assert_int_equal(node_cni_del(f.rt, n, &a, &e), 0); /* nothing cached, nothing there */
        node_cni_result_free(res);
        node_cni_network_free(n);
        fake_done(&f);
}

static void test_exec_failures(void **state) {
        (void) state;
        Fake f;
        fake_setup(&f);
        NodeCniAttachment a = { .container_id = "c2", .netns = "/run/netns/none", .ifname = "eth0" };
        NodeCniResult *res = NULL;
        NodeErr e = { 0 };

        /* a failing ADD with rollback: DEL for ok (and bad), typed error */
        NodeCniNetwork *n = list_of("{\"type\":\"ok\"},{\"type\":\"bad\"},{\"type\":\"ok\"}");
        assert_int_equal(node_cni_add(f.rt, n, &a, NODE_CNI_ADD_ROLLBACK, &res, &e), -EPROTO);
        assert_int_equal(e.kind, NODE_ERR_PLUGIN);
        assert_string_equal(e.plugin, "bad");
        assert_string_equal(e.command, "ADD");
        assert_int_equal(e.code, 7);
        assert_string_equal(e.msg, "bad: boom");
        assert_string_equal(e.details, "field x");
        node_err_done(&e);
        const char *log = fake_log(&f);
        const char *d1 = strstr(log, "DEL bad"), *d2 = strstr(log, "DEL ok");
        assert_non_null(d1);
        assert_non_null(d2);
        assert_true(d1 < d2);
        node_cni_network_free(n);

        /* a missing plugin: found out before anything runs */
        unlink(f.log);
        n = list_of("{\"type\":\"ok\"},{\"type\":\"notexec\"}");
        assert_int_equal(node_cni_add(f.rt, n, &a, 0, &res, &e), -ENOENT);
        assert_int_equal(e.kind, NODE_ERR_PLUGIN_NOT_FOUND);
        assert_non_null(strstr(e.msg, "'notexec'"));
        assert_string_equal(fake_log(&f), "");
        node_err_done(&e);
        node_cni_network_free(n);

        /* timeout and output cap */
        f.rt->timeout_ms = 300;
        n = list_of("{\"type\":\"slow\"}");
        assert_int_equal(node_cni_add(f.rt, n, &a, 0, &res, &e), -ETIMEDOUT);
        assert_int_equal(e.kind, NODE_ERR_EXEC);
        node_err_done(&e);
        node_cni_network_free(n);
        f.rt->timeout_ms = 5000;
        f.rt->output_max = 4096;
        n = list_of("{\"type\":\"loud\"}");
        assert_int_equal(node_cni_add(f.rt, n, &a, 0, &res, &e), -EMSGSIZE);
        assert_int_equal(e.kind, NODE_ERR_EXEC);
        node_err_done(&e);
        node_cni_network_free(n);

        /* CHECK without a cached result */
        n = list_of("{\"type\":\"ok\"}");
        assert_int_equal(node_cni_check(f.rt, n, &a, &e), -ENOENT);
        assert_int_equal(e.kind, NODE_ERR_CACHE);
        node_err_done(&e);
        node_cni_network_free(n);
        fake_done(&f);
}

/* The start gate runs after the plugin started and before it read its config: what it writes comes first in the log;
 * a failing gate kills the plugin unread and fails the call with its errno. */
typedef struct Gate {
        const char *log;
        int calls, ret;
} Gate;

static int gate_cb(void *userdata) {
        Gate *g = userdata;
        g->calls++;
        FILE *fp = fopen(g->log, "a");
        assert_non_null(fp);
        fputs("GATE\n", fp);
        fclose(fp);
        return g->ret;
}

static void test_exec_start_gate(void **state) {
        (void) state;
        Fake f;
        fake_setup(&f);
        Gate g = { .log = f.log };
        f.rt->start_gate = gate_cb;
        f.rt->start_gate_data = &g;
        NodeCniNetwork *n = list_of("{\"type\":\"ok\"}");
        NodeCniAttachment a = { .container_id = "c3", .netns = "/run/netns/none", .ifname = "eth0" };
        NodeCniResult *res = NULL;
        NodeErr e = { 0 };
        assert_int_equal(node_cni_add(f.rt, n, &a, 0, &res, &e), 0);
        assert_string_equal(res->ips[0].address, "10.9.0.2/24");
        assert_int_equal(g.calls, 1);
        assert_true(strncmp(fake_log(&f), "GATE\nADD ok ", 12) == 0);
        node_cni_result_free(res);
        assert_int_equal(node_cni_del(f.rt, n, &a, &e), 0);
        unlink(f.log);

        g.ret = -EROFS;
        a.container_id = "c4";
        assert_int_equal(node_cni_add(f.rt, n, &a, 0, &res, &e), -EROFS);
        assert_int_equal(e.kind, NODE_ERR_GATE);
        assert_string_equal(fake_log(&f), "GATE\n"); /* the plugin never ran */
        node_err_done(&e);
        /* rolled back: no DEL for a plugin killed at the gate (it read no config) */
        unlink(f.log);
        a.container_id = "c5";
        assert_int_equal(node_cni_add(f.rt, n, &a, NODE_CNI_ADD_ROLLBACK, &res, &e), -EROFS);
        assert_int_equal(e.kind, NODE_ERR_GATE);
        assert_string_equal(fake_log(&f), "GATE\n");
        node_err_done(&e);
        node_cni_network_free(n);
        fake_done(&f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config_ok),     cmocka_unit_test(test_config_bad),
                cmocka_unit_test(test_type_valid),    cmocka_unit_test(test_args),
                cmocka_unit_test(test_stdin_caps),    cmocka_unit_test(test_cache_roundtrip),
                cmocka_unit_test(test_base64),        cmocka_unit_test(test_plugin_error),
                cmocka_unit_test(test_result_parse),  cmocka_unit_test(test_version_cmp),
                cmocka_unit_test(test_runtime_new),   cmocka_unit_test(test_exec_add_del),
                cmocka_unit_test(test_exec_start_gate),
                cmocka_unit_test(test_exec_failures),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
