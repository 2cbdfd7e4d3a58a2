/* SPDX-License-Identifier: Apache-2.0 */
/* CNI results: parsing any supported version into CniResult, emitting it as any supported version. */
#include "cni/cni.h"
#include "common/json-util.h"

static void strv_free(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

CniResult *cni_result_free(CniResult *r) {
        if (!r)
                return NULL;
        free(r->cni_version);
        for (size_t i = 0; i < r->n_interfaces; i++) {
                free(r->interfaces[i].name);
                free(r->interfaces[i].mac);
                free(r->interfaces[i].sandbox);
                free(r->interfaces[i].socket_path);
                free(r->interfaces[i].pci_id);
        }
        free(r->interfaces);
        free(r->ips);
        free(r->routes);
        strv_free(r->dns.nameservers, r->dns.n_nameservers);
        free(r->dns.domain);
        strv_free(r->dns.search, r->dns.n_search);
        strv_free(r->dns.options, r->dns.n_options);
        free(r);
        return NULL;
}

/* Optional string field, duplicated. */
static int get_strdup(json_t *obj, const char *ctx, const char *key, bool required, char **ret, KvErr *e) {
        const char *s = NULL;
        int r = json_get_string(obj, ctx, key, required, &s, e);
        if (r <= 0)
                return r;
        char *d = strdup(s);
        if (!d)
                return -ENOMEM;
        *ret = d;
        return 1;
}

static int get_prefix(json_t *obj, const char *ctx, const char *key, bool required, KvPrefix *ret, KvErr *e) {
        const char *s = NULL;
        int r = json_get_string(obj, ctx, key, required, &s, e);
        if (r <= 0)
                return r;
        if (kv_prefix_parse(s, ret) < 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s.%s must be a CIDR (address/prefix), got '%s'",
                                 ctx, key, s);
        return 1;
}

static int get_addr(json_t *obj, const char *ctx, const char *key, bool required, KvAddr *ret, KvErr *e) {
        const char *s = NULL;
        int r = json_get_string(obj, ctx, key, required, &s, e);
        if (r <= 0)
                return r;
        if (kv_addr_parse(s, ret) < 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s.%s must be an IP address, got '%s'", ctx, key,
                                 s);
        return 1;
}

static int get_strv(json_t *obj, const char *ctx, const char *key, char ***ret, size_t *ret_n, KvErr *e) {
        json_t *arr = NULL;
        int r = json_get_array(obj, ctx, key, false, &arr, e);
        if (r <= 0)
                return r;
        size_t n = json_array_size(arr);
        char **v = calloc(n + 1, sizeof(char *));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_t *s = json_array_get(arr, i);
                if (!json_is_string(s)) {
                        strv_free(v, i);
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s.%s[%zu] must be a string, got %s", ctx,
                                         key, i, json_type_name(s));
                }
                v[i] = strdup(json_string_value(s));
                if (!v[i]) {
                        strv_free(v, i);
                        return -ENOMEM;
                }
        }
        *ret = v;
        *ret_n = n;
        return 1;
}

static int parse_interface(json_t *o, const char *ctx, bool v11, CniResultInterface *ifc, KvErr *e) {
        int r;
        if (!json_is_object(o))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s must be an object, got %s", ctx,
                                 json_type_name(o));
        if ((r = get_strdup(o, ctx, "name", true, &ifc->name, e)) < 0)
                return r;
        if ((r = get_strdup(o, ctx, "mac", false, &ifc->mac, e)) < 0)
                return r;
        if ((r = get_strdup(o, ctx, "sandbox", false, &ifc->sandbox, e)) < 0)
                return r;
        if (v11) {
                long long mtu = 0;
                if ((r = json_get_int(o, ctx, "mtu", false, 0, 65535, &mtu, e)) < 0)
                        return r;
                ifc->mtu = (uint32_t) mtu;
                if ((r = get_strdup(o, ctx, "socketPath", false, &ifc->socket_path, e)) < 0)
                        return r;
                if ((r = get_strdup(o, ctx, "pciID", false, &ifc->pci_id, e)) < 0)
                        return r;
        }
        return 0;
}

