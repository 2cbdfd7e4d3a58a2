#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kvnet on one machine, the whole chain: kubectl → kvnet-controller --embedded --nodes N → one kvnet-node per
# simulated node (scripts/cluster.sh: node namespaces with kvnet-netd on an underlay) → launcher pods (sandbox,
# CNI, a private libvirtd, kvnet-launcher) → VMs. Everything runs in network namespaces of its own (PREFIX-*);
# the host's network is not touched. See docs/node.md ("kvnet-node").
#
#   scripts/kvnet-sim.sh up [--nodes N] [--kubeconfig FILE] [--image-dir DIR] [--name PREFIX] [--dir DIR]
#   scripts/kvnet-sim.sh kubectl [--name PREFIX] [--dir DIR] -- ARGS...
#   scripts/kvnet-sim.sh down [--name PREFIX] [--dir DIR]
#
# up: the cluster (N nodes, default 2), the controller in namespace PREFIX-api (listening on its own
# loopback, 127.0.0.1:6443, state DIR/controller, log DIR/controller.log) writing the kubeconfig (default
# DIR/kubeconfig), and per node I: DIR/nodeI-pods/{conf,cache,state} (the kvnet conflist of the cluster's VM
# network behind kvnet-multus, the node's meta plugin: 00-multus.conf, docs/multus.md; the API forwarded to the
# node's loopback for it), kvnet-node in PREFIX-api's network namespace (log DIR/nodeI-pods/agent.log) with its pods'
# sandboxes named PREFIX-p-nI-*. --image-dir: the nodes' image store (docs/images.md; default the launcher's).
# Writes DIR/sim.env and prints how to use kubectl: the API is on PREFIX-api's loopback, so kubectl runs
# there (`scripts/kvnet-sim.sh kubectl -- get vmis`, or `ip netns exec PREFIX-api kubectl ...`).
# down: deletes the VMs and VMIs through the API and waits (30 s) for the agents to stop their pods, stops the
# agents and the controller, then scripts/cluster.sh down (which kills whatever still runs in the cluster's and
# the pods' namespaces), deletes PREFIX-api and DIR. Without --name/--dir: the only registered simulation.
# PREFIX defaults to kvsim-<random>, DIR to /run/kvnet-sim/PREFIX. Environment: KVNET_BUILD (default build),
# KVNET_SIM_CNI_PATH (more plugin directories on the nodes' CNI path, ':'-joined: NADs of third-party plugins),
# KVNET_SIM_API_NETNS + KVNET_SIM_API_KUBECONFIG (cluster mode: a real kube-apiserver with kvnet's CRDs, listening on
# 127.0.0.1:6443 in that namespace, instead of the embedded API: kvnet-controller --cluster runs against it, and
# Node objects node1..N are registered through it — stand-ins for the kubelets' registrations; the namespace is
# the caller's and stays at down).
# Exit: 0 ok, 1 failure, 2 usage.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh" # BUILD_DIR, BIN, stop_pid
REGISTRY=/run/kvnet-sim
PORT=6443

usage() {
	sed -n '8,10p' "${BASH_SOURCE[0]}" | sed 's/^# *//' >&2
	exit 2
}
die() {
	echo "kvnet-sim: $*" >&2
	exit 1
}

[ $# -ge 1 ] || usage
CMD=$1
shift
NODES=2 KCFG="" IMAGES="" PREFIX="" DIR=""
while [ $# -gt 0 ]; do
	case "$1" in
	--nodes | --kubeconfig | --image-dir)
		[ "$CMD" = up ] && [ $# -ge 2 ] || usage
		case "$1" in
		--nodes) NODES=$2 ;;
		--kubeconfig) KCFG=$2 ;;
		--image-dir) IMAGES=$2 ;;
		esac
		shift 2
		;;
	--name | --dir)
		[ $# -ge 2 ] || usage
		if [ "$1" = --name ]; then PREFIX=$2; else DIR=$2; fi
		shift 2
		;;
	--)
		shift
		break
		;;
	*) usage ;;
	esac
