/* SPDX-License-Identifier: Apache-2.0 */
/* netd IPAM: config parsing, allocation, persistence. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "tests/unit/helpers.h"
#include "tests/unit/tmpdir.h"

#include "netd/ipam/ipam.h"

/* ---- helpers ---- */

static int parse(const char *text, IpamConfig *c, KvErr *e) {
        json_error_t jerr;
        json_t *o = json_loads(text, 0, &jerr);
        assert_non_null(o);
        int r = ipam_config_parse(o, "ipam", c, e);
        json_decref(o);
        return r;
}

static void parse_ok(const char *text, IpamConfig *c) {
        KvErr e = {};
        int r = parse(text, c, &e);
        if (r < 0)
                fail_msg("parse failed: %s", e.msg);
}

/* Parsing must fail with KV_ERR_INVALID_CONFIG and a message containing every given fragment. */
static void parse_bad(const char *text, ...) {
        IpamConfig c;
        KvErr e = {};
        assert_true(parse(text, &c, &e) < 0);
        assert_int_equal(e.code, KV_ERR_INVALID_CONFIG);
        va_list ap;
        va_start(ap, text);
        for (const char *frag; (frag = va_arg(ap, const char *));)
                if (!strstr(e.msg, frag))
                        fail_msg("message '%s' lacks '%s'", e.msg, frag);
        va_end(ap);
}

static const char *afmt(const KvAddr *a) {
        static char buf[4][KV_ADDR_STRLEN];
        static int n;
        return kv_addr_fmt(a, buf[n++ % 4]);
}

typedef struct Fixture {
        char dir[64];
        Ipam *ipam;
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof *f);
        assert_non_null(f);
        strcpy(f->dir, "/tmp/kvnet-test-ipam-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        assert_int_equal(ipam_new(f->dir, false, &f->ipam), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        ipam_free(f->ipam);
        tmpdir_remove(f->dir);
        free(f);
        return 0;
}

static void pool(Fixture *f, const char *network, const char *json) {
        IpamConfig c;
        KvErr e = {};
        parse_ok(json, &c);
        int r = ipam_pool_ensure(f->ipam, network, &c, &e);
        if (r < 0)
                fail_msg("pool_ensure: %s", e.msg);
}

static IpamClaim *claim_ok(Fixture *f, const char *network, const char *key, const IpamRequest *req,
                           bool *existing) {
        IpamClaim *c = NULL;
        KvErr e = {};
        int r = ipam_claim(f->ipam, network, key, req, &c, existing, &e);
        if (r < 0)
                fail_msg("claim %s: %s", key, e.msg);
        assert_non_null(c);
        return c;
}

static int claim_err(Fixture *f, const char *network, const char *key, const IpamRequest *req, KvErr *e) {
        IpamClaim *c = NULL;
        int r = ipam_claim(f->ipam, network, key, req, &c, NULL, e);
        assert_true(r < 0);
        assert_null(c);
        return e->code;
}

/* ---- config parsing ---- */

static void test_config_v4_defaults(void **state) {
        (void) state;
        IpamConfig c;
        parse_ok("{\"ranges\":[[{\"subnet\":\"10.88.0.0/24\"}]]}", &c);
        assert_int_equal(c.n_sets, 1);
        assert_int_equal(c.sets[0].n_ranges, 1);
        const IpamRange *r = &c.sets[0].ranges[0];
        assert_int_equal(r->subnet.prefixlen, 24);
        assert_string_equal(afmt(&r->subnet.addr), "10.88.0.0");
        assert_string_equal(afmt(&r->start), "10.88.0.1");
        assert_string_equal(afmt(&r->end), "10.88.0.254");
        assert_true(r->has_gateway);
        assert_string_equal(afmt(&r->gateway), "10.88.0.1");

        /* host bits of the subnet are cleared; explicit values kept */
        parse_ok("{\"type\":\"kvnet\",\"ranges\":[[{\"subnet\":\"10.88.0.77/24\",\"rangeStart\":\"10.88.0.10\","
                 "\"rangeEnd\":\"10.88.0.20\",\"gateway\":\"10.88.0.254\"}]]}",
                 &c);
        r = &c.sets[0].ranges[0];
        assert_string_equal(afmt(&r->subnet.addr), "10.88.0.0");
        assert_string_equal(afmt(&r->start), "10.88.0.10");
        assert_string_equal(afmt(&r->end), "10.88.0.20");
        assert_string_equal(afmt(&r->gateway), "10.88.0.254");
}

static void test_config_v6(void **state) {
        (void) state;
        IpamConfig c;
        parse_ok("{\"ranges\":[[{\"subnet\":\"fd88::/64\"}]]}", &c);
        const IpamRange *r = &c.sets[0].ranges[0];
        assert_int_equal(r->subnet.addr.family, AF_INET6);
        assert_string_equal(afmt(&r->start), "fd88::1");
        assert_string_equal(afmt(&r->end), "fd88::ffff:ffff:ffff:ffff");
        assert_string_equal(afmt(&r->gateway), "fd88::1");
}

