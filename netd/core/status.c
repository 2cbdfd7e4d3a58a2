/* SPDX-License-Identifier: Apache-2.0 */
/* netd core: the read-only verbs (status, endpoints, ipam, nat, sriov, migrations, cluster-claims) and ipam-release. */
#include "common/event.h"
#include "common/json-util.h"
#include "netd/core/netd-priv.h"

static json_t *endpoints_json(Manager *m) {
        json_t *arr = json_array();
        EP_FOREACH(m, ep) {
                json_t *o = endpoint_to_json(ep, false);
                if (o && ep->dhcp)
                        json_object_set_new(o, "dhcp", dhcp_server_stats(ep->dhcp));
                json_array_append_new(arr, o);
        }
        return arr;
}

static int status_sriov_pool(const SriovPoolStats *st, void *userdata) {
        json_array_append_new(userdata, json_pack("{s:s,s:i,s:i,s:i,s:i}", "resource", st->resource, "total",
                                                  (int) st->total, "free", (int) st->free, "allocated",
                                                  (int) st->allocated, "unusable", (int) st->unusable));
        return 0;
}

static int status_build(Manager *m, json_t **ret) {
        size_t n_claims = ipam_count_claims(m->ipam, NULL);
        json_t *nets = json_array();
        for (size_t i = 0; i < m->n_networks; i++)
                json_array_append_new(nets, json_pack("{s:s,s:s}", "name", m->networks[i].name, "bridge",
                                                      m->networks[i].bridge));
        json_t *sriov = json_null();
        if (m->sriov) {
                json_t *pools = json_array();
                if (pools)
                        IGNORE_RESULT(sriov_foreach_pool(m->sriov, status_sriov_pool, pools));
                sriov = json_pack("{s:b,s:s,s:o}", "simulated", m->sriov_simulate, "sysfsRoot", m->sysfs_root, "pools",
                                  pools);
        }
        json_t *st = json_pack("{s:s,s:b,s:I,s:I,s:I,s:s,s:s,s:o,s:I,s:I,s:I,s:I,s:i}", "version", NETD_VERSION, "ready", 1, "uptime",
                         (json_int_t) ((now_usec() - m->started_usec) / 1000000), "endpoints",
                         (json_int_t) m->n_endpoints, "claims", (json_int_t) n_claims, "stateDir", m->state_dir,
                         "socket", m->socket_path, "networks", nets, "requests", (json_int_t) m->n_requests, "adds",
                         (json_int_t) m->n_adds, "dels", (json_int_t) m->n_dels, "errors", (json_int_t) m->n_errors,
                         "corruptStateFiles", (int) m->corrupt_files);
        if (!st) {
                json_decref(sriov);
                return -ENOMEM;
        }
        json_object_set_new(st, "sriov", sriov ? sriov : json_null());
        json_t *journals = json_array(), *trunks = json_array();
        Journal *js[] = { m->ep_journal, ipam_journal(m->ipam) };
        for (size_t k = 0; k < ELEMENTSOF(js); k++)
                json_array_append_new(journals,
                                      json_pack("{s:s,s:I,s:I,s:I,s:i}", "path", journal_path(js[k]), "records",
                                                (json_int_t) journal_count(js[k]), "usedBytes",
                                                (json_int_t) journal_used_bytes(js[k]), "capacityBytes",
                                                (json_int_t) journal_capacity(js[k]), "damagedAtStart",
                                                (int) journal_bad_records(js[k])));
        for (size_t k = 0; k < m->n_trunks; k++)
                json_array_append_new(trunks, json_string(m->trunks[k]));
        json_object_set_new(st, "journals", journals);
        json_object_set_new(st, "vlanTrunks", trunks);
        *ret = st;
        return 0;
}

/* Every claim of one VM (keys "vm/<ns>/<name>/<interface>"), in every network. */
typedef struct VmClaims {
        char prefix[IPAM_KEY_MAX];
        bool exact; /* prefix is one interface's whole key */
        char (*v)[2][IPAM_KEY_MAX];
        size_t n, cap;
} VmClaims;

static int vm_claim_cb(IpamClaim *c, void *userdata) {
        VmClaims *vc = userdata;
        if (vc->exact ? !streq(c->key, vc->prefix) : strncmp(c->key, vc->prefix, strlen(vc->prefix)) != 0)
                return 0;
        if (vc->n == vc->cap) {
                size_t cap = vc->cap ? 2 * vc->cap : 8;
                void *nv = realloc(vc->v, cap * sizeof *vc->v);
                if (!nv)
                        return -ENOMEM;
                vc->v = nv;
                vc->cap = cap;
        }
        snprintf(vc->v[vc->n][0], IPAM_KEY_MAX, "%s", c->network);
        snprintf(vc->v[vc->n][1], IPAM_KEY_MAX, "%s", c->key);
        vc->n++;
        return 0;
}

/* ipam-release {"vm": {"namespace", "name"[, "interface"]}}: the VM's claims (of that interface alone: an
 * unplugged NIC's) in every network (the pod network and its secondary networks) that no attachment uses; the
 * attached ones stay and are listed. */