done
case "$NODES" in
'' | *[!0-9]*) die "--nodes must be 1..16, got '$NODES'" ;;
esac
[ "$NODES" -ge 1 ] && [ "$NODES" -le 16 ] || die "--nodes must be 1..16, got '$NODES'"
[ "$(id -u)" = 0 ] || die "needs root (network namespaces)"

# find_sim: PREFIX and DIR of an existing simulation (the only registered one when neither is given)
find_sim() {
	if [ -z "$PREFIX" ] && [ -n "$DIR" ] && [ -f "$DIR/sim.env" ]; then
		PREFIX=$(sed -n 's/^PREFIX=//p' "$DIR/sim.env")
	elif [ -z "$PREFIX" ]; then
		local regs=()
		[ -d "$REGISTRY" ] && mapfile -t regs < <(find "$REGISTRY" -maxdepth 1 -name '*.dir' -printf '%f\n' | sed 's/\.dir$//')
		case ${#regs[@]} in
		0) die "no simulation is registered in $REGISTRY" ;;
		1) PREFIX=${regs[0]} ;;
		*) die "several simulations (${regs[*]}): say which with --name" ;;
		esac
	fi
	[ -n "$DIR" ] || DIR=$(cat "$REGISTRY/$PREFIX.dir" 2>/dev/null || echo "$REGISTRY/$PREFIX")
}

sim_kubectl() (
	# shellcheck disable=SC1091
	source "$DIR/sim.env"
	ip netns exec "$API_NS" env KUBECONFIG="$KUBECONFIG_FILE" kubectl "$@"
)