static void test_config_dual_stack_roundtrip(void **state) {
        (void) state;
        IpamConfig c, c2;
        KvErr e = {};
        parse_ok("{\"ranges\":[[{\"subnet\":\"10.88.0.0/24\",\"gateway\":\"10.88.0.1\"},"
                 "{\"subnet\":\"10.89.0.0/24\"}],[{\"subnet\":\"fd88::/64\"}]],"
                 "\"routes\":[{\"dst\":\"0.0.0.0/0\"},{\"dst\":\"::/0\",\"gw\":\"fd88::1\"}],"
                 "\"exclude\":[\"10.88.0.5\",\"10.88.0.8/30\"]}",
                 &c);
        assert_int_equal(c.n_sets, 2);
        assert_int_equal(c.sets[0].n_ranges, 2);
        assert_int_equal(c.sets[1].ranges[0].subnet.addr.family, AF_INET6);
        assert_int_equal(c.n_routes, 2);
        assert_false(c.routes[0].has_gw);
        assert_true(c.routes[1].has_gw);
        assert_int_equal(c.n_exclude, 5);
        assert_string_equal(afmt(&c.exclude[4]), "10.88.0.11");

        json_t *j = ipam_config_to_json(&c);
        assert_non_null(j);
        assert_int_equal(ipam_config_parse(j, "canon", &c2, &e), 0);
        json_decref(j);
        assert_true(ipam_config_equal(&c, &c2));
        c2.sets[0].ranges[1].end.bytes[3]--;
        assert_false(ipam_config_equal(&c, &c2));
}

static void test_config_legacy(void **state) {
        (void) state;
        IpamConfig c;
        parse_ok("{\"type\":\"kvnet\",\"subnet\":\"10.10.0.0/16\",\"rangeStart\":\"10.10.1.0\","
                 "\"rangeEnd\":\"10.10.1.255\",\"gateway\":\"10.10.0.1\",\"ranges\":[[{\"subnet\":\"fd10::/64\"}]]}",
                 &c);
        assert_int_equal(c.n_sets, 2);
        assert_string_equal(afmt(&c.sets[0].ranges[0].start), "10.10.1.0");
        assert_string_equal(afmt(&c.sets[0].ranges[0].end), "10.10.1.255");
        assert_int_equal(c.sets[1].ranges[0].subnet.addr.family, AF_INET6);
}

static void test_config_bad(void **state) {
        (void) state;
        parse_bad("{\"ranges\":[[{\"gateway\":\"10.0.0.1\"}]]}", "ipam.ranges[0][0]", "'subnet' is required", NULL);
        parse_bad("{}", "'ranges' is required", NULL);
        parse_bad("{\"ranges\":[[{\"subnet\":\"10.88.0.0/33\"}]]}", "ipam.ranges[0][0].subnet", "'10.88.0.0/33'",
                  "not a valid CIDR", NULL);
        parse_bad("{\"ranges\":[[{\"subnet\":\"10.88.0.0\"}]]}", "ipam.ranges[0][0].subnet", "'10.88.0.0'", NULL);
        parse_bad("{\"ranges\":[[{\"subnet\":\"10.88.0.0/31\"}]]}", "ipam.ranges[0][0].subnet", "too small", NULL);
        parse_bad("{\"ranges\":[[{\"subnet\":\"10.88.0.0/24\"},{\"subnet\":\"10.88.1.0/24\","
                  "\"rangeStart\":\"10.9.0.5\"}]]}",
                  "ipam.ranges[0][1].rangeStart: '10.9.0.5' is not inside subnet 10.88.1.0/24", NULL);
        parse_bad("{\"ranges\":[[{\"subnet\":\"10.88.0.0/24\",\"rangeEnd\":\"10.88.1.1\"}]]}",
                  "ipam.ranges[0][0].rangeEnd: '10.88.1.1' is not inside subnet 10.88.0.0/24", NULL);
        parse_bad("{\"ranges\":[[{\"subnet\":\"10.88.0.0/24\",\"gateway\":\"fd00::1\"}]]}",
                  "ipam.ranges[0][0].gateway: 'fd00::1' is not an IPv4 address", NULL);
        parse_bad("{\"ranges\":[[{\"subnet\":\"10.88.0.0/24\",\"gateway\":\"10.88.0.300\"}]]}",
                  "ipam.ranges[0][0].gateway", "'10.88.0.300'", NULL);
        parse_bad("{\"ranges\":[[{\"subnet\":\"10.88.0.0/24\",\"rangeStart\":\"10.88.0.50\","
                  "\"rangeEnd\":\"10.88.0.10\"}]]}",
                  "ipam.ranges[0][0].rangeStart: '10.88.0.50' is after rangeEnd '10.88.0.10'", NULL);
        parse_bad("{\"ranges\":[[{\"subnet\":\"10.88.0.0/24\"}],[{\"subnet\":\"10.88.0.0/25\"}]]}",
                  "ipam.ranges[1][0]", "overlaps ipam.ranges[0][0]", "10.88.0.0/24", NULL);
        parse_bad("{\"ranges\":[[{\"subnet\":\"10.88.0.0/24\",\"rangeEnd\":\"10.88.0.100\"},"
                  "{\"subnet\":\"10.88.0.0/24\",\"rangeStart\":\"10.88.0.100\"}]]}",
                  "ipam.ranges[0][1]", "overlaps ipam.ranges[0][0]", NULL);
        parse_bad("{\"ranges\":[[{\"subnet\":\"10.88.0.0/24\"},{\"subnet\":\"fd00::/64\"}]]}",
                  "ipam.ranges[0][1].subnet: 'fd00::/64' is IPv6", "one family", NULL);
        parse_bad("{\"type\":\"host-local\",\"ranges\":[[{\"subnet\":\"10.88.0.0/24\"}]]}",
                  "ipam.type: 'host-local' is not supported", NULL);
        parse_bad("{\"ranges\":[[{\"subnet\":\"10.88.0.0/24\"}]],\"routes\":[{\"dst\":\"0.0.0.0/0\",\"gw\":\"fd::1\"}]}",
                  "ipam.routes[0].gw: 'fd::1' is not an IPv4 address", NULL);
        parse_bad("{\"ranges\":[[{\"subnet\":\"10.88.0.0/24\"}]],\"routes\":[{\"dst\":\"default\"}]}",
                  "ipam.routes[0].dst: 'default'", NULL);
        parse_bad("{\"ranges\":[[{\"subnet\":\"10.88.0.0/24\"}]],\"exclude\":[\"10.88.0.x\"]}",
                  "ipam.exclude[0]: '10.88.0.x'", NULL);
        parse_bad("{\"ranges\":[[{\"subnet\":\"10.88.0.0/24\"}]],\"exclude\":[\"10.0.0.0/8\"]}",
                  "ipam.exclude[0]: '10.0.0.0/8' exceeds", NULL);
        parse_bad("{\"ranges\":[[]]}", "ipam.ranges[0]", "at least one range", NULL);
        parse_bad("{\"ranges\":[{\"subnet\":\"10.88.0.0/24\"}]}", "ipam.ranges[0]", "array", NULL);
        parse_bad("{\"ranges\":[[{\"subnet\":24}]]}", "'subnet' must be a string", NULL);
        parse_bad("{\"rangeStart\":\"10.0.0.1\",\"ranges\":[[{\"subnet\":\"10.88.0.0/24\"}]]}", "ipam.rangeStart",
                  NULL);
        /* same family in two sets is allowed (host-local allows it) */
        IpamConfig c;
        parse_ok("{\"ranges\":[[{\"subnet\":\"10.88.0.0/24\"}],[{\"subnet\":\"10.89.0.0/24\"}]]}", &c);
        assert_int_equal(c.n_sets, 2);
}

