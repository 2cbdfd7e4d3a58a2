#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Two netds (scripts/cluster.sh, 2 nodes) whose claim store is the kube backend: NetworkClaim objects on
# the real kube-apiserver + etcd (test peers, lib-kapi.sh), which listens in the cluster's client
# namespace on its underlay address so that both nodes reach it. The netds are restarted with
# clusterClaims {"backend": "kube", "kubeconfig": ...} after the API server is up.
# Asserts: both netds register their underlay address as node objects; containers on two nodes from one
# range get distinct addresses, each a claim object held by its node; a VM's pod on node1 and a second
# pod of the same VM on node2 get the same IP and MAC, and the claim object says holder node1, target
# node2 (node2 is only the migration target); kvnetctl cluster-claims shows the kube store; deleting the
# target pod clears the target, deleting the VM's pod on node1 leaves the claim detached, the VM started
# on node2 takes it over (same IP), kvnetctl vm-release deletes it, and after every DEL no claim or
# address object is left. A netd started while the API server is down starts and serves; once the API server is
# back, its next claim operation registers its node address.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-kapi.sh"

kv_init
require_kvnet
require_cnichain
require_cmd jq
require_peer ETCD etcd
require_peer APISERVER kube-apiserver
cluster_up kvt-ck
require_cmd openssl kubectl
export KAPI_NETNS=$CLIENT_NS KAPI_ADDR=$CLIENT_UNDERLAY
claims_apiserver_up

claims_netds_kube
ctl() {
	local v=NODE${1}_SOCK
	shift
	"$KV_BIN/kvnetctl" --socket "${!v}" "$@"
}
spec() { k get networkclaims -l "kvnet.io/role=$1" -o json | jq -r ".items[] | $2"; }
assert_eq "$(spec node '.spec.key + "=" + .spec.ips[0]' | sort | tr '\n' ' ')" \
	"node1=$NODE1_UNDERLAY/32 node2=$NODE2_UNDERLAY/32 " "both nodes registered their underlay address (node objects)"
assert_eq "$(ctl 1 -o json cluster-claims | jq -r '.backend + " " + .server')" "kube https://$CLIENT_UNDERLAY:6443" \
	"kvnetctl cluster-claims: the kube store and its server"

cluster_claims_conflists
vmargs() { echo "IgnoreUnknown=1;KVNET_VM_NAMESPACE=default;KVNET_VM_NAME=$1;KVNET_VM_INTERFACE=default;KVNET_VM_BINDING=bridge"; }

# ---------------------------------------------------------------- containers: one range, two nodes
mkns C1 c1
mkns C2 c2
ipc1=$(on 1 add cid-1 "$C1" eth0 | result_ip4)
ipc2=$(on 2 add cid-2 "$C2" eth0 | result_ip4)
assert_ne "$ipc1" "$ipc2" "a container on each node, one range: distinct addresses ($ipc1, $ipc2)"
assert_eq "$(spec claim .spec.holder | sort | tr '\n' ' ')" "node1 node2 " "two claim objects, one held by each node"
assert_eq "$(spec address '.spec.ips[0] | split("/")[0]' | sort -V | tr '\n' ' ')" \
	"$(printf '%s\n' "$ipc1" "$ipc2" | sort -V | tr '\n' ' ')" "an address object for each address"

# ---------------------------------------------------------------- a VM on node1, its second pod on node2
vm=web
mkns SRC src
mkns DST dst
res1=$(on 1 add pod-web-1 "$SRC" tap0 --args "$(vmargs $vm)")
ip1=$(result_ip4 <<<"$res1")
mac1=$(jq -r '.interfaces[] | select(.name=="tap0") | .mac' <<<"$res1")
res2=$(on 2 add pod-web-2 "$DST" tap0 --args "$(vmargs $vm)")
assert_eq "$(result_ip4 <<<"$res2")" "$ip1" "the VM's pod on node2 gets the VM's IP ($ip1)"
assert_eq "$(jq -r '.interfaces[] | select(.name=="tap0") | .mac' <<<"$res2")" "$mac1" "and its MAC"
assert_eq "$(spec claim "select(.spec.key == \"vm/default/$vm/default\") | .spec.holder + \">\" + .spec.target")" "node1>node2" \
	"the claim object: held by node1, node2 only the migration target"
