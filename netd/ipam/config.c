/* SPDX-License-Identifier: Apache-2.0 */
/* The CNI "ipam" object (host-local's format without "type") → IpamConfig, and back. */
#include <stdio.h>
#include <sys/socket.h>

#include "common/json-util.h"
#include "netd/ipam/ipam-priv.h"

#define CTX_MAX 256
#define RCTX_MAX (CTX_MAX + 48) /* a set's path plus "[n]" */

static const char *family_name(int family) {
        return family == AF_INET6 ? "IPv6" : "IPv4";
}

/* Optional address field of a range, checked against the range's subnet. Returns 1 if present. */
static int parse_range_addr(json_t *obj, const char *rctx, const char *field, const KvPrefix *subnet, KvAddr *ret,
                            KvErr *e) {
        const char *s = NULL;
        int r = json_get_string(obj, rctx, field, false, &s, e);
        if (r <= 0)
                return r;
        char sb[KV_ADDR_STRLEN];
        KvAddr a;
        if (kv_addr_parse(s, &a) < 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s.%s: '%s' is not a valid IP address", rctx,
                                 field, s);
        if (a.family != subnet->addr.family)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s.%s: '%s' is not an %s address (subnet %s)",
                                 rctx, field, s, family_name(subnet->addr.family), kv_prefix_fmt(subnet, sb));
        if (!kv_prefix_contains(subnet, &a))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s.%s: '%s' is not inside subnet %s", rctx,
                                 field, s, kv_prefix_fmt(subnet, sb));
        *ret = a;
        return 1;
}

static int parse_range(json_t *obj, const char *rctx, IpamRange *ret, KvErr *e) {
        IpamRange rg = {};
        const char *s = NULL;
        char sb[KV_ADDR_STRLEN], sb2[KV_ADDR_STRLEN];
        int r;

        if (!json_is_object(obj))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: must be an object, got %s", rctx,
                                 json_type_name(obj));
        r = json_get_string(obj, rctx, "subnet", true, &s, e);
        if (r < 0)
                return r;
        KvPrefix p;
        if (kv_prefix_parse(s, &p) < 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s.subnet: '%s' is not a valid CIDR", rctx, s);
        unsigned bits = (unsigned) kv_addr_len(p.addr.family) * 8;
        if (p.prefixlen > bits - 2)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "%s.subnet: '%s' is too small to allocate from (at most /%u)", rctx, s, bits - 2);
        rg.subnet = kv_prefix_network(&p);

        ipam_u128 net = ipam_addr_to_u128(&rg.subnet.addr), last = ipam_subnet_last(&rg.subnet);
        int fam = rg.subnet.addr.family;
        rg.start = ipam_u128_to_addr(fam, net + 1);
        rg.end = ipam_u128_to_addr(fam, fam == AF_INET ? last - 1 : last);
        rg.gateway = ipam_u128_to_addr(fam, net + 1);
        rg.has_gateway = true;

        r = parse_range_addr(obj, rctx, "rangeStart", &rg.subnet, &rg.start, e);
        if (r < 0)
                return r;
        r = parse_range_addr(obj, rctx, "rangeEnd", &rg.subnet, &rg.end, e);
        if (r < 0)
                return r;
        r = parse_range_addr(obj, rctx, "gateway", &rg.subnet, &rg.gateway, e);
        if (r < 0)
                return r;
        if (kv_addr_cmp(&rg.start, &rg.end) > 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s.rangeStart: '%s' is after rangeEnd '%s'", rctx,
                                 kv_addr_fmt(&rg.start, sb), kv_addr_fmt(&rg.end, sb2));
        *ret = rg;
        return 0;
}

static void range_fmt(const IpamRange *rg, char buf[static 3 * KV_ADDR_STRLEN + 8]) {
        char a[KV_ADDR_STRLEN], b[KV_ADDR_STRLEN], c[KV_ADDR_STRLEN];
        snprintf(buf, 3 * KV_ADDR_STRLEN + 8, "%s (%s-%s)", kv_prefix_fmt(&rg->subnet, a), kv_addr_fmt(&rg->start, b),
                 kv_addr_fmt(&rg->end, c));
}

static bool ranges_overlap(const IpamRange *a, const IpamRange *b) {
        if (a->subnet.addr.family != b->subnet.addr.family)
                return false;
        return kv_addr_cmp(&a->start, &b->end) <= 0 && kv_addr_cmp(&b->start, &a->end) <= 0;
}

