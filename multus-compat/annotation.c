/* SPDX-License-Identifier: Apache-2.0 */
/* The networks annotation (k8s.v1.cni.cncf.io/networks) and the default-network override, in every form
 * Multus accepts: "a, ns/b, c@net5, ns/d@if1" or a JSON list of selection objects. */
#include <ctype.h>
#include <limits.h>
#include <strings.h>

#include "common/json-util.h"
#include "multus-compat/mc-priv.h"

#define CTX_MAX 160

bool mc_dns1123_label(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 63)
                return false;
        for (size_t i = 0; i < n; i++) {
                bool alnum = islower((unsigned char) s[i]) || isdigit((unsigned char) s[i]);
                if (!alnum && (s[i] != '-' || i == 0 || i == n - 1))
                        return false;
        }
        return true;
}

bool mc_dns1123_subdomain(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 253)
                return false;
        char buf[254];
        memcpy(buf, s, n + 1);
        for (char *save = NULL, *l = strtok_r(buf, ".", &save); l; l = strtok_r(NULL, ".", &save))
                if (!mc_dns1123_label(l))
                        return false;
        return s[0] != '.' && s[n - 1] != '.' && !strstr(s, "..");
}

bool mc_ifname_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > MC_IFNAME_MAX || streq(s, ".") || streq(s, ".."))
                return false;
        for (size_t i = 0; i < n; i++)
                if (s[i] == '/' || s[i] == ':' || isspace((unsigned char) s[i]))
                        return false;
        return true;
}

void mc_selection_done(McSelection *s) {
        free(s->name);
        free(s->namespace_);
        free(s->interface);
        mc_strv_free(s->ips, s->n_ips);
        free(s->mac);
        free(s->infiniband_guid);
        free(s->device_id);
        free(s->ipam_claim_reference);
        mc_strv_free(s->gateways, s->n_gateways);
        for (size_t i = 0; i < s->n_port_mappings; i++) {
                free(s->port_mappings[i].protocol);
                free(s->port_mappings[i].host_ip);
        }
        free(s->port_mappings);
        free(s->cni_args);
        *s = (McSelection) {};
}

void mc_selections_free(McSelection *v, size_t n) {
        for (size_t i = 0; i < n; i++)
                mc_selection_done(&v[i]);
        free(v);
}

static char *trim(char *s) {
        while (isspace((unsigned char) *s))
                s++;
        char *end = s + strlen(s);
        while (end > s && isspace((unsigned char) end[-1]))
                *--end = '\0';
        return s;
}

/* ---------------------------------------------------------------- "ns/name@ifname" */

static int parse_item(char *item, const char *ctx, McSelection *s, KvErr *e) {
        char *ns = NULL, *name = item, *ifname = NULL;
        char *slash = strchr(item, '/');
        if (slash) {
                if (strchr(slash + 1, '/'))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: '%s' has more than one '/'", ctx, item);
                *slash = '\0';
                ns = trim(item);
                name = slash + 1;
        }
        char *at = strchr(name, '@');
        if (at) {
                if (strchr(at + 1, '@'))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: '%s' has more than one '@'", ctx, name);
                *at = '\0';
                ifname = trim(at + 1);
                if (!*ifname) /* "name@": no interface requested, as Multus reads it */
                        ifname = NULL;
        }
        name = trim(name);
        if (!mc_dns1123_label(name))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "%s: network name '%s' is not a DNS-1123 label (lower case alphanumerics and '-')", ctx,
                                 name);
        if (ns && *ns && !mc_dns1123_label(ns))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: namespace '%s' is not a DNS-1123 label", ctx, ns);
        if (ifname && !mc_ifname_valid(ifname))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "%s: interface '%s' must be 1..15 characters without '/', ':' or whitespace", ctx,
                                 ifname);
        if (!(s->name = strdup(name)) || mc_strdup_opt(ns && *ns ? ns : NULL, &s->namespace_) < 0 ||
            mc_strdup_opt(ifname, &s->interface) < 0)
                return -ENOMEM;
        return 0;
}

