/* SPDX-License-Identifier: Apache-2.0 */
/* LaunchWarnings: what the VMI parse and the XML builder tell the user without failing. */
#include <stdarg.h>

#include "common/array.h"
#include "launcher/launcher.h"

int launch_warnings_add(LaunchWarnings *w, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = launch_warnings_addv(w, fmt, ap);
        va_end(ap);
        return r;
}

int launch_warnings_addv(LaunchWarnings *w, const char *fmt, va_list ap) {
        if (!w)
                return 0;
        char *s = NULL;
        int r = vasprintf(&s, fmt, ap);
        if (r < 0)
                return -ENOMEM;
        r = ARRAY_GROW(w->items, w->cap, w->n + 1);
        if (r < 0) {
                free(s);
                return r;
        }
        w->items[w->n++] = s;
        return 0;
}

void launch_warnings_clear(LaunchWarnings *w) {
        if (!w)
                return;
        for (size_t i = 0; i < w->n; i++)
                free(w->items[i]);
        free(w->items);
        w->items = NULL;
        w->n = w->cap = 0;
}
