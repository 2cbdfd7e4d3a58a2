/* SPDX-License-Identifier: Apache-2.0 */
/* NAT on nftables through libnftnl + libmnl: one table "inet kvnet" whose rules never change after
 * creation; endpoints only add and remove set/map elements.
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
 * Every change is one nfnetlink batch. A batch is a list of NftOp (message type + nftnl object +
 * a description for errors) so it can be sent or rendered as text for golden tests. */
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "common/json-util.h"
#include "netd/nat/nat.h"

#define NFT_TABLE "kvnet"
#define NFT_FAMILY NFPROTO_INET

/* nft's datatype ids (for "nft list" to print keys), concatenations are id << 6 | id. */
#define NFT_TYPE_IPADDR 7
#define NFT_TYPE_IP6ADDR 8
#define NFT_TYPE_INET_PROTO 12
#define NFT_TYPE_INET_SERVICE 13
#define NFT_CONCAT2(a, b) (((a) << 6) | (b))
#define NFT_CONCAT3(a, b, c) (((((a) << 6) | (b)) << 6) | (c))

enum { OBJ_TABLE, OBJ_CHAIN, OBJ_SET, OBJ_RULE, OBJ_ELEM };

typedef struct NftOp {
        uint16_t type;  /* NFT_MSG_* */
        uint16_t flags; /* NLM_F_* besides REQUEST|ACK */
        int kind;
        void *obj;
        char desc[160];
} NftOp;

typedef struct NftBatch {
        NftOp *ops;
        size_t n, cap;
} NftBatch;

typedef struct NftOwner {
        char *id;
        uint64_t id_hash; /* compared before the string: owner_find runs on every ADD and DEL */
        KvPrefix subnets[NAT_MAX_SUBNETS];
        size_t n_subnets;
} NftOwner;

/* How many owners name a subnet (its network prefix). A node has a handful of subnets and thousands of
 * owners: counting here keeps an ADD or DEL independent of the number of endpoints. */
typedef struct NftSubnetRef {
        KvPrefix net;
        unsigned refs;
} NftSubnetRef;

typedef struct NftBackend {
        struct mnl_socket *nl; /* NULL in render mode */
        uint32_t portid, seq;
        bool render;
        bool skeleton_ok; /* table known to exist */
        char *text;
        size_t text_len;
        FILE *out;
        NftOwner *owners;
        size_t n_owners, cap_owners;
        NftSubnetRef *subnet_refs;
        size_t n_subnet_refs, cap_subnet_refs;
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

static void nft_op_free_obj(NftOp *op) {
        switch (op->kind) {
        case OBJ_TABLE:
                nftnl_table_free(op->obj);
                break;
        case OBJ_CHAIN:
                nftnl_chain_free(op->obj);
                break;
        case OBJ_SET:
        case OBJ_ELEM:
                nftnl_set_free(op->obj);
                break;
        case OBJ_RULE:
                nftnl_rule_free(op->obj);
                break;
        }
}

static void nft_batch_done(NftBatch *bt) {
        for (size_t i = 0; i < bt->n; i++)
                nft_op_free_obj(&bt->ops[i]);
        free(bt->ops);
        *bt = (NftBatch){};
}

/* Takes ownership of obj (also on failure). */
static int nft_batch_push(NftBatch *bt, uint16_t type, uint16_t flags, int kind, void *obj, const char *desc) {
        NftOp op = { .type = type, .flags = flags, .kind = kind, .obj = obj };
        if (!obj)
                return -ENOMEM;
        if (bt->n == bt->cap) {
                size_t cap = bt->cap ? bt->cap * 2 : 32;
                NftOp *v = realloc(bt->ops, cap * sizeof *v);
                if (!v) {
                        nft_op_free_obj(&op);
                        return -ENOMEM;
                }
                bt->ops = v;
                bt->cap = cap;
        }
        snprintf(op.desc, sizeof op.desc, "%s", desc);
        bt->ops[bt->n++] = op;
        return 0;
}

static int elems_push(NftElemList *l, NftElem **ret) {
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 16;
                NftElem *v = realloc(l->v, cap * sizeof *v);
                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n] = (NftElem){};
        *ret = &l->v[l->n++];
        return 0;
}

static void elems_done(NftElemList *l) {
        free(l->v);
        *l = (NftElemList){};
}

/* ---- skeleton ---- */

static struct nftnl_table *nft_table_new(void) {
        struct nftnl_table *t = nftnl_table_alloc();
        if (!t)
                return NULL;
        nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, NFT_FAMILY);
        nftnl_table_set_str(t, NFTNL_TABLE_NAME, NFT_TABLE);
        return t;
}

