#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A simulated kvnet cluster on one machine: N "nodes" (network namespaces, each with its own
# kvnet-netd and optionally its own libvirtd), a switch namespace joining them on an underlay,
# and a client namespace on the same underlay. See docs/multinode.md.
#
#   scripts/cluster.sh up N [--name PREFIX] [--dir DIR] [--libvirt]
#   scripts/cluster.sh down [--name PREFIX] [--dir DIR]
#   scripts/cluster.sh env [--name PREFIX] [--dir DIR]
#
# up: creates namespaces PREFIX-sw (bridge br-underlay), PREFIX-client (198.51.100.100/24, route to
# the VM network via node1) and PREFIX-node1..N (underlay 198.51.100.I/24 on ul0; kvbr0 with the
# shared gateway MAC and 10.88.0.1/24; vxlan0 VNI 100 dstport 4789 enslaved to kvbr0 with one
# all-zero FDB entry per peer node; nftables table "bridge kvnet-cluster" keeping gateway frames
# off the VXLAN), starts build/bin/kvnet-netd in every node (socket DIR/nodeI/netd.sock, state
# DIR/nodeI/state, log DIR/nodeI/netd.log, config DIR/nodeI/netd.json naming the node and the shared
# claim store DIR/claims) and waits until each answers `kvnetctl status`.
# --libvirt also starts a private libvirtd per node through scripts/libvirt-node.sh (listening on
# TCP at the node's underlay address for peer-to-peer migration).
# Writes DIR/cluster.env (sourceable KEY=VALUE) and prints it. An existing healthy cluster of the
# same name and size is reused; a broken or different one is torn down and rebuilt.
# PREFIX defaults to kvc-<random>; DIR defaults to /run/kvnet-cluster/PREFIX.
#
# down: stops the netds (SIGTERM, then SIGKILL) and the nodes' libvirtds, kills whatever else still runs
# inside the cluster's namespaces (node, switch, client, and the sandboxes PREFIX-p-* of the launcher pods
# that kvnet-node runs under scripts/kvnet-sim.sh, with their libvirtds and VMs), deletes every namespace
# of that prefix and removes DIR.
# Taking down a cluster that does not exist succeeds. Without --name and --dir, the only
# registered cluster is meant (an error if there are several).
#
# env: prints DIR/cluster.env.
#
# Environment: KVNET_BUILD (default build; e.g. build/san), KVNET_VM_SUBNET (10.88.0.0/24),
# KVNET_VM_GATEWAY (10.88.0.1), KVNET_GW_MAC (02:6b:67:77:00:01), KVNET_VNI (100),
# KVNET_NETD_ARGS (extra netd arguments, default "--log-level debug"), KVNET_REDIRECT_GRACE_MS (how long
# a migration source keeps routing the VM's /32 to the target, default 5000), KVNET_NETD_CONFIG_EXTRA (a JSON
# object merged into every node's netd config, e.g. a simulated node's sriovPools/sysfsRoot/sriovSimulate).
# Exit: 0 ok, 1 failure (message on stderr), 2 usage.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KVNET_BUILD=${KVNET_BUILD:-build}
case "$KVNET_BUILD" in
/*) BUILD_DIR=$KVNET_BUILD ;;
*) BUILD_DIR=$ROOT/$KVNET_BUILD ;;
esac
NETD=$BUILD_DIR/bin/kvnet-netd
KVNETCTL=$BUILD_DIR/bin/kvnetctl
LIBVIRT_NODE=$ROOT/scripts/libvirt-node.sh
REGISTRY=/run/kvnet-cluster

UNDERLAY_NET=198.51.100   # RFC 5737 TEST-NET-2: nodes .1..N, client .100
UNDERLAY_PLEN=24
CLIENT_HOST=100
UNDERLAY_MTU=1550         # VXLAN over IPv4 adds 50 bytes: VM frames keep MTU 1500
VM_SUBNET=${KVNET_VM_SUBNET:-10.88.0.0/24}
VM_GATEWAY=${KVNET_VM_GATEWAY:-10.88.0.1}
GW_MAC=${KVNET_GW_MAC:-02:6b:67:77:00:01}
VNI=${KVNET_VNI:-100}
VXLAN_PORT=4789
BRIDGE=kvbr0
NETD_ARGS=${KVNET_NETD_ARGS:---log-level debug}
REDIRECT_GRACE_MS=${KVNET_REDIRECT_GRACE_MS:-5000}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

usage() {
	sed -n '7,9p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

die() {
	echo "cluster: $*" >&2
	exit 1
}

info() { echo "cluster: $*" >&2; }

# ---------------------------------------------------------------- arguments

[ $# -ge 1 ] || usage
CMD=$1
shift
N=""
PREFIX=""
DIR=""
LIBVIRT=0
if [ "$CMD" = up ]; then
	[ $# -ge 1 ] || usage
	N=$1
	shift
	case "$N" in
	'' | *[!0-9]*) die "up: N must be a number 1..99, got '$N'" ;;
	esac
	if [ "$N" -lt 1 ] || [ "$N" -gt 99 ]; then die "up: N must be a number 1..99, got '$N'"; fi
fi
while [ $# -gt 0 ]; do
	case "$1" in
	--name)
		[ $# -ge 2 ] || usage
		PREFIX=$2
		shift 2
		;;
	--dir)
		[ $# -ge 2 ] || usage
		DIR=$2
		shift 2
		;;
	--libvirt)
		[ "$CMD" = up ] || usage
		LIBVIRT=1
		shift
		;;
	-h | --help) usage ;;
	*) usage ;;
	esac
done
if [ -n "$PREFIX" ]; then
	# Namespace names are PREFIX-node99 at most; keep them short and shell-safe.
	case "$PREFIX" in
	*[!a-z0-9-]* | -* | '') die "--name must be [a-z0-9-]+ (not starting with '-'), got '$PREFIX'" ;;
	esac
	[ ${#PREFIX} -le 32 ] || die "--name must be at most 32 characters, got '$PREFIX'"
fi
if [ -n "$DIR" ]; then
	case "$DIR" in
	/*) ;;
	*) DIR=$(pwd)/$DIR ;;
	esac
fi

# ---------------------------------------------------------------- helpers

node_ns() { echo "$PREFIX-node$1"; }
node_addr() { echo "$UNDERLAY_NET.$1"; }
node_dir() { echo "$DIR/node$1"; }
sw_ns() { echo "$PREFIX-sw"; }
client_ns() { echo "$PREFIX-client"; }

# Namespaces that belong to cluster PREFIX.
cluster_namespaces() {
	ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${PREFIX}-(sw|client|node[0-9]+|p-[a-z0-9-]+)\$" || true
}

# pid_is PID WORD: PID is alive and its command line contains WORD (guards against pid reuse).
pid_is() {
	local pid=$1 word=$2
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$word"
}

# Fills DIR (and PREFIX) for down/env from --name/--dir or the registry.
resolve_cluster() {
	if [ -z "$PREFIX" ] && [ -n "$DIR" ] && [ -f "$DIR/cluster.env" ]; then
		PREFIX=$(sed -n 's/^PREFIX=//p' "$DIR/cluster.env")
	fi
	if [ -z "$PREFIX" ]; then
		local regs=()
		[ -d "$REGISTRY" ] && mapfile -t regs < <(find "$REGISTRY" -maxdepth 1 -name '*.dir' -printf '%f\n' | sed 's/\.dir$//')
		case ${#regs[@]} in
		0) return 1 ;;
		1) PREFIX=${regs[0]} ;;
		*) die "several clusters are up (${regs[*]}); pick one with --name" ;;
		esac
	fi
	if [ -z "$DIR" ]; then
		if [ -f "$REGISTRY/$PREFIX.dir" ]; then
			DIR=$(cat "$REGISTRY/$PREFIX.dir")
		else
			DIR=$REGISTRY/$PREFIX
		fi
	fi
	return 0
}

kvctl_status() { "$KVNETCTL" --socket "$1" status >/dev/null 2>&1; }

# ---------------------------------------------------------------- down

stop_pid() {
	local pid=$1 word=$2
	pid_is "$pid" "$word" || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do
		pid_is "$pid" "$word" || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	for _ in $(seq 1 20); do
		pid_is "$pid" "$word" || return 0
		sleep 0.1
	done
}

do_down() {
	local d i ns p
	# netds and libvirtds recorded in DIR.
	if [ -n "$DIR" ] && [ -d "$DIR" ]; then
		for d in "$DIR"/node*; do
			[ -d "$d" ] || continue
			[ -f "$d/netd.pid" ] && stop_pid "$(cat "$d/netd.pid")" kvnet-netd
			if [ -d "$d/libvirt" ] && [ -x "$LIBVIRT_NODE" ]; then
				i=${d##*/node}
				"$LIBVIRT_NODE" stop "$PREFIX-node$i" --dir "$d/libvirt" >/dev/null 2>&1 ||
					info "stopping libvirtd of node$i failed (continuing)"
			fi
		done
	fi
	# Pod libvirtds under DIR/pods (the layout of the former scripts/vmpod.sh; kvnet-node keeps its pods in
	# its own state dir, their sandboxes are covered below): stopped, they destroy their domains.
	if [ -n "$DIR" ] && [ -d "$DIR/pods" ]; then
		for d in "$DIR"/pods/*; do
			[ -d "$d/libvirt" ] || continue
			"$LIBVIRT_NODE" stop "$PREFIX-${d##*/}" --dir "$d/libvirt" >/dev/null 2>&1 || true
		done
	fi
	# Anything still running inside the cluster's namespaces was started for the cluster.
	for ns in $(cluster_namespaces); do
		for p in $(ip netns pids "$ns" 2>/dev/null); do
			kill -TERM "$p" 2>/dev/null || true
		done
	done
	for ns in $(cluster_namespaces); do
		for _ in $(seq 1 30); do
			[ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break
			sleep 0.1
		done
		for p in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$p" 2>/dev/null || true
		done
		ip netns del "$ns" 2>/dev/null || info "deleting namespace $ns failed"
	done
	[ -z "$(cluster_namespaces)" ] || die "namespaces left behind: $(cluster_namespaces | tr '\n' ' ')"
	if [ -n "$DIR" ] && [ -d "$DIR" ]; then
		# Only a directory this script made (or an empty one) is removed.
		if [ -f "$DIR/.kvnet-cluster" ] || [ -z "$(ls -A "$DIR")" ]; then
			rm -rf "$DIR"
		else
			info "not removing $DIR: it was not created by cluster.sh"
		fi
	fi
	rm -f "$REGISTRY/$PREFIX.dir"
	rmdir "$REGISTRY" 2>/dev/null || true
}

