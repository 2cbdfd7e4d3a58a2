# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Shared helpers for kvnet's integration tests (modeled on linux tools/testing/selftests/net/lib.sh).
#
# Every test is a standalone script:  set -euo pipefail; source lib.sh; ...; finish
# Exit codes: 0 pass, 1 fail, 4 skipped (reason printed).
#
# Topology: a "node" namespace (netd, the bridge, nftables table inet kvnet), sandbox namespaces
# (containers / VMs), and an "ext" namespace joined to the node by a veth
# (node 192.0.2.1/24, ext 192.0.2.2/24; ext has no route to the pod subnet, so masquerade shows).
# Everything that changes the network happens inside these namespaces; the CNI runner itself is
# executed inside the node namespace so a plugin's "current" namespace is never the host's.

KSFT_SKIP=4
KV_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KVNET_BUILD=${KVNET_BUILD:-build}
case "$KVNET_BUILD" in
/*) KV_BUILD_DIR=$KVNET_BUILD ;;
*) KV_BUILD_DIR=$KV_ROOT/$KVNET_BUILD ;;
esac
KV_BIN=$KV_BUILD_DIR/bin
CNICHAIN=$KV_BUILD_DIR/tests/cnichain
# Test peers built by make test-deps (scripts/test-peers.sh, tests/peers/versions) live in
# $KV_PEERS_DIR/<name>-<version>/.
KV_PEERS_DIR=${KVNET_CACHE:-/var/cache/kvnet}/peers
KV_PEERS_TABLE=$KV_ROOT/tests/peers/versions

# peer_path NAME: prints the path of a built test peer (its binary, or the folder of its binaries), or
# prints "peer NAME not built: run make test-deps" on stderr and returns 1.
peer_path() {
	local version dir n
	version=$(awk -v n="$1" '$1 == n { print $3 }' "$KV_PEERS_TABLE" 2>/dev/null)
	dir=$KV_PEERS_DIR/$1-$version
	if [ -z "$version" ] || [ "$version" = - ] || [ ! -f "$dir/.kvnet-peer" ]; then
		echo "peer $1 not built: run make test-deps" >&2
		return 1
	fi
	n=$(find "$dir" -maxdepth 1 -type f -perm -u+x | wc -l)
	if [ "$n" -eq 1 ]; then find "$dir" -maxdepth 1 -type f -perm -u+x; else echo "$dir"; fi
}

# require_peer VAR NAME: sets VAR to peer_path NAME, or skips the test with the reason.
require_peer() {
	local p
	p=$(peer_path "$2" 2>/dev/null) || skip "peer $2 not built: run make test-deps"
	printf -v "$1" '%s' "$p"
}

# The reference CNI plugins: the pinned release built by make test-deps (peer cni-plugins), else
# Debian's containernetworking-plugins (1.1.1, older) as a fallback; REF_CNI_DIR overrides both.
if [ -z "${REF_CNI_DIR:-}" ]; then
	REF_CNI_DIR=$(peer_path cni-plugins 2>/dev/null) || REF_CNI_DIR=/usr/lib/cni
fi
KV_CONF_DIR=$KV_ROOT/tests/integration/conf
KV_CNI_PATH=$KV_BIN:$REF_CNI_DIR
KV_TEST_NAME=$(basename "$0" .sh)

EXT_NODE_ADDR=192.0.2.1
EXT_ADDR=192.0.2.2

KV_FAILS=0
KV_AT_EXIT=()
KV_EXIT_RC=0
KV_NAMESPACES=()
KV_PIDS=()
KV_TMP=""
NODE_NS=""
EXT_NS=""
NETD_PID=""
NETD_SOCK=""
NETD_STATE=""
NETD_LOG=""
NETD_LOG_SHOWN=""
NETD_STATUS=0

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# ---------------------------------------------------------------- reporting

log() { echo "[$KV_TEST_NAME] $*"; }

skip() {
	echo "SKIP: $*"
	exit $KSFT_SKIP
}

# skip_part REASON: a part of the test that cannot run here, the rest goes on; run.sh lists the reason and
# counts the part as skipped also when the test passes.
skip_part() { echo "SKIP: $*"; }

pass() { printf 'TEST: %-70s [ OK ]\n' "$*"; }

fail() {
	printf 'TEST: %-70s [FAIL]\n' "$*"
	KV_FAILS=$((KV_FAILS + 1))
}

# Aborts the test (cleanup runs through the EXIT trap).
die() {
	echo "FAIL: $*" >&2
	KV_FAILS=$((KV_FAILS + 1))
	exit 1
}

# Called at the end of every test.
finish() {
	if [ "$KV_FAILS" -ne 0 ]; then
		echo "$KV_TEST_NAME: $KV_FAILS check(s) failed"
		exit 1
	fi
	echo "$KV_TEST_NAME: all checks passed"
	exit 0
}

# ---------------------------------------------------------------- requirements

require_root() {
	[ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces)"
	ip netns list >/dev/null 2>&1 || skip "ip netns not usable"
}

require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "command '$c' not installed"
	done
}

require_file() {
	local f
	for f in "$@"; do
		[ -x "$f" ] || skip "'$f' not built (run make / make test-tools)"
	done
}

require_cnichain() {
	require_file "$CNICHAIN"
}

require_ref_plugins() {
	local p
	for p in "$@"; do
		[ -x "$REF_CNI_DIR/$p" ] || skip "reference CNI plugin '$p' not in $REF_CNI_DIR"
	done
}

# The kvnet plugin is built and answers VERSION (not a stub).
require_kvnet_plugin() {
	require_cnichain
	require_file "$KV_BIN/kvnet"
	local out
	out=$(echo '{"cniVersion":"1.0.0"}' | env -i CNI_COMMAND=VERSION "$KV_BIN/kvnet" 2>/dev/null) || true
	echo "$out" | jq -e '.supportedVersions | length > 0' >/dev/null 2>&1 ||
		skip "$KV_BIN/kvnet does not answer VERSION yet (not implemented)"
}

# The kvnet plugin, daemon and CLI are built and are not placeholder stubs.
require_kvnet() {
	require_kvnet_plugin
	require_file "$KV_BIN/kvnet-netd" "$KV_BIN/kvnetctl"
	# A real kvnetctl fails when netd does not answer; the placeholder stub exits 0.
	if "$KV_BIN/kvnetctl" --socket "/nonexistent/kvnet-$$.sock" status >/dev/null 2>&1; then
		skip "$KV_BIN/kvnetctl is a stub (status succeeds without a daemon)"
	fi
}

# ---------------------------------------------------------------- namespaces & cleanup

rand_suffix() { printf '%04x%04x' $RANDOM $RANDOM; }

# mkns VAR PREFIX: creates namespace PREFIX-<random>, lo up, name stored in VAR.
mkns() {
	local __var=$1 prefix=${2:-$1} name
	name="kvt-$prefix-$(rand_suffix)"
	ip netns add "$name" || die "ip netns add $name"
	KV_NAMESPACES+=("$name")
	ip -n "$name" link set lo up
	printf -v "$__var" '%s' "$name"
}

nspath() { echo "/var/run/netns/$1"; }

# Starts a background command and tracks its pid for cleanup. Sets BG_PID.
bg() {
	"$@" &
	BG_PID=$!
	KV_PIDS+=("$BG_PID")
}

# at_exit COMMAND: runs COMMAND (one string, evaluated) at exit, before netd, the background processes
# and the namespaces go; hooks run in the order they were registered, with the test's exit status in
# KV_EXIT_RC.
at_exit() { KV_AT_EXIT+=("$1"); }

kv_cleanup() {
	local rc=$? p ns h
	set +e
	trap - ERR
	KV_EXIT_RC=$rc
	for h in "${KV_AT_EXIT[@]}"; do
		eval "$h"
	done
	# netd must exit cleanly on SIGTERM: under ASan a leak or crash shows up here.
	if [ -n "$NETD_PID" ]; then
		netd_term
		if [ "$NETD_STATUS" -ne 0 ] && [ "$rc" -eq 0 ]; then
			echo "FAIL: kvnet-netd exited with status $NETD_STATUS on SIGTERM (crash or sanitizer report)"
			rc=1
		fi
	fi
	for p in "${KV_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${KV_PIDS[@]}"; do
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	for ns in "${KV_NAMESPACES[@]}"; do
		# Kill anything still running inside before deleting it.
		for p in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$p" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
	done
	if [ -n "$KV_TMP" ] && [ -d "$KV_TMP" ]; then
		if [ "$rc" -ne 0 ] && [ "$rc" -ne $KSFT_SKIP ] && [ -z "$NETD_LOG_SHOWN" ] && [ -n "$NETD_LOG" ] && [ -s "$NETD_LOG" ]; then
			echo "---- netd log (last 40 lines) ----"
			tail -n 40 "$NETD_LOG"
			echo "----------------------------------"
		fi
		if [ -n "${KV_KEEP_TMP:-}" ] && [ "$rc" -ne 0 ]; then
			echo "---- KV_KEEP_TMP: kept $KV_TMP ----"
		else
			rm -rf "$KV_TMP"
		fi
	fi
	exit "$rc"
}

# kv_init [noroot]: temp dir, cleanup trap, requirements. "noroot" for tests that need no namespaces.
kv_init() {
	if [ "${1:-}" != noroot ]; then
		require_root
		require_cmd ip jq nft ping timeout socat
	fi
	require_cmd jq
	KV_TMP=$(mktemp -d /tmp/kvnet-it.XXXXXX)
	trap kv_cleanup EXIT
	trap 'exit 1' INT TERM
	trap 'echo "FAIL: line $LINENO: command failed: $BASH_COMMAND" >&2' ERR
	KV_CACHE=$KV_TMP/cni-cache
	mkdir -p "$KV_CACHE"
}

# setup_node: the node namespace with forwarding on. setup_ext: plus the ext namespace.
setup_node() {
	mkns NODE_NS node
	ip netns exec "$NODE_NS" sysctl -qw net.ipv4.ip_forward=1
	ip netns exec "$NODE_NS" sysctl -qw net.ipv6.conf.all.forwarding=1 2>/dev/null || true
}

setup_ext() {
	mkns EXT_NS ext
	ip link add kvx0 netns "$NODE_NS" type veth peer name kvx1 netns "$EXT_NS"
	ip -n "$NODE_NS" addr add "$EXT_NODE_ADDR/24" dev kvx0
	ip -n "$EXT_NS" addr add "$EXT_ADDR/24" dev kvx1
	ip -n "$NODE_NS" link set kvx0 up
	ip -n "$EXT_NS" link set kvx1 up
}

# kvnet_setup VAR...: the usual start of a test of the kvnet plugin: the node namespace, one sandbox
# namespace per VAR (SBX_A -> kvt-sbxa-<random>), netd on the node, and conf = kvnet-basic.conflist
# rendered for CNI 1.1.0.
kvnet_setup() {
	local v p
	setup_node
	for v in "$@"; do
		p=${v//_/}
		mkns "$v" "${p,,}"
	done
	start_netd "$NODE_NS"
	conf=$(render_conf kvnet-basic.conflist 1.1.0)
}

# ---------------------------------------------------------------- clusters (scripts/cluster.sh)

# cluster_up PREFIX [VAR=VALUE...]: a 2-node cluster named PREFIX-<random> in $KV_TMP/cluster
# (environment VAR=VALUE for cluster.sh), brought down at exit; sources its cluster.env (NODE<i>_NS,
# NODE<i>_SOCK, NODE<i>_LOG, ...). Sets CLUSTER, CL_NAME, CL_DIR.
cluster_up() {
	local prefix=$1
	shift
	CLUSTER=$KV_ROOT/scripts/cluster.sh
	[ -x "$CLUSTER" ] || die "$CLUSTER missing"
	export KVNET_BUILD
	CL_NAME=$prefix-$(rand_suffix)
	CL_DIR=$KV_TMP/cluster
	at_exit '"$CLUSTER" down --name "$CL_NAME" --dir "$CL_DIR" >/dev/null 2>&1'
	env "$@" "$CLUSTER" up 2 --name "$CL_NAME" --dir "$CL_DIR" >"$KV_TMP/up.out" 2>&1 || {
		cat "$KV_TMP/up.out"
		die "cluster.sh up 2 failed"
	}
	# shellcheck disable=SC1091
	source "$CL_DIR/cluster.env"
}

# cluster_claims_conflists: $KV_TMP/n1.conflist and n2.conflist, the cluster's VM network (bridge kvbr0,
# 10.88.0.0/24, one range .10-.30 on both nodes) through each node's netd socket; on I VERB ARGS runs the
# CNI plugin with node I's conflist in node I's namespace. After cluster_up (test-cluster-claims*).
cluster_claims_conflists() {
	local i sockv
	for i in 1 2; do
		sockv=NODE${i}_SOCK
		cat >"$KV_TMP/n$i.conflist" <<EOF
{ "cniVersion": "1.1.0", "name": "kvcluster",
  "plugins": [ { "type": "kvnet", "binding": "bridge", "bridge": "kvbr0", "mtu": 1500,
    "ipam": { "ranges": [ [ { "subnet": "10.88.0.0/24", "gateway": "10.88.0.1",
                              "rangeStart": "10.88.0.10", "rangeEnd": "10.88.0.30" } ] ] },
    "socket": "${!sockv}" } ] }
EOF
	done
}
on() {
	local i=$1
	shift
	local ns=NODE${i}_NS
	NODE_NS=${!ns} cni "$1" "$KV_TMP/n$i.conflist" "${@:2}"
}

# cluster_pod_dirs: per node I of the cluster (1, 2) the pod runtime's dirs $KV_TMP/nI/{conf,cache,state}, the
# conf dir holding the kvnet conflist of the cluster's VM network (as scripts/kvnet-sim.sh writes for kvnet-node).
# After cluster_up.
cluster_pod_dirs() {
	local i sockv
	for i in 1 2; do
		mkdir -p "$KV_TMP/n$i/conf" "$KV_TMP/n$i/cache" "$KV_TMP/n$i/state"
		sockv=NODE${i}_SOCK
		cat >"$KV_TMP/n$i/conf/10-kvnet.conflist" <<EOF
{ "cniVersion": "1.1.0", "name": "kvcluster",
  "plugins": [ { "type": "kvnet", "binding": "bridge", "bridge": "$BRIDGE", "mtu": 1500, "socket": "${!sockv}",
                 "capabilities": { "mac": true },
                 "ipam": { "ranges": [ [ { "subnet": "$VM_SUBNET", "gateway": "$VM_GATEWAY" } ] ],
                           "routes": [ { "dst": "0.0.0.0/0" } ] } } ] }
EOF
	done
}

# assert_cluster_netd_clean: no sanitizer report in the netd log of either node of the cluster.
assert_cluster_netd_clean() {
	local i lv
	for i in 1 2; do
		lv=NODE${i}_LOG
		if grep -Eq 'Sanitizer|runtime error:' "${!lv}"; then
			fail "node$i netd log free of sanitizer reports"
			grep -E -A20 'Sanitizer|runtime error:' "${!lv}" | head -40
		else
			pass "node$i netd log free of sanitizer reports"
		fi
	done
}

# ---------------------------------------------------------------- netd

kvctl() { "$KV_BIN/kvnetctl" --socket "$NETD_SOCK" "$@"; }

# start_netd [NODE_NS] [extra netd args]: reuses NETD_STATE if set (restart on the same state).
# netd_lines NS LINE...: the request lines sent to $NETD_SOCK on one connection from namespace NS, the replies
# printed one per line (as a client that pipelines its requests).
netd_lines() {
	local ns=$1
	shift
	ip netns exec "$ns" python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall("".join(a + "\n" for a in sys.argv[2:]).encode())
f = s.makefile("r")
for _ in sys.argv[2:]: sys.stdout.write(f.readline())' "$NETD_SOCK" "$@"
}

start_netd() {
	local ns=${1:-$NODE_NS}
	shift || true
	[ -n "$NETD_STATE" ] || NETD_STATE=$KV_TMP/netd-state
	mkdir -p "$NETD_STATE"
	NETD_SOCK=$KV_TMP/netd.sock
	NETD_LOG=$KV_TMP/netd.log
	rm -f "$NETD_SOCK"
	echo "==== netd start $(date +%T.%N)" >>"$NETD_LOG"
	ip netns exec "$ns" "$KV_BIN/kvnet-netd" --socket "$NETD_SOCK" --state-dir "$NETD_STATE" \
		--log-level debug "$@" >>"$NETD_LOG" 2>&1 &
	NETD_PID=$!
	local i
	for i in $(seq 1 100); do
		if ! kill -0 "$NETD_PID" 2>/dev/null; then
			local st=0
			wait "$NETD_PID" 2>/dev/null || st=$?
			NETD_PID=""
			if [ "$st" -eq 0 ] && ! grep -qv '^==== netd' "$NETD_LOG"; then
				skip "kvnet-netd exits 0 at once without serving (not implemented yet)"
			fi
			echo "---- netd log ----"
			cat "$NETD_LOG"
			NETD_LOG_SHOWN=1
			die "kvnet-netd exited during startup (status $st)"
		fi
		if [ -S "$NETD_SOCK" ] && kvctl status >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	echo "---- netd log ----"
	cat "$NETD_LOG"
	NETD_LOG_SHOWN=1
	die "kvnet-netd did not answer 'kvnetctl status' within 10 s"
}

# netd_term: SIGTERM, wait up to 5 s (then SIGKILL); NETD_STATUS = its exit status.
netd_term() {
	NETD_STATUS=0
	[ -n "$NETD_PID" ] || return 0
	kill -TERM "$NETD_PID" 2>/dev/null || true
	local i
	for i in $(seq 1 50); do
		kill -0 "$NETD_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$NETD_PID" 2>/dev/null || true
	wait "$NETD_PID" 2>/dev/null || NETD_STATUS=$?
	NETD_PID=""
}

# stop_netd: graceful stop; a non-zero exit status (crash, sanitizer report) is a failure.
stop_netd() {
	[ -n "$NETD_PID" ] || return 0
	netd_term
	if [ "$NETD_STATUS" -eq 0 ]; then
		pass "kvnet-netd exited cleanly on SIGTERM"
	else
		fail "kvnet-netd exited cleanly on SIGTERM (status $NETD_STATUS)"
	fi
}

kill9_netd() {
	[ -n "$NETD_PID" ] || return 0
	kill -KILL "$NETD_PID" 2>/dev/null || true
	wait "$NETD_PID" 2>/dev/null || true
	NETD_PID=""
}

# ---------------------------------------------------------------- CNI

# render_conf TEMPLATE [CNIVERSION]: copies conf/TEMPLATE with @SOCKET@, @CNIVERSION@, @DATADIR@ substituted;
# prints the new path.
render_conf() {
	local tpl=$KV_CONF_DIR/$1 ver=${2:-1.1.0} out
	out=$KV_TMP/$(basename "$1" .conflist)-$ver-$(rand_suffix).conflist
	sed -e "s|@SOCKET@|${NETD_SOCK:-$KV_TMP/netd.sock}|g" -e "s|@CNIVERSION@|$ver|g" \
		-e "s|@DATADIR@|$KV_TMP/host-local|g" "$tpl" >"$out"
	jq -e . "$out" >/dev/null || die "rendered config $out is not valid JSON"
	echo "$out"
}

# cni CMD CONFLIST CID SANDBOX_NS IFNAME [cnichain options]: runs the chain inside the node namespace.
cni() {
	local cmd=$1 conf=$2 cid=$3 sbx=$4 ifname=$5
	shift 5
	local netns=""
	[ -n "$sbx" ] && netns=$(nspath "$sbx")
	ip netns exec "$NODE_NS" "$CNICHAIN" "$cmd" "$conf" "$cid" "$netns" "$ifname" \
		--cache-dir "$KV_CACHE" --path "$KV_CNI_PATH" "$@"
}

# cni_global CMD CONFLIST [options]: status / gc / version.
cni_global() {
	local cmd=$1 conf=$2
	shift 2
	ip netns exec "$NODE_NS" "$CNICHAIN" "$cmd" "$conf" --cache-dir "$KV_CACHE" --path "$KV_CNI_PATH" "$@"
}

# cni_fail_code CMD ...: runs cni expecting failure; prints the CNI error code ("none" when it succeeded,
# "error" when the runner failed without a plugin error code).
cni_fail_code() {
	local err=$KV_TMP/cni-err.$$ rc=0
	cni "$@" >/dev/null 2>"$err" || rc=$?
	if [ "$rc" -eq 0 ]; then
		echo none
		return 0
	fi
	local code
	code=$(sed -n 's/^cnichain: .* failed: code \(-\{0,1\}[0-9]*\).*/\1/p' "$err" | tail -n 1)
	echo "${code:-error}"
}

