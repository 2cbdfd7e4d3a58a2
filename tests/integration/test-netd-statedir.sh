#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# netd's state directory full or read-only (docs/RELIABILITY.md): every change that cannot be recorded is
# refused with a clear error naming the state and the cause, and leaves nothing behind (no link, no address
# or IPAM claim, no endpoint); what was recorded before keeps working, and once space is back (or the
# directory writable again) the same requests succeed and a restart keeps every attachment.
# The state dir is a small tmpfs in the test's own mount namespace (the test re-runs itself under
# `unshare --mount`), so nothing is mounted on the machine.
set -euo pipefail
if [ -z "${KV_STATEDIR_MNTNS:-}" ]; then
	command -v unshare >/dev/null 2>&1 || { echo "SKIP: unshare not installed (util-linux)"; exit 4; }
	KV_STATEDIR_MNTNS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
setup_node
mkns SBX sbx

NETD_STATE=$KV_TMP/netd-state
mkdir -p "$NETD_STATE"
mount -t tmpfs -o size=8m,mode=0700 kvnet-state "$NETD_STATE"
at_exit "umount -l '$NETD_STATE' 2>/dev/null"
start_netd "$NODE_NS"
conf=$(render_conf kvnet-basic.conflist 1.1.0)
jq '.plugins[0].ipMasq = false' "$conf" >"$KV_TMP/net.conflist"
conf=$KV_TMP/net.conflist

n_links() { ip -n "$SBX" -o link show 2>/dev/null | grep -c '^[0-9]*: eth' || true; }
n_eps() { kvctl -o json endpoints | jq length; }
n_claims() { kvctl -o json ipam | jq '.claims | length'; }
# assert_state N WHAT: N attachments, no more: sandbox links, netd's endpoints, IPAM claims, host veths.
assert_state() {
	assert_eq "$(n_links)" "$1" "$2: $1 interfaces in the sandbox"
	assert_eq "$(n_eps)" "$1" "$2: $1 endpoints"
	assert_eq "$(n_claims)" "$1" "$2: $1 IPAM claims"
	assert_eq "$(count_veth "$NODE_NS")" "$1" "$2: $1 host-side veths"
}

# ---------------------------------------------------------------- attachments while there is room
for i in 0 1 2; do
	cni add "$conf" "cid-$i" "$SBX" "eth$i" >/dev/null
done
assert_state 3 "room"

# ---------------------------------------------------------------- full
# The tmpfs filled to the last byte. netd's journals own zeroed room for their changes, so attachments
# on a network it has go on being recorded; a new network needs a new file: refused, nothing left.
dd if=/dev/zero of="$NETD_STATE/filler" bs=64k 2>/dev/null || true
assert_eq "$(df --output=avail "$NETD_STATE" | tail -n1 | tr -d ' ')" 0 "the state dir is full"
for i in 3 4 5 6 7; do
	cni add "$conf" "cid-$i" "$SBX" "eth$i" >/dev/null || fail "ADD eth$i on a known network with the disk full"
done
assert_state 8 "full: the known network's ADDs recorded in the journals' own room"
jq '.name = "kvfull2" | .plugins[0].bridge = "kvbr2" | .plugins[0].ipam.ranges[0][0] = {"subnet": "10.89.0.0/24"}' \
	"$conf" >"$KV_TMP/net2.conflist"
conf2=$KV_TMP/net2.conflist
code=$(cni_fail_code add "$conf2" cid-n2 "$SBX" eth8)
err=$(cat "$KV_TMP/cni-err.$$")
log "new network, disk full: code $code: $err"
assert_eq "$code" 5 "full: ADD on a new network refused with code 5 (I/O)"
assert_true "the error names the cause (No space left on device)" grep -q "No space left on device" <<<"$err"
assert_true "the error names what netd could not write" grep -q "$NETD_STATE" <<<"$err"
assert_state 8 "after the refused ADD"
assert_no_link "$NODE_NS" kvbr2
assert_eq "$(find "$NETD_STATE" -name '*.tmp*' | wc -l)" 0 "no half-written file left"
for i in 0 1 2 3 4 5 6 7; do
	cni check "$conf" "cid-$i" "$SBX" "eth$i" || fail "CHECK eth$i passes with the state dir full"
