/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/reconciler.h"

#include <errno.h>
#include <stdlib.h>

struct CtlReconciler {
        EventLoop *loop;
        CtlStore *store;
        ctl_reconcile_fn fn;
        EventSource *pending; /* the deferred pass, when one is scheduled */
};

static int on_pass(EventSource *src, void *userdata) {
        CtlReconciler *c = userdata;
        (void) src;
        c->pending = NULL;
        (void) c->fn(c->store);
        return -ECANCELED;
}

static void on_change(void *userdata) {
        CtlReconciler *c = userdata;
        if (c->pending)
                return;
        if (event_add_timer(c->loop, 1, 0, on_pass, c, &c->pending) < 0)
                c->pending = NULL;
}

int ctl_reconciler_new(EventLoop *loop, CtlStore *store, ctl_reconcile_fn fn, CtlReconciler **ret) {
        CtlReconciler *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        *c = (CtlReconciler){ .loop = loop, .store = store, .fn = fn };
        int r = ctl_store_add_notify(store, on_change, c);
        if (r < 0) {
                free(c);
                return r;
        }
        on_change(c); /* a first pass over what was stored before the start */
        *ret = c;
        return 0;
}

CtlReconciler *ctl_reconciler_free(CtlReconciler *c) {
        if (!c)
                return NULL;
        ctl_store_remove_notify(c->store, on_change, c);
        if (c->pending)
                event_source_free(c->pending);
        free(c);
        return NULL;
}
