#!/usr/bin/env bash
# libcni's own runtime drives kvnet: cnitool (libcni v1.3.1, peer "cnitool" built by make test-deps)
# runs ADD / CHECK / STATUS / DEL of a kvnet conflist on two sandboxes, then of a chain kvnet -> the
# reference portmap -> tuning (peer "cni-plugins"), and the test checks what the kernel sees: the
# address and default route in the sandbox, pings to the gateway and the other sandbox, the port
# mapping from ext, and that DEL removes links, nft elements, claims and libcni's cache entries.
# cnitool runs inside the node namespace with its own mount of libcni's cache dir (/var/lib/cni), so
# nothing is written on the host.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
require_peer CNITOOL cnitool
require_peer REF_PLUGINS cni-plugins
require_cmd iptables

setup_node
setup_ext
mkns SBX_A sbxa
mkns SBX_B sbxb
start_netd "$NODE_NS"
log "cnitool $CNITOOL, reference plugins $REF_PLUGINS"

NETDIR=$KV_TMP/net.d
LIBCNI_CACHE=$KV_TMP/libcni-cache
mkdir -p "$NETDIR" "$LIBCNI_CACHE"
cp "$(render_conf kvnet-basic.conflist 1.1.0)" "$NETDIR/10-kvtest.conflist"
# kvnet, then the reference portmap (the port mapping moves from kvnet to it) and tuning.
jq '.name = "kvchain" | del(.plugins[0].capabilities.portMappings)
	| .plugins += [{"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
		{"type": "tuning", "sysctl": {"net.ipv4.conf.eth0.arp_notify": "1"}}]' \
	"$NETDIR/10-kvtest.conflist" >"$NETDIR/20-kvchain.conflist"

# cnitool CMD NET SANDBOX [VAR=VALUE...]: libcni's runtime, in the node namespace, CNI_PATH = kvnet's
# build + the pinned reference plugins.
cnitool() {
	local cmd=$1 net=$2 sbx=$3
	shift 3
	ip netns exec "$NODE_NS" env NETCONFPATH="$NETDIR" CNI_PATH="$KV_BIN:$REF_PLUGINS" "$@" \
		sh -c 'mkdir -p /var/lib/cni && mount --bind "$0" /var/lib/cni && exec "$@"' \
		"$LIBCNI_CACHE" "$CNITOOL" "$cmd" "$net" ${sbx:+"$(nspath "$sbx")"}
}
addr4() { ip -n "$1" -j addr show dev eth0 | jq -r '[.[0].addr_info[] | select(.family=="inet") | .local][0]'; }
cache_entries() { find "$LIBCNI_CACHE" -type f -name "$1-*" | wc -l; }

# add_pair NET: cnitool ADD of A (with the port mapping $pm) and B on NET; sets res_a, ip_a, ip_b and
# checks what every kvnet network gives A: a 10.88.0.x address the kernel has, different from B's, and
# a reachable B.
add_pair() {
	res_a=$(cnitool add "$1" "$SBX_A" CAP_ARGS="$pm")
	ip_a=$(echo "$res_a" | result_ip4)
	ip_b=$(cnitool add "$1" "$SBX_B" | result_ip4)
	log "$1: A=$ip_a B=$ip_b"
	assert_true "$1: A's address (the final result) is in 10.88.0.0/24" grep -Eq '^10\.88\.0\.[0-9]+$' <<<"$ip_a"
	assert_ne "$ip_a" "$ip_b" "$1: A and B got different addresses"
	assert_eq "$(addr4 "$SBX_A")" "$ip_a" "$1: the kernel has A's address on eth0"
	assert_ping "$SBX_A" "$ip_b" "$1: ping A -> B"
}

pm='{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}'

# ---------------------------------------------------------------- kvnet alone
add_pair kvtest
assert_eq "$(echo "$res_a" | jq -r .cniVersion)" 1.1.0 "cnitool prints a 1.1.0 result"
assert_eq "$(ip -n "$SBX_A" -j route show default | jq -r '.[0].gateway')" 10.88.0.1 "A's default route via 10.88.0.1"
assert_ping "$SBX_A" 10.88.0.1 "ping A -> gateway"
assert_nft_has "$ip_a"
tcp_serve_text "$SBX_A" 80 hello-from-a
assert_eq "$(tcp_get "$EXT_NS" "$EXT_NODE_ADDR" 8080)" hello-from-a "kvnet's port mapping (CAP_ARGS) ext -> node:8080 -> A:80"
assert_eq "$(cache_entries kvtest)" 2 "libcni cached both results"
assert_true "cnitool CHECK A passes" cnitool check kvtest "$SBX_A" CAP_ARGS="$pm"
assert_true "cnitool CHECK B passes" cnitool check kvtest "$SBX_B"
assert_true "cnitool STATUS passes (netd up)" cnitool status kvtest "$SBX_A"
host_a=$(kvctl -o json endpoints | jq -r '[.[] | .hostIfname][0]')

assert_true "cnitool DEL A" cnitool del kvtest "$SBX_A" CAP_ARGS="$pm"
assert_true "cnitool DEL B" cnitool del kvtest "$SBX_B"
assert_no_link "$SBX_A" eth0
assert_no_link "$SBX_B" eth0
[ -z "$host_a" ] || [ "$host_a" = null ] || assert_no_link "$NODE_NS" "$host_a"
assert_nft_lacks "$ip_a"
assert_nft_lacks "$ip_b"
assert_eq "$(kvctl -o json ipam | jq '.claims | length')" 0 "no IPAM claims after DEL"
assert_eq "$(kvctl -o json endpoints | jq length)" 0 "no endpoints after DEL"
assert_eq "$(cache_entries kvtest)" 0 "libcni's cache entries removed by DEL"
assert_eq "$(tcp_get "$EXT_NS" "$EXT_NODE_ADDR" 8080)" "" "port mapping gone after DEL"
assert_true "cnitool DEL again succeeds" cnitool del kvtest "$SBX_A"

# ---------------------------------------------------------------- kvnet -> portmap -> tuning
# (A's port 80 server of the first part still runs: the chain maps 8080 to 81.)
pm='{"portMappings":[{"hostPort":8080,"containerPort":81,"protocol":"tcp"}]}'
add_pair kvchain
assert_eq "$(ip netns exec "$SBX_A" sysctl -n net.ipv4.conf.eth0.arp_notify)" 1 "chain: tuning ran after kvnet"
tcp_serve_text "$SBX_A" 81 hello-from-chain
assert_eq "$(tcp_get "$EXT_NS" "$EXT_NODE_ADDR" 8080)" hello-from-chain "chain: reference portmap ext -> node:8080 -> A:81"
assert_true "chain: portmap's rules are in the node" sh -c "ip netns exec $NODE_NS iptables-save | grep -q 8080"
assert_true "chain: cnitool CHECK A passes" cnitool check kvchain "$SBX_A" CAP_ARGS="$pm"
assert_true "chain: cnitool CHECK B passes" cnitool check kvchain "$SBX_B"
assert_true "chain: cnitool DEL A" cnitool del kvchain "$SBX_A" CAP_ARGS="$pm"
assert_true "chain: cnitool DEL B" cnitool del kvchain "$SBX_B"
assert_no_link "$SBX_A" eth0
assert_no_link "$SBX_B" eth0
assert_eq "$(kvctl -o json ipam | jq '.claims | length')" 0 "chain: no IPAM claims after DEL"
assert_false "chain: portmap's rules removed by DEL" sh -c "ip netns exec $NODE_NS iptables-save | grep -q 8080"
assert_eq "$(cache_entries kvchain)" 0 "chain: libcni's cache entries removed by DEL"

finish
