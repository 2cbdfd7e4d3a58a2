#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kvnet-multus, the meta CNI plugin with Multus's config, against the embedded API: NADs applied with kubectl,
# a Pod with the networks annotation, a sandbox that gets eth0 from kvnet (the cluster network, a file of the
# conf dir), net1 from the reference macvlan and net2 from kvnet on a second bridge. Asserts the addresses,
# the routes and the default route in the sandbox, the network-status annotation on the pod (kubectl),
# CHECK, and that DEL leaves nothing (links, netd endpoints, the plugin's and node/'s cache files) and
# succeeds again. Bad cases: an unknown NAD, a malformed annotation, a namespace isolation violation and a
# delegate whose plugin is missing each fail with a CNI error naming the network/field and leave nothing.
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
log "reference plugins: $REF_CNI_DIR"

multus_node
CNI_DIR=$KV_TMP/multus

multus_conf "$KV_TMP/multus.conf"
multus_conf "$KV_TMP/multus-iso.conf" '.namespaceIsolation = true | .globalNamespaces = "kube-system"'
multus_conf "$KV_TMP/multus-par.conf" '.parallelDelegates = true'

# ---------------------------------------------------------------- NADs and pods through kubectl
HL=$KV_TMP/host-local
nad macnet default '{"cniVersion":"1.0.0","type":"macvlan","master":"kvmac0","mode":"bridge",
  "ipam":{"type":"host-local","subnet":"10.77.0.0/24","dataDir":"'"$HL"'"}}'
nad kvnet2 default '{"cniVersion":"1.1.0","name":"kvnet2","plugins":[{"type":"kvnet","binding":"bridge","bridge":"kvbr1",
  "ipam":{"ranges":[[{"subnet":"10.66.0.0/24","gateway":"10.66.0.1"}]]},"socket":"'"$NETD_SOCK"'",
  "capabilities":{"portMappings":true}}]}'
nad macstatic default '{"cniVersion":"1.0.0","type":"macvlan","master":"kvmac0","mode":"bridge",
  "capabilities":{"ips":true,"mac":true},"ipam":{"type":"static"}}'
nad altnet kube-system '{"cniVersion":"1.0.0","type":"macvlan","master":"kvmac0","mode":"bridge",
  "ipam":{"type":"host-local","subnet":"10.44.0.0/24","dataDir":"'"$HL"'"}}'
nad ghost default '{"cniVersion":"1.0.0","type":"kvnet-no-such-plugin"}'
pod default web 'macnet, default/kvnet2'
pod default web2 'macnet, default/kvnet2'
pod default lost 'nosuch'
pod default badmac '[{"name": "macnet", "mac": "zz:11"}]'
pod other iso 'default/macnet'
pod default ghostly 'macnet, ghost'
pod default gw '[{"name":"macstatic","interface":"data1","ips":["10.55.0.9/24"],"mac":"02:00:00:aa:bb:cc",
  "default-route":["10.55.0.1"]}]'
k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: alt
  annotations: {v1.multus-cni.io/default-network: altnet, k8s.v1.cni.cncf.io/networks: kvnet2}
spec:
  containers: [{name: c, image: busybox}]
EOF
pod default cniargs '[{"name":"macstatic","interface":"st0","cni-args":{"ips":["10.56.0.7/24"]}}]'
pod default kvreq '[{"name":"kvnet2","interface":"net1","ips":["10.66.0.77/24"],"mac":"02:00:00:66:00:77"}]'
pod default pm '[{"name":"kvnet2","portMappings":[{"hostPort":18080,"containerPort":80,"protocol":"tcp"}]}]'
pod default ecmp '[{"name":"macnet","default-route":["10.77.0.1"]},
  {"name":"macstatic","ips":["10.55.0.9/24"],"default-route":["10.55.0.1"]}]'

# ---------------------------------------------------------------- ADD
mc ADD "$KV_TMP/multus.conf" default web
[ "$MC_RC" -eq 0 ] || {
	cat "$KV_TMP/mc.err"
	echo "$MC_OUT"
}
assert_eq "$MC_RC" 0 "ADD of a pod with two secondary networks succeeds"
WEB_OUT=$MC_OUT
assert_eq "$(jq -r '.cniVersion' <<<"$MC_OUT")" 1.1.0 "the result is the cluster network's, as its plugin wrote it"
assert_true "the result lists eth0 in the sandbox" jq -e '[.interfaces[] | select(.sandbox) | .name] == ["eth0"]' <<<"$MC_OUT"
ip4() { ip -n "$SBX" -4 -o addr show dev "$1" | awk '{print $4}' | head -n 1; }
links() { ip -n "$1" -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | grep -v '^lo$' | sort | tr '\n' ' '; }
nets() { ip -n "$1" -4 route show proto kernel | awk '{print $1, $3}' | sort | tr '\n' ';'; }
WEB_NETS=$(nets "$SBX")
WEB_DEFAULT=$(ip -n "$SBX" -4 route show default)
log "routes of the subnets: $WEB_NETS"
eth0=$(ip4 eth0)
net1=$(ip4 net1)
net2=$(ip4 net2)
log "eth0 $eth0, net1 $net1, net2 $net2"
assert_true "eth0 from kvnet in 10.88.0.0/24" grep -q '^10\.88\.0\.' <<<"$eth0"
assert_true "net1 from macvlan in 10.77.0.0/24" grep -q '^10\.77\.0\.' <<<"$net1"
assert_true "net2 from kvnet (second bridge) in 10.66.0.0/24" grep -q '^10\.66\.0\.' <<<"$net2"
assert_eq "$(ip -n "$SBX" -d link show net1 | grep -c macvlan)" 1 "net1 is a macvlan"
assert_eq "$(ip -n "$SBX" -4 route show default)" "default via 10.88.0.1 dev eth0 " "the default route is the cluster network's"
assert_true "net1's subnet is routed on net1" sh -c "ip -n $SBX -4 route show 10.77.0.0/24 | grep -q 'dev net1'"
assert_link "$NODE_NS" kvbr1
assert_eq "$(kvctl -o json endpoints | jq length)" 2 "netd serves two endpoints (eth0, net2)"
assert_true "the plugin cached the container" test -s "$CNI_DIR/kvnet-multus/cid-web"

