#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The test guest (scripts/guest-image.sh, docs/guest-image.md) boots under QEMU/TCG in a namespace
# with two taps and dnsmasq as DHCP server / IPv6 router:
#  - eth0 (tap0): static lease 10.88.0.4, MTU 1400, DNS, no router option but option 121 (default
#    route + a static route); SLAAC from fd88::/64.  eth1 (tap1): 10.89.0.5 with a plain router.
#  - console: KVNET-GUEST lines with the DHCP facts, "KVNET-GUEST ready"
#  - ping, GET /id (boot_id), /cgi-bin/info, TCP echo on :7 (a connection held 5 s, 100 ms cadence,
#    a second connection in parallel), kvnet.ping= and kvnet.connect= outbound flows
#  - ACPI power button (QEMU monitor system_powerdown): qemu exits within 20 s
# Prints GUEST_BOOT_TO_PING_MS=<n>. KVM is never used (-accel tcg).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
command -v qemu-system-x86_64 >/dev/null 2>&1 || skip "qemu-system-x86_64 not installed (package qemu-system-x86)"
command -v dnsmasq >/dev/null 2>&1 || skip "dnsmasq not installed (package dnsmasq-base)"
require_cmd socat curl nstat

log "building the guest image (cached)"
img=$("$KV_ROOT/scripts/guest-image.sh" --quiet) || die "scripts/guest-image.sh failed"
KERNEL=$(sed -n 's/^KVNET_GUEST_KERNEL=//p' <<<"$img")
INITRD=$(sed -n 's/^KVNET_GUEST_INITRD=//p' <<<"$img")
{ [ -s "$KERNEL" ] && [ -s "$INITRD" ]; } || die "guest-image.sh printed no kernel/initrd ($img)"
pass "guest image built: $(sed -n 's/^KVNET_GUEST_VERSION=//p' <<<"$img")"
VERSION_FILE=$(dirname "$KERNEL")/VERSION
built=$(grep '^BUILT=' "$VERSION_FILE")
"$KV_ROOT/scripts/guest-image.sh" --quiet >/dev/null || die "second scripts/guest-image.sh run failed"
assert_eq "$(grep '^BUILT=' "$VERSION_FILE")" "$built" "unchanged inputs: the cached image is reused"

mkns GNS guest
MAC0=02:4b:56:$(printf '%02x:%02x:%02x' $((RANDOM % 256)) $((RANDOM % 256)) $((RANDOM % 256)))
MAC1=02:4b:57:$(printf '%02x:%02x:%02x' $((RANDOM % 256)) $((RANDOM % 256)) $((RANDOM % 256)))
GIP=10.88.0.4
GIP1=10.89.0.5
for t in 0 1; do
	ip -n "$GNS" tuntap add dev tap$t mode tap
	ip -n "$GNS" link set tap$t up
done
ip -n "$GNS" addr add 10.88.0.1/24 dev tap0
ip -n "$GNS" addr add 10.88.0.254/24 dev tap0
ip -n "$GNS" addr add fd88::1/64 dev tap0 nodad
ip -n "$GNS" addr add 10.89.0.1/24 dev tap1

CONSOLE=$KV_TMP/console.log
MON=$KV_TMP/monitor.sock
: >"$CONSOLE"

# dnsmasq: DHCP only (no DNS: --port=0), bound to the taps, everything inside the namespace.
bg ip netns exec "$GNS" dnsmasq --keep-in-foreground --port=0 --user=root --group=root \
	--interface=tap0 --interface=tap1 --except-interface=lo --bind-interfaces --conf-file=/dev/null \
	--no-resolv --no-hosts --dhcp-leasefile="$KV_TMP/leases" --pid-file="$KV_TMP/dnsmasq.pid" \
	--dhcp-range=set:n0,10.88.0.100,10.88.0.150,255.255.255.0,1h \
	--dhcp-range=set:n1,10.89.0.100,10.89.0.150,255.255.255.0,1h \
	--dhcp-host="$MAC0,$GIP,kvguest" --dhcp-host="$MAC1,$GIP1" \
	--dhcp-option=tag:n0,option:router --dhcp-option=tag:n0,option:mtu,1400 \
	--dhcp-option=tag:n0,option:dns-server,10.88.0.53 \
	--dhcp-option=tag:n0,121,0.0.0.0/0,10.88.0.1,198.51.100.0/24,10.88.0.254 \
	--dhcp-option=tag:n1,option:router,10.89.0.1 --dhcp-option=tag:n1,option:dns-server \
	--enable-ra --dhcp-range=tag:n0,::,constructor:tap0,ra-only,64,1h --ra-param=tap0,3 \
	--log-facility="$KV_TMP/dnsmasq.log" --log-dhcp
DNSMASQ_PID=$BG_PID

