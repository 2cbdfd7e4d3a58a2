/* SPDX-License-Identifier: Apache-2.0 */
/* A plugin's result, parsed once into NodeCniResult; the raw JSON is kept only to pass it on. */
#include <jansson.h>

#include "common/addr.h"
#include "common/json-util.h"
#include "node/node-priv.h"

#define RESULT_LIST_MAX 256

NodeCniResult *node_cni_result_free(NodeCniResult *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_interfaces; i++) {
                free(r->interfaces[i].name);
                free(r->interfaces[i].mac);
                free(r->interfaces[i].sandbox);
        }
        free(r->interfaces);
        for (size_t i = 0; i < r->n_ips; i++) {
                free(r->ips[i].address);
                free(r->ips[i].gateway);
        }
        free(r->ips);
        for (size_t i = 0; i < r->n_routes; i++) {
                free(r->routes[i].dst);
                free(r->routes[i].gw);
        }
        free(r->routes);
        node_strs_free(r->dns_nameservers, r->n_dns_nameservers);
        node_strs_free(r->dns_search, r->n_dns_search);
        free(r->dns_domain);
        free(r->cni_version);
        free(r->raw);
        free(r);
        return NULL;
}

static int res_err(NodeErr *e, const char *fmt, const char *field, const char *got) {
        return node_err_set(e, NODE_ERR_RESULT, NULL, NULL, -EBADMSG, fmt, field, got);
}

/* An optional string field: a copy, or "" when absent. check: "cidr", "addr", "mac" or NULL. */
static int get_str(json_t *obj, const char *ctx, const char *key, bool required, const char *check, char **ret,
                   NodeErr *e) {
        char field[96];
        snprintf(field, sizeof field, "%s.%s", ctx, key);
        json_t *v = json_object_get(obj, key);
        if (!v && !required) {
                *ret = strdup("");
                return *ret ? 0 : -ENOMEM;
        }
        if (!json_is_string(v))
                return res_err(e, "result: '%s' must be a string, got %s", field, json_type_name(v));
        const char *s = json_string_value(v);
        KvPrefix p;
        KvAddr a;
        uint8_t mac[6];
        if (check && streq(check, "cidr") && kv_prefix_parse(s, &p) < 0)
                return res_err(e, "result: '%s' must be an address/prefix, got '%.64s'", field, s);
        if (check && streq(check, "addr") && kv_addr_parse(s, &a) < 0)
                return res_err(e, "result: '%s' must be an IP address, got '%.64s'", field, s);
        if (check && streq(check, "mac") && *s && kv_mac_parse(s, mac) < 0)
                return res_err(e, "result: '%s' must be a MAC address, got '%.64s'", field, s);
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

/* An optional array of objects (or strings); *ret_n elements allocated with elem size. */
static int get_list(json_t *obj, const char *key, bool strings, size_t elem, void **ret, size_t *ret_n, NodeErr *e) {
        json_t *arr = json_object_get(obj, key);
        if (!arr)
                return 0;
        if (!json_is_array(arr) || json_array_size(arr) > RESULT_LIST_MAX)
                return res_err(e, "result: '%s' must be an array of at most 256, got %s", key, json_type_name(arr));
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v)
                if (strings ? !json_is_string(v) : !json_is_object(v))
                        return res_err(e, "result: '%s' elements must be %s", key, strings ? "strings" : "objects");
        if (json_array_size(arr) == 0)
                return 0;
        *ret = calloc(json_array_size(arr), elem);
        if (!*ret)
                return -ENOMEM;
        *ret_n = json_array_size(arr);
        return 1;
}

static int parse_strings(json_t *arr, char **v) {
        for (size_t i = 0; i < json_array_size(arr); i++)
                if (!(v[i] = strdup(json_string_value(json_array_get(arr, i)))))
                        return -ENOMEM;
        return 0;
}

