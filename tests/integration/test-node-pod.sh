#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The pod runtime of the kubelet stand-in (node/pod.h) through tests/tools/podrun, on a simulated
# 2-node cluster (scripts/cluster.sh): each node gets a CNI conf dir with the kvnet conflist
# (equivalent to scripts/vmpod.sh's net.conf), and podrun runs real guest pods on node1. The nodes'
# own libvirtds (cluster.sh --libvirt) are not started: every pod runs its private libvirtd in its
# sandbox (scripts/libvirt-node.sh, the stand-in's "container image"), as vmpod.sh does.
# Asserts, per binding (bridge, masquerade): the launcher reaches Running; the guest answers ping from
# the cluster's client namespace at the pod IP from the CNI result; a `status` from a new podrun
# process finds the pod Running (re-adoption: bridge after `run --detach`, masquerade after the
# running podrun was SIGKILLed); stop leaves no CNI cache entry, no link of the pod in node1's
# namespace, no sandbox, no libvirtd, no launcher, no pod directory. A start that fails in the middle
# (a plugin that does not exist: after the sandbox; a launcher that exits at once: after libvirtd; a VMI
# the launcher rejects) leaves nothing behind and names the cause. A state dir too long for the pod's
# sockets is refused naming the path; bad input is refused naming the field.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
require_cmd virsh unshare socat
require_libvirt
PODRUN=$KV_BUILD_DIR/tests/podrun
require_file "$PODRUN" "$KV_BIN/kvnet-launcher"
guest_image

# pods left by a failing test are stopped before the cluster goes (hooks run in registration order)
at_exit 'for i in 1 2; do [ -d "$KV_TMP/n$i/state/pods" ] && pr "$i" stop $(ls "$KV_TMP/n$i/state/pods") >/dev/null 2>&1; done'
at_exit '[ "$KV_EXIT_RC" -eq 0 ] || [ "$KV_EXIT_RC" -eq 4 ] || { echo "---- launcher logs ----"; tail -n 20 "$KV_TMP"/n1/state/pods/*/launcher.log 2>/dev/null; }'
cluster_up kvt-np

for i in 1 2; do
	mkdir -p "$KV_TMP/n$i/conf" "$KV_TMP/n$i/cache" "$KV_TMP/n$i/state"
	sockv=NODE${i}_SOCK
	cat >"$KV_TMP/n$i/conf/10-kvnet.conflist" <<EOF
{ "cniVersion": "1.1.0", "name": "kvcluster",
  "plugins": [ { "type": "kvnet", "binding": "bridge", "bridge": "$BRIDGE", "mtu": 1500, "socket": "${!sockv}",
                 "capabilities": { "mac": true },
                 "ipam": { "ranges": [ [ { "subnet": "$VM_SUBNET", "gateway": "$VM_GATEWAY" } ] ],
                           "routes": [ { "dst": "0.0.0.0/0" } ] } } ] }
EOF
done

# pr NODE ARGS...: podrun with node NODE's configuration (PR_CONF, PR_STATE, PR_LAUNCHER override)
pr() {
	local i=$1 nsv=NODE$1_NS sockv=NODE$1_SOCK
	shift
	"$PODRUN" --node-name "node$i" --node-netns "/run/netns/${!nsv}" --conf-dir "${PR_CONF:-$KV_TMP/n$i/conf}" \
		--cni-path "$KV_BIN" --cache-dir "$KV_TMP/n$i/cache" --netd-socket "${!sockv}" \
		--state-dir "${PR_STATE:-$KV_TMP/n$i/state}" --launcher "${PR_LAUNCHER:-$KV_BIN/kvnet-launcher}" \
		--libvirtd-starter "$KV_ROOT/scripts/libvirt-node.sh" --sandbox-prefix "$CL_NAME-p" "$@"
}
kv() { sed -n "s/^$1=//p" "$2"; }
# alive PID: a process that runs (a zombie waiting for its reaper does not)
alive() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[ "${st:0:1}" != Z ]
}

# write_vmi FILE NAME BINDING [KERNEL]: the test guest, as vmpod.sh's write_vmi
write_vmi() {
	cat >"$1" <<EOF
{ "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
  "metadata": { "name": "$2", "namespace": "default" },
  "spec": { "terminationGracePeriodSeconds": 4,
    "domain": { "firmware": { "kernelBoot": { "kernelArgs": "console=ttyS0 quiet",
                  "container": { "kernelPath": "${4:-$KERNEL}", "initrdPath": "$INITRD" } } },
                "memory": { "guest": "256Mi" },
                "devices": { "interfaces": [ { "name": "default", "$3": {} } ] } },
    "networks": [ { "name": "default", "pod": {} } ] } }
EOF
}

