/* SPDX-License-Identifier: Apache-2.0 */
/* An attachment (network, containerID, ifname) as netd records it, and its on-disk store. */
#pragma once

#include "netd/state/journal.h"

#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>

#include "common/addr.h"
#include "common/kverr.h"
#include "common/netns.h"
#include "netd/binding/kind.h"
#include "netd/migration/migstate.h"

#define EP_MAX_ADDRS 4
#define EP_MAX_PORTS 64
#define EP_MAX_ROUTES 32

typedef enum { EP_CREATING, EP_READY } EndpointState;
typedef enum { EP_KIND_CONTAINER, EP_KIND_VM } EndpointKind;

typedef struct EpPortMapping {
        uint16_t host_port, container_port;
        uint8_t proto; /* IPPROTO_TCP / IPPROTO_UDP */
        KvAddr host_ip; /* family 0 = any */
} EpPortMapping;

/* masquerade binding: a port forwarded from the VM's IP to the guest (none listed = all). */
typedef struct EpVmPort {
        uint16_t port;
        uint8_t proto;
} EpVmPort;

typedef struct EpRoute {
        KvPrefix dst;
        KvAddr gw;
        bool has_gw;
} EpRoute;

/* The VF of a binding sriov attachment. */
typedef struct EpSriov {
        char pci[16];         /* the VF's PCI address ("0000:3b:02.1"), "" until allocated */
        char resource[128];   /* the pool's resourceName */
        bool spoofchk, trust;
} EpSriov;

typedef struct Endpoint {
        char id[512]; /* network/containerID/ifname */
        char network[128];
        char container_id[256];
        char ifname[16];
        char netns[PATH_MAX];
        NetnsId netns_id; /* the sandbox's identity at ADD ({0,0}: unknown, a record from before) */
        char key[320]; /* claim key */
        EndpointKind kind;
        char vm_namespace[64], vm_name[64], vm_interface[64];
        char binding[16];         /* as configured (bridge, masquerade, sriov): recorded as is */
        BindingKind binding_kind; /* what drives it (binding_kind_resolve()); derived, not recorded */
        char bridge[16]; /* the bridge the endpoint is on: for vlan > 0 the VLAN's bridge "<trunk>.<vlan>" */
        char trunk[16];  /* vlan > 0 (not sriov): the configured bridge, which carries the VLAN tagged */
        uint32_t mtu;
        uint16_t vlan;
        bool ipmasq, is_gateway, chained;
        bool antispoof; /* the node side of the port is filtered (netd/binding/portfilter.h); "antiSpoofing" */
        char nat_backend[16];
        char host_ifname[16]; /* node side veth ("" in chained mode) */
        char sbx_ifname[16];  /* VM: sandbox veth end (main mode) or the existing interface (chained) */
        char tap[16];         /* VM: tap in the sandbox */
        EpSriov sriov;        /* binding sriov only */
        size_t n_addrs;
        KvPrefix addrs[EP_MAX_ADDRS];
        KvAddr gateways[EP_MAX_ADDRS];
        bool has_gateway[EP_MAX_ADDRS];
        size_t n_routes;
        EpRoute routes[EP_MAX_ROUTES];
        uint8_t mac[6];
        bool has_mac;
        size_t n_pm;
        EpPortMapping pm[EP_MAX_PORTS];
        size_t n_vm_ports;
        EpVmPort vm_ports[EP_MAX_PORTS];
        EndpointState state;
        bool claim_is_new; /* set during ADD: roll back releases the claim */
        char *result; /* cached CNI result (JSON text) */
        void *dhcp;   /* runtime only: the VM NIC's DhcpServer, owned by the manager */
        uint64_t created_usec;
        /* Live migration of the VM (netd/migration/handoff.c): role "" (none), "target" (this attachment was made for
         * an incoming VM whose claim another node holds) or "source"; state prepared|active|migrating|
         * completed|aborted; peer = the other side as the caller named it. */
        MigRole mig_role;
        MigState mig_state;
        char mig_peer[256];
        uint64_t mig_started_usec;
        void *mig_watch; /* runtime only: a passive target's wait for the guest's first frame (handoff.c) */
        int early_ifindex; /* runtime only: the migration redirect forwards this VM's packets here (handoff.c) */
} Endpoint;

/* Opens the attachment's sandbox: -ESTALE (logged) when the path now names another namespace than the one the
 * attachment was made in (the pod's went and a new one took its name): nothing in it is the attachment's. */
int endpoint_netns_open(const Endpoint *ep, int *ret_fd) _wur_;
Endpoint *endpoint_free(Endpoint *ep);
DEFINE_TRIVIAL_CLEANUP_FUNC(Endpoint *, endpoint_free);
int endpoint_make_id(const char *network, const char *container_id, const char *ifname, char *buf, size_t n);

json_t *endpoint_to_json(const Endpoint *ep, bool for_state);
int endpoint_from_json(json_t *o, Endpoint **ret, KvErr *e) _wur_;

/* Store: one record per endpoint (key: its id) in the journal state_dir/endpoints.journal. */
int endpoint_save(Journal *j, const Endpoint *ep, bool durable) _wur_;
int endpoint_remove(Journal *j, const Endpoint *ep, bool durable) _wur_;
typedef int (*endpoint_load_cb)(Endpoint *ep /* ownership passed */, void *userdata);
/* Calls cb for each stored endpoint; records that cannot be parsed stay in the journal untouched and are
 * counted in *ret_bad. */
int endpoint_load_all(Journal *j, endpoint_load_cb cb, void *userdata, unsigned *ret_bad) _wur_;
/* The layout before the journal, one file per endpoint under state_dir/endpoints/: each file's endpoint that the
 * journal does not have yet is written to it and passed to cb; the files are deleted once the journal holds them
 * durably. Files that cannot be parsed are renamed *.corrupt and counted in *ret_bad. */
int endpoint_import_files(const char *state_dir, Journal *j, endpoint_load_cb cb, void *userdata,
                          unsigned *ret_bad) _wur_;
