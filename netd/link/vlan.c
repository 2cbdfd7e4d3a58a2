/* SPDX-License-Identifier: Apache-2.0 */
#include "netd/link/vlan.h"

#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>

#include <bpf/libbpf.h>

#include "common/log.h"
#include "netd/link/netlink.h"
#include "netd/link/tcbpf.h"
#include "vlan.skel.h"

/* kvnet's tc filters: clsact, handle 1, priority 1 on each direction they use. */
#define VLAN_TC_HANDLE 1
#define VLAN_TC_PRIO 1

int vlan_bridge_name(const char *trunk, uint16_t vid, char buf[16], KvErr *e) {
        if (vid < 1 || vid > VLAN_ID_MAX)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "network: 'vlan' must be 1..%d, got %u",
                                 VLAN_ID_MAX, vid);
        int n = snprintf(buf, 16, "%s.%u", trunk, vid);
        if (n < 0 || n >= 16)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ENAMETOOLONG,
                                 "network: 'bridge' '%s' is too long for 'vlan' %u: the VLAN's bridge '%s.%u' would "
                                 "exceed %d characters",
                                 trunk, vid, trunk, vid, IFNAMSIZ - 1);
        return 0;
}

void vlan_link_names(const char *trunk, uint16_t vid, char trunk_end[16], char vlan_end[16]) {
        char key[32];
        int n = snprintf(key, sizeof key, "%s/%u", trunk, vid);
        uint32_t h = (uint32_t) kv_hash64(key, (size_t) n);
        snprintf(trunk_end, 16, "kvl%08x", h);
        snprintf(vlan_end, 16, "kvm%08x", h);
}

/* Loads the programs with vid baked in (vid 0: only the guard is used). */
static int load(uint16_t vid, struct vlan_bpf **ret, KvErr *e) {
        tcbpf_log_setup();
        struct vlan_bpf *s = vlan_bpf__open();
        if (!s)
                return kverr_set_errno(e, KV_ERR_INTERNAL, negative_errno(), "vlan: cannot open the BPF object");
        s->rodata->vlan_id = vid;
        int r = vlan_bpf__load(s);
        if (r < 0) {
                vlan_bpf__destroy(s);
                return kverr_set_errno(e, KV_ERR_INTERNAL, r,
                                       "vlan: cannot load the BPF programs (needs CAP_BPF and CAP_NET_ADMIN)");
        }
        *ret = s;
        return 0;
}

