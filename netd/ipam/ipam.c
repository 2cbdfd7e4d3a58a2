/* SPDX-License-Identifier: Apache-2.0 */
/* netd's IPAM: pools, claims, allocation. Persistence lives in ipam-store.c. */
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include "common/array.h"
#include "common/event.h"
#include "common/log.h"
#include "netd/ipam/ipam-priv.h"

/* ---- small helpers ---- */

uint64_t ipam_now_usec(void) {
        return realtime_usec();
}

void ipam_derive_mac(const char *network, const char *key, uint8_t ret[6]) {
        uint64_t h = kv_hash64(network, strlen(network) + 1); /* includes the NUL as separator */
        const unsigned char *k = (const unsigned char *) key;
        for (; *k; k++) {
                h ^= *k;
                h *= 1099511628211ULL;
        }
        ret[0] = 0x02;
        for (int b = 1; b < 6; b++)
                ret[b] = (uint8_t) (h >> (8 * (b - 1)));
}

static bool claim_is_entry(const IpamClaim *c) {
        return c != NULL;
}

/* ---- hash tables (chained, power-of-two buckets) ---- */

static uint64_t addr_hash(const KvAddr *a) {
        return kv_hash64(a->bytes, kv_addr_len(a->family)) ^ (uint64_t) a->family;
}

static uint64_t key_hash(const char *key) {
        return kv_hash64(key, strlen(key));
}

static int table_grow(void ***buckets, size_t *n_buckets, size_t n_items) {
        if (*buckets && n_items < *n_buckets)
                return 0;
        size_t nb = *n_buckets ? *n_buckets * 2 : 64;
        void **b = calloc(nb, sizeof *b);
        if (!b)
                return -ENOMEM;
        *buckets = (void **) b; /* the caller rehashes from its old array */
        *n_buckets = nb;
        return 1;
}

static void key_insert_nogrow(Pool *p, Entry *e) {
        size_t h = key_hash(e->c.key) & (p->key_buckets - 1);
        e->next_key = p->by_key[h];
        p->by_key[h] = e;
}

static void addr_insert_nogrow(Pool *p, AddrNode *n) {
        size_t h = addr_hash(&n->entry->c.addrs[n - n->entry->addr_nodes].addr) & (p->addr_buckets - 1);
        n->next = p->by_addr[h];
        p->by_addr[h] = n;
}

static int pool_tables_reserve(Pool *p, size_t more_addrs) {
        Entry **okeys = p->by_key;
        size_t okn = p->key_buckets;
        void **nb = (void **) p->by_key;
        int r = table_grow(&nb, &p->key_buckets, p->n_claims + 1);
        if (r < 0)
                return r;
        if (r > 0) {
                p->by_key = (Entry **) nb;
                for (size_t b = 0; b < okn; b++)
                        for (Entry *e = okeys[b], *next; e; e = next) {
                                next = e->next_key;
                                key_insert_nogrow(p, e);
                        }
                free(okeys);
        }
        AddrNode **oaddrs = p->by_addr;
        size_t oan = p->addr_buckets;
        nb = (void **) p->by_addr;
        r = table_grow(&nb, &p->addr_buckets, p->n_addrs + more_addrs);
        if (r < 0)
                return r;
        if (r > 0) {
                p->by_addr = (AddrNode **) nb;
                for (size_t b = 0; b < oan; b++)
                        for (AddrNode *n = oaddrs[b], *next; n; n = next) {
                                next = n->next;
                                addr_insert_nogrow(p, n);
                        }
                free(oaddrs);
        }
        return 0;
}

Entry *ipam_pool_find_key(Pool *p, const char *key) {
        if (!p->by_key)
                return NULL;
        for (Entry *e = p->by_key[key_hash(key) & (p->key_buckets - 1)]; e; e = e->next_key)
                if (streq(e->c.key, key))
                        return e;
        return NULL;
}

Entry *ipam_pool_find_addr(Pool *p, const KvAddr *a) {
        if (!p->by_addr)
                return NULL;
        for (AddrNode *n = p->by_addr[addr_hash(a) & (p->addr_buckets - 1)]; n; n = n->next)
                if (kv_addr_equal(&n->entry->c.addrs[n - n->entry->addr_nodes].addr, a))
                        return n->entry;
        return NULL;
}

/* ---- range sets ---- */

static int u128_cmp(const void *a, const void *b) {
        ipam_u128 x = *(const ipam_u128 *) a, y = *(const ipam_u128 *) b;
        return x < y ? -1 : x > y;
}

static bool set_is_reserved(const SetState *ss, ipam_u128 v) {
        return ss->n_reserved > 0 && bsearch(&v, ss->reserved, ss->n_reserved, sizeof v, u128_cmp) != NULL;
}

/* Index of the range of the set containing v, or -1. */
static int set_range_of(const SetState *ss, ipam_u128 v) {
        for (size_t k = 0; k < ss->n_ranges; k++)
                if (v >= ss->start[k] && v <= ss->end[k])
                        return (int) k;
        return -1;
}

void ipam_set_state_done(SetState *ss) {
        free(ss->reserved);
        *ss = (SetState) {};
}

