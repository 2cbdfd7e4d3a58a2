/* SPDX-License-Identifier: Apache-2.0 */
/* SR-IOV VF configuration messages (RTM_SETLINK on the PF with IFLA_VFINFO_LIST), the kernel
 * sender and the recording sink. The message is built the same way for both; only apply() differs. */
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <libmnl/libmnl.h>

#include "common/array.h"
#include "common/nl.h"
#include "netd/binding/sriov.h"

int sriov_nl_build_vf_config(const SriovVfConfig *c, uint32_t seq, void *buf, size_t size) {
        if (!c || !buf || c->pf_ifindex <= 0 || c->vlan > 4094)
                return -EINVAL;
        if (size < SRIOV_NL_MSG_MAX)
                return -ENOBUFS;
        memset(buf, 0, SRIOV_NL_MSG_MAX);

        struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
        nlh->nlmsg_type = RTM_SETLINK;
        nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
        nlh->nlmsg_seq = seq;
        struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
        ifi->ifi_family = AF_UNSPEC;
        ifi->ifi_index = c->pf_ifindex;

        struct nlattr *list = mnl_attr_nest_start(nlh, IFLA_VFINFO_LIST);
        struct nlattr *info = mnl_attr_nest_start(nlh, IFLA_VF_INFO);

        struct ifla_vf_mac mac = { .vf = c->vf };
        memcpy(mac.mac, c->mac, 6);
        mnl_attr_put(nlh, IFLA_VF_MAC, sizeof mac, &mac);

        struct ifla_vf_vlan vlan = { .vf = c->vf, .vlan = c->vlan, .qos = 0 };
        mnl_attr_put(nlh, IFLA_VF_VLAN, sizeof vlan, &vlan);

        struct ifla_vf_spoofchk spoof = { .vf = c->vf, .setting = c->spoofchk ? 1 : 0 };
        mnl_attr_put(nlh, IFLA_VF_SPOOFCHK, sizeof spoof, &spoof);

        struct ifla_vf_trust trust = { .vf = c->vf, .setting = c->trust ? 1 : 0 };
        mnl_attr_put(nlh, IFLA_VF_TRUST, sizeof trust, &trust);

        mnl_attr_nest_end(nlh, info);
        mnl_attr_nest_end(nlh, list);
        return (int) nlh->nlmsg_len;
}

typedef struct VfParse {
        SriovVfConfig *c;
        unsigned seen; /* bit per IFLA_VF_* */
        bool vf_mismatch;
} VfParse;

static void vf_index_check(VfParse *p, uint32_t vf) {
        if (p->seen == 0)
                p->c->vf = vf;
        else if (p->c->vf != vf)
                p->vf_mismatch = true;
}

/* Copies the attribute's struct (size bytes) into out and checks its VF index, the __u32 every ifla_vf_*
 * struct starts with. False if the attribute is too short. */
static bool vf_attr_copy(VfParse *p, const struct nlattr *a, void *out, size_t size) {
        if (mnl_attr_get_payload_len(a) < size)
                return false;
        memcpy(out, mnl_attr_get_payload(a), size);
        uint32_t vf;
        memcpy(&vf, out, sizeof vf);
        vf_index_check(p, vf);
        return true;
}

static int vf_attr_cb(const struct nlattr *a, void *data) {
        VfParse *p = data;
        uint16_t type = mnl_attr_get_type(a);
        switch (type) {
        case IFLA_VF_MAC: {
                struct ifla_vf_mac m;
                if (!vf_attr_copy(p, a, &m, sizeof m))
                        return MNL_CB_ERROR;
                memcpy(p->c->mac, m.mac, 6);
                break;
        }
        case IFLA_VF_VLAN: {
                struct ifla_vf_vlan m;
                if (!vf_attr_copy(p, a, &m, sizeof m))
                        return MNL_CB_ERROR;
                p->c->vlan = (uint16_t) m.vlan;
                break;
        }
        case IFLA_VF_SPOOFCHK: {
                struct ifla_vf_spoofchk m;
                if (!vf_attr_copy(p, a, &m, sizeof m))
                        return MNL_CB_ERROR;
                p->c->spoofchk = m.setting != 0;
                break;
        }
        case IFLA_VF_TRUST: {
                struct ifla_vf_trust m;
                if (!vf_attr_copy(p, a, &m, sizeof m))
                        return MNL_CB_ERROR;
                p->c->trust = m.setting != 0;
                break;
        }
        default: return MNL_CB_OK;
        }
        p->seen |= 1u << type;
        return MNL_CB_OK;
}