# plugin_raw STDIN_FILE VAR=VALUE...: execs build/bin/kvnet directly (inside the node namespace) with
# exactly the given CNI_* environment. Sets RAW_RC and RAW_OUT (stdout).
plugin_raw() {
	local in=$1
	shift
	RAW_RC=0
	RAW_OUT=$(ip netns exec "$NODE_NS" env -i PATH="$PATH" ASAN_OPTIONS="$ASAN_OPTIONS" \
		UBSAN_OPTIONS="$UBSAN_OPTIONS" CNI_PATH="$KV_CNI_PATH" "$@" "$KV_BIN/kvnet" <"$in" 2>"$KV_TMP/raw.err") ||
		RAW_RC=$?
}

# ---------------------------------------------------------------- assertions

assert_eq() {
	local got=$1 want=$2 what=$3
	if [ "$got" == "$want" ]; then
		pass "$what"
	else
		fail "$what (got '$got', want '$want')"
	fi
}

assert_ne() {
	local got=$1 other=$2 what=$3
	if [ "$got" != "$other" ]; then
		pass "$what"
	else
		fail "$what (both '$got')"
	fi
}

assert_true() {
	local what=$1
	shift
	if "$@" >/dev/null 2>&1; then
		pass "$what"
	else
		fail "$what (command failed: $*)"
	fi
}