static int parse_exclude(json_t *arr, const char *ctx, IpamConfig *c, KvErr *e) {
        size_t idx;
        json_t *v;
        json_array_foreach(arr, idx, v) {
                if (!json_is_string(v))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s.exclude[%zu]: must be a string, got %s",
                                         ctx, idx, json_type_name(v));
                const char *s = json_string_value(v);
                KvAddr a;
                KvPrefix p;
                ipam_u128 first, last;
                if (kv_addr_parse(s, &a) >= 0) {
                        first = last = ipam_addr_to_u128(&a);
                } else if (kv_prefix_parse(s, &p) >= 0) {
                        p = kv_prefix_network(&p);
                        a = p.addr;
                        first = ipam_addr_to_u128(&p.addr);
                        last = ipam_subnet_last(&p);
                } else
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "%s.exclude[%zu]: '%s' is not a valid IP address or CIDR", ctx, idx, s);
                if (last - first >= IPAM_MAX_EXCLUDE - c->n_exclude)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -E2BIG,
                                         "%s.exclude[%zu]: '%s' exceeds the limit of %d excluded addresses", ctx, idx,
                                         s, IPAM_MAX_EXCLUDE);
                for (ipam_u128 x = first;; x++) {
                        c->exclude[c->n_exclude++] = ipam_u128_to_addr(a.family, x);
                        if (x == last)
                                break;
                }
        }
        return 0;
}

static int parse_routes(json_t *arr, const char *ctx, IpamConfig *c, KvErr *e) {
        size_t idx;
        json_t *v;
        char rctx[CTX_MAX], sb[KV_ADDR_STRLEN];
        if (json_array_size(arr) > IPAM_MAX_ROUTES)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -E2BIG, "%s.routes: %zu routes, at most %d are supported",
                                 ctx, json_array_size(arr), IPAM_MAX_ROUTES);
        json_array_foreach(arr, idx, v) {
                IpamRoute rt = {};
                const char *s = NULL;
                snprintf(rctx, sizeof rctx, "%s.routes[%zu]", ctx, idx);
                if (!json_is_object(v))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: must be an object, got %s", rctx,
                                         json_type_name(v));
                int r = json_get_string(v, rctx, "dst", true, &s, e);
                if (r < 0)
                        return r;
                if (kv_prefix_parse(s, &rt.dst) < 0)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s.dst: '%s' is not a valid CIDR", rctx,
                                         s);
                rt.dst = kv_prefix_network(&rt.dst);
                r = json_get_string(v, rctx, "gw", false, &s, e);
                if (r < 0)
                        return r;
                if (r > 0) {
                        if (kv_addr_parse(s, &rt.gw) < 0)
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                                 "%s.gw: '%s' is not a valid IP address", rctx, s);
                        if (rt.gw.family != rt.dst.addr.family)
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                                 "%s.gw: '%s' is not an %s address (dst %s)", rctx, s,
                                                 family_name(rt.dst.addr.family), kv_prefix_fmt(&rt.dst, sb));
                        rt.has_gw = true;
                }
                c->routes[c->n_routes++] = rt;
        }
        return 0;
}

static int parse_set(json_t *arr, const char *sctx, IpamRangeSet *set, KvErr *e) {
        char rctx[RCTX_MAX], sb[KV_ADDR_STRLEN];
        size_t idx;
        json_t *v;
        if (!json_is_array(arr))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: must be an array of ranges, got %s", sctx,
                                 json_type_name(arr));
        if (json_array_size(arr) == 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: a range set needs at least one range", sctx);
        if (json_array_size(arr) > IPAM_MAX_RANGES)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -E2BIG, "%s: %zu ranges, at most %d per set are supported",
                                 sctx, json_array_size(arr), IPAM_MAX_RANGES);
        json_array_foreach(arr, idx, v) {
                snprintf(rctx, sizeof rctx, "%s[%zu]", sctx, idx);
                IpamRange *rg = &set->ranges[set->n_ranges];
                int r = parse_range(v, rctx, rg, e);
                if (r < 0)
                        return r;
                if (set->n_ranges > 0 && rg->subnet.addr.family != set->ranges[0].subnet.addr.family)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "%s.subnet: '%s' is %s but %s[0] is %s; a range set holds one family", rctx,
                                         kv_prefix_fmt(&rg->subnet, sb), family_name(rg->subnet.addr.family), sctx,
                                         family_name(set->ranges[0].subnet.addr.family));
                set->n_ranges++;
        }
        return 0;
}

