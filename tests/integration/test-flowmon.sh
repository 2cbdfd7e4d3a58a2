#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tests/tools/flowmon, the instrument of the live-migration tests, measured against outages we make
# ourselves in two namespaces of our own:
#
#   client 10.77.0.1/24, fd77::1/64 (fm0) --veth-- (fm1) 10.77.0.2/24, fd77::2/64 server
#
# flowmon runs in the client; outages are the server's veth set down for 300 ms.
# Checks: usage/setup errors exit 1 naming the option; ping (IPv4, IPv6) without loss; ping across a
# 300 ms outage (lost ~30, maxGapMs 250..600, outage placed after the SIGUSR1 mark); TCP echo
# surviving the outage (maxStallMs >= 250, closed=false, every line echoed) and noticing a killed
# server (closed=true); TCP sink counting lines, seq gaps, conn= and boot_id= values.
# Bounds are loose on purpose: a loaded 2-core machine running the ASan build must pass.
# Exit 0 pass, 1 fail, 4 skipped (reason printed).
set -euo pipefail

source "$(dirname "$0")/lib.sh"

FLOWMON=$KV_BUILD_DIR/tests/flowmon

kv_init
require_file "$FLOWMON"

mkns CL client
mkns SV server
ip -n "$CL" link add fm0 type veth peer name fm1 netns "$SV"
ip -n "$CL" addr add 10.77.0.1/24 dev fm0
ip -n "$SV" addr add 10.77.0.2/24 dev fm1
# IPv6 addresses would be flushed when the link goes down; the outages below must not lose them.
ip netns exec "$CL" sysctl -qw net.ipv6.conf.fm0.keep_addr_on_down=1
ip netns exec "$SV" sysctl -qw net.ipv6.conf.fm1.keep_addr_on_down=1
# Neighbour resolution must not blur the outages: a dynamic entry goes INCOMPLETE while the carrier is
# down and the kernel then re-solicits only every retrans_time_ms (1 s), queueing (not dropping) the
# requests meanwhile, which stretches a 300 ms outage to ~1.3 s (flowmon rightly reports maxGapMs
# ~1300 and RTTs ~1 s then). The client gets permanent entries (kept across a carrier loss); the
# server, whose entries are flushed by its link-down, re-solicits every 50 ms.
ip netns exec "$SV" sysctl -qw net.ipv4.neigh.fm1.retrans_time_ms=50 net.ipv6.neigh.fm1.retrans_time_ms=50
ip -n "$CL" addr add fd77::1/64 dev fm0 nodad
ip -n "$SV" addr add fd77::2/64 dev fm1 nodad
ip -n "$CL" link set fm0 up
ip -n "$SV" link set fm1 up
SV_MAC=$(ip -n "$SV" -j link show dev fm1 | jq -r '.[0].address')
ip -n "$CL" neigh replace 10.77.0.2 lladdr "$SV_MAC" dev fm0 nud permanent
ip -n "$CL" neigh replace fd77::2 lladdr "$SV_MAC" dev fm0 nud permanent
wait_ping "$CL" 10.77.0.2 5 || die "no IPv4 connectivity between the namespaces"
# (Neighbour discovery right after link-up queues packets for up to ~1 s: resolve before measuring.)
wait_ping "$CL" fd77::2 5 || die "no IPv6 connectivity between the namespaces"

# ---------------------------------------------------------------- helpers