st=$(k get pod web -o json | jq -r '.metadata.annotations["k8s.v1.cni.cncf.io/network-status"]')
assert_eq "$(jq -r '[.[].name] | join(",")' <<<"$st")" "kvtest,default/macnet,default/kvnet2" "network-status names the networks in order"
assert_eq "$(jq -r '[.[].interface] | join(",")' <<<"$st")" "eth0,net1,net2" "network-status interfaces"
assert_eq "$(jq -r '[.[] | .default // false] | join(",")' <<<"$st")" "true,false,false" "only the cluster network is default"
assert_eq "$(jq -r '.[1].ips[0]' <<<"$st")" "${net1%/*}" "net1's IP (without prefix) in network-status"
assert_eq "$(jq -r '.[2].ips[0]' <<<"$st")" "${net2%/*}" "net2's IP in network-status"
assert_eq "$(jq -r '.[0].gateway[0]' <<<"$st")" "10.88.0.1" "the cluster network's default gateway"
assert_eq "$(jq -r '.[1].mac' <<<"$st")" "$(ip -n "$SBX" -j link show net1 | jq -r '.[0].address')" "net1's MAC"

mc CHECK "$KV_TMP/multus.conf" default web
assert_eq "$MC_RC" 0 "CHECK passes for every delegate"

# ---------------------------------------------------------------- Events, as Multus posts them (JSON core v1 Events)
# a child the runtime does not wait for posts them, after the result: they may come a moment later
added_events() { [ "$(k get events --field-selector "involvedObject.name=$1,reason=AddedInterface" -o name | wc -l)" -ge "$2" ]; }
assert_true "the AddedInterface events arrive" wait_until 10 added_events web 3
ev=$(k get events --field-selector involvedObject.name=web -o json)
assert_eq "$(jq -r '[.items[] | select(.reason == "AddedInterface") | .message] | sort | join(";")' <<<"$ev")" \
	"Add eth0 [$eth0] from kvtest;Add net1 [$net1] from default/macnet;Add net2 [$net2] from default/kvnet2" \
	"one AddedInterface event per attached network, with Multus's message"
WEB_UID=$(k get pod web -o jsonpath='{.metadata.uid}')
assert_true "the events are about the pod (kind, namespace, uid), Normal, from component multus" jq -e --arg uid "$WEB_UID" \
	'[.items[] | select(.reason == "AddedInterface")] | length == 3 and all(.involvedObject.kind == "Pod" and
	 .involvedObject.namespace == "default" and .involvedObject.uid == $uid and .type == "Normal" and
	 .source.component == "multus" and .count == 1)' <<<"$ev"
assert_true "kubectl describe pod lists them" sh -c "ip netns exec $NS env KUBECONFIG=$KCFG kubectl describe pod web |
	grep -q 'AddedInterface.*Add net1 \\[${net1}\\] from default/macnet'"

# ---------------------------------------------------------------- the API through netd (apiSocket, netd's multusApi)
metric() { # the sum of a netd metric's samples matching a regex of its labels
	ip netns exec "$NODE_NS" curl -sf http://127.0.0.1:9651/metrics | awk -v re="^$1" '$0 ~ re {s += $NF} END {print s + 0}'
}
KUBE_OK=$(metric 'kvnet_netd_requests_total\{verb="kube",code="0"\}')
assert_true "the ADD's API requests went through netd's kube verb ($KUBE_OK calls)" test "$KUBE_OK" -ge 2
assert_false "kvnet-multus did not fall back to its kubeconfig" grep -q "apiSocket" "$KV_TMP/multus.log"
netd_req() { netd_lines "$NODE_NS" "$@"; }
kreq() { jq -cn --argjson r "$1" '{op: "kube", args: {requests: $r}}'; }
out=$(netd_req "$(kreq '[{"verb":"get","apiVersion":"v1","resource":"pods","namespace":"default","name":"web"},
  {"verb":"get","apiVersion":"k8s.cni.cncf.io/v1","resource":"network-attachment-definitions","namespace":"default","name":"nosuch"}]')" \
	'{"op":"ping"}')
assert_eq "$(head -n 1 <<<"$out" | jq -r '.result.responses[0].object.metadata.uid')" "$WEB_UID" "netd's kube verb reads a pod"
assert_eq "$(head -n 1 <<<"$out" | jq -r '.result.responses[1].error.errno')" 2 "... and answers a missing NAD with ENOENT"
assert_true "a request after a kube call on the same connection is answered after it, in order" \
	jq -e '.ok == true and (.result.responses | not)' <<<"$(sed -n 2p <<<"$out")"
refused() { # WHAT REQUESTS-JSON EXPECTED-MESSAGE-REGEX
	local o
	o=$(netd_req "$(kreq "$2")")
	assert_true "netd's kube verb refuses $1 ($(jq -r .msg <<<"$o"))" jq -e --arg re "$3" '.ok == false and (.msg | test($re))' <<<"$o"
}
refused "a read of secrets" '[{"verb":"get","apiVersion":"v1","resource":"secrets","namespace":"default","name":"x"}]' \
	"get of v1/secrets is not one netd makes"
refused "a pod patch beyond network-status" \
	'[{"verb":"patch","apiVersion":"v1","resource":"pods","namespace":"default","name":"web","body":{"metadata":{"labels":{"a":"b"}}}}]' \
	"may only set metadata.annotations"
