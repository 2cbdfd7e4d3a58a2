#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds kvnet's small test guest (a Debian cloud kernel + a busybox initramfs) from Debian packages.
#
#   scripts/guest-image.sh [--cache DIR] [--force] [--kernel-deb FILE] [--quiet]
#
#   --cache DIR       output directory (default ${KVNET_CACHE:-/var/cache/kvnet}/guest); never the repo
#   --force           rebuild even when DIR/VERSION says the inputs did not change
#   --kernel-deb FILE use this linux-image-*-cloud-amd64 .deb instead of downloading one (offline builds)
#   --quiet           only print the KEY=VALUE result lines
#
# Output: DIR/vmlinuz, DIR/initrd.img (cpio newc, gzip), DIR/VERSION (kernel version, packages and a
# sha256 over every input, so that an unchanged rebuild is a no-op). Prints
#   KVNET_GUEST_KERNEL=DIR/vmlinuz
#   KVNET_GUEST_INITRD=DIR/initrd.img
#   KVNET_GUEST_VERSION=<kernel version>
# The kernel is never installed on the host: `apt-get download` + `dpkg-deb -x` into a temp dir.
# busybox comes from busybox-static (installed with apt-get when missing); the DHCPv6 client is dhcpcd
# from dhcpcd-base (`apt-get download`, copied with the shared libraries ldd lists). See
# docs/guest-image.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
GUEST_SRC=$ROOT/scripts/guest
META_PKG=linux-image-cloud-amd64
# Modules the guest needs; their dependencies are added from the modules' own modinfo.
# virtio_pci + virtio_net: the NICs; button + evdev: the ACPI power button (busybox acpid reads
# /dev/input/event*); af_packet (udhcpc's raw socket) and ipv6 only matter when they are modular.
WANT_MODULES=(virtio_pci virtio_net button evdev af_packet ipv6)
REQUIRED_MODULES=(virtio_pci virtio_net)
# Loaded by /init while DHCP runs (they must not delay the network): virtio_blk + isofs for the
# cloud-init NoCloud seed disk (an ISO 9660 volume labelled cidata) and emptyDisks.
LATE_MODULES=(virtio_blk isofs)
# The guest's DHCPv6 client (busybox 1.35 in Debian has no udhcpc6). Bump IMAGE_FORMAT when the
# layout of the image changes in a way the inputs below do not capture.
DHCP6_PKG=dhcpcd-base
IMAGE_FORMAT=2

CACHE_DIR=""
FORCE=0
KERNEL_DEB=""
QUIET=0

usage() {
	local out=1
	[ "${1:-0}" = 0 ] || out=2
	sed -n '3,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//' >&$out
	exit "${1:-0}"
}

say() { [ "$QUIET" = 1 ] || echo "guest-image: $*" >&2; }
die() {
	echo "guest-image: error: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case "$1" in
	--cache)
		[ $# -ge 2 ] || die "--cache needs a directory"
		CACHE_DIR=$2
		shift 2
		;;
	--cache=*)
		CACHE_DIR=${1#--cache=}
		shift
		;;
	--force)
		FORCE=1
		shift
		;;
	--kernel-deb)
		[ $# -ge 2 ] || die "--kernel-deb needs a file"
		KERNEL_DEB=$2
		shift 2
		;;
	--quiet | -q)
		QUIET=1
		shift
		;;
	-h | --help) usage 0 ;;
	*)
		echo "guest-image: unknown argument '$1'" >&2
		usage 2
		;;
	esac
done

