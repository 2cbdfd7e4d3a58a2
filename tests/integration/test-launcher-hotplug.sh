#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# NIC hot-plug and unplug through kvnet-launcher's status socket, with a real guest (TCG).
#
# node namespace: a private libvirtd (scripts/libvirt-node.sh); bridge kvbr0 10.77.0.1/24 with tap
# kvtap0 (the VMI's boot interface 'default'), bridge kvbr1 10.78.0.1/24, one dnsmasq serving
# static leases on both. The guest boots with one NIC (eth0). Then, as CNI/netd would for a second
# VM interface, the test creates tap kvtap1 on kvbr1 and sends
#   {"op":"attach-interface","args":{"name":"net1","tap":"kvtap1","mac":...}}
# and asserts: the status (file and socket) lists net1 with its tap, MAC and MTU; libvirt's live XML
# has <alias name='ua-net1'/>; the guest prints "hotplug=add iface=eth1" and gets its lease on eth1
# (console) and answers ping at 10.78.0.10. Then detach-interface net1: the status shows it
# detaching or gone at once, it leaves the status once libvirt reported DEVICE_REMOVED, the live XML
# no longer has it, the guest prints "hotplug=remove iface=eth1" and 10.78.0.10 no longer answers.
# A second NIC (net2) is hot-plugged while net1 is attached (the domain's spare PCIe root ports) and
# detached while the guest is paused: the detach times out after 30 s (detachError, NIC kept), and
# the resumed guest's late acknowledgement still removes it. The boot interface is detached the same way. Then the VM (now with only the hot-plugged NIC) is
# live-migrated with destStateDir to a second node (own namespace, libvirtd, tap kvtap1): the
# source exits Migrated, the target launcher (given the VMI with net1 and --nic net1=tap:kvtap1)
# runs it with net1 listed, the guest answers at 10.78.0.10 there, the target's domain writes the
# target's serial log, and the target detaches net1 (DEVICE_REMOVED, guest console). Bad requests (unknown tap, duplicate name, duplicate
# tap, bad MAC, unknown key, detach of an unknown interface) fail naming the field or the value, and
# change nothing (status, live XML). During the graceful shutdown both ops are refused. Skips (4)
# without qemu/libvirtd/dnsmasq/socat.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_cmd qemu-system-x86_64 virsh unshare socat jq
require_libvirt
command -v dnsmasq >/dev/null 2>&1 || skip "dnsmasq not installed (package dnsmasq-base)"
LAUNCHER=$KV_BIN/kvnet-launcher
require_file "$LAUNCHER"

guest_image
guest_store

NODE_DIR=$KV_TMP/node
NODE_NAME=kvh-$(rand_suffix)
URI=""
at_exit '[ -n "${LAUNCHER_PID:-}" ] && kill -TERM "$LAUNCHER_PID" 2>/dev/null'
setup_node
libvirt_node_start "$NODE_NAME" "$NODE_NS" "$NODE_DIR"
vsh() { virsh -q -c "$URI" "$@"; }

# ---------------------------------------------------------------- network: two bridges, dnsmasq
MAC0=02:4b:56:77:00:0a
GIP0=10.77.0.10
MAC1=02:4b:56:78:00:0b
GIP1=10.78.0.10
TAP0=kvtap0
TAP1=kvtap1
for b in 0 1; do
	ip -n "$NODE_NS" link add "kvbr$b" type bridge
	ip -n "$NODE_NS" addr add "10.7$((7 + b)).0.1/24" dev "kvbr$b"
	ip -n "$NODE_NS" link set "kvbr$b" up
