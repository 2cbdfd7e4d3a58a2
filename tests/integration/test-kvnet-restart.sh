#!/usr/bin/env bash
# netd crash and restart on the same state dir: traffic between two containers keeps flowing
# (ping loss <= 3, a TCP stream survives), claims and nft elements are identical afterwards,
# and a new ADD after the restart does not reuse a claimed address.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
kvnet_setup SBX_A SBX_B SBX_C

ip_a=$(cni add "$conf" cid-a "$SBX_A" eth0 | result_ip4)
ip_b=$(cni add "$conf" cid-b "$SBX_B" eth0 | result_ip4)
log "A=$ip_a B=$ip_b"
assert_ping "$SBX_A" "$ip_b" "ping A -> B before the restart"

claims() { kvctl -o json ipam | jq -S '[.claims[] | {network, key, ips, mac, state, owner}] | sort_by(.key)'; }
endpoints() { kvctl -o json endpoints | jq -S 'sort_by(.key)'; }
claims_before=$(claims)
eps_before=$(endpoints)

# Traffic during the crash: ping every 50 ms for 10 s, and a TCP stream.
ip netns exec "$SBX_A" ping -n -i 0.05 -c 200 -W 1 "$ip_b" >"$KV_TMP/ping.out" 2>&1 &
ping_pid=$!
KV_PIDS+=("$ping_pid")

bg ip netns exec "$SBX_B" socat -u TCP-LISTEN:7000,reuseaddr OPEN:"$KV_TMP/stream.out",creat,append
wait_listen "$SBX_B" 7000 || die "stream listener did not come up"
bg ip netns exec "$SBX_A" sh -c "while :; do echo tick; sleep 0.05; done | socat -u - TCP:$ip_b:7000"
stream_pid=$BG_PID

sleep 2
kill9_netd
log "netd killed with SIGKILL"
# Claims are not fsynced on their own (the endpoint record is): lose one, as a power loss could. Every
# journal line carries its own checksum, so dropping a whole line is what such a loss looks like.
claims_journal="$NETD_STATE/ipam/claims.journal"
assert_true "the claim is in the claims journal" grep -aq '"ctr/cid-a/eth0"' "$claims_journal"
sed -i '/"ctr\/cid-a\/eth0"/d' "$claims_journal"
assert_false "the claim is gone from the journal" grep -aq '"ctr/cid-a/eth0"' "$claims_journal"
# What a crash inside an ADD leaves behind: a host veth with kvnet's name pattern and no record.
ip -n "$NODE_NS" link add kv0badc0de type veth peer name kvorphan0
sleep 1
start_netd "$NODE_NS"
assert_no_link "$NODE_NS" kv0badc0de
log "netd restarted on the same state dir"
size1=$(stat -c %s "$KV_TMP/stream.out")
sleep 1.5
size2=$(stat -c %s "$KV_TMP/stream.out")

assert_eq "$(claims)" "$claims_before" "claims identical after the restart"
assert_eq "$(endpoints)" "$eps_before" "endpoints identical after the restart"
assert_nft_has "$ip_a"
assert_nft_has "$ip_b"
assert_true "TCP stream still flowing after the restart ($size1 -> $size2 bytes)" test "$size2" -gt "$size1"
assert_true "TCP sender still connected" kill -0 "$stream_pid"

# A new ADD after the restart must not reuse a claimed address.
ip_c=$(cni add "$conf" cid-c "$SBX_C" eth0 | result_ip4)
log "C=$ip_c"
assert_ne "$ip_c" "$ip_a" "new ADD does not reuse A's address"
assert_ne "$ip_c" "$ip_b" "new ADD does not reuse B's address"
assert_ping "$SBX_C" "$ip_a" "ping C -> A"
assert_true "CHECK A passes after the restart" cni check "$conf" cid-a "$SBX_A" eth0

wait "$ping_pid" 2>/dev/null || true
tx=$(sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\1/p' "$KV_TMP/ping.out")
rx=$(sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\2/p' "$KV_TMP/ping.out")
log "ping: $tx transmitted, $rx received"
assert_true "ping ran to completion" test -n "$tx"
assert_true "ping loss over the restart <= 3 (lost $((${tx:-0} - ${rx:-0})))" test $((${tx:-0} - ${rx:-0})) -le 3 -a -n "$tx"

kill "$stream_pid" 2>/dev/null || true
for c in a b c; do
	sbx=SBX_${c^^}
	cni del "$conf" "cid-$c" "${!sbx}" eth0
	assert_no_link "${!sbx}" eth0
done
assert_nft_lacks "$ip_a"
assert_eq "$(kvctl -o json ipam | jq '.claims | length')" 0 "no claims at the end"

finish
