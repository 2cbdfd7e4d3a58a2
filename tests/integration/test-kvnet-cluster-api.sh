#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kvnet end to end on a real Kubernetes API server: the real kube-apiserver + etcd (lib-kapi.sh) with kvnet's CRDs
# (deploy/crds), kvnet-controller --cluster against it, and scripts/kvnet-sim.sh's two simulated nodes (network
# namespaces with netd, kvnet-node, kvnet-multus as their meta plugin) using it — the same binaries as with the
# embedded API, only the kubeconfig differs. kvnet-node stands in for kubelet there as on one machine (it runs the
# launcher pods and confirms their graceful deletion); kvnet-sim registers the two Node objects for it.
# Through kubectl: a VirtualMachine runs on a node with its IP (the guest answers from the client), a
# VirtualMachineInstanceMigration moves it to the other node keeping IP and MAC (the guest answers there), deleting
# the VM leaves nothing in the API (VMIs, launcher pods, NetworkClaims) or on the nodes (attachments, sandboxes). The
# nodes' netds keep the cluster-wide claims as NetworkClaim objects of that API server, with the kvnet-node service
# account's RBAC of deploy/ (the kube claim backend): the VM's claim is held by its node, then by the target.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-kapi.sh"

kv_init
[ "${KVNET_TEST_MIGRATION:-1}" = 1 ] || skip "turned off by KVNET_TEST_MIGRATION=${KVNET_TEST_MIGRATION}"
require_kvnet
require_cmd virsh unshare socat nsenter kubectl jq curl qemu-system-x86_64 openssl
require_libvirt
require_peer ETCD etcd
require_peer APISERVER kube-apiserver
require_file "$KV_BIN/kvnet-node" "$KV_BIN/kvnet-controller" "$KV_BIN/kvnet-launcher" "$KV_BIN/kvnet-multus"
guest_image
guest_store

