/* SPDX-License-Identifier: Apache-2.0 */
/* The nftables writer: a batch of table / chain / set / element / rule messages built with libnftnl,
 * sent as one nfnetlink transaction over libmnl, or rendered as text for golden tests.
 *
 * Every message of a transaction carries NLM_F_ACK and its own sequence number, so a kernel error
 * maps back to the operation that caused it; each operation carries a description for that
 * ("adding rule to chain prerouting"). The socket asks for extended acks: the kernel's message
 * text, when it gives one, is reported with the error.
 *
 * Used by the NAT backend for both of its rulesets: the node table (nft.c) and the sandbox table of
 * the masquerade binding (nft-sandbox.c). The writer knows nothing about NAT. */
#pragma once

#include <libmnl/libmnl.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <stdio.h>

#include "common/kverr.h"

typedef enum NftwKind {
        NFTW_TABLE,
        NFTW_CHAIN,
        NFTW_SET,
        NFTW_RULE,
        NFTW_ELEM,
        _NFTW_KIND_MAX,
} NftwKind;

typedef struct NftwOp {
        uint16_t type;  /* NFT_MSG_* */
        uint16_t flags; /* NLM_F_* besides REQUEST|ACK */
        NftwKind kind;
        void *obj; /* struct nftnl_table / _chain / _set (NFTW_SET, NFTW_ELEM) / _rule, owned */
        char desc[160];
} NftwOp;

/* All objects of a batch live in one table of one family. */
typedef struct NftwBatch {
        uint32_t family; /* NFPROTO_* */
        const char *table;
        NftwOp *ops;
        size_t n, cap;
} NftwBatch;

void nftw_batch_init(NftwBatch *b, uint32_t family, const char *table);
/* Frees every object; the batch can be reused after nftw_batch_init. */
void nftw_batch_done(NftwBatch *b);

/* Each of these appends one operation; desc (printf format) names it in errors. -ENOMEM on failure. */
/* add: NEWTABLE with NLM_F_CREATE; !add: DELTABLE */
int nftw_table(NftwBatch *b, bool add, const char *fmt, ...) _printf_(3, 4) _wur_;
/* A base chain with policy accept. */
int nftw_chain(NftwBatch *b, const char *name, const char *type, uint32_t hook, int32_t prio, const char *fmt, ...)
        _printf_(6, 7) _wur_;

/* A regular chain (no hook), for jumps. */
int nftw_chain_regular(NftwBatch *b, const char *name, const char *fmt, ...) _printf_(3, 4) _wur_;

typedef struct NftwSetSpec {
        const char *name;
        uint32_t flags; /* NFT_SET_* */
        uint32_t key_type, key_len;
        uint32_t data_type, data_len; /* maps (NFT_SET_MAP) only */
        bool key_host_order; /* a key nft keeps in host byte order (a string: ifname): told to nft in the set's
                              * user data, or `nft list` prints the keys garbled */
        uint32_t size;       /* the most elements (0: the kernel's default); a dynamic set (NFT_SET_EVAL) needs one */
} NftwSetSpec;
/* id: the set's transaction id, unique within the batch. */
int nftw_set(NftwBatch *b, const NftwSetSpec *s, uint32_t id, const char *fmt, ...) _printf_(4, 5) _wur_;

/* One element; data for maps (dlen 0: none), end for intervals (elen 0: none). */
typedef struct NftwElem {
        const void *key, *data, *end;
        uint32_t klen, dlen, elen;
} NftwElem;
/* add: NEWSETELEM with NLM_F_CREATE; !add: DELSETELEM */
int nftw_elem(NftwBatch *b, bool add, const char *set, const NftwElem *el, const char *fmt, ...) _printf_(5, 6) _wur_;

/* A rule of the batch's table in chain, without expressions (NULL on allocation failure). */
struct nftnl_rule *nftw_rule_new(const NftwBatch *b, const char *chain);
/* Appends the rule (NEWRULE, NLM_F_CREATE | NLM_F_APPEND); takes ownership of r, also on failure;
 * r NULL is -ENOMEM, so a failed builder can be passed straight on. */
int nftw_rule(NftwBatch *b, struct nftnl_rule *r, const char *fmt, ...) _printf_(3, 4) _wur_;

/* Expressions: each appends one (or two) to r and returns false on allocation failure, so they chain
 * with &&. A register or flag argument of 0 leaves that attribute out. */
