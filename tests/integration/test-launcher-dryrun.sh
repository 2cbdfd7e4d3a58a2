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
# the local image store (docs/images.md): image add, then the manifest's paths inside the image resolve there
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; cat "$TMP/err" 2>/dev/null; fails=$((fails + 1)); }
S=$TMP/store
echo kernel >"$TMP/k" && echo initrd >"$TMP/i"
if "$BIN" image add kvnet.local/demo-guest:latest --kernel "$TMP/k" --initrd "$TMP/i" --image-dir "$S" >"$TMP/out" 2>"$TMP/err" &&
	grep -qx 'IMAGE=kvnet.local/demo-guest:latest' "$TMP/out" && cmp -s "$TMP/k" "$S/kvnet.local/demo-guest:latest/boot/vmlinuz"; then
	ok "image add kvnet.local/demo-guest:latest --kernel --initrd"
else bad "image add"; fi
rc=0; "$BIN" image add kvnet.local/demo-guest:latest --kernel "$TMP/k" --image-dir "$S" 2>"$TMP/err" || rc=$?
[ "$rc" = 1 ] && grep -q 'in the store already (--replace' "$TMP/err" && ok "image add of an existing image needs --replace" || bad "image add twice"
rc=0; "$BIN" image add ../../etc --disk "$TMP/k" --image-dir "$S" 2>"$TMP/err" || rc=$?
[ "$rc" = 1 ] && grep -q "not an image reference" "$TMP/err" && ok "image add ../../etc is refused" || bad "image add ../../etc"
KVNET_ACCEL=tcg "$BIN" --dry-run "$D/kernelboot.yaml" --image-dir "$S" --state-dir /run/kvnet/launcher >"$TMP/out.xml" 2>"$TMP/err"
grep -q "<kernel>$S/kvnet.local/demo-guest:latest/boot/vmlinuz</kernel>" "$TMP/out.xml" && ! grep -q warning "$TMP/err" &&
	ok "kernelBoot image + kernelPath resolve inside the image" || bad "kernelBoot in the store"
rm "$S/kvnet.local/demo-guest:latest/boot/initrd.img" && ln -s /etc/hostname "$S/kvnet.local/demo-guest:latest/boot/initrd.img"
KVNET_ACCEL=tcg "$BIN" --dry-run "$D/kernelboot.yaml" --image-dir "$S" >/dev/null 2>"$TMP/err"
grep -q "initrdPath: image 'kvnet.local/demo-guest:latest': '/boot/initrd.img' goes through a symlink" "$TMP/err" &&
	ok "a symlink in the image is refused (dry-run: warning naming it)" || bad "symlink in the image"
KVNET_ACCEL=tcg "$BIN" --dry-run "$D/kernelboot.yaml" --image-dir "$TMP/empty" >/dev/null 2>"$TMP/err"
grep -q "kernelPath: image store '$TMP/empty'" "$TMP/err" && ok "no store: the warning names it" || bad "no store"
mkdir -p "$TMP/empty"
KVNET_ACCEL=tcg "$BIN" --dry-run "$D/kernelboot.yaml" --image-dir "$TMP/empty" >/dev/null 2>"$TMP/err"
grep -q "image 'kvnet.local/demo-guest:latest' is not in the image store $TMP/empty (add it: kvnet-launcher image add" "$TMP/err" &&
	ok "a missing image: the warning names the reference and how to add it" || bad "missing image"
KVNET_ACCEL=tcg "$BIN" --dry-run "$D/bad/host-disk.yaml" --allow-host-paths >"$TMP/out.xml" 2>"$TMP/err" &&
	grep -q "<source file='/etc/shadow'/>" "$TMP/out.xml" && ok "--allow-host-paths: a host path is taken as is (opt-in)" || bad "--allow-host-paths"

rc=0; "$BIN" --run x 2>/dev/null || rc=$?
[ "$rc" -eq 2 ] && echo "ok   --run not implemented (2)" || { echo "FAIL --run exit $rc"; fails=$((fails + 1)); }
unset KVNET_ACCEL
"$BIN" --detect-accel | tee "$TMP/acc"
grep -q '^ACCEL=' "$TMP/acc" || { echo "FAIL --detect-accel"; fails=$((fails + 1)); }
[ "$fails" -eq 0 ]
