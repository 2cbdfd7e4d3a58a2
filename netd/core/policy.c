/* SPDX-License-Identifier: Apache-2.0 */
/* The node policy: parsing, and the check of an ADD against it (policy_check_add in netd-priv.h). */
#include "netd/core/policy.h"

#include <fnmatch.h>
#include <stdio.h>

#include "common/json-util.h"
#include "netd/core/netd-priv.h"
#include "netd/link/link.h"
#include "netd/link/netlink.h"

void node_policy_init(NodePolicy *p) {
        *p = (NodePolicy){ .adopt_bridges = true };
}

/* policy.KEY: absent (*ret NULL) or an array of at most max entries */
static int policy_list(json_t *o, const char *key, size_t max, json_t **ret, KvErr *e) {
        int r = json_get_array(o, "policy", key, false, ret, e);
        if (r < 0)
                return r;
        if (*ret && json_array_size(*ret) > max)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -E2BIG, "config: policy.%s: at most %zu, got %zu", key,
                                 max, json_array_size(*ret));
        return 0;
}

int node_policy_parse(json_t *o, NodePolicy *p, KvErr *e) {
        if (!json_is_object(o))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "config: 'policy' must be an object");
        const char *key;
        json_t *v;
        json_object_foreach(o, key, v) {
                if (!streq(key, "bridges") && !streq(key, "subnets") && !streq(key, "adoptBridges") &&
                    !streq(key, "allowAntiSpoofingOff") && !streq(key, "allowSpoofchkOff") && !streq(key, "allowTrust"))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "config: policy: unknown key '%s' (expected bridges, subnets, adoptBridges, "
                                         "allowAntiSpoofingOff, allowSpoofchkOff, allowTrust)",
                                         key);
        }
        int r;
        if ((r = json_get_bool(o, "policy", "adoptBridges", false, &p->adopt_bridges, e)) < 0 ||
            (r = json_get_bool(o, "policy", "allowAntiSpoofingOff", false, &p->allow_antispoof_off, e)) < 0 ||
            (r = json_get_bool(o, "policy", "allowSpoofchkOff", false, &p->allow_spoofchk_off, e)) < 0 ||
            (r = json_get_bool(o, "policy", "allowTrust", false, &p->allow_trust, e)) < 0)
                return r;
        json_t *a = NULL;
        size_t i;
        if ((r = policy_list(o, "bridges", POLICY_MAX_BRIDGES, &a, e)) < 0)
                return r;
        if (a) {
                p->n_bridges = 0;
                json_array_foreach(a, i, v) {
                        const char *s = json_string_value(v);
                        if (!s || !*s || strlen(s) >= sizeof p->bridges[0])
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                                 "config: policy.bridges[%zu] must be a bridge name or pattern of "
                                                 "1..15 characters",
                                                 i);
                        snprintf(p->bridges[p->n_bridges++], sizeof p->bridges[0], "%s", s);
                }
        }
        if ((r = policy_list(o, "subnets", POLICY_MAX_SUBNETS, &a, e)) < 0)
                return r;
        if (a) {
                p->n_subnets = 0;
                json_array_foreach(a, i, v) {
                        const char *s = json_string_value(v);
                        KvPrefix pf;
                        if (!s || kv_prefix_parse(s, &pf) < 0)
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                                 "config: policy.subnets[%zu] must be a CIDR, got '%.64s'", i,
                                                 s ? s : "(not a string)");
                        p->subnets[p->n_subnets++] = kv_prefix_network(&pf);
                }
        }
        return 0;
}

static bool prefix_within(const KvPrefix *inner, const KvPrefix *outer) {
        if (inner->addr.family != outer->addr.family || inner->prefixlen < outer->prefixlen)
                return false;
        KvPrefix cut = { .addr = inner->addr, .prefixlen = outer->prefixlen };
        KvPrefix net = kv_prefix_network(&cut);
        return kv_addr_equal(&net.addr, &outer->addr);
}

int policy_check_add(const Manager *m, const AttachRequest *req, KvErr *e) {
        const NodePolicy *p = &m->policy;
        char b[KV_ADDR_STRLEN];
        if (req->binding_kind != BINDING_SRIOV) {
                if (p->n_bridges) {
                        bool ok = false;
                        for (size_t i = 0; i < p->n_bridges && !ok; i++)
                                ok = fnmatch(p->bridges[i], req->bridge, 0) == 0;
                        if (!ok)
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EPERM,
                                                 "network: 'bridge' '%s' is not one this node's policy allows "
                                                 "(policy.bridges)",
                                                 req->bridge);
                }
                if (!req->antispoof && !p->allow_antispoof_off)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EPERM,
                                         "network: 'antiSpoofing' false is not allowed by this node's policy "
                                         "(policy.allowAntiSpoofingOff)");
                if (!p->adopt_bridges && !req->chained) {
                        /* a bridge kvnet made has the MAC lnl_bridge_create gives it */
                        const char *names[2] = { req->bridge, req->vlan_bridge };
                        for (size_t i = 0; i < 2; i++) {
                                uint8_t have[6], ours[6];
                                if (!names[i][0] || link_get_mac(-1, names[i], have) < 0)
                                        continue;
                                lnl_bridge_mac(names[i], ours);
                                if (memcmp(have, ours, 6) != 0)
                                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EPERM,
                                                         "network: bridge '%s' exists and kvnet did not make it; this "
                                                         "node's policy does not adopt bridges (policy.adoptBridges)",
                                                         names[i]);
                        }
                }
        } else {
                if (!req->spoofchk && !p->allow_spoofchk_off)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EPERM,
                                         "network: 'spoofchk' false is not allowed by this node's policy "
                                         "(policy.allowSpoofchkOff)");
                if (req->trust && !p->allow_trust)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EPERM,
                                         "network: 'trust' true is not allowed by this node's policy "
                                         "(policy.allowTrust)");
        }
        if (p->n_subnets && req->has_ipam && !req->chained)
                for (size_t s = 0; s < req->ipam.n_sets; s++)
                        for (size_t i = 0; i < req->ipam.sets[s].n_ranges; i++) {
                                const KvPrefix *sub = &req->ipam.sets[s].ranges[i].subnet;
                                bool ok = false;
                                for (size_t k = 0; k < p->n_subnets && !ok; k++)
                                        ok = prefix_within(sub, &p->subnets[k]);
                                if (!ok)
                                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EPERM,
                                                         "ipam: subnet %s is outside this node's policy "
                                                         "(policy.subnets)",
                                                         kv_prefix_fmt(sub, b));
                        }
        return 0;
}
