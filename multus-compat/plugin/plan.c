/* SPDX-License-Identifier: Apache-2.0 */
/* What an ADD runs, decided before anything runs: the cluster network (the inline delegates, the
 * clusterNetwork or the pod's default-network override) as CNI_IFNAME, the defaultNetworks, then each
 * requested network in order as net<N> or its requested interface; every NAD read, every config
 * normalised, namespace isolation and interface names checked. */
#include <sys/stat.h>

#include "common/fileio.h"
#include "multus-compat/mc-priv.h"
#include "multus-compat/plugin/plugin.h"

static int push_delegate(McPlugin *p, McCache *c, const char *name, char **conflist, McCap *caps, size_t n_caps,
                         const char *ifname_req) {
        McCachedDelegate *nv = realloc(c->delegates, (c->n_delegates + 1) * sizeof *nv);
        if (!nv) {
                mc_caps_free(caps, n_caps);
                return -ENOMEM;
        }
        c->delegates = nv;
        McCachedDelegate *d = &nv[c->n_delegates];
        *d = (McCachedDelegate) { .master = c->n_delegates == 0 };
        char buf[16];
        snprintf(buf, sizeof buf, "net%zu", c->n_delegates);
        const char *ifname = ifname_req ? ifname_req : d->master ? p->ifname : buf;
        c->n_delegates++;
        d->conflist = TAKE_PTR(*conflist); /* owned by c from here on, whatever follows */
        d->caps = caps;
        d->n_caps = n_caps;
        if (!(d->name = strdup(name)) || !(d->ifname = strdup(ifname ? ifname : "eth0")))
                return -ENOMEM;
        return mc_conflist_default_version(&d->conflist, p->conf->cni_version);
}

static int copy_caps(const McCap *v, size_t n, McCap **ret, size_t *ret_n) {
        McCap *c = n ? calloc(n, sizeof *c) : NULL;
        if (n && !c)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (!(c[i].key = strdup(v[i].key)) || !(c[i].value = strdup(v[i].value))) {
                        mc_caps_free(c, n);
                        return -ENOMEM;
                }
        *ret = c;
        *ret_n = n;
        return 0;
}

/* The runtime's capability args, then the selection's over them (Multus's mergeCNIRuntimeConfig). */
static int merged_caps(McPlugin *p, const McSelection *s, McCap **ret, size_t *ret_n) {
        McCap *sel = NULL, *v = NULL;
        size_t n_sel = 0, n = 0;
        int r = s ? mc_selection_caps(s, &sel, &n_sel) : 0;
        if (r < 0 || (r = copy_caps(p->conf->runtime_config, p->conf->n_runtime_config, &v, &n)) < 0)
                goto out;
        for (size_t i = 0; i < n_sel; i++) {
                size_t j = 0;
                while (j < n && !streq(v[j].key, sel[i].key))
                        j++;
                if (j == n) {
                        McCap *nv = realloc(v, (n + 1) * sizeof *nv);
                        if (!nv) {
                                r = -ENOMEM;
                                goto out;
                        }
                        v = nv;
                        v[n++] = (McCap) {};
                }
                free(v[j].key);
                free(v[j].value);
                v[j] = sel[i];
                sel[i] = (McCap) {};
        }
        *ret = TAKE_PTR(v);
        *ret_n = n;
        n = 0;
out:
        mc_caps_free(sel, n_sel);
        mc_caps_free(v, n);
        return r;
}

/* ---------------------------------------------------------------- the cluster network */

static int conflist_from_path(const char *path, char **ret, KvErr *e) {
        struct stat st;
        _cleanup_free_ char *text = NULL;
        size_t len;
        if (stat(path, &st) < 0)
                return kverr_set_errno(e, KV_ERR_INVALID_CONFIG, negative_errno(), "clusterNetwork '%s'", path);
        if (S_ISDIR(st.st_mode))
                return mc_conflist_from_dir(path, NULL, ret, e);
        int r = read_file_max(path, MC_CONFIG_MAX, &text, &len);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INVALID_CONFIG, r, "clusterNetwork '%s': cannot read", path);
        return mc_conflist_normalize(text, len, path, NULL, NULL, NULL, ret, e);
}