static int reserved_add(ipam_u128 **arr, size_t *n, size_t *cap, ipam_u128 v) {
        int r = ARRAY_GROW(*arr, *cap, *n + 1);
        if (r < 0)
                return r;
        (*arr)[(*n)++] = v;
        return 0;
}

/* Derives the allocation state of set s of cfg: bounds, sorted reserved addresses, capacity. */
int ipam_set_state_init(const IpamConfig *cfg, size_t s, SetState *ret) {
        const IpamRangeSet *rs = &cfg->sets[s];
        SetState ss = { .family = rs->ranges[0].subnet.addr.family, .n_ranges = rs->n_ranges };
        size_t cap = 0;
        int r;

        for (size_t k = 0; k < rs->n_ranges; k++) {
                const IpamRange *rg = &rs->ranges[k];
                ss.start[k] = ipam_addr_to_u128(&rg->start);
                ss.end[k] = ipam_addr_to_u128(&rg->end);
                ss.prefixlen[k] = rg->subnet.prefixlen;
                r = reserved_add(&ss.reserved, &ss.n_reserved, &cap, ipam_addr_to_u128(&rg->subnet.addr));
                if (r >= 0 && ss.family == AF_INET)
                        r = reserved_add(&ss.reserved, &ss.n_reserved, &cap, ipam_subnet_last(&rg->subnet));
                if (r < 0)
                        goto fail;
        }
        /* Every gateway of the config of this family, and every excluded address. */
        for (size_t t = 0; t < cfg->n_sets; t++)
                for (size_t k = 0; k < cfg->sets[t].n_ranges; k++) {
                        const IpamRange *rg = &cfg->sets[t].ranges[k];
                        if (!rg->has_gateway || rg->gateway.family != ss.family)
                                continue;
                        r = reserved_add(&ss.reserved, &ss.n_reserved, &cap, ipam_addr_to_u128(&rg->gateway));
                        if (r < 0)
                                goto fail;
                }
        for (size_t k = 0; k < cfg->n_exclude; k++) {
                if (cfg->exclude[k].family != ss.family)
                        continue;
                r = reserved_add(&ss.reserved, &ss.n_reserved, &cap, ipam_addr_to_u128(&cfg->exclude[k]));
                if (r < 0)
                        goto fail;
        }
        if (ss.n_reserved > 0) {
                qsort(ss.reserved, ss.n_reserved, sizeof *ss.reserved, u128_cmp);
                size_t w = 1;
                for (size_t k = 1; k < ss.n_reserved; k++)
                        if (ss.reserved[k] != ss.reserved[w - 1])
                                ss.reserved[w++] = ss.reserved[k];
                ss.n_reserved = w;
        }

        ipam_u128 total = 0;
        for (size_t k = 0; k < ss.n_ranges; k++) {
                ipam_u128 size = ss.end[k] - ss.start[k];
                total = ipam_u128_sat_add(total, ipam_u128_sat_add(size, 1));
        }
        ss.total = total;
        ipam_u128 reserved_inside = 0;
        for (size_t k = 0; k < ss.n_reserved; k++)
                if (set_range_of(&ss, ss.reserved[k]) >= 0)
                        reserved_inside++;
        ss.capacity = total - reserved_inside;
        *ret = ss;
        return 0;
fail:
        free(ss.reserved);
        return r;
}

/* Why an address inside a range of the set is not allocatable, or NULL if it is. */
static const char *reserved_reason(const IpamConfig *cfg, size_t s, const KvAddr *a) {
        for (size_t k = 0; k < cfg->sets[s].n_ranges; k++) {
                const IpamRange *rg = &cfg->sets[s].ranges[k];
                ipam_u128 v = ipam_addr_to_u128(a);
                if (v == ipam_addr_to_u128(&rg->subnet.addr))
                        return "the network address";
                if (a->family == AF_INET && v == ipam_subnet_last(&rg->subnet))
                        return "the broadcast address";
        }
        for (size_t t = 0; t < cfg->n_sets; t++)
                for (size_t k = 0; k < cfg->sets[t].n_ranges; k++)
                        if (cfg->sets[t].ranges[k].has_gateway && kv_addr_equal(&cfg->sets[t].ranges[k].gateway, a))
                                return "a gateway";
        for (size_t k = 0; k < cfg->n_exclude; k++)
                if (kv_addr_equal(&cfg->exclude[k], a))
                        return "excluded";
        return NULL;
}

/* Set whose ranges allocate a (in range and not reserved), or -1; *ret_in_range tells whether some range
 * contained it at all. */
static int pool_set_of(const Pool *p, const SetState *sets, const KvAddr *a, bool *ret_in_range) {
        ipam_u128 v = ipam_addr_to_u128(a);
        bool in_range = false;
        for (size_t s = 0; s < p->cfg.n_sets; s++) {
                const SetState *ss = &sets[s];
                if (ss->family != a->family || set_range_of(ss, v) < 0)
                        continue;
                in_range = true;
                if (!set_is_reserved(ss, v)) {
                        if (ret_in_range)
                                *ret_in_range = true;
                        return (int) s;
                }
        }
        if (ret_in_range)
                *ret_in_range = in_range;
        return -1;
}

