#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kvnet's per-VM DHCP responder (netd/dhcp*.c, driven by build/tests/dhcp-tool) against real clients:
#   S (server) --veth-- C (client)
# - busybox udhcpc in C gets ip/mask/router/dns/domain/hostname/mtu/lease/option 121 from the responder
#   on S's end; a second run gets the same (static) address; a client with another MAC gets nothing.
# - IPv6: C's kernel accepts the RA: default route via the responder's link-local, on-link prefix, MTU.
# - the responder runs in namespace N1 but serves an interface in N2 (--netns /run/netns/N2).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

require_root
require_cmd ip timeout jq
BUSYBOX=$(command -v busybox || true)
if [ -z "$BUSYBOX" ]; then
	echo "SKIP: busybox not installed (apt-get install busybox-static)"
	exit 4
fi
"$BUSYBOX" udhcpc --help >/dev/null 2>&1 || "$BUSYBOX" --list | grep -qx udhcpc ||
	{
		echo "SKIP: busybox has no udhcpc applet"
		exit 4
	}
TOOL=$KV_BUILD_DIR/tests/dhcp-tool
require_file "$TOOL"

KV_TMP=$(mktemp -d /tmp/kvnet-it.XXXXXX)
trap kv_cleanup EXIT
trap 'exit 1' INT TERM

VM_MAC=02:00:5e:10:00:10
SRV_MAC=02:00:5e:10:00:01
OTHER_MAC=02:00:5e:10:00:99

# udhcpc script: print the variables of a bound lease, one KEY=VALUE per line.
SCRIPT=$KV_TMP/udhcpc.sh
cat >"$SCRIPT" <<'EOF'
#!/bin/sh
case "$1" in
bound|renew)
	echo "ip=$ip"; echo "subnet=$subnet"; echo "router=$router"; echo "dns=$dns"
	echo "domain=$domain"; echo "hostname=$hostname"; echo "mtu=$mtu"; echo "lease=$lease"
	echo "serverid=$serverid"; echo "staticroutes=$staticroutes"
	;;
esac
exit 0
EOF
chmod +x "$SCRIPT"

mkns S srv
mkns C cli
ip link add vs0 netns "$S" address "$SRV_MAC" type veth peer name vc0 netns "$C" address "$VM_MAC"
ip -n "$C" link set vc0 up
ip -n "$S" link set vs0 up
# the client sends RS / DHCP only from an up interface; RAs are only accepted without forwarding
ip netns exec "$C" sysctl -qw net.ipv6.conf.vc0.accept_ra=2
ip netns exec "$C" sysctl -qw net.ipv6.conf.vc0.accept_dad=0 2>/dev/null || true
ip netns exec "$S" sysctl -qw net.ipv6.conf.vs0.accept_dad=0 2>/dev/null || true

# start_tool NS OUTVAR args...: starts dhcp-tool in NS, waits for READY.
start_tool() {
	local ns=$1 out=$2
	shift 2
	ip netns exec "$ns" "$TOOL" --stats "$out.stats" "$@" >"$out" 2>&1 &
	BG_PID=$!
	KV_PIDS+=("$BG_PID")
	local i
	for i in $(seq 1 50); do
		grep -q READY "$out" 2>/dev/null && return 0
		kill -0 "$BG_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$out"
	die "dhcp-tool did not start"
}

stop_tool() {
	local pid=$1 st=0
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || st=$?
	assert_eq "$st" 0 "dhcp-tool exits cleanly on SIGTERM (no sanitizer report)"
}

# udhcpc_run NS IF OUTFILE: one DORA exchange, returns udhcpc's status.
udhcpc_run() {
	ip netns exec "$1" timeout 20 "$BUSYBOX" udhcpc -f -q -n -t 3 -T 1 -A 1 -i "$2" -s "$SCRIPT" \
		-O mtu -O staticroutes -O hostname -O domain >"$3" 2>&1
}

getv() { sed -n "s/^$1=//p" "$2" | tail -n 1; }

start_tool "$S" "$KV_TMP/tool1" --ifname vs0 --mac "$VM_MAC" \
	--addr4 10.77.0.10/24 --gw4 10.77.0.1 --dns 10.77.0.53 --dns 10.77.0.54 --dns fd77::53 \
	--domain example.test --hostname vm1 --mtu 1400 --lease 3600 --route 10.0.0.0/8,10.77.0.254 \
	--addr6 fd77::10/64 --gw6 fd77::1
