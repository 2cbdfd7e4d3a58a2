/* SPDX-License-Identifier: Apache-2.0 */
/* netd's link layer: node bridge, container (veth) and VM (tap + veth + tc redirect) attachments,
 * over rtnetlink (netd/link/netlink.c, on common/nl.c over libmnl).
 *
 * Every function opens its own short-lived netlink sockets (one for the node netns, one bound to
 * the sandbox netns when needed) and leaves the calling thread in its original netns on every path.
 * All functions return >= 0 on success, -errno on failure and then fill *e (if non-NULL) with a
 * message naming the object and the failure, e.g. "creating veth 'kv1234' -> 'eth0' in sandbox: File exists",
 * followed by " (kernel: <its extended ack>)" when the kernel explained a refusal.
 * A bad netns fd gives KV_ERR_INVALID_ENV; everything else KV_ERR_INTERNAL. */
#pragma once

#include <linux/if_link.h>

#include "common/addr.h"
#include "common/kverr.h"
#include "common/util.h"

typedef struct LinkRoute {
        KvPrefix dst;
        KvAddr gw;
        bool has_gw;
} LinkRoute;

typedef struct LinkInfo {
        int host_ifindex; /* node side veth end; 0 if none (chained mode) */
        uint8_t host_mac[6];
        int sandbox_ifindex; /* container: the sandbox veth end; VM: the tap */
        uint8_t sandbox_mac[6]; /* container: its MAC; VM: the guest's MAC */
} LinkInfo;

/* Node bridge: creates it if missing (up, mtu if > 0, multicast snooping off: see lnl_bridge_create),
 * makes sure it is up, adds the gateway addresses
 * (address with the subnet's prefix length, IPv6 with nodad) if not present. Idempotent.
 * Fails with -EEXIST if `name` exists but is not a bridge. */
int link_bridge_ensure(const char *name, uint32_t mtu, const KvPrefix *gw, size_t n_gw, int *ret_ifindex, KvErr *e) _wur_;

/* Container attachment: veth `host_ifname` (node, no IPv6, up, enslaved to `bridge` as the last step)
 * <-> `ifname` (created directly in the sandbox; MAC if mac != NULL, mtu if > 0, addresses with nodad,
 * IPv6 disabled when all addresses are IPv4, up, routes). On failure everything created is removed again.
 * (VLANs: the bridge given is the VLAN's own bridge, netd/link/vlan.c.) */
int link_container_attach(int netns_fd, const char *ifname, const char *host_ifname, const char *bridge, uint32_t mtu,
                          const uint8_t *mac, const KvPrefix *addrs, size_t n_addrs,
                          const LinkRoute *routes, size_t n_routes, LinkInfo *ret, KvErr *e) _wur_;

/* VM attachment: persistent tap `tap_name` in the sandbox (owner root, IFF_TAP|IFF_NO_PI|IFF_VNET_HDR,
 * up, mtu), a veth `host_ifname` (on the bridge) <-> `sbx_ifname` (sandbox), and tc clsact + u32
 * match-all + mirred egress redirect both ways between the tap and `sbx_ifname`. ret->sandbox_ifindex
 * is the tap, ret->sandbox_mac the guest MAC. Undo on failure. */
int link_vm_attach(int netns_fd, const char *tap_name, const char *sbx_ifname, const char *host_ifname,
                   const char *bridge, uint32_t mtu, const uint8_t guest_mac[6], LinkInfo *ret,
                   KvErr *e) _wur_;

/* Persistent tap `name` (owner root, IFF_TAP|IFF_NO_PI|IFF_VNET_HDR) in the netns of netns_fd, down;
 * -EEXIST if a link of that name exists there. */
int link_tap_create(int netns_fd, const char *name) _wur_;

