#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# KubeVirt's own virtctl (v1.6.0, test peer "virtctl" built by make test-deps) against kvnet-controller
# --embedded, in a network namespace of its own: the VirtualMachine manifests `virtctl create vm` writes
# (runStrategy, guest memory, a containerDisk volume, cloud-init user data) are accepted by kubectl apply,
# stored as given, and the VM controller makes the VM's VMI; virtctl's client reads the kubeconfig
# kvnet wrote. Then virtctl's subresource commands through subresources.kubevirt.io (controller/subresource.c):
# discovery, start/stop/restart with runStrategy Always, with spec.running and with Manual (the VM's spec and
# the VMI that results: no node runs anything here), migrate (the VMIM it creates; the test writes the VMI's
# Running phase as a node would), pause/unpause (the VMI's mark for its node; the test writes the Paused condition as
# the node would), and the refusals with KubeVirt's messages.
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
created=$(k get vm web -o jsonpath='{.metadata.creationTimestamp}')
assert_eq "$(k apply -f "$KV_TMP/web.yaml" 2>&1)" "virtualmachine.kubevirt.io/web unchanged" "the same manifest again: unchanged"
assert_eq "$(k replace -f "$KV_TMP/web.yaml" 2>&1)" "virtualmachine.kubevirt.io/web replaced" "kubectl replace with creationTimestamp: null"
assert_eq "$(k get vm web -o jsonpath='{.metadata.creationTimestamp}')" "$created" "... keeps the server's creationTimestamp"
vm=$(k get vm web -o json)
assert_eq "$(jq -r '.spec.runStrategy + " " + .spec.template.spec.domain.memory.guest' <<<"$vm")" "Always 128Mi" \
	"the stored VM keeps virtctl's runStrategy and guest memory"
assert_eq "$(jq -r '.spec.template.spec.volumes[0].containerDisk.image' <<<"$vm")" registry.invalid/disk:1 "... and its containerDisk volume"
for _ in $(seq 1 50); do k get vmi web >/dev/null 2>&1 && break; sleep 0.1; done
assert_true "runStrategy Always: the VM controller made the VMI" k get vmi web
assert_eq "$(k get vmi web -o json | jq -r '.spec.volumes[] | select(.cloudInitNoCloud) | .cloudInitNoCloud.userDataBase64' | base64 -d)" \
	"$(cat "$KV_TMP/user-data")" "the VMI carries virtctl's cloud-init user data"

# ---------------------------------------------------------------- subresources.kubevirt.io
assert_eq "$(k get --raw /apis | jq -r '.groups[] | select(.name == "subresources.kubevirt.io") | [.versions[].version] + [.preferredVersion.version] | join(",")')" \
	"v1,v1alpha3,v1" "discovery lists subresources.kubevirt.io (v1 preferred, v1alpha3)"
assert_eq "$(k get --raw /apis/subresources.kubevirt.io/v1 | jq -r '[.resources[].name] | join(",")')" \
	"virtualmachines/start,virtualmachines/stop,virtualmachines/restart,virtualmachines/migrate,virtualmachineinstances/pause,virtualmachineinstances/unpause" \
	"... with the subresources served"
assert_true "kubectl api-resources still works with that group" k api-resources
# vfail ARGS: virtctl must fail; its output on one line
vfail() {
	local out
	if out=$(vctl "$@" 2>&1); then
		echo "unexpected success: $out"
	else
		tr '\n' ' ' <<<"$out"
	fi
}
until_true() { for _ in $(seq 1 50); do "$@" && return 0; sleep 0.1; done; return 1; }
uid_of() { k get vmi "$1" -o jsonpath='{.metadata.uid}' 2>/dev/null; }
uid_changed() { local u; u=$(uid_of "$1"); [ -n "$u" ] && [ "$u" != "$2" ]; }
no_vmi() { ! k get vmi "$1" >/dev/null 2>&1; }
conflict() { echo "Operation cannot be fulfilled on virtualmachine.kubevirt.io \"$1\": $2"; }
lacks() { ! grep -qF "$1" <<<"$2"; }
runs() { k get vm "$1" -o jsonpath='{.spec.runStrategy}/{.spec.running}'; }

