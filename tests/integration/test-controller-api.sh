#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kvnet-controller --embedded serves the Kubernetes API subset kubectl needs for kvnet's resources.
# The controller runs in a network namespace of its own (its own loopback); kubectl and curl talk to it
# there through the kubeconfig it writes. Asserts: discovery (kubectl api-resources shows the kubevirt.io
# and k8s.cni.cncf.io kinds with their short names), kubectl apply creates / leaves unchanged /
# configures a VirtualMachine (uid, generation), the VM controller gives a running VM its VMI (owned,
# Pending) and takes it away when stopped or deleted, get -o json, merge patch, label + label selector, a
# watch that sees the changes, JSON patch, strategic merge patch refused with a clear message, delete;
# objects and
# the resourceVersion survive a restart, a watch from before the restart gets 410 Expired; bad input
# (malformed JSON, wrong kind, namespace mismatch, invalid name, oversized body, unknown resource) gets
# a Status naming the problem and changes nothing; a non-loopback --listen is refused; the controller
# exits cleanly on SIGTERM (sanitizer build).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-controller.sh"

kv_init
ctl_init

start_controller
log "kubectl: $(k version --client 2>/dev/null | head -n 1)"

# ---------------------------------------------------------------- discovery
assert_eq "$(api GET /version | jq -r .gitVersion)" "v1.28.0+kvnet" "/version answers"
assert_eq "$(api GET /apis | jq -r '[.groups[].name] | sort | join(",")')" "k8s.cni.cncf.io,kubevirt.io,subresources.kubevirt.io" \
	"/apis lists kubevirt.io, k8s.cni.cncf.io and subresources.kubevirt.io"
k api-resources >"$KV_TMP/res" 2>&1 || true
assert_true "kubectl api-resources shows virtualmachines (vm, vms)" grep -Eq '^virtualmachines +vm,vms +kubevirt.io/v1 +true +VirtualMachine' "$KV_TMP/res"
assert_true "... virtualmachineinstancemigrations and network-attachment-definitions" \
	bash -c "grep -q '^virtualmachineinstancemigrations ' '$KV_TMP/res' && grep -q '^network-attachment-definitions ' '$KV_TMP/res'"

# ---------------------------------------------------------------- apply / get / patch / watch / delete
cat >"$KV_TMP/vm.yaml" <<'EOF'
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: web
  labels: {app: web}
spec:
  running: false
  template:
    spec:
      domain:
        devices:
          interfaces:
          - name: default
            masquerade: {}
        resources:
          requests: {memory: 128Mi}
      networks:
      - name: default
        pod: {}
EOF
assert_eq "$(k apply -f "$KV_TMP/vm.yaml" 2>&1)" "virtualmachine.kubevirt.io/web created" "kubectl apply creates the VM"
assert_eq "$(k apply -f "$KV_TMP/vm.yaml" 2>&1)" "virtualmachine.kubevirt.io/web unchanged" "applying it again changes nothing"
vm=$(k get vm web -o json)
assert_eq "$(jq -r '.metadata.uid | length' <<<"$vm")" 36 "the server gave it a uid"
assert_eq "$(jq -r '.metadata.generation' <<<"$vm")" 1 "generation 1"
assert_eq "$(jq -r '.spec.template.spec.networks[0].name' <<<"$vm")" default "the spec came through"
uid=$(jq -r .metadata.uid <<<"$vm")
rv0=$(jq -r .metadata.resourceVersion <<<"$vm")