# Outbound flow sink for kvnet.connect=
CONN_OUT=$KV_TMP/connect.out
bg ip netns exec "$GNS" socat -u TCP-LISTEN:9000,bind=10.88.0.1,reuseaddr,fork OPEN:"$CONN_OUT",creat,append

sleep 0.3
kill -0 "$DNSMASQ_PID" 2>/dev/null || {
	cat "$KV_TMP/dnsmasq.log" 2>/dev/null
	die "dnsmasq did not start"
}

# Boot-to-ping: a pinger with timestamps from before the guest starts.
PINGLOG=$KV_TMP/ping.log
bg sh -c "exec ip netns exec '$GNS' ping -D -n -i 0.1 '$GIP' >'$PINGLOG' 2>&1"
PINGER=$BG_PID

t0=$(date +%s%N)
log "booting the guest (TCG), console in $CONSOLE"
# shellcheck disable=SC2217 # bg's stdin/stdout are the background qemu's
bg ip netns exec "$GNS" qemu-system-x86_64 -accel tcg -m 256 -smp 1 -nographic -no-reboot \
	-kernel "$KERNEL" -initrd "$INITRD" \
	-append "console=ttyS0 quiet panic=-1 kvnet.ping=10.88.0.1 kvnet.connect=10.88.0.1:9000" \
	-netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=n0,mac="$MAC0",romfile= \
	-netdev tap,id=n1,ifname=tap1,script=no,downscript=no -device virtio-net-pci,netdev=n1,mac="$MAC1",romfile= \
	-serial file:"$CONSOLE" -monitor unix:"$MON",server,nowait </dev/null >"$KV_TMP/qemu.out" 2>&1
QEMU=$BG_PID

show_console() {
	echo "---- guest console ----"
	tr -d '\r' <"$CONSOLE" 2>&1 | tail -n 60
	echo "---- qemu ----"
	cat "$KV_TMP/qemu.out" 2>&1
	echo "-----------------------"
}

# Ready on the console within 120 s.
for _ in $(seq 1 1200); do
	grep -q '^KVNET-GUEST ready' <(tr -d '\r' <"$CONSOLE") && break
	kill -0 "$QEMU" 2>/dev/null || {
		show_console
		die "qemu exited during boot"
	}
	sleep 0.1
done
t_ready=$(date +%s%N)
grep -q '^KVNET-GUEST ready' <(tr -d '\r' <"$CONSOLE") || {
	show_console
	die "no 'KVNET-GUEST ready' on the console within 120 s"
}
pass "console: KVNET-GUEST ready after $(((t_ready - t0) / 1000000)) ms"

# First ping reply
for _ in $(seq 1 300); do
	grep -q 'bytes from' "$PINGLOG" && break
	sleep 0.1
