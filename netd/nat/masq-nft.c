/* SPDX-License-Identifier: Apache-2.0 */
/* The masquerade binding's sandbox NAT: table inet kvnet-masq, built with libnftnl and sent with
 * libmnl as one transaction from a netfilter socket created inside the sandbox netns.
 *
 *   chain prerouting (nat, prerouting, -100):
 *       meta nfproto ipv4 iifname SBX ip daddr VM4 [meta l4proto P th dport N] dnat ip to GUEST4
 *       (one rule per listed port, one without port match when all ports are forwarded; and ip6)
 *   chain postrouting (nat, postrouting, 100):
 *       meta nfproto ipv4 oifname SBX ip saddr GUEST4 snat ip to VM4        (and ip6)
 *
 * The batch is "add table, delete table, add table + chains + rules": it replaces whatever was
 * there in one transaction, so attach is idempotent. */
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <linux/if.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "common/netns.h"
#include "netd/binding/masquerade.h"

#define MASQ_FAMILY NFPROTO_INET

enum { MO_TABLE, MO_CHAIN, MO_RULE };

typedef struct MasqOp {
        uint16_t type, flags;
        int kind;
        void *obj;
        char desc[128];
} MasqOp;

typedef struct MasqBatch {
        MasqOp ops[4 + 2 + 2 * (MASQ_MAX_PORTS + 1) + 2];
        size_t n;
} MasqBatch;

static void op_free(MasqOp *op) {
        switch (op->kind) {
        case MO_TABLE:
                nftnl_table_free(op->obj);
                break;
        case MO_CHAIN:
                nftnl_chain_free(op->obj);
                break;
        case MO_RULE:
                nftnl_rule_free(op->obj);
                break;
        }
        op->obj = NULL;
}

static void batch_done(MasqBatch *b) {
        for (size_t i = 0; i < b->n; i++)
                op_free(&b->ops[i]);
        b->n = 0;
}

/* Takes ownership of obj, also on failure. */
static int batch_push(MasqBatch *b, uint16_t type, uint16_t flags, int kind, void *obj, const char *desc) {
        MasqOp op = { .type = type, .flags = flags, .kind = kind, .obj = obj };
        if (!obj)
                return -ENOMEM;
        if (b->n >= ELEMENTSOF(b->ops)) {
                op_free(&op);
                return -E2BIG;
        }
        snprintf(op.desc, sizeof op.desc, "%s", desc);
        b->ops[b->n++] = op;
        return 0;
}

static struct nftnl_table *table_new(void) {
        struct nftnl_table *t = nftnl_table_alloc();
        if (!t)
                return NULL;
        nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, MASQ_FAMILY);
        nftnl_table_set_str(t, NFTNL_TABLE_NAME, MASQ_TABLE);
        return t;
}

static struct nftnl_chain *chain_new(const char *name, uint32_t hook, int32_t prio) {
        struct nftnl_chain *c = nftnl_chain_alloc();
        if (!c)
                return NULL;
        nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, MASQ_FAMILY);
        nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, MASQ_TABLE);
        nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
        nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "nat");
        nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
        nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
        nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
        return c;
}

static bool ex_add(struct nftnl_rule *r, struct nftnl_expr *x) {
        if (!x)
                return false;
        nftnl_rule_add_expr(r, x);
        return true;
}

static bool ex_meta(struct nftnl_rule *r, uint32_t key) {
        struct nftnl_expr *x = nftnl_expr_alloc("meta");
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_META_KEY, key);
                nftnl_expr_set_u32(x, NFTNL_EXPR_META_DREG, NFT_REG_1);
        }
        return ex_add(r, x);
}

static bool ex_cmp(struct nftnl_rule *r, const void *data, uint32_t len) {
        struct nftnl_expr *x = nftnl_expr_alloc("cmp");
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
                nftnl_expr_set_u32(x, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
                nftnl_expr_set(x, NFTNL_EXPR_CMP_DATA, data, len);
        }
        return ex_add(r, x);
}

