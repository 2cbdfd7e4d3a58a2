#!/usr/bin/env bash
# Anti-spoofing on kvnet's bridge ports (docs/SECURITY.md): a container A on a dual-stack kvnet network sends
# crafted frames (tests/tools/frames.py) into its port; a neighbour B on the same bridge listens. Every spoofed
# frame (another MAC, another VM's or the gateway's address in IPv4 / ARP / IPv6 / ND, DHCP and DHCPv6 server
# messages, router advertisements, redirects, VLAN tags, other ether types) must not reach B, and the same
# frame with A's own identity must (each drop case has a control that passes, so the test can fail both
# ways). Then: the kernel counted the drops, per rule and per port (@portdrops); CHECK notices a filter element
# that went missing; a netd restart keeps the filter; a network with "antiSpoofing": false lets the spoofed MAC through; DEL removes A's elements.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
command -v python3 >/dev/null || skip "python3 is needed to craft the frames (tests/tools/frames.py)"
FRAMES="python3 $KV_ROOT/tests/tools/frames.py"
setup_node
mkns SBX_A sbxa
mkns SBX_B sbxb
start_netd "$NODE_NS"
conf=$(render_conf kvnet-dual.conflist 1.1.0)

res_a=$(cni add "$conf" cid-a "$SBX_A" eth0)
res_b=$(cni add "$conf" cid-b "$SBX_B" eth0)
ip_a=$(echo "$res_a" | result_ip4)
ip_b=$(echo "$res_b" | result_ip4)
ip6_a=$(echo "$res_a" | result_ip6)
ip6_b=$(echo "$res_b" | result_ip6)
mac_a=$(ip -n "$SBX_A" -j link show eth0 | jq -r '.[0].address')
mac_b=$(ip -n "$SBX_B" -j link show eth0 | jq -r '.[0].address')
ll_a=$(ip -n "$SBX_A" -j addr show dev eth0 | jq -r '.[0].addr_info[] | select(.scope=="link") | .local' | head -1)
host_a=$(kvctl -o json endpoints | jq -r '.[] | select(.containerID=="cid-a") | .hostIfname')
log "A: $mac_a $ip_a $ip6_a $ll_a (port $host_a); B: $mac_b $ip_b $ip6_b"
[ -n "$ip6_a" ] && [ -n "$ll_a" ] || die "A has no IPv6 / link-local address"
assert_ping "$SBX_A" "$ip_b" "ping A -> B through the filtered ports"
assert_true "ping6 A -> B through the filtered ports" ip netns exec "$SBX_A" ping -6 -c 1 -W 3 "$ip6_b"

SPOOF_MAC=02:66:66:66:66:66
# set_has SET TEXT: the filter's set lists TEXT
set_has() {
	local out
	out=$(ip netns exec "$NODE_NS" nft list set bridge kvnet-ports "$1") # (not piped into grep -q: SIGPIPE)
	grep -qF -- "$2" <<<"$out"
}

# case NAME EXPECT(pass|drop) KIND key=value...: queued, sent in one burst while B listens
CASES=()
case_() { CASES+=("$*"); }

