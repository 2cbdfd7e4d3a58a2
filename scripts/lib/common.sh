# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# What the scripts share (sourced after ROOT, the checkout, is set): the build's paths and process helpers.

# BUILD_DIR and BIN: $KVNET_BUILD (default build; relative to ROOT unless absolute) and its bin/.
KVNET_BUILD=${KVNET_BUILD:-build}
case "$KVNET_BUILD" in
/*) BUILD_DIR=$KVNET_BUILD ;;
*) BUILD_DIR=$ROOT/$KVNET_BUILD ;;
esac
BIN=$BUILD_DIR/bin

# stop_pid PIDFILE: SIGTERM the process whose pid PIDFILE holds, SIGKILL after 10 s; 0 if there is none.
stop_pid() {
	local pid
	pid=$(cat "$1" 2>/dev/null) || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}
