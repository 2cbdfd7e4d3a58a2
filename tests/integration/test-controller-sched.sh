#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kvnet-controller --embedded --nodes N: simulated nodes and the scheduler, through kubectl. Asserts: core
# v1 discovery (pods po, nodes no); `kubectl get nodes` lists node1..node3 Ready with their capacity; a VM
# applied with kubectl gets its VMI Scheduled on a node (NODENAME, status.nodeName, the label
# kubevirt.io/nodeName) and a launcher pod virt-launcher-<vmi>-xxxxx on that node (`kubectl get pods -o
# wide`), owned by the VMI, with KubeVirt's labels and the VMI's Multus network in its annotation; a
# second VM goes to the other, emptier node; a VM asking for more memory than any node has stays Pending
# with PodScheduled=False/Unschedulable and Kubernetes' "0/3 nodes are available: 3 Insufficient memory."
# message, which follows when the nodes change; a restart keeps the nodes (no duplicates) and the pods
# (no second pod for a scheduled VMI); deleting a VM takes its VMI and its pod away; without --nodes a
# VMI stays Pending and says why; the controller exits cleanly on SIGTERM (sanitizer build).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-controller.sh"

kv_init
ctl_init

# wait_for WHAT CMD...: up to 3 s for CMD to succeed
wait_for() {
	shift
	for _ in $(seq 1 30); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 0
}

# ---------------------------------------------------------------- no nodes: Pending, and why
start_controller
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
        cpu: {cores: 1}
        devices:
          interfaces:
          - {name: default, masquerade: {}}
          - {name: sec, bridge: {}}
        resources:
          requests: {memory: 1Gi}
      networks:
      - {name: default, pod: {}}
      - {name: sec, multus: {networkName: vlan100}}
YAML
assert_eq "$(k apply -f "$KV_TMP/vm-a.yaml" 2>&1)" "virtualmachine.kubevirt.io/vm-a created" "kubectl apply creates vm-a"
wait_for "a condition" bash -c "ip netns exec $NS env KUBECONFIG=$KCFG kubectl get vmi vm-a -o json | jq -e '.status.conditions[0].reason == \"Unschedulable\"'"
vmi=$(k get vmi vm-a -o json)
assert_eq "$(jq -r '.status.phase' <<<"$vmi")" Pending "without --nodes the VMI stays Pending"
assert_true "... with a PodScheduled=False condition saying there are no nodes ($(jq -r '.status.conditions[0].message' <<<"$vmi"))" \
	jq -e '.status.conditions[0] | .type == "PodScheduled" and .status == "False" and (.message | test("0/0 nodes are available.*--nodes"))' <<<"$vmi"
assert_eq "$(k get nodes -o name 2>&1)" "" "kubectl get nodes: none"
stop_controller

# ---------------------------------------------------------------- nodes
start_controller --nodes 3 --node-cpu 2 --node-memory 4Gi
assert_eq "$(api GET /api/v1 | jq -r '[.resources[] | select(.name | test("/") | not) | .name + ":" + (.shortNames // [] | join(","))] | join(" ")')" \
	"namespaces:ns pods:po nodes:no events:ev" "/api/v1 lists namespaces, pods, nodes and events with their short names"
k get nodes >"$KV_TMP/nodes" 2>&1 || true
assert_true "kubectl get nodes shows NAME STATUS ROLES AGE VERSION: $(tr -s ' \n' ' ' <"$KV_TMP/nodes")" \
	bash -c "grep -Eq '^NAME +STATUS +ROLES +AGE +VERSION' '$KV_TMP/nodes' && [ \$(grep -Ec '^node[123] +Ready +worker +[0-9]+s +v1' '$KV_TMP/nodes') = 3 ]"
assert_eq "$(k get no node2 -o jsonpath='{.metadata.labels.kubernetes\.io/hostname} {.metadata.labels.kubevirt\.io/schedulable} {.status.allocatable.cpu} {.status.allocatable.memory}')" \
	"node2 true 2 4Gi" "node2: hostname and schedulable labels, allocatable 2 CPUs and 4Gi"