# ---------------------------------------------------------------- up

# Everything up creates is torn down again if it fails half-way.
UP_DONE=0
up_cleanup() {
	local rc=$?
	if [ "$UP_DONE" -ne 1 ]; then
		set +e
		trap - ERR
		info "bring-up failed; tearing down $PREFIX"
		do_down >/dev/null 2>&1
		[ "$rc" -ne 0 ] || rc=1
	fi
	exit "$rc"
}

nsx() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

setup_switch() {
	local sw
	sw=$(sw_ns)
	ip netns add "$sw"
	ip -n "$sw" link set lo up
	ip -n "$sw" link add br-underlay type bridge
	ip -n "$sw" link set br-underlay up
	# The switch only switches: nothing in it routes or filters bridged frames.
	nsx "$sw" sysctl -qw net.bridge.bridge-nf-call-iptables=0 2>/dev/null || true
	nsx "$sw" sysctl -qw net.bridge.bridge-nf-call-ip6tables=0 2>/dev/null || true
}

# attach_underlay NS IFNAME SWITCH_PORT ADDR: veth IFNAME in NS <-> SWITCH_PORT on br-underlay.
attach_underlay() {
	local ns=$1 ifname=$2 port=$3 addr=$4 sw
	sw=$(sw_ns)
	ip -n "$ns" link add "$ifname" mtu "$UNDERLAY_MTU" type veth peer name "$port" netns "$sw" mtu "$UNDERLAY_MTU"
	ip -n "$sw" link set "$port" master br-underlay up
	ip -n "$ns" addr add "$addr/$UNDERLAY_PLEN" dev "$ifname"
	ip -n "$ns" link set "$ifname" up
}