[ -n "$CACHE_DIR" ] || CACHE_DIR=${KVNET_CACHE:-/var/cache/kvnet}/guest
CACHE_DIR=$(realpath -m "$CACHE_DIR")
case "$CACHE_DIR/" in
"$(realpath "$ROOT")"/*) die "cache directory '$CACHE_DIR' is inside the repository; pick one outside $ROOT" ;;
esac
mkdir -p "$CACHE_DIR" || die "cannot create cache directory '$CACHE_DIR'"
[ -f "$GUEST_SRC/init" ] || die "missing $GUEST_SRC/init"
if [ -n "$KERNEL_DEB" ]; then
	[ -f "$KERNEL_DEB" ] || die "--kernel-deb: '$KERNEL_DEB' does not exist"
	KERNEL_DEB=$(cd "$(dirname "$KERNEL_DEB")" && pwd)/$(basename "$KERNEL_DEB")
fi

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

# One build at a time per cache directory (tests may run concurrently).
exec 9>"$CACHE_DIR/.lock"
flock 9

# ---------------------------------------------------------------- busybox

pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }

ensure_busybox() {
	local st
	st=$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null || true)
	if [ "$st" != "install ok installed" ]; then
		say "installing busybox-static with apt-get"
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends busybox-static >&2 ||
			die "apt-get install busybox-static failed"
	fi
	BUSYBOX=$(dpkg -L busybox-static | grep -E '/s?bin/busybox$' | head -n 1)
	[ -x "$BUSYBOX" ] || die "busybox-static installed but its binary was not found"
	if ldd "$BUSYBOX" >/dev/null 2>&1; then
		die "$BUSYBOX is dynamically linked; the guest needs the static busybox (package busybox-static)"
	fi
	BUSYBOX_VERSION=$(pkg_version busybox-static)
}

# ---------------------------------------------------------------- DHCPv6 client (dhcpcd)

# Sets DHCP6_VERSION (the candidate apt would download) without downloading anything.
resolve_dhcp6_pkg() {
	DHCP6_VERSION=$(apt-cache show --no-all-versions "$DHCP6_PKG" 2>/dev/null | sed -n 's/^Version: //p' | head -n 1)
	if [ -z "$DHCP6_VERSION" ]; then
		say "apt-cache knows no $DHCP6_PKG; running apt-get update"
		$SUDO apt-get update -q >&2 || die "apt-get update failed"
		DHCP6_VERSION=$(apt-cache show --no-all-versions "$DHCP6_PKG" 2>/dev/null | sed -n 's/^Version: //p' | head -n 1)
	fi
	[ -n "$DHCP6_VERSION" ] || die "cannot resolve $DHCP6_PKG (no such package in the apt sources)"
	LIBC_VERSION=$(pkg_version libc6)
}

# ---------------------------------------------------------------- kernel package resolution

# Sets KPKG (versioned package name) and KPKG_VERSION without downloading anything when possible.
resolve_kernel_pkg() {
	if [ -n "$KERNEL_DEB" ]; then
		KPKG=$(dpkg-deb -f "$KERNEL_DEB" Package)
		KPKG_VERSION=$(dpkg-deb -f "$KERNEL_DEB" Version)
		return 0
	fi
	local dep
	dep=$(apt-cache show --no-all-versions "$META_PKG" 2>/dev/null | sed -n 's/^Depends: //p' | head -n 1)
	if [ -z "$dep" ]; then
		say "apt-cache knows no $META_PKG; running apt-get update"
		$SUDO apt-get update -q >&2 || die "apt-get update failed"
		dep=$(apt-cache show --no-all-versions "$META_PKG" 2>/dev/null | sed -n 's/^Depends: //p' | head -n 1)
	fi
	[ -n "$dep" ] || die "cannot resolve $META_PKG (no such package in the apt sources)"
	parse_depends "$dep"
}

# parse_depends "linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2), ..." -> KPKG, KPKG_VERSION
parse_depends() {
	local first=${1%%,*}
	first=${first%%|*}
	KPKG=$(echo "$first" | awk '{print $1}')
	KPKG_VERSION=$(echo "$first" | sed -n 's/.*(= *\([^)]*\)).*/\1/p')
	case "$KPKG" in
	linux-image-*) ;;
	*) die "$META_PKG depends on '$KPKG', expected a linux-image-* package" ;;
	esac
}

apt_download() { # apt_download DIR PKG[=VER]
	if [ "$QUIET" = 1 ]; then
		(cd "$1" && apt-get download -q "$2" >/dev/null 2>&1) || true
	else
		(cd "$1" && apt-get download -q "$2" 2>&1 | grep -v 'unsandboxed' >&2) || true
	fi
}

