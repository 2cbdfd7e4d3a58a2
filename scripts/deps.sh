#!/usr/bin/env bash
# Installs every build, test and benchmark dependency of kvnet from Debian's packages.
set -euo pipefail
PKGS=(
  build-essential pkg-config
  libmnl-dev libnftnl-dev libbpf-dev libjansson-dev
  libcurl4-openssl-dev libcmocka-dev libclang-rt-14-dev libvirt-dev libyaml-dev libmicrohttpd-dev
  clang llvm bpftool
  containernetworking-plugins iproute2 nftables iptables iputils-ping iperf3 netcat-openbsd socat jq tcpdump
  podman runc conmon busybox-static
  qemu-system-x86 qemu-utils libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients dnsmasq-base cpio
  xorriso curl xz-utils zstd
)
# kubectl for the embedded controller's tests: Debian's kubernetes-client, unless a kubectl is installed
# already (another package owning /usr/bin/kubectl would conflict with it).
command -v kubectl >/dev/null 2>&1 || PKGS+=(kubernetes-client)
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages already installed"
  exit 0
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
