#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# deploy/ against the real kube-apiserver + etcd (test peers, lib-kapi.sh) with RBAC authorization:
# - the CRDs in deploy/crds/ are what tests/tools/crdgen makes from the embedded API's tables today (drift);
# - `kubectl apply -R -f deploy/` creates everything in one go; every CRD becomes Established, every object
#   exists; applying again changes nothing;
# - the test guest's VirtualMachine (scripts/lib/guest-vm.sh, the demos' manifest) is accepted by the real
#   server with the generated schema, a wrong type or an unknown field is refused naming the field, a
#   quantity is checked as KubeVirt's CRDs do; kubevirt.io/v1alpha3 is served (deprecated) for the same
#   objects; status subresources and printer columns as KubeVirt's; the NAD, IPAMClaim and NetworkClaim
#   kinds take their objects;
# - RBAC: kubectl auth can-i as each service account, allowed and forbidden, and a real request with
#   kvnet-node's token refused by the server naming verb and resource.
# The Deployment and DaemonSet are only stored (no kubelet, no images here): their fields are checked.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib-kapi.sh"

kv_init
CRDGEN=$KV_BUILD_DIR/tests/crdgen
require_file "$CRDGEN"
require_cmd openssl kubectl
require_peer ETCD etcd
require_peer APISERVER kube-apiserver
# shellcheck disable=SC2034 # read by lib-kapi.sh's kapi_start_apiserver
KAPI_AUTHZ=RBAC
DEPLOY=$KV_ROOT/deploy

# ---------------------------------------------------------------- drift: deploy/crds is what crdgen makes
"$CRDGEN" "$KV_TMP/crds" >/dev/null
assert_true "deploy/crds/ is what tests/tools/crdgen makes now (else: make deploy-crds)" \
	diff -r "$KV_TMP/crds" "$DEPLOY/crds"
assert_eq "$(cd "$DEPLOY/crds" && ls)" "k8s.cni.cncf.io_ipamclaims.yaml
k8s.cni.cncf.io_network-attachment-definitions.yaml
kubevirt.io_virtualmachineinstancemigrations.yaml
kubevirt.io_virtualmachineinstances.yaml
kubevirt.io_virtualmachines.yaml
kvnet.io_networkclaims.yaml" "one CRD file per kind"

ready=0
kapi_up && ready=1
assert_eq "$ready" 1 "kube-apiserver (--authorization-mode=RBAC) + etcd ready in ${READY_S:-?} s"
[ "$ready" = 1 ] || finish

# ---------------------------------------------------------------- kubectl apply -R -f deploy/
out=$(k apply -R -f "$DEPLOY" 2>&1) || fail "kubectl apply -R -f deploy/: $out"
sed 's/^/  /' <<<"$out"
assert_eq "$(grep -c ' created$' <<<"$out")" 21 "kubectl apply -R -f deploy/: 21 objects created in one go"
CRDS="ipamclaims.k8s.cni.cncf.io network-attachment-definitions.k8s.cni.cncf.io
virtualmachineinstancemigrations.kubevirt.io virtualmachineinstances.kubevirt.io virtualmachines.kubevirt.io
networkclaims.kvnet.io"
for c in $CRDS; do
	assert_true "CRD $c Established" k wait --for=condition=Established "crd/$c" --timeout=60s
	assert_eq "$(k get crd "$c" -o jsonpath='{.status.conditions[?(@.type=="NamesAccepted")].status}')" True \
		"... and its names accepted"
