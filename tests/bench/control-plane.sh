#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Control plane at scale, "no-guest" mode: `kvnet-controller --embedded --nodes N` alone (no kvnet-node
# runs, so the launcher pods stay Pending and nothing boots; what is measured is the API, the store and
# the controllers: the VM controller, the scheduler, the migration controller). The controller runs in a
# network namespace of its own (kvcp-<random>, loopback only, removed on exit) with its state in a
# temporary directory; kubectl talks to it through the kubeconfig it writes.
#
#   1. one VM applied alone: from `kubectl apply` to its VMI Scheduled (the latency of a single object);
#   2. K VirtualMachines (kubevirt.io/v1, running: true, 10m CPU, 16Mi, a containerDisk, the pod network
#      with masquerade) in one `kubectl apply -f`: how long the apply takes, and from its start until
#      every VMI is Scheduled (polled with `kubectl get vmi`, no label selector); then the controller's RSS
#      and the CPU time it used over the whole run (its share of the wall time; kubectl has the rest), and its
#      longest pass over the store (0 when none took a second); with BENCH_CP_API=kube also the controller's writes
#      per VM (the API server's apiserver_request_total of POST/PUT/PATCH/DELETE, kubectl's creates taken off).
#
# Environment: KVNET_BUILD (default build), BENCH_CP_VMS (K, default 1000; BENCH_QUICK=1: 200),
# BENCH_CP_NODES (simulated nodes, 10), BENCH_CP_CONTROLLER (another kvnet-controller binary, to compare
# builds), BENCH_CP_FSYNC (0, the default: --no-fsync; 1: durable writes), BENCH_CP_STATE (where the
# state directory lives: tmpfs, the default, under /dev/shm; disk: under /tmp), BENCH_TIMEOUT (seconds to
# wait for the VMIs, 600), BENCH_CP_CTL_ARGS (more kvnet-controller arguments, split on blanks), BENCH_CP_LEADER
# (BENCH_CP_API=kube: 1, the default, runs the controller with --leader-elect as deploy/ does; 0 without). By default the disk is out of the figures: every change of the store is a new
# file renamed over the old one, and on an ext4 without a journal (this project's machines) each new inode
# is searched for past every inode freed in the last seconds, a kernel cost that grows with the burst and
# hides the controller's own. BENCH_CP_API=kube runs the same against the real kube-apiserver + etcd (test peers,
# make test-deps; tests/integration/lib-kapi.sh, in a network namespace of its own) with kvnet's CRDs, N Node objects
# registered with kubectl and `kvnet-controller --cluster` (its store a mirror of the API server's, every write the
# API server's): the same measures, side by side with the embedded API's in another run. Measures and prints;
# asserts nothing about time.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${KVNET_BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
CTL=${BENCH_CP_CONTROLLER:-$BUILD/bin/kvnet-controller}
K=${BENCH_CP_VMS:-}
[ -n "$K" ] || { [ "${BENCH_QUICK:-0}" = 1 ] && K=200 || K=1000; }
NODES=${BENCH_CP_NODES:-10}
TIMEOUT=${BENCH_TIMEOUT:-600}
[[ "$K" =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_CP_VMS must be a positive integer, got '$K'" >&2; exit 2; }
[[ "$NODES" =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_CP_NODES must be a positive integer, got '$NODES'" >&2; exit 2; }
API=${BENCH_CP_API:-embedded}
[[ "$API" =~ ^(embedded|kube)$ ]] || { echo "BENCH_CP_API must be embedded or kube, got '$API'" >&2; exit 2; }
STATE_ON=${BENCH_CP_STATE:-tmpfs}
[[ "$STATE_ON" =~ ^(tmpfs|disk)$ ]] || { echo "BENCH_CP_STATE must be tmpfs or disk, got '$STATE_ON'" >&2; exit 2; }
for c in kubectl jq curl; do
	command -v "$c" >/dev/null || { echo "SKIP control-plane bench: $c not installed"; exit 0; }
done
[ -x "$CTL" ] || { echo "SKIP control-plane bench: $CTL not built (make)"; exit 0; }

SUF=$(printf '%04x%04x' $RANDOM $RANDOM)
NS=kvcp-$SUF
WORK=$(mktemp -d /tmp/kvnet-bench-cp.XXXXXX)
STATE=$WORK/state
[ "$STATE_ON" = tmpfs ] && STATE=$(mktemp -d /dev/shm/kvnet-bench-cp.XXXXXX)
PORT=16443
KCFG=$WORK/kubeconfig
CTL_PID=""
cleanup() {
	set +e
	[ -n "$CTL_PID" ] && kill -KILL "$CTL_PID" 2>/dev/null && wait "$CTL_PID" 2>/dev/null
	[ "$API" = kube ] || ip netns del "$NS" 2>/dev/null
	rm -rf "$WORK" "$STATE"
}
if [ "$API" = kube ]; then # lib.sh's cleanup (the API server, etcd, their namespace), then ours
	source "$ROOT/tests/integration/lib.sh"
	source "$ROOT/tests/integration/lib-kapi.sh"
	kv_init
	require_cmd openssl
	require_peer ETCD etcd
	require_peer APISERVER kube-apiserver
	at_exit cleanup
else
	trap cleanup EXIT
	trap 'exit 130' INT TERM
fi
say() { echo "[control-plane] $*" >&2; }
die() {
	say "error: $*"
	exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
k() { ip netns exec "$NS" env KUBECONFIG="$KCFG" kubectl "$@"; }
# how many VMIs are Scheduled (all of them listed, no selector)
scheduled() {
	k get vmi -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' 2>/dev/null | grep -c '^Scheduled$'
}

fsync=(--no-fsync)
[ "${BENCH_CP_FSYNC:-0}" = 1 ] && fsync=()
# every node takes its share of the VMIs with room to spare: 10m and 16Mi each
per_node=$(((K + NODES - 1) / NODES))
node_cpu="$((per_node * 10 * 2 + 1000))m"
node_mem="$((per_node * 16 * 2 + 1024))Mi"
if [ "$API" = kube ]; then
	kapi_up || die "kube-apiserver + etcd did not start (see $KV_TMP/apiserver.log)"
	kapi_crd "$ROOT"/deploy/crds/*.yaml
	for i in $(seq 1 "$NODES"); do
		printf '%s\n' "apiVersion: v1" "kind: Node" \
			"metadata: {name: node$i, labels: {kubernetes.io/hostname: node$i, kubevirt.io/schedulable: \"true\"}}"
		[ "$i" = "$NODES" ] || echo ---
	done | k apply -f - >/dev/null || die "cannot register the Node objects"
	for i in $(seq 1 "$NODES"); do
		k patch node "node$i" --subresource=status --type=merge -p "{\"status\": {
			\"capacity\": {\"cpu\": \"$node_cpu\", \"memory\": \"$node_mem\", \"pods\": \"$((per_node * 2 + 10))\"},
			\"allocatable\": {\"cpu\": \"$node_cpu\", \"memory\": \"$node_mem\", \"pods\": \"$((per_node * 2 + 10))\"},
			\"conditions\": [{\"type\": \"Ready\", \"status\": \"True\", \"reason\": \"KubeletReady\"}]}}" >/dev/null ||
			die "cannot set node$i's status"
	done
	# with leader election, as deploy/'s Deployment runs it (its Lease in kvnet-system)
	lead=(--leader-elect)
	[ "${BENCH_CP_LEADER:-1}" = 1 ] || lead=()
	k apply -f "$ROOT/deploy/00-namespace.yaml" >/dev/null || die "cannot create the kvnet-system namespace"
	# shellcheck disable=SC2086 # the extra arguments are split on blanks on purpose
	ip netns exec "$NS" "$CTL" --cluster --kubeconfig "$KCFG" "${lead[@]}" ${BENCH_CP_CTL_ARGS:-} \
		>"$WORK/controller.log" 2>&1 &
	CTL_PID=$!
	for _ in $(seq 1 200); do
		grep -q "every informer listed" "$WORK/controller.log" && break
		kill -0 "$CTL_PID" 2>/dev/null || break
		sleep 0.1
	done
	grep -q "every informer listed" "$WORK/controller.log" || {
		tail -n 20 "$WORK/controller.log" >&2
		die "kvnet-controller --cluster did not sync"
	}
else
	ip netns add "$NS" || die "cannot create the network namespace $NS"
	ip -n "$NS" link set lo up
	ip netns exec "$NS" "$CTL" --embedded --listen "127.0.0.1:$PORT" --state-dir "$STATE" --kubeconfig "$KCFG" \
		--nodes "$NODES" --node-cpu "$node_cpu" --node-memory "$node_mem" "${fsync[@]}" >"$WORK/controller.log" 2>&1 &
	CTL_PID=$!
	for _ in $(seq 1 100); do
		ip netns exec "$NS" curl -sfk "https://127.0.0.1:$PORT/version" >/dev/null 2>&1 && break
		kill -0 "$CTL_PID" 2>/dev/null || break
		sleep 0.1
	done
	ip netns exec "$NS" curl -sfk "https://127.0.0.1:$PORT/version" >/dev/null 2>&1 || {
		tail -n 20 "$WORK/controller.log" >&2
		die "kvnet-controller did not start"
	}
fi

vm() { # vm NAME: one VirtualMachine document
	cat <<EOF
---
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata:
  name: $1
spec:
  running: true
  template:
    spec:
      domain:
        devices:
          disks:
          - {name: root, disk: {bus: virtio}}
          interfaces:
          - {name: default, masquerade: {}}
        resources:
          requests: {cpu: 10m, memory: 16Mi}
      networks:
      - {name: default, pod: {}}
      volumes:
      - {name: root, containerDisk: {image: kvnet.local/demo-guest:latest}}
EOF
}

# ---------------------------------------------------------------- one VM alone
vm cp-single >"$WORK/single.yaml"
t0=$(now)
k apply -f "$WORK/single.yaml" >"$WORK/single.out" 2>&1 || { cat "$WORK/single.out" >&2; die "kubectl apply of one VM failed"; }
one=""
for _ in $(seq 1 200); do
	if [ "$(k get vmi cp-single -o jsonpath='{.status.phase}' 2>/dev/null)" = Scheduled ]; then
		one=$(since "$t0")
		break
	fi
	sleep 0.05
done
[ -n "$one" ] || die "the single VM's VMI was not Scheduled within 10 s"
say "one VM: Scheduled ${one} s after kubectl apply started"

# The writes the API server served (its apiserver_request_total: POST, PUT, PATCH, DELETE; not the leases' renewals),
# kube mode only: the controller's requests per VM are what the K VMs add beyond kubectl's K creates.
api_writes() {
	[ "$API" = kube ] || { echo 0; return; }
	k get --raw /metrics 2>/dev/null | awk '/^apiserver_request_total\{/ && /verb="(POST|PUT|PATCH|DELETE)"/ &&
		!/resource="leases"/ { n += $NF } END { printf "%d", n }'
}

# ---------------------------------------------------------------- K VMs in one apply
for i in $(seq 1 "$K"); do vm "cp-vm-$i"; done >"$WORK/vms.yaml"
writes0=$(api_writes)
total=$((K + 1))
say "$K VMs in one kubectl apply (${NODES} nodes of $node_cpu CPU, $node_mem)"
t0=$(now)
k apply -f "$WORK/vms.yaml" >"$WORK/apply.out" 2>&1 || { tail -n 5 "$WORK/apply.out" >&2; die "kubectl apply failed"; }
apply_s=$(since "$t0")
say "kubectl apply returned after $apply_s s ($(grep -c ' created$' "$WORK/apply.out") created)"
all_s="" n=0
while :; do
	n=$(scheduled)
	if [ "$n" -ge "$total" ]; then
		all_s=$(since "$t0")
		break
	fi
	kill -0 "$CTL_PID" 2>/dev/null || die "kvnet-controller exited"
	[ "$(since "$t0" | cut -d. -f1)" -lt "$TIMEOUT" ] || break
	sleep 0.2
done
writes_per_vm=-
if [ "$API" = kube ] && [ -n "$all_s" ]; then
	sleep 2 # the VMs' last status writes after their VMIs' Scheduled
	writes_per_vm=$(awk -v a="$writes0" -v b="$(api_writes)" -v k="$K" 'BEGIN { printf "%.1f", (b - a - k) / k }')
fi
rss_mb=- cpu_s=- exited=0
if kill -0 "$CTL_PID" 2>/dev/null; then
	rss_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$CTL_PID/status")
	# the controller's CPU time (user + system) for the whole run: what the apply cost on the server's side
	cpu_s=$(awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$CTL_PID/stat")
	rss_mb=$(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k / 1024 }')
else
	exited=1
	say "kvnet-controller exited during the run: $(grep -E 'err|lost' "$WORK/controller.log" | tail -n 1)"
fi
# the longest pass of the controllers (they log a pass of a second or more), 0 when none took that long
pass_s=$(awk '/a pass took [0-9]+ ms/ { for (i = 1; i < NF; i++) if ($i == "took") { v = $(i + 1) / 1000; if (v > m) m = v } }
	END { printf "%.2f", m }' "$WORK/controller.log")
[ -n "$all_s" ] || say "timeout: $n of $total VMIs Scheduled after $TIMEOUT s"

if [ "$API" = kube ]; then
	echo "== Control plane at scale (no-guest mode: the real kube-apiserver + etcd, kvnet-controller --cluster, $NODES Node objects, no kvnet-node)"
else
	echo "== Control plane at scale (no-guest mode: kvnet-controller --embedded --nodes $NODES, no kvnet-node; state on $STATE_ON)"
fi
printf '%-28s %10s\n' measure value
printf '%-28s %10s\n' "VMs in one apply" "$K" "kubectl apply (s)" "$apply_s" "all VMIs Scheduled (s)" "${all_s:-timeout}" \
	"one VM Scheduled (s)" "$one" "controller CPU (s)" "$cpu_s" "controller RSS (MB)" "$rss_mb" \
	"longest pass (s, >= 1)" "$pass_s" "API writes per VM" "$writes_per_vm" "controller exited (1 = yes)" "$exited"
echo "CP_API=$API CP_VMS=$K CP_NODES=$NODES CP_FSYNC=${BENCH_CP_FSYNC:-0} CP_STATE=$STATE_ON CP_APPLY_S=$apply_s CP_ALL_SCHEDULED_S=${all_s:-timeout} CP_ONE_SCHEDULED_S=$one CP_CPU_S=$cpu_s CP_RSS_MB=$rss_mb CP_LONGEST_PASS_S=$pass_s CP_API_WRITES_PER_VM=$writes_per_vm CP_CONTROLLER_EXITED=$exited"
[ -n "$all_s" ] && [ "$exited" = 0 ]
