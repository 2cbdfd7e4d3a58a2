#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Live migration between two "pods", each with its own libvirtd, across an underlay (docs/migration.md).
#
#   node1 ns  10.99.0.1 --veth ul1/ul2-- 10.99.0.2  node2 ns
#   pod A ns: libvirtd A + tap0         pod B ns: libvirtd B + tap0
# Pod namespaces have no IP connectivity: libvirt peer-to-peer + tunnelled migration goes
#   libvirtd A -> unix socket -> socat (node1) -> TCP over the underlay -> socat (node2) -> libvirtd B.
# Checks: the test guest (with a cloudInitNoCloud volume) boots on A (--migratable);
# `kvnet-launcher --migrate --dest-state-dir` moves it to B (source exits 0 phase Migrated and
# removes its seed ISO, target reaches Running, downtime > 0 reported, the target's console log in
# its own state dir continues the same boot, the domain on B uses B's seed ISO, which B's --incoming
# launcher built; after a reset on B the guest reads its cidata from it: same instance-id); back
# B -> A; failures: (a) B's libvirtd stopped -> clear error, VM keeps running on A; (b) underlay cut
# mid-migration (--bandwidth 1) -> fails, VM still Running on A, the target launcher exits and
# removes its seed ISO, nothing left on B. Prints MIGRATION=<n> DOWNTIME_MS= TOTAL_MS=.
# Skips (4) without qemu/libvirtd or an ISO tool.
# kvnet-test-timeout: 600
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_cmd qemu-system-x86_64 virsh unshare socat
require_libvirt
require_iso_tool
LAUNCHER=$KV_BIN/kvnet-launcher
require_file "$LAUNCHER"
guest_image cidata
guest_store

SUF=$(rand_suffix)
NAME_A=kvt-pa-$SUF
NAME_B=kvt-pb-$SUF
DIR_A=$KV_TMP/nodeA
DIR_B=$KV_TMP/nodeB
LPIDS=()

