#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# VM pods on a simulated kvnet cluster (scripts/cluster.sh), and their live migration. This is what
# kvnet's controller does for a VirtualMachineInstance and a VirtualMachineInstanceMigration, as a
# script, until the controller exists (see docs/migration.md).
#
#   scripts/vmpod.sh start   --env CLUSTER_ENV --node I --vm NAME --binding bridge|masquerade [--kernel-args ARGS]
#                            [--memory SIZE]
#   scripts/vmpod.sh migrate --env CLUSTER_ENV --vm NAME --to J [--max-downtime-ms N] [--bandwidth MIBPS]
#                            [--timeout S] [--direct|--tunnelled] [--incoming-timeout S]
#   scripts/vmpod.sh stop    --env CLUSTER_ENV --vm NAME
#   scripts/vmpod.sh info    --env CLUSTER_ENV --vm NAME
#
# A VM pod = a network namespace "<PREFIX>-p-<pod>" (the sandbox), a CNI ADD of the kvnet plugin
# against its node's netd (tap0 in the sandbox; VM identity default/NAME/default, the binding given),
# a private libvirtd inside the sandbox (scripts/libvirt-node.sh) and a kvnet-launcher (--migratable,
# --netd-socket of the node). Files under DIR/pods/<pod>/; DIR/vms/NAME names the VM's current pod.
#
# start: prints POD=, NODE=, IP=, MAC=, NS=, SERIAL_LOG=, LAUNCHER_SOCK= once the launcher reports
# Running (the guest may still be booting).
# migrate: the target pod on node J (CNI ADD: netd builds the passive target datapath; libvirtd;
# launcher --incoming), the migration proxies (socat: /run/libvirt/kvnet-migration-ctl.sock in the
# source pod -> TCP on node J's underlay address -> the target pod's /run/libvirt/libvirt-sock),
# `kvnet-launcher --migrate` on the source (p2p; by default --direct: QEMU's own stream through a
# second pair of proxies between /run/libvirt/kvnet-migration.sock of the two pods; --tunnelled:
# inside libvirt's connection; docs/migration.md). The proxies reach a pod's sockets through its
# libvirtd's mount namespace (/proc/PID/root/run/libvirt/...), so their paths stay short however
# deep the pod directory is (a unix socket path has at most 107 bytes). Success: the source pod is deleted (CNI DEL, libvirtd stopped, sandbox
# removed), prints MIGRATION=<json> and the new pod. Failure (libvirt error, target killed, underlay
# cut, timeout): the target pod is deleted and the VM keeps running on the source, untouched; exit 1.
# stop: ACPI shutdown through the launcher, CNI DEL, libvirtd stopped, sandbox removed.
#
# Environment: KVNET_BUILD (default build). Exit: 0 ok, 1 failure (message on stderr), 2 usage.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh" # BUILD_DIR, BIN, stop_pid
LAUNCHER=$BIN/kvnet-launcher
PLUGIN=$BIN/kvnet
LIBVIRT_NODE=$ROOT/scripts/libvirt-node.sh