done
assert_eq "$(k get crd -l app.kubernetes.io/part-of=kvnet -o name | wc -l)" 6 "the 6 CRDs carry app.kubernetes.io/part-of=kvnet"
assert_true "... so install.md's kubectl wait -l works" k wait --for=condition=Established crd -l app.kubernetes.io/part-of=kvnet --timeout=60s
# every object of every file, read back by kubectl from the files themselves
got=$(k get -R -f "$DEPLOY" -o name 2>&1 | sort | tr '\n' ' ')
assert_eq "$got" "clusterrole.rbac.authorization.k8s.io/kvnet-controller clusterrole.rbac.authorization.k8s.io/kvnet-multus \
clusterrole.rbac.authorization.k8s.io/kvnet-node clusterrolebinding.rbac.authorization.k8s.io/kvnet-controller \
clusterrolebinding.rbac.authorization.k8s.io/kvnet-multus clusterrolebinding.rbac.authorization.k8s.io/kvnet-node \
configmap/kvnet-node-config customresourcedefinition.apiextensions.k8s.io/ipamclaims.k8s.cni.cncf.io \
customresourcedefinition.apiextensions.k8s.io/network-attachment-definitions.k8s.cni.cncf.io \
customresourcedefinition.apiextensions.k8s.io/networkclaims.kvnet.io \
customresourcedefinition.apiextensions.k8s.io/virtualmachineinstancemigrations.kubevirt.io \
customresourcedefinition.apiextensions.k8s.io/virtualmachineinstances.kubevirt.io \
customresourcedefinition.apiextensions.k8s.io/virtualmachines.kubevirt.io daemonset.apps/kvnet-node \
deployment.apps/kvnet-controller namespace/kvnet-system role.rbac.authorization.k8s.io/kvnet-controller-leader-election \
rolebinding.rbac.authorization.k8s.io/kvnet-controller-leader-election secret/kvnet-node-token \
serviceaccount/kvnet-controller serviceaccount/kvnet-node " "every object of deploy/ exists (kubectl get -R -f deploy/)"
out=$(k apply -R -f "$DEPLOY" 2>&1) || fail "second kubectl apply: $out"
assert_eq "$(grep -v '^Warning:' <<<"$out" | grep -vc ' unchanged$' || true)" 0 "kubectl apply -R -f deploy/ again: every object unchanged"

out=$(k apply --server-side --force-conflicts -R -f "$DEPLOY" 2>&1) || fail "kubectl apply --server-side: $out"
assert_eq "$(grep -c ' serverside-applied$' <<<"$out")" 21 "kubectl apply --server-side -R -f deploy/ takes the same 21 objects"

# ---------------------------------------------------------------- the VM manifests, with the generated schema
out=$(k explain vm.spec.template.spec.domain.devices.interfaces.masquerade 2>&1 || true)
assert_true "kubectl explain reads the CRD's descriptions (the embedded API's) ($out)" grep -q 'Masquerade binding: the guest sits behind NAT' <<<"$out"
guest_vm_yaml web bridge "" 4 256Mi 02:00:00:00:00:01 >"$KV_TMP/web.yaml"
guest_vm_yaml db masquerade >"$KV_TMP/db.yaml"
assert_eq "$(k apply -f "$KV_TMP/web.yaml" 2>&1)" "virtualmachine.kubevirt.io/web created" \
	"the demos' VirtualMachine (bridge binding, scripts/lib/guest-vm.sh) accepted by the real API server"
assert_eq "$(k apply -f "$KV_TMP/db.yaml" 2>&1)" "virtualmachine.kubevirt.io/db created" "... and the masquerade one"
assert_eq "$(k get vm web -o jsonpath='{.spec.template.spec.domain.firmware.kernelBoot.container.kernelPath} {.spec.template.spec.domain.memory.guest} {.spec.template.spec.domain.devices.interfaces[0].macAddress}')" \
	"/boot/vmlinuz 256Mi 02:00:00:00:00:01" "... stored with every field (nothing pruned)"
# as virtctl create vm and kubectl create --dry-run -o yaml write it: creationTimestamp null in the template
sed 's/^  template:$/  template:\n    metadata: {creationTimestamp: null, labels: {app: web}}/; s/name: db/name: tmpl/' "$KV_TMP/db.yaml" >"$KV_TMP/tmpl.yaml"
assert_eq "$(k apply -f "$KV_TMP/tmpl.yaml" 2>&1)" "virtualmachine.kubevirt.io/tmpl created" \
	"a VM whose template metadata has creationTimestamp: null (virtctl create vm) accepted"
assert_eq "$(k get vm tmpl -o jsonpath='{.spec.template.metadata.labels.app}')" web "... its template labels kept"
k delete vm tmpl >/dev/null
assert_true "kubectl get vm prints KubeVirt's columns (NAME AGE STATUS READY)" \
	bash -c "ip netns exec $NS kubectl --kubeconfig $KCFG get vm | head -n 1 | grep -Eq '^NAME +AGE +STATUS +READY *$'"

