#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# CNI ADD/DEL latency: kvnet (plugin + netd) against the reference bridge + host-local (ipMasq).
# See tests/bench/README.md. Measures and prints; asserts nothing about time.
#
# Environment:
#   KVNET_BUILD      build directory (default build)
#   BENCH_PLUGINS    plugins to run (default "kvnet reference")
#   BENCH_LARGE      N of the large runs (default 1000; kvnet's 2-worker run uses the same total)
#   BENCH_REF_W2     total N of the 2-worker run both plugins do (default 200); the reference
#                    takes minutes for 2 x 500, so only kvnet runs that one
#   BENCH_MEDIUM     N of the medium run (default 100)
#   BENCH_ROUNDS1    repetitions of the N=1 run (default 20)
#   BENCH_TIMEOUT    seconds allowed per case (default 600)
#   BENCH_QUICK=1    smaller run (~1-2 minutes): N=1 x10, 100, 300, 2-worker 2 x 50
#   BENCH_WORKDIR    where netd's state dir goes (default build/bench: a real disk; /dev/shm takes the disk out)
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${KVNET_BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
PLUGINS=${BENCH_PLUGINS:-kvnet reference}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	LARGE=${BENCH_LARGE:-300} MEDIUM=${BENCH_MEDIUM:-100} ROUNDS1=${BENCH_ROUNDS1:-10} REF_W2=${BENCH_REF_W2:-100}
else
	LARGE=${BENCH_LARGE:-1000} MEDIUM=${BENCH_MEDIUM:-100} ROUNDS1=${BENCH_ROUNDS1:-20} REF_W2=${BENCH_REF_W2:-200}
fi
CASE_TIMEOUT=${BENCH_TIMEOUT:-600}
# kvnet only: N attachments, each in a sandbox of its own (the flatness figure on a realistic node)
SPREAD=${BENCH_SPREAD:-500}
BENCH_TOOL="$BUILD/tests/bench-cni"
REF_DIR=/usr/lib/cni

mkdir -p "$ROOT/build/bench"
STAMP=$(date +%Y%m%d-%H%M%S)
OUT="$ROOT/build/bench/bench-cni-$STAMP.txt"
exec > >(tee "$OUT") 2>&1

SUFFIX=$(printf '%04x%04x' $RANDOM $RANDOM)
# The state dir lives on the build directory's disk (not tmpfs) so that netd's fsync is real.
WORK=$(mktemp -d -p "${BENCH_WORKDIR:-$ROOT/build/bench}" "run-$SUFFIX.XXXX")
NSES=()
NETD_PID=
BENCH_PID=

stop_netd() {
	if [ -n "$NETD_PID" ]; then
		kill "$NETD_PID" 2>/dev/null
		wait "$NETD_PID" 2>/dev/null
		NETD_PID=
	fi
}

del_nses() {
	local ns
	for ns in "${NSES[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	NSES=()
}

cleanup() {
	[ -n "$BENCH_PID" ] && kill "$BENCH_PID" 2>/dev/null && wait "$BENCH_PID" 2>/dev/null
	stop_netd
	del_nses
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
	echo "bench: $*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
[ -x "$BENCH_TOOL" ] || die "missing $BENCH_TOOL (run 'make test-tools')"

new_ns() { # name
	ip netns add "$1" || return 1
	NSES+=("$1")
	ip -n "$1" link set lo up
}

# Starts kvnet-netd in node namespace $1 with socket $2 and state dir $3 (durable fsync: default).
start_netd() {
	local node=$1 sock=$2 state=$3 i
	mkdir -p "$state"
	ip netns exec "$node" "$BUILD/bin/kvnet-netd" --socket "$sock" --state-dir "$state" \
		>"$WORK/netd.log" 2>&1 &
	NETD_PID=$!
	for i in $(seq 1 100); do
		if [ -S "$sock" ] && ip netns exec "$node" "$BUILD/bin/kvnetctl" --socket "$sock" status >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$NETD_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "bench: kvnet-netd did not become ready; its log:" >&2
	sed 's/^/  netd: /' "$WORK/netd.log" >&2
	stop_netd
	return 1
}

write_config() { # plugin dir sock -> path of the config
	local plugin=$1 dir=$2 sock=$3
	case "$plugin" in
	kvnet)
		cat >"$dir/net.json" <<EOF
{"cniVersion":"1.1.0","name":"kvbench","type":"kvnet","binding":"bridge","bridge":"kvbr0",
 "ipMasq":true,"ipam":{"ranges":[[{"subnet":"10.88.0.0/16"}]]},"socket":"$sock"}
EOF
		;;
	reference)
		cat >"$dir/net.json" <<EOF
{"cniVersion":"1.0.0","name":"refbench","type":"bridge","bridge":"kvbr0","isGateway":true,
 "ipMasq":true,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.88.0.0/16"}]],
 "dataDir":"$dir/host-local"}}
