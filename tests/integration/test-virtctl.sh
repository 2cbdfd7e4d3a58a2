#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# KubeVirt's own virtctl (v1.6.0, test peer "virtctl" built by make test-deps) against kvnet-controller
# --embedded, in a network namespace of its own: the VirtualMachine manifests `virtctl create vm` writes
# (runStrategy, guest memory, a containerDisk volume, cloud-init user data) are accepted by kubectl apply,
# stored as given, and the VM controller makes the VM's VMI; virtctl's client reads the kubeconfig
# kvnet wrote. virtctl's subresource commands (start/stop/migrate through subresources.kubevirt.io) are
# not served by the embedded API yet: the test checks they fail cleanly, not that they work.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-controller.sh"

kv_init
ctl_init
require_peer VIRTCTL virtctl
ctl_kubectls
start_controller
vctl() { ip netns exec "$NS" "$VIRTCTL" --kubeconfig "$KCFG" "$@"; }

printf '#cloud-config\nhostname: web\n' >"$KV_TMP/user-data"
vctl create vm --name web --run-strategy Always --memory 128Mi --volume-containerdisk src:registry.invalid/disk:1 \
	--cloud-init-user-data "$(base64 -w0 <"$KV_TMP/user-data")" >"$KV_TMP/web.yaml"
assert_true "virtctl create vm writes a kubevirt.io/v1 VirtualMachine" grep -q '^kind: VirtualMachine$' "$KV_TMP/web.yaml"
# virtctl (like kubectl create --dry-run -o yaml) writes `creationTimestamp: null`, in the VM's metadata and its
# template's: kubectl's validation against the published schema takes it (metadata is an object with
# properties, as kube-apiserver publishes ObjectMeta), and every kubectl the tests know agrees.
assert_true "virtctl's manifest has creationTimestamp: null" grep -q 'creationTimestamp: null' "$KV_TMP/web.yaml"
for kc in "${KUBECTLS[@]}"; do
	assert_eq "$(kk "$kc" apply --dry-run=client -f "$KV_TMP/web.yaml" 2>&1)" \
		"virtualmachine.kubevirt.io/web created (dry run)" "$kc apply --dry-run=client (validation on) of virtctl's manifest"
done
sed 's/^  creationTimestamp: null$/  creationTimestamp: 5/' "$KV_TMP/web.yaml" >"$KV_TMP/bad-ts.yaml"
printf 'apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata: {name: bad, creationTimestamp: null, labels: [a]}\nspec: {running: false, template: {spec: {domain: {memory: {guest: 64Mi}}}}}\n' >"$KV_TMP/bad-labels.yaml"
for kc in "${KUBECTLS[@]}"; do
	out=$(kk "$kc" apply --dry-run=client -f "$KV_TMP/bad-ts.yaml" 2>&1 || true)
	assert_true "$kc still refuses a number as creationTimestamp ($(head -c 120 <<<"$out"))" grep -q 'creationTimestamp' <<<"$out"
	out=$(kk "$kc" apply --dry-run=client -f "$KV_TMP/bad-labels.yaml" 2>&1 || true)
	assert_true "$kc still refuses a list as metadata.labels ($(head -c 120 <<<"$out"))" grep -q 'VirtualMachine.metadata.labels' <<<"$out"
done
assert_eq "$(vctl create vm --name web --run-strategy Always --memory 128Mi --volume-containerdisk src:registry.invalid/disk:1 \
	--cloud-init-user-data "$(base64 -w0 <"$KV_TMP/user-data")" | k apply -f - 2>&1)" "virtualmachine.kubevirt.io/web created" \
	"virtctl create vm | kubectl apply -f - (validation on)"
assert_true "the server set creationTimestamp (the client's null ignored)" \
	grep -Eq '^20[0-9-]+T[0-9:]+Z$' <<<"$(k get vm web -o jsonpath='{.metadata.creationTimestamp}')"
vm=$(k get vm web -o json)
assert_eq "$(jq -r '.spec.runStrategy + " " + .spec.template.spec.domain.memory.guest' <<<"$vm")" "Always 128Mi" \
	"the stored VM keeps virtctl's runStrategy and guest memory"
assert_eq "$(jq -r '.spec.template.spec.volumes[0].containerDisk.image' <<<"$vm")" registry.invalid/disk:1 "... and its containerDisk volume"
for _ in $(seq 1 50); do k get vmi web >/dev/null 2>&1 && break; sleep 0.1; done
assert_true "runStrategy Always: the VM controller made the VMI" k get vmi web
assert_eq "$(k get vmi web -o json | jq -r '.spec.volumes[] | select(.cloudInitNoCloud) | .cloudInitNoCloud.userDataBase64' | base64 -d)" \
	"$(cat "$KV_TMP/user-data")" "the VMI carries virtctl's cloud-init user data"

rc=0
out=$(vctl stop web 2>&1) || rc=$?
assert_ne "$rc" 0 "virtctl stop (subresources.kubevirt.io, not served yet) fails ($(tr '\n' ' ' <<<"$out" | cut -c1-160))"
assert_eq "$(k get vm web -o jsonpath='{.spec.runStrategy}')" Always "... and changes nothing"

assert_eq "$(k delete vm web 2>&1)" 'virtualmachine.kubevirt.io "web" deleted' "kubectl delete of the VM"
stop_controller
ctl_log_clean
finish
