/* SPDX-License-Identifier: Apache-2.0 */
/* SR-IOV VF pools: config, sysfs discovery, allocation, vfio-pci binding, persistence.
 * All sysfs access goes through s->sysfs (a root path), so a fake tree exercises exactly this code. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

#include "common/array.h"
#include "common/fileio.h"
#include "common/json-util.h"
#include "netd/binding/sriov.h"

#define VFIO_DRIVER "vfio-pci"
#define BIND_TIMEOUT_MS 3000

struct Sriov {
        char *sysfs;
        char *state_dir;
        SriovPoolConfig *pools;
        size_t n_pools;
        const SriovNlOps *nl;
        SriovVf **vfs; /* claims */
        size_t n_vfs, cap_vfs;
        uint32_t seq;
        bool durable;
};

typedef struct PfInfo {
        char dir[PATH_MAX]; /* resolved PCI device directory */
        char pci[16];
        int ifindex;
        unsigned total, numvfs;
} PfInfo;

typedef struct VfInfo {
        unsigned index;
        char pci[16];
        char dir[PATH_MAX];
        char driver[32]; /* "" when unbound */
        char netdev[16];
} VfInfo;

/* ---- small sysfs helpers ---- */

static int pathf(char *buf, size_t n, const char *fmt, ...) _printf_(3, 4);
static int pathf(char *buf, size_t n, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = vsnprintf(buf, n, fmt, ap);
        va_end(ap);
        return r < 0 || (size_t) r >= n ? -ENAMETOOLONG : 0;
}

/* Reads a sysfs attribute, trailing whitespace stripped. */
static int attr_read(const char *path, char *buf, size_t n) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = read_file_max(path, 4096, &text, &len);
        if (r < 0)
                return r;
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
                text[--len] = '\0';
        if (len >= n)
                return -ERANGE;
        memcpy(buf, text, len + 1);
        return 0;
}

static int attr_read_uint(const char *path, unsigned *ret) {
        char buf[32];
        int r = attr_read(path, buf, sizeof buf);
        if (r < 0)
                return r;
        char *end;
        errno = 0;
        unsigned long v = strtoul(buf, &end, 10);
        if (errno || end == buf || *end || v > UINT_MAX)
                return -EBADMSG;
        *ret = (unsigned) v;
        return 0;
}

/* Writes an attribute the way `echo value > attr` does; the file must exist (never created). */
static int attr_write(const char *path, const char *value) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        size_t len = strlen(value);
        ssize_t n = write(fd, value, len);
        if (n < 0)
                return negative_errno();
        if ((size_t) n != len)
                return -EIO;
        return 0;
}

/* Basename of a symlink's target ("" and 0 when the link does not exist). */
static int link_basename(const char *path, char *buf, size_t n) {
        char target[PATH_MAX];
        ssize_t l = readlink(path, target, sizeof target - 1);
        if (l < 0) {
                if (errno == ENOENT) {
                        buf[0] = '\0';
                        return 0;
                }
                return negative_errno();
        }
        target[l] = '\0';
        const char *b = strrchr(target, '/');
        b = b ? b + 1 : target;
        if (strlen(b) >= n)
                return -ERANGE;
        strcpy(buf, b);
        return 0;
}

static bool pci_addr_valid(const char *s) {
        /* dddd:bb:dd.f */
        if (strlen(s) != 12 || s[4] != ':' || s[7] != ':' || s[10] != '.')
                return false;
        for (size_t i = 0; i < 12; i++) {
                if (i == 4 || i == 7 || i == 10)
                        continue;
                char c = s[i];
                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
                        return false;
        }
        return true;
}

static bool ifname_valid(const char *s) {
        size_t l = strlen(s);
        if (l == 0 || l >= 16 || streq(s, ".") || streq(s, ".."))
                return false;
        for (const char *p = s; *p; p++)
                if (*p == '/' || *p == ':' || *p <= ' ' || *p == 0x7f)
                        return false;
        return true;
}

static const char *mac_fmt(const uint8_t m[6], char buf[18]) {
        snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
        return buf;
}

static int mac_parse(const char *s, uint8_t ret[6]) {
        unsigned v[6];
        char tail;
        if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
                return -EINVAL;
        for (int i = 0; i < 6; i++)
                ret[i] = (uint8_t) v[i];
        return 0;
}

/* ---- discovery ---- */

