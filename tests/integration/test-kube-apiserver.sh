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
# (lib-kubeclient.sh, the same checks as test-kube-client against kvnet's embedded API); kubectl
# --kubeconfig with the kubeconfig the test writes (token and client certificate both work); leader election on a
# coordination.k8s.io/v1 Lease (kube/lease.c through kubeclient's lease verb): a lone candidate leads, a second
# waits while the leader renews, takes over after the leader is killed (not before the lease could have expired;
# the time printed), a released lease is taken at once, two candidates racing on a new Lease: one leader, 10/10.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-kubeclient.sh"

kv_init
require_cmd openssl kubectl
require_peer ETCD etcd
require_peer APISERVER kube-apiserver
KCL=$KV_BUILD_DIR/tests/kubeclient
require_file "$KCL"

mkns NS kapi
ip -n "$NS" link set lo up
P=$KV_TMP/pki
mkdir -p "$P"
(
	cd "$P"
	openssl req -x509 -new -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj "/CN=kvnet test CA" 2>/dev/null
	mkcert() { # NAME SUBJECT EXT
		openssl req -new -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
		openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 1 \
			-extfile <(printf '%s\n' "$3") 2>/dev/null
	}
	mkcert apiserver "/CN=kube-apiserver" "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes.default
extendedKeyUsage=serverAuth"
	mkcert admin "/O=system:masters/CN=kvnet-admin" "extendedKeyUsage=clientAuth"
	openssl genrsa -out sa.key 2048 2>/dev/null
	openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
	echo "sekret-token,kvnet-token-user,uid-1,system:masters" >tokens.csv
)
assert_true "openssl made the CA, serving and client certificates and the service-account key" \
	test -s "$P/apiserver.crt" -a -s "$P/admin.crt" -a -s "$P/sa.pub"

log "etcd $ETCD, kube-apiserver $APISERVER"
bg ip netns exec "$NS" "$ETCD" --name kvnet-test --data-dir "$KV_TMP/etcd" --unsafe-no-fsync \
	--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
	--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
	--initial-cluster kvnet-test=http://127.0.0.1:2380 --log-level warn >"$KV_TMP/etcd.log" 2>&1
at_exit 'if [ "$KV_EXIT_RC" -ne 0 ]; then echo "---- kube-apiserver log (last 30 lines) ----"; tail -n 30 "$KV_TMP/apiserver.log"; echo "---- etcd log ----"; tail -n 10 "$KV_TMP/etcd.log"; fi'

# The kubeconfig kubectl and kubeclient use: the CA and the client certificate inline.
KCFG=$KV_TMP/kubeconfig
b64() { base64 -w0 <"$1"; }
cat >"$KCFG" <<EOF2
apiVersion: v1
kind: Config
current-context: kvnet-test
clusters:
- name: kvnet-test
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: $(b64 "$P/ca.crt")
contexts:
- name: kvnet-test
  context: {cluster: kvnet-test, user: admin, namespace: default}
users:
- name: admin
  user:
    client-certificate-data: $(b64 "$P/admin.crt")
    client-key-data: $(b64 "$P/admin.key")
EOF2
k() { ip netns exec "$NS" kubectl --kubeconfig "$KCFG" "$@"; }

# start_apiserver: starts kube-apiserver on etcd and waits (60 s at most) until /readyz answers ok; sets
# APISERVER_PID and READY_S (seconds it took), status 1 if it did not become ready.
start_apiserver() {
	local t0 _
	t0=$(date +%s)
	bg ip netns exec "$NS" "$APISERVER" --etcd-servers=http://127.0.0.1:2379 \
		--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port=6443 \
		--tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --client-ca-file="$P/ca.crt" \
		--token-auth-file="$P/tokens.csv" --authorization-mode=AlwaysAllow \
		--service-account-issuer=https://127.0.0.1:6443 --service-account-key-file="$P/sa.pub" \
		--service-account-signing-key-file="$P/sa.key" --service-cluster-ip-range=10.0.0.0/24 \
		--disable-admission-plugins=ServiceAccount --allow-privileged=true --endpoint-reconciler-type=none \
		--cert-dir="$KV_TMP/apiserver-certs" >>"$KV_TMP/apiserver.log" 2>&1
	APISERVER_PID=$BG_PID
	for _ in $(seq 1 120); do
		kill -0 "$APISERVER_PID" 2>/dev/null || return 1
		if [ "$(k get --raw /readyz 2>/dev/null)" = ok ]; then
			READY_S=$(($(date +%s) - t0))
			return 0
		fi
		sleep 0.5
	done
	return 1
}

