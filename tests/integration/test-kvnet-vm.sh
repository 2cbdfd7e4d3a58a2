#!/usr/bin/env bash
# VM attachments: ADD with KVNET_VM_NAME=vm1 puts a tap in the sandbox, the result lists it with
# "sandbox" and the guest MAC; after DEL, the same VM added in another sandbox (another container
# ID: a migration target) gets the same IP and MAC; a second VM gets a different IP; a pod of another namespace
# naming the VM is refused; a MAC another attachment has is refused; names taken in the sandbox fail the ADD and
# the links there stay; the node's own namespace as a sandbox is refused.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
kvnet_setup SBX_A SBX_B SBX_C
vm1_args='IgnoreUnknown=1;K8S_POD_NAMESPACE=default;KVNET_VM_NAME=vm1;KVNET_VM_INTERFACE=default'
vm2_args='IgnoreUnknown=1;K8S_POD_NAMESPACE=default;KVNET_VM_NAME=vm2;KVNET_VM_INTERFACE=default'

res1=$(cni add "$conf" cid-launcher-a "$SBX_A" tap0 --args "$vm1_args")
ip1=$(echo "$res1" | result_ip4)
mac1=$(echo "$res1" | jq -r --arg p "$(nspath "$SBX_A")" '.interfaces[] | select(.name=="tap0" and .sandbox==$p) | .mac')
log "vm1 in A: ip=$ip1 mac=$mac1"
assert_true "result lists tap0 with the sandbox path" test -n "$mac1"
assert_true "guest MAC is a valid MAC" grep -Eqi '^([0-9a-f]{2}:){5}[0-9a-f]{2}$' <<<"$mac1"
assert_true "tap0 in sandbox A is a tun/tap device" sh -c "ip -n $SBX_A -d link show dev tap0 | grep -q tun"
assert_true "result has vm1's address" test -n "$ip1"
eps=$(kvctl -o json endpoints)
assert_eq "$(echo "$eps" | jq -r '.[] | select(.containerID=="cid-launcher-a") | .kind')" vm "endpoint kind vm"
assert_eq "$(echo "$eps" | jq -r '.[] | select(.containerID=="cid-launcher-a") | .mac')" "$mac1" \
	"kvnetctl endpoints shows the guest MAC"
assert_nft_has "$ip1"

cni del "$conf" cid-launcher-a "$SBX_A" tap0 --args "$vm1_args"
assert_no_link "$SBX_A" tap0
assert_eq "$(kvctl -o json endpoints | jq length)" 0 "no endpoint after DEL"

# Same VM, other sandbox, other container ID
res1b=$(cni add "$conf" cid-launcher-b "$SBX_B" tap0 --args "$vm1_args")
ip1b=$(echo "$res1b" | result_ip4)
mac1b=$(echo "$res1b" | jq -r '.interfaces[] | select(.name=="tap0" and .sandbox != null) | .mac')
assert_eq "$ip1b" "$ip1" "vm1 in sandbox B keeps its IP"
assert_eq "$mac1b" "$mac1" "vm1 in sandbox B keeps its MAC"
assert_link "$SBX_B" tap0

# A second VM
res2=$(cni add "$conf" cid-launcher-c "$SBX_C" tap0 --args "$vm2_args")
ip2=$(echo "$res2" | result_ip4)
mac2=$(echo "$res2" | jq -r '.interfaces[] | select(.name=="tap0" and .sandbox != null) | .mac')
assert_ne "$ip2" "$ip1" "vm2 gets a different IP"
assert_ne "$mac2" "$mac1" "vm2 gets a different MAC"
assert_true "CHECK vm1 passes" cni check "$conf" cid-launcher-b "$SBX_B" tap0 --args "$vm1_args"

# A pod of another namespace naming vm1 (KVNET_VM_NAMESPACE, or the cni-args of its own annotation): refused, so
# that no tenant takes another namespace's VM's address and MAC; nothing is attached, vm1's claim stays as it was
mkns SBX_X x
code=$(cni_fail_code add "$conf" cid-intruder "$SBX_X" tap0 \
	--args "IgnoreUnknown=1;K8S_POD_NAMESPACE=tenant;KVNET_VM_NAMESPACE=default;KVNET_VM_NAME=vm1;KVNET_VM_INTERFACE=default")
assert_eq "$code" 7 "a pod of namespace 'tenant' naming the VM default/vm1: refused (code 7)"
assert_true "... the error says why" grep -q "the VM's namespace 'default' is not the pod's namespace 'tenant'" "$KV_TMP"/cni-err.*
assert_no_link "$SBX_X" tap0
assert_eq "$(kvctl -o json endpoints | jq '[.[] | select(.containerID=="cid-intruder")] | length')" 0 "... no endpoint"
assert_eq "$(kvctl -o json ipam | jq -r '[.claims[] | select(.key | startswith("vm/default/vm1/"))] | length')" 1 \
	"... vm1's claim is still the only one for it"

