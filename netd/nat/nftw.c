/* SPDX-License-Identifier: Apache-2.0 */
/* The nftables writer (nftw.h): batches of libnftnl objects, their text, and one transaction per
 * batch over a libmnl socket with per-message acks and extended-ack text. */
#include "netd/nat/nftw.h"

#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/if.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <time.h>

#include "common/array.h"
#include "common/netns.h"

#define NFTW_RBUF 65536
#define NFTW_TEXT 8192

struct NftwSock {
        struct mnl_socket *nl;
        uint32_t portid, seq;
};

/* ---- batch ---- */

static void op_free_obj(NftwOp *op) {
        switch (op->kind) {
        case NFTW_TABLE:
                nftnl_table_free(op->obj);
                break;
        case NFTW_CHAIN:
                nftnl_chain_free(op->obj);
                break;
        case NFTW_SET:
        case NFTW_ELEM:
                nftnl_set_free(op->obj);
                break;
        case NFTW_RULE:
                nftnl_rule_free(op->obj);
                break;
        case _NFTW_KIND_MAX:
                break;
        }
        op->obj = NULL;
}

void nftw_batch_init(NftwBatch *b, uint32_t family, const char *table) {
        *b = (NftwBatch){ .family = family, .table = table };
}

void nftw_batch_done(NftwBatch *b) {
        for (size_t i = 0; i < b->n; i++)
                op_free_obj(&b->ops[i]);
        free(b->ops);
        b->ops = NULL;
        b->n = b->cap = 0;
}

/* Takes ownership of obj (also on failure). */
static int push(NftwBatch *b, uint16_t type, uint16_t flags, NftwKind kind, void *obj, const char *fmt, va_list ap) {
        NftwOp op = { .type = type, .flags = flags, .kind = kind, .obj = obj };
        if (!obj)
                return -ENOMEM;
        int r = ARRAY_GROW(b->ops, b->cap, b->n + 1);
        if (r < 0) {
                op_free_obj(&op);
                return r;
        }
        vsnprintf(op.desc, sizeof op.desc, fmt, ap);
        b->ops[b->n++] = op;
        return 0;
}

#define PUSH(b, type, flags, kind, obj, fmt)                               \
        ({                                                                 \
                va_list ap_;                                               \
                va_start(ap_, fmt);                                        \
                int r_ = push((b), (type), (flags), (kind), (obj), fmt, ap_); \
                va_end(ap_);                                               \
                r_;                                                        \
        })

int nftw_table(NftwBatch *b, bool add, const char *fmt, ...) {
        struct nftnl_table *t = nftnl_table_alloc();
        if (t) {
                nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, b->family);
                nftnl_table_set_str(t, NFTNL_TABLE_NAME, b->table);
        }
        return PUSH(b, add ? NFT_MSG_NEWTABLE : NFT_MSG_DELTABLE, add ? NLM_F_CREATE : 0, NFTW_TABLE, t, fmt);
}

int nftw_chain(NftwBatch *b, const char *name, const char *type, uint32_t hook, int32_t prio, const char *fmt, ...) {
        struct nftnl_chain *c = nftnl_chain_alloc();
        if (c) {
                nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, b->family);
                nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, b->table);
                nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
                nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, type);
                nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
                nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
                nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
        }
        return PUSH(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE, NFTW_CHAIN, c, fmt);
}

int nftw_chain_regular(NftwBatch *b, const char *name, const char *fmt, ...) {
        struct nftnl_chain *c = nftnl_chain_alloc();
        if (c) {
                nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, b->family);
                nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, b->table);
                nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
        }
        return PUSH(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE, NFTW_CHAIN, c, fmt);
}

static struct nftnl_set *set_new(const NftwBatch *b, const char *name) {
        struct nftnl_set *s = nftnl_set_alloc();
        if (!s)
                return NULL;
        nftnl_set_set_u32(s, NFTNL_SET_FAMILY, b->family);
        nftnl_set_set_str(s, NFTNL_SET_TABLE, b->table);
        nftnl_set_set_str(s, NFTNL_SET_NAME, name);
        return s;
}

