/* SPDX-License-Identifier: Apache-2.0 */
/* The status socket: one JSON request per line, one reply per request (status, shutdown, migrate,
 * migrate-cancel, attach-interface, detach-interface, pause, unpause). */
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "common/json-util.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/unixsock.h"
#include "launcher/runtime/runtime.h"

struct Client {
        struct Runtime *rt;
        int fd;
        EventSource *src;
        char buf[CLIENT_BUF];
        size_t len;
};

static void client_free(Client *c) {
        if (!c)
                return;
        for (size_t i = 0; i < STATUS_MAX_CLIENTS; i++)
                if (c->rt->clients[i] == c)
                        c->rt->clients[i] = NULL;
        event_source_free(c->src);
        close(c->fd);
        free(c);
}

static int client_reply(Client *c, json_t *reply /* stolen */) {
        if (!reply)
                return -ENOMEM;
        char *text = json_dumps(reply, JSON_COMPACT);
        json_decref(reply);
        if (!text)
                return -ENOMEM;
        size_t len = strlen(text);
        text[len] = '\n'; /* replaces the NUL; write len + 1 bytes */
        size_t off = 0;
        int r = 0;
        while (off < len + 1) {
                ssize_t n = send(c->fd, text + off, len + 1 - off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno(); /* a client that does not read its (small) reply is dropped */
                        break;
                }
                off += (size_t) n;
        }
        free(text);
        return r;
}

static json_t *rt_error(int code, const char *msg) {
        KvErr e = {};
        kverr_set(&e, code, -EINVAL, "%s", msg);
        return proto_reply_error(&e);
}

typedef enum SocketOp {
        SOCKET_OP_STATUS,
        SOCKET_OP_SHUTDOWN,
        SOCKET_OP_MIGRATE,
        SOCKET_OP_MIGRATE_CANCEL,
        SOCKET_OP_ATTACH_INTERFACE,
        SOCKET_OP_DETACH_INTERFACE,
        SOCKET_OP_PAUSE,
        SOCKET_OP_UNPAUSE,
} SocketOp;

static const char *const socket_op_table[] = {
        [SOCKET_OP_STATUS] = "status",
        [SOCKET_OP_SHUTDOWN] = "shutdown",
        [SOCKET_OP_MIGRATE] = "migrate",
        [SOCKET_OP_MIGRATE_CANCEL] = "migrate-cancel",
        [SOCKET_OP_ATTACH_INTERFACE] = "attach-interface",
        [SOCKET_OP_DETACH_INTERFACE] = "detach-interface",
        [SOCKET_OP_PAUSE] = "pause",
        [SOCKET_OP_UNPAUSE] = "unpause",
};

static int op_status(Runtime *rt, json_t *req, KvErr *e) {
        (void) rt;
        (void) req;
        (void) e;
        return 0;
}

static int op_shutdown(Runtime *rt, json_t *req, KvErr *e) {
        (void) req;
        (void) e;
        rt_request_shutdown(rt, "shutdown requested on the status socket");
        return 0;
}

static int op_migrate(Runtime *rt, json_t *req, KvErr *e) {
        return rt_start_migration(rt, json_object_get(req, "args"), e);
}

static int op_migrate_cancel(Runtime *rt, json_t *req, KvErr *e) {
        (void) req;
        return rt_cancel_migration(rt, "migrate-cancel requested on the status socket", e);
}

static int op_attach_interface(Runtime *rt, json_t *req, KvErr *e) {
        return rt_attach_interface(rt, json_object_get(req, "args"), e);
}

static int op_detach_interface(Runtime *rt, json_t *req, KvErr *e) {
        return rt_detach_interface(rt, json_object_get(req, "args"), e);
}

static int op_pause(Runtime *rt, json_t *req, KvErr *e) {
        (void) req;
        return rt_pause(rt, true, e);
}

static int op_unpause(Runtime *rt, json_t *req, KvErr *e) {
        (void) req;
        return rt_pause(rt, false, e);
}

/* Per op: what it does; its reply is the status after it, or its error. */
static int (*const socket_op_run[])(Runtime *rt, json_t *req, KvErr *e) = {
        [SOCKET_OP_STATUS] = op_status,
        [SOCKET_OP_SHUTDOWN] = op_shutdown,
        [SOCKET_OP_MIGRATE] = op_migrate,
        [SOCKET_OP_MIGRATE_CANCEL] = op_migrate_cancel,
        [SOCKET_OP_ATTACH_INTERFACE] = op_attach_interface,
        [SOCKET_OP_DETACH_INTERFACE] = op_detach_interface,
        [SOCKET_OP_PAUSE] = op_pause,
        [SOCKET_OP_UNPAUSE] = op_unpause,
};

