#!/usr/bin/env bash
# Cluster-wide claims and the migration handoff of netd, without guests (scripts/cluster.sh, 2 nodes,
# one shared claim store, the same IPAM range on both nodes).
# Asserts: containers on two nodes never get the same address although both nodes allocate from one
# range; a VM's second pod on node2 gets the VM's IP and MAC and becomes a *passive migration target*
# (claim store: holder node1, target node2; masquerade: its bridge port listening); no third node
# could take it, no other VM gets the address; `migration-activate` on node2 makes node2 the holder,
# sends gratuitous ARP (node1's bridge learns the MAC behind the VXLAN) and moves the client's /32 (routeHook); the source's
# `migration-source completed` takes node1's copy down and its DEL frees node1's local claim only;
# node1 redirects the VM's /32 to node2 for the grace period and then drops the route; a target
# removed before activation rolls back (holder unchanged, nothing left on node2). Early switchover:
# the prepared target arms the migration redirect (claim store targetReady, tc program on node2's
# underlay), `migration-source switchover` makes node1 route the VM to node2 at the pause, the
# client's pings then reach the paused target's tap (bridge: dst MAC the VM's, TTL 62), activation
# disarms it; a netd killed with an armed target is replaced cleanly; an abort after the switchover
# gives node1 its packets back; kvnetctl trace shows the client's packet redirected on node1 and held in the
# target on node2. Bad requests get clear errors; kvnetctl migrations / cluster-claims show both sides.
# KVNET_CLAIMS_BACKEND=kube (test-cluster-claims-kube-handoff.sh): the same with the claim store on the real
# kube-apiserver + etcd (NetworkClaim objects), listening on the client namespace's underlay address.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
require_cnichain
require_cmd bridge jq socat tc tcpdump
cluster_up kvt-cc KVNET_REDIRECT_GRACE_MS=3000 KVNET_NETD_CONFIG_EXTRA='{"metricsListen": "127.0.0.1:9641"}'
if [ "${KVNET_CLAIMS_BACKEND:-dir}" = kube ]; then # test-cluster-claims-kube-handoff.sh
	source "$(dirname "$0")/lib-kapi.sh"
	require_cmd openssl kubectl
	require_peer ETCD etcd
	require_peer APISERVER kube-apiserver
	export KAPI_NETNS=$CLIENT_NS KAPI_ADDR=$CLIENT_UNDERLAY
	claims_apiserver_up
	claims_netds_kube
fi
# mval I NAME LABELS-JSON: a sample of node I's netd metrics page (docs/metrics.md), through the reference parser
mval() {
	local v=NODE${1}_NS
	ip netns exec "${!v}" curl -sS -m 5 http://127.0.0.1:9641/metrics | /usr/bin/python3 "$KV_ROOT/tests/tools/prom.py" value "$2" "$3"
}
PROM=0
/usr/bin/python3 -c 'import prometheus_client.parser' 2>/dev/null && PROM=1
ctl() {
	local i=$1
	shift
	local v=NODE${i}_SOCK
	"$KV_BIN/kvnetctl" --socket "${!v}" "$@"
}
if [ "${KVNET_CLAIMS_BACKEND:-dir}" = kube ]; then
	assert_eq "$(ctl 1 -o json cluster-claims | jq -r .backend)/$(ctl 2 -o json cluster-claims | jq -r .backend)" kube/kube \
		"both netds keep their claims in the API server"
fi

cluster_claims_conflists
# srcmsg VM PHASE [EXTRA-ARGS-JSON]: the source launcher's migration-source call to node1's netd
srcmsg() {
	echo "{\"op\":\"migration-source\",\"args\":{\"vmNamespace\":\"default\",\"vmName\":\"$1\",\"phase\":\"$2\"${3:-}}}" |
		socat -t 5 - "UNIX-CONNECT:$NODE1_SOCK"
}
vmargs() { echo "IgnoreUnknown=1;KVNET_VM_NAMESPACE=default;KVNET_VM_NAME=$1;KVNET_VM_INTERFACE=default;KVNET_VM_BINDING=$2"; }