static void set_advance(const SetState *ss, size_t *ri, ipam_u128 *v) {
        if (*v == ss->end[*ri]) {
                *ri = (*ri + 1) % ss->n_ranges;
                *v = ss->start[*ri];
        } else
                (*v)++;
}

/* Round robin from the cursor: the next address of set s neither reserved nor held. */
static bool taken_elsewhere(Ipam *i, Pool *p, const KvAddr *a, const char *key) {
        return i->taken_cb && i->taken_cb(p->network, a, key, i->taken_ud);
}

void ipam_set_addr_filter(Ipam *i, ipam_addr_taken_cb cb, void *userdata) {
        i->taken_cb = cb;
        i->taken_ud = userdata;
}

static bool pool_next_free(Ipam *i, Pool *p, const char *key, size_t s, ipam_u128 *ret, size_t *ret_ri) {
        SetState *ss = &p->sets[s];
        if (ss->used >= ss->capacity)
                return false;
        size_t ri = 0;
        ipam_u128 v = ss->start[0];
        if (ss->has_cursor) {
                ri = ss->cursor_range;
                v = ss->cursor;
                set_advance(ss, &ri, &v);
        }
        for (ipam_u128 n = 0; n < ss->total; n++) {
                if (!set_is_reserved(ss, v)) {
                        KvAddr a = ipam_u128_to_addr(ss->family, v);
                        if (!ipam_pool_find_addr(p, &a) && !taken_elsewhere(i, p, &a, key)) {
                                *ret = v;
                                *ret_ri = ri;
                                return true;
                        }
                }
                set_advance(ss, &ri, &v);
        }
        return false;
}

static void pool_set_cursor(Pool *p, size_t s, ipam_u128 v) {
        SetState *ss = &p->sets[s];
        int ri = set_range_of(ss, v);
        if (ri < 0)
                return;
        ss->has_cursor = true;
        ss->cursor = v;
        ss->cursor_range = (size_t) ri;
}

/* ---- pools and entries ---- */

Pool *ipam_pool_get(Ipam *i, const char *network) {
        for (Pool *p = i->pools; p; p = p->next)
                if (streq(p->network, network))
                        return p;
        return NULL;
}

Pool *ipam_pool_add(Ipam *i, const char *network, const char *dir) {
        Pool *p = calloc(1, sizeof *p);
        if (!p)
                return NULL;
        snprintf(p->network, sizeof p->network, "%s", network);
        snprintf(p->dir, sizeof p->dir, "%s", dir);
        *i->pools_tail = p;
        i->pools_tail = &p->next;
        return p;
}

static void entry_count(Pool *p, Entry *e, int delta) {
        for (size_t k = 0; k < e->c.n_addrs; k++)
                if (e->set_idx[k] >= 0)
                        p->sets[e->set_idx[k]].used += delta > 0 ? 1 : (ipam_u128) -1;
}

static void entry_classify(Pool *p, Entry *e) {
        for (size_t k = 0; k < e->c.n_addrs; k++)
                e->set_idx[k] = p->configured ? pool_set_of(p, p->sets, &e->c.addrs[k].addr, NULL) : -1;
}

int ipam_pool_insert(Pool *p, Entry *e) {
        int r = pool_tables_reserve(p, e->c.n_addrs);
        if (r < 0)
                return r;
        e->pool = p;
        key_insert_nogrow(p, e);
        for (size_t k = 0; k < e->c.n_addrs; k++) {
                e->addr_nodes[k].entry = e;
                addr_insert_nogrow(p, &e->addr_nodes[k]);
        }
        p->n_claims++;
        p->n_addrs += e->c.n_addrs;
        e->prev = p->tail;
        e->next = NULL;
        if (p->tail)
                p->tail->next = e;
        else
                p->head = e;
        p->tail = e;
        entry_classify(p, e);
        entry_count(p, e, +1);
        return 0;
}

static void pool_unlink(Pool *p, Entry *e) {
        Entry **pe = &p->by_key[key_hash(e->c.key) & (p->key_buckets - 1)];
        for (; *pe; pe = &(*pe)->next_key)
                if (*pe == e) {
                        *pe = e->next_key;
                        break;
                }
        for (size_t k = 0; k < e->c.n_addrs; k++) {
                AddrNode **pn = &p->by_addr[addr_hash(&e->c.addrs[k].addr) & (p->addr_buckets - 1)];
                for (; *pn; pn = &(*pn)->next)
                        if (*pn == &e->addr_nodes[k]) {
                                *pn = e->addr_nodes[k].next;
                                break;
                        }
        }
        if (e->prev)
                e->prev->next = e->next;
        else
                p->head = e->next;
        if (e->next)
                e->next->prev = e->prev;
        else
                p->tail = e->prev;
        entry_count(p, e, -1);
        p->n_claims--;
        p->n_addrs -= e->c.n_addrs;
}

static void pool_free(Pool *p) {
        for (Entry *e = p->head, *next; e; e = next) {
                next = e->next;
                free(e);
        }
        for (size_t s = 0; s < IPAM_MAX_SETS; s++)
                ipam_set_state_done(&p->sets[s]);
        free(p->by_key);
        free(p->by_addr);
        free(p);
}

