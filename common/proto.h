/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet's local control protocol (netd.sock): one JSON object per line over a unix stream socket.
 *
 * Request:  {"op": "<verb>", "args": {...}}\n
 * Reply:    {"ok": true, "result": {...}}\n
 *           {"ok": false, "code": <CNI code>, "msg": "...", "details": "..."}\n
 *
 * Verbs (netd/netd.h documents the args of each): add, del, check, status, gc, endpoints, ipam, nat,
 * ipam-release, ping. A client sends one request per connection or several in sequence. */
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
