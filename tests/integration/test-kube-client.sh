#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kube/ (the Kubernetes client library) through tests/tools/kubeclient against the real
# kvnet-controller --embedded, in a network namespace of its own (loopback only). Asserts: create, get,
# list with label and field selectors (async on the event loop and --sync), AlreadyExists as EEXIST, a
# stale update as EBUSY (409 Conflict) while a fresh one passes, merge patch, status update and status
# patch, delete with propagation/grace and a second delete as ENOENT (NotFound) — each checked with the
# real kubectl; an informer that sees ADDED/MODIFIED/DELETED for changes made with kubectl, resumes after
# the controller restarts (no relist when its resourceVersion is still current) and relists after a 410
# (a resourceVersion the restarted controller no longer has), its callbacks then the difference between
# the relist and the cache (a delete and a create it missed while it waited); a raw watch from a too-old resourceVersion
# gets ERROR 410. TLS against a python3 HTTPS server with a throwaway CA (openssl) that requires a client
# certificate: CA + client certificate inline and as files, a bearer token, list pages followed through
# continue tokens (also through the rate limiter's wait), a wrong CA refused (EKEYREJECTED) unless insecure-skip-tls-verify, no client
# certificate refused; in-cluster config (service account token, CA, namespace under a test root) against
# the same server with the client certificate optional. Every kubeclient exits 0 on SIGTERM (sanitizer build: no leaks).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-controller.sh"
source "$(dirname "$0")/lib-kubeclient.sh"

kv_init
ctl_init
require_cmd openssl python3
KCL=$KV_BUILD_DIR/tests/kubeclient
require_file "$KCL"

start_controller

# ---------------------------------------------------------------- requests
kube_client_requests

kube_client_delete

# ---------------------------------------------------------------- informer: kubectl's changes
kube_client_informer "$KV_TMP/informer.out"
assert_true "kubectl create again: ADDED" wait_line "$W" "^ADDED default/web-3 rv=$(k get pod web-3 -o jsonpath='{.metadata.resourceVersion}')\$"

# ---------------------------------------------------------------- informer: restart, reconnect, relist
n=$(wc -l <"$W")
stop_controller
assert_true "the controller stopped: the informer is disconnected and retries" wait_line "$W" '^STATE disconnected error=' "$n"
start_controller
assert_true "the controller is back: the informer watches again" wait_line "$W" '^STATE watching' "$n"
assert_eq "$(tail -n +$((n + 1)) "$W" | grep -c '^STATE \(expired\|listed\)' || true)" 0 \
	"... from its resourceVersion, still current: no relist"
k create -f - >/dev/null <<<"$(pod web-4 web)"
assert_true "... and sees kubectl's next change" wait_line "$W" '^ADDED default/web-4 ' "$n"

kc create v1 pods "$(pod db-2 db)" >/dev/null # outside the selector: the informer's resourceVersion stays behind
n=$(wc -l <"$W")
stop_controller
start_controller
assert_true "after a restart that lost a newer resourceVersion the watch gets 410: expired" \
	wait_line "$W" '^STATE expired error=ESTALE' "$n"
assert_true "... it relists" wait_line "$W" '^STATE listed' "$n"
assert_true "... and watches from the new list" wait_line "$W" '^STATE watching' "$(grep -n '^STATE listed' "$W" | tail -n 1 | cut -d: -f1)"
k delete pod web-2 >/dev/null
assert_true "after the relist it still follows kubectl: DELETED web-2" wait_line "$W" '^DELETED default/web-2 ' "$n"
gaps=$(tail -n +$((n + 1)) "$W" | grep -E '^(ADDED|MODIFIED)' || true)
assert_eq "$gaps" "" "the relist found the cache current (no spurious ADDED/MODIFIED)"
stop_bg "$WPID" "the informer"

# changes the informer missed while it waited to reconnect come out of the relist as callbacks
W2=$KV_TMP/informer2.out
ip netns exec "$NS" "$KCL" --kubeconfig "$KCFG" watch v1 pods -l app=web --backoff-min 4000 >"$W2" 2>&1 &
W2PID=$!
KV_PIDS+=("$W2PID")
assert_true "a second informer (first retry after 2-4 s) is synced" wait_line "$W2" '^STATE watching'
kc create v1 pods "$(pod db-3 db)" >/dev/null # outside its selector: its resourceVersion falls behind
n=$(wc -l <"$W2")
stop_controller
start_controller
kc delete v1 pods web-1 >/dev/null # while it waits to reconnect
kc create v1 pods "$(pod web-5 web)" >/dev/null
assert_true "it reconnects into a 410 and relists" wait_line "$W2" '^STATE listed' "$n"
after=$(grep -n '^STATE expired' "$W2" | head -n 1 | cut -d: -f1 || true)
assert_eq "$(tail -n +"${after:-1}" "$W2" | grep -E '^(ADDED|DELETED)' | cut -d' ' -f1-2 | sort | tr '\n' ' ')" \
	"ADDED default/web-5 DELETED default/web-1 " "the relist's difference to the cache: web-1 DELETED, web-5 ADDED"