sed 's/runStrategy: Always/runStrategy: Always\n  running: "yes"/' "$KV_TMP/web.yaml" | sed 's/name: web/name: bad1/' >"$KV_TMP/bad1.yaml"
out=$(k apply -f "$KV_TMP/bad1.yaml" 2>&1 || true)
assert_true "a VM with spec.running a string is refused, naming the field ($out)" \
	grep -q 'spec.running: Invalid value: "string": spec.running in body must be of type boolean' <<<"$out"
sed 's/requests: {memory: 256Mi}/requests: {memory: lots}/; s/name: web/name: bad2/' "$KV_TMP/web.yaml" >"$KV_TMP/bad2.yaml"
out=$(k apply -f "$KV_TMP/bad2.yaml" 2>&1 || true)
assert_true "a VM whose memory request is no quantity is refused, naming the field ($out)" \
	grep -q 'spec.template.spec.domain.resources.requests.memory' <<<"$out"
sed 's/bridge: {}/bridge: {}, bogus: 1/; s/name: web/name: bad3/' "$KV_TMP/web.yaml" >"$KV_TMP/bad3.yaml"
out=$(k apply -f "$KV_TMP/bad3.yaml" 2>&1 || true)
assert_true "a VM with an unknown interface field is refused (strict field validation, the schema is closed) ($out)" \
	grep -q 'unknown field "spec.template.spec.domain.devices.interfaces\[0\].bogus"' <<<"$out"
assert_eq "$(k get vm -o name | sort | tr '\n' ' ')" "virtualmachine.kubevirt.io/db virtualmachine.kubevirt.io/web " \
	"... none of the bad ones stored"

# kubevirt.io/v1alpha3: served, deprecated, the same objects
assert_true "kubevirt.io/v1alpha3 is served (kubectl api-versions)" bash -c "ip netns exec $NS kubectl --kubeconfig $KCFG api-versions | grep -qx kubevirt.io/v1alpha3"
assert_eq "$(k get virtualmachines.v1alpha3.kubevirt.io web -o jsonpath='{.apiVersion} {.spec.runStrategy}' 2>/dev/null)" \
	"kubevirt.io/v1alpha3 Always" "the v1 VM read as v1alpha3"
sed 's|apiVersion: kubevirt.io/v1|apiVersion: kubevirt.io/v1alpha3|; s/name: db/name: old/' "$KV_TMP/db.yaml" >"$KV_TMP/old.yaml"
out=$(k apply -f "$KV_TMP/old.yaml" 2>&1)
assert_true "a kubevirt.io/v1alpha3 VM is created, with KubeVirt's deprecation warning ($out)" \
	grep -q 'Warning: kubevirt.io/v1alpha3 is now deprecated' <<<"$out"
assert_eq "$(k get vm.v1.kubevirt.io old -o jsonpath='{.apiVersion}')" kubevirt.io/v1 "... read as v1 (storage version)"

# status subresources: the VM's, VMI's, VMIM's and IPAMClaim's; not the NAD's (as Multus ships it)
assert_eq "$(k get --raw /apis/kubevirt.io/v1/namespaces/default/virtualmachines/web/status | jq -r .metadata.name)" web \
	"virtualmachines/status served"
k patch vm web --subresource=status --type=merge -p '{"status":{"printableStatus":"Running","ready":true}}' >/dev/null
assert_eq "$(k get vm web -o jsonpath='{.status.printableStatus}')" Running "... a status written through it is kept"
k patch vm web --type=merge -p '{"status":{"printableStatus":"Stopped"}}' >/dev/null
assert_eq "$(k get vm web -o jsonpath='{.status.printableStatus}')" Running "... and one written with the object is not"
assert_true "kubectl get vm shows the status columns" bash -c "ip netns exec $NS kubectl --kubeconfig $KCFG get vm web | grep -Eq '^web +[0-9]+s +Running +true'"
cat >"$KV_TMP/vmi.yaml" <<EOF
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstance
metadata: {name: solo}
spec:
  domain:
    devices:
      interfaces: [{name: default, bridge: {}}]
    resources:
      requests: {memory: 64Mi}
  networks: [{name: default, pod: {}}]
---
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstanceMigration
metadata: {name: mig-solo}
spec: {vmiName: solo}
EOF
assert_eq "$(k apply -f "$KV_TMP/vmi.yaml" 2>&1 | tr '\n' ' ')" \
	"virtualmachineinstance.kubevirt.io/solo created virtualmachineinstancemigration.kubevirt.io/mig-solo created " \
	"a VMI and a VMIM created"
