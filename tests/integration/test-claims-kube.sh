#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The claim store's kube backend (netd/state/claimstore-kube.c) against the real kube-apiserver + etcd
# (test peers, lib-kapi.sh), driven by tests/tools/claimtool with one node name per call, no netd.
# Asserts: the NetworkClaim CRD (deploy/crds/kvnet.io_networkclaims.yaml) is established; a take
# makes one claim object and one confirmed address object, with DNS-1123 names; another node cannot take
# the claim (EBUSY naming the holder) nor its address for another key (EADDRINUSE naming key and node);
# the address filter says taken/free; migration: begin (a second target refused), targetReady, finish
# (the target holds it), abort; take-over of a detached claim; a take with fewer addresses deletes the
# address objects it no longer lists; an unconfirmed address object of a claim that does not exist is
# respected while young, a confirmed one is reclaimed; release deletes the claim and its address objects;
# the node registry; the dump; a request to a server that never answers fails within the bounded
# timeout; netd rejects a bad clusterClaims naming key and value; and two processes (two node names)
# racing for one claim, ROUNDS times (default 300; even rounds one key, odd rounds two keys and one
# address): exactly one wins every round, the store agrees, and the release leaves nothing behind.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-kapi.sh"

kv_init
CT=$KV_BUILD_DIR/tests/claimtool
require_file "$CT"
require_cmd jq socat
ROUNDS=${KVNET_CLAIM_RACE_ROUNDS:-300}
require_cmd openssl kubectl
require_peer ETCD etcd
require_peer APISERVER kube-apiserver
claims_apiserver_up

# ct NODE VERB ARGS: claimtool as node NODE
ct() {
	local node=$1
	shift
	ip netns exec "$NS" "$CT" --kubeconfig "$KCFG" --node "$node" "$@"
}
# objs ROLE: the names of the NetworkClaim objects with that role, sorted, on one line
objs() { k get networkclaims -l "kvnet.io/role=$1" -o json | jq -r '[.items[].metadata.name] | sort | join(" ")'; }
spec() { k get networkclaims -l "kvnet.io/role=$1" -o json | jq -r ".items[] | $2"; }
N=vmnet
VM=vm/default/web/default
MAC=02:6b:76:aa:00:01

# ---------------------------------------------------------------- take
assert_true "node1 takes $VM with 10.88.0.10/24" ct node1 take $N $VM 10.88.0.10/24 $MAC
assert_eq "$(ct node2 get $N $VM | jq -r '[.holder, .attached, (.ips | join(",")), .mac] | join(" ")')" \
	"node1 true 10.88.0.10/24 $MAC" "node2 reads the claim: holder node1, attached, its address and MAC"
assert_eq "$(spec claim '[.spec.network, .spec.key, .spec.holder] | join(" ")')" "$N $VM node1" \
	"one claim object: spec network, key, holder"
assert_eq "$(spec address '[.spec.key, .spec.attached, .spec.ips[0]] | join(" ")')" "$VM true 10.88.0.10/24" \
	"one address object, confirmed, naming the claim's key"
bad=$(k get networkclaims -o json | jq -r '.items[].metadata.name' |
	grep -Evx '[a-z0-9]([-a-z0-9]*[a-z0-9])?' || true)
assert_eq "$bad" "" "every object name is a DNS-1123 label ($(objs claim) $(objs address))"
out=$(ct node2 take $N $VM 10.88.0.10/24 $MAC 2>&1 || true)
assert_true "node2 cannot take the attached claim: EBUSY held by node 'node1' ($out)" grep -q "EBUSY.*held by node 'node1'" <<<"$out"
out=$(ct node2 take $N vm/default/other/default 10.88.0.10/24 2>&1 || true)
assert_true "nor its address for another key: EADDRINUSE naming key and node ($out)" \
	grep -q "EADDRINUSE.*10.88.0.10.*held by '$VM' on node 'node1'" <<<"$out"
assert_eq "$(ct node2 taken $N 10.88.0.10 vm/x) $(ct node2 taken $N 10.88.0.10 $VM) $(ct node2 taken $N 10.88.0.11 vm/x)" \
	"taken free free" "address filter: taken for another key, free for its own, another address free"
assert_true "node1 takes it again (refresh)" ct node1 take $N $VM 10.88.0.10/24 $MAC
# the MAC: one mac object, and no other key may have it, on any node
assert_eq "$(spec mac '[.spec.key, .spec.attached, .spec.mac] | join(" ")')" "$VM true $MAC" \
	"one mac object, confirmed, naming the claim's key and its MAC"
out=$(ct node2 take $N vm/default/twin/default 10.88.0.40/24 $MAC 2>&1 || true)
assert_true "another key cannot take the MAC on another node: EADDRINUSE naming key and node ($out)" \
	grep -q "EADDRINUSE.*MAC $MAC in network '$N' is held by '$VM' on node 'node1'" <<<"$out"
