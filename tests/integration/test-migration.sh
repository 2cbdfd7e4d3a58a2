[ "${KVNET_TEST_MIGRATION:-1}" = 1 ] || skip "KVNET_TEST_MIGRATION=${KVNET_TEST_MIGRATION} turns it off"
#!/usr/bin/env bash
# Live migration with real guests across two simulated nodes (scripts/cluster.sh + scripts/vmpod.sh),
# for the bridge and the masquerade binding.
#
# For each binding: a VM boots on node1 (its guest holds a TCP connection to a sink on the client);
# the client pings the VM every 10 ms and holds a TCP connection to the guest's echo port
# (tests/tools/flowmon) while the VM migrates node1 -> node2 -> node1. Asserts: same IP and MAC,
# same guest instance (boot id over HTTP), both TCP connections survive (no close, no sequence
# gap), the client's route follows the VM, the claim store shows the right holder. The ping loss
# and the longest gap are printed (figures belong to `make bench`; only a generous sanity bound of
# 2 s is asserted: without announcements the outage would be seconds). The early switchover is
# asserted by its effect: pings sent while the guest was paused were forwarded to the paused target
# (the target netd's earlyPackets, at least one over the two migrations of a binding).
# Failure injection (bridge VM): QEMU of the target pod killed mid-migration, and the underlay of
# node2 cut mid-migration: the migration fails, the VM keeps running on node1 with its network
# untouched, nothing is left on node2. Ping-pong: 10 migrations of the bridge VM, 4 of the
# masquerade VM; afterwards no leaked claims, links, nft rules, migration redirects, namespaces or
# processes. Transports: QEMU's own stream over the data proxies (default) and libvirt's tunnel
# (--tunnelled) both run.
# Guests have 128 MiB (a shorter pre-copy under TCG). QEMU runs through scripts/qemu-tcg-wrapper
# (scripts/libvirt-node.sh): without it QEMU 7.2 loses guest stores while it migrates a TCG guest and
# guests crash a few migrations later (docs/migration.md, "QEMU under TCG").
# kvnet-test-timeout: 1200
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
[ "${KVNET_TEST_MIGRATION:-1}" = 1 ] || skip "turned off by KVNET_TEST_MIGRATION=${KVNET_TEST_MIGRATION}"
require_kvnet
require_cmd qemu-system-x86_64 virsh unshare socat jq curl
[ -x /usr/sbin/libvirtd ] || skip "libvirtd not installed (apt-get install libvirt-daemon libvirt-daemon-driver-qemu)"
FLOWMON=$KV_BUILD_DIR/tests/flowmon
require_file "$FLOWMON"
"$KV_ROOT/scripts/guest-image.sh" --quiet >/dev/null || skip "scripts/guest-image.sh failed (guest image not available)"
VMPOD=$KV_ROOT/scripts/vmpod.sh
PINGPONG_BRIDGE=${KVNET_TEST_PINGPONG:-10}
PINGPONG_MASQ=${KVNET_TEST_PINGPONG_MASQ:-4}

at_exit '[ -n "${FM_PID:-}" ] && kill -KILL "$FM_PID" 2>/dev/null'
cluster_up kvt-m
ENVF=$CL_DIR/cluster.env
ctl() {
	local v=NODE$1_SOCK
	shift
	"$KV_BIN/kvnetctl" --socket "${!v}" "$@"
}
kv() { sed -n "s/^$1=//p" "$2"; }
client_route() { ip -n "$CLIENT_NS" -j route show "$1/32" | jq -r '.[0].gateway // empty'; }
holder() { ctl 1 -o json cluster-claims | jq -r --arg k "vm/default/$1/default" '.claims[] | select(.key==$k) | .holder + ">" + .target'; }
boot_id() { ip netns exec "$CLIENT_NS" curl -s -m 3 "http://$1/id" 2>/dev/null | sed -n 's/^boot_id=//p'; }

