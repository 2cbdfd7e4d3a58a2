#!/usr/bin/env bash
# Fault injection (docs/RELIABILITY.md): netd is killed (SIGKILL) at a random moment while eight pods are being
# attached and detached at once, round after round, and started again on the same state. The runtime does what the
# CNI spec asks of it (a failed ADD is followed by a DEL, a failed DEL is retried). After every round the node must
# be exactly consistent: one record per attached pod with its links, address and CHECK; IPAM claims, the NAT
# table's masquerade set and the anti-spoofing table's ports all match the records; no kvnet link and no sandbox
# interface is left of a pod that is not attached. Prints how long each restart took.
#
# Environment: KVNET_CRASH_ROUNDS (8).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
ROUNDS=${KVNET_CRASH_ROUNDS:-8}
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "KVNET_CRASH_ROUNDS must be a positive integer, got '$ROUNDS'"
PODS=8
setup_node
start_netd "$NODE_NS"
conf=$(render_conf kvnet-dual.conflist 1.1.0)
SBX=()
ATTACHED=()
for i in $(seq 0 $((PODS - 1))); do
	mkns ns "crash$i"
	SBX+=("$ns")
	ATTACHED+=(0)
done

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# poll CMD... for up to 5 s (the reaper deletes retired links in the background)
eventually() {
	local i
	for i in $(seq 1 50); do "$@" && return 0; sleep 0.1; done
	"$@"
}

no_stray_links() {
	local want have
	want=$(kvctl -o json endpoints | jq -r '.[].hostIfname' | sort)
	have=$(ip -n "$NODE_NS" -j link show type veth | jq -r '.[].ifname' | sort)
	[ "$want" = "$have" ]
}

no_stray_sandbox_links() {
	local i
	for i in $(seq 0 $((PODS - 1))); do
		if [ "${ATTACHED[$i]}" = 0 ] && link_exists "${SBX[$i]}" eth0; then return 1; fi
	done
}

check_consistent() {
	local label=$1 eps n_att=0 i
	for i in $(seq 0 $((PODS - 1))); do n_att=$((n_att + ATTACHED[i])); done
	eps=$(kvctl -o json endpoints)
	assert_eq "$(jq length <<<"$eps")" "$n_att" "$label: one record per attached pod ($n_att)"
	for i in $(seq 0 $((PODS - 1))); do
		[ "${ATTACHED[$i]}" = 1 ] || continue
		local ip
		ip=$(jq -r --arg c "cid-$i" '.[] | select(.containerID == $c) | .ips[0] | split("/")[0]' <<<"$eps")
		if ! ip -n "${SBX[$i]}" -j addr show dev eth0 2>/dev/null | jq -e --arg a "$ip" \
			'[.[0].addr_info[] | .local] | index($a) != null' >/dev/null || ! cni check "$conf" "cid-$i" "${SBX[$i]}" eth0; then
			fail "$label: pod $i attached with its address $ip and CHECK passes"
		fi
	done
	assert_eq "$(kvctl -o json ipam | jq -r '[.claims[].key] | sort | join(" ")')" \
		"$(jq -r '[.[].key] | sort | join(" ")' <<<"$eps")" "$label: IPAM claims = the records' keys"
	assert_eq "$(ip netns exec "$NODE_NS" nft -j list set inet kvnet masq4 2>/dev/null |
		jq -r '[.nftables[] | .set? | .elem? // [] | .[]] | sort | join(" ")')" \
		"$(jq -r '[.[].ips[] | select(test("^[0-9.]+/")) | split("/")[0]] | sort | join(" ")' <<<"$eps")" \
		"$label: NAT masquerades exactly the records' addresses"
	assert_eq "$(ip netns exec "$NODE_NS" nft -j list set bridge kvnet-ports ports 2>/dev/null |
		jq -r '[.nftables[] | .set? | .elem? // [] | .[]] | sort | join(" ")')" \
		"$(jq -r '[.[].hostIfname] | sort | join(" ")' <<<"$eps")" "$label: anti-spoofing filters exactly the records' ports"
	assert_true "$label: no kvnet link in the node without a record" eventually no_stray_links
	assert_true "$label: no interface left in a detached pod's sandbox" eventually no_stray_sandbox_links
}

RESTARTS=()
for r in $(seq 1 "$ROUNDS"); do
	ops=()
	for i in $(seq 0 $((PODS - 1))); do
		if [ "${ATTACHED[$i]}" = 1 ]; then op=del; else op=add; fi
		ops+=("$op")
		(
			rc=0
			cni "$op" "$conf" "cid-$i" "${SBX[$i]}" eth0 >/dev/null 2>&1 || rc=$?
			echo "$rc" >"$KV_TMP/rc.$i"
		) &
	done
	# somewhere in the middle of the batch (eight ADDs or DELs take some 20-40 ms here): 0-29 ms
	sleep "0.0$((RANDOM % 3))$((RANDOM % 10))"
	kill9_netd
	wait
	t0=$(now_ms)
	start_netd "$NODE_NS"
	RESTARTS+=($(($(now_ms) - t0)))
	done_ok=0
	for i in $(seq 0 $((PODS - 1))); do
		rc=$(cat "$KV_TMP/rc.$i")
		if [ "${ops[$i]}" = add ] && [ "$rc" = 0 ]; then
			ATTACHED[$i]=1
			done_ok=$((done_ok + 1))
		elif [ "${ops[$i]}" = add ]; then
			# a failed ADD: the runtime calls DEL
			cni del "$conf" "cid-$i" "${SBX[$i]}" eth0 >/dev/null || fail "round $r: DEL after pod $i's failed ADD"
			ATTACHED[$i]=0
		else
			[ "$rc" = 0 ] && done_ok=$((done_ok + 1))
			# a DEL that failed is retried; one that succeeded may be repeated (DEL is idempotent)
			cni del "$conf" "cid-$i" "${SBX[$i]}" eth0 >/dev/null || fail "round $r: DEL of pod $i again"
			ATTACHED[$i]=0
		fi
	done
	log "round $r: ops ${ops[*]}, $done_ok of $PODS finished before the kill, restart ${RESTARTS[-1]} ms"
	check_consistent "round $r"
done

# and the node still works: every pod attached, each reaches the next
for i in $(seq 0 $((PODS - 1))); do
	if [ "${ATTACHED[$i]}" = 0 ]; then
		cni add "$conf" "cid-$i" "${SBX[$i]}" eth0 >/dev/null
		ATTACHED[$i]=1
	fi
done
check_consistent "after the rounds"
eps=$(kvctl -o json endpoints)
for i in $(seq 0 $((PODS - 1))); do
	next=$(((i + 1) % PODS))
	ip=$(jq -r --arg c "cid-$next" '.[] | select(.containerID == $c) | .ips[0] | split("/")[0]' <<<"$eps")
	assert_ping "${SBX[$i]}" "$ip" "pod $i reaches pod $next"
done
sorted=$(printf '%s\n' "${RESTARTS[@]}" | sort -n)
med=$(sed -n "$(((ROUNDS + 1) / 2))p" <<<"$sorted")
log "restarts after SIGKILL, ms: min $(head -1 <<<"$sorted") median $med max $(tail -1 <<<"$sorted")"
echo "CRASH_ROUNDS=$ROUNDS CRASH_RESTART_MS_MEDIAN=$med"
for i in $(seq 0 $((PODS - 1))); do cni del "$conf" "cid-$i" "${SBX[$i]}" eth0; done
stop_netd
finish
