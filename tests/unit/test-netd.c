/* SPDX-License-Identifier: Apache-2.0 */
/* netd without the kernel: request parsing (the socket boundary), endpoint records and their store,
 * and the manager's answers to requests that must fail before anything is changed. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "tests/unit/tmpdir.h"

#include "common/json-util.h"
#include "netd/binding/binding.h"
#include "netd/core/netd-priv.h"

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

#define SRIOV_NET                                                                                          \
        "\"network\":{\"name\":\"srnet\",\"binding\":\"sriov\",\"resourceName\":\"intel.com/sriov_a\",\"vlan\":100," \
        "\"spoofchk\":false,\"trust\":true,\"ipam\":{\"ranges\":[[{\"subnet\":\"10.99.0.0/24\",\"gateway\":\"10.99.0.1\"}]]}}"
#define SRIOV_VM "\"vm\":{\"name\":\"vm1\",\"interface\":\"net1\"}"

static void test_request_sriov(void **state) {
        (void) state;
        json_t *a = args_from("{\"containerID\":\"c1\",\"ifname\":\"net1\",\"netns\":\"/x\"," SRIOV_VM "," SRIOV_NET "}");
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
        a = args_from("{\"containerID\":\"c1\",\"ifname\":\"net1\",\"netns\":\"/x\"," SRIOV_VM ","
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
        char jpath[256];
        snprintf(jpath, sizeof jpath, "%s/endpoints.journal", dir);
        Journal *j = NULL;
        KvErr e = {};
        assert_int_equal(journal_open(jpath, false, &j, &e), 0);
        assert_int_equal(endpoint_save(j, ep, false), 0);
        journal_free(j);

        /* read back from the file: a fresh journal replays it */
        assert_int_equal(journal_open(jpath, false, &j, &e), 0);
        struct LoadCtx ctx = {};
        unsigned bad = 99;
        /* a record whose value is not an endpoint is counted and kept, not fatal */
        _cleanup_json_ json_t *junk = json_pack("{s:s}", "network", "x");
        assert_int_equal(journal_put(j, "x/y/z", junk, false), 0);
        assert_int_equal(endpoint_load_all(j, load_cb, &ctx, &bad), 0);
        assert_int_equal(ctx.n, 1);
        assert_int_equal(bad, 1);
        assert_non_null(journal_get(j, "x/y/z"));

        /* the layout before the journal: good files are imported and deleted, a corrupt one set aside */
        char sub[256], path[300];
        snprintf(sub, sizeof sub, "%s/endpoints", dir);
        assert_int_equal(mkdir(sub, 0700), 0);
        snprintf(path, sizeof path, "%s/zz.json", sub);
        FILE *f = fopen(path, "w");
        fputs("{not json", f);
        fclose(f);
        strcpy(ep->container_id, "c2");
        assert_int_equal(endpoint_make_id(ep->network, ep->container_id, ep->ifname, ep->id, sizeof ep->id), 0);
        _cleanup_json_ json_t *old = endpoint_to_json(ep, true);
        snprintf(path, sizeof path, "%s/0123456789abcdef.json", sub);
        assert_int_equal(json_dump_file(old, path, JSON_COMPACT), 0);
        struct LoadCtx ictx = {};
        assert_int_equal(endpoint_import_files(dir, j, load_cb, &ictx, &bad), 0);
        assert_int_equal(ictx.n, 1);
        assert_int_equal(bad, 1);
        assert_string_equal(ictx.got->id, "vmnet/c2/tap0");
        endpoint_free(ictx.got);
        assert_int_equal(access(path, F_OK), -1); /* imported: the file is gone */
        snprintf(path, sizeof path, "%s/zz.json.corrupt", sub);
        assert_int_equal(access(path, F_OK), 0);
        assert_non_null(journal_get(j, "vmnet/c2/tap0"));
        /* importing again finds nothing new */
        ictx.n = 0;
        assert_int_equal(endpoint_import_files(dir, j, load_cb, &ictx, &bad), 0);
        assert_int_equal(ictx.n, 0);
        strcpy(ep->container_id, "c1");
        assert_int_equal(endpoint_make_id(ep->network, ep->container_id, ep->ifname, ep->id, sizeof ep->id), 0);
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
        assert_int_equal(endpoint_remove(j, ep, false), 0);
        assert_null(journal_get(j, "vmnet/c1/tap0"));
        assert_int_equal(endpoint_remove(j, ep, false), 0); /* gone already: fine */
        journal_free(j);
        endpoint_free(g);
        endpoint_free(ep);

        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
}

