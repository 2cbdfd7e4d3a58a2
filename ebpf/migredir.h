/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/* Map layout shared by ebpf/migredir.bpf.c and netd/migration/migredir.c. */
#pragma once

#include <linux/types.h>

#define MIGREDIR_MAX_ENTRIES 4096

/* A migrating VM's address. family: AF_INET (2) or AF_INET6 (10); an IPv4 address fills addr[0..3], the rest
 * is zero. */
struct migredir_key {
        __u32 family;
        __u8 addr[16];
};

/* Where its packets go: out of ifindex (the node end of the target attachment's veth) with the Ethernet
 * header rewritten to dmac (the VM's MAC) / smac (the node bridge's MAC). The counters are the program's. */
struct migredir_val {
        __u32 ifindex;
        __u8 dmac[6];
        __u8 smac[6];
        __u64 packets;
        __u64 bytes;
};
