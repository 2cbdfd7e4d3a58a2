/* SPDX-License-Identifier: Apache-2.0 */
/* IPAMClaims (k8s.cni.cncf.io/v1alpha1, github.com/k8snetworkplumbingwg/ipamclaims): the object read into a
 * typed struct, a selection's ips checked against the claim's, the addresses of one interface taken from a
 * delegate's CNI result, and the status patch that records them. */
#include "common/json-util.h"
#include "multus-compat/mc-priv.h"

McIpamClaim *mc_ipamclaim_free(McIpamClaim *c) {
        if (!c)
                return NULL;
        free(c->namespace_);
        free(c->name);
        free(c->network);
        free(c->interface);
        mc_strv_free(c->ips, c->n_ips);
        free(c->owner_pod);
        free(c);
        return NULL;
}

/* "10.1.2.3/24", "fd00::5/64": an address with its prefix length, as the CRD's CIDR type. */
static bool cidr_valid(const char *s) {
        return strchr(s, '/') && mc_ip_valid(s, true);
}

static int get_opt(json_t *o, const char *ctx, const char *key, bool required, char **ret, KvErr *e) {
        const char *v = NULL;
        int r = json_get_string(o, ctx, key, required, &v, e);
        if (r < 0) {
                e->code = KV_ERR_INVALID_CONFIG;
                return r;
        }
        return mc_strdup_opt(v, ret);
}

static int parse_status(json_t *o, const char *ctx, McIpamClaim *c, KvErr *e) {
        json_t *st = NULL;
        int r = json_get_object(o, ctx, "status", false, &st, e);
        if (r < 0) {
                e->code = KV_ERR_INVALID_CONFIG;
                return r;
        }
        if (!st)
                return 0;
        char sctx[340];
        snprintf(sctx, sizeof sctx, "%.300s status", ctx);
        if ((r = mc_json_strv(st, sctx, "ips", &c->ips, &c->n_ips, e)) < 0 ||
            (r = get_opt(st, sctx, "ownerPod", false, &c->owner_pod, e)) < 0)
                return r;
        if (c->n_ips > MC_IPAMCLAIM_IPS_MAX)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'ips' has %zu addresses, at most %d",
                                 sctx, c->n_ips, MC_IPAMCLAIM_IPS_MAX);
        for (size_t i = 0; i < c->n_ips; i++)
                if (!cidr_valid(c->ips[i]))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'ips[%zu]' is not an address/prefix: '%s'",
                                         sctx, i, c->ips[i]);
        return 0;
}

int mc_ipamclaim_parse(const char *text, size_t len, McIpamClaim **ret, KvErr *e) {
        _cleanup_json_ json_t *o = NULL;
        _cleanup_(mc_ipamclaim_freep) McIpamClaim *c = calloc(1, sizeof *c);
        json_t *md = NULL, *spec = NULL;
        char ctx[320];
        int r;
        if (!c)
                return -ENOMEM;
        if ((r = mc_json_load(text, len, "IPAMClaim", &o, e)) < 0)
                return r;
        if (!json_is_object(o))
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "IPAMClaim: must be an object, got %s", json_type_name(o));
        if ((r = json_get_object(o, "IPAMClaim", "metadata", true, &md, e)) < 0 ||
            (r = get_opt(md, "IPAMClaim metadata", "name", true, &c->name, e)) < 0 ||
            (r = get_opt(md, "IPAMClaim metadata", "namespace", false, &c->namespace_, e)) < 0) {
                e->code = KV_ERR_INVALID_CONFIG;
                return r;
        }
        snprintf(ctx, sizeof ctx, "IPAMClaim '%.200s'", c->name);
        if ((r = json_get_object(o, ctx, "spec", true, &spec, e)) < 0) {
                e->code = KV_ERR_INVALID_CONFIG;
                return r;
        }
        char sctx[340];
        snprintf(sctx, sizeof sctx, "%.300s spec", ctx);
        if ((r = get_opt(spec, sctx, "network", true, &c->network, e)) < 0 ||
            (r = get_opt(spec, sctx, "interface", false, &c->interface, e)) < 0 || (r = parse_status(o, ctx, c, e)) < 0)
                return r;
        if (!c->network[0])
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'network' must not be empty", sctx);
        *ret = TAKE_PTR(c);
        return 0;
}

/* A selection's ips entry and a claim's address: the same when equal, or when the entry has no prefix and
 * is the claim's address without its prefix. */
static bool same_ip(const char *sel, const char *claim) {
        if (streq(sel, claim))
                return true;
        size_t n = strcspn(claim, "/");
        return !strchr(sel, '/') && strlen(sel) == n && strncmp(sel, claim, n) == 0;
}