# MAC
case_ mac-own pass udp4 smac=$mac_a sip=$ip_a dip=10.88.0.255
case_ mac-foreign drop udp4 smac=$SPOOF_MAC sip=$ip_a dip=10.88.0.255
case_ mac-neighbour drop udp4 smac=$mac_b sip=$ip_a dip=10.88.0.255
# IPv4 source
case_ ip4-neighbour drop udp4 smac=$mac_a sip=$ip_b dip=10.88.0.255
case_ ip4-gateway drop icmp4 smac=$mac_a sip=10.88.0.1 dip=$ip_b
case_ dhcp-discover pass udp4 smac=$mac_a sip=0.0.0.0 dip=255.255.255.255 sport=68 dport=67
case_ zero-not-dhcp drop udp4 smac=$mac_a sip=0.0.0.0 dip=255.255.255.255 sport=68 dport=53
case_ dhcp-server drop udp4 smac=$mac_a sip=$ip_a dip=255.255.255.255 sport=67 dport=68
case_ icmp-redirect drop icmp4 smac=$mac_a sip=$ip_a dip=$ip_b type=5
case_ icmp-echo pass icmp4 smac=$mac_a sip=$ip_a dip=$ip_b type=8
# ARP
case_ arp-own pass arp smac=$mac_a sha=$mac_a spa=$ip_a tpa=$ip_b
case_ arp-probe pass arp smac=$mac_a sha=$mac_a spa=0.0.0.0 tpa=$ip_a op=1
case_ arp-sha drop arp smac=$mac_a sha=$mac_b spa=$ip_a tpa=$ip_b
case_ arp-spa-gateway drop arp smac=$mac_a sha=$mac_a spa=10.88.0.1 tpa=$ip_b
case_ arp-spa-neighbour drop arp smac=$mac_a sha=$mac_a spa=$ip_b tpa=10.88.0.1
# IPv6 sources, ND
case_ ip6-own pass udp6 smac=$mac_a sip=$ip6_a dip=ff02::1
case_ ip6-linklocal pass udp6 smac=$mac_a sip=$ll_a dip=ff02::1
case_ ip6-neighbour drop udp6 smac=$mac_a sip=$ip6_b dip=ff02::1
case_ ip6-other-linklocal drop udp6 smac=$mac_a sip=fe80::1 dip=ff02::1
case_ dad pass icmp6 smac=$mac_a sip=:: dip=ff02::1:ff00:1 type=135 target=$ip6_a
case_ na-own pass icmp6 smac=$mac_a sip=$ll_a dip=ff02::1 type=136 target=$ip6_a opt=2 ll=$mac_a
case_ na-target drop icmp6 smac=$mac_a sip=$ll_a dip=ff02::1 type=136 target=$ip6_b opt=2 ll=$mac_a
case_ na-gateway drop icmp6 smac=$mac_a sip=$ll_a dip=ff02::1 type=136 target=fd88::1 opt=2 ll=$mac_a
case_ na-lladdr drop icmp6 smac=$mac_a sip=$ll_a dip=ff02::1 type=136 target=$ip6_a opt=2 ll=$mac_b
case_ ns-own pass icmp6 smac=$mac_a sip=$ll_a dip=ff02::1 type=135 target=$ip6_b opt=1 ll=$mac_a
case_ ns-lladdr drop icmp6 smac=$mac_a sip=$ll_a dip=ff02::1 type=135 target=$ip6_b opt=1 ll=$mac_b
case_ ns-second-option drop icmp6 smac=$mac_a sip=$ll_a dip=ff02::1 type=135 target=$ip6_b opt=14 ll=01:02:03:04:05:06 \
	opt2=1 ll2=$mac_b
case_ na-second-option drop icmp6 smac=$mac_a sip=$ll_a dip=ff02::1 type=136 target=$ip6_a opt=2 ll=$mac_a opt2=2 \
	ll2=$mac_b
case_ dad-nonce pass icmp6 smac=$mac_a sip=:: dip=ff02::1:ff00:1 type=135 target=$ip6_a opt=14 ll=01:02:03:04:05:06
case_ rs-own pass icmp6 smac=$mac_a sip=$ll_a dip=ff02::2 type=133 opt=1 ll=$mac_a
case_ rs-lladdr drop icmp6 smac=$mac_a sip=$ll_a dip=ff02::2 type=133 opt=1 ll=$mac_b
case_ router-advert drop icmp6 smac=$mac_a sip=$ll_a dip=ff02::1 type=134
case_ redirect6 drop icmp6 smac=$mac_a sip=$ll_a dip=ff02::1 type=137 target=$ip6_b
case_ dhcp6-server drop udp6 smac=$mac_a sip=$ll_a dip=ff02::1 sport=547 dport=546
case_ dhcp6-client pass udp6 smac=$mac_a sip=$ll_a dip=ff02::1:2 sport=546 dport=547
# other ether types, VLAN tags
case_ vlan-tag drop udp4 smac=$mac_a sip=$ip_a dip=10.88.0.255 vlan=42
case_ ethertype drop raw smac=$mac_a etype=0x88b5
case_ rarp pass raw smac=$mac_a etype=0x8035

