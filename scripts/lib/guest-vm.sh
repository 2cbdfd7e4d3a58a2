# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# The test guest as a kubevirt.io/v1 VirtualMachine, shared by the demos (scripts/lib/demo-sim.sh) and the
# integration tests (tests/integration/lib.sh).

# The test guest as KubeVirt names images: kvnet.local/demo-guest:latest in a local image store (docs/images.md);
# a VMI boots it with kernelBoot.container {image: $GUEST_REF, kernelPath: /boot/vmlinuz, initrdPath:
# /boot/initrd.img} and the launcher (or kvnet-node) gets the store's --image-dir.
GUEST_REF=kvnet.local/demo-guest:latest

# guest_vm_yaml NAME BINDING [KERNEL-ARGS [GRACE-SECONDS [MEMORY [MAC]]]]: a kubevirt.io/v1 VirtualMachine
# (runStrategy Always) that boots the test guest from the store with one interface of BINDING (bridge, masquerade)
# on the pod network, on stdout. KERNEL-ARGS go after "console=ttyS0 quiet" (e.g. kvnet.connect=HOST:PORT,
# scripts/guest/init); GRACE-SECONDS: terminationGracePeriodSeconds (default 4); MEMORY: the guest's and its
# request (default 256Mi); MAC: a fixed macAddress of the interface.
guest_vm_yaml() {
	local mem=${5:-256Mi} mac=""
	[ -z "${6:-}" ] || mac=", macAddress: \"$6\""
	cat <<YAML
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata: {name: $1}
spec:
  runStrategy: Always
  template:
    spec:
      terminationGracePeriodSeconds: ${4:-4}
      domain:
        firmware:
          kernelBoot:
            kernelArgs: "console=ttyS0 quiet${3:+ $3}"
            container: {image: $GUEST_REF, kernelPath: /boot/vmlinuz, initrdPath: /boot/initrd.img}
        memory: {guest: $mem}
        resources:
          requests: {memory: $mem}
        devices:
          interfaces:
          - {name: default, $2: {}$mac}
      networks:
      - {name: default, pod: {}}
YAML
}
