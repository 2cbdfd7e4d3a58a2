/* SPDX-License-Identifier: Apache-2.0 */
/* flowmon --ping: ICMP/ICMPv6 echo requests every --interval-ms; replies matched by a cookie and a
 * 64-bit sequence number in the payload. */
#include <arpa/inet.h>
#include <netinet/icmp6.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <sys/epoll.h>
#include <sys/random.h>

#include "tests/tools/flowmon/flowmon.h"

#ifndef ICMP_FILTER
#define ICMP_FILTER 1 /* linux/icmp.h, which clashes with netinet/ip_icmp.h */
struct icmp_filter {
        uint32_t data;
};
#endif

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

bool ping_in_flight(const Ctx *c) {
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

int on_ping_timer(EventSource *s, void *userdata) {
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

int ping_setup(Ctx *c, const char *arg, uint64_t interval_usec) {
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
