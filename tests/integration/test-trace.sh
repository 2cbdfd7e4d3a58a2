#!/usr/bin/env bash
# kvnetctl trace (docs/kvnetctl.md): what the node does with a packet, hop by hop, checked against what the
# kernel then really does with such packets.
# A reachable path (container A -> container B: A's port passes the filter, the bridge's forwarding
# database sends B's MAC to B's port, delivered; a ping really gets through); a path blocked by
# anti-spoofing (A sending with B's address: dropped at A's port by @ipports, naming the set); NATed paths
# (A to an outside address: leaves over the uplink, masqueraded to the node's address, which the outside
# peer sees as the source; the outside to the node's host port 8080: DNAT to A:80, which a real connection
# reaches); VMs (a bridge-bound VM by name, a masquerade VM: the sandbox NAT in both directions, a port the
# VM does not forward); a port whose filter lost an element is reported broken; bad requests get clear
# errors. A VM mid-migration: test-cluster-claims.sh (redirected on the source node, held on the target).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
require_cmd jq socat tcpdump
setup_node
setup_ext
start_netd "$NODE_NS"
conf=$(render_conf kvnet-dual.conflist 1.1.0)
mkns SBX_A sbxa
mkns SBX_B sbxb
mkns SBX_V sbxv
mkns SBX_M sbxm
res_a=$(cni add "$conf" cid-a "$SBX_A" eth0 --cap portMappings='[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]')
res_b=$(cni add "$conf" cid-b "$SBX_B" eth0)
ip_a=$(result_ip4 <<<"$res_a")
ip_b=$(result_ip4 <<<"$res_b")
host_a=$(kvctl -o json endpoints | jq -r '.[] | select(.containerID=="cid-a") | .hostIfname')
host_b=$(kvctl -o json endpoints | jq -r '.[] | select(.containerID=="cid-b") | .hostIfname')
vmargs() { echo "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;KVNET_VM_NAME=$1;KVNET_VM_INTERFACE=default;KVNET_VM_BINDING=$2"; }
res_v=$(cni add "$conf" cid-v "$SBX_V" tap0 --args "$(vmargs vm1 bridge)")
res_m=$(cni add "$conf" cid-m "$SBX_M" tap0 --args "$(vmargs vm2 masquerade)")
ip_v=$(result_ip4 <<<"$res_v")
ip_m=$(result_ip4 <<<"$res_m")
log "A $ip_a ($host_a), B $ip_b ($host_b), vm1 $ip_v (bridge), vm2 $ip_m (masquerade)"

# hopv JSON HOP FIELD: FIELD of the first hop called HOP
hopv() { jq -r --arg h "$2" "[.hops[] | select(.hop == \$h)][0].$3 // empty" <<<"$1"; }

# ---------------------------------------------------------------- reachable
assert_ping "$SBX_A" "$ip_b" "A reaches B (and the bridge learns both MACs)"
t=$(kvctl -o json trace cid-a cid-b)
log "trace A -> B: $(jq -c '[.hops[] | .hop + ":" + .verdict]' <<<"$t")"
assert_eq "$(jq -r .verdict <<<"$t")" delivered "trace A -> B: delivered"
assert_eq "$(jq -r '.packet.src + " " + .packet.dst + " " + .packet.protocol' <<<"$t")" "$ip_a $ip_b icmp" \
	"the packet: A's address to B's, ICMP"
assert_eq "$(hopv "$t" anti-spoofing verdict)" accept "A's port accepts A's own address"
assert_eq "$(hopv "$t" bridge where)" "$host_b" "the bridge's forwarding database sends B's MAC to B's port $host_b"
assert_true "the bridge hop names the fdb entry ($(hopv "$t" bridge by))" grep -q "bridge kvbr0 fdb: .* dev $host_b (learnt)" \
	<<<"$(hopv "$t" bridge by)"
assert_eq "$(jq -r '[.hops[].hop] | join(",")' <<<"$t")" "source,anti-spoofing,bridge,destination,deliver" \
	"the hops: source, anti-spoofing, bridge, destination, deliver"
t=$(kvctl -o json trace "$ip_a" "$ip_b" tcp/80)
assert_true "tcp by address: the filter's fast path (@src4) decides ($(hopv "$t" anti-spoofing by))" \
	grep -q "fast path, $host_a . .* . $ip_a is in @src4" <<<"$(hopv "$t" anti-spoofing by)"
