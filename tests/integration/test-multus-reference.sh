#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The real Multus (thin plugin v4.2.3, peer "multus" built by make test-deps) against kvnet-controller
# --embedded, side by side with kvnet-multus when it is built.
#
# The controller runs in the node namespace, so that Multus, run there by cnichain, reaches it on
# 127.0.0.1 through the kubeconfig the controller writes. A Pod is created with kubectl carrying
# k8s.v1.cni.cncf.io/networks, the NetworkAttachmentDefinitions are applied with kubectl, and the meta plugin
# puts into a fresh sandbox the cluster network (clusterNetwork: the NAD kube-system/cluster-net, the reference
# bridge kvbr0 + host-local, eth0, default route; not a conflist file path: with one, Multus v4.2.3's DEL from
# its cache ran the bridge with the plugin's own fields dropped and failed, "no IP ranges specified") and the
# secondary networks: the reference macvlan on mvpar (a veth whose peer is in the "lan" namespace, 10.10.1.254)
# and the reference bridge kvbr2 (gateway 10.10.2.1). For every
# annotation form — comma list, namespace/name, name@ifname, the JSON list with interface, ips (static IPAM
# through the ips capability), mac (the mac capability), default-route, cni-args (to the reference tuning,
# which sets the MTU) — it asserts the sandbox's interfaces, addresses, MACs, MTU and routes, traffic on the
# secondary networks, the network-status Multus wrote on the pod (kubectl get pod -o jsonpath) and its
# AddedInterface events (kvnet-multus's: the same messages); then DEL leaves nothing (sandbox links, host-local allocations, the meta plugin's
# cache, veths on the node). Last, the same with kvnet as the cluster network (netd on the node): Multus
# delegating eth0 to the kvnet plugin.
#
# run_meta PLUGIN_TYPE runs the same Multus config with "type": PLUGIN_TYPE. When build/bin/kvnet-multus
# exists (KVNET_MULTUS_META=PATH names another binary) every case runs again with it and its interfaces,
# routes and network-status are compared with Multus's, normalised: MACs the plugins chose at random shown as
# "random" (or "= link" in network-status when it is the interface's), network-status reduced to name,
# interface, ips, default, mac and gateway, and Multus's "<nil>" gateway entry (it prints a nil IP for the
# cluster network's default route) dropped. Without it the comparison is skipped, saying why.
# KVNET_MULTUS_CASES="comma mac" runs those cases only.
# kvnet-test-timeout: 400
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-controller.sh"

kv_init
require_cnichain
require_peer MULTUS_DIR multus
require_ref_plugins bridge macvlan host-local static tuning loopback
[ -x "$MULTUS_DIR/multus" ] || skip "peer multus has no thin plugin 'multus' in $MULTUS_DIR"
setup_node
ctl_init "$NODE_NS"
start_controller

# ---------------------------------------------------------------- the node: plugins, the cluster network, the LAN

BIN=$KV_TMP/bin
NETD=$KV_TMP/net.d
HL=$KV_TMP/host-local
mkdir -p "$BIN" "$NETD" "$HL"
ln -s "$MULTUS_DIR/multus" "$BIN/multus"
for p in bridge macvlan host-local static tuning loopback; do ln -s "$REF_CNI_DIR/$p" "$BIN/$p"; done
METAS=(multus)
KVMULTUS=${KVNET_MULTUS_META:-$KV_BIN/kvnet-multus}
if [ -x "$KVMULTUS" ]; then
	ln -s "$KVMULTUS" "$BIN/kvnet-multus"
	METAS+=(kvnet-multus)
	log "comparing Multus with $KVMULTUS"
else
	skip_part "kvnet-multus comparison: $KVMULTUS is not built (multus-compat/), Multus runs alone"
fi

mkns LAN lan
ip -n "$NODE_NS" link add mvpar type veth peer name mvlan netns "$LAN"
ip -n "$NODE_NS" link set mvpar up
ip -n "$LAN" addr add 10.10.1.254/24 dev mvlan
ip -n "$LAN" link set mvlan up