TOOL1=$BG_PID

# ---- DHCPv4
OUT=$KV_TMP/c1
if udhcpc_run "$C" vc0 "$OUT"; then pass "udhcpc obtained a lease"; else
	fail "udhcpc obtained a lease"
	cat "$OUT"
fi
assert_eq "$(getv ip "$OUT")" 10.77.0.10 "yiaddr"
assert_eq "$(getv subnet "$OUT")" 255.255.255.0 "option 1 subnet mask"
assert_eq "$(getv router "$OUT")" 10.77.0.1 "option 3 router"
assert_eq "$(getv dns "$OUT" | xargs)" "10.77.0.53 10.77.0.54" "option 6 DNS (IPv4 entries only)"
assert_eq "$(getv domain "$OUT")" example.test "option 15 domain"
assert_eq "$(getv hostname "$OUT")" vm1 "option 12 hostname"
assert_eq "$(getv mtu "$OUT")" 1400 "option 26 MTU"
assert_eq "$(getv lease "$OUT")" 3600 "option 51 lease time"
assert_eq "$(getv serverid "$OUT")" 10.77.0.1 "option 54 server id"
assert_eq "$(getv staticroutes "$OUT")" "0.0.0.0/0 10.77.0.1 10.0.0.0/8 10.77.0.254" "option 121 with the default route"

OUT2=$KV_TMP/c2
udhcpc_run "$C" vc0 "$OUT2" || true
assert_eq "$(getv ip "$OUT2")" 10.77.0.10 "second run gets the same (static) address"

# ---- a client with another MAC gets nothing
ip -n "$C" link set vc0 down
ip -n "$C" link set vc0 address "$OTHER_MAC"
ip -n "$C" link set vc0 up
OUT3=$KV_TMP/c3
rc=0
ip netns exec "$C" timeout 20 "$BUSYBOX" udhcpc -f -q -n -t 2 -T 1 -i vc0 -s "$SCRIPT" >"$OUT3" 2>&1 || rc=$?
assert_ne "$rc" 0 "client with another MAC gets no lease (udhcpc times out)"
assert_eq "$(getv ip "$OUT3")" "" "no address offered to another MAC"
ip -n "$C" link set vc0 down
ip -n "$C" link set vc0 address "$VM_MAC"
ip -n "$C" link set vc0 up

# ---- IPv6: the kernel in C processes the RA
LL=fe80::5eff:fe10:1 # modified EUI-64 of 02:00:5e:10:00:01
ok=""
for _ in $(seq 1 60); do
	if ip -n "$C" -6 route show default | grep -q "via fe80::"; then
		ok=1
		break
	fi
	sleep 0.25
done
R6=$(ip -n "$C" -6 route show)
if [ -n "$ok" ]; then pass "RA installed a default route"; else
	fail "RA installed a default route"
	echo "$R6"
fi
assert_eq "$(ip -n "$C" -6 route show default | awk '{print $3}' | head -n 1)" "$LL" "default route via the responder's EUI-64 link-local"
if grep -q '^fd77::/64 dev vc0' <<<"$R6"; then pass "on-link prefix fd77::/64 from the RA"; else
	fail "on-link prefix fd77::/64 from the RA"
	echo "$R6"
fi
if ip -n "$C" -6 addr show dev vc0 | grep -q 'fd77::'; then
	fail "no SLAAC address from the A=0 prefix"
else
	pass "no SLAAC address from the A=0 prefix"
fi
assert_eq "$(ip netns exec "$C" cat /proc/sys/net/ipv6/conf/vc0/mtu)" 1400 "RA MTU option applied"

# ---- DHCPv6: SOLICIT with rapid commit from a UDP socket in C (busybox has no udhcpc6 here; the
# kernel's offloaded UDP checksum also exercises the responder's PACKET_AUXDATA path)
V6=0
if "$BUSYBOX" --list | grep -qx udhcpc6; then
	V6=1
	OUT6=$KV_TMP/c6
	ip netns exec "$C" timeout 20 "$BUSYBOX" udhcpc6 -f -q -n -t 3 -T 1 -i vc0 -s "$SCRIPT" >"$OUT6" 2>&1 || true
	assert_true "udhcpc6 received fd77::10" grep -q 'fd77::10' "$OUT6"