assert_eq "$(jq -r '.verdict + " " + (.packet.port|tostring)' <<<"$t")" "delivered 80" "tcp/80 by address: delivered"
out=$(kvctl trace cid-a cid-b udp/53)
log "kvnetctl trace cid-a cid-b udp/53:"$'\n'"$out"
assert_true "the table output lists the hops and the verdict" \
	bash -c 'grep -q "^verdict: delivered" <<<"$1" && grep -q "by: bridge kvbr0 fdb" <<<"$1"' _ "$out"
t=$(kvctl -o json trace default/vm1 cid-b)
assert_eq "$(jq -r '.from + " / " + .verdict' <<<"$t")" "VM default/vm1:default / delivered" \
	"a VM by NAMESPACE/NAME: its attachment, delivered"
assert_eq "$(jq -r '.hops[0].where' <<<"$t" | grep -o 'tap tap0')" "tap tap0" "the source hop names the VM's tap"

# ---------------------------------------------------------------- anti-spoofing
t=$(kvctl -o json trace cid-a cid-b --src "$ip_b")
log "kvnetctl trace cid-a cid-b --src $ip_b:"$'\n'"$(kvctl trace cid-a cid-b --src "$ip_b")"
assert_eq "$(jq -r .verdict <<<"$t")" dropped "A sending with B's address: dropped"
assert_eq "$(hopv "$t" anti-spoofing verdict)/$(hopv "$t" anti-spoofing where)" "drop/$host_a" "dropped at A's port"
assert_true "the drop names the filter and its set ($(hopv "$t" anti-spoofing by))" \
	grep -q "bridge kvnet-ports prerouting: port $host_a is in @ipports, source $ip_b is not in @ip4" \
	<<<"$(hopv "$t" anti-spoofing by)"
assert_eq "$(jq '.hops | length' <<<"$t")" 2 "the walk ends at the drop"
# what the kernel does with such a packet: A spoofing B's address cannot reach the outside peer
ip netns exec "$EXT_NS" timeout 6 tcpdump -l -n -i kvx1 -c 1 "icmp and src host $ip_b" >"$KV_TMP/spoof.txt" 2>/dev/null &
dpid=$!
sleep 0.5
ip -n "$SBX_A" addr add "$ip_b/32" dev eth0 noprefixroute
ip netns exec "$SBX_A" ping -c 2 -W 1 -I "$ip_b" "$EXT_ADDR" >/dev/null 2>&1 || true
ip -n "$SBX_A" addr del "$ip_b/32" dev eth0
wait "$dpid" 2>/dev/null || true
drops=$(ip netns exec "$NODE_NS" nft -j list table bridge kvnet-ports |
	jq '[.nftables[] | select(.rule) | .rule.expr[] | select(.counter) | .counter.packets] | add')
assert_true "the kernel dropped them as traced ($drops drops counted)" test "$drops" -ge 2
t=$(kvctl -o json trace cid-a cid-b --src "$ip_b")
n=$(hopv "$t" anti-spoofing detail | grep -o 'it has dropped [0-9]*' | grep -o '[0-9]*$' || true)
assert_true "trace now tells that A's port dropped them ($(hopv "$t" anti-spoofing detail))" test "${n:-0}" -ge 2

# ---------------------------------------------------------------- NAT
t=$(kvctl -o json trace cid-a "$EXT_ADDR" tcp/443)
log "kvnetctl trace cid-a $EXT_ADDR tcp/443:"$'\n'"$(kvctl trace cid-a "$EXT_ADDR" tcp/443)"
assert_eq "$(jq -r .verdict <<<"$t")" leaves-node "A to the outside: leaves the node"
assert_eq "$(hopv "$t" route where)" kvx0 "the route lookup sends it out of the uplink kvx0"
assert_eq "$(hopv "$t" nat verdict)" masquerade "masqueraded"
assert_true "by the node NAT's masquerade rule ($(hopv "$t" nat by))" \
	grep -q "table inet kvnet postrouting: saddr in @masq4, daddr not in @nomasq4: masquerade" <<<"$(hopv "$t" nat by)"
