#!/usr/bin/env bash
# netd's socket serves root only, by its mode (0600) and by the caller's credentials (SO_PEERCRED): with the mode
# opened by mistake (0666, as a careless chmod or a bind mount into a pod would), a non-root caller is still
# refused with a clear error and changes nothing, and root is still served.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
require_cmd setpriv
setup_node
mkns SBX_A sbxa
start_netd "$NODE_NS"
assert_eq "$(stat -c %a "$NETD_SOCK")" 600 "the socket is created 0600"

chmod 0755 "$KV_TMP"
chmod 0666 "$NETD_SOCK"
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
rc=0
out=$(nobody "$KV_BIN/kvnetctl" --socket "$NETD_SOCK" status 2>&1) || rc=$?
assert_ne "$rc" 0 "kvnetctl as uid 65534 is refused"
assert_true "with the reason ($out)" grep -q "uid 65534 may not use" <<<"$out"
conf=$(render_conf kvnet-basic.conflist 1.1.0)
rc=0
out=$(ip netns exec "$NODE_NS" setpriv --reuid=65534 --regid=65534 --clear-groups -- "$CNICHAIN" add "$conf" cid-a \
	"$(nspath "$SBX_A")" eth0 --cache-dir "$KV_TMP/nobody-cache" --path "$KV_CNI_PATH" 2>&1) || rc=$?
assert_ne "$rc" 0 "a CNI ADD as uid 65534 is refused"
assert_true "with the reason ($(head -c 200 <<<"$out"))" grep -q "may not use" <<<"$out"
assert_false "nothing made in the sandbox" link_exists "$SBX_A" eth0
assert_eq "$(kvctl -o json endpoints | jq length)" 0 "no attachment recorded"
assert_true "netd logged the refusal" grep -q "uid 65534 may not use" "$NETD_LOG"
assert_true "root is still served" kvctl status
stop_netd
finish
