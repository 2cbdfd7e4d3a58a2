#!/usr/bin/env bash
# A sandbox is pinned by identity, not by path (docs/SECURITY.md): a container is attached in namespace X; X goes
# away and a new namespace takes the name X with an eth0 of its own (another pod's, say). CHECK must say the path
# is no longer the attachment's namespace, DEL must clean up the attachment without touching the new X's eth0, and
# a netd restart must not touch it either.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
setup_node
mkns SBX_A sbxa
mkns OTHER other
start_netd "$NODE_NS"
conf=$(render_conf kvnet-basic.conflist 1.1.0)

res=$(cni add "$conf" cid-a "$SBX_A" eth0)
ip_a=$(echo "$res" | result_ip4)
host_a=$(kvctl -o json endpoints | jq -r '.[] | select(.containerID=="cid-a") | .hostIfname')
assert_true "the record carries the sandbox's identity" \
	jq -e '.[] | select(.containerID=="cid-a") | .netnsId | test("^[0-9]+:[0-9]+$")' <<<"$(kvctl -o json endpoints)"
assert_true "CHECK passes" cni check "$conf" cid-a "$SBX_A" eth0

# the pod's namespace goes; a new one takes its name, with an eth0 that is not kvnet's
ip netns del "$SBX_A"
ip netns add "$SBX_A"
ip -n "$SBX_A" link add eth0 type veth peer name peer0 netns "$OTHER"
ip -n "$SBX_A" addr add 192.0.2.9/24 dev eth0
idx=$(ip -n "$SBX_A" -j link show eth0 | jq '.[0].ifindex')

rc=0
cni check "$conf" cid-a "$SBX_A" eth0 >/dev/null 2>"$KV_TMP/check.err" || rc=$?
assert_ne "$rc" 0 "CHECK fails once the path names another namespace"
assert_true "CHECK says so ($(head -c 200 "$KV_TMP/check.err"))" grep -q "is not the namespace attachment" \
	"$KV_TMP/check.err"

netd_term
start_netd "$NODE_NS"
assert_eq "$(ip -n "$SBX_A" -j link show eth0 2>/dev/null | jq '.[0].ifindex')" "$idx" \
	"a netd restart leaves the new namespace's eth0 alone"
cni del "$conf" cid-a "$SBX_A" eth0
assert_eq "$(ip -n "$SBX_A" -j link show eth0 2>/dev/null | jq '.[0].ifindex')" "$idx" \
	"DEL leaves the new namespace's eth0 alone (same ifindex)"
assert_eq "$(ip -n "$SBX_A" -j addr show dev eth0 | jq -r '.[0].addr_info[] | select(.family=="inet") | .local')" \
	192.0.2.9 "and its address"
assert_true "netd said why it left it alone" grep -q "no longer the namespace it was made in" "$NETD_LOG"
assert_no_link "$NODE_NS" "$host_a"
assert_eq "$(kvctl -o json endpoints | jq length)" 0 "the attachment is gone from netd"
assert_eq "$(kvctl -o json ipam | jq --arg a "$ip_a" '[.claims[] | select(.addresses // [] | index($a + "/24"))] | length')" 0 \
	"its address is released"
stop_netd
finish
