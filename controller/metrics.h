/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet-controller's Prometheus figures (docs/metrics.md), with KubeVirt's metric names where KubeVirt reports the
 * same thing (kubevirt_vmi_info, kubevirt_vmi_phase_count, kubevirt_vm_info, kubevirt_vmi_migrations_in_*_phase,
 * kubevirt_vmi_migration_succeeded/failed, kubevirt_vmi_migration_phase_transition_time_from_creation_seconds), so
 * that dashboards made for KubeVirt keep working, and kvnet_controller_* for the rest.
 *
 * The gauges are taken from the store at the end of every reconcile pass (the pass's thread in cluster mode, which
 * alone may read the store then) and kept as text; counters and histograms are counted where things happen. All of
 * it under one mutex: a scrape renders on the HTTP thread without touching the store or the loop. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "controller/store.h"
#include "kube/event.h"

typedef struct CtlMetrics CtlMetrics;

/* mode: "embedded" or "cluster"; names: the reconcile functions' names, in the reconciler's order. */
int ctl_metrics_new(const char *mode, const char *const *names, size_t n, CtlMetrics **ret) _wur_;
CtlMetrics *ctl_metrics_free(CtlMetrics *m);

/* One reconcile function's run: its index, result (< 0: an error) and time. NULL m: nothing. */
void ctl_metrics_reconcile(CtlMetrics *m, size_t i, int result, uint64_t usec);
/* A VMIM reached phase, seconds after its creation (< 0: unknown, not observed). */
void ctl_metrics_vmim_phase(CtlMetrics *m, const char *phase, double since_creation);
/* A migration ended: succeeded or not, with QEMU's downtime and the guest's pause the nodes measured (seconds;
 * < 0: not reported). */
void ctl_metrics_migration_ended(CtlMetrics *m, bool succeeded, double downtime, double pause);
/* A request the embedded API answered: its HTTP method (GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS; anything
 * else counts as "other": a client cannot make new label values) and status code (0: the connection was dropped). */
void ctl_metrics_api_request(CtlMetrics *m, const char *method, unsigned code);
/* The gauges from the store (at the end of a pass). */
void ctl_metrics_snapshot(CtlMetrics *m, CtlStore *s);
/* The exposition text (format 0.0.4), malloc'd; ev: the Event recorder's figures. NULL: out of memory. */
char *ctl_metrics_render(CtlMetrics *m, KubeEventStats ev);
