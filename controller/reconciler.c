/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/reconciler.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct CtlReconciler {
        EventLoop *loop;
        CtlStore *store;
        ctl_reconcile_fn fns[CTL_RECONCILE_MAX];
        size_t n_fns;
        EventSource *pending; /* the deferred pass, when one is scheduled */
        bool in_pass;         /* a pass runs: a change now (its own writes too) asks for the next one */
        bool again;           /* ... and one did */
        uint64_t next_usec;   /* CLOCK_MONOTONIC: no pass starts before this (0: any time) */
};

static int on_pass(EventSource *src, void *userdata);

static void schedule(CtlReconciler *c) {
        uint64_t now = now_usec();
        /* a first change after a quiet spell is taken at once (well, on the next turn of the loop) */
        uint64_t delay = c->next_usec > now ? c->next_usec - now : 1;
        if (event_add_timer(c->loop, delay, 0, on_pass, c, &c->pending) < 0)
                c->pending = NULL;
}

static int on_pass(EventSource *src, void *userdata) {
        CtlReconciler *c = userdata;
        (void) src;
        c->pending = NULL;
        c->in_pass = true;
        c->again = false;
        uint64_t start = now_usec();
        for (size_t i = 0; i < c->n_fns; i++)
                (void) c->fns[i](c->store);
        uint64_t end = now_usec(), took = end - start;
        c->in_pass = false;
        /* the changes made meanwhile (this pass's own writes) and from now on (the API's requests) wait for the
         * next pass, at least CTL_PASS_GAP_USEC away, or as long as this one took: under a stream of changes
         * the passes leave the API at least half of the time, and each one takes in all that came before it */
        c->next_usec = end + (took > CTL_PASS_GAP_USEC ? took : CTL_PASS_GAP_USEC);
        if (c->again)
                schedule(c);
        return -ECANCELED;
}

static void on_change(void *userdata) {
        CtlReconciler *c = userdata;
        if (c->in_pass)
                c->again = true;
        else if (!c->pending) /* else that pass will see this change too */
                schedule(c);
}

int ctl_reconciler_new(EventLoop *loop, CtlStore *store, const ctl_reconcile_fn *fns, size_t n_fns,
                       CtlReconciler **ret) {
        if (n_fns == 0 || n_fns > CTL_RECONCILE_MAX)
                return -EINVAL;
        CtlReconciler *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        *c = (CtlReconciler){ .loop = loop, .store = store, .n_fns = n_fns };
        memcpy(c->fns, fns, n_fns * sizeof *fns);
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
