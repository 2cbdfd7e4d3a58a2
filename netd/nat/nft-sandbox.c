/* SPDX-License-Identifier: Apache-2.0 */
/* The nftables backend's sandbox NAT (nat_sandbox_*, for the masquerade binding): table inet
 * kvnet-masq, written with nftw from a netfilter socket created inside the sandbox netns.
 *
 *   chain prerouting (nat, prerouting, -100):
 *       meta nfproto ipv4 iifname SBX ip daddr VM4 [meta l4proto P th dport N] dnat ip to GUEST4
 *       (one rule per listed port, one without port match when all ports are forwarded; and ip6)
 *   chain postrouting (nat, postrouting, 100):
 *       meta nfproto ipv4 oifname SBX ip saddr GUEST4 snat ip to VM4        (and ip6)
 *
 * The batch is "add table, delete table, add table + chains + rules": it replaces whatever was
 * there in one transaction, so apply is idempotent. */
#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <sys/socket.h>

#include "netd/nat/nat.h"
#include "netd/nat/nftw.h"

#define SBX_TABLE "kvnet-masq"
#define SBX_FAMILY NFPROTO_INET
#define BUILDING "nftables: building batch for table inet " SBX_TABLE

/* immediate -> reg 1, then (d|s)nat to it. */
static bool ex_nat_to(struct nftnl_rule *r, uint32_t type, const KvAddr *to) {
        /* addr_max spelled out as the kernel reports it back, so the check can compare */
        return nftw_ex_immediate(r, NFT_REG_1, to->bytes, (uint32_t) kv_addr_len(to->family)) &&
               nftw_ex_nat(r, type, to->family == AF_INET6 ? NFPROTO_IPV6 : NFPROTO_IPV4, NFT_REG_1, NFT_REG_1, 0,
                           NF_NAT_RANGE_MAP_IPS);
}

static struct nftnl_rule *rule_new(const NftwBatch *b, const char *chain, int family) {
        struct nftnl_rule *r = nftw_rule_new(b, chain);
        if (r && !nftw_ex_nfproto(r, family == AF_INET6 ? NFPROTO_IPV6 : NFPROTO_IPV4)) {
                nftnl_rule_free(r);
                return NULL;
        }
        return r;
}

static struct nftnl_rule *rule_done(struct nftnl_rule *r, bool ok) {
        if (!ok) {
                nftnl_rule_free(r);
                return NULL;
        }
        return r;
}

/* prerouting: iifname SBX daddr VM [l4proto P th dport N] dnat to GUEST. port NULL = any. */
static struct nftnl_rule *rule_dnat(const NftwBatch *b, const char *sbx, const KvAddr *vm, const KvAddr *guest,
                                    const NatSandboxPort *port) {
        bool v6 = vm->family == AF_INET6;
        struct nftnl_rule *r = rule_new(b, "prerouting", vm->family);
        if (!r)
                return NULL;
        bool ok = nftw_ex_ifname(r, NFT_META_IIFNAME, sbx) &&
                  nftw_ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 24 : 16, v6 ? 16 : 4, NFT_REG_1) &&
                  nftw_ex_cmp(r, NFT_REG_1, NFT_CMP_EQ, vm->bytes, v6 ? 16 : 4);
        if (ok && port) {
                uint16_t be = htons(port->port);
                ok = nftw_ex_meta(r, NFT_META_L4PROTO, NFT_REG_1) &&
                     nftw_ex_cmp(r, NFT_REG_1, NFT_CMP_EQ, &port->proto, 1) &&
                     nftw_ex_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1) &&
                     nftw_ex_cmp(r, NFT_REG_1, NFT_CMP_EQ, &be, 2);
        }
        return rule_done(r, ok && ex_nat_to(r, NFT_NAT_DNAT, guest));
}

/* postrouting: oifname SBX saddr GUEST snat to VM. */
static struct nftnl_rule *rule_snat(const NftwBatch *b, const char *sbx, const KvAddr *vm, const KvAddr *guest) {
        bool v6 = vm->family == AF_INET6;
        struct nftnl_rule *r = rule_new(b, "postrouting", vm->family);
        if (!r)
                return NULL;
        return rule_done(r, nftw_ex_ifname(r, NFT_META_OIFNAME, sbx) &&
                                    nftw_ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 8 : 12, v6 ? 16 : 4,
                                                    NFT_REG_1) &&
                                    nftw_ex_cmp(r, NFT_REG_1, NFT_CMP_EQ, guest->bytes, v6 ? 16 : 4) &&
                                    ex_nat_to(r, NFT_NAT_SNAT, vm));
}