/* ---- allocation ---- */

static void test_alloc_order_and_reserved(void **state) {
        Fixture *f = *state;
        /* /29: .0 network, .1 gateway, .7 broadcast, .4 excluded → .2 .3 .5 .6 */
        pool(f, "n", "{\"ranges\":[[{\"subnet\":\"10.1.0.0/29\"}]],\"exclude\":[\"10.1.0.4\"]}");
        const char *expect[] = { "10.1.0.2", "10.1.0.3", "10.1.0.5", "10.1.0.6" };
        for (size_t k = 0; k < ELEMENTSOF(expect); k++) {
                char key[32];
                snprintf(key, sizeof key, "ctr/c%zu/eth0", k);
                IpamClaim *c = claim_ok(f, "n", key, NULL, NULL);
                assert_int_equal(c->n_addrs, 1);
                assert_string_equal(afmt(&c->addrs[0].addr), expect[k]);
                assert_int_equal(c->addrs[0].prefixlen, 29);
                assert_true(c->has_gateway[0]);
                assert_string_equal(afmt(&c->gateways[0]), "10.1.0.1");
                assert_int_equal(c->state, IPAM_CLAIM_ACTIVE);
                assert_int_equal(c->mac[0], 0x02);
        }
        KvErr e = {};
        assert_int_equal(claim_err(f, "n", "ctr/full/eth0", NULL, &e), KV_ERR_IPAM_EXHAUSTED);
        assert_non_null(strstr(e.msg, "network 'n': no free address in 10.1.0.0/29 (4 in use)"));
        /* the reserved ones cannot be requested either */
        const char *reserved[] = { "10.1.0.0", "10.1.0.1", "10.1.0.4", "10.1.0.7" };
        for (size_t k = 0; k < ELEMENTSOF(reserved); k++) {
                IpamRequest req = { .ips = { A(reserved[k]) }, .n_ips = 1 };
                kverr_clear(&e);
                assert_int_equal(claim_err(f, "n", "ctr/x/eth0", &req, &e), KV_ERR_INVALID_CONFIG);
                assert_non_null(strstr(e.msg, reserved[k]));
        }
        assert_null(ipam_find(f->ipam, "n", "ctr/x/eth0"));
}

