/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/* Migration redirect on the target node (docs/migration.md, "The switchover"). Attached by netd with tc
 * (clsact ingress) to the node's underlay interface while a migration target is prepared there.
 *
 * From the moment the source QEMU pauses for the switchover, the source node routes the VM's addresses to
 * this node (a host route via its underlay address). This node cannot route them the usual way yet: every
 * FDB on the VM network still points at the source. So packets addressed to this node's MAC whose
 * destination is a migrating VM's address are forwarded here, like a router would (TTL / hop limit
 * decremented, Ethernet header rewritten), straight out of the target attachment's veth into the target
 * pod. There they wait in the tap's queue while the incoming QEMU is paused and reach the guest the moment
 * it resumes, instead of dying in the source's tap. netd removes the entry once the target is active. */
#include <stddef.h>

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "ebpf/migredir.h"

struct {
        __uint(type, BPF_MAP_TYPE_HASH);
        __uint(max_entries, MIGREDIR_MAX_ENTRIES);
        __type(key, struct migredir_key);
        __type(value, struct migredir_val);
} migredir_targets SEC(".maps");

static __always_inline int forward(struct __sk_buff *skb, struct ethhdr *eth, struct migredir_val *v) {
        __builtin_memcpy(eth->h_dest, v->dmac, ETH_ALEN);
        __builtin_memcpy(eth->h_source, v->smac, ETH_ALEN);
        __sync_fetch_and_add(&v->packets, 1);
        __sync_fetch_and_add(&v->bytes, skb->len);
        return bpf_redirect(v->ifindex, 0);
}

SEC("tc")
int migredir_ingress(struct __sk_buff *skb) {
        /* Only what was sent to this node: not frames a shared segment floods past it. */
        if (skb->pkt_type != PACKET_HOST)
                return TC_ACT_OK;
        void *data = (void *) (long) skb->data, *end = (void *) (long) skb->data_end;
        struct ethhdr *eth = data;
        if ((void *) (eth + 1) > end)
                return TC_ACT_OK;
        struct migredir_key k = {};
        struct migredir_val *v;
        if (eth->h_proto == bpf_htons(ETH_P_IP)) {
                struct iphdr *ip = (void *) (eth + 1);
                if ((void *) (ip + 1) > end)
                        return TC_ACT_OK;
                k.family = 2;
                __builtin_memcpy(k.addr, &ip->daddr, 4);
                v = bpf_map_lookup_elem(&migredir_targets, &k);
                if (!v || ip->ttl <= 1) /* TTL exceeded: the stack answers as a router does */
                        return TC_ACT_OK;
                __u16 old = *(__u16 *) &ip->ttl; /* ttl and protocol: one 16-bit word of the checksum */
                ip->ttl--;
                __u16 new = *(__u16 *) &ip->ttl;
                int r = forward(skb, eth, v);
                /* helpers invalidate packet pointers: the checksum comes last */
                if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), old, new, 2) < 0)
                        return TC_ACT_SHOT;
                return r;
        }
        if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
                struct ipv6hdr *ip6 = (void *) (eth + 1);
                if ((void *) (ip6 + 1) > end)
                        return TC_ACT_OK;
                k.family = 10;
                __builtin_memcpy(k.addr, &ip6->daddr, 16);
                v = bpf_map_lookup_elem(&migredir_targets, &k);
                if (!v || ip6->hop_limit <= 1)
                        return TC_ACT_OK;
                ip6->hop_limit--;
                return forward(skb, eth, v);
        }
        return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
