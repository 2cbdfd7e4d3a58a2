#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The pod runtime of the kubelet stand-in (node/pod.h) through tests/tools/podrun, on a simulated
# 2-node cluster (scripts/cluster.sh): each node gets a CNI conf dir with the kvnet conflist
# (the one scripts/kvnet-sim.sh writes per node), and podrun runs real guest pods on node1. The nodes'
# own libvirtds (cluster.sh --libvirt) are not started: every pod runs its private libvirtd in its
# sandbox (scripts/libvirt-node.sh, the stand-in's "container image"), as kvnet-node's pods do.
# Asserts, per binding (bridge, masquerade): the launcher reaches Running; the guest answers ping from
# the cluster's client namespace at the pod IP from the CNI result; a `status` from a new podrun
# process finds the pod Running (re-adoption: bridge after `run --detach`, masquerade after the
# running podrun was SIGKILLed); stop leaves no CNI cache entry, no link of the pod in node1's
# namespace, no sandbox, no libvirtd, no launcher, no pod directory; GC DELs an attachment no pod holds
# and keeps the pod's, deletes a sandbox of node1's prefix no pod holds, not node2's. A live migration node1 -> node2
# through the runtime's proxies (`podrun proxies`, --direct): the --incoming target pod on node2 gets the
# VM's IP and MAC and waits, `kvnet-launcher --migrate` completes, the target runs the guest (ping at the
# same IP), the source ends Migrated, the proxies and both pods go. A start that fails in the middle
# (a plugin that does not exist: after the sandbox; a launcher that exits at once: after libvirtd; a VMI
# the launcher rejects) leaves nothing behind and names the cause. A state dir too long for the pod's
# sockets is refused naming the path; bad input is refused naming the field.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
require_cmd virsh unshare socat openssl
require_libvirt
PODRUN=$KV_BUILD_DIR/tests/podrun
require_file "$PODRUN" "$KV_BIN/kvnet-launcher"
guest_image
guest_store

# pods left by a failing test are stopped before the cluster goes (hooks run in registration order)
at_exit 'for i in 1 2; do [ -d "$KV_TMP/n$i/state/pods" ] && pr "$i" stop $(ls "$KV_TMP/n$i/state/pods") >/dev/null 2>&1; done'
at_exit '[ -n "${PX_PID:-}" ] && kill -TERM "$PX_PID" 2>/dev/null; wait "${PX_PID:-0}" 2>/dev/null'
at_exit '[ "$KV_EXIT_RC" -eq 0 ] || [ "$KV_EXIT_RC" -eq 4 ] || { echo "---- launcher logs ----"; tail -n 20 "$KV_TMP"/n1/state/pods/*/launcher.log 2>/dev/null; }'
cluster_up kvt-np

cluster_pod_dirs
# the migration proxies speak mutual TLS: a CA for the cluster, a certificate per node naming its underlay address
for i in 1 2; do
	u=NODE${i}_UNDERLAY
	"$KV_ROOT/scripts/migration-tls.sh" node "$KV_TMP/mig-ca" "$KV_TMP/n$i/tls" "node$i" "${!u}" ||
		die "scripts/migration-tls.sh failed"
done

# pr NODE ARGS...: podrun with node NODE's configuration (PR_CONF, PR_STATE, PR_LAUNCHER override).
# pr_exec: the same as the process itself (exec), for `pr_exec ... &`: $! is then podrun's pid.
pr_args() {
	local i=$1 nsv=NODE$1_NS sockv=NODE$1_SOCK
	PR_ARGS=(--node-name "node$i" --node-netns "/run/netns/${!nsv}" --conf-dir "${PR_CONF:-$KV_TMP/n$i/conf}"
		--cni-path "$KV_BIN" --cache-dir "$KV_TMP/n$i/cache" --netd-socket "${!sockv}"
		--state-dir "${PR_STATE:-$KV_TMP/n$i/state}" --launcher "${PR_LAUNCHER:-$KV_BIN/kvnet-launcher}"
		--libvirtd-starter "$KV_ROOT/scripts/libvirt-node.sh" --sandbox-prefix "$CL_NAME-p-n$i" --image-dir "$GUEST_IMAGES"
		--migration-tls "$KV_TMP/n$i/tls")
}
pr() {
	pr_args "$1"
	shift
	"$PODRUN" "${PR_ARGS[@]}" "$@"
}
pr_exec() {
	pr_args "$1"
	shift
	exec "$PODRUN" "${PR_ARGS[@]}" "$@"
}
kv() { sed -n "s/^$1=//p" "$2"; }
# wait_line FILE KEY PID SECONDS: 0 once FILE has a KEY= line; 1 when PID exits first or time is up
wait_line() {
	for _ in $(seq 1 $(($4 * 10))); do
		grep -q "^$2=" "$1" 2>/dev/null && return 0
		kill -0 "$3" 2>/dev/null || break
		sleep 0.1
	done
	grep -q "^$2=" "$1" 2>/dev/null
}
# alive PID: a process that runs (a zombie waiting for its reaper does not)
alive() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[ "${st:0:1}" != Z ]
}

