#!/usr/bin/env bash
# VLAN access networks (docs/vlan.md) across two nodes, each with its own netd, whose trunk bridges (kvtr0) are
# joined by a veth pair, the wire. Pods of VLAN 100 on both nodes reach each other; a pod of VLAN 200 and an
# untagged pod on the trunk do not reach VLAN 100 even with an address in its subnet; the wire carries the
# frames with 802.1Q tag 100 (tcpdump); a tagged frame sent by an untagged pod (VLAN hopping) is dropped by its
# guard, and reaches VLAN 100 once the guard is removed (so the check can fail); CHECK reports the missing
# guard and a netd restart repairs it; DEL leaves no endpoint links; bad vlan configs fail with code 7 naming
# the field and change nothing.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
require_cmd tcpdump
setup_node
N1=$NODE_NS
mkns N2 node2
mkns SBX_A vla
mkns SBX_B vlb
mkns SBX_C vlc
mkns SBX_D vld
mkns SBX_E vle

# The trunks exist before netd (an admin's bridge with its uplink), joined by the wire.
for ns in "$N1" "$N2"; do
	ip -n "$ns" link add kvtr0 type bridge
	ip -n "$ns" link set kvtr0 up
done
ip link add kvw0 netns "$N1" type veth peer name kvw1 netns "$N2"
ip -n "$N1" link set kvw0 master kvtr0 up
ip -n "$N2" link set kvw1 master kvtr0 up

start_netd "$N1"
S1=$NETD_SOCK
S2=$KV_TMP/netd2.sock
mkdir -p "$KV_TMP/netd2-state"
bg ip netns exec "$N2" "$KV_BIN/kvnet-netd" --socket "$S2" --state-dir "$KV_TMP/netd2-state" --log-level debug \
	>"$KV_TMP/netd2.log" 2>&1
NETD2_PID=$BG_PID
for _ in $(seq 1 100); do
	[ -S "$S2" ] && "$KV_BIN/kvnetctl" --socket "$S2" status >/dev/null 2>&1 && break
	sleep 0.1
done
"$KV_BIN/kvnetctl" --socket "$S2" status >/dev/null || die "second netd did not start: $(cat "$KV_TMP/netd2.log")"

# conf NAME SOCKET VLAN SUBNET [RANGE_START RANGE_END]: a conflist in $KV_TMP.
conf() {
	local name=$1 sock=$2 vlan=$3 subnet=$4 rs=${5:-} re=${6:-} out range
	out=$KV_TMP/$1-$(rand_suffix).conflist
	range="{\"subnet\":\"$subnet\"${rs:+,\"rangeStart\":\"$rs\",\"rangeEnd\":\"$re\"}}"
	cat >"$out" <<EOF
{"cniVersion":"1.1.0","name":"$name","plugins":[{"type":"kvnet","binding":"bridge","bridge":"kvtr0",
 "vlan":$vlan,"ipam":{"ranges":[[$range]]},"socket":"$sock"}]}
EOF
	echo "$out"
}
c100a=$(conf net100 "$S1" 100 10.100.0.0/24 10.100.0.10 10.100.0.19)
c100b=$(conf net100 "$S2" 100 10.100.0.0/24 10.100.0.20 10.100.0.29)
c200=$(conf net200 "$S2" 200 10.200.0.0/24)
cplain=$(conf plain "$S2" 0 10.50.0.0/24)

res_a=$(cni add "$c100a" cid-a "$SBX_A" eth0)
ip_a=$(echo "$res_a" | result_ip4)
ip_b=$(NODE_NS=$N2 cni add "$c100b" cid-b "$SBX_B" eth0 | result_ip4)
NODE_NS=$N2 cni add "$c200" cid-c "$SBX_C" eth0 >/dev/null
ip_d=$(NODE_NS=$N2 cni add "$cplain" cid-d "$SBX_D" eth0 | result_ip4)
ip_e=$(NODE_NS=$N2 cni add "$cplain" cid-e "$SBX_E" eth0 | result_ip4)
log "A=$ip_a (node1, vlan 100) B=$ip_b (node2, vlan 100) D=$ip_d E=$ip_e (node2, untagged)"
# C (VLAN 200) and D (untagged) also get an address in VLAN 100's subnet: only L2 separation keeps them apart.
ip -n "$SBX_C" addr add 10.100.0.99/24 dev eth0
ip -n "$SBX_D" addr add 10.100.0.98/24 dev eth0