# The gateway filter: gateway frames (source = the shared gateway MAC, and ARP for the gateway
# address) never cross the VXLAN. Every node answers its own VMs; see docs/multinode.md.
gateway_filter() {
	local ns=$1
	nsx "$ns" nft -f - <<EOF
table bridge kvnet-cluster {
	chain forward {
		type filter hook forward priority 0; policy accept;
		oifname "vxlan0" ether saddr $GW_MAC counter drop
		iifname "vxlan0" ether saddr $GW_MAC counter drop
		oifname "vxlan0" arp operation request arp daddr ip $VM_GATEWAY counter drop
		iifname "vxlan0" arp operation request arp daddr ip $VM_GATEWAY counter drop
	}
	chain output {
		type filter hook output priority 0; policy accept;
		oifname "vxlan0" ether saddr $GW_MAC counter drop
	}
	chain input {
		type filter hook input priority 0; policy accept;
		iifname "vxlan0" ether saddr $GW_MAC counter drop
		iifname "vxlan0" arp operation request arp daddr ip $VM_GATEWAY counter drop
	}
}
EOF
}

setup_node() {
	local i=$1 ns addr plen j
	ns=$(node_ns "$i")
	addr=$(node_addr "$i")
	plen=${VM_SUBNET#*/}
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	nsx "$ns" sysctl -qw net.ipv4.ip_forward=1
	attach_underlay "$ns" ul0 "n$i" "$addr"

	# kvbr0 before netd: netd adopts an existing bridge (netd/link/link.c link_bridge_ensure) and keeps
	# its MAC. The MAC is the shared anycast gateway MAC, the same on every node, so a migrated VM's
	# ARP entry for the gateway stays right. It stays down until the filter is in place.
	ip -n "$ns" link add "$BRIDGE" address "$GW_MAC" mtu 1500 type bridge
	nsx "$ns" sysctl -qw "net.ipv6.conf.$BRIDGE.accept_dad=0" 2>/dev/null || true
	ip -n "$ns" link add vxlan0 mtu 1500 type vxlan id "$VNI" local "$addr" dstport "$VXLAN_PORT" dev ul0 learning
	ip -n "$ns" link set vxlan0 master "$BRIDGE"
	# Bridge ports carry no addresses of their own (no IPv6 link-local, DAD or MLD from them).
	ip -n "$ns" link set vxlan0 addrgenmode none
	for j in $(seq 1 "$N"); do
		[ "$j" -eq "$i" ] && continue
		nsx "$ns" bridge fdb append 00:00:00:00:00:00 dev vxlan0 dst "$(node_addr "$j")"
	done
	gateway_filter "$ns"
	ip -n "$ns" addr add "$VM_GATEWAY/$plen" dev "$BRIDGE"
	ip -n "$ns" link set vxlan0 up
	ip -n "$ns" link set "$BRIDGE" up
}

# The routeHook every netd runs when a VM appears on its node, arrives there by migration or goes
# away (netd config routeHook; docs/multinode.md): the stand-in for a BGP announcement of the VM's
# /32 to the fabric. Here the client namespace is the outside router: its route to the VM is moved
# to the VM's node. IPv6 routes are not announced (the client has no IPv6 path; see Limits).
write_route_hook() {
	local f=$DIR/route-hook
	cat >"$f.tmp" <<EOF
#!/bin/sh
# kvnet routeHook of cluster '$PREFIX' (scripts/cluster.sh): ACTION DST NODE
case "\$2" in *:*) exit 0 ;; esac
i=\${3#node}
case "\$i" in '' | *[!0-9]*) echo "route-hook: unknown node '\$3'" >&2; exit 2 ;; esac
case "\$1" in
announce) exec ip -n $(client_ns) route replace "\$2" via $UNDERLAY_NET.\$i ;;
withdraw) ip -n $(client_ns) route del "\$2" via $UNDERLAY_NET.\$i 2>/dev/null; exit 0 ;;
*) echo "route-hook: unknown action '\$1'" >&2; exit 2 ;;
esac
EOF
	chmod 755 "$f.tmp"
	mv "$f.tmp" "$f"
}