EOF
		;;
	esac
	echo "$dir/net.json"
}

plugin_bin() {
	case "$1" in
	kvnet) echo "$BUILD/bin/kvnet" ;;
	reference) echo "$REF_DIR/bridge" ;;
	esac
}

# One case in fresh namespaces: plugin N workers rounds. Appends the BENCH_CNI line to $RESULTS.
CASE_NO=0
run_case() {
	local plugin=$1 n=$2 workers=$3 rounds=$4 spread=${5:-0} w netns_list="" line rc i label=$1 extra=()
	CASE_NO=$((CASE_NO + 1))
	local dir="$WORK/case$CASE_NO" node="kvt-bnode-$SUFFIX-$CASE_NO"
	mkdir -p "$dir"
	new_ns "$node" || return 1
	ip netns exec "$node" sysctl -qw net.ipv4.ip_forward=1
	for w in $(seq 1 "$workers"); do
		if [ "$spread" = 1 ]; then
			# one sandbox per attachment, as on a node where every pod has its own
			for i in $(seq 0 $((n / workers - 1))); do
				new_ns "kvt-bsb-$SUFFIX-$CASE_NO-$w-$i" || return 1
			done
		else
			new_ns "kvt-bsb-$SUFFIX-$CASE_NO-$w" || return 1
		fi
		netns_list="${netns_list:+$netns_list,}/run/netns/kvt-bsb-$SUFFIX-$CASE_NO-$w"
	done
	if [ "$spread" = 1 ]; then
		extra=(--sandbox-per-attachment)
		label="$plugin-pods"
	fi
	local sock="$dir/netd.sock"
	if [ "$plugin" = kvnet ]; then
		start_netd "$node" "$sock" "$dir/state" || { del_nses; return 1; }
	fi
	local conf
	conf=$(write_config "$plugin" "$dir" "$sock")
	echo "# $plugin N=$n workers=$workers rounds=$rounds ..." >&2
	# In the background so that a signal reaches the trap at once.
	timeout "$CASE_TIMEOUT" ip netns exec "$node" "$BENCH_TOOL" --plugin "$(plugin_bin "$plugin")" \
		--config "$conf" --netns "$netns_list" --count "$n" --workers "$workers" --rounds "$rounds" \
		--label "$label" --cni-path "$BUILD/bin:$REF_DIR" --id-prefix "bench$CASE_NO" "${extra[@]}" >"$dir/out" &
	BENCH_PID=$!
	wait "$BENCH_PID"
	rc=$?
	BENCH_PID=
	line=$(grep '^BENCH_CNI ' "$dir/out")
	if [ "$plugin" = kvnet ] && [ $rc = 0 ]; then
		# After all DELs netd must have no endpoints left (a sanity check of the run, not timing).
		local left
		left=$(ip netns exec "$node" "$BUILD/bin/kvnetctl" --socket "$sock" -o json endpoints 2>/dev/null |
			tr -d ' \n')
		case "$left" in
		*'"containerID"'*) echo "bench: warning: kvnet endpoints left after DEL: $left" >&2 ;;
		esac
	fi
	stop_netd
	del_nses
	if [ $rc != 0 ]; then
		[ $rc = 124 ] && echo "bench: $plugin N=$n workers=$workers timed out after ${CASE_TIMEOUT}s" >&2
		echo "bench: $plugin N=$n workers=$workers failed (rc $rc)" >&2
		[ "$plugin" = kvnet ] && sed 's/^/  netd: /' "$WORK/netd.log" 2>/dev/null | tail -20 >&2
		return 1
	fi
	echo "$line"
	echo "$line" >>"$RESULTS"
}

field() { # line KEY
	local kv
	for kv in $1; do
		case "$kv" in "$2"=*) echo "${kv#*=}"; return ;; esac
	done
	echo "-"
}

RESULTS="$WORK/results"
: >"$RESULTS"
FAILED=0

