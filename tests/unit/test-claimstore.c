/* SPDX-License-Identifier: Apache-2.0 */
/* Cluster claim store (netd/state/claimstore.c): two "nodes" share one directory; announcement frames. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/tmpdir.h"

#include "netd/ipam/ipam.h"
#include "netd/migration/announce.h"
#include "netd/state/claimstore.h"

typedef struct Fx {
        char dir[64];
        ClaimStore *n1, *n2;
} Fx;

static int setup(void **state) {
        Fx *fx = calloc(1, sizeof *fx);
        assert_non_null(fx);
        strcpy(fx->dir, "/tmp/kvnet-cs-XXXXXX");
        assert_non_null(mkdtemp(fx->dir));
        KvErr e = {};
        assert_int_equal(claimstore_open(fx->dir, "node1", false, &fx->n1, &e), 0);
        assert_int_equal(claimstore_open(fx->dir, "node2", false, &fx->n2, &e), 0);
        *state = fx;
        return 0;
}

static int teardown(void **state) {
        Fx *fx = *state;
        claimstore_free(fx->n1);
        claimstore_free(fx->n2);
        tmpdir_remove(fx->dir);
        free(fx);
        return 0;
}

static KvPrefix pfx(const char *s) {
        KvPrefix p;
        assert_int_equal(kv_prefix_parse(s, &p), 0);
        return p;
}

static KvAddr addr(const char *s) {
        KvAddr a;
        assert_int_equal(kv_addr_parse(s, &a), 0);
        return a;
}

static const uint8_t MAC1[6] = { 0x02, 1, 2, 3, 4, 5 };
static const uint8_t MAC2[6] = { 0x02, 1, 2, 3, 4, 6 };

#define VM "vm/default/web/default"

static void test_open_rejects_bad_node(void **state) {
        Fx *fx = *state;
        ClaimStore *cs = NULL;
        KvErr e = {};
        assert_true(claimstore_open(fx->dir, "bad/name", false, &cs, &e) < 0);
        assert_non_null(strstr(e.msg, "nodeName"));
        assert_non_null(strstr(e.msg, "bad/name"));
        assert_null(cs);
        assert_true(claimstore_open(fx->dir, "", false, &cs, &e) < 0);
}

static void test_take_and_conflict(void **state) {
        Fx *fx = *state;
        KvErr e = {};
        KvPrefix a[2] = { pfx("10.88.0.5/24"), pfx("fd00::5/64") };
        assert_int_equal(claimstore_take(fx->n1, "net", VM, a, 2, MAC1, &e), 0);
        CsRecord r;
        assert_int_equal(claimstore_get(fx->n2, "net", VM, &r), 1);
        assert_string_equal(r.holder, "node1");
        assert_true(r.attached);
        assert_int_equal(r.n_addrs, 2);
        assert_memory_equal(r.mac, MAC1, 6);

        /* the address is taken for every other key, on both nodes, and free for its own key */
        KvAddr x = addr("10.88.0.5");
        assert_true(claimstore_addr_taken(fx->n2, "net", &x, "ctr/abc/eth0"));
        assert_true(claimstore_addr_taken(fx->n1, "net", &x, "ctr/abc/eth0"));
        assert_false(claimstore_addr_taken(fx->n2, "net", &x, VM));
        KvAddr y = addr("10.88.0.6");
        assert_false(claimstore_addr_taken(fx->n2, "net", &y, "ctr/abc/eth0"));
        KvAddr other_net = addr("10.88.0.5");
        assert_false(claimstore_addr_taken(fx->n2, "net2", &other_net, "ctr/abc/eth0"));

        /* another key cannot take it from node2 */
        KvPrefix b[1] = { pfx("10.88.0.5/24") };
        e = (KvErr){};
        assert_int_equal(claimstore_take(fx->n2, "net", "ctr/abc/eth0", b, 1, MAC1, &e), -EADDRINUSE);
        assert_int_equal(e.code, KV_ERR_ADDRESS_IN_USE);
        assert_non_null(strstr(e.msg, "10.88.0.5"));
        assert_non_null(strstr(e.msg, VM));
        assert_non_null(strstr(e.msg, "node1"));
        /* nor can node2 take the same VM claim while node1 is attached */
        e = (KvErr){};
        assert_int_equal(claimstore_take(fx->n2, "net", VM, a, 2, MAC1, &e), -EBUSY);
        assert_non_null(strstr(e.msg, "held by node 'node1'"));
        /* nothing changed */
        assert_int_equal(claimstore_get(fx->n2, "net", VM, &r), 1);
        assert_string_equal(r.holder, "node1");
        assert_int_equal(claimstore_get(fx->n2, "net", "ctr/abc/eth0", &r), 0);
}

