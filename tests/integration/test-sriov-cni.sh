#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# binding "sriov" end to end: CNI plugin -> netd -> SR-IOV allocator, on a SIMULATED node.
#
# The node has no SR-IOV hardware: tests/tools/mk-fake-sysfs.sh builds a fake sysfs tree (two PFs,
# ens1f0 and ens1f1, with 2 VFs each on the iavf driver) in the test's temp dir, and netd runs with
#   {"sriovPools":[{"resourceName":"intel.com/sriov_a","pfs":["ens1f0","ens1f1"],"bindVfio":false}],
#    "sysfsRoot":"<fake>","sriovSimulate":true}
# sriovSimulate makes netd record the VF netlink configuration instead of sending it to the kernel
# (the only difference from a real node). bindVfio is false because no kernel is behind the fake
# tree to move the VFs' driver links: a vfio bind would time out. The vfio path is covered by the
# fake-kernel thread in tests/unit/test-sriov.c.
#
# Checked: ADD for VMs returns distinct pciIDs from the fake tree plus the claim's IP/MAC; a 5th VM
# with 4 VFs gets code 100; DEL frees the VF (the next ADD gets it); CHECK; kill -9 + restart keeps
# the allocations; the same VM in a second sandbox gets a second VF with the same IP/MAC (decision,
# see docs/sriov.md); sriov for a container, an unknown resourceName, ipMasq -> code 7; a node
# without pools -> code 7.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
MKSYSFS=$KV_ROOT/tests/tools/mk-fake-sysfs.sh
[ -x "$MKSYSFS" ] || skip "$MKSYSFS missing"

SYSFS=$KV_TMP/sys
"$MKSYSFS" "$SYSFS" ens1f0,0000:3b:00.0,4,2,iavf,10 ens1f1,0000:3b:00.1,4,2,iavf,11 >/dev/null
ALL_VFS="0000:3b:02.0 0000:3b:02.1 0000:3b:0a.0 0000:3b:0a.1"
for vf in $ALL_VFS; do
	[ -e "$SYSFS/bus/pci/devices/$vf" ] || die "fake sysfs lacks VF $vf"
done

NETD_CONF=$KV_TMP/netd.json
cat >"$NETD_CONF" <<EOF
{"sriovPools":[{"resourceName":"intel.com/sriov_a","pfs":["ens1f0","ens1f1"],"bindVfio":false}],
 "sysfsRoot":"$SYSFS","sriovSimulate":true}
EOF

setup_node
mkns SBX_A sbxa
mkns SBX_B sbxb
mkns SBX_C sbxc
start_netd "$NODE_NS" --config "$NETD_CONF"

assert_true "netd logs loudly that SR-IOV is simulated" grep -q "SR-IOV is SIMULATED" "$NETD_LOG"

# mkconf NAME EXTRA_JSON: a one-plugin conflist with binding sriov
mkconf() {
	local out=$KV_TMP/$1.conflist
	cat >"$out" <<EOF
{"cniVersion":"1.1.0","name":"sriovnet","plugins":[{"type":"kvnet","binding":"sriov",
 "resourceName":"intel.com/sriov_a","vlan":100,"spoofchk":"on","trust":"off","socket":"$NETD_SOCK",
 "ipam":{"ranges":[[{"subnet":"10.99.0.0/24","gateway":"10.99.0.1"}]],"routes":[{"dst":"0.0.0.0/0"}]}$2}]}
EOF
	jq -e . "$out" >/dev/null || die "bad config $out"
	echo "$out"
}
conf=$(mkconf sriov "")
vmargs() { echo "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;KVNET_VM_NAME=$1;KVNET_VM_INTERFACE=net1"; }
pci_of() { jq -r '.interfaces[0].pciID // empty'; }
mac_of() { jq -r '.interfaces[0].mac // empty'; }
is_fake_vf() { grep -qw -- "$1" <<<"$ALL_VFS"; }
# err_msg: the message of the last cni_fail_code
err_msg() { cat "$KV_TMP/cni-err.$$" 2>/dev/null || true; }

# ---- ADD two VMs
res1=$(cni add "$conf" cid-vm1 "$SBX_A" net1 --args "$(vmargs vm1)")
res2=$(cni add "$conf" cid-vm2 "$SBX_B" net1 --args "$(vmargs vm2)")
pci1=$(echo "$res1" | pci_of)
pci2=$(echo "$res2" | pci_of)
ip1=$(echo "$res1" | result_ip4)
mac1=$(echo "$res1" | mac_of)
log "vm1: pci=$pci1 ip=$ip1 mac=$mac1; vm2: pci=$(echo "$res2" | pci_of)"
assert_true "vm1's pciID is a VF of the fake tree" is_fake_vf "$pci1"
assert_true "vm2's pciID is a VF of the fake tree" is_fake_vf "$pci2"
assert_ne "$pci1" "$pci2" "vm1 and vm2 get distinct VFs"
assert_eq "$(echo "$res1" | jq -r '.interfaces[0].name + " " + .interfaces[0].sandbox')" "net1 $(nspath "$SBX_A")" \
	"result interface is CNI_IFNAME in the sandbox"
