#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `kubectl apply` runs the VM: kvnet-controller --embedded --nodes 2 (in a namespace of its own, as the
# controller tests run it), a simulated 2-node cluster (scripts/cluster.sh: node namespaces with kvnet-netd),
# and one kvnet-node per node (in the controller's network namespace to reach the API; its pods' CNI plugins run
# in the node's namespace). Asserts: bad options exit 2 naming the option and value; a VirtualMachine on the
# bridge binding applied with kubectl gets its VMI Running with nodeName and interfaces[0].ipAddress, its
# launcher pod Running with that IP in `kubectl get pods -o wide`, and the guest answers ping from its node's
# namespace; a second VM on the masquerade binding goes to node2 and answers too; the real virtctl pauses it (VMI
# condition Paused, the libvirt domain paused, no answer) and unpauses it (answers again); SIGTERM of an agent leaves
# its VM running, and the restarted agent re-adopts it (same launcher, same IP, still Running) and its node GC
# removes a sandbox no pod holds; a VMI whose
# kernelPath is not in the image store ends Failed with the launcher's reason, its pod Failed, nothing of it
# left on the node; a guest that powers off ends its VMI Succeeded (Ready False, GuestShutdown), its pod
# Succeeded and torn down; a launcher killed with SIGKILL leaves its VMI Failed with a reason, its pod Failed, and
# the agent tears the pod down; `kubectl delete` of the VMs removes their pods, and the agents stop them: no sandbox, no
# netd attachment (kvnetctl endpoints), no launcher or libvirtd, no pod directory left; the agents exit 0 on
# SIGTERM (no sanitizer report).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-controller.sh"

kv_init
require_kvnet
require_cmd virsh unshare socat nsenter jq
require_libvirt
AGENT=$KV_BIN/kvnet-node
PODRUN=$KV_BUILD_DIR/tests/podrun
require_file "$AGENT" "$KV_BIN/kvnet-launcher" "$PODRUN"
guest_image
guest_store
ctl_init

declare -A AGENT_PID=()
# at exit: the agents go first (SIGTERM leaves the pods), then whatever pod is left is stopped, then the cluster
at_exit 'for i in "${!AGENT_PID[@]}"; do kill -TERM "${AGENT_PID[$i]}" 2>/dev/null; wait "${AGENT_PID[$i]}" 2>/dev/null; done'
at_exit 'for i in 1 2; do [ -d "$KV_TMP/n$i/state/pods" ] && pr "$i" stop $(ls "$KV_TMP/n$i/state/pods") >/dev/null 2>&1; done'
at_exit '[ "$KV_EXIT_RC" -eq 0 ] || [ "$KV_EXIT_RC" -eq 4 ] || { for i in 1 2; do echo "---- agent $i ----"; tail -n 30 "$KV_TMP/agent$i.log"; done; tail -n 20 "$KV_TMP"/n*/state/pods/*/launcher.log 2>/dev/null; }'
cluster_up kvt-kn

cluster_pod_dirs

