# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Checks of kube/ (the Kubernetes client library) through tests/tools/kubeclient that run against any API
# server: test-kube-client (kvnet-controller --embedded) and test-kube-apiserver (the real kube-apiserver +
# etcd, test peers). Sourced after lib.sh; the caller sets NS (the namespace the server listens in), KCFG
# (its kubeconfig), KCL (the kubeclient binary) and defines k (kubectl with that kubeconfig).
#   kube_client_requests       create, get, list (selectors, --sync, all namespaces), AlreadyExists, NotFound,
#                              merge patch, 409 Conflict of a stale update, a fresh update, a pod's status
#                              subresource (status and labels taken, spec not); leaves the pods
#                              web-1 (app=web, tier=back), web-2 (app=web) and db-1 (app=db)
#   kube_client_delete         deletes db-1 (propagation, grace), a second delete is NotFound
#   kube_client_informer W     starts an informer on app=web pods writing to W (sets WPID), checks that it
#                              syncs, then follows kubectl's create / label / delete / create of web-3
#   kube_client_raw_watch_410  a watch from resourceVersion 1 is answered by ERROR 410 Expired

kc() { ip netns exec "$NS" "$KCL" --kubeconfig "$KCFG" "$@"; }
pod() { # NAME APP
	printf '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"%s","labels":{"app":"%s"}},"spec":{"containers":[{"name":"c","image":"busybox"}]}}' "$1" "$2"
}
# wait_line FILE REGEX [AFTER_LINE]: waits up to 10 s (WAIT_TENTHS tenths) for a line matching REGEX after line AFTER_LINE
wait_line() {
	local f=$1 re=$2 after=${3:-0}
	for _ in $(seq 1 "${WAIT_TENTHS:-100}"); do
		tail -n +$((after + 1)) "$f" | grep -Eq "$re" && return 0
		sleep 0.1
	done
	return 1
}
# stop_bg PID WHAT: SIGTERM, and the exit status must be 0 (sanitizer build: no leak, no report)
stop_bg() {
	local rc=0
	kill -TERM "$1"
	wait "$1" || rc=$?
	assert_eq "$rc" 0 "$2 exits 0 on SIGTERM (no sanitizer report)"
}


kube_client_requests() {
	out=$(kc create v1 pods "$(pod web-1 web)")
	assert_eq "$(jq -r '.metadata.name + " " + (.metadata.uid | length | tostring)' <<<"$out")" "web-1 36" \
		"create returns the stored object (with the server's uid)"
	kc create v1 pods "$(pod db-1 db)" >/dev/null
	kc --sync create v1 pods "$(pod web-2 web)" >/dev/null
	assert_eq "$(k get pods -o name | sort | tr '\n' ' ')" "pod/db-1 pod/web-1 pod/web-2 " "kubectl sees the three pods"
	assert_eq "$(kc get v1 pods web-1 | jq -r .metadata.labels.app)" web "get"
	assert_eq "$(kc list v1 pods -l app=web | tail -n +2 | sort | tr '\n' ' ')" "default/web-1 default/web-2 " \
		"list with labelSelector app=web"
	assert_eq "$(kc --sync list v1 pods -l 'app!=web' | tail -n +2)" default/db-1 "list with labelSelector app!=web (sync)"
	assert_eq "$(kc list v1 pods --field-selector metadata.name=web-2 | tail -n +2)" default/web-2 \
		"list with fieldSelector metadata.name=web-2"
	assert_eq "$(kc -A list v1 pods | head -n 1 | cut -d' ' -f1-2)" "ITEMS 3" "list across namespaces"
	out=$(kc create v1 pods "$(pod web-1 web)" 2>&1 || true)
	assert_true "creating it again: EEXIST, reason AlreadyExists ($out)" grep -q 'EEXIST reason=AlreadyExists' <<<"$out"
	out=$(kc get v1 pods nosuch 2>&1 || true)
	assert_true "get of a missing pod: ENOENT with the API's message ($out)" \
		grep -q "pods \"nosuch\" not found (404 NotFound) \[ENOENT reason=NotFound\]" <<<"$out"

	rv=$(kc get v1 pods web-1 | jq -r .metadata.resourceVersion)
	out=$(kc patch v1 pods web-1 '{"metadata":{"labels":{"tier":"front"}}}')
	assert_eq "$(jq -r .metadata.labels.tier <<<"$out")" front "merge patch adds a label"
	assert_eq "$(k get pod web-1 -o jsonpath='{.metadata.labels.app}/{.metadata.labels.tier}')" "web/front" \
		"... kubectl sees it, and the other label kept"
	stale=$(pod web-1 web | jq -c --arg rv "$rv" '.metadata.resourceVersion = $rv')
	rc=0
	out=$(kc update v1 pods web-1 "$stale" 2>&1) || rc=$?
	assert_eq "$rc" 1 "an update with the stale resourceVersion $rv fails"
	assert_true "... as EBUSY, reason Conflict, the distinct error to retry on ($out)" grep -q 'EBUSY reason=Conflict' <<<"$out"
	cur=$(kc get v1 pods web-1 | jq -r .metadata.resourceVersion)
	fresh=$(pod web-1 web | jq -c --arg rv "$cur" '.metadata.resourceVersion = $rv | .metadata.labels.tier = "back"')
	assert_eq "$(kc update v1 pods web-1 "$fresh" | jq -r .metadata.labels.tier)" back "an update with the current resourceVersion passes"
	assert_eq "$(k get pod web-1 -o jsonpath='{.metadata.labels.tier}')" back "... kubectl sees it"
	# the pod status subresource: kube-apiserver's pod status strategy keeps the body's metadata (labels,
	# annotations) but not its spec — what Multus writes network-status through
	out=$(kc update-status v1 pods web-1 "$(kc get v1 pods web-1 | jq -c '.status = {phase: "Running", podIP: "10.88.0.7"}')")
	assert_eq "$(jq -r .status.phase <<<"$out")" Running "update of /status"
	kc patch-status v1 pods web-1 '{"status":{"podIP":"10.88.0.9"},"metadata":{"labels":{"tier":"x"}},"spec":{"nodeName":"nowhere"}}' >/dev/null
	assert_eq "$(k get pod web-1 -o jsonpath='{.status.phase}/{.status.podIP}/{.metadata.labels.tier}/{.spec.nodeName}')" \
		"Running/10.88.0.9/x/" "merge patch of a pod's /status takes its status and labels, not its spec (kubectl)"
	kc patch-status v1 pods web-1 '{"metadata":{"labels":{"tier":"back"}}}' >/dev/null
	assert_eq "$(k get pod web-1 -o jsonpath='{.metadata.labels.tier}')" back "... and the label back"
}