assert_true "node2 has the VLAN bridge kvtr0.100" link_exists "$N2" kvtr0.100
assert_true "node1 has the VLAN bridge kvtr0.100" link_exists "$N1" kvtr0.100
assert_eq "$(echo "$res_a" | jq -r '.ips[0].gateway')" 10.100.0.1 "A's gateway is VLAN 100's"
assert_true "the result names the VLAN's bridge" jq -e '.interfaces[] | select(.name=="kvtr0.100")' <<<"$res_a"
assert_true "the gateway address is on kvtr0.100" \
	sh -c "ip -n '$N1' -o addr show dev kvtr0.100 | grep -q ' 10.100.0.1/24 '"

# the wire carries VLAN 100's frames tagged (the filter takes only those: other VLANs send IPv6 MLD reports meanwhile)
ip netns exec "$N1" timeout 10 tcpdump -l -nn -e -i kvw0 -c 2 vlan 100 and icmp >"$KV_TMP/wire.txt" 2>/dev/null &
dump_pid=$!
sleep 1
assert_ping "$SBX_A" "$ip_b" "VLAN 100 across nodes: A -> B"
assert_ping "$SBX_B" "$ip_a" "VLAN 100 across nodes: B -> A"
wait "$dump_pid" || true
assert_true "tcpdump on the wire shows 802.1Q tag 100 ($(head -c 160 "$KV_TMP/wire.txt"))" \
	grep -q 'vlan 100' "$KV_TMP/wire.txt"

assert_no_ping "$SBX_A" 10.100.0.99 "VLAN 100 does not reach a VLAN 200 pod"
assert_no_ping "$SBX_A" 10.100.0.98 "VLAN 100 does not reach an untagged pod on the trunk"
assert_no_ping "$SBX_C" "$ip_b" "VLAN 200 does not reach VLAN 100 on its own node"
assert_ping "$SBX_D" "$ip_e" "untagged pods on the trunk still reach each other"
st2=$("$KV_BIN/kvnetctl" --socket "$S2" -o json status)
assert_eq "$(jq -c .vlanTrunks <<<"$st2")" '["kvtr0"]' "kvnetctl status on node2 lists the trunk"
assert_eq "$(jq '[.journals[] | select(.path | endswith("/endpoints.journal")) | .records][0]' <<<"$st2")" 4 \
	"node2's endpoints journal holds its 4 records"
assert_true "kvnetctl status prints the journals" \
	sh -c "'$KV_BIN/kvnetctl' --socket '$S2' status | grep -q 'journal: .*claims.journal: 4 records'"
assert_ping "$SBX_A" 10.100.0.1 "A reaches its gateway on node1's kvtr0.100"

