/* SPDX-License-Identifier: Apache-2.0 */
/* NAT on nftables: one table "inet kvnet" whose rules never change after creation; endpoints only
 * add and remove set/map elements.
 *
 *   set masq4/masq6      endpoint addresses with ipMasq
 *   set nomasq4/nomasq6  (interval) the endpoints' own networks: not masqueraded towards
 *   map pf4/pf6          hostIP . proto . hostPort : address . port
 *   map pf4any/pf6any    proto . hostPort : address . port   (any local address: fib daddr type local)
 *
 *   chain prerouting (nat, dstnat) and output (nat, -100):
 *       dnat ip to ip daddr . meta l4proto . th dport map @pf4
 *       fib daddr type local dnat ip to meta l4proto . th dport map @pf4any    (and ip6)
 *   chain postrouting (nat, srcnat):
 *       ct status dnat ip saddr @nomasq4 masquerade       (hairpin: a local endpoint reaching a
 *                                                          forwarded port, its own or a neighbour's)
 *       ip saddr @masq4 ip daddr != @nomasq4 masquerade   (and ip6)
 *
 * Every change is one nftw batch (nftw.h): sent as one transaction, or rendered as text for golden
 * tests. The sandbox table of the masquerade binding is in nft-sandbox.c. */
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include "common/array.h"
#include "common/json-util.h"
#include "netd/nat/nat.h"
#include "netd/nat/nftw.h"
#include "netd/nat/owners.h"

#define NFT_TABLE "kvnet"
#define NFT_FAMILY NFPROTO_INET
#define NFT_BATCH_INIT { .family = NFT_FAMILY, .table = NFT_TABLE }

/* nft's datatype ids (for "nft list" to print keys), concatenations are id << 6 | id. */
#define NFT_TYPE_IPADDR 7
#define NFT_TYPE_IP6ADDR 8
#define NFT_TYPE_INET_PROTO 12
#define NFT_TYPE_INET_SERVICE 13
#define NFT_CONCAT2(a, b) (((a) << 6) | (b))
#define NFT_CONCAT3(a, b, c) (((((a) << 6) | (b)) << 6) | (c))

typedef struct NftBackend {
        NftwSock *sk; /* NULL in render mode */
        bool render;
        bool skeleton_ok; /* table known to exist */
        char *text;
        size_t text_len;
        FILE *out;
        NatOwners owners; /* endpoint id -> subnets */
} NftBackend;

/* One element of a set/map (with an interval end for nomasq). */
typedef struct NftElem {
        const char *set;
        uint8_t key[40], data[24], end[16];
        uint32_t klen, dlen, elen; /* elen 0: no end element */
        bool map;
        char what[112]; /* "10.88.0.2", "tcp *:8080 -> 10.88.0.2:80" */
} NftElem;

typedef struct NftElemList {
        NftElem *v;
        size_t n, cap;
} NftElemList;

static int elems_push(NftElemList *l, NftElem **ret) {
        int r = ARRAY_GROW(l->v, l->cap, l->n + 1);
        if (r < 0)
                return r;
        l->v[l->n] = (NftElem){};
        *ret = &l->v[l->n++];
        return 0;
}

static void elems_done(NftElemList *l) {
        free(l->v);
        *l = (NftElemList){};
}

/* ---- skeleton ---- */

static bool ex_fib_local(struct nftnl_rule *r) {
        uint32_t local = RTN_LOCAL;
        return nftw_ex_fib(r, NFTA_FIB_F_DADDR, NFT_FIB_RESULT_ADDRTYPE, NFT_REG_1) &&
               nftw_ex_cmp(r, NFT_REG_1, NFT_CMP_EQ, &local, sizeof local);
}