ready=0
kapi_up && ready=1
assert_eq "$ready" 1 "kube-apiserver + etcd ready"
[ "$ready" = 1 ] || finish
kapi_crd "$KV_ROOT"/deploy/crds/*.yaml
export KVNET_SIM_API_NETNS=$NS KVNET_SIM_API_KUBECONFIG=$KCFG
sim_vm_up kvt-ca
assert_eq "$(kc get nodes -o name | sort | tr '\n' ' ')" "node/node1 node/node2 " "the simulated nodes are Node objects of the real API server"
assert_true "kvnet-controller runs in cluster mode" grep -q "cluster mode: API server https://127.0.0.1:6443" "$SDIR/controller.log"

# The nodes' netds keep their cluster-wide claims (a VM's IP and MAC across nodes) as NetworkClaim objects of the API
# server, as the kvnet-node service account of deploy/ (RBAC: deploy/11-rbac-node.yaml): restarted with
# clusterClaims {"backend": "kube"} and that account's token, reaching the API through the node's forward.
kc apply -f "$KV_ROOT/deploy/00-namespace.yaml" -f "$KV_ROOT/deploy/11-rbac-node.yaml" >/dev/null
kapi_kubeconfig "$KV_TMP/netd.kubeconfig" --token "$(kc -n kvnet-system create token kvnet-node --duration=1h)"
merge=$(jq -nc --arg kc "$KV_TMP/netd.kubeconfig" '{clusterClaims: {backend: "kube", kubeconfig: $kc, timeoutMs: 5000}}')
for i in 1 2; do
	sock=$(sim_env "NODE${i}_SOCK")
	node_netd_restart "$(node_ns "$i")" "$sock" "$(dirname "$sock")/state" "$(dirname "$sock")/netd.log" "$merge" ||
		log "node$i's netd does not answer yet"
done
assert_eq "$(ctl 1 cluster-claims | jq -r .backend)/$(ctl 2 cluster-claims | jq -r .backend)" kube/kube \
	"both nodes' netds keep their claims in the API server (kvnetctl cluster-claims)"
claims() { kc get networkclaims -l kvnet.io/role=claim -o json | jq -r --arg vm "$1" \
	'[.items[] | select(.spec.key | startswith("vm/default/" + $vm + "/")) | .spec.holder + ">" + (.spec.target // "")] | join(" ")'; }

guest_vm_yaml web bridge "" "" 128Mi | kc apply -f - >/dev/null
wait_vmi web Running 180 || { kc get vmi web -o yaml; die "web is not Running"; }
ip0=$(vmi_field web '.status.interfaces[0].ipAddress')
mac0=$(vmi_field web '.status.interfaces[0].mac')
src=$(vmi_field web .status.nodeName)
assert_true "VM web runs on $src with $ip0 (kubectl get vmi)" grep -q '^10\.' <<<"$ip0"
assert_eq "$(pod_json web | jq -r .status.phase)" Running "its launcher pod is Running (kvnet-node writes the pod's status)"
assert_true "the guest answers at $ip0 from the client" wait_ping "$CLIENT_NS" "$ip0" 120
assert_eq "$(claims web)" "$src>" "its claim is a NetworkClaim object held by $src (the netd's service account wrote it)"

assert_eq "$(sim_migrate mig-web web)" Succeeded "kubectl create vmim: the migration succeeds"
dst=$(vmi_field web .status.nodeName)
assert_ne "$dst" "$src" "... the VMI moved ($src -> $dst)"
for _ in $(seq 1 20); do [ "$(vmi_field web '.status.interfaces[0].ipAddress')" = "$ip0" ] && break; sleep 0.5; done
assert_eq "$(vmi_field web '.status.interfaces[0].ipAddress')/$(vmi_field web '.status.interfaces[0].mac')" "$ip0/$mac0" \
	"... keeping its IP and MAC"
assert_true "... and the guest answers there" wait_ping "$CLIENT_NS" "$ip0" 60
for _ in $(seq 1 20); do [ "$(claims web)" = "$dst>" ] && break; sleep 0.5; done
assert_eq "$(claims web)" "$dst>" "... its NetworkClaim now held by $dst, no target left"
# the components' Events are the real API server's too (docs/events.md): "component:Kind:reason" of those about web
ev=$(kc get events --field-selector involvedObject.name=web -o json |
	jq -r '[.items[] | .source.component + ":" + .involvedObject.kind + ":" + .reason] | unique | join(" ")')
assert_true "the API server holds the controller's and the nodes' Events about web, the migration's included ($ev)" \
	bash -c 'for w in kvnet-controller:VirtualMachine:SuccessfulCreate kvnet-controller:VirtualMachineInstance:SuccessfulCreate kvnet-node:VirtualMachineInstance:Started kvnet-node:VirtualMachineInstance:NetworkAttached kvnet-controller:VirtualMachineInstance:Migrated; do grep -qw "$w" <<<"$1" || exit 1; done' _ "$ev"
msg=$(kc get events --field-selector involvedObject.name=mig-web,reason=Migrated -o jsonpath='{.items[0].message}')
assert_true "... and the VMIM's Migrated ($msg)" grep -q "^Migrated web from node $src to node $dst" <<<"$msg"

kc delete vm web >/dev/null
for _ in $(seq 1 120); do
	[ "$(kc get pods,vmis -o name | wc -l)" = 0 ] && [ "$(ctl 1 endpoints | jq length)/$(ctl 2 endpoints | jq length)" = 0/0 ] && break
	sleep 1
done
assert_eq "$(kc get vmis,pods -o name | wc -l)" 0 \
	"delete: no VMI or launcher pod left in the API (kvnet-node confirmed the pods' graceful deletion)"
assert_eq "$(ctl 1 endpoints | jq length)/$(ctl 2 endpoints | jq length)" 0/0 "delete: no attachment left on either node"
for _ in $(seq 1 20); do [ -z "$(claims web)" ] && break; sleep 0.5; done
assert_eq "$(claims web)" "" "delete: its NetworkClaim is gone from the API server"
assert_eq "$(ip netns list | grep -c "^$NAME-p-" || true)" 0 "delete: no pod sandbox left"
finish