assert_eq "$(ct node2 get $N vm/default/twin/default 2>&1 || true)|$(ct node1 taken $N 10.88.0.40 vm/x)" "ABSENT|free" \
	"... nothing of it is left: no claim, its address free"
assert_true "the same MAC on another network is another MAC" ct node2 take othernet vm/default/twin/default 10.88.0.40/24 $MAC
assert_true "... released" ct node2 release othernet vm/default/twin/default

# ---------------------------------------------------------------- migration
assert_true "node2 begins a migration" ct node2 begin $N $VM
assert_eq "$(ct node1 get $N $VM | jq -r '.holder + " " + .target')" "node1 node2" "holder node1, target node2"
out=$(ct node3 begin $N $VM 2>&1 || true)
assert_true "a second target is refused: EBUSY ($out)" grep -q "EBUSY.*already being migrated" <<<"$out"
out=$(ct node1 begin $N $VM 2>&1 || true)
assert_true "the holder cannot be its own target: EALREADY ($out)" grep -q EALREADY <<<"$out"
assert_true "node2 sets targetReady" ct node2 ready $N $VM
assert_eq "$(spec claim .spec.targetReady)" true "targetReady in the object"
out=$(ct node3 ready $N $VM 2>&1 || true)
assert_true "only the target sets targetReady: EPERM ($out)" grep -q EPERM <<<"$out"
assert_true "node2 finishes the migration" ct node2 finish $N $VM
assert_eq "$(ct node1 get $N $VM | jq -r '[.holder, .target, .targetReady, .attached] | join(" ")')" "node2  false true" \
	"node2 holds it, no target"
out=$(ct node1 take $N $VM 10.88.0.10/24 $MAC 2>&1 || true)
assert_true "the old holder cannot take it back ($out)" grep -q "EBUSY.*held by node 'node2'" <<<"$out"
assert_true "node1 begins a migration back" ct node1 begin $N $VM
assert_true "and aborts it" ct node1 abort $N $VM
assert_eq "$(ct node2 get $N $VM | jq -r '.holder + "/" + .target')" "node2/" "after the abort: holder node2, no target"

# ---------------------------------------------------------------- take-over, fewer addresses
assert_true "node2 detaches" ct node2 detach $N $VM
assert_eq "$(ct node2 get $N $VM | jq -r .attached)" false "attached false"
assert_true "node3 takes the detached claim over, with a second address" ct node3 take $N $VM 10.88.0.10/24,10.88.0.12/24 $MAC
assert_eq "$(ct node3 get $N $VM | jq -r '.holder + " " + (.ips | join(","))')" "node3 10.88.0.10/24,10.88.0.12/24" \
	"node3 holds it with both addresses"
assert_eq "$(spec address .spec.ips[0] | sort | tr '\n' ' ')" "10.88.0.10/24 10.88.0.12/24 " "two address objects"
assert_true "node3 takes it with 10.88.0.12 only" ct node3 take $N $VM 10.88.0.12/24 $MAC
assert_eq "$(spec address .spec.ips[0] | tr '\n' ' ')" "10.88.0.12/24 " "the address object of 10.88.0.10 is gone"
assert_eq "$(ct node1 taken $N 10.88.0.10 vm/x)" free "10.88.0.10 is free again"