# node_args I: node I's pod runtime options, in NODE_ARGS (kvnet-node and podrun take the same)
node_args() {
	local i=$1 nsv=NODE$1_NS sockv=NODE$1_SOCK
	NODE_ARGS=(--node-name "node$i" --node-netns "/run/netns/${!nsv}" --conf-dir "$KV_TMP/n$i/conf" --cni-path "$KV_BIN"
		--cache-dir "$KV_TMP/n$i/cache" --netd-socket "${!sockv}" --state-dir "$KV_TMP/n$i/state"
		--launcher "$KV_BIN/kvnet-launcher" --libvirtd-starter "$KV_ROOT/scripts/libvirt-node.sh"
		--sandbox-prefix "$CL_NAME-p-n$i" --image-dir "$GUEST_IMAGES")
}
pr() {
	node_args "$1"
	shift
	"$PODRUN" "${NODE_ARGS[@]}" "$@"
}
# start_agent I: kvnet-node for node I in the controller's namespace (nsenter: the network namespace alone, so
# that the sandboxes it mounts under /run/netns are the host's)
start_agent() {
	local i=$1 n0
	n0=$(grep -c "watching its pods" "$KV_TMP/agent$i.log" 2>/dev/null || true)
	node_args "$i"
	nsenter --net="/run/netns/$NS" "$AGENT" "${NODE_ARGS[@]}" --kubeconfig "$KCFG" --node-ip "198.51.100.$i" \
		--metrics-listen "127.0.0.1:965$i" --log-level debug >>"$KV_TMP/agent$i.log" 2>&1 &
	AGENT_PID[$i]=$!
	wait_until 10 bash -c "[ \$(grep -c 'watching its pods' '$KV_TMP/agent$i.log') -gt ${n0:-0} ]" || { tail -n 20 "$KV_TMP/agent$i.log"; die "kvnet-node $i did not start"; }
}
stop_agent() { # stop_agent I: SIGTERM; asserts exit 0
	local rc=0
	kill -TERM "${AGENT_PID[$1]}"
	wait "${AGENT_PID[$1]}" || rc=$?
	unset "AGENT_PID[$1]"
	assert_eq "$rc" 0 "kvnet-node $1 exits 0 on SIGTERM"
}
vmi_phase() { k get vmi "$1" -o jsonpath='{.status.phase}' 2>/dev/null; }
phase_is() { [ "$(vmi_phase "$1")" = "$2" ]; }
pod_of() { k get pods -l "vm.kubevirt.io/name=$1" -o json | jq -r '.items[0] // empty'; }
pod_sandboxes() { ip netns list | awk '{print $1}' | grep -c "^$CL_NAME-p-" || true; }
pod_daemons() { pgrep -f "$KV_TMP/n$1/state/pods/" | wc -l; }
endpoints() { "$KV_BIN/kvnetctl" --socket "$1" -o json endpoints | jq length; }
alive() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[ "${st:0:1}" != Z ]
}

# ---------------------------------------------------------------- bad options
node_args 1
out=$("$AGENT" "${NODE_ARGS[@]}" --start-timeout 0 2>&1) && rc=0 || rc=$?
assert_eq "$rc $out" "2 kvnet-node: --start-timeout: must be 1..3600, got '0'" "--start-timeout 0: exit 2 naming the option and value"
out=$("$AGENT" --node-name node1 2>&1) && rc=0 || rc=$?
assert_eq "$rc $out" "2 kvnet-node: --node-netns is required" "a missing --node-netns: exit 2 naming it"
out=$("$AGENT" "${NODE_ARGS[@]}" --node-name Node_1 2>&1) && rc=0 || rc=$?
assert_eq "$rc" 2 "--node-name Node_1: exit 2 ($out)"
assert_true "... naming the option and value" grep -q -- "--node-name: .*got 'Node_1'" <<<"$out"
out=$("$AGENT" "${NODE_ARGS[@]}" --metrics-listen 0.0.0.0:9651 2>&1) && rc=0 || rc=$?
assert_eq "$rc" 2 "--metrics-listen 0.0.0.0:9651: exit 2 ($out)"
assert_true "... naming the option and why" grep -q -- "--metrics-listen 0.0.0.0:9651: name one address of the node" <<<"$out"
out=$("$AGENT" "${NODE_ARGS[@]}" --launcher /nonexistent/kvnet-launcher 2>&1) && rc=0 || rc=$?
assert_eq "$rc" 2 "a launcher that does not exist: exit 2 ($out)"
assert_true "... naming the path" grep -q "/nonexistent/kvnet-launcher" <<<"$out"

# ---------------------------------------------------------------- kubectl apply runs the VM
start_controller --nodes 2 --node-cpu 4 --node-memory 4Gi
start_agent 1
start_agent 2
LINKS0_1=$(ip -n "$NODE1_NS" -o link show | wc -l)