# start_flowmon NAME IP SINKPORT: ping every 10 ms + TCP echo to IP:7 + sink on SINKPORT.
start_flowmon() {
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

# migrate VM TO [options]: runs vmpod.sh migrate; output in $KV_TMP/mig.out
migrate() {
	local vm=$1 to=$2
	shift 2
	"$VMPOD" migrate --env "$ENVF" --vm "$vm" --to "$to" --max-downtime-ms 50 "$@" >"$KV_TMP/mig.out" 2>"$KV_TMP/mig.err"
}

declare -A SUMMARY=() EARLY=()
# The masquerade VM migrates with QEMU's own stream over the data proxies (vmpod.sh's default,
# --direct), the bridge VM through libvirt's tunnel (--tunnelled): both transports get the same
# continuity checks; the failure injections and the bridge ping-pong use the default (direct).
declare -A MODE=([bridge]=--tunnelled [masquerade]="")

for b in bridge masquerade; do
	vm=vm-$b
	sink=$((9100 + ${#b}))
	log "---- $b: boot on node1"
	"$VMPOD" start --env "$ENVF" --node 1 --vm "$vm" --binding "$b" --memory 128Mi \
		--kernel-args "kvnet.connect=$CLIENT_UNDERLAY:$sink" >"$KV_TMP/start.out" 2>"$KV_TMP/start.err" ||
		{
			cat "$KV_TMP/start.err"
			die "$b: vmpod start failed"
		}
	ip=$(kv IP "$KV_TMP/start.out")
	mac=$(kv MAC "$KV_TMP/start.out")
	assert_true "$b: VM answers ping from the client at $ip" wait_ping "$CLIENT_NS" "$ip" 90
	for _ in $(seq 1 100); do [ -n "$(boot_id "$ip")" ] && break; sleep 0.3; done
	bid=$(boot_id "$ip")
	assert_ne "$bid" "" "$b: guest serves its boot id over HTTP"
	start_flowmon "$b" "$ip" "$sink"
	# the guest reconnects to the sink within ~1 s once it listens
	for _ in $(seq 1 50); do
		[ -f "$KV_TMP/fm-$b.ready" ] && break
		sleep 0.1
	done
	sleep 2
	kill -USR1 "$FM_PID"

	for to in 2 1; do
		# shellcheck disable=SC2086
		if migrate "$vm" "$to" ${MODE[$b]}; then
			pass "$b: migration to node$to completed${MODE[$b]:+ (${MODE[$b]})}"
		else
			cat "$KV_TMP/mig.err"
			fail "$b: migration to node$to completed"
			continue
		fi
		m=$(kv MIGRATION "$KV_TMP/mig.out")
		log "$b: -> node$to: QEMU downtime $(jq -r .downtimeMs <<<"$m") ms, total $(jq -r .totalMs <<<"$m") ms"
		assert_eq "$(kv NODE "$KV_TMP/mig.out")" "$to" "$b: VM runs on node$to"
		assert_eq "$(kv IP "$KV_TMP/mig.out")" "$ip" "$b: same IP on node$to"
		assert_eq "$(kv MAC "$KV_TMP/mig.out")" "$mac" "$b: same MAC on node$to"
		assert_eq "$(holder "$vm")" "node$to>" "$b: the claim store names node$to as holder, no target"
		assert_eq "$(client_route "$ip")" "$(eval echo "\$NODE${to}_UNDERLAY")" "$b: the client's /32 follows the VM to node$to"
		assert_eq "$(boot_id "$ip")" "$bid" "$b: same guest instance (boot id) on node$to"
		e=$(ctl "$to" -o json migrations | jq -r --arg v "default/$vm" \
			'[.history[] | select(.vm==$v and .role=="target")][0].earlyPackets // "none"')
		log "$b: -> node$to: $e packet(s) reached the paused target early (migration redirect)"
		[ "$e" != none ] && EARLY[$b]=$((${EARLY[$b]:-0} + e))
		sleep 1
	done
	assert_true "$b: packets sent during the pause were forwarded to the paused target (${EARLY[$b]:-0} over 2 migrations)" \
		test "${EARLY[$b]:-0}" -ge 1
	sleep 1
	stop_flowmon
	fm=$KV_TMP/fm-$b.json
	jq -e . "$fm" >/dev/null || die "$b: flowmon output is not JSON: $(cat "$fm")"
	lost=$(jq '.ping.lost' "$fm")
	gap=$(jq '.ping.maxGapMs' "$fm")
	log "$b: pings sent $(jq '.ping.sent' "$fm"), lost $lost, longest gap ${gap} ms over 2 migrations"
	SUMMARY[$b]="lost=$lost maxGapMs=$gap"
	assert_true "$b: ping outage below the 2 s sanity bound (longest gap $gap ms)" test "${gap%.*}" -lt 2000
	assert_eq "$(jq -r '.tcpEcho.closed' "$fm")" false "$b: the client's TCP connection to the guest survived"
	assert_eq "$(jq -r '.tcpEcho.sent - .tcpEcho.echoed <= 2' "$fm")" true \
		"$b: every line came back ($(jq -r '.tcpEcho.echoed' "$fm")/$(jq -r '.tcpEcho.sent' "$fm"))"
	long=$(jq -c '[.tcpSink.conns[]] | max_by(.lines)' "$fm")
	assert_eq "$(jq -r '.closed' <<<"$long")" false "$b: the guest's own TCP connection to the client survived"
	assert_eq "$(jq -r '.seqGaps' <<<"$long")" 0 "$b: no line of the guest's connection was lost ($(jq -r .lines <<<"$long") lines)"
	assert_eq "$(jq -r '.tcpSink.bootIds | length' "$fm")" 1 "$b: one guest instance talked to the client"
	[ "$b" = bridge ] && BRIDGE_IP=$ip && BRIDGE_BID=$bid
	[ "$b" = masquerade ] && MASQ_IP=$ip
done

# ---------------------------------------------------------------- failure injection (bridge VM on node1)
vm=vm-bridge
check_rollback() { # check_rollback WHAT
	assert_eq "$(sed -n 's/^NODE=//p' <(KVNET_BUILD=$KVNET_BUILD "$VMPOD" info --env "$ENVF" --vm "$vm"))" 1 "$1: VM still on node1"
	assert_true "$1: VM still answers at $BRIDGE_IP" wait_ping "$CLIENT_NS" "$BRIDGE_IP" 10
	assert_eq "$(boot_id "$BRIDGE_IP")" "$BRIDGE_BID" "$1: same guest instance"
	assert_eq "$(holder "$vm")" "node1>" "$1: claim held by node1, no target left"
	assert_eq "$(client_route "$BRIDGE_IP")" "$NODE1_UNDERLAY" "$1: the client's route still points at node1"
	assert_eq "$(ctl 2 -o json endpoints | jq --arg v "$vm" '[.[] | select(.vm.name==$v)] | length')" 0 "$1: no attachment left on node2"
	assert_eq "$(ctl 2 -o json ipam | jq --arg k "vm/default/$vm/default" '[.claims[] | select(.key==$k)] | length')" 0 "$1: no claim left on node2"
	assert_eq "$(ip netns list | awk '{print $1}' | grep -c "^$PREFIX-p-$vm-" || true)" 1 "$1: only the source pod's namespace exists"
}
src_launcher_sock() { sed -n 's/^LAUNCHER_SOCK=//p' <("$VMPOD" info --env "$ENVF" --vm "$vm"); }
wait_migration_running() {
	local sock
	sock=$(src_launcher_sock)
	for _ in $(seq 1 300); do
		[ "$("$KV_BIN/kvnet-launcher" --status - --socket "$sock" 2>/dev/null | jq -r '.migration.state // empty')" = running ] && return 0
		sleep 0.1
	done
	return 1
}

# (a) the target's QEMU dies mid-migration
migrate "$vm" 2 --bandwidth 4 &
MPID=$!
assert_true "kill target: migration is running" wait_migration_running
sleep 1
tpod=$(ip netns list | awk '{print $1}' | grep "^$PREFIX-p-$vm-" | while read -r ns; do
	ip netns pids "$ns" | xargs -r ps -o pid=,comm= -p | awk '$2 ~ /qemu/ {print $1}' | head -n1 | sed "s|^|$ns |"
done | tail -n 1)
qpids=""
for ns in $(ip netns list | awk '{print $1}' | grep "^$PREFIX-p-$vm-"); do
	[ -d "$CL_DIR/pods/${ns#"$PREFIX"-p-}" ] || continue
	if [ "$(cat "$CL_DIR/pods/${ns#"$PREFIX"-p-}/node")" = 2 ]; then
		qpids=$(ip netns pids "$ns" | xargs -r ps -o pid=,comm= -p | awk '$2 ~ /qemu/ {print $1}')
	fi
done
log "target pod QEMU: ${qpids:-none} ($tpod)"
assert_ne "$qpids" "" "kill target: the target pod's QEMU exists"
kill -KILL $qpids 2>/dev/null || true
rc=0
wait "$MPID" || rc=$?
assert_ne "$rc" 0 "kill target: vmpod.sh migrate reports the failure"
check_rollback "kill target"

# (b) the underlay of node2 is cut mid-migration
migrate "$vm" 2 --bandwidth 2 &
MPID=$!
assert_true "cut underlay: migration is running" wait_migration_running
sleep 1
ip -n "$NODE2_NS" link set ul0 down
rc=0
wait "$MPID" || rc=$?
ip -n "$NODE2_NS" link set ul0 up
assert_ne "$rc" 0 "cut underlay: vmpod.sh migrate reports the failure"
log "cut underlay: $(tail -n 2 "$KV_TMP/mig.err" | tr '\n' ' ')"
check_rollback "cut underlay"

# ---------------------------------------------------------------- ping-pong, then look for leaks
pingpong() { # pingpong VM COUNT [vmpod.sh options]
	local vm=$1 n=$2 k to ok=0
	shift 2
	for k in $(seq 1 "$n"); do
		to=$((k % 2 == 1 ? 2 : 1))
		if migrate "$vm" "$to" "$@"; then
			ok=$((ok + 1))
		else
			log "ping-pong $vm #$k failed: $(tail -n 3 "$KV_TMP/mig.err" | tr '\n' ' ')"
		fi
	done
	assert_eq "$ok" "$n" "ping-pong: $n migrations of $vm completed"
}
pingpong vm-bridge "$PINGPONG_BRIDGE"
pingpong vm-masquerade "$PINGPONG_MASQ" --tunnelled
# serial_tail VM: the guest's console after its last migration (for a failure report)
serial_tail() {
	local log
	log=$(sed -n 's/^SERIAL_LOG=//p' <("$VMPOD" info --env "$ENVF" --vm "$1"))
	echo "---- console of $1 ($log):"
	tr -d '\r' <"$log" 2>/dev/null | tail -n 15
}
for pair in "vm-bridge $BRIDGE_IP" "vm-masquerade $MASQ_IP"; do
	set -- $pair
	if wait_ping "$CLIENT_NS" "$2" 10; then
		pass "after ping-pong $1 answers at $2"
	else
		fail "after ping-pong $1 answers at $2"
		serial_tail "$1"
	fi
done

# leaks: exactly one attachment, claim, pod and QEMU per VM, across both nodes
n_ep=$(($(ctl 1 -o json endpoints | jq length) + $(ctl 2 -o json endpoints | jq length)))
assert_eq "$n_ep" 2 "no leaked attachments (2 VMs, $n_ep attachments on both nodes)"
n_cl=$(($(ctl 1 -o json ipam | jq '.claims | length') + $(ctl 2 -o json ipam | jq '.claims | length')))
assert_eq "$n_cl" 2 "no leaked local claims"
assert_eq "$(ctl 1 -o json cluster-claims | jq '[.claims[] | select(.target != "")] | length')" 0 "no claim left migrating"
assert_eq "$(ctl 1 -o json cluster-claims | jq '.claims | length')" 2 "two claims in the store"
n_links=$(($(ip -n "$NODE1_NS" -o link show | grep -Ec ': kv[0-9a-f]{8}' || true) + $(ip -n "$NODE2_NS" -o link show | grep -Ec ': kv[0-9a-f]{8}' || true)))
assert_eq "$n_links" 2 "no leaked host links (one node-side veth per VM)"
assert_eq "$(ip netns list | awk '{print $1}' | grep -c "^$PREFIX-p-" || true)" 2 "no leaked pod namespaces"
n_qemu=0
for ns in $(ip netns list | awk '{print $1}' | grep "^$PREFIX-p-"); do
	n_qemu=$((n_qemu + $(ip netns pids "$ns" | xargs -r ps -o comm= -p | grep -c qemu || true)))
done
assert_eq "$n_qemu" 2 "no leaked QEMU processes"
assert_eq "$(pgrep -f "$CL_DIR/pods/.*/libvirt" | xargs -r ps -o comm= -p | grep -c libvirtd || true)" 2 "no leaked libvirtd"
assert_eq "$(pgrep -f "socat.*$CL_DIR" | wc -l)" 0 "no leaked migration proxies"
for i in 1 2; do
	v=NODE${i}_NS
	assert_eq "$(ip netns exec "${!v}" nft list ruleset 2>/dev/null | grep -c 'kvnet-masq' || true)" 0 "node$i: no masquerade table leaked into the node"
	assert_eq "$(tc -n "${!v}" filter show dev ul0 ingress 2>/dev/null | grep -c migredir || true)" 0 \
		"node$i: no migration redirect left on the underlay interface"
	assert_eq "$(ctl "$i" -o json cluster-claims | jq '[.claims[] | select(.target != "" or .targetReady)] | length')" 0 \
		"node$i: no claim left with a migration target"
done
ctl 1 migrations | head -20

assert_cluster_netd_clean
for b in bridge masquerade; do log "MIGRATION_SUMMARY binding=$b ${SUMMARY[$b]:-}"; done
finish
