/* SPDX-License-Identifier: Apache-2.0 */
/* netd internals shared by its source files and tests. */
#pragma once

#include "netd/binding/masquerade.h"
#include "netd/binding/sriov.h"
#include "netd/dhcp/dhcp.h"
#include "netd/ipam/ipam.h"
#include "netd/link/link.h"
#include "netd/link/reaper.h"
#include "netd/migration/handoff.h"
#include "netd/nat/nat.h"
#include "netd/binding/portfilter.h"
#include "netd/core/metrics.h"
#include "netd/core/policy.h"
#include "netd/netd.h"
#include "netd/state/claimstore.h"
#include "netd/state/endpoint.h"
#include "kube/kube.h"

#define NETD_VERSION "0.1.0"
#define NETD_MAX_NETWORKS 256
/* room for the socket's verbs (verbs.c) in the metrics' per-verb figures */
#define NETD_MAX_VERBS 24

typedef struct EpNode {
        Endpoint *ep;
        struct EpNode *next;
} EpNode;

typedef struct NetworkState {
        char name[128];
        char bridge[16];
        bool bridge_ready;
        size_t n_gw;
        KvPrefix gw[EP_MAX_ADDRS];
} NetworkState;

struct Manager {
        char *socket_path;
        char *state_dir;
        char *config_path;
        bool durable;
        bool ipv6_forwarding; /* turned on in the node's namespace (by the first IPv6 attachment) */
        char default_nat_backend[16];

        /* SR-IOV (netd config sriovPools / sysfsRoot / sriovSimulate); sriov is NULL without pools. */
        SriovPoolConfig *sriov_pools;
        size_t n_sriov_pools;
        char *sysfs_root;
        bool sriov_simulate;
        SriovNlSink *sriov_sink; /* simulated node only: the recording netlink sink */
        Sriov *sriov;

        Ipam *ipam;
        NatBackend *nat_nft;
        NodePolicy policy;      /* config "policy" (policy.h) */
        long long socket_read_gid; /* config "socketReadGroup": its members may use the read-only verbs; -1: none */
        PortFilter *portfilter; /* anti-spoofing on bridge ports (netd/binding/portfilter.h), opened on first use */
        Reaper *reaper;
        EventLoop *loop;

        /* endpoints by id: chained hash table */
        struct EpNode **ep_buckets;
        size_t n_buckets, n_endpoints;

        NetworkState networks[NETD_MAX_NETWORKS];
        size_t n_networks;
        /* Bridges that carry VLANs tagged (netd/link/vlan.c): their untagged kvnet ports get the guard. */
        char trunks[NETD_MAX_NETWORKS][16];
        size_t n_trunks;

        uint64_t started_usec;
        unsigned long long n_requests, n_adds, n_dels, n_errors;
        /* per verb (verbs.c's table order; [NETD_MAX_VERBS]: unknown ops), for the metrics */
        NetdVerbStats verb_stats[NETD_MAX_VERBS + 1];
        char metrics_listen[64]; /* config "metricsListen"; "" = no metrics endpoint */
        NetdMetrics *metrics;
        Journal *ep_journal; /* state_dir/endpoints.journal */
        unsigned corrupt_files;

        /* Cluster (netd config nodeName / clusterClaims): cs is NULL on a stand-alone node. */
        char node_name[CS_NODE_MAX];
        bool cluster;                 /* clusterClaims given */
        ClaimStoreConfig cs_config;   /* its backend and where the store is */
        char *route_hook; /* netd config routeHook: announces/withdraws VM /32s (handoff.c) */
        KvAddr node_address; /* netd config nodeAddress (family 0 = none): registered in the claim store */
        uint32_t redirect_grace_ms; /* netd config redirectGraceMs (default 5000, 0 = no redirect) */
        ClaimStore *cs;
        Handoff *handoff; /* the migration handoff (netd/migration/handoff.h) */

        /* netd config multusApi: the `kube` verb's API connection (api.c); the client opens on first use */
        bool api_enabled;
        char *api_kubeconfig; /* NULL: kube_config_load's default */
        uint32_t api_timeout_ms;
        KubeClient *api_client;
};

#define EP_FOREACH(m, var)                                                                   \
        for (size_t _b = 0; _b < (m)->n_buckets; _b++)                                       \
                for (EpNode *_n = (m)->ep_buckets[_b], *_nx = _n ? _n->next : NULL; _n;       \
                     _n = _nx, _nx = _n ? _n->next : NULL)                                    \
                        for (Endpoint *var = _n->ep; var; var = NULL)

/* ---- netd/core: the manager's parts ---- */