cmd_up() {
	[ -n "$PREFIX" ] || PREFIX=kvsim-$(printf '%04x' $RANDOM)
	case "$PREFIX" in
	*[!a-z0-9-]* | -* | '') die "--name must be [a-z0-9-]+ (not starting with '-'), got '$PREFIX'" ;;
	esac
	[ ${#PREFIX} -le 20 ] || die "--name must be at most 20 characters, got '$PREFIX'"
	[ -n "$DIR" ] || DIR=$REGISTRY/$PREFIX
	[ -n "$KCFG" ] || KCFG=$DIR/kubeconfig
	for b in kvnet-controller kvnet-node kvnet-launcher kvnet-netd kvnet kvnet-multus; do
		[ -x "$BIN/$b" ] || die "$BIN/$b missing (run make)"
	done
	[ ! -e "$DIR/sim.env" ] || die "a simulation '$PREFIX' is up already ($DIR): scripts/kvnet-sim.sh down --name $PREFIX"
	mkdir -p "$DIR" "$REGISTRY"
	echo "$DIR" >"$REGISTRY/$PREFIX.dir"
	# each node's netd makes kvnet-multus's API requests (multusApi: the kubeconfig written below, read at the first
	# request) for the plugin's apiSocket
	local extra
	extra=$(jq -cn --arg kc "$KCFG" --argjson x "${KVNET_NETD_CONFIG_EXTRA:-{\}}" '{multusApi: {kubeconfig: $kc}} + $x') ||
		die "KVNET_NETD_CONFIG_EXTRA is not a JSON object: $KVNET_NETD_CONFIG_EXTRA"
	KVNET_NETD_CONFIG_EXTRA=$extra KVNET_BUILD=$KVNET_BUILD "$ROOT/scripts/cluster.sh" up "$NODES" --name "$PREFIX" --dir "$DIR/cluster" >"$DIR/cluster.out" 2>&1 ||
		{ cat "$DIR/cluster.out" >&2; die "scripts/cluster.sh up $NODES failed"; }
	local api=$PREFIX-api i sim_dir=$DIR api_owned=1
	# shellcheck disable=SC1091
	source "$DIR/cluster/cluster.env"
	DIR=$sim_dir # cluster.env has its own DIR
	if [ -n "${KVNET_SIM_API_NETNS:-}" ]; then
		# cluster mode: the caller's kube-apiserver
		api=$KVNET_SIM_API_NETNS api_owned=0
		[ -s "${KVNET_SIM_API_KUBECONFIG:-}" ] || die "KVNET_SIM_API_KUBECONFIG must name the API server's kubeconfig"
		cp "$KVNET_SIM_API_KUBECONFIG" "$KCFG"
		ip netns exec "$api" setsid "$BIN/kvnet-controller" --cluster --kubeconfig "$KCFG" \
			>>"$DIR/controller.log" 2>&1 </dev/null &
		echo $! >"$DIR/controller.pid"
		local mem
		mem=$(($(sed -n 's/^MemTotal: *\([0-9]*\) kB/\1/p' /proc/meminfo) / NODES / 1024))Mi
		for i in $(seq 1 "$NODES"); do
			printf '%s\n' "apiVersion: v1" "kind: Node" \
				"metadata: {name: node$i, labels: {kubernetes.io/hostname: node$i, kubernetes.io/os: linux, kubevirt.io/schedulable: \"true\"}}" |
				ip netns exec "$api" env KUBECONFIG="$KCFG" kubectl apply -f - >/dev/null || die "cannot register node$i"
			ip netns exec "$api" env KUBECONFIG="$KCFG" kubectl patch node "node$i" --subresource=status --type=merge -p \
				"{\"status\": {\"capacity\": {\"cpu\": \"2\", \"memory\": \"$mem\", \"pods\": \"110\"},
				  \"allocatable\": {\"cpu\": \"2\", \"memory\": \"$mem\", \"pods\": \"110\"},
				  \"conditions\": [{\"type\": \"Ready\", \"status\": \"True\", \"reason\": \"KubeletReady\",
				  \"message\": \"kvnet-sim stand-in\"}]}}" >/dev/null || die "cannot set node$i's status"
		done
	else
		ip netns add "$api"
		ip -n "$api" link set lo up
		ip netns exec "$api" setsid "$BIN/kvnet-controller" --embedded --listen "127.0.0.1:$PORT" --state-dir "$DIR/controller" \
			--kubeconfig "$KCFG" --nodes "$NODES" >>"$DIR/controller.log" 2>&1 </dev/null &
		echo $! >"$DIR/controller.pid"
		for _ in $(seq 1 100); do
			[ -s "$KCFG" ] && break
			sleep 0.1
		done
		[ -s "$KCFG" ] || die "kvnet-controller did not start (see $DIR/controller.log)"
	fi
	for i in $(seq 1 "$NODES"); do
		local d=$DIR/node$i-pods nsv=NODE${i}_NS sockv=NODE${i}_SOCK
		mkdir -p "$d/conf" "$d/cache" "$d/state" "$d/multus"
		# the migration proxies between the nodes speak mutual TLS (a CA for the simulated cluster, a
		# certificate per node naming its underlay address)
		"$ROOT/scripts/migration-tls.sh" node "$DIR/migration-ca" "$d/tls" "node$i" "${UNDERLAY_SUBNET%.*}.$i" ||
			die "scripts/migration-tls.sh failed"
		# The node reaches the API as a cluster's nodes do (here: its loopback port forwarded into the API's
		# namespace, a stand-in for the cluster network): kvnet-multus runs in the node's namespace.
		ip netns exec "${!nsv}" setsid socat "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork" \
			"EXEC:nsenter --net=/run/netns/$api socat STDIO TCP\:127.0.0.1\:$PORT" >>"$d/api-forward.log" 2>&1 </dev/null &
		echo $! >"$d/api-forward.pid"
		# kvnet-multus is the node's network (lexically first, as Multus installs itself): the cluster network
		# kvsim on eth0 of the pod's sandbox (tap0 for the VM), the pod's networks annotation on net1, net2, ...
		cat >"$d/conf/00-multus.conf" <<EOF
{ "cniVersion": "1.1.0", "name": "multus-cni-network", "type": "kvnet-multus", "kubeconfig": "$KCFG",
  "apiSocket": "${!sockv}", "clusterNetwork": "kvsim", "confDir": "$d/conf", "cniDir": "$d/multus", "binDir": "$BIN",
  "capabilities": { "mac": true } }
EOF
		cat >"$d/conf/10-kvnet.conflist" <<EOF
{ "cniVersion": "1.1.0", "name": "kvsim",
  "plugins": [ { "type": "kvnet", "binding": "bridge", "bridge": "$BRIDGE", "mtu": 1500, "socket": "${!sockv}",
                 "capabilities": { "mac": true },
                 "ipam": { "ranges": [ [ { "subnet": "$VM_SUBNET", "gateway": "$VM_GATEWAY" } ] ],
                           "routes": [ { "dst": "0.0.0.0/0" } ] } } ] }
EOF
		nsenter --net="/run/netns/$api" setsid "$BIN/kvnet-node" --node-name "node$i" --kubeconfig "$KCFG" \
			--node-ip "${UNDERLAY_SUBNET%.*}.$i" --node-netns "/run/netns/${!nsv}" --conf-dir "$d/conf" --cni-path "$BIN${KVNET_SIM_CNI_PATH:+:$KVNET_SIM_CNI_PATH}" \
			--cache-dir "$d/cache" --netd-socket "${!sockv}" --state-dir "$d/state" --launcher "$BIN/kvnet-launcher" \
			--libvirtd-starter "$ROOT/scripts/libvirt-node.sh" --sandbox-prefix "$PREFIX-p-n$i" \
			--migration-max-downtime-ms "${KVNET_SIM_MAX_DOWNTIME_MS:-50}" --migration-tls "$d/tls" \
			${IMAGES:+--image-dir "$IMAGES"} >>"$d/agent.log" 2>&1 </dev/null &
		echo $! >"$d/agent.pid"
	done
	{
		echo "PREFIX=$PREFIX"
		echo "DIR=$DIR"
		echo "NODES=$NODES"
		echo "API_NS=$api"
		echo "API_OWNED=$api_owned"
		echo "KUBECONFIG_FILE=$KCFG"
		echo "CLIENT_NS=$CLIENT_NS"
		for i in $(seq 1 "$NODES"); do
			local nsv=NODE${i}_NS
			echo "NODE${i}_NS=${!nsv}"
		done
	} >"$DIR/sim.env"
	cat "$DIR/sim.env"
	echo "# kubectl: scripts/kvnet-sim.sh kubectl --name $PREFIX -- get vms,vmis,pods -o wide"
	echo "#      or: ip netns exec $api env KUBECONFIG=$KCFG kubectl ..."
	echo "# ping a VM: ip netns exec $CLIENT_NS ping <its IP>"
}


cmd_down() {
	find_sim
	if [ -f "$DIR/sim.env" ] && command -v kubectl >/dev/null; then
		# the agents stop their VMs gracefully once the API has no VMI left
		sim_kubectl delete vms,vmis --all --wait=false >/dev/null 2>&1 || true
		for _ in $(seq 1 300); do
			[ -z "$(find "$DIR" -mindepth 3 -maxdepth 3 -path '*-pods/state/pods/*' 2>/dev/null)" ] && break
			sleep 0.1
		done
	fi
	local f
	for f in "$DIR"/node*-pods/agent.pid "$DIR"/node*-pods/api-forward.pid; do
		[ -e "$f" ] && stop_pid "$f"
	done
	stop_pid "$DIR/controller.pid"
	KVNET_BUILD=$KVNET_BUILD "$ROOT/scripts/cluster.sh" down --name "$PREFIX" --dir "$DIR/cluster" >/dev/null 2>&1 || true
	if [ "$(sed -n 's/^API_OWNED=//p' "$DIR/sim.env" 2>/dev/null)" != 0 ]; then
		ip netns del "$PREFIX-api" 2>/dev/null || true
	fi
	rm -rf "$DIR"
	rm -f "$REGISTRY/$PREFIX.dir"
	echo "kvnet-sim: '$PREFIX' is down"
}

case "$CMD" in
up) cmd_up ;;
down) cmd_down ;;
kubectl)
	find_sim
	sim_kubectl "$@"
	;;
*) usage ;;
esac
