/* SPDX-License-Identifier: Apache-2.0 */
/* IPAM's internals (pools, claims' indexes, allocation state), shared by netd/ipam/ipam.c and config.c and
 * reachable by tests. The store (netd/ipam/store.h) sits below them and never sees them. */
#pragma once

#include "netd/ipam/ipam.h"

typedef unsigned __int128 ipam_u128;

/* An address as an integer (IPv4 in the low 32 bits). */
static inline ipam_u128 ipam_addr_to_u128(const KvAddr *a) {
        ipam_u128 v = 0;
        size_t n = kv_addr_len(a->family);
        for (size_t k = 0; k < n; k++)
                v = (v << 8) | a->bytes[k];
        return v;
}

static inline KvAddr ipam_u128_to_addr(int family, ipam_u128 v) {
        KvAddr a = { .family = family };
        size_t n = kv_addr_len(family);
        for (size_t k = n; k-- > 0;) {
                a.bytes[k] = (uint8_t) (v & 0xff);
                v >>= 8;
        }
        return a;
}

/* Last address of the subnet (the IPv4 broadcast address). */
static inline ipam_u128 ipam_subnet_last(const KvPrefix *p) {
        unsigned bits = (unsigned) kv_addr_len(p->addr.family) * 8;
        unsigned host = bits - p->prefixlen;
        ipam_u128 net = ipam_addr_to_u128(&p->addr);
        ipam_u128 mask = host >= 128 ? ~(ipam_u128) 0 : (((ipam_u128) 1 << host) - 1);
        return net | mask;
}

static inline ipam_u128 ipam_u128_sat_add(ipam_u128 a, ipam_u128 b) {
        ipam_u128 s = a + b;
        return s < a ? ~(ipam_u128) 0 : s;
}

/* Decimal representation (buf of at least 40 bytes). */
static inline const char *ipam_u128_fmt(ipam_u128 v, char buf[static 40]) {
        char tmp[40];
        size_t n = 0;
        do {
                tmp[n++] = (char) ('0' + (int) (v % 10));
                v /= 10;
        } while (v);
        for (size_t k = 0; k < n; k++)
                buf[k] = tmp[n - 1 - k];
        buf[n] = '\0';
        return buf;
}

#include <limits.h>

#include "common/fileio.h"
#include "common/json-util.h"
#include "netd/ipam/store.h"

typedef struct Pool Pool;
typedef struct Entry Entry;

typedef struct AddrNode {
        struct AddrNode *next;
        Entry *entry; /* the address is entry->c.addrs[this - entry->addr_nodes] */
} AddrNode;

struct Entry {
        IpamClaim c; /* first: an IpamClaim * handed out is its Entry */
        Pool *pool;
        char fname[IPAM_FNAME_MAX]; /* file name under <pool dir>/claims/ */
        Entry *next_key;
        AddrNode addr_nodes[IPAM_MAX_SETS];
        Entry *prev, *next; /* pool's claim list */
        int set_idx[IPAM_MAX_SETS]; /* set allocating addrs[k] (counted in its 'used'), -1 if none */
};

/* Allocation state of one range set, derived from the config. */
typedef struct SetState {
        int family;
        size_t n_ranges;
        ipam_u128 start[IPAM_MAX_RANGES], end[IPAM_MAX_RANGES];
        uint8_t prefixlen[IPAM_MAX_RANGES];
        ipam_u128 *reserved; /* sorted, unique: network/broadcast, gateways, excluded */
        size_t n_reserved;
        ipam_u128 total; /* addresses in the ranges (saturated) */
        ipam_u128 capacity; /* of which allocatable */
        ipam_u128 used; /* claims holding an allocatable address of this set */
        bool has_cursor;
        size_t cursor_range;
        ipam_u128 cursor; /* last address handed out */
} SetState;

struct Pool {
        char network[IPAM_NETWORK_MAX];
        char dir[PATH_MAX];
        bool configured;
        IpamConfig cfg;
        SetState sets[IPAM_MAX_SETS];
        Entry **by_key;
        size_t key_buckets, n_claims;
        AddrNode **by_addr;
        size_t addr_buckets, n_addrs;
        Entry *head, *tail;
        Pool *next;
};

struct Ipam {
        IpamStore store; /* state_dir/ipam: pool.json files and the claims journal */
        Pool *pools, **pools_tail;
        char **warnings;
        size_t n_warnings, cap_warnings;
        ipam_addr_taken_cb taken_cb;
        void *taken_ud;
};

/* ipam.c */
uint64_t ipam_now_usec(void);
Entry *ipam_pool_find_key(Pool *p, const char *key);
Entry *ipam_pool_find_addr(Pool *p, const KvAddr *a);
int ipam_set_state_init(const IpamConfig *cfg, size_t s, SetState *ret);
void ipam_set_state_done(SetState *ss);
Pool *ipam_pool_get(Ipam *i, const char *network);
Pool *ipam_pool_add(Ipam *i, const char *network, const char *dir);
int ipam_pool_insert(Pool *p, Entry *e);
void ipam_pool_apply(Pool *p, const IpamConfig *cfg, SetState new_sets[IPAM_MAX_SETS]);
void ipam_pool_restore_cursors(Pool *p);
void ipam_warnings_clear(Ipam *i);
