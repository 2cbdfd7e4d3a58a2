#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The masquerade binding (netd/binding/masquerade.h, docs/masquerade.md) with a real guest under QEMU/TCG:
#  - node ns: bridge kvbr0 10.88.0.1/24 + fd88::1/64, ext ns behind it (192.0.2.0/24) with a
#    hand-made node-level masquerade; sandbox ns wired by build/tests/masq-tool attach
#  - dhcp-tool on the tap gives the guest 10.0.2.2/24 (gw 10.0.2.1); dnsmasq (RA only) gives it a
#    SLAAC address in fd10:0:2::/64, which this test uses as the guest's IPv6 address
#  - all ports: ping, GET /id and TCP echo to the VM's stable IP 10.88.0.5 reach the guest (DNAT)
#  - listed ports (tcp/80): /id still answers, port 7 does not
#  - egress: kvnet.connect flows reach the node (source 10.88.0.5: SNAT) and the ext ns
#  - IPv6: ping6 and GET /id to fd88::5 reach the guest
#  - detach: no table inet kvnet-masq in the sandbox, no veth on the node
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "qemu-system-x86_64 not installed (package qemu-system-x86)"
require_cmd socat curl
MASQ_TOOL=$KV_BUILD_DIR/tests/masq-tool
DHCP_TOOL=$KV_BUILD_DIR/tests/dhcp-tool
require_file "$MASQ_TOOL" "$DHCP_TOOL"

GUEST_DIR=${KVNET_CACHE:-/var/cache/kvnet}/guest
if [ ! -s "$GUEST_DIR/vmlinuz" ] || [ ! -s "$GUEST_DIR/initrd.img" ]; then
	log "building the guest image"
	"$KV_ROOT/scripts/guest-image.sh" --quiet >/dev/null 2>&1 || skip "guest image missing and scripts/guest-image.sh failed"
fi
KERNEL=$GUEST_DIR/vmlinuz
INITRD=$GUEST_DIR/initrd.img
[ -s "$KERNEL" ] && [ -s "$INITRD" ] || skip "guest image missing in $GUEST_DIR"

HAVE_DNSMASQ=1
command -v dnsmasq >/dev/null 2>&1 || HAVE_DNSMASQ=0

setup_node
setup_ext
mkns SBX sbx
ip -n "$NODE_NS" link add kvbr0 type bridge
ip -n "$NODE_NS" addr add 10.88.0.1/24 dev kvbr0
ip -n "$NODE_NS" addr add fd88::1/64 dev kvbr0 nodad
ip -n "$NODE_NS" link set kvbr0 up
# node-level masquerade towards ext (netd's table inet kvnet does this in real life)
ip netns exec "$NODE_NS" nft -f - <<'EOF'
table ip kvt-node {
	chain post {
		type nat hook postrouting priority 100; policy accept;
		ip saddr 10.88.0.0/24 oifname "kvx0" masquerade
	}
}
EOF

VM_IP=10.88.0.5
VM_IP6=fd88::5
MAC=02:4b:56:00:00:05
# The guest has no DHCPv6 client: it takes SLAAC from dnsmasq's RA, so its address is the EUI-64 one.
GUEST6=fd10:0:2:0:4b:56ff:fe00:5
TAP=tap-m0
SBXIF=kvs-m0
HOSTIF=kv-m0
ARGS=(--netns "$(nspath "$SBX")" --tap "$TAP" --sbx "$SBXIF" --host "$HOSTIF" --bridge kvbr0 --mtu 1500
	--guest-mac "$MAC" --addr "$VM_IP/24,10.88.0.1")
[ "$HAVE_DNSMASQ" = 1 ] && ARGS+=(--addr "$VM_IP6/64,fd88::1" --guest6 "$GUEST6/64" --guest-gw6 fd10:0:2::1)

masq() { ip netns exec "$NODE_NS" "$MASQ_TOOL" "$@"; }

if out=$(masq attach "${ARGS[@]}" 2>&1); then pass "masq-tool attach"; else die "masq-tool attach: $out"; fi
assert_true "masq-tool check after attach" masq check "${ARGS[@]}"
assert_true "sandbox holds $VM_IP on $SBXIF" sh -c "ip -n '$SBX' -o addr show dev '$SBXIF' | grep -q ' $VM_IP/24 '"
assert_true "tap carries 10.0.2.1/24" sh -c "ip -n '$SBX' -o addr show dev '$TAP' | grep -q ' 10.0.2.1/24 '"
assert_eq "$(ip netns exec "$SBX" cat /proc/sys/net/ipv4/ip_forward)" 1 "forwarding on in the sandbox"
assert_true "nft table inet kvnet-masq in the sandbox" ip netns exec "$SBX" nft list table inet kvnet-masq
ip netns exec "$SBX" nft list table inet kvnet-masq >"$KV_TMP/masq.nft" 2>&1 || true
assert_true "dnat rule to 10.0.2.2 listed" grep -q 'dnat ip to 10.0.2.2' "$KV_TMP/masq.nft"
assert_true "snat rule to $VM_IP listed" grep -q "snat ip to $VM_IP" "$KV_TMP/masq.nft"
assert_no_ping "$NODE_NS" 10.0.2.2 "guest's private address not reachable from the node"