static int parse_ip(json_t *o, const char *ctx, bool legacy, size_t n_interfaces, CniResultIp *ip, KvErr *e) {
        int r;
        if (!json_is_object(o))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s must be an object, got %s", ctx,
                                 json_type_name(o));
        if ((r = get_prefix(o, ctx, "address", true, &ip->address, e)) < 0)
                return r;
        if ((r = get_addr(o, ctx, "gateway", false, &ip->gateway, e)) < 0)
                return r;
        if (ip->gateway.family && ip->gateway.family != ip->address.addr.family) {
                char b[KV_ADDR_STRLEN];
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "%s.gateway '%s' is not of the same address family as the address", ctx,
                                 kv_addr_fmt(&ip->gateway, b));
        }
        /* 0.3.x/0.4.0 carry "version"; check it agrees with the address when present. */
        const char *ver = NULL;
        if (legacy && (r = json_get_string(o, ctx, "version", false, &ver, e)) < 0)
                return r;
        if (ver) {
                const char *want = ip->address.addr.family == AF_INET ? "4" : "6";
                if (!streq(ver, "4") && !streq(ver, "6"))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s.version must be \"4\" or \"6\", got '%s'",
                                         ctx, ver);
                if (!streq(ver, want))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "%s.version is '%s' but the address is IPv%s", ctx, ver, want);
        }
        long long idx = -1;
        json_t *iv = json_object_get(o, "interface");
        if (iv && !json_is_null(iv)) {
                if (!json_is_integer(iv))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s.interface must be an integer, got %s",
                                         ctx, json_type_name(iv));
                idx = json_integer_value(iv);
                if (idx < 0 || (size_t) idx >= n_interfaces)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -ERANGE,
                                         "%s.interface is %lld but there are %zu interfaces", ctx, idx, n_interfaces);
        }
        ip->interface = (int) idx;
        return 0;
}

static int parse_route(json_t *o, const char *ctx, bool v11, CniResultRoute *rt, KvErr *e) {
        int r;
        if (!json_is_object(o))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s must be an object, got %s", ctx,
                                 json_type_name(o));
        if ((r = get_prefix(o, ctx, "dst", true, &rt->dst, e)) < 0)
                return r;
        if ((r = get_addr(o, ctx, "gw", false, &rt->gw, e)) < 0)
                return r;
        if (!v11)
                return 0;
        struct {
                const char *key;
                long long min, max;
                long long *val;
                bool *has;
        } extras[] = {
                { "mtu", 0, 65535, &rt->mtu, &rt->has_mtu },
                { "advmss", 0, 65535, &rt->advmss, &rt->has_advmss },
                { "priority", 0, UINT32_MAX, &rt->priority, &rt->has_priority },
                { "table", 0, UINT32_MAX, &rt->table, &rt->has_table },
                { "scope", 0, 255, &rt->scope, &rt->has_scope },
        };
        for (size_t i = 0; i < ELEMENTSOF(extras); i++) {
                r = json_get_int(o, ctx, extras[i].key, false, extras[i].min, extras[i].max, extras[i].val, e);
                if (r < 0)
                        return r;
                *extras[i].has = r > 0;
        }
        return 0;
}