int nftw_set(NftwBatch *b, const NftwSetSpec *spec, uint32_t id, const char *fmt, ...) {
        struct nftnl_set *s = set_new(b, spec->name);
        if (s) {
                nftnl_set_set_u32(s, NFTNL_SET_ID, id);
                nftnl_set_set_u32(s, NFTNL_SET_FLAGS, spec->flags);
                nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, spec->key_type);
                nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, spec->key_len);
                if (spec->size)
                        nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, spec->size);
                if (spec->flags & NFT_SET_MAP) {
                        nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, spec->data_type);
                        nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, spec->data_len);
                }
                if (spec->key_host_order) {
                        /* nft's byte order values: 1 host endian, 2 big endian */
                        struct nftnl_udata_buf *ud = nftnl_udata_buf_alloc(64);
                        if (!ud || !nftnl_udata_put_u32(ud, NFTNL_UDATA_SET_KEYBYTEORDER, 1) ||
                            nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(ud),
                                               nftnl_udata_buf_len(ud)) < 0) {
                                nftnl_set_free(s);
                                s = NULL;
                        }
                        nftnl_udata_buf_free(ud);
                }
        }
        return PUSH(b, NFT_MSG_NEWSET, NLM_F_CREATE, NFTW_SET, s, fmt);
}

static bool elem_add(struct nftnl_set *s, const void *key, uint32_t klen, const void *data, uint32_t dlen, bool end) {
        struct nftnl_set_elem *e = nftnl_set_elem_alloc();
        if (!e)
                return false;
        nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, klen);
        if (dlen)
                nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, data, dlen);
        if (end)
                nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
        nftnl_set_elem_add(s, e);
        return true;
}

int nftw_elem(NftwBatch *b, bool add, const char *set, const NftwElem *el, const char *fmt, ...) {
        struct nftnl_set *s = set_new(b, set);
        if (s && (!elem_add(s, el->key, el->klen, el->data, el->dlen, false) ||
                  (el->elen && !elem_add(s, el->end, el->elen, NULL, 0, true)))) {
                nftnl_set_free(s);
                s = NULL;
        }
        return PUSH(b, add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM, add ? NLM_F_CREATE : 0, NFTW_ELEM, s, fmt);
}

struct nftnl_rule *nftw_rule_new(const NftwBatch *b, const char *chain) {
        struct nftnl_rule *r = nftnl_rule_alloc();
        if (!r)
                return NULL;
        nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, b->family);
        nftnl_rule_set_str(r, NFTNL_RULE_TABLE, b->table);
        nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
        return r;
}

int nftw_rule(NftwBatch *b, struct nftnl_rule *r, const char *fmt, ...) {
        return PUSH(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, NFTW_RULE, r, fmt);
}

/* ---- expressions ---- */

static bool ex_add(struct nftnl_rule *r, struct nftnl_expr *x) {
        if (!x)
                return false;
        nftnl_rule_add_expr(r, x);
        return true;
}

static void set_reg(struct nftnl_expr *x, uint16_t attr, uint32_t reg) {
        if (reg)
                nftnl_expr_set_u32(x, attr, reg);
}

bool nftw_ex_meta(struct nftnl_rule *r, uint32_t key, uint32_t dreg) {
        struct nftnl_expr *x = nftnl_expr_alloc("meta");
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_META_KEY, key);
                nftnl_expr_set_u32(x, NFTNL_EXPR_META_DREG, dreg);
        }
        return ex_add(r, x);
}

bool nftw_ex_cmp(struct nftnl_rule *r, uint32_t sreg, uint32_t op, const void *data, uint32_t len) {
        struct nftnl_expr *x = nftnl_expr_alloc("cmp");
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_CMP_SREG, sreg);
                nftnl_expr_set_u32(x, NFTNL_EXPR_CMP_OP, op);
                nftnl_expr_set(x, NFTNL_EXPR_CMP_DATA, data, len);
        }
        return ex_add(r, x);
}