# wait_file PATH: up to 10 s for flowmon's --ready-file.
wait_file() {
	local _
	for _ in $(seq 1 200); do
		[ -e "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

# flap: the server's side of the veth down for 300 ms (the client sees NO-CARRIER).
flap() {
	ip -n "$SV" link set fm1 down
	sleep 0.3
	ip -n "$SV" link set fm1 up
}

# in_range VALUE MIN MAX WHAT
in_range() {
	local v=$1 lo=$2 hi=$3 what=$4
	if [[ "$v" =~ ^-?[0-9]+$ ]] && [ "$v" -ge "$lo" ] && [ "$v" -le "$hi" ]; then
		pass "$what ($v in $lo..$hi)"
	else
		fail "$what (got '$v', want $lo..$hi)"
	fi
}

# fm_wait PID OUT WHAT: flowmon exited 0 with one JSON object on stdout.
fm_wait() {
	local pid=$1 out=$2 what=$3 rc=0
	wait "$pid" || rc=$?
	if [ "$rc" -eq 0 ] && jq -e 'type == "object"' "$out" >/dev/null 2>&1; then
		pass "$what: flowmon exit 0 with a JSON report"
	else
		fail "$what: flowmon exit 0 with a JSON report (exit $rc)"
		cat "$out" "$out.err" 2>/dev/null || true
	fi
	log "$what: $(cat "$out")"
}

j() { jq -r "$2" "$1"; }

# ---------------------------------------------------------------- usage and setup errors

rc=0
"$FLOWMON" >/dev/null 2>"$KV_TMP/err" || rc=$?
assert_eq "$rc" 1 "no measurement asked for: exit 1"
rc=0
ip netns exec "$CL" "$FLOWMON" --ping 10.77.0.300 >"$KV_TMP/out" 2>"$KV_TMP/err" || rc=$?
assert_eq "$rc" 1 "bad --ping address: exit 1"
assert_true "bad --ping address: error names option and value" grep -q -- "--ping: '10.77.0.300'" "$KV_TMP/err"
assert_eq "$(wc -c <"$KV_TMP/out")" 0 "bad --ping address: nothing on stdout"
rc=0
ip netns exec "$CL" "$FLOWMON" --ping 10.77.0.2 --interval-ms 0 >/dev/null 2>"$KV_TMP/err" || rc=$?
assert_eq "$rc" 1 "--interval-ms 0: exit 1"
assert_true "--interval-ms 0: error names option and value" grep -q -- "--interval-ms '0'" "$KV_TMP/err"
rc=0
ip netns exec "$CL" "$FLOWMON" --tcp-echo 10.77.0.2:7 --connect-timeout-ms 2000 >/dev/null 2>"$KV_TMP/err" || rc=$?
assert_eq "$rc" 1 "--tcp-echo without a server: exit 1"
assert_true "--tcp-echo without a server: error names option and value" grep -q -- "--tcp-echo: .*'10.77.0.2:7'" "$KV_TMP/err"

# ---------------------------------------------------------------- (1) ping, no outage

out=$KV_TMP/ping1.json
ip netns exec "$CL" "$FLOWMON" --ping 10.77.0.2 --interval-ms 10 --duration 0.3 >"$out" 2>"$out.err" &
fm_wait $! "$out" "ping 300 ms"
in_range "$(j "$out" .ping.sent)" 20 32 "ping 300 ms: sent ~30"
assert_eq "$(j "$out" .ping.lost)" 0 "ping 300 ms: nothing lost"
assert_eq "$(j "$out" .ping.duplicates)" 0 "ping 300 ms: no duplicates"
in_range "$(j "$out" .ping.maxGapMs)" 0 49 "ping 300 ms: maxGapMs < 50"
assert_true "ping 300 ms: rtt min <= median <= max" \
	jq -e '.ping.rttMs | .min <= .median and .median <= .max and .min > 0' "$out"
assert_true "ping 300 ms: only the sections asked for" jq -e 'keys == ["durationMs","marksMs","ping"]' "$out"

out=$KV_TMP/ping6.json
ip netns exec "$CL" "$FLOWMON" --ping fd77::2 --duration 0.3 >"$out" 2>"$out.err" &
fm_wait $! "$out" "ping6 300 ms"
in_range "$(j "$out" .ping.sent)" 20 32 "ping6 300 ms: sent ~30"
assert_eq "$(j "$out" .ping.lost)" 0 "ping6 300 ms: nothing lost"
in_range "$(j "$out" .ping.maxGapMs)" 0 49 "ping6 300 ms: maxGapMs < 50"

# ---------------------------------------------------------------- (2) ping across a 300 ms outage

out=$KV_TMP/ping2.json
rf=$KV_TMP/ping2.ready
ip netns exec "$CL" "$FLOWMON" --ping 10.77.0.2 --duration 2 --ready-file "$rf" >"$out" 2>"$out.err" &
pid=$!
wait_file "$rf" || die "flowmon --ping did not create its ready file"
sleep 0.6
kill -USR1 "$pid"
flap
fm_wait "$pid" "$out" "ping across a 300 ms outage"
in_range "$(j "$out" .ping.lost)" 20 40 "outage: lost ~30"
in_range "$(j "$out" .ping.maxGapMs)" 250 600 "outage: maxGapMs 250..600"
assert_true "outage: at least one outage listed" jq -e '.ping.outages >= 1 and (.ping.lostTimesMs | length) >= 1' "$out"
in_range "$(j "$out" '[.ping.lostTimesMs[][1]] | max')" 200 600 "outage: longest lostTimesMs duration 250..600"
assert_eq "$(j "$out" '.marksMs | length')" 1 "outage: one SIGUSR1 mark"
# The outage begins after the mark (sent just before the link went down), within 0.5 s of it.
in_range "$(j "$out" '(.ping.lostTimesMs | max_by(.[1]) | .[0]) - .marksMs[0]')" -20 500 \
	"outage: starts 0..500 ms after the mark"
in_range "$(j "$out" .durationMs)" 1900 2600 "outage: durationMs ~2000"

# ---------------------------------------------------------------- (3) TCP echo across an outage, then a killed server

bg ip netns exec "$SV" socat TCP-LISTEN:7,reuseaddr PIPE
srv=$BG_PID
wait_listen "$SV" 7 || die "echo server did not come up"
out=$KV_TMP/echo1.json
rf=$KV_TMP/echo1.ready
ip netns exec "$CL" "$FLOWMON" --tcp-echo 10.77.0.2:7 --duration 3 --ready-file "$rf" >"$out" 2>"$out.err" &
pid=$!
wait_file "$rf" || die "flowmon --tcp-echo did not create its ready file"
sleep 0.8
flap
fm_wait "$pid" "$out" "tcp echo across a 300 ms outage"
assert_eq "$(j "$out" .tcpEcho.connected)" true "tcp echo: connected"
assert_eq "$(j "$out" .tcpEcho.closed)" false "tcp echo: survived the outage (closed=false)"
assert_eq "$(j "$out" .tcpEcho.reconnects)" 0 "tcp echo: no reconnects"
in_range "$(j "$out" .tcpEcho.maxStallMs)" 250 5000 "tcp echo: maxStallMs >= 250"
in_range "$(j "$out" .tcpEcho.sent)" 50 160 "tcp echo: sent ~150 lines at 20 ms"
assert_eq "$(j "$out" .tcpEcho.echoed)" "$(j "$out" .tcpEcho.sent)" "tcp echo: every line echoed in order"
assert_eq "$(j "$out" .tcpEcho.mismatched)" 0 "tcp echo: no mismatched lines"
assert_eq "$(j "$out" .tcpEcho.bytesIn)" "$(j "$out" .tcpEcho.bytesOut)" "tcp echo: bytesIn == bytesOut"
kill "$srv" 2>/dev/null || true
wait "$srv" 2>/dev/null || true

bg ip netns exec "$SV" socat TCP-LISTEN:7,reuseaddr PIPE
srv=$BG_PID
wait_listen "$SV" 7 || die "echo server did not come up (2nd)"
out=$KV_TMP/echo2.json
rf=$KV_TMP/echo2.ready
ip netns exec "$CL" "$FLOWMON" --tcp-echo 10.77.0.2:7 --duration 2 --ready-file "$rf" >"$out" 2>"$out.err" &
pid=$!
wait_file "$rf" || die "flowmon --tcp-echo did not create its ready file (2nd)"
sleep 0.5
kill "$srv"
wait "$srv" 2>/dev/null || true
fm_wait "$pid" "$out" "tcp echo, server killed"
assert_eq "$(j "$out" .tcpEcho.closed)" true "tcp echo: killed server noticed (closed=true)"
assert_true "tcp echo: closed with an error string" jq -e '.tcpEcho.error | type == "string" and length > 0' "$out"
assert_eq "$(j "$out" .tcpEcho.reconnects)" 0 "tcp echo: never reconnects"
in_range "$(j "$out" .tcpEcho.closedMs)" 300 1900 "tcp echo: closedMs after the kill"
in_range "$(j "$out" .tcpEcho.echoed)" 10 100 "tcp echo: lines echoed before the kill"

# ---------------------------------------------------------------- (4) TCP sink

out=$KV_TMP/sink.json
rf=$KV_TMP/sink.ready
ip netns exec "$CL" "$FLOWMON" --tcp-sink 5555 --ready-file "$rf" >"$out" 2>"$out.err" &
pid=$!
wait_file "$rf" || die "flowmon --tcp-sink did not create its ready file"
# conn=1: seq 1..10 every 100 ms, nothing missing.
for i in $(seq 1 10); do
	echo "kvnet boot_id=b00t1 conn=1 seq=$i"
	sleep 0.1
done | ip netns exec "$SV" socat -u - TCP:10.77.0.1:5555
wait_ping "$SV" fd77::1 5 || die "no IPv6 connectivity after the outages"
# conn=2 (IPv6): seq 3 missing, one malformed line.
printf 'kvnet boot_id=b00t1 conn=2 seq=1\nkvnet boot_id=b00t1 conn=2 seq=2\ngarbage\nkvnet boot_id=b00t1 conn=2 seq=4\n' |
	ip netns exec "$SV" socat -u - "TCP:[fd77::1]:5555"
sleep 0.2
kill -TERM "$pid"
fm_wait "$pid" "$out" "tcp sink"
assert_eq "$(j "$out" .tcpSink.connections)" 2 "tcp sink: two connections accepted"
assert_eq "$(j "$out" '.tcpSink.conns[0].lines')" 10 "tcp sink: conn 1: 10 lines"
assert_eq "$(j "$out" '.tcpSink.conns[0].seqGaps')" 0 "tcp sink: conn 1: no seq gaps"
assert_eq "$(j "$out" '[.tcpSink.conns[0].firstSeq, .tcpSink.conns[0].lastSeq] | join(",")')" "1,10" \
	"tcp sink: conn 1: seq 1..10"
assert_eq "$(j "$out" '.tcpSink.conns[0].closed')" true "tcp sink: conn 1 closed"
assert_eq "$(j "$out" '.tcpSink.conns[1].seqGaps')" 1 "tcp sink: conn 2: one missing seq"
assert_eq "$(j "$out" '.tcpSink.conns[1].badLines')" 1 "tcp sink: conn 2: one malformed line"
assert_eq "$(j "$out" '.tcpSink.sinkConnIds | join(",")')" "1,2" "tcp sink: conn ids 1,2"
assert_eq "$(j "$out" '.tcpSink.bootIds | join(",")')" "b00t1" "tcp sink: one boot id"
in_range "$(j "$out" .tcpSink.sinkMaxGapMs)" 60 450 "tcp sink: sinkMaxGapMs ~100 (longest-lived connection)"

finish