static void test_exhaustion_30(void **state) {
        Fixture *f = *state;
        pool(f, "n30", "{\"ranges\":[[{\"subnet\":\"192.168.5.0/30\"}]]}");
        IpamClaim *c = claim_ok(f, "n30", "ctr/a/eth0", NULL, NULL);
        assert_string_equal(afmt(&c->addrs[0].addr), "192.168.5.2");
        KvErr e = {};
        assert_int_equal(claim_err(f, "n30", "ctr/b/eth0", NULL, &e), KV_ERR_IPAM_EXHAUSTED);
        assert_non_null(strstr(e.msg, "192.168.5.0/30 (1 in use)"));
        assert_int_equal(ipam_release(f->ipam, "n30", "ctr/a/eth0"), 1);
        c = claim_ok(f, "n30", "ctr/b/eth0", NULL, NULL);
        assert_string_equal(afmt(&c->addrs[0].addr), "192.168.5.2");
}

static void test_requested(void **state) {
        Fixture *f = *state;
        pool(f, "n", "{\"ranges\":[[{\"subnet\":\"10.88.0.0/24\",\"rangeStart\":\"10.88.0.10\","
                     "\"rangeEnd\":\"10.88.0.100\"}]]}");
        IpamRequest req = { .ips = { A("10.88.0.50") }, .n_ips = 1, .owner = "c1/eth0" };
        IpamClaim *c = claim_ok(f, "n", "vm/default/vm1/default", &req, NULL);
        assert_string_equal(afmt(&c->addrs[0].addr), "10.88.0.50");
        assert_string_equal(c->owner, "c1/eth0");
        assert_ptr_equal(ipam_find_addr(f->ipam, "n", &req.ips[0]), c);

        KvErr e = {};
        assert_int_equal(claim_err(f, "n", "ctr/c2/eth0", &req, &e), KV_ERR_ADDRESS_IN_USE);
        assert_non_null(strstr(e.msg, "10.88.0.50"));
        assert_non_null(strstr(e.msg, "'vm/default/vm1/default'"));

        IpamRequest out = { .ips = { A("10.88.0.150") }, .n_ips = 1 };
        kverr_clear(&e);
        assert_int_equal(claim_err(f, "n", "ctr/c3/eth0", &out, &e), KV_ERR_INVALID_CONFIG);
        assert_non_null(strstr(e.msg, "10.88.0.150"));
        assert_non_null(strstr(e.msg, "outside"));

        IpamRequest fam = { .ips = { A("fd00::5") }, .n_ips = 1 };
        kverr_clear(&e);
        assert_int_equal(claim_err(f, "n", "ctr/c3/eth0", &fam, &e), KV_ERR_INVALID_CONFIG);

        /* dynamic allocation skips the requested one once reached */
        IpamRequest mac = { .mac = { 0x02, 1, 2, 3, 4, 5 }, .has_mac = true };
        c = claim_ok(f, "n", "ctr/c4/eth0", &mac, NULL);
        assert_string_equal(afmt(&c->addrs[0].addr), "10.88.0.51"); /* round robin continues after .50 */
        assert_memory_equal(c->mac, mac.mac, 6);

        /* a MAC is one claim's on a network: another key asking for it is refused, naming the holder, and nothing
         * is taken (the next dynamic address is still .52) */
        kverr_clear(&e);
        size_t before = ipam_count_claims(f->ipam, "n");
        assert_int_equal(claim_err(f, "n", "ctr/c5/eth0", &mac, &e), KV_ERR_ADDRESS_IN_USE);
        assert_non_null(strstr(e.msg, "MAC 02:01:02:03:04:05 is in use by 'ctr/c4/eth0'"));
        assert_int_equal(ipam_count_claims(f->ipam, "n"), before);
        /* a VM's own MAC again (its restart, its migration target on this node): its claim, not a conflict */
        bool existing = false;
        c = claim_ok(f, "n", "ctr/c4/eth0", &mac, &existing);
        assert_true(existing);
        /* ... and free again once its holder released it */
        assert_int_equal(ipam_release(f->ipam, "n", "ctr/c4/eth0"), 1);
        c = claim_ok(f, "n", "ctr/c5/eth0", &mac, NULL);
        assert_string_equal(afmt(&c->addrs[0].addr), "10.88.0.52");
        /* the all-zero MAC is no interface's */
        IpamRequest zero = { .has_mac = true };
        kverr_clear(&e);
        assert_int_equal(claim_err(f, "n", "ctr/c6/eth0", &zero, &e), KV_ERR_INVALID_CONFIG);
        assert_non_null(strstr(e.msg, "00:00:00:00:00:00"));
        /* a derived MAC never equals a requested one: c7's derived MAC taken first by c8, c7 gets another */
        uint8_t derived[6];
        ipam_derive_mac("n", "ctr/c7/eth0", derived);
        IpamRequest steal = { .has_mac = true };
        memcpy(steal.mac, derived, 6);
        claim_ok(f, "n", "ctr/c8/eth0", &steal, NULL);
        c = claim_ok(f, "n", "ctr/c7/eth0", NULL, NULL);
        assert_memory_not_equal(c->mac, derived, 6);
        assert_false(c->mac[0] & 1);
}

