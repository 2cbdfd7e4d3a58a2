/* SPDX-License-Identifier: Apache-2.0 */
/* NetworkAttachmentDefinitions (k8s.cni.cncf.io/v1) and the CNI conflist a delegate runs: spec.config as a
 * single plugin or a list, normalised to a list; an empty config is the conf dir's file of the NAD's name. */
#include <dirent.h>

#include "common/fileio.h"
#include "common/json-util.h"
#include "multus-compat/mc-priv.h"

McNad *mc_nad_free(McNad *n) {
        if (!n)
                return NULL;
        free(n->namespace_);
        free(n->name);
        free(n->resource_name);
        free(n->config);
        free(n);
        return NULL;
}

static int nad_fields(json_t *o, McNad *n, KvErr *e) {
        json_t *md = NULL, *spec = NULL, *ann = NULL;
        const char *name = NULL, *ns = NULL, *res = NULL, *config = NULL;
        int r;
        if ((r = json_get_object(o, "NetworkAttachmentDefinition", "metadata", true, &md, e)) < 0 ||
            (r = json_get_string(md, "NetworkAttachmentDefinition metadata", "name", true, &name, e)) < 0 ||
            (r = json_get_string(md, "NetworkAttachmentDefinition metadata", "namespace", false, &ns, e)) < 0 ||
            (r = json_get_object(md, "NetworkAttachmentDefinition metadata", "annotations", false, &ann, e)) < 0)
                return r;
        char ctx[320];
        snprintf(ctx, sizeof ctx, "NetworkAttachmentDefinition %s/%s", ns ? ns : "", name);
        if (ann && (r = json_get_string(ann, ctx, MC_RESOURCE_NAME_ANNOT, false, &res, e)) < 0)
                return r;
        if ((r = json_get_object(o, ctx, "spec", false, &spec, e)) < 0 ||
            (spec && (r = json_get_string(spec, ctx, "config", false, &config, e)) < 0))
                return r;
        if (!mc_dns1123_subdomain(name))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'metadata.name' is not a DNS-1123 name", ctx);
        if (mc_strdup_opt(name, &n->name) < 0 || mc_strdup_opt(ns, &n->namespace_) < 0 ||
            mc_strdup_opt(res && *res ? res : NULL, &n->resource_name) < 0 ||
            mc_strdup_opt(config && *config ? config : NULL, &n->config) < 0)
                return -ENOMEM;
        return 0;
}

int mc_nad_parse(const char *text, size_t len, McNad **ret, KvErr *e) {
        _cleanup_json_ json_t *o = NULL;
        int r;
        if (len > MC_CONFIG_MAX)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -E2BIG, "NetworkAttachmentDefinition: %zu bytes, at most %u",
                                 len, MC_CONFIG_MAX);
        if ((r = mc_json_load(text, len, "NetworkAttachmentDefinition", &o, e)) < 0)
                return r;
        if (!json_is_object(o))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "NetworkAttachmentDefinition: must be an object, got %s",
                                 json_type_name(o));
        _cleanup_(mc_nad_freep) McNad *n = calloc(1, sizeof *n);
        if (!n)
                return -ENOMEM;
        if ((r = nad_fields(o, n, e)) < 0)
                return r;
        *ret = TAKE_PTR(n);
        return 0;
}

bool mc_namespace_allowed(const char *pod_ns, const char *net_ns, bool isolation, char *const *global_ns,
                          size_t n_global) {
        if (!isolation || streq(pod_ns, net_ns))
                return true;
        for (size_t i = 0; i < n_global; i++)
                if (streq(global_ns[i], net_ns))
                        return true;
        return false;
}

/* ---------------------------------------------------------------- conflists */

/* args.cni of plugin p gets every key of cni_args (an object), as Multus merges it. */
static int merge_cni_args(json_t *p, json_t *cni_args, const char *ctx, KvErr *e) {
        json_t *args = json_object_get(p, "args");
        if (!args) {
                args = json_object();
                if (!args || json_object_set_new(p, "args", args) < 0)
                        return -ENOMEM;
        }
        if (!json_is_object(args))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'args' must be an object to take cni-args, got %s",
                                 ctx, json_type_name(args));
        json_t *cni = json_object_get(args, "cni");
        if (!cni) {
                cni = json_object();
                if (!cni || json_object_set_new(args, "cni", cni) < 0)
                        return -ENOMEM;
        }
        if (!json_is_object(cni))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'args.cni' must be an object, got %s", ctx,
                                 json_type_name(cni));
        return json_object_update(cni, cni_args) < 0 ? -ENOMEM : 0;
}

static int set_device(json_t *p, const char *device_id) {
        if (json_object_set_new(p, "deviceID", json_string(device_id)) < 0 ||
            json_object_set_new(p, "pciBusID", json_string(device_id)) < 0)
                return -ENOMEM;
        return 0;
}