k patch vmi solo --subresource=status --type=merge \
	-p '{"status":{"phase":"Running","nodeName":"node1","interfaces":[{"name":"default","ipAddress":"10.88.0.5"}],"conditions":[{"type":"Ready","status":"True"},{"type":"LiveMigratable","status":"True"}]}}' >/dev/null
assert_true "kubectl get vmi -o wide: KubeVirt's columns from the status (PHASE IP NODENAME READY LIVE-MIGRATABLE PAUSED)" \
	bash -c "ip netns exec $NS kubectl --kubeconfig $KCFG get vmi -o wide >$KV_TMP/vmi.table; head -n 1 $KV_TMP/vmi.table | grep -Eq '^NAME +AGE +PHASE +IP +NODENAME +READY +LIVE-MIGRATABLE +PAUSED' && grep -Eq '^solo +[0-9]+s +Running +10.88.0.5 +node1 +True +True' $KV_TMP/vmi.table"
k patch vmim mig-solo --subresource=status --type=merge -p '{"status":{"phase":"Scheduling"}}' >/dev/null
assert_true "kubectl get vmim: PHASE VMI" bash -c "ip netns exec $NS kubectl --kubeconfig $KCFG get vmim | grep -Eq '^mig-solo +Scheduling +solo'"
assert_true "kubectl get vm,vmi,vmim by their short names" k get vms,vmis,vmims
out=$(k get --raw /apis/k8s.cni.cncf.io/v1/namespaces/default/network-attachment-definitions/x/status 2>&1 || true)
assert_true "no status subresource for NADs, as Multus's CRD ($out)" grep -q NotFound <<<"$out"

# NAD, IPAMClaim, NetworkClaim
cat >"$KV_TMP/net.yaml" <<'EOF'
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: blue}
spec:
  config: '{"cniVersion": "1.1.0", "name": "blue", "type": "kvnet", "bridge": "kvbr-blue"}'
---
apiVersion: k8s.cni.cncf.io/v1alpha1
kind: IPAMClaim
metadata: {name: web.blue}
spec: {network: blue, interface: net1}
---
apiVersion: kvnet.io/v1alpha1
kind: NetworkClaim
metadata: {name: blue.default.web}
spec:
  network: blue
  key: default/web/blue
  ips: [10.77.0.5/24]
  mac: 02:00:00:00:00:01
  holder: node1
  attached: true
  target: node2
  targetReady: false
  futureField: {kept: true}
EOF
assert_eq "$(k apply -f "$KV_TMP/net.yaml" 2>&1 | tr '\n' ' ')" "networkattachmentdefinition.k8s.cni.cncf.io/blue created \
ipamclaim.k8s.cni.cncf.io/web.blue created networkclaim.kvnet.io/blue.default.web created " "a NAD, an IPAMClaim and a NetworkClaim created"
assert_eq "$(k get net-attach-def blue -o jsonpath='{.spec.config}' | jq -r .bridge)" kvbr-blue "the NAD's spec.config kept as a string"
# as kvnet-multus writes it (multus-compat/ipamclaim.c)
k patch ipamclaim web.blue --subresource=status --type=merge -p '{"status":{"ips":["10.77.0.5/24"],"ownerPod":"virt-launcher-web-abcde"}}' >/dev/null
out=$(k get ipamclaims -o wide 2>&1)
assert_true "kubectl get ipamclaims -o wide: NETWORK INTERFACE IPS AGE OWNER-POD ($out)" \
	grep -Eq '^web.blue +blue +net1 +.*10.77.0.5/24.* +[0-9]+s +virt-launcher-web-abcde' <<<"$out"
assert_eq "$(k get networkclaim blue.default.web -o jsonpath='{.metadata.namespace}|{.spec.holder} {.spec.attached} {.spec.ips[0]} {.spec.targetReady} {.spec.futureField.kept}')" \
	"|node1 true 10.77.0.5/24 false true" "the NetworkClaim: cluster-scoped, its typed fields and an unknown one kept"
