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
/* Creates VM vm's VirtualMachineInstance from its template, owned by it (what a pass does for a VM that should
 * run; also a start of a runStrategy Manual VM, controller/subresource.c); the stored VMI in *ret. */
int ctl_vm_create_vmi(CtlStore *store, json_t *vm, json_t **ret, KvErr *e) _wur_;
