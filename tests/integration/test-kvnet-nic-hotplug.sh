#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# NIC hot-plug and unplug through kubectl, as KubeVirt users do it (an interface + network added to a running VM's
# template; later the interface marked `state: absent`), on kvnet-sim (kvnet-multus as the nodes' meta plugin):
# a VM with the pod network only; the kvnet NAD "blue" (VLAN 100) added to its template → the VMI's spec gains it,
# the launcher pod's networks annotation gains net1, kvnet-node attaches net1 to the running pod through
# kvnet-multus (KVNET_MULTUS_INTERFACE) and the NIC to the domain through the launcher, the guest DHCPs it: VMI
# status.interfaces lists blue with its address and the guest answers on it. Then a live migration keeps it. Then
# unplug: the interface gone from the domain and the VMI's status, net1 gone from the pod (annotation,
# network-status, netd's endpoints), its address released, the pod network untouched. Then a NIC on a third-party
# network ("green": the reference bridge plugin + host-local, kvnet chained after them as the VM binding: tap-net2)
# is hot-plugged as net2 (blue keeps net1 while absent) and carries traffic; a VM restart afterwards runs without
# blue and with green from the start; delete leaves nothing.
# kvnet-test-timeout: 420
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
[ "${KVNET_TEST_MIGRATION:-1}" = 1 ] || skip "turned off by KVNET_TEST_MIGRATION=${KVNET_TEST_MIGRATION}"
require_kvnet
require_cmd virsh unshare socat nsenter kubectl jq curl qemu-system-x86_64
require_libvirt
require_ref_plugins bridge host-local
require_file "$KV_BIN/kvnet-node" "$KV_BIN/kvnet-controller" "$KV_BIN/kvnet-launcher" "$KV_BIN/kvnet-multus"
guest_image
guest_store

export KVNET_SIM_CNI_PATH=$REF_CNI_DIR # the reference plugins for "green"
sim_vm_up kvt-hp
blue_field() { iface_field "$1" blue "$2"; }
green_field() { iface_field "$1" green "$2"; }
sim_nad_blue
GREEN_BR=kvg${NAME##*-}
kc apply -f - >/dev/null <<EOF
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: green}
spec:
  config: '{"cniVersion": "1.0.0", "name": "green", "type": "bridge", "bridge": "$GREEN_BR", "isGateway": true,
            "ipam": {"type": "host-local", "dataDir": "$KV_TMP/host-local",
                     "ranges": [[{"subnet": "10.130.0.0/24", "gateway": "10.130.0.1"}]]}}'
EOF

guest_vm_yaml vm-hp bridge "" "" 128Mi | kc apply -f - >/dev/null
wait_vmi vm-hp Running || { kc get vmi vm-hp -o yaml; die "vm-hp is not Running"; }
ip0=$(vmi_field vm-hp '.status.interfaces[0].ipAddress')
node=$(vmi_field vm-hp .status.nodeName)
assert_true "the guest answers on the pod network at $ip0" wait_ping "$CLIENT_NS" "$ip0" 90
assert_eq "$(pod_json vm-hp | jq -r '.metadata.annotations["k8s.v1.cni.cncf.io/networks"] // "none"')" none \
	"before: the launcher pod has no secondary network"
pod_uid=$(pod_json vm-hp | jq -r .metadata.uid)

# ---------------------------------------------------------------- hot-plug: blue added to the running VM's template
kc patch vm vm-hp --type=json -p '[
  {"op": "add", "path": "/spec/template/spec/domain/devices/interfaces/-", "value": {"name": "blue", "bridge": {}}},
  {"op": "add", "path": "/spec/template/spec/networks/-", "value": {"name": "blue", "multus": {"networkName": "blue"}}}]' >/dev/null
for _ in $(seq 1 60); do [ -n "$(blue_field vm-hp ipAddress)" ] && break; sleep 1; done
assert_eq "$(kc get vmi vm-hp -o json | jq -c '[.spec.domain.devices.interfaces[].name, .spec.networks[].name]')" \
	'["default","blue","default","blue"]' "the VMI's spec gained the blue interface and network"
