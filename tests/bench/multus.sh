#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Secondary networks: the time to attach a pod's sandbox to the cluster network plus 1 and 4 secondary
# networks (the reference macvlan and bridge, host-local IPAM), ADD and DEL, three ways with the same CNI
# runtime (build/tests/cnichain) in the same run:
#   direct        the delegates called one by one by the runtime (cluster network as eth0, then net1..netK):
#                 the baseline, what a meta plugin adds its cost to
#   multus        the real Multus thin plugin (peer multus v4.2.3) reading the pod and the NADs from
#                 kvnet-controller --embedded and writing network-status back to it
#   kvnet-multus  build/bin/kvnet-multus with the same config, when it is built ("absent" otherwise)
# Rounds interleave the modes (a fresh sandbox netns each time); the table gives the median of the rounds and
# the ratio to the direct baseline. BENCH_QUICK=1: 5 rounds instead of 20 (BENCH_MULTUS_ROUNDS overrides).
# Everything runs in network namespaces this script creates; the controller's state dir is under
# build/bench/ (a real disk: its writes are fsynced, the default). Measures and prints; asserts nothing.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${KVNET_BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
ROUNDS=${BENCH_MULTUS_ROUNDS:-$([ -n "${BENCH_QUICK:-}" ] && echo 5 || echo 20)}
PEERS=${KVNET_CACHE:-/var/cache/kvnet}/peers
ver() { awk -v n="$1" '$1 == n { print $3 }' "$ROOT/tests/peers/versions"; }
MULTUS=$PEERS/multus-$(ver multus)/multus
REF=${REF_CNI_DIR:-$PEERS/cni-plugins-$(ver cni-plugins)}
CNICHAIN=$BUILD/tests/cnichain
CTL=$BUILD/bin/kvnet-controller
KVMULTUS=${KVNET_MULTUS_META:-$BUILD/bin/kvnet-multus}

echo "== Secondary networks: attachment time, cluster network + K secondary networks (tests/bench/multus.sh)"
for f in "$MULTUS" "$CNICHAIN" "$CTL" "$REF/bridge" "$REF/macvlan" "$REF/host-local"; do
	[ -x "$f" ] || { echo "SKIP: $f not built (make test-deps / make all test-tools)"; exit 0; }
done
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (network namespaces)"; exit 0; }

SUF=$(printf '%04x%04x' $RANDOM $RANDOM)
NODE=kvb-mn-$SUF
LAN=kvb-ml-$SUF
mkdir -p "$ROOT/build/bench"
TMP=$(mktemp -d "$ROOT/build/bench/multus.XXXXXX")
CTL_PID=
cleanup() {
	[ -n "$CTL_PID" ] && kill "$CTL_PID" 2>/dev/null && wait "$CTL_PID" 2>/dev/null
	for ns in $(ip netns list | awk '{print $1}' | grep -E -- "-$SUF(-|$)"); do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
		ip netns del "$ns" 2>/dev/null || true
	done
	rm -rf "$TMP" "${CACHE:-}"
}
trap cleanup EXIT
for ns in "$NODE" "$LAN"; do
	ip netns add "$ns"
	ip -n "$ns" link set lo up
done
ip -n "$NODE" link add mvpar type veth peer name mvlan netns "$LAN"
ip -n "$NODE" link set mvpar up
ip -n "$LAN" link set mvlan up

PORT=16443
KCFG=$TMP/kubeconfig
ip netns exec "$NODE" "$CTL" --embedded --listen "127.0.0.1:$PORT" --state-dir "$TMP/state" --kubeconfig "$KCFG" \
	--log-level warning >"$TMP/controller.log" 2>&1 &
CTL_PID=$!
api() { ip netns exec "$NODE" curl -sf -o /dev/null -X "$1" -H 'Content-Type: application/json' "http://127.0.0.1:$PORT$2" "${@:3}"; }
for _ in $(seq 1 100); do api GET /version && break; sleep 0.1; done
api GET /version || { echo "SKIP: kvnet-controller did not start"; tail -5 "$TMP/controller.log"; exit 0; }

BIN=$TMP/bin
HL=$TMP/host-local
# The runtime's cache (cnichain writes it durably, fsynced) and the meta plugins' caches on tmpfs: the direct
# mode runs the runtime K + 1 times, a meta plugin once, and the runtime's own fsyncs are not what is compared.
CACHE=$(mktemp -d /dev/shm/kvnet-bench-multus.XXXXXX)
mkdir -p "$BIN" "$HL" "$TMP/conf"
ln -s "$MULTUS" "$BIN/multus"
for p in bridge macvlan host-local; do ln -s "$REF/$p" "$BIN/$p"; done
MODES=(direct multus kvnet-multus)
HAVE_KV=
if [ -x "$KVMULTUS" ]; then ln -s "$KVMULTUS" "$BIN/kvnet-multus"; HAVE_KV=1; fi