static void test_endpoint_sriov_roundtrip(void **state) {
        (void) state;
        _cleanup_(endpoint_freep) Endpoint *ep = calloc(1, sizeof *ep);
        assert_non_null(ep);
        strcpy(ep->network, "srnet");
        strcpy(ep->container_id, "c1");
        strcpy(ep->ifname, "net1");
        assert_int_equal(endpoint_make_id(ep->network, ep->container_id, ep->ifname, ep->id, sizeof ep->id), 0);
        strcpy(ep->key, "vm/default/vm1/net1");
        strcpy(ep->binding, "sriov");
        strcpy(ep->sriov.pci, "0000:3b:02.1");
        strcpy(ep->sriov.resource, "intel.com/sriov_a");
        ep->sriov.spoofchk = false;
        ep->sriov.trust = true;
        ep->kind = EP_KIND_VM;
        ep->state = EP_READY;
        _cleanup_json_ json_t *o = endpoint_to_json(ep, true);
        assert_string_equal(json_string_value(json_object_get(o, "pciAddress")), "0000:3b:02.1");
        _cleanup_(endpoint_freep) Endpoint *g = NULL;
        KvErr e = {};
        assert_int_equal(endpoint_from_json(o, &g, &e), 0);
        assert_string_equal(g->sriov.pci, "0000:3b:02.1");
        assert_string_equal(g->sriov.resource, "intel.com/sriov_a");
        assert_false(g->sriov.spoofchk);
        assert_true(g->sriov.trust);
        /* the display form carries it too (kvnetctl endpoints) */
        _cleanup_json_ json_t *d = endpoint_to_json(ep, false);
        assert_string_equal(json_string_value(json_object_get(d, "pciAddress")), "0000:3b:02.1");
        /* a bridge endpoint has none */
        strcpy(ep->binding, "bridge");
        ep->sriov.pci[0] = '\0';
        _cleanup_json_ json_t *b = endpoint_to_json(ep, true);
        assert_null(json_object_get(b, "pciAddress"));
        /* a ready sriov record without its VF is refused */
        json_object_set_new(b, "binding", json_string("sriov"));
        _cleanup_(endpoint_freep) Endpoint *bad = NULL;
        assert_true(endpoint_from_json(b, &bad, &e) < 0);
        assert_null(bad);
        assert_non_null(strstr(e.msg, "pciAddress"));
}

static void rm_rf(const char *dir) {
        assert_int_equal(tmpdir_remove(dir), 0);
}

