#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kvnet-launcher's cloudInitNoCloud seed disk and emptyDisk with a real guest, on a private libvirtd
# (scripts/libvirt-node.sh) in a node namespace; the NIC is a plain tap (no netd, no DHCP server).
#
# The VMI has a cloudInitNoCloud volume (userData + networkData) and a 64Mi emptyDisk. Checks:
#  - while it runs: the seed ISO (volume id cidata) and the sparse emptyDisk exist in the VM's state
#    dir with the right size, and the cidata files carry the launcher's meta-data
#  - the guest (scripts/guest-image.sh, which mounts a cidata disk and lists its block devices on
#    the console) saw exactly the instance-id (= metadata.uid), the local-hostname, the sha256 of
#    userData and of networkData, and a writable disk of exactly 64 MiB
#  - live migration: --incoming refuses the VMI at once (exit 1, naming the emptyDisk, nothing
#    created), and a `migrate` request to the running (--migratable) launcher is refused naming it
#  - SIGTERM -> ACPI poweroff -> exit 0; the status file stays, the socket goes, the tap is left alone,
#    and the files the launcher made (seed ISO, cidata dir with the user-data, emptyDisk) are gone
#    while a file someone else put into the VM's directory stays
# Skips (4) without qemu, libvirtd or an ISO tool (genisoimage / mkisofs / xorrisofs).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_cmd qemu-system-x86_64 virsh unshare sha256sum socat jq
require_libvirt
require_iso_tool
LAUNCHER=$KV_BIN/kvnet-launcher
require_file "$LAUNCHER"

guest_image cidata
guest_store

NODE_DIR=$KV_TMP/node
NODE_NAME=kvt-$(rand_suffix)
LAUNCHER_PID=""

# at exit, before the libvirt node stops: the launcher, and after a failure the guest's console
lv_cleanup() {
	[ -n "$LAUNCHER_PID" ] && kill -TERM "$LAUNCHER_PID" 2>/dev/null
	if [ "$KV_EXIT_RC" -ne 0 ] && [ "$KV_EXIT_RC" -ne "$KSFT_SKIP" ] && [ -d "$NODE_DIR" ]; then
		echo "---- guest console ----"
		tr -d '\r' <"$VMDIR/serial.log" 2>/dev/null | grep -a KVNET
	fi
}
at_exit lv_cleanup

setup_node
libvirt_node_start "$NODE_NAME" "$NODE_NS" "$NODE_DIR"
vsh() { virsh -q -c "$URI" "$@"; }

TAP=kvtap0
ip -n "$NODE_NS" tuntap add dev "$TAP" mode tap
ip -n "$NODE_NS" link set "$TAP" up

# ---------------------------------------------------------------- VMI
UID_=6c1f2a9e-3b7d-4e0a-9c55-$(rand_suffix)0000
STATE=$KV_TMP/state
DOM=default_cigest
VMDIR=$STATE/$DOM
STATUS=$VMDIR/status.json
SOCK=$VMDIR/launcher.sock
ISO=$VMDIR/cloudinitdisk-cidata.iso
CIDIR=$VMDIR/cloudinitdisk-cidata
EMPTY=$VMDIR/scratch-empty.raw
USERDATA=$KV_TMP/user-data
NETDATA=$KV_TMP/network-config
printf '#cloud-config\npassword: kvnet-%s\nchpasswd: { expire: false }\nruncmd:\n  - [ echo, "hello from %s" ]\n' \
	"$(rand_suffix)" "$UID_" >"$USERDATA"
printf 'version: 2\nethernets:\n  eth0:\n    dhcp4: true\n    dhcp6: true\n' >"$NETDATA"
indent() { sed 's/^/          /' "$1"; }
VMI=$KV_TMP/vmi.yaml
cat >"$VMI" <<EOV
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: cigest
  namespace: default
  uid: $UID_
spec:
  hostname: cihost
  terminationGracePeriodSeconds: 40
  domain:
    firmware:
      kernelBoot:
        kernelArgs: "console=ttyS0 quiet panic=-1 kvnet.dhcp_timeout=2"
        container:
          image: $GUEST_REF
          kernelPath: /boot/vmlinuz
          initrdPath: /boot/initrd.img
    memory:
      guest: 256Mi
    devices:
      disks:
        - name: cloudinitdisk
          disk:
            bus: virtio
        - name: scratch
          disk:
            bus: virtio
      interfaces:
        - name: default
          bridge: {}
          macAddress: "02:4b:56:77:00:0c"
  networks:
    - name: default
      pod: {}
  volumes:
    - name: cloudinitdisk
      cloudInitNoCloud:
        userData: |
$(indent "$USERDATA")
        networkData: |
$(indent "$NETDATA")
    - name: scratch
      emptyDisk:
        capacity: 64Mi
EOV
# YAML block scalars ("|") keep one final newline: what the guest must hash is exactly our files.
UD_SHA=$(sha256sum <"$USERDATA" | awk '{print $1}')
ND_SHA=$(sha256sum <"$NETDATA" | awk '{print $1}')