refused "a pod delete" '[{"verb":"delete","apiVersion":"v1","resource":"pods","namespace":"default","name":"web"}]' \
	"delete of v1/pods"
refused "an Event about a node" \
	'[{"verb":"create","apiVersion":"v1","resource":"events","namespace":"default","body":{"involvedObject":{"kind":"Node","namespace":"default"}}}]' \
	"must be about a Pod"
refused "a bad namespace" '[{"verb":"get","apiVersion":"v1","resource":"pods","namespace":"../x","name":"web"}]' \
	"'namespace' must be a namespace name"
refused "an unknown key" '[{"verb":"get","apiVersion":"v1","resource":"pods","namespace":"default","name":"web","query":"x"}]' \
	"unknown key 'query'"
refused "an empty list" '[]' "'requests' must be an array of 1..32"
assert_eq "$(k get pod web -o jsonpath='{.metadata.labels}')" "" "the refused patch changed nothing"

# ---------------------------------------------------------------- DEL
k delete pod web >/dev/null
mc DEL "$KV_TMP/multus.conf" default web
assert_eq "$MC_RC" 0 "DEL succeeds with the pod gone (from the cache)"
assert_no_link "$SBX" eth0
assert_no_link "$SBX" net1
assert_no_link "$SBX" net2
assert_eq "$(kvctl -o json endpoints | jq length)" 0 "no netd endpoints after DEL"
assert_false "the plugin's cache file is gone" test -e "$CNI_DIR/kvnet-multus/cid-web"
assert_eq "$(find "$CNI_DIR/results" -type f 2>/dev/null | wc -l)" 0 "node/'s result cache is empty"
assert_eq "$(find "$KV_TMP/host-local" -name '10.*' 2>/dev/null | wc -l)" 0 "host-local released net1's address"
mc DEL "$KV_TMP/multus.conf" default web
assert_eq "$MC_RC" 0 "a second DEL succeeds"

# ---------------------------------------------------------------- apiSocket alone, and netd not there
pod default viasock 'macnet'
multus_conf "$KV_TMP/multus-sockonly.conf" 'del(.kubeconfig)'
mc ADD "$KV_TMP/multus-sockonly.conf" default viasock
assert_eq "$MC_RC" 0 "ADD with apiSocket and no kubeconfig: the pod and NAD read through netd"
assert_eq "$(k get pod viasock -o json | jq -r '.metadata.annotations["k8s.v1.cni.cncf.io/network-status"]' | jq -r '[.[].interface] | join(",")')" \
	"eth0,net1" "... and network-status written through netd"
mc DEL "$KV_TMP/multus-sockonly.conf" default viasock
assert_eq "$MC_RC" 0 "... DEL"
multus_conf "$KV_TMP/multus-nosock.conf" ".apiSocket = \"$KV_TMP/no-netd.sock\""
mc ADD "$KV_TMP/multus-nosock.conf" default viasock cid-nosock
assert_eq "$MC_RC" 0 "ADD with an apiSocket nobody serves falls back to the kubeconfig"
assert_true "... and says so in the log file" grep -q "apiSocket '$KV_TMP/no-netd.sock': netd is not reachable.*the kubeconfig instead" "$KV_TMP/multus.log"
mc DEL "$KV_TMP/multus-nosock.conf" default viasock cid-nosock
multus_conf "$KV_TMP/multus-nothing.conf" ".apiSocket = \"$KV_TMP/no-netd.sock\" | del(.kubeconfig)"
mc ADD "$KV_TMP/multus-nothing.conf" default viasock cid-nothing
assert_eq "$MC_RC" 1 "ADD with an apiSocket nobody serves and no kubeconfig fails"
assert_true "... naming the socket ($(jq -r .msg <<<"$MC_OUT"))" jq -e --arg s "$KV_TMP/no-netd.sock" '.msg | contains($s)' <<<"$MC_OUT"
assert_false "... leaving no interface" link_exists "$SBX" net1
multus_conf "$KV_TMP/multus-badsock.conf" '.apiSocket = "relative.sock"'
mc ADD "$KV_TMP/multus-badsock.conf" default viasock cid-badsock
assert_true "a relative apiSocket is refused naming the key" jq -e '.msg | contains("apiSocket")' <<<"$MC_OUT"
k delete pod viasock >/dev/null

