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
#include "netd/netd.h"
#include "netd/state/claimstore.h"
#include "netd/state/endpoint.h"

#define NETD_VERSION "0.1.0"
#define NETD_MAX_NETWORKS 256

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
        Journal *ep_journal; /* state_dir/endpoints.journal */
        unsigned corrupt_files;

        /* Cluster (netd config nodeName / clusterClaims): cs is NULL on a stand-alone node. */
        char node_name[CS_NODE_MAX];
        char *cluster_dir;
        char *route_hook; /* netd config routeHook: announces/withdraws VM /32s (handoff.c) */
        KvAddr node_address; /* netd config nodeAddress (family 0 = none): registered in the claim store */
        uint32_t redirect_grace_ms; /* netd config redirectGraceMs (default 5000, 0 = no redirect) */
        ClaimStore *cs;
        Handoff *handoff; /* the migration handoff (netd/migration/handoff.h) */
};

#define EP_FOREACH(m, var)                                                                   \
        for (size_t _b = 0; _b < (m)->n_buckets; _b++)                                       \
                for (EpNode *_n = (m)->ep_buckets[_b], *_nx = _n ? _n->next : NULL; _n;       \
                     _n = _nx, _nx = _n ? _n->next : NULL)                                    \
                        for (Endpoint *var = _n->ep; var; var = NULL)

/* manager.c */
int manager_persist(Manager *m, const Endpoint *ep, KvErr *e) _wur_;
bool manager_ep_is_masq_vm(const Endpoint *ep);

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
        char bridge[16];
        char vlan_bridge[16]; /* vlan > 0 on a bridge binding: the VLAN's bridge "<bridge>.<vlan>"; "" otherwise */
        uint32_t mtu;
        uint16_t vlan;
        bool ipmasq, is_gateway, chained;
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