static struct nftnl_chain *nft_chain_new(const char *name, uint32_t hook, int32_t prio) {
        struct nftnl_chain *c = nftnl_chain_alloc();
        if (!c)
                return NULL;
        nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, NFT_FAMILY);
        nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, NFT_TABLE);
        nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
        nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "nat");
        nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
        nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
        nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
        return c;
}

static struct nftnl_set *nft_set_new(const char *name, uint32_t flags, uint32_t ktype, uint32_t klen, uint32_t dtype,
                                     uint32_t dlen, uint32_t id) {
        struct nftnl_set *s = nftnl_set_alloc();
        if (!s)
                return NULL;
        nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFT_FAMILY);
        nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE);
        nftnl_set_set_str(s, NFTNL_SET_NAME, name);
        nftnl_set_set_u32(s, NFTNL_SET_ID, id);
        nftnl_set_set_u32(s, NFTNL_SET_FLAGS, flags);
        nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, ktype);
        nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, klen);
        if (flags & NFT_SET_MAP) {
                nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, dtype);
                nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, dlen);
        }
        return s;
}

/* Expression helpers: each returns false on allocation failure. */
static bool ex_add(struct nftnl_rule *r, struct nftnl_expr *x) {
        if (!x)
                return false;
        nftnl_rule_add_expr(r, x);
        return true;
}

static bool ex_meta(struct nftnl_rule *r, uint32_t key, uint32_t dreg) {
        struct nftnl_expr *x = nftnl_expr_alloc("meta");
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_META_KEY, key);
                nftnl_expr_set_u32(x, NFTNL_EXPR_META_DREG, dreg);
        }
        return ex_add(r, x);
}

static bool ex_cmp(struct nftnl_rule *r, uint32_t sreg, uint32_t op, const void *data, uint32_t len) {
        struct nftnl_expr *x = nftnl_expr_alloc("cmp");
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_CMP_SREG, sreg);
                nftnl_expr_set_u32(x, NFTNL_EXPR_CMP_OP, op);
                nftnl_expr_set(x, NFTNL_EXPR_CMP_DATA, data, len);
        }
        return ex_add(r, x);
}

static bool ex_payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len, uint32_t dreg) {
        struct nftnl_expr *x = nftnl_expr_alloc("payload");
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_BASE, base);
                nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_OFFSET, off);
                nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_LEN, len);
                nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_DREG, dreg);
        }
        return ex_add(r, x);
}

/* dreg 0: plain membership test. */
static bool ex_lookup(struct nftnl_rule *r, uint32_t sreg, const char *set, uint32_t dreg, bool inv) {
        struct nftnl_expr *x = nftnl_expr_alloc("lookup");
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_LOOKUP_SREG, sreg);
                nftnl_expr_set_str(x, NFTNL_EXPR_LOOKUP_SET, set);
                if (dreg)
                        nftnl_expr_set_u32(x, NFTNL_EXPR_LOOKUP_DREG, dreg);
                if (inv)
                        nftnl_expr_set_u32(x, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
        }
        return ex_add(r, x);
}

static bool ex_dnat(struct nftnl_rule *r, uint32_t family, uint32_t reg_addr, uint32_t reg_proto) {
        struct nftnl_expr *x = nftnl_expr_alloc("nat");
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
                nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_FAMILY, family);
                nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_REG_ADDR_MIN, reg_addr);
                nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_REG_PROTO_MIN, reg_proto);
        }
        return ex_add(r, x);
}

static bool ex_masq(struct nftnl_rule *r) {
        return ex_add(r, nftnl_expr_alloc("masq"));
}

static bool ex_nfproto(struct nftnl_rule *r, uint8_t proto) {
        return ex_meta(r, NFT_META_NFPROTO, NFT_REG_1) && ex_cmp(r, NFT_REG_1, NFT_CMP_EQ, &proto, 1);
}

static bool ex_fib_local(struct nftnl_rule *r) {
        uint32_t local = RTN_LOCAL;
        struct nftnl_expr *x = nftnl_expr_alloc("fib");
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
                nftnl_expr_set_u32(x, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
                nftnl_expr_set_u32(x, NFTNL_EXPR_FIB_DREG, NFT_REG_1);
        }
        return ex_add(r, x) && ex_cmp(r, NFT_REG_1, NFT_CMP_EQ, &local, sizeof local);
}