# ---------------------------------------------------------------- the real Multus side by side (when built)
# The same config with "type": "multus", the same NADs and annotation, another pod and sandbox: the same
# interfaces, subnets, default route and result. Its network-status cannot be compared yet: client-go writes
# it with a protobuf body (PUT pods/status), which the embedded API refuses ("malformed JSON"); so the real
# Multus gets the pod's name as a system namespace (it compares K8S_POD_NAME with systemNamespaces) and
# skips network-status.
if MULTUS_BIN=$(peer_path multus 2>/dev/null); then
	MULTUS_BIN=$MULTUS_BIN/multus
	mkns SBX2 sbxm
	jq '.type = "multus" | .cniDir = $c | .systemNamespaces = ["web2"]' --arg c "$KV_TMP/real-multus" \
		"$KV_TMP/multus.conf" >"$KV_TMP/real.conf"
	real_multus() { # CMD: sets REAL_RC, REAL_OUT
		REAL_RC=0
		REAL_OUT=$(ip netns exec "$NODE_NS" env -i PATH="$PATH" CNI_COMMAND="$1" CNI_CONTAINERID=cid-real \
			CNI_NETNS="$(nspath "$SBX2")" CNI_IFNAME=eth0 CNI_PATH="$KV_BIN:$REF_CNI_DIR" \
			CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web2;K8S_POD_UID=$(k get pod web2 -o jsonpath='{.metadata.uid}')" \
			"$MULTUS_BIN" <"$KV_TMP/real.conf" 2>>"$KV_TMP/real.err") || REAL_RC=$?
	}
	real_multus ADD
	[ "$REAL_RC" -eq 0 ] || { echo "$REAL_OUT"; grep -v '^[IE][0-9]' "$KV_TMP/real.err" | tail -n 5; }
	assert_eq "$REAL_RC" 0 "the real Multus v4.2.3 attaches the same annotation"
	assert_eq "$(links "$SBX2")" "eth0 net1 net2 " "the real Multus made the same interfaces"
	assert_eq "$(nets "$SBX2")" "$WEB_NETS" "... on the same subnets"
	assert_eq "$(ip -n "$SBX2" -4 route show default)" "$WEB_DEFAULT" "... with the same default route"
	shape='{cniVersion, ifs: [.interfaces[] | select(.sandbox) | .name], ips: [.ips[] | .address | sub("\\.[0-9]+/"; ".x/")]}'
	assert_eq "$(jq -c "$shape" <<<"$REAL_OUT")" "$(jq -c "$shape" <<<"$WEB_OUT")" "... and the same result"
	real_multus DEL
	assert_eq "$REAL_RC" 0 "the real Multus's DEL"
	assert_eq "$(links "$SBX2")" "" "the real Multus's DEL leaves no interface"
else
	log "the real Multus is not built (make test-deps): side by side skipped"
fi

# ---------------------------------------------------------------- the JSON form: ips, mac, interface, default-route
mc ADD "$KV_TMP/multus.conf" default gw
[ "$MC_RC" -eq 0 ] || echo "$MC_OUT"
assert_eq "$MC_RC" 0 "ADD with ips, mac, interface and default-route (JSON form)"
assert_eq "$(ip4 data1)" "10.55.0.9/24" "the requested IP on the requested interface (static IPAM, ips capability)"
assert_eq "$(ip -n "$SBX" -j link show data1 | jq -r '.[0].address')" "02:00:00:aa:bb:cc" "the requested MAC (mac capability)"
assert_eq "$(ip -n "$SBX" -4 route show default)" "default via 10.55.0.1 dev data1 " \
	"default-route: the only default route is the requested one"
st=$(k get pod gw -o json | jq -r '.metadata.annotations["k8s.v1.cni.cncf.io/network-status"]')
assert_eq "$(jq -c '[.[1].name, .[1].interface, .[1].ips, .[1].mac]' <<<"$st")" \
	'["default/macstatic","data1",["10.55.0.9"],"02:00:00:aa:bb:cc"]' "network-status of the JSON-form network"
mc CHECK "$KV_TMP/multus.conf" default gw
assert_eq "$MC_RC" 0 "CHECK after default-route (kvnet's and macvlan's CHECK do not look at the default route)"
mc DEL "$KV_TMP/multus.conf" default gw
assert_eq "$MC_RC" 0 "DEL of the JSON-form pod"
assert_eq "$(ip -n "$SBX" -o link show | grep -vc ' lo:' || true)" 0 "no interface left after DEL"
assert_eq "$(k get pod gw -o json | jq -r '.metadata.annotations["k8s.v1.cni.cncf.io/network-status"] // "none"')" none \
	"DEL removed network-status from the pod (still there)"

# ---------------------------------------------------------------- mac and ips to a plugin without those capabilities
# kvnet2 declares only portMappings: the requested MAC and IP reach it as CNI_ARGS MAC= and IP=, as Multus passes them
mc ADD "$KV_TMP/multus.conf" default kvreq
[ "$MC_RC" -eq 0 ] || echo "$MC_OUT"
assert_eq "$MC_RC" 0 "ADD of a kvnet network with a requested IP and MAC (JSON form)"
assert_eq "$(ip4 net1)/$(ip -n "$SBX" -j link show net1 | jq -r '.[0].address')" "10.66.0.77/24/02:00:00:66:00:77" \
	"kvnet got the requested IP and MAC through CNI_ARGS (it declares neither capability)"
mc DEL "$KV_TMP/multus.conf" default kvreq
assert_eq "$MC_RC" 0 "DEL of that pod"
for _ in $(seq 1 30); do # netd deletes its links just after answering DEL
	[ "$(ip -n "$SBX" -o link show | grep -vc ' lo:' || true)" = 0 ] && break
	sleep 0.1
done
assert_eq "$(ip -n "$SBX" -o link show | grep -vc ' lo:' || true)" 0 "... nothing left"

# ---------------------------------------------------------------- parallelDelegates: the same pod, every delegate at once
mc ADD "$KV_TMP/multus-par.conf" default web2 cid-par
assert_eq "$MC_RC" 0 "ADD with parallelDelegates"
assert_eq "$(nets "$SBX")" "$WEB_NETS" "parallel: the same interfaces on the same subnets"
assert_eq "$(ip -n "$SBX" -4 route show default)" "$WEB_DEFAULT" "parallel: the same default route"
assert_eq "$(jq -c '[.interfaces[] | select(.sandbox) | .name]' <<<"$MC_OUT")" '["eth0"]' "parallel: the cluster network's result"
st=$(k get pod web2 -o json | jq -r '.metadata.annotations["k8s.v1.cni.cncf.io/network-status"]')
assert_eq "$(jq -r '[.[].interface] | join(",")' <<<"$st")" "eth0,net1,net2" "parallel: network-status in the networks' order"
mc DEL "$KV_TMP/multus-par.conf" default web2 cid-par
assert_eq "$(ip -n "$SBX" -o link show | grep -vc ' lo:' || true)" 0 "parallel: DEL leaves no interface"
assert_eq "$(kvctl -o json endpoints | jq length)" 0 "parallel: no netd endpoint after DEL"
mc ADD "$KV_TMP/multus-par.conf" default ghostly cid-par-ghost
assert_eq "$(jq -r .msg <<<"$MC_OUT" | grep -c "network 'default/ghost' (net2)")" 1 "parallel: a missing plugin names its network"
assert_eq "$(ip -n "$SBX" -o link show | grep -vc ' lo:' || true)" 0 "parallel: the others were rolled back"
assert_eq "$(kvctl -o json endpoints | jq length)" 0 "parallel: no netd endpoint left"
assert_eq "$(find "$CNI_DIR" -type f | wc -l)" 0 "parallel: no cache file left"

assert_nothing_left() { # WHAT
	local n
	n=$(ip -n "$SBX" -o link show | grep -vc ' lo:' || true)
	assert_eq "$n" 0 "$1: no interface left in the sandbox"
	assert_eq "$(kvctl -o json endpoints | jq length)" 0 "$1: no netd endpoint left"
	assert_eq "$(find "$CNI_DIR" -type f 2>/dev/null | wc -l)" 0 "$1: no cache file left"
}

# ---------------------------------------------------------------- auxiliaryCNIChainName: a chain after every network
# Multus's rule: the chain is every *.conf of <directory of clusterNetwork (a path)>/<name>, run after the networks as
# net<N> (here net3), its first plugin given passthru's empty result; here the reference tuning setting sysctls of
# the interfaces the networks made. DEL runs it first (reverse), from the cache.
AUX=$KV_TMP/aux.d
mkdir -p "$AUX/kvchain" "$AUX/kvfail" "$AUX/kvjunk" "$AUX/kvnone"
cp "$CONF_DIR/10-kvtest.conflist" "$AUX/10-kvtest.conflist"
echo '{"cniVersion":"1.0.0","name":"arp","type":"tuning","sysctl":{"net.ipv4.conf.eth0.arp_filter":"1"}}' \
	>"$AUX/kvchain/10-arp.conf"
echo '{"cniVersion":"1.0.0","name":"ign","type":"tuning","sysctl":{"net.ipv4.conf.net1.arp_ignore":"2"}}' \
	>"$AUX/kvchain/20-ignore.conf"
echo '{"type":"tuning","sysctl":{"net.ipv4.conf.net2.arp_ignore":"1"}}' >"$AUX/kvchain/30-not-a-plugin.json"
# IFNAME is the chain's own interface name (net3), which no network made: tuning fails
echo '{"type":"tuning","sysctl":{"net.ipv4.conf.IFNAME.arp_filter":"1"}}' >"$AUX/kvfail/10-ifname.conf"
echo 'not json' >"$AUX/kvjunk/10-junk.conf"
for chain in kvchain kvfail kvjunk kvnone; do
	multus_conf "$KV_TMP/multus-$chain.conf" ".clusterNetwork = \"$AUX/10-kvtest.conflist\" | .auxiliaryCNIChainName = \"$chain\""
done
sysctl_sbx() { ip netns exec "$SBX" sysctl -n "$1"; }
mc ADD "$KV_TMP/multus-kvchain.conf" default web2 cid-aux
assert_eq "$MC_RC" 0 "ADD with an auxiliary chain"
assert_eq "$(sysctl_sbx net.ipv4.conf.eth0.arp_filter),$(sysctl_sbx net.ipv4.conf.net1.arp_ignore)" "1,2" \
	"the chain's two tuning plugins (*.conf, in order) set their sysctls in the sandbox"
assert_eq "$(sysctl_sbx net.ipv4.conf.net2.arp_ignore)" 0 "a .json file of the chain's directory is not part of it"
assert_eq "$(jq -c '[.delegates[] | [.name, .ifname]]' "$CNI_DIR/kvnet-multus/cid-aux")" \
	'[["kvtest","eth0"],["default/macnet","net1"],["default/kvnet2","net2"],["kvchain","net3"]]' \
	"the chain is cached as the last delegate, as net3 (Multus's name for it)"
assert_eq "$(links "$SBX")" "eth0 net1 net2 " "the chain made no interface"
st=$(k get pod web2 -o json | jq -r '.metadata.annotations["k8s.v1.cni.cncf.io/network-status"]')
assert_eq "$(jq -r '[.[].name] | join(",")' <<<"$st")" "kvtest,default/macnet,default/kvnet2" "the chain is not in network-status"
mc CHECK "$KV_TMP/multus-kvchain.conf" default web2 cid-aux
assert_eq "$MC_RC" 0 "CHECK passes, the chain left out (Multus's CHECK never runs it; tuning's would look for net3)"
mc DEL "$KV_TMP/multus-kvchain.conf" default web2 cid-aux
assert_eq "$MC_RC" 0 "DEL with the chain"
assert_eq "$(ip -n "$SBX" -o link show | grep -vc ' lo:' || true)" 0 "chain: DEL leaves no interface"
assert_eq "$(kvctl -o json endpoints | jq length)" 0 "chain: no netd endpoint after DEL"
assert_eq "$(find "$CNI_DIR" -type f | wc -l)" 0 "chain: no cache file (the plugin's, node/'s results) after DEL"
multus_conf "$KV_TMP/multus-kvchain-par.conf" ".clusterNetwork = \"$AUX/10-kvtest.conflist\" | .auxiliaryCNIChainName = \"kvchain\" |
	.parallelDelegates = true"
mc ADD "$KV_TMP/multus-kvchain-par.conf" default web2 cid-aux
assert_eq "$MC_RC,$(sysctl_sbx net.ipv4.conf.net1.arp_ignore)" "0,2" "parallelDelegates: the chain still runs after the networks"
mc DEL "$KV_TMP/multus-kvchain-par.conf" default web2 cid-aux
assert_nothing_left "parallelDelegates with the chain"
mc ADD "$KV_TMP/multus-kvfail.conf" default web2 cid-aux
assert_eq "$MC_RC" 1 "a chain whose plugin fails fails the ADD (Multus: DelegateAdd's error)"
assert_true "... naming the chain and its interface ($(jq -r .msg <<<"$MC_OUT"))" \
	grep -q "network 'kvfail' (net3)" <<<"$(jq -r .msg <<<"$MC_OUT")"
assert_nothing_left "a failing chain"
mc ADD "$KV_TMP/multus-kvjunk.conf" default web2 cid-aux
assert_eq "$(jq -r .code <<<"$MC_OUT")" 7 "a chain file that is not a plugin config: code 7"
assert_true "... naming the file" grep -q "kvjunk/10-junk.conf' is not a JSON object" <<<"$(jq -r .msg <<<"$MC_OUT")"
assert_nothing_left "a chain file that is not JSON"
mc ADD "$KV_TMP/multus-kvnone.conf" default web2 cid-aux
assert_eq "$MC_RC" 0 "an empty chain directory: no chain, as in Multus"
assert_eq "$(jq '.delegates | length' "$CNI_DIR/kvnet-multus/cid-aux")" 3 "... nothing more cached"
mc DEL "$KV_TMP/multus-kvnone.conf" default web2 cid-aux
multus_conf "$KV_TMP/multus-auxname.conf" '.auxiliaryCNIChainName = "kvchain"'
mc ADD "$KV_TMP/multus-auxname.conf" default web2 cid-aux
assert_true "a chain with clusterNetwork not a path: code 7 naming both keys" grep -q \
	"'auxiliaryCNIChainName' needs 'clusterNetwork' to be a path.*got 'kvtest'" <<<"$(jq -r .msg <<<"$MC_OUT")"
multus_conf "$KV_TMP/multus-auxbad.conf" '.auxiliaryCNIChainName = "../etc"'
mc ADD "$KV_TMP/multus-auxbad.conf" default web2 cid-aux
assert_true "an auxiliaryCNIChainName that is no directory name: code 7" grep -q \
	"'auxiliaryCNIChainName' must be .*got '../etc'" <<<"$(jq -r .msg <<<"$MC_OUT")"
assert_nothing_left "bad auxiliaryCNIChainName configs"

# ---------------------------------------------------------------- cni-args merged into args.cni (the static IPAM reads args.cni.ips)
mc ADD "$KV_TMP/multus.conf" default cniargs
assert_eq "$MC_RC" 0 "ADD with cni-args"
assert_eq "$(ip -n "$SBX" -4 -o addr show dev st0 | awk '{print $4}')" "10.56.0.7/24" "cni-args reached the delegate's args.cni (static IPAM)"
mc DEL "$KV_TMP/multus.conf" default cniargs
assert_eq "$(ip -n "$SBX" -o link show | grep -vc ' lo:' || true)" 0 "DEL of the cni-args pod"

# ---------------------------------------------------------------- a network's portMappings reach its plugin (kvnet: nftables)
mc ADD "$KV_TMP/multus.conf" default pm
assert_eq "$MC_RC" 0 "ADD with portMappings on a secondary kvnet network"
assert_true "the port mapping of net1 (kvnet2) is in table inet kvnet" sh -c "ip netns exec $NODE_NS nft list table inet kvnet | grep -q 18080"
mc DEL "$KV_TMP/multus.conf" default pm
assert_false "... and gone after DEL" sh -c "ip netns exec $NODE_NS nft list table inet kvnet 2>/dev/null | grep -q 18080"

# ---------------------------------------------------------------- DEL after the sandbox is gone (kubelet may do that)
mkns SBX3 sbxgone
MC_NETNS=$(nspath "$SBX3") mc ADD "$KV_TMP/multus.conf" default web2 cid-gone
assert_eq "$MC_RC" 0 "ADD into a sandbox that goes away"
ip netns del "$SBX3"
MC_NETNS="" mc DEL "$KV_TMP/multus.conf" default web2 cid-gone
[ "$MC_RC" -eq 0 ] || echo "$MC_OUT"
assert_eq "$MC_RC" 0 "DEL without CNI_NETNS (the sandbox deleted) succeeds"
assert_eq "$(kvctl -o json endpoints | jq length)" 0 "... and netd released the endpoints"
assert_false "... and the cache file is gone" test -e "$CNI_DIR/kvnet-multus/cid-gone"

# ---------------------------------------------------------------- the default-network override
mc ADD "$KV_TMP/multus.conf" default alt
assert_eq "$MC_RC" 0 "ADD with v1.multus-cni.io/default-network"
assert_true "eth0 is the override's macvlan (kube-system/altnet) in 10.44.0.0/24" grep -q '^10\.44\.0\.' <<<"$(ip4 eth0)"
assert_eq "$(ip -n "$SBX" -d link show eth0 | grep -c macvlan)" 1 "eth0 is a macvlan"
assert_eq "$(kvctl -o json endpoints | jq -c '[.[] | .ifname]')" '["net1"]' \
	"netd holds net1 (kvnet2) only: the configured cluster network (kvtest) was not run"
st=$(k get pod alt -o json | jq -r '.metadata.annotations["k8s.v1.cni.cncf.io/network-status"]')
assert_eq "$(jq -c '[.[] | [.name, .interface, (.default // false)]]' <<<"$st")" \
	'[["kube-system/altnet","eth0",true],["default/kvnet2","net1",false]]' "network-status: the override is the default network"
mc DEL "$KV_TMP/multus.conf" default alt
assert_eq "$(ip -n "$SBX" -o link show | grep -vc ' lo:' || true)" 0 "DEL of the override pod leaves no interface"

# ---------------------------------------------------------------- not a pod: the thin plugin's inline delegates only
jq -n --arg cd "$CONF_DIR" --arg cache "$CNI_DIR" --arg bin "$KV_BIN" --slurpfile d "$CONF_DIR/10-kvtest.conflist" \
	'{cniVersion: "1.1.0", name: "multus-cni-network", type: "kvnet-multus", confDir: $cd, cniDir: $cache, binDir: $bin,
	  delegates: $d}' >"$KV_TMP/thin.conf"
