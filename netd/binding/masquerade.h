/* SPDX-License-Identifier: Apache-2.0 */
/* The masquerade binding for VM attachments (KubeVirt's semantics, see docs/masquerade.md).
 *
 *   sandbox netns                                                       node netns
 * ┌───────────────────────────────────────────────────────────────┐
 * │ guest 10.0.2.2/24 (fd10:0:2::2/120)                           │
 * │   │ virtio                                                    │
 * │ tap (persistent, vnet_hdr) 10.0.2.1/24, fd10:0:2::1/120       │
 * │   │ routed (forwarding on), NAT (nftables: table kvnet-masq):  │
 * │   │   prerouting: iifname SBX daddr VM [ports] dnat to guest  │
 * │   │   postrouting: oifname SBX saddr guest snat to VM         │
 * │ SBX (veth end) VM's stable IPs, default routes via node gw ───┼── HOST (veth) ── bridge
 * └───────────────────────────────────────────────────────────────┘
 *
 * All functions return >= 0 on success, -errno on failure and fill *e with a message naming the
 * field or object (invalid config: KV_ERR_INVALID_CONFIG; bad netns: KV_ERR_INVALID_ENV; kernel:
 * KV_ERR_INTERNAL). The calling thread is back in its own netns on every path. */
#pragma once

#include <netinet/in.h>

#include "common/addr.h"
#include "common/kverr.h"
#include "common/util.h"
#include "netd/link/link.h"
#include "netd/nat/nat.h"

#define MASQ_MAX_PORTS NAT_SANDBOX_MAX_PORTS

typedef NatSandboxPort MasqPort; /* port, proto (IPPROTO_TCP / IPPROTO_UDP) */

typedef struct MasqConfig {
        const char *tap, *sbx_ifname, *host_ifname, *bridge;
        uint32_t mtu; /* 0 = kernel default */
        /* the VM's stable IPs (at most one per family) with the node subnet's prefix length, and the
         * node gateways (gateways[i] belongs to vm_addrs[i]; family 0 = no default route) */
        KvPrefix vm_addrs[2];
        KvAddr gateways[2];
        size_t n_addrs;
        /* the guest's side; masq_config_defaults(): 10.0.2.2/24, 10.0.2.1, fd10:0:2::2/120, fd10:0:2::1 */
        KvPrefix guest4, guest6;
        KvAddr guest_gw4, guest_gw6;
        const MasqPort *ports;
        size_t n_ports; /* 0 = forward all ports (and ICMP) */
        const uint8_t *guest_mac; /* optional: reported in LinkInfo.sandbox_mac */
        /* optional: MAC of the sandbox side of the veth (the VM's face on the node network). netd gives it the
         * claim's MAC, so that the VM keeps its MAC on the segment when it migrates; NULL = kernel's choice. */
        const uint8_t *pod_mac;
        NatBackendKind nat_backend; /* of the sandbox NAT; masq_config_defaults(): nftables */
} MasqConfig;

/* Zeroes *c and sets the guest defaults. */
void masq_config_defaults(MasqConfig *c);

/* Checks everything before anything is changed; the message names the field and the value,
 * e.g. "masquerade: 'ports[1].port' must be 1..65535, got 0". */
int masq_config_validate(const MasqConfig *c, KvErr *e) _wur_;

/* Validates, then: tap in the sandbox (up, mtu, guest gateway addresses), veth host_ifname (on the
 * bridge) <-> sbx_ifname (sandbox: VM addresses, nodad, up, default routes), forwarding on inside
 * the sandbox, and the sandbox NAT in one transaction. Undo on failure. */
int masq_vm_attach(int netns_fd, const MasqConfig *c, LinkInfo *ret, KvErr *e) _wur_;
/* Verifies links, addresses, routes' prerequisites, forwarding and the sandbox NAT (nftables: chains
 * and rules); the message names the first thing missing. */
int masq_vm_check(int netns_fd, const MasqConfig *c, KvErr *e) _wur_;
/* Removes the sandbox NAT and the links; whatever is already gone is not an error. */
int masq_vm_detach(int netns_fd, const MasqConfig *c, KvErr *e) _wur_;

/* ---- the sandbox NAT, through the NAT backend (netd/nat/nat.h: nat_sandbox_*) ---- */
/* Renders the batch masq_vm_attach sends with the nftables backend, as text, for golden tests. */
int masq_nat_render(const MasqConfig *c, char **ret_text, KvErr *e) _wur_;
/* Replaces the sandbox NAT (netns_fd; -1 = current netns) in one transaction. */
int masq_nat_apply(int netns_fd, const MasqConfig *c, KvErr *e) _wur_;
/* Removes it; 0 if there was none. */
int masq_nat_remove(int netns_fd, NatBackendKind kind, KvErr *e) _wur_;
/* -ENOENT naming the table/chain when missing or holding the wrong rules. */
int masq_nat_check(int netns_fd, const MasqConfig *c, KvErr *e) _wur_;
