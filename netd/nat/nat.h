/* SPDX-License-Identifier: Apache-2.0 */
/* netd NAT: masquerade of endpoint egress and host port forwards, behind a backend-neutral
 * interface. Backends plug in through NatBackendOps ("nftables" now, "ebpf" later).
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

/* Checks an endpoint before anything is changed; errors name the field and value. */
int nat_endpoint_validate(const NatEndpoint *ep, KvErr *e) _wur_;
const char *nat_proto_name(uint8_t proto); /* "tcp", "udp", NULL */

/* ---- backend plumbing (nat.c and nat-*.c only) ---- */
typedef struct NatBackendOps {
        const char *name;
        int (*init)(NatBackend *b); /* -EOPNOTSUPP when the kernel lacks the feature */
        void (*done)(NatBackend *b);
        int (*sync)(NatBackend *b, const NatEndpoint *eps, size_t n, KvErr *e);
        int (*add)(NatBackend *b, const NatEndpoint *ep, KvErr *e);
        int (*del)(NatBackend *b, const NatEndpoint *ep, KvErr *e);
        int (*check)(NatBackend *b, const NatEndpoint *ep, KvErr *e);
        int (*dump)(NatBackend *b, json_t *obj);
} NatBackendOps;

struct NatBackend {
        const NatBackendOps *ops;
        void *data; /* backend private */
};

extern const NatBackendOps nat_nft_ops;

/* ---- test hooks of the nftables backend ---- */
/* An nftables backend that renders each batch as text (nftnl_*_snprintf) instead of sending it;
 * the table is assumed to exist. */
int nat_nft_new_render(NatBackend **ret) _wur_;
/* Text rendered since the previous call (caller frees), "" if none. */
char *nat_nft_take_rendered(NatBackend *b);
/* Number of known endpoints naming this subnet. */
unsigned nat_nft_subnet_refs(NatBackend *b, const KvPrefix *p);