static int pf_discover(Sriov *s, const char *pf, PfInfo *ret, KvErr *e) {
        PfInfo p = {};
        char path[PATH_MAX];
        int r = pathf(path, sizeof path, "%s/class/net/%s/device", s->sysfs, pf);
        if (r < 0)
                return kverr_set(e, KV_ERR_INVALID_ENV, r, "sriov: PF '%s': path too long", pf);
        if (!realpath(path, p.dir))
                return kverr_set_errno(e, KV_ERR_INVALID_ENV, negative_errno(),
                                       "sriov: PF '%s' not found or not a PCI device (%s)", pf, path);
        const char *b = strrchr(p.dir, '/');
        b = b ? b + 1 : p.dir;
        if (strlen(b) >= sizeof p.pci)
                return kverr_set(e, KV_ERR_INVALID_ENV, -EBADMSG, "sriov: PF '%s': '%s' is not a PCI address", pf, b);
        strcpy(p.pci, b);

        r = pathf(path, sizeof path, "%s/class/net/%s/ifindex", s->sysfs, pf);
        unsigned ifindex = 0;
        if (r >= 0)
                r = attr_read_uint(path, &ifindex);
        if (r < 0 || ifindex == 0 || ifindex > INT_MAX)
                return kverr_set_errno(e, KV_ERR_INVALID_ENV, r < 0 ? r : -EBADMSG, "sriov: PF '%s': cannot read %s",
                                       pf, path);
        p.ifindex = (int) ifindex;

        r = pathf(path, sizeof path, "%s/sriov_totalvfs", p.dir);
        if (r >= 0)
                r = attr_read_uint(path, &p.total);
        if (r == -ENOENT)
                return kverr_set(e, KV_ERR_INVALID_ENV, -EOPNOTSUPP,
                                 "sriov: PF '%s' (%s) has no SR-IOV capability: no sriov_totalvfs", pf, p.pci);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INVALID_ENV, r, "sriov: PF '%s': cannot read %s", pf, path);
        r = pathf(path, sizeof path, "%s/sriov_numvfs", p.dir);
        if (r >= 0)
                r = attr_read_uint(path, &p.numvfs);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INVALID_ENV, r, "sriov: PF '%s': cannot read %s", pf, path);
        if (p.numvfs > p.total)
                p.numvfs = p.total;
        *ret = p;
        return 0;
}

/* -ENOENT if virtfn<index> does not exist. */
static int vf_discover(const PfInfo *pf, unsigned index, VfInfo *ret) {
        VfInfo v = { .index = index };
        char path[PATH_MAX];
        int r = pathf(path, sizeof path, "%s/virtfn%u", pf->dir, index);
        if (r < 0)
                return r;
        if (!realpath(path, v.dir))
                return negative_errno();
        const char *b = strrchr(v.dir, '/');
        b = b ? b + 1 : v.dir;
        if (!pci_addr_valid(b))
                return -EBADMSG;
        strcpy(v.pci, b);
        r = pathf(path, sizeof path, "%s/driver", v.dir);
        if (r < 0)
                return r;
        r = link_basename(path, v.driver, sizeof v.driver);
        if (r < 0)
                return r;
        r = pathf(path, sizeof path, "%s/net", v.dir);
        if (r < 0)
                return r;
        DIR *d = opendir(path);
        if (d) {
                struct dirent *de;
                while ((de = readdir(d)))
                        if (de->d_name[0] != '.' && strlen(de->d_name) < sizeof v.netdev) {
                                strcpy(v.netdev, de->d_name);
                                break;
                        }
                closedir(d);
        }
        *ret = v;
        return 0;
}

/* ---- pools and claims ---- */

static const SriovPoolConfig *pool_find(Sriov *s, const char *resource) {
        for (size_t i = 0; i < s->n_pools; i++)
                if (streq(s->pools[i].resource, resource))
                        return &s->pools[i];
        return NULL;
}

static SriovVf *claim_by_pci(Sriov *s, const char *pci) {
        for (size_t i = 0; i < s->n_vfs; i++)
                if (streq(s->vfs[i]->pci, pci))
                        return s->vfs[i];
        return NULL;
}

SriovVf *sriov_find(Sriov *s, const char *owner) {
        if (!s || !owner)
                return NULL;
        for (size_t i = 0; i < s->n_vfs; i++)
                if (streq(s->vfs[i]->owner, owner))
                        return s->vfs[i];
        return NULL;
}

static int claims_add(Sriov *s, SriovVf *vf) {
        int r = ARRAY_GROW(s->vfs, s->cap_vfs, s->n_vfs + 1);
        if (r < 0)
                return r;
        s->vfs[s->n_vfs++] = vf;
        return 0;
}

static void claims_drop(Sriov *s, SriovVf *vf) {
        for (size_t i = 0; i < s->n_vfs; i++)
                if (s->vfs[i] == vf) {
                        memmove(&s->vfs[i], &s->vfs[i + 1], (s->n_vfs - i - 1) * sizeof *s->vfs);
                        s->n_vfs--;
                        free(vf);
                        return;
                }
}

