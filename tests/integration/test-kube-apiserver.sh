#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kube/ (the Kubernetes client library, through tests/tools/kubeclient) and kubectl against the real
# kube-apiserver + etcd (the pair controller-runtime's envtest runs; test peers built by make test-deps),
# both on 127.0.0.1 inside a network namespace the test makes, never the host's network. openssl makes
# a throwaway CA, the serving certificate, a client certificate (system:masters) and the
# service-account key; authorization AlwaysAllow. Checks with kubeclient: create, get, list with a
# label and field selectors, AlreadyExists (EEXIST), 404 NotFound (ENOENT), a stale update as 409 Conflict
# (EBUSY) and a fresh one, merge patch, delete and a second delete, an informer that syncs and sees
# kubectl's ADDED/MODIFIED/DELETED, a raw watch from resourceVersion 1 answered by ERROR 410 Expired
# (lib-kubeclient.sh, the same checks as test-kube-client against kvnet's embedded API); an informer stopped
# while the apiserver restarts, pods change and etcd compacts its history: resumed, 410 Expired, a relist whose
# callbacks are what it missed, then it follows kubectl again; kubectl
# --kubeconfig with the kubeconfig the test writes (token and client certificate both work); leader election on a
# coordination.k8s.io/v1 Lease (kube/lease.c through kubeclient's lease verb): a lone candidate leads, a second
# waits while the leader renews, takes over after the leader is killed (not before the lease could have expired;
# the time printed), a released lease is taken at once, two candidates racing on a new Lease: one leader, 10/10.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-kubeclient.sh"
source "$(dirname "$0")/lib-kapi.sh"

kv_init
require_cmd openssl kubectl
require_peer ETCD etcd
require_peer APISERVER kube-apiserver
KCL=$KV_BUILD_DIR/tests/kubeclient
require_file "$KCL"

t0=$(date +%s)
ready=0
kapi_up && ready=1
assert_true "openssl made the CA, serving and client certificates and the service-account key" \
	test -s "$KAPI_PKI/apiserver.crt" -a -s "$KAPI_PKI/admin.crt" -a -s "$KAPI_PKI/sa.pub"
assert_eq "$ready" 1 "kube-apiserver + etcd ready in $(($(date +%s) - t0)) s (kubectl get --raw /readyz)"
[ "$ready" = 1 ] || finish
assert_eq "$(k version -o json | jq -r .serverVersion.gitVersion)" "$(basename "$(dirname "$APISERVER")" | sed 's/^kube-apiserver-//')" \
	"kubectl --kubeconfig (client certificate): the server is the pinned release"

# ---------------------------------------------------------------- the checks test-kube-client runs
kube_client_requests
kube_client_delete
kube_client_informer "$KV_TMP/informer.out"
stop_bg "$WPID" "the informer"
# A restarted kube-apiserver's watch cache starts at etcd's current revision: a watch from an older
# resourceVersion is answered by 410 Expired.
kill -TERM "$APISERVER_PID"
wait "$APISERVER_PID" 2>/dev/null || true
ready=0
kapi_start_apiserver && ready=1
assert_eq "$ready" 1 "kube-apiserver restarted on the same etcd, ready in $READY_S s"
kube_client_raw_watch_410