static bool ex_ct_dnat(struct nftnl_rule *r) {
        uint32_t mask = IPS_DST_NAT, zero = 0;
        return nftw_ex_ct(r, NFT_CT_STATUS, NFT_REG_1) &&
               nftw_ex_bitwise(r, NFT_REG_1, NFT_REG_1, &mask, &zero, sizeof mask) &&
               nftw_ex_cmp(r, NFT_REG_1, NFT_CMP_NEQ, &zero, sizeof zero);
}

typedef enum { R_PF, R_PFANY, R_HAIRPIN, R_MASQ } RuleKind;

static struct nftnl_rule *nft_build_rule(const NftwBatch *bt, const char *chain, RuleKind kind, bool v6) {
        struct nftnl_rule *r = nftw_rule_new(bt, chain);
        if (!r)
                return NULL;
        uint8_t nfproto = v6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
        uint32_t alen = v6 ? 16 : 4, saddr = v6 ? 8 : 12, daddr = v6 ? 24 : 16;
        uint32_t areg_words = alen / 4;
        bool ok = nftw_ex_nfproto(r, nfproto);
        switch (kind) {
        case R_PF: /* daddr . l4proto . dport -> addr . port */
                ok = ok && nftw_ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, daddr, alen, NFT_REG32_00) &&
                     nftw_ex_meta(r, NFT_META_L4PROTO, NFT_REG32_00 + areg_words) &&
                     nftw_ex_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_00 + areg_words + 1) &&
                     nftw_ex_lookup(r, NFT_REG32_00, v6 ? "pf6" : "pf4", NFT_REG32_00, false) &&
                     nftw_ex_nat(r, NFT_NAT_DNAT, nfproto, NFT_REG32_00, 0, NFT_REG32_00 + areg_words, 0);
                break;
        case R_PFANY: /* fib daddr type local, l4proto . dport -> addr . port */
                ok = ok && ex_fib_local(r) && nftw_ex_meta(r, NFT_META_L4PROTO, NFT_REG32_00) &&
                     nftw_ex_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_01) &&
                     nftw_ex_lookup(r, NFT_REG32_00, v6 ? "pf6any" : "pf4any", NFT_REG32_00, false) &&
                     nftw_ex_nat(r, NFT_NAT_DNAT, nfproto, NFT_REG32_00, 0, NFT_REG32_00 + areg_words, 0);
                break;
        case R_HAIRPIN:
                ok = ok && ex_ct_dnat(r) &&
                     nftw_ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, saddr, alen, NFT_REG_1) &&
                     nftw_ex_lookup(r, NFT_REG_1, v6 ? "nomasq6" : "nomasq4", 0, false) && nftw_ex_masq(r);
                break;
        case R_MASQ:
                ok = ok && nftw_ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, saddr, alen, NFT_REG_1) &&
                     nftw_ex_lookup(r, NFT_REG_1, v6 ? "masq6" : "masq4", 0, false) &&
                     nftw_ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, daddr, alen, NFT_REG_1) &&
                     nftw_ex_lookup(r, NFT_REG_1, v6 ? "nomasq6" : "nomasq4", 0, true) && nftw_ex_masq(r);
                break;
        }
        if (!ok) {
                nftnl_rule_free(r);
                return NULL;
        }
        return r;
}