# ---------------------------------------------------------------- the waiting VMI is scheduled
wait_for "vm-a scheduled" bash -c "[ \"\$(ip netns exec $NS env KUBECONFIG=$KCFG kubectl get vmi vm-a -o jsonpath='{.status.phase}')\" = Scheduled ]"
vmi=$(k get vmi vm-a -o json)
node_a=$(jq -r '.status.nodeName' <<<"$vmi")
assert_eq "$(jq -r '.status.phase' <<<"$vmi")/$node_a" "Scheduled/node1" "with nodes, the waiting VMI is Scheduled on node1 (a tie: first by name)"
assert_eq "$(jq -r '.metadata.labels["kubevirt.io/nodeName"]' <<<"$vmi")" node1 "... labelled kubevirt.io/nodeName=node1"
assert_eq "$(jq -r '.status.conditions[] | select(.type == "PodScheduled") | .status' <<<"$vmi")" True "... PodScheduled=True"
k get vmi vm-a >"$KV_TMP/table" 2>&1 || true
assert_true "kubectl get vmi shows it Scheduled with NODENAME: $(tr -s ' \n' ' ' <"$KV_TMP/table")" \
	grep -Eq '^vm-a +[0-9]+s +Scheduled +node1' "$KV_TMP/table"
vmi_uid=$(jq -r .metadata.uid <<<"$vmi")
pods=$(k get pods -l "kubevirt.io/created-by=$vmi_uid" -o json)
assert_eq "$(jq '.items | length' <<<"$pods")" 1 "one launcher pod for vm-a (label kubevirt.io/created-by)"
pod=$(jq '.items[0]' <<<"$pods")
pod_a=$(jq -r .metadata.name <<<"$pod")
assert_true "... named virt-launcher-vm-a-xxxxx ($pod_a)" grep -Eq '^virt-launcher-vm-a-[a-z0-9]{5}$' <<<"$pod_a"
assert_eq "$(jq -r '[.metadata.labels["kubevirt.io"], .metadata.labels["vm.kubevirt.io/name"], .spec.nodeName, .status.phase] | join(" ")' <<<"$pod")" \
	"virt-launcher vm-a node1 Pending" "... KubeVirt's labels, bound to node1, Pending"
assert_eq "$(jq -r '.metadata.ownerReferences[0] | .kind + "/" + .uid + "/" + (.controller | tostring)' <<<"$pod")" \
	"VirtualMachineInstance/$vmi_uid/true" "... owned by the VMI (controller: true)"
assert_eq "$(jq -c '.metadata.annotations["k8s.v1.cni.cncf.io/networks"] | fromjson | map([.namespace, .name, .interface, .["cni-args"].kvnet.vm.interface])' <<<"$pod")" \
	'[["default","vlan100","net1","sec"]]' \
	"... with the VMI's Multus network in k8s.v1.cni.cncf.io/networks (JSON form: namespace, name, pod interface net1, the VM interface for kvnet)"
assert_eq "$(jq -r '.spec.containers[0] | .name + " " + .resources.requests.cpu + " " + .resources.requests.memory' <<<"$pod")" \
	"compute 1 1Gi" "... its compute container requests 1 CPU and 1Gi"
k get pods -o wide >"$KV_TMP/table" 2>&1 || true
assert_true "kubectl get pods -o wide shows the pod on node1: $(tr -s ' \n' ' ' <"$KV_TMP/table")" \
	bash -c "grep -Eq '^NAME +READY +STATUS +RESTARTS +AGE +IP +NODE' '$KV_TMP/table' && grep -Eq '^$pod_a +0/1 +Pending +0 +[0-9]+s +<none> +node1' '$KV_TMP/table'"

# ---------------------------------------------------------------- Events (docs/events.md)
# ev SELECTOR: "reason|type|count|source|message" of each Event the field selector picks, oldest first
ev() { k get events --field-selector "$1" -o json | jq -r '.items | sort_by(.metadata.name) | .[] | [.reason, .type, (.count | tostring), .source.component, .message] | join("|")'; }
assert_eq "$(ev involvedObject.kind=VirtualMachine,involvedObject.name=vm-a)" \
	"SuccessfulCreate|Normal|1|kvnet-controller|Started the virtual machine by creating the new virtual machine instance vm-a" \
	"an Event on vm-a: its VMI created (KubeVirt's reason and words)"
