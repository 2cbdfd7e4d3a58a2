#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs kvnet's tests:  tests/run.sh [unit|integration|all]
#   KVNET_BUILD   build directory (default: build; `make check` uses build/san)
#   KVNET_TESTS   optional space-separated filter of test names (e.g. "test-kvnet-basic test-ipam")
# Unit tests: every $KVNET_BUILD/tests/test-* binary (cmocka); individual tests are counted from
# the summary lines cmocka prints per group: "[  PASSED  ] N test(s)." (which does not count skipped
# tests), "[  FAILED  ] N test(s), listed below:" and "[  SKIPPED ] N test(s), listed below:". A
# skipped test gives its reason in a "SKIP: <test>: <reason>" line (skip_because() in
# tests/unit/helpers.h); a binary that runs no test and prints a "SKIP:" line counts as one skipped
# test. Integration tests: every tests/integration/test-*.sh,
# sequentially; exit 0 = pass, 4 = skipped (reason shown), anything else = fail.
# Ends with the line "N passed, N failed, N skipped"; exits non-zero if anything failed.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
export KVNET_BUILD=${KVNET_BUILD:-build}
case "$KVNET_BUILD" in
/*) BUILD_DIR=$KVNET_BUILD ;;
*) BUILD_DIR=$ROOT/$KVNET_BUILD ;;
esac
MODE=${1:-all}
case "$MODE" in
unit | integration | all) ;;
*)
	echo "usage: $0 [unit|integration|all]" >&2
	exit 2
	;;
esac

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
TEST_TIMEOUT=${KVNET_TEST_TIMEOUT:-300}

LOGDIR=$(mktemp -d /tmp/kvnet-run.XXXXXX)
trap 'rm -rf "$LOGDIR"' EXIT

passed=0
failed=0
skipped=0
summary=()

selected() {
	[ -z "${KVNET_TESTS:-}" ] && return 0
	local t
	for t in $KVNET_TESTS; do
		[ "$t" = "$1" ] && return 0
	done
	return 1
}

# Sums the N of cmocka's group summary lines "[  <WHAT>  ] N test(s)..." in a log.
cmocka_count() { # LOG REGEX-OF-THE-LINE-AFTER-N
	sed -n "s/^\[  $2 *\] \([0-9]\+\) test(s)$3/\1/p" "$1" | awk '{s += $1} END {print s + 0}'
}

# The skip reasons of a unit test log, one "SKIP: <test>: <reason>" line per skipped test (cmocka
# lists a skipped test as "[  SKIPPED ] <test>"; one that gave no reason gets "(no reason given)").
unit_skip_reasons() { # LOG
	local t
	grep '^SKIP: ' "$1" | awk '!seen[$0]++'
	for t in $(sed -n 's/^\[  SKIPPED \] \([^ ]\+\)$/\1/p' "$1" | sort -u); do
		grep -q "^SKIP: $t: " "$1" || echo "SKIP: $t: (no reason given)"
	done
}

run_unit() {
	local bin name log rc p f s failed_names reasons counts
	local found=0
	for bin in "$BUILD_DIR"/tests/test-*; do
		[ -f "$bin" ] && [ -x "$bin" ] || continue
		case "$bin" in *.o | *.d) continue ;; esac
		name=$(basename "$bin")
		selected "$name" || continue
		found=1
		log=$LOGDIR/unit-$name.log
		echo "=== unit $name"
		rc=0
		timeout "$TEST_TIMEOUT" "$bin" >"$log" 2>&1 || rc=$?
		p=$(cmocka_count "$log" 'PASSED' '\..*')
		f=$(cmocka_count "$log" 'FAILED' ', listed below:.*')
		s=$(cmocka_count "$log" 'SKIPPED' ', listed below:.*')
		reasons=$(unit_skip_reasons "$log")
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			f=1 # crashed, sanitizer abort or timeout: count the binary as one failure
		fi
		if [ "$rc" -eq 0 ] && [ $((p + f + s)) -eq 0 ] && [ -n "$reasons" ]; then
			s=1 # the whole binary skipped (e.g. not root)
		fi
		[ -z "$reasons" ] || echo "$reasons" | sed 's/^/    /'
		passed=$((passed + p))
		failed=$((failed + f))
		skipped=$((skipped + s))
		counts="$p tests"
		[ "$s" -eq 0 ] || counts="$p passed, $s skipped"
		if [ "$rc" -eq 0 ] && [ "$f" -eq 0 ] && [ "$p" -eq 0 ] && [ "$s" -gt 0 ]; then
			summary+=("SKIP  unit/$name: $(echo "$reasons" | head -n 1 | sed 's/^SKIP: //')")
		elif [ "$rc" -eq 0 ] && [ "$f" -eq 0 ]; then
			summary+=("PASS  unit/$name ($counts)")
		else
			failed_names=$(sed -n 's/^\[  FAILED  \] \([^ ]\+\)$/\1/p' "$log" | sort -u | tr '\n' ' ')
			summary+=("FAIL  unit/$name ($p passed, $f failed, $s skipped${failed_names:+: $failed_names}; exit $rc)")
			cat "$log"
		fi
	done
	[ "$found" -eq 1 ] || echo "(no unit test binaries in $BUILD_DIR/tests)"
}

run_integration() {
	local t name log rc reason tt first
	for t in "$ROOT"/tests/integration/test-*.sh; do
		[ -f "$t" ] || continue
		name=$(basename "$t" .sh)
		selected "$name" || continue
		log=$LOGDIR/int-$name.log
		echo "=== integration $name"
		rc=0
		# A test may ask for a longer limit with a header line "# kvnet-test-timeout: SECONDS".
		tt=$(sed -n 's/^# kvnet-test-timeout: *\([0-9][0-9]*\)$/\1/p' "$t" | head -n 1)
		[ -n "$tt" ] && [ "$tt" -gt "$TEST_TIMEOUT" ] || tt=$TEST_TIMEOUT
		timeout --kill-after=10 "$tt" bash "$t" >"$log" 2>&1 || rc=$?
		case "$rc" in
		0)
			passed=$((passed + 1))
			summary+=("PASS  integration/$name")
			# the parts it skipped (lib.sh's skip_part), each counted as a skip
			while IFS= read -r reason; do
				skipped=$((skipped + 1))
				summary+=("SKIP  integration/$name (part): ${reason#SKIP: }")
			done < <(grep '^SKIP: ' "$log" | awk '!seen[$0]++')
			;;
		4)
			skipped=$((skipped + 1))
			reason=$(grep -m1 '^SKIP' "$log" || tail -n 1 "$log")
			summary+=("SKIP  integration/$name: ${reason#SKIP: }")
			echo "    $reason"
			;;
		*)
			failed=$((failed + 1))
			[ "$rc" -eq 124 ] && reason=" (timeout after ${tt}s)" || reason=" (exit $rc)"
			# the first failed check, so that the summary alone says what broke
			first=$(grep -m1 -E '\[FAIL\]$|^FAIL: ' "$log" | sed 's/ *\[FAIL\]$//; s/^TEST: //' | cut -c1-300 || true)
			summary+=("FAIL  integration/$name$reason${first:+: $first}")
			sed 's/^/    /' "$log"
			;;
		esac
	done
}

if [ "$MODE" = unit ] || [ "$MODE" = all ]; then
	run_unit
fi
if [ "$MODE" = integration ] || [ "$MODE" = all ]; then
	run_integration
fi

echo
echo "==== summary ($KVNET_BUILD, $MODE)"
for s in "${summary[@]}"; do
	echo "$s"
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
