// SPDX-License-Identifier: Apache-2.0
// libFuzzer harness over what netd's SR-IOV code reads from sysfs and its state dir (netd/binding/sriov.c): a PF's
// ifindex, device link, sriov_totalvfs / sriov_numvfs, its virtfnN links, a VF's driver link and net/ directory,
// and a claim file left in <state>/sriov/. The input is a tree in the layout of tests/tools/mk-fake-sysfs.sh
// whose every file content and link target comes from the fuzzer: fields separated by '\n', in this order
//   0 class/net/pf0/ifindex            1 class/net/pf0/device (link target)
//   2 <pf>/sriov_totalvfs              3 <pf>/sriov_numvfs
//   4 <pf>/virtfn0 (link target)       5 <pf>/virtfn1 (link target)
//   6 <vf0>/driver (link target)       7 the name of <vf0>/net/'s one entry
//   8 <vf1>/driver (link target)       9 <state>/sriov/0000:3b:02.0.json
//  10 the request: MAC (6 bytes), VLAN (2 bytes), spoofchk, trust
// Link targets that would lead out of the tree are not made (the harness must never touch anything else); an
// empty field keeps the layout's own value. Then: load the claims, walk (the status dump), allocate a VF and
// release it, with the netlink sink (tests/unit/test-sriov.c does the same on fixed trees). Nothing may crash or
// leak, a refusal must name its reason, and an allocated VF must be one a virtfn link of the PF leads to.
//
// Build/run: `make fuzz` / `make fuzz-smoke` (see fuzz-netd-config.c). Seeds: tests/fuzz/corpus/fuzz-sriov-sysfs/.
#define _GNU_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fileio.h"
#include "netd/binding/sriov.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PF_DIR "devices/pci0000:00/0000:3b:00.0"
#define VF0_DIR "devices/pci0000:00/0000:3b:02.0"
#define VF1_DIR "devices/pci0000:00/0000:3b:02.1"
#define N_FIELDS 11

static char base[] = "/tmp/kvnet-fuzz-sriov-XXXXXX";
static char root[PATH_MAX];

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        return remove(path) < 0 ? -1 : 0;
}

static void rm_base(void) {
        nftw(base, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void mkdirs(const char *rel) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", root, rel);
        if (mkdir_p(p, 0700) < 0)
                __builtin_trap();
}

static void put(const char *rel, const char *v, size_t n) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s/%s", root, rel);
        if (write_file_atomic(p, v, n, false) < 0)
                __builtin_trap();
}

/* a link whose target stays in the tree (resolved lexically, from the link's directory) */
static bool target_ok(const char *rel, const char *t, size_t n) {
        if (n == 0 || n >= 200 || t[0] == '/' || memchr(t, '\0', n))
                return false;
        int depth = 0;
        for (const char *c = rel; *c; c++)
                depth += *c == '/';
        for (size_t i = 0; i < n;) {
                size_t j = i;
                while (j < n && t[j] != '/')
                        j++;
                if (j - i == 2 && t[i] == '.' && t[i + 1] == '.') {
                        if (--depth < 0)
                                return false;
                } else if (!(j - i == 1 && t[i] == '.') && j > i)
                        depth++;
                i = j + 1;
        }
        return true;
}