/* Applies cfg to the pool (sets already derived into new_sets, which are taken over). */
void ipam_pool_apply(Pool *p, const IpamConfig *cfg, SetState new_sets[IPAM_MAX_SETS]) {
        SetState old[IPAM_MAX_SETS];
        bool was = p->configured;
        memcpy(old, p->sets, sizeof old);
        memcpy(p->sets, new_sets, sizeof p->sets);
        memset(new_sets, 0, sizeof(SetState) * IPAM_MAX_SETS);
        p->cfg = *cfg;
        p->configured = true;
        for (size_t s = 0; s < cfg->n_sets; s++) {
                if (was && s < IPAM_MAX_SETS && old[s].has_cursor && old[s].family == p->sets[s].family)
                        pool_set_cursor(p, s, old[s].cursor);
        }
        for (size_t s = 0; s < IPAM_MAX_SETS; s++)
                ipam_set_state_done(&old[s]);
        for (Entry *e = p->head; e; e = e->next) {
                entry_classify(p, e);
                entry_count(p, e, +1);
        }
        if (!was)
                ipam_pool_restore_cursors(p);
}

/* After loading: the cursor of each set follows the newest claim, as host-local's last_reserved_ip. */
void ipam_pool_restore_cursors(Pool *p) {
        uint64_t newest[IPAM_MAX_SETS] = {};
        for (Entry *e = p->head; e; e = e->next)
                for (size_t k = 0; k < e->c.n_addrs; k++) {
                        int s = e->set_idx[k];
                        if (s < 0 || (p->sets[s].has_cursor && e->c.created_usec < newest[s]))
                                continue;
                        newest[s] = e->c.created_usec;
                        pool_set_cursor(p, (size_t) s, ipam_addr_to_u128(&e->c.addrs[k].addr));
                }
}

/* ---- public API ---- */

void ipam_set_durable(Ipam *i, bool durable) {
        i->store.durable = durable;
}

int ipam_new(const char *state_dir, bool durable, Ipam **ret) {
        _cleanup_free_ Ipam *i = calloc(1, sizeof *i);
        if (!i)
                return -ENOMEM;
        if (snprintf(i->store.dir, sizeof i->store.dir, "%s/ipam", state_dir) >= (int) sizeof i->store.dir)
                return -ENAMETOOLONG;
        int r = mkdir_p(i->store.dir, 0700);
        if (r < 0)
                return r;
        i->store.durable = durable;
        i->pools_tail = &i->pools;
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/claims.journal", i->store.dir) >= (int) sizeof path)
                return -ENAMETOOLONG;
        KvErr e = {};
        r = journal_open(path, durable, &i->store.journal, &e);
        if (r < 0) {
                log_error("ipam: %s%s%s", e.msg, e.details[0] ? ": " : "", e.details);
                return r;
        }
        *ret = TAKE_PTR(i);
        return 0;
}

void ipam_warnings_clear(Ipam *i) {
        for (size_t k = 0; k < i->n_warnings; k++)
                free(i->warnings[k]);
        free(i->warnings);
        i->warnings = NULL;
        i->n_warnings = i->cap_warnings = 0;
}

Ipam *ipam_free(Ipam *i) {
        if (!i)
                return NULL;
        for (Pool *p = i->pools, *next; p; p = next) {
                next = p->next;
                pool_free(p);
        }
        ipam_warnings_clear(i);
        journal_free(i->store.journal);
        free(i);
        return NULL;
}

Journal *ipam_journal(Ipam *i) {
        return i->store.journal;
}

size_t ipam_n_load_warnings(Ipam *i) {
        return i->n_warnings;
}

const char *ipam_load_warning(Ipam *i, size_t idx) {
        return idx < i->n_warnings ? i->warnings[idx] : NULL;
}

static int check_network(const char *network, KvErr *e) {
        if (!network || !*network || strlen(network) >= IPAM_NETWORK_MAX)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "ipam: network name '%s' must be 1..%d characters",
                                 network ? network : "", IPAM_NETWORK_MAX - 1);
        return 0;
}

const IpamConfig *ipam_pool_config(Ipam *i, const char *network) {
        Pool *p = network ? ipam_pool_get(i, network) : NULL;
        return p && p->configured ? &p->cfg : NULL;
}

