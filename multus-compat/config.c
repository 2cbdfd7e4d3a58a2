/* SPDX-License-Identifier: Apache-2.0 */
/* The meta plugin's own config: the keys of Multus's thin plugin (docs/multus.md). Unknown keys are
 * ignored, as Multus ignores them. */
#include <ctype.h>

#include "common/json-util.h"
#include "multus-compat/mc-priv.h"

#define DEFAULT_CONF_DIR "/etc/cni/multus/net.d"
#define DEFAULT_CNI_DIR "/var/lib/cni/multus"
#define DEFAULT_BIN_DIR "/opt/cni/bin"
#define DEFAULT_MULTUS_NS "kube-system"

McConfig *mc_config_free(McConfig *c) {
        if (!c)
                return NULL;
        free(c->cni_version);
        free(c->name);
        free(c->kubeconfig);
        free(c->api_socket);
        free(c->cluster_network);
        mc_strv_free(c->default_networks, c->n_default_networks);
        mc_strv_free(c->delegates, c->n_delegates);
        free(c->conf_dir);
        free(c->cni_dir);
        free(c->bin_dir);
        mc_strv_free(c->global_namespaces, c->n_global_namespaces);
        mc_strv_free(c->system_namespaces, c->n_system_namespaces);
        free(c->multus_namespace);
        free(c->readiness_indicator_file);
        free(c->auxiliary_cni_chain_name);
        free(c->log_file);
        free(c->log_level);
        mc_caps_free(c->runtime_config, c->n_runtime_config);
        free(c);
        return NULL;
}

static int get_str(json_t *o, const char *key, const char *def, char **ret, KvErr *e) {
        const char *s = NULL;
        int r = json_get_string(o, "netconf", key, false, &s, e);
        if (r < 0)
                return r;
        return mc_strdup_opt(s && *s ? s : def, ret);
}

/* globalNamespaces: Multus's comma-separated string (an array is accepted too). */
static int parse_global(json_t *o, McConfig *c, KvErr *e) {
        json_t *g = json_object_get(o, "globalNamespaces");
        if (!g || json_is_null(g) || (json_is_string(g) && !*json_string_value(g)))
                return mc_strv_push(&c->global_namespaces, &c->n_global_namespaces, "default");
        if (json_is_array(g))
                return mc_json_strv(o, "netconf", "globalNamespaces", &c->global_namespaces, &c->n_global_namespaces, e);
        if (!json_is_string(g))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "netconf: 'globalNamespaces' must be a comma-separated string, got %s", json_type_name(g));
        _cleanup_free_ char *buf = strdup(json_string_value(g));
        if (!buf)
                return -ENOMEM;
        char *p = buf;
        for (char *item; (item = strsep(&p, ","));) {
                while (isspace((unsigned char) *item))
                        item++;
                char *end = item + strlen(item);
                while (end > item && isspace((unsigned char) end[-1]))
                        *--end = '\0';
                if (*item && mc_strv_push(&c->global_namespaces, &c->n_global_namespaces, item) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int parse_delegates(json_t *o, McConfig *c, KvErr *e) {
        json_t *a = NULL, *d;
        size_t i;
        int r = json_get_array(o, "netconf", "delegates", false, &a, e);
        if (r <= 0)
                return r;
        json_array_foreach(a, i, d) {
                char what[64], name[96];
                _cleanup_free_ char *text = json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER), *list = NULL;
                if (!text)
                        return -ENOMEM;
                snprintf(what, sizeof what, "netconf: delegates[%zu]", i);
                snprintf(name, sizeof name, "%s-delegate%zu", c->name ? c->name : "multus", i);
                if ((r = mc_conflist_normalize(text, strlen(text), what, name, NULL, NULL, &list, e)) < 0)
                        return r;
                if ((r = mc_strv_push(&c->delegates, &c->n_delegates, list)) < 0)
                        return r;
        }
        return 0;
}

static int parse_runtime_config(json_t *o, McConfig *c, KvErr *e) {
        json_t *rc = NULL, *v;
        const char *k;
        int r = json_get_object(o, "netconf", "runtimeConfig", false, &rc, e);
        if (r <= 0)
                return r;
        json_object_foreach(rc, k, v)
                if ((r = mc_caps_push(&c->runtime_config, &c->n_runtime_config, k, v)) < 0)
                        return r;
        return 0;
}

static int parse_strings(json_t *o, McConfig *c, KvErr *e) {
        int r;
        if ((r = get_str(o, "cniVersion", NULL, &c->cni_version, e)) < 0 || (r = get_str(o, "name", NULL, &c->name, e)) < 0 ||
            (r = get_str(o, "kubeconfig", NULL, &c->kubeconfig, e)) < 0 ||
            (r = get_str(o, "apiSocket", NULL, &c->api_socket, e)) < 0 ||
            (r = get_str(o, "clusterNetwork", NULL, &c->cluster_network, e)) < 0 ||
            (r = get_str(o, "confDir", DEFAULT_CONF_DIR, &c->conf_dir, e)) < 0 ||
            (r = get_str(o, "cniDir", DEFAULT_CNI_DIR, &c->cni_dir, e)) < 0 ||
            (r = get_str(o, "binDir", DEFAULT_BIN_DIR, &c->bin_dir, e)) < 0 ||
            (r = get_str(o, "multusNamespace", DEFAULT_MULTUS_NS, &c->multus_namespace, e)) < 0 ||
            (r = get_str(o, "readinessindicatorfile", NULL, &c->readiness_indicator_file, e)) < 0 ||
            (r = get_str(o, "auxiliaryCNIChainName", NULL, &c->auxiliary_cni_chain_name, e)) < 0 ||
            (r = get_str(o, "logFile", NULL, &c->log_file, e)) < 0 || (r = get_str(o, "logLevel", NULL, &c->log_level, e)) < 0)
                return r;
        if (!c->cni_version)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "netconf: 'cniVersion' is required");
        if (c->api_socket && (c->api_socket[0] != '/' || strlen(c->api_socket) > 107))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "netconf: 'apiSocket' must be an absolute path of at most 107 bytes (a unix socket), "
                                 "got '%.128s'",
                                 c->api_socket);
        if (c->auxiliary_cni_chain_name && !mc_aux_chain_name_valid(c->auxiliary_cni_chain_name))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "netconf: 'auxiliaryCNIChainName' must be a letter or digit then letters, digits, '_', "
                                 "'.', '-' (it names a directory), got '%s'",
                                 c->auxiliary_cni_chain_name);
        return 0;
}

