/* SPDX-License-Identifier: Apache-2.0 */
/* flowmon: what a client sees of a flow while a VM live-migrates (or a link flaps).
 *
 *   flowmon [--ping ADDR [--interval-ms N] [--gap-from-start]]
 *           [--tcp-echo HOST:PORT [--tcp-interval-ms N] [--connect-timeout-ms N]]
 *           [--tcp-sink [ADDR:]PORT]
 *           [--duration SEC] [--drain-ms N] [--ready-file PATH]
 *
 * Runs inside the client's network namespace until SIGTERM/SIGINT or --duration, then stops sending,
 * waits up to --drain-ms (default 1000) for replies/echoes still in flight, and prints one JSON object
 * on stdout (see docs/testing.md, "Measuring migrations: flowmon"). SIGUSR1 records a marker
 * ("marksMs"), e.g. the moment a test starts the migration. A second SIGTERM/SIGINT skips the drain.
 * Exit 0 after a measurement (whatever it measured), 1 on usage or setup errors (message on stderr,
 * naming the option and the value).
 *
 * Single-threaded: one epoll loop (common/event.c), timerfds for the send schedules, signalfds. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/icmp6.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "common/event.h"
#include "common/json-util.h"
#include "common/log.h"
#include "common/util.h"

#ifndef ICMP_FILTER
#define ICMP_FILTER 1 /* linux/icmp.h, which clashes with netinet/ip_icmp.h */
struct icmp_filter {
        uint32_t data;
};
#endif

#define USEC_PER_MSEC 1000ULL
#define USEC_PER_SEC 1000000ULL
#define MAX_LOST_TIMES 20
#define SINK_LINE_MAX 512
#define SINK_MAX_BOOT_IDS 64
#define SINK_MAX_CONN_IDS 4096
#define SINK_MAX_CONNS 100000
#define ECHO_OUT_MAX 65536

/* ---------------------------------------------------------------- small helpers */

static int grow(void **p, size_t *alloc, size_t need, size_t elsize) {
        if (need <= *alloc)
                return 0;
        size_t n = *alloc ? *alloc : 64;
        while (n < need)
                n *= 2;
        void *q = reallocarray(*p, n, elsize);
        if (!q)
                return -ENOMEM;
        *p = q;
        *alloc = n;
        return 0;
}

static int safe_close_fd(int fd) {
        if (fd >= 0)
                close(fd);
        return -1;
}

/* usec -> integer ms, rounded to nearest. */
static json_int_t ms(uint64_t usec) {
        return (json_int_t) ((usec + USEC_PER_MSEC / 2) / USEC_PER_MSEC);
}

static int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
        char *end;
        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno != 0 || *end != '\0' || v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