static void link_to(const char *rel, const char *t, size_t n, const char *dflt) {
        char p[PATH_MAX], tgt[256];
        snprintf(p, sizeof p, "%s/%s", root, rel);
        if (n == 0)
                snprintf(tgt, sizeof tgt, "%s", dflt);
        else if (target_ok(rel, t, n))
                snprintf(tgt, sizeof tgt, "%.*s", (int) n, t);
        else
                return;
        if (symlink(tgt, p) < 0)
                __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 4096)
                return 0;
        const char *f[N_FIELDS] = {};
        size_t fl[N_FIELDS] = {};
        size_t k = 0, start = 0;
        for (size_t i = 0; i <= size && k < N_FIELDS; i++)
                if (i == size || data[i] == '\n') {
                        f[k] = (const char *) data + start;
                        fl[k++] = i - start;
                        start = i + 1;
                }
        if (!root[0]) {
                if (!mkdtemp(base))
                        __builtin_trap();
                atexit(rm_base);
        }
        snprintf(root, sizeof root, "%s/t", base);
        nftw(root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);

        mkdirs("sys/class/net/pf0");
        mkdirs("sys/" PF_DIR);
        mkdirs("sys/" VF0_DIR "/net");
        mkdirs("sys/" VF1_DIR);
        mkdirs("sys/bus/pci/drivers/vfio-pci");
        mkdirs("sys/bus/pci/drivers/iavf");
        mkdirs("state/sriov");
        put("sys/class/net/pf0/ifindex", fl[0] ? f[0] : "10\n", fl[0] ? fl[0] : 3);
        link_to("sys/class/net/pf0/device", f[1], fl[1], "../../../" PF_DIR);
        put("sys/" PF_DIR "/sriov_totalvfs", fl[2] ? f[2] : "2\n", fl[2] ? fl[2] : 2);
        put("sys/" PF_DIR "/sriov_numvfs", fl[3] ? f[3] : "2\n", fl[3] ? fl[3] : 2);
        link_to("sys/" PF_DIR "/virtfn0", f[4], fl[4], "../0000:3b:02.0");
        link_to("sys/" PF_DIR "/virtfn1", f[5], fl[5], "../0000:3b:02.1");
        link_to("sys/" VF0_DIR "/driver", f[6], fl[6], "../../../bus/pci/drivers/iavf");
        char netdev[64] = "pf0v0";
        if (fl[7] > 0 && fl[7] < sizeof netdev && !memchr(f[7], '/', fl[7]) && !memchr(f[7], '\0', fl[7]) &&
            !(fl[7] <= 2 && f[7][0] == '.'))
                snprintf(netdev, sizeof netdev, "%.*s", (int) fl[7], f[7]);
        char rel[PATH_MAX];
        snprintf(rel, sizeof rel, "sys/" VF0_DIR "/net/%s", netdev);
        mkdirs(rel);
        link_to("sys/" VF1_DIR "/driver", f[8], fl[8], "../../../bus/pci/drivers/iavf");
        if (fl[9])
                put("state/sriov/0000:3b:02.0.json", f[9], fl[9]);

        SriovAllocRequest req = { .resource = "kvnet.io/vf", .owner = "fuzz/owner", .mac = { 0x02, 0, 0, 0, 0, 1 },
                                  .spoofchk = true };
        if (fl[10] >= 6)
                memcpy(req.mac, f[10], 6);
        if (fl[10] >= 8)
                req.vlan = (uint16_t) (((uint8_t) f[10][6] << 8 | (uint8_t) f[10][7]) % 4096);
        if (fl[10] >= 10) {
                req.spoofchk = f[10][8] & 1;
                req.trust = f[10][9] & 1;
        }

        char sys[PATH_MAX], state[PATH_MAX];
        snprintf(sys, sizeof sys, "%s/sys", root);
        snprintf(state, sizeof state, "%s/state", root);
        SriovPoolConfig pool = { .resource = "kvnet.io/vf", .pfs = { "pf0" }, .n_pfs = 1, .bind_vfio = false };
        SriovNlSink *sink = NULL;
        if (sriov_nl_sink_new(&sink) < 0)
                __builtin_trap();
        Sriov *s = NULL;
        KvErr e = {};
        if (sriov_new(sys, state, &pool, 1, &sink->ops, &s, &e) < 0)
                __builtin_trap(); /* the pool is valid */
        e = (KvErr){};
        if (sriov_load(s, &e) < 0 && e.msg[0] == '\0' && e.code != 0)
                __builtin_trap();
        json_t *dump = sriov_dump(s);
        json_decref(dump);
        SriovVf *vf = NULL;
        e = (KvErr){};
        int r = sriov_alloc(s, &req, &vf, &e);
        if (r < 0 && e.msg[0] == '\0')
                __builtin_trap(); /* a refusal without a reason */
        if (r >= 0) {
                /* the VF is one a virtfn link of the PF leads to */
                bool listed = false;
                for (int i = 0; vf && i < 2; i++) {
                        char l[PATH_MAX], t[PATH_MAX];
                        snprintf(l, sizeof l, "%s/" PF_DIR "/virtfn%d", sys, i);
                        const char *b = realpath(l, t) ? strrchr(t, '/') : NULL;
                        listed = listed || (b && strcmp(b + 1, vf->pci) == 0);
                }
                if (!listed)
                        __builtin_trap();
                IGNORE_RESULT(sriov_release(s, req.owner));
        }
        sriov_free(s);
        sriov_nl_sink_free(sink);
        return 0;
}
