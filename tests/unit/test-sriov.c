/* SPDX-License-Identifier: Apache-2.0 */
/* netd SR-IOV: discovery, allocation, netlink VF config, vfio binding, persistence, on fake sysfs
 * trees built by tests/tools/mk-fake-sysfs.sh.
 *
 * No kernel is behind a fake tree, so writes to bind/unbind/drivers_probe would change nothing.
 * For the binding tests a "fake kernel" thread watches those files with inotify (IN_CLOSE_WRITE)
 * and does what the PCI core would: unbind removes the VF's `driver` link (and hides net/),
 * bind and drivers_probe (honouring driver_override, else the VF's default driver) create it.
 * netd/binding/sriov.c is unaware of this: it writes the files and waits for the `driver` link. */
/* Paths are built under a short mkdtemp() dir; truncation cannot happen in practice. */
#pragma GCC diagnostic ignored "-Wformat-truncation"

#include <fcntl.h>
#include <limits.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "tests/unit/tmpdir.h"

#include "common/fileio.h"
#include "common/json-util.h"
#include "netd/binding/sriov.h"

/* ---- fixture: a temp dir with sys/ and state/ ---- */

typedef struct Fx {
        char dir[PATH_MAX];
        char sys[PATH_MAX];
        char state[PATH_MAX];
        SriovNlSink *sink;
        /* fake kernel */
        pthread_t thread;
        bool running;
        int ino, stop[2];
        int wd_probe;
        int wds[16];
        char wd_drv[16][32];
        bool wd_bind[16];
        size_t n_wds;
} Fx;

static void mkfake(Fx *fx, const char *specs) {
        const char *src = getenv("KVNET_SRCDIR");
        char cmd[PATH_MAX * 2];
        snprintf(cmd, sizeof cmd, "%s/tests/tools/mk-fake-sysfs.sh '%s' %s", src ? src : ".", fx->sys, specs);
        int r = system(cmd);
        if (r != 0)
                fail_msg("'%s' failed: %d", cmd, r);
}

static int setup(void **state) {
        Fx *fx = calloc(1, sizeof *fx);
        assert_non_null(fx);
        strcpy(fx->dir, "/tmp/kvnet-sriov-XXXXXX");
        assert_non_null(mkdtemp(fx->dir));
        snprintf(fx->sys, sizeof fx->sys, "%s/sys", fx->dir);
        snprintf(fx->state, sizeof fx->state, "%s/state", fx->dir);
        assert_int_equal(sriov_nl_sink_new(&fx->sink), 0);
        fx->ino = fx->stop[0] = fx->stop[1] = -1;
        *state = fx;
        return 0;
}

static void fake_kernel_stop(Fx *fx);

static int teardown(void **state) {
        Fx *fx = *state;
        fake_kernel_stop(fx);
        tmpdir_remove(fx->dir);
        sriov_nl_sink_free(fx->sink);
        free(fx);
        return 0;
}

static void pf_path(Fx *fx, char *buf, size_t n, const char *pci, const char *rel) {
        snprintf(buf, n, "%s/devices/pci0000:00/%s%s%s", fx->sys, pci, rel ? "/" : "", rel ? rel : "");
}

static char *slurp(const char *path) {
        char *text = NULL;
        size_t len;
        if (read_file_max(path, 65536, &text, &len) < 0)
                return NULL;
        return text;
}

static void assert_file_eq(const char *path, const char *want) {
        _cleanup_free_ char *t = slurp(path);
        if (!t)
                fail_msg("cannot read %s", path);
        if (!streq(t, want))
                fail_msg("%s: got '%s', want '%s'", path, t, want);
}

static void driver_of(Fx *fx, const char *pci, char *buf, size_t n) {
        char path[PATH_MAX], target[PATH_MAX];
        pf_path(fx, path, sizeof path, pci, "driver");
        ssize_t l = readlink(path, target, sizeof target - 1);
        if (l < 0) {
                buf[0] = '\0';
                return;
        }
        target[l] = '\0';
        snprintf(buf, n, "%s", strrchr(target, '/') + 1);
}

static bool exists(const char *path) {
        return access(path, F_OK) == 0;
}

/* ---- the fake kernel ---- */

static void trim(char *s) {
        size_t l = strlen(s);
        while (l && (s[l - 1] == '\n' || s[l - 1] == ' '))
                s[--l] = '\0';
}