# ---------------------------------------------------------------- containers: one range, two nodes
declare -A seen=()
dup=0
for k in 1 2 3; do
	for i in 1 2; do
		mkns S "c$i$k"
		ip=$(on "$i" add "cid-$i-$k" "$S" eth0 | result_ip4)
		[ -n "${seen[$ip]:-}" ] && dup=1
		seen[$ip]=node$i
	done
done
assert_eq "$dup" 0 "6 containers on 2 nodes from one range: 6 distinct addresses (${!seen[*]})"
assert_eq "$(ctl 1 -o json cluster-claims | jq '.claims | length')" 6 "the claim store lists 6 claims"
assert_eq "$(ctl 2 -o json cluster-claims | jq -r '[.claims[].holder] | sort | unique | join(",")')" "node1,node2" \
	"both nodes hold claims in the shared store"

# ---------------------------------------------------------------- a requested MAC is one attachment's, across nodes
for i in 1 2; do
	jq '.plugins[0].capabilities = {mac: true}' "$KV_TMP/n$i.conflist" >"$KV_TMP/n$i-mac.conflist"
done
onmac() { # NODE CMD CID SANDBOX: with the `mac` capability asking for 02:aa:00:00:00:01
	local ns=NODE${1}_NS
	NODE_NS=${!ns} cni "$2" "$KV_TMP/n$1-mac.conflist" "$3" "$4" eth0 --cap 'mac="02:aa:00:00:00:01"'
}
mkns MA mac-a
mkns MB mac-b
assert_true "node1: a container asks for MAC 02:aa:00:00:00:01" onmac 1 add mac-a "$MA"
out=$(onmac 2 add mac-b "$MB" 2>&1 || true)
assert_true "node2: another container asking for it is refused, naming the holder and node ($out)" \
	grep -q "\"code\":101,.*MAC 02:aa:00:00:00:01 in network 'kvcluster' is held by 'ctr/mac-a/eth0' on node 'node1'" <<<"$out"
assert_eq "$(ip -n "$MB" -o link show | grep -vc ' lo:' || true)" 0 "... and nothing is left in its sandbox"
assert_true "node1 deletes the first container" onmac 1 del mac-a "$MA"
assert_true "node2: the MAC is free again" onmac 2 add mac-b "$MB"
assert_eq "$(ip -n "$MB" -j link show eth0 | jq -r '.[0].address')" 02:aa:00:00:00:01 "... its eth0 has it"
assert_true "node2 deletes it" onmac 2 del mac-b "$MB"

