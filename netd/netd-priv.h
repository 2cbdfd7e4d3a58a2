/* SPDX-License-Identifier: Apache-2.0 */
/* netd internals shared by its source files and tests. */
#pragma once

#include "bind-masq.h"
#include "dhcp.h"
#include "endpoint.h"
#include "ipam.h"
#include "link.h"
#include "nat.h"
#include "netd.h"
#include "reaper.h"
#include "sriov.h"

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

        uint64_t started_usec;
        unsigned long long n_requests, n_adds, n_dels, n_errors;
        unsigned corrupt_files;
};

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