int ipam_config_parse(json_t *ipam, const char *ctx, IpamConfig *ret, KvErr *e) {
        char sctx[CTX_MAX];
        const char *s = NULL;
        json_t *ranges = NULL, *routes = NULL, *exclude = NULL;
        int r;

        if (!ctx)
                ctx = "ipam";
        if (!json_is_object(ipam))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: must be an object, got %s", ctx,
                                 json_type_name(ipam));

        _cleanup_free_ IpamConfig *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;

        r = json_get_string(ipam, ctx, "type", false, &s, e);
        if (r < 0)
                return r;
        if (r > 0 && !streq(s, "kvnet"))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "%s.type: '%s' is not supported; netd is the IPAM (omit 'type' or use 'kvnet')", ctx,
                                 s);

        /* Legacy flat form: becomes the first range set, as host-local does. */
        json_t *legacy_subnet = json_object_get(ipam, "subnet");
        if (legacy_subnet && !json_is_null(legacy_subnet)) {
                r = parse_range(ipam, ctx, &c->sets[0].ranges[0], e);
                if (r < 0)
                        return r;
                c->sets[0].n_ranges = 1;
                c->n_sets = 1;
        } else {
                static const char *const legacy_fields[] = { "rangeStart", "rangeEnd", "gateway" };
                for (size_t k = 0; k < ELEMENTSOF(legacy_fields); k++)
                        if (json_object_get(ipam, legacy_fields[k]))
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                                 "%s.%s: given without '%s.subnet' (use 'ranges')", ctx,
                                                 legacy_fields[k], ctx);
        }

        r = json_get_array(ipam, ctx, "ranges", false, &ranges, e);
        if (r < 0)
                return r;
        if (ranges) {
                if (c->n_sets + json_array_size(ranges) > IPAM_MAX_SETS)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -E2BIG,
                                         "%s.ranges: %zu range sets, at most %d are supported", ctx,
                                         c->n_sets + json_array_size(ranges), IPAM_MAX_SETS);
                size_t idx;
                json_t *v;
                json_array_foreach(ranges, idx, v) {
                        snprintf(sctx, sizeof sctx, "%s.ranges[%zu]", ctx, idx);
                        r = parse_set(v, sctx, &c->sets[c->n_sets], e);
                        if (r < 0)
                                return r;
                        c->n_sets++;
                }
        }
        if (c->n_sets == 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "%s: 'ranges' is required (or host-local's legacy 'subnet')", ctx);

        /* No two ranges anywhere may overlap (host-local's rule: an address belongs to one set). */
        for (size_t a = 0; a < c->n_sets; a++)
                for (size_t ra = 0; ra < c->sets[a].n_ranges; ra++)
                        for (size_t b = 0; b <= a; b++)
                                for (size_t rb = 0; rb < (b == a ? ra : c->sets[b].n_ranges); rb++) {
                                        const IpamRange *x = &c->sets[a].ranges[ra], *y = &c->sets[b].ranges[rb];
                                        if (!ranges_overlap(x, y))
                                                continue;
                                        char bx[3 * KV_ADDR_STRLEN + 8], by[3 * KV_ADDR_STRLEN + 8];
                                        bool legacy = legacy_subnet && !json_is_null(legacy_subnet);
                                        /* Indexes in messages are those of the "ranges" array. */
                                        long ia = (long) a - legacy, ib = (long) b - legacy;
                                        char pa[CTX_MAX], pb[CTX_MAX];
                                        if (ia < 0)
                                                snprintf(pa, sizeof pa, "%s", ctx);
                                        else
                                                snprintf(pa, sizeof pa, "%s.ranges[%ld][%zu]", ctx, ia, ra);
                                        if (ib < 0)
                                                snprintf(pb, sizeof pb, "%s", ctx);
                                        else
                                                snprintf(pb, sizeof pb, "%s.ranges[%ld][%zu]", ctx, ib, rb);
                                        range_fmt(x, bx);
                                        range_fmt(y, by);
                                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                                         "%s: range %s overlaps %s: range %s", pa, bx, pb, by);
                                }

        r = json_get_array(ipam, ctx, "routes", false, &routes, e);
        if (r < 0)
                return r;
        if (routes) {
                r = parse_routes(routes, ctx, c, e);
                if (r < 0)
                        return r;
        }
        r = json_get_array(ipam, ctx, "exclude", false, &exclude, e);
        if (r < 0)
                return r;
        if (exclude) {
                r = parse_exclude(exclude, ctx, c, e);
                if (r < 0)
                        return r;
        }

        *ret = *c;
        return 0;
}

