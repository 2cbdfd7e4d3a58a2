#!/usr/bin/env bash
# kvnet's main job: two real VMs on one kvnet network, on one machine, without touching the host's
# own network. A node namespace runs kvnet-netd; each VM has a "pod" (its own network namespace,
# wired by the kvnet CNI plugin in a conflist with the reference tuning plugin) with a private
# libvirtd and a kvnet-launcher, as KubeVirt's virt-launcher pod has. VM "web" uses the bridge
# binding, VM "db" the masquerade binding with a node port forward 8080 -> 80. The demo shows that
# each guest got its address by DHCP from netd, that they reach each other and an "external"
# namespace through NAT, that the forwarded port reaches the masquerade VM, and it prints the
# boot-to-network time of each VM. Then it shuts the VMs down (ACPI) and tears everything down.
set -euo pipefail
export KVNET_BUILD=${KVNET_BUILD:-build}
source "$(dirname "$0")/../tests/integration/lib.sh"
KV_TEST_NAME=demo
KV_CONF_DIR=$KV_ROOT/scripts/demo
kv_init
require_kvnet
require_cnichain
require_ref_plugins
require_cmd socat curl qemu-system-x86_64 libvirtd virsh
ms() { date +%s%3N; }

echo "== guest image (kernel + busybox initramfs from Debian packages, cached)"
eval "$("$KV_ROOT/scripts/guest-image.sh" --quiet | grep '^KVNET_GUEST_')"
[ -s "${KVNET_GUEST_KERNEL:-}" ] || die "no guest image"
LAUNCHER=$KV_BIN/kvnet-launcher
# the guest under a KubeVirt-looking name in a local image store (docs/images.md); the VMIs name the image
IMAGES=$KV_TMP/images
echo "\$ kvnet-launcher image add kvnet.local/demo-guest:latest --kernel ... --initrd ... --image-dir $IMAGES"
"$LAUNCHER" image add kvnet.local/demo-guest:latest --kernel "$KVNET_GUEST_KERNEL" --initrd "$KVNET_GUEST_INITRD" \
	--image-dir "$IMAGES" || die "kvnet-launcher image add failed"

setup_node
setup_ext
start_netd "$NODE_NS"
conf=$(render_conf vmnet.conflist 1.0.0)
LVDIRS=()
LAUNCHERS=()
demo_cleanup() {
	local p d
	for p in "${LAUNCHERS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${LAUNCHERS[@]}"; do wait "$p" 2>/dev/null || true; done
	for d in "${LVDIRS[@]}"; do "$KV_ROOT/scripts/libvirt-node.sh" stop "$(basename "$d")" --dir "$d" >/dev/null 2>&1 || true; done
}
trap 'kv_demo_rc=$?; set +e; demo_cleanup; (exit "$kv_demo_rc"); kv_cleanup' EXIT # kv_cleanup exits with the status it finds in $?

# An "external" listener: records who connects (the guests connect out to it at boot).
bg ip netns exec "$EXT_NS" socat -u TCP-LISTEN:9100,reuseaddr,fork SYSTEM:'echo "$SOCAT_PEERADDR" >>'"$KV_TMP/ext.peers" 2>/dev/null

# pod VM BINDING: CNI ADD into a new pod namespace; sets POD_NS, VM_IP, VM_MAC.
pod() {
	local vm=$1 binding=$2 extra=()
	mkns POD_NS "pod-$vm"
	[ "$binding" = masquerade ] && extra=(--cap portMappings='[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]')
	local r
	r=$(cni add "$conf" "pod-$vm" "$POD_NS" tap0 \
		--args "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;KVNET_VM_NAME=$vm;KVNET_VM_INTERFACE=default;KVNET_VM_BINDING=$binding" \
		"${extra[@]}")
	VM_IP=$(result_ip4 <<<"$r")
	VM_MAC=$(jq -r '.interfaces[] | select(.name == "tap0") | .mac' <<<"$r")
}