# ---------------------------------------------------------------- a VM on node1, its target pod on node2
for b in bridge masquerade; do
	vm=web-$b
	mkns SRC "src-$b"
	mkns DST "dst-$b"
	res1=$(on 1 add "pod-$vm-1" "$SRC" tap0 --args "$(vmargs "$vm" "$b")")
	ip1=$(result_ip4 <<<"$res1")
	mac1=$(jq -r '.interfaces[] | select(.name=="tap0") | .mac' <<<"$res1")
	assert_eq "$(ip -n "$CLIENT_NS" -j route show "$ip1/32" | jq -r '.[0].gateway // empty')" "$NODE1_UNDERLAY" \
		"$b: routeHook announced $ip1/32 via node1 on the client"

	res2=$(on 2 add "pod-$vm-2" "$DST" tap0 --args "$(vmargs "$vm" "$b")")
	assert_eq "$(result_ip4 <<<"$res2")" "$ip1" "$b: the target pod on node2 gets the VM's IP"
	assert_eq "$(jq -r '.interfaces[] | select(.name=="tap0") | .mac' <<<"$res2")" "$mac1" "$b: and its MAC"
	rec=$(ctl 2 -o json cluster-claims | jq -c --arg k "vm/default/$vm/default" '.claims[] | select(.key==$k)')
	assert_eq "$(jq -r '.holder + ">" + .target' <<<"$rec")" "node1>node2" "$b: claim store: held by node1, node2 is the migration target"
	assert_eq "$(ctl 2 -o json migrations | jq -r --arg v "default/$vm" '.endpoints[] | select(.vm==$v) | .role + "/" + .state')" \
		"target/prepared" "$b: node2 shows the passive target"
	assert_eq "$(ctl 2 -o json ipam | jq -r --arg k "vm/default/$vm/default" '.claims[] | select(.key==$k) | .state')" \
		"migrating" "$b: node2's local claim is 'migrating'"
	if [ "$b" = masquerade ]; then
		host2=$(ctl 2 -o json endpoints | jq -r --arg v "$vm" '.[] | select(.vm.name==$v) | .hostIfname')
		assert_eq "$(ip netns exec "$NODE2_NS" bridge -j link show dev "$host2" | jq -r '.[0].state')" listening \
			"$b: passive target: the pod's bridge port is listening (link up, passes nothing)"
		assert_eq "$(ip -n "$DST" -j link show dev "$(ctl 2 -o json endpoints | jq -r --arg v "$vm" '.[] | select(.vm.name==$v) | .sandboxIfname')" |
			jq -r '.[0].address')" "$mac1" "$b: the pod interface carries the VM's MAC (same on both nodes)"
		sbx2=$(ctl 2 -o json endpoints | jq -r --arg v "$vm" '.[] | select(.vm.name==$v) | .sandboxIfname')
		assert_eq "$(ip -n "$DST" -6 -o addr show dev "$sbx2" | wc -l)" 0 \
			"$b: the IPv4-only pod interface has no IPv6 (it sends nothing that would move the VM's MAC)"
	fi
	assert_eq "$(ip -n "$CLIENT_NS" -j route show "$ip1/32" | jq -r '.[0].gateway // empty')" "$NODE1_UNDERLAY" \
		"$b: preparing the target does not move the route"

	# a third pod of the same VM cannot become a second target
	mkns D3 "d3-$b"
	code=$(NODE_NS=$NODE2_NS cni_fail_code add "$KV_TMP/n2.conflist" "pod-$vm-3" "$D3" tap0 --args "$(vmargs "$vm" "$b")")
	assert_eq "$code" "none" "$b: a second pod on the target node shares the target claim (same VM, same node)"
	on 2 del "pod-$vm-3" "$D3" tap0 --args "$(vmargs "$vm" "$b")"

	# frames the node sends towards the passive target's tap (a broadcast on the VM network reaches it
	# through the bridge) must not count as the guest's first frame
	# (a reader attached to the tap as QEMU is, so that it has carrier and the frames are sent)
	if [ "$b" = bridge ]; then
		ip netns exec "$DST" timeout 10 socat -u TUN,tun-type=tap,tun-name=tap0,iff-no-pi /dev/null &
		rpid=$!
		sleep 0.5
		tx0=$(ip -n "$DST" -j -s link show dev tap0 | jq '.[0].stats64.tx.packets')
		ip netns exec "$NODE2_NS" ping -b -c 2 -i 0.2 -W 1 "${VM_SUBNET%.*/*}.255" >/dev/null 2>&1 || true
		sleep 0.5
		tx1=$(ip -n "$DST" -j -s link show dev tap0 | jq '.[0].stats64.tx.packets')
		kill "$rpid" 2>/dev/null || true
		wait "$rpid" 2>/dev/null || true
		assert_true "$b: broadcasts from node2 reached the target's tap ($tx0 -> $tx1 frames towards the guest)" test "$tx1" -gt "$tx0"
		assert_eq "$(ctl 2 -o json migrations | jq -r --arg v "default/$vm" '.endpoints[] | select(.vm==$v) | .state')" \
			prepared "$b: frames towards the guest do not activate the target"
	fi

	# early switchover: node2 armed the migration redirect when it prepared the target; when the
	# source QEMU pauses (the source launcher says `migration-source switchover`) node1 routes the
	# VM's /32 to node2 at once, and node2's tc program forwards those packets into the paused
	# target, where they wait in the tap (a reader is attached as the paused QEMU would be).
	rec=$(ctl 2 -o json cluster-claims | jq -c --arg k "vm/default/$vm/default" '.claims[] | select(.key==$k)')
	assert_eq "$(jq -r '.targetReady' <<<"$rec")" true "$b: claim store: the target is ready for the early switchover"
	assert_eq "$(ctl 2 -o json migrations | jq -r --arg v "default/$vm" '.endpoints[] | select(.vm==$v) | .earlyRedirect')" \
		true "$b: node2 armed the migration redirect"
	assert_true "$b: the redirect program sits on node2's underlay interface (tc ingress)" \
		bash -c "tc -n $NODE2_NS filter show dev ul0 ingress | grep -q migredir_ingres"
	assert_eq "$(srcmsg "$vm" begin ',"target":"node2"' | jq -r '.ok')" true "$b: migration-source begin on node1"
	assert_eq "$(ip -n "$NODE1_NS" -j route show "$ip1/32" proto 118 | jq length)" 0 "$b: no redirect before the pause"
	src=$(srcmsg "$vm" switchover)
	assert_eq "$(jq -r '.result.redirected' <<<"$src")" 1 "$b: switchover on node1 redirects the VM's attachment early"
	assert_eq "$(ip -n "$NODE1_NS" -j route show "$ip1/32" proto 118 | jq -r '.[0].gateway // empty')" "$NODE2_UNDERLAY" \
		"$b: from the pause on node1 routes $ip1 to node2"
	# kvnetctl trace mid-migration: node1 sends the client's packets on to node2, node2 holds them in the target
	t=$(ctl 1 -o json trace "$CLIENT_UNDERLAY" "$ip1")
	assert_eq "$(jq -r '.verdict + " " + .hops[-1].hop' <<<"$t")" "redirected migration-redirect" \
		"$b: kvnetctl trace on node1: the client's packet for $ip1 is redirected"
	assert_true "$b: ... by the redirect route to node2 ($(jq -r '.hops[-1].by' <<<"$t"))" \
		grep -q "^route $ip1 via $NODE2_UNDERLAY dev ul0 table 254 proto 118" <<<"$(jq -r '.hops[-1].by' <<<"$t")"
	t=$(ctl 2 -o json trace "$CLIENT_UNDERLAY" "$ip1")
	assert_eq "$(jq -r '.verdict + " " + ([.hops[].hop] | join(","))' <<<"$t")" \
		"held source,migration-redirect,migration" \
		"$b: kvnetctl trace on node2: migredir takes it into the paused target, where it waits"
	assert_true "$b: ... naming the armed program ($(jq -r '.hops[1].by' <<<"$t"))" \
		grep -q "^migredir (tc ingress on the node's uplink): $ip1 is armed" <<<"$(jq -r '.hops[1].by' <<<"$t")"
	ip netns exec "$DST" timeout 10 socat -u TUN,tun-type=tap,tun-name=tap0,iff-no-pi /dev/null &
	rpid=$!
	ip netns exec "$DST" timeout 8 tcpdump -l -n -e -v -i tap0 -c 1 icmp >"$KV_TMP/early-$b.txt" 2>/dev/null &
	dpid=$!
	sleep 0.7
	tx0=$(ip -n "$DST" -j -s link show dev tap0 | jq '.[0].stats64.tx.packets')
	ip netns exec "$CLIENT_NS" ping -c 3 -i 0.2 -W 1 "$ip1" >/dev/null 2>&1 || true
	sleep 0.3
	tx1=$(ip -n "$DST" -j -s link show dev tap0 | jq '.[0].stats64.tx.packets')
	early=$(ctl 2 -o json migrations | jq -r --arg v "default/$vm" '.endpoints[] | select(.vm==$v) | .earlyPackets')
	kill "$rpid" 2>/dev/null || true
	wait "$rpid" 2>/dev/null || true
	assert_true "$b: node2 forwarded the client's 3 pings into the paused target ($early packets)" test "$early" -ge 3
	assert_true "$b: frames went out of the target's tap towards the guest ($tx0 -> $tx1)" test "$tx1" -gt "$tx0"
	if [ "$b" = bridge ]; then
		wait "$dpid" 2>/dev/null || true
		assert_true "$b: the guest would get the echo request with its MAC as destination and TTL 62 (two hops)" \
			bash -c "grep -qi '> $mac1' '$KV_TMP/early-$b.txt' && grep -q 'ttl 62' '$KV_TMP/early-$b.txt'"
	else
		kill "$dpid" 2>/dev/null || true
		wait "$dpid" 2>/dev/null || true
	fi
	assert_eq "$(ip -n "$CLIENT_NS" -j route show "$ip1/32" | jq -r '.[0].gateway // empty')" "$NODE1_UNDERLAY" \
		"$b: the switchover alone does not move the client's route (the VM has not resumed)"

	# switch. masquerade: the way it happens first with a real guest — QEMU resumes and the guest's
	# first frame crosses the target tap (here: one broadcast frame written into tap0 through socat
	# attached to it as QEMU would be); netd activates by itself, the launcher's call finds it done.
	# bridge: the launcher's migration-activate alone.
	if [ "$b" = masquerade ]; then
		printf '\xff\xff\xff\xff\xff\xff\x02\x00\x00\x00\x00\x01\x08\x06%046d' 0 | head -c 60 >"$KV_TMP/frame.bin"
		ip netns exec "$DST" timeout 5 socat -u "OPEN:$KV_TMP/frame.bin" TUN,tun-type=tap,tun-name=tap0,iff-no-pi ||
			fail "$b: cannot write a frame into the target's tap"
		st=""
		for _ in $(seq 1 50); do
			st=$(ctl 2 -o json migrations | jq -r --arg v "default/$vm" '.endpoints[] | select(.vm==$v) | .state')
			[ "$st" = active ] && break
			sleep 0.1
		done
		assert_eq "$st" active "$b: the guest's first frame on the target tap activated node2 by itself"
		assert_true "$b: netd logged the first-frame activation" \
			grep -q "VM default/$vm is active on this node (first frame from the guest" "$NODE2_LOG"
	fi
	act=$(echo "{\"op\":\"migration-activate\",\"args\":{\"vmNamespace\":\"default\",\"vmName\":\"$vm\"}}" |
		socat -t 5 - "UNIX-CONNECT:$NODE2_SOCK")
	assert_eq "$(jq -r '.ok' <<<"$act")" true "$b: migration-activate on node2 succeeds"
	if [ "$b" = masquerade ]; then
		assert_eq "$(jq -r '.result.endpoints + 10 * .result.alreadyActive' <<<"$act")" 10 \
			"$b: the launcher's migration-activate finds the attachment active already"
	else
		assert_eq "$(jq -r '.result.endpoints' <<<"$act")" 1 "$b: one attachment activated"
	fi
	assert_true "$b: node1's bridge learned $mac1 behind vxlan0 from the announcement" \
		bash -c "ip netns exec $NODE1_NS bridge fdb show br kvbr0 | grep -qi '^$mac1 dev vxlan0'"
	rec=$(ctl 1 -o json cluster-claims | jq -c --arg k "vm/default/$vm/default" '.claims[] | select(.key==$k)')
	assert_eq "$(jq -r '.holder + ">" + .target' <<<"$rec")" "node2>" "$b: after activation node2 holds the claim"
	for _ in $(seq 1 20); do
		[ "$(ip -n "$CLIENT_NS" -j route show "$ip1/32" | jq -r '.[0].gateway // empty')" = "$NODE2_UNDERLAY" ] && break
		sleep 0.1
	done
	assert_eq "$(ip -n "$CLIENT_NS" -j route show "$ip1/32" | jq -r '.[0].gateway // empty')" "$NODE2_UNDERLAY" \
		"$b: the client's /32 now points at node2"
	if [ "$b" = masquerade ]; then
		assert_eq "$(ip netns exec "$NODE2_NS" bridge -j link show dev "$host2" | jq -r '.[0].state')" forwarding \
			"$b: the pod's bridge port forwards after activation"
	fi

	assert_eq "$(ctl 2 -o json migrations | jq -r --arg v "default/$vm" '[.history[] | select(.vm==$v)][0].earlyPackets')" \
		"$early" "$b: node2's history records the $early packets that came early"
	assert_false "$b: with nothing armed the redirect program is gone from node2's underlay interface" \
		bash -c "tc -n $NODE2_NS filter show dev ul0 ingress | grep -q migredir_ingres"
	assert_eq "$(ctl 2 -o json cluster-claims | jq -r --arg k "vm/default/$vm/default" '.claims[] | select(.key==$k) | .targetReady')" \
		false "$b: claim store: no target, not ready"

	# source side
	src=$(srcmsg "$vm" completed ',"downtimeMs":31,"totalMs":900')
	assert_eq "$(jq -r '.ok' <<<"$src")" true "$b: migration-source completed on node1"
	host1=$(ctl 1 -o json endpoints | jq -r --arg v "$vm" '.[] | select(.vm.name==$v) | .hostIfname')
	assert_false "$b: node1's copy is taken down at completion" \
		bash -c "ip -n $NODE1_NS -j link show dev $host1 | jq -e '.[0].flags | index(\"UP\")' >/dev/null"
	assert_eq "$(ip -n "$NODE1_NS" -j route show "$ip1/32" proto 118 | jq -r '.[0].gateway // empty')" "$NODE2_UNDERLAY" \
		"$b: node1 redirects $ip1 to node2 during the grace period"
	assert_eq "$(ip -n "$NODE1_NS" -j route get "$ip1" from "$CLIENT_UNDERLAY" iif ul0 | jq -r '.[0].gateway + " " + .[0].dev')" \
		"$NODE2_UNDERLAY ul0" "$b: a packet for $ip1 arriving at node1 is forwarded to node2 over the underlay"
	assert_eq "$(ctl 1 -o json migrations | jq -r --arg v "default/$vm" '[.history[] | select(.vm==$v)][0] | .state + "/" + (.downtimeMs|tostring)')" \
		"completed/31" "$b: node1's history records the completed migration with its downtime"
	on 1 del "pod-$vm-1" "$SRC" tap0 --args "$(vmargs "$vm" "$b")"
	assert_eq "$(ctl 1 -o json ipam | jq --arg k "vm/default/$vm/default" '[.claims[] | select(.key==$k)] | length')" 0 \
		"$b: node1 dropped its local copy of the claim after DEL"
	assert_eq "$(ctl 2 -o json cluster-claims | jq -r --arg k "vm/default/$vm/default" '.claims[] | select(.key==$k) | .holder')" \
		"node2" "$b: the source's DEL does not touch the cluster claim"
	assert_eq "$(ip -n "$CLIENT_NS" -j route show "$ip1/32" | jq -r '.[0].gateway // empty')" "$NODE2_UNDERLAY" \
		"$b: the source's DEL does not withdraw the moved route"
