/* SPDX-License-Identifier: Apache-2.0 */
/* Hot-plug: KVNET_MULTUS_INTERFACE=<ifname> with ADD or DEL, one secondary network of a pod that was added
 * already (a NIC plugged into or out of a running VM). Multus's thick plugin has a "delegate" endpoint for
 * this; kvnet-multus is exec-only, so the variable selects it.
 *
 * ADD reads the pod's current networks annotation and plans as a full ADD would (every network resolved and
 * checked), then attaches the selection of that interface alone: its delegate goes into the container's cache
 * before it runs (a crash leaves it DELable), a failure DELs it and takes it out again, and network-status gets
 * its entries after the others. DEL works from the cache alone (the network may be gone from the annotation and
 * its NAD deleted): that delegate's DEL, out of the cache, its entries out of network-status (best effort).
 * Hot-plugs are serialised by a lock on the cache directory. */
#include "multus-compat/mc-priv.h"
#include "multus-compat/plugin/plugin.h"

static int load_cache(McPlugin *p, McCache **ret, KvErr *e) {
        int r = mc_cache_load(p->conf->cni_dir, p->container_id, ret, e);
        if (r == -ENOENT)
                return kverr_set(e, KV_ERR_UNKNOWN_CONTAINER, r,
                                 "%s='%s': container '%s' was not added by kvnet-multus (no cache): ADD the pod first",
                                 MC_HOTPLUG_ENV, p->hotplug, p->container_id);
        return r;
}

/* The pod of CNI_ARGS must be the one the container was added for. */
static int check_pod(const McPlugin *p, const McCache *c, KvErr *e) {
        if (!p->pod_name || !p->conf->kubeconfig)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "%s='%s': hot-plug reads the pod's %s annotation: it needs K8S_POD_NAMESPACE and "
                                 "K8S_POD_NAME in CNI_ARGS and a 'kubeconfig'",
                                 MC_HOTPLUG_ENV, p->hotplug, MC_NETWORKS_ANNOT);
        if (c->pod_name && (!streq(c->pod_namespace, p->pod_ns) || !streq(c->pod_name, p->pod_name)))
                return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL,
                                 "%s='%s': CNI_ARGS names pod %s/%s, container '%s' was added for pod %s/%s", MC_HOTPLUG_ENV,
                                 p->hotplug, p->pod_ns, p->pod_name, c->container_id, c->pod_namespace, c->pod_name);
        return 0;
}

/* The selection of the interface from a full plan, moved into the container's cache. */
static int take_planned(McPlugin *p, McCache *plan, McCache *c, KvErr *e) {
        int i = mc_cache_find(plan, p->hotplug);
        if (i <= 0) /* index 0: the cluster network, refused earlier by its name; a master of another name too */
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ENOENT,
                                 "%s='%s': interface '%s' is not in the pod's %s annotation (pod %s/%s)", MC_HOTPLUG_ENV,
                                 p->hotplug, p->hotplug, MC_NETWORKS_ANNOT, p->pod_ns, p->pod_name);
        plan->delegates[i].master = false;
        return mc_cache_append(c, &plan->delegates[i]);
}

static bool any_default_route(const McCache *plan) {
        for (size_t i = 0; i < plan->n_delegates; i++)
                if (plan->delegates[i].has_default_route)
                        return true;
        return false;
}

static int status_error(const McPlugin *p, int r, KvErr *e) {
        KvErr why = *e;
        kverr_clear(e);
        return kverr_set(e, r == -ENOENT ? KV_ERR_INVALID_CONFIG : KV_ERR_TRY_AGAIN, r, "pod %s/%s: writing %s failed: %s",
                         p->pod_ns, p->pod_name, MC_NETWORK_STATUS_ANNOT, why.msg[0] ? why.msg : strerror(-r));
}

/* network-status: the pod's entries as they are (read by this ADD, under the lock), the new network's after them. */
static int status_append(McPlugin *p, const McPod *pod, const McCachedDelegate *d, const NodeCniResult *res, KvErr *e) {
        _cleanup_free_ char *text = NULL;
        McStatus *v = NULL;
        size_t n = 0;
        if (!mc_status_wanted(p, pod->namespace_))
                return 0;
        int r = mc_statuses_add(d, res, &v, &n, e);
        if (r >= 0)
                r = mc_status_append(pod->network_status, v, n, &text, e);
        mc_statuses_free(v, n);
        if (r < 0)
                return r;
        if ((r = mc_pod_set_status(p, pod->namespace_, pod->name, text, e)) < 0)
                return status_error(p, r, e);
        return 0;
}