done
ip -n "$NODE_NS" tuntap add dev "$TAP0" mode tap
ip -n "$NODE_NS" link set "$TAP0" master kvbr0 up
bg ip netns exec "$NODE_NS" dnsmasq --keep-in-foreground --port=0 --user=root --group=root \
	--interface=kvbr0 --interface=kvbr1 --except-interface=lo --bind-interfaces --conf-file=/dev/null \
	--no-resolv --no-hosts --dhcp-leasefile="$KV_TMP/leases" --pid-file="$KV_TMP/dnsmasq.pid" \
	--dhcp-range=10.77.0.100,10.77.0.150,255.255.255.0,1h --dhcp-range=10.78.0.100,10.78.0.150,255.255.255.0,1h \
	--dhcp-host="$MAC0,$GIP0" --dhcp-host="$MAC1,$GIP1" \
	--dhcp-option=tag:kvbr0,option:router,10.77.0.1 --log-facility="$KV_TMP/dnsmasq.log"
DNSMASQ_PID=$BG_PID
sleep 0.3
kill -0 "$DNSMASQ_PID" 2>/dev/null || die "dnsmasq did not start"

# ---------------------------------------------------------------- VMI with one interface
STATE=$KV_TMP/state
VMI=$KV_TMP/vmi.yaml
DOM=default_hpguest
VMDIR=$STATE/$DOM
STATUS=$VMDIR/status.json
SOCK=$VMDIR/launcher.sock
CONSOLE=$VMDIR/serial.log
cat >"$VMI" <<EOF
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata:
  name: hpguest
  namespace: default
spec:
  terminationGracePeriodSeconds: 30
  domain:
    firmware:
      kernelBoot:
        kernelArgs: "console=ttyS0 quiet panic=-1 kvnet.ipv6=0"
        container:
          image: $GUEST_REF
          kernelPath: /boot/vmlinuz
          initrdPath: /boot/initrd.img
    memory:
      guest: 256Mi
    devices:
      interfaces:
        - name: default
          bridge: {}
          macAddress: "$MAC0"
  networks:
    - name: default
      pod: {}
EOF

req() { echo "$1" | timeout 10 socat - "UNIX-CONNECT:$SOCK"; }
console() { tr -d '\r' <"$CONSOLE" 2>/dev/null; }
ifnames() { jq -r '[.interfaces[].name] | join(",")' "$STATUS" 2>/dev/null; }
ifnames_are() { [ "$(ifnames)" = "$1" ]; }
phase_is() { [ "$(jq -r .phase "$STATUS" 2>/dev/null)" = "$1" ]; }
live_aliases() { vsh dumpxml "$DOM" | sed -n "s/.*<alias name='\(ua-[^']*\)'.*/\1/p" | sort | tr '\n' ' '; }
assert_err() { # REQUEST NEEDLE DESCRIPTION: the reply is an error whose message contains NEEDLE
	local res msg
	res=$(req "$1" || true)
	msg=$(jq -r 'if .ok == false then .msg else "ok:" + (.ok | tostring) end' <<<"$res" 2>/dev/null || echo "bad reply: $res")
	if [[ "$msg" == *"$2"* ]]; then
		pass "$3 ($msg)"
	else
		fail "$3: expected an error naming '$2', got: $msg"
	fi
}

ip netns exec "$NODE_NS" "$LAUNCHER" --run "$VMI" --image-dir "$GUEST_IMAGES" --connect "$URI" \
	--nic "default=tap:$TAP0" --state-dir "$STATE" --migratable >"$KV_TMP/launcher.log" 2>&1 &
LAUNCHER_PID=$!
wait_until 30 phase_is Running || die "launcher did not reach Running"
wait_until 60 ip netns exec "$NODE_NS" ping -c 1 -W 0.2 -q "$GIP0" || {
	console | tail -n 20
	die "guest did not answer ping at $GIP0 within 60 s"
}
pass "guest boots with one NIC and answers ping at $GIP0"
wait_until 20 grep -q "KVNET-GUEST ready" "$CONSOLE" || fail "guest printed KVNET-GUEST ready"
assert_eq "$(ifnames)" default "status lists the boot interface only"
assert_eq "$(live_aliases)" "ua-default " "live XML: one interface (ua-default)"

# ---------------------------------------------------------------- bad attach requests: nothing changes
ip -n "$NODE_NS" tuntap add dev kvtap9 mode tap # exists, for the duplicate-name case
assert_err '{"op":"attach-interface","args":{"name":"net1","tap":"kvnope","mac":"'$MAC1'"}}' \
	"tap 'kvnope' (interface 'net1') does not exist" "attach of an unknown tap is refused"