static void test_sticky(void **state) {
        Fixture *f = *state;
        pool(f, "n", "{\"ranges\":[[{\"subnet\":\"10.88.0.0/24\"}],[{\"subnet\":\"fd88::/64\"}]]}");
        bool existing = true;
        IpamRequest r1 = { .owner = "sandbox1/eth0" };
        IpamClaim *a = claim_ok(f, "n", "vm/ns/vm1/default", &r1, &existing);
        assert_false(existing);
        assert_int_equal(a->n_addrs, 2);
        assert_string_equal(afmt(&a->addrs[0].addr), "10.88.0.2");
        assert_string_equal(afmt(&a->addrs[1].addr), "fd88::2");
        assert_int_equal(a->addrs[1].prefixlen, 64);
        assert_string_equal(afmt(&a->gateways[1]), "fd88::1");
        KvPrefix a0 = a->addrs[0], a1 = a->addrs[1];
        uint8_t mac[6];
        memcpy(mac, a->mac, 6);
        uint8_t derived[6];
        ipam_derive_mac("n", "vm/ns/vm1/default", derived);
        assert_memory_equal(mac, derived, 6);

        KvErr e = {};
        assert_int_equal(ipam_set_state(f->ipam, a, IPAM_CLAIM_IDLE, "", &e), 0);
        assert_int_equal(a->state, IPAM_CLAIM_IDLE);

        /* same VM from another sandbox: same IPs and MAC, made active with the new owner */
        IpamRequest r2 = { .owner = "sandbox2/eth0", .ips = { a0.addr }, .n_ips = 1 };
        IpamClaim *b = claim_ok(f, "n", "vm/ns/vm1/default", &r2, &existing);
        assert_true(existing);
        assert_ptr_equal(a, b);
        assert_true(kv_addr_equal(&b->addrs[0].addr, &a0.addr));
        assert_true(kv_addr_equal(&b->addrs[1].addr, &a1.addr));
        assert_memory_equal(b->mac, mac, 6);
        assert_int_equal(b->state, IPAM_CLAIM_ACTIVE);
        assert_string_equal(b->owner, "sandbox2/eth0");

        IpamClaim *o = claim_ok(f, "n", "vm/ns/vm2/default", NULL, NULL);
        assert_false(kv_addr_equal(&o->addrs[0].addr, &a0.addr));
        assert_false(kv_addr_equal(&o->addrs[1].addr, &a1.addr));
        assert_memory_not_equal(o->mac, mac, 6);

        /* a different requested IP or MAC for an existing claim is refused, naming both */
        IpamRequest bad = { .ips = { A("10.88.0.99") }, .n_ips = 1 };
        assert_int_equal(claim_err(f, "n", "vm/ns/vm1/default", &bad, &e), KV_ERR_ADDRESS_IN_USE);
        assert_non_null(strstr(e.msg, "10.88.0.2"));
        assert_non_null(strstr(e.msg, "10.88.0.99"));
        IpamRequest badmac = { .mac = { 0x02, 9, 9, 9, 9, 9 }, .has_mac = true };
        kverr_clear(&e);
        assert_int_equal(claim_err(f, "n", "vm/ns/vm1/default", &badmac, &e), KV_ERR_ADDRESS_IN_USE);
        assert_non_null(strstr(e.msg, "02:09:09:09:09:09"));
}

static void test_release_round_robin(void **state) {
        Fixture *f = *state;
        pool(f, "n", "{\"ranges\":[[{\"subnet\":\"10.1.0.0/29\"}]]}");
        char key[32];
        for (int k = 0; k < 5; k++) {
                snprintf(key, sizeof key, "ctr/c%d/eth0", k);
                claim_ok(f, "n", key, NULL, NULL);
        }
        KvErr e = {};
        assert_int_equal(claim_err(f, "n", "ctr/x/eth0", NULL, &e), KV_ERR_IPAM_EXHAUSTED);
        assert_int_equal(ipam_release(f->ipam, "n", "ctr/c2/eth0"), 1); /* 10.1.0.4 */
        assert_int_equal(ipam_release(f->ipam, "n", "ctr/c2/eth0"), 0);
        assert_int_equal(ipam_release(f->ipam, "nope", "ctr/c2/eth0"), 0);
        assert_null(ipam_find(f->ipam, "n", "ctr/c2/eth0"));
        IpamClaim *c = claim_ok(f, "n", "ctr/x/eth0", NULL, NULL);
        assert_string_equal(afmt(&c->addrs[0].addr), "10.1.0.4");

        /* round robin: a released address is not handed out again before the others */
        pool(f, "m", "{\"ranges\":[[{\"subnet\":\"10.2.0.0/24\"}]]}");
        claim_ok(f, "m", "a", NULL, NULL);
        claim_ok(f, "m", "b", NULL, NULL);
        assert_int_equal(ipam_release(f->ipam, "m", "a"), 1);
        c = claim_ok(f, "m", "c", NULL, NULL);
        assert_string_equal(afmt(&c->addrs[0].addr), "10.2.0.4");
}

