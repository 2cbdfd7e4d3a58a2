/* SPDX-License-Identifier: Apache-2.0 */
/* What ADD attached for a container: each delegate's conflist, interface and capability args, written
 * atomically under <cniDir>/kvnet-multus/, so that DEL works when the pod and its NADs are gone. */
#include <fcntl.h>
#include <sys/file.h>

#include "common/fileio.h"
#include "common/json-util.h"
#include "multus-compat/mc-priv.h"

#define CACHE_KIND "kvnet-multus/v1"

McCache *mc_cache_free(McCache *c) {
        if (!c)
                return NULL;
        free(c->container_id);
        free(c->netns);
        free(c->pod_namespace);
        free(c->pod_name);
        free(c->pod_uid);
        for (size_t i = 0; i < c->n_delegates; i++)
                mc_cached_delegate_done(&c->delegates[i]);
        free(c->delegates);
        free(c);
        return NULL;
}

void mc_cached_delegate_done(McCachedDelegate *d) {
        free(d->name);
        free(d->ifname);
        free(d->conflist);
        mc_caps_free(d->caps, d->n_caps);
        mc_strv_free(d->gateways, d->n_gateways);
        *d = (McCachedDelegate) {};
}

int mc_cache_find(const McCache *c, const char *ifname) {
        for (size_t i = 0; i < c->n_delegates; i++)
                if (!c->delegates[i].aux && streq(c->delegates[i].ifname, ifname))
                        return (int) i;
        return -ENOENT;
}

int mc_cache_append(McCache *c, McCachedDelegate *d) {
        McCachedDelegate *nv = realloc(c->delegates, (c->n_delegates + 1) * sizeof *nv);
        if (!nv)
                return -ENOMEM;
        c->delegates = nv;
        nv[c->n_delegates++] = *d;
        *d = (McCachedDelegate) {};
        return 0;
}

void mc_cache_drop(McCache *c, size_t i) {
        if (i >= c->n_delegates)
                return;
        mc_cached_delegate_done(&c->delegates[i]);
        memmove(&c->delegates[i], &c->delegates[i + 1], (c->n_delegates - i - 1) * sizeof *c->delegates);
        c->n_delegates--;
}

int mc_cache_path(const char *dir, const char *container_id, char **ret) {
        if (!*container_id || strchr(container_id, '/') || streq(container_id, ".") || streq(container_id, ".."))
                return -EINVAL;
        return asprintf(ret, "%s/kvnet-multus/%s", dir, container_id) < 0 ? -ENOMEM : 0;
}

/* ---------------------------------------------------------------- to JSON */

static json_t *caps_json(const McCap *v, size_t n) {
        json_t *o = json_object();
        for (size_t i = 0; o && i < n; i++) {
                json_t *x = json_loads(v[i].value, JSON_DECODE_ANY, NULL);
                if (!x || json_object_set_new(o, v[i].key, x) < 0)
                        return json_decref(o), NULL;
        }
        return o;
}

static json_t *delegate_json(const McCachedDelegate *d) {
        json_t *conf = json_loads(d->conflist, 0, NULL), *caps = caps_json(d->caps, d->n_caps);
        if (!conf || !caps) {
                json_decref(conf);
                json_decref(caps);
                return NULL;
        }
        json_t *o = json_pack("{s:s,s:s,s:b,s:o,s:o}", "name", d->name, "ifname", d->ifname, "master", d->master,
                              "conflist", conf, "capabilityArgs", caps);
        if (o && d->aux && json_object_set_new(o, "auxiliaryChain", json_true()) < 0) { /* only then: older files stay */
                json_decref(o);
                return NULL;
        }
        return o;
}