bool nftw_ex_payload(struct nftnl_rule *r, uint32_t base, uint32_t offset, uint32_t len, uint32_t dreg) {
        struct nftnl_expr *x = nftnl_expr_alloc("payload");
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_BASE, base);
                nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
                nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_LEN, len);
                nftnl_expr_set_u32(x, NFTNL_EXPR_PAYLOAD_DREG, dreg);
        }
        return ex_add(r, x);
}

bool nftw_ex_lookup(struct nftnl_rule *r, uint32_t sreg, const char *set, uint32_t dreg, bool invert) {
        struct nftnl_expr *x = nftnl_expr_alloc("lookup");
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_LOOKUP_SREG, sreg);
                nftnl_expr_set_str(x, NFTNL_EXPR_LOOKUP_SET, set);
                set_reg(x, NFTNL_EXPR_LOOKUP_DREG, dreg);
                if (invert)
                        nftnl_expr_set_u32(x, NFTNL_EXPR_LOOKUP_FLAGS, NFT_LOOKUP_F_INV);
        }
        return ex_add(r, x);
}

bool nftw_ex_immediate(struct nftnl_rule *r, uint32_t dreg, const void *data, uint32_t len) {
        struct nftnl_expr *x = nftnl_expr_alloc("immediate");
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_IMM_DREG, dreg);
                nftnl_expr_set(x, NFTNL_EXPR_IMM_DATA, data, len);
        }
        return ex_add(r, x);
}

bool nftw_ex_bitwise(struct nftnl_rule *r, uint32_t sreg, uint32_t dreg, const void *mask, const void *xor,
                     uint32_t len) {
        struct nftnl_expr *x = nftnl_expr_alloc("bitwise");
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_BITWISE_SREG, sreg);
                nftnl_expr_set_u32(x, NFTNL_EXPR_BITWISE_DREG, dreg);
                nftnl_expr_set_u32(x, NFTNL_EXPR_BITWISE_LEN, len);
                nftnl_expr_set(x, NFTNL_EXPR_BITWISE_MASK, mask, len);
                nftnl_expr_set(x, NFTNL_EXPR_BITWISE_XOR, xor, len);
        }
        return ex_add(r, x);
}

bool nftw_ex_ct(struct nftnl_rule *r, uint32_t key, uint32_t dreg) {
        struct nftnl_expr *x = nftnl_expr_alloc("ct");
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_CT_KEY, key);
                nftnl_expr_set_u32(x, NFTNL_EXPR_CT_DREG, dreg);
        }
        return ex_add(r, x);
}

bool nftw_ex_fib(struct nftnl_rule *r, uint32_t flags, uint32_t result, uint32_t dreg) {
        struct nftnl_expr *x = nftnl_expr_alloc("fib");
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_FIB_FLAGS, flags);
                nftnl_expr_set_u32(x, NFTNL_EXPR_FIB_RESULT, result);
                nftnl_expr_set_u32(x, NFTNL_EXPR_FIB_DREG, dreg);
        }
        return ex_add(r, x);
}

bool nftw_ex_nat(struct nftnl_rule *r, uint32_t type, uint32_t nfproto, uint32_t reg_addr_min, uint32_t reg_addr_max,
                 uint32_t reg_proto_min, uint32_t flags) {
        struct nftnl_expr *x = nftnl_expr_alloc("nat");
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_TYPE, type);
                nftnl_expr_set_u32(x, NFTNL_EXPR_NAT_FAMILY, nfproto);
                set_reg(x, NFTNL_EXPR_NAT_REG_ADDR_MIN, reg_addr_min);
                set_reg(x, NFTNL_EXPR_NAT_REG_ADDR_MAX, reg_addr_max);
                set_reg(x, NFTNL_EXPR_NAT_REG_PROTO_MIN, reg_proto_min);
                set_reg(x, NFTNL_EXPR_NAT_FLAGS, flags);
        }
        return ex_add(r, x);
}