cat >"$NETD/10-cluster.conflist" <<EOF
{ "cniVersion": "1.0.0", "name": "cluster-net",
  "plugins": [ { "type": "bridge", "bridge": "kvbr0", "isGateway": true,
                 "ipam": { "type": "host-local", "subnet": "10.10.0.0/24", "dataDir": "$HL",
                           "routes": [ { "dst": "0.0.0.0/0" } ] } } ] }
EOF

# nad NAME CONFIG [NAMESPACE]: a NetworkAttachmentDefinition through kubectl apply
nad() {
	jq -n --arg name "$1" --arg ns "${3:-default}" --arg config "$2" \
		'{apiVersion: "k8s.cni.cncf.io/v1", kind: "NetworkAttachmentDefinition",
		  metadata: {name: $name, namespace: $ns}, spec: {config: $config}}' >"$KV_TMP/nad.json"
	k apply -f "$KV_TMP/nad.json" >/dev/null || die "kubectl apply of NAD $1"
}
hl() { echo "\"ipam\": {\"type\": \"host-local\", \"subnet\": \"$1\", \"dataDir\": \"$HL\"}"; }
nad mv1 "{\"cniVersion\": \"1.0.0\", \"type\": \"macvlan\", \"master\": \"mvpar\", \"mode\": \"bridge\", $(hl 10.10.1.0/24)}"
nad br2 "{\"cniVersion\": \"1.0.0\", \"type\": \"bridge\", \"bridge\": \"kvbr2\", \"isGateway\": true, $(hl 10.10.2.0/24)}"
nad br3 "{\"cniVersion\": \"1.0.0\", \"type\": \"bridge\", \"bridge\": \"kvbr3\", \"isGateway\": true, $(hl 10.10.3.0/24)}" other
nad mvstatic '{"cniVersion": "1.0.0", "type": "macvlan", "master": "mvpar", "mode": "bridge",
	"capabilities": {"ips": true}, "ipam": {"type": "static"}}'
nad brmac "{\"cniVersion\": \"1.0.0\", \"type\": \"bridge\", \"bridge\": \"kvbr2\", \"isGateway\": true,
	\"capabilities\": {\"mac\": true}, $(hl 10.10.2.0/24)}"
nad brtune "{\"cniVersion\": \"1.0.0\", \"name\": \"brtune\", \"plugins\": [
	{\"type\": \"bridge\", \"bridge\": \"kvbr2\", \"isGateway\": true, $(hl 10.10.2.0/24)}, {\"type\": \"tuning\"}]}"
nad cluster-net "$(cat "$NETD/10-cluster.conflist")" kube-system
assert_eq "$(k get net-attach-def -A --no-headers 2>/dev/null | wc -l)" 7 "kubectl apply made the seven NADs"

# ---------------------------------------------------------------- the meta plugin

# run_meta PLUGIN_TYPE CMD POD SANDBOX: the Multus thin plugin's config with "type": PLUGIN_TYPE and the cluster
# network $CLUSTER (a NAD in kube-system), run by cnichain in the node namespace for the pod (CNI_ARGS as kubelet's
# runtime passes them).
run_meta() {
	local type=$1 cmd=$2 pod=$3 sbx=$4 uid conf=$KV_TMP/meta-$1.conflist
	uid=$(k get pod "$pod" -o jsonpath='{.metadata.uid}')
	jq -n --arg type "$type" --arg kcfg "$KCFG" --arg cnidir "$KV_TMP/cache-$type" --arg bin "$BIN" --arg cluster "$CLUSTER" \
		--arg confdir "$NETD" --arg log "$KV_TMP/$type.log" \
		'{cniVersion: "1.0.0", name: "multus-cni-network",
		  plugins: [{type: $type, kubeconfig: $kcfg, cniDir: $cnidir, binDir: $bin, confDir: $confdir,
		             clusterNetwork: $cluster, logFile: $log, logLevel: "debug"}]}' >"$conf"
	ip netns exec "$NODE_NS" "$CNICHAIN" "$cmd" "$conf" "cid-$pod" "$(nspath "$sbx")" eth0 \
		--cache-dir "$KV_CACHE" --path "$BIN" \
		--args "K8S_POD_NAMESPACE=default;K8S_POD_NAME=$pod;K8S_POD_INFRA_CONTAINER_ID=cid-$pod;K8S_POD_UID=$uid"
}