echo "== kvnet CNI ADD/DEL latency benchmark ($(date -u +%FT%TZ), $(nproc) cores, kernel $(uname -r))"
echo "== each invocation: spawn of the plugin binary with config on stdin, wall time (CLOCK_MONOTONIC)"
echo "== kvnet-netd: durable state (fsync, the default), state dir on $(stat -f -c %T "$WORK") ($WORK)"
echo "== reference: $REF_DIR/bridge + host-local, ipMasq (iptables-nft), isGateway"
echo "BENCH_CNI_NETD_FSYNC=durable"

for plugin in $PLUGINS; do
	bin=$(plugin_bin "$plugin")
	if [ -z "$bin" ]; then
		echo "bench: unknown plugin '$plugin'" >&2
		FAILED=1
		continue
	fi
	if [ ! -x "$bin" ] || { [ "$plugin" = kvnet ] && [ ! -x "$BUILD/bin/kvnet-netd" ]; }; then
		echo "bench: $plugin: $bin (or kvnet-netd) missing, skipped" >&2
		FAILED=1
		continue
	fi
	if [ "$plugin" = reference ] && ! command -v iptables >/dev/null; then
		echo "bench: reference: iptables (iptables-nft) is not installed, skipped" >&2
		FAILED=1
		continue
	fi
	run_case "$plugin" 1 1 "$ROUNDS1" || FAILED=1
	run_case "$plugin" "$MEDIUM" 1 1 || FAILED=1
	run_case "$plugin" "$LARGE" 1 1 || FAILED=1
	[ "$plugin" = kvnet ] && { run_case "$plugin" "$LARGE" 2 1 || FAILED=1; }
	[ "$plugin" = kvnet ] && { run_case "$plugin" "$SPREAD" 1 1 1 || FAILED=1; }
	run_case "$plugin" "$REF_W2" 2 1 || FAILED=1
done

echo
echo "== results (ms; N=1 is the median over $ROUNDS1 fresh single attachments; first10/last10 = median ADD of the first/last ten)"
printf '%-10s %6s %7s %10s %10s %10s %10s %18s\n' plugin N workers "ADD med" "ADD p99" "DEL med" "DEL p99" "first10/last10 ADD"
while read -r line; do
	printf '%-10s %6s %7s %10s %10s %10s %10s %18s\n' "$(field "$line" PLUGIN)" "$(field "$line" N)" \
		"$(field "$line" WORKERS)" "$(field "$line" ADD_MEDIAN_MS)" "$(field "$line" ADD_P99_MS)" \
		"$(field "$line" DEL_MEDIAN_MS)" "$(field "$line" DEL_P99_MS)" \
		"$(field "$line" ADD_FIRST10_MS) / $(field "$line" ADD_LAST10_MS)"
done <"$RESULTS"

echo
echo "== ratio kvnet / reference (below 1: kvnet is faster)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.3f", a / b }'; }
lookup() { # plugin n workers -> line
	grep -E "PLUGIN=$1 N=$2 WORKERS=$3 " "$RESULTS" | head -1
}
for spec in "1 1" "$MEDIUM 1" "$LARGE 1" "$LARGE 2" "$REF_W2 2"; do
	set -- $spec
	k=$(lookup kvnet "$1" "$2")
	r=$(lookup reference "$1" "$2")
	[ -n "$k" ] && [ -n "$r" ] || continue
	suffix="N$1"
	[ "$2" != 1 ] && suffix="${suffix}_W$2"
	for m in ADD_MEDIAN ADD_P99 DEL_MEDIAN DEL_P99; do
		echo "RATIO_${m}_${suffix}=$(ratio "$(field "$k" "${m}_MS")" "$(field "$r" "${m}_MS")")"
	done
done


# the chart of the same figures (docs/benchmarks.md), and its rendering when rsvg-convert is there
SVG="${OUT%.txt}.svg"
if /usr/bin/python3 "$ROOT/tests/tools/svgchart.py" cni "$RESULTS" "$SVG"; then
	echo "BENCH_CNI_SVG=$SVG"
	if command -v rsvg-convert >/dev/null && rsvg-convert -o "${SVG%.svg}.png" "$SVG"; then
		echo "BENCH_CNI_PNG=${SVG%.svg}.png"
	fi
fi
echo
echo "BENCH_CNI_TOTAL_S=$SECONDS"
echo "== full output saved to $OUT"
exit $FAILED
