#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/qemu-tcg-wrapper, the guard against QEMU 7.2's TCG migration bug (docs/migration.md,
# "QEMU under TCG"): under TCG a whole-MiB guest RAM gets 8 KiB more on -m and on the pc.ram backend
# alike, nothing else changes (KVM, probing, sizes it cannot parse), firmware and module directories
# are named from /usr/bin. First against a recording stand-in for QEMU (the argument vector it
# would get), then against the real QEMU started from another path: it must boot the machine with
# the new size (QMP query-memory-size-summary). Touches no network.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init noroot
W=$KV_ROOT/scripts/qemu-tcg-wrapper
[ -x "$W" ] || die "$W missing or not executable"

# The stand-in prints its arguments one per line (and QEMU_MODULE_DIR); "-L help" as QEMU does.
FAKE=$KV_TMP/bin/qemu-fake
mkdir -p "$KV_TMP/bin"
cat >"$FAKE" <<'EOF'
#!/bin/bash
if [ "$*" = "-L help" ]; then d=$(dirname "$0"); printf '%s\n' "$d/../share/qemu" "$d/../share/seabios"; exit 0; fi
echo "MODDIR=${QEMU_MODULE_DIR:-}"
printf '%s\n' "$@"
EOF
chmod +x "$FAKE"
run() { KVNET_QEMU_REAL=$FAKE "$W" "$@" 2>"$KV_TMP/err"; }
OBJ='{"qom-type":"memory-backend-ram","id":"pc.ram","size":134217728}'

out=$(run -machine pc-q35-7.2,memory-backend=pc.ram -accel tcg -object "$OBJ" -m 128)
assert_eq "$(grep -x -A1 -- -m <<<"$out" | tail -n1)" 134225920B "TCG, 128 MiB: -m becomes 128 MiB + 8 KiB"
assert_true "TCG, 128 MiB: the pc.ram backend gets the same size" grep -qF '"id":"pc.ram","size":134225920}' <<<"$out"
assert_true "TCG: the change is logged on stderr (QEMU's log)" grep -q 'TCG guest RAM 134217728 -> 134225920' "$KV_TMP/err"
assert_eq "$(grep -c -x -- -L <<<"$out")" 2 "firmware directories passed with -L (one per '-L help' line)"
assert_true "firmware directories named from /usr/bin" grep -qx /usr/bin/../share/seabios <<<"$out"
if compgen -G '/usr/lib/*/qemu/accel-tcg-x86_64.so' >/dev/null; then
	assert_true "QEMU_MODULE_DIR points at the TCG accelerator module" grep -q '^MODDIR=/usr/lib/.*/qemu$' <<<"$out"
fi

out=$(run -machine pc-q35-7.2,memory-backend=pc.ram -accel tcg -object "$OBJ" -m size=131072k,slots=4,maxmem=1048576k)
assert_eq "$(grep -x -A1 -- -m <<<"$out" | tail -n1)" size=134225920B,slots=4,maxmem=1048576k "TCG, size=...k form: the size changes, the rest stays"

out=$(run -machine pc-q35-7.2,memory-backend=pc.ram -accel kvm -object "$OBJ" -m 128)
assert_eq "$(grep -x -A1 -- -m <<<"$out" | tail -n1)" 128 "KVM: -m untouched"
assert_true "KVM: backend size untouched" grep -qF '"size":134217728}' <<<"$out"

out=$(run -machine pc-q35-7.2,accel=tcg,memory-backend=pc.ram -object "$OBJ" -m 128)
assert_eq "$(grep -x -A1 -- -m <<<"$out" | tail -n1)" 134225920B "TCG named in -machine accel=tcg: changed too"

obj2='{"qom-type":"memory-backend-ram","id":"pc.ram","size":134225920}'
out=$(run -accel tcg -object "$obj2" -m 134225920B)
assert_eq "$(grep -x -A1 -- -m <<<"$out" | tail -n1)" 134225920B "TCG, size already off 256 KiB: untouched"

out=$(run -accel tcg -object "$OBJ" -m 256)
assert_eq "$(grep -x -A1 -- -m <<<"$out" | tail -n1)" 256 "-m and backend disagree: untouched (QEMU reports it)"

out=$(run -S -no-user-config -nodefaults -nographic -machine none,accel=tcg -qmp unix:/x)
assert_eq "$(grep -vx -- '-L' <<<"$out" | grep -v '^/usr/bin/\|^MODDIR=' | tr '\n' ' ')" \
	"-S -no-user-config -nodefaults -nographic -machine none,accel=tcg -qmp unix:/x " "libvirt's probe: arguments passed through"

# The real QEMU from another path (as the bind mount at /run/libvirt/kvnet-qemu-real runs it).
if command -v qemu-system-x86_64 >/dev/null; then
	cp "$(command -v qemu-system-x86_64)" "$KV_TMP/bin/qemu-elsewhere"
	sock=$KV_TMP/qmp.sock
	KVNET_QEMU_REAL=$KV_TMP/bin/qemu-elsewhere "$W" -machine pc-q35-7.2,memory-backend=pc.ram -accel tcg \
		-object "$OBJ" -m 128 -display none -nodefaults -S -qmp "unix:$sock,server=on,wait=off" \
		>"$KV_TMP/qemu.out" 2>&1 &
	qpid=$!
	for _ in $(seq 1 100); do [ -S "$sock" ] && break; kill -0 "$qpid" 2>/dev/null || break; sleep 0.1; done
	got=$( (
		echo '{"execute":"qmp_capabilities"}'
		echo '{"execute":"query-memory-size-summary"}'
		sleep 1
	) | timeout 10 socat - "UNIX-CONNECT:$sock" 2>/dev/null | grep base-memory | jq '.return["base-memory"]' || true)
	argv0=$(tr '\0' '\n' <"/proc/$qpid/cmdline" 2>/dev/null | head -n 1 || true)
	kill "$qpid" 2>/dev/null || true
	wait "$qpid" 2>/dev/null || true
	assert_eq "$argv0" "$W" "QEMU's argv[0] is the path it was started as (ps, pgrep and pid checks still see it)"
	assert_eq "$got" 134225920 "real QEMU from another path boots the q35 machine with 128 MiB + 8 KiB (BIOS and TCG module found)"
	[ "$got" = 134225920 ] || sed 's/^/  qemu: /' "$KV_TMP/qemu.out"
else
	log "SKIP real-QEMU part: qemu-system-x86_64 not installed"
fi
finish