guest_vm_yaml vm-a bridge >"$KV_TMP/vm-a.yaml"
assert_eq "$(k apply -f "$KV_TMP/vm-a.yaml" 2>&1)" "virtualmachine.kubevirt.io/vm-a created" "kubectl apply creates vm-a (bridge binding)"
t0=$(date +%s%3N)
wait_until 120 phase_is vm-a Running || fail "vm-a's VMI reaches Running (phase: $(vmi_phase vm-a))"
echo "APPLY_TO_RUNNING_MS=$(($(date +%s%3N) - t0)) BINDING=bridge"
vmi=$(k get vmi vm-a -o json)
ip_a=$(jq -r '.status.interfaces[0].ipAddress // empty' <<<"$vmi")
node_a=$(jq -r '.status.nodeName' <<<"$vmi")
assert_eq "$(jq -r .status.phase <<<"$vmi")/$node_a" Running/node1 "vm-a's VMI is Running on node1"
assert_true "... with interfaces[0].ipAddress in the VM subnet ($ip_a)" grep -q '^10\.88\.0\.' <<<"$ip_a"
assert_eq "$(jq -r '.status.interfaces[0] | .name + " " + (.mac | length | tostring)' <<<"$vmi")" "default 17" "... the interface's name and MAC"
assert_eq "$(jq -r '.status.conditions[] | select(.type == "Ready") | .status' <<<"$vmi")" True "... Ready=True"
pod=$(pod_of vm-a)
pod_a=$(jq -r .metadata.name <<<"$pod")
uid_a=$(jq -r .metadata.uid <<<"$pod")
assert_eq "$(jq -r '[.status.phase, .status.podIP, .status.hostIP] | join(" ")' <<<"$pod")" "Running $ip_a 198.51.100.1" \
	"its launcher pod is Running with the VMI's IP and the node's hostIP"
assert_eq "$(jq -r '.status.conditions[] | select(.type == "Ready") | .status' <<<"$pod")" True "... Ready=True"
assert_eq "$(jq -r '.status.activePods | keys | join(" ")' <<<"$vmi")" "$uid_a" "the VMI's activePods is its pod"
k get pods -o wide >"$KV_TMP/table" 2>&1 || true
assert_true "kubectl get pods -o wide shows it 1/1 Running at $ip_a on node1: $(tr -s ' \n' ' ' <"$KV_TMP/table")" \
	grep -Eq "^$pod_a +1/1 +Running +0 +[0-9]+s +${ip_a//./\\.} +node1" "$KV_TMP/table"
# Events (docs/events.md): "reason|type|source|message" of those the field selector picks, oldest first
ev() { k get events --field-selector "$1" -o json | jq -r '.items | sort_by(.metadata.name) | .[] | [.reason, .type, .source.component, .message] | join("|")'; }
for _ in $(seq 1 50); do # posted once the status they tell about is written
	out=$(ev involvedObject.kind=VirtualMachineInstance,involvedObject.name=vm-a,source=kvnet-node)
	grep -q NetworkAttached <<<"$out" && break
	sleep 0.2
done
assert_true "vm-a's VMI has kvnet-node's Events: Started on node1, then its network with address and MAC ($out)" \
	grep -Pzq "^Started\\|Normal\\|kvnet-node\\|VirtualMachineInstance started on node node1\\.\nNetworkAttached\\|Normal\\|kvnet-node\\|Network attached on node node1: default ${ip_a//./\\.}( [0-9a-f:.]+)* \\(MAC [0-9a-f:]{17}\\)\n$" <<<"$out"
assert_eq "$(ev involvedObject.kind=Pod,involvedObject.name="$pod_a" | cut -d'|' -f1-3 | tr '\n' ' ')" \
	"Scheduled|Normal|kvnet-controller Started|Normal|kvnet-node " "... its pod: Scheduled (controller), Started (node)"
k describe vmi vm-a >"$KV_TMP/describe" 2>&1 || true
# (kubectl 1.28 prints the component alone in FROM; source.host is node1 all the same)
assert_true "kubectl describe vmi lists them: $(sed -n '/^Events/,$p' "$KV_TMP/describe" | tr -s ' \n' ' ')" \
	grep -Eq "Normal +NetworkAttached +[0-9]+s +kvnet-node(, node1)? +Network attached on node node1: default ${ip_a//./\\.}" "$KV_TMP/describe"
