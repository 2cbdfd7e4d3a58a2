/* SPDX-License-Identifier: Apache-2.0 */
#include "common/addr.h"

#include <arpa/inet.h>
#include <stdio.h>

size_t kv_addr_len(int family) {
        return family == AF_INET6 ? 16 : 4;
}

int kv_addr_parse(const char *s, KvAddr *ret) {
        KvAddr a = {};
        if (!s)
                return -EINVAL;
        if (strchr(s, ':')) {
                if (inet_pton(AF_INET6, s, &a.in6) != 1)
                        return -EINVAL;
                a.family = AF_INET6;
        } else {
                if (inet_pton(AF_INET, s, &a.in) != 1)
                        return -EINVAL;
                a.family = AF_INET;
        }
        *ret = a;
        return 0;
}

int kv_prefix_parse(const char *s, KvPrefix *ret) {
        char buf[KV_ADDR_STRLEN];
        if (!s || strlen(s) >= sizeof buf)
                return -EINVAL;
        strcpy(buf, s);
        char *slash = strchr(buf, '/');
        if (!slash)
                return -EINVAL;
        *slash = '\0';
        const char *lens = slash + 1;
        if (!*lens || strlen(lens) > 3)
                return -EINVAL;
        for (const char *c = lens; *c; c++)
                if (*c < '0' || *c > '9')
                        return -EINVAL;
        KvPrefix p = {};
        int r = kv_addr_parse(buf, &p.addr);
        if (r < 0)
                return r;
        int len = atoi(lens);
        if (len < 0 || len > (int) kv_addr_len(p.addr.family) * 8)
                return -EINVAL;
        p.prefixlen = (uint8_t) len;
        *ret = p;
        return 0;
}

const char *kv_addr_fmt(const KvAddr *a, char buf[static KV_ADDR_STRLEN]) {
        if (!a || !a->family || !inet_ntop(a->family, a->bytes, buf, KV_ADDR_STRLEN))
                snprintf(buf, KV_ADDR_STRLEN, "<none>");
        return buf;
}

const char *kv_prefix_fmt(const KvPrefix *p, char buf[static KV_ADDR_STRLEN]) {
        char ab[KV_ADDR_STRLEN];
        kv_addr_fmt(&p->addr, ab);
        size_t n = strnlen(ab, 46);
        memcpy(buf, ab, n);
        snprintf(buf + n, KV_ADDR_STRLEN - n, "/%u", p->prefixlen);
        return buf;
}

bool kv_addr_equal(const KvAddr *a, const KvAddr *b) {
        return a->family == b->family && memcmp(a->bytes, b->bytes, kv_addr_len(a->family)) == 0;
}

int kv_addr_cmp(const KvAddr *a, const KvAddr *b) {
        if (a->family != b->family)
                return a->family < b->family ? -1 : 1;
        return memcmp(a->bytes, b->bytes, kv_addr_len(a->family));
}

KvPrefix kv_prefix_network(const KvPrefix *p) {
        KvPrefix n = *p;
        size_t len = kv_addr_len(p->addr.family);
        for (size_t i = 0; i < len; i++) {
                int bits = (int) p->prefixlen - (int) i * 8;
                uint8_t mask = bits >= 8 ? 0xff : bits <= 0 ? 0 : (uint8_t) (0xff << (8 - bits));
                n.addr.bytes[i] &= mask;
        }
        return n;
}

bool kv_prefix_contains(const KvPrefix *p, const KvAddr *a) {
        if (p->addr.family != a->family)
                return false;
        KvPrefix q = { .addr = *a, .prefixlen = p->prefixlen };
        KvPrefix n1 = kv_prefix_network(p), n2 = kv_prefix_network(&q);
        return kv_addr_equal(&n1.addr, &n2.addr);
}

bool kv_addr_next(KvAddr *a) {
        size_t len = kv_addr_len(a->family);
        for (size_t i = len; i-- > 0;) {
                if (++a->bytes[i] != 0)
                        return true;
        }
        return false;
}

bool kv_addr_is_zero(const KvAddr *a) {
        size_t len = kv_addr_len(a->family);
        for (size_t i = 0; i < len; i++)
                if (a->bytes[i])
                        return false;
        return true;
}

static bool hex_field(const char *s, size_t n, unsigned *ret) {
        unsigned v = 0;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                int h = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
                if (h < 0)
                        return false;
                v = v << 4 | (unsigned) h;
        }
        *ret = v;
        return true;
}

int kv_pci_parse(const char *s, unsigned *ret_domain, unsigned *ret_bus, unsigned *ret_slot, unsigned *ret_function) {
        unsigned d, b, sl, f;
        if (!s || strlen(s) != 12 || s[4] != ':' || s[7] != ':' || s[10] != '.')
                return -EINVAL;
        if (!hex_field(s, 4, &d) || !hex_field(s + 5, 2, &b) || !hex_field(s + 8, 2, &sl) || !hex_field(s + 11, 1, &f))
                return -EINVAL;
        if (sl > 0x1f || f > 7)
                return -ERANGE;
        if (ret_domain)
                *ret_domain = d;
        if (ret_bus)
                *ret_bus = b;
        if (ret_slot)
                *ret_slot = sl;
        if (ret_function)
                *ret_function = f;
        return 0;
}

int kv_mac_parse(const char *s, uint8_t ret[6]) {
        unsigned v[6];
        char tail;
        if (!s || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
                return -EINVAL;
        if (strlen(s) != 17)
                return -EINVAL;
        for (int i = 0; i < 6; i++)
                ret[i] = (uint8_t) v[i];
        return 0;
}

const char *kv_mac_fmt(const uint8_t mac[6], char buf[static KV_MAC_STRLEN]) {
        snprintf(buf, KV_MAC_STRLEN, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4],
                 mac[5]);
        return buf;
}

bool kv_mac_is_zero(const uint8_t mac[6]) {
        static const uint8_t zero[6];
        return memcmp(mac, zero, 6) == 0;
}

void kv_vm_nic_mac(const char *ns, const char *name, const char *iface, uint8_t ret[6]) {
        char key[512];
        int n = snprintf(key, sizeof key, "%s/%s/%s", ns, name, iface);
        uint64_t h = kv_hash64(key, n < 0 ? 0 : (size_t) n >= sizeof key ? sizeof key - 1 : (size_t) n);
        ret[0] = 0x02; /* locally administered, unicast */
        for (int i = 1; i < 6; i++)
                ret[i] = (uint8_t) (h >> (8 * (i - 1)));
}