# Downloads the meta package, follows its Depends and downloads the real kernel package into $1.
download_kernel() {
	local dir=$1 meta deb
	apt_download "$dir" "$META_PKG"
	meta=$(ls "$dir"/"$META_PKG"_*.deb 2>/dev/null | head -n 1)
	[ -n "$meta" ] || die "apt-get download $META_PKG failed"
	parse_depends "$(dpkg-deb -f "$meta" Depends)"
	if [ -n "$KPKG_VERSION" ]; then
		apt_download "$dir" "$KPKG=$KPKG_VERSION"
	else
		apt_download "$dir" "$KPKG"
	fi
	deb=$(ls "$dir"/"$KPKG"_*.deb 2>/dev/null | head -n 1)
	[ -n "$deb" ] || die "apt-get download $KPKG failed"
	KERNEL_DEB=$deb
	KPKG_VERSION=$(dpkg-deb -f "$deb" Version)
}

# ---------------------------------------------------------------- inputs hash

inputs_hash() {
	{
		echo "kernel=$KPKG=$KPKG_VERSION"
		echo "busybox=$BUSYBOX_VERSION"
		echo "modules=${WANT_MODULES[*]} late=${LATE_MODULES[*]}"
		echo "dhcp6=$DHCP6_PKG=$DHCP6_VERSION libc6=$LIBC_VERSION format=$IMAGE_FORMAT"
		sha256sum "$0" | awk '{print $1}'
		(cd "$GUEST_SRC" && find . -type f | LC_ALL=C sort | xargs sha256sum)
		(cd "$GUEST_SRC" && find . -type f -perm -u+x | LC_ALL=C sort)
	} | sha256sum | awk '{print $1}'
}

print_result() {
	echo "KVNET_GUEST_KERNEL=$CACHE_DIR/vmlinuz"
	echo "KVNET_GUEST_INITRD=$CACHE_DIR/initrd.img"
	echo "KVNET_GUEST_VERSION=$(sed -n 's/^KERNEL_VERSION=//p' "$CACHE_DIR/VERSION")"
}

ensure_busybox
resolve_kernel_pkg
resolve_dhcp6_pkg
HASH=$(inputs_hash)
if [ "$FORCE" = 0 ] && [ -s "$CACHE_DIR/vmlinuz" ] && [ -s "$CACHE_DIR/initrd.img" ] &&
	grep -qx "INPUTS_SHA256=$HASH" "$CACHE_DIR/VERSION" 2>/dev/null; then
	say "up to date ($KPKG $KPKG_VERSION, inputs $HASH)"
	print_result
	exit 0
fi

# ---------------------------------------------------------------- build

