#!/usr/bin/env bash
# Bad input to the kvnet plugin: each case exits non-zero with a CNI error object on stdout
# carrying the expected code and a message naming the field; none of them changes anything
# (no endpoints, links or claims). DEL of an unknown attachment succeeds.
# The error cases need only the plugin; the "nothing changed" checks need kvnet-netd (without it
# the test reports the error cases and then exits 4).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet_plugin
setup_node
mkns SBX_A sbxa

have_netd=1
netd_reason=""
if ! (require_kvnet) >"$KV_TMP/req.out" 2>&1; then
	have_netd=0
	netd_reason=$(sed "s/^SKIP: //" "$KV_TMP/req.out")
fi
[ "$have_netd" -eq 1 ] && start_netd "$NODE_NS"

list=$(render_conf kvnet-basic.conflist 1.1.0)
# A single network config (what the plugin reads on stdin).
jq '.plugins[0] + {name: .name, cniVersion: .cniVersion}' "$list" >"$KV_TMP/good.json"
NETNS=$(nspath "$SBX_A")
ENV_OK=(CNI_COMMAND=ADD CNI_CONTAINERID=cid-bad CNI_NETNS="$NETNS" CNI_IFNAME=eth0)

links_before=$(ip -n "$NODE_NS" -o link show | wc -l)

# bad_case NAME WANT_CODES(regex) MSG_REGEX STDIN_FILE [ENV...]
bad_case() {
	local name=$1 want=$2 msgre=$3 in=$4
	shift 4
	plugin_raw "$in" "$@"
	local code msg
	code=$(echo "$RAW_OUT" | jq -r '.code // empty' 2>/dev/null || true)
	msg=$(echo "$RAW_OUT" | jq -r '.msg // empty' 2>/dev/null || true)
	if [ "$RAW_RC" -eq 0 ]; then
		fail "$name: plugin exited 0 (stdout: ${RAW_OUT:0:200})"
	elif ! echo "$RAW_OUT" | jq -e 'type == "object" and has("code") and has("msg")' >/dev/null 2>&1; then
		fail "$name: stdout is not a CNI error object (exit $RAW_RC, stdout: ${RAW_OUT:0:200})"
	elif ! [[ "$code" =~ ^($want)$ ]]; then
		fail "$name: code $code, want $want (msg: $msg)"
	elif ! echo "$msg $(echo "$RAW_OUT" | jq -r '.details // empty')" | grep -Eq -- "$msgre"; then
		fail "$name: msg does not name the field /$msgre/: '$msg'"
	else
		pass "$name -> code $code: $msg"
	fi
	if [ -s "$KV_TMP/raw.err" ] && grep -q 'Sanitizer\|runtime error' "$KV_TMP/raw.err"; then
		fail "$name: sanitizer report"
		cat "$KV_TMP/raw.err"
	fi
}

printf '{"cniVersion":"1.1.0","name":"kvtest","type":"kvnet",' >"$KV_TMP/malformed.json"
bad_case "malformed JSON" 6 "JSON|json|line" "$KV_TMP/malformed.json" "${ENV_OK[@]}"

jq '.mtu = "x"' "$KV_TMP/good.json" >"$KV_TMP/mtu.json"
bad_case "mtu of the wrong type" "6|7" "mtu" "$KV_TMP/mtu.json" "${ENV_OK[@]}"

jq '.vlan = 5000' "$KV_TMP/good.json" >"$KV_TMP/vlan.json"
bad_case "vlan 5000" 7 "vlan.*5000|5000.*vlan" "$KV_TMP/vlan.json" "${ENV_OK[@]}"

jq '.binding = "carrier-pigeon"' "$KV_TMP/good.json" >"$KV_TMP/binding.json"
bad_case "unknown binding" 7 "binding" "$KV_TMP/binding.json" "${ENV_OK[@]}"

# 2 MiB config: a valid object padded with a huge string
python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["pad"]="x"*(2*1024*1024); print(json.dumps(c))' \
	"$KV_TMP/good.json" >"$KV_TMP/big.json"
bad_case "oversized config (2 MiB)" "6|7" "byte|size|large|limit" "$KV_TMP/big.json" "${ENV_OK[@]}"

bad_case "unknown CNI_ARGS key" "4|7" "FOOBAR" "$KV_TMP/good.json" "${ENV_OK[@]}" CNI_ARGS="FOOBAR=1"

bad_case "missing CNI_IFNAME" 4 "CNI_IFNAME" "$KV_TMP/good.json" \
	CNI_COMMAND=ADD CNI_CONTAINERID=cid-bad CNI_NETNS="$NETNS"

jq '.prevResult = {"cniVersion":"1.1.0","interfaces":[{"name":"eth0","sandbox":"'"$NETNS"'"}],
	"ips":[{"address":"10.88.0.50/24","interface":0}]}' "$KV_TMP/good.json" >"$KV_TMP/ipamprev.json"
bad_case "ipam together with prevResult" 7 "ipam|prevResult" "$KV_TMP/ipamprev.json" "${ENV_OK[@]}"

