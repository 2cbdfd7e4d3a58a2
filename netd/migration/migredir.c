/* SPDX-License-Identifier: Apache-2.0 */
#include "netd/migration/migredir.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "common/log.h"
#include "ebpf/migredir.h"
#include "migredir.skel.h"
#include "netd/link/tcbpf.h"

/* clsact ingress of the underlay interface: a handle/priority of its own, clear of the VLAN programs' 1/1
 * and of filters other software puts there at the usual small priorities. */
#define MIGREDIR_TC_HANDLE 0x6b76
#define MIGREDIR_TC_PRIO 0x6b76

struct MigRedir {
        struct migredir_bpf *skel;
        int ifindex;
        char ifname[IF_NAMESIZE];
        unsigned n;
};

static int uplink_of(const KvAddr *a, char name[IF_NAMESIZE]) {
        struct ifaddrs *ifa = NULL;
        if (getifaddrs(&ifa) < 0)
                return negative_errno();
        int r = -EADDRNOTAVAIL;
        for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
                if (!i->ifa_addr || i->ifa_addr->sa_family != a->family)
                        continue;
                const void *p = a->family == AF_INET ? (const void *) &((struct sockaddr_in *) i->ifa_addr)->sin_addr
                                                     : (const void *) &((struct sockaddr_in6 *) i->ifa_addr)->sin6_addr;
                if (memcmp(p, a->bytes, a->family == AF_INET ? 4 : 16) == 0) {
                        snprintf(name, IF_NAMESIZE, "%s", i->ifa_name);
                        r = (int) if_nametoindex(i->ifa_name);
                        if (r == 0)
                                r = negative_errno();
                        break;
                }
        }
        freeifaddrs(ifa);
        return r;
}

static struct migredir_key key_of(const KvAddr *a) {
        struct migredir_key k = { .family = (uint32_t) a->family };
        memcpy(k.addr, a->bytes, a->family == AF_INET ? 4 : 16);
        return k;
}

MigRedir *migredir_free(MigRedir *m) {
        if (!m)
                return NULL;
        int r = tcbpf_detach(m->ifindex, BPF_TC_INGRESS, MIGREDIR_TC_HANDLE, MIGREDIR_TC_PRIO);
        if (r < 0)
                log_warning("migration redirect: detaching from '%s': %s", m->ifname, strerror(-r));
        migredir_bpf__destroy(m->skel);
        free(m);
        return NULL;
}

static int open_on(const KvAddr *node_addr, MigRedir **ret, KvErr *e) {
        char a[KV_ADDR_STRLEN];
        MigRedir *m = calloc(1, sizeof *m);
        if (!m)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "migration redirect: out of memory");
        int r = uplink_of(node_addr, m->ifname);
        if (r < 0) {
                free(m);
                return kverr_set_errno(e, KV_ERR_INVALID_CONFIG, r,
                                       "migration redirect: no interface of this node carries nodeAddress %s",
                                       kv_addr_fmt(node_addr, a));
        }
        m->ifindex = r;
        tcbpf_log_setup();
        m->skel = migredir_bpf__open_and_load();
        if (!m->skel) {
                r = negative_errno();
                free(m);
                return kverr_set_errno(e, KV_ERR_INTERNAL, r,
                                       "migration redirect: cannot load the BPF program (needs CAP_BPF and CAP_NET_ADMIN)");
        }
        r = tcbpf_attach(m->ifindex, BPF_TC_INGRESS, bpf_program__fd(m->skel->progs.migredir_ingress),
                         MIGREDIR_TC_HANDLE, MIGREDIR_TC_PRIO);
        if (r < 0) {
                migredir_bpf__destroy(m->skel);
                kverr_set_errno(e, KV_ERR_INTERNAL, r, "migration redirect: attaching to '%s'", m->ifname);
                free(m);
                return r;
        }
        log_info("migration redirect: program attached to '%s' (ingress)", m->ifname);
        *ret = m;
        return 0;
}

