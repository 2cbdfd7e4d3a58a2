/* SPDX-License-Identifier: Apache-2.0 */
/* The CNI operations on a network config list, with libcni's semantics (containernetworking/cni,
 * libcni/api.go): ADD in order with prevResult chaining and a cached result, DEL in reverse with the
 * cached result, CHECK with it, STATUS and GC for 1.1.0 plugins, VERSION. */
#include <jansson.h>

#include "common/array.h"
#include "common/json-util.h"
#include "common/netns.h"
#include "node/node-priv.h"

/* ---------------------------------------------------------------- runtime object */

NodeCniRuntime *node_cni_runtime_free(NodeCniRuntime *rt) {
        if (!rt)
                return NULL;
        for (size_t i = 0; i < rt->n_path; i++)
                free(rt->path[i]);
        free(rt->path);
        free(rt->path_list);
        free(rt->cache_dir);
        free(rt->exec_netns);
        for (size_t i = 0; i < rt->n_env; i++)
                free(rt->env[i]);
        free(rt->env);
        free(rt);
        return NULL;
}

int node_cni_runtime_new(const char *path_list, const char *cache_dir, NodeCniRuntime **ret, NodeErr *e) {
        if (!path_list || !*path_list)
                return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -EINVAL, "CNI path: empty");
        if (!cache_dir || cache_dir[0] != '/')
                return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -EINVAL,
                                    "cache dir must be an absolute path, got '%.80s'", cache_dir ? cache_dir : "(null)");
        _cleanup_(node_cni_runtime_freep) NodeCniRuntime *rt = calloc(1, sizeof *rt);
        if (!rt || !(rt->path_list = strdup(path_list)) || !(rt->cache_dir = strdup(cache_dir)))
                return -ENOMEM;
        rt->stderr_fd = -1;
        _cleanup_free_ char *dup = strdup(path_list);
        if (!dup)
                return -ENOMEM;
        char *save = NULL;
        for (char *d = strtok_r(dup, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                if (d[0] != '/')
                        return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -EINVAL,
                                            "CNI path: '%.80s' is not an absolute directory", d);
                int r = ARRAY_GROW(rt->path, rt->cap_path, rt->n_path + 1);
                if (r < 0)
                        return r;
                if (!(rt->path[rt->n_path] = strdup(d)))
                        return -ENOMEM;
                rt->n_path++;
        }
        if (rt->n_path == 0)
                return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -EINVAL, "CNI path: no directory in '%.80s'", path_list);
        *ret = TAKE_PTR(rt);
        return 0;
}

int node_cni_runtime_set_netns(NodeCniRuntime *rt, const char *path, NodeErr *e) {
        char *dup = NULL;
        if (path) {
                int fd;
                int r = netns_open(path, &fd);
                if (r < 0)
                        return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, r,
                                            "plugins' network namespace: '%.200s' is not a network namespace", path);
                close(fd);
                if (!(dup = strdup(path)))
                        return -ENOMEM;
        }
        free(rt->exec_netns);
        rt->exec_netns = dup;
        return 0;
}

int node_cni_runtime_set_env(NodeCniRuntime *rt, char *const *env) {
        size_t n = 0;
        for (char *const *p = env; p && *p; p++)
                n++;
        char **v = calloc(n + 1, sizeof *v);
        if (!v)
                return -ENOMEM;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                if (strncmp(env[i], "CNI_", 4) == 0 || !strchr(env[i], '='))
                        continue;
                if (!(v[k++] = strdup(env[i]))) {
                        node_strv_free(v);
                        return -ENOMEM;
                }
        }
        for (size_t i = 0; i < rt->n_env; i++)
                free(rt->env[i]);
        free(rt->env);
        rt->env = v;
        rt->n_env = k;
        return 0;
}

/* ---------------------------------------------------------------- helpers */

typedef struct Bins {
        char **v;
        size_t n;
} Bins;

static void bins_done(Bins *b) {
        for (size_t i = 0; i < b->n; i++)
                free(b->v[i]);
        free(b->v);
}

/* Every plugin is looked up before any runs. */
static int bins_resolve(const NodeCniRuntime *rt, const NodeCniNetwork *net, Bins *ret, NodeErr *e) {
        Bins b = { .v = calloc(net->n_plugins, sizeof(char *)) };
        if (!b.v)
                return -ENOMEM;
        for (size_t i = 0; i < net->n_plugins; i++) {
                int r = node_cni_find_plugin(rt, net->plugins[i].type, &b.v[i], e);
                if (r < 0) {
                        bins_done(&b);
                        return r;
                }
                b.n++;
        }
        *ret = b;
        return 0;
}

