#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# netd and the node's forwarding sysctls, in a node namespace where they are off (as on a fresh host): IPv4
# forwarding goes on at start, IPv6 forwarding only with the first IPv6 attachment — an IPv4-only node never
# forwards IPv6 — and then the node's uplink keeps taking router advertisements (accept_ra 1 → 2, SLAAC goes on),
# while the bridge netd made takes none. A restart with that attachment in its state turns it on at once.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
mkns NODE_NS node # no setup_node: forwarding stays as a new namespace has it (off)
mkns SBX_A a
mkns SBX_B b
mkns PEER peer
# the node's uplink, a veth towards a peer namespace, taking router advertisements as a host does
ip link add up0 netns "$NODE_NS" type veth peer name pu0 netns "$PEER"
ip netns exec "$NODE_NS" sysctl -qw net.ipv6.conf.up0.accept_ra=1
sysv() { ip netns exec "$NODE_NS" cat "/proc/sys/net/$1"; }
assert_eq "$(sysv ipv4/ip_forward)/$(sysv ipv6/conf/all/forwarding)" 0/0 "a fresh node namespace forwards nothing"

start_netd "$NODE_NS"
assert_eq "$(sysv ipv4/ip_forward)" 1 "netd started: IPv4 forwarding on"
assert_eq "$(sysv ipv6/conf/all/forwarding)" 0 "... IPv6 forwarding still off (no IPv6 network yet)"

conf4=$(render_conf kvnet-basic.conflist 1.1.0)
cni add "$conf4" cid-a "$SBX_A" eth0 >/dev/null
assert_eq "$(sysv ipv6/conf/all/forwarding)" 0 "an IPv4-only attachment: IPv6 forwarding still off"
assert_eq "$(sysv ipv6/conf/up0/accept_ra)" 1 "... and the uplink's accept_ra untouched"

confd=$(render_conf kvnet-dual.conflist 1.1.0)
cni add "$confd" cid-b "$SBX_B" eth0 >/dev/null
assert_eq "$(sysv ipv6/conf/all/forwarding)" 1 "the first dual-stack attachment: IPv6 forwarding on"
assert_eq "$(sysv ipv6/conf/up0/accept_ra)" 2 "... the uplink keeps taking router advertisements (accept_ra 2)"
assert_true "... netd says so" grep -q "'up0' keeps accepting router advertisements (accept_ra 2)" "$NETD_LOG"
assert_eq "$(sysv ipv6/conf/kvbr0/accept_ra)/$(sysv ipv6/conf/kvbr0/accept_redirects)" 0/0 \
	"the bridge netd made takes no router advertisement or redirect"

# a restart with the dual-stack attachment in its state: on again before it serves (here: set off meanwhile)
stop_netd
ip netns exec "$NODE_NS" sysctl -qw net.ipv6.conf.all.forwarding=0
start_netd "$NODE_NS"
assert_eq "$(sysv ipv6/conf/all/forwarding)" 1 "restarted with an IPv6 attachment: IPv6 forwarding on at start"

cni del "$confd" cid-b "$SBX_B" eth0
cni del "$conf4" cid-a "$SBX_A" eth0
finish
