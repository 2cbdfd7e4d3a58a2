# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Helpers of the kvnet-multus test and bench, sourced after lib.sh and lib-controller.sh (the controller started):
#   multus_node        the node is the embedded API's namespace (the plugins reach the API on its loopback):
#                      NODE_NS, a veth kvmac0/kvmac1 there for macvlan, netd (its multusApi on $KCFG: the `kube`
#                      verb of a conf with apiSocket $NETD_SOCK; metrics on 127.0.0.1:9651), a sandbox SBX, and CONF_DIR with the cluster
#                      network's conflist (kvtest, kvnet-basic.conflist)
#   nad NAME NS CONFIG a NetworkAttachmentDefinition applied with kubectl (CONFIG: the CNI config, JSON)
#   pod NS NAME NETS   a Pod whose k8s.v1.cni.cncf.io/networks annotation is NETS
#   multus_conf FILE [JQ]  kvnet-multus's config (clusterNetwork kvtest, cache in $CNI_DIR, the API through netd's
#                      socket with the kubeconfig as the fallback), JQ applied to it
#   mc_raw CMD CONF CID CNI_ARGS / mc CMD CONF POD_NS POD_NAME [CID]   the plugin run as a runtime runs it

multus_node() {
	NODE_NS=$NS
	ip netns exec "$NODE_NS" sysctl -qw net.ipv4.ip_forward=1
	ip -n "$NODE_NS" link add kvmac0 type veth peer name kvmac1
	ip -n "$NODE_NS" link set kvmac1 up
	ip -n "$NODE_NS" link set kvmac0 up
	jq -n --arg kc "$KCFG" '{multusApi: {kubeconfig: $kc}, metricsListen: "127.0.0.1:9651"}' >"$KV_TMP/netd-multus.json"
	start_netd "$NODE_NS" --config "$KV_TMP/netd-multus.json"
	mkns SBX sbx
	CONF_DIR=$KV_TMP/net.d
	mkdir -p "$CONF_DIR"
	cp "$(render_conf kvnet-basic.conflist 1.1.0)" "$CONF_DIR/10-kvtest.conflist"
}

nad() {
	k apply -f - >/dev/null <<EOT
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: $1, namespace: $2}
spec:
  config: '$(jq -c . <<<"$3")'
EOT
}

pod() {
	k apply -f - >/dev/null <<EOT
apiVersion: v1
kind: Pod
metadata:
  name: $2
  namespace: $1
  annotations:
    k8s.v1.cni.cncf.io/networks: '$3'
spec:
  containers: [{name: c, image: busybox}]
EOT
}

# shellcheck disable=SC2153 # CNI_DIR: the cache directory, set by the test
multus_conf() { # FILE [extra jq filter]
	jq -n --arg kc "$KCFG" --arg cd "$CONF_DIR" --arg cache "$CNI_DIR" --arg bin "$KV_BIN" --arg log "$KV_TMP/multus.log" \
		--arg sock "$NETD_SOCK" \
		'{cniVersion: "1.0.0", name: "multus-cni-network", type: "kvnet-multus", kubeconfig: $kc, apiSocket: $sock,
		  clusterNetwork: "kvtest", confDir: $cd, cniDir: $cache, binDir: $bin, logLevel: "verbose", logFile: $log}' |
		jq "${2:-.}" >"$1"
}

# mc_raw CMD CONF CID CNI_ARGS: the plugin as a runtime runs it, in the node namespace (CNI_NETNS: $MC_NETNS if set,
# else the sandbox; KVNET_MULTUS_INTERFACE=$MC_IFACE when MC_IFACE is set). Sets MC_RC, MC_OUT.
mc_raw() {
	local extra=()
	[ -z "${MC_IFACE+set}" ] || extra=(KVNET_MULTUS_INTERFACE="$MC_IFACE")
	MC_RC=0
	MC_OUT=$(ip netns exec "$NODE_NS" env -i PATH="$PATH" ASAN_OPTIONS="$ASAN_OPTIONS" UBSAN_OPTIONS="$UBSAN_OPTIONS" \
		CNI_COMMAND="$1" CNI_CONTAINERID="$3" CNI_NETNS="${MC_NETNS-$(nspath "$SBX")}" CNI_IFNAME=eth0 \
		CNI_PATH="$REF_CNI_DIR" CNI_ARGS="$4" "${extra[@]}" "$KV_BIN/kvnet-multus" <"$2" 2>"$KV_TMP/mc.err") || MC_RC=$?
	# a plugin fails with 1 and its error object; anything else (a crash, a sanitizer report) is shown
	if [ "$MC_RC" -ne 0 ] && { [ "$MC_RC" -ne 1 ] || [ -z "$MC_OUT" ]; }; then
		head -n 40 "$KV_TMP/mc.err"
	fi
}
# mc CMD CONF POD_NS POD_NAME [CID]: the same for a pod (its uid from the API).
mc() {
	local uid
	uid=$(k get pod -n "$3" "$4" -o jsonpath='{.metadata.uid}' 2>/dev/null || echo gone)
	mc_raw "$1" "$2" "${5:-cid-$4}" "IgnoreUnknown=1;K8S_POD_NAMESPACE=$3;K8S_POD_NAME=$4;K8S_POD_UID=$uid"
}
