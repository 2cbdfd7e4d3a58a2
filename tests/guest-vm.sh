# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# The test guest as a KubeVirt VirtualMachine, shared by the integration tests (lib.sh) and the benchmarks
# (tests/bench/migration.sh). Sourced; defines GUEST_REF and guest_vm_yaml.

# GUEST_REF: the test guest as KubeVirt names images, in a local image store (docs/images.md)
GUEST_REF=kvnet.local/demo-guest:latest

# guest_vm_yaml NAME BINDING [MEMORY [MAC]]: a kubevirt.io/v1 VirtualMachine (running) that boots the test guest
# from the store with one interface of BINDING (bridge, masquerade) on the pod network, MEMORY (default 256Mi)
# and, given, a fixed MAC, on stdout.
guest_vm_yaml() {
	local mem=${3:-256Mi} mac=""
	[ -z "${4:-}" ] || mac=", macAddress: \"$4\""
	cat <<EOF
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata: {name: $1}
spec:
  running: true
  template:
    spec:
      terminationGracePeriodSeconds: 4
      domain:
        firmware:
          kernelBoot:
            kernelArgs: console=ttyS0 quiet
            container: {image: $GUEST_REF, kernelPath: /boot/vmlinuz, initrdPath: /boot/initrd.img}
        memory: {guest: $mem}
        resources:
          requests: {memory: $mem}
        devices:
          interfaces:
          - {name: default, $2: {}$mac}
      networks:
      - {name: default, pod: {}}
EOF
}