setup_client() {
	local ns
	ns=$(client_ns)
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	attach_underlay "$ns" ul0 client "$UNDERLAY_NET.$CLIENT_HOST"
	ip -n "$ns" route add "$VM_SUBNET" via "$(node_addr 1)"
}

start_netd() {
	local i=$1 ns d pid
	ns=$(node_ns "$i")
	d=$(node_dir "$i")
	mkdir -p "$d/state" "$DIR/claims"
	rm -f "$d/netd.sock"
	# Every node's netd shares one claim store (a directory all nodes see): an address or a VM claim
	# belongs to one node, two only while a migration is in progress (docs/multinode.md).
	printf '{"nodeName": "node%s", "nodeAddress": "%s", "clusterClaims": "%s", "routeHook": "%s", "redirectGraceMs": %s}\n' \
		"$i" "$(node_addr "$i")" "$DIR/claims" "$DIR/route-hook" "$REDIRECT_GRACE_MS" >"$d/netd.json"
	if [ -n "${KVNET_NETD_CONFIG_EXTRA:-}" ]; then
		jq --argjson x "$KVNET_NETD_CONFIG_EXTRA" '. + $x' "$d/netd.json" >"$d/netd.json.tmp" ||
			die "KVNET_NETD_CONFIG_EXTRA is not a JSON object: $KVNET_NETD_CONFIG_EXTRA"
		mv "$d/netd.json.tmp" "$d/netd.json"
	fi
	# shellcheck disable=SC2086
	setsid ip netns exec "$ns" "$NETD" --socket "$d/netd.sock" --state-dir "$d/state" --config "$d/netd.json" $NETD_ARGS \
		</dev/null >>"$d/netd.log" 2>&1 &
	pid=$!
	echo "$pid" >"$d/netd.pid"
}

