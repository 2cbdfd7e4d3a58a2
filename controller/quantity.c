/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/quantity.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

typedef unsigned __int128 u128;

#define QTY_MAX ((u128) INT64_MAX)

static const struct {
        const char *suffix;
        unsigned pow2;  /* value × 2^pow2 */
        int pow10;      /* value × 10^pow10 */
} suffixes[] = {
        { "Ki", 10, 0 }, { "Mi", 20, 0 }, { "Gi", 30, 0 }, { "Ti", 40, 0 }, { "Pi", 50, 0 }, { "Ei", 60, 0 },
        { "m", 0, -3 },  { "", 0, 0 },    { "k", 0, 3 },   { "M", 0, 6 },   { "G", 0, 9 },   { "T", 0, 12 },
        { "P", 0, 15 },  { "E", 0, 18 },
};

static int bad(const char *field, const char *s, const char *why, int r, KvErr *e) {
        return kverr_set(e, KV_ERR_INVALID_CONFIG, r, "'%s' must be a quantity such as 128Mi, 1Gi, 2 or 500m: %s, got '%.64s'",
                         field, why, s);
}

/* digits × 10^p10 × 2^p2, rounded up, or false when it exceeds QTY_MAX (digits < 10^19). */
static bool scale(u128 digits, int p10, unsigned p2, u128 *ret) {
        u128 v = digits, rem = 0;
        for (; p10 > 0; p10--) {
                if (v > QTY_MAX)
                        return false;
                v *= 10;
        }
        /* the binary factor before the divisions keeps "0.5Ki" exact (512) */
        for (; p2 > 0; p2--) {
                if (v >> 120) /* divisions may follow: only the 128 bits bound it here */
                        return false;
                v <<= 1;
        }
        for (; p10 < 0; p10++) {
                rem |= v % 10;
                v /= 10;
        }
        if (rem)
                v++;
        if (v > QTY_MAX)
                return false;
        *ret = v;
        return true;
}

int ctl_quantity_parse(const char *field, const char *s, bool milli, uint64_t *ret, KvErr *e) {
        if (!s || !*s)
                return bad(field, s ? s : "", "it is empty", -EINVAL, e);
        const char *p = s;
        if (*p == '+' || *p == '-') {
                if (*p == '-')
                        return bad(field, s, "it must not be negative", -EINVAL, e);
                p++;
        }
        u128 digits = 0;
        int p10 = 0;
        size_t nd = 0, sig = 0;
        bool dot = false;
        for (; (*p >= '0' && *p <= '9') || (*p == '.' && !dot); p++) {
                if (*p == '.') {
                        dot = true;
                        continue;
                }
                nd++;
                if (digits == 0 && *p == '0') {
                        if (dot)
                                p10--;
                        continue;
                }
                if (++sig > 19)
                        return bad(field, s, "more than 19 significant digits", -EINVAL, e);
                digits = digits * 10 + (u128) (*p - '0');
                if (dot)
                        p10--;
        }
        if (nd == 0)
                return bad(field, s, "no digits", -EINVAL, e);
        unsigned p2 = 0;
        bool found = false;
        if ((*p == 'e' || *p == 'E') && p[1] && strchr("+-0123456789", p[1])) {
                /* a decimal exponent: e<signed integer> ("E" alone is exa) */
                const char *q = p + 1;
                bool neg = *q == '-';
                if (*q == '+' || *q == '-')
                        q++;
                if (!*q || strspn(q, "0123456789") != strlen(q) || strlen(q) > 3)
                        return bad(field, s, "the exponent is not an integer of at most 3 digits", -EINVAL, e);
                int x = (int) strtol(q, NULL, 10);
                p10 += neg ? -x : x;
                found = true;
        } else
                for (size_t i = 0; i < ELEMENTSOF(suffixes); i++)
                        if (streq(p, suffixes[i].suffix)) {
                                p2 = suffixes[i].pow2;
                                p10 += suffixes[i].pow10;
                                found = true;
                                break;
                        }
        if (!found)
                return bad(field, s, "unknown suffix (Ki, Mi, Gi, Ti, Pi, Ei, m, k, M, G, T, P, E or eN)", -EINVAL, e);
        if (milli)
                p10 += 3;
        u128 v;
        if (!scale(digits, p10, p2, &v))
                return bad(field, s, "too large", -ERANGE, e);
        *ret = (uint64_t) v;
        return 0;
}

const char *ctl_quantity_format_bytes(uint64_t bytes, char buf[static 32]) {
        static const char *const units[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei" };
        size_t u = 0;
        while (bytes && bytes % 1024 == 0 && u + 1 < ELEMENTSOF(units)) {
                bytes /= 1024;
                u++;
        }
        snprintf(buf, 32, "%llu%s", (unsigned long long) bytes, units[u]);
        return buf;
}

const char *ctl_quantity_format_milli(uint64_t milli, char buf[static 32]) {
        if (milli % 1000 == 0)
                snprintf(buf, 32, "%llu", (unsigned long long) (milli / 1000));
        else
                snprintf(buf, 32, "%llum", (unsigned long long) milli);
        return buf;
}