static int nft_push_skeleton(NftwBatch *bt) {
        int r = nftw_table(bt, true, "creating table inet " NFT_TABLE);
        if (r < 0)
                return r;

        static const NftwSetSpec sets[] = {
                { "masq4", 0, NFT_TYPE_IPADDR, 4, 0, 0 },
                { "masq6", 0, NFT_TYPE_IP6ADDR, 16, 0, 0 },
                { "nomasq4", NFT_SET_INTERVAL, NFT_TYPE_IPADDR, 4, 0, 0 },
                { "nomasq6", NFT_SET_INTERVAL, NFT_TYPE_IP6ADDR, 16, 0, 0 },
                { "pf4", NFT_SET_MAP, NFT_CONCAT3(NFT_TYPE_IPADDR, NFT_TYPE_INET_PROTO, NFT_TYPE_INET_SERVICE), 12,
                  NFT_CONCAT2(NFT_TYPE_IPADDR, NFT_TYPE_INET_SERVICE), 8 },
                { "pf4any", NFT_SET_MAP, NFT_CONCAT2(NFT_TYPE_INET_PROTO, NFT_TYPE_INET_SERVICE), 8,
                  NFT_CONCAT2(NFT_TYPE_IPADDR, NFT_TYPE_INET_SERVICE), 8 },
                { "pf6", NFT_SET_MAP, NFT_CONCAT3(NFT_TYPE_IP6ADDR, NFT_TYPE_INET_PROTO, NFT_TYPE_INET_SERVICE), 24,
                  NFT_CONCAT2(NFT_TYPE_IP6ADDR, NFT_TYPE_INET_SERVICE), 20 },
                { "pf6any", NFT_SET_MAP, NFT_CONCAT2(NFT_TYPE_INET_PROTO, NFT_TYPE_INET_SERVICE), 8,
                  NFT_CONCAT2(NFT_TYPE_IP6ADDR, NFT_TYPE_INET_SERVICE), 20 },
        };
        for (size_t i = 0; i < ELEMENTSOF(sets); i++) {
                r = nftw_set(bt, &sets[i], (uint32_t) i + 1, "creating set %s", sets[i].name);
                if (r < 0)
                        return r;
        }

        static const struct {
                const char *name;
                uint32_t hook;
                int32_t prio;
        } chains[] = {
                { "prerouting", NF_INET_PRE_ROUTING, -100 },
                { "output", NF_INET_LOCAL_OUT, -100 },
                { "postrouting", NF_INET_POST_ROUTING, 100 },
        };
        for (size_t i = 0; i < ELEMENTSOF(chains); i++) {
                r = nftw_chain(bt, chains[i].name, "nat", chains[i].hook, chains[i].prio, "creating chain %s",
                               chains[i].name);
                if (r < 0)
                        return r;
        }

        static const struct {
                const char *chain;
                RuleKind kind;
        } rules[] = {
                { "prerouting", R_PF },  { "prerouting", R_PFANY },   { "output", R_PF },
                { "output", R_PFANY },   { "postrouting", R_HAIRPIN }, { "postrouting", R_MASQ },
        };
        for (size_t i = 0; i < ELEMENTSOF(rules); i++)
                for (int v6 = 0; v6 <= 1; v6++) {
                        r = nftw_rule(bt, nft_build_rule(bt, rules[i].chain, rules[i].kind, v6),
                                      "adding rule to chain %s", rules[i].chain);
                        if (r < 0)
                                return r;
                }
        return 0;
}

/* ---- elements ---- */

static const char *fmt_addr(const KvAddr *a, char buf[static KV_ADDR_STRLEN]) {
        return kv_addr_fmt(a, buf);
}

static void put_be16(uint8_t *p, uint16_t v) {
        uint16_t be = htons(v);
        memcpy(p, &be, 2);
}

/* First address of the family, NULL if none. */
static const KvAddr *ep_addr(const NatEndpoint *ep, int family) {
        for (size_t i = 0; i < ep->n_addrs; i++)
                if (ep->addrs[i].family == family)
                        return &ep->addrs[i];
        return NULL;
}

