/* SPDX-License-Identifier: Apache-2.0 */
/* The network configuration: loaded the way CRI runtimes pick it, parsed and checked in one place. */
#include <dirent.h>
#include <sys/stat.h>

#include <jansson.h>

#include "common/array.h"
#include "common/fileio.h"
#include "common/json-util.h"
#include "node/node-priv.h"

#define NETWORK_NAME_MAX 128

static bool char_in(char c, const char *extra) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || (c && strchr(extra, c));
}

bool node_cni_type_valid(const char *type) {
        size_t n = type ? strlen(type) : 0;
        if (n == 0 || n > NODE_CNI_TYPE_MAX || streq(type, ".") || streq(type, ".."))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!char_in(type[i], "._-"))
                        return false;
        return true;
}

/* libcni's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]*; it is part of the cache file's name. */
static bool network_name_valid(const char *name) {
        size_t n = strlen(name);
        if (n == 0 || n > NETWORK_NAME_MAX || !char_in(name[0], ""))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!char_in(name[i], "._-"))
                        return false;
        return true;
}

static bool version_valid(const char *v) {
        int a, b, c, end = 0;
        return sscanf(v, "%d.%d.%d%n", &a, &b, &c, &end) == 3 && v[end] == '\0' && a >= 0 && b >= 0 && c >= 0 &&
               strlen(v) < 16 && v[0] >= '0' && v[0] <= '9';
}

int node_cni_version_cmp(const char *a, const char *b) {
        int va[3] = { 0 }, vb[3] = { 0 };
        if (sscanf(a ? a : "0.0.0", "%d.%d.%d", &va[0], &va[1], &va[2]) < 1)
                va[0] = 0;
        if (sscanf(b ? b : "0.0.0", "%d.%d.%d", &vb[0], &vb[1], &vb[2]) < 1)
                vb[0] = 0;
        for (int i = 0; i < 3; i++)
                if (va[i] != vb[i])
                        return va[i] < vb[i] ? -1 : 1;
        return 0;
}

static void plugin_done(NodeCniPlugin *p) {
        free(p->type);
        for (size_t i = 0; i < p->n_capabilities; i++)
                free(p->capabilities[i]);
        free(p->capabilities);
        free(p->conf);
}

NodeCniNetwork *node_cni_network_free(NodeCniNetwork *n) {
        if (!n)
                return NULL;
        for (size_t i = 0; i < n->n_plugins; i++)
                plugin_done(&n->plugins[i]);
        free(n->plugins);
        free(n->name);
        free(n->cni_version);
        free(n->bytes);
        free(n);
        return NULL;
}

static int cfg_err(NodeErr *e, const char *what, const char *fmt_field, const char *detail) {
        return node_err_set(e, NODE_ERR_CONFIG, NULL, NULL, -EINVAL, "%s: %s%s", what, fmt_field, detail ? detail : "");
}

static int parse_plugin(json_t *obj, const char *what, size_t idx, NodeCniPlugin *ret, NodeErr *e) {
        char ctx[64], buf[256];
        snprintf(ctx, sizeof ctx, "plugins[%zu]", idx);
        if (!json_is_object(obj)) {
                snprintf(buf, sizeof buf, "'%s' must be an object, got %s", ctx, json_type_name(obj));
                return cfg_err(e, what, buf, NULL);
        }
        json_t *type = json_object_get(obj, "type");
        if (!json_is_string(type)) {
                snprintf(buf, sizeof buf, "'%s.type' must be a string, got %s", ctx, json_type_name(type));
                return cfg_err(e, what, buf, NULL);
        }
        if (!node_cni_type_valid(json_string_value(type))) {
                snprintf(buf, sizeof buf, "'%s.type' must be a plugin file name ([A-Za-z0-9._-], at most %d), got '%.*s'",
                         ctx, NODE_CNI_TYPE_MAX, 80, json_string_value(type));
                return cfg_err(e, what, buf, NULL);
        }
        json_t *caps = json_object_get(obj, "capabilities");
        if (caps && !json_is_object(caps)) {
                snprintf(buf, sizeof buf, "'%s.capabilities' must be an object, got %s", ctx, json_type_name(caps));
                return cfg_err(e, what, buf, NULL);
        }
        NodeCniPlugin p = { 0 };
        const char *k;
        json_t *v;
        json_object_foreach(caps, k, v) {
                if (!json_is_boolean(v)) {
                        plugin_done(&p);
                        snprintf(buf, sizeof buf, "'%s.capabilities.%.64s' must be a boolean, got %s", ctx, k,
                                 json_type_name(v));
                        return cfg_err(e, what, buf, NULL);
                }
                if (!json_is_true(v))
                        continue;
                if (ARRAY_GROW(p.capabilities, p.cap_capabilities, p.n_capabilities + 1) < 0 ||
                    !(p.capabilities[p.n_capabilities] = strdup(k))) {
                        plugin_done(&p);
                        return -ENOMEM;
                }
                p.n_capabilities++;
        }
        p.type = strdup(json_string_value(type));
        p.conf = json_dump_compact(obj);
        if (!p.type || !p.conf) {
                plugin_done(&p);
                return -ENOMEM;
        }
        *ret = p;
        return 0;
}