static int count_cb(IpamClaim *c, void *userdata) {
        (void) c;
        (*(int *) userdata)++;
        return 0;
}

static void test_persistence(void **state) {
        Fixture *f = *state;
        pool(f, "vmnet", "{\"ranges\":[[{\"subnet\":\"10.88.0.0/24\"}],[{\"subnet\":\"fd88::/64\"}]],"
                         "\"routes\":[{\"dst\":\"0.0.0.0/0\"}]}");
        pool(f, "odd name/with:chars", "{\"ranges\":[[{\"subnet\":\"10.99.0.0/24\"}]]}");
        IpamRequest req = { .owner = "c1/eth0" };
        IpamClaim *a = claim_ok(f, "vmnet", "vm/default/vm1/default", &req, NULL);
        claim_ok(f, "vmnet", "ctr/c2/eth0", NULL, NULL);
        IpamClaim *c3 = claim_ok(f, "vmnet", "ctr/c3/eth0", NULL, NULL);
        claim_ok(f, "odd name/with:chars", "ctr/../../etc/passwd/eth0", NULL, NULL);
        KvErr e = {};
        assert_int_equal(ipam_set_state(f->ipam, a, IPAM_CLAIM_MIGRATING, NULL, &e), 0);
        assert_string_equal(a->owner, "c1/eth0");
        assert_int_equal(ipam_release(f->ipam, "vmnet", "ctr/c2/eth0"), 1);
        KvAddr last = c3->addrs[0].addr;

        json_t *before = ipam_dump(f->ipam);
        assert_non_null(before);

        Ipam *j = NULL;
        assert_int_equal(ipam_new(f->dir, true, &j), 0);
        assert_int_equal(ipam_load(j, &e), 0);
        assert_int_equal(ipam_n_load_warnings(j), 0);
        json_t *after = ipam_dump(j);
        assert_non_null(after);
        assert_int_equal(json_array_size(json_object_get(after, "claims")), 3);
        assert_int_equal(json_array_size(json_object_get(before, "claims")), 3);
        assert_int_equal(json_array_size(json_object_get(after, "pools")), 2);
        for (size_t k = 0; k < 2; k++) {
                json_t *pb = json_array_get(json_object_get(before, "pools"), k), *pa = NULL;
                for (size_t m = 0; m < 2; m++) {
                        json_t *x = json_array_get(json_object_get(after, "pools"), m);
                        if (json_equal(json_object_get(x, "network"), json_object_get(pb, "network")))
                                pa = x;
                }
                assert_non_null(pa);
                assert_true(json_equal(pa, pb));
        }
        json_decref(before);
        json_decref(after);

        assert_true(ipam_config_equal(ipam_pool_config(j, "vmnet"), ipam_pool_config(f->ipam, "vmnet")));
        assert_non_null(ipam_pool_config(j, "odd name/with:chars"));
        assert_null(ipam_pool_config(j, "unknown"));
        IpamClaim *b = ipam_find(j, "vmnet", "vm/default/vm1/default");
        assert_non_null(b);
        assert_int_equal(b->state, IPAM_CLAIM_MIGRATING);
        assert_string_equal(b->owner, "c1/eth0");
        assert_memory_equal(b->mac, a->mac, 6);
        assert_int_equal(b->n_addrs, 2);
        assert_true(kv_addr_equal(&b->addrs[1].addr, &a->addrs[1].addr));
        assert_int_equal(b->created_usec, a->created_usec);
        assert_null(ipam_find(j, "vmnet", "ctr/c2/eth0"));
        assert_non_null(ipam_find(j, "odd name/with:chars", "ctr/../../etc/passwd/eth0"));
        int n = 0;
        assert_int_equal(ipam_foreach_claim(j, NULL, count_cb, &n), 0);
        assert_int_equal(n, 3);
        n = 0;
        assert_int_equal(ipam_foreach_claim(j, "vmnet", count_cb, &n), 0);
        assert_int_equal(n, 2);

        /* the next allocation continues after the newest claim and never reuses a held address */
        IpamClaim *d = claim_ok(&(Fixture) { .ipam = j }, "vmnet", "ctr/c4/eth0", NULL, NULL);
        assert_false(kv_addr_equal(&d->addrs[0].addr, &a->addrs[0].addr));
        assert_false(kv_addr_equal(&d->addrs[0].addr, &last));
        assert_string_equal(afmt(&d->addrs[0].addr), "10.88.0.5");
        ipam_free(j);
}