done
assert_true "a recorded attachment carries traffic" ip netns exec "$SBX" ping -c 1 -W 2 -I eth7 10.88.0.1

# netd restarted on the full disk: it starts (its journals are kept as they are instead of compacted into
# new files it has no room for) and keeps every attachment.
netd_term
# ... also with a change that a crash cut short at the end of the endpoints' journal
python3 - "$NETD_STATE/endpoints.journal" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    data = f.read()
    f.seek(data.index(b"\0"))
    f.write(b'0123456789abcdef {"k":"torn-by-a-crash","v":{')
PY
start_netd "$NODE_NS"
assert_true "restart on a full disk: the cut-short change is ignored" grep -q "ignoring an unfinished last change" "$NETD_LOG"
assert_true "restart on a full disk: the journals are appended to as they are" \
	grep -q "no space for its compacted copy" "$NETD_LOG"
assert_state 8 "restart on a full disk"
assert_true "restart on a full disk: DEL recorded" cni del "$conf" cid-7 "$SBX" eth7
assert_true "restart on a full disk: ADD recorded" cni add "$conf" cid-7 "$SBX" eth7
assert_state 8 "restart on a full disk, DEL and ADD"

rm -f "$NETD_STATE/filler"
assert_true "space back: the new network's ADD succeeds" cni add "$conf2" cid-n2 "$SBX" eth8
assert_state 9 "space back"
cni del "$conf2" cid-n2 "$SBX" eth8
netd_term
start_netd "$NODE_NS"
assert_state 8 "a restart with room again (the journals compacted)"
assert_false "no trace of the cut-short change" grep -q "torn-by-a-crash" "$NETD_STATE/endpoints.journal"

# ---------------------------------------------------------------- read-only
# A state dir that became read-only (e.g. a file system remounted read-only after an error): netd does
# not start, says why, and changes nothing.
netd_term
mount -o remount,ro "$NETD_STATE"
sum_before=$(find "$NETD_STATE" -type f -exec sha256sum {} + | sort)
rc=0
ip netns exec "$NODE_NS" timeout 20 "$KV_BIN/kvnet-netd" --socket "$KV_TMP/netd-ro.sock" --state-dir "$NETD_STATE" \
	>"$KV_TMP/netd-ro.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && pass "netd refuses to start on a read-only state dir (exit $rc)" ||
	fail "netd refuses to start on a read-only state dir (exit $rc)"
assert_true "its log names the state dir and the cause" grep -q "state dir '$NETD_STATE'.*Read-only file system" \
	"$KV_TMP/netd-ro.log"
assert_false "it does not blame another netd" grep -q "in use by another" "$KV_TMP/netd-ro.log"
assert_eq "$(find "$NETD_STATE" -type f -exec sha256sum {} + | sort)" "$sum_before" "state files unchanged"
log "start on a read-only dir: $(grep -m1 "Read-only" "$KV_TMP/netd-ro.log" | cut -c1-200)"
code=$(cni_fail_code add "$conf" cid-ro "$SBX" ethro)
assert_eq "$code" 11 "ADD while netd is down: code 11 (try again)"

# ---------------------------------------------------------------- writable again: everything kept
mount -o remount,rw "$NETD_STATE"
start_netd "$NODE_NS"
assert_state 8 "restart on a writable state dir"
for i in 0 1 2 3 4 5 6 7; do
	cni check "$conf" "cid-$i" "$SBX" "eth$i" || fail "CHECK eth$i passes after the restart"
	cni del "$conf" "cid-$i" "$SBX" "eth$i"
done
assert_state 0 "every DEL"
stop_netd
finish