wait_netd() {
	local i=$1 d pid
	d=$(node_dir "$i")
	pid=$(cat "$d/netd.pid")
	for _ in $(seq 1 100); do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 20 "$d/netd.log" >&2 || true
			die "kvnet-netd of node$i exited during startup (log $d/netd.log)"
		fi
		if [ -S "$d/netd.sock" ] && kvctl_status "$d/netd.sock"; then
			return 0
		fi
		sleep 0.1
	done
	tail -n 20 "$d/netd.log" >&2 || true
	die "kvnet-netd of node$i did not answer 'kvnetctl status' within 10 s (log $d/netd.log)"
}

start_libvirt() {
	local i=$1 d out
	d=$(node_dir "$i")
	out=$("$LIBVIRT_NODE" start "$PREFIX-node$i" "$(node_ns "$i")" --dir "$d/libvirt" --tcp "$(node_addr "$i")") ||
		die "libvirtd of node$i did not start (scripts/libvirt-node.sh; logs in $d/libvirt/log/libvirt)"
	printf '%s\n' "$out" >"$d/libvirt.out"
}

write_env() {
	local i d f=$DIR/cluster.env.tmp uri tcp
	{
		echo "# kvnet cluster '$PREFIX' (scripts/cluster.sh)"
		echo "PREFIX=$PREFIX"
		echo "DIR=$DIR"
		echo "N=$N"
		echo "SWITCH_NS=$(sw_ns)"
		echo "CLIENT_NS=$(client_ns)"
		echo "CLIENT_UNDERLAY=$UNDERLAY_NET.$CLIENT_HOST"
		echo "UNDERLAY_SUBNET=$UNDERLAY_NET.0/$UNDERLAY_PLEN"
		echo "VM_SUBNET=$VM_SUBNET"
		echo "VM_GATEWAY=$VM_GATEWAY"
		echo "GATEWAY_MAC=$GW_MAC"
		echo "BRIDGE=$BRIDGE"
		echo "VXLAN_VNI=$VNI"
		echo "VXLAN_PORT=$VXLAN_PORT"
		echo "KVNET_BUILD_DIR=$BUILD_DIR"
		echo "LIBVIRT=$LIBVIRT"
		echo "CLAIMS_DIR=$DIR/claims"
		for i in $(seq 1 "$N"); do
			d=$(node_dir "$i")
			echo "NODE${i}_NS=$(node_ns "$i")"
			echo "NODE${i}_SOCK=$d/netd.sock"
			echo "NODE${i}_STATE=$d/state"
			echo "NODE${i}_LOG=$d/netd.log"
			echo "NODE${i}_NETD_PID=$(cat "$d/netd.pid")"
			echo "NODE${i}_UNDERLAY=$(node_addr "$i")"
			if [ "$LIBVIRT" -eq 1 ]; then
				uri=$(sed -n 's/^URI=//p' "$d/libvirt.out")
				tcp=$(sed -n 's/^TCP_URI=//p' "$d/libvirt.out")
				echo "NODE${i}_LIBVIRT_URI='$uri'"
				echo "NODE${i}_LIBVIRT_TCP_URI=$tcp"
				echo "NODE${i}_LIBVIRT_DIR=$d/libvirt"
			fi
		done
	} >"$f"
	mv "$f" "$DIR/cluster.env"
}