# node1's metrics (docs/metrics.md), read with the reference parser when it is there
if /usr/bin/python3 -c 'import prometheus_client.parser' 2>/dev/null; then
	nvalue() { ip netns exec "$NS" curl -sS -m 5 http://127.0.0.1:9651/metrics | /usr/bin/python3 "$KV_ROOT/tests/tools/prom.py" value "$1" "$2"; }
	wait_until 5 bash -c "ip netns exec $NS curl -sS -m 5 http://127.0.0.1:9651/metrics | grep -q '^kvnet_node_pods{state=\"running\"} 1'" || true
	assert_eq "$(nvalue kvnet_node_pods '{"state": "running"}')/$(nvalue kvnet_node_pod_starts_total '{"result": "ok"}')/$(nvalue kvnet_node_pod_start_duration_seconds_count '{}')" \
		1/1/1 "node1's metrics: 1 pod running, 1 start ok, its time in the start histogram"
	assert_true "... and the Events it posted ($(nvalue kvnet_node_events_total '{"result": "posted"}'))" \
		test "$(nvalue kvnet_node_events_total '{"result": "posted"}')" -ge 2
else
	skip_part "kvnet-node's metrics: the Prometheus text parser is needed (python3-prometheus-client: make deps)"
fi
k get vmi vm-a >"$KV_TMP/table" 2>&1 || true
assert_true "kubectl get vmi shows it Running at $ip_a on node1, READY True: $(tr -s ' \n' ' ' <"$KV_TMP/table")" \
	grep -Eq "^vm-a +[0-9]+s +Running +${ip_a//./\\.} +node1 +True" "$KV_TMP/table"
if wait_ping "$NODE1_NS" "$ip_a" 90; then
	pass "vm-a's guest answers ping from node1 at $ip_a"
else
	fail "vm-a's guest answers ping from node1 at $ip_a"
	tail -n 20 "$KV_TMP/n1/state/pods/$uid_a/serial.log" 2>/dev/null || true
fi
lpid_a=$(pr 1 status "$uid_a" | sed -n 's/^LAUNCHER_PID=//p')
assert_ne "$lpid_a" "" "node1's runtime knows the pod (launcher pid $lpid_a)"

# ---------------------------------------------------------------- masquerade, on node2
guest_vm_yaml vm-b masquerade >"$KV_TMP/vm-b.yaml"
k apply -f "$KV_TMP/vm-b.yaml" >/dev/null
wait_until 120 phase_is vm-b Running || fail "vm-b's VMI reaches Running (phase: $(vmi_phase vm-b))"
vmi=$(k get vmi vm-b -o json)
ip_b=$(jq -r '.status.interfaces[0].ipAddress // empty' <<<"$vmi")
assert_eq "$(jq -r .status.nodeName <<<"$vmi")" node2 "vm-b (masquerade) runs on node2 (node1 holds vm-a)"
assert_eq "$(pod_of vm-b | jq -r '[.status.phase, .status.podIP] | join(" ")')" "Running $ip_b" "... its pod Running at $ip_b"
if wait_ping "$NODE2_NS" "$ip_b" 90; then
	pass "vm-b's guest answers ping from node2 at $ip_b"
else
	fail "vm-b's guest answers ping from node2 at $ip_b"
fi

# ---------------------------------------------------------------- virtctl pause / unpause: the guest stops, and goes on
if VIRTCTL=$(peer_path virtctl 2>/dev/null); then
	vctl() { ip netns exec "$NS" "$VIRTCTL" --kubeconfig "$KCFG" "$@"; }
	cond_paused() { k get vmi vm-b -o json | jq -r '[.status.conditions[]? | select(.type == "Paused") | .status + "/" + .reason][0] // "none"'; }
	paused_is() { [ "$(cond_paused)" = "$1" ]; }
	uid_b=$(pod_of vm-b | jq -r .metadata.uid)
	uri_b=$(pr 2 status "$uid_b" | sed -n 's/^LIBVIRT_URI=//p')
	out=$(vctl pause vmi vm-b 2>&1)
	assert_true "virtctl pause vmi vm-b ($out)" grep -q 'vm-b was scheduled to pause' <<<"$out"
	wait_until 30 paused_is True/PausedByUser || true
	assert_eq "$(cond_paused)" True/PausedByUser "the VMI's Paused condition: True, PausedByUser"
	assert_eq "$(virsh -c "$uri_b" domstate default_vm-b 2>&1 | head -n 1)" paused "libvirt: the domain is paused"
	assert_no_ping "$NODE2_NS" "$ip_b" "the paused guest does not answer"
	assert_eq "$(k get vm vm-b -o jsonpath='{.status.printableStatus}')" Paused "kubectl get vm: Paused"
	out=$(vctl pause vmi vm-b 2>&1 || true)
	assert_true "pausing it again: VMI is already paused ($out)" grep -qF 'VMI is already paused' <<<"$out"
	out=$(vctl unpause vmi vm-b 2>&1)
	assert_true "virtctl unpause vmi vm-b ($out)" grep -q 'vm-b was scheduled to unpause' <<<"$out"
	wait_until 30 paused_is none || true
	assert_eq "$(cond_paused)/$(vmi_phase vm-b)" "none/Running" "the Paused condition goes, the VMI Running"
	assert_eq "$(virsh -c "$uri_b" domstate default_vm-b 2>&1 | head -n 1)" running "libvirt: the domain runs again"
	assert_ping "$NODE2_NS" "$ip_b" "the guest answers again at the same address"
else
	skip_part "virtctl pause / unpause: peer virtctl not built (make test-deps)"
fi

# ---------------------------------------------------------------- the agent restarts: its VM stays
stop_agent 1
assert_true "node1's launcher still runs after its agent exited" alive "$lpid_a"
assert_ping "$NODE1_NS" "$ip_a" "vm-a still answers with no agent"
# a sandbox of node1's prefix that no pod holds (a start cut short by a crash): the next agent's GC removes it
stray=$CL_NAME-p-n1-$(printf '%016x' $((RANDOM * 65536 + RANDOM)))
ip netns add "$stray"
start_agent 1
assert_true "the restarted agent re-adopts the pod" grep -q "pod default/$pod_a ($uid_a) re-adopted: launcher running" "$KV_TMP/agent1.log"
assert_false "... and its node GC removed a sandbox no pod holds ($stray)" test -e "/run/netns/$stray"
sleep 2
assert_eq "$(pr 1 status "$uid_a" | sed -n 's/^LAUNCHER_PID=//p')" "$lpid_a" "... nothing restarted (the same launcher)"
assert_eq "$(vmi_phase vm-a) $(k get vmi vm-a -o jsonpath='{.status.interfaces[0].ipAddress}')" "Running $ip_a" \
	"... the VMI still Running at the same IP"
assert_ping "$NODE1_NS" "$ip_a" "... and the guest answers"

# ---------------------------------------------------------------- a VMI that cannot start
cat >"$KV_TMP/vmi-bad.yaml" <<EOF
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: vmi-bad}
spec:
  terminationGracePeriodSeconds: 2
  domain:
    firmware:
      kernelBoot:
        container: {image: $GUEST_REF, kernelPath: /boot/no-such-kernel, initrdPath: /boot/initrd.img}
    memory: {guest: 128Mi}
    resources:
      requests: {memory: 128Mi}
    devices:
      interfaces:
      - {name: default, bridge: {}}
  networks:
  - {name: default, pod: {}}
