#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# kvnet driven by an independent CNI runtime: Debian's podman (libcni inside) with its CNI
# network backend.
#
# Everything podman uses is private to this test: containers.conf, storage.conf, root/runroot
# (vfs driver), the CNI network config dir and a busybox image made with `podman import`.
# Podman itself and kvnet-netd run inside a private network namespace (entered with nsenter,
# since `ip netns exec` hides /sys/fs/cgroup), so the bridge and the nftables rules the CNI ADD
# creates live there, never on the host.
#
# Asserts: a container gets an address from the kvnet subnet; netd lists the endpoint and the
# address appears in nft table inet kvnet while it runs; a second container pings the first;
# after the containers exit, netd has no endpoints and the nft table no longer names the
# address (podman called DEL); the host namespace has no kvbr0.
#
#   test-podman.sh              kvnet (build/bin/kvnet + kvnet-netd)
#   test-podman.sh --reference  the same run with /usr/lib/cni/bridge + host-local (checks the harness)
# Environment: KVNET_BUILD (default build). Exit: 0 pass, 1 fail, 4 skipped (reason printed).
set -u
# Debugging: KEEP=1 leaves the temp dir, the namespace and netd behind.

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${KVNET_BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
TPL="$ROOT/tests/integration/podman"
MODE=kvnet
[ "${1:-}" = "--reference" ] && MODE=reference
SUBNET=10.77.0.0/24
SUBNET_RE='10\.77\.0\.'
NET=kvnettest
IMAGE=localhost/kvnet-busybox:test

SUFFIX=$(printf '%04x' $RANDOM)
NS=kvt-pod-$SUFFIX
NSPATH=/run/netns/$NS
DIR=
NETD_PID=
FAILS=0

log() { echo "test-podman: $*"; }
skip() {
	echo "SKIP: $*"
	exit 4
}
fail() {
	log "FAIL: $*"
	FAILS=$((FAILS + 1))
}
pass() { log "ok: $*"; }

pm() {
	nsenter --net="$NSPATH" env CONTAINERS_CONF="$DIR/containers.conf" \
		CONTAINERS_STORAGE_CONF="$DIR/storage.conf" CONTAINERS_REGISTRIES_CONF="$DIR/registries.conf" \
		TMPDIR="$DIR/tmp" podman --root "$DIR/root" --runroot "$DIR/runroot" --storage-driver vfs \
		--cgroup-manager cgroupfs --runtime runc --events-backend file \
		--network-config-dir "$DIR/cni" --tmpdir "$DIR/tmp" "$@"
}

ctl() { nsenter --net="$NSPATH" "$BUILD/bin/kvnetctl" --socket "$DIR/netd.sock" "$@"; }

cleanup() {
	if [ -n "$DIR" ] && [ -d "$DIR/root" ]; then
		pm rm -a -f -t 0 >/dev/null 2>&1
	fi
	if [ -n "$NETD_PID" ]; then
		kill "$NETD_PID" 2>/dev/null
		wait "$NETD_PID" 2>/dev/null
	fi
	ip netns del "$NS" 2>/dev/null
	if [ -n "$DIR" ]; then
		# Anything podman left mounted under the temp dir (shm, vfs layers).
		grep -o " $DIR[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
		rm -rf "$DIR"
	fi
}
trap "${KEEP:+:} cleanup" EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || skip "needs root"
for tool in podman runc conmon nsenter ip nft; do
	command -v "$tool" >/dev/null || skip "'$tool' is not installed (apt-get install podman runc nftables util-linux)"
done
BUSYBOX=
for b in /bin/busybox /usr/bin/busybox; do
	if [ -x "$b" ] && file -L "$b" 2>/dev/null | grep -q 'statically linked'; then BUSYBOX=$b; fi
	[ -z "$BUSYBOX" ] && [ -x "$b" ] && ldd "$b" 2>&1 | grep -q 'not a dynamic' && BUSYBOX=$b
done
[ -n "$BUSYBOX" ] || skip "no statically linked busybox (apt-get install busybox-static)"
if [ "$MODE" = kvnet ]; then
	for b in kvnet kvnet-netd kvnetctl; do
		[ -x "$BUILD/bin/$b" ] || { log "FAIL: $BUILD/bin/$b is missing (make)"; exit 1; }
	done
else
	[ -x /usr/lib/cni/bridge ] || skip "reference plugins missing (apt-get install containernetworking-plugins)"
fi

HOST_HAD_KVBR0=0
ip link show kvbr0 >/dev/null 2>&1 && HOST_HAD_KVBR0=1

DIR=$(mktemp -d /tmp/kvt-podman.XXXXXX)
mkdir -p "$DIR/cni" "$DIR/tmp" "$DIR/root" "$DIR/runroot" "$DIR/state" "$DIR/rootfs"
ip netns add "$NS" || skip "cannot create a network namespace"
ip -n "$NS" link set lo up

subst() { # template -> stdout
	sed -e "s|@DIR@|$DIR|g" -e "s|@SUBNET@|$SUBNET|g" -e "s|@SOCKET@|$DIR/netd.sock|g" \
		-e "s|@CNI_PLUGIN_DIRS@|\"$BUILD/bin\", \"/usr/lib/cni\"|g" "$1"
}
subst "$TPL/containers.conf.in" >"$DIR/containers.conf"
subst "$TPL/storage.conf.in" >"$DIR/storage.conf"
printf 'unqualified-search-registries = []\n' >"$DIR/registries.conf"
subst "$TPL/$MODE.conflist.in" >"$DIR/cni/$NET.conflist"

# netd in the private namespace (the "node").
if [ "$MODE" = kvnet ]; then
	nsenter --net="$NSPATH" "$BUILD/bin/kvnet-netd" --socket "$DIR/netd.sock" --state-dir "$DIR/state" \
		>"$DIR/netd.log" 2>&1 &
	NETD_PID=$!
	for _ in $(seq 1 100); do
		[ -S "$DIR/netd.sock" ] && ctl status >/dev/null 2>&1 && break
		kill -0 "$NETD_PID" 2>/dev/null || break
		sleep 0.1
	done
	if ! ctl status >/dev/null 2>&1; then
		log "FAIL: kvnet-netd did not become ready; log:"
		sed 's/^/  netd: /' "$DIR/netd.log"
		exit 1
	fi
fi

# Image: a busybox-static rootfs (no registry is reachable).
R="$DIR/rootfs"
mkdir -p "$R/bin" "$R/etc" "$R/proc" "$R/sys" "$R/dev" "$R/tmp" "$R/root"
cp "$BUSYBOX" "$R/bin/busybox"
for a in sh ip ping sleep cat ls ifconfig route; do ln -s busybox "$R/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
echo 'root:x:0:' >"$R/etc/group"
tar -C "$R" -cf "$DIR/rootfs.tar" . || skip "cannot build the rootfs tarball"
if ! out=$(pm import --change 'CMD ["/bin/sh"]' "$DIR/rootfs.tar" "$IMAGE" 2>&1); then
	skip "podman import failed: $out"
fi

# A probe that does not involve the network: tells "podman cannot run containers here" (skip)
# apart from "kvnet failed" (fail).
if ! out=$(pm run --rm --network none "$IMAGE" /bin/sh -c 'echo up' 2>&1) || [ "$out" != up ]; then
	skip "podman cannot run a container on this machine (runc/cgroups): $out"
fi

# 1. One container: its eth0 carries an address of the kvnet subnet.
if out=$(pm run --rm --network "$NET" "$IMAGE" ip addr 2>&1); then
	if echo "$out" | grep -q "inet $SUBNET_RE"; then
		pass "container got $(echo "$out" | grep -o "inet $SUBNET_RE[0-9]*/[0-9]*")"
	else
		fail "container has no address in $SUBNET: $out"
	fi
else
	fail "podman run --network $NET failed: $out"
fi

# 2. A long-running container, and a second one that pings it.
IP1=
if cid=$(pm run -d --name kvt-c1 --network "$NET" "$IMAGE" sleep 120 2>&1); then
	cid=$(echo "$cid" | tail -1)
	IP1=$(pm exec kvt-c1 ip -4 -o addr show eth0 2>/dev/null | grep -o "$SUBNET_RE[0-9]*" | head -1)
	[ -n "$IP1" ] && pass "kvt-c1 ($cid) has $IP1" || fail "kvt-c1 has no address in $SUBNET"
else
	fail "podman run -d failed: $cid"
	cid=
fi

if [ -n "$IP1" ]; then
	if [ "$MODE" = kvnet ]; then
		eps=$(ctl -o json endpoints 2>&1)
		echo "$eps" | grep -q "$cid" && pass "netd lists the endpoint of kvt-c1" ||
			fail "netd endpoints do not name kvt-c1 ($cid): $eps"
	fi
	if nsenter --net="$NSPATH" nft list ruleset 2>/dev/null | grep -q "$IP1\b"; then
		pass "nftables in the node namespace name $IP1"
	else
		[ "$MODE" = kvnet ] && fail "no nftables rule names $IP1 while attached"
	fi
	if out=$(pm run --rm --network "$NET" "$IMAGE" ping -c 3 -W 2 "$IP1" 2>&1) &&
		echo "$out" | grep -q ' 0% packet loss'; then
		pass "second container pings $IP1"
	else
		fail "second container cannot ping $IP1: $out"
	fi
	GW=$(nsenter --net="$NSPATH" ip -4 -o addr show dev kvbr0 2>/dev/null | grep -o "$SUBNET_RE[0-9]*" | head -1)
	if [ -n "$GW" ]; then
		if pm exec kvt-c1 ping -c 2 -W 2 "$GW" >/dev/null 2>&1; then
			pass "kvt-c1 pings the bridge gateway $GW"
		else
			fail "kvt-c1 cannot ping the bridge gateway $GW"
		fi
	fi
fi

pm rm -f -t 0 kvt-c1 >/dev/null 2>&1

# 3. After the containers are gone, podman has called DEL for every attachment.
sleep 0.2
if [ "$MODE" = kvnet ]; then
	eps=$(ctl -o json endpoints 2>&1)
	if [ $? != 0 ]; then
		fail "kvnetctl endpoints failed: $eps"
	elif echo "$eps" | grep -Eq '[0-9a-f]{64}' || echo "$eps" | grep -q "$SUBNET_RE"; then
		fail "endpoints left after the containers exited: $eps"
	elif command -v python3 >/dev/null && ! echo "$eps" | python3 -c '
import json, sys
d = json.load(sys.stdin)
def empty(v):
    if isinstance(v, list): return len(v) == 0
    if isinstance(v, dict): return all(empty(x) for x in v.values() if isinstance(x, (list, dict)))
    return True
sys.exit(0 if empty(d) else 1)'; then
		fail "kvnetctl endpoints is not empty: $eps"
	else
		pass "no endpoints left after the containers exited (podman called DEL)"
	fi
else
	left=$(ls "$DIR/host-local/$NET" 2>/dev/null | grep -c "^$SUBNET_RE")
	[ "$left" = 0 ] && pass "host-local has no leases left (podman called DEL)" ||
		fail "host-local still holds $left leases"
fi
if [ -n "$IP1" ] && nsenter --net="$NSPATH" nft list ruleset 2>/dev/null | grep -q "$IP1\b"; then
	fail "nftables still name $IP1 after DEL"
fi

# The host namespace was never touched.
if [ "$HOST_HAD_KVBR0" = 0 ] && ip link show kvbr0 >/dev/null 2>&1; then
	fail "kvbr0 appeared in the host namespace"
fi

if [ "$FAILS" != 0 ]; then
	[ "$MODE" = kvnet ] && [ -s "$DIR/netd.log" ] && sed 's/^/  netd: /' "$DIR/netd.log" | tail -30
	log "FAILED ($FAILS)"
	exit 1
fi
log "PASS ($MODE)"
exit 0