/* Masquerade and port-forward elements of an endpoint (no subnets). */
static int ep_elems(const NatEndpoint *ep, NftElemList *l) {
        char a[KV_ADDR_STRLEN], h[KV_ADDR_STRLEN];
        NftElem *el;
        int r;

        if (ep->masq)
                for (size_t i = 0; i < ep->n_addrs; i++) {
                        const KvAddr *ad = &ep->addrs[i];
                        bool v6 = ad->family == AF_INET6;
                        r = elems_push(l, &el);
                        if (r < 0)
                                return r;
                        el->set = v6 ? "masq6" : "masq4";
                        el->klen = kv_addr_len(ad->family);
                        memcpy(el->key, ad->bytes, el->klen);
                        snprintf(el->what, sizeof el->what, "%s", fmt_addr(ad, a));
                }

        for (size_t i = 0; i < ep->n_pm; i++) {
                const NatPortMapping *m = &ep->pm[i];
                for (int v6 = 0; v6 <= 1; v6++) {
                        int fam = v6 ? AF_INET6 : AF_INET;
                        const KvAddr *ad = ep_addr(ep, fam);
                        if (!ad || (m->host_ip.family != 0 && m->host_ip.family != fam))
                                continue;
                        size_t alen = kv_addr_len(fam);
                        r = elems_push(l, &el);
                        if (r < 0)
                                return r;
                        uint8_t *k = el->key;
                        if (m->host_ip.family) {
                                el->set = v6 ? "pf6" : "pf4";
                                memcpy(k, m->host_ip.bytes, alen);
                                k += alen;
                                snprintf(h, sizeof h, v6 ? "[%s]" : "%s", fmt_addr(&m->host_ip, a));
                        } else {
                                el->set = v6 ? "pf6any" : "pf4any";
                                snprintf(h, sizeof h, "*");
                        }
                        k[0] = m->proto; /* each concatenated field is padded to 4 bytes */
                        put_be16(k + 4, m->host_port);
                        el->klen = (uint32_t) (k + 8 - el->key);
                        memcpy(el->data, ad->bytes, alen);
                        put_be16(el->data + alen, m->container_port);
                        el->dlen = (uint32_t) alen + 4;
                        el->map = true;
                        snprintf(el->what, sizeof el->what, "%s %s:%u -> %s%s%s:%u", nat_proto_name(m->proto), h,
                                 m->host_port, v6 ? "[" : "", fmt_addr(ad, a), v6 ? "]" : "", m->container_port);
                }
        }
        return 0;
}

static int subnet_elem(const KvPrefix *p, NftElemList *l) {
        char a[KV_ADDR_STRLEN];
        NftElem *el;
        int r = elems_push(l, &el);
        if (r < 0)
                return r;
        KvPrefix net = kv_prefix_network(p);
        size_t alen = kv_addr_len(net.addr.family);
        el->set = net.addr.family == AF_INET6 ? "nomasq6" : "nomasq4";
        el->klen = alen;
        memcpy(el->key, net.addr.bytes, alen);
        /* interval end = last address + 1 (absent when that overflows) */
        KvAddr last = net.addr;
        for (size_t bit = net.prefixlen; bit < alen * 8; bit++)
                last.bytes[bit / 8] |= (uint8_t) (0x80 >> (bit % 8));
        if (kv_addr_next(&last)) {
                el->elen = alen;
                memcpy(el->end, last.bytes, alen);
        }
        snprintf(el->what, sizeof el->what, "%s", kv_prefix_fmt(&net, a));
        return 0;
}

static int nft_push_elem(NftwBatch *bt, const NftElem *el, bool add) {
        NftwElem x = { .key = el->key, .klen = el->klen, .data = el->data, .dlen = el->dlen, .end = el->end,
                       .elen = el->elen };
        return nftw_elem(bt, add, el->set, &x, "%s %s %s %s %s", add ? "adding" : "removing", el->what,
                         add ? "to" : "from", el->map ? "map" : "set", el->set);
}

unsigned nat_nft_subnet_refs(NatBackend *b, const KvPrefix *p) {
        return b && b->ops == &nat_nft_ops ? nat_owners_refs(&((NftBackend *) b->data)->owners, p, NULL) : 0;
}

/* ---- sending ---- */

/* Sends ops as one transaction (render mode: appends their text). On a kernel error returns it and
 * fills *f. */
