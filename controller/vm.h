/* SPDX-License-Identifier: Apache-2.0 */
/* The VirtualMachine controller (docs/controller.md): a VirtualMachine that should run gets its
 * VirtualMachineInstance (from spec.template, owned by the VM); one that should not loses it; a VMI whose
 * owning VM is gone is deleted; the VM's status (created, ready, printableStatus) follows its VMI. Runs on
 * the controller's event loop after changes of the store, in the coalesced passes of controller/reconciler.h. */
#pragma once

#include "controller/store.h"

/* One reconcile pass over every VM and VMI (run by a CtlReconciler, controller/reconciler.h). Returns how many
 * objects it changed, or < 0 on an error of the store. */
int ctl_vm_reconcile(CtlStore *store);