# A cluster of this name that is fully up (same N, every netd answering) is reused.
cluster_healthy() {
	local i
	[ -f "$DIR/cluster.env" ] || return 1
	[ "$(sed -n 's/^N=//p' "$DIR/cluster.env")" = "$N" ] || return 1
	[ "$(sed -n 's/^LIBVIRT=//p' "$DIR/cluster.env")" = "$LIBVIRT" ] || return 1
	ip netns exec "$(sw_ns)" true 2>/dev/null || return 1
	ip netns exec "$(client_ns)" true 2>/dev/null || return 1
	for i in $(seq 1 "$N"); do
		ip netns exec "$(node_ns "$i")" true 2>/dev/null || return 1
		pid_is "$(cat "$(node_dir "$i")/netd.pid" 2>/dev/null)" kvnet-netd || return 1
		kvctl_status "$(node_dir "$i")/netd.sock" || return 1
	done
	[ "$(cluster_namespaces | grep -cv -- "-p-")" -eq $((N + 2)) ] || return 1
}

do_up() {
	local i
	[ "$(id -u)" -eq 0 ] || die "needs root (network namespaces)"
	local c
	for c in ip bridge nft sysctl setsid; do
		command -v "$c" >/dev/null 2>&1 || die "command '$c' not installed"
	done
	[ -x "$NETD" ] || die "'$NETD' not built (make; or set KVNET_BUILD)"
	[ -x "$KVNETCTL" ] || die "'$KVNETCTL' not built (make; or set KVNET_BUILD)"
	if [ "$LIBVIRT" -eq 1 ]; then
		[ -x "$LIBVIRT_NODE" ] || die "--libvirt: $LIBVIRT_NODE is missing"
	fi
	[ -n "$PREFIX" ] || PREFIX=kvc-$(printf '%04x' $((RANDOM & 0xffff)))
	if [ -z "$DIR" ]; then
		if [ -f "$REGISTRY/$PREFIX.dir" ]; then
			DIR=$(cat "$REGISTRY/$PREFIX.dir")
		else
			DIR=$REGISTRY/$PREFIX
		fi
	fi

	if cluster_healthy; then
		info "cluster '$PREFIX' is already up"
		cat "$DIR/cluster.env"
		return 0
	fi
	if [ -n "$(cluster_namespaces)" ] || [ -f "$DIR/cluster.env" ]; then
		info "cluster '$PREFIX' exists but is not the one asked for or not healthy; rebuilding"
		do_down
	fi
	if [ -d "$DIR" ] && [ -n "$(ls -A "$DIR")" ] && [ ! -f "$DIR/.kvnet-cluster" ]; then
		die "--dir $DIR exists and is not empty"
	fi

	set -E
	trap up_cleanup EXIT
	trap 'exit 1' INT TERM
	trap 'info "line $LINENO: command failed: $BASH_COMMAND"' ERR
	mkdir -p "$DIR" "$REGISTRY"
	touch "$DIR/.kvnet-cluster"
	echo "$DIR" >"$REGISTRY/$PREFIX.dir"

	setup_switch
	for i in $(seq 1 "$N"); do
		setup_node "$i"
	done
	setup_client
	write_route_hook
	for i in $(seq 1 "$N"); do
		mkdir -p "$(node_dir "$i")"
		start_netd "$i"
	done
	for i in $(seq 1 "$N"); do
		wait_netd "$i"
	done
	if [ "$LIBVIRT" -eq 1 ]; then
		for i in $(seq 1 "$N"); do
			start_libvirt "$i"
		done
	fi
	write_env
	UP_DONE=1
	trap - EXIT ERR INT TERM
	cat "$DIR/cluster.env"
}

case "$CMD" in
up) do_up ;;
down)
	if resolve_cluster; then
		do_down
	fi
	;;
env)
	resolve_cluster || die "no cluster is up"
	[ -f "$DIR/cluster.env" ] || die "no cluster '$PREFIX' (no $DIR/cluster.env)"
	cat "$DIR/cluster.env"
	;;
*) usage ;;
esac
