/* SPDX-License-Identifier: Apache-2.0 */
/* IPv4/IPv6 addresses and prefixes, MAC addresses. */
#pragma once

#include <netinet/in.h>

#include "common/util.h"

#define KV_ADDR_STRLEN 64 /* enough for "ffff:...:ffff/128" */
#define KV_MAC_STRLEN 18

typedef struct KvAddr {
        int family; /* AF_INET or AF_INET6; 0 = unset */
        union {
                struct in_addr in;
                struct in6_addr in6;
                uint8_t bytes[16];
        };
} KvAddr;

typedef struct KvPrefix {
        KvAddr addr;
        uint8_t prefixlen;
} KvPrefix;

int kv_addr_parse(const char *s, KvAddr *ret) _wur_;
/* "a.b.c.d/len" or "x::y/len"; -EINVAL on a missing or out-of-range length. */
int kv_prefix_parse(const char *s, KvPrefix *ret) _wur_;
const char *kv_addr_fmt(const KvAddr *a, char buf[static KV_ADDR_STRLEN]);
const char *kv_prefix_fmt(const KvPrefix *p, char buf[static KV_ADDR_STRLEN]);
size_t kv_addr_len(int family); /* 4 or 16 */
bool kv_addr_equal(const KvAddr *a, const KvAddr *b);
int kv_addr_cmp(const KvAddr *a, const KvAddr *b);
/* Network part of p (host bits cleared). */
KvPrefix kv_prefix_network(const KvPrefix *p);
bool kv_prefix_contains(const KvPrefix *p, const KvAddr *a);
/* a + 1 (with carry) within the family; false on overflow. */
bool kv_addr_next(KvAddr *a);
bool kv_addr_is_zero(const KvAddr *a);

int kv_mac_parse(const char *s, uint8_t ret[6]) _wur_;
/* A PCI address "0000:3b:02.1" (domain:bus:slot.function, hex) -> parts (each optional): -EINVAL when it is not of
 * that form, -ERANGE for a slot above 0x1f or a function above 7. */
int kv_pci_parse(const char *s, unsigned *ret_domain, unsigned *ret_bus, unsigned *ret_slot, unsigned *ret_function) _wur_;
const char *kv_mac_fmt(const uint8_t mac[6], char buf[static KV_MAC_STRLEN]);
/* 00:00:00:00:00:00: no MAC (never an interface's) */
bool kv_mac_is_zero(const uint8_t mac[6]);
/* The MAC of a VM interface that names none (macAddress): locally administered unicast, 02 then a hash of
 * "namespace/name/interface". The launcher gives the guest NIC this MAC and the controller asks the secondary
 * networks' plugins for the same, so the address claim and the guest agree across restarts and migrations. */
void kv_vm_nic_mac(const char *ns, const char *name, const char *iface, uint8_t ret[6]);
