/* SPDX-License-Identifier: Apache-2.0 */
/* netd's IPAM: named pools configured from the CNI "ipam" object (host-local's format without "type"),
 * claims keyed by an identity string ("vm/<ns>/<name>/<iface>" or "ctr/<containerID>/<ifname>").
 *
 * On disk (state_dir/ipam/):
 *   <netdir>/pool.json              {"version":1,"network":"...","config":{canonical ipam config}}
 *   <netdir>/claims/<name>.json     one file per claim, written atomically before ipam_claim() returns
 * <netdir> is the network name when it is made of [A-Za-z0-9_.-] (at most 64 chars, not "."/".."),
 * else a sanitized prefix plus "-" and the FNV-1a hex hash of the name; claim file names are always
 * "<sanitized key prefix>-<16 hex FNV-1a of network+key>.json". The real names are kept inside the files.
 * Leftover "*.tmp.*" files (interrupted atomic writes) are ignored on load.
 *
 * Allocation is host-local's round robin: per range set, the next free address after the last one
 * handed out (after a restart: after the newest claim's address). Used addresses live in a hash table per
 * pool, so an allocation neither scans all claims nor touches more than one file. */
#pragma once

#include <jansson.h>

#include "common/addr.h"
#include "common/kverr.h"

#define IPAM_MAX_SETS 4 /* range sets (one address per set per claim; typically one v4 + one v6) */
#define IPAM_MAX_RANGES 8 /* ranges per set */
#define IPAM_MAX_ROUTES 32
#define IPAM_MAX_EXCLUDE 256
#define IPAM_NETWORK_MAX 128 /* sizeof IpamClaim.network, including the NUL */
#define IPAM_KEY_MAX 320 /* sizeof IpamClaim.key, including the NUL */

typedef struct IpamRange {
        KvPrefix subnet; /* network address (host bits cleared) */
        KvAddr start, end, gateway;
        bool has_gateway;
} IpamRange;

typedef struct IpamRangeSet {
        IpamRange ranges[IPAM_MAX_RANGES];
        size_t n_ranges;
} IpamRangeSet;

typedef struct IpamRoute {
        KvPrefix dst;
        KvAddr gw;
        bool has_gw;
} IpamRoute;

typedef struct IpamConfig {
        IpamRangeSet sets[IPAM_MAX_SETS];
        size_t n_sets;
        IpamRoute routes[IPAM_MAX_ROUTES];
        size_t n_routes;
        KvAddr exclude[IPAM_MAX_EXCLUDE];
        size_t n_exclude;
} IpamConfig;

/* Parses the CNI "ipam" object ('ctx' is its path for messages, e.g. "ipam").
 * Accepts "ranges": [[{subnet, rangeStart, rangeEnd, gateway}]], host-local's legacy flat form
 * (subnet/rangeStart/rangeEnd/gateway at the top level; becomes the first range set when both are given),
 * "routes": [{dst, gw}], "exclude": [address or CIDR (expanded, at most IPAM_MAX_EXCLUDE addresses)].
 * "type", when present, must be "kvnet". Unknown fields are ignored (host-local's "dataDir" etc.).
 * Defaults as host-local: gateway = network+1, rangeStart = network+1, rangeEnd = broadcast-1 (v4) or the
 * last address (v6). Subnets smaller than /30 (v4) or /126 (v6) are rejected. Errors: KV_ERR_INVALID_CONFIG
 * naming the field path and value. *ret is untouched on failure. */
int ipam_config_parse(json_t *ipam, const char *ctx, IpamConfig *ret, KvErr *e) _wur_;
/* Canonical form (every default spelled out), parseable by ipam_config_parse(). NULL on ENOMEM. */
json_t *ipam_config_to_json(const IpamConfig *c);
bool ipam_config_equal(const IpamConfig *a, const IpamConfig *b);

typedef enum IpamClaimState {
        IPAM_CLAIM_ACTIVE,
        IPAM_CLAIM_IDLE, /* VM claim with no attachment, kept for the VM */
        IPAM_CLAIM_MIGRATING,
} IpamClaimState;

const char *ipam_claim_state_to_string(IpamClaimState st);
int ipam_claim_state_from_string(const char *s, IpamClaimState *ret) _wur_;

typedef struct IpamClaim {
        char network[IPAM_NETWORK_MAX];
        char key[IPAM_KEY_MAX];
        size_t n_addrs;
        KvPrefix addrs[IPAM_MAX_SETS]; /* address with the subnet's prefix length, in range set order */
        KvAddr gateways[IPAM_MAX_SETS];
        bool has_gateway[IPAM_MAX_SETS];
        uint8_t mac[6];
        IpamClaimState state;
        uint64_t created_usec, updated_usec; /* CLOCK_REALTIME */
        char owner[256]; /* "containerID/ifname" of the attachment holding it, "" if idle */
} IpamClaim;

typedef struct IpamRequest {
        KvAddr ips[IPAM_MAX_SETS]; /* each must lie in a different range set */
        size_t n_ips;
        uint8_t mac[6];
        bool has_mac;
        const char *owner; /* NULL = "" */
} IpamRequest;

typedef struct Ipam Ipam;