t0=$(date +%s)
ready=0
start_apiserver && ready=1
assert_eq "$ready" 1 "kube-apiserver + etcd ready in $(($(date +%s) - t0)) s (kubectl get --raw /readyz)"
[ "$ready" = 1 ] || finish
assert_eq "$(k version -o json | jq -r .serverVersion.gitVersion)" "$(basename "$(dirname "$APISERVER")" | sed 's/^kube-apiserver-//')" \
	"kubectl --kubeconfig (client certificate): the server is the pinned release"
# wait for the default namespace (the apiserver's own bootstrap controller makes it)
for _ in $(seq 1 40); do k get namespace default >/dev/null 2>&1 && break; sleep 0.25; done

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
start_apiserver && ready=1
assert_eq "$ready" 1 "kube-apiserver restarted on the same etcd, ready in $READY_S s"
kube_client_raw_watch_410

# ---------------------------------------------------------------- the kubeconfig with a bearer token
sed -e '/client-certificate-data/d' -e 's|^    client-key-data: .*|    token: sekret-token|' "$KCFG" >"$KV_TMP/token.kubeconfig"
assert_eq "$(ip netns exec "$NS" kubectl --kubeconfig "$KV_TMP/token.kubeconfig" get pods -o name | sort | tr '\n' ' ')" \
	"pod/web-1 pod/web-2 pod/web-3 " "kubectl with a bearer token (the static token file)"
assert_eq "$(ip netns exec "$NS" "$KCL" --kubeconfig "$KV_TMP/token.kubeconfig" list v1 pods | head -n 1 | cut -d' ' -f1-2)" \
	"ITEMS 3" "kubeclient with the bearer token"
sed 's|^    certificate-authority-data: .*|    certificate-authority-data: '"$(b64 "$P/admin.crt")"'|' "$KCFG" >"$KV_TMP/wrongca.kubeconfig"
out=$(ip netns exec "$NS" "$KCL" --kubeconfig "$KV_TMP/wrongca.kubeconfig" list v1 pods 2>&1 || true)
assert_true "a CA that did not sign the apiserver's certificate is refused: EKEYREJECTED ($out)" grep -q EKEYREJECTED <<<"$out"

# ---------------------------------------------------------------- leader election on a Lease (kube/lease.c)
# Candidates are kubeclient processes: lease 3 s, renew deadline 2 s, retry 0.5 s.
candidate() { # candidate LEASE ID: in the background, output in $KV_TMP/lease-ID.out; sets CAND_PID
	ip netns exec "$NS" "$KCL" --kubeconfig "$KCFG" -n default lease "$1" "$2" 3000 2000 500 >"$KV_TMP/lease-$2.out" 2>&1 &
	CAND_PID=$!
}
wait_line() { # wait_line FILE REGEX [TENTHS]
	for _ in $(seq 1 "${3:-100}"); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	return 1
}
ms() { date +%s%3N; }
holder() { k get lease "$1" -o jsonpath='{.spec.holderIdentity}' 2>/dev/null; }
candidate ctl a
A=$CAND_PID
assert_true "a lone candidate leads (it creates the Lease)" wait_line "$KV_TMP/lease-a.out" '^LEADING'
assert_eq "$(holder ctl)" a "... the Lease's holderIdentity is a (kubectl)"
candidate ctl b
B=$CAND_PID
assert_true "a second candidate sees a as the holder" wait_line "$KV_TMP/lease-b.out" '^HOLDER a$'
sleep 3.5 # longer than the lease: a renews, so b must not take over
assert_false "... and does not lead while a renews (3.5 s, longer than the lease)" grep -q '^LEADING' "$KV_TMP/lease-b.out"
kill -KILL "$A"
t0=$(ms)
wait "$A" 2>/dev/null || true
assert_true "a killed (no release): b leads" wait_line "$KV_TMP/lease-b.out" '^LEADING' 150
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
assert_true "a new candidate leads a released lease" wait_line "$KV_TMP/lease-c.out" '^LEADING'
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
	wait_line "$KV_TMP/lease-x$i.out" '^LEADING' 50 || wait_line "$KV_TMP/lease-y$i.out" '^LEADING' 50 || true
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
