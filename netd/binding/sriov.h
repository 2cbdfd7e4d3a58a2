/* SPDX-License-Identifier: Apache-2.0 */
/* netd SR-IOV: VF pools per device-plugin resourceName, discovery through sysfs, allocation,
 * VF configuration over rtnetlink, vfio-pci binding, persistence under <state_dir>/sriov/.
 *
 * Everything reads and writes below a configurable sysfs root ("/sys" in production, a fake tree
 * built by tests/tools/mk-fake-sysfs.sh in tests) through the same code. The one seam between a
 * real node and a simulation is SriovNlOps: the VF configuration message is always built by
 * sriov-nl.c; the real ops send it to the kernel, the sink ops record it. See docs/sriov.md. */
#pragma once

#include <jansson.h>
#include <linux/netlink.h>

#include "common/kverr.h"
#include "common/util.h"

#define SRIOV_MAX_PFS 8
#define SRIOV_DEFAULT_SYSFS "/sys"
#define SRIOV_STATE_VERSION 1

typedef struct SriovPoolConfig {
        char resource[128];  /* "intel.com/sriov_netdevice" */
        char pfs[SRIOV_MAX_PFS][16];
        size_t n_pfs;
        bool bind_vfio; /* default true */
} SriovPoolConfig;

typedef struct SriovVf {
        char resource[128];
        char pf[16];
        unsigned vf_index;
        char pci[16];         /* "0000:3b:02.1" */
        char netdev[16];      /* VF netdev name while on a net driver, "" when on vfio */
        char owner[320];      /* claim key / attachment id */
        uint8_t mac[6];
        uint16_t vlan;
        bool spoofchk, trust;
        char orig_driver[32]; /* driver before allocation, "" if none */
        bool vanished;        /* restored from state but gone from sysfs (never handed out) */
} SriovVf;

typedef struct SriovAllocRequest {
        const char *resource;
        const char *owner;
        uint8_t mac[6];
        uint16_t vlan;  /* 0..4094 */
        bool spoofchk;  /* callers should default to true */
        bool trust;     /* default false */
} SriovAllocRequest;

/* One VF configuration: what goes into RTM_SETLINK on the PF. */
typedef struct SriovVfConfig {
        char pf[16];
        int pf_ifindex;
        unsigned vf;
        uint8_t mac[6];
        uint16_t vlan;
        bool spoofchk, trust;
} SriovVfConfig;

/* The seam between real and simulated nodes. apply() receives the decoded config and the complete
 * netlink message built by sriov_nl_build_vf_config() (NLM_F_REQUEST|NLM_F_ACK). It returns 0 or -errno. */
typedef struct SriovNlOps {
        const char *name; /* "netlink", "sink" */
        int (*apply)(void *userdata, const SriovVfConfig *c, const struct nlmsghdr *msg);
        void *userdata;
} SriovNlOps;

/* ---- sriov-nl.c ---- */
#define SRIOV_NL_MSG_MAX 512
/* Builds RTM_SETLINK ifindex=pf_ifindex with IFLA_VFINFO_LIST > IFLA_VF_INFO > {IFLA_VF_MAC,
 * IFLA_VF_VLAN, IFLA_VF_SPOOFCHK, IFLA_VF_TRUST} into buf. Returns the message length or -errno. */
int sriov_nl_build_vf_config(const SriovVfConfig *c, uint32_t seq, void *buf, size_t size) _wur_;
/* Parses such a message back (tests, the sink). -EBADMSG if it is not one. */
int sriov_nl_parse_vf_config(const struct nlmsghdr *nlh, SriovVfConfig *ret) _wur_;
/* Ops that send to the kernel over NETLINK_ROUTE in the current namespace. */
const SriovNlOps *sriov_nl_ops_kernel(void);

/* A recording sink: every apply() is kept (config + message bytes). */
typedef struct SriovNlRecord {
        SriovVfConfig config;
        uint8_t msg[SRIOV_NL_MSG_MAX];
        size_t len;
} SriovNlRecord;
typedef struct SriovNlSink {
        SriovNlOps ops; /* pass &sink->ops to sriov_new() */
        SriovNlRecord *records;
        size_t n_records, cap_records;
        int fail_with; /* if < 0, apply() returns it (and records nothing): failure injection */
} SriovNlSink;
int sriov_nl_sink_new(SriovNlSink **ret) _wur_;
SriovNlSink *sriov_nl_sink_free(SriovNlSink *s);