# The networks: the cluster network (a NAD in kube-system for the meta plugins, a conflist for direct) and
# net1..net4, macvlan on mvpar and bridges, alternating; each also as a conflist for direct calls.
netconf() { # NAME INDEX
	local i=$2 ipam="\"ipam\": {\"type\": \"host-local\", \"subnet\": \"10.20.$2.0/24\", \"dataDir\": \"$HL\"}"
	if [ "$i" -eq 0 ]; then
		echo "{\"cniVersion\": \"1.0.0\", \"name\": \"$1\", \"type\": \"bridge\", \"bridge\": \"kvb0\", \"isGateway\": true, $ipam}"
	elif [ $((i % 2)) -eq 1 ]; then
		echo "{\"cniVersion\": \"1.0.0\", \"name\": \"$1\", \"type\": \"macvlan\", \"master\": \"mvpar\", \"mode\": \"bridge\", $ipam}"
	else
		echo "{\"cniVersion\": \"1.0.0\", \"name\": \"$1\", \"type\": \"bridge\", \"bridge\": \"kvb$i\", \"isGateway\": true, $ipam}"
	fi
}
for i in 0 1 2 3 4; do
	name=net$i ns=default
	[ "$i" -eq 0 ] && name=cluster-net ns=kube-system
	conf=$(netconf "$name" "$i")
	jq -n --argjson c "$conf" '{cniVersion: "1.0.0", name: $c.name, plugins: [$c | del(.cniVersion, .name)]}' \
		>"$TMP/conf/$i.conflist"
	api POST "/apis/k8s.cni.cncf.io/v1/namespaces/$ns/network-attachment-definitions" -d "$(jq -n --arg n "$name" \
		--arg ns "$ns" --arg c "$conf" '{apiVersion: "k8s.cni.cncf.io/v1", kind: "NetworkAttachmentDefinition",
		metadata: {name: $n, namespace: $ns}, spec: {config: $c}}')"
done
UIDS=()
for k in 1 4; do
	nets=$(seq -s, 1 "$k" | sed 's/\([0-9]\)/net\1/g')
	api POST /api/v1/namespaces/default/pods -d "$(jq -n --arg n "bench-$k" --arg nets "$nets" '{apiVersion: "v1",
		kind: "Pod", metadata: {name: $n, annotations: {"k8s.v1.cni.cncf.io/networks": $nets}},
		spec: {containers: [{name: "c", image: "none"}]}}')"
	UIDS[$k]=$(ip netns exec "$NODE" curl -sf "http://127.0.0.1:$PORT/api/v1/namespaces/default/pods/bench-$k" | jq -r .metadata.uid)
done
for t in multus kvnet-multus; do
	jq -n --arg type "$t" --arg kcfg "$KCFG" --arg cnidir "$CACHE/$t" --arg bin "$BIN" \
		'{cniVersion: "1.0.0", name: "multus-cni-network",
		  plugins: [{type: $type, kubeconfig: $kcfg, cniDir: $cnidir, binDir: $bin, clusterNetwork: "cluster-net",
		             logLevel: "panic"}]}' >"$TMP/conf/$t.conflist"
done

# The timed part runs inside the node namespace, one bash per measurement: prints "ADD_MS DEL_MS".
cat >"$TMP/attach.sh" <<'EOF'
#!/bin/bash
# attach.sh MODE K NETNS CID UID: ADD then DEL, each timed with bash's clock (no process spawned to read it);
# prints "ADD_MS DEL_MS LINKS", LINKS the sandbox's interfaces after ADD (counted outside the timed parts)
set -eu
mode=$1 k=$2 netns=$3 cid=$4 uid=$5
run() { "$CNICHAIN" "$@" --cache-dir "$CACHE" --path "$BIN" >/dev/null; }
ifn=(eth0 net1 net2 net3 net4)
args="K8S_POD_NAMESPACE=default;K8S_POD_NAME=bench-$k;K8S_POD_INFRA_CONTAINER_ID=$cid;K8S_POD_UID=$uid"
t0=$EPOCHREALTIME
if [ "$mode" = direct ]; then
	for ((i = 0; i <= k; i++)); do
		run add "$TMP/conf/$i.conflist" "$cid" "$netns" "${ifn[$i]}"
	done