usage() {
	sed -n '7,13p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
die() {
	echo "vmpod: $*" >&2
	exit 1
}
info() { echo "vmpod: $*" >&2; }
# sock_ok PATH: a unix socket path fits sun_path (107 bytes and the NUL), or die naming it.
sock_ok() {
	[ "${#1}" -le 107 ] || die "unix socket path is ${#1} bytes, over the 107 that sun_path allows: $1"
}
now_ms() { date +%s%3N; }

[ $# -ge 1 ] || usage
CMD=$1
shift
ENVF="" NODE="" VM="" BINDING="" TO="" KARGS="" MEMORY=256Mi
MIG_OPTS=()
DIRECT=1
INCOMING_TIMEOUT=120
while [ $# -gt 0 ]; do
	case "$1" in
	--env) ENVF=$2 ;;
	--node) NODE=$2 ;;
	--vm) VM=$2 ;;
	--binding) BINDING=$2 ;;
	--to) TO=$2 ;;
	--kernel-args) KARGS=$2 ;;
	--memory) MEMORY=$2 ;;
	--max-downtime-ms | --bandwidth | --timeout) MIG_OPTS+=("$1" "$2") ;;
	--incoming-timeout) INCOMING_TIMEOUT=$2 ;;
	--direct | --tunnelled)
		DIRECT=$([ "$1" = --direct ] && echo 1 || echo 0)
		shift
		continue
		;;
	*) usage ;;
	esac
	[ $# -ge 2 ] || usage
	shift 2
done
[ -n "$ENVF" ] && [ -f "$ENVF" ] || die "--env: cluster env file '$ENVF' not found (scripts/cluster.sh up prints it)"
# shellcheck disable=SC1090
source "$ENVF"
[ -n "$VM" ] || die "--vm is required"
[[ "$VM" =~ ^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$ ]] || die "--vm: '$VM' must be a DNS label of at most 32 characters"
mkdir -p "$DIR/pods" "$DIR/vms"
IMAGES=$DIR/images # the local image store of this machine's "nodes"
GUEST_IMAGE=kvnet.local/demo-guest:latest

node_var() {
	local v="NODE$1_$2"
	[ -n "${!v:-}" ] || die "node $1 is not part of the cluster (N=$N)"
	echo "${!v}"
}

# ---------------------------------------------------------------- pods

pod_dir() { echo "$DIR/pods/$1"; }
# pod_sock POD NAME: the path of /run/libvirt/NAME of the pod's libvirtd as seen from here, through
# that daemon's mount namespace (short whatever the pod directory's length).
pod_sock() {
	local pid
	pid=$(cat "$(pod_dir "$1")/libvirt/libvirtd.pid" 2>/dev/null) || die "pod $1 has no libvirtd"
	echo "/proc/$pid/root/run/libvirt/$2"
}

cni() { # cni ADD|DEL POD NODE
	local cmd=$1 pod=$2 node=$3 d
	d=$(pod_dir "$pod")
	ip netns exec "$(node_var "$node" NS)" env -i PATH="$PATH" CNI_COMMAND="$cmd" CNI_CONTAINERID="$pod" \
		CNI_NETNS="/var/run/netns/$(cat "$d/ns")" CNI_IFNAME=tap0 CNI_PATH="$BIN" \
		ASAN_OPTIONS="${ASAN_OPTIONS:-}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" \
		CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;KVNET_VM_NAMESPACE=default;KVNET_VM_NAME=$VM;KVNET_VM_INTERFACE=default;KVNET_VM_BINDING=$(cat "$d/binding")" \
		"$PLUGIN" <"$d/net.conf"
}

write_vmi() { # write_vmi FILE MAC
	local img kernel initrd
	img=$("$ROOT/scripts/guest-image.sh" --quiet) || die "scripts/guest-image.sh failed"
	kernel=$(sed -n 's/^KVNET_GUEST_KERNEL=//p' <<<"$img")
	initrd=$(sed -n 's/^KVNET_GUEST_INITRD=//p' <<<"$img")
	# the guest as KubeVirt names images: an image of the local image store (docs/images.md)
	[ -s "$IMAGES/$GUEST_IMAGE/boot/vmlinuz" ] ||
		"$LAUNCHER" image add "$GUEST_IMAGE" --kernel "$kernel" --initrd "$initrd" --image-dir "$IMAGES" --replace >/dev/null ||
		die "kvnet-launcher image add $GUEST_IMAGE failed"
	cat >"$1" <<EOF
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: $VM
  namespace: default
spec:
  terminationGracePeriodSeconds: 20
  domain:
    firmware:
      kernelBoot:
        kernelArgs: "console=ttyS0 quiet $KARGS"
        container:
          image: $GUEST_IMAGE
          kernelPath: /boot/vmlinuz
          initrdPath: /boot/initrd.img
    memory:
      guest: $MEMORY
    devices:
      interfaces:
        - name: default
          $BINDING: {}
          macAddress: "$2"
  networks:
    - name: default
      pod: {}
EOF
}

# pod_create NODE BINDING: sandbox + CNI ADD; prints the pod id.
pod_create() {
	local node=$1 binding=$2 pod d ns res
	pod=$VM-$(printf '%04x%02x' $((RANDOM & 0xffff)) $((RANDOM & 0xff)))
	d=$(pod_dir "$pod")
	mkdir -p "$d"
	ns=$PREFIX-p-$pod
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	echo "$ns" >"$d/ns"
	echo "$node" >"$d/node"
	echo "$binding" >"$d/binding"
	cat >"$d/net.conf" <<EOF
{ "cniVersion": "1.0.0", "name": "kvcluster", "type": "kvnet", "binding": "bridge", "bridge": "$BRIDGE",
  "mtu": 1500, "socket": "$(node_var "$node" SOCK)",
  "ipam": { "ranges": [ [ { "subnet": "$VM_SUBNET", "gateway": "$VM_GATEWAY" } ] ],
            "routes": [ { "dst": "0.0.0.0/0" } ] } }
EOF
	if ! res=$(cni ADD "$pod" "$node" 2>"$d/cni-add.err"); then
		info "CNI ADD on node$node failed: $(cat "$d/cni-add.err") $res"
		pod_delete "$pod"
		return 1
	fi
	echo "$res" >"$d/cni-result.json"
	echo "$pod"
}

pod_libvirt() { # pod_libvirt POD: starts its libvirtd, writes DIR/uri
	local pod=$1 d out
	d=$(pod_dir "$pod")
	out=$("$LIBVIRT_NODE" start "$PREFIX-$pod" "$(cat "$d/ns")" --dir "$d/libvirt" 2>"$d/libvirt.err") ||
		{
			info "libvirtd of pod $pod did not start: $(tail -n 5 "$d/libvirt.err")"
			return 1
		}
	sed -n 's/^URI=//p' <<<"$out" >"$d/uri"
}

# pod_launch POD [--incoming]: starts the launcher in the sandbox.
pod_launch() {
	local pod=$1 d node
	shift
	d=$(pod_dir "$pod")
	node=$(cat "$d/node")
	sock_ok "$d/launcher.sock"
	setsid ip netns exec "$(cat "$d/ns")" "$LAUNCHER" --run "$DIR/vms/$VM.yaml" --image-dir "$IMAGES" --connect "$(cat "$d/uri")" \
		--nic default=tap:tap0 --migratable --netd-socket "$(node_var "$node" SOCK)" --state-dir "$d/state" \
		--socket "$d/launcher.sock" --status-file "$d/status.json" --serial-log "$d/serial.log" "$@" \
		</dev/null >>"$d/launcher.log" 2>&1 &
	echo $! >"$d/launcher.pid"
}

phase() { jq -r '.phase // empty' "$(pod_dir "$1")/status.json" 2>/dev/null || true; }

wait_phase() { # wait_phase POD PHASE SECONDS
	for _ in $(seq 1 $(($3 * 10))); do
		[ "$(phase "$1")" = "$2" ] && return 0
		kill -0 "$(cat "$(pod_dir "$1")/launcher.pid")" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}


# pod_delete POD: launcher, CNI DEL, libvirtd, sandbox. Tolerates anything already gone.
pod_delete() {
	local pod=$1 d
	d=$(pod_dir "$pod")
	[ -d "$d" ] || return 0
	[ -f "$d/launcher.pid" ] && stop_pid "$d/launcher.pid"
	if [ -f "$d/cni-result.json" ]; then
		cni DEL "$pod" "$(cat "$d/node")" >/dev/null 2>"$d/cni-del.err" || info "CNI DEL of pod $pod: $(cat "$d/cni-del.err")"
	fi
	"$LIBVIRT_NODE" stop "$PREFIX-$pod" "$(cat "$d/ns")" --dir "$d/libvirt" >/dev/null 2>&1 || true
	ip netns pids "$(cat "$d/ns")" 2>/dev/null | xargs -r kill -KILL 2>/dev/null || true
	ip netns del "$(cat "$d/ns")" 2>/dev/null || true
	rm -rf "$d"
}

print_pod() {
	local pod=$1 d
	d=$(pod_dir "$pod")
	echo "POD=$pod"
	echo "NODE=$(cat "$d/node")"
	echo "NS=$(cat "$d/ns")"
	echo "IP=$(jq -r '[.ips[] | select(.address | test("^[0-9.]+/")) | .address][0] | split("/")[0]' "$d/cni-result.json")"
	echo "MAC=$(jq -r '[.interfaces[] | select(.name == "tap0") | .mac][0]' "$d/cni-result.json")"
	echo "SERIAL_LOG=$d/serial.log"
	echo "LAUNCHER_SOCK=$d/launcher.sock"
	echo "POD_DIR=$d"
}

current_pod() {
	[ -f "$DIR/vms/$VM" ] || die "VM '$VM' has no pod (start it first)"
	cat "$DIR/vms/$VM"
}

# ---------------------------------------------------------------- commands

do_start() {
	[ -n "$NODE" ] || die "--node is required"
	case "$BINDING" in bridge | masquerade) ;; *) die "--binding must be bridge or masquerade, got '$BINDING'" ;; esac
	node_var "$NODE" NS >/dev/null
	[ ! -f "$DIR/vms/$VM" ] || die "VM '$VM' already runs (pod $(cat "$DIR/vms/$VM"))"
	local pod mac
	pod=$(pod_create "$NODE" "$BINDING") || die "cannot create the pod of '$VM' on node$NODE"
	mac=$(jq -r '[.interfaces[] | select(.name == "tap0") | .mac][0]' "$(pod_dir "$pod")/cni-result.json")
	write_vmi "$DIR/vms/$VM.yaml" "$mac"
	echo "$BINDING" >"$DIR/vms/$VM.binding"
	if ! pod_libvirt "$pod"; then
		pod_delete "$pod"
		die "cannot start the libvirtd of '$VM'"
	fi
	pod_launch "$pod"
	if ! wait_phase "$pod" Running 60; then
		tail -n 20 "$(pod_dir "$pod")/launcher.log" >&2 || true
		pod_delete "$pod"
		die "the launcher of '$VM' did not reach Running"
	fi
	echo "$pod" >"$DIR/vms/$VM"
	print_pod "$pod"
}