/* Creates state_dir/ipam/ if needed. durable: fsync files and directories. */
int ipam_new(const char *state_dir, bool durable, Ipam **ret) _wur_;
/* Switches fsync of later writes on or off (netd makes claims durable through its endpoint records,
 * see docs/ARCHITECTURE.md). */
void ipam_set_durable(Ipam *i, bool durable);
Ipam *ipam_free(Ipam *i);
/* The claims journal (for status reports). */
struct Journal *ipam_journal(Ipam *i);

/* Loads every pool and claim from state_dir/ipam/ into an empty Ipam (-EBUSY otherwise).
 * Returns < 0 (and fills *e) only when the state directory itself cannot be read. A file that cannot be
 * used (unreadable, malformed, wrong network, address outside the pool, address or key already held by
 * another claim file) is skipped and left in place on disk, the others are loaded; the return value is the
 * number of skipped files and each one is described by ipam_load_warning() (and in ipam_dump()).
 * Claims whose pool.json is missing or corrupt are kept in an unconfigured pool until ipam_pool_ensure(). */
int ipam_load(Ipam *i, KvErr *e) _wur_;
size_t ipam_n_load_warnings(Ipam *i);
const char *ipam_load_warning(Ipam *i, size_t idx); /* "<file>: <reason>"; NULL past the end */

/* Registers or updates the pool of 'network' and persists its config (no I/O when unchanged). If the config
 * changed and an existing claim's address would not be allocatable under the new one (outside every range,
 * a gateway, the network/broadcast address or excluded) → KV_ERR_INVALID_CONFIG naming the claim. */
int ipam_pool_ensure(Ipam *i, const char *network, const IpamConfig *cfg, KvErr *e) _wur_;
const IpamConfig *ipam_pool_config(Ipam *i, const char *network); /* NULL if unknown or unconfigured */

/* Claims addresses and a MAC for 'key' in 'network' (the pool must be configured).
 * An existing claim for the key is returned as is (*ret_existing = true), made ACTIVE with req->owner as
 * owner; a requested IP or MAC that differs from the claim's → KV_ERR_ADDRESS_IN_USE naming both.
 * Otherwise one address per range set: the requested one for that set (must be inside one of its ranges →
 * else KV_ERR_INVALID_CONFIG; not reserved → KV_ERR_INVALID_CONFIG; not held → KV_ERR_ADDRESS_IN_USE naming
 * the holder) or the next free one (KV_ERR_IPAM_EXHAUSTED when none). MAC: req->mac, else derived from
 * network+key (02:xx:xx:xx:xx:xx). The claim file is written (durably if so configured) before returning.
 * *ret stays owned by the Ipam, valid until released. */
int ipam_claim(Ipam *i, const char *network, const char *key, const IpamRequest *req, IpamClaim **ret,
               bool *ret_existing, KvErr *e) _wur_;
/* Sets state and (unless NULL) owner, persists. The claim is unchanged on failure. */
int ipam_set_state(Ipam *i, IpamClaim *c, IpamClaimState st, const char *owner, KvErr *e) _wur_;
/* Removes the claim and its file: 1 if released, 0 if absent, < 0 on error (claim kept). */
int ipam_release(Ipam *i, const char *network, const char *key);
IpamClaim *ipam_find(Ipam *i, const char *network, const char *key);
IpamClaim *ipam_find_addr(Ipam *i, const char *network, const KvAddr *a);

/* An allocator outside this node (the cluster claim store) can veto addresses: the free-address search skips
 * addresses for which cb returns true, and a requested address for which it returns true fails with
 * KV_ERR_ADDRESS_IN_USE. cb NULL = no filter. */
typedef bool (*ipam_addr_taken_cb)(const char *network, const KvAddr *a, const char *key, void *userdata);
void ipam_set_addr_filter(Ipam *i, ipam_addr_taken_cb cb, void *userdata);

/* Derived MAC for network+key: locally administered unicast 02:xx:xx:xx:xx:xx. */
void ipam_derive_mac(const char *network, const char *key, uint8_t ret[6]);

/* Iteration: return < 0 from cb to stop (that value is returned). The callback may release the claim it
 * is given, but no other claim. */
typedef int (*ipam_claim_cb)(IpamClaim *c, void *userdata);
int ipam_foreach_claim(Ipam *i, const char *network /* NULL = all */, ipam_claim_cb cb, void *userdata);
/* The number of claims (the length of ipam_dump()'s "claims"). */
size_t ipam_count_claims(Ipam *i, const char *network /* NULL = all */);

/* {"pools":[{"network","configured","config":{...},"sets":[{"subnet","ranges":[{"subnet","start","end"}],
 *   "size","used","free"}]}],
 *  "claims":[{"network","key","ips":["10.88.0.2/24",...],"gateways":["10.88.0.1"|null,...],"mac",
 *   "state":"active|idle|migrating","owner","created","updated"}],
 *  "loadWarnings":[...]}
 * Sizes are integers, or decimal strings when above 2^53 (IPv6). created/updated in µs since the epoch. */
json_t *ipam_dump(Ipam *i);
/* ipam_dump()'s "pools" alone (no claim is serialised: for a scrape of the metrics). */
json_t *ipam_dump_pools(Ipam *i);
json_t *ipam_claim_to_json(const IpamClaim *c);