static bool ex_payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len) {
        struct nftnl_expr *x = nftnl_expr_alloc("payload");
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_BASE, base);
                nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_OFFSET, off);
                nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_LEN, len);
                nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
        }
        return ex_add(r, x);
}

static bool ex_ifname(struct nftnl_rule *r, uint32_t key, const char *ifname) {
        char name[IFNAMSIZ] = {};
        strncpy(name, ifname, IFNAMSIZ - 1);
        return ex_meta(r, key) && ex_cmp(r, name, IFNAMSIZ);
}

/* immediate -> reg 1, then (d|s)nat to it. */
static bool ex_nat_to(struct nftnl_rule *r, uint32_t type, const KvAddr *to) {
        struct nftnl_expr *x = nftnl_expr_alloc("immediate");
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_IMM_DREG, NFT_REG_1);
                nftnl_expr_set(x, NFTNL_EXPR_IMM_DATA, to->bytes, (uint32_t) kv_addr_len(to->family));
        }
        if (!ex_add(r, x))
                return false;
        x = nftnl_expr_alloc("nat");
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_TYPE, type);
                nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_FAMILY, to->family == AF_INET6 ? NFPROTO_IPV6 : NFPROTO_IPV4);
                nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
                /* spelled out as the kernel reports it back, so masq_nft_check can compare */
                nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_REG_ADDR_MAX, NFT_REG_1);
                nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_FLAGS, NF_NAT_RANGE_MAP_IPS);
        }
        return ex_add(r, x);
}

static struct nftnl_rule *rule_new(const char *chain, int family) {
        struct nftnl_rule *r = nftnl_rule_alloc();
        if (!r)
                return NULL;
        nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, MASQ_FAMILY);
        nftnl_rule_set_str(r, NFTNL_RULE_TABLE, MASQ_TABLE);
        nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
        uint8_t nfproto = family == AF_INET6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
        if (!ex_meta(r, NFT_META_NFPROTO) || !ex_cmp(r, &nfproto, 1)) {
                nftnl_rule_free(r);
                return NULL;
        }
        return r;
}

/* prerouting: iifname SBX daddr VM [l4proto P th dport N] dnat to GUEST. port NULL = any. */
static struct nftnl_rule *rule_dnat(const char *sbx, const KvAddr *vm, const KvAddr *guest, const MasqPort *port) {
        bool v6 = vm->family == AF_INET6;
        struct nftnl_rule *r = rule_new("prerouting", vm->family);
        if (!r)
                return NULL;
        bool ok = ex_ifname(r, NFT_META_IIFNAME, sbx) &&
                  ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 24 : 16, v6 ? 16 : 4) &&
                  ex_cmp(r, vm->bytes, v6 ? 16 : 4);
        if (ok && port) {
                uint16_t be = htons(port->port);
                ok = ex_meta(r, NFT_META_L4PROTO) && ex_cmp(r, &port->proto, 1) &&
                     ex_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2) && ex_cmp(r, &be, 2);
        }
        ok = ok && ex_nat_to(r, NFT_NAT_DNAT, guest);
        if (!ok) {
                nftnl_rule_free(r);
                return NULL;
        }
        return r;
}

/* postrouting: oifname SBX saddr GUEST snat to VM. */
static struct nftnl_rule *rule_snat(const char *sbx, const KvAddr *vm, const KvAddr *guest) {
        bool v6 = vm->family == AF_INET6;
        struct nftnl_rule *r = rule_new("postrouting", vm->family);
        if (!r)
                return NULL;
        bool ok = ex_ifname(r, NFT_META_OIFNAME, sbx) &&
                  ex_payload(r, NFT_PAYLOAD_NETWORK_HEADER, v6 ? 8 : 12, v6 ? 16 : 4) &&
                  ex_cmp(r, guest->bytes, v6 ? 16 : 4) && ex_nat_to(r, NFT_NAT_SNAT, vm);
        if (!ok) {
                nftnl_rule_free(r);
                return NULL;
        }
        return r;
}

