/* SPDX-License-Identifier: Apache-2.0 */
/* Anti-spoofing on the node side of every bridge port kvnet makes (bridge and masquerade bindings, VMs and
 * containers): what a port may send into its bridge. One nftables table "bridge kvnet-ports" in netd's
 * namespace (where the bridges are), whose rules never change after creation; a port is only elements of its
 * sets, keyed by the port's interface name:
 *
 *   ports    ifname              the filtered ports (every other bridge port is not looked at)
 *   ipports  ifname              ports whose addresses are known (kvnet's IPAM): their IP sources are checked
 *   dhcpports ifname             ports of guests whose DHCP/DHCPv6 netd answers on their tap
 *   macs     ifname . ether      the port's one MAC
 *   ip4      ifname . ipv4       the port's IPv4 addresses
 *   ip6      ifname . ipv6       the port's IPv6 addresses and the link-local address of its MAC (EUI-64)
 *   etypes   ether type          what any port may send: IPv4, ARP, IPv6, RARP (QEMU's announce after migration)
 *   src4/6   ifname . ether . ip the fast path: the port's MAC with each of its addresses
 *   portdrops ifname             (dynamic) what each port had dropped: every drop rule updates the port's element,
 *                                whose counter counts the port's dropped frames and bytes; gone with the port
 *
 * chain prerouting (bridge filter, priority -200), in this order:
 *   iifname != @ports accept
 *   fast path: TCP, or UDP neither from nor to port 67 / 547, whose name . MAC . source is in @src4 / @src6: accept
 *   ether saddr of the port != @macs drop; ether type not in @etypes drop (802.1Q tags included)
 *   UDP source port 67 / 547 drop (DHCP / DHCPv6 servers), ICMPv6 router advertisement / redirect drop,
 *   ICMP redirect drop
 *   ARP: not Ethernet/IPv4 drop; sender MAC != @macs drop; sender IP 0.0.0.0 accept (probe);
 *        ipports: sender IP != @ip4 drop
 *   ND: the source / target link-layer option of NS, NA and RS != @macs drop; NS, NA, RS with more than one
 *       option drop (after the DAD accept: a probe's nonce)
 *   IPv4: dhcpports: to UDP 67 drop (netd answered it on the tap; a flood is not copied to every port);
 *         0.0.0.0 to UDP 67 accept (DHCP); ipports: source != @ip4 drop
 *   IPv6: dhcpports: to UDP 547 drop; :: with ICMPv6 NS or MLD report accept (DAD); ipports: source != @ip6 drop,
 *         NA target != @ip6 drop
 *
 * Every change is one transaction; render mode writes the operations as text for golden tests. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/addr.h"
#include "common/kverr.h"

#define PORTFILTER_MAX_ADDRS 4
#define PORTFILTER_TABLE "kvnet-ports"
/* room in @portdrops: ports that dropped something since they were made (a full set counts no new port) */
#define PORTFILTER_MAX_DROP_PORTS 65536

typedef struct PortFilterPort {
        char ifname[16];
        uint8_t mac[6];
        bool check_ips; /* the addresses are the port's only ones (IPAM): IP sources, ARP and ND targets checked */
        bool dhcp_local; /* netd answers the guest's DHCP/DHCPv6 on its tap: client messages stay off the bridge */
        size_t n_addrs;
        KvAddr addrs[PORTFILTER_MAX_ADDRS];
} PortFilterPort;

typedef struct PortFilter PortFilter;

/* A filter on the kernel of netd's namespace (-EOPNOTSUPP without nf_tables), or (render) one that only
 * writes what it would send. */
int portfilter_new(bool render, PortFilter **ret) _wur_;
PortFilter *portfilter_free(PortFilter *pf);
DEFINE_TRIVIAL_CLEANUP_FUNC(PortFilter *, portfilter_free);

/* Replaces the table with one filtering exactly ports[0..n) (start-up), in one transaction. */
int portfilter_sync(PortFilter *pf, const PortFilterPort *ports, size_t n, KvErr *e) _wur_;
/* Filters one more port (creating the table if needed); adding a port again is not an error. */
int portfilter_add(PortFilter *pf, const PortFilterPort *p, KvErr *e) _wur_;
/* Stops filtering the port; what is gone already is not an error. */
int portfilter_del(PortFilter *pf, const PortFilterPort *p, KvErr *e) _wur_;
/* 0 if every element of the port is in the kernel, else an error naming the first one missing. */
int portfilter_check(PortFilter *pf, const PortFilterPort *p, KvErr *e) _wur_;
/* Calls cb for every port that dropped frames (its element of @portdrops): the port's interface name, frames and
 * bytes. -ENOENT when there is no table. */
int portfilter_drops(PortFilter *pf, int (*cb)(const char *ifname, uint64_t packets, uint64_t bytes, void *userdata),
                     void *userdata) _wur_;
/* The frames the port dropped (its element of @portdrops) into *ret_packets (may be NULL): 1 when it has an
 * element, 0 when it dropped nothing (*ret_packets 0), -errno. */
int portfilter_port_drops(PortFilter *pf, const char *ifname, uint64_t *ret_packets) _wur_;
/* Render mode: the text written so far (caller frees), and a fresh start. */
char *portfilter_take_rendered(PortFilter *pf);

/* The IPv6 link-local address the kernel forms from a MAC (EUI-64, RFC 4291 appendix A). */
void portfilter_link_local(const uint8_t mac[6], KvAddr *ret);