assert_false() {
	local what=$1
	shift
	if "$@" >/dev/null 2>&1; then
		fail "$what (command unexpectedly succeeded: $*)"
	else
		pass "$what"
	fi
}

assert_ping() {
	local ns=$1 addr=$2
	local what=${3:-"ping $addr from $ns"}
	if ip netns exec "$ns" ping -q -c 2 -i 0.2 -W 2 "$addr" >/dev/null 2>&1; then
		pass "$what"
	else
		fail "$what"
	fi
}

assert_no_ping() {
	local ns=$1 addr=$2
	local what=${3:-"no ping $addr from $ns"}
	if ip netns exec "$ns" ping -q -c 1 -W 1 "$addr" >/dev/null 2>&1; then
		fail "$what"
	else
		pass "$what"
	fi
}

link_exists() { ip -n "$1" link show dev "$2" >/dev/null 2>&1; }

assert_link() {
	if link_exists "$1" "$2"; then pass "link $2 present in $1"; else fail "link $2 present in $1"; fi
}

# netd deletes links of a DEL in a batch shortly after answering (the link reaper, see
# docs/ARCHITECTURE.md): a DEL takes them out of service at once, deletion follows within ~100 ms.
# So "absent" allows up to 3 s; a link that is still there then was leaked.
assert_no_link() {
	local i
	for i in $(seq 1 30); do
		link_exists "$1" "$2" || break
		sleep 0.1
	done
	if link_exists "$1" "$2"; then fail "link $2 absent from $1"; else pass "link $2 absent from $1"; fi
}

