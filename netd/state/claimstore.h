/* SPDX-License-Identifier: Apache-2.0 */
/* The cluster-wide claim authority: which node holds which (network, key) claim and its addresses.
 *
 * Every node's netd keeps its own IPAM (netd/ipam/ipam.h) and, when configured with `clusterClaims`, asks
 * this store before an address or a VM claim becomes its own. The store guarantees:
 *   - an address of a network belongs to at most one claim key cluster-wide;
 *   - a claim has one holder node; a second node may hold it at the same time only as the target of
 *     a migration in progress (record.target), and then only one such target;
 *   - a VM claim whose holder has no attachment left (attached = false) may be taken over by any node.
 *
 * Two backends implement it (ClaimStoreBackend; claimstore-priv.h):
 *
 * "dir": a directory every node can reach (on one machine any directory; all simulated nodes share the
 * filesystem). Every operation runs under flock(DIR/lock) and is a few small file writes:
 *   DIR/claims/<sanitized key>-<16 hex>.json   {"version":1,"network","key","ips":[...],"mac","holder",
 *                                             "attached","target","targetReady","updated"}
 *   DIR/addrs/<netdir>/<address>              the record file name holding that address
 *
 * "kube": objects of the cluster-scoped CRD networkclaims.kvnet.io/v1alpha1 (kind NetworkClaim) on a
 * Kubernetes API server: one object per claim, one per address (created if absent: 409 AlreadyExists means
 * taken), one per node (its underlay address); every change is an update with the object's
 * resourceVersion, so two nodes can never both hold one. Requests are blocking with a bounded timeout
 * (docs/multinode.md). */
#pragma once

#include <jansson.h>

#include "common/addr.h"
#include "common/kverr.h"

#define CS_MAX_ADDRS 4
#define CS_NODE_MAX 64

typedef struct CsRecord {
        char network[128];
        char key[320];
        size_t n_addrs;
        KvPrefix addrs[CS_MAX_ADDRS];
        uint8_t mac[6];
        char holder[CS_NODE_MAX]; /* "" = nobody (the holder released it during a migration) */
        bool attached;            /* the holder has an attachment for it */
        char target[CS_NODE_MAX]; /* node preparing a migration, "" if none */
        bool target_ready;        /* the target forwards the VM's packets into its paused datapath (the source
                                   * may send them there from the switchover on: docs/migration.md) */
        uint64_t updated_usec;
} CsRecord;

typedef struct ClaimStore ClaimStore;

typedef enum ClaimStoreBackend {
        CLAIMSTORE_DIR,
        CLAIMSTORE_KUBE,
        _CLAIMSTORE_BACKEND_MAX,
        _CLAIMSTORE_BACKEND_INVALID = -EINVAL,
} ClaimStoreBackend;

const char *claimstore_backend_to_string(ClaimStoreBackend b);
ClaimStoreBackend claimstore_backend_from_string(const char *s);

typedef struct ClaimStoreConfig {
        ClaimStoreBackend backend;
        char *dir;          /* dir: the shared directory */
        bool durable;       /* dir: fsync every write */
        char *kubeconfig;   /* kube: NULL = $KUBECONFIG, in-cluster, ~/.kube/config (kube_config_load) */
        unsigned timeout_ms; /* kube: bound of every request; dir: of the wait for the lock; 0 = 10000 */
} ClaimStoreConfig;

/* netd's config value of 'clusterClaims': "/dir" (the dir backend, as before), or
 * {"backend": "dir", "dir": "/dir"} or {"backend": "kube", "kubeconfig": "/path", "timeoutMs": N}. Errors
 * name the key and the value. Free with claimstore_config_done(). */
int claimstore_config_from_json(json_t *v, ClaimStoreConfig *ret, KvErr *e) _wur_;
void claimstore_config_done(ClaimStoreConfig *c);