# A MAC is one attachment's on a network: a pod asking for vm1's MAC (the `mac` capability, CNI_ARGS MAC=) is
# refused and gets nothing; a MAC nobody has is given; once its holder is gone, another pod may have it
mkns SBX_M m
code=$(cni_fail_code add "$conf" cid-macthief "$SBX_M" eth0 --args "IgnoreUnknown=1;MAC=$mac1")
assert_eq "$code" 101 "a pod asking for vm1's MAC $mac1: refused (code 101, in use)"
assert_true "... the error names vm1's claim" grep -q "requested MAC $mac1 is in use by 'vm/default/vm1/default'" "$KV_TMP"/cni-err.*
assert_no_link "$SBX_M" eth0
cni add "$conf" cid-mac1 "$SBX_M" eth0 --args "IgnoreUnknown=1;MAC=02:00:00:aa:00:01" >/dev/null
assert_eq "$(ip -n "$SBX_M" -j link show dev eth0 | jq -r '.[0].address')" 02:00:00:aa:00:01 "a free MAC is given"
mkns SBX_N n
assert_eq "$(cni_fail_code add "$conf" cid-mac2 "$SBX_N" eth0 --args "IgnoreUnknown=1;MAC=02:00:00:aa:00:01")" 101 \
	"... and refused to a second pod"
cni del "$conf" cid-mac1 "$SBX_M" eth0 --args "IgnoreUnknown=1;MAC=02:00:00:aa:00:01"
cni add "$conf" cid-mac2 "$SBX_N" eth0 --args "IgnoreUnknown=1;MAC=02:00:00:aa:00:01" >/dev/null
assert_eq "$(ip -n "$SBX_N" -j link show dev eth0 | jq -r '.[0].address')" 02:00:00:aa:00:01 \
	"... which has it once the first pod is gone"
cni del "$conf" cid-mac2 "$SBX_N" eth0 --args "IgnoreUnknown=1;MAC=02:00:00:aa:00:01"

# Names taken in the sandbox: ADD fails with code 102 and the links that were there keep their ifindex (a failed
# ADD undoes only what it made); no endpoint, no claim left
mkns SBX_P p
ip -n "$SBX_P" link add eth0 type veth peer name keep0
ip -n "$SBX_P" link add tap0 type veth peer name keep1
i_eth0=$(ip -n "$SBX_P" -j link show dev eth0 | jq '.[0].ifindex')
i_tap0=$(ip -n "$SBX_P" -j link show dev tap0 | jq '.[0].ifindex')
claims0=$(kvctl -o json ipam | jq '.claims | length')
assert_eq "$(cni_fail_code add "$conf" cid-taken "$SBX_P" eth0)" 102 "a container ADD onto an existing eth0: code 102"
assert_eq "$(ip -n "$SBX_P" -j link show dev eth0 | jq '.[0].ifindex')" "$i_eth0" "... eth0 is still the one that was there"
assert_eq "$(cni_fail_code add "$conf" cid-taken-vm "$SBX_P" tap0 \
	--args 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;KVNET_VM_NAME=vm3;KVNET_VM_INTERFACE=default')" 102 \
	"a VM ADD onto an existing tap0: code 102"
assert_eq "$(ip -n "$SBX_P" -j link show dev tap0 | jq '.[0].ifindex')" "$i_tap0" "... tap0 is still the one that was there"
assert_eq "$(ip -n "$SBX_P" -o link show | wc -l)" 5 "... and nothing else came or went in the sandbox (lo and two pairs)"
assert_eq "$(kvctl -o json endpoints | jq '[.[] | select(.containerID | startswith("cid-taken"))] | length')" 0 "... no endpoint"
assert_eq "$(kvctl -o json ipam | jq '.claims | length')" "$claims0" "... no claim left"

# The node's own namespace (netd's, where the bridge and the uplinks are) as a sandbox: refused, nothing created there
links0=$(ip -n "$NODE_NS" -o link show | wc -l)
code=$(cni_fail_code add "$conf" cid-nodens "$NODE_NS" eth9)
assert_eq "$code" 4 "CNI_NETNS naming the node's own namespace: refused (code 4, the environment)"
assert_true "... saying so" grep -q "is the node's own (netd's) network namespace, not a pod's sandbox" "$KV_TMP"/cni-err.*
assert_eq "$(ip -n "$NODE_NS" -o link show | wc -l)" "$links0" "... no link created or removed in it"
assert_eq "$(kvctl -o json endpoints | jq '[.[] | select(.containerID=="cid-nodens")] | length')" 0 "... no endpoint"

cni del "$conf" cid-launcher-b "$SBX_B" tap0 --args "$vm1_args"
cni del "$conf" cid-launcher-c "$SBX_C" tap0 --args "$vm2_args"
assert_no_link "$SBX_B" tap0
assert_no_link "$SBX_C" tap0
assert_nft_lacks "$ip1"
assert_nft_lacks "$ip2"
assert_eq "$(kvctl -o json endpoints | jq length)" 0 "no endpoints at the end"

finish
