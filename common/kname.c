/* SPDX-License-Identifier: Apache-2.0 */
#include "common/kname.h"

#include <string.h>

static bool lower_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool label_n(const char *s, size_t n) {
        if (n == 0 || n > 63 || !lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!lower_alnum(s[i]) && s[i] != '-')
                        return false;
        return true;
}

bool kv_dns_label_valid(const char *s) {
        return s && label_n(s, strlen(s));
}

bool kv_dns_subdomain_valid(const char *s) {
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > 253)
                return false;
        for (const char *p = s;;) {
                const char *dot = strchr(p, '.');
                size_t len = dot ? (size_t) (dot - p) : strlen(p);
                if (!label_n(p, len))
                        return false;
                if (!dot)
                        return true;
                p = dot + 1;
        }
}
