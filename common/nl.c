/* SPDX-License-Identifier: Apache-2.0 */
#include "common/nl.h"

#include <stdarg.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>

#include "common/netns.h"

/* Room for one read: the kernel fills a dump's reads up to 32 KiB. */
#define NL_RECV_MAX 32768

struct NlSock {
        struct mnl_socket *sock;
        uint32_t portid, seq;
        int ext_err;       /* the -errno ext_msg explains, 0 if none */
        char ext_msg[272]; /* the kernel's words for the last failed request (msg + where below) */
        uint8_t send[NL_MSG_MAX] __attribute__((aligned(8)));
        uint8_t recv[NL_RECV_MAX] __attribute__((aligned(8)));
};

NlSock *nl_sock_free(NlSock *nl) {
        if (!nl)
                return NULL;
        if (nl->sock)
                mnl_socket_close(nl->sock);
        free(nl);
        return NULL;
}

static int socket_here(int protocol, struct mnl_socket **ret) {
        struct mnl_socket *s = mnl_socket_open2(protocol, SOCK_CLOEXEC);
        if (!s)
                return negative_errno();
        *ret = s;
        return 0;
}

int nl_sock_open(int protocol, int netns_fd, NlSock **ret) {
        _cleanup_nl_sock_ NlSock *nl = malloc(sizeof *nl); /* the buffers need no zeroing */
        if (!nl)
                return -ENOMEM;
        nl->sock = NULL;
        nl->portid = 0;
        nl->seq = (uint32_t) time(NULL);
        nl->ext_err = 0;
        nl->ext_msg[0] = '\0';
        int r;
        if (netns_fd < 0)
                r = socket_here(protocol, &nl->sock);
        else {
                /* A netlink socket belongs to the netns it is created in: create it inside, use it from anywhere. */
                NetnsGuard g;
                r = netns_enter(netns_fd, &g);
                if (r < 0)
                        return r;
                r = socket_here(protocol, &nl->sock);
                int q = netns_leave(&g);
                if (q < 0)
                        return q; /* we could not get back: nothing sane is possible in the wrong netns */
        }
        if (r < 0)
                return r;
        /* Errors echo only the request's header (not the whole request) and carry the kernel's explanation.
         * Old kernels without these options answer as before. */
        int one = 1;
        (void) mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof one);
        (void) mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof one);
        if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0)
                return negative_errno();
        nl->portid = mnl_socket_get_portid(nl->sock);
        *ret = TAKE_PTR(nl);
        return 0;
}

struct nlmsghdr *nl_msg_new(NlSock *nl, uint16_t type, uint16_t flags, const void *hdr, size_t hdr_len) {
        struct nlmsghdr *m = mnl_nlmsg_put_header(nl->send);
        m->nlmsg_type = type;
        m->nlmsg_flags = flags;
        if (hdr_len > 0)
                memcpy(mnl_nlmsg_put_extra_header(m, hdr_len), hdr, hdr_len);
        return m;
}

/* ---- answers ---- */

/* The type of the request's attribute at byte off (NLMSGERR_ATTR_OFFS), -1 if off is not inside it. */
static int attr_type_at(const struct nlmsghdr *req, uint32_t off) {
        if (off < MNL_NLMSG_HDRLEN || (uint64_t) off + sizeof(struct nlattr) > req->nlmsg_len)
                return -1;
        const struct nlattr *a = (const struct nlattr *) ((const uint8_t *) req + off);
        return a->nla_type & NLA_TYPE_MASK;
}