# vmi FILE VM BINDING MAC CMDLINE: a kubevirt.io/v1 VMI booting the test guest.
vmi() {
	cat >"$1" <<YAML
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: $2
  namespace: demo
spec:
  terminationGracePeriodSeconds: 30
  domain:
    firmware:
      kernelBoot:
        kernelArgs: "console=ttyS0 quiet $5"
        container:
          image: kvnet.local/demo-guest:latest
          kernelPath: /boot/vmlinuz
          initrdPath: /boot/initrd.img
    memory:
      guest: 256Mi
    devices:
      interfaces:
        - name: default
          $3: {}
          macAddress: "$4"
  networks:
    - name: default
      pod: {}
YAML
}

echo "== pods: CNI ADD through kvnet -> tuning"
pod web bridge
WEB_NS=$POD_NS WEB_IP=$VM_IP WEB_MAC=$VM_MAC
pod db masquerade
DB_NS=$POD_NS DB_IP=$VM_IP DB_MAC=$VM_MAC
echo "web: $WEB_IP ($WEB_MAC), db: $DB_IP ($DB_MAC)"

echo "== a private libvirtd in each pod (the first start probes QEMU, ~8 s)"
# One after the other: the first start may have to probe QEMU (its capabilities cache is stale after
# a QEMU update or a fresh checkout of scripts/qemu-tcg-wrapper); the second then starts from the
# cache it left. libvirt-node.sh prints URI= once the daemon answers, or the daemon's log on failure.
for vm in web db; do
	ns=$WEB_NS
	[ "$vm" = db ] && ns=$DB_NS
	d=$KV_TMP/libvirt-$vm
	LVDIRS+=("$d")
	if ! "$KV_ROOT/scripts/libvirt-node.sh" start "demo-$vm" "$ns" --dir "$d" >"$KV_TMP/lv-$vm.out" 2>&1 ||
		! grep -q '^URI=' "$KV_TMP/lv-$vm.out"; then
		cat "$KV_TMP/lv-$vm.out"
		tail -n 20 "$d/log/libvirt/libvirtd.log" 2>/dev/null || true
		die "libvirtd for $vm did not start"
	fi
done

echo "== VMs: kvnet-launcher per pod (software emulation here: /dev/kvm cannot run guests)"
declare -A T0 IPOF NSOF BINDOF
IPOF[web]=$WEB_IP IPOF[db]=$DB_IP NSOF[web]=$WEB_NS NSOF[db]=$DB_NS BINDOF[web]=bridge BINDOF[db]=masquerade
vmi "$KV_TMP/web.yaml" web bridge "$WEB_MAC" "kvnet.connect=$DB_IP:7,$EXT_ADDR:9100"
vmi "$KV_TMP/db.yaml" db masquerade "$DB_MAC" "kvnet.connect=$WEB_IP:7,$EXT_ADDR:9100"
for vm in web db; do
	uri=$(sed -n 's/^URI=//p' "$KV_TMP/lv-$vm.out")
	T0[$vm]=$(ms)
	ip netns exec "${NSOF[$vm]}" "$LAUNCHER" --run "$KV_TMP/$vm.yaml" --image-dir "$IMAGES" --connect "$uri" --nic default=tap:tap0 \
		--state-dir "$KV_TMP/state-$vm" >"$KV_TMP/launcher-$vm.log" 2>&1 &
	LAUNCHERS+=($!)
done
declare -A BOOT
for vm in web db; do
	BOOT[$vm]=-1
	for _ in $(seq 1 600); do
		if ip netns exec "$NODE_NS" ping -c1 -W0.2 "${IPOF[$vm]}" >/dev/null 2>&1; then
			BOOT[$vm]=$(($(ms) - T0[$vm]))
			break
		fi
		sleep 0.1
	done
	[ "${BOOT[$vm]}" -ge 0 ] && pass "VM $vm answers at ${IPOF[$vm]} (${BOOT[$vm]} ms after its launcher started)" ||
		fail "VM $vm answers at ${IPOF[$vm]}"
done
for vm in web db; do
	for _ in $(seq 1 150); do
		ip netns exec "$NODE_NS" curl -s -m 1 "http://${IPOF[$vm]}/id" 2>/dev/null | grep -q boot_id && break
		sleep 0.2
	done
done

