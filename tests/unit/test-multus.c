/* SPDX-License-Identifier: Apache-2.0 */
/* multus-compat: every form of the networks annotation and the default-network override, the bad ones with
 * errors naming the field and value; NADs as a single plugin, a list and an empty config (the conf dir),
 * cni-args and device IDs merged; namespace isolation; the thin plugin's config; capability args;
 * network-status from results of one and several interfaces, and a hot-plugged network's entries appended and
 * removed; the per-container cache round trip and hot-plug's edits of it (find, append, drop, the lock). */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "common/json-util.h"
#include "multus-compat/mc-priv.h"
#include "tmpdir.h"

/* ---------------------------------------------------------------- helpers */

typedef struct BadCase {
        const char *text;
        int code;
        const char *want; /* in the error message */
} BadCase;

static size_t parse_ok(const char *text, McSelection **v) {
        KvErr e = {};
        size_t n = 99;
        int r = mc_networks_parse(text, "pods", v, &n, &e);
        if (r < 0)
                fail_msg("'%s': %s", text, e.msg);
        return n;
}

/* Parsing text fails with code and a message holding want. */
static void parse_bad(const char *text, int code, const char *want) {
        KvErr e = {};
        McSelection *v = NULL;
        size_t n = 0;
        assert_true(mc_networks_parse(text, "pods", &v, &n, &e) < 0);
        assert_null(v);
        assert_int_equal(e.code, code);
        if (!strstr(e.msg, want))
                fail_msg("'%s': message '%s' lacks '%s'", text, e.msg, want);
}

static json_t *J(const char *text) {
        json_t *o = json_loads(text, 0, NULL);
        assert_non_null(o);
        return o;
}

/* ---------------------------------------------------------------- the text form */

static void test_text_forms(void **state) {
        (void) state;
        McSelection *v = NULL;
        size_t n = parse_ok(" a ,ns1/b, c@net7,ns2 / d @ if-x ", &v);
        assert_int_equal(n, 4);
        assert_string_equal(v[0].name, "a");
        assert_string_equal(v[0].namespace_, "pods");
        assert_null(v[0].interface);
        assert_string_equal(v[1].namespace_, "ns1");
        assert_string_equal(v[1].name, "b");
        assert_string_equal(v[2].name, "c");
        assert_string_equal(v[2].interface, "net7");
        assert_string_equal(v[3].namespace_, "ns2");
        assert_string_equal(v[3].name, "d");
        assert_string_equal(v[3].interface, "if-x");
        assert_false(v[0].has_default_route);
        mc_selections_free(v, n);

        /* an empty namespace or interface is none, as Multus reads them */
        n = parse_ok("/a, b@", &v);
        assert_string_equal(v[0].namespace_, "pods");
        assert_null(v[1].interface);
        mc_selections_free(v, n);

        assert_int_equal(parse_ok("", &v), 0);
        assert_int_equal(parse_ok("   ", &v), 0);
        assert_int_equal(parse_ok(NULL, &v), 0);
}

static void test_text_bad(void **state) {
        (void) state;
        parse_bad("a/b/c", KV_ERR_INVALID_CONFIG, "more than one '/'");
        parse_bad("a@x@y", KV_ERR_INVALID_CONFIG, "more than one '@'");
        parse_bad("Net", KV_ERR_INVALID_CONFIG, "network name 'Net' is not a DNS-1123 label");
        parse_bad("-a", KV_ERR_INVALID_CONFIG, "'-a'");
        parse_bad("a,,b", KV_ERR_INVALID_CONFIG, "networks[1]: network name ''");
        parse_bad("NS/a", KV_ERR_INVALID_CONFIG, "namespace 'NS'");
        parse_bad("a@waytoolonginterface", KV_ERR_INVALID_CONFIG, "interface 'waytoolonginterface'");
        parse_bad("a@x:1", KV_ERR_INVALID_CONFIG, "interface 'x:1'");
        parse_bad("a@net1, b@net1", KV_ERR_INVALID_CONFIG, "interface 'net1' is already requested by [0]");
        char many[400] = "";
        for (int i = 0; i <= MC_NETWORKS_MAX; i++)
                strcat(many, i ? ",n" : "n");
        parse_bad(many, KV_ERR_INVALID_CONFIG, "33 networks requested, at most 32");
}

/* ---------------------------------------------------------------- the JSON form */

static void test_json_full(void **state) {
        (void) state;
        McSelection *v = NULL;
        const char *text = "[{\"name\":\"macnet\",\"namespace\":\"ns1\",\"interface\":\"data0\","
                           "\"ips\":[\"10.1.0.5/24\",\"fd00::5\"],\"mac\":\"02:00:00:00:00:05\","
                           "\"default-route\":[\"10.1.0.1\"],"
                           "\"portMappings\":[{\"hostPort\":8080,\"containerPort\":80,\"protocol\":\"tcp\"}],"
                           "\"bandwidth\":{\"ingressRate\":1000,\"ingressBurst\":10,\"egressRate\":2000,\"egressBurst\":20},"
                           "\"cni-args\":{\"foo\":\"bar\",\"n\":1},\"deviceID\":\"0000:03:00.1\","
                           "\"infiniband-guid\":\"00:11:22:33:44:55:66:77\",\"ipam-claim-reference\":\"vm1.data0\","
                           "\"unknownKey\":true},"
                           "{\"name\":\"b\",\"interfaceRequest\":\"old0\",\"default-route\":[]}]";
        size_t n = parse_ok(text, &v);
        assert_int_equal(n, 2);
        McSelection *s = &v[0];
        assert_string_equal(s->name, "macnet");
        assert_string_equal(s->namespace_, "ns1");
        assert_string_equal(s->interface, "data0");
        assert_int_equal(s->n_ips, 2);
        assert_string_equal(s->ips[1], "fd00::5");
        assert_string_equal(s->mac, "02:00:00:00:00:05");
        assert_true(s->has_default_route);
        assert_int_equal(s->n_gateways, 1);
        assert_string_equal(s->gateways[0], "10.1.0.1");
        assert_int_equal(s->n_port_mappings, 1);
        assert_int_equal(s->port_mappings[0].host_port, 8080);
        assert_string_equal(s->port_mappings[0].protocol, "tcp");
        assert_null(s->port_mappings[0].host_ip);
        assert_true(s->has_bandwidth);
        assert_int_equal(s->bandwidth.egress_burst, 20);
        assert_string_equal(s->cni_args, "{\"foo\":\"bar\",\"n\":1}");
        assert_string_equal(s->device_id, "0000:03:00.1");
        assert_string_equal(s->infiniband_guid, "00:11:22:33:44:55:66:77");
        assert_string_equal(s->ipam_claim_reference, "vm1.data0");
        assert_string_equal(v[1].namespace_, "pods");
        assert_string_equal(v[1].interface, "old0");
        assert_true(v[1].has_default_route);
        assert_int_equal(v[1].n_gateways, 0);

        McCap *caps = NULL;
        size_t nc = 0;
        assert_int_equal(mc_selection_caps(s, &caps, &nc), 0);
        const char *want[][2] = {
                { "portMappings", "[{\"hostPort\":8080,\"containerPort\":80,\"protocol\":\"tcp\"}]" },
                { "bandwidth", "{\"ingressRate\":1000,\"ingressBurst\":10,\"egressRate\":2000,\"egressBurst\":20}" },
                { "ips", "[\"10.1.0.5/24\",\"fd00::5\"]" },
                { "mac", "\"02:00:00:00:00:05\"" },
                { "infinibandGUID", "\"00:11:22:33:44:55:66:77\"" },
                { "deviceID", "\"0000:03:00.1\"" },
        };
        assert_int_equal(nc, ELEMENTSOF(want));
        for (size_t i = 0; i < nc; i++) {
                assert_string_equal(caps[i].key, want[i][0]);
                assert_string_equal(caps[i].value, want[i][1]);
        }
        mc_caps_free(caps, nc);
        assert_int_equal(mc_selection_caps(&v[1], &caps, &nc), 0);
        assert_int_equal(nc, 0);
        mc_selections_free(v, n);
}

