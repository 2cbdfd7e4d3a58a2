/* SPDX-License-Identifier: Apache-2.0 */
/* NIC hot-plug and unplug on the running domain: {"op":"attach-interface"} and
 * {"op":"detach-interface"} (requests parsed in launcher/hotplug.c), libvirt's DEVICE_REMOVED and
 * DEVICE_REMOVAL_FAILED events, and the NIC list as the domain has it now (status). */
#include <net/if.h>

#include "common/log.h"
#include "launcher/runtime/runtime.h"

struct RtDetach {
        Runtime *rt;
        char *name;
        EventSource *timer;
};

static void detach_free(RtDetach *d) {
        if (!d)
                return;
        if (d->timer)
                event_source_free(d->timer);
        free(d->name);
        free(d);
}

static void rt_nics_publish(Runtime *rt) {
        rt->st.nics = rt->nics;
        rt->st.n_nics = rt->n_nics;
}

int rt_nics_init(Runtime *rt, const LaunchNic *nics, size_t n) {
        if (n > 0) {
                rt->ifcs = calloc(n, sizeof *rt->ifcs);
                rt->nics = calloc(n, sizeof *rt->nics);
                rt->detaches = calloc(n, sizeof *rt->detaches);
                if (!rt->ifcs || !rt->nics || !rt->detaches)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                rt->ifcs[i] = rt->v->interfaces[i]; /* ports stay the VMI's: only the name is owned */
                rt->ifcs[i].name = strdup(rt->v->interfaces[i].name);
                if (!rt->ifcs[i].name)
                        return -ENOMEM;
                rt->nics[i] = nics[i];
                rt->nics[i].name = rt->ifcs[i].name;
                rt->n_nics = rt->cap_nics = i + 1;
        }
        rt_nics_publish(rt);
        return 0;
}

void rt_nics_free(Runtime *rt) {
        for (size_t i = 0; i < rt->n_nics; i++) {
                free(rt->ifcs[i].name);
                detach_free(rt->detaches[i]);
        }
        free(rt->ifcs);
        free(rt->nics);
        free(rt->detaches);
        rt->ifcs = NULL;
        rt->nics = NULL;
        rt->detaches = NULL;
        rt->n_nics = rt->cap_nics = 0;
        rt->st.nics = NULL;
        rt->st.n_nics = 0;
}

static ssize_t rt_nic_find(Runtime *rt, const char *name) {
        for (size_t i = 0; i < rt->n_nics; i++)
                if (streq(rt->ifcs[i].name, name))
                        return (ssize_t) i;
        return -1;
}

static void rt_nic_remove(Runtime *rt, size_t i) {
        free(rt->ifcs[i].name);
        detach_free(rt->detaches[i]);
        size_t tail = rt->n_nics - i - 1;
        memmove(&rt->ifcs[i], &rt->ifcs[i + 1], tail * sizeof *rt->ifcs);
        memmove(&rt->nics[i], &rt->nics[i + 1], tail * sizeof *rt->nics);
        memmove(&rt->detaches[i], &rt->detaches[i + 1], tail * sizeof *rt->detaches);
        rt->n_nics--;
        rt->nics_changed = true;
        rt_nics_publish(rt);
}

int rt_domain_op_check(Runtime *rt, const char *ctx, KvErr *e) {
        if (rt->done || rt->st.shutting_down)
                return kverr_set(e, KV_ERR_TRY_AGAIN, -EBUSY, "%s: refused, the launcher is shutting down", ctx);
        if (rt->st.phase != LAUNCH_PHASE_RUNNING || !rt->dom)
                return kverr_set(e, KV_ERR_TRY_AGAIN, -EBUSY, "%s: the domain is not running (phase %s)", ctx,
                                 launch_phase_to_string(rt->st.phase));
        if (rt->mig || rt->mig_stats_timer || rt->mig_succeeded)
                return kverr_set(e, KV_ERR_TRY_AGAIN, -EBUSY, "%s: refused during the live migration to '%s'", ctx,
                                 rt->st.mig.dest);
        return 0;
}

bool rt_nics_detaching(const Runtime *rt, const char **ret_name) {
        for (size_t i = 0; i < rt->n_nics; i++)
                if (rt->nics[i].detaching) {
                        if (ret_name)
                                *ret_name = rt->nics[i].name;
                        return true;
                }
        return false;
}

