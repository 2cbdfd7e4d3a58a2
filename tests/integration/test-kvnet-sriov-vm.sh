#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A VM with an SR-IOV NIC from a NetworkAttachmentDefinition, through kubectl, on kvnet-sim (kvnet-multus as the
# nodes' meta plugin), up to the hardware boundary.
#
# STAND-IN: this machine has no SR-IOV NIC. The nodes' netd runs on a fake sysfs tree
# (tests/tools/mk-fake-sysfs.sh: PF ens1f0 with 4 VFs) with sriovSimulate (the VF's netlink settings recorded, not
# sent) and bindVfio false (no kernel behind the tree to rebind a driver) — docs/sriov.md. Everything else is the
# production path: the NAD (kvnet, binding sriov, its resourceName annotation) → kvnet-multus → kvnet → netd
# allocates a VF and returns its PCI address → network-status carries it as device-info → kvnet-node reads it from
# the pod and hands the launcher `--nic vf=pci:ADDRESS` → the launcher's domain gets a <hostdev> of that address →
# libvirt refuses to start it because no such PCI device exists here. That refusal is the boundary, and is
# asserted: the VMI ends Failed with libvirt's message naming the address, the VF is released by the failed
# start's teardown (nothing half-attached), and the VMI's LiveMigratable condition is False (a VF does not
# migrate). Then an SR-IOV NIC hot-plugged into a running VM, up to the same boundary (below). Not reachable here: a
# guest booting with, or receiving, the VF.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
require_cmd virsh unshare socat nsenter kubectl jq curl qemu-system-x86_64
require_libvirt
require_file "$KV_BIN/kvnet-node" "$KV_BIN/kvnet-controller" "$KV_BIN/kvnet-launcher" "$KV_BIN/kvnet-multus"
MKSYSFS=$KV_ROOT/tests/tools/mk-fake-sysfs.sh
[ -x "$MKSYSFS" ] || skip "$MKSYSFS missing"
guest_image
guest_store

SYSFS=$KV_TMP/sys
"$MKSYSFS" "$SYSFS" ens1f0,0000:3b:00.0,4,4,iavf,10 >/dev/null
RES=intel.com/sriov_a
export KVNET_NETD_CONFIG_EXTRA="{\"sriovPools\": [{\"resourceName\": \"$RES\", \"pfs\": [\"ens1f0\"], \"bindVfio\": false}],
  \"sysfsRoot\": \"$SYSFS\", \"sriovSimulate\": true}"
sim_vm_up kvt-sv
unset KVNET_NETD_CONFIG_EXTRA
assert_true "the nodes' netd have the (simulated) pool" test "$(ctl 1 sriov | jq -r --arg r "$RES" '.pools[] | select(.resource == $r) | .free')" = 4

kc apply -f - >/dev/null <<EOF
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: vf
  annotations: {k8s.v1.cni.cncf.io/resourceName: $RES}
spec:
  config: '{"cniVersion": "1.1.0", "name": "vf", "type": "kvnet", "binding": "sriov", "vlan": 200,
            "ipam": {"ranges": [[{"subnet": "10.200.0.0/24", "gateway": "10.200.0.1"}]]}}'
EOF

# the test guest with the pod network (bridge) and "vf" (sriov); runStrategy Once, so that nothing restarts it
guest_vm_yaml vm-sriov bridge "" "" 128Mi |
	sed -e 's/runStrategy: Always/runStrategy: Once/' -e 's/^          - {name: default, bridge: {}}$/&\n          - {name: vf, sriov: {}}/' \
		-e 's/^      - {name: default, pod: {}}$/&\n      - {name: vf, multus: {networkName: vf}}/' >"$KV_TMP/vm.yaml"
assert_eq "$(grep -c 'name: vf' "$KV_TMP/vm.yaml")" 2 "the VM manifest has the vf interface (sriov) and network"
# every version of the launcher pod (it lives a few seconds: its network-status is read from this record)
ip netns exec "$API_NS" env KUBECONFIG="$KUBECONFIG_FILE" HOME="$KV_TMP/home" \
	kubectl get pods -l vm.kubevirt.io/name=vm-sriov -w -o json >"$KV_TMP/pods.watch" 2>/dev/null &
WATCH=$!
at_exit "kill $WATCH 2>/dev/null || true"
sleep 1
kc apply -f "$KV_TMP/vm.yaml" >/dev/null
wait_vmi vm-sriov Failed 120 || true
sleep 1
kill "$WATCH" 2>/dev/null || true
wait "$WATCH" 2>/dev/null || true
node=$(vmi_field vm-sriov .status.nodeName)
st=$(jq -rs '[.[] | .metadata.annotations["k8s.v1.cni.cncf.io/network-status"] // empty] | last // "[]"' "$KV_TMP/pods.watch")
pci=$(jq -r '.[]? | select(.interface == "net1") | .["device-info"].pci["pci-address"] // empty' <<<"$st")
assert_true "network-status names net1's VF by its PCI address ($pci)" grep -Eq '^0000:3b:02\.[0-3]$' <<<"$pci"
assert_eq "$(jq -r '.[] | select(.interface == "net1") | [.name, .["device-info"].type] | join(" ")' <<<"$st")" "default/vf pci" \
	"... as Multus's device-info (type pci) of default/vf"
assert_true "... with the VM's address on vf" grep -q '"10\.200\.0\.' <<<"$st"

assert_eq "$(vmi_field vm-sriov .status.phase)" Failed "no VF behind the address: the VMI ends Failed (the stand-in's boundary)"
msg=$(kc get vmi vm-sriov -o json | jq -r '[.status.conditions[]? | .message // empty] | join(" ")')
assert_true "... the launcher's domain passed the VF through (kvnet-node gave it vf=pci:$pci): $msg" \
	grep -q "passing through VF $pci for interface vf" <<<"$msg"