# VLAN hopping: D writes an 802.1Q-tagged (VID 100) ARP request for B's address, claiming 10.100.0.97.
host_d=$("$KV_BIN/kvnetctl" --socket "$S2" -o json endpoints | jq -r '.[] | select(.containerID=="cid-d") | .hostIfname')
mac_d=$(ip -n "$SBX_D" -j link show dev eth0 | jq -r '.[0].address')
hex() { echo "$1" | tr -d ':' | sed 's/../\\x&/g'; }
iphex() { printf '\\x%02x' ${1//./ }; }
printf "\xff\xff\xff\xff\xff\xff$(hex "$mac_d")\x81\x00\x00\x64\x08\x06\x00\x01\x08\x00\x06\x04\x00\x01$(hex "$mac_d")$(iphex 10.100.0.97)\x00\x00\x00\x00\x00\x00$(iphex "$ip_b")" \
	>"$KV_TMP/hop.frame"
assert_eq "$(stat -c %s "$KV_TMP/hop.frame")" 46 "crafted frame: 14 + 4 (tag) + 28 (ARP) bytes"
hop() { ip netns exec "$SBX_D" socat -u OPEN:"$KV_TMP/hop.frame" INTERFACE:eth0; sleep 0.5; }
b_learned() { ip -n "$SBX_B" neigh show 10.100.0.97 | grep -q lladdr; }
hop
assert_false "the guard on $host_d drops D's tagged frame: B did not hear it" b_learned
assert_eq "$(NODE_NS=$N2 cni_fail_code check "$cplain" cid-d "$SBX_D" eth0)" none "CHECK D passes (guard present)"
ip netns exec "$N2" tc filter del dev "$host_d" ingress
hop
assert_false "without the guard the port's anti-spoofing still drops it (a tag, a foreign address)" b_learned
ip netns exec "$N2" nft delete element bridge kvnet-ports ports "{ \"$host_d\" }"
hop
assert_true "without the guard and the filter the same frame reaches VLAN 100: B learned 10.100.0.97" b_learned
rc=$(NODE_NS=$N2 cni_fail_code check "$cplain" cid-d "$SBX_D" eth0)
assert_ne "$rc" none "CHECK D fails while its guard is missing (code $rc)"

# a restart of node2's netd puts the guard back
kill -TERM "$NETD2_PID"
wait "$NETD2_PID" || die "node2's netd did not exit cleanly: $(tail -5 "$KV_TMP/netd2.log")"
bg ip netns exec "$N2" "$KV_BIN/kvnet-netd" --socket "$S2" --state-dir "$KV_TMP/netd2-state" --log-level debug \
	>>"$KV_TMP/netd2.log" 2>&1
NETD2_PID=$BG_PID
for _ in $(seq 1 100); do
	"$KV_BIN/kvnetctl" --socket "$S2" status >/dev/null 2>&1 && break
	sleep 0.1
done
assert_eq "$(NODE_NS=$N2 cni_fail_code check "$cplain" cid-d "$SBX_D" eth0)" none "CHECK D passes after netd's restart"
ip -n "$SBX_B" neigh flush dev eth0
hop
assert_false "after the restart D's tagged frame is dropped again" b_learned
assert_ping "$SBX_A" "$ip_b" "VLAN 100 still works after node2's netd restarted"

# bad input: code 7 naming the field, nothing created
bad=$KV_TMP/bad.conflist
jq '.plugins[0].vlan = 4095' "$c200" >"$bad"
assert_eq "$(NODE_NS=$N2 cni_fail_code add "$bad" cid-x "$SBX_E" eth1)" 7 "vlan 4095: code 7"
jq '.plugins[0].bridge = "kvtrunk-long01"' "$c200" >"$bad"
err=$(NODE_NS=$N2 cni add "$bad" cid-x "$SBX_E" eth1 2>&1 >/dev/null || true)
assert_true "a bridge name too long for the VLAN's bridge is refused naming 'bridge' ($err)" \
	grep -q "'bridge' 'kvtrunk-long01' is too long for 'vlan' 200" <<<"$err"
assert_false "no bridge was created for it" link_exists "$N2" kvtrunk-long01
assert_false "no eth1 in E" link_exists "$SBX_E" eth1

# DEL: endpoint links go; the VLAN's bridge and link stay with the trunk (node infrastructure, like the bridge)
cni del "$c100a" cid-a "$SBX_A" eth0
for c in "$c100b:cid-b:$SBX_B" "$c200:cid-c:$SBX_C" "$cplain:cid-d:$SBX_D" "$cplain:cid-e:$SBX_E"; do
	IFS=: read -r cf cid sbx <<<"$c"
	NODE_NS=$N2 cni del "$cf" "$cid" "$sbx" eth0
done
assert_eq "$("$KV_BIN/kvnetctl" --socket "$S2" -o json endpoints | jq length)" 0 "node2 has no endpoints left"
assert_eq "$(kvctl -o json endpoints | jq length)" 0 "node1 has no endpoints left"
assert_false "no eth0 left in A" link_exists "$SBX_A" eth0
assert_eq "$(ip -n "$N2" -o link show master kvtr0.100 | grep -vc kvm || true)" 0 "no pod port left on node2's kvtr0.100"

kill -TERM "$NETD2_PID"
wait "$NETD2_PID" || fail "node2's netd exited cleanly on SIGTERM"
finish
