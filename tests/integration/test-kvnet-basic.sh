#!/usr/bin/env bash
# kvnet as the main plugin (cniVersion 1.1.0, binding bridge, ipMasq, netd IPAM 10.88.0.0/24):
# two containers ping each other, egress is masqueraded to 192.0.2.1, a port mapping
# (node 8080 -> container 80) is reachable from ext, CHECK passes, DEL removes links, nft
# elements and the claim, and a second ADD of the same attachment fails without changing anything.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
setup_node
setup_ext
mkns SBX_A sbxa
mkns SBX_B sbxb
start_netd "$NODE_NS"
conf=$(render_conf kvnet-basic.conflist 1.1.0)
pm='[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]'

res_a=$(cni add "$conf" cid-a "$SBX_A" eth0 --cap portMappings="$pm")
res_b=$(cni add "$conf" cid-b "$SBX_B" eth0)
ip_a=$(echo "$res_a" | result_ip4)
ip_b=$(echo "$res_b" | result_ip4)
log "A=$ip_a B=$ip_b"
assert_true "A's address is in 10.88.0.0/24" grep -Eq '^10\.88\.0\.[0-9]+$' <<<"$ip_a"
assert_ne "$ip_a" "$ip_b" "A and B got different addresses"
assert_eq "$(echo "$res_a" | jq -r .cniVersion)" 1.1.0 "result cniVersion 1.1.0"
assert_true "result lists eth0 with the sandbox path" \
	jq -e --arg p "$(nspath "$SBX_A")" '.interfaces[] | select(.name=="eth0") | .sandbox == $p' <<<"$res_a"
assert_eq "$(ip -n "$SBX_A" -j addr show dev eth0 | jq -r '.[0].addr_info[] | select(.family=="inet") | .local')" \
	"$ip_a" "address configured on A's eth0"
assert_eq "$(ip -n "$SBX_A" -j route show default | jq -r '.[0].gateway')" 10.88.0.1 "A's default route via 10.88.0.1"

assert_ping "$SBX_A" "$ip_b" "ping A -> B"
assert_ping "$SBX_B" "$ip_a" "ping B -> A"
assert_ping "$SBX_A" 10.88.0.1 "ping A -> gateway"

# netd's view
eps=$(kvctl -o json endpoints)
assert_eq "$(echo "$eps" | jq length)" 2 "kvnetctl endpoints lists 2"
host_a=$(echo "$eps" | jq -r '.[] | select(.containerID=="cid-a") | .hostIfname')
host_b=$(echo "$eps" | jq -r '.[] | select(.containerID=="cid-b") | .hostIfname')
assert_eq "$(echo "$eps" | jq -r '.[] | select(.containerID=="cid-a") | .kind')" container "endpoint kind container"
assert_true "host side of A ($host_a) exists in node" link_exists "$NODE_NS" "$host_a"
assert_eq "$(kvctl -o json ipam | jq '.claims | length')" 2 "two IPAM claims"
assert_nft_has "$ip_a"
assert_nft_has "$ip_b"
assert_true "nat lists A as masqueraded" jq -e --arg a "$ip_a" '.masquerade | index($a) != null' \
	<<<"$(kvctl -o json nat)"

# masquerade: ext has no route to 10.88.0.0/24, it must see the node address
tcp_serve_peer "$EXT_NS" 9000
assert_eq "$(tcp_get "$SBX_A" "$EXT_ADDR" 9000)" "$EXT_NODE_ADDR" "egress A -> ext is masqueraded to $EXT_NODE_ADDR"

# port mapping via kvnet's own portMappings capability
tcp_serve_text "$SBX_A" 80 hello-from-a
assert_eq "$(tcp_get "$EXT_NS" "$EXT_NODE_ADDR" 8080)" hello-from-a "ext -> $EXT_NODE_ADDR:8080 reaches A:80"

assert_true "CHECK A passes" cni check "$conf" cid-a "$SBX_A" eth0
assert_true "CHECK B passes" cni check "$conf" cid-b "$SBX_B" eth0

# second ADD of the same attachment: error, nothing changes
ipam_before=$(kvctl -o json ipam | jq -S .)
eps_before=$(kvctl -o json endpoints | jq -S .)
cp "$KV_CACHE/results/kvtest-cid-b-eth0" "$KV_TMP/cache-b"
code=$(cni_fail_code add "$conf" cid-b "$SBX_B" eth0)
cp "$KV_TMP/cache-b" "$KV_CACHE/results/kvtest-cid-b-eth0"
assert_ne "$code" none "second ADD of the same attachment fails"
assert_true "second ADD fails with a CNI code (got $code)" test "$code" -gt 0
assert_eq "$(kvctl -o json ipam | jq -S .)" "$ipam_before" "second ADD left IPAM unchanged"
assert_eq "$(kvctl -o json endpoints | jq -S .)" "$eps_before" "second ADD left endpoints unchanged"
assert_ping "$SBX_A" "$ip_b" "B still reachable after the rejected ADD"

# DEL
cni del "$conf" cid-a "$SBX_A" eth0
cni del "$conf" cid-b "$SBX_B" eth0
assert_no_link "$SBX_A" eth0
assert_no_link "$SBX_B" eth0
[ -n "$host_a" ] && assert_no_link "$NODE_NS" "$host_a"
[ -n "$host_b" ] && assert_no_link "$NODE_NS" "$host_b"
assert_nft_lacks "$ip_a"
assert_nft_lacks "$ip_b"
assert_eq "$(kvctl -o json ipam | jq '.claims | length')" 0 "no IPAM claims after DEL"
assert_eq "$(kvctl -o json endpoints | jq length)" 0 "no endpoints after DEL"
assert_eq "$(tcp_get "$EXT_NS" "$EXT_NODE_ADDR" 8080)" "" "port mapping gone after DEL"
assert_true "DEL again succeeds" cni del "$conf" cid-a "$SBX_A" eth0

finish
