/* SPDX-License-Identifier: Apache-2.0 */
/* ADD: the pod and its networks read and checked first, the plan cached, then each delegate in order; a
 * failure DELs what was added (reverse) and returns the error naming the network; network-status is
 * patched onto the pod; the cluster network's result is printed as its plugin wrote it (as Multus does). */
#include <sys/stat.h>
#include <time.h>

#include "multus-compat/plugin/plugin.h"

#define READINESS_WAIT_S 45

static int wait_readiness(const McConfig *conf, KvErr *e) {
        struct stat st;
        if (!conf->readiness_indicator_file)
                return 0;
        for (int i = 0; i < READINESS_WAIT_S * 4; i++) {
                if (stat(conf->readiness_indicator_file, &st) == 0)
                        return 0;
                nanosleep(&(struct timespec) { 0, 250 * 1000 * 1000 }, NULL);
        }
        return kverr_set(e, KV_ERR_TRY_AGAIN, -ETIMEDOUT,
                         "readinessindicatorfile '%s' does not exist after %d s: is the default network ready?",
                         conf->readiness_indicator_file, READINESS_WAIT_S);
}

bool mc_system_namespace(const McConfig *conf, const char *ns) {
        for (size_t i = 0; ns && i < conf->n_system_namespaces; i++)
                if (streq(conf->system_namespaces[i], ns))
                        return true;
        return false;
}

/* network-status is not written for a pod of a system namespace (Multus's systemNamespaces), nor without an API. */
bool mc_status_wanted(const McPlugin *p, const char *ns) {
        return mc_api(p) && ns && !mc_system_namespace(p->conf, ns);
}

/* The pod of CNI_ARGS, when there is one and a kubeconfig: it must exist and be the one of K8S_POD_UID. */
int mc_pod_load(McPlugin *p, McPod **ret, KvErr *e) {
        int r;
        *ret = NULL;
        if (!p->pod_name || !mc_api_configured(p->conf))
                return 0;
        if ((r = mc_kube_connect(p, e)) < 0)
                return r;
        if ((r = mc_pod_get(p, ret, e)) < 0) {
                KvErr why = *e;
                kverr_clear(e);
                return kverr_set(e, r == -ENOENT ? KV_ERR_INVALID_CONFIG : KV_ERR_TRY_AGAIN, r, "pod %s/%s: %s", p->pod_ns,
                                 p->pod_name, why.msg[0] ? why.msg : strerror(-r));
        }
        if (p->pod_uid && (*ret)->uid && !streq(p->pod_uid, (*ret)->uid) && !(*ret)->static_pod)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ESTALE, "pod %s/%s: K8S_POD_UID is '%s', the API's pod has '%s'",
                                 p->pod_ns, p->pod_name, p->pod_uid, (*ret)->uid);
        return 0;
}