int cni_result_parse(json_t *obj, const char *ctx, const char *version, CniResult **ret, KvErr *e) {
        int r;
        if (!json_is_object(obj))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s must be an object, got %s", ctx,
                                 json_type_name(obj));

        _cleanup_(cni_result_freep) CniResult *res = calloc(1, sizeof *res);
        if (!res)
                return -ENOMEM;
        const char *own = NULL;
        if ((r = json_get_string(obj, ctx, "cniVersion", false, &own, e)) < 0)
                return r;
        if (own && cni_version_index(own) < 0)
                return kverr_set(e, KV_ERR_INCOMPATIBLE_VERSION, -EINVAL,
                                 "%s: incompatible CNI version '%s' (supported: 0.3.1, 0.4.0, 1.0.0, 1.1.0)", ctx, own);
        if (!own)
                own = version ? version : CNI_LATEST_VERSION;
        res->cni_version = strdup(own);
        if (!res->cni_version)
                return -ENOMEM;
        bool legacy = cni_version_cmp(own, "1.0.0") < 0;
        bool v11 = cni_version_cmp(own, "1.1.0") >= 0;
        char sub[128];

        json_t *arr = NULL;
        if ((r = json_get_array(obj, ctx, "interfaces", false, &arr, e)) < 0)
                return r;
        if (arr && json_array_size(arr) > 0) {
                res->interfaces = calloc(json_array_size(arr), sizeof *res->interfaces);
                if (!res->interfaces)
                        return -ENOMEM;
                for (size_t i = 0; i < json_array_size(arr); i++) {
                        snprintf(sub, sizeof sub, "%s.interfaces[%zu]", ctx, i);
                        res->n_interfaces++;
                        if ((r = parse_interface(json_array_get(arr, i), sub, v11, &res->interfaces[i], e)) < 0)
                                return r;
                }
        }

        arr = NULL;
        if ((r = json_get_array(obj, ctx, "ips", false, &arr, e)) < 0)
                return r;
        if (arr && json_array_size(arr) > 0) {
                res->ips = calloc(json_array_size(arr), sizeof *res->ips);
                if (!res->ips)
                        return -ENOMEM;
                for (size_t i = 0; i < json_array_size(arr); i++) {
                        snprintf(sub, sizeof sub, "%s.ips[%zu]", ctx, i);
                        if ((r = parse_ip(json_array_get(arr, i), sub, legacy, res->n_interfaces, &res->ips[i], e)) < 0)
                                return r;
                        res->n_ips++;
                }
        }

        arr = NULL;
        if ((r = json_get_array(obj, ctx, "routes", false, &arr, e)) < 0)
                return r;
        if (arr && json_array_size(arr) > 0) {
                res->routes = calloc(json_array_size(arr), sizeof *res->routes);
                if (!res->routes)
                        return -ENOMEM;
                for (size_t i = 0; i < json_array_size(arr); i++) {
                        snprintf(sub, sizeof sub, "%s.routes[%zu]", ctx, i);
                        if ((r = parse_route(json_array_get(arr, i), sub, v11, &res->routes[i], e)) < 0)
                                return r;
                        res->n_routes++;
                }
        }

        json_t *dns = NULL;
        if ((r = json_get_object(obj, ctx, "dns", false, &dns, e)) < 0)
                return r;
        if (dns) {
                snprintf(sub, sizeof sub, "%s.dns", ctx);
                if ((r = get_strv(dns, sub, "nameservers", &res->dns.nameservers, &res->dns.n_nameservers, e)) < 0)
                        return r;
                if ((r = get_strdup(dns, sub, "domain", false, &res->dns.domain, e)) < 0)
                        return r;
                if ((r = get_strv(dns, sub, "search", &res->dns.search, &res->dns.n_search, e)) < 0)
                        return r;
                if ((r = get_strv(dns, sub, "options", &res->dns.options, &res->dns.n_options, e)) < 0)
                        return r;
        }

        *ret = TAKE_PTR(res);
        return 0;
}

/* ---- emitting ---- */

static int set_str(json_t *o, const char *key, const char *val) {
        if (!val)
                return 0;
        return json_object_set_new(o, key, json_string(val)) < 0 ? -ENOMEM : 0;
}