bool nftw_ex_verdict(struct nftnl_rule *r, int verdict) {
        struct nftnl_expr *x = nftnl_expr_alloc("immediate");
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
                nftnl_expr_set_u32(x, NFTNL_EXPR_IMM_VERDICT, (uint32_t) verdict);
        }
        return ex_add(r, x);
}

bool nftw_ex_jump(struct nftnl_rule *r, const char *chain) {
        struct nftnl_expr *x = nftnl_expr_alloc("immediate");
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
                nftnl_expr_set_u32(x, NFTNL_EXPR_IMM_VERDICT, (uint32_t) NFT_JUMP);
                nftnl_expr_set_str(x, NFTNL_EXPR_IMM_CHAIN, chain);
        }
        return ex_add(r, x);
}

bool nftw_ex_counter(struct nftnl_rule *r) {
        return ex_add(r, nftnl_expr_alloc("counter"));
}

bool nftw_ex_dynset_counter(struct nftnl_rule *r, uint32_t sreg, const char *set) {
        struct nftnl_expr *x = nftnl_expr_alloc("dynset");
        struct nftnl_expr *c = x ? nftnl_expr_alloc("counter") : NULL;
        if (x && !c) {
                nftnl_expr_free(x);
                x = NULL;
        }
        if (x) {
                nftnl_expr_set_u32(x, NFTNL_EXPR_DYNSET_SREG_KEY, sreg);
                nftnl_expr_set_u32(x, NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
                nftnl_expr_set_str(x, NFTNL_EXPR_DYNSET_SET_NAME, set);
                nftnl_expr_set(x, NFTNL_EXPR_DYNSET_EXPR, c, 0); /* x owns c now */
        }
        return ex_add(r, x);
}

bool nftw_ex_masq(struct nftnl_rule *r) {
        return ex_add(r, nftnl_expr_alloc("masq"));
}

bool nftw_ex_nfproto(struct nftnl_rule *r, uint8_t proto) {
        return nftw_ex_meta(r, NFT_META_NFPROTO, NFT_REG_1) && nftw_ex_cmp(r, NFT_REG_1, NFT_CMP_EQ, &proto, 1);
}

bool nftw_ex_ifname(struct nftnl_rule *r, uint32_t key, const char *ifname) {
        char name[IFNAMSIZ] = {};
        strncpy(name, ifname, IFNAMSIZ - 1);
        return nftw_ex_meta(r, key, NFT_REG_1) && nftw_ex_cmp(r, NFT_REG_1, NFT_CMP_EQ, name, IFNAMSIZ);
}

/* ---- text ---- */

static void strip_trailing_blanks(char *s) {
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
                s[--n] = '\0';
}

static void op_text(const NftwOp *op, char *buf, size_t size) {
        buf[0] = '\0';
        switch (op->kind) {
        case NFTW_TABLE:
                nftnl_table_snprintf(buf, size, op->obj, NFTNL_OUTPUT_DEFAULT, 0);
                break;
        case NFTW_CHAIN:
                nftnl_chain_snprintf(buf, size, op->obj, NFTNL_OUTPUT_DEFAULT, 0);
                break;
        case NFTW_SET:
        case NFTW_ELEM:
                nftnl_set_snprintf(buf, size, op->obj, NFTNL_OUTPUT_DEFAULT, 0);
                break;
        case NFTW_RULE:
                nftnl_rule_snprintf(buf, size, op->obj, NFTNL_OUTPUT_DEFAULT, 0);
                break;
        case _NFTW_KIND_MAX:
                break;
        }
        /* trailing blanks stripped so golden files are stable */
        strip_trailing_blanks(buf);
}

static const char *const kind_names[_NFTW_KIND_MAX] = {
        [NFTW_TABLE] = "table", [NFTW_CHAIN] = "chain", [NFTW_SET] = "set",
        [NFTW_RULE] = "rule",   [NFTW_ELEM] = "element",
};

int nftw_render(const NftwOp *ops, size_t n, FILE *out) {
        _cleanup_free_ char *buf = malloc(NFTW_TEXT);
        if (!buf || !out)
                return -ENOMEM;
        fprintf(out, "# batch\n");
        for (size_t i = 0; i < n; i++) {
                const NftwOp *op = &ops[i];
                bool del = op->type == NFT_MSG_DELTABLE || op->type == NFT_MSG_DELSETELEM;
                op_text(op, buf, NFTW_TEXT);
                fprintf(out, "%s %s: %s\n", del ? "delete" : "add", kind_names[op->kind], buf);
        }
        return fflush(out) == 0 ? 0 : -ENOMEM;
}

char *nftw_rule_exprs_text(const struct nftnl_rule *r) {
        char *buf = malloc(NFTW_TEXT);
        if (!buf)
                return NULL;
        buf[0] = '\0';
        nftnl_rule_snprintf(buf, NFTW_TEXT, r, NFTNL_OUTPUT_DEFAULT, 0);
        char *nl = strchr(buf, '\n');
        const char *exprs = nl ? nl + 1 : buf + strlen(buf);
        memmove(buf, exprs, strlen(exprs) + 1);
        strip_trailing_blanks(buf);
        return buf;
}

/* ---- socket ---- */

int nftw_sock_open(int netns_fd, NftwSock **ret) {
        NetnsGuard g = { .orig_fd = -1 };
        int r = 0;
        if (netns_fd >= 0) {
                r = netns_enter(netns_fd, &g);
                if (r < 0)
                        return r;
        }
        /* the socket belongs to the netns it is created in */
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
        (void) mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof one);
        NftwSock *s = malloc(sizeof *s);
        if (!s) {
                mnl_socket_close(nl);
                return -ENOMEM;
        }
        *s = (NftwSock){ .nl = nl, .portid = mnl_socket_get_portid(nl), .seq = (uint32_t) time(NULL) };
        *ret = s;
        return 0;
}

