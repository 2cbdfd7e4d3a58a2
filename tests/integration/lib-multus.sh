# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Helpers of the kvnet-multus test and bench, sourced after lib.sh and lib-controller.sh (the controller started):
#   multus_node        the node is the embedded API's namespace (the plugins reach the API on its loopback):
#                      NODE_NS, a veth kvmac0/kvmac1 there for macvlan, netd, a sandbox SBX, and CONF_DIR with the
#                      cluster network's conflist (kvtest, kvnet-basic.conflist)
#   nad NAME NS CONFIG a NetworkAttachmentDefinition applied with kubectl (CONFIG: the CNI config, JSON)
#   pod NS NAME NETS   a Pod whose k8s.v1.cni.cncf.io/networks annotation is NETS

multus_node() {
	NODE_NS=$NS
	ip netns exec "$NODE_NS" sysctl -qw net.ipv4.ip_forward=1
	ip -n "$NODE_NS" link add kvmac0 type veth peer name kvmac1
	ip -n "$NODE_NS" link set kvmac1 up
	ip -n "$NODE_NS" link set kvmac0 up
	start_netd "$NODE_NS"
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