k get vm -w -o json >"$KV_TMP/watch.out" 2>&1 &
WPID=$!
KV_PIDS+=("$WPID")
sleep 1
sed -i 's/running: false/running: true/' "$KV_TMP/vm.yaml"
assert_eq "$(k apply -f "$KV_TMP/vm.yaml" 2>&1)" "virtualmachine.kubevirt.io/web configured" "kubectl apply of a changed spec"
vm=$(k get vm web -o json)
assert_eq "$(jq -r '.spec.running' <<<"$vm")" true "... is stored"
assert_eq "$(jq -r '.metadata.generation' <<<"$vm")" 2 "... as generation 2"
assert_eq "$(jq -r '.metadata.uid' <<<"$vm")" "$uid" "... of the same object (uid)"
# the VirtualMachine controller: running -> its VMI (Pending until a node runs it), stopped -> gone
for _ in $(seq 1 30); do k get vmi web >/dev/null 2>&1 && break; sleep 0.1; done
vmi=$(k get vmi web -o json 2>/dev/null || echo '{}')
assert_eq "$(jq -r '.metadata.ownerReferences[0].kind + "/" + .metadata.ownerReferences[0].uid' <<<"$vmi")" \
	"VirtualMachine/$uid" "running: true gave the VM its VirtualMachineInstance, owned by it"
assert_eq "$(jq -r '.status.phase' <<<"$vmi")" Pending "... Pending (no node runs it yet)"
assert_eq "$(jq -c '.spec.networks' <<<"$vmi")" '[{"name":"default","pod":{}}]' "... with the template's spec"
assert_eq "$(k get vm web -o jsonpath='{.status.printableStatus}/{.status.created}')" "Starting/true" \
	"the VM's status says Starting, created"
k get vm web >"$KV_TMP/table" 2>&1 || true
assert_true "kubectl get vm prints KubeVirt's columns: $(tr -s ' \n' ' ' <"$KV_TMP/table")" \
	grep -Eq '^web +[0-9]+s +Starting +False' "$KV_TMP/table"
k get vmi >"$KV_TMP/table" 2>&1 || true
assert_true "kubectl get vmi prints PHASE, IP, NODENAME: $(tr -s ' \n' ' ' <"$KV_TMP/table")" \
	bash -c "grep -Eq '^NAME +AGE +PHASE +IP +NODENAME +READY' '$KV_TMP/table' && grep -Eq '^web +[0-9]+s +Pending' '$KV_TMP/table'"
# a node reporting through the status subresource: only .status changes, and the VM follows
VMIS=/apis/kubevirt.io/v1/namespaces/default/virtualmachineinstances
api PATCH "$VMIS/web/status" -H 'Content-Type: application/merge-patch+json' \
	--data '{"spec":{"domain":{}},"status":{"phase":"Running","nodeName":"node1","interfaces":[{"ipAddress":"10.88.0.5"}]}}' >"$KV_TMP/st"
assert_eq "$(code)/$(jq -r '.status.phase + " " + .status.nodeName' "$KV_TMP/st")" "200/Running node1" \
	"PATCH .../status sets the VMI's status"
assert_eq "$(k get vmi web -o json | jq -c '.spec.networks')" '[{"name":"default","pod":{}}]' "... and nothing else (spec unchanged)"
for _ in $(seq 1 30); do [ "$(k get vm web -o jsonpath='{.status.printableStatus}')" = Running ] && break; sleep 0.1; done
assert_eq "$(k get vm web -o jsonpath='{.status.printableStatus}/{.status.ready}')" "Running/true" \
	"the VM's status follows its VMI: Running, ready"
k get vmi web >"$KV_TMP/table" 2>&1 || true
assert_true "kubectl get vmi shows the IP and the node: $(tr -s ' \n' ' ' <"$KV_TMP/table")" \
	grep -Eq '^web +[0-9]+s +Running +10\.88\.0\.5 +node1' "$KV_TMP/table"
api PUT "$VMIS/web/status" -H 'Content-Type: application/json' --data '{"status":7}' >"$KV_TMP/st"
assert_eq "$(code)" 422 "a status that is not an object: 422"
assert_eq "$(k patch vm web --type merge -p '{"spec":{"running":false}}' 2>&1)" "virtualmachine.kubevirt.io/web patched" \
	"kubectl patch --type merge"
