/* SPDX-License-Identifier: Apache-2.0 */
/* The VirtualMachine controller (docs/controller.md): a VirtualMachine that should run gets its
 * VirtualMachineInstance (from spec.template, owned by the VM); one that should not loses it; a VMI whose
 * owning VM is gone is deleted; the VM's status (created, ready, printableStatus) follows its VMI. Runs on
 * the controller's event loop after every change of the store (deferred, so a burst is one pass). */
#pragma once

#include "common/event.h"
#include "controller/store.h"

typedef struct CtlVmController CtlVmController;

int ctl_vm_controller_new(EventLoop *loop, CtlStore *store, CtlVmController **ret) _wur_;
CtlVmController *ctl_vm_controller_free(CtlVmController *c);
/* One reconcile pass over every VM and VMI (also what the deferred run does). Returns how many objects it
 * changed, or < 0 on an error of the store. */
int ctl_vm_reconcile(CtlStore *store);
