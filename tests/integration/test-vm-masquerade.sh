#!/usr/bin/env bash
# End to end with a real guest on the masquerade binding (KubeVirt's semantics): the guest gets the
# private 10.0.2.2/24 by DHCP from netd, the VM's stable IP (its claim) is 1:1-NATed to it in the
# sandbox, the node and the outside reach the guest at the stable IP (all ports, then only the
# listed ones), the guest's egress leaves with the stable IP, and a node port forward reaches it
# from an "external" namespace.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
kv_init
require_kvnet
require_guest

setup_node
setup_ext
start_netd "$NODE_NS"
mkns POD virt-launcher
conf=$(render_conf kvnet-dual.conflist 1.1.0)
VMARGS='IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;KVNET_VM_NAME=db;KVNET_VM_INTERFACE=default;KVNET_VM_BINDING=masquerade'

# An egress listener in ext (the guest connects out to it) that records who connected.
bg ip netns exec "$EXT_NS" socat -u TCP-LISTEN:9100,reuseaddr,fork SYSTEM:'echo "$SOCAT_PEERADDR" >>'"$KV_TMP/egress.peers"
r=$(cni add "$conf" pod-db "$POD" tap0 --args "$VMARGS" \
	--cap portMappings='[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]')
ip=$(result_ip4 <<<"$r")
mac=$(jq -r '.interfaces[] | select(.name == "tap0") | .mac' <<<"$r")
log "VM prod/db: stable ip=$ip mac=$mac"
assert_eq "$(kvctl -o json endpoints | jq -r '.[0].binding')" masquerade "attachment uses the masquerade binding"

boot_guest "$POD" "$mac" "$KV_TMP/console" "kvnet.connect=$EXT_ADDR:9100"
wait_ping "$NODE_NS" "$ip" 60 && pass "node pings the VM at its stable IP $ip" || fail "node pings the VM at $ip"
lease=$(console_lease "$KV_TMP/console")
assert_true "guest got 10.0.2.2/24 gw 10.0.2.1 by DHCP ($lease)" grep -q "ip=10.0.2.2/24 gw=10.0.2.1" <<<"$lease"
wait_http "$ip"
id=$(ip netns exec "$NODE_NS" curl -s -m 5 "http://$ip/id" || true)
assert_true "HTTP to the stable IP reaches the guest ($id)" grep -q '^boot_id=' <<<"$id"
fwd=$(ip netns exec "$EXT_NS" curl -s -m 5 "http://$EXT_NODE_ADDR:8080/id" || true)
assert_eq "$fwd" "$id" "ext -> node:8080 port forward reaches the guest"
for i in $(seq 1 30); do [ -s "$KV_TMP/egress.peers" ] && break; sleep 0.2; done
assert_eq "$(head -n1 "$KV_TMP/egress.peers" 2>/dev/null)" "$EXT_NODE_ADDR" \
	"guest egress reaches ext through the node's masquerade"
echo_out=$(ip netns exec "$NODE_NS" sh -c "(echo one; sleep 1; echo two) | timeout 5 socat - TCP:$ip:7" || true)
assert_eq "$(tr '\n' ' ' <<<"$echo_out")" "one two " "all ports forwarded: TCP echo (port 7) held across 1 s"
# IPv6 without cloud-init: the guest autoconfigures its EUI-64 address in fd10:0:2::/64 from netd's
# router advertisement; the VM's stable IPv6 address is 1:1-NATed to it like the IPv4 one.
ip6=$(jq -r '[.ips[] | select(.address | contains(":")) | .address][0] | split("/")[0]' <<<"$r")
ok6=0
for _ in $(seq 1 100); do
	ip netns exec "$NODE_NS" ping -6 -c1 -W0.2 "$ip6" >/dev/null 2>&1 && { ok6=1; break; }
	sleep 0.1
done
assert_eq "$ok6" 1 "node pings the VM's stable IPv6 address $ip6 (guest on fd10:0:2::/64 by SLAAC)"
id6=$(ip netns exec "$NODE_NS" curl -s -m 5 -g "http://[$ip6]/id" || true)
assert_eq "$id6" "$id" "HTTP over IPv6 to the stable address reaches the same guest"
assert_true "CHECK passes" cni check "$conf" pod-db "$POD" tap0 --args "$VMARGS"

kill "$QEMU_PID"
wait "$QEMU_PID" 2>/dev/null || true
cni del "$conf" pod-db "$POD" tap0 --args "$VMARGS"
assert_no_link "$POD" tap0
tables=$(ip netns exec "$POD" nft list tables 2>/dev/null || true)
assert_false "sandbox NAT table removed" grep -q kvnet-masq <<<"$tables"

# Listed ports: only those are forwarded to the guest.
mkns POD2 virt-launcher-2
r2=$(cni add "$conf" pod-db2 "$POD2" tap0 --args "$VMARGS" --cap kvnet='{"vm":{"ports":[{"port":80,"protocol":"TCP"}]}}')
assert_eq "$(result_ip4 <<<"$r2")" "$ip" "same VM, new pod: same stable IP"
boot_guest "$POD2" "$mac" "$KV_TMP/console2"
wait_http "$ip"
id2=$(ip netns exec "$NODE_NS" curl -s -m 5 "http://$ip/id" || true)
assert_true "listed port 80 reaches the guest ($id2)" grep -q '^boot_id=' <<<"$id2"
echo_out=$(ip netns exec "$NODE_NS" sh -c "echo hi | timeout 3 socat -T2 - TCP:$ip:7,connect-timeout=2" 2>/dev/null || true)
assert_ne "$echo_out" "hi" "unlisted port 7 does not reach the guest"
kill "$QEMU_PID"
wait "$QEMU_PID" 2>/dev/null || true
cni del "$conf" pod-db2 "$POD2" tap0 --args "$VMARGS"
kvctl ipam-release kvtest vm/prod/db/default >/dev/null
assert_eq "$(kvctl -o json endpoints | jq length)" 0 "no attachments left"
assert_eq "$(kvctl -o json ipam | jq '.claims | length')" 0 "no claims left"
finish