int node_cni_network_parse(const char *text, size_t len, const char *what, NodeCniNetwork **ret, NodeErr *e) {
        char buf[256];
        if (len > NODE_CNI_CONF_MAX) {
                snprintf(buf, sizeof buf, "larger than %u bytes (%zu)", NODE_CNI_CONF_MAX, len);
                return node_err_set(e, NODE_ERR_CONFIG, NULL, NULL, -EFBIG, "%s: %s", what, buf);
        }
        json_error_t jerr;
        _cleanup_json_ json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root)
                return node_err_set(e, NODE_ERR_CONFIG, NULL, NULL, -EBADMSG, "%s: invalid JSON: %s (line %d)", what,
                                    jerr.text, jerr.line);
        if (!json_is_object(root)) {
                snprintf(buf, sizeof buf, "must be a JSON object, got %s", json_type_name(root));
                return cfg_err(e, what, buf, NULL);
        }

        json_t *name = json_object_get(root, "name"), *version = json_object_get(root, "cniVersion");
        if (!json_is_string(name)) {
                snprintf(buf, sizeof buf, "'name' is required and must be a string, got %s", json_type_name(name));
                return cfg_err(e, what, buf, NULL);
        }
        if (!network_name_valid(json_string_value(name))) {
                snprintf(buf, sizeof buf, "'name' must be [A-Za-z0-9][A-Za-z0-9_.-]* (at most %d), got '%.80s'",
                         NETWORK_NAME_MAX, json_string_value(name));
                return cfg_err(e, what, buf, NULL);
        }
        if (!json_is_string(version)) {
                snprintf(buf, sizeof buf, "'cniVersion' is required and must be a string, got %s",
                         json_type_name(version));
                return cfg_err(e, what, buf, NULL);
        }
        if (!version_valid(json_string_value(version))) {
                snprintf(buf, sizeof buf, "'cniVersion' must be MAJOR.MINOR.PATCH, got '%.32s'", json_string_value(version));
                return cfg_err(e, what, buf, NULL);
        }
        static const char *const bools[] = { "disableCheck", "disableGC" };
        bool flags[2] = { false, false };
        for (size_t i = 0; i < ELEMENTSOF(bools); i++) {
                json_t *b = json_object_get(root, bools[i]);
                if (b && !json_is_boolean(b)) {
                        snprintf(buf, sizeof buf, "'%s' must be a boolean, got %s", bools[i], json_type_name(b));
                        return cfg_err(e, what, buf, NULL);
                }
                flags[i] = json_is_true(b);
        }

        json_t *plugins = json_object_get(root, "plugins");
        _cleanup_json_ json_t *wrapped = NULL;
        if (!plugins) {
                /* A single network config: a one-plugin list, as libcni's ConfListFromConf makes it. */
                if (!json_object_get(root, "type"))
                        return cfg_err(e, what, "neither 'plugins' nor 'type' is set", NULL);
                wrapped = json_pack("{s:O, s:O, s:[O]}", "cniVersion", version, "name", name, "plugins", root);
                if (!wrapped)
                        return -ENOMEM;
                plugins = json_object_get(wrapped, "plugins");
        } else if (json_object_get(root, "type"))
                return cfg_err(e, what, "'plugins' and 'type' cannot both be set", NULL);
        if (!json_is_array(plugins)) {
                snprintf(buf, sizeof buf, "'plugins' must be an array, got %s", json_type_name(plugins));
                return cfg_err(e, what, buf, NULL);
        }
        size_t n = json_array_size(plugins);
        if (n == 0 || n > NODE_CNI_PLUGINS_MAX) {
                snprintf(buf, sizeof buf, "'plugins' must hold 1..%d plugins, got %zu", NODE_CNI_PLUGINS_MAX, n);
                return cfg_err(e, what, buf, NULL);
        }

        _cleanup_(node_cni_network_freep) NodeCniNetwork *net = calloc(1, sizeof *net);
        if (!net || !(net->plugins = calloc(n, sizeof *net->plugins)))
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int r = parse_plugin(json_array_get(plugins, i), what, i, &net->plugins[i], e);
                if (r < 0)
                        return r;
                net->n_plugins++;
        }
        net->name = strdup(json_string_value(name));
        net->cni_version = strdup(json_string_value(version));
        net->disable_check = flags[0];
        net->disable_gc = flags[1];
        if (wrapped) {
                net->bytes = json_dump_compact(wrapped);
                net->n_bytes = net->bytes ? strlen(net->bytes) : 0;
        } else {
                net->bytes = strndup(text, len);
                net->n_bytes = len;
        }
        if (!net->name || !net->cni_version || !net->bytes)
                return -ENOMEM;
        *ret = TAKE_PTR(net);
        return 0;
}

