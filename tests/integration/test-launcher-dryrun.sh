#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# kvnet-launcher --dry-run on every fixture gives exactly the golden domain XML; bad inputs exit 1
# with the offending path on stderr; unimplemented verbs exit 2. Touches no network at all.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
KVNET_BUILD=${KVNET_BUILD:-build}
BIN=$KVNET_BUILD/bin/kvnet-launcher
[ -x "$BIN" ] || { echo "SKIP: $BIN not built"; exit 4; }
D=tests/data/launcher
OPTS=(--image-dir "$D/images" --state-dir /run/kvnet/launcher)
export KVNET_ACCEL=tcg
TMP=$(mktemp -d /tmp/kvlaunch-dry.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fails=0
check() { # name, expected xml, args...
	local name=$1 want=$2
	shift 2
	if "$BIN" --dry-run "$@" "${OPTS[@]}" >"$TMP/out.xml" 2>"$TMP/err" && cmp -s "$TMP/out.xml" "$want"; then
		echo "ok   $name"
	else
		echo "FAIL $name"; diff -u "$want" "$TMP/out.xml" || true; cat "$TMP/err"; fails=$((fails + 1))
	fi
}
for f in bridge-containerdisk masquerade-cloudinit kernelboot multus-vm; do
	check "$f.yaml" "$D/$f.xml" "$D/$f.yaml"
done
check "bridge-containerdisk.json" "$D/bridge-containerdisk.xml" "$D/bridge-containerdisk.json"
check "stdin" "$D/multus-vm.xml" - <"$D/multus-vm.yaml"
check "sriov.yaml --nic" "$D/sriov.xml" "$D/sriov.yaml" --nic fast=pci:0000:3b:02.1 --nic default=tap:tap-vm7:1450

# warnings for ignored fields reach stderr
"$BIN" --dry-run "$D/masquerade-cloudinit.yaml" "${OPTS[@]}" >/dev/null 2>"$TMP/err"
if grep -q '^warning: spec.domain.devices.rng' "$TMP/err" && grep -q "host-passthrough' needs KVM" "$TMP/err"; then
	echo "ok   warnings"
else
	echo "FAIL warnings"; cat "$TMP/err"; fails=$((fails + 1))
fi
# every bad fixture: exit 1 and an error line
for f in "$D"/bad/*; do
	rc=0
	"$BIN" --dry-run "$f" >"$TMP/out" 2>"$TMP/err" || rc=$?
	if [ "$rc" -eq 1 ] && [ ! -s "$TMP/out" ] && grep -q 'err:' "$TMP/err"; then
		echo "ok   reject ${f##*/}: $(grep 'err:' "$TMP/err" | sed 's/.*err: //')"
	else
		echo "FAIL reject ${f##*/} (exit $rc)"; cat "$TMP/err"; fails=$((fails + 1))
	fi
done
rc=0; "$BIN" --run x 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] && echo "ok   --run not implemented (2)" || { echo "FAIL --run exit $rc"; fails=$((fails + 1)); }
unset KVNET_ACCEL
"$BIN" --detect-accel | tee "$TMP/acc"
grep -q '^ACCEL=' "$TMP/acc" || { echo "FAIL --detect-accel"; fails=$((fails + 1)); }
[ "$fails" -eq 0 ]
