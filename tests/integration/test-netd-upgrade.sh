#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Upgrade compatibility: a netd of this version starts on the state of the previous release and keeps
# every attachment. The previous release (commit 9fdf641, the last one before the restructuring of
# issue #11) is built once from git history into ${KVNET_CACHE:-/var/cache/kvnet}/netd-9fdf641 and
# reused; a clone without that commit (shallow) skips.
# With the OLD kvnet-netd, kvnetctl and kvnet plugin: a container on the bridge binding with ipMasq and
# a port mapping, a VM tap attachment (KVNET_VM_NAME) and a masquerade-binding VM attachment. Then the
# old netd stops and the NEW one starts on the same state dir: the same endpoints (modulo ordering),
# CHECK passes for each, every link keeps its ifindex, the nft table still holds their addresses,
# traffic flows (container <-> ext, the port mapping), and DEL (new plugin) removes everything.
# kvnet-test-timeout: 1200
set -euo pipefail
source "$(dirname "$0")/lib.sh"

OLD_COMMIT=9fdf641

kv_init
require_kvnet
require_cmd git make flock
git -C "$KV_ROOT" cat-file -e "$OLD_COMMIT^{commit}" 2>/dev/null ||
	skip "commit $OLD_COMMIT is not in this clone (shallow?): cannot build the previous release"

# old_release_build: the previous release's kvnet-netd, kvnetctl and kvnet plugin, built once (under a
# lock, into a temporary tree renamed into place) and reused. Sets OLD_BIN.
old_release_build() {
	local cache=${KVNET_CACHE:-/var/cache/kvnet}/netd-$OLD_COMMIT tmp
	OLD_BIN=$cache/build/bin
	mkdir -p "$(dirname "$cache")"
	exec {lock}>"$cache.lock"
	flock "$lock"
	if [ ! -x "$OLD_BIN/kvnet-netd" ] || [ ! -x "$OLD_BIN/kvnetctl" ] || [ ! -x "$OLD_BIN/kvnet" ]; then
		log "building the release at $OLD_COMMIT in $cache (once)"
		tmp=$cache.tmp.$$
		rm -rf "$tmp" "$cache"
		mkdir -p "$tmp"
		git -C "$KV_ROOT" archive "$OLD_COMMIT" | tar -x -C "$tmp"
		if ! make -C "$tmp" -j2 build/bin/kvnet-netd build/bin/kvnetctl build/bin/kvnet >"$tmp.log" 2>&1; then
			tail -n 30 "$tmp.log"
			rm -rf "$tmp"
			die "building $OLD_COMMIT failed (log: $tmp.log)"
		fi
		rm -f "$tmp.log"
		mv "$tmp" "$cache"
	fi
	exec {lock}>&-
}
old_release_build
NEW_BIN=$KV_BIN

# use_release old|new: which kvnet-netd, kvnetctl and kvnet plugin the lib.sh helpers run.
use_release() {
	case "$1" in
	old) KV_BIN=$OLD_BIN ;;
	new) KV_BIN=$NEW_BIN ;;
	esac
	KV_CNI_PATH=$KV_BIN:$REF_CNI_DIR
}

setup_node
setup_ext
mkns SBX_C ctr
mkns SBX_V vmbr
mkns SBX_M vmmasq
conf=$(render_conf kvnet-basic.conflist 1.1.0)
pm='[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]'
vmargs() { echo "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;KVNET_VM_NAME=$1;KVNET_VM_INTERFACE=default;KVNET_VM_BINDING=$2"; }

# ---------------------------------------------------------------- the previous release
use_release old
start_netd "$NODE_NS"
ip_c=$(cni add "$conf" cid-ctr "$SBX_C" eth0 --cap portMappings="$pm" | result_ip4)
ip_v=$(cni add "$conf" cid-vm-bridge "$SBX_V" tap0 --args "$(vmargs vm-bridge bridge)" | result_ip4)
ip_m=$(cni add "$conf" cid-vm-masq "$SBX_M" tap0 --args "$(vmargs vm-masq masquerade)" | result_ip4)
log "old release: container $ip_c, VM (bridge) $ip_v, VM (masquerade) $ip_m"
assert_eq "$(kvctl -o json endpoints | jq length)" 3 "old netd lists 3 endpoints"

# the records as kvnetctl shows them; of a VM's DHCP responder only that it serves its tap (its counters are the
# running process's, and a newer netd may count more things)
# (what this version records and the old one did not: the port's anti-spoofing, the sandbox's identity)
endpoints() {
	kvctl -o json endpoints |
		jq -S 'map(del(.antiSpoofing, .netnsId) | if .dhcp then .dhcp |= {ifname} else . end) | sort_by(.key)'
}
claims() { kvctl -o json ipam | jq -S '[.claims[] | {network, key, ips, mac, state, owner}] | sort_by(.key)'; }
# every link of the node and the sandboxes with its ifindex
links() {
	local ns
	for ns in "$NODE_NS" "$SBX_C" "$SBX_V" "$SBX_M"; do
		ip -n "$ns" -j link show | jq -c --arg ns "${ns%-*}" '[.[] | {ns: $ns, ifname, ifindex}] | sort_by(.ifname)'
	done
}
eps_old=$(endpoints)
claims_old=$(claims)
links_old=$(links)
masq_table_old=$(ip netns exec "$SBX_M" nft list table inet kvnet-masq 2>/dev/null || true)
assert_true "the masquerade VM's sandbox has its table inet kvnet-masq" test -n "$masq_table_old"

