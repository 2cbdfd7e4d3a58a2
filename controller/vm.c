/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/vm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/json-util.h"
#include "common/kstatus.h"
#include "common/log.h"
#include "common/util.h"
#include "controller/events.h"
#include "controller/migration.h"

static const CtlResource *res_vm(void) {
        return ctl_resource_find("kubevirt.io", "v1", "virtualmachines");
}

static const CtlResource *res_vmi(void) {
        return ctl_resource_find("kubevirt.io", "v1", "virtualmachineinstances");
}

/* -1: leave it as it is (runStrategy Manual), 0: stopped, 1: running */
static int want_running(json_t *vm, bool have_vmi) {
        json_t *spec = json_object_get(vm, "spec");
        json_t *run = json_object_get(spec, "running");
        if (json_is_boolean(run))
                return json_is_true(run);
        const char *rs = json_string_value(json_object_get(spec, "runStrategy"));
        if (!rs || streq(rs, "Halted"))
                return 0;
        if (streq(rs, "Always") || streq(rs, "RerunOnFailure"))
                return 1;
        if (streq(rs, "Once"))
                return have_vmi ? -1 : 1;
        return -1; /* Manual */
}

static json_t *spec_interfaces(json_t *spec) {
        return json_object_get(json_object_get(json_object_get(spec, "domain"), "devices"), "interfaces");
}

static json_t *named(json_t *arr, const char *name) {
        return json_array_find_str(arr, "name", name);
}

static bool absent(json_t *ifc) {
        return streq_ptr(json_string_value(json_object_get(ifc, "state")), "absent");
}

/* A new VMI's spec from the template's: without the interfaces the template marks absent (unplugged) and their
 * networks. A copy when there are any, else the template's spec itself (a new reference). */
static json_t *spec_without_absent(json_t *tspec) {
        json_t *ifs = spec_interfaces(tspec);
        size_t i;
        json_t *f;
        bool any = false;
        json_array_foreach(ifs, i, f) any = any || absent(f);
        if (!any)
                return json_incref(tspec);
        _cleanup_json_ json_t *spec = json_deep_copy(tspec);
        json_t *sifs = spec_interfaces(spec), *snets = json_object_get(spec, "networks");
        for (i = json_array_size(sifs); i-- > 0;) {
                json_t *ifc = json_array_get(sifs, i);
                if (!absent(ifc))
                        continue;
                const char *name = json_string_value(json_object_get(ifc, "name"));
                for (size_t j = json_array_size(snets); j-- > 0;)
                        if (name && streq_ptr(json_string_value(json_object_get(json_array_get(snets, j), "name")), name))
                                json_array_remove(snets, j);
                json_array_remove(sifs, i);
        }
        return TAKE_PTR(spec);
}

/* The VMI of VM vm, from its template, owned by it. */
static json_t *vmi_from_template(json_t *vm) {
        json_t *t = json_object_get(json_object_get(vm, "spec"), "template");
        json_t *tmd = json_object_get(t, "metadata");
        json_t *labels = json_deep_copy(json_object_get(tmd, "labels"));
        if (!json_is_object(labels)) {
                json_decref(labels);
                labels = json_object();
        }
        json_object_set_new(labels, "kubevirt.io/vm", json_string(ctl_md(vm, "name")));
        json_t *tspec = json_object_get(t, "spec");
        json_t *spec = tspec ? spec_without_absent(tspec) : json_object();
        if (!spec) {
                json_decref(labels);
                return NULL;
        }
        json_t *o = json_pack("{s:s,s:s,s:{s:s,s:s,s:o,s:[{s:s,s:s,s:s,s:s,s:b,s:b}]},s:o}", "apiVersion",
                              "kubevirt.io/v1", "kind", "VirtualMachineInstance", "metadata", "name",
                              ctl_md(vm, "name"), "namespace", ctl_md(vm, "namespace"), "labels", labels,
                              "ownerReferences", "apiVersion", "kubevirt.io/v1", "kind", "VirtualMachine", "name",
                              ctl_md(vm, "name"), "uid", ctl_md(vm, "uid"), "controller", true, "blockOwnerDeletion",
                              true, "spec", spec);
        json_t *ann = json_object_get(tmd, "annotations");
        if (o && json_is_object(ann))
                json_object_set(json_object_get(o, "metadata"), "annotations", ann);
        return o;
}