out=$(k patch networkclaim blue.default.web --type=merge -p '{"spec":{"attached":"yes"}}' 2>&1 || true)
assert_true "a NetworkClaim with spec.attached a string is refused ($out)" grep -q 'spec.attached in body must be of type boolean' <<<"$out"
assert_true "kubectl get networkclaims: NETWORK HOLDER ATTACHED" \
	bash -c "ip netns exec $NS kubectl --kubeconfig $KCFG get networkclaims | grep -Eq '^blue.default.web +blue +node1 +true'"

# ---------------------------------------------------------------- the workloads (stored: no kubelet here)
assert_eq "$(k -n kvnet-system get deploy kvnet-controller -o jsonpath='{.spec.replicas} {.spec.template.spec.serviceAccountName} {.spec.template.spec.containers[0].image}')" \
	"2 kvnet-controller ghcr.io/kvnet/kvnet:v0.1.0" "the controller Deployment: 2 replicas, its service account, the placeholder image"
ds=$(k -n kvnet-system get ds kvnet-node -o json)
assert_eq "$(jq -r '.spec.template.spec | [.hostNetwork, .serviceAccountName, ([.containers[].name] | join(",")), ([.initContainers[].name] | join(","))] | join(" ")' <<<"$ds")" \
	"true kvnet-node netd,node install-cni" "the node DaemonSet: host network, kvnet-node, netd + node, the CNI install init container"
assert_eq "$(jq -r '[.spec.template.spec.volumes[] | .hostPath.path // empty] | sort | join(" ")' <<<"$ds")" \
	"/dev/kvm /etc/cni/multus /etc/cni/net.d /opt/cni/bin /run/kvnet /run/netns /sys/fs/bpf /var/lib/cni /var/lib/kvnet" \
	"... its host paths"
assert_eq "$(jq -r '[.spec.template.spec.containers[] | .securityContext.privileged] | join(" ")' <<<"$ds")" "true true" "... privileged netd and node"
cm=$(k -n kvnet-system get configmap kvnet-node-config -o json)
assert_eq "$(jq -r '.data["00-kvnet-multus.conflist"] | fromjson | .plugins[0] | [.type, .clusterNetwork, .kubeconfig] | join(" ")' <<<"$cm")" \
	"kvnet-multus kvnet /etc/cni/net.d/kvnet-multus.d/kvnet-multus.kubeconfig" "the meta plugin's conflist: kvnet-multus, cluster network kvnet"
assert_eq "$(jq -r '.data["kvnet.conflist"] | fromjson | [.name, .plugins[0].type, .plugins[0].binding] | join(" ")' <<<"$cm")" \
	"kvnet kvnet bridge" "the cluster network's conflist: the kvnet plugin, bridge binding"
assert_eq "$(jq -r '.data["netd.json"] | fromjson | .natBackend' <<<"$cm")" nftables "netd's config parses"

# ---------------------------------------------------------------- RBAC
# can SA VERB RESOURCE [ARGS]: kubectl auth can-i as the service account (yes / no)
can() {
	local sa=$1
	shift
	k auth can-i --as="system:serviceaccount:kvnet-system:$sa" "$@" 2>/dev/null || true
}
for c in "list pods -A" "watch pods -A" "patch pods --subresource=status" "watch virtualmachineinstances.kubevirt.io -A" \
	"update virtualmachineinstances.kubevirt.io --subresource=status" "get virtualmachines.kubevirt.io" \
	"create networkclaims.kvnet.io" "update networkclaims.kvnet.io" "delete networkclaims.kvnet.io" \
	"get network-attachment-definitions.k8s.cni.cncf.io" "patch pods" "create events" "get ipamclaims.k8s.cni.cncf.io" \
	"patch ipamclaims.k8s.cni.cncf.io --subresource=status" "patch events"; do
	# shellcheck disable=SC2086 # the words of the case
	assert_eq "$(can kvnet-node $c)" yes "kvnet-node may: $c"
done
for c in "delete pods" "create pods" "update virtualmachineinstances.kubevirt.io" "create virtualmachines.kubevirt.io" \
	"update virtualmachineinstancemigrations.kubevirt.io --subresource=status" "get secrets -n kvnet-system" \
	"update leases.coordination.k8s.io -n kvnet-system" "delete nodes" "update network-attachment-definitions.k8s.cni.cncf.io" \
	"update ipamclaims.k8s.cni.cncf.io"; do
	# shellcheck disable=SC2086
	assert_eq "$(can kvnet-node $c)" no "kvnet-node may not: $c"
