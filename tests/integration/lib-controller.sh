# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Helpers of the kvnet-controller --embedded tests (test-controller-*.sh), sourced after lib.sh and kv_init:
# the controller runs in a network namespace of its own (its own loopback); kubectl and curl talk to it
# there through the kubeconfig it writes.
#   ctl_init [NS]             the namespace (NS: one the test made, e.g. the node's, so that programs run there reach
#                             the API on its loopback), paths, and a cleanup trap that kills a controller left running
#   start_controller [ARGS]   starts it (extra options such as --nodes 3) and waits until it answers
#   stop_controller           SIGTERM; asserts it exits 0 (no sanitizer report)
#   api METHOD PATH [ARGS]    curl: the body on stdout, the HTTP status in $(code)
#   k ARGS                    kubectl against it
#   ctl_kubectls              KUBECTLS: the kubectl on PATH, the newest installed beside it, kubectl 1.20
#   kk KUBECTL ARGS           that kubectl against it, with a discovery cache of its own
#   ctl_log_clean             asserts the controller log has no sanitizer report

CTL=$KV_BIN/kvnet-controller
PORT=16443
CTL_PID=""

ctl_init() {
	require_cmd curl kubectl
	require_file "$CTL"
	if [ -n "${1:-}" ]; then
		NS=$1
	else
		mkns NS ctl
	fi
	ip -n "$NS" link set lo up
	KCFG=$KV_TMP/kubeconfig
	STATE=$KV_TMP/state
	CTL_LOG=$KV_TMP/controller.log
	trap cleanup_ctl EXIT
}

start_controller() {
	ip netns exec "$NS" "$CTL" --embedded --listen "127.0.0.1:$PORT" --state-dir "$STATE" --kubeconfig "$KCFG" \
		--no-fsync --log-level debug "$@" >>"$CTL_LOG" 2>&1 &
	CTL_PID=$!
	for _ in $(seq 1 100); do
		# the code, not api's status: that is cat's, of a body file an earlier run may have left
		api GET /version >/dev/null 2>&1 || true
		[ "$(code)" = 200 ] && return 0
		kill -0 "$CTL_PID" 2>/dev/null || break
		sleep 0.1
	done
	tail -n 20 "$CTL_LOG"
	die "kvnet-controller did not start"
}

stop_controller() { # stops it and checks it exited cleanly
	kill -TERM "$CTL_PID"
	local rc=0
	wait "$CTL_PID" || rc=$?
	CTL_PID=""
	assert_eq "$rc" 0 "kvnet-controller exits 0 on SIGTERM (no sanitizer report)"
}

# api METHOD PATH [curl args...]: the HTTP body on stdout, the status code in $KV_TMP/code; over HTTPS (the API's
# certificate in its state dir), with its bearer token (the state dir's 'token', also in the kubeconfig) unless
# API_TOKEN is set ("" sends none)
api() {
	local m=$1 p=$2 tok auth=()
	shift 2
	tok=${API_TOKEN-$(cat "$STATE/token" 2>/dev/null || true)}
	[ -n "$tok" ] && auth=(-H "Authorization: Bearer $tok")
	ip netns exec "$NS" curl -s --cacert "$STATE/api.crt" -o "$KV_TMP/body" -w '%{http_code}' -X "$m" \
		"https://127.0.0.1:$PORT$p" "${auth[@]}" "$@" >"$KV_TMP/code"
	cat "$KV_TMP/body"
}
code() { cat "$KV_TMP/code"; }
k() { ip netns exec "$NS" env KUBECONFIG="$KCFG" kubectl "$@"; }

ctl_kubectls() {
	# the kubectl on PATH (a dispatcher may pick one matching the server), the newest one installed beside it
	KUBECTLS=(kubectl)
	local newest old=${KVNET_KUBECTL_OLD:-/usr/local/lib/kvnet/kubectl-1.20}
	newest=$(ls /usr/lib/google-cloud-sdk/bin/kubectl.1.* 2>/dev/null | sort -V | tail -n 1 || true)
	[ -n "$newest" ] && KUBECTLS+=("$newest")
	if [ -x "$old" ]; then
		KUBECTLS+=("$old")
	else
		log "no kubectl 1.20 at $old (scripts/deps.sh installs it): testing the newer ones only"
	fi
}

kk() {
	local bin=$1
	shift
	ip netns exec "$NS" env KUBECONFIG="$KCFG" HOME="$KV_TMP/home-$(basename "$bin")" "$bin" "$@"
}

cleanup_ctl() {
	local rc=$?
	set +e # else the `(exit "$rc")` below ends a failed test here, before kv_cleanup's hooks and namespaces
	if [ -n "$CTL_PID" ]; then
		kill -KILL "$CTL_PID" 2>/dev/null || true
	fi
	(exit "$rc")
	kv_cleanup
}

ctl_log_clean() {
	if grep -Eq 'Sanitizer|runtime error:' "$CTL_LOG"; then
		fail "controller log free of sanitizer reports"
		grep -E -A20 'Sanitizer|runtime error:' "$CTL_LOG" | head -40
	else
		pass "controller log free of sanitizer reports"
	fi
}
