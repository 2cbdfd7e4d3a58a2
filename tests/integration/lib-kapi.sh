# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# The real kube-apiserver + etcd (the pair controller-runtime's envtest runs; test peers from make test-deps) for
# integration tests, both on 127.0.0.1 inside a network namespace of the test's own, never the host's network.
# After lib.sh's kv_init and require_peer ETCD etcd / require_peer APISERVER kube-apiserver:
#   kapi_up            openssl makes a throwaway CA, the serving certificate, an admin client certificate
#                      (system:masters), a token (tokens.csv: sekret-token) and the service-account key in $KAPI_PKI;
#                      etcd and kube-apiserver start in namespace $NS (authorization: $KAPI_AUTHZ, default AlwaysAllow);
#                      $KCFG is the admin kubeconfig (CA and client certificate inline); status 1 if not ready in 60 s.
#                      KAPI_NETNS: run in that existing namespace instead of a new one, the API server on KAPI_ADDR
#                      (e.g. a cluster.sh client namespace's underlay address, which the nodes reach)
#   kapi_crd FILE...   applies CRDs and waits until they are established (asserted)
#   kapi_start_apiserver  (re)starts kube-apiserver on the same etcd; sets APISERVER_PID, READY_S
#   k ARGS             kubectl --kubeconfig $KCFG in the namespace
#   kapi_kubeconfig FILE USER-CERT USER-KEY | --token TOKEN: another kubeconfig for the same server

kapi_b64() { base64 -w0 <"$1"; }
k() { ip netns exec "$NS" kubectl --kubeconfig "$KCFG" "$@"; }

kapi_pki() {
	KAPI_PKI=$KV_TMP/pki
	mkdir -p "$KAPI_PKI"
	(
		cd "$KAPI_PKI" || exit 1
		openssl req -x509 -new -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj "/CN=kvnet test CA" 2>/dev/null
		mkcert() { # NAME SUBJECT EXT
			openssl req -new -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
			openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 1 \
				-extfile <(printf '%s\n' "$3") 2>/dev/null
		}
		mkcert apiserver "/CN=kube-apiserver" "subjectAltName=IP:127.0.0.1,IP:${KAPI_ADDR:-127.0.0.1},IP:10.0.0.1,DNS:localhost,DNS:kubernetes.default
extendedKeyUsage=serverAuth"
		mkcert admin "/O=system:masters/CN=kvnet-admin" "extendedKeyUsage=clientAuth"
		openssl genrsa -out sa.key 2048 2>/dev/null
		openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
		echo "sekret-token,kvnet-token-user,uid-1,system:masters" >tokens.csv
	)
	test -s "$KAPI_PKI/apiserver.crt" -a -s "$KAPI_PKI/admin.crt" -a -s "$KAPI_PKI/sa.pub"
}

# kapi_kubeconfig FILE CERT KEY, or kapi_kubeconfig FILE --token TOKEN
kapi_kubeconfig() {
	local user
	if [ "$2" = --token ]; then
		user="    token: $3"
	else
		user="    client-certificate-data: $(kapi_b64 "$2")
    client-key-data: $(kapi_b64 "$3")"
	fi
	cat >"$1" <<EOF2
apiVersion: v1
kind: Config
current-context: kvnet-test
clusters:
- name: kvnet-test
  cluster:
    server: https://${KAPI_ADDR:-127.0.0.1}:6443
    certificate-authority-data: $(kapi_b64 "$KAPI_PKI/ca.crt")
contexts:
- name: kvnet-test
  context: {cluster: kvnet-test, user: u, namespace: default}
users:
- name: u
  user:
$user
EOF2
}