static void fk_bind(Fx *fx, const char *pci, const char *drv) {
        char link[PATH_MAX], target[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
        pf_path(fx, link, sizeof link, pci, "driver");
        snprintf(target, sizeof target, "../../../bus/pci/drivers/%s", drv);
        (void) unlink(link);
        if (symlink(target, link) < 0)
                return;
        if (!streq(drv, "vfio-pci")) {
                pf_path(fx, a, sizeof a, pci, ".net-hidden");
                pf_path(fx, b, sizeof b, pci, "net");
                (void) rename(a, b);
        }
}

static void fk_unbind(Fx *fx, const char *pci) {
        char link[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
        pf_path(fx, link, sizeof link, pci, "driver");
        (void) unlink(link);
        pf_path(fx, a, sizeof a, pci, "net");
        pf_path(fx, b, sizeof b, pci, ".net-hidden");
        (void) rename(a, b);
}

static void fk_handle(Fx *fx, int wd) {
        char path[PATH_MAX], pci[64] = "";
        bool probe = wd == fx->wd_probe;
        size_t i = 0;
        if (probe)
                snprintf(path, sizeof path, "%s/bus/pci/drivers_probe", fx->sys);
        else {
                for (i = 0; i < fx->n_wds && fx->wds[i] != wd; i++)
                        ;
                if (i == fx->n_wds)
                        return;
                snprintf(path, sizeof path, "%s/bus/pci/drivers/%s/%s", fx->sys, fx->wd_drv[i],
                         fx->wd_bind[i] ? "bind" : "unbind");
        }
        _cleanup_free_ char *t = slurp(path);
        if (!t)
                return;
        snprintf(pci, sizeof pci, "%s", t);
        trim(pci);
        if (!pci[0])
                return;
        if (!probe) {
                if (fx->wd_bind[i])
                        fk_bind(fx, pci, fx->wd_drv[i]);
                else
                        fk_unbind(fx, pci);
                return;
        }
        char p[PATH_MAX], cur[64];
        driver_of(fx, pci, cur, sizeof cur);
        if (cur[0])
                return; /* already bound: probing does nothing */
        pf_path(fx, p, sizeof p, pci, "driver_override");
        _cleanup_free_ char *ovr = slurp(p);
        if (ovr) {
                trim(ovr);
                if (ovr[0] && !streq(ovr, "(null)")) {
                        fk_bind(fx, pci, ovr);
                        return;
                }
        }
        pf_path(fx, p, sizeof p, pci, ".default_driver");
        _cleanup_free_ char *def = slurp(p);
        if (def) {
                trim(def);
                fk_bind(fx, pci, def);
        }
}

static void *fk_main(void *arg) {
        Fx *fx = arg;
        for (;;) {
                struct pollfd pfd[2] = { { .fd = fx->ino, .events = POLLIN }, { .fd = fx->stop[0], .events = POLLIN } };
                if (poll(pfd, 2, -1) < 0)
                        continue;
                if (pfd[1].revents)
                        return NULL;
                char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
                ssize_t n = read(fx->ino, buf, sizeof buf);
                for (ssize_t off = 0; off < n;) {
                        const struct inotify_event *ev = (const void *) (buf + off);
                        if (ev->mask & IN_CLOSE_WRITE)
                                fk_handle(fx, ev->wd);
                        off += (ssize_t) (sizeof *ev + ev->len);
                }
        }
}

static void fk_watch(Fx *fx, const char *drv, bool bind) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/bus/pci/drivers/%s/%s", fx->sys, drv, bind ? "bind" : "unbind");
        int wd = inotify_add_watch(fx->ino, path, IN_CLOSE_WRITE);
        assert_true(wd >= 0);
        assert_true(fx->n_wds < ELEMENTSOF(fx->wds));
        fx->wds[fx->n_wds] = wd;
        snprintf(fx->wd_drv[fx->n_wds], sizeof fx->wd_drv[0], "%s", drv);
        fx->wd_bind[fx->n_wds++] = bind;
}

static void fake_kernel_start(Fx *fx) {
        fx->ino = inotify_init1(IN_CLOEXEC);
        assert_true(fx->ino >= 0);
        assert_int_equal(pipe2(fx->stop, O_CLOEXEC), 0);
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/bus/pci/drivers_probe", fx->sys);
        fx->wd_probe = inotify_add_watch(fx->ino, path, IN_CLOSE_WRITE);
        assert_true(fx->wd_probe >= 0);
        const char *drivers[] = { "vfio-pci", "iavf", "ixgbevf" };
        for (size_t i = 0; i < ELEMENTSOF(drivers); i++) {
                snprintf(path, sizeof path, "%s/bus/pci/drivers/%s", fx->sys, drivers[i]);
                if (!exists(path))
                        continue;
                fk_watch(fx, drivers[i], true);
                fk_watch(fx, drivers[i], false);
        }
        assert_int_equal(pthread_create(&fx->thread, NULL, fk_main, fx), 0);
        fx->running = true;
}

static void fake_kernel_stop(Fx *fx) {
        if (fx->running) {
                assert_int_equal(write(fx->stop[1], "x", 1), 1);
                pthread_join(fx->thread, NULL);
                fx->running = false;
        }
        closep(&fx->ino);
        closep(&fx->stop[0]);
        closep(&fx->stop[1]);
}

/* ---- helpers ---- */

static SriovPoolConfig pool(const char *res, bool vfio, const char *pf0, const char *pf1) {
        SriovPoolConfig p = { .bind_vfio = vfio };
        snprintf(p.resource, sizeof p.resource, "%s", res);
        snprintf(p.pfs[p.n_pfs++], 16, "%s", pf0);
        if (pf1)
                snprintf(p.pfs[p.n_pfs++], 16, "%s", pf1);
        return p;
}

static Sriov *mk(Fx *fx, const SriovPoolConfig *pools, size_t n) {
        Sriov *s = NULL;
        KvErr e = {};
        int r = sriov_new(fx->sys, fx->state, pools, n, &fx->sink->ops, &s, &e);
        if (r < 0)
                fail_msg("sriov_new: %s", e.msg);
        r = sriov_load(s, &e);
        if (r < 0)
                fail_msg("sriov_load: %s", e.msg);
        return s;
}

#define RES "intel.com/sriov_netdevice"

static SriovAllocRequest req(const char *owner, uint8_t last) {
        return (SriovAllocRequest) { .resource = RES, .owner = owner, .mac = { 0x02, 0x00, 0x00, 0x00, 0x00, last },
                                     .vlan = 0, .spoofchk = true };
}

static SriovVf *alloc_ok(Sriov *s, const SriovAllocRequest *r) {
        SriovVf *vf = NULL;
        KvErr e = {};
        if (sriov_alloc(s, r, &vf, &e) < 0)
                fail_msg("alloc '%s': %s (%s)", r->owner, e.msg, e.details);
        assert_non_null(vf);
        return vf;
}

static void assert_msg_has(const KvErr *e, const char *frag) {
        if (!strstr(e->msg, frag))
                fail_msg("message '%s' lacks '%s'", e->msg, frag);
}

static void state_file(Fx *fx, const char *pci, char *buf, size_t n) {
        snprintf(buf, n, "%s/sriov/%s.json", fx->state, pci);
}

/* ---- tests ---- */

static void test_discovery(void **state) {
        Fx *fx = *state;
        mkfake(fx, "ens1f0,0000:3b:00.0,8,3,iavf,10 ens1f1,0000:3b:00.1,4,2,ixgbevf,11");
        SriovPoolConfig p = pool(RES, true, "ens1f0", "ens1f1");
        _cleanup_sriov_ Sriov *s = mk(fx, &p, 1);
        _cleanup_json_ json_t *d = sriov_dump(s);
        assert_non_null(d);
        json_t *pl = json_array_get(json_object_get(d, "pools"), 0);
        assert_int_equal(json_integer_value(json_object_get(pl, "total")), 5);
        assert_int_equal(json_integer_value(json_object_get(pl, "free")), 5);
        assert_int_equal(json_integer_value(json_object_get(pl, "allocated")), 0);
        json_t *pf0 = json_array_get(json_object_get(pl, "pfs"), 0);
        assert_int_equal(json_integer_value(json_object_get(pf0, "totalvfs")), 8);
        assert_int_equal(json_integer_value(json_object_get(pf0, "numvfs")), 3);
        assert_int_equal(json_integer_value(json_object_get(pf0, "ifindex")), 10);
        assert_string_equal(json_string_value(json_object_get(pf0, "pci")), "0000:3b:00.0");
        json_t *vfs = json_object_get(d, "vfs");
        assert_int_equal(json_array_size(vfs), 5);
        const char *want[][4] = { { "0000:3b:02.0", "ens1f0", "iavf", "ens1f0v0" },
                                  { "0000:3b:02.1", "ens1f0", "iavf", "ens1f0v1" },
                                  { "0000:3b:02.2", "ens1f0", "iavf", "ens1f0v2" },
                                  { "0000:3b:0a.0", "ens1f1", "ixgbevf", "ens1f1v0" },
                                  { "0000:3b:0a.1", "ens1f1", "ixgbevf", "ens1f1v1" } };
        for (size_t i = 0; i < 5; i++) {
                json_t *v = json_array_get(vfs, i);
                assert_string_equal(json_string_value(json_object_get(v, "pci")), want[i][0]);
                assert_string_equal(json_string_value(json_object_get(v, "pf")), want[i][1]);
                assert_string_equal(json_string_value(json_object_get(v, "driver")), want[i][2]);
                assert_string_equal(json_string_value(json_object_get(v, "netdev")), want[i][3]);
                assert_int_equal(json_integer_value(json_object_get(v, "index")), i < 3 ? i : i - 3);
        }
}

static void test_alloc_order_exhaustion(void **state) {
        Fx *fx = *state;
        mkfake(fx, "ens1f0,0000:3b:00.0,8,2,iavf,10 ens1f1,0000:3b:00.1,4,1,iavf,11");
        SriovPoolConfig p = pool(RES, false, "ens1f0", "ens1f1");
        _cleanup_sriov_ Sriov *s = mk(fx, &p, 1);
        SriovAllocRequest r1 = req("default/vm1/net1", 1), r2 = req("default/vm2/net1", 2),
                          r3 = req("default/vm3/net1", 3), r4 = req("default/vm4/net1", 4);
        SriovVf *a = alloc_ok(s, &r1), *b = alloc_ok(s, &r2), *c = alloc_ok(s, &r3);
        assert_string_equal(a->pci, "0000:3b:02.0");
        assert_string_equal(b->pci, "0000:3b:02.1");
        assert_string_equal(c->pci, "0000:3b:0a.0");
        assert_string_equal(c->pf, "ens1f1");
        assert_int_equal(c->vf_index, 0);
        assert_string_equal(a->netdev, "ens1f0v0"); /* bindVfio false: stays on iavf */
        assert_string_equal(a->orig_driver, "iavf");
        /* The same owner again: the same VF, nothing reconfigured. */
        size_t n = fx->sink->n_records;
        assert_ptr_equal(alloc_ok(s, &r1), a);
        assert_int_equal(fx->sink->n_records, n);

        SriovVf *none = NULL;
        KvErr e = {};
        assert_int_equal(sriov_alloc(s, &r4, &none, &e), -ENOSPC);
        assert_null(none);
        assert_int_equal(e.code, KV_ERR_IPAM_EXHAUSTED);
        assert_msg_has(&e, "'" RES "' is exhausted");
        assert_msg_has(&e, "3 VFs on 2 of 2 PFs, 3 allocated, 0 unusable");

        /* Release frees exactly that VF, which is handed out next. */
        assert_int_equal(sriov_release(s, "default/vm2/net1"), 0);
        assert_null(sriov_find(s, "default/vm2/net1"));
        assert_int_equal(sriov_release(s, "default/vm2/net1"), 0); /* unknown owner */
        assert_string_equal(alloc_ok(s, &r4)->pci, "0000:3b:02.1");
}

static void test_unknown_resource(void **state) {
        Fx *fx = *state;
        mkfake(fx, "ens1f0,0000:3b:00.0,8,2,iavf,10 ens2f0,0000:5e:00.0,8,2,iavf,12");
        SriovPoolConfig p[2] = { pool(RES, false, "ens1f0", NULL), pool("mellanox.com/cx5", false, "ens2f0", NULL) };
        _cleanup_sriov_ Sriov *s = mk(fx, p, 2);
        SriovAllocRequest r = req("o", 1);
        r.resource = "intel.com/nope";
        SriovVf *vf = NULL;
        KvErr e = {};
        assert_true(sriov_alloc(s, &r, &vf, &e) < 0);
        assert_int_equal(e.code, KV_ERR_INVALID_CONFIG);
        assert_msg_has(&e, "unknown resourceName 'intel.com/nope'");
        assert_msg_has(&e, "'" RES "', 'mellanox.com/cx5'");
        assert_int_equal(fx->sink->n_records, 0);

        /* Bad requests are rejected before anything happens. */
        r = req("o", 1);
        r.vlan = 4095;
        kverr_clear(&e);
        assert_true(sriov_alloc(s, &r, &vf, &e) < 0);
        assert_msg_has(&e, "'vlan' must be 0..4094, got 4095");
        r = req("o", 1);
        r.mac[0] = 0x01;
        kverr_clear(&e);
        assert_true(sriov_alloc(s, &r, &vf, &e) < 0);
        assert_msg_has(&e, "'mac' must be a unicast address, got 01:00:00:00:00:01");
        /* The second pool works independently. */
        r = req("o", 1);
        r.resource = "mellanox.com/cx5";
        assert_string_equal(alloc_ok(s, &r)->pci, "0000:5e:02.0");
}

static void test_netlink_sink(void **state) {
        Fx *fx = *state;
        mkfake(fx, "ens1f0,0000:3b:00.0,8,1,iavf,10 ens1f1,0000:3b:00.1,8,4,iavf,17");
        SriovPoolConfig p = pool(RES, false, "ens1f0", "ens1f1");
        _cleanup_sriov_ Sriov *s = mk(fx, &p, 1);
        SriovAllocRequest r1 = req("a", 0x11);
        alloc_ok(s, &r1);
        SriovAllocRequest r2 = { .resource = RES, .owner = "b", .mac = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef },
                                 .vlan = 42, .spoofchk = false, .trust = true };
        SriovVf *vf = alloc_ok(s, &r2);
        assert_string_equal(vf->pf, "ens1f1");
        assert_int_equal(vf->vf_index, 0);
        assert_int_equal(fx->sink->n_records, 2);
        const SriovNlRecord *rec = &fx->sink->records[1];
        assert_string_equal(rec->config.pf, "ens1f1");
        assert_int_equal(rec->config.pf_ifindex, 17);
        assert_int_equal(rec->config.vf, 0);
        assert_memory_equal(rec->config.mac, r2.mac, 6);
        assert_int_equal(rec->config.vlan, 42);
        assert_false(rec->config.spoofchk);
        assert_true(rec->config.trust);
        /* The recorded bytes are the real message and say the same. */
        SriovVfConfig back;
        assert_int_equal(sriov_nl_parse_vf_config((const struct nlmsghdr *) rec->msg, &back), 0);
        assert_int_equal(back.pf_ifindex, 17);
        assert_int_equal(back.vf, 0);
        assert_memory_equal(back.mac, r2.mac, 6);
        assert_int_equal(back.vlan, 42);
        assert_false(back.spoofchk);
        assert_true(back.trust);
        assert_int_equal(fx->sink->records[0].config.pf_ifindex, 10);
        assert_true(fx->sink->records[0].config.spoofchk);
        assert_false(fx->sink->records[0].config.trust);

        /* Release clears MAC and VLAN on the same PF/VF. */
        assert_int_equal(sriov_release(s, "b"), 0);
        assert_int_equal(fx->sink->n_records, 3);
        rec = &fx->sink->records[2];
        assert_int_equal(rec->config.pf_ifindex, 17);
        assert_int_equal(rec->config.vf, 0);
        assert_memory_equal(rec->config.mac, (uint8_t[6]) {}, 6);
        assert_int_equal(rec->config.vlan, 0);
        assert_true(rec->config.spoofchk);
        assert_false(rec->config.trust);
}