bad_case "missing CNI_COMMAND" 4 "CNI_COMMAND" "$KV_TMP/good.json" \
	CNI_CONTAINERID=cid-bad CNI_NETNS="$NETNS" CNI_IFNAME=eth0

jq '.cniVersion = "9.9.9"' "$KV_TMP/good.json" >"$KV_TMP/ver.json"
bad_case "unsupported cniVersion" 1 "9.9.9|cniVersion" "$KV_TMP/ver.json" "${ENV_OK[@]}"

# Cases that netd may be the one to judge (IPAM config, the sandbox): only with netd running.
if [ "$have_netd" -eq 1 ]; then
	jq '.ipam.ranges[0][0].subnet = "10.88.0.0/33"' "$KV_TMP/good.json" >"$KV_TMP/subnet.json"
	bad_case "bad subnet" 7 "subnet" "$KV_TMP/subnet.json" "${ENV_OK[@]}"

	bad_case "CNI_NETNS that does not exist" "4|3" "CNI_NETNS|netns|/nonexistent" "$KV_TMP/good.json" \
		CNI_COMMAND=ADD CNI_CONTAINERID=cid-bad CNI_NETNS=/nonexistent/netns-kvt CNI_IFNAME=eth0
else
	log "bad subnet / missing CNI_NETNS cases skipped: netd not available"
fi

# kvnet-netd refuses a --socket that sun_path cannot hold, naming it, before touching anything (run in
# the node netns all the same, should that regress)
if [ -x "$KV_BIN/kvnet-netd" ]; then
	long_sock="$KV_TMP/$(printf 'x%.0s' $(seq 1 120)).sock"
	rc=0
	ip netns exec "$NODE_NS" timeout 10 "$KV_BIN/kvnet-netd" --socket "$long_sock" --state-dir "$KV_TMP/netd-long" >"$KV_TMP/long.out" 2>&1 || rc=$?
	assert_eq "$rc" 2 "netd: too long --socket exits 2"
	if grep -qF "kvnet-netd: --socket: unix socket path is ${#long_sock} bytes, over the 107 that sun_path allows: '${long_sock:0:150}" "$KV_TMP/long.out"; then
		pass "netd: too long --socket is named with its length"
	else
		fail "netd: too long --socket is named with its length (got: $(head -c 300 "$KV_TMP/long.out"))"
	fi
	assert_false "netd: nothing created for a too long --socket" test -e "$KV_TMP/netd-long"
	# an unknown --log-level is named with the levels there are, before anything starts
	rc=0
	ip netns exec "$NODE_NS" timeout 10 "$KV_BIN/kvnet-netd" --log-level verbose --socket "$KV_TMP/lvl.sock" \
		--state-dir "$KV_TMP/netd-lvl" >"$KV_TMP/lvl.out" 2>&1 || rc=$?
	assert_eq "$rc" 2 "netd: unknown --log-level exits 2"
	assert_true "netd: unknown --log-level is named with the levels" \
		grep -qF "kvnet-netd: --log-level: unknown level 'verbose' (emerg, alert" "$KV_TMP/lvl.out"
	assert_false "netd: nothing created for an unknown --log-level" test -e "$KV_TMP/netd-lvl"
fi

# nothing changed
assert_no_link "$SBX_A" eth0
assert_eq "$(ip -n "$SBX_A" -o link show | wc -l)" 1 "sandbox has only lo"
assert_eq "$(ip -n "$NODE_NS" -o link show | wc -l)" "$links_before" "no link created in the node"

# DEL of an unknown attachment succeeds (needs netd, or at least must not fail on bad state)
if [ "$have_netd" -eq 1 ]; then
	assert_eq "$(kvctl -o json endpoints | jq length)" 0 "no endpoints after the bad inputs"
	assert_eq "$(kvctl -o json ipam | jq '.claims | length')" 0 "no claims after the bad inputs"
	assert_false "nft table holds no 10.88.0.x element" sh -c "ip netns exec $NODE_NS nft list table inet kvnet 2>/dev/null | grep -q '10\.88\.0\.[0-9]*[, }]'"
	plugin_raw "$KV_TMP/good.json" CNI_COMMAND=DEL CNI_CONTAINERID=cid-unknown CNI_NETNS="$NETNS" CNI_IFNAME=eth0
	assert_eq "$RAW_RC" 0 "DEL of an unknown attachment succeeds"
	plugin_raw "$KV_TMP/good.json" CNI_COMMAND=DEL CNI_CONTAINERID=cid-unknown CNI_NETNS=/nonexistent/x CNI_IFNAME=eth0
	assert_eq "$RAW_RC" 0 "DEL of an unknown attachment with a vanished netns succeeds"
	assert_eq "$(kvctl -o json endpoints | jq length)" 0 "still no endpoints"
	finish
fi
[ "$KV_FAILS" -eq 0 ] || finish
skip "error cases passed; state checks need kvnet-netd: $netd_reason"
