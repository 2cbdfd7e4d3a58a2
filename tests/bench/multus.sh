#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Attachment time of a pod with the cluster network (kvnet) and 1 or 4 secondary networks (NADs: the
# reference macvlan + host-local), four ways, on one node namespace that also runs the embedded API:
#   direct        the delegates' conflists run one after the other by build/tests/cnichain (what a runtime
#                 would do without a meta plugin: the baseline)
#   kvnet-multus  build/bin/kvnet-multus with the pod and NADs read from the API through netd (apiSocket: netd's
#                 `kube` verb, on the connection netd keeps), network-status not written (the pod's namespace in
#                 systemNamespaces), as the real Multus below
#   kvnet-multus-kubeconfig  the same reading the API itself (kubeconfig only: libcurl loaded, a TLS handshake)
#   kvnet-multus+status  the same, writing network-status (a merge PATCH of the pod)
#   kvnet-multus-parallel  kvnet-multus with parallelDelegates (every delegate's ADD at once)
#   multus        the real Multus thin plugin v4.2.3 (the `multus` test peer; skipped when not built), its
#                 network-status skipped (the pod's name in its systemNamespaces: client-go PUTs pods/status
#                 with a protobuf body the embedded API refuses)
#   kvnet-multus-base  with BENCH_MULTUS_BASE=FILE: that kvnet-multus binary (e.g. another branch's build) with the
#                 kvnet-multus config, to compare two builds in the same run
# Per round and mode: ADD then DEL of a fresh container ID into the same sandbox, the wall time of each
# command ($EPOCHREALTIME around it, a runtime's fork+exec included); modes alternate within a round, in an order
# that rotates from round to round (what a mode leaves running, e.g. an Events poster, slows whichever comes next). Every
# program a runtime would start is started the same way, `ip netns exec NODE` with the bench's environment plus
# the CNI variables: cnichain once per network, the meta plugin once.
# Prints a table (median, p90 of ADD and DEL) and KEY=VALUE lines; measures, asserts nothing.
# Environment: KVNET_BUILD (default build), BENCH_MULTUS_ROUNDS (20; BENCH_QUICK=1: 8), BENCH_MULTUS_BASE,
# BENCH_MULTUS_CLUSTER (kvnet, the default, or bridge: the cluster network is the reference bridge + host-local, a
# Go plugin that takes longer to start, as the usual cluster networks (Calico, Cilium, OVN-Kubernetes) are).
set -euo pipefail
source "$(dirname "$0")/../integration/lib.sh"
source "$(dirname "$0")/../integration/lib-controller.sh"
source "$(dirname "$0")/../integration/lib-multus.sh"
ROUNDS=${BENCH_MULTUS_ROUNDS:-20}
[ "${BENCH_QUICK:-0}" = 1 ] && [ -z "${BENCH_MULTUS_ROUNDS:-}" ] && ROUNDS=8
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_MULTUS_ROUNDS must be a positive integer, got '$ROUNDS'" >&2; exit 2; }

kv_init
require_kvnet
require_cnichain
require_file "$KV_BIN/kvnet-multus"
require_ref_plugins macvlan host-local
REAL=""
if p=$(peer_path multus 2>/dev/null); then REAL=$p/multus; fi
BASE=${BENCH_MULTUS_BASE:-}
CLUSTER=${BENCH_MULTUS_CLUSTER:-kvnet}
[ "$CLUSTER" = kvnet ] || [ "$CLUSTER" = bridge ] || { echo "BENCH_MULTUS_CLUSTER must be kvnet or bridge, got '$CLUSTER'" >&2; exit 2; }
[ -z "$BASE" ] || [ -x "$BASE" ] || { echo "BENCH_MULTUS_BASE: '$BASE' is not an executable" >&2; exit 2; }
ctl_init
start_controller
multus_node
if [ "$CLUSTER" = bridge ]; then
	require_ref_plugins bridge
	jq -n --arg d "$KV_TMP/host-local-cluster" '{cniVersion: "1.0.0", name: "kvtest", plugins: [{type: "bridge",
	  bridge: "kvcl0", isGateway: true, ipam: {type: "host-local", subnet: "10.79.0.0/24", dataDir: $d}}]}' \
		>"$CONF_DIR/10-kvtest.conflist"
fi