# run_cases LISTEN_NS LISTEN_IF SEND_NS [batch-tap tap0]: sends every case from SEND_NS's eth0 (or as the guest
# behind its tap0); SEEN = the markers that arrived
run_cases() {
	local lns=$1 lif=$2 sns=$3 how=${4:-batch} sif=${5:-eth0} c name kind rest
	local out=$KV_TMP/seen.$RANDOM
	local names=()
	for c in "${CASES[@]}"; do names+=("${c%% *}"); done
	ip netns exec "$lns" $FRAMES listen "$lif" 60 "${names[@]}" >"$out" &
	local lp=$!
	for _ in $(seq 1 100); do grep -q ready "$out" 2>/dev/null && break; sleep 0.1; done
	for c in "${CASES[@]}"; do
		read -r name _ kind rest <<<"$c"
		echo "$name $kind $rest"
	done | ip netns exec "$sns" $FRAMES "$how" "$sif"
	sleep 1.5 # the listener prints each marker as it comes
	kill "$lp" 2>/dev/null || true
	wait "$lp" 2>/dev/null || true
	SEEN=$(grep -v '^ready$' "$out" | sort | tr '\n' ' ')
}

check_cases() {
	local label=$1 c name expect
	for c in "${CASES[@]}"; do
		read -r name expect _ <<<"$c"
		if [ "$expect" = pass ]; then
			assert_true "$label: '$name' reaches the neighbour" grep -qw -- "$name" <<<"$SEEN"
		else
			assert_false "$label: '$name' is dropped at the port" grep -qw -- "$name" <<<"$SEEN"
		fi
	done
}

run_cases "$SBX_B" eth0 "$SBX_A"
log "seen by B: $SEEN"
check_cases filtered

# the kernel counted drops
drops=$(ip netns exec "$NODE_NS" nft -j list table bridge kvnet-ports |
	jq '[.nftables[] | select(.rule) | .rule.expr[] | select(.counter) | .counter.packets] | add')
assert_true "the filter's counters saw the dropped frames ($drops)" test "$drops" -ge 20
# ... and counted them for the port that sent them (@portdrops, one counter per port)
portdrops() { # IFNAME: the frames @portdrops counted for the port ("" when it has no element)
	ip netns exec "$NODE_NS" nft -j list set bridge kvnet-ports portdrops |
		jq -r --arg p "$1" '[.nftables[] | select(.set) | .set.elem // [] | .[] | .elem? // empty |
			select(.val == $p) | .counter.packets][0] // empty'
}
n_drop=0
for c in "${CASES[@]}"; do [ "$(awk '{print $2}' <<<"$c")" = drop ] && n_drop=$((n_drop + 1)); done
assert_eq "$(portdrops "$host_a")" "$n_drop" "@portdrops counted A's $n_drop dropped frames for A's port $host_a"
assert_eq "$(portdrops "$host_b")" "" "... and nothing for B's port, which sent nothing spoofed"
ip netns exec "$NODE_NS" nft list table bridge kvnet-ports >"$KV_TMP/table.txt" 2>&1 || true
assert_true "A's port is in set ports ($(grep -A2 'set ports' "$KV_TMP/table.txt" | tr -s ' \n\t' ' '))" \
	set_has ports "\"$host_a\""

# CHECK: a missing element is reported; the next netd start puts it back
assert_true "CHECK A passes" cni check "$conf" cid-a "$SBX_A" eth0
ip netns exec "$NODE_NS" nft delete element bridge kvnet-ports macs "{ \"$host_a\" . $mac_a }"
rc=0
cni check "$conf" cid-a "$SBX_A" eth0 >/dev/null 2>"$KV_TMP/check.err" || rc=$?
assert_ne "$rc" 0 "CHECK A fails once A's MAC is gone from the filter"
assert_true "CHECK's error names the missing element ($(head -c 300 "$KV_TMP/check.err"))" \
	grep -q "anti-spoofing: $host_a MAC $mac_a is not in set macs" "$KV_TMP/check.err"
netd_term
start_netd "$NODE_NS"
assert_true "CHECK A passes after a netd restart (filter rebuilt)" cni check "$conf" cid-a "$SBX_A" eth0
CASES=("mac-own pass udp4 smac=$mac_a sip=$ip_a dip=10.88.0.255"
	"mac-foreign drop udp4 smac=$SPOOF_MAC sip=$ip_a dip=10.88.0.255"
	"ip4-neighbour drop udp4 smac=$mac_a sip=$ip_b dip=10.88.0.255")
