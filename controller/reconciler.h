/* SPDX-License-Identifier: Apache-2.0 */
/* The controllers' loop on the event loop: after a change of the store, one pass over it — each controller
 * of the reconciler in turn (the VM controller, the scheduler, the migration controller: what one writes,
 * the next sees in the same pass) — deferred to the next turn of the loop. Passes are coalesced: a change
 * while a pass is scheduled or running is left to that pass or the next one, and a pass starts no sooner
 * than CTL_PASS_GAP_USEC after the previous one ended, or as long after it as that one took. So a stream of
 * API requests makes a pass every few milliseconds, not one (of every controller) per request, the passes
 * take at most about half of the time however large the store, and a change after a quiet spell gets its
 * pass at once. A pass's own writes schedule the next pass, which finds nothing left to do and writes
 * nothing. */
#pragma once

#include "common/event.h"
#include "controller/store.h"

/* the shortest time between the end of a pass and the start of the next one */
#define CTL_PASS_GAP_USEC (10 * 1000)
#define CTL_RECONCILE_MAX 8

typedef struct CtlReconciler CtlReconciler;

/* One pass over the store: how many objects it changed, or < 0 on an error of the store. */
typedef int (*ctl_reconcile_fn)(CtlStore *store);

/* fns: the controllers, 1..CTL_RECONCILE_MAX, run in that order in every pass. */
int ctl_reconciler_new(EventLoop *loop, CtlStore *store, const ctl_reconcile_fn *fns, size_t n_fns,
                       CtlReconciler **ret) _wur_;
CtlReconciler *ctl_reconciler_free(CtlReconciler *c);