# write_vmi FILE NAME BINDING [KERNEL-PATH]: a VMI of the test guest from the test's image store
write_vmi() {
	cat >"$1" <<EOF
{ "apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
  "metadata": { "name": "$2", "namespace": "default" },
  "spec": { "terminationGracePeriodSeconds": 4,
    "domain": { "firmware": { "kernelBoot": { "kernelArgs": "console=ttyS0 quiet",
                  "container": { "image": "$GUEST_REF", "kernelPath": "${4:-/boot/vmlinuz}",
                                 "initrdPath": "/boot/initrd.img" } } },
                "memory": { "guest": "256Mi" },
                "devices": { "interfaces": [ { "name": "default", "$3": {} } ] } },
    "networks": [ { "name": "default", "pod": {} } ] } }
EOF
}

# node_links [I], pod_sandboxes, pod_daemons [I], cache_entries [I]: what pods leave on node I (1)
node_links() {
	local v=NODE${1:-1}_NS
	ip -n "${!v}" -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort | tr '\n' ' '
}
pod_sandboxes() { ip netns list | awk '{print $1}' | grep -c "^$CL_NAME-p-" || true; }
pod_daemons() { pgrep -f "$KV_TMP/n${1:-1}/state/pods/" | wc -l; }
cache_entries() { find "$KV_TMP/n${1:-1}/cache" -type f | wc -l; }

# assert_nothing_left WHAT LINKS_BEFORE [I]: the state node I (1) has with no pod
assert_nothing_left() {
	local what=$1 before=$2 i=${3:-1} now
	for _ in $(seq 1 30); do
		now=$(node_links "$i")
		[ "$now" = "$before" ] && break
		sleep 0.1
	done
	assert_eq "$now" "$before" "$what: no link of the pod left in node$i's namespace"
	assert_eq "$(cache_entries "$i")" 0 "$what: no CNI cache entry on node$i"
	assert_eq "$(pod_sandboxes)" 0 "$what: no sandbox namespace"
	assert_eq "$(pod_daemons "$i")" 0 "$what: no libvirtd, QEMU or launcher of the pod on node$i"
	assert_eq "$(ls "$KV_TMP/n$i/state/pods")$(ls -a "$KV_TMP/n$i/state/pods" | grep "\.lock$" | grep -v "^\.sandboxes\.lock$" || true)" "" "$what: no pod directory, record or pod lock on node$i"
}

