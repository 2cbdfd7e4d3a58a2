#!/usr/bin/env bash
# The plugin with netd not running: ADD fails with code 11 (try again later), STATUS with 50,
# DEL does not pretend to succeed silently either way, and nothing is created in the sandbox.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet_plugin
setup_node
mkns SBX_A sbxa
NETD_SOCK=$KV_TMP/no-such-netd.sock # never started
conf=$(render_conf kvnet-netd-down.conflist 1.1.0)

assert_eq "$(cni_fail_code add "$conf" cid-a "$SBX_A" eth0)" 11 "ADD with netd down: code 11"
assert_no_link "$SBX_A" eth0
assert_eq "$(cni_fail_code status "$conf" "" "" "")" 50 "STATUS with netd down: code 50"

# Socket path exists but nobody listens (stale socket file).
python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" "$NETD_SOCK" 2>/dev/null ||
	touch "$NETD_SOCK"
assert_eq "$(cni_fail_code add "$conf" cid-a "$SBX_A" eth0)" 11 "ADD with a stale socket: code 11"
assert_eq "$(cni_fail_code status "$conf" "" "" "")" 50 "STATUS with a stale socket: code 50"

finish