static const BadCase json_bad[] = {
                { "[{\"name\":", KV_ERR_DECODE, "invalid JSON" },
                { "{\"name\":\"a\"}", KV_ERR_INVALID_CONFIG, "must be a JSON list of networks, got object" },
                { "\"a\"", KV_ERR_INVALID_CONFIG, "got string" },
                { "[\"a\"]", KV_ERR_INVALID_CONFIG, "networks[0] must be an object, got string" },
                { "[{}]", KV_ERR_INVALID_CONFIG, "networks[0]: 'name' is required" },
                { "[{\"name\":5}]", KV_ERR_INVALID_CONFIG, "'name' must be a string, got integer" },
                { "[{\"name\":\"A_b\"}]", KV_ERR_INVALID_CONFIG, "'name' is not a DNS-1123 name: 'A_b'" },
                { "[{\"name\":\"a\",\"namespace\":\"x.y\"}]", KV_ERR_INVALID_CONFIG, "'namespace' is not a DNS-1123 label: 'x.y'" },
                { "[{\"name\":\"a\",\"interface\":\"a/b\"}]", KV_ERR_INVALID_CONFIG, "'interface' must be 1..15" },
                { "[{\"name\":\"a\",\"interface\":\"has space\"}]", KV_ERR_INVALID_CONFIG, "'has space'" },
                { "[{\"name\":\"a\",\"ips\":[\"10.0.0.300\"]}]", KV_ERR_INVALID_CONFIG, "'ips[0]' is not an IP address or CIDR: '10.0.0.300'" },
                { "[{\"name\":\"a\",\"ips\":[\"10.0.0.1/33\"]}]", KV_ERR_INVALID_CONFIG, "'10.0.0.1/33'" },
                { "[{\"name\":\"a\",\"ips\":\"10.0.0.1\"}]", KV_ERR_INVALID_CONFIG, "'ips' must be an array of strings, got string" },
                { "[{\"name\":\"a\",\"ips\":[1]}]", KV_ERR_INVALID_CONFIG, "'ips[0]' must be a string" },
                { "[{\"name\":\"a\",\"mac\":\"02:00:00:00:00\"}]", KV_ERR_INVALID_CONFIG, "'mac' is not a MAC address: '02:00:00:00:00'" },
                { "[{\"name\":\"a\",\"mac\":\"02:00:00:00:00:zz\"}]", KV_ERR_INVALID_CONFIG, "'02:00:00:00:00:zz'" },
                { "[{\"name\":\"a\",\"infiniband-guid\":\"00:11\"}]", KV_ERR_INVALID_CONFIG, "'infiniband-guid' is not a GUID" },
                { "[{\"name\":\"a\",\"default-route\":[\"gw\"]}]", KV_ERR_INVALID_CONFIG, "'default-route[0]' is not an IP address: 'gw'" },
                { "[{\"name\":\"a\",\"portMappings\":[{\"hostPort\":1}]}]", KV_ERR_INVALID_CONFIG, "portMappings[0]: 'containerPort' is required" },
                { "[{\"name\":\"a\",\"portMappings\":[{\"hostPort\":70000,\"containerPort\":80}]}]", KV_ERR_INVALID_CONFIG, "'hostPort' must be 0..65535, got 70000" },
                { "[{\"name\":\"a\",\"portMappings\":[{\"hostPort\":1,\"containerPort\":80,\"protocol\":\"icmp\"}]}]", KV_ERR_INVALID_CONFIG, "'protocol' must be tcp, udp or sctp, got 'icmp'" },
                { "[{\"name\":\"a\",\"portMappings\":[{\"hostPort\":1,\"containerPort\":80,\"hostIP\":\"x\"}]}]", KV_ERR_INVALID_CONFIG, "'hostIP' is not an IP address: 'x'" },
                { "[{\"name\":\"a\",\"bandwidth\":{\"ingressRate\":-1}}]", KV_ERR_INVALID_CONFIG, "bandwidth: 'ingressRate'" },
                { "[{\"name\":\"a\",\"bandwidth\":[]}]", KV_ERR_INVALID_CONFIG, "'bandwidth' must be an object" },
                { "[{\"name\":\"a\",\"cni-args\":[1]}]", KV_ERR_INVALID_CONFIG, "'cni-args' must be an object" },
                { "[{\"name\":\"a\",\"ipam-claim-reference\":\"Bad!\"}]", KV_ERR_INVALID_CONFIG, "'ipam-claim-reference'" },
                { "[{\"name\":\"a\",\"interface\":\"x\"},{\"name\":\"b\",\"interface\":\"x\"}]", KV_ERR_INVALID_CONFIG, "[1] (pods/b): interface 'x' is already requested by [0] (pods/a)" },
};

static void test_json_bad(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(json_bad); i++)
                parse_bad(json_bad[i].text, json_bad[i].code, json_bad[i].want);
        /* the caps */
        size_t big = MC_ANNOT_MAX + 10;
        char *huge = malloc(big + 1);
        assert_non_null(huge);
        memset(huge, ' ', big);
        memcpy(huge, "a", 1);
        huge[big] = '\0';
        parse_bad(huge, KV_ERR_INVALID_CONFIG, "at most 65536");
        free(huge);
        char many[2048] = "[";
        for (int i = 0; i <= MC_NETWORKS_MAX; i++)
                strcat(many, i ? ",{\"name\":\"n\"}" : "{\"name\":\"n\"}");
        strcat(many, "]");
        parse_bad(many, KV_ERR_INVALID_CONFIG, "33 networks requested");
}