static bool ex_ct_dnat(struct nftnl_rule *r) {
        uint32_t mask = IPS_DST_NAT, zero = 0;
        struct nftnl_expr *x = nftnl_expr_alloc("ct"), *b;
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_CT_KEY, NFT_CT_STATUS);
                nftnl_expr_set_u32(x, NFTNL_EXPR_CT_DREG, NFT_REG_1);
        }
        if (!ex_add(r, x))
                return false;
        b = nftnl_expr_alloc("bitwise");
        if (b) {
                nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
                nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
                nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_LEN, sizeof mask);
                nftnl_expr_set(b, NFTNL_EXPR_BITWISE_MASK, &mask, sizeof mask);
                nftnl_expr_set(b, NFTNL_EXPR_BITWISE_XOR, &zero, sizeof zero);
        }
        return ex_add(r, b) && ex_cmp(r, NFT_REG_1, NFT_CMP_NEQ, &zero, sizeof zero);
}

static struct nftnl_rule *nft_rule_new(const char *chain) {
        struct nftnl_rule *r = nftnl_rule_alloc();
        if (!r)
                return NULL;
        nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFT_FAMILY);
        nftnl_rule_set_str(r, NFTNL_RULE_TABLE, NFT_TABLE);
        nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
        return r;
}

typedef enum { R_PF, R_PFANY, R_HAIRPIN, R_MASQ } RuleKind;

static struct nftnl_rule *nft_build_rule(const char *chain, RuleKind kind, bool v6) {
        struct nftnl_rule *r = nft_rule_new(chain);
        if (!r)
                return NULL;
        uint8_t nfproto = v6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
        uint32_t alen = v6 ? 16 : 4, saddr = v6 ? 8 : 12, daddr = v6 ? 24 : 16;
        uint32_t areg_words = alen / 4;
        bool ok = ex_nfproto(r, nfproto);
        switch (kind) {
        case R_PF: /* daddr . l4proto . dport -> addr . port */
                ok = ok && ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, daddr, alen, NFT_REG32_00) &&
                     ex_meta(r, NFT_META_L4PROTO, NFT_REG32_00 + areg_words) &&
                     ex_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_00 + areg_words + 1) &&
                     ex_lookup(r, NFT_REG32_00, v6 ? "pf6" : "pf4", NFT_REG32_00, false) &&
                     ex_dnat(r, nfproto, NFT_REG32_00, NFT_REG32_00 + areg_words);
                break;
        case R_PFANY: /* fib daddr type local, l4proto . dport -> addr . port */
                ok = ok && ex_fib_local(r) && ex_meta(r, NFT_META_L4PROTO, NFT_REG32_00) &&
                     ex_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_01) &&
                     ex_lookup(r, NFT_REG32_00, v6 ? "pf6any" : "pf4any", NFT_REG32_00, false) &&
                     ex_dnat(r, nfproto, NFT_REG32_00, NFT_REG32_00 + areg_words);
                break;
        case R_HAIRPIN:
                ok = ok && ex_ct_dnat(r) && ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, saddr, alen, NFT_REG_1) &&
                     ex_lookup(r, NFT_REG_1, v6 ? "nomasq6" : "nomasq4", 0, false) && ex_masq(r);
                break;
        case R_MASQ:
                ok = ok && ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, saddr, alen, NFT_REG_1) &&
                     ex_lookup(r, NFT_REG_1, v6 ? "masq6" : "masq4", 0, false) &&
                     ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, daddr, alen, NFT_REG_1) &&
                     ex_lookup(r, NFT_REG_1, v6 ? "nomasq6" : "nomasq4", 0, true) && ex_masq(r);
                break;
        }
        if (!ok) {
                nftnl_rule_free(r);
                return NULL;
        }
        return r;
}

static int nft_push_skeleton(NftBatch *bt) {
        const uint16_t CR = NLM_F_CREATE;
        int r = nft_batch_push(bt, NFT_MSG_NEWTABLE, CR, OBJ_TABLE, nft_table_new(), "creating table inet " NFT_TABLE);
        if (r < 0)
                return r;

        static const struct {
                const char *name;
                uint32_t flags, ktype, klen, dtype, dlen;
        } sets[] = {
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
                char desc[64];
                snprintf(desc, sizeof desc, "creating set %s", sets[i].name);
                r = nft_batch_push(bt, NFT_MSG_NEWSET, CR, OBJ_SET,
                                   nft_set_new(sets[i].name, sets[i].flags, sets[i].ktype, sets[i].klen,
                                               sets[i].dtype, sets[i].dlen, (uint32_t) i + 1),
                                   desc);
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
                char desc[64];
                snprintf(desc, sizeof desc, "creating chain %s", chains[i].name);
                r = nft_batch_push(bt, NFT_MSG_NEWCHAIN, CR, OBJ_CHAIN,
                                   nft_chain_new(chains[i].name, chains[i].hook, chains[i].prio), desc);
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
                        char desc[64];
                        snprintf(desc, sizeof desc, "adding rule to chain %s", rules[i].chain);
                        r = nft_batch_push(bt, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, OBJ_RULE,
                                           nft_build_rule(rules[i].chain, rules[i].kind, v6), desc);
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

static struct nftnl_set_elem *mk_elem(const void *key, uint32_t klen, const void *data, uint32_t dlen, bool end) {
        struct nftnl_set_elem *e = nftnl_set_elem_alloc();
        if (!e)
                return NULL;
        nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, klen);
        if (dlen)
                nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, data, dlen);
        if (end)
                nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
        return e;
}

