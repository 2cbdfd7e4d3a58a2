#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Persistent IPs through IPAMClaims (docs/multus.md), against the embedded API with kubectl and kvnet-multus
# running the reference macvlan + host-local (with the ips capability):
# - `kubectl get ipamclaims` (both kubectls) shows the claims with their network, interface and addresses;
#   a claim without spec.network or with a bad status.ips is refused;
# - pod A with ipam-claim-reference gets an address on net1 and the claim's status.ips holds it (ownerPod A);
#   after A's DEL, pod B (no claim) gets another address of the range, and pod A2 (a new pod, the same claim)
#   gets A's address back;
# - a missing claim, a claim of another network and a selection whose 'ips' differ from the claim's each fail
#   the ADD with an error naming the claim (and both address lists), and leave nothing in the sandbox; so does
#   a result the claim cannot hold (three addresses): the delegate is rolled back, host-local keeps none;
# - the controller: a VM whose network's NAD has "allowPersistentIPs": true gets the IPAMClaim
#   <vm>.<network> (spec.network the config's name, spec.interface its launcher pod interface, owned by the
#   VM); the launcher pod's networks annotation names it in that network's ipam-claim-reference and not in
#   the other network's; kvnet-multus on that launcher pod fills the claim; deleting the VM deletes it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-controller.sh"
source "$(dirname "$0")/lib-multus.sh"

kv_init
require_kvnet
require_file "$KV_BIN/kvnet-multus"
require_ref_plugins macvlan host-local
ctl_init
start_controller --nodes 1
multus_node
ctl_kubectls

HL=$KV_TMP/host-local
MCONF=$KV_TMP/multus.conf
jq -n --arg kc "$KCFG" --arg cd "$CONF_DIR" --arg cache "$KV_TMP/multus" --arg bin "$KV_BIN" \
	'{cniVersion: "1.0.0", name: "multus-cni-network", type: "kvnet-multus", kubeconfig: $kc,
	  clusterNetwork: "kvtest", confDir: $cd, cniDir: $cache, binDir: $bin}' >"$MCONF"

# run_cni CMD NS POD SANDBOX: kvnet-multus for pod NS/POD in SANDBOX (container id ctr-POD), in the node's
# namespace as a runtime runs it. Sets RC, OUT (stdout: the result or the error object).
run_cni() {
	local uid
	uid=$(k get pod -n "$2" "$3" -o jsonpath='{.metadata.uid}' 2>/dev/null || echo none)
	RC=0
	OUT=$(ip netns exec "$NODE_NS" env -i PATH="$PATH" ASAN_OPTIONS="$ASAN_OPTIONS" UBSAN_OPTIONS="$UBSAN_OPTIONS" \
		CNI_COMMAND="$1" CNI_CONTAINERID="ctr-$3" CNI_NETNS="$(nspath "$4")" CNI_IFNAME=eth0 CNI_PATH="$REF_CNI_DIR" \
		CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=$2;K8S_POD_NAME=$3;K8S_POD_UID=$uid" KVNET_NETD_SOCKET="$NETD_SOCK" \
		"$KV_BIN/kvnet-multus" <"$MCONF" 2>"$KV_TMP/err") || RC=$?
	if [ "$RC" -ne 0 ] && { [ "$RC" -ne 1 ] || [ -z "$OUT" ]; }; then
		head -n 40 "$KV_TMP/err" # a crash or a sanitizer report, not a CNI error
	fi
}
addr_of() { ip -n "$1" -4 -o addr show dev "$2" 2>/dev/null | awk '{print $4}' | head -n 1; }
claim_ips() { k get ipamclaim -n "${2:-default}" "$1" -o json | jq -c '.status.ips // []'; }
claim() { # NAME NETWORK [INTERFACE]
	k apply -f - >/dev/null <<EOT
apiVersion: k8s.cni.cncf.io/v1alpha1
kind: IPAMClaim
metadata: {name: $1, namespace: default}
spec: {network: $2, interface: ${3:-net1}}
EOT
}
# an ADD that must fail: the error names want, the sandbox has no interface, the plugin kept no cache
assert_add_fails() { # POD SANDBOX WANT WHAT
	run_cni ADD default "$1" "$2"
	assert_eq "$RC" 1 "$4: ADD fails"
	# shellcheck disable=SC2016 # $w is jq's
	assert_true "... with an error naming it: $(jq -r '.msg' <<<"$OUT" 2>/dev/null)" \
		jq -e --arg w "$3" '.msg | contains($w)' <<<"$OUT"
	assert_no_link "$2" eth0
	assert_no_link "$2" net1
	assert_false "... and no cache of it" test -e "$KV_TMP/multus/kvnet-multus/ctr-$1"
}

# ---------------------------------------------------------------- the API
nad persist default '{"cniVersion":"1.0.0","name":"persistnet","type":"macvlan","master":"kvmac0","mode":"bridge",
  "allowPersistentIPs":true,"capabilities":{"ips":true},
  "ipam":{"type":"host-local","subnet":"10.78.0.0/24","dataDir":"'"$HL"'"}}'
