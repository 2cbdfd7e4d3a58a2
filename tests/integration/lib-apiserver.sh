# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# The real kube-apiserver + etcd (test peers built by make test-deps) on 127.0.0.1 inside a network
# namespace of the test's own, never the host's network: openssl makes a throwaway CA, the serving
# certificate, a client certificate (system:masters) and the service-account key; authorization
# AlwaysAllow. Sourced after lib.sh; used by test-kube-apiserver and test-claims-kube.
#   apiserver_setup PREFIX [NETNS ADDR]
#                            requires the peers (else skips), makes the netns NS (or uses NETNS, where the
#                            API server then listens on ADDR, e.g. a cluster's client namespace reachable
#                            from the nodes), the PKI in P, starts etcd and writes the kubeconfig KCFG (CA
#                            and client certificate inline); k is kubectl in NS with KCFG
#   start_apiserver          starts kube-apiserver on etcd and waits (60 s at most) until /readyz answers
#                            ok; sets APISERVER_PID and READY_S, status 1 if it did not become ready
#   start_apiserver_claims   start_apiserver, asserted (the test ends if it fails), and the NetworkClaim
#                            CRD of the claim store's kube backend applied and established

b64() { base64 -w0 <"$1"; }
# kubectl in the namespace with the kubeconfig
k() { ip netns exec "$NS" kubectl --kubeconfig "$KCFG" "$@"; }

apiserver_setup() {
	require_cmd openssl kubectl
	require_peer ETCD etcd
	require_peer APISERVER kube-apiserver
	APISERVER_ADDR=${3:-127.0.0.1}
	if [ -n "${2:-}" ]; then
		NS=$2
	else
		mkns NS "$1"
		ip -n "$NS" link set lo up
	fi
	P=$KV_TMP/pki
	mkdir -p "$P"
	(
		cd "$P" || exit 1
		openssl req -x509 -new -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj "/CN=kvnet test CA" 2>/dev/null
		mkcert() { # NAME SUBJECT EXT
			openssl req -new -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
			openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 1 \
				-extfile <(printf '%s\n' "$3") 2>/dev/null
		}
		mkcert apiserver "/CN=kube-apiserver" "subjectAltName=IP:127.0.0.1,IP:$APISERVER_ADDR,IP:10.0.0.1,DNS:localhost,DNS:kubernetes.default
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
	cat >"$KCFG" <<EOF2
apiVersion: v1
kind: Config
current-context: kvnet-test
clusters:
- name: kvnet-test
  cluster:
    server: https://$APISERVER_ADDR:6443
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
}

start_apiserver() {
	local t0 _
	t0=$(date +%s)
	bg ip netns exec "$NS" "$APISERVER" --etcd-servers=http://127.0.0.1:2379 \
		--bind-address="$APISERVER_ADDR" --advertise-address="$APISERVER_ADDR" --secure-port=6443 \
		--tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --client-ca-file="$P/ca.crt" \
		--token-auth-file="$P/tokens.csv" --authorization-mode=AlwaysAllow \
		--service-account-issuer="https://$APISERVER_ADDR:6443" --service-account-key-file="$P/sa.pub" \
		--service-account-signing-key-file="$P/sa.key" --service-cluster-ip-range=10.0.0.0/24 \
		--disable-admission-plugins=ServiceAccount --allow-privileged=true --endpoint-reconciler-type=none \
		--cert-dir="$KV_TMP/apiserver-certs" >>"$KV_TMP/apiserver.log" 2>&1
	APISERVER_PID=$BG_PID
	for _ in $(seq 1 120); do
		kill -0 "$APISERVER_PID" 2>/dev/null || return 1
		if [ "$(k get --raw /readyz 2>/dev/null)" = ok ]; then
			# shellcheck disable=SC2034 # for the caller
			READY_S=$(($(date +%s) - t0))
			return 0
		fi
		sleep 0.5
	done
	return 1
}

start_apiserver_claims() {
	local ready=0
	start_apiserver && ready=1
	assert_eq "$ready" 1 "kube-apiserver + etcd ready on $APISERVER_ADDR in ${READY_S:-?} s"
	[ "$ready" = 1 ] || finish
	k apply -f "$KV_CONF_DIR/networkclaims-crd.yaml" >/dev/null
	assert_true "the NetworkClaim CRD is established" \
		k wait --for condition=established --timeout=30s crd/networkclaims.kvnet.io
}
