/* SPDX-License-Identifier: Apache-2.0 */
/* Persistent IPs of VMs on secondary networks, as KubeVirt's ipam-extensions does it (docs/multus.md): a VM
 * network (spec.template.spec.networks[].multus) whose NetworkAttachmentDefinition's CNI config says
 * "allowPersistentIPs": true gets an IPAMClaim (k8s.cni.cncf.io/v1alpha1) named <vm>.<network>, owned by
 * the VM, with spec.network the config's "name" and spec.interface the launcher pod's interface for it
 * (net1, net2, ... as the scheduler numbers them); the launcher pod's networks annotation names the claim in
 * that network's "ipam-claim-reference", so kvnet-multus keeps the VM's addresses across its pods. A claim
 * whose VM is gone is deleted (the embedded API has no garbage collector for owner references). */
#pragma once

#include <jansson.h>

#include "common/kverr.h"
#include "controller/store.h"

#define CTL_IPAMCLAIM_NAME_MAX 253

/* The claim name of network `network` (spec.networks[].name) of VM vm: "<vm>.<network>"; -ENAMETOOLONG. */
int ctl_ipamclaim_name(const char *vm, const char *network, char buf[static CTL_IPAMCLAIM_NAME_MAX + 1]) _wur_;

/* What an IPAMClaim must hold at create, update and status writes (the CRD's validation): spec.network a
 * non-empty string, spec.interface a string when given, spec.ipRequests and status.ips at most two
 * addresses/prefixes (ipRequests: of different families). */
int ctl_ipamclaim_check(json_t *obj, const char *verb, KvErr *e) _wur_;

/* A NAD's CNI config (spec.config text): *ret_allow is its top-level "allowPersistentIPs" (false when absent),
 * *ret_name a copy of its "name" (required when persistent; NULL when absent). -EINVAL when the config is not
 * a JSON object or a key has the wrong type, e naming it. */
int ctl_nad_persistent_ips(const char *config, bool *ret_allow, char **ret_name, KvErr *e) _wur_;

/* One reconcile pass: the claims of every VM's persistent networks created when missing, the claims owned by
 * a VM that is gone deleted. How many objects it changed. */
int ctl_ipamclaims_reconcile(CtlStore *s);

/* The launcher pod of VMI ns/vmi_name: each entry of the networks annotation in ann whose network allows
 * persistent IPs gets "ipam-claim-reference" (the VMI must be a VM's; else nothing changes). */
int ctl_ipamclaims_annotate(CtlStore *s, const char *ns, const char *vmi_name, json_t *ann) _wur_;