/* RTM_SETLINK for ifindex 10, VF 3, mac 52:54:00:12:34:56, vlan 100, spoofchk on, trust off. */
static const uint8_t golden_vf_config[] = {
        /* nlmsghdr: len 120, RTM_SETLINK (19), NLM_F_REQUEST|NLM_F_ACK, seq 0x01020304, pid 0 */
        0x78, 0x00, 0x00, 0x00, 0x13, 0x00, 0x05, 0x00, 0x04, 0x03, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00,
        /* ifinfomsg: AF_UNSPEC, type 0, index 10, flags 0, change 0 */
        0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        /* IFLA_VFINFO_LIST (22) | NLA_F_NESTED, len 88 */
        0x58, 0x00, 0x16, 0x80,
        /* IFLA_VF_INFO (1) | NLA_F_NESTED, len 84 */
        0x54, 0x00, 0x01, 0x80,
        /* IFLA_VF_MAC (1), len 40: vf 3, mac[32] */
        0x28, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        /* IFLA_VF_VLAN (2), len 16: vf 3, vlan 100, qos 0 */
        0x10, 0x00, 0x02, 0x00, 0x03, 0x00, 0x00, 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        /* IFLA_VF_SPOOFCHK (4), len 12: vf 3, setting 1 */
        0x0c, 0x00, 0x04, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        /* IFLA_VF_TRUST (9), len 12: vf 3, setting 0 */
        0x0c, 0x00, 0x09, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

/* An attribute reader of its own (only linux/netlink.h's NLA_* macros), independent of the code under test:
 * the attribute of `type` among the attributes in [data, data + len), or NULL. */
static const struct nlattr *attr_find(const void *data, size_t len, uint16_t type) {
        const uint8_t *p = data, *end = p + len;
        while (p + NLA_HDRLEN <= end) {
                const struct nlattr *a = (const struct nlattr *) p;
                if (a->nla_len < NLA_HDRLEN || a->nla_len > end - p)
                        return NULL;
                if ((a->nla_type & NLA_TYPE_MASK) == type)
                        return a;
                p += NLA_ALIGN(a->nla_len);
        }
        return NULL;
}

/* The payload of attribute `type` among those of nest (at least `size` bytes of it), or fails the test. */
static const void *attr_payload(const struct nlattr *nest, uint16_t type, size_t size) {
        const struct nlattr *a = attr_find((const uint8_t *) nest + NLA_HDRLEN, nest->nla_len - NLA_HDRLEN, type);
        assert_non_null(a);
        assert_true((size_t) (a->nla_len - NLA_HDRLEN) >= size);
        return (const uint8_t *) a + NLA_HDRLEN;
}

static void test_nl_golden(void **state) {
        (void) state;
        SriovVfConfig c = { .pf = "ens1f0", .pf_ifindex = 10, .vf = 3, .mac = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 },
                            .vlan = 100, .spoofchk = true, .trust = false };
        uint8_t buf[SRIOV_NL_MSG_MAX];
        int len = sriov_nl_build_vf_config(&c, 0x01020304, buf, sizeof buf);
        assert_int_equal(len, sizeof golden_vf_config);
        assert_memory_equal(buf, golden_vf_config, sizeof golden_vf_config);

        /* Parsed back independently, with the attribute reader above. */
        struct nlmsghdr *nlh = (struct nlmsghdr *) buf;
        size_t attrs_off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct ifinfomsg));
        assert_true(nlh->nlmsg_len >= attrs_off);
        const struct nlattr *list = attr_find(buf + attrs_off, nlh->nlmsg_len - attrs_off, IFLA_VFINFO_LIST);
        assert_non_null(list);
        const struct nlattr *info =
                attr_find((const uint8_t *) list + NLA_HDRLEN, list->nla_len - NLA_HDRLEN, IFLA_VF_INFO);
        assert_non_null(info);
        const struct ifla_vf_mac *m = attr_payload(info, IFLA_VF_MAC, sizeof *m);
        assert_int_equal(m->vf, 3);
        assert_memory_equal(m->mac, c.mac, 6);
        const struct ifla_vf_vlan *v = attr_payload(info, IFLA_VF_VLAN, sizeof *v);
        assert_int_equal(v->vf, 3);
        assert_int_equal(v->vlan, 100);
        assert_int_equal(((const struct ifla_vf_spoofchk *) attr_payload(info, IFLA_VF_SPOOFCHK,
                                                                          sizeof(struct ifla_vf_spoofchk)))->setting, 1);
        assert_int_equal(((const struct ifla_vf_trust *) attr_payload(info, IFLA_VF_TRUST,
                                                                       sizeof(struct ifla_vf_trust)))->setting, 0);
        /* And with our own (libmnl) parser. */
        SriovVfConfig back;
        assert_int_equal(sriov_nl_parse_vf_config(nlh, &back), 0);
        assert_int_equal(back.pf_ifindex, 10);
        assert_int_equal(back.vf, 3);
        assert_int_equal(back.vlan, 100);
        /* A truncated message is refused. */
        nlh->nlmsg_len = 40;
        assert_int_equal(sriov_nl_parse_vf_config(nlh, &back), -EBADMSG);
        c.vlan = 4095;
        assert_int_equal(sriov_nl_build_vf_config(&c, 1, buf, sizeof buf), -EINVAL);
}

