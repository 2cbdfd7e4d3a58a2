/* SPDX-License-Identifier: Apache-2.0 */
/* k8s.v1.cni.cncf.io/network-status: entries made from a delegate's CNI result the way Multus makes them
 * (one per sandbox interface, IPs without prefix, the default routes' gateways, DNS, device-info), and the
 * annotation's text. */
#include "common/addr.h"
#include "common/json-util.h"
#include "multus-compat/mc-priv.h"

static void status_done(McStatus *s) {
        free(s->name);
        free(s->interface);
        mc_strv_free(s->ips, s->n_ips);
        free(s->mac);
        mc_strv_free(s->dns_nameservers, s->n_dns_nameservers);
        free(s->dns_domain);
        mc_strv_free(s->dns_search, s->n_dns_search);
        mc_strv_free(s->dns_options, s->n_dns_options);
        mc_strv_free(s->gateways, s->n_gateways);
        free(s->pci_address);
}

void mc_statuses_free(McStatus *v, size_t n) {
        for (size_t i = 0; i < n; i++)
                status_done(&v[i]);
        free(v);
}

/* The parts of a result a status needs, read once. */
typedef struct Parsed {
        json_t *ifaces, *ips, *routes, *dns;
} Parsed;

static int read_result(json_t *o, Parsed *p, KvErr *e) {
        p->ifaces = json_object_get(o, "interfaces");
        p->ips = json_object_get(o, "ips");
        p->routes = json_object_get(o, "routes");
        p->dns = json_object_get(o, "dns");
        if ((p->ifaces && !json_is_array(p->ifaces)) || (p->ips && !json_is_array(p->ips)) ||
            (p->routes && !json_is_array(p->routes)) || (p->dns && !json_is_object(p->dns)))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "result: 'interfaces', 'ips', 'routes' must be arrays and 'dns' an object");
        return 0;
}

static const char *jstr(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);
        return json_is_string(v) && *json_string_value(v) ? json_string_value(v) : NULL;
}

/* "10.1.2.3/24" → "10.1.2.3". */
static int push_addr(McStatus *s, const char *cidr) {
        _cleanup_free_ char *a = strdup(cidr);
        if (!a)
                return -ENOMEM;
        char *slash = strchr(a, '/');
        if (slash)
                *slash = '\0';
        return mc_strv_push(&s->ips, &s->n_ips, a);
}

static bool default_dst(const char *dst) {
        return dst && (streq(dst, "0.0.0.0/0") || streq(dst, "::/0"));
}

/* What every entry of one result shares: name, default routes' gateways, DNS, device-info. */
static int common_fields(const Parsed *p, const char *name, const char *pci, McStatus *s, KvErr *e) {
        json_t *rt;
        size_t i;
        int r;
        if (!(s->name = strdup(name)) || mc_strdup_opt(pci, &s->pci_address) < 0)
                return -ENOMEM;
        json_array_foreach(p->routes, i, rt)
                if (default_dst(jstr(rt, "dst")) && jstr(rt, "gw") && mc_strv_push(&s->gateways, &s->n_gateways, jstr(rt, "gw")) < 0)
                        return -ENOMEM;
        if (!p->dns)
                return 0;
        if ((r = mc_json_strv(p->dns, "result.dns", "nameservers", &s->dns_nameservers, &s->n_dns_nameservers, e)) < 0 ||
            (r = mc_json_strv(p->dns, "result.dns", "search", &s->dns_search, &s->n_dns_search, e)) < 0 ||
            (r = mc_json_strv(p->dns, "result.dns", "options", &s->dns_options, &s->n_dns_options, e)) < 0)
                return r;
        return mc_strdup_opt(jstr(p->dns, "domain"), &s->dns_domain);
}

static int iface_fields(json_t *ifc, McStatus *s) {
        json_t *mtu = json_object_get(ifc, "mtu");
        free(s->interface);
        free(s->mac);
        s->interface = s->mac = NULL;
        s->mtu = json_is_integer(mtu) ? json_integer_value(mtu) : 0;
        if (mc_strdup_opt(jstr(ifc, "name"), &s->interface) < 0 || mc_strdup_opt(jstr(ifc, "mac"), &s->mac) < 0)
                return -ENOMEM;
        /* CNI 1.1's interfaces[].pciID when no device ID was given */
        if (!s->pci_address && mc_strdup_opt(jstr(ifc, "pciID"), &s->pci_address) < 0)
                return -ENOMEM;
        return 0;
}

bool mc_pci_address_valid(const char *s) {
        return kv_pci_parse(s, NULL, NULL, NULL, NULL) == 0;
}