static bool same_ips(char *const *a, size_t n_a, char *const *b, size_t n_b) {
        if (n_a != n_b)
                return false;
        for (size_t i = 0; i < n_a; i++) {
                bool found = false;
                for (size_t j = 0; !found && j < n_b; j++)
                        found = same_ip(a[i], b[j]);
                if (!found)
                        return false;
        }
        return true;
}

static int join(char *const *v, size_t n, char *buf, size_t size) {
        size_t off = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < n && off < size; i++)
                off += (size_t) snprintf(buf + off, size - off, "%s%s", i ? "," : "", v[i]);
        return 0;
}

int mc_ipamclaim_check(const McIpamClaim *c, const McSelection *s, const char *network, KvErr *e) {
        char a[256], b[256];
        if (network && !streq(c->network, network))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "network '%s/%s': IPAMClaim '%s' is for network '%s', this network's config is named '%s'",
                                 s->namespace_, s->name, c->name, c->network, network);
        if (c->n_ips == 0 || s->n_ips == 0 || same_ips(s->ips, s->n_ips, c->ips, c->n_ips))
                return 0;
        join(s->ips, s->n_ips, a, sizeof a);
        join(c->ips, c->n_ips, b, sizeof b);
        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                         "network '%s/%s': 'ips' [%s] differ from the addresses of IPAMClaim '%s' [%s]", s->namespace_,
                         s->name, a, c->name, b);
}

/* ---------------------------------------------------------------- what the claim records */

static long long ip_iface(json_t *ip) {
        json_t *i = json_object_get(ip, "interface");
        return json_is_integer(i) ? json_integer_value(i) : -1;
}

static bool in_sandbox(json_t *ifaces, long long k) {
        json_t *x = k >= 0 ? json_array_get(ifaces, (size_t) k) : NULL;
        return x && json_is_string(json_object_get(x, "sandbox"));
}

/* Does address entry x belong to the pod interface ifname? pass 0: it is on ifname; pass 1 (nothing was): it
 * is on another sandbox interface (a chained binding's, such as kvnet's tap-<ifname>, holds the addresses the
 * plugin gave ifname) or on none (an IPAM-like result). Host-side interfaces never. */
static bool ip_matches(json_t *ifaces, json_t *x, const char *ifname, int pass) {
        long long k = ip_iface(x);
        if (pass == 1)
                return k < 0 || in_sandbox(ifaces, k);
        return in_sandbox(ifaces, k) &&
               streq_ptr(json_string_value(json_object_get(json_array_get(ifaces, (size_t) k), "name")), ifname);
}

static bool listed(char *const *v, size_t n, const char *s) {
        for (size_t i = 0; i < n; i++)
                if (streq(v[i], s))
                        return true;
        return false;
}

int mc_result_iface_ips(const char *result, size_t len, const char *ifname, char ***ret, size_t *ret_n, KvErr *e) {
        _cleanup_json_ json_t *o = NULL;
        char **v = NULL;
        size_t n = 0, i;
        json_t *x;
        int r;
        if ((r = mc_json_load(result, len, "result", &o, e)) < 0)
                return r;
        json_t *ifaces = json_object_get(o, "interfaces"), *ips = json_object_get(o, "ips");
        if (!json_is_object(o) || (ifaces && !json_is_array(ifaces)) || (ips && !json_is_array(ips)))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "result: must be an object whose 'interfaces' and 'ips' are arrays");
        for (int pass = 0; pass < 2 && n == 0; pass++)
                json_array_foreach(ips, i, x) {
                        const char *a = json_string_value(json_object_get(x, "address"));
                        if (!a || !ip_matches(ifaces, x, ifname, pass) || listed(v, n, a))
                                continue;
                        if (!cidr_valid(a)) {
                                mc_strv_free(v, n);
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                                 "result: 'ips[%zu].address' is not an address/prefix: '%s'", i, a);
                        }
                        if (mc_strv_push(&v, &n, a) < 0) {
                                mc_strv_free(v, n);
                                return -ENOMEM;
                        }
                }
        *ret = v;
        *ret_n = n;
        return 0;
}

int mc_ipamclaim_status_format(char *const *ips, size_t n, const char *owner_pod, char **ret) {
        _cleanup_json_ json_t *a = json_array(), *body = NULL;
        for (size_t i = 0; a && i < n; i++)
                if (json_array_append_new(a, json_string(ips[i])) < 0)
                        return -ENOMEM;
        if (!a || !(body = json_pack("{s:{s:O,s:s*}}", "status", "ips", a, "ownerPod", owner_pod)))
                return -ENOMEM;
        char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!text)
                return -ENOMEM;
        *ret = text;
        return 0;
}
