/* SPDX-License-Identifier: Apache-2.0 */
/* flowmon --tcp-echo: one TCP connection to an echo server, a numbered line every --tcp-interval-ms;
 * the longest stall of the echoes is the outage the connection saw. */
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>

#include "tests/tools/flowmon/flowmon.h"

bool echo_in_flight(const Ctx *c) {
        return c->echo && !c->echo->closed && c->echo->expect < c->echo->n_sent;
}

static void echo_close(TcpEcho *e, const char *error, uint64_t now) {
        if (e->closed)
                return;
        e->closed = true;
        e->closed_at = now;
        snprintf(e->error, sizeof e->error, "%s", error);
        /* Lines that never came back stalled until the connection broke. */
        if (e->expect < e->n_sent && now - e->sent_at[e->expect] > e->max_stall)
                e->max_stall = now - e->sent_at[e->expect];
        event_source_free(e->io); /* closes the socket */
        e->io = NULL;
        e->fd = -1;
        event_source_free(e->timer);
        e->timer = NULL;
}

static void echo_close_errno(TcpEcho *e, int err, uint64_t now) {
        char buf[160];
        snprintf(buf, sizeof buf, "%s", strerror(err));
        echo_close(e, buf, now);
}

static int echo_set_want_out(TcpEcho *e, bool want) {
        if (e->want_out == want || !e->io)
                return 0;
        int r = event_source_set_io_events(e->io, EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0));
        if (r < 0)
                return r;
        e->want_out = want;
        return 0;
}

/* Returns -errno when the connection failed. */
static int echo_flush(TcpEcho *e) {
        while (e->out_len > 0) {
                ssize_t n = send(e->fd, e->out, e->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return echo_set_want_out(e, true);
                        return negative_errno();
                }
                e->bytes_out += (uint64_t) n;
                memmove(e->out, e->out + n, e->out_len - (size_t) n);
                e->out_len -= (size_t) n;
        }
        return echo_set_want_out(e, false);
}

int on_echo_timer(EventSource *s, void *userdata) {
        Ctx *c = userdata;
        TcpEcho *e = c->echo;
        (void) s;
        if (e->closed || c->stopping)
                return 0;
        char line[64];
        int len = snprintf(line, sizeof line, "flowmon seq=%zu\n", e->n_sent);
        if (e->out_len + (size_t) len > sizeof e->out) {
                e->send_blocked++; /* the peer has not read 64 KiB beyond the socket buffers */
                return 0;
        }
        int r = grow((void **) &e->sent_at, &e->n_alloc, e->n_sent + 1, sizeof *e->sent_at);
        if (r < 0) {
                log_warning_errno(r, "--tcp-echo: cannot record line: %m");
                return 0;
        }
        uint64_t now = now_usec();
        memcpy(e->out + e->out_len, line, (size_t) len);
        e->out_len += (size_t) len;
        e->sent_at[e->n_sent++] = now;
        r = echo_flush(e);
        if (r < 0)
                echo_close_errno(e, -r, now);
        return 0;
}

static void echo_line(TcpEcho *e, const char *line, size_t len, bool overflow, uint64_t now) {
        uint64_t seq;
        int end = -1;
        bool ok = !overflow && sscanf(line, "flowmon seq=%" SCNu64 "%n", &seq, &end) == 1 && end >= 0 &&
                  (size_t) end == len;
        if (ok && seq == e->expect && seq < e->n_sent) {
                e->echoed++;
                e->expect++;
                if (now - e->sent_at[seq] > e->max_stall)
                        e->max_stall = now - e->sent_at[seq];
                return;
        }
        e->mismatched++;
        if (ok && seq > e->expect && seq < e->n_sent)
                e->expect = seq + 1;
}

static void echo_input(TcpEcho *e, const char *buf, size_t n, uint64_t now) {
        /* Longest time without any echoed byte while lines were outstanding. */
        if (e->expect < e->n_sent) {
                uint64_t since = e->sent_at[e->expect];
                if (e->last_rx > since)
                        since = e->last_rx;
                if (now - since > e->max_stall)
                        e->max_stall = now - since;
        }
        e->last_rx = now;
        e->bytes_in += n;
        for (size_t i = 0; i < n; i++) {
                if (buf[i] == '\n') {
                        e->in[e->in_len] = '\0';
                        echo_line(e, e->in, e->in_len, e->in_overflow, now);
                        e->in_len = 0;
                        e->in_overflow = false;
                } else if (e->in_len + 1 < sizeof e->in)
                        e->in[e->in_len++] = buf[i];
                else
                        e->in_overflow = true;
        }
}