static const char *conflist_name(const char *conflist, char *buf, size_t size) {
        json_t *o = json_loads(conflist, 0, NULL);
        json_t *n = json_object_get(o, "name");
        snprintf(buf, size, "%s", json_is_string(n) ? json_string_value(n) : "");
        json_decref(o);
        return buf;
}

/* A clusterNetwork / defaultNetworks entry: a path, a NAD in multusNamespace, or a network in confDir. */
static int add_named(McPlugin *p, McCache *c, const char *netname, KvErr *e) {
        _cleanup_free_ char *conflist = NULL;
        _cleanup_(mc_nad_freep) McNad *nad = NULL;
        char name[256];
        int r;
        if (strchr(netname, '/')) {
                if ((r = conflist_from_path(netname, &conflist, e)) < 0)
                        return r;
                return push_delegate(p, c, conflist_name(conflist, name, sizeof name), &conflist, NULL, 0, NULL);
        }
        KvErr ignored = {};
        if (mc_api(p) && mc_nad_get(p, p->conf->multus_namespace, netname, &nad, &ignored) >= 0) {
                if ((r = mc_nad_conflist(nad, NULL, p->conf->conf_dir, NULL, &conflist, e)) < 0)
                        return r;
                snprintf(name, sizeof name, "%s/%s", p->conf->multus_namespace, netname);
                return push_delegate(p, c, name, &conflist, NULL, 0, NULL);
        }
        if ((r = mc_conflist_from_dir(p->conf->conf_dir, netname, &conflist, e)) < 0)
                return r;
        return push_delegate(p, c, netname, &conflist, NULL, 0, NULL);
}

static int add_selection(McPlugin *p, McCache *c, const McPod *pod, const McSelection *s, KvErr *e);

int mc_plan_cluster(McPlugin *p, const McPod *pod, McCache *c, KvErr *e) {
        McConfig *conf = p->conf;
        int r;
        if (!conf->cluster_network) {
                for (size_t i = 0; i < conf->n_delegates; i++) {
                        _cleanup_free_ char *list = strdup(conf->delegates[i]);
                        char name[256];
                        if (!list)
                                return -ENOMEM;
                        conflist_name(list, name, sizeof name);
                        if ((r = push_delegate(p, c, name, &list, NULL, 0, NULL)) < 0)
                                return r;
                }
        } else if (pod && pod->default_network) {
                McSelection *s = NULL;
                if ((r = mc_default_network_parse(pod->default_network, conf->multus_namespace, &s, e)) < 0)
                        return r;
                r = add_selection(p, c, NULL, s, e);
                mc_selections_free(s, 1);
                if (r < 0)
                        return r;
        } else if ((r = add_named(p, c, conf->cluster_network, e)) < 0)
                return r;
        if (!conf->cluster_network || !pod || mc_system_namespace(conf, pod->namespace_))
                return 0;
        for (size_t i = 0; i < conf->n_default_networks; i++)
                if ((r = add_named(p, c, conf->default_networks[i], e)) < 0)
                        return r;
        return 0;
}

/* ---------------------------------------------------------------- requested networks */

static int nad_error(int r, const McSelection *s, KvErr *e) {
        KvErr why = *e;
        kverr_clear(e);
        int code = r == -ENOENT ? KV_ERR_INVALID_CONFIG : r == -ECONNREFUSED || r == -ETIMEDOUT || r == -EIO ? KV_ERR_TRY_AGAIN
                                                                                                           : KV_ERR_INVALID_CONFIG;
        return kverr_set(e, code, r, "network '%s/%s': NetworkAttachmentDefinition %s", s->namespace_, s->name,
                         r == -ENOENT ? "not found" : why.msg[0] ? why.msg : strerror(-r));
}