static void test_default_network(void **state) {
        (void) state;
        KvErr e = {};
        McSelection *s = NULL;
        assert_int_equal(mc_default_network_parse("calico", "kube-system", &s, &e), 0);
        assert_string_equal(s->name, "calico");
        assert_string_equal(s->namespace_, "kube-system");
        mc_selections_free(s, 1);
        assert_int_equal(mc_default_network_parse("[{\"name\":\"x\",\"namespace\":\"net\"}]", "kube-system", &s, &e), 0);
        assert_string_equal(s->namespace_, "net");
        mc_selections_free(s, 1);
        assert_true(mc_default_network_parse("a,b", "kube-system", &s, &e) < 0);
        assert_string_equal(e.msg, MC_DEFAULT_NETWORK_ANNOT ": exactly one network expected, got 2");
        kverr_clear(&e);
        assert_true(mc_default_network_parse("Bad", "kube-system", &s, &e) < 0);
        assert_non_null(strstr(e.msg, MC_DEFAULT_NETWORK_ANNOT "[0]: network name 'Bad'"));
}

static void test_validators(void **state) {
        (void) state;
        assert_true(mc_dns1123_label("a-0"));
        assert_false(mc_dns1123_label("a-"));
        assert_false(mc_dns1123_label("a.b"));
        assert_false(mc_dns1123_label("0123456789012345678901234567890123456789012345678901234567890123"));
        assert_true(mc_dns1123_subdomain("a.b-c.d"));
        assert_false(mc_dns1123_subdomain("a..b"));
        assert_false(mc_dns1123_subdomain(".a"));
        assert_true(mc_ifname_valid("net1"));
        assert_true(mc_ifname_valid("123456789012345"));
        assert_false(mc_ifname_valid("1234567890123456"));
        assert_false(mc_ifname_valid(".."));
        assert_false(mc_ifname_valid(""));
        static const unsigned six[] = { 6 };
        assert_true(mc_hwaddr_valid("0A-0b-00-00-00-01", six, 1));
        assert_false(mc_hwaddr_valid("0a:0b-00:00:00:01", six, 1));
}

/* ---------------------------------------------------------------- NADs */

static McNad *nad(const char *text) {
        KvErr e = {};
        McNad *n = NULL;
        if (mc_nad_parse(text, strlen(text), &n, &e) < 0)
                fail_msg("%s", e.msg);
        return n;
}

static void assert_json_eq(const char *got, const char *want) {
        _cleanup_json_ json_t *g = J(got), *w = J(want);
        if (!json_equal(g, w))
                fail_msg("got %s, want %s", got, want);
}

static void test_nad_single(void **state) {
        (void) state;
        KvErr e = {};
        _cleanup_(mc_nad_freep) McNad *n = nad(
                "{\"apiVersion\":\"k8s.cni.cncf.io/v1\",\"kind\":\"NetworkAttachmentDefinition\","
                "\"metadata\":{\"name\":\"macnet\",\"namespace\":\"ns1\",\"annotations\":{\"k8s.v1.cni.cncf.io/resourceName\":\"intel.com/sriov\"}},"
                "\"spec\":{\"config\":\"{\\\"cniVersion\\\":\\\"1.0.0\\\",\\\"type\\\":\\\"macvlan\\\",\\\"master\\\":\\\"eth1\\\"}\"}}");
        assert_string_equal(n->name, "macnet");
        assert_string_equal(n->namespace_, "ns1");
        assert_string_equal(n->resource_name, "intel.com/sriov");
        McSelection s = { .cni_args = (char *) "{\"a\":\"1\"}" };
        _cleanup_free_ char *list = NULL;
        assert_int_equal(mc_nad_conflist(n, &s, "/nonexistent", "0000:03:00.2", &list, &e), 0);
        assert_json_eq(list, "{\"cniVersion\":\"1.0.0\",\"name\":\"macnet\",\"plugins\":[{\"type\":\"macvlan\",\"master\":\"eth1\","
                             "\"args\":{\"cni\":{\"a\":\"1\"}},\"deviceID\":\"0000:03:00.2\",\"pciBusID\":\"0000:03:00.2\"}]}");
        /* a kvnet plugin gets the resourceName as its SR-IOV pool, unless it names one */
        _cleanup_(mc_nad_freep) McNad *k = nad(
                "{\"metadata\":{\"name\":\"fast\",\"namespace\":\"ns1\",\"annotations\":{\"k8s.v1.cni.cncf.io/resourceName\":\"intel.com/sriov\"}},"
                "\"spec\":{\"config\":\"{\\\"cniVersion\\\":\\\"1.0.0\\\",\\\"plugins\\\":[{\\\"type\\\":\\\"kvnet\\\",\\\"binding\\\":\\\"sriov\\\"},"
                "{\\\"type\\\":\\\"kvnet\\\",\\\"resourceName\\\":\\\"x.com/own\\\"},{\\\"type\\\":\\\"tuning\\\"}]}\"}}");
        _cleanup_free_ char *kl = NULL;
        assert_int_equal(mc_nad_conflist(k, NULL, "/nonexistent", NULL, &kl, &e), 0);
        assert_json_eq(kl, "{\"cniVersion\":\"1.0.0\",\"plugins\":[{\"type\":\"kvnet\",\"binding\":\"sriov\",\"resourceName\":\"intel.com/sriov\"},"
                           "{\"type\":\"kvnet\",\"resourceName\":\"x.com/own\"},{\"type\":\"tuning\"}],\"name\":\"fast\"}");
}

static void test_nad_list(void **state) {
        (void) state;
        KvErr e = {};
        _cleanup_(mc_nad_freep) McNad *n = nad(
                "{\"metadata\":{\"name\":\"br\",\"namespace\":\"default\"},\"spec\":{\"config\":"
                "\"{\\\"cniVersion\\\":\\\"1.1.0\\\",\\\"name\\\":\\\"own\\\",\\\"plugins\\\":[{\\\"type\\\":\\\"bridge\\\","
                "\\\"args\\\":{\\\"cni\\\":{\\\"keep\\\":1,\\\"a\\\":0}}},{\\\"type\\\":\\\"tuning\\\"}]}\"}}");
        assert_null(n->resource_name);
        McSelection s = { .cni_args = (char *) "{\"a\":2}" };
        _cleanup_free_ char *list = NULL;
        assert_int_equal(mc_nad_conflist(n, &s, "/nonexistent", NULL, &list, &e), 0);
        assert_json_eq(list, "{\"cniVersion\":\"1.1.0\",\"name\":\"own\",\"plugins\":[{\"type\":\"bridge\",\"args\":{\"cni\":{\"keep\":1,\"a\":2}}},"
                             "{\"type\":\"tuning\",\"args\":{\"cni\":{\"a\":2}}}]}");
}

/* A VM NIC (cni-args kvnet.vm) on a third-party network: kvnet chained after its plugins as the VM binding; not
 * when the network is kvnet's, nor for a pod's NIC. */
