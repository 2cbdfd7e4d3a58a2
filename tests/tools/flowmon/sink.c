/* SPDX-License-Identifier: Apache-2.0 */
/* flowmon --tcp-sink: accepts the connections guests open and counts their "kvnet ... seq=N" lines. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>

#include "tests/tools/flowmon/flowmon.h"

static void sink_note_conn_id(Sink *k, uint64_t id) {
        for (size_t i = 0; i < k->n_conn_ids; i++)
                if (k->conn_ids[i] == id)
                        return;
        if (k->n_conn_ids < SINK_MAX_CONN_IDS)
                k->conn_ids[k->n_conn_ids++] = id;
}

static void sink_note_boot_id(Sink *k, const char *id) {
        for (size_t i = 0; i < k->n_boot_ids; i++)
                if (streq(k->boot_ids[i], id))
                        return;
        if (k->n_boot_ids < SINK_MAX_BOOT_IDS)
                snprintf(k->boot_ids[k->n_boot_ids++], sizeof k->boot_ids[0], "%s", id);
}

/* "kvnet boot_id=<id> conn=<n> seq=<m>": seq is required, the others optional. */
static void sink_line(Sink *k, SinkConn *sc, char *line, bool overflow, uint64_t now) {
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\r')
                line[--len] = '\0';
        bool have_seq = false, have_conn = false;
        uint64_t seq = 0, conn = 0;
        const char *boot = NULL;

        char *save = NULL, *tok = overflow ? NULL : strtok_r(line, " \t", &save);
        if (!tok || !streq(tok, "kvnet")) {
                sc->bad_lines++;
                return;
        }
        while ((tok = strtok_r(NULL, " \t", &save))) {
                if (strncmp(tok, "seq=", 4) == 0)
                        have_seq = parse_uint(tok + 4, 0, UINT64_MAX, &seq) >= 0;
                else if (strncmp(tok, "conn=", 5) == 0)
                        have_conn = parse_uint(tok + 5, 0, UINT64_MAX, &conn) >= 0;
                else if (strncmp(tok, "boot_id=", 8) == 0 && tok[8] && strlen(tok + 8) < sizeof sc->boot_id)
                        boot = tok + 8;
        }
        if (!have_seq) {
                sc->bad_lines++;
                return;
        }

        if (sc->lines > 0 && now - sc->last_line > sc->max_gap)
                sc->max_gap = now - sc->last_line;
        if (k->last_line_any != 0 && now - k->last_line_any > k->max_silence)
                k->max_silence = now - k->last_line_any;
        sc->last_line = k->last_line_any = now;
        sc->lines++;
        k->lines++;

        if (!sc->have_seq) {
                sc->have_seq = true;
                sc->first_seq = sc->last_seq = seq;
        } else if (seq > sc->last_seq) {
                sc->seq_gaps += seq - sc->last_seq - 1;
                sc->last_seq = seq;
        } else
                sc->seq_backwards++;

        if (have_conn) {
                if (!sc->have_conn_id) {
                        sc->have_conn_id = true;
                        sc->conn_id = conn;
                }
                sink_note_conn_id(k, conn);
        }
        if (boot) {
                if (!sc->boot_id[0])
                        snprintf(sc->boot_id, sizeof sc->boot_id, "%s", boot);
                sink_note_boot_id(k, boot);
        }
}

static void sink_conn_close(SinkConn *sc, const char *error, uint64_t now) {
        sc->closed = true;
        sc->closed_at = now;
        if (error)
                snprintf(sc->error, sizeof sc->error, "%s", error);
        event_source_free(sc->io); /* closes the socket */
        sc->io = NULL;
}

static int on_sink_conn_io(EventSource *s, int fd, uint32_t revents, void *userdata) {
        SinkConn *sc = userdata;
        Sink *k = sc->ctx->sink;
        (void) s;
        (void) revents;
        uint64_t now = now_usec();
        for (;;) {
                char buf[4096];
                ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n > 0) {
                        sc->bytes += (uint64_t) n;
                        for (ssize_t i = 0; i < n; i++) {
                                if (buf[i] == '\n') {
                                        sc->in[sc->in_len] = '\0';
                                        sink_line(k, sc, sc->in, sc->in_overflow, now);
                                        sc->in_len = 0;
                                        sc->in_overflow = false;
                                } else if (sc->in_len + 1 < sizeof sc->in)
                                        sc->in[sc->in_len++] = buf[i];
                                else
                                        sc->in_overflow = true;
                        }
                        continue;
                }
                if (n == 0) {
                        sink_conn_close(sc, NULL, now);
                        break;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                        sink_conn_close(sc, strerror(errno), now);
                break;
        }
        return 0;
}

