#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kvnet-launcher --run against a private libvirtd (scripts/libvirt-node.sh) in a node namespace.
#
# node namespace: bridge kvbr0 10.77.0.1/24 + tap kvtap0 (created here, as CNI/netd would) +
# dnsmasq serving the guest's MAC a static lease; libvirtd runs in that namespace (and in a
# private mount namespace). The test guest (scripts/guest-image.sh) boots as a kernelBoot VMI.
# Checks: status file reaches Running; ping + GET /id within 30 s; the status socket (0600)
# answers; SIGTERM -> ACPI poweroff within the grace period, exit 0, phase Succeeded, domain gone,
# tap left alone; SIGKILL of the launcher leaves the domain running (libvirt owns QEMU; documented
# in docs/launcher.md) and a new launcher refuses to start a second copy; a VMI with a missing
# kernel fails before anything is started; libvirtd restarted (SIGTERM, SIGKILL) under a running VM:
# the launcher reconnects, the same guest runs on, a shutdown asked for meanwhile is done once it is
# back; libvirtd gone for longer than --reconnect-timeout: exit 5. Prints BOOT_TO_NETWORK_MS (launcher start -> first
# ping reply). Skips (4) without qemu/libvirtd/dnsmasq.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_cmd qemu-system-x86_64 virsh unshare curl findmnt
require_libvirt
command -v dnsmasq >/dev/null 2>&1 || skip "dnsmasq not installed (package dnsmasq-base)"
LAUNCHER=$KV_BIN/kvnet-launcher
require_file "$LAUNCHER"

guest_image
guest_store

NODE_DIR=$KV_TMP/node
NODE_NAME=kvt-$(rand_suffix)
URI=""

# The launcher goes first, then the libvirt node (libvirt_node_start), before lib.sh's cleanup deletes
# its namespace.
at_exit '[ -n "${LAUNCHER_PID:-}" ] && kill -TERM "$LAUNCHER_PID" 2>/dev/null'

setup_node

# ---------------------------------------------------------------- libvirt node
t0=$(date +%s%N)
libvirt_node_start "$NODE_NAME" "$NODE_NS" "$NODE_DIR"
pass "private libvirtd answers in $NODE_NS ($((($(date +%s%N) - t0) / 1000000)) ms)"
vsh() { virsh -q -c "$URI" "$@"; }
assert_eq "$(vsh list --all --name | grep -c . || true)" 0 "new libvirt node has no domains"
assert_false "host /run/libvirt has no socket of ours" test -S /run/libvirt/libvirt-sock
if findmnt -rn -o TARGET | grep -qE "^(/etc/libvirt|/run/libvirt|/var/lib/libvirt|/var/log/libvirt|/var/cache/libvirt|/etc/passwd)$|^$NODE_DIR"; then
	fail "no libvirt bind mounts visible in the host mount namespace"
else
	pass "no libvirt bind mounts visible in the host mount namespace"
fi
LVPID=$(cat "$NODE_DIR/libvirtd.pid")
assert_eq "$(readlink "/proc/$LVPID/ns/net")" "$(ip netns exec "$NODE_NS" readlink /proc/self/ns/net)" \
	"libvirtd runs in the node network namespace"
assert_ne "$(readlink "/proc/$LVPID/ns/mnt")" "$(readlink /proc/self/ns/mnt)" "libvirtd has its own mount namespace"

# ---------------------------------------------------------------- network: bridge + tap + dnsmasq
MAC=02:4b:56:77:00:0a
GIP=10.77.0.10
TAP=kvtap0
ip -n "$NODE_NS" link add kvbr0 type bridge
ip -n "$NODE_NS" addr add 10.77.0.1/24 dev kvbr0
ip -n "$NODE_NS" link set kvbr0 up
ip -n "$NODE_NS" tuntap add dev "$TAP" mode tap
ip -n "$NODE_NS" link set "$TAP" master kvbr0 up
bg ip netns exec "$NODE_NS" dnsmasq --keep-in-foreground --port=0 --user=root --group=root \
	--interface=kvbr0 --except-interface=lo --bind-interfaces --conf-file=/dev/null \
	--no-resolv --no-hosts --dhcp-leasefile="$KV_TMP/leases" --pid-file="$KV_TMP/dnsmasq.pid" \
	--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h --dhcp-host="$MAC,$GIP,lvguest" \
	--dhcp-option=option:router,10.77.0.1 --log-facility="$KV_TMP/dnsmasq.log"