/* A MAC of a network is one claim's, across nodes: refused for another key (naming it and its node), free again
 * once its claim moves to another MAC or is released; the all-zero MAC ("none") is not a MAC anybody holds; an
 * index entry whose claim holds another MAC (a crash between the writes) is free. */
static void test_mac_unique(void **state) {
        Fx *fx = *state;
        KvErr e = {};
        static const uint8_t none[6];
        KvPrefix a[1] = { pfx("10.88.0.5/24") }, b[1] = { pfx("10.88.0.6/24") }, c[1] = { pfx("10.88.0.7/24") };
        assert_int_equal(claimstore_take(fx->n1, "net", VM, a, 1, MAC1, &e), 0);
        assert_int_equal(claimstore_take(fx->n2, "net", "ctr/c1/eth0", b, 1, MAC1, &e), -EADDRINUSE);
        assert_int_equal(e.code, KV_ERR_ADDRESS_IN_USE);
        assert_non_null(strstr(e.msg, "MAC 02:01:02:03:04:05"));
        assert_non_null(strstr(e.msg, VM));
        assert_non_null(strstr(e.msg, "node1"));
        CsRecord r;
        assert_int_equal(claimstore_get(fx->n2, "net", "ctr/c1/eth0", &r), 0); /* nothing written */
        KvAddr bb = addr("10.88.0.6");
        assert_false(claimstore_addr_taken(fx->n1, "net", &bb, "ctr/x/eth0")); /* nor its address kept */
        /* the same MAC on another network, or no MAC, is fine */
        e = (KvErr){};
        assert_int_equal(claimstore_take(fx->n2, "net2", "ctr/c1/eth0", b, 1, MAC1, &e), 0);
        assert_int_equal(claimstore_take(fx->n2, "net", "ctr/c2/eth0", c, 1, none, &e), 0);
        assert_int_equal(claimstore_take(fx->n1, "net", "ctr/c3/eth0", NULL, 0, none, &e), 0);
        /* the VM's claim moves to MAC2: MAC1 is free, MAC2 is not */
        assert_int_equal(claimstore_take(fx->n1, "net", VM, a, 1, MAC2, &e), 0);
        assert_int_equal(claimstore_take(fx->n2, "net", "ctr/c1/eth0", b, 1, MAC1, &e), 0);
        e = (KvErr){};
        assert_int_equal(claimstore_take(fx->n2, "net", "ctr/c4/eth0", NULL, 0, MAC2, &e), -EADDRINUSE);
        /* released: free */
        assert_int_equal(claimstore_release(fx->n1, "net", VM), 1);
        e = (KvErr){};
        assert_int_equal(claimstore_take(fx->n2, "net", "ctr/c4/eth0", NULL, 0, MAC2, &e), 0);
        /* a stale entry: ctr/c1's (its record holds MAC1) copied to MAC 02:01:02:03:04:07, in every network's dir */
        char cmd[600];
        snprintf(cmd, sizeof cmd, "for d in %s/macs/*/; do cp \"$d\"020102030405 \"$d\"020102030407 || exit 1; done",
                 fx->dir);
        assert_int_equal(system(cmd), 0);
        static const uint8_t MAC7[6] = { 0x02, 1, 2, 3, 4, 7 };
        e = (KvErr){};
        assert_int_equal(claimstore_take(fx->n1, "net", "ctr/c5/eth0", NULL, 0, MAC7, &e), 0);
}