done

sleep 3.5
assert_eq "$(ip -n "$NODE1_NS" -j route show proto 118 | jq length)" 0 "the redirects end after the grace period"
if [ "$PROM" = 1 ]; then
	assert_eq "$(mval 2 kvnet_netd_migrations_total '{"role": "target", "state": "active"}')/$(mval 2 kvnet_netd_migration_switch_seconds_count '{}')/$(mval 1 kvnet_netd_migrations_total '{"role": "source", "state": "completed"}')" \
		2/2/2 "metrics: node2 counts 2 targets activated (2 datapath switch times), node1 2 sources completed"
	assert_true "metrics: node2 counts the packets the early switchover delivered ($(mval 2 kvnet_netd_migration_early_packets_total '{}'))" \
		test "$(mval 2 kvnet_netd_migration_early_packets_total '{}')" -ge 1
else
	skip_part "netd's migration metrics: the Prometheus text parser is needed (python3-prometheus-client: make deps)"
fi

# ---------------------------------------------------------------- rollback: target removed before activation
mkns R1 r1
mkns R2 r2
res=$(on 1 add pod-db-1 "$R1" tap0 --args "$(vmargs db bridge)")
dbip=$(result_ip4 <<<"$res")
on 2 add pod-db-2 "$R2" tap0 --args "$(vmargs db bridge)" >/dev/null