phase() { jq -r .phase "$STATUS" 2>/dev/null || echo none; }
wait_phase() { # PHASE SECONDS
	local _
	for _ in $(seq 1 $(($2 * 10))); do
		[ "$(phase)" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# ---------------------------------------------------------------- --incoming: refused before anything
rc=0
ip netns exec "$NODE_NS" "$LAUNCHER" --run "$VMI" --image-dir "$GUEST_IMAGES" --connect "$URI" --nic "default=tap:$TAP" \
	--state-dir "$KV_TMP/state-in" --incoming --incoming-timeout 5 >"$KV_TMP/launcher-in.log" 2>&1 || rc=$?
assert_eq "$rc" 1 "--incoming with an emptyDisk exits 1 at once"
assert_true "--incoming names the emptyDisk volume ($(tail -n1 "$KV_TMP/launcher-in.log"))" \
	grep -q "volume 'scratch' is an emptyDisk.*no block migration" "$KV_TMP/launcher-in.log"
assert_false "--incoming created nothing" test -e "$KV_TMP/state-in"

ip netns exec "$NODE_NS" "$LAUNCHER" --run "$VMI" --image-dir "$GUEST_IMAGES" --connect "$URI" --nic "default=tap:$TAP" \
	--state-dir "$STATE" --migratable >"$KV_TMP/launcher.log" 2>&1 &
LAUNCHER_PID=$!
wait_phase Running 60 || die "status file did not reach Running (phase $(phase))"
pass "launcher runs the VMI with a cloudInitNoCloud volume and an emptyDisk"

# ---------------------------------------------------------------- host side, while it runs
assert_true "seed ISO exists ($ISO)" test -s "$ISO"
assert_eq "$(dd if="$ISO" bs=1 skip=$((16 * 2048 + 40)) count=6 2>/dev/null)" cidata "seed ISO volume id is cidata"
assert_true "cidata meta-data names the uid as instance-id" grep -qx "instance-id: $UID_" "$CIDIR/meta-data"
assert_true "cidata meta-data names spec.hostname as local-hostname" grep -qx "local-hostname: cihost" "$CIDIR/meta-data"
assert_true "cidata user-data is userData byte for byte" cmp -s "$USERDATA" "$CIDIR/user-data"
assert_true "cidata network-config is networkData byte for byte" cmp -s "$NETDATA" "$CIDIR/network-config"
assert_eq "$(stat -c %s "$EMPTY" 2>/dev/null)" 67108864 "emptyDisk file is 64 MiB"
assert_true "emptyDisk file is sparse ($(du -k "$EMPTY" 2>/dev/null | cut -f1) KiB allocated)" \
	test "$(du -k "$EMPTY" | cut -f1)" -lt 1024
xml=$(vsh dumpxml "$DOM")
assert_true "domain XML attaches the seed ISO" grep -q "source file='$ISO'" <<<"$xml"
assert_true "domain XML attaches the emptyDisk" grep -q "source file='$EMPTY'" <<<"$xml"
res=$(echo '{"op":"migrate","args":{"destUri":"qemu+unix:///system?socket=/nonexistent"}}' |
	timeout 10 socat - "UNIX-CONNECT:$SOCK")
assert_true "migrate is refused, naming the emptyDisk ($(jq -r .msg <<<"$res"))" \
	jq -e '.ok == false and (.msg | test("volume .scratch. is an emptyDisk"))' <<<"$res"
assert_eq "$(jq -r .migration "$STATUS")" null "no migration was started"
echo "not the launcher's" >"$VMDIR/someone-elses"

# ---------------------------------------------------------------- guest side
CON=$VMDIR/serial.log
ci=$(console_line "$CON" ' cidata dev=' 90)
log "guest: $ci"
kvget() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p" | head -n1; }
[ -n "$ci" ] || fail "guest printed a cidata line"
assert_eq "$(kvget "$ci" instance-id)" "$UID_" "guest: cidata instance-id is the VMI's uid"
assert_eq "$(kvget "$ci" hostname)" cihost "guest: cidata local-hostname"
assert_eq "$(kvget "$ci" user-data-sha256)" "$UD_SHA" "guest: sha256 of user-data matches userData"
assert_eq "$(kvget "$ci" network-config-sha256)" "$ND_SHA" "guest: sha256 of network-config matches networkData"
seed=$(kvget "$ci" dev)
disks=$(tr -d '\r' <"$CON" | grep -a '^KVNET-GUEST .* disk=' || true)
log "guest disks: $(sed 's/^KVNET-GUEST boot_id=[^ ]* //' <<<"$disks" | tr '\n' ';')"
assert_true "guest: the seed disk $seed is listed with label cidata" grep -q " disk=$seed bytes=[0-9]* ro=[01] label=cidata" <<<"$disks"
assert_eq "$(grep -c ' bytes=67108864 ro=0 label=-' <<<"$disks")" 1 "guest: exactly one writable disk of 64 MiB (the emptyDisk)"
assert_eq "$(grep -c ' disk=' <<<"$disks")" 2 "guest: two block devices in all"

# ---------------------------------------------------------------- end
console_line "$CON" 'ready$' 60 >/dev/null # acpid listens from here on
kill -TERM "$LAUNCHER_PID"
rc=0
for _ in $(seq 1 600); do
	kill -0 "$LAUNCHER_PID" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$LAUNCHER_PID" 2>/dev/null && { fail "launcher exits within 60 s of SIGTERM"; kill -KILL "$LAUNCHER_PID"; }
wait "$LAUNCHER_PID" || rc=$?
LAUNCHER_PID=""
assert_eq "$rc" 0 "launcher exits 0 after SIGTERM (ACPI poweroff)"
assert_eq "$(phase)" Succeeded "final phase Succeeded"
assert_eq "$(vsh list --all --name | grep -c . || true)" 0 "domain gone"
assert_true "status file kept (documented)" test -s "$STATUS"
assert_false "status socket removed (documented)" test -e "$SOCK"
assert_link "$NODE_NS" "$TAP"
left=""
for f in "$ISO" "$CIDIR" "$EMPTY"; do [ -e "$f" ] && left="$left ${f#"$VMDIR"/}"; done
assert_eq "$left" "" "the launcher removed the files it made (seed ISO, cidata dir with the user-data, emptyDisk)"
assert_true "a file the launcher did not make stays" test -s "$VMDIR/someone-elses"
assert_true "the serial log stays next to the status" test -s "$VMDIR/serial.log"
finish