static void test_take_changes_addresses(void **state) {
        Fx *fx = *state;
        KvErr e = {};
        KvPrefix a[1] = { pfx("10.88.0.5/24") }, b[1] = { pfx("10.88.0.7/24") };
        assert_int_equal(claimstore_take(fx->n1, "net", VM, a, 1, MAC1, &e), 0);
        assert_int_equal(claimstore_take(fx->n1, "net", VM, b, 1, MAC1, &e), 0);
        KvAddr old = addr("10.88.0.5"), cur = addr("10.88.0.7");
        assert_false(claimstore_addr_taken(fx->n2, "net", &old, "ctr/x/eth0"));
        assert_true(claimstore_addr_taken(fx->n2, "net", &cur, "ctr/x/eth0"));
}

static void test_migration_finish(void **state) {
        Fx *fx = *state;
        KvErr e = {};
        KvPrefix a[1] = { pfx("10.88.0.5/24") };
        assert_int_equal(claimstore_take(fx->n1, "net", VM, a, 1, MAC1, &e), 0);
        /* node1 cannot be its own target */
        assert_int_equal(claimstore_begin_migration(fx->n1, "net", VM, &e), -EALREADY);
        assert_int_equal(claimstore_begin_migration(fx->n2, "net", VM, &e), 0);
        assert_int_equal(claimstore_begin_migration(fx->n2, "net", VM, &e), 0); /* idempotent */
        CsRecord r;
        assert_int_equal(claimstore_get(fx->n1, "net", VM, &r), 1);
        assert_string_equal(r.holder, "node1");
        assert_string_equal(r.target, "node2");
        /* a third node cannot start a second migration */
        ClaimStore *n3;
        assert_int_equal(claimstore_open(fx->dir, "node3", false, &n3, &e), 0);
        e = (KvErr){};
        assert_int_equal(claimstore_begin_migration(n3, "net", VM, &e), -EBUSY);
        assert_non_null(strstr(e.msg, "node2"));
        /* only the target may finish */
        assert_int_equal(claimstore_finish_migration(n3, "net", VM, &e), -EPERM);
        claimstore_free(n3);
        assert_int_equal(claimstore_finish_migration(fx->n2, "net", VM, &e), 0);
        assert_int_equal(claimstore_get(fx->n1, "net", VM, &r), 1);
        assert_string_equal(r.holder, "node2");
        assert_string_equal(r.target, "");
        assert_true(r.attached);
        /* the source's release after the switch does not free the VM's address */
        assert_int_equal(claimstore_release(fx->n1, "net", VM), 0);
        KvAddr x = addr("10.88.0.5");
        assert_true(claimstore_addr_taken(fx->n1, "net", &x, "ctr/other/eth0"));
        /* and the holder's release does */
        assert_int_equal(claimstore_release(fx->n2, "net", VM), 1);
        assert_false(claimstore_addr_taken(fx->n1, "net", &x, "ctr/other/eth0"));
        assert_int_equal(claimstore_get(fx->n1, "net", VM, &r), 0);
}

static void test_migration_abort(void **state) {
        Fx *fx = *state;
        KvErr e = {};
        KvPrefix a[1] = { pfx("10.88.0.5/24") };
        assert_int_equal(claimstore_take(fx->n1, "net", VM, a, 1, MAC1, &e), 0);
        assert_int_equal(claimstore_begin_migration(fx->n2, "net", VM, &e), 0);
        assert_int_equal(claimstore_abort_migration(fx->n2, "net", VM), 1);
        assert_int_equal(claimstore_abort_migration(fx->n2, "net", VM), 0); /* no longer target */
        CsRecord r;
        assert_int_equal(claimstore_get(fx->n1, "net", VM, &r), 1);
        assert_string_equal(r.holder, "node1");
        assert_string_equal(r.target, "");
        assert_true(r.attached);
}

