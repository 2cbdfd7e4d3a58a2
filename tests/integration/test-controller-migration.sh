#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kvnet-controller --embedded --nodes 3: live migrations from VirtualMachineInstanceMigration objects through
# kubectl, the test playing the nodes' side with `kubectl patch --subresource=status` (docs/controller.md,
# "Migrations"). Asserts: a VMIM for a missing VMI, for a VMI that is not running, to the VMI's own node, or
# a second one while one is in flight is refused (422) naming why, and nothing is stored; a VMIM is
# Scheduled with a target launcher pod on another node (label kubevirt.io/migrationJobUID, anti-affinity)
# and the VMI's migrationState; the VM says Migrating; target pod Running -> PreparingTarget,
# targetNodeDomainDetected -> TargetReady, startTimestamp -> Running, completed -> Succeeded with the VMI on
# the target node and the source pod deleted; `kubectl get vmim` prints NAME PHASE VMI; a failed migration
# deletes its target pod and leaves the VMI; deleting a VMIM before the start cancels it (target pod gone,
# migrationState failed); a restart mid-migration keeps it as it is; a non-migratable VMI gets a Failed
# VMIM naming the reason; the controller exits cleanly (sanitizer build).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-controller.sh"

kv_init
ctl_init

# until CMD succeeds (3 s at most)
wait_for() {
	for _ in $(seq 1 30); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 0
}
vmim_phase() { k get vmim "$1" -o jsonpath='{.status.phase}'; }
phase_is() { [ "$(vmim_phase "$1")" = "$2" ]; }
k_is() { [ "$(k "${@:2}" 2>/dev/null)" = "$1" ]; } # WANT KUBECTL-ARGS...
ms() { k get vmi vm-a -o jsonpath="{.status.migrationState.$1}"; }
# node_status KIND NAME JSON: what a node writes, through the status subresource
node_status() { k patch "$1" "$2" --subresource=status --type merge -p "$3" >/dev/null; }

start_controller --nodes 3 --node-cpu 2 --node-memory 4Gi
cat >"$KV_TMP/vm-a.yaml" <<'YAML'
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: vm-a
spec:
  running: true
  template:
    spec:
      domain:
        devices: {}
        resources:
          requests: {memory: 1Gi}
YAML
vmim() { # NAME VMI [EXTRA-SPEC-LINE]: kubectl create -f of a VMIM; the output on stdout
	printf 'apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstanceMigration\nmetadata:\n  name: %s\nspec:\n  vmiName: %s\n%s\n' \
		"$1" "$2" "${3:-}" >"$KV_TMP/vmim.yaml"
	k create -f "$KV_TMP/vmim.yaml" 2>&1 || true
}

# ---------------------------------------------------------------- refused
out=$(vmim mig-x nope)
assert_true "a VMIM for a missing VMI is refused, naming why ($out)" grep -q 'the VMI "default/nope" does not exist' <<<"$out"
k apply -f "$KV_TMP/vm-a.yaml" >/dev/null
wait_for k_is Scheduled get vmi vm-a -o jsonpath='{.status.phase}'
out=$(vmim mig-x vm-a)
assert_true "... for a VMI that is not running yet ($out)" grep -q 'Cannot migrate VMI "default/vm-a": it is not running (phase Scheduled)' <<<"$out"
node_status vmi vm-a '{"status":{"phase":"Running"}}'
out=$(vmim mig-x vm-a "  addedNodeSelector: {kubernetes.io/hostname: node1}")
assert_true "... to the node it runs on ($out)" grep -q 'kubernetes.io/hostname=node1 is the node VMI vm-a runs on' <<<"$out"
assert_eq "$(k get vmim -o name)" "" "nothing was stored"
src_pod=$(k get pods -l kubevirt.io/created-by="$(k get vmi vm-a -o jsonpath='{.metadata.uid}')" -o jsonpath='{.items[0].metadata.name}')

# ---------------------------------------------------------------- scheduled
assert_eq "$(vmim mig-1 vm-a)" "virtualmachineinstancemigration.kubevirt.io/mig-1 created" "kubectl create -f migration.yaml"
uid=$(k get vmim mig-1 -o jsonpath='{.metadata.uid}')
out=$(vmim mig-2 vm-a)
assert_true "a second VMIM while one is in flight is refused, naming the first ($out)" \
	grep -q "in-flight migration detected. Active migration job ($uid) is currently already in progress for VMI vm-a." <<<"$out"
