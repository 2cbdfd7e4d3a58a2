/* SPDX-License-Identifier: Apache-2.0 */
/* netd's unix socket: accepts connections, reads newline-delimited requests, answers each in turn. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "common/array.h"
#include "common/json-util.h"
#include "common/log.h"
#include "common/netns.h"
#include "common/proto.h"
#include "common/unixsock.h"
#include "netd/core/netd-priv.h"
#include "netd/core/server.h"

typedef struct Conn {
        struct Conn *prev, *next;
        Server *srv;
        int fd;
        EventSource *src;
        char *buf;
        size_t len, cap;
        char *out;
        size_t out_len, out_off, out_cap;
        char *refused; /* a caller that may not use netd: every request gets this error (and nothing else) */
        bool read_only; /* a member of the config's socketReadGroup: the read-only verbs only */
        bool other;     /* a caller in a namespace neither netd's nor the machine's: maybe a pod's */
        NetdApiCall *call; /* a `kube` request in flight: the requests after it wait (replies keep their order) */
        bool eof;          /* the client has closed its end: gone once the call's reply is out */
        NetnsId netns;  /* ... that namespace */
        unsigned uid;
} Conn;

struct Server {
        EventLoop *loop;
        Manager *m;
        int fd;
        EventSource *src;
        char *path;
        unsigned n_conns;
        Conn *conns;
};

#define MAX_CONNS 256
/* Replies waiting for a client that does not read: beyond this netd stops reading its requests (the client's
 * writes block) until it has read them, so a client cannot grow netd's memory, and loses no reply. */
#define OUT_MAX (4u << 20)

static void conn_free(Conn *c) {
        if (!c)
                return;
        if (c->prev)
                c->prev->next = c->next;
        else
                c->srv->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        netd_api_cancel(c->call);
        event_source_free(c->src);
        if (c->fd >= 0)
                close(c->fd);
        c->srv->n_conns--;
        free(c->buf);
        free(c->out);
        free(c->refused);
        free(c);
}

static int queue_reply(Conn *c, json_t *reply) {
        if (!reply) {
                KvErr e = {};
                kverr_set(&e, KV_ERR_INTERNAL, -ENOMEM, "netd: out of memory");
                reply = proto_reply_error(&e);
        }
        _cleanup_free_ char *text = reply ? json_dump_compact(reply) : NULL;
        json_decref(reply);
        if (!text)
                return -ENOMEM;
        size_t tl = strlen(text);
        int r = ARRAY_GROW(c->out, c->out_cap, c->out_len + tl + 1);
        if (r < 0)
                return r;
        memcpy(c->out + c->out_len, text, tl);
        c->out[c->out_len + tl] = '\n';
        c->out_len += tl + 1;
        return 0;
}

static const Verb *request_verb(json_t *req) {
        const char *op = json_string_value(json_object_get(req, "op"));
        return op ? verb_find(op) : NULL;
}

static bool request_read_only(json_t *req) {
        const Verb *v = request_verb(req);
        return v && v->read_only;
}

/* Whether the process pid is in group gid: its primary group (from the socket's credentials) or a supplementary
 * one (/proc/PID/status, "Groups:"). */
static bool peer_in_group(const struct ucred *cr, long long gid) {
        if ((long long) cr->gid == gid)
                return true;
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/status", (int) cr->pid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return false;
        char line[4096];
        while (fgets(line, sizeof line, f)) {
                if (strncmp(line, "Groups:", 7) != 0)
                        continue;
                char *p = line + 7, *end;
                for (;;) {
                        errno = 0;
                        long long g = strtoll(p, &end, 10);
                        if (end == p || errno)
                                return false;
                        if (g == gid)
                                return true;
                        p = end;
                }
        }
        return false;
}

/* Where the caller runs: netd's own namespace or the machine's (the runtime, the CNI plugin, kvnet-node,
 * kvnetctl) is the node's; another may be a pod's (an attachment's sandbox, checked per request: attachments
 * come and go), where a launcher runs beside its VM's tap, or whatever a tenant runs there. 0, or -errno when it
 * cannot tell (the caller is gone). */