else
	run add "$TMP/conf/$mode.conflist" "$cid" "$netns" eth0 --args "$args"
fi
t1=$EPOCHREALTIME
links=$(ip -n "$(basename "$netns")" -o link show | grep -vc ': lo:' || true)
if [ "$mode" = direct ]; then
	for ((i = k; i >= 0; i--)); do
		run del "$TMP/conf/$i.conflist" "$cid" "$netns" "${ifn[$i]}"
	done
else
	run del "$TMP/conf/$mode.conflist" "$cid" "$netns" eth0 --args "$args"
fi
t2=$EPOCHREALTIME
us() { echo "${1/./}"; }
echo "$(( ($(us "$t1") - $(us "$t0")) / 1000 )) $(( ($(us "$t2") - $(us "$t1")) / 1000 )) $links"
EOF
chmod +x "$TMP/attach.sh"

# measure MODE K ROUND: one attachment into a fresh sandbox; appends "ADD DEL" to $TMP/r-MODE-K
measure() {
	local mode=$1 k=$2 sbx=kvb-ms$3-$SUF out
	ip netns add "$sbx"
	out=$(ip netns exec "$NODE" env CNICHAIN="$CNICHAIN" TMP="$TMP" BIN="$BIN" CACHE="$CACHE" \
		"$TMP/attach.sh" "$mode" "$k" "/var/run/netns/$sbx" "c$3$mode$k" "${UIDS[$k]}" 2>"$TMP/err") || {
		echo "$mode K=$k round $3 failed:"
		tail -5 "$TMP/err"
		ip netns del "$sbx"
		return 1
	}
	# a measurement counts when the attachment was whole (K + 1 interfaces after ADD) and DEL emptied it
	local links=${out##* }
	if [ "$links" -ne $((k + 1)) ] || [ "$(ip -n "$sbx" -o link show | grep -vc ': lo:' || true)" -ne 0 ]; then
		echo "$mode K=$k round $3: $links interfaces after ADD (want $((k + 1))) or links left after DEL"
		ip netns del "$sbx"
		return 1
	fi
	ip netns del "$sbx"
	echo "${out% *}" >>"$TMP/r-$mode-$k"
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2] + a[NR/2+1]) / 2)}'; }

for k in 1 4; do
	for _ in 1 2; do # warm-up: page cache, bridges created, the controller's first writes
		measure direct "$k" w >/dev/null
		measure multus "$k" w >/dev/null
		[ -n "$HAVE_KV" ] && measure kvnet-multus "$k" w >/dev/null
	done
	rm -f "$TMP"/r-*-"$k"
	for r in $(seq 1 "$ROUNDS"); do
		measure direct "$k" "$r"
		measure multus "$k" "$r"
		[ -n "$HAVE_KV" ] && measure kvnet-multus "$k" "$r"
	done
done

echo "median of $ROUNDS rounds (ms), cnichain runtime; ratio = mode / direct (the delegates called by the runtime)"
printf '%-9s %-13s %8s %8s %10s %10s\n' secondary mode "ADD med" "DEL med" "ADD ratio" "DEL ratio"
for k in 1 4; do
	base_add=$(cut -d' ' -f1 "$TMP/r-direct-$k" | median)
	base_del=$(cut -d' ' -f2 "$TMP/r-direct-$k" | median)
	for mode in "${MODES[@]}"; do
		if [ ! -s "$TMP/r-$mode-$k" ]; then
			printf '%-9s %-13s %8s %8s %10s %10s\n' "$k" "$mode" absent - - -
			echo "BENCH_MULTUS SECONDARY=$k MODE=$mode ABSENT=1" >>"$TMP/kv"
			continue
		fi
		add=$(cut -d' ' -f1 "$TMP/r-$mode-$k" | median)
		del=$(cut -d' ' -f2 "$TMP/r-$mode-$k" | median)
		ra=$(jq -n "$add / $base_add * 100 | round / 100")
		rd=$(jq -n "$del / $base_del * 100 | round / 100")
		printf '%-9s %-13s %8s %8s %10s %10s\n' "$k" "$mode" "$add" "$del" "$ra" "$rd"
		echo "BENCH_MULTUS SECONDARY=$k MODE=$mode ROUNDS=$ROUNDS ADD_MEDIAN_MS=$add DEL_MEDIAN_MS=$del ADD_RATIO=$ra DEL_RATIO=$rd" >>"$TMP/kv"
	done
done
cat "$TMP/kv"
[ -n "$HAVE_KV" ] || echo "kvnet-multus: absent ($KVMULTUS not built; multus-compat/)"