/* "host:port", "[v6]:port"; with allow_no_host also "port" alone (host = NULL). Modifies s. */
static int split_host_port(char *s, bool allow_no_host, char **ret_host, char **ret_port) {
        char *host = NULL, *port;
        if (s[0] == '[') {
                char *close = strchr(s, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                *close = '\0';
                host = s + 1;
                port = close + 2;
        } else {
                char *colon = strrchr(s, ':');
                if (!colon) {
                        if (!allow_no_host)
                                return -EINVAL;
                        port = s;
                } else {
                        if (strchr(s, ':') != colon) /* bare IPv6 address: needs brackets */
                                return -EINVAL;
                        *colon = '\0';
                        host = s;
                        port = colon + 1;
                }
        }
        if (host && !*host)
                host = NULL;
        uint64_t p;
        if (parse_uint(port, 0, 65535, &p) < 0)
                return -EINVAL;
        *ret_host = host;
        *ret_port = port;
        return 0;
}

static const char *sockaddr_fmt(const struct sockaddr *sa, socklen_t len, char *buf, size_t size) {
        char host[NI_MAXHOST], serv[NI_MAXSERV];
        if (getnameinfo(sa, len, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
                snprintf(buf, size, "?");
                return buf;
        }
        const char *h = host;
        if (strncmp(h, "::ffff:", 7) == 0 && strchr(h + 7, '.'))
                h += 7;
        if (strchr(h, ':'))
                snprintf(buf, size, "[%s]:%s", h, serv);
        else
                snprintf(buf, size, "%s:%s", h, serv);
        return buf;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* ---------------------------------------------------------------- state */

/* Payload of every echo request: identifies our own replies even among other pingers' (raw sockets see
 * every ICMP packet of the namespace) and carries the full 64-bit sequence number. */
typedef struct FlowPayload {
        uint64_t cookie;
        uint64_t seq;
        uint64_t sent_usec;
        uint8_t pad[32];
} FlowPayload;

typedef struct PingRec {
        uint64_t sent;
        uint64_t recv; /* 0 = no reply (yet) */
} PingRec;

typedef struct Ping {
        const char *arg;
        int fd; /* owned by io */
        int family;
        bool dgram; /* unprivileged ICMP socket: the kernel owns the id */
        struct sockaddr_storage dst;
        socklen_t dst_len;
        uint16_t ident;
        uint64_t cookie;
        uint64_t interval_usec;
        PingRec *recs;
        size_t n_sent, n_alloc;
        uint64_t received, duplicates, send_errors;
        int last_send_error;
        uint64_t first_rx, last_rx, max_gap;
        EventSource *io, *timer;
} Ping;

typedef struct TcpEcho {
        const char *arg;
        int fd; /* owned by io once registered */
        uint64_t interval_usec;
        uint64_t connect_usec;
        char peer[NI_MAXHOST + NI_MAXSERV + 4];
        uint64_t *sent_at; /* by seq */
        size_t n_sent, n_alloc;
        uint64_t expect; /* next seq expected back */
        uint64_t echoed, mismatched, send_blocked;
        uint64_t bytes_in, bytes_out;
        uint64_t last_rx;
        uint64_t max_stall;
        char out[ECHO_OUT_MAX];
        size_t out_len;
        bool want_out;
        char in[128];
        size_t in_len;
        bool in_overflow;
        bool closed;
        uint64_t closed_at;
        char error[160];
        EventSource *io, *timer;
} TcpEcho;

typedef struct Ctx Ctx;

typedef struct SinkConn {
        Ctx *ctx;
        EventSource *io;
        char peer[NI_MAXHOST + NI_MAXSERV + 4];
        uint64_t accepted, closed_at, last_line;
        bool closed;
        char error[160];
        uint64_t lines, bad_lines, bytes;
        bool have_seq;
        uint64_t first_seq, last_seq, seq_gaps, seq_backwards;
        uint64_t max_gap;
        bool have_conn_id;
        uint64_t conn_id;
        char boot_id[65];
        char in[SINK_LINE_MAX];
        size_t in_len;
        bool in_overflow;
} SinkConn;

typedef struct Sink {
        const char *arg;
        char listen[NI_MAXHOST + NI_MAXSERV + 4];
        EventSource *io;
        SinkConn **conns;
        size_t n_conns, n_alloc;
        uint64_t accepted, rejected;
        uint64_t lines;
        uint64_t last_line_any, max_silence;
        uint64_t conn_ids[SINK_MAX_CONN_IDS];
        size_t n_conn_ids;
        char boot_ids[SINK_MAX_BOOT_IDS][65];
        size_t n_boot_ids;
} Sink;

struct Ctx {
        EventLoop *loop;
        uint64_t start, stop, end;
        uint64_t drain_usec;
        bool stopping;
        bool gap_from_start;
        Ping *ping;
        TcpEcho *echo;
        Sink *sink;
        uint64_t *marks;
        size_t n_marks, marks_alloc;
        EventSource *stop_timer, *drain_timer;
};

static Ctx *ctx_free(Ctx *c) {
        if (!c)
                return NULL;
        /* The loop first: it closes the fds its sources own. */
        event_loop_free(c->loop);
        if (c->ping)
                free(c->ping->recs);
        free(c->ping);
        if (c->echo) {
                if (!c->echo->io && c->echo->fd >= 0)
                        close(c->echo->fd);
                free(c->echo->sent_at);
        }
        free(c->echo);
        if (c->sink) {
                for (size_t i = 0; i < c->sink->n_conns; i++)
                        free(c->sink->conns[i]);
                free(c->sink->conns);
        }
        free(c->sink);
        free(c->marks);
        free(c);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Ctx *, ctx_free);

static void finish(Ctx *c) {
        c->end = now_usec();
        event_loop_exit(c->loop, 0);
}

/* ---------------------------------------------------------------- ping */

static uint16_t inet_csum(const void *data, size_t len) {
        const uint8_t *p = data;
        uint32_t sum = 0;
        for (size_t i = 0; i + 1 < len; i += 2)
                sum += (uint32_t) (p[i] << 8 | p[i + 1]);
        if (len & 1)
                sum += (uint32_t) p[len - 1] << 8;
        while (sum >> 16)
                sum = (sum & 0xffff) + (sum >> 16);
        return htons((uint16_t) ~sum);
}

/* Are requests sent in the last drain period still unanswered? */
static bool ping_in_flight(const Ctx *c) {
        const Ping *p = c->ping;
        if (!p)
                return false;
        for (size_t i = p->n_sent; i > 0; i--) {
                const PingRec *r = &p->recs[i - 1];
                if (r->sent + c->drain_usec < c->stop)
                        break;
                if (r->recv == 0)
                        return true;
        }
        return false;
}

static bool echo_in_flight(const Ctx *c) {
        return c->echo && !c->echo->closed && c->echo->expect < c->echo->n_sent;
}

static void maybe_finish(Ctx *c) {
        if (c->stopping && !ping_in_flight(c) && !echo_in_flight(c))
                finish(c);
}

static int ping_send(Ping *p) {
        int r = grow((void **) &p->recs, &p->n_alloc, p->n_sent + 1, sizeof *p->recs);
        if (r < 0)
                return r;

        uint64_t now = now_usec(), seq = p->n_sent;
        FlowPayload pl = { .cookie = p->cookie, .seq = seq, .sent_usec = now };
        for (size_t i = 0; i < sizeof pl.pad; i++)
                pl.pad[i] = (uint8_t) (0x10 + i);

        uint8_t buf[8 + sizeof pl];
        if (p->family == AF_INET) {
                struct icmphdr h = { .type = ICMP_ECHO };
                h.un.echo.id = htons(p->ident);
                h.un.echo.sequence = htons((uint16_t) seq);
                memcpy(buf, &h, 8);
                memcpy(buf + 8, &pl, sizeof pl);
                uint16_t sum = inet_csum(buf, sizeof buf);
                memcpy(buf + offsetof(struct icmphdr, checksum), &sum, sizeof sum);
        } else {
                struct icmp6_hdr h = { .icmp6_type = ICMP6_ECHO_REQUEST }; /* kernel fills the checksum */
                h.icmp6_id = htons(p->ident);
                h.icmp6_seq = htons((uint16_t) seq);
                memcpy(buf, &h, 8);
                memcpy(buf + 8, &pl, sizeof pl);
        }

        p->recs[seq] = (PingRec) { .sent = now };
        p->n_sent++;
        /* A failed send (no route while the link is down) is a request that got no reply: lost. */
        if (sendto(p->fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *) &p->dst, p->dst_len) < 0) {
                p->send_errors++;
                p->last_send_error = errno;
        }
        return 0;
}

static int on_ping_timer(EventSource *s, void *userdata) {
        Ctx *c = userdata;
        (void) s;
        int r = ping_send(c->ping);
        if (r < 0)
                log_warning_errno(r, "--ping: cannot record request: %m");
        return 0;
}

static bool ping_from_target(const Ping *p, const struct sockaddr_storage *from) {
        if (from->ss_family != p->family)
                return false;
        if (p->family == AF_INET)
                return ((const struct sockaddr_in *) from)->sin_addr.s_addr ==
                       ((const struct sockaddr_in *) &p->dst)->sin_addr.s_addr;
        return memcmp(&((const struct sockaddr_in6 *) from)->sin6_addr,
                      &((const struct sockaddr_in6 *) &p->dst)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

static void ping_handle(Ctx *c, const uint8_t *buf, size_t len, const struct sockaddr_storage *from, uint64_t now) {
        Ping *p = c->ping;
        if (!ping_from_target(p, from))
                return;

        size_t off = 0;
        if (p->family == AF_INET && !p->dgram) { /* raw IPv4 sockets deliver the IP header */
                if (len < sizeof(struct iphdr))
                        return;
                off = (size_t) (buf[0] & 0x0f) * 4;
                if (off < sizeof(struct iphdr))
                        return;
        }
        if (len < off + 8 + sizeof(FlowPayload))
                return;

        uint16_t id, wseq;
        if (p->family == AF_INET) {
                struct icmphdr h;
                memcpy(&h, buf + off, sizeof h);
                if (h.type != ICMP_ECHOREPLY || h.code != 0)
                        return;
                id = ntohs(h.un.echo.id);
                wseq = ntohs(h.un.echo.sequence);
        } else {
                struct icmp6_hdr h;
                memcpy(&h, buf + off, sizeof h);
                if (h.icmp6_type != ICMP6_ECHO_REPLY || h.icmp6_code != 0)
                        return;
                id = ntohs(h.icmp6_id);
                wseq = ntohs(h.icmp6_seq);
        }
        if (!p->dgram && id != p->ident)
                return;

        FlowPayload pl;
        memcpy(&pl, buf + off + 8, sizeof pl);
        if (pl.cookie != p->cookie || pl.seq >= p->n_sent || (uint16_t) pl.seq != wseq ||
            pl.sent_usec != p->recs[pl.seq].sent)
                return; /* someone else's, or corrupted */

        PingRec *r = &p->recs[pl.seq];
        if (r->recv != 0) {
                p->duplicates++;
                return;
        }
        r->recv = now;
        p->received++;
        if (p->last_rx == 0)
                p->first_rx = now;
        else if (now - p->last_rx > p->max_gap)
                p->max_gap = now - p->last_rx;
        p->last_rx = now;
}

static int on_ping_io(EventSource *s, int fd, uint32_t revents, void *userdata) {
        Ctx *c = userdata;
        (void) s;
        (void) revents;
        for (;;) {
                uint8_t buf[2048];
                struct sockaddr_storage from = {};
                socklen_t fl = sizeof from;
                ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *) &from, &fl);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        break; /* EAGAIN, or a transient error reported once */
                }
                ping_handle(c, buf, (size_t) n, &from, now_usec());
        }
        maybe_finish(c);
        return 0;
}

static int ping_setup(Ctx *c, const char *arg, uint64_t interval_usec) {
        _cleanup_free_ Ping *p = calloc(1, sizeof *p);
        if (!p)
                return log_error_errno(-ENOMEM, "--ping: %m");
        p->arg = arg;
        p->fd = -1;
        p->interval_usec = interval_usec;

        /* Numeric only (a scope is allowed: fe80::1%eth0): no DNS lookups from a test namespace. */
        struct addrinfo hints = { .ai_socktype = SOCK_RAW, .ai_flags = AI_NUMERICHOST }, *ai = NULL;
        int g = getaddrinfo(arg, NULL, &hints, &ai);
        if (g != 0) {
                log_error("--ping: '%s' is not an IPv4 or IPv6 address: %s", arg, gai_strerror(g));
                return -EINVAL;
        }
        p->family = ai->ai_family;
        memcpy(&p->dst, ai->ai_addr, ai->ai_addrlen);
        p->dst_len = ai->ai_addrlen;
        freeaddrinfo(ai);
        if (p->family != AF_INET && p->family != AF_INET6) {
                log_error("--ping: '%s' is neither IPv4 nor IPv6", arg);
                return -EINVAL;
        }

        int proto = p->family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
        _cleanup_close_ int fd = socket(p->family, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
        if (fd < 0 && (errno == EPERM || errno == EACCES)) {
                fd = socket(p->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
                p->dgram = fd >= 0;
        }
        if (fd < 0)
                return log_error_errno(negative_errno(), "--ping: cannot open an ICMP socket for '%s': %m", arg);

        /* Only echo replies reach us (raw sockets otherwise see every ICMP packet of the namespace). */
        if (!p->dgram && p->family == AF_INET) {
                struct icmp_filter f = { .data = ~(1U << ICMP_ECHOREPLY) };
                if (setsockopt(fd, SOL_RAW, ICMP_FILTER, &f, sizeof f) < 0)
                        log_warning_errno(negative_errno(), "--ping: ICMP_FILTER: %m (continuing unfiltered)");
        } else if (p->family == AF_INET6) {
                struct icmp6_filter f;
                ICMP6_FILTER_SETBLOCKALL(&f);
                ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &f);
                if (setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof f) < 0)
                        log_warning_errno(negative_errno(), "--ping: ICMP6_FILTER: %m (continuing unfiltered)");
        }

        p->ident = (uint16_t) (getpid() & 0xffff);
        if (getrandom(&p->cookie, sizeof p->cookie, 0) != sizeof p->cookie)
                p->cookie = now_usec() ^ ((uint64_t) getpid() << 32);

        int r = event_add_io(c->loop, fd, EPOLLIN, on_ping_io, c, &p->io);
        if (r < 0)
                return log_error_errno(r, "--ping: cannot watch the ICMP socket: %m");
        event_source_set_fd_owned(p->io, true);
        p->fd = TAKE_FD(fd);
        c->ping = TAKE_PTR(p);
        return 0;
}

/* ---------------------------------------------------------------- TCP echo */

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

static int on_echo_timer(EventSource *s, void *userdata) {
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

static int echo_setup(Ctx *c, const char *arg, uint64_t interval_usec, uint64_t timeout_usec) {
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

/* ---------------------------------------------------------------- TCP sink */

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

static int sink_setup(Ctx *c, const char *arg) {
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

/* ---------------------------------------------------------------- stop, signals */

static int on_drain_timer(EventSource *s, void *userdata) {
        Ctx *c = userdata;
        (void) s;
        finish(c);
        return 0;
}

/* Stops sending; waits for what is still in flight (at most --drain-ms). */
static void stop(Ctx *c) {
        if (c->stopping)
                return;
        c->stopping = true;
        c->stop = now_usec();
        if (c->ping) {
                event_source_free(c->ping->timer);
                c->ping->timer = NULL;
        }
        if (c->echo) {
                event_source_free(c->echo->timer);
                c->echo->timer = NULL;
        }
        event_source_free(c->stop_timer);
        c->stop_timer = NULL;
        if (!ping_in_flight(c) && !echo_in_flight(c)) {
                finish(c);
                return;
        }
        int r = event_add_timer(c->loop, c->drain_usec, 0, on_drain_timer, c, &c->drain_timer);
        if (r < 0) {
                log_warning_errno(r, "cannot arm the drain timer: %m");
                finish(c);
        }
}

static int on_stop_timer(EventSource *s, void *userdata) {
        (void) s;
        stop(userdata);
        return 0;
}

static int on_signal(EventSource *s, int signo, void *userdata) {
        Ctx *c = userdata;
        (void) s;
        if (signo == SIGUSR1) {
                if (grow((void **) &c->marks, &c->marks_alloc, c->n_marks + 1, sizeof *c->marks) >= 0)
                        c->marks[c->n_marks++] = now_usec();
                return 0;
        }
        if (c->stopping)
                finish(c); /* second signal: no drain */
        else
                stop(c);
        return 0;
}

/* ---------------------------------------------------------------- report */

typedef struct Outage {
        uint64_t start, duration;
} Outage;

static int cmp_outage_duration(const void *a, const void *b) {
        const Outage *x = a, *y = b;
        if (x->duration != y->duration)
                return x->duration > y->duration ? -1 : 1;
        return x->start < y->start ? -1 : x->start > y->start;
}

static int cmp_outage_start(const void *a, const void *b) {
        const Outage *x = a, *y = b;
        return x->start < y->start ? -1 : x->start > y->start;
}

static json_t *report_ping(const Ctx *c) {
        const Ping *p = c->ping;
        char target[NI_MAXHOST];
        if (getnameinfo((const struct sockaddr *) &p->dst, p->dst_len, target, sizeof target, NULL, 0,
                        NI_NUMERICHOST) != 0)
                snprintf(target, sizeof target, "%s", p->arg);

        /* Outages: runs of unanswered requests, from the first lost send to the next answered send
         * (or the end of sending). */
        _cleanup_free_ Outage *out = NULL;
        _cleanup_free_ uint64_t *rtts = NULL;
        size_t n_out = 0, out_alloc = 0, n_rtt = 0;
        if (p->n_sent > 0)
                rtts = calloc(p->n_sent, sizeof *rtts);
        for (size_t i = 0; i < p->n_sent;) {
                if (p->recs[i].recv != 0) {
                        if (rtts)
                                rtts[n_rtt++] = p->recs[i].recv - p->recs[i].sent;
                        i++;
                        continue;
                }
                size_t j = i;
                while (j < p->n_sent && p->recs[j].recv == 0)
                        j++;
                uint64_t end = j < p->n_sent ? p->recs[j].sent : c->stop;
                if (grow((void **) &out, &out_alloc, n_out + 1, sizeof *out) >= 0)
                        out[n_out++] = (Outage) { .start = p->recs[i].sent, .duration = end - p->recs[i].sent };
                i = j;
        }
        size_t n_show = n_out;
        if (n_out > MAX_LOST_TIMES) {
                qsort(out, n_out, sizeof *out, cmp_outage_duration);
                n_show = MAX_LOST_TIMES;
        }
        if (n_show > 0)
                qsort(out, n_show, sizeof *out, cmp_outage_start);
        json_t *lost_times = json_array();
        for (size_t i = 0; i < n_show; i++)
                json_array_append_new(lost_times, json_pack("[II]", ms(out[i].start - c->start), ms(out[i].duration)));

        /* Fewer than two replies prove no continuity: the whole window counts as the gap. */
        uint64_t max_gap = p->max_gap;
        if (p->received < 2 && !c->gap_from_start)
                max_gap = c->stop - c->start;
        if (c->gap_from_start) {
                uint64_t first = p->received ? p->first_rx - c->start : c->stop - c->start;
                if (first > max_gap)
                        max_gap = first;
        }
        uint64_t tail = !p->received ? c->stop - c->start : c->stop > p->last_rx ? c->stop - p->last_rx : 0;

        json_t *rtt = json_null();
        if (n_rtt > 0) {
                qsort(rtts, n_rtt, sizeof *rtts, cmp_u64);
                double median = n_rtt % 2 ? (double) rtts[n_rtt / 2] : (rtts[n_rtt / 2 - 1] + rtts[n_rtt / 2]) / 2.0;
                rtt = json_pack("{s:f,s:f,s:f}", "min", rtts[0] / 1000.0, "median", median / 1000.0, "max",
                                rtts[n_rtt - 1] / 1000.0);
        }

        json_t *o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:I,s:o}", "target", target, "intervalMs",
                              (json_int_t) (p->interval_usec / USEC_PER_MSEC), "sent", (json_int_t) p->n_sent,
                              "received", (json_int_t) p->received, "lost", (json_int_t) (p->n_sent - p->received),
                              "duplicates", (json_int_t) p->duplicates, "sendErrors", (json_int_t) p->send_errors,
                              "maxGapMs", ms(max_gap), "tailGapMs", ms(tail), "lostTimesMs", lost_times, "outages",
                              (json_int_t) n_out, "rttMs", rtt);
        if (o && p->send_errors > 0)
                json_object_set_new(o, "lastSendError", json_string(strerror(p->last_send_error)));
        if (o && p->dgram)
                json_object_set_new(o, "socket", json_string("dgram"));
        return o;
}

static json_t *report_echo(const Ctx *c) {
        TcpEcho *e = c->echo;
        /* Lines still outstanding at the end stalled at least until then. */
        if (!e->closed && e->expect < e->n_sent && c->end - e->sent_at[e->expect] > e->max_stall)
                e->max_stall = c->end - e->sent_at[e->expect];
        json_t *o = json_pack("{s:s,s:s,s:b,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "target", e->arg, "peer",
                              e->peer, "connected", true, "closed", e->closed, "reconnects", (json_int_t) 0, "sent",
                              (json_int_t) e->n_sent, "echoed", (json_int_t) e->echoed, "mismatched",
                              (json_int_t) e->mismatched, "pending", (json_int_t) (e->n_sent - e->expect),
                              "sendBlocked", (json_int_t) e->send_blocked, "maxStallMs", ms(e->max_stall),
                              "connectMs", ms(e->connect_usec), "bytesIn", (json_int_t) e->bytes_in, "bytesOut",
                              (json_int_t) e->bytes_out);
        if (o && e->closed) {
                json_object_set_new(o, "error", json_string(e->error));
                json_object_set_new(o, "closedMs", json_integer(ms(e->closed_at - c->start)));
        }
        return o;
}

static json_t *report_sink(const Ctx *c) {
        const Sink *k = c->sink;
        json_t *conns = json_array();
        const SinkConn *longest = NULL;
        uint64_t longest_life = 0;
        for (size_t i = 0; i < k->n_conns; i++) {
                const SinkConn *sc = k->conns[i];
                uint64_t until = sc->closed ? sc->closed_at : c->stop;
                uint64_t life = until > sc->accepted ? until - sc->accepted : 0;
                if (!longest || life > longest_life) {
                        longest = sc;
                        longest_life = life;
                }
                json_t *o = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:b}", "peer", sc->peer, "acceptedMs",
                                      ms(sc->accepted > c->start ? sc->accepted - c->start : 0), "lines",
                                      (json_int_t) sc->lines, "badLines", (json_int_t) sc->bad_lines, "bytes",
                                      (json_int_t) sc->bytes, "seqGaps", (json_int_t) sc->seq_gaps, "seqBackwards",
                                      (json_int_t) sc->seq_backwards, "maxGapMs", ms(sc->max_gap), "closed",
                                      sc->closed);
                if (!o)
                        continue;
                json_object_set_new(o, "connId", sc->have_conn_id ? json_integer((json_int_t) sc->conn_id) : json_null());
                json_object_set_new(o, "bootId", sc->boot_id[0] ? json_string(sc->boot_id) : json_null());
                json_object_set_new(o, "firstSeq", sc->have_seq ? json_integer((json_int_t) sc->first_seq) : json_null());
                json_object_set_new(o, "lastSeq", sc->have_seq ? json_integer((json_int_t) sc->last_seq) : json_null());
                if (sc->closed) {
                        json_object_set_new(o, "closedMs", json_integer(ms(sc->closed_at - c->start)));
                        if (sc->error[0])
                                json_object_set_new(o, "error", json_string(sc->error));
                }
                json_array_append_new(conns, o);
        }

        /* No lines from the longest-lived connection: nothing shows continuity. */
        uint64_t sink_gap = c->stop - c->start;
        if (longest && longest->lines >= 2)
                sink_gap = longest->max_gap;
        else if (longest)
                sink_gap = longest_life;
        uint64_t silence = k->lines >= 2 ? k->max_silence : c->stop - c->start;

        _cleanup_free_ uint64_t *ids = NULL;
        json_t *conn_ids = json_array(), *boot_ids = json_array();
        if (k->n_conn_ids > 0 && (ids = calloc(k->n_conn_ids, sizeof *ids))) {
                memcpy(ids, k->conn_ids, k->n_conn_ids * sizeof *ids);
                qsort(ids, k->n_conn_ids, sizeof *ids, cmp_u64);
                for (size_t i = 0; i < k->n_conn_ids; i++)
                        json_array_append_new(conn_ids, json_integer((json_int_t) ids[i]));
        }
        for (size_t i = 0; i < k->n_boot_ids; i++)
                json_array_append_new(boot_ids, json_string(k->boot_ids[i]));

        return json_pack("{s:s,s:I,s:I,s:I,s:o,s:I,s:I,s:o,s:o}", "listen", k->listen, "connections",
                         (json_int_t) k->accepted, "rejected", (json_int_t) k->rejected, "lines",
                         (json_int_t) k->lines, "conns", conns, "sinkMaxGapMs", ms(sink_gap), "maxSilenceMs",
                         ms(silence), "sinkConnIds", conn_ids, "bootIds", boot_ids);
}