WORK=$(mktemp -d /tmp/kvnet-guest.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"

if [ -z "$KERNEL_DEB" ]; then
	mkdir -p "$WORK/debs"
	say "downloading $META_PKG and $KPKG $KPKG_VERSION"
	download_kernel "$WORK/debs"
fi
mkdir -p "$WORK/debs"
say "downloading $DHCP6_PKG $DHCP6_VERSION"
apt_download "$WORK/debs" "$DHCP6_PKG=$DHCP6_VERSION"
DHCP6_DEB=$(ls "$WORK"/debs/"$DHCP6_PKG"_*.deb 2>/dev/null | head -n 1)
[ -n "$DHCP6_DEB" ] || die "apt-get download $DHCP6_PKG=$DHCP6_VERSION failed"
# The apt lists may have moved on between resolve and download: hash what we really got.
DHCP6_VERSION=$(dpkg-deb -f "$DHCP6_DEB" Version)
HASH=$(inputs_hash)

say "extracting $(basename "$KERNEL_DEB")"
mkdir -p "$WORK/kpkg"
dpkg-deb -x "$KERNEL_DEB" "$WORK/kpkg"
VMLINUZ=$(ls "$WORK"/kpkg/boot/vmlinuz-* 2>/dev/null | head -n 1)
[ -n "$VMLINUZ" ] || die "$(basename "$KERNEL_DEB") has no /boot/vmlinuz-*"
KVER=${VMLINUZ##*/vmlinuz-}
MODDIR=""
for d in "$WORK/kpkg/lib/modules/$KVER" "$WORK/kpkg/usr/lib/modules/$KVER"; do
	[ -d "$d" ] && MODDIR=$d && break
done
[ -n "$MODDIR" ] || die "$(basename "$KERNEL_DEB") has no modules directory for $KVER"

# Index: module name (dashes as underscores) -> file.
declare -A MODFILE=()
while IFS= read -r f; do
	n=${f##*/}
	n=${n%%.ko*}
	MODFILE[${n//-/_}]=$f
done < <(find "$MODDIR/kernel" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz')

is_builtin() {
	[ -f "$MODDIR/modules.builtin" ] || return 1
	sed 's|.*/||; s|\.ko$||; s|-|_|g' "$MODDIR/modules.builtin" | grep -qx "$1"
}

ROOTFS=$WORK/rootfs
mkdir -p "$ROOTFS/lib/modules"

# Copies a module uncompressed (busybox insmod loads plain .ko files only) and prints its path.
stage_module() {
	local name=$1 src=${MODFILE[$1]} dst=$ROOTFS/lib/modules/$1.ko
	case "$src" in
	*.ko) cp "$src" "$dst" ;;
	*.ko.xz) xz -dc "$src" >"$dst" ;;
	*.ko.zst) zstd -qdc "$src" >"$dst" ;;
	*.ko.gz) gzip -dc "$src" >"$dst" ;;
	esac
}

declare -A SEEN=()
LOAD_ORDER=()
add_module() { # depth-first: dependencies before the module
	local name=${1//-/_} deps d
	[ -n "${SEEN[$name]:-}" ] && return 0
	SEEN[$name]=1
	if [ -z "${MODFILE[$name]:-}" ]; then
		if is_builtin "$name"; then
			say "module $name: built into $KVER"
		else
			say "module $name: neither a module nor built in (assuming built in)"
		fi
		return 0
	fi
	stage_module "$name"
	deps=$(tr '\0' '\n' <"$ROOTFS/lib/modules/$name.ko" | sed -n 's/^depends=//p' | head -n 1)
	for d in ${deps//,/ }; do
		add_module "$d"
	done
	LOAD_ORDER+=("$name")
}
for m in "${REQUIRED_MODULES[@]}"; do
	[ -n "${MODFILE[$m]:-}" ] || is_builtin "$m" || die "kernel $KVER has no $m (neither module nor built in)"
done
for m in "${WANT_MODULES[@]}"; do
	add_module "$m"
done
printf '%s\n' "${LOAD_ORDER[@]}" >"$ROOTFS/lib/modules/load.order"
say "modules (load order): ${LOAD_ORDER[*]}"
EARLY=("${LOAD_ORDER[@]}")
LOAD_ORDER=()
for m in "${LATE_MODULES[@]}"; do
	add_module "$m"
done
LATE_ORDER=("${LOAD_ORDER[@]}")
LOAD_ORDER=("${EARLY[@]}")
printf '%s\n' "${LATE_ORDER[@]}" >"$ROOTFS/lib/modules/load.late"
say "modules (late, while DHCP runs): ${LATE_ORDER[*]:-none}"

# busybox and its applets
mkdir -p "$ROOTFS"/{bin,dev,proc,sys,run,tmp,etc,root,www/cgi-bin,var/log,mnt}
ln -s bin "$ROOTFS/sbin"
mkdir -p "$ROOTFS/usr"
ln -s ../bin "$ROOTFS/usr/bin"
ln -s ../bin "$ROOTFS/usr/sbin"
ln -s ../run "$ROOTFS/var/run"
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for a in $("$BUSYBOX" --list); do
	[ "$a" = busybox ] || ln -sf busybox "$ROOTFS/bin/$a"
done
chmod 1777 "$ROOTFS/tmp"

# dhcpcd (DHCPv6 client) from its Debian package, plus the shared libraries it links (ldd): the
# loader and libc of this host, which the initramfs otherwise lacks (busybox is static).
say "extracting $(basename "$DHCP6_DEB")"
mkdir -p "$WORK/dhcp6pkg"
dpkg-deb -x "$DHCP6_DEB" "$WORK/dhcp6pkg"
DHCPCD=$WORK/dhcp6pkg/usr/sbin/dhcpcd
[ -x "$DHCPCD" ] || die "$(basename "$DHCP6_DEB") has no /usr/sbin/dhcpcd"
cp "$DHCPCD" "$ROOTFS/bin/dhcpcd"
libs=$(ldd "$DHCPCD" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u)
[ -n "$libs" ] || die "ldd lists no libraries for dhcpcd (is it static? then nothing is needed, but check)"
for l in $libs; do
	mkdir -p "$ROOTFS$(dirname "$l")"
	cp -L "$l" "$ROOTFS$l"
done
say "dhcpcd $DHCP6_VERSION with: ${libs//$'\n'/ }"
mkdir -p "$ROOTFS/var/lib/dhcpcd" "$ROOTFS/run/dhcpcd"

# kvnet's guest files
install -m 0755 "$GUEST_SRC/init" "$ROOTFS/init"
for f in "$GUEST_SRC"/*; do
	[ -f "$f" ] || continue
	case "${f##*/}" in
	init | *.md) ;;
	udhcpc.script) install -D -m 0755 "$f" "$ROOTFS/etc/udhcpc/default.script" ;;
	power-button) install -D -m 0755 "$f" "$ROOTFS/etc/acpi/PWRF/00000080" ;;
	dhcpcd.script) install -D -m 0755 "$f" "$ROOTFS/etc/dhcpcd.script" ;;
	dhcpcd.conf) install -D -m 0644 "$f" "$ROOTFS/etc/dhcpcd.conf" ;;
	*) install -m 0755 "$f" "$ROOTFS/bin/${f##*/}" ;;
	esac
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$ROOTFS/etc/passwd"
echo 'root:x:0:' >"$ROOTFS/etc/group"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$ROOTFS/etc/hosts"
echo "$KVER" >"$ROOTFS/etc/kvnet-kernel"
# An initial console before devtmpfs is mounted (root only; /init re-opens /dev/console anyway).
if [ "$(id -u)" = 0 ]; then
	mknod -m 600 "$ROOTFS/dev/console" c 5 1
	mknod -m 666 "$ROOTFS/dev/null" c 1 3