static void test_tmp_and_corrupt(void **state) {
        Fixture *f = *state;
        pool(f, "n", "{\"ranges\":[[{\"subnet\":\"10.3.0.0/24\"}]]}");
        claim_ok(f, "n", "ctr/good/eth0", NULL, NULL);
        claim_ok(f, "n", "ctr/good2/eth0", NULL, NULL);
        char path[256];
        /* claim files of the layout before the journal: a damaged one, a good one (imported, then deleted) */
        snprintf(path, sizeof path, "%s/ipam/n/claims", f->dir);
        assert_int_equal(mkdir(path, 0700), 0);
        snprintf(path, sizeof path, "%s/ipam/n/claims/ctr_old-1.json", f->dir);
        FILE *fp = fopen(path, "w");
        assert_non_null(fp);
        fputs("{\"version\":1,\"network\":\"n\",\"key\":\"ctr/old/eth0\",\"ips\":[\"10.3.0.200/24\"],"
              "\"gateways\":[\"10.3.0.1\"],\"mac\":\"02:00:00:00:00:01\",\"state\":\"active\",\"owner\":\"\","
              "\"created\":1,\"updated\":1}\n",
              fp);
        fclose(fp);
        snprintf(path, sizeof path, "%s/ipam/n/claims/ctr_bad-0000000000000000.json", f->dir);
        fp = fopen(path, "w");
        assert_non_null(fp);
        fputs("{\"network\":\"n\",\"key\":", fp);
        fclose(fp);
        snprintf(path, sizeof path, "%s/ipam/n/claims/ctr_good-1234.json.tmp.999", f->dir);
        fp = fopen(path, "w");
        assert_non_null(fp);
        fputs("garbage", fp);
        fclose(fp);
        snprintf(path, sizeof path, "%s/ipam/n/pool.json.tmp.42", f->dir);
        fp = fopen(path, "w");
        assert_non_null(fp);
        fputs("garbage", fp);
        fclose(fp);

        Ipam *j = NULL;
        KvErr e = {};
        assert_int_equal(ipam_new(f->dir, false, &j), 0);
        assert_int_equal(ipam_load(j, &e), 1); /* one skipped file, the rest loaded */
        assert_int_equal(e.code, 0);
        assert_int_equal(ipam_n_load_warnings(j), 1);
        assert_non_null(strstr(ipam_load_warning(j, 0), "ctr_bad-0000000000000000.json"));
        assert_null(ipam_load_warning(j, 1));
        assert_non_null(ipam_find(j, "n", "ctr/good/eth0"));
        assert_non_null(ipam_find(j, "n", "ctr/good2/eth0"));
        IpamClaim *old = ipam_find(j, "n", "ctr/old/eth0");
        assert_non_null(old);
        assert_string_equal(afmt(&old->addrs[0].addr), "10.3.0.200");
        snprintf(path, sizeof path, "%s/ipam/n/claims/ctr_old-1.json", f->dir);
        assert_int_equal(access(path, F_OK), -1);
        assert_non_null(ipam_pool_config(j, "n"));
        json_t *d = ipam_dump(j);
        assert_int_equal(json_array_size(json_object_get(d, "loadWarnings")), 1);
        json_decref(d);
        /* loading twice is refused */
        assert_int_equal(ipam_load(j, &e), -EBUSY);
        ipam_free(j);

        /* a corrupt pool.json keeps its claims (unconfigured until the pool is ensured again) */
        snprintf(path, sizeof path, "%s/ipam/n/pool.json", f->dir);
        fp = fopen(path, "w");
        assert_non_null(fp);
        fputs("[]", fp);
        fclose(fp);
        assert_int_equal(ipam_new(f->dir, false, &j), 0);
        kverr_clear(&e);
        assert_int_equal(ipam_load(j, &e), 2);
        assert_non_null(ipam_find(j, "n", "ctr/good/eth0"));
        assert_non_null(ipam_find(j, "n", "ctr/old/eth0")); /* from the journal now */
        assert_null(ipam_pool_config(j, "n"));
        Fixture g = { .ipam = j };
        kverr_clear(&e);
        assert_int_equal(claim_err(&g, "n", "ctr/new/eth0", NULL, &e), KV_ERR_INVALID_CONFIG);
        pool(&g, "n", "{\"ranges\":[[{\"subnet\":\"10.3.0.0/24\"}]]}");
        IpamClaim *c = claim_ok(&g, "n", "ctr/new/eth0", NULL, NULL);
        assert_string_equal(afmt(&c->addrs[0].addr), "10.3.0.4");
        ipam_free(j);
}

static void test_pool_update(void **state) {
        Fixture *f = *state;
        pool(f, "n", "{\"ranges\":[[{\"subnet\":\"10.4.0.0/24\",\"rangeStart\":\"10.4.0.50\"}]]}");
        claim_ok(f, "n", "vm/a/b/c", NULL, NULL); /* 10.4.0.50 */
        IpamConfig c;
        KvErr e = {};
        parse_ok("{\"ranges\":[[{\"subnet\":\"10.4.0.0/24\",\"rangeStart\":\"10.4.0.60\"}]]}", &c);
        assert_true(ipam_pool_ensure(f->ipam, "n", &c, &e) < 0);
        assert_int_equal(e.code, KV_ERR_INVALID_CONFIG);
        assert_non_null(strstr(e.msg, "'vm/a/b/c'"));
        assert_non_null(strstr(e.msg, "10.4.0.50"));
        parse_ok("{\"ranges\":[[{\"subnet\":\"10.4.0.0/24\"}]],\"exclude\":[\"10.4.0.50\"]}", &c);
        kverr_clear(&e);
        assert_true(ipam_pool_ensure(f->ipam, "n", &c, &e) < 0);
        assert_non_null(strstr(e.msg, "reserves"));
        /* widening is fine and kept */
        parse_ok("{\"ranges\":[[{\"subnet\":\"10.4.0.0/24\",\"rangeStart\":\"10.4.0.10\"}]]}", &c);
        kverr_clear(&e);
        assert_int_equal(ipam_pool_ensure(f->ipam, "n", &c, &e), 0);
        assert_true(ipam_config_equal(ipam_pool_config(f->ipam, "n"), &c));
        IpamClaim *x = claim_ok(f, "n", "ctr/x/eth0", NULL, NULL);
        assert_string_equal(afmt(&x->addrs[0].addr), "10.4.0.51");
        /* unknown network */
        kverr_clear(&e);
        assert_int_equal(claim_err(f, "nope", "ctr/x/eth0", NULL, &e), KV_ERR_INVALID_CONFIG);
        assert_non_null(strstr(e.msg, "'nope'"));
}