/* ---- sriov.c ---- */
typedef struct Sriov Sriov;

/* sysfs_root NULL = "/sys"; nl NULL = kernel netlink. Validates the pools (at least one, unique
 * resource names, a PF in one pool only). Touches neither sysfs nor the state dir. */
int sriov_new(const char *sysfs_root, const char *state_dir, const SriovPoolConfig *pools, size_t n_pools,
              const SriovNlOps *nl, Sriov **ret, KvErr *e) _wur_;
Sriov *sriov_free(Sriov *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Sriov *, sriov_free);
#define _cleanup_sriov_ _cleanup_(sriov_freep)

/* Restores allocations from <state_dir>/sriov/<pci>.json and re-discovers their VFs. Returns the number
 * of restored allocations whose VF vanished from sysfs (they stay claimed, marked `vanished`, and
 * e is filled as a warning naming the first one, code KV_ERR_NOT_AVAILABLE); -errno on failure.
 * Unreadable files are renamed *.corrupt. */
int sriov_load(Sriov *s, KvErr *e) _wur_;

/* Allocates a VF of req->resource for req->owner (the same owner again gets its VF back unchanged:
 * idempotent). Errors: KV_ERR_INVALID_CONFIG for an unknown resource (naming the configured ones) or
 * a bad request; KV_ERR_IPAM_EXHAUSTED (100) with counts; KV_ERR_INVALID_ENV for a PF that is
 * missing or has no SR-IOV; KV_ERR_INTERNAL for netlink/sysfs failures (rolled back).
 * *ret points into s (valid until release / free). */
int sriov_alloc(Sriov *s, const SriovAllocRequest *req, SriovVf **ret, KvErr *e) _wur_;
/* Clears MAC/VLAN (00:00:00:00:00:00, vlan 0, spoofchk on, trust off), rebinds the original driver
 * (or leaves the VF unbound if it had none), removes the state file and forgets the claim.
 * Unknown owner: 0. A VF gone from sysfs: the claim is dropped, 0. Netlink/rebind failures return
 * -errno and keep the claim so the caller can retry. */
int sriov_release(Sriov *s, const char *owner);
SriovVf *sriov_find(Sriov *s, const char *owner);
/* One VF as a walk through sysfs finds it: a VF of a pool's PF, or an allocation whose VF vanished. */
typedef struct SriovVfView {
        const char *resource, *pf, *pci;
        unsigned index;
        const char *driver, *netdev; /* "" when unbound / not on a net driver (and for a vanished VF) */
        const SriovVf *claim;        /* the VF's allocation, NULL when it has none */
} SriovVfView;

/* A pool's VFs as counted by a walk through sysfs. */
typedef struct SriovPoolStats {
        const char *resource;
        bool bind_vfio;
        unsigned total, free, allocated, unusable;
} SriovPoolStats;

/* Iteration: return < 0 from cb to stop (that value is returned). cb must neither allocate nor release. */
typedef int (*sriov_vf_cb)(const SriovVfView *vf, void *userdata);
typedef int (*sriov_pool_cb)(const SriovPoolStats *st, void *userdata);
/* Every VF of every pool's PFs (in pool, PF, index order), then every allocation whose VF vanished: the
 * "vfs" of sriov_dump(). */
int sriov_foreach_vf(Sriov *s, sriov_vf_cb cb, void *userdata);
/* The counts of every pool, in config order: the "pools" of sriov_dump() without "pfs". */
int sriov_foreach_pool(Sriov *s, sriov_pool_cb cb, void *userdata);
/* {"pools":[{resource, bindVfio, total, free, allocated, unusable, pfs:[{name, totalvfs, numvfs,
 *  error?}]}], "vfs":[{pci, pf, index, resource, owner, driver, netdev, mac, vlan, vanished}]} */
json_t *sriov_dump(Sriov *s);

/* netd config "sriovPools": [{"resourceName": "...", "pfs": ["ens1f0"], "bindVfio": true}]. */
int sriov_pools_parse(json_t *arr, SriovPoolConfig **ret, size_t *ret_n, KvErr *e) _wur_;
