/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet-multus, the meta CNI plugin (docs/multus.md): its private interfaces. */
#pragma once

#include <stdio.h>

#include "kube/kube.h"
#include "multus-compat/multus.h"
#include "node/node.h"

#define MC_SUPPORTED_VERSIONS "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"

typedef enum McCommand {
        MC_CMD_ADD,
        MC_CMD_DEL,
        MC_CMD_CHECK,
        MC_CMD_STATUS,
        MC_CMD_GC,
        MC_CMD_VERSION,
        _MC_CMD_MAX,
} McCommand;

/* The pod as the plugin needs it: typed at the API boundary (kube.c). */
typedef struct McPod {
        char *namespace_, *name, *uid;
        char *networks;        /* k8s.v1.cni.cncf.io/networks, NULL when absent */
        char *default_network; /* v1.multus-cni.io/default-network, NULL when absent */
        char *network_status;  /* k8s.v1.cni.cncf.io/network-status, NULL when absent */
        bool static_pod;       /* kubernetes.io/config.source other than "api": its mirror's UID differs */
} McPod;

/* A requested network's IPAMClaim whose status has no addresses yet: its delegate's ADD writes them. */
typedef struct McClaimUse {
        char *ifname; /* its delegate's pod interface: unique in a pod, whatever part of the plan runs */
        char *namespace_, *name;
} McClaimUse;

/* A NAD's GET made ahead of its use (kube.c): the API's answer, until mc_nad_get() takes it. */
typedef struct McFetched {
        char *namespace_, *name;
        bool answered; /* r, obj and e hold the answer (not taken yet) */
        int r;
        json_t *obj;
        KvErr e;
} McFetched;

typedef struct McPlugin {
        McCommand command;
        char *stdin_text;
        size_t stdin_len;
        McConfig *conf;
        const char *container_id, *netns, *ifname, *path; /* from the environment */
        char *args_buf;                                   /* CNI_ARGS, split in place */
        NodeCniArg *args;                                 /* the pairs other than IgnoreUnknown and K8S_POD_* */
        size_t n_args;
        char *pod_ns, *pod_name, *pod_uid; /* K8S_POD_*; NULL when not a pod */
        const char *hotplug;               /* KVNET_MULTUS_INTERFACE: ADD/DEL of that one interface; NULL: all */
        KubeClient *kc;                    /* NULL without a kubeconfig or a pod, or while api_fd serves */
        int api_fd;                        /* connected to netd (conf apiSocket), whose `kube` verb makes the requests;
                                            * -1: none (kc then) */
        bool api_fd_failed;                /* netd could not serve them: kc from then on */
        unsigned api_timeout_ms;
        NodeCniRuntime *rt;
        char *const *envp;
        McClaimUse *claims; /* ADD: the claims to fill (ipamclaim.c) */
        size_t n_claims;
        McFetched *fetched; /* NADs read ahead (kube.c) */
        size_t n_fetched;
} McPlugin;

/* main.c */
const char *mc_getenv(char *const *envp, const char *name);
/* A line in the conf's logFile (none: nothing), whatever logLevel says: what the caller should know. */
void mc_log_note(const McPlugin *p, const char *fmt, ...) _printf_(2, 3);

/* kube.c: the API, through netd (the conf's apiSocket) or kube/ (its kubeconfig). */
/* Whether the conf names a way to the API (a kubeconfig or netd's socket). */
bool mc_api_configured(const McConfig *conf);
/* Whether p talks to the API (mc_kube_connect() succeeded). */
bool mc_api(const McPlugin *p);
int mc_kube_connect(McPlugin *p, KvErr *e) _wur_;
/* One request, no retries (Events). */
int mc_kube_request_once(McPlugin *p, const KubeRequest *req, json_t **ret, KvErr *e) _wur_;
void mc_api_set_timeout(McPlugin *p, unsigned msec);
void mc_api_close(McPlugin *p);
/* the pod of CNI_ARGS (with it, the clusterNetwork's NAD read ahead) */
int mc_pod_get(McPlugin *p, McPod **ret, KvErr *e) _wur_;
int mc_pod_get_named(McPlugin *p, const char *ns, const char *name, McPod **ret, KvErr *e) _wur_;
McPod *mc_pod_free(McPod *pod);
DEFINE_TRIVIAL_CLEANUP_FUNC(McPod *, mc_pod_free);
int mc_nad_get(McPlugin *p, const char *ns, const char *name, McNad **ret, KvErr *e) _wur_;
/* The GETs of these NADs made now, at once, for the mc_nad_get() calls that follow (best effort: -ENOMEM only). */
int mc_nads_prefetch(McPlugin *p, const KubeRef *nads, size_t n) _wur_;
void mc_fetched_free(McFetched *v, size_t n);
/* text NULL: removes the annotation. */
int mc_pod_set_status(McPlugin *p, const char *ns, const char *name, const char *text, KvErr *e) _wur_;

/* kube.c: one request, retried while the API cannot answer. */
int mc_kube_request(McPlugin *p, const KubeRequest *req, json_t **ret, KvErr *e) _wur_;