# A retired link is down at once (the bridge forwards nothing to it) even before it is deleted.
assert_link_retired() {
	local flags
	flags=$(ip -n "$1" -o link show dev "$2" 2>/dev/null || true)
	if [ -z "$flags" ] || ! grep -q '[<,]UP[,>]' <<<"$flags"; then
		pass "link $2 in $1 out of service"
	else
		fail "link $2 in $1 out of service (still up: $flags)"
	fi
}

# Number of veth links in a namespace.
count_veth() { ip -n "$1" -o link show type veth 2>/dev/null | wc -l; }

nft_kvnet() { ip netns exec "$NODE_NS" nft list table inet kvnet 2>/dev/null; }

# (The table is read into a variable first: with pipefail, grep -q closing the pipe early would
# make nft die of SIGPIPE and the pipeline fail.)
assert_nft_has() {
	local t
	t=$(nft_kvnet || true)
	if grep -Fqw -- "$1" <<<"$t"; then
		pass "nft table inet kvnet holds $1"
	else
		fail "nft table inet kvnet holds $1"
		echo "---- nft list table inet kvnet ----"
		head -n 60 <<<"$t"
	fi
}

assert_nft_lacks() {
	local t
	t=$(nft_kvnet || true)
	if grep -Fqw -- "$1" <<<"$t"; then
		fail "nft table inet kvnet no longer holds $1"
	else
		pass "nft table inet kvnet no longer holds $1"
	fi
}

