/* SPDX-License-Identifier: Apache-2.0 */
#include "controller/vmispec.h"

#include <errno.h>
#include <stdio.h>

#include "common/json-util.h"
#include "controller/quantity.h"

/* A quantity at obj.key: a string ("128Mi") or, as YAML gives "cpu: 2", a number. 0 when absent, 1 when
 * parsed into *ret. */
static int get_quantity(json_t *obj, const char *ctx, const char *key, bool milli, uint64_t *ret, KvErr *e) {
        json_t *v = json_object_get(obj, key);
        char field[256], num[64];
        snprintf(field, sizeof field, "%s.%s", ctx, key);
        if (!v)
                return 0;
        const char *text = json_string_value(v);
        if (json_is_integer(v))
                snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        else if (json_is_real(v))
                snprintf(num, sizeof num, "%.17g", json_real_value(v));
        else if (!text)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "'%s' must be a quantity (a string such as 128Mi), got %s",
                                 field, json_type_name(v));
        int r = ctl_quantity_parse(field, text ? text : num, milli, ret, e);
        return r < 0 ? r : 1;
}

static int parse_resources(json_t *spec, const char *field, CtlVmiSpec *ret, KvErr *e) {
        char ctx[192];
        json_t *domain = NULL, *res = NULL, *req = NULL, *mem = NULL, *cpu = NULL;
        snprintf(ctx, sizeof ctx, "%s", field);
        int r = json_get_object(spec, ctx, "domain", false, &domain, e);
        snprintf(ctx, sizeof ctx, "%s.domain", field);
        if (r >= 0 && domain)
                r = json_get_object(domain, ctx, "resources", false, &res, e);
        if (r >= 0 && domain)
                r = json_get_object(domain, ctx, "memory", false, &mem, e);
        if (r >= 0 && domain)
                r = json_get_object(domain, ctx, "cpu", false, &cpu, e);
        snprintf(ctx, sizeof ctx, "%s.domain.resources", field);
        if (r >= 0 && res)
                r = json_get_object(res, ctx, "requests", false, &req, e);
        if (r < 0)
                return r;

        snprintf(ctx, sizeof ctx, "%s.domain.resources.requests", field);
        r = get_quantity(req, ctx, "memory", false, &ret->memory, e);
        if (r == 0) {
                snprintf(ctx, sizeof ctx, "%s.domain.memory", field);
                r = get_quantity(mem, ctx, "guest", false, &ret->memory, e);
        }
        if (r < 0)
                return r;

        snprintf(ctx, sizeof ctx, "%s.domain.resources.requests", field);
        r = get_quantity(req, ctx, "cpu", true, &ret->cpu_milli, e);
        if (r < 0)
                return r;
        if (r == 0) {
                long long n[3] = { 1, 1, 1 };
                const char *keys[3] = { "cores", "sockets", "threads" };
                snprintf(ctx, sizeof ctx, "%s.domain.cpu", field);
                for (size_t i = 0; i < 3; i++)
                        if ((r = json_get_int(cpu, ctx, keys[i], false, 1, 1024, &n[i], e)) < 0)
                                return r;
                ret->cpu_milli = (uint64_t) (n[0] * n[1] * n[2]) * 1000;
        }
        return 0;
}

static int parse_node_selector(json_t *spec, const char *field, CtlVmiSpec *ret, KvErr *e) {
        json_t *sel = NULL;
        int r = json_get_object(spec, field, "nodeSelector", false, &sel, e);
        if (r <= 0)
                return r;
        const char *k;
        json_t *v;
        json_object_foreach(sel, k, v) {
                if (!json_is_string(v))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "'%s.nodeSelector.%.64s' must be a string, got %s",
                                         field, k, json_type_name(v));
                if (ret->n_node_selector == CTL_SELECTOR_MAX)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -E2BIG, "'%s.nodeSelector' has more than %d labels",
                                         field, CTL_SELECTOR_MAX);
                ret->node_selector[ret->n_node_selector++] = (CtlLabel){ k, json_string_value(v) };
        }
        return 0;
}

/* The interface named name (spec.domain.devices.interfaces[]), NULL when there is none. */
static json_t *interface_named(json_t *spec, const char *name) {
        size_t i;
        json_t *ifc;
        if (!name)
                return NULL;
        json_array_foreach(json_object_get(json_object_get(json_object_get(spec, "domain"), "devices"), "interfaces"), i, ifc)
                if (json_is_string(json_object_get(ifc, "name")) &&
                    strcmp(json_string_value(json_object_get(ifc, "name")), name) == 0)
                        return ifc;
        return NULL;
}

static int parse_networks(json_t *spec, const char *field, CtlVmiSpec *ret, KvErr *e) {
        json_t *nets = NULL, *n;
        int r = json_get_array(spec, field, "networks", false, &nets, e);
        if (r <= 0)
                return r;
        size_t i;
        json_array_foreach(nets, i, n) {
                char ctx[192];
                json_t *multus = NULL;
                const char *name = NULL;
                bool is_default = false;
                snprintf(ctx, sizeof ctx, "%s.networks[%zu]", field, i);
                if (!json_is_object(n))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "'%s' must be an object, got %s", ctx,
                                         json_type_name(n));
                if ((r = json_get_object(n, ctx, "multus", false, &multus, e)) <= 0) {
                        if (r < 0)
                                return r;
                        continue;
                }
                const char *net_name = json_string_value(json_object_get(n, "name"));
                snprintf(ctx, sizeof ctx, "%s.networks[%zu].multus", field, i);
                if ((r = json_get_string(multus, ctx, "networkName", true, &name, e)) < 0 ||
                    (r = json_get_bool(multus, ctx, "default", false, &is_default, e)) < 0)
                        return r;
                if (ret->n_multus == CTL_NETWORKS_MAX)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -E2BIG, "'%s.networks' has more than %d Multus networks",
                                         field, CTL_NETWORKS_MAX);
                ret->multus[ret->n_multus].network_name = name;
                ret->multus[ret->n_multus].name = net_name;
                json_t *ifc = interface_named(spec, net_name);
                ret->multus[ret->n_multus].bridge = json_object_get(ifc, "bridge") != NULL;
                ret->multus[ret->n_multus].sriov = json_object_get(ifc, "sriov") != NULL;
                ret->multus[ret->n_multus].mac = json_string_value(json_object_get(ifc, "macAddress"));
                ret->multus[ret->n_multus].absent = streq_ptr(json_string_value(json_object_get(ifc, "state")), "absent");
                ret->multus[ret->n_multus++].is_default = is_default;
        }
        return 0;
}

int ctl_vmi_spec_parse(json_t *spec, const char *field, CtlVmiSpec *ret, KvErr *e) {
        CtlVmiSpec s = { .cpu_milli = 1000 };
        int r = parse_resources(spec, field, &s, e);
        if (r >= 0)
                r = parse_node_selector(spec, field, &s, e);
        if (r >= 0)
                r = parse_networks(spec, field, &s, e);
        if (r < 0)
                return r;
        *ret = s;
        return 0;
}
