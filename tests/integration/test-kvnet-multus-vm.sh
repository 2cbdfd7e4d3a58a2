#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A VM with a secondary NIC from a NetworkAttachmentDefinition, through kubectl, on kvnet-sim (whose nodes run
# kvnet-multus as their meta plugin, as a cluster runs Multus): a kvnet NAD "blue" (VLAN 100 on the node
# bridge, its own subnet; the NAD names no netd socket: each node's plugin finds its own), a VirtualMachine with
# the pod network (bridge) and "blue" (bridge). Asserts: the launcher pod's networks annotation (net1, the VM
# interface, the MAC), its network-status (eth0 default, net1 with the blue address), VMI status.interfaces with
# both addresses (blue's from multus-status), the guest answers on both networks; the same blue IP and MAC after
# a restart of the VM (a new pod) and after a live migration to node2 (the address kept, reachable there); a VMI
# asking for an unknown NAD ends Failed naming it, nothing left; a VM whose only network is "blue" as the Multus
# default network (replacing the pod network) gets blue's address on the pod's cluster-network interface; `kubectl delete vm` releases both claims on
# both nodes and the cluster store, and leaves no attachment, pod or sandbox.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
[ "${KVNET_TEST_MIGRATION:-1}" = 1 ] || skip "turned off by KVNET_TEST_MIGRATION=${KVNET_TEST_MIGRATION}"
require_kvnet
require_cmd virsh unshare socat nsenter kubectl jq curl qemu-system-x86_64
require_libvirt
require_file "$KV_BIN/kvnet-node" "$KV_BIN/kvnet-controller" "$KV_BIN/kvnet-launcher" "$KV_BIN/kvnet-multus"
guest_image
guest_store

# the nodes' netd metrics, to see kvnet-multus's API requests go through netd (the sim's apiSocket, multusApi)
export KVNET_NETD_CONFIG_EXTRA='{"metricsListen": "127.0.0.1:9652"}'
sim_vm_up kvt-mv
blue_field() { iface_field "$1" blue "$2"; }
sim_nad_blue

vm_yaml() { # vm_yaml NAME NAD: the test guest with the pod network and NAD as "blue", both bridge
	guest_vm_yaml "$1" bridge "" "" 128Mi | sed -e 's/^          - {name: default, bridge: {}}$/&\n          - {name: blue, bridge: {}}/' \
		-e "s/^      - {name: default, pod: {}}\$/&\n      - {name: blue, multus: {networkName: $2}}/"
}
vm_yaml vm-multi blue >"$KV_TMP/vm.yaml"
assert_eq "$(grep -c 'name: blue' "$KV_TMP/vm.yaml")" 2 "the VM manifest has the blue interface and network"
kc apply -f "$KV_TMP/vm.yaml" >/dev/null
wait_vmi vm-multi Running || { kc get vmi vm-multi -o yaml; die "vm-multi is not Running"; }

pod=$(pod_json vm-multi)
ann=$(jq -r '.metadata.annotations["k8s.v1.cni.cncf.io/networks"]' <<<"$pod")
assert_eq "$(jq -c 'map([.namespace, .name, .interface, .["cni-args"].kvnet.vm.interface])' <<<"$ann")" \
	'[["default","blue","net1","blue"]]' "the launcher pod asks for blue as net1 for the VM interface blue"
mac_ann=$(jq -r '.[0].mac' <<<"$ann")
st=$(jq -r '.metadata.annotations["k8s.v1.cni.cncf.io/network-status"] // "[]"' <<<"$pod")
assert_eq "$(jq -c 'map([.interface, (.default // false)])' <<<"$st")" '[["tap0",true],["net1",false]]' \
	"network-status: tap0 (the cluster network, default: the VM's tap on the pod network) and net1"
blue_st_ip=$(jq -r '.[] | select(.interface == "net1") | .ips[0]' <<<"$st")
assert_true "... net1 has an address of blue's subnet ($blue_st_ip)" grep -q '^10\.100\.0\.' <<<"$blue_st_ip"
assert_eq "$(jq -r '.[] | select(.interface == "net1") | .name' <<<"$st")" default/blue "... named default/blue"

ip0=$(vmi_field vm-multi '.status.interfaces[0].ipAddress')
for _ in $(seq 1 20); do [ -n "$(blue_field vm-multi ipAddress)" ] && break; sleep 0.5; done
ip1=$(blue_field vm-multi ipAddress)
mac1=$(blue_field vm-multi mac)
assert_eq "$ip1" "$blue_st_ip" "VMI status.interfaces: blue's address from the network-status"
assert_eq "$(blue_field vm-multi infoSource)/$(blue_field vm-multi podInterfaceName)" "domain, multus-status/net1" \
	"... infoSource and podInterfaceName as KubeVirt reports them"