int vlan_link_ensure(const char *trunk, const char *vlan_bridge, uint16_t vid, uint32_t mtu, KvErr *e) {
        char tname[16], vname[16];
        vlan_link_names(trunk, vid, tname, vname);
        _cleanup_nl_sock_ NlSock *sk = NULL;
        int r = lnl_open_e(-1, &sk, e);
        if (r < 0)
                return r;
        LnlLink tb, vb, t, v;
        if ((r = lnl_link_get(sk, trunk, &tb)) < 0)
                return nl_error(e, sk, r, "vlan %u: looking up trunk bridge '%s'", vid, trunk);
        if ((r = lnl_link_get(sk, vlan_bridge, &vb)) < 0)
                return nl_error(e, sk, r, "vlan %u: looking up bridge '%s'", vid, vlan_bridge);
        r = lnl_link_get(sk, tname, &t);
        if (r == -ENODEV) {
                r = lnl_veth_create(sk, tname, 0, mtu, vname, -1, NULL);
                if (r < 0 && r != -EEXIST)
                        return nl_error(e, sk, r, "vlan %u: creating the link %s <-> %s", vid, tname, vname);
                r = lnl_link_get(sk, tname, &t);
        }
        if (r < 0)
                return nl_error(e, sk, r, "vlan %u: looking up '%s'", vid, tname);
        if (!streq(t.kind, "veth"))
                return kverr_set(e, KV_ERR_INTERNAL, -EEXIST, "vlan %u: link '%s' exists but is not a veth", vid,
                                 tname);
        if ((r = lnl_link_get(sk, vname, &v)) < 0)
                return nl_error(e, sk, r, "vlan %u: looking up '%s'", vid, vname);
        if ((r = lnl_link_addrgen_none(sk, vname)) < 0 || (r = lnl_link_ipv6_disable(-1, vname)) < 0)
                return nl_error(e, sk, r, "vlan %u: turning IPv6 off on '%s'", vid, vname);

        /* Programs before the ports join: no frame crosses untagged. */
        struct vlan_bpf *s = NULL;
        if ((r = load(vid, &s, e)) < 0)
                return r;
        r = tcbpf_attach(t.ifindex, BPF_TC_INGRESS, bpf_program__fd(s->progs.vlan_to_trunk), VLAN_TC_HANDLE,
                         VLAN_TC_PRIO);
        if (r >= 0)
                r = tcbpf_attach(t.ifindex, BPF_TC_EGRESS, bpf_program__fd(s->progs.vlan_from_trunk), VLAN_TC_HANDLE,
                                 VLAN_TC_PRIO);
        vlan_bpf__destroy(s); /* the filters hold the programs */
        if (r < 0)
                return nl_error(e, NULL, r, "vlan %u: attaching the tagging programs to '%s'", vid, tname);

        if (!(v.flags & IFF_UP) && (r = lnl_link_set(sk, v.ifindex, 1, 0)) < 0)
                return nl_error(e, sk, r, "vlan %u: setting '%s' up", vid, vname);
        if (!(t.flags & IFF_UP) && (r = lnl_link_set(sk, t.ifindex, 1, 0)) < 0)
                return nl_error(e, sk, r, "vlan %u: setting '%s' up", vid, tname);
        /* Looked up again once up: the lookup also settles their carrier state before they join the bridges
         * (one port event each, see link_join_bridge). */
        if ((r = lnl_link_get(sk, vname, &v)) < 0 || (r = lnl_link_get(sk, tname, &t)) < 0)
                return nl_error(e, sk, r, "vlan %u: looking up the link", vid);
        if (v.master != vb.ifindex && (r = lnl_link_set_master(sk, v.ifindex, vb.ifindex)) < 0)
                return nl_error(e, sk, r, "vlan %u: adding '%s' to bridge '%s'", vid, vname, vlan_bridge);
        if (t.master != tb.ifindex && (r = lnl_link_set_master(sk, t.ifindex, tb.ifindex)) < 0)
                return nl_error(e, sk, r, "vlan %u: adding '%s' to bridge '%s'", vid, tname, trunk);
        return 0;
}

static int guard_fd = -1; /* loaded once per process; the filters hold their own references */

int vlan_guard_port(const char *ifname, KvErr *e) {
        int ifindex = (int) if_nametoindex(ifname);
        if (ifindex <= 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, negative_errno(), "vlan guard: no link '%s'", ifname);
        if (guard_fd < 0) {
                struct vlan_bpf *s = NULL;
                int r = load(0, &s, e);
                if (r < 0)
                        return r;
                guard_fd = fcntl(bpf_program__fd(s->progs.untagged_only), F_DUPFD_CLOEXEC, 3);
                vlan_bpf__destroy(s);
                if (guard_fd < 0)
                        return kverr_set_errno(e, KV_ERR_INTERNAL, negative_errno(), "vlan guard: dup");
        }
        int r = tcbpf_attach(ifindex, BPF_TC_INGRESS, guard_fd, VLAN_TC_HANDLE, VLAN_TC_PRIO);
        if (r >= 0)
                r = tcbpf_attach(ifindex, BPF_TC_EGRESS, guard_fd, VLAN_TC_HANDLE, VLAN_TC_PRIO);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_INTERNAL, r, "vlan guard: attaching to '%s'", ifname);
        return 0;
}

int vlan_guard_present(const char *ifname) {
        int ifindex = (int) if_nametoindex(ifname);
        if (ifindex <= 0)
                return negative_errno();
        char name[16];
        int r = tcbpf_query(ifindex, BPF_TC_INGRESS, VLAN_TC_HANDLE, VLAN_TC_PRIO, name);
        return r <= 0 ? r : streq(name, "untagged_only");
}
