#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# VM boot-to-network-ready: from the start request to the first ping reply from the guest.
#   bare:  the test guest on a bare tap (bridge + dnsmasq for DHCP), plain QEMU;
#   kvnet: CNI ADD through the kvnet plugin + netd (tap, DHCP from netd) then the same plain QEMU
#          on the kvnet tap; the clock starts before the ADD.
# Same guest, same QEMU flags, software emulation (TCG), alternating rounds. Measures and prints.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${KVNET_BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
ROUNDS=${BENCH_VMBOOT_ROUNDS:-5}
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: qemu-system-x86_64 not installed"; exit 0; }
command -v dnsmasq >/dev/null || { echo "SKIP: dnsmasq not installed"; exit 0; }
eval "$("$ROOT/scripts/guest-image.sh" --quiet | grep '^KVNET_GUEST_')"
SUF=$(printf '%04x%04x' $RANDOM $RANDOM)
WORK=$(mktemp -d)
NSES=()
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for ns in "${NSES[@]}"; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
		ip netns del "$ns" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
mkns() { ip netns add "$1"; NSES+=("$1"); ip -n "$1" link set lo up; }
ms() { date +%s%3N; }
boot() { # NS TAP MAC -> pid
	ip netns exec "$1" qemu-system-x86_64 -accel tcg -m 256 -nographic -no-reboot \
		-kernel "$KVNET_GUEST_KERNEL" -initrd "$KVNET_GUEST_INITRD" -append 'console=ttyS0 quiet' \
		-netdev tap,id=n0,ifname="$2",script=no,downscript=no -device virtio-net-pci,netdev=n0,mac="$3",romfile= \
		-serial null -monitor none -display none >/dev/null 2>&1 &
	echo $!
}
wait_ping() { # NS ADDR -> 0 when answered within 60 s
	for _ in $(seq 1 1200); do
		ip netns exec "$1" ping -c1 -W0.05 "$2" >/dev/null 2>&1 && return 0
	done
	return 1
}

# bare: node ns with a bridge, dnsmasq, a tap per round
BARE=kvvb-bare-$SUF
mkns "$BARE"
ip -n "$BARE" link add br0 type bridge
ip -n "$BARE" addr add 10.99.0.1/24 dev br0
ip -n "$BARE" link set br0 up
ip netns exec "$BARE" dnsmasq --keep-in-foreground --port=0 --user=root --group=root --interface=br0 \
	--except-interface=lo --bind-interfaces --conf-file=/dev/null --no-resolv --no-hosts \
	--dhcp-leasefile="$WORK/leases" --dhcp-range=10.99.0.100,10.99.0.200,255.255.255.0,1h \
	--dhcp-host=02:99:00:00:00:02,10.99.0.2 --dhcp-option=option:router,10.99.0.1 >/dev/null 2>&1 &
PIDS+=($!)

# kvnet: node ns with netd
NODE=kvvb-node-$SUF
mkns "$NODE"
ip netns exec "$NODE" "$BUILD/bin/kvnet-netd" --socket "$WORK/netd.sock" --state-dir "$WORK/state" >"$WORK/netd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do "$BUILD/bin/kvnetctl" --socket "$WORK/netd.sock" status >/dev/null 2>&1 && break; sleep 0.1; done
CONF='{"cniVersion":"1.1.0","name":"bench","type":"kvnet","bridge":"kvbr0","socket":"'$WORK/netd.sock'",
 "ipam":{"ranges":[[{"subnet":"10.88.0.0/24","gateway":"10.88.0.1"}]],"routes":[{"dst":"0.0.0.0/0"}]}}'

bare_ms=() kvnet_ms=()
for i in $(seq 1 "$ROUNDS"); do
	# bare
	t0=$(ms)
	ip -n "$BARE" tuntap add dev tap$i mode tap
	ip -n "$BARE" link set tap$i master br0 up
	qp=$(boot "$BARE" tap$i 02:99:00:00:00:02)
	if wait_ping "$BARE" 10.99.0.2; then bare_ms+=($(($(ms) - t0))); fi
	kill "$qp"; wait "$qp" 2>/dev/null || true
	ip -n "$BARE" link del tap$i
	# kvnet
	pod=kvvb-pod$i-$SUF
	mkns "$pod"
	t0=$(ms)
	r=$(echo "$CONF" | ip netns exec "$NODE" env CNI_COMMAND=ADD CNI_CONTAINERID=pod$i CNI_NETNS=/run/netns/$pod \
		CNI_IFNAME=tap0 CNI_ARGS="KVNET_VM_NAME=bench" CNI_PATH=/usr/lib/cni "$BUILD/bin/kvnet")
	ip=$(jq -r '.ips[0].address' <<<"$r" | cut -d/ -f1)
	mac=$(jq -r '.interfaces[] | select(.name == "tap0") | .mac' <<<"$r")
	qp=$(boot "$pod" tap0 "$mac")
	if wait_ping "$NODE" "$ip"; then kvnet_ms+=($(($(ms) - t0))); fi
	kill "$qp"; wait "$qp" 2>/dev/null || true
	echo "$CONF" | ip netns exec "$NODE" env CNI_COMMAND=DEL CNI_CONTAINERID=pod$i CNI_NETNS=/run/netns/$pod \
		CNI_IFNAME=tap0 CNI_ARGS="KVNET_VM_NAME=bench" CNI_PATH=/usr/lib/cni "$BUILD/bin/kvnet" >/dev/null
	echo "round $i: bare ${bare_ms[-1]:-fail} ms, kvnet ${kvnet_ms[-1]:-fail} ms"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }
mb=$(median "${bare_ms[@]}")
mk=$(median "${kvnet_ms[@]}")
echo "== VM boot-to-network (TCG, median of $ROUNDS)"
printf '%-8s %10s\n' path "median ms"
printf '%-8s %10s\n' bare "$mb" kvnet "$mk"
echo "BENCH_VMBOOT PATH=bare ROUNDS=$ROUNDS MEDIAN_MS=$mb ALL_MS=$(IFS=,; echo "${bare_ms[*]}")"
echo "BENCH_VMBOOT PATH=kvnet ROUNDS=$ROUNDS MEDIAN_MS=$mk ALL_MS=$(IFS=,; echo "${kvnet_ms[*]}")"
echo "RATIO_VMBOOT_KVNET_VS_BARE=$(jq -n "$mk / $mb * 1000 | round / 1000")"