assert_eq "$(echo "$res1" | jq -r '.ips[0].address + " " + .ips[0].gateway + " " + (.ips[0].interface|tostring)')" \
	"$ip1/24 10.99.0.1 0" "result ip is the claim's, on the VF interface"
ipam=$(kvctl -o json ipam)
claim=$(echo "$ipam" | jq -c '.claims[] | select(.key=="vm/default/vm1/net1")')
assert_eq "$(echo "$claim" | jq -r '.ips[0]' | cut -d/ -f1)" "$ip1" "vm1's IP is its IPAM claim's"
assert_eq "$(echo "$claim" | jq -r '.mac')" "$mac1" "vm1's MAC is its IPAM claim's"
eps=$(kvctl -o json endpoints)
assert_eq "$(echo "$eps" | jq -r '.[] | select(.containerID=="cid-vm1") | .pciAddress')" "$pci1" \
	"kvnetctl endpoints shows the PCI address"
assert_true "kvnetctl endpoints table shows the PCI address" sh -c "'$KV_BIN/kvnetctl' --socket '$NETD_SOCK' endpoints | grep -q '$pci1'"
sr=$(kvctl -o json sriov)
assert_eq "$(echo "$sr" | jq -r --arg p "$pci1" '.vfs[] | select(.pci==$p) | .owner')" "sriovnet/cid-vm1/net1" \
	"kvnetctl sriov: the VF is owned by the attachment"
assert_eq "$(echo "$sr" | jq -r --arg p "$pci1" '.vfs[] | select(.pci==$p) | .mac + " " + (.vlan|tostring)')" \
	"$mac1 100" "kvnetctl sriov: the VF carries the guest MAC and vlan 100"
assert_eq "$(echo "$sr" | jq -r '.simulated')" true "kvnetctl sriov says the node is simulated"
assert_eq "$(kvctl -o json status | jq -r '.sriov.pools[0] | "\(.total) \(.allocated) \(.free)"')" "4 2 2" \
	"kvnetctl status: 4 VFs, 2 allocated, 2 free"
assert_true "no links created in the sandbox (only lo)" test "$(ip -n "$SBX_A" -o link show | wc -l)" -eq 1
assert_true "CHECK vm1 passes" cni check "$conf" cid-vm1 "$SBX_A" net1 --args "$(vmargs vm1)"

# ---- 3rd and 4th succeed, 5th: pool exhausted
res3=$(cni add "$conf" cid-vm3 "$SBX_C" net1 --args "$(vmargs vm3)")
res4=$(cni add "$conf" cid-vm4 "$SBX_C" net2 --args "$(vmargs vm4)")
pcis=$(printf '%s\n' "$pci1" "$pci2" "$(echo "$res3" | pci_of)" "$(echo "$res4" | pci_of)" | sort -u | wc -l)
assert_eq "$pcis" 4 "four VMs hold four distinct VFs"
assert_eq "$(cni_fail_code add "$conf" cid-vm5 "$SBX_C" net3 --args "$(vmargs vm5)")" 100 "5th VM: code 100 (exhausted)"
assert_true "exhaustion message names the pool" grep -q "pool 'intel.com/sriov_a' is exhausted" "$KV_TMP/cni-err.$$"
assert_eq "$(kvctl -o json ipam | jq '[.claims[] | select(.key=="vm/default/vm5/net3")] | length')" 0 \
	"failed ADD released its new IP claim"

# ---- DEL frees the VF; the next ADD gets it
cni del "$conf" cid-vm2 "$SBX_B" net1 --args "$(vmargs vm2)"
assert_eq "$(kvctl -o json sriov | jq -r --arg p "$pci2" '.vfs[] | select(.pci==$p) | .owner // "free"')" free \
	"DEL frees vm2's VF"
res5=$(cni add "$conf" cid-vm5 "$SBX_C" net3 --args "$(vmargs vm5)")
assert_eq "$(echo "$res5" | pci_of)" "$pci2" "the next ADD gets the freed VF"
assert_true "DEL of an unknown attachment succeeds" cni del "$conf" cid-nope "$SBX_B" net1 --args "$(vmargs vm9)"

# ---- restart: allocations survive kill -9
before=$(kvctl -o json sriov | jq -c '[.vfs[] | {pci, owner, mac, vlan}] | sort_by(.pci)')
kill9_netd
start_netd "$NODE_NS" --config "$NETD_CONF"
after=$(kvctl -o json sriov | jq -c '[.vfs[] | {pci, owner, mac, vlan}] | sort_by(.pci)')
assert_eq "$after" "$before" "allocations kept across kill -9 + restart"
assert_eq "$(kvctl -o json endpoints | jq -r '.[] | select(.containerID=="cid-vm1") | .pciAddress')" "$pci1" \
	"endpoint record keeps the PCI address across restart"