static int parse_text(const char *text, McSelection **ret, size_t *ret_n, KvErr *e) {
        _cleanup_free_ char *buf = strdup(text);
        if (!buf)
                return -ENOMEM;
        size_t n = 1;
        for (const char *c = text; *c; c++)
                n += *c == ',';
        if (n > MC_NETWORKS_MAX)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -E2BIG, "%s: %zu networks requested, at most %d",
                                 MC_NETWORKS_ANNOT, n, MC_NETWORKS_MAX);
        McSelection *v = calloc(n, sizeof *v);
        if (!v)
                return -ENOMEM;
        size_t i = 0;
        char *p = buf;
        for (char *item; (item = strsep(&p, ",")); i++) {
                char ctx[CTX_MAX];
                snprintf(ctx, sizeof ctx, "%s[%zu]", MC_NETWORKS_ANNOT, i);
                int r = parse_item(trim(item), ctx, &v[i], e);
                if (r < 0) {
                        mc_selections_free(v, n);
                        return r;
                }
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* ---------------------------------------------------------------- the JSON form */

static int get_opt_string(json_t *o, const char *ctx, const char *key, char **ret, KvErr *e) {
        const char *s = NULL;
        int r = json_get_string(o, ctx, key, false, &s, e);
        if (r <= 0 || !*s)
                return r;
        return mc_strdup_opt(s, ret);
}

static int parse_ips(json_t *o, const char *ctx, McSelection *s, KvErr *e) {
        int r = mc_json_strv(o, ctx, "ips", &s->ips, &s->n_ips, e);
        for (size_t i = 0; r >= 0 && i < s->n_ips; i++)
                if (!mc_ip_valid(s->ips[i], true))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'ips[%zu]' is not an IP address or CIDR: '%s'",
                                         ctx, i, s->ips[i]);
        return r;
}

static int parse_gateways(json_t *o, const char *ctx, McSelection *s, KvErr *e) {
        int r = mc_json_strv(o, ctx, "default-route", &s->gateways, &s->n_gateways, e);
        if (r < 0)
                return r;
        s->has_default_route = r > 0;
        for (size_t i = 0; i < s->n_gateways; i++)
                if (!mc_ip_valid(s->gateways[i], false))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "%s: 'default-route[%zu]' is not an IP address: '%s'", ctx, i, s->gateways[i]);
        return 0;
}

static int parse_port_mapping(json_t *pm, const char *ctx, McPortMapping *m, KvErr *e) {
        const char *proto = NULL, *hip = NULL;
        int r;
        if (!json_is_object(pm))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s must be an object, got %s", ctx, json_type_name(pm));
        if ((r = json_get_int(pm, ctx, "hostPort", true, 0, 65535, &m->host_port, e)) < 0 ||
            (r = json_get_int(pm, ctx, "containerPort", true, 1, 65535, &m->container_port, e)) < 0 ||
            (r = json_get_string(pm, ctx, "protocol", false, &proto, e)) < 0 ||
            (r = json_get_string(pm, ctx, "hostIP", false, &hip, e)) < 0)
                return r;
        if (proto && *proto && strcasecmp(proto, "tcp") && strcasecmp(proto, "udp") && strcasecmp(proto, "sctp"))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'protocol' must be tcp, udp or sctp, got '%s'",
                                 ctx, proto);
        if (hip && *hip && !mc_ip_valid(hip, false))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'hostIP' is not an IP address: '%s'", ctx, hip);
        if (mc_strdup_opt(proto && *proto ? proto : NULL, &m->protocol) < 0 ||
            mc_strdup_opt(hip && *hip ? hip : NULL, &m->host_ip) < 0)
                return -ENOMEM;
        return 0;
}

static int parse_port_mappings(json_t *o, const char *ctx, McSelection *s, KvErr *e) {
        json_t *a = NULL, *pm;
        size_t i;
        int r = json_get_array(o, ctx, "portMappings", false, &a, e);
        if (r <= 0)
                return r;
        if (json_array_size(a) > 0 && !(s->port_mappings = calloc(json_array_size(a), sizeof *s->port_mappings)))
                return -ENOMEM;
        json_array_foreach(a, i, pm) {
                char c[CTX_MAX + 64];
                snprintf(c, sizeof c, "%s.portMappings[%zu]", ctx, i);
                s->n_port_mappings = i + 1;
                if ((r = parse_port_mapping(pm, c, &s->port_mappings[i], e)) < 0)
                        return r;
        }
        return 0;
}