kube_client_delete() {
	out=$(kc delete v1 pods db-1 --propagation Background --grace 0)
	assert_eq "$(jq -r .metadata.name <<<"$out")" db-1 "delete (propagationPolicy, gracePeriodSeconds)"
	assert_false "... kubectl no longer finds it" k get pod db-1
	out=$(kc delete v1 pods db-1 2>&1 || true)
	assert_true "a second delete: ENOENT ($out)" grep -q 'ENOENT reason=NotFound' <<<"$out"

}

kube_client_informer() { # W
	W=$1
	ip netns exec "$NS" "$KCL" --kubeconfig "$KCFG" watch v1 pods -l app=web --backoff-min 100 >"$W" 2>&1 &
	WPID=$!
	KV_PIDS+=("$WPID")
	assert_true "the informer lists and is synced with the two web pods" wait_line "$W" '^SYNCED 2 '
	assert_true "... then watches" wait_line "$W" '^STATE watching'
	cat >"$KV_TMP/web-3.yaml" <<-'EOF'
	apiVersion: v1
	kind: Pod
	metadata: {name: web-3, labels: {app: web}}
	spec:
	  containers: [{name: c, image: busybox}]
	EOF
	k apply -f "$KV_TMP/web-3.yaml" >/dev/null
	assert_true "kubectl apply: the informer sees ADDED" wait_line "$W" '^ADDED default/web-3 '
	k label pod web-3 tier=db >/dev/null
	assert_true "kubectl label: MODIFIED" wait_line "$W" '^MODIFIED default/web-3 '
	k delete pod web-3 >/dev/null
	assert_true "kubectl delete: DELETED" wait_line "$W" '^DELETED default/web-3 '
	k create -f "$KV_TMP/web-3.yaml" >/dev/null
}

kube_client_raw_watch_410() {
	out=$(ip netns exec "$NS" timeout 10 "$KCL" --kubeconfig "$KCFG" raw-watch v1 pods --resource-version 1 2>&1 || true)
	assert_true "a raw watch from resourceVersion 1: ERROR 410 Expired, then the end ($(tr '\n' ' ' <<<"$out"))" \
		bash -c "grep -q '^EVENT ERROR code=410 reason=Expired' <<<'$out' && grep -q '^END r=' <<<'$out'"
}