typedef struct ListParse {
        VfParse *vp;
        unsigned n_info;
        bool bad;
} ListParse;

static int vflist_cb(const struct nlattr *a, void *data) {
        ListParse *lp = data;
        if (mnl_attr_get_type(a) != IFLA_VF_INFO)
                return MNL_CB_OK;
        lp->n_info++;
        if (mnl_attr_parse_nested(a, vf_attr_cb, lp->vp) < 0)
                lp->bad = true;
        return MNL_CB_OK;
}

static int link_attr_cb(const struct nlattr *a, void *data) {
        ListParse *lp = data;
        if (mnl_attr_get_type(a) != IFLA_VFINFO_LIST)
                return MNL_CB_OK;
        if (mnl_attr_parse_nested(a, vflist_cb, lp) < 0)
                lp->bad = true;
        return MNL_CB_OK;
}

int sriov_nl_parse_vf_config(const struct nlmsghdr *nlh, SriovVfConfig *ret) {
        if (!nlh || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(struct ifinfomsg)) || nlh->nlmsg_type != RTM_SETLINK)
                return -EBADMSG;
        SriovVfConfig c = {};
        const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
        c.pf_ifindex = ifi->ifi_index;
        VfParse vp = { .c = &c };
        ListParse lp = { .vp = &vp };
        if (mnl_attr_parse(nlh, sizeof *ifi, link_attr_cb, &lp) < 0 || lp.bad || lp.n_info != 1 || vp.vf_mismatch)
                return -EBADMSG;
        unsigned want = (1u << IFLA_VF_MAC) | (1u << IFLA_VF_VLAN) | (1u << IFLA_VF_SPOOFCHK) | (1u << IFLA_VF_TRUST);
        if ((vp.seen & want) != want)
                return -EBADMSG;
        *ret = c;
        return 0;
}

/* ---- kernel ops ---- */

static int kernel_apply(void *userdata, const SriovVfConfig *c, const struct nlmsghdr *msg) {
        (void) userdata;
        (void) c;
        _cleanup_nl_sock_ NlSock *nl = NULL;
        int r = nl_sock_open(NETLINK_ROUTE, -1, &nl);
        if (r < 0)
                return r;
        /* A copy: nl_request() sets the flags and the sequence number. */
        uint8_t req[SRIOV_NL_MSG_MAX] __attribute__((aligned(8)));
        if (msg->nlmsg_len > sizeof req)
                return -EMSGSIZE;
        memcpy(req, msg, msg->nlmsg_len);
        return nl_request(nl, (struct nlmsghdr *) req);
}

static const SriovNlOps kernel_ops = { .name = "netlink", .apply = kernel_apply };

const SriovNlOps *sriov_nl_ops_kernel(void) {
        return &kernel_ops;
}

/* ---- recording sink ---- */

static int sink_apply(void *userdata, const SriovVfConfig *c, const struct nlmsghdr *msg) {
        SriovNlSink *s = userdata;
        if (s->fail_with < 0)
                return s->fail_with;
        if (msg->nlmsg_len > SRIOV_NL_MSG_MAX)
                return -EMSGSIZE;
        int r = ARRAY_GROW(s->records, s->cap_records, s->n_records + 1);
        if (r < 0)
                return r;
        SriovNlRecord *rec = &s->records[s->n_records++];
        memset(rec, 0, sizeof *rec);
        rec->config = *c;
        memcpy(rec->msg, msg, msg->nlmsg_len);
        rec->len = msg->nlmsg_len;
        return 0;
}

int sriov_nl_sink_new(SriovNlSink **ret) {
        SriovNlSink *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        s->ops = (SriovNlOps) { .name = "sink", .apply = sink_apply, .userdata = s };
        *ret = s;
        return 0;
}

SriovNlSink *sriov_nl_sink_free(SriovNlSink *s) {
        if (!s)
                return NULL;
        free(s->records);
        free(s);
        return NULL;
}