# pod NAME NETWORKS: a pod with that networks annotation, through kubectl
pod() {
	jq -n --arg name "$1" --arg nets "$2" \
		'{apiVersion: "v1", kind: "Pod", metadata: {name: $name, annotations: {"k8s.v1.cni.cncf.io/networks": $nets}},
		  spec: {containers: [{name: "c", image: "none"}]}}' >"$KV_TMP/pod.json"
	k apply -f "$KV_TMP/pod.json" >/dev/null || die "kubectl apply of pod $1"
}

# the network-status annotation of POD (kubectl get pod -o jsonpath)
netstatus() { k get pod "$1" -o jsonpath='{.metadata.annotations.k8s\.v1\.cni\.cncf\.io/network-status}'; }
# ns_field POD IFNAME JQ: a field of the network-status entry of that interface
ns_field() { netstatus "$1" | jq -r --arg i "$2" "first(.[] | select(.interface == \$i)) | $3"; }
addr4() { ip -n "$1" -o -4 addr show dev "$2" 2>/dev/null | awk '{print $4}' | paste -sd, -; }
lmac() { ip -n "$1" -j link show dev "$2" | jq -r '.[0].address'; }
lkind() { ip -n "$1" -j -d link show dev "$2" | jq -r '.[0].linkinfo.info_kind // "none"'; }
lmtu() { ip -n "$1" -j link show dev "$2" | jq -r '.[0].mtu'; }

