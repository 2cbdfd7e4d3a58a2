#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `make demo-migration`: live migration with kvnet through kubectl, on a simulated two-node cluster on one
# machine, without touching the host's own network.
#
# scripts/kvnet-sim.sh brings up two nodes (network namespaces with their own kvnet-netd, joined by an underlay
# and one VXLAN L2 segment), a client namespace ("the outside world"), the embedded API (kvnet-controller
# --embedded) and one kvnet-node agent per node. `kubectl apply` creates two VirtualMachines, one with the
# bridge binding and one with the masquerade binding; their guests connect to a TCP sink on the client at boot
# (kernel argument kvnet.connect=, in the manifest's kernelBoot.kernelArgs). For each VM the client
# (build/tests/flowmon) pings the VM every 10 ms and holds TCP connections to the guest's echo port while the VM
# migrates there and back (node1 -> node2 -> node1 when the scheduler put it on node1), each time through a
# kubevirt.io/v1 VirtualMachineInstanceMigration (`kubectl create -f`, then `kubectl get vmim -w`). After every
# migration the demo prints the network downtime the client saw, the lost pings, QEMU's own downtime and the
# guest's pause as the VMI's status.migrationState reports them, whether TCP survived, whether the VM kept its
# IP, its MAC and its guest instance (boot id served by the guest), kubectl's view and `kvnetctl migrations` of
# both nodes. (The bytes QEMU transferred, which the demo printed when it ran on the former scripts/vmpod.sh, are
# not in the VMI's status.)
# Then one VM is halted (`kubectl patch vm ... runStrategy: Halted`: graceful shutdown, VMI and pod gone), both
# are deleted, and nothing may be left: no VM, VMI or pod, no attachment on either node. Everything is torn
# down at the end, also on Ctrl-C or failure. Exit 0 when every migration Succeeded, every TCP connection
# survived and nothing was left, 1 otherwise.
#
# Environment: KVNET_BUILD (default build).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEMO=demo-migration
# shellcheck source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
# shellcheck source=scripts/lib/demo-sim.sh
source "$ROOT/scripts/lib/demo-sim.sh"
demo_sim_require
demo_sim_init kvdm

same() { if [ "$1" = "$2" ]; then echo "same"; else echo "CHANGED ($2 -> $1)"; fi; }

demo_sim_up