static int nft_push_elem(NftBatch *bt, const NftElem *el, bool add) {
        struct nftnl_set *s = nftnl_set_alloc();
        if (!s)
                return -ENOMEM;
        nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFT_FAMILY);
        nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE);
        nftnl_set_set_str(s, NFTNL_SET_NAME, el->set);
        struct nftnl_set_elem *e = mk_elem(el->key, el->klen, el->data, el->dlen, false);
        if (!e)
                goto oom;
        nftnl_set_elem_add(s, e);
        if (el->elen) {
                e = mk_elem(el->end, el->elen, NULL, 0, true);
                if (!e)
                        goto oom;
                nftnl_set_elem_add(s, e);
        }
        char desc[160];
        snprintf(desc, sizeof desc, "%s %s %s %s %s", add ? "adding" : "removing", el->what, add ? "to" : "from",
                 el->map ? "map" : "set", el->set);
        return nft_batch_push(bt, add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM, add ? NLM_F_CREATE : 0, OBJ_ELEM, s,
                              desc);
oom:
        nftnl_set_free(s);
        return -ENOMEM;
}

/* ---- owners (subnet reference counting) ---- */

static bool prefix_eq(const KvPrefix *a, const KvPrefix *b) {
        KvPrefix x = kv_prefix_network(a), y = kv_prefix_network(b);
        return x.prefixlen == y.prefixlen && kv_addr_equal(&x.addr, &y.addr);
}

static NftOwner *owner_find(NftBackend *nb, const char *id) {
        uint64_t h = kv_hash64(id, strlen(id));
        for (size_t i = 0; i < nb->n_owners; i++)
                if (nb->owners[i].id_hash == h && streq(nb->owners[i].id, id))
                        return &nb->owners[i];
        return NULL;
}

static NftSubnetRef *subnet_ref_find(NftBackend *nb, const KvPrefix *p) {
        KvPrefix net = kv_prefix_network(p);
        for (size_t i = 0; i < nb->n_subnet_refs; i++)
                if (nb->subnet_refs[i].net.prefixlen == net.prefixlen &&
                    kv_addr_equal(&nb->subnet_refs[i].net.addr, &net.addr))
                        return &nb->subnet_refs[i];
        return NULL;
}

/* Does o name p (o may be NULL)? */
static bool owner_names(const NftOwner *o, const KvPrefix *p) {
        for (size_t j = 0; o && j < o->n_subnets; j++)
                if (prefix_eq(&o->subnets[j], p))
                        return true;
        return false;
}

/* +1 / -1 for every distinct subnet of o. */
static int owner_ref_subnets(NftBackend *nb, const NftOwner *o, int delta) {
        for (size_t j = 0; j < o->n_subnets; j++) {
                bool dup = false;
                for (size_t k = 0; k < j && !dup; k++)
                        dup = prefix_eq(&o->subnets[k], &o->subnets[j]);
                if (dup)
                        continue;
                NftSubnetRef *sr = subnet_ref_find(nb, &o->subnets[j]);
                if (delta < 0) {
                        if (sr && sr->refs > 0 && --sr->refs == 0)
                                *sr = nb->subnet_refs[--nb->n_subnet_refs];
                        continue;
                }
                if (!sr) {
                        if (nb->n_subnet_refs == nb->cap_subnet_refs) {
                                size_t nc = nb->cap_subnet_refs ? nb->cap_subnet_refs * 2 : 4;
                                NftSubnetRef *v = realloc(nb->subnet_refs, nc * sizeof *v);
                                if (!v)
                                        return -ENOMEM;
                                nb->subnet_refs = v;
                                nb->cap_subnet_refs = nc;
                        }
                        sr = &nb->subnet_refs[nb->n_subnet_refs++];
                        *sr = (NftSubnetRef){ .net = kv_prefix_network(&o->subnets[j]) };
                }
                sr->refs++;
        }
        return 0;
}