LINKS0=$(node_links)
LINKS0_2=$(node_links 2)

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
		pr_exec 1 run --namespace default --name "virt-launcher-$vm-x1" --uid "$uid" --vmi "$KV_TMP/$vm.json" \
			--vm "default/$vm" --binding "$b" >"$out" 2>"$KV_TMP/run-$b.err" &
		prpid=$!
		wait_line "$out" START_MS "$prpid" 120 || { cat "$KV_TMP/run-$b.err"; die "$b: podrun run did not start the pod"; }
		assert_eq "$(ps -o comm= -p "$prpid")" podrun "$b: the runtime holding the pod is podrun (pid $prpid)"
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
	assert_eq "$(kv SOCKET_PHASE "$KV_TMP/status-$b.out")" Running "$b: the launcher's socket says Running"
	assert_eq "$(kv LAUNCHER_PID "$KV_TMP/status-$b.out")" "$lpid" "$b: nothing was restarted (launcher pid $lpid)"
	assert_eq "$(pr 1 list | awk '{print $1, $2}')" "$uid Running" "$b: list shows the pod"
	if [ "$b" = bridge ]; then
		# GC: an attachment in the node's cache that no pod holds is DELeted, the pod's is kept
		mkns ORPHAN orphan
		ip netns exec "$NODE1_NS" "$CNICHAIN" add "$KV_TMP/n1/conf/10-kvnet.conflist" orphan-1 "/run/netns/$ORPHAN" tap0 \
			--cache-dir "$KV_TMP/n1/cache" --path "$KV_BIN" \
			--args "IgnoreUnknown=1;KVNET_VM_NAMESPACE=default;KVNET_VM_NAME=orphan;KVNET_VM_INTERFACE=default;KVNET_VM_BINDING=bridge" \
			>/dev/null || die "gc: the orphan attachment"
		assert_eq "$(cache_entries)" 2 "gc: an orphan attachment next to the pod's"
		# a sandbox of node1's prefix that no pod holds, and one of node2's
		ip netns add "$CL_NAME-p-n1-00000000deadbeef"
		ip netns add "$CL_NAME-p-n2-00000000deadbeef"
		KV_NAMESPACES+=("$CL_NAME-p-n1-00000000deadbeef" "$CL_NAME-p-n2-00000000deadbeef")
		pr 1 gc >"$KV_TMP/gc.out"
		assert_eq "$(kv DELETED "$KV_TMP/gc.out")" 1 "gc: the orphan attachment is DELeted"
		assert_eq "$(cache_entries)" 1 "gc: the pod's attachment is kept"
		assert_false "gc: the orphan's tap is gone" link_exists "$ORPHAN" tap0
		assert_ping "$CLIENT_NS" "$ip" "gc: the pod's guest still answers"
		assert_eq "$(kv SANDBOXES "$KV_TMP/gc.out")" 1 "gc: one sandbox no pod holds is deleted"
		assert_false "gc: node1's orphan sandbox is gone" test -e "/run/netns/$CL_NAME-p-n1-00000000deadbeef"
		assert_true "gc: node2's sandbox is not node1's to take" test -e "/run/netns/$CL_NAME-p-n2-00000000deadbeef"
		assert_true "gc: the pod's sandbox is kept" test -e "$sandbox"
		ip netns del "$CL_NAME-p-n2-00000000deadbeef"
	fi

	t0=$(date +%s%3N)
	pr 1 stop "$uid" || fail "$b: podrun stop"
	echo "POD_STOP_MS=$(($(date +%s%3N) - t0)) BINDING=$b"
	assert_false "$b: the launcher is gone" alive "$lpid"
	assert_false "$b: the pod's libvirtd is gone" alive "$vpid"
	assert_false "$b: the sandbox is gone" test -e "$sandbox"
	assert_nothing_left "$b: after stop" "$LINKS0"
	assert_true "$b: a second stop of the same pod succeeds" pr 1 stop "$uid"
done

# ---------------------------------------------------------------- a live migration through the runtime's proxies
vm=vm-mig
src=00000003-src
dst=00000004-dst
write_vmi "$KV_TMP/$vm.json" "$vm" bridge
pr 1 run --namespace default --name "virt-launcher-$vm-s" --uid "$src" --vmi "$KV_TMP/$vm.json" --vm "default/$vm" \
	--binding bridge --detach >"$KV_TMP/src.out" 2>"$KV_TMP/src.err" || { cat "$KV_TMP/src.err"; die "migration: source pod"; }
ip=$(kv IP "$KV_TMP/src.out")
wait_ping "$CLIENT_NS" "$ip" 90 || die "migration: the source guest does not answer ping at $ip"
# the target pod on node2 runs the VMI as the source runs it (the MAC included)
pr 2 run --namespace default --name "virt-launcher-$vm-t" --uid "$dst" --vmi "$KV_TMP/n1/state/pods/$src/vmi.json" \
	--vm "default/$vm" --binding bridge --incoming --detach >"$KV_TMP/dst.out" 2>"$KV_TMP/dst.err" ||
	{ cat "$KV_TMP/dst.err"; die "migration: target pod"; }
assert_eq "$(kv PHASE "$KV_TMP/dst.out")" WaitingForMigration "migration: the target pod waits for the VM"
assert_eq "$(kv IP "$KV_TMP/dst.out")/$(kv MAC "$KV_TMP/dst.out")" "$ip/$(kv MAC "$KV_TMP/src.out")" \
	"migration: the target pod has the VM's IP and MAC"
port=$((20000 + RANDOM % 20000))
pr_exec 1 proxies "$src" --to-node-netns "/run/netns/$NODE2_NS" --to-state-dir "$KV_TMP/n2/state" --to-uid "$dst" \
	--to-address "$NODE2_UNDERLAY" --port "$port" --direct --to-migration-tls "$KV_TMP/n2/tls" >"$KV_TMP/px.out" \
	2>"$KV_TMP/px.err" &
