#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Cluster-wide claims across two simulated nodes (scripts/cluster.sh: two netds, one VM network, no guests): per
# round a VM's pod is added on node1 (it takes the VM's address and MAC: a new claim in the cluster store), its
# migration target's pod on node2 (the same address, node2 recorded as the target), then node2's
# `migration-activate` takes the claim over (node2 the holder; the gratuitous ARP and the route hook included), then
# the source's completion, both DELs and the VM's release. Timed from the caller's side, each request to its answer: the take-over is
# what a migration's switchover waits for. The claim store is the shared directory (one machine) and, in the same
# run, NetworkClaim objects on the real kube-apiserver + etcd (test peers, make test-deps; etcd on tmpfs without
# fsync), as netd's kube backend uses them. Measures and prints; asserts nothing about time.
#
# Environment: KVNET_BUILD (default build), BENCH_CLAIMS_ROUNDS (20; BENCH_QUICK=1: 5).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${BENCH_CLAIMS_ROUNDS:-}
[ -n "$ROUNDS" ] || { [ "${BENCH_QUICK:-0}" = 1 ] && ROUNDS=5 || ROUNDS=20; }
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_CLAIMS_ROUNDS must be a positive integer, got '$ROUNDS'" >&2; exit 2; }
# shellcheck source=tests/integration/lib.sh
source "$ROOT/tests/integration/lib.sh"
# shellcheck source=tests/integration/lib-kapi.sh
source "$ROOT/tests/integration/lib-kapi.sh"
kv_init
require_kvnet
require_cnichain
require_cmd socat
say() { echo "[claims] $*" >&2; }
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print "-" }'; }
vmargs() { echo "IgnoreUnknown=1;KVNET_VM_NAMESPACE=default;KVNET_VM_NAME=$1;KVNET_VM_INTERFACE=default;KVNET_VM_BINDING=bridge"; }
netd_req() { echo "$2" | socat -t 10 - "UNIX-CONNECT:$1"; }

cluster_up kvb-cl
cluster_claims_conflists
kube=1
if ! ETCD=$(peer_path etcd 2>/dev/null) || ! APISERVER=$(peer_path kube-apiserver 2>/dev/null) ||
	! command -v kubectl >/dev/null || ! command -v openssl >/dev/null; then
	say "no kube-apiserver/etcd peers or kubectl (make test-deps): the directory backend alone"
	kube=0
fi

# rounds BACKEND: ROUNDS VMs through add → target → take-over → completion → DELs; sets RESULT to the rounds that
# went through and the medians in ms (a failed round is said and left out, its namespaces removed)
rounds() {
	local r vm t add tgt act del res ip ok=0
	: >"$KV_TMP/add"
	: >"$KV_TMP/tgt"
	: >"$KV_TMP/act"
	: >"$KV_TMP/del"
	for r in $(seq 1 "$ROUNDS"); do
		vm=bench-$1-$r
		mkns SRC "s$r"
		mkns DST "d$r"
		t=$(date +%s%N)
		if ! res=$(on 1 add "pod-$vm-1" "$SRC" tap0 --args "$(vmargs "$vm")"); then
			say "$1: ADD on node1 failed"
			ip netns del "$SRC"
			ip netns del "$DST"
			continue
		fi
		add=$(ms_since "$t")
		ip=$(result_ip4 <<<"$res")
		t=$(date +%s%N)
		res=$(on 2 add "pod-$vm-2" "$DST" tap0 --args "$(vmargs "$vm")") || say "$1: ADD on node2 failed"
		tgt=$(ms_since "$t")
		[ "$(result_ip4 <<<"$res" 2>/dev/null)" = "$ip" ] || say "$1: the target did not get $ip"
		t=$(date +%s%N)
		res=$(netd_req "$NODE2_SOCK" "{\"op\":\"migration-activate\",\"args\":{\"vmNamespace\":\"default\",\"vmName\":\"$vm\"}}")
		act=$(ms_since "$t")
		[ "$(jq -r .ok <<<"$res" 2>/dev/null)" = true ] || { say "$1: migration-activate: $res"; act=; }
		netd_req "$NODE1_SOCK" "{\"op\":\"migration-source\",\"args\":{\"vmNamespace\":\"default\",\"vmName\":\"$vm\",\"phase\":\"completed\"}}" >/dev/null
		t=$(date +%s%N)
		on 1 del "pod-$vm-1" "$SRC" tap0 --args "$(vmargs "$vm")" >/dev/null
		on 2 del "pod-$vm-2" "$DST" tap0 --args "$(vmargs "$vm")" >/dev/null
		del=$(ms_since "$t")
		# a VM's claims outlive its pods (sticky, for a restart): released as a VM's deletion does
		"$KV_BIN/kvnetctl" --socket "$NODE2_SOCK" vm-release default "$vm" >/dev/null
		"$KV_BIN/kvnetctl" --socket "$NODE1_SOCK" vm-release default "$vm" >/dev/null
		ip netns del "$SRC"
		ip netns del "$DST"
		[ -n "$act" ] || continue
		echo "$add" >>"$KV_TMP/add"
		echo "$tgt" >>"$KV_TMP/tgt"
		echo "$act" >>"$KV_TMP/act"
		echo "$del" >>"$KV_TMP/del"
		ok=$((ok + 1))
	done
	RESULT="$ok $(median <"$KV_TMP/add") $(median <"$KV_TMP/tgt") $(median <"$KV_TMP/act") $(median <"$KV_TMP/del")"
}