static int report(const Ctx *c) {
        _cleanup_json_ json_t *root = json_object();
        if (!root)
                return -ENOMEM;
        if (c->ping && json_object_set_new(root, "ping", report_ping(c)) < 0)
                return -ENOMEM;
        if (c->echo && json_object_set_new(root, "tcpEcho", report_echo(c)) < 0)
                return -ENOMEM;
        if (c->sink && json_object_set_new(root, "tcpSink", report_sink(c)) < 0)
                return -ENOMEM;
        json_t *marks = json_array();
        for (size_t i = 0; i < c->n_marks; i++)
                json_array_append_new(marks, json_integer(ms(c->marks[i] - c->start)));
        if (json_object_set_new(root, "durationMs", json_integer(ms(c->stop - c->start))) < 0 ||
            json_object_set_new(root, "marksMs", marks) < 0)
                return -ENOMEM;
        if (json_dumpf(root, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) < 0 ||
            fputc('\n', stdout) == EOF || fflush(stdout) == EOF)
                return -EIO;
        return 0;
}

/* ---------------------------------------------------------------- main */

static int write_ready_file(const char *path) {
        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, "%s.tmp.%d", path, (int) getpid()) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return negative_errno();
        char buf[32];
        int n = snprintf(buf, sizeof buf, "%d\n", (int) getpid());
        if (write(fd, buf, (size_t) n) != n || rename(tmp, path) < 0) {
                int r = negative_errno();
                unlink(tmp);
                return r;
        }
        return 0;
}