do_migrate() {
	[ -n "$TO" ] || die "--to is required"
	node_var "$TO" NS >/dev/null
	local src dst sd dd from port t0 rc=0 out resumed
	src=$(current_pod)
	sd=$(pod_dir "$src")
	from=$(cat "$sd/node")
	[ "$from" != "$TO" ] || die "VM '$VM' already runs on node$TO"
	[ "$(phase "$src")" = Running ] || die "VM '$VM' is not Running (phase '$(phase "$src")')"
	BINDING=$(cat "$DIR/vms/$VM.binding")
	t0=$(now_ms)

	# 1. prepare the target: the CNI ADD finds the claim held by node $from -> passive target
	dst=$(pod_create "$TO" "$BINDING") || die "preparing the target pod on node$TO failed; nothing changed"
	dd=$(pod_dir "$dst")
	# proxy_pair NAME PORT SRC_SOCK DST_SOCK: the virt-handler proxies of KubeVirt, over the underlay:
	# node $from listens on the unix socket SRC_SOCK (in the source pod) and forwards to node $TO's
	# underlay PORT, which node $TO forwards to the unix socket DST_SOCK (in the target pod). Pid files $sd/proxy-src-NAME.pid, $dd/proxy-dst-NAME.pid.
	proxy_pair() {
		sock_ok "$3"
		sock_ok "$4"
		setsid ip netns exec "$(node_var "$TO" NS)" socat -b 262144 \
			"TCP-LISTEN:$2,bind=$(node_var "$TO" UNDERLAY),reuseaddr,fork,nodelay" \
			"UNIX-CONNECT:$4" </dev/null >>"$dd/proxy.log" 2>&1 &
		echo $! >"$dd/proxy-dst-$1.pid"
		rm -f "$3"
		setsid ip netns exec "$(node_var "$from" NS)" socat -b 262144 "UNIX-LISTEN:$3,fork" \
			"TCP:$(node_var "$TO" UNDERLAY):$2,nodelay" </dev/null >>"$sd/proxy.log" 2>&1 &
		echo $! >"$sd/proxy-src-$1.pid"
		for _ in $(seq 1 50); do [ -S "$3" ] && break; sleep 0.1; done
	}
	stop_proxies() {
		local f
		for f in "$sd"/proxy-src-*.pid "$dd"/proxy-dst-*.pid; do
			[ -f "$f" ] && stop_pid "$f"
			rm -f "$f"
		done
	}
	rollback() {
		info "rolling back: deleting target pod $dst on node$TO; '$VM' stays on node$from"
		stop_proxies
		rm -f "$sd/libvirt/run/libvirt/kvnet-migration-ctl.sock" "$sd/libvirt/run/libvirt/kvnet-migration.sock"
		pod_delete "$dst"
	}
	if ! pod_libvirt "$dst"; then
		rollback
		die "the target's libvirtd did not start"
	fi
	pod_launch "$dst" --incoming --incoming-timeout "$INCOMING_TIMEOUT"
	if ! wait_phase "$dst" WaitingForMigration 30; then
		tail -n 10 "$dd/launcher.log" >&2 || true
		rollback
		die "the target launcher did not start"
	fi

	# 2. migration proxies: libvirt's connection (the source daemon dials /run/libvirt/kvnet-migration-ctl.sock
	# in its own mount namespace)
	port=$((20000 + (RANDOM % 20000)))
	: >"$dd/proxy.log"
	: >"$sd/proxy.log"
	proxy_pair ctl "$port" "$(pod_sock "$src" kvnet-migration-ctl.sock)" "$(pod_sock "$dst" libvirt-sock)"
	if [ "$DIRECT" = 1 ]; then
		# direct: QEMU's own stream, not libvirt's tunnel, over a second pair of proxies: the source
		# QEMU connects to /run/libvirt/kvnet-migration.sock in its pod's mount namespace, the target
		# QEMU listens on the same path in its own (libvirt's unix:// migration URI; KubeVirt's model).
		proxy_pair data $((port + 1)) "$(pod_sock "$src" kvnet-migration.sock)" "$(pod_sock "$dst" kvnet-migration.sock)"
		MIG_OPTS+=(--direct --migrate-uri "unix:///run/libvirt/kvnet-migration.sock")
	fi

	# 3. migrate (the launchers tell their netds: source begin/completed|aborted, target activate)
	out=$("$LAUNCHER" --migrate "qemu+unix:///system?socket=/run/libvirt/kvnet-migration-ctl.sock" --socket "$sd/launcher.sock" \
		--dest-state-dir "$dd/state" --dest-serial-log "$dd/serial.log" "${MIG_OPTS[@]}" 2>"$dd/migrate.err") || rc=$?
	echo "$out" >"$dd/migration.json"
	if [ "$rc" -ne 0 ] || [ "$(jq -r '.state // empty' <<<"$out" 2>/dev/null)" != completed ]; then
		info "migration failed: $(jq -r '.error // empty' <<<"$out" 2>/dev/null) $(tail -n 3 "$dd/migrate.err")"
		rollback
		echo "MIGRATION=$(jq -c . <<<"$out" 2>/dev/null || echo null)"
		exit 1
	fi
	if ! wait_phase "$dst" Running 30; then
		# libvirt says done but the target launcher does not run the VM: report, keep both for inspection
		die "migration completed but the target launcher is in phase '$(phase "$dst")' (see $dd/launcher.log)"
	fi
	# 4. clean up the source (its launcher exits by itself with phase Migrated)
	for _ in $(seq 1 100); do kill -0 "$(cat "$sd/launcher.pid")" 2>/dev/null || break; sleep 0.1; done
	stop_proxies
	rm -f "$sd/launcher.pid"
	pod_delete "$src"
	echo "$dst" >"$DIR/vms/$VM"
	# the guest's real pause: the source saw it stop for the switchover (pausedAtUs), the target saw it
	# resume (resumedAtUs); one clock here, as both pods run on this machine
	resumed=$(jq -r '.migration.resumedAtUs // empty' "$dd/status.json" 2>/dev/null || true)
	echo "MIGRATION=$(jq -c --argjson wall "$(($(now_ms) - t0))" --arg r "$resumed" '. + {scriptMs: $wall} |
		if $r != "" then .resumedAtUs = ($r | tonumber) else . end |
		if .pausedAtUs != null and .resumedAtUs != null then .switchPauseMs = (((.resumedAtUs - .pausedAtUs) / 100 | round) / 10)
		else . end' <<<"$out")"
	print_pod "$dst"
}

do_stop() {
	local pod d
	pod=$(current_pod)
	d=$(pod_dir "$pod")
	"$LAUNCHER" --shutdown - --socket "$d/launcher.sock" >/dev/null 2>&1 || true
	local pid
	pid=$(cat "$d/launcher.pid" 2>/dev/null || echo 0)
	for _ in $(seq 1 250); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	pod_delete "$pod"
	rm -f "$DIR/vms/$VM" "$DIR/vms/$VM.yaml" "$DIR/vms/$VM.binding"
}

case "$CMD" in
start) do_start ;;
migrate) do_migrate ;;
stop) do_stop ;;
info) print_pod "$(current_pod)" ;;
*) usage ;;
esac