EOF
k apply -f "$KV_TMP/vmi-bad.yaml" >/dev/null
wait_until 60 phase_is vmi-bad Failed || fail "vmi-bad (kernelPath not in the image store) ends Failed (phase: $(vmi_phase vmi-bad))"
vmi=$(k get vmi vmi-bad -o json)
node_bad=$(jq -r .status.nodeName <<<"$vmi")
why=$(jq -r '.status.conditions[] | select(.type == "Ready") | .message' <<<"$vmi")
assert_true "... its Ready condition gives the launcher's reason ($why)" grep -q "no-such-kernel" <<<"$why"
wait_until 10 bash -c "[ \"\$(ip netns exec $NS env KUBECONFIG=$KCFG kubectl get pods -l vm.kubevirt.io/name=vmi-bad -o jsonpath='{.items[0].status.phase}')\" = Failed ]" || true
pod=$(pod_of vmi-bad)
assert_eq "$(jq -r .status.phase <<<"$pod")" Failed "its pod is Failed"
assert_true "... with the reason in its message ($(jq -r .status.message <<<"$pod"))" jq -e '.status.message | test("no-such-kernel")' <<<"$pod"
out=$(ev involvedObject.kind=VirtualMachineInstance,involvedObject.name=vmi-bad,reason=Failed)
assert_true "... a Warning Event on the VMI gives the reason ($out)" grep -Eq '^Failed\|Warning\|kvnet-node\|The VirtualMachineInstance failed.*no-such-kernel' <<<"$out"
nb=${node_bad#node}
assert_eq "$(ls "$KV_TMP/n$nb/state/pods" | grep -c "$(jq -r .metadata.uid <<<"$pod")" || true)" 0 "nothing of it left on $node_bad (no pod directory)"
assert_eq "$(pod_sandboxes)" 2 "... only the two running VMs' sandboxes"

# ---------------------------------------------------------------- the guest powers off: VMI Succeeded
# (the ACPI button pressed from outside the node's view, with virsh on the pod's libvirtd: the guest's acpid
# powers it off, as a user's `poweroff` inside it would)
sed -e 's/^kind: VirtualMachine$/kind: VirtualMachineInstance/' -e '/^  runStrategy:/d' -e '/^  template:/d' \
	-e '/^    spec:/d' -e 's/^    //' <(guest_vm_yaml vmi-off bridge) >"$KV_TMP/vmi-off.yaml"
k apply -f "$KV_TMP/vmi-off.yaml" >/dev/null
wait_until 120 phase_is vmi-off Running || fail "vmi-off is Running (phase: $(vmi_phase vmi-off))"
node_off=$(k get vmi vmi-off -o jsonpath='{.status.nodeName}')
uid_off=$(pod_of vmi-off | jq -r .metadata.uid)
pr "${node_off#node}" status "$uid_off" >"$KV_TMP/off.status"
uri_off=$(sed -n 's/^LIBVIRT_URI=//p' "$KV_TMP/off.status")
wait_until 60 bash -c "grep -q 'KVNET-GUEST ready' $KV_TMP/n${node_off#node}/state/pods/$uid_off/serial.log" || true
virsh -c "$uri_off" shutdown default_vmi-off >/dev/null
wait_until 60 phase_is vmi-off Succeeded || fail "a guest that powers off: its VMI Succeeded (phase: $(vmi_phase vmi-off))"
assert_eq "$(k get vmi vmi-off -o json | jq -r '.status.conditions[] | select(.type == "Ready") | .status + "/" + .reason')" \
	False/GuestShutdown "... its Ready condition: False, GuestShutdown"
wait_until 10 bash -c "[ \"\$(ip netns exec $NS env KUBECONFIG=$KCFG kubectl get pods -l vm.kubevirt.io/name=vmi-off -o jsonpath='{.items[0].status.phase}')\" = Succeeded ]" || true
assert_eq "$(pod_of vmi-off | jq -r .status.phase)" Succeeded "... its pod Succeeded"
assert_eq "$(ev involvedObject.name=vmi-off,reason=Stopped)" "Stopped|Normal|kvnet-node|The VirtualMachineInstance was shut down." \
	"... a Stopped Event on the VMI"
wait_until 30 bash -c "[ ! -e $KV_TMP/n${node_off#node}/state/pods/$uid_off ]" || true
assert_false "... and its node tore the finished pod down" test -e "$KV_TMP/n${node_off#node}/state/pods/$uid_off"
k delete vmi vmi-off >/dev/null

# ---------------------------------------------------------------- a launcher that dies
uid_b=$(pod_of vm-b | jq -r .metadata.uid)
lpid_b=$(pr 2 status "$uid_b" | sed -n 's/^LAUNCHER_PID=//p')
assert_ne "$lpid_b" "" "node2's runtime knows vm-b's pod (launcher pid $lpid_b)"
kill -KILL "$lpid_b"
wait_until 15 phase_is vm-b Failed || fail "vm-b's VMI is Failed once its launcher was killed (phase: $(vmi_phase vm-b))"
vmi=$(k get vmi vm-b -o json)
assert_true "... its Ready condition says why ($(jq -r '.status.conditions[] | select(.type == "Ready") | .message' <<<"$vmi"))" \
	jq -e '.status.conditions[] | select(.type == "Ready") | .status == "False" and (.message | length > 0)' <<<"$vmi"
wait_until 10 bash -c "[ \"\$(ip netns exec $NS env KUBECONFIG=$KCFG kubectl get pods -l vm.kubevirt.io/name=vm-b -o jsonpath='{.items[0].status.phase}')\" = Failed ]" || true
assert_eq "$(pod_of vm-b | jq -r .status.phase)" Failed "... its pod Failed"
wait_until 30 bash -c "[ -z \"\$(ls $KV_TMP/n2/state/pods)\" ]" || true
assert_eq "$(ls "$KV_TMP/n2/state/pods")" "" "... and node2's agent tore the ended pod down (no pod directory)"
assert_eq "$(endpoints "$NODE2_SOCK") $(pod_daemons 2)" "0 0" "... no netd attachment, no libvirtd or QEMU left on node2"
assert_eq "$(pod_sandboxes)" 1 "... only vm-a's sandbox is left"

# ---------------------------------------------------------------- kubectl delete stops the VMs
k delete vm vm-a vm-b >/dev/null
k delete vmi vmi-bad >/dev/null
wait_until 10 bash -c "[ -z \"\$(ip netns exec $NS env KUBECONFIG=$KCFG kubectl get pods -o name)\" ]" || true
assert_eq "$(k get pods -o name)" "" "kubectl delete vm: the launcher pods are gone"
wait_until 60 bash -c "[ \$(ip netns list | grep -c '^$CL_NAME-p-') = 0 ]" || true
assert_eq "$(pod_sandboxes)" 0 "no sandbox namespace left"
wait_until 10 bash -c "[ -z \"\$(ls $KV_TMP/n1/state/pods $KV_TMP/n2/state/pods)\" ]" || true
assert_eq "$(ls "$KV_TMP/n1/state/pods" "$KV_TMP/n2/state/pods" | grep -v ':$' | grep -v '^$' || true)" "" "no pod directory left"
assert_eq "$(pod_daemons 1) $(pod_daemons 2)" "0 0" "no launcher, libvirtd or QEMU left on either node"
assert_false "vm-a's launcher is gone" alive "$lpid_a"
assert_eq "$(endpoints "$NODE1_SOCK") $(endpoints "$NODE2_SOCK")" "0 0" "netd has no attachment left on either node (kvnetctl endpoints)"
assert_eq "$(ip -n "$NODE1_NS" -o link show | wc -l)" "$LINKS0_1" "no link of the pods left in node1's namespace"
assert_no_ping "$NODE1_NS" "$ip_a" "vm-a's address no longer answers"

stop_agent 1
stop_agent 2
for i in 1 2; do
	if grep -Eq 'Sanitizer|runtime error:' "$KV_TMP/agent$i.log"; then
		fail "agent $i log free of sanitizer reports"
		grep -E -A20 'Sanitizer|runtime error:' "$KV_TMP/agent$i.log" | head -40
	else
		pass "agent $i log free of sanitizer reports"
	fi
done
stop_controller
ctl_log_clean
finish
