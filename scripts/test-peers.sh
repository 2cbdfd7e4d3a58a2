#!/usr/bin/env bash
# Builds the test peers (tests/peers/versions) from their Go source modules at the pinned releases into
# ${KVNET_CACHE:-/var/cache/kvnet}/peers/<name>-<version>/ (make test-deps). Test-only: nothing of
# them is shipped or committed. A peer already built from the same table line is not touched, so a
# second run takes about a second.
#   scripts/test-peers.sh [NAME...]      build the named peers (default: every peer of the table)
#   KVNET_CACHE   cache root (default /var/cache/kvnet); Go's module and build caches go to
#                 $KVNET_CACHE/go/ as well
#   GO            the go command (default: go on PATH, else /usr/local/go/bin/go)
#   GOMODCACHE_KVNET, GOCACHE_KVNET   other Go module / build caches (default under $KVNET_CACHE/go/;
#                 Go keeps module files read-only: drop them with GOMODCACHE=... go clean -modcache)
#   KVNET_PEERS_TABLE   another table (default tests/peers/versions)
# Needs jq for the staging= and copy-replaces options.
# Prints one "PEER_<NAME>=<path>" line per built peer on stdout (the binary for a one-binary peer,
# else the folder of its binaries), progress on stderr; exits 1 naming the peer and the step that
# failed (build_peer runs in a subshell whose status is tested, where set -e does not apply: each step
# checks its own status). Builds run under nice -n 19 with go build -p 1 (shared 2-core machines), CGO_ENABLED=0,
# -trimpath, into a temporary folder renamed into place when complete.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TABLE=${KVNET_PEERS_TABLE:-$ROOT/tests/peers/versions}
CACHE=${KVNET_CACHE:-/var/cache/kvnet}
PEERS=$CACHE/peers
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}

log() { echo "test-peers: $*" >&2; }
die() { log "$*"; exit 1; }

[ -r "$TABLE" ] || die "no table $TABLE"

var_name() { echo "PEER_$1" | tr 'a-z-' 'A-Z_'; }

# The path a built peer is found at: its one binary, or its folder.
peer_result() { # DIR
	local n
	n=$(find "$1" -maxdepth 1 -type f -perm -u+x | wc -l)
	if [ "$n" -eq 1 ]; then
		find "$1" -maxdepth 1 -type f -perm -u+x
	else
		echo "$1"
	fi
}

# go, quiet on success; on failure its last lines and the step's name.
go_step() { # NAME STEP LOGFILE ARGS...
	local name=$1 step=$2 logf=$3
	shift 3
	if ! nice -n 19 "$GO" "$@" >>"$logf" 2>&1; then
		tail -n 30 "$logf" >&2
		die "peer $name: step '$step' failed (go $*; full log $logf)"
	fi
}