for i in 1 2 3 4; do
	jq -n --arg n "mac$i" --arg s "10.7$i.0.0/24" --arg d "$KV_TMP/host-local" \
		'{cniVersion: "1.0.0", name: $n, plugins: [{type: "macvlan", master: "kvmac0", mode: "bridge",
		  ipam: {type: "host-local", subnet: $s, dataDir: $d}}]}' >"$KV_TMP/mac$i.conflist"
	nad "mac$i" default "$(cat "$KV_TMP/mac$i.conflist")"
done
for k in 1 4; do pod default "bench-k$k" "$(seq -s, -f 'mac%g' 1 "$k")"; done
base() { # MODE: the meta plugin's config
	jq -n --arg kc "$KCFG" --arg cd "$CONF_DIR" --arg cache "$KV_TMP/cache-$1" --arg bin "$KV_BIN" --arg sock "$NETD_SOCK" \
		'{cniVersion: "1.0.0", name: "multus-cni-network", type: "kvnet-multus", kubeconfig: $kc, apiSocket: $sock,
		  clusterNetwork: "kvtest", confDir: $cd, cniDir: $cache, binDir: $bin}'
}
base kvnet-multus | jq '.systemNamespaces = ["default"]' >"$KV_TMP/kvnet-multus.conf"
base kvnet-multus-kubeconfig | jq '.systemNamespaces = ["default"] | del(.apiSocket)' >"$KV_TMP/kvnet-multus-kubeconfig.conf"
base kvnet-multus-status >"$KV_TMP/kvnet-multus-status.conf"
base kvnet-multus-parallel | jq '.systemNamespaces = ["default"] | .parallelDelegates = true' >"$KV_TMP/kvnet-multus-parallel.conf"
base multus | jq '.type = "multus" | del(.apiSocket) | .systemNamespaces = ["bench-k1", "bench-k4"]' >"$KV_TMP/multus.conf"

NOW=0
now_ms() { NOW=${EPOCHREALTIME/./}; }

declare -A PODUID
for k in 1 4; do PODUID[$k]=$(k get pod "bench-k$k" -o jsonpath='{.metadata.uid}'); done
unset KVNET_MULTUS_INTERFACE
# as cni() starts cnichain (no `env -i` in between: that would be one more program start than the baseline has)
meta() { # CMD BIN CONF K CID
	CNI_COMMAND="$1" CNI_CONTAINERID="$5" CNI_NETNS="$(nspath "$SBX")" CNI_IFNAME=eth0 CNI_PATH="$KV_BIN:$REF_CNI_DIR" \
		CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=bench-k$4;K8S_POD_UID=${PODUID[$4]}" \
		ip netns exec "$NODE_NS" "$2" <"$3" >/dev/null 2>>"$KV_TMP/bench.err"
}

direct() { # CMD K CID
	local i
	if [ "$1" = add ]; then
		cni add "$CONF_DIR/10-kvtest.conflist" "$3" "$SBX" eth0 >/dev/null
		for i in $(seq 1 "$2"); do cni add "$KV_TMP/mac$i.conflist" "$3" "$SBX" "net$i" >/dev/null; done
	else
		for i in $(seq "$2" -1 1); do cni del "$KV_TMP/mac$i.conflist" "$3" "$SBX" "net$i" >/dev/null; done
		cni del "$CONF_DIR/10-kvtest.conflist" "$3" "$SBX" eth0 >/dev/null
	fi
}

declare -A ADD DEL
MODES=(direct kvnet-multus kvnet-multus-kubeconfig kvnet-multus-status kvnet-multus-parallel)
[ -n "$REAL" ] && MODES+=(multus)
[ -n "$BASE" ] && MODES+=(kvnet-multus-base)
one() { # MODE K ROUND
	local cid="c-$1-$2-$3" t0 t1 t2
	case $1 in
	direct)
		now_ms; t0=$NOW; direct add "$2" "$cid"; now_ms; t1=$NOW; direct del "$2" "$cid"; now_ms; t2=$NOW ;;
	multus)
		now_ms; t0=$NOW; meta ADD "$REAL" "$KV_TMP/multus.conf" "$2" "$cid"; now_ms; t1=$NOW
		meta DEL "$REAL" "$KV_TMP/multus.conf" "$2" "$cid"; now_ms; t2=$NOW ;;
	kvnet-multus-base)
		now_ms; t0=$NOW; meta ADD "$BASE" "$KV_TMP/kvnet-multus.conf" "$2" "$cid"; now_ms; t1=$NOW
		meta DEL "$BASE" "$KV_TMP/kvnet-multus.conf" "$2" "$cid"; now_ms; t2=$NOW ;;
	*)
		now_ms; t0=$NOW; meta ADD "$KV_BIN/kvnet-multus" "$KV_TMP/$1.conf" "$2" "$cid"; now_ms; t1=$NOW
		meta DEL "$KV_BIN/kvnet-multus" "$KV_TMP/$1.conf" "$2" "$cid"; now_ms; t2=$NOW ;;
	esac
	ADD[$1,$2]+="$(((t1 - t0) / 1000)) "
	DEL[$1,$2]+="$(((t2 - t1) / 1000)) "
}