fi

say "packing initramfs"
# Fixed timestamps: the same inputs give a byte-identical initramfs.
find "$ROOTFS" -exec touch -h -d @0 {} +
if command -v cpio >/dev/null 2>&1 && cpio --help 2>&1 | grep -q -- '--reproducible'; then
	(cd "$ROOTFS" && find . -mindepth 1 | LC_ALL=C sort |
		cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -n -6 >"$WORK/initrd.img"
else
	(cd "$ROOTFS" && find . -mindepth 1 | LC_ALL=C sort | "$BUSYBOX" cpio -o -H newc 2>/dev/null) |
		gzip -n -6 >"$WORK/initrd.img"
fi

cp "$VMLINUZ" "$WORK/vmlinuz"
{
	echo "KERNEL_VERSION=$KVER"
	echo "KERNEL_PACKAGE=$KPKG=$KPKG_VERSION"
	echo "BUSYBOX_PACKAGE=busybox-static=$BUSYBOX_VERSION"
	echo "MODULES=${LOAD_ORDER[*]}"
	echo "MODULES_LATE=${LATE_ORDER[*]}"
	echo "DHCP6_PACKAGE=$DHCP6_PKG=$DHCP6_VERSION"
	echo "LIBC_PACKAGE=libc6=$LIBC_VERSION"
	echo "INPUTS_SHA256=$HASH"
	echo "BUILT=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$WORK/VERSION"

# Replace the outputs; VERSION last so an interrupted build is never taken as up to date.
rm -f "$CACHE_DIR/VERSION"
mv -f "$WORK/vmlinuz" "$CACHE_DIR/vmlinuz"
mv -f "$WORK/initrd.img" "$CACHE_DIR/initrd.img"
mv -f "$WORK/VERSION" "$CACHE_DIR/VERSION"
say "built $KVER ($(du -h "$CACHE_DIR/initrd.img" | cut -f1) initramfs) in $CACHE_DIR"
print_result