static int on_sink_accept(EventSource *s, int fd, uint32_t revents, void *userdata) {
        Ctx *c = userdata;
        Sink *k = c->sink;
        (void) s;
        (void) revents;
        for (;;) {
                struct sockaddr_storage sa;
                socklen_t sl = sizeof sa;
                _cleanup_close_ int cfd = accept4(fd, (struct sockaddr *) &sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        if (errno != EAGAIN && errno != EWOULDBLOCK)
                                log_warning_errno(negative_errno(), "--tcp-sink: accept: %m");
                        return 0;
                }
                if (k->n_conns >= SINK_MAX_CONNS ||
                    grow((void **) &k->conns, &k->n_alloc, k->n_conns + 1, sizeof *k->conns) < 0) {
                        k->rejected++;
                        continue;
                }
                SinkConn *sc = calloc(1, sizeof *sc);
                if (!sc) {
                        k->rejected++;
                        continue;
                }
                sc->ctx = c;
                sc->accepted = now_usec();
                sockaddr_fmt((struct sockaddr *) &sa, sl, sc->peer, sizeof sc->peer);
                int r = event_add_io(c->loop, cfd, EPOLLIN | EPOLLRDHUP, on_sink_conn_io, sc, &sc->io);
                if (r < 0) {
                        log_warning_errno(r, "--tcp-sink: cannot watch connection from %s: %m", sc->peer);
                        free(sc);
                        k->rejected++;
                        continue;
                }
                event_source_set_fd_owned(sc->io, true);
                TAKE_FD(cfd);
                k->conns[k->n_conns++] = sc;
                k->accepted++;
        }
}

int sink_setup(Ctx *c, const char *arg) {
        _cleanup_free_ Sink *k = calloc(1, sizeof *k);
        if (!k)
                return log_error_errno(-ENOMEM, "--tcp-sink: %m");
        k->arg = arg;

        _cleanup_free_ char *copy = strdup(arg);
        if (!copy)
                return log_error_errno(-ENOMEM, "--tcp-sink: %m");
        char *host, *port;
        if (split_host_port(copy, true, &host, &port) < 0) {
                log_error("--tcp-sink: expected [ADDR:]PORT, got '%s'", arg);
                return -EINVAL;
        }

        struct sockaddr_storage ss = {};
        socklen_t sl;
        uint16_t portnum = (uint16_t) strtoul(port, NULL, 10);
        _cleanup_close_ int fd = -1;
        if (!host) {
                /* Dual-stack wildcard; an IPv4-only namespace (ipv6.disable) gets 0.0.0.0. */
                fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                if (fd >= 0) {
                        int zero = 0;
                        IGNORE_RESULT(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero));
                        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) &ss;
                        s6->sin6_family = AF_INET6;
                        s6->sin6_port = htons(portnum);
                        sl = sizeof *s6;
                } else {
                        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                        struct sockaddr_in *s4 = (struct sockaddr_in *) &ss;
                        s4->sin_family = AF_INET;
                        s4->sin_port = htons(portnum);
                        sl = sizeof *s4;
                }
        } else {
                struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai = NULL;
                int g = getaddrinfo(host, port, &hints, &ai);
                if (g != 0) {
                        log_error("--tcp-sink: cannot resolve '%s': %s", arg, gai_strerror(g));
                        return -EINVAL;
                }
                memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
                sl = ai->ai_addrlen;
                freeaddrinfo(ai);
                fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        }
        if (fd < 0)
                return log_error_errno(negative_errno(), "--tcp-sink: socket for '%s': %m", arg);
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
                return log_error_errno(negative_errno(), "--tcp-sink: SO_REUSEADDR: %m");
        if (bind(fd, (struct sockaddr *) &ss, sl) < 0)
                return log_error_errno(negative_errno(), "--tcp-sink: cannot bind '%s': %m", arg);
        if (listen(fd, 128) < 0)
                return log_error_errno(negative_errno(), "--tcp-sink: cannot listen on '%s': %m", arg);
        sl = sizeof ss;
        if (getsockname(fd, (struct sockaddr *) &ss, &sl) < 0)
                return log_error_errno(negative_errno(), "--tcp-sink: getsockname: %m");
        sockaddr_fmt((struct sockaddr *) &ss, sl, k->listen, sizeof k->listen);

        int r = event_add_io(c->loop, fd, EPOLLIN, on_sink_accept, c, &k->io);
        if (r < 0)
                return log_error_errno(r, "--tcp-sink: cannot watch the listening socket: %m");
        event_source_set_fd_owned(k->io, true);
        TAKE_FD(fd);
        c->sink = TAKE_PTR(k);
        return 0;
}