int ctl_vm_create_vmi(CtlStore *s, json_t *vm, json_t **ret, KvErr *e) {
        _cleanup_json_ json_t *n = vmi_from_template(vm);
        if (!n)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        return ctl_store_create(s, res_vmi(), ctl_md(vm, "namespace"), n, ret, e);
}

/* NIC hot-plug and unplug, as KubeVirt's LiveUpdate of interfaces: a Multus network with a bridge or sriov
 * interface added to a running VM's template joins its VMI's spec; an interface the template marks absent is marked
 * so in the VMI (the node side detaches it; it stays listed, absent, until the VM restarts, keeping the others' pod
 * interface names). Other template changes wait for a restart, as they do in KubeVirt without LiveUpdate. 1 when
 * the VMI changed. */
static int sync_interfaces(CtlStore *s, json_t *vm, json_t *vmi) {
        json_t *tspec = json_object_get(json_object_get(json_object_get(vm, "spec"), "template"), "spec");
        json_t *vspec = json_object_get(vmi, "spec");
        json_t *tifs = spec_interfaces(tspec), *tnets = json_object_get(tspec, "networks");
        _cleanup_json_ json_t *ifs = json_deep_copy(spec_interfaces(vspec)),
                              *nets = json_deep_copy(json_object_get(vspec, "networks"));
        const char *ns = ctl_md(vm, "namespace"), *name = ctl_md(vm, "name");
        if (!json_is_array(ifs) || !json_is_array(nets))
                return 0;
        bool changed = false;
        size_t i;
        json_t *t;
        json_array_foreach(tifs, i, t) {
                const char *ifname = json_string_value(json_object_get(t, "name"));
                json_t *have = named(ifs, ifname);
                if (absent(t)) {
                        if (have && !absent(have)) {
                                if (json_object_set_new(have, "state", json_string("absent")) < 0)
                                        return -ENOMEM;
                                log_info("VirtualMachine %s/%s: unplugging interface %s", ns, name, ifname);
                                changed = true;
                        }
                        continue;
                }
                if (have)
                        continue;
                json_t *net = named(tnets, ifname), *mu = json_object_get(net, "multus");
                if (!mu || json_is_true(json_object_get(mu, "default")) ||
                    !(json_object_get(t, "bridge") || json_object_get(t, "sriov")) || named(nets, ifname))
                        continue; /* only a bridge or SR-IOV NIC on a secondary network is hot-plugged */
                if (json_array_append(ifs, t) < 0 || json_array_append(nets, net) < 0)
                        return -ENOMEM;
                log_info("VirtualMachine %s/%s: hot-plugging interface %s (network %s)", ns, name, ifname,
                         json_string_value(json_object_get(mu, "networkName")));
                changed = true;
        }
        if (!changed)
                return 0;
        _cleanup_json_ json_t *patch = json_pack("{s:{s:O,s:{s:{s:O}}}}", "spec", "networks", nets, "domain", "devices",
                                                 "interfaces", ifs),
                              *out = NULL;
        KvErr e = {};
        int r = patch ? ctl_store_patch(s, res_vmi(), ns, name, patch, &out, &e) : -ENOMEM;
        if (r < 0) {
                log_warning("VirtualMachine %s/%s: cannot update its VMI's interfaces: %s", ns, name,
                            e.msg[0] ? e.msg : strerror(-r));
                return r;
        }
        return 1;
}