/* pod NULL: the default-network override (master; no runtime caps merged beyond the runtime's). */
static int add_selection(McPlugin *p, McCache *c, const McPod *pod, const McSelection *s, KvErr *e) {
        _cleanup_(mc_nad_freep) McNad *nad = NULL;
        _cleanup_free_ char *conflist = NULL;
        McCap *caps = NULL;
        size_t n_caps = 0;
        char name[320];
        int r;
        if (!mc_api(p))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "network '%s/%s': no 'kubeconfig' or 'apiSocket' to read it with",
                                 s->namespace_, s->name);
        if ((r = mc_nad_get(p, s->namespace_, s->name, &nad, e)) < 0) {
                mc_event_no_network(p, s->namespace_, s->name, e->msg[0] ? e->msg : strerror(-r));
                return nad_error(r, s, e);
        }
        if ((r = mc_nad_conflist(nad, s, p->conf->conf_dir, NULL, &conflist, e)) < 0)
                return r;
        if ((r = merged_caps(p, pod ? s : NULL, &caps, &n_caps)) < 0)
                return r;
        snprintf(name, sizeof name, "%s/%s", s->namespace_, s->name);
        if ((r = push_delegate(p, c, name, &conflist, caps, n_caps, pod ? s->interface : NULL)) < 0 || !pod)
                return r;
        McCachedDelegate *d = &c->delegates[c->n_delegates - 1];
        d->has_default_route = s->has_default_route;
        for (size_t i = 0; i < s->n_gateways; i++)
                if ((r = mc_strv_push(&d->gateways, &d->n_gateways, s->gateways[i])) < 0)
                        return r;
        return 0;
}

/* One default gateway per family at most, as Multus (no ECMP for default-route). */
static int check_gateways(const McCache *c, KvErr *e) {
        unsigned n4 = 0, n6 = 0;
        for (size_t i = 0; i < c->n_delegates; i++)
                for (size_t j = 0; j < c->delegates[i].n_gateways; j++) {
                        bool v6 = strchr(c->delegates[i].gateways[j], ':');
                        if ((v6 ? ++n6 : ++n4) > 1)
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                                 "network '%s': default-route '%s': a second IPv%c default gateway (no ECMP)",
                                                 c->delegates[i].name, c->delegates[i].gateways[j], v6 ? '6' : '4');
                }
        return 0;
}

static int check_isolation(McPlugin *p, const McPod *pod, const McSelection *s, KvErr *e) {
        const McConfig *conf = p->conf;
        if (mc_namespace_allowed(pod->namespace_, s->namespace_, conf->namespace_isolation, conf->global_namespaces,
                                 conf->n_global_namespaces))
                return 0;
        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EPERM,
                         "network '%s/%s': namespace isolation: pod in namespace '%s' may not use a network of namespace '%s'",
                         s->namespace_, s->name, pod->namespace_, s->namespace_);
}

static int check_ifnames(const McCache *c, KvErr *e) {
        for (size_t i = 0; i < c->n_delegates; i++)
                for (size_t j = 0; j < i; j++)
                        if (streq(c->delegates[i].ifname, c->delegates[j].ifname))
                                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EEXIST,
                                                 "network '%s': interface '%s' is already used by network '%s'",
                                                 c->delegates[i].name, c->delegates[i].ifname, c->delegates[j].name);
        return 0;
}

/* auxiliaryCNIChainName: one more delegate after every network, as net<N> (Multus's interface name for it), with the
 * runtime's capability args; its first plugin gets passthru's empty result (mc_aux_seed_result, delegate.c). */
