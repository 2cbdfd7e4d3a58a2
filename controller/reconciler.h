/* SPDX-License-Identifier: Apache-2.0 */
/* A controller loop on the event loop: after every change of the store, one pass of fn over it, deferred to
 * the next turn of the loop so that a burst of changes is one pass (the VM controller, the scheduler). A
 * pass's own writes schedule the next pass, which finds nothing left to do and writes nothing. */
#pragma once

#include "common/event.h"
#include "controller/store.h"

typedef struct CtlReconciler CtlReconciler;

/* One pass over the store: how many objects it changed, or < 0 on an error of the store. */
typedef int (*ctl_reconcile_fn)(CtlStore *store);

int ctl_reconciler_new(EventLoop *loop, CtlStore *store, ctl_reconcile_fn fn, CtlReconciler **ret) _wur_;
CtlReconciler *ctl_reconciler_free(CtlReconciler *c);