static int nft_commit(NftBackend *nb, const NftwOp *ops, size_t n, NftwFailure *f) {
        *f = (NftwFailure){ .op = -1 };
        if (n == 0)
                return 0;
        if (nb->render)
                return nftw_render(ops, n, nb->out);
        return nftw_commit(nb->sk, NFT_FAMILY, ops, n, f);
}

static int nft_err(KvErr *e, int r, const NftwOp *ops, const NftwFailure *f) {
        return nftw_error(e, r == -EEXIST ? KV_ERR_EXISTS : KV_ERR_INTERNAL, r, "nftables", ops, f);
}

static int nft_commit_batch(NftBackend *nb, NftwBatch *bt, KvErr *e) {
        NftwFailure f;
        int r = nft_commit(nb, bt->ops, bt->n, &f);
        if (r < 0)
                return nft_err(e, r, bt->ops, &f);
        return 0;
}

/* ---- dumping a set ---- */

typedef struct NftDumpElem {
        uint8_t key[40], data[24];
        uint32_t klen, dlen, flags;
} NftDumpElem;

typedef struct NftDump {
        NftDumpElem *v;
        size_t n, cap;
} NftDump;

static int dump_elem_cb(struct nftnl_set_elem *se, void *userdata) {
        NftDump *d = userdata;
        if (ARRAY_GROW(d->v, d->cap, d->n + 1) < 0)
                return -ENOMEM;
        NftDumpElem *x = &d->v[d->n++];
        *x = (NftDumpElem){};
        uint32_t len = 0;
        const void *p = nftnl_set_elem_get(se, NFTNL_SET_ELEM_KEY, &len);
        if (p && len <= sizeof x->key) {
                memcpy(x->key, p, len);
                x->klen = len;
        }
        p = nftnl_set_elem_get(se, NFTNL_SET_ELEM_DATA, &len);
        if (p && len <= sizeof x->data) {
                memcpy(x->data, p, len);
                x->dlen = len;
        }
        if (nftnl_set_elem_is_set(se, NFTNL_SET_ELEM_FLAGS))
                x->flags = nftnl_set_elem_get_u32(se, NFTNL_SET_ELEM_FLAGS);
        return 0;
}

/* All elements of a set; -ENOENT when the table or set does not exist. */
static int nft_dump_set(NftBackend *nb, const char *set, NftDump *d) {
        *d = (NftDump){};
        if (nb->render)
                return 0;
        int r = nftw_elems_dump(nb->sk, NFT_FAMILY, NFT_TABLE, set, dump_elem_cb, d);
        if (r < 0) {
                free(d->v);
                *d = (NftDump){};
        }
        return r;
}

/* ---- table existence ---- */

static int nft_table_exists(NftBackend *nb) {
        if (nb->render)
                return 1;
        int r = nftw_table_get(nb->sk, NFT_FAMILY, NFT_TABLE);
        return r == -ENOENT ? 0 : r < 0 ? r : 1;
}

/* ---- ops ---- */

static int nft_init_common(NatBackend *b, bool render) {
        NftBackend *nb = calloc(1, sizeof *nb);
        if (!nb)
                return -ENOMEM;
        nb->render = render;
        int r = 0;
        if (render) {
                nb->out = open_memstream(&nb->text, &nb->text_len);
                if (!nb->out)
                        r = -ENOMEM;
        } else
                r = nftw_sock_open(-1, &nb->sk);
        if (r < 0) {
                free(nb);
                return r;
        }
        b->data = nb;
        return 0;
}

static int nft_init(NatBackend *b) {
        return nft_init_common(b, false);
}

static void nft_done(NatBackend *b) {
        NftBackend *nb = b->data;
        if (!nb)
                return;
        nftw_sock_free(nb->sk);
        if (nb->out)
                fclose(nb->out);
        free(nb->text);
        nat_owners_clear(&nb->owners);
        free(nb);
        b->data = NULL;
}