bool nftw_ex_meta(struct nftnl_rule *r, uint32_t key, uint32_t dreg);
bool nftw_ex_cmp(struct nftnl_rule *r, uint32_t sreg, uint32_t op, const void *data, uint32_t len);
bool nftw_ex_payload(struct nftnl_rule *r, uint32_t base, uint32_t offset, uint32_t len, uint32_t dreg);
bool nftw_ex_lookup(struct nftnl_rule *r, uint32_t sreg, const char *set, uint32_t dreg, bool invert);
bool nftw_ex_immediate(struct nftnl_rule *r, uint32_t dreg, const void *data, uint32_t len);
bool nftw_ex_bitwise(struct nftnl_rule *r, uint32_t sreg, uint32_t dreg, const void *mask, const void *xor,
                     uint32_t len);
bool nftw_ex_ct(struct nftnl_rule *r, uint32_t key, uint32_t dreg);
bool nftw_ex_fib(struct nftnl_rule *r, uint32_t flags, uint32_t result, uint32_t dreg);
bool nftw_ex_nat(struct nftnl_rule *r, uint32_t type, uint32_t nfproto, uint32_t reg_addr_min, uint32_t reg_addr_max,
                 uint32_t reg_proto_min, uint32_t flags);
bool nftw_ex_masq(struct nftnl_rule *r);
/* jump to chain (a regular chain of the batch's table); a verdict (NF_ACCEPT, NF_DROP, ...) ends the rule. */
bool nftw_ex_jump(struct nftnl_rule *r, const char *chain);
bool nftw_ex_verdict(struct nftnl_rule *r, int verdict);
/* Packets and bytes that reached it (nft list shows them). */
bool nftw_ex_counter(struct nftnl_rule *r);
/* update @set { <sreg> counter }: the element of the key in sreg (added if missing, in a dynamic set) counts the
 * packets and bytes that reached it — a counter per key, e.g. per input interface. */
bool nftw_ex_dynset_counter(struct nftnl_rule *r, uint32_t sreg, const char *set);
/* meta nfproto == proto (into register 1) */
bool nftw_ex_nfproto(struct nftnl_rule *r, uint8_t proto);
/* meta iifname/oifname (key) == ifname, NUL-padded to IFNAMSIZ (register 1) */
bool nftw_ex_ifname(struct nftnl_rule *r, uint32_t key, const char *ifname);

/* ---- text ---- */
/* "# batch" and one line per operation ("add rule: <nftnl's text>"), trailing blanks stripped. */
int nftw_render(const NftwOp *ops, size_t n, FILE *out) _wur_;
/* A rule's expressions as nftnl prints them, without the first line (table, chain, handle); NULL on
 * allocation failure. */
char *nftw_rule_exprs_text(const struct nftnl_rule *r);

/* ---- kernel ---- */
typedef struct NftwSock NftwSock;

/* A netfilter socket in the netns netns_fd (-1: the current one). -EOPNOTSUPP without nf_tables. */
int nftw_sock_open(int netns_fd, NftwSock **ret) _wur_;
NftwSock *nftw_sock_free(NftwSock *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(NftwSock *, nftw_sock_free);

/* What went wrong in a transaction. */
typedef struct NftwFailure {
        ssize_t op;      /* index of the failing operation in the ops given, -1: the batch as a whole */
        char ext[256];   /* the kernel's extended-ack text, "" if none */
} NftwFailure;

/* Sends ops[0..n) (objects of family) as one transaction and waits for every ack. On a kernel
 * error returns it and fills *ret_fail. */
int nftw_commit(NftwSock *s, uint32_t family, const NftwOp *ops, size_t n, NftwFailure *ret_fail) _wur_;
/* Fills *e with "<prefix>: <description of the failing op>: <strerror>", the kernel's text as details. */
int nftw_error(KvErr *e, int code, int r, const char *prefix, const NftwOp *ops, const NftwFailure *f);

/* 0 if the table / chain exists, -ENOENT if not. */
int nftw_table_get(NftwSock *s, uint32_t family, const char *table) _wur_;
int nftw_chain_get(NftwSock *s, uint32_t family, const char *table, const char *chain) _wur_;
/* Calls cb for every rule of table (a negative return stops the dump and is returned). */
int nftw_rules_dump(NftwSock *s, uint32_t family, const char *table,
                    int (*cb)(const struct nftnl_rule *r, void *userdata), void *userdata) _wur_;
/* Calls cb for every element of set; -ENOENT when the table or set does not exist. */
int nftw_elems_dump(NftwSock *s, uint32_t family, const char *table, const char *set,
                    int (*cb)(struct nftnl_set_elem *el, void *userdata), void *userdata) _wur_;