int migredir_add(MigRedir **pm, const KvAddr *node_addr, const KvAddr *dst, int out_ifindex,
                 const uint8_t dmac[6], const uint8_t smac[6], KvErr *e) {
        if (dst->family != AF_INET && dst->family != AF_INET6)
                return kverr_set(e, KV_ERR_INTERNAL, -EAFNOSUPPORT, "migration redirect: not an IP address");
        bool created = false;
        if (!*pm) {
                int r = open_on(node_addr, pm, e);
                if (r < 0)
                        return r;
                created = true;
        }
        MigRedir *m = *pm;
        struct migredir_key k = key_of(dst);
        struct migredir_val v = { .ifindex = (uint32_t) out_ifindex };
        memcpy(v.dmac, dmac, 6);
        memcpy(v.smac, smac, 6);
        int fd = bpf_map__fd(m->skel->maps.migredir_targets);
        struct migredir_val old;
        bool existed = bpf_map_lookup_elem(fd, &k, &old) == 0;
        char a[KV_ADDR_STRLEN];
        if (existed && old.ifindex != (uint32_t) out_ifindex)
                return kverr_set(e, KV_ERR_INTERNAL, -EEXIST,
                                 "migration redirect: %s is armed for another attachment (ifindex %u)",
                                 kv_addr_fmt(dst, a), old.ifindex);
        if (bpf_map_update_elem(fd, &k, &v, BPF_ANY) < 0) {
                int r = negative_errno();
                kverr_set_errno(e, KV_ERR_INTERNAL, r, "migration redirect: arming %s", kv_addr_fmt(dst, a));
                if (created)
                        *pm = migredir_free(m);
                return r;
        }
        if (!existed)
                m->n++;
        log_debug("migration redirect: %s armed for ifindex %d (%u armed)", kv_addr_fmt(dst, a), out_ifindex, m->n);
        return 0;
}

static int lookup(const MigRedir *m, const KvAddr *dst, struct migredir_val *ret) {
        struct migredir_key k = key_of(dst);
        return m && bpf_map_lookup_elem(bpf_map__fd(m->skel->maps.migredir_targets), &k, ret) == 0;
}

int migredir_packets(const MigRedir *m, const KvAddr *dst, uint64_t *ret) {
        struct migredir_val v;
        if (!lookup(m, dst, &v))
                return 0;
        *ret = v.packets;
        return 1;
}

int migredir_del(MigRedir **pm, const KvAddr *dst, int out_ifindex, uint64_t *ret_packets) {
        MigRedir *m = *pm;
        struct migredir_val v;
        if (!lookup(m, dst, &v) || v.ifindex != (uint32_t) out_ifindex)
                return 0;
        uint64_t packets = v.packets;
        struct migredir_key k = key_of(dst);
        if (bpf_map_delete_elem(bpf_map__fd(m->skel->maps.migredir_targets), &k) == 0 && m->n > 0)
                m->n--;
        char a[KV_ADDR_STRLEN];
        log_debug("migration redirect: %s disarmed for ifindex %d (%u armed)", kv_addr_fmt(dst, a), out_ifindex, m->n);
        if (ret_packets)
                *ret_packets = packets;
        if (m->n == 0)
                *pm = migredir_free(m);
        return 1;
}

const char *migredir_uplink(const MigRedir *m) {
        return m ? m->ifname : "";
}

void migredir_reset(const KvAddr *node_addr) {
        char ifname[IF_NAMESIZE], name[16];
        if (!node_addr->family)
                return;
        int ifindex = uplink_of(node_addr, ifname);
        if (ifindex <= 0 || tcbpf_query(ifindex, BPF_TC_INGRESS, MIGREDIR_TC_HANDLE, MIGREDIR_TC_PRIO, name) <= 0)
                return;
        int r = tcbpf_detach(ifindex, BPF_TC_INGRESS, MIGREDIR_TC_HANDLE, MIGREDIR_TC_PRIO);
        if (r < 0)
                log_warning("migration redirect: removing the filter a previous run left on '%s': %s", ifname,
                            strerror(-r));
        else
                log_notice("migration redirect: removed the filter a previous run left on '%s'", ifname);
}