static int on_echo_io(EventSource *s, int fd, uint32_t revents, void *userdata) {
        Ctx *c = userdata;
        TcpEcho *e = c->echo;
        (void) s;
        uint64_t now = now_usec();

        if (revents & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                for (;;) {
                        char buf[4096];
                        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
                        if (n > 0) {
                                echo_input(e, buf, (size_t) n, now);
                                continue;
                        }
                        if (n == 0) {
                                echo_close(e, "peer closed the connection", now);
                                break;
                        }
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN && errno != EWOULDBLOCK)
                                echo_close_errno(e, errno, now);
                        break;
                }
        }
        if (!e->closed && (revents & EPOLLOUT)) {
                int r = echo_flush(e);
                if (r < 0)
                        echo_close_errno(e, -r, now);
        }
        maybe_finish(c);
        return 0;
}

static int connect_timeout(int fd, const struct sockaddr *sa, socklen_t len, uint64_t timeout_usec) {
        if (connect(fd, sa, len) == 0)
                return 0;
        if (errno != EINPROGRESS)
                return negative_errno();
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };
        uint64_t deadline = now_usec() + timeout_usec;
        for (;;) {
                uint64_t now = now_usec();
                if (now >= deadline)
                        return -ETIMEDOUT;
                int n = poll(&pfd, 1, (int) ((deadline - now + 999) / 1000));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return negative_errno();
                if (n > 0)
                        break;
        }
        int err = 0;
        socklen_t el = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
                return negative_errno();
        return err ? -err : 0;
}

int echo_setup(Ctx *c, const char *arg, uint64_t interval_usec, uint64_t timeout_usec) {
        _cleanup_free_ TcpEcho *e = calloc(1, sizeof *e);
        if (!e)
                return log_error_errno(-ENOMEM, "--tcp-echo: %m");
        e->arg = arg;
        e->fd = -1;
        e->interval_usec = interval_usec;

        _cleanup_free_ char *copy = strdup(arg);
        if (!copy)
                return log_error_errno(-ENOMEM, "--tcp-echo: %m");
        char *host, *port;
        if (split_host_port(copy, false, &host, &port) < 0 || !host) {
                log_error("--tcp-echo: expected HOST:PORT or [IPv6]:PORT, got '%s'", arg);
                return -EINVAL;
        }
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
        int g = getaddrinfo(host, port, &hints, &ai);
        if (g != 0) {
                log_error("--tcp-echo: cannot resolve '%s': %s", arg, gai_strerror(g));
                return -EINVAL;
        }

        int r = -EHOSTUNREACH;
        _cleanup_close_ int fd = -1;
        uint64_t t0 = now_usec();
        for (struct addrinfo *a = ai; a; a = a->ai_next) {
                fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
                if (fd < 0) {
                        r = negative_errno();
                        continue;
                }
                r = connect_timeout(fd, a->ai_addr, a->ai_addrlen, timeout_usec);
                if (r >= 0) {
                        sockaddr_fmt(a->ai_addr, a->ai_addrlen, e->peer, sizeof e->peer);
                        break;
                }
                fd = safe_close_fd(fd);
        }
        freeaddrinfo(ai);
        if (r < 0)
                return log_error_errno(r, "--tcp-echo: cannot connect to '%s': %m", arg);
        e->connect_usec = now_usec() - t0;

        int one = 1;
        if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
                log_warning_errno(negative_errno(), "--tcp-echo: TCP_NODELAY: %m");

        r = event_add_io(c->loop, fd, EPOLLIN | EPOLLRDHUP, on_echo_io, c, &e->io);
        if (r < 0)
                return log_error_errno(r, "--tcp-echo: cannot watch the socket: %m");
        event_source_set_fd_owned(e->io, true);
        e->fd = TAKE_FD(fd);
        c->echo = TAKE_PTR(e);
        return 0;
}