static void test_vfio_bind_release(void **state) {
        Fx *fx = *state;
        mkfake(fx, "ens1f0,0000:3b:00.0,8,2,iavf,10");
        fake_kernel_start(fx);
        SriovPoolConfig p = pool(RES, true, "ens1f0", NULL);
        _cleanup_sriov_ Sriov *s = mk(fx, &p, 1);
        SriovAllocRequest r = req("ns/vm/net1", 7);
        r.vlan = 300;
        SriovVf *vf = alloc_ok(s, &r);
        char path[PATH_MAX], drv[64];
        assert_string_equal(vf->pci, "0000:3b:02.0");
        assert_string_equal(vf->netdev, "");
        assert_string_equal(vf->orig_driver, "iavf");
        /* The writes a kernel would see. */
        pf_path(fx, path, sizeof path, "0000:3b:02.0", "driver_override");
        assert_file_eq(path, "vfio-pci");
        snprintf(path, sizeof path, "%s/bus/pci/drivers/iavf/unbind", fx->sys);
        assert_file_eq(path, "0000:3b:02.0");
        snprintf(path, sizeof path, "%s/bus/pci/drivers_probe", fx->sys);
        assert_file_eq(path, "0000:3b:02.0");
        driver_of(fx, "0000:3b:02.0", drv, sizeof drv);
        assert_string_equal(drv, "vfio-pci");
        pf_path(fx, path, sizeof path, "0000:3b:02.0", "net");
        assert_false(exists(path));
        /* The other VF is untouched. */
        driver_of(fx, "0000:3b:02.1", drv, sizeof drv);
        assert_string_equal(drv, "iavf");
        /* Persisted before returning, with the final state. */
        state_file(fx, "0000:3b:02.0", path, sizeof path);
        _cleanup_free_ char *st = slurp(path);
        assert_non_null(st);
        assert_non_null(strstr(st, "\"owner\":\"ns/vm/net1\""));
        assert_non_null(strstr(st, "\"origDriver\":\"iavf\""));
        assert_non_null(strstr(st, "\"vlan\":300"));
        /* The dump shows the claim on vfio-pci. */
        _cleanup_json_ json_t *d = sriov_dump(s);
        json_t *v0 = json_array_get(json_object_get(d, "vfs"), 0);
        assert_string_equal(json_string_value(json_object_get(v0, "driver")), "vfio-pci");
        assert_string_equal(json_string_value(json_object_get(v0, "owner")), "ns/vm/net1");
        json_t *pl = json_array_get(json_object_get(d, "pools"), 0);
        assert_int_equal(json_integer_value(json_object_get(pl, "allocated")), 1);
        assert_int_equal(json_integer_value(json_object_get(pl, "free")), 1);

        /* Release: original driver back, netdev back, MAC/VLAN cleared, state gone. */
        assert_int_equal(sriov_release(s, "ns/vm/net1"), 0);
        driver_of(fx, "0000:3b:02.0", drv, sizeof drv);
        assert_string_equal(drv, "iavf");
        pf_path(fx, path, sizeof path, "0000:3b:02.0", "driver_override");
        assert_file_eq(path, "\n");
        snprintf(path, sizeof path, "%s/bus/pci/drivers/vfio-pci/unbind", fx->sys);
        assert_file_eq(path, "0000:3b:02.0");
        snprintf(path, sizeof path, "%s/bus/pci/drivers/iavf/bind", fx->sys);
        assert_file_eq(path, "0000:3b:02.0");
        pf_path(fx, path, sizeof path, "0000:3b:02.0", "net/ens1f0v0");
        assert_true(exists(path));
        const SriovNlRecord *last = &fx->sink->records[fx->sink->n_records - 1];
        assert_memory_equal(last->config.mac, (uint8_t[6]) {}, 6);
        assert_int_equal(last->config.vlan, 0);
        state_file(fx, "0000:3b:02.0", path, sizeof path);
        assert_false(exists(path));
        assert_null(sriov_find(s, "ns/vm/net1"));
}