NftwSock *nftw_sock_free(NftwSock *s) {
        if (!s)
                return NULL;
        mnl_socket_close(s->nl);
        free(s);
        return NULL;
}

static void sock_bufsize(NftwSock *s, size_t size) {
        int fd = mnl_socket_get_fd(s->nl);
        int v = size > (64u << 20) ? (64 << 20) : (int) size;
        if (v < (1 << 20))
                v = 1 << 20;
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof v) < 0)
                (void) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof v) < 0)
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
}

/* The NLMSGERR_ATTR_MSG of an error message, if the kernel attached one. */
static void ext_ack_text(const struct nlmsghdr *nlh, char *buf, size_t size) {
        const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
        if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS))
                return;
        size_t off = sizeof *err;
        if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
                off += err->msg.nlmsg_len - sizeof(struct nlmsghdr);
        if (mnl_nlmsg_get_payload_len(nlh) <= off)
                return;
        const struct nlattr *a;
        mnl_attr_for_each(a, nlh, off) {
                if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) >= 0) {
                        snprintf(buf, size, "%s", mnl_attr_get_str(a));
                        return;
                }
        }
}

static void op_payload(struct nlmsghdr *nlh, const NftwOp *op) {
        switch (op->kind) {
        case NFTW_TABLE:
                nftnl_table_nlmsg_build_payload(nlh, op->obj);
                break;
        case NFTW_CHAIN:
                nftnl_chain_nlmsg_build_payload(nlh, op->obj);
                break;
        case NFTW_SET:
                nftnl_set_nlmsg_build_payload(nlh, op->obj);
                break;
        case NFTW_ELEM:
                nftnl_set_elems_nlmsg_build_payload(nlh, op->obj);
                break;
        case NFTW_RULE:
                nftnl_rule_nlmsg_build_payload(nlh, op->obj);
                break;
        case _NFTW_KIND_MAX:
                break;
        }
}

