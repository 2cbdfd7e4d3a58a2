#!/usr/bin/env bash
# The chain runner itself (tests/tools/cnichain), against fake plugins that record what they get:
# name/cniVersion/prevResult injection, runtimeConfig limited to declared capabilities, the
# environment, the cache, DEL in reverse with the cached result and capabilities, CHECK with the
# cached result, STATUS/GC only for 1.1.0 plugins, GC's valid attachments, error propagation.
# Needs no root and no network.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init noroot
require_cnichain

FAKE=$KV_TMP/plugins
mkdir -p "$FAKE"
export FAKE_LOG=$KV_TMP/log
mkdir -p "$FAKE_LOG"
cat >"$FAKE/fake" <<'PLUGIN'
#!/usr/bin/env bash
set -euo pipefail
type=$(basename "$0")
in=$(cat)
n=$(ls "$FAKE_LOG" | wc -l)
printf '%s' "$in" >"$FAKE_LOG/$(printf %03d "$n")-$CNI_COMMAND-$type.json"
env | grep '^CNI_' | sort >"$FAKE_LOG/$(printf %03d "$n")-$CNI_COMMAND-$type.env"
if [ "${FAKE_FAIL:-}" = "$type" ]; then
	echo '{"cniVersion":"1.0.0","code":7,"msg":"fake: boom"}'
	exit 1
fi
case "$CNI_COMMAND" in
VERSION)
	if [ "$type" = fakeold ]; then
		echo '{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}'
	else
		echo '{"cniVersion":"1.1.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}'
	fi
	;;
ADD)
	echo "$in" | jq -c --arg t "$type" --arg ns "$CNI_NETNS" '
		(.prevResult // {cniVersion: .cniVersion, interfaces: [], ips: []})
		| .interfaces += [{name: $t, sandbox: $ns}]'
	;;
*) ;;
esac
PLUGIN
chmod +x "$FAKE/fake"
for t in fakea fakeb fakeold; do ln -s fake "$FAKE/$t"; done

