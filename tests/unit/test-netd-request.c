/* SPDX-License-Identifier: Apache-2.0 */
/* netd's socket boundary without the kernel: attach_request_parse() of good and bad requests (every
 * refusal names the field), the sriov binding's fields. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "common/json-util.h"
#include "netd/core/netd-priv.h"
#include "tests/unit/helpers.h"
#include "tests/unit/netd-requests.h"

static void expect_parse_error(const char *text, int code, const char *needle) {
        json_t *a = test_json(text);
        AttachRequest req;
        KvErr e = {};
        int r = attach_request_parse(a, "add", true, &req, &e);
        if (r >= 0 || e.code != code || !strstr(e.msg, needle))
                fail_msg("input %s: got r=%d code=%d msg='%s', wanted code %d containing '%s'", text, r, e.code,
                         e.msg, code, needle);
        json_decref(a);
}

static void test_request_ok(void **state) {
        (void) state;
        json_t *a = test_json("{\"containerID\":\"c1\",\"ifname\":\"eth0\",\"netns\":\"/run/netns/x\","
                              "\"vm\":{\"name\":\"vm1\",\"namespace\":\"prod\",\"interface\":\"default\"}," BASE_NET ","
                              "\"request\":{\"ips\":[\"10.88.0.7/24\"],\"mac\":\"02:00:00:00:00:07\","
                              "\"portMappings\":[{\"hostPort\":8080,\"containerPort\":80,\"protocol\":\"UDP\"}]}}");
        AttachRequest req;
        KvErr e = {};
        assert_int_equal(attach_request_parse(a, "add", true, &req, &e), 0);
        assert_string_equal(req.network, "vmnet");
        assert_string_equal(req.binding, "bridge");
        assert_string_equal(req.bridge, "kvbr0");
        assert_true(req.is_gateway);
        assert_false(req.ipmasq);
        assert_true(req.has_vm);
        assert_string_equal(req.vm_namespace, "prod");
        assert_int_equal(req.n_req_ips, 1);
        assert_true(req.has_mac);
        assert_int_equal(req.mac[5], 7);
        assert_int_equal(req.n_pm, 1);
        assert_int_equal(req.pm[0].proto, IPPROTO_UDP);
        assert_int_equal(req.ipam.n_sets, 1);
        json_decref(a);
}

static void test_request_errors(void **state) {
        (void) state;
        expect_parse_error("{\"ifname\":\"eth0\",\"netns\":\"/x\"," BASE_NET "}", KV_ERR_INVALID_CONFIG,
                           "'containerID' is required");
        expect_parse_error("{\"containerID\":\"-bad\",\"ifname\":\"eth0\",\"netns\":\"/x\"," BASE_NET "}",
                           KV_ERR_INVALID_ENV, "'containerID' is not valid: '-bad'");
        expect_parse_error("{\"containerID\":\"c\",\"ifname\":\"a/b\",\"netns\":\"/x\"," BASE_NET "}",
                           KV_ERR_INVALID_ENV, "'a/b'");
        expect_parse_error("{\"containerID\":\"c\",\"ifname\":\"waytoolongname16\",\"netns\":\"/x\"," BASE_NET "}",
                           KV_ERR_INVALID_CONFIG, "'ifname' is too long");
        expect_parse_error("{\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\","
                           "\"network\":{\"name\":\"n\",\"vlan\":5000}}",
                           KV_ERR_INVALID_CONFIG, "'vlan' must be 0..4094, got 5000");
        expect_parse_error("{\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\","
                           "\"network\":{\"name\":\"n\",\"mtu\":\"x\"}}",
                           KV_ERR_INVALID_CONFIG, "'mtu' must be an integer, got string");
        expect_parse_error("{\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\","
                           "\"network\":{\"name\":\"n\",\"mtu\":20}}",
                           KV_ERR_INVALID_CONFIG, "'mtu' must be 0 or 68..65535, got 20");
        expect_parse_error("{\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\","
                           "\"network\":{\"name\":\"n\",\"binding\":\"macvtap\"}}",
                           KV_ERR_INVALID_CONFIG, "'binding' must be bridge, masquerade or sriov, got 'macvtap'");
        expect_parse_error("{\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\","
                           "\"network\":{\"name\":\"n\"}}",
                           KV_ERR_INVALID_CONFIG, "'ipam' is required");
        expect_parse_error("{\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\",\"chained\":true,"
                           "\"prevResult\":{\"ips\":[]}," BASE_NET "}",
                           KV_ERR_INVALID_CONFIG, "'ipam' cannot be set when kvnet is chained");
        expect_parse_error("{\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\",\"chained\":true,"
                           "\"prevResult\":{\"ips\":[{\"address\":\"10.0.0.300/24\"}]},\"network\":{\"name\":\"n\"}}",
                           KV_ERR_INVALID_CONFIG, "prevResult.ips[0]: 'address' is not a CIDR: '10.0.0.300/24'");
        expect_parse_error("{\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\",\"chained\":true,"
                           "\"prevResult\":{\"interfaces\":[],\"ips\":[{\"address\":\"10.0.0.3/24\",\"interface\":2}]},"
                           "\"network\":{\"name\":\"n\"}}",
                           KV_ERR_INVALID_CONFIG, "'interface' 2 is not an index of prevResult.interfaces");
        expect_parse_error("{\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\"," BASE_NET ","
                           "\"request\":{\"portMappings\":[{\"hostPort\":0,\"containerPort\":80}]}}",
                           KV_ERR_INVALID_CONFIG, "portMappings[0]: 'hostPort' must be 1..65535, got 0");
        expect_parse_error("{\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\"," BASE_NET ","
                           "\"request\":{\"portMappings\":[{\"hostPort\":80,\"containerPort\":80,\"protocol\":\"sctp\"}]}}",
                           KV_ERR_INVALID_CONFIG, "'protocol' must be tcp or udp, got 'sctp'");
        expect_parse_error("{\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\"," BASE_NET ","
                           "\"request\":{\"portMappings\":[{\"hostPort\":80,\"containerPort\":80},"
                           "{\"hostPort\":80,\"containerPort\":81}]}}",
                           KV_ERR_INVALID_CONFIG, "hostPort 80/tcp is listed twice");
        expect_parse_error("{\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\"," BASE_NET ","
                           "\"request\":{\"mac\":\"01:00:5e:00:00:01\"}}",
                           KV_ERR_INVALID_CONFIG, "is a multicast address");
        expect_parse_error("{\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\"," BASE_NET ","
                           "\"vm\":{\"name\":\"VM_1\"}}",
                           KV_ERR_INVALID_CONFIG, "is not valid");
}

static void test_request_sriov(void **state) {
        (void) state;
        json_t *a = test_json("{\"containerID\":\"c1\",\"ifname\":\"net1\",\"netns\":\"/x\"," SRIOV_VM "," SRIOV_NET "}");
        AttachRequest req;
        KvErr e = {};
        assert_int_equal(attach_request_parse(a, "add", true, &req, &e), 0);
        assert_string_equal(req.binding, "sriov");
        assert_string_equal(req.resource_name, "intel.com/sriov_a");
        assert_false(req.spoofchk);
        assert_true(req.trust);
        assert_int_equal(req.vlan, 100);
        json_decref(a);
        /* spoofchk defaults to on, trust to off */
        a = test_json("{\"containerID\":\"c1\",\"ifname\":\"net1\",\"netns\":\"/x\"," SRIOV_VM ","
                      "\"network\":{\"name\":\"n\",\"binding\":\"sriov\",\"resourceName\":\"a/b\","
                      "\"ipam\":{\"ranges\":[[{\"subnet\":\"10.99.0.0/24\"}]]}}}");
        assert_int_equal(attach_request_parse(a, "add", true, &req, &e), 0);
        assert_true(req.spoofchk);
        assert_false(req.trust);
        json_decref(a);

        expect_parse_error("{\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\"," SRIOV_NET "}",
                           KV_ERR_INVALID_CONFIG, "binding 'sriov' is for VM attachments");
        expect_parse_error("{\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\"," SRIOV_VM ","
                           "\"network\":{\"name\":\"n\",\"binding\":\"sriov\",\"ipam\":{}}}",
                           KV_ERR_INVALID_CONFIG, "'resourceName' is required with binding 'sriov'");
        expect_parse_error("{\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\"," SRIOV_VM ","
                           "\"network\":{\"name\":\"n\",\"binding\":\"sriov\",\"resourceName\":\"a/b\",\"ipMasq\":true}}",
                           KV_ERR_INVALID_CONFIG, "'ipMasq' cannot be used with binding 'sriov'");
        expect_parse_error("{\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\"," SRIOV_VM "," SRIOV_NET ","
                           "\"request\":{\"portMappings\":[{\"hostPort\":80,\"containerPort\":80}]}}",
                           KV_ERR_INVALID_CONFIG, "'portMappings' cannot be used with binding 'sriov'");
        expect_parse_error("{\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\",\"chained\":true,"
                           "\"prevResult\":{}," SRIOV_VM ","
                           "\"network\":{\"name\":\"n\",\"binding\":\"sriov\",\"resourceName\":\"a/b\"}}",
                           KV_ERR_INVALID_CONFIG, "binding 'sriov' cannot be chained");
        expect_parse_error("{\"containerID\":\"c\",\"ifname\":\"eth0\",\"netns\":\"/x\"," SRIOV_VM ","
                           "\"network\":{\"name\":\"n\",\"binding\":\"sriov\",\"resourceName\":\"a/b\",\"spoofchk\":\"on\"}}",
                           KV_ERR_INVALID_CONFIG, "'spoofchk' must be a boolean");
}

