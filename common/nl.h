/* SPDX-License-Identifier: Apache-2.0 */
/* A thin netlink layer over libmnl, for any netlink bus (netd's rtnetlink operations are in
 * netd/link/netlink.c; the SR-IOV sender in netd/binding/sriov-nl.c uses it as well).
 *
 * An NlSock is one socket (opened inside a netns if asked) with a send buffer for the message being
 * built and a receive buffer for the answers. A request is sent with NLM_F_REQUEST|NLM_F_ACK and
 * answered by an ack, an error or, for a dump, NLMSG_DONE; the kernel's extended ack
 * (NETLINK_EXT_ACK: NLMSGERR_ATTR_MSG) of a failed request is kept and nl_error() turns it into
 * the KvErr. Not thread-safe: one socket per thread. */
#pragma once

#include <linux/netlink.h>

#include "common/kverr.h"
#include "common/util.h"

/* Room for one message built with nl_msg_new() (attributes beyond it fail with -EMSGSIZE). */
#define NL_MSG_MAX 4096

typedef struct NlSock NlSock;

/* A netlink socket of `protocol` (NETLINK_ROUTE, ...) in the current netns, or created inside the netns
 * of netns_fd (>= 0); the calling thread is back in its own netns on return. */
int nl_sock_open(int protocol, int netns_fd, NlSock **ret) _wur_;
NlSock *nl_sock_free(NlSock *nl);
DEFINE_TRIVIAL_CLEANUP_FUNC(NlSock *, nl_sock_free);
#define _cleanup_nl_sock_ _cleanup_(nl_sock_freep)

/* Starts a message in nl's send buffer (valid until the next nl_msg_new() on nl): type, flags, and the
 * family header hdr of hdr_len bytes (copied). */
struct nlmsghdr *nl_msg_new(NlSock *nl, uint16_t type, uint16_t flags, const void *hdr, size_t hdr_len);

/* Called for every answer that is not an ack, an error or NLMSG_DONE. A negative return is kept and
 * returned by nl_call() once the answer is read to its end. */
typedef int (*nl_reply_cb)(const struct nlmsghdr *m, void *arg);

/* Sends m (from nl_msg_new() or any buffer; NLM_F_REQUEST|NLM_F_ACK are added and the sequence number
 * set) and reads the answer until its ack, its error or its NLMSG_DONE; cb (may be NULL) sees the
 * replies. Returns 0, the kernel's -errno, or a socket error. A dump the kernel marks as interrupted
 * (NLM_F_DUMP_INTR) still counts as complete. */
int nl_call(NlSock *nl, struct nlmsghdr *m, nl_reply_cb cb, void *arg) _wur_;
/* nl_call() without replies. */
int nl_request(NlSock *nl, struct nlmsghdr *m) _wur_;

/* The kernel's extended-ack message for nl's last request if that failed with r, else NULL. */
const char *nl_ext_ack(const NlSock *nl, int r);

/* Fills *e (KV_ERR_INTERNAL) with "<what>: <strerror(-r)>", followed by " (kernel: <message>)" when
 * nl (may be NULL) holds the kernel's extended ack for r. Returns r. */
int nl_error(KvErr *e, const NlSock *nl, int r, const char *fmt, ...) _printf_(4, 5);

/* Attribute writers for messages from nl_msg_new(): 0, or -EMSGSIZE when NL_MSG_MAX is reached
 * (then nothing is written). */
int nl_put(struct nlmsghdr *m, uint16_t type, size_t len, const void *data) _wur_;
int nl_put_u8(struct nlmsghdr *m, uint16_t type, uint8_t v) _wur_;
int nl_put_u32(struct nlmsghdr *m, uint16_t type, uint32_t v) _wur_;
int nl_put_str(struct nlmsghdr *m, uint16_t type, const char *s) _wur_;
/* Appends len raw bytes, padded: a family header inside a nest (a veth peer's ifinfomsg). */
int nl_put_raw(struct nlmsghdr *m, const void *data, size_t len) _wur_;
/* NULL when the message is full; closed by nl_nest_end(). */
struct nlattr *nl_nest_start(struct nlmsghdr *m, uint16_t type);
void nl_nest_end(struct nlmsghdr *m, struct nlattr *nest);

/* Attribute readers: tb[0..max] get the last attribute of each type (NULL if absent; types above
 * max are skipped). -EBADMSG for a malformed attribute stream. */
int nl_parse(const struct nlmsghdr *m, size_t hdr_len, const struct nlattr **tb, uint16_t max) _wur_;
int nl_parse_nested(const struct nlattr *nest, const struct nlattr **tb, uint16_t max) _wur_;
/* Copies a string attribute into buf (always terminated, truncated to n - 1 bytes). */
void nl_attr_strcpy(const struct nlattr *a, char *buf, size_t n);
