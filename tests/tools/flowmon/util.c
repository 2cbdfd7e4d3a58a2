/* SPDX-License-Identifier: Apache-2.0 */
/* flowmon: small helpers (arrays, numbers, addresses). */
#include <errno.h>

#include "tests/tools/flowmon/flowmon.h"

int grow(void **p, size_t *alloc, size_t need, size_t elsize) {
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

int safe_close_fd(int fd) {
        if (fd >= 0)
                close(fd);
        return -1;
}

int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *ret) {
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

int split_host_port(char *s, bool allow_no_host, char **ret_host, char **ret_port) {
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

const char *sockaddr_fmt(const struct sockaddr *sa, socklen_t len, char *buf, size_t size) {
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

int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}