/* Config checks shared by sriov_new and sriov_pools_parse. */
static int pools_validate(const SriovPoolConfig *pools, size_t n, KvErr *e) {
        if (n == 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "sriovPools: at least one pool is required");
        for (size_t i = 0; i < n; i++) {
                const SriovPoolConfig *p = &pools[i];
                size_t rl = strnlen(p->resource, sizeof p->resource);
                if (rl == 0 || rl >= sizeof p->resource)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "sriovPools[%zu]: 'resourceName' must be 1..%zu characters", i,
                                         sizeof p->resource - 1);
                if (p->n_pfs == 0 || p->n_pfs > SRIOV_MAX_PFS)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "sriovPools[%zu]: 'pfs' must list 1..%d interfaces, got %zu", i,
                                         SRIOV_MAX_PFS, p->n_pfs);
                for (size_t j = 0; j < p->n_pfs; j++) {
                        if (strnlen(p->pfs[j], 16) >= 16 || !ifname_valid(p->pfs[j]))
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                                 "sriovPools[%zu]: 'pfs[%zu]' is not a valid interface name: '%.16s'",
                                                 i, j, p->pfs[j]);
                        for (size_t k = 0; k < i; k++)
                                for (size_t l = 0; l < pools[k].n_pfs; l++)
                                        if (streq(pools[k].pfs[l], p->pfs[j]))
                                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                                                 "sriovPools[%zu]: PF '%s' is already in pool '%s'", i,
                                                                 p->pfs[j], pools[k].resource);
                        for (size_t l = 0; l < j; l++)
                                if (streq(p->pfs[l], p->pfs[j]))
                                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                                         "sriovPools[%zu]: 'pfs' lists '%s' twice", i, p->pfs[j]);
                }
                for (size_t k = 0; k < i; k++)
                        if (streq(pools[k].resource, p->resource))
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                                 "sriovPools[%zu]: 'resourceName' '%s' is already used by sriovPools[%zu]",
                                                 i, p->resource, k);
        }
        return 0;
}

int sriov_new(const char *sysfs_root, const char *state_dir, const SriovPoolConfig *pools, size_t n_pools,
              const SriovNlOps *nl, Sriov **ret, KvErr *e) {
        if (!state_dir || !ret || (n_pools > 0 && !pools))
                return kverr_set(e, KV_ERR_INTERNAL, -EINVAL, "sriov: invalid arguments");
        int r = pools_validate(pools, n_pools, e);
        if (r < 0)
                return r;
        if (nl && !nl->apply)
                return kverr_set(e, KV_ERR_INTERNAL, -EINVAL, "sriov: netlink ops without apply()");
        Sriov *s = calloc(1, sizeof *s);
        if (!s)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "sriov: out of memory");
        s->sysfs = strdup(sysfs_root ? sysfs_root : SRIOV_DEFAULT_SYSFS);
        s->state_dir = strdup(state_dir);
        s->pools = calloc(n_pools, sizeof *s->pools);
        if (!s->sysfs || !s->state_dir || !s->pools) {
                sriov_free(s);
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "sriov: out of memory");
        }
        memcpy(s->pools, pools, n_pools * sizeof *pools);
        s->n_pools = n_pools;
        s->nl = nl ? nl : sriov_nl_ops_kernel();
        s->durable = true;
        s->seq = (uint32_t) time(NULL);
        *ret = s;
        return 0;
}

Sriov *sriov_free(Sriov *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_vfs; i++)
                free(s->vfs[i]);
        free(s->vfs);
        free(s->pools);
        free(s->sysfs);
        free(s->state_dir);
        free(s);
        return NULL;
}

/* ---- persistence: <state_dir>/sriov/<pci>.json, one file per claim ---- */

static int state_path(Sriov *s, const char *pci, char *buf, size_t n) {
        return pci ? pathf(buf, n, "%s/sriov/%s.json", s->state_dir, pci) : pathf(buf, n, "%s/sriov", s->state_dir);
}

static json_t *vf_to_json(const SriovVf *vf) {
        char mac[18];
        return json_pack("{s:i, s:s, s:s, s:i, s:s, s:s, s:s, s:i, s:b, s:b, s:s, s:s}", "version",
                         SRIOV_STATE_VERSION, "resource", vf->resource, "pf", vf->pf, "vfIndex", (int) vf->vf_index,
                         "pci", vf->pci, "owner", vf->owner, "mac", mac_fmt(vf->mac, mac), "vlan", (int) vf->vlan,
                         "spoofchk", vf->spoofchk, "trust", vf->trust, "origDriver", vf->orig_driver, "netdev",
                         vf->netdev);
}

static int copy_field(char *dst, size_t n, const char *src, const char *ctx, const char *key, KvErr *e) {
        if (strlen(src) >= n)
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "%s: '%s' is too long", ctx, key);
        strcpy(dst, src);
        return 0;
}