int nftw_commit(NftwSock *s, uint32_t family, const NftwOp *ops, size_t n, NftwFailure *ret_fail) {
        *ret_fail = (NftwFailure){ .op = -1 };
        if (n == 0)
                return 0;

        size_t limit = 8192 + n * 2048;
        _cleanup_free_ char *buf = malloc(limit * 2);
        if (!buf)
                return -ENOMEM;
        struct mnl_nlmsg_batch *batch = mnl_nlmsg_batch_start(buf, limit);
        if (!batch)
                return -ENOMEM;
        uint32_t seq0 = ++s->seq;
        s->seq += (uint32_t) n + 1;

        nftnl_batch_begin(mnl_nlmsg_batch_current(batch), seq0);
        mnl_nlmsg_batch_next(batch);
        for (size_t i = 0; i < n; i++) {
                struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(batch), ops[i].type,
                                                             (uint16_t) family, ops[i].flags | NLM_F_ACK,
                                                             seq0 + 1 + (uint32_t) i);
                op_payload(nlh, &ops[i]);
                if (!mnl_nlmsg_batch_next(batch)) {
                        mnl_nlmsg_batch_stop(batch);
                        return -E2BIG;
                }
        }
        nftnl_batch_end(mnl_nlmsg_batch_current(batch), seq0 + (uint32_t) n + 1);
        mnl_nlmsg_batch_next(batch);

        size_t len = mnl_nlmsg_batch_size(batch);
        sock_bufsize(s, len + n * 1024);
        ssize_t sent = mnl_socket_sendto(s->nl, mnl_nlmsg_batch_head(batch), len);
        mnl_nlmsg_batch_stop(batch);
        if (sent < 0)
                return negative_errno();

        /* nfnetlink processes the batch synchronously in sendmsg, so every reply is queued by now;
         * still wait a little for stragglers until each op is acknowledged or an error is seen. */
        int fd = mnl_socket_get_fd(s->nl);
        size_t replies = 0;
        int first_err = 0;
        _cleanup_free_ char *rbuf = malloc(NFTW_RBUF);
        if (!rbuf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = recv(fd, rbuf, NFTW_RBUF, MSG_DONTWAIT);
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
                                ret_fail->op = idx >= 1 && idx <= n ? (ssize_t) idx - 1 : -1;
                                ext_ack_text(nlh, ret_fail->ext, sizeof ret_fail->ext);
                        }
                }
        }
        return first_err;
}

int nftw_error(KvErr *e, int code, int r, const char *prefix, const NftwOp *ops, const NftwFailure *f) {
        bool fresh = e && !kverr_is_set(e);
        const char *what = f && f->op >= 0 ? ops[f->op].desc : "sending batch";
        kverr_set(e, code, r, "%s: %s: %s", prefix, what, strerror(-r));
        if (fresh && f && f->ext[0])
                snprintf(e->details, sizeof e->details, "kernel: %s", f->ext);
        return r;
}

/* ---- requests ---- */

static int request(NftwSock *s, struct nlmsghdr *nlh, mnl_cb_t cb, void *arg) {
        uint32_t seq = nlh->nlmsg_seq;
        if (mnl_socket_sendto(s->nl, nlh, nlh->nlmsg_len) < 0)
                return negative_errno();
        _cleanup_free_ char *rbuf = malloc(NFTW_RBUF);
        if (!rbuf)
                return -ENOMEM;
        for (;;) {
                ssize_t k = mnl_socket_recvfrom(s->nl, rbuf, NFTW_RBUF);
                if (k < 0)
                        return negative_errno();
                int r = mnl_cb_run(rbuf, (size_t) k, seq, s->portid, cb, arg);
                if (r < 0)
                        return negative_errno();
                if (r == MNL_CB_STOP)
                        return 0;
        }
}

int nftw_table_get(NftwSock *s, uint32_t family, const char *table) {
        char buf[MNL_SOCKET_BUFFER_SIZE];
        struct nftnl_table *t = nftnl_table_alloc();
        if (!t)
                return -ENOMEM;
        nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, family);
        nftnl_table_set_str(t, NFTNL_TABLE_NAME, table);
        struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, (uint16_t) family, NLM_F_ACK, ++s->seq);
        nftnl_table_nlmsg_build_payload(nlh, t);
        nftnl_table_free(t);
        return request(s, nlh, NULL, NULL);
}