assert_err '{"op":"attach-interface","args":{"name":"default","tap":"kvtap9"}}' \
	"interface 'default' is already attached" "attach of a duplicate name is refused"
assert_err '{"op":"attach-interface","args":{"name":"net9","tap":"'$TAP0'"}}' \
	"tap '$TAP0' already backs interface 'default'" "attach of a tap already in use is refused"
assert_err '{"op":"attach-interface","args":{"name":"net9","tap":"kvtap9","mac":"01:00:5e:00:00:01"}}' \
	"'mac' must be a unicast MAC address" "attach with a multicast MAC is refused"
assert_err '{"op":"attach-interface","args":{"name":"net9","tap":"kvtap9","mtu":9}}' \
	"'mtu' must be 68..65535, got 9" "attach with an MTU out of range is refused"
assert_err '{"op":"attach-interface","args":{"name":"net9","tap":"kvtap9","vlan":3}}' \
	"unknown key 'vlan'" "attach with an unknown key is refused"
assert_err '{"op":"attach-interface","args":{"name":"bad name","tap":"kvtap9"}}' \
	"'name' must be 1..63 characters of [A-Za-z0-9_-], got 'bad name'" "attach with an invalid name is refused"
assert_err '{"op":"detach-interface","args":{"name":"nope"}}' \
	"detach-interface: interface 'nope' is not attached" "detach of an unknown interface is refused"
assert_eq "$(ifnames)" default "after the bad requests the status still lists only 'default'"
assert_eq "$(live_aliases)" "ua-default " "after the bad requests the live XML still has one interface"
ip -n "$NODE_NS" link del kvtap9

# ---------------------------------------------------------------- attach net1 on a new tap
ip -n "$NODE_NS" tuntap add dev "$TAP1" mode tap
ip -n "$NODE_NS" link set "$TAP1" master kvbr1 up
res=$(req '{"op":"attach-interface","args":{"name":"net1","tap":"'$TAP1'","mac":"'$MAC1'","mtu":1400}}')
assert_eq "$(jq -r '"\(.ok) \([.result.interfaces[].name] | join(","))"' <<<"$res")" "true default,net1" \
	"attach-interface net1: ok, the reply's status lists it"
assert_eq "$(jq -r '.interfaces[] | select(.name == "net1") | "\(.tap) \(.mac) \(.mtu)"' "$STATUS")" \
	"$TAP1 $MAC1 1400" "status file: net1 with its tap, MAC and MTU"
assert_eq "$(jq -r '.result.interfaces[1] | "\(.tap) \(.mac)"' <<<"$(req '{"op":"status"}')")" "$TAP1 $MAC1" \
	"status op lists net1"
assert_eq "$(live_aliases)" "ua-default ua-net1 " "live XML: ua-net1 attached"
assert_true "live XML: net1 is an ethernet interface on $TAP1 with MTU 1400" \
	bash -c "virsh -q -c '$URI' dumpxml $DOM | tr -d '\n' | grep -q \"<interface type='ethernet'>.*<target dev='$TAP1'.*<mtu size='1400'/>.*<alias name='ua-net1'/>\""
if wait_until 30 grep -q "hotplug=add iface=eth1 mac=$MAC1" "$CONSOLE"; then
	pass "guest sees the hot-plugged NIC (console: hotplug=add iface=eth1)"
else
	console | tail -n 15
	fail "guest sees the hot-plugged NIC (console: hotplug=add iface=eth1)"
fi
if wait_until 40 grep -q "iface=eth1 mac=$MAC1 ip=$GIP1/24 .*dhcp=bound" "$CONSOLE"; then
	pass "guest got $GIP1 on eth1 by DHCP (console)"
else
	console | grep KVNET-GUEST | tail -n 10
	fail "guest got $GIP1 on eth1 by DHCP (console)"
fi
if wait_until 20 ip netns exec "$NODE_NS" ping -c 1 -W 0.3 -q "$GIP1"; then
	pass "guest answers ping at $GIP1 (eth1, kvbr1)"
