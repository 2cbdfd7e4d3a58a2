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
# (lib-kubeclient.sh, the same checks as test-kube-client against kvnet's embedded API); and kubectl
# --kubeconfig with the kubeconfig the test writes (token and client certificate both work).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-kubeclient.sh"
source "$(dirname "$0")/lib-apiserver.sh"

kv_init
KCL=$KV_BUILD_DIR/tests/kubeclient
require_file "$KCL"
apiserver_setup kapi

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

finish