nad plain default '{"cniVersion":"1.0.0","name":"plainnet","type":"macvlan","master":"kvmac0","mode":"bridge",
  "ipam":{"type":"host-local","subnet":"10.79.0.0/24","dataDir":"'"$HL"'"}}'
claim vma.blue persistnet
claim other.red plainnet

for kc in "${KUBECTLS[@]}"; do
	out=$(kk "$kc" get ipamclaims 2>&1)
	assert_true "$(basename "$kc") get ipamclaims: NAME NETWORK INTERFACE IPS AGE ($(head -n 1 <<<"$out" | tr -s ' '))" \
		grep -Eq '^NAME +NETWORK +INTERFACE +IPS +AGE' <<<"$out"
	assert_true "$(basename "$kc") get ipamclaims lists vma.blue (persistnet, net1, none yet)" \
		grep -Eq '^vma\.blue +persistnet +net1 +<none> ' <<<"$out"
done
assert_true "the discovery lists ipamclaims at k8s.cni.cncf.io/v1alpha1" \
	sh -c "ip netns exec $NS env KUBECONFIG=$KCFG kubectl api-resources --api-group=k8s.cni.cncf.io | grep -Eq '^ipamclaims +k8s.cni.cncf.io/v1alpha1 +true +IPAMClaim'"
bad=$(k apply --validate=false -f - 2>&1 <<EOT || true
apiVersion: k8s.cni.cncf.io/v1alpha1
kind: IPAMClaim
metadata: {name: nonet}
spec: {interface: net1}
EOT
)
assert_true "a claim without spec.network is refused ($bad)" grep -q "spec.network" <<<"$bad"
bad=$(api PATCH /apis/k8s.cni.cncf.io/v1alpha1/namespaces/default/ipamclaims/vma.blue/status \
	-H 'Content-Type: application/merge-patch+json' -d '{"status":{"ips":["10.78.0.5"]}}')
assert_eq "$(code)" 422 "a status.ips without a prefix is refused (422: $(jq -r .message <<<"$bad"))"

# ---------------------------------------------------------------- pods and the claim
mkns SA a
mkns SB b
mkns SA2 a2
mkns SX x
pod default pod-a '[{"name":"persist","ipam-claim-reference":"vma.blue"}]'
pod default pod-b '[{"name":"persist"}]'
pod default pod-a2 '[{"name":"persist","ipam-claim-reference":"vma.blue"}]'

run_cni ADD default pod-a "$SA"
[ "$RC" -eq 0 ] || echo "$OUT"
assert_eq "$RC" 0 "ADD of pod A with ipam-claim-reference vma.blue"
A=$(addr_of "$SA" net1)
assert_true "pod A's net1 has an address of 10.78.0.0/24 ($A)" grep -q '^10\.78\.0\.' <<<"$A"
assert_eq "$(claim_ips vma.blue)" "[\"$A\"]" "the claim's status.ips is A's address"
assert_eq "$(k get ipamclaim vma.blue -o jsonpath='{.status.ownerPod}')" pod-a "the claim's ownerPod is pod A"
assert_true "kubectl get ipamclaims shows the address" sh -c \
	"ip netns exec $NS env KUBECONFIG=$KCFG kubectl get ipamclaims vma.blue | grep -q '$A'"

