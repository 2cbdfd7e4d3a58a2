#!/usr/bin/env bash
# kvnet demo (the project's main job until VMs boot on it, see docs/STATUS.md):
# a node namespace running kvnet-netd, two containers and one VM tap attached through the kvnet
# CNI plugin in a conflist with the reference `tuning` plugin, an "external" namespace behind the
# node. Shows container-to-container traffic, masquerade to the outside, a port forward from
# outside, the VM's sticky address, then tears everything down. Never touches the host network.
set -euo pipefail
export KVNET_BUILD=${KVNET_BUILD:-build}
source "$(dirname "$0")/../tests/integration/lib.sh"
KV_TEST_NAME=demo-cni
KV_CONF_DIR=$KV_ROOT/scripts/demo

ms() { date +%s%3N; }

kv_init
require_kvnet
require_cnichain
require_ref_plugins
require_cmd socat

setup_node
setup_ext
start_netd "$NODE_NS"
mkns C1 ctr1
mkns C2 ctr2
mkns V1 vm1
mkns V2 vm1-target
conf=$(render_conf vmnet.conflist 1.0.0)

echo "== attaching two containers and a VM through: kvnet -> tuning"
t0=$(ms)
r1=$(cni add "$conf" demo-c1 "$C1" eth0 --cap portMappings='[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]')
t1=$(ms)
r2=$(cni add "$conf" demo-c2 "$C2" eth0)
t2=$(ms)
rv=$(cni add "$conf" demo-v1 "$V1" tap0 --args 'IgnoreUnknown=1;KVNET_VM_NAME=vm1;KVNET_VM_INTERFACE=default')
t3=$(ms)
ip1=$(jq -r '.ips[] | select(.address | contains(".")) | .address | split("/")[0]' <<<"$r1")
ip2=$(jq -r '.ips[] | select(.address | contains(".")) | .address | split("/")[0]' <<<"$r2")
ip1v6=$(jq -r '.ips[] | select(.address | contains(":")) | .address | split("/")[0]' <<<"$r1")
ipv=$(jq -r '.ips[] | select(.address | contains(".")) | .address' <<<"$rv")
macv=$(jq -r '.interfaces[] | select(.name == "tap0") | .mac' <<<"$rv")
echo "ATTACH=demo-c1 KIND=container IP=$ip1 IP6=$ip1v6 BINDING=bridge ADD_MS=$((t1 - t0))"
echo "ATTACH=demo-c2 KIND=container IP=$ip2 BINDING=bridge ADD_MS=$((t2 - t1))"
echo "ATTACH=demo-v1 KIND=vm VM=default/vm1 IP=$ipv MAC=$macv TAP=tap0 ADD_MS=$((t3 - t2))"

echo "== container to container"
assert_ping "$C1" "$ip2"
ip netns exec "$C1" ping -6 -c1 -W2 "$(jq -r '.ips[] | select(.address | contains(":")) | .address | split("/")[0]' <<<"$r2")" >/dev/null &&
	pass "IPv6 ping ctr1 -> ctr2" || fail "IPv6 ping ctr1 -> ctr2"

echo "== egress through masquerade (ext sees the node's address)"
ip netns exec "$EXT_NS" timeout 10 socat TCP-LISTEN:9000,reuseaddr SYSTEM:'echo $SOCAT_PEERADDR' &
srv=$!
sleep 0.3
seen=$(ip netns exec "$C1" timeout 5 socat -T2 - TCP:192.0.2.2:9000 </dev/null || true)
wait "$srv" || true
assert_eq "$seen" "$EXT_NODE_ADDR" "ctr1 reaches ext 192.0.2.2; ext sees the node address (masquerade)"
echo "EGRESS=ok MASQUERADE_SOURCE=$seen"

echo "== port forward: ext -> 192.0.2.1:8080 -> ctr1:80"
ip netns exec "$C1" timeout 10 socat TCP-LISTEN:80,reuseaddr SYSTEM:'echo from-ctr1' &
srv=$!
sleep 0.3
got=$(ip netns exec "$EXT_NS" timeout 5 socat -T2 - TCP:$EXT_NODE_ADDR:8080 </dev/null || true)
wait "$srv" || true
assert_eq "$got" "from-ctr1" "port forward 8080 -> $ip1:80"
echo "PORT_FORWARD=ok HOST_PORT=8080 TARGET=$ip1:80"

echo "== the VM's tap, and its sticky claim in a second sandbox (a migration target)"
link_exists "$V1" tap0 && pass "tap0 exists in the VM sandbox" || fail "tap0 missing"
cni del "$conf" demo-v1 "$V1" tap0 --args 'IgnoreUnknown=1;KVNET_VM_NAME=vm1;KVNET_VM_INTERFACE=default'
rv2=$(cni add "$conf" demo-v2 "$V2" tap0 --args 'IgnoreUnknown=1;KVNET_VM_NAME=vm1;KVNET_VM_INTERFACE=default')
assert_eq "$(jq -r '.ips[] | select(.address | contains(".")) | .address' <<<"$rv2")" "$ipv" "VM keeps its IP in a new sandbox"
assert_eq "$(jq -r '.interfaces[] | select(.name == "tap0") | .mac' <<<"$rv2")" "$macv" "VM keeps its MAC in a new sandbox"
echo "VM=vm1 IP=$ipv MAC=$macv STICKY=ok"

echo "== node view (kvnetctl)"
kvctl endpoints
echo
kvctl nat

echo "== tear down"
cni check "$conf" demo-c1 "$C1" eth0 && pass "CHECK demo-c1" || fail "CHECK demo-c1"
cni del "$conf" demo-c1 "$C1" eth0
cni del "$conf" demo-c2 "$C2" eth0
cni del "$conf" demo-v2 "$V2" tap0 --args 'IgnoreUnknown=1;KVNET_VM_NAME=vm1;KVNET_VM_INTERFACE=default'
kvctl ipam-release demo-vmnet vm/default/vm1/default >/dev/null
assert_eq "$(kvctl -o json endpoints | jq length)" "0" "no attachments left"
assert_eq "$(kvctl -o json ipam | jq '.claims | length')" "0" "no claims left"
assert_eq "$(ip netns exec "$NODE_NS" nft -j list set inet kvnet masq4 | jq '[.nftables[].set.elem // empty] | length')" "0" "no masquerade entries left"
finish