wait_for phase_is mig-1 Scheduled
assert_eq "$(vmim_phase mig-1)" Scheduled "mig-1 is Scheduled"
dst_pod=$(ms targetPod)
assert_eq "$(ms migrationUid) $(ms sourceNode) $(ms sourcePod) $(ms targetNode) $(ms mode)" \
	"$uid node1 $src_pod node2 PreCopy" "the VMI's migrationState: uid, source node1 and its pod, target node2, PreCopy"
pod=$(k get pod "$dst_pod" -o json)
assert_eq "$(jq -r '[.metadata.labels["kubevirt.io/migrationJobUID"], .spec.nodeName, .status.phase] | join(" ")' <<<"$pod")" \
	"$uid node2 Pending" "the target pod $dst_pod: labelled with the migration, on node2, Pending"
assert_eq "$(jq -r '.spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey' <<<"$pod")" \
	"kubernetes.io/hostname" "... with an anti-affinity per host to the VMI's pods"
wait_for k_is Migrating get vm vm-a -o jsonpath='{.status.printableStatus}'
assert_eq "$(k get vm vm-a -o jsonpath='{.status.printableStatus}')" Migrating "the VM says Migrating"
k get vmim >"$KV_TMP/table" 2>&1 || true
assert_true "kubectl get vmim prints NAME PHASE VMI: $(tr -s ' \n' ' ' <"$KV_TMP/table")" \
	bash -c "grep -Eq '^NAME +PHASE +VMI' '$KV_TMP/table' && grep -Eq '^mig-1 +Scheduled +vm-a' '$KV_TMP/table'"

# a restart keeps the migration as it is: no second target pod
stop_controller
start_controller --nodes 3 --node-cpu 2 --node-memory 4Gi --metrics-listen 127.0.0.1:9642
sleep 0.3
assert_eq "$(vmim_phase mig-1)/$(ms targetPod)/$(k get pods -l kubevirt.io/migrationJobUID="$uid" -o name)" \
	"Scheduled/$dst_pod/pod/$dst_pod" "after a restart: still Scheduled, the same single target pod"

# ---------------------------------------------------------------- the nodes' side, step by step
node_status pod "$dst_pod" '{"status":{"phase":"Running"}}'
wait_for phase_is mig-1 PreparingTarget
assert_eq "$(vmim_phase mig-1)" PreparingTarget "target pod Running: PreparingTarget"
node_status vmi vm-a '{"status":{"migrationState":{"targetNodeAddress":"10.0.0.2","targetNodeDomainDetected":true}}}'
wait_for phase_is mig-1 TargetReady
assert_eq "$(vmim_phase mig-1)" TargetReady "targetNodeDomainDetected: TargetReady"
node_status vmi vm-a '{"status":{"migrationState":{"startTimestamp":"2026-12-05T10:00:00Z"}}}'
wait_for phase_is mig-1 Running
assert_eq "$(vmim_phase mig-1)" Running "startTimestamp: Running"
node_status vmi vm-a '{"status":{"migrationState":{"completed":true,"endTimestamp":"2026-12-05T10:00:02Z","kvnetDowntimeMs":68,"kvnetNetworkOutageMs":64.696,"kvnetEarlyPackets":3}}}'
wait_for phase_is mig-1 Succeeded
assert_eq "$(vmim_phase mig-1)" Succeeded "completed: Succeeded"
assert_eq "$(k get vmim mig-1 -o json | jq -r '[.status.phaseTransitionTimestamps[].phase] | join(" ")')" \
	"Pending Scheduling Scheduled PreparingTarget TargetReady Running Succeeded" "... every phase in phaseTransitionTimestamps"
assert_eq "$(k get vmi vm-a -o jsonpath='{.status.nodeName} {.metadata.labels.kubevirt\.io/nodeName}')" "node2 node2" \
	"the VMI is on node2 (status.nodeName, label)"
wait_for k_is "" get pod "$src_pod" -o name
assert_false "the source pod $src_pod is deleted" k get pod "$src_pod"
assert_eq "$(k get pods -o name)" "pod/$dst_pod" "... the target pod is the VMI's pod"
wait_for k_is Running get vm vm-a -o jsonpath='{.status.printableStatus}'
assert_eq "$(k get vm vm-a -o jsonpath='{.status.printableStatus}')" Running "the VM is Running again"
# ev SELECTOR: "reason|type|message" of each Event the field selector picks, oldest first (docs/events.md)
ev() { k get events --field-selector "$1" -o json | jq -r '.items | sort_by(.metadata.name) | .[] | [.reason, .type, .message] | join("|")'; }
assert_eq "$(ev involvedObject.kind=VirtualMachineInstanceMigration,involvedObject.name=mig-1)" \
"SuccessfulCreate|Normal|Created migration target pod $dst_pod on node node2
Migrating|Normal|Migrating vm-a from node node1 to node node2
Migrated|Normal|Migrated vm-a from node node1 to node node2 (QEMU downtime 68 ms, guest paused 64.7 ms, early switchover delivered 3 packet(s))" \
	"Events on mig-1: target pod, started, completed with the outage the nodes measured"