/* endpoints.c: the attachments by id */
Endpoint *ep_find(Manager *m, const char *id);
int ep_grow(Manager *m) _wur_;
int ep_insert(Manager *m, Endpoint *ep) _wur_;
void ep_unlink(Manager *m, Endpoint *ep); /* does not free ep */
/* Attachments of the claim (network, key), not counting except. */
size_t count_key_users(Manager *m, const Endpoint *except, const char *network, const char *key);
/* A link name derived from the attachment id: prefix + 8 hex digits (buf: 16 bytes). */
void derive_ifname(char *buf, const char *prefix, const char *id);
/* manager.c: netd's config file (m->config_path; none: nothing) into m's settings; an error names the key and
 * value. What it set before an error stays in m (its owner frees it with m). */
int manager_config_parse(Manager *m, KvErr *e) _wur_;
/* Writes ep's record to the endpoints journal. */
int manager_persist(Manager *m, const Endpoint *ep, KvErr *e) _wur_;
/* Whether an attachment's sandbox is the network namespace id (a pod's). */
bool manager_netns_attached(Manager *m, const NetnsId *id);
/* Whether VM vm_namespace/vm_name has an attachment in the network namespace id (its launcher runs there). */
bool manager_vm_in_netns(Manager *m, const char *vm_namespace, const char *vm_name, const NetnsId *id);
/* IPv6 forwarding in the node's namespace, turned on with the first attachment that has an IPv6 address (an
 * IPv4-only node never forwards IPv6); the uplinks keep their router advertisements (link_keep_router_advertisements). */
int manager_ipv6_forwarding(Manager *m, const Endpoint *ep, KvErr *e) _wur_;

/* network.c: node bridges and VLAN trunks */
bool is_trunk(Manager *m, const char *bridge);
/* An untagged kvnet port on a bridge: the endpoints the trunk guard is for. */
bool ep_untagged_port(const Endpoint *ep);
int trunk_add(Manager *m, const char *bridge, KvErr *e) _wur_;
int network_ensure_bridge(Manager *m, const Endpoint *ep, KvErr *e) _wur_;

/* nat-endpoint.c */
int nat_get(Manager *m, const char *backend, NatBackend **ret, KvErr *e) _wur_;
bool ep_needs_nat(const Endpoint *ep);
typedef struct NatEpBuf {
        NatEndpoint ne;
        NatPortMapping pm[EP_MAX_PORTS * 2];
} NatEpBuf;
void nat_endpoint_from(const Endpoint *ep, NatEpBuf *b);

/* claims.c */
/* Cluster mode: the claim store follows every local release. */
void cluster_release(Manager *m, const char *network, const char *key);
/* ipam's address filter in cluster mode (userdata: the Manager). */
bool cluster_taken(const char *network, const KvAddr *a, const char *key, void *userdata);
void release_claim_if_unused(Manager *m, const Endpoint *ep);

/* guest-dhcp.c */
int dhcp_start(Manager *m, Endpoint *ep, int nsfd, KvErr *e) _wur_;
void dhcp_stop(Endpoint *ep);

/* netd/binding/masquerade-ops.c (for handoff.c) */
bool manager_ep_is_masq_vm(const Endpoint *ep);

/* check.c: the attachment's kernel side against its record (its binding's, then its node NAT elements), in
 * its sandbox nsfd; CHECK and kvnetctl trace. */
int endpoint_kernel_check(Manager *m, const Endpoint *ep, int nsfd, KvErr *e) _wur_;

/* del.c */
/* Removes the kernel side of an endpoint; tolerant of anything already gone. */
int teardown_kernel(Manager *m, const Endpoint *ep, bool deferred, KvErr *e) _wur_;

/* The verbs (verbs.c dispatches; each in the file of its concept). */
typedef int (*verb_handler)(Manager *m, json_t *args, json_t **ret, KvErr *e);
typedef struct Verb {
        const char *name;
        verb_handler handler;
        bool log_failure; /* the verbs that change attachments log their failures */
        bool read_only;   /* only reads state: allowed to the config's socketReadGroup */
        bool deferred;    /* answered from the loop later (server.c calls netd_api_start); handler only checks */
} Verb;
/* The i-th verb of the table (NULL past its end), and its index. */
const Verb *verb_at(size_t i);
/* The verb called name (the request's "op"); NULL if there is none. */
const Verb *verb_find(const char *name);
int verb_index(const Verb *v);

