#!/usr/bin/env bash
# Fault injection (docs/RELIABILITY.md): sandboxes that disappear while they are being attached. Round after round,
# eight pods are attached at once and four of their network namespaces are deleted 0-15 ms after the ADDs start
# (before, during or after netd's work on them). Each ADD either succeeds or fails with an error naming the
# namespace, and whatever it did is undone by the runtime's DEL (which must succeed for a namespace that is gone,
# as the CNI spec asks). After every round's DELs nothing is left: no record, no IPAM claim, no host-side veth, no
# NAT or anti-spoofing element. The pods that kept their namespace carry traffic before their DEL.
#
# Environment: KVNET_VANISH_ROUNDS (10).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
ROUNDS=${KVNET_VANISH_ROUNDS:-10}
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "KVNET_VANISH_ROUNDS must be a positive integer, got '$ROUNDS'"
PODS=8
setup_node
start_netd "$NODE_NS"
conf=$(render_conf kvnet-dual.conflist 1.1.0)

nft_set_len() { # TABLE SET: elements in the set (0 when the table is not there)
	ip netns exec "$NODE_NS" nft -j list set "$1" "$2" 2>/dev/null |
		jq '[.nftables[] | select(.set) | .set.elem // [] | length] | add // 0'
}
eventually() {
	local i
	for i in $(seq 1 50); do "$@" && return 0; sleep 0.1; done
	"$@"
}
no_veths() { [ "$(count_veth "$NODE_NS")" = 0 ]; }

ok_total=0 fail_total=0 bad_errors=0 first_err=""
for round in $(seq 1 "$ROUNDS"); do
	names=()
	for i in $(seq 0 $((PODS - 1))); do
		name="kvt-vanish-$(rand_suffix)-$i"
		ip netns add "$name"
		KV_NAMESPACES+=("$name")
		names+=("$name")
	done
	pids=()
	for i in $(seq 0 $((PODS - 1))); do
		cni add "$conf" "cid-$round-$i" "${names[$i]}" eth0 >"$KV_TMP/add.$i" 2>"$KV_TMP/err.$i" &
		pids+=($!)
	done
	# (round 1 deletes at once, before most ADDs reached netd: the injection is sure to hit at least there)
	[ "$round" = 1 ] || sleep "$(printf '0.%03d' $((RANDOM % 16)))"
	for i in 0 2 4 6; do ip netns del "${names[$i]}"; done
	for i in $(seq 0 $((PODS - 1))); do
		if wait "${pids[$i]}"; then
			ok_total=$((ok_total + 1))
		else
			fail_total=$((fail_total + 1))
			[ -n "$first_err" ] || first_err=$(head -c 300 "$KV_TMP/err.$i")
			# a vanished sandbox's ADD fails naming it (or with the node's try-again); never a crash or a hang
			grep -qE "netns|namespace|${names[$i]}|code 11" "$KV_TMP/err.$i" || {
				bad_errors=$((bad_errors + 1))
				log "round $round pod $i: $(head -c 300 "$KV_TMP/err.$i")"
			}
		fi
	done
	for i in 1 3 5 7; do
		if [ -s "$KV_TMP/add.$i" ]; then
			ip netns exec "${names[$i]}" ping -c 1 -W 2 -q 10.88.0.1 >/dev/null 2>&1 ||
				fail "round $round: pod $i (its namespace kept) reaches the gateway"
		fi
	done
	n_eps=$(kvctl -o json endpoints | jq length)
	[ "$(nft_set_len "bridge kvnet-ports" ports)" = "$n_eps" ] ||
		fail "round $round: before the DELs, one anti-spoofing port per record ($n_eps)"
	[ "$(nft_set_len "inet kvnet" masq4)" = "$n_eps" ] ||
		fail "round $round: before the DELs, one masqueraded address per record ($n_eps)"
	for i in $(seq 0 $((PODS - 1))); do
		cni del "$conf" "cid-$round-$i" "${names[$i]}" eth0 2>"$KV_TMP/del.$i" ||
			fail "round $round: DEL of pod $i succeeds ($(head -c 200 "$KV_TMP/del.$i"))"
	done
	[ "$(kvctl -o json endpoints | jq length)" = 0 ] || fail "round $round: no record left"
	[ "$(kvctl -o json ipam | jq '.claims | length')" = 0 ] || fail "round $round: no IPAM claim left"
	eventually no_veths || fail "round $round: no host-side veth left ($(count_veth "$NODE_NS"))"
	[ "$(nft_set_len "bridge kvnet-ports" ports)" = 0 ] || fail "round $round: no anti-spoofing element left"
	[ "$(nft_set_len "inet kvnet" masq4)" = 0 ] || fail "round $round: no masquerade element left"
	for i in 1 3 5 7; do ip netns del "${names[$i]}" 2>/dev/null || true; done
done
log "$ROUNDS rounds: $ok_total ADDs succeeded, $fail_total failed (their sandbox gone), e.g.: $first_err"
pass "$ROUNDS rounds of 8 ADDs with 4 sandboxes deleted under them: nothing left after the DELs"
assert_eq "$bad_errors" 0 "every failed ADD named the namespace (or said try again)"
assert_true "some ADDs ran into a vanished sandbox ($fail_total)" test "$fail_total" -gt 0
assert_true "netd is still serving" kvctl status
stop_netd
finish
