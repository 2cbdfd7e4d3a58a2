#!/usr/bin/env bash
# netd's socket serves root only, by its mode (0600) and by the caller's credentials (SO_PEERCRED): with the mode
# opened by mistake (0666, as a careless chmod or a bind mount into a pod would), a non-root caller is still
# refused with a clear error and changes nothing, and root is still served. A client that sends requests and
# never reads the replies cannot grow netd's memory, and gets every reply once it reads. With the config's
# socketReadGroup, the group's members (primary or supplementary) may use the read-only verbs and nothing else. A
# caller in a pod's network namespace may only ping and notify the migrations of a VM attached there.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
require_cmd setpriv
setup_node
mkns SBX_A sbxa
# under ASan: a small quarantine, so that netd's RSS shows what it holds, not what ASan keeps of what it freed
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}quarantine_size_mb=4"
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

# a client that sends and does not read: netd's memory stays bounded (it stops reading the requests), and once the
# client reads, every reply is there
if command -v python3 >/dev/null; then
	rss0=$(awk '/^VmRSS/ { print $2 }' "/proc/$NETD_PID/status")
	python3 - "$NETD_SOCK" "$NETD_PID" >"$KV_TMP/flood.out" <<'PY'
import socket, sys, time
path, pid = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.setblocking(False)
req = b'{"op":"status","args":{}}\n'
# 400,000 requests would wait for some 14 MB of replies: netd must stop reading long before (its bound is 4 MiB),
# so the client's writes block for good; without the bound they all go through
sent = 0
stalled = 0
end = time.monotonic() + 90
while time.monotonic() < end and stalled < 60 and sent < 400000:
    try:
        s.send(req)
        sent += 1
        stalled = 0
    except BlockingIOError:
        stalled += 1  # blocked: back off a little, then try again (60 in a row: 3 s without progress)
        time.sleep(0.05)
rss = [l for l in open("/proc/%s/status" % pid) if l.startswith("VmRSS")][0].split()[1]
s.setblocking(True)
s.settimeout(60)
got = 0
buf = b""
while got < sent:
    d = s.recv(1 << 20)
    if not d:
        break
    got += d.count(b"\n")
print("sent=%d replies=%d rss_kb=%s stalled=%d" % (sent, got, rss, stalled >= 60))
PY
	read -r sent got rss stalled < <(sed 's/[a-z_]*=//g' "$KV_TMP/flood.out")
	log "flood: $(cat "$KV_TMP/flood.out") (netd's RSS before: ${rss0} kB)"
	assert_eq "$stalled" 1 "netd stopped reading a client that does not read (after $sent requests its writes blocked)"
	assert_true "netd's memory stayed bounded meanwhile (RSS $rss kB, before $rss0 kB)" test "$rss" -lt $((rss0 + 65536))
	assert_eq "$got" "$sent" "once the client read, every request had its reply"
else
	skip_part "no python3: the non-reading client is not run"
fi
# A caller in a pod's network namespace (a launcher runs beside its VM's tap; so may anything a tenant runs there)
# acts for that pod only: ping/status, and the migration notifications of a VM attached in its namespace.
if command -v python3 >/dev/null; then
	mkns SBX_V sbxv
	mkns SBX_W sbxw
	vm_args() { echo "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;KVNET_VM_NAME=$1;KVNET_VM_INTERFACE=default"; }
	cni add "$conf" cid-v "$SBX_V" tap0 --args "$(vm_args vm1)" >/dev/null
	cni add "$conf" cid-w "$SBX_W" tap0 --args "$(vm_args vm2)" >/dev/null
	# req NS JSON: one request to netd from namespace NS; prints the reply
	req() {
		ip netns exec "$1" python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode() + b"\n")
