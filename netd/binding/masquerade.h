/* SPDX-License-Identifier: Apache-2.0 */
/* The masquerade binding for VM attachments (KubeVirt's semantics, see docs/masquerade.md).
 *
 *   sandbox netns                                                       node netns
 * ┌───────────────────────────────────────────────────────────────┐
 * │ guest 10.0.2.2/24 (fd10:0:2::2/120)                           │
 * │   │ virtio                                                    │
 * │ tap (persistent, vnet_hdr) 10.0.2.1/24, fd10:0:2::1/120       │
 * │   │ routed (forwarding on), table inet kvnet-masq:             │
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

#define MASQ_TABLE "kvnet-masq"
#define MASQ_MAX_PORTS 64

typedef struct MasqPort {
        uint16_t port;
        uint8_t proto; /* IPPROTO_TCP / IPPROTO_UDP */
} MasqPort;

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
} MasqConfig;

/* Zeroes *c and sets the guest defaults. */
void masq_config_defaults(MasqConfig *c);

/* Checks everything before anything is changed; the message names the field and the value,
 * e.g. "masquerade: 'ports[1].port' must be 1..65535, got 0". */
int masq_config_validate(const MasqConfig *c, KvErr *e) _wur_;

/* Validates, then: tap in the sandbox (up, mtu, guest gateway addresses), veth host_ifname (on the
 * bridge) <-> sbx_ifname (sandbox: VM addresses, nodad, up, default routes), forwarding on inside
 * the sandbox, and the nftables table inet kvnet-masq in one batch. Undo on failure. */
int masq_vm_attach(int netns_fd, const MasqConfig *c, LinkInfo *ret, KvErr *e) _wur_;
/* Verifies links, addresses, routes' prerequisites, forwarding and the nft table (chains and rule
 * counts); the message names the first thing missing. */
int masq_vm_check(int netns_fd, const MasqConfig *c, KvErr *e) _wur_;
/* Removes the nft table and the links; whatever is already gone is not an error. */
int masq_vm_detach(int netns_fd, const MasqConfig *c, KvErr *e) _wur_;

/* ---- nftables part (masq-nft.c) ---- */
/* Renders the batch masq_vm_attach sends, as text (nftnl_*_snprintf), for golden tests. */
int masq_nft_render(const MasqConfig *c, char **ret_text, KvErr *e) _wur_;
/* Replaces table inet kvnet-masq in the sandbox (netns_fd; -1 = current netns) in one transaction. */
int masq_nft_apply(int netns_fd, const MasqConfig *c, KvErr *e) _wur_;
/* Deletes the table; 0 if it did not exist. */
int masq_nft_remove(int netns_fd, KvErr *e) _wur_;
/* -ENOENT naming the table/chain when missing or holding the wrong number of rules. */
int masq_nft_check(int netns_fd, const MasqConfig *c, KvErr *e) _wur_;