else
	fail "guest answers ping at $GIP1 (eth1, kvbr1)"
fi

assert_err '{"op":"attach-interface","args":{"name":"net1","tap":"'$TAP1'"}}' \
	"interface 'net1' is already attached" "a second attach of net1 is refused"

# A second NIC while net1 is attached: the domain has spare PCIe root ports (LAUNCH_HOTPLUG_PORTS).
ip -n "$NODE_NS" tuntap add dev kvtap2 mode tap
ip -n "$NODE_NS" link set kvtap2 master kvbr1 up
res=$(req '{"op":"attach-interface","args":{"name":"net2","tap":"kvtap2"}}')
assert_eq "$(jq -r '"\(.ok) \([.result.interfaces[].name] | join(","))"' <<<"$res")" "true default,net1,net2" \
	"a second hot-plug while net1 is attached (spare root ports) ($(jq -r .msg <<<"$res"))"
assert_eq "$(live_aliases)" "ua-default ua-net1 ua-net2 " "live XML: ua-net2 attached too"
if wait_until 30 grep -q "hotplug=add iface=eth2" "$CONSOLE"; then
	pass "guest sees the second hot-plugged NIC (console: hotplug=add iface=eth2)"
else
	fail "guest sees the second hot-plugged NIC (console: hotplug=add iface=eth2)"
fi
# Detach while the guest is paused: it cannot acknowledge the unplug, so after 30 s the detach
# fails (the NIC stays, detachError says why); once resumed the guest acks the pending request and
# DEVICE_REMOVED still removes it.
vsh suspend "$DOM" >/dev/null
res=$(req '{"op":"detach-interface","args":{"name":"net2"}}')
assert_eq "$(jq -r .ok <<<"$res")" true "detach-interface net2 accepted (guest paused)"
assert_err '{"op":"detach-interface","args":{"name":"net2"}}' \
	"interface 'net2' is already being detached" "a second detach while one is pending is refused"
net2_failed() { jq -e '.interfaces[] | select(.name == "net2") | (.state == null and (.detachError | test("within 30 s")))' "$STATUS"; }
if wait_until 40 net2_failed; then
	pass "detach timeout: net2 stays, detachError: $(jq -r '.interfaces[] | select(.name == "net2") | .detachError' "$STATUS")"
else
	fail "detach timeout: net2 stays with a detachError ($(jq -c .interfaces "$STATUS"))"
fi
assert_true "launcher log names the failed detach" grep -q "detach-interface 'net2': the guest did not release" "$KV_TMP/launcher.log"
vsh resume "$DOM" >/dev/null
wait_until 40 ifnames_are default,net1 || true
assert_eq "$(ifnames)" default,net1 "after the resume the guest acks: net2 leaves the status (DEVICE_REMOVED)"
assert_eq "$(live_aliases)" "ua-default ua-net1 " "live XML: ua-net2 gone"
ip -n "$NODE_NS" link del kvtap2

# ---------------------------------------------------------------- detach net1
res=$(req '{"op":"detach-interface","args":{"name":"net1"}}')
assert_eq "$(jq -r .ok <<<"$res")" true "detach-interface net1 accepted"
st=$(jq -r '.result.interfaces[] | select(.name == "net1") | .state' <<<"$res")
assert_eq "${st:-gone}" detaching "the reply shows net1 detaching (the guest has not acked yet)"
if wait_until 40 ifnames_are default; then
	pass "net1 leaves the status once libvirt reports DEVICE_REMOVED"
else
	fail "net1 leaves the status once libvirt reports DEVICE_REMOVED (interfaces: $(ifnames))"
fi
assert_true "launcher log: DEVICE_REMOVED handled" grep -q "interface 'net1' (tap $TAP1) detached" "$KV_TMP/launcher.log"
assert_eq "$(live_aliases)" "ua-default " "live XML: ua-net1 gone"
assert_eq "$(jq -r '[.result.interfaces[].name] | join(",")' <<<"$(req '{"op":"status"}')")" default \
	"status op no longer lists net1"