int ipam_pool_ensure(Ipam *i, const char *network, const IpamConfig *cfg, KvErr *e) {
        SetState sets[IPAM_MAX_SETS] = {};
        char ab[KV_ADDR_STRLEN];
        int r = check_network(network, e);
        if (r < 0)
                return r;
        if (cfg->n_sets == 0 || cfg->n_sets > IPAM_MAX_SETS)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "ipam: network '%s': config has no range set",
                                 network);
        Pool *p = ipam_pool_get(i, network);
        if (p && p->configured && ipam_config_equal(&p->cfg, cfg))
                return 0;

        for (size_t s = 0; s < cfg->n_sets; s++) {
                r = ipam_set_state_init(cfg, s, &sets[s]);
                if (r < 0)
                        goto finish;
        }
        if (p) {
                /* Every claim must stay allocatable under the new config. */
                Pool probe = { .cfg = *cfg };
                for (Entry *en = p->head; en; en = en->next)
                        for (size_t k = 0; k < en->c.n_addrs; k++) {
                                bool in_range = false;
                                if (pool_set_of(&probe, sets, &en->c.addrs[k].addr, &in_range) >= 0)
                                        continue;
                                r = kverr_set(e, KV_ERR_INVALID_CONFIG, -EBUSY,
                                              "ipam: network '%s': claim '%s' holds %s, which the new ipam config %s; "
                                              "release it first",
                                              network, en->c.key, kv_addr_fmt(&en->c.addrs[k].addr, ab),
                                              in_range ? "reserves (gateway, network/broadcast or exclude)"
                                                       : "leaves outside every range");
                                goto finish;
                        }
        }
        char dir[PATH_MAX];
        if (p)
                snprintf(dir, sizeof dir, "%s", p->dir);
        else {
                r = ipam_pool_dir(&i->store, network, dir, sizeof dir);
                if (r < 0) {
                        kverr_set_errno(e, KV_ERR_IO, r, "ipam: network '%s': state directory name", network);
                        goto finish;
                }
        }
        r = ipam_store_pool(&i->store, network, dir, cfg);
        if (r < 0) {
                kverr_set_errno(e, KV_ERR_IO, r, "ipam: network '%s': cannot write %s/pool.json", network, dir);
                goto finish;
        }
        if (!p) {
                p = ipam_pool_add(i, network, dir);
                if (!p) {
                        r = -ENOMEM;
                        goto finish;
                }
        }
        ipam_pool_apply(p, cfg, sets);
        r = 0;
finish:
        for (size_t s = 0; s < IPAM_MAX_SETS; s++)
                ipam_set_state_done(&sets[s]);
        return r;
}

static void fmt_set_subnets(const IpamConfig *cfg, size_t s, char *buf, size_t len) {
        size_t off = 0;
        char pb[KV_ADDR_STRLEN];
        buf[0] = '\0';
        for (size_t k = 0; k < cfg->sets[s].n_ranges && off < len; k++) {
                int n = snprintf(buf + off, len - off, "%s%s", k ? ", " : "",
                                 kv_prefix_fmt(&cfg->sets[s].ranges[k].subnet, pb));
                if (n < 0)
                        break;
                off += (size_t) n;
        }
}

/* The claim of the pool that has that MAC, or NULL. A scan: a pool holds at most a few thousand claims, and only
 * a new claim asks. */
static Entry *mac_holder(Pool *p, const uint8_t mac[6]) {
        for (Entry *en = p->head; en; en = en->next)
                if (!memcmp(en->c.mac, mac, 6))
                        return en;
        return NULL;
}

static int claim_existing(Ipam *i, Entry *en, const IpamRequest *req, KvErr *e) {
        char a[KV_ADDR_STRLEN], b[KV_ADDR_STRLEN], ma[KV_MAC_STRLEN], mb[KV_MAC_STRLEN];
        for (size_t k = 0; req && k < req->n_ips; k++) {
                bool found = false;
                for (size_t j = 0; j < en->c.n_addrs && !found; j++)
                        found = kv_addr_equal(&en->c.addrs[j].addr, &req->ips[k]);
                if (found)
                        continue;
                const KvAddr *held = NULL;
                for (size_t j = 0; j < en->c.n_addrs && !held; j++)
                        if (en->c.addrs[j].addr.family == req->ips[k].family)
                                held = &en->c.addrs[j].addr;
                return kverr_set(e, KV_ERR_ADDRESS_IN_USE, -EADDRINUSE,
                                 "ipam: network '%s': '%s' already holds %s; requested %s", en->c.network, en->c.key,
                                 held ? kv_addr_fmt(held, a) : "no address of that family",
                                 kv_addr_fmt(&req->ips[k], b));
        }
        if (req && req->has_mac && memcmp(req->mac, en->c.mac, 6) != 0)
                return kverr_set(e, KV_ERR_ADDRESS_IN_USE, -EADDRINUSE,
                                 "ipam: network '%s': '%s' already has MAC %s; requested %s", en->c.network, en->c.key,
                                 kv_mac_fmt(en->c.mac, ma), kv_mac_fmt(req->mac, mb));
        const char *owner = req && req->owner ? req->owner : "";
        if (en->c.state == IPAM_CLAIM_ACTIVE && streq(en->c.owner, owner))
                return 0;
        return ipam_set_state(i, &en->c, IPAM_CLAIM_ACTIVE, owner, e);
}

