#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# kubectl apply to first ping: what the API path (kubectl, the embedded API, the controller, the kvnet-node
# agent) adds to a VM's start, against starting the same launcher pod on the same node directly.
#   kubectl: scripts/kvnet-sim.sh up --nodes 1 (kept up across rounds); per round a fresh VirtualMachine
#            (bridge binding, 256Mi, scripts/lib/guest-vm.sh) applied with kubectl; the clock starts before
#            `kubectl apply`; Running = the first VMI watch event (`kubectl get vmi -w`, started before the
#            apply) with phase Running; ping = the first reply from the sim's client namespace
#            (ping -c1 -W0.05 in a loop, as vmboot.sh). Then `kubectl delete vm` and a wait until its pod
#            is gone.
#   direct:  the VMI of the same manifest started as a launcher pod on the same sim node through
#            build/tests/podrun (the node's pod runtime without the API: the agent's node options with
#            its own state dir, cache dir and sandbox prefix, so the agent leaves it alone); the clock
#            starts before podrun, which returns at Running; ping as above; then `podrun ... stop`.
# Rounds alternate kubectl, direct. Measures and prints; nothing here is a pass/fail test.
# Environment: KVNET_BUILD (default build), BENCH_APPLY_ROUNDS (5; BENCH_QUICK=1: 3).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export KVNET_BUILD=${KVNET_BUILD:-build}
case "$KVNET_BUILD" in /*) BUILD=$KVNET_BUILD ;; *) BUILD=$ROOT/$KVNET_BUILD ;; esac
ROUNDS=${BENCH_APPLY_ROUNDS:-5}
[ "${BENCH_QUICK:-0}" = 1 ] && [ -z "${BENCH_APPLY_ROUNDS:-}" ] && ROUNDS=3
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || { echo "BENCH_APPLY_ROUNDS must be a positive integer, got '$ROUNDS'" >&2; exit 2; }

skip() { echo "SKIP apply bench: $*"; exit 0; }
for c in qemu-system-x86_64 virsh socat jq unshare kubectl nsenter python3; do
	command -v "$c" >/dev/null || skip "$c not installed"
done
[ -x /usr/sbin/libvirtd ] || skip "libvirtd not installed"
PODRUN=$BUILD/tests/podrun
LAUNCHER=$BUILD/bin/kvnet-launcher
[ -x "$PODRUN" ] || skip "$PODRUN not built (make test-tools)"
for b in kvnet-launcher kvnet-node kvnet-controller; do [ -x "$BUILD/bin/$b" ] || skip "$BUILD/bin/$b not built (make)"; done
IMG=$("$ROOT/scripts/guest-image.sh" --quiet 2>/dev/null) || skip "scripts/guest-image.sh failed (no guest image)"

SIM=$ROOT/scripts/kvnet-sim.sh
SUF=$(printf '%04x' $RANDOM)
WORK=$(mktemp -d /tmp/kvba.XXXXXX) # short: the pods' unix sockets live under it
SIM_NAME=kvba-$SUF
SIM_DIR=$WORK/sim
IMAGES=$WORK/images
MEMORY=256Mi
# shellcheck source=scripts/lib/guest-vm.sh
source "$ROOT/scripts/lib/guest-vm.sh" # GUEST_REF, guest_vm_yaml
WATCH_PID=""
DIRECT_UIDS=()

say() { echo "[apply] $*" >&2; }
die() {
	say "error: $*"
	exit 1
}
cleanup() {
	set +e
	[ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null
	[ ${#DIRECT_UIDS[@]} -gt 0 ] && pr stop "${DIRECT_UIDS[@]}" >/dev/null 2>&1
	[ -d "$SIM_DIR" ] && "$SIM" down --name "$SIM_NAME" --dir "$SIM_DIR" >/dev/null 2>&1
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

"$LAUNCHER" image add "$GUEST_REF" --kernel "$(sed -n 's/^KVNET_GUEST_KERNEL=//p' <<<"$IMG")" \
	--initrd "$(sed -n 's/^KVNET_GUEST_INITRD=//p' <<<"$IMG")" --image-dir "$IMAGES" --replace >/dev/null ||
	die "kvnet-launcher image add $GUEST_REF failed"
say "scripts/kvnet-sim.sh up --nodes 1 ($SIM_NAME, KVNET_BUILD=$KVNET_BUILD)"
"$SIM" up --nodes 1 --name "$SIM_NAME" --dir "$SIM_DIR" --image-dir "$IMAGES" >"$WORK/up.out" 2>&1 || {
	tail -n 20 "$WORK/up.out" >&2
	die "kvnet-sim.sh up failed"
}
# shellcheck disable=SC1091
source "$SIM_DIR/sim.env" # API_NS, KUBECONFIG_FILE, CLIENT_NS
# shellcheck disable=SC1091
source "$SIM_DIR/cluster/cluster.env" # NODE1_NS, NODE1_SOCK
kc() { ip netns exec "$API_NS" env KUBECONFIG="$KUBECONFIG_FILE" HOME="$WORK/home" kubectl "$@"; }
for _ in $(seq 1 100); do grep -q 'watching its pods' "$SIM_DIR/node1-pods/agent.log" 2>/dev/null && break; sleep 0.1; done

# pr ARGS...: podrun with node1's pod runtime options as its kvnet-node has them (kvnet-sim.sh), but its own
# state dir, CNI cache and sandbox prefix, and the pod network's conflist alone (the node's kvnet-multus reads the
# pod from the API, and podrun's pod is in no API)
D=$SIM_DIR/node1-pods
mkdir -p "$WORK/direct/state" "$WORK/direct/cache" "$WORK/direct/conf"
cp "$D/conf/10-kvnet.conflist" "$WORK/direct/conf/"
pr() {
	"$PODRUN" --node-name node1 --node-netns "/run/netns/$NODE1_NS" --conf-dir "$WORK/direct/conf" --cni-path "$BUILD/bin" \
		--cache-dir "$WORK/direct/cache" --netd-socket "$NODE1_SOCK" --state-dir "$WORK/direct/state" \
		--launcher "$LAUNCHER" --libvirtd-starter "$ROOT/scripts/libvirt-node.sh" --sandbox-prefix "$SIM_NAME-d" \
		--image-dir "$IMAGES" "$@"
}
# wait_ping ADDR: 0 when ADDR answers from the client namespace within 60 s
wait_ping() {
	for _ in $(seq 1 1200); do
		ip netns exec "$CLIENT_NS" ping -c1 -W0.05 "$1" >/dev/null 2>&1 && return 0
	done
	return 1
}
# no_pods: the API has no pod and node1's agent no pod record
no_pods() {
	[ -z "$(kc get pods -o name 2>/dev/null)" ] && [ -z "$(find "$D/state/pods" -mindepth 1 -maxdepth 1 ! -name ".*" 2>/dev/null)" ]
}

# kubectl_round I: one VM through kubectl; appends to run_k/ping_k
kubectl_round() {
	local vm=ba-$1 t0 line ip="" tr="" end
	: >"$WORK/watch"
	# each event line with the time it arrived; $! is kubectl (ip netns exec and env exec it)
	kc get vmi -w --no-headers -o custom-columns=N:.metadata.name,P:.status.phase,IP:.status.interfaces[0].ipAddress \
		2>/dev/null > >(while read -r line; do echo "$(ms) $line"; done >"$WORK/watch") &
	WATCH_PID=$!
	sleep 0.5 # the watch is established
	guest_vm_yaml "$vm" bridge "" "" "$MEMORY" >"$WORK/$vm.yaml"
	t0=$(ms)
	kc apply -f "$WORK/$vm.yaml" >/dev/null || die "kubectl apply $vm failed"
	end=$((t0 + 120000))
	while [ "$(ms)" -lt "$end" ]; do
		line=$(awk -v vm="$vm" '$2 == vm && $3 == "Running" {print; exit}' "$WORK/watch")
		if [ -n "$line" ]; then
			tr=${line%% *}
			break
		fi
		sleep 0.02
	done
	[ -n "$tr" ] || die "kubectl $vm: no Running VMI within 120 s (agent log: $(tail -n 5 "$D/agent.log"))"
	ip=$(awk -v vm="$vm" '$2 == vm && $3 == "Running" && $4 != "<none>" {print $4; exit}' "$WORK/watch")
	[ -n "$ip" ] || ip=$(kc get vmi "$vm" -o jsonpath='{.status.interfaces[0].ipAddress}')
	wait_ping "$ip" || die "kubectl $vm: $ip does not answer"
	ping_k+=($(($(ms) - t0)))
	run_k+=($((tr - t0)))
	kill "$WATCH_PID" 2>/dev/null
	wait "$WATCH_PID" 2>/dev/null
	WATCH_PID=""
	kc delete vm "$vm" --wait=false >/dev/null
	for _ in $(seq 1 600); do no_pods && break; sleep 0.1; done
	no_pods || die "kubectl $vm: its pod is still there 60 s after the delete"
}

# direct_round I: the same VMI started with podrun; appends to run_d/ping_d
direct_round() {
	local vm=bd-$1 uid t0 t1 out ip
	uid=$(cat /proc/sys/kernel/random/uuid)
	{
		printf 'apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata: {name: %s, namespace: default}\nspec:\n' "$vm"
		guest_vm_yaml "$vm" bridge "" "" "$MEMORY" | sed -n '/^    spec:$/,$p' | sed '1d; s/^    //'
	} | python3 -c 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)' >"$WORK/$vm.json" # podrun reads JSON
	DIRECT_UIDS+=("$uid")
	t0=$(ms)
	out=$(pr run --namespace default --name "virt-launcher-$vm" --uid "$uid" --vmi "$WORK/$vm.json" --vm "default/$vm" \
		--binding bridge --detach 2>"$WORK/podrun.err") || die "podrun run $vm failed: $(tail -n 5 "$WORK/podrun.err")"
	t1=$(ms)
	ip=$(sed -n 's/^IP=//p' <<<"$out")
	wait_ping "$ip" || die "direct $vm: $ip does not answer"
	ping_d+=($(($(ms) - t0)))
	run_d+=($((t1 - t0)))
	pr stop "$uid" >/dev/null 2>&1 || say "podrun stop $uid failed"
	DIRECT_UIDS=()
}

run_k=() ping_k=() run_d=() ping_d=()
for i in $(seq 1 "$ROUNDS"); do
	kubectl_round "$i"
	direct_round "$i"
	say "round $i: kubectl Running ${run_k[-1]} ms, ping ${ping_k[-1]} ms; direct Running ${run_d[-1]} ms, ping ${ping_d[-1]} ms"
done

# pct P VALUES...: the P-th percentile (nearest rank; 50 = the median of an odd count)
pct() {
	local p=$1
	shift
	printf '%s\n' "$@" | sort -n | awk -v p="$p" '{a[NR]=$1} END {r=int((p*NR+99)/100); if (r<1) r=1; print a[r]}'
}
ratio() { jq -n "$1 / $2 * 1000 | round / 1000"; }
mrk=$(pct 50 "${run_k[@]}") mpk=$(pct 50 "${ping_k[@]}") mrd=$(pct 50 "${run_d[@]}") mpd=$(pct 50 "${ping_d[@]}")
echo "== kubectl apply to VMI Running and to the first ping (TCG, 1-node kvnet-sim, $ROUNDS rounds)"
printf '%-10s %12s %12s %12s %12s\n' mode "Running p50" "Running p90" "ping p50" "ping p90"
printf '%-10s %12s %12s %12s %12s\n' kubectl "$mrk" "$(pct 90 "${run_k[@]}")" "$mpk" "$(pct 90 "${ping_k[@]}")"
printf '%-10s %12s %12s %12s %12s\n' direct "$mrd" "$(pct 90 "${run_d[@]}")" "$mpd" "$(pct 90 "${ping_d[@]}")"
printf '%-10s %12s %12s %12s %12s\n' ratio "$(ratio "$mrk" "$mrd")" "" "$(ratio "$mpk" "$mpd")" ""
echo "   kubectl = kubectl apply of a VirtualMachine; direct = podrun run of its VMI on the same node (ms)"
echo "BENCH_APPLY MODE=kubectl ROUNDS=$ROUNDS RUNNING_MS=$(IFS=,; echo "${run_k[*]}") PING_MS=$(IFS=,; echo "${ping_k[*]}")"
echo "BENCH_APPLY MODE=direct ROUNDS=$ROUNDS RUNNING_MS=$(IFS=,; echo "${run_d[*]}") PING_MS=$(IFS=,; echo "${ping_d[*]}")"
echo "APPLY_RUNNING_MS=$mrk"
echo "APPLY_PING_MS=$mpk"
echo "DIRECT_RUNNING_MS=$mrd"
echo "DIRECT_PING_MS=$mpd"
echo "APPLY_OVERHEAD_RATIO=$(ratio "$mpk" "$mpd")"