static const char *proto_name(uint8_t p) {
        return p == IPPROTO_TCP ? "tcp" : p == IPPROTO_UDP ? "udp" : "?";
}

static int build_batch(const MasqConfig *c, MasqBatch *b) {
        char desc[128], a[KV_ADDR_STRLEN];
        int r = batch_push(b, NFT_MSG_NEWTABLE, NLM_F_CREATE, MO_TABLE, table_new(), "creating table inet " MASQ_TABLE);
        if (r >= 0)
                r = batch_push(b, NFT_MSG_DELTABLE, 0, MO_TABLE, table_new(), "flushing table inet " MASQ_TABLE);
        if (r >= 0)
                r = batch_push(b, NFT_MSG_NEWTABLE, NLM_F_CREATE, MO_TABLE, table_new(),
                               "creating table inet " MASQ_TABLE);
        if (r >= 0)
                r = batch_push(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE, MO_CHAIN,
                               chain_new("prerouting", NF_INET_PRE_ROUTING, -100), "creating chain prerouting");
        if (r >= 0)
                r = batch_push(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE, MO_CHAIN,
                               chain_new("postrouting", NF_INET_POST_ROUTING, 100), "creating chain postrouting");
        const uint16_t RF = NLM_F_CREATE | NLM_F_APPEND;
        for (size_t i = 0; r >= 0 && i < c->n_addrs; i++) {
                const KvAddr *vm = &c->vm_addrs[i].addr;
                const KvAddr *guest = vm->family == AF_INET6 ? &c->guest6.addr : &c->guest4.addr;
                kv_addr_fmt(vm, a);
                if (c->n_ports == 0) {
                        snprintf(desc, sizeof desc, "adding dnat rule for %s (all ports)", a);
                        r = batch_push(b, NFT_MSG_NEWRULE, RF, MO_RULE, rule_dnat(c->sbx_ifname, vm, guest, NULL), desc);
                }
                for (size_t j = 0; r >= 0 && j < c->n_ports; j++) {
                        snprintf(desc, sizeof desc, "adding dnat rule for %s %s/%u", a, proto_name(c->ports[j].proto),
                                 c->ports[j].port);
                        r = batch_push(b, NFT_MSG_NEWRULE, RF, MO_RULE,
                                       rule_dnat(c->sbx_ifname, vm, guest, &c->ports[j]), desc);
                }
        }
        for (size_t i = 0; r >= 0 && i < c->n_addrs; i++) {
                const KvAddr *vm = &c->vm_addrs[i].addr;
                const KvAddr *guest = vm->family == AF_INET6 ? &c->guest6.addr : &c->guest4.addr;
                snprintf(desc, sizeof desc, "adding snat rule to %s", kv_addr_fmt(vm, a));
                r = batch_push(b, NFT_MSG_NEWRULE, RF, MO_RULE, rule_snat(c->sbx_ifname, vm, guest), desc);
        }
        return r;
}

/* ---- rendering ---- */

static int render(const MasqBatch *b, char **ret) {
        _cleanup_free_ char *buf = malloc(8192);
        char *text = NULL;
        size_t len = 0;
        if (!buf)
                return -ENOMEM;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        fprintf(f, "# batch\n");
        for (size_t i = 0; i < b->n; i++) {
                const MasqOp *op = &b->ops[i];
                buf[0] = '\0';
                switch (op->kind) {
                case MO_TABLE:
                        nftnl_table_snprintf(buf, 8192, op->obj, NFTNL_OUTPUT_DEFAULT, 0);
                        break;
                case MO_CHAIN:
                        nftnl_chain_snprintf(buf, 8192, op->obj, NFTNL_OUTPUT_DEFAULT, 0);
                        break;
                case MO_RULE:
                        nftnl_rule_snprintf(buf, 8192, op->obj, NFTNL_OUTPUT_DEFAULT, 0);
                        break;
                }
                size_t n = strlen(buf);
                while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
                        buf[--n] = '\0';
                fprintf(f, "%s %s: %s\n", op->type == NFT_MSG_DELTABLE ? "delete" : "add",
                        (const char *[]){ "table", "chain", "rule" }[op->kind], buf);
        }
        if (fclose(f) != 0) {
                free(text);
                return -ENOMEM;
        }
        *ret = text;
        return 0;
}