static int rt_nics_grow(Runtime *rt) {
        if (rt->n_nics < rt->cap_nics)
                return 0;
        size_t cap = rt->cap_nics ? rt->cap_nics * 2 : 4;
        LaunchInterface *ifcs = reallocarray(rt->ifcs, cap, sizeof *ifcs);
        if (!ifcs)
                return -ENOMEM;
        rt->ifcs = ifcs;
        LaunchNic *nics = reallocarray(rt->nics, cap, sizeof *nics);
        if (!nics)
                return -ENOMEM;
        rt->nics = nics;
        RtDetach **det = reallocarray(rt->detaches, cap, sizeof *det);
        if (!det)
                return -ENOMEM;
        rt->detaches = det;
        rt->cap_nics = cap;
        rt_nics_publish(rt);
        return 0;
}

int rt_attach_interface(Runtime *rt, json_t *args, KvErr *e) {
        static const char ctx[] = "attach-interface";
        LaunchAttachReq q = {};
        _cleanup_free_ char *xml = NULL;
        int r = launch_attach_req_parse(args, rt->v, &q, e);
        if (r < 0)
                return r;
        if ((r = rt_domain_op_check(rt, ctx, e)) < 0)
                goto out;
        for (size_t i = 0; i < rt->n_nics; i++) {
                const LaunchNic *n = &rt->nics[i];
                if (streq(n->name, q.ifc.name)) {
                        r = kverr_set(e, KV_ERR_EXISTS, -EEXIST, "%s: interface '%s' is already attached%s", ctx, n->name,
                                      n->detaching ? " (being detached)" : "");
                        goto out;
                }
                if (n->kind == NIC_HOSTDEV && q.nic.kind == NIC_HOSTDEV && streq(n->pci, q.nic.pci)) {
                        r = kverr_set(e, KV_ERR_EXISTS, -EEXIST, "%s: VF %s already backs interface '%s'", ctx,
                                      q.nic.pci, n->name);
                        goto out;
                }
                if (n->kind == NIC_TAP && q.nic.kind == NIC_TAP && streq(n->tap, q.nic.tap)) {
                        r = kverr_set(e, KV_ERR_EXISTS, -EEXIST, "%s: tap '%s' already backs interface '%s'", ctx,
                                      q.nic.tap, n->name);
                        goto out;
                }
                if (memcmp(n->mac, q.nic.mac, 6) == 0) {
                        r = kverr_set(e, KV_ERR_EXISTS, -EEXIST,
                                      "%s: MAC %02x:%02x:%02x:%02x:%02x:%02x of interface '%s' is already used by '%s'",
                                      ctx, q.nic.mac[0], q.nic.mac[1], q.nic.mac[2], q.nic.mac[3], q.nic.mac[4],
                                      q.nic.mac[5], q.ifc.name, n->name);
                        goto out;
                }
        }
        if (q.nic.kind == NIC_TAP && if_nametoindex(q.nic.tap) == 0) {
                r = kverr_set(e, KV_ERR_INVALID_CONFIG, -ENODEV,
                              "%s: tap '%s' (interface '%s') does not exist in the launcher's network namespace", ctx,
                              q.nic.tap, q.ifc.name);
                goto out;
        }
        if ((r = launch_interface_xml(&q.ifc, &q.nic, &xml, e)) < 0)
                goto out;
        if ((r = rt_nics_grow(rt)) < 0) {
                kverr_set(e, KV_ERR_INTERNAL, r, "out of memory");
                goto out;
        }
        const char *dev = q.nic.kind == NIC_TAP ? q.nic.tap : q.nic.pci;
        if (virDomainAttachDeviceFlags(rt->dom, xml, VIR_DOMAIN_AFFECT_LIVE) < 0) {
                r = kverr_set(e, KV_ERR_INTERNAL, -EIO, "%s: libvirt could not attach interface '%s' (%s %s): %s", ctx,
                              q.ifc.name, q.nic.kind == NIC_TAP ? "tap" : "VF", dev, virGetLastErrorMessage());
                goto out;
        }
        size_t i = rt->n_nics++;
        rt->ifcs[i] = q.ifc;
        rt->nics[i] = q.nic;
        rt->detaches[i] = NULL;
        q = (LaunchAttachReq){}; /* owned by the list now */
        rt->nics_changed = true;
        rt_nics_publish(rt);
        log_info("attached interface '%s' (%s %s)", rt->ifcs[i].name, rt->nics[i].kind == NIC_TAP ? "tap" : "VF",
                 rt->nics[i].kind == NIC_TAP ? rt->nics[i].tap : rt->nics[i].pci);
        rt_write_status(rt);
        r = 0;
out:
        launch_attach_req_done(&q);
        return r;
}