static void test_vfio_bind_timeout_rolls_back(void **state) {
        Fx *fx = *state;
        /* VFs start unbound and no fake kernel runs: drivers_probe changes nothing. */
        mkfake(fx, "ens1f0,0000:3b:00.0,8,1,-,10");
        SriovPoolConfig p = pool(RES, true, "ens1f0", NULL);
        _cleanup_sriov_ Sriov *s = mk(fx, &p, 1);
        SriovAllocRequest r = req("x", 1);
        SriovVf *vf = NULL;
        KvErr e = {};
        assert_int_equal(sriov_alloc(s, &r, &vf, &e), -ETIMEDOUT);
        assert_int_equal(e.code, KV_ERR_INTERNAL);
        assert_msg_has(&e, "VF 0000:3b:02.0 did not bind to vfio-pci (driver is '')");
        char path[PATH_MAX];
        state_file(fx, "0000:3b:02.0", path, sizeof path);
        assert_false(exists(path));
        assert_null(sriov_find(s, "x"));
        /* configure, then the undo clearing MAC/VLAN */
        assert_int_equal(fx->sink->n_records, 2);
        assert_memory_equal(fx->sink->records[1].config.mac, (uint8_t[6]) {}, 6);
}

static void test_netlink_failure_rolls_back(void **state) {
        Fx *fx = *state;
        mkfake(fx, "ens1f0,0000:3b:00.0,8,1,iavf,10");
        SriovPoolConfig p = pool(RES, false, "ens1f0", NULL);
        _cleanup_sriov_ Sriov *s = mk(fx, &p, 1);
        fx->sink->fail_with = -EOPNOTSUPP;
        SriovAllocRequest r = req("x", 1);
        SriovVf *vf = NULL;
        KvErr e = {};
        assert_int_equal(sriov_alloc(s, &r, &vf, &e), -EOPNOTSUPP);
        assert_msg_has(&e, "configure VF 0 of PF 'ens1f0'");
        char path[PATH_MAX];
        state_file(fx, "0000:3b:02.0", path, sizeof path);
        assert_false(exists(path));
        fx->sink->fail_with = 0;
        assert_string_equal(alloc_ok(s, &r)->pci, "0000:3b:02.0");
}

