#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Live migration the way a KubeVirt user starts it: `kubectl create` of a VirtualMachineInstanceMigration
# against kvnet-sim (the embedded API, two simulated nodes, a kvnet-node per node), real guests.
#
# For each binding (bridge through the newest kubectl the machine has, masquerade through Debian's kubectl
# 1.20 when installed): a VirtualMachine applied with kubectl runs on node1; the client pings it every 10 ms
# and holds a TCP connection to its echo port while the guest holds one to the client (tests/tools/flowmon);
# a VMIM moves it to node2 and a second one back. Asserts per migration: the VMIM Succeeded through KubeVirt's
# phases (TargetReady and Running among them), the VMI on the other node with the same IP, MAC and guest
# instance (boot id), its old launcher pod gone and its new one Running there, the cluster's claim store and the
# client's route following it, packets of the pause forwarded to the paused target (early switchover), status.migrationState complete
# (source/target node and pod, start/end, completed, kvnet's guest pause); afterwards both TCP connections
# survived without a gap. Then: a VMIM deleted while it runs (cancellation: the VM stays, answers, the target
# pod goes), the target's QEMU killed (the VMIM Failed, the VM runs on where it was, the same guest), the source
# node's agent restarted before and while the migration runs (it Succeeds), the controller restarted while one
# runs (it Succeeds), the target node's underlay cut (Failed, the
# VM stays), a ping-pong of KVNET_TEST_PINGPONG (6) + 2 more migrations and then no leaked attachment, claim, link,
# sandbox, QEMU, proxy, nft table or migration redirect, a VMIM to the VMI's own node
# refused (422), `runStrategy: Halted` (the VMI and its pod go, the guest
# shut down), `kubectl delete vm` leaves no pod, VMI or attachment on either node. Lost pings and the longest
# gap are printed as figures (make bench has the comparison with bare QEMU), only a generous sanity bound is
# asserted.
# kvnet-test-timeout: 1500
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
[ "${KVNET_TEST_MIGRATION:-1}" = 1 ] || skip "turned off by KVNET_TEST_MIGRATION=${KVNET_TEST_MIGRATION}"
require_kvnet
require_cmd virsh unshare socat nsenter kubectl jq curl qemu-system-x86_64
require_libvirt
FLOWMON=$KV_BUILD_DIR/tests/flowmon
require_file "$KV_BIN/kvnet-node" "$KV_BIN/kvnet-controller" "$KV_BIN/kvnet-launcher" "$FLOWMON"
guest_image
guest_store

SIM=$KV_ROOT/scripts/kvnet-sim.sh
NAME=kvt-mig-$(rand_suffix)
SDIR=$KV_TMP/sim
at_exit '[ "$KV_EXIT_RC" -eq 0 ] || [ -z "${KV_KEEP_TMP:-}" ] || cp -r "$SDIR" "$KV_TMP/sim-kept" 2>/dev/null'
at_exit '[ -n "${FM_PID:-}" ] && kill -KILL "$FM_PID" 2>/dev/null; "$SIM" down --name "$NAME" --dir "$SDIR" >/dev/null 2>&1'
"$SIM" up --nodes 2 --name "$NAME" --dir "$SDIR" --image-dir "$GUEST_IMAGES" >"$KV_TMP/up.out" 2>&1 ||
	{ cat "$KV_TMP/up.out"; die "kvnet-sim up failed"; }
# shellcheck disable=SC1091
source "$SDIR/sim.env"
CLIENT_UNDERLAY=$(sed -n 's/^CLIENT_UNDERLAY=//p' "$SDIR/cluster/cluster.env")
NODE1_SOCK=$(sed -n 's/^NODE1_SOCK=//p' "$SDIR/cluster/cluster.env")
NODE2_SOCK=$(sed -n 's/^NODE2_SOCK=//p' "$SDIR/cluster/cluster.env")
env_of() { sed -n "s/^$1=//p" "$SDIR/cluster/cluster.env"; }
ctl() { "$KV_BIN/kvnetctl" --socket "$(env_of "NODE$1_SOCK")" -o json "${@:2}"; }
holder() { ctl 1 cluster-claims | jq -r --arg k "vm/default/$1/default" '.claims[] | select(.key==$k) | .holder + ">" + .target'; }
client_route() { ip -n "$CLIENT_NS" -j route show "$1/32" | jq -r '.[0].gateway // empty'; }

