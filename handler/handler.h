/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet's VM-side node work — what KubeVirt's virt-handler does on each node: the status of the
 * VirtualMachineInstances that run there (phase, node, interfaces with their addresses, conditions), computed
 * from what the node knows (the launcher's status, the pod's CNI result). This is real code, the same on a
 * cluster; only the part that runs pods (node/, the kubelet stand-in) is simulated on one machine.
 *
 * The functions here are pure: objects in, a new status object out; the node agent writes it through the
 * API (status subresource). */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "common/kverr.h"
#include "common/util.h"

/* The VMI's mark for virtctl pause: the controller's pause subresource sets it to "true", unpause removes it; the
 * node agent has the launcher pause or resume the domain, and the VMI's Paused condition follows. */
#define HDL_PAUSE_ANNOTATION "kvnet.io/pause-requested"

/* What the node knows about the launcher pod of one VMI. */
typedef struct HdlPodView {
        const char *node;     /* this node's name */
        const char *pod_name; /* the launcher pod */
        const char *pod_uid;
        json_t *cni_result;   /* the CNI result of the pod network (cniVersion 1.x), NULL before the ADD */
        json_t *network_status; /* the pod's k8s.v1.cni.cncf.io/network-status (parsed: an array), NULL when none */
        json_t *networks;       /* the pod's k8s.v1.cni.cncf.io/networks in the JSON form (an array), NULL when none */
        json_t *launcher;     /* the launcher's status object (launcher/runtime/status.c), NULL before it wrote one */
        bool launcher_exited; /* the launcher process is gone (its last status tells why, if it wrote one) */
        const char *failure;  /* why the pod could not run (sandbox, CNI, libvirtd), NULL if it could */
} HdlPodView;

/* The pod interface of the VMI's Multus network name (spec: the VMI's spec): net<k>, k counting the non-default
 * Multus networks in spec.networks order, as the controller names them in the launcher pod's networks
 * annotation; NULL when name is no such network. */
const char *hdl_multus_pod_ifname(json_t *spec, const char *name, char buf[static 16]);

/* The LiveMigratable condition of a VMI: "True", or "False" with KubeVirt's reason
 * (DisksNotLiveMigratable, InterfaceNotLiveMigratable) and a message naming the volume or interface. */
typedef struct HdlMigratable {
        bool migratable;
        const char *reason; /* static string, NULL when migratable */
        char message[256];
} HdlMigratable;

/* p (NULL: not known) adds what the pod says: a NIC on a third-party network whose addresses come from its IPAM
 * (network-status has kvnet's chained tap-<ifname> with addresses) without a persistent claim (the pod's networks
 * annotation gives that network no ipam-claim-reference or ips) is InterfaceNotLiveMigratable: the target's pod
 * would get other addresses than the guest's lease. */
int hdl_vmi_migratable(json_t *vmi, const HdlPodView *p, HdlMigratable *ret, KvErr *e) _wur_;

/* The phase the VMI has given this view: "Scheduled", "Running", "Succeeded", "Failed", or NULL when the view
 * does not decide it (a migration target waiting for its guest keeps the VMI's phase as it is). */
const char *hdl_vmi_phase(const HdlPodView *p);

/* The VMI's new status: a copy of vmi.status with phase (and phaseTransitionTimestamps), nodeName,
 * activePods, interfaces[], the conditions Ready, LiveMigratable and (launcher "paused") Paused, reason (on failure)
 * and
 * migrationMethod/migrationTransport updated from the view. *ret_changed says whether it differs from the
 * old status. */
int hdl_vmi_status(json_t *vmi, const HdlPodView *p, json_t **ret, bool *ret_changed, KvErr *e) _wur_;
