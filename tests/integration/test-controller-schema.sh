#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The embedded API serves KubeVirt's manifests as KubeVirt does, with the real kubectl: every kubectl on the
# list (the newest on PATH, and Debian's 1.20 where it is installed, KVNET_KUBECTL_OLD or
# /usr/local/lib/kvnet/kubectl-1.20, see scripts/deps.sh). Asserts: kubevirt.io/v1alpha3 is served (discovery
# lists it after the preferred v1; a VM applied as v1alpha3 is read back as v1alpha3 and as v1, one object);
# what kvnet-launcher would refuse is refused at apply with 422 Invalid naming the field (an unsupported
# interface binding, a hostDisk volume, a kernelPath climbing out of its image, a host path as
# containerDisk.image), and nothing is stored;
# `kubectl explain` prints the published schema's descriptions; kubectl's validation catches a type error
# (`running: "yes"`) before sending, and the server names the field when kubectl does not validate.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-controller.sh"

kv_init
ctl_init

ctl_kubectls

start_controller

# ---------------------------------------------------------------- kubevirt.io/v1alpha3
assert_eq "$(api GET /apis/kubevirt.io | jq -r '([.versions[].version] | join(",")) + " " + .preferredVersion.version')" \
	"v1,v1alpha3 v1" "/apis/kubevirt.io lists v1 and v1alpha3, v1 preferred"
assert_eq "$(api GET /apis/kubevirt.io/v1alpha3 | jq -r '[.resources[].name] | join(",")')" \
	"virtualmachines,virtualmachines/status,virtualmachineinstances,virtualmachineinstances/status,virtualmachineinstancemigrations,virtualmachineinstancemigrations/status" \
	"/apis/kubevirt.io/v1alpha3 lists KubeVirt's kinds"
n=0
for kc in "${KUBECTLS[@]}"; do
	n=$((n + 1))
	v=$(kk "$kc" version --client 2>/dev/null | grep -o 'v1\.[0-9]*' | head -n 1)
	cat >"$KV_TMP/old-$n.yaml" <<YAML
apiVersion: kubevirt.io/v1alpha3
kind: VirtualMachine
metadata:
  name: old-$n
spec:
  running: false
  template:
    spec:
      domain:
        devices:
          interfaces:
          - name: default
            bridge: {}
        resources:
          requests: {memory: 64Mi}
      networks:
      - name: default
        pod: {}
YAML
	assert_eq "$(kk "$kc" apply -f "$KV_TMP/old-$n.yaml" 2>&1)" "virtualmachine.kubevirt.io/old-$n created" \
		"kubectl $v apply of a kubevirt.io/v1alpha3 VM"
	assert_eq "$(kk "$kc" apply -f "$KV_TMP/old-$n.yaml" 2>&1)" "virtualmachine.kubevirt.io/old-$n unchanged" \
		"... applied again: unchanged"
	# (kubectl 1.30 and newer drop the version of a short name: vm.v1alpha3.kubevirt.io reads v1 there)
	assert_eq "$(kk "$kc" get virtualmachines.v1alpha3.kubevirt.io "old-$n" -o jsonpath='{.apiVersion}' 2>&1)" \
		"kubevirt.io/v1alpha3" "kubectl $v get virtualmachines.v1alpha3.kubevirt.io: a v1alpha3 object"
	assert_eq "$(kk "$kc" get vm.v1.kubevirt.io "old-$n" -o jsonpath='{.apiVersion} {.spec.template.spec.networks[0].name}' 2>&1)" \
		"kubevirt.io/v1 default" "... and as v1 the same object"
	kk "$kc" get vm.v1alpha3.kubevirt.io >"$KV_TMP/table" 2>&1 || true
	assert_true "kubectl $v get vm.v1alpha3.kubevirt.io prints the table" grep -Eq "^old-$n +[0-9]+s +Stopped" "$KV_TMP/table"
done
api GET /apis/kubevirt.io/v1alpha3/namespaces/default/virtualmachines >"$KV_TMP/list"
assert_eq "$(jq -r '.apiVersion + " " + ([.items[].apiVersion] | unique | join(","))' "$KV_TMP/list")" \
	"kubevirt.io/v1alpha3 kubevirt.io/v1alpha3" "a v1alpha3 list: the list and its items as v1alpha3"
