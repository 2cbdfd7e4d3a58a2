#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kvnet-multus hot-plug (KVNET_MULTUS_INTERFACE=<ifname>, docs/multus.md): a pod added with one secondary
# network (net1, macvlan), its networks annotation then changed through kubectl. ADD with the variable attaches
# net2 (kvnet on a second bridge) alone: the interface with its address in the sandbox, network-status with
# the other entries untouched and net2's after them; ADD again is refused as already attached; a network whose
# plugin fails is rolled back. DEL with the variable detaches net2 alone (net1 untouched), again succeeds,
# works when the NAD is gone. The variable never reaches the delegates (a chained plugin dumps its environment),
# bad values fail with code 4 naming it, and the pod's full DEL leaves nothing, hot-plugged networks included.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-controller.sh"
source "$(dirname "$0")/lib-multus.sh"

kv_init
require_kvnet
require_file "$KV_BIN/kvnet-multus"
require_ref_plugins macvlan host-local
ctl_init
start_controller

multus_node
CNI_DIR=$KV_TMP/multus
HL=$KV_TMP/host-local

# envdump: a chained plugin that writes its environment to $KV_TMP/env.<command> and passes prevResult on
BIN=$KV_TMP/bin
mkdir -p "$BIN"
ln -s "$KV_BIN"/* "$BIN/"
cat >"$BIN/envdump" <<EOF
#!/bin/sh
env >"$KV_TMP/env.\$CNI_COMMAND"
in=\$(cat)
[ "\$CNI_COMMAND" = ADD ] && printf '%s' "\$in" | jq -c .prevResult
exit 0
EOF
chmod +x "$BIN/envdump"
multus_conf "$KV_TMP/multus.conf" '.binDir = "'"$BIN"'"'

nad macnet default '{"cniVersion":"1.0.0","type":"macvlan","master":"kvmac0","mode":"bridge",
  "ipam":{"type":"host-local","subnet":"10.77.0.0/24","dataDir":"'"$HL"'"}}'
nad kvnet2 default '{"cniVersion":"1.1.0","name":"kvnet2","plugins":[{"type":"kvnet","binding":"bridge","bridge":"kvbr1",
  "ipam":{"ranges":[[{"subnet":"10.66.0.0/24","gateway":"10.66.0.1"}]]},"socket":"'"$NETD_SOCK"'"}]}'
nad dumpnet default '{"cniVersion":"1.0.0","name":"dumpnet","plugins":[{"type":"macvlan","master":"kvmac0","mode":"bridge",
  "ipam":{"type":"host-local","subnet":"10.78.0.0/24","dataDir":"'"$HL"'"}},{"type":"envdump"}]}'
nad ghost default '{"cniVersion":"1.0.0","type":"kvnet-no-such-plugin"}'
pod default hp 'macnet'

ip4() { ip -n "$SBX" -4 -o addr show dev "$1" | awk '{print $4}' | head -n 1; }
links() { ip -n "$SBX" -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -v '^lo$' | sort | tr '\n' ' '; }
status() { k get pod hp -o json | jq -r '.metadata.annotations["k8s.v1.cni.cncf.io/network-status"] // "[]"'; }
status_ifs() { status | jq -r '[.[] | "\(.name)=\(.interface)"] | join(",")'; }
cached_ifs() { jq -r '[.delegates[].ifname] | join(",")' "$CNI_DIR/kvnet-multus/cid-hp"; }
annotate() { k annotate --overwrite pod hp "k8s.v1.cni.cncf.io/networks=$1" >/dev/null; }
hot() { # CMD IFNAME
	MC_IFACE=$2 mc "$1" "$KV_TMP/multus.conf" default hp
}
msg() { jq -r .msg <<<"$MC_OUT"; }

# ---------------------------------------------------------------- before the pod is added
hot ADD net2
assert_eq "$(jq -r .code <<<"$MC_OUT")" 3 "hot-plug ADD before the pod's ADD: code 3 (unknown container)"
assert_true "... naming the container ($(msg))" grep -q "container 'cid-hp'" <<<"$(msg)"
hot DEL net2
assert_eq "$MC_RC" 0 "hot-plug DEL of a container never added succeeds"

# ---------------------------------------------------------------- the pod with one network
mc ADD "$KV_TMP/multus.conf" default hp
[ "$MC_RC" -eq 0 ] || echo "$MC_OUT"
assert_eq "$MC_RC" 0 "ADD of the pod with one secondary network"
assert_eq "$(links)" "eth0 net1 " "eth0 and net1 in the sandbox"
NET1=$(ip4 net1)
NET1_MAC=$(ip -n "$SBX" -j link show net1 | jq -r '.[0].address')
ST0=$(status)
assert_eq "$(status_ifs)" "kvtest=eth0,default/macnet=net1" "network-status of the pod as added"

hot ADD net2
assert_eq "$(jq -r .code <<<"$MC_OUT")" 7 "hot-plug of an interface not in the annotation: code 7"
assert_true "... naming the interface and the annotation ($(msg))" \
	grep -q "interface 'net2' is not in the pod's k8s.v1.cni.cncf.io/networks annotation" <<<"$(msg)"
assert_eq "$(cached_ifs)" "eth0,net1" "... and the cache is as it was"

# ---------------------------------------------------------------- a second network hot-plugged
annotate 'macnet, kvnet2, dumpnet@dump0, ghost@gh0'
hot ADD net2
[ "$MC_RC" -eq 0 ] || echo "$MC_OUT"
assert_eq "$MC_RC" 0 "hot-plug ADD of net2 after the annotation gained kvnet2"
assert_eq "$(jq -c '[.interfaces[] | select(.sandbox) | .name]' <<<"$MC_OUT")" '["net2"]' "the result is net2's delegate's"
assert_eq "$(links)" "eth0 net1 net2 " "net2 is in the sandbox"
assert_true "net2 has its address from kvnet2 (10.66.0.0/24): $(ip4 net2)" grep -q '^10\.66\.0\.' <<<"$(ip4 net2)"
assert_eq "$(jq -r '.ips[0].address' <<<"$MC_OUT")" "$(ip4 net2)" "the result's address is net2's"
assert_eq "$(ip4 net1)/$(ip -n "$SBX" -j link show net1 | jq -r '.[0].address')" "$NET1/$NET1_MAC" "net1 untouched"
assert_eq "$(ip -n "$SBX" -4 route show default)" "default via 10.88.0.1 dev eth0 " "the default route is still eth0's"
assert_eq "$(kvctl -o json endpoints | jq length)" 2 "netd serves eth0 and net2"
assert_eq "$(status_ifs)" "kvtest=eth0,default/macnet=net1,default/kvnet2=net2" "network-status lists both networks"
assert_eq "$(status | jq -c '.[0:2]')" "$(jq -c . <<<"$ST0")" "... the entries that were there kept as they were"
assert_eq "$(status | jq -r '.[2].ips[0]')" "$(ip4 net2 | cut -d/ -f1)" "... net2's address in its entry"
assert_eq "$(cached_ifs)" "eth0,net1,net2" "net2 is cached after the others"
hp_event() { k get events --field-selector involvedObject.name=hp,reason=AddedInterface -o json |
	jq -e --arg m "Add net2 [$(ip4 net2)] from default/kvnet2" '[.items[] | select(.message == $m)] | length == 1'; }
assert_true "an AddedInterface event for the hot-plugged net2, as Multus's delegate ADD posts it" wait_until 10 hp_event

hot ADD net2
assert_eq "$MC_RC" 1 "hot-plug ADD of an interface attached already fails"
assert_eq "$(jq -r .code <<<"$MC_OUT")" 102 "... with code 102 (exists)"
assert_eq "$(msg)" "interface net2 is already attached (network default/kvnet2)" "... naming the interface and its network"
assert_eq "$(links)" "eth0 net1 net2 " "... and changes nothing"

# ---------------------------------------------------------------- the variable does not reach the delegates
hot ADD dump0
[ "$MC_RC" -eq 0 ] || echo "$MC_OUT"
assert_eq "$MC_RC" 0 "hot-plug ADD of dump0 (macvlan chained with envdump)"
assert_true "the chained plugin ran for dump0" grep -q '^CNI_IFNAME=dump0$' "$KV_TMP/env.ADD"
assert_false "KVNET_MULTUS_INTERFACE is not in a delegate's environment" grep -q KVNET_MULTUS_INTERFACE "$KV_TMP/env.ADD"
assert_eq "$(status_ifs)" "kvtest=eth0,default/macnet=net1,default/kvnet2=net2,default/dumpnet=dump0" \
	"network-status: dump0's entry after net2's"

# ---------------------------------------------------------------- a delegate that fails is rolled back
hot ADD gh0
assert_eq "$(jq -r .code <<<"$MC_OUT")" 7 "hot-plug ADD of a network whose plugin is missing fails"
assert_true "... naming the network ($(msg))" grep -q "network 'default/ghost' (gh0)" <<<"$(msg)"
assert_eq "$(cached_ifs)" "eth0,net1,net2,dump0" "... and takes it out of the cache"
assert_eq "$(links)" "dump0 eth0 net1 net2 " "... the other interfaces untouched"
assert_eq "$(status_ifs)" "kvtest=eth0,default/macnet=net1,default/kvnet2=net2,default/dumpnet=dump0" \
	"... and network-status unchanged"

# ---------------------------------------------------------------- bad values of the variable: code 4 naming it
bad_iface() { # VALUE CMD WHAT PATTERN
	hot "$2" "$1"
	assert_eq "$(jq -r .code <<<"$MC_OUT")" 4 "$3: code 4"
	assert_true "$3: the message names the variable ($(msg))" grep -q -- "$4" <<<"$(msg)"
}
bad_iface "" ADD "an empty interface name" "KVNET_MULTUS_INTERFACE='' is not an interface name"
bad_iface "a/b" ADD "a '/'" "KVNET_MULTUS_INTERFACE='a/b' is not an interface name"
bad_iface "has space" DEL "whitespace" "KVNET_MULTUS_INTERFACE='has space' is not an interface name"
bad_iface "net:1" ADD "a ':'" "KVNET_MULTUS_INTERFACE='net:1' is not an interface name"
bad_iface "sixteencharslong" ADD "16 characters" "KVNET_MULTUS_INTERFACE='sixteencharslong' is not an interface name"
bad_iface eth0 DEL "the cluster network's interface" "KVNET_MULTUS_INTERFACE='eth0' is CNI_IFNAME"
bad_iface net2 CHECK "CHECK" "KVNET_MULTUS_INTERFACE='net2': only ADD and DEL take it, not CHECK"
assert_eq "$(links)" "dump0 eth0 net1 net2 " "bad values change nothing"
assert_eq "$(cached_ifs)" "eth0,net1,net2,dump0" "... nor the cache"

# ---------------------------------------------------------------- hot-unplug
hot DEL net2
[ "$MC_RC" -eq 0 ] || echo "$MC_OUT"
assert_eq "$MC_RC" 0 "hot-plug DEL of net2"
for _ in $(seq 1 30); do # netd deletes its links just after answering DEL
	link_exists "$SBX" net2 || break
	sleep 0.1
done
assert_no_link "$SBX" net2
assert_eq "$(ip4 net1)/$(ip -n "$SBX" -j link show net1 | jq -r '.[0].address')" "$NET1/$NET1_MAC" "net1 untouched"
assert_eq "$(kvctl -o json endpoints | jq length)" 1 "netd serves eth0 alone"
assert_eq "$(status_ifs)" "kvtest=eth0,default/macnet=net1,default/dumpnet=dump0" "network-status without net2"
assert_eq "$(status | jq -c '.[0:2]')" "$(jq -c . <<<"$ST0")" "... the others as they were"
assert_eq "$(cached_ifs)" "eth0,net1,dump0" "net2 is out of the cache"
hot DEL net2
assert_eq "$MC_RC" 0 "hot-plug DEL of net2 again succeeds"
assert_true "logFile names the hot-plugged interface" \
	grep -q '\[verbose\] kvnet-multus DEL container cid-hp pod default/hp: KVNET_MULTUS_INTERFACE net2: ok' "$KV_TMP/multus.log"

# the network gone from the annotation and its NAD deleted: DEL works from the cache
annotate 'macnet, kvnet2'
k delete network-attachment-definitions dumpnet >/dev/null
rm -f "$KV_TMP/env.DEL"
hot DEL dump0
[ "$MC_RC" -eq 0 ] || echo "$MC_OUT"
assert_eq "$MC_RC" 0 "hot-plug DEL of dump0 with its NAD deleted (from the cache)"
assert_no_link "$SBX" dump0
assert_true "... the chained plugin's DEL ran" grep -q '^CNI_IFNAME=dump0$' "$KV_TMP/env.DEL"
assert_false "... KVNET_MULTUS_INTERFACE is not in the delegate's DEL environment" grep -q KVNET_MULTUS_INTERFACE "$KV_TMP/env.DEL"
assert_eq "$(status_ifs)" "kvtest=eth0,default/macnet=net1" "network-status as the pod was added"

# attached again after its DEL, then the pod's full DEL
hot ADD net2
assert_eq "$MC_RC" 0 "net2 hot-plugged again after its DEL"
assert_link "$SBX" net2
mc DEL "$KV_TMP/multus.conf" default hp
assert_eq "$MC_RC" 0 "the pod's full DEL"
for _ in $(seq 1 30); do
	[ -z "$(links)" ] && break
	sleep 0.1
done
assert_eq "$(links)" "" "no interface left, the hot-plugged one included"
assert_eq "$(kvctl -o json endpoints | jq length)" 0 "no netd endpoint left"
assert_eq "$(find "$CNI_DIR" -type f | wc -l)" 0 "no cache file left (kvnet-multus's nor node/'s)"
assert_eq "$(find "$HL" -name '10.*' 2>/dev/null | wc -l)" 0 "host-local released every address"
assert_eq "$(status_ifs)" "" "network-status removed"
hot DEL net2
assert_eq "$MC_RC" 0 "hot-plug DEL after the pod's DEL succeeds"

stop_netd
finish
