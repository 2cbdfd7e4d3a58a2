#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/kvnet-sim.sh, the documented way to run the whole chain on one machine: `up --nodes 2` (cluster,
# controller, one kvnet-node per node), `kubectl -- apply` of a VirtualMachine → its VMI Running with an IP
# that answers ping from the client namespace, `down` → no namespace of the prefix, no process of it, no
# directory left. A second `up` of the same name is refused while it is up.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

kv_init
require_kvnet
require_cmd virsh unshare socat nsenter kubectl
require_libvirt
require_file "$KV_BIN/kvnet-node" "$KV_BIN/kvnet-controller" "$KV_BIN/kvnet-launcher"
guest_image
guest_store

SIM=$KV_ROOT/scripts/kvnet-sim.sh
NAME=kvt-sim-$(rand_suffix)
SDIR=$KV_TMP/sim
at_exit '"$SIM" down --name "$NAME" --dir "$SDIR" >/dev/null 2>&1'
sim() { "$SIM" "$@"; }
kc() { sim kubectl --name "$NAME" --dir "$SDIR" -- "$@"; }

sim up --nodes 2 --name "$NAME" --dir "$SDIR" --image-dir "$GUEST_IMAGES" >"$KV_TMP/up.out" 2>&1 || { cat "$KV_TMP/up.out"; die "kvnet-sim up failed"; }
assert_true "up prints the API namespace ($(grep API_NS "$KV_TMP/up.out"))" grep -q "^API_NS=$NAME-api$" "$KV_TMP/up.out"
out=$(sim up --nodes 2 --name "$NAME" --dir "$SDIR" 2>&1) && rc=0 || rc=$?
assert_eq "$rc" 1 "a second up of the same name is refused ($out)"
out=$(sim up --nodes 0 --name x 2>&1) && rc=0 || rc=$?
assert_eq "$rc $out" "1 kvnet-sim: --nodes must be 1..16, got '0'" "--nodes 0 is refused naming the value"

guest_vm_yaml demo masquerade | kc apply -f - >/dev/null
for _ in $(seq 1 120); do
	[ "$(kc get vmi demo -o jsonpath='{.status.phase}' 2>/dev/null)" = Running ] && break
	sleep 1
done
assert_eq "$(kc get vmi demo -o jsonpath='{.status.phase}')" Running "kubectl apply through kvnet-sim: the VMI is Running"
ip=$(kc get vmi demo -o jsonpath='{.status.interfaces[0].ipAddress}')
if wait_ping "$NAME-client" "$ip" 90; then
	pass "the guest answers ping from $NAME-client at $ip"
else
	fail "the guest answers ping from $NAME-client at $ip"
fi

sim down --name "$NAME" --dir "$SDIR" >/dev/null 2>&1 || fail "kvnet-sim down"
assert_eq "$(ip netns list | grep -c "^$NAME-" || true)" 0 "down: no namespace of the prefix left"
assert_eq "$(pgrep -f "$SDIR/" | wc -l)" 0 "down: no process of the simulation left (agents, controller, netds, launchers)"
assert_false "down: its directory is gone" test -e "$SDIR"
finish