# snapshot POD SANDBOX: interfaces, routes and the network-status, normalised for comparing two meta plugins
snapshot() {
	local links routes status
	links=$(ip -n "$2" -j -d addr show | jq -c '[.[] | select(.ifname != "lo") | {ifname, mtu,
		kind: (.linkinfo.info_kind // "none"),
		mac: (if (.address | startswith("02:00:00:")) then .address else "random" end),
		addrs: [.addr_info[] | select(.family == "inet") | "\(.local)/\(.prefixlen)"]}] | sort_by(.ifname)')
	routes=$(ip -n "$2" -j -4 route show | jq -c --arg drop "${SNAP_DROP_DEFAULT:-}" \
		'[.[] | select($drop == "" or .dst != "default") | {dst, gateway, dev}] | sort_by(.dst, .dev)')
	status=$(netstatus "$1" | jq -c --argjson links "$(ip -n "$2" -j link show)" '[.[] |
		. as $s | ($links | map(select(.ifname == $s.interface)) | first | .address) as $lm |
		{name, interface, ips: (.ips // []), default: (.default // false),
		 mac: (if .mac == $lm then "= link" else .mac end),
		 gateway: [(.gateway // [])[] | select(. != "<nil>")]}]')
	# kvnet's addresses move on after a release (the next free one): 10.88.0.N compares as 10.88.0.x
	jq -n --argjson l "$links" --argjson r "$routes" --argjson s "$status" '{links: $l, routes: $r, networkStatus: $s}' |
		sed -E 's/10\.88\.0\.([2-9]|[1-9][0-9]+)\b/10.88.0.x/g'
}

# DEL leaves nothing: the sandbox has lo alone, no host-local allocation, no entry in the meta plugin's cache, no
# veth on the node but mvpar.
assert_del_clean() {
	local type=$1 sbx=$2 what=$3
	assert_eq "$(ip -n "$sbx" -o link show | awk -F': ' '{print $2}' | paste -sd, -)" lo "$what: DEL leaves lo alone in the sandbox"
	assert_eq "$(find "$HL" -type f -name '10.*' | wc -l)" 0 "$what: DEL releases every host-local address"
	assert_eq "$(find "$KV_TMP/cache-$type" -type f 2>/dev/null | wc -l)" 0 "$what: DEL leaves nothing in the $type cache"
	local veths
	for _ in $(seq 1 30); do # kvnet's netd deletes its links just after answering DEL (lib.sh, assert_no_link)
		veths=$(ip -n "$NODE_NS" -o link show type veth | awk -F': ' '{print $2}' | cut -d@ -f1 | paste -sd, -)
		[ "$veths" = mvpar ] && break
		sleep 0.1
	done
	assert_eq "$veths" mvpar "$what: DEL leaves no veth on the node"
	if [ -n "$NETD_PID" ]; then
		assert_eq "$(kvctl -o json ipam | jq '.claims | length')/$(kvctl -o json endpoints | jq length)" 0/0 \
			"$what: DEL leaves no kvnet claim or endpoint"
	fi
}

# run_case NAME NETWORKS CHECK: for every meta plugin: a pod with that annotation, ADD into a fresh sandbox,
# CHECK SANDBOX POD TYPE (the case's assertions), a snapshot, DEL, nothing left; then the snapshots compared.
run_case() {
	local name=$1 nets=$2 check=$3 type sbx p
	case " ${KVNET_MULTUS_CASES:-$name} " in *" $name "*) ;; *) return 0 ;; esac
	for type in "${METAS[@]}"; do
		p=p-$name-${type%%-*}
		pod "$p" "$nets"
		# the status a node agent writes (kvnet-node's shape): Multus's protobuf PUT of pods/status must keep it
		[ -z "${POD_STATUS:-}" ] || k patch pod "$p" --subresource=status --type merge -p "{\"status\": $POD_STATUS}" >/dev/null
		mkns sbx "s$name"
		if ! run_meta "$type" add "$p" "$sbx" >"$KV_TMP/res-$name-$type.json" 2>"$KV_TMP/err"; then
			fail "$type $name: ADD of '$nets'"
			cat "$KV_TMP/err"
			tail -n 20 "$KV_TMP/$type.log" 2>/dev/null
			continue
		fi
		pass "$type $name: ADD of '$nets'"
		if [ -n "${POD_STATUS:-}" ]; then
			# compared without null and {} values: Go writes a zero time as null and a zero struct as {}
			local drop='walk(if type == "object" then with_entries(select(.value != null and .value != {})) else . end)'
			assert_eq "$(k get pod "$p" -o json | jq -cS ".status | $drop")" "$(jq -cS "$drop" <<<"$POD_STATUS")" \
				"$type $name: the pod's status is what the node wrote, after the meta plugin's status update"
		fi
		"$check" "$sbx" "$p" "$type $name"
		local want_ip=$ETH0_IP
		[ "$ETH0_IP" != kvnet ] || want_ip=$(addr4 "$sbx" eth0 | cut -d/ -f1) # the address kvnet gave (see check_kvnet)
		assert_eq "$(ns_field "$p" eth0 '.name + " " + (.default | tostring) + " " + .ips[0]')" "kube-system/$CLUSTER true $want_ip" \
			"$type $name: network-status: eth0 is the cluster network, default"
		assert_eq "$(netstatus "$p" | jq '[.[] | select(.default == true)] | length')" 1 \
			"$type $name: network-status: one default network"
		snapshot "$p" "$sbx" >"$KV_TMP/snap-$name-$type.json"
		if run_meta "$type" del "$p" "$sbx" >/dev/null 2>"$KV_TMP/err"; then
			pass "$type $name: DEL"
		else
			fail "$type $name: DEL"
			cat "$KV_TMP/err"
		fi
		assert_del_clean "$type" "$sbx" "$type $name"
		assert_true "$type $name: a second DEL succeeds" run_meta "$type" del "$p" "$sbx"
		# the next run starts from the same allocations, so the same addresses are compared
		rm -rf "${HL:?}"/*
	done
	if [ "${#METAS[@]}" -gt 1 ]; then
		if diff -u <(jq -S . "$KV_TMP/snap-$name-multus.json") <(jq -S . "$KV_TMP/snap-$name-kvnet-multus.json") \
			>"$KV_TMP/diff"; then
			pass "$name: kvnet-multus gives the interfaces, routes and network-status Multus gives"
		else
			fail "$name: kvnet-multus gives the interfaces, routes and network-status Multus gives"
			cat "$KV_TMP/diff"
		fi
	fi
}

# ---------------------------------------------------------------- the cases

CLUSTER=cluster-net ETH0_IP=10.10.0.2

events_at_least() { [ "$(k get events --field-selector "$1" -o name | wc -l)" -ge "$2" ]; } # SELECTOR N
event_messages() { k get events --field-selector "$1" -o json | jq -c '[.items[].message] | sort'; } # SELECTOR
check_comma() { # mv1,br2
	local s=$1 p=$2 w=$3
	assert_eq "$(addr4 "$s" eth0)/$(addr4 "$s" net1)/$(addr4 "$s" net2)" "10.10.0.2/24/10.10.1.2/24/10.10.2.2/24" \
		"$w: eth0, net1, net2 addressed in order"
	assert_eq "$(lkind "$s" net1)/$(lkind "$s" net2)" macvlan/veth "$w: net1 is the macvlan, net2 a bridge port"
	assert_eq "$(ip -n "$s" -4 route show default | sed 's/ *$//')" "default via 10.10.0.1 dev eth0" "$w: default route through the cluster network"
	assert_ping "$s" 10.10.1.254 "$w: net1 reaches the LAN through macvlan"
	assert_ping "$s" 10.10.2.1 "$w: net2 reaches the kvbr2 gateway"
	assert_eq "$(netstatus "$p" | jq -c '[.[] | [.name, .interface, .ips[0], (.default // false)]]')" \
		'[["kube-system/cluster-net","eth0","10.10.0.2",true],["default/mv1","net1","10.10.1.2",false],["default/br2","net2","10.10.2.2",false]]' \
		"$w: network-status names, interfaces, IPs, default"
	assert_eq "$(ns_field "$p" net1 .mac)" "$(lmac "$s" net1)" "$w: network-status MAC of net1 is the link's"
	local nev sel="involvedObject.name=$p,reason=AddedInterface,source=multus"
	if [ "${w%% *}" = multus ]; then
		# Multus posts its events from a goroutine and exits without waiting for it: one per interface (3) when
		# they all made it before the exit, as every run here so far, but fewer would not be the API's fault
		nev=$(k get events --field-selector "$sel" -o name | wc -l)
		assert_true "$w: AddedInterface events on the pod, 1 to 3 (kubectl get events --field-selector involvedObject.name=...: $nev)" \
			test "$nev" -ge 1 -a "$nev" -le 3
	else
		# kvnet-multus's (JSON Events, component multus): a child posts every one, a moment after the ADD returned
		nev=3
		assert_true "$w: AddedInterface events on the pod, one per interface" wait_until 10 events_at_least "$sel" 3
		assert_true "$w: every event Multus posted for its pod, word for word (the same addresses)" \
			jq -e --argjson m "$(event_messages "involvedObject.name=p-comma-multus,reason=AddedInterface")" '$m - . == []' \
			<<<"$(event_messages "$sel")"
	fi
	assert_eq "$(k describe pod "$p" | grep -c 'AddedInterface .*multus  *Add ')" "$nev" "$w: kubectl describe pod lists them"
	assert_eq "$(k get events --field-selector "involvedObject.name=$p" -o json | jq -r '[.items[].message] | sort | .[0]')" \
		"Add eth0 [10.10.0.2/24] from kube-system/cluster-net" "$w: the event of eth0 as Multus wrote it"
}
POD_STATUS='{"phase": "Running", "podIP": "10.10.0.2", "podIPs": [{"ip": "10.10.0.2"}], "hostIP": "192.0.2.1",
	"hostIPs": [{"ip": "192.0.2.1"}], "startTime": "2026-12-06T04:00:00Z", "qosClass": "BestEffort",
	"conditions": [{"type": "Ready", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-12-06T04:00:01Z"},
		{"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": "2026-12-06T04:00:00Z"}],
	"containerStatuses": [{"name": "compute", "image": "kvnet-launcher", "imageID": "", "ready": true, "started": true,
		"restartCount": 0, "state": {"running": {"startedAt": "2026-12-06T04:00:01Z"}}},
		{"name": "sidecar", "image": "x", "imageID": "", "ready": false, "started": false, "restartCount": 2,
		"state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
		"lastState": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": "2026-12-06T04:00:02Z",
			"finishedAt": "2026-12-06T04:00:03Z"}}}]}' \
	run_case comma "mv1,br2" check_comma

check_nsname() { # other/br3,default/mv1
	local s=$1 p=$2 w=$3
	assert_eq "$(addr4 "$s" net1)/$(addr4 "$s" net2)" "10.10.3.2/24/10.10.1.2/24" "$w: net1 from other/br3, net2 from default/mv1"
	assert_eq "$(netstatus "$p" | jq -c '[.[1:][] | [.name, .interface]]')" '[["other/br3","net1"],["default/mv1","net2"]]' \
		"$w: network-status names the namespaces"
}
run_case nsname "other/br3,default/mv1" check_nsname

check_ifname() { # mv1@lan0,br2@data0
	local s=$1 p=$2 w=$3
	assert_eq "$(addr4 "$s" lan0)/$(addr4 "$s" data0)" "10.10.1.2/24/10.10.2.2/24" "$w: interfaces named lan0 and data0"
	assert_false "$w: no net1" link_exists "$s" net1
	assert_eq "$(netstatus "$p" | jq -c '[.[1:][] | .interface]')" '["lan0","data0"]' "$w: network-status interfaces"
}
run_case ifname "mv1@lan0,br2@data0" check_ifname

check_json() { # JSON list with interface and namespace
	local s=$1 p=$2 w=$3
	assert_eq "$(addr4 "$s" ext1)/$(addr4 "$s" net2)" "10.10.1.2/24/10.10.2.2/24" "$w: ext1 as asked, then net2"
	assert_eq "$(netstatus "$p" | jq -c '[.[1:][] | [.name, .interface]]')" '[["default/mv1","ext1"],["default/br2","net2"]]' \
		"$w: network-status"
}
run_case json '[{"name": "mv1", "interface": "ext1"}, {"name": "br2", "namespace": "default"}]' check_json

check_ips() { # static IPAM through the ips capability
	local s=$1 p=$2 w=$3
	assert_eq "$(addr4 "$s" net1)" "10.10.1.50/24" "$w: net1 has the requested 10.10.1.50/24"
	assert_ping "$s" 10.10.1.254 "$w: net1 reaches the LAN"
	assert_eq "$(ns_field "$p" net1 '.ips | join(",")')" 10.10.1.50 "$w: network-status has the requested IP"
}
run_case ips '[{"name": "mvstatic", "ips": ["10.10.1.50/24"]}]' check_ips

check_mac() { # the mac capability
	local s=$1 p=$2 w=$3
	assert_eq "$(lmac "$s" net1)" 02:00:00:00:00:42 "$w: net1 has the requested MAC"
	assert_eq "$(ns_field "$p" net1 .mac)" 02:00:00:00:00:42 "$w: network-status has the requested MAC"
	assert_ping "$s" 10.10.2.1 "$w: net1 reaches the kvbr2 gateway"
}
run_case mac '[{"name": "brmac", "mac": "02:00:00:00:00:42"}]' check_mac

check_route() { # default-route
	local s=$1 p=$2 w=$3 got
	got=$(ip -n "$s" -4 route show default | sed 's/ *$//')
	if [ "${w%% *}" = multus ]; then
		# Multus v4.2.3 keeps eth0's default route: its DeleteDefaultGW looks for a route whose Dst is nil,
		# and the netlink library it builds with (v1.3.1) reports a default route as 0.0.0.0/0, so nothing is
		# deleted and the new default route's EEXIST is ignored (multus-cni PR #1552, open). Asserted as it
		# is, so that a fixed release shows here.
		assert_eq "$got" "default via 10.10.0.1 dev eth0" "$w: the default route stays on eth0 (Multus v4.2.3's bug, multus-cni#1552)"
	else
		assert_eq "$got" "default via 10.10.2.1 dev net1" "$w: the default route moves to net1"
	fi
	assert_eq "$(ns_field "$p" net1 '.ips[0]')" 10.10.2.2 "$w: network-status of net1"
}
# the default route is compared by the check above, not between the two plugins (Multus's bug)
SNAP_DROP_DEFAULT=1 run_case route '[{"name": "br2", "default-route": ["10.10.2.1"]}]' check_route

check_args() { # cni-args to the reference tuning plugin of a conflist NAD
	local s=$1 p=$2 w=$3
	assert_eq "$(lmtu "$s" net1)" 1400 "$w: tuning got the cni-args (net1 MTU 1400)"
	assert_eq "$(lmtu "$s" eth0)" 1500 "$w: eth0 keeps its MTU"
	assert_eq "$(ns_field "$p" net1 '.name + " " + .ips[0]')" "default/brtune 10.10.2.2" "$w: network-status"
}
run_case args '[{"name": "brtune", "cni-args": {"mtu": 1400}}]' check_args

# kvnet as the cluster network: Multus delegates eth0 to the kvnet plugin (netd on the node, its own bridge
# kvk0), the secondary networks to the reference plugins as before.
check_kvnet() {
	local s=$1 p=$2 w=$3
	# kvnet's IPAM hands out the next free address after a release (not the lowest): the second meta plugin's
	# pod gets another one of the subnet
	local e0
	e0=$(addr4 "$s" eth0)
	assert_true "$w: eth0 from kvnet in 10.88.0.0/24 ($e0)" grep -Eq '^10\.88\.0\.[0-9]+/24$' <<<"$e0"
	assert_eq "$(addr4 "$s" net1)/$(addr4 "$s" net2)" "10.10.1.2/24/10.10.2.2/24" "$w: net1 macvlan, net2 bridge"
	assert_eq "$(kvctl -o json endpoints | jq -r '.[0].ifname // .[0].ifName // "?"')" eth0 "$w: netd holds eth0's endpoint"
	assert_eq "$(ip -n "$s" -4 route show default | sed 's/ *$//')" "default via 10.88.0.1 dev eth0" "$w: default route through kvnet"
	assert_ping "$s" 10.88.0.1 "$w: eth0 reaches kvnet's gateway"
	assert_ping "$s" 10.10.1.254 "$w: net1 reaches the LAN"
	assert_eq "$(netstatus "$p" | jq -c '[.[] | [.name, .interface, .ips[0]]]')" \
		'[["kube-system/kvnet-net","eth0","'"${e0%/*}"'"],["default/mv1","net1","10.10.1.2"],["default/br2","net2","10.10.2.2"]]' \
		"$w: network-status"
}
if [[ " ${KVNET_MULTUS_CASES:-kvnet} " != *" kvnet "* ]]; then
	: # not asked for
elif [ -x "$KV_BIN/kvnet" ] && [ -x "$KV_BIN/kvnet-netd" ]; then
	start_netd "$NODE_NS"
	ln -s "$KV_BIN/kvnet" "$BIN/kvnet"
	nad kvnet-net "$(jq -c '.plugins[0].bridge = "kvk0" | del(.plugins[0].capabilities)' \
		"$(render_conf kvnet-basic.conflist 1.0.0)")" kube-system
	CLUSTER=kvnet-net ETH0_IP=kvnet
	run_case kvnet "mv1,br2" check_kvnet
else
	skip_part "the kvnet cluster network case: $KV_BIN/kvnet or kvnet-netd not built"
fi

# ---------------------------------------------------------------- protobuf bodies the API refuses

PB='Content-Type: application/vnd.kubernetes.protobuf'
printf 'k8s\0\x0a\x09\x0a\x02v1\x12\x03Pod\x12\x04\x0a\x02\x9a\x06' >"$KV_TMP/bad.pb" # ObjectMeta field 99, cut short
pod p-pb mv1
api PUT /api/v1/namespaces/default/pods/p-pb/status -H "$PB" --data-binary @"$KV_TMP/bad.pb" >/dev/null
assert_eq "$(code) $(jq -r .reason "$KV_TMP/body")" "400 BadRequest" "a malformed protobuf pods/status body: 400"
assert_true "... naming the message and the byte ($(jq -r .message "$KV_TMP/body"))" \
	grep -q "protobuf body: ObjectMeta field 99 at byte 19: truncated" "$KV_TMP/body"
api POST /apis/k8s.cni.cncf.io/v1/namespaces/default/network-attachment-definitions -H "$PB" --data-binary @"$KV_TMP/bad.pb" >/dev/null
assert_eq "$(code) $(jq -r .reason "$KV_TMP/body")" "415 UnsupportedMediaType" "a protobuf NAD: 415 (Pod and Event only)"
api POST /api/v1/namespaces/default/pods -H 'Content-Type: application/yaml' -d 'x: 1' >/dev/null
assert_eq "$(code) $(jq -r .message "$KV_TMP/body")" \
	"415 the embedded API takes application/json and application/vnd.kubernetes.protobuf, not 'application/yaml'" \
	"a YAML body: 415 naming what is taken"

ctl_log_clean
stop_controller
finish