done
first=$(grep -m1 'bytes from' "$PINGLOG" | sed -n 's/^\[\([0-9]*\)\.\([0-9]*\)\].*/\1 \2/p')
if [ -n "$first" ]; then
	read -r s frac <<<"$first"
	frac=${frac}000000
	t_ping=$((s * 1000 + 10#${frac:0:3}))
	boot_ms=$((t_ping - t0 / 1000000))
	pass "first ping reply from the guest"
	echo "GUEST_BOOT_TO_PING_MS=$boot_ms"
else
	fail "no ping reply from the guest within 30 s after ready"
fi
kill "$PINGER" 2>/dev/null || true

con=$(tr -d '\r' <"$CONSOLE")
line0=$(grep '^KVNET-GUEST boot_id=.* iface=eth0 ' <<<"$con" | grep 'dhcp=bound' | tail -n 1 || true)
line1=$(grep '^KVNET-GUEST boot_id=.* iface=eth1 ' <<<"$con" | grep 'dhcp=bound' | tail -n 1 || true)
log "eth0: $line0"
log "eth1: $line1"
kv() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p" | head -n 1; }
BOOT_ID=$(kv "$line0" boot_id)
assert_eq "$(kv "$line0" mac)" "$MAC0" "eth0 line: mac"
assert_eq "$(kv "$line0" ip)" "$GIP/24" "eth0 line: DHCP address"
assert_eq "$(kv "$line0" gw)" 10.88.0.1 "eth0 line: gateway from option 121"
assert_eq "$(kv "$line0" mtu)" 1400 "eth0 line: DHCP MTU applied"
assert_eq "$(kv "$line0" dns)" 10.88.0.53 "eth0 line: DNS"
assert_eq "$(kv "$line1" ip)" "$GIP1/24" "eth1 line: second NIC configured"
assert_eq "$(kv "$line1" gw)" 10.89.0.1 "eth1 line: gateway from the router option"
assert_true "boot_id is a UUID ('$BOOT_ID')" grep -Eqx '[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}' <<<"$BOOT_ID"
assert_eq "$(kv "$line1" boot_id)" "$BOOT_ID" "both lines carry the same boot_id"

assert_ping "$GNS" "$GIP1" "ping the guest's second NIC"

# HTTP
id=$(ip netns exec "$GNS" curl -s -m 5 "http://$GIP/id" || true)
assert_eq "$id" "boot_id=$BOOT_ID" "GET /id returns the console's boot_id"
info=$(ip netns exec "$GNS" curl -s -m 5 "http://$GIP/cgi-bin/info" || true)
assert_true "/cgi-bin/info lists eth0's address" grep -q "^iface=eth0 .*ip=$GIP/24" <<<"$info"
assert_true "/cgi-bin/info: option 121 static route installed" grep -q '^route4=198.51.100.0/24,via,10.88.0.254' <<<"$info"
assert_true "/cgi-bin/info: hostname from DHCP" grep -qx 'hostname=kvguest' <<<"$info"
assert_true "GET / serves index.html" sh -c "ip netns exec $GNS curl -sf -m 5 http://$GIP/ | grep -q boot_id=$BOOT_ID"

# Echo
word="kvnet-echo-$RANDOM$RANDOM"
got=$(echo "$word" | ip netns exec "$GNS" socat -t 2 - TCP:$GIP:7 || true)
assert_eq "$got" "$word" "TCP echo on port 7"

# A connection held open for 5 s, one line every 100 ms, with a second connection in parallel.
HELD=$KV_TMP/held.out
(for i in $(seq 1 50); do
	echo "held-$i"
	sleep 0.1
done
sleep 1) | ip netns exec "$GNS" socat -t 3 - TCP:$GIP:7 >"$HELD" 2>&1 &
held_pid=$!
sleep 1
got=$(echo parallel | ip netns exec "$GNS" socat -t 2 - TCP:$GIP:7 || true)
assert_eq "$got" parallel "a second echo connection while one is held"
wait "$held_pid" || true
assert_eq "$(wc -l <"$HELD")" 50 "held connection: 50 lines over 5 s echoed"
assert_eq "$(tail -n 1 "$HELD")" held-50 "held connection: last line echoed"

# IPv6 SLAAC (dnsmasq router advertisements)
for _ in $(seq 1 150); do
	grep -q '^KVNET-GUEST .*iface=eth0 ip6=fd88::' <(tr -d '\r' <"$CONSOLE") && break
	sleep 0.1
done
line6=$(tr -d '\r' <"$CONSOLE" | grep '^KVNET-GUEST .*iface=eth0 ip6=' | tail -n 1 || true)
log "eth0 v6: $line6"
ip6=$(kv "$line6" ip6)
ip6=${ip6%%/*}
if [ -n "$ip6" ] && [ "$ip6" != - ]; then
	pass "SLAAC address on the console"
	assert_ping "$GNS" "$ip6" "ping6 the guest's SLAAC address"
else
	fail "no SLAAC address on the console within 15 s"
fi

# kvnet.ping= : ~10 echo requests a second reach 10.88.0.1
ip netns exec "$GNS" nstat -n >/dev/null
sleep 2
echos=$(ip netns exec "$GNS" nstat -z IcmpInEchos 2>/dev/null | awk '/IcmpInEchos/ {print $2}')
log "kvnet.ping: $echos echo requests in 2 s"
assert_true "kvnet.ping pings every 100 ms (>= 12 in 2 s, got ${echos:-0})" test "${echos:-0}" -ge 12

# kvnet.connect= : lines keep arriving
n1=$(wc -l <"$CONN_OUT" 2>/dev/null || echo 0)
sleep 1
n2=$(wc -l <"$CONN_OUT" 2>/dev/null || echo 0)
log "kvnet.connect: $n1 lines, $((n2 - n1)) in the last second"
assert_true "kvnet.connect sends a line every 100 ms (>= 5/s, got $((n2 - n1)))" test $((n2 - n1)) -ge 5
assert_true "kvnet.connect lines carry the boot_id" grep -q "boot_id=$BOOT_ID conn=1 seq=" "$CONN_OUT"

# ACPI power button
t_off=$(date +%s%N)
echo system_powerdown | socat - UNIX-CONNECT:"$MON" >/dev/null 2>&1 || fail "QEMU monitor unreachable"
for _ in $(seq 1 200); do
	kill -0 "$QEMU" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$QEMU" 2>/dev/null; then
	show_console
	fail "qemu exits within 20 s after system_powerdown"
else
	pass "ACPI shutdown: qemu exited after $((($(date +%s%N) - t_off) / 1000000)) ms"
	assert_true "console shows the orderly shutdown" grep -q '^KVNET-GUEST boot_id=.* shutdown' <(tr -d '\r' <"$CONSOLE")
fi

finish