assert_eq "$(ev involvedObject.kind=VirtualMachineInstance,involvedObject.name=vm-a,source=kvnet-controller | grep -E '^Migra')" \
"Migrating|Normal|VirtualMachineInstance is migrating to node node2
Migrated|Normal|The VirtualMachineInstance migrated from node node1 to node node2 (QEMU downtime 68 ms, guest paused 64.7 ms, early switchover delivered 3 packet(s))" \
	"... and on vm-a"

# ---------------------------------------------------------------- failure: the target pod goes, the VMI stays
vmim mig-fail vm-a >/dev/null
wait_for phase_is mig-fail Scheduled
fail_pod=$(ms targetPod)
node_status vmi vm-a '{"status":{"migrationState":{"failed":true,"failureReason":"Live migration failed: connection reset"}}}'
wait_for phase_is mig-fail Failed
assert_eq "$(vmim_phase mig-fail)" Failed "failed: Failed"
assert_eq "$(k get vmim mig-fail -o jsonpath='{.status.conditions[?(@.type=="Failed")].message}')" \
	"Live migration failed: connection reset" "... with the reason in its Failed condition"
wait_for k_is "" get pod "$fail_pod" -o name
assert_false "... the target pod $fail_pod is deleted" k get pod "$fail_pod"
assert_eq "$(k get vmi vm-a -o jsonpath='{.status.nodeName}')" node2 "... the VMI stays on node2"
assert_eq "$(ev involvedObject.name=mig-fail,reason=FailedMigration)" \
	"FailedMigration|Warning|MigrationFailed: Live migration failed: connection reset" "... a FailedMigration Warning on the VMIM"
assert_eq "$(ev involvedObject.kind=VirtualMachineInstance,involvedObject.name=vm-a,reason=FailedMigration)" \
	"FailedMigration|Warning|Migration to node node1 failed, the VirtualMachineInstance stays on node node2: Live migration failed: connection reset" \
	"... and on the VMI, saying where it stays"

# ---------------------------------------------------------------- cancel before the start
vmim mig-cancel vm-a >/dev/null
wait_for phase_is mig-cancel Scheduled
cancel_pod=$(ms targetPod)
assert_eq "$(k delete vmim mig-cancel 2>&1)" 'virtualmachineinstancemigration.kubevirt.io "mig-cancel" deleted' "kubectl delete vmim before the start"
wait_for k_is "" get pod "$cancel_pod" -o name
assert_false "... the target pod $cancel_pod is deleted" k get pod "$cancel_pod"
assert_eq "$(ms failed) $(ms abortStatus)" "true Succeeded" "... migrationState failed, abortStatus Succeeded"

# ---------------------------------------------------------------- not migratable: accepted, then Failed naming why
node_status vmi vm-a '{"status":{"conditions":[{"type":"LiveMigratable","status":"False","reason":"DisksNotLiveMigratable","message":"cannot migrate VMI with non-shared PVCs"}]}}'
assert_eq "$(vmim mig-disk vm-a)" "virtualmachineinstancemigration.kubevirt.io/mig-disk created" "a VMIM for a non-migratable VMI is created"
wait_for phase_is mig-disk Failed
assert_eq "$(vmim_phase mig-disk)/$(k get vmim mig-disk -o jsonpath='{.status.conditions[?(@.type=="Failed")].reason}')" \
	"Failed/DisksNotLiveMigratable" "... and Failed with the reason DisksNotLiveMigratable"
assert_eq "$(k get pods -o name)" "pod/$dst_pod" "no pod was made for it"

