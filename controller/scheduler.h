/* SPDX-License-Identifier: Apache-2.0 */
/* The scheduler (docs/controller.md): a VirtualMachineInstance waiting for a node (phase Pending, or none
 * yet) gets one — the least-loaded node that is Ready, matches its nodeSelector (and
 * kubevirt.io/schedulable=true) and has the CPU and memory it requests left over after the VMIs already
 * placed there — and its launcher Pod (virt-launcher-<vmi>-xxxxx, owned by the VMI, bound to that node).
 * The VMI goes Scheduling, then Scheduled with status.nodeName and the label kubevirt.io/nodeName. A VMI no
 * node fits stays Pending with the condition PodScheduled=False, reason Unschedulable, and Kubernetes'
 * message ("0/3 nodes are available: 1 Insufficient memory, 2 node(s) didn't match Pod's node
 * affinity/selector."), recomputed on every pass. A launcher pod whose VMI is gone is deleted; a VMI whose
 * pod exists (a restart between the two writes) adopts it instead of getting a second one. */
#pragma once

#include "controller/store.h"

/* One pass (run by a CtlReconciler, controller/reconciler.h): how many objects it changed, or < 0 on an
 * error of the store. */
int ctl_schedule(CtlStore *store);