/* Every delegate's config is parsed by node/ before any runs. */
static int check_configs(const McCache *c, KvErr *e) {
        for (size_t i = 0; i < c->n_delegates; i++) {
                _cleanup_(node_cni_network_freep) NodeCniNetwork *net = NULL;
                int r = mc_delegate_network(&c->delegates[i], &net, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The requested deviceID, when it is a PCI address (an SR-IOV VF): device-info of network-status. */
static const char *pci_of(const McCachedDelegate *d, char buf[static 16]) {
        for (size_t i = 0; i < d->n_caps; i++)
                if (streq(d->caps[i].key, "deviceID") && sscanf(d->caps[i].value, "\"%15[^\"]\"", buf) == 1 &&
                    mc_pci_address_valid(buf))
                        return buf;
        return NULL;
}

int mc_statuses_add(const McCachedDelegate *d, const NodeCniResult *res, McStatus **v, size_t *n, KvErr *e) {
        McStatus *s = NULL;
        size_t k = 0;
        char pci[16];
        int r = mc_status_from_result(res->raw, strlen(res->raw), d->name, d->master, pci_of(d, pci), &s, &k, e);
        if (r < 0)
                return r;
        McStatus *nv = realloc(*v, (*n + k + 1) * sizeof *nv);
        if (!nv) {
                mc_statuses_free(s, k);
                return -ENOMEM;
        }
        memcpy(nv + *n, s, k * sizeof *s);
        free(s);
        *v = nv;
        *n += k;
        return 0;
}

typedef struct AddRun {
        NodeCniResult *master;
        McStatus *statuses;
        size_t n_statuses;
        size_t added;
        McAddEvents events;
} AddRun;

/* parallelDelegates: all at once; a failure rolls back every one (DEL of one never added succeeds). */
static int run_parallel(McPlugin *p, const McCache *c, AddRun *run, KvErr *e) {
        _cleanup_free_ NodeCniResult **res = calloc(c->n_delegates + 1, sizeof *res);
        if (!res)
                return -ENOMEM;
        int r = mc_delegates_add_parallel(p, c, res, e);
        run->added = c->n_delegates;
        for (size_t i = 0; r >= 0 && i < c->n_delegates; i++)
                if ((r = mc_statuses_add(&c->delegates[i], res[i], &run->statuses, &run->n_statuses, e)) >= 0)
                        r = mc_events_note(&run->events, &c->delegates[i], res[i]);
        run->master = TAKE_PTR(res[0]);
        for (size_t i = 1; i < c->n_delegates; i++)
                node_cni_result_free(res[i]);
        return r;
}

/* The cache is saved, durably, before any delegate is given its config: behind node/'s start gate of the first
 * delegate, so that the fsyncs overlap that delegate's start (exec, loading) instead of coming before it. */
typedef struct CacheGate {
        const McPlugin *p;
        const McCache *c;
        bool done;
        int r;
        KvErr e;
} CacheGate;

static int cache_gate(void *userdata) {
        CacheGate *g = userdata;
        if (!g->done) {
                g->done = true;
                g->r = mc_cache_save(g->p->conf->cni_dir, g->c, &g->e);
        }
        return g->r;
}

static int run_delegates(McPlugin *p, const McCache *c, AddRun *run, KvErr *e) {
        if (p->conf->parallel_delegates && c->n_delegates > 1) {
                int r = mc_cache_save(p->conf->cni_dir, c, e);
                return r < 0 ? r : run_parallel(p, c, run, e);
        }
        CacheGate gate = { .p = p, .c = c };
        for (size_t i = 0; i < c->n_delegates; i++) {
                NodeCniResult *res = NULL;
                if (i == 0) {
                        p->rt->start_gate = cache_gate;
                        p->rt->start_gate_data = &gate;
                }
                int r = mc_delegate_add(p, c, &c->delegates[i], &res, e);
                p->rt->start_gate = NULL;
                if (r >= 0 && !gate.done) /* the delegate ran no plugin: the cache still comes before the next */
                        r = cache_gate(&gate);
                if (gate.r < 0) {
                        kverr_clear(e);
                        *e = gate.e;
                        node_cni_result_free(res);
                        return gate.r;
                }
                if (r < 0)
                        return r;
                run->added = i + 1;
                r = mc_statuses_add(&c->delegates[i], res, &run->statuses, &run->n_statuses, e);
                if (r >= 0)
                        r = mc_events_note(&run->events, &c->delegates[i], res);
                if (i == 0)
                        run->master = res;
                else
                        node_cni_result_free(res);
                if (r < 0)
                        return r;
        }
        return c->n_delegates ? 0 : mc_cache_save(p->conf->cni_dir, c, e);
}

/* default-route (Multus): once any network asks for it, every interface's default routes go and the
 * requested gateways become the default routes. */
static int apply_default_routes(McPlugin *p, const McCache *c, KvErr *e) {
        bool any = false;
        for (size_t i = 0; i < c->n_delegates; i++)
                any = any || c->delegates[i].has_default_route;
        for (size_t i = 0; any && i < c->n_delegates; i++) {
                const McCachedDelegate *d = &c->delegates[i];
                if (d->aux) /* no interface of its own: its empty result gets no gateway filtering in Multus */
                        continue;
                int r = mc_route_apply(p->netns, d->ifname, true, true, d->gateways, d->n_gateways, e);
                if (r < 0) {
                        snprintf(e->details, sizeof e->details, "network '%s' (%s)", d->name, d->ifname);
                        return r;
                }
        }
        return 0;
}

static int write_status(McPlugin *p, const McCache *c, const AddRun *run, KvErr *e) {
        _cleanup_free_ char *text = NULL;
        if (!c->pod_name || !mc_status_wanted(p, c->pod_namespace))
                return 0;
        int r = mc_status_format(run->statuses, run->n_statuses, &text);
        if (r < 0)
                return r;
        if ((r = mc_pod_set_status(p, c->pod_namespace, c->pod_name, text, e)) < 0) {
                KvErr why = *e;
                kverr_clear(e);
                return kverr_set(e, r == -ENOENT ? KV_ERR_INVALID_CONFIG : KV_ERR_TRY_AGAIN, r,
                                 "pod %s/%s: writing %s failed: %s", c->pod_namespace, c->pod_name, MC_NETWORK_STATUS_ANNOT,
                                 why.msg[0] ? why.msg : strerror(-r));
        }
        return 0;
}

int mc_result_print(FILE *out, const NodeCniResult *res, KvErr *e) {
        if (fputs(res->raw, out) == EOF || fputc('\n', out) == EOF || fflush(out) == EOF)
                return kverr_set(e, KV_ERR_IO, -EIO, "stdout: writing the result failed");
        return 0;
}

int mc_cmd_add(McPlugin *p, FILE *out, KvErr *e) {
        _cleanup_(mc_pod_freep) McPod *pod = NULL;
        _cleanup_(mc_cache_freep) McCache *c = NULL;
        AddRun run = {};
        int r;
        if ((r = wait_readiness(p->conf, e)) < 0 || (r = mc_pod_load(p, &pod, e)) < 0 || (r = mc_plan_build(p, pod, &c, e)) < 0 ||
            (r = check_configs(c, e)) < 0)
                return r;
        if ((r = run_delegates(p, c, &run, e)) >= 0 && (r = apply_default_routes(p, c, e)) >= 0 &&
            (r = write_status(p, c, &run, e)) >= 0)
                r = mc_result_print(out, run.master, e);
        if (r >= 0)
                mc_events_post_added(p, pod, &run.events);
        if (r < 0) {
                KvErr ignored = {};
                IGNORE_RESULT(mc_delegates_del(p, c, run.added, &ignored));
                IGNORE_RESULT(mc_cache_remove(p->conf->cni_dir, c->container_id));
        }
        node_cni_result_free(run.master);
        mc_statuses_free(run.statuses, run.n_statuses);
        mc_events_done(&run.events);
        return r;
}