# node2's netd killed with an armed target: its tc filter outlives it (with the dead process's map);
# the next netd replaces it and arms the target again
kill -9 "$NODE2_NETD_PID"
while kill -0 "$NODE2_NETD_PID" 2>/dev/null; do sleep 0.1; done
assert_true "a killed netd leaves its redirect filter behind" \
	bash -c "tc -n $NODE2_NS filter show dev ul0 ingress | grep -q migredir_ingres"
node_netd_restart "$NODE2_NS" "$NODE2_SOCK" "$NODE2_STATE" "$NODE2_LOG" || log "node2's netd does not answer yet"
NODE2_NETD_PID=$RESTARTED_NETD_PID
assert_true "the restarted netd removed the filter the killed one left" \
	grep -q "removed the filter a previous run left on 'ul0'" "$NODE2_LOG"
assert_eq "$(ctl 2 -o json migrations | jq -r '.endpoints[] | select(.vm=="default/db") | .earlyRedirect')" true \
	"the restarted netd armed the prepared target again"
assert_true "... with its own filter on the underlay interface" \
	bash -c "tc -n $NODE2_NS filter show dev ul0 ingress | grep -q migredir_ingres"

# the migration fails after the source paused: the source takes its packets back
assert_eq "$(srcmsg db begin ',"target":"node2"' | jq -r '.ok')" true "rollback: migration-source begin on node1"
assert_eq "$(srcmsg db switchover | jq -r '.result.redirected')" 1 "rollback: switchover redirects db early"
assert_eq "$(ip -n "$NODE1_NS" -j route show "$dbip/32" proto 118 | jq length)" 1 "rollback: node1 routes $dbip to node2"
assert_eq "$(srcmsg db aborted ',"reason":"target QEMU died"' | jq -r '.ok')" true "rollback: migration-source aborted"
assert_eq "$(ip -n "$NODE1_NS" -j route show "$dbip/32" proto 118 | jq length)" 0 \
	"rollback: aborted after the switchover: node1 keeps $dbip's packets again (redirect removed)"