static void test_persistence(void **state) {
        Fx *fx = *state;
        mkfake(fx, "ens1f0,0000:3b:00.0,8,3,iavf,10");
        fake_kernel_start(fx);
        SriovPoolConfig p = pool(RES, true, "ens1f0", NULL);
        SriovAllocRequest r1 = req("vm1", 1), r2 = req("vm2", 2), r3 = req("vm3", 3), r4 = req("vm4", 4);
        r2.vlan = 12;
        r2.trust = true;
        {
                _cleanup_sriov_ Sriov *s = mk(fx, &p, 1);
                alloc_ok(s, &r1);
                alloc_ok(s, &r2);
        }
        _cleanup_sriov_ Sriov *s = mk(fx, &p, 1);
        SriovVf *a = sriov_find(s, "vm1"), *b = sriov_find(s, "vm2");
        assert_non_null(a);
        assert_non_null(b);
        assert_string_equal(a->pci, "0000:3b:02.0");
        assert_string_equal(b->pci, "0000:3b:02.1");
        assert_int_equal(b->vlan, 12);
        assert_true(b->trust);
        assert_memory_equal(b->mac, r2.mac, 6);
        assert_string_equal(b->orig_driver, "iavf");
        assert_false(b->vanished);
        /* Not handed out again. */
        assert_string_equal(alloc_ok(s, &r3)->pci, "0000:3b:02.2");
        SriovVf *vf = NULL;
        KvErr e = {};
        assert_int_equal(sriov_alloc(s, &r4, &vf, &e), -ENOSPC);
        /* Release after restart restores the original driver recorded before the restart. */
        assert_int_equal(sriov_release(s, "vm1"), 0);
        char drv[64];
        driver_of(fx, "0000:3b:02.0", drv, sizeof drv);
        assert_string_equal(drv, "iavf");
}