assert_eq "$(ctl 2 -o json cluster-claims | jq -r --arg k "vm/default/$vm/default" '.claims[] | select(.key==$k) | .holder + ">" + .target')" \
	"node1>node2" "kvnetctl cluster-claims on node2 says the same"
assert_eq "$(ctl 2 -o json migrations | jq -r --arg v "default/$vm" '.endpoints[] | select(.vm==$v) | .role + "/" + .state')" \
	"target/prepared" "node2 shows the passive target"

on 2 del pod-web-2 "$DST" tap0 --args "$(vmargs $vm)"
assert_eq "$(spec claim "select(.spec.key == \"vm/default/$vm/default\") | .spec.holder + \">\" + .spec.target")" "node1>" \
	"DEL of the target pod: the target is cleared, node1 still holds the VM"
on 1 del pod-web-1 "$SRC" tap0 --args "$(vmargs $vm)"
assert_eq "$(spec claim "select(.spec.key == \"vm/default/$vm/default\") | .spec.holder + \" \" + (.spec.attached | tostring)")" \
	"node1 false" "DEL of the VM's pod on node1: the VM keeps its claim, detached (another node may take it over)"
mkns D3 d3
res3=$(on 2 add pod-web-3 "$D3" tap0 --args "$(vmargs $vm)")
assert_eq "$(result_ip4 <<<"$res3"):$(spec claim "select(.spec.key == \"vm/default/$vm/default\") | .spec.holder + \">\" + .spec.target")" \
	"$ip1:node2>" "the VM started again on node2 takes the detached claim over: same IP, holder node2"
on 2 del pod-web-3 "$D3" tap0 --args "$(vmargs $vm)"
assert_true "kvnetctl vm-release on node2 releases the VM's claim" ctl 2 vm-release default $vm
assert_eq "$(spec claim "select(.spec.key == \"vm/default/$vm/default\") | .spec.holder")" "" "the claim object is gone"
on 1 del cid-1 "$C1" eth0
on 2 del cid-2 "$C2" eth0
assert_eq "$(k get networkclaims -l 'kvnet.io/role in (claim,address)' -o name | wc -l)" 0 \
	"after every DEL no claim or address object is left"

# ---------------------------------------------------------------- a node whose netd starts while the API server is down
# It starts and serves all the same (its node address registration waits); the first claim operation once the API
# is back registers it.
node2_obj=$(k get networkclaims -l kvnet.io/role=node -o json | jq -r '.items[] | select(.spec.key == "node2") | .metadata.name')
k delete networkclaim "$node2_obj" >/dev/null
kill -TERM "$APISERVER_PID"
wait "$APISERVER_PID" 2>/dev/null || true
n=$(wc -l <"$NODE2_LOG")
echo "$NODE2_NETD_PID" >"$(dirname "$NODE2_SOCK")/netd.pid"
up=0
node_netd_restart "$NODE2_NS" "$NODE2_SOCK" "$NODE2_STATE" "$NODE2_LOG" && up=1
NODE2_NETD_PID=$RESTARTED_NETD_PID
assert_eq "$up" 1 "node2's netd starts and answers while the API server is down"
assert_true "... its log says its address is not registered yet" \
	grep -q "this node's address is not registered yet" <(tail -n +"$((n + 1))" "$NODE2_LOG")
ready=0
kapi_start_apiserver && ready=1
assert_eq "$ready" 1 "kube-apiserver back, ready in $READY_S s"
assert_eq "$(ctl 2 -o json cluster-claims | jq -r .nodeAddressPending)" false \
	"the next claim operation (kvnetctl cluster-claims) registers it"
assert_eq "$(spec node 'select(.spec.key == "node2") | .spec.ips[0]')" "$NODE2_UNDERLAY/32" "... node2's node object is back"

assert_eq "$(grep -c 'AddressSanitizer\|runtime error' "$NODE1_LOG" "$NODE2_LOG" | awk -F: '{s += $2} END {print s}')" 0 \
	"no sanitizer report in the netd logs"

finish