static int reconcile_vm(CtlStore *s, json_t *vm) {
        const char *ns = ctl_md(vm, "namespace"), *name = ctl_md(vm, "name");
        json_t *vmi = NULL;
        KvErr e = {};
        int changed = 0, r;
        bool have = (vmi = ctl_store_ref(s, res_vmi(), ns, name));
        bool ours = have && streq_ptr(ctl_controller_uid(vmi, "VirtualMachine", NULL), ctl_md(vm, "uid"));
        int want = want_running(vm, have);
        if (want == 1 && !have) {
                _cleanup_json_ json_t *out = NULL;
                r = ctl_vm_create_vmi(s, vm, &out, &e);
                if (r < 0) {
                        log_warning("VirtualMachine %s/%s: cannot create its VMI: %s", ns, name, e.msg);
                        ctl_event(s, res_vm(), vm, "Warning", "FailedCreate",
                                  "Error creating virtual machine instance: %s", e.msg);
                } else {
                        log_info("VirtualMachine %s/%s: created its VirtualMachineInstance", ns, name);
                        ctl_event(s, res_vm(), vm, "Normal", "SuccessfulCreate",
                                  "Started the virtual machine by creating the new virtual machine instance %s", name);
                        changed++;
                        vmi = TAKE_PTR(out);
                        have = ours = true;
                }
        } else if (want == 0 && have && ours) {
                json_t *out = NULL;
                if (ctl_store_delete(s, res_vmi(), ns, name, &out, &e) == 0) {
                        log_info("VirtualMachine %s/%s: stopped (VMI deleted)", ns, name);
                        ctl_event(s, res_vm(), vm, "Normal", "SuccessfulDelete",
                                  "Stopped the virtual machine by deleting the virtual machine instance %s", name);
                        json_decref(out);
                        json_decref(vmi);
                        vmi = NULL;
                        have = ours = false;
                        changed++;
                }
        }
        const char *phase = have ? json_string_value(json_object_get(json_object_get(vmi, "status"), "phase")) : NULL;
        bool running = streq_ptr(phase, "Running");
        if (running && ours && want != 0 && !ctl_vmi_migrating(vmi) && sync_interfaces(s, vm, vmi) > 0)
                changed++;
        /* virtctl pause: the node writes the VMI's Paused condition */
        bool paused = have && kstatus_condition(json_object_get(vmi, "status"), "Paused");
        const char *printable = !have       ? (want == 1 ? "Starting" : "Stopped")
                                : !ours     ? "Stopped" /* a VMI of that name that is not this VM's */
                                : want == 0 ? "Stopping"
                                : running   ? (ctl_vmi_migrating(vmi) ? "Migrating" : paused ? "Paused" : "Running")
                                : streq_ptr(phase, "Failed") ? "CrashLoopBackOff"
                                : streq_ptr(phase, "Succeeded") ? "Stopped"
                                                              : "Starting";
        _cleanup_json_ json_t *st = json_pack("{s:b,s:b,s:s}", "created", have && ours, "ready", have && ours && running,
                                              "printableStatus", printable);
        uint64_t rv = ctl_store_rv(s);
        r = st ? ctl_store_set_status(s, res_vm(), ns, name, st, &e) : -ENOMEM;
        if (r < 0)
                log_warning("VirtualMachine %s/%s: cannot update its status: %s", ns, name, e.msg);
        else if (ctl_store_rv(s) != rv)
                changed++;
        json_decref(vmi);
        return changed;
}

int ctl_vm_reconcile(CtlStore *s) {
        int changed = 0;
        _cleanup_json_ json_t *vms = ctl_store_items(s, res_vm());
        size_t i;
        json_t *vm;
        if (!vms)
                return -ENOMEM;
        json_array_foreach(vms, i, vm) changed += reconcile_vm(s, vm);
        /* Per VMI: one owned by a VM that is gone (or was re-created: another uid) goes too; the others wait
         * for a node as Pending (the scheduler, controller/scheduler.c, places them). */
        _cleanup_json_ json_t *vmis = ctl_store_items(s, res_vmi());
        json_t *vmi;
        if (!vmis)
                return -ENOMEM;
        json_array_foreach(vmis, i, vmi) {
                const char *uid = ctl_controller_uid(vmi, "VirtualMachine", NULL), *ns = ctl_md(vmi, "namespace"),
                           *name = ctl_md(vmi, "name");
                KvErr e = {};
                _cleanup_json_ json_t *owner = uid ? ctl_store_ref(s, res_vm(), ns, name) : NULL;
                bool orphan = uid && !streq_ptr(ctl_md(owner, "uid"), uid);
                if (orphan) {
                        json_t *out = NULL;
                        if (ctl_store_delete(s, res_vmi(), ns, name, &out, &e) == 0) {
                                log_info("VirtualMachineInstance %s/%s: its VirtualMachine is gone; deleted", ns, name);
                                ctl_event(s, res_vmi(), vmi, "Normal", "SuccessfulDelete",
                                          "Deleted: its VirtualMachine is gone");
                                json_decref(out);
                                changed++;
                        }
                } else if (!json_object_get(json_object_get(vmi, "status"), "phase")) {
                        _cleanup_json_ json_t *st = json_pack("{s:s}", "phase", "Pending");
                        if (st && ctl_store_set_status(s, res_vmi(), ns, name, st, &e) == 0)
                                changed++;
                }
        }
        return changed;
}