# kubectls: the newest the machine has for the bridge VM, Debian's 1.20 for the masquerade VM (when installed)
NEWEST=$(ls /usr/lib/google-cloud-sdk/bin/kubectl.1.* 2>/dev/null | sort -V | tail -n 1 || true)
[ -n "$NEWEST" ] || NEWEST=$(command -v kubectl)
OLD=${KVNET_KUBECTL_OLD:-/usr/local/lib/kvnet/kubectl-1.20}
[ -x "$OLD" ] || { log "no kubectl 1.20 at $OLD: the newest one drives both VMs"; OLD=$NEWEST; }
declare -A KUBECTL=([bridge]=$NEWEST [masquerade]=$OLD)
KC=$NEWEST
kc() { ip netns exec "$API_NS" env KUBECONFIG="$KUBECONFIG_FILE" HOME="$KV_TMP/home-$(basename "$KC")" "$KC" "$@"; }
vmi_field() { kc get vmi "$1" -o jsonpath="{$2}" 2>/dev/null; }
boot_id() { ip netns exec "$CLIENT_NS" curl -s -m 3 "http://$1/id" 2>/dev/null | sed -n 's/^boot_id=//p'; }
endpoints() { "$KV_BIN/kvnetctl" --socket "$1" -o json endpoints | jq length; }

vm_yaml() { # vm_yaml NAME BINDING SINKPORT: the guest connects to the client's sink; 128 MiB (a shorter pre-copy)
	guest_vm_yaml "$1" "$2" "kvnet.connect=$CLIENT_UNDERLAY:$3" "" 128Mi
}

wait_vmi() { # wait_vmi NAME PHASE [SECONDS]
	for _ in $(seq 1 "${3:-120}"); do
		[ "$(vmi_field "$1" .status.phase)" = "$2" ] && return 0
		sleep 1
	done
	return 1
}

# vmim_create VMI NAME: a VirtualMachineInstanceMigration NAME of VMI; vmim_wait NAME: waits (60 s) for its end
# and prints its phase
vmim_create() {
	kc create -f - >/dev/null <<EOF
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstanceMigration
metadata: {name: $2}
spec: {vmiName: $1}
EOF
}
vmim_wait() {
	local p=
	for _ in $(seq 1 240); do
		p=$(kc get vmim "$1" -o jsonpath='{.status.phase}' 2>/dev/null || true)
		case "$p" in Succeeded | Failed) break ;; esac
		sleep 0.25
	done
	echo "$p"
}
# migrate VMI NAME: creates VMIM NAME and waits for its end; its phase in MIG_PHASE, the phases it went
# through in MIG_PHASES
migrate() {
	vmim_create "$1" "$2"
	MIG_PHASE=$(vmim_wait "$2")
	MIG_PHASES=$(kc get vmim "$2" -o json | jq -r '[.status.phaseTransitionTimestamps[]?.phase] | join(",")')
}

start_flowmon() { # start_flowmon TAG IP SINKPORT
	rm -f "$KV_TMP/fm-$1.ready"
	ip netns exec "$CLIENT_NS" "$FLOWMON" --ping "$2" --interval-ms 10 --tcp-echo "$2:7" --tcp-sink "$3" \
		--ready-file "$KV_TMP/fm-$1.ready" >"$KV_TMP/fm-$1.json" 2>"$KV_TMP/fm-$1.err" &
	FM_PID=$!
	for _ in $(seq 1 100); do [ -f "$KV_TMP/fm-$1.ready" ] && return 0; sleep 0.1; done
	cat "$KV_TMP/fm-$1.err" >&2
	die "flowmon did not get ready"
}
stop_flowmon() {
	kill -TERM "$FM_PID" 2>/dev/null || true
	wait "$FM_PID" 2>/dev/null || true
	FM_PID=
}