say "directory backend: $ROUNDS rounds"
rounds dir
read -r n_dir add_dir tgt_dir act_dir del_dir <<<"$RESULT"
n_kube=0 add_kube=- tgt_kube=- act_kube=- del_kube=-
if [ "$kube" = 1 ]; then
	export KAPI_NETNS=$CLIENT_NS KAPI_ADDR=$CLIENT_UNDERLAY
	claims_apiserver_up >/dev/null
	claims_netds_kube >/dev/null
	if [ "$("$KV_BIN/kvnetctl" --socket "$NODE1_SOCK" -o json cluster-claims | jq -r .backend)" = kube ]; then
		say "kube backend (NetworkClaim objects on kube-apiserver): $ROUNDS rounds"
		rounds kube
		read -r n_kube add_kube tgt_kube act_kube del_kube <<<"$RESULT"
	else
		say "the netds did not come up on the kube backend: its figures left out"
	fi
fi

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else print "-" }'; }
echo "== Cluster claims across two nodes (median ms per request, from the caller's side; $ROUNDS rounds each)"
printf '%-34s %10s %10s %8s\n' step directory kube ratio
printf '%-34s %10s %10s %8s\n' "ADD on node1 (claim taken)" "$add_dir" "$add_kube" "$(ratio "$add_kube" "$add_dir")" \
	"ADD on node2 (migration target)" "$tgt_dir" "$tgt_kube" "$(ratio "$tgt_kube" "$tgt_dir")" \
	"migration-activate (take-over)" "$act_dir" "$act_kube" "$(ratio "$act_kube" "$act_dir")" \
	"both DELs" "$del_dir" "$del_kube" "$(ratio "$del_kube" "$del_dir")"
echo "CLAIMS_ROUNDS=$ROUNDS CLAIMS_DIR_OK=$n_dir CLAIMS_KUBE_OK=$n_kube CLAIMS_ADD_DIR_MS=$add_dir CLAIMS_ADD_KUBE_MS=$add_kube CLAIMS_TARGET_DIR_MS=$tgt_dir CLAIMS_TARGET_KUBE_MS=$tgt_kube CLAIMS_TAKEOVER_DIR_MS=$act_dir CLAIMS_TAKEOVER_KUBE_MS=$act_kube CLAIMS_DEL_DIR_MS=$del_dir CLAIMS_DEL_KUBE_MS=$del_kube"
[ "$n_dir" = "$ROUNDS" ] && { [ "$kube" = 0 ] || [ "$n_kube" = "$ROUNDS" ]; }