/* Owners other than 'except' naming p. */
static unsigned subnet_refs(NftBackend *nb, const KvPrefix *p, const char *except) {
        NftSubnetRef *sr = subnet_ref_find(nb, p);
        unsigned n = sr ? sr->refs : 0;
        if (n > 0 && except && owner_names(owner_find(nb, except), p))
                n--;
        return n;
}

static void owners_clear(NftBackend *nb) {
        for (size_t i = 0; i < nb->n_owners; i++)
                free(nb->owners[i].id);
        free(nb->owners);
        nb->owners = NULL;
        nb->n_owners = nb->cap_owners = 0;
        free(nb->subnet_refs);
        nb->subnet_refs = NULL;
        nb->n_subnet_refs = nb->cap_subnet_refs = 0;
}

static int owner_set(NftBackend *nb, const NatEndpoint *ep) {
        NftOwner *o = owner_find(nb, ep->id);
        if (!o) {
                char *id = strdup(ep->id);
                if (!id)
                        return -ENOMEM;
                if (nb->n_owners == nb->cap_owners) {
                        size_t nc = nb->cap_owners ? nb->cap_owners * 2 : 64;
                        NftOwner *v = realloc(nb->owners, nc * sizeof *v);
                        if (!v) {
                                free(id);
                                return -ENOMEM;
                        }
                        nb->owners = v;
                        nb->cap_owners = nc;
                }
                o = &nb->owners[nb->n_owners++];
                *o = (NftOwner){ .id = id, .id_hash = kv_hash64(id, strlen(id)) };
        } else
                IGNORE_RESULT(owner_ref_subnets(nb, o, -1));
        o->n_subnets = ep->n_subnets;
        memcpy(o->subnets, ep->subnets, ep->n_subnets * sizeof ep->subnets[0]);
        return owner_ref_subnets(nb, o, +1);
}

static void owner_remove(NftBackend *nb, const char *id) {
        NftOwner *o = owner_find(nb, id);
        if (!o)
                return;
        IGNORE_RESULT(owner_ref_subnets(nb, o, -1));
        free(o->id);
        *o = nb->owners[--nb->n_owners];
}

unsigned nat_nft_subnet_refs(NatBackend *b, const KvPrefix *p) {
        return b && b->ops == &nat_nft_ops ? subnet_refs(b->data, p, NULL) : 0;
}

/* ---- sending ---- */

static int nft_render(NftBackend *nb, const NftOp *ops, size_t n) {
        _cleanup_free_ char *buf = malloc(8192);
        if (!buf || !nb->out)
                return -ENOMEM;
        fprintf(nb->out, "# batch\n");
        for (size_t i = 0; i < n; i++) {
                const NftOp *op = &ops[i];
                const char *verb = op->type == NFT_MSG_DELTABLE || op->type == NFT_MSG_DELSETELEM ? "delete" : "add";
                const char *what = (const char *[]){ "table", "chain", "set", "rule", "element" }[op->kind];
                buf[0] = '\0';
                switch (op->kind) {
                case OBJ_TABLE:
                        nftnl_table_snprintf(buf, 8192, op->obj, NFTNL_OUTPUT_DEFAULT, 0);
                        break;
                case OBJ_CHAIN:
                        nftnl_chain_snprintf(buf, 8192, op->obj, NFTNL_OUTPUT_DEFAULT, 0);
                        break;
                case OBJ_SET:
                case OBJ_ELEM:
                        nftnl_set_snprintf(buf, 8192, op->obj, NFTNL_OUTPUT_DEFAULT, 0);
                        break;
                case OBJ_RULE:
                        nftnl_rule_snprintf(buf, 8192, op->obj, NFTNL_OUTPUT_DEFAULT, 0);
                        break;
                }
                /* strip trailing whitespace so golden files are stable */
                size_t len = strlen(buf);
                while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
                        buf[--len] = '\0';
                fprintf(nb->out, "%s %s: %s\n", verb, what, buf);
        }
        return fflush(nb->out) == 0 ? 0 : -ENOMEM;
}

static void nft_bufsize(NftBackend *nb, size_t size) {
        int fd = mnl_socket_get_fd(nb->nl);
        int v = size > (64u << 20) ? (64 << 20) : (int) size;
        if (v < (1 << 20))
                v = 1 << 20;
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof v) < 0)
                (void) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v) < 0)
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
}

/* Sends ops as one transaction. On a kernel error returns it and sets *ret_failed to the index of the
 * first failing op (-1 when the batch as a whole was refused). */
