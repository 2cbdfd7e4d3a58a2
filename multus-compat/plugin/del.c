/* SPDX-License-Identifier: Apache-2.0 */
/* DEL, CHECK, STATUS and GC. DEL and CHECK work from the per-container cache ADD wrote, so neither the pod
 * nor its NADs need to exist any more; DEL of a container never added (or already deleted) succeeds. */
#include <dirent.h>
#include <sys/stat.h>

#include "common/json-util.h"
#include "multus-compat/mc-priv.h"
#include "multus-compat/plugin/plugin.h"

/* Best effort on DEL: the pod's network-status goes when the pod is still the one of the cache. A pod of a system
 * namespace has none (ADD did not write it; Multus's DEL does not clear it either): the API is not asked. */
static void clear_status(McPlugin *p, const McCache *c) {
        _cleanup_(mc_pod_freep) McPod *pod = NULL;
        KvErr ignored = {};
        if (!c->pod_name || !mc_api_configured(p->conf) || mc_system_namespace(p->conf, c->pod_namespace) ||
            mc_kube_connect(p, &ignored) < 0)
                return;
        int r = mc_pod_get_named(p, c->pod_namespace, c->pod_name, &pod, &ignored);
        if (r < 0 || (c->pod_uid && pod->uid && !streq(c->pod_uid, pod->uid)))
                return;
        IGNORE_RESULT(mc_pod_set_status(p, c->pod_namespace, c->pod_name, NULL, &ignored));
}

int mc_cmd_del(McPlugin *p, KvErr *e) {
        _cleanup_(mc_cache_freep) McCache *c = NULL;
        int r = mc_cache_load(p->conf->cni_dir, p->container_id, &c, e);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        /* retryDeleteOnError: a failed delegate DEL keeps the cache, so that the runtime's retry DELs again;
         * else, as Multus, the error is returned once and the cache goes (a retry finds nothing to do). */
        if ((r = mc_delegates_del(p, c, c->n_delegates, e)) < 0 && p->conf->retry_delete_on_error)
                return r;
        clear_status(p, c);
        int rm = mc_cache_remove(p->conf->cni_dir, c->container_id);
        if (r < 0)
                return r;
        if (rm < 0)
                return kverr_set_errno(e, KV_ERR_IO, rm, "cache of container '%s': cannot remove", c->container_id);
        return 0;
}

int mc_cmd_check(McPlugin *p, KvErr *e) {
        _cleanup_(mc_cache_freep) McCache *c = NULL;
        int r = mc_cache_load(p->conf->cni_dir, p->container_id, &c, e);
        if (r == -ENOENT)
                return kverr_set(e, KV_ERR_UNKNOWN_CONTAINER, r, "container '%s': nothing attached by kvnet-multus",
                                 p->container_id);
        if (r < 0)
                return r;
        for (size_t i = 0; i < c->n_delegates; i++)
                if ((r = mc_delegate_check(p, c, &c->delegates[i], e)) < 0)
                        return r;
        return 0;
}

/* STATUS: the readiness indicator, then the cluster network's plugins (those that support STATUS). */
int mc_cmd_status(McPlugin *p, KvErr *e) {
        _cleanup_(mc_cache_freep) McCache *c = calloc(1, sizeof *c);
        struct stat st;
        int r;
        if (!c)
                return -ENOMEM;
        if (p->conf->readiness_indicator_file && stat(p->conf->readiness_indicator_file, &st) < 0)
                return kverr_set(e, KV_ERR_NOT_AVAILABLE, -ENOENT, "readinessindicatorfile '%s' does not exist",
                                 p->conf->readiness_indicator_file);
        if (mc_api_configured(p->conf) && (r = mc_kube_connect(p, e)) < 0)
                return r;
        if ((r = mc_plan_cluster(p, NULL, c, e)) < 0)
                return r;
        for (size_t i = 0; i < c->n_delegates; i++) {
                _cleanup_(node_cni_network_freep) NodeCniNetwork *net = NULL;
                NodeErr ne = {};
                if ((r = mc_delegate_network(&c->delegates[i], &net, e)) < 0)
                        return r;
                r = node_cni_status(p->rt, net, NULL, &ne);
                if (r < 0)
                        kverr_set(e, ne.kind == NODE_ERR_PLUGIN && ne.code > 0 ? (int) ne.code : KV_ERR_NOT_AVAILABLE, r,
                                  "network '%s': %s", c->delegates[i].name, ne.msg[0] ? ne.msg : strerror(-r));
                node_err_done(&ne);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* ---------------------------------------------------------------- GC */

typedef struct Valid {
        char **cids;
        size_t n;
} Valid;

static int valid_parse(McPlugin *p, Valid *v, KvErr *e) {
        _cleanup_json_ json_t *o = NULL;
        json_t *a, *x;
        size_t i;
        int r = mc_json_load(p->stdin_text, p->stdin_len, "netconf", &o, e);
        if (r < 0)
                return r;
        a = json_object_get(o, "cni.dev/valid-attachments");
        json_array_foreach(a, i, x) {
                json_t *cid = json_object_get(x, "containerID");
                if (!json_is_string(cid))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "netconf: 'cni.dev/valid-attachments[%zu].containerID' must be a string", i);
                if (mc_strv_push(&v->cids, &v->n, json_string_value(cid)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static bool valid_has(const Valid *v, const char *cid) {
        for (size_t i = 0; i < v->n; i++)
                if (streq(v->cids[i], cid))
                        return true;
        return false;
}

/* GC: every cached container the runtime no longer lists is DELeted from its cache. */
int mc_cmd_gc(McPlugin *p, KvErr *e) {
        _cleanup_free_ char *dir = NULL;
        Valid v = {};
        int r = valid_parse(p, &v, e), first = 0;
        if (r < 0 || asprintf(&dir, "%s/kvnet-multus", p->conf->cni_dir) < 0) {
                mc_strv_free(v.cids, v.n);
                return r < 0 ? r : -ENOMEM;
        }
        DIR *d = opendir(dir);
        for (struct dirent *de; d && (de = readdir(d));) {
                _cleanup_(mc_cache_freep) McCache *c = NULL;
                KvErr ce = {};
                if (de->d_name[0] == '.' || valid_has(&v, de->d_name))
                        continue;
                if (mc_cache_load(p->conf->cni_dir, de->d_name, &c, &ce) < 0)
                        continue;
                if ((r = mc_delegates_del(p, c, c->n_delegates, e)) < 0) {
                        first = first ? first : r;
                        continue;
                }
                IGNORE_RESULT(mc_cache_remove(p->conf->cni_dir, c->container_id));
        }
        if (d)
                closedir(d);
        mc_strv_free(v.cids, v.n);
        return first;
}