int masq_nft_render(const MasqConfig *c, char **ret_text, KvErr *e) {
        int r = masq_config_validate(c, e);
        if (r < 0)
                return r;
        _cleanup_(batch_done) MasqBatch b = {};
        r = build_batch(c, &b);
        if (r >= 0)
                r = render(&b, ret_text);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "nftables: building batch for table inet " MASQ_TABLE);
        return 0;
}

/* ---- kernel ---- */

DEFINE_TRIVIAL_CLEANUP_FUNC(struct mnl_socket *, mnl_socket_close);

/* A netfilter netlink socket bound to the namespace it is created in. */
static int nl_open(int netns_fd, struct mnl_socket **ret) {
        NetnsGuard g = { .orig_fd = -1 };
        int r = 0;
        if (netns_fd >= 0) {
                r = netns_enter(netns_fd, &g);
                if (r < 0)
                        return r;
        }
        struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
        if (!nl)
                r = negative_errno();
        int q = netns_leave(&g);
        if (r < 0)
                return r == -EPROTONOSUPPORT || r == -EAFNOSUPPORT ? -EOPNOTSUPP : r;
        if (q < 0) {
                mnl_socket_close(nl);
                return q;
        }
        if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
                r = negative_errno();
                mnl_socket_close(nl);
                return r;
        }
        int one = 1;
        (void) mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof one);
        *ret = nl;
        return 0;
}

static int nl_open_e(int netns_fd, struct mnl_socket **ret, KvErr *e) {
        int r = nl_open(netns_fd, ret);
        if (r == -EBADF || r == -EINVAL)
                return kverr_set_errno(e, KV_ERR_INVALID_ENV, r, "entering sandbox netns");
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "nftables: opening netfilter socket in sandbox");
        return 0;
}

/* Sends the ops as one transaction; *ret_failed = index of the first failing op (-1: the batch). */
static int commit(struct mnl_socket *nl, const MasqOp *ops, size_t n, ssize_t *ret_failed) {
        *ret_failed = -1;
        size_t limit = 8192 + n * 2048;
        _cleanup_free_ char *buf = malloc(limit * 2);
        _cleanup_free_ char *rbuf = malloc(65536);
        if (!buf || !rbuf)
                return -ENOMEM;
        struct mnl_nlmsg_batch *batch = mnl_nlmsg_batch_start(buf, limit);
        if (!batch)
                return -ENOMEM;
        uint32_t seq0 = (uint32_t) time(NULL);
        nftnl_batch_begin(mnl_nlmsg_batch_current(batch), seq0);
        mnl_nlmsg_batch_next(batch);
        for (size_t i = 0; i < n; i++) {
                struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(batch), ops[i].type, MASQ_FAMILY,
                                                             ops[i].flags | NLM_F_ACK, seq0 + 1 + (uint32_t) i);
                switch (ops[i].kind) {
                case MO_TABLE:
                        nftnl_table_nlmsg_build_payload(nlh, ops[i].obj);
                        break;
                case MO_CHAIN:
                        nftnl_chain_nlmsg_build_payload(nlh, ops[i].obj);
                        break;
                case MO_RULE:
                        nftnl_rule_nlmsg_build_payload(nlh, ops[i].obj);
                        break;
                }
                if (!mnl_nlmsg_batch_next(batch)) {
                        mnl_nlmsg_batch_stop(batch);
                        return -E2BIG;
                }
        }
        nftnl_batch_end(mnl_nlmsg_batch_current(batch), seq0 + (uint32_t) n + 1);
        mnl_nlmsg_batch_next(batch);
        ssize_t s = mnl_socket_sendto(nl, mnl_nlmsg_batch_head(batch), mnl_nlmsg_batch_size(batch));
        mnl_nlmsg_batch_stop(batch);
        if (s < 0)
                return negative_errno();

        int fd = mnl_socket_get_fd(nl), first_err = 0;
        size_t replies = 0;
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
                        if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_seq < seq0 || nlh->nlmsg_seq > seq0 + n + 1)
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