mc_raw ADD "$KV_TMP/thin.conf" cid-nopod "IgnoreUnknown=1;SOMETHING=else"
[ "$MC_RC" -eq 0 ] || echo "$MC_OUT"
assert_eq "$MC_RC" 0 "ADD without K8S_POD_* and without a kubeconfig (inline delegates; IgnoreUnknown kept for the extra args)"
assert_true "eth0 from the inline kvnet delegate" grep -q '^10\.88\.0\.' <<<"$(ip4 eth0)"
assert_eq "$(ip -n "$SBX" -o link show | grep -vc ' lo:' || true)" 1 "only eth0 in the sandbox"
mc_raw STATUS "$KV_TMP/thin.conf" "" ""
assert_eq "$MC_RC" 0 "STATUS forwarded to the cluster network (kvnet answers: netd is up)"
jq '.readinessindicatorfile = "/nonexistent/ready"' "$KV_TMP/thin.conf" >"$KV_TMP/thin-notready.conf"
mc_raw STATUS "$KV_TMP/thin-notready.conf" "" ""
assert_eq "$(jq -r .code <<<"$MC_OUT")" 50 "STATUS: 50 while the readinessindicatorfile is missing"
jq '. + {"cni.dev/valid-attachments": [{"containerID": "cid-other", "ifname": "eth0"}]}' "$KV_TMP/thin.conf" >"$KV_TMP/gc.conf"
mc_raw GC "$KV_TMP/gc.conf" "" ""
assert_eq "$MC_RC" 0 "GC succeeds"
assert_eq "$(ip -n "$SBX" -o link show | grep -vc ' lo:' || true)" 0 "GC DELeted the attachment the runtime no longer lists"
assert_eq "$(kvctl -o json endpoints | jq length)" 0 "GC: no netd endpoint left"
assert_eq "$(find "$CNI_DIR" -type f | wc -l)" 0 "GC: no cache file left"
echo '{}' >"$KV_TMP/empty.conf"
mc_raw VERSION "$KV_TMP/empty.conf" "" ""
assert_eq "$(jq -c .supportedVersions <<<"$MC_OUT")" '["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]' "VERSION"

