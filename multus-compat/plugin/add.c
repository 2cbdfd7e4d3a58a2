/* SPDX-License-Identifier: Apache-2.0 */
/* ADD: the pod and its networks read and checked first, the plan cached, then each delegate in order; a
 * failure DELs what was added (reverse) and returns the error naming the network; network-status is
 * patched onto the pod; the cluster network's result is printed as its plugin wrote it (as Multus does). */
#include <pthread.h>
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
        return p->kc && ns && !mc_system_namespace(p->conf, ns);
}

/* The pod of CNI_ARGS, when there is one and a kubeconfig: it must exist and be the one of K8S_POD_UID. */
int mc_pod_load(McPlugin *p, McPod **ret, KvErr *e) {
        int r;
        *ret = NULL;
        if (!p->pod_name || !p->conf->kubeconfig)
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

/* Delegate i's ADD; while the cache is not saved, the gate saves it before the plugin reads its config. */
static int add_gated(McPlugin *p, const McCache *c, size_t i, CacheGate *gate, NodeCniResult **res, KvErr *e) {
        if (!gate->done) {
                p->rt->start_gate = cache_gate;
                p->rt->start_gate_data = gate;
        }
        int r = mc_delegate_add(p, c, &c->delegates[i], res, e);
        p->rt->start_gate = NULL;
        if (r >= 0 && !gate->done) /* the delegate ran no plugin: the cache still comes before the next */
                r = cache_gate(gate);
        if (gate->r < 0) {
                kverr_clear(e);
                *e = gate->e;
                *res = node_cni_result_free(*res);
                return gate->r;
        }
        return r;
}

/* Delegate i was added: its network-status entries and Event noted; the cluster network's result kept. */
static int note_added(const McCache *c, size_t i, NodeCniResult *res, AddRun *run, KvErr *e) {
        run->added = i + 1;
        int r = mc_statuses_add(&c->delegates[i], res, &run->statuses, &run->n_statuses, e);
        if (r >= 0)
                r = mc_events_note(&run->events, &c->delegates[i], res);
        if (i == 0)
                run->master = res;
        else
                node_cni_result_free(res);
        return r;
}

/* From delegate first on (the ones before it were added already, c saved before them): c is saved before the
 * first delegate gets its config. */
static int run_delegates(McPlugin *p, const McCache *c, size_t first, AddRun *run, KvErr *e) {
        if (first == 0 && p->conf->parallel_delegates && c->n_delegates > 1) {
                int r = mc_cache_save(p->conf->cni_dir, c, e);
                return r < 0 ? r : run_parallel(p, c, run, e);
        }
        CacheGate gate = { .p = p, .c = c, .done = first > 0 }; /* first > 0: saved before the first one's ADD */
        for (size_t i = first; i < c->n_delegates; i++) {
                NodeCniResult *res = NULL;
                int r = add_gated(p, c, i, &gate, &res, e);
                if (r < 0 || (r = note_added(c, i, res, run, e)) < 0)
                        return r;
        }
        return gate.done ? 0 : mc_cache_save(p->conf->cni_dir, c, e);
}

/* ---------------------------------------------------------------- the cluster network while the pod is read */

static int plan(McPlugin *p, McPod **pod, McCache **c, KvErr *e) {
        int r;
        if ((r = mc_pod_load(p, pod, e)) < 0 || (r = mc_plan_build(p, *pod, c, e)) < 0)
                return r;
        return check_configs(*c, e);
}

/* The plan made in a thread of its own, on a copy of the plugin: the API client, the NADs read and the claims
 * bound are the thread's until it is joined; everything else of p it only reads. */
typedef struct PlanJob {
        McPlugin p;
        McPod *pod;
        McCache *c;
        int r;
        KvErr e;
} PlanJob;

static void *plan_thread(void *arg) {
        PlanJob *j = arg;
        j->r = plan(&j->p, &j->pod, &j->c, &j->e);
        return NULL;
}

/* The same plugins with the same config, interface and capability args: what the runtime would have run. The
 * name may differ (a NAD in multusNamespace whose config is the confDir file's, as a NAD without a config is):
 * it is only a label, and the plan's is the one cached, reported and logged. */
static bool same_delegate(const McCachedDelegate *a, const McCachedDelegate *b) {
        if (!streq(a->ifname, b->ifname) || !streq(a->conflist, b->conflist) ||
            a->n_caps != b->n_caps || a->master != b->master || a->aux != b->aux ||
            a->has_default_route != b->has_default_route || a->n_gateways != 0 || b->n_gateways != 0)
                return false;
        for (size_t i = 0; i < a->n_caps; i++)
                if (!streq(a->caps[i].key, b->caps[i].key) || !streq(a->caps[i].value, b->caps[i].value))
                        return false;
        return true;
}

/* The cluster network's plugin starts while the plan is made: the gate of that first delegate waits for the plan
 * (the thread), then lets the plugin read its config only when the plan starts with the same delegate, the plan
 * saved first; else the plugin is killed before it read anything (NODE_ERR_GATE: no DEL either). */
typedef struct PlanGate {
        McPlugin *p;
        const McCache *sc;
        PlanJob *j;
        pthread_t t;
        bool joined, same;
        int r;
        KvErr e;
} PlanGate;

static void plan_join(PlanGate *g) {
        if (g->joined)
                return;
        g->joined = true;
        pthread_join(g->t, NULL);
        McPlugin *p = g->p;
        p->kc = g->j->p.kc;
        p->fetched = g->j->p.fetched;
        p->n_fetched = g->j->p.n_fetched;
        p->claims = g->j->p.claims;
        p->n_claims = g->j->p.n_claims;
        g->same = g->j->r >= 0 && same_delegate(&g->sc->delegates[0], &g->j->c->delegates[0]);
        if (g->same)
                g->r = mc_cache_save(p->conf->cni_dir, g->j->c, &g->e);
        else
                g->r = g->j->r < 0 ? g->j->r : -ECANCELED;
}

static int plan_gate(void *userdata) {
        PlanGate *g = userdata;
        plan_join(g);
        return g->r;
}

/* With a pod to read from the API, the cluster network's plugin does not wait for it to start: when the cluster
 * network is decided without the API (mc_plan_cluster_only: the inline delegates, a path, a confDir network), its
 * plugin is started (exec, loading) while another thread loads libcurl, reads the pod and its NADs and makes the
 * whole plan; the plugin gets its config once the plan is there, starts with that same delegate and is saved. The
 * plan failing, or naming another cluster network (a NAD of that name in multusNamespace with another config, the
 * pod's default-network override), kills the plugin unread: nothing was done, and the plan's error is returned or
 * the plan run from its start. 0: not done here (no pod or kubeconfig, parallelDelegates, a cluster network only
 * the API decides); 1: *ret is the plan, and *first 1 when its first delegate was added (noted in run); < 0: the ADD
 * failed, nothing attached, no cache left. */
static int cluster_early(McPlugin *p, McPod **pod, McCache **ret, AddRun *run, size_t *first, KvErr *e) {
        _cleanup_(mc_cache_freep) McCache *sc = NULL;
        KvErr ignored = {};
        if (!p->pod_name || !p->conf->kubeconfig || p->conf->parallel_delegates || mc_plan_cluster_only(p, &sc) < 0 ||
            check_configs(sc, &ignored) < 0)
                return 0;
        PlanJob j = { .p = *p };
        PlanGate g = { .p = p, .sc = sc, .j = &j };
        if (pthread_create(&g.t, NULL, plan_thread, &j) != 0)
                return 0;
        NodeCniResult *res = NULL;
        KvErr de = {};
        p->rt->start_gate = plan_gate;
        p->rt->start_gate_data = &g;
        int r = mc_delegate_add(p, sc, &sc->delegates[0], &res, &de);
        p->rt->start_gate = NULL;
        plan_join(&g); /* when the plugin never started (not found: the gate was not reached) */
        *pod = j.pod;
        _cleanup_(mc_cache_freep) McCache *c = j.c;
        if (j.r < 0) {
                *e = j.e;
                return j.r;
        }
        if (!g.same) {
                mc_log_verbose(p, "cluster network '%s' was started while the pod was read: not run, the API names '%s'",
                               sc->delegates[0].name, c->delegates[0].name);
                if (r >= 0) /* cannot be: its plugin passed the gate */
                        IGNORE_RESULT(mc_delegate_del(p, sc, &sc->delegates[0], &ignored));
                node_cni_result_free(res);
                *ret = TAKE_PTR(c);
                return 1;
        }
        if (g.r < 0) { /* the plan could not be saved */
                *e = g.e;
                r = g.r;
        } else if (r < 0)
                *e = de;
        if (r < 0 || (r = note_added(c, 0, res, run, e)) < 0) {
                if (run->added)
                        IGNORE_RESULT(mc_delegate_del(p, c, &c->delegates[0], &ignored));
                if (g.r >= 0)
                        IGNORE_RESULT(mc_cache_remove(p->conf->cni_dir, c->container_id));
                return r;
        }
        *first = 1;
        *ret = TAKE_PTR(c);
        return 1;
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
        size_t first = 0;
        int r;
        if ((r = wait_readiness(p->conf, e)) < 0)
                return r;
        if ((r = cluster_early(p, &pod, &c, &run, &first, e)) == 0)
                r = plan(p, &pod, &c, e);
        if (r < 0) { /* nothing attached (cluster_early() undid its delegate) */
                node_cni_result_free(run.master);
                mc_statuses_free(run.statuses, run.n_statuses);
                mc_events_done(&run.events);
                return r;
        }
        if ((r = run_delegates(p, c, first, &run, e)) >= 0 && (r = apply_default_routes(p, c, e)) >= 0 &&
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
