#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A private libvirtd for one kvnet "node" (a network namespace), without systemd.
#
#   scripts/libvirt-node.sh start NODE_NAME NETNS [--dir DIR] [--tcp ADDR]
#   scripts/libvirt-node.sh stop  NODE_NAME [NETNS] [--dir DIR]
#   scripts/libvirt-node.sh uri   NODE_NAME [--dir DIR]
#   scripts/libvirt-node.sh restart NODE_NAME [--dir DIR] [--kill]
#
# start: runs /usr/sbin/libvirtd inside network namespace NETNS (`ip netns exec`) and a private
# mount namespace (`unshare --mount --propagation private`) in which per-node directories are
# bind-mounted over /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt and
# /var/cache/libvirt. The host's own libvirt directories are never written and no mount is visible
# outside (check with `findmnt`). Layout under DIR (default /run/kvnet-nodes/NODE_NAME):
#   DIR/etc/libvirt        libvirtd.conf (own host_uuid, derived from NODE_NAME), qemu.conf
#   DIR/etc/passwd, group  bound over /etc/passwd and /etc/group in the daemon's namespace only:
#                          the host's files plus the user/group "libvirt-qemu" the driver insists on
#   DIR/run/libvirt        libvirt-sock (the only listener unless --tcp), qemu/<dom>.pid, ...
#   DIR/lib/libvirt, DIR/cache/libvirt (capabilities cache, seeded from the shared cache below)
#   DIR/log/libvirt        libvirtd.log, qemu/<domain>.log (QEMU's stdout/stderr)
#   DIR/libvirtd.pid, DIR/libvirtd.stderr, DIR/netns, DIR/uri
# --tcp ADDR also listens on ADDR:16509 (plain TCP, auth none) inside NETNS, for peer-to-peer
# migration (qemu+tcp://ADDR/system).
# It prints `URI=qemu+unix:///system?socket=DIR/run/libvirt/libvirt-sock` (and `TCP_URI=...`) once
# `virsh -c URI version` answers. Exit: 0 ok, 1 failure (the log tail is printed), 2 usage.
#
# Capabilities cache: probing QEMU takes ~8 s, so after the first successful start the node's
# DIR/cache/libvirt/qemu/capabilities/*.xml are copied to a shared directory
# (${KVNET_LIBVIRT_CAPS_CACHE:-/var/cache/kvnet/libvirt-caps}; KVNET_LIBVIRT_CAPS_CACHE=none disables
# it) and every later node starts from a copy of it (~1 s). libvirt itself checks that a cached
# entry still matches the QEMU binary, libvirtd and the host, and re-probes when it does not.
#
# QEMU: inside the daemon's mount namespace /usr/bin/qemu-system-x86_64 is scripts/qemu-tcg-wrapper
# (the real binary at /run/libvirt/kvnet-qemu-real), which guards TCG guests against QEMU 7.2's
# live-migration memory bug (docs/migration.md, "QEMU under TCG"); KVNET_QEMU_WRAPPER=none: off.
#
# restart: stops libvirtd alone (SIGTERM, as `systemctl restart libvirtd` does; --kill: SIGKILL, a
# crash) and starts it again with the same namespace and options; the domains' QEMUs run on and
# the new daemon takes them over (clients reconnect: the launcher does, docs/launcher.md).
#
# stop: destroys every domain of that daemon (virsh destroy), stops libvirtd (SIGTERM, then
# SIGKILL after 10 s), kills QEMU processes it left behind (their pid files under DIR/run), and
# removes DIR. Stopping a node that is not running succeeds.
set -euo pipefail

usage() {
	sed -n '3,7p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

[ $# -ge 2 ] || usage
CMD=$1
NODE=$2
shift 2
NETNS=""
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then
	NETNS=$1
	shift
fi
DIR=""
TCP=""
KILL=0
while [ $# -gt 0 ]; do
	case "$1" in
	--kill)
		KILL=1
		shift
		;;
	--dir)
		[ $# -ge 2 ] || usage
		DIR=$2
		shift 2
		;;
	--tcp)
		[ $# -ge 2 ] || usage
		TCP=$2
		shift 2
		;;
	*) usage ;;
	esac
done
case "$NODE" in
'' | *[!A-Za-z0-9_.-]*)
	echo "libvirt-node: NODE_NAME must be [A-Za-z0-9_.-]+, got '$NODE'" >&2
	exit 2
	;;