kapi_start_apiserver() {
	local t0 _
	t0=$(date +%s)
	bg ip netns exec "$NS" "$APISERVER" --etcd-servers=http://127.0.0.1:2379 \
		--bind-address="${KAPI_ADDR:-127.0.0.1}" --advertise-address="${KAPI_ADDR:-127.0.0.1}" --secure-port=6443 \
		--tls-cert-file="$KAPI_PKI/apiserver.crt" --tls-private-key-file="$KAPI_PKI/apiserver.key" \
		--client-ca-file="$KAPI_PKI/ca.crt" --token-auth-file="$KAPI_PKI/tokens.csv" \
		--authorization-mode="${KAPI_AUTHZ:-AlwaysAllow}" \
		--service-account-issuer="https://${KAPI_ADDR:-127.0.0.1}:6443" --service-account-key-file="$KAPI_PKI/sa.pub" \
		--service-account-signing-key-file="$KAPI_PKI/sa.key" --service-cluster-ip-range=10.0.0.0/24 \
		--disable-admission-plugins=ServiceAccount --allow-privileged=true --endpoint-reconciler-type=none \
		--cert-dir="$KV_TMP/apiserver-certs" >>"$KV_TMP/apiserver.log" 2>&1
	APISERVER_PID=$BG_PID
	for _ in $(seq 1 120); do
		kill -0 "$APISERVER_PID" 2>/dev/null || return 1
		if [ "$(k get --raw /readyz 2>/dev/null)" = ok ]; then
			# shellcheck disable=SC2034 # the caller's
			READY_S=$(($(date +%s) - t0))
			return 0
		fi
		sleep 0.5
	done
	return 1
}

kapi_up() {
	if [ -n "${KAPI_NETNS:-}" ]; then
		NS=$KAPI_NETNS
	else
		mkns NS kapi
		ip -n "$NS" link set lo up
	fi
	kapi_pki || return 1
	log "etcd $ETCD, kube-apiserver $APISERVER"
	bg ip netns exec "$NS" "$ETCD" --name kvnet-test --data-dir "$KV_TMP/etcd" --unsafe-no-fsync \
		--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
		--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster kvnet-test=http://127.0.0.1:2380 --log-level warn >"$KV_TMP/etcd.log" 2>&1
	at_exit 'if [ "$KV_EXIT_RC" -ne 0 ]; then echo "---- kube-apiserver log (last 30 lines) ----"; tail -n 30 "$KV_TMP/apiserver.log"; echo "---- etcd log ----"; tail -n 10 "$KV_TMP/etcd.log"; fi'
	KCFG=$KV_TMP/kubeconfig
	kapi_kubeconfig "$KCFG" "$KAPI_PKI/admin.crt" "$KAPI_PKI/admin.key"
	kapi_start_apiserver || return 1
	# the default namespace (the apiserver's own bootstrap controller makes it)
	for _ in $(seq 1 40); do k get namespace default >/dev/null 2>&1 && return 0; sleep 0.25; done
	return 0
}

kapi_crd() {
	k apply "${@/#/-f}" >/dev/null
	assert_true "CRDs established: $*" k wait --for condition=established --timeout=60s crd --all
}

# kvnet's NetworkClaim CRD (deploy/crds) on the real kube-apiserver (lib-kapi.sh), the test ends if it is not ready
claims_apiserver_up() {
	local ready=0
	kapi_up && ready=1
	assert_eq "$ready" 1 "kube-apiserver + etcd ready on ${KAPI_ADDR:-127.0.0.1} in ${READY_S:-?} s"
	[ "$ready" = 1 ] || finish
	kapi_crd "$KV_ROOT/deploy/crds/kvnet.io_networkclaims.yaml"
}

# The cluster's netds (cluster_up) again, with the kube claim backend on this API server (as cluster.sh's
# start_netd, the same config with clusterClaims {"backend": "kube"}: a later restart of a netd keeps it).
claims_netds_kube() {
	local i pv nsv sv stv lv merge
	merge=$(jq -nc --arg kc "$KCFG" '{clusterClaims: {backend: "kube", kubeconfig: $kc, timeoutMs: 5000}}')
	for i in 1 2; do
		pv=NODE${i}_NETD_PID nsv=NODE${i}_NS sv=NODE${i}_SOCK stv=NODE${i}_STATE lv=NODE${i}_LOG
		echo "${!pv}" >"$(dirname "${!sv}")/netd.pid"
		node_netd_restart "${!nsv}" "${!sv}" "${!stv}" "${!lv}" "$merge"
		assert_true "node$i: netd runs with the kube claim store" test -S "${!sv}"
		printf -v "$pv" '%s' "$RESTARTED_NETD_PID"
	done
}