static int commit_e(struct mnl_socket *nl, const MasqBatch *b, KvErr *e) {
        ssize_t failed;
        int r = commit(nl, b->ops, b->n, &failed);
        if (r < 0)
                return kverr_set(e, KV_ERR_INTERNAL, r, "nftables in sandbox: %s: %s",
                                 failed >= 0 ? b->ops[failed].desc : "sending batch", strerror(-r));
        return 0;
}

int masq_nft_apply(int netns_fd, const MasqConfig *c, KvErr *e) {
        int r = masq_config_validate(c, e);
        if (r < 0)
                return r;
        _cleanup_(batch_done) MasqBatch b = {};
        r = build_batch(c, &b);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "nftables: building batch for table inet " MASQ_TABLE);
        _cleanup_(mnl_socket_closep) struct mnl_socket *nl = NULL;
        r = nl_open_e(netns_fd, &nl, e);
        if (r < 0)
                return r;
        return commit_e(nl, &b, e);
}

int masq_nft_remove(int netns_fd, KvErr *e) {
        _cleanup_(mnl_socket_closep) struct mnl_socket *nl = NULL;
        int r = nl_open_e(netns_fd, &nl, e);
        if (r < 0)
                return r;
        _cleanup_(batch_done) MasqBatch b = {};
        r = batch_push(&b, NFT_MSG_DELTABLE, 0, MO_TABLE, table_new(), "deleting table inet " MASQ_TABLE);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "nftables: building batch");
        ssize_t failed;
        r = commit(nl, b.ops, b.n, &failed);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return kverr_set(e, KV_ERR_INTERNAL, r, "nftables in sandbox: deleting table inet " MASQ_TABLE ": %s",
                                 strerror(-r));
        return 0;
}

/* ---- checking ---- */

/* Rules are compared by their expressions as nftnl renders them (the first line, with the
 * kernel's handle, is dropped). */
#define RULE_TEXT_MAX 4096