on 2 del pod-db-2 "$R2" tap0 --args "$(vmargs db bridge)"
assert_false "rollback: the target's removal disarms the redirect (no filter left on node2's underlay)" \
	bash -c "tc -n $NODE2_NS filter show dev ul0 ingress | grep -q migredir_ingres"
rec=$(ctl 1 -o json cluster-claims | jq -c '.claims[] | select(.key=="vm/default/db/default")')
assert_eq "$(jq -r '.holder + ">" + .target + ">" + (.attached|tostring)' <<<"$rec")" "node1>>true" \
	"rollback: node1 still holds the VM's claim, no target"
assert_eq "$(ctl 2 -o json ipam | jq '[.claims[] | select(.key=="vm/default/db/default")] | length')" 0 \
	"rollback: node2 keeps no claim for the VM"
assert_eq "$(ctl 2 -o json migrations | jq -r '[.history[] | select(.vm=="default/db")][0].state')" "aborted" \
	"rollback: node2's history says aborted"
assert_eq "$(ip -n "$CLIENT_NS" -j route show "$dbip/32" | jq -r '.[0].gateway // empty')" "$NODE1_UNDERLAY" \
	"rollback: the route stays at node1"

if [ "$PROM" = 1 ]; then
	assert_eq "$(mval 1 kvnet_netd_migrations_total '{"role": "source", "state": "aborted"}')/$(mval 2 kvnet_netd_migrations_total '{"role": "target", "state": "aborted"}')" \
		1/1 "metrics: the rollback counted on both nodes (source aborted on node1, target aborted on node2)"
