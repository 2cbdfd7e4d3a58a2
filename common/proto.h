/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet's local control protocol (netd.sock): one JSON object per line over a unix stream socket.
 *
 * Request:  {"op": "<verb>", "args": {...}}\n
 * Reply:    {"ok": true, "result": {...}}\n
 *           {"ok": false, "code": <CNI code>, "msg": "...", "details": "..."}\n
 *
 * Verbs (netd/core/verbs.c has the table; docs/protocol.md documents the args of each):
 *   attachments (the CNI plugin):        add, del, check, gc, status, ping
 *   read-only (kvnetctl):                status-daemon, endpoints, ipam, nat, sriov, migrations, cluster-claims
 *   operator (kvnetctl):                 ipam-release
 *   migration (the launchers):           migration-source, migration-activate — their arguments and replies are
 *                                        typed once in common/migproto.h, for both ends
 * A client sends one request per connection or several in sequence. Socket paths go through
 * common/unixsock.h (at most 107 bytes). */
#pragma once

#include <jansson.h>

#include "common/kverr.h"

#define KV_PROTO_MAX_MSG (1024 * 1024)
#define KV_DEFAULT_SOCKET "/run/kvnet/netd.sock"

/* Connects to the socket; -ENOENT/-ECONNREFUSED when the daemon is not there. */
int proto_connect(const char *path, int timeout_ms, int *ret_fd) _wur_;
/* Sends one request and waits for the reply. On an error reply, returns -EPROTO and fills e
 * with the daemon's code and message. */
int proto_call(int fd, const char *op, json_t *args, int timeout_ms, json_t **ret_result, KvErr *e) _wur_;
/* One-shot: connect, call, close. Unreachable daemon -> KV_ERR_TRY_AGAIN in e. */
int proto_call_path(const char *path, const char *op, json_t *args, int timeout_ms, json_t **ret_result,
                    KvErr *e) _wur_;

/* Builds reply objects (for the daemon). */
json_t *proto_reply_ok(json_t *result /* stolen, may be NULL */);
json_t *proto_reply_error(const KvErr *e);