/* Keeps the extended ack that follows the first `off` bytes of h's payload as the explanation of r. */
static void ext_ack_keep(NlSock *nl, const struct nlmsghdr *h, size_t off, const struct nlmsghdr *req, int r) {
        if (!(h->nlmsg_flags & NLM_F_ACK_TLVS) || MNL_ALIGN(off) > mnl_nlmsg_get_payload_len(h))
                return;
        const struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
        if (nl_parse(h, off, tb, NLMSGERR_ATTR_MAX) < 0)
                return;
        char msg[200] = "", where[64] = "";
        if (tb[NLMSGERR_ATTR_MSG])
                nl_attr_strcpy(tb[NLMSGERR_ATTR_MSG], msg, sizeof msg);
        if (tb[NLMSGERR_ATTR_OFFS] && mnl_attr_get_payload_len(tb[NLMSGERR_ATTR_OFFS]) >= sizeof(uint32_t)) {
                int t = attr_type_at(req, mnl_attr_get_u32(tb[NLMSGERR_ATTR_OFFS]));
                if (t >= 0)
                        snprintf(where, sizeof where, "attribute %d", t);
        } else if (tb[NLMSGERR_ATTR_MISS_TYPE] &&
                   mnl_attr_get_payload_len(tb[NLMSGERR_ATTR_MISS_TYPE]) >= sizeof(uint32_t))
                snprintf(where, sizeof where, "missing attribute %u", mnl_attr_get_u32(tb[NLMSGERR_ATTR_MISS_TYPE]));
        if (!msg[0] && !where[0])
                return;
        snprintf(nl->ext_msg, sizeof nl->ext_msg, "%s%s%s", msg, msg[0] && where[0] ? ", " : "", where);
        nl->ext_err = r;
}

/* NLMSG_ERROR: an ack (0) or the request's error. */
static int answer_error(NlSock *nl, const struct nlmsghdr *h, const struct nlmsghdr *req) {
        const struct nlmsgerr *err = mnl_nlmsg_get_payload(h);
        if (mnl_nlmsg_get_payload_len(h) < sizeof *err)
                return -EBADMSG;
        /* Some subsystems report positive errnos. */
        int r = err->error <= 0 ? err->error : -err->error;
        if (r < 0) {
                size_t off = sizeof *err;
                if (!(h->nlmsg_flags & NLM_F_CAPPED))
                        off += mnl_nlmsg_get_payload_len(&err->msg);
                ext_ack_keep(nl, h, off, req, r);
        }
        return r;
}

/* NLMSG_DONE: the end of a dump, with the dump's error if it failed halfway. */
static int answer_done(NlSock *nl, const struct nlmsghdr *h, const struct nlmsghdr *req) {
        int32_t status;
        if (mnl_nlmsg_get_payload_len(h) < sizeof status)
                return 0;
        memcpy(&status, mnl_nlmsg_get_payload(h), sizeof status);
        if (status >= 0)
                return 0;
        ext_ack_keep(nl, h, sizeof status, req, status);
        return status;
}

int nl_call(NlSock *nl, struct nlmsghdr *m, nl_reply_cb cb, void *arg) {
        nl->ext_err = 0;
        nl->ext_msg[0] = '\0';
        m->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
        m->nlmsg_seq = ++nl->seq;
        m->nlmsg_pid = 0;
        if (mnl_socket_sendto(nl->sock, m, m->nlmsg_len) < 0)
                return negative_errno();

        int cb_ret = 0;
        for (;;) {
                ssize_t n = mnl_socket_recvfrom(nl->sock, nl->recv, sizeof nl->recv);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                int len = (int) n;
                for (const struct nlmsghdr *h = (const struct nlmsghdr *) nl->recv; mnl_nlmsg_ok(h, len);
                     h = mnl_nlmsg_next(h, &len)) {
                        /* Answers to an earlier request that gave up early are not ours. */
                        if (!mnl_nlmsg_portid_ok(h, nl->portid) || !mnl_nlmsg_seq_ok(h, m->nlmsg_seq))
                                continue;
                        int r;
                        switch (h->nlmsg_type) {
                        case NLMSG_NOOP:
                        case NLMSG_OVERRUN: continue;
                        case NLMSG_ERROR: r = answer_error(nl, h, m); return r < 0 ? r : cb_ret;
                        case NLMSG_DONE: r = answer_done(nl, h, m); return r < 0 ? r : cb_ret;
                        default:
                                if (cb && cb_ret >= 0 && (r = cb(h, arg)) < 0)
                                        cb_ret = r; /* read on to the end: the socket stays usable */
                        }
                }
        }
}