for _ in $(seq 1 30); do k get vmi web >/dev/null 2>&1 || break; sleep 0.1; done
assert_false "running: false deleted the VMI" bash -c "ip netns exec $NS env KUBECONFIG=$KCFG kubectl get vmi web >/dev/null 2>&1"
assert_eq "$(k get vm web -o jsonpath='{.status.printableStatus}')" "Stopped" "the VM's status says Stopped"
assert_eq "$(k get vm web -o jsonpath='{.spec.running}')" false "... took effect"
k label vm web tier=db >/dev/null
assert_eq "$(k get vms -l tier=db -o name)" "virtualmachine.kubevirt.io/web" "label selector tier=db finds it"
assert_eq "$(k get vms -l tier=web -o name 2>/dev/null)" "" "label selector tier=web finds nothing"
out=$(k patch vm web -p '{"spec":{"running":true}}' 2>&1 || true)
assert_true "a strategic merge patch is refused, naming the merge patch that works ($out)" \
	grep -q "merge-patch+json" <<<"$out"
sleep 0.5
kill "$WPID" 2>/dev/null || true
wait "$WPID" 2>/dev/null || true
assert_true "kubectl get -w saw the applied change, the patch and the label" \
	bash -c "jq -s -e '([.[].spec.running] | reduce .[] as \$x ([]; if length > 0 and .[-1] == \$x then . else . + [\$x] end)) == [false, true, false] and (.[-1].metadata.labels.tier == \"db\")' '$KV_TMP/watch.out' >/dev/null"

