/* SPDX-License-Identifier: Apache-2.0 */
/* What netd does differently per binding (netd/binding/kind.h), as one ops table per kind. The core
 * (netd/core: add.c, del.c, check.c, guest-dhcp.c, start.c) runs ADD, DEL, CHECK, GC and start-up through
 * these ops and never asks which binding an attachment has. Each kind's ops are in
 * netd/binding/<kind>-ops.c. */
#pragma once

#include "netd/core/netd-priv.h"

typedef struct BindingOps {
        BindingKind kind;
        /* ADD, before anything changes: refuses what the binding cannot do with this request, naming the
         * field (may complete the request: a container's masquerade is ipMasq). */
        int (*validate)(Manager *m, AttachRequest *req, KvErr *e);
        /* ADD, once the record has its addresses: the binding's part of the record (link names, MAC, VF
         * settings). */
        void (*fill)(Endpoint *ep, const AttachRequest *req);
        /* ADD: the kernel side; undone by detach() (the caller's rollback). li feeds result(). */
        int (*attach)(Manager *m, Endpoint *ep, int nsfd, const AttachRequest *req, LinkInfo *li, KvErr *e);
        /* CHECK: the kernel side against the record; the message names the first thing missing. */
        int (*check)(Manager *m, const Endpoint *ep, int nsfd, KvErr *e);
        /* DEL, GC and rollback: removes the kernel side (NAT entries included); whatever is gone already is
         * not an error. deferred: links are retired now and deleted by the reaper. */
        int (*detach)(Manager *m, const Endpoint *ep, bool deferred, KvErr *e);
        /* The CNI result (1.1.0) of a new attachment. */
        json_t *(*result)(const Endpoint *ep, const LinkInfo *li, const AttachRequest *req);
        /* Guest DHCP of a VM attachment: completes the static lease netd serves (filled from the record).
         * NULL: netd serves no DHCP to this binding's guests. */
        void (*lease)(const Endpoint *ep, DhcpLease *l);
        /* An ACKed lease also goes into the node bridge's neighbour table. */
        bool learn_neighbour;
        /* The endpoint is a port of a node bridge (VLAN trunks guard its untagged ports). */
        bool bridge_port;
        /* Its NAT entries (ipMasq, portMappings) are in the node's NAT table. */
        bool node_nat;
        /* Start-up: reports (does not repair) what is missing of the kernel side. */
        void (*reconcile)(Manager *m, Endpoint *ep);
} BindingOps;

extern const BindingOps binding_bridge_ops, binding_masquerade_ops, binding_sriov_ops, binding_chained_ops;

const BindingOps *binding_ops(BindingKind k);
static inline const BindingOps *ep_binding(const Endpoint *ep) {
        return binding_ops(ep->binding_kind);
}

/* ---- shared by the ops (bridge-ops.c) ---- */

/* vm.ports are for the masquerade binding only. */
int binding_refuse_vm_ports(const AttachRequest *req, KvErr *e) _wur_;
/* Before a port joins the node bridge: the bridge (and its trunk) exists, links of the same name that wait
 * for the reaper are gone, and (antiSpoofing) the port's filter is in place before the port exists, so it never
 * sends unfiltered. A failure after this takes the filter down with bridge_port_unfilter(). */
int bridge_port_prepare(Manager *m, const Endpoint *ep, int nsfd, KvErr *e) _wur_;
/* After: the guard of an untagged port on a trunk; a migration target's datapath made passive. */
int bridge_port_finish(Manager *m, Endpoint *ep, KvErr *e) _wur_;
/* Anti-spoofing (portfilter.h): whether ep's port is filtered, the filter's view of it, and its removal
 * (nothing to remove is not an error). */
bool bridge_port_filtered(const Endpoint *ep);
void bridge_port_filter_from(const Endpoint *ep, PortFilterPort *ret);
int bridge_port_unfilter(Manager *m, const Endpoint *ep, KvErr *e);
/* Start-up: the filter table replaced by one for exactly the filtered ports of the endpoints. */
int bridge_ports_filter_sync(Manager *m, KvErr *e) _wur_;
/* Removes ep's node NAT entries, if it has any. */
int binding_nat_del(Manager *m, const Endpoint *ep, KvErr *e);
/* Retires (deferred, through the reaper) or deletes the links; ret is the error so far, returned unless it
 * is 0 and this fails. */
int binding_links_remove(Manager *m, int nsfd, const char *sbx, const char *tap, const char *host, bool deferred,
                         int ret, KvErr *e);
/* The result of a bridge port: the bridge, the host veth and the sandbox interface (a VM's tap with the
 * guest's MAC). */
json_t *bridge_port_result(const Endpoint *ep, const LinkInfo *li);
/* The bridge binding's fill: host veth "kv<hash>"; a VM's tap (CNI_IFNAME) and sandbox veth "kvs<hash>". */
void bridge_port_fill(Endpoint *ep, const AttachRequest *req);
/* CHECK: the port's filter, and the guard an untagged port of a VLAN trunk must have. */
int bridge_port_check(Manager *m, const Endpoint *ep, KvErr *e) _wur_;
/* Start-up for bridge ports: the bridge is ensured, a lost host link reported. */
void bridge_port_reconcile(Manager *m, Endpoint *ep);