# DHCP responder (v4) on the tap; RA for SLAAC from dnsmasq
bg ip netns exec "$NODE_NS" "$DHCP_TOOL" --ifname "$TAP" --netns "$(nspath "$SBX")" --mac "$MAC" \
	--addr4 10.0.2.2/24 --gw4 10.0.2.1 --server4 10.0.2.1 --dns 10.0.2.1 --mtu 1500 >"$KV_TMP/dhcp.out" 2>&1
if [ "$HAVE_DNSMASQ" = 1 ]; then
	bg ip netns exec "$SBX" dnsmasq --keep-in-foreground --port=0 --user=root --group=root \
		--interface="$TAP" --except-interface=lo --bind-interfaces --conf-file=/dev/null --no-resolv --no-hosts \
		--pid-file="$KV_TMP/dnsmasq.pid" --enable-ra --dhcp-range=::,constructor:"$TAP",ra-only,64,1h \
		--ra-param="$TAP",3 --log-facility="$KV_TMP/dnsmasq.log"
fi

# Outbound flow sinks: node (SNAT shows as the VM's IP) and ext (behind the node masquerade)
CONN_NODE=$KV_TMP/conn-node.out
CONN_EXT=$KV_TMP/conn-ext.out
bg ip netns exec "$NODE_NS" timeout 120 socat TCP-LISTEN:9000,bind=10.88.0.1,reuseaddr,fork \
	SYSTEM:"echo peer=\$SOCAT_PEERADDR >>$CONN_NODE; cat >>$CONN_NODE"
bg ip netns exec "$EXT_NS" timeout 120 socat TCP-LISTEN:9001,reuseaddr,fork \
	SYSTEM:"echo peer=\$SOCAT_PEERADDR >>$CONN_EXT; cat >>$CONN_EXT"
wait_listen "$NODE_NS" 9000 || die "node listener did not come up"
wait_listen "$EXT_NS" 9001 || die "ext listener did not come up"

CONSOLE=$KV_TMP/console.log
: >"$CONSOLE"
log "booting the guest (TCG) in $SBX, console in $CONSOLE"
bg ip netns exec "$SBX" qemu-system-x86_64 -accel tcg -m 256 -nographic -no-reboot -nodefaults \
	-kernel "$KERNEL" -initrd "$INITRD" \
	-append "console=ttyS0 quiet panic=-1 kvnet.connect=10.88.0.1:9000,$EXT_ADDR:9001" \
	-netdev tap,id=n0,ifname="$TAP",script=no,downscript=no \
	-device virtio-net-pci,netdev=n0,mac="$MAC",romfile= \
	-serial file:"$CONSOLE" -monitor none
QEMU=$BG_PID

con() { tr -d '\r' <"$CONSOLE"; }
for _ in $(seq 1 600); do
	con | grep -q '^KVNET-GUEST ready' && break
	kill -0 "$QEMU" 2>/dev/null || break
	sleep 0.1
done
con | grep -q '^KVNET-GUEST ready' || {
	tail -n 30 "$CONSOLE"
	die "guest not ready within 60 s"
}
line=$(con | grep '^KVNET-GUEST .*iface=eth0 .*dhcp=bound' | head -n 1 || true)
log "guest: $line"
assert_true "guest console reports ip=10.0.2.2/24 (DHCP)" grep -q ' ip=10.0.2.2/24 ' <<<"$line"
assert_true "guest console reports gw=10.0.2.1" grep -q ' gw=10.0.2.1 ' <<<"$line"

# ---- all ports forwarded
assert_ping "$NODE_NS" "$VM_IP" "ping $VM_IP from the node reaches the guest"
BOOT_ID=$(sed -n 's/^KVNET-GUEST boot_id=\([^ ]*\) .*/\1/p' <<<"$line")
[ -n "$BOOT_ID" ] || die "no boot_id on the guest's console"
got=$(ip netns exec "$NODE_NS" curl -s -m 5 "http://$VM_IP/id" || true)
assert_eq "$got" "boot_id=$BOOT_ID" "GET http://$VM_IP/id answers with the guest's boot_id (DNAT)"
got=$(echo hello | ip netns exec "$NODE_NS" timeout 5 socat -t 2 - TCP:$VM_IP:7,connect-timeout=3 2>/dev/null || true)
assert_eq "$got" hello "TCP echo on $VM_IP:7 (all ports forwarded)"