static int nft_commit(NftBackend *nb, const NftOp *ops, size_t n, ssize_t *ret_failed) {
        *ret_failed = -1;
        if (n == 0)
                return 0;
        if (nb->render)
                return nft_render(nb, ops, n);

        size_t limit = 8192 + n * 2048;
        _cleanup_free_ char *buf = malloc(limit * 2);
        if (!buf)
                return -ENOMEM;
        struct mnl_nlmsg_batch *batch = mnl_nlmsg_batch_start(buf, limit);
        if (!batch)
                return -ENOMEM;
        uint32_t seq0 = ++nb->seq;
        nb->seq += (uint32_t) n + 1;

        nftnl_batch_begin(mnl_nlmsg_batch_current(batch), seq0);
        mnl_nlmsg_batch_next(batch);
        for (size_t i = 0; i < n; i++) {
                const NftOp *op = &ops[i];
                struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(batch), op->type, NFT_FAMILY,
                                                             op->flags | NLM_F_ACK, seq0 + 1 + (uint32_t) i);
                switch (op->kind) {
                case OBJ_TABLE:
                        nftnl_table_nlmsg_build_payload(nlh, op->obj);
                        break;
                case OBJ_CHAIN:
                        nftnl_chain_nlmsg_build_payload(nlh, op->obj);
                        break;
                case OBJ_SET:
                        nftnl_set_nlmsg_build_payload(nlh, op->obj);
                        break;
                case OBJ_ELEM:
                        nftnl_set_elems_nlmsg_build_payload(nlh, op->obj);
                        break;
                case OBJ_RULE:
                        nftnl_rule_nlmsg_build_payload(nlh, op->obj);
                        break;
                }
                if (!mnl_nlmsg_batch_next(batch)) {
                        mnl_nlmsg_batch_stop(batch);
                        return -E2BIG;
                }
        }
        nftnl_batch_end(mnl_nlmsg_batch_current(batch), seq0 + (uint32_t) n + 1);
        mnl_nlmsg_batch_next(batch);

        size_t len = mnl_nlmsg_batch_size(batch);
        nft_bufsize(nb, len + n * 1024);
        ssize_t s = mnl_socket_sendto(nb->nl, mnl_nlmsg_batch_head(batch), len);
        mnl_nlmsg_batch_stop(batch);
        if (s < 0)
                return negative_errno();

        /* nfnetlink processes the batch synchronously in sendmsg, so every reply is queued by now;
         * still wait a little for stragglers until each op is acknowledged or an error is seen. */
        int fd = mnl_socket_get_fd(nb->nl);
        size_t replies = 0;
        int first_err = 0;
        _cleanup_free_ char *rbuf = malloc(65536);
        if (!rbuf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = recv(fd, rbuf, 65536, MSG_DONTWAIT);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                return negative_errno();
                        if (replies >= n || first_err)
                                break;
                        struct pollfd p = { .fd = fd, .events = POLLIN };
                        int pr = poll(&p, 1, 2000);
                        if (pr < 0 && errno != EINTR)
                                return negative_errno();
                        if (pr == 0)
                                return -ETIMEDOUT;
                        continue;
                }
                int left = (int) k;
                for (const struct nlmsghdr *nlh = (const struct nlmsghdr *) rbuf; mnl_nlmsg_ok(nlh, left);
                     nlh = mnl_nlmsg_next(nlh, &left)) {
                        if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_seq < seq0 ||
                            nlh->nlmsg_seq > seq0 + n + 1)
                                continue;
                        const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
                        replies++;
                        if (err->error < 0 && !first_err) {
                                first_err = err->error;
                                uint32_t idx = nlh->nlmsg_seq - seq0;
                                *ret_failed = idx >= 1 && idx <= n ? (ssize_t) idx - 1 : -1;
                        }
                }
        }
        return first_err;
}

static int nft_err(KvErr *e, int r, const NftOp *ops, ssize_t failed) {
        const char *what = failed >= 0 ? ops[failed].desc : "sending batch";
        return kverr_set(e, r == -EEXIST ? KV_ERR_EXISTS : KV_ERR_INTERNAL, r, "nftables: %s: %s", what, strerror(-r));
}

static int nft_commit_batch(NftBackend *nb, NftBatch *bt, KvErr *e) {
        ssize_t failed;
        int r = nft_commit(nb, bt->ops, bt->n, &failed);
        if (r < 0)
                return nft_err(e, r, bt->ops, failed);
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
        int err;
} NftDump;