static int parse_bandwidth(json_t *o, const char *ctx, McSelection *s, KvErr *e) {
        json_t *b = NULL;
        char c[CTX_MAX + 16];
        int r = json_get_object(o, ctx, "bandwidth", false, &b, e);
        if (r <= 0)
                return r;
        snprintf(c, sizeof c, "%s.bandwidth", ctx);
        McBandwidth *bw = &s->bandwidth;
        if ((r = json_get_int(b, c, "ingressRate", false, 0, LLONG_MAX, &bw->ingress_rate, e)) < 0 ||
            (r = json_get_int(b, c, "ingressBurst", false, 0, LLONG_MAX, &bw->ingress_burst, e)) < 0 ||
            (r = json_get_int(b, c, "egressRate", false, 0, LLONG_MAX, &bw->egress_rate, e)) < 0 ||
            (r = json_get_int(b, c, "egressBurst", false, 0, LLONG_MAX, &bw->egress_burst, e)) < 0)
                return r;
        s->has_bandwidth = true;
        return 0;
}

static int parse_names(json_t *o, const char *ctx, McSelection *s, KvErr *e) {
        int r;
        if ((r = get_opt_string(o, ctx, "name", &s->name, e)) < 0 ||
            (r = get_opt_string(o, ctx, "namespace", &s->namespace_, e)) < 0 ||
            (r = get_opt_string(o, ctx, "interface", &s->interface, e)) < 0)
                return r;
        if (!s->interface && (r = get_opt_string(o, ctx, "interfaceRequest", &s->interface, e)) < 0)
                return r;
        if (!s->name)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'name' is required", ctx);
        if (!mc_dns1123_subdomain(s->name))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'name' is not a DNS-1123 name: '%s'", ctx,
                                 s->name);
        if (s->namespace_ && !mc_dns1123_label(s->namespace_))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'namespace' is not a DNS-1123 label: '%s'", ctx,
                                 s->namespace_);
        if (s->interface && !mc_ifname_valid(s->interface))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "%s: 'interface' must be 1..15 characters without '/', ':' or whitespace, got '%s'", ctx,
                                 s->interface);
        return 0;
}

static int parse_hw(json_t *o, const char *ctx, McSelection *s, KvErr *e) {
        static const unsigned mac_ok[] = { 6 }, guid_ok[] = { 8, 20 };
        int r;
        if ((r = get_opt_string(o, ctx, "mac", &s->mac, e)) < 0 ||
            (r = get_opt_string(o, ctx, "infiniband-guid", &s->infiniband_guid, e)) < 0 ||
            (r = get_opt_string(o, ctx, "deviceID", &s->device_id, e)) < 0 ||
            (r = get_opt_string(o, ctx, "ipam-claim-reference", &s->ipam_claim_reference, e)) < 0)
                return r;
        if (s->mac && !mc_hwaddr_valid(s->mac, mac_ok, ELEMENTSOF(mac_ok)))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'mac' is not a MAC address: '%s'", ctx, s->mac);
        if (s->infiniband_guid && !mc_hwaddr_valid(s->infiniband_guid, guid_ok, ELEMENTSOF(guid_ok)))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'infiniband-guid' is not a GUID: '%s'", ctx,
                                 s->infiniband_guid);
        if (s->ipam_claim_reference && !mc_dns1123_subdomain(s->ipam_claim_reference))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "%s: 'ipam-claim-reference' is not a DNS-1123 name: '%s'", ctx, s->ipam_claim_reference);
        return 0;
}

static int parse_cni_args(json_t *o, const char *ctx, McSelection *s, KvErr *e) {
        json_t *a = NULL;
        int r = json_get_object(o, ctx, "cni-args", false, &a, e);
        if (r <= 0)
                return r;
        s->cni_args = json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER);
        return s->cni_args ? 0 : -ENOMEM;
}

