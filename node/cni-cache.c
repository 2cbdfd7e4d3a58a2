/* SPDX-License-Identifier: Apache-2.0 */
/* The result cache, in libcni's on-disk format (kind "cniCacheV1"), so that libcni-based tools
 * (cnitool, a container runtime) and this library read each other's entries:
 *
 *   <cacheDir>/results/<network>-<containerID>-<ifname>
 *   {"kind":"cniCacheV1","containerId":…,"config":<base64 of the config bytes>,"ifName":…,
 *    "networkName":…,"netns":…,"cniArgs":[[K,V],…],"capabilityArgs":{…},"result":{…}}
 *
 * netns, cniArgs and capabilityArgs are left out when empty, as libcni's omitempty does. */
#include <dirent.h>

#include <jansson.h>

#include "common/array.h"
#include "common/base64.h"
#include "common/fileio.h"
#include "common/json-util.h"
#include "node/node-priv.h"

#define CACHE_KIND "cniCacheV1"
#define CACHE_MAX (4u << 20)


NodeCniCacheEntry *node_cni_cache_entry_free(NodeCniCacheEntry *c) {
        if (!c)
                return NULL;
        free(c->container_id);
        free(c->ifname);
        free(c->network);
        free(c->netns);
        node_strs_free(c->arg_keys, c->n_args);
        node_strs_free(c->arg_values, c->n_args);
        node_strs_free(c->cap_keys, c->n_caps);
        node_strs_free(c->cap_values, c->n_caps);
        free(c->result);
        free(c->config);
        free(c);
        return NULL;
}

int node_cni_cache_path(const char *cache_dir, const char *network, const char *cid, const char *ifname, char **ret) {
        if (!network || !*network || !cid || !*cid || !ifname || !*ifname || strchr(network, '/') || strchr(cid, '/') ||
            strchr(ifname, '/'))
                return -EINVAL;
        return asprintf(ret, "%s/results/%s-%s-%s", cache_dir, network, cid, ifname) < 0 ? -ENOMEM : 0;
}

static json_t *parse_any(const char *text) {
        json_error_t jerr;
        return json_loads(text, JSON_DECODE_ANY, &jerr);
}

int node_cni_cache_encode(const NodeCniNetwork *net, const NodeCniAttachment *a, const char *result, char **ret,
                          NodeErr *e) {
        _cleanup_free_ char *config = NULL;
        if (base64_encode(net->bytes, net->n_bytes, &config) < 0)
                return -ENOMEM;
        _cleanup_json_ json_t *res = parse_any(result);
        if (!json_is_object(res))
                return node_err_set(e, NODE_ERR_CACHE, NULL, NULL, -EBADMSG, "cache: the result is not a JSON object");
        _cleanup_json_ json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "kind", CACHE_KIND, "containerId",
                                             a->container_id, "config", config, "ifName", a->ifname, "networkName",
                                             net->name);
        if (!o)
                return -ENOMEM;
        if (a->netns && *a->netns && json_object_set_new(o, "netns", json_string(a->netns)) < 0)
                return -ENOMEM;

        /* cniArgs: the pairs that make CNI_ARGS, in the same order. */
        _cleanup_json_ json_t *args = json_array();
        _cleanup_free_ char *joined = NULL;
        int r = node_cni_args_build(a, &joined, e);
        if (r < 0)
                return r;
        if (!args)
                return -ENOMEM;
        char *save = NULL;
        for (char *t = strtok_r(joined, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
                char *eq = strchr(t, '=');
                *eq = '\0';
                if (json_array_append_new(args, json_pack("[s, s]", t, eq + 1)) < 0)
                        return -ENOMEM;
        }
        if (json_array_size(args) > 0 && json_object_set(o, "cniArgs", args) < 0)
                return -ENOMEM;

        _cleanup_json_ json_t *caps = json_object();
        if (!caps)
                return -ENOMEM;
        for (size_t i = 0; i < a->n_caps; i++) {
                json_t *v = parse_any(a->caps[i].value);
                if (!v || json_object_set_new(caps, a->caps[i].key, v) < 0)
                        return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -EINVAL, "capability arg '%s': invalid JSON",
                                            a->caps[i].key);
        }
        if (json_object_size(caps) > 0 && json_object_set(o, "capabilityArgs", caps) < 0)
                return -ENOMEM;
        if (json_object_set(o, "result", res) < 0)
                return -ENOMEM;
        char *s = json_dump_compact(o);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int dup_field(json_t *o, const char *key, bool required, char **ret, NodeErr *e) {
        json_t *v = json_object_get(o, key);
        if (!v && !required)
                return 0;
        if (!json_is_string(v))
                return node_err_set(e, NODE_ERR_CACHE, NULL, NULL, -EBADMSG, "cache: '%s' must be a string, got %s", key,
                                    json_type_name(v));
        *ret = strdup(json_string_value(v));
        return *ret ? 0 : -ENOMEM;
}