static int peer_netns(pid_t pid, Conn *c) {
        if (pid <= 0)
                return 0; /* outside netd's pid namespace: an ancestor's, the machine's side (netd runs hostPID) */
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/ns/net", (int) pid);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        int o = netns_owner(fd);
        if (o < 0)
                return o;
        c->other = o == NETNS_OTHER;
        return c->other ? netns_id(fd, &c->netns) : 0;
}

/* A caller in a pod's namespace acts for that pod only: ping and status, and the migration notifications of a VM
 * attached in its namespace (what a launcher sends). 0 if the request may go on, else e is set. */
static int confined_allows(Conn *c, json_t *req, KvErr *e) {
        const char *op = json_string_value(json_object_get(req, "op"));
        if (op && (streq(op, "ping") || streq(op, "status")))
                return 0;
        if (op && (streq(op, "migration-source") || streq(op, "migration-activate"))) {
                json_t *args = json_object_get(req, "args");
                const char *ns = json_string_value(json_object_get(args, "vmNamespace"));
                const char *name = json_string_value(json_object_get(args, "vmName"));
                if (!ns || !name || manager_vm_in_netns(c->srv->m, ns, name, &c->netns))
                        return 0; /* (without a VM the handler refuses it, naming the field) */
                return kverr_set(e, KV_ERR_NOT_AVAILABLE, -EPERM,
                                 "netd: %s: VM '%.64s/%.64s' has no attachment in the caller's network namespace "
                                 "(a launcher may only act for its own VM)",
                                 op, ns, name);
        }
        return kverr_set(e, KV_ERR_NOT_AVAILABLE, -EPERM,
                         "netd: '%.64s' may not be used from a pod's network namespace (only ping, status and its own "
                         "VM's migration-source / migration-activate)",
                         op ? op : "?");
}

static size_t out_pending(const Conn *c) {
        return c->out_len - c->out_off;
}

static void on_api_done(json_t *reply, void *userdata);

/* Answers the complete lines in the input buffer, until the replies waiting exceed OUT_MAX or a request's answer
 * comes from the loop later (a deferred verb: the lines after it wait for it). */
static int process_lines(Conn *c) {
        size_t start = 0;
        while (out_pending(c) <= OUT_MAX && !c->call) {
                char *nl = memchr(c->buf + start, '\n', c->len - start);
                if (!nl)
                        break;
                size_t linelen = (size_t) (nl - (c->buf + start));
                json_t *req = NULL;
                KvErr e = {};
                json_t *reply;
                if (c->refused) {
                        kverr_set(&e, KV_ERR_NOT_AVAILABLE, -EPERM, "%s", c->refused);
                        reply = proto_reply_error(&e);
                } else if (json_parse_object(c->buf + start, linelen, KV_PROTO_MAX_MSG, "request", &req, &e) < 0)
                        reply = proto_reply_error(&e);
                else if (c->read_only && !request_read_only(req)) {
                        const char *op = json_string_value(json_object_get(req, "op"));
                        kverr_set(&e, KV_ERR_NOT_AVAILABLE, -EPERM,
                                  "netd: uid %u may only use the read-only verbs (socketReadGroup), not '%.64s'", c->uid,
                                  op ? op : "?");
                        json_decref(req);
                        reply = proto_reply_error(&e);
                } else if (c->other && manager_netns_attached(c->srv->m, &c->netns) &&
                           confined_allows(c, req, &e) < 0) {
                        json_decref(req);
                        reply = proto_reply_error(&e);
                } else if (request_verb(req) && request_verb(req)->deferred) {
                        reply = NULL;
                        netd_api_start(c->srv->m, json_object_get(req, "args"), on_api_done, c, &c->call, &reply);
                        json_decref(req);
                        if (c->call) { /* on_api_done queues its reply */
                                start += linelen + 1;
                                break;
                        }
                } else {
                        reply = manager_handle(c->srv->m, req);
                        json_decref(req);
                }
                int r = queue_reply(c, reply);
                if (r < 0)
                        return r;
                start += linelen + 1;
        }
        memmove(c->buf, c->buf + start, c->len - start);
        c->len -= start;
        return 0;
}