run_cases "$SBX_B" eth0 "$SBX_A"
check_cases "after a netd restart"

# A VM's port: netd answers its guest's DHCP and DHCPv6 on the tap, so the guest's client messages stay off
# the bridge (a guest flooding DISCOVERs is not copied to every port; tests/bench/load.sh) while netd still
# sees them; its other traffic passes as a container's does.
mkns SBX_V sbxv
vm_args='IgnoreUnknown=1;K8S_POD_NAMESPACE=default;KVNET_VM_NAME=vm1;KVNET_VM_INTERFACE=default'
res_v=$(cni add "$conf" cid-v "$SBX_V" tap0 --args "$vm_args")
mac_v=$(jq -r '.interfaces[] | select(.name == "tap0" and .sandbox != null) | .mac' <<<"$res_v")
ip_v=$(echo "$res_v" | result_ip4)
host_v=$(kvctl -o json endpoints | jq -r '.[] | select(.containerID=="cid-v") | .hostIfname')
assert_true "the VM's port is in set dhcpports" set_has dhcpports "\"$host_v\""
assert_false "a container's port is not" set_has dhcpports "\"$host_a\""
ll_v=$(python3 -c 'import sys, ipaddress; m = bytes.fromhex(sys.argv[1].replace(":", "")); \
print(ipaddress.IPv6Address(b"\xfe\x80" + b"\0" * 6 + bytes([m[0] ^ 2]) + m[1:3] + b"\xff\xfe" + m[3:6]))' "$mac_v")
dhcp_seen() { kvctl -o json endpoints | jq '.[] | select(.containerID == "cid-v") | .dhcp | .discover + .malformed + .ignored + .limited + .solicit'; }
seen0=$(dhcp_seen)
CASES=("vm-own pass udp4 smac=$mac_v sip=$ip_v dip=10.88.0.255"
	"vm-dhcp-discover drop udp4 smac=$mac_v sip=0.0.0.0 dip=255.255.255.255 sport=68 dport=67"
	"vm-dhcp-request drop udp4 smac=$mac_v sip=$ip_v dip=255.255.255.255 sport=68 dport=67"
	"vm-dhcp6-solicit drop udp6 smac=$mac_v sip=$ll_v dip=ff02::1:2 sport=546 dport=547 dmac=33:33:00:01:00:02")
run_cases "$SBX_B" eth0 "$SBX_V" batch-tap tap0
log "seen by B from the VM: $SEEN"
check_cases "a VM's port"
assert_true "netd's responder still saw the guest's DHCP messages ($seen0 -> $(dhcp_seen))" \
	test "$(dhcp_seen)" -ge $((seen0 + 2))
cni del "$conf" cid-v "$SBX_V" tap0 --args "$vm_args"
assert_false "DEL takes the VM's port out of set dhcpports" set_has dhcpports "\"$host_v\""

# "antiSpoofing": false relaxes a network (its own bridge here) where the node policy allows it (not by default);
# the filtered one stays filtered
mkns SBX_C sbxc
mkns SBX_D sbxd
relaxed=$KV_TMP/relaxed.conflist
jq '.name = "kvrelax" | .plugins[0].bridge = "kvbr1" | .plugins[0].antiSpoofing = false |
	.plugins[0].ipam.ranges = [[{"subnet": "10.89.0.0/24", "gateway": "10.89.0.1"}]] |
	.plugins[0].ipam.routes = [{"dst": "0.0.0.0/0"}]' "$conf" >"$relaxed"
assert_eq "$(cni_fail_code add "$relaxed" cid-c "$SBX_C" eth0)" 7 \
	"antiSpoofing false is refused by the default node policy (code 7)"
assert_false "and nothing was made in its sandbox" link_exists "$SBX_C" eth0
# the policy: relaxing allowed, bridges kvbr*, subnets in 10.88.0.0/15, no adopting of foreign bridges
echo '{"policy": {"allowAntiSpoofingOff": true, "bridges": ["kvbr*"], "subnets": ["10.88.0.0/15", "fd88::/64"],
	"adoptBridges": false}}' >"$KV_TMP/netd.json"