typedef struct RuleList {
        char *pre[MASQ_MAX_PORTS * 2 + 2];
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

static char *rule_text(const struct nftnl_rule *r) {
        char *buf = malloc(RULE_TEXT_MAX);
        if (!buf)
                return NULL;
        buf[0] = '\0';
        nftnl_rule_snprintf(buf, RULE_TEXT_MAX, r, NFTNL_OUTPUT_DEFAULT, 0);
        char *nl = strchr(buf, '\n');
        memmove(buf, nl ? nl + 1 : buf + strlen(buf), strlen(nl ? nl + 1 : buf + strlen(buf)) + 1);
        size_t n = strlen(buf);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
                buf[--n] = '\0';
        return buf;
}

static void rule_list_add(RuleList *l, const struct nftnl_rule *r) {
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
        if (slot && !(*slot = rule_text(r)))
                l->err = -ENOMEM;
}

static int list_rule_cb(const struct nlmsghdr *nlh, void *userdata) {
        RuleList *l = userdata;
        struct nftnl_rule *r = nftnl_rule_alloc();
        if (!r)
                return MNL_CB_ERROR;
        if (nftnl_rule_nlmsg_parse(nlh, r) < 0) {
                nftnl_rule_free(r);
                return MNL_CB_ERROR;
        }
        const char *table = nftnl_rule_get_str(r, NFTNL_RULE_TABLE);
        if (table && streq(table, MASQ_TABLE))
                rule_list_add(l, r);
        nftnl_rule_free(r);
        return l->err < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

/* Runs one request (dump or not) to completion; cb may be NULL. */
static int request(struct mnl_socket *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *arg) {
        uint32_t portid = mnl_socket_get_portid(nl), seq = nlh->nlmsg_seq;
        if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
                return negative_errno();
        _cleanup_free_ char *rbuf = malloc(65536);
        if (!rbuf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = mnl_socket_recvfrom(nl, rbuf, 65536);
                if (k < 0)
                        return negative_errno();
                int r = mnl_cb_run(rbuf, (size_t) k, seq, portid, cb, arg);
                if (r < 0)
                        return negative_errno();
                if (r == MNL_CB_STOP)
                        return 0;
        }
}

/* Description of the idx-th rule of chain in the batch. */
static const char *rule_desc(const MasqBatch *b, const char *chain, size_t idx) {
        for (size_t i = 0; i < b->n; i++) {
                if (b->ops[i].kind != MO_RULE)
                        continue;
                const char *c = nftnl_rule_get_str(b->ops[i].obj, NFTNL_RULE_CHAIN);
                if (c && streq(c, chain) && idx-- == 0)
                        return b->ops[i].desc;
        }
        return "?";
}

int masq_nft_check(int netns_fd, const MasqConfig *c, KvErr *e) {
        char buf[MNL_SOCKET_BUFFER_SIZE];
        _cleanup_(mnl_socket_closep) struct mnl_socket *nl = NULL;
        int r = nl_open_e(netns_fd, &nl, e);
        if (r < 0)
                return r;
        uint32_t seq = (uint32_t) time(NULL);

        static const char *const chains[] = { "prerouting", "postrouting" };
        for (size_t i = 0; i < ELEMENTSOF(chains); i++) {
                struct nftnl_chain *ch = nftnl_chain_alloc();
                if (!ch)
                        return kverr_set_errno(e, KV_ERR_INTERNAL, -ENOMEM, "nftables");
                nftnl_chain_set_str(ch, NFTNL_CHAIN_TABLE, MASQ_TABLE);
                nftnl_chain_set_str(ch, NFTNL_CHAIN_NAME, chains[i]);
                struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETCHAIN, MASQ_FAMILY, NLM_F_ACK, ++seq);
                nftnl_chain_nlmsg_build_payload(nlh, ch);
                nftnl_chain_free(ch);
                r = request(nl, nlh, NULL, NULL);
                if (r == -ENOENT)
                        return kverr_set(e, KV_ERR_INTERNAL, r, "nftables in sandbox: chain %s of table inet " MASQ_TABLE " missing",
                                         chains[i]);
                if (r < 0)
                        return kverr_set(e, KV_ERR_INTERNAL, r, "nftables in sandbox: looking up chain %s: %s",
                                         chains[i], strerror(-r));
        }

        struct nftnl_rule *rl = nftnl_rule_alloc();
        if (!rl)
                return kverr_set_errno(e, KV_ERR_INTERNAL, -ENOMEM, "nftables");
        nftnl_rule_set_str(rl, NFTNL_RULE_TABLE, MASQ_TABLE);
        struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, MASQ_FAMILY, NLM_F_DUMP, ++seq);
        nftnl_rule_nlmsg_build_payload(nlh, rl);
        nftnl_rule_free(rl);
        _cleanup_(rule_list_done) RuleList got = {}, want = {};
        r = request(nl, nlh, list_rule_cb, &got);
        if (r >= 0)
                r = got.err;
        if (r < 0)
                return kverr_set(e, KV_ERR_INTERNAL, r, "nftables in sandbox: listing rules of table inet " MASQ_TABLE ": %s",
                                 strerror(-r));
        _cleanup_(batch_done) MasqBatch b = {};
        r = build_batch(c, &b);
        for (size_t i = 0; r >= 0 && i < b.n; i++)
                if (b.ops[i].kind == MO_RULE)
                        rule_list_add(&want, b.ops[i].obj);
        if (r >= 0)
                r = want.err;
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
