/* SPDX-License-Identifier: Apache-2.0 */
#include "common/proto.h"

#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "common/json-util.h"
#include "common/unixsock.h"

static long long now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
        size_t cap = 8192, len = 0;
        _cleanup_free_ char *buf = malloc(cap + 1);
        if (!buf)
                return -ENOMEM;
        long long deadline = now_ms() + timeout_ms;
        for (;;) {
                int left = (int) (deadline - now_ms());
                if (left <= 0)
                        return -ETIMEDOUT;
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                int r = poll(&pfd, 1, left);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (r == 0)
                        return -ETIMEDOUT;
                if (len == cap) {
                        if (cap >= KV_PROTO_MAX_MSG)
                                return -EMSGSIZE;
                        char *nb = realloc(buf, cap * 2 + 1);
                        if (!nb)
                                return -ENOMEM;
                        buf = nb;
                        cap *= 2;
                }
                ssize_t n = recv(fd, buf + len, cap - len, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        return -ECONNRESET;
                len += (size_t) n;
                if (buf[len - 1] == '\n')
                        break;
        }
        buf[len] = '\0';
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