static void test_nad_vm_binding(void **state) {
        (void) state;
        KvErr e = {};
        _cleanup_(mc_nad_freep) McNad *n = nad("{\"metadata\":{\"name\":\"br\",\"namespace\":\"default\"},\"spec\":{\"config\":"
                                               "\"{\\\"cniVersion\\\":\\\"1.0.0\\\",\\\"type\\\":\\\"bridge\\\"}\"}}");
        _cleanup_(mc_nad_freep) McNad *k = nad("{\"metadata\":{\"name\":\"kv\",\"namespace\":\"default\"},\"spec\":{\"config\":"
                                               "\"{\\\"cniVersion\\\":\\\"1.0.0\\\",\\\"type\\\":\\\"kvnet\\\"}\"}}");
        McSelection vm = { .cni_args = (char *) "{\"kvnet\":{\"vm\":{\"interface\":\"blue\",\"binding\":\"bridge\"}}}" },
                    pod = { .cni_args = (char *) "{\"x\":1}" };
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
        assert_int_equal(mc_nad_conflist(n, &vm, "/nonexistent", NULL, &a, &e), 0);
        assert_json_eq(a, "{\"cniVersion\":\"1.0.0\",\"name\":\"br\",\"plugins\":["
                          "{\"type\":\"bridge\",\"args\":{\"cni\":{\"kvnet\":{\"vm\":{\"interface\":\"blue\",\"binding\":\"bridge\"}}}}},"
                          "{\"type\":\"kvnet\",\"binding\":\"bridge\",\"args\":{\"cni\":{\"kvnet\":{\"vm\":{\"interface\":\"blue\","
                          "\"binding\":\"bridge\"}}}}}]}");
        assert_int_equal(mc_nad_conflist(k, &vm, "/nonexistent", NULL, &b, &e), 0);
        assert_json_eq(b, "{\"cniVersion\":\"1.0.0\",\"name\":\"kv\",\"plugins\":[{\"type\":\"kvnet\",\"args\":{\"cni\":"
                          "{\"kvnet\":{\"vm\":{\"interface\":\"blue\",\"binding\":\"bridge\"}}}}}]}");
        assert_int_equal(mc_nad_conflist(n, &pod, "/nonexistent", NULL, &c, &e), 0);
        assert_json_eq(c, "{\"cniVersion\":\"1.0.0\",\"name\":\"br\",\"plugins\":[{\"type\":\"bridge\",\"args\":{\"cni\":{\"x\":1}}}]}");
}

/* dir/name gets text. */
static void put_file(const char *dir, const char *name, const char *text) {
        _cleanup_free_ char *path = NULL;
        assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
        _cleanup_fclose_ FILE *f = fopen(path, "w");
        assert_non_null(f);
        assert_true(fputs(text, f) >= 0);
}

static void test_nad_conf_dir(void **state) {
        (void) state;
        char dir[] = "/tmp/kvnet-multus-XXXXXX";
        assert_non_null(mkdtemp(dir));
        put_file(dir, "00-other.conf", "{\"cniVersion\":\"0.4.0\",\"name\":\"other\",\"type\":\"ptp\"}");
        put_file(dir, "10-mine.conflist", "{\"cniVersion\":\"1.0.0\",\"name\":\"mine\",\"plugins\":[{\"type\":\"bridge\"}]}");
        KvErr e = {};
        _cleanup_(mc_nad_freep) McNad *n = nad("{\"metadata\":{\"name\":\"mine\",\"namespace\":\"default\"},\"spec\":{}}");
        assert_null(n->config);
        _cleanup_free_ char *list = NULL, *first = NULL;
        assert_int_equal(mc_nad_conflist(n, NULL, dir, NULL, &list, &e), 0);
        assert_json_eq(list, "{\"cniVersion\":\"1.0.0\",\"name\":\"mine\",\"plugins\":[{\"type\":\"bridge\"}]}");
        assert_int_equal(mc_conflist_from_dir(dir, NULL, &first, &e), 0);
        assert_json_eq(first, "{\"cniVersion\":\"0.4.0\",\"name\":\"other\",\"plugins\":[{\"type\":\"ptp\"}]}");
        _cleanup_(mc_nad_freep) McNad *m = nad("{\"metadata\":{\"name\":\"absent\",\"namespace\":\"default\"}}");
        _cleanup_free_ char *none = NULL;
        assert_int_equal(mc_nad_conflist(m, NULL, dir, NULL, &none, &e), -ENOENT);
        assert_non_null(strstr(e.msg, "no network named 'absent'"));
        tmpdir_remove(dir);
}

static void nad_bad(const char *text, const char *want) {
        KvErr e = {};
        McNad *n = NULL;
        int r = mc_nad_parse(text, strlen(text), &n, &e);
        _cleanup_free_ char *list = NULL;
        if (r >= 0) {
                r = mc_nad_conflist(n, NULL, "/nonexistent", NULL, &list, &e);
                mc_nad_free(n);
        }
        assert_true(r < 0);
        if (!strstr(e.msg, want))
                fail_msg("message '%s' lacks '%s'", e.msg, want);
}

static void test_nad_bad(void **state) {
        (void) state;
        nad_bad("[", "NetworkAttachmentDefinition: invalid JSON");
        nad_bad("[]", "must be an object, got array");
        nad_bad("{\"spec\":{}}", "'metadata' is required");
        nad_bad("{\"metadata\":{\"name\":\"a\"},\"spec\":{\"config\":5}}", "'config' must be a string, got integer");
        nad_bad("{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\"},\"spec\":{\"config\":\"{\"}}", "spec.config: invalid JSON");
        nad_bad("{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\"},\"spec\":{\"config\":\"{\\\"cniVersion\\\":\\\"1.0.0\\\"}\"}}",
                "a CNI config needs 'type' or 'plugins'");
        nad_bad("{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\"},\"spec\":{\"config\":\"{\\\"plugins\\\":[]}\"}}",
                "'plugins' must be a non-empty array");
        nad_bad("{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\"},\"spec\":{\"config\":\"{\\\"plugins\\\":[{\\\"type\\\":1}]}\"}}",
                "'plugins[0].type' must be a non-empty string");
        nad_bad("{\"metadata\":{\"name\":\"a\",\"namespace\":\"n\"},\"spec\":{\"config\":\"{\\\"type\\\":\\\"x\\\",\\\"name\\\":7}\"}}",
                "'name' must be a string, got integer");
}

static void test_cni_args_conflict(void **state) {
        (void) state;
        KvErr e = {};
        _cleanup_free_ char *list = NULL;
        const char *c = "{\"cniVersion\":\"1.0.0\",\"type\":\"x\",\"args\":\"no\"}";
        assert_true(mc_conflist_normalize(c, strlen(c), "t", "n", "{\"a\":1}", NULL, &list, &e) < 0);
        assert_non_null(strstr(e.msg, "'args' must be an object to take cni-args, got string"));
}