static int flush_out(Conn *c) {
        while (c->out_off < c->out_len) {
                ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EAGAIN)
                                return 1;
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                c->out_off += (size_t) n;
        }
        c->out_off = c->out_len = 0;
        return 0;
}

static void conn_rearm(Conn *c, int r) {
        IGNORE_RESULT(event_source_set_io_events(c->src, (out_pending(c) > OUT_MAX ? 0 : EPOLLIN) |
                                                                 (r > 0 ? EPOLLOUT : 0)));
}

/* A deferred request's reply: queued, then the lines that waited for it answered, then sent. */
static void on_api_done(json_t *reply, void *userdata) {
        Conn *c = userdata;
        c->call = NULL;
        int r = queue_reply(c, reply);
        if (r >= 0)
                r = process_lines(c);
        if (r >= 0)
                r = flush_out(c);
        if (r < 0 || c->eof) {
                conn_free(c);
                return;
        }
        conn_rearm(c, r);
}

static int on_conn(EventSource *s, int fd, uint32_t revents, void *userdata) {
        (void) s;
        Conn *c = userdata;
        if (revents & EPOLLIN) {
                for (;;) {
                        if (c->cap - c->len < 4096) {
                                if (c->cap >= KV_PROTO_MAX_MSG + 8192) {
                                        KvErr e = {};
                                        kverr_set(&e, KV_ERR_DECODE, -EMSGSIZE,
                                                  "request: larger than %d bytes", KV_PROTO_MAX_MSG);
                                        (void) queue_reply(c, proto_reply_error(&e));
                                        (void) flush_out(c);
                                        conn_free(c);
                                        return 0;
                                }
                                /* 16 KiB first, then doubling */
                                if (ARRAY_GROW(c->buf, c->cap, c->cap ? c->cap + 1 : 16384) < 0) {
                                        conn_free(c);
                                        return 0;
                                }
                        }
                        ssize_t n = recv(fd, c->buf + c->len, c->cap - c->len, MSG_DONTWAIT);
                        if (n < 0) {
                                if (errno == EAGAIN)
                                        break;
                                if (errno == EINTR)
                                        continue;
                                conn_free(c);
                                return 0;
                        }
                        if (n == 0) {
                                /* Peer closed: answer what is complete, then go (after a call in flight). */
                                (void) process_lines(c);
                                if (c->call) {
                                        c->eof = true;
                                        IGNORE_RESULT(event_source_set_io_events(c->src, 0));
                                        return 0;
                                }
                                (void) flush_out(c);
                                conn_free(c);
                                return 0;
                        }
                        c->len += (size_t) n;
                }
                if (process_lines(c) < 0) {
                        conn_free(c);
                        return 0;
                }
        }
        if (revents & (EPOLLERR | EPOLLHUP) && !(revents & EPOLLIN)) {
                conn_free(c);
                return 0;
        }
        int r = flush_out(c);
        if (r == 0 && c->len > 0 && memchr(c->buf, '\n', c->len)) {
                /* the client read what waited: the requests held back meanwhile */
                if (process_lines(c) < 0) {
                        conn_free(c);
                        return 0;
                }
                r = flush_out(c);
        }
        if (r < 0) {
                conn_free(c);
                return 0;
        }
        conn_rearm(c, r);
        return 0;
}

