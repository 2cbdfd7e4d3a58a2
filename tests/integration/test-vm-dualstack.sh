#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End to end with a real guest (QEMU, software emulation) on a dual-stack kvnet network, bridge
# binding: netd answers the guest's router solicitation with an RA asking for DHCPv6 (M=1, prefix
# on-link, A=0) and its DHCPv6 responder hands out the VM's claim; the guest's DHCPv6 client
# (dhcpcd, scripts/guest-image.sh) must end up with exactly the claimed IPv6 address (compared with
# `kvnetctl -o json ipam`), the node must reach it over IPv6 (ping, HTTP), and IPv4 must still come
# by DHCPv4 at once. A restarted guest in a new sandbox gets the same IPv6 address again.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
kv_init
require_kvnet
require_guest
grep -q '^DHCP6_PACKAGE=' "$GUEST_DIR/VERSION" 2>/dev/null || skip "the cached guest has no DHCPv6 client (old image)"

setup_node
start_netd "$NODE_NS"
mkns POD1 virt-launcher-a
mkns POD2 virt-launcher-b
conf=$(render_conf kvnet-dual.conflist 1.1.0)
VMARGS='IgnoreUnknown=1;K8S_POD_NAMESPACE=prod;KVNET_VM_NAME=dual;KVNET_VM_INTERFACE=default'
KEY=vm/prod/dual/default

r1=$(cni add "$conf" pod-a "$POD1" tap0 --args "$VMARGS")
ip=$(result_ip4 <<<"$r1")
ip6=$(result_ip6 <<<"$r1")
mac=$(jq -r '.interfaces[] | select(.name == "tap0") | .mac' <<<"$r1")
log "VM prod/dual: ip=$ip ip6=$ip6 mac=$mac"
[ -n "$ip6" ] && [ "$ip6" != null ] || die "the CNI result has no IPv6 address ($r1)"
claim6=$(kvctl -o json ipam | jq -r --arg k "$KEY" \
	'[.claims[] | select(.key == $k) | .ips[] | select(contains(":"))][0] | split("/")[0]')
assert_eq "$claim6" "$ip6" "netd's claim holds the IPv6 address of the CNI result"

t0=$(date +%s%3N)
boot_guest "$POD1" "$mac" "$KV_TMP/console1"
if wait_ping "$NODE_NS" "$ip" 90; then
	pass "guest answers ping at $ip ($(($(date +%s%3N) - t0)) ms after QEMU start)"
else
	fail "guest answers ping at $ip"
fi
lease=$(console_lease "$KV_TMP/console1")
assert_true "guest got $ip by DHCPv4 ($lease)" grep -q "ip=$ip/24 gw=10.88.0.1" <<<"$lease"

line6=$(console_ip6 "$KV_TMP/console1" 60)
log "DHCPv6: $line6"
got6=$(sed -n 's/.* ip6=\([^ ]*\).*/\1/p' <<<"$line6")
assert_eq "$got6" "$ip6/128" "guest's DHCPv6 lease is exactly the claimed address"
assert_eq "$(kvctl -o json ipam | jq -r --arg k "$KEY" \
	'[.claims[] | select(.key == $k) | .ips[] | select(contains(":"))][0] | split("/")[0]')" "$ip6" \
	"kvnetctl ipam still shows the same IPv6 claim"
if [ -n "$line6" ]; then
	pass "console: DHCPv6 line $(($(date +%s%3N) - t0)) ms after QEMU start"
else
	fail "console: a KVNET-GUEST ... dhcp6=bound line"
	tr -d '\r' <"$KV_TMP/console1" | grep -a KVNET || true
fi
if wait_ping "$NODE_NS" "$ip6" 30; then
	pass "node pings the guest over IPv6 at $ip6"
else
	fail "node pings the guest over IPv6 at $ip6"
fi
wait_http "$ip" || true
id4=$(ip netns exec "$NODE_NS" curl -s -m 5 "http://$ip/id" || true)
id6=$(ip netns exec "$NODE_NS" curl -s -m 5 -g "http://[$ip6]/id" || true)
assert_true "HTTP over IPv4 answers ($id4)" grep -q '^boot_id=' <<<"$id4"
assert_eq "$id6" "$id4" "HTTP over IPv6 reaches the same guest"
info=$(ip netns exec "$NODE_NS" curl -s -m 5 -g "http://[$ip6]/cgi-bin/info" || true)
assert_true "/cgi-bin/info lists the DHCPv6 address on eth0" grep -q "^iface=eth0 .*ip6=.*$ip6/128" <<<"$info"
echo_out=$(ip netns exec "$NODE_NS" sh -c "(echo one; sleep 1; echo two) | timeout 5 socat - TCP6:[$ip6]:7" || true)
assert_eq "$(tr '\n' ' ' <<<"$echo_out")" "one two " "TCP echo over IPv6 held across 1 s"
# Only the claimed IPv6 address: no SLAAC address (netd announces the prefix with A=0 here).
addrs=$(sed -n 's/^iface=eth0 .*ip6=\([^ ]*\).*/\1/p' <<<"$info")
assert_eq "$addrs" "$ip6/128" "eth0 holds no other global IPv6 address (no SLAAC on the bridge binding)"
stats=$(kvctl -o json endpoints | jq -c '.[] | select(.kind == "vm") | .dhcp')
assert_true "netd's DHCPv6 responder replied ($stats)" test "$(jq .reply6 <<<"$stats")" -ge 1

# The pod goes away; the VM starts again in a new pod: same claim, same IPv6 lease.
kill "$QEMU_PID"
wait "$QEMU_PID" 2>/dev/null || true
cni del "$conf" pod-a "$POD1" tap0 --args "$VMARGS"
r2=$(cni add "$conf" pod-b "$POD2" tap0 --args "$VMARGS")
assert_eq "$(result_ip6 <<<"$r2")" "$ip6" "new pod of the VM: same IPv6 address in the CNI result"
boot_guest "$POD2" "$mac" "$KV_TMP/console2"
line6=$(console_ip6 "$KV_TMP/console2" 90)
assert_eq "$(sed -n 's/.* ip6=\([^ ]*\).*/\1/p' <<<"$line6")" "$ip6/128" "restarted guest: same DHCPv6 lease"
wait_ping "$NODE_NS" "$ip6" 30 && pass "restarted guest answers over IPv6" || fail "restarted guest answers over IPv6"
kill "$QEMU_PID"
wait "$QEMU_PID" 2>/dev/null || true

cni del "$conf" pod-b "$POD2" tap0 --args "$VMARGS"
kvctl ipam-release kvtest "$KEY" >/dev/null
assert_eq "$(kvctl -o json endpoints | jq length)" 0 "no attachments left"
assert_eq "$(kvctl -o json ipam | jq '.claims | length')" 0 "no claims left"
assert_no_link "$POD2" tap0
finish