/* Names the plugin and command in an error that does not yet say. */
static int blame(NodeErr *e, const char *type, const char *command, int r) {
        if (e && e->kind != NODE_ERR_NONE) {
                if (!e->plugin[0])
                        snprintf(e->plugin, sizeof e->plugin, "%s", type);
                if (!e->command[0])
                        snprintf(e->command, sizeof e->command, "%s", command);
        }
        return r;
}

static int run_one(const NodeCniRuntime *rt, const NodeCniNetwork *net, size_t i, const char *bin, const NodeCniCall *c,
                   const char *prev, const NodeCniArg *caps, size_t n_caps, const char *extra_key,
                   const char *extra_json, char **ret, NodeErr *e) {
        const NodeCniPlugin *p = &net->plugins[i];
        _cleanup_free_ char *in = NULL;
        int r = node_cni_stdin_build(net, p, prev, caps, n_caps, extra_key, extra_json, &in, e);
        if (r < 0)
                return blame(e, p->type, c->command, r);
        _cleanup_free_ char *out = NULL;
        r = node_cni_exec(rt, bin, p->type, c, in, &out, e);
        if (r < 0)
                return r;
        if (ret)
                *ret = TAKE_PTR(out);
        return 0;
}

/* Capability args and CNI_ARGS for DEL/CHECK: the caller's, else those cached at ADD. */
typedef struct Cached {
        NodeCniCacheEntry *entry;
        NodeCniArg *caps;
        size_t n_caps;
        char *args;
} Cached;

static void cached_done(Cached *c) {
        node_cni_cache_entry_free(c->entry);
        free(c->caps);
        free(c->args);
}

static int cached_load(const NodeCniRuntime *rt, const NodeCniNetwork *net, const NodeCniAttachment *a, bool strict,
                       Cached *ret, NodeErr *e) {
        Cached c = { 0 };
        int r = node_cni_args_build(a, &c.args, e);
        if (r < 0)
                return r;
        r = node_cni_cache_read(rt->cache_dir, net->name, a->container_id, a->ifname, &c.entry, strict ? e : NULL);
        if (r < 0 && (strict || r == -ENOMEM)) {
                cached_done(&c);
                return r;
        }
        if (c.entry && a->n_caps == 0 && c.entry->n_caps > 0) {
                c.caps = calloc(c.entry->n_caps, sizeof *c.caps);
                if (!c.caps) {
                        cached_done(&c);
                        return -ENOMEM;
                }
                for (size_t i = 0; i < c.entry->n_caps; i++)
                        c.caps[i] = (NodeCniArg) { c.entry->cap_keys[i], c.entry->cap_values[i] };
                c.n_caps = c.entry->n_caps;
        }
        if (c.entry && !*c.args && c.entry->n_args > 0) {
                NodeCniAttachment tmp = *a;
                _cleanup_free_ NodeCniArg *v = calloc(c.entry->n_args, sizeof *v);
                if (!v) {
                        cached_done(&c);
                        return -ENOMEM;
                }
                for (size_t i = 0; i < c.entry->n_args; i++)
                        v[i] = (NodeCniArg) { c.entry->arg_keys[i], c.entry->arg_values[i] };
                tmp.args = v;
                tmp.n_args = c.entry->n_args;
                char *s = NULL;
                if (node_cni_args_build(&tmp, &s, NULL) >= 0) {
                        free(c.args);
                        c.args = s;
                }
        }
        *ret = c;
        return 0;
}

/* ---------------------------------------------------------------- DEL */

static void del_range(const NodeCniRuntime *rt, const NodeCniNetwork *net, const Bins *b, size_t upto,
                      const NodeCniCall *c, const char *prev, const NodeCniArg *caps, size_t n_caps) {
        if (node_cni_version_cmp(net->cni_version, "0.4.0") < 0)
                prev = NULL;
        for (size_t i = upto; i-- > 0;)
                (void) run_one(rt, net, i, b->v[i], c, prev, caps, n_caps, NULL, NULL, NULL, NULL);
}