static int dump_elem_cb(struct nftnl_set_elem *se, void *userdata) {
        NftDump *d = userdata;
        if (d->n == d->cap) {
                size_t cap = d->cap ? d->cap * 2 : 32;
                NftDumpElem *v = realloc(d->v, cap * sizeof *v);
                if (!v) {
                        d->err = -ENOMEM;
                        return -1;
                }
                d->v = v;
                d->cap = cap;
        }
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

static int dump_msg_cb(const struct nlmsghdr *nlh, void *userdata) {
        NftDump *d = userdata;
        struct nftnl_set *s = nftnl_set_alloc();
        if (!s) {
                d->err = -ENOMEM;
                return MNL_CB_ERROR;
        }
        if (nftnl_set_elems_nlmsg_parse(nlh, s) < 0) {
                nftnl_set_free(s);
                d->err = -EIO;
                return MNL_CB_ERROR;
        }
        nftnl_set_elem_foreach(s, dump_elem_cb, d);
        nftnl_set_free(s);
        return d->err < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

/* All elements of a set; -ENOENT when the table or set does not exist. */
static int nft_dump_set(NftBackend *nb, const char *set, NftDump *d) {
        char buf[MNL_SOCKET_BUFFER_SIZE];
        *d = (NftDump){};
        if (nb->render)
                return 0;
        struct nftnl_set *s = nftnl_set_alloc();
        if (!s)
                return -ENOMEM;
        nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE);
        nftnl_set_set_str(s, NFTNL_SET_NAME, set);
        uint32_t seq = ++nb->seq;
        struct nlmsghdr *nlh =
                nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFT_FAMILY, NLM_F_DUMP | NLM_F_ACK, seq);
        nftnl_set_elems_nlmsg_build_payload(nlh, s);
        nftnl_set_free(s);
        if (mnl_socket_sendto(nb->nl, nlh, nlh->nlmsg_len) < 0)
                return negative_errno();
        _cleanup_free_ char *rbuf = malloc(65536);
        if (!rbuf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = mnl_socket_recvfrom(nb->nl, rbuf, 65536);
                if (k < 0)
                        return negative_errno();
                int r = mnl_cb_run(rbuf, (size_t) k, seq, nb->portid, dump_msg_cb, d);
                if (r < 0) {
                        int err = d->err < 0 ? d->err : negative_errno();
                        free(d->v);
                        *d = (NftDump){};
                        return err;
                }
                if (r == MNL_CB_STOP)
                        return 0;
        }
}

/* ---- table existence ---- */

static int nft_table_exists(NftBackend *nb) {
        char buf[MNL_SOCKET_BUFFER_SIZE];
        if (nb->render)
                return 1;
        struct nftnl_table *t = nft_table_new();
        if (!t)
                return -ENOMEM;
        uint32_t seq = ++nb->seq;
        struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFT_FAMILY, NLM_F_ACK, seq);
        nftnl_table_nlmsg_build_payload(nlh, t);
        nftnl_table_free(t);
        if (mnl_socket_sendto(nb->nl, nlh, nlh->nlmsg_len) < 0)
                return negative_errno();
        for (;;) {
                ssize_t k = mnl_socket_recvfrom(nb->nl, buf, sizeof buf);
                if (k < 0)
                        return negative_errno();
                int r = mnl_cb_run(buf, (size_t) k, seq, nb->portid, NULL, NULL);
                if (r < 0)
                        return errno == ENOENT ? 0 : negative_errno();
                if (r == MNL_CB_STOP)
                        return 1;
        }
}

/* ---- ops ---- */