int nat_nft_new_render(NatBackend **ret) {
        _cleanup_free_ NatBackend *b = calloc(1, sizeof *b);
        if (!b)
                return -ENOMEM;
        b->ops = &nat_nft_ops;
        int r = nft_init_common(b, true);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(b);
        return 0;
}

char *nat_nft_take_rendered(NatBackend *b) {
        if (!b || b->ops != &nat_nft_ops)
                return NULL;
        NftBackend *nb = b->data;
        if (!nb->out)
                return strdup("");
        fflush(nb->out);
        char *s = strdup(nb->text ? nb->text : "");
        fclose(nb->out);
        free(nb->text);
        nb->text = NULL;
        nb->text_len = 0;
        nb->out = open_memstream(&nb->text, &nb->text_len);
        return s;
}

/* Appends l's elements to bt (adding them) and sends the batch; the table exists afterwards. */
static int nft_send_adds(NftBackend *nb, NftwBatch *bt, const NftElemList *l, KvErr *e) {
        int r = 0;
        for (size_t i = 0; r >= 0 && i < l->n; i++)
                r = nft_push_elem(bt, &l->v[i], true);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "nftables: building batch");
        r = nft_commit_batch(nb, bt, e);
        if (r < 0)
                return r;
        nb->skeleton_ok = true;
        return 0;
}

static int nft_sync(NatBackend *b, const NatEndpoint *eps, size_t n, KvErr *e) {
        NftBackend *nb = b->data;
        _cleanup_(nftw_batch_done) NftwBatch bt = NFT_BATCH_INIT;
        _cleanup_(elems_done) NftElemList l = {};
        int r;

        /* add + delete + add: replaces the table whether or not it existed, in one transaction */
        r = nftw_table(&bt, true, "creating table");
        if (r >= 0)
                r = nftw_table(&bt, false, "flushing table inet " NFT_TABLE);
        if (r >= 0)
                r = nft_push_skeleton(&bt);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = ep_elems(&eps[i], &l);
                for (size_t j = 0; r >= 0 && j < eps[i].n_subnets; j++) {
                        bool seen = false;
                        for (size_t k = 0; k <= i && !seen; k++)
                                for (size_t m = 0; m < (k == i ? j : eps[k].n_subnets) && !seen; m++)
                                        seen = nat_prefix_eq(&eps[k].subnets[m], &eps[i].subnets[j]);
                        if (!seen)
                                r = subnet_elem(&eps[i].subnets[j], &l);
                }
        }
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "nftables: building batch");

        r = nft_send_adds(nb, &bt, &l, e);
        if (r < 0)
                return r;
        nat_owners_clear(&nb->owners);
        for (size_t i = 0; i < n; i++) {
                r = nat_owners_set(&nb->owners, &eps[i]);
                if (r < 0)
                        return kverr_set_errno(e, KV_ERR_INTERNAL, r, "nftables: recording subnets");
        }
        return 0;
}

static int nft_add_once(NftBackend *nb, const NatEndpoint *ep, KvErr *e) {
        _cleanup_(nftw_batch_done) NftwBatch bt = NFT_BATCH_INIT;
        _cleanup_(elems_done) NftElemList l = {};
        int r;

        if (!nb->skeleton_ok) {
                r = nft_table_exists(nb);
                if (r < 0)
                        return kverr_set(e, KV_ERR_INTERNAL, r, "nftables: looking up table inet kvnet: %s",
                                         strerror(-r));
                if (r == 0) {
                        r = nft_push_skeleton(&bt);
                        if (r < 0)
                                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "nftables: building batch");
                        nat_owners_clear(&nb->owners); /* a fresh table has no subnets */
                }
        }
        r = ep_elems(ep, &l);
        for (size_t j = 0; r >= 0 && j < ep->n_subnets; j++)
                if (!nat_prefix_repeats(ep->subnets, j) && nat_owners_refs(&nb->owners, &ep->subnets[j], NULL) == 0)
                        r = subnet_elem(&ep->subnets[j], &l);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "nftables: building batch");

        r = nft_send_adds(nb, &bt, &l, e);
        if (r < 0)
                return r;
        r = nat_owners_set(&nb->owners, ep);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "nftables: recording subnets");
        return 0;
}

