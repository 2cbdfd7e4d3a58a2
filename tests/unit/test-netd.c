/* SPDX-License-Identifier: Apache-2.0 */
/* netd without the kernel: request parsing (the socket boundary), endpoint records and their store,
 * and the manager's answers to requests that must fail before anything is changed. */
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "common/json-util.h"
#include "netd/netd-priv.h"

static json_t *args_from(const char *text) {
        json_error_t err;
        json_t *o = json_loads(text, 0, &err);
        assert_non_null(o);
        return o;
}

#define BASE_NET "\"network\":{\"name\":\"vmnet\",\"ipam\":{\"ranges\":[[{\"subnet\":\"10.88.0.0/24\"}]]}}"

static void expect_parse_error(const char *text, int code, const char *needle) {
        json_t *a = args_from(text);
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
        json_t *a = args_from("{\"containerID\":\"c1\",\"ifname\":\"eth0\",\"netns\":\"/run/netns/x\","
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

struct LoadCtx {
        Endpoint *got;
        int n;
};

static int load_cb(Endpoint *x, void *u) {
        struct LoadCtx *c = u;
        endpoint_free(c->got);
        c->got = x;
        c->n++;
        return 0;
}

static void test_endpoint_roundtrip(void **state) {
        (void) state;
        Endpoint *ep = calloc(1, sizeof *ep);
        assert_non_null(ep);
        strcpy(ep->network, "vmnet");
        strcpy(ep->container_id, "c1");
        strcpy(ep->ifname, "tap0");
        assert_int_equal(endpoint_make_id(ep->network, ep->container_id, ep->ifname, ep->id, sizeof ep->id), 0);
        strcpy(ep->key, "vm/default/vm1/default");
        strcpy(ep->binding, "bridge");
        strcpy(ep->bridge, "kvbr0");
        strcpy(ep->host_ifname, "kv12345678");
        strcpy(ep->tap, "tap0");
        strcpy(ep->sbx_ifname, "kvs12345678");
        strcpy(ep->vm_name, "vm1");
        ep->kind = EP_KIND_VM;
        ep->state = EP_READY;
        ep->n_addrs = 2;
        assert_int_equal(kv_prefix_parse("10.88.0.4/24", &ep->addrs[0]), 0);
        assert_int_equal(kv_prefix_parse("fd88::4/64", &ep->addrs[1]), 0);
        assert_int_equal(kv_addr_parse("10.88.0.1", &ep->gateways[0]), 0);
        ep->has_gateway[0] = true;
        ep->has_mac = true;
        ep->mac[0] = 0x02;
        ep->mac[5] = 0x42;
        ep->n_pm = 1;
        ep->pm[0] = (EpPortMapping) { .host_port = 8080, .container_port = 80, .proto = IPPROTO_TCP };
        ep->ipmasq = true;
        ep->result = strdup("{\"cniVersion\":\"1.1.0\"}");

        char dir[] = "/tmp/kvnet-test-netd.XXXXXX";
        assert_non_null(mkdtemp(dir));
        char sub[256];
        snprintf(sub, sizeof sub, "%s/endpoints", dir);
        assert_int_equal(mkdir(sub, 0700), 0);
        assert_int_equal(endpoint_save(dir, ep, false), 0);

        struct LoadCtx ctx = {};
        unsigned bad = 99;
        /* a corrupt file beside it is set aside, not fatal */
        char corrupt[300];
        snprintf(corrupt, sizeof corrupt, "%s/endpoints/zz.json", dir);
        FILE *f = fopen(corrupt, "w");
        fputs("{not json", f);
        fclose(f);
        assert_int_equal(endpoint_load_all(dir, load_cb, &ctx, &bad), 0);
        assert_int_equal(ctx.n, 1);
        assert_int_equal(bad, 1);
        Endpoint *g = ctx.got;
        assert_string_equal(g->id, "vmnet/c1/tap0");
        assert_string_equal(g->key, ep->key);
        assert_int_equal(g->kind, EP_KIND_VM);
        assert_int_equal(g->state, EP_READY);
        assert_int_equal(g->n_addrs, 2);
        assert_true(kv_addr_equal(&g->addrs[1].addr, &ep->addrs[1].addr));
        assert_int_equal(g->addrs[1].prefixlen, 64);
        assert_true(g->has_gateway[0]);
        assert_false(g->has_gateway[1]);
        assert_int_equal(g->mac[5], 0x42);
        assert_int_equal(g->n_pm, 1);
        assert_int_equal(g->pm[0].host_port, 8080);
        assert_string_equal(g->tap, "tap0");
        assert_string_equal(g->sbx_ifname, "kvs12345678");
        assert_true(g->ipmasq);
        assert_non_null(g->result);
        assert_int_equal(endpoint_remove(dir, ep, false), 0);
        assert_int_equal(endpoint_remove(dir, ep, false), 0); /* gone already: fine */
        endpoint_free(g);
        endpoint_free(ep);

        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
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
                json_t *req = args_from(bad[i]);
                json_t *reply = manager_handle(m, req);
                assert_non_null(reply);
                if (!json_is_false(json_object_get(reply, "ok")) ||
                    json_integer_value(json_object_get(reply, "code")) != codes[i])
                        fail_msg("request %s: reply %s", bad[i], json_dumps(reply, JSON_COMPACT));
                json_decref(reply);
                json_decref(req);
        }
        /* The failed ADD (netns missing) left no claim behind. */
        json_t *req = args_from("{\"op\":\"ipam\"}");
        json_t *reply = manager_handle(m, req);
        assert_int_equal(json_array_size(json_object_get(json_object_get(reply, "result"), "claims")), 0);
        json_decref(reply);
        json_decref(req);
        /* DEL of something unknown succeeds. */
        req = args_from("{\"op\":\"del\",\"args\":{\"containerID\":\"nope\",\"ifname\":\"eth0\","
                        "\"network\":{\"name\":\"vmnet\"}}}");
        reply = manager_handle(m, req);
        assert_true(json_is_true(json_object_get(reply, "ok")));
        json_decref(reply);
        json_decref(req);
        manager_free(m);
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_request_ok),
                cmocka_unit_test(test_request_errors),
                cmocka_unit_test(test_endpoint_roundtrip),
                cmocka_unit_test(test_manager_rejects),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
