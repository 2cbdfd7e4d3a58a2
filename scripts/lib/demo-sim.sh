# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# What `make demo` and `make demo-migration` share: a kvnet-sim.sh cluster driven with kubectl, the demo guest
# in an image store, VirtualMachine manifests, VMI waits, migrations through a VMIM and the client's flowmon.
# Sourced after ROOT is set and scripts/lib/common.sh is sourced; the caller sets DEMO (its name, for messages).
# The caller calls demo_sim_init once; it sets WORK, SIM_NAME, SIM_DIR and the EXIT/INT/TERM traps that tear
# the simulation down (demo_sim_cleanup, after the caller's DEMO_CLEANUP commands).

SIM=$ROOT/scripts/kvnet-sim.sh
FLOWMON=$BUILD_DIR/tests/flowmon
# shellcheck source=scripts/lib/guest-vm.sh
source "$ROOT/scripts/lib/guest-vm.sh" # GUEST_REF, guest_vm_yaml
DEMO_CLEANUP=()
FM_PIDS=()

die() {
	echo "$DEMO: $*" >&2
	exit 1
}
ms() { date +%s%3N; }

# demo_sim_require: root, the tools and the build the demos need.
demo_sim_require() {
	local c b
	[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"
	for c in qemu-system-x86_64 virsh socat jq curl unshare nsenter kubectl; do
		command -v "$c" >/dev/null || die "$c not installed (make deps)"
	done
	[ -x /usr/sbin/libvirtd ] || die "libvirtd not installed (make deps)"
	[ -x "$FLOWMON" ] || die "$FLOWMON not built (make test-tools)"
	for b in kvnetctl kvnet-controller kvnet-node kvnet-launcher kvnet-netd kvnet; do
		[ -x "$BIN/$b" ] || die "$BIN/$b not built (make)"
	done
}

demo_sim_cleanup() {
	local rc=$? c p
	set +e
	for c in "${DEMO_CLEANUP[@]}"; do eval "$c"; done
	for p in "${FM_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	if [ -e "$SIM_DIR/sim.env" ]; then
		echo
		echo "== teardown: scripts/kvnet-sim.sh down (VMs, agents, controller, netds, namespaces)"
		"$SIM" down --name "$SIM_NAME" --dir "$SIM_DIR" >/dev/null 2>&1
	fi
	rm -rf "$WORK"
	exit "$rc"
}

# demo_sim_init PREFIX: WORK (a temporary directory), SIM_NAME (PREFIX-<random>), SIM_DIR, the traps.
demo_sim_init() {
	SIM_NAME=$1-$(printf '%04x' $RANDOM)
	WORK=$(mktemp -d /tmp/kvd.XXXXXX) # short: the pods' unix sockets live under it
	SIM_DIR=$WORK/sim
	trap demo_sim_cleanup EXIT
	trap 'echo; echo "interrupted"; exit 130' INT TERM
	exec 3>&1
}

# run CMD...: print it (on the terminal, fd 3) with the checkout and WORK shortened, then run it.
run() {
	echo "\$ $*" | sed "s|$ROOT/||g; s|$WORK|\$WORK|g" >&3
	"$@"
}
kc() { "$SIM" kubectl --name "$SIM_NAME" --dir "$SIM_DIR" -- "$@"; }
# kcr ARGS...: kubectl ARGS, printed first (as `kubectl ARGS`, an argument with blanks or JSON in single quotes)
kcr() {
	local a line="\$ kubectl"
	for a in "$@"; do
		case "$a" in *[\ \{\"]*) line+=" '$a'" ;; *) line+=" $a" ;; esac
	done
	echo "${line//"$WORK"/\$WORK}" >&3
	kc "$@"
}
ctl() { # ctl NODE ARGS...: kvnetctl against NODE's netd
	local v=NODE$1_SOCK
	shift
	"$BIN/kvnetctl" --socket "${!v}" "$@"
}

# demo_sim_up: the guest in an image store under WORK, then `kvnet-sim.sh up --nodes 2`; sources the cluster's
# cluster.env (CLIENT_NS, CLIENT_UNDERLAY, NODEi_NS, NODEi_SOCK, NODEi_UNDERLAY, VM_SUBNET, VM_GATEWAY).
demo_sim_up() {
	local img kernel initrd
	echo "== guest image (kernel + busybox initramfs from Debian packages, cached) as $GUEST_REF in an image store"
	img=$("$ROOT/scripts/guest-image.sh" --quiet) || die "scripts/guest-image.sh failed"
	kernel=$(sed -n 's/^KVNET_GUEST_KERNEL=//p' <<<"$img")
	initrd=$(sed -n 's/^KVNET_GUEST_INITRD=//p' <<<"$img")
	if [ ! -s "$kernel" ] || [ ! -s "$initrd" ]; then die "no guest image ($img)"; fi
	run "$BIN/kvnet-launcher" image add "$GUEST_REF" --kernel "$kernel" --initrd "$initrd" --image-dir "$WORK/images" \
		>/dev/null || die "kvnet-launcher image add failed"
	echo
	echo "== a simulated two-node cluster: node namespaces with kvnet-netd on an underlay, VXLAN between them, a client,"
	echo "   the embedded API (kvnet-controller --embedded) and one kvnet-node agent per node"
	run "$SIM" up --nodes 2 --name "$SIM_NAME" --dir "$SIM_DIR" --image-dir "$WORK/images" >"$WORK/up.out" 2>&1 || {
		tail -n 20 "$WORK/up.out" >&2
		die "kvnet-sim.sh up failed"
	}
	# shellcheck disable=SC1091
	source "$SIM_DIR/cluster/cluster.env"
	echo "   node1 $NODE1_NS (underlay $NODE1_UNDERLAY), node2 $NODE2_NS (underlay $NODE2_UNDERLAY)"
	echo "   client $CLIENT_NS ($CLIENT_UNDERLAY), VM network $VM_SUBNET, gateway $VM_GATEWAY on every node"
	kcr get nodes
}

# vmi_field VM JSONPATH: one field of the VMI (empty when there is none)
vmi_field() { kc get vmi "$1" -o jsonpath="{$2}" 2>/dev/null || true; }

# wait_vmi_ip VM SECONDS: until the VMI is Running with an IP; prints the IP
wait_vmi_ip() {
	local ip=""
	for _ in $(seq 1 $(($2 * 2))); do
		if [ "$(vmi_field "$1" .status.phase)" = Running ]; then
			ip=$(vmi_field "$1" '.status.interfaces[0].ipAddress')
			[ -n "$ip" ] && break
		fi
		sleep 0.5
	done
	[ -n "$ip" ] || return 1
	echo "$ip"
}

# wait_ping ADDR SECONDS: until ADDR answers a ping from the client
wait_ping() {
	local end=$(($(ms) + $2 * 1000))
	while [ "$(ms)" -lt "$end" ]; do
		ip netns exec "$CLIENT_NS" ping -c1 -W0.2 "$1" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	return 1
}
boot_id() { ip netns exec "$CLIENT_NS" curl -s -m 3 "http://$1/id" 2>/dev/null | sed -n 's/^boot_id=//p'; }
# wait_boot_id ADDR SECONDS: the guest's boot id (served over HTTP), once it answers
wait_boot_id() {
	local b=""
	for _ in $(seq 1 $(($2 * 2))); do
		b=$(boot_id "$1")
		[ -n "$b" ] && break
		sleep 0.5
	done
	echo "$b"
}

# migrate VM NAME SECONDS: `kubectl create -f` of a VMIM NAME for VM, then its phases as `kubectl get vmim -w`
# shows them until Succeeded or Failed (SECONDS at most); 0 when Succeeded. The phases seen go to $WORK/NAME.phases.
migrate() {
	local vm=$1 name=$2 secs=$3 w phase=""
	printf 'apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstanceMigration\nmetadata:\n  name: %s\nspec:\n  vmiName: %s\n' \
		"$name" "$vm" >"$WORK/$name.yaml"
	kcr create -f "$WORK/$name.yaml" 2>"$WORK/$name.err" || {
		cat "$WORK/$name.err" >&2
		return 1
	}
	echo "\$ kubectl get vmim $name -w" >&3
	kc get vmim "$name" -w --no-headers -o custom-columns=PHASE:.status.phase >"$WORK/$name.phases" 2>/dev/null &
	w=$!
	for _ in $(seq 1 $((secs * 10))); do
		phase=$(kc get vmim "$name" -o jsonpath='{.status.phase}' 2>/dev/null || true)
		case "$phase" in Succeeded | Failed) break ;; esac
		sleep 0.1
	done
	sleep 0.3
	kill "$w" 2>/dev/null || true
	wait "$w" 2>/dev/null || true
	echo "$phase" >>"$WORK/$name.phases"
	[ "$phase" = Succeeded ]
}
# phases NAME: the phases a VMIM went through, in order, once each
phases() { awk 'NF && $0 != "<none>" && !seen[$0]++' "$WORK/$1.phases" | paste -sd' ' | sed 's/ / -> /g'; }

# start_flowmon NAME ARGS...: build/tests/flowmon ARGS in the client namespace (JSON into $WORK/NAME.json);
# returns once it is ready; sets FM_PID
start_flowmon() {
	local name=$1
	shift
	rm -f "$WORK/$name.ready"
	ip netns exec "$CLIENT_NS" "$FLOWMON" "$@" --ready-file "$WORK/$name.ready" >"$WORK/$name.json" 2>"$WORK/$name.err" &
	FM_PID=$!
	FM_PIDS+=("$FM_PID")
	for _ in $(seq 1 100); do
		[ -f "$WORK/$name.ready" ] && return 0
		kill -0 "$FM_PID" 2>/dev/null || break
		sleep 0.05
	done
	cat "$WORK/$name.err" >&2
	return 1
}
stop_flowmon() { # PID
	kill -TERM "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# nothing_left: no VM, VMI or pod in the API and no attachment on either node's netd; prints what is left
nothing_left() {
	local left i
	left=$(kc get vms,vmis,pods -o name 2>/dev/null || echo "(kubectl failed)")
	for i in 1 2; do
		[ "$(ctl "$i" -o json endpoints 2>/dev/null | jq length)" = 0 ] || left+=" node$i:endpoints"
	done
	left=$(echo "$left" | xargs)
	[ -z "$left" ] || {
		echo "$left"
		return 1
	}
}

# FAILED: the demos' exit status
# shellcheck disable=SC2034
FAILED=0
# shellcheck disable=SC2034
bad() {
	echo "   !! $*"
	FAILED=1
}
# check WHAT CMD...: "ok: WHAT" when CMD succeeds, a !! line (and FAILED=1) when not
check() {
	local what=$1
	shift
	if "$@" >/dev/null 2>&1; then echo "   ok: $what"; else bad "$what"; fi
}

# migration_figures VM FLOWMON-JSON: after a VMIM of VM Succeeded, what it cost as the client (FLOWMON-JSON:
# ping + TCP echo during the migration) and the VMI's status.migrationState saw. Sets MIG_FROM, MIG_TO, MIG_GAP
# (longest gap between ping replies, ms), MIG_LOST, MIG_QEMU (QEMU's downtime, ms), MIG_PAUSE (the guest's
# pause, ms), MIG_TOTAL (ms), MIG_TCP (survived or broke); 1 when the TCP connection broke.
migration_figures() {
	local m r=$2
	for _ in $(seq 1 30); do # the target reports the guest's pause shortly after the source's completion
		m=$(kc get vmi "$1" -o json | jq -c '.status.migrationState // {}')
		[ "$(jq -r '.kvnetNetworkOutageMs // empty' <<<"$m")" != "" ] && break
		sleep 0.1
	done
	MIG_FROM=$(jq -r '.sourceNode // "?"' <<<"$m")
	MIG_TO=$(jq -r '.targetNode // "?"' <<<"$m")
	MIG_GAP=$(jq '[.ping.maxGapMs, .ping.tailGapMs] | max' "$r" 2>/dev/null || echo '?')
	MIG_LOST=$(jq '.ping.lost' "$r" 2>/dev/null || echo '?')
	MIG_QEMU=$(jq -r '.kvnetDowntimeMs // "?"' <<<"$m")
	MIG_PAUSE=$(jq -r '.kvnetNetworkOutageMs // "?"' <<<"$m")
	MIG_TOTAL=$(jq -r '.kvnetTotalMs // "?"' <<<"$m")
	MIG_TCP=broke
	[ "$(jq -r '.tcpEcho.closed' "$r" 2>/dev/null || true)" = false ] && MIG_TCP=survived
	echo "   $MIG_FROM -> $MIG_TO: now pod $(jq -r '.targetPod // "?"' <<<"$m") on $(vmi_field "$1" .status.nodeName)"
	echo "     network downtime (longest gap between ping replies): $MIG_GAP ms, lost pings: $MIG_LOST" \
		"of $(jq '.ping.sent' "$r" 2>/dev/null || echo '?')"
	echo "     QEMU downtime: $MIG_QEMU ms, guest paused $MIG_PAUSE ms, total migration $MIG_TOTAL ms"
	if [ "$MIG_TCP" = survived ]; then
		echo "     TCP connection: survived ($(tcp_line "$r"))"
	else
		bad "TCP connection to $1 broke during $MIG_FROM -> $MIG_TO: $(jq -c .tcpEcho "$r" 2>/dev/null || true)"
		return 1
	fi
}
# tcp_line FLOWMON-JSON: how the client's echo connection fared
tcp_line() {
	jq -r '"\(.tcpEcho.echoed)/\(.tcpEcho.sent) lines echoed, longest stall \(.tcpEcho.maxStallMs) ms"' "$1" 2>/dev/null || echo "?"
}

# serial_log VM: the serial console log of VM's current pod (its guest's console)
serial_log() {
	local s
	for s in "$SIM_DIR"/node*-pods/state/pods/*/status.json; do
		[ "$(jq -r '.vmi' "$s" 2>/dev/null)" = "default/$1" ] && echo "$(dirname "$s")/serial.log" && return 0
	done
	return 1
}
