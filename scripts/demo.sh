#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make demo`, kvnet's main job: two real VMs applied with kubectl on a simulated two-node cluster, on one machine,
# without touching the host's own network. scripts/kvnet-sim.sh brings up the nodes (network namespaces with
# kvnet-netd, an underlay, VXLAN between them), a client namespace ("the outside world"), the embedded API
# (kvnet-controller --embedded) and one kvnet-node agent per node, which runs a launcher pod per VM (sandbox
# namespace wired by the kvnet CNI plugin, a private libvirtd, kvnet-launcher). VirtualMachine "web" uses the
# bridge binding, "db" the masquerade binding; db's guest holds a TCP connection to web's echo port, both guests
# one to a listener on the client. The demo shows each guest's DHCP lease from netd (its serial console), that
# the VMs reach each other (web sees db's connection from db's stable IP) and the client, and the time from
# `kubectl apply` to the first ping reply; then web migrates to the other node through a
# VirtualMachineInstanceMigration while the client pings it every 10 ms and holds a TCP connection, with the
# figures demo-migration prints; then both VMs are deleted and nothing may be left.
# Result lines: VM=<name> IP=<ip> BINDING=<b> DHCP=ok|fail BOOT_TO_NETWORK_MS=<n> LAUNCHER_TO_NETWORK_MS=<n> per
# VM and MIGRATION=web FROM= TO= PHASE= PING_GAP_MS= LOST_PINGS= QEMU_DOWNTIME_MS= GUEST_PAUSE_MS= TCP=.
# BOOT_TO_NETWORK_MS now counts from `kubectl apply` (scheduling, the pod's sandbox, CNI and libvirtd included);
# LAUNCHER_TO_NETWORK_MS from the VM's kvnet-launcher start, what the single-node demo's BOOT_TO_NETWORK_MS was.
# Gone with the move to the simulated cluster (the single-node demo had them): the node port forward
# (hostPort 8080 -> db:80 from an "external" namespace) and the check that the guests reach the outside from
# the node's address through the node's NAT; the nodes here route the VM network to the client instead.
# Exit 0 when every check passed. Environment: KVNET_BUILD (default build).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEMO=demo
# shellcheck source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
# shellcheck source=scripts/lib/demo-sim.sh
source "$ROOT/scripts/lib/demo-sim.sh"
demo_sim_require
demo_sim_init kvdemo
demo_sim_up

# the client's listener: records who connects (the guests connect to it at boot); socat's shell expands the variable
# shellcheck disable=SC2016
ip netns exec "$CLIENT_NS" socat -u TCP-LISTEN:9100,reuseaddr,fork SYSTEM:'echo "$SOCAT_PEERADDR" >>'"$WORK/client.peers" \
	2>/dev/null &
DEMO_CLEANUP+=("kill $!")

declare -A T0=() IP=() BINDING=([web]=bridge [db]=masquerade) BOOT=() LAUNCH=() DHCP=() WAITER=()
# apply VM KERNEL-ARGS: kubectl apply of VM; once its VMI has an IP, a waiter in the background records when the
# first ping reply came (epoch ms) in $WORK/VM.boot
apply() {
	guest_vm_yaml "$1" "${BINDING[$1]}" "$2" 30 >"$WORK/$1.yaml"
	T0[$1]=$(ms)
	kcr apply -f "$WORK/$1.yaml"
	IP[$1]=$(wait_vmi_ip "$1" 120) || die "the VMI $1 is not Running with an IP after 120 s"
	(wait_ping "${IP[$1]}" 120 && ms >"$WORK/$1.boot") &
	WAITER[$1]=$!
}
echo
echo "== VirtualMachine web (bridge binding); its guest connects to the client ($CLIENT_UNDERLAY:9100) at boot"
apply web "kvnet.connect=$CLIENT_UNDERLAY:9100"
echo "== VirtualMachine db (masquerade binding); its guest connects to web's echo port (${IP[web]}:7) and to the client"
apply db "kvnet.connect=${IP[web]}:7,$CLIENT_UNDERLAY:9100"
# launcher_started VM: when VM's kvnet-launcher started (epoch ms; its log's first timestamp), -1 if unknown
launcher_started() {
	local ts
	ts=$(grep -aom1 '^[0-9-]*T[0-9:.]*Z' "$(dirname "$(serial_log "$1")")/launcher.log" 2>/dev/null) &&
		date -d "$ts" +%s%3N || echo -1
}
for vm in web db; do
	BOOT[$vm]=-1 LAUNCH[$vm]=-1
	if wait "${WAITER[$vm]}"; then
		up=$(cat "$WORK/$vm.boot")
		BOOT[$vm]=$((up - T0[$vm]))
		l=$(launcher_started "$vm")
		[ "$l" -ge 0 ] && LAUNCH[$vm]=$((up - l))
	fi
	check "VM $vm answers ping from the client at ${IP[$vm]} (${BOOT[$vm]} ms after kubectl apply, ${LAUNCH[$vm]} ms after its launcher started)" \
		test "${BOOT[$vm]}" -ge 0