/* api.c: the `kube` verb (netd config multusApi) */
int netd_api_config(Manager *m, json_t *o, KvErr *e) _wur_;
typedef struct NetdApiCall NetdApiCall;
/* reply: the protocol reply to queue (NULL: out of memory) */
typedef void (*netd_api_done_t)(json_t *reply, void *userdata);
/* Starts the requests of args: *ret_call (done runs from the loop with the reply, unless cancelled), or, when
 * there is nothing to wait for (a refusal, a bad request), *ret_reply at once. */
void netd_api_start(Manager *m, json_t *args, netd_api_done_t done, void *userdata, NetdApiCall **ret_call,
                    json_t **ret_reply);
/* Its requests cancelled, done not called. */
void netd_api_cancel(NetdApiCall *call);
void netd_api_free(Manager *m);
int do_kube(Manager *m, json_t *args, json_t **ret, KvErr *e) _wur_;
int do_add(Manager *m, json_t *args, json_t **ret, KvErr *e) _wur_;
int do_del(Manager *m, json_t *args, json_t **ret, KvErr *e) _wur_;
int do_gc(Manager *m, json_t *args, json_t **ret, KvErr *e) _wur_;
int do_check(Manager *m, json_t *args, json_t **ret, KvErr *e) _wur_;
int do_ping(Manager *m, json_t *args, json_t **ret, KvErr *e) _wur_;
int do_status_daemon(Manager *m, json_t *args, json_t **ret, KvErr *e) _wur_;
int do_endpoints(Manager *m, json_t *args, json_t **ret, KvErr *e) _wur_;
int do_ipam(Manager *m, json_t *args, json_t **ret, KvErr *e) _wur_;
int do_ipam_release(Manager *m, json_t *args, json_t **ret, KvErr *e) _wur_;
int do_nat(Manager *m, json_t *args, json_t **ret, KvErr *e) _wur_;
int do_sriov(Manager *m, json_t *args, json_t **ret, KvErr *e) _wur_;
int do_migrations(Manager *m, json_t *args, json_t **ret, KvErr *e) _wur_;
int do_migration_activate(Manager *m, json_t *args, json_t **ret, KvErr *e) _wur_;
int do_migration_source(Manager *m, json_t *args, json_t **ret, KvErr *e) _wur_;
int do_cluster_claims(Manager *m, json_t *args, json_t **ret, KvErr *e) _wur_;
int do_trace(Manager *m, json_t *args, json_t **ret, KvErr *e) _wur_;

/* Typed request (parsed once from the socket JSON, checked there). */
typedef struct AttachRequest {
        char network[128];
        char container_id[256];
        char ifname[16];
        char netns[PATH_MAX];
        bool has_vm;
        char vm_namespace[64], vm_name[64], vm_interface[64];
        size_t n_vm_ports;
        EpVmPort vm_ports[EP_MAX_PORTS];
        char binding[16];
        BindingKind binding_kind; /* binding as configured: bridge, masquerade or sriov */
        char bridge[16];
        char vlan_bridge[16]; /* vlan > 0 on a bridge binding: the VLAN's bridge "<bridge>.<vlan>"; "" otherwise */
        uint32_t mtu;
        uint16_t vlan;
        bool ipmasq, is_gateway, chained;
        bool antispoof; /* "antiSpoofing", default true */
        char nat_backend[16];
        bool has_ipam;
        IpamConfig ipam;
        json_t *prev_result; /* borrowed, chained mode */
        size_t n_prev_ips;
        KvPrefix prev_ips[EP_MAX_ADDRS];
        KvAddr prev_gws[EP_MAX_ADDRS];
        bool prev_has_gw[EP_MAX_ADDRS];
        char prev_ifname[16]; /* sandbox interface the prevResult's IPs are on */
        size_t n_req_ips;
        KvAddr req_ips[EP_MAX_ADDRS];
        bool has_mac;
        uint8_t mac[6];
        size_t n_pm;
        EpPortMapping pm[EP_MAX_PORTS];
        /* binding "sriov" */
        char resource_name[128];
        bool spoofchk, trust;
} AttachRequest;

int attach_request_parse(json_t *args, const char *verb, bool need_full, AttachRequest *ret, KvErr *e) _wur_;
/* policy.c: an ADD's request against the node policy (code 7 naming the policy key when it is not allowed). */
int policy_check_add(const Manager *m, const AttachRequest *req, KvErr *e) _wur_;
/* What del and check start from: the request, the attachment id it names, and that attachment (NULL when
 * there is none). */
typedef struct AttachLookup {
        AttachRequest req;
        char id[512];
        Endpoint *ep;
} AttachLookup;

/* del, check (endpoints.c): parses the request and finds the attachment it names. */
int attach_request_lookup(Manager *m, json_t *args, const char *verb, AttachLookup *ret, KvErr *e) _wur_;