if wait_until 20 grep -q "hotplug=remove iface=eth1" "$CONSOLE"; then
	pass "guest's eth1 is gone (console: hotplug=remove iface=eth1)"
else
	fail "guest's eth1 is gone (console: hotplug=remove iface=eth1)"
fi
assert_false "guest no longer answers at $GIP1" ip netns exec "$NODE_NS" ping -c 2 -W 0.5 -q "$GIP1"
assert_true "tap $TAP1 left alone (it belongs to CNI/netd)" ip -n "$NODE_NS" link show "$TAP1"
assert_err '{"op":"detach-interface","args":{"name":"net1"}}' \
	"interface 'net1' is not attached" "a second detach of net1 is refused"

# ---------------------------------------------------------------- re-attach, then detach the boot interface
res=$(req '{"op":"attach-interface","args":{"name":"net1","tap":"'$TAP1'","mac":"'$MAC1'"}}')
assert_eq "$(jq -r .ok <<<"$res")" true "net1 can be attached again after its detach"
wait_until 40 ip netns exec "$NODE_NS" ping -c 1 -W 0.3 -q "$GIP1" || true
assert_true "guest answers at $GIP1 again" ip netns exec "$NODE_NS" ping -c 1 -W 1 -q "$GIP1"
res=$(req '{"op":"detach-interface","args":{"name":"default"}}')
assert_eq "$(jq -r .ok <<<"$res")" true "detach-interface of the boot interface 'default' accepted"
wait_until 40 ifnames_are net1 || true
assert_eq "$(ifnames)" net1 "the boot interface leaves the status"
assert_eq "$(live_aliases)" "ua-net1 " "live XML: ua-default gone"
assert_false "guest no longer answers at $GIP0" ip netns exec "$NODE_NS" ping -c 2 -W 0.5 -q "$GIP0"
assert_true "guest still answers at $GIP1" ip netns exec "$NODE_NS" ping -c 1 -W 1 -q "$GIP1"

# ---------------------------------------------------------------- live migration after the hot-plug
# The domain now has only the hot-plugged net1 (the boot NIC is gone), so libvirt's live XML is the
# device layout. Node B: its own namespace + libvirtd, a tap of the same name on a bridge with
# 10.78.0.1; the target launcher gets the VMI as it is now (net1 with its MAC) and --nic for it.
mkns NODE_B nodeb
ip -n "$NODE_B" link add kvbr1 type bridge
ip -n "$NODE_B" addr add 10.78.0.1/24 dev kvbr1
ip -n "$NODE_B" link set kvbr1 up
ip -n "$NODE_B" tuntap add dev "$TAP1" mode tap
ip -n "$NODE_B" link set "$TAP1" master kvbr1 up
URI_A=$URI
libvirt_node_start "kvhb-$(rand_suffix)" "$NODE_B" "$KV_TMP/nodeB"
URI_B=$URI
URI=$URI_A
STATE_B=$KV_TMP/stateB
VMI_B=$KV_TMP/vmi-b.yaml
sed -e '/^      interfaces:/,$d' "$VMI" >"$VMI_B"
printf '%s\n' "      interfaces:" "        - name: net1" "          bridge: {}" "          macAddress: \"$MAC1\"" \
	"  networks:" "    - name: net1" "      pod: {}" >>"$VMI_B"
ip netns exec "$NODE_B" "$LAUNCHER" --run "$VMI_B" --image-dir "$GUEST_IMAGES" --connect "$URI_B" \
	--nic "net1=tap:$TAP1" --state-dir "$STATE_B" --incoming --incoming-timeout 120 >"$KV_TMP/launcher-B.log" 2>&1 &