k delete pod pod-a >/dev/null
run_cni DEL default pod-a "$SA"
assert_eq "$RC" 0 "DEL of pod A"
assert_no_link "$SA" net1
assert_eq "$(claim_ips vma.blue)" "[\"$A\"]" "the claim keeps the address after DEL"

run_cni ADD default pod-b "$SB"
assert_eq "$RC" 0 "ADD of pod B, no claim"
B=$(addr_of "$SB" net1)
assert_true "pod B gets an address of the same range ($B)" grep -q '^10\.78\.0\.' <<<"$B"
assert_ne "$B" "$A" "pod B's address is not A's"

run_cni ADD default pod-a2 "$SA2"
[ "$RC" -eq 0 ] || echo "$OUT"
assert_eq "$RC" 0 "ADD of pod A2 (a new pod, the same claim)"
assert_eq "$(addr_of "$SA2" net1)" "$A" "pod A2 gets A's address back"
assert_eq "$(k get ipamclaim vma.blue -o jsonpath='{.status.ownerPod}')" pod-a "the claim is not rewritten"

# ---------------------------------------------------------------- bad cases
pod default pod-x1 '[{"name":"persist","ipam-claim-reference":"nosuch"}]'
assert_add_fails pod-x1 "$SX" "IPAMClaim 'default/nosuch' not found" "a missing claim"
pod default pod-x2 '[{"name":"persist","ipam-claim-reference":"other.red"}]'
assert_add_fails pod-x2 "$SX" "IPAMClaim 'other.red' is for network 'plainnet'" "a claim of another network"
pod default pod-x3 '[{"name":"persist","ipam-claim-reference":"vma.blue","ips":["10.78.0.200/24"]}]'
assert_add_fails pod-x3 "$SX" "'ips' [10.78.0.200/24] differ from the addresses of IPAMClaim 'vma.blue' [$A]" \
	"ips that differ from the claim's"

# the claim cannot take what the ADD got (three addresses, a claim holds two): the ADD is rolled back
nad triple default '{"cniVersion":"1.0.0","name":"triplenet","type":"macvlan","master":"kvmac0","mode":"bridge",
  "ipam":{"type":"host-local","dataDir":"'"$HL"'","ranges":[[{"subnet":"10.81.0.0/24"}],[{"subnet":"10.82.0.0/24"}],
  [{"subnet":"10.83.0.0/24"}]]}}'
claim vmt.triple triplenet
pod default pod-x4 '[{"name":"triple","ipam-claim-reference":"vmt.triple"}]'
assert_add_fails pod-x4 "$SX" "writing its addresses to IPAMClaim 'default/vmt.triple' failed: result has 3 addresses" \
	"a result the claim cannot hold"
assert_true "host-local allocated in its store for triplenet" test -d "$HL/triplenet"
assert_eq "$(find "$HL/triplenet" -name '10.*' | wc -l)" 0 "host-local released the rolled-back addresses"
assert_true "(the store holds allocations as files: pod A2's)" test -e "$HL/persistnet/${A%/*}"
assert_eq "$(claim_ips vmt.triple)" "[]" "the claim stays empty"

for p in pod-b pod-a2; do
	k delete pod "$p" >/dev/null
done
run_cni DEL default pod-b "$SB"
run_cni DEL default pod-a2 "$SA2"
assert_eq "$RC" 0 "DEL of pod A2"

# ---------------------------------------------------------------- the controller
cat >"$KV_TMP/vm.yaml" <<'YAML'
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: vmp
spec:
  running: true
  template:
    spec:
      domain:
        devices:
          interfaces:
          - {name: default, masquerade: {}}
          - {name: red, bridge: {}}
          - {name: blue, bridge: {}}
        resources:
          requests: {memory: 64Mi}
      networks:
      - {name: default, pod: {}}
      - {name: red, multus: {networkName: plain}}
      - {name: blue, multus: {networkName: default/persist}}
YAML
k apply -f "$KV_TMP/vm.yaml" >/dev/null
for _ in $(seq 1 50); do
	lp=$(k get pods -l vm.kubevirt.io/name=vmp -o jsonpath='{.items[0].metadata.name}' 2>/dev/null || true)
	[ -n "$lp" ] && break
	sleep 0.1