# ---------------------------------------------------------------- traffic

# wait_listen NS PORT: waits (max 5 s) until a TCP listener is up on PORT in NS.
wait_listen() {
	local ns=$1 port=$2 i
	for i in $(seq 1 50); do
		if [ -n "$(ip netns exec "$ns" ss -Hltn "sport = :$port" 2>/dev/null)" ]; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# tcp_serve_peer NS PORT: a listener that answers every connection with the peer address it sees.
tcp_serve_peer() {
	local ns=$1 port=$2
	bg ip netns exec "$ns" timeout 60 socat "TCP-LISTEN:$port,reuseaddr,fork" SYSTEM:'echo $SOCAT_PEERADDR'
	wait_listen "$ns" "$port" || die "listener on $ns:$port did not come up"
}

# tcp_serve_text NS PORT TEXT: a listener answering every connection with TEXT.
tcp_serve_text() {
	local ns=$1 port=$2 text=$3
	bg ip netns exec "$ns" timeout 60 socat "TCP-LISTEN:$port,reuseaddr,fork" SYSTEM:"echo $text"
	wait_listen "$ns" "$port" || die "listener on $ns:$port did not come up"
}

# tcp_get NS ADDR PORT: connects and prints what the server sent (empty on failure).
tcp_get() {
	ip netns exec "$1" timeout 5 socat -u "TCP:$2:$3,connect-timeout=3" STDOUT 2>/dev/null || true
}

# ---------------------------------------------------------------- guests (QEMU, TCG)

GUEST_DIR=${KVNET_CACHE:-/var/cache/kvnet}/guest

# require_guest: QEMU, the test guest in $GUEST_DIR (scripts/guest-image.sh builds it once), and socat
# and curl to talk to it.
require_guest() {
	require_cmd qemu-system-x86_64 socat curl
	"$KV_ROOT/scripts/guest-image.sh" >/dev/null 2>&1 || skip "scripts/guest-image.sh could not build the test guest"
	[ -s "$GUEST_DIR/vmlinuz" ] || skip "no guest kernel in $GUEST_DIR"
}

# guest_image [cidata]: the test guest's kernel and initrd as scripts/guest-image.sh reports them, in
# KERNEL and INITRD. cidata: the guest must be able to read a cloud-init seed disk.
guest_image() {
	local img
	img=$("$KV_ROOT/scripts/guest-image.sh" --quiet) || skip "scripts/guest-image.sh failed (guest image not available)"
	KERNEL=$(sed -n 's/^KVNET_GUEST_KERNEL=//p' <<<"$img")
	INITRD=$(sed -n 's/^KVNET_GUEST_INITRD=//p' <<<"$img")
	{ [ -s "$KERNEL" ] && [ -s "$INITRD" ]; } || skip "guest image incomplete ($img)"
	if [ "${1:-}" = cidata ]; then
		grep -q '^MODULES_LATE=.*isofs' "$(dirname "$KERNEL")/VERSION" ||
			skip "the cached guest cannot read a seed disk (old image)"
	fi
}

# guest_store: the test guest in a local image store of the test, GUEST_IMAGES, under GUEST_REF
# (scripts/lib/guest-vm.sh, which also has guest_vm_yaml). After guest_image.
# shellcheck source=scripts/lib/guest-vm.sh
source "$KV_ROOT/scripts/lib/guest-vm.sh"
guest_store() {
	GUEST_IMAGES=$KV_TMP/images
	"$KV_BIN/kvnet-launcher" image add "$GUEST_REF" --kernel "$KERNEL" --initrd "$INITRD" --image-dir "$GUEST_IMAGES" \
		--replace >/dev/null || die "kvnet-launcher image add $GUEST_REF failed"
}

# ---------------------------------------------------------------- libvirt (scripts/libvirt-node.sh)

# require_libvirt: libvirtd with its QEMU driver.
require_libvirt() {
	[ -x /usr/sbin/libvirtd ] || skip "libvirtd not installed (apt-get install libvirt-daemon libvirt-daemon-driver-qemu)"
	[ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ] ||
		skip "libvirt QEMU driver not installed (libvirt-daemon-driver-qemu)"
}

# require_iso_tool: a tool the launcher builds a cloud-init seed ISO with.
require_iso_tool() {
	{ [ -x /usr/bin/genisoimage ] || [ -x /usr/bin/mkisofs ] || [ -x /usr/bin/xorrisofs ]; } ||
		skip "no ISO tool for the seed disk (genisoimage, mkisofs or xorrisofs)"
}

# libvirt_node_start NAME NS DIR: a private libvirtd in namespace NS with its state in DIR; sets URI.
# At exit (after the hooks registered before it) it shows, after a failure, the launcher logs
# ($KV_TMP/launcher*.log) and libvirt's, then stops the libvirtd.
libvirt_node_start() {
	local out
	at_exit "libvirt_node_stop '$1' '$3'"
	out=$("$KV_ROOT/scripts/libvirt-node.sh" start "$1" "$2" --dir "$3") ||
		die "scripts/libvirt-node.sh start failed"
	URI=$(sed -n 's/^URI=//p' <<<"$out")
	[ -n "$URI" ] || die "libvirt-node.sh printed no URI ($out)"
}

libvirt_node_stop() { # NAME DIR
	[ -d "$2" ] || return 0
	if [ "$KV_EXIT_RC" -ne 0 ] && [ "$KV_EXIT_RC" -ne "$KSFT_SKIP" ]; then
		echo "---- launcher log ----"
		tail -n 30 "$KV_TMP"/launcher*.log 2>/dev/null
		echo "---- libvirtd log ----"
		tail -n 20 "$2/log/libvirt/libvirtd.log" 2>/dev/null
		tail -n 20 "$2"/log/libvirt/qemu/*.log 2>/dev/null
	fi
	"$KV_ROOT/scripts/libvirt-node.sh" stop "$1" --dir "$2" >/dev/null 2>&1
}

# boot_guest SANDBOX MAC LOG [KERNEL_ARGS]: the test guest (scripts/guest-image.sh) in QEMU inside the
# sandbox, on its tap0; serial console to LOG. Sets QEMU_PID (killed at cleanup).
boot_guest() {
	ip netns exec "$1" qemu-system-x86_64 -accel tcg -m 256 -nographic -no-reboot \
		-kernel "$GUEST_DIR/vmlinuz" -initrd "$GUEST_DIR/initrd.img" -append "console=ttyS0 quiet ${4:-}" \
		-netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=n0,mac="$2",romfile= \
		-serial file:"$3" -monitor none -display none >/dev/null 2>&1 &
	QEMU_PID=$!
	KV_PIDS+=("$QEMU_PID")
}

# wait_until SECONDS CMD...: 0 once CMD succeeds (tried every 0.1 s, its output dropped), 1 after SECONDS.
wait_until() {
	local n=$(($1 * 10))
	shift
	for _ in $(seq 1 "$n"); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# wait_ping NS ADDR SECONDS: 0 once ADDR answers a ping from NS.
wait_ping() {
	local i
	for i in $(seq 1 $(($3 * 10))); do
		ip netns exec "$1" ping -c1 -W0.2 "$2" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

# wait_http ADDR: 0 once the guest's HTTP service answers from the node (it starts a moment after
# the guest answers ping).
wait_http() {
	local i
	for i in $(seq 1 300); do
		ip netns exec "$NODE_NS" curl -s -m 1 "http://$1/id" 2>/dev/null | grep -q '^boot_id=' && return 0
		sleep 0.2
	done
	return 1
}

# console_lease LOG: the guest's first "dhcp=bound" console line, waiting up to 10 s (the guest prints
# it just after applying the address: a ping can win that race). Empty if none came.
console_lease() {
	local line= _
	for _ in $(seq 1 100); do
		line=$(tr -d '\r' <"$1" | grep -a 'dhcp=bound' | head -n1 || true)
		[ -n "$line" ] && break
		sleep 0.1
	done
	echo "$line"
}

# ---------------------------------------------------------------- VMs on kvnet-sim through kubectl

# sim_vm_up PREFIX: scripts/kvnet-sim.sh with 2 nodes (kvnet-multus as their meta plugin) for VM tests that need
# NADs, torn down at exit (the agents' and controller's log tails shown after a failure); sets NAME, SDIR, SIM,
# BRIDGE and sim.env's variables. After guest_store. Then: kc (kubectl on the API), ctl N (kvnetctl -o json on
# node N), vmi_field VMI JSONPATH, wait_vmi VMI PHASE [S], pod_json VM (its Running launcher pod), iface_field VMI
# IFACE FIELD (of status.interfaces), node_ns NODE, sim_migrate VMIM VMI, sim_nad_blue (the kvnet NAD "blue":
# VLAN 100, 10.100.0.0/24).
sim_vm_up() {
	SIM=$KV_ROOT/scripts/kvnet-sim.sh
	NAME=$1-$(rand_suffix)
	SDIR=$KV_TMP/sim
	at_exit '"$SIM" down --name "$NAME" --dir "$SDIR" >/dev/null 2>&1'
	at_exit '[ "$KV_EXIT_RC" -eq 0 ] || [ "$KV_EXIT_RC" -eq 4 ] || { for f in "$SDIR"/node*-pods/agent.log; do echo "---- $f"; tail -n 30 "$f"; done; }'
	"$SIM" up --nodes 2 --name "$NAME" --dir "$SDIR" --image-dir "$GUEST_IMAGES" >"$KV_TMP/up.out" 2>&1 ||
		{ cat "$KV_TMP/up.out"; die "kvnet-sim up failed"; }
	# shellcheck disable=SC1091
	source "$SDIR/sim.env"
	BRIDGE=$(sim_env BRIDGE)
}
# node_netd_restart NS SOCK STATE LOG [MERGE]: a simulated node's netd (scripts/cluster.sh's: its config netd.json and
# its pid in netd.pid, both next to its socket) stopped when it runs (SIGTERM, up to 5 s) and started again in NS;
# MERGE, a JSON object, is merged into netd.json first (the next restarts keep it). Sets RESTARTED_NETD_PID; returns
# 0 once the new netd answers on its socket, 1 when it does not within 20 s.
node_netd_restart() {
	local ns=$1 sock=$2 state=$3 log=$4 merge=${5:-} d pid
	d=$(dirname "$sock")
	pid=$(cat "$d/netd.pid" 2>/dev/null || true)
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill "$pid"
		for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
	if [ -n "$merge" ]; then
		jq --argjson x "$merge" '. + $x' "$d/netd.json" >"$d/netd.json.tmp" && mv "$d/netd.json.tmp" "$d/netd.json"
	fi
	rm -f "$sock"
	setsid ip netns exec "$ns" "$KV_BIN/kvnet-netd" --socket "$sock" --state-dir "$state" --config "$d/netd.json" \
		--log-level debug </dev/null >>"$log" 2>&1 &
	RESTARTED_NETD_PID=$!
	echo "$RESTARTED_NETD_PID" >"$d/netd.pid"
	for _ in $(seq 1 200); do
		"$KV_BIN/kvnetctl" --socket "$sock" status >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
sim_env() { sed -n "s/^$1=//p" "$SDIR/cluster/cluster.env"; }
ctl() { "$KV_BIN/kvnetctl" --socket "$(sim_env "NODE$1_SOCK")" -o json "${@:2}"; }
kc() { ip netns exec "$API_NS" env KUBECONFIG="$KUBECONFIG_FILE" HOME="$KV_TMP/home" kubectl "$@"; }
vmi_field() { kc get vmi "$1" -o jsonpath="{$2}" 2>/dev/null; }
wait_vmi() {
	for _ in $(seq 1 "${3:-120}"); do
		[ "$(vmi_field "$1" .status.phase)" = "$2" ] && return 0
		sleep 1
	done
	return 1
}
pod_json() { kc get pods -l "vm.kubevirt.io/name=$1" -o json | jq '[.items[] | select(.status.phase == "Running")][0] // empty'; }
iface_field() { kc get vmi "$1" -o json | jq -r --arg i "$2" --arg f "$3" '.status.interfaces[]? | select(.name == $i) | .[$f] // empty'; }
node_ns() {
	local v=NODE${1#node}_NS
	echo "${!v}"
}
# sim_migrate VMIM VMI: creates the VirtualMachineInstanceMigration and prints its final phase (Succeeded or
# Failed; empty when it has none after 60 s).
sim_migrate() {
	local phase=
	kc create -f - >/dev/null <<EOF
apiVersion: kubevirt.io/v1
kind: VirtualMachineInstanceMigration
metadata: {name: $1}
spec: {vmiName: $2}
EOF
	for _ in $(seq 1 240); do
		phase=$(kc get vmim "$1" -o jsonpath='{.status.phase}' 2>/dev/null || true)
		case "$phase" in Succeeded | Failed) break ;; esac
		sleep 0.25
	done
	echo "$phase"
}
sim_nad_blue() {
	kc apply -f - >/dev/null <<EOF
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: blue}
spec:
  config: '{"cniVersion": "1.1.0", "name": "blue", "type": "kvnet", "binding": "bridge", "bridge": "$BRIDGE", "vlan": 100,
            "mtu": 1500, "ipam": {"ranges": [[{"subnet": "10.100.0.0/24", "gateway": "10.100.0.1"}]]}}'
EOF
}

# ---------------------------------------------------------------- result parsing

# first IPv4 address (without prefix) of a CNI result
result_ip4() { jq -r '[.ips[] | select(.address | test("^[0-9.]+/")) | .address][0] | split("/")[0]'; }

# console_ip6 LOG [SECONDS]: the guest's first DHCPv6 console line ("... ip6=<addr>/128 ... dhcp6=bound",
# printed by the guest's dhcpcd hook), waiting up to SECONDS (default 30). Empty if none came.
console_ip6() { console_line "$1" ' ip6=.* dhcp6=bound' "${2:-30}"; }

# console_line LOG PATTERN [SECONDS]: the first KVNET-GUEST console line matching the extended regex
# PATTERN, waiting up to SECONDS (default 30). Empty if none came.
console_line() {
	local line= _ data
	for _ in $(seq 1 $((${3:-30} * 10))); do
		# complete lines only: the guest writes a line in pieces at emulated serial speed, and a
		# line still being written would match with its end missing
		data=$(tr -d "\r" <"$1" 2>/dev/null; echo x)
		data=${data%x}
		case "$data" in *$'\n') ;; *$'\n'*) data=${data%$'\n'*}$'\n' ;; *) data="" ;; esac
		line=$(printf '%s' "$data" | grep -a -E "^KVNET-GUEST .*$2" | head -n1 || true)
		[ -n "$line" ] && break
		sleep 0.1
	done
	echo "$line"
}

# first IPv6 address (without prefix) of a CNI result
result_ip6() { jq -r '[.ips[] | select(.address | contains(":")) | .address][0] // "" | split("/")[0]'; }