/* The `kube` verb's checks (api.c), as manager_handle() callers see them: every refusal names what is wrong, a
 * request kvnet-multus makes passes them (and is then answered over the socket only). */
static void expect_kube(const char *requests, int code, const char *needle) {
        _cleanup_json_ json_t *args = test_json(requests);
        json_t *ret = NULL;
        KvErr e = {};
        int r = do_kube(NULL, args, &ret, &e);
        if (r >= 0 || e.code != code || !strstr(e.msg, needle))
                fail_msg("input %s: got r=%d code=%d msg='%s', wanted code %d containing '%s'", requests, r, e.code,
                         e.msg, code, needle);
        assert_null(ret);
}

#define KREQ(x) "{\"requests\":[" x "]}"
#define POD_GET "{\"verb\":\"get\",\"apiVersion\":\"v1\",\"resource\":\"pods\",\"namespace\":\"ns\",\"name\":\"p\"}"

static void test_kube_verb(void **state) {
        (void) state;
        const char *off = "answered over netd's socket only";
        expect_kube(KREQ(POD_GET), KV_ERR_NOT_AVAILABLE, off);
        expect_kube(KREQ(POD_GET "," POD_GET), KV_ERR_NOT_AVAILABLE, off);
        expect_kube(KREQ("{\"verb\":\"patch\",\"apiVersion\":\"v1\",\"resource\":\"pods\",\"namespace\":\"ns\",\"name\":\"p\","
                         "\"body\":{\"metadata\":{\"annotations\":{\"k8s.v1.cni.cncf.io/network-status\":\"[]\"}}}}"),
                    KV_ERR_NOT_AVAILABLE, off);
        expect_kube(KREQ("{\"verb\":\"create\",\"apiVersion\":\"v1\",\"resource\":\"events\",\"namespace\":\"ns\","
                         "\"body\":{\"involvedObject\":{\"kind\":\"Pod\",\"namespace\":\"ns\"}}}"),
                    KV_ERR_NOT_AVAILABLE, off);
        expect_kube(KREQ("{\"verb\":\"patch-status\",\"apiVersion\":\"k8s.cni.cncf.io/v1alpha1\",\"resource\":\"ipamclaims\","
                         "\"namespace\":\"ns\",\"name\":\"vm.net\",\"body\":{\"status\":{\"ips\":[]}}}"),
                    KV_ERR_NOT_AVAILABLE, off);

        expect_kube("{}", KV_ERR_DECODE, "'requests' must be an array of 1..32");
        expect_kube(KREQ(""), KV_ERR_DECODE, "'requests' must be an array of 1..32");
        expect_kube("{\"requests\":[" POD_GET "],\"x\":1}", KV_ERR_DECODE, "'requests' only");
        expect_kube(KREQ("{\"verb\":\"list\",\"apiVersion\":\"v1\",\"resource\":\"pods\",\"namespace\":\"ns\"}"),
                    KV_ERR_NOT_AVAILABLE, "list of v1/pods is not one netd makes");
        expect_kube(KREQ("{\"verb\":\"get\",\"apiVersion\":\"v1\",\"resource\":\"secrets\",\"namespace\":\"ns\",\"name\":\"s\"}"),
                    KV_ERR_NOT_AVAILABLE, "get of v1/secrets");
        expect_kube(KREQ("{\"verb\":\"get\",\"apiVersion\":\"v1\",\"resource\":\"pods\",\"name\":\"p\"}"), KV_ERR_DECODE,
                    "'namespace' must be a namespace name, got '(none)'");
        expect_kube(KREQ("{\"verb\":\"get\",\"apiVersion\":\"v1\",\"resource\":\"pods\",\"namespace\":\"ns\",\"name\":\"../x\"}"),
                    KV_ERR_DECODE, "'name' must be an object name (DNS subdomain), got '../x'");
        expect_kube(KREQ("{\"verb\":\"get\",\"apiVersion\":\"v1\",\"resource\":\"pods\",\"namespace\":\"ns\",\"name\":\"p\","
                         "\"body\":{}}"),
                    KV_ERR_DECODE, "a get has no 'body'");
        expect_kube(KREQ("{\"verb\":\"patch\",\"apiVersion\":\"v1\",\"resource\":\"pods\",\"namespace\":\"ns\",\"name\":\"p\","
                         "\"body\":{\"metadata\":{\"annotations\":{\"k8s.v1.cni.cncf.io/network-status\":\"[]\",\"x\":\"y\"}}}}"),
                    KV_ERR_NOT_AVAILABLE, "may only set metadata.annotations");
        expect_kube(KREQ("{\"verb\":\"patch\",\"apiVersion\":\"v1\",\"resource\":\"pods\",\"namespace\":\"ns\",\"name\":\"p\","
                         "\"body\":{\"spec\":{\"nodeName\":\"n\"}}}"),
                    KV_ERR_NOT_AVAILABLE, "may only set metadata.annotations");
        expect_kube(KREQ("{\"verb\":\"create\",\"apiVersion\":\"v1\",\"resource\":\"events\",\"namespace\":\"ns\","
                         "\"body\":{\"involvedObject\":{\"kind\":\"Pod\",\"namespace\":\"other\"}}}"),
                    KV_ERR_NOT_AVAILABLE, "an Event must be about a Pod of namespace 'ns'");
        expect_kube(KREQ("{\"verb\":\"create\",\"apiVersion\":\"v1\",\"resource\":\"events\",\"namespace\":\"ns\",\"name\":\"e\","
                         "\"body\":{\"involvedObject\":{\"kind\":\"Pod\",\"namespace\":\"ns\"}}}"),
                    KV_ERR_DECODE, "a create names no object");
        expect_kube(KREQ("{\"verb\":\"patch-status\",\"apiVersion\":\"k8s.cni.cncf.io/v1alpha1\",\"resource\":\"ipamclaims\","
                         "\"namespace\":\"ns\",\"name\":\"c\",\"body\":{\"spec\":{}}}"),
                    KV_ERR_NOT_AVAILABLE, "a status patch may only carry 'status'");
        expect_kube(KREQ("7"), KV_ERR_DECODE, "requests[0]: request: must be an object");
}