assert_true "CHECK vm1 passes after restart" cni check "$conf" cid-vm1 "$SBX_A" net1 --args "$(vmargs vm1)"
assert_eq "$(cni_fail_code add "$conf" cid-vm6 "$SBX_C" net4 --args "$(vmargs vm6)")" 100 \
	"after restart the pool is still full: code 100"

# ---- the same VM in a second sandbox while the first holds a VF: a second VF, same IP and MAC
cni del "$conf" cid-vm3 "$SBX_C" net1 --args "$(vmargs vm3)"
res1b=$(cni add "$conf" cid-vm1-target "$SBX_B" net1 --args "$(vmargs vm1)")
pci1b=$(echo "$res1b" | pci_of)
assert_true "vm1's second sandbox gets a VF" is_fake_vf "$pci1b"
assert_ne "$pci1b" "$pci1" "vm1's second sandbox gets a second VF"
assert_eq "$(echo "$res1b" | result_ip4) $(echo "$res1b" | mac_of)" "$ip1 $mac1" "vm1's second sandbox keeps IP and MAC"
cni del "$conf" cid-vm1-target "$SBX_B" net1 --args "$(vmargs vm1)"
assert_eq "$(kvctl -o json sriov | jq -r --arg p "$pci1" '.vfs[] | select(.pci==$p) | .owner')" "sriovnet/cid-vm1/net1" \
	"DEL of the second sandbox leaves the first one's VF alone"

# ---- CHECK notices a VF that vanished from sysfs
mv "$SYSFS/devices/pci0000:00/0000:3b:00.0/virtfn1" "$KV_TMP/virtfn1.saved"
mv "$SYSFS/devices/pci0000:00/0000:3b:00.0/virtfn0" "$KV_TMP/virtfn0.saved"
assert_false "CHECK fails when the VF is gone from sysfs" cni check "$conf" cid-vm1 "$SBX_A" net1 --args "$(vmargs vm1)"
mv "$KV_TMP/virtfn0.saved" "$SYSFS/devices/pci0000:00/0000:3b:00.0/virtfn0"
mv "$KV_TMP/virtfn1.saved" "$SYSFS/devices/pci0000:00/0000:3b:00.0/virtfn1"
assert_true "CHECK passes again once it is back" cni check "$conf" cid-vm1 "$SBX_A" net1 --args "$(vmargs vm1)"

# ---- invalid combinations: code 7
code=$(cni_fail_code add "$conf" cid-ctr "$SBX_B" eth0)
assert_eq "$code" 7 "binding sriov for a container: code 7"
assert_true "container message says VM attachments" grep -q "binding 'sriov' is for VM attachments" "$KV_TMP/cni-err.$$"
badres=$(mkconf badres "")
sed -i 's|intel.com/sriov_a|intel.com/nope|' "$badres"
code=$(cni_fail_code add "$badres" cid-bad "$SBX_B" net1 --args "$(vmargs vm7)")
assert_eq "$code" 7 "unknown resourceName: code 7"
assert_true "unknown resourceName message names the configured ones" \
	grep -q "unknown resourceName 'intel.com/nope'; configured: 'intel.com/sriov_a'" "$KV_TMP/cni-err.$$"
assert_eq "$(kvctl -o json ipam | jq '[.claims[] | select(.key=="vm/default/vm7/net1")] | length')" 0 \
	"unknown resourceName: no claim left behind"
masq=$(mkconf masq ',"ipMasq":true')
assert_eq "$(cni_fail_code add "$masq" cid-masq "$SBX_B" net1 --args "$(vmargs vm8)")" 7 "ipMasq with sriov: code 7"
pmconf=$(mkconf pm ',"capabilities":{"portMappings":true}')
assert_eq "$(cni_fail_code add "$pmconf" cid-pm "$SBX_B" net1 --args "$(vmargs vm8)" \
	--cap 'portMappings=[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]')" 7 "portMappings with sriov: code 7"

# ---- everything released
cni del "$conf" cid-vm1 "$SBX_A" net1 --args "$(vmargs vm1)"
cni del "$conf" cid-vm4 "$SBX_C" net2 --args "$(vmargs vm4)"
cni del "$conf" cid-vm5 "$SBX_C" net3 --args "$(vmargs vm5)"
assert_eq "$(kvctl -o json sriov | jq '[.vfs[] | select(.owner)] | length')" 0 "all VFs free after DEL"
assert_eq "$(kvctl -o json endpoints | jq length)" 0 "no endpoints left"
assert_eq "$(find "$NETD_STATE/sriov" -type f | wc -l)" 0 "no SR-IOV claim files left"

# ---- a node without pools
stop_netd
start_netd "$NODE_NS"
assert_eq "$(cni_fail_code add "$conf" cid-nopool "$SBX_A" net1 --args "$(vmargs vm1)")" 7 "no pools configured: code 7"
assert_true "no-pools message names the config key" \
	grep -q "no SR-IOV pools configured on this node (netd config 'sriovPools')" "$KV_TMP/cni-err.$$"
stop_netd

finish