int ipam_claim(Ipam *i, const char *network, const char *key, const IpamRequest *req, IpamClaim **ret,
               bool *ret_existing, KvErr *e) {
        char a[KV_ADDR_STRLEN], b[KV_ADDR_STRLEN], subnets[512];
        int r = check_network(network, e);
        if (r < 0)
                return r;
        if (!key || !*key || strlen(key) >= IPAM_KEY_MAX)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "ipam: claim key '%.64s' must be 1..%d characters",
                                 key ? key : "", IPAM_KEY_MAX - 1);
        if (req && req->owner && strlen(req->owner) >= sizeof(((IpamClaim *) NULL)->owner))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "ipam: owner '%.64s...' is too long", req->owner);
        if (req && req->n_ips > IPAM_MAX_SETS)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "ipam: %zu addresses requested, at most %d",
                                 req->n_ips, IPAM_MAX_SETS);
        Pool *p = ipam_pool_get(i, network);
        if (!p || !p->configured)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ENOENT,
                                 "ipam: network '%s' has no address pool (no 'ipam' config was given for it)", network);

        Entry *en = ipam_pool_find_key(p, key);
        if (en) {
                r = claim_existing(i, en, req, e);
                if (r < 0)
                        return r;
                *ret = &en->c;
                if (ret_existing)
                        *ret_existing = true;
                return 0;
        }

        /* A MAC is one attachment's on a network: a requested one (a pod's `mac`, a VM's) another claim has is refused,
         * as the link-local all-zero one is, before anything is chosen. */
        if (req && req->has_mac) {
                char ma[KV_MAC_STRLEN];
                if (kv_mac_is_zero(req->mac))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "ipam: network '%s': MAC 00:00:00:00:00:00 is not an address an interface can have",
                                         network);
                Entry *other = mac_holder(p, req->mac);
                if (other)
                        return kverr_set(e, KV_ERR_ADDRESS_IN_USE, -EADDRINUSE,
                                         "ipam: network '%s': requested MAC %s is in use by '%s'", network,
                                         kv_mac_fmt(req->mac, ma), other->c.key);
        }

        ipam_u128 chosen[IPAM_MAX_SETS];
        size_t chosen_range[IPAM_MAX_SETS], req_idx[IPAM_MAX_SETS];
        bool have[IPAM_MAX_SETS] = {};
        for (size_t k = 0; req && k < req->n_ips; k++) {
                const KvAddr *want = &req->ips[k];
                ipam_u128 v = ipam_addr_to_u128(want);
                int s = -1, ri = -1;
                for (size_t t = 0; t < p->cfg.n_sets && s < 0; t++)
                        if (p->sets[t].family == want->family && (ri = set_range_of(&p->sets[t], v)) >= 0)
                                s = (int) t;
                if (s < 0)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "ipam: network '%s': requested address %s is outside every range of the pool",
                                         network, kv_addr_fmt(want, a));
                if (have[s])
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "ipam: network '%s': requested addresses %s and %s are in the same range set",
                                         network, kv_addr_fmt(&req->ips[req_idx[s]], a),
                                         kv_addr_fmt(want, b));
                const char *why = reserved_reason(&p->cfg, (size_t) s, want);
                if (why)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "ipam: network '%s': requested address %s is %s and never allocated", network,
                                         kv_addr_fmt(want, a), why);
                Entry *holder = ipam_pool_find_addr(p, want);
                if (holder)
                        return kverr_set(e, KV_ERR_ADDRESS_IN_USE, -EADDRINUSE,
                                         "ipam: network '%s': requested address %s is in use by '%s'", network,
                                         kv_addr_fmt(want, a), holder->c.key);
                if (taken_elsewhere(i, p, want, key))
                        return kverr_set(e, KV_ERR_ADDRESS_IN_USE, -EADDRINUSE,
                                         "ipam: network '%s': requested address %s is in use on another node", network,
                                         kv_addr_fmt(want, a));
                have[s] = true;
                chosen[s] = v;
                chosen_range[s] = (size_t) ri;
                req_idx[s] = k;
        }
        for (size_t s = 0; s < p->cfg.n_sets; s++) {
                if (have[s])
                        continue;
                if (!pool_next_free(i, p, key, s, &chosen[s], &chosen_range[s])) {
                        char used[40];
                        fmt_set_subnets(&p->cfg, s, subnets, sizeof subnets);
                        return kverr_set(e, KV_ERR_IPAM_EXHAUSTED, -ENOSPC,
                                         "ipam: network '%s': no free address in %s (%s in use)", network, subnets,
                                         ipam_u128_fmt(p->sets[s].used, used));
                }
        }

        _cleanup_free_ Entry *ne = calloc(1, sizeof *ne);
        if (!ne)
                return -ENOMEM;
        IpamClaim *c = &ne->c;
        snprintf(c->network, sizeof c->network, "%s", network);
        snprintf(c->key, sizeof c->key, "%s", key);
        for (size_t s = 0; s < p->cfg.n_sets; s++) {
                const IpamRange *rg = &p->cfg.sets[s].ranges[chosen_range[s]];
                c->addrs[c->n_addrs] = (KvPrefix) { .addr = ipam_u128_to_addr(p->sets[s].family, chosen[s]),
                                                    .prefixlen = rg->subnet.prefixlen };
                c->has_gateway[c->n_addrs] = rg->has_gateway;
                if (rg->has_gateway)
                        c->gateways[c->n_addrs] = rg->gateway;
                c->n_addrs++;
        }
        if (req && req->has_mac)
                memcpy(c->mac, req->mac, 6);
        else {
                /* derived from the key; one another claim has already (requested, or a hash collision) is derived
                 * again from the key with a suffix, a few times */
                char salted[IPAM_KEY_MAX + 8];
                ipam_derive_mac(network, key, c->mac);
                for (unsigned n = 1; n < 8 && mac_holder(p, c->mac); n++) {
                        snprintf(salted, sizeof salted, "%s#%u", key, n);
                        ipam_derive_mac(network, salted, c->mac);
                }
        }
        c->state = IPAM_CLAIM_ACTIVE;
        c->created_usec = c->updated_usec = ipam_now_usec();
        snprintf(c->owner, sizeof c->owner, "%s", req && req->owner ? req->owner : "");
        ipam_claim_filename(network, key, ne->fname, sizeof ne->fname);

        r = pool_tables_reserve(p, c->n_addrs); /* before writing: nothing can fail after the file exists */
        if (r < 0)
                return r;
        r = ipam_store_claim(&i->store, p->dir, ne->fname, c);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "ipam: network '%s': cannot persist claim '%s'", network, key);
        r = ipam_pool_insert(p, ne);
        if (r < 0) /* cannot happen after the reservation above */
                return r;
        for (size_t s = 0; s < p->cfg.n_sets; s++)
                pool_set_cursor(p, s, chosen[s]);
        *ret = &TAKE_PTR(ne)->c;
        if (ret_existing)
                *ret_existing = false;
        return 0;
}