done
assert_true "the VM's launcher pod exists ($lp)" test -n "$lp"
c=$(k get ipamclaim vmp.blue -o json 2>&1)
assert_eq "$(jq -r '.spec.network + " " + .spec.interface' <<<"$c")" "persistnet net2" \
	"IPAMClaim vmp.blue: spec.network the config's name, spec.interface the launcher pod's net2"
assert_eq "$(jq -r '.metadata.ownerReferences[0] | .kind + "/" + .name' <<<"$c")" VirtualMachine/vmp "... owned by the VM"
assert_eq "$(jq -r '.metadata.ownerReferences[0].uid' <<<"$c")" "$(k get vm vmp -o jsonpath='{.metadata.uid}')" "... its uid"
assert_false "no claim for the network without allowPersistentIPs" k get ipamclaim vmp.red
nets=$(k get pod "$lp" -o json | jq -r '.metadata.annotations["k8s.v1.cni.cncf.io/networks"]')
assert_eq "$(jq -r '[.[] | .name + "=" + (.["ipam-claim-reference"] // "-")] | join(",")' <<<"$nets")" \
	"plain=-,persist=vmp.blue" "the launcher pod's networks annotation names the claim on persist only"

# a running VMI's launcher pod is kept in step with its spec (NIC hot-plug): the reference stays
api PATCH /apis/kubevirt.io/v1/namespaces/default/virtualmachineinstances/vmp/status \
	-H 'Content-Type: application/merge-patch+json' -d '{"status":{"phase":"Running"}}' >/dev/null
assert_eq "$(code)" 200 "the VMI marked Running"
sleep 0.5
assert_eq "$(k get pod "$lp" -o json | jq -r '.metadata.annotations["k8s.v1.cni.cncf.io/networks"]')" "$nets" \
	"the running launcher pod's networks annotation keeps the reference"

# the launcher pod as kvnet-node runs it: macvlan makes net2, kvnet (chained as the VM binding) moves its address
# to the guest's tap; the claim records it, and a new pod of the VM (a restart) gets it back
vm_addr() { k get pod "$lp" -o json | jq -r '.metadata.annotations["k8s.v1.cni.cncf.io/network-status"] | fromjson |
	[.[] | select(.name == "default/persist") | .ips[]?] | unique | join(",")'; }
mkns SV v
run_cni ADD default "$lp" "$SV"
[ "$RC" -eq 0 ] || echo "$OUT"
assert_eq "$RC" 0 "kvnet-multus ADD of the launcher pod"
V=$(claim_ips vmp.blue | jq -r '.[0] // empty')
assert_true "the VM's claim holds an address of persistnet ($V)" grep -q '^10\.78\.0\.' <<<"$V"
assert_eq "$(vm_addr)" "${V%/*}" "the launcher pod's network-status has it on persist"
run_cni DEL default "$lp" "$SV"
assert_eq "$RC" 0 "DEL of the launcher pod"
pod default pod-y '[{"name":"persist"}]' # takes the next free address meanwhile
mkns SY y
run_cni ADD default pod-y "$SY"
assert_eq "$RC" 0 "ADD of another pod on persistnet meanwhile"
mkns SV2 v2
run_cni ADD default "$lp" "$SV2"
[ "$RC" -eq 0 ] || echo "$OUT"
assert_eq "$RC" 0 "kvnet-multus ADD of the VM's pod again, in a new sandbox"
assert_eq "$(vm_addr)" "${V%/*}" "the VM gets its claimed address back"
run_cni DEL default "$lp" "$SV2"
run_cni DEL default pod-y "$SY"

k delete vm vmp >/dev/null
gone=no
for _ in $(seq 1 50); do
	if ! k get ipamclaim vmp.blue >/dev/null 2>&1; then
		gone=yes
		break
	fi
	sleep 0.1
done
assert_eq "$gone" yes "deleting the VM deletes its IPAMClaim"
assert_true "a claim of no VM stays" k get ipamclaim vma.blue

stop_controller
ctl_log_clean
finish
