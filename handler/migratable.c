/* SPDX-License-Identifier: Apache-2.0 */
/* Whether a VMI can be live-migrated, as the LiveMigratable condition says it before anyone asks: kvnet moves
 * memory and the network, not storage, and not a device bound to one host.
 *   - an emptyDisk is a writable disk local to the node (no block migration): DisksNotLiveMigratable, as the
 *     launcher refuses it at migration time (launcher/migration.c);
 *   - an SR-IOV interface is a host's PCI function: InterfaceNotLiveMigratable (KubeVirt's reason too). */
#include <errno.h>
#include <string.h>

#include "handler/handler.h"

static json_t *spec_of(json_t *vmi) {
        return json_object_get(vmi, "spec");
}

int hdl_vmi_migratable(json_t *vmi, HdlMigratable *ret, KvErr *e) {
        json_t *spec = spec_of(vmi);
        if (!json_is_object(spec))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "VirtualMachineInstance: 'spec' must be an object");
        *ret = (HdlMigratable) { .migratable = true };
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(spec, "volumes"), i, v) {
                if (!json_object_get(v, "emptyDisk"))
                        continue;
                ret->migratable = false;
                ret->reason = "DisksNotLiveMigratable";
                snprintf(ret->message, sizeof ret->message,
                         "cannot migrate VMI: volume '%s' is an emptyDisk (local to its node; kvnet does not "
                         "migrate storage)",
                         json_string_value(json_object_get(v, "name")) ?: "?");
                return 0;
        }
        json_array_foreach(json_object_get(json_object_get(json_object_get(spec, "domain"), "devices"), "interfaces"),
                           i, v) {
                if (!json_object_get(v, "sriov"))
                        continue;
                ret->migratable = false;
                ret->reason = "InterfaceNotLiveMigratable";
                snprintf(ret->message, sizeof ret->message,
                         "cannot migrate VMI: interface '%s' is an SR-IOV function of its node's NIC",
                         json_string_value(json_object_get(v, "name")) ?: "?");
                return 0;
        }
        return 0;
}
