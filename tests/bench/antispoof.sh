#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# What anti-spoofing costs (docs/SECURITY.md): two kvnet networks made by the same netd, identical but for
# "antiSpoofing" (on: every frame of a port goes through the bridge table kvnet-ports; off: none), each with two
# containers on its bridge. Per round, on and off alternate (so drift hits both): iperf3 TCP throughput and UDP
# packets per second with 64-byte payloads, A -> B on the same bridge (both ports filtered when on), client and
# server pinned to a CPU each. Medians of the rounds, and the median of the per-round on/off ratios. Measures and prints; asserts nothing about speed.
#
# Environment: KVNET_BUILD (default build), BENCH_AS_ROUNDS (7; BENCH_QUICK=1: 2), BENCH_AS_SECONDS (3; BENCH_QUICK=1: 1).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${BENCH_AS_ROUNDS:-}
[ -n "$ROUNDS" ] || { [ "${BENCH_QUICK:-0}" = 1 ] && ROUNDS=2 || ROUNDS=7; }
SECS=${BENCH_AS_SECONDS:-}
[ -n "$SECS" ] || { [ "${BENCH_QUICK:-0}" = 1 ] && SECS=1 || SECS=3; }
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_AS_ROUNDS must be a positive integer, got '$ROUNDS'" >&2; exit 2; }
[[ "$SECS" =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_AS_SECONDS must be a positive integer, got '$SECS'" >&2; exit 2; }
command -v iperf3 >/dev/null || { echo "SKIP: iperf3 not installed"; exit 0; }
# shellcheck source=tests/integration/lib.sh
source "$ROOT/tests/integration/lib.sh"
kv_init
require_kvnet
say() { echo "[antispoof] $*" >&2; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'; }

setup_node
echo '{"policy": {"allowAntiSpoofingOff": true}}' >"$KV_TMP/netd.json" # (relaxing is the node policy's to allow)
start_netd "$NODE_NS" --log-level info --config "$KV_TMP/netd.json"
on=$(render_conf kvnet-basic.conflist 1.1.0)
off=$KV_TMP/off.conflist
jq '.name = "kvoff" | .plugins[0].bridge = "kvbr1" | .plugins[0].antiSpoofing = false | .plugins[0].ipMasq = false |
	.plugins[0].ipam.ranges = [[{"subnet": "10.89.0.0/24", "gateway": "10.89.0.1"}]]' "$on" >"$KV_TMP/off.tmp"
mv "$KV_TMP/off.tmp" "$off"
jq '.plugins[0].ipMasq = false' "$on" >"$KV_TMP/on.tmp" && mv "$KV_TMP/on.tmp" "$on"

# client and server on CPUs of their own (where there are two), so the scheduler's noise is smaller than the effect
PIN_CLIENT="" PIN_SERVER=""
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then PIN_CLIENT="taskset -c 0" PIN_SERVER="taskset -c 1"; fi
declare -A SRC DST SINK
for v in on off; do
	conf=$on
	[ "$v" = off ] && conf=$off
	mkns a_ns "as-a-$v"
	mkns b_ns "as-b-$v"
	cni add "$conf" "cid-a-$v" "$a_ns" eth0 >/dev/null || die "ADD A ($v)"
	ip_b=$(cni add "$conf" "cid-b-$v" "$b_ns" eth0 | result_ip4) || die "ADD B ($v)"
	SRC[$v]=$a_ns
	SINK[$v]=$b_ns
	DST[$v]=$ip_b
	ip netns exec "$b_ns" $PIN_SERVER iperf3 -s -D -B "$ip_b" >/dev/null 2>&1
	ip netns exec "$a_ns" ping -c 2 -W 2 "$ip_b" >/dev/null 2>&1 || die "no connectivity on the '$v' network"
done
on_ports=$(ip netns exec "$NODE_NS" nft -j list set bridge kvnet-ports ports | jq '[.nftables[] | .set? | .elem? // [] | .[]] | length')
say "filtered ports: $on_ports (the 'on' network's two)"
sleep 0.5

tcp() { ip netns exec "${SRC[$1]}" $PIN_CLIENT iperf3 -c "${DST[$1]}" -t "$SECS" -J 2>/dev/null |
	jq '.end.sum_received.bits_per_second / 1e9 * 100 | round / 100'; }
# UDP, 64-byte payloads, unlimited rate: the packets the receiver got per second
pps() { ip netns exec "${SRC[$1]}" $PIN_CLIENT iperf3 -c "${DST[$1]}" -u -b 0 -l 64 -t "$SECS" -J 2>/dev/null |
	jq '(.end.sum.packets - .end.sum.lost_packets) / .end.sum.seconds | round'; }

: >"$KV_TMP/res"
for r in $(seq 1 "$ROUNDS"); do
	for v in on off; do
		t=$(tcp "$v")
		p=$(pps "$v")
		say "round $r $v: TCP $t Gbit/s, UDP $p pps"
		echo "$v $t $p" >>"$KV_TMP/res"
	done
done
drops=$(ip netns exec "$NODE_NS" nft -j list table bridge kvnet-ports |
	jq '[.nftables[] | select(.rule) | .rule.expr[] | select(.counter) | .counter.packets] | add')

med() { awk -v v="$1" -v c="$2" '$1 == v { print $c }' "$KV_TMP/res" | median; }
# the ratio of each round's on to the same round's off, then their median: drift between rounds cancels
ratio() {
	paste -d' ' <(awk -v c="$1" '$1 == "on" { print $c }' "$KV_TMP/res") \
		<(awk -v c="$1" '$1 == "off" { print $c }' "$KV_TMP/res") |
		awk '$2 > 0 { printf "%.3f\n", $1 / $2 }' | median
}
ton=$(med on 2) toff=$(med off 2) pon=$(med on 3) poff=$(med off 3) rt=$(ratio 2) rp=$(ratio 3)
echo "== Anti-spoofing cost: container -> container on one bridge, $ROUNDS rounds of ${SECS}s${PIN_CLIENT:+, client and server pinned}"
printf '%-22s %12s %12s %18s\n' "" "filtered" "unfiltered" "on/off (median of"
printf '%-22s %12s %12s %18s\n' "" "(median)" "(median)" "per-round ratios)"
printf '%-22s %12s %12s %18s\n' "TCP Gbit/s" "$ton" "$toff" "$rt"
printf '%-22s %12s %12s %18s\n' "UDP 64 B packets/s" "$pon" "$poff" "$rp"
echo "ANTISPOOF_TCP_GBPS_ON=$ton ANTISPOOF_TCP_GBPS_OFF=$toff ANTISPOOF_TCP_RATIO=$rt"
echo "ANTISPOOF_UDP_PPS_ON=$pon ANTISPOOF_UDP_PPS_OFF=$poff ANTISPOOF_PPS_RATIO=$rp"
echo "ANTISPOOF_DROPS_DURING_BENCH=$drops"
[ "$ROUNDS" -ge 5 ] && [ "$SECS" -ge 3 ] ||
	echo "(a short run, $ROUNDS x ${SECS}s: single runs vary by 10 % here, too little to resolve a few percent)"
for v in on off; do
	conf=$on
	[ "$v" = off ] && conf=$off
	cni del "$conf" "cid-a-$v" "${SRC[$v]}" eth0 || true
	cni del "$conf" "cid-b-$v" "${SINK[$v]}" eth0 || true
done
netd_term