/* targetReady: only the target sets it, a refresh by the holder keeps it, finish and abort clear it. */
static void test_target_ready(void **state) {
        Fx *fx = *state;
        KvErr e = {};
        KvPrefix a[1] = { pfx("10.88.0.5/24") };
        CsRecord r;
        assert_int_equal(claimstore_take(fx->n1, "net", VM, a, 1, MAC1, &e), 0);
        assert_int_equal(claimstore_set_target_ready(fx->n2, "net", VM, true, &e), -EPERM); /* not the target */
        assert_int_equal(claimstore_begin_migration(fx->n2, "net", VM, &e), 0);
        assert_int_equal(claimstore_get(fx->n1, "net", VM, &r), 1);
        assert_false(r.target_ready);
        assert_int_equal(claimstore_set_target_ready(fx->n1, "net", VM, true, &e), -EPERM); /* the holder */
        assert_int_equal(claimstore_set_target_ready(fx->n2, "net", VM, true, &e), 0);
        assert_int_equal(claimstore_get(fx->n1, "net", VM, &r), 1);
        assert_true(r.target_ready);
        json_t *o = claimstore_record_to_json(&r);
        assert_true(json_is_true(json_object_get(o, "targetReady")));
        json_decref(o);
        /* the holder refreshing its claim keeps target and readiness */
        assert_int_equal(claimstore_take(fx->n1, "net", VM, a, 1, MAC1, &e), 0);
        assert_int_equal(claimstore_get(fx->n2, "net", VM, &r), 1);
        assert_string_equal(r.target, "node2");
        assert_true(r.target_ready);
        assert_int_equal(claimstore_set_target_ready(fx->n2, "net", VM, false, &e), 0);
        assert_int_equal(claimstore_get(fx->n2, "net", VM, &r), 1);
        assert_false(r.target_ready);
        assert_int_equal(claimstore_set_target_ready(fx->n2, "net", VM, true, &e), 0);
        assert_int_equal(claimstore_abort_migration(fx->n2, "net", VM), 1);
        assert_int_equal(claimstore_get(fx->n1, "net", VM, &r), 1);
        assert_false(r.target_ready);
        /* a new target starts unready; finishing clears it */
        assert_int_equal(claimstore_begin_migration(fx->n2, "net", VM, &e), 0);
        assert_int_equal(claimstore_set_target_ready(fx->n2, "net", VM, true, &e), 0);
        assert_int_equal(claimstore_finish_migration(fx->n2, "net", VM, &e), 0);
        assert_int_equal(claimstore_get(fx->n1, "net", VM, &r), 1);
        assert_string_equal(r.holder, "node2");
        assert_false(r.target_ready);
}

static void test_source_released_mid_migration(void **state) {
        Fx *fx = *state;
        KvErr e = {};
        KvPrefix a[1] = { pfx("10.88.0.5/24") };
        assert_int_equal(claimstore_take(fx->n1, "net", VM, a, 1, MAC1, &e), 0);
        assert_int_equal(claimstore_begin_migration(fx->n2, "net", VM, &e), 0);
        /* the source lets go while the target prepares: the address stays reserved for the VM */
        assert_int_equal(claimstore_release(fx->n1, "net", VM), 1);
        KvAddr x = addr("10.88.0.5");
        assert_true(claimstore_addr_taken(fx->n1, "net", &x, "ctr/other/eth0"));
        CsRecord r;
        assert_int_equal(claimstore_get(fx->n1, "net", VM, &r), 1);
        assert_string_equal(r.holder, "");
        assert_string_equal(r.target, "node2");
        /* the target aborting then frees it entirely */
        assert_int_equal(claimstore_abort_migration(fx->n2, "net", VM), 1);
        assert_int_equal(claimstore_get(fx->n1, "net", VM, &r), 0);
        assert_false(claimstore_addr_taken(fx->n1, "net", &x, "ctr/other/eth0"));
}