static int nft_add(NatBackend *b, const NatEndpoint *ep, KvErr *e) {
        NftBackend *nb = b->data;
        bool assumed = nb->skeleton_ok;
        KvErr e2 = {};
        int r = nft_add_once(nb, ep, &e2);
        if (r == -ENOENT && assumed) {
                /* the table vanished under us: recreate it once */
                nb->skeleton_ok = false;
                kverr_clear(&e2);
                r = nft_add_once(nb, ep, &e2);
        }
        if (r < 0 && e)
                *e = e2;
        return r;
}

static int nft_del(NatBackend *b, const NatEndpoint *ep, KvErr *e) {
        NftBackend *nb = b->data;
        _cleanup_(nftw_batch_done) NftwBatch bt = NFT_BATCH_INIT;
        _cleanup_(elems_done) NftElemList l = {};
        int r;

        /* subnets: only those this (known) endpoint owned and no other known endpoint names */
        const NatOwner *o = nat_owners_find(&nb->owners, ep->id);
        r = ep_elems(ep, &l);
        if (o)
                for (size_t j = 0; r >= 0 && j < o->n_subnets; j++)
                        if (!nat_prefix_repeats(o->subnets, j) &&
                            nat_owners_refs(&nb->owners, &o->subnets[j], ep->id) == 0)
                                r = subnet_elem(&o->subnets[j], &l);
        for (size_t i = 0; r >= 0 && i < l.n; i++)
                r = nft_push_elem(&bt, &l.v[i], false);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "nftables: building batch");

        NftwFailure f;
        r = nft_commit(nb, bt.ops, bt.n, &f);
        if (r == -ENOENT) {
                /* some element (or the table) is already gone: the batch was rolled back, so
                 * remove the rest one by one and ignore what is missing */
                for (size_t i = 0; i < bt.n; i++) {
                        r = nft_commit(nb, &bt.ops[i], 1, &f);
                        if (r == -ENOENT)
                                r = 0;
                        if (r < 0)
                                return nft_err(e, r, &bt.ops[i], &f);
                }
        } else if (r < 0)
                return nft_err(e, r, bt.ops, &f);
        nat_owners_remove(&nb->owners, ep->id);
        return 0;
}

static const NftDumpElem *dump_find(const NftDump *d, const NftElem *el) {
        for (size_t i = 0; i < d->n; i++) {
                const NftDumpElem *x = &d->v[i];
                if (x->flags & NFT_SET_ELEM_INTERVAL_END)
                        continue;
                if (x->klen == el->klen && memcmp(x->key, el->key, el->klen) == 0)
                        return x;
        }
        return NULL;
}

static int nft_check(NatBackend *b, const NatEndpoint *ep, KvErr *e) {
        NftBackend *nb = b->data;
        _cleanup_(elems_done) NftElemList l = {};
        int r = ep_elems(ep, &l);
        for (size_t j = 0; r >= 0 && j < ep->n_subnets; j++)
                r = subnet_elem(&ep->subnets[j], &l);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "nftables: building elements");
        if (nb->render)
                return 0;

        static const char *const sets[] = { "masq4", "masq6", "nomasq4", "nomasq6", "pf4", "pf4any", "pf6", "pf6any" };
        for (size_t s = 0; s < ELEMENTSOF(sets); s++) {
                bool needed = false;
                for (size_t i = 0; i < l.n && !needed; i++)
                        needed = streq(l.v[i].set, sets[s]);
                if (!needed)
                        continue;
                NftDump d;
                r = nft_dump_set(nb, sets[s], &d);
                if (r < 0)
                        return kverr_set(e, r == -ENOENT ? KV_ERR_NOT_AVAILABLE : KV_ERR_INTERNAL, r,
                                         "nftables: listing set %s: %s", sets[s], strerror(-r));
                for (size_t i = 0; i < l.n; i++) {
                        if (!streq(l.v[i].set, sets[s]))
                                continue;
                        const NftDumpElem *x = dump_find(&d, &l.v[i]);
                        bool ok = x && (l.v[i].dlen == 0 ||
                                        (x->dlen == l.v[i].dlen && memcmp(x->data, l.v[i].data, x->dlen) == 0));
                        if (!ok) {
                                free(d.v);
                                return kverr_set(e, KV_ERR_NOT_AVAILABLE, -ENOENT, "nftables: endpoint '%s': %s in %s %s: %s", ep->id,
                                                 l.v[i].what, l.v[i].map ? "map" : "set", l.v[i].set,
                                                 x ? "maps to another endpoint" : "missing");
                        }
                }
                free(d.v);
        }
        return 0;
}