stat() { # "N N N ..." PCT: the value at that percentile (nearest rank)
	tr ' ' '\n' <<<"$1" | grep . | sort -n | awk -v p="$2" '{v[NR] = $1} END {i = int((NR * p + 99) / 100); if (i < 1) i = 1; print v[i]}'
}

for k in 1 4; do
	for r in $(seq 1 "$ROUNDS"); do
		for j in "${!MODES[@]}"; do # the order rotates each round: no mode always follows the same one
			m=${MODES[(j + r) % ${#MODES[@]}]}
			one "$m" "$k" "$r" || { tail -n 5 "$KV_TMP/bench.err"; die "$m, $k network(s), round $r failed"; }
		done
	done
done
[ "$(ip -n "$SBX" -o link show | grep -vc ' lo:' || true)" = 0 ] || die "the sandbox is not empty after the runs"

echo "== kvnet-multus: attachment time, cluster network ($CLUSTER) + N secondary networks (macvlan), $ROUNDS rounds, ms"
printf '%-4s %-22s %10s %8s %10s %8s\n' N mode "ADD med" p90 "DEL med" p90
for k in 1 4; do
	for m in "${MODES[@]}"; do
		printf '%-4s %-22s %10s %8s %10s %8s\n' "$k" "$m" "$(stat "${ADD[$m,$k]}" 50)" "$(stat "${ADD[$m,$k]}" 90)" \
			"$(stat "${DEL[$m,$k]}" 50)" "$(stat "${DEL[$m,$k]}" 90)"
	done
done
[ -n "$REAL" ] || echo "(the real Multus is not built: make test-deps)"
echo "MULTUS_CLUSTER=$CLUSTER"
for k in 1 4; do
	for m in "${MODES[@]}"; do
		key=$(tr 'a-z-' 'A-Z_' <<<"$m")
		echo "MULTUS_N${k}_${key}_ADD_MS=$(stat "${ADD[$m,$k]}" 50) MULTUS_N${k}_${key}_DEL_MS=$(stat "${DEL[$m,$k]}" 50)"
	done
	d=$(stat "${ADD[direct,$k]}" 50)
	echo "MULTUS_N${k}_KVNET_RATIO=$(awk -v a="$(stat "${ADD[kvnet-multus,$k]}" 50)" -v d="$d" 'BEGIN {printf "%.2f", a / d}')" \
		"MULTUS_N${k}_KVNET_KUBECONFIG_RATIO=$(awk -v a="$(stat "${ADD[kvnet-multus-kubeconfig,$k]}" 50)" -v d="$d" 'BEGIN {printf "%.2f", a / d}')" \
		"MULTUS_N${k}_KVNET_STATUS_RATIO=$(awk -v a="$(stat "${ADD[kvnet-multus-status,$k]}" 50)" -v d="$d" 'BEGIN {printf "%.2f", a / d}')" \
		"MULTUS_N${k}_KVNET_PARALLEL_RATIO=$(awk -v a="$(stat "${ADD[kvnet-multus-parallel,$k]}" 50)" -v d="$d" 'BEGIN {printf "%.2f", a / d}')"
	[ -n "$REAL" ] && echo "MULTUS_N${k}_REAL_RATIO=$(awk -v a="$(stat "${ADD[multus,$k]}" 50)" -v d="$d" 'BEGIN {printf "%.2f", a / d}')"
	[ -n "$BASE" ] && echo "MULTUS_N${k}_KVNET_BASE_RATIO=$(awk -v a="$(stat "${ADD[kvnet-multus-base,$k]}" 50)" -v d="$d" 'BEGIN {printf "%.2f", a / d}')"
done
stop_netd >/dev/null
stop_controller >/dev/null