build_peer() { # NAME MODULE VERSION PACKAGES OPTIONS LINE
	local name=$1 module=$2 version=$3 packages=$4 options=$5 line=$6
	local dest=$PEERS/$name-$version stamp key staging="" copy_replaces=false ldflags=-s opt tmp src logf t0 pkg bin p mod
	key=$(printf '%s\n' "$line" | sha256sum | cut -c1-16)
	stamp=$dest/.kvnet-peer
	if [ -f "$stamp" ] && grep -qx "key=$key" "$stamp"; then
		echo "$(var_name "$name")=$(peer_result "$dest")"
		return 0
	fi
	[ -x "$GO" ] || command -v "$GO" >/dev/null || die "peer $name: no go command ($GO); Go 1.26 is needed"
	for opt in ${options//,/ }; do
		case "$opt" in
		staging=*) staging=${opt#staging=} ;;
		copy-replaces) copy_replaces=true ;;
		version-var=*) ldflags="$ldflags -X ${opt#version-var=}=$version" ;;
		-) ;;
		*) die "peer $name: unknown option '$opt' in $TABLE" ;;
		esac
	done
	mkdir -p "$PEERS"
	tmp=$(mktemp -d "$PEERS/.tmp-$name-$version.XXXXXX") || die "peer $name: step 'mktemp' failed in $PEERS"
	chmod 755 "$tmp"
	src=$tmp/src
	logf=$PEERS/$name-$version.log
	: >"$logf"
	mkdir -p "$src" "$tmp/bin" || die "peer $name: step 'mkdir' failed in $PEERS"
	t0=$(date +%s)
	log "building $name $version ($module) into $dest; log $logf"
	# A wrapper module generated here, not in the repo: it requires the peer's module, and for
	# k8s.io/kubernetes or kubevirt replaces their staging modules with the published releases.
	(cd "$src" && go_step "$name" "go mod init" "$logf" mod init kvnet.test/peer/"$name") || exit 1
	if [ -n "$staging" ] || [ "$copy_replaces" = true ]; then
		mod=$(cd "$src" && nice -n 19 "$GO" mod download -json "$module@$version" 2>>"$logf" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
		[ -n "$mod" ] && [ -f "$mod" ] || die "peer $name: step 'download $module@$version go.mod' failed (log $logf)"
		# The module's replace directives: those into its own tree (./staging/...) become the published
		# release of that module; the others are copied when asked (copy-replaces).
		"$GO" mod edit -json "$mod" | jq -r --arg v "$staging" --argjson copy "$copy_replaces" '.Replace[]? |
			if (.New.Version // "") == "" then
				(if $v != "" then "replace \(.Old.Path) => \(.Old.Path) \($v)" else empty end)
			elif $copy then "replace \(.Old.Path) \(.Old.Version // "") => \(.New.Path) \(.New.Version)"
			else empty end' >>"$src/go.mod" || die "peer $name: step 'replace directives of $mod' failed"
		grep -q '^replace ' "$src/go.mod" || die "peer $name: step 'replace directives' found none in $mod"
	fi
	local gets=()
	for pkg in ${packages//,/ }; do
		p=${pkg%%:*}
		if [ "$p" = . ]; then p=$module; else p=$module/$p; fi
		gets+=("$p@$version")
	done
	(cd "$src" && go_step "$name" "go get" "$logf" get "${gets[@]}") || exit 1
	for pkg in ${packages//,/ }; do
		p=${pkg%%:*}
		bin=${pkg#*:}
		[ "$bin" != "$pkg" ] || bin=$(basename "$p")
		if [ "$p" = . ]; then p=$module; else p=$module/$p; fi
		(cd "$src" && export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false -mod=mod" &&
			go_step "$name" "go build $p" "$logf" build -p 1 "-ldflags=$ldflags" -o "$tmp/bin/$bin" "$p") || exit 1
	done
	# go.mod and go.sum of the wrapper are kept beside the binaries (what was built, exactly).
	cp "$src/go.mod" "$src/go.sum" "$tmp/" 2>/dev/null || true
	rm -rf "$src"
	mv "$tmp/bin"/* "$tmp/" || die "peer $name: step 'install' failed"
	rmdir "$tmp/bin"
	printf 'key=%s\nmodule=%s\nversion=%s\nbuild_seconds=%s\nbuilt=%s\ngo=%s\n' "$key" "$module" "$version" \
		"$(($(date +%s) - t0))" "$(date -u +%FT%TZ)" "$("$GO" env GOVERSION)" >"$tmp/.kvnet-peer"
	rm -rf "$dest"
	mv "$tmp" "$dest" || die "peer $name: step 'install' failed (mv $tmp $dest)"
	log "built $name $version in $(($(date +%s) - t0)) s"
	echo "$(var_name "$name")=$(peer_result "$dest")"
}

export GOMODCACHE=${GOMODCACHE_KVNET:-$CACHE/go/mod}
export GOCACHE=${GOCACHE_KVNET:-$CACHE/go/build}
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false

status=0
want=" $* "
seen=""
while read -r name module version packages options; do
	case "$name" in '' | '#'*) continue ;; esac
	[ $# -eq 0 ] || [[ "$want" == *" $name "* ]] || continue
	seen="$seen $name"
	line="$name $module $version $packages $options"
	case "$options" in
	*not-built=*)
		reason=${options#*not-built=}
		log "$name: not built: ${reason//_/ }"
		continue
		;;
	esac
	if ! (build_peer "$name" "$module" "$version" "$packages" "$options" "$line"); then
		status=1
		rm -rf "$PEERS/.tmp-$name-$version".*
	fi
done <"$TABLE"
for n in "$@"; do
	[[ " $seen " == *" $n "* ]] || { log "no peer '$n' in $TABLE"; status=1; }
done
exit "$status"