static int vf_from_json(json_t *o, const char *ctx, SriovVf *ret, KvErr *e) {
        SriovVf v = {};
        const char *resource, *pf, *pci, *owner, *mac, *orig = "", *netdev = "";
        long long version, idx, vlan;
        bool spoof = true, trust = false;
        int r;
        if ((r = json_get_int(o, ctx, "version", true, 1, SRIOV_STATE_VERSION, &version, e)) < 0 ||
            (r = json_get_string(o, ctx, "resource", true, &resource, e)) < 0 ||
            (r = json_get_string(o, ctx, "pf", true, &pf, e)) < 0 ||
            (r = json_get_int(o, ctx, "vfIndex", true, 0, 65535, &idx, e)) < 0 ||
            (r = json_get_string(o, ctx, "pci", true, &pci, e)) < 0 ||
            (r = json_get_string(o, ctx, "owner", true, &owner, e)) < 0 ||
            (r = json_get_string(o, ctx, "mac", true, &mac, e)) < 0 ||
            (r = json_get_int(o, ctx, "vlan", true, 0, 4094, &vlan, e)) < 0 ||
            (r = json_get_bool(o, ctx, "spoofchk", false, &spoof, e)) < 0 ||
            (r = json_get_bool(o, ctx, "trust", false, &trust, e)) < 0 ||
            (r = json_get_string(o, ctx, "origDriver", false, &orig, e)) < 0 ||
            (r = json_get_string(o, ctx, "netdev", false, &netdev, e)) < 0)
                return r;
        if ((r = copy_field(v.resource, sizeof v.resource, resource, ctx, "resource", e)) < 0 ||
            (r = copy_field(v.pf, sizeof v.pf, pf, ctx, "pf", e)) < 0 ||
            (r = copy_field(v.pci, sizeof v.pci, pci, ctx, "pci", e)) < 0 ||
            (r = copy_field(v.owner, sizeof v.owner, owner, ctx, "owner", e)) < 0 ||
            (r = copy_field(v.orig_driver, sizeof v.orig_driver, orig, ctx, "origDriver", e)) < 0 ||
            (r = copy_field(v.netdev, sizeof v.netdev, netdev, ctx, "netdev", e)) < 0)
                return r;
        if (!pci_addr_valid(v.pci) || !ifname_valid(v.pf) || !v.owner[0])
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "%s: bad 'pci', 'pf' or 'owner'", ctx);
        if (mac_parse(mac, v.mac) < 0)
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "%s: 'mac' is not a MAC address, got '%s'", ctx, mac);
        v.vf_index = (unsigned) idx;
        v.vlan = (uint16_t) vlan;
        v.spoofchk = spoof;
        v.trust = trust;
        *ret = v;
        return 0;
}

static int state_save(Sriov *s, const SriovVf *vf) {
        char path[PATH_MAX];
        int r = state_path(s, NULL, path, sizeof path);
        if (r < 0)
                return r;
        r = mkdir_p(path, 0700);
        if (r < 0)
                return r;
        r = state_path(s, vf->pci, path, sizeof path);
        if (r < 0)
                return r;
        _cleanup_json_ json_t *o = vf_to_json(vf);
        if (!o)
                return -ENOMEM;
        _cleanup_free_ char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!text)
                return -ENOMEM;
        return write_file_atomic(path, text, strlen(text), s->durable);
}

static int state_remove(Sriov *s, const SriovVf *vf) {
        char path[PATH_MAX];
        int r = state_path(s, vf->pci, path, sizeof path);
        if (r < 0)
                return r;
        return unlink_durable(path, s->durable);
}

/* Is the claimed VF still at pf/virtfn<index> with the same PCI address? Refreshes netdev. */
static bool vf_present(Sriov *s, SriovVf *vf) {
        PfInfo pf;
        VfInfo v;
        if (pf_discover(s, vf->pf, &pf, NULL) < 0 || vf->vf_index >= pf.numvfs || vf_discover(&pf, vf->vf_index, &v) < 0 ||
            !streq(v.pci, vf->pci))
                return false;
        strcpy(vf->netdev, v.netdev);
        return true;
}

int sriov_load(Sriov *s, KvErr *e) {
        for (size_t i = 0; i < s->n_vfs; i++)
                free(s->vfs[i]);
        s->n_vfs = 0;

        char dir[PATH_MAX];
        int r = state_path(s, NULL, dir, sizeof dir);
        if (r < 0)
                return kverr_set(e, KV_ERR_INTERNAL, r, "sriov: state path too long");
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "sriov: cannot create %s", dir);
        DIR *d = opendir(dir);
        if (!d)
                return kverr_set_errno(e, KV_ERR_INTERNAL, negative_errno(), "sriov: cannot open %s", dir);
        int vanished = 0;
        struct dirent *de;
        r = 0;
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                if (l < 6 || !streq(de->d_name + l - 5, ".json"))
                        continue;
                char path[PATH_MAX];
                if (pathf(path, sizeof path, "%s/%s", dir, de->d_name) < 0)
                        continue;
                _cleanup_free_ char *text = NULL;
                size_t len;
                _cleanup_json_ json_t *o = NULL;
                SriovVf v;
                KvErr pe = {};
                if (read_file_max(path, 64 * 1024, &text, &len) < 0 ||
                    json_parse_object(text, len, 64 * 1024, path, &o, &pe) < 0 || vf_from_json(o, path, &v, &pe) < 0 ||
                    claim_by_pci(s, v.pci) || sriov_find(s, v.owner)) {
                        char bad[PATH_MAX + 16];
                        snprintf(bad, sizeof bad, "%s.corrupt", path);
                        (void) rename(path, bad);
                        continue;
                }
                SriovVf *vf = malloc(sizeof *vf);
                if (!vf) {
                        r = -ENOMEM;
                        break;
                }
                *vf = v;
                vf->vanished = !vf_present(s, vf);
                if (vf->vanished && vanished++ == 0)
                        kverr_set(e, KV_ERR_NOT_AVAILABLE, 0,
                                  "sriov: VF %s (PF '%s' vf %u) of '%s' vanished from sysfs; it stays claimed until released",
                                  vf->pci, vf->pf, vf->vf_index, vf->owner);
                r = claims_add(s, vf);
                if (r < 0) {
                        free(vf);
                        break;
                }
        }
        closedir(d);
        if (r < 0)
                return kverr_set(e, KV_ERR_INTERNAL, r, "sriov: out of memory");
        return vanished;
}