# ---------------------------------------------------------------- an informer across a restart and an etcd compaction
# The informer is stopped (SIGSTOP) while the apiserver restarts, pods change and etcd compacts its history up to now;
# resumed, it finds its watch gone and asks to watch from its old resourceVersion: what it missed comes out as
# callbacks (below: from a 410 and a relist, or from the watch).
etcd_api() { ip netns exec "$NS" curl -sS --max-time 5 -X POST "http://127.0.0.1:2379/v3/kv/$1" -d "$2"; }
W2=$KV_TMP/informer2.out
ip netns exec "$NS" "$KCL" --kubeconfig "$KCFG" watch v1 pods -l app=web --backoff-min 200 >"$W2" 2>&1 &
W2PID=$!
KV_PIDS+=("$W2PID")
assert_true "an informer on the restarted kube-apiserver is synced" wait_line "$W2" '^STATE watching'
n=$(wc -l <"$W2")
kill -STOP "$W2PID"
# A write (to another resource: etcd's revision is global) puts the informer's resourceVersion strictly before the
# revision the restarted apiserver's watch cache starts at, whatever the old apiserver wrote or not on its way out.
k create configmap kvnet-rev-bump >/dev/null
kill -TERM "$APISERVER_PID"
wait "$APISERVER_PID" 2>/dev/null || true
ready=0
kapi_start_apiserver && ready=1
assert_eq "$ready" 1 "kube-apiserver restarted again (the informer stopped), ready in $READY_S s"
k delete pod web-1 --wait=false >/dev/null
kc create v1 pods "$(pod web-5 web)" >/dev/null
rev=$(etcd_api range '{"key": "AA=="}' | jq -r .header.revision)
out=$(etcd_api compaction "{\"revision\": \"$rev\", \"physical\": true}")
assert_true "etcd compacted its history up to revision $rev ($out)" jq -e '.header.revision' <<<"$out"
out=$(ip netns exec "$NS" timeout 10 "$KCL" --kubeconfig "$KCFG" raw-watch v1 pods --resource-version 2 2>&1 || true)
assert_true "a watch from before the compaction: 410 ($(head -c 200 <<<"$out"))" grep -q 410 <<<"$out"
kill -CONT "$W2PID"
# How the informer catches up is the server's choice: 410 Expired and a relist (neither its watch cache nor etcd has
# the informer's resourceVersion any more), or the missed events on the new watch (found on the CI machine: the
# restarted server still served that history). Either way it must come out with exactly web-1 DELETED and web-5
# ADDED. (The 410 → relist path itself is asserted every time by test-kube-client against the embedded API.)
caught_up() {
	local _
	for _ in $(seq 1 300); do
		tail -n +$((n + 1)) "$W2" | grep -q '^DELETED default/web-1 ' &&
			tail -n +$((n + 1)) "$W2" | grep -q '^ADDED default/web-5 ' && return 0
		sleep 0.1
	done
	return 1
}
ok=0
caught_up && ok=1
assert_eq "$ok" 1 "resumed, the informer catches up within 30 s ($(tail -n +$((n + 1)) "$W2" | cut -d' ' -f1-2 | tr '\n' ' '))"
after=$(awk -v n="$n" 'NR > n && /^STATE expired/ {l = NR} END {print l}' "$W2")
if [ -n "$after" ]; then
	log "the server answered 410 Expired: the informer relisted"
	assert_true "... after the 410 it relisted" wait_line "$W2" '^STATE listed' "$after"
	assert_true "... then it watches again" wait_line "$W2" '^STATE watching' "$after"
else
	log "the server still had the informer's history: the missed events came on the watch, no relist"
	after=$n
fi
sleep 0.5 # nothing more may come
assert_eq "$(tail -n +$((after + 1)) "$W2" | grep -E '^(ADDED|DELETED)' | cut -d' ' -f1-2 | sort | tr '\n' ' ')" \
	"ADDED default/web-5 DELETED default/web-1 " "what it missed, exactly: web-1 DELETED, web-5 ADDED"
k label pod web-5 tier=front >/dev/null
assert_true "... and follows kubectl: MODIFIED web-5" wait_line "$W2" '^MODIFIED default/web-5 ' "$after"
stop_bg "$W2PID" "the informer (restart + compaction)"

# ---------------------------------------------------------------- the kubeconfig with a bearer token
kapi_kubeconfig "$KV_TMP/token.kubeconfig" --token sekret-token
assert_eq "$(ip netns exec "$NS" kubectl --kubeconfig "$KV_TMP/token.kubeconfig" get pods -o name | sort | tr '\n' ' ')" \
	"pod/web-2 pod/web-3 pod/web-5 " "kubectl with a bearer token (the static token file)"
assert_eq "$(ip netns exec "$NS" "$KCL" --kubeconfig "$KV_TMP/token.kubeconfig" list v1 pods | head -n 1 | cut -d' ' -f1-2)" \
	"ITEMS 3" "kubeclient with the bearer token"
assert_eq "$(ip netns exec "$NS" "$KCL" --kubeconfig "$KCFG" list v1 pods --limit 1 | sed -n 1p | cut -d' ' -f1-2)" \
	"ITEMS 3" "a list in pages of one pod (limit, then the server's continue tokens) has all three"