/* A single plugin config as a list: name and cniVersion move up, the rest is the plugin. */
static int wrap_single(json_t *conf, json_t **ret) {
        json_t *list = json_object(), *plugins = json_array(), *p = json_deep_copy(conf);
        if (!list || !plugins || !p || json_object_set_new(list, "plugins", plugins) < 0 || json_array_append_new(plugins, p) < 0) {
                json_decref(list);
                return -ENOMEM;
        }
        json_t *v = json_object_get(conf, "cniVersion");
        if (v && json_object_set(list, "cniVersion", v) < 0)
                return json_decref(list), -ENOMEM;
        json_object_del(p, "cniVersion");
        json_object_del(p, "name");
        *ret = list;
        return 0;
}

static int check_plugins(json_t *list, const char *what, KvErr *e) {
        json_t *plugins = json_object_get(list, "plugins"), *p;
        size_t i;
        if (!json_is_array(plugins) || json_array_size(plugins) == 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'plugins' must be a non-empty array", what);
        json_array_foreach(plugins, i, p) {
                json_t *t = json_object_get(p, "type");
                if (!json_is_object(p) || !json_is_string(t) || !*json_string_value(t))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'plugins[%zu].type' must be a non-empty string",
                                         what, i);
        }
        return 0;
}

/* A VM's NIC on a network whose plugins are not kvnet (cni-args kvnet.vm, the VM interface kvnet's controller asks
 * for, and no "kvnet" plugin): kvnet is chained after them as the VM binding (docs/chaining.md): it plugs the guest's
 * tap (tap-<ifname>) into the interface they made and serves the guest their addresses by DHCP, as KubeVirt's bridge
 * binding does with an in-pod bridge. Other plugins ignore args.cni.kvnet. */
static int chain_vm_binding(json_t *list, json_t *args) {
        json_t *plugins = json_object_get(list, "plugins"), *p;
        size_t i;
        if (!json_is_object(json_object_get(json_object_get(args, "kvnet"), "vm")))
                return 0;
        json_array_foreach(plugins, i, p)
                if (streq_ptr(json_string_value(json_object_get(p, "type")), "kvnet"))
                        return 0;
        json_t *k = json_pack("{s:s, s:s, s:{s:O}}", "type", "kvnet", "binding", "bridge", "args", "cni", args);
        return k && json_array_append_new(plugins, k) == 0 ? 0 : -ENOMEM;
}

static int apply_extras(json_t *list, const char *what, const char *cni_args, const char *device_id, KvErr *e) {
        _cleanup_json_ json_t *args = NULL;
        json_t *p;
        size_t i;
        int r;
        if (cni_args) {
                if ((r = mc_json_load(cni_args, strlen(cni_args), "cni-args", &args, e)) < 0)
                        return r;
                if (!json_is_object(args))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "cni-args: must be an object");
        }
        json_array_foreach(json_object_get(list, "plugins"), i, p) {
                char ctx[300];
                snprintf(ctx, sizeof ctx, "%s: plugins[%zu]", what, i);
                if (args && (r = merge_cni_args(p, args, ctx, e)) < 0)
                        return r;
                if (device_id && (r = set_device(p, device_id)) < 0)
                        return r;
        }
        return args ? chain_vm_binding(list, args) : 0;
}

int mc_conflist_normalize(const char *text, size_t len, const char *what, const char *name_default,
                          const char *cni_args, const char *device_id, char **ret, KvErr *e) {
        _cleanup_json_ json_t *o = NULL, *list = NULL;
        int r;
        if (len > MC_CONFIG_MAX)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -E2BIG, "%s: %zu bytes, at most %u", what, len, MC_CONFIG_MAX);
        if ((r = mc_json_load(text, len, what, &o, e)) < 0)
                return r;
        if (!json_is_object(o))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: must be a CNI config object, got %s", what,
                                 json_type_name(o));
        if (json_object_get(o, "plugins"))
                list = json_incref(o);
        else if (json_is_string(json_object_get(o, "type")))
                r = wrap_single(o, &list);
        else
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: a CNI config needs 'type' or 'plugins'", what);
        if (r < 0)
                return r;
        json_t *name = json_object_get(o, "name");
        if (name && !json_is_string(name))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'name' must be a string, got %s", what,
                                 json_type_name(name));
        const char *nm = name && *json_string_value(name) ? json_string_value(name) : name_default;
        if (!nm)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: 'name' is required", what);
        if (json_object_set_new(list, "name", json_string(nm)) < 0)
                return -ENOMEM;
        if ((r = check_plugins(list, what, e)) < 0 || (r = apply_extras(list, what, cni_args, device_id, e)) < 0)
                return r;
        char *s = json_dumps(list, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static bool conf_file(const char *n) {
        size_t l = strlen(n);
        return (l > 5 && streq(n + l - 5, ".conf")) || (l > 9 && streq(n + l - 9, ".conflist")) ||
               (l > 5 && streq(n + l - 5, ".json"));
}

static int dir_entry_matches(const char *path, const char *name, char **ret, KvErr *e) {
        _cleanup_free_ char *text = NULL;
        _cleanup_json_ json_t *o = NULL;
        size_t len;
        int r = read_file_max(path, MC_CONFIG_MAX, &text, &len);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "%s: cannot read", path);
        if ((r = mc_json_load(text, len, path, &o, e)) < 0)
                return r;
        json_t *n = json_object_get(o, "name");
        if (name && (!json_is_string(n) || !streq(json_string_value(n), name)))
                return 0;
        if ((r = mc_conflist_normalize(text, len, path, name, NULL, NULL, ret, e)) < 0)
                return r;
        return 1;
}