static void test_vanished_vf(void **state) {
        Fx *fx = *state;
        mkfake(fx, "ens1f0,0000:3b:00.0,8,2,iavf,10");
        SriovPoolConfig p = pool(RES, false, "ens1f0", NULL);
        {
                _cleanup_sriov_ Sriov *s = mk(fx, &p, 1);
                SriovAllocRequest r0 = req("keep", 1), r1 = req("gone", 2);
                alloc_ok(s, &r0);
                alloc_ok(s, &r1);
                assert_int_equal(sriov_release(s, "keep"), 0);
        }
        /* numvfs shrinks to 1: virtfn1 and its device disappear. */
        char path[PATH_MAX];
        pf_path(fx, path, sizeof path, "0000:3b:00.0", "sriov_numvfs");
        assert_int_equal(write_file_atomic(path, "1\n", 2, false), 0);
        pf_path(fx, path, sizeof path, "0000:3b:00.0", "virtfn1");
        assert_int_equal(unlink(path), 0);

        Sriov *s = NULL;
        KvErr e = {};
        assert_int_equal(sriov_new(fx->sys, fx->state, &p, 1, &fx->sink->ops, &s, &e), 0);
        assert_int_equal(sriov_load(s, &e), 1);
        assert_int_equal(e.code, KV_ERR_NOT_AVAILABLE);
        assert_msg_has(&e, "VF 0000:3b:02.1 (PF 'ens1f0' vf 1) of 'gone' vanished");
        SriovVf *g = sriov_find(s, "gone");
        assert_non_null(g);
        assert_true(g->vanished);
        _cleanup_json_ json_t *d = sriov_dump(s);
        json_t *vfs = json_object_get(d, "vfs");
        assert_int_equal(json_array_size(vfs), 2);
        assert_true(json_is_true(json_object_get(json_array_get(vfs, 1), "vanished")));
        /* Only VF 0 can be handed out. */
        SriovAllocRequest r = req("new", 3);
        assert_string_equal(alloc_ok(s, &r)->pci, "0000:3b:02.0");
        SriovAllocRequest r2 = req("new2", 4);
        SriovVf *vf = NULL;
        kverr_clear(&e);
        assert_int_equal(sriov_alloc(s, &r2, &vf, &e), -ENOSPC);
        /* Releasing the vanished claim succeeds and drops its state. */
        size_t n = fx->sink->n_records;
        assert_int_equal(sriov_release(s, "gone"), 0);
        assert_int_equal(fx->sink->n_records, n);
        state_file(fx, "0000:3b:02.1", path, sizeof path);
        assert_false(exists(path));
        sriov_free(s);
}

static void test_pf_without_sriov(void **state) {
        Fx *fx = *state;
        mkfake(fx, "eth9,0000:00:03.0,-,0,-,5");
        SriovPoolConfig p = pool(RES, true, "eth9", NULL);
        _cleanup_sriov_ Sriov *s = mk(fx, &p, 1);
        SriovAllocRequest r = req("x", 1);
        SriovVf *vf = NULL;
        KvErr e = {};
        assert_int_equal(sriov_alloc(s, &r, &vf, &e), -EOPNOTSUPP);
        assert_int_equal(e.code, KV_ERR_INVALID_ENV);
        assert_msg_has(&e, "PF 'eth9' (0000:00:03.0) has no SR-IOV capability: no sriov_totalvfs");

        SriovPoolConfig q = pool(RES, true, "nosuch0", NULL);
        _cleanup_sriov_ Sriov *s2 = mk(fx, &q, 1);
        kverr_clear(&e);
        assert_true(sriov_alloc(s2, &r, &vf, &e) < 0);
        assert_int_equal(e.code, KV_ERR_INVALID_ENV);
        assert_msg_has(&e, "PF 'nosuch0' not found");
}