static int on_detach_timeout(EventSource *s, void *userdata) {
        RtDetach *d = userdata;
        Runtime *rt = d->rt;
        (void) s;
        ssize_t i = rt_nic_find(rt, d->name);
        if (i < 0 || rt->detaches[i] != d)
                return -ECANCELED;
        LaunchNic *n = &rt->nics[i];
        n->detaching = false;
        snprintf(n->detach_error, sizeof n->detach_error,
                 "the guest did not release the device within %d s; the interface stays attached", LAUNCH_DETACH_TIMEOUT_SEC);
        log_warning("detach-interface '%s': %s", n->name, n->detach_error);
        d->timer = NULL; /* freed by the loop: -ECANCELED */
        detach_free(d);
        rt->detaches[i] = NULL;
        rt_write_status(rt);
        return -ECANCELED;
}

int rt_detach_interface(Runtime *rt, json_t *args, KvErr *e) {
        static const char ctx[] = "detach-interface";
        LaunchDetachReq q = {};
        int r = launch_detach_req_parse(args, &q, e);
        if (r < 0)
                return r;
        if ((r = rt_domain_op_check(rt, ctx, e)) < 0)
                goto out;
        ssize_t i = rt_nic_find(rt, q.name);
        if (i < 0) {
                r = kverr_set(e, KV_ERR_INVALID_CONFIG, -ENOENT, "%s: interface '%s' is not attached", ctx, q.name);
                goto out;
        }
        if (rt->nics[i].detaching) {
                r = kverr_set(e, KV_ERR_TRY_AGAIN, -EBUSY, "%s: interface '%s' is already being detached", ctx, q.name);
                goto out;
        }
        RtDetach *d = calloc(1, sizeof *d);
        if (!d || !(d->name = strdup(q.name))) {
                free(d);
                r = kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
                goto out;
        }
        d->rt = rt;
        r = event_add_timer(rt->loop, (uint64_t) LAUNCH_DETACH_TIMEOUT_SEC * 1000000ULL, 0, on_detach_timeout, d,
                            &d->timer);
        if (r < 0) {
                detach_free(d);
                kverr_set(e, KV_ERR_INTERNAL, r, "%s: timer", ctx);
                goto out;
        }
        char alias[96];
        snprintf(alias, sizeof alias, "ua-%s", q.name);
        if (virDomainDetachDeviceAlias(rt->dom, alias, VIR_DOMAIN_AFFECT_LIVE) < 0) {
                detach_free(d);
                r = kverr_set(e, KV_ERR_INTERNAL, -EIO, "%s: libvirt could not detach interface '%s' (alias %s): %s", ctx,
                              q.name, alias, virGetLastErrorMessage());
                goto out;
        }
        /* DEVICE_REMOVED comes through the loop, after this handler: never before the mark. */
        rt->nics[i].detaching = true;
        rt->nics[i].detach_error[0] = '\0';
        rt->detaches[i] = d;
        log_info("detaching interface '%s': waiting for the guest to release it", q.name);
        rt_write_status(rt);
        r = 0;
out:
        launch_detach_req_done(&q);
        return r;
}

static ssize_t rt_nic_by_alias(Runtime *rt, virDomainPtr dom, const char *alias) {
        const char *name = virDomainGetName(dom);
        if (!name || !streq(name, rt->st.domain) || !alias || strncmp(alias, "ua-", 3) != 0)
                return -1;
        return rt_nic_find(rt, alias + 3);
}

void rt_on_device_removed(virConnectPtr conn, virDomainPtr dom, const char *alias, void *opaque) {
        Runtime *rt = opaque;
        (void) conn;
        ssize_t i = rt_nic_by_alias(rt, dom, alias);
        if (i < 0)
                return;
        log_info("interface '%s' (%s %s) detached: the guest released it", rt->nics[i].name,
                 rt->nics[i].kind == NIC_TAP ? "tap" : "VF", rt->nics[i].kind == NIC_TAP ? rt->nics[i].tap : rt->nics[i].pci);
        rt_nic_remove(rt, (size_t) i);
        rt_write_status(rt);
}

void rt_on_device_removal_failed(virConnectPtr conn, virDomainPtr dom, const char *alias, void *opaque) {
        Runtime *rt = opaque;
        (void) conn;
        ssize_t i = rt_nic_by_alias(rt, dom, alias);
        if (i < 0)
                return;
        LaunchNic *n = &rt->nics[i];
        n->detaching = false;
        snprintf(n->detach_error, sizeof n->detach_error, "libvirt reports that the guest refused the removal");
        log_warning("detach-interface '%s': %s", n->name, n->detach_error);
        detach_free(rt->detaches[i]);
        rt->detaches[i] = NULL;
        rt_write_status(rt);
}
