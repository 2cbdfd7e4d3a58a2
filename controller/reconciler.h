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
/* a pass at least this long is logged (with its time) */
#define CTL_PASS_SLOW_USEC (1000 * 1000)

typedef struct CtlReconciler CtlReconciler;

/* One pass over the store: how many objects it changed, or < 0 on an error of the store. */
typedef int (*ctl_reconcile_fn)(CtlStore *store);

/* fns: the controllers, 1..CTL_RECONCILE_MAX, run in that order in every pass. */
int ctl_reconciler_new(EventLoop *loop, CtlStore *store, const ctl_reconcile_fn *fns, size_t n_fns,
                       CtlReconciler **ret) _wur_;
/* Called on the loop after each pass (threaded or not). */
typedef void (*ctl_pass_done_fn)(void *userdata);
/* As ctl_reconciler_new(), and with threaded each pass runs on a thread of its own while the loop goes on (cluster
 * mode: a pass's writes are blocking requests to the API server, and the loop must keep the informers and the
 * leader lease going meanwhile). Nothing else may touch the store while ctl_reconciler_in_pass(): the caller keeps
 * what it would change and applies it from after_pass, which runs on the loop once the pass has ended. The
 * store's listeners are then called from the pass's thread too (this reconciler's own only marks a next pass). */
int ctl_reconciler_new_threaded(EventLoop *loop, CtlStore *store, const ctl_reconcile_fn *fns, size_t n_fns,
                                ctl_pass_done_fn after_pass, void *userdata, bool threaded, CtlReconciler **ret) _wur_;
/* A pass runs (threaded: its thread may be using the store). */
bool ctl_reconciler_in_pass(const CtlReconciler *c);
/* A threaded pass still running is waited for (make its writes fail first, or it finishes them). */
CtlReconciler *ctl_reconciler_free(CtlReconciler *c);