static void parse_bad(const char *text, const char *frag) {
        json_error_t jerr;
        json_t *a = json_loads(text, JSON_DECODE_ANY, &jerr);
        assert_non_null(a);
        SriovPoolConfig *pools = NULL;
        size_t n = 0;
        KvErr e = {};
        int r = sriov_pools_parse(a, &pools, &n, &e);
        json_decref(a);
        if (r >= 0)
                fail_msg("'%s' parsed", text);
        assert_null(pools);
        assert_int_equal(e.code, KV_ERR_INVALID_CONFIG);
        if (!strstr(e.msg, frag))
                fail_msg("'%s': message '%s' lacks '%s'", text, e.msg, frag);
}

static void test_config_parse(void **state) {
        (void) state;
        json_error_t jerr;
        json_t *a = json_loads("[{\"resourceName\":\"intel.com/a\",\"pfs\":[\"ens1f0\",\"ens1f1\"]},"
                               "{\"resourceName\":\"intel.com/b\",\"pfs\":[\"ens2f0\"],\"bindVfio\":false}]",
                               0, &jerr);
        assert_non_null(a);
        _cleanup_free_ SriovPoolConfig *pools = NULL;
        size_t n = 0;
        KvErr e = {};
        assert_int_equal(sriov_pools_parse(a, &pools, &n, &e), 0);
        json_decref(a);
        assert_int_equal(n, 2);
        assert_string_equal(pools[0].resource, "intel.com/a");
        assert_int_equal(pools[0].n_pfs, 2);
        assert_string_equal(pools[0].pfs[1], "ens1f1");
        assert_true(pools[0].bind_vfio);
        assert_false(pools[1].bind_vfio);

        parse_bad("{}", "'sriovPools' must be an array, got object");
        parse_bad("[]", "'sriovPools' must not be empty");
        parse_bad("[1]", "sriovPools[0]: must be an object, got integer");
        parse_bad("[{\"pfs\":[\"a\"]}]", "sriovPools[0]: 'resourceName' is required");
        parse_bad("[{\"resourceName\":\"nodash\",\"pfs\":[\"a\"]}]", "'resourceName' must be <vendor>/<name>");
        parse_bad("[{\"resourceName\":\"x/y\"}]", "sriovPools[0]: 'pfs' is required");
        parse_bad("[{\"resourceName\":\"x/y\",\"pfs\":[]}]", "'pfs' must list 1..8 interfaces, got 0");
        parse_bad("[{\"resourceName\":\"x/y\",\"pfs\":[7]}]", "'pfs[0]' must be a string, got integer");
        parse_bad("[{\"resourceName\":\"x/y\",\"pfs\":[\"a\",\"waytoolonginterfacename\"]}]",
                  "'pfs[1]' is not a valid interface name: 'waytoolonginterfacename'");
        parse_bad("[{\"resourceName\":\"x/y\",\"pfs\":[\"a\"],\"bindVfio\":\"yes\"}]", "'bindVfio' must be a boolean");
        parse_bad("[{\"resourceName\":\"x/y\",\"pfs\":[\"a\"],\"vlan\":1}]", "sriovPools[0]: unknown field 'vlan'");
        parse_bad("[{\"resourceName\":\"x/y\",\"pfs\":[\"a\"]},{\"resourceName\":\"x/y\",\"pfs\":[\"b\"]}]",
                  "sriovPools[1]: 'resourceName' 'x/y' is already used by sriovPools[0]");
        parse_bad("[{\"resourceName\":\"x/y\",\"pfs\":[\"a\"]},{\"resourceName\":\"x/z\",\"pfs\":[\"a\"]}]",
                  "sriovPools[1]: PF 'a' is already in pool 'x/y'");
        parse_bad("[{\"resourceName\":\"x/y\",\"pfs\":[\"a\",\"a\"]}]", "'pfs' lists 'a' twice");

        /* sriov_new applies the same checks. */
        SriovPoolConfig dup[2] = { pool("x/y", true, "a", NULL), pool("x/y", true, "b", NULL) };
        Sriov *s = NULL;
        kverr_clear(&e);
        assert_int_equal(sriov_new("/nonexistent", "/nonexistent", dup, 2, NULL, &s, &e), -EINVAL);
        assert_null(s);
        assert_msg_has(&e, "already used");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_discovery, setup, teardown),
                cmocka_unit_test_setup_teardown(test_alloc_order_exhaustion, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unknown_resource, setup, teardown),
                cmocka_unit_test_setup_teardown(test_netlink_sink, setup, teardown),
                cmocka_unit_test(test_nl_golden),
                cmocka_unit_test_setup_teardown(test_vfio_bind_release, setup, teardown),
                cmocka_unit_test_setup_teardown(test_vfio_bind_timeout_rolls_back, setup, teardown),
                cmocka_unit_test_setup_teardown(test_netlink_failure_rolls_back, setup, teardown),
                cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
                cmocka_unit_test_setup_teardown(test_vanished_vf, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pf_without_sriov, setup, teardown),
                cmocka_unit_test(test_config_parse),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
