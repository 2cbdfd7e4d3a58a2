#!/usr/bin/env bash
# The same kvnet ADD at cniVersion 0.3.1, 0.4.0, 1.0.0 and 1.1.0: result format per version
# (ips[].version only before 1.0.0), CHECK rejected at 0.3.1, VERSION lists all four,
# STATUS and GC at 1.1.0 (GC with a valid list omitting one attachment removes exactly that one).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
setup_node
start_netd "$NODE_NS"

VERSIONS="0.3.1 0.4.0 1.0.0 1.1.0"
declare -A CONF SBX IP
for v in $VERSIONS; do
	id=${v//./}
	CONF[$v]=$(render_conf kvnet-basic.conflist "$v")
	mkns "SBX_$id" "sbx$id"
	sbxvar="SBX_$id"
	SBX[$v]=${!sbxvar}
	res=$(cni add "${CONF[$v]}" "cid-$id" "${SBX[$v]}" eth0)
	IP[$v]=$(echo "$res" | result_ip4)
	assert_eq "$(echo "$res" | jq -r .cniVersion)" "$v" "[$v] result cniVersion"
	assert_true "[$v] result has an IPv4 address" test -n "${IP[$v]}"
	assert_true "[$v] result has interfaces" jq -e '.interfaces | length > 0' <<<"$res"
	case $v in
	0.3.1 | 0.4.0)
		assert_true "[$v] ips[].version present" jq -e '[.ips[] | has("version")] | all' <<<"$res"
		;;
	*)
		assert_true "[$v] ips[].version absent" jq -e '[.ips[] | has("version")] | any | not' <<<"$res"
		;;
	esac
	assert_link "${SBX[$v]}" eth0
done
assert_eq "$(printf '%s\n' "${IP[@]}" | sort -u | wc -l)" 4 "four different addresses"

# CHECK: not allowed at 0.3.1, passes from 0.4.0 on
code=$(cni_fail_code check "${CONF[0.3.1]}" cid-031 "${SBX[0.3.1]}" eth0)
assert_ne "$code" none "[0.3.1] CHECK rejected"
assert_eq "$code" 1 "[0.3.1] CHECK rejected with code 1 (incompatible version)"
for v in 0.4.0 1.0.0 1.1.0; do
	assert_true "[$v] CHECK passes" cni check "${CONF[$v]}" "cid-${v//./}" "${SBX[$v]}" eth0
done

# VERSION
vout=$(cni_global version "${CONF[1.1.0]}")
for v in $VERSIONS; do
	assert_true "VERSION lists $v" jq -e --arg v "$v" '.[0].reply.supportedVersions | index($v) != null' <<<"$vout"
done

# STATUS (1.1.0): netd is up, the plugin is asked (not skipped)
assert_true "STATUS passes with netd up" cni_global status "${CONF[1.1.0]}"
assert_false "STATUS was not skipped" sh -c "ip netns exec $NODE_NS $CNICHAIN status ${CONF[1.1.0]} \
	--cache-dir $KV_CACHE --path $KV_CNI_PATH 2>&1 | grep -q skipping"
assert_true "STATUS at 0.4.0 is a no-op in the runner" cni_global status "${CONF[0.4.0]}"

# GC from the cache: everything is valid, nothing goes
assert_true "GC with all attachments valid" cni_global gc "${CONF[1.1.0]}"
assert_eq "$(kvctl -o json endpoints | jq length)" 4 "GC with all valid keeps 4 endpoints"

# GC omitting cid-040
assert_true "GC omitting cid-040" cni_global gc "${CONF[1.1.0]}" --valid "cid-031:eth0,cid-100:eth0,cid-110:eth0"
eps=$(kvctl -o json endpoints)
assert_eq "$(echo "$eps" | jq length)" 3 "GC left 3 endpoints"
assert_eq "$(echo "$eps" | jq '[.[] | select(.containerID=="cid-040")] | length')" 0 "GC removed cid-040"
assert_eq "$(echo "$eps" | jq -r '[.[].containerID] | sort | join(",")')" "cid-031,cid-100,cid-110" \
	"GC kept exactly the valid ones"
assert_eq "$(kvctl -o json ipam | jq '[.claims[] | select(.key | test("cid-040"))] | length')" 0 \
	"GC released cid-040's claim"
assert_eq "$(kvctl -o json ipam | jq '.claims | length')" 3 "3 claims left"
assert_nft_lacks "${IP[0.4.0]}"
assert_nft_has "${IP[1.1.0]}"
assert_no_link "${SBX[0.4.0]}" eth0
assert_link "${SBX[1.1.0]}" eth0
assert_ping "${SBX[1.1.0]}" "${IP[1.0.0]}" "remaining attachments still talk"

for v in $VERSIONS; do
	assert_true "[$v] DEL" cni del "${CONF[$v]}" "cid-${v//./}" "${SBX[$v]}" eth0
	assert_no_link "${SBX[$v]}" eth0
	assert_nft_lacks "${IP[$v]}"
done
assert_eq "$(kvctl -o json endpoints | jq length)" 0 "no endpoints left"
assert_eq "$(kvctl -o json ipam | jq '.claims | length')" 0 "no claims left"

finish
