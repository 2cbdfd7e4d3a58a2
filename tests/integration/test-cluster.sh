#!/usr/bin/env bash
# Two simulated nodes (scripts/cluster.sh): one container per node through the kvnet plugin, each
# node's netd with its own disjoint IPAM range of 10.88.0.0/24 (node1 .10-.99, node2 .100-.199).
# Asserts: both netds answer; the containers ping each other across the VXLAN as one L2 segment
# (each has the other's real MAC in its ARP table, the FDBs point at the VXLAN and the peer VTEP);
# full 1500-byte frames cross; the anycast gateway 10.88.0.1 answers with the same MAC on both
# nodes and its ARP never crosses the VXLAN; the client reaches node1's container through its
# route via node1, node2's container only through a /32 via node2 (the route follows the VM; see
# docs/multinode.md); `up` again reuses the cluster; `down` leaves no namespace, no process and
# no directory behind.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
require_cmd bridge
# proc_gone PID: the process has exited (an orphan whose reaper has not collected it yet, a
# zombie, counts as exited); waits up to 3 s.
proc_gone() {
	local pid=$1
	for _ in $(seq 1 30); do
		if [ ! -e "/proc/$pid" ] || grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

cluster_up kvt-c
pass "cluster.sh up 2"
assert_eq "$N" 2 "cluster.env: N=2"
assert_eq "$(grep -c "^$CL_NAME-" <<<"$(ip netns list | awk '{print $1}')")" 4 "4 namespaces (sw, client, node1, node2)"

# ---------------------------------------------------------------- netd on both nodes
for i in 1 2; do
	sock_var=NODE${i}_SOCK
	assert_true "kvnetctl status answers on node$i" "$KV_BIN/kvnetctl" --socket "${!sock_var}" status
done
assert_eq "$("$KV_BIN/kvnetctl" --socket "$NODE1_SOCK" -o json status | jq -r '.socket // empty')" \
	"$NODE1_SOCK" "node1's netd serves node1's socket"

# ---------------------------------------------------------------- underlay and topology
assert_ping "$CLIENT_NS" "$NODE1_UNDERLAY" "client -> node1 on the underlay"
assert_ping "$NODE1_NS" "$NODE2_UNDERLAY" "node1 -> node2 on the underlay"
mac1=$(ip -n "$NODE1_NS" -j link show dev kvbr0 | jq -r '.[0].address')
mac2=$(ip -n "$NODE2_NS" -j link show dev kvbr0 | jq -r '.[0].address')
assert_eq "$mac1" "$GATEWAY_MAC" "node1 kvbr0 carries the shared gateway MAC"
assert_eq "$mac2" "$GATEWAY_MAC" "node2 kvbr0 carries the shared gateway MAC"
assert_eq "$(ip -n "$NODE1_NS" -j -d link show dev vxlan0 | jq -r '.[0].linkinfo.info_data.id')" 100 "node1 vxlan0 VNI 100"
assert_eq "$(ip -n "$NODE2_NS" -j link show dev vxlan0 | jq -r '.[0].master')" kvbr0 "node2 vxlan0 enslaved to kvbr0"
assert_true "node1 floods to node2 (head-end replication entry)" \
	grep -q "00:00:00:00:00:00 dst $NODE2_UNDERLAY" <<<"$(ip netns exec "$NODE1_NS" bridge fdb show dev vxlan0)"

# ---------------------------------------------------------------- one container per node
mkconf() {
	local out=$1 sock=$2 start=$3 end=$4
	cat >"$out" <<EOF
{
  "cniVersion": "1.1.0",
  "name": "kvcluster",
  "plugins": [
    {
      "type": "kvnet",
      "binding": "bridge",
      "bridge": "kvbr0",
      "mtu": 1500,
      "ipMasq": true,
      "nat": { "backend": "nftables" },
      "ipam": {
        "ranges": [ [ { "subnet": "10.88.0.0/24", "gateway": "10.88.0.1",
                        "rangeStart": "$start", "rangeEnd": "$end" } ] ],
        "routes": [ { "dst": "0.0.0.0/0" } ]
      },
      "socket": "$sock"
    }
  ]
}
EOF
	jq -e . "$out" >/dev/null || die "$out is not valid JSON"
}
conf1=$KV_TMP/node1.conflist
conf2=$KV_TMP/node2.conflist
mkconf "$conf1" "$NODE1_SOCK" 10.88.0.10 10.88.0.99
mkconf "$conf2" "$NODE2_SOCK" 10.88.0.100 10.88.0.199
mkns SBX1 sbx1
mkns SBX2 sbx2

res1=$(NODE_NS=$NODE1_NS cni add "$conf1" cid-1 "$SBX1" eth0)
res2=$(NODE_NS=$NODE2_NS cni add "$conf2" cid-2 "$SBX2" eth0)
ip1=$(result_ip4 <<<"$res1")
ip2=$(result_ip4 <<<"$res2")
log "node1 container $ip1, node2 container $ip2"
assert_true "node1's container got an address in .10-.99 ($ip1)" \
	bash -c "[[ '$ip1' =~ ^10\.88\.0\.([0-9]+)$ ]] && [ \${BASH_REMATCH[1]} -ge 10 ] && [ \${BASH_REMATCH[1]} -le 99 ]"
assert_true "node2's container got an address in .100-.199 ($ip2)" \
	bash -c "[[ '$ip2' =~ ^10\.88\.0\.([0-9]+)$ ]] && [ \${BASH_REMATCH[1]} -ge 100 ] && [ \${BASH_REMATCH[1]} -le 199 ]"
cmac1=$(ip -n "$SBX1" -j link show dev eth0 | jq -r '.[0].address')
cmac2=$(ip -n "$SBX2" -j link show dev eth0 | jq -r '.[0].address')
assert_eq "$(ip -n "$NODE1_NS" -j link show dev kvbr0 | jq -r '.[0].address')" "$GATEWAY_MAC" \
	"netd adopted node1's kvbr0 and kept its MAC"
assert_eq "$(ip -n "$NODE2_NS" -j -4 addr show dev kvbr0 | jq -r '[.[0].addr_info[].local] | join(",")')" \
	"$VM_GATEWAY" "node2 kvbr0 holds the gateway address once"

# ---------------------------------------------------------------- one L2 segment across nodes
assert_ping "$SBX1" "$ip2" "container node1 -> container node2 across the VXLAN"
assert_ping "$SBX2" "$ip1" "container node2 -> container node1 across the VXLAN"
neigh_mac() { ip -n "$1" -j neigh show "$2" dev eth0 | jq -r '.[0].lladdr // empty'; }
assert_eq "$(neigh_mac "$SBX1" "$ip2")" "$cmac2" "node1 container's ARP entry for $ip2 is the peer's own MAC (same L2)"
assert_eq "$(neigh_mac "$SBX2" "$ip1")" "$cmac1" "node2 container's ARP entry for $ip1 is the peer's own MAC (same L2)"
assert_true "node1's bridge learned the node2 container's MAC on vxlan0" \
	grep -qi "^$cmac2 dev vxlan0 master kvbr0" <<<"$(ip netns exec "$NODE1_NS" bridge fdb show br kvbr0)"
assert_true "node1's VXLAN learned the node2 container's MAC behind $NODE2_UNDERLAY" \
	grep -qi "^$cmac2 dst $NODE2_UNDERLAY" <<<"$(ip netns exec "$NODE1_NS" bridge fdb show dev vxlan0)"
if ip netns exec "$SBX1" ping -q -c 2 -i 0.2 -W 2 -M "do" -s 1472 "$ip2" >/dev/null 2>&1; then
	pass "1500-byte frames cross the VXLAN unfragmented (underlay MTU 1550)"
else
	fail "1500-byte frames cross the VXLAN unfragmented (underlay MTU 1550)"
fi

# ---------------------------------------------------------------- anycast gateway
assert_ping "$SBX1" "$VM_GATEWAY" "node1 container -> gateway"
assert_ping "$SBX2" "$VM_GATEWAY" "node2 container -> gateway"
assert_eq "$(neigh_mac "$SBX1" "$VM_GATEWAY")" "$GATEWAY_MAC" "node1 container resolves the gateway to the shared MAC"
assert_eq "$(neigh_mac "$SBX2" "$VM_GATEWAY")" "$GATEWAY_MAC" "node2 container resolves the gateway to the shared MAC"
# node2 dropped its container's ARP request for the gateway at the VXLAN (the counter moved) ...
nft_drops() { ip netns exec "$1" nft -j list chain bridge kvnet-cluster "$2" |
	jq '[.nftables[] | select(.rule) | .rule.expr | select(any(.[]; .counter) and (tostring | contains("arp"))) |
	     .[] | select(.counter) | .counter.packets] | add // 0'; }
assert_true "node2 kept its container's ARP for the gateway off the VXLAN" test "$(nft_drops "$NODE2_NS" forward)" -gt 0
# ... so node1 never answered for node2's container and has no neighbour entry for it.
assert_eq "$(ip -n "$NODE1_NS" -j neigh show "$ip2" dev kvbr0 | jq -r '.[0].lladdr // empty')" "" \
	"node1 has no neighbour entry for node2's container (gateway traffic stays on its node)"

# ---------------------------------------------------------------- client
assert_ping "$CLIENT_NS" "$ip1" "client -> node1 container (route 10.88.0.0/24 via node1)"
# The anycast gateway delivers routed traffic only on the node where the VM runs: via node1 the
# node2 container is unreachable, a /32 via node2 reaches it (what a migration will move).
assert_no_ping "$CLIENT_NS" "$ip2" "client -> node2 container via node1 fails (documented: route must follow the VM)"
ip -n "$CLIENT_NS" route add "$ip2/32" via "$NODE2_UNDERLAY"
assert_ping "$CLIENT_NS" "$ip2" "client -> node2 container with a /32 via node2"
assert_ping "$SBX2" "$CLIENT_UNDERLAY" "node2 container -> client (egress through node2)"

# ---------------------------------------------------------------- idempotent up
pids_before="$NODE1_NETD_PID $NODE2_NETD_PID"
"$CLUSTER" up 2 --name "$CL_NAME" --dir "$CL_DIR" >"$KV_TMP/up2.out" 2>&1 || fail "second cluster.sh up 2"
assert_eq "$(sed -n 's/^NODE1_NETD_PID=//p;s/^NODE2_NETD_PID=//p' "$KV_TMP/up2.out" | tr '\n' ' ' | sed 's/ $//')" \
	"$pids_before" "a second 'up' reuses the running cluster"
assert_ping "$SBX1" "$ip2" "cross-node ping still works after the second up"
assert_eq "$("$CLUSTER" env --name "$CL_NAME" --dir "$CL_DIR" | sed -n 's/^CLIENT_NS=//p')" "$CLIENT_NS" "cluster.sh env prints the env"

# ---------------------------------------------------------------- DEL, then down
NODE_NS=$NODE1_NS cni del "$conf1" cid-1 "$SBX1" eth0
NODE_NS=$NODE2_NS cni del "$conf2" cid-2 "$SBX2" eth0
assert_eq "$("$KV_BIN/kvnetctl" --socket "$NODE1_SOCK" -o json endpoints | jq length)" 0 "node1: no endpoints after DEL"
assert_eq "$("$KV_BIN/kvnetctl" --socket "$NODE2_SOCK" -o json ipam | jq '.claims | length')" 0 "node2: no claims after DEL"

# netd must exit cleanly on SIGTERM: keep the logs, stop them, look for sanitizer reports.
for i in 1 2; do
	pid_var=NODE${i}_NETD_PID
	log_var=NODE${i}_LOG
	pid=${!pid_var}
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	assert_true "node$i netd exited on SIGTERM" proc_gone "$pid"
	cp "${!log_var}" "$KV_TMP/netd$i.log"
	if grep -Eq 'Sanitizer|runtime error:' "$KV_TMP/netd$i.log"; then
		fail "node$i netd log free of sanitizer reports"
		grep -E -A20 'Sanitizer|runtime error:' "$KV_TMP/netd$i.log" | head -40
	else
		pass "node$i netd log free of sanitizer reports"
	fi
done

assert_true "cluster.sh down" "$CLUSTER" down --name "$CL_NAME" --dir "$CL_DIR"
assert_eq "$(ip netns list | awk '{print $1}' | grep -c "^$CL_NAME-" || true)" 0 "no namespace of the cluster left"
assert_true "node1 netd gone" proc_gone "$NODE1_NETD_PID"
assert_true "node2 netd gone" proc_gone "$NODE2_NETD_PID"
assert_eq "$(pgrep -f -- "$CL_DIR" | wc -l)" 0 "no process of the cluster left"
assert_false "cluster dir removed" test -e "$CL_DIR"
assert_true "down again succeeds" "$CLUSTER" down --name "$CL_NAME" --dir "$CL_DIR"

# ---------------------------------------------------------------- --libvirt (when installed)
# A private libvirtd per node (scripts/libvirt-node.sh), reachable from the other node over the
# underlay for peer-to-peer migration. KVNET_TEST_LIBVIRT=0 leaves this part out.
if [ "${KVNET_TEST_LIBVIRT:-1}" = 0 ] || [ ! -x /usr/sbin/libvirtd ] || ! command -v virsh >/dev/null 2>&1; then
	log "libvirt part skipped (libvirtd/virsh not installed or KVNET_TEST_LIBVIRT=0)"
	finish
fi
CL_NAME=kvt-cl-$(rand_suffix)
CL_DIR=$KV_TMP/cluster-lv
if ! "$CLUSTER" up 2 --name "$CL_NAME" --dir "$CL_DIR" --libvirt >"$KV_TMP/uplv.out" 2>&1; then
	cat "$KV_TMP/uplv.out"
	die "cluster.sh up 2 --libvirt failed"
fi
pass "cluster.sh up 2 --libvirt"
# shellcheck disable=SC1091
source "$CL_DIR/cluster.env"
assert_eq "$LIBVIRT" 1 "cluster.env: LIBVIRT=1"
lv_pids=$(for i in 1 2; do d=NODE${i}_LIBVIRT_DIR; cat "${!d}/libvirtd.pid"; echo; done)
assert_eq "$(ip netns exec "$NODE1_NS" timeout 20 virsh -c "$NODE2_LIBVIRT_TCP_URI" hostname 2>/dev/null | head -n 1)" \
	"$(hostname)" "node1 reaches node2's libvirtd over the underlay ($NODE2_LIBVIRT_TCP_URI)"
assert_true "node1's libvirtd answers on its unix socket" \
	ip netns exec "$NODE1_NS" timeout 20 virsh -c "$NODE1_LIBVIRT_URI" version
uuid1=$(grep -h host_uuid "$NODE1_LIBVIRT_DIR/etc/libvirt/libvirtd.conf" || true)
uuid2=$(grep -h host_uuid "$NODE2_LIBVIRT_DIR/etc/libvirt/libvirtd.conf" || true)
assert_ne "$uuid1" "$uuid2" "the nodes' libvirtds have different host_uuids"
assert_true "cluster.sh down (with libvirt)" "$CLUSTER" down --name "$CL_NAME" --dir "$CL_DIR"
for p in $lv_pids; do
	assert_true "libvirtd $p stopped" proc_gone "$p"
done
assert_eq "$(ip netns list | awk '{print $1}' | grep -c "^$CL_NAME-" || true)" 0 "no namespace of the libvirt cluster left"
assert_false "libvirt cluster dir removed" test -e "$CL_DIR"

finish