static void test_namespace_isolation(void **state) {
        (void) state;
        char *global[] = { (char *) "default", (char *) "shared" };
        assert_true(mc_namespace_allowed("a", "b", false, global, 2));
        assert_true(mc_namespace_allowed("a", "a", true, global, 2));
        assert_true(mc_namespace_allowed("a", "shared", true, global, 2));
        assert_false(mc_namespace_allowed("a", "b", true, global, 2));
        assert_false(mc_namespace_allowed("a", "default", true, global, 0));
}

/* ---------------------------------------------------------------- the plugin's config */

static McConfig *conf_ok(const char *text) {
        KvErr e = {};
        McConfig *c = NULL;
        if (mc_config_parse(text, strlen(text), &c, &e) < 0)
                fail_msg("%s", e.msg);
        return c;
}

static void test_config_thin(void **state) {
        (void) state;
        _cleanup_(mc_config_freep) McConfig *c = conf_ok(
                "{\"cniVersion\":\"0.3.1\",\"name\":\"multus-cni-network\",\"type\":\"kvnet-multus\","
                "\"kubeconfig\":\"/etc/cni/net.d/multus.d/multus.kubeconfig\",\"logLevel\":\"verbose\",\"logFile\":\"/x\","
                "\"logToStderr\":false,\"capabilities\":{\"portMappings\":true},\"somethingNew\":[1],"
                "\"runtimeConfig\":{\"portMappings\":[{\"hostPort\":1,\"containerPort\":2}]},"
                "\"delegates\":[{\"cniVersion\":\"0.3.1\",\"name\":\"kvtest\",\"type\":\"kvnet\"},"
                "{\"cniVersion\":\"0.3.1\",\"plugins\":[{\"type\":\"bridge\"}]}]}");
        assert_string_equal(c->cni_version, "0.3.1");
        assert_null(c->cluster_network);
        assert_int_equal(c->n_delegates, 2);
        assert_json_eq(c->delegates[0], "{\"cniVersion\":\"0.3.1\",\"name\":\"kvtest\",\"plugins\":[{\"type\":\"kvnet\"}]}");
        assert_json_eq(c->delegates[1], "{\"cniVersion\":\"0.3.1\",\"name\":\"multus-cni-network-delegate1\",\"plugins\":[{\"type\":\"bridge\"}]}");
        assert_string_equal(c->conf_dir, "/etc/cni/multus/net.d");
        assert_string_equal(c->cni_dir, "/var/lib/cni/multus");
        assert_string_equal(c->bin_dir, "/opt/cni/bin");
        assert_string_equal(c->multus_namespace, "kube-system");
        assert_int_equal(c->n_global_namespaces, 1);
        assert_string_equal(c->global_namespaces[0], "default");
        assert_int_equal(c->n_system_namespaces, 1);
        assert_string_equal(c->system_namespaces[0], "kube-system");
        assert_int_equal(c->n_runtime_config, 1);
        assert_string_equal(c->runtime_config[0].key, "portMappings");
        assert_string_equal(c->log_level, "verbose");
}

static void test_config_cluster(void **state) {
        (void) state;
        _cleanup_(mc_config_freep) McConfig *c = conf_ok(
                "{\"cniVersion\":\"1.0.0\",\"name\":\"m\",\"clusterNetwork\":\"kvtest\",\"defaultNetworks\":[\"a\",\"b\"],"
                "\"delegates\":[{\"type\":\"ignored\"}],\"confDir\":\"/c\",\"cniDir\":\"/d\",\"binDir\":\"/b\","
                "\"namespaceIsolation\":true,\"globalNamespaces\":\" x , y,\",\"systemNamespaces\":[\"s1\"],"
                "\"multusNamespace\":\"net\",\"readinessindicatorfile\":\"/r\",\"auxiliaryCNIChainName\":\"aux\","
                "\"retryDeleteOnError\":true,\"parallelDelegates\":true}");
        assert_string_equal(c->cluster_network, "kvtest");
        assert_int_equal(c->n_delegates, 0);
        assert_int_equal(c->n_default_networks, 2);
        assert_true(c->namespace_isolation);
        assert_int_equal(c->n_global_namespaces, 2);
        assert_string_equal(c->global_namespaces[0], "x");
        assert_string_equal(c->global_namespaces[1], "y");
        assert_string_equal(c->system_namespaces[0], "s1");
        assert_string_equal(c->multus_namespace, "net");
        assert_string_equal(c->readiness_indicator_file, "/r");
        assert_string_equal(c->auxiliary_cni_chain_name, "aux");
        assert_true(c->retry_delete_on_error);
        assert_true(c->parallel_delegates);
        assert_string_equal(c->conf_dir, "/c");
}

static void config_bad(const char *text, int code, const char *want) {
        KvErr e = {};
        McConfig *c = NULL;
        assert_true(mc_config_parse(text, strlen(text), &c, &e) < 0);
        assert_null(c);
        assert_int_equal(e.code, code);
        if (!strstr(e.msg, want))
                fail_msg("message '%s' lacks '%s'", e.msg, want);
}

static const BadCase config_bads[] = {
                { "{", KV_ERR_DECODE, "netconf: invalid JSON" },
                { "[]", KV_ERR_DECODE, "must be an object" },
                { "{\"cniVersion\":\"1.0.0\"}", KV_ERR_INVALID_CONFIG, "'clusterNetwork' or a non-empty 'delegates'" },
                { "{\"clusterNetwork\":\"a\"}", KV_ERR_INVALID_CONFIG, "'cniVersion' is required" },
                { "{\"cniVersion\":\"1.0.0\",\"clusterNetwork\":1}", KV_ERR_INVALID_CONFIG, "'clusterNetwork' must be a string" },
                { "{\"cniVersion\":\"1.0.0\",\"clusterNetwork\":\"a\",\"namespaceIsolation\":\"yes\"}", KV_ERR_INVALID_CONFIG, "'namespaceIsolation' must be a boolean" },
                { "{\"cniVersion\":\"1.0.0\",\"clusterNetwork\":\"a\",\"globalNamespaces\":5}", KV_ERR_INVALID_CONFIG, "'globalNamespaces' must be a comma-separated string" },
                { "{\"cniVersion\":\"1.0.0\",\"clusterNetwork\":\"a\",\"defaultNetworks\":[\"\"]}", KV_ERR_INVALID_CONFIG, "'defaultNetworks[0]' is empty" },
                { "{\"cniVersion\":\"1.0.0\",\"delegates\":[{\"name\":\"x\"}]}", KV_ERR_INVALID_CONFIG, "delegates[0]: a CNI config needs 'type' or 'plugins'" },
                { "{\"cniVersion\":\"1.0.0\",\"clusterNetwork\":\"a\",\"runtimeConfig\":[]}", KV_ERR_INVALID_CONFIG, "'runtimeConfig' must be an object" },
                { "{\"cniVersion\":\"1.0.0\",\"clusterNetwork\":\"/a\",\"auxiliaryCNIChainName\":\"a/b\"}", KV_ERR_INVALID_CONFIG, "'auxiliaryCNIChainName' must be a letter or digit then letters, digits, '_', '.', '-' (it names a directory), got 'a/b'" },
};

