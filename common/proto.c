/* SPDX-License-Identifier: Apache-2.0 */
#include "common/proto.h"

#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/event.h"
#include "common/fileio.h"
#include "common/json-util.h"
#include "common/unixsock.h"

int proto_connect(const char *path, int timeout_ms, int *ret_fd) {
        (void) timeout_ms;
        struct sockaddr_un sa;
        int r = unix_sockaddr("connect", path, &sa, NULL, NULL);
        if (r < 0)
                return r;

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return negative_errno();
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int write_all(int fd, const char *p, size_t len) {
        while (len > 0) {
                ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

/* Reads up to and including '\n'. Byte-at-a-time would be slow; the server answers one line per
 * request, so reading whole chunks until a newline is safe for a client that waits for each reply. */
static int read_line(int fd, int timeout_ms, char **ret, size_t *ret_len) {
        if (timeout_ms <= 0)
                return -ETIMEDOUT;
        uint64_t deadline = now_usec() + (uint64_t) timeout_ms * 1000;
        size_t cap = 0, len = 0;
        _cleanup_free_ char *buf = NULL;
        for (;;) {
                int r = read_append_until(fd, KV_PROTO_MAX_MSG, deadline, &buf, &cap, &len);
                if (r == -EFBIG)
                        return -EMSGSIZE;
                if (r < 0)
                        return r;
                if (r == 0)
                        return -ECONNRESET;
                if (buf[len - 1] == '\n')
                        break;
        }
        *ret_len = len;
        *ret = TAKE_PTR(buf);
        return 0;
}

int proto_call(int fd, const char *op, json_t *args, int timeout_ms, json_t **ret_result, KvErr *e) {
        _cleanup_json_ json_t *req = json_pack("{s:s}", "op", op);
        if (!req)
                return -ENOMEM;
        if (args && json_object_set(req, "args", args) < 0)
                return -ENOMEM;
        size_t len;
        _cleanup_free_ char *line = json_dump_line(req, &len);
        if (!line)
                return -ENOMEM;

        int r = write_all(fd, line, len);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_TRY_AGAIN, r, "netd: sending request '%s' failed", op);

        _cleanup_free_ char *reply = NULL;
        size_t rl;
        r = read_line(fd, timeout_ms, &reply, &rl);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_TRY_AGAIN, r, "netd: no reply to '%s'", op);

        _cleanup_json_ json_t *obj = NULL;
        KvErr pe = {};
        r = json_parse_object(reply, rl, KV_PROTO_MAX_MSG, "netd reply", &obj, &pe);
        if (r < 0)
                return kverr_set(e, KV_ERR_INTERNAL, r, "%s", pe.msg);

        if (json_is_true(json_object_get(obj, "ok"))) {
                if (ret_result) {
                        json_t *res = json_object_get(obj, "result");
                        *ret_result = res ? json_incref(res) : json_object();
                }
                return 0;
        }
        json_t *code = json_object_get(obj, "code");
        json_t *msg = json_object_get(obj, "msg");
        json_t *details = json_object_get(obj, "details");
        if (e && e->code == 0) {
                e->code = json_is_integer(code) ? (int) json_integer_value(code) : KV_ERR_INTERNAL;
                snprintf(e->msg, sizeof e->msg, "%s", json_is_string(msg) ? json_string_value(msg) : "netd error");
                snprintf(e->details, sizeof e->details, "%s",
                         json_is_string(details) ? json_string_value(details) : "");
        }
        return -EPROTO;
}

int proto_call_path(const char *path, const char *op, json_t *args, int timeout_ms, json_t **ret_result,
                    KvErr *e) {
        _cleanup_close_ int fd = -1;
        struct sockaddr_un sa;
        int r = unix_sockaddr("netd socket", path, &sa, NULL, e);
        if (r < 0)
                return r;
        r = proto_connect(path, timeout_ms, &fd);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_TRY_AGAIN, r, "netd is not reachable at '%s'", path);
        return proto_call(fd, op, args, timeout_ms, ret_result, e);
}

json_t *proto_reply_ok(json_t *result) {
        json_t *o = json_object();
        if (!o) {
                json_decref(result);
                return NULL;
        }
        json_object_set_new(o, "ok", json_true());
        json_object_set_new(o, "result", result ? result : json_object());
        return o;
}

json_t *proto_reply_error(const KvErr *e) {
        return json_pack("{s:b,s:i,s:s,s:s}", "ok", 0, "code", e->code ? e->code : KV_ERR_INTERNAL, "msg",
                         e->msg[0] ? e->msg : "internal error", "details", e->details);
}