assert_eq "$(kc list v1 pods -l app=web | tail -n +2 | sort | tr '\n' ' ')" "default/web-3 default/web-4 default/web-5 " \
	"... which is what the API has"
stop_bg "$W2PID" "the second informer"

kube_client_raw_watch_410

# ---------------------------------------------------------------- TLS: a throwaway CA and client certificates
T=$KV_TMP/tls
mkdir -p "$T"
(
	cd "$T"
	mkcert() { # NAME CN ISSUER EXT
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$1.key" -out "$1.csr" \
			-subj "/CN=$2" 2>/dev/null
		openssl x509 -req -in "$1.csr" -CA "$3.crt" -CAkey "$3.key" -CAcreateserial -out "$1.crt" -days 1 \
			-extfile <(printf '%s\n' "$4") 2>/dev/null
	}
	for ca in ca wrong-ca; do
		openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout $ca.key -out $ca.crt \
			-days 1 -subj "/CN=kvnet test $ca" 2>/dev/null
	done
	mkcert server localhost ca "subjectAltName=IP:127.0.0.1,DNS:localhost"
	mkcert client kubeclient ca "extendedKeyUsage=clientAuth"
)
assert_true "openssl made a CA, a server and a client certificate" test -s "$T/client.crt" -a -s "$T/server.crt"
cat >"$T/server.py" <<'EOF'
# A stand-in API server: TLS with a required (or, with "optional", an optional) client certificate; pods listed
# in pages (continue tokens); whoami tells who asked.  server.py DIR PORT [optional]
import http.server, json, re, ssl, sys, urllib.parse
PODS = ["a", "b", "c", "d"]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        if u.path == "/api/v1/namespaces/default/pods":
            start = int(q.get("continue", ["0"])[0])
            limit = int(q.get("limit", ["100"])[0])
            page = PODS[start:start + limit]
            md = {"resourceVersion": "77"}
            if start + limit < len(PODS):
                md["continue"] = str(start + limit)
            body = {"kind": "PodList", "apiVersion": "v1", "metadata": md,
                    "items": [{"metadata": {"name": n, "namespace": "default"}} for n in page]}
            code = 200
        elif re.fullmatch(r"/api/v1/namespaces/[a-z0-9-]+/pods/whoami", u.path):
            peer = self.connection.getpeercert() or {"subject": []}
            cn = ([v for rdn in peer["subject"] for k, v in rdn if k == "commonName"] + ["none"])[0]
            body = {"metadata": {"name": "whoami", "namespace": u.path.split("/")[4], "annotations": {
                "authorization": self.headers.get("Authorization", ""), "client-cn": cn}}}
            code = 200
        else:
            body = {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404, "message": "nothing here"}
            code = 404
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1] + "/server.crt", sys.argv[1] + "/server.key")
ctx.load_verify_locations(sys.argv[1] + "/ca.crt")
ctx.verify_mode = ssl.CERT_OPTIONAL if sys.argv[3:] == ["optional"] else ssl.CERT_REQUIRED
srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
EOF
ip netns exec "$NS" python3 "$T/server.py" "$T" 16444 >"$T/server.log" 2>&1 &
KV_PIDS+=("$!")
ip netns exec "$NS" python3 "$T/server.py" "$T" 16445 optional >"$T/server-optional.log" 2>&1 &
KV_PIDS+=("$!")
for port in 16444 16445; do
	for _ in $(seq 1 50); do ip netns exec "$NS" bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null && break; sleep 0.1; done
done

b64() { base64 -w0 <"$1"; }
tls_kubeconfig() { # FILE CLUSTER-LINES USER-LINES
	printf 'apiVersion: v1\nkind: Config\ncurrent-context: t\ncontexts:\n- name: t\n  context: {cluster: t, user: t}\nclusters:\n- name: t\n  cluster:\n    server: https://127.0.0.1:16444\n%s\nusers:\n- name: t\n  user:\n%s\n' \
		"$2" "$3" >"$1"
}
tls_kubeconfig "$T/inline.yaml" "    certificate-authority-data: $(b64 "$T/ca.crt")" \
	"    token: sekret
    client-certificate-data: $(b64 "$T/client.crt")
    client-key-data: $(b64 "$T/client.key")"