static int usage(void) {
        fprintf(stderr,
                "usage: flowmon [--ping ADDR [--interval-ms N] [--gap-from-start]]\n"
                "               [--tcp-echo HOST:PORT [--tcp-interval-ms N] [--connect-timeout-ms N]]\n"
                "               [--tcp-sink [ADDR:]PORT] [--duration SEC] [--drain-ms N] [--ready-file PATH]\n"
                "Runs until SIGTERM/SIGINT or --duration, prints one JSON object; SIGUSR1 records a mark.\n");
        return 1;
}

static int bad(const char *opt, const char *v, const char *why) {
        fprintf(stderr, "flowmon: invalid %s '%s'%s%s\n", opt, v, why ? ": " : "", why ? why : "");
        return 1;
}

int main(int argc, char **argv) {
        enum { O_PING = 256, O_INTERVAL, O_GAP_START, O_ECHO, O_ECHO_INTERVAL, O_CONNECT_TIMEOUT, O_SINK,
               O_DURATION, O_DRAIN, O_READY };
        static const struct option opts[] = {
                { "ping", required_argument, NULL, O_PING },
                { "interval-ms", required_argument, NULL, O_INTERVAL },
                { "gap-from-start", no_argument, NULL, O_GAP_START },
                { "tcp-echo", required_argument, NULL, O_ECHO },
                { "tcp-interval-ms", required_argument, NULL, O_ECHO_INTERVAL },
                { "connect-timeout-ms", required_argument, NULL, O_CONNECT_TIMEOUT },
                { "tcp-sink", required_argument, NULL, O_SINK },
                { "duration", required_argument, NULL, O_DURATION },
                { "drain-ms", required_argument, NULL, O_DRAIN },
                { "ready-file", required_argument, NULL, O_READY },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *ping = NULL, *echo = NULL, *sink = NULL, *ready = NULL;
        uint64_t interval = 10, echo_interval = 20, connect_timeout = 5000, drain = 1000, duration_usec = 0;
        bool gap_from_start = false;
        int o;

        log_set_ident("flowmon");
        while ((o = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
                switch (o) {
                case O_PING:
                        ping = optarg;
                        break;
                case O_INTERVAL:
                        if (parse_uint(optarg, 1, 1000, &interval) < 0)
                                return bad("--interval-ms", optarg, "must be 1..1000");
                        break;
                case O_GAP_START:
                        gap_from_start = true;
                        break;
                case O_ECHO:
                        echo = optarg;
                        break;
                case O_ECHO_INTERVAL:
                        if (parse_uint(optarg, 1, 10000, &echo_interval) < 0)
                                return bad("--tcp-interval-ms", optarg, "must be 1..10000");
                        break;
                case O_CONNECT_TIMEOUT:
                        if (parse_uint(optarg, 1, 600000, &connect_timeout) < 0)
                                return bad("--connect-timeout-ms", optarg, "must be 1..600000");
                        break;
                case O_SINK:
                        sink = optarg;
                        break;
                case O_DURATION: {
                        char *end;
                        errno = 0;
                        double d = strtod(optarg, &end);
                        if (errno != 0 || end == optarg || *end != '\0' || !(d > 0) || d > 7 * 86400)
                                return bad("--duration", optarg, "must be seconds > 0 (fractions allowed)");
                        duration_usec = (uint64_t) (d * USEC_PER_SEC);
                        if (duration_usec == 0)
                                duration_usec = 1;
                        break;
                }
                case O_DRAIN:
                        if (parse_uint(optarg, 0, 60000, &drain) < 0)
                                return bad("--drain-ms", optarg, "must be 0..60000");
                        break;
                case O_READY:
                        if (!*optarg)
                                return bad("--ready-file", optarg, "empty path");
                        ready = optarg;
                        break;
                case 'h':
                        usage();
                        return 0;
                default:
                        return usage();
                }
        }
        if (optind < argc)
                return bad("argument", argv[optind], "no positional arguments");
        if (!ping && !echo && !sink) {
                fprintf(stderr, "flowmon: at least one of --ping, --tcp-echo, --tcp-sink is required\n");
                return usage();
        }

        _cleanup_(ctx_freep) Ctx *c = calloc(1, sizeof *c);
        if (!c)
                return log_error_errno(-ENOMEM, "%m"), 1;
        c->drain_usec = drain * USEC_PER_MSEC;
        c->gap_from_start = gap_from_start;
        int r = event_loop_new(&c->loop);
        if (r < 0)
                return log_error_errno(r, "cannot create the event loop: %m"), 1;

        static const int sigs[] = { SIGTERM, SIGINT, SIGUSR1 };
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++) {
                r = event_add_signal(c->loop, sigs[i], on_signal, c, NULL);
                if (r < 0)
                        return log_error_errno(r, "cannot watch signal %s: %m", strsignal(sigs[i])), 1;
        }
        /* A peer closing the echo connection must not kill us; send() uses MSG_NOSIGNAL, but be sure. */
        signal(SIGPIPE, SIG_IGN);

        if (ping && ping_setup(c, ping, interval * USEC_PER_MSEC) < 0)
                return 1;
        if (sink && sink_setup(c, sink) < 0)
                return 1;
        if (echo && echo_setup(c, echo, echo_interval * USEC_PER_MSEC, connect_timeout * USEC_PER_MSEC) < 0)
                return 1;

        c->start = now_usec();
        if (c->ping) {
                r = event_add_timer(c->loop, 0, c->ping->interval_usec, on_ping_timer, c, &c->ping->timer);
                if (r < 0)
                        return log_error_errno(r, "--ping: cannot arm the send timer: %m"), 1;
        }
        if (c->echo) {
                r = event_add_timer(c->loop, 0, c->echo->interval_usec, on_echo_timer, c, &c->echo->timer);
                if (r < 0)
                        return log_error_errno(r, "--tcp-echo: cannot arm the send timer: %m"), 1;
        }
        if (duration_usec > 0) {
                r = event_add_timer(c->loop, duration_usec, 0, on_stop_timer, c, &c->stop_timer);
                if (r < 0)
                        return log_error_errno(r, "--duration: cannot arm the timer: %m"), 1;
        }
        if (ready) {
                r = write_ready_file(ready);
                if (r < 0)
                        return log_error_errno(r, "--ready-file: cannot write '%s': %m", ready), 1;
        }

        r = event_loop_run(c->loop);
        if (r < 0)
                return log_error_errno(r, "event loop failed: %m"), 1;
        if (!c->stopping) { /* defensive: the loop only exits through finish() */
                c->stop = now_usec();
                c->end = c->stop;
        }
        r = report(c);
        if (r < 0)
                return log_error_errno(r, "cannot write the report: %m"), 1;
        return 0;
}