static void test_detach_takeover(void **state) {
        Fx *fx = *state;
        KvErr e = {};
        KvPrefix a[1] = { pfx("10.88.0.5/24") };
        assert_int_equal(claimstore_take(fx->n1, "net", VM, a, 1, MAC1, &e), 0);
        assert_int_equal(claimstore_detach(fx->n2, "net", VM), 0); /* not the holder: no-op */
        assert_int_equal(claimstore_detach(fx->n1, "net", VM), 1);
        /* the VM restarts on node2: take-over of an idle claim */
        assert_int_equal(claimstore_take(fx->n2, "net", VM, a, 1, MAC1, &e), 0);
        CsRecord r;
        assert_int_equal(claimstore_get(fx->n1, "net", VM, &r), 1);
        assert_string_equal(r.holder, "node2");
        assert_true(r.attached);
}

static int count_cb(const CsRecord *r, void *ud) {
        (void) r;
        (*(int *) ud)++;
        return 0;
}

static void test_foreach_dump_and_corrupt(void **state) {
        Fx *fx = *state;
        KvErr e = {};
        KvPrefix a[1] = { pfx("10.88.0.5/24") }, b[1] = { pfx("10.88.0.6/24") };
        assert_int_equal(claimstore_take(fx->n1, "net", VM, a, 1, MAC1, &e), 0);
        assert_int_equal(claimstore_take(fx->n2, "net", "ctr/c1/eth0", b, 1, MAC2, &e), 0);
        char p[256];
        snprintf(p, sizeof p, "%s/claims/garbage.json", fx->dir);
        FILE *f = fopen(p, "w");
        assert_non_null(f);
        fputs("{not json", f);
        fclose(f);
        int n = 0;
        assert_int_equal(claimstore_foreach(fx->n1, count_cb, &n), 0);
        assert_int_equal(n, 2);
        json_t *d = claimstore_dump(fx->n2);
        assert_non_null(d);
        assert_string_equal(json_string_value(json_object_get(d, "node")), "node2");
        assert_int_equal(json_array_size(json_object_get(d, "claims")), 2);
        json_decref(d);
}

/* The IPAM free-address search skips what the store says is taken elsewhere. */
static bool taken_cb(const char *network, const KvAddr *a, const char *key, void *ud) {
        return claimstore_addr_taken(ud, network, a, key);
}

static void test_ipam_filter(void **state) {
        Fx *fx = *state;
        KvErr e = {};
        KvPrefix a[1] = { pfx("10.88.0.2/24") };
        assert_int_equal(claimstore_take(fx->n1, "net", "vm/ns/other/default", a, 1, MAC1, &e), 0);
        char sd[128];
        snprintf(sd, sizeof sd, "%s/state2", fx->dir);
        Ipam *ip = NULL;
        assert_int_equal(ipam_new(sd, false, &ip), 0);
        ipam_set_addr_filter(ip, taken_cb, fx->n2);
        json_t *cfgj = json_loads("{\"subnet\":\"10.88.0.0/24\"}", 0, NULL);
        IpamConfig cfg;
        assert_int_equal(ipam_config_parse(cfgj, "ipam", &cfg, &e), 0);
        json_decref(cfgj);
        assert_int_equal(ipam_pool_ensure(ip, "net", &cfg, &e), 0);
        IpamClaim *c;
        bool existing;
        IpamRequest req = {};
        assert_int_equal(ipam_claim(ip, "net", "ctr/c1/eth0", &req, &c, &existing, &e), 0);
        char buf[KV_ADDR_STRLEN];
        assert_string_equal(kv_addr_fmt(&c->addrs[0].addr, buf), "10.88.0.3"); /* .2 is node1's */
        /* asking for .2 explicitly fails, naming the reason */
        IpamRequest want = { .n_ips = 1 };
        want.ips[0] = addr("10.88.0.2");
        e = (KvErr){};
        assert_true(ipam_claim(ip, "net", "ctr/c2/eth0", &want, &c, &existing, &e) < 0);
        assert_int_equal(e.code, KV_ERR_ADDRESS_IN_USE);
        assert_non_null(strstr(e.msg, "another node"));
        ipam_free(ip);
}