LAUNCHER_B=$!
at_exit '[ -n "${LAUNCHER_B:-}" ] && kill -TERM "$LAUNCHER_B" 2>/dev/null'
STATUS_B=$STATE_B/$DOM/status.json
phase_b_is() { [ "$(jq -r .phase "$STATUS_B" 2>/dev/null)" = "$1" ]; }
wait_until 30 phase_b_is WaitingForMigration || die "target launcher did not reach WaitingForMigration"
SOCK_A=$SOCK
SOCK=$STATE_B/$DOM/launcher.sock
assert_err '{"op":"attach-interface","args":{"name":"net2","tap":"'$TAP1'"}}' \
	"attach-interface: the domain is not running (phase WaitingForMigration)" "attach on a waiting target is refused"
SOCK=$SOCK_A
res=$(req '{"op":"migrate","args":{"destUri":"'"$URI_B"'","destStateDir":"'"$STATE_B"'","timeoutSeconds":120}}')
assert_eq "$(jq -r .ok <<<"$res")" true "migrate (destStateDir) accepted after the hot-plug ($(jq -r .msg <<<"$res"))"
assert_err '{"op":"attach-interface","args":{"name":"net2","tap":"'$TAP0'"}}' \
	"refused during the live migration" "attach during the migration is refused"
launcher_gone() { ! kill -0 "$LAUNCHER_PID" 2>/dev/null; }
rc=0
wait_until 150 launcher_gone || kill -KILL "$LAUNCHER_PID"
wait "$LAUNCHER_PID" || rc=$?
LAUNCHER_PID=""
assert_eq "$rc $(jq -r .phase "$STATUS")" "0 Migrated" "source launcher: exit 0, phase Migrated ($(jq -r .migration.error "$STATUS"))"
wait_until 30 phase_b_is Running || true
assert_eq "$(jq -r '.phase + " " + ([.interfaces[] | .name + "=" + .tap] | join(","))' "$STATUS_B")" "Running net1=$TAP1" \
	"target launcher: Running, lists net1"
URI=$URI_B
assert_eq "$(live_aliases)" "ua-net1 " "target's live XML: the hot-plugged net1 only"
assert_true "target's domain writes B's serial log" \
	bash -c "virsh -q -c '$URI_B' dumpxml $DOM | grep -q \"path='$STATE_B/$DOM/serial.log'\""
if wait_until 20 ip netns exec "$NODE_B" ping -c 1 -W 0.3 -q "$GIP1"; then
	pass "guest answers ping at $GIP1 on node B"
else
	fail "guest answers ping at $GIP1 on node B"
fi
LAUNCHER_PID=$LAUNCHER_B
LAUNCHER_B=""
STATUS=$STATUS_B
SOCK=$STATE_B/$DOM/launcher.sock
CONSOLE=$STATE_B/$DOM/serial.log
res=$(req '{"op":"detach-interface","args":{"name":"net1"}}')
assert_eq "$(jq -r .ok <<<"$res")" true "the target detaches the interface hot-plugged on the source"
wait_until 40 ifnames_are "" || true
assert_eq "$(ifnames)" "" "target: net1 leaves the status (DEVICE_REMOVED)"
assert_eq "$(live_aliases)" "" "target's live XML: no interface left"
if wait_until 20 grep -q "hotplug=remove iface=eth1" "$CONSOLE"; then
	pass "guest on B: eth1 removed (console)"
else
	fail "guest on B: eth1 removed (console)"
fi

# ---------------------------------------------------------------- refused while shutting down
kill -TERM "$LAUNCHER_PID"
sleep 0.3
assert_err '{"op":"attach-interface","args":{"name":"net2","tap":"'$TAP0'"}}' \
	"attach-interface: refused, the launcher is shutting down" "attach during the graceful shutdown is refused"
assert_err '{"op":"detach-interface","args":{"name":"net1"}}' \
	"detach-interface: refused, the launcher is shutting down" "detach during the graceful shutdown is refused"
rc=0
wait_until 60 launcher_gone || kill -KILL "$LAUNCHER_PID"
wait "$LAUNCHER_PID" || rc=$?
LAUNCHER_PID=""
assert_eq "$rc" 0 "launcher exits 0 after SIGTERM (guest powered off)"
assert_eq "$(jq -r '"\(.phase) \(.interfaces | length)"' "$STATUS")" "Succeeded 0" \
	"final status: Succeeded, no interfaces left"
finish
