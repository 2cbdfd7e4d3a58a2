#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# netd under load (docs/RELIABILITY.md, "Load"): N attachments (default 1,000) added by 4 concurrent workers and
# then deleted (all N live at the peak): on a quiet node; while a writer floods a tap netd does not serve (the
# control: the same CPU taken, the same kernel work); while a VM's guest floods its DHCP port (DHCPDISCOVERs
# written into its tap as fast as one CPU can, from a sandbox of its own). Per case: CNI ADD/DEL
# median and p99 (bench-cni, every call a spawn of the plugin), netd's peak RSS (VmHWM, reset before the case)
# and its CPU time (utime + stime) over the case; for the flood, the frames sent, those netd dropped by the
# guest's allowance ("limited") and the answers. Durable state (fsync) on the build directory's disk.
# Measures and prints; asserts nothing about time.
#
# Environment: KVNET_BUILD (default build), BENCH_LOAD_N (1000; BENCH_QUICK=1: 200), BENCH_LOAD_WORKERS (4).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
N=${BENCH_LOAD_N:-}
[ -n "$N" ] || { [ "${BENCH_QUICK:-0}" = 1 ] && N=200 || N=1000; }
W=${BENCH_LOAD_WORKERS:-4}
[[ "$N" =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_LOAD_N must be a positive integer, got '$N'" >&2; exit 2; }
[[ "$W" =~ ^[1-9][0-9]?$ ]] || { echo "BENCH_LOAD_WORKERS must be 1..99, got '$W'" >&2; exit 2; }
command -v python3 >/dev/null || { echo "SKIP: python3 not installed (the guest's DHCP flood)"; exit 0; }
# shellcheck source=tests/integration/lib.sh
source "$ROOT/tests/integration/lib.sh"
kv_init
require_kvnet
BENCH_TOOL=$KV_BIN/../tests/bench-cni
[ -x "$BENCH_TOOL" ] || { echo "bench: missing $BENCH_TOOL (make test-tools)" >&2; exit 1; }
say() { echo "[load] $*" >&2; }

setup_node
mkdir -p "$ROOT/build/bench"
NETD_STATE=$(mktemp -d -p "$ROOT/build/bench" "load-state.XXXX")
at_exit "rm -rf '$NETD_STATE'"
start_netd "$NODE_NS" --log-level notice
SBX_LIST=""
for w in $(seq 1 "$W"); do
	mkns s "load$w"
	SBX_LIST="${SBX_LIST:+$SBX_LIST,}$(nspath "$s")"
done
conflist=$(render_conf kvnet-basic.conflist 1.1.0)
jq '.plugins[0] + {cniVersion: .cniVersion, name: .name} | .ipMasq = false |
	.ipam.ranges = [[{"subnet": "10.88.0.0/16", "gateway": "10.88.0.1"}]]' "$conflist" >"$KV_TMP/net.json"

# The flooding guest: a VM attachment (its tap in a sandbox of its own) and a writer on the tap's queue.
mkns VM_SBX loadvm
vm_args='IgnoreUnknown=1;K8S_POD_NAMESPACE=default;KVNET_VM_NAME=flooder;KVNET_VM_INTERFACE=default'
res=$(cni add "$conflist" cid-flooder "$VM_SBX" tap0 --args "$vm_args")
VM_MAC=$(jq -r '.interfaces[] | select(.name == "tap0" and .sandbox != null) | .mac' <<<"$res")
[ -n "$VM_MAC" ] || { echo "bench: the VM attachment has no MAC ($res)" >&2; exit 1; }

# netd's CPU time (utime + stime of the whole process, threads that ended included) in ms
CLK_TCK=$(getconf CLK_TCK)
netd_cpu_ms() {
	local f
	read -ra f <"/proc/$NETD_PID/stat"
	echo $(((f[13] + f[14]) * 1000 / CLK_TCK))
}
netd_hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$NETD_PID/status"; }
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

# run_case LABEL: one ADD/DEL storm; prints "LABEL ADD_MEDIAN ADD_P99 DEL_MEDIAN DEL_P99 RSS_KB CPU_S WALL_S".
run_case() {
	local label=$1 c0 c1 t0 t1 out
	echo 5 >"/proc/$NETD_PID/clear_refs" # VmHWM := VmRSS
	c0=$(netd_cpu_ms)
	t0=$(date +%s%N)
	out=$(ip netns exec "$NODE_NS" "$BENCH_TOOL" --plugin "$KV_BIN/kvnet" --config "$KV_TMP/net.json" \
		--netns "$SBX_LIST" --count "$N" --workers "$W" --rounds 1 --label "$label" --cni-path "$KV_BIN" \
		--id-prefix "load-$label") || { echo "bench: $label: bench-cni failed: $out" >&2; return 1; }
	t1=$(date +%s%N)
	c1=$(netd_cpu_ms)
	local line
	line=$(grep '^BENCH_CNI ' <<<"$out")
	echo "$label $(field "$line" ADD_MEDIAN_MS) $(field "$line" ADD_P99_MS) $(field "$line" DEL_MEDIAN_MS)" \
		"$(field "$line" DEL_P99_MS) $(netd_hwm_kb) $(awk -v c=$((c1 - c0)) 'BEGIN { printf "%.2f", c / 1000 }')" \
		"$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 1e9 }')"
}

say "N=$N, $W workers, quiet node"
quiet=$(run_case quiet) || exit 1
before=$(kvctl -o json endpoints | jq '.[] | select(.containerID == "cid-flooder") | .dhcp')

# start_flood SANDBOX COUNT_FILE: DHCPDISCOVERs with the guest's MAC written into SANDBOX's tap0 (what the guest
# would send) until SIGTERM; the number sent goes to COUNT_FILE. Sets FLOOD_PID.
start_flood() {
	ip netns exec "$1" python3 "$ROOT/tests/tools/frames.py" flood-tap tap0 "$2" dhcp4 smac="$VM_MAC" &
	FLOOD_PID=$!
	KV_PIDS+=("$FLOOD_PID")
	sleep 1
}
stop_flood() {
	kill -TERM "$FLOOD_PID" 2>/dev/null
	wait "$FLOOD_PID" 2>/dev/null
}

# The control: the same writer on a tap of a sandbox kvnet does not serve (its frames cost the kernel the same,
# the writer takes the same CPU), so flood/busy is netd's own share.
mkns CTL_SBX loadctl
ip -n "$CTL_SBX" tuntap add dev tap0 mode tap
ip -n "$CTL_SBX" link set tap0 up
start_flood "$CTL_SBX" "$KV_TMP/busy.count"
say "N=$N, $W workers, the same writer on a tap netd does not serve"
busy=$(run_case busy) || exit 1
stop_flood

start_flood "$VM_SBX" "$KV_TMP/flood.count"
say "N=$N, $W workers, a guest flooding its DHCP port"
flood=$(run_case flood) || exit 1
stop_flood
sleep 0.5
after=$(kvctl -o json endpoints | jq '.[] | select(.containerID == "cid-flooder") | .dhcp')
frames=$(cat "$KV_TMP/flood.count" 2>/dev/null || echo 0)
seen=$(($(jq '.discover + .limited + .malformed + .ignored' <<<"$after") - $(jq '.discover + .limited + .malformed + .ignored' <<<"$before")))
limited=$(($(jq .limited <<<"$after") - $(jq .limited <<<"$before")))
answered=$(($(jq .offer <<<"$after") - $(jq .offer <<<"$before")))
cni del "$conflist" cid-flooder "$VM_SBX" tap0 --args "$vm_args"
left=$(kvctl -o json endpoints | jq length)

echo
echo "== netd under load ($(date -u +%FT%TZ), $(nproc) cores, kernel $(uname -r)): $N attachments, $W workers, durable state"
printf '%-8s %10s %10s %10s %10s %14s %10s %8s\n' case "ADD med" "ADD p99" "DEL med" "DEL p99" "netd RSS peak" "netd CPU" wall
for l in "$quiet" "$busy" "$flood"; do
	read -r lab am ap dm dp rss cpu wall <<<"$l"
	printf '%-8s %8s ms %8s ms %8s ms %8s ms %11s KiB %8s s %6s s\n' "$lab" "$am" "$ap" "$dm" "$dp" "$rss" "$cpu" "$wall"
done
echo "== the flood: $frames DISCOVERs written into the guest's tap, $seen seen by netd, $limited dropped by its allowance, $answered answered"
read -r _ qam qap qdm qdp qrss qcpu qwall <<<"$quiet"
read -r _ bam bap bdm bdp brss bcpu bwall <<<"$busy"
read -r _ fam fap fdm fdp frss fcpu fwall <<<"$flood"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.3f", a / b }'; }
echo "LOAD_N=$N"
echo "LOAD_WORKERS=$W"
echo "LOAD_ADD_MEDIAN_MS=$qam"
echo "LOAD_ADD_P99_MS=$qap"
echo "LOAD_DEL_P99_MS=$qdp"
echo "LOAD_NETD_RSS_PEAK_KB=$qrss"
echo "LOAD_NETD_CPU_S=$qcpu"
echo "LOAD_WALL_S=$qwall"
echo "LOAD_BUSY_ADD_P99_MS=$bap"
echo "LOAD_BUSY_NETD_CPU_S=$bcpu"
echo "LOAD_BUSY_FRAMES=$(cat "$KV_TMP/busy.count" 2>/dev/null || echo 0)"
echo "LOAD_FLOOD_ADD_MEDIAN_MS=$fam"
echo "LOAD_FLOOD_ADD_P99_MS=$fap"
echo "LOAD_FLOOD_DEL_P99_MS=$fdp"
echo "LOAD_FLOOD_NETD_RSS_PEAK_KB=$frss"
echo "LOAD_FLOOD_NETD_CPU_S=$fcpu"
echo "LOAD_FLOOD_WALL_S=$fwall"
echo "LOAD_FLOOD_FRAMES=$frames"
echo "LOAD_FLOOD_SEEN=$seen"
echo "LOAD_FLOOD_LIMITED=$limited"
echo "LOAD_FLOOD_ANSWERED=$answered"
echo "RATIO_LOAD_FLOOD_ADD_P99=$(ratio "$fap" "$qap")"
echo "RATIO_LOAD_FLOOD_NETD_CPU=$(ratio "$fcpu" "$qcpu")"
echo "RATIO_LOAD_FLOOD_VS_BUSY_ADD_P99=$(ratio "$fap" "$bap")"
echo "RATIO_LOAD_FLOOD_VS_BUSY_NETD_CPU=$(ratio "$fcpu" "$bcpu")"
echo "LOAD_ENDPOINTS_LEFT=$left"
stop_netd
finish
