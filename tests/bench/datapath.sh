#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# VM NIC datapath: how kvnet joins the VM's tap to the node (tc u32 + mirred redirect between the
# tap and a sandbox veth) against an in-sandbox bridge (KubeVirt's bridge binding) and a plain
# veth straight onto the node bridge (the physical limit). The "guest" is a network namespace on a
# veth that stands in for the tap (a tap needs QEMU behind it; a veth end takes the same redirect).
# iperf3 TCP throughput and ping latency, guest -> node, in namespaces this script creates.
# Measures and prints; asserts nothing.
set -eu
DURATION=${BENCH_DP_SECONDS:-4}
command -v iperf3 >/dev/null || { echo "SKIP: iperf3 not installed"; exit 0; }
SUF=$(printf '%04x%04x' $RANDOM $RANDOM)
NSES=()
cleanup() {
	for ns in "${NSES[@]}"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
		ip netns del "$ns" 2>/dev/null || true
	done
}
trap cleanup EXIT
mkns() { ip netns add "$1"; NSES+=("$1"); ip -n "$1" link set lo up; }

# setup VARIANT: node ns (bridge 10.88.0.1/24, iperf3 server) and guest ns (10.88.0.2/24).
setup() {
	local v=$1 node=kvb-n-$v-$SUF sbx=kvb-s-$v-$SUF guest=kvb-g-$v-$SUF
	mkns "$node"
	mkns "$guest"
	ip -n "$node" link add kvbr0 type bridge
	ip -n "$node" addr add 10.88.0.1/24 dev kvbr0
	ip -n "$node" link set kvbr0 up
	ip netns exec "$node" sysctl -qw net.bridge.bridge-nf-call-iptables=0 2>/dev/null || true
	case $v in
	veth)
		ip -n "$node" link add h0 type veth peer name eth0 netns "$guest"
		;;
	redirect | sbxbridge)
		mkns "$sbx"
		ip -n "$node" link add h0 type veth peer name sv0 netns "$sbx"
		ip -n "$sbx" link add tapx type veth peer name eth0 netns "$guest"
		ip -n "$sbx" link set sv0 up
		ip -n "$sbx" link set tapx up
		if [ "$v" = redirect ]; then
			for d in "sv0 tapx" "tapx sv0"; do
				set -- $d
				ip netns exec "$sbx" tc qdisc add dev "$1" clsact
				ip netns exec "$sbx" tc filter add dev "$1" ingress u32 match u32 0 0 \
					action mirred egress redirect dev "$2"
			done
		else
			ip -n "$sbx" link add k6t type bridge
			ip netns exec "$sbx" sysctl -qw net.bridge.bridge-nf-call-iptables=0 2>/dev/null || true
			ip -n "$sbx" link set sv0 master k6t
			ip -n "$sbx" link set tapx master k6t
			ip -n "$sbx" link set k6t up
		fi
		;;
	esac
	ip -n "$node" link set h0 master kvbr0
	ip -n "$node" link set h0 up
	ip -n "$guest" addr add 10.88.0.2/24 dev eth0
	ip -n "$guest" link set eth0 up
	NODE=$node GUEST=$guest
}

measure() {
	local v=$1
	setup "$v"
	ip netns exec "$NODE" iperf3 -s -D -1 -B 10.88.0.1 >/dev/null 2>&1
	sleep 0.5
	ip netns exec "$GUEST" ping -c 3 -W 1 10.88.0.1 >/dev/null 2>&1 || { echo "$v: no connectivity"; return 1; }
	local gbps rtt
	gbps=$(ip netns exec "$GUEST" iperf3 -c 10.88.0.1 -t "$DURATION" -J 2>/dev/null |
		jq '.end.sum_received.bits_per_second / 1e9 * 100 | round / 100')
	rtt=$(ip netns exec "$GUEST" ping -q -c 200 -i 0.005 10.88.0.1 2>/dev/null |
		sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p')
	printf '%-12s %10s %14s\n' "$v" "$gbps" "$rtt"
	echo "BENCH_DATAPATH VARIANT=$v TCP_GBPS=$gbps RTT_AVG_MS=$rtt" >>"$KV_DP_OUT"
}

KV_DP_OUT=$(mktemp)
echo "== VM NIC datapath (guest -> node bridge; iperf3 ${DURATION}s TCP, 200 pings)"
printf '%-12s %10s %14s\n' variant "TCP Gbit/s" "RTT avg ms"
for v in veth redirect sbxbridge; do
	measure "$v"
done
cat "$KV_DP_OUT"
red=$(sed -n 's/.*VARIANT=redirect TCP_GBPS=\([0-9.]*\).*/\1/p' "$KV_DP_OUT")
br=$(sed -n 's/.*VARIANT=sbxbridge TCP_GBPS=\([0-9.]*\).*/\1/p' "$KV_DP_OUT")
veth=$(sed -n 's/.*VARIANT=veth TCP_GBPS=\([0-9.]*\).*/\1/p' "$KV_DP_OUT")
echo "RATIO_REDIRECT_VS_VETH=$(jq -n "$red / $veth * 100 | round / 100")"
echo "RATIO_REDIRECT_VS_SBXBRIDGE=$(jq -n "$red / $br * 100 | round / 100")"
rm -f "$KV_DP_OUT"