assert_eq "$mac1" "$mac_ann" "... the guest's MAC is the one the annotation asked for"
node=$(vmi_field vm-multi .status.nodeName)
nodens_var=NODE${node#node}_NS
kube_calls=$(ip netns exec "${!nodens_var}" curl -sf http://127.0.0.1:9652/metrics |
	awk '/^kvnet_netd_requests_total\{verb="kube",code="0"\}/ {s += $NF} END {print s + 0}')
assert_true "$node's kvnet-multus read the pod and NADs through netd's kube verb ($kube_calls calls)" test "$kube_calls" -ge 2
assert_true "the guest answers on the pod network at $ip0" wait_ping "$CLIENT_NS" "$ip0" 90
assert_true "the guest answers on blue at $ip1 (from $node, the VLAN's gateway)" wait_ping "${!nodens_var}" "$ip1" 60

# ---------------------------------------------------------------- restart: a new pod, the same blue address
old_uid=$(jq -r .metadata.uid <<<"$pod")
kc delete vmi vm-multi --wait=false >/dev/null # runStrategy Always: the VM controller starts it again
for _ in $(seq 1 120); do
	p=$(pod_json vm-multi)
	[ -n "$p" ] && [ "$(jq -r .metadata.uid <<<"$p")" != "$old_uid" ] && [ "$(vmi_field vm-multi .status.phase)" = Running ] && break
	sleep 1
done
for _ in $(seq 1 20); do [ -n "$(blue_field vm-multi ipAddress)" ] && break; sleep 0.5; done
assert_eq "$(blue_field vm-multi ipAddress)/$(blue_field vm-multi mac)" "$ip1/$mac1" "restarted (a new pod): the same blue IP and MAC"
node=$(vmi_field vm-multi .status.nodeName)
nodens_var=NODE${node#node}_NS
assert_true "... and the guest answers on blue again" wait_ping "${!nodens_var}" "$ip1" 90

# ---------------------------------------------------------------- live migration keeps the secondary address
src=$node
assert_eq "$(sim_migrate mig-multi vm-multi)" Succeeded "the VMIM of vm-multi succeeds"
dst=$(vmi_field vm-multi .status.nodeName)
assert_ne "$dst" "$src" "... the VMI is now on the other node ($src -> $dst)"
for _ in $(seq 1 20); do [ "$(blue_field vm-multi ipAddress)" = "$ip1" ] && break; sleep 0.5; done
assert_eq "$(blue_field vm-multi ipAddress)/$(blue_field vm-multi mac)" "$ip1/$mac1" "migrated: the same blue IP and MAC"
nodens_var=NODE${dst#node}_NS
assert_true "... and the guest answers on blue from $dst" wait_ping "${!nodens_var}" "$ip1" 30
assert_true "... and on the pod network at $ip0" wait_ping "$CLIENT_NS" "$ip0" 30

# ---------------------------------------------------------------- an unknown NAD: Failed, naming it
vm_yaml vm-bad nosuchnet | kc apply -f - >/dev/null
wait_vmi vm-bad Failed 90 || true
assert_eq "$(vmi_field vm-bad .status.phase)" Failed "a VM asking for an unknown NAD: its VMI Failed"
msg=$(kc get vmi vm-bad -o json | jq -r '[.status.conditions[]? | .message // empty] | join(" ")')
assert_true "... naming the network ($msg)" grep -q "nosuchnet" <<<"$msg"

# ---------------------------------------------------------------- a Multus default network instead of the pod network
guest_vm_yaml vm-dflt bridge "" "" 128Mi |
	sed -e 's/^      - {name: default, pod: {}}$/      - {name: default, multus: {networkName: blue, default: true}}/' >"$KV_TMP/dflt.yaml"
assert_eq "$(grep -c 'default: true' "$KV_TMP/dflt.yaml")" 1 "vm-dflt's only network is blue as the Multus default network"
kc apply -f "$KV_TMP/dflt.yaml" >/dev/null
wait_vmi vm-dflt Running || { kc get vmi vm-dflt -o yaml; die "vm-dflt is not Running"; }
dpod=$(pod_json vm-dflt)
assert_eq "$(jq -r '.metadata.annotations["v1.multus-cni.io/default-network"]' <<<"$dpod")" default/blue \
	"the launcher pod names blue as its default network (v1.multus-cni.io/default-network)"
dst_st=$(jq -r '.metadata.annotations["k8s.v1.cni.cncf.io/network-status"] // "[]"' <<<"$dpod")
assert_eq "$(jq -c 'map([.name, .interface, (.default // false)])' <<<"$dst_st")" '[["default/blue","tap0",true]]' \
	"... its network-status: blue on the cluster network's interface, default"
for _ in $(seq 1 20); do [ -n "$(vmi_field vm-dflt '.status.interfaces[0].ipAddress')" ] && break; sleep 0.5; done
ipd=$(vmi_field vm-dflt '.status.interfaces[0].ipAddress')
assert_true "VMI status: the guest's address is blue's ($ipd)" grep -q '^10\.100\.0\.' <<<"$ipd"
dnode=$(vmi_field vm-dflt .status.nodeName)
nodens_var=NODE${dnode#node}_NS
assert_true "... and the guest answers there (from $dnode)" wait_ping "${!nodens_var}" "$ipd" 90

# ---------------------------------------------------------------- delete: both claims released everywhere
kc delete vm vm-multi vm-bad vm-dflt >/dev/null
for _ in $(seq 1 90); do
	[ "$(kc get pods,vmis -o name | wc -l)" = 0 ] && [ "$(ctl 1 endpoints | jq length)/$(ctl 2 endpoints | jq length)" = 0/0 ] && break
	sleep 1
done
assert_eq "$(kc get pods,vmis -o name | wc -l)" 0 "delete: no launcher pod or VMI left"
assert_eq "$(ctl 1 endpoints | jq length)/$(ctl 2 endpoints | jq length)" 0/0 "delete: no attachment left on node1 or node2"
for _ in $(seq 1 20); do [ "$(ctl 1 cluster-claims | jq '.claims | length')" = 0 ] && break; sleep 0.5; done
assert_eq "$(ctl 1 ipam | jq '.claims | length')/$(ctl 2 ipam | jq '.claims | length')/$(ctl 1 cluster-claims | jq '.claims | length')" \
	0/0/0 "delete: the VM's claims on the pod network and blue released (node1, node2, the cluster store)"
assert_eq "$(ip netns list | grep -c "^$NAME-p-" || true)" 0 "delete: no pod sandbox left"
finish
