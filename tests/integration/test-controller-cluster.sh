#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kvnet-controller --cluster on the real kube-apiserver + etcd (lib-kapi.sh, authorization RBAC), with kvnet's CRDs
# from deploy/crds, as deploy/'s service account kvnet-controller (a token of it; its ClusterRole and Role only):
# the same controllers as --embedded, their store a mirror of the API server's objects. Two Node objects stand in
# for kubelets' registrations (no kubelet here: kvnet-node, not run by this test, is the node side). Checked through
# kubectl: a VirtualMachine applied → its VMI (owned by the VM) and its launcher pod (owned by the VMI, on one of
# the nodes, its networks annotation), VMI phase Scheduled with the node, VM status; two replicas with leader
# election: one acts, the standby takes over after the leader is killed (the time printed) and handles the next
# VM; stopping the VM deletes its VMI; the API server down longer than the renew deadline: the leader stops and
# exits (to be restarted), the next replica leads and handles a new VM, nothing doubled; SIGTERM gives the Lease back;
# a pass whose writes take longer than the renew deadline does not cost the leader its Lease.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-kapi.sh"

kv_init
require_cmd openssl kubectl jq
require_peer ETCD etcd
require_peer APISERVER kube-apiserver
require_file "$KV_BIN/kvnet-controller"
CRDS=${KVNET_CRDS:-$KV_ROOT/deploy/crds}
[ -d "$CRDS" ] || skip "no CRDs in $CRDS"
source "$KV_ROOT/scripts/lib/guest-vm.sh"

# the client's rate flags: out of range or not numbers, refused naming the flag and the value, before anything runs
for bad in "--kube-api-qps 0" "--kube-api-qps 5x" "--kube-api-burst 0" "--kube-api-burst -3"; do
	rc=0
	# shellcheck disable=SC2086 # the flag and its value, two words
	out=$("$KV_BIN/kvnet-controller" --cluster --kubeconfig /nonexistent $bad 2>&1) || rc=$?
	assert_eq "$rc" 2 "kvnet-controller --cluster $bad: exit 2"
	assert_true "... naming the flag and the value ($out)" grep -q -- "${bad% *}: .*got '${bad#* }'" <<<"$out"
done

ready=0
KAPI_AUTHZ=RBAC kapi_up && ready=1
assert_eq "$ready" 1 "kube-apiserver + etcd ready (authorization RBAC)"
[ "$ready" = 1 ] || finish
k apply -f "$CRDS" >/dev/null
assert_true "kvnet's CRDs are established" k wait --for condition=established crd --all --timeout=60s
# the controller runs as deploy/'s service account kvnet-controller, with its RBAC only: a write it needs and
# may not do fails this test
k apply -f "$KV_ROOT/deploy/00-namespace.yaml" -f "$KV_ROOT/deploy/10-rbac-controller.yaml" >/dev/null
tok=$(k -n kvnet-system create token kvnet-controller --duration=1h)
kapi_kubeconfig "$KV_TMP/controller.kubeconfig" --token "$tok"

for n in node1 node2; do
	k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata: {name: $n, labels: {kubernetes.io/hostname: $n, kubevirt.io/schedulable: "true"}}
EOF
	k patch node "$n" --subresource=status --type=merge -p '{"status": {"capacity": {"cpu": "32", "memory": "8Gi", "pods": "110"},
	  "allocatable": {"cpu": "32", "memory": "8Gi", "pods": "110"},
	  "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "stand-in", "lastHeartbeatTime": null}]}}' >/dev/null
done
assert_eq "$(k get nodes -o name | wc -l)" 2 "two Node objects (stand-ins for the kubelets' registrations)"

controller() { # controller ID [ARG...]: a replica in the background; sets CTL_PID
	local id=$1
	shift
	bg ip netns exec "$NS" "$KV_BIN/kvnet-controller" --cluster --kubeconfig "$KV_TMP/controller.kubeconfig" --leader-elect \
		--leader-elect-id "$id" --leader-elect-timing 3000,2000,500 --log-level debug "$@" \
		>"$KV_TMP/controller-$id.log" 2>&1
	CTL_PID=$BG_PID
}
vm() { guest_vm_yaml "$1" bridge "" "" 128Mi | k apply -f - >/dev/null; }
vmi_field() { k get vmi "$1" -o jsonpath="{$2}" 2>/dev/null; }
wait_for() { # wait_for TENTHS CMD...: until CMD succeeds
	local n=$1
	shift
	for _ in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}
scheduled() { [ "$(vmi_field "$1" .status.phase)" = Scheduled ] && [ -n "$(vmi_field "$1" .status.nodeName)" ]; }
holder() { k -n kvnet-system get lease kvnet-controller -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }

controller c1
C1=$CTL_PID
assert_true "replica c1 leads (the Lease kvnet-system/kvnet-controller)" wait_for 150 grep -q "c1 is the leader" "$KV_TMP/controller-c1.log"
controller c2
C2=$CTL_PID
assert_true "replica c2 stands by, seeing c1 lead" wait_for 150 grep -q "the leader is c1" "$KV_TMP/controller-c2.log"

vm web1
assert_true "VM web1 applied: its VMI is Scheduled on a node" wait_for 300 scheduled web1
node=$(vmi_field web1 .status.nodeName)
assert_true "... node1 or node2 ($node)" grep -qx 'node[12]' <<<"$node"
assert_eq "$(k get vmi web1 -o jsonpath='{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}')" \
	VirtualMachine/web1 "... the VMI is owned by the VM"