mig_cleanup() {
	local rc=$? p
	set +e
	for p in "${LPIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	if [ "$rc" -ne 0 ] && [ "$rc" -ne "$KSFT_SKIP" ]; then
		for f in "$KV_TMP"/launcher-*.log; do
			echo "---- $f ----"
			tail -n 25 "$f"
		done
		tail -n 15 "$DIR_A"/log/libvirt/libvirtd.log "$DIR_B"/log/libvirt/libvirtd.log 2>/dev/null
		tail -n 10 "$DIR_A"/log/libvirt/qemu/*.log "$DIR_B"/log/libvirt/qemu/*.log 2>/dev/null
	fi
	"$KV_ROOT/scripts/libvirt-node.sh" stop "$NAME_A" --dir "$DIR_A" >/dev/null 2>&1
	"$KV_ROOT/scripts/libvirt-node.sh" stop "$NAME_B" --dir "$DIR_B" >/dev/null 2>&1
	(exit "$rc")
	kv_cleanup
}
trap mig_cleanup EXIT

# ---------------------------------------------------------------- topology
mkns N1 node1
mkns N2 node2
mkns PA poda
mkns PB podb
ip link add ul1 netns "$N1" type veth peer name ul2 netns "$N2"
ip -n "$N1" addr add 10.99.0.1/24 dev ul1
ip -n "$N2" addr add 10.99.0.2/24 dev ul2
ip -n "$N1" link set ul1 up
ip -n "$N2" link set ul2 up
for ns in "$PA" "$PB"; do
	ip -n "$ns" tuntap add dev tap0 mode tap
	ip -n "$ns" link set tap0 up
done

start_node() { # NAME NETNS DIR -> prints URI
	local out
	out=$("$KV_ROOT/scripts/libvirt-node.sh" start "$1" "$2" --dir "$3") || die "libvirt-node.sh start $1 failed"
	sed -n 's/^URI=//p' <<<"$out"
}
t0=$(date +%s%N)
URI_A=$(start_node "$NAME_A" "$PA" "$DIR_A")
t1=$(date +%s%N)
URI_B=$(start_node "$NAME_B" "$PB" "$DIR_B")
t2=$(date +%s%N)
pass "pod libvirtds up (A $(((t1 - t0) / 1000000)) ms, B $(((t2 - t1) / 1000000)) ms)"
SOCK_A=$DIR_A/run/libvirt/libvirt-sock
SOCK_B=$DIR_B/run/libvirt/libvirt-sock
vsh() { virsh -q -c "$1" "${@:2}"; }

# proxies: node1 unix -> underlay -> node2 -> pod B, and the reverse
PROXY_TO_B=$KV_TMP/to-b.sock
PROXY_TO_A=$KV_TMP/to-a.sock
bg ip netns exec "$N2" socat TCP-LISTEN:16600,bind=10.99.0.2,reuseaddr,fork "UNIX-CONNECT:$SOCK_B"
bg ip netns exec "$N1" socat "UNIX-LISTEN:$PROXY_TO_B,fork" TCP:10.99.0.2:16600,connect-timeout=5
bg ip netns exec "$N1" socat TCP-LISTEN:16600,bind=10.99.0.1,reuseaddr,fork "UNIX-CONNECT:$SOCK_A"
bg ip netns exec "$N2" socat "UNIX-LISTEN:$PROXY_TO_A,fork" TCP:10.99.0.1:16600,connect-timeout=5
wait_listen "$N1" 16600 || die "proxy on node1 did not come up"
wait_listen "$N2" 16600 || die "proxy on node2 did not come up"
for _ in $(seq 1 50); do [ -S "$PROXY_TO_B" ] && [ -S "$PROXY_TO_A" ] && break; sleep 0.1; done
DEST_B="qemu+unix:///system?socket=$PROXY_TO_B"
DEST_A="qemu+unix:///system?socket=$PROXY_TO_A"
assert_true "pod B's libvirt answers through the underlay proxies" virsh -q -c "$DEST_B" version

# ---------------------------------------------------------------- VMI
VMI=$KV_TMP/vmi.yaml
DOM=default_migguest
UID_=5e0c7b1a-2f4d-4c3e-8a61-$(rand_suffix)0000
cat >"$VMI" <<EOF
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: migguest
  namespace: default
  uid: $UID_
spec:
  terminationGracePeriodSeconds: 30
  domain:
    firmware:
      kernelBoot:
        kernelArgs: "console=ttyS0 quiet panic=-1 kvnet.dhcp_timeout=2"
        container:
          image: $GUEST_REF
          kernelPath: /boot/vmlinuz
          initrdPath: /boot/initrd.img
    memory:
      guest: 128Mi
    devices:
      disks:
        - name: cloudinitdisk
          disk:
            bus: virtio
      interfaces:
        - name: default
          bridge: {}
          macAddress: "02:4b:56:99:00:01"
  networks:
    - name: default
      pod: {}
  volumes:
    - name: cloudinitdisk
      cloudInitNoCloud:
        userData: |
          #cloud-config
          runcmd: [ [ echo, migguest ] ]
EOF
ISO_NAME=cloudinitdisk-cidata.iso
seed_files_gone() { # STATEDIR: the launcher's seed ISO and staging dir are gone, its status stays
	! test -e "$1/$DOM/$ISO_NAME" && ! test -e "$1/$DOM/cloudinitdisk-cidata" && test -s "$1/$DOM/status.json"
}

# launcher NS URI STATEDIR LOG [args]: sets LPID
launcher() {
	local ns=$1 uri=$2 st=$3 logf=$4
	shift 4
	ip netns exec "$ns" "$LAUNCHER" --run "$VMI" --image-dir "$GUEST_IMAGES" --connect "$uri" --nic default=tap:tap0 --state-dir "$st" "$@" \
		>"$logf" 2>&1 &
	LPID=$!
	LPIDS+=("$LPID")
}
phase_of() { jq -r .phase "$1/$DOM/status.json" 2>/dev/null || echo none; }
wait_phase() { # STATEDIR PHASE SECONDS
	local _
	for _ in $(seq 1 $(($3 * 10))); do
		[ "$(phase_of "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
wait_exit() { # PID SECONDS -> sets EXIT_RC (or 255 if still running)
	local _
	EXIT_RC=255
	for _ in $(seq 1 $(($2 * 10))); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$1" 2>/dev/null && return 1
	EXIT_RC=0
	wait "$1" || EXIT_RC=$?
}
console() { tr -d '\r' <"$1" 2>/dev/null; }
migrate() { # SOCK DEST_URI OUTFILE [args] -> MIG_RC
	MIG_RC=0
	"$LAUNCHER" --migrate "$2" --socket "$1" "${@:4}" >"$3" 2>"$3.err" || MIG_RC=$?
}
report() { # N OUTFILE
	echo "MIGRATION=$1 DOWNTIME_MS=$(jq -r .downtimeMs "$2") TOTAL_MS=$(jq -r .totalMs "$2") WALL_MS=$(jq -r .wallMs "$2") DATA_BYTES=$(jq -r .dataBytes "$2")"
}

# ---------------------------------------------------------------- boot on A
SA1=$KV_TMP/stateA1
launcher "$PA" "$URI_A" "$SA1" "$KV_TMP/launcher-A1.log" --migratable
LA1=$LPID
wait_phase "$SA1" Running 60 || die "launcher A did not reach Running ($(phase_of "$SA1"))"
SER_A1=$SA1/$DOM/serial.log
boot_id=""
for _ in $(seq 1 600); do
	boot_id=$(console "$SER_A1" | sed -n 's/^KVNET-GUEST boot_id=\([0-9a-f-]*\) booting.*/\1/p' | head -n1)
	[ -n "$boot_id" ] && console "$SER_A1" | grep -q 'KVNET-GUEST ready' && break
	sleep 0.1
done
[ -n "$boot_id" ] || die "guest did not boot on A (no boot line in $SER_A1)"
pass "guest booted on pod A (boot_id $boot_id)"
assert_eq "$(jq -r .migratable "$SA1/$DOM/status.json")" true "status: migratable"

# a second, autodestroy launcher would refuse: checked through the op's validation on a bad request
res=$(echo '{"op":"migrate","args":{"destUri":"qemu:///system","speed":1}}' | timeout 5 socat - "UNIX-CONNECT:$SA1/$DOM/launcher.sock")
assert_true "migrate op rejects an unknown field, naming it" jq -e '.ok == false and (.msg | test("speed"))' <<<"$res"

# ---------------------------------------------------------------- A -> B
SB1=$KV_TMP/stateB1
launcher "$PB" "$URI_B" "$SB1" "$KV_TMP/launcher-B1.log" --incoming --incoming-timeout 120
LB1=$LPID
wait_phase "$SB1" WaitingForMigration 20 || die "target launcher B did not reach WaitingForMigration"
pass "target launcher waits (phase WaitingForMigration)"
assert_true "target launcher built its own seed ISO before the migration" test -s "$SB1/$DOM/$ISO_NAME"
SER_B1=$SB1/$DOM/serial.log
migrate "$SA1/$DOM/launcher.sock" "$DEST_B" "$KV_TMP/mig1.json" --dest-state-dir "$SB1" --timeout 120
assert_eq "$MIG_RC" 0 "kvnet-launcher --migrate A -> B exits 0 ($(cat "$KV_TMP/mig1.json.err" | tail -n1))"
assert_eq "$(jq -r .state "$KV_TMP/mig1.json")" completed "migration JSON: state completed"
dt=$(jq -r .downtimeMs "$KV_TMP/mig1.json")
if [ "$dt" -gt 0 ] 2>/dev/null; then pass "QEMU downtime reported ($dt ms)"; else fail "QEMU downtime reported (got '$dt')"; fi
report 1 "$KV_TMP/mig1.json"
wait_exit "$LA1" 20 || true
assert_eq "$EXIT_RC" 0 "source launcher A exits 0"
assert_eq "$(phase_of "$SA1")" Migrated "source phase Migrated"
assert_true "source launcher removed its seed ISO and cidata dir (status kept)" seed_files_gone "$SA1"
wait_phase "$SB1" Running 20 && pass "target launcher B reaches Running" || fail "target launcher B reaches Running ($(phase_of "$SB1"))"
assert_eq "$(vsh "$URI_B" domstate "$DOM" 2>/dev/null | head -n1)" running "domain runs on pod B"
assert_eq "$(vsh "$URI_A" list --all --name | grep -c . || true)" 0 "nothing left on pod A"
assert_true "target console log exists ($SER_B1)" test -e "$SER_B1"
assert_false "target console shows no new boot (same guest instance)" grep -q 'booting' "$SER_B1"
assert_eq "$(jq -r .migration.state "$SB1/$DOM/status.json")" completed "target status: migration completed"
xml=$(vsh "$URI_B" dumpxml "$DOM")
assert_true "domain on B uses B's seed ISO" grep -q "source file='$SB1/$DOM/$ISO_NAME'" <<<"$xml"
assert_false "domain on B names nothing in A's state dir" grep -q "$SA1/" <<<"$xml"
# The guest read its cidata at boot on A; a reset on B makes it read the seed disk again, now B's.
vsh "$URI_B" reset "$DOM" >/dev/null
ci=$(console_line "$SER_B1" ' cidata dev=' 90)
assert_true "after a reset on B the guest sees its cidata: instance-id $UID_ (${ci#KVNET-GUEST })" \
	grep -q " instance-id=$UID_ " <<<"$ci"
boot_id=$(console "$SER_B1" | sed -n 's/^KVNET-GUEST boot_id=\([0-9a-f-]*\) booting.*/\1/p' | head -n1)
[ -n "$boot_id" ] || die "no boot line on B after the reset"
console_line "$SER_B1" 'ready$' 60 >/dev/null

# ---------------------------------------------------------------- B -> A
SA2=$KV_TMP/stateA2
launcher "$PA" "$URI_A" "$SA2" "$KV_TMP/launcher-A2.log" --incoming --incoming-timeout 120
LA2=$LPID
wait_phase "$SA2" WaitingForMigration 20 || die "target launcher A2 did not reach WaitingForMigration"
SER_A2=$SA2/$DOM/serial.log
migrate "$SB1/$DOM/launcher.sock" "$DEST_A" "$KV_TMP/mig2.json" --dest-state-dir "$SA2" --timeout 120 --max-downtime-ms 300
assert_eq "$MIG_RC" 0 "kvnet-launcher --migrate B -> A exits 0 ($(tail -n1 "$KV_TMP/mig2.json.err"))"
report 2 "$KV_TMP/mig2.json"
wait_exit "$LB1" 20 || true
assert_eq "$EXIT_RC" 0 "launcher B exits 0 after migrating back"
assert_eq "$(phase_of "$SB1")" Migrated "launcher B phase Migrated"
assert_true "launcher B removed its seed ISO after migrating back" seed_files_gone "$SB1"
wait_phase "$SA2" Running 20 && pass "launcher A2 reaches Running" || fail "launcher A2 reaches Running ($(phase_of "$SA2"))"
assert_eq "$(vsh "$URI_B" list --all --name | grep -c . || true)" 0 "nothing left on pod B"

# ---------------------------------------------------------------- failure (a): target libvirtd stopped
"$KV_ROOT/scripts/libvirt-node.sh" stop "$NAME_B" --dir "$DIR_B" >/dev/null
migrate "$SA2/$DOM/launcher.sock" "$DEST_B" "$KV_TMP/mig3.json" --timeout 30
assert_eq "$MIG_RC" 1 "migrate to a stopped libvirtd fails (exit 1)"
assert_eq "$(jq -r .state "$KV_TMP/mig3.json")" failed "migration JSON: state failed"
err=$(jq -r .error "$KV_TMP/mig3.json")
[ -n "$err" ] && [ "$err" != null ] && pass "clear error: $err" || fail "clear error in the migration JSON"
assert_eq "$(phase_of "$SA2")" Running "source launcher still Running"
assert_eq "$(vsh "$URI_A" domstate "$DOM" | head -n1)" running "VM still running on A"
res=$(echo '{"op":"migrate-cancel"}' | timeout 5 socat - "UNIX-CONNECT:$SA2/$DOM/launcher.sock")
assert_true "migrate-cancel without a migration is a clear error" jq -e '.ok == false and (.msg | test("no migration"))' <<<"$res"

# ---------------------------------------------------------------- failure (b): underlay cut mid-migration
URI_B=$(start_node "$NAME_B" "$PB" "$DIR_B")
SB2=$KV_TMP/stateB2
launcher "$PB" "$URI_B" "$SB2" "$KV_TMP/launcher-B2.log" --incoming --incoming-timeout 120
LB2=$LPID
wait_phase "$SB2" WaitingForMigration 20 || die "target launcher B2 did not reach WaitingForMigration"
T_CUT0=$(date +%s%N)
"$LAUNCHER" --migrate "$DEST_B" --socket "$SA2/$DOM/launcher.sock" --bandwidth 1 --timeout 90 \
	--dest-state-dir "$SB2" --dest-serial-log "$KV_TMP/serial-B2.log" >"$KV_TMP/mig4.json" 2>"$KV_TMP/mig4.json.err" &
MPID=$!
# cut once the incoming domain exists on B (the migration is streaming)
for _ in $(seq 1 200); do
	[ "$(vsh "$URI_B" list --all --name 2>/dev/null | grep -c . || true)" -gt 0 ] && break
	sleep 0.1
done
sleep 1
ip -n "$N1" link set ul1 down
T_CUT=$(date +%s%N)
pass "underlay cut $(((T_CUT - T_CUT0) / 1000000)) ms after the migration started"
wait_exit "$MPID" 100 || { kill "$MPID"; fail "migrate returns after the underlay cut"; }
CUT_MS=$((($(date +%s%N) - T_CUT) / 1000000))
assert_eq "$EXIT_RC" 1 "migration fails after the underlay cut ($CUT_MS ms after the cut)"
echo "UNDERLAY_CUT_FAIL_MS=$CUT_MS"
log "error: $(jq -r .error "$KV_TMP/mig4.json" 2>/dev/null)"
assert_eq "$(phase_of "$SA2")" Running "source launcher still Running after the cut"
assert_eq "$(vsh "$URI_A" domstate "$DOM" | head -n1)" running "VM still running on A after the cut"
wait_exit "$LB2" 90 || true
assert_eq "$EXIT_RC" 7 "target launcher gives up (exit 7)"
assert_true "the failed target launcher removed its seed ISO" seed_files_gone "$SB2"
log "target reason: $(jq -r .reason "$SB2/$DOM/status.json")"
assert_eq "$(vsh "$URI_B" list --all --name | grep -c . || true)" 0 "nothing left on pod B (virsh list --all empty)"
ip -n "$N1" link set ul1 up

# ---------------------------------------------------------------- the same guest all along
kill -TERM "$LA2"
wait_exit "$LA2" 60 || true
assert_eq "$EXIT_RC" 0 "launcher A2 exits 0 after SIGTERM (ACPI poweroff)"
if console "$SER_A2" | grep -q "KVNET-GUEST boot_id=$boot_id event=acpi-power-button"; then
	pass "the guest that powered off on A has the boot_id of its boot on B (no boot since)"
else
	fail "the guest that powered off on A has the boot_id of its boot on B ($(console "$SER_A2" | grep KVNET | tail -n2))"
fi
assert_false "no second boot anywhere" grep -q booting "$SER_A2"
assert_true "launcher A2 removed its seed ISO after the poweroff" seed_files_gone "$SA2"

finish
