/* SPDX-License-Identifier: Apache-2.0 */
/* Live migrations from VirtualMachineInstanceMigration objects (docs/controller.md, "Migrations"): what
 * KubeVirt's migration controller does. The VMI's status.migrationState is the contract with the nodes; the
 * VMIM's status.phase follows it (KubeVirt's phases, each recorded in status.phaseTransitionTimestamps):
 *
 *   who          writes                                                       VMIM phase
 *   admission    the VMI exists, is Running, no other migration of it is in   Pending
 *                flight, addedNodeSelector does not name its own node (else
 *                422); a VMI whose LiveMigratable condition is False: Failed
 *   controller   picks a target node (the scheduler's choice, never the       Scheduling (no node fits:
 *                VMI's own node), creates the target launcher pod labelled     stays, condition
 *                kubevirt.io/migrationJobUID=<vmim uid> and sets the VMI's     PodScheduled=False)
 *                migrationState {migrationUid, sourceNode, sourcePod,         Scheduled
 *                targetNode, targetPod, mode: PreCopy}, migrationMethod
 *   target node  the target pod's status.phase Running                        PreparingTarget
 *   target node  migrationState.targetNodeAddress, targetNodeDomainDetected   TargetReady
 *                (true once the incoming domain waits for the guest)
 *   source node  migrationState.startTimestamp (the migration started)        Running
 *   source node  completed: true, endTimestamp                                Succeeded: the controller
 *                                                                              moves the VMI (nodeName, label
 *                                                                              kubevirt.io/nodeName,
 *                                                                              activePods) to the target and
 *                                                                              deletes the source pod
 *   either node  failed: true, failureReason, endTimestamp                    Failed: the controller deletes
 *                                                                              the target pod; the VMI stays
 *
 * A target pod that fails or disappears before completion fails the migration (the controller writes
 * failed and failureReason). A VMIM deleted in flight is a cancellation: before startTimestamp the
 * controller deletes the target pod and writes failed: true, abortStatus: Succeeded; after it, it writes
 * abortRequested: true, abortStatus: Aborting, and the source node cancels and writes failed: true,
 * abortStatus: Succeeded (or, too late, completed: true, abortStatus: Failed: the VMI then moves). A VMI
 * deleted mid-migration fails its VMIM. Nothing is kept in memory: every pass recomputes from the store. */
#pragma once

#include <jansson.h>

#include "common/kverr.h"
#include "controller/store.h"

#define CTL_LABEL_MIGRATION_JOB "kubevirt.io/migrationJobUID"

/* Admission of a new VMIM (a ctl_admit_fn; other kinds pass): refused with -EINVAL and the reason, as
 * KubeVirt's webhook does, when its VMI is missing or not Running, has another migration in flight, or
 * spec.addedNodeSelector's kubernetes.io/hostname is the VMI's own node. */
int ctl_migration_admit(CtlStore *s, const CtlResource *res, const char *ns, json_t *obj, KvErr *e) _wur_;

/* One pass over the VMIMs and the VMIs' migrationState (a CtlReconciler): how many objects it changed, or
 * < 0 on an error of the store. */
int ctl_migrations(CtlStore *s);

/* A VMI's migration in flight: status.migrationState set, neither completed nor failed. */
bool ctl_vmi_migrating(json_t *vmi);