int mc_cache_format(const McCache *c, char **ret) {
        _cleanup_json_ json_t *o = json_pack("{s:s,s:s,s:s,s:[]}", "kind", CACHE_KIND, "containerID", c->container_id,
                                             "netns", c->netns ? c->netns : "", "delegates");
        if (!o)
                return -ENOMEM;
        if (c->pod_name && json_object_set_new(o, "pod", json_pack("{s:s,s:s,s:s}", "namespace", c->pod_namespace, "name",
                                                                     c->pod_name, "uid", c->pod_uid ? c->pod_uid : "")) < 0)
                return -ENOMEM;
        json_t *a = json_object_get(o, "delegates");
        for (size_t i = 0; i < c->n_delegates; i++) {
                json_t *d = delegate_json(&c->delegates[i]);
                if (!d || json_array_append_new(a, d) < 0)
                        return -ENOMEM;
        }
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* ---------------------------------------------------------------- from JSON */

static int parse_delegate(json_t *o, const char *ctx, McCachedDelegate *d, KvErr *e) {
        const char *name = NULL, *ifname = NULL, *k;
        json_t *conf = NULL, *caps = NULL, *v;
        int r;
        if ((r = json_get_string(o, ctx, "name", true, &name, e)) < 0 ||
            (r = json_get_string(o, ctx, "ifname", true, &ifname, e)) < 0 ||
            (r = json_get_bool(o, ctx, "master", false, &d->master, e)) < 0 ||
            (r = json_get_bool(o, ctx, "auxiliaryChain", false, &d->aux, e)) < 0 ||
            (r = json_get_object(o, ctx, "conflist", true, &conf, e)) < 0 ||
            (r = json_get_object(o, ctx, "capabilityArgs", false, &caps, e)) < 0)
                return r;
        if (!mc_ifname_valid(ifname))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s: invalid 'ifname' '%s'", ctx, ifname);
        if (!(d->name = strdup(name)) || !(d->ifname = strdup(ifname)) ||
            !(d->conflist = json_dumps(conf, JSON_COMPACT | JSON_PRESERVE_ORDER)))
                return -ENOMEM;
        json_object_foreach(caps, k, v)
                if ((r = mc_caps_push(&d->caps, &d->n_caps, k, v)) < 0)
                        return r;
        return 0;
}

static int parse_pod(json_t *o, McCache *c, KvErr *e) {
        json_t *pod = NULL;
        const char *ns = NULL, *name = NULL, *uid = NULL;
        int r = json_get_object(o, "cache", "pod", false, &pod, e);
        if (r <= 0)
                return r;
        if ((r = json_get_string(pod, "cache.pod", "namespace", true, &ns, e)) < 0 ||
            (r = json_get_string(pod, "cache.pod", "name", true, &name, e)) < 0 ||
            (r = json_get_string(pod, "cache.pod", "uid", false, &uid, e)) < 0)
                return r;
        if (mc_strdup_opt(ns, &c->pod_namespace) < 0 || mc_strdup_opt(name, &c->pod_name) < 0 ||
            mc_strdup_opt(uid && *uid ? uid : NULL, &c->pod_uid) < 0)
                return -ENOMEM;
        return 0;
}

static int parse_cache(json_t *o, McCache *c, KvErr *e) {
        const char *kind = NULL, *cid = NULL, *netns = NULL;
        json_t *a = NULL, *d;
        size_t i;
        int r;
        if ((r = json_get_string(o, "cache", "kind", true, &kind, e)) < 0 ||
            (r = json_get_string(o, "cache", "containerID", true, &cid, e)) < 0 ||
            (r = json_get_string(o, "cache", "netns", false, &netns, e)) < 0 ||
            (r = json_get_array(o, "cache", "delegates", true, &a, e)) < 0 || (r = parse_pod(o, c, e)) < 0)
                return r;
        if (!streq(kind, CACHE_KIND))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "cache: 'kind' must be %s, got '%s'", CACHE_KIND, kind);
        if (json_array_size(a) > MC_NETWORKS_MAX + 1 + 16)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -E2BIG, "cache: too many delegates");
        if (!(c->container_id = strdup(cid)) || mc_strdup_opt(netns && *netns ? netns : NULL, &c->netns) < 0 ||
            !(c->delegates = calloc(json_array_size(a) + 1, sizeof *c->delegates)))
                return -ENOMEM;
        json_array_foreach(a, i, d) {
                char ctx[48];
                snprintf(ctx, sizeof ctx, "cache: delegates[%zu]", i);
                c->n_delegates = i + 1;
                if (!json_is_object(d))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "%s must be an object", ctx);
                if ((r = parse_delegate(d, ctx, &c->delegates[i], e)) < 0)
                        return r;
        }
        return 0;
}

int mc_cache_parse(const char *text, size_t len, McCache **ret, KvErr *e) {
        _cleanup_json_ json_t *o = NULL;
        int r;
        if ((r = mc_json_load(text, len, "cache", &o, e)) < 0)
                return r;
        if (!json_is_object(o))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "cache: must be an object");
        _cleanup_(mc_cache_freep) McCache *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        if ((r = parse_cache(o, c, e)) < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

/* ---------------------------------------------------------------- files */

int mc_cache_load(const char *dir, const char *container_id, McCache **ret, KvErr *e) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t len;
        int r = mc_cache_path(dir, container_id, &path);
        if (r < 0)
                return kverr_set(e, KV_ERR_INVALID_ENV, r, "CNI_CONTAINERID '%s' cannot name a cache file", container_id);
        if ((r = read_file_max(path, MC_CONFIG_MAX, &text, &len)) < 0) {
                if (r == -ENOENT)
                        return r;
                return kverr_set_errno(e, KV_ERR_IO, r, "cache '%s': cannot read", path);
        }
        return mc_cache_parse(text, len, ret, e);
}

int mc_cache_save(const char *dir, const McCache *c, KvErr *e) {
        _cleanup_free_ char *path = NULL, *sub = NULL, *text = NULL;
        int r = mc_cache_path(dir, c->container_id, &path);
        if (r < 0)
                return kverr_set(e, KV_ERR_INVALID_ENV, r, "CNI_CONTAINERID '%s' cannot name a cache file", c->container_id);
        if (asprintf(&sub, "%s/kvnet-multus", dir) < 0 || mc_cache_format(c, &text) < 0)
                return -ENOMEM;
        if ((r = mkdir_p(sub, 0700)) < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "cniDir '%s': cannot create", sub);
        if ((r = write_file_atomic(path, text, strlen(text), true)) < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "cache '%s': cannot write", path);
        return 0;
}

int mc_cache_remove(const char *dir, const char *container_id) {
        _cleanup_free_ char *path = NULL;
        int r = mc_cache_path(dir, container_id, &path);
        if (r < 0)
                return r;
        r = unlink_durable(path, true);
        return r == -ENOENT ? 0 : r;
}

int mc_cache_lock(const char *dir, int *ret_fd, KvErr *e) {
        _cleanup_free_ char *sub = NULL;
        int r;
        if (asprintf(&sub, "%s/kvnet-multus", dir) < 0)
                return -ENOMEM;
        if ((r = mkdir_p(sub, 0700)) < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "cniDir '%s': cannot create", sub);
        _cleanup_close_ int fd = open(sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return kverr_set_errno(e, KV_ERR_IO, negative_errno(), "cniDir '%s': cannot open", sub);
        while (flock(fd, LOCK_EX) < 0)
                if (errno != EINTR)
                        return kverr_set_errno(e, KV_ERR_IO, negative_errno(), "cniDir '%s': cannot lock", sub);
        *ret_fd = TAKE_FD(fd);
        return 0;
}