static int json_set_addr(json_t *o, const char *key, const KvAddr *a) {
        char b[KV_ADDR_STRLEN];
        return json_object_set_new(o, key, json_string(kv_addr_fmt(a, b)));
}

static int json_set_prefix(json_t *o, const char *key, const KvPrefix *p) {
        char b[KV_ADDR_STRLEN];
        return json_object_set_new(o, key, json_string(kv_prefix_fmt(p, b)));
}

json_t *ipam_config_to_json(const IpamConfig *c) {
        _cleanup_json_ json_t *o = json_object(), *ranges = json_array(), *routes = json_array(),
                              *exclude = json_array();
        char b[KV_ADDR_STRLEN];
        if (!o || !ranges || !routes || !exclude)
                return NULL;
        for (size_t s = 0; s < c->n_sets; s++) {
                json_t *set = json_array();
                if (!set || json_array_append_new(ranges, set) < 0)
                        return NULL;
                for (size_t k = 0; k < c->sets[s].n_ranges; k++) {
                        const IpamRange *rg = &c->sets[s].ranges[k];
                        json_t *ro = json_object();
                        if (!ro || json_array_append_new(set, ro) < 0)
                                return NULL;
                        if (json_set_prefix(ro, "subnet", &rg->subnet) < 0 ||
                            json_set_addr(ro, "rangeStart", &rg->start) < 0 ||
                            json_set_addr(ro, "rangeEnd", &rg->end) < 0 ||
                            (rg->has_gateway && json_set_addr(ro, "gateway", &rg->gateway) < 0))
                                return NULL;
                }
        }
        for (size_t k = 0; k < c->n_routes; k++) {
                json_t *ro = json_object();
                if (!ro || json_array_append_new(routes, ro) < 0)
                        return NULL;
                if (json_set_prefix(ro, "dst", &c->routes[k].dst) < 0 ||
                    (c->routes[k].has_gw && json_set_addr(ro, "gw", &c->routes[k].gw) < 0))
                        return NULL;
        }
        for (size_t k = 0; k < c->n_exclude; k++)
                if (json_array_append_new(exclude, json_string(kv_addr_fmt(&c->exclude[k], b))) < 0)
                        return NULL;
        if (json_object_set_new(o, "ranges", TAKE_PTR(ranges)) < 0 ||
            json_object_set_new(o, "routes", TAKE_PTR(routes)) < 0 ||
            json_object_set_new(o, "exclude", TAKE_PTR(exclude)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static bool prefix_eq(const KvPrefix *a, const KvPrefix *b) {
        return a->prefixlen == b->prefixlen && kv_addr_equal(&a->addr, &b->addr);
}

bool ipam_config_equal(const IpamConfig *a, const IpamConfig *b) {
        if (a->n_sets != b->n_sets || a->n_routes != b->n_routes || a->n_exclude != b->n_exclude)
                return false;
        for (size_t s = 0; s < a->n_sets; s++) {
                if (a->sets[s].n_ranges != b->sets[s].n_ranges)
                        return false;
                for (size_t k = 0; k < a->sets[s].n_ranges; k++) {
                        const IpamRange *x = &a->sets[s].ranges[k], *y = &b->sets[s].ranges[k];
                        if (!prefix_eq(&x->subnet, &y->subnet) || !kv_addr_equal(&x->start, &y->start) ||
                            !kv_addr_equal(&x->end, &y->end) || x->has_gateway != y->has_gateway ||
                            (x->has_gateway && !kv_addr_equal(&x->gateway, &y->gateway)))
                                return false;
                }
        }
        for (size_t k = 0; k < a->n_routes; k++) {
                const IpamRoute *x = &a->routes[k], *y = &b->routes[k];
                if (!prefix_eq(&x->dst, &y->dst) || x->has_gw != y->has_gw ||
                    (x->has_gw && !kv_addr_equal(&x->gw, &y->gw)))
                        return false;
        }
        for (size_t k = 0; k < a->n_exclude; k++)
                if (!kv_addr_equal(&a->exclude[k], &b->exclude[k]))
                        return false;
        return true;
}