# ---------------------------------------------------------------- bad cases: an error naming the network, nothing left
bad() { # CONF NS POD WHAT CODE PATTERN
	mc ADD "$1" "$2" "$3"
	assert_eq "$MC_RC" 1 "$4: ADD fails"
	assert_eq "$(jq -r .code <<<"$MC_OUT")" "$5" "$4: CNI error code $5"
	assert_true "$4: the message names it ($(jq -r .msg <<<"$MC_OUT"))" grep -q -- "$6" <<<"$(jq -r .msg <<<"$MC_OUT")"
	assert_nothing_left "$4"
}
bad "$KV_TMP/multus.conf" default lost "unknown NAD" 7 "default/nosuch"
assert_true "an unknown NAD: a NoNetworkFound warning about the pod, Multus's message" jq -e '[.items[] |
	select(.reason == "NoNetworkFound" and .type == "Warning" and .involvedObject.name == "lost")] | length == 1 and
	(.[0].message | startswith("cannot find a network-attachment-definition (nosuch) in namespace (default): "))' \
	<<<"$(k get events -o json)"
assert_eq "$(k get events --field-selector involvedObject.name=lost,reason=AddedInterface -o name | wc -l)" 0 \
	"a failed ADD posts no AddedInterface event"
bad "$KV_TMP/multus.conf" default badmac "malformed annotation" 7 "'mac' is not a MAC address: 'zz:11'"
bad "$KV_TMP/multus-iso.conf" other iso "namespace isolation" 7 "network 'default/macnet': namespace isolation"
bad "$KV_TMP/multus.conf" default ghostly "missing delegate plugin" 7 "network 'default/ghost' (net2)"
bad "$KV_TMP/multus.conf" default ecmp "two IPv4 default routes" 7 "network 'default/macstatic': default-route '10.55.0.1'"
assert_eq "$(find "$KV_TMP/host-local" -name '10.*' 2>/dev/null | wc -l)" 0 "net1 added before the missing plugin was rolled back"
assert_true "logFile: a line per call (verbose)" grep -q '\[verbose\] kvnet-multus ADD container cid-web pod default/web: ok' "$KV_TMP/multus.log"
assert_true "logFile: the error of a failed call" grep -q "\[error\] kvnet-multus ADD container cid-lost pod default/lost: code 7: network 'default/nosuch'" "$KV_TMP/multus.log"
pod default stale 'macnet'
mc_raw ADD "$KV_TMP/multus.conf" cid-stale "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=stale;K8S_POD_UID=not-its-uid"
assert_eq "$(jq -r .code <<<"$MC_OUT")" 7 "a K8S_POD_UID that is not the pod's: code 7"
assert_true "... naming both UIDs" grep -q "K8S_POD_UID is 'not-its-uid', the API's pod has" <<<"$(jq -r .msg <<<"$MC_OUT")"
assert_nothing_left "stale pod UID"