/* One interface in the result: one entry with every IP (CreateNetworkStatus). */
static int single(const Parsed *p, const char *name, bool is_default, const char *pci, McStatus **ret, size_t *ret_n,
                  KvErr *e) {
        McStatus *s = calloc(1, sizeof *s);
        json_t *x;
        size_t i;
        int r;
        if (!s)
                return -ENOMEM;
        s->default_ = is_default;
        if ((r = common_fields(p, name, pci, s, e)) < 0)
                goto fail;
        json_array_foreach(p->ifaces, i, x)
                if (jstr(x, "sandbox") && (r = iface_fields(x, s)) < 0)
                        goto fail;
        json_array_foreach(p->ips, i, x)
                if (jstr(x, "address") && (r = push_addr(s, jstr(x, "address"))) < 0)
                        goto fail;
        *ret = s;
        *ret_n = 1;
        return 0;
fail:
        mc_statuses_free(s, 1);
        return r;
}

static long long ip_iface(json_t *ip) {
        json_t *i = json_object_get(ip, "interface");
        return json_is_integer(i) ? json_integer_value(i) : -1;
}

/* The interface index the default flag goes to: the first IP with a gateway and an interface. */
static long long gateway_iface(const Parsed *p) {
        json_t *x;
        size_t i;
        json_array_foreach(p->ips, i, x)
                if (jstr(x, "gateway") && ip_iface(x) >= 0)
                        return ip_iface(x);
        return -1;
}

/* Several interfaces: one entry per sandbox interface (CreateNetworkStatuses). */
static int several(const Parsed *p, const char *name, bool is_default, const char *pci, McStatus **ret, size_t *ret_n,
                   KvErr *e) {
        size_t n_if = json_array_size(p->ifaces), n = 0, i;
        McStatus *v = calloc(n_if ? n_if : 1, sizeof *v);
        _cleanup_free_ long long *map = calloc(n_if ? n_if : 1, sizeof *map);
        long long gw_if = is_default ? gateway_iface(p) : -1;
        bool did_default = false;
        json_t *x;
        int r;
        if (!v || !map) {
                free(v);
                return -ENOMEM;
        }
        json_array_foreach(p->ifaces, i, x) {
                map[i] = -1;
                if (!jstr(x, "sandbox"))
                        continue;
                McStatus *s = &v[n];
                map[i] = (long long) n++;
                if ((r = common_fields(p, name, pci, s, e)) < 0 || (r = iface_fields(x, s)) < 0)
                        goto fail;
                if (is_default && !did_default && (gw_if < 0 || (long long) i == gw_if))
                        s->default_ = did_default = true;
        }
        json_array_foreach(p->ips, i, x) {
                long long k = ip_iface(x);
                McStatus *s = k >= 0 && (size_t) k < n_if && map[k] >= 0 ? &v[map[k]] : k < 0 && n > 0 ? &v[n - 1] : NULL;
                if (s && jstr(x, "address") && (r = push_addr(s, jstr(x, "address"))) < 0)
                        goto fail;
        }
        *ret = v;
        *ret_n = n;
        return 0;
fail:
        mc_statuses_free(v, n_if);
        return r;
}

int mc_status_from_result(const char *result, size_t len, const char *name, bool is_default, const char *pci_address,
                          McStatus **ret, size_t *ret_n, KvErr *e) {
        _cleanup_json_ json_t *o = NULL;
        Parsed p = {};
        int r;
        if ((r = mc_json_load(result, len, "result", &o, e)) < 0)
                return r;
        if (!json_is_object(o))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "result: must be an object, got %s", json_type_name(o));
        if ((r = read_result(o, &p, e)) < 0)
                return r;
        if (json_array_size(p.ifaces) == 1)
                return single(&p, name, is_default, pci_address, ret, ret_n, e);
        return several(&p, name, is_default, pci_address, ret, ret_n, e);
}

/* ---------------------------------------------------------------- the annotation's text */

static int set_strv(json_t *o, const char *key, char *const *v, size_t n) {
        if (n == 0)
                return 0;
        json_t *a = json_array();
        for (size_t i = 0; a && i < n; i++)
                if (json_array_append_new(a, json_string(v[i])) < 0)
                        return json_decref(a), -ENOMEM;
        return a && json_object_set_new(o, key, a) == 0 ? 0 : -ENOMEM;
}

static json_t *dns_json(const McStatus *s) {
        json_t *d = json_object();
        if (d && (set_strv(d, "nameservers", s->dns_nameservers, s->n_dns_nameservers) < 0 ||
                  (s->dns_domain && json_object_set_new(d, "domain", json_string(s->dns_domain)) < 0) ||
                  set_strv(d, "search", s->dns_search, s->n_dns_search) < 0 ||
                  set_strv(d, "options", s->dns_options, s->n_dns_options) < 0))
                return json_decref(d), NULL;
        return d;
}