PX_PID=$!
wait_line "$KV_TMP/px.out" MIGRATE_URI "$PX_PID" 10 || { cat "$KV_TMP/px.err"; die "migration: the proxies did not come up"; }
pass "migration: the proxies listen ($(kv DEST_URI "$KV_TMP/px.out"))"
# Anyone on the underlay reached the target pod's libvirtd through the proxy's port (libvirt's own socket has no
# authentication); with TLS only a holder of a certificate of the cluster's CA does.
assert_false "migration: plain TCP to the target's proxy port does not reach its libvirtd" \
	ip netns exec "$NODE1_NS" timeout 20 virsh -c "qemu+tcp://$NODE2_UNDERLAY:$port/system" version
# virsh through a TLS client of its own (libvirt's "ext" transport runs it), with a certificate of another CA and
# with node1's
"$KV_ROOT/scripts/migration-tls.sh" node "$KV_TMP/other-ca" "$KV_TMP/other" intruder "$NODE1_UNDERLAY" >/dev/null
for d in other n1/tls; do
	# (both trust the cluster's CA: the target must be the one refusing the other certificate)
	printf '#!/bin/sh\nexec socat - OPENSSL:%s:%s,cert=%s/node.pem,key=%s/node-key.pem,cafile=%s/ca.pem,verify=1\n' \
		"$NODE2_UNDERLAY" "$port" "$KV_TMP/$d" "$KV_TMP/$d" "$KV_TMP/n1/tls" >"$KV_TMP/tls-${d%%/*}.sh"
	chmod +x "$KV_TMP/tls-${d%%/*}.sh"
done
assert_false "migration: TLS with a certificate of another CA does not either" \
	ip netns exec "$NODE1_NS" timeout 20 virsh -c "qemu+ext:///system?command=$KV_TMP/tls-other.sh" version
assert_true "migration: TLS with node1's certificate does (the control)" \
	ip netns exec "$NODE1_NS" timeout 20 virsh -c "qemu+ext:///system?command=$KV_TMP/tls-n1.sh" version
t0=$(date +%s%3N)
"$KV_BIN/kvnet-launcher" --migrate "$(kv DEST_URI "$KV_TMP/px.out")" --socket "$(kv LAUNCHER_SOCK "$KV_TMP/src.out")" \
	--direct --migrate-uri "$(kv MIGRATE_URI "$KV_TMP/px.out")" --max-downtime-ms 50 \
	--dest-state-dir "$KV_TMP/n2/state/pods/$dst/state" --dest-serial-log "$KV_TMP/n2/state/pods/$dst/serial.log" \
	>"$KV_TMP/mig.json" 2>"$KV_TMP/mig.err" || true
assert_eq "$(jq -r .state "$KV_TMP/mig.json" 2>/dev/null)" completed "migration: completed ($(jq -c '{downtimeMs, totalMs, error}' "$KV_TMP/mig.json" 2>/dev/null))"
echo "POD_MIGRATION_MS=$(($(date +%s%3N) - t0))"
for _ in $(seq 1 300); do
	pr 2 status "$dst" >"$KV_TMP/dst.status"
	[ "$(kv PHASE "$KV_TMP/dst.status")" = Running ] && break
	sleep 0.1
done
assert_eq "$(kv PHASE "$KV_TMP/dst.status")" Running "migration: the target pod runs the VM"
if wait_ping "$CLIENT_NS" "$ip" 20; then pass "migration: the guest answers at $ip on node2"; else fail "migration: the guest answers at $ip on node2"; fi
for _ in $(seq 1 100); do
	pr 1 status "$src" >"$KV_TMP/src.status"
	[ "$(kv LAUNCHER_ALIVE "$KV_TMP/src.status")" = 0 ] && break
	sleep 0.1
done
assert_eq "$(kv PHASE "$KV_TMP/src.status")" Migrated "migration: the source launcher ended Migrated"
kill -TERM "$PX_PID"
px_rc=0
wait "$PX_PID" 2>/dev/null || px_rc=$?
PX_PID=
assert_eq "$px_rc" 0 "migration: podrun proxies ends cleanly on SIGTERM$(grep -m1 -E 'Sanitizer|runtime error' "$KV_TMP/px.err" || true)"
assert_eq "$(pgrep -fc "socat.*$port" || true)" 0 "migration: the proxies are gone"
pr 1 stop "$src" || fail "migration: stop of the source pod"
pr 2 stop "$dst" || fail "migration: stop of the target pod"
assert_nothing_left "migration (node1)" "$LINKS0" 1
assert_nothing_left "migration (node2)" "$LINKS0_2" 2

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
write_vmi "$KV_TMP/vm-f.json" vm-f bridge /boot/nonexistent
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