int nftw_chain_get(NftwSock *s, uint32_t family, const char *table, const char *chain) {
        char buf[MNL_SOCKET_BUFFER_SIZE];
        struct nftnl_chain *c = nftnl_chain_alloc();
        if (!c)
                return -ENOMEM;
        nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, table);
        nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, chain);
        struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETCHAIN, (uint16_t) family, NLM_F_ACK, ++s->seq);
        nftnl_chain_nlmsg_build_payload(nlh, c);
        nftnl_chain_free(c);
        return request(s, nlh, NULL, NULL);
}

typedef struct RuleDump {
        const char *table;
        int (*cb)(const struct nftnl_rule *r, void *userdata);
        void *userdata;
        int err;
} RuleDump;

static int rule_msg_cb(const struct nlmsghdr *nlh, void *userdata) {
        RuleDump *d = userdata;
        struct nftnl_rule *r = nftnl_rule_alloc();
        if (!r) {
                d->err = -ENOMEM;
                return MNL_CB_ERROR;
        }
        if (nftnl_rule_nlmsg_parse(nlh, r) < 0) {
                nftnl_rule_free(r);
                d->err = -EIO;
                return MNL_CB_ERROR;
        }
        const char *table = nftnl_rule_get_str(r, NFTNL_RULE_TABLE);
        if (table && streq(table, d->table))
                d->err = d->cb(r, d->userdata);
        nftnl_rule_free(r);
        return d->err < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

int nftw_rules_dump(NftwSock *s, uint32_t family, const char *table,
                    int (*cb)(const struct nftnl_rule *r, void *userdata), void *userdata) {
        char buf[MNL_SOCKET_BUFFER_SIZE];
        struct nftnl_rule *rl = nftnl_rule_alloc();
        if (!rl)
                return -ENOMEM;
        nftnl_rule_set_str(rl, NFTNL_RULE_TABLE, table);
        struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, (uint16_t) family, NLM_F_DUMP, ++s->seq);
        nftnl_rule_nlmsg_build_payload(nlh, rl);
        nftnl_rule_free(rl);
        RuleDump d = { .table = table, .cb = cb, .userdata = userdata };
        int r = request(s, nlh, rule_msg_cb, &d);
        return d.err < 0 ? d.err : r;
}

typedef struct ElemDump {
        int (*cb)(struct nftnl_set_elem *el, void *userdata);
        void *userdata;
        int err;
} ElemDump;

static int elem_cb(struct nftnl_set_elem *el, void *userdata) {
        ElemDump *d = userdata;
        d->err = d->cb(el, d->userdata);
        return d->err < 0 ? -1 : 0;
}

static int elem_msg_cb(const struct nlmsghdr *nlh, void *userdata) {
        ElemDump *d = userdata;
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
        nftnl_set_elem_foreach(s, elem_cb, d);
        nftnl_set_free(s);
        return d->err < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

int nftw_elems_dump(NftwSock *s, uint32_t family, const char *table, const char *set,
                    int (*cb)(struct nftnl_set_elem *el, void *userdata), void *userdata) {
        char buf[MNL_SOCKET_BUFFER_SIZE];
        struct nftnl_set *st = nftnl_set_alloc();
        if (!st)
                return -ENOMEM;
        nftnl_set_set_str(st, NFTNL_SET_TABLE, table);
        nftnl_set_set_str(st, NFTNL_SET_NAME, set);
        struct nlmsghdr *nlh =
                nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, (uint16_t) family, NLM_F_DUMP | NLM_F_ACK, ++s->seq);
        nftnl_set_elems_nlmsg_build_payload(nlh, st);
        nftnl_set_free(st);
        ElemDump d = { .cb = cb, .userdata = userdata };
        int r = request(s, nlh, elem_msg_cb, &d);
        return d.err < 0 ? d.err : r;
}
