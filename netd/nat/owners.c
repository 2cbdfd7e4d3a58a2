/* SPDX-License-Identifier: Apache-2.0 */
/* Subnet ownership for NAT backends (owners.h). */
#include "netd/nat/owners.h"

#include "common/array.h"

bool nat_prefix_eq(const KvPrefix *a, const KvPrefix *b) {
        KvPrefix x = kv_prefix_network(a), y = kv_prefix_network(b);
        return x.prefixlen == y.prefixlen && kv_addr_equal(&x.addr, &y.addr);
}

bool nat_prefix_repeats(const KvPrefix *v, size_t j) {
        for (size_t k = 0; k < j; k++)
                if (nat_prefix_eq(&v[k], &v[j]))
                        return true;
        return false;
}

static NatOwner *owner_find(const NatOwners *o, const char *id) {
        uint64_t h = kv_hash64(id, strlen(id));
        for (size_t i = 0; i < o->n; i++)
                if (o->v[i].id_hash == h && streq(o->v[i].id, id))
                        return &o->v[i];
        return NULL;
}

const NatOwner *nat_owners_find(const NatOwners *o, const char *id) {
        return owner_find(o, id);
}

static NatSubnetRef *ref_find(const NatOwners *o, const KvPrefix *p) {
        for (size_t i = 0; i < o->n_refs; i++)
                if (nat_prefix_eq(&o->refs[i].net, p))
                        return &o->refs[i];
        return NULL;
}

/* Does ow name p (ow may be NULL)? */
static bool owner_names(const NatOwner *ow, const KvPrefix *p) {
        for (size_t j = 0; ow && j < ow->n_subnets; j++)
                if (nat_prefix_eq(&ow->subnets[j], p))
                        return true;
        return false;
}

/* +1 / -1 for every distinct subnet of ow. */
static int ref_subnets(NatOwners *o, const NatOwner *ow, int delta) {
        for (size_t j = 0; j < ow->n_subnets; j++) {
                if (nat_prefix_repeats(ow->subnets, j))
                        continue;
                NatSubnetRef *sr = ref_find(o, &ow->subnets[j]);
                if (delta < 0) {
                        if (sr && sr->refs > 0 && --sr->refs == 0)
                                *sr = o->refs[--o->n_refs];
                        continue;
                }
                if (!sr) {
                        int r = ARRAY_GROW(o->refs, o->cap_refs, o->n_refs + 1);
                        if (r < 0)
                                return r;
                        sr = &o->refs[o->n_refs++];
                        *sr = (NatSubnetRef){ .net = kv_prefix_network(&ow->subnets[j]) };
                }
                sr->refs++;
        }
        return 0;
}

unsigned nat_owners_refs(const NatOwners *o, const KvPrefix *p, const char *except) {
        NatSubnetRef *sr = ref_find(o, p);
        unsigned n = sr ? sr->refs : 0;
        if (n > 0 && except && owner_names(owner_find(o, except), p))
                n--;
        return n;
}

void nat_owners_clear(NatOwners *o) {
        for (size_t i = 0; i < o->n; i++)
                free(o->v[i].id);
        free(o->v);
        free(o->refs);
        *o = (NatOwners){};
}

int nat_owners_set(NatOwners *o, const NatEndpoint *ep) {
        NatOwner *ow = owner_find(o, ep->id);
        if (!ow) {
                char *id = strdup(ep->id);
                if (!id)
                        return -ENOMEM;
                int r = ARRAY_GROW(o->v, o->cap, o->n + 1);
                if (r < 0) {
                        free(id);
                        return r;
                }
                ow = &o->v[o->n++];
                *ow = (NatOwner){ .id = id, .id_hash = kv_hash64(id, strlen(id)) };
        } else
                IGNORE_RESULT(ref_subnets(o, ow, -1));
        ow->n_subnets = ep->n_subnets;
        memcpy(ow->subnets, ep->subnets, ep->n_subnets * sizeof ep->subnets[0]);
        return ref_subnets(o, ow, +1);
}

void nat_owners_remove(NatOwners *o, const char *id) {
        NatOwner *ow = owner_find(o, id);
        if (!ow)
                return;
        IGNORE_RESULT(ref_subnets(o, ow, -1));
        free(ow->id);
        *ow = o->v[--o->n];
}