sed 's|^    certificate-authority-data: .*|    certificate-authority-data: '"$(kapi_b64 "$KAPI_PKI/admin.crt")"'|' "$KCFG" >"$KV_TMP/wrongca.kubeconfig"
out=$(ip netns exec "$NS" "$KCL" --kubeconfig "$KV_TMP/wrongca.kubeconfig" list v1 pods 2>&1 || true)
assert_true "a CA that did not sign the apiserver's certificate is refused: EKEYREJECTED ($out)" grep -q EKEYREJECTED <<<"$out"

# ---------------------------------------------------------------- leader election on a Lease (kube/lease.c)
# Candidates are kubeclient processes: lease 3 s, renew deadline 2 s, retry 0.5 s.
candidate() { # candidate LEASE ID: in the background, output in $KV_TMP/lease-ID.out; sets CAND_PID
	ip netns exec "$NS" "$KCL" --kubeconfig "$KCFG" -n default lease "$1" "$2" 3000 2000 500 >"$KV_TMP/lease-$2.out" 2>&1 &
	CAND_PID=$!
}
wait_for() { # wait_for FILE REGEX [TENTHS]
	for _ in $(seq 1 "${3:-100}"); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
ms() { date +%s%3N; }
holder() { k get lease "$1" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
candidate ctl a
A=$CAND_PID
assert_true "a lone candidate leads (it creates the Lease)" wait_for "$KV_TMP/lease-a.out" '^LEADING'
assert_eq "$(holder ctl)" a "... the Lease's holderIdentity is a (kubectl)"
candidate ctl b
B=$CAND_PID
assert_true "a second candidate sees a as the holder" wait_for "$KV_TMP/lease-b.out" '^HOLDER a$'
sleep 3.5 # longer than the lease: a renews, so b must not take over
assert_false "... and does not lead while a renews (3.5 s, longer than the lease)" grep -q '^LEADING' "$KV_TMP/lease-b.out"
kill -KILL "$A"
t0=$(ms)
wait "$A" 2>/dev/null || true
assert_true "a killed (no release): b leads" wait_for "$KV_TMP/lease-b.out" '^LEADING' 150
took=$(($(ms) - t0))
log "takeover after the leader died: $took ms (lease 3000 ms, retry 500 ms)"
assert_true "... not before a's lease could have run out since its last renewal ($took ms >= 2500)" test "$took" -ge 2500
assert_eq "$(holder ctl)/$(k get lease ctl -o jsonpath='{.spec.leaseTransitions}')" b/1 "... the Lease names b, one transition"
kill -TERM "$B"
wait "$B" 2>/dev/null || true
assert_true "b stopped (SIGTERM) gives the lease back" grep -q '^RELEASED' "$KV_TMP/lease-b.out"
assert_eq "$(holder ctl)" "" "... holderIdentity is empty"
candidate ctl c
C=$CAND_PID
t0=$(ms)
assert_true "a new candidate leads a released lease" wait_for "$KV_TMP/lease-c.out" '^LEADING'
log "a released lease taken in $(($(ms) - t0)) ms"
kill -KILL "$C"
wait "$C" 2>/dev/null || true
# racing candidates: exactly one wins, every time
one=0
for i in $(seq 1 10); do
	candidate "race-$i" "x$i"
	X=$CAND_PID
	candidate "race-$i" "y$i"
	Y=$CAND_PID
	wait_for "$KV_TMP/lease-x$i.out" '^LEADING' 50 || wait_for "$KV_TMP/lease-y$i.out" '^LEADING' 50 || true
	sleep 1
	n=$(cat "$KV_TMP/lease-x$i.out" "$KV_TMP/lease-y$i.out" | grep -c '^LEADING' || true)
	[ "$n" = 1 ] && [ "$(holder "race-$i")" != "" ] && one=$((one + 1))
	kill -KILL "$X" "$Y" 2>/dev/null || true
	wait "$X" "$Y" 2>/dev/null || true
done
assert_eq "$one" 10 "two candidates started together on a new Lease: exactly one leads, 10 of 10 times"
out=$(ip netns exec "$NS" "$KCL" --kubeconfig "$KCFG" -n default lease ctl z 3000 3000 500 2>&1 || true)
assert_true "a renew deadline not below the lease duration is refused, naming both ($out)" \
	grep -q "renew deadline (3000 ms) < lease duration (3000 ms" <<<"$out"

finish