/* ---- driver binding ---- */

static int wait_driver(const char *vfdir, const char *want, char *ret_have, size_t n) {
        char path[PATH_MAX];
        int r = pathf(path, sizeof path, "%s/driver", vfdir);
        if (r < 0)
                return r;
        for (int waited = 0;; waited++) {
                r = link_basename(path, ret_have, n);
                if (r < 0)
                        return r;
                if (streq(ret_have, want))
                        return 0;
                if (waited >= BIND_TIMEOUT_MS)
                        return -ETIMEDOUT;
                (void) nanosleep(&(struct timespec) { .tv_nsec = 1000 * 1000 }, NULL);
        }
}

/* driver_override = target, unbind from the current driver, drivers_probe; waits for driver -> target. */
static int bind_vfio(Sriov *s, const VfInfo *v, KvErr *e) {
        char path[PATH_MAX];
        int r = pathf(path, sizeof path, "%s/driver_override", v->dir);
        if (r >= 0)
                r = attr_write(path, VFIO_DRIVER);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "sriov: VF %s: write '%s' to driver_override", v->pci,
                                       VFIO_DRIVER);
        if (v->driver[0] && !streq(v->driver, VFIO_DRIVER)) {
                r = pathf(path, sizeof path, "%s/driver/unbind", v->dir);
                if (r >= 0)
                        r = attr_write(path, v->pci);
                if (r < 0)
                        return kverr_set_errno(e, KV_ERR_INTERNAL, r, "sriov: VF %s: unbind from '%s'", v->pci,
                                               v->driver);
        }
        r = pathf(path, sizeof path, "%s/bus/pci/drivers_probe", s->sysfs);
        if (r >= 0)
                r = attr_write(path, v->pci);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "sriov: VF %s: drivers_probe", v->pci);
        char have[64];
        r = wait_driver(v->dir, VFIO_DRIVER, have, sizeof have);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "sriov: VF %s did not bind to %s (driver is '%s')",
                                       v->pci, VFIO_DRIVER, have);
        return 0;
}

/* Clears driver_override, unbinds the current driver, binds orig (if any); waits for the result. */
static int bind_orig(Sriov *s, const char *vfdir, const char *pci, const char *orig) {
        char path[PATH_MAX], cur[64];
        int r = pathf(path, sizeof path, "%s/driver_override", vfdir);
        if (r >= 0)
                r = attr_write(path, "\n");
        if (r < 0)
                return r;
        r = pathf(path, sizeof path, "%s/driver", vfdir);
        if (r >= 0)
                r = link_basename(path, cur, sizeof cur);
        if (r < 0)
                return r;
        if (streq(cur, orig))
                return 0;
        if (cur[0]) {
                r = pathf(path, sizeof path, "%s/driver/unbind", vfdir);
                if (r >= 0)
                        r = attr_write(path, pci);
                if (r < 0)
                        return r;
        }
        if (orig[0]) {
                r = pathf(path, sizeof path, "%s/bus/pci/drivers/%s/bind", s->sysfs, orig);
                if (r >= 0)
                        r = attr_write(path, pci);
                if (r < 0)
                        return r;
        }
        return wait_driver(vfdir, orig, cur, sizeof cur);
}

static int vf_configure(Sriov *s, const char *pf, int ifindex, unsigned vf, const uint8_t mac[6], uint16_t vlan,
                        bool spoofchk, bool trust) {
        SriovVfConfig c = { .pf_ifindex = ifindex, .vf = vf, .vlan = vlan, .spoofchk = spoofchk, .trust = trust };
        snprintf(c.pf, sizeof c.pf, "%s", pf);
        memcpy(c.mac, mac, 6);
        uint8_t buf[SRIOV_NL_MSG_MAX];
        int r = sriov_nl_build_vf_config(&c, ++s->seq, buf, sizeof buf);
        if (r < 0)
                return r;
        return s->nl->apply(s->nl->userdata, &c, (const struct nlmsghdr *) buf);
}

static const uint8_t zero_mac[6];

/* ---- allocation ---- */

static bool driver_expected(const VfInfo *v) {
        /* Unbound, or on a kernel netdev driver (has net/<ifname>). vfio-pci or a userspace driver
         * without our claim means someone else uses the VF. */
        return v->driver[0] == '\0' || (v->netdev[0] && !streq(v->driver, VFIO_DRIVER));
}