static int nft_dump_json(NatBackend *b, json_t *o) {
        NftBackend *nb = b->data;
        char a[KV_ADDR_STRLEN], h[KV_ADDR_STRLEN];
        json_t *masq = json_array(), *pms = json_array();
        if (json_object_set_new(o, "table", json_string("inet " NFT_TABLE)) < 0 ||
            json_object_set_new(o, "masquerade", masq) < 0 || json_object_set_new(o, "portMappings", pms) < 0)
                return -ENOMEM;

        static const struct {
                const char *set;
                int family;
                bool host;
        } sets[] = {
                { "masq4", AF_INET, false }, { "masq6", AF_INET6, false }, { "pf4", AF_INET, true },
                { "pf4any", AF_INET, false }, { "pf6", AF_INET6, true },  { "pf6any", AF_INET6, false },
        };
        for (size_t s = 0; s < ELEMENTSOF(sets); s++) {
                NftDump d;
                int r = nft_dump_set(nb, sets[s].set, &d);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return r;
                size_t alen = kv_addr_len(sets[s].family);
                for (size_t i = 0; i < d.n; i++) {
                        const NftDumpElem *x = &d.v[i];
                        KvAddr ad = { .family = sets[s].family }, hip = { .family = sets[s].family };
                        if (s < 2) {
                                if (x->klen != alen)
                                        continue;
                                memcpy(ad.bytes, x->key, alen);
                                r = json_array_append_new(masq, json_string(kv_addr_fmt(&ad, a)));
                        } else {
                                const uint8_t *k = x->key;
                                if (x->dlen != alen + 4 || x->klen != (sets[s].host ? alen : 0) + 8)
                                        continue;
                                if (sets[s].host) {
                                        memcpy(hip.bytes, k, alen);
                                        k += alen;
                                }
                                memcpy(ad.bytes, x->data, alen);
                                const char *pn = nat_proto_name(k[0]);
                                r = json_array_append_new(
                                        pms, json_pack("{s:s,s:i,s:s,s:s,s:i}", "hostIP", kv_addr_fmt(&hip, h),
                                                       "hostPort", (k[4] << 8) | k[5], "protocol", pn ? pn : "?",
                                                       "address", kv_addr_fmt(&ad, a), "port",
                                                       (x->data[alen] << 8) | x->data[alen + 1]));
                        }
                        if (r < 0) {
                                free(d.v);
                                return -ENOMEM;
                        }
                }
                free(d.v);
        }
        return 0;
}

const NatBackendOps nat_nft_ops = {
        .kind = NAT_BACKEND_NFTABLES,
        .init = nft_init,
        .done = nft_done,
        .sync = nft_sync,
        .add = nft_add,
        .del = nft_del,
        .check = nft_check,
        .dump = nft_dump_json,
        .sandbox_apply = nat_nft_sandbox_apply,
        .sandbox_remove = nat_nft_sandbox_remove,
        .sandbox_check = nat_nft_sandbox_check,
};
