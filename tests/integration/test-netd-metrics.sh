#!/usr/bin/env bash
# netd's metrics endpoint (config "metricsListen", netd/core/metrics.c, docs/metrics.md), scraped with curl and read
# with the reference Prometheus text parser (python3-prometheus-client's text_string_to_metric_families): every
# family parses; the figures move with real operations — 3 ADDs and a refused one (code 7), a CHECK, a DEL: the
# attachments gauge by network/binding/kind, requests by verb and code, the duration histogram (cumulative
# buckets, count = requests), the IPAM range's size and used addresses; /other is 404, a POST 405; bad
# metricsListen values are refused naming the key and value; a VM NIC's counters under KubeVirt's names
# (kubevirt_vmi_network_*{name,namespace,interface}) count the frames its guest sends, anti-spoofing's drops at its
# port (kvnet_netd_antispoof_dropped_*) the spoofed ones; the node NAT's elements follow an ipMasq attachment with
# a port forward; netd exits 0 on SIGTERM
# with the endpoint up.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
PY=/usr/bin/python3
"$PY" -c 'import prometheus_client.parser' 2>/dev/null ||
	skip "the Prometheus text parser is needed (python3-prometheus-client: make deps)"
setup_node
mkns SBX sbx
ip -n "$NODE_NS" link set lo up
echo '{"metricsListen": "127.0.0.1:9641"}' >"$KV_TMP/netd.json"
start_netd "$NODE_NS" --no-fsync --config "$KV_TMP/netd.json"
base=$(render_conf kvnet-basic.conflist 1.1.0)
jq '.plugins[0].ipMasq = false' "$base" >"$KV_TMP/n.conflist"

scrape() { ip netns exec "$NODE_NS" curl -sS -m 5 "http://127.0.0.1:9641${1:-/metrics}"; }
# value NAME LABELS-JSON: the sample's value through the reference parser ("absent" when there is none)
value() { scrape | "$PY" "$KV_ROOT/tests/tools/prom.py" value "$1" "$2"; }

out=$(scrape | "$PY" "$KV_ROOT/tests/tools/prom.py" families)
assert_eq "$out" "kubevirt_vmi_network_receive_bytes kubevirt_vmi_network_receive_errors kubevirt_vmi_network_receive_packets kubevirt_vmi_network_receive_packets_dropped kubevirt_vmi_network_transmit_bytes kubevirt_vmi_network_transmit_errors kubevirt_vmi_network_transmit_packets kubevirt_vmi_network_transmit_packets_dropped kvnet_netd_antispoof_dropped_bytes kvnet_netd_antispoof_dropped_packets kvnet_netd_attachments kvnet_netd_dhcp_frames kvnet_netd_info kvnet_netd_ipam_addresses kvnet_netd_journal_bytes kvnet_netd_migration_early_packets kvnet_netd_migration_switch_seconds kvnet_netd_migrations kvnet_netd_nat_elements kvnet_netd_request_duration_seconds kvnet_netd_requests kvnet_netd_uptime_seconds" \
	"a fresh netd's page parses: every family (counters named without _total by the parser)"
assert_eq "$(value kvnet_netd_info '{}')" 1 "kvnet_netd_info 1"

for i in 1 2 3; do cni add "$KV_TMP/n.conflist" "cid-$i" "$SBX" "eth$i" >/dev/null; done
jq '.plugins[0].ipam.ranges[0][0].subnet = "not-a-subnet"' "$KV_TMP/n.conflist" >"$KV_TMP/bad.conflist"
code=$(cni_fail_code add "$KV_TMP/bad.conflist" cid-bad "$SBX" eth9)
cni check "$KV_TMP/n.conflist" cid-1 "$SBX" eth1
cni del "$KV_TMP/n.conflist" cid-3 "$SBX" eth3
net=$(jq -r .name "$KV_TMP/n.conflist")
assert_eq "$(value kvnet_netd_attachments "{\"network\": \"$net\", \"binding\": \"bridge\", \"kind\": \"container\"}")" 2 \
	"attachments{network=$net,binding=bridge,kind=container} 2 (3 ADDs, 1 DEL)"
assert_eq "$(value kvnet_netd_requests_total '{"verb": "add", "code": "0"}')" 3 "requests_total{verb=add,code=0} 3"
assert_eq "$(value kvnet_netd_requests_total "{\"verb\": \"add\", \"code\": \"$code\"}")" 1 \
	"requests_total{verb=add,code=$code} 1: the refused ADD, by its CNI code"
assert_eq "$(value kvnet_netd_requests_total '{"verb": "del", "code": "0"}')/$(value kvnet_netd_requests_total '{"verb": "check", "code": "0"}')" \
	1/1 "... del 1, check 1"
assert_eq "$(value kvnet_netd_request_duration_seconds_count '{"verb": "add"}')" 4 \
	"the ADD duration histogram counts all 4"
buckets=$(scrape | sed -n 's/^kvnet_netd_request_duration_seconds_bucket{verb="add",le="[^"]*"} //p' | tr '\n' ' ')
assert_true "... its buckets are cumulative and end at the count ($buckets)" \
	awk -v b="$buckets" 'BEGIN { n = split(b, v, " "); for (i = 2; i <= n; i++) if (v[i] + 0 < v[i - 1] + 0) exit 1; exit !(v[n] == 4) }'
