#!/usr/bin/env bash
# End to end with a real guest (QEMU, software emulation) on a kvnet VM attachment, bridge binding:
# the guest gets its address by DHCP from netd (static lease = the VM's claim), the node and another
# container reach it (ping, HTTP, a held TCP echo connection), a restarted guest in a new sandbox
# (a new pod of the same VM) gets the same IP and MAC, and DEL leaves nothing behind.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
kv_init
require_kvnet
require_guest

setup_node
start_netd "$NODE_NS"
mkns POD1 virt-launcher-a
mkns POD2 virt-launcher-b
mkns CTR client
conf=$(render_conf kvnet-basic.conflist 1.1.0)
VMARGS='IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;KVNET_VM_NAME=web;KVNET_VM_INTERFACE=default'

r1=$(cni add "$conf" pod-a "$POD1" tap0 --args "$VMARGS")
ip=$(result_ip4 <<<"$r1")
mac=$(jq -r '.interfaces[] | select(.name == "tap0") | .mac' <<<"$r1")
log "VM prod/web: ip=$ip mac=$mac"
rc=$(cni add "$conf" ctr-c "$CTR" eth0)

t0=$(date +%s%3N)
boot_guest "$POD1" "$mac" "$KV_TMP/console1"
if wait_ping "$NODE_NS" "$ip" 60; then
	pass "guest answers ping at $ip ($(($(date +%s%3N) - t0)) ms after QEMU start)"
else
	fail "guest answers ping at $ip"
	cat "$KV_TMP/console1" | tr -d '\r' | grep -a KVNET || true
fi
lease=$(console_lease "$KV_TMP/console1")
assert_true "guest got $ip by DHCP ($lease)" grep -q "ip=$ip/24 gw=10.88.0.1" <<<"$lease"

wait_http "$ip" || true
boot1=$(ip netns exec "$NODE_NS" curl -s -m 5 "http://$ip/id" || true)
assert_true "HTTP GET /id answers ($boot1)" grep -q '^boot_id=' <<<"$boot1"
assert_ping "$CTR" "$ip" "container on the same network reaches the guest"
echo_out=$(ip netns exec "$CTR" sh -c "(echo one; sleep 1; echo two) | timeout 5 socat - TCP:$ip:7" || true)
assert_eq "$(tr '\n' ' ' <<<"$echo_out")" "one two " "TCP echo connection held across 1 s"
stats=$(kvctl -o json endpoints | jq -c '.[] | select(.kind == "vm") | .dhcp')
assert_true "netd's DHCP responder acked ($stats)" test "$(jq .ack <<<"$stats")" -ge 1

# The pod goes away; the VM starts again in a new pod (new sandbox, new container ID).
kill "$QEMU_PID"
wait "$QEMU_PID" 2>/dev/null || true
cni del "$conf" pod-a "$POD1" tap0 --args "$VMARGS"
assert_no_link "$POD1" tap0
assert_eq "$(kvctl -o json ipam | jq -r '.claims[] | select(.key == "vm/prod/web/default") | .state')" idle \
	"the VM's claim is kept (idle) while it has no pod"
r2=$(cni add "$conf" pod-b "$POD2" tap0 --args "$VMARGS")
assert_eq "$(result_ip4 <<<"$r2")" "$ip" "new pod of the VM: same IP"
assert_eq "$(jq -r '.interfaces[] | select(.name == "tap0") | .mac' <<<"$r2")" "$mac" "new pod of the VM: same MAC"
boot_guest "$POD2" "$mac" "$KV_TMP/console2"
wait_ping "$NODE_NS" "$ip" 60 && pass "restarted guest answers at the same IP" || fail "restarted guest answers at the same IP"
wait_http "$ip" || true
boot2=$(ip netns exec "$NODE_NS" curl -s -m 5 "http://$ip/id" || true)
assert_ne "$boot2" "$boot1" "it is a new guest instance (boot id changed)"
kill "$QEMU_PID"
wait "$QEMU_PID" 2>/dev/null || true

rel=$(kvctl -o json vm-release prod web)
assert_eq "$(jq -c '[(.released | length), (.attached | map(.network + " " + .key))]' <<<"$rel")" \
	'[0,["kvtest vm/prod/web/default"]]' "vm-release while the VM is attached: nothing released, the claim listed as attached"
cni del "$conf" pod-b "$POD2" tap0 --args "$VMARGS"
cni del "$conf" ctr-c "$CTR" eth0
rel=$(kvctl -o json vm-release prod web)
assert_eq "$(jq -c '[(.released | map(.network + " " + .key)), (.attached | length)]' <<<"$rel")" \
	'[["kvtest vm/prod/web/default"],0]' "vm-release once the VM is gone: its claim released"
assert_eq "$(kvctl -o json vm-release prod web | jq -c .)" '{"released":[],"attached":[]}' "vm-release again: nothing left"
assert_eq "$(kvctl -o json endpoints | jq length)" 0 "no attachments left"
assert_eq "$(kvctl -o json ipam | jq '.claims | length')" 0 "no claims left"
assert_no_link "$POD2" tap0
finish
