/* SPDX-License-Identifier: Apache-2.0 */
/* Growable byte buffers. */
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