int mc_cmd_add_one(McPlugin *p, FILE *out, KvErr *e) {
        _cleanup_close_ int lock = -EBADF;
        _cleanup_(mc_cache_freep) McCache *c = NULL, *plan = NULL;
        _cleanup_(mc_pod_freep) McPod *pod = NULL;
        NodeCniResult *res = NULL;
        int r, i;
        if ((r = mc_cache_lock(p->conf->cni_dir, &lock, e)) < 0 || (r = load_cache(p, &c, e)) < 0)
                return r;
        if ((i = mc_cache_find(c, p->hotplug)) >= 0)
                return kverr_set(e, KV_ERR_EXISTS, -EEXIST, "interface %s is already attached (network %s)", p->hotplug,
                                 c->delegates[i].name);
        if ((r = check_pod(p, c, e)) < 0 || (r = mc_pod_load(p, &pod, e)) < 0 || (r = mc_plan_build(p, pod, &plan, e)) < 0 ||
            (r = take_planned(p, plan, c, e)) < 0)
                return r;
        McCachedDelegate *d = &c->delegates[c->n_delegates - 1];
        _cleanup_(node_cni_network_freep) NodeCniNetwork *net = NULL;
        if ((r = mc_delegate_network(d, &net, e)) < 0 || (r = mc_cache_save(p->conf->cni_dir, c, e)) < 0)
                return r;
        r = mc_delegate_add(p, c, d, &res, e);
        /* default-route (as ADD): once any network of the pod asks for it, this interface's default routes are
         * its requested gateways alone; the other interfaces' routes are not touched */
        if (r >= 0 && any_default_route(plan) &&
            (r = mc_route_apply(p->netns, d->ifname, true, true, d->gateways, d->n_gateways, e)) < 0)
                snprintf(e->details, sizeof e->details, "network '%s' (%s)", d->name, d->ifname);
        if (r >= 0 && (r = status_append(p, pod, d, res, e)) >= 0)
                r = mc_result_print(out, res, e);
        if (r >= 0) { /* Multus's delegate ADD posts it for a hot-plugged interface too */
                McAddEvents ev = {};
                if (mc_events_note(&ev, d, res) >= 0)
                        mc_events_post_added(p, pod, &ev);
                mc_events_done(&ev);
        }
        if (r < 0) {
                KvErr ignored = {};
                IGNORE_RESULT(mc_delegate_del(p, c, d, &ignored));
                mc_cache_drop(c, c->n_delegates - 1);
                IGNORE_RESULT(mc_cache_save(p->conf->cni_dir, c, &ignored));
        }
        node_cni_result_free(res);
        return r;
}

/* Best effort, as the full DEL: the pod's entries of that network go when the pod is still the cache's. */
static void status_remove(McPlugin *p, const McCache *c, const McCachedDelegate *d) {
        _cleanup_(mc_pod_freep) McPod *pod = NULL;
        _cleanup_free_ char *text = NULL;
        KvErr ignored = {};
        size_t removed = 0;
        bool once = true; /* the network attached on this interface alone: all its entries are this one's */
        if (!c->pod_name || !mc_api_configured(p->conf) || mc_kube_connect(p, &ignored) < 0 ||
            !mc_status_wanted(p, c->pod_namespace))
                return;
        for (size_t i = 0; i < c->n_delegates; i++)
                if (&c->delegates[i] != d && streq(c->delegates[i].name, d->name))
                        once = false;
        if (mc_pod_get_named(p, c->pod_namespace, c->pod_name, &pod, &ignored) < 0 ||
            (c->pod_uid && pod->uid && !streq(c->pod_uid, pod->uid)) || !pod->network_status ||
            mc_status_remove(pod->network_status, d->name, d->ifname, once, &text, &removed, &ignored) < 0 || removed == 0)
                return;
        IGNORE_RESULT(mc_pod_set_status(p, c->pod_namespace, c->pod_name, text, &ignored));
}

int mc_cmd_del_one(McPlugin *p, KvErr *e) {
        _cleanup_close_ int lock = -EBADF;
        _cleanup_(mc_cache_freep) McCache *c = NULL;
        int r = mc_cache_lock(p->conf->cni_dir, &lock, e), i;
        if (r < 0)
                return r;
        r = mc_cache_load(p->conf->cni_dir, p->container_id, &c, e);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if ((i = mc_cache_find(c, p->hotplug)) < 0)
                return 0;
        McCachedDelegate *d = &c->delegates[i];
        if (d->master)
                return kverr_set(e, KV_ERR_INVALID_ENV, -EINVAL, "%s='%s' is the cluster network's interface (network %s)",
                                 MC_HOTPLUG_ENV, p->hotplug, d->name);
        /* retryDeleteOnError: a failed DEL keeps the delegate cached for the retry; else, as the full DEL, the
         * error is returned once and the delegate goes */
        if ((r = mc_delegate_del(p, c, d, e)) < 0 && p->conf->retry_delete_on_error)
                return r;
        status_remove(p, c, d);
        mc_cache_drop(c, (size_t) i);
        KvErr se = {};
        int s = mc_cache_save(p->conf->cni_dir, c, &se);
        if (r >= 0 && s < 0) {
                *e = se;
                return s;
        }
        return r;
}
