/* SPDX-License-Identifier: Apache-2.0 */
/* VLAN access networks on a trunk bridge, without bridge VLAN filtering (docs/vlan.md): the endpoints of VLAN v
 * sit on a bridge of their own, "<trunk>.<v>", joined to the trunk by a veth pair (the VLAN link) whose trunk end
 * tags and untags in tc BPF (ebpf/vlan.bpf.c). Untagged endpoints on a trunk that carries VLANs get a guard that
 * drops tagged frames both ways. Everything here acts on the caller's network namespace. */
#pragma once

#include <stdint.h>

#include "common/kverr.h"

#define VLAN_ID_MAX 4094

/* "<trunk>.<vid>" into buf (16 bytes): -ENAMETOOLONG (KV_ERR_INVALID_CONFIG naming 'bridge') if it does not fit. */
int vlan_bridge_name(const char *trunk, uint16_t vid, char buf[16], KvErr *e) _wur_;
/* Names of the VLAN link's ends: on the trunk "kvl<8 hex>", on the VLAN's bridge "kvm<8 hex>". */
void vlan_link_names(const char *trunk, uint16_t vid, char trunk_end[16], char vlan_end[16]);

/* Makes sure the VLAN link between the existing bridges trunk and vlan_bridge exists, is up and carries the
 * tagging programs for vid (loaded afresh and swapped in atomically when the link exists already). */
int vlan_link_ensure(const char *trunk, const char *vlan_bridge, uint16_t vid, uint32_t mtu, KvErr *e) _wur_;
/* Attaches the untagged-only guard to both directions of ifname (idempotent). */
int vlan_guard_port(const char *ifname, KvErr *e) _wur_;
/* 1 if ifname carries kvnet's guard on ingress, 0 if not, < 0 on error (tests, CHECK). */
int vlan_guard_present(const char *ifname) _wur_;