static int build_batch(const NatSandbox *s, NftwBatch *b) {
        char a[KV_ADDR_STRLEN];
        nftw_batch_init(b, SBX_FAMILY, SBX_TABLE);
        int r = nftw_table(b, true, "creating table inet " SBX_TABLE);
        if (r >= 0)
                r = nftw_table(b, false, "flushing table inet " SBX_TABLE);
        if (r >= 0)
                r = nftw_table(b, true, "creating table inet " SBX_TABLE);
        if (r >= 0)
                r = nftw_chain(b, "prerouting", "nat", NF_INET_PRE_ROUTING, -100, "creating chain prerouting");
        if (r >= 0)
                r = nftw_chain(b, "postrouting", "nat", NF_INET_POST_ROUTING, 100, "creating chain postrouting");
        for (size_t i = 0; r >= 0 && i < s->n_addrs; i++) {
                const KvAddr *vm = &s->addrs[i].vm, *guest = &s->addrs[i].guest;
                kv_addr_fmt(vm, a);
                if (s->n_ports == 0)
                        r = nftw_rule(b, rule_dnat(b, s->ifname, vm, guest, NULL),
                                      "adding dnat rule for %s (all ports)", a);
                for (size_t j = 0; r >= 0 && j < s->n_ports; j++)
                        r = nftw_rule(b, rule_dnat(b, s->ifname, vm, guest, &s->ports[j]),
                                      "adding dnat rule for %s %s/%u", a, nat_proto_name(s->ports[j].proto),
                                      s->ports[j].port);
        }
        for (size_t i = 0; r >= 0 && i < s->n_addrs; i++) {
                const KvAddr *vm = &s->addrs[i].vm, *guest = &s->addrs[i].guest;
                r = nftw_rule(b, rule_snat(b, s->ifname, vm, guest), "adding snat rule to %s", kv_addr_fmt(vm, a));
        }
        return r;
}

static int build_batch_e(const NatSandbox *s, NftwBatch *b, KvErr *e) {
        int r = build_batch(s, b);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, BUILDING);
        return 0;
}

int nat_nft_sandbox_render(const NatSandbox *s, char **ret_text, KvErr *e) {
        _cleanup_(nftw_batch_done) NftwBatch b = {};
        int r = build_batch_e(s, &b, e);
        if (r < 0)
                return r;
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return kverr_set_errno(e, KV_ERR_INTERNAL, -ENOMEM, BUILDING);
        r = nftw_render(b.ops, b.n, f);
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0) {
                free(text);
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, BUILDING);
        }
        *ret_text = text;
        return 0;
}

/* ---- kernel ---- */

static int sock_open_e(int netns_fd, NftwSock **ret, KvErr *e) {
        int r = nftw_sock_open(netns_fd, ret);
        if (r == -EBADF || r == -EINVAL)
                return kverr_set_errno(e, KV_ERR_INVALID_ENV, r, "entering sandbox netns");
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "nftables: opening netfilter socket in sandbox");
        return 0;
}

int nat_nft_sandbox_apply(int netns_fd, const NatSandbox *s, KvErr *e) {
        _cleanup_(nftw_batch_done) NftwBatch b = {};
        int r = build_batch_e(s, &b, e);
        if (r < 0)
                return r;
        _cleanup_(nftw_sock_freep) NftwSock *sk = NULL;
        r = sock_open_e(netns_fd, &sk, e);
        if (r < 0)
                return r;
        NftwFailure f;
        r = nftw_commit(sk, b.family, b.ops, b.n, &f);
        if (r < 0)
                return nftw_error(e, KV_ERR_INTERNAL, r, "nftables in sandbox", b.ops, &f);
        return 0;
}

int nat_nft_sandbox_remove(int netns_fd, KvErr *e) {
        _cleanup_(nftw_sock_freep) NftwSock *sk = NULL;
        int r = sock_open_e(netns_fd, &sk, e);
        if (r < 0)
                return r;
        _cleanup_(nftw_batch_done) NftwBatch b = {};
        nftw_batch_init(&b, SBX_FAMILY, SBX_TABLE);
        r = nftw_table(&b, false, "deleting table inet " SBX_TABLE);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "nftables: building batch");
        NftwFailure f;
        r = nftw_commit(sk, b.family, b.ops, b.n, &f);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                f.op = 0; /* the batch's only operation, whichever message the kernel refused */
                return nftw_error(e, KV_ERR_INTERNAL, r, "nftables in sandbox", b.ops, &f);
        }
        return 0;
}

/* ---- checking ---- */

/* Rules are compared by their expressions as nftnl renders them (nftw_rule_exprs_text). */
typedef struct RuleList {
        char *pre[NAT_SANDBOX_MAX_PORTS * 2 + 2];
        char *post[4];
        size_t n_pre, n_post, n_other;
        int err;
} RuleList;

