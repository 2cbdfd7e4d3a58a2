/* SPDX-License-Identifier: Apache-2.0 */
/* Live migrations from VirtualMachineInstanceMigration objects (docs/controller.md, "Migrations"): what
 * KubeVirt's migration controller does. The VMI's status.migrationState is the contract with the nodes:
 *
 *   controller   VMIM created (admitted) -> Pending; the scheduler picks a target node (never the VMI's own)
 *                and creates the target launcher pod, labelled kubevirt.io/migrationJobUID -> Scheduled,
 *                migrationState {migrationUid, sourceNode, sourcePod, targetNode, targetPod, mode}
 *   target node  runs the pod as a migration target (launcher --incoming), writes targetNodeAddress and
 *                targetNodeDomainDetected once the target waits for the guest          -> TargetReady
 *   source node  starts the migration to it: startTimestamp                            -> Running
 *                ... completed or failed (+ failureReason), endTimestamp               -> Succeeded / Failed
 *   controller   Succeeded: the source pod is deleted; Failed: the target pod is deleted, the VM stays.
 *
 * A VMIM deleted while its migration runs is a cancellation: before the start the controller fails it at
 * once; after it, abortRequested asks the source node to cancel, and the target pod goes once it has. */
#pragma once

#include <jansson.h>

#include "common/kverr.h"
#include "controller/store.h"

#define CTL_LABEL_MIGRATION_JOB "kubevirt.io/migrationJobUID"

/* Admission of a new VMIM (refused with the reason, as KubeVirt's webhook does): its VMI exists and is
 * Running, is LiveMigratable, and has no other migration in flight. */
int ctl_migration_admit(CtlStore *s, const CtlResource *res, json_t *obj, KvErr *e) _wur_;

/* One pass over the VMIMs (a CtlReconciler): how many objects it changed, or < 0. */
int ctl_migrations(CtlStore *s);

/* Status writes shared with the scheduler: the VMIM's phase (phaseTransitionTimestamps kept, a message for
 * Failed), and the VMI's status.migrationState replaced by ms (a new reference is taken). */
int ctl_vmim_set_phase(CtlStore *s, const char *ns, const char *name, const char *phase, const char *message);
int ctl_vmi_set_migration_state(CtlStore *s, const char *ns, const char *name, json_t *ms);
