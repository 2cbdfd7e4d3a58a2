#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `make bench`: every kvnet benchmark, one after the other; each prints a table and KEY=VALUE lines.
set -u
DIR=$(cd "$(dirname "$0")" && pwd)
rc=0
"$DIR/run.sh" || rc=1
echo
"$DIR/datapath.sh" || rc=1
echo
"$DIR/antispoof.sh" || rc=1
echo
"$DIR/load.sh" || rc=1
echo
"$DIR/vmboot.sh" 2>&1 | grep -v ' Killed ' || rc=1
echo
"$DIR/apply.sh" || rc=1
echo
"$DIR/migration.sh" || rc=1
echo
"$DIR/control-plane.sh" || rc=1
echo
BENCH_CP_API=kube "$DIR/control-plane.sh" || rc=1
echo
"$DIR/claims.sh" || rc=1
echo
"$DIR/multus.sh" || rc=1
exit $rc
