/* SPDX-License-Identifier: Apache-2.0 */
/* Subnet ownership for NAT backends (nat.h): which endpoints name which of the shared "do not
 * masquerade towards" subnets, so that a backend adds a subnet with its first owner and removes it
 * with its last. In memory only; nat_sync rebuilds it. Subnets compare by their network prefix. */
#pragma once

#include "netd/nat/nat.h"

typedef struct NatOwner {
        char *id;
        uint64_t id_hash; /* compared before the string: a lookup runs on every ADD and DEL */
        KvPrefix subnets[NAT_MAX_SUBNETS];
        size_t n_subnets;
} NatOwner;

/* How many owners name a subnet. A node has a handful of subnets and thousands of owners: counting
 * here keeps an ADD or DEL independent of the number of endpoints. */
typedef struct NatSubnetRef {
        KvPrefix net;
        unsigned refs;
} NatSubnetRef;

typedef struct NatOwners {
        NatOwner *v;
        size_t n, cap;
        NatSubnetRef *refs;
        size_t n_refs, cap_refs;
} NatOwners;

/* Same network (address masked to the prefix length, and the same length)? */
bool nat_prefix_eq(const KvPrefix *a, const KvPrefix *b);
/* Does v[j] repeat one of v[0..j)? */
bool nat_prefix_repeats(const KvPrefix *v, size_t j);

/* NULL if id is not known. */
const NatOwner *nat_owners_find(const NatOwners *o, const char *id);
/* Owners other than 'except' (NULL: none) naming p. */
unsigned nat_owners_refs(const NatOwners *o, const KvPrefix *p, const char *except);
/* Records (or replaces) the subnets of ep->id. */
int nat_owners_set(NatOwners *o, const NatEndpoint *ep) _wur_;
void nat_owners_remove(NatOwners *o, const char *id);
void nat_owners_clear(NatOwners *o);
