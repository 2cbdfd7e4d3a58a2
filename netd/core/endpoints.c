/* SPDX-License-Identifier: Apache-2.0 */
/* netd core: the attachments by id (a chained hash table), and their records. */
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"
#include "netd/core/netd-priv.h"

static size_t ep_bucket(const Manager *m, const char *id) {
        return (size_t) (kv_hash64(id, strlen(id)) % m->n_buckets);
}

Endpoint *ep_find(Manager *m, const char *id) {
        for (EpNode *n = m->ep_buckets[ep_bucket(m, id)]; n; n = n->next)
                if (streq(n->ep->id, id))
                        return n->ep;
        return NULL;
}

int ep_grow(Manager *m) {
        size_t nb = m->n_buckets ? m->n_buckets * 2 : 256;
        EpNode **b = calloc(nb, sizeof *b);
        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_buckets; i++) {
                EpNode *n = m->ep_buckets[i];
                while (n) {
                        EpNode *next = n->next;
                        size_t k = (size_t) (kv_hash64(n->ep->id, strlen(n->ep->id)) % nb);
                        n->next = b[k];
                        b[k] = n;
                        n = next;
                }
        }
        free(m->ep_buckets);
        m->ep_buckets = b;
        m->n_buckets = nb;
        return 0;
}

int ep_insert(Manager *m, Endpoint *ep) {
        if (m->n_endpoints + 1 > m->n_buckets) {
                int r = ep_grow(m);
                if (r < 0)
                        return r;
        }
        EpNode *n = calloc(1, sizeof *n);
        if (!n)
                return -ENOMEM;
        size_t k = ep_bucket(m, ep->id);
        n->ep = ep;
        n->next = m->ep_buckets[k];
        m->ep_buckets[k] = n;
        m->n_endpoints++;
        return 0;
}

/* Unlinks ep from the table (does not free it). */
void ep_unlink(Manager *m, Endpoint *ep) {
        EpNode **pp = &m->ep_buckets[ep_bucket(m, ep->id)];
        for (; *pp; pp = &(*pp)->next) {
                if ((*pp)->ep == ep) {
                        EpNode *n = *pp;
                        *pp = n->next;
                        free(n);
                        m->n_endpoints--;
                        return;
                }
        }
}

size_t count_key_users(Manager *m, const Endpoint *except, const char *network, const char *key) {
        size_t n = 0;
        EP_FOREACH(m, ep) {
                if (ep != except && streq(ep->network, network) && streq(ep->key, key))
                        n++;
        }
        return n;
}

int attach_request_lookup(Manager *m, json_t *args, const char *verb, AttachLookup *ret, KvErr *e) {
        int r = attach_request_parse(args, verb, false, &ret->req, e);
        if (r < 0)
                return r;
        r = endpoint_make_id(ret->req.network, ret->req.container_id, ret->req.ifname, ret->id, sizeof ret->id);
        if (r < 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, r, "%s: attachment id is too long", verb);
        ret->ep = ep_find(m, ret->id);
        return 0;
}

void derive_ifname(char *buf, const char *prefix, const char *id) {
        uint64_t h = kv_hash64(id, strlen(id));
        snprintf(buf, 16, "%s%08x", prefix, (unsigned) (h ^ (h >> 32)));
}

int manager_persist(Manager *m, const Endpoint *ep, KvErr *e) {
        int r = endpoint_save(m->ep_journal, ep, m->durable);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "netd: cannot write state for '%s'", ep->id);
        return 0;
}

int manager_ipv6_forwarding(Manager *m, const Endpoint *ep, KvErr *e) {
        if (m->ipv6_forwarding)
                return 0;
        bool v6 = false;
        for (size_t i = 0; i < ep->n_addrs; i++)
                v6 = v6 || ep->addrs[i].addr.family == AF_INET6;
        if (!v6)
                return 0;
        int r = link_keep_router_advertisements(e);
        if (r < 0 || (r = link_enable_forwarding_family(AF_INET6, e)) < 0)
                return r;
        m->ipv6_forwarding = true;
        log_notice("IPv6 forwarding on in the node's namespace (the first IPv6 attachment: '%s')", ep->id);
        return 0;
}

static bool ep_in_netns(const Endpoint *ep, const NetnsId *id) {
        NetnsId have = ep->netns_id;
        /* a record from before netnsId: the namespace its path names now */
        return (have.dev || have.ino || netns_id_of_path(ep->netns, &have) >= 0) && netns_id_equal(&have, id);
}

bool manager_netns_attached(Manager *m, const NetnsId *id) {
        EP_FOREACH(m, ep) {
                if (ep_in_netns(ep, id))
                        return true;
        }
        return false;
}

bool manager_vm_in_netns(Manager *m, const char *vm_namespace, const char *vm_name, const NetnsId *id) {
        EP_FOREACH(m, ep) {
                if (ep->kind == EP_KIND_VM && streq(ep->vm_namespace, vm_namespace) && streq(ep->vm_name, vm_name) &&
                    ep_in_netns(ep, id))
                        return true;
        }
        return false;
}
