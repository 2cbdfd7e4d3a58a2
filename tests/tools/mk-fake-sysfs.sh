#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds a simulated sysfs tree for netd's SR-IOV code (netd/binding/sriov.c), modelled on
# Documentation/ABI/testing/sysfs-bus-pci and sysfs-class-net:
#
#   ROOT/class/net/<pf>/{ifindex, device -> ../../../devices/pci0000:00/<pf-pci>}
#   ROOT/devices/pci0000:00/<pf-pci>/{vendor,device,sriov_totalvfs,sriov_numvfs,driver,virtfnN -> ../<vf-pci>}
#   ROOT/devices/pci0000:00/<vf-pci>/{vendor,device,driver_override,physfn,iommu_group,driver,net/<vf-netdev>/}
#   ROOT/bus/pci/devices/<pci> -> ../../../devices/pci0000:00/<pci>
#   ROOT/bus/pci/drivers/<drv>/{bind,unbind,new_id,remove_id}   (vfio-pci always; PF and VF drivers)
#   ROOT/bus/pci/drivers_probe
#   ROOT/kernel/iommu_groups/<n>/devices/<pci> -> ../../../../devices/pci0000:00/<pci>
#
# Usage: mk-fake-sysfs.sh ROOT PFSPEC...
#   PFSPEC  name,pci,totalvfs,numvfs,vfdriver[,ifindex[,pfdriver]]
#           e.g. ens1f0,0000:3b:00.0,8,4,iavf,10
#           totalvfs "-" makes a PF without SR-IOV (no sriov_* files, no VFs)
#           vfdriver "-" leaves the VFs unbound; "iavf"/"ixgbevf"/... binds them and creates net/<name>v<N>
# VF addresses: same bus as the PF, device 0x02 + 8*pf_function + N/8, function N%8
# (0000:3b:00.0 -> 0000:3b:02.N). driver_override reads "(null)" like an unset kernel attribute.
#
# There is no kernel behind the tree: writes to bind/unbind/drivers_probe only change file contents.
# A test that needs the driver links to move runs a "fake kernel" (tests/unit/test-sriov.c) that
# watches those files with inotify and moves the `driver` symlinks.
set -euo pipefail

if [ $# -lt 1 ]; then
	echo "usage: $0 ROOT PFSPEC..." >&2
	exit 2
fi
ROOT=$1
shift
mkdir -p "$ROOT"/{class/net,devices/pci0000:00,bus/pci/devices,bus/pci/drivers,kernel/iommu_groups}
: >"$ROOT/bus/pci/drivers_probe"
[ -f "$ROOT/.next_iommu_group" ] || echo 10 >"$ROOT/.next_iommu_group"

mkdriver() {
	local d="$ROOT/bus/pci/drivers/$1"
	mkdir -p "$d"
	for f in bind unbind new_id remove_id; do [ -e "$d/$f" ] || : >"$d/$f"; done
}
mkdriver vfio-pci

# pci_dev NAME VENDOR DEVICE -> creates the device directory, bus link and iommu group
pci_dev() {
	local pci=$1 vendor=$2 device=$3
	local dir="$ROOT/devices/pci0000:00/$pci"
	mkdir -p "$dir"
	echo "$vendor" >"$dir/vendor"
	echo "$device" >"$dir/device"
	echo "0x020000" >"$dir/class"
	echo "(null)" >"$dir/driver_override"
	ln -sfn "../../../devices/pci0000:00/$pci" "$ROOT/bus/pci/devices/$pci"
	local g
	g=$(cat "$ROOT/.next_iommu_group")
	echo $((g + 1)) >"$ROOT/.next_iommu_group"
	mkdir -p "$ROOT/kernel/iommu_groups/$g/devices"
	ln -sfn "../../../../devices/pci0000:00/$pci" "$ROOT/kernel/iommu_groups/$g/devices/$pci"
	ln -sfn "../../../kernel/iommu_groups/$g" "$dir/iommu_group"
}

bind_link() { # pci driver
	mkdriver "$2"
	ln -sfn "../../../bus/pci/drivers/$2" "$ROOT/devices/pci0000:00/$1/driver"
}

next_ifindex=100
for spec in "$@"; do
	IFS=, read -r name pci total numvfs vfdrv ifindex pfdrv <<<"$spec"
	ifindex=${ifindex:-$next_ifindex}
	next_ifindex=$((ifindex + 1))
	pfdrv=${pfdrv:-i40e}
	if ! [[ $pci =~ ^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$ ]]; then
		echo "$0: bad PCI address '$pci' in '$spec'" >&2
		exit 2
	fi
	dom=${BASH_REMATCH[1]} bus=${BASH_REMATCH[2]} fn=${BASH_REMATCH[4]}
	pci_dev "$pci" 0x8086 0x1572
	bind_link "$pci" "$pfdrv"
	pfdir="$ROOT/devices/pci0000:00/$pci"
	mkdir -p "$ROOT/class/net/$name" "$pfdir/net/$name"
	echo "$ifindex" >"$ROOT/class/net/$name/ifindex"
	ln -sfn "../../../devices/pci0000:00/$pci" "$ROOT/class/net/$name/device"
	[ "$total" = "-" ] && continue
	echo "$total" >"$pfdir/sriov_totalvfs"
	echo "$numvfs" >"$pfdir/sriov_numvfs"
	echo 0x154c >"$pfdir/sriov_vf_device"
	for ((i = 0; i < numvfs; i++)); do
		dev=$((2 + 8 * fn + i / 8))
		vf=$(printf '%s:%s:%02x.%x' "$dom" "$bus" "$dev" $((i % 8)))
		pci_dev "$vf" 0x8086 0x154c
		vfdir="$ROOT/devices/pci0000:00/$vf"
		ln -sfn "../$pci" "$vfdir/physfn"
		ln -sfn "../$vf" "$pfdir/virtfn$i"
		# What the fake kernel binds on drivers_probe without an override (the id table match).
		if [ "$vfdrv" != "-" ]; then
			echo "$vfdrv" >"$vfdir/.default_driver"
			bind_link "$vf" "$vfdrv"
			mkdir -p "$vfdir/net/${name}v$i"
			echo "${name}v$i" >"$vfdir/.netdev"
		fi
	done
done