/* netd config multusApi */
static void test_kube_config(void **state) {
        (void) state;
        static const struct {
                const char *in, *msg;
        } bad[] = {
                { "[]", "'multusApi' must be an object" },
                { "{\"kubeconfig\":\"rel/path\"}", "'multusApi.kubeconfig' must be an absolute path, got 'rel/path'" },
                { "{\"timeoutMs\":5}", "timeoutMs" },
                { "{\"server\":\"x\"}", "unknown key 'server'" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                Manager m = {};
                KvErr e = {};
                _cleanup_json_ json_t *o = test_json(bad[i].in);
                assert_true(netd_api_config(&m, o, &e) < 0);
                if (!strstr(e.msg, bad[i].msg))
                        fail_msg("%s: '%s' lacks '%s'", bad[i].in, e.msg, bad[i].msg);
                assert_false(m.api_enabled);
        }
        Manager m = {};
        KvErr e = {};
        _cleanup_json_ json_t *o = test_json("{\"kubeconfig\":\"/etc/kvnet/kubeconfig\",\"timeoutMs\":2000}");
        assert_int_equal(netd_api_config(&m, o, &e), 0);
        assert_true(m.api_enabled);
        assert_string_equal(m.api_kubeconfig, "/etc/kvnet/kubeconfig");
        assert_int_equal(m.api_timeout_ms, 2000);
        netd_api_free(&m);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_request_ok),
                cmocka_unit_test(test_request_errors),
                cmocka_unit_test(test_request_sriov),
                cmocka_unit_test(test_kube_verb),
                cmocka_unit_test(test_kube_config),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