cat >"$KV_TMP/list.conflist" <<'CONF'
{
  "cniVersion": "1.1.0",
  "name": "fakenet",
  "plugins": [
    { "type": "fakea", "capabilities": { "portMappings": true } },
    { "type": "fakeold", "capabilities": { "mac": true, "ips": false } },
    { "type": "fakeb" }
  ]
}
CONF
run() { "$CNICHAIN" "$@" --cache-dir "$KV_TMP/cache" --path "/nonexistent:$FAKE"; }
logf() { ls "$FAKE_LOG"/*-"$1"-"$2".json | tail -n 1; }

res=$(run add "$KV_TMP/list.conflist" cid1 /var/run/netns/fake eth0 --args 'A=1;B=2' \
	--cap portMappings='[{"hostPort":1,"containerPort":2}]' --cap mac='"aa:bb:cc:dd:ee:ff"' --cap ips='["10.0.0.9/24"]')
assert_eq "$(echo "$res" | jq -c '[.interfaces[].name]')" '["fakea","fakeold","fakeb"]' "ADD result collects all plugins in order"
a=$(logf ADD fakea)
o=$(logf ADD fakeold)
b=$(logf ADD fakeb)
assert_eq "$(jq -r '.name + " " + .cniVersion' "$a")" "fakenet 1.1.0" "name and cniVersion injected"
assert_eq "$(jq -r 'has("prevResult")' "$a")" false "first plugin gets no prevResult"
assert_eq "$(jq -c '[.prevResult.interfaces[].name]' "$b")" '["fakea","fakeold"]' "third plugin gets the second's result"
assert_eq "$(jq -c '.runtimeConfig' "$a")" '{"portMappings":[{"hostPort":1,"containerPort":2}]}' "runtimeConfig: only declared portMappings"
assert_eq "$(jq -c '.runtimeConfig' "$o")" '{"mac":"aa:bb:cc:dd:ee:ff"}' "runtimeConfig: mac yes, ips:false no"
assert_eq "$(jq -r 'has("runtimeConfig")' "$b")" false "no capabilities declared: no runtimeConfig"
env_a=${a%.json}.env
assert_true "environment passed" grep -qx 'CNI_ARGS=A=1;B=2' "$env_a"
assert_true "CNI_IFNAME passed" grep -qx 'CNI_IFNAME=eth0' "$env_a"
assert_true "CNI_CONTAINERID passed" grep -qx 'CNI_CONTAINERID=cid1' "$env_a"
assert_true "CNI_PATH passed" grep -qx "CNI_PATH=/nonexistent:$FAKE" "$env_a"
assert_true "cache entry written" test -f "$KV_TMP/cache/results/fakenet-cid1-eth0"

run add "$KV_TMP/list.conflist" cid2 /var/run/netns/fake2 net1 >/dev/null

assert_true "CHECK passes" run check "$KV_TMP/list.conflist" cid1 /var/run/netns/fake eth0
c=$(logf CHECK fakea)
assert_eq "$(jq -c '[.prevResult.interfaces[].name]' "$c")" '["fakea","fakeold","fakeb"]' "CHECK gets the cached final result"
assert_eq "$(jq -c '.runtimeConfig' "$c")" '{"portMappings":[{"hostPort":1,"containerPort":2}]}' "CHECK gets the cached capabilities"

# STATUS: 1.1.0 plugins only
before=$(ls "$FAKE_LOG" | grep -c STATUS || true)
assert_true "STATUS passes" run status "$KV_TMP/list.conflist"
assert_eq "$(ls "$FAKE_LOG" | grep -c 'STATUS-fakeold' || true)" 0 "STATUS skips a plugin without 1.1.0"
assert_eq "$(ls "$FAKE_LOG" | grep -c 'STATUS-fakea.json' || true)" 1 "STATUS runs fakea"
assert_eq "$(jq -r 'has("prevResult")' "$(logf STATUS fakeb)")" false "STATUS has no prevResult"
assert_eq "$before" 0 "no STATUS before"

# GC: valid attachments from the cache, or from --valid
assert_true "GC passes" run gc "$KV_TMP/list.conflist"
assert_eq "$(jq -c '."cni.dev/valid-attachments" | sort_by(.containerID)' "$(logf GC fakea)")" \
	'[{"containerID":"cid1","ifname":"eth0"},{"containerID":"cid2","ifname":"net1"}]' "GC valid attachments from the cache"
assert_true "GC --valid passes" run gc "$KV_TMP/list.conflist" --valid cid2:net1
assert_eq "$(jq -c '."cni.dev/valid-attachments"' "$(logf GC fakeb)")" '[{"containerID":"cid2","ifname":"net1"}]' "GC --valid list"
assert_eq "$(ls "$FAKE_LOG" | grep -c 'GC-fakeold' || true)" 0 "GC skips a plugin without 1.1.0"

# VERSION
assert_eq "$(run version "$KV_TMP/list.conflist" | jq -c '[.[].type]')" '["fakea","fakeold","fakeb"]' "VERSION asks every plugin"

# DEL: reverse order, cached prevResult and runtimeConfig, cache removed
n0=$(ls "$FAKE_LOG" | wc -l)
run del "$KV_TMP/list.conflist" cid1 /var/run/netns/fake eth0
assert_eq "$(ls "$FAKE_LOG" | sed -n 's/^[0-9]*-DEL-\(.*\)\.json$/\1/p' | tr '\n' ' ')" "fakeb fakeold fakea " "DEL runs in reverse order"
d=$(logf DEL fakea)
assert_eq "$(jq -c '[.prevResult.interfaces[].name]' "$d")" '["fakea","fakeold","fakeb"]' "DEL gets the cached result"
assert_eq "$(jq -c '.runtimeConfig' "$d")" '{"portMappings":[{"hostPort":1,"containerPort":2}]}' "DEL gets the cached capabilities"
assert_false "DEL removed the cache entry" test -e "$KV_TMP/cache/results/fakenet-cid1-eth0"
assert_true "DEL without a cache entry still runs and succeeds" run del "$KV_TMP/list.conflist" cid1 /var/run/netns/fake eth0
assert_eq "$(( $(ls "$FAKE_LOG" | wc -l) - n0 ))" 12 "two DELs ran 3 plugins each (json+env)"

# Errors: exit 1, error object and code on stderr, no cache written
rc=0
FAKE_FAIL=fakeold run add "$KV_TMP/list.conflist" cid3 /var/run/netns/fake eth0 >"$KV_TMP/out" 2>"$KV_TMP/err" || rc=$?
assert_eq "$rc" 1 "failing plugin: exit status 1"
assert_true "failing plugin: code shown" grep -q 'fakeold ADD failed: code 7' "$KV_TMP/err"
assert_true "failing plugin: error object shown" grep -q '"fake: boom"' "$KV_TMP/err"
assert_eq "$(cat "$KV_TMP/out")" "" "failing plugin: nothing on stdout"
assert_false "failing plugin: no cache entry" test -e "$KV_TMP/cache/results/fakenet-cid3-eth0"
assert_eq "$(ls "$FAKE_LOG" | grep -c 'ADD-fakeb.json' || true)" 2 "chain stops at the failing plugin"
rc=0
"$CNICHAIN" add "$KV_TMP/list.conflist" cid4 /x eth0 --cache-dir "$KV_TMP/cache" --path /nonexistent >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 1 "missing plugin binary: exit status 1"
rc=0
run add "$KV_TMP/list.conflist" cid4 >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 2 "usage error: exit status 2"

# A single network config (no "plugins") works as a one-plugin list.
echo '{"cniVersion":"1.0.0","name":"single","type":"fakea"}' >"$KV_TMP/single.conf"
assert_eq "$(run add "$KV_TMP/single.conf" cid5 /x eth0 | jq -c '[.interfaces[].name]')" '["fakea"]' "single config"

# Before 0.4.0 DEL gets no prevResult (libcni behaviour).
jq '.cniVersion = "0.3.1"' "$KV_TMP/single.conf" >"$KV_TMP/single031.conf"
run add "$KV_TMP/single031.conf" cid6 /x eth0 >/dev/null
run del "$KV_TMP/single031.conf" cid6 /x eth0
assert_eq "$(jq -r 'has("prevResult")' "$(logf DEL fakea)")" false "0.3.1 DEL without prevResult"

finish