api GET /apis/kubevirt.io/v1/namespaces/default/virtualmachines/old-1 >/dev/null
assert_eq "$(jq -r .apiVersion "$KV_TMP/body")" "kubevirt.io/v1" "... while the store keeps v1"
api POST /apis/kubevirt.io/v1alpha3/namespaces/default/virtualmachines -H 'Content-Type: application/json' \
	--data '{"apiVersion":"kubevirt.io/v1","kind":"VirtualMachine","metadata":{"name":"x"},"spec":{}}' >"$KV_TMP/st"
assert_eq "$(code)/$(jq -r .message "$KV_TMP/st")" "422/create: 'apiVersion' must be 'kubevirt.io/v1alpha3' here, got 'kubevirt.io/v1'" \
	"a v1 body sent to v1alpha3: 422 naming both"
api GET "/apis/kubevirt.io/v1alpha3/namespaces/default/virtualmachines?watch=1" --max-time 2 >"$KV_TMP/w" || true
assert_true "a v1alpha3 watch sends v1alpha3 objects" jq -e -s 'length > 0 and all(.[]; .object.apiVersion == "kubevirt.io/v1alpha3")' "$KV_TMP/w"

yaml2json() { python3 -c 'import sys, yaml, json; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))' "$1"; }

# ---------------------------------------------------------------- what the launcher refuses: 422 naming the field
rv=$(api GET /apis/kubevirt.io/v1/namespaces/default/virtualmachines | jq -r .metadata.resourceVersion)
bad_vm() { # NAME SPEC-OF-TEMPLATE (YAML flow)
	printf 'apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata: {name: %s}\nspec:\n  running: false\n  template:\n    spec: %s\n' "$1" "$2"
}
bad_vm slirp '{domain: {resources: {requests: {memory: 64Mi}}, devices: {interfaces: [{name: default, slirp: {}}]}}, networks: [{name: default, pod: {}}]}' >"$KV_TMP/slirp.yaml"
bad_vm hostdisk '{domain: {resources: {requests: {memory: 64Mi}}, devices: {disks: [{name: d}]}}, volumes: [{name: d, hostDisk: {path: /etc/shadow, type: Disk}}]}' >"$KV_TMP/hostdisk.yaml"
bad_vm hostkernel '{domain: {resources: {requests: {memory: 64Mi}}, firmware: {kernelBoot: {container: {image: kvnet.local/demo-guest:latest, kernelPath: /boot/../../../etc/shadow}}}}}' >"$KV_TMP/hostkernel.yaml"
bad_vm hostimage '{domain: {resources: {requests: {memory: 64Mi}}, devices: {disks: [{name: d}]}}, volumes: [{name: d, containerDisk: {image: /etc/shadow}}]}' >"$KV_TMP/hostimage.yaml"
# manifest | what it is | what the message must say (the field, then why)
REFUSED=(
	"slirp|an unsupported binding (slirp)|spec.template.spec.domain.devices.interfaces\[0\].slirp: not supported by kvnet-launcher"
	"hostdisk|a hostDisk volume|spec.template.spec.volumes\[0\].hostDisk: not supported"
	"hostkernel|a kernelPath climbing out of its image|spec.template.spec.domain.firmware.kernelBoot.container.kernelPath: must be an absolute path inside the image without '.' or '..'"
	"hostimage|a host path as containerDisk.image|spec.template.spec.volumes\[0\].containerDisk.image: '/etc/shadow' is a host path"
)
for kc in "${KUBECTLS[@]}"; do
	v=$(kk "$kc" version --client 2>/dev/null | grep -o 'v1\.[0-9]*' | head -n 1)
	for c in "${REFUSED[@]}"; do
		IFS='|' read -r f what want <<<"$c"
		out=$(kk "$kc" apply -f "$KV_TMP/$f.yaml" 2>&1 || true)
		assert_true "kubectl $v: $what is refused, naming the field ($out)" grep -q "$want" <<<"$out"
	done
done
api POST /apis/kubevirt.io/v1/namespaces/default/virtualmachines -H 'Content-Type: application/json' \
	--data-binary "$(yaml2json "$KV_TMP/slirp.yaml")" >"$KV_TMP/st"
assert_eq "$(code)/$(jq -r '.reason + " " + .details.kind + " " + .details.causes[0].field + ": " + .details.causes[0].message' "$KV_TMP/st")" \
	"422/Invalid VirtualMachine spec.template.spec.domain.devices.interfaces[0].slirp: not supported by kvnet-launcher" \
	"the Status: 422 Invalid, details.causes[0] with the field and the message"
