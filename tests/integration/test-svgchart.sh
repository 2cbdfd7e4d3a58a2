#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The benchmarks' charts (tests/tools/svgchart.py, docs/benchmarks.md): the CNI latency chart made from
# BENCH_CNI lines as tests/bench/run.sh prints them renders (rsvg-convert to a PNG of the chart's size) and
# carries the same numbers as the text table (every ADD and DEL median, in order, and the ratio); the migration
# benchmark's timelines (one per migration, its longest gap and figures) and outage chart (medians per binding)
# render and carry the log's numbers; input without figures, or not JSON, is refused naming the file.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_cmd rsvg-convert
PY=/usr/bin/python3
CHART="$PY $KV_ROOT/tests/tools/svgchart.py"
cat >"$KV_TMP/results" <<'TXT'
BENCH_CNI PLUGIN=kvnet N=1 WORKERS=1 ROUNDS=10 ADD_MEDIAN_MS=2.53 ADD_P99_MS=3.90 DEL_MEDIAN_MS=1.82 DEL_P99_MS=2.71
BENCH_CNI PLUGIN=kvnet N=100 WORKERS=1 ROUNDS=1 ADD_MEDIAN_MS=2.50 ADD_P99_MS=8.38 DEL_MEDIAN_MS=1.92 DEL_P99_MS=5.84
BENCH_CNI PLUGIN=kvnet N=100 WORKERS=2 ROUNDS=1 ADD_MEDIAN_MS=3.17 ADD_P99_MS=6.24 DEL_MEDIAN_MS=2.71 DEL_P99_MS=9.09
BENCH_CNI PLUGIN=reference N=1 WORKERS=1 ROUNDS=10 ADD_MEDIAN_MS=29.12 ADD_P99_MS=50.48 DEL_MEDIAN_MS=75.92 DEL_P99_MS=93.21
BENCH_CNI PLUGIN=reference N=100 WORKERS=1 ROUNDS=1 ADD_MEDIAN_MS=35.97 ADD_P99_MS=73.34 DEL_MEDIAN_MS=79.84 DEL_P99_MS=110.52
TXT
$CHART cni "$KV_TMP/results" "$KV_TMP/cni.svg"
assert_true "the chart is an SVG document" grep -q '^<svg xmlns="http://www.w3.org/2000/svg"' "$KV_TMP/cni.svg"
# per case, ADD kvnet, ADD reference, DEL kvnet, DEL reference (a bar the run has no figure for is left out)
assert_eq "$($CHART values "$KV_TMP/cni.svg" | tr '\n' ' ')" "2.53 29.12 1.82 75.92 2.50 35.97 1.92 79.84 3.17 2.71 " \
	"the chart's labels are the table's medians"
assert_true "it gives the ratio kvnet / reference of the ADD medians (2.53 / 29.12 = 0.087)" \
	grep -q 'ADD 0.087×' "$KV_TMP/cni.svg"
rsvg-convert -o "$KV_TMP/cni.png" "$KV_TMP/cni.svg"
png_size() { $PY -c 'import struct, sys; d = open(sys.argv[1], "rb").read(24); print("%s %dx%d" % ((d[:8] == b"\x89PNG\r\n\x1a\n",) + struct.unpack(">II", d[16:24])))' "$1"; }
assert_eq "$(png_size "$KV_TMP/cni.png")" "True 980x460" "rsvg-convert renders it: a PNG of 980 x 460"
assert_true "... not an empty picture ($(stat -c %s "$KV_TMP/cni.png") bytes)" test "$(stat -c %s "$KV_TMP/cni.png")" -gt 10000
# the migration benchmark's pictures: a timeline per migration, the outages per binding
cat >"$KV_TMP/mig.jsonl" <<'TXT'
{"kind":"bridge","migration":"node1 -> node2","rc":0,"result":"QEMU_DOWNTIME_MS=61 SWITCH_PAUSE_MS=250.4","flowmon":{"ping":{"intervalMs":10,"sent":420,"received":418,"lost":2,"maxGapMs":290,"lostTimesMs":[[1800,30]]}}}
{"kind":"bridge","migration":"node2 -> node1","rc":0,"result":"QEMU_DOWNTIME_MS=58","flowmon":{"ping":{"intervalMs":10,"sent":410,"received":407,"lost":3,"maxGapMs":40,"lostTimesMs":[[900,10],[1900,40]]}}}
{"kind":"bare","migration":"a -> b","rc":0,"result":"QEMU_DOWNTIME_MS=66","flowmon":{"ping":{"intervalMs":10,"sent":400,"received":396,"lost":4,"maxGapMs":300,"lostTimesMs":[[1500,10],[1700,40]]}}}
TXT
out=$($CHART migration "$KV_TMP/mig.jsonl" "$KV_TMP/mig" | tr '\n' ' ')
assert_eq "$out" "$KV_TMP/mig/migration-bridge-01.svg $KV_TMP/mig/migration-bridge-02.svg $KV_TMP/mig/migration-bare-01.svg $KV_TMP/mig/migration-outages.svg " \
	"one timeline per migration and the outage chart"
assert_eq "$($CHART values "$KV_TMP/mig/migration-bridge-02.svg")" 40 "a timeline marks its longest gap (40 ms)"
assert_true "... and carries the run's figures (QEMU downtime, lost pings)" \
	grep -q '410 pings, 3 lost: loss-based outage 30 ms; QEMU downtime 58 ms' "$KV_TMP/mig/migration-bridge-02.svg"
assert_eq "$($CHART values "$KV_TMP/mig/migration-outages.svg" | tr '\n' ' ')" "25 40 " \
	"the outage chart's medians: bridge (20, 30) 25 ms, bare 40 ms"
for f in "$KV_TMP"/mig/*.svg; do
	rsvg-convert -o "${f%.svg}.png" "$f"
	assert_eq "$(png_size "${f%.svg}.png" | cut -d' ' -f1)" True "rsvg-convert renders $(basename "$f")"
done
echo '{"kind":' >"$KV_TMP/bad.jsonl"
rc=0
out=$($CHART migration "$KV_TMP/bad.jsonl" "$KV_TMP/bad" 2>&1) || rc=$?
assert_ne "$rc" 0 "a log line that is not JSON fails"
assert_true "... naming the file ($out)" grep -qF "$KV_TMP/bad.jsonl: a line is not JSON" <<<"$out"

echo "BENCH_OTHER X=1" >"$KV_TMP/empty"
rc=0
out=$($CHART cni "$KV_TMP/empty" "$KV_TMP/x.svg" 2>&1) || rc=$?
assert_ne "$rc" 0 "a file without BENCH_CNI lines fails"
assert_true "... naming it ($out)" grep -qF "no BENCH_CNI lines with figures in $KV_TMP/empty" <<<"$out"
finish