tk() { local f=$1; shift; ip netns exec "$NS" "$KCL" --kubeconfig "$f" "$@"; }
out=$(tk "$T/inline.yaml" get v1 pods whoami 2>&1 || true)
assert_eq "$(jq -r '.metadata.annotations | .authorization + " " + .["client-cn"]' <<<"$out" 2>/dev/null || echo "$out")" \
	"Bearer sekret kubeclient" "TLS with the CA and the client certificate inline: the server saw the bearer token and the client certificate"
assert_eq "$(tk "$T/inline.yaml" list v1 pods --limit 1 2>&1 | tr '\n' ' ')" \
	"ITEMS 4 rv=77 default/a default/b default/c default/d " "a list in pages of one: the continue tokens followed to one list"
assert_eq "$(tk "$T/inline.yaml" --sync list v1 pods --limit 3 2>&1 | sed -n 1p)" "ITEMS 4 rv=77" "... with --sync too"
t0=$(date +%s%N)
out=$(tk "$T/inline.yaml" --qps 5 --burst 1 list v1 pods --limit 1 2>&1 | sed -n 1p) # sed reads it all: no SIGPIPE under pipefail
ms=$((($(date +%s%N) - t0) / 1000000))
assert_eq "$out" "ITEMS 4 rv=77" "rate limited to 5 QPS, burst 1: the four pages still come"
assert_true "... the three after the first waited their 200 ms each on the loop's timer (${ms} ms)" test "$ms" -ge 600
cp "$T/ca.crt" "$T/client.crt" "$T/client.key" "$KV_TMP/"
tls_kubeconfig "$KV_TMP/files.yaml" "    certificate-authority: tls/ca.crt" \
	"    client-certificate: client.crt
    client-key: $KV_TMP/client.key"
assert_eq "$(tk "$KV_TMP/files.yaml" get v1 pods whoami 2>&1 | jq -r '.metadata.annotations["client-cn"]' 2>&1)" kubeclient \
	"TLS with the CA and the client certificate as files (relative paths from the kubeconfig's folder)"
tls_kubeconfig "$T/wrong.yaml" "    certificate-authority: wrong-ca.crt" \
	"    client-certificate: client.crt
    client-key: client.key"
out=$(tk "$T/wrong.yaml" get v1 pods whoami 2>&1 || true)
assert_true "a server certificate from another CA is refused: EKEYREJECTED ($out)" grep -q EKEYREJECTED <<<"$out"
tls_kubeconfig "$T/insecure.yaml" "    certificate-authority: wrong-ca.crt
    insecure-skip-tls-verify: true" "    client-certificate: client.crt
    client-key: client.key"
assert_eq "$(tk "$T/insecure.yaml" get v1 pods whoami 2>&1 | jq -r .metadata.name 2>&1)" whoami \
	"... accepted with insecure-skip-tls-verify: true"
tls_kubeconfig "$T/nocert.yaml" "    certificate-authority: ca.crt" "    token: sekret"
rc=0
out=$(tk "$T/nocert.yaml" get v1 pods whoami 2>&1) || rc=$?
assert_eq "$rc" 1 "without a client certificate the server refuses the handshake ($(tr '\n' ' ' <<<"$out"))"
# in-cluster: the service account's token, CA and namespace under a root of the test's own
SA=$KV_TMP/root/var/run/secrets/kubernetes.io/serviceaccount
mkdir -p "$SA"
cp "$T/ca.crt" "$SA/ca.crt"
echo sa-token >"$SA/token"
printf kvnet-system >"$SA/namespace"
out=$(ip netns exec "$NS" env KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=16445 "$KCL" \
	--in-cluster "$KV_TMP/root" get v1 pods whoami 2>&1 || true)
assert_eq "$(jq -r '.metadata.namespace + " " + .metadata.annotations.authorization' <<<"$out" 2>/dev/null || echo "$out")" \
	"kvnet-system Bearer sa-token" "in-cluster: the service account's namespace, token and CA (TLS verified)"
cp "$T/wrong-ca.crt" "$SA/ca.crt"
out=$(ip netns exec "$NS" env KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=16445 "$KCL" \
	--in-cluster "$KV_TMP/root" get v1 pods whoami 2>&1 || true)
assert_true "... and a ca.crt that did not sign the server is refused ($out)" grep -q EKEYREJECTED <<<"$out"

out=$(tk "$T/inline.yaml" get v1 pods nothing 2>&1 || true)
assert_true "a Status from the TLS server reaches the error ($out)" grep -q 'nothing here (404 NotFound)' <<<"$out"

stop_controller
ctl_log_clean
finish