static void test_config_bad(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(config_bads); i++)
                config_bad(config_bads[i].text, config_bads[i].code, config_bads[i].want);
}

/* ---------------------------------------------------------------- auxiliaryCNIChainName */

static void test_aux_chain(void **state) {
        (void) state;
        char dir[] = "/tmp/kvnet-multus-XXXXXX", sub[64], cluster[64];
        KvErr e = {};
        assert_true(mc_aux_chain_name_valid("cni-chain_1.x"));
        assert_false(mc_aux_chain_name_valid("-x"));
        assert_false(mc_aux_chain_name_valid("a/b"));
        assert_false(mc_aux_chain_name_valid(""));
        assert_non_null(mkdtemp(dir));
        snprintf(sub, sizeof sub, "%s/chain", dir);
        snprintf(cluster, sizeof cluster, "%s/10-net.conflist", dir);
        _cleanup_free_ char *none = NULL, *list = NULL, *seed = NULL;
        /* no directory, then an empty one: no chain */
        assert_int_equal(mc_aux_conflist(cluster, "chain", "1.0.0", &none, &e), 0);
        assert_int_equal(mkdir(sub, 0755), 0);
        assert_int_equal(mc_aux_conflist(cluster, "chain", "1.0.0", &none, &e), 0);
        assert_null(none);
        put_file(sub, "20-b.conf", "{\"type\":\"tuning\",\"mtu\":1400}");
        put_file(sub, "10-a.conf", "{\"name\":\"a\",\"type\":\"tuning\"}");
        put_file(sub, "15-skip.conflist", "{\"type\":\"bridge\"}");
        assert_int_equal(mc_aux_conflist(cluster, "chain", "1.0.0", &list, &e), 1);
        assert_json_eq(list, "{\"cniVersion\":\"1.0.0\",\"name\":\"chain\",\"plugins\":[{\"name\":\"a\",\"type\":\"tuning\"},"
                             "{\"type\":\"tuning\",\"mtu\":1400}]}");
        assert_int_equal(mc_aux_conflist("kvtest", "chain", "1.0.0", &none, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "needs 'clusterNetwork' to be a path"));
        put_file(sub, "30-c.conf", "{\"mtu\":1}");
        kverr_clear(&e);
        assert_int_equal(mc_aux_conflist(cluster, "chain", "1.0.0", &none, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "30-c.conf' has no 'type'"));
        assert_int_equal(mc_aux_seed_result("0.4.0", &seed), 0);
        assert_string_equal(seed, "{\"cniVersion\":\"0.4.0\",\"dns\":{}}");
        tmpdir_remove(dir);
}

/* ---------------------------------------------------------------- events */

static void test_event_message(void **state) {
        (void) state;
        char *ips[] = { "10.1.2.3/24", "fd00::3/64" };
        _cleanup_free_ char *two = NULL, *none = NULL, *anon = NULL;
        assert_int_equal(mc_event_added_message("net1", ips, 2, "default/blue", &two), 0);
        assert_string_equal(two, "Add net1 [10.1.2.3/24 fd00::3/64] from default/blue");
        assert_int_equal(mc_event_added_message("eth0", NULL, 0, "kvsim", &none), 0);
        assert_string_equal(none, "Add eth0 [] from kvsim");
        assert_int_equal(mc_event_added_message("eth0", ips, 1, "", &anon), 0);
        assert_string_equal(anon, "Add eth0 [10.1.2.3/24]");
}

static void test_event_format(void **state) {
        (void) state;
        McEvent ev = { .namespace_ = "default", .pod_name = "web", .pod_uid = "u-1", .type = "Normal",
                       .reason = "AddedInterface", .message = "Add eth0 [10.1.2.3/24] from kvsim",
                       .component = MC_EVENT_COMPONENT, .time_ns = 1780000000123456789ull };
        _cleanup_free_ char *text = NULL, *nouid = NULL;
        assert_int_equal(mc_event_format(&ev, &text), 0);
        assert_string_equal(text,
                            "{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"metadata\":{\"name\":\"web.18b3d491bb8dcd15\","
                            "\"namespace\":\"default\"},\"involvedObject\":{\"kind\":\"Pod\",\"namespace\":\"default\","
                            "\"name\":\"web\",\"uid\":\"u-1\",\"apiVersion\":\"v1\"},\"reason\":\"AddedInterface\","
                            "\"message\":\"Add eth0 [10.1.2.3/24] from kvsim\",\"source\":{\"component\":\"multus\"},"
                            "\"firstTimestamp\":\"2026-05-28T20:26:40Z\",\"lastTimestamp\":\"2026-05-28T20:26:40Z\","
                            "\"count\":1,\"type\":\"Normal\",\"eventTime\":null,\"reportingComponent\":\"multus\","
                            "\"reportingInstance\":\"\"}");
        ev.pod_uid = NULL;
        assert_int_equal(mc_event_format(&ev, &nouid), 0);
        assert_null(strstr(nouid, "\"uid\""));
        ev.reason = NULL;
        assert_int_equal(mc_event_format(&ev, &nouid), -EINVAL);
}

/* ---------------------------------------------------------------- network-status */

static char *status_text(const char *result, const char *name, bool dflt, const char *pci) {
        KvErr e = {};
        McStatus *v = NULL;
        size_t n = 0;
        char *out = NULL;
        if (mc_status_from_result(result, strlen(result), name, dflt, pci, &v, &n, &e) < 0)
                fail_msg("%s", e.msg);
        assert_int_equal(mc_status_format(v, n, &out), 0);
        mc_statuses_free(v, n);
        return out;
}

static void test_status_single(void **state) {
        (void) state;
        _cleanup_free_ char *s = status_text(
                "{\"cniVersion\":\"1.1.0\",\"interfaces\":[{\"name\":\"eth0\",\"mac\":\"02:00:00:00:00:01\",\"mtu\":1400,"
                "\"sandbox\":\"/run/netns/x\"}],\"ips\":[{\"address\":\"10.88.0.2/24\",\"gateway\":\"10.88.0.1\"},"
                "{\"address\":\"fd88::2/64\"}],\"routes\":[{\"dst\":\"0.0.0.0/0\",\"gw\":\"10.88.0.1\"},{\"dst\":\"10.9.0.0/16\"}],"
                "\"dns\":{\"nameservers\":[\"10.88.0.1\"],\"domain\":\"cluster.local\"}}",
                "kvtest", true, NULL);
        assert_string_equal(s, "[{\n"
                               "    \"name\": \"kvtest\",\n"
                               "    \"interface\": \"eth0\",\n"
                               "    \"ips\": [\n        \"10.88.0.2\",\n        \"fd88::2\"\n    ],\n"
                               "    \"mac\": \"02:00:00:00:00:01\",\n"
                               "    \"mtu\": 1400,\n"
                               "    \"default\": true,\n"
                               "    \"dns\": {\n        \"nameservers\": [\n            \"10.88.0.1\"\n        ],\n"
                               "        \"domain\": \"cluster.local\"\n    },\n"
                               "    \"gateway\": [\n        \"10.88.0.1\"\n    ]\n"
                               "}]");
}