assert_eq "$(ev involvedObject.kind=VirtualMachineInstance,involvedObject.name=vm-a | tail -n 1)" \
	"SuccessfulCreate|Normal|1|kvnet-controller|Created virtual machine pod $pod_a" "... on its VMI: its launcher pod created"
out=$(ev involvedObject.kind=VirtualMachineInstance,involvedObject.name=vm-a,reason=FailedScheduling)
assert_true "... and the Warning of the time it had no node, once ($out)" \
	grep -Eqx 'FailedScheduling\|Warning\|1\|kvnet-controller\|0/0 nodes are available.*--nodes.*' <<<"$out"
assert_eq "$(ev involvedObject.kind=Pod,involvedObject.name="$pod_a")" \
	"Scheduled|Normal|1|kvnet-controller|Successfully assigned default/$pod_a to node1" "... on the pod: Scheduled to node1"
assert_eq "$(k get events --field-selector involvedObject.name=vm-a -o json | jq -r --arg u "$(k get vm vm-a -o jsonpath='{.metadata.uid}')" \
	'[.items[] | select(.involvedObject.kind == "VirtualMachine") | .involvedObject.uid == $u and .involvedObject.apiVersion == "kubevirt.io/v1" and .firstTimestamp == .lastTimestamp] | all')" \
	true "... involvedObject carries the VM's uid and apiVersion, first = last timestamp"
k describe vm vm-a >"$KV_TMP/describe" 2>&1 || true
assert_true "kubectl describe vm lists the Event: $(grep -A3 '^Events' "$KV_TMP/describe" | tr -s ' \n' ' ')" \
	grep -Eq 'Normal +SuccessfulCreate +[0-9]+s +kvnet-controller +Started the virtual machine' "$KV_TMP/describe"

# ---------------------------------------------------------------- least loaded; too big
sed 's/vm-a/vm-b/' "$KV_TMP/vm-a.yaml" >"$KV_TMP/vm-b.yaml"
sed -e 's/vm-a/vm-big/' -e 's/memory: 1Gi/memory: 6Gi/' "$KV_TMP/vm-a.yaml" >"$KV_TMP/vm-big.yaml"
k apply -f "$KV_TMP/vm-b.yaml" >/dev/null
wait_for "vm-b scheduled" bash -c "[ \"\$(ip netns exec $NS env KUBECONFIG=$KCFG kubectl get vmi vm-b -o jsonpath='{.status.phase}')\" = Scheduled ]"
assert_eq "$(k get vmi vm-b -o jsonpath='{.status.nodeName}')" node2 "vm-b goes to node2: node1 already holds vm-a"
# what a kubelet (kvnet-node) watches: its node's pods by the field selector spec.nodeName
assert_eq "$(k get pods -A --field-selector spec.nodeName=node1 -o jsonpath='{.items[*].metadata.name}')" "$pod_a" \
	"fieldSelector spec.nodeName=node1 lists vm-a's pod alone"
assert_eq "$(k get pods --field-selector spec.nodeName=node2 -o jsonpath='{.items[*].spec.nodeName}')" node2 \
	"... spec.nodeName=node2 vm-b's alone"
assert_eq "$(k get pods --field-selector spec.nodeName=node3 -o name)" "" "... spec.nodeName=node3 none"
assert_eq "$(k get pods --field-selector spec.nodeName= -o name)" "" "... spec.nodeName= (unbound pods) none"
api GET "/api/v1/pods?watch=1&fieldSelector=spec.nodeName%3Dnode2&timeoutSeconds=1" -m 2 >/dev/null || true
assert_eq "$(jq -rs '[.[] | .type + " " + .object.spec.nodeName] | join(",")' "$KV_TMP/body")" "ADDED node2" \
	"a watch with spec.nodeName=node2 gets vm-b's pod alone"
api GET "/apis/kubevirt.io/v1/virtualmachineinstances?fieldSelector=spec.nodeName%3Dnode1" >/dev/null
assert_eq "$(code) $(jq -r .message "$KV_TMP/body")" \
	"400 fieldSelector: field label not supported for virtualmachineinstances.kubevirt.io: 'spec.nodeName' (only metadata.name, metadata.namespace)" \
	"spec.nodeName is a pods' field selector: on VMIs a 400 naming it"