assert_true "to the uplink's address $EXT_NODE_ADDR ($(hopv "$t" nat detail))" grep -q "$EXT_NODE_ADDR" \
	<<<"$(hopv "$t" nat detail)"
tcp_serve_peer "$EXT_NS" 443
seen=$(tcp_get "$SBX_A" "$EXT_ADDR" 443)
assert_eq "$seen" "$EXT_NODE_ADDR" "the outside peer sees A's connection come from $EXT_NODE_ADDR, as traced"
t=$(kvctl -o json trace cid-a cid-b tcp/80)
assert_eq "$(hopv "$t" nat verdict)" "" "A to B: no NAT hop (the bridge alone)"

t=$(kvctl -o json trace "$EXT_ADDR" "$EXT_NODE_ADDR" tcp/8080)
log "trace outside -> node:8080: $(jq -c '[.hops[] | .hop + ":" + .verdict]' <<<"$t")"
assert_eq "$(hopv "$t" port-forward verdict)" dnat "the outside to the node's port 8080: DNAT"
assert_true "to A's port 80 ($(hopv "$t" port-forward detail))" grep -q "goes to $ip_a port 80" \
	<<<"$(hopv "$t" port-forward detail)"
assert_eq "$(jq -r '.verdict + " " + .hops[-1].where' <<<"$t")" "delivered eth0" "delivered to A's eth0"
tcp_serve_text "$SBX_A" 80 served-by-a
assert_eq "$(tcp_get "$EXT_NS" "$EXT_NODE_ADDR" 8080)" served-by-a \
	"a real connection to the node's port 8080 reaches A, as traced"

# ---------------------------------------------------------------- masquerade VM
t=$(kvctl -o json trace vm2 "$ip_b")
assert_eq "$(jq -r '[.hops[].hop] | join(",")' <<<"$t")" "source,sandbox-nat,anti-spoofing,bridge,destination,deliver" \
	"a masquerade VM (bare NAME: namespace default): the sandbox NAT, then the bridge"
assert_eq "$(hopv "$t" sandbox-nat verdict)" snat "the guest's address becomes the VM's"
t=$(kvctl -o json trace cid-b default/vm2 tcp/22)
assert_eq "$(hopv "$t" sandbox-nat verdict)/$(jq -r .verdict <<<"$t")" "dnat/delivered" "B to the VM: DNAT to the guest"

# ---------------------------------------------------------------- broken datapath, bad requests
mac_a=$(ip -n "$SBX_A" -j link show eth0 | jq -r '.[0].address')
ip netns exec "$NODE_NS" nft delete element bridge kvnet-ports macs "{ \"$host_a\" . $mac_a }"
t=$(kvctl -o json trace cid-a cid-b)
assert_eq "$(jq -r .verdict <<<"$t")" broken "a port whose filter lost A's MAC: broken"
assert_true "naming what is missing ($(jq -r '.hops[0].detail' <<<"$t"))" \
	grep -q "MAC $mac_a is not in set macs" <<<"$(jq -r '.hops[0].detail' <<<"$t")"

bad() { # EXPECTED-TEXT ARGS...: kvnetctl fails, saying EXPECTED-TEXT
	local want=$1 rc=0 out
	shift
	out=$(kvctl "$@" 2>&1) || rc=$?
	assert_ne "$rc" 0 "kvnetctl $* fails"
	assert_true "... saying '$want' ($out)" grep -qF -- "$want" <<<"$out"
}
bad "'to' 'default/nosuchvm' is neither an address nor a VM" trace cid-a default/nosuchvm
bad "neither 'from' '192.0.2.77' nor 'to' '192.0.2.78' is an attachment" trace 192.0.2.77 192.0.2.78
bad "'protocol' must be tcp, udp or icmp, got 'sctp'" trace cid-a cid-b sctp
bad "port '0' must be 1..65535" trace cid-a cid-b tcp/0
bad "'port' 80 needs protocol tcp or udp" trace cid-a cid-b icmp/80
bad "'src' must be an IP address, got 'nope'" trace cid-a cid-b --src nope
bad "--src is an option of trace only" endpoints --src 10.0.0.1
bad "different families" trace cid-a fd88::77 --src 10.88.0.9
bad "usage: trace FROM TO" trace cid-a
finish
