/* SPDX-License-Identifier: Apache-2.0 */
/* The VMI's scalar formats: Kubernetes quantities, MAC and PCI addresses. */
#include "common/addr.h"
#include "launcher/launcher-priv.h"

int launch_parse_quantity(const char *s, uint64_t *ret) {
        if (!s || !*s)
                return -EINVAL;
        const char *p = s;
        if (*p == '+')
                p++;
        unsigned __int128 mant = 0, scale = 1; /* value = mant / scale * mult */
        bool digits = false, dot = false;
        for (; *p; p++) {
                if (*p >= '0' && *p <= '9') {
                        digits = true;
                        if (mant > (((unsigned __int128) 1) << 100))
                                return -ERANGE;
                        mant = mant * 10 + (unsigned) (*p - '0');
                        if (dot) {
                                if (scale > (((unsigned __int128) 1) << 100))
                                        return -ERANGE;
                                scale *= 10;
                        }
                } else if (*p == '.' && !dot)
                        dot = true;
                else
                        break;
        }
        if (!digits)
                return -EINVAL;
        unsigned __int128 mult = 1;
        static const struct {
                const char *suffix;
                unsigned base, exp;
        } suffixes[] = {
                { "Ki", 1024, 1 }, { "Mi", 1024, 2 }, { "Gi", 1024, 3 }, { "Ti", 1024, 4 }, { "Pi", 1024, 5 },
                { "Ei", 1024, 6 }, { "k", 1000, 1 },  { "M", 1000, 2 },  { "G", 1000, 3 },  { "T", 1000, 4 },
                { "P", 1000, 5 },  { "E", 1000, 6 },  { "", 1, 0 },
        };
        if (*p == 'e' || *p == 'E') {
                /* decimal exponent "1e9"; a lone "E" is the exa suffix */
                const char *q = p + 1;
                if (*q == '+')
                        q++;
                if (*q >= '0' && *q <= '9') {
                        unsigned x = 0;
                        for (; *q >= '0' && *q <= '9'; q++) {
                                x = x * 10 + (unsigned) (*q - '0');
                                if (x > 30)
                                        return -ERANGE;
                        }
                        if (*q)
                                return -EINVAL;
                        for (unsigned i = 0; i < x; i++)
                                mult *= 10;
                        p = q;
                }
        }
        if (mult == 1) {
                bool found = false;
                for (size_t i = 0; i < ELEMENTSOF(suffixes); i++)
                        if (streq(p, suffixes[i].suffix)) {
                                for (unsigned k = 0; k < suffixes[i].exp; k++)
                                        mult *= suffixes[i].base;
                                found = true;
                                break;
                        }
                if (!found)
                        return -EINVAL;
        }
        unsigned __int128 total = mant * mult;
        if (mult != 0 && total / mult != mant)
                return -ERANGE;
        if (total % scale != 0)
                return -EINVAL; /* fractional bytes */
        total /= scale;
        if (total > UINT64_MAX)
                return -ERANGE;
        *ret = (uint64_t) total;
        return 0;
}

int launch_hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int launch_parse_mac(const char *s, uint8_t ret[6]) {
        if (!s || strlen(s) != 17)
                return -EINVAL;
        char sep = s[2];
        if (sep != ':' && sep != '-')
                return -EINVAL;
        uint8_t m[6];
        for (int i = 0; i < 6; i++) {
                int h = launch_hexval(s[i * 3]), l = launch_hexval(s[i * 3 + 1]);
                if (h < 0 || l < 0)
                        return -EINVAL;
                if (i < 5 && s[i * 3 + 2] != sep)
                        return -EINVAL;
                m[i] = (uint8_t) (h << 4 | l);
        }
        if (m[0] & 1)
                return -EINVAL; /* multicast */
        memcpy(ret, m, 6);
        return 0;
}

int launch_parse_pci(const char *s, unsigned *ret_domain, unsigned *ret_bus, unsigned *ret_slot,
                     unsigned *ret_function) {
        return kv_pci_parse(s, ret_domain, ret_bus, ret_slot, ret_function);
}