int sriov_alloc(Sriov *s, const SriovAllocRequest *req, SriovVf **ret, KvErr *e) {
        char macbuf[18];
        if (!s || !req)
                return kverr_set(e, KV_ERR_INTERNAL, -EINVAL, "sriov: invalid arguments");
        if (!req->owner || !req->owner[0] || strlen(req->owner) >= sizeof((SriovVf *) NULL)->owner)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "sriov: 'owner' must be 1..%zu characters",
                                 sizeof((SriovVf *) NULL)->owner - 1);
        if (!req->resource || !req->resource[0])
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "sriov: 'resourceName' is required");
        if (req->vlan > 4094)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "sriov: 'vlan' must be 0..4094, got %u",
                                 (unsigned) req->vlan);
        if ((req->mac[0] & 1) || memcmp(req->mac, zero_mac, 6) == 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "sriov: 'mac' must be a unicast address, got %s",
                                 mac_fmt(req->mac, macbuf));

        const SriovPoolConfig *pool = pool_find(s, req->resource);
        if (!pool) {
                char names[400] = "";
                size_t off = 0;
                for (size_t i = 0; i < s->n_pools && off < sizeof names; i++) {
                        int n = snprintf(names + off, sizeof names - off, "%s'%s'", i ? ", " : "", s->pools[i].resource);
                        if (n < 0)
                                break;
                        off += (size_t) n;
                }
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ENOENT,
                                 "sriov: unknown resourceName '%s'; configured: %s", req->resource, names);
        }

        SriovVf *have = sriov_find(s, req->owner);
        if (have) {
                if (!streq(have->resource, req->resource))
                        return kverr_set(e, KV_ERR_EXISTS, -EEXIST, "sriov: '%s' already holds VF %s of '%s'",
                                         req->owner, have->pci, have->resource);
                *ret = have;
                return 0;
        }

        /* Pick the first free VF, PFs in configured order, VFs by index. */
        unsigned total = 0, claimed = 0, unusable = 0, usable_pfs = 0;
        KvErr pf_err = {};
        int pf_r = 0;
        PfInfo pf;
        VfInfo v;
        const char *pf_name = NULL;
        for (size_t i = 0; i < pool->n_pfs && !pf_name; i++) {
                KvErr pe = {};
                int r = pf_discover(s, pool->pfs[i], &pf, &pe);
                if (r < 0) {
                        if (pf_r == 0) {
                                pf_r = r;
                                pf_err = pe;
                        }
                        continue;
                }
                usable_pfs++;
                for (unsigned k = 0; k < pf.numvfs; k++) {
                        total++;
                        if (vf_discover(&pf, k, &v) < 0) {
                                unusable++;
                                continue;
                        }
                        if (claim_by_pci(s, v.pci)) {
                                claimed++;
                                continue;
                        }
                        if (!driver_expected(&v)) {
                                unusable++;
                                continue;
                        }
                        pf_name = pool->pfs[i];
                        break;
                }
        }
        if (!pf_name) {
                if (pf_r < 0 && usable_pfs == 0) {
                        if (e && !kverr_is_set(e))
                                *e = pf_err;
                        return pf_r;
                }
                return kverr_set(e, KV_ERR_IPAM_EXHAUSTED, -ENOSPC,
                                 "sriov: pool '%s' is exhausted: %u VFs on %u of %zu PFs, %u allocated, %u unusable "
                                 "(missing or bound to another driver)%s%s",
                                 pool->resource, total, usable_pfs, pool->n_pfs, claimed, unusable,
                                 pf_r < 0 ? "; " : "", pf_r < 0 ? pf_err.msg : "");
        }

        _cleanup_free_ SriovVf *vf = calloc(1, sizeof *vf);
        if (!vf)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "sriov: out of memory");
        snprintf(vf->resource, sizeof vf->resource, "%s", pool->resource);
        snprintf(vf->pf, sizeof vf->pf, "%s", pf_name);
        vf->vf_index = v.index;
        strcpy(vf->pci, v.pci);
        strcpy(vf->netdev, v.netdev);
        strcpy(vf->owner, req->owner);
        memcpy(vf->mac, req->mac, 6);
        vf->vlan = req->vlan;
        vf->spoofchk = req->spoofchk;
        vf->trust = req->trust;
        snprintf(vf->orig_driver, sizeof vf->orig_driver, "%s", v.driver);

        /* The claim is on disk before the kernel changes. */
        int r = state_save(s, vf);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "sriov: persist claim of VF %s", vf->pci);

        r = vf_configure(s, pf_name, pf.ifindex, v.index, vf->mac, vf->vlan, vf->spoofchk, vf->trust);
        if (r < 0) {
                kverr_set_errno(e, KV_ERR_INTERNAL, r, "sriov: configure VF %u of PF '%s' (mac %s, vlan %u) via %s",
                                v.index, pf_name, mac_fmt(vf->mac, macbuf), vf->vlan, s->nl->name);
                goto undo_state;
        }
        if (pool->bind_vfio) {
                r = bind_vfio(s, &v, e);
                if (r < 0)
                        goto undo_config;
                vf->netdev[0] = '\0';
                r = state_save(s, vf);
                if (r < 0) {
                        kverr_set_errno(e, KV_ERR_INTERNAL, r, "sriov: persist claim of VF %s", vf->pci);
                        goto undo_bind;
                }
        }
        r = claims_add(s, vf);
        if (r < 0) {
                kverr_set(e, KV_ERR_INTERNAL, r, "sriov: out of memory");
                if (pool->bind_vfio)
                        goto undo_bind;
                goto undo_config;
        }
        *ret = TAKE_PTR(vf);
        return 0;