netd_term
start_netd "$NODE_NS" --config "$KV_TMP/netd.json"
assert_true "CHECK A passes under the policy" cni check "$conf" cid-a "$SBX_A" eth0
mkns SBX_P sbxp
jq '.name = "kvother" | .plugins[0].bridge = "other0"' "$relaxed" >"$KV_TMP/other.conflist"
assert_eq "$(cni_fail_code add "$KV_TMP/other.conflist" cid-p "$SBX_P" eth0)" 7 \
	"a bridge outside policy.bridges is refused (code 7)"
assert_false "bridge other0 was not made" link_exists "$NODE_NS" other0
jq '.name = "kvfar" | .plugins[0].ipam.ranges = [[{"subnet": "10.99.0.0/24"}]]' "$relaxed" >"$KV_TMP/far.conflist"
assert_eq "$(cni_fail_code add "$KV_TMP/far.conflist" cid-p "$SBX_P" eth0)" 7 \
	"a subnet outside policy.subnets is refused (code 7)"
ip -n "$NODE_NS" link add kvbr9 type bridge
jq '.name = "kvforeign" | .plugins[0].bridge = "kvbr9"' "$relaxed" >"$KV_TMP/foreign.conflist"
assert_eq "$(cni_fail_code add "$KV_TMP/foreign.conflist" cid-p "$SBX_P" eth0)" 7 \
	"a bridge kvnet did not make is not adopted under adoptBridges false (code 7)"
assert_eq "$(ip -n "$NODE_NS" -j addr show dev kvbr9 | jq '[.[0].addr_info[] | select(.family=="inet")] | length')" 0 \
	"and no gateway address was put on it"
assert_false "and nothing was made in the sandbox" link_exists "$SBX_P" eth0
res_c=$(cni add "$relaxed" cid-c "$SBX_C" eth0)
cni add "$relaxed" cid-d "$SBX_D" eth0 >/dev/null
ip_c=$(echo "$res_c" | result_ip4)
mac_c=$(ip -n "$SBX_C" -j link show eth0 | jq -r '.[0].address')
host_c=$(kvctl -o json endpoints | jq -r '.[] | select(.containerID=="cid-c") | .hostIfname')
assert_eq "$(kvctl -o json endpoints | jq -r '.[] | select(.containerID=="cid-c") | .antiSpoofing')" false \
	"the relaxed attachment is recorded with antiSpoofing false"
assert_false "the relaxed port is not in set ports" set_has ports "\"$host_c\""
CASES=("relaxed-foreign-mac pass udp4 smac=$SPOOF_MAC sip=$ip_c dip=10.89.0.255"
	"relaxed-foreign-ip pass udp4 smac=$mac_c sip=10.89.0.1 dip=10.89.0.255")
run_cases "$SBX_D" eth0 "$SBX_C"
check_cases relaxed

# a wrong type is refused with the field named
bad=$KV_TMP/bad.conflist
jq '.plugins[0].antiSpoofing = "no"' "$conf" >"$bad"
mkns SBX_E sbxe
code=$(cni_fail_code add "$bad" cid-e "$SBX_E" eth0)
assert_eq "$code" 7 "antiSpoofing \"no\" is refused as invalid config (code 7)"

# a requested MAC is never the bridge's (the gateway's)
br_mac=$(ip -n "$NODE_NS" -j link show kvbr0 | jq -r '.[0].address')
code=$(cni_fail_code add "$conf" cid-e "$SBX_E" eth0 --cap mac="\"$br_mac\"")
assert_eq "$code" 101 "a pod asking for the bridge's MAC $br_mac is refused (code 101)"
assert_false "and nothing was made in its sandbox" link_exists "$SBX_E" eth0

# DEL takes A's elements away
cni del "$conf" cid-a "$SBX_A" eth0
assert_false "after DEL A's port is not in set ports" set_has ports "\"$host_a\""
assert_false "after DEL A's MAC is not in set macs" set_has macs "$mac_a"
assert_eq "$(portdrops "$host_a")" "" "after DEL A's drop counter is gone from @portdrops"
assert_true "B's MAC is still in set macs" set_has macs "$mac_b"
cni del "$conf" cid-b "$SBX_B" eth0
cni del "$relaxed" cid-c "$SBX_C" eth0
cni del "$relaxed" cid-d "$SBX_D" eth0
stop_netd
finish