assert_eq "$(value kvnet_netd_ipam_addresses "{\"network\": \"$net\", \"state\": \"used\"}")" 2 "ipam used 2"
size=$(value kvnet_netd_ipam_addresses "{\"network\": \"$net\", \"state\": \"size\"}")
assert_true "ipam size of the range ($size) larger than what is used" test "$size" -gt 2
# a VM NIC (a tap, no guest): its counters as the guest sees them, under KubeVirt's names; frames written into the tap
# are what the guest sends
mkns SBX_V sbxv
vm_args='IgnoreUnknown=1;K8S_POD_NAMESPACE=default;KVNET_VM_NAME=vm1;KVNET_VM_INTERFACE=default'
res_v=$(cni add "$KV_TMP/n.conflist" cid-v "$SBX_V" tap0 --args "$vm_args")
mac_v=$(jq -r '.interfaces[] | select(.name == "tap0" and .sandbox != null) | .mac' <<<"$res_v")
ip_v=$(echo "$res_v" | result_ip4)
vmnic='{"name": "vm1", "namespace": "default", "interface": "default"}'
tx0=$(value kubevirt_vmi_network_transmit_packets_total "$vmnic")
assert_true "kubevirt_vmi_network_transmit_packets_total{name=vm1,namespace=default,interface=default} is there ($tx0)" \
	test "$tx0" != absent
for i in 1 2 3 4 5; do echo "m$i udp4 smac=$mac_v sip=$ip_v dip=10.88.0.255"; done |
	ip netns exec "$SBX_V" python3 "$KV_ROOT/tests/tools/frames.py" batch-tap tap0
tx1=$(value kubevirt_vmi_network_transmit_packets_total "$vmnic")
assert_true "... 5 frames the guest sent counted ($tx0 -> $tx1)" test "$tx1" -ge $((tx0 + 5))
assert_true "... and their bytes ($(value kubevirt_vmi_network_transmit_bytes_total "$vmnic"))" \
	test "$(value kubevirt_vmi_network_transmit_bytes_total "$vmnic")" -ge 300
assert_true "... the receive side is there too ($(value kubevirt_vmi_network_receive_packets_total "$vmnic"))" \
	test "$(value kubevirt_vmi_network_receive_packets_total "$vmnic")" != absent
# anti-spoofing's drops at the VM's port: 4 frames from a neighbour's address
host_v=$(kvctl -o json endpoints | jq -r '.[] | select(.containerID=="cid-v") | .hostIfname')
vmport="{\"network\": \"$net\", \"port\": \"$host_v\", \"kind\": \"vm\", \"namespace\": \"default\", \"name\": \"vm1\", \"interface\": \"default\"}"
assert_eq "$(value kvnet_netd_antispoof_dropped_packets_total "$vmport")" 0 \
	"kvnet_netd_antispoof_dropped_packets_total of the VM's port $host_v: 0 before it sent anything spoofed"
for i in 1 2 3 4; do echo "s$i udp4 smac=$mac_v sip=10.88.0.250 dip=10.88.0.255"; done |
	ip netns exec "$SBX_V" python3 "$KV_ROOT/tests/tools/frames.py" batch-tap tap0
assert_eq "$(value kvnet_netd_antispoof_dropped_packets_total "$vmport")" 4 "... 4 after 4 frames from 10.88.0.250"
assert_true "... with their bytes, IP header onwards ($(value kvnet_netd_antispoof_dropped_bytes_total "$vmport"))" \
	test "$(value kvnet_netd_antispoof_dropped_bytes_total "$vmport")" -ge 112
cni del "$KV_TMP/n.conflist" cid-v "$SBX_V" tap0 --args "$vm_args"
assert_eq "$(value kubevirt_vmi_network_transmit_packets_total "$vmnic")" absent "... gone with the attachment"
assert_eq "$(value kvnet_netd_antispoof_dropped_packets_total "$vmport")" absent "... and its drop counter"

# the node NAT's elements, read from the kernel: an attachment with ipMasq and a host port forward adds one of each
natv() { value kvnet_netd_nat_elements "{\"backend\": \"nftables\", \"kind\": \"$1\"}"; }
assert_eq "$(natv masquerade)/$(natv port_forward)" 0/0 "kvnet_netd_nat_elements: nothing masqueraded or forwarded yet"
mkns SBX_N sbxn
cni add "$base" cid-n "$SBX_N" eth0 --cap portMappings='[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]' >/dev/null
assert_eq "$(natv masquerade)/$(natv port_forward)" 1/1 "... an ipMasq attachment with a port forward: 1 and 1"
cni del "$base" cid-n "$SBX_N" eth0 --cap portMappings='[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]'
assert_eq "$(natv masquerade)/$(natv port_forward)" 0/0 "... 0 and 0 after its DEL"

assert_eq "$(ip netns exec "$NODE_NS" curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9641/other)" 404 "/other: 404"
assert_eq "$(ip netns exec "$NODE_NS" curl -s -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:9641/metrics)" 405 \
	"POST: 405"
cni del "$KV_TMP/n.conflist" cid-1 "$SBX" eth1
cni del "$KV_TMP/n.conflist" cid-2 "$SBX" eth2
stop_netd

bad() { # VALUE MESSAGE
	echo "{\"metricsListen\": $1}" >"$KV_TMP/bad.json"
	out=$(ip netns exec "$NODE_NS" "$KV_BIN/kvnet-netd" --socket "$KV_TMP/bad.sock" --state-dir "$KV_TMP/bad-state" \
		--config "$KV_TMP/bad.json" 2>&1 || true)
	assert_true "metricsListen $1 refused: $2 ($out)" grep -qF "$2" <<<"$out"
}
bad '"0.0.0.0:9641"' "name one address of the node"
bad '"localhost:9641"' "'metricsListen' must be IPV4:PORT (port 0..65535), got 'localhost:9641'"
bad '"127.0.0.1:70000"' "got '127.0.0.1:70000'"
bad '9641' "metricsListen"
bad '"192.0.2.1:9641"' "cannot listen there"
finish
