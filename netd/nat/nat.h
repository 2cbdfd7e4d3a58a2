/* SPDX-License-Identifier: Apache-2.0 */
/* netd NAT, behind a backend-neutral interface: masquerade of endpoint egress and host port
 * forwards on the node, and the 1:1 NAT inside a masquerade sandbox (nat_sandbox_*). Backends plug in
 * through NatBackendOps, one per NatBackendKind ("nftables" now, "ebpf" later).
 *
 * Per-endpoint state lives only in sets/maps, so nat_add/nat_del change elements and never rules.
 * Subnets ("do not masquerade towards these") are shared by many endpoints: the backend keeps an
 * in-memory owner list (endpoint id -> subnets), rebuilt by nat_sync. A subnet element is added
 * by the first endpoint that names it and removed when the last known owner is deleted. After a
 * restart, call nat_sync before nat_del: nat_del of an endpoint id the backend has never seen
 * leaves its subnets in place (harmless: it only exempts destinations from masquerade). */
#pragma once

#include <jansson.h>
#include <netinet/in.h>

#include "common/addr.h"
#include "common/kverr.h"

#define NAT_MAX_ADDRS 4
#define NAT_MAX_SUBNETS 4

typedef struct NatPortMapping {
        uint16_t host_port, container_port;
        uint8_t proto;  /* IPPROTO_TCP / IPPROTO_UDP */
        KvAddr host_ip; /* family 0 = any local address */
} NatPortMapping;

typedef struct NatEndpoint {
        const char *id; /* attachment id, for messages and subnet ownership */
        KvAddr addrs[NAT_MAX_ADDRS];
        size_t n_addrs; /* the endpoint's addresses (v4 and/or v6); the first of each family is forwarded to */
        KvPrefix subnets[NAT_MAX_SUBNETS];
        size_t n_subnets; /* networks whose destinations are NOT masqueraded */
        bool masq;        /* ipMasq: masquerade egress from addrs to outside subnets */
        const NatPortMapping *pm;
        size_t n_pm;
} NatEndpoint;

typedef enum NatBackendKind {
        NAT_BACKEND_NFTABLES,
        NAT_BACKEND_EBPF,
        _NAT_BACKEND_KIND_MAX,
        _NAT_BACKEND_KIND_INVALID = -EINVAL,
} NatBackendKind;

const char *nat_backend_kind_to_string(NatBackendKind k); /* NULL if out of range */
NatBackendKind nat_backend_kind_from_string(const char *s); /* -EINVAL if unknown */
/* Whether this build has the backend ("ebpf": not yet). */
bool nat_backend_kind_available(NatBackendKind k);

typedef struct NatBackend NatBackend;