assert_true "... and libvirt refused it: no PCI passthrough on this machine (the stand-in's boundary)" \
	grep -qi "passthrough of host PCI devices\|PCI device.*not found\|$pci" <<<"$msg"
assert_true "... and LiveMigratable says why it could not migrate" grep -q "interface 'vf' is an SR-IOV function" <<<"$msg"
n=${node#node}
for _ in $(seq 1 40); do
	[ "$(ctl "$n" sriov | jq '[.vfs[] | select(.owner != null)] | length')" = 0 ] && break
	sleep 0.5
done
assert_eq "$(ctl "$n" sriov | jq '[.vfs[] | select(.owner != null)] | length')" 0 "the failed start's teardown released the VF"
assert_eq "$(ctl "$n" endpoints | jq '[.[] | select(.pciAddress != null)] | length')" 0 "... and its attachment"

kc delete vm vm-sriov >/dev/null
for _ in $(seq 1 60); do [ "$(kc get pods,vmis -o name | wc -l)" = 0 ] && break; sleep 1; done
assert_eq "$(kc get pods,vmis -o name | wc -l)" 0 "delete: no launcher pod or VMI left"
assert_eq "$(ip netns list | grep -c "^$NAME-p-" || true)" 0 "delete: no pod sandbox left"

# ---------------------------------------------------------------- SR-IOV hot-plug into a running VM
# The same path as at the start, on a running VM: the template gains an sriov interface on "vf" → the VMI's spec →
# the launcher pod's networks annotation (binding sriov) → kvnet-node: kvnet-multus ADD of net1 (netd allocates a
# VF), the VF's address read back from network-status → the launcher's attach-interface with that PCI address (a
# <hostdev>) → libvirt refuses it here (the stand-in's boundary): the attempt is undone (the VF back in its pool),
# a Warning Event on the VMI says why, and the running guest is left as it was.
guest_vm_yaml vm-hp bridge "" "" 128Mi >"$KV_TMP/vm-hp.yaml"
kc apply -f "$KV_TMP/vm-hp.yaml" >/dev/null
wait_vmi vm-hp Running || { kc get vmi vm-hp -o yaml; die "vm-hp is not Running"; }
node=$(vmi_field vm-hp .status.nodeName)
hn=${node#node} # (not $n: wait_until has a local n)
hp_pod=$(pod_json vm-hp | jq -r .metadata.uid)
kc patch vm vm-hp --type=json -p '[
  {"op": "add", "path": "/spec/template/spec/domain/devices/interfaces/-", "value": {"name": "vf", "sriov": {}}},
  {"op": "add", "path": "/spec/template/spec/networks/-", "value": {"name": "vf", "multus": {"networkName": "vf"}}}]' >/dev/null
hp_event() { kc get events --field-selector "involvedObject.name=vm-hp,reason=InterfaceHotplugFailed" -o json |
	jq -r '[.items[].message] | last // empty'; }
for _ in $(seq 1 60); do [ -n "$(hp_event)" ] && break; sleep 1; done
msg=$(hp_event)
assert_eq "$(kc get vmi vm-hp -o json | jq -c '[.spec.domain.devices.interfaces[] | [.name, (has("sriov"))]]')" \
	'[["default",false],["vf",true]]' "hot-plug: the VMI's spec gained the sriov interface vf"
pod=$(pod_json vm-hp)
assert_eq "$(jq -r .metadata.uid <<<"$pod")" "$hp_pod" "... on the same launcher pod"
assert_eq "$(jq -r '.metadata.annotations["k8s.v1.cni.cncf.io/networks"]' <<<"$pod" | jq -c 'map([.name, .interface, .["cni-args"].kvnet.vm.binding])')" \
	'[["vf","net1","sriov"]]' "... whose networks annotation asks for vf as net1 with the sriov binding"
assert_true "an InterfaceHotplugFailed Warning on the VMI: the launcher was handed the VF and libvirt refused it ($msg)" \
	grep -Eq "libvirt could not attach interface 'vf' \(VF 0000:3b:02\.[0-3]\)" <<<"$msg"
free_vfs() { [ "$(ctl "$hn" sriov | jq '[.vfs[] | select(.owner != null)] | length')" = 0 ]; }
assert_true "... the attempt undone: no VF held on $node" wait_until 15 free_vfs
assert_eq "$(vmi_field vm-hp .status.phase)" Running "... and the VM runs on"
assert_eq "$(kc get vmi vm-hp -o json | jq -c '[.status.interfaces[]?.name]')" '["default"]' "... with its NIC alone"
idx=$(kc get vm vm-hp -o json | jq '.spec.template.spec.domain.devices.interfaces | map(.name) | index("vf")')
kc patch vm vm-hp --type=json -p "[{\"op\": \"add\", \"path\": \"/spec/template/spec/domain/devices/interfaces/$idx/state\", \"value\": \"absent\"}]" >/dev/null
sleep 12 # longer than kvnet-node's 10 s retry
count=$(kc get events --field-selector "involvedObject.name=vm-hp,reason=InterfaceHotplugFailed" -o json | jq '[.items[].count] | add')
sleep 12
assert_eq "$(kc get events --field-selector "involvedObject.name=vm-hp,reason=InterfaceHotplugFailed" -o json | jq '[.items[].count] | add')" \
	"$count" "marked absent: kvnet-node stops trying"
assert_true "... and holds no VF" free_vfs
kc delete vm vm-hp >/dev/null
for _ in $(seq 1 60); do [ "$(kc get pods,vmis -o name | wc -l)" = 0 ] && break; sleep 1; done
assert_eq "$(kc get pods,vmis -o name | wc -l)" 0 "delete: nothing left"
finish