static int plan_aux(McPlugin *p, McCache *c, KvErr *e) {
        _cleanup_free_ char *conflist = NULL;
        McCap *caps = NULL;
        size_t n_caps = 0;
        int r;
        if (!p->conf->auxiliary_cni_chain_name)
                return 0;
        if ((r = mc_aux_conflist(p->conf->cluster_network, p->conf->auxiliary_cni_chain_name, p->conf->cni_version,
                                 &conflist, e)) <= 0 ||
            (r = merged_caps(p, NULL, &caps, &n_caps)) < 0 ||
            (r = push_delegate(p, c, p->conf->auxiliary_cni_chain_name, &conflist, caps, n_caps, NULL)) < 0)
                return r;
        c->delegates[c->n_delegates - 1].aux = true;
        return 0;
}

/* The NADs the plan will read, read at once: defaultNetworks' and the requested networks' (not one that namespace
 * isolation refuses: that one is never read). */
static int prefetch(McPlugin *p, const McPod *pod, const McSelection *sel, size_t n_sel) {
        const McConfig *conf = p->conf;
        bool defaults = conf->cluster_network && pod && !mc_system_namespace(conf, pod->namespace_);
        size_t n = 0;
        _cleanup_free_ KubeRef *v = calloc(conf->n_default_networks + n_sel + 1, sizeof *v);
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; defaults && i < conf->n_default_networks; i++)
                if (!strchr(conf->default_networks[i], '/'))
                        v[n++] = (KubeRef) { "k8s.cni.cncf.io/v1", "network-attachment-definitions", conf->multus_namespace,
                                             conf->default_networks[i] };
        for (size_t i = 0; i < n_sel; i++)
                if (mc_namespace_allowed(pod->namespace_, sel[i].namespace_, conf->namespace_isolation,
                                         conf->global_namespaces, conf->n_global_namespaces))
                        v[n++] = (KubeRef) { "k8s.cni.cncf.io/v1", "network-attachment-definitions", sel[i].namespace_,
                                             sel[i].name };
        return mc_nads_prefetch(p, v, n);
}

int mc_plan_build(McPlugin *p, const McPod *pod, McCache **ret, KvErr *e) {
        _cleanup_(mc_cache_freep) McCache *c = calloc(1, sizeof *c);
        McSelection *sel = NULL;
        size_t n_sel = 0;
        int r, parsed = 0;
        if (!c || !(c->container_id = strdup(p->container_id)) || mc_strdup_opt(p->netns, &c->netns) < 0 ||
            mc_strdup_opt(p->pod_ns, &c->pod_namespace) < 0 || mc_strdup_opt(p->pod_name, &c->pod_name) < 0 ||
            mc_strdup_opt(p->pod_uid, &c->pod_uid) < 0)
                return -ENOMEM;
        /* the annotation parsed first, so that every NAD is read in one go; its error still comes after the cluster
         * network's */
        KvErr parse_e = {};
        if (pod && (parsed = mc_networks_parse(pod->networks, pod->namespace_, &sel, &n_sel, &parse_e)) >= 0 &&
            (r = prefetch(p, pod, sel, n_sel)) < 0) {
                mc_selections_free(sel, n_sel);
                return r;
        }
        if ((r = mc_plan_cluster(p, pod, c, e)) < 0) {
                mc_selections_free(sel, n_sel);
                return r;
        }
        if (parsed < 0) {
                *e = parse_e;
                return parsed;
        }
        for (size_t i = 0; r >= 0 && i < n_sel; i++)
                if ((r = check_isolation(p, pod, &sel[i], e)) >= 0 && (r = add_selection(p, c, pod, &sel[i], e)) >= 0)
                        r = mc_ipamclaim_bind(p, pod, c, &sel[i], e);
        mc_selections_free(sel, n_sel);
        /* the chain after the checks: its net<N> may be a requested interface's name (Multus runs it there anyway) */
        if (r < 0 || (r = check_ifnames(c, e)) < 0 || (r = check_gateways(c, e)) < 0 || (r = plan_aux(p, c, e)) < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}
