#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make demo-migration`: live migration with kvnet on a simulated two-node cluster, on one machine,
# without touching the host's own network.
#
# scripts/cluster.sh brings up two nodes (network namespaces with their own kvnet-netd, joined by
# an underlay and one VXLAN L2 segment) and a client namespace ("the outside world").
# scripts/vmpod.sh boots a bridge-binding VM and a masquerade-binding VM on node1. For each VM the
# client (build/tests/flowmon) pings the VM every 10 ms and holds TCP connections to the guest's
# echo port while the VM migrates node1 -> node2 -> node1. After every migration the demo prints the
# network downtime the client saw, the lost pings, QEMU's own downtime, whether TCP survived,
# whether the VM kept its IP, its MAC and its guest instance (boot id served by the guest), and
# `kvnetctl migrations` of both nodes. Everything is torn down at the end, also on Ctrl-C or failure.
# Exit 0 when every migration completed and every TCP connection survived, 1 otherwise.
#
# Environment: KVNET_BUILD (default build).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export KVNET_BUILD=${KVNET_BUILD:-build}
case "$KVNET_BUILD" in /*) BUILD=$KVNET_BUILD ;; *) BUILD=$ROOT/$KVNET_BUILD ;; esac
BIN=$BUILD/bin
FLOWMON=$BUILD/tests/flowmon
CLUSTER=$ROOT/scripts/cluster.sh
VMPOD=$ROOT/scripts/vmpod.sh

die() {
	echo "demo-migration: $*" >&2
	exit 1
}
[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
for c in qemu-system-x86_64 virsh socat jq curl unshare; do
	command -v "$c" >/dev/null || die "$c not installed (make deps)"
done
[ -x /usr/sbin/libvirtd ] || die "libvirtd not installed (make deps)"
[ -x "$FLOWMON" ] || die "$FLOWMON not built (make test-tools)"
[ -x "$BIN/kvnetctl" ] || die "$BIN/kvnetctl not built (make)"

SUF=$(printf '%04x%04x' $RANDOM $RANDOM)
CL_NAME=kvdm-$SUF
WORK=$(mktemp -d /tmp/kvnet-demo-migration.XXXXXX)
CL_DIR=$WORK/cluster
ENVF=$CL_DIR/cluster.env
FM_PIDS=()
cleanup() {
	local rc=$?
	set +e
	for p in "${FM_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	echo
	echo "== teardown: scripts/cluster.sh down (VM pods, netds, namespaces)"
	"$CLUSTER" down --name "$CL_NAME" --dir "$CL_DIR" >/dev/null 2>&1
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM
exec 3>&1
run() { # run CMD...: print it (on the terminal, fd 3), then run it
	echo "\$ $*" | sed "s|$ROOT/||g; s|$WORK|\$WORK|g" >&3
	"$@"
}
ms() { date +%s%3N; }
kv() { sed -n "s/^$1=//p" "$2"; }
boot_id() { ip netns exec "$CLIENT_NS" curl -s -m 3 "http://$1/id" 2>/dev/null | sed -n 's/^boot_id=//p'; }
wait_ping() { # ADDR SECONDS
	local i
	for i in $(seq 1 $(($2 * 5))); do
		ip netns exec "$CLIENT_NS" ping -c1 -W0.2 "$1" >/dev/null 2>&1 && return 0
	done
	return 1
}
# start_flowmon NAME ARGS...: flowmon in the client namespace; sets FM_PID
start_flowmon() {
	local name=$1
	shift
	rm -f "$WORK/$name.ready"
	ip netns exec "$CLIENT_NS" "$FLOWMON" "$@" --ready-file "$WORK/$name.ready" >"$WORK/$name.json" 2>"$WORK/$name.err" &
	FM_PID=$!
	FM_PIDS+=("$FM_PID")
	for _ in $(seq 1 100); do
		[ -f "$WORK/$name.ready" ] && return 0
		kill -0 "$FM_PID" 2>/dev/null || break
		sleep 0.05
	done
	cat "$WORK/$name.err" >&2
	return 1
}
stop_flowmon() { # PID
	kill -TERM "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}
same() { if [ "$1" = "$2" ]; then echo "same"; else echo "CHANGED ($2 -> $1)"; fi; }
FAILED=0
bad() {
	echo "   !! $*"
	FAILED=1
}

echo "== a two-node cluster: node namespaces with kvnet-netd, an underlay, VXLAN between the nodes, a client"
run "$CLUSTER" up 2 --name "$CL_NAME" --dir "$CL_DIR" >"$WORK/up.out" 2>&1 || {
	tail -n 20 "$WORK/up.out" >&2
	die "cluster.sh up 2 failed"
}
# shellcheck disable=SC1090
source "$ENVF"
echo "   node1 $NODE1_NS (underlay $NODE1_UNDERLAY), node2 $NODE2_NS (underlay $NODE2_UNDERLAY)"
echo "   client $CLIENT_NS ($CLIENT_UNDERLAY), VM network $VM_SUBNET, gateway $VM_GATEWAY on every node"

declare -A IP=() MAC=() BID=()
echo
echo "== two VMs on node1: one with the bridge binding, one with the masquerade binding"
for b in bridge masquerade; do
	vm=demo-$b
	t0=$(ms)
	run "$VMPOD" start --env "$ENVF" --node 1 --vm "$vm" --binding "$b" >"$WORK/start-$b.out" 2>"$WORK/start-$b.err" || {
		tail -n 20 "$WORK/start-$b.err" >&2
		die "vmpod.sh start $vm failed"
	}
	IP[$b]=$(kv IP "$WORK/start-$b.out")
	MAC[$b]=$(kv MAC "$WORK/start-$b.out")
	wait_ping "${IP[$b]}" 90 || die "$vm does not answer ping at ${IP[$b]}"
	for _ in $(seq 1 60); do [ -n "$(boot_id "${IP[$b]}")" ] && break; sleep 0.5; done
	BID[$b]=$(boot_id "${IP[$b]}")
	[ -n "${BID[$b]}" ] || die "$vm does not serve its boot id at http://${IP[$b]}/id"
	for _ in $(seq 1 30); do
		[ "$(echo probe | ip netns exec "$CLIENT_NS" timeout 3 socat -T2 - "TCP:${IP[$b]}:7" 2>/dev/null)" = probe ] && break
		sleep 1
	done
	echo "   $vm: pod $(kv POD "$WORK/start-$b.out") on node1, IP ${IP[$b]}, MAC ${MAC[$b]}," \
		"boot id ${BID[$b]}, answering after $(($(ms) - t0)) ms"
done

echo
echo "== live migrations: node1 -> node2 -> node1, max downtime 50 ms, p2p over the underlay (QEMU's stream"
echo "   through the node proxies); from the source's pause on, the VM's packets wait at the target (EARLY below)"
echo "   during each: the client pings the VM every 10 ms and holds a TCP connection to its echo port (7);"
echo "   one more TCP connection per VM stays open across both of its migrations"
declare -A SUMMARY=()
for b in bridge masquerade; do
	vm=demo-$b
	ip=${IP[$b]}
	echo
	echo "-- $vm ($b binding, $ip)"
	echo "\$ ip netns exec $CLIENT_NS flowmon --tcp-echo $ip:7 --tcp-interval-ms 50    # held across both migrations"
	start_flowmon "held-$b" --tcp-echo "$ip:7" --tcp-interval-ms 50 || die "flowmon (held connection to $vm) did not start"
	held=$FM_PID
	for to in 2 1; do
		from=$((3 - to))
		echo "\$ ip netns exec $CLIENT_NS flowmon --ping $ip --interval-ms 10 --tcp-echo $ip:7 &"
		start_flowmon "fm-$b-$to" --ping "$ip" --interval-ms 10 --tcp-echo "$ip:7" --drain-ms 500 ||
			die "flowmon (client of $vm) did not start"
		fm=$FM_PID
		sleep 0.5
		rc=0
		run "$VMPOD" migrate --env "$ENVF" --vm "$vm" --to "$to" --max-downtime-ms 50 \
			>"$WORK/mig.out" 2>"$WORK/mig.err" || rc=$?
		sleep 1
		stop_flowmon "$fm"
		r=$WORK/fm-$b-$to.json
		if [ "$rc" -ne 0 ]; then
			bad "$vm: migration node$from -> node$to FAILED: $(tail -n 3 "$WORK/mig.err" | tr '\n' ' ')"
			continue
		fi
		m=$(kv MIGRATION "$WORK/mig.out")
		nip=$(kv IP "$WORK/mig.out")
		nmac=$(kv MAC "$WORK/mig.out")
		for _ in 1 2 3 4 5; do
			nbid=$(boot_id "$ip")
			[ -n "$nbid" ] && break
			sleep 1
		done
		gap=$(jq '[.ping.maxGapMs, .ping.tailGapMs] | max' "$r" 2>/dev/null)
		lost=$(jq '.ping.lost' "$r" 2>/dev/null)
		closed=$(jq -r '.tcpEcho.closed' "$r" 2>/dev/null)
		echo "   node$from -> node$to: now pod $(kv POD "$WORK/mig.out") on node$(kv NODE "$WORK/mig.out")"
		echo "     network downtime (longest gap between ping replies): ${gap:-?} ms, lost pings: ${lost:-?}" \
			"of $(jq '.ping.sent' "$r" 2>/dev/null)"
		echo "     QEMU downtime: $(jq -r .downtimeMs <<<"$m") ms, total migration $(jq -r .totalMs <<<"$m") ms," \
			"$(jq -r '(.dataBytes // 0) / 1048576 | floor' <<<"$m") MiB transferred"
		if [ "$closed" = false ]; then
			echo "     TCP connection: survived ($(jq '.tcpEcho.echoed' "$r")/$(jq '.tcpEcho.sent' "$r") lines echoed," \
				"longest stall $(jq '.tcpEcho.maxStallMs' "$r") ms)"
		else
			bad "TCP connection to $vm broke during node$from -> node$to: $(jq -c .tcpEcho "$r" 2>/dev/null)"
		fi
		echo "     IP $(same "$nip" "$ip"), MAC $(same "$nmac" "${MAC[$b]}"), guest instance (boot id) $(same "$nbid" "${BID[$b]}")"
		[ "$nip" = "$ip" ] && [ "$nmac" = "${MAC[$b]}" ] && [ "$nbid" = "${BID[$b]}" ] || bad "$vm changed identity"
		SUMMARY[$b]+="node$from->node$to ${gap}ms/${lost}lost/QEMU $(jq -r .downtimeMs <<<"$m")ms; "
		for i in 1 2; do
			s=NODE${i}_SOCK
			echo "\$ kvnetctl --socket \$NODE${i}_SOCK migrations    # node$i"
			"$BIN/kvnetctl" --socket "${!s}" migrations 2>&1 | sed 's/^/     /'
		done
	done
	stop_flowmon "$held"
	h=$WORK/held-$b.json
	if [ "$(jq -r '.tcpEcho.closed' "$h" 2>/dev/null)" = false ]; then
		echo "   held TCP connection to $vm across both migrations: survived" \
			"($(jq '.tcpEcho.echoed' "$h")/$(jq '.tcpEcho.sent' "$h") lines echoed, longest stall $(jq '.tcpEcho.maxStallMs' "$h") ms)"
	else
		bad "the held TCP connection to $vm broke: $(jq -c .tcpEcho "$h" 2>/dev/null)"
	fi
done

echo
echo "== summary"
for b in bridge masquerade; do echo "   demo-$b: ${SUMMARY[$b]:-no migration completed}"; done
if [ "$FAILED" = 0 ]; then
	echo "   every migration completed; IP, MAC and guest instance kept; every TCP connection survived"
else
	echo "   FAILED (see the lines marked !! above)"
fi
exit "$FAILED"