# ---------------------------------------------------------------- bad input changes nothing
rv1=$(api GET /apis/kubevirt.io/v1/namespaces/default/virtualmachines | jq -r .metadata.resourceVersion)
VMS=/apis/kubevirt.io/v1/namespaces/default/virtualmachines
api POST "$VMS" -H 'Content-Type: application/json' --data '{"metadata": {' >"$KV_TMP/st"
assert_eq "$(code)" 400 "malformed JSON: 400"
assert_true "... the Status says what is wrong ($(jq -r .message "$KV_TMP/st"))" jq -e '.kind == "Status" and (.message | test("JSON|parse|json"))' "$KV_TMP/st"
api POST "$VMS" -H 'Content-Type: application/json' --data '{"apiVersion":"kubevirt.io/v1","kind":"Pod","metadata":{"name":"x"}}' >"$KV_TMP/st"
assert_eq "$(code)/$(jq -r .reason "$KV_TMP/st")" "422/Invalid" "wrong kind: 422 Invalid"
assert_true "... naming the field and the value" grep -q "'kind' must be 'VirtualMachine' here, got 'Pod'" "$KV_TMP/st"
api POST "$VMS" -H 'Content-Type: application/json' --data '{"metadata":{"name":"x","namespace":"prod"}}' >"$KV_TMP/st"
assert_true "namespace mismatch: 422 naming both" grep -q "'metadata.namespace' 'prod' does not match the namespace of the request 'default'" "$KV_TMP/st"
api POST "$VMS" -H 'Content-Type: application/json' --data '{"metadata":{"name":"Bad_Name"},"spec":{"template":{}}}' >"$KV_TMP/st"
assert_true "invalid name: 422 naming it" grep -q "metadata.name: 'Bad_Name' is not a valid name" "$KV_TMP/st"
head -c $((4 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$KV_TMP/big"
api POST "$VMS" -H 'Content-Type: application/json' --data-binary "@$KV_TMP/big" >"$KV_TMP/st"
assert_eq "$(code)/$(jq -r .reason "$KV_TMP/st")" "413/RequestEntityTooLarge" "a 4 MiB body: 413"
api GET /apis/kubevirt.io/v1/namespaces/default/pods >"$KV_TMP/st"
assert_eq "$(code)/$(jq -r .reason "$KV_TMP/st")" "404/NotFound" "an unknown resource: 404 NotFound"
api GET "$VMS/nosuch" >"$KV_TMP/st"
assert_true "an unknown VM: 404 naming it" grep -q '"nosuch\\" not found' "$KV_TMP/st"
api PUT "$VMS/web" -H 'Content-Type: application/json' \
	--data "{\"metadata\":{\"name\":\"web\",\"resourceVersion\":\"$rv0\"},\"spec\":{\"template\":{}}}" >"$KV_TMP/st"
assert_eq "$(code)/$(jq -r .reason "$KV_TMP/st")" "409/Conflict" "an update with a stale resourceVersion: 409 Conflict"
assert_eq "$(api GET "$VMS" | jq -r .metadata.resourceVersion)" "$rv1" "none of it changed the store (resourceVersion $rv1)"
assert_eq "$(api GET "$VMS" | jq -r '[.items[].metadata.name] | join(",")')" "web" "... nor created anything"

printf 'apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata: {name: bad}\nspec: {running: true, runStrategy: Always, template: {}}\n' >"$KV_TMP/bad.yaml"
out=$(k apply -f "$KV_TMP/bad.yaml" 2>&1 || true)
assert_true "kubectl apply of a VM with both running and runStrategy is refused, naming both ($out)" \
	grep -q "'spec.running' and 'spec.runStrategy' are mutually exclusive" <<<"$out"

# ---------------------------------------------------------------- restart: objects persist, old watches relist
stop_controller
start_controller
assert_eq "$(k get vm web -o jsonpath='{.metadata.uid}')" "$uid" "after a restart the VM is still there (same uid)"
assert_eq "$(api GET "$VMS" | jq -r .metadata.resourceVersion)" "$rv1" "... and the resourceVersion did not go back"
api GET "$VMS?watch=1&resourceVersion=$rv0" --max-time 3 >"$KV_TMP/w410" || true
assert_true "a watch from before the restart gets ERROR 410 Expired (relist)" \
	jq -e 'select(.type == "ERROR") | .object.code == 410 and .object.reason == "Expired"' "$KV_TMP/w410"
assert_eq "$(k patch vm web --type json -p '[{"op":"test","path":"/spec/running","value":false},{"op":"replace","path":"/spec/running","value":true}]' 2>&1)" \
	"virtualmachine.kubevirt.io/web patched" "kubectl patch --type json (test + replace)"
out=$(k patch vm web --type json -p '[{"op":"remove","path":"/spec/nosuch"}]' 2>&1 || true)
assert_true "a JSON patch on a missing path is refused, naming the operation ($out)" grep -q "operation 0 (remove /spec/nosuch)" <<<"$out"
for _ in $(seq 1 30); do k get vmi web >/dev/null 2>&1 && break; sleep 0.1; done
assert_eq "$(k get vmi web -o jsonpath='{.status.phase}' 2>&1)" Pending "running again: the VMI is back"
assert_eq "$(k delete vm web 2>&1)" 'virtualmachine.kubevirt.io "web" deleted' "kubectl delete"
for _ in $(seq 1 30); do k get vmi web >/dev/null 2>&1 || break; sleep 0.1; done
assert_false "... and its VMI went with it" bash -c "ip netns exec $NS env KUBECONFIG=$KCFG kubectl get vmi web >/dev/null 2>&1"
assert_true "... it is gone" bash -c "! ip netns exec $NS env KUBECONFIG=$KCFG kubectl get vm web >/dev/null 2>&1"
stop_controller

# ---------------------------------------------------------------- browsers and budgets
# A web page cannot write through the API: a text/plain body (what a page may send without asking) is refused, and
# so is any request naming a DNS name as its Host (a page whose name was rebound to the API's address); a watch
# beyond the budget (--max-watches) is answered 429, and one fits again once another ended.
start_controller --max-watches 2
api POST "$VMS" -H 'Content-Type: text/plain' --data-binary '{}' >/dev/null
assert_eq "$(code)" 415 "a text/plain POST: 415 UnsupportedMediaType"
out=$(api GET "$VMS" -H "Host: rebound.example:$PORT")
assert_eq "$(code)" 403 "a request with Host rebound.example: 403"
assert_true "... saying why" grep -q "is not an address of this API server" <<<"$out"
api POST "$VMS" -H "Host: rebound.example" -H 'Content-Type: application/json' --data-binary '{}' >/dev/null
assert_eq "$(code)" 403 "... a write too"
api GET /version -H "Host: localhost:$PORT" >/dev/null
assert_eq "$(code)" 200 "Host localhost: served"
api GET /version -H "Host: [::1]:$PORT" >/dev/null
assert_eq "$(code)" 200 "Host [::1]: served"
# A credential: every request but /version and the health checks carries the token of the kubeconfig
API_TOKEN="" api GET "$VMS" >/dev/null
assert_eq "$(code)" 401 "without the token: 401"
API_TOKEN=0000000000000000000000000000000000000000000000000000000000000000 api GET "$VMS" >/dev/null
assert_eq "$(code)" 401 "with another token: 401"
API_TOKEN="" api POST "$VMS" -H 'Content-Type: application/json' --data-binary '{}' >/dev/null
assert_eq "$(code)" 401 "a write without the token: 401"
API_TOKEN="" api GET /version >/dev/null
assert_eq "$(code)" 200 "/version without the token: served (as kube-apiserver's public info)"
assert_false "plain HTTP is not served (the token travels over TLS only)" \
	ip netns exec "$NS" curl -sf --max-time 5 "http://127.0.0.1:$PORT/version"
assert_eq "$(stat -c %a "$STATE/token")" 600 "the token file is 0600"
assert_eq "$(stat -c %a "$KCFG")" 600 "the kubeconfig holding it is 0600"
assert_true "the kubeconfig carries it" grep -q "token: $(cat "$STATE/token")" "$KCFG"
AUTH="Authorization: Bearer $(cat "$STATE/token")"
w1=$(ip netns exec "$NS" bash -c "curl -s -N --cacert '$STATE/api.crt' -H '$AUTH' 'https://127.0.0.1:$PORT$VMS?watch=1' >/dev/null 2>&1 & echo \$!")
w2=$(ip netns exec "$NS" bash -c "curl -s -N --cacert '$STATE/api.crt' -H '$AUTH' 'https://127.0.0.1:$PORT$VMS?watch=1' >/dev/null 2>&1 & echo \$!")
sleep 0.5
out=$(api GET "$VMS?watch=1" --max-time 2)
assert_eq "$(code)" 429 "a third watch with --max-watches 2: 429"
assert_true "... saying so" grep -q "too many watches open (2, at most 2)" <<<"$out"
kill "$w1" "$w2" 2>/dev/null || true
sleep 1.5 # the server finds idle watches whose client went away once a second
api GET "$VMS?watch=1" --max-time 1 >/dev/null || true
assert_eq "$(code)" 200 "once their clients went away (no change in between), a watch fits again"
stop_controller
out=$(ip netns exec "$NS" "$CTL" --embedded --max-watches 0 2>&1 || true)
assert_true "--max-watches 0 is refused, naming the range ($out)" grep -q "max-watches: 1..100000, got '0'" <<<"$out"

# ---------------------------------------------------------------- safe defaults
out=$(ip netns exec "$NS" "$CTL" --embedded --listen 0.0.0.0:$PORT --state-dir "$KV_TMP/s2" 2>&1 || true)
assert_true "a non-loopback --listen is refused: no authentication ($out)" grep -q "not a loopback address" <<<"$out"
out=$(ip netns exec "$NS" "$CTL" --listen 127.0.0.1:$PORT --state-dir "$KV_TMP/s2" 2>&1 || true)
assert_true "without --embedded or --cluster it says what exists ($out)" grep -q "one of --embedded .* and --cluster" <<<"$out"
out=$(ip netns exec "$NS" "$CTL" --embedded --cluster 2>&1 || true)
assert_true "... and both at once are refused too" grep -q "one of --embedded .* and --cluster" <<<"$out"
out=$(ip netns exec "$NS" "$CTL" --cluster --kubeconfig "$KV_TMP/none.kubeconfig" 2>&1 || true)
assert_true "--cluster with a missing kubeconfig: an error naming it ($out)" grep -q "none.kubeconfig" <<<"$out"
out=$(ip netns exec "$NS" "$CTL" --cluster --leader-elect-timing 3000 2>&1 || true)
assert_true "a bad --leader-elect-timing is refused, naming the form ($out)" grep -q "LEASE_MS,RENEW_MS,RETRY_MS" <<<"$out"

ctl_log_clean
finish