int node_cni_del(const NodeCniRuntime *rt, const NodeCniNetwork *net, const NodeCniAttachment *a, NodeErr *e) {
        Cached cached;
        int r = cached_load(rt, net, a, false, &cached, e);
        if (r < 0)
                return r;
        Bins b;
        r = bins_resolve(rt, net, &b, e);
        if (r < 0) {
                cached_done(&cached);
                return r;
        }
        const NodeCniCall c = { "DEL", a->container_id, a->netns, a->ifname, cached.args };
        const char *prev = cached.entry && node_cni_version_cmp(net->cni_version, "0.4.0") >= 0 ? cached.entry->result
                                                                                                 : NULL;
        const NodeCniArg *caps = cached.caps ? cached.caps : a->caps;
        size_t n_caps = cached.caps ? cached.n_caps : a->n_caps;
        for (size_t i = net->n_plugins; r >= 0 && i-- > 0;)
                r = run_one(rt, net, i, b.v[i], &c, prev, caps, n_caps, NULL, NULL, NULL, e);
        if (r >= 0) {
                r = node_cni_cache_remove(rt->cache_dir, net->name, a->container_id, a->ifname);
                if (r < 0)
                        r = node_err_set(e, NODE_ERR_CACHE, NULL, "DEL", r, "cache: cannot remove the entry of %s/%s/%s",
                                         net->name, a->container_id, a->ifname);
        }
        bins_done(&b);
        cached_done(&cached);
        return r;
}

/* ---------------------------------------------------------------- ADD */

int node_cni_add(const NodeCniRuntime *rt, const NodeCniNetwork *net, const NodeCniAttachment *a, unsigned flags,
                 NodeCniResult **ret, NodeErr *e) {
        _cleanup_free_ char *args = NULL;
        int r = node_cni_args_build(a, &args, e);
        if (r < 0)
                return r;
        Bins b;
        r = bins_resolve(rt, net, &b, e);
        if (r < 0)
                return r;
        const NodeCniCall c = { "ADD", a->container_id, a->netns, a->ifname, args };
        _cleanup_(node_cni_result_freep) NodeCniResult *prev = NULL;
        size_t i;
        for (i = 0; i < net->n_plugins; i++) {
                _cleanup_free_ char *out = NULL;
                r = run_one(rt, net, i, b.v[i], &c, prev ? prev->raw : a->prev_result, a->caps, a->n_caps, NULL, NULL, &out,
                            e);
                if (r < 0)
                        break;
                NodeCniResult *res = NULL;
                r = node_cni_result_parse(out, strlen(out), &res, e);
                if (r < 0) {
                        r = blame(e, net->plugins[i].type, "ADD", r);
                        break;
                }
                node_cni_result_free(prev);
                prev = res;
        }
        if (r >= 0)
                r = node_cni_cache_write(rt->cache_dir, net, a, prev->raw, e);
        else if (e->kind != NODE_ERR_GATE)
                i++; /* the failing plugin gets its DEL too: it may have done part of its work (not one killed at the
                      * start gate: it read no config, so it did nothing) */
        if (r < 0 && (flags & NODE_CNI_ADD_ROLLBACK)) {
                const NodeCniCall d = { "DEL", a->container_id, a->netns, a->ifname, args };
                del_range(rt, net, &b, i > net->n_plugins ? net->n_plugins : i, &d, prev ? prev->raw : a->prev_result,
                          a->caps, a->n_caps);
        }
        bins_done(&b);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(prev);
        return 0;
}

/* ---------------------------------------------------------------- the first plugin alone */