static void test_large_pool(void **state) {
        Fixture *f = *state;
        pool(f, "big", "{\"ranges\":[[{\"subnet\":\"10.200.0.0/16\"}]]}");
        char key[64];
        for (int k = 0; k < 5000; k++) {
                snprintf(key, sizeof key, "ctr/container-%d/eth0", k);
                IpamClaim *c = claim_ok(f, "big", key, NULL, NULL);
                assert_int_equal(c->addrs[0].addr.bytes[2] * 256 + c->addrs[0].addr.bytes[3], k + 2);
        }
        for (int k = 0; k < 5000; k += 97) {
                snprintf(key, sizeof key, "ctr/container-%d/eth0", k);
                IpamClaim *c = ipam_find(f->ipam, "big", key);
                assert_non_null(c);
                assert_ptr_equal(ipam_find_addr(f->ipam, "big", &c->addrs[0].addr), c);
        }
        json_t *d = ipam_dump(f->ipam);
        json_t *set = json_array_get(json_object_get(json_array_get(json_object_get(d, "pools"), 0), "sets"), 0);
        assert_int_equal(json_integer_value(json_object_get(set, "size")), 65533);
        assert_int_equal(json_integer_value(json_object_get(set, "used")), 5000);
        assert_int_equal(json_integer_value(json_object_get(set, "free")), 60533);
        assert_int_equal(json_array_size(json_object_get(d, "claims")), 5000);
        json_decref(d);
        /* counted without the dump, per network too */
        assert_int_equal(ipam_count_claims(f->ipam, NULL), 5000);
        assert_int_equal(ipam_count_claims(f->ipam, "big"), 5000);
        assert_int_equal(ipam_count_claims(f->ipam, "other"), 0);
        assert_int_equal(ipam_release(f->ipam, "big", "ctr/container-0/eth0"), 1);
        assert_int_equal(ipam_count_claims(f->ipam, NULL), 4999);
}

static void test_v6_64(void **state) {
        Fixture *f = *state;
        pool(f, "v6", "{\"ranges\":[[{\"subnet\":\"fd00:1:2:3::/64\"}]]}");
        IpamClaim *c = claim_ok(f, "v6", "ctr/a/eth0", NULL, NULL);
        assert_string_equal(afmt(&c->addrs[0].addr), "fd00:1:2:3::2");
        IpamRequest req = { .ips = { A("fd00:1:2:3:ffff:ffff:ffff:ffff") }, .n_ips = 1 };
        c = claim_ok(f, "v6", "ctr/b/eth0", &req, NULL);
        assert_string_equal(afmt(&c->addrs[0].addr), "fd00:1:2:3:ffff:ffff:ffff:ffff");
        /* round robin wraps to the start of the range after the last address */
        c = claim_ok(f, "v6", "ctr/c/eth0", NULL, NULL);
        assert_string_equal(afmt(&c->addrs[0].addr), "fd00:1:2:3::3");
        json_t *d = ipam_dump(f->ipam);
        json_t *set = json_array_get(json_object_get(json_array_get(json_object_get(d, "pools"), 0), "sets"), 0);
        assert_string_equal(json_string_value(json_object_get(set, "size")), "18446744073709551614");
        assert_int_equal(json_integer_value(json_object_get(set, "used")), 3);
        json_decref(d);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_config_v4_defaults),
                cmocka_unit_test(test_config_v6),
                cmocka_unit_test(test_config_dual_stack_roundtrip),
                cmocka_unit_test(test_config_legacy),
                cmocka_unit_test(test_config_bad),
                cmocka_unit_test_setup_teardown(test_alloc_order_and_reserved, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exhaustion_30, setup, teardown),
                cmocka_unit_test_setup_teardown(test_requested, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sticky, setup, teardown),
                cmocka_unit_test_setup_teardown(test_release_round_robin, setup, teardown),
                cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tmp_and_corrupt, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pool_update, setup, teardown),
                cmocka_unit_test_setup_teardown(test_large_pool, setup, teardown),
                cmocka_unit_test_setup_teardown(test_v6_64, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