# ---------------------------------------------------------------- leftovers of a crashed take
assert_true "node1 takes vm/tmp with 10.88.0.21" ct node1 take $N vm/tmp 10.88.0.21/24
aname=$(k get networkclaims -l kvnet.io/role=address -o json | jq -r '.items[] | select(.spec.key == "vm/tmp") | .metadata.name')
assert_true "node1 releases vm/tmp" ct node1 release $N vm/tmp
ghost() { # ADDRESS ATTACHED: an address object of a claim 'vm/ghost' that does not exist
	local name=${aname%-10-88-0-21}-${1//./-}
	k create -f - >/dev/null <<EOF
{"apiVersion": "kvnet.io/v1alpha1", "kind": "NetworkClaim",
 "metadata": {"name": "$name", "labels": {"kvnet.io/role": "address"}},
 "spec": {"network": "$N", "key": "vm/ghost", "ips": ["$1/24"], "mac": "", "holder": "node9",
          "attached": $2, "target": "", "targetReady": false}}
EOF
}
ghost 10.88.0.22 false
out=$(ct node1 take $N vm/late 10.88.0.22/24 2>&1 || true)
assert_true "a young unconfirmed address object (a take in progress) is respected ($out)" grep -q "EADDRINUSE.*vm/ghost" <<<"$out"
ghost 10.88.0.23 true
assert_true "a confirmed address object whose claim does not list it is reclaimed" ct node1 take $N vm/late 10.88.0.23/24
assert_eq "$(k get networkclaims -l kvnet.io/role=address -o json | jq -r '.items[] | select(.spec.ips[0] == "10.88.0.23/24") | .spec.key')" \
	vm/late "10.88.0.23's object names vm/late"

# ---------------------------------------------------------------- release, nodes, dump
assert_true "node3 releases $VM" ct node3 release $N $VM
assert_true "node1 releases vm/late" ct node1 release $N vm/late
assert_eq "$(ct node1 get $N $VM 2>&1 || true)" ABSENT "the claim is gone"
assert_eq "$(objs claim)|$(spec address .spec.key | sort -u | tr '\n' ' ')|$(objs mac)" "|vm/ghost |" \
	"no claim object left, no address object but the hand-made one, no mac object"
assert_true "node1 registers its underlay address" ct node1 node-set 198.51.100.1
assert_eq "$(ct node2 node-get node1)" 198.51.100.1 "node2 reads node1's address"
out=$(ct node2 node-get node7 2>&1 || true)
assert_true "an unregistered node: ENOENT ($out)" grep -q ENOENT <<<"$out"
assert_true "node1 takes vm/d" ct node1 take $N vm/d 10.88.0.30/24
assert_eq "$(ct node2 dump | jq -r '[.node, .backend, .server, (.claims | length), .claims[0].key] | join(" ")')" \
	"node2 kube https://127.0.0.1:6443 1 vm/d" "dump: node, backend, server, the claims"
assert_true "node1 releases vm/d" ct node1 release $N vm/d

# ---------------------------------------------------------------- a server that never answers
bg ip netns exec "$NS" socat TCP-LISTEN:6450,reuseaddr,fork EXEC:"sleep 60"
sed 's|https://127.0.0.1:6443|https://127.0.0.1:6450|' "$KCFG" >"$KV_TMP/dead.kubeconfig"
sleep 0.3
t0=$(date +%s%N)
out=$(ip netns exec "$NS" "$CT" --kubeconfig "$KV_TMP/dead.kubeconfig" --timeout-ms 1500 --node node1 get $N $VM 2>&1 || true)
ms=$((($(date +%s%N) - t0) / 1000000))
assert_true "a request to a server that never answers fails ($out)" grep -q "ETIMEDOUT" <<<"$out"
assert_true "within the bound (${ms} ms for a 1500 ms timeout)" test "$ms" -lt 5000

# ---------------------------------------------------------------- netd's config
bad_config() { # JSON EXPECTED-MESSAGE
	printf '{"nodeName": "node1", "clusterClaims": %s}\n' "$1" >"$KV_TMP/netd.json"
	out=$("$KV_BIN/kvnet-netd" --socket "$KV_TMP/netd.sock" --state-dir "$KV_TMP/netd-state" \
		--config "$KV_TMP/netd.json" 2>&1 || true)
	assert_true "netd refuses clusterClaims $1: $2" grep -qF "$2" <<<"$out"
}
bad_config '{"backend": "etcd"}' "'clusterClaims.backend' must be dir or kube, got 'etcd'"
bad_config '{"backend": "kube", "kubeconfig": "kc.yaml"}' "'clusterClaims.kubeconfig' must be an absolute path, got 'kc.yaml'"
bad_config '{"backend": "kube", "kubeconfig": "/nonexistent/kc"}' "clusterClaims.kubeconfig '/nonexistent/kc'"

# ---------------------------------------------------------------- the race
t0=$(date +%s)
out=$(ct race race "$ROUNDS" racenet 10.77.0.5/24 2>&1 || true)
secs=$(($(date +%s) - t0))
log "race: $(tr '\n' ' ' <<<"$out" | tail -c 600) (${secs} s)"
assert_eq "$(sed -n 's/^RACE_ONE_WINNER=//p' <<<"$out")" "$ROUNDS" \
	"two nodes racing for one claim: exactly one wins in each of $ROUNDS rounds, and the store agrees"
assert_eq "$(sed -n 's/^RACE_BAD=//p' <<<"$out")" 0 "no round with zero or two winners or a leftover"
assert_true "both nodes won some rounds (the race is real: $(grep RACE_WINS <<<"$out" | tr '\n' ' '))" \
	test "$(sed -n 's/^RACE_WINS_A=//p' <<<"$out")" -gt 0 -a "$(sed -n 's/^RACE_WINS_B=//p' <<<"$out")" -gt 0
assert_eq "$(k get networkclaims -o json | jq -r '[.items[] | select(.spec.network == "racenet")] | length')" 0 \
	"nothing of the race left in the API"
echo "CLAIM_RACE_ROUNDS=$ROUNDS CLAIM_RACE_SECONDS=$secs"

finish
