/* SPDX-License-Identifier: Apache-2.0 */
#include "common/kverr.h"

#include <stdarg.h>
#include <stdio.h>

static void kverr_vset(KvErr *e, int code, int ret, bool with_errno, const char *fmt, va_list ap) {
        if (!e || e->code != 0)
                return;
        e->code = code;
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        if (with_errno && ret < 0)
                snprintf(e->details, sizeof e->details, "%s", strerror(-ret));
        else
                e->details[0] = '\0';
}

int kverr_set(KvErr *e, int code, int ret, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        kverr_vset(e, code, ret, false, fmt, ap);
        va_end(ap);
        return ret;
}

int kverr_set_errno(KvErr *e, int code, int ret, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        kverr_vset(e, code, ret, true, fmt, ap);
        va_end(ap);
        return ret;
}

int kverr_setv(KvErr *e, int code, int ret, const char *fmt, va_list ap) {
        kverr_vset(e, code, ret, false, fmt, ap);
        return ret;
}

void kverr_clear(KvErr *e) {
        if (!e)
                return;
        e->code = 0;
        e->msg[0] = '\0';
        e->details[0] = '\0';
}