declare -A EARLY=()
for b in bridge masquerade; do
	KC=${KUBECTL[$b]}
	vm=vm-$b
	sink=$((9100 + ${#b}))
	log "---- $b ($(basename "$KC")): apply, Running on node1"
	vm_yaml "$vm" "$b" "$sink" | kc apply -f - >/dev/null
	wait_vmi "$vm" Running || { kc get vmi "$vm" -o yaml; die "$b: the VMI is not Running"; }
	node=$(vmi_field "$vm" .status.nodeName)
	ip=$(vmi_field "$vm" '.status.interfaces[0].ipAddress')
	mac=$(vmi_field "$vm" '.status.interfaces[0].mac')
	kc get vmi "$vm" -o wide >"$KV_TMP/wide"
	assert_true "$b: kubectl get vmi -o wide as KubeVirt prints it: $(tr -s ' \n' ' ' <"$KV_TMP/wide")" \
		grep -Eq "^$vm +[0-9]+s +Running +$ip +$node +True +True *$" "$KV_TMP/wide"
	assert_true "$b: ... with KubeVirt's columns" grep -Eq '^NAME +AGE +PHASE +IP +NODENAME +READY +LIVE-MIGRATABLE +PAUSED' "$KV_TMP/wide"
	assert_true "$b: the guest answers ping at $ip on $node" wait_ping "$CLIENT_NS" "$ip" 90
	for _ in $(seq 1 100); do [ -n "$(boot_id "$ip")" ] && break; sleep 0.3; done
	bid=$(boot_id "$ip")
	assert_ne "$bid" "" "$b: the guest serves its boot id over HTTP"
	start_flowmon "$b" "$ip" "$sink"
	sleep 2 # the guest connects to the sink within ~1 s
	kill -USR1 "$FM_PID"
	for n in 1 2; do
		from=$(vmi_field "$vm" .status.nodeName)
		src_pod=$(kc get pods -l "kubevirt.io/created-by=$(kc get vmi "$vm" -o jsonpath='{.metadata.uid}')" \
			--field-selector "spec.nodeName=$from" -o jsonpath='{.items[0].metadata.name}')
		migrate "$vm" "mig-$b-$n"
		assert_eq "$MIG_PHASE" Succeeded "$b: VMIM mig-$b-$n Succeeded (phases $MIG_PHASES)"
		assert_true "$b: the VMIM went through TargetReady and Running" grep -q 'TargetReady,Running,Succeeded' <<<"$MIG_PHASES"
		# kvnet's guest pause needs both nodes' figures: whichever writes last adds it
		for _ in $(seq 1 20); do
			ms=$(kc get vmi "$vm" -o json | jq -c .status.migrationState)
			jq -e '.kvnetNetworkOutageMs != null' <<<"$ms" >/dev/null && break
			sleep 0.5
		done
		to=$(jq -r .targetNode <<<"$ms")
		assert_ne "$to" "$from" "$b: the migration went to another node ($from -> $to)"
		for _ in $(seq 1 20); do [ "$(vmi_field "$vm" .status.nodeName)" = "$to" ] && break; sleep 0.5; done
		assert_eq "$(vmi_field "$vm" .status.nodeName)" "$to" "$b: the VMI runs on $to"
		assert_eq "$(vmi_field "$vm" '.status.interfaces[0].ipAddress')/$(vmi_field "$vm" '.status.interfaces[0].mac')" \
			"$ip/$mac" "$b: same IP and MAC on $to"
		assert_eq "$(vmi_field "$vm" .status.phase)" Running "$b: the VMI is Running after the migration"
		assert_eq "$(jq -r '[.completed, .sourceNode, .sourcePod, (.startTimestamp != null), (.endTimestamp != null)] | join(" ")' <<<"$ms")" \
			"true $from $src_pod true true" "$b: migrationState: completed, source node and pod, start and end"
		assert_true "$b: migrationState has kvnet's guest pause ($(jq -r .kvnetNetworkOutageMs <<<"$ms") ms, QEMU downtime $(jq -r .kvnetDowntimeMs <<<"$ms") ms)" \
			jq -e '.kvnetNetworkOutageMs > 0' <<<"$ms"
		for _ in $(seq 1 30); do kc get pod "$src_pod" >/dev/null 2>&1 || break; sleep 0.5; done
		assert_false "$b: the source launcher pod $src_pod is gone" kc get pod "$src_pod"
		assert_eq "$(kc get pod "$(jq -r .targetPod <<<"$ms")" -o jsonpath='{.status.phase}/{.spec.nodeName}/{.status.podIP}')" \
			"Running/$to/$ip" "$b: the target pod runs on $to with the VM's IP"
		assert_eq "$(boot_id "$ip")" "$bid" "$b: the same guest instance answers after the migration"
		assert_eq "$(holder "$vm")" "$to>" "$b: the cluster's claim store names $to as holder, no target"
		assert_eq "$(client_route "$ip")" "$(env_of "${to^^}_UNDERLAY")" "$b: the client's /32 follows the VM to $to"
		e=$(ctl "${to#node}" migrations | jq -r --arg v "default/$vm" \
			'[.history[] | select(.vm==$v and .role=="target")][0].earlyPackets // 0')
		EARLY[$b]=$((${EARLY[$b]:-0} + e))
		assert_eq "$(jq -r '.kvnetEarlyPackets // "none"' <<<"$ms")" "$((e < 0 ? 0 : e))" \
			"$b: migrationState.kvnetEarlyPackets is netd's early switchover figure on $to ($e)"
		echo "MIGRATION_${b^^}_$n=from=$from to=$to outageMs=$(jq -r .kvnetNetworkOutageMs <<<"$ms") downtimeMs=$(jq -r .kvnetDowntimeMs <<<"$ms") totalMs=$(jq -r .kvnetTotalMs <<<"$ms")"
		sleep 1
	done
	assert_true "$b: packets sent during the pause reached the paused target (${EARLY[$b]:-0} over 2 migrations, early switchover)" \
		test "${EARLY[$b]:-0}" -ge 1
	sleep 1
	stop_flowmon
	fm=$KV_TMP/fm-$b.json
	jq -e . "$fm" >/dev/null || die "$b: flowmon output is not JSON: $(cat "$fm")"
	gap=$(jq '.ping.maxGapMs' "$fm")
	echo "KUBECTL_MIGRATION_${b^^}: pings sent $(jq '.ping.sent' "$fm"), lost $(jq '.ping.lost' "$fm"), longest gap $gap ms over 2 migrations"
	assert_true "$b: ping outage below the 2 s sanity bound (longest gap $gap ms)" test "${gap%.*}" -lt 2000
	assert_eq "$(jq -r '.tcpEcho.closed' "$fm")" false "$b: the client's TCP connection to the guest survived"
	assert_eq "$(jq -r '.tcpEcho.sent - .tcpEcho.echoed <= 2' "$fm")" true \
		"$b: every line came back ($(jq -r '.tcpEcho.echoed' "$fm")/$(jq -r '.tcpEcho.sent' "$fm"))"
	long=$(jq -c '[.tcpSink.conns[]] | max_by(.lines)' "$fm")
	assert_eq "$(jq -r '.closed' <<<"$long")" false "$b: the guest's own TCP connection to the client survived"
	assert_eq "$(jq -r '.seqGaps' <<<"$long")" 0 "$b: no line of the guest's connection was lost ($(jq -r .lines <<<"$long") lines)"
done
KC=$NEWEST

# ---------------------------------------------------------------- cancellation: the VMIM deleted while it runs
vm=vm-bridge
ip=$(vmi_field "$vm" '.status.interfaces[0].ipAddress')
node=$(vmi_field "$vm" .status.nodeName)
vmim_create "$vm" mig-cancel
for _ in $(seq 1 100); do
	case "$(kc get vmim mig-cancel -o jsonpath='{.status.phase}' 2>/dev/null)" in Scheduled | PreparingTarget | TargetReady | Running) break ;; esac
	sleep 0.1
done
phase=$(kc get vmim mig-cancel -o jsonpath='{.status.phase}')
kc delete vmim mig-cancel --wait=false >/dev/null
for _ in $(seq 1 60); do
	jq -e '.failed == true or .completed == true' <<<"$(kc get vmi "$vm" -o json | jq -c .status.migrationState)" >/dev/null && break
	sleep 0.5
done
ms=$(kc get vmi "$vm" -o json | jq -c .status.migrationState)
if jq -e '.completed == true' <<<"$ms" >/dev/null; then
	# too late to cancel (the migration finished first): KubeVirt's abortStatus Failed
	assert_eq "$(jq -r .abortStatus <<<"$ms")" Failed "cancel (deleted at $phase): too late, abortStatus Failed"
else
	assert_eq "$(jq -r '.failed' <<<"$ms")" true "cancel (deleted at $phase): the migration failed ($(jq -r .failureReason <<<"$ms"))"
	assert_eq "$(jq -r '.abortStatus' <<<"$ms")" Succeeded "cancel: abortStatus Succeeded"
	assert_eq "$(vmi_field "$vm" .status.nodeName)" "$node" "cancel: the VMI stays on $node"
	for _ in $(seq 1 60); do [ "$(kc get pods -l kubevirt.io/migrationJobUID --field-selector "spec.nodeName!=$node" -o name 2>/dev/null | wc -l)" = 0 ] && break; sleep 0.5; done
	assert_eq "$(kc get pods -o json | jq --arg n "$node" '[.items[] | select(.metadata.labels["vm.kubevirt.io/name"]=="vm-bridge" and .spec.nodeName!=$n)] | length')" 0 \
		"cancel: the target pod is gone"
fi
assert_true "cancel: the VM answers at $ip" wait_ping "$CLIENT_NS" "$ip" 20

# ---------------------------------------------------------------- the target's QEMU dies: rolled back
node=$(vmi_field "$vm" .status.nodeName)
bid=$(boot_id "$ip")
vmim_create "$vm" mig-kill
killed=
for _ in $(seq 1 300); do
	# the VM's second QEMU (a guest that migrated in was started with -incoming too: the newest is the target's)
	if [ "$(pgrep -fc "qemu-system.*guest=default_$vm," || true)" -ge 2 ]; then
		pid=$(pgrep -nf "qemu-system.*guest=default_$vm,")
		kill -KILL "$pid" && killed=$pid
		break
	fi
	sleep 0.05
done
assert_ne "$killed" "" "kill: the target's incoming QEMU was found and killed"
vmim_wait mig-kill >/dev/null
assert_eq "$(kc get vmim mig-kill -o jsonpath='{.status.phase}')" Failed \
	"kill: the VMIM Failed ($(kc get vmi "$vm" -o jsonpath='{.status.migrationState.failureReason}'))"
assert_eq "$(vmi_field "$vm" .status.nodeName)/$(vmi_field "$vm" .status.phase)" "$node/Running" "kill: the VMI runs on $node"
assert_true "kill: the VM answers at $ip" wait_ping "$CLIENT_NS" "$ip" 20
assert_eq "$(boot_id "$ip")" "$bid" "kill: the same guest instance"
for _ in $(seq 1 60); do [ "$(kc get pods -o name | wc -l)" = 2 ] && break; sleep 0.5; done
assert_eq "$(kc get pods -o name | wc -l)" 2 "kill: the failed target pod is gone (one pod per VM left)"

# ---------------------------------------------------------------- the target node's underlay cut: rolled back
node=$(vmi_field "$vm" .status.nodeName)
other=node$((3 - ${node#node}))
vmim_create "$vm" mig-cut
for _ in $(seq 1 300); do
	[ "$(pgrep -fc "qemu-system.*guest=default_$vm," || true)" -ge 2 ] && break
	sleep 0.05
done
ons=$(env_of "${other^^}_NS")
ip -n "$ons" link set ul0 down
vmim_wait mig-cut >/dev/null
ip -n "$ons" link set ul0 up
assert_eq "$(kc get vmim mig-cut -o jsonpath='{.status.phase}')" Failed \
	"cut underlay: the VMIM Failed ($(kc get vmi "$vm" -o jsonpath='{.status.migrationState.failureReason}'))"
assert_eq "$(vmi_field "$vm" .status.nodeName)/$(vmi_field "$vm" .status.phase)" "$node/Running" "cut underlay: the VMI runs on $node"
assert_true "cut underlay: the VM answers at $ip" wait_ping "$CLIENT_NS" "$ip" 20
assert_eq "$(boot_id "$ip")" "$bid" "cut underlay: the same guest instance"
# the target pod goes (the controller deletes it, its agent stops it: CNI DEL rolls the passive target back)
want=$([ "$(vmi_field vm-masquerade .status.nodeName)" = "$other" ] && echo 1 || echo 0)
for _ in $(seq 1 60); do
	[ "$(kc get pods -o name | wc -l)" = 2 ] && [ "$(endpoints "$(env_of "${other^^}_SOCK")")" = "$want" ] && break
	sleep 0.5
done
assert_eq "$(endpoints "$(env_of "${other^^}_SOCK")")" "$want" "cut underlay: no attachment of $vm left on $other"
assert_eq "$(holder "$vm")" "$node>" "cut underlay: the claim held by $node, no target left"

# ---------------------------------------------------------------- the source's agent restarted mid-migration
# (SIGTERM leaves the VMs; the next agent goes on from the pods' records: it starts the migration the target is
# ready for, or reports the end of the one its launcher ran while no agent watched)
restart_agent() { # restart_agent NODE-NUMBER DELAY
	local pidf=$SDIR/node$1-pods/agent.pid cmd=()
	mapfile -d '' cmd <"/proc/$(cat "$pidf")/cmdline"
	kill -TERM "$(cat "$pidf")"
	for _ in $(seq 1 50); do kill -0 "$(cat "$pidf")" 2>/dev/null || break; sleep 0.1; done
	sleep "$2"
	nsenter --net="/run/netns/$API_NS" setsid "${cmd[@]}" >>"$SDIR/node$1-pods/agent.log" 2>&1 </dev/null &
	echo $! >"$pidf"
}
for delay in 3 0; do
	node=$(vmi_field "$vm" .status.nodeName)
	vmim_create "$vm" "mig-restart-$delay"
	if [ "$delay" = 0 ]; then
		# the agent goes while its launcher migrates
		for _ in $(seq 1 200); do
			[ -n "$(kc get vmi "$vm" -o jsonpath='{.status.migrationState.startTimestamp}')" ] && break
			sleep 0.05
		done
		when="while the migration ran"
	else
		when="for ${delay} s from the VMIM's creation"
	fi
	restart_agent "${node#node}" "$delay"
	vmim_wait "mig-restart-$delay" >/dev/null
	assert_eq "$(kc get vmim "mig-restart-$delay" -o jsonpath='{.status.phase}')" Succeeded \
		"restart (the source's agent down $when): the VMIM Succeeded"
	assert_ne "$(vmi_field "$vm" .status.nodeName)" "$node" "restart: the VMI left $node"
	assert_true "restart: the VM answers at $ip" wait_ping "$CLIENT_NS" "$ip" 20
	assert_eq "$(boot_id "$ip")" "$bid" "restart: the same guest instance"
done

# ---------------------------------------------------------------- the controller restarted mid-migration
# (it keeps nothing in memory: the next one goes on from the VMIM, the VMI's migrationState and the pods)
ctl_cmd=()
mapfile -d '' ctl_cmd <"/proc/$(cat "$SDIR/controller.pid")/cmdline"
node=$(vmi_field "$vm" .status.nodeName)
vmim_create "$vm" mig-ctl-restart
for _ in $(seq 1 100); do
	[ -n "$(kc get vmi "$vm" -o jsonpath='{.status.migrationState.targetPod}' 2>/dev/null)" ] && break
	sleep 0.1
done
kill -TERM "$(cat "$SDIR/controller.pid")"
for _ in $(seq 1 50); do kill -0 "$(cat "$SDIR/controller.pid")" 2>/dev/null || break; sleep 0.1; done
sleep 2
ip netns exec "$API_NS" setsid "${ctl_cmd[@]}" >>"$SDIR/controller.log" 2>&1 </dev/null &
echo $! >"$SDIR/controller.pid"
vmim_wait mig-ctl-restart >/dev/null
assert_eq "$(kc get vmim mig-ctl-restart -o jsonpath='{.status.phase}')" Succeeded \
	"controller restarted mid-migration: the VMIM Succeeded ($(kc get vmim mig-ctl-restart -o json | jq -r '[.status.phaseTransitionTimestamps[]?.phase] | join(",")'))"
assert_ne "$(vmi_field "$vm" .status.nodeName)" "$node" "controller restart: the VMI left $node"
assert_true "controller restart: the VM answers at $ip" wait_ping "$CLIENT_NS" "$ip" 20
assert_eq "$(boot_id "$ip")" "$bid" "controller restart: the same guest instance"

# ---------------------------------------------------------------- ping-pong, then look for leaks
PINGPONG=${KVNET_TEST_PINGPONG:-6}
ok=0
for k in $(seq 1 "$PINGPONG"); do
	for v in vm-bridge vm-masquerade; do
		[ "$v" = vm-masquerade ] && [ $((k % 3)) != 0 ] && continue # the masquerade VM every third round
		migrate "$v" "pp-$v-$k"
		if [ "$MIG_PHASE" = Succeeded ]; then ok=$((ok + 1)); else log "ping-pong: $v #$k: $MIG_PHASE ($MIG_PHASES)"; fi
	done
done
want=$((PINGPONG + PINGPONG / 3))
assert_eq "$ok" "$want" "ping-pong: $want migrations Succeeded"
for v in vm-bridge vm-masquerade; do
	vip=$(vmi_field "$v" '.status.interfaces[0].ipAddress')
	assert_true "after ping-pong $v answers at $vip" wait_ping "$CLIENT_NS" "$vip" 10
done
n_ep=$(($(endpoints "$NODE1_SOCK") + $(endpoints "$NODE2_SOCK")))
assert_eq "$n_ep" 2 "no leaked attachments (2 VMs, $n_ep attachments on both nodes)"
n_cl=$(($(ctl 1 ipam | jq '.claims | length') + $(ctl 2 ipam | jq '.claims | length')))
assert_eq "$n_cl" 2 "no leaked local claims"
assert_eq "$(ctl 1 cluster-claims | jq '.claims | length')" 2 "two claims in the cluster's store"
n_links=$(($(ip -n "$NODE1_NS" -o link show | grep -Ec ': kv[0-9a-f]{8}' || true) + $(ip -n "$NODE2_NS" -o link show | grep -Ec ': kv[0-9a-f]{8}' || true)))
assert_eq "$n_links" 2 "no leaked host links (one node-side veth per VM)"
assert_eq "$(ip netns list | grep -c "^$NAME-p-" || true)" 2 "no leaked pod sandboxes"
assert_eq "$(pgrep -fc "qemu-system.*guest=default_vm-" || true)" 2 "no leaked QEMU processes"
# (the target's agent ends its half at its next look at the VMI once the migration ended: up to a poll interval)
for _ in $(seq 1 100); do [ "$(pgrep -fc "socat.*$SDIR/" || true)" = 0 ] && break; sleep 0.1; done
assert_eq "$(pgrep -fc "socat.*$SDIR/" || true)" 0 "no leaked migration proxies ($(pgrep -fa "socat.*$SDIR/" | cut -c1-300 | tr '\n' ';'))"
for i in 1 2; do
	ns=$(env_of "NODE${i}_NS")
	assert_eq "$(ip netns exec "$ns" nft list ruleset 2>/dev/null | grep -c 'kvnet-masq' || true)" 0 "node$i: no masquerade table leaked into the node"
	assert_eq "$(tc -n "$ns" filter show dev ul0 ingress 2>/dev/null | grep -c migredir || true)" 0 \
		"node$i: no migration redirect left on the underlay interface"
	assert_eq "$(ctl "$i" cluster-claims | jq '[.claims[] | select(.target != "" or .targetReady)] | length')" 0 \
		"node$i: no claim left with a migration target"
done

# ---------------------------------------------------------------- a migration to the VMI's own node is refused
out=$(kc create -f - 2>&1 <<EOF
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstanceMigration
metadata: {name: mig-same}
spec:
  vmiName: $vm
  addedNodeSelector: {kubernetes.io/hostname: $(vmi_field "$vm" .status.nodeName)}
EOF
) && rc=0 || rc=$?
assert_eq "$rc" 1 "a VMIM to the VMI's own node is refused"
assert_true "its error says why ($out)" grep -qi 'node' <<<"$out"

# ---------------------------------------------------------------- Halted, then delete: nothing left
kc patch vm vm-masquerade --type merge -p '{"spec":{"runStrategy":"Halted"}}' >/dev/null
for _ in $(seq 1 90); do
	kc get vmi vm-masquerade >/dev/null 2>&1 || break
	sleep 1
done
assert_false "Halted: the VMI is gone" kc get vmi vm-masquerade
assert_eq "$(kc get vm vm-masquerade -o jsonpath='{.status.printableStatus}')" Stopped "Halted: the VM is Stopped"
sleep 2
assert_ne "$(holder vm-masquerade)" "" "Halted: the VM keeps its address claim while it exists (its IP when it starts again)"
kc delete vm vm-bridge vm-masquerade >/dev/null
for _ in $(seq 1 90); do
	[ "$(kc get pods,vmis -o name | wc -l)" = 0 ] && [ "$(endpoints "$NODE1_SOCK")" = 0 ] && [ "$(endpoints "$NODE2_SOCK")" = 0 ] && break
	sleep 1
done
assert_eq "$(kc get pods,vmis -o name | wc -l)" 0 "delete: no launcher pod or VMI left"
assert_eq "$(kc get vmims -o json | jq -r '[.items[].status.phase] | sort | unique | join(",")')" "Failed,Succeeded" \
	"the finished VMIMs stay (their history), as KubeVirt keeps them"
assert_eq "$(endpoints "$NODE1_SOCK")/$(endpoints "$NODE2_SOCK")" 0/0 "delete: no attachment left on node1 or node2"
for _ in $(seq 1 20); do [ "$(ctl 1 cluster-claims | jq '.claims | length')" = 0 ] && break; sleep 0.5; done
assert_eq "$(ctl 1 ipam | jq '.claims | length')/$(ctl 2 ipam | jq '.claims | length')/$(ctl 1 cluster-claims | jq '.claims | length')" \
	0/0/0 "delete: the VMs' address claims released (node1, node2, the cluster's store)"
assert_eq "$(find "$SDIR"/node*-pods/state/pods -mindepth 1 -maxdepth 1 -type d | wc -l)" 0 "delete: no pod directory left on the nodes"
assert_eq "$(ip netns list | grep -c "^$NAME-p-" || true)" 0 "delete: no pod sandbox left"
for f in "$SDIR"/node*-pods/agent.log "$SDIR/controller.log"; do
	assert_false "no sanitizer report in $(basename "$(dirname "$f")")/$(basename "$f")" grep -Eq 'Sanitizer|runtime error:' "$f"
done
finish