int node_cni_network_load_file(const char *path, NodeCniNetwork **ret, NodeErr *e) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = read_file_max(path, NODE_CNI_CONF_MAX, &text, &len);
        if (r == -EFBIG)
                return node_err_set(e, NODE_ERR_CONFIG, NULL, NULL, r, "%s: larger than %u bytes", path,
                                    NODE_CNI_CONF_MAX);
        if (r < 0)
                return node_err_set(e, NODE_ERR_CONFIG, NULL, NULL, r, "%s: cannot read", path);
        return node_cni_network_parse(text, len, path, ret, e);
}

static bool conf_file_name(const char *n) {
        static const char *const exts[] = { ".conflist", ".conf", ".json" };
        size_t len = strlen(n);
        if (n[0] == '.')
                return false;
        for (size_t i = 0; i < ELEMENTSOF(exts); i++) {
                size_t l = strlen(exts[i]);
                if (len > l && streq(n + len - l, exts[i]))
                        return true;
        }
        return false;
}

int node_cni_network_load_dir(const char *dir, const char *name, NodeCniNetwork **ret, NodeErr *e) {
        DIR *d = opendir(dir);
        if (!d)
                return node_err_set(e, NODE_ERR_CONFIG, NULL, NULL, negative_errno(), "conf dir '%s': cannot open", dir);
        char **names = NULL;
        size_t n = 0, cap = 0;
        int r = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (!conf_file_name(de->d_name))
                        continue;
                if (ARRAY_GROW(names, cap, n + 1) < 0 || !(names[n] = strdup(de->d_name))) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        closedir(d);
        if (r < 0) {
                node_strs_free(names, n);
                return r;
        }
        if (n > 0)
                qsort(names, n, sizeof *names, node_strcmp_p);

        r = -ENOENT;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/%s", dir, names[i]) < 0) {
                        r = -ENOMEM;
                        break;
                }
                struct stat st;
                if (stat(p, &st) < 0 || !S_ISREG(st.st_mode))
                        continue;
                NodeCniNetwork *net = NULL;
                NodeErr tmp = { 0 };
                r = node_cni_network_load_file(p, &net, name ? &tmp : e);
                node_err_done(&tmp);
                if (!name) {
                        /* the lexically first file is the one, valid or not */
                        if (r >= 0)
                                *ret = net;
                        break;
                }
                if (r < 0) {
                        r = -ENOENT; /* another file's problem is not this network's */
                        continue;
                }
                if (streq(net->name, name)) {
                        *ret = net;
                        break;
                }
                node_cni_network_free(net);
                r = -ENOENT;
        }
        node_strs_free(names, n);
        if (r == -ENOENT)
                return node_err_set(e, NODE_ERR_CONFIG, NULL, NULL, r, "conf dir '%s': no network config%s%s%s", dir,
                                    name ? " named '" : "", name ? name : "", name ? "'" : "");
        return r;
}