int mc_conflist_from_dir(const char *dir, const char *name, char **ret, KvErr *e) {
        struct dirent **ents = NULL;
        int n = scandir(dir, &ents, NULL, alphasort), r = 0;
        if (n < 0)
                return kverr_set_errno(e, KV_ERR_INVALID_CONFIG, negative_errno(), "confDir '%s': no network named '%s'",
                                       dir, name ? name : "(any)");
        for (int i = 0; i < n; i++) {
                if (r == 0 && conf_file(ents[i]->d_name)) {
                        _cleanup_free_ char *path = NULL;
                        if (asprintf(&path, "%s/%s", dir, ents[i]->d_name) < 0)
                                r = -ENOMEM;
                        else
                                r = dir_entry_matches(path, name, ret, e);
                }
                free(ents[i]);
        }
        free(ents);
        if (r == 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ENOENT, "confDir '%s': no network named '%s'", dir,
                                 name ? name : "(any)");
        return r < 0 ? r : 0;
}

/* The NAD's k8s.v1.cni.cncf.io/resourceName names the SR-IOV pool of a kvnet plugin that names none: netd allocates
 * the VF from the pool of that name (docs/sriov.md), where Multus would take the device the kubelet's device
 * plugin gave the pod. */
static int set_resource(char **conflist, const char *resource) {
        _cleanup_json_ json_t *o = json_loads(*conflist, 0, NULL);
        json_t *p;
        size_t i;
        bool changed = false;
        if (!o)
                return -ENOMEM;
        json_array_foreach(json_object_get(o, "plugins"), i, p)
                if (streq_ptr(json_string_value(json_object_get(p, "type")), "kvnet") && !json_object_get(p, "resourceName")) {
                        if (json_object_set_new(p, "resourceName", json_string(resource)) < 0)
                                return -ENOMEM;
                        changed = true;
                }
        if (!changed)
                return 0;
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!s)
                return -ENOMEM;
        free(*conflist);
        *conflist = s;
        return 0;
}

static int nad_conflist(const McNad *nad, const McSelection *sel, const char *conf_dir, const char *device_id,
                        char **ret, KvErr *e);

int mc_nad_conflist(const McNad *nad, const McSelection *sel, const char *conf_dir, const char *device_id, char **ret,
                    KvErr *e) {
        _cleanup_free_ char *list = NULL;
        int r = nad_conflist(nad, sel, conf_dir, device_id, &list, e);
        if (r < 0 || (nad->resource_name && (r = set_resource(&list, nad->resource_name)) < 0))
                return r;
        *ret = TAKE_PTR(list);
        return 0;
}

static int nad_conflist(const McNad *nad, const McSelection *sel, const char *conf_dir, const char *device_id,
                        char **ret, KvErr *e) {
        const char *cni_args = sel ? sel->cni_args : NULL;
        char what[320];
        snprintf(what, sizeof what, "NetworkAttachmentDefinition %s/%s: spec.config", nad->namespace_ ? nad->namespace_ : "",
                 nad->name);
        if (nad->config)
                return mc_conflist_normalize(nad->config, strlen(nad->config), what, nad->name, cni_args, device_id, ret, e);
        _cleanup_free_ char *file = NULL;
        int r = mc_conflist_from_dir(conf_dir, nad->name, &file, e);
        if (r < 0)
                return r;
        if (!cni_args && !device_id) {
                *ret = TAKE_PTR(file);
                return 0;
        }
        return mc_conflist_normalize(file, strlen(file), what, nad->name, cni_args, device_id, ret, e);
}

int mc_conflist_default_version(char **conflist, const char *version) {
        _cleanup_json_ json_t *o = json_loads(*conflist, 0, NULL);
        if (!o)
                return -EINVAL;
        json_t *v = json_object_get(o, "cniVersion");
        if (json_is_string(v) && *json_string_value(v))
                return 0;
        if (json_object_set_new(o, "cniVersion", json_string(version)) < 0)
                return -ENOMEM;
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!s)
                return -ENOMEM;
        free(*conflist);
        *conflist = s;
        return 0;
}