fi

# ---------------------------------------------------------------- bad requests
bad() {
	echo "$1" | socat -t 5 - "UNIX-CONNECT:$NODE2_SOCK"
}
out=$(bad '{"op":"migration-activate","args":{"vmNamespace":"default","vmName":"nosuchvm"}}')
assert_eq "$(jq -r '.ok' <<<"$out")" false "activate of an unknown VM fails"
assert_true "... naming the VM" grep -q "default/nosuchvm" <<<"$out"
out=$(bad '{"op":"migration-activate","args":{"vmNamespace":"default"}}')
assert_true "activate without vmName names the field" grep -q "vmName" <<<"$out"
out=$(bad '{"op":"migration-source","args":{"vmNamespace":"default","vmName":"db","phase":"sideways"}}')
assert_true "a bad phase is named" grep -q "sideways" <<<"$out"
out=$(bad '{"op":"migration-source","args":{"vmNamespace":"default","vmName":"db","phase":"begin","downtimeMs":"x"}}')
assert_true "a wrongly typed downtimeMs is named" grep -q "downtimeMs" <<<"$out"
assert_true "kvnetctl migrations prints a table" bash -c "'$KV_BIN/kvnetctl' --socket '$NODE2_SOCK' migrations | grep -q HISTORY"
assert_true "kvnetctl cluster-claims prints a table" bash -c "'$KV_BIN/kvnetctl' --socket '$NODE2_SOCK' cluster-claims | grep -q HOLDER"

assert_cluster_netd_clean
finish