k apply -f "$KV_TMP/vm-big.yaml" >/dev/null
wait_for "vm-big condition" bash -c "ip netns exec $NS env KUBECONFIG=$KCFG kubectl get vmi vm-big -o json | jq -e '.status.conditions[0].message'"
vmi=$(k get vmi vm-big -o json)
assert_eq "$(jq -r '.status.phase' <<<"$vmi")" Pending "vm-big (6Gi) fits no node: Pending"
assert_eq "$(jq -r '.status.conditions[0] | [.type, .status, .reason, .message] | join("|")' <<<"$vmi")" \
	"PodScheduled|False|Unschedulable|0/3 nodes are available: 3 Insufficient memory." \
	"... PodScheduled=False, Unschedulable, Kubernetes' message"
assert_eq "$(k get pods -l kubevirt.io/created-by="$(jq -r .metadata.uid <<<"$vmi")" -o name)" "" "... and it has no pod"
assert_eq "$(ev involvedObject.name=vm-big,reason=FailedScheduling | cut -d'|' -f1-3,5)" \
	"FailedScheduling|Warning|1|0/3 nodes are available: 3 Insufficient memory." "... a FailedScheduling Warning says why, once (not every pass)"
out=$(k apply -f - 2>&1 <<'YAML' || true
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata: {name: vm-bad}
spec:
  running: true
  template:
    spec:
      domain:
        devices: {}
        resources:
          requests: {memory: 2GB}
YAML
)
assert_true "a VM whose memory request is not a quantity is refused, naming the field and the value ($out)" \
	grep -q "'spec.template.spec.domain.resources.requests.memory' must be a quantity.*got '2GB'" <<<"$out"

# ---------------------------------------------------------------- restart: nodes and pods are kept
stop_controller
start_controller --nodes 3 --node-cpu 2 --node-memory 4Gi
assert_eq "$(k get nodes -o name | tr '\n' ' ')" "node/node1 node/node2 node/node3 " "after a restart: the same three nodes, none twice"
assert_eq "$(k get pods -o json | jq -r '[.items[].metadata.name] | sort | join(" ")')" \
	"$(printf '%s\n' "$pod_a" "$(k get pods -l vm.kubevirt.io/name=vm-b -o jsonpath='{.items[0].metadata.name}')" | sort | tr '\n' ' ' | sed 's/ $//')" \
	"... the two launcher pods, no new ones"
assert_eq "$(k get vmi vm-a -o jsonpath='{.status.phase}/{.status.nodeName}')" "Scheduled/node1" "... vm-a still Scheduled on node1"

# bigger nodes: the Pending VMI is placed (the condition is recomputed when the nodes change)
stop_controller
start_controller --nodes 2 --node-cpu 4 --node-memory 8Gi
assert_eq "$(k get nodes -o name | tr '\n' ' ')" "node/node1 node/node2 " "--nodes 2 removes the simulated node3"
wait_for "vm-big scheduled" bash -c "[ \"\$(ip netns exec $NS env KUBECONFIG=$KCFG kubectl get vmi vm-big -o jsonpath='{.status.phase}')\" = Scheduled ]"
assert_eq "$(k get vmi vm-big -o jsonpath='{.status.phase}/{.status.conditions[0].status}')" "Scheduled/True" \
	"with 8Gi nodes vm-big is Scheduled (PodScheduled=True)"

# ---------------------------------------------------------------- delete: VMI and pod go
assert_eq "$(k delete vm vm-a 2>&1)" 'virtualmachine.kubevirt.io "vm-a" deleted' "kubectl delete vm vm-a"
wait_for "pod gone" bash -c "! ip netns exec $NS env KUBECONFIG=$KCFG kubectl get pod $pod_a"
assert_false "... its VMI is gone" k get vmi vm-a
assert_false "... and its launcher pod $pod_a" k get pod "$pod_a"
assert_eq "$(k get pods -o name | wc -l)" 2 "the other launcher pods stay"
stop_controller

ctl_log_clean
finish