static int on_accept(EventSource *s, int fd, uint32_t revents, void *userdata) {
        (void) s;
        (void) revents;
        Server *srv = userdata;
        for (;;) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno != EAGAIN && errno != EINTR)
                                log_warning_errno(negative_errno(), "accept on %s: %m", srv->path);
                        return 0;
                }
                if (srv->n_conns >= MAX_CONNS) {
                        close(cfd);
                        continue;
                }
                Conn *c = calloc(1, sizeof *c);
                if (!c) {
                        close(cfd);
                        continue;
                }
                c->srv = srv;
                c->fd = cfd;
                srv->n_conns++;
                c->next = srv->conns;
                if (srv->conns)
                        srv->conns->prev = c;
                srv->conns = c;
                if (event_add_io(srv->loop, cfd, EPOLLIN, on_conn, c, &c->src) < 0) {
                        conn_free(c);
                        continue;
                }
                /* The socket is root's (0600), and the caller's credentials are checked as well: a socket made
                 * reachable by mistake (a chmod, a bind mount into a pod) still serves root only. A refused
                 * caller's requests are each answered with the refusal (closing at once could cut its request
                 * short and hide the reason from it). */
                struct ucred cr = { .pid = 0, .uid = (uid_t) -1, .gid = (gid_t) -1 };
                socklen_t cl = sizeof cr;
                bool ok = getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == 0;
                int nr = ok ? peer_netns(cr.pid, c) : 0;
                c->uid = (unsigned) cr.uid;
                if (ok && cr.uid != 0 && cr.uid != geteuid()) {
                        c->read_only = srv->m->socket_read_gid >= 0 && peer_in_group(&cr, srv->m->socket_read_gid);
                        ok = c->read_only;
                }
                if (!ok || nr < 0) {
                        if ((ok ? asprintf(&c->refused, "netd: cannot tell the network namespace of pid %d (%s)",
                                           (int) cr.pid, strerror(-nr))
                                : asprintf(&c->refused, "netd: uid %u may not use %s (root only)", (unsigned) cr.uid,
                                           srv->path)) < 0) {
                                c->refused = NULL;
                                conn_free(c);
                                continue;
                        }
                        static long long last_logged;
                        long long now = (long long) (now_usec() / 1000000);
                        if (now - last_logged >= 10) { /* at most one line every 10 s however many try */
                                log_warning("%s (pid %d)", c->refused, (int) cr.pid);
                                last_logged = now;
                        }
                }
        }
}

int server_new(EventLoop *loop, Manager *m, const char *path, Server **ret, KvErr *e) {
        struct sockaddr_un sa;
        socklen_t sa_len;
        int r = unix_sockaddr("netd: listen", path, &sa, &sa_len, e);
        if (r < 0)
                return r;

        /* Refuse to steal the socket of a live daemon; remove a stale one. */
        int probe = -1;
        if (proto_connect(path, 1000, &probe) == 0) {
                close(probe);
                return -EADDRINUSE;
        }
        (void) unlink(path);

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        mode_t old = umask(0077);
        r = bind(fd, (struct sockaddr *) &sa, sa_len);
        umask(old);
        if (r < 0)
                return negative_errno();
        /* root's; with a socketReadGroup, its members may connect too (and use the read-only verbs) */
        if (m->socket_read_gid >= 0 && chown(path, (uid_t) -1, (gid_t) m->socket_read_gid) < 0)
                return negative_errno();
        if (chmod(path, m->socket_read_gid >= 0 ? 0660 : 0600) < 0 || listen(fd, 128) < 0)
                return negative_errno();

        Server *srv = calloc(1, sizeof *srv);
        if (!srv)
                return -ENOMEM;
        srv->loop = loop;
        srv->m = m;
        srv->path = strdup(path);
        r = event_add_io(loop, fd, EPOLLIN, on_accept, srv, &srv->src);
        if (r < 0 || !srv->path) {
                free(srv->path);
                free(srv);
                return r < 0 ? r : -ENOMEM;
        }
        srv->fd = TAKE_FD(fd);
        *ret = srv;
        return 0;
}

Server *server_free(Server *srv) {
        if (!srv)
                return NULL;
        while (srv->conns)
                conn_free(srv->conns);
        event_source_free(srv->src);
        close(srv->fd);
        (void) unlink(srv->path);
        free(srv->path);
        free(srv);
        return NULL;
}