int ipam_set_state(Ipam *i, IpamClaim *c, IpamClaimState st, const char *owner, KvErr *e) {
        if (!claim_is_entry(c))
                return -EINVAL;
        Entry *en = (Entry *) c;
        if (owner && strlen(owner) >= sizeof c->owner)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "ipam: owner '%.64s...' is too long", owner);
        IpamClaim n = *c;
        n.state = st;
        if (owner)
                snprintf(n.owner, sizeof n.owner, "%s", owner);
        n.updated_usec = ipam_now_usec();
        int r = ipam_store_claim(&i->store, en->pool->dir, en->fname, &n);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "ipam: network '%s': cannot persist claim '%s'", c->network,
                                       c->key);
        *c = n;
        return 0;
}

int ipam_release(Ipam *i, const char *network, const char *key) {
        Pool *p = network ? ipam_pool_get(i, network) : NULL;
        if (!p || !key)
                return 0;
        Entry *en = ipam_pool_find_key(p, key);
        if (!en)
                return 0;
        int r = ipam_unstore_claim(&i->store, p->dir, en->fname);
        if (r < 0)
                return r;
        pool_unlink(p, en);
        free(en);
        return 1;
}

IpamClaim *ipam_find(Ipam *i, const char *network, const char *key) {
        Pool *p = network && key ? ipam_pool_get(i, network) : NULL;
        Entry *en = p ? ipam_pool_find_key(p, key) : NULL;
        return en ? &en->c : NULL;
}

IpamClaim *ipam_find_addr(Ipam *i, const char *network, const KvAddr *a) {
        Pool *p = network && a ? ipam_pool_get(i, network) : NULL;
        Entry *en = p ? ipam_pool_find_addr(p, a) : NULL;
        return en ? &en->c : NULL;
}