esac
DIR=${DIR:-/run/kvnet-nodes/$NODE}
case "$DIR" in
/*) ;;
*) DIR=$(pwd)/$DIR ;;
esac
SOCK=$DIR/run/libvirt/libvirt-sock
URI="qemu+unix:///system?socket=$SOCK"
# client_sock PID: a unix socket path has at most 107 bytes (sun_path); when DIR is too deep for
# DIR/run/libvirt/libvirt-sock, clients reach the same socket through the daemon's mount namespace,
# /proc/PID/root/run/libvirt/libvirt-sock, which is short whatever DIR is.
client_sock() {
	if [ "${#SOCK}" -gt 107 ] && [ -n "$1" ]; then
		SOCK=/proc/$1/root/run/libvirt/libvirt-sock
		URI="qemu+unix:///system?socket=$SOCK"
	fi
}

die() {
	echo "libvirt-node: $*" >&2
	exit 1
}

# A pid that is still the process we mean (cmdline contains WORD).
pid_is() {
	local pid=$1 word=$2
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$word"
}

host_uuid() {
	local h
	h=$(printf 'kvnet-node:%s' "$1" | sha256sum | cut -c1-32)
	# version 4 / variant bits so libvirt accepts it
	printf '%s-%s-4%s-a%s-%s\n' "${h:0:8}" "${h:8:4}" "${h:13:3}" "${h:17:3}" "${h:20:12}"
}

CAPS_CACHE=${KVNET_LIBVIRT_CAPS_CACHE:-/var/cache/kvnet/libvirt-caps}
# QEMU through scripts/qemu-tcg-wrapper (see there: a QEMU < 9.0 TCG live-migration bug);
# KVNET_QEMU_WRAPPER=none starts the real binary.
QEMU_BIN=/usr/bin/qemu-system-x86_64
QEMU_WRAPPER=${KVNET_QEMU_WRAPPER:-$(cd "$(dirname "$0")" && pwd)/qemu-tcg-wrapper}
[ "$QEMU_WRAPPER" = none ] || [ -x "$QEMU_WRAPPER" ] || QEMU_WRAPPER=none

# After a successful start: publish the node's capabilities cache when the shared one is empty or
# older (atomically: a temp dir renamed into place, so a concurrent start never sees half of it).
save_caps() {
	[ "$CAPS_CACHE" != none ] || return 0
	local src=$DIR/cache/libvirt/qemu/capabilities tmp
	compgen -G "$src/*.xml" >/dev/null || return 0
	if compgen -G "$CAPS_CACHE/*.xml" >/dev/null && [ -z "$(find "$src" -name '*.xml' -newer "$CAPS_CACHE" 2>/dev/null)" ]; then
		return 0
	fi
	mkdir -p "$(dirname "$CAPS_CACHE")" 2>/dev/null || return 0
	tmp=$(mktemp -d "$CAPS_CACHE.tmp.XXXXXX" 2>/dev/null) || return 0
	if cp -p "$src"/*.xml "$tmp/" 2>/dev/null; then
		rm -rf "$CAPS_CACHE.old.$$"
		[ -d "$CAPS_CACHE" ] && mv "$CAPS_CACHE" "$CAPS_CACHE.old.$$" 2>/dev/null
		mv "$tmp" "$CAPS_CACHE" 2>/dev/null || rm -rf "$tmp"
		rm -rf "$CAPS_CACHE.old.$$"
	else
		rm -rf "$tmp"
	fi
	return 0
}

do_start() {
	[ -n "$NETNS" ] || usage
	[ -x /usr/sbin/libvirtd ] || die "/usr/sbin/libvirtd not installed (apt-get install libvirt-daemon libvirt-daemon-driver-qemu)"
	command -v virsh >/dev/null || die "virsh not installed (apt-get install libvirt-clients)"
	command -v unshare >/dev/null || die "unshare not installed (util-linux)"
	ip netns exec "$NETNS" true 2>/dev/null || die "network namespace '$NETNS' does not exist"
	if [ -f "$DIR/libvirtd.pid" ] && pid_is "$(cat "$DIR/libvirtd.pid")" libvirtd; then
		die "node '$NODE' already running (pid $(cat "$DIR/libvirtd.pid"), $DIR)"
	fi
	mkdir -p "$DIR"/{etc,run,lib,log,cache}/libvirt "$DIR/log/libvirt/qemu"
	chmod 0700 "$DIR"
	echo "$NETNS" >"$DIR/netns"
	echo "$TCP" >"$DIR/tcp"
	echo "$URI" >"$DIR/uri"

	local uuid
	uuid=$(host_uuid "$NODE")
	{
		echo "# kvnet node '$NODE' (scripts/libvirt-node.sh)"
		echo "host_uuid = \"$uuid\""
		echo 'unix_sock_rw_perms = "0700"'
		echo 'unix_sock_ro_perms = "0700"'
		echo 'auth_unix_rw = "none"'
		echo 'auth_unix_ro = "none"'
		echo 'listen_tls = 0'
		if [ -n "$TCP" ]; then
			echo 'listen_tcp = 1'
			echo "listen_addr = \"$TCP\""
			echo 'auth_tcp = "none"'
		else
			echo 'listen_tcp = 0'
		fi
		echo 'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"'
		echo 'keepalive_interval = 5'
		echo 'keepalive_count = 5'
	} >"$DIR/etc/libvirt/libvirtd.conf"
	{
		echo "# kvnet node '$NODE'"
		echo 'user = "root"'
		echo 'group = "root"'
		echo 'dynamic_ownership = 0'
		echo 'remember_owner = 0'
		echo 'security_driver = "none"'
		echo 'stdio_handler = "file"'
		echo 'namespaces = [ ]'
		echo 'cgroup_controllers = [ ]'
		echo 'vnc_listen = "127.0.0.1"'
		# peer-to-peer migration: the source daemon's connection to the target notices a dead
		# underlay after ~2 s x 5 missed keepalives and aborts the migration
		echo 'keepalive_interval = 2'
		echo 'keepalive_count = 5'
	} >"$DIR/etc/libvirt/qemu.conf"
	# Debian's QEMU driver resolves its built-in default user/group "libvirt-qemu" before it reads
	# qemu.conf; libvirt-daemon-system would create them on the host. Instead the private mount
	# namespace gets copies of /etc/passwd and /etc/group with these entries added.
	cp /etc/passwd "$DIR/etc/passwd"
	cp /etc/group "$DIR/etc/group"
	grep -q '^libvirt-qemu:' "$DIR/etc/passwd" ||
		echo 'libvirt-qemu:x:64055:64055:Libvirt Qemu (kvnet node):/var/lib/libvirt:/usr/sbin/nologin' >>"$DIR/etc/passwd"
	grep -q '^libvirt-qemu:' "$DIR/etc/group" || echo 'libvirt-qemu:x:64055:' >>"$DIR/etc/group"
	grep -q '^kvm:' "$DIR/etc/group" || echo 'kvm:x:64056:' >>"$DIR/etc/group"
	# Seed the capabilities cache (see the header); libvirt re-probes whatever is stale.
	if [ "$CAPS_CACHE" != none ] && compgen -G "$CAPS_CACHE/*.xml" >/dev/null; then
		mkdir -p "$DIR/cache/libvirt/qemu/capabilities"
		cp -p "$CAPS_CACHE"/*.xml "$DIR/cache/libvirt/qemu/capabilities/" 2>/dev/null || true
	fi
	# The client side (virsh) must not pick up the host's default URI.
	echo "uri_default = \"$URI\"" >"$DIR/etc/libvirt/libvirt.conf"

	local listen=""
	[ -n "$TCP" ] && listen=--listen
	# ip netns exec and unshare exec (no fork), so $! is libvirtd's pid.
	# shellcheck disable=SC2016
	setsid ip netns exec "$NETNS" unshare --mount --propagation private sh -c '
		d=$1 w=$2 q=$3; shift 3
		for sub in etc run lib log cache; do
			case $sub in
			etc) t=/etc/libvirt ;; run) t=/run/libvirt ;; lib) t=/var/lib/libvirt ;;
			log) t=/var/log/libvirt ;; cache) t=/var/cache/libvirt ;;
			esac
			mkdir -p "$t" 2>/dev/null || true
			mount --bind "$d/$sub/libvirt" "$t" || exit 1
		done
		mount --bind "$d/etc/passwd" /etc/passwd || exit 1
		mount --bind "$d/etc/group" /etc/group || exit 1
		if [ "$w" != none ] && [ -x "$q" ]; then
			: >/run/libvirt/kvnet-qemu-real && mount --bind "$q" /run/libvirt/kvnet-qemu-real &&
				mount --bind "$w" "$q" || exit 1
		fi
		exec /usr/sbin/libvirtd --pid-file "$d/libvirtd.pid" --config "$d/etc/libvirt/libvirtd.conf" "$@"
	' libvirt-node "$DIR" "$QEMU_WRAPPER" "$QEMU_BIN" $listen </dev/null >"$DIR/libvirtd.stderr" 2>&1 &
	local pid=$!
	echo "$pid" >"$DIR/libvirtd.pid"
	client_sock "$pid"
	echo "$URI" >"$DIR/uri"


	for _ in $(seq 1 1200); do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "---- $DIR/libvirtd.stderr ----" >&2
			tail -n 20 "$DIR/libvirtd.stderr" >&2 || true
			tail -n 20 "$DIR/log/libvirt/libvirtd.log" >&2 2>/dev/null || true
			rm -f "$DIR/libvirtd.pid"
			die "libvirtd exited during startup"
		fi
		if [ -S "$SOCK" ] && LIBVIRT_DEFAULT_URI="$URI" timeout 10 virsh -q -c "$URI" version >/dev/null 2>&1; then
			save_caps
			echo "URI=$URI"
			[ -n "$TCP" ] && echo "TCP_URI=qemu+tcp://$TCP/system"
			echo "PID=$pid"
			echo "DIR=$DIR"
			return 0
		fi
		sleep 0.1
	done
	kill -TERM "$pid" 2>/dev/null || true
	die "libvirtd did not answer 'virsh version' within 120 s (logs in $DIR/log/libvirt)"
}

do_stop() {
	[ -d "$DIR" ] || return 0
	local pid="" name p
	[ -f "$DIR/libvirtd.pid" ] && pid=$(cat "$DIR/libvirtd.pid")
	client_sock "$pid"
	if pid_is "$pid" libvirtd && [ -S "$SOCK" ]; then
		for name in $(timeout 20 virsh -q -c "$URI" list --name 2>/dev/null || true); do
			timeout 20 virsh -q -c "$URI" destroy "$name" >/dev/null 2>&1 || true
		done
	fi
	if pid_is "$pid" libvirtd; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			pid_is "$pid" libvirtd || break
			sleep 0.1
		done
		if pid_is "$pid" libvirtd; then kill -KILL "$pid" 2>/dev/null || true; fi
	fi
	# QEMU processes libvirt started (and a killed daemon may have left running).
	for p in "$DIR"/run/libvirt/qemu/*.pid; do
		[ -f "$p" ] || continue
		pid=$(cat "$p" 2>/dev/null || true)
		if pid_is "$pid" qemu-system; then
			kill -KILL "$pid" 2>/dev/null || true
			for _ in $(seq 1 50); do
				pid_is "$pid" qemu-system || break
				sleep 0.1
			done
		fi
	done
	# The bind mounts lived only in the daemon's private mount namespace: nothing to unmount here.
	if findmnt -rn -o TARGET | grep -qF -- "$DIR/"; then
		die "unexpected mounts under $DIR in the host mount namespace; not removing it"
	fi
	rm -rf "$DIR"
}

do_restart() {
	[ -f "$DIR/netns" ] || die "node '$NODE' was never started here ($DIR)"
	local pid=""
	[ -f "$DIR/libvirtd.pid" ] && pid=$(cat "$DIR/libvirtd.pid")
	if pid_is "$pid" libvirtd; then
		if [ "$KILL" = 1 ]; then kill -KILL "$pid" 2>/dev/null || true; else kill -TERM "$pid" 2>/dev/null || true; fi
		for _ in $(seq 1 100); do
			pid_is "$pid" libvirtd || break
			sleep 0.1
		done
		if pid_is "$pid" libvirtd; then kill -KILL "$pid" 2>/dev/null || true; fi
		for _ in $(seq 1 50); do
			pid_is "$pid" libvirtd || break
			sleep 0.1
		done
	fi
	rm -f "$DIR/libvirtd.pid"
	NETNS=$(cat "$DIR/netns")
	TCP=$(cat "$DIR/tcp" 2>/dev/null || true)
	do_start
}

case "$CMD" in
start) do_start ;;
restart) do_restart ;;
stop) do_stop ;;
uri)
	client_sock "$(cat "$DIR/libvirtd.pid" 2>/dev/null)"
	echo "URI=$URI"
	;;
*) usage ;;
esac