static int nft_init_common(NatBackend *b, bool render) {
        NftBackend *nb = calloc(1, sizeof *nb);
        if (!nb)
                return -ENOMEM;
        nb->seq = (uint32_t) time(NULL);
        nb->render = render;
        if (render) {
                nb->out = open_memstream(&nb->text, &nb->text_len);
                if (!nb->out) {
                        free(nb);
                        return -ENOMEM;
                }
        } else {
                nb->nl = mnl_socket_open(NETLINK_NETFILTER);
                if (!nb->nl) {
                        int r = negative_errno();
                        free(nb);
                        return r == -EPROTONOSUPPORT || r == -EAFNOSUPPORT ? -EOPNOTSUPP : r;
                }
                if (mnl_socket_bind(nb->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
                        int r = negative_errno();
                        mnl_socket_close(nb->nl);
                        free(nb);
                        return r;
                }
                int one = 1;
                (void) mnl_socket_setsockopt(nb->nl, NETLINK_CAP_ACK, &one, sizeof one);
                nb->portid = mnl_socket_get_portid(nb->nl);
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
        if (nb->nl)
                mnl_socket_close(nb->nl);
        if (nb->out)
                fclose(nb->out);
        free(nb->text);
        owners_clear(nb);
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

static int nft_sync(NatBackend *b, const NatEndpoint *eps, size_t n, KvErr *e) {
        NftBackend *nb = b->data;
        _cleanup_(nft_batch_done) NftBatch bt = {};
        _cleanup_(elems_done) NftElemList l = {};
        int r;

        /* add + delete + add: replaces the table whether or not it existed, in one transaction */
        r = nft_batch_push(&bt, NFT_MSG_NEWTABLE, NLM_F_CREATE, OBJ_TABLE, nft_table_new(), "creating table");
        if (r >= 0)
                r = nft_batch_push(&bt, NFT_MSG_DELTABLE, 0, OBJ_TABLE, nft_table_new(), "flushing table inet kvnet");
        if (r >= 0)
                r = nft_push_skeleton(&bt);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = ep_elems(&eps[i], &l);
                for (size_t j = 0; r >= 0 && j < eps[i].n_subnets; j++) {
                        bool seen = false;
                        for (size_t k = 0; k <= i && !seen; k++)
                                for (size_t m = 0; m < (k == i ? j : eps[k].n_subnets) && !seen; m++)
                                        seen = prefix_eq(&eps[k].subnets[m], &eps[i].subnets[j]);
                        if (!seen)
                                r = subnet_elem(&eps[i].subnets[j], &l);
                }
        }
        for (size_t i = 0; r >= 0 && i < l.n; i++)
                r = nft_push_elem(&bt, &l.v[i], true);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "nftables: building batch");

        r = nft_commit_batch(nb, &bt, e);
        if (r < 0)
                return r;
        nb->skeleton_ok = true;
        owners_clear(nb);
        for (size_t i = 0; i < n; i++) {
                r = owner_set(nb, &eps[i]);
                if (r < 0)
                        return kverr_set_errno(e, KV_ERR_INTERNAL, r, "nftables: recording subnets");
        }
        return 0;
}

static int nft_add_once(NftBackend *nb, const NatEndpoint *ep, KvErr *e) {
        _cleanup_(nft_batch_done) NftBatch bt = {};
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
                        owners_clear(nb); /* a fresh table has no subnets */
                }
        }
        r = ep_elems(ep, &l);
        for (size_t j = 0; r >= 0 && j < ep->n_subnets; j++) {
                bool dup = false;
                for (size_t k = 0; k < j; k++)
                        dup = dup || prefix_eq(&ep->subnets[k], &ep->subnets[j]);
                if (!dup && subnet_refs(nb, &ep->subnets[j], NULL) == 0)
                        r = subnet_elem(&ep->subnets[j], &l);
        }
        for (size_t i = 0; r >= 0 && i < l.n; i++)
                r = nft_push_elem(&bt, &l.v[i], true);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "nftables: building batch");

        r = nft_commit_batch(nb, &bt, e);
        if (r < 0)
                return r;
        nb->skeleton_ok = true;
        r = owner_set(nb, ep);
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
        _cleanup_(nft_batch_done) NftBatch bt = {};
        _cleanup_(elems_done) NftElemList l = {};
        int r;

        /* subnets: only those this (known) endpoint owned and no other known endpoint names */
        NftOwner *o = owner_find(nb, ep->id);
        r = ep_elems(ep, &l);
        if (o)
                for (size_t j = 0; r >= 0 && j < o->n_subnets; j++) {
                        bool dup = false;
                        for (size_t k = 0; k < j; k++)
                                dup = dup || prefix_eq(&o->subnets[k], &o->subnets[j]);
                        if (!dup && subnet_refs(nb, &o->subnets[j], ep->id) == 0)
                                r = subnet_elem(&o->subnets[j], &l);
                }
        for (size_t i = 0; r >= 0 && i < l.n; i++)
                r = nft_push_elem(&bt, &l.v[i], false);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "nftables: building batch");

        ssize_t failed;
        r = nft_commit(nb, bt.ops, bt.n, &failed);
        if (r == -ENOENT) {
                /* some element (or the table) is already gone: the batch was rolled back, so
                 * remove the rest one by one and ignore what is missing */
                for (size_t i = 0; i < bt.n; i++) {
                        r = nft_commit(nb, &bt.ops[i], 1, &failed);
                        if (r == -ENOENT)
                                r = 0;
                        if (r < 0)
                                return nft_err(e, r, &bt.ops[i], failed);
                }
        } else if (r < 0)
                return nft_err(e, r, bt.ops, failed);
        owner_remove(nb, ep->id);
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
        .name = "nftables",
        .init = nft_init,
        .done = nft_done,
        .sync = nft_sync,
        .add = nft_add,
        .del = nft_del,
        .check = nft_check,
        .dump = nft_dump_json,
};