# ---------------------------------------------------------------- metrics (docs/metrics.md), KubeVirt's names
# read with the reference Prometheus parser (tests/tools/prom.py, python3-prometheus-client)
PY=/usr/bin/python3
if "$PY" -c 'import prometheus_client.parser' 2>/dev/null; then
	scrape() { ip netns exec "$NS" curl -sS -m 5 http://127.0.0.1:9642/metrics; }
	value() { scrape | "$PY" "$KV_ROOT/tests/tools/prom.py" value "$1" "$2"; }
	fams=$(scrape | "$PY" "$KV_ROOT/tests/tools/prom.py" families)
	for f in kubevirt_vmi_info kubevirt_vmi_phase_count kubevirt_vm_info kubevirt_vmi_migrations_in_pending_phase \
		kubevirt_vmi_migrations_in_scheduling_phase kubevirt_vmi_migrations_in_running_phase kubevirt_vmi_migration_succeeded \
		kubevirt_vmi_migration_failed kubevirt_vmi_migration_phase_transition_time_from_creation_seconds \
		kvnet_migration_guest_pause_seconds kvnet_migration_qemu_downtime_seconds kvnet_controller_reconcile_duration_seconds; do
		assert_true "the page parses and has $f" grep -qw "$f" <<<"$fams"
	done
	phase=$(k get vmi vm-a -o jsonpath='{.status.phase}')
	assert_eq "$(value kubevirt_vmi_info "{\"name\": \"vm-a\", \"namespace\": \"default\", \"node\": \"node2\", \"phase\": \"$phase\", \"os\": \"<none>\"}")" 1 \
		"kubevirt_vmi_info{name=vm-a,node=node2,phase=$phase,os=<none>} 1"
	assert_eq "$(value kubevirt_vmi_phase_count "{\"node\": \"node2\", \"phase\": \"$phase\"}")" 1 "kubevirt_vmi_phase_count{node=node2,phase=$phase} 1"
	assert_eq "$(value kubevirt_vm_info '{"name": "vm-a"}')" 1 "kubevirt_vm_info{name=vm-a} 1"
	assert_eq "$(value kubevirt_vmi_migration_succeeded '{"vmi": "vm-a", "vmim": "mig-1", "namespace": "default"}')/$(value kubevirt_vmi_migration_failed '{"vmim": "mig-fail"}')/$(value kubevirt_vmi_migration_failed '{"vmim": "mig-disk"}')" \
		1/1/1 "kubevirt_vmi_migration_succeeded{vmim=mig-1} 1, _failed{vmim=mig-fail} 1 and {vmim=mig-disk} 1"
	assert_eq "$(value kubevirt_vmi_migrations_in_running_phase '{}')/$(value kubevirt_vmi_migrations_in_pending_phase '{}')" 0/0 \
		"no migration in flight: in_running_phase 0, in_pending_phase 0"
	assert_eq "$(value kvnet_migrations_total '{"result": "succeeded"}')/$(value kvnet_migrations_total '{"result": "failed"}')" 1/2 \
		"kvnet_migrations_total: 1 succeeded, 2 failed (since the restart)"
	assert_eq "$(value kvnet_migration_guest_pause_seconds_count '{}') $(value kvnet_migration_guest_pause_seconds_sum '{}') $(value kvnet_migration_qemu_downtime_seconds_sum '{}')" \
		"1 0.064696 0.068" "the outage histograms hold mig-1's figures (guest pause 64.696 ms, QEMU downtime 68 ms)"
	assert_eq "$(value kubevirt_vmi_migration_phase_transition_time_from_creation_seconds_count '{"phase": "Succeeded"}')" 1 \
		"the phase transition histogram saw one VMIM reach Succeeded"
	assert_true "kvnet_controller_events_total{result=posted} counts the Events ($(value kvnet_controller_events_total '{"result": "posted"}'))" \
		test "$(value kvnet_controller_events_total '{"result": "posted"}')" -ge 5
	assert_true "kvnet_controller_api_requests_total: kubectl's creates (POST 201: $(value kvnet_controller_api_requests_total '{"method": "POST", "code": "201"}')) and the nodes' status patches (PATCH 200: $(value kvnet_controller_api_requests_total '{"method": "PATCH", "code": "200"}'))" \
		test "$(value kvnet_controller_api_requests_total '{"method": "POST", "code": "201"}')" -ge 3 -a \
		"$(value kvnet_controller_api_requests_total '{"method": "PATCH", "code": "200"}')" -ge 3
	assert_true "kvnet_controller_reconcile_total{controller=migration,result=ok} counts passes" \
		test "$(value kvnet_controller_reconcile_total '{"controller": "migration", "result": "ok"}')" -ge 1
else
	skip_part "metrics: the Prometheus text parser is needed (python3-prometheus-client: make deps)"
fi
for bad in "nope" "127.0.0.1:99999" "localhost:9642"; do
	out=$("$CTL" --embedded --metrics-listen "$bad" 2>&1) && rc=0 || rc=$?
	assert_eq "$rc $out" "2 kvnet-controller: --metrics-listen must be IPV4:PORT$([ "$bad" = nope ] || echo ' (port 0..65535)'), got '$bad'" \
		"--metrics-listen $bad: exit 2 naming the flag and the value"
done

stop_controller
ctl_log_clean
finish
