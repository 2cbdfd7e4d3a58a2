#!/usr/bin/env bash
# Networks come and go with their NetworkAttachmentDefinitions over a node's life: netd keeps a slot per network it
# has seen (what it knows of the network's bridge), 256 of them. Once they are all used, a network that no
# attachment uses any more gives its slot up. 300 networks, one after the other, each gets a pod attached and
# detached; then two networks still attached keep working.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
setup_node
mkns SBX_A sbxa
mkns SBX_B sbxb
start_netd "$NODE_NS" --no-fsync
base=$(render_conf kvnet-basic.conflist 1.1.0)
jq '.plugins[0].ipMasq = false' "$base" >"$KV_TMP/base.conflist"

# two networks that stay attached throughout, on their own bridge
jq '.name = "keep1" | .plugins[0].bridge = "kvkeep"' "$KV_TMP/base.conflist" >"$KV_TMP/keep1.conflist"
jq '.name = "keep2" | .plugins[0].bridge = "kvkeep"' "$KV_TMP/base.conflist" >"$KV_TMP/keep2.conflist"
ip_b=$(cni add "$KV_TMP/keep1.conflist" cid-b "$SBX_B" eth0 | result_ip4)
ip_b2=$(cni add "$KV_TMP/keep2.conflist" cid-b2 "$SBX_B" eth1 | result_ip4)

failed=0
for i in $(seq 1 300); do
	jq --arg n "net$i" '.name = $n' "$KV_TMP/base.conflist" >"$KV_TMP/n.conflist"
	if ! cni add "$KV_TMP/n.conflist" "cid-$i" "$SBX_A" eth0 >/dev/null 2>"$KV_TMP/err"; then
		failed=$i
		break
	fi
	cni del "$KV_TMP/n.conflist" "cid-$i" "$SBX_A" eth0
done
why=""
[ "$failed" = 0 ] || why=" (network $failed: $(head -c 200 "$KV_TMP/err"))"
assert_eq "$failed" 0 "300 networks one after the other: every ADD succeeded$why"
assert_true "the networks still attached work: keep1" ip netns exec "$SBX_B" ping -c 1 -W 2 -I eth0 10.88.0.1
assert_true "CHECK keep1 passes" cni check "$KV_TMP/keep1.conflist" cid-b "$SBX_B" eth0
assert_true "CHECK keep2 passes" cni check "$KV_TMP/keep2.conflist" cid-b2 "$SBX_B" eth1
log "keep1 $ip_b, keep2 $ip_b2"
cni del "$KV_TMP/keep1.conflist" cid-b "$SBX_B" eth0
cni del "$KV_TMP/keep2.conflist" cid-b2 "$SBX_B" eth1
stop_netd
finish