int ipam_foreach_claim(Ipam *i, const char *network, ipam_claim_cb cb, void *userdata) {
        for (Pool *p = i->pools, *pnext; p; p = pnext) {
                pnext = p->next;
                if (network && !streq(p->network, network))
                        continue;
                for (Entry *en = p->head, *next; en; en = next) {
                        next = en->next;
                        int r = cb(&en->c, userdata);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

size_t ipam_count_claims(Ipam *i, const char *network) {
        size_t n = 0;
        for (Pool *p = i->pools; p; p = p->next) {
                if (network && !streq(p->network, network))
                        continue;
                for (Entry *en = p->head; en; en = en->next)
                        n++;
        }
        return n;
}

/* ---- loading: the store hands over what it reads ---- */

static int load_pool(const char *network, const char *dir, const IpamConfig *cfg, void *userdata) {
        Ipam *i = userdata;
        SetState sets[IPAM_MAX_SETS] = {};
        for (size_t s = 0; s < cfg->n_sets; s++) {
                int r = ipam_set_state_init(cfg, s, &sets[s]);
                if (r < 0) {
                        for (size_t t = 0; t < s; t++)
                                ipam_set_state_done(&sets[t]);
                        return r;
                }
        }
        Pool *p = ipam_pool_add(i, network, dir);
        if (!p) {
                for (size_t s = 0; s < IPAM_MAX_SETS; s++)
                        ipam_set_state_done(&sets[s]);
                return -ENOMEM;
        }
        ipam_pool_apply(p, cfg, sets);
        return 0;
}

/* A stored claim joins its pool (created unconfigured, until ipam_pool_ensure(), when it has no pool.json)
 * unless its key or an address is held already. */
static int load_claim(const IpamClaim *c, const char *dir, const char *fname, char *why, size_t why_len,
                      void *userdata) {
        Ipam *i = userdata;
        char ab[KV_ADDR_STRLEN];
        Pool *p = ipam_pool_get(i, c->network);
        if (!p) {
                if (!dir) {
                        snprintf(why, why_len, "path too long");
                        return 0;
                }
                p = ipam_pool_add(i, c->network, dir);
                if (!p)
                        return -ENOMEM;
        }
        Entry *other = ipam_pool_find_key(p, c->key);
        if (other) {
                snprintf(why, why_len, "key '%s' is already claimed by '%s'", c->key, other->fname);
                return 0;
        }
        for (size_t a = 0; a < c->n_addrs && !other; a++)
                other = ipam_pool_find_addr(p, &c->addrs[a].addr);
        if (other) {
                snprintf(why, why_len, "'%s' holds an address already held by '%s' (%s)", c->key, other->c.key,
                         kv_prefix_fmt(&other->c.addrs[0], ab));
                return 0;
        }
        Entry *en = calloc(1, sizeof *en);
        if (!en)
                return -ENOMEM;
        en->c = *c;
        memcpy(en->fname, fname, strlen(fname) + 1); /* the store checked its length */
        int r = ipam_pool_insert(p, en);
        if (r < 0) {
                free(en);
                return r;
        }
        return 1;
}

static int load_warning(const char *where, const char *msg, void *userdata) {
        Ipam *i = userdata;
        int r = ARRAY_GROW(i->warnings, i->cap_warnings, i->n_warnings + 1);
        if (r < 0)
                return r;
        if (asprintf(&i->warnings[i->n_warnings], "%s: %s", where, msg) < 0)
                return -ENOMEM;
        i->n_warnings++;
        return 0;
}

int ipam_load(Ipam *i, KvErr *e) {
        if (i->pools)
                return kverr_set(e, KV_ERR_INTERNAL, -EBUSY, "ipam: state already loaded");
        ipam_warnings_clear(i);
        IpamStoreLoader l = { .pool = load_pool, .claim = load_claim, .warning = load_warning, .userdata = i };
        int r = ipam_store_load(&i->store, &l, e);
        if (r < 0)
                return r;
        for (Pool *p = i->pools; p; p = p->next)
                if (p->configured)
                        ipam_pool_restore_cursors(p);
        return r;
}

/* ---- JSON ---- */

static json_t *json_u128(ipam_u128 v) {
        char b[40];
        if (v <= ((ipam_u128) 1 << 53))
                return json_integer((json_int_t) v);
        return json_string(ipam_u128_fmt(v, b));
}

static json_t *pool_to_json(const Pool *p) {
        char pb[KV_ADDR_STRLEN], ab[KV_ADDR_STRLEN], bb[KV_ADDR_STRLEN];
        _cleanup_json_ json_t *o = json_pack("{s:s, s:b}", "network", p->network, "configured", p->configured);
        _cleanup_json_ json_t *sets = json_array();
        if (!o || !sets)
                return NULL;
        if (p->configured) {
                if (json_object_set_new(o, "config", ipam_config_to_json(&p->cfg)) < 0)
                        return NULL;
                for (size_t s = 0; s < p->cfg.n_sets; s++) {
                        const IpamRangeSet *rs = &p->cfg.sets[s];
                        json_t *ranges = json_array();
                        if (!ranges)
                                return NULL;
                        for (size_t k = 0; k < rs->n_ranges; k++)
                                json_array_append_new(ranges,
                                                      json_pack("{s:s, s:s, s:s}", "subnet",
                                                                kv_prefix_fmt(&rs->ranges[k].subnet, pb), "start",
                                                                kv_addr_fmt(&rs->ranges[k].start, ab), "end",
                                                                kv_addr_fmt(&rs->ranges[k].end, bb)));
                        const SetState *ss = &p->sets[s];
                        json_t *so = json_pack("{s:s, s:o, s:o, s:o, s:o}", "subnet",
                                               kv_prefix_fmt(&rs->ranges[0].subnet, pb), "ranges", ranges, "size",
                                               json_u128(ss->capacity), "used", json_u128(ss->used), "free",
                                               json_u128(ss->capacity - ss->used));
                        if (!so || json_array_append_new(sets, so) < 0)
                                return NULL;
                }
        }
        if (json_object_set_new(o, "sets", TAKE_PTR(sets)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

json_t *ipam_dump_pools(Ipam *i) {
        _cleanup_json_ json_t *pools = json_array();
        if (!pools)
                return NULL;
        for (Pool *p = i->pools; p; p = p->next) {
                json_t *po = pool_to_json(p);
                if (!po || json_array_append_new(pools, po) < 0)
                        return NULL;
        }
        return TAKE_PTR(pools);
}

json_t *ipam_dump(Ipam *i) {
        _cleanup_json_ json_t *pools = ipam_dump_pools(i), *claims = json_array(), *warnings = json_array();
        if (!pools || !claims || !warnings)
                return NULL;
        for (Pool *p = i->pools; p; p = p->next) {
                for (Entry *en = p->head; en; en = en->next) {
                        json_t *co = ipam_claim_to_json(&en->c);
                        if (!co || json_array_append_new(claims, co) < 0)
                                return NULL;
                }
        }
        for (size_t k = 0; k < i->n_warnings; k++)
                if (json_array_append_new(warnings, json_string(i->warnings[k])) < 0)
                        return NULL;
        return json_pack("{s:o, s:o, s:o}", "pools", TAKE_PTR(pools), "claims", TAKE_PTR(claims), "loadWarnings",
                         TAKE_PTR(warnings));
}
