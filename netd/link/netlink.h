/* SPDX-License-Identifier: Apache-2.0 */
/* netd's rtnetlink operations (links, addresses, routes, neighbours, tc), on common/nl.h. They return
 * 0 or the kernel's -errno; nl_error(e, sk, r, ...) then names the operation and adds the kernel's
 * extended-ack message, if it sent one. */
#pragma once

#include "common/addr.h"
#include "common/kverr.h"
#include "common/nl.h"
#include "common/util.h"
#include "netd/link/link.h"

typedef struct LnlLink {
        int ifindex;
        unsigned flags; /* IFF_* */
        int master;     /* ifindex or 0 */
        uint32_t mtu;
        uint8_t mac[6];
        char kind[16]; /* IFLA_INFO_KIND or "" */
} LnlLink;

/* rtnetlink socket in the current netns, or bound to netns_fd (netns_fd >= 0). */
int lnl_open(int netns_fd, NlSock **ret) _wur_;
/* Like lnl_open, filling *e: KV_ERR_INVALID_ENV for a bad netns. */
int lnl_open_e(int netns_fd, NlSock **ret, KvErr *e) _wur_;
/* Opens a socket as lnl_open_e() does (filling *e on failure) and looks ifname up in it. *ret_sk is set once
 * the socket is open, also when the lookup then fails: the caller names the lookup with
 * nl_error(e, *ret_sk, r, ...) (a no-op on *e when the open failed and filled it) or creates the link. */
int lnl_open_link(int netns_fd, const char *ifname, NlSock **ret_sk, LnlLink *ret_link, KvErr *e) _wur_;
/* Two sockets: one in the current (node) netns, one in netns_fd (the sandbox); *ret_* untouched on failure. */
int lnl_open_pair(int netns_fd, NlSock **ret_sk, NlSock **ret_ssk, KvErr *e) _wur_;

/* Link lookup by name: -ENODEV if missing. */
int lnl_link_get(NlSock *sk, const char *name, LnlLink *ret) _wur_;
/* The link's 64-bit counters (IFLA_STATS64); -ENODEV when there is no such link, -ENODATA without counters. */
int lnl_link_stats(NlSock *sk, const char *name, struct rtnl_link_stats64 *ret) _wur_;
/* Calls cb for every link of the socket's namespace; a negative return from cb stops and is returned. */
int lnl_link_list(NlSock *sk, int (*cb)(const char *name, const LnlLink *l, void *arg), void *arg) _wur_;
/* Sets up/down (up < 0: unchanged), mtu (0: unchanged). */
int lnl_link_set(NlSock *sk, int ifindex, int up, uint32_t mtu) _wur_;
/* Deletes a link by name; 0 if it did not exist. */
int lnl_link_del(NlSock *sk, const char *name);

/* Sets a link down, moves it into `group` and renames it LNL_RETIRED_PREFIX<ifindex in hex> (so that its
 * name is free at once); 0 if it did not exist. A failed rename is ignored. */
#define LNL_RETIRED_PREFIX "kvr"

int lnl_link_retire(NlSock *sk, const char *name, uint32_t group) _wur_;
/* Deletes every link of `group` in one kernel batch; 0 if there was none. */
int lnl_link_del_group(NlSock *sk, uint32_t group) _wur_;

/* Adds (replaces) an address; IPv6 with nodad. */
int lnl_addr_add(NlSock *sk, int ifindex, const KvPrefix *p);
int lnl_addr_del(NlSock *sk, int ifindex, const KvPrefix *p) _wur_;
/* Global-scope (not link-local) addresses of ifindex (ifindex 0: all links). Returns the count;
 * fills at most max entries, -ENOBUFS when there are more. */
int lnl_addr_list(NlSock *sk, int ifindex, KvPrefix *ret, size_t max) _wur_;
bool lnl_addr_present(NlSock *sk, int ifindex, const KvPrefix *p);

/* Creates a veth pair `name` (up, IPv6 off: a pure L2 port) <-> `peer` (down; directly in peer_netns_fd
 * if >= 0). master > 0 enslaves `name` at once; mtu 0 keeps the default; peer_mac may be NULL.
 * Callers that bring the peer up themselves should pass master 0 and call lnl_link_set_master() once
 * the peer is up (see there). */
int lnl_veth_create(NlSock *sk, const char *name, int master, uint32_t mtu, const char *peer,
                    int peer_netns_fd, const uint8_t *peer_mac) _wur_;

/* Enslaves ifindex to master (a bridge). On a port that is already up with carrier (and whose link
 * state the kernel has settled, e.g. by a lnl_link_get() of it) the bridge enables the port once;
 * a port enslaved before its carrier comes up is enabled, disabled and enabled again, and each of
 * these walks every port and FDB entry of the bridge. */