undo_bind:
        IGNORE_RESULT(bind_orig(s, v.dir, v.pci, v.driver));
undo_config:
        IGNORE_RESULT(vf_configure(s, pf_name, pf.ifindex, v.index, zero_mac, 0, true, false));
undo_state:
        IGNORE_RESULT(state_remove(s, vf));
        return r;
}

int sriov_release(Sriov *s, const char *owner) {
        SriovVf *vf = sriov_find(s, owner);
        if (!vf)
                return 0;
        PfInfo pf;
        VfInfo v;
        if (pf_discover(s, vf->pf, &pf, NULL) < 0 || vf->vf_index >= pf.numvfs || vf_discover(&pf, vf->vf_index, &v) < 0 ||
            !streq(v.pci, vf->pci)) {
                /* The VF is gone: nothing to restore. */
                int r = state_remove(s, vf);
                if (r < 0)
                        return r;
                claims_drop(s, vf);
                return 0;
        }
        int r = vf_configure(s, vf->pf, pf.ifindex, vf->vf_index, zero_mac, 0, true, false);
        if (r < 0)
                return r;
        r = bind_orig(s, v.dir, v.pci, vf->orig_driver);
        if (r < 0)
                return r;
        r = state_remove(s, vf);
        if (r < 0)
                return r;
        claims_drop(s, vf);
        return 0;
}

/* ---- walking the pools, dump ---- */

/* One pass over the pools through sysfs. pf is told about each PF (pfi NULL when it could not be
 * discovered, pe says why), vf about each VF discovered and then each allocation whose VF vanished,
 * pool about each pool's counts after its PFs. Any callback may be NULL; one returning < 0 stops the walk. */
typedef struct Walker {
        int (*pf)(const char *name, const PfInfo *pfi, const KvErr *pe, void *userdata);
        sriov_vf_cb vf;
        sriov_pool_cb pool;
        void *userdata;
} Walker;

static int walk(Sriov *s, const Walker *w) {
        int r;
        for (size_t i = 0; i < s->n_pools; i++) {
                const SriovPoolConfig *p = &s->pools[i];
                SriovPoolStats st = { .resource = p->resource, .bind_vfio = p->bind_vfio };
                for (size_t j = 0; j < p->n_pfs; j++) {
                        PfInfo pf;
                        KvErr pe = {};
                        if (pf_discover(s, p->pfs[j], &pf, &pe) < 0) {
                                if (w->pf && (r = w->pf(p->pfs[j], NULL, &pe, w->userdata)) < 0)
                                        return r;
                                continue;
                        }
                        if (w->pf && (r = w->pf(p->pfs[j], &pf, NULL, w->userdata)) < 0)
                                return r;
                        for (unsigned k = 0; k < pf.numvfs; k++) {
                                VfInfo v;
                                st.total++;
                                if (vf_discover(&pf, k, &v) < 0) {
                                        st.unusable++;
                                        continue;
                                }
                                SriovVf *c = claim_by_pci(s, v.pci);
                                if (c)
                                        st.allocated++;
                                else if (driver_expected(&v))
                                        st.free++;
                                else
                                        st.unusable++;
                                SriovVfView view = { .resource = p->resource, .pf = p->pfs[j], .index = k,
                                                     .pci = v.pci, .driver = v.driver, .netdev = v.netdev,
                                                     .claim = c };
                                if (w->vf && (r = w->vf(&view, w->userdata)) < 0)
                                        return r;
                        }
                }
                if (w->pool && (r = w->pool(&st, w->userdata)) < 0)
                        return r;
        }
        for (size_t i = 0; i < s->n_vfs; i++) {
                const SriovVf *c = s->vfs[i];
                if (!c->vanished)
                        continue;
                SriovVfView view = { .resource = c->resource, .pf = c->pf, .index = c->vf_index, .pci = c->pci,
                                     .driver = "", .netdev = "", .claim = c };
                if (w->vf && (r = w->vf(&view, w->userdata)) < 0)
                        return r;
        }
        return 0;
}

int sriov_foreach_vf(Sriov *s, sriov_vf_cb cb, void *userdata) {
        return walk(s, &(Walker) { .vf = cb, .userdata = userdata });
}

int sriov_foreach_pool(Sriov *s, sriov_pool_cb cb, void *userdata) {
        return walk(s, &(Walker) { .pool = cb, .userdata = userdata });
}

typedef struct DumpCtx {
        json_t *pools, *vfs, *pfs; /* pfs: the PFs of the pool being walked */
} DumpCtx;