static int set_strv(json_t *o, const char *key, char **v, size_t n) {
        if (!v)
                return 0;
        json_t *a = json_array();
        if (!a || json_object_set_new(o, key, a) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (json_array_append_new(a, json_string(v[i])) < 0)
                        return -ENOMEM;
        return 0;
}

static int set_int(json_t *o, const char *key, long long v) {
        return json_object_set_new(o, key, json_integer(v)) < 0 ? -ENOMEM : 0;
}

int cni_result_to_json(const CniResult *res, const char *version, json_t **ret) {
        if (cni_version_index(version) < 0)
                return -EINVAL;
        bool legacy = cni_version_cmp(version, "1.0.0") < 0;
        bool v11 = cni_version_cmp(version, "1.1.0") >= 0;
        char b[KV_ADDR_STRLEN];
        int r = 0;

        _cleanup_json_ json_t *o = json_object();
        if (!o || set_str(o, "cniVersion", version) < 0)
                return -ENOMEM;

        if (res->n_interfaces > 0) {
                json_t *arr = json_array();
                if (!arr || json_object_set_new(o, "interfaces", arr) < 0)
                        return -ENOMEM;
                for (size_t i = 0; i < res->n_interfaces; i++) {
                        const CniResultInterface *ifc = &res->interfaces[i];
                        json_t *x = json_object();
                        if (!x || json_array_append_new(arr, x) < 0)
                                return -ENOMEM;
                        r |= set_str(x, "name", ifc->name);
                        r |= set_str(x, "mac", ifc->mac);
                        if (v11 && ifc->mtu)
                                r |= set_int(x, "mtu", ifc->mtu);
                        r |= set_str(x, "sandbox", ifc->sandbox);
                        if (v11) {
                                r |= set_str(x, "socketPath", ifc->socket_path);
                                r |= set_str(x, "pciID", ifc->pci_id);
                        }
                }
        }

        if (res->n_ips > 0) {
                json_t *arr = json_array();
                if (!arr || json_object_set_new(o, "ips", arr) < 0)
                        return -ENOMEM;
                for (size_t i = 0; i < res->n_ips; i++) {
                        const CniResultIp *ip = &res->ips[i];
                        json_t *x = json_object();
                        if (!x || json_array_append_new(arr, x) < 0)
                                return -ENOMEM;
                        if (legacy)
                                r |= set_str(x, "version", ip->address.addr.family == AF_INET6 ? "6" : "4");
                        r |= set_str(x, "address", kv_prefix_fmt(&ip->address, b));
                        if (ip->gateway.family)
                                r |= set_str(x, "gateway", kv_addr_fmt(&ip->gateway, b));
                        if (ip->interface >= 0)
                                r |= set_int(x, "interface", ip->interface);
                }
        }

        if (res->n_routes > 0) {
                json_t *arr = json_array();
                if (!arr || json_object_set_new(o, "routes", arr) < 0)
                        return -ENOMEM;
                for (size_t i = 0; i < res->n_routes; i++) {
                        const CniResultRoute *rt = &res->routes[i];
                        json_t *x = json_object();
                        if (!x || json_array_append_new(arr, x) < 0)
                                return -ENOMEM;
                        r |= set_str(x, "dst", kv_prefix_fmt(&rt->dst, b));
                        if (rt->gw.family)
                                r |= set_str(x, "gw", kv_addr_fmt(&rt->gw, b));
                        if (v11) {
                                if (rt->has_mtu)
                                        r |= set_int(x, "mtu", rt->mtu);
                                if (rt->has_advmss)
                                        r |= set_int(x, "advmss", rt->advmss);
                                if (rt->has_priority)
                                        r |= set_int(x, "priority", rt->priority);
                                if (rt->has_table)
                                        r |= set_int(x, "table", rt->table);
                                if (rt->has_scope)
                                        r |= set_int(x, "scope", rt->scope);
                        }
                }
        }

        json_t *dns = json_object();
        if (!dns || json_object_set_new(o, "dns", dns) < 0)
                return -ENOMEM;
        r |= set_strv(dns, "nameservers", res->dns.nameservers, res->dns.n_nameservers);
        r |= set_str(dns, "domain", res->dns.domain);
        r |= set_strv(dns, "search", res->dns.search, res->dns.n_search);
        r |= set_strv(dns, "options", res->dns.options, res->dns.n_options);
        if (r < 0)
                return -ENOMEM;

        *ret = TAKE_PTR(o);
        return 0;
}