static int release_vm(Manager *m, json_t *vm, json_t **ret, KvErr *e) {
        const char *ns = NULL, *name = NULL, *iface = NULL;
        int r;
        if ((r = json_get_string(vm, "ipam-release.vm", "namespace", true, &ns, e)) < 0 ||
            (r = json_get_string(vm, "ipam-release.vm", "name", true, &name, e)) < 0 ||
            (r = json_get_string(vm, "ipam-release.vm", "interface", false, &iface, e)) < 0)
                return r;
        if (!*ns || !*name || strchr(ns, '/') || strchr(name, '/'))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "ipam-release: 'vm.namespace' and 'vm.name' must be non-empty names without '/', got "
                                 "'%.64s' and '%.64s'", ns, name);
        if (iface && (!*iface || strchr(iface, '/')))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "ipam-release: 'vm.interface' must be a non-empty name without '/', got '%.64s'", iface);
        VmClaims vc = { .exact = iface != NULL };
        if ((size_t) snprintf(vc.prefix, sizeof vc.prefix, "vm/%s/%s/%s", ns, name, iface ?: "") >= sizeof vc.prefix)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -E2BIG, "ipam-release: VM name '%.64s/%.64s' is too long", ns,
                                 name);
        r = ipam_foreach_claim(m->ipam, NULL, vm_claim_cb, &vc);
        _cleanup_json_ json_t *released = json_array(), *attached = json_array();
        for (size_t i = 0; r >= 0 && i < vc.n; i++) {
                const char *net = vc.v[i][0], *key = vc.v[i][1];
                json_t *o = json_pack("{s:s, s:s}", "network", net, "key", key);
                if (count_key_users(m, NULL, net, key) > 0) {
                        json_array_append_new(attached, o);
                        continue;
                }
                if ((r = ipam_release(m->ipam, net, key)) < 0) {
                        json_decref(o);
                        break;
                }
                cluster_release(m, net, key);
                json_array_append_new(released, o);
        }
        free(vc.v);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "ipam-release: cannot remove the claims of VM '%s/%s'", ns, name);
        *ret = json_pack("{s:O, s:O}", "released", released, "attached", attached);
        return *ret ? 0 : -ENOMEM;
}

int do_ipam_release(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        const char *network = NULL, *key = NULL;
        json_t *vm = NULL;
        int r;
        if ((r = json_get_object(args, "ipam-release", "vm", false, &vm, e)) < 0)
                return r;
        if (vm)
                return release_vm(m, vm, ret, e);
        if ((r = json_get_string(args, "ipam-release", "network", true, &network, e)) < 0 ||
            (r = json_get_string(args, "ipam-release", "key", true, &key, e)) < 0)
                return r;
        if (count_key_users(m, NULL, network, key) > 0)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EBUSY,
                                 "ipam-release: claim '%s' in network '%s' is still attached", key, network);
        IpamClaim *c = ipam_find(m->ipam, network, key);
        if (!c)
                return kverr_set(e, KV_ERR_UNKNOWN_CONTAINER, -ENOENT, "ipam-release: no claim '%s' in network '%s'",
                                 key, network);
        r = ipam_release(m->ipam, network, key);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "ipam-release: cannot remove claim '%s'", key);
        cluster_release(m, network, key);
        *ret = json_object();
        return 0;
}

int do_ping(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        (void) m, (void) args, (void) e;
        *ret = json_pack("{s:b}", "ready", 1);
        return 0;
}

int do_status_daemon(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        (void) args, (void) e;
        return status_build(m, ret);
}

int do_endpoints(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        (void) args, (void) e;
        *ret = json_pack("{s:o}", "endpoints", endpoints_json(m));
        return 0;
}

int do_ipam(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        (void) args, (void) e;
        *ret = ipam_dump(m->ipam);
        return *ret ? 0 : -ENOMEM;
}

int do_nat(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        (void) args;
        NatBackend *nb = NULL;
        int r = nat_get(m, m->default_nat_backend, &nb, e);
        if (r < 0)
                return r;
        return nat_dump(nb, ret);
}

int do_sriov(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        (void) args, (void) e;
        json_t *result;
        if (m->sriov) {
                result = sriov_dump(m->sriov);
                if (result)
                        json_object_set_new(result, "simulated", json_boolean(m->sriov_simulate));
        } else
                result = json_pack("{s:[],s:[],s:b}", "pools", "vfs", "simulated", m->sriov_simulate);
        *ret = result;
        return result ? 0 : -ENOMEM;
}

int do_migration_activate(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        return handoff_activate(m->handoff, args, ret, e);
}

int do_migration_source(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        return handoff_source(m->handoff, args, ret, e);
}

int do_migrations(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        (void) args, (void) e;
        *ret = handoff_list(m->handoff);
        return *ret ? 0 : -ENOMEM;
}

int do_cluster_claims(Manager *m, json_t *args, json_t **ret, KvErr *e) {
        (void) args, (void) e;
        *ret = m->cs ? claimstore_dump(m->cs) : json_pack("{s:n,s:n,s:[]}", "node", "dir", "claims");
        return *ret ? 0 : -ENOMEM;
}