elif command -v python3 >/dev/null; then
	V6=1
	GOT6=$(ip netns exec "$C" timeout 20 python3 - <<'PY' 2>&1 || true
import socket, struct
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"vc0")
s.bind(("::", 546))
s.settimeout(2)
idx = socket.if_nametoindex("vc0")
duid = bytes([0, 3, 0, 1, 0x02, 0x00, 0x5e, 0x10, 0x00, 0x10])
msg = bytes([1, 0xab, 0xcd, 0xef]) + struct.pack(">HH", 1, len(duid)) + duid
msg += struct.pack(">HHIII", 3, 12, 42, 0, 0) + struct.pack(">HH", 14, 0)
for _ in range(5):
    s.sendto(msg, ("ff02::1:2", 547, 0, idx))
    try:
        data, peer = s.recvfrom(2048)
    except socket.timeout:
        continue
    i, out = 4, {"type": data[0], "peer": peer[0].split("%")[0]}
    while i + 4 <= len(data):
        code, l = struct.unpack(">HH", data[i:i + 4]); v = data[i + 4:i + 4 + l]
        if code == 3:
            out["addr"] = socket.inet_ntop(socket.AF_INET6, v[16:32])
        if code == 23:
            out["dns"] = socket.inet_ntop(socket.AF_INET6, v[0:16])
        i += 4 + l
    print(" ".join("%s=%s" % kv for kv in sorted(out.items())))
    break
PY
	)
	assert_eq "$GOT6" "addr=fd77::10 dns=fd77::53 peer=$LL type=7" "DHCPv6 rapid-commit REPLY: IA_NA address, DNS, from the link-local"
else
	log "no DHCPv6 client (udhcpc6 / python3): DHCPv6 covered by unit tests only"
fi

stop_tool "$TOOL1"
STATS=$(cat "$KV_TMP/tool1.stats")
assert_eq "$(jq -r --argjson V6 "$V6" '.ack >= 2 and .offer >= 2 and .ra >= 1 and .solicit >= $V6 and .reply6 >= $V6' <<<"$STATS")" true "stats count offers/acks/RAs ($STATS)"

# ---- the socket is created in another namespace: the tool runs in N1, serves vn0 in N2
mkns N1 n1
mkns N2 n2
mkns C2 c2
ip link add vn0 netns "$N2" address "$SRV_MAC" type veth peer name vc0 netns "$C2" address "$VM_MAC"
ip -n "$N2" link set vn0 up
ip -n "$C2" link set vc0 up
start_tool "$N1" "$KV_TMP/tool2" --netns "$(nspath "$N2")" --ifname vn0 --mac "$VM_MAC" \
	--addr4 10.78.0.20/16 --gw4 10.78.0.1 --dns 10.78.0.53
TOOL2=$BG_PID
assert_false "vn0 is not visible in N1" ip -n "$N1" link show vn0
OUT4=$KV_TMP/c4
if udhcpc_run "$C2" vc0 "$OUT4"; then pass "lease through a socket in another netns"; else
	fail "lease through a socket in another netns"
	cat "$OUT4" "$KV_TMP/tool2"
fi
assert_eq "$(getv ip "$OUT4")" 10.78.0.20 "yiaddr via --netns"
assert_eq "$(getv subnet "$OUT4")" 255.255.0.0 "mask via --netns"
assert_eq "$(getv mtu "$OUT4")" "" "no option 26 without an MTU"

# ---- a guest flooding its DHCP port (500 DISCOVERs at once, raw frames): past its allowance (20 frames a second,
# 40 at once) the frames are dropped and counted, and the responder still answers the guest afterwards
FLOOD=0
if command -v python3 >/dev/null; then
	ip netns exec "$C2" python3 "$KV_ROOT/tests/tools/frames.py" burst vc0 500 dhcp4 smac="$VM_MAC"
	FLOOD=1
	sleep 2.5 # the allowance refills
	if udhcpc_run "$C2" vc0 "$OUT4"; then pass "after the flood the responder still answers the guest"; else
		fail "after the flood the responder still answers the guest"
		cat "$OUT4" "$KV_TMP/tool2"
	fi
else
	log "no python3: the DHCP flood is not sent"
fi
stop_tool "$TOOL2"
if [ "$FLOOD" = 1 ]; then
	STATS2=$(cat "$KV_TMP/tool2.stats")
	assert_true "the flood: frames past the allowance dropped and counted, few answered ($STATS2)" \
		jq -e '.limited >= 100 and .offer <= 80' <<<"$STATS2"
fi

finish