static void test_announce_frames(void **state) {
        (void) state;
        uint8_t f[128];
        KvAddr a4 = addr("10.88.0.5");
        size_t n = announce_build_garp(f, sizeof f, MAC1, &a4.in);
        assert_int_equal(n, 60);
        static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
        assert_memory_equal(f, bcast, 6);
        assert_memory_equal(f + 6, MAC1, 6);
        assert_int_equal(f[12], 0x08);
        assert_int_equal(f[13], 0x06);
        assert_int_equal(f[14 + 7], 1); /* request */
        assert_memory_equal(f + 14 + 8, MAC1, 6);
        assert_memory_equal(f + 14 + 14, &a4.in, 4); /* sender = target = the address */
        assert_memory_equal(f + 14 + 24, &a4.in, 4);
        assert_int_equal(announce_build_garp(f, 59, MAC1, &a4.in), 0);

        KvAddr a6 = addr("fd00::5");
        n = announce_build_una(f, sizeof f, MAC1, &a6.in6);
        assert_int_equal(n, 14 + 40 + 32);
        assert_int_equal(f[0], 0x33);
        assert_int_equal(f[5], 0x01);
        assert_int_equal(f[14 + 6], 58);   /* ICMPv6 */
        assert_int_equal(f[14 + 7], 255);  /* hop limit */
        assert_int_equal(f[14 + 40], 136); /* NA */
        assert_int_equal(f[14 + 40 + 4], 0x20); /* override, not solicited */
        assert_memory_equal(f + 14 + 40 + 8, &a6.in6, 16);
        assert_memory_equal(f + 14 + 40 + 26, MAC1, 6);
        /* checksum verifies: the ones' complement sum over pseudo header + message is 0xffff */
        uint32_t s = 0;
        const uint8_t *ip = f + 14;
        for (int i = 8; i < 40; i += 2)
                s += (uint32_t) (ip[i] << 8 | ip[i + 1]);
        s += 32 + 58;
        for (int i = 0; i < 32; i += 2)
                s += (uint32_t) (ip[40 + i] << 8 | ip[40 + i + 1]);
        while (s >> 16)
                s = (s & 0xffff) + (s >> 16);
        assert_int_equal(s, 0xffff);
}

/* A lock held elsewhere (another netd that hangs, a stuck file system) is waited for timeoutMs at most: the
 * operation then fails with an error naming the lock, and works again once the lock is free. */
static void test_lock_timeout(void **state) {
        Fx *fx = *state;
        ClaimStoreConfig cfg = { .backend = CLAIMSTORE_DIR, .dir = fx->dir, .timeout_ms = 300 };
        ClaimStore *n3 = NULL;
        KvErr e = {};
        assert_int_equal(claimstore_new(&cfg, "node3", &n3, &e), 0);
        char path[128];
        snprintf(path, sizeof path, "%s/lock", fx->dir);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(flock(fd, LOCK_EX), 0);
        CsRecord r;
        assert_int_equal(claimstore_get(n3, "net", VM, &r), -ETIMEDOUT);
        KvPrefix a[1] = { pfx("10.88.0.9/24") };
        assert_int_equal(claimstore_take(n3, "net", VM, a, 1, MAC1, &e), -ETIMEDOUT);
        assert_int_equal(e.code, KV_ERR_TRY_AGAIN);
        assert_non_null(strstr(e.msg, "/lock' is held by another process for more than 300 ms"));
        assert_int_equal(flock(fd, LOCK_UN), 0);
        close(fd);
        e = (KvErr){};
        assert_int_equal(claimstore_take(n3, "net", VM, a, 1, MAC1, &e), 0);
        assert_int_equal(claimstore_get(fx->n1, "net", VM, &r), 1);
        assert_string_equal(r.holder, "node3");
        claimstore_free(n3);
}