pod=$(k get pods -l kubevirt.io=virt-launcher,vm.kubevirt.io/name=web1 -o json | jq '.items[0] // empty')
assert_eq "$(jq -r '.spec.nodeName' <<<"$pod")" "$node" "... its launcher pod is bound to $node"
assert_eq "$(jq -r '.metadata.ownerReferences[0].kind' <<<"$pod")" VirtualMachineInstance "... owned by the VMI"
assert_true "VM status: created" wait_for 50 test "$(k get vm web1 -o jsonpath='{.status.created}')" = true
assert_false "c2 (standby) wrote nothing" grep -q "controllers running" "$KV_TMP/controller-c2.log"

kill -KILL "$C1"
t0=$(date +%s%3N)
assert_true "c1 killed: c2 takes over" wait_for 200 grep -q "c2 is the leader" "$KV_TMP/controller-c2.log"
log "standby took over in $(($(date +%s%3N) - t0)) ms (lease 3 s, retry 0.5 s)"
assert_eq "$(holder)" c2 "... the Lease names c2"
vm web2
assert_true "c2 handles VM web2: Scheduled" wait_for 300 scheduled web2
assert_eq "$(k get pods -l kubevirt.io=virt-launcher -o name | wc -l)" 2 "... one launcher pod per VM, none doubled by the takeover"

k patch vm web2 --type=merge -p '{"spec": {"runStrategy": "Halted"}}' >/dev/null
assert_true "VM web2 halted: its VMI is deleted" wait_for 300 sh -c "! ip netns exec $NS kubectl --kubeconfig $KCFG get vmi web2"

# the API server restarted for longer than the renew deadline: the leader cannot renew, stops acting and exits
# (client-go's rule: its Deployment restarts it); the replica started next leads and finds the objects as they are
kill -TERM "$APISERVER_PID"
wait "$APISERVER_PID" 2>/dev/null || true
ready=0
kapi_start_apiserver && ready=1
assert_eq "$ready" 1 "kube-apiserver restarted (in $READY_S s)"
assert_true "c2, unable to renew while the API server was down, stopped leading and exited" \
	wait_for 100 sh -c "! kill -0 $C2 2>/dev/null"
assert_true "... saying so" grep -q "lost the leader lease" "$KV_TMP/controller-c2.log"
controller c3
C3=$CTL_PID
assert_true "replica c3 (the restart) leads" wait_for 200 grep -q "c3 is the leader" "$KV_TMP/controller-c3.log"
vm web3
assert_true "c3 handles VM web3: Scheduled" wait_for 400 scheduled web3
assert_eq "$(k get vmi -o name | sort | tr '\n' ' ')" "virtualmachineinstance.kubevirt.io/web1 virtualmachineinstance.kubevirt.io/web3 " \
	"... the VMIs are web1 and web3, none doubled"
live_pods() { k get pods -l kubevirt.io=virt-launcher -o json | jq -r '[.items[] | select(.metadata.deletionTimestamp == null) | .metadata.labels["vm.kubevirt.io/name"]] | sort | join(" ")'; }
assert_eq "$(live_pods)" "web1 web3" "... and the launcher pods are web1's and web3's"
assert_eq "$(k get pods -l kubevirt.io=virt-launcher,vm.kubevirt.io/name=web2 -o json | jq '[.items[] | select(.metadata.deletionTimestamp != null)] | length')" 1 \
	"web2's pod is being deleted, waiting for its node to confirm (as for a kubelet: graceful deletion)"

kill -TERM "$C3"
wait "$C3" 2>/dev/null || true
assert_eq "$(holder)" "" "c3 stopped (SIGTERM): it gave the Lease back"

# a pass longer than the renew deadline: 16 VMs in one apply, the controller's writes held to 8 a second (its first
# pass alone writes 32 times: ~4 s against a 2 s deadline). The pass runs on a thread of its own and the loop renews
# the Lease meanwhile: the leader neither stops nor exits (it did, when the writes blocked its loop).
controller c4 --kube-api-qps 8 --kube-api-burst 1
C4=$CTL_PID
assert_true "replica c4 (writes at 8/s) leads" wait_for 200 grep -q "c4 is the leader" "$KV_TMP/controller-c4.log"
for i in $(seq 1 16); do guest_vm_yaml "bulk$i" bridge "" "" 128Mi; echo "---"; done | k apply -f - >/dev/null
all_bulk() { [ "$(k get vmi -o json | jq '[.items[] | select((.metadata.name | startswith("bulk")) and .status.phase == "Scheduled")] | length')" = 16 ]; }
assert_true "all 16 VMIs Scheduled" wait_for 900 all_bulk
assert_true "... after a pass that took longer than the renew deadline (2 s)" \
	grep -qE "a pass took ([2-9][0-9]{3}|[0-9]{5,}) ms" "$KV_TMP/controller-c4.log"
assert_true "... c4 still runs" kill -0 "$C4"
assert_false "... and never stopped leading" grep -q "lost the leader lease\|stopped leading" "$KV_TMP/controller-c4.log"
assert_eq "$(holder)" c4 "... the Lease names c4"
assert_eq "$(k get pods -l kubevirt.io=virt-launcher -o json | jq '[.items[] | select(.metadata.name | test("bulk"))] | length')" 16 \
	"... one launcher pod per VM"

assert_false "no request of the controller was forbidden (its RBAC is enough)" grep -qi "forbidden" "$KV_TMP"/controller-c*.log
kill -TERM "$C4"
wait "$C4" 2>/dev/null || true
assert_eq "$(holder)" "" "c4 stopped (SIGTERM): it gave the Lease back"
finish
