/* SPDX-License-Identifier: Apache-2.0 */
/* Growable byte buffers and base64 (the *-data fields of a kubeconfig). */
#include "kube/kube-priv.h"

int kube_buf_append(KubeBuf *b, const void *data, size_t len) {
        if (b->len + len + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 4096;
                while (cap < b->len + len + 1)
                        cap *= 2;
                char *d = realloc(b->data, cap);
                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->cap = cap;
        }
        memcpy(b->data + b->len, data, len);
        b->len += len;
        b->data[b->len] = '\0';
        return 0;
}

void kube_buf_clear(KubeBuf *b) {
        free(b->data);
        *b = (KubeBuf){};
}

static int b64_value(char ch) {
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

int kube_base64_decode(const char *s, char **ret, size_t *ret_len) {
        _cleanup_free_ char *out = malloc(strlen(s) / 4 * 3 + 4);
        if (!out)
                return -ENOMEM;
        size_t n = 0, pad = 0;
        uint32_t acc = 0;
        unsigned bits = 0;
        for (const char *p = s; *p; p++) {
                if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
                        continue;
                if (*p == '=') {
                        pad++;
                        continue;
                }
                int v = b64_value(*p);
                if (v < 0 || pad)
                        return -EINVAL;
                acc = (acc << 6) | (uint32_t) v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[n++] = (char) ((acc >> bits) & 0xff);
                }
        }
        if (pad > 2 || bits >= 6)
                return -EINVAL;
        out[n] = '\0';
        *ret = TAKE_PTR(out);
        if (ret_len)
                *ret_len = n;
        return 0;
}