out=$(vfail start web)
assert_true "start of a running VM (runStrategy Always): 409 ($out)" grep -qF "$(conflict web 'VM is already running')" <<<"$out"
assert_true "... and virtctl finds the server's version its own (no version warning)" \
	lacks 'different from the KubeVirt version' "$out"
uid=$(uid_of web)
assert_eq "$(vctl restart web 2>&1)" "VM web was scheduled to restart" "virtctl restart"
assert_true "... deletes the VMI and the VM controller makes a new one" until_true uid_changed web "$uid"
out=$(vfail migrate web)
assert_true "migrate of a VM whose VMI is not Running: 409 ($out)" grep -qF "$(conflict web 'VM is not running')" <<<"$out"
k patch vmi web --subresource=status --type merge -p '{"status":{"phase":"Running"}}' >/dev/null
assert_eq "$(vctl migrate web 2>&1)" "VM web was scheduled to migrate" "virtctl migrate of a Running VMI"
vmim=$(k get vmim -o json)
assert_eq "$(jq -r '.items | length' <<<"$vmim") $(jq -r '.items[0].metadata.generateName + " " + .items[0].spec.vmiName' <<<"$vmim")" \
	"1 kubevirt-migrate-vm- web" "... creates a VirtualMachineInstanceMigration of the VMI (generateName kubevirt-migrate-vm-)"
assert_true "... named from its generateName" grep -Eq '^kubevirt-migrate-vm-[a-z0-9]{5}$' <<<"$(jq -r '.items[0].metadata.name' <<<"$vmim")"
out=$(vfail migrate web)
assert_true "a second migrate: 500 with the admission's in-flight message ($out)" \
	grep -q 'Internal error occurred: in-flight migration detected' <<<"$out"
out=$(vfail migrate nope)
assert_true "migrate of a VM that does not exist: 404 ($out)" grep -qF 'virtualmachine.kubevirt.io "nope" not found' <<<"$out"
assert_eq "$(vctl stop web --dry-run 2>&1 | tail -n 1)/$(runs web)" "VM web was scheduled to stop/Always/" \
	"virtctl stop --dry-run changes nothing"
assert_eq "$(vctl stop web 2>&1)" "VM web was scheduled to stop" "virtctl stop"
assert_eq "$(runs web)" "Halted/" "... sets runStrategy Halted"
assert_true "... and the VMI goes" until_true no_vmi web
out=$(vfail stop web)
assert_true "stop of a stopped VM: 409 ($out)" grep -qF "$(conflict web 'VM is not running')" <<<"$out"
out=$(vfail restart web)
assert_true "restart of a Halted VM: 409 as KubeVirt words it ($out)" \
	grep -qF "$(conflict web 'RunStategy Halted does not support manual restart requests')" <<<"$out"
assert_eq "$(vctl start web 2>&1)" "VM web was scheduled to start" "virtctl start"
assert_eq "$(runs web)" "Always/" "... sets runStrategy Always"
assert_true "... and the VM controller makes the VMI" until_true k get vmi web
out=$(vfail restart web --force --grace-period 5)
assert_true "restart --force with a grace period other than 0: 400 ($out)" \
	grep -qF 'For force restart, only gracePeriod=0 is supported for now' <<<"$out"
# pause / unpause (controller/subresource.c): the VMI is marked for its node (kvnet.io/pause-requested), whose agent
# has the launcher pause the domain; the node is played here by writing the VMI's status as it would (a real guest
# paused and resumed: test-kvnet-node.sh)
paused_mark() { k get vmi web -o jsonpath='{.metadata.annotations.kvnet\.io/pause-requested}'; }
has_vmi() { k get vmi "$1" >/dev/null 2>&1; }
until_true has_vmi web
k patch vmi web --subresource=status --type merge -p '{"status":{"phase":"Scheduled"}}' >/dev/null
out=$(vfail pause vmi web)
assert_true "pause of a VMI that is not Running: 409 as KubeVirt words it ($out)" \
	grep -qF 'Operation cannot be fulfilled on virtualmachineinstance.kubevirt.io "web": VM is not running' <<<"$out"