node_links() { ip -n "$NODE1_NS" -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort | tr '\n' ' '; }
pod_sandboxes() { ip netns list | awk '{print $1}' | grep -c "^$CL_NAME-p-" || true; }
pod_daemons() { pgrep -f "$KV_TMP/n1/state/pods/" | wc -l; }
cache_entries() { find "$KV_TMP/n1/cache" -type f | wc -l; }

# assert_nothing_left WHAT LINKS_BEFORE: the state a node has with no pod
assert_nothing_left() {
	local what=$1 before=$2 now i
	for i in $(seq 1 30); do
		now=$(node_links)
		[ "$now" = "$before" ] && break
		sleep 0.1
	done
	assert_eq "$now" "$before" "$what: no link of the pod left in node1's namespace"
	assert_eq "$(cache_entries)" 0 "$what: no CNI cache entry"
	assert_eq "$(pod_sandboxes)" 0 "$what: no sandbox namespace"
	assert_eq "$(pod_daemons)" 0 "$what: no libvirtd, QEMU or launcher of the pod"
	assert_eq "$(ls -A "$KV_TMP/n1/state/pods")" "" "$what: no pod directory or record"
}

LINKS0=$(node_links)

# ---------------------------------------------------------------- a guest pod per binding
n=0
for b in bridge masquerade; do
	n=$((n + 1))
	vm=vm-$b
	uid=0000000$n-pod-$b
	write_vmi "$KV_TMP/$vm.json" "$vm" "$b"
	out=$KV_TMP/run-$b.out
	if [ "$b" = bridge ]; then
		# re-adoption after a runtime that exited after the start
		pr 1 run --namespace default --name "virt-launcher-$vm-x1" --uid "$uid" --vmi "$KV_TMP/$vm.json" \
			--vm "default/$vm" --binding "$b" --detach >"$out" 2>"$KV_TMP/run-$b.err" ||
			{ cat "$KV_TMP/run-$b.err"; die "$b: podrun run failed"; }
	else
		# re-adoption after a runtime that was killed while it held the pod
		pr 1 run --namespace default --name "virt-launcher-$vm-x1" --uid "$uid" --vmi "$KV_TMP/$vm.json" \
			--vm "default/$vm" --binding "$b" >"$out" 2>"$KV_TMP/run-$b.err" &
		prpid=$!
		for _ in $(seq 1 1200); do
			grep -q '^START_MS=' "$out" 2>/dev/null && break
			kill -0 "$prpid" 2>/dev/null || break
			sleep 0.1
		done
		grep -q '^START_MS=' "$out" || { cat "$KV_TMP/run-$b.err"; die "$b: podrun run did not start the pod"; }
		kill -KILL "$prpid"
		wait "$prpid" 2>/dev/null || true
	fi
	assert_eq "$(kv PHASE "$out")" Running "$b: the launcher reached Running"
	ip=$(kv IP "$out")
	mac=$(kv MAC "$out")
	sandbox=$(kv SANDBOX "$out")
	lpid=$(kv LAUNCHER_PID "$out")
	vpid=$(kv LIBVIRTD_PID "$out")
	echo "POD_START_MS=$(kv START_MS "$out") BINDING=$b"
	assert_ne "$ip" "" "$b: the pod has an IPv4 address from the CNI result ($ip)"
	assert_eq "$(jq -r '.spec.domain.devices.interfaces[0].macAddress' "$KV_TMP/n1/state/pods/$uid/vmi.json")" "$mac" \
		"$b: the guest's MAC is the pod interface's ($mac)"
	assert_eq "$(cache_entries)" 1 "$b: one CNI cache entry"
	assert_true "$b: the sandbox exists" test -e "$sandbox"
	t0=$(date +%s%3N)
	if wait_ping "$CLIENT_NS" "$ip" 90; then
		pass "$b: the guest answers ping from the client at $ip"
		echo "POD_PING_MS=$(($(date +%s%3N) - t0)) BINDING=$b"
	else
		fail "$b: the guest answers ping from the client at $ip"
		tail -n 20 "$KV_TMP/n1/state/pods/$uid/serial.log" 2>/dev/null || true
	fi
	# a new runtime process finds the pod through its record
	pr 1 status "$uid" >"$KV_TMP/status-$b.out"
	assert_eq "$(kv PHASE "$KV_TMP/status-$b.out")" Running "$b: status from a new podrun: Running"
	assert_eq "$(kv LAUNCHER_ALIVE "$KV_TMP/status-$b.out")" 1 "$b: status from a new podrun: the launcher runs"
	assert_eq "$(kv LAUNCHER_PID "$KV_TMP/status-$b.out")" "$lpid" "$b: nothing was restarted (launcher pid $lpid)"
	assert_eq "$(pr 1 list | awk '{print $1, $2}')" "$uid Running" "$b: list shows the pod"

	t0=$(date +%s%3N)
	pr 1 stop "$uid" || fail "$b: podrun stop"
	echo "POD_STOP_MS=$(($(date +%s%3N) - t0)) BINDING=$b"
	assert_false "$b: the launcher is gone" alive "$lpid"
	assert_false "$b: the pod's libvirtd is gone" alive "$vpid"
	assert_false "$b: the sandbox is gone" test -e "$sandbox"
	assert_nothing_left "$b: after stop" "$LINKS0"
	assert_true "$b: a second stop of the same pod succeeds" pr 1 stop "$uid"
