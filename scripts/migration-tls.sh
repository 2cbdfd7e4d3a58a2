#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Certificates for the migration proxies between kvnet nodes (kvnet-node --migration-tls DIR; docs/node.md,
# "Migration proxies"): one CA per cluster, one certificate per node.
#
#   scripts/migration-tls.sh ca CA_DIR                      the cluster's CA: CA_DIR/ca.pem, CA_DIR/ca-key.pem (kept
#                                                           if they exist)
#   scripts/migration-tls.sh node CA_DIR NODE_DIR NAME ADDR... a node's DIR for --migration-tls: ca.pem, node.pem
#                                                           (CN=NAME, subjectAltName the node's underlay ADDRs and
#                                                           NAME), node-key.pem
#
# ECDSA P-256 keys (openssl), 0600, valid for ten years: a test and simulation setup. On a real cluster the
# certificates come from the operator's PKI (e.g. cert-manager) into the same three files.
set -euo pipefail

usage() {
	sed -n '3,12p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
die() {
	echo "migration-tls: $*" >&2
	exit 1
}
command -v openssl >/dev/null || die "openssl not installed (package openssl)"
[ $# -ge 2 ] || usage
CMD=$1
CA=$2
umask 077

make_ca() {
	mkdir -p "$CA"
	[ -s "$CA/ca.pem" ] && [ -s "$CA/ca-key.pem" ] && return 0
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
		-subj "/CN=kvnet migration CA" -keyout "$CA/ca-key.pem" -out "$CA/ca.pem" 2>"$CA/openssl.log" ||
		die "creating the CA failed: $(cat "$CA/openssl.log")"
}

make_node() {
	local dir=$1 name=$2 san="DNS:$2" a
	shift 2
	[ $# -ge 1 ] || usage
	case "$name" in '' | *[!A-Za-z0-9._-]*) die "NAME must be [A-Za-z0-9._-]+, got '$name'" ;; esac
	for a in "$@"; do
		case "$a" in '' | *[!0-9a-fA-F.:]*) die "ADDR must be an IP address, got '$a'" ;; esac
		san="$san,IP:$a"
	done
	make_ca
	mkdir -p "$dir"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" -keyout "$dir/node-key.pem" \
		-out "$dir/node.csr" 2>"$dir/openssl.log" || die "key for $name: $(cat "$dir/openssl.log")"
	printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' "$san" >"$dir/node.ext"
	openssl x509 -req -in "$dir/node.csr" -CA "$CA/ca.pem" -CAkey "$CA/ca-key.pem" -CAcreateserial -days 3650 \
		-extfile "$dir/node.ext" -out "$dir/node.pem" 2>"$dir/openssl.log" ||
		die "certificate for $name: $(cat "$dir/openssl.log")"
	cp "$CA/ca.pem" "$dir/ca.pem"
	rm -f "$dir/node.csr" "$dir/node.ext" "$dir/openssl.log"
}

case "$CMD" in
ca) make_ca ;;
node)
	[ $# -ge 5 ] || usage
	shift 2
	make_node "$@"
	;;
*) usage ;;
esac