/* Opens the store. node: this node's name, 1..63 of [A-Za-z0-9_.-]. */
int claimstore_new(const ClaimStoreConfig *cfg, const char *node, ClaimStore **ret, KvErr *e) _wur_;
/* The dir backend: opens (creates) the store directory. */
int claimstore_open(const char *dir, const char *node, bool durable, ClaimStore **ret, KvErr *e) _wur_;
ClaimStore *claimstore_free(ClaimStore *cs);
const char *claimstore_node(const ClaimStore *cs);
ClaimStoreBackend claimstore_backend(const ClaimStore *cs);

/* 1 and *ret filled when a record exists, 0 when not, < 0 on I/O error. */
int claimstore_get(ClaimStore *cs, const char *network, const char *key, CsRecord *ret) _wur_;
/* True if 'a' in 'network' is recorded for a key other than 'key' (for IPAM's free-address search).
 * On an I/O error the address counts as taken. */
bool claimstore_addr_taken(ClaimStore *cs, const char *network, const KvAddr *a, const char *key);

/* This node takes (or refreshes) the claim: addresses and MAC as given, holder = this node, attached.
 * Allowed when there is no record, when this node holds it, or when the holder has no attachment and no
 * migration is in progress (take-over). An address held by another key → KV_ERR_ADDRESS_IN_USE naming the
 * key and its holder; a claim attached on another node → KV_ERR_ADDRESS_IN_USE (-EBUSY) "held by node X".
 * Addresses the record held before and no longer lists are freed. */
int claimstore_take(ClaimStore *cs, const char *network, const char *key, const KvPrefix *addrs, size_t n_addrs,
                    const uint8_t mac[6], KvErr *e) _wur_;
/* This node becomes the migration target of a claim held by another node (idempotent). Errors: no record
 * (-ENOENT), this node is the holder (-EALREADY), another target is already preparing (-EBUSY). */
int claimstore_begin_migration(ClaimStore *cs, const char *network, const char *key, KvErr *e) _wur_;
/* The migration target (this node) says whether it accepts the VM's packets before the switch (record.target_ready).
 * -EPERM when this node is not the target. */
int claimstore_set_target_ready(ClaimStore *cs, const char *network, const char *key, bool ready, KvErr *e) _wur_;
/* The migration target (this node) becomes the holder, attached; the target mark is cleared. Idempotent
 * when this node already holds it. -EPERM when this node is neither. */
int claimstore_finish_migration(ClaimStore *cs, const char *network, const char *key, KvErr *e) _wur_;
/* This node stops being the target (no-op if it is not). A record left without holder is deleted. */
int claimstore_abort_migration(ClaimStore *cs, const char *network, const char *key) _wur_;
/* The holder (this node) keeps the claim but has no attachment for it any more. No-op otherwise. */
int claimstore_detach(ClaimStore *cs, const char *network, const char *key) _wur_;
/* This node lets go of the claim: as holder without a migration in progress the record and its addresses
 * are deleted (1); as holder during a migration the holder is cleared and the target will finish or abort
 * (1); as target, like claimstore_abort_migration (1); otherwise nothing (0). */
int claimstore_release(ClaimStore *cs, const char *network, const char *key) _wur_;

/* Node registry (dir: DIR/nodes/<node>.json; kube: a NetworkClaim per node): the node's underlay address, for the source's redirect to the
 * migration target. claimstore_set_node_address() records this node's; _node_address() looks one up
 * (-ENOENT when the node registered none). */
/* A failed registration (the store unreachable) is tried again before every later operation that goes to the store;
 * claimstore_dump()'s "nodeAddressPending" says whether it is still due. */
int claimstore_set_node_address(ClaimStore *cs, const KvAddr *a) _wur_;
int claimstore_node_address(ClaimStore *cs, const char *node, KvAddr *ret) _wur_;

typedef int (*claimstore_cb)(const CsRecord *r, void *userdata);
/* Every record (order unspecified); stop early by returning < 0 from cb. Unreadable files are skipped. */
int claimstore_foreach(ClaimStore *cs, claimstore_cb cb, void *userdata) _wur_;
json_t *claimstore_record_to_json(const CsRecord *r);
/* {"node","backend","dir"|"kubeconfig"+"server","claims":[record...]} */
json_t *claimstore_dump(ClaimStore *cs);
