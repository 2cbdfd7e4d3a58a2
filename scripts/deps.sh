#!/usr/bin/env bash
# Installs every build, test and benchmark dependency of kvnet from Debian's packages.
set -euo pipefail
PKGS=(
  build-essential pkg-config
  libmnl-dev libnftnl-dev libbpf-dev libjansson-dev
  libcurl4-openssl-dev libcmocka-dev libclang-rt-14-dev libvirt-dev libyaml-dev libmicrohttpd-dev libgnutls28-dev
  clang llvm bpftool
  containernetworking-plugins iproute2 nftables iptables iputils-ping iperf3 netcat-openbsd socat jq tcpdump
  podman runc conmon busybox-static
  qemu-system-x86 qemu-utils libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients dnsmasq-base cpio
  xorriso curl xz-utils zstd openssl
  # the tests parse the metrics endpoints with the reference Prometheus text parser (prometheus_client)
  python3-prometheus-client
  # the benchmarks' SVG charts are checked by rendering them to PNG (tests/integration/test-svgchart.sh)
  librsvg2-bin
  # not a product dependency: test-netd-upgrade builds the previous netd release (9fdf641), which used libnl
  libnl-3-dev libnl-route-3-dev
)
# kubectl for the embedded controller's tests: Debian's kubernetes-client, unless a kubectl is installed
# already (another package owning /usr/bin/kubectl would conflict with it).
command -v kubectl >/dev/null 2>&1 || PKGS+=(kubernetes-client)
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

# Debian's kubectl 1.20 beside another one: tests/integration/test-controller-schema.sh runs both. The package
# is unpacked, not installed (it would own /usr/bin/kubectl too).
KUBECTL_OLD=/usr/local/lib/kvnet/kubectl-1.20
if [ ! -x "$KUBECTL_OLD" ] && command -v kubectl >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  if (cd "$tmp" && $SUDO apt-get download -q kubernetes-client >/dev/null 2>&1) &&
    dpkg-deb -x "$tmp"/kubernetes-client_*.deb "$tmp/x"; then
    $SUDO install -D -m 0755 "$tmp/x/usr/bin/kubectl" "$KUBECTL_OLD"
    echo "deps: kubectl 1.20 (kubernetes-client) unpacked to $KUBECTL_OLD"
  else
    echo "deps: could not fetch kubernetes-client for $KUBECTL_OLD (apt-get update first?)" >&2
  fi
  rm -rf "$tmp"
fi

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