static int parse_element(json_t *o, const char *ctx, McSelection *s, KvErr *e) {
        int r;
        if (!json_is_object(o))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s must be an object, got %s", ctx, json_type_name(o));
        if ((r = parse_names(o, ctx, s, e)) < 0 || (r = parse_ips(o, ctx, s, e)) < 0 ||
            (r = parse_hw(o, ctx, s, e)) < 0 || (r = parse_gateways(o, ctx, s, e)) < 0 ||
            (r = parse_port_mappings(o, ctx, s, e)) < 0 || (r = parse_bandwidth(o, ctx, s, e)) < 0 ||
            (r = parse_cni_args(o, ctx, s, e)) < 0)
                return r;
        return 0;
}

static int parse_json(const char *text, McSelection **ret, size_t *ret_n, KvErr *e) {
        _cleanup_json_ json_t *a = NULL;
        json_t *o;
        size_t i;
        int r = mc_json_load(text, strlen(text), MC_NETWORKS_ANNOT, &a, e);
        if (r < 0)
                return r;
        if (!json_is_array(a))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: must be a JSON list of networks, got %s",
                                 MC_NETWORKS_ANNOT, json_type_name(a));
        size_t n = json_array_size(a);
        if (n > MC_NETWORKS_MAX)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -E2BIG, "%s: %zu networks requested, at most %d",
                                 MC_NETWORKS_ANNOT, n, MC_NETWORKS_MAX);
        McSelection *v = calloc(n ? n : 1, sizeof *v);
        if (!v)
                return -ENOMEM;
        json_array_foreach(a, i, o) {
                char ctx[CTX_MAX];
                snprintf(ctx, sizeof ctx, "%s[%zu]", MC_NETWORKS_ANNOT, i);
                if ((r = parse_element(o, ctx, &v[i], e)) < 0) {
                        mc_selections_free(v, n);
                        return r;
                }
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* ---------------------------------------------------------------- entry points */

static int check_duplicates(const McSelection *v, size_t n, KvErr *e) {
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; v[i].interface && j < i; j++)
                        if (streq_ptr(v[i].interface, v[j].interface))
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EEXIST,
                                                 "%s[%zu] (%s/%s): interface '%s' is already requested by [%zu] (%s/%s)",
                                                 MC_NETWORKS_ANNOT, i, v[i].namespace_, v[i].name, v[i].interface, j,
                                                 v[j].namespace_, v[j].name);
        return 0;
}

static int default_namespaces(McSelection *v, size_t n, const char *ns) {
        for (size_t i = 0; i < n; i++)
                if (!v[i].namespace_ && !(v[i].namespace_ = strdup(ns)))
                        return -ENOMEM;
        return 0;
}

static bool blank(const char *s) {
        for (; *s; s++)
                if (!isspace((unsigned char) *s))
                        return false;
        return true;
}

int mc_networks_parse(const char *text, const char *default_ns, McSelection **ret, size_t *ret_n, KvErr *e) {
        McSelection *v = NULL;
        size_t n = 0;
        int r;
        if (!text || blank(text)) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (strlen(text) > MC_ANNOT_MAX)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -E2BIG, "%s: %zu bytes, at most %u", MC_NETWORKS_ANNOT,
                                 strlen(text), MC_ANNOT_MAX);
        r = strpbrk(text, "[{\"") ? parse_json(text, &v, &n, e) : parse_text(text, &v, &n, e);
        if (r < 0)
                return r;
        if ((r = default_namespaces(v, n, default_ns)) < 0 || (r = check_duplicates(v, n, e)) < 0) {
                mc_selections_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

int mc_default_network_parse(const char *text, const char *multus_ns, McSelection **ret, KvErr *e) {
        McSelection *v = NULL;
        size_t n = 0;
        int r = mc_networks_parse(text, multus_ns, &v, &n, e);
        if (r < 0) {
                /* the same parser: name the annotation the user wrote */
                char msg[sizeof e->msg];
                const char *m = e->msg;
                if (strncmp(m, MC_NETWORKS_ANNOT, strlen(MC_NETWORKS_ANNOT)) == 0) {
                        snprintf(msg, sizeof msg, "%s%s", MC_DEFAULT_NETWORK_ANNOT, m + strlen(MC_NETWORKS_ANNOT));
                        snprintf(e->msg, sizeof e->msg, "%s", msg);
                }
                return r;
        }
        if (n != 1) {
                mc_selections_free(v, n);
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: exactly one network expected, got %zu",
                                 MC_DEFAULT_NETWORK_ANNOT, n);
        }
        *ret = v;
        return 0;
}