/* ipamclaim.c: after a selection's delegate was planned (the last of c), its ipam-claim-reference: the claim
 * read and checked, its addresses made the delegate's runtimeConfig 'ips', or, when it has none, the claim
 * remembered in p for mc_ipamclaim_record(). */
int mc_ipamclaim_bind(McPlugin *p, const McPod *pod, McCache *c, const McSelection *s, KvErr *e) _wur_;
/* After delegate d's ADD returned res: the addresses of its interface written to its claim's status when
 * mc_ipamclaim_bind() remembered one for it; else nothing. */
int mc_ipamclaim_record(McPlugin *p, const McCache *c, const McCachedDelegate *d, const NodeCniResult *res,
                        KvErr *e) _wur_;
void mc_claim_uses_free(McClaimUse *v, size_t n);

/* plan.c: the delegates an ADD runs, in order; every name, config and interface checked. */
int mc_plan_build(McPlugin *p, const McPod *pod, McCache **ret, KvErr *e) _wur_;
/* The cluster network (and defaultNetworks) alone, for STATUS and a call without a pod. */
int mc_plan_cluster(McPlugin *p, const McPod *pod, McCache *c, KvErr *e) _wur_;

/* route.c: removes the default routes through ifname in netns (per family), then adds one via each gateway. */
int mc_route_apply(const char *netns, const char *ifname, bool del4, bool del6, char *const *gateways, size_t n_gateways,
                   KvErr *e) _wur_;

/* add.c / del.c */
int mc_cmd_add(McPlugin *p, FILE *out, KvErr *e) _wur_;
/* add.c, for hotplug.c too: the pod of CNI_ARGS (*ret NULL without a pod or a kubeconfig), checked against
 * K8S_POD_UID; a delegate's result as network-status entries appended to *v; the result on out; whether
 * network-status is written for a pod of namespace ns. */
int mc_pod_load(McPlugin *p, McPod **ret, KvErr *e) _wur_;
int mc_statuses_add(const McCachedDelegate *d, const NodeCniResult *res, McStatus **v, size_t *n, KvErr *e) _wur_;
int mc_result_print(FILE *out, const NodeCniResult *res, KvErr *e) _wur_;
bool mc_status_wanted(const McPlugin *p, const char *ns);
/* ns is one of the config's systemNamespaces (no defaultNetworks, no network-status). */
bool mc_system_namespace(const McConfig *conf, const char *ns);
/* hotplug.c: KVNET_MULTUS_INTERFACE, one interface of a pod already added (docs/multus.md, "Hot-plug"). */
#define MC_HOTPLUG_ENV "KVNET_MULTUS_INTERFACE"
int mc_cmd_add_one(McPlugin *p, FILE *out, KvErr *e) _wur_;
int mc_cmd_del_one(McPlugin *p, KvErr *e) _wur_;
int mc_cmd_del(McPlugin *p, KvErr *e) _wur_;
int mc_cmd_check(McPlugin *p, KvErr *e) _wur_;
int mc_cmd_status(McPlugin *p, KvErr *e) _wur_;
int mc_cmd_gc(McPlugin *p, KvErr *e) _wur_;

/* delegate.c: one cached delegate through node/'s runtime. */
int mc_delegate_network(const McCachedDelegate *d, NodeCniNetwork **ret, KvErr *e) _wur_;
int mc_delegate_add(McPlugin *p, const McCache *c, const McCachedDelegate *d, NodeCniResult **ret, KvErr *e) _wur_;
int mc_delegate_del(McPlugin *p, const McCache *c, const McCachedDelegate *d, KvErr *e) _wur_;
int mc_delegate_check(McPlugin *p, const McCache *c, const McCachedDelegate *d, KvErr *e) _wur_;
/* parallel.c: every delegate's ADD at the same time (parallelDelegates); results[i] of each that succeeded
 * (n_delegates entries, NULL-initialised); the first error (lowest index) in e. */
int mc_delegates_add_parallel(McPlugin *p, const McCache *c, NodeCniResult **results, KvErr *e) _wur_;
/* DELs c's delegates [0, upto) in reverse; the first error in e, the rest attempted. */
int mc_delegates_del(McPlugin *p, const McCache *c, size_t upto, KvErr *e) _wur_;

/* events.c: Kubernetes Events about the pod, as Multus posts them; best effort (a failure is a line on stderr). */
typedef struct McAddEvents {
        char **messages; /* AddedInterface messages, one per delegate that attached something */
        size_t n;
} McAddEvents;
/* After a delegate's ADD: its message, when its result lists interfaces or IPs (Multus's condition). */
int mc_events_note(McAddEvents *ev, const McCachedDelegate *d, const NodeCniResult *res) _wur_;
/* After the whole ADD succeeded: one AddedInterface Event per noted delegate, about pod (NULL: none). */
void mc_events_post_added(McPlugin *p, const McPod *pod, const McAddEvents *ev);
void mc_events_done(McAddEvents *ev);
/* A requested network's NAD could not be read: NoNetworkFound (Warning) about the pod of CNI_ARGS. */
void mc_event_no_network(McPlugin *p, const char *net_ns, const char *net_name, const char *why);