static void rule_list_done(RuleList *l) {
        for (size_t i = 0; i < l->n_pre && i < ELEMENTSOF(l->pre); i++)
                free(l->pre[i]);
        for (size_t i = 0; i < l->n_post && i < ELEMENTSOF(l->post); i++)
                free(l->post[i]);
        *l = (RuleList){};
}

static int rule_list_add(const struct nftnl_rule *r, void *userdata) {
        RuleList *l = userdata;
        const char *chain = nftnl_rule_get_str(r, NFTNL_RULE_CHAIN);
        char **slot = NULL;
        if (chain && streq(chain, "prerouting")) {
                if (l->n_pre < ELEMENTSOF(l->pre))
                        slot = &l->pre[l->n_pre];
                l->n_pre++;
        } else if (chain && streq(chain, "postrouting")) {
                if (l->n_post < ELEMENTSOF(l->post))
                        slot = &l->post[l->n_post];
                l->n_post++;
        } else
                l->n_other++;
        if (slot && !(*slot = nftw_rule_exprs_text(r)))
                l->err = -ENOMEM;
        return l->err;
}

/* Description of the idx-th rule of chain in the batch. */
static const char *rule_desc(const NftwBatch *b, const char *chain, size_t idx) {
        for (size_t i = 0; i < b->n; i++) {
                if (b->ops[i].kind != NFTW_RULE)
                        continue;
                const char *c = nftnl_rule_get_str(b->ops[i].obj, NFTNL_RULE_CHAIN);
                if (c && streq(c, chain) && idx-- == 0)
                        return b->ops[i].desc;
        }
        return "?";
}

int nat_nft_sandbox_check(int netns_fd, const NatSandbox *s, KvErr *e) {
        _cleanup_(nftw_sock_freep) NftwSock *sk = NULL;
        int r = sock_open_e(netns_fd, &sk, e);
        if (r < 0)
                return r;

        static const char *const chains[] = { "prerouting", "postrouting" };
        for (size_t i = 0; i < ELEMENTSOF(chains); i++) {
                r = nftw_chain_get(sk, SBX_FAMILY, SBX_TABLE, chains[i]);
                if (r == -ENOMEM)
                        return kverr_set_errno(e, KV_ERR_INTERNAL, r, "nftables");
                if (r == -ENOENT)
                        return kverr_set(e, KV_ERR_INTERNAL, r,
                                         "nftables in sandbox: chain %s of table inet " SBX_TABLE " missing",
                                         chains[i]);
                if (r < 0)
                        return kverr_set(e, KV_ERR_INTERNAL, r, "nftables in sandbox: looking up chain %s: %s",
                                         chains[i], strerror(-r));
        }

        _cleanup_(rule_list_done) RuleList got = {}, want = {};
        r = nftw_rules_dump(sk, SBX_FAMILY, SBX_TABLE, rule_list_add, &got);
        if (r < 0)
                return kverr_set(e, KV_ERR_INTERNAL, r,
                                 "nftables in sandbox: listing rules of table inet " SBX_TABLE ": %s", strerror(-r));
        _cleanup_(nftw_batch_done) NftwBatch b = {};
        r = build_batch(s, &b);
        for (size_t i = 0; r >= 0 && i < b.n; i++)
                if (b.ops[i].kind == NFTW_RULE)
                        r = rule_list_add(b.ops[i].obj, &want);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "nftables: building expected rules");
        const struct {
                const char *name;
                char **got, **want;
                size_t n_got, n_want;
        } chs[] = { { "prerouting", got.pre, want.pre, got.n_pre, want.n_pre },
                    { "postrouting", got.post, want.post, got.n_post, want.n_post } };
        for (size_t i = 0; i < ELEMENTSOF(chs); i++) {
                if (chs[i].n_got != chs[i].n_want)
                        return kverr_set(e, KV_ERR_INTERNAL, -ENOENT,
                                         "nftables in sandbox: chain %s holds %zu rules, expected %zu", chs[i].name,
                                         chs[i].n_got, chs[i].n_want);
                for (size_t j = 0; j < chs[i].n_want; j++)
                        if (!chs[i].got[j] || !chs[i].want[j] || !streq(chs[i].got[j], chs[i].want[j]))
                                return kverr_set(e, KV_ERR_INTERNAL, -ENOENT,
                                                 "nftables in sandbox: rule %zu of chain %s differs from the configuration "
                                                 "(expected: %s)",
                                                 j + 1, chs[i].name, rule_desc(&b, chs[i].name, j));
        }
        return 0;
}