static void test_status_several(void **state) {
        (void) state;
        /* a host-side veth, two sandbox interfaces; the IPs go to their interface, one without index to the last */
        _cleanup_free_ char *s = status_text(
                "{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"veth1\"},{\"name\":\"net1\",\"sandbox\":\"/n\",\"mac\":\"m1\"},"
                "{\"name\":\"net2\",\"sandbox\":\"/n\"}],\"ips\":[{\"address\":\"10.1.0.2/24\",\"interface\":2,\"gateway\":\"10.1.0.1\"},"
                "{\"address\":\"10.2.0.2/24\",\"interface\":1},{\"address\":\"10.3.0.2/24\"}]}",
                "ns/net", true, "0000:03:00.1");
        _cleanup_json_ json_t *o = J(s);
        assert_int_equal(json_array_size(o), 2);
        _cleanup_json_ json_t *want = J(
                "[{\"name\":\"ns/net\",\"interface\":\"net1\",\"ips\":[\"10.2.0.2\"],\"mac\":\"m1\",\"dns\":{},"
                "\"device-info\":{\"type\":\"pci\",\"version\":\"1.1.0\",\"pci\":{\"pci-address\":\"0000:03:00.1\"}}},"
                "{\"name\":\"ns/net\",\"interface\":\"net2\",\"ips\":[\"10.1.0.2\",\"10.3.0.2\"],\"default\":true,\"dns\":{},"
                "\"device-info\":{\"type\":\"pci\",\"version\":\"1.1.0\",\"pci\":{\"pci-address\":\"0000:03:00.1\"}}}]");
        if (!json_equal(o, want))
                fail_msg("got %s", s);
        /* CNI 1.1's pciID gives device-info when no device ID was requested */
        _cleanup_free_ char *vf = status_text("{\"cniVersion\":\"1.1.0\",\"interfaces\":[{\"name\":\"net1\",\"sandbox\":\"/n\","
                                              "\"pciID\":\"0000:03:02.4\"}]}", "ns/sriov", false, NULL);
        _cleanup_json_ json_t *vfo = J(vf);
        assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(json_array_get(vfo, 0),
                                                                                              "device-info"), "pci"),
                                                              "pci-address")),
                            "0000:03:02.4");
        assert_true(mc_pci_address_valid("0000:03:00.1"));
        assert_false(mc_pci_address_valid("03:00.1"));
        assert_false(mc_pci_address_valid("0000:03:00.1x"));
        /* no interfaces at all: nothing to report (as Multus) */
        _cleanup_free_ char *none = status_text("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.1.0.2/24\"}]}", "n", false, NULL);
        assert_string_equal(none, "[]");
        KvErr e = {};
        McStatus *v = NULL;
        size_t n = 0;
        assert_true(mc_status_from_result("{\"ips\":{}}", 10, "n", false, NULL, &v, &n, &e) < 0);
        assert_true(mc_status_from_result("nope", 4, "n", false, NULL, &v, &n, &e) < 0);
}

/* Hot-plug: entries appended after the pod's own (kept as they are), and one network's taken out again. */
static void test_status_append_remove(void **state) {
        (void) state;
        KvErr e = {};
        McStatus *v = NULL;
        size_t n = 0, removed = 9;
        const char *res = "{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"net2\",\"sandbox\":\"/n\"}],"
                          "\"ips\":[{\"address\":\"10.66.0.2/24\",\"interface\":0}]}";
        assert_int_equal(mc_status_from_result(res, strlen(res), "default/kvnet2", false, NULL, &v, &n, &e), 0);
        /* the pod's entries carry a key kvnet does not write: it must survive */
        const char *cur = "[{\"name\":\"kvtest\",\"interface\":\"eth0\",\"default\":true,\"x-other\":1},"
                          "{\"name\":\"default/macnet\",\"interface\":\"net1\"}]";
        _cleanup_free_ char *out = NULL, *fresh = NULL, *same = NULL;
        assert_int_equal(mc_status_append(cur, v, n, &out, &e), 0);
        _cleanup_json_ json_t *o = J(out);
        _cleanup_json_ json_t *want = J("[{\"name\":\"kvtest\",\"interface\":\"eth0\",\"default\":true,\"x-other\":1},"
                                        "{\"name\":\"default/macnet\",\"interface\":\"net1\"},"
                                        "{\"name\":\"default/kvnet2\",\"interface\":\"net2\",\"ips\":[\"10.66.0.2\"],\"dns\":{}}]");
        if (!json_equal(o, want))
                fail_msg("got %s", out);
        /* no annotation yet: the new entries alone, as mc_status_format writes them */
        assert_int_equal(mc_status_append(NULL, v, n, &fresh, &e), 0);
        assert_int_equal(mc_status_format(v, n, &same), 0);
        assert_string_equal(fresh, same);
        mc_statuses_free(v, n);

        _cleanup_free_ char *back = NULL, *none = NULL, *all = NULL;
        assert_int_equal(mc_status_remove(out, "default/kvnet2", "net2", false, &back, &removed, &e), 0);
        assert_int_equal(removed, 1);
        _cleanup_json_ json_t *b = J(back), *c = J(cur);
        assert_true(json_equal(b, c));
        /* the same network on another interface, or another network on that interface: nothing goes */
        assert_int_equal(mc_status_remove(out, "default/kvnet2", "net7", false, &none, &removed, &e), 0);
        assert_int_equal(removed, 0);
        free(none);
        none = NULL;
        assert_int_equal(mc_status_remove(out, "default/macnet", "net2", false, &none, &removed, &e), 0);
        assert_int_equal(removed, 0);
        /* every_of_name: a network attached once whose result named several interfaces */
        const char *two = "[{\"name\":\"a\",\"interface\":\"eth0\"},{\"name\":\"ns/n\",\"interface\":\"net1\"},"
                          "{\"name\":\"ns/n\",\"interface\":\"net1b\"},{\"name\":\"ns/n\"}]";
        assert_int_equal(mc_status_remove(two, "ns/n", "net1", true, &all, &removed, &e), 0);
        assert_int_equal(removed, 3);
        assert_string_equal(all, "[{\n    \"name\": \"a\",\n    \"interface\": \"eth0\"\n}]");
        /* what is not a list of objects is refused, naming the annotation */
        char *bad = NULL;
        assert_int_equal(mc_status_remove("{}", "a", "b", false, &bad, NULL, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "k8s.v1.cni.cncf.io/network-status: must be a list"));
        kverr_clear(&e);
        assert_int_equal(mc_status_append("[1]", NULL, 0, &bad, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "network-status[0]: must be an object"));
        kverr_clear(&e);
        assert_true(mc_status_append("[", NULL, 0, &bad, &e) < 0);
        assert_int_equal(e.code, KV_ERR_DECODE);
        assert_null(bad);
}