done
kcr get vmi -o wide
kcr get pods -o wide

echo
echo "== DHCP: what each guest learned from netd (its serial console)"
for vm in web db; do
	line=""
	for _ in $(seq 1 50); do
		line=$(tr -d '\r' <"$(serial_log "$vm")" 2>/dev/null | grep -a 'dhcp=bound' | head -n1 || true)
		[ -n "$line" ] && break
		sleep 0.2
	done
	echo "   $vm: ${line:-<none>}"
	want="ip=${IP[$vm]}/24"
	[ "$vm" = db ] && want="ip=10.0.2.2/24" # masquerade: the guest's side of the pod's NAT
	DHCP[$vm]=fail
	grep -q "$want" <<<"$line" && DHCP[$vm]=ok
	check "$vm got $want by DHCP" test "${DHCP[$vm]}" = ok
done

echo
echo "== VM to VM and to the client"
# db_conn: the line of web's /cgi-bin/info naming db's connection to web's echo port (local and remote port)
db_conn() {
	grep -Em1 "^tcp=(::ffff:)?${IP[web]}:7,(::ffff:)?${IP[db]}:" <<<"$(ip netns exec "$CLIENT_NS" curl -s -m 3 "http://${IP[web]}/cgi-bin/info")"
}
CONN=""
for _ in $(seq 1 50); do
	CONN=$(db_conn) && break
	sleep 0.2
done
check "web sees db's connection to its echo port from db's stable IP ${IP[db]} (through db's masquerade): $CONN" test -n "$CONN"
for _ in $(seq 1 50); do
	[ "$(sort -u "$WORK/client.peers" 2>/dev/null | wc -l)" -ge 2 ] && break
	sleep 0.2
done
echo "   the client's listener saw connections from: $(sort -u "$WORK/client.peers" 2>/dev/null | xargs)"
check "the client got connections from both guests" test "$(sort -u "$WORK/client.peers" 2>/dev/null | wc -l)" -ge 2
echo "\$ kvnetctl --socket \$NODE1_SOCK endpoints    # node1"
ctl 1 endpoints | sed 's/^/   /' || true
echo "\$ kvnetctl --socket \$NODE2_SOCK endpoints    # node2"
ctl 2 endpoints | sed 's/^/   /' || true

echo
echo "== live migration of web through a VirtualMachineInstanceMigration; the client pings it every 10 ms and holds"
echo "   a TCP connection to its echo port"
echo "\$ ip netns exec $CLIENT_NS flowmon --ping ${IP[web]} --interval-ms 10 --tcp-echo ${IP[web]}:7 &"
start_flowmon fm-web --ping "${IP[web]}" --interval-ms 10 --tcp-echo "${IP[web]}:7" --drain-ms 500 ||
	die "flowmon did not start"
fm=$FM_PID
sleep 0.5
PHASE=Failed
migrate web web-mig 120 && PHASE=Succeeded
sleep 1
stop_flowmon "$fm"
echo "   phases: $(phases web-mig)"
check "the migration Succeeded" test "$PHASE" = Succeeded
MIG_FROM="?" MIG_TO="?" MIG_GAP="?" MIG_LOST="?" MIG_QEMU="?" MIG_PAUSE="?" MIG_TCP="?"
if [ "$PHASE" = Succeeded ]; then
	kcr get vmim web-mig
	kcr get vmi -o wide
	migration_figures web "$WORK/fm-web.json" || true
	check "web kept its IP ${IP[web]}" test "$(vmi_field web '.status.interfaces[0].ipAddress')" = "${IP[web]}"
	check "db's connection to web survived the migration (the same connection: $(db_conn || true))" test "$(db_conn || true)" = "$CONN"
fi

echo
echo "== results"
for vm in web db; do
	echo "VM=$vm IP=${IP[$vm]} BINDING=${BINDING[$vm]} DHCP=${DHCP[$vm]} BOOT_TO_NETWORK_MS=${BOOT[$vm]}" \
		"LAUNCHER_TO_NETWORK_MS=${LAUNCH[$vm]}"
done
echo "MIGRATION=web FROM=$MIG_FROM TO=$MIG_TO PHASE=$PHASE PING_GAP_MS=$MIG_GAP LOST_PINGS=$MIG_LOST" \
	"QEMU_DOWNTIME_MS=$MIG_QEMU GUEST_PAUSE_MS=$MIG_PAUSE TCP=$MIG_TCP"

echo
echo "== delete both VirtualMachines (graceful shutdown of the guests)"
kcr delete vm web db
left=""
for _ in $(seq 1 120); do
	left=$(nothing_left) && break
	sleep 0.5
done
check "nothing left: no VM, VMI or pod; no attachment on node1 or node2 (kvnetctl endpoints)${left:+ (left: $left)}" test -z "$left"
kcr get vms,vmis,pods
[ "$FAILED" = 0 ] && echo "   demo: every check passed" || echo "   demo: FAILED (see the lines marked !! above)"
exit "$FAILED"