/* netd's 'clusterClaims': the old string form, the object form per backend, errors naming key and value. */
static void test_config_from_json(void **state) {
        (void) state;
        static const struct {
                const char *json;
                int backend; /* < 0: an error containing err */
                const char *err;
        } cases[] = {
                { "\"/run/claims\"", CLAIMSTORE_DIR, NULL },
                { "{\"backend\": \"dir\", \"dir\": \"/run/claims\"}", CLAIMSTORE_DIR, NULL },
                { "{\"backend\": \"kube\", \"kubeconfig\": \"/etc/kc\", \"timeoutMs\": 5000}", CLAIMSTORE_KUBE, NULL },
                { "{\"backend\": \"kube\"}", CLAIMSTORE_KUBE, NULL },
                { "{\"backend\": \"dir\", \"dir\": \"/run/claims\", \"timeoutMs\": 2000}", CLAIMSTORE_DIR, NULL },
                { "{\"backend\": \"dir\", \"dir\": \"/x\", \"kubeconfig\": \"/etc/kc\"}", -1,
                  "'clusterClaims.kubeconfig' is for the kube backend" },
                { "\"relative\"", -1, "'clusterClaims' must be an absolute directory path, got 'relative'" },
                { "{\"backend\": \"etcd\"}", -1, "'clusterClaims.backend' must be dir or kube, got 'etcd'" },
                { "{\"backend\": \"kube\", \"kubeconfig\": \"kc\"}", -1, "'clusterClaims.kubeconfig' must be an absolute path, got 'kc'" },
                { "{\"backend\": \"kube\", \"dir\": \"/x\"}", -1, "'clusterClaims.dir' is for the dir backend" },
                { "{\"backend\": \"dir\"}", -1, "'clusterClaims.dir' must be an absolute directory path, got ''" },
                { "{\"backend\": \"kube\", \"timeoutMs\": 5}", -1, "timeoutMs" },
                { "{\"backend\": \"kube\", \"kubeConfig\": \"/x\"}", -1, "unknown key 'clusterClaims.kubeConfig'" },
                { "{\"dir\": \"/x\"}", -1, "backend" },
                { "42", -1, "'clusterClaims' must be a directory path or an object" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                json_t *v = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
                assert_non_null(v);
                ClaimStoreConfig c = {};
                KvErr e = {};
                int r = claimstore_config_from_json(v, &c, &e);
                if (cases[i].backend >= 0) {
                        assert_int_equal(r, 0);
                        assert_int_equal(c.backend, cases[i].backend);
                } else {
                        assert_true(r < 0);
                        if (!strstr(e.msg, cases[i].err))
                                fail_msg("%s: '%s' does not say '%s'", cases[i].json, e.msg, cases[i].err);
                }
                claimstore_config_done(&c);
                json_decref(v);
        }
        assert_string_equal(claimstore_backend_to_string(CLAIMSTORE_KUBE), "kube");
        assert_int_equal(claimstore_backend_from_string("dir"), CLAIMSTORE_DIR);
        assert_true(claimstore_backend_from_string("nfs") < 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_open_rejects_bad_node, setup, teardown),
                cmocka_unit_test_setup_teardown(test_take_and_conflict, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lock_timeout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mac_unique, setup, teardown),
                cmocka_unit_test_setup_teardown(test_take_changes_addresses, setup, teardown),
                cmocka_unit_test_setup_teardown(test_migration_finish, setup, teardown),
                cmocka_unit_test_setup_teardown(test_migration_abort, setup, teardown),
                cmocka_unit_test_setup_teardown(test_target_ready, setup, teardown),
                cmocka_unit_test_setup_teardown(test_source_released_mid_migration, setup, teardown),
                cmocka_unit_test_setup_teardown(test_detach_takeover, setup, teardown),
                cmocka_unit_test_setup_teardown(test_foreach_dump_and_corrupt, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ipam_filter, setup, teardown),
                cmocka_unit_test(test_announce_frames),
                cmocka_unit_test(test_config_from_json),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
