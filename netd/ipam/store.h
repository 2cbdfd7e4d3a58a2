/* SPDX-License-Identifier: Apache-2.0 */
/* IPAM persistence (store.c): state_dir/ipam/<netdir>/pool.json per pool, every claim in the journal
 * state_dir/ipam/claims.journal, and the records' on-disk form.
 *
 * The dependency goes one way: IPAM (ipam.c) uses the store; the store knows the records it keeps
 * (IpamConfig, IpamClaim from netd/ipam/ipam.h) but nothing of IPAM's pools, indexes and allocation state
 * (netd/ipam/ipam-priv.h). What it loads it hands to IPAM through the IpamStoreLoader callbacks. */
#pragma once

#include <limits.h>

#include "netd/ipam/ipam.h"
#include "netd/state/journal.h"

#define IPAM_FNAME_MAX 96 /* a claim's name (ipam_claim_filename()), including the NUL */

typedef struct IpamStore {
        char dir[PATH_MAX]; /* state_dir/ipam */
        bool durable;
        Journal *journal; /* claims: state_dir/ipam/claims.journal */
} IpamStore;

/* Directory name of a network under state_dir/ipam/ (the name itself when safe). */
void ipam_netdir_name(const char *network, char *buf, size_t len);
int ipam_pool_dir(const IpamStore *st, const char *network, char *buf, size_t len);
/* A claim's name: "<sanitized key prefix>-<16 hex FNV-1a of network+key>.json". */
void ipam_claim_filename(const char *network, const char *key, char *buf, size_t len);

/* Writes <dir>/pool.json (dir: the pool's directory, created if needed). */
int ipam_store_pool(const IpamStore *st, const char *network, const char *dir, const IpamConfig *cfg);
/* Puts / deletes the claim fname of the pool in directory pool_dir into / from the claims journal. */
int ipam_store_claim(const IpamStore *st, const char *pool_dir, const char *fname, const IpamClaim *c);
int ipam_unstore_claim(const IpamStore *st, const char *pool_dir, const char *fname);
int ipam_claim_from_json(json_t *o, const char *ctx, IpamClaim *ret, KvErr *e);

typedef struct IpamStoreLoader {
        /* A usable pool.json: the network's config, dir its directory. < 0 stops the load. */
        int (*pool)(const char *network, const char *dir, const IpamConfig *cfg, void *userdata);
        /* A claim that parsed and lies under its network's directory dir (NULL: the path is too long):
         * 1 taken, 0 refused with the reason in why, < 0 stops the load. */
        int (*claim)(const IpamClaim *c, const char *dir, const char *fname, char *why, size_t why_len,
                     void *userdata);
        /* Something skipped: "<where>: <msg>". < 0 (out of memory) stops the load. */
        int (*warning)(const char *where, const char *msg, void *userdata);
        void *userdata;
} IpamStoreLoader;

/* Reads every pool.json (directories in name order), then the claims journal, then the claim files of the
 * layout before the journal (<netdir>/claims/<name>.json: those the journal does not have are taken, written
 * to it, and deleted once it holds them durably). Returns the number of skipped records (each one warned),
 * < 0 with e filled when the state cannot be read. */
int ipam_store_load(const IpamStore *st, const IpamStoreLoader *l, KvErr *e) _wur_;
