/* SPDX-License-Identifier: Apache-2.0 */
/* The node policy (netd config "policy", docs/SECURITY.md): what a network's config (a tenant's NAD) may ask
 * of this node. Checked on every ADD before anything is claimed or made. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "common/addr.h"
#include "common/kverr.h"

#define POLICY_MAX_BRIDGES 32
#define POLICY_MAX_SUBNETS 32

typedef struct NodePolicy {
        /* bridge names a network may use (fnmatch patterns; none listed: any) */
        char bridges[POLICY_MAX_BRIDGES][16];
        size_t n_bridges;
        /* the subnets kvnet's IPAM ranges must lie in (none listed: any) */
        KvPrefix subnets[POLICY_MAX_SUBNETS];
        size_t n_subnets;
        bool adopt_bridges;        /* use a bridge kvnet did not make (default true) */
        bool allow_antispoof_off;  /* a network may set "antiSpoofing": false (default false) */
        bool allow_spoofchk_off;   /* an SR-IOV network may set "spoofchk": false (default false) */
        bool allow_trust;          /* an SR-IOV network may set "trust": true (default false) */
} NodePolicy;

/* The defaults: any bridge and subnet, adoption allowed, no relaxing of anti-spoofing, spoofchk or trust. */
void node_policy_init(NodePolicy *p);
/* Parses the config's "policy" object onto p (keys absent keep their defaults); errors name the key. */
int node_policy_parse(json_t *o, NodePolicy *p, KvErr *e) _wur_;
