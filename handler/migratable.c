/* SPDX-License-Identifier: Apache-2.0 */
/* Whether a VMI can be live-migrated, as the LiveMigratable condition says it before anyone asks: kvnet moves
 * memory and the network, not storage, and not a device bound to one host.
 *   - an emptyDisk is a writable disk local to the node (no block migration): DisksNotLiveMigratable, as the
 *     launcher refuses it at migration time (launcher/migration.c);
 *   - an SR-IOV interface is a host's PCI function: InterfaceNotLiveMigratable (KubeVirt's reason too);
 *   - a NIC on a third-party network addressed by that network's IPAM without a persistent claim: the target pod
 *     would be given other addresses (InterfaceNotLiveMigratable). */
#include <errno.h>
#include <string.h>

#include "common/json-util.h"
#include "handler/handler.h"

static json_t *spec_of(json_t *vmi) {
        return json_object_get(vmi, "spec");
}

/* The pod's networks annotation entry of pod interface ifname asks for persistent addresses. */
static bool persistent(const HdlPodView *p, const char *ifname) {
        json_t *sel = json_array_find_str(p->networks, "interface", ifname);
        return json_object_get(sel, "ipam-claim-reference") || json_array_size(json_object_get(sel, "ips")) > 0;
}

/* A NIC on a third-party network whose IPAM addressed it without a persistent claim, or NULL. */
static const char *third_party_addressed(json_t *spec, const HdlPodView *p, char net[static 128]) {
        size_t i;
        json_t *ifc;
        if (!p || !p->network_status)
                return NULL;
        json_array_foreach(json_object_get(json_object_get(json_object_get(spec, "domain"), "devices"), "interfaces"), i,
                           ifc) {
                const char *name = json_string_value(json_object_get(ifc, "name"));
                char buf[16], tap[32];
                const char *pod_if = name ? hdl_multus_pod_ifname(spec, name, buf) : NULL;
                if (!pod_if || streq_ptr(json_string_value(json_object_get(ifc, "state")), "absent"))
                        continue;
                snprintf(tap, sizeof tap, "tap-%s", pod_if);
                json_t *st = json_array_find_str(p->network_status, "interface", tap);
                if (json_array_size(json_object_get(st, "ips")) == 0 || persistent(p, pod_if))
                        continue;
                snprintf(net, 128, "%s", json_string_value(json_object_get(st, "name")) ?: "?");
                return name;
        }
        return NULL;
}

int hdl_vmi_migratable(json_t *vmi, const HdlPodView *p, HdlMigratable *ret, KvErr *e) {
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
        char net[128];
        const char *third = third_party_addressed(spec, p, net);
        if (third) {
                ret->migratable = false;
                ret->reason = "InterfaceNotLiveMigratable";
                snprintf(ret->message, sizeof ret->message,
                         "cannot migrate VMI: interface '%.40s' has its addresses from network %.60s's IPAM without a "
                         "persistent claim (ipam-claim-reference)",
                         third, net);
        }
        return 0;
}