# ---------------------------------------------------------------- bad environment and stdin: the spec's codes
MC_NETNS="" mc_raw ADD "$KV_TMP/multus.conf" cid-env "IgnoreUnknown=1"
assert_eq "$(jq -r '.code, .msg' <<<"$MC_OUT" | tr '\n' ' ')" "4 CNI_NETNS is required " "ADD without CNI_NETNS: code 4"
mc_raw ADD "$KV_TMP/multus.conf" cid-env "K8S_POD_NAME=x"
assert_eq "$(jq -r .code <<<"$MC_OUT")" 4 "K8S_POD_NAME without K8S_POD_NAMESPACE: code 4"
echo 'not json' >"$KV_TMP/garbage.conf"
mc_raw ADD "$KV_TMP/garbage.conf" cid-env "IgnoreUnknown=1"
assert_eq "$(jq -r .code <<<"$MC_OUT")" 6 "stdin that is not JSON: code 6"
jq '.cniVersion = "0.2.0"' "$KV_TMP/multus.conf" >"$KV_TMP/old.conf"
mc_raw ADD "$KV_TMP/old.conf" cid-env "IgnoreUnknown=1"
assert_eq "$(jq -r '.code, .cniVersion' <<<"$MC_OUT" | tr '\n' ' ')" "1 1.1.0 " "cniVersion 0.2.0: code 1"
mc_raw CHECK "$KV_TMP/multus.conf" cid-never "IgnoreUnknown=1"
assert_eq "$(jq -r .code <<<"$MC_OUT")" 3 "CHECK of a container never added: code 3"
assert_nothing_left "bad environment"

