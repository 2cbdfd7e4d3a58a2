/* SPDX-License-Identifier: Apache-2.0 */
/* netd's endpoint records without the kernel: to/from JSON and through the endpoint store, for the
 * bridge and the sriov bindings. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "tests/unit/tmpdir.h"

#include "common/json-util.h"
#include "netd/core/netd-priv.h"

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

        assert_int_equal(tmpdir_remove(dir), 0);
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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_endpoint_roundtrip),
                cmocka_unit_test(test_endpoint_sriov_roundtrip),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