pod=$(pod_json vm-hp)
assert_eq "$(jq -r .metadata.uid <<<"$pod")" "$pod_uid" "... on the same launcher pod (no restart)"
assert_eq "$(jq -r '.metadata.annotations["k8s.v1.cni.cncf.io/networks"]' <<<"$pod" | jq -c 'map([.name, .interface])')" \
	'[["blue","net1"]]' "... whose networks annotation now asks for blue as net1"
st=$(jq -r '.metadata.annotations["k8s.v1.cni.cncf.io/network-status"] // "[]"' <<<"$pod")
assert_eq "$(jq -c 'map(.interface)' <<<"$st")" '["tap0","net1"]' "... and whose network-status lists net1 after the pod network"
ip1=$(blue_field vm-hp ipAddress)
mac1=$(blue_field vm-hp mac)
assert_true "VMI status.interfaces: blue with an address of its subnet ($ip1)" grep -q '^10\.100\.0\.' <<<"$ip1"
assert_eq "$(blue_field vm-hp podInterfaceName)" net1 "... on pod interface net1"
assert_eq "$(ctl "${node#node}" endpoints | jq length)" 2 "netd on $node: the pod network's and blue's attachments"
assert_true "the guest DHCPed the new NIC and answers on blue at $ip1 (from $node, the VLAN's gateway)" \
	wait_ping "$(node_ns "$node")" "$ip1" 90
assert_true "... and still on the pod network" wait_ping "$CLIENT_NS" "$ip0" 10

# ---------------------------------------------------------------- a live migration keeps the hot-plugged NIC
src=$node
assert_eq "$(sim_migrate mig-hp vm-hp)" Succeeded "the VMIM after the hot-plug succeeds"
node=$(vmi_field vm-hp .status.nodeName)
assert_ne "$node" "$src" "... the VMI is on the other node ($src -> $node)"
for _ in $(seq 1 20); do [ "$(blue_field vm-hp ipAddress)" = "$ip1" ] && break; sleep 0.5; done
assert_eq "$(blue_field vm-hp ipAddress)/$(blue_field vm-hp mac)" "$ip1/$mac1" "migrated: the hot-plugged NIC keeps its IP and MAC"
assert_true "... and answers on blue from $node" wait_ping "$(node_ns "$node")" "$ip1" 30

# ---------------------------------------------------------------- unplug: state absent in the template
pod_uid=$(pod_json vm-hp | jq -r .metadata.uid)
idx=$(kc get vm vm-hp -o json | jq '.spec.template.spec.domain.devices.interfaces | map(.name) | index("blue")')
kc patch vm vm-hp --type=json -p "[{\"op\": \"add\", \"path\": \"/spec/template/spec/domain/devices/interfaces/$idx/state\", \"value\": \"absent\"}]" >/dev/null
for _ in $(seq 1 90); do [ -z "$(blue_field vm-hp mac)" ] && break; sleep 1; done
assert_eq "$(blue_field vm-hp mac)" "" "unplugged: blue is no longer in the VMI's status.interfaces"
assert_eq "$(kc get vmi vm-hp -o json | jq -r '.spec.domain.devices.interfaces[] | select(.name == "blue") | .state')" absent \
	"... the VMI's spec keeps it as absent (its pod interface name stays reserved)"
for _ in $(seq 1 30); do [ "$(ctl "${node#node}" endpoints | jq length)" = 1 ] && break; sleep 0.5; done
pod=$(pod_json vm-hp)
assert_eq "$(jq -r .metadata.uid <<<"$pod")" "$pod_uid" "... on the same launcher pod"
assert_eq "$(jq -r '.metadata.annotations["k8s.v1.cni.cncf.io/networks"] // "none"' <<<"$pod")" none \
	"... whose networks annotation no longer has blue"
assert_eq "$(jq -r '.metadata.annotations["k8s.v1.cni.cncf.io/network-status"] // "[]"' <<<"$pod" | jq -c 'map(.interface)')" \
	'["tap0"]' "... nor its network-status"
assert_eq "$(ctl "${node#node}" endpoints | jq length)" 1 "netd on $node: only the pod network's attachment"
assert_eq "$(ctl "${node#node}" ipam | jq '[.claims[] | select(.key | endswith("/blue"))] | length')" 0 \
	"... and blue's address claim is released"
assert_true "blue's address no longer answers" bash -c "! ip netns exec '$(node_ns "$node")' ping -c 2 -W 1 -q '$ip1' >/dev/null 2>&1"
assert_true "the guest still answers on the pod network" wait_ping "$CLIENT_NS" "$ip0" 20

# ---------------------------------------------------------------- a third-party network's NIC, hot-plugged
kc patch vm vm-hp --type=json -p '[
  {"op": "add", "path": "/spec/template/spec/domain/devices/interfaces/-", "value": {"name": "green", "bridge": {}}},
  {"op": "add", "path": "/spec/template/spec/networks/-", "value": {"name": "green", "multus": {"networkName": "green"}}}]' >/dev/null
for _ in $(seq 1 60); do [ -n "$(green_field vm-hp ipAddress)" ] && break; sleep 1; done
ip2=$(green_field vm-hp ipAddress)
assert_true "green hot-plugged: an address from host-local's range ($ip2)" grep -q '^10\.130\.0\.' <<<"$ip2"
assert_eq "$(green_field vm-hp podInterfaceName)" net2 "... on pod interface net2 (blue, absent, keeps net1)"
pod=$(pod_json vm-hp)
assert_eq "$(jq -r '.metadata.annotations["k8s.v1.cni.cncf.io/network-status"]' <<<"$pod" | jq -c 'map(.interface)')" \
	'["tap0","net2","tap-net2"]' "... network-status: the bridge plugin's net2 and kvnet's chained tap-net2"
assert_true "the guest DHCPed green's address from kvnet and answers on it (from $node's $GREEN_BR)" \
	wait_ping "$(node_ns "$node")" "$ip2" 90
lm() { kc get vmi vm-hp -o json | jq -r '.status.conditions[]? | select(.type == "LiveMigratable") | "\(.status) \(.reason // "")"'; }
for _ in $(seq 1 20); do [ "$(lm)" = "False InterfaceNotLiveMigratable" ] && break; sleep 0.5; done
assert_eq "$(lm)" "False InterfaceNotLiveMigratable" \
	"... and the VMI is not live-migratable: green's address is host-local's, without a persistent claim"
assert_eq "$(sim_migrate mig-green vm-hp)" Failed "... a migration of it is refused"

# ---------------------------------------------------------------- a restart runs without the unplugged NIC
kc delete vmi vm-hp --wait=false >/dev/null
for _ in $(seq 1 120); do
	p=$(pod_json vm-hp)
	[ -n "$p" ] && [ "$(jq -r .metadata.uid <<<"$p")" != "$pod_uid" ] && [ "$(vmi_field vm-hp .status.phase)" = Running ] && break
	sleep 1
done
assert_eq "$(vmi_field vm-hp .status.phase)" Running "restarted after the unplug: Running"
assert_eq "$(kc get vmi vm-hp -o json | jq -c '[.spec.domain.devices.interfaces[].name]')" '["default","green"]' \
	"... the new VMI has green but not the absent blue"
node=$(vmi_field vm-hp .status.nodeName)
for _ in $(seq 1 60); do [ -n "$(green_field vm-hp ipAddress)" ] && break; sleep 1; done
ip2=$(green_field vm-hp ipAddress)
assert_eq "$(green_field vm-hp podInterfaceName)" net1 "... green is now the pod's net1"
assert_true "... and the guest answers on green at $ip2 (a third-party network from the start)" \
	wait_ping "$(node_ns "$node")" "$ip2" 90

kc delete vm vm-hp >/dev/null
for _ in $(seq 1 90); do
	[ "$(kc get pods,vmis -o name | wc -l)" = 0 ] && [ "$(ctl 1 endpoints | jq length)/$(ctl 2 endpoints | jq length)" = 0/0 ] && break
	sleep 1
done
assert_eq "$(kc get pods,vmis -o name | wc -l)/$(ctl 1 endpoints | jq length)/$(ctl 2 endpoints | jq length)" 0/0/0 \
	"delete: no pod, VMI or attachment left"
assert_eq "$(ip netns list | grep -c "^$NAME-p-" || true)" 0 "delete: no pod sandbox left"
finish