int node_cni_first_plugin_call(const NodeCniRuntime *rt, const NodeCniNetwork *net, const NodeCniAttachment *a,
                               const char *command, char *const *extra_env, NodeCniResult **ret, NodeErr *e) {
        if (!streq_ptr(command, "ADD") && !streq_ptr(command, "DEL"))
                return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -EINVAL, "command must be ADD or DEL, got '%s'",
                                    command ?: "(null)");
        if (net->n_plugins == 0)
                return node_err_set(e, NODE_ERR_CONFIG, NULL, NULL, -EINVAL, "network '%s' has no plugin", net->name);
        _cleanup_free_ char *args = NULL, *bin = NULL, *out = NULL;
        int r = node_cni_attachment_check(a, e);
        if (r < 0 || (r = node_cni_args_build(a, &args, e)) < 0 ||
            (r = node_cni_find_plugin(rt, net->plugins[0].type, &bin, e)) < 0)
                return r;
        size_t n_extra = 0;
        while (extra_env && extra_env[n_extra])
                n_extra++;
        _cleanup_free_ char **env = calloc(rt->n_env + n_extra + 1, sizeof *env);
        if (!env)
                return -ENOMEM;
        for (size_t i = 0; i < rt->n_env; i++)
                env[i] = rt->env[i];
        for (size_t i = 0; i < n_extra; i++) {
                if (strncmp(extra_env[i], "CNI_", 4) == 0 || !strchr(extra_env[i], '='))
                        return node_err_set(e, NODE_ERR_ARGS, NULL, NULL, -EINVAL,
                                            "extra environment: '%.64s' is not K=V outside CNI_*", extra_env[i]);
                env[rt->n_env + i] = extra_env[i];
        }
        NodeCniRuntime with = *rt; /* the same runtime, more environment (the strings stay the caller's) */
        with.env = env;
        with.n_env = rt->n_env + n_extra;
        const NodeCniCall c = { command, a->container_id, a->netns, a->ifname, args };
        r = run_one(&with, net, 0, bin, &c, NULL, a->caps, a->n_caps, NULL, NULL, &out, e);
        if (r < 0 || !streq(command, "ADD"))
                return r;
        _cleanup_(node_cni_result_freep) NodeCniResult *res = NULL;
        if ((r = node_cni_result_parse(out, strlen(out), &res, e)) < 0)
                return blame(e, net->plugins[0].type, "ADD", r);
        if (ret)
                *ret = TAKE_PTR(res);
        return 0;
}

/* ---------------------------------------------------------------- CHECK */

int node_cni_check(const NodeCniRuntime *rt, const NodeCniNetwork *net, const NodeCniAttachment *a, NodeErr *e) {
        /* Before 0.4.0 there is no CHECK; unlike libcni the plugins are still asked, so that the
         * caller sees their own "incompatible version" error (code 1). */
        if (net->disable_check)
                return 0;
        Cached cached;
        int r = cached_load(rt, net, a, true, &cached, e);
        if (r == -ENOENT || (r >= 0 && !cached.entry->result)) {
                if (r >= 0)
                        cached_done(&cached);
                return node_err_set(e, NODE_ERR_CACHE, NULL, "CHECK", -ENOENT, "CHECK: no cached result for %s/%s/%s",
                                    net->name, a->container_id, a->ifname);
        }
        if (r < 0)
                return r;
        Bins b;
        r = bins_resolve(rt, net, &b, e);
        if (r >= 0) {
                const NodeCniCall c = { "CHECK", a->container_id, a->netns, a->ifname, cached.args };
                const NodeCniArg *caps = cached.caps ? cached.caps : a->caps;
                size_t n_caps = cached.caps ? cached.n_caps : a->n_caps;
                for (size_t i = 0; r >= 0 && i < net->n_plugins; i++)
                        r = run_one(rt, net, i, b.v[i], &c, cached.entry->result, caps, n_caps, NULL, NULL, NULL, e);
                bins_done(&b);
        }
        cached_done(&cached);
        return r;
}

/* ---------------------------------------------------------------- VERSION, STATUS, GC */

static void version_done(NodeCniVersion *v) {
        free(v->type);
        free(v->reply);
        free(v->cni_version);
        node_strs_free(v->supported, v->n_supported);
}

void node_cni_versions_free(NodeCniVersion *v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                version_done(&v[i]);
        free(v);
}

bool node_cni_version_supports(const NodeCniVersion *v, const char *version) {
        for (size_t i = 0; v && i < v->n_supported; i++)
                if (streq(v->supported[i], version))
                        return true;
        return false;
}

static int version_parse(const char *type, const char *out, NodeCniVersion *v, NodeErr *e) {
        json_error_t jerr;
        _cleanup_json_ json_t *o = json_loads(out, 0, &jerr);
        json_t *sv = json_object_get(o, "supportedVersions");
        if (!json_is_object(o) || !json_is_array(sv) || json_array_size(sv) > 64)
                return node_err_set(e, NODE_ERR_RESULT, type, "VERSION", -EBADMSG,
                                    "%s VERSION: not a version reply: %.120s", type, out);
        v->supported = calloc(json_array_size(sv) + 1, sizeof(char *));
        v->cni_version = strdup(json_string_value(json_object_get(o, "cniVersion")) ?: "");
        if (!v->supported || !v->cni_version)
                return -ENOMEM;
        size_t i;
        json_t *s;
        json_array_foreach(sv, i, s) {
                if (!json_is_string(s))
                        return node_err_set(e, NODE_ERR_RESULT, type, "VERSION", -EBADMSG,
                                            "%s VERSION: 'supportedVersions[%zu]' must be a string", type, i);
                if (!(v->supported[v->n_supported] = strdup(json_string_value(s))))
                        return -ENOMEM;
                v->n_supported++;
        }
        return 0;
}