k patch vmi web --subresource=status --type merge -p '{"status":{"phase":"Running"}}' >/dev/null
out=$(vctl pause vmi web --dry-run 2>&1)
assert_eq "$(paused_mark)" "" "virtctl pause --dry-run ($(tail -n 1 <<<"$out")) marks nothing"
out=$(vctl pause vmi web 2>&1)
assert_true "virtctl pause vmi web ($out)" grep -q 'web was scheduled to pause' <<<"$out"
assert_eq "$(paused_mark)" true "... marks the VMI for its node: kvnet.io/pause-requested=true"
out=$(vfail unpause vmi web)
assert_true "unpause before the node paused it: 409 VMI is not paused ($out)" \
	grep -qF 'virtualmachineinstance.kubevirt.io "web": VMI is not paused' <<<"$out"
k patch vmi web --subresource=status --type merge -p '{"status":{"conditions":[{"type":"Paused","status":"True","reason":"PausedByUser"}]}}' >/dev/null
out=$(vfail pause vm web)
assert_true "pause again once the node paused it: 409 VMI is already paused ($out)" \
	grep -qF 'VMI is already paused' <<<"$out"
assert_true "the VM's printableStatus says Paused" until_true test "$(k get vm web -o jsonpath='{.status.printableStatus}')" = Paused
out=$(vctl unpause vmi web 2>&1)
assert_true "virtctl unpause vmi web ($out)" grep -q 'web was scheduled to unpause' <<<"$out"
assert_eq "$(paused_mark)" "" "... takes the mark away"
k patch vmi web --subresource=status --type merge -p '{"status":{"conditions":[]}}' >/dev/null
assert_true "the VM's printableStatus is Running again" until_true test "$(k get vm web -o jsonpath='{.status.printableStatus}')" = Running
out=$(vfail pause vmi nope)
assert_true "pause of a VMI that does not exist: 404 ($out)" grep -qF 'virtualmachineinstance.kubevirt.io "nope" not found' <<<"$out"

# a VM that says spec.running (not runStrategy) keeps saying it
printf 'apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata: {name: old, creationTimestamp: null}\nspec: {running: false, template: {spec: {domain: {memory: {guest: 64Mi}}}}}\n' | k apply -f - >/dev/null
assert_eq "$(vctl start old 2>&1)/$(runs old)" "VM old was scheduled to start//true" "start of a VM with running: false sets running: true"
assert_true "... and it runs" until_true k get vmi old
out=$(vfail start old)
assert_true "... start again: 409 ($out)" grep -qF "$(conflict old 'VM is already running')" <<<"$out"
assert_eq "$(vctl stop old 2>&1)/$(runs old)" "VM old was scheduled to stop//false" "stop sets running: false"
assert_true "... and the VMI goes" until_true no_vmi old
# runStrategy Manual: the requests act on the VMI, the strategy stays
printf 'apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata: {name: man}\nspec: {runStrategy: Manual, template: {spec: {domain: {memory: {guest: 64Mi}}}}}\n' | k apply -f - >/dev/null
assert_eq "$(vctl start man 2>&1)/$(runs man)" "VM man was scheduled to start/Manual/" "start of a Manual VM keeps runStrategy Manual"
assert_true "... and makes its VMI" until_true k get vmi man
uid=$(uid_of man)
assert_eq "$(vctl restart man 2>&1)" "VM man was scheduled to restart" "restart of a Manual VM"
assert_true "... gives it a new VMI" until_true uid_changed man "$uid"
assert_eq "$(vctl stop man 2>&1)/$(runs man)" "VM man was scheduled to stop/Manual/" "stop of a Manual VM keeps runStrategy Manual"
assert_true "... and its VMI goes" until_true no_vmi man
assert_eq "$(k delete vm old man 2>&1 | wc -l)" 2 "kubectl delete of those two"

assert_eq "$(k delete vm web 2>&1)" 'virtualmachine.kubevirt.io "web" deleted' "kubectl delete of the VM"
stop_controller
ctl_log_clean
finish
