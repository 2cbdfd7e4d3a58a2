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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_request_ok),
                cmocka_unit_test(test_request_errors),
                cmocka_unit_test(test_request_sriov),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
