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

#include <jansson.h>

#include "controller/store.h"

/* One pass (run by a CtlReconciler, controller/reconciler.h): how many objects it changed, or < 0 on an
 * error of the store. */
int ctl_schedule(CtlStore *store);

/* A live migration's target (controller/migration.c): the node the scheduler would pick for the VMI vmi (a
 * stored object) with added_selector's labels (an object of strings, or NULL) added to its nodeSelector,
 * never the VMI's own node, counting what the VMIs and the other migrations' target pods hold. There it
 * creates the target launcher pod: the VMI's launcher pod plus the label kubevirt.io/migrationJobUID:
 * <migration_uid> and, as KubeVirt's, a pod anti-affinity to the VMI's pods per kubernetes.io/hostname.
 * Returns 1 with the stored pod in *ret_pod, 0 when no node fits (Kubernetes' "0/N nodes are available: ..."
 * in msg), < 0 on an error of the store. */
int ctl_schedule_migration_target(CtlStore *s, json_t *vmi, json_t *added_selector, const char *migration_uid,
                                  json_t **ret_pod, char *msg, size_t size);

/* The label kubevirt.io/nodeName: node on the VMI ns/name: 1 when that changed it, 0 when it was so, < 0. */
int ctl_vmi_label_node(CtlStore *s, const char *ns, const char *name, const char *node);