echo "== DHCP: what each guest learned (its serial console)"
declare -A DHCP
for vm in web db; do
	line=$(tr -d '\r' <"$KV_TMP/state-$vm/demo_$vm/serial.log" 2>/dev/null | grep -a 'dhcp=bound' | head -n1 || true)
	echo "$vm: ${line:-<none>}"
	want="ip=${IPOF[$vm]}/24"
	[ "$vm" = db ] && want="ip=10.0.2.2/24"
	if grep -q "$want" <<<"$line"; then DHCP[$vm]=ok; pass "$vm got $want by DHCP from netd"; else DHCP[$vm]=fail; fail "$vm got $want by DHCP"; fi
done

echo "== VM to VM (each guest holds a TCP connection to the other's echo port)"
info_web= info_db=
for _ in $(seq 1 50); do
	info_web=$(ip netns exec "$NODE_NS" curl -s -m 5 "http://$WEB_IP/cgi-bin/info" || true)
	info_db=$(ip netns exec "$NODE_NS" curl -s -m 5 "http://$DB_IP/cgi-bin/info" || true)
	grep -Eq "^tcp=(::ffff:)?$WEB_IP:7,(::ffff:)?$DB_IP:" <<<"$info_web" && grep -Eq "^tcp=(::ffff:)?10.0.2.2:7,(::ffff:)?$WEB_IP:" <<<"$info_db" && break
	sleep 0.2
done
[ -n "${KVNET_DEMO_DEBUG:-}" ] && printf 'web:\n%s\ndb:\n%s\n' "$info_web" "$info_db"
assert_true "web sees db's connection from db's stable IP $DB_IP" grep -Eq "^tcp=(::ffff:)?$WEB_IP:7,(::ffff:)?$DB_IP:" <<<"$info_web"
assert_true "db (behind masquerade) sees web's connection from $WEB_IP" grep -Eq "^tcp=(::ffff:)?10.0.2.2:7,(::ffff:)?$WEB_IP:" <<<"$info_db"

echo "== to the outside through the node's NAT"
for _ in $(seq 1 50); do [ "$(sort -u "$KV_TMP/ext.peers" 2>/dev/null | wc -l)" -ge 1 ] && break; sleep 0.2; done
assert_eq "$(sort -u "$KV_TMP/ext.peers" 2>/dev/null | tr '\n' ' ')" "$EXT_NODE_ADDR " \
	"ext sees both guests' connections from the node address (masquerade)"
assert_true "ext got connections from both guests" test "$(wc -l <"$KV_TMP/ext.peers")" -ge 2

echo "== port forward: ext -> $EXT_NODE_ADDR:8080 -> db:80"
fwd=$(ip netns exec "$EXT_NS" curl -s -m 5 "http://$EXT_NODE_ADDR:8080/id" || true)
assert_eq "$fwd" "$(ip netns exec "$NODE_NS" curl -s -m 5 "http://$DB_IP/id")" "forwarded port reaches the db guest"

echo "== node view"
kvctl endpoints

echo "== results"
for vm in web db; do
	echo "VM=$vm IP=${IPOF[$vm]} BINDING=${BINDOF[$vm]} DHCP=${DHCP[$vm]} BOOT_TO_NETWORK_MS=${BOOT[$vm]}"
done

echo "== shutdown: SIGTERM -> ACPI power button -> guest powers off"
for p in "${LAUNCHERS[@]}"; do kill -TERM "$p"; done
rcs=""
for p in "${LAUNCHERS[@]}"; do rc=0; wait "$p" || rc=$?; rcs+="$rc "; done
LAUNCHERS=()
assert_eq "$rcs" "0 0 " "both launchers exit 0 after a clean guest poweroff"
for vm in web db; do
	cni del "$conf" "pod-$vm" "${NSOF[$vm]}" tap0 \
		--args "IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;KVNET_VM_NAME=$vm;KVNET_VM_INTERFACE=default;KVNET_VM_BINDING=${BINDOF[$vm]}"
	kvctl ipam-release demo-vmnet "vm/demo/$vm/default" >/dev/null
done
assert_eq "$(kvctl -o json endpoints | jq length)" 0 "no attachments left"
assert_eq "$(kvctl -o json ipam | jq '.claims | length')" 0 "no claims left"
finish