declare -A IP=() MAC=() BID=() SINK=()
echo
echo "== two VirtualMachines: one with the bridge binding, one with the masquerade binding; each guest connects"
echo "   to a TCP sink on the client at boot (kernelBoot.kernelArgs: kvnet.connect=$CLIENT_UNDERLAY:PORT)"
for b in bridge masquerade; do
	SINK[$b]=$((9100 + ${#b}))
	guest_vm_yaml "demo-$b" "$b" "kvnet.connect=$CLIENT_UNDERLAY:${SINK[$b]}" 30 >"$WORK/demo-$b.yaml"
	kcr apply -f "$WORK/demo-$b.yaml"
done
for b in bridge masquerade; do
	vm=demo-$b
	IP[$b]=$(wait_vmi_ip "$vm" 120) || die "the VMI $vm is not Running with an IP after 120 s"
	MAC[$b]=$(vmi_field "$vm" '.status.interfaces[0].mac')
	wait_ping "${IP[$b]}" 90 || die "$vm does not answer ping at ${IP[$b]}"
	BID[$b]=$(wait_boot_id "${IP[$b]}" 30)
	[ -n "${BID[$b]}" ] || die "$vm does not serve its boot id at http://${IP[$b]}/id"
	for _ in $(seq 1 30); do
		[ "$(echo probe | ip netns exec "$CLIENT_NS" timeout 3 socat -T2 - "TCP:${IP[$b]}:7" 2>/dev/null)" = probe ] && break
		sleep 1
	done
	echo "   $vm: on $(vmi_field "$vm" .status.nodeName), IP ${IP[$b]}, MAC ${MAC[$b]}, boot id ${BID[$b]}"
done
kcr get vmi -o wide
kcr get pods -o wide

echo
echo "== live migrations there and back through VirtualMachineInstanceMigrations, max downtime 50 ms, p2p over the"
echo "   underlay (QEMU's stream through the node proxies); from the source's pause on, the VM's packets wait at the"
echo "   target (EARLY below). During each: the client pings the VM every 10 ms and holds a TCP connection to its"
echo "   echo port (7); one more TCP connection per VM (client -> guest) and the guest's own connection to the"
echo "   client's sink stay open across both of its migrations"
declare -A SUMMARY=()
for b in bridge masquerade; do
	vm=demo-$b
	ip=${IP[$b]}
	echo
	echo "-- $vm ($b binding, $ip)"
	echo "\$ ip netns exec $CLIENT_NS flowmon --tcp-echo $ip:7 --tcp-interval-ms 50 --tcp-sink ${SINK[$b]} &    # held across both migrations"
	start_flowmon "held-$b" --tcp-echo "$ip:7" --tcp-interval-ms 50 --tcp-sink "${SINK[$b]}" ||
		die "flowmon (held connections of $vm) did not start"
	held=$FM_PID
	sleep 2 # the guest reconnects to the sink within ~1 s once it listens
	for n in 1 2; do
		from=$(vmi_field "$vm" .status.nodeName)
		echo "\$ ip netns exec $CLIENT_NS flowmon --ping $ip --interval-ms 10 --tcp-echo $ip:7 &"
		start_flowmon "fm-$b-$n" --ping "$ip" --interval-ms 10 --tcp-echo "$ip:7" --drain-ms 500 ||
			die "flowmon (client of $vm) did not start"
		fm=$FM_PID
		sleep 0.5
		rc=0
		migrate "$vm" "$vm-mig$n" 120 || rc=$?
		sleep 1
		stop_flowmon "$fm"
		r=$WORK/fm-$b-$n.json
		echo "   phases: $(phases "$vm-mig$n")"
		if [ "$rc" -ne 0 ]; then
			bad "$vm: migration $from -> $(vmi_field "$vm" .status.migrationState.targetNode) FAILED:" \
				"$(vmi_field "$vm" .status.migrationState.failureReason)"
			continue
		fi
		kcr get vmim "$vm-mig$n"
		kcr get vmi "$vm" -o wide
		migration_figures "$vm" "$r" || true
		nip=$(vmi_field "$vm" '.status.interfaces[0].ipAddress')
		nmac=$(vmi_field "$vm" '.status.interfaces[0].mac')
		nbid=$(wait_boot_id "$ip" 5)
		echo "     IP $(same "$nip" "$ip"), MAC $(same "$nmac" "${MAC[$b]}"), guest instance (boot id) $(same "$nbid" "${BID[$b]}")"
		if [ "$nip" != "$ip" ] || [ "$nmac" != "${MAC[$b]}" ] || [ "$nbid" != "${BID[$b]}" ]; then bad "$vm changed identity"; fi
		SUMMARY[$b]+="$MIG_FROM->$MIG_TO ${MIG_GAP}ms/${MIG_LOST}lost/QEMU ${MIG_QEMU}ms; "
		for i in 1 2; do
			echo "\$ kvnetctl --socket \$NODE${i}_SOCK migrations    # node$i"
			ctl "$i" migrations 2>&1 | sed 's/^/     /' || true
		done
	done
	stop_flowmon "$held"
	h=$WORK/held-$b.json
	if [ "$(jq -r '.tcpEcho.closed' "$h" 2>/dev/null || true)" = false ]; then
		echo "   held TCP connection to $vm across both migrations: survived ($(tcp_line "$h"))"
	else
		bad "the held TCP connection to $vm broke: $(jq -c .tcpEcho "$h" 2>/dev/null || true)"
	fi
	long=$(jq -c '[.tcpSink.conns[]] | max_by(.lines) // {}' "$h" 2>/dev/null || echo '{}')
	if [ "$(jq -r '.closed' <<<"$long")" = false ] && [ "$(jq -r '.seqGaps' <<<"$long")" = 0 ]; then
		echo "   the guest's own TCP connection to the client's sink across both migrations: survived" \
			"($(jq -r '.lines' <<<"$long") lines, none lost)"
	else
		bad "the guest's own TCP connection to the client broke or lost lines: $long"
	fi
done

echo
echo "== summary"
for b in bridge masquerade; do echo "   demo-$b: ${SUMMARY[$b]:-no migration completed}"; done

echo
echo "== halt demo-bridge (graceful shutdown), then delete both VirtualMachines"
kcr patch vm demo-bridge --type merge -p '{"spec":{"runStrategy":"Halted"}}'
gone=no
for _ in $(seq 1 120); do
	if ! kc get vmi demo-bridge >/dev/null 2>&1 &&
		[ -z "$(kc get pods -l vm.kubevirt.io/name=demo-bridge -o name 2>/dev/null)" ]; then
		gone=yes
		break
	fi
	sleep 0.5
done
if [ "$gone" = yes ]; then
	echo "   demo-bridge halted: its VMI and its pod are gone"
else
	bad "demo-bridge's VMI or pod is still there after 60 s"
fi
kcr get vms
kcr delete vm demo-bridge demo-masquerade
left=""
for _ in $(seq 1 120); do
	left=$(nothing_left) && break
	sleep 0.5
done
if [ -z "$left" ]; then
	echo "   nothing left: no VM, VMI or pod; no attachment on node1 or node2 (kvnetctl endpoints)"
else
	bad "left after the delete: $left"
fi
kcr get vms,vmis,pods

echo
if [ "$FAILED" = 0 ]; then
	echo "   every migration Succeeded; IP, MAC and guest instance kept; every TCP connection survived; nothing left"
else
	echo "   FAILED (see the lines marked !! above)"
fi
exit "$FAILED"