/* "nftables"; -EOPNOTSUPP for unknown or unavailable backends ("ebpf" for now). */
int nat_backend_new(const char *name, NatBackend **ret) _wur_;
NatBackend *nat_backend_free(NatBackend *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(NatBackend *, nat_backend_free);
const char *nat_backend_name(NatBackend *b);

/* Full atomic rebuild with exactly these endpoints, in one transaction (established NATed flows
 * survive: conntrack keeps their bindings). */
int nat_sync(NatBackend *b, const NatEndpoint *eps, size_t n, KvErr *e) _wur_;
/* Adds the endpoint's elements in one batch; creates the table skeleton if it is missing.
 * Idempotent for the same endpoint; a host port already forwarded elsewhere fails with -EEXIST. */
int nat_add(NatBackend *b, const NatEndpoint *ep, KvErr *e) _wur_;
/* Removes the endpoint's elements; elements already gone are not an error. */
int nat_del(NatBackend *b, const NatEndpoint *ep, KvErr *e) _wur_;
/* -ENOENT (naming the element) unless every element of ep is present in the kernel. */
int nat_check(NatBackend *b, const NatEndpoint *ep, KvErr *e) _wur_;
/* {"backend","table","masquerade":[addr...],"portMappings":[{"hostIP","hostPort","protocol","address","port"}]} */
int nat_dump(NatBackend *b, json_t **ret) _wur_;

/* ---- 1:1 NAT inside a sandbox netns (the masquerade binding, docs/masquerade.md) ----
 * Traffic coming in on the sandbox's uplink for a VM address goes to the guest (every port and ICMP,
 * or only the listed ports); the guest's traffic leaving on the uplink takes the VM address. No
 * backend instance: each call works in the netns it is given (-1: the current one), and the kernel
 * objects go with the sandbox. */
#define NAT_SANDBOX_MAX_PORTS 64

typedef struct NatSandboxPort {
        uint16_t port;
        uint8_t proto; /* IPPROTO_TCP / IPPROTO_UDP */
} NatSandboxPort;

typedef struct NatSandbox {
        const char *ifname; /* the sandbox's uplink (the veth end) */
        struct {
                KvAddr vm, guest; /* same family */
        } addrs[2];           /* at most one per family */
        size_t n_addrs;
        const NatSandboxPort *ports;
        size_t n_ports; /* 0 = every port (and ICMP) */
} NatSandbox;

/* Replaces the sandbox's NAT in one transaction (idempotent). A netns that cannot be entered is
 * KV_ERR_INVALID_ENV. */
int nat_sandbox_apply(NatBackendKind kind, int netns_fd, const NatSandbox *s, KvErr *e) _wur_;
/* Removes it; 0 if there was none. */
int nat_sandbox_remove(NatBackendKind kind, int netns_fd, KvErr *e) _wur_;
/* -ENOENT naming the first thing missing or different. */
int nat_sandbox_check(NatBackendKind kind, int netns_fd, const NatSandbox *s, KvErr *e) _wur_;

/* Checks an endpoint before anything is changed; errors name the field and value. */
int nat_endpoint_validate(const NatEndpoint *ep, KvErr *e) _wur_;
const char *nat_proto_name(uint8_t proto); /* "tcp", "udp", NULL */

/* ---- backend plumbing (nat.c and the backends only) ---- */
typedef struct NatBackendOps {
        NatBackendKind kind;
        int (*init)(NatBackend *b); /* -EOPNOTSUPP when the kernel lacks the feature */
        void (*done)(NatBackend *b);
        int (*sync)(NatBackend *b, const NatEndpoint *eps, size_t n, KvErr *e);
        int (*add)(NatBackend *b, const NatEndpoint *ep, KvErr *e);
        int (*del)(NatBackend *b, const NatEndpoint *ep, KvErr *e);
        int (*check)(NatBackend *b, const NatEndpoint *ep, KvErr *e);
        int (*dump)(NatBackend *b, json_t *obj);
        /* the sandbox NAT (nat_sandbox_*), called with checked arguments */
        int (*sandbox_apply)(int netns_fd, const NatSandbox *s, KvErr *e);
        int (*sandbox_remove)(int netns_fd, KvErr *e);
        int (*sandbox_check)(int netns_fd, const NatSandbox *s, KvErr *e);
} NatBackendOps;

struct NatBackend {
        const NatBackendOps *ops;
        void *data; /* backend private */
};

extern const NatBackendOps nat_nft_ops;

/* nft-sandbox.c: the nftables backend's sandbox table (inet kvnet-masq) */
int nat_nft_sandbox_apply(int netns_fd, const NatSandbox *s, KvErr *e) _wur_;
int nat_nft_sandbox_remove(int netns_fd, KvErr *e) _wur_;
int nat_nft_sandbox_check(int netns_fd, const NatSandbox *s, KvErr *e) _wur_;

/* ---- test hooks of the nftables backend ---- */
/* An nftables backend that renders each batch as text (nftnl_*_snprintf) instead of sending it;
 * the table is assumed to exist. */
int nat_nft_new_render(NatBackend **ret) _wur_;
/* Text rendered since the previous call (caller frees), "" if none. */
char *nat_nft_take_rendered(NatBackend *b);
/* Number of known endpoints naming this subnet. */
unsigned nat_nft_subnet_refs(NatBackend *b, const KvPrefix *p);
/* The batch nat_nft_sandbox_apply sends, as text. */
int nat_nft_sandbox_render(const NatSandbox *s, char **ret_text, KvErr *e) _wur_;