tcp_serve_peer "$EXT_NS" 9000
tcp_serve_text "$SBX_C" 80 hello-from-c
assert_ping "$SBX_C" "$EXT_ADDR" "old release: ping container -> ext"
assert_eq "$(tcp_get "$EXT_NS" "$EXT_NODE_ADDR" 8080)" hello-from-c "old release: ext -> $EXT_NODE_ADDR:8080 reaches the container"

stop_netd

# ---------------------------------------------------------------- this version, same state dir
use_release new
start_netd "$NODE_NS"
log "new netd started on the old state dir"

assert_eq "$(endpoints)" "$eps_old" "every endpoint still listed, unchanged"
assert_eq "$(kvctl -o json endpoints | jq '[.[] | select(.antiSpoofing == true)] | length')" 3 \
	"the upgraded attachments are anti-spoofed from now on"
ports=$(ip netns exec "$NODE_NS" nft list set bridge kvnet-ports ports)
for h in $(kvctl -o json endpoints | jq -r '.[].hostIfname'); do
	assert_true "the new netd's start filters the old port $h" grep -qF "\"$h\"" <<<"$ports"
done
assert_eq "$(claims)" "$claims_old" "every IPAM claim unchanged"
assert_eq "$(links)" "$links_old" "every link kept (same names and ifindex)"
assert_true "CHECK container passes" cni check "$conf" cid-ctr "$SBX_C" eth0 --cap portMappings="$pm"
assert_true "CHECK VM (bridge) passes" cni check "$conf" cid-vm-bridge "$SBX_V" tap0 --args "$(vmargs vm-bridge bridge)"
assert_true "CHECK VM (masquerade) passes" cni check "$conf" cid-vm-masq "$SBX_M" tap0 --args "$(vmargs vm-masq masquerade)"
assert_nft_has "$ip_c"
assert_nft_has "$ip_v"
assert_nft_has "$ip_m"
assert_eq "$(ip netns exec "$SBX_M" nft list table inet kvnet-masq 2>/dev/null || true)" "$masq_table_old" \
	"the masquerade VM's table inet kvnet-masq unchanged"
assert_true "nat still lists the container as masqueraded" jq -e --arg a "$ip_c" '.masquerade | index($a) != null' \
	<<<"$(kvctl -o json nat)"
assert_ping "$SBX_C" "$EXT_ADDR" "new netd: ping container -> ext"
assert_eq "$(tcp_get "$SBX_C" "$EXT_ADDR" 9000)" "$EXT_NODE_ADDR" "new netd: egress container -> ext masqueraded"
assert_eq "$(tcp_get "$EXT_NS" "$EXT_NODE_ADDR" 8080)" hello-from-c "new netd: ext -> $EXT_NODE_ADDR:8080 reaches the container"

# ---------------------------------------------------------------- DEL with this version's plugin
host_links=$(jq -r '.[].hostIfname // empty' <<<"$eps_old")
cni del "$conf" cid-ctr "$SBX_C" eth0 --cap portMappings="$pm"
cni del "$conf" cid-vm-bridge "$SBX_V" tap0 --args "$(vmargs vm-bridge bridge)"
cni del "$conf" cid-vm-masq "$SBX_M" tap0 --args "$(vmargs vm-masq masquerade)"
assert_no_link "$SBX_C" eth0
assert_no_link "$SBX_V" tap0
assert_no_link "$SBX_M" tap0
for l in $host_links; do
	assert_no_link "$NODE_NS" "$l"
done
assert_nft_lacks "$ip_c"
assert_nft_lacks "$ip_v"
assert_nft_lacks "$ip_m"
assert_false "the masquerade VM's table inet kvnet-masq is gone" ip netns exec "$SBX_M" nft list table inet kvnet-masq
assert_eq "$(kvctl -o json endpoints | jq length)" 0 "no endpoints after DEL"
# a VM keeps its address over a DEL (it comes back in another pod when it migrates or restarts)
assert_eq "$(kvctl -o json ipam | jq -c '[.claims[].key] | sort')" \
	'["vm/default/vm-bridge/default","vm/default/vm-masq/default"]' "after DEL only the VMs' claims remain"
assert_eq "$(tcp_get "$EXT_NS" "$EXT_NODE_ADDR" 8080)" "" "port mapping gone after DEL"
stop_netd

finish