done

# ---------------------------------------------------------------- starts that fail in the middle
write_vmi "$KV_TMP/vm-f.json" vm-f bridge
runf() { # runf WHAT UID [podrun run args]: a run that must fail; its stderr in $KV_TMP/fail.err
	local what=$1 uid=$2
	shift 2
	if pr 1 run --namespace default --name virt-launcher-vm-f --uid "$uid" --vmi "$KV_TMP/vm-f.json" --vm default/vm-f \
		--binding bridge --detach "$@" >/dev/null 2>"$KV_TMP/fail.err"; then
		fail "$what: the start fails"
	else
		pass "$what: the start fails"
		log "$what: $(head -c 300 "$KV_TMP/fail.err")"
	fi
}

# CNI: a plugin that does not exist (after the sandbox was made)
mkdir -p "$KV_TMP/badconf"
sed 's/"type": "kvnet"/"type": "kvnet-nosuch"/' "$KV_TMP/n1/conf/10-kvnet.conflist" >"$KV_TMP/badconf/10-bad.conflist"
PR_CONF=$KV_TMP/badconf runf "missing plugin" f1
assert_true "missing plugin: the error names the plugin" grep -q "kvnet-nosuch" "$KV_TMP/fail.err"
assert_nothing_left "missing plugin" "$LINKS0"

# a launcher that exits at once (after CNI ADD and libvirtd)
PR_LAUNCHER=/bin/false runf "launcher exits" f2
assert_true "launcher exits: the error says the launcher ended" grep -q "launcher" "$KV_TMP/fail.err"
assert_nothing_left "launcher exits" "$LINKS0"

# a VMI the launcher rejects (its kernel does not exist)
write_vmi "$KV_TMP/vm-f.json" vm-f bridge /nonexistent/vmlinuz
runf "rejected VMI" f3
assert_true "rejected VMI: the error gives the launcher's reason (kernelPath)" grep -q "kernelPath" "$KV_TMP/fail.err"
assert_nothing_left "rejected VMI" "$LINKS0"

# ---------------------------------------------------------------- bad input
long=$KV_TMP/$(printf 'd%.0s' $(seq 1 90))
mkdir -p "$long"
if PR_STATE=$long pr 1 list >/dev/null 2>"$KV_TMP/long.err"; then
	fail "a state dir too long for the pod's sockets is refused"
else
	assert_true "a state dir too long for the pod's sockets is refused naming the path" grep -qF "'$long'" "$KV_TMP/long.err"
fi
write_vmi "$KV_TMP/vm-f.json" vm-f bridge
runf "uid with capitals" Not-A-Uid
assert_true "uid with capitals: the error names the field" grep -q "'uid'" "$KV_TMP/fail.err"
printf '[1,2]' >"$KV_TMP/notobj.json"
if pr 1 run --namespace default --name n --uid f4 --vmi "$KV_TMP/notobj.json" --vm default/vm-f --binding bridge \
	--detach >/dev/null 2>"$KV_TMP/fail.err"; then
	fail "a VMI that is not an object is refused"
else
	assert_true "a VMI that is not an object is refused naming 'vmi'" grep -q "'vmi'" "$KV_TMP/fail.err"
fi
assert_eq "$(
	pr 1 run --binding sriov >/dev/null 2>&1
	echo $?
)" 2 "an unknown binding is a usage error"
assert_nothing_left "bad input" "$LINKS0"

finish