static json_t *call(Manager *m, const char *text) {
        json_t *req = args_from(text);
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
                 "\"sysfsRoot\":\"%s\",\"sriovSimulate\":true}",
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
        assert_string_equal(json_string_value(json_object_get(if0, "sandbox")), "/proc/self/ns/net");
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

/* reaper_queue_close: the thread closes what it is given (the peer of a pipe sees EOF), flush waits
 * for it, idle afterwards; a bad fd is refused. */
static void test_reaper_close(void **state) {
        (void) state;
        Reaper *r = NULL;
        assert_int_equal(reaper_new(&r), 0);
        int p[2];
        assert_int_equal(pipe(p), 0);
        assert_int_equal(reaper_queue_close(r, p[1]), 0);
        reaper_flush(r);
        assert_true(reaper_idle(r));
        char c;
        assert_int_equal(read(p[0], &c, 1), 0); /* EOF: the write end is closed */
        close(p[0]);
        assert_int_equal(reaper_queue_close(r, -1), -EBADF);
        /* queued but never flushed: reaper_free closes it */
        assert_int_equal(pipe(p), 0);
        assert_int_equal(reaper_queue_close(r, p[1]), 0);
        r = reaper_free(r);
        assert_null(r);
        assert_int_equal(read(p[0], &c, 1), 0);
        close(p[0]);
}

/* Every verb of the protocol is found (the table is bisected: an unsorted entry would be lost), nothing else. */
static void test_verb_table(void **state) {
        (void) state;
        static const char *const names[] = { "add", "check", "cluster-claims", "del", "endpoints", "gc", "ipam",
                                             "ipam-release", "migration-activate", "migration-source",
                                             "migrations", "nat", "ping", "sriov", "status", "status-daemon" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                const Verb *v = verb_find(names[i]);
                assert_non_null(v);
                assert_string_equal(v->name, names[i]);
                assert_non_null(v->handler);
                assert_int_equal(v->log_failure, streq(names[i], "add") || streq(names[i], "del") ||
                                                         streq(names[i], "gc"));
        }
        assert_null(verb_find(""));
        assert_null(verb_find("ADD"));
        assert_null(verb_find("statu"));
        assert_null(verb_find("status-daemonx"));
}

/* Binding kinds: the string table both ways, which kind drives an attachment, and complete ops. */
static void test_binding_kinds(void **state) {
        (void) state;
        for (BindingKind k = 0; k < _BINDING_KIND_MAX; k++) {
                assert_non_null(binding_kind_to_string(k));
                assert_int_equal(binding_kind_from_string(binding_kind_to_string(k)), k);
                const BindingOps *ops = binding_ops(k);
                assert_int_equal(ops->kind, k);
                assert_non_null(ops->fill);
                assert_non_null(ops->attach);
                assert_non_null(ops->check);
                assert_non_null(ops->detach);
                assert_non_null(ops->result);
        }
        assert_null(binding_kind_to_string(_BINDING_KIND_MAX));
        assert_int_equal(binding_kind_from_string("Bridge"), _BINDING_KIND_INVALID);
        assert_int_equal(binding_kind_from_string(NULL), _BINDING_KIND_INVALID);
        assert_false(binding_kind_configurable(BINDING_CHAINED));
        assert_true(binding_kind_configurable(BINDING_SRIOV));
        /* configured, vm, chained */
        assert_int_equal(binding_kind_resolve(BINDING_BRIDGE, false, false), BINDING_BRIDGE);
        assert_int_equal(binding_kind_resolve(BINDING_BRIDGE, true, false), BINDING_BRIDGE);
        assert_int_equal(binding_kind_resolve(BINDING_MASQUERADE, false, false), BINDING_BRIDGE);
        assert_int_equal(binding_kind_resolve(BINDING_MASQUERADE, true, false), BINDING_MASQUERADE);
        assert_int_equal(binding_kind_resolve(BINDING_MASQUERADE, true, true), BINDING_CHAINED);
        assert_int_equal(binding_kind_resolve(BINDING_BRIDGE, true, true), BINDING_CHAINED);
        assert_int_equal(binding_kind_resolve(BINDING_BRIDGE, false, true), BINDING_CHAINED);
        assert_int_equal(binding_kind_resolve(BINDING_SRIOV, true, false), BINDING_SRIOV);
        /* only the sriov binding has no guest DHCP and no node NAT; only bridge ports get trunk guards */
        assert_null(binding_sriov_ops.lease);
        assert_false(binding_sriov_ops.node_nat);
        assert_true(binding_bridge_ops.bridge_port && binding_masquerade_ops.bridge_port);
        assert_false(binding_chained_ops.bridge_port || binding_sriov_ops.bridge_port);
        assert_true(binding_bridge_ops.learn_neighbour);
        assert_false(binding_masquerade_ops.learn_neighbour || binding_chained_ops.learn_neighbour);
}

/* A record's binding kind is derived when it is read, and is not written. */
static void test_endpoint_binding_kind(void **state) {
        (void) state;
        static const struct {
                const char *binding, *kind;
                bool chained;
                BindingKind want;
        } cases[] = {
                { "bridge", "container", false, BINDING_BRIDGE },
                { "masquerade", "container", false, BINDING_BRIDGE },
                { "masquerade", "vm", false, BINDING_MASQUERADE },
                { "bridge", "vm", true, BINDING_CHAINED },
                { "something-newer", "vm", false, BINDING_BRIDGE },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_json_ json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:b}", "network", "n", "containerID",
                                                     "c1", "ifname", "eth0", "key", "ctr/c1/eth0", "binding",
                                                     cases[i].binding, "kind", cases[i].kind, "chained",
                                                     cases[i].chained);
                assert_non_null(o);
                assert_int_equal(json_object_set_new(o, "state", json_string("ready")), 0);
                _cleanup_(endpoint_freep) Endpoint *ep = NULL;
                KvErr e = {};
                assert_int_equal(endpoint_from_json(o, &ep, &e), 0);
                assert_int_equal(ep->binding_kind, cases[i].want);
                assert_string_equal(ep->binding, cases[i].binding);
                _cleanup_json_ json_t *back = endpoint_to_json(ep, true);
                assert_null(json_object_get(back, "bindingKind"));
                assert_string_equal(json_string_value(json_object_get(back, "binding")), cases[i].binding);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_request_ok),
                cmocka_unit_test(test_request_errors),
                cmocka_unit_test(test_endpoint_roundtrip),
                cmocka_unit_test(test_manager_rejects),
                cmocka_unit_test(test_request_sriov),
                cmocka_unit_test(test_endpoint_sriov_roundtrip),
                cmocka_unit_test(test_manager_sriov),
                cmocka_unit_test(test_reaper_close),
                cmocka_unit_test(test_verb_table),
                cmocka_unit_test(test_binding_kinds),
                cmocka_unit_test(test_endpoint_binding_kind),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