# ---------------------------------------------------------------- the API gone: ADD fails, DEL proceeds
mc ADD "$KV_TMP/multus.conf" default stale
assert_eq "$MC_RC" 0 "ADD of a pod before the API goes away"
STALE_UID=$(k get pod stale -o jsonpath='{.metadata.uid}')
stop_controller
mc_raw ADD "$KV_TMP/multus.conf" cid-down "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=other;K8S_POD_UID=u"
assert_eq "$(jq -r .code <<<"$MC_OUT")" 11 "ADD with the API unreachable: code 11 (try again later)"
assert_true "... naming the pod" grep -q "pod default/other" <<<"$(jq -r .msg <<<"$MC_OUT")"
mc_raw DEL "$KV_TMP/multus.conf" cid-stale "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=stale;K8S_POD_UID=u"
assert_eq "$MC_RC" 0 "DEL with the API unreachable proceeds from the cache"
assert_nothing_left "DEL without the API"
# an API that comes back while ADD retries (an API server restarting): the ADD succeeds
t0=$(date +%s%3N)
(
	mc_raw ADD "$KV_TMP/multus.conf" cid-back "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=stale;K8S_POD_UID=$STALE_UID"
	echo "$MC_RC $(($(date +%s%3N) - t0))" >"$KV_TMP/back.rc"
) &
back_pid=$!
sleep 2
start_controller
wait "$back_pid"
read -r back_rc back_ms <"$KV_TMP/back.rc"
assert_eq "$back_rc" 0 "ADD while the API restarts: retried until it answers (${back_ms} ms)"
assert_true "... after waiting for it (>= 1.5 s)" test "$back_ms" -ge 1500
mc_raw DEL "$KV_TMP/multus.conf" cid-back "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=stale;K8S_POD_UID=$STALE_UID"
assert_eq "$MC_RC" 0 "... and its DEL"
assert_nothing_left "the ADD retried across an API restart"
stop_controller

# ---------------------------------------------------------------- a delegate's DEL fails (netd down)
jq '.retryDeleteOnError = true' "$KV_TMP/thin.conf" >"$KV_TMP/thin-retry.conf"
mc_raw ADD "$KV_TMP/thin-retry.conf" cid-retry "IgnoreUnknown=1"
assert_eq "$MC_RC" 0 "ADD (inline delegates, retryDeleteOnError)"
netd_term
mc_raw DEL "$KV_TMP/thin-retry.conf" cid-retry "IgnoreUnknown=1"
assert_eq "$MC_RC" 1 "DEL with netd down fails"
assert_true "... naming the network ($(jq -r .msg <<<"$MC_OUT"))" grep -q "network 'kvtest' (eth0)" <<<"$(jq -r .msg <<<"$MC_OUT")"
assert_true "retryDeleteOnError: the cache file stays for the retry" test -s "$CNI_DIR/kvnet-multus/cid-retry"
mc_raw ADD "$KV_TMP/thin.conf" cid-noretry "IgnoreUnknown=1"
assert_eq "$MC_RC" 1 "(ADD with netd down fails and leaves nothing)"
start_netd "$NODE_NS"
mc_raw DEL "$KV_TMP/thin-retry.conf" cid-retry "IgnoreUnknown=1"
assert_eq "$MC_RC" 0 "the retried DEL succeeds once netd is back"
assert_nothing_left "the retried DEL"
mc_raw ADD "$KV_TMP/thin.conf" cid-noretry "IgnoreUnknown=1"
netd_term
mc_raw DEL "$KV_TMP/thin.conf" cid-noretry "IgnoreUnknown=1"
assert_eq "$MC_RC" 1 "without retryDeleteOnError a failed delegate DEL is returned once"
assert_false "... and the cache file goes, as Multus" test -e "$CNI_DIR/kvnet-multus/cid-noretry"
mc_raw DEL "$KV_TMP/thin.conf" cid-noretry "IgnoreUnknown=1"
assert_eq "$MC_RC" 0 "... so that the runtime's retry succeeds"
start_netd "$NODE_NS"
# what Multus's semantics leave behind, cleaned up with node/'s own cache (not kvnet-multus's business)
ip netns exec "$NODE_NS" "$CNICHAIN" del "$CONF_DIR/10-kvtest.conflist" cid-noretry "$(nspath "$SBX")" eth0 \
	--cache-dir "$CNI_DIR" --path "$KV_BIN" >/dev/null

stop_netd
finish