/* Chained VM attachment: `existing_ifname` was made by a previous plugin. Creates the tap, removes
 * the global (non link-local) addresses from existing_ifname and returns them in ret_addrs (at most
 * max_addrs; -ENOBUFS if there are more), then joins tap and existing_ifname with the tc redirect.
 * ret->sandbox_mac is existing_ifname's MAC (the guest should take it over), ret->host_ifindex 0.
 * Undo on failure (tap removed, addresses put back). */
int link_vm_attach_chained(int netns_fd, const char *tap_name, const char *existing_ifname, uint32_t mtu,
                           LinkInfo *ret, KvPrefix *ret_addrs, size_t max_addrs, size_t *ret_n_addrs,
                           KvErr *e) _wur_;

/* Deletes host_ifname in the node netns (if non-NULL; its veth peer goes with it) and tap_name and
 * sandbox_ifname in the sandbox (if netns_fd >= 0 and non-NULL). Missing links are not an error. */
int link_detach(int netns_fd, const char *sandbox_ifname, const char *tap_name, const char *host_ifname, KvErr *e) _wur_;

/* Verify an attachment; the error message names the first thing missing. */
int link_container_check(int netns_fd, const char *ifname, const char *host_ifname, const char *bridge,
                         const KvPrefix *addrs, size_t n_addrs, KvErr *e) _wur_;
/* host_ifname/bridge may be NULL (chained mode): then only the sandbox side is checked. */
int link_vm_check(int netns_fd, const char *tap_name, const char *sbx_ifname, const char *host_ifname,
                  const char *bridge, KvErr *e) _wur_;

/* netns_fd -1 = the current netns. */
/* Deferred deletion. Deleting a veth or tap costs the kernel an RCU grace period (~20 ms here, with
 * RTNL held); a batch of links deleted together costs one. link_retire() takes an attachment's links
 * out of service at once (down, so the bridge forwards nothing to them), renames them ("kvr<ifindex>",
 * so that a new attachment can take the names at once) and moves them into LINK_REAP_GROUP; link_reap()
 * later deletes the whole group of one namespace in a single request. */
#define LINK_REAP_GROUP 0x6b76u
int link_retire(int netns_fd, const char *sandbox_ifname, const char *tap_name, const char *host_ifname,
                KvErr *e) _wur_;
int link_reap(int netns_fd, KvErr *e) _wur_;

/* Retires (see above) every veth of the current namespace whose name is kvnet's host-side pattern
 * ("kv" + 8 hex digits) and for which keep(name) returns false. Returns how many. */
int link_retire_unknown(bool (*keep)(const char *name, void *arg), void *arg, KvErr *e) _wur_;

/* MAC address of a link (netns_fd -1 = current namespace). */
int link_get_mac(int netns_fd, const char *name, uint8_t ret[6]) _wur_;
/* The counters of link name in the namespace netns_fd (-1: netd's own). */
int link_get_stats(int netns_fd, const char *name, struct rtnl_link_stats64 *ret) _wur_;

/* Teaches the current namespace's neighbour table that `a` is at `mac` on `ifname` (STALE: used at
 * once, verified by the kernel on use). */
int link_neigh_learn(const char *ifname, const KvAddr *a, const uint8_t mac[6]) _wur_;

bool link_exists(int netns_fd, const char *name);

/* The node's namespace, before IPv6 forwarding goes on there (net.ipv6.conf.all.forwarding 0): every interface
 * taking router advertisements as a host does (accept_ra 1: SLAAC, a default route) would stop taking them once
 * the node forwards; accept_ra 2 keeps them (logged per interface). Nothing when forwarding is on already or IPv6 is
 * off. Returns how many interfaces it changed. Not for a sandbox: there a guest's advertisements must not count. */
int link_keep_router_advertisements(KvErr *e) _wur_;
/* net.ipv4.ip_forward=1 and net.ipv6.conf.all.forwarding=1 in the CURRENT netns. */
int link_enable_forwarding(KvErr *e) _wur_;
/* One of them (AF_INET: net.ipv4.ip_forward, AF_INET6: net.ipv6.conf.all.forwarding). */
int link_enable_forwarding_family(int family, KvErr *e) _wur_;