done
for c in "create pods" "delete pods" "watch nodes" "create virtualmachineinstances.kubevirt.io" \
	"delete virtualmachineinstances.kubevirt.io" "update virtualmachines.kubevirt.io --subresource=status" \
	"patch virtualmachineinstancemigrations.kubevirt.io --subresource=status" "create ipamclaims.k8s.cni.cncf.io" \
	"list network-attachment-definitions.k8s.cni.cncf.io" "update pods --subresource=status" \
	"create leases.coordination.k8s.io -n kvnet-system" "update leases.coordination.k8s.io/kvnet-controller -n kvnet-system" \
	"create events" "patch events"; do
	# shellcheck disable=SC2086
	assert_eq "$(can kvnet-controller $c)" yes "kvnet-controller may: $c"
done
for c in "update leases.coordination.k8s.io/other -n kvnet-system" "create leases.coordination.k8s.io -n default" \
	"get secrets -n kvnet-system" "delete nodes" "patch pods --subresource=status" "create networkclaims.kvnet.io" \
	"delete virtualmachines.kubevirt.io" "update virtualmachineinstancemigrations.kubevirt.io" "delete events"; do
	# shellcheck disable=SC2086
	assert_eq "$(can kvnet-controller $c)" no "kvnet-controller may not: $c"
done
# a real request with kvnet-node's own token (TokenRequest): allowed, and refused by the server naming verb
# and resource
tok=$(k -n kvnet-system create token kvnet-node --duration=10m)
kapi_kubeconfig "$KV_TMP/node.kubeconfig" --token "$tok"
kn() { ip netns exec "$NS" kubectl --kubeconfig "$KV_TMP/node.kubeconfig" "$@"; }
assert_eq "$(kn auth whoami -o jsonpath='{.status.userInfo.username}' 2>&1)" system:serviceaccount:kvnet-system:kvnet-node \
	"kvnet-node's token authenticates as its service account"
assert_eq "$(kn get networkclaims -o name 2>&1)" networkclaim.kvnet.io/blue.default.web "... lists NetworkClaims"
out=$(kn delete vm web 2>&1 || true)
assert_true "... a delete of a VM is refused by the server: verb and resource named ($out)" \
	grep -q 'cannot delete resource "virtualmachines" in API group "kubevirt.io"' <<<"$out"
assert_eq "$(k get vm web -o name)" virtualmachine.kubevirt.io/web "... and the VM is still there"

# ---------------------------------------------------------------- the DaemonSet's init container, run here
# Its script with the host's and the image's paths moved under a temporary root: the CNI binaries and
# conflists land in the CNI dirs, and the kubeconfig it writes for kvnet-multus (the cluster CA and
# kvnet-node's token, here the test CA and a TokenRequest token) works with kube/ against the real server.
R=$KV_TMP/root
mkdir -p "$R/host/opt/cni/bin" "$R/host/etc/cni/net.d" "$R/host/etc/cni/multus" "$R/img" "$R/token" "$R/cfg"
cp "$KV_BIN/kvnet" "$KV_BIN/kvnet-multus" "$R/img/"
cp "$KAPI_PKI/ca.crt" "$R/token/ca.crt"
printf '%s' "$tok" >"$R/token/token"
for f in 00-kvnet-multus.conflist kvnet.conflist netd.json; do jq -r --arg f "$f" '.data[$f]' <<<"$cm" >"$R/cfg/$f"; done
jq -r '.spec.template.spec.initContainers[0].command[2]' <<<"$ds" |
	sed -e "s|/host/|$R/host/|g" -e "s|/usr/local/libexec/kvnet/|$R/img/|g" -e "s|/run/kvnet-token/|$R/token/|g" \
		-e "s|/etc/kvnet/|$R/cfg/|g" >"$KV_TMP/install-cni.sh"