static int client_handle_line(Client *c, const char *line, size_t len) {
        Runtime *rt = c->rt;
        json_t *req = NULL;
        KvErr e = {};
        if (json_parse_object(line, len, CLIENT_BUF, "request", &req, &e) < 0)
                return client_reply(c, proto_reply_error(&e));
        const char *op = NULL;
        int r = json_get_string(req, "request", "op", true, &op, &e);
        json_t *reply;
        if (r < 0)
                reply = proto_reply_error(&e);
        else {
                int k = launch_table_lookup(socket_op_table, ELEMENTSOF(socket_op_table), op);
                if (k < 0) {
                        char msg[200];
                        snprintf(msg, sizeof msg,
                                 "request: 'op' must be status, shutdown, migrate, migrate-cancel, attach-interface, "
                                 "detach-interface, pause or unpause, got '%.64s'",
                                 op);
                        reply = rt_error(KV_ERR_INVALID_CONFIG, msg);
                } else if (k != SOCKET_OP_STATUS && k != SOCKET_OP_SHUTDOWN && rt->conn_lost && !rt->done) {
                        char msg[200];
                        snprintf(msg, sizeof msg, "%s: the libvirt connection is lost, the launcher is reconnecting; "
                                 "try again", op);
                        reply = rt_error(KV_ERR_TRY_AGAIN, msg);
                } else if (socket_op_run[k](rt, req, &e) < 0)
                        reply = proto_reply_error(&e);
                else
                        reply = proto_reply_ok(launch_status_to_json(&rt->st));
        }
        json_decref(req);
        return client_reply(c, reply);
}

static int on_client(EventSource *s, int fd, uint32_t revents, void *userdata) {
        Client *c = userdata;
        (void) s;
        (void) revents;
        ssize_t n = recv(fd, c->buf + c->len, sizeof c->buf - c->len, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                client_free(c);
                return 0;
        }
        c->len += (size_t) n;
        for (;;) {
                char *nl = memchr(c->buf, '\n', c->len);
                if (!nl)
                        break;
                size_t l = (size_t) (nl - c->buf);
                int r = client_handle_line(c, c->buf, l);
                if (r < 0) {
                        client_free(c);
                        return 0;
                }
                memmove(c->buf, nl + 1, c->len - l - 1);
                c->len -= l + 1;
        }
        if (c->len == sizeof c->buf) {
                IGNORE_RESULT(client_reply(c, rt_error(KV_ERR_DECODE, "request: line too long")));
                client_free(c);
        }
        return 0;
}

static int on_accept(EventSource *s, int fd, uint32_t revents, void *userdata) {
        Runtime *rt = userdata;
        (void) s;
        (void) revents;
        int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0)
                return 0;
        size_t slot;
        for (slot = 0; slot < STATUS_MAX_CLIENTS; slot++)
                if (!rt->clients[slot])
                        break;
        Client *c = slot < STATUS_MAX_CLIENTS ? calloc(1, sizeof *c) : NULL;
        if (!c) {
                close(cfd);
                return 0;
        }
        c->rt = rt;
        c->fd = cfd;
        if (event_add_io(rt->loop, cfd, EPOLLIN, on_client, c, &c->src) < 0) {
                close(cfd);
                free(c);
                return 0;
        }
        rt->clients[slot] = c;
        return 0;
}

int rt_listen(Runtime *rt, KvErr *e) {
        struct sockaddr_un sa;
        socklen_t sa_len;
        int r = unix_sockaddr("status socket", rt->socket_path, &sa, &sa_len, e);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        /* A socket that still answers belongs to a live launcher; a dead one's is replaced. */
        {
                _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (probe >= 0 && connect(probe, (struct sockaddr *) &sa, sa_len) == 0)
                        return -EADDRINUSE;
        }
        if (unlink(rt->socket_path) < 0 && errno != ENOENT)
                return negative_errno();
        mode_t old = umask(0177); /* 0600 from the start */
        r = bind(fd, (struct sockaddr *) &sa, sa_len);
        umask(old);
        if (r < 0)
                return negative_errno();
        if (listen(fd, 8) < 0)
                return negative_errno();
        r = event_add_io(rt->loop, fd, EPOLLIN, on_accept, rt, &rt->listen_src);
        if (r < 0)
                return r;
        rt->listen_fd = TAKE_FD(fd);
        return 0;
}

void rt_unlisten(Runtime *rt) {
        for (size_t i = 0; i < STATUS_MAX_CLIENTS; i++)
                client_free(rt->clients[i]);
        if (rt->listen_src)
                event_source_free(rt->listen_src);
        rt->listen_src = NULL;
        if (rt->listen_fd >= 0) {
                close(rt->listen_fd);
                rt->listen_fd = -1;
                if (unlink(rt->socket_path) < 0 && errno != ENOENT)
                        log_warning_errno(negative_errno(), "remove socket '%s': %m", rt->socket_path);
        }
}