static int parse_lists(json_t *o, McConfig *c, KvErr *e) {
        bool b = false;
        int r;
        if ((r = json_get_bool(o, "netconf", "namespaceIsolation", false, &c->namespace_isolation, e)) < 0 ||
            (r = json_get_bool(o, "netconf", "retryDeleteOnError", false, &c->retry_delete_on_error, e)) < 0 ||
            (r = json_get_bool(o, "netconf", "parallelDelegates", false, &c->parallel_delegates, e)) < 0 ||
            (r = json_get_bool(o, "netconf", "logToStderr", false, &b, e)) < 0 ||
            (r = mc_json_strv(o, "netconf", "defaultNetworks", &c->default_networks, &c->n_default_networks, e)) < 0 ||
            (r = mc_json_strv(o, "netconf", "systemNamespaces", &c->system_namespaces, &c->n_system_namespaces, e)) < 0)
                return r;
        if (r == 0 && mc_strv_push(&c->system_namespaces, &c->n_system_namespaces, "kube-system") < 0)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_default_networks; i++)
                if (!*c->default_networks[i])
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "netconf: 'defaultNetworks[%zu]' is empty", i);
        return parse_global(o, c, e);
}

int mc_config_parse(const char *text, size_t len, McConfig **ret, KvErr *e) {
        _cleanup_json_ json_t *o = NULL;
        int r;
        if (len > MC_CONFIG_MAX)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -E2BIG, "netconf: %zu bytes, at most %u", len, MC_CONFIG_MAX);
        if ((r = mc_json_load(text, len, "netconf", &o, e)) < 0)
                return r;
        if (!json_is_object(o))
                return kverr_set(e, KV_ERR_DECODE, -EINVAL, "netconf: must be an object, got %s", json_type_name(o));
        _cleanup_(mc_config_freep) McConfig *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        if ((r = parse_strings(o, c, e)) < 0 || (r = parse_lists(o, c, e)) < 0 || (r = parse_runtime_config(o, c, e)) < 0)
                return r;
        /* clusterNetwork wins over inline delegates, as in Multus */
        if (!c->cluster_network && (r = parse_delegates(o, c, e)) < 0)
                return r;
        if (!c->cluster_network && c->n_delegates == 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "netconf: 'clusterNetwork' or a non-empty 'delegates' list is required");
        *ret = TAKE_PTR(c);
        return 0;
}