int node_cni_result_parse(const char *text, size_t len, NodeCniResult **ret, NodeErr *e) {
        _cleanup_json_ json_t *root = NULL;
        int k = node_json_object(text, len, NODE_ERR_RESULT, "result", &root, e);
        if (k < 0)
                return k;
        _cleanup_(node_cni_result_freep) NodeCniResult *r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        k = get_str(root, "result", "cniVersion", false, NULL, &r->cni_version, e);
        if (k < 0)
                return k;

        char ctx[64];
        k = get_list(root, "interfaces", false, sizeof *r->interfaces, (void **) &r->interfaces, &r->n_interfaces, e);
        if (k < 0)
                return k;
        for (size_t i = 0; i < r->n_interfaces; i++) {
                json_t *o = json_array_get(json_object_get(root, "interfaces"), i);
                NodeCniInterface *f = &r->interfaces[i];
                snprintf(ctx, sizeof ctx, "interfaces[%zu]", i);
                if ((k = get_str(o, ctx, "name", true, NULL, &f->name, e)) < 0 ||
                    (k = get_str(o, ctx, "mac", false, "mac", &f->mac, e)) < 0 ||
                    (k = get_str(o, ctx, "sandbox", false, NULL, &f->sandbox, e)) < 0)
                        return k;
        }

        k = get_list(root, "ips", false, sizeof *r->ips, (void **) &r->ips, &r->n_ips, e);
        if (k < 0)
                return k;
        for (size_t i = 0; i < r->n_ips; i++) {
                json_t *o = json_array_get(json_object_get(root, "ips"), i);
                NodeCniIp *f = &r->ips[i];
                f->interface = -1;
                snprintf(ctx, sizeof ctx, "ips[%zu]", i);
                if ((k = get_str(o, ctx, "address", true, "cidr", &f->address, e)) < 0)
                        return k;
                json_t *g = json_object_get(o, "gateway");
                if ((k = get_str(o, ctx, "gateway", false, g ? "addr" : NULL, &f->gateway, e)) < 0)
                        return k;
                json_t *idx = json_object_get(o, "interface");
                if (idx) {
                        if (!json_is_integer(idx) || json_integer_value(idx) < 0 ||
                            (size_t) json_integer_value(idx) >= r->n_interfaces) {
                                char got[32];
                                snprintf(got, sizeof got, "%lld", json_is_integer(idx) ? json_integer_value(idx) : -1LL);
                                snprintf(ctx, sizeof ctx, "ips[%zu].interface", i);
                                return res_err(e, "result: '%s' must index 'interfaces', got %s", ctx, got);
                        }
                        f->interface = (int) json_integer_value(idx);
                }
        }

        k = get_list(root, "routes", false, sizeof *r->routes, (void **) &r->routes, &r->n_routes, e);
        if (k < 0)
                return k;
        for (size_t i = 0; i < r->n_routes; i++) {
                json_t *o = json_array_get(json_object_get(root, "routes"), i);
                snprintf(ctx, sizeof ctx, "routes[%zu]", i);
                if ((k = get_str(o, ctx, "dst", true, "cidr", &r->routes[i].dst, e)) < 0 ||
                    (k = get_str(o, ctx, "gw", false, json_object_get(o, "gw") ? "addr" : NULL, &r->routes[i].gw, e)) < 0)
                        return k;
        }

        json_t *dns = json_object_get(root, "dns");
        if (dns && !json_is_object(dns))
                return res_err(e, "result: '%s' must be an object, got %s", "dns", json_type_name(dns));
        if (!dns && !(r->dns_domain = strdup("")))
                return -ENOMEM;
        if (dns && (k = get_str(dns, "dns", "domain", false, NULL, &r->dns_domain, e)) < 0)
                return k;
        if (dns) {
                k = get_list(dns, "nameservers", true, sizeof(char *), (void **) &r->dns_nameservers,
                             &r->n_dns_nameservers, e);
                if (k < 0 || (k > 0 && (k = parse_strings(json_object_get(dns, "nameservers"), r->dns_nameservers)) < 0))
                        return k;
                k = get_list(dns, "search", true, sizeof(char *), (void **) &r->dns_search, &r->n_dns_search, e);
                if (k < 0 || (k > 0 && (k = parse_strings(json_object_get(dns, "search"), r->dns_search)) < 0))
                        return k;
        }
        if (!(r->raw = strndup(text, len)))
                return -ENOMEM;
        *ret = TAKE_PTR(r);
        return 0;
}