assert_eq "$(api GET /apis/kubevirt.io/v1/namespaces/default/virtualmachines | jq -r .metadata.resourceVersion)" "$rv" \
	"none of the refused objects changed the store"

# ---------------------------------------------------------------- the published schema
api GET /openapi/v2 -H 'Accept: application/json' >"$KV_TMP/v2.json"
assert_eq "$(jq -r '[.definitions | to_entries[] | .value["x-kubernetes-group-version-kind"][] | .kind + "." + .version] | join(",")' "$KV_TMP/v2.json")" \
	"VirtualMachine.v1,VirtualMachine.v1alpha3,VirtualMachineInstance.v1,VirtualMachineInstance.v1alpha3,VirtualMachineInstanceMigration.v1,VirtualMachineInstanceMigration.v1alpha3,NetworkAttachmentDefinition.v1,IPAMClaim.v1alpha1" \
	"/openapi/v2 defines kvnet's kinds, each with its group-version-kinds"
api GET /openapi/v3 >"$KV_TMP/v3.json"
assert_true "/openapi/v3 lists the group-versions" jq -e '.paths["apis/kubevirt.io/v1"].serverRelativeURL and .paths["apis/k8s.cni.cncf.io/v1"]' "$KV_TMP/v3.json"
api GET "$(jq -r '.paths["apis/kubevirt.io/v1alpha3"].serverRelativeURL' "$KV_TMP/v3.json")" >"$KV_TMP/v3gv.json"
assert_eq "$(jq -c '[.components.schemas["io.kubevirt.v1.VirtualMachine"].properties.spec.properties.template.properties.spec.properties.domain.properties.devices.properties.interfaces.items.properties | keys[] | select(. == "bridge" or . == "masquerade" or . == "sriov")]' "$KV_TMP/v3gv.json")" \
	'["bridge","masquerade","sriov"]' "/openapi/v3/apis/kubevirt.io/v1alpha3: the same schema (interfaces: bridge, masquerade, sriov)"
printf 'apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata: {name: typo}\nspec: {running: "yes", template: {spec: {domain: {memory: {guest: 64Mi}}}}}\n' >"$KV_TMP/typo.yaml"
for kc in "${KUBECTLS[@]}"; do
	v=$(kk "$kc" version --client 2>/dev/null | grep -o 'v1\.[0-9]*' | head -n 1)
	kk "$kc" explain vm.spec.template.spec.domain.devices.interfaces >"$KV_TMP/explain" 2>&1 || true
	assert_true "kubectl $v explain vm.spec.template.spec.domain.devices.interfaces: the descriptions ($(head -c 300 "$KV_TMP/explain" | tr -s ' \n' ' '))" \
		bash -c "grep -q 'interfaces <\[\]Object>' '$KV_TMP/explain' && grep -q 'The guest.s network interfaces, one per network' '$KV_TMP/explain' &&
			grep -Eq '^ +masquerade' '$KV_TMP/explain' && grep -q 'Masquerade binding' '$KV_TMP/explain' && grep -q 'SR-IOV binding' '$KV_TMP/explain'"
	kk "$kc" explain vmi.spec.domain.firmware.kernelBoot.container.kernelPath >"$KV_TMP/explain" 2>&1 || true
	assert_true "kubectl $v explain of kernelPath says it is inside the image" grep -q 'inside the image' "$KV_TMP/explain"
	kk "$kc" explain network-attachment-definitions.spec.config >"$KV_TMP/explain" 2>&1 || true
	assert_true "kubectl $v explain of a NAD's spec.config" grep -q "CNI config" "$KV_TMP/explain"
	out=$(kk "$kc" apply -f "$KV_TMP/typo.yaml" 2>&1 || true)
	assert_true "kubectl $v validates: running: \"yes\" is a type error before sending ($out)" \
		grep -q 'spec.running): invalid type for io.kubevirt.v1.VirtualMachine.spec.running: got "string", expected "boolean"' <<<"$out"
	out=$(kk "$kc" apply --validate=false -f "$KV_TMP/typo.yaml" 2>&1 || true)
	assert_true "... and with --validate=false the server's 422 names the field ($out)" \
		grep -q 'The VirtualMachine "typo" is invalid: spec.running: .*must be a boolean, got string' <<<"$out"
done
assert_false "nothing named typo was stored" bash -c "ip netns exec $NS env KUBECONFIG=$KCFG kubectl get vm typo >/dev/null 2>&1"

ctl_log_clean
finish
