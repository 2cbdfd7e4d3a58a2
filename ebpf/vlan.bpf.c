/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/* 802.1Q access ports without bridge VLAN filtering (docs/vlan.md). Attached by netd with tc (clsact):
 *   vlan_to_trunk    ingress of the trunk end of a VLAN link: frames leaving the VLAN's bridge get the VLAN's
 *                    tag; frames that carry a tag already are dropped (no stacking, no hopping).
 *   vlan_from_trunk  egress of the same end: only frames tagged with the VLAN's id pass into the VLAN's bridge,
 *                    untagged.
 *   untagged_only    ingress and egress of an untagged endpoint's port on a trunk: tagged frames neither leave
 *                    the endpoint (it cannot join a VLAN by tagging) nor reach it (it does not see VLAN floods).
 * On the bridges these frames pass through, the tag travels in skb metadata (the kernel strips a received 802.1Q
 * header into it before tc runs); a device that cannot carry it puts it back into the frame on transmit. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

const volatile __u16 vlan_id = 0; /* set before load; 1..4094 */

static __always_inline int is_tagged(const struct __sk_buff *skb) {
        return skb->vlan_present || skb->protocol == bpf_htons(ETH_P_8021Q) ||
               skb->protocol == bpf_htons(ETH_P_8021AD);
}

SEC("tc")
int vlan_to_trunk(struct __sk_buff *skb) {
        if (is_tagged(skb))
                return TC_ACT_SHOT;
        if (bpf_skb_vlan_push(skb, bpf_htons(ETH_P_8021Q), vlan_id) < 0)
                return TC_ACT_SHOT;
        return TC_ACT_OK;
}

SEC("tc")
int vlan_from_trunk(struct __sk_buff *skb) {
        if (!skb->vlan_present || (skb->vlan_tci & 0x0fff) != vlan_id)
                return TC_ACT_SHOT;
        if (skb->protocol == bpf_htons(ETH_P_8021Q) || skb->protocol == bpf_htons(ETH_P_8021AD))
                return TC_ACT_SHOT; /* a second tag inside: not ours to unwrap */
        if (bpf_skb_vlan_pop(skb) < 0)
                return TC_ACT_SHOT;
        return TC_ACT_OK;
}

SEC("tc")
int untagged_only(struct __sk_buff *skb) {
        return is_tagged(skb) ? TC_ACT_SHOT : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