static int version_one(const NodeCniRuntime *rt, const NodeCniNetwork *net, const char *type, NodeCniVersion *v,
                       NodeErr *e) {
        if (!(v->type = strdup(type)))
                return -ENOMEM;
        _cleanup_free_ char *bin = NULL, *in = NULL, *out = NULL;
        int r = node_cni_find_plugin(rt, type, &bin, e);
        if (r < 0)
                return r;
        _cleanup_json_ json_t *o = json_pack("{s:s}", "cniVersion", net->cni_version);
        if (!o || !(in = json_dump_compact(o)))
                return -ENOMEM;
        const NodeCniCall c = { .command = "VERSION" };
        r = node_cni_exec(rt, bin, type, &c, in, &out, e);
        if (r < 0)
                return r;
        r = version_parse(type, out, v, e);
        if (r < 0)
                return r;
        v->reply = TAKE_PTR(out);
        return 0;
}

int node_cni_version(const NodeCniRuntime *rt, const NodeCniNetwork *net, NodeCniVersion **ret, size_t *ret_n,
                     NodeErr *e) {
        NodeCniVersion *v = calloc(net->n_plugins, sizeof *v);
        if (!v)
                return -ENOMEM;
        int first = 0;
        for (size_t i = 0; i < net->n_plugins; i++) {
                int r = version_one(rt, net, net->plugins[i].type, &v[i], e);
                if (r == -ENOMEM) {
                        node_cni_versions_free(v, net->n_plugins);
                        return r;
                }
                if (r < 0) {
                        v[i].error = r;
                        free(v[i].reply);
                        v[i].reply = NULL;
                        if (first == 0)
                                first = r;
                }
        }
        *ret = v;
        *ret_n = net->n_plugins;
        return first;
}

static int status_gc(const NodeCniRuntime *rt, const NodeCniNetwork *net, const char *command, const char *valid_json,
                     bool *ran, NodeErr *e) {
        for (size_t i = 0; ran && i < net->n_plugins; i++)
                ran[i] = false;
        if (node_cni_version_cmp(net->cni_version, "1.1.0") < 0)
                return 0;
        Bins b;
        int r = bins_resolve(rt, net, &b, e);
        if (r < 0)
                return r;
        const NodeCniCall c = { .command = command };
        for (size_t i = 0; r >= 0 && i < net->n_plugins; i++) {
                NodeCniVersion v = { 0 };
                NodeErr ve = { 0 };
                bool ok = version_one(rt, net, net->plugins[i].type, &v, &ve) >= 0 &&
                          node_cni_version_supports(&v, "1.1.0");
                node_err_done(&ve);
                version_done(&v);
                if (!ok)
                        continue;
                r = run_one(rt, net, i, b.v[i], &c, NULL, NULL, 0, valid_json ? "cni.dev/valid-attachments" : NULL,
                            valid_json, NULL, e);
                if (r >= 0 && ran)
                        ran[i] = true;
        }
        bins_done(&b);
        return r;
}

int node_cni_status(const NodeCniRuntime *rt, const NodeCniNetwork *net, bool *ran, NodeErr *e) {
        return status_gc(rt, net, "STATUS", NULL, ran, e);
}

int node_cni_gc(const NodeCniRuntime *rt, const NodeCniNetwork *net, const NodeCniGcAttachment *valid, size_t n_valid,
                bool *ran, NodeErr *e) {
        for (size_t i = 0; ran && i < net->n_plugins; i++)
                ran[i] = false;
        if (net->disable_gc)
                return 0;
        _cleanup_free_ char *json = NULL;
        int r;
        if (valid) {
                _cleanup_json_ json_t *arr = json_array();
                if (!arr)
                        return -ENOMEM;
                for (size_t i = 0; i < n_valid; i++)
                        if (json_array_append_new(arr, json_pack("{s:s, s:s}", "containerID", valid[i].container_id,
                                                                 "ifname", valid[i].ifname)) < 0)
                                return -ENOMEM;
                if (!(json = json_dump_compact(arr)))
                        return -ENOMEM;
        } else if ((r = node_cni_cache_attachments_json(rt->cache_dir, net->name, &json)) < 0)
                return r;
        return status_gc(rt, net, "GC", json, ran, e);
}