/* Hot-plug's cache edits: find by interface, append (moved), drop (the order of the others kept). */
static void test_cache_edit(void **state) {
        (void) state;
        _cleanup_(mc_cache_freep) McCache *c = calloc(1, sizeof *c);
        assert_non_null(c);
        const char *ifs[] = { "eth0", "net1", "net2", "net3" };
        for (size_t i = 0; i < ELEMENTSOF(ifs); i++) {
                McCachedDelegate d = { .name = strdup("n"), .ifname = strdup(ifs[i]), .conflist = strdup("{}"), .master = i == 0 };
                assert_non_null(d.name);
                assert_int_equal(mc_cache_append(c, &d), 0);
                assert_null(d.ifname);
        }
        assert_int_equal(c->n_delegates, 4);
        assert_int_equal(mc_cache_find(c, "eth0"), 0);
        assert_int_equal(mc_cache_find(c, "net2"), 2);
        assert_int_equal(mc_cache_find(c, "net9"), -ENOENT);
        mc_cache_drop(c, 1);
        assert_int_equal(c->n_delegates, 3);
        assert_string_equal(c->delegates[1].ifname, "net2");
        assert_string_equal(c->delegates[2].ifname, "net3");
        assert_int_equal(mc_cache_find(c, "net1"), -ENOENT);
        mc_cache_drop(c, 2);
        mc_cache_drop(c, 7); /* out of range: nothing */
        assert_int_equal(c->n_delegates, 2);
        assert_true(c->delegates[0].master);
        /* the lock: taken on a directory it creates, released by closing */
        char dir[] = "/tmp/kvnet-multus-XXXXXX";
        assert_non_null(mkdtemp(dir));
        KvErr e = {};
        int fd = -1, fd2 = -1;
        _cleanup_free_ char *sub = NULL;
        assert_true(asprintf(&sub, "%s/kvnet-multus", dir) > 0);
        assert_int_equal(mc_cache_lock(dir, &fd, &e), 0);
        _cleanup_close_ int other = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(other >= 0);
        assert_int_equal(flock(other, LOCK_EX | LOCK_NB), -1); /* held: another taker waits */
        assert_int_equal(errno, EWOULDBLOCK);
        close(fd);
        assert_int_equal(mc_cache_lock(dir, &fd2, &e), 0);
        close(fd2);
        tmpdir_remove(dir);
}

/* ---------------------------------------------------------------- the cache */

static void test_cache_roundtrip(void **state) {
        (void) state;
        char dir[] = "/tmp/kvnet-multus-XXXXXX";
        assert_non_null(mkdtemp(dir));
        McCap caps[] = { { (char *) "mac", (char *) "\"02:00:00:00:00:09\"" } };
        McCachedDelegate d[] = {
                { .name = (char *) "kvtest", .ifname = (char *) "eth0", .master = true,
                  .conflist = (char *) "{\"cniVersion\":\"1.0.0\",\"name\":\"kvtest\",\"plugins\":[{\"type\":\"kvnet\"}]}" },
                { .name = (char *) "ns/mac", .ifname = (char *) "net1", .caps = caps, .n_caps = 1,
                  .conflist = (char *) "{\"cniVersion\":\"1.0.0\",\"name\":\"mac\",\"plugins\":[{\"type\":\"macvlan\"}]}" },
                { .name = (char *) "chain", .ifname = (char *) "net2", .aux = true,
                  .conflist = (char *) "{\"cniVersion\":\"1.0.0\",\"name\":\"chain\",\"plugins\":[{\"type\":\"tuning\"}]}" },
        };
        McCache c = { .container_id = (char *) "cid1", .netns = (char *) "/run/netns/x", .pod_namespace = (char *) "ns",
                      .pod_name = (char *) "web", .pod_uid = (char *) "u1", .delegates = d, .n_delegates = 3 };
        KvErr e = {};
        assert_int_equal(mc_cache_save(dir, &c, &e), 0);
        _cleanup_(mc_cache_freep) McCache *l = NULL;
        assert_int_equal(mc_cache_load(dir, "cid1", &l, &e), 0);
        assert_string_equal(l->pod_uid, "u1");
        assert_string_equal(l->netns, "/run/netns/x");
        assert_int_equal(l->n_delegates, 3);
        assert_true(l->delegates[0].master);
        assert_false(l->delegates[1].master);
        assert_false(l->delegates[1].aux);
        assert_true(l->delegates[2].aux);
        assert_int_equal(mc_cache_find(l, "net2"), -ENOENT); /* the chain's net2 is no interface */
        assert_string_equal(l->delegates[1].ifname, "net1");
        assert_string_equal(l->delegates[1].caps[0].value, "\"02:00:00:00:00:09\"");
        assert_json_eq(l->delegates[1].conflist, d[1].conflist);
        McCache *none = NULL;
        assert_int_equal(mc_cache_load(dir, "cid2", &none, &e), -ENOENT);
        assert_int_equal(mc_cache_load(dir, "../x", &none, &e), -EINVAL);
        assert_int_equal(mc_cache_remove(dir, "cid1"), 0);
        assert_int_equal(mc_cache_remove(dir, "cid1"), 0);
        assert_int_equal(mc_cache_load(dir, "cid1", &none, &e), -ENOENT);
        kverr_clear(&e);
        const char *bad = "{\"kind\":\"other\",\"containerID\":\"c\",\"delegates\":[]}";
        assert_true(mc_cache_parse(bad, strlen(bad), &none, &e) < 0);
        assert_non_null(strstr(e.msg, "'kind' must be"));
        tmpdir_remove(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_text_forms),        cmocka_unit_test(test_text_bad),
                cmocka_unit_test(test_json_full),         cmocka_unit_test(test_json_bad),
                cmocka_unit_test(test_default_network),   cmocka_unit_test(test_validators),
                cmocka_unit_test(test_nad_single),        cmocka_unit_test(test_nad_list),
                cmocka_unit_test(test_nad_vm_binding),
                cmocka_unit_test(test_nad_conf_dir),      cmocka_unit_test(test_nad_bad),
                cmocka_unit_test(test_cni_args_conflict), cmocka_unit_test(test_namespace_isolation),
                cmocka_unit_test(test_config_thin),       cmocka_unit_test(test_config_cluster),
                cmocka_unit_test(test_config_bad),        cmocka_unit_test(test_status_single),
                cmocka_unit_test(test_event_message),     cmocka_unit_test(test_event_format),
                cmocka_unit_test(test_aux_chain),
                cmocka_unit_test(test_status_several),    cmocka_unit_test(test_cache_roundtrip),
                cmocka_unit_test(test_status_append_remove), cmocka_unit_test(test_cache_edit),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