print(s.makefile().readline().strip())' "$NETD_SOCK" "$2"
	}
	abort() { echo "{\"op\":\"migration-source\",\"args\":{\"vmNamespace\":\"default\",\"vmName\":\"$1\",\"phase\":\"aborted\",\"reason\":\"test\"}}"; }
	# served: the verb's own handler answered (here: no migration to abort), not the namespace check
	served='.ok or (.msg | test("network namespace") | not)'
	assert_true "from a pod's namespace: ping answers" jq -e '.ok' <<<"$(req "$SBX_V" '{"op":"ping"}')"
	rc=0
	out=$(ip netns exec "$SBX_V" "$KV_BIN/kvnetctl" --socket "$NETD_SOCK" endpoints 2>&1) || rc=$?
	assert_ne "$rc" 0 "from a pod's namespace: endpoints (other tenants' addresses) refused"
	assert_true "with the reason ($out)" grep -q "may not be used from a pod's network namespace" <<<"$out"
	out=$(req "$SBX_V" '{"op":"del","args":{"network":"kvtest","containerID":"cid-w","ifname":"tap0"}}')
	assert_true "from a pod's namespace: DEL of another pod's attachment refused ($out)" \
		jq -e '.ok == false and (.msg | test("pod.s network namespace"))' <<<"$out"
	assert_true "... and it is still there" link_exists "$SBX_W" tap0
	out=$(req "$SBX_V" "$(abort vm1)")
	assert_true "from vm1's pod: vm1's migration-source is served ($out)" jq -e "$served" <<<"$out"
	out=$(req "$SBX_V" "$(abort vm2)")
	assert_true "from vm1's pod: vm2's migration-source refused ($out)" \
		jq -e '.ok == false and (.msg | test("no attachment in the caller.s network namespace"))' <<<"$out"
	out=$(req "$SBX_W" "$(abort vm2)")
	assert_true "from vm2's pod: vm2's is served" jq -e "$served" <<<"$out"
	assert_true "from the node's namespace: vm2's is served" jq -e "$served" <<<"$(req "$NODE_NS" "$(abort vm2)")"
	assert_true "from the node's namespace: endpoints" jq -e '.ok' <<<"$(req "$NODE_NS" '{"op":"endpoints"}')"
	cni del "$conf" cid-v "$SBX_V" tap0 --args "$(vm_args vm1)"
	cni del "$conf" cid-w "$SBX_W" tap0 --args "$(vm_args vm2)"
else
	skip_part "no python3: requests from a pod's namespace are not sent"
fi

# socketReadGroup: its members may read (kvnetctl status, endpoints, ...) and nothing else
echo '{"socketReadGroup": 4242}' >"$KV_TMP/netd.json"
netd_term
start_netd "$NODE_NS" --config "$KV_TMP/netd.json"
assert_eq "$(stat -c '%a %g' "$NETD_SOCK")" "660 4242" "with socketReadGroup the socket is 0660, group 4242"
reader() { setpriv --reuid=65534 --regid=4242 --clear-groups -- "$@"; }
reader2() { setpriv --reuid=65534 --regid=65534 --groups=4242 -- "$@"; }
assert_true "a member of group 4242 (primary) reads: kvnetctl status" reader "$KV_BIN/kvnetctl" --socket "$NETD_SOCK" status
assert_true "a member of group 4242 (supplementary) reads: kvnetctl endpoints" \
	reader2 "$KV_BIN/kvnetctl" --socket "$NETD_SOCK" endpoints
rc=0
out=$(reader "$KV_BIN/kvnetctl" --socket "$NETD_SOCK" ipam-release kvtest ctr/x/eth0 2>&1) || rc=$?
assert_ne "$rc" 0 "a member of group 4242 may not release a claim"
assert_true "with the reason ($out)" grep -q "may only use the read-only verbs" <<<"$out"
rc=0
out=$(ip netns exec "$NODE_NS" setpriv --reuid=65534 --regid=4242 --clear-groups -- "$CNICHAIN" add "$conf" cid-a \
	"$(nspath "$SBX_A")" eth0 --cache-dir "$KV_TMP/reader-cache" --path "$KV_CNI_PATH" 2>&1) || rc=$?
assert_ne "$rc" 0 "nor ADD"
assert_true "with the reason ($(head -c 200 <<<"$out"))" grep -q "may only use the read-only verbs" <<<"$out"
assert_false "nothing made in the sandbox" link_exists "$SBX_A" eth0
rc=0
out=$(nobody "$KV_BIN/kvnetctl" --socket "$NETD_SOCK" status 2>&1) || rc=$?
assert_ne "$rc" 0 "uid 65534 outside the group is still refused"
assert_true "root still does everything" cni add "$conf" cid-a "$SBX_A" eth0
cni del "$conf" cid-a "$SBX_A" eth0
stop_netd
finish
