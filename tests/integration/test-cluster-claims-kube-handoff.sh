#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The migration handoff of test-cluster-claims.sh (passive target, activation, the source's redirect, early
# switchover, a netd killed with an armed target, rollback, bad requests) with the cluster-wide claims as NetworkClaim
# objects of the real kube-apiserver + etcd (test peers) instead of a shared directory.
KVNET_CLAIMS_BACKEND=kube exec bash "$(dirname "$0")/test-cluster-claims.sh"