DNSMASQ_PID=$BG_PID
sleep 0.3
kill -0 "$DNSMASQ_PID" 2>/dev/null || die "dnsmasq did not start"

# ---------------------------------------------------------------- VMI
STATE=$KV_TMP/state
VMI=$KV_TMP/vmi.yaml
DOM=default_lvguest
VMDIR=$STATE/$DOM
STATUS=$VMDIR/status.json
SOCK=$VMDIR/launcher.sock
write_vmi() { # FILE KERNEL-PATH-INSIDE-THE-IMAGE
	cat >"$1" <<EOF
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: lvguest
  namespace: default
spec:
  terminationGracePeriodSeconds: 40
  domain:
    firmware:
      kernelBoot:
        kernelArgs: "console=ttyS0 quiet panic=-1"
        container:
          image: $GUEST_REF
          kernelPath: $2
          initrdPath: /boot/initrd.img
    memory:
      guest: 256Mi
    devices:
      interfaces:
        - name: default
          bridge: {}
          macAddress: "$MAC"
  networks:
    - name: default
      pod: {}
EOF
}
write_vmi "$VMI" /boot/vmlinuz

phase() { jq -r .phase "$STATUS" 2>/dev/null || echo none; }
wait_phase() { # PHASE SECONDS
	local _
	for _ in $(seq 1 $(($2 * 10))); do
		[ "$(phase)" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
# wait_exit SECONDS WHAT: until the launcher exits (else WHAT fails and it is killed); rc = its exit code.
wait_exit() {
	local _
	for _ in $(seq 1 $(($1 * 10))); do
		kill -0 "$LAUNCHER_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$LAUNCHER_PID" 2>/dev/null; then
		fail "$2"
		kill -KILL "$LAUNCHER_PID"
	fi
	rc=0
	wait "$LAUNCHER_PID" || rc=$?
	LAUNCHER_PID=""
}
start_launcher() { # LOGFILE [extra args]
	local logf=$1
	shift
	ip netns exec "$NODE_NS" "$LAUNCHER" --run "$VMI" --image-dir "$GUEST_IMAGES" --connect "$URI" --nic "default=tap:$TAP" \
		--state-dir "$STATE" "$@" >"$logf" 2>&1 &
	LAUNCHER_PID=$!
}

# ---------------------------------------------------------------- 1: run, network, socket, SIGTERM
T_START=$(date +%s%N)
start_launcher "$KV_TMP/launcher1.log"
if wait_phase Running 30; then
	pass "status file reaches phase Running"
else
	die "status file did not reach Running (phase $(phase))"
fi
assert_eq "$(vsh domstate "$DOM" | head -n1)" running "libvirt runs domain $DOM"
assert_eq "$(jq -r '.accel' "$STATUS")" qemu "status: accel qemu (TCG, /dev/kvm not used)"
assert_eq "$(jq -r '.interfaces[0] | "\(.name) \(.mac) \(.tap)"' "$STATUS")" "default $MAC $TAP" \
	"status: interface name, MAC and tap"
assert_eq "$(jq -r .pid "$STATUS")" "$LAUNCHER_PID" "status: pid is the launcher's"
assert_true "status: startedAt set" jq -e '.startedAt | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T")' "$STATUS"

got_ping=0
while [ $((($(date +%s%N) - T_START) / 1000000)) -lt 30000 ]; do
	if ip netns exec "$NODE_NS" ping -c 1 -W 0.1 -q "$GIP" >/dev/null 2>&1; then
		got_ping=1
		break
	fi
	kill -0 "$LAUNCHER_PID" 2>/dev/null || break
	sleep 0.05
done
T_PING=$(date +%s%N)
if [ "$got_ping" = 1 ]; then
	BOOT_MS=$(((T_PING - T_START) / 1000000))
	pass "guest answers ping at $GIP ($BOOT_MS ms after launcher start)"
	echo "BOOT_TO_NETWORK_MS=$BOOT_MS"
else
	tr -d '\r' <"$VMDIR/serial.log" | tail -n 20
	die "guest did not answer ping within 30 s"
fi
# The address answers ping a little before httpd listens: retry up to the 30 s deadline.
id=""
while [ $((($(date +%s%N) - T_START) / 1000000)) -lt 30000 ]; do
	id=$(ip netns exec "$NODE_NS" curl -s -m 2 "http://$GIP/id" || true)
	[ -n "$id" ] && break
	sleep 0.2
done
boot_id=$(tr -d '\r' <"$VMDIR/serial.log" | sed -n 's/^KVNET-GUEST boot_id=\([0-9a-f-]*\) booting.*/\1/p' | head -n1)
if [ -n "$boot_id" ] && [ "$id" = "boot_id=$boot_id" ]; then
	pass "GET /id answers the boot_id of the console ($boot_id)"
else
	fail "GET /id answers the boot_id of the console (got '$id', console '$boot_id')"
fi

QPID=$(cat "$NODE_DIR/run/libvirt/qemu/$DOM.pid" 2>/dev/null || true)
assert_true "QEMU runs under libvirt's seccomp filter (-sandbox on, no exec, no privilege changes)" \
	grep -q "on,obsolete=deny,elevateprivileges=deny,spawn=deny" "/proc/$QPID/cmdline"
assert_eq "$(stat -c %a "$SOCK" 2>/dev/null)" 600 "status socket mode 0600"
sres=$(echo '{"op":"status"}' | timeout 5 socat - "UNIX-CONNECT:$SOCK" || true)
assert_eq "$(jq -r '"\(.ok) \(.result.phase) \(.result.domain) \(.result.interfaces[0].tap)"' <<<"$sres" 2>/dev/null)" \
	"true Running $DOM $TAP" "status socket answers {\"op\":\"status\"}"
assert_eq "$(jq -r .result.phase <<<"$(echo '{"op":"nope"}' | timeout 5 socat - "UNIX-CONNECT:$SOCK")" 2>/dev/null)" null \
	"status socket rejects an unknown op"
assert_eq "$("$LAUNCHER" --status default/lvguest --state-dir "$STATE" | jq -r .phase)" Running \
	"kvnet-launcher --status default/lvguest"

T_TERM=$(date +%s%N)
kill -TERM "$LAUNCHER_PID"
wait_exit 50 "launcher exits after SIGTERM within 50 s"
TERM_MS=$((($(date +%s%N) - T_TERM) / 1000000))
assert_eq "$rc" 0 "launcher exits 0 after SIGTERM ($TERM_MS ms, grace 40 s)"
assert_eq "$(phase)" Succeeded "final phase Succeeded"
assert_true "final reason names the ACPI power button" jq -e '.reason | test("ACPI")' "$STATUS"
assert_true "status: finishedAt set" jq -e '.finishedAt != null' "$STATUS"
assert_true "guest saw the ACPI power button" grep -q 'event=acpi-power-button' "$VMDIR/serial.log"
assert_eq "$(vsh list --all --name | grep -c . || true)" 0 "domain gone (virsh list --all empty)"
assert_false "status socket removed" test -e "$SOCK"
assert_link "$NODE_NS" "$TAP"
[ "$TERM_MS" -lt 40000 ] && pass "ACPI poweroff within the grace period" || fail "ACPI poweroff within the grace period"

# ---------------------------------------------------------------- 2a: SIGKILL takes the VM with it
rm -f "$STATUS" # wait_phase must see this run's status, not the last one's
start_launcher "$KV_TMP/launcher2a.log"
wait_phase Running 30 || die "run 2a did not reach Running"
kill -KILL "$LAUNCHER_PID"
wait "$LAUNCHER_PID" 2>/dev/null || true
LAUNCHER_PID=""
gone=0
for _ in $(seq 1 50); do
	[ "$(vsh list --all --name | grep -c . || true)" = 0 ] && { gone=1; break; }
	sleep 0.2
done
assert_eq "$gone" 1 "after SIGKILL of the launcher libvirt destroys the domain (autodestroy, like a pod's VM)"
assert_link "$NODE_NS" "$TAP"
rm -f "$STATE"/*/launcher.sock

# ---------------------------------------------------------------- 2b: --keep-on-exit leaves the domain to libvirt
rm -f "$STATUS"
start_launcher "$KV_TMP/launcher2.log" --keep-on-exit
wait_phase Running 30 || die "second run did not reach Running"
kill -KILL "$LAUNCHER_PID"
wait "$LAUNCHER_PID" 2>/dev/null || true
LAUNCHER_PID=""
sleep 1
assert_eq "$(vsh domstate "$DOM" 2>/dev/null | head -n1)" running \
	"with --keep-on-exit the domain survives SIGKILL of the launcher (libvirt owns QEMU)"
assert_eq "$(phase)" Running "status file keeps the last phase written (Running)"
# A new launcher for the same VMI refuses to start a second copy.
rc=0
ip netns exec "$NODE_NS" timeout 30 "$LAUNCHER" --run "$VMI" --image-dir "$GUEST_IMAGES" --connect "$URI" --nic "default=tap:$TAP" \
	--state-dir "$STATE" >"$KV_TMP/launcher3.log" 2>&1 || rc=$?
assert_eq "$rc" 3 "a second launcher for a running domain exits 3"
assert_true "it says the domain already exists" grep -q "already exists" "$KV_TMP/launcher3.log"
assert_eq "$(vsh domstate "$DOM" 2>/dev/null | head -n1)" running "the orphaned domain is untouched"
vsh destroy "$DOM" >/dev/null
assert_eq "$(vsh list --all --name | grep -c . || true)" 0 "virsh destroy cleans the orphan up"

# ---------------------------------------------------------------- 3: missing kernel
BAD=$KV_TMP/bad.yaml
write_vmi "$BAD" /nonexistent/kvnet/vmlinuz
BADSTATE=$KV_TMP/badstate
rc=0
ip netns exec "$NODE_NS" "$LAUNCHER" --run "$BAD" --image-dir "$GUEST_IMAGES" --connect "$URI" --nic "default=tap:$TAP" \
	--state-dir "$BADSTATE" >"$KV_TMP/launcher-bad.log" 2>&1 || rc=$?
assert_eq "$rc" 1 "missing kernel: exit 1"
if grep -q 'kernelPath' "$KV_TMP/launcher-bad.log" && grep -q '/nonexistent/kvnet/vmlinuz' "$KV_TMP/launcher-bad.log"; then
	pass "missing kernel: message names kernelPath and the file"
else
	fail "missing kernel: message names kernelPath and the file ($(cat "$KV_TMP/launcher-bad.log"))"
fi
assert_false "missing kernel: nothing created (no state dir)" test -e "$BADSTATE"
assert_eq "$(vsh list --all --name | grep -c . || true)" 0 "missing kernel: no domain started"

# ---------------------------------------------------------------- 4a: libvirtd restarted under a running VM
# (SIGTERM, as `systemctl restart libvirtd`; then SIGKILL, a crash): QEMU runs on, the new daemon takes
# it over, the launcher reconnects and supervises the same guest; a shutdown asked for while it is
# away is done once it is back. --migratable (no autodestroy), as kvnet-node starts every launcher:
# a libvirtd that stops cleanly destroys the autodestroy domains of its clients (4c).
guest_id() { ip netns exec "$NODE_NS" curl -s -m 2 "http://$GIP/id" 2>/dev/null || true; }
rm -f "$STATUS"
start_launcher "$KV_TMP/launcher4.log" --migratable
wait_phase Running 30 || die "fourth run did not reach Running"
id4=""
wait_until 40 sh -c "ip netns exec '$NODE_NS' curl -s -m 2 'http://$GIP/id' | grep -q boot_id" || true
id4=$(guest_id)
[ -n "$id4" ] || die "run 4: the guest did not answer GET /id"
restarts=0
for how in "" --kill; do
	restarts=$((restarts + 1))
	out=$("$KV_ROOT/scripts/libvirt-node.sh" restart "$NODE_NAME" --dir "$NODE_DIR" $how) ||
		die "libvirt-node.sh restart $how failed"
	assert_eq "$(sed -n 's/^URI=//p' <<<"$out")" "$URI" "libvirtd restarted ${how:-(SIGTERM)}: same URI"
	LVPID=$(cat "$NODE_DIR/libvirtd.pid")
	if wait_until 30 jq -e ".libvirtReconnects == $restarts" "$STATUS"; then
		pass "launcher reconnected after libvirtd restart ${how:-(SIGTERM)} ($(jq -r .reason "$STATUS"))"
	else
		fail "launcher reconnected after libvirtd restart ${how:-(SIGTERM)} (status: $(cat "$STATUS"))"
	fi
	assert_true "launcher still running" kill -0 "$LAUNCHER_PID"
	assert_eq "$(phase)" Running "phase still Running"
	assert_eq "$(vsh domstate "$DOM" 2>/dev/null | head -n1)" running "the new libvirtd runs domain $DOM"
	assert_eq "$(guest_id)" "$id4" "the same guest answers (no reboot: boot_id unchanged)"
done
# libvirtd down, SIGTERM to the launcher: deferred, then done once the daemon is back.
kill -KILL "$LVPID"
wait_until 10 jq -e '.reason | test("reconnecting")' "$STATUS" || fail "status says reconnecting"
kill -TERM "$LAUNCHER_PID"
sleep 1
assert_true "SIGTERM while libvirtd is away: the launcher waits" kill -0 "$LAUNCHER_PID"
"$KV_ROOT/scripts/libvirt-node.sh" restart "$NODE_NAME" --dir "$NODE_DIR" >/dev/null || die "libvirt-node.sh restart failed"
LVPID=$(cat "$NODE_DIR/libvirtd.pid")
wait_exit 50 "launcher exits after the deferred shutdown"
assert_eq "$rc" 0 "deferred shutdown: exit 0"
assert_eq "$(phase)" Succeeded "deferred shutdown: phase Succeeded (ACPI power-off through the new libvirtd)"
assert_eq "$(jq -r .libvirtReconnects "$STATUS")" 3 "status: libvirtReconnects 3"
assert_eq "$(vsh list --all --name | grep -c . || true)" 0 "deferred shutdown: domain gone"

# ---------------------------------------------------------------- 4c: an autodestroy domain and a clean libvirtd stop
rm -f "$STATUS"
start_launcher "$KV_TMP/launcher4c.log"
wait_phase Running 30 || die "run 4c did not reach Running"
"$KV_ROOT/scripts/libvirt-node.sh" restart "$NODE_NAME" --dir "$NODE_DIR" >/dev/null || die "libvirt-node.sh restart failed"
LVPID=$(cat "$NODE_DIR/libvirtd.pid")
wait_exit 30 "autodestroy: the launcher exits once libvirtd is back without the domain"
assert_eq "$rc" 4 "autodestroy domain destroyed by libvirtd's clean stop: exit 4"
assert_true "autodestroy: the reason says libvirtd came back without the domain" \
	jq -e '.reason | test("came back .* without domain")' "$STATUS"
assert_false "autodestroy: the VM's files are removed" test -e "$SOCK"

# ---------------------------------------------------------------- 4b: libvirtd does not come back
rm -f "$STATUS"
start_launcher "$KV_TMP/launcher4b.log" --reconnect-timeout 3
wait_phase Running 30 || die "run 4b did not reach Running"
kill -KILL "$LVPID"
wait_exit 30 "launcher exits when libvirtd stays away past --reconnect-timeout"
assert_eq "$rc" 5 "libvirt connection lost for good: launcher exits 5"
assert_eq "$(phase)" Failed "libvirt connection lost for good: phase Failed"
assert_true "libvirt connection lost for good: reason says so" jq -e '.reason | test("not back within 3 s")' "$STATUS"
QEMU_PIDS=$(cat "$NODE_DIR/run/libvirt/qemu/$DOM.pid" 2>/dev/null || true)

# ---------------------------------------------------------------- node stop leaves nothing behind
"$KV_ROOT/scripts/libvirt-node.sh" stop "$NODE_NAME" --dir "$NODE_DIR" || fail "libvirt-node.sh stop"
# (a zombie until init reaps it: look at the state, not just the pid)
alive() { [ -e "/proc/$1/stat" ] && ! awk '{ exit ($3 == "Z") ? 0 : 1 }' "/proc/$1/stat" 2>/dev/null; }
assert_false "libvirtd gone" alive "$LVPID"
assert_false "node dir removed" test -e "$NODE_DIR"
[ -n "$QEMU_PIDS" ] && pass "the orphaned QEMU had a pid file ($QEMU_PIDS)" || fail "the orphaned QEMU had a pid file"
left=""
for p in $QEMU_PIDS; do alive "$p" && left="$left $p"; done
assert_eq "$left" "" "stop kills the QEMU a dead libvirtd left behind"
if pgrep -f "qemu-system.*$VMDIR/" >/dev/null 2>&1; then
	fail "no QEMU left after stop"
	ps -o pid,ppid,stat,args -p "$(pgrep -d, -f "qemu-system.*$VMDIR/")" | cut -c1-160
else
	pass "no QEMU left after stop"
fi

finish