assert_true "the install-cni script runs" env KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=6443 sh -e "$KV_TMP/install-cni.sh"
assert_eq "$(cd "$R/host" && find . -type f | sort | tr '\n' ' ')" "./etc/cni/multus/net.d/kvnet.conflist ./etc/cni/net.d/00-kvnet-multus.conflist \
./etc/cni/net.d/kvnet-multus.d/ca.crt ./etc/cni/net.d/kvnet-multus.d/kvnet-multus.kubeconfig ./etc/cni/net.d/kvnet-multus.d/token \
./opt/cni/bin/kvnet ./opt/cni/bin/kvnet-multus " "... installs the CNI binaries, both conflists and kvnet-multus's kubeconfig, no temporary file left"
assert_true "... the binaries executable" test -x "$R/host/opt/cni/bin/kvnet" -a -x "$R/host/opt/cni/bin/kvnet-multus"
sed "s|/etc/cni/net.d/|$R/host/etc/cni/net.d/|g" "$R/host/etc/cni/net.d/kvnet-multus.d/kvnet-multus.kubeconfig" >"$KV_TMP/multus.kubeconfig"
KCL=$KV_BUILD_DIR/tests/kubeclient
if [ -x "$KCL" ]; then
	out=$(ip netns exec "$NS" "$KCL" --kubeconfig "$KV_TMP/multus.kubeconfig" get k8s.cni.cncf.io/v1 network-attachment-definitions blue 2>&1 || true)
	assert_eq "$(jq -r .metadata.name <<<"$out" 2>/dev/null)" blue "kvnet-multus's kubeconfig: kube/ reads a NAD as kvnet-node ($out)"
	out=$(ip netns exec "$NS" "$KCL" --kubeconfig "$KV_TMP/multus.kubeconfig" delete k8s.cni.cncf.io/v1 network-attachment-definitions blue 2>&1 || true)
	assert_true "... and may not delete it ($out)" grep -q 'cannot delete resource "network-attachment-definitions"' <<<"$out"
else
	skip_part "kvnet-multus's kubeconfig through kube/: $KCL not built (make test-tools)"
fi
# The installed meta plugin with the installed conflists (paths moved as above, netd's socket too): STATUS
# resolves the cluster network "kvnet" in confDir and asks the kvnet plugin, which answers that netd is not
# there (none runs here).
f=$R/host/etc/cni/multus/net.d/kvnet.conflist
jq --arg s "$KV_TMP/netd.sock" '.plugins[0].socket = $s' "$f" >"$f.new" && mv "$f.new" "$f"
jq --arg r "$R/host" --arg c "$KV_TMP/multus-cache" --arg k "$KV_TMP/multus.kubeconfig" \
	'.plugins[0] + {name, cniVersion, confDir: ($r + "/etc/cni/multus/net.d"), binDir: ($r + "/opt/cni/bin"), cniDir: $c, kubeconfig: $k}' \
	"$R/host/etc/cni/net.d/00-kvnet-multus.conflist" >"$KV_TMP/meta.json"
out=$(ip netns exec "$NS" env CNI_COMMAND=STATUS CNI_PATH="$R/host/opt/cni/bin" "$R/host/opt/cni/bin/kvnet-multus" <"$KV_TMP/meta.json" 2>&1 || true)
assert_eq "$(jq -r '"\(.code) \(.msg)"' <<<"$out" 2>/dev/null)" "50 network 'kvnet': netd is not reachable at '$KV_TMP/netd.sock'" \
	"the installed kvnet-multus: STATUS through the cluster network kvnet to the kvnet plugin ($out)"

# netd with the deployed netd.json (multusApi; its in-cluster credentials replaced by kvnet-node's kubeconfig above):
# its kube verb makes kvnet-multus's requests against the real kube-apiserver with kvnet-node's rights.
jq --arg k "$KV_TMP/multus.kubeconfig" '.multusApi.kubeconfig = $k' "$R/cfg/netd.json" >"$KV_TMP/netd-deploy.json"
start_netd "$NS" --config "$KV_TMP/netd-deploy.json"
out=$(netd_lines "$NS" "$(jq -cn '{op: "kube", args: {requests: [
  {verb: "get", apiVersion: "k8s.cni.cncf.io/v1", resource: "network-attachment-definitions", namespace: "default", name: "blue"},
  {verb: "get", apiVersion: "v1", resource: "pods", namespace: "default", name: "no-such-pod"}]}}')")
assert_eq "$(jq -r '.result.responses[0].object.metadata.name' <<<"$out")" blue \
	"netd's kube verb (deployed multusApi) reads a NAD from kube-apiserver as kvnet-node"
assert_eq "$(jq -r '.result.responses[1].error.errno' <<<"$out")" 2 "... and a pod: 404, not 403 (kvnet-node may read pods)"
stop_netd >/dev/null

finish