int node_cni_cache_decode(const char *text, size_t len, NodeCniCacheEntry **ret, NodeErr *e) {
        _cleanup_json_ json_t *o = NULL;
        int r = node_json_object(text, len, NODE_ERR_CACHE, "cache", &o, e);
        if (r < 0)
                return r;
        const char *kind = json_string_value(json_object_get(o, "kind"));
        if (!streq_ptr(kind, CACHE_KIND))
                return node_err_set(e, NODE_ERR_CACHE, NULL, NULL, -EBADMSG, "cache: 'kind' must be '%s', got '%.32s'",
                                    CACHE_KIND, kind ? kind : "(none)");
        _cleanup_(node_cni_cache_entry_freep) NodeCniCacheEntry *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        if ((r = dup_field(o, "containerId", true, &c->container_id, e)) < 0 ||
            (r = dup_field(o, "ifName", true, &c->ifname, e)) < 0 ||
            (r = dup_field(o, "networkName", true, &c->network, e)) < 0 ||
            (r = dup_field(o, "netns", false, &c->netns, e)) < 0)
                return r;
        const char *config = json_string_value(json_object_get(o, "config"));
        if (config && base64_decode(config, &c->config, &c->n_config) < 0)
                return node_err_set(e, NODE_ERR_CACHE, NULL, NULL, -EBADMSG, "cache: 'config' is not base64");

        json_t *args = json_object_get(o, "cniArgs");
        if (args && !json_is_array(args))
                return node_err_set(e, NODE_ERR_CACHE, NULL, NULL, -EBADMSG, "cache: 'cniArgs' must be an array, got %s",
                                    json_type_name(args));
        size_t n = json_array_size(args);
        if (n > 0) {
                c->arg_keys = calloc(n, sizeof(char *));
                c->arg_values = calloc(n, sizeof(char *));
                if (!c->arg_keys || !c->arg_values)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                json_t *p = json_array_get(args, i);
                const char *k = json_string_value(json_array_get(p, 0)), *v = json_string_value(json_array_get(p, 1));
                if (json_array_size(p) != 2 || !k || !v)
                        return node_err_set(e, NODE_ERR_CACHE, NULL, NULL, -EBADMSG,
                                            "cache: 'cniArgs[%zu]' must be [key, value]", i);
                c->n_args++;
                if (!(c->arg_keys[i] = strdup(k)) || !(c->arg_values[i] = strdup(v)))
                        return -ENOMEM;
        }

        json_t *caps = json_object_get(o, "capabilityArgs");
        if (caps && !json_is_object(caps))
                return node_err_set(e, NODE_ERR_CACHE, NULL, NULL, -EBADMSG,
                                    "cache: 'capabilityArgs' must be an object, got %s", json_type_name(caps));
        n = json_object_size(caps);
        if (n > 0) {
                c->cap_keys = calloc(n, sizeof(char *));
                c->cap_values = calloc(n, sizeof(char *));
                if (!c->cap_keys || !c->cap_values)
                        return -ENOMEM;
        }
        const char *k;
        json_t *v;
        json_object_foreach(caps, k, v) {
                size_t i = c->n_caps++;
                if (!(c->cap_keys[i] = strdup(k)) ||
                    !(c->cap_values[i] = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)))
                        return -ENOMEM;
        }
        json_t *res = json_object_get(o, "result");
        if (res && !json_is_object(res))
                return node_err_set(e, NODE_ERR_CACHE, NULL, NULL, -EBADMSG, "cache: 'result' must be an object, got %s",
                                    json_type_name(res));
        if (res && !(c->result = json_dump_compact(res)))
                return -ENOMEM;
        *ret = TAKE_PTR(c);
        return 0;
}

