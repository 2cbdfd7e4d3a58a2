/* SPDX-License-Identifier: Apache-2.0 */
/* Persistent IPs through IPAMClaims (docs/multus.md): a requested network with an ipam-claim-reference reads
 * the claim (the pod's namespace) while the plan is built. A claim with addresses has them requested from
 * the delegate as the selection's 'ips' would be (the runtimeConfig ips capability, and IP= in CNI_ARGS);
 * a claim without any gets the addresses the delegate's ADD returns for its interface written into its
 * status, right after that ADD. */
#include "common/json-util.h"
#include "multus-compat/mc-priv.h"
#include "multus-compat/plugin/plugin.h"

void mc_claim_uses_free(McClaimUse *v, size_t n) {
        for (size_t i = 0; v && i < n; i++) {
                free(v[i].ifname);
                free(v[i].namespace_);
                free(v[i].name);
        }
        free(v);
}

static int claim_get(McPlugin *p, const char *ns, const char *name, McIpamClaim **ret, KvErr *e) {
        KubeRequest req = { .verb = KUBE_GET, .ref = { MC_IPAMCLAIM_API, MC_IPAMCLAIM_RESOURCE, ns, name } };
        _cleanup_json_ json_t *o = NULL;
        int r = mc_kube_request(p, &req, &o, e);
        if (r < 0)
                return r;
        _cleanup_free_ char *text = json_dumps(o, JSON_COMPACT);
        if (!text)
                return -ENOMEM;
        return mc_ipamclaim_parse(text, strlen(text), ret, e);
}

/* The "name" of a delegate's (normalised) conflist. */
static int conflist_name(const char *conflist, char **ret) {
        _cleanup_json_ json_t *o = json_loads(conflist, 0, NULL);
        const char *n = json_string_value(json_object_get(o, "name"));
        return mc_strdup_opt(n, ret);
}

/* The delegate's runtimeConfig 'ips' become the claim's addresses. */
static int set_ips_cap(McCachedDelegate *d, char *const *ips, size_t n) {
        _cleanup_json_ json_t *a = json_array();
        for (size_t i = 0; a && i < n; i++)
                if (json_array_append_new(a, json_string(ips[i])) < 0)
                        return -ENOMEM;
        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_caps; i++)
                if (streq(d->caps[i].key, "ips")) {
                        char *v = json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY);
                        if (!v)
                                return -ENOMEM;
                        free(d->caps[i].value);
                        d->caps[i].value = v;
                        return 0;
                }
        return mc_caps_push(&d->caps, &d->n_caps, "ips", a);
}

static int claim_error(int r, const McSelection *s, const char *ns, const char *claim, KvErr *e) {
        KvErr why = *e;
        kverr_clear(e);
        bool again = r == -ECONNREFUSED || r == -ETIMEDOUT || r == -EIO || r == -ECONNRESET || r == -EAGAIN;
        return kverr_set(e, again ? KV_ERR_TRY_AGAIN : KV_ERR_INVALID_CONFIG, r, "network '%s/%s': IPAMClaim '%s/%s' %s",
                         s->namespace_, s->name, ns, claim,
                         r == -ENOENT ? "not found" : why.msg[0] ? why.msg : strerror(-r));
}

int mc_ipamclaim_bind(McPlugin *p, const McPod *pod, McCache *c, const McSelection *s, KvErr *e) {
        _cleanup_(mc_ipamclaim_freep) McIpamClaim *claim = NULL;
        _cleanup_free_ char *network = NULL;
        if (!pod || !s->ipam_claim_reference || c->n_delegates == 0)
                return 0;
        McCachedDelegate *d = &c->delegates[c->n_delegates - 1];
        int r = claim_get(p, pod->namespace_, s->ipam_claim_reference, &claim, e);
        if (r < 0)
                return claim_error(r, s, pod->namespace_, s->ipam_claim_reference, e);
        if ((r = conflist_name(d->conflist, &network)) < 0 || (r = mc_ipamclaim_check(claim, s, network, e)) < 0)
                return r;
        if (claim->n_ips > 0)
                return set_ips_cap(d, claim->ips, claim->n_ips);
        /* no addresses yet: this ADD's become the claim's */
        McClaimUse *nv = realloc(p->claims, (p->n_claims + 1) * sizeof *nv);
        if (!nv)
                return -ENOMEM;
        p->claims = nv;
        McClaimUse *u = &nv[p->n_claims++];
        *u = (McClaimUse) {};
        if (!(u->ifname = strdup(d->ifname)) || !(u->namespace_ = strdup(pod->namespace_)) ||
            !(u->name = strdup(s->ipam_claim_reference)))
                return -ENOMEM;
        return 0;
}

static const McClaimUse *use_of(const McPlugin *p, const McCachedDelegate *d) {
        for (size_t i = 0; i < p->n_claims; i++)
                if (streq(p->claims[i].ifname, d->ifname))
                        return &p->claims[i];
        return NULL;
}

int mc_ipamclaim_record(McPlugin *p, const McCache *c, const McCachedDelegate *d, const NodeCniResult *res, KvErr *e) {
        const McClaimUse *u = p->command == MC_CMD_ADD && res && res->raw ? use_of(p, d) : NULL;
        _cleanup_json_ json_t *body = NULL;
        _cleanup_free_ char *text = NULL;
        char **ips = NULL;
        size_t n = 0;
        if (!u)
                return 0;
        int r = mc_result_iface_ips(res->raw, strlen(res->raw), d->ifname, &ips, &n, e);
        if (r >= 0 && n > MC_IPAMCLAIM_IPS_MAX)
                r = kverr_set(e, KV_ERR_INVALID_CONFIG, -E2BIG, "result has %zu addresses for '%s', a claim holds %d", n,
                              d->ifname, MC_IPAMCLAIM_IPS_MAX);
        if (r >= 0 && n > 0 && (r = mc_ipamclaim_status_format(ips, n, c->pod_name, &text)) >= 0) {
                KubeRequest req = { .verb = KUBE_PATCH_STATUS,
                                    .ref = { MC_IPAMCLAIM_API, MC_IPAMCLAIM_RESOURCE, u->namespace_, u->name },
                                    .body = body = json_loads(text, 0, NULL) };
                r = body ? mc_kube_request(p, &req, NULL, e) : -ENOMEM;
        }
        mc_strv_free(ips, n);
        if (r >= 0)
                return 0;
        KvErr why = *e;
        kverr_clear(e);
        return kverr_set(e, r == -ENOENT ? KV_ERR_INVALID_CONFIG : KV_ERR_TRY_AGAIN, r,
                         "network '%s' (%s): writing its addresses to IPAMClaim '%s/%s' failed: %s", d->name, d->ifname,
                         u->namespace_, u->name, why.msg[0] ? why.msg : strerror(-r));
}