/* Multus's NetworkStatus, its keys in its order, empty ones left out (dns always there). */
static json_t *status_json(const McStatus *s) {
        json_t *o = json_pack("{s:s}", "name", s->name);
        if (!o)
                return NULL;
        bool ok = (!s->interface || json_object_set_new(o, "interface", json_string(s->interface)) == 0) &&
                  set_strv(o, "ips", s->ips, s->n_ips) == 0 &&
                  (!s->mac || json_object_set_new(o, "mac", json_string(s->mac)) == 0) &&
                  (!s->mtu || json_object_set_new(o, "mtu", json_integer(s->mtu)) == 0) &&
                  (!s->default_ || json_object_set_new(o, "default", json_true()) == 0) &&
                  json_object_set_new(o, "dns", dns_json(s)) == 0 &&
                  (!s->pci_address ||
                   json_object_set_new(o, "device-info", json_pack("{s:s,s:s,s:{s:s}}", "type", "pci", "version", "1.1.0",
                                                                   "pci", "pci-address", s->pci_address)) == 0) &&
                  set_strv(o, "gateway", s->gateways, s->n_gateways) == 0;
        if (!ok)
                return json_decref(o), NULL;
        return o;
}

/* "[" entries "]", each indented as Multus writes it, joined by ','. */
static int format_entries(json_t *a, char **ret) {
        size_t cap = 3, len = 1;
        _cleanup_free_ char *out = malloc(cap);
        json_t *o;
        size_t i;
        if (!out)
                return -ENOMEM;
        out[0] = '[';
        json_array_foreach(a, i, o) {
                _cleanup_free_ char *s = json_dumps(o, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
                if (!s)
                        return -ENOMEM;
                size_t sl = strlen(s);
                char *nb = realloc(out, cap + sl + 1);
                if (!nb)
                        return -ENOMEM;
                out = nb;
                cap += sl + 1;
                if (i > 0)
                        out[len++] = ',';
                memcpy(out + len, s, sl);
                len += sl;
        }
        out[len++] = ']';
        out[len] = '\0';
        *ret = TAKE_PTR(out);
        return 0;
}

static int append_statuses(json_t *a, const McStatus *v, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (json_array_append_new(a, status_json(&v[i])) < 0)
                        return -ENOMEM;
        return 0;
}

int mc_status_format(const McStatus *v, size_t n, char **ret) {
        _cleanup_json_ json_t *a = json_array();
        if (!a || append_statuses(a, v, n) < 0)
                return -ENOMEM;
        return format_entries(a, ret);
}

/* The annotation as it stands: a JSON list of objects (NULL or empty: no entry). */
static int parse_current(const char *current, json_t **ret, KvErr *e) {
        json_t *x;
        size_t i;
        int r;
        if (!current || !*current) {
                *ret = json_array();
                return *ret ? 0 : -ENOMEM;
        }
        _cleanup_json_ json_t *a = NULL;
        if ((r = mc_json_load(current, strlen(current), MC_NETWORK_STATUS_ANNOT, &a, e)) < 0)
                return r;
        if (!json_is_array(a))
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "%s: must be a list, got %s", MC_NETWORK_STATUS_ANNOT,
                                 json_type_name(a));
        json_array_foreach(a, i, x)
                if (!json_is_object(x))
                        return kverr_set(e, KV_ERR_DECODE, -EINVAL, "%s[%zu]: must be an object, got %s",
                                         MC_NETWORK_STATUS_ANNOT, i, json_type_name(x));
        *ret = TAKE_PTR(a);
        return 0;
}

int mc_status_append(const char *current, const McStatus *v, size_t n, char **ret, KvErr *e) {
        _cleanup_json_ json_t *a = NULL;
        int r = parse_current(current, &a, e);
        if (r < 0)
                return r;
        if (append_statuses(a, v, n) < 0)
                return -ENOMEM;
        return format_entries(a, ret);
}

int mc_status_remove(const char *current, const char *name, const char *ifname, bool every_of_name, char **ret,
                     size_t *ret_removed, KvErr *e) {
        _cleanup_json_ json_t *a = NULL;
        size_t removed = 0;
        int r = parse_current(current, &a, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < json_array_size(a);) {
                json_t *o = json_array_get(a, i);
                const char *n = json_string_value(json_object_get(o, "name"));
                const char *ifc = json_string_value(json_object_get(o, "interface"));
                if (n && streq(n, name) && (every_of_name || (ifc && streq(ifc, ifname)))) {
                        if (json_array_remove(a, i) < 0)
                                return -ENOMEM;
                        removed++;
                } else
                        i++;
        }
        if ((r = format_entries(a, ret)) < 0)
                return r;
        if (ret_removed)
                *ret_removed = removed;
        return 0;
}