int nl_request(NlSock *nl, struct nlmsghdr *m) {
        return nl_call(nl, m, NULL, NULL);
}

const char *nl_ext_ack(const NlSock *nl, int r) {
        if (!nl || r >= 0 || nl->ext_err != r || !nl->ext_msg[0])
                return NULL;
        return nl->ext_msg;
}

int nl_error(KvErr *e, const NlSock *nl, int r, const char *fmt, ...) {
        char what[400];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        const char *k = nl_ext_ack(nl, r);
        /* a name or an object that is there already is the caller's to resolve (102), not kvnet's fault */
        return kverr_set(e, r == -EEXIST ? KV_ERR_EXISTS : KV_ERR_INTERNAL, r, "%s: %s%s%s%s", what,
                         strerror(r < 0 ? -r : EIO), k ? " (kernel: " : "",
                         k ? k : "", k ? ")" : "");
}

/* ---- attributes ---- */

int nl_put(struct nlmsghdr *m, uint16_t type, size_t len, const void *data) {
        return mnl_attr_put_check(m, NL_MSG_MAX, type, len, data) ? 0 : -EMSGSIZE;
}

int nl_put_u8(struct nlmsghdr *m, uint16_t type, uint8_t v) {
        return nl_put(m, type, sizeof v, &v);
}

int nl_put_u32(struct nlmsghdr *m, uint16_t type, uint32_t v) {
        return nl_put(m, type, sizeof v, &v);
}

int nl_put_str(struct nlmsghdr *m, uint16_t type, const char *s) {
        return nl_put(m, type, strlen(s) + 1, s);
}

int nl_put_raw(struct nlmsghdr *m, const void *data, size_t len) {
        if (m->nlmsg_len + MNL_ALIGN(len) > NL_MSG_MAX)
                return -EMSGSIZE;
        memcpy(mnl_nlmsg_put_extra_header(m, len), data, len);
        return 0;
}

struct nlattr *nl_nest_start(struct nlmsghdr *m, uint16_t type) {
        return mnl_attr_nest_start_check(m, NL_MSG_MAX, type);
}

void nl_nest_end(struct nlmsghdr *m, struct nlattr *nest) {
        mnl_attr_nest_end(m, nest);
}

typedef struct ParseCtx {
        const struct nlattr **tb;
        uint16_t max;
} ParseCtx;

static int parse_cb(const struct nlattr *a, void *data) {
        ParseCtx *c = data;
        uint16_t t = mnl_attr_get_type(a);
        if (t <= c->max)
                c->tb[t] = a;
        return MNL_CB_OK;
}

int nl_parse(const struct nlmsghdr *m, size_t hdr_len, const struct nlattr **tb, uint16_t max) {
        memset(tb, 0, (max + 1u) * sizeof *tb);
        if (m->nlmsg_len < MNL_NLMSG_HDRLEN || mnl_nlmsg_get_payload_len(m) < hdr_len)
                return -EBADMSG;
        ParseCtx c = { .tb = tb, .max = max };
        return mnl_attr_parse(m, (unsigned) hdr_len, parse_cb, &c) < 0 ? -EBADMSG : 0;
}

int nl_parse_nested(const struct nlattr *nest, const struct nlattr **tb, uint16_t max) {
        memset(tb, 0, (max + 1u) * sizeof *tb);
        ParseCtx c = { .tb = tb, .max = max };
        return mnl_attr_parse_nested(nest, parse_cb, &c) < 0 ? -EBADMSG : 0;
}

void nl_attr_strcpy(const struct nlattr *a, char *buf, size_t n) {
        if (n == 0)
                return;
        size_t len = strnlen(mnl_attr_get_payload(a), mnl_attr_get_payload_len(a));
        if (len > n - 1)
                len = n - 1;
        memcpy(buf, mnl_attr_get_payload(a), len);
        buf[len] = '\0';
}
