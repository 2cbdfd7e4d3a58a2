#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# netd NAT (nftables backend) with real traffic, in three namespaces of our own:
#
#   client 192.0.2.2/24 --veth-- 192.0.2.1/24 router 10.88.0.1/24 --veth-- 10.88.0.2/24 pod
#
# The router runs tests/tools/nat-tool (netd's nat_sync/nat_del). The client has no route to
# 10.88.0.0/24, so pod->client only works when masqueraded.
# Checks: masquerade (peer seen by the client = 192.0.2.1), ping, port forward client ->
# 192.0.2.1:8080 -> pod:80, hairpin (pod -> 192.0.2.1:8080 -> itself), DEL removes everything.
# Exit 0 pass, 1 fail, 4 skipped (reason printed).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${KVNET_BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
TOOL=${NAT_TOOL:-$BUILD/tests/nat-tool}

skip() {
	echo "SKIP: $*"
	exit 4
}
[ "$(id -u)" -eq 0 ] || skip "needs root"
for c in ip nft socat ping timeout; do
	command -v "$c" >/dev/null || skip "missing command '$c'"
done
[ -x "$TOOL" ] || skip "missing $TOOL (make test-tools)"

S=$(printf '%04x%04x' $RANDOM $RANDOM)
CL=kvt-cl-$S
RT=kvt-rt-$S
POD=kvt-pod-$S
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for n in "$CL" "$RT" "$POD"; do ip netns del "$n" 2>/dev/null || true; done
}
trap cleanup EXIT

fails=0
pass() { echo "PASS: $*"; }
fail() {
	echo "FAIL: $*"
	fails=$((fails + 1))
}

ip netns add "$CL" || skip "cannot create network namespaces"
ip netns add "$RT"
ip netns add "$POD"
ip -n "$CL" link add c0 type veth peer name r0 netns "$RT"
ip -n "$RT" link add r1 type veth peer name p0 netns "$POD"
ip -n "$CL" addr add 192.0.2.2/24 dev c0
ip -n "$RT" addr add 192.0.2.1/24 dev r0
ip -n "$RT" addr add 10.88.0.1/24 dev r1
ip -n "$POD" addr add 10.88.0.2/24 dev p0
for n in "$CL" "$RT" "$POD"; do ip -n "$n" link set lo up; done
ip -n "$CL" link set c0 up
ip -n "$RT" link set r0 up
ip -n "$RT" link set r1 up
ip -n "$POD" link set p0 up
ip -n "$POD" route add default via 10.88.0.1
ip netns exec "$RT" sysctl -qw net.ipv4.ip_forward=1

nft_rt() { ip netns exec "$RT" nft "$@"; }
nft_rt list tables >/dev/null 2>&1 || skip "nftables not available in the kernel"

EP="id=default/pod/net1,addr=10.88.0.2,subnet=10.88.0.0/24,masq=1,pm=tcp/8080/80,pm=tcp/8081/81"

# before NAT: pod cannot reach the client (no route back)
if ip netns exec "$POD" ping -c1 -W1 192.0.2.2 >/dev/null 2>&1; then
	fail "pod reaches client without NAT (test setup broken)"
fi

if ! out=$(ip netns exec "$RT" "$TOOL" sync "$EP" 2>&1); then
	echo "$out"
	skip "nat-tool sync failed (kernel lacks nft nat/fib/concat support?)"
fi
if ip netns exec "$RT" "$TOOL" check "$EP"; then pass "nat_check after sync"; else fail "nat_check after sync"; fi

# servers: client prints the peer it sees; pod answers with the peer it sees
ip netns exec "$CL" socat TCP-LISTEN:9000,reuseaddr,fork SYSTEM:'echo peer=$SOCAT_PEERADDR' &
PIDS+=($!)
ip netns exec "$POD" socat TCP-LISTEN:80,reuseaddr,fork SYSTEM:'echo pod-from=$SOCAT_PEERADDR' &
PIDS+=($!)
ip netns exec "$POD" socat TCP-LISTEN:81,reuseaddr,fork EXEC:cat &
PIDS+=($!)
sleep 0.5

if ip netns exec "$POD" ping -c1 -W2 192.0.2.2 >/dev/null 2>&1; then pass "ping pod -> client (masqueraded)"; else fail "ping pod -> client"; fi

got=$(ip netns exec "$POD" timeout 5 socat -T3 - TCP:192.0.2.2:9000 </dev/null 2>&1 || true)
if [ "$got" = "peer=192.0.2.1" ]; then pass "masquerade: client sees $got"; else fail "masquerade: client saw '$got', want peer=192.0.2.1"; fi

got=$(ip netns exec "$CL" timeout 5 socat -T3 - TCP:192.0.2.1:8080 </dev/null 2>&1 || true)
if [ "$got" = "pod-from=192.0.2.2" ]; then pass "port forward 192.0.2.1:8080 -> pod:80 ($got)"; else fail "port forward: got '$got', want pod-from=192.0.2.2"; fi

got=$(ip netns exec "$POD" timeout 5 socat -T3 - TCP:192.0.2.1:8080 </dev/null 2>&1 || true)
if [ "$got" = "pod-from=10.88.0.1" ]; then pass "hairpin pod -> 192.0.2.1:8080 -> pod ($got)"; else fail "hairpin: got '$got', want pod-from=10.88.0.1"; fi

# sync again with the same endpoint: ruleset unchanged, an established forwarded flow survives
coproc ECHO { ip netns exec "$CL" socat -T20 - TCP:192.0.2.1:8081 2>/dev/null; }
PIDS+=($ECHO_PID)
echo one >&"${ECHO[1]}"
read -r -t 5 l1 <&"${ECHO[0]}" || l1=
before=$(nft_rt list table inet kvnet)
ip netns exec "$RT" "$TOOL" sync "$EP"
after=$(nft_rt list table inet kvnet)
if [ "$before" = "$after" ]; then pass "second sync is idempotent"; else fail "second sync changed the ruleset"; fi
echo two >&"${ECHO[1]}"
read -r -t 5 l2 <&"${ECHO[0]}" || l2=
if [ "$l1" = one ] && [ "$l2" = two ]; then pass "established forwarded TCP flow survives sync"; else fail "flow across sync: got '$l1' / '$l2'"; fi

dump=$(ip netns exec "$RT" "$TOOL" dump)
if [[ "$dump" == *'"masquerade":["10.88.0.2"]'* && "$dump" == *'"hostPort":8080'* && "$dump" == *'"hostPort":8081'* ]]; then pass "dump: $dump"; else fail "dump: $dump"; fi

# DEL: the endpoint's elements are gone and the forward stops working
ip netns exec "$RT" "$TOOL" del "$EP"
if nft_rt list table inet kvnet | grep -q '10\.88\.0\.2'; then fail "10.88.0.2 still in table after del"; else pass "del removed 10.88.0.2 from the table"; fi
if ip netns exec "$RT" "$TOOL" check "$EP" 2>/dev/null; then fail "nat_check succeeds after del"; else pass "nat_check fails after del"; fi
got=$(ip netns exec "$CL" timeout 3 socat -T2 - TCP:192.0.2.1:8080,connect-timeout=2 </dev/null 2>/dev/null || true)
if [ -z "$got" ]; then pass "port forward gone after del"; else fail "port forward still answers after del: '$got'"; fi
if ip netns exec "$RT" "$TOOL" del "$EP"; then pass "second del succeeds"; else fail "second del"; fi

if [ "$fails" -ne 0 ]; then
	echo "FAIL: test-nat-nft ($fails checks failed)"
	exit 1
fi
echo "PASS: test-nat-nft"
