/* SPDX-License-Identifier: Apache-2.0 */
#include "common/base64.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_encode(const void *data, size_t len, char **ret) {
        const unsigned char *p = data;
        if (len > (SIZE_MAX - 1) / 4 * 3 - 2)
                return -ENOMEM;
        char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16 | (i + 1 < len ? (uint32_t) p[i + 1] << 8 : 0) |
                             (i + 2 < len ? p[i + 2] : 0);
                *o++ = alphabet[v >> 18 & 63];
                *o++ = alphabet[v >> 12 & 63];
                *o++ = i + 1 < len ? alphabet[v >> 6 & 63] : '=';
                *o++ = i + 2 < len ? alphabet[v & 63] : '=';
        }
        *o = '\0';
        *ret = out;
        return 0;
}

static int value_of(char ch) {
        if (ch >= 'A' && ch <= 'Z')
                return ch - 'A';
        if (ch >= 'a' && ch <= 'z')
                return ch - 'a' + 26;
        if (ch >= '0' && ch <= '9')
                return ch - '0' + 52;
        if (ch == '+')
                return 62;
        if (ch == '/')
                return 63;
        return -1;
}

int base64_decode(const char *s, char **ret, size_t *ret_len) {
        _cleanup_free_ char *out = malloc(strlen(s) / 4 * 3 + 3);
        if (!out)
                return -ENOMEM;
        size_t n = 0, chars = 0, pad = 0;
        uint32_t acc = 0;
        for (const char *p = s; *p; p++) {
                if (*p == '\n' || *p == '\r' || *p == ' ' || *p == '\t')
                        continue;
                chars++;
                if (*p == '=') {
                        if (++pad > 2)
                                return -EINVAL;
                        continue;
                }
                int v = value_of(*p);
                if (v < 0 || pad)
                        return -EINVAL;
                acc = acc << 6 | (uint32_t) v;
                if (chars % 4 == 0) {
                        out[n++] = (char) (acc >> 16);
                        out[n++] = (char) (acc >> 8 & 0xff);
                        out[n++] = (char) (acc & 0xff);
                        acc = 0;
                }
        }
        if (chars % 4 != 0)
                return -EINVAL;
        if (pad) { /* the last quantum: 4 - pad characters hold 3 - pad bytes */
                acc <<= 6 * pad;
                out[n++] = (char) (acc >> 16);
                if (pad == 1)
                        out[n++] = (char) (acc >> 8 & 0xff);
        }
        out[n] = '\0';
        *ret = TAKE_PTR(out);
        if (ret_len)
                *ret_len = n;
        return 0;
}
