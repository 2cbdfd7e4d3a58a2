/* SPDX-License-Identifier: Apache-2.0 */
/* The claim store's backends (claimstore.h): what every backend implements, and the decisions they share.
 *
 * claimstore.c holds the rules (who may take, begin, finish, abort, detach, release: the decide_* steps)
 * and dispatches through the ops table; a backend only reads and writes records atomically:
 *   dir   claimstore-dir.c   a read-decide-write step under flock(DIR/lock)
 *   kube  claimstore-kube.c  NetworkClaim objects; a read-decide-write step is a GET and an update with
 *                            the object's resourceVersion (409 Conflict: read again, bounded) */
#pragma once

#include "netd/state/claimstore.h"

/* the bound of a claim store operation's wait (kube: each request; dir: the lock) when the config names none */
#define CS_TIMEOUT_MS_DEFAULT 10000

/* One read-decide-write step: decide() sees the current record (found or not) and returns < 0 (error,
 * nothing written), CS_KEEP, CS_WRITE (rec as modified) or CS_DELETE. A backend may call it more than once
 * (each time with the record read again) when a concurrent writer got there first. */
enum { CS_KEEP = 0, CS_WRITE = 1, CS_DELETE = 2 };
typedef int (*cs_decide_fn)(ClaimStore *cs, CsRecord *rec, bool found, const char *network, const char *key,
                            KvErr *e);

typedef struct ClaimStoreOps {
        void (*done)(ClaimStore *cs);
        /* 1 found, 0 absent, < 0 error */
        int (*get)(ClaimStore *cs, const char *network, const char *key, CsRecord *ret);
        bool (*addr_taken)(ClaimStore *cs, const char *network, const KvAddr *a, const char *key);
        /* network, key and n_addrs checked by the caller; the rules are cs_take_decide() */
        int (*take)(ClaimStore *cs, const char *network, const char *key, const KvPrefix *addrs, size_t n_addrs,
                    const uint8_t mac[6], KvErr *e);
        /* decide's error, an I/O error, 1 when the record was written or deleted, 0 when kept */
        int (*update)(ClaimStore *cs, const char *network, const char *key, cs_decide_fn decide, KvErr *e);
        int (*set_node_address)(ClaimStore *cs, const KvAddr *a);
        int (*node_address)(ClaimStore *cs, const char *node, KvAddr *ret);
        int (*foreach)(ClaimStore *cs, claimstore_cb cb, void *userdata);
        /* where the store is, for the dump: {"dir": ...} or {"kubeconfig": ..., "server": ...} */
        int (*describe)(ClaimStore *cs, json_t *dump);
} ClaimStoreOps;

struct ClaimStore {
        const ClaimStoreOps *ops;
        ClaimStoreBackend backend;
        char node[CS_NODE_MAX];
        void *data; /* the backend's */
        /* this node's address, not yet registered (the store could not be reached): tried again before every
         * operation that goes to the store */
        bool addr_pending;
        KvAddr pending_addr;
};

extern const ClaimStoreOps claimstore_dir_ops;
extern const ClaimStoreOps claimstore_kube_ops;

int claimstore_dir_init(ClaimStore *cs, const ClaimStoreConfig *cfg, KvErr *e) _wur_;
int claimstore_kube_init(ClaimStore *cs, const ClaimStoreConfig *cfg, KvErr *e) _wur_;

bool claimstore_node_name_ok(const char *s);
/* A record as stored (the dir backend's file, the kube backend's spec without "version"/"updated"). */
int claimstore_record_from_json(json_t *o, CsRecord *ret) _wur_;
/* Whether this node may take the claim given its current record: 0, or KV_ERR_ADDRESS_IN_USE -EBUSY naming
 * the holder. */
int cs_take_check(ClaimStore *cs, const CsRecord *old, bool found, const char *network, const char *key, KvErr *e) _wur_;
/* The record a successful take writes. */
void cs_take_record(ClaimStore *cs, const CsRecord *old, bool found, const char *network, const char *key,
                    const KvPrefix *addrs, size_t n_addrs, const uint8_t mac[6], CsRecord *ret);
bool cs_has_addr(const KvPrefix *addrs, size_t n, const KvAddr *a);
/* A MAC as the MAC index names it (dir: a file name; kube: part of an object name): 12 lowercase hex digits. */
void cs_mac_hex(const uint8_t mac[6], char buf[static 13]);