int lnl_link_set_master(NlSock *sk, int ifindex, int master) _wur_;

/* No IPv6 address generation on the link (no link-local): for pure L2 ports. */
int lnl_link_addrgen_none(NlSock *sk, const char *name) _wur_;

/* net.ipv6.conf.<name>.disable_ipv6=1 in the netns of netns_fd (-1: the current one): no IPv6 at all on
 * the link, not even the ff00::/8 multicast route and the MLD state every IPv6 link gets (with
 * hundreds of links these make each link event walk hundreds of routes). 0 when the kernel has no
 * IPv6. */
int lnl_link_ipv6_disable(int netns_fd, const char *name) _wur_;

/* Neighbour entry ifindex: a -> mac in state STALE (used at once, confirmed by the kernel later). */
int lnl_neigh_stale(NlSock *sk, int ifindex, const KvAddr *a, const uint8_t mac[6]) _wur_;

/* Bridge helpers. */
int lnl_bridge_create(NlSock *sk, const char *name, uint32_t mtu) _wur_;
/* The fixed MAC lnl_bridge_create gives a bridge of that name. */
void lnl_bridge_mac(const char *name, uint8_t mac[6]);

/* tc: clsact qdisc (idempotent) and a u32 match-all + mirred egress redirect on ingress of `from` to `to`. */
int lnl_tc_clsact(NlSock *sk, int ifindex) _wur_;
int lnl_tc_redirect(NlSock *sk, int from, int to) _wur_;
/* Removes the clsact qdisc (and with it every filter on it); 0 if there was none. */
int lnl_tc_clsact_del(NlSock *sk, int ifindex);
/* 1 if a u32 redirect filter from -> to exists on from's ingress, 0 if not, -errno. */
int lnl_tc_redirect_present(NlSock *sk, int from, int to) _wur_;

/* Adds (replaces) a route in the main table via ifindex; gw NULL = on-link (scope link). */
int lnl_route_add(NlSock *sk, int ifindex, const KvPrefix *dst, const KvAddr *gw) _wur_;
/* Deletes every route (any table, any family) of routing protocol `protocol`; returns how many. */
int lnl_route_flush_protocol(NlSock *sk, uint8_t protocol) _wur_;

/* What the kernel would do with a packet to dst (`ip route get DST [from SRC iif IIF]`): */
typedef struct LnlRouteHit {
        uint8_t type;     /* RTN_UNICAST, RTN_LOCAL, RTN_BLACKHOLE, RTN_UNREACHABLE, ... */
        uint8_t protocol; /* RTPROT_* of the route that matched (118: a migration redirect) */
        uint32_t table;
        int oif;          /* output interface (0: none) */
        KvAddr gw;        /* family 0: on-link */
        KvAddr prefsrc;   /* family 0: none */
} LnlRouteHit;
/* The route lookup for dst; with src and iif (> 0) as for a packet forwarded from iif, else as for one this
 * namespace sends. -ENETUNREACH, -EHOSTUNREACH, -EINVAL (e.g. a source the reverse path filter refuses). */
int lnl_route_get(NlSock *sk, const KvAddr *dst, const KvAddr *src, int iif, LnlRouteHit *ret) _wur_;
/* The bridge port the forwarding database of bridge br_ifindex sends mac to: its ifindex, 0 when the bridge has
 * not learnt the MAC (it floods), -errno. *ret_static: the entry is permanent (not learnt). */
int lnl_fdb_port(NlSock *sk, int br_ifindex, const uint8_t mac[6], bool *ret_static) _wur_;

/* Shared between link.c and tap.c. */
/* Looks the bridge up (must be a bridge). */
int link_bridge_prepare(NlSock *sk, const char *bridge, int *ret_ifindex, KvErr *e) _wur_;
/* The start of an attachment: a socket in the node netns, one in the sandbox, the bridge's ifindex. */
int link_attach_begin(int netns_fd, const char *bridge, NlSock **ret_sk, NlSock **ret_ssk, int *ret_br_ifindex,
                      KvErr *e) _wur_;
/* Last step of an attachment, once the veth peer is up: host_ifname joins the bridge. Fills *ret with the
 * host end. */
int link_join_bridge(NlSock *sk, const char *host_ifname, int br_ifindex, LnlLink *ret, KvErr *e) _wur_;
/* An attachment's LinkInfo (ret may be NULL): the host end, the sandbox link's ifindex and MAC (NULL: none). */
void link_info_set(LinkInfo *ret, const LnlLink *host, int sandbox_ifindex, const uint8_t *sandbox_mac);
/* host_ifname exists, is up and enslaved to bridge. */
int link_check_host_port(NlSock *sk, const char *host_ifname, const char *bridge, KvErr *e) _wur_;