# ---- egress
for _ in $(seq 1 50); do
	[ -s "$CONN_NODE" ] && [ -s "$CONN_EXT" ] && break
	sleep 0.1
done
assert_eq "$(sed -n 's/^peer=//p' "$CONN_NODE" 2>/dev/null | head -n 1)" "$VM_IP" \
	"guest's outbound flow reaches the node with source $VM_IP (SNAT)"
assert_true "outbound flow carries the guest's lines" grep -q "kvnet boot_id=$BOOT_ID conn=1 seq=" "$CONN_NODE"
assert_eq "$(sed -n 's/^peer=//p' "$CONN_EXT" 2>/dev/null | head -n 1)" "$EXT_NODE_ADDR" \
	"guest's outbound flow reaches ext behind the node masquerade"

# ---- IPv6
if [ "$HAVE_DNSMASQ" = 1 ]; then
	for _ in $(seq 1 150); do
		con | grep -q "^KVNET-GUEST .*iface=eth0 ip6=.*$GUEST6" && break
		sleep 0.1
	done
	assert_true "guest got $GUEST6 by SLAAC" sh -c "tr -d '\r' <'$CONSOLE' | grep -q 'iface=eth0 ip6=.*$GUEST6'"
	assert_ping "$NODE_NS" "$VM_IP6" "ping6 $VM_IP6 from the node reaches the guest"
	got=$(ip netns exec "$NODE_NS" curl -s -m 5 -g "http://[$VM_IP6]/id" || true)
	assert_eq "$got" "boot_id=$BOOT_ID" "GET http://[$VM_IP6]/id answers from the guest (DNAT ip6)"
else
	log "dnsmasq not installed: IPv6 checks skipped"
fi

# ---- listed ports only (the sandbox table is replaced in place; the guest keeps running)
PARGS=("${ARGS[@]}" --port tcp/80)
if out=$(masq nat "${PARGS[@]}" 2>&1); then pass "masq-tool nat with ports tcp/80"; else fail "masq-tool nat: $out"; fi
assert_true "masq-tool check with ports tcp/80" masq check "${PARGS[@]}"
assert_false "masq-tool check with all ports now fails (rule count)" masq check "${ARGS[@]}"
ip netns exec "$SBX" nft list table inet kvnet-masq >"$KV_TMP/masq-ports.nft" 2>&1 || true
assert_true "dnat rule matches tcp dport 80" grep -q 'tcp dport 80' "$KV_TMP/masq-ports.nft"
got=$(ip netns exec "$NODE_NS" curl -s -m 5 "http://$VM_IP/id" || true)
assert_eq "$got" "boot_id=$BOOT_ID" "listed port 80 still reaches the guest"
got=$(echo hello | ip netns exec "$NODE_NS" timeout 5 socat -t 2 - TCP:$VM_IP:7,connect-timeout=3 2>/dev/null || true)
assert_eq "$got" "" "unlisted port 7 gets no answer"
if [ "$HAVE_DNSMASQ" = 1 ]; then
	got=$(ip netns exec "$NODE_NS" curl -s -m 5 -g "http://[$VM_IP6]/id" || true)
	assert_eq "$got" "boot_id=$BOOT_ID" "listed port 80 reaches the guest over IPv6"
fi
n1=$(wc -l <"$CONN_NODE")
sleep 0.5
n2=$(wc -l <"$CONN_NODE")
assert_true "egress keeps flowing with listed ports ($n1 -> $n2 lines)" test "$n2" -gt "$n1"

# ---- detach
kill -TERM "$QEMU" 2>/dev/null || true
wait "$QEMU" 2>/dev/null || true
if out=$(masq detach "${ARGS[@]}" 2>&1); then pass "masq-tool detach"; else fail "masq-tool detach: $out"; fi
assert_false "no table inet kvnet-masq left in the sandbox" ip netns exec "$SBX" nft list table inet kvnet-masq
assert_eq "$(count_veth "$NODE_NS")" 1 "only the ext veth is left on the node"
assert_no_link "$NODE_NS" "$HOSTIF"
assert_no_link "$SBX" "$TAP"
assert_true "detach again succeeds" masq detach "${ARGS[@]}"
assert_false "check after detach fails" masq check "${ARGS[@]}"

finish