int node_cni_cache_write(const char *cache_dir, const NodeCniNetwork *net, const NodeCniAttachment *a, const char *result,
                         NodeErr *e) {
        _cleanup_free_ char *text = NULL, *path = NULL, *dir = NULL;
        int r = node_cni_cache_encode(net, a, result, &text, e);
        if (r < 0)
                return r;
        if (node_cni_cache_path(cache_dir, net->name, a->container_id, a->ifname, &path) < 0 ||
            asprintf(&dir, "%s/results", cache_dir) < 0)
                return -ENOMEM;
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return node_err_set(e, NODE_ERR_CACHE, NULL, NULL, r, "cache: cannot create '%s'", dir);
        r = write_file_atomic(path, text, strlen(text), true);
        if (r < 0)
                return node_err_set(e, NODE_ERR_CACHE, NULL, NULL, r, "cache: cannot write '%s'", path);
        return 0;
}

int node_cni_cache_read(const char *cache_dir, const char *network, const char *cid, const char *ifname,
                        NodeCniCacheEntry **ret, NodeErr *e) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t len = 0;
        int r = node_cni_cache_path(cache_dir, network, cid, ifname, &path);
        if (r < 0)
                return r;
        r = read_file_max(path, CACHE_MAX, &text, &len);
        if (r == -ENOENT)
                return r;
        if (r < 0)
                return node_err_set(e, NODE_ERR_CACHE, NULL, NULL, r, "cache: cannot read '%s'", path);
        return node_cni_cache_decode(text, len, ret, e);
}

int node_cni_cache_remove(const char *cache_dir, const char *network, const char *cid, const char *ifname) {
        _cleanup_free_ char *path = NULL;
        int r = node_cni_cache_path(cache_dir, network, cid, ifname, &path);
        if (r < 0)
                return r;
        r = unlink_durable(path, true);
        return r == -ENOENT ? 0 : r;
}

int node_cni_cache_attachments_json(const char *cache_dir, const char *network, char **ret) {
        _cleanup_free_ char *dir = NULL;
        if (asprintf(&dir, "%s/results", cache_dir) < 0)
                return -ENOMEM;
        _cleanup_json_ json_t *arr = json_array();
        if (!arr)
                return -ENOMEM;
        DIR *d = opendir(dir);
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        while (d && (de = readdir(d))) {
                if (de->d_name[0] == '.' || strstr(de->d_name, ".tmp."))
                        continue;
                if (ARRAY_GROW(names, cap, n + 1) < 0)
                        break;
                if ((names[n] = strdup(de->d_name)))
                        n++;
        }
        if (d)
                closedir(d);
        if (n > 0)
                qsort(names, n, sizeof *names, node_strcmp_p);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *p = NULL, *text = NULL;
                size_t len = 0;
                _cleanup_(node_cni_cache_entry_freep) NodeCniCacheEntry *c = NULL;
                if (asprintf(&p, "%s/%s", dir, names[i]) < 0 || read_file_max(p, CACHE_MAX, &text, &len) < 0 ||
                    node_cni_cache_decode(text, len, &c, NULL) < 0)
                        continue;
                if (streq(c->network, network))
                        json_array_append_new(arr, json_pack("{s:s, s:s}", "containerID", c->container_id, "ifname",
                                                             c->ifname));
        }
        node_strs_free(names, n);
        char *s = json_dump_compact(arr);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}