static int dump_pf(const char *name, const PfInfo *pf, const KvErr *pe, void *userdata) {
        DumpCtx *d = userdata;
        if (!pf)
                json_array_append_new(d->pfs, json_pack("{s:s, s:s}", "name", name, "error", pe->msg));
        else
                json_array_append_new(d->pfs, json_pack("{s:s, s:s, s:i, s:i, s:i}", "name", name, "pci", pf->pci,
                                                        "ifindex", pf->ifindex, "totalvfs", (int) pf->total, "numvfs",
                                                        (int) pf->numvfs));
        return 0;
}

static int dump_vf(const SriovVfView *v, void *userdata) {
        DumpCtx *d = userdata;
        const SriovVf *claim = v->claim;
        char mac[18] = "";
        json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s?, s:s, s:s, s:b}", "pci", v->pci, "pf", v->pf, "index",
                              (int) v->index, "resource", v->resource, "owner", claim ? claim->owner : NULL, "driver",
                              v->driver, "netdev", v->netdev, "vanished", claim ? claim->vanished : false);
        if (o && claim) {
                json_object_set_new(o, "mac", json_string(mac_fmt(claim->mac, mac)));
                json_object_set_new(o, "vlan", json_integer(claim->vlan));
        }
        json_array_append_new(d->vfs, o);
        return 0;
}

static int dump_pool(const SriovPoolStats *st, void *userdata) {
        DumpCtx *d = userdata;
        json_array_append_new(d->pools, json_pack("{s:s, s:b, s:i, s:i, s:i, s:i, s:o}", "resource", st->resource,
                                                  "bindVfio", st->bind_vfio, "total", (int) st->total, "free",
                                                  (int) st->free, "allocated", (int) st->allocated, "unusable",
                                                  (int) st->unusable, "pfs", d->pfs));
        d->pfs = json_array();
        return d->pfs ? 0 : -ENOMEM;
}

json_t *sriov_dump(Sriov *s) {
        _cleanup_json_ json_t *pools = json_array(), *vfs = json_array(), *pfs = json_array();
        if (!pools || !vfs || !pfs)
                return NULL;
        DumpCtx d = { .pools = pools, .vfs = vfs, .pfs = TAKE_PTR(pfs) };
        int r = walk(s, &(Walker) { .pf = dump_pf, .vf = dump_vf, .pool = dump_pool, .userdata = &d });
        json_decref(d.pfs);
        if (r < 0)
                return NULL;
        return json_pack("{s:O, s:O}", "pools", pools, "vfs", vfs);
}

/* ---- config ---- */

int sriov_pools_parse(json_t *arr, SriovPoolConfig **ret, size_t *ret_n, KvErr *e) {
        if (!json_is_array(arr))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "'sriovPools' must be an array, got %s",
                                 json_type_name(arr));
        size_t n = json_array_size(arr);
        if (n == 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "'sriovPools' must not be empty");
        _cleanup_free_ SriovPoolConfig *pools = calloc(n, sizeof *pools);
        if (!pools)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "sriov: out of memory");
        for (size_t i = 0; i < n; i++) {
                json_t *o = json_array_get(arr, i);
                char ctx[48];
                snprintf(ctx, sizeof ctx, "sriovPools[%zu]", i);
                if (!json_is_object(o))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: must be an object, got %s", ctx,
                                         json_type_name(o));
                const char *key;
                json_t *val;
                json_object_foreach(o, key, val) {
                        if (!streq(key, "resourceName") && !streq(key, "pfs") && !streq(key, "bindVfio"))
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                                 "%s: unknown field '%s' (expected resourceName, pfs, bindVfio)", ctx,
                                                 key);
                }
                SriovPoolConfig *p = &pools[i];
                const char *res;
                json_t *pfs;
                p->bind_vfio = true;
                int r;
                if ((r = json_get_string(o, ctx, "resourceName", true, &res, e)) < 0 ||
                    (r = json_get_array(o, ctx, "pfs", true, &pfs, e)) < 0 ||
                    (r = json_get_bool(o, ctx, "bindVfio", false, &p->bind_vfio, e)) < 0)
                        return r;
                if (!res[0] || strlen(res) >= sizeof p->resource || strchr(res, '/') == NULL)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "%s: 'resourceName' must be <vendor>/<name> of at most %zu characters, got '%s'",
                                         ctx, sizeof p->resource - 1, res);
                strcpy(p->resource, res);
                size_t m = json_array_size(pfs);
                if (m == 0 || m > SRIOV_MAX_PFS)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'pfs' must list 1..%d interfaces, got %zu",
                                         ctx, SRIOV_MAX_PFS, m);
                for (size_t j = 0; j < m; j++) {
                        json_t *pv = json_array_get(pfs, j);
                        if (!json_is_string(pv))
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'pfs[%zu]' must be a string, got %s",
                                                 ctx, j, json_type_name(pv));
                        const char *name = json_string_value(pv);
                        if (!ifname_valid(name))
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                                 "%s: 'pfs[%zu]' is not a valid interface name: '%s'", ctx, j, name);
                        strcpy(p->pfs[j], name);
                }
                p->n_pfs = m;
        }
        int r = pools_validate(pools, n, e);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(pools);
        *ret_n = n;
        return 0;
}
