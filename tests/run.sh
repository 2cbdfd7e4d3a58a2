#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs kvnet's tests:  tests/run.sh [unit|integration|all]
#   KVNET_BUILD   build directory (default: build; `make check` uses build/san)
#   KVNET_TESTS   optional space-separated filter of test names (e.g. "test-kvnet-basic test-ipam")
# Unit tests: every $KVNET_BUILD/tests/test-* binary (cmocka); individual tests are counted from
# cmocka's "[  PASSED  ]" / "[  FAILED  ]" lines. Integration tests: every tests/integration/test-*.sh,
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

run_unit() {
	local bin name log rc p f failed_names
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
		p=$(sed -n 's/^\[  PASSED  \] \([0-9]\+\) test(s)\..*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
		f=$(sed -n 's/^\[  FAILED  \] \([0-9]\+\) test(s), listed below:.*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			f=1 # crashed, sanitizer abort or timeout: count the binary as one failure
		fi
		passed=$((passed + p))
		failed=$((failed + f))
		if [ "$rc" -eq 0 ] && [ "$f" -eq 0 ]; then
			summary+=("PASS  unit/$name ($p tests)")
		else
			failed_names=$(sed -n 's/^\[  FAILED  \] \([^ ]\+\)$/\1/p' "$log" | sort -u | tr '\n' ' ')
			summary+=("FAIL  unit/$name ($p passed, $f failed${failed_names:+: $failed_names}; exit $rc)")
			cat "$log"
		fi
	done
	[ "$found" -eq 1 ] || echo "(no unit test binaries in $BUILD_DIR/tests)"
}

run_integration() {
	local t name log rc reason tt
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
			summary+=("FAIL  integration/$name$reason")
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
